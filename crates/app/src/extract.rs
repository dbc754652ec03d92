//! Extractors whose rejections speak the API's error shape: malformed JSON is 400, a body of
//! the wrong shape 422, never axum's plain-text answers.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use oms_domain::code::Code;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::invalid_field("body", e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(e.body_text()),
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        JsonRejection::BytesRejection(e)
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiError::PayloadTooLarge("the body is too large".into())
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|e: PathRejection| ApiError::BadRequest(e.body_text()))
    }
}

pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(has_encoded_control_character) {
            return Err(ApiError::invalid_field(
                "query",
                "must not contain control characters",
            ));
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|e: QueryRejection| ApiError::invalid_field("query", e.body_text()))
    }
}

/// Whether a raw query string encodes a control character (`%00`–`%1F`, `%7F`): no filter
/// or cursor holds one, and PostgreSQL cannot even store a NUL.
fn has_encoded_control_character(query: &str) -> bool {
    query.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1].to_ascii_uppercase(), w[2].to_ascii_uppercase()),
                (b'0' | b'1', b'0'..=b'9' | b'A'..=b'F') | (b'7', b'F')
            )
    })
}

/// A code taken from the path: refused with 422 when it is not a valid code.
pub fn path_code(field: &str, text: &str) -> Result<Code, ApiError> {
    Code::parse(text).map_err(|message| ApiError::invalid_field(field, message))
}

#[cfg(test)]
mod tests {
    #[test]
    fn encoded_control_characters_are_spotted() {
        assert!(super::has_encoded_control_character("q=%00"));
        assert!(super::has_encoded_control_character("q=a%1fb"));
        assert!(super::has_encoded_control_character("q=%7F"));
        assert!(!super::has_encoded_control_character("q=%20a%2Fb&limit=5"));
    }
}
