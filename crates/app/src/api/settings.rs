//! The client's settings.

use axum::Json;
use axum::extract::State;
use oms_domain::access::Permission;
use oms_domain::settings::{ClientSettings, SettingsChange};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::service;

/// Documentation of the settings document (the domain's `ClientSettings`).
#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct Settings {
    /// GRN may receive more than the inward line ordered.
    excess_grn_allowed: bool,
    /// The reasons QC may fail a unit for.
    qc_fail_reasons: Vec<String>,
    sku_attributes: Vec<SkuAttributeDoc>,
    routing: RoutingDoc,
    invoicing: InvoicingDoc,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct InvoicingDoc {
    /// The seller's registered name; the client's name when absent.
    legal_name: Option<String>,
    address: Option<String>,
    pincode: Option<String>,
    /// Tax registration (GSTIN).
    gstin: Option<String>,
    /// Printed before the zero-padded number (`INV-` gives `INV-000001`); up to 16 of
    /// letters, digits, `-_./`.
    prefix: Option<String>,
    /// ISO 4217 code printed beside amounts (INR).
    currency: Option<String>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct SkuAttributeDoc {
    name: String,
    /// TEXT, NUMBER or ENUM.
    #[schema(rename = "type")]
    kind: String,
    /// The allowed values of an ENUM.
    values: Option<Vec<String>>,
    required: Option<bool>,
    /// Shown beside order lines in the panel.
    displayed: Option<bool>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct RoutingDoc {
    /// MINIMIZE_SHIPMENTS or MINIMIZE_DISTANCE.
    strategy: String,
    /// 1 to 10 warehouses per order.
    max_splits: u32,
}

#[utoipa::path(get, path = "/api/v1/settings", tag = "settings", security(("bearer" = [])),
    responses((status = 200, body = Settings), (status = 401, body = crate::error::ErrorBody)))]
pub async fn get_settings(
    State(state): State<AppState>,
    scope: Scope,
) -> ApiResult<Json<ClientSettings>> {
    scope.require(Permission::Read)?;
    Ok(Json(service::settings(&state.store, scope.client).await?))
}

/// Changes the settings: fields left out keep their current value; the result is checked whole.
#[utoipa::path(put, path = "/api/v1/settings", tag = "settings", security(("bearer" = [])),
    request_body = Settings,
    responses((status = 200, body = Settings), (status = 403, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn put_settings(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(change): ApiJson<SettingsChange>,
) -> ApiResult<Json<ClientSettings>> {
    scope.require(Permission::WriteSettings)?;
    Ok(Json(
        service::change_settings(&state.store, scope.client, change).await?,
    ))
}
