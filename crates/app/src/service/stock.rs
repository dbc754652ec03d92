//! Stock outside inward orders: pools and pool movements, lost and found, absolute counts
//! from an external WMS, and the inventory and ledger views.

use std::collections::{BTreeMap, BTreeSet};

use oms_domain::code::Code;
use oms_domain::inventory::{Balance, COMMON, Movement, StockError, plan_absolute};
use oms_domain::inward::{LINE_QTY_MAX, line_qty};
use oms_domain::masters::NAME_CHARS_MAX;
use oms_domain::validation::{FieldError, Problems, required_text};
use oms_store::stock::{self, BucketRow, LedgerEntry, StockKey};
use oms_store::{ClientId, Conn, Store, StoreError, channels, orders, pools, skus, warehouses};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Scope;
use crate::clock::now_micros;
use crate::error::{ApiError, ApiResult};
use crate::fields::Fields;
use crate::service::refuse_unknown;

/// Items in one absolute-count request.
pub const ABSOLUTE_ITEMS_MAX: usize = 10_000;
pub const NOTE_CHARS_MAX: usize = 500;

// ---------- pools ----------

/// Creates or updates a named pool tied to channels; `COMMON` always exists and is not
/// written.
pub async fn put_pool(
    store: &Store,
    client: ClientId,
    code: &Code,
    fields: &Fields,
) -> ApiResult<(pools::PoolRow, bool)> {
    if code.as_str() == COMMON {
        return Err(ApiError::invalid_field(
            "code",
            "COMMON always exists and takes no settings",
        ));
    }
    refuse_unknown(fields, &["name", "channels[]"], &[]).map_err(ApiError::invalid)?;
    let mut problems = Problems::new();
    let name = problems.take(
        "name",
        required_text(fields.get("name").as_deref(), NAME_CHARS_MAX),
    );
    let codes = fields.texts("channels");
    let mut tx = store.begin_write().await?;
    let mut seen = BTreeSet::new();
    for (index, channel) in codes.iter().enumerate() {
        let field = format!("channels[{index}]");
        if !seen.insert(channel.as_str()) {
            problems.add(field, format!("{channel} is named twice"));
        } else if channels::find(tx.conn(), client, channel).await?.is_none() {
            problems.add(field, format!("{channel} is not a channel of this client"));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems.into_vec()));
    }
    let json = serde_json::to_string(&codes).map_err(|e| ApiError::Internal(e.to_string()))?;
    let name = name.unwrap_or_default();
    let created =
        pools::upsert(tx.conn(), client, code.as_str(), &name, &json, now_micros()).await?;
    let row = pools::find(tx.conn(), client, code.as_str())
        .await?
        .ok_or_else(|| ApiError::Internal("pool vanished after upsert".into()))?;
    tx.commit().await?;
    Ok((row, created))
}

/// Whether `pool` is a pool of the client: `COMMON` or a named one.
async fn pool_exists(conn: &mut Conn, client: ClientId, pool: &str) -> ApiResult<bool> {
    Ok(pool == COMMON || pools::find(conn, client, pool).await?.is_some())
}

// ---------- movements at one key ----------

/// The (warehouse, sku) of a request, resolved to a stock key, or the problems found.
async fn resolve_key(
    conn: &mut Conn,
    client: ClientId,
    warehouse: Option<String>,
    sku: Option<String>,
    field_prefix: &str,
    problems: &mut Problems,
) -> ApiResult<Option<StockKey>> {
    let warehouse_field = format!("{field_prefix}warehouse");
    let sku_field = format!("{field_prefix}sku");
    let warehouse = problems.take(&warehouse_field, Code::required(warehouse.as_deref()));
    let sku = problems.take(&sku_field, Code::required(sku.as_deref()));
    let warehouse_id = match &warehouse {
        Some(code) => match warehouses::find_mapped(&mut *conn, client, code.as_str()).await? {
            Some(row) => Some(row.id),
            None => {
                problems.add(
                    &warehouse_field,
                    format!("{code} is not a warehouse of this client"),
                );
                None
            }
        },
        None => None,
    };
    let sku_id = match &sku {
        Some(code) => match skus::find(&mut *conn, client, code.as_str()).await? {
            Some(row) => Some(row.id),
            None => {
                problems.add(&sku_field, format!("{code} is not a SKU of this client"));
                None
            }
        },
        None => None,
    };
    Ok(match (warehouse_id, sku_id) {
        (Some(warehouse), Some(sku)) => Some(StockKey {
            client,
            warehouse,
            sku,
        }),
        _ => None,
    })
}

