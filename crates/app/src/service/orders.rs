//! Outward orders: idempotent ingestion with allocation in the same transaction, the read
//! model, search, and allocation on demand.

use std::collections::HashMap;

use oms_domain::allocation::Trace;
use oms_domain::code::Code;
use oms_domain::order::{NewOrder, OrderDraft, OrderLineDraft, ShipToDraft};
use oms_domain::validation::{FieldError, Problems};
use oms_store::orders::{
    self, AllocationRow, EventRow, KeyFound, OrderLineRow, OrderRecord, OrderRow, ShipmentRow,
};
use oms_store::{ClientId, Conn, Store, channels, skus, warehouses};
use sha2::{Digest, Sha256};

use crate::auth::Scope;
use crate::clock::{now_micros, parse_rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::fields::Fields;
use crate::service::allocate::{self, PassSummary};
use crate::service::intake::{OrderIntake, Submitted};
use crate::service::refuse_unknown;

pub const ORDER_FIELDS: &[&str] = &[
    "order_code",
    "kind",
    "channel",
    "fulfilment_type",
    "retry",
    "dispatch_by",
    "priority",
    "warehouse",
    "destination_warehouse",
    "stock",
    "ship_to.name",
    "ship_to.address",
    "ship_to.pincode",
    "ship_to.phone",
    "ship_to.email",
    "ship_to.lat",
    "ship_to.lon",
    "lines[].line_id",
    "lines[].sku",
    "lines[].qty",
    "lines[].price",
];

/// How often a transaction that lost a race for stock is run again before giving up.
pub const RACE_ATTEMPTS_MAX: u32 = 5;

pub fn order_draft(fields: &Fields) -> Result<OrderDraft, Vec<FieldError>> {
    refuse_unknown(fields, ORDER_FIELDS, &[])?;
    Ok(OrderDraft {
        order_code: fields.get("order_code"),
        kind: fields.get("kind"),
        channel: fields.get("channel"),
        fulfilment_type: fields.get("fulfilment_type"),
        retry: fields.get("retry"),
        dispatch_by: fields.get("dispatch_by"),
        priority: fields.get("priority"),
        warehouse: fields.get("warehouse"),
        destination_warehouse: fields.get("destination_warehouse"),
        stock: fields.get("stock"),
        ship_to: ShipToDraft {
            name: fields.get("ship_to.name"),
            address: fields.get("ship_to.address"),
            pincode: fields.get("ship_to.pincode"),
            phone: fields.get("ship_to.phone"),
            email: fields.get("ship_to.email"),
            lat: fields.get("ship_to.lat"),
            lon: fields.get("ship_to.lon"),
        },
        lines: fields
            .items("lines")
            .iter()
            .map(|line| OrderLineDraft {
                line_id: line.get("line_id"),
                sku: line.get("sku"),
                qty: line.get("qty"),
                price: line.get("price"),
            })
            .collect(),
    })
}

/// Validates an order's fields into a new order and its identity hash.
pub fn validate(fields: &Fields) -> Result<(NewOrder, String), Vec<FieldError>> {
    let order = order_draft(fields)?.validate(parse_rfc3339)?;
    let canonical = serde_json::to_string(&order).unwrap_or_default();
    let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
    Ok((order, hash))
}

/// The ids of the codes a set of orders names, looked up once for all of them.
#[derive(Default)]
struct Lookups {
    channels: HashMap<String, Option<i64>>,
    warehouses: HashMap<String, Option<i64>>,
    skus: HashMap<String, i64>,
}

async fn lookups(conn: &mut Conn, client: ClientId, orders: &[&NewOrder]) -> ApiResult<Lookups> {
    let mut found = Lookups::default();
    for order in orders {
        let channel = order.channel.as_str();
        if !found.channels.contains_key(channel) {
            let id = channels::find(&mut *conn, client, channel)
                .await?
                .map(|c| c.id);
            found.channels.insert(channel.to_owned(), id);
        }
        for code in [&order.warehouse, &order.destination_warehouse]
            .into_iter()
            .flatten()
        {
            if !found.warehouses.contains_key(code.as_str()) {
                let id = warehouses::find_mapped(&mut *conn, client, code.as_str())
                    .await?
                    .map(|w| w.id);
                found.warehouses.insert(code.as_str().to_owned(), id);
            }
        }
    }
    let mut codes: Vec<&str> = orders
        .iter()
        .flat_map(|o| o.lines.iter().map(|l| l.sku.as_str()))
        .collect();
    codes.sort_unstable();
    codes.dedup();
    found.skus = skus::ids_by_code(conn, client, &codes).await?;
    Ok(found)
}

type ResolvedLines = Vec<(String, i64, i64, Option<i64>)>;

/// The order's codes resolved to ids, or every code that names nothing of this client.
fn resolve(
    order: &NewOrder,
    found: &Lookups,
) -> Result<(OrderRecord, ResolvedLines), Vec<FieldError>> {
    let mut problems = Problems::new();
    let channel = found
        .channels
        .get(order.channel.as_str())
        .copied()
        .flatten();
    if channel.is_none() {
        problems.add(
            "channel",
            format!("{} is not a channel of this client", order.channel),
        );
    }
    let mut mapped = Vec::new();
    let named: [(&str, Option<&Code>); 2] = [
        ("warehouse", order.warehouse.as_ref()),
        (
            "destination_warehouse",
            order.destination_warehouse.as_ref(),
        ),
    ];
    for (field, code) in named {
        let id = code.and_then(|code| found.warehouses.get(code.as_str()).copied().flatten());
        if let (Some(code), None) = (code, id) {
            problems.add(field, format!("{code} is not a warehouse of this client"));
        }
        mapped.push(id);
    }
    let mut lines = Vec::with_capacity(order.lines.len());
    for (index, line) in order.lines.iter().enumerate() {
        match found.skus.get(line.sku.as_str()) {
            Some(id) => lines.push((
                line.line_id.as_str().to_owned(),
                *id,
                line.qty,
                line.price_minor,
            )),
            None => problems.add(
                format!("lines[{index}].sku"),
                format!("{} is not a SKU of this client", line.sku),
            ),
        }
    }
    let (Some(channel), true) = (channel, problems.is_empty()) else {
        return Err(problems.into_vec());
    };
    let ship_to = order.ship_to.as_ref();
    Ok((
        OrderRecord {
            channel_id: channel,
            order_code: order.order_code.as_str().to_owned(),
            kind: order.kind.as_str().to_owned(),
            fulfilment_type: order.fulfilment_type.as_str().to_owned(),
            retry: order.retry.as_str().to_owned(),
            dispatch_by: order.dispatch_by,
            priority: order.priority,
            warehouse_id: mapped[0],
            destination_warehouse_id: mapped[1],
            stock: order.stock.as_str().to_owned(),
            ship_name: ship_to.map(|s| s.name.clone()),
            ship_address: ship_to.map(|s| s.address.clone()),
            ship_pincode: ship_to.map(|s| s.pincode.clone()),
            ship_phone: ship_to.and_then(|s| s.phone.clone()),
            ship_email: ship_to.and_then(|s| s.email.clone()),
            ship_lat: ship_to.and_then(|s| s.lat),
            ship_lon: ship_to.and_then(|s| s.lon),
        },
        lines,
    ))
}

/// What storing an order found.
pub enum Ingested {
    /// A new order: its view with the ids drawn for it, as it is (or, from
    /// [`stage_many`], will be) written — no shipments, allocations or events yet — for a
    /// caller that goes on without reading it back.
    Created(Box<OrderView>),
    /// The same order was stored before.
    Same(i64),
    /// Another order holds this (channel, order_code).
    Different,
}

/// Stores a validated order in the caller's transaction, or answers every code in it that
/// names nothing of the client.
pub async fn insert(
    conn: &mut Conn,
    client: ClientId,
    order: &NewOrder,
    hash: &str,
    at: i64,
) -> ApiResult<Result<Ingested, Vec<FieldError>>> {
    let mut answers = insert_many(conn, client, &[(order, hash)], at).await?;
    answers
        .pop()
        .ok_or_else(|| ApiError::Internal("an insert answered nothing".into()))
}

/// Stores many validated orders of one client in the caller's transaction, in a few
/// statements whatever their number; per order, in order, what [`insert`] answers.
pub async fn insert_many(
    conn: &mut Conn,
    client: ClientId,
    batch: &[(&NewOrder, &str)],
    at: i64,
) -> ApiResult<Vec<Result<Ingested, Vec<FieldError>>>> {
    // New orders' views go through `run_created` (which writes their lines, here without
    // allocating) and come back in their places.
    let mut created = Vec::new();
    let mut others = Vec::with_capacity(batch.len());
    for answer in stage_many(conn, client, batch, at).await? {
        match answer {
            Ok(Ingested::Created(view)) => {
                created.push(*view);
                others.push(None);
            }
            other => others.push(Some(other)),
        }
    }
    allocate::run_created(conn, client, &mut created, false, "", at).await?;
    let mut created = created.into_iter();
    others
        .into_iter()
        .map(|other| match other {
            Some(answer) => Ok(answer),
            None => created
                .next()
                .map(|view| Ok(Ingested::Created(Box::new(view))))
                .ok_or_else(|| ApiError::Internal("an order was not written".into())),
        })
        .collect()
}

/// As [`insert_many`], but writes nothing: a new order gets ids drawn for it and its
/// lines and a view of it as it will be written. Hand the new orders' views to
/// [`allocate::run_created`] in the same transaction, which plans them and writes each
/// order and line once, complete.
pub async fn stage_many(
    conn: &mut Conn,
    client: ClientId,
    batch: &[(&NewOrder, &str)],
    at: i64,
) -> ApiResult<Vec<Result<Ingested, Vec<FieldError>>>> {
    let orders: Vec<&NewOrder> = batch.iter().map(|(o, _)| *o).collect();
    let found = lookups(&mut *conn, client, &orders).await?;
    let resolved: Vec<_> = orders.iter().map(|o| resolve(o, &found)).collect();
    let rows: Vec<orders::NewOrderRow> = resolved
        .iter()
        .zip(batch)
        .filter_map(|(r, (_, hash))| {
            r.as_ref()
                .ok()
                .map(|(record, lines)| (record, *hash, lines.as_slice()))
        })
        .collect();
    let keys = orders::find_keys(conn, client, &rows).await?;
    let new_orders = keys.iter().filter(|k| **k == KeyFound::New).count();
    let new_lines: usize = keys
        .iter()
        .zip(&rows)
        .filter(|(k, _)| **k == KeyFound::New)
        .map(|(_, (_, _, lines))| lines.len())
        .sum();
    let mut order_ids = orders::draw_ids(conn, "orders", new_orders)
        .await?
        .into_iter();
    let mut line_ids = orders::draw_ids(conn, "order_lines", new_lines)
        .await?
        .into_iter();
    // The id each new row of `rows` gets, for the repeats that name it.
    let mut id_of_row: Vec<Option<i64>> = vec![None; rows.len()];
    let mut row = 0;
    let mut answers = Vec::with_capacity(batch.len());
    for ((order, hash), resolved) in batch.iter().zip(&resolved) {
        let (record, lines) = match resolved {
            Ok(resolved) => resolved,
            Err(problems) => {
                answers.push(Err(problems.clone()));
                continue;
            }
        };
        let key = keys
            .get(row)
            .ok_or_else(|| ApiError::Internal("a key was not looked up".into()))?;
        let answer = match key {
            KeyFound::New => {
                let id = order_ids
                    .next()
                    .ok_or_else(|| ApiError::Internal("too few order ids drawn".into()))?;
                id_of_row[row] = Some(id);
                let ids: Vec<i64> = line_ids.by_ref().take(lines.len()).collect();
                Ingested::Created(Box::new(new_view(
                    order,
                    hash,
                    id,
                    record.clone(),
                    lines,
                    &ids,
                    at,
                )?))
            }
            KeyFound::Stored { id, body_hash } if body_hash == hash => Ingested::Same(*id),
            KeyFound::Stored { .. } => Ingested::Different,
            KeyFound::Repeats(first) => {
                let id =
                    id_of_row.get(*first).copied().flatten().ok_or_else(|| {
                        ApiError::Internal("a repeat came before its order".into())
                    })?;
                if rows[*first].1 == *hash {
                    Ingested::Same(id)
                } else {
                    Ingested::Different
                }
            }
        };
        answers.push(Ok(answer));
        row += 1;
    }
    Ok(answers)
}

/// The view of a new order before its allocation: exactly what reading it back would
/// answer once it is written as received.
fn new_view(
    order: &NewOrder,
    hash: &str,
    id: i64,
    record: OrderRecord,
    lines: &ResolvedLines,
    line_ids: &[i64],
    at: i64,
) -> ApiResult<OrderView> {
    if line_ids.len() != lines.len() || order.lines.len() != lines.len() {
        return Err(ApiError::Internal(
            "an order's lines were not all written".into(),
        ));
    }
    let mut lines: Vec<OrderLineRow> = lines
        .iter()
        .zip(line_ids)
        .zip(&order.lines)
        .map(
            |(((line_id, sku_id, ordered, price_minor), line), given)| OrderLineRow {
                id: *line,
                order_id: id,
                line_id: line_id.clone(),
                sku_id: *sku_id,
                sku: given.sku.as_str().to_owned(),
                ordered: *ordered,
                allocated: 0,
                shipped: 0,
                cancelled: 0,
                price_minor: *price_minor,
            },
        )
        .collect();
    lines.sort_unstable_by_key(|l| l.id);
    Ok(OrderView {
        order: OrderRow {
            id,
            channel: order.channel.as_str().to_owned(),
            record,
            warehouse: order.warehouse.as_ref().map(|c| c.as_str().to_owned()),
            destination_warehouse: order
                .destination_warehouse
                .as_ref()
                .map(|c| c.as_str().to_owned()),
            status: oms_domain::order::OrderStatus::Created.as_str().to_owned(),
            body_hash: hash.to_owned(),
            allocation_trace: None,
            attempts: 0,
            created_at: at,
            updated_at: at,
        },
        lines,
        shipments: Vec::new(),
        allocations: Vec::new(),
        events: Vec::new(),
        remarks: Vec::new(),
    })
}

pub(crate) fn different(order: &NewOrder) -> String {
    format!(
        "order {} exists in channel {} with a different body",
        order.order_code, order.channel
    )
}

/// Takes an order in: the same body again answers the stored order (`created` false), a
/// different body under the same code is 409. A new order is committed with the orders
/// arriving beside it, allocated in that transaction (see `intake`); if it keeps losing
/// races for stock it is stored unallocated and the allocator retries it. The answer is
/// read back after the commit.
pub async fn create(
    intake: &OrderIntake,
    scope: &Scope,
    fields: &Fields,
) -> ApiResult<(OrderView, bool)> {
    let (order, hash) = validate(fields).map_err(ApiError::invalid)?;
    intake
        .take(Submitted {
            client: scope.client,
            actor: scope.actor.clone(),
            order,
            hash,
        })
        .await
}

/// Whether an error means the stock or a line changed under the transaction, so running
/// it again may succeed.
pub fn is_race(error: &ApiError) -> bool {
    matches!(error, ApiError::Conflict(_) | ApiError::Unavailable(_))
}

/// An order's stored allocation trace in the API's shape (`null` before its first
/// attempt); see `Trace::stored`.
pub fn trace_json(stored: Option<&str>) -> serde_json::Value {
    stored
        .and_then(Trace::from_stored)
        .and_then(|trace| serde_json::to_value(trace).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// An order with everything the API and the panel show.
#[derive(Clone)]
pub struct OrderView {
    pub order: OrderRow,
    pub lines: Vec<OrderLineRow>,
    pub shipments: Vec<ShipmentRow>,
    pub allocations: Vec<AllocationRow>,
    pub events: Vec<EventRow>,
    pub remarks: Vec<oms_store::fulfilment::RemarkRow>,
}

pub async fn view(conn: &mut Conn, client: ClientId, id: i64) -> ApiResult<OrderView> {
    views(conn, client, &[id])
        .await?
        .remove(&id)
        .ok_or_else(|| ApiError::NotFound("order".into()))
}

/// The views of many orders at once: six statements whatever their number (the order
/// intake answers a whole batch this way).
pub async fn views(
    conn: &mut Conn,
    client: ClientId,
    ids: &[i64],
) -> ApiResult<std::collections::HashMap<i64, OrderView>> {
    let mut views: std::collections::HashMap<i64, OrderView> =
        orders::find_many(&mut *conn, client, ids)
            .await?
            .into_iter()
            .map(|order| {
                (
                    order.id,
                    OrderView {
                        order,
                        lines: Vec::new(),
                        shipments: Vec::new(),
                        allocations: Vec::new(),
                        events: Vec::new(),
                        remarks: Vec::new(),
                    },
                )
            })
            .collect();
    for line in orders::lines_of(&mut *conn, client, ids).await? {
        if let Some(view) = views.get_mut(&line.order_id) {
            view.lines.push(line);
        }
    }
    for shipment in orders::shipments_of(&mut *conn, client, ids).await? {
        if let Some(view) = views.get_mut(&shipment.order_id) {
            view.shipments.push(shipment);
        }
    }
    for (order, allocation) in orders::allocations_of(&mut *conn, client, ids).await? {
        if let Some(view) = views.get_mut(&order) {
            view.allocations.push(allocation);
        }
    }
    for (order, event) in orders::events_of(&mut *conn, client, ids).await? {
        if let Some(view) = views.get_mut(&order) {
            view.events.push(event);
        }
    }
    for (order, remark) in oms_store::fulfilment::remarks_of(&mut *conn, client, ids).await? {
        if let Some(view) = views.get_mut(&order) {
            view.remarks.push(remark);
        }
    }
    Ok(views)
}

/// The order `code` of the client: with `channel` empty, the one order with that code in
/// any channel (409 when several channels have it).
pub async fn find(
    conn: &mut Conn,
    client: ClientId,
    code: &str,
    channel: &str,
) -> ApiResult<OrderRow> {
    let mut found = orders::find_by_code(&mut *conn, client, code, channel).await?;
    match found.len() {
        0 => Err(ApiError::NotFound(format!("order {code}"))),
        1 => Ok(found.remove(0)),
        _ => Err(ApiError::Conflict(format!(
            "order {code} exists in several channels: name one with ?channel="
        ))),
    }
}

pub async fn get(
    store: &Store,
    client: ClientId,
    code: &str,
    channel: &str,
) -> ApiResult<OrderView> {
    let mut conn = store
        .pool()
        .acquire()
        .await
        .map_err(oms_store::StoreError::from)?;
    let order = find(&mut conn, client, code, channel).await?;
    view(&mut conn, client, order.id).await
}

/// Allocates one order now, whatever its retry setting.
pub async fn allocate_one(
    store: &Store,
    scope: &Scope,
    code: &str,
    channel: &str,
) -> ApiResult<OrderView> {
    for attempt in 1..=RACE_ATTEMPTS_MAX {
        let mut tx = store.begin_write().await?;
        let order = find(tx.conn(), scope.client, code, channel).await?;
        match allocate::run(
            tx.conn(),
            scope.client,
            allocate::Scope::Orders(&[order.id]),
            &scope.actor,
            now_micros(),
        )
        .await
        {
            Ok(_) => {
                let view = view(tx.conn(), scope.client, order.id).await?;
                tx.commit().await?;
                return Ok(view);
            }
            Err(error) if is_race(&error) && attempt < RACE_ATTEMPTS_MAX => continue,
            Err(error) => return Err(error),
        }
    }
    Err(ApiError::Unavailable(
        "allocation kept racing; retry".into(),
    ))
}

/// One allocation pass over every open order of the client.
pub async fn run_pass(
    store: &Store,
    client: ClientId,
    pass: allocate::Scope<'_>,
    actor: &str,
) -> ApiResult<PassSummary> {
    for attempt in 1..=RACE_ATTEMPTS_MAX {
        let mut tx = store.begin_write().await?;
        if !oms_store::orders::try_lock_allocation(tx.conn(), client, store.backend()).await? {
            // Another instance is running this client's pass right now.
            return Ok(PassSummary::default());
        }
        match allocate::run(tx.conn(), client, pass, actor, now_micros()).await {
            Ok(summary) => {
                tx.commit().await?;
                return Ok(summary);
            }
            Err(error) if is_race(&error) && attempt < RACE_ATTEMPTS_MAX => continue,
            Err(error) => return Err(error),
        }
    }
    Err(ApiError::Unavailable(
        "allocation kept racing; retry".into(),
    ))
}
