//! The HTTP control API (axum). Routes are built apart from serving so tests can drive them
//! without a socket.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// Shared state of the API.
#[derive(Clone)]
pub struct AppState {
    started: Instant,
    mounts: Arc<AtomicUsize>,
    commit: Arc<String>,
}

impl AppState {
    /// State for a daemon serving `commit`.
    pub fn new(commit: String) -> AppState {
        AppState {
            started: Instant::now(),
            mounts: Arc::new(AtomicUsize::new(1)),
            commit: Arc::new(commit),
        }
    }

    /// Sets the number of mounts reported by `/health`.
    pub fn set_mount_count(&self, n: usize) {
        self.mounts.store(n, Ordering::Relaxed);
    }
}

/// The body of `GET /health`.
#[derive(Serialize, serde::Deserialize, Debug)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The crate version.
    pub version: String,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Mounts served.
    pub mount_count: usize,
    /// The commit shown at the workspace.
    pub commit: String,
}

/// An API error: a status and a JSON body `{"error", "code"}`.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AppError {
    /// An error with `status`, a stable `code` and a message for people.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AppError {
        AppError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({"error": self.message, "code": self.code})),
        )
            .into_response()
    }
}

async fn health(axum::extract::State(s): axum::extract::State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_secs: s.started.elapsed().as_secs(),
        mount_count: s.mounts.load(Ordering::Relaxed),
        commit: s.commit.to_string(),
    })
}

async fn not_found() -> AppError {
    AppError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

/// The API routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .fallback(not_found)
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