/// Maps a refused guarded write to the answer a user understands.
fn insufficient(error: StoreError) -> ApiError {
    match error {
        StoreError::Insufficient { bucket, requested } => ApiError::Conflict(format!(
            "{bucket} holds less than {requested}: nothing was moved"
        )),
        other => other.into(),
    }
}

/// Applies one movement at one key in its own transaction; answers the balance after.
async fn move_one(
    store: &Store,
    scope: &Scope,
    fields: &Fields,
    known: &[&str],
    build: impl FnOnce(&mut Problems, &Fields) -> Option<(Movement, &'static str, Option<String>)>,
    check_pools: &[&str],
) -> ApiResult<Balance> {
    refuse_unknown(fields, known, &[]).map_err(ApiError::invalid)?;
    let mut problems = Problems::new();
    let mut tx = store.begin_write().await?;
    let key = resolve_key(
        tx.conn(),
        scope.client,
        fields.get("warehouse"),
        fields.get("sku"),
        "",
        &mut problems,
    )
    .await?;
    for name in check_pools {
        if let Some(pool) = fields.get(name)
            && Code::parse(&pool).is_ok()
            && !pool_exists(tx.conn(), scope.client, &pool).await?
        {
            problems.add(*name, format!("{pool} is not a pool of this client"));
        }
    }
    let movement = build(&mut problems, fields);
    let (Some(key), Some((movement, reference, note)), true) = (key, movement, problems.is_empty())
    else {
        return Err(ApiError::invalid(problems.into_vec()));
    };
    let at = now_micros();
    let entry = LedgerEntry {
        reference,
        note: note.as_deref(),
        actor: &scope.actor,
        at,
    };
    let mut changes = StockChanges::new();
    changes
        .apply(tx.conn(), key, &movement, &entry)
        .await
        .map_err(insufficient)?;
    let balance = stock::balance(tx.conn(), key).await?;
    changes.announce(tx.conn(), scope.client, at).await?;
    tx.commit().await?;
    Ok(balance)
}

fn movement_field(
    problems: &mut Problems,
    field: &str,
    movement: Result<Movement, oms_domain::inventory::MovementError>,
) -> Option<Movement> {
    problems.take(field, movement.map_err(|e| e.to_string()))
}

fn note(problems: &mut Problems, fields: &Fields) -> Option<String> {
    problems.take(
        "reason",
        required_text(fields.get("reason").as_deref(), NOTE_CHARS_MAX),
    )
}

/// Marks available units lost: `{warehouse, sku, qty, reason, pool?}` (pool COMMON when absent).
pub async fn mark_lost(store: &Store, scope: &Scope, fields: &Fields) -> ApiResult<Balance> {
    move_one(
        store,
        scope,
        fields,
        &["warehouse", "sku", "qty", "reason", "pool"],
        |problems, fields| {
            let qty = problems.take("qty", line_qty(fields.get("qty").as_deref()))?;
            let reason = note(problems, fields)?;
            let pool = fields.get("pool").unwrap_or_else(|| COMMON.to_owned());
            let movement = movement_field(problems, "pool", Movement::mark_lost(&pool, qty))?;
            Some((movement, "lost", Some(reason)))
        },
        &["pool"],
    )
    .await
}

/// Brings lost units back as available in COMMON: `{warehouse, sku, qty, reason}`.
pub async fn mark_found(store: &Store, scope: &Scope, fields: &Fields) -> ApiResult<Balance> {
    move_one(
        store,
        scope,
        fields,
        &["warehouse", "sku", "qty", "reason"],
        |problems, fields| {
            let qty = problems.take("qty", line_qty(fields.get("qty").as_deref()))?;
            let reason = note(problems, fields)?;
            let movement = movement_field(problems, "qty", Movement::found(qty))?;
            Some((movement, "found", Some(reason)))
        },
        &[],
    )
    .await
}

pub const POOL_MOVEMENT_FIELDS: &[&str] = &["warehouse", "sku", "from_pool", "to_pool", "qty"];

/// Moves available units between pools: `{warehouse, sku, from_pool, to_pool, qty}`.
pub async fn move_between_pools(
    store: &Store,
    scope: &Scope,
    fields: &Fields,
) -> ApiResult<Balance> {
    move_one(
        store,
        scope,
        fields,
        POOL_MOVEMENT_FIELDS,
        pool_movement,
        &["from_pool", "to_pool"],
    )
    .await
}

fn pool_movement(
    problems: &mut Problems,
    fields: &Fields,
) -> Option<(Movement, &'static str, Option<String>)> {
    let from = problems.take(
        "from_pool",
        Code::required(fields.get("from_pool").as_deref()),
    );
    let to = problems.take("to_pool", Code::required(fields.get("to_pool").as_deref()));
    let qty = problems.take("qty", line_qty(fields.get("qty").as_deref()));
    let (from, to, qty) = (from?, to?, qty?);
    if from == to {
        problems.add("to_pool", "must differ from from_pool");
        return None;
    }
    let movement = movement_field(
        problems,
        "to_pool",
        Movement::pool_move(from.as_str(), to.as_str(), qty),
    )?;
    Some((movement, "pool-movement", None))
}

/// Applies a file of pool movements in one transaction: all rows or none. Answers the
/// number of rows, or the problems per row index (0-based).
pub async fn move_between_pools_all(
    store: &Store,
    scope: &Scope,
    rows: &[Fields],
) -> ApiResult<Result<usize, Vec<(usize, Vec<FieldError>)>>> {
    let mut tx = store.begin_write().await?;
    let mut errors = Vec::new();
    let at = now_micros();
    let entry = LedgerEntry {
        reference: "pool-movement",
        note: None,
        actor: &scope.actor,
        at,
    };
    let mut changes = StockChanges::new();
    for (index, fields) in rows.iter().enumerate() {
        let mut problems = Problems::new();
        let key = resolve_key(
            tx.conn(),
            scope.client,
            fields.get("warehouse"),
            fields.get("sku"),
            "",
            &mut problems,
        )
        .await?;
        for name in ["from_pool", "to_pool"] {
            if let Some(pool) = fields.get(name)
                && Code::parse(&pool).is_ok()
                && !pool_exists(tx.conn(), scope.client, &pool).await?
            {
                problems.add(name, format!("{pool} is not a pool of this client"));
            }
        }
        let movement = pool_movement(&mut problems, fields);
        if let (Some(key), Some((movement, _, _)), true) = (key, movement, problems.is_empty()) {
            // Later rows see earlier rows' effect, as they would one after another.
            if let Err(error) = changes.apply(tx.conn(), key, &movement, &entry).await {
                match error {
                    StoreError::Insufficient { bucket, requested } => {
                        problems.add("qty", format!("{bucket} holds less than {requested}"));
                    }
                    other => return Err(other.into()),
                }
            }
        }
        if !problems.is_empty() {
            errors.push((index, problems.into_vec()));
        }
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    changes.announce(tx.conn(), scope.client, at).await?;
    tx.commit().await?;
    Ok(Ok(rows.len()))
}

// ---------- absolute counts ----------

/// Sets counted good stock from an external WMS: `{warehouse, items: [{sku, good}]}`. The
/// difference is booked as adjustments on available stock; a count below what is allocated
/// is refused (422), as is the whole request with it, so a sync never half-applies.
pub async fn absolute(
    store: &Store,
    scope: &Scope,
    fields: &Fields,
) -> ApiResult<Vec<(String, Balance)>> {
    refuse_unknown(fields, &["warehouse", "items[].sku", "items[].good"], &[])
        .map_err(ApiError::invalid)?;
    let items = fields.items("items");
    let mut problems = Problems::new();
    if items.is_empty() {
        problems.add("items", "at least one item is needed");
    }
    if items.len() > ABSOLUTE_ITEMS_MAX {
        return Err(ApiError::invalid_field(
            "items",
            format!("at most {ABSOLUTE_ITEMS_MAX} items"),
        ));
    }
    let mut tx = store.begin_write().await?;
    let mut counted_keys = Vec::with_capacity(items.len());
    let mut seen = BTreeSet::new();
    for (index, item) in items.iter().enumerate() {
        let prefix = format!("items[{index}].");
        let key = resolve_key(
            tx.conn(),
            scope.client,
            fields.get("warehouse"),
            item.get("sku"),
            &prefix,
            &mut problems,
        )
        .await?;
        let good_field = format!("{prefix}good");
        let counted = problems.take(&good_field, counted_good(item.get("good").as_deref()));
        let sku = item.get("sku").unwrap_or_default();
        if !seen.insert(sku.clone()) {
            problems.add(format!("{prefix}sku"), format!("{sku} is counted twice"));
            continue;
        }
        if let (Some(key), Some(counted)) = (key, counted) {
            counted_keys.push((sku, key, counted, good_field));
        }
    }
    // A count sets stock to a figure, so it is planned from what the key holds now: no other
    // writer may move the key between this read and the write (two syncs of the same count
    // would otherwise both add the difference). Keys are locked in one order, so two
    // syncs never wait on each other in a cycle.
    stock::lock_keys(tx.conn(), counted_keys.iter().map(|(_, key, _, _)| *key)).await?;
    let mut planned = Vec::with_capacity(counted_keys.len());
    for (sku, key, counted, good_field) in counted_keys {
        let balance = stock::balance(tx.conn(), key).await?;
        match plan_absolute(&balance, counted) {
            Ok(movements) => planned.push((sku, key, movements)),
            Err(StockError::BelowAllocated { counted, allocated }) => problems.add(
                good_field,
                format!("counted {counted} is below the {allocated} units allocated to orders; cancel or ship those first"),
            ),
            Err(other) => problems.add(good_field, other.to_string()),
        }
    }
    // A warehouse problem repeats once per item; say it once.
    let mut said = BTreeSet::new();
    let errors: Vec<FieldError> = problems
        .into_vec()
        .into_iter()
        .filter(|e| said.insert((e.field.clone(), e.message.clone())))
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let at = now_micros();
    let entry = LedgerEntry {
        reference: "absolute",
        note: None,
        actor: &scope.actor,
        at,
    };
    let mut changes = StockChanges::new();
    let mut after = Vec::with_capacity(planned.len());
    for (sku, key, movements) in planned {
        for movement in &movements {
            changes
                .apply(tx.conn(), key, movement, &entry)
                .await
                .map_err(insufficient)?;
        }
        after.push((sku, stock::balance(tx.conn(), key).await?));
    }
    changes.announce(tx.conn(), scope.client, at).await?;
    tx.commit().await?;
    Ok(after)
}

fn counted_good(text: Option<&str>) -> Result<i64, String> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("is required")?;
    let good: i64 = text
        .parse()
        .map_err(|_| format!("must be a whole number, got {text:?}"))?;
    if !(0..=LINE_QTY_MAX * 1000).contains(&good) {
        return Err(format!("must be between 0 and {}", LINE_QTY_MAX * 1000));
    }
    Ok(good)
}

// ---------- views ----------

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolStockOut {
    pub pool: String,
    /// Good units in this pool (`pool_qty`).
    pub qty: i64,
    pub allocated: i64,
    pub available: i64,
}

/// One warehouse's buckets for one SKU.
#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryOut {
    pub warehouse: String,
    pub sku: String,
    pub qc_pending: i64,
    pub good: i64,
    pub bad: i64,
    /// Bad units by QC-fail reason.
    pub bad_by_reason: BTreeMap<String, i64>,
    /// Bad units reserved by `RTO` orders until they ship (not part of `bad`).
    pub allocated_bad: i64,
    pub lost: i64,
    pub shipped: i64,
    pub allocated: i64,
    pub available: i64,
    pub pools: Vec<PoolStockOut>,
}

