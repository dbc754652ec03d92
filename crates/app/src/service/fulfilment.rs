//! After allocation: the WMS's status updates (shipping takes the stock out; an RTO brings
//! it back for QC; shipping a stock transfer opens its inward order at the destination),
//! seller cancellations, and remarks.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use oms_domain::code::Code;
use oms_domain::inventory::Movement;
use oms_domain::inward::{InwardKind, line_qty};
use oms_domain::order::{LineCounts, derive_status, plan_line_cancellation};
use oms_domain::shipment::{ShipmentStatus, Step, wms_update};
use oms_domain::validation::{Problems, optional_text, required_text};
use oms_store::fulfilment::{self, AllocationLine, Settled, ShipmentHead};
use oms_store::stock::{LedgerEntry, StockKey};
use oms_store::{ClientId, Conn, Store, inward, orders};
use serde_json::json;

use crate::auth::Scope;
use crate::clock::now_micros;
use crate::error::{ApiError, ApiResult};
use crate::fields::Fields;
use crate::service::documents::issue_invoice;
use crate::service::inward::{PreparedInwardOrder, write as write_inward};
use crate::service::orders::{OrderView, find, view};
use crate::service::refuse_unknown;
use crate::service::stock::StockChanges;

pub const REASON_CHARS_MAX: usize = 500;

fn built(movement: Result<Movement, oms_domain::inventory::MovementError>) -> ApiResult<Movement> {
    movement.map_err(|e| ApiError::Internal(format!("movement: {e}")))
}

/// The movement that settles allocated units of `bucket` (a pool, or `BAD:<reason>`).
fn settle_movement(bucket: &str, qty: i64, to: Settled) -> ApiResult<Movement> {
    built(match (bucket.strip_prefix("BAD:"), to) {
        (Some(reason), Settled::Shipped) => Movement::ship_bad(reason, qty),
        (Some(reason), Settled::Cancelled) => Movement::deallocate_bad(reason, qty),
        (None, Settled::Shipped) => Movement::ship(bucket, qty),
        (None, Settled::Cancelled) => Movement::deallocate(bucket, qty),
    })
}

fn key(client: ClientId, allocation: &AllocationLine) -> StockKey {
    StockKey {
        client,
        warehouse: allocation.warehouse_id,
        sku: allocation.sku_id,
    }
}

/// Recomputes the order's status from its lines and shipments.
async fn refresh_status(
    conn: &mut Conn,
    client: ClientId,
    order: i64,
    at: i64,
) -> ApiResult<String> {
    let counts: Vec<LineCounts> = orders::lines(&mut *conn, client, order)
        .await?
        .iter()
        .map(|l| LineCounts {
            ordered: l.ordered,
            allocated: l.allocated,
            shipped: l.shipped,
            cancelled: l.cancelled,
        })
        .collect();
    let statuses = fulfilment::shipment_statuses(conn, order).await?;
    let left: Vec<&String> = statuses
        .iter()
        .filter(|s| matches!(s.as_str(), "SHIPPED" | "DELIVERED" | "RTO"))
        .collect();
    let all_delivered = !left.is_empty() && left.iter().all(|s| *s == "DELIVERED");
    let status = derive_status(&counts, true, all_delivered)
        .as_str()
        .to_owned();
    fulfilment::set_order_status(conn, order, &status, at).await?;
    Ok(status)
}

