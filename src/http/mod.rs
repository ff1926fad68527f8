//! The HTTP edge both APIs share (the daemon's and `antares serve`'s): the error format, JSON
//! bodies, who may call, and serving under bounds. Neither API's routes live here, so the daemon
//! (which nests the Antares routes) and Antares both import this module and not each other.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

pub mod body;
pub mod metrics;
pub mod peer;
pub mod serve;

pub use body::{json_errors, ApiJson, BodyError};
pub use peer::Access;

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
