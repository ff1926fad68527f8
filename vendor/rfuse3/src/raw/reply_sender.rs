//! Scorpio patch: replies are written to `/dev/fuse` by the thread that produced them.
//!
//! Upstream sends every reply through a channel to one writer task, which costs a task wake-up
//! (often a thread wake-up) per request. A reply write never blocks in the kernel, and each
//! `write` carries one whole message, so any thread may write its own. Notifications are the
//! exception: the kernel may hold an invalidation back until a lookup in the same directory
//! has its reply, so they are written on a blocking thread of their own.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures_util::future::Either;
use futures_util::sink::Sink;
use tracing::{debug, error, warn};

use crate::raw::abi::FUSE_OUT_HEADER_SIZE;
use crate::raw::connection::FuseConnection;
use crate::raw::FuseData;

/// Where replies and notifications of one session go; bound to the connection at mount.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplySender {
    conn: Arc<OnceLock<Arc<FuseConnection>>>,
}

impl ReplySender {
    /// A sender not yet bound to a connection.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Binds the sender to the session's connection (once, at mount).
    pub(crate) fn bind(&self, conn: Arc<FuseConnection>) {
        let _ = self.conn.set(conn);
    }

    /// Registers a backing file for FUSE passthrough (see `FuseConnection::backing_open`).
    pub(crate) fn backing_open(&self, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<i32> {
        self.conn
            .get()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not mounted"))?
            .backing_open(fd)
    }

    /// Drops a backing id (see `FuseConnection::backing_close`).
    pub(crate) fn backing_close(&self, id: i32) -> io::Result<()> {
        self.conn
            .get()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not mounted"))?
            .backing_close(id)
    }

    /// Writes one reply or notification now; never fails the caller.
    pub(crate) fn unbounded_send(&self, data: FuseData) -> Result<(), io::Error> {
        // Unbound: the caller learns it (a notification's count is then given back by Notify).
        let Some(conn) = self.conn.get() else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the session is not mounted",
            ));
        };
        let (mut data, extend) = match data {
            Either::Left(data) => (data, None),
            Either::Right((data, extend)) => (data, Some(extend)),
        };
        fix_length(&mut data, extend.as_ref().map_or(0, |e| e.len()));

        if header_unique(&data) == Some(0) {
            let conn = conn.clone();
            let write = move || {
                if let Err(err) = conn.write_blocking(&data, extend.as_deref()) {
                    debug!(error = %err, "kernel refused a notification");
                }
                crate::notify::PENDING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn_blocking(write)),
                Err(_) => drop(std::thread::spawn(write)),
            }
            return Ok(());
        }

        if let Err(err) = conn.write_blocking(&data, extend.as_deref()) {
            // ENOENT: the request was interrupted and the kernel no longer waits for it.
            if crate::raw::session::is_ignorable_reply_error(&err) {
                warn!("reply to an interrupted request dropped: {err}");
            } else {
                error!(
                    error = %err,
                    unique = header_unique(&data),
                    "reply fuse failed"
                );
            }
            return Err(err);
        }
        Ok(())
    }
}

/// The `unique` field of an out header.
fn header_unique(data: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = data.get(8..16)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Makes the header's length match what is written.
fn fix_length(data: &mut [u8], extend_len: usize) {
    if data.len() < FUSE_OUT_HEADER_SIZE {
        return;
    }
    let actual = (data.len() + extend_len) as u32;
    if data[0..4] != actual.to_le_bytes() {
        warn!(actual, "adjusted fuse reply length to match payload");
        data[0..4].copy_from_slice(&actual.to_le_bytes());
    }
}

impl Sink<FuseData> for ReplySender {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: FuseData) -> Result<(), io::Error> {
        self.unbounded_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }
}

impl Sink<FuseData> for &ReplySender {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: FuseData) -> Result<(), io::Error> {
        self.unbounded_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }
}
