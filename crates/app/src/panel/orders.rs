//! Orders in the panel: search, the order page (lines, shipments, trace, timeline,
//! remarks, documents), and the actions support takes (remarks, seller cancellation behind
//! a confirmation step). Service errors show inside the page.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use oms_domain::access::Permission;
use oms_domain::order::OrderStatus;
use oms_store::{channels, orders, skus};
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::api::documents::order_document;
use crate::api::orders::ChannelQuery;
use crate::clock::now_micros;
use crate::error::{ApiError, retrying};
use crate::extract::path_code;
use crate::fields::Fields;
use crate::panel::session::{PanelForm, Session};
use crate::panel::{Nav, PanelResult, describe, encode, order_url, render};
use crate::service::documents::Document;
use crate::service::orders::{self as service, OrderView};
use crate::service::{self as services, fulfilment};

/// Orders per search page.
pub const SEARCH_PAGE_ROWS: i64 = 25;
/// Channels offered in the search filter.
const CHANNELS_LISTED_MAX: i64 = 200;

/// A time as people read it: `2026-12-01 18:00 UTC`.
pub fn when(micros: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

/// Whether an order of `status` that had to leave by `dispatch_by` is late now.
fn overdue(dispatch_by: Option<i64>, status: &str, now: i64) -> bool {
    let done = matches!(status, "SHIPPED" | "DELIVERED" | "CANCELLED");
    dispatch_by.is_some_and(|by| by < now) && !done
}

// ---------- search ----------

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    pub q: Option<String>,
    pub status: Option<String>,
    pub channel: Option<String>,
    pub cursor: Option<String>,
}

