//! Stock buckets and the ledger. A movement is two guarded statements and a ledger row in
//! the caller's transaction: the source bucket falls only if it holds enough (checked in
//! the `UPDATE` itself, rows affected counted), the target rises, the ledger remembers why.

use oms_domain::inventory::{Balance, Bucket, Movement};
use sqlx::{AnyConnection, AnyExecutor, Row};

use std::collections::{BTreeMap, HashMap};

use crate::rows::{execute_chunks, rows_per_statement, rows_query, rows_source};
use crate::{
    ClientId, Ids, Placeholders, StoreError, StoreResult, fetch_json_chunks, insert_rows_sql,
    json_rows_sql, update_rows_sql,
};

/// One inventory key: (client, warehouse, sku).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StockKey {
    pub client: ClientId,
    pub warehouse: i64,
    pub sku: i64,
}

/// Why a movement happened, who made it, and when.
#[derive(Debug, Clone)]
pub struct LedgerEntry<'a> {
    /// The document that caused it: `inward:PO-1`, `absolute`, `pool-movement`, `lost`.
    pub reference: &'a str,
    pub note: Option<&'a str>,
    pub actor: &'a str,
    pub at: i64,
}

/// Applies `movement` at `key` and records it; [`StoreError::Insufficient`] when the
/// source bucket holds less than the movement's quantity.
pub async fn apply(
    conn: &mut AnyConnection,
    key: StockKey,
    movement: &Movement,
    entry: &LedgerEntry<'_>,
) -> StoreResult<()> {
    const TAKE: &str = "UPDATE stock SET qty = qty - $5 \
                        WHERE client_id = $1 AND warehouse_id = $2 AND sku_id = $3 \
                        AND bucket = $4 AND qty >= $5";
    const GIVE: &str = "INSERT INTO stock (client_id, warehouse_id, sku_id, bucket, qty) \
                        VALUES ($1, $2, $3, $4, $5) \
                        ON CONFLICT (client_id, warehouse_id, sku_id, bucket) \
                        DO UPDATE SET qty = stock.qty + excluded.qty";
    const RECORD: &str = "INSERT INTO ledger (client_id, warehouse_id, sku_id, from_bucket, \
                          to_bucket, qty, kind, reference, note, actor, at) \
                          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    lock_key(&mut *conn, key).await?;
    let qty = movement.qty();
    let from = movement.from().to_string();
    let to = movement.to().to_string();
    if *movement.from() != Bucket::External {
        let taken = sqlx::query(TAKE)
            .bind(key.client.0)
            .bind(key.warehouse)
            .bind(key.sku)
            .bind(&from)
            .bind(qty)
            .execute(&mut *conn)
            .await?;
        if taken.rows_affected() != 1 {
            return Err(StoreError::Insufficient {
                bucket: from,
                requested: qty,
            });
        }
    }
    if *movement.to() != Bucket::External {
        sqlx::query(GIVE)
            .bind(key.client.0)
            .bind(key.warehouse)
            .bind(key.sku)
            .bind(&to)
            .bind(qty)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(RECORD)
        .bind(key.client.0)
        .bind(key.warehouse)
        .bind(key.sku)
        .bind(from)
        .bind(to)
        .bind(qty)
        .bind(movement.kind().as_str())
        .bind(entry.reference)
        .bind(entry.note)
        .bind(entry.actor)
        .bind(entry.at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Applies many movements in a constant number of statements per thousand: one guarded
/// decrement per (key, source bucket) carrying the sum of its movements, one increment per
/// (key, target bucket), one ledger row per movement. [`StoreError::Insufficient`] when any
/// source holds less than its sum; the caller's transaction then must not commit.
///
/// The ledger rows are written in key order, each key's movements in the order given: the
/// ledger's key index (client, warehouse, SKU, id) then takes each batch's entries a page
/// at a time rather than at a random place per row. A key's history keeps its order; rows
/// of different keys written by one call are one transaction's, at one time, either way.
pub async fn apply_many<'m>(
    conn: &mut AnyConnection,
    movements: &'m [(StockKey, Movement, String)],
    actor: &str,
    at: i64,
) -> StoreResult<()> {
    let keys: Vec<StockKey> = movements.iter().map(|(key, _, _)| *key).collect();
    lock_keys(&mut *conn, keys).await?;
    // Each distinct bucket as stored, spelled once for the balances and the ledger: a
    // pass makes 200,000 movements between a handful of buckets, and spelling them
    // per movement cost two strings each.
    let mut spelling: HashMap<&Bucket, usize> = HashMap::new();
    let mut spelled: Vec<String> = Vec::new();
    let mut spell = |bucket: &'m Bucket| {
        *spelling.entry(bucket).or_insert_with(|| {
            spelled.push(bucket.to_string());
            spelled.len() - 1
        })
    };
    let spellings: Vec<(usize, usize)> = movements
        .iter()
        .map(|(_, movement, _)| (spell(movement.from()), spell(movement.to())))
        .collect();
    let buckets: Vec<(&str, &str)> = spellings
        .into_iter()
        .map(|(from, to)| (spelled[from].as_str(), spelled[to].as_str()))
        .collect();
    let mut takes: BTreeMap<(StockKey, &str), i64> = BTreeMap::new();
    let mut gives: BTreeMap<(StockKey, &str), i64> = BTreeMap::new();
    for ((key, movement, _), &(from, to)) in movements.iter().zip(&buckets) {
        if *movement.from() != Bucket::External {
            *takes.entry((*key, from)).or_default() += movement.qty();
        }
        if *movement.to() != Bucket::External {
            *gives.entry((*key, to)).or_default() += movement.qty();
        }
    }
    let placeholders = Placeholders::of(conn);
    let takes: Vec<_> = takes.into_iter().collect();
    let chunks = takes.chunks(rows_per_statement(placeholders));
    let taken = execute_chunks(&mut *conn, chunks.clone(), |chunk| {
        let sql = update_rows_sql(
            placeholders,
            "stock",
            "qty = stock.qty - v.column5",
            &["BIGINT", "BIGINT", "BIGINT", "TEXT", "BIGINT"],
            "stock.client_id = v.column1 AND stock.warehouse_id = v.column2 \
             AND stock.sku_id = v.column3 AND stock.bucket = v.column4 AND stock.qty >= v.column5",
            chunk.len(),
        );
        rows_query(placeholders, sql, &bucket_rows(chunk))
    })
    .await?;
    if let Some((chunk, _)) = chunks
        .zip(taken)
        .find(|(chunk, taken)| *taken != chunk.len() as u64)
    {
        return Err(StoreError::Insufficient {
            bucket: "a stock bucket".to_owned(),
            requested: chunk.iter().map(|(_, q)| q).sum(),
        });
    }
    let gives: Vec<_> = gives.into_iter().collect();
    execute_chunks(
        &mut *conn,
        gives.chunks(rows_per_statement(placeholders)),
        |chunk| {
            let sql = insert_rows_sql(
                placeholders,
                "stock",
                &[
                    ("client_id", "BIGINT"),
                    ("warehouse_id", "BIGINT"),
                    ("sku_id", "BIGINT"),
                    ("bucket", "TEXT"),
                    ("qty", "BIGINT"),
                ],
                Ids::Drawn,
                "ON CONFLICT (client_id, warehouse_id, sku_id, bucket) \
                 DO UPDATE SET qty = stock.qty + excluded.qty",
                chunk.len(),
            );
            rows_query(placeholders, sql, &bucket_rows(chunk))
        },
    )
    .await?;
    const LEDGER: [(&str, &str); 10] = [
        ("client_id", "BIGINT"),
        ("warehouse_id", "BIGINT"),
        ("sku_id", "BIGINT"),
        ("from_bucket", "TEXT"),
        ("to_bucket", "TEXT"),
        ("qty", "BIGINT"),
        ("kind", "TEXT"),
        ("reference", "TEXT"),
        ("actor", "TEXT"),
        ("at", "BIGINT"),
    ];
    let mut in_key_order: Vec<_> = movements.iter().zip(&buckets).collect();
    in_key_order.sort_by_key(|((key, _, _), _)| *key);
    execute_chunks(
        &mut *conn,
        in_key_order.chunks(rows_per_statement(placeholders)),
        |chunk| {
            let sql = insert_rows_sql(placeholders, "ledger", &LEDGER, Ids::Drawn, "", chunk.len());
            let rows: Vec<_> = chunk
                .iter()
                .map(|((key, movement, reference), (from, to))| {
                    (
                        key.client.0,
                        key.warehouse,
                        key.sku,
                        from,
                        to,
                        movement.qty(),
                        movement.kind().as_str(),
                        reference,
                        actor,
                        at,
                    )
                })
                .collect();
            rows_query(placeholders, sql, &rows)
        },
    )
    .await?;
    Ok(())
}

/// A stock statement's rows, one per (key, bucket): `(client, warehouse, sku, bucket, qty)`.
fn bucket_rows<'a>(chunk: &[((StockKey, &'a str), i64)]) -> Vec<(i64, i64, i64, &'a str, i64)> {
    chunk
        .iter()
        .map(|((key, bucket), qty)| (key.client.0, key.warehouse, key.sku, *bucket, *qty))
        .collect()
}

