//! Prefetch routes: `POST /api/prefetch` starts a job (202 with the job), `GET
//! /api/prefetch/{id}` shows it, `DELETE /api/prefetch/{id}` cancels it, `GET /api/prefetch`
//! lists the jobs kept.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use super::{ApiJson, AppError, AppState};
use crate::prefetch::{PrefetchError, Prefetcher, Request, Snapshot};

impl From<PrefetchError> for AppError {
    fn from(e: PrefetchError) -> Self {
        let (status, code) = match &e {
            PrefetchError::BadPath(..) => (StatusCode::BAD_REQUEST, "BAD_PATH"),
            PrefetchError::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            PrefetchError::NotDir(_) => (StatusCode::BAD_REQUEST, "NOT_A_DIRECTORY"),
            PrefetchError::BadDepth => (StatusCode::BAD_REQUEST, "BAD_DEPTH"),
            PrefetchError::NoJob(_) => (StatusCode::NOT_FOUND, "NO_SUCH_JOB"),
            PrefetchError::Lower(_) => (StatusCode::BAD_GATEWAY, "LOWER_FAILED"),
        };
        AppError::new(status, code, e.to_string())
    }
}

fn prefetcher(s: &AppState) -> Result<&std::sync::Arc<Prefetcher>, AppError> {
    s.prefetch.as_ref().ok_or_else(|| {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "NO_WORKSPACE",
            "no workspace is mounted",
        )
    })
}

/// Starts the background listing of a writable path just mounted at `path` (`prefetch_depth`).
pub(super) fn after_mount(s: &AppState, path: &str) {
    if let (Some(p), depth @ 1..) = (s.prefetch.clone(), s.prefetch_depth) {
        let path = path.to_string();
        tokio::spawn(async move { p.preload(&path, depth).await });
    }
}

async fn start(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<Request>,
) -> Result<(StatusCode, Json<Snapshot>), AppError> {
    let job = prefetcher(&s)?.start(&req).await?;
    Ok((StatusCode::ACCEPTED, Json(job.snapshot())))
}

async fn show(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Snapshot>, AppError> {
    Ok(Json(prefetcher(&s)?.get(&id)?.snapshot()))
}

async fn cancel(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Snapshot>, AppError> {
    Ok(Json(prefetcher(&s)?.cancel(&id)?))
}

async fn list(State(s): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    Ok(Json(serde_json::json!({ "jobs": prefetcher(&s)?.list() })))
}

/// The prefetch routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/prefetch", get(list).post(start))
        .route("/api/prefetch/{id}", get(show).delete(cancel))
}
