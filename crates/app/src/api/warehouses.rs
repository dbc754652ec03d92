//! Warehouses: the operator creates them and maps them to clients; a client sees the ones
//! mapped to it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use oms_store::warehouses::{self, WarehouseRow};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::clients::find_client;
use crate::api::{ListQuery, Page};
use crate::auth::{Caller, Operator};
use crate::clock::{now_micros, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, path_code};
use crate::fields::Fields;
use crate::service;

/// Documentation of the warehouse body.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct WarehouseBody {
    name: String,
    /// WAREHOUSE or STORE.
    #[schema(rename = "type")]
    kind: String,
    address: Option<String>,
    pincode: String,
    lat: Option<f64>,
    lon: Option<f64>,
    /// Higher is preferred when routing ties; 0 when absent.
    priority: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseOut {
    pub code: String,
    pub name: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub address: Option<String>,
    pub pincode: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub priority: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<WarehouseRow> for WarehouseOut {
    fn from(row: WarehouseRow) -> Self {
        WarehouseOut {
            code: row.code,
            name: row.name,
            kind: row.kind,
            address: row.address,
            pincode: row.pincode,
            lat: row.lat,
            lon: row.lon,
            priority: row.priority,
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        }
    }
}

/// Status for a create-or-update: 201 when created, 200 when updated.
pub fn put_status(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

#[utoipa::path(put, path = "/api/v1/warehouses/{code}", tag = "operator", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = WarehouseBody,
    responses((status = 201, body = WarehouseOut), (status = 200, body = WarehouseOut),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn put_warehouse(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<WarehouseOut>)> {
    let code = path_code("code", &code)?;
    let fields = Fields::from_json(&body).map_err(ApiError::invalid)?;
    let (row, created) = service::put_warehouse(&state.store, &code, &fields).await?;
    Ok((put_status(created), Json(row.into())))
}

/// The operator sees every warehouse; a client only those mapped to it.
#[utoipa::path(get, path = "/api/v1/warehouses/{code}", tag = "masters", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 200, body = WarehouseOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_warehouse(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<WarehouseOut>> {
    let code = path_code("code", &code)?;
    let row = match caller {
        Caller::Operator => warehouses::find(state.store.pool(), code.as_str()).await?,
        Caller::Client { client, .. } => {
            warehouses::find_mapped(state.store.pool(), client, code.as_str()).await?
        }
    };
    row.map(|r| Json(r.into()))
        .ok_or_else(|| ApiError::NotFound(format!("warehouse {code}")))
}

#[utoipa::path(get, path = "/api/v1/warehouses", tag = "masters", security(("bearer" = [])),
    params(ListQuery), responses((status = 200, body = Page<WarehouseOut>)))]
pub async fn list_warehouses(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<WarehouseOut>>> {
    let limit = query.limit()?;
    let rows = match caller {
        Caller::Operator => warehouses::list(state.store.pool(), query.after(), limit + 1).await?,
        Caller::Client { client, .. } => {
            warehouses::list_mapped(state.store.pool(), client, query.after(), limit + 1).await?
        }
    };
    Ok(Json(Page::of(rows, limit, |r| &r.code, WarehouseOut::from)))
}

async fn client_and_warehouse(
    state: &AppState,
    client: &str,
    warehouse: &str,
) -> ApiResult<(oms_store::ClientId, WarehouseRow)> {
    let client = find_client(state, client).await?;
    let code = path_code("warehouse", warehouse)?;
    let warehouse = warehouses::find(state.store.pool(), code.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("warehouse {code}")))?;
    Ok((client.id, warehouse))
}

#[utoipa::path(put, path = "/api/v1/clients/{client}/warehouses/{warehouse}", tag = "operator",
    security(("bearer" = [])), params(("client" = String, Path), ("warehouse" = String, Path)),
    responses((status = 201, body = WarehouseOut, description = "newly mapped"),
        (status = 200, body = WarehouseOut, description = "was mapped already"),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn map_warehouse(
    State(state): State<AppState>,
    _: Operator,
    ApiPath((client, warehouse)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, Json<WarehouseOut>)> {
    let (client, warehouse) = client_and_warehouse(&state, &client, &warehouse).await?;
    let mut tx = state.store.begin_write().await?;
    let created = warehouses::map_to_client(tx.conn(), client, warehouse.id, now_micros()).await?;
    tx.commit().await?;
    Ok((put_status(created), Json(warehouse.into())))
}

#[utoipa::path(delete, path = "/api/v1/clients/{client}/warehouses/{warehouse}", tag = "operator",
    security(("bearer" = [])), params(("client" = String, Path), ("warehouse" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn unmap_warehouse(
    State(state): State<AppState>,
    _: Operator,
    ApiPath((client, warehouse)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let (client, warehouse) = client_and_warehouse(&state, &client, &warehouse).await?;
    let removed = service::unmap_warehouse(&state.store, client, &warehouse).await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "mapping of warehouse {}",
            warehouse.code
        )))
    }
}

#[utoipa::path(get, path = "/api/v1/clients/{client}/warehouses", tag = "operator",
    security(("bearer" = [])), params(("client" = String, Path), ListQuery),
    responses((status = 200, body = Page<WarehouseOut>), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_client_warehouses(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(client): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<WarehouseOut>>> {
    let client = find_client(&state, &client).await?;
    let limit = query.limit()?;
    let rows =
        warehouses::list_mapped(state.store.pool(), client.id, query.after(), limit + 1).await?;
    Ok(Json(Page::of(rows, limit, |r| &r.code, WarehouseOut::from)))
}
