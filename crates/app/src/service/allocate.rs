//! Allocation passes: load open demand and allocatable stock, ask the engine for a plan,
//! and write it — stock movements in a fixed key order, then shipments (released at once),
//! allocations, short closes, order status and trace, and outbox events — in the caller's
//! transaction.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use oms_domain::allocation::{
    Demand, DemandLine, OrderPlan, Place, Plan, StockSnapshot, StockSource, Warehouse,
    plan_allocation,
};
use oms_domain::inventory::{COMMON, Movement};
use oms_domain::order::{LineCounts, OrderStatus, derive_status};
use oms_domain::settings::ClientSettings;
use oms_domain::shipment::ShipmentStatus;
use oms_store::clients::PlanningWarehouse;
use oms_store::orders::{self, AllocationRow, DemandOrder, EventRow, OrderLineRow, ShipmentRow};
use oms_store::stock::StockKey;
use oms_store::{ClientId, Conn, clients};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::service::orders::OrderView;
use crate::service::stock::{StockChanges, announcement};

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
    /// These orders, whatever their retry setting: `POST …/allocate`.
    Orders(&'a [i64]),
}

/// How a pass found its orders, which decides what else it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// Every open order of the client: all its allocatable stock is read.
    All,
    /// Orders named by id: only their SKUs' stock is read.
    Named,
    /// Orders created in this transaction: only their SKUs' stock, and no shipments
    /// (they have none yet).
    New,
}

/// Runs one pass for `client` inside the caller's transaction.
pub async fn run(
    conn: &mut Conn,
    client: ClientId,
    scope: Scope<'_>,
    actor: &str,
    at: i64,
) -> ApiResult<PassSummary> {
    let (only_auto, ids, found) = match scope {
        Scope::AutoRetry => (true, None, Found::All),
        Scope::AllOpen => (false, None, Found::All),
        Scope::Orders(ids) => (false, Some(ids), Found::Named),
    };
    let (open_orders, open_lines) = orders::open_demand(conn, client, only_auto, ids).await?;
    let demanded = Demanded {
        orders: &open_orders,
        lines: &open_lines,
        found,
        new: &[],
    };
    let (summary, _) = pass(conn, client, demanded, actor, at).await?;
    super::drop_aside(open_orders.len(), (open_orders, open_lines));
    Ok(summary)
}

/// Allocates new orders from their views (see `orders::stage_many`: ids drawn, nothing
/// written yet) and writes them, each order and line once: with what the pass allocated
/// and closed short, and the order's status and trace. With `allocate` false (orders
/// stored unallocated after lost races) they are written as received. Each view is
/// brought up to date with what was written, so the caller can answer from it without
/// reading it back.
pub async fn run_created(
    conn: &mut Conn,
    client: ClientId,
    views: &mut [OrderView],
    allocate: bool,
    actor: &str,
    at: i64,
) -> ApiResult<PassSummary> {
    if !allocate {
        write_new(conn, client, views, &HashMap::new(), &HashMap::new(), at).await?;
        return Ok(PassSummary::default());
    }
    // Demand as `open_demand` would read it: orders with open quantity, with all their lines.
    let open = |view: &&OrderView| {
        view.order.status != OrderStatus::Cancelled.as_str()
            && view.lines.iter().any(|l| l.open() > 0)
    };
    let open_orders: Vec<DemandOrder> = views
        .iter()
        .filter(open)
        .map(|v| DemandOrder::from(&v.order))
        .collect();
    let open_lines: Vec<OrderLineRow> = views
        .iter()
        .filter(open)
        .flat_map(|v| v.lines.iter().cloned())
        .collect();
    let demanded = Demanded {
        orders: &open_orders,
        lines: &open_lines,
        found: Found::New,
        new: views,
    };
    let (summary, mut written) = pass(conn, client, demanded, actor, at).await?;
    if !written.new_written {
        write_new(conn, client, views, &HashMap::new(), &HashMap::new(), at).await?;
    }
    for view in views.iter_mut() {
        written.update(view, at);
    }
    Ok(summary)
}

