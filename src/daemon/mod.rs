//! The HTTP control API (axum). Routes are built apart from serving so tests can drive them
//! without a socket.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use crate::workspace::WritablePaths;

pub mod git;
mod metrics;
pub mod prefetch;
pub mod workspace;

pub use crate::http::{json_errors, Access, ApiJson, AppError, BodyError, Health};

/// Shared state of the API.
#[derive(Clone)]
pub struct AppState {
    started: Instant,
    mount_count: Arc<AtomicUsize>,
    commit: Arc<String>,
    mounts: Option<Arc<WritablePaths>>,
    vcs: Option<Arc<crate::vcs::Vcs>>,
    access: Access,
    antares: Option<Arc<crate::antares::Antares>>,
    prefetch: Option<Arc<crate::prefetch::Prefetcher>>,
    /// Levels listed from each newly mounted writable path (`prefetch_depth`; 0: none).
    prefetch_depth: u32,
}

impl AppState {
    /// State for a daemon serving `commit`.
    pub fn new(commit: String) -> AppState {
        AppState {
            started: Instant::now(),
            mount_count: Arc::new(AtomicUsize::new(1)),
            commit: Arc::new(commit),
            mounts: None,
            vcs: None,
            access: Access::default(),
            antares: None,
            prefetch: None,
            prefetch_depth: 0,
        }
    }

    /// Serves the workspace routes with `m`.
    pub fn with_mounts(mut self, m: Arc<WritablePaths>) -> AppState {
        self.mounts = Some(m);
        self
    }

    /// Serves the version-control routes with `v`.
    pub fn with_vcs(mut self, v: Arc<crate::vcs::Vcs>) -> AppState {
        self.vcs = Some(v);
        self
    }

    /// Serves the Antares routes with `a`, nested at `/antares`.
    pub fn with_antares(mut self, a: Arc<crate::antares::Antares>) -> AppState {
        self.antares = Some(a);
        self
    }

    /// Serves the prefetch routes with `p`, which also lists `depth` levels (0: none) under
    /// each writable path mounted from then on.
    pub fn with_prefetch(mut self, p: Arc<crate::prefetch::Prefetcher>, depth: u32) -> AppState {
        self.prefetch = Some(p);
        self.prefetch_depth = depth;
        self
    }

    /// Requires `Authorization: Bearer <token>` on every request (without a token, only the
    /// daemon's own user and root are served).
    pub fn with_auth_token(mut self, token: Option<String>) -> AppState {
        self.access = Access::new(token);
        self
    }

    /// The commit the workspace shows: the version control's base (a push moves it), else the
    /// one given at start.
    pub fn commit(&self) -> String {
        match &self.vcs {
            Some(v) => v.base().to_hex(),
            None => self.commit.to_string(),
        }
    }

    /// Sets the number of mounts reported by `/health`.
    pub fn set_mount_count(&self, n: usize) {
        self.mount_count.store(n, Ordering::Relaxed);
    }
}

async fn health(axum::extract::State(s): axum::extract::State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_secs: s.started.elapsed().as_secs(),
        mount_count: s.mount_count.load(Ordering::Relaxed),
        commit: s.commit(),
    })
}

async fn not_found() -> AppError {
    AppError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

/// The API routes, behind the access check, with every refusal in the API's JSON format.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics::scrape))
        .merge(workspace::routes())
        .merge(git::routes())
        .merge(prefetch::routes());
    if let Some(a) = &state.antares {
        r = r.nest("/antares", crate::antares::api::router(a.clone(), None));
    }
    r.fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.access.clone(),
            crate::http::peer::guard,
        ))
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn health_reports_version_and_mounts() {
        let app = router(AppState::new("abc".into()));
        let resp = app
            .oneshot(Request::get("/health").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let h: Health = serde_json::from_slice(&body).unwrap();
        assert_eq!(h.status, "ok");
        assert_eq!(h.mount_count, 1);
        assert_eq!(h.commit, "abc");
    }

    #[tokio::test]
    async fn metrics_are_prometheus_text_or_openmetrics_when_asked() {
        let app = router(AppState::new("abc".into()));
        for (accept, want) in [
            (None, crate::metrics::text::PROMETHEUS_CONTENT_TYPE),
            (
                Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
                crate::metrics::text::OPENMETRICS_CONTENT_TYPE,
            ),
        ] {
            let mut req = Request::get("/metrics");
            if let Some(a) = accept {
                req = req.header("accept", a);
            }
            let resp = app
                .clone()
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers()["content-type"], want);
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            let text = String::from_utf8(body.to_vec()).unwrap();
            crate::metrics::text::parse(&text).unwrap();
            assert!(text.contains("scorpio_cache_hits_total"), "{text}");
            assert_eq!(text.contains("# EOF"), accept.is_some(), "{text}");
        }
    }

    #[tokio::test]
    async fn unknown_route_is_json_404() {
        let app = router(AppState::new("abc".into()));
        let resp = app
            .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "NOT_FOUND");
    }
}
