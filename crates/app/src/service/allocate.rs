//! Allocation passes: load open demand and allocatable stock, ask the engine for a plan,
//! and write it — stock movements in a fixed key order, then shipments (released at once),
//! allocations, short closes, order status and trace, and outbox events — in the caller's
//! transaction.

use std::collections::{BTreeMap, HashMap};

use oms_domain::allocation::{
    Demand, DemandLine, Place, Plan, StockSnapshot, StockSource, Warehouse, plan_allocation,
};
use oms_domain::inventory::{COMMON, Movement};
use oms_domain::order::{LineCounts, derive_status};
use oms_domain::settings::ClientSettings;
use oms_store::orders::{self, OrderLineRow, OrderRow};
use oms_store::stock::{self, LedgerEntry, StockKey};
use oms_store::{ClientId, Conn, clients, pools, warehouses};
use serde::Serialize;
use serde_json::json;

use crate::error::{ApiError, ApiResult};

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PassSummary {
    pub orders_seen: u64,
    pub lines_allocated: u64,
    pub units_allocated: u64,
}

/// Which orders a pass considers.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every order with open quantity and `retry = AUTO`: the retry worker's pass.
    AutoRetry,
    /// Every order with open quantity: `POST /allocation/run`.
    AllOpen,
    /// These orders, whatever their retry setting: creation and `POST …/allocate`.
    Orders(&'a [i64]),
}

/// Runs one pass for `client` inside the caller's transaction.
pub async fn run(
    conn: &mut Conn,
    client: ClientId,
    scope: Scope<'_>,
    actor: &str,
    at: i64,
) -> ApiResult<PassSummary> {
    let (only_auto, ids) = match scope {
        Scope::AutoRetry => (true, None),
        Scope::AllOpen => (false, None),
        Scope::Orders(ids) => (false, Some(ids)),
    };
    let (open_orders, open_lines) = orders::open_demand(conn, client, only_auto, ids).await?;
    if open_orders.is_empty() {
        return Ok(PassSummary::default());
    }
    let settings: ClientSettings =
        serde_json::from_str(&clients::settings_for_update(conn, client).await?)
            .map_err(|e| ApiError::Internal(format!("stored settings: {e}")))?;
    let candidates = candidate_warehouses(conn, client).await?;
    let pools_of_channel = channel_pools(conn, client).await?;
    let skus: Option<Vec<i64>> = ids.map(|_| {
        let mut skus: Vec<i64> = open_lines.iter().map(|l| l.sku_id).collect();
        skus.sort_unstable();
        skus.dedup();
        skus
    });
    let mut snapshot = StockSnapshot::default();
    for (warehouse, sku, bucket, qty) in
        orders::allocatable_stock(conn, client, skus.as_deref()).await?
    {
        let name = bucket.strip_prefix("AVAILABLE:").unwrap_or(&bucket);
        snapshot.add(warehouse, sku, name, qty);
    }
    let order_ids: Vec<i64> = open_orders.iter().map(|o| o.id).collect();
    let used = orders::used_warehouses(conn, client, &order_ids).await?;
    let mut lines_of: HashMap<i64, Vec<&OrderLineRow>> = HashMap::new();
    for line in &open_lines {
        lines_of.entry(line.order_id).or_default().push(line);
    }
    let demands: Vec<Demand> = open_orders
        .iter()
        .map(|order| {
            demand(
                order,
                lines_of.get(&order.id).map(Vec::as_slice).unwrap_or(&[]),
                &pools_of_channel,
                &used,
            )
        })
        .collect();
    let plan = plan_allocation(&demands, &mut snapshot, &candidates, &settings.routing);
    let orders_by_id: HashMap<i64, &OrderRow> = open_orders.iter().map(|o| (o.id, o)).collect();
    let lines_by_id: HashMap<i64, &OrderLineRow> = open_lines.iter().map(|l| (l.id, l)).collect();
    let mut summary = apply(conn, client, &plan, &orders_by_id, &lines_by_id, actor, at).await?;
    summary.orders_seen = open_orders.len() as u64;
    Ok(summary)
}

