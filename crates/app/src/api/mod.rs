//! The JSON API under `/api/v1`, one module per resource. The router is assembled from the
//! same annotated handlers that the OpenAPI document is generated from, so the two cannot
//! drift apart.

pub mod clients;
pub mod documents;
pub mod exports;
pub mod inventory;
pub mod inward;
pub mod masters;
pub mod ops;
pub mod orders;
pub mod panel_users;
pub mod settings;
pub mod uploads;
pub mod warehouses;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use serde::{Deserialize, Serialize};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

#[derive(OpenApi)]
#[openapi(
    info(title = "OMS API", version = "1", description = "Order management: inventory, orders, allocation, fulfilment."),
    modifiers(&BearerAuth),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The routes and the OpenAPI document built from them.
fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(clients::create_client, clients::list_clients))
        .routes(routes!(clients::get_client))
        .routes(routes!(clients::create_api_key, clients::list_api_keys))
        .routes(routes!(clients::revoke_api_key))
        .routes(routes!(
            panel_users::create_panel_user,
            panel_users::list_panel_users
        ))
        .routes(routes!(panel_users::disable_panel_user))
        .routes(routes!(
            warehouses::put_warehouse,
            warehouses::get_warehouse
        ))
        .routes(routes!(warehouses::list_warehouses))
        .routes(routes!(
            warehouses::map_warehouse,
            warehouses::unmap_warehouse
        ))
        .routes(routes!(warehouses::list_client_warehouses))
        .routes(routes!(masters::put_channel, masters::get_channel))
        .routes(routes!(masters::list_channels))
        .routes(routes!(masters::put_sku, masters::get_sku))
        .routes(routes!(masters::list_skus))
        .routes(routes!(masters::put_supplier, masters::get_supplier))
        .routes(routes!(masters::list_suppliers))
        .routes(routes!(masters::put_customer, masters::get_customer))
        .routes(routes!(masters::list_customers))
        .routes(routes!(settings::get_settings, settings::put_settings))
        .routes(routes!(
            inward::create_inward_order,
            inward::list_inward_orders
        ))
        .routes(routes!(inward::get_inward_order))
        .routes(routes!(inward::grn))
        .routes(routes!(inward::qc))
        .routes(routes!(inward::close))
        .routes(routes!(inventory::get_inventory))
        .routes(routes!(inventory::get_ledger))
        .routes(routes!(inventory::absolute))
        .routes(routes!(inventory::lost))
        .routes(routes!(inventory::found))
        .routes(routes!(inventory::pool_movement))
        .routes(routes!(inventory::put_pool, inventory::get_pool))
        .routes(routes!(inventory::list_pools))
        .routes(routes!(orders::create_order, orders::search_orders))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::allocate_order))
        .routes(routes!(orders::run_allocation))
        .routes(routes!(orders::cancel_order))
        .routes(routes!(orders::add_remark))
        .routes(routes!(orders::update_remark))
        .routes(routes!(orders::shipment_status))
        .routes(routes!(orders::events))
        .routes(routes!(exports::export_orders))
        .routes(routes!(exports::export_inventory))
        .routes(routes!(documents::order_invoice))
        .routes(routes!(documents::order_label))
        .routes(routes!(documents::shipment_invoice))
        .routes(routes!(documents::shipment_label))
        .routes(routes!(webhooks::put_webhook))
        .routes(routes!(webhooks::list_webhooks))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::replay_delivery))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::metrics))
        .split_for_parts()
}

/// The OpenAPI document, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = routes();
    let (_, upload_doc) = OpenApiRouter::<AppState>::new()
        .routes(routes!(uploads::upload, uploads::upload_template))
        .split_for_parts();
    doc.merge(upload_doc);
    doc
}