/// A WMS status update: `{status, awb?, carrier?}`. Answers the order after it.
pub async fn update_shipment(
    store: &Store,
    scope: &Scope,
    shipment_id: i64,
    fields: &Fields,
) -> ApiResult<OrderView> {
    refuse_unknown(fields, &["status", "awb", "carrier"], &[]).map_err(ApiError::invalid)?;
    let mut problems = Problems::new();
    let requested = problems.take(
        "status",
        required_text(fields.get("status").as_deref(), 16).and_then(|s| {
            ShipmentStatus::parse(&s).ok_or_else(|| {
                format!("must be PICKED, PACKED, SHIPPED, DELIVERED or RTO, got {s:?}")
            })
        }),
    );
    let awb = problems
        .take("awb", optional_text(fields.get("awb").as_deref(), 64))
        .flatten();
    let carrier = problems
        .take(
            "carrier",
            optional_text(fields.get("carrier").as_deref(), 64),
        )
        .flatten();
    if requested == Some(ShipmentStatus::Shipped) {
        if awb.is_none() {
            problems.add("awb", "is required to ship");
        }
        if carrier.is_none() {
            problems.add("carrier", "is required to ship");
        }
    }
    let Some(requested) = requested.filter(|_| problems.is_empty()) else {
        return Err(ApiError::invalid(problems.into_vec()));
    };
    let mut tx = store.begin_write().await?;
    let shipment = fulfilment::shipment(tx.conn(), scope.client, shipment_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("shipment {shipment_id}")))?;
    let current = ShipmentStatus::parse(&shipment.status)
        .ok_or_else(|| ApiError::Internal(format!("shipment status {}", shipment.status)))?;
    match wms_update(current, requested).map_err(ApiError::Conflict)? {
        Step::Repeat => {}
        Step::Advance => {
            advance(
                tx.conn(),
                scope,
                &shipment,
                requested,
                awb.as_deref(),
                carrier.as_deref(),
            )
            .await?
        }
    }
    let view = view(tx.conn(), scope.client, shipment.order_id).await?;
    tx.commit().await?;
    Ok(view)
}

async fn advance(
    conn: &mut Conn,
    scope: &Scope,
    shipment: &ShipmentHead,
    to: ShipmentStatus,
    awb: Option<&str>,
    carrier: Option<&str>,
) -> ApiResult<()> {
    let client = scope.client;
    let at = now_micros();
    let allocations = fulfilment::shipment_allocations(conn, client, shipment.id).await?;
    if matches!(to, ShipmentStatus::Shipped | ShipmentStatus::Rto) {
        // Its stock keys before the shipment's row, in the global order (see
        // `stock::lock_keys`), as a cancellation takes them.
        let keys: Vec<StockKey> = allocations.iter().map(|a| key(client, a)).collect();
        oms_store::stock::lock_keys(&mut *conn, keys).await?;
    }
    if !fulfilment::set_status(
        conn,
        shipment.id,
        &shipment.status,
        to.as_str(),
        awb,
        carrier,
        at,
    )
    .await?
    {
        return Err(ApiError::Conflict(format!(
            "shipment {} changed while this request ran; retry",
            shipment.id
        )));
    }
    let reference = format!("shipment:{}", shipment.id);
    let entry = LedgerEntry {
        reference: &reference,
        note: None,
        actor: &scope.actor,
        at,
    };
    let mut changes = StockChanges::new();
    let mut invoice_number = None;
    match to {
        ShipmentStatus::Packed => {
            invoice_number = Some(issue_invoice(conn, client, shipment.id, at).await?);
        }
        ShipmentStatus::Shipped => {
            for allocation in &allocations {
                fulfilment::settle_allocated(
                    conn,
                    allocation.order_line_id,
                    allocation.qty,
                    Settled::Shipped,
                )
                .await?;
                changes
                    .apply(
                        conn,
                        key(client, allocation),
                        &settle_movement(&allocation.bucket, allocation.qty, Settled::Shipped)?,
                        &entry,
                    )
                    .await?;
            }
            if shipment.order_kind == "ST"
                && let Some(destination) = shipment.destination_warehouse_id
            {
                open_transfer_inward(conn, client, shipment, destination, &allocations, at).await?;
            }
        }
        ShipmentStatus::Rto => {
            return_to_origin(conn, scope, shipment, &allocations, &mut changes, at).await?
        }
        _ => {}
    }
    let status = refresh_status(conn, client, shipment.order_id, at).await?;
    let data = json!({
        "shipment_id": shipment.id,
        "order_code": shipment.order_code,
        "warehouse": shipment.warehouse,
        "status": to.as_str(),
        "awb": awb,
        "carrier": carrier,
        "invoice_number": invoice_number,
        "order_status": status,
    });
    let event = format!("shipment.{}", to.as_str().to_lowercase());
    orders::emit_many(
        conn,
        client,
        &[(event.as_str(), Some(shipment.order_id), data.to_string())],
        at,
    )
    .await?;
    changes.announce(conn, client, at).await?;
    Ok(())
}

/// Per SKU, the units a shipment carries.
fn units_by_sku(allocations: &[AllocationLine]) -> BTreeMap<i64, i64> {
    let mut units = BTreeMap::new();
    for a in allocations {
        *units.entry(a.sku_id).or_insert(0) += a.qty;
    }
    units
}

