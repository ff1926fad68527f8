//! The body of `GET /metrics`, for both APIs: the process's metrics in the classic Prometheus
//! text format, or in OpenMetrics when the scraper's `Accept` asks for it.

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use crate::metrics::text;

/// The process's metrics as a response, in the format `headers` ask for. Scrape-time gauges
/// are the caller's to set first.
pub fn response(headers: &HeaderMap) -> Response {
    let open = crate::metrics::global().encode();
    let wants_open = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(text::wants_openmetrics);
    if wants_open {
        (
            [(header::CONTENT_TYPE, text::OPENMETRICS_CONTENT_TYPE)],
            open,
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, text::PROMETHEUS_CONTENT_TYPE)],
            text::prometheus(&open),
        )
            .into_response()
    }
}