pub fn inventory_out(warehouse: String, sku: String, balance: &Balance) -> InventoryOut {
    InventoryOut {
        warehouse,
        sku,
        qc_pending: balance.qc_pending,
        good: balance.good(),
        bad: balance.bad_total(),
        bad_by_reason: balance
            .bad
            .iter()
            .filter(|(_, q)| **q != 0)
            .map(|(r, q)| (r.clone(), *q))
            .collect(),
        allocated_bad: balance.allocated_bad.values().sum(),
        lost: balance.lost,
        shipped: balance.shipped,
        allocated: balance.allocated(),
        available: balance.available(),
        pools: balance
            .pools
            .iter()
            .filter(|(_, p)| p.qty != 0 || p.allocated != 0)
            .map(|(pool, p)| PoolStockOut {
                pool: pool.clone(),
                qty: p.qty,
                allocated: p.allocated,
                available: p.available(),
            })
            .collect(),
    }
}

/// The buckets of one (warehouse, sku), as the inventory view shows them.
pub struct InventoryRow {
    pub warehouse: String,
    pub sku: String,
    pub balance: Balance,
}

/// Groups stored bucket rows into one row per key, in SKU then warehouse order, each key's
/// buckets in the order given. Rows read in that order already cost one pass; the
/// balances of a large pass's keys, read in id order, a sort (grouping them in a map of
/// text pairs took ~0.13 s for a 100,000-row order file's keys).
pub fn inventory_rows(mut rows: Vec<BucketRow>) -> Vec<InventoryRow> {
    // Stable: equal keys keep their buckets' order.
    rows.sort_by(|a, b| (&a.sku, &a.warehouse).cmp(&(&b.sku, &b.warehouse)));
    let mut grouped = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while let Some(first) = rows.next() {
        let mut buckets = vec![(first.bucket, first.qty)];
        while let Some(same) =
            rows.next_if(|row| row.sku == first.sku && row.warehouse == first.warehouse)
        {
            buckets.push((same.bucket, same.qty));
        }
        grouped.push(InventoryRow {
            warehouse: first.warehouse,
            sku: first.sku,
            balance: Balance::from_buckets(buckets),
        });
    }
    grouped
}

