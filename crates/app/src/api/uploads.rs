//! CSV uploads: `text/csv` (or any raw) body, or `multipart/form-data` with one file.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult, retrying};
use crate::extract::ApiPath;
use crate::upload::{self, UploadKind};

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadOut {
    /// Rows written.
    pub rows: usize,
}

fn kind_of(text: &str) -> ApiResult<UploadKind> {
    UploadKind::parse(text).ok_or_else(|| {
        let kinds: Vec<&str> = UploadKind::ALL.iter().map(|k| k.as_str()).collect();
        ApiError::NotFound(format!(
            "upload kind {text:?} (kinds: {})",
            kinds.join(", ")
        ))
    })
}

/// Validates the whole file first: on any bad row nothing is written and every bad row is
/// listed (`{row, column, message}`, the header is row 1).
#[utoipa::path(post, path = "/api/v1/uploads/{kind}", tag = "uploads", security(("bearer" = [])),
    params(("kind" = String, Path, description = "skus, suppliers, customers, inward-orders, outward-orders, cancellations or pool-movements")),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = UploadOut), (status = 413, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(kind): ApiPath<String>,
    request: Request,
) -> ApiResult<Json<UploadOut>> {
    let kind = kind_of(&kind)?;
    scope.require(kind.permission())?;
    let bytes = file_bytes(request).await?;
    let rows_max = state.limits.upload_rows_max;
    let rows = retrying(|| upload::apply(&state.store, &scope, kind, &bytes, rows_max)).await?;
    if matches!(
        kind,
        upload::UploadKind::PoolMovements | upload::UploadKind::Cancellations
    ) {
        state.allocator.wake();
    }
    Ok(Json(UploadOut { rows }))
}

/// A CSV template: the header row of the kind.
#[utoipa::path(get, path = "/api/v1/uploads/{kind}", tag = "uploads", security(("bearer" = [])),
    params(("kind" = String, Path)),
    responses((status = 200, description = "header row", content_type = "text/csv")))]
pub async fn upload_template(
    _: Scope,
    ApiPath(kind): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let kind = kind_of(&kind)?;
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.csv\"", kind.as_str()),
            ),
        ],
        kind.template(),
    ))
}

async fn file_bytes(request: Request) -> ApiResult<Bytes> {
    let is_multipart = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if is_multipart {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
            if field.file_name().is_some() || field.name() == Some("file") {
                return field.bytes().await.map_err(multipart_error);
            }
        }
        Err(ApiError::BadRequest("the form holds no file".into()))
    } else {
        Bytes::from_request(request, &()).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("the file is too large".into())
            } else {
                ApiError::BadRequest(e.body_text())
            }
        })
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the file is too large".into())
    } else {
        ApiError::BadRequest(e.body_text())
    }
}