/// Holds `key` for the rest of the transaction against every other writer that locks it
/// (see [`lock_keys`]); on SQLite the write lock already does.
pub async fn lock_key(conn: &mut AnyConnection, key: StockKey) -> StoreResult<()> {
    lock_keys(conn, [key]).await
}

/// Holds every key of `keys` for the rest of the transaction, taken in one global order
/// (client, warehouse, SKU, bucket). Every stock write takes its keys' locks before it
/// touches a stock row, and a use case that touches several keys, or locks other rows
/// (shipments, order lines) before its stock, locks all its keys first: two transactions
/// then always meet on the first key they share and never hold each other's rows in a
/// cycle (a deadlock, which PostgreSQL breaks only after a second). Taking a lock again
/// in the same transaction is free.
///
/// On PostgreSQL the lock of a key is the row lock of its `QC_PENDING` row, not an advisory
/// lock: row locks live in the rows, so a batch may hold thousands of them, where advisory
/// locks fill the server's shared lock table (`max_locks_per_transaction` × connections;
/// 6,400 by default) and fail with "out of shared memory". One upsert in key order takes
/// them: a key without a `QC_PENDING` row gets an empty one (a zero row changes no balance,
/// and two transactions creating one key's row meet on its primary key), a key with one has
/// it locked — `ON CONFLICT DO UPDATE` locks every conflicting row, and `WHERE false` keeps
/// it from writing a new version, so the lock costs what `FOR NO KEY UPDATE` did and taking
/// it again stays cheap. Each key is found through the primary key by the conflict check. (A `SELECT … FOR NO KEY UPDATE` joining the list with the table was
/// planned once per connection and kept: planned while the table was small, as a hash join
/// over a scan of it, it read the whole table for every 1,000 keys of a first bulk stock
/// load — quadratic in the load.)
pub async fn lock_keys(
    conn: &mut AnyConnection,
    keys: impl IntoIterator<Item = StockKey>,
) -> StoreResult<()> {
    // PostgreSQL only: SQLite has one writer at a time and needs no lock.
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        return Ok(());
    }
    let keys: Vec<StockKey> = keys
        .into_iter()
        .collect::<std::collections::BTreeSet<StockKey>>()
        .into_iter()
        .collect();
    // Chunks in ascending key order, each locked in that order: one global order overall.
    for chunk in keys.chunks(rows_per_statement(Placeholders::Numbered)) {
        // One row per key stands for the key: its QC_PENDING row. Locking every bucket row
        // instead would let a row created by another writer meanwhile (a first AVAILABLE
        // or BAD row) be taken out of order.
        let lock = format!(
            "INSERT INTO stock (client_id, warehouse_id, sku_id, bucket, qty) \
             SELECT column1, column2, column3, 'QC_PENDING', 0 FROM ({}) AS v \
             ORDER BY column1, column2, column3 \
             ON CONFLICT (client_id, warehouse_id, sku_id, bucket) \
             DO UPDATE SET qty = stock.qty WHERE false",
            rows_source(
                Placeholders::Numbered,
                &["BIGINT", "BIGINT", "BIGINT"],
                chunk.len()
            )
        );
        let rows: Vec<_> = chunk
            .iter()
            .map(|key| (key.client.0, key.warehouse, key.sku))
            .collect();
        rows_query(Placeholders::Numbered, lock, &rows)?
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn bucket_of(text: &str) -> StoreResult<Bucket> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("stock bucket: {e}")))
}