// ---------- changes ----------

/// Every stock change the services make goes through here (clippy refuses the store's
/// `stock::apply` elsewhere in this crate): it applies the movements and remembers the keys
/// they touched, so that the transaction ends by announcing each key's balance after it as
/// one `inventory.changed` event — the same shape as a row of `GET /inventory`.
#[derive(Debug, Default)]
#[must_use = "announce the changed keys before the transaction commits"]
pub struct StockChanges {
    keys: BTreeSet<StockKey>,
}

impl StockChanges {
    pub fn new() -> StockChanges {
        StockChanges::default()
    }

    /// Applies one movement at `key` (guarded, with its ledger row).
    #[allow(clippy::disallowed_methods)]
    pub async fn apply(
        &mut self,
        conn: &mut Conn,
        key: StockKey,
        movement: &Movement,
        entry: &LedgerEntry<'_>,
    ) -> Result<(), StoreError> {
        stock::apply(conn, key, movement, entry).await?;
        self.keys.insert(key);
        Ok(())
    }

    /// Applies many movements in batched statements (see `stock::apply_many`).
    #[allow(clippy::disallowed_methods)]
    pub async fn apply_many(
        &mut self,
        conn: &mut Conn,
        movements: &[(StockKey, Movement, String)],
        actor: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        stock::apply_many(conn, movements, actor, at).await?;
        self.keys.extend(movements.iter().map(|(key, _, _)| *key));
        Ok(())
    }

