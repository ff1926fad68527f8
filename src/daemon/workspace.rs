//! Workspace routes: `/api/fs/mount`, `/api/fs/select/{id}`, `/api/fs/mpoint`, `/api/fs/unmount`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiJson, AppError, AppState};
use crate::workspace::{MountError, MountInfo, WritablePaths};

/// Body of `POST /api/fs/mount`.
#[derive(Deserialize, Serialize, Debug)]
pub struct MountRequest {
    /// Repository path; `/` is the whole repository.
    pub path: String,
    /// A change list to lay between the upper layer and the repository.
    #[serde(default)]
    pub cl: Option<String>,
}

/// Body of `POST /api/fs/unmount`.
#[derive(Deserialize, Serialize, Debug)]
pub struct UnmountRequest {
    /// Repository path.
    pub path: String,
}

/// Answer of mount and unmount.
#[derive(Deserialize, Serialize, Debug)]
pub struct MountResponse {
    /// `Success` or `Fail`.
    pub status: String,
    /// Id for `GET /api/fs/select/{id}`.
    pub request_id: String,
    /// For people.
    pub message: String,
    /// The mount, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<MountInfo>,
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

fn request_id() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        REQUEST_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

impl From<MountError> for AppError {
    fn from(e: MountError) -> Self {
        let (status, code) = match &e {
            MountError::BadPath(..) => (StatusCode::BAD_REQUEST, "BAD_PATH"),
            MountError::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            MountError::NotDir(_) | MountError::Through(..) => {
                (StatusCode::BAD_REQUEST, "NOT_A_DIRECTORY")
            }
            MountError::AlreadyMounted(_) => (StatusCode::CONFLICT, "ALREADY_MOUNTED"),
            MountError::Overlaps(..) => (StatusCode::CONFLICT, "OVERLAPS_MOUNT"),
            MountError::NotMounted(_) => (StatusCode::NOT_FOUND, "NOT_MOUNTED"),
            MountError::Busy(..) => (StatusCode::CONFLICT, "BUSY"),
            MountError::Cl(..) => (StatusCode::BAD_GATEWAY, "CL_UNAVAILABLE"),
            MountError::ClNothingHere(..) => (StatusCode::BAD_REQUEST, "CL_NOT_UNDER_PATH"),
            MountError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        };
        AppError::new(status, code, e.to_string())
    }
}

pub(super) fn writable_paths(s: &AppState) -> Result<Arc<WritablePaths>, AppError> {
    s.mounts.clone().ok_or_else(|| {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "NO_WORKSPACE",
            "no workspace is mounted",
        )
    })
}

async fn mount(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<MountRequest>,
) -> Result<Json<MountResponse>, AppError> {
    let m = writable_paths(&s)?;
    let id = request_id();
    let r = m.mount(&req.path, req.cl.as_deref()).await;
    m.record(&id, &req.path, &r);
    let info = r?;
    super::prefetch::after_mount(&s, &info.path);
    s.set_mount_count(1 + m.count().await);
    Ok(Json(MountResponse {
        status: "Success".into(),
        request_id: id,
        message: format!("{} is writable at {}", req.path, info.mountpoint.display()),
        mount: Some(info),
    }))
}

async fn unmount(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<UnmountRequest>,
) -> Result<Json<MountResponse>, AppError> {
    let m = writable_paths(&s)?;
    m.unmount(&req.path).await?;
    s.set_mount_count(1 + m.count().await);
    Ok(Json(MountResponse {
        status: "Success".into(),
        request_id: request_id(),
        message: format!("{} unmounted; its changes are kept", req.path),
        mount: None,
    }))
}

async fn select(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    let m = writable_paths(&s)?;
    let (path, r) = m.request(&id).ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no request {id}"),
        )
    })?;
    Ok(Json(match r {
        Ok(info) => {
            serde_json::json!({"request_id": id, "path": path, "status": "Success", "mount": info})
        }
        Err(msg) => {
            serde_json::json!({"request_id": id, "path": path, "status": "Fail", "message": msg})
        }
    }))
}

async fn mpoint(State(s): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let m = writable_paths(&s)?;
    Ok(Json(serde_json::json!({ "mounts": m.list().await })))
}

/// The workspace routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/fs/mount", post(mount))
        .route("/api/fs/unmount", post(unmount))
        .route("/api/fs/select/{id}", get(select))
        .route("/api/fs/mpoint", get(mpoint))
}