/// The stored balance at `key`.
pub async fn balance<'e>(db: impl AnyExecutor<'e>, key: StockKey) -> StoreResult<Balance> {
    const SQL: &str = "SELECT bucket, qty FROM stock \
                       WHERE client_id = $1 AND warehouse_id = $2 AND sku_id = $3";
    let rows = sqlx::query(SQL)
        .bind(key.client.0)
        .bind(key.warehouse)
        .bind(key.sku)
        .fetch_all(db)
        .await?;
    let mut buckets = Vec::with_capacity(rows.len());
    for row in &rows {
        let bucket: String = row.try_get("bucket")?;
        buckets.push((bucket_of(&bucket)?, row.try_get::<i64, _>("qty")?));
    }
    Ok(Balance::from_buckets(buckets))
}

/// One stored bucket with the codes of its warehouse and SKU.
#[derive(Debug, Clone)]
pub struct BucketRow {
    pub warehouse: String,
    pub sku: String,
    pub bucket: Bucket,
    pub qty: i64,
}

fn bucket_row(row: &sqlx::any::AnyRow) -> StoreResult<BucketRow> {
    let bucket: String = row.try_get("bucket")?;
    Ok(BucketRow {
        warehouse: row.try_get("warehouse")?,
        sku: row.try_get("sku")?,
        bucket: bucket_of(&bucket)?,
        qty: row.try_get("qty")?,
    })
}

