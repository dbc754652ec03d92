//! One error type for every edge: a status and the JSON error shape, internals logged and
//! never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use oms_domain::validation::FieldError;
use oms_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Missing, or another client's: the two answer alike.
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request took longer than the server allows (a slow body, a stuck client).
    #[error("{0}")]
    Timeout(String),
    /// Field-level problems of a JSON body.
    #[error("{message}")]
    Invalid {
        message: String,
        details: Vec<FieldError>,
    },
    /// Row-level problems of an upload; nothing was written.
    #[error("{message}")]
    InvalidRows {
        message: String,
        details: Vec<RowError>,
    },
    /// The database aborted the transaction (serialization failure, deadlock): nothing was
    /// written; `retrying` runs such a use case again.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The database is unreachable or restarting. Answered 503 like `Unavailable`, but never
    /// run again here: a COMMIT whose answer was lost may have been applied. The client
    /// decides (order intake is idempotent, so sending the same order again is safe).
    #[error("the database is unavailable, retry shortly: {0}")]
    DatabaseUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// One bad cell (or row, or header) of an uploaded file. Rows count the header as row 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowError {
    pub row: u64,
    pub column: String,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code such as `validation_failed` or `not_found`.
    pub code: &'static str,
    pub message: String,
    /// Per-field (`{field, message}`) or per-row (`{row, column, message}`) problems.
    #[schema(value_type = Vec<Object>)]
    pub details: serde_json::Value,
}

impl ApiError {
    pub fn invalid(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        ApiError::Invalid { message, details }
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::invalid(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Invalid { .. } | ApiError::InvalidRows { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
            }
            ApiError::Unavailable(_) | ApiError::DatabaseUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::Insufficient { bucket, requested } => ApiError::Conflict(format!(
                "{bucket} holds less than {requested}: the stock changed, retry"
            )),
            StoreError::Retry(message) => ApiError::Unavailable(message),
            StoreError::Unavailable(message) => ApiError::DatabaseUnavailable(message),
            StoreError::InvalidText(_) => ApiError::invalid_field(
                "input",
                "holds characters that cannot be stored (such as a NUL byte)",
            ),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let (message, details) = match self {
            ApiError::Invalid { message, details } => (message, serde_json::json!(details)),
            ApiError::InvalidRows { message, details } => (message, serde_json::json!(details)),
            ApiError::Internal(internal) => {
                // The cause stays in the log; the caller learns only that it was ours.
                tracing::error!(error = %internal, "internal error");
                ("internal error".to_owned(), serde_json::json!([]))
            }
            other => (other.to_string(), serde_json::json!([])),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                details,
            },
        };
        (status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Whole-transaction attempts for a write PostgreSQL aborted for a serialization failure
/// or a deadlock (DESIGN §3): the transaction rolled back, so running it again is safe.
pub const TRANSACTION_ATTEMPTS_MAX: u32 = 4;

/// Runs a use case that opens and commits its own transaction, again when the database
/// aborted it for a serialization failure or deadlock (answered 503 after the last try).
pub async fn retrying<T, F, Fut>(mut attempt: F) -> ApiResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ApiResult<T>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(ApiError::Unavailable(reason)) if tries < TRANSACTION_ATTEMPTS_MAX => {
                tracing::debug!(%reason, tries, "transaction aborted by the database; running it again");
                tokio::time::sleep(std::time::Duration::from_millis(5 * u64::from(tries))).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn an_aborted_transaction_is_run_again_and_other_errors_are_not() {
        let calls = AtomicU32::new(0);
        let answer = retrying(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(ApiError::Unavailable("deadlock detected".into()))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(answer.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let answer: ApiResult<()> = retrying(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ApiError::Unavailable("could not serialize access".into()))
        })
        .await;
        assert!(matches!(answer, Err(ApiError::Unavailable(_))));
        assert_eq!(calls.load(Ordering::SeqCst), TRANSACTION_ATTEMPTS_MAX);

        let calls = AtomicU32::new(0);
        let answer: ApiResult<()> = retrying(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ApiError::Conflict("different body".into()))
        })
        .await;
        assert!(matches!(answer, Err(ApiError::Conflict(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_database_outage_answers_503_and_the_write_is_not_run_again() {
        let calls = AtomicU32::new(0);
        let answer: ApiResult<()> = retrying(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ApiError::from(StoreError::Unavailable(
                "connection refused".into(),
            )))
        })
        .await;
        let error = answer.expect_err("an outage is an error");
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        // A COMMIT whose answer was lost may have been applied: never run again here.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