    /// Writes one `inventory.changed` event per touched key with its balance now. Called
    /// last in the transaction, as every outbox write is (see `orders::emit_many`).
    pub async fn announce(self, conn: &mut Conn, client: ClientId, at: i64) -> ApiResult<()> {
        let events: Vec<_> = self
            .balances(conn)
            .await?
            .into_iter()
            .map(announcement)
            .collect();
        orders::emit_many(conn, client, &events, at).await?;
        Ok(())
    }

    /// The touched keys' balances now, one row per key, in the order their events are
    /// written (see [`announcement`]): for a caller that makes the events as it writes them.
    pub async fn balances(self, conn: &mut Conn) -> ApiResult<Vec<InventoryRow>> {
        if self.keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<StockKey> = self.keys.into_iter().collect();
        Ok(inventory_rows(
            stock::rows_of_keys(&mut *conn, &keys).await?,
        ))
    }
}

/// The `inventory.changed` event of one key's balance: the data of a `GET /inventory` row.
pub fn announcement(row: InventoryRow) -> (&'static str, Option<i64>, String) {
    let out = inventory_out(row.warehouse, row.sku, &row.balance);
    // Serializing codes, numbers and maps keyed by text cannot fail.
    let data = serde_json::to_string(&out).unwrap_or_default();
    (INVENTORY_CHANGED, None, data)
}

