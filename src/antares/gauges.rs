//! The Antares gauges of `GET /metrics`, measured when scraped: mounts by state, the bytes in
//! their upper layers, and the inode table of the view they share. Served by the standalone
//! API and, through the daemon's own `/metrics`, by the daemon.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::{Antares, MountState};

/// The state's name as the API shows it (the label of `scorpio_antares_mounts`).
fn state_label(s: MountState) -> &'static str {
    match s {
        MountState::Provisioning => "provisioning",
        MountState::Mounted => "mounted",
        MountState::Unmounting => "unmounting",
        MountState::Failed => "failed",
    }
}

impl Antares {
    /// Sets the Antares gauges from the records as they are now.
    pub async fn record_gauges(&self) {
        let m = crate::metrics::global();
        let records = self.list();
        for s in [
            MountState::Provisioning,
            MountState::Mounted,
            MountState::Unmounting,
            MountState::Failed,
        ] {
            let n = records.iter().filter(|r| r.state == s).count();
            m.set_antares_mounts(state_label(s), n as u64);
        }
        let uppers: Vec<_> = records.into_iter().filter_map(|r| r.upper_dir).collect();
        let store = self.dic.store().clone();
        // Walking the upper layers and counting the table read the disk: off the runtime.
        let measured = tokio::task::spawn_blocking(move || {
            let bytes: u64 = uppers.iter().map(|u| crate::metrics::tree_bytes(u)).sum();
            (bytes, store.inodes.len() as u64)
        })
        .await;
        if let Ok((bytes, entries)) = measured {
            m.set_upper_bytes("antares", bytes);
            m.set_inode_entries(entries);
        }
    }
}

/// `GET /metrics` of the standalone Antares API.
pub(super) async fn scrape(State(a): State<Arc<Antares>>, headers: HeaderMap) -> Response {
    a.record_gauges().await;
    crate::http::metrics::response(&headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Access;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use crate::antares::api::tests::antares;

    #[tokio::test]
    async fn metrics_are_served_under_the_same_token_as_the_other_routes() {
        let d = tempfile::tempdir().expect("dir");
        let app: axum::Router = crate::antares::api::router(
            antares(d.path()).await,
            Some(Access::new(Some("s3cret".into()))),
        );
        let get = |token: Option<&str>| {
            let mut r = Request::get("/metrics");
            if let Some(t) = token {
                r = r.header("authorization", format!("Bearer {t}"));
            }
            app.clone().oneshot(r.body(Body::empty()).expect("request"))
        };
        assert_eq!(
            get(None).await.expect("resp").status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get(Some("wrong")).await.expect("resp").status(),
            StatusCode::UNAUTHORIZED
        );
        let resp = get(Some("s3cret")).await.expect("resp");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some(crate::metrics::text::PROMETHEUS_CONTENT_TYPE)
        );
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&body);
        let samples = crate::metrics::text::parse(&text).expect("parses");
        // Every state is there, at zero with no mount.
        for state in ["provisioning", "mounted", "unmounting", "failed"] {
            assert!(
                samples.iter().any(|s| s.name == "scorpio_antares_mounts"
                    && s.label("state") == Some(state)
                    && s.value == 0.0),
                "{text}"
            );
        }
    }

    #[test]
    fn state_labels_are_the_api_names() {
        for s in [
            MountState::Provisioning,
            MountState::Mounted,
            MountState::Unmounting,
            MountState::Failed,
        ] {
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::Value::String(state_label(s).into()))
            );
        }
    }
}