/// The client's stock rows for one page of SKU codes (those after `after`, at most
/// `skus_max` SKUs), optionally one SKU and one warehouse; ordered by SKU then warehouse.
/// Answers the rows and whether more SKUs follow.
pub async fn page<'e, E>(
    db: E,
    client: ClientId,
    sku: &str,
    warehouse: &str,
    after: &str,
    skus_max: i64,
) -> StoreResult<(Vec<BucketRow>, bool)>
where
    E: AnyExecutor<'e> + Copy,
{
    const CODES: &str = "SELECT DISTINCT s.code FROM stock st \
                         JOIN skus s ON s.id = st.sku_id \
                         JOIN warehouses w ON w.id = st.warehouse_id \
                         WHERE st.client_id = $1 AND s.code > $2 \
                         AND ($3 = '' OR s.code = $3) AND ($4 = '' OR w.code = $4) \
                         ORDER BY s.code LIMIT $5";
    const ROWS: &str = "SELECT w.code AS warehouse, s.code AS sku, st.bucket, st.qty FROM stock st \
                        JOIN skus s ON s.id = st.sku_id \
                        JOIN warehouses w ON w.id = st.warehouse_id \
                        WHERE st.client_id = $1 AND s.code >= $2 AND s.code <= $3 \
                        AND ($4 = '' OR w.code = $4) \
                        ORDER BY s.code, w.code, st.bucket";
    let codes = sqlx::query(CODES)
        .bind(client.0)
        .bind(after)
        .bind(sku)
        .bind(warehouse)
        .bind(skus_max + 1)
        .fetch_all(db)
        .await?;
    let mut codes: Vec<String> = codes
        .iter()
        .map(|r| r.try_get("code"))
        .collect::<Result<_, _>>()?;
    let more = codes.len() as i64 > skus_max;
    codes.truncate(usize::try_from(skus_max).unwrap_or(0));
    let (Some(first), Some(last)) = (codes.first(), codes.last()) else {
        return Ok((Vec::new(), false));
    };
    let rows = sqlx::query(ROWS)
        .bind(client.0)
        .bind(first)
        .bind(last)
        .bind(warehouse)
        .fetch_all(db)
        .await?;
    let out = rows.iter().map(bucket_row).collect::<StoreResult<_>>()?;
    Ok((out, more))
}

