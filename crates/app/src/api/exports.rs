//! CSV exports of orders and inventory, for spreadsheets. Every text cell that a
//! spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, tab, CR or LF) is
//! prefixed with `'`, so a customer name like `=HYPERLINK(…)` stays text.

use std::borrow::Cow;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use oms_domain::access::Permission;
use oms_domain::order::OrderStatus;
use oms_store::{orders, stock};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Scope;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::service::stock::inventory_rows;

/// Orders read per statement while exporting.
const EXPORT_PAGE: i64 = 1000;
/// The most orders one export holds; narrow the filter for more.
pub const EXPORT_ORDERS_MAX: usize = 1_000_000;

/// A text cell a spreadsheet will not evaluate.
pub fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\n') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

fn csv_response(bytes: Vec<u8>, filename: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

fn written(error: csv::Error) -> ApiError {
    ApiError::Internal(format!("csv: {error}"))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderExportQuery {
    pub status: Option<String>,
    pub channel: Option<String>,
    /// Part of the order code, the customer's name, phone or e-mail, in any case.
    pub q: Option<String>,
}

/// The client's orders matching the filter (as `GET /orders` searches), newest first, one
/// row per order with its line totals.
#[utoipa::path(get, path = "/api/v1/exports/orders.csv", tag = "exports", security(("bearer" = [])),
    params(OrderExportQuery),
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn export_orders(
    State(state): State<AppState>,
    scope: Scope,
    ApiQuery(query): ApiQuery<OrderExportQuery>,
) -> ApiResult<Response> {
    orders_csv(&state, &scope, query).await
}

/// The orders export for `scope`: the API's route and the panel's download.
pub async fn orders_csv(
    state: &AppState,
    scope: &Scope,
    query: OrderExportQuery,
) -> ApiResult<Response> {
    scope.require(Permission::Read)?;
    let status = query.status.unwrap_or_default();
    if !status.is_empty() && OrderStatus::parse(&status).is_none() {
        return Err(ApiError::invalid_field(
            "status",
            format!("{status} is not an order status"),
        ));
    }
    let channel = query.channel.unwrap_or_default();
    let q = query.q.unwrap_or_default();
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "order_code",
        "channel",
        "kind",
        "status",
        "created_at",
        "dispatch_by",
        "ship_to.name",
        "ship_to.phone",
        "ship_to.email",
        "ship_to.pincode",
        "ordered",
        "allocated",
        "shipped",
        "cancelled",
        "open",
    ])
    .map_err(written)?;
    // One snapshot: the pages agree with each other.
    let mut tx = state.store.begin_snapshot().await?;
    let mut before = 0;
    let mut exported = 0;
    loop {
        let page = orders::search(
            tx.conn(),
            scope.client,
            &status,
            &channel,
            &q,
            before,
            EXPORT_PAGE,
        )
        .await?;
        let Some(last) = page.last() else { break };
        before = last.id;
        let ids: Vec<i64> = page.iter().map(|o| o.id).collect();
        let mut totals = std::collections::HashMap::<i64, [i64; 5]>::new();
        for line in orders::lines_of(tx.conn(), scope.client, &ids).await? {
            let t = totals.entry(line.order_id).or_default();
            t[0] += line.ordered;
            t[1] += line.allocated;
            t[2] += line.shipped;
            t[3] += line.cancelled;
            t[4] += line.open();
        }
        for order in &page {
            let r = &order.record;
            let t = totals.get(&order.id).copied().unwrap_or_default();
            let text =
                |v: &Option<String>| spreadsheet_safe(v.as_deref().unwrap_or("")).into_owned();
            out.write_record([
                spreadsheet_safe(&r.order_code).into_owned(),
                spreadsheet_safe(&order.channel).into_owned(),
                r.kind.clone(),
                order.status.clone(),
                rfc3339(order.created_at),
                r.dispatch_by.map(rfc3339).unwrap_or_default(),
                text(&r.ship_name),
                text(&r.ship_phone),
                text(&r.ship_email),
                text(&r.ship_pincode),
                t[0].to_string(),
                t[1].to_string(),
                t[2].to_string(),
                t[3].to_string(),
                t[4].to_string(),
            ])
            .map_err(written)?;
            exported += 1;
        }
        if page.len() < EXPORT_PAGE as usize || exported >= EXPORT_ORDERS_MAX {
            break;
        }
    }
    tx.commit().await?;
    let bytes = out
        .into_inner()
        .map_err(|e| written(e.into_error().into()))?;
    Ok(csv_response(bytes, "orders.csv"))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InventoryExportQuery {
    pub sku: Option<String>,
    pub warehouse: Option<String>,
}

/// The client's stock by SKU and warehouse, as `GET /inventory` shows it.
#[utoipa::path(get, path = "/api/v1/exports/inventory.csv", tag = "exports", security(("bearer" = [])),
    params(InventoryExportQuery),
    responses((status = 200, content_type = "text/csv", body = String)))]
pub async fn export_inventory(
    State(state): State<AppState>,
    scope: Scope,
    ApiQuery(query): ApiQuery<InventoryExportQuery>,
) -> ApiResult<Response> {
    inventory_csv(&state, &scope, query).await
}

/// The inventory export for `scope`: the API's route and the panel's download.
pub async fn inventory_csv(
    state: &AppState,
    scope: &Scope,
    query: InventoryExportQuery,
) -> ApiResult<Response> {
    scope.require(Permission::Read)?;
    let sku = query.sku.unwrap_or_default();
    let warehouse = query.warehouse.unwrap_or_default();
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "warehouse",
        "sku",
        "qc_pending",
        "good",
        "bad",
        "lost",
        "shipped",
        "allocated",
        "available",
    ])
    .map_err(written)?;
    let mut after = String::new();
    loop {
        let (rows, more) = stock::page(
            state.store.pool(),
            scope.client,
            &sku,
            &warehouse,
            &after,
            EXPORT_PAGE,
        )
        .await?;
        let rows = inventory_rows(rows);
        for row in &rows {
            let b = &row.balance;
            out.write_record([
                spreadsheet_safe(&row.warehouse).into_owned(),
                spreadsheet_safe(&row.sku).into_owned(),
                b.qc_pending.to_string(),
                b.good().to_string(),
                b.bad_total().to_string(),
                b.lost.to_string(),
                b.shipped.to_string(),
                b.allocated().to_string(),
                b.available().to_string(),
            ])
            .map_err(written)?;
        }
        match (more, rows.last()) {
            (true, Some(last)) => after = last.sku.clone(),
            _ => break,
        }
    }
    let bytes = out
        .into_inner()
        .map_err(|e| written(e.into_error().into()))?;
    Ok(csv_response(bytes, "inventory.csv"))
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_safe;

    #[test]
    fn formula_leading_cells_are_kept_as_text() {
        for cell in ["=1+1", "+91 98450", "-2", "@SUM(A1)", "\tx", "\rx", "\nx"] {
            assert_eq!(spreadsheet_safe(cell), format!("'{cell}"));
        }
        for cell in ["Asha Rao", "MYN-1", "", "1=1"] {
            assert_eq!(spreadsheet_safe(cell), cell);
        }
    }
}
