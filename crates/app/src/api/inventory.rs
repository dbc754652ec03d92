//! Inventory: buckets by warehouse and SKU, the ledger, counts, lost and found, pools and
//! pool movements.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use oms_domain::access::Permission;
use oms_domain::inventory::{Balance, COMMON};
use oms_store::{pools, stock};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::page_limit;
use crate::api::warehouses::put_status;
use crate::auth::Scope;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult, retrying};
use crate::extract::{ApiJson, ApiPath, ApiQuery, path_code};
use crate::fields::Fields;
use crate::service::stock as service;

pub use crate::service::stock::{InventoryOut, PoolStockOut, inventory_out};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InventoryQuery {
    /// One SKU code.
    pub sku: Option<String>,
    /// One warehouse code.
    pub warehouse: Option<String>,
    /// SKUs per page, 1 to 500 (50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryPage {
    pub items: Vec<InventoryOut>,
    pub next_cursor: Option<String>,
}

/// Stock by SKU and warehouse, in SKU order; a page holds every warehouse of its SKUs.
#[utoipa::path(get, path = "/api/v1/inventory", tag = "inventory", security(("bearer" = [])),
    params(InventoryQuery), responses((status = 200, body = InventoryPage)))]
pub async fn get_inventory(
    State(state): State<AppState>,
    scope: Scope,
    ApiQuery(query): ApiQuery<InventoryQuery>,
) -> ApiResult<Json<InventoryPage>> {
    scope.require(Permission::Read)?;
    let limit = page_limit(query.limit)?;
    let (rows, more) = stock::page(
        state.store.pool(),
        scope.client,
        query.sku.as_deref().unwrap_or(""),
        query.warehouse.as_deref().unwrap_or(""),
        query.cursor.as_deref().unwrap_or(""),
        limit,
    )
    .await?;
    let rows = service::inventory_rows(rows);
    let next_cursor = if more {
        rows.last().map(|r| r.sku.clone())
    } else {
        None
    };
    Ok(Json(InventoryPage {
        items: rows
            .into_iter()
            .map(|r| inventory_out(r.warehouse, r.sku, &r.balance))
            .collect(),
        next_cursor,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerOut {
    pub id: i64,
    pub warehouse: String,
    pub sku: String,
    pub from_bucket: String,
    pub to_bucket: String,
    pub qty: i64,
    /// GRN, QC_PASS, QC_FAIL, LOST_IN_QC, MARK_LOST, FOUND, ABSOLUTE_ADJUSTMENT, POOL_MOVE, …
    pub kind: String,
    /// The document that caused it.
    pub reference: String,
    pub note: Option<String>,
    pub actor: String,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerPage {
    pub items: Vec<LedgerOut>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    pub sku: Option<String>,
    pub warehouse: Option<String>,
    /// Ledger id to start after (0 for the beginning).
    pub after: Option<i64>,
    /// 1 to 500 (50).
    pub limit: Option<i64>,
}

/// Ledger rows, oldest first: every movement that made the numbers.
#[utoipa::path(get, path = "/api/v1/inventory/ledger", tag = "inventory", security(("bearer" = [])),
    params(LedgerQuery), responses((status = 200, body = LedgerPage)))]
pub async fn get_ledger(
    State(state): State<AppState>,
    scope: Scope,
    ApiQuery(query): ApiQuery<LedgerQuery>,
) -> ApiResult<Json<LedgerPage>> {
    scope.require(Permission::Read)?;
    let limit = page_limit(query.limit)?;
    let mut rows = stock::ledger(
        state.store.pool(),
        scope.client,
        query.sku.as_deref().unwrap_or(""),
        query.warehouse.as_deref().unwrap_or(""),
        query.after.unwrap_or(0),
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_after = if more {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Json(LedgerPage {
        items: rows
            .into_iter()
            .map(|r| LedgerOut {
                id: r.id,
                warehouse: r.warehouse,
                sku: r.sku,
                from_bucket: r.from_bucket,
                to_bucket: r.to_bucket,
                qty: r.qty,
                kind: r.kind,
                reference: r.reference,
                note: r.note,
                actor: r.actor,
                at: rfc3339(r.at),
            })
            .collect(),
        next_after,
    }))
}

fn fields_of(body: &serde_json::Value) -> ApiResult<Fields> {
    Fields::from_json(body).map_err(ApiError::invalid)
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct AbsoluteBody {
    warehouse: String,
    items: Vec<AbsoluteItem>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct AbsoluteItem {
    sku: String,
    /// Counted good units.
    good: i64,
}

/// Counted good stock from an external WMS. The difference is booked as adjustments; a
/// count below allocated is refused whole (422) and nothing is written.
#[utoipa::path(post, path = "/api/v1/inventory/absolute", tag = "inventory", security(("bearer" = [])),
    request_body = AbsoluteBody,
    responses((status = 200, body = Vec<InventoryOut>), (status = 422, body = crate::error::ErrorBody)))]
pub async fn absolute(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<Vec<InventoryOut>>> {
    scope.require(Permission::MoveStock)?;
    let fields = fields_of(&body)?;
    let warehouse = fields.get("warehouse").unwrap_or_default();
    let after = retrying(|| service::absolute(&state.store, &scope, &fields)).await?;
    state.allocator.wake();
    Ok(Json(
        after
            .into_iter()
            .map(|(sku, balance)| inventory_out(warehouse.clone(), sku, &balance))
            .collect(),
    ))
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct LostBody {
    warehouse: String,
    sku: String,
    qty: i64,
    reason: String,
    /// The pool the units leave (COMMON when absent); only available units.
    pool: Option<String>,
}

fn answer_balance(fields: &Fields, balance: Balance) -> Json<InventoryOut> {
    Json(inventory_out(
        fields.get("warehouse").unwrap_or_default(),
        fields.get("sku").unwrap_or_default(),
        &balance,
    ))
}

/// Writes available units off as lost; more than available is 409.
#[utoipa::path(post, path = "/api/v1/inventory/lost", tag = "inventory", security(("bearer" = [])),
    request_body = LostBody,
    responses((status = 200, body = InventoryOut), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn lost(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<InventoryOut>> {
    scope.require(Permission::MoveStock)?;
    let fields = fields_of(&body)?;
    let balance = retrying(|| service::mark_lost(&state.store, &scope, &fields)).await?;
    Ok(answer_balance(&fields, balance))
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct FoundBody {
    warehouse: String,
    sku: String,
    qty: i64,
    reason: String,
}

/// Brings lost units back as available in COMMON; more than lost is 409.
#[utoipa::path(post, path = "/api/v1/inventory/found", tag = "inventory", security(("bearer" = [])),
    request_body = FoundBody,
    responses((status = 200, body = InventoryOut), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn found(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<InventoryOut>> {
    scope.require(Permission::MoveStock)?;
    let fields = fields_of(&body)?;
    let balance = retrying(|| service::mark_found(&state.store, &scope, &fields)).await?;
    state.allocator.wake();
    Ok(answer_balance(&fields, balance))
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct PoolMovementBody {
    warehouse: String,
    sku: String,
    from_pool: String,
    to_pool: String,
    qty: i64,
}

/// Moves available units between pools; more than available in `from_pool` is 409.
#[utoipa::path(post, path = "/api/v1/pool-movements", tag = "inventory", security(("bearer" = [])),
    request_body = PoolMovementBody,
    responses((status = 200, body = InventoryOut), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn pool_movement(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<InventoryOut>> {
    scope.require(Permission::MoveStock)?;
    let fields = fields_of(&body)?;
    let balance = retrying(|| service::move_between_pools(&state.store, &scope, &fields)).await?;
    state.allocator.wake();
    Ok(answer_balance(&fields, balance))
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct PoolBody {
    name: String,
    /// Channel codes whose orders draw from this pool before COMMON.
    channels: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolOut {
    pub code: String,
    pub name: String,
    pub channels: Vec<String>,
}

fn pool_out(row: pools::PoolRow) -> PoolOut {
    PoolOut {
        code: row.code,
        name: row.name,
        channels: serde_json::from_str(&row.channels).unwrap_or_default(),
    }
}

fn common_pool() -> PoolOut {
    PoolOut {
        code: COMMON.to_owned(),
        name: "Common".to_owned(),
        channels: Vec::new(),
    }
}

#[utoipa::path(put, path = "/api/v1/pools/{code}", tag = "inventory", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = PoolBody,
    responses((status = 201, body = PoolOut), (status = 200, body = PoolOut),
        (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn put_pool(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<PoolOut>)> {
    scope.require(Permission::WriteSettings)?;
    let code = path_code("code", &code)?;
    let (row, created) =
        service::put_pool(&state.store, scope.client, &code, &fields_of(&body)?).await?;
    Ok((put_status(created), Json(pool_out(row))))
}

#[utoipa::path(get, path = "/api/v1/pools/{code}", tag = "inventory", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 200, body = PoolOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_pool(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<PoolOut>> {
    scope.require(Permission::Read)?;
    let code = path_code("code", &code)?;
    if code.as_str() == COMMON {
        return Ok(Json(common_pool()));
    }
    pools::find(state.store.pool(), scope.client, code.as_str())
        .await?
        .map(|row| Json(pool_out(row)))
        .ok_or_else(|| ApiError::NotFound(format!("pool {code}")))
}

/// COMMON first, then the named pools in code order.
#[utoipa::path(get, path = "/api/v1/pools", tag = "inventory", security(("bearer" = [])),
    responses((status = 200, body = Vec<PoolOut>)))]
pub async fn list_pools(
    State(state): State<AppState>,
    scope: Scope,
) -> ApiResult<Json<Vec<PoolOut>>> {
    scope.require(Permission::Read)?;
    let rows = pools::list(state.store.pool(), scope.client).await?;
    let mut out = vec![common_pool()];
    out.extend(rows.into_iter().map(pool_out));
    Ok(Json(out))
}