/// The stored bucket rows of `keys`, with their warehouse and SKU codes: what a change to
/// those keys left behind, for `inventory.changed` events.
pub async fn rows_of_keys(
    conn: &mut AnyConnection,
    keys: &[StockKey],
) -> StoreResult<Vec<BucketRow>> {
    let placeholders = Placeholders::of(conn);
    let chunks = keys.chunks(rows_per_statement(placeholders));
    let read: Vec<(String, String, String, i64)> = fetch_json_chunks(conn, chunks, |chunk| {
        let inner = format!(
            "SELECT w.code AS warehouse, s.code AS sku, st.bucket, st.qty \
             FROM ({}) AS v \
             JOIN stock st ON st.client_id = v.column1 AND st.warehouse_id = v.column2 \
             AND st.sku_id = v.column3 \
             JOIN skus s ON s.id = st.sku_id JOIN warehouses w ON w.id = st.warehouse_id",
            rows_source(placeholders, &["BIGINT", "BIGINT", "BIGINT"], chunk.len())
        );
        let sql = json_rows_sql(placeholders, &["warehouse", "sku", "bucket", "qty"], &inner);
        let rows: Vec<_> = chunk
            .iter()
            .map(|key| (key.client.0, key.warehouse, key.sku))
            .collect();
        rows_query(placeholders, sql, &rows)
    })
    .await?;
    read.into_iter()
        .map(|(warehouse, sku, bucket, qty)| {
            Ok(BucketRow {
                warehouse,
                sku,
                bucket: bucket_of(&bucket)?,
                qty,
            })
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub id: i64,
    pub warehouse: String,
    pub sku: String,
    pub from_bucket: String,
    pub to_bucket: String,
    pub qty: i64,
    pub kind: String,
    pub reference: String,
    pub note: Option<String>,
    pub actor: String,
    pub at: i64,
}

/// The client's ledger rows after id `after`, oldest first, optionally for one SKU and one
/// warehouse.
pub async fn ledger<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    sku: &str,
    warehouse: &str,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<LedgerRow>> {
    const SQL: &str = "SELECT l.id, w.code AS warehouse, s.code AS sku, l.from_bucket, \
                       l.to_bucket, l.qty, l.kind, l.reference, l.note, l.actor, l.at \
                       FROM ledger l JOIN skus s ON s.id = l.sku_id \
                       JOIN warehouses w ON w.id = l.warehouse_id \
                       WHERE l.client_id = $1 AND l.id > $2 \
                       AND ($3 = '' OR s.code = $3) AND ($4 = '' OR w.code = $4) \
                       ORDER BY l.id LIMIT $5";
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(after)
        .bind(sku)
        .bind(warehouse)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(ledger_from_row).collect()
}

/// A ledger row selected with the columns of [`ledger`] (warehouse and SKU as codes).
pub(crate) fn ledger_from_row(row: &sqlx::any::AnyRow) -> StoreResult<LedgerRow> {
    Ok(LedgerRow {
        id: row.try_get("id")?,
        warehouse: row.try_get("warehouse")?,
        sku: row.try_get("sku")?,
        from_bucket: row.try_get("from_bucket")?,
        to_bucket: row.try_get("to_bucket")?,
        qty: row.try_get("qty")?,
        kind: row.try_get("kind")?,
        reference: row.try_get("reference")?,
        note: row.try_get("note")?,
        actor: row.try_get("actor")?,
        at: row.try_get("at")?,
    })
}

/// Whether the client holds any stock or ledger rows at the warehouse.
pub async fn warehouse_in_use<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    warehouse: i64,
) -> StoreResult<bool> {
    const SQL: &str = "SELECT COUNT(*) AS n FROM ( \
                       SELECT 1 AS one FROM ledger WHERE client_id = $1 AND warehouse_id = $2 \
                       UNION ALL \
                       SELECT 1 AS one FROM inward_orders WHERE client_id = $1 AND warehouse_id = $2 \
                       UNION ALL \
                       SELECT 1 AS one FROM orders WHERE client_id = $1 \
                       AND (warehouse_id = $2 OR destination_warehouse_id = $2) \
                       ) used";
    let row = sqlx::query(SQL)
        .bind(client.0)
        .bind(warehouse)
        .fetch_one(db)
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// For `oms check`: every stored bucket row, by key.
pub async fn all_buckets<'e>(
    db: impl AnyExecutor<'e>,
) -> StoreResult<Vec<(StockKey, String, i64)>> {
    const SQL: &str = "SELECT client_id, warehouse_id, sku_id, bucket, qty FROM stock";
    let rows = sqlx::query(SQL).fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            Ok((
                StockKey {
                    client: ClientId(row.try_get("client_id")?),
                    warehouse: row.try_get("warehouse_id")?,
                    sku: row.try_get("sku_id")?,
                },
                row.try_get("bucket")?,
                row.try_get("qty")?,
            ))
        })
        .collect()
}

