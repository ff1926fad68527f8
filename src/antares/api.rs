//! The Antares HTTP API (axum): served alone by `scorpio antares serve`, and nested at
//! `/antares` in the main daemon.
//!
//! Errors are `{"error", "code"}` with the status of [`AntaresError::status`]. Request bodies
//! are parsed here (not by axum's extractor) so a malformed one gets the same JSON error shape.
//! Once shutdown has begun every request gets 503.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::{Antares, AntaresError, CreateRequest};
use crate::daemon::{AppError, Health};

impl From<AntaresError> for AppError {
    fn from(e: AntaresError) -> Self {
        let (status, code) = e.status();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %e, "antares request failed");
        } else {
            tracing::debug!(error = %e, "antares request refused");
        }
        AppError::new(status, code, e.to_string())
    }
}

type ApiResult = Result<Response, AppError>;

async fn health(State(a): State<Arc<Antares>>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_secs: a.uptime_secs(),
        mount_count: a.count(),
        commit: a.commit(),
    })
}

async fn create(State(a): State<Arc<Antares>>, body: Bytes) -> ApiResult {
    let req: CreateRequest = serde_json::from_slice(&body).map_err(|e| {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "BAD_JSON",
            format!("the body is not a mount request: {e}"),
        )
    })?;
    let (rec, new) = a.create(req).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(rec)).into_response())
}

async fn list(State(a): State<Arc<Antares>>) -> Json<serde_json::Value> {
    Json(json!({ "mounts": a.list() }))
}

async fn get_one(State(a): State<Arc<Antares>>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(a.get(&id)?).into_response())
}

async fn delete_one(State(a): State<Arc<Antares>>, Path(id): Path<String>) -> ApiResult {
    let rec = a.delete(&id).await?;
    Ok(Json(json!({
        "mount_id": rec.mount_id,
        "mountpoint": rec.mountpoint,
        "message": format!("mount {} deleted", rec.mount_id),
    }))
    .into_response())
}

async fn get_job(State(a): State<Arc<Antares>>, Path(job): Path<String>) -> ApiResult {
    Ok(Json(a.by_job(&job)?).into_response())
}

async fn delete_job(State(a): State<Arc<Antares>>, Path(job): Path<String>) -> ApiResult {
    let id = a.by_job(&job)?.mount_id;
    delete_one(State(a), Path(id)).await
}

async fn changes(State(a): State<Arc<Antares>>, Path(id): Path<String>) -> ApiResult {
    let rec = a.get(&id)?;
    let changes = a.changes(&id).await?;
    Ok(Json(json!({
        "mount_id": rec.mount_id,
        "path": rec.path,
        "base": rec.commit,
        "changes": changes,
    }))
    .into_response())
}

async fn not_found() -> AppError {
    AppError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

/// Answers 503 once shutdown has begun, before anything else runs.
async fn refuse_when_closing(
    State(a): State<Arc<Antares>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if a.is_closing() {
        return AppError::from(AntaresError::ShuttingDown).into_response();
    }
    next.run(req).await
}

/// Refuses requests without `Authorization: Bearer <token>`.
async fn require_token(
    State(token): State<Arc<String>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given != Some(token.as_str()) {
        return AppError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "missing or wrong bearer token",
        )
        .into_response();
    }
    next.run(req).await
}

/// The Antares routes over `a`; with `token`, every request needs it as a bearer token (the main
/// daemon passes `None`: its own check already covers the nested routes).
pub fn router<S: Clone + Send + Sync + 'static>(
    a: Arc<Antares>,
    token: Option<String>,
) -> Router<S> {
    let r = Router::new()
        .route("/health", get(health))
        .route("/mounts", get(list).post(create))
        .route("/mounts/{id}", get(get_one).delete(delete_one))
        .route("/mounts/{id}/changes", get(changes))
        .route("/mounts/by-job/{job_id}", get(get_job).delete(delete_job))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            a.clone(),
            refuse_when_closing,
        ))
        .with_state(a);
    match token {
        Some(t) => r.layer(axum::middleware::from_fn_with_state(
            Arc::new(t),
            require_token,
        )),
        None => r,
    }
}
