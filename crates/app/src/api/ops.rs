//! Operations: health and metrics.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// 200 when the database answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the database answers"), (status = 503, body = crate::error::ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> ApiResult<&'static str> {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok("ok\n")
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus metrics", content_type = "text/plain")))]
pub async fn metrics() -> impl IntoResponse {
    let text = crate::telemetry::prometheus()
        .map(|handle| handle.render())
        .unwrap_or_default();
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