/// One ledger row as `oms check` replays it.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub id: i64,
    pub key: StockKey,
    pub kind: String,
    pub from_bucket: String,
    pub to_bucket: String,
    pub qty: i64,
}

/// For `oms check`: ledger rows after id `after`, in id order, `limit` at a time.
pub async fn ledger_batch<'e>(
    db: impl AnyExecutor<'e>,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<Replayed>> {
    const SQL: &str = "SELECT id, client_id, warehouse_id, sku_id, kind, from_bucket, to_bucket, qty \
                       FROM ledger WHERE id > $1 ORDER BY id LIMIT $2";
    let rows = sqlx::query(SQL)
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Replayed {
                id: row.try_get("id")?,
                key: StockKey {
                    client: ClientId(row.try_get("client_id")?),
                    warehouse: row.try_get("warehouse_id")?,
                    sku: row.try_get("sku_id")?,
                },
                kind: row.try_get("kind")?,
                from_bucket: row.try_get("from_bucket")?,
                to_bucket: row.try_get("to_bucket")?,
                qty: row.try_get("qty")?,
            })
        })
        .collect()
}

/// For `oms check`: rows whose client differs from the client of a row they reference
/// (DESIGN §4 item 6), described one per line.
pub async fn foreign_client_rows(conn: &mut AnyConnection) -> StoreResult<Vec<String>> {
    const CHECKS: [(&str, &str); 5] = [
        (
            "stock rows whose SKU belongs to another client",
            "SELECT COUNT(*) AS n FROM stock st JOIN skus s ON s.id = st.sku_id WHERE s.client_id <> st.client_id",
        ),
        (
            "ledger rows whose SKU belongs to another client",
            "SELECT COUNT(*) AS n FROM ledger l JOIN skus s ON s.id = l.sku_id WHERE s.client_id <> l.client_id",
        ),
        (
            "inward lines whose SKU belongs to another client",
            "SELECT COUNT(*) AS n FROM inward_lines il JOIN skus s ON s.id = il.sku_id WHERE s.client_id <> il.client_id",
        ),
        (
            "inward lines whose order belongs to another client",
            "SELECT COUNT(*) AS n FROM inward_lines il JOIN inward_orders o ON o.id = il.inward_order_id \
          WHERE o.client_id <> il.client_id",
        ),
        (
            "stock rows at a warehouse not mapped to their client",
            "SELECT COUNT(*) AS n FROM stock st LEFT JOIN client_warehouses cw \
          ON cw.client_id = st.client_id AND cw.warehouse_id = st.warehouse_id WHERE cw.client_id IS NULL",
        ),
    ];
    let mut breaches = Vec::new();
    for (what, sql) in CHECKS {
        let n: i64 = sqlx::query(sql).fetch_one(&mut *conn).await?.try_get("n")?;
        if n > 0 {
            breaches.push(format!("{n} {what}"));
        }
    }
    Ok(breaches)
}