pub struct SearchRow {
    pub code: String,
    pub url: String,
    pub channel: String,
    pub status: String,
    pub customer: String,
    pub phone: String,
    pub dispatch_by: String,
    pub overdue: bool,
    pub created: String,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct SearchPage {
    nav: Nav,
    q: String,
    status: String,
    channel: String,
    statuses: Vec<&'static str>,
    channels: Vec<String>,
    rows: Vec<SearchRow>,
    next_url: Option<String>,
    first_url: Option<String>,
    /// These results as CSV.
    export_url: String,
    error: Option<String>,
}

pub async fn search(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<SearchQuery>,
) -> PanelResult<Response> {
    session.scope().require(Permission::Read)?;
    let q = query.q.unwrap_or_default().trim().to_owned();
    let status = query.status.unwrap_or_default();
    let channel = query.channel.unwrap_or_default();
    let mut error = None;
    if !status.is_empty() && OrderStatus::parse(&status).is_none() {
        error = Some(format!("{status} is not an order status"));
    }
    let before = query
        .cursor
        .as_deref()
        .and_then(|c| c.parse::<i64>().ok())
        .unwrap_or(0);
    let mut rows = if error.is_none() {
        orders::search(
            state.store.pool(),
            session.client,
            &status,
            &channel,
            &q,
            before,
            SEARCH_PAGE_ROWS + 1,
        )
        .await?
    } else {
        Vec::new()
    };
    let more = rows.len() as i64 > SEARCH_PAGE_ROWS;
    rows.truncate(usize::try_from(SEARCH_PAGE_ROWS).unwrap_or(0));
    let filters = format!(
        "/?q={}&status={}&channel={}",
        encode(&q),
        encode(&status),
        encode(&channel)
    );
    let next_url = more
        .then(|| rows.last().map(|r| format!("{filters}&cursor={}", r.id)))
        .flatten();
    let now = now_micros();
    let rows = rows
        .into_iter()
        .map(|o| SearchRow {
            url: order_url(&o.record.order_code, &o.channel, ""),
            overdue: overdue(o.record.dispatch_by, &o.status, now),
            code: o.record.order_code,
            channel: o.channel,
            status: o.status,
            customer: o.record.ship_name.unwrap_or_default(),
            phone: o.record.ship_phone.unwrap_or_default(),
            dispatch_by: o.record.dispatch_by.map(when).unwrap_or_default(),
            created: when(o.created_at),
        })
        .collect();
    let channels = channels::list(state.store.pool(), session.client, "", CHANNELS_LISTED_MAX)
        .await?
        .into_iter()
        .map(|c| c.code)
        .collect();
    let page = SearchPage {
        nav: Nav::new(&session, "orders"),
        statuses: OrderStatus::ALL.iter().map(|s| s.as_str()).collect(),
        channels,
        rows,
        next_url,
        export_url: format!(
            "/exports/orders.csv?q={}&status={}&channel={}",
            encode(&q),
            encode(&status),
            encode(&channel)
        ),
        first_url: (before != 0).then_some(filters),
        q,
        status,
        channel,
        error,
    };
    Ok(render(StatusCode::OK, &page))
}

/// `/exports/orders.csv`: the search's results as CSV, authorised by the session.
pub async fn export(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<crate::api::exports::OrderExportQuery>,
) -> PanelResult<Response> {
    Ok(crate::api::exports::orders_csv(&state, &session.scope(), query).await?)
}

// ---------- the order page ----------

#[derive(Debug, Default, Deserialize)]
pub struct OrderQuery {
    pub channel: Option<String>,
    /// What the last action did, shown once after its redirect.
    pub notice: Option<String>,
}

pub struct LineRow {
    pub line_id: String,
    pub sku: String,
    pub attributes: String,
    pub ordered: i64,
    pub allocated: i64,
    pub shipped: i64,
    pub cancelled: i64,
    pub open: i64,
    pub cancellable: bool,
    pub price: String,
}

pub struct ShipmentBox {
    pub id: i64,
    pub warehouse: String,
    pub status: String,
    pub awb: String,
    pub carrier: String,
    pub lines: String,
    pub updated: String,
}

pub struct TraceRow {
    pub warehouse: String,
    pub distance: String,
    pub available: i64,
    pub allocated: i64,
    pub verdict: String,
}

pub struct TimelineRow {
    pub at: String,
    pub what: String,
    pub detail: String,
}

pub struct RemarkRow {
    pub id: i64,
    pub text: String,
    pub author: String,
    pub at: String,
    pub edit_url: String,
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    nav: Nav,
    code: String,
    channel: String,
    kind: String,
    status: String,
    fulfilment: String,
    retry: String,
    dispatch_by: String,
    overdue: bool,
    ship_to: Vec<String>,
    lines: Vec<LineRow>,
    shipments: Vec<ShipmentBox>,
    trace_sentence: Option<String>,
    trace_rows: Vec<TraceRow>,
    attempts: i64,
    timeline: Vec<TimelineRow>,
    remarks: Vec<RemarkRow>,
    invoice_url: Option<String>,
    label_url: Option<String>,
    cancel_url: String,
    remark_url: String,
    whole_cancellable: bool,
    notice: Option<&'static str>,
    error: Option<String>,
    error_details: Vec<String>,
}

fn notice_text(key: Option<&str>) -> Option<&'static str> {
    match key? {
        "remark-added" => Some("Remark added."),
        "remark-saved" => Some("Remark saved."),
        "cancelled" => Some("Cancelled. The freed units are available again."),
        _ => None,
    }
}