async fn candidate_warehouses(conn: &mut Conn, client: ClientId) -> ApiResult<Vec<Warehouse>> {
    let rows = warehouses::list_mapped(&mut *conn, client, "", i64::MAX).await?;
    Ok(rows
        .into_iter()
        .map(|w| Warehouse {
            id: w.id,
            code: w.code,
            place: Place {
                lat: w.lat,
                lon: w.lon,
                pincode: Some(w.pincode),
            },
            priority: w.priority,
        })
        .collect())
}

/// Channel code → the named pools tied to it, in pool code order.
async fn channel_pools(
    conn: &mut Conn,
    client: ClientId,
) -> ApiResult<HashMap<String, Vec<String>>> {
    let mut by_channel: HashMap<String, Vec<String>> = HashMap::new();
    for pool in pools::list(&mut *conn, client).await? {
        let channels: Vec<String> = serde_json::from_str(&pool.channels).unwrap_or_default();
        for channel in channels {
            by_channel
                .entry(channel)
                .or_default()
                .push(pool.code.clone());
        }
    }
    Ok(by_channel)
}

fn demand(
    order: &OrderRow,
    lines: &[&OrderLineRow],
    pools_of_channel: &HashMap<String, Vec<String>>,
    used: &HashMap<i64, Vec<i64>>,
) -> Demand {
    let record = &order.record;
    let mut pools = pools_of_channel
        .get(&order.channel)
        .cloned()
        .unwrap_or_default();
    pools.push(COMMON.to_owned());
    let ship_to = (record.ship_pincode.is_some() || record.ship_lat.is_some()).then(|| Place {
        lat: record.ship_lat,
        lon: record.ship_lon,
        pincode: record.ship_pincode.clone(),
    });
    Demand {
        order_id: order.id,
        seq: order.id,
        dispatch_by: record.dispatch_by,
        priority: record.priority,
        fulfilment: oms_domain::allocation::FulfilmentType::parse(&record.fulfilment_type)
            .unwrap_or(oms_domain::allocation::FulfilmentType::BlockComplete),
        fixed_warehouse: record.warehouse_id,
        pools,
        source: if record.stock == "BAD" {
            StockSource::Bad
        } else {
            StockSource::Good
        },
        ship_to,
        used_warehouses: used.get(&order.id).cloned().unwrap_or_default(),
        lines: lines
            .iter()
            .map(|l| DemandLine {
                line_id: l.id,
                sku: l.sku_id,
                open: l.open(),
            })
            .collect(),
    }
}

/// The movement binding units of `bucket` (a pool, or `BAD:<reason>`) to an order.
fn allocate_movement(bucket: &str, qty: i64) -> ApiResult<Movement> {
    let movement = match bucket.strip_prefix("BAD:") {
        Some(reason) => Movement::allocate_bad(reason, qty),
        None => Movement::allocate(bucket, qty),
    };
    movement.map_err(|e| ApiError::Internal(format!("allocation movement: {e}")))
}