#[cfg(test)]
mod tests {
    use oms_domain::inventory::Movement;
    use sqlx::Row;

    use super::{StockKey, apply_many};
    use crate::{ClientId, Store, StoreError, StoreOptions};

    /// Keys: more than one statement's chunk on either backend.
    const KEYS: i64 = 6_500;

    /// A fresh store with one client, one warehouse and `n` SKUs, `units` received into
    /// QC at every key (one ledger row each); the keys in SKU order.
    async fn keys_received(url: &str, n: i64, units: i64) -> (Store, i64, Vec<StockKey>) {
        let store = Store::connect(url, &StoreOptions::default())
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let tag = format!(
            "CHUNKS-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos()
        );
        let mut tx = store.begin_write().await.expect("begin");
        let conn = tx.conn();
        let id = crate::test_support::inserted_id;
        let client = id(
            &mut *conn,
            format!(
                "INSERT INTO clients (code, name, settings, created_at, updated_at) \
                 VALUES ('{tag}', 'Chunks', '{{}}', 0, 0) RETURNING id"
            ),
        )
        .await;
        let warehouse = id(
            &mut *conn,
            format!(
                "INSERT INTO warehouses (code, name, kind, pincode, priority, created_at, \
                 updated_at) VALUES ('{tag}', 'W', 'WAREHOUSE', '560001', 1, 0, 0) RETURNING id"
            ),
        )
        .await;
        for sql in [
            format!(
                "INSERT INTO client_warehouses (client_id, warehouse_id, created_at) \
                 VALUES ({client}, {warehouse}, 0)"
            ),
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
                 INSERT INTO skus (client_id, code, name, mrp_minor, attributes, created_at, \
                 updated_at) SELECT {client}, 'S' || CAST(i AS TEXT), 'S', 100, '{{}}', 0, 0 FROM n"
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await
                .expect("setup");
        }
        let skus: Vec<i64> = sqlx::query("SELECT id FROM skus WHERE client_id = $1 ORDER BY id")
            .bind(client)
            .fetch_all(&mut *conn)
            .await
            .expect("skus")
            .iter()
            .map(|row| row.try_get("id").expect("id"))
            .collect();
        let keys: Vec<StockKey> = skus
            .iter()
            .map(|sku| StockKey {
                client: ClientId(client),
                warehouse,
                sku: *sku,
            })
            .collect();
        let received: Vec<_> = keys
            .iter()
            .map(|key| (*key, Movement::grn(units).expect("grn"), "GRN".to_owned()))
            .collect();
        apply_many(&mut *conn, &received, "test", 1)
            .await
            .expect("received");
        tx.commit().await.expect("commit");
        (store, client, keys)
    }

