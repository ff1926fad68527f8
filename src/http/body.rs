//! Request bodies and refusals in the API's one format, for both the daemon and Antares.
//!
//! [`ApiJson`] reads every JSON body: with or without a content type (curl's `-d` sends
//! `application/x-www-form-urlencoded`), within [`super::serve::BODY_TIMEOUT`], and with each
//! failure a `{"error", "code"}` answer. [`json_errors`] turns whatever else answers in another
//! format (axum's 405 with an empty body, a plain-text 400 from a bad query or path) into that
//! format too, so no route and no framework refusal can escape it.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppError;

/// A JSON request body of type `T`. An empty body reads as `{}`, so requests whose fields are
/// all optional may be sent without one.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Not JSON at all.
    #[error("the body is not JSON: {0}")]
    Syntax(String),
    /// JSON, but not the request this route takes.
    #[error("the body is not a valid request for this route: {0}")]
    Shape(String),
    /// More than the API reads.
    #[error("the body is larger than the API accepts ({0})")]
    TooLarge(String),
    /// The client did not send the body in time.
    #[error("the body did not arrive within {} s", super::serve::BODY_TIMEOUT.as_secs())]
    Timeout,
    /// The body could not be read (the connection failed).
    #[error("the body could not be read: {0}")]
    Read(String),
}

impl BodyError {
    /// The status and code of the daemon's answer.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            BodyError::Syntax(_) => (StatusCode::BAD_REQUEST, "BAD_JSON"),
            BodyError::Shape(_) => (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY"),
            BodyError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE"),
            BodyError::Timeout => (StatusCode::REQUEST_TIMEOUT, "BODY_TIMEOUT"),
            BodyError::Read(_) => (StatusCode::BAD_REQUEST, "BAD_BODY"),
        }
    }
}

impl From<BodyError> for AppError {
    fn from(e: BodyError) -> AppError {
        let (status, code) = e.status();
        AppError::new(status, code, e.to_string())
    }
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        AppError::from(self).into_response()
    }
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = BodyError;

    async fn from_request(req: Request, state: &S) -> Result<Self, BodyError> {
        let read = Bytes::from_request(req, state);
        let bytes = match tokio::time::timeout(super::serve::BODY_TIMEOUT, read).await {
            Err(_) => return Err(BodyError::Timeout),
            Ok(Err(r)) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(BodyError::TooLarge(r.body_text()))
            }
            Ok(Err(r)) => return Err(BodyError::Read(r.body_text())),
            Ok(Ok(b)) => b,
        };
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(ApiJson)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => BodyError::Shape(e.to_string()),
                _ => BodyError::Syntax(e.to_string()),
            })
    }
}

/// Bytes of a non-JSON refusal kept as its message; framework refusals are one short line.
const MESSAGE_LIMIT: usize = 4096;

/// Rewrites every 4xx/5xx answer that is not JSON as `{"error", "code"}` (keeping its status
/// and headers such as `Allow`), whichever layer made it.
pub async fn json_errors(req: Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MESSAGE_LIMIT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => "BAD_REQUEST",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::REQUEST_TIMEOUT => "TIMEOUT",
        StatusCode::PAYLOAD_TOO_LARGE => "TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::UNPROCESSABLE_ENTITY => "INVALID_BODY",
        s if s.is_server_error() => "INTERNAL",
        _ => "REFUSED",
    };
    let message = match (status, text.is_empty()) {
        (StatusCode::METHOD_NOT_ALLOWED, _) => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none");
            format!("{method} is not allowed on {path} (allowed: {allowed})")
        }
        (_, false) => text,
        (_, true) => format!(
            "{method} {path}: {}",
            status.canonical_reason().unwrap_or("refused")
        ),
    };
    let json = AppError::new(status, code, message).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, json.into_body())
}