async fn apply(
    conn: &mut Conn,
    client: ClientId,
    plan: &Plan,
    orders_by_id: &HashMap<i64, &OrderRow>,
    lines_by_id: &HashMap<i64, &OrderLineRow>,
    actor: &str,
    at: i64,
) -> ApiResult<PassSummary> {
    let mut summary = PassSummary::default();
    // Stock first, in one fixed key order across every transaction, so two passes (or a
    // pass and an order being created) can never wait on each other in a cycle.
    let mut movements: Vec<(StockKey, &str, i64, i64)> = plan
        .orders
        .iter()
        .flat_map(|o| {
            o.allocations.iter().map(move |a| {
                (
                    StockKey {
                        client,
                        warehouse: a.warehouse,
                        sku: a.sku,
                    },
                    a.bucket.as_str(),
                    o.order_id,
                    a.qty,
                )
            })
        })
        .collect();
    movements.sort();
    for (key, bucket, order_id, qty) in movements {
        let code = orders_by_id
            .get(&order_id)
            .map(|o| o.record.order_code.as_str())
            .unwrap_or_default();
        let reference = format!("order:{code}");
        let entry = LedgerEntry {
            reference: &reference,
            note: None,
            actor,
            at,
        };
        stock::apply(conn, key, &allocate_movement(bucket, qty)?, &entry).await?;
    }
    for order_plan in &plan.orders {
        let Some(order) = orders_by_id.get(&order_plan.order_id) else {
            continue;
        };
        let trace = serde_json::to_string(&order_plan.trace)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let changed = !order_plan.allocations.is_empty() || !order_plan.short_closed.is_empty();
        if !changed
            && order.attempts > 0
            && order.allocation_trace.as_deref() == Some(trace.as_str())
        {
            // Nothing new to say: a waiting order stays as it was, unwritten.
            continue;
        }
        let mut shipments: BTreeMap<i64, i64> = BTreeMap::new();
        for allocation in &order_plan.allocations {
            let shipment = match shipments.get(&allocation.warehouse) {
                Some(id) => *id,
                None => {
                    let id =
                        orders::insert_shipment(conn, client, order.id, allocation.warehouse, at)
                            .await?;
                    shipments.insert(allocation.warehouse, id);
                    id
                }
            };
            orders::insert_allocation(
                conn,
                client,
                shipment,
                allocation.line_id,
                allocation.warehouse,
                allocation.sku,
                &allocation.bucket,
                allocation.qty,
            )
            .await?;
            summary.lines_allocated += 1;
            summary.units_allocated += allocation.qty as u64;
        }
        for (line, qty) in &order_plan.short_closed {
            orders::cancel_open(conn, *line, *qty).await?;
        }
        let lines = orders::lines(&mut *conn, client, order.id).await?;
        let counts: Vec<LineCounts> = lines
            .iter()
            .map(|l| LineCounts {
                ordered: l.ordered,
                allocated: l.allocated,
                shipped: l.shipped,
                cancelled: l.cancelled,
            })
            .collect();
        let status = derive_status(&counts, true, false);
        orders::record_attempt(conn, order.id, status.as_str(), &trace, at).await?;
        if !order_plan.allocations.is_empty() {
            let allocated: Vec<_> = order_plan
                .allocations
                .iter()
                .map(|a| json!({"line_id": lines_by_id.get(&a.line_id).map(|l| l.line_id.as_str()), "qty": a.qty}))
                .collect();
            let data = json!({"order_code": order.record.order_code, "channel": order.channel, "status": status.as_str(), "allocated": allocated});
            orders::emit(
                conn,
                client,
                "order.allocated",
                Some(order.id),
                &data.to_string(),
                at,
            )
            .await?;
            for (warehouse, shipment) in &shipments {
                let lines: Vec<_> = order_plan
                    .allocations
                    .iter()
                    .filter(|a| a.warehouse == *warehouse)
                    .map(|a| json!({"line_id": lines_by_id.get(&a.line_id).map(|l| l.line_id.as_str()), "sku": lines_by_id.get(&a.line_id).map(|l| l.sku.as_str()), "qty": a.qty}))
                    .collect();
                let data = json!({"shipment_id": shipment, "order_code": order.record.order_code, "channel": order.channel, "warehouse_id": warehouse, "lines": lines});
                orders::emit(
                    conn,
                    client,
                    "shipment.released",
                    Some(order.id),
                    &data.to_string(),
                    at,
                )
                .await?;
            }
        }
        if !order_plan.short_closed.is_empty() {
            let closed: Vec<_> = order_plan
                .short_closed
                .iter()
                .map(|(line, qty)| json!({"line_id": lines_by_id.get(line).map(|l| l.line_id.as_str()), "qty": qty, "reason": "SHORT_CLOSED"}))
                .collect();
            let data = json!({"order_code": order.record.order_code, "channel": order.channel, "cancelled": closed});
            orders::emit(
                conn,
                client,
                "order.cancelled",
                Some(order.id),
                &data.to_string(),
                at,
            )
            .await?;
        }
    }
    Ok(summary)
}
