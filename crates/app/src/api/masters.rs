//! A client's masters: channels, SKUs, suppliers and customers. Create-or-update by code
//! (`PUT`, 201 created / 200 updated), get, and list with search and cursor.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use oms_domain::access::Permission;
use oms_domain::masters::PartnerKind;
use oms_store::channels::{self, ChannelRow};
use oms_store::partners::{self, PartnerRow};
use oms_store::skus::{self, SkuRow};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::warehouses::put_status;
use crate::api::{ListQuery, Page, money};
use crate::auth::Scope;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, path_code};
use crate::fields::Fields;
use crate::service;

type Put<T> = ApiResult<(StatusCode, Json<T>)>;

fn body_fields(body: &serde_json::Value) -> ApiResult<Fields> {
    Fields::from_json(body).map_err(ApiError::invalid)
}

// ---------- channels ----------

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct ChannelBody {
    name: String,
    /// MARKETPLACE, WEBSITE or B2B.
    #[schema(rename = "type")]
    kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelOut {
    pub code: String,
    pub name: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<ChannelRow> for ChannelOut {
    fn from(row: ChannelRow) -> Self {
        ChannelOut {
            code: row.code,
            name: row.name,
            kind: row.kind,
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        }
    }
}

#[utoipa::path(put, path = "/api/v1/channels/{code}", tag = "masters", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = ChannelBody,
    responses((status = 201, body = ChannelOut), (status = 200, body = ChannelOut),
        (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn put_channel(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Put<ChannelOut> {
    scope.require(Permission::WriteMasters)?;
    let code = path_code("code", &code)?;
    let (row, created) =
        service::put_channel(&state.store, scope.client, &code, &body_fields(&body)?).await?;
    Ok((put_status(created), Json(row.into())))
}

#[utoipa::path(get, path = "/api/v1/channels/{code}", tag = "masters", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 200, body = ChannelOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_channel(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<ChannelOut>> {
    scope.require(Permission::Read)?;
    let code = path_code("code", &code)?;
    channels::find(state.store.pool(), scope.client, code.as_str())
        .await?
        .map(|row| Json(row.into()))
        .ok_or_else(|| ApiError::NotFound(format!("channel {code}")))
}

#[utoipa::path(get, path = "/api/v1/channels", tag = "masters", security(("bearer" = [])),
    params(ListQuery), responses((status = 200, body = Page<ChannelOut>)))]
pub async fn list_channels(
    State(state): State<AppState>,
    scope: Scope,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<ChannelOut>>> {
    scope.require(Permission::Read)?;
    let limit = query.limit()?;
    let rows = channels::list(state.store.pool(), scope.client, query.after(), limit + 1).await?;
    Ok(Json(Page::of(rows, limit, |r| &r.code, ChannelOut::from)))
}

// ---------- SKUs ----------

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct SkuBody {
    name: String,
    /// At most two decimals.
    mrp: f64,
    /// Selling price, at most `mrp`.
    price: Option<f64>,
    /// Percent, 0 to 100, at most two decimals.
    tax_rate: Option<f64>,
    /// 4 to 8 digits.
    hsn: Option<String>,
    weight_grams: Option<i64>,
    /// Checked against the client's SKU attribute settings.
    #[schema(value_type = Object)]
    attributes: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SkuOut {
    pub code: String,
    pub name: String,
    pub mrp: f64,
    pub price: Option<f64>,
    pub tax_rate: Option<f64>,
    pub hsn: Option<String>,
    pub weight_grams: Option<i64>,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

impl From<SkuRow> for SkuOut {
    fn from(row: SkuRow) -> Self {
        SkuOut {
            code: row.code,
            name: row.name,
            mrp: money(row.mrp_minor),
            price: row.price_minor.map(money),
            tax_rate: row.tax_rate_bp.map(money),
            hsn: row.hsn,
            weight_grams: row.weight_grams,
            attributes: serde_json::from_str(&row.attributes).unwrap_or_default(),
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        }
    }
}

#[utoipa::path(put, path = "/api/v1/skus/{code}", tag = "masters", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = SkuBody,
    responses((status = 201, body = SkuOut), (status = 200, body = SkuOut),
        (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn put_sku(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Put<SkuOut> {
    scope.require(Permission::WriteMasters)?;
    let code = path_code("code", &code)?;
    let (row, created) =
        service::put_sku(&state.store, scope.client, &code, &body_fields(&body)?).await?;
    Ok((put_status(created), Json(row.into())))
}

#[utoipa::path(get, path = "/api/v1/skus/{code}", tag = "masters", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 200, body = SkuOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_sku(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<SkuOut>> {
    scope.require(Permission::Read)?;
    let code = path_code("code", &code)?;
    skus::find(state.store.pool(), scope.client, code.as_str())
        .await?
        .map(|row| Json(row.into()))
        .ok_or_else(|| ApiError::NotFound(format!("sku {code}")))
}

#[utoipa::path(get, path = "/api/v1/skus", tag = "masters", security(("bearer" = [])),
    params(ListQuery), responses((status = 200, body = Page<SkuOut>)))]
pub async fn list_skus(
    State(state): State<AppState>,
    scope: Scope,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<SkuOut>>> {
    scope.require(Permission::Read)?;
    let limit = query.limit()?;
    let rows = skus::list(
        state.store.pool(),
        scope.client,
        query.q(),
        query.after(),
        limit + 1,
    )
    .await?;
    Ok(Json(Page::of(rows, limit, |r| &r.code, SkuOut::from)))
}

// ---------- suppliers and customers ----------

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct PartnerBody {
    name: String,
    address: Option<String>,
    pincode: Option<String>,
    /// 15 letters and digits.
    gstin: Option<String>,
    phone: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerOut {
    pub code: String,
    pub name: String,
    pub address: Option<String>,
    pub pincode: Option<String>,
    pub gstin: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<PartnerRow> for PartnerOut {
    fn from(row: PartnerRow) -> Self {
        PartnerOut {
            code: row.code,
            name: row.name,
            address: row.address,
            pincode: row.pincode,
            gstin: row.gstin,
            phone: row.phone,
            email: row.email,
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        }
    }
}

fn partner_name(kind: PartnerKind) -> &'static str {
    match kind {
        PartnerKind::Supplier => "supplier",
        PartnerKind::Customer => "customer",
    }
}

async fn put_partner(
    state: AppState,
    scope: Scope,
    kind: PartnerKind,
    code: String,
    body: serde_json::Value,
) -> Put<PartnerOut> {
    scope.require(Permission::WriteMasters)?;
    let code = path_code("code", &code)?;
    let (row, created) = service::put_partner(
        &state.store,
        scope.client,
        kind,
        &code,
        &body_fields(&body)?,
    )
    .await?;
    Ok((put_status(created), Json(row.into())))
}

async fn get_partner(
    state: AppState,
    scope: Scope,
    kind: PartnerKind,
    code: String,
) -> ApiResult<Json<PartnerOut>> {
    scope.require(Permission::Read)?;
    let code = path_code("code", &code)?;
    partners::find(state.store.pool(), scope.client, kind, code.as_str())
        .await?
        .map(|row| Json(row.into()))
        .ok_or_else(|| ApiError::NotFound(format!("{} {code}", partner_name(kind))))
}

async fn list_partners(
    state: AppState,
    scope: Scope,
    kind: PartnerKind,
    query: ListQuery,
) -> ApiResult<Json<Page<PartnerOut>>> {
    scope.require(Permission::Read)?;
    let limit = query.limit()?;
    let rows = partners::list(
        state.store.pool(),
        scope.client,
        kind,
        query.q(),
        query.after(),
        limit + 1,
    )
    .await?;
    Ok(Json(Page::of(rows, limit, |r| &r.code, PartnerOut::from)))
}

#[utoipa::path(put, path = "/api/v1/suppliers/{code}", tag = "masters", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = PartnerBody,
    responses((status = 201, body = PartnerOut), (status = 200, body = PartnerOut),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn put_supplier(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Put<PartnerOut> {
    put_partner(state, scope, PartnerKind::Supplier, code, body).await
}

#[utoipa::path(get, path = "/api/v1/suppliers/{code}", tag = "masters", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 200, body = PartnerOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_supplier(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<PartnerOut>> {
    get_partner(state, scope, PartnerKind::Supplier, code).await
}

#[utoipa::path(get, path = "/api/v1/suppliers", tag = "masters", security(("bearer" = [])),
    params(ListQuery), responses((status = 200, body = Page<PartnerOut>)))]
pub async fn list_suppliers(
    State(state): State<AppState>,
    scope: Scope,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<PartnerOut>>> {
    list_partners(state, scope, PartnerKind::Supplier, query).await
}

#[utoipa::path(put, path = "/api/v1/customers/{code}", tag = "masters", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = PartnerBody,
    responses((status = 201, body = PartnerOut), (status = 200, body = PartnerOut),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn put_customer(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Put<PartnerOut> {
    put_partner(state, scope, PartnerKind::Customer, code, body).await
}

#[utoipa::path(get, path = "/api/v1/customers/{code}", tag = "masters", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 200, body = PartnerOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_customer(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<PartnerOut>> {
    get_partner(state, scope, PartnerKind::Customer, code).await
}

#[utoipa::path(get, path = "/api/v1/customers", tag = "masters", security(("bearer" = [])),
    params(ListQuery), responses((status = 200, body = Page<PartnerOut>)))]
pub async fn list_customers(
    State(state): State<AppState>,
    scope: Scope,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<PartnerOut>>> {
    list_partners(state, scope, PartnerKind::Customer, query).await
}
