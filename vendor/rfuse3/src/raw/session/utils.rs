//! Utility types and helper functions for the FUSE session.

use bincode::Options;
use bytes::Bytes;
use futures_util::future::Either;
use futures_util::sink::{Sink, SinkExt};
use std::fmt::{Debug, Formatter};
use std::future::Future;
use std::io::Result as IoResult;
use std::pin::pin;
use std::task::{Context, Poll};
use tracing::Span;

#[cfg(all(not(feature = "tokio-runtime"), feature = "async-io-runtime"))]
use async_global_executor as task;
#[cfg(all(not(feature = "async-io-runtime"), feature = "tokio-runtime"))]
use tokio::task;
use tracing::Instrument;

use crate::helper::*;
use crate::raw::abi::*;
use crate::raw::buffer_pool::AlignedBuffer;
use crate::raw::request::Request;
use crate::Errno;

#[derive(Debug, Clone, Copy)]
/// Lightweight version of fuse_in_header containing essential fields
pub(crate) struct InHeaderLite {
    pub(crate) nodeid: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) pid: u32,
}

/// Check if the opcode is a FORGET message (FUSE_FORGET or FUSE_BATCH_FORGET).
/// These messages don't need replies and shouldn't count toward inflight limits.
#[inline]
pub(super) fn is_forget_opcode(opcode: u32) -> bool {
    opcode == fuse_opcode::FUSE_FORGET as u32 || opcode == fuse_opcode::FUSE_BATCH_FORGET as u32
}

/// Apply direct_io flag to open_flags if enabled
pub(super) fn apply_direct_io(open_flags: &mut u32, direct_io: bool) {
    if direct_io {
        *open_flags |= FOPEN_DIRECT_IO;
    }
}

/// Reply with an error code in worker context
#[inline]
pub(super) fn reply_error_in_worker(
    err: Errno,
    unique: u64,
) -> Result<Vec<u8>, Box<bincode::ErrorKind>> {
    let out_header = fuse_out_header {
        len: FUSE_OUT_HEADER_SIZE as u32,
        error: err.into(),
        unique,
    };
    get_bincode_config().serialize(&out_header)
}

/// Reply with an error code in place (for non-worker contexts)
pub(super) async fn reply_error_in_place<S>(err: Errno, request: Request, sender: S)
where
    S: Sink<Either<Vec<u8>, (Vec<u8>, Bytes)>>,
{
    let out_header = fuse_out_header {
        len: FUSE_OUT_HEADER_SIZE as u32,
        error: err.into(),
        unique: request.unique,
    };

    let data = get_bincode_config()
        .serialize(&out_header)
        .expect("won't happened");

    let _ = pin!(sender).send(Either::Left(data)).await;
}

/// Runs a request's handler: here until it first has to wait, then as a task.
///
/// Scorpio patch: most handlers finish without waiting (a few system calls on local files),
/// and running them on the session thread saves a hand-over to another thread per request.
/// One that waits is moved to the runtime, whose task polls it again with its own waker (a
/// future must only wake the waker of its latest poll).
#[inline]
pub(super) fn spawn<F>(span: Span, fut: F)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    #[cfg(all(not(feature = "async-io-runtime"), feature = "tokio-runtime"))]
    {
        let mut fut = Box::pin(fut.instrument(span));
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        if fut.as_mut().poll(&mut cx).is_pending() {
            use std::sync::atomic::Ordering;
            crate::raw::connection::HANDLERS_WAITING.fetch_add(1, Ordering::Relaxed);
            task::spawn(async move {
                let out = fut.await;
                crate::raw::connection::HANDLERS_WAITING.fetch_sub(1, Ordering::Relaxed);
                out
            });
        }
    }

    #[cfg(all(not(feature = "tokio-runtime"), feature = "async-io-runtime"))]
    task::spawn(fut.instrument(span)).detach()
}

/// Scorpio patch: runs a future to completion on the calling thread (the session thread).
///
/// Not tokio's `Handle::block_on`: that gives the whole dispatch loop one cooperative budget,
/// which a loop that never waits would use up, after which every tokio lock a handler takes
/// would report "not ready" and send the handler to the runtime.
pub(super) fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }

    let mut fut = pin!(fut);
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// Result type for reading from the FUSE connection
pub(super) enum ReadResult {
    Destroy,
    Request {
        in_header: IoResult<fuse_in_header>,
        header_buffer: Vec<u8>,
        data_buffer: AlignedBuffer,
    },
}

impl Debug for ReadResult {
    fn fmt(&self, f: &mut Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadResult::Destroy => f.debug_struct("ReadResult::Destroy").finish(),
            ReadResult::Request { in_header, .. } => f
                .debug_struct("ReadResult::Request")
                .field("in_header", in_header)
                .finish_non_exhaustive(),
        }
    }
}