pub const INVENTORY_CHANGED: &str = "inventory.changed";

#[cfg(test)]
mod tests {
    use oms_domain::inventory::Bucket;
    use oms_store::stock::BucketRow;

    use super::inventory_rows;

    fn row(warehouse: &str, sku: &str, bucket: Bucket, qty: i64) -> BucketRow {
        BucketRow {
            warehouse: warehouse.to_owned(),
            sku: sku.to_owned(),
            bucket,
            qty,
        }
    }

    /// Rows in any order come out one per key, in SKU then warehouse order, each key
    /// holding all of its buckets and no other key's.
    #[test]
    fn bucket_rows_group_into_one_row_per_key_in_code_order() {
        let rows = vec![
            row("DEL1", "TEE", Bucket::available("COMMON"), 5),
            row("BLR1", "TEE", Bucket::QcPending, 7),
            row("BLR1", "CAP", Bucket::allocated("COMMON"), 2),
            row("DEL1", "TEE", Bucket::allocated("COMMON"), 1),
            row("BLR1", "TEE", Bucket::available("COMMON"), 3),
            row("BLR1", "CAP", Bucket::available("COMMON"), 4),
        ];
        let grouped: Vec<(String, String, i64, i64, i64)> = inventory_rows(rows)
            .into_iter()
            .map(|r| {
                (
                    r.sku,
                    r.warehouse,
                    r.balance.qc_pending,
                    r.balance.good(),
                    r.balance.allocated(),
                )
            })
            .collect();
        assert_eq!(
            grouped,
            vec![
                ("CAP".into(), "BLR1".into(), 0, 6, 2),
                ("TEE".into(), "BLR1".into(), 7, 3, 0),
                ("TEE".into(), "DEL1".into(), 0, 6, 1),
            ]
        );
    }
}
