//! Serving an API router over TCP with bounds a flood of idle or slow clients cannot exceed.
//!
//! `axum::serve` accepts every connection at once and waits for its headers forever, so ~20,000
//! idle half-sent connections used up the daemon's file descriptors before any auth check ran,
//! and the FUSE session failed reads with EMFILE. Here at most [`MAX_CONNECTIONS`] are open;
//! when they are all taken the loop stops accepting and the rest wait in the kernel's backlog
//! (costing the daemon no descriptor). A connection has [`HEADER_TIMEOUT`] to send each
//! request's headers (idle keep-alive included) and a body extractor [`BODY_TIMEOUT`] for the
//! body, so a slot held by a silent client is soon free again.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use super::peer::Peer;

/// Connections served at once. Each costs one descriptor; the limit is raised to the hard limit
/// at start (usually 2^19 or more, at least 4096 on any sane box), so 512 keeps the API far from
/// starving the FUSE sessions and the object store, and is still far more than a CLI, CI jobs
/// and scripts use at once.
pub const MAX_CONNECTIONS: usize = 512;

/// Time a client has to send a request's headers, measured from the moment the server waits
/// for them (so an idle keep-alive connection is closed after it too). Any real client sends
/// its headers in one write; 10 s is generous for a loaded machine.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a client has to send a request body once its headers are in. The largest body the API
/// reads is a few KB of JSON (bodies are capped at 2 MB), so 30 s only ever cuts off a client
/// that stalls on purpose.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// A pause after a failed accept (EMFILE, ENFILE, ENOMEM): the error repeats until something
/// is closed, and retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` completes, then lets open connections finish
/// their requests (keep-alive is switched off) and returns once they have closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (close_tx, close_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an API connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let local = match stream.local_addr() {
            Ok(l) => l,
            Err(_) => continue,
        };
        tokio::spawn(connection(
            stream,
            Arc::new(Peer::new(addr, local)),
            app.clone(),
            close_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    let _ = close_tx.send(true);
    // Every connection holds a permit until it closes.
    let _ = permits.acquire_many(MAX_CONNECTIONS as u32).await;
}

/// Serves one connection; each request carries `peer` so the access check knows who sent it.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: Arc<Peer>,
    app: Router,
    mut close: watch::Receiver<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        app.clone().oneshot(req.map(Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "API connection ended");
            }
            return;
        }
        _ = close.wait_for(|closing| *closing) => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}