/// Shipping a stock transfer opens the matching inward `ST` at the destination: in transit
/// until it is received there.
async fn open_transfer_inward(
    conn: &mut Conn,
    client: ClientId,
    shipment: &ShipmentHead,
    destination: i64,
    allocations: &[AllocationLine],
    at: i64,
) -> ApiResult<()> {
    let order = PreparedInwardOrder {
        code: transit_code(shipment.id)?,
        kind: InwardKind::St,
        warehouse: destination,
        party: Code::parse(&shipment.warehouse).ok(),
        lines: units_by_sku(allocations).into_iter().collect(),
    };
    write_inward(conn, client, &order, at).await
}

/// Inward codes the OMS makes for itself start with these; clients may not use them.
pub const RESERVED_INWARD_PREFIXES: [&str; 2] = ["TRANSIT-S", "RTO-S"];

/// The inward order a shipped stock transfer opens at its destination.
fn transit_code(shipment: i64) -> ApiResult<Code> {
    Code::parse(&format!("TRANSIT-S{shipment}")).map_err(ApiError::Internal)
}

/// An RTO brings the goods back: a `B2B_RETURN` inward order at the shipment's warehouse,
/// received at once into QC-pending, where QC decides what is good again.
async fn return_to_origin(
    conn: &mut Conn,
    scope: &Scope,
    shipment: &ShipmentHead,
    allocations: &[AllocationLine],
    changes: &mut StockChanges,
    at: i64,
) -> ApiResult<()> {
    let client = scope.client;
    if shipment.order_kind == "ST" {
        // The goods come back to the source, so the transfer never arrives: its transit
        // inward order closes — unless the destination received it already.
        let transit = transit_code(shipment.id)?;
        if let Some(order) = inward::find_order(&mut *conn, client, transit.as_str()).await? {
            let lines = inward::lines(&mut *conn, client, order.id).await?;
            if lines.iter().any(|l| l.line.received > 0) {
                return Err(ApiError::Conflict(format!(
                    "inward order {transit} was received at the destination: the transfer cannot return to origin"
                )));
            }
            inward::close(conn, client, order.id, at).await?;
        }
    }
    let code = Code::parse(&format!("RTO-S{}", shipment.id)).map_err(ApiError::Internal)?;
    // Allocation rows outlive shipping (only the shipment's status retires them), so they
    // still say what the shipment carried.
    let carried = units_by_sku(allocations).into_iter().collect();
    let order = PreparedInwardOrder {
        code: code.clone(),
        kind: InwardKind::B2bReturn,
        warehouse: shipment.warehouse_id,
        party: None,
        lines: carried,
    };
    write_inward(conn, client, &order, at).await?;
    let inward = inward::find_order(&mut *conn, client, code.as_str())
        .await?
        .ok_or_else(|| ApiError::Internal("RTO inward order vanished".into()))?;
    let reference = format!("inward:{code}");
    let entry = LedgerEntry {
        reference: &reference,
        note: Some("returned to origin"),
        actor: &scope.actor,
        at,
    };
    for line in inward::lines(&mut *conn, client, inward.id).await? {
        inward::receive(conn, line.id, line.line.ordered, false).await?;
        let key = StockKey {
            client,
            warehouse: shipment.warehouse_id,
            sku: line.sku_id,
        };
        changes
            .apply(conn, key, &built(Movement::grn(line.line.ordered))?, &entry)
            .await?;
    }
    Ok(())
}

/// Seller cancellation: `{lines?: [{line_id, qty}], reason}`; no `lines` cancels the whole
/// order. Open units go first, then units allocated in shipments not yet picked (their
/// stock returns to the pool it came from). Asking for more than is cancellable — units
/// already picked — is 409 and changes nothing.
pub async fn cancel(
    store: &Store,
    scope: &Scope,
    code: &str,
    channel: &str,
    fields: &Fields,
) -> ApiResult<OrderView> {
    let mut tx = store.begin_write().await?;
    let order = cancel_in(tx.conn(), scope, code, channel, fields).await?;
    let view = view(tx.conn(), scope.client, order).await?;
    tx.commit().await?;
    Ok(view)
}

