//! `GET /metrics` of the daemon: the scrape-time gauges of the workspace (its upper layers,
//! the inode table) and of the Antares mounts it serves, then every family.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;

/// Sets the gauges measured now, then answers with every family.
pub(super) async fn scrape(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let m = crate::metrics::global();
    if let Some(w) = &s.mounts {
        let uppers: Vec<_> = w.list().await.into_iter().map(|i| i.upper).collect();
        let store = w.dicfuse().store().clone();
        // Walking the upper layers and counting the table read the disk: off the runtime.
        let measured = tokio::task::spawn_blocking(move || {
            let bytes: u64 = uppers.iter().map(|u| crate::metrics::tree_bytes(u)).sum();
            (bytes, store.inodes.len() as u64)
        })
        .await;
        if let Ok((bytes, entries)) = measured {
            m.set_upper_bytes("workspace", bytes);
            m.set_inode_entries(entries);
        }
    }
    if let Some(a) = &s.antares {
        a.record_gauges().await;
    }
    crate::http::metrics::response(&headers)
}