/// Every route of the OMS with its layers.
pub fn router(state: AppState) -> Router {
    // Installed before the first request, so every request is counted.
    crate::telemetry::prometheus();
    let limits = state.limits.clone();
    let doc = openapi();
    let (api, _) = routes();
    // Uploads take large bodies; everything else keeps the small JSON limit.
    let uploads = Router::new()
        .route(
            "/api/v1/uploads/{kind}",
            axum::routing::post(uploads::upload).get(uploads::upload_template),
        )
        .layer(DefaultBodyLimit::max(limits.upload_bytes_max))
        .layer(axum::middleware::from_fn_with_state(
            limits.upload_bytes_max,
            refuse_declared_over,
        ));
    api.layer(DefaultBodyLimit::max(limits.json_body_bytes_max))
        .layer(axum::middleware::from_fn_with_state(
            limits.json_body_bytes_max,
            refuse_declared_over,
        ))
        .merge(uploads)
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || async move { axum::Json(doc) }),
        )
        // The support panel: HTML pages at `/`, beside the API.
        .merge(crate::panel::router(limits.upload_bytes_max))
        .fallback(|| async { ApiError::NotFound("route".into()) })
        .layer(axum::middleware::from_fn(crate::telemetry::record_request))
        .layer(axum::middleware::from_fn_with_state(
            limits.request_timeout,
            answer_timeouts,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::Internal(
                "a handler panicked".into(),
            ))
        }))
        .with_state(state)
}

/// Answers 408 in the JSON error shape when a request (reading its body included) takes
/// longer than `limit`. The handler's future is dropped, so an open transaction rolls
/// back; an order already handed to a group commit is kept and a retry with the same code
/// answers it.
async fn answer_timeouts(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => axum::response::IntoResponse::into_response(ApiError::Timeout(format!(
            "the request took longer than {} s and was abandoned; if it was a write, read \
             back before repeating it, as it may have been applied",
            limit.as_secs_f64()
        ))),
    }
}

/// Refuses a request whose `Content-Length` is over `limit` with 413 before reading any of
/// its body (the body limit alone would read up to the limit first). Bodies without a
/// length (chunked) are still cut at the limit by `DefaultBodyLimit`.
async fn refuse_declared_over(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => {
            axum::response::IntoResponse::into_response(ApiError::PayloadTooLarge(format!(
                "the body is {length} bytes; at most {limit} are accepted"
            )))
        }
        _ => next.run(request).await,
    }
}

pub const PAGE_LIMIT_DEFAULT: i64 = 50;
pub const PAGE_LIMIT_MAX: i64 = 500;

/// `?q=&limit=&cursor=` of list routes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Matches any part of the code or name, in any case.
    pub q: Option<String>,
    /// 1 to 500; 50 when absent.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page size: 1 to [`PAGE_LIMIT_MAX`], [`PAGE_LIMIT_DEFAULT`] when absent.
pub fn page_limit(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(PAGE_LIMIT_DEFAULT);
    if !(1..=PAGE_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be between 1 and {PAGE_LIMIT_MAX}"),
        ));
    }
    Ok(limit)
}

impl ListQuery {
    pub fn limit(&self) -> ApiResult<i64> {
        page_limit(self.limit)
    }

    pub fn after(&self) -> &str {
        self.cursor.as_deref().unwrap_or("")
    }

    pub fn q(&self) -> &str {
        self.q.as_deref().unwrap_or("")
    }
}

/// One page of a list, in code order.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `rows` fetched with `limit + 1`: the extra row only says that a next page exists.
    pub fn of<R>(
        mut rows: Vec<R>,
        limit: i64,
        code: impl Fn(&R) -> &str,
        item: impl Fn(R) -> T,
    ) -> Page<T> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|r| code(r).to_owned())
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(item).collect(),
            next_cursor,
        }
    }
}

/// Money leaves the API as a JSON number with at most two decimals.
pub fn money(minor: i64) -> f64 {
    // Exact for every value below 2^53 / 100; the shortest round-trip form of the
    // nearest double is the two-place decimal itself.
    minor as f64 / 100.0
}