/// The trace in plain words: "BLR1 had 2 of the units, 2 allocated; DEL1 had none;
/// allocated 2 of 5 units from BLR1; waiting for 3 units."
pub fn trace_sentence(trace: &Value) -> Option<String> {
    let outcome = trace.get("outcome").and_then(Value::as_str)?;
    let mut parts: Vec<String> = trace
        .get("considered")
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    let warehouse = row["warehouse"].as_str().unwrap_or("?");
                    let available = row["units_available"].as_i64().unwrap_or(0);
                    let allocated = row["units_allocated"].as_i64().unwrap_or(0);
                    match (available, allocated) {
                        (0, _) => format!("{warehouse} had none"),
                        (n, 0) => format!("{warehouse} had {n}"),
                        (n, a) => format!("{warehouse} had {n}, {a} allocated"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    parts.push(outcome.to_owned());
    let mut sentence = parts.join("; ");
    if let Some(first) = sentence.get(..1) {
        sentence = first.to_uppercase() + &sentence[1..];
    }
    sentence.push('.');
    Some(sentence)
}

fn trace_rows(trace: &Value) -> Vec<TraceRow> {
    trace
        .get("considered")
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .map(|row| TraceRow {
                    warehouse: row["warehouse"].as_str().unwrap_or_default().to_owned(),
                    distance: row["distance_km"]
                        .as_f64()
                        .map(|km| format!("{km:.0} km"))
                        .unwrap_or_default(),
                    available: row["units_available"].as_i64().unwrap_or(0),
                    allocated: row["units_allocated"].as_i64().unwrap_or(0),
                    verdict: row["verdict"].as_str().unwrap_or_default().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An event's data in a line: its scalar fields but the ones the page already shows.
fn event_detail(data: &str) -> String {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(data) else {
        return String::new();
    };
    map.iter()
        .filter(|(key, value)| {
            !matches!(key.as_str(), "order_code" | "channel") && !value.is_null()
        })
        .filter_map(|(key, value)| match value {
            Value::String(s) => Some(format!("{key}: {s}")),
            Value::Number(n) => Some(format!("{key}: {n}")),
            Value::Bool(b) => Some(format!("{key}: {b}")),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `colour: Red, size: M` for the attributes the client marked as displayed.
async fn displayed_attributes(
    state: &AppState,
    session: &Session,
    view: &OrderView,
) -> PanelResult<BTreeMap<String, String>> {
    let settings = services::settings(&state.store, session.client).await?;
    let shown: Vec<&str> = settings
        .sku_attributes
        .iter()
        .filter(|a| a.displayed)
        .map(|a| a.name.as_str())
        .collect();
    let mut out = BTreeMap::new();
    if shown.is_empty() {
        return Ok(out);
    }
    for line in &view.lines {
        if out.contains_key(&line.sku) {
            continue;
        }
        let Some(sku) = skus::find(state.store.pool(), session.client, &line.sku).await? else {
            continue;
        };
        let values: Value = serde_json::from_str(&sku.attributes).unwrap_or(Value::Null);
        let text = shown
            .iter()
            .filter_map(|name| {
                values.get(*name).map(|v| match v {
                    Value::String(s) => format!("{name}: {s}"),
                    other => format!("{name}: {other}"),
                })
            })
            .collect::<Vec<_>>()
            .join(", ");
        out.insert(line.sku.clone(), text);
    }
    Ok(out)
}

fn money(minor: Option<i64>) -> String {
    minor
        .map(|m| format!("{}.{:02}", m / 100, (m % 100).abs()))
        .unwrap_or_default()
}

/// Renders the order page, with an action's error when there was one.
async fn order_page(
    state: &AppState,
    session: &Session,
    code: &str,
    channel: &str,
    notice: Option<&str>,
    failure: Option<ApiError>,
) -> PanelResult<Response> {
    let scope = session.scope();
    scope.require(Permission::Read)?;
    let code = path_code("order_code", code)?;
    let view = service::get(&state.store, session.client, code.as_str(), channel).await?;
    let attributes = displayed_attributes(state, session, &view).await?;
    let order = &view.order;
    let record = &order.record;
    let channel = order.channel.clone();
    let now = now_micros();
    let trace: Value = service::trace_json(order.allocation_trace.as_deref());
    let lines: Vec<LineRow> = view
        .lines
        .iter()
        .map(|l| LineRow {
            line_id: l.line_id.clone(),
            sku: l.sku.clone(),
            attributes: attributes.get(&l.sku).cloned().unwrap_or_default(),
            ordered: l.ordered,
            allocated: l.allocated,
            shipped: l.shipped,
            cancelled: l.cancelled,
            open: l.open(),
            cancellable: l.open() + l.allocated > 0,
            price: money(l.price_minor),
        })
        .collect();
    let shipments: Vec<ShipmentBox> = view
        .shipments
        .iter()
        .map(|s| ShipmentBox {
            id: s.id,
            warehouse: s.warehouse.clone(),
            status: s.status.clone(),
            awb: s.awb.clone().unwrap_or_default(),
            carrier: s.carrier.clone().unwrap_or_default(),
            lines: view
                .allocations
                .iter()
                .filter(|a| a.shipment_id == s.id)
                .map(|a| format!("{} × {} (line {})", a.qty, a.sku, a.line_id))
                .collect::<Vec<_>>()
                .join(", "),
            updated: when(s.updated_at),
        })
        .collect();
    let packed = |s: &&ShipmentBox| {
        matches!(
            s.status.as_str(),
            "PACKED" | "SHIPPED" | "DELIVERED" | "RTO"
        )
    };
    let invoice_url = shipments
        .iter()
        .any(|s| packed(&s))
        .then(|| order_url(&record.order_code, &channel, "/invoice.pdf"));
    let label_url = shipments
        .iter()
        .any(|s| packed(&s) && !s.awb.is_empty())
        .then(|| order_url(&record.order_code, &channel, "/shipping-label.pdf"));
    let (error, error_details) = match failure {
        Some(failure) => {
            let (message, details) = describe(failure);
            (Some(message), details)
        }
        None => (None, Vec::new()),
    };
    let status_code = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = OrderPage {
        nav: Nav::new(session, "orders"),
        code: record.order_code.clone(),
        kind: record.kind.clone(),
        status: order.status.clone(),
        fulfilment: record.fulfilment_type.clone(),
        retry: record.retry.clone(),
        dispatch_by: record.dispatch_by.map(when).unwrap_or_default(),
        overdue: overdue(record.dispatch_by, &order.status, now),
        ship_to: [
            record.ship_name.clone(),
            record.ship_address.clone(),
            record.ship_pincode.clone(),
            record.ship_phone.clone(),
            record.ship_email.clone(),
        ]
        .into_iter()
        .flatten()
        .collect(),
        whole_cancellable: lines.iter().any(|l| l.cancellable),
        lines,
        shipments,
        trace_sentence: trace_sentence(&trace),
        trace_rows: trace_rows(&trace),
        attempts: order.attempts,
        timeline: view
            .events
            .iter()
            .map(|e| TimelineRow {
                at: when(e.at),
                what: e.event_type.clone(),
                detail: event_detail(&e.data),
            })
            .collect(),
        remarks: view
            .remarks
            .iter()
            .map(|r| RemarkRow {
                id: r.id,
                text: r.text.clone(),
                author: r.author.clone(),
                at: when(r.updated_at),
                edit_url: order_url(&record.order_code, &channel, &format!("/remarks/{}", r.id)),
            })
            .collect(),
        invoice_url,
        label_url,
        cancel_url: order_url(&record.order_code, &channel, "/cancel"),
        remark_url: order_url(&record.order_code, &channel, "/remarks"),
        notice: notice_text(notice),
        error,
        error_details,
        channel,
    };
    Ok(render(status_code, &page))
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(code): Path<String>,
    Query(query): Query<OrderQuery>,
) -> PanelResult<Response> {
    let channel = query.channel.unwrap_or_default();
    order_page(
        &state,
        &session,
        &code,
        &channel,
        query.notice.as_deref(),
        None,
    )
    .await
}

/// After an action: back to the order page with a notice, or the page with the error.
async fn after_action(
    state: &AppState,
    session: &Session,
    code: &str,
    channel: &str,
    outcome: Result<(), ApiError>,
    notice: &str,
) -> PanelResult<Response> {
    match outcome {
        Ok(()) => Ok(
            Redirect::to(&format!("{}&notice={notice}", order_url(code, channel, "")))
                .into_response(),
        ),
        Err(error @ (ApiError::NotFound(_) | ApiError::Forbidden(_))) => Err(error.into()),
        Err(error) => {
            let status = error.status();
            let mut response = order_page(state, session, code, channel, None, Some(error)).await?;
            *response.status_mut() = status;
            Ok(response)
        }
    }
}

/// Adds a remark (`id` `None`) or edits remark `id`: `{text}`.
async fn remark(
    state: &AppState,
    code: &str,
    query: OrderQuery,
    PanelForm { session, form }: PanelForm,
    id: Option<i64>,
) -> PanelResult<Response> {
    let scope = session.scope();
    let channel = query.channel.unwrap_or_default();
    let fields = Fields::from_pairs([("text".to_owned(), form.get("text").unwrap_or_default())]);
    let outcome = async {
        scope.require(Permission::ActOnOrders)?;
        let code = path_code("order_code", code)?;
        let (store, code) = (&state.store, code.as_str());
        match id {
            None => fulfilment::add_remark(store, &scope, code, &channel, &fields)
                .await
                .map(|_| ()),
            Some(id) => fulfilment::update_remark(store, &scope, code, &channel, id, &fields).await,
        }
    }
    .await;
    let notice = if id.is_none() {
        "remark-added"
    } else {
        "remark-saved"
    };
    after_action(state, &session, code, &channel, outcome, notice).await
}

pub async fn add_remark(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(query): Query<OrderQuery>,
    form: PanelForm,
) -> PanelResult<Response> {
    remark(&state, &code, query, form, None).await
}

pub async fn edit_remark(
    State(state): State<AppState>,
    Path((code, id)): Path<(String, i64)>,
    Query(query): Query<OrderQuery>,
    form: PanelForm,
) -> PanelResult<Response> {
    remark(&state, &code, query, form, Some(id)).await
}

#[derive(Template)]
#[template(path = "cancel.html")]
struct CancelPage {
    nav: Nav,
    code: String,
    channel: String,
    order_url: String,
    cancel_url: String,
    line_id: Option<String>,
    sku: String,
    qty: String,
    reason: String,
}

/// Seller cancellation of one line's units (`line_id`, `qty`) or of the whole order (no
/// `line_id`). Without `confirm=yes` nothing changes: the answer is the confirmation page.
pub async fn cancel(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(query): Query<OrderQuery>,
    PanelForm { session, form }: PanelForm,
) -> PanelResult<Response> {
    let scope = session.scope();
    scope.require(Permission::ActOnOrders)?;
    let channel = query.channel.unwrap_or_default();
    let line_id = form.get("line_id");
    let qty = form.get("qty").unwrap_or_default();
    let reason = form.get("reason").unwrap_or_default();
    if form.get("confirm").as_deref() != Some("yes") {
        let valid = path_code("order_code", &code)?;
        let view = service::get(&state.store, session.client, valid.as_str(), &channel).await?;
        let sku = match &line_id {
            Some(id) => view
                .lines
                .iter()
                .find(|l| &l.line_id == id)
                .map(|l| l.sku.clone())
                .ok_or_else(|| ApiError::NotFound(format!("line {id}")))?,
            None => String::new(),
        };
        let page = CancelPage {
            nav: Nav::new(&session, "orders"),
            order_url: order_url(&code, &view.order.channel, ""),
            cancel_url: order_url(&code, &view.order.channel, "/cancel"),
            code,
            channel: view.order.channel,
            line_id,
            sku,
            qty,
            reason,
        };
        return Ok(render(StatusCode::OK, &page));
    }
    let mut pairs = vec![("reason".to_owned(), reason)];
    if let Some(line_id) = line_id {
        pairs.push(("lines[0].line_id".to_owned(), line_id));
        pairs.push(("lines[0].qty".to_owned(), qty));
    }
    let fields = Fields::from_pairs(pairs);
    let outcome = async {
        let valid = path_code("order_code", &code)?;
        retrying(|| fulfilment::cancel(&state.store, &scope, valid.as_str(), &channel, &fields))
            .await?;
        // Freed units may serve waiting orders.
        state.allocator.wake();
        Ok(())
    }
    .await;
    after_action(&state, &session, &code, &channel, outcome, "cancelled").await
}

/// `/orders/{code}/invoice.pdf` and `/orders/{code}/shipping-label.pdf`: the API's PDFs,
/// authorised by the session.
pub async fn document(
    State(state): State<AppState>,
    session: Session,
    Path((code, file)): Path<(String, String)>,
    Query(query): Query<OrderQuery>,
) -> PanelResult<Response> {
    let document = match file.as_str() {
        "invoice.pdf" => Document::Invoice,
        "shipping-label.pdf" => Document::Label,
        _ => return Err(ApiError::NotFound(format!("document {file}")).into()),
    };
    let channel = ChannelQuery {
        channel: query.channel,
    };
    Ok(order_document(&state, &session.scope(), &code, channel, document).await?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_trace_reads_as_a_sentence() {
        let trace = json!({"considered": [
            {"warehouse": "BLR1", "units_available": 2, "units_allocated": 2, "verdict": "chosen"},
            {"warehouse": "DEL1", "units_available": 0, "units_allocated": 0, "verdict": "no stock for this order"}],
            "outcome": "allocated 2 of 5 units from BLR1; waiting for 3 units"});
        assert_eq!(
            trace_sentence(&trace).as_deref(),
            Some(
                "BLR1 had 2, 2 allocated; DEL1 had none; allocated 2 of 5 units from BLR1; waiting for 3 units."
            )
        );
        assert_eq!(trace_sentence(&Value::Null), None);
    }

    #[test]
    fn an_open_order_past_its_sla_is_overdue_and_a_shipped_one_is_not() {
        assert!(overdue(Some(10), "RELEASED", 11));
        assert!(!overdue(Some(10), "SHIPPED", 11));
        assert!(!overdue(Some(12), "RELEASED", 11));
        assert!(!overdue(None, "RELEASED", 11));
        assert_eq!(money(Some(79950)), "799.50");
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
    }
}