/// Writes new orders and their lines once: an order with its attempt (`attempts`: order →
/// (status, trace)) or as received, a line with the units allocated and closed short on it
/// (`added`: line → (allocated, cancelled)).
async fn write_new(
    conn: &mut Conn,
    client: ClientId,
    views: &[OrderView],
    attempts: &HashMap<i64, (&str, &str)>,
    added: &HashMap<i64, (i64, i64)>,
    at: i64,
) -> ApiResult<()> {
    let heads: Vec<orders::NewOrderHead> = views
        .iter()
        .map(|view| {
            let order = &view.order;
            let attempt = attempts.get(&order.id);
            orders::NewOrderHead {
                id: order.id,
                record: &order.record,
                body_hash: &order.body_hash,
                status: attempt.map_or(order.status.as_str(), |(status, _)| status),
                allocation_trace: attempt.map(|(_, trace)| *trace),
                attempts: order.attempts + i64::from(attempt.is_some()),
                created_at: order.created_at,
                updated_at: if attempt.is_some() {
                    at
                } else {
                    order.updated_at
                },
            }
        })
        .collect();
    orders::insert_new_orders(conn, client, &heads).await?;
    let lines: Vec<orders::NewLineRow> = views
        .iter()
        .flat_map(|view| &view.lines)
        .map(|line| {
            let (allocated, cancelled) = added.get(&line.id).copied().unwrap_or_default();
            orders::NewLineRow {
                id: line.id,
                order_id: line.order_id,
                line_id: &line.line_id,
                sku_id: line.sku_id,
                ordered: line.ordered,
                price_minor: line.price_minor,
                allocated: line.allocated + allocated,
                cancelled: line.cancelled + cancelled,
            }
        })
        .collect();
    orders::insert_lines(conn, client, &lines).await?;
    Ok(())
}

/// What a pass plans for: orders with open quantity and all their lines, how they were
/// found, and new orders not written yet (empty otherwise), which the pass writes.
struct Demanded<'a> {
    orders: &'a [DemandOrder],
    lines: &'a [OrderLineRow],
    found: Found,
    new: &'a [OrderView],
}

