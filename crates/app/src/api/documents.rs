//! Invoice and shipping-label PDFs, per order and per shipment.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use oms_domain::access::Permission;

use crate::AppState;
use crate::api::orders::ChannelQuery;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::extract::{ApiPath, ApiQuery, path_code};
use crate::service::documents::{self as service, Document, Subject};

/// A PDF answer, shown inline by browsers and saved under a telling name.
fn pdf(bytes: Vec<u8>, filename: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

/// An order's invoice or label PDF; the panel serves the same with its session's scope.
pub(crate) async fn order_document(
    state: &AppState,
    scope: &Scope,
    code: &str,
    query: ChannelQuery,
    document: Document,
) -> ApiResult<Response> {
    scope.require(Permission::Read)?;
    let code = path_code("order_code", code)?;
    let channel = query.channel.unwrap_or_default();
    let subject = Subject::Order {
        code: code.as_str(),
        channel: &channel,
    };
    let bytes = service::pdf(&state.store, scope, subject, document).await?;
    let name = match document {
        Document::Invoice => "invoice",
        Document::Label => "label",
    };
    Ok(pdf(bytes, &format!("{name}-{code}.pdf")))
}

/// The tax invoice of every packed shipment of the order, one page (or more) each.
/// 409 while no shipment is packed.
#[utoipa::path(get, path = "/api/v1/orders/{order_code}/invoice.pdf", tag = "documents", security(("bearer" = [])),
    params(("order_code" = String, Path), ChannelQuery),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "no shipment is packed yet")))]
pub async fn order_invoice(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiQuery(query): ApiQuery<ChannelQuery>,
) -> ApiResult<Response> {
    order_document(&state, &scope, &code, query, Document::Invoice).await
}

/// The 4×6 shipping label of every shipment of the order that has an AWB.
#[utoipa::path(get, path = "/api/v1/orders/{order_code}/shipping-label.pdf", tag = "documents", security(("bearer" = [])),
    params(("order_code" = String, Path), ChannelQuery),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "no shipment is packed with an AWB yet")))]
pub async fn order_label(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiQuery(query): ApiQuery<ChannelQuery>,
) -> ApiResult<Response> {
    order_document(&state, &scope, &code, query, Document::Label).await
}

/// One shipment's tax invoice; 409 before it is packed.
#[utoipa::path(get, path = "/api/v1/shipments/{shipment_id}/invoice.pdf", tag = "documents", security(("bearer" = [])),
    params(("shipment_id" = i64, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "not packed yet")))]
pub async fn shipment_invoice(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    scope.require(Permission::Read)?;
    let bytes = service::pdf(
        &state.store,
        &scope,
        Subject::Shipment(id),
        Document::Invoice,
    )
    .await?;
    Ok(pdf(bytes, &format!("invoice-shipment-{id}.pdf")))
}

/// One shipment's 4×6 label; 409 before it is packed with an AWB.
#[utoipa::path(get, path = "/api/v1/shipments/{shipment_id}/shipping-label.pdf", tag = "documents", security(("bearer" = [])),
    params(("shipment_id" = i64, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "not packed, or no AWB yet")))]
pub async fn shipment_label(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    scope.require(Permission::Read)?;
    let bytes = service::pdf(&state.store, &scope, Subject::Shipment(id), Document::Label).await?;
    Ok(pdf(bytes, &format!("label-shipment-{id}.pdf")))
}
