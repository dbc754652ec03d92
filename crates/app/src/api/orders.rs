//! Outward orders: ingestion, the read model, search, and allocation on demand.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use oms_domain::access::Permission;
use oms_domain::order::OrderStatus;
use oms_store::orders;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::{money, page_limit};
use crate::auth::Scope;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult, retrying};
use crate::extract::{ApiJson, ApiPath, ApiQuery, path_code};
use crate::fields::Fields;
use crate::service::allocate::{self, PassSummary};
use crate::service::fulfilment;
use crate::service::orders::{self as service, OrderView};

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct OrderBody {
    order_code: String,
    /// B2C, SO, ST or RTO.
    kind: String,
    channel: String,
    /// BLOCK_COMPLETE, MULTI_SHIPMENT_PARTIAL or SINGLE_SHIPMENT_PARTIAL.
    fulfilment_type: String,
    /// AUTO (default) or NONE.
    retry: Option<String>,
    /// RFC 3339: when the order must leave the warehouse.
    dispatch_by: Option<String>,
    /// -1000 to 1000; higher goes first among equal SLAs.
    priority: Option<i64>,
    /// The warehouse it ships from: required for SO, ST and RTO.
    warehouse: Option<String>,
    /// Where a stock transfer goes.
    destination_warehouse: Option<String>,
    /// GOOD (default) or BAD (RTO only).
    stock: Option<String>,
    ship_to: Option<ShipToBody>,
    lines: Vec<OrderLineBody>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct ShipToBody {
    name: String,
    address: String,
    pincode: String,
    phone: Option<String>,
    email: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct OrderLineBody {
    line_id: String,
    sku: String,
    qty: i64,
    price: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShipToOut {
    pub name: Option<String>,
    pub address: Option<String>,
    pub pincode: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderLineOut {
    pub line_id: String,
    pub sku: String,
    pub ordered: i64,
    pub allocated: i64,
    pub shipped: i64,
    pub cancelled: i64,
    pub open: i64,
    pub price: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentLineOut {
    pub line_id: String,
    pub sku: String,
    pub qty: i64,
    /// The pool (or BAD:<reason>) the units were bound from.
    pub pool: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentOut {
    pub shipment_id: i64,
    pub warehouse: String,
    /// RELEASED, PICKED, PACKED, SHIPPED, DELIVERED, CANCELLED or RTO.
    pub status: String,
    pub awb: Option<String>,
    pub carrier: Option<String>,
    pub lines: Vec<ShipmentLineOut>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    pub id: i64,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub event_type: String,
    pub at: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<oms_store::orders::EventRow> for EventOut {
    fn from(event: oms_store::orders::EventRow) -> Self {
        EventOut {
            id: event.id,
            event_type: event.event_type,
            at: rfc3339(event.at),
            data: serde_json::from_str(&event.data).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RemarkOut {
    pub id: i64,
    pub text: String,
    /// Who wrote it last: `key:<id>:<name>` or `operator`.
    pub author: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderOut {
    pub order_code: String,
    pub kind: String,
    pub channel: String,
    pub fulfilment_type: String,
    pub retry: String,
    pub dispatch_by: Option<String>,
    pub priority: i64,
    pub warehouse: Option<String>,
    pub destination_warehouse: Option<String>,
    pub stock: String,
    pub ship_to: Option<ShipToOut>,
    /// CREATED, UNFULFILLABLE, PARTIALLY_ALLOCATED, ALLOCATED, RELEASED, PARTIALLY_SHIPPED,
    /// SHIPPED, DELIVERED or CANCELLED.
    pub status: String,
    pub lines: Vec<OrderLineOut>,
    pub shipments: Vec<ShipmentOut>,
    /// The latest allocation attempt: warehouses considered and the outcome, in words.
    #[schema(value_type = Object)]
    pub allocation_trace: serde_json::Value,
    pub allocation_attempts: i64,
    pub remarks: Vec<RemarkOut>,
    pub events: Vec<EventOut>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<OrderView> for OrderOut {
    fn from(view: OrderView) -> Self {
        let order = view.order;
        let record = order.record;
        let ship_to = record.ship_name.is_some().then_some(ShipToOut {
            name: record.ship_name,
            address: record.ship_address,
            pincode: record.ship_pincode,
            phone: record.ship_phone,
            email: record.ship_email,
            lat: record.ship_lat,
            lon: record.ship_lon,
        });
        let shipments = view
            .shipments
            .into_iter()
            .map(|s| ShipmentOut {
                shipment_id: s.id,
                warehouse: s.warehouse,
                status: s.status,
                awb: s.awb,
                carrier: s.carrier,
                lines: view
                    .allocations
                    .iter()
                    .filter(|a| a.shipment_id == s.id)
                    .map(|a| ShipmentLineOut {
                        line_id: a.line_id.clone(),
                        sku: a.sku.clone(),
                        qty: a.qty,
                        pool: a.bucket.clone(),
                    })
                    .collect(),
                created_at: rfc3339(s.created_at),
                updated_at: rfc3339(s.updated_at),
            })
            .collect();
        OrderOut {
            order_code: record.order_code,
            kind: record.kind,
            channel: order.channel,
            fulfilment_type: record.fulfilment_type,
            retry: record.retry,
            dispatch_by: record.dispatch_by.map(rfc3339),
            priority: record.priority,
            warehouse: order.warehouse,
            destination_warehouse: order.destination_warehouse,
            stock: record.stock,
            ship_to,
            status: order.status,
            lines: view
                .lines
                .into_iter()
                .map(|l| OrderLineOut {
                    open: l.open(),
                    line_id: l.line_id,
                    sku: l.sku,
                    ordered: l.ordered,
                    allocated: l.allocated,
                    shipped: l.shipped,
                    cancelled: l.cancelled,
                    price: l.price_minor.map(money),
                })
                .collect(),
            shipments,
            allocation_trace: service::trace_json(order.allocation_trace.as_deref()),
            allocation_attempts: order.attempts,
            remarks: view
                .remarks
                .into_iter()
                .map(|r| RemarkOut {
                    id: r.id,
                    text: r.text,
                    author: r.author,
                    created_at: rfc3339(r.created_at),
                    updated_at: rfc3339(r.updated_at),
                })
                .collect(),
            events: view.events.into_iter().map(EventOut::from).collect(),
            created_at: rfc3339(order.created_at),
            updated_at: rfc3339(order.updated_at),
        }
    }
}

/// Takes an order in and allocates it at once. The same body again answers 200 with the
/// stored order; a different body under the same (channel, order_code) is 409.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    request_body = OrderBody,
    responses((status = 201, body = OrderOut), (status = 200, body = OrderOut, description = "the same order again"),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_order(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<OrderOut>)> {
    scope.require(Permission::WriteMasters)?;
    let fields = Fields::from_json(&body).map_err(ApiError::invalid)?;
    let (view, created) = service::create(&state.intake, &scope, &fields).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view.into())))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChannelQuery {
    /// Needed only when the client has this order code in more than one channel.
    pub channel: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/orders/{order_code}", tag = "orders", security(("bearer" = [])),
    params(("order_code" = String, Path), ChannelQuery),
    responses((status = 200, body = OrderOut), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "the code is in several channels")))]
pub async fn get_order(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiQuery(query): ApiQuery<ChannelQuery>,
) -> ApiResult<Json<OrderOut>> {
    scope.require(Permission::Read)?;
    let code = path_code("order_code", &code)?;
    let channel = query.channel.unwrap_or_default();
    Ok(Json(
        service::get(&state.store, scope.client, code.as_str(), &channel)
            .await?
            .into(),
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderSearchQuery {
    pub status: Option<String>,
    pub channel: Option<String>,
    /// Part of the order code, the customer's name, phone or e-mail, in any case.
    pub q: Option<String>,
    /// 1 to 500 (50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderSummary {
    pub order_code: String,
    pub channel: String,
    pub kind: String,
    pub status: String,
    pub customer: Option<String>,
    pub phone: Option<String>,
    pub dispatch_by: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<OrderSummary>,
    pub next_cursor: Option<String>,
}

/// Orders newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    params(OrderSearchQuery), responses((status = 200, body = OrderPage)))]
pub async fn search_orders(
    State(state): State<AppState>,
    scope: Scope,
    ApiQuery(query): ApiQuery<OrderSearchQuery>,
) -> ApiResult<Json<OrderPage>> {
    scope.require(Permission::Read)?;
    let limit = page_limit(query.limit)?;
    let status = query.status.unwrap_or_default();
    if !status.is_empty() && OrderStatus::parse(&status).is_none() {
        return Err(ApiError::invalid_field(
            "status",
            format!("{status} is not an order status"),
        ));
    }
    let before = match query.cursor.as_deref() {
        None | Some("") => 0,
        Some(cursor) => cursor
            .parse::<i64>()
            .map_err(|_| ApiError::invalid_field("cursor", "is not a cursor this API gave"))?,
    };
    let mut rows = orders::search(
        state.store.pool(),
        scope.client,
        &status,
        query.channel.as_deref().unwrap_or(""),
        query.q.as_deref().unwrap_or(""),
        before,
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = if more {
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(Json(OrderPage {
        items: rows
            .into_iter()
            .map(|o| OrderSummary {
                order_code: o.record.order_code,
                channel: o.channel,
                kind: o.record.kind,
                status: o.status,
                customer: o.record.ship_name,
                phone: o.record.ship_phone,
                dispatch_by: o.record.dispatch_by.map(rfc3339),
                created_at: rfc3339(o.created_at),
            })
            .collect(),
        next_cursor,
    }))
}

/// Tries to allocate the order's open quantity now, whatever its retry setting.
#[utoipa::path(post, path = "/api/v1/orders/{order_code}/allocate", tag = "orders", security(("bearer" = [])),
    params(("order_code" = String, Path), ChannelQuery),
    responses((status = 200, body = OrderOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn allocate_order(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiQuery(query): ApiQuery<ChannelQuery>,
) -> ApiResult<Json<OrderOut>> {
    scope.require(Permission::ActOnOrders)?;
    let code = path_code("order_code", &code)?;
    let channel = query.channel.unwrap_or_default();
    Ok(Json(
        service::allocate_one(&state.store, &scope, code.as_str(), &channel)
            .await?
            .into(),
    ))
}

/// One allocation pass over every open order of the client, in SLA order.
#[utoipa::path(post, path = "/api/v1/allocation/run", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = PassSummary)))]
pub async fn run_allocation(
    State(state): State<AppState>,
    scope: Scope,
) -> ApiResult<Json<PassSummary>> {
    scope.require(Permission::MoveStock)?;
    Ok(Json(
        service::run_pass(
            &state.store,
            scope.client,
            allocate::Scope::AllOpen,
            &scope.actor,
        )
        .await?,
    ))
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct CancelBody {
    /// Lines and quantities to cancel; absent cancels the whole order.
    lines: Option<Vec<CancelLine>>,
    reason: String,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct CancelLine {
    line_id: String,
    qty: i64,
}

/// Seller cancellation of open and not-yet-picked units; freed stock returns to its pool.
#[utoipa::path(post, path = "/api/v1/orders/{order_code}/cancel", tag = "orders", security(("bearer" = [])),
    params(("order_code" = String, Path), ChannelQuery), request_body = CancelBody,
    responses((status = 200, body = OrderOut), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "more than is cancellable, or already picked"),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn cancel_order(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiQuery(query): ApiQuery<ChannelQuery>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<OrderOut>> {
    scope.require(Permission::ActOnOrders)?;
    let code = path_code("order_code", &code)?;
    let fields = Fields::from_json(&body).map_err(ApiError::invalid)?;
    let channel = query.channel.unwrap_or_default();
    let view =
        retrying(|| fulfilment::cancel(&state.store, &scope, code.as_str(), &channel, &fields))
            .await?;
    // Freed units may serve waiting orders.
    state.allocator.wake();
    Ok(Json(view.into()))
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct RemarkBody {
    text: String,
}

#[utoipa::path(post, path = "/api/v1/orders/{order_code}/remarks", tag = "orders", security(("bearer" = [])),
    params(("order_code" = String, Path), ChannelQuery), request_body = RemarkBody,
    responses((status = 201, body = RemarkOut), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn add_remark(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiQuery(query): ApiQuery<ChannelQuery>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<RemarkOut>)> {
    scope.require(Permission::ActOnOrders)?;
    let code = path_code("order_code", &code)?;
    let fields = Fields::from_json(&body).map_err(ApiError::invalid)?;
    let channel = query.channel.unwrap_or_default();
    let (id, text, at) =
        fulfilment::add_remark(&state.store, &scope, code.as_str(), &channel, &fields).await?;
    Ok((
        StatusCode::CREATED,
        Json(RemarkOut {
            id,
            text,
            author: scope.actor.clone(),
            created_at: rfc3339(at),
            updated_at: rfc3339(at),
        }),
    ))
}

#[utoipa::path(put, path = "/api/v1/orders/{order_code}/remarks/{id}", tag = "orders", security(("bearer" = [])),
    params(("order_code" = String, Path), ("id" = i64, Path), ChannelQuery), request_body = RemarkBody,
    responses((status = 200, body = OrderOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn update_remark(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath((code, id)): ApiPath<(String, i64)>,
    ApiQuery(query): ApiQuery<ChannelQuery>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<OrderOut>> {
    scope.require(Permission::ActOnOrders)?;
    let code = path_code("order_code", &code)?;
    let fields = Fields::from_json(&body).map_err(ApiError::invalid)?;
    let channel = query.channel.unwrap_or_default();
    fulfilment::update_remark(&state.store, &scope, code.as_str(), &channel, id, &fields).await?;
    Ok(Json(
        service::get(&state.store, scope.client, code.as_str(), &channel)
            .await?
            .into(),
    ))
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct ShipmentStatusBody {
    /// PICKED, PACKED, SHIPPED, DELIVERED or RTO.
    status: String,
    /// Required with SHIPPED.
    awb: Option<String>,
    /// Required with SHIPPED.
    carrier: Option<String>,
}

/// The WMS reports a shipment's progress. Forward one step at a time; a repeat is a no-op
/// (200); backwards or skipping is 409. SHIPPED takes the stock out; RTO brings it back for
/// QC as an inward B2B return.
#[utoipa::path(post, path = "/api/v1/shipments/{shipment_id}/status", tag = "wms", security(("bearer" = [])),
    params(("shipment_id" = i64, Path)), request_body = ShipmentStatusBody,
    responses((status = 200, body = OrderOut), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn shipment_status(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<OrderOut>> {
    scope.require(Permission::MoveStock)?;
    let fields = Fields::from_json(&body).map_err(ApiError::invalid)?;
    let view = retrying(|| fulfilment::update_shipment(&state.store, &scope, id, &fields)).await?;
    Ok(Json(view.into()))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Event id to start after (0 for the beginning).
    pub after: Option<i64>,
    /// 1 to 500 (50).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventOut>,
    /// Pass as `after` for the next page; absent when there is nothing more now.
    pub next_after: Option<i64>,
}

/// The client's events in order, for a WMS or an integration to pull. Each has a stable id
/// to de-duplicate on.
#[utoipa::path(get, path = "/api/v1/events", tag = "wms", security(("bearer" = [])),
    params(EventsQuery), responses((status = 200, body = EventPage)))]
pub async fn events(
    State(state): State<AppState>,
    scope: Scope,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> ApiResult<Json<EventPage>> {
    scope.require(Permission::Read)?;
    let limit = page_limit(query.limit)?;
    let mut rows = oms_store::fulfilment::events(
        state.store.pool(),
        scope.client,
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
    Ok(Json(EventPage {
        items: rows.into_iter().map(EventOut::from).collect(),
        next_after,
    }))
}