    /// A short source in a later chunk of the decrements refuses the whole write, however
    /// many chunks ran before it, and the transaction leaves no unit moved.
    async fn a_short_key_in_a_later_chunk_is_refused(url: &str) {
        let (store, client, keys) = keys_received(url, KEYS, 1).await;

        // One unit passes QC at every key but the last, which asks for two.
        let passed: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let qty = if i + 1 == keys.len() { 2 } else { 1 };
                (*key, Movement::qc_pass(qty).expect("qc"), "QC".to_owned())
            })
            .collect();
        let mut tx = store.begin_write().await.expect("begin");
        let refused = apply_many(tx.conn(), &passed, "test", 2).await;
        assert!(
            matches!(refused, Err(StoreError::Insufficient { .. })),
            "{refused:?}"
        );
        drop(tx);
        let (pending, available, ledger): (i64, i64, i64) = sqlx::query_as(
            "SELECT \
             (SELECT CAST(COALESCE(SUM(qty), 0) AS BIGINT) FROM stock WHERE client_id = $1 AND bucket = 'QC_PENDING'), \
             (SELECT CAST(COALESCE(SUM(qty), 0) AS BIGINT) FROM stock WHERE client_id = $1 AND bucket <> 'QC_PENDING'), \
             (SELECT COUNT(*) FROM ledger WHERE client_id = $1)",
        )
        .bind(client)
        .fetch_one(store.pool())
        .await
        .expect("totals");
        assert_eq!(
            (pending, available, ledger),
            (KEYS, 0, KEYS),
            "nothing moved"
        );
    }

    /// The ledger rows of one call are written key by key, each key's movements in the
    /// order given, whatever order the movements came in, each with its own buckets.
    async fn ledger_rows_are_written_in_key_order(url: &str) {
        let (store, client, keys) = keys_received(url, 3, 3).await;
        let [first, second, third] = [keys[0], keys[1], keys[2]];
        let moved = |key: StockKey, movement: Movement, reference: &str| {
            (key, movement, reference.to_owned())
        };
        let passed = || Movement::qc_pass(1).expect("qc");
        let failed = |reason: &str| Movement::qc_fail(reason, 1).expect("qc");
        let movements = [
            moved(third, passed(), "third, then"),
            moved(first, failed("TORN"), "first"),
            moved(third, failed("WET"), "third, again"),
            moved(second, passed(), "second"),
            moved(first, failed("WET"), "first, again"),
        ];
        let mut tx = store.begin_write().await.expect("begin");
        apply_many(tx.conn(), &movements, "test", 2)
            .await
            .expect("passed");
        tx.commit().await.expect("commit");
        let written: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT sku_id, from_bucket, to_bucket, reference FROM ledger \
             WHERE client_id = $1 AND at = 2 ORDER BY id",
        )
        .bind(client)
        .fetch_all(store.pool())
        .await
        .expect("ledger");
        let row = |key: StockKey, to: &str, reference: &str| {
            (
                key.sku,
                "QC_PENDING".to_owned(),
                to.to_owned(),
                reference.to_owned(),
            )
        };
        assert_eq!(
            written,
            [
                row(first, "BAD:TORN", "first"),
                row(first, "BAD:WET", "first, again"),
                row(second, "AVAILABLE:COMMON", "second"),
                row(third, "AVAILABLE:COMMON", "third, then"),
                row(third, "BAD:WET", "third, again"),
            ]
        );
        let balances: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT sku_id, bucket, qty FROM stock WHERE client_id = $1 AND qty <> 0 \
             ORDER BY sku_id, bucket",
        )
        .bind(client)
        .fetch_all(store.pool())
        .await
        .expect("stock");
        let held = |key: StockKey, bucket: &str, qty: i64| (key.sku, bucket.to_owned(), qty);
        assert_eq!(
            balances,
            [
                held(first, "BAD:TORN", 1),
                held(first, "BAD:WET", 1),
                held(first, "QC_PENDING", 1),
                held(second, "AVAILABLE:COMMON", 1),
                held(second, "QC_PENDING", 2),
                held(third, "AVAILABLE:COMMON", 1),
                held(third, "BAD:WET", 1),
                held(third, "QC_PENDING", 1),
            ]
        );
    }

    #[tokio::test]
    async fn sqlite_writes_ledger_rows_in_key_order() {
        let (_dir, url) = crate::test_support::fresh_sqlite();
        ledger_rows_are_written_in_key_order(&url).await;
    }

    #[tokio::test]
    async fn postgres_writes_ledger_rows_in_key_order() {
        ledger_rows_are_written_in_key_order(&crate::test_support::fresh_postgres().await).await;
    }

    #[tokio::test]
    async fn sqlite_refuses_a_short_key_in_a_later_chunk() {
        let (_dir, url) = crate::test_support::fresh_sqlite();
        a_short_key_in_a_later_chunk_is_refused(&url).await;
    }

    #[tokio::test]
    async fn postgres_refuses_a_short_key_in_a_later_chunk() {
        a_short_key_in_a_later_chunk_is_refused(&crate::test_support::fresh_postgres().await).await;
    }
}