/// Plans and writes one pass over what `demanded` holds.
async fn pass(
    conn: &mut Conn,
    client: ClientId,
    demanded: Demanded<'_>,
    actor: &str,
    at: i64,
) -> ApiResult<(PassSummary, Written)> {
    let Demanded {
        orders: open_orders,
        lines: open_lines,
        found,
        new,
    } = demanded;
    if open_orders.is_empty() {
        return Ok((PassSummary::default(), Written::default()));
    }
    let masters = clients::planning_masters(conn, client).await?;
    let settings: ClientSettings = serde_json::from_str(&masters.settings)
        .map_err(|e| ApiError::Internal(format!("stored settings: {e}")))?;
    let candidates = candidate_warehouses(masters.warehouses);
    let pools_of_channel = channel_pools(masters.pools);
    let skus: Option<Vec<i64>> = (found != Found::All).then(|| {
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
    let used = match found {
        Found::New => HashMap::new(),
        Found::All | Found::Named => orders::used_warehouses(conn, client, &order_ids).await?,
    };
    // Demand is the open lines; every line counts for the status afterwards.
    let mut lines_of: HashMap<i64, Vec<&OrderLineRow>> = HashMap::new();
    for line in open_lines.iter().filter(|l| l.open() > 0) {
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
    let known = Known {
        orders: open_orders.iter().map(|o| (o.id, o)).collect(),
        lines: open_lines.iter().map(|l| (l.id, l)).collect(),
        line_rows: open_lines,
        warehouse_codes: candidates.iter().map(|w| (w.id, w.code.as_str())).collect(),
    };
    let (mut summary, written) = apply(conn, client, &plan, &known, new, actor, at).await?;
    summary.orders_seen = open_orders.len() as u64;
    super::drop_aside(demands.len(), (plan, demands, snapshot));
    Ok((summary, written))
}

/// What a pass wrote, for callers that answer from memory (see [`run_created`]); kept
/// only for passes over new orders.
#[derive(Default)]
struct Written {
    /// Per line: units the pass allocated and closed short.
    lines: HashMap<i64, (i64, i64)>,
    /// Per written order: what the pass wrote of it.
    orders: HashMap<i64, OrderWritten>,
    /// Whether the pass wrote the new orders it was given.
    new_written: bool,
}

#[derive(Default)]
struct OrderWritten {
    /// Its status and trace after the pass.
    attempt: Option<(String, String)>,
    shipments: Vec<ShipmentRow>,
    /// In the order written.
    allocations: Vec<AllocationRow>,
    /// In id order.
    events: Vec<EventRow>,
}

impl Written {
    fn order(&mut self, id: i64) -> &mut OrderWritten {
        self.orders.entry(id).or_default()
    }

    /// Brings `view` to what reading it back would answer now.
    fn update(&mut self, view: &mut OrderView, at: i64) {
        for line in &mut view.lines {
            if let Some((allocated, cancelled)) = self.lines.get(&line.id) {
                line.allocated += allocated;
                line.cancelled += cancelled;
            }
        }
        let Some(written) = self.orders.remove(&view.order.id) else {
            return;
        };
        if let Some((status, trace)) = written.attempt {
            view.order.status = status;
            view.order.allocation_trace = Some(trace);
            view.order.attempts += 1;
            view.order.updated_at = at;
        }
        view.shipments.extend(written.shipments);
        view.shipments.sort_by_key(|s| s.id);
        view.allocations.extend(written.allocations);
        view.events.extend(written.events);
        view.events.sort_by_key(|e| e.id);
    }
}

/// What a pass read, by id: its orders and lines, and the client's warehouse codes.
struct Known<'a> {
    orders: HashMap<i64, &'a DemandOrder>,
    lines: HashMap<i64, &'a OrderLineRow>,
    /// The lines as loaded.
    line_rows: &'a [OrderLineRow],
    warehouse_codes: HashMap<i64, &'a str>,
}

/// The client's warehouses as the engine plans with them.
fn candidate_warehouses(rows: Vec<PlanningWarehouse>) -> Vec<Warehouse> {
    rows.into_iter()
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
        .collect()
}

/// Channel code → the named pools tied to it, in pool code order (`pools`: code, channel
/// codes as a JSON list, in code order).
fn channel_pools(pools: Vec<(String, String)>) -> HashMap<String, Vec<String>> {
    let mut by_channel: HashMap<String, Vec<String>> = HashMap::new();
    for (code, channels) in pools {
        let channels: Vec<String> = serde_json::from_str(&channels).unwrap_or_default();
        for channel in channels {
            by_channel.entry(channel).or_default().push(code.clone());
        }
    }
    by_channel
}

fn demand(
    order: &DemandOrder,
    lines: &[&OrderLineRow],
    pools_of_channel: &HashMap<String, Vec<String>>,
    used: &HashMap<i64, Vec<i64>>,
) -> Demand {
    let mut pools = pools_of_channel
        .get(&order.channel)
        .cloned()
        .unwrap_or_default();
    pools.push(COMMON.to_owned());
    let ship_to = (order.ship_pincode.is_some() || order.ship_lat.is_some()).then(|| Place {
        lat: order.ship_lat,
        lon: order.ship_lon,
        pincode: order.ship_pincode.clone(),
    });
    Demand {
        order_id: order.id,
        seq: order.id,
        dispatch_by: order.dispatch_by,
        priority: order.priority,
        fulfilment: oms_domain::allocation::FulfilmentType::parse(&order.fulfilment_type)
            .unwrap_or(oms_domain::allocation::FulfilmentType::BlockComplete),
        fixed_warehouse: order.warehouse_id,
        pools,
        source: if order.stock == "BAD" {
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

/// Called by work a pass does while its statements run (on SQLite, on a thread of its
/// own) after its `n`th item (counted from 0): yields after every [`ITEMS_BETWEEN_YIELDS`],
/// so a statement that finished meanwhile has its successor sent at once instead of
/// waiting for the work to end.
async fn beside_writes(n: usize) {
    if n % ITEMS_BETWEEN_YIELDS == ITEMS_BETWEEN_YIELDS - 1 {
        tokio::task::yield_now().await;
    }
}

/// A few dozen orders' events take tens of microseconds to build; a statement takes a
/// millisecond or more.
const ITEMS_BETWEEN_YIELDS: usize = 32;

/// The movement binding units of `bucket` (a pool, or `BAD:<reason>`) to an order.
fn allocate_movement(bucket: &str, qty: i64) -> ApiResult<Movement> {
    let movement = match bucket.strip_prefix("BAD:") {
        Some(reason) => Movement::allocate_bad(reason, qty),
        None => Movement::allocate(bucket, qty),
    };
    movement.map_err(|e| ApiError::Internal(format!("allocation movement: {e}")))
}

/// Writes a plan in a constant number of statements per thousand rows: the stock
/// movements (guarded, one decrement per key and bucket), the shipments, the allocation
/// rows (guarded per line), the short closes, each written order's status and trace, and
/// the outbox events. An order whose attempt changed nothing and says what it said before
/// is not written at all, so a retry pass over a waiting backlog costs reads only.
///
/// New orders (`new`, not written yet) are written here once, complete: each order with
/// its status and trace, each line with what was allocated and closed short, before the
/// shipments and allocations that name them.
async fn apply(
    conn: &mut Conn,
    client: ClientId,
    plan: &Plan,
    known: &Known<'_>,
    new: &[OrderView],
    actor: &str,
    at: i64,
) -> ApiResult<(PassSummary, Written)> {
    let orders_by_id = &known.orders;
    let lines_by_id = &known.lines;
    let mut summary = PassSummary::default();
    let mut done = Written::default();
    // Only a pass over new orders answers its callers from what it wrote.
    let keep = !new.is_empty();
    // Each written order with its stored trace when it was needed to decide: an order the
    // plan changed is written whatever its trace says, which is spelled later, beside the
    // stock's statements.
    let mut deciding: Vec<(&OrderPlan, &DemandOrder, Option<String>)> = Vec::new();
    for order_plan in &plan.orders {
        let Some(order) = orders_by_id.get(&order_plan.order_id) else {
            continue;
        };
        let changed = !order_plan.allocations.is_empty() || !order_plan.short_closed.is_empty();
        if changed {
            deciding.push((order_plan, order, None));
            continue;
        }
        let trace = order_plan.trace.stored();
        if order.attempts == 0 || order.allocation_trace.as_deref() != Some(trace.as_str()) {
            deciding.push((order_plan, order, Some(trace)));
        }
    }
    if deciding.is_empty() {
        return Ok((summary, done));
    }

    let mut movements = Vec::new();
    let mut pairs = Vec::new();
    // Units this plan allocates and closes short, (line, qty), one entry per allocation.
    let mut allocated = Vec::new();
    let mut short = Vec::new();
    for (order_plan, order, _) in &deciding {
        for a in &order_plan.allocations {
            let key = StockKey {
                client,
                warehouse: a.warehouse,
                sku: a.sku,
            };
            movements.push((
                key,
                allocate_movement(&a.bucket, a.qty)?,
                // Spelled without the formatting machinery: once per allocation, 200,000 a pass.
                ["order:", order.order_code.as_str()].concat(),
            ));
            pairs.push((order.id, a.warehouse));
            allocated.push((a.line_id, a.qty));
        }
        short.extend(order_plan.short_closed.iter().copied());
    }
    // What the plan adds to each line, summed in vectors (a map hashed every one of a
    // large pass's 200,000 allocations).
    let allocated = orders::summed_by_line(allocated.into_iter());
    let cancelled = orders::summed_by_line(short.iter().copied());
    let sum_for = |sums: &[(i64, i64)], line: i64| {
        sums.binary_search_by_key(&line, |(id, _)| *id)
            .map_or(0, |at| sums[at].1)
    };
    let added_to = |line: i64| (sum_for(&allocated, line), sum_for(&cancelled, line));
    // Line → (allocated, cancelled), for a pass over new orders (a few hundred lines).
    let added = || {
        let mut by_line: HashMap<i64, (i64, i64)> = HashMap::new();
        for (line, qty) in &allocated {
            by_line.entry(*line).or_default().0 += qty;
        }
        for (line, qty) in &cancelled {
            by_line.entry(*line).or_default().1 += qty;
        }
        by_line
    };
    // Every line as it will stand, sorted by order, so each written order's lines are one
    // slice (a map of a vector per order cost 100,000 allocations in a large pass). Read
    // in the order loaded (by id, so by order already, a backlog's lines being numbered
    // order by order) rather than a map's.
    let mut counted: Vec<(i64, LineCounts)> = known
        .line_rows
        .iter()
        .map(|line| {
            let (allocated, cancelled) = added_to(line.id);
            let counts = LineCounts {
                ordered: line.ordered,
                allocated: line.allocated + allocated,
                shipped: line.shipped,
                cancelled: line.cancelled + cancelled,
            };
            (line.order_id, counts)
        })
        .collect();
    counted.sort_unstable_by_key(|(order, _)| *order);
    let (line_orders, counts): (Vec<i64>, Vec<LineCounts>) = counted.into_iter().unzip();
    let statuses: Vec<OrderStatus> = deciding
        .iter()
        .map(|(_, order, _)| {
            let first = line_orders.partition_point(|o| *o < order.id);
            let end = line_orders.partition_point(|o| *o <= order.id);
            derive_status(&counts[first..end], true, false)
        })
        .collect();

    // The changed orders' traces are spelled while the stock's statements run (on SQLite,
    // on a thread of its own): ~0.1 s of a 100,000-order pass that the database otherwise
    // waited for. (Deriving the statuses there too made the pass slower, measured.)
    let mut changes = StockChanges::new();
    let spelling = async {
        let mut traces = Vec::with_capacity(deciding.len());
        for (n, (order_plan, _, trace)) in deciding.iter_mut().enumerate() {
            traces.push(trace.take().unwrap_or_else(|| order_plan.trace.stored()));
            beside_writes(n).await;
        }
        traces
    };
    let (moved, traces) = tokio::join!(
        biased;
        changes.apply_many(conn, &movements, actor, at),
        spelling
    );
    moved?;
    let mut written: Vec<(&OrderPlan, &DemandOrder, String)> = deciding
        .into_iter()
        .zip(traces)
        .map(|((order_plan, order, _), trace)| (order_plan, order, trace))
        .collect();
    if keep {
        // A new order the plan did not attempt (none today: every new order has open
        // quantity) is written as received.
        let attempts: HashMap<i64, (&str, &str)> = written
            .iter()
            .zip(&statuses)
            .map(|((_, order, trace), status)| (order.id, (status.as_str(), trace.as_str())))
            .collect();
        write_new(conn, client, new, &attempts, &added(), at).await?;
        done.new_written = true;
    }
    // Each (order, warehouse) once, in order: one shipment each.
    pairs.sort_unstable();
    pairs.dedup();
    let shipment_of = orders::insert_shipments(conn, client, &pairs, at).await?;
    let mut rows = Vec::with_capacity(movements.len());
    for (order_plan, order, _) in &written {
        for a in &order_plan.allocations {
            let shipment = *shipment_of
                .get(&(order.id, a.warehouse))
                .ok_or_else(|| ApiError::Internal("a shipment was not created".into()))?;
            rows.push((
                shipment,
                a.line_id,
                a.warehouse,
                a.sku,
                a.bucket.as_str(),
                a.qty,
            ));
            if let (true, Some(line)) = (keep, lines_by_id.get(&a.line_id)) {
                done.order(order.id).allocations.push(AllocationRow {
                    shipment_id: shipment,
                    order_line_id: a.line_id,
                    line_id: line.line_id.clone(),
                    sku: line.sku.clone(),
                    bucket: a.bucket.clone(),
                    qty: a.qty,
                });
            }
            summary.lines_allocated += 1;
            summary.units_allocated += u64::try_from(a.qty).unwrap_or(0);
        }
    }
    // Attempts take the traces: only a pass over new orders reads them again.
    let attempts: Vec<(i64, &str, String)> = if keep {
        Vec::new()
    } else {
        written
            .iter_mut()
            .zip(&statuses)
            .map(|((_, order, trace), status)| (order.id, status.as_str(), std::mem::take(trace)))
            .collect()
    };
    // The orders' events are built while the allocations, short closes and attempts are
    // written: SQLite runs the statements on a thread of its own, so building between
    // them, a few orders at a time, keeps both threads busy (a 100,000-order pass builds
    // 250,000 events). Each yield lets a finished statement's successor be sent at once.
    let writing = async {
        if keep {
            // The lines were written with their counts, the orders with their attempt.
            orders::insert_allocation_rows(&mut *conn, client, &rows).await?;
        } else {
            orders::insert_allocations(&mut *conn, client, &rows).await?;
            orders::cancel_open_many(&mut *conn, &short).await?;
            orders::record_attempts(&mut *conn, &attempts, at).await?;
        }
        Ok::<_, ApiError>(())
    };
    let building = async {
        let mut events = Vec::new();
        for (built, ((order_plan, order, _), status)) in written.iter().zip(&statuses).enumerate() {
            events.extend(order_events(
                order_plan,
                order,
                status.as_str(),
                known,
                &shipment_of,
            )?);
            beside_writes(built).await;
        }
        Ok::<_, ApiError>(events)
    };
    let (wrote, built) = tokio::join!(biased; writing, building);
    wrote?;
    let mut events = built?;
    // Order by order, each order's events in the order built: planned in SLA order, they
    // went to random places in the outbox's order index.
    events.sort_by_key(|(_, order, _)| *order);
    // The orders' events, then the stock's, written together; each key's event is made
    // while the statement before its own runs (a 100,000-order pass announces tens of
    // thousands of keys).
    let balances = changes.balances(conn).await?;
    let count = events.len() + balances.len();
    let announced = balances.into_iter().map(|row| {
        let (event_type, order, data) = announcement(row);
        (event_type, order, Cow::Owned(data))
    });
    let all = orders::borrowed_events(&events).chain(announced);
    let ids = orders::emit_made(conn, client, count, all, at, keep).await?;
    if !keep {
        super::drop_aside(written.len(), (events, movements, attempts, counts));
        return Ok((summary, done));
    }
    for ((_, order, trace), status) in written.iter().zip(&statuses) {
        done.order(order.id).attempt = Some((status.as_str().to_owned(), trace.clone()));
    }
    for ((event_type, order, data), id) in events.into_iter().zip(ids) {
        if let Some(order) = order {
            done.order(order).events.push(EventRow {
                id,
                event_type: event_type.to_owned(),
                data,
                at,
            });
        }
    }
    done.lines = added();
    for ((order, warehouse), id) in &shipment_of {
        done.order(*order).shipments.push(ShipmentRow {
            id: *id,
            order_id: *order,
            warehouse_id: *warehouse,
            warehouse: known
                .warehouse_codes
                .get(warehouse)
                .map(|code| (*code).to_owned())
                .unwrap_or_default(),
            status: ShipmentStatus::Released.as_str().to_owned(),
            awb: None,
            carrier: None,
            created_at: at,
            updated_at: at,
        });
    }
    Ok((summary, done))
}

/// The outbox events of one order's attempt: `order.allocated` and one `shipment.released`
/// per new shipment when it allocated, `order.cancelled` when it closed quantity short.
/// Written from typed payloads (fields in name order, as the events have always been): a
/// pass over a backlog writes a quarter of a million of them.
fn order_events(
    order_plan: &OrderPlan,
    order: &DemandOrder,
    status: &str,
    known: &Known<'_>,
    shipment_of: &HashMap<(i64, i64), i64>,
) -> ApiResult<Vec<(&'static str, Option<i64>, String)>> {
    let lines_by_id = &known.lines;
    let line_id = |id: &i64| lines_by_id.get(id).map(|l| l.line_id.as_str());
    let channel = order.channel.as_str();
    let order_code = order.order_code.as_str();
    let mut events = Vec::new();
    if !order_plan.allocations.is_empty() {
        let allocated = payloads::OrderAllocated {
            allocated: order_plan
                .allocations
                .iter()
                .map(|a| payloads::LineQty {
                    line_id: line_id(&a.line_id),
                    qty: a.qty,
                })
                .collect(),
            channel,
            order_code,
            status,
        };
        events.push(("order.allocated", Some(order.id), json(&allocated)?));
        let warehouses: BTreeMap<i64, ()> = order_plan
            .allocations
            .iter()
            .map(|a| (a.warehouse, ()))
            .collect();
        for warehouse in warehouses.keys() {
            let released = payloads::ShipmentReleased {
                channel,
                lines: order_plan
                    .allocations
                    .iter()
                    .filter(|a| a.warehouse == *warehouse)
                    .map(|a| payloads::ReleasedLine {
                        line_id: line_id(&a.line_id),
                        qty: a.qty,
                        sku: lines_by_id.get(&a.line_id).map(|l| l.sku.as_str()),
                    })
                    .collect(),
                order_code,
                shipment_id: shipment_of.get(&(order.id, *warehouse)).copied(),
                warehouse: known.warehouse_codes.get(warehouse).copied(),
            };
            events.push(("shipment.released", Some(order.id), json(&released)?));
        }
    }
    if !order_plan.short_closed.is_empty() {
        let cancelled = payloads::OrderCancelled {
            cancelled: order_plan
                .short_closed
                .iter()
                .map(|(line, qty)| payloads::ClosedLine {
                    line_id: line_id(line),
                    qty: *qty,
                    reason: "SHORT_CLOSED",
                })
                .collect(),
            channel,
            order_code,
        };
        events.push(("order.cancelled", Some(order.id), json(&cancelled)?));
    }
    Ok(events)
}

fn json<T: Serialize>(payload: &T) -> ApiResult<String> {
    serde_json::to_string(payload).map_err(|e| ApiError::Internal(format!("event payload: {e}")))
}

/// The payloads of a pass's order events. Field order is name order: the events were
/// first written from `serde_json::Value` maps, which sort their keys.
mod payloads {
    use serde::Serialize;

    #[derive(Serialize)]
    pub struct LineQty<'a> {
        pub line_id: Option<&'a str>,
        pub qty: i64,
    }

    #[derive(Serialize)]
    pub struct OrderAllocated<'a> {
        pub allocated: Vec<LineQty<'a>>,
        pub channel: &'a str,
        pub order_code: &'a str,
        pub status: &'a str,
    }

    #[derive(Serialize)]
    pub struct ReleasedLine<'a> {
        pub line_id: Option<&'a str>,
        pub qty: i64,
        pub sku: Option<&'a str>,
    }

    #[derive(Serialize)]
    pub struct ShipmentReleased<'a> {
        pub channel: &'a str,
        pub lines: Vec<ReleasedLine<'a>>,
        pub order_code: &'a str,
        pub shipment_id: Option<i64>,
        pub warehouse: Option<&'a str>,
    }

    #[derive(Serialize)]
    pub struct ClosedLine<'a> {
        pub line_id: Option<&'a str>,
        pub qty: i64,
        pub reason: &'static str,
    }

    #[derive(Serialize)]
    pub struct OrderCancelled<'a> {
        pub cancelled: Vec<ClosedLine<'a>>,
        pub channel: &'a str,
        pub order_code: &'a str,
    }
}