/// [`cancel`] inside the caller's transaction; answers the order's id. Every refusal that
/// depends only on the request (422, 404, 409) comes before the first write.
pub async fn cancel_in(
    conn: &mut Conn,
    scope: &Scope,
    code: &str,
    channel: &str,
    fields: &Fields,
) -> ApiResult<i64> {
    refuse_unknown(fields, &["reason", "lines[].line_id", "lines[].qty"], &[])
        .map_err(ApiError::invalid)?;
    let mut problems = Problems::new();
    let reason = problems.take(
        "reason",
        required_text(fields.get("reason").as_deref(), REASON_CHARS_MAX),
    );
    let requested_lines = fields.items("lines");
    if fields.has_list("lines") && requested_lines.is_empty() {
        // An empty list is not "the whole order": that is said by leaving `lines` out.
        return Err(ApiError::invalid_field(
            "lines",
            "names no line; leave it out to cancel the whole order",
        ));
    }
    let order = find(conn, scope.client, code, channel).await?;
    let lines = orders::lines(&mut *conn, scope.client, order.id).await?;
    let released = fulfilment::released_allocations(&mut *conn, scope.client, order.id).await?;
    let mut released_of: HashMap<i64, Vec<&AllocationLine>> = HashMap::new();
    for a in &released {
        released_of.entry(a.order_line_id).or_default().push(a);
    }
    let cancellable = |line: &oms_store::orders::OrderLineRow| {
        line.open()
            + released_of
                .get(&line.id)
                .map_or(0, |a| a.iter().map(|a| a.qty).sum())
    };
    // (line, qty) to cancel.
    let mut wanted: Vec<(&oms_store::orders::OrderLineRow, i64)> = Vec::new();
    if requested_lines.is_empty() {
        for line in &lines {
            let held_past_pick = line.allocated
                - released_of
                    .get(&line.id)
                    .map_or(0, |a| a.iter().map(|a| a.qty).sum());
            if held_past_pick > 0 {
                return Err(ApiError::Conflict(format!(
                    "line {} has {held_past_pick} units picked or packed: they can no longer be cancelled",
                    line.line_id
                )));
            }
            if cancellable(line) > 0 {
                wanted.push((line, cancellable(line)));
            }
        }
        if wanted.is_empty() {
            return Err(ApiError::Conflict(format!(
                "order {code} has nothing left to cancel"
            )));
        }
    } else {
        let mut seen = BTreeSet::new();
        for (index, request) in requested_lines.iter().enumerate() {
            let line_id = request.get("line_id").unwrap_or_default();
            let qty = problems.take(
                &format!("lines[{index}].qty"),
                line_qty(request.get("qty").as_deref()),
            );
            let Some(line) = lines.iter().find(|l| l.line_id == line_id) else {
                problems.add(
                    format!("lines[{index}].line_id"),
                    format!("{line_id:?} is not a line of order {code}"),
                );
                continue;
            };
            if !seen.insert(line.id) {
                problems.add(
                    format!("lines[{index}].line_id"),
                    format!("{line_id} is named twice"),
                );
                continue;
            }
            if let Some(qty) = qty {
                wanted.push((line, qty));
            }
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems.into_vec()));
    }
    // The domain decides where each line's units come from; nothing is written until every
    // line is known to be cancellable.
    let mut plans = Vec::with_capacity(wanted.len());
    for (line, qty) in &wanted {
        let unpicked: Vec<&AllocationLine> = released_of.get(&line.id).cloned().unwrap_or_default();
        let held: Vec<i64> = unpicked.iter().map(|a| a.qty).collect();
        match plan_line_cancellation(line.open(), &held, *qty) {
            Ok((from_open, takes)) => plans.push((*line, *qty, from_open, unpicked, takes)),
            Err(can) => {
                return Err(ApiError::Conflict(format!(
                    "line {} can cancel at most {can} units now (open or not yet picked); {qty} asked",
                    line.line_id
                )));
            }
        }
    }
    let reason = reason.unwrap_or_default();
    let at = now_micros();
    let reference = format!("cancel:{code}");
    let entry = LedgerEntry {
        reference: &reference,
        note: Some(&reason),
        actor: &scope.actor,
        at,
    };
    // Every stock key first, in the global order, before any shipment or line is locked
    // (see `stock::lock_keys`): an allocation pass locks keys before lines too.
    let mut keys = Vec::new();
    for (_, _, _, unpicked, takes) in &plans {
        for (allocation, take) in unpicked.iter().zip(takes) {
            if *take > 0 {
                keys.push(key(scope.client, allocation));
            }
        }
    }
    oms_store::stock::lock_keys(&mut *conn, keys).await?;
    // Claim every shipment this cancellation takes units from while it is still RELEASED:
    // the claim locks it (PostgreSQL), so a WMS pick either lands first — and the claim
    // finds it picked, 409 — or waits for this transaction.
    let mut claimed = BTreeSet::new();
    for (_, _, _, unpicked, takes) in &plans {
        for (allocation, take) in unpicked.iter().zip(takes) {
            if *take > 0
                && claimed.insert(allocation.shipment_id)
                && !fulfilment::claim_released(&mut *conn, allocation.shipment_id, at).await?
            {
                return Err(ApiError::Conflict(format!(
                    "shipment {} was picked meanwhile: its units can no longer be cancelled",
                    allocation.shipment_id
                )));
            }
        }
    }
    let mut changes = StockChanges::new();
    let mut from_open = Vec::new();
    let mut touched_shipments: BTreeMap<i64, Vec<serde_json::Value>> = BTreeMap::new();
    let mut cancelled = Vec::new();
    for (line, qty, open_part, unpicked, takes) in &plans {
        cancelled.push(json!({"line_id": line.line_id, "qty": qty}));
        if *open_part > 0 {
            from_open.push((line.id, *open_part));
        }
        for (allocation, take) in unpicked.iter().zip(takes).filter(|(_, take)| **take > 0) {
            fulfilment::reduce_allocation(&mut *conn, allocation.id, *take).await?;
            fulfilment::settle_allocated(&mut *conn, line.id, *take, Settled::Cancelled).await?;
            changes
                .apply(
                    &mut *conn,
                    key(scope.client, allocation),
                    &settle_movement(&allocation.bucket, *take, Settled::Cancelled)?,
                    &entry,
                )
                .await?;
            touched_shipments
                .entry(allocation.shipment_id)
                .or_default()
                .push(json!({"line_id": line.line_id, "sku": allocation.sku, "qty": take}));
        }
    }
    orders::cancel_open_many(&mut *conn, &from_open).await?;
    let mut events = Vec::new();
    for (shipment, shipment_lines) in &touched_shipments {
        let whole = fulfilment::cancel_if_empty(&mut *conn, *shipment, at).await?;
        let data = json!({"shipment_id": shipment, "order_code": order.record.order_code, "whole": whole, "lines": shipment_lines, "reason": reason});
        events.push(("shipment.cancelled", Some(order.id), data.to_string()));
    }
    let status = refresh_status(&mut *conn, scope.client, order.id, at).await?;
    let data = json!({"order_code": order.record.order_code, "channel": order.channel, "status": status, "cancelled": cancelled, "reason": reason});
    events.push(("order.cancelled", Some(order.id), data.to_string()));
    orders::emit_many(&mut *conn, scope.client, &events, at).await?;
    changes.announce(conn, scope.client, at).await?;
    Ok(order.id)
}

