//! Inward orders: create, read, list, GRN, QC, close.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use oms_domain::access::Permission;
use oms_store::inward;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::{ListQuery, Page};
use crate::auth::Scope;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult, retrying};
use crate::extract::{ApiJson, ApiPath, ApiQuery, path_code};
use crate::fields::Fields;
use crate::service::inward::{self as service, InwardView};

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct InwardOrderBody {
    order_code: String,
    /// PO, ST or B2B_RETURN.
    #[schema(rename = "type")]
    kind: String,
    /// A warehouse mapped to the client.
    warehouse: String,
    /// The supplier (PO), source warehouse (ST) or customer (B2B_RETURN).
    party: Option<String>,
    lines: Vec<InwardLineBody>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct InwardLineBody {
    sku: String,
    /// 1 to 1,000,000.
    qty: i64,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct GrnBody {
    lines: Vec<InwardLineBody>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct QcBody {
    lines: Vec<QcLineBody>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct QcLineBody {
    sku: String,
    pass: Option<i64>,
    fail: Option<i64>,
    /// One of the client's QC-fail reasons; required when `fail` > 0.
    fail_reason: Option<String>,
    lost: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InwardOrderOut {
    pub order_code: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub warehouse: String,
    pub party: Option<String>,
    /// OPEN or CLOSED.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
    pub lines: Vec<InwardLineOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InwardLineOut {
    pub sku: String,
    pub ordered: i64,
    pub received: i64,
    pub qc_pass: i64,
    pub qc_fail: i64,
    pub lost: i64,
    /// Received and not yet through QC.
    pub awaiting_qc: i64,
}

impl From<InwardView> for InwardOrderOut {
    fn from(view: InwardView) -> Self {
        let order = view.order;
        InwardOrderOut {
            order_code: order.order_code,
            kind: order.kind,
            warehouse: order.warehouse,
            party: order.party,
            status: order.status,
            created_at: rfc3339(order.created_at),
            updated_at: rfc3339(order.updated_at),
            closed_at: order.closed_at.map(rfc3339),
            lines: view
                .lines
                .into_iter()
                .map(|l| InwardLineOut {
                    sku: l.sku,
                    ordered: l.line.ordered,
                    received: l.line.received,
                    qc_pass: l.line.qc_pass,
                    qc_fail: l.line.qc_fail,
                    lost: l.line.lost,
                    awaiting_qc: l.line.awaiting_qc(),
                })
                .collect(),
        }
    }
}

/// The order without its lines, for lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct InwardOrderSummary {
    pub order_code: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub warehouse: String,
    pub party: Option<String>,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

fn fields_of(body: &serde_json::Value) -> ApiResult<Fields> {
    Fields::from_json(body).map_err(ApiError::invalid)
}

#[utoipa::path(post, path = "/api/v1/inward-orders", tag = "inward", security(("bearer" = [])),
    request_body = InwardOrderBody,
    responses((status = 201, body = InwardOrderOut), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_inward_order(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<InwardOrderOut>)> {
    scope.require(Permission::MoveStock)?;
    let view = service::create(&state.store, scope.client, &fields_of(&body)?).await?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

#[utoipa::path(get, path = "/api/v1/inward-orders/{order_code}", tag = "inward", security(("bearer" = [])),
    params(("order_code" = String, Path)),
    responses((status = 200, body = InwardOrderOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_inward_order(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<InwardOrderOut>> {
    scope.require(Permission::Read)?;
    let code = path_code("order_code", &code)?;
    Ok(Json(
        service::get(&state.store, scope.client, code.as_str())
            .await?
            .into(),
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InwardListQuery {
    /// OPEN or CLOSED.
    pub status: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/inward-orders", tag = "inward", security(("bearer" = [])),
    params(ListQuery, InwardListQuery), responses((status = 200, body = Page<InwardOrderSummary>)))]
pub async fn list_inward_orders(
    State(state): State<AppState>,
    scope: Scope,
    ApiQuery(query): ApiQuery<ListQuery>,
    ApiQuery(filter): ApiQuery<InwardListQuery>,
) -> ApiResult<Json<Page<InwardOrderSummary>>> {
    scope.require(Permission::Read)?;
    let limit = query.limit()?;
    let status = filter.status.unwrap_or_default();
    if !matches!(status.as_str(), "" | "OPEN" | "CLOSED") {
        return Err(ApiError::invalid_field("status", "must be OPEN or CLOSED"));
    }
    let rows = inward::list_orders(
        state.store.pool(),
        scope.client,
        &status,
        query.q(),
        query.after(),
        limit + 1,
    )
    .await?;
    Ok(Json(Page::of(
        rows,
        limit,
        |r| &r.order_code,
        |r| InwardOrderSummary {
            order_code: r.order_code,
            kind: r.kind,
            warehouse: r.warehouse,
            party: r.party,
            status: r.status,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        },
    )))
}

/// Receives goods into QC-pending; over-receipt is 422 unless the client allows excess GRN.
#[utoipa::path(post, path = "/api/v1/inward-orders/{order_code}/grn", tag = "inward", security(("bearer" = [])),
    params(("order_code" = String, Path)), request_body = GrnBody,
    responses((status = 200, body = InwardOrderOut), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn grn(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<InwardOrderOut>> {
    scope.require(Permission::MoveStock)?;
    let code = path_code("order_code", &code)?;
    let fields = fields_of(&body)?;
    let view = retrying(|| service::receive(&state.store, &scope, code.as_str(), &fields)).await?;
    Ok(Json(view.into()))
}

/// Sorts received units: pass → good (COMMON), fail → bad with a reason, lost → lost.
#[utoipa::path(post, path = "/api/v1/inward-orders/{order_code}/qc", tag = "inward", security(("bearer" = [])),
    params(("order_code" = String, Path)), request_body = QcBody,
    responses((status = 200, body = InwardOrderOut), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn qc(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<InwardOrderOut>> {
    scope.require(Permission::MoveStock)?;
    let code = path_code("order_code", &code)?;
    let fields = fields_of(&body)?;
    let view =
        retrying(|| service::quality_check(&state.store, &scope, code.as_str(), &fields)).await?;
    // QC-passed units are new available stock: waiting orders may take them now.
    state.allocator.wake();
    Ok(Json(view.into()))
}

/// Closes the order to further GRN and QC; closing again changes nothing.
#[utoipa::path(post, path = "/api/v1/inward-orders/{order_code}/close", tag = "inward", security(("bearer" = [])),
    params(("order_code" = String, Path)),
    responses((status = 200, body = InwardOrderOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn close(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<InwardOrderOut>> {
    scope.require(Permission::MoveStock)?;
    let code = path_code("order_code", &code)?;
    Ok(Json(
        service::close(&state.store, scope.client, code.as_str())
            .await?
            .into(),
    ))
}