pub const REMARK_CHARS_MAX: usize = 2_000;

fn remark_text(fields: &Fields) -> ApiResult<String> {
    refuse_unknown(fields, &["text"], &[]).map_err(ApiError::invalid)?;
    required_text(fields.get("text").as_deref(), REMARK_CHARS_MAX)
        .map_err(|m| ApiError::invalid_field("text", m))
}

/// Adds a remark to an order; answers its id.
pub async fn add_remark(
    store: &Store,
    scope: &Scope,
    code: &str,
    channel: &str,
    fields: &Fields,
) -> ApiResult<(i64, String, i64)> {
    let text = remark_text(fields)?;
    let mut tx = store.begin_write().await?;
    let order = find(tx.conn(), scope.client, code, channel).await?;
    let at = now_micros();
    let id =
        fulfilment::add_remark(tx.conn(), scope.client, order.id, &text, &scope.actor, at).await?;
    tx.commit().await?;
    Ok((id, text, at))
}

pub async fn update_remark(
    store: &Store,
    scope: &Scope,
    code: &str,
    channel: &str,
    id: i64,
    fields: &Fields,
) -> ApiResult<()> {
    let text = remark_text(fields)?;
    let mut tx = store.begin_write().await?;
    let order = find(tx.conn(), scope.client, code, channel).await?;
    if !fulfilment::update_remark(
        tx.conn(),
        scope.client,
        order.id,
        id,
        &text,
        &scope.actor,
        now_micros(),
    )
    .await?
    {
        return Err(ApiError::NotFound(format!("remark {id}")));
    }
    tx.commit().await?;
    Ok(())
}
