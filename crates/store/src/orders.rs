//! Outward orders, lines, shipments, allocations and the outbox. Line counts move only
//! through guarded updates, so a line can never be allocated, shipped or cancelled past
//! what was ordered, whatever runs concurrently.

use std::borrow::Cow;
use std::collections::HashMap;

use sqlx::{AnyConnection, AnyExecutor, AssertSqlSafe, Row};

use crate::rows::{execute_chunks, fetch_chunks, rows_per_statement, rows_query};
use crate::{
    ClientId, IN_LIST_MAX, Ids, Placeholders, StoreError, StoreResult, fetch_json_chunks,
    fetch_json_rows, in_list, insert_rows_sql, json_page_sql, json_rows_sql, like_contains,
    list_query, numbered_first, update_rows_sql,
};

/// An order's own fields, resolved to ids, as written.
#[derive(Debug, Clone)]
pub struct OrderRecord {
    pub channel_id: i64,
    pub order_code: String,
    pub kind: String,
    pub fulfilment_type: String,
    pub retry: String,
    pub dispatch_by: Option<i64>,
    pub priority: i64,
    pub warehouse_id: Option<i64>,
    pub destination_warehouse_id: Option<i64>,
    pub stock: String,
    pub ship_name: Option<String>,
    pub ship_address: Option<String>,
    pub ship_pincode: Option<String>,
    pub ship_phone: Option<String>,
    pub ship_email: Option<String>,
    pub ship_lat: Option<f64>,
    pub ship_lon: Option<f64>,
}

/// A stored order with its channel's and warehouses' codes.
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub id: i64,
    pub channel: String,
    pub record: OrderRecord,
    pub warehouse: Option<String>,
    pub destination_warehouse: Option<String>,
    pub status: String,
    pub body_hash: String,
    pub allocation_trace: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What an allocation pass reads of an order: how to plan it, what its events name, and
/// what its last attempt said. Not the addressee's name, address, phone or email, nor the
/// identity hash: a pass over a backlog reads every waiting order, and those were most of
/// each one's bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandOrder {
    pub id: i64,
    pub channel: String,
    pub order_code: String,
    pub fulfilment_type: String,
    pub dispatch_by: Option<i64>,
    pub priority: i64,
    pub warehouse_id: Option<i64>,
    pub stock: String,
    pub ship_pincode: Option<String>,
    pub ship_lat: Option<f64>,
    pub ship_lon: Option<f64>,
    pub allocation_trace: Option<String>,
    pub attempts: i64,
}

impl From<&OrderRow> for DemandOrder {
    fn from(order: &OrderRow) -> DemandOrder {
        let record = &order.record;
        DemandOrder {
            id: order.id,
            channel: order.channel.clone(),
            order_code: record.order_code.clone(),
            fulfilment_type: record.fulfilment_type.clone(),
            dispatch_by: record.dispatch_by,
            priority: record.priority,
            warehouse_id: record.warehouse_id,
            stock: record.stock.clone(),
            ship_pincode: record.ship_pincode.clone(),
            ship_lat: record.ship_lat,
            ship_lon: record.ship_lon,
            allocation_trace: order.allocation_trace.clone(),
            attempts: order.attempts,
        }
    }
}

/// The columns [`open_demand`] reads of a backlog, in [`DemandColumns`]' order.
const DEMAND_READ_COLUMNS: [&str; 13] = [
    "id",
    "channel",
    "order_code",
    "fulfilment_type",
    "dispatch_by",
    "priority",
    "warehouse_id",
    "stock",
    "ship_pincode",
    "ship_lat",
    "ship_lon",
    "allocation_trace",
    "attempts",
];

/// A [`DemandOrder`] as an array of [`DEMAND_READ_COLUMNS`].
#[derive(serde::Deserialize)]
struct DemandColumns(
    i64,
    String,
    String,
    String,
    Option<i64>,
    i64,
    Option<i64>,
    String,
    Option<String>,
    Option<f64>,
    Option<f64>,
    Option<String>,
    i64,
);

impl From<DemandColumns> for DemandOrder {
    fn from(c: DemandColumns) -> DemandOrder {
        DemandOrder {
            id: c.0,
            channel: c.1,
            order_code: c.2,
            fulfilment_type: c.3,
            dispatch_by: c.4,
            priority: c.5,
            warehouse_id: c.6,
            stock: c.7,
            ship_pincode: c.8,
            ship_lat: c.9,
            ship_lon: c.10,
            allocation_trace: c.11,
            attempts: c.12,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OrderLineRow {
    pub id: i64,
    pub order_id: i64,
    pub line_id: String,
    pub sku_id: i64,
    pub sku: String,
    pub ordered: i64,
    pub allocated: i64,
    pub shipped: i64,
    pub cancelled: i64,
    pub price_minor: Option<i64>,
}

impl OrderLineRow {
    pub fn open(&self) -> i64 {
        self.ordered - self.allocated - self.shipped - self.cancelled
    }
}

/// What inserting an order found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    Created(i64),
    /// The natural key exists: its id and the hash of the body first accepted.
    Exists {
        id: i64,
        body_hash: String,
    },
}

/// A line to insert: (line_id, sku_id, ordered, price_minor).
pub type NewLine = (String, i64, i64, Option<i64>);

/// One order to insert: its record, the hash of its body, and its lines.
pub type NewOrderRow<'a> = (&'a OrderRecord, &'a str, &'a [NewLine]);

/// Inserts the order unless (client, channel, code) exists; concurrent duplicates meet at
/// the unique index, and exactly one creates.
pub async fn insert(
    conn: &mut AnyConnection,
    client: ClientId,
    order: &OrderRecord,
    body_hash: &str,
    lines: &[NewLine],
    at: i64,
) -> StoreResult<Inserted> {
    let mut inserted = insert_many(conn, client, &[(order, body_hash, lines)], at).await?;
    inserted
        .pop()
        .ok_or_else(|| StoreError::Corrupt("an insert answered nothing".into()))
}

const ORDER_COLUMNS: [(&str, &str); 24] = [
    ("client_id", "BIGINT"),
    ("channel_id", "BIGINT"),
    ("order_code", "TEXT"),
    ("kind", "TEXT"),
    ("fulfilment_type", "TEXT"),
    ("retry", "TEXT"),
    ("dispatch_by", "BIGINT"),
    ("priority", "BIGINT"),
    ("warehouse_id", "BIGINT"),
    ("destination_warehouse_id", "BIGINT"),
    ("stock", "TEXT"),
    ("ship_name", "TEXT"),
    ("ship_address", "TEXT"),
    ("ship_pincode", "TEXT"),
    ("ship_phone", "TEXT"),
    ("ship_email", "TEXT"),
    ("ship_lat", "DOUBLE PRECISION"),
    ("ship_lon", "DOUBLE PRECISION"),
    ("status", "TEXT"),
    ("body_hash", "TEXT"),
    ("attempts", "BIGINT"),
    ("created_at", "BIGINT"),
    ("updated_at", "BIGINT"),
    ("allocation_trace", "TEXT"),
];

/// An order as the row its insert writes (see `crate::rows`): its id first when it is
/// given (drawn ahead), then [`ORDER_COLUMNS`] in order. Written by hand: a tuple
/// serializes as a row too, but serde's tuples stop at 16 columns.
struct OrderWrite<'a> {
    id: Option<i64>,
    client: ClientId,
    record: &'a OrderRecord,
    status: &'a str,
    body_hash: &'a str,
    attempts: i64,
    created_at: i64,
    updated_at: i64,
    allocation_trace: Option<&'a str>,
}

impl serde::Serialize for OrderWrite<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let r = self.record;
        let mut row =
            serializer.serialize_tuple(ORDER_COLUMNS.len() + usize::from(self.id.is_some()))?;
        if let Some(id) = self.id {
            row.serialize_element(&id)?;
        }
        row.serialize_element(&self.client.0)?;
        row.serialize_element(&r.channel_id)?;
        row.serialize_element(&r.order_code)?;
        row.serialize_element(&r.kind)?;
        row.serialize_element(&r.fulfilment_type)?;
        row.serialize_element(&r.retry)?;
        row.serialize_element(&r.dispatch_by)?;
        row.serialize_element(&r.priority)?;
        row.serialize_element(&r.warehouse_id)?;
        row.serialize_element(&r.destination_warehouse_id)?;
        row.serialize_element(&r.stock)?;
        row.serialize_element(&r.ship_name)?;
        row.serialize_element(&r.ship_address)?;
        row.serialize_element(&r.ship_pincode)?;
        row.serialize_element(&r.ship_phone)?;
        row.serialize_element(&r.ship_email)?;
        row.serialize_element(&r.ship_lat)?;
        row.serialize_element(&r.ship_lon)?;
        row.serialize_element(self.status)?;
        row.serialize_element(self.body_hash)?;
        row.serialize_element(&self.attempts)?;
        row.serialize_element(&self.created_at)?;
        row.serialize_element(&self.updated_at)?;
        row.serialize_element(&self.allocation_trace)?;
        row.end()
    }
}

/// Inserts many orders in a few multi-row statements (see `crate::rows` for their size),
/// answering per order, in order, what [`insert`] would. An order whose key exists
/// — stored before, or earlier in `orders` — is not written and answers `Exists`.
pub async fn insert_many(
    conn: &mut AnyConnection,
    client: ClientId,
    orders: &[NewOrderRow<'_>],
    at: i64,
) -> StoreResult<Vec<Inserted>> {
    const EXISTING: &str = "SELECT id, body_hash FROM orders \
        WHERE client_id = $1 AND channel_id = $2 AND order_code = $3";
    let placeholders = Placeholders::of(conn);
    let (first_of, unique) = first_of_each_key(orders);
    let mut created: HashMap<(i64, String), i64> = HashMap::new();
    for chunk in unique.chunks(rows_per_statement(placeholders)) {
        let sql = insert_rows_sql(
            placeholders,
            "orders",
            &ORDER_COLUMNS,
            Ids::Drawn,
            "ON CONFLICT (client_id, channel_id, order_code) DO NOTHING \
             RETURNING id, channel_id, order_code",
            chunk.len(),
        );
        let rows: Vec<OrderWrite> = chunk
            .iter()
            .map(|index| {
                let (record, hash, _) = orders[*index];
                OrderWrite {
                    id: None,
                    client,
                    record,
                    status: "CREATED",
                    body_hash: hash,
                    attempts: 0,
                    created_at: at,
                    updated_at: at,
                    allocation_trace: None,
                }
            })
            .collect();
        let query = rows_query(placeholders, sql, &rows)?;
        for row in query.fetch_all(&mut *conn).await? {
            created.insert(
                (row.try_get("channel_id")?, row.try_get("order_code")?),
                row.try_get("id")?,
            );
        }
    }
    let mut answers = Vec::with_capacity(orders.len());
    let mut lines = Vec::new();
    for (index, (record, _, order_lines)) in orders.iter().enumerate() {
        let key = (record.channel_id, record.order_code.clone());
        let first = first_of[&(record.channel_id, record.order_code.as_str())];
        answers.push(match created.get(&key) {
            Some(id) if first == index => {
                lines.extend(order_lines.iter().map(|line| (*id, line)));
                Inserted::Created(*id)
            }
            // Earlier in this call: the body first accepted is that order's.
            Some(id) => Inserted::Exists {
                id: *id,
                body_hash: orders[first].1.to_owned(),
            },
            None => {
                let row = sqlx::query(EXISTING)
                    .bind(client.0)
                    .bind(record.channel_id)
                    .bind(&record.order_code)
                    .fetch_one(&mut *conn)
                    .await?;
                Inserted::Exists {
                    id: row.try_get("id")?,
                    body_hash: row.try_get("body_hash")?,
                }
            }
        });
    }
    for chunk in lines.chunks(rows_per_statement(placeholders)) {
        let sql = insert_rows_sql(
            placeholders,
            "order_lines",
            &LINE_COLUMNS[1..],
            Ids::Drawn,
            "",
            chunk.len(),
        );
        let rows: Vec<_> = chunk
            .iter()
            .map(|(order, (line_id, sku, ordered, price))| {
                (client.0, order, line_id, sku, ordered, price, 0, 0, 0)
            })
            .collect();
        rows_query(placeholders, sql, &rows)?
            .execute(&mut *conn)
            .await?;
    }
    Ok(answers)
}

/// The index of the first order with each (channel, code) key, and those indexes in order:
/// later orders with the same key repeat the first.
fn first_of_each_key<'a>(
    orders: &'a [NewOrderRow<'_>],
) -> (HashMap<(i64, &'a str), usize>, Vec<usize>) {
    let mut first_of: HashMap<(i64, &str), usize> = HashMap::new();
    let mut unique = Vec::new();
    for (index, (record, _, _)) in orders.iter().enumerate() {
        first_of
            .entry((record.channel_id, record.order_code.as_str()))
            .or_insert_with(|| {
                unique.push(index);
                index
            });
    }
    (first_of, unique)
}

/// What an order's (channel, code) key names, before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFound {
    /// Nothing: the order is new.
    New,
    /// An order stored before: its id and the hash of the body first accepted.
    Stored { id: i64, body_hash: String },
    /// The order at this index earlier in the same call, new too.
    Repeats(usize),
}

/// What storing `orders` would find, without writing: per order, in order. For callers
/// that draw ids ([`draw_ids`]), plan, and then write new orders once, complete
/// ([`insert_new_orders`]).
pub async fn find_keys(
    conn: &mut AnyConnection,
    client: ClientId,
    orders: &[NewOrderRow<'_>],
) -> StoreResult<Vec<KeyFound>> {
    let (first_of, unique) = first_of_each_key(orders);
    // By code alone, which the (client_id, order_code) index answers; channels in Rust.
    let mut codes: Vec<&str> = unique
        .iter()
        .map(|i| orders[*i].0.order_code.as_str())
        .collect();
    codes.sort_unstable();
    codes.dedup();
    let placeholders = Placeholders::of(conn);
    let mut stored: HashMap<(i64, String), (i64, String)> = HashMap::new();
    for chunk in codes.chunks(IN_LIST_MAX) {
        let sql = format!(
            "SELECT id, channel_id, order_code, body_hash FROM orders \
             WHERE client_id = $1 AND order_code {}",
            in_list::<&str>(placeholders, chunk.len())
        );
        let query = list_query(placeholders, &sql, client, chunk)?;
        for row in query.fetch_all(&mut *conn).await? {
            stored.insert(
                (row.try_get("channel_id")?, row.try_get("order_code")?),
                (row.try_get("id")?, row.try_get("body_hash")?),
            );
        }
    }
    Ok(orders
        .iter()
        .enumerate()
        .map(|(index, (record, _, _))| {
            let key = (record.channel_id, record.order_code.clone());
            let first = first_of[&(record.channel_id, record.order_code.as_str())];
            match stored.get(&key) {
                Some((id, body_hash)) => KeyFound::Stored {
                    id: *id,
                    body_hash: body_hash.clone(),
                },
                None if first == index => KeyFound::New,
                None => KeyFound::Repeats(first),
            }
        })
        .collect())
}

/// Ids for `n` rows of `table` (`orders`, `order_lines`, `shipments` or `outbox`) not
/// written yet, ascending. PostgreSQL draws them from the table's identity sequence.
/// SQLite takes the rowids after the highest written or drawn in this transaction (the
/// connection's `drawn_ids` remembers draws until they are written; the writer holds the
/// write lock from `BEGIN IMMEDIATE`, so no one else takes them meanwhile).
pub async fn draw_ids(conn: &mut AnyConnection, table: &str, n: usize) -> StoreResult<Vec<i64>> {
    /// (SQLite's draw, PostgreSQL's draw) for one table.
    macro_rules! draws {
        ($table:literal) => {
            (
                concat!(
                    "INSERT INTO temp.drawn_ids (name, last) VALUES ('",
                    $table,
                    "', (SELECT COALESCE(MAX(id), 0) FROM ",
                    $table,
                    ") + $1) ON CONFLICT (name) DO UPDATE SET last = \
                     MAX(excluded.last, drawn_ids.last + $1) RETURNING last"
                ),
                concat!(
                    "SELECT nextval(pg_get_serial_sequence('",
                    $table,
                    "', 'id')) AS id FROM generate_series(1, $1::bigint)"
                ),
            )
        };
    }
    let (sqlite_draw, postgres_draw) = match table {
        "orders" => draws!("orders"),
        "order_lines" => draws!("order_lines"),
        "shipments" => draws!("shipments"),
        "outbox" => draws!("outbox"),
        other => return Err(StoreError::Corrupt(format!("no ids are drawn for {other}"))),
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let count = i64::try_from(n).map_err(|_| StoreError::Corrupt("too many rows".into()))?;
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        let last: i64 = sqlx::query(sqlite_draw)
            .bind(count)
            .fetch_one(&mut *conn)
            .await?
            .try_get("last")?;
        return Ok((last - count + 1..=last).collect());
    }
    let mut ids = sqlx::query(postgres_draw)
        .bind(count)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<Vec<i64>, _>>()?;
    ids.sort_unstable();
    Ok(ids)
}

/// A new order as written once, complete: its drawn id, its fields, and where its first
/// allocation pass left it.
#[derive(Debug, Clone, Copy)]
pub struct NewOrderHead<'a> {
    pub id: i64,
    pub record: &'a OrderRecord,
    pub body_hash: &'a str,
    pub status: &'a str,
    pub allocation_trace: Option<&'a str>,
    pub attempts: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Writes new orders with their drawn ids. An order whose key another writer stored
/// meanwhile is refused by the unique index ([`StoreError::Conflict`]): the caller's
/// transaction runs again and finds it.
pub async fn insert_new_orders(
    conn: &mut AnyConnection,
    client: ClientId,
    orders: &[NewOrderHead<'_>],
) -> StoreResult<()> {
    let placeholders = Placeholders::of(conn);
    let mut columns = vec![("id", "BIGINT")];
    columns.extend(ORDER_COLUMNS);
    execute_chunks(
        &mut *conn,
        orders.chunks(rows_per_statement(placeholders)),
        |chunk| {
            let sql = insert_rows_sql(
                placeholders,
                "orders",
                &columns,
                Ids::Given,
                "",
                chunk.len(),
            );
            let rows: Vec<OrderWrite> = chunk
                .iter()
                .map(|order| OrderWrite {
                    id: Some(order.id),
                    client,
                    record: order.record,
                    status: order.status,
                    body_hash: order.body_hash,
                    attempts: order.attempts,
                    created_at: order.created_at,
                    updated_at: order.updated_at,
                    allocation_trace: order.allocation_trace,
                })
                .collect();
            rows_query(placeholders, sql, &rows)
        },
    )
    .await?;
    Ok(())
}

/// An order line's columns, typed, for [`insert_rows_sql`]: its id first.
const LINE_COLUMNS: [(&str, &str); 10] = [
    ("id", "BIGINT"),
    ("client_id", "BIGINT"),
    ("order_id", "BIGINT"),
    ("line_id", "TEXT"),
    ("sku_id", "BIGINT"),
    ("ordered", "BIGINT"),
    ("price_minor", "BIGINT"),
    ("allocated", "BIGINT"),
    ("shipped", "BIGINT"),
    ("cancelled", "BIGINT"),
];

/// A new order line as written once: its drawn id, its order, what was ordered, and what
/// its order's first allocation pass allocated and closed short.
#[derive(Debug, Clone, Copy)]
pub struct NewLineRow<'a> {
    pub id: i64,
    pub order_id: i64,
    pub line_id: &'a str,
    pub sku_id: i64,
    pub ordered: i64,
    pub price_minor: Option<i64>,
    pub allocated: i64,
    pub cancelled: i64,
}

/// Writes new order lines, with the ids drawn for them, in multi-row statements.
pub async fn insert_lines(
    conn: &mut AnyConnection,
    client: ClientId,
    lines: &[NewLineRow<'_>],
) -> StoreResult<()> {
    let placeholders = Placeholders::of(conn);
    execute_chunks(
        &mut *conn,
        lines.chunks(rows_per_statement(placeholders)),
        |chunk| {
            let sql = insert_rows_sql(
                placeholders,
                "order_lines",
                &LINE_COLUMNS,
                Ids::Given,
                "",
                chunk.len(),
            );
            let rows: Vec<_> = chunk
                .iter()
                .map(|row| {
                    (
                        row.id,
                        client.0,
                        row.order_id,
                        row.line_id,
                        row.sku_id,
                        row.ordered,
                        row.price_minor,
                        row.allocated,
                        0,
                        row.cancelled,
                    )
                })
                .collect();
            rows_query(placeholders, sql, &rows)
        },
    )
    .await?;
    Ok(())
}

macro_rules! select_order {
    ($tail:literal) => {
        concat!(
            "SELECT o.id, c.code AS channel, o.channel_id, o.order_code, o.kind, o.fulfilment_type, \
             o.retry, o.dispatch_by, o.priority, o.warehouse_id, w.code AS warehouse, \
             o.destination_warehouse_id, dw.code AS destination_warehouse, o.stock, o.ship_name, \
             o.ship_address, o.ship_pincode, o.ship_phone, o.ship_email, o.ship_lat, o.ship_lon, \
             o.status, o.body_hash, o.allocation_trace, o.attempts, o.created_at, o.updated_at \
             FROM orders o JOIN channels c ON c.id = o.channel_id \
             LEFT JOIN warehouses w ON w.id = o.warehouse_id \
             LEFT JOIN warehouses dw ON dw.id = o.destination_warehouse_id ",
            $tail
        )
    };
}

fn order_from_row(row: &sqlx::any::AnyRow) -> StoreResult<OrderRow> {
    Ok(OrderRow {
        id: row.try_get("id")?,
        channel: row.try_get("channel")?,
        record: OrderRecord {
            channel_id: row.try_get("channel_id")?,
            order_code: row.try_get("order_code")?,
            kind: row.try_get("kind")?,
            fulfilment_type: row.try_get("fulfilment_type")?,
            retry: row.try_get("retry")?,
            dispatch_by: row.try_get("dispatch_by")?,
            priority: row.try_get("priority")?,
            warehouse_id: row.try_get("warehouse_id")?,
            destination_warehouse_id: row.try_get("destination_warehouse_id")?,
            stock: row.try_get("stock")?,
            ship_name: row.try_get("ship_name")?,
            ship_address: row.try_get("ship_address")?,
            ship_pincode: row.try_get("ship_pincode")?,
            ship_phone: row.try_get("ship_phone")?,
            ship_email: row.try_get("ship_email")?,
            ship_lat: row.try_get("ship_lat")?,
            ship_lon: row.try_get("ship_lon")?,
        },
        warehouse: row.try_get("warehouse")?,
        destination_warehouse: row.try_get("destination_warehouse")?,
        status: row.try_get("status")?,
        body_hash: row.try_get("body_hash")?,
        allocation_trace: row.try_get("allocation_trace")?,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A line as an array of the columns `line_from_row` reads, in its order.
type LineColumns = (
    i64,
    i64,
    String,
    i64,
    String,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
);
const LINE_READ_COLUMNS: [&str; 10] = [
    "id",
    "order_id",
    "line_id",
    "sku_id",
    "sku",
    "ordered",
    "allocated",
    "shipped",
    "cancelled",
    "price_minor",
];

fn line_from_columns(c: LineColumns) -> OrderLineRow {
    OrderLineRow {
        id: c.0,
        order_id: c.1,
        line_id: c.2,
        sku_id: c.3,
        sku: c.4,
        ordered: c.5,
        allocated: c.6,
        shipped: c.7,
        cancelled: c.8,
        price_minor: c.9,
    }
}

pub async fn find_by_id<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    id: i64,
) -> StoreResult<Option<OrderRow>> {
    const SQL: &str = select_order!("WHERE o.client_id = $1 AND o.id = $2");
    let row = sqlx::query(SQL)
        .bind(client.0)
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(order_from_row).transpose()
}

/// Orders with this code, in every channel or the one named (empty for any).
pub async fn find_by_code<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    order_code: &str,
    channel: &str,
) -> StoreResult<Vec<OrderRow>> {
    const SQL: &str = select_order!(
        "WHERE o.client_id = $1 AND o.order_code = $2 AND ($3 = '' OR c.code = $3) ORDER BY o.id LIMIT 10"
    );
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(order_code)
        .bind(channel)
        .fetch_all(db)
        .await?;
    rows.iter().map(order_from_row).collect()
}

/// Orders newest first, before id `before` (0 for the first page), filtered by status and
/// channel (empty for any) and by `q` in the order code, customer name, phone or e-mail.
/// A `q` that looks like a phone number also matches the phone's digits (stored phones hold
/// digits, spaces, dashes and a leading `+`) whatever the spacing and country code: `09845012345`, `+919845012345` and
/// `98450-12345` all find `+91 98450 12345`.
pub async fn search<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    status: &str,
    channel: &str,
    q: &str,
    before: i64,
    limit: i64,
) -> StoreResult<Vec<OrderRow>> {
    const SQL: &str = select_order!(
        "WHERE o.client_id = $1 AND ($2 = '' OR o.status = $2) AND ($3 = '' OR c.code = $3) \
         AND ($4 = '%%' OR LOWER(o.order_code) LIKE $4 ESCAPE '\\' \
              OR LOWER(COALESCE(o.ship_name, '')) LIKE $4 ESCAPE '\\' \
              OR LOWER(COALESCE(o.ship_phone, '')) LIKE $4 ESCAPE '\\' \
              OR LOWER(COALESCE(o.ship_email, '')) LIKE $4 ESCAPE '\\' \
              OR ($7 <> '' AND REPLACE(REPLACE(REPLACE(COALESCE(o.ship_phone, ''), \
                   ' ', ''), '-', ''), '+', '') LIKE $7)) \
         AND ($5 = 0 OR o.id < $5) ORDER BY o.id DESC LIMIT $6"
    );
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(status)
        .bind(channel)
        .bind(like_contains(q))
        .bind(before)
        .bind(limit)
        .bind(phone_digits_pattern(q))
        .fetch_all(db)
        .await?;
    rows.iter().map(order_from_row).collect()
}

/// Phone numbers are matched on their last ten digits (an Indian mobile number without the
/// trunk `0` or the `+91`); shorter digit runs from 6 digits up match anywhere. Empty when
/// `q` is not a phone number (letters in it, or fewer than 6 digits).
fn phone_digits_pattern(q: &str) -> String {
    const SIGNIFICANT: usize = 10;
    if !q
        .chars()
        .all(|c| c.is_ascii_digit() || " -+().".contains(c))
    {
        return String::new();
    }
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 {
        return String::new();
    }
    let tail = &digits[digits.len().saturating_sub(SIGNIFICANT)..];
    format!("%{tail}%")
}

fn line_from_row(row: &sqlx::any::AnyRow) -> StoreResult<OrderLineRow> {
    Ok(OrderLineRow {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        line_id: row.try_get("line_id")?,
        sku_id: row.try_get("sku_id")?,
        sku: row.try_get("sku")?,
        ordered: row.try_get("ordered")?,
        allocated: row.try_get("allocated")?,
        shipped: row.try_get("shipped")?,
        cancelled: row.try_get("cancelled")?,
        price_minor: row.try_get("price_minor")?,
    })
}

pub async fn lines<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    order: i64,
) -> StoreResult<Vec<OrderLineRow>> {
    const SQL: &str = "SELECT l.id, l.order_id, l.line_id, l.sku_id, s.code AS sku, l.ordered, l.allocated, \
                       l.shipped, l.cancelled, l.price_minor FROM order_lines l JOIN skus s ON s.id = l.sku_id \
                       WHERE l.client_id = $1 AND l.order_id = $2 ORDER BY l.id";
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(order)
        .fetch_all(db)
        .await?;
    rows.iter().map(line_from_row).collect()
}

/// Runs `sql` — written with `$1` for the client and `{ids}` where an `IN` list of ids
/// goes — once per chunk of `ids`, answering every row.
pub(crate) async fn rows_for_ids(
    conn: &mut AnyConnection,
    client: ClientId,
    sql: &str,
    ids: &[i64],
) -> StoreResult<Vec<sqlx::any::AnyRow>> {
    let placeholders = Placeholders::of(conn);
    let mut rows = Vec::new();
    for chunk in ids.chunks(IN_LIST_MAX) {
        let statement = sql.replace("IN {ids}", &in_list::<i64>(placeholders, chunk.len()));
        let query = list_query(placeholders, &statement, client, chunk)?;
        rows.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

/// The client's orders among `ids`, in id order.
pub async fn find_many(
    conn: &mut AnyConnection,
    client: ClientId,
    ids: &[i64],
) -> StoreResult<Vec<OrderRow>> {
    const SQL: &str = select_order!("WHERE o.client_id = $1 AND o.id IN {ids} ORDER BY o.id");
    rows_for_ids(conn, client, SQL, ids)
        .await?
        .iter()
        .map(order_from_row)
        .collect()
}

/// Every line of the orders `ids`, in line order.
pub async fn lines_of(
    conn: &mut AnyConnection,
    client: ClientId,
    ids: &[i64],
) -> StoreResult<Vec<OrderLineRow>> {
    const SQL: &str = "SELECT l.id, l.order_id, l.line_id, l.sku_id, s.code AS sku, l.ordered, l.allocated, \
                       l.shipped, l.cancelled, l.price_minor FROM order_lines l JOIN skus s ON s.id = l.sku_id \
                       WHERE l.client_id = $1 AND l.order_id IN {ids}";
    // One JSON value per chunk of ids: a pass over a backlog reads every line of its
    // 100,000 orders here.
    let placeholders = Placeholders::of(conn);
    let read: Vec<LineColumns> = fetch_json_chunks(&mut *conn, ids.chunks(IN_LIST_MAX), |chunk| {
        let inner = SQL.replace("IN {ids}", &in_list::<i64>(placeholders, chunk.len()));
        let sql = json_rows_sql(placeholders, &LINE_READ_COLUMNS, &inner);
        list_query(placeholders, &sql, client, chunk)
    })
    .await?;
    let mut lines: Vec<OrderLineRow> = read.into_iter().map(line_from_columns).collect();
    // In id order whatever order the aggregate kept.
    lines.sort_unstable_by_key(|l| l.id);
    Ok(lines)
}

/// Open demand: orders with open quantity, not cancelled, optionally only `retry = AUTO`,
/// optionally only the given ids; with all their lines (open or not: the order's status
/// after a pass is derived from every line, without reading them again). Orders in id
/// order, read as a pass needs them ([`DemandOrder`]).
pub async fn open_demand(
    conn: &mut AnyConnection,
    client: ClientId,
    only_auto_retry: bool,
    ids: Option<&[i64]>,
) -> StoreResult<(Vec<DemandOrder>, Vec<OrderLineRow>)> {
    const ORDERS: &str = "SELECT o.id, c.code AS channel, o.order_code, o.fulfilment_type, \
         o.dispatch_by, o.priority, o.warehouse_id, o.stock, o.ship_pincode, o.ship_lat, \
         o.ship_lon, o.allocation_trace, o.attempts \
         FROM orders o JOIN channels c ON c.id = o.channel_id \
         WHERE o.client_id = $1 AND o.status <> 'CANCELLED' AND ($2 = 0 OR o.retry = 'AUTO') \
         AND o.id > $3 \
         AND EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id \
                     AND l.ordered > l.allocated + l.shipped + l.cancelled) ORDER BY o.id LIMIT $4";
    match ids {
        None => {
            // A backlog may hold every order of the client: read as JSON, a page at a time.
            let auto = i64::from(only_auto_retry);
            let placeholders = Placeholders::of(conn);
            let orders_sql = json_page_sql(placeholders, &DEMAND_READ_COLUMNS, "id", ORDERS);
            // `$1` … `$4` name the same values on both backends. Orders are paged by id.
            let orders: Vec<DemandColumns> = crate::fetch_json_pages(&mut *conn, 0, |after| {
                sqlx::query(AssertSqlSafe(orders_sql.clone()))
                    .bind(client.0)
                    .bind(auto)
                    .bind(after)
                    .bind(crate::JSON_PAGE_ROWS)
            })
            .await?;
            let mut orders: Vec<DemandOrder> = orders.into_iter().map(DemandOrder::from).collect();
            // In id order whatever order the aggregate kept.
            orders.sort_unstable_by_key(|o| o.id);
            // Their lines by order id: each a seek on `(client_id, order_id)`, not a scan
            // of the client's lines that asks again, line by line, whether its order is
            // open.
            let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
            let lines = lines_of(conn, client, &ids).await?;
            Ok((orders, lines))
        }
        Some(ids) => {
            // Named orders are few: read whole, then narrowed.
            let mut orders = find_many(&mut *conn, client, ids).await?;
            orders.retain(|o| {
                o.status != "CANCELLED" && (!only_auto_retry || o.record.retry == "AUTO")
            });
            let mut lines = lines_of(conn, client, ids).await?;
            // Only orders with open quantity are demand; their lines all come along.
            let open: std::collections::HashSet<i64> = lines
                .iter()
                .filter(|l| l.open() > 0)
                .map(|l| l.order_id)
                .collect();
            orders.retain(|o| open.contains(&o.id));
            let kept: std::collections::HashSet<i64> = orders.iter().map(|o| o.id).collect();
            lines.retain(|l| kept.contains(&l.order_id));
            Ok((orders.iter().map(DemandOrder::from).collect(), lines))
        }
    }
}

/// For each order, the warehouses of its live (not cancelled) shipments.
pub async fn used_warehouses(
    conn: &mut AnyConnection,
    client: ClientId,
    orders: &[i64],
) -> StoreResult<HashMap<i64, Vec<i64>>> {
    const SQL: &str = "SELECT DISTINCT s.order_id, s.warehouse_id FROM shipments s \
                       WHERE s.client_id = $1 AND s.status <> 'CANCELLED' AND s.order_id IN {ids}";
    let mut used: HashMap<i64, Vec<i64>> = HashMap::new();
    for row in rows_for_ids(conn, client, SQL, orders).await? {
        used.entry(row.try_get("order_id")?)
            .or_default()
            .push(row.try_get("warehouse_id")?);
    }
    Ok(used)
}

const STOCK_COLUMNS: [&str; 4] = ["warehouse_id", "sku_id", "bucket", "qty"];
const ALLOCATABLE: &str = "qty > 0 AND (bucket LIKE 'AVAILABLE:%' OR bucket LIKE 'BAD:%')";

/// The read of [`allocatable_stock`] for `skus` SKUs: `$1` the client, then the SKU ids.
pub(crate) fn allocatable_stock_of_skus_sql(placeholders: Placeholders, skus: usize) -> String {
    json_rows_sql(
        placeholders,
        &STOCK_COLUMNS,
        &numbered_first(
            placeholders,
            &format!(
                "SELECT warehouse_id, sku_id, bucket, qty FROM stock WHERE client_id = $1 \
                 AND sku_id {} AND {ALLOCATABLE}",
                in_list::<i64>(placeholders, skus)
            ),
        ),
    )
}

/// Allocatable stock of the client: (warehouse, sku, bucket, qty) for AVAILABLE and BAD
/// buckets holding units, optionally only for some SKUs.
pub async fn allocatable_stock(
    conn: &mut AnyConnection,
    client: ClientId,
    skus: Option<&[i64]>,
) -> StoreResult<Vec<(i64, i64, String, i64)>> {
    let placeholders = Placeholders::of(conn);
    let Some(skus) = skus else {
        // All the client's stock in one value: a few bytes a row, so even a million keys
        // stay far below the 1 GB limit on one value (orders, with traces, are paged).
        let sql = json_rows_sql(
            placeholders,
            &STOCK_COLUMNS,
            &format!(
                "SELECT warehouse_id, sku_id, bucket, qty FROM stock \
                 WHERE client_id = $1 AND {ALLOCATABLE}"
            ),
        );
        let query = sqlx::query(AssertSqlSafe(sql)).bind(client.0);
        return fetch_json_rows(conn, query).await;
    };
    fetch_json_chunks(conn, skus.chunks(IN_LIST_MAX), |chunk| {
        let sql = allocatable_stock_of_skus_sql(placeholders, chunk.len());
        list_query(placeholders, &sql, client, chunk)
    })
    .await
}

#[derive(Debug, Clone)]
pub struct ShipmentRow {
    pub id: i64,
    pub order_id: i64,
    pub warehouse_id: i64,
    pub warehouse: String,
    pub status: String,
    pub awb: Option<String>,
    pub carrier: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The shipments of the orders `ids`, in id order.
pub async fn shipments_of(
    conn: &mut AnyConnection,
    client: ClientId,
    ids: &[i64],
) -> StoreResult<Vec<ShipmentRow>> {
    const SQL: &str = "SELECT s.id, s.order_id, s.warehouse_id, w.code AS warehouse, s.status, s.awb, s.carrier, \
                       s.created_at, s.updated_at FROM shipments s JOIN warehouses w ON w.id = s.warehouse_id \
                       WHERE s.client_id = $1 AND s.order_id IN {ids} ORDER BY s.id";
    let rows = rows_for_ids(conn, client, SQL, ids).await?;
    rows.iter()
        .map(|row| {
            Ok(ShipmentRow {
                id: row.try_get("id")?,
                order_id: row.try_get("order_id")?,
                warehouse_id: row.try_get("warehouse_id")?,
                warehouse: row.try_get("warehouse")?,
                status: row.try_get("status")?,
                awb: row.try_get("awb")?,
                carrier: row.try_get("carrier")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct AllocationRow {
    pub shipment_id: i64,
    pub order_line_id: i64,
    pub line_id: String,
    pub sku: String,
    pub bucket: String,
    pub qty: i64,
}

/// Every allocation of the order's shipments.
/// The allocations of the orders `ids` with their order's id, in id order.
pub async fn allocations_of(
    conn: &mut AnyConnection,
    client: ClientId,
    ids: &[i64],
) -> StoreResult<Vec<(i64, AllocationRow)>> {
    const SQL: &str = "SELECT sh.order_id, a.shipment_id, a.order_line_id, l.line_id, s.code AS sku, a.bucket, a.qty \
                       FROM shipments sh JOIN allocations a ON a.shipment_id = sh.id \
                       JOIN order_lines l ON l.id = a.order_line_id JOIN skus s ON s.id = a.sku_id \
                       WHERE sh.client_id = $1 AND sh.order_id IN {ids} ORDER BY a.id";
    let rows = rows_for_ids(conn, client, SQL, ids).await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("order_id")?,
                AllocationRow {
                    shipment_id: row.try_get("shipment_id")?,
                    order_line_id: row.try_get("order_line_id")?,
                    line_id: row.try_get("line_id")?,
                    sku: row.try_get("sku")?,
                    bucket: row.try_get("bucket")?,
                    qty: row.try_get("qty")?,
                },
            ))
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub event_type: String,
    pub data: String,
    pub at: i64,
}

/// The outbox events of the orders `ids` with their order's id, in id order.
pub async fn events_of(
    conn: &mut AnyConnection,
    client: ClientId,
    ids: &[i64],
) -> StoreResult<Vec<(i64, EventRow)>> {
    // Sorted here, not by the database: an `ORDER BY id` leads SQLite to walk every event
    // of the client along (client_id, id) instead of looking the orders up.
    const SQL: &str = "SELECT id, order_id, event_type, data, at FROM outbox \
                       WHERE client_id = $1 AND order_id IN {ids}";
    let rows = rows_for_ids(conn, client, SQL, ids).await?;
    let mut events = rows
        .iter()
        .map(|row| Ok((row.try_get("order_id")?, event_from_row(row)?)))
        .collect::<StoreResult<Vec<(i64, EventRow)>>>()?;
    events.sort_unstable_by_key(|(_, event)| event.id);
    Ok(events)
}

pub(crate) fn event_from_row(row: &sqlx::any::AnyRow) -> StoreResult<EventRow> {
    Ok(EventRow {
        id: row.try_get("id")?,
        event_type: row.try_get("event_type")?,
        data: row.try_get("data")?,
        at: row.try_get("at")?,
    })
}

/// For `oms check`: live allocated units per (client, warehouse, sku, bucket): the sum of
/// allocations in shipments not yet shipped or cancelled.
pub async fn live_allocations<'e>(
    db: impl AnyExecutor<'e>,
) -> StoreResult<Vec<(ClientId, i64, i64, String, i64)>> {
    const SQL: &str = "SELECT a.client_id, a.warehouse_id, a.sku_id, a.bucket, CAST(SUM(a.qty) AS BIGINT) AS qty \
                       FROM allocations a JOIN shipments s ON s.id = a.shipment_id \
                       WHERE s.status IN ('RELEASED', 'PICKED', 'PACKED') \
                       GROUP BY a.client_id, a.warehouse_id, a.sku_id, a.bucket";
    let rows = sqlx::query(SQL).fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            Ok((
                ClientId(row.try_get("client_id")?),
                row.try_get("warehouse_id")?,
                row.try_get("sku_id")?,
                row.try_get("bucket")?,
                row.try_get("qty")?,
            ))
        })
        .collect()
}

/// For `oms check`: every order line's counts with its order code.
pub async fn all_line_counts<'e>(
    db: impl AnyExecutor<'e>,
) -> StoreResult<Vec<(String, String, i64, i64, i64, i64, i64)>> {
    const SQL: &str = "SELECT o.order_code, l.line_id, l.id, l.ordered, l.allocated, l.shipped, l.cancelled \
                       FROM order_lines l JOIN orders o ON o.id = l.order_id ORDER BY l.id";
    let rows = sqlx::query(SQL).fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("order_code")?,
                row.try_get("line_id")?,
                row.try_get("id")?,
                row.try_get("ordered")?,
                row.try_get("allocated")?,
                row.try_get("shipped")?,
                row.try_get("cancelled")?,
            ))
        })
        .collect()
}

/// For `oms check`: per order line, the units of its live allocations.
pub async fn live_allocated_by_line<'e>(
    db: impl AnyExecutor<'e>,
) -> StoreResult<HashMap<i64, i64>> {
    const SQL: &str = "SELECT a.order_line_id, CAST(SUM(a.qty) AS BIGINT) AS qty FROM allocations a \
                       JOIN shipments s ON s.id = a.shipment_id WHERE s.status IN ('RELEASED', 'PICKED', 'PACKED') \
                       GROUP BY a.order_line_id";
    let rows = sqlx::query(SQL).fetch_all(db).await?;
    rows.iter()
        .map(|row| Ok((row.try_get("order_line_id")?, row.try_get("qty")?)))
        .collect()
}

/// Takes this transaction's right to run `client`'s allocation pass: on PostgreSQL a
/// transaction-level advisory lock, so N instances never run one client's pass at once
/// (false: another holds it); on SQLite the write lock already serialises passes.
pub async fn try_lock_allocation(
    conn: &mut AnyConnection,
    client: ClientId,
    backend: crate::Backend,
) -> StoreResult<bool> {
    // PostgreSQL only: SQLite has no advisory locks and needs none (one process, one writer).
    const SQL: &str = "SELECT pg_try_advisory_xact_lock($1, $2) AS locked";
    /// The advisory lock namespace of allocation passes.
    const ALLOCATION_LOCKS: i32 = 0x4f4d_5301;
    match backend {
        crate::Backend::Sqlite => Ok(true),
        crate::Backend::Postgres => {
            let client_key = i32::try_from(client.0 % i64::from(i32::MAX)).unwrap_or(0);
            let row = sqlx::query(SQL)
                .bind(ALLOCATION_LOCKS)
                .bind(client_key)
                .fetch_one(conn)
                .await?;
            Ok(row.try_get("locked")?)
        }
    }
}

/// Clients that have orders waiting for automatic retry.
pub async fn clients_with_waiting_orders<'e>(
    db: impl AnyExecutor<'e>,
) -> StoreResult<Vec<ClientId>> {
    const SQL: &str = "SELECT DISTINCT o.client_id FROM orders o WHERE o.retry = 'AUTO' \
                       AND o.status IN ('CREATED', 'UNFULFILLABLE', 'PARTIALLY_ALLOCATED', 'PARTIALLY_SHIPPED') \
                       ORDER BY o.client_id";
    let rows = sqlx::query(SQL).fetch_all(db).await?;
    rows.iter()
        .map(|row| Ok(ClientId(row.try_get("client_id")?)))
        .collect()
}

/// Creates one RELEASED shipment per (order, warehouse) given; answers their ids by pair.
/// SQLite draws the ids first ([`draw_ids`]) and writes them, because rows sent back
/// cross its driver's thread one at a time; PostgreSQL sends them back (`RETURNING`) in
/// the insert's own answer, which costs no extra round trip.
pub async fn insert_shipments(
    conn: &mut AnyConnection,
    client: ClientId,
    pairs: &[(i64, i64)],
    at: i64,
) -> StoreResult<HashMap<(i64, i64), i64>> {
    const COLUMNS: [(&str, &str); 6] = [
        ("client_id", "BIGINT"),
        ("order_id", "BIGINT"),
        ("warehouse_id", "BIGINT"),
        ("status", "TEXT"),
        ("created_at", "BIGINT"),
        ("updated_at", "BIGINT"),
    ];
    let placeholders = Placeholders::of(conn);
    if placeholders == Placeholders::Anonymous {
        let ids = draw_ids(&mut *conn, "shipments", pairs.len()).await?;
        let mut columns = vec![("id", "BIGINT")];
        columns.extend(COLUMNS);
        let per_statement = rows_per_statement(placeholders);
        execute_chunks(
            &mut *conn,
            ids.chunks(per_statement).zip(pairs.chunks(per_statement)),
            |(ids, pairs)| {
                let sql = insert_rows_sql(
                    placeholders,
                    "shipments",
                    &columns,
                    Ids::Given,
                    "",
                    ids.len(),
                );
                let rows: Vec<_> = ids
                    .iter()
                    .zip(pairs)
                    .map(|(id, (order, warehouse))| {
                        (id, client.0, order, warehouse, "RELEASED", at, at)
                    })
                    .collect();
                rows_query(placeholders, sql, &rows)
            },
        )
        .await?;
        return Ok(pairs.iter().copied().zip(ids).collect());
    }
    let chunks = pairs.chunks(rows_per_statement(placeholders));
    let returned = fetch_chunks(&mut *conn, chunks, |chunk| {
        let sql = insert_rows_sql(
            placeholders,
            "shipments",
            &COLUMNS,
            Ids::Drawn,
            // The returned rows name their pair, so their order does not matter.
            "RETURNING id, order_id, warehouse_id",
            chunk.len(),
        );
        let rows: Vec<_> = chunk
            .iter()
            .map(|(order, warehouse)| (client.0, order, warehouse, "RELEASED", at, at))
            .collect();
        rows_query(placeholders, sql, &rows)
    })
    .await?;
    let mut ids = HashMap::with_capacity(pairs.len());
    for row in returned {
        ids.insert(
            (row.try_get("order_id")?, row.try_get("warehouse_id")?),
            row.try_get("id")?,
        );
    }
    Ok(ids)
}

/// One allocation row to write: (shipment, order line, warehouse, sku, bucket, qty).
pub type NewAllocation<'a> = (i64, i64, i64, i64, &'a str, i64);

/// Writes allocation rows and raises each line's allocated count by the sum of its rows —
/// guarded, so no line passes what was ordered ([`StoreError::Insufficient`] otherwise).
pub async fn insert_allocations(
    conn: &mut AnyConnection,
    client: ClientId,
    rows: &[NewAllocation<'_>],
) -> StoreResult<()> {
    let per_line = summed_by_line(rows.iter().map(|(_, line, _, _, _, qty)| (*line, *qty)));
    add_to_lines(conn, "allocated", &per_line).await?;
    insert_allocation_rows(conn, client, rows).await
}

/// Writes allocation rows alone: for lines written with their allocated counts already
/// (see [`insert_lines`]). Written shipment by shipment, each shipment's rows in the order
/// given — the order every read of a shipment's allocations keeps (by id): a pass gives its
/// rows in SLA order, which put each at a random place in the shipment index.
pub async fn insert_allocation_rows(
    conn: &mut AnyConnection,
    client: ClientId,
    rows: &[NewAllocation<'_>],
) -> StoreResult<()> {
    let placeholders = Placeholders::of(conn);
    let mut in_shipment_order: Vec<&NewAllocation<'_>> = rows.iter().collect();
    in_shipment_order.sort_by_key(|(shipment, ..)| *shipment);
    execute_chunks(
        &mut *conn,
        in_shipment_order.chunks(rows_per_statement(placeholders)),
        |chunk| {
            let sql = insert_rows_sql(
                placeholders,
                "allocations",
                &[
                    ("client_id", "BIGINT"),
                    ("shipment_id", "BIGINT"),
                    ("order_line_id", "BIGINT"),
                    ("warehouse_id", "BIGINT"),
                    ("sku_id", "BIGINT"),
                    ("bucket", "TEXT"),
                    ("qty", "BIGINT"),
                ],
                Ids::Drawn,
                "",
                chunk.len(),
            );
            let rows: Vec<_> = chunk
                .iter()
                .map(|(shipment, line, warehouse, sku, bucket, qty)| {
                    (client.0, shipment, line, warehouse, sku, bucket, qty)
                })
                .collect();
            rows_query(placeholders, sql, &rows)
        },
    )
    .await?;
    Ok(())
}

/// Cancels open units of lines: (line, qty), never more than are open.
pub async fn cancel_open_many(conn: &mut AnyConnection, lines: &[(i64, i64)]) -> StoreResult<()> {
    add_to_lines(conn, "cancelled", &summed_by_line(lines.iter().copied())).await
}

/// Each line once, in id order, with the sum of its quantities: sorted and summed in a
/// vector (a tree map of a large pass's 200,000 allocations cost ~0.05 s before its
/// first statement).
pub fn summed_by_line(quantities: impl Iterator<Item = (i64, i64)>) -> Vec<(i64, i64)> {
    let mut per_line: Vec<(i64, i64)> = quantities.collect();
    per_line.sort_unstable_by_key(|(line, _)| *line);
    per_line.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 += later.1;
        }
        same
    });
    per_line
}

/// Adds to one count column of many lines, each guarded to stay within what was ordered.
async fn add_to_lines(
    conn: &mut AnyConnection,
    column: &str,
    lines: &[(i64, i64)],
) -> StoreResult<()> {
    let set = match column {
        "allocated" => "allocated = order_lines.allocated + v.column2",
        "cancelled" => "cancelled = order_lines.cancelled + v.column2",
        other => return Err(StoreError::Corrupt(format!("no line count {other}"))),
    };
    let placeholders = Placeholders::of(conn);
    let chunks = lines.chunks(rows_per_statement(placeholders));
    let done = execute_chunks(&mut *conn, chunks.clone(), |chunk| {
        let sql = update_rows_sql(
            placeholders,
            "order_lines",
            set,
            &["BIGINT", "BIGINT"],
            "order_lines.id = v.column1 AND order_lines.allocated + order_lines.shipped \
             + order_lines.cancelled + v.column2 <= order_lines.ordered",
            chunk.len(),
        );
        rows_query(placeholders, sql, chunk)
    })
    .await?;
    if let Some((chunk, _)) = chunks
        .zip(done)
        .find(|(chunk, done)| *done != chunk.len() as u64)
    {
        return Err(StoreError::Insufficient {
            bucket: "an order line's open quantity".to_owned(),
            requested: chunk.iter().map(|(_, q)| q).sum(),
        });
    }
    Ok(())
}

/// Records many orders' allocation attempts: (order, status, trace). Written in order id
/// order, whatever order they come in: a pass attempts orders in SLA order, and updated
/// in that order its rows (and their status index entries) were rewritten a random page
/// at a time (measured in BENCHMARKS.md, 2026-12-03 evening).
pub async fn record_attempts(
    conn: &mut AnyConnection,
    attempts: &[(i64, &str, String)],
    at: i64,
) -> StoreResult<()> {
    let placeholders = Placeholders::of(conn);
    let mut in_id_order: Vec<&(i64, &str, String)> = attempts.iter().collect();
    in_id_order.sort_unstable_by_key(|(order, _, _)| *order);
    execute_chunks(
        &mut *conn,
        in_id_order.chunks(rows_per_statement(placeholders)),
        |chunk| {
            let sql = update_rows_sql(
                placeholders,
                "orders",
                "status = v.column2, allocation_trace = v.column3, attempts = orders.attempts + 1, \
             updated_at = v.column4",
                &["BIGINT", "TEXT", "TEXT", "BIGINT"],
                "orders.id = v.column1",
                chunk.len(),
            );
            let rows: Vec<_> = chunk
                .iter()
                .map(|(order, status, trace)| (order, status, trace, at))
                .collect();
            rows_query(placeholders, sql, &rows)
        },
    )
    .await?;
    Ok(())
}

/// Writes many events to the outbox: (type, order, data).
pub async fn emit_many(
    conn: &mut AnyConnection,
    client: ClientId,
    events: &[(&str, Option<i64>, String)],
    at: i64,
) -> StoreResult<()> {
    emit_made(
        conn,
        client,
        events.len(),
        borrowed_events(events),
        at,
        false,
    )
    .await
    .map(|_| ())
}

/// As [`emit_many`], answering the events' ids in the order of `events`.
pub async fn emit_many_with_ids(
    conn: &mut AnyConnection,
    client: ClientId,
    events: &[(&str, Option<i64>, String)],
    at: i64,
) -> StoreResult<Vec<i64>> {
    emit_made(
        conn,
        client,
        events.len(),
        borrowed_events(events),
        at,
        true,
    )
    .await
}

/// An outbox event to write: (type, order, data).
pub type NewEvent<'a> = (&'a str, Option<i64>, Cow<'a, str>);

/// Events held in a list, as [`emit_made`] takes them.
pub fn borrowed_events<'a>(
    events: &'a [(&'a str, Option<i64>, String)],
) -> impl Iterator<Item = NewEvent<'a>> {
    events
        .iter()
        .map(|(event_type, order, data)| (*event_type, *order, Cow::Borrowed(data.as_str())))
}

/// Events to write in one statement, with their ids when drawn.
type EventChunk<'a> = (Option<&'a [i64]>, Vec<NewEvent<'a>>);

/// As [`emit_many`] (with the ids when `with_ids`), for `count` events made as they are
/// written: each statement's events are taken from `events` while the statement before
/// it runs, so a caller that builds many (a large pass's `inventory.changed`) builds them
/// beside the database's work instead of before it.
pub async fn emit_made<'a>(
    conn: &mut AnyConnection,
    client: ClientId,
    count: usize,
    mut events: impl Iterator<Item = NewEvent<'a>>,
    at: i64,
    with_ids: bool,
) -> StoreResult<Vec<i64>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    // Readers page the outbox by id (`GET /events?after=`, the webhook cursor), so ids must
    // become visible in id order. On PostgreSQL two transactions could draw ids 41 and 42
    // and commit 42 first; a reader that saw 42 would never see 41. Holding a per-client
    // lock from drawing the ids until commit makes ids and commits go in the same order.
    // Every caller writes its events last, so the lock is held only for the commit.
    // (PostgreSQL only: SQLite has one writer, which orders commits already.)
    const OUTBOX_LOCK: &str = "SELECT pg_advisory_xact_lock($1, $2) AS locked";
    const OUTBOX_LOCKS: i32 = 0x4f4d_5302;
    if !conn.backend_name().eq_ignore_ascii_case("sqlite") {
        let client_key = i32::try_from(client.0 % i64::from(i32::MAX)).unwrap_or(0);
        sqlx::query(OUTBOX_LOCK)
            .bind(OUTBOX_LOCKS)
            .bind(client_key)
            .execute(&mut *conn)
            .await?;
    }
    let placeholders = Placeholders::of(conn);
    let per_statement = rows_per_statement(placeholders);
    let mut columns = vec![("id", "BIGINT")];
    columns.extend([
        ("client_id", "BIGINT"),
        ("event_type", "TEXT"),
        ("order_id", "BIGINT"),
        ("data", "TEXT"),
        ("at", "BIGINT"),
    ]);
    // With ids given (drawn first), `id` is the first column; without, it is left out and
    // the database numbers the rows.
    let statement = |(ids, chunk): EventChunk<'_>| {
        let (columns, returning) = match (ids, with_ids) {
            (Some(_), _) => (&columns[..], ""),
            (None, true) => (&columns[1..], "RETURNING id"),
            (None, false) => (&columns[1..], ""),
        };
        let sql = insert_rows_sql(
            placeholders,
            "outbox",
            columns,
            if ids.is_some() {
                Ids::Given
            } else {
                Ids::Drawn
            },
            returning,
            chunk.len(),
        );
        let rows = chunk
            .iter()
            .map(|(event_type, order, data)| (client.0, event_type, order, data, at));
        match ids {
            Some(ids) => {
                let rows: Vec<_> = ids
                    .iter()
                    .zip(rows)
                    .map(|(id, (client, event_type, order, data, at))| {
                        (id, client, event_type, order, data, at)
                    })
                    .collect();
                rows_query(placeholders, sql, &rows)
            }
            None => rows_query(placeholders, sql, &rows.collect::<Vec<_>>()),
        }
    };
    // Each statement's events are taken when its statement is built, which is while the
    // one before it runs (see `execute_chunks`).
    let chunks = std::iter::from_fn(move || {
        let chunk: Vec<NewEvent<'a>> = events.by_ref().take(per_statement).collect();
        (!chunk.is_empty()).then_some(chunk)
    });
    if !with_ids {
        execute_chunks(&mut *conn, chunks.map(|c| (None, c)), statement).await?;
        return Ok(Vec::new());
    }
    // SQLite draws the ids first and writes them, as for shipments: rows sent back cross
    // its driver's thread one at a time (a 64-client ingest batch's ~60 events took 1.6 ms
    // with `RETURNING`, three times its orders' insert).
    if placeholders == Placeholders::Anonymous {
        let ids = draw_ids(&mut *conn, "outbox", count).await?;
        let written = execute_chunks(
            &mut *conn,
            ids.chunks(per_statement)
                .zip(chunks)
                .map(|(ids, c)| (Some(ids), c)),
            statement,
        )
        .await?;
        if written.iter().sum::<u64>() != count as u64 {
            return Err(StoreError::Corrupt(
                "fewer events were given than counted".into(),
            ));
        }
        return Ok(ids);
    }
    // Ids are drawn row by row in the order the rows are given, chunk after chunk; the
    // order the database returns them in is not promised, so they are sorted back into it.
    let mut ids = fetch_chunks(&mut *conn, chunks.map(|c| (None, c)), statement)
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<Vec<i64>, _>>()?;
    if ids.len() != count {
        return Err(StoreError::Corrupt(
            "the outbox answered too few ids".into(),
        ));
    }
    ids.sort_unstable();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use sqlx::{AssertSqlSafe, Row};

    use std::borrow::Cow;

    use super::{
        Inserted, NewAllocation, NewLine, OrderRecord, borrowed_events, emit_made, emit_many,
        emit_many_with_ids, insert, insert_allocation_rows, insert_shipments, lines,
        phone_digits_pattern,
    };
    use crate::{Store, StoreOptions, clients, warehouses};

    /// Events written with their ids answered (drawn ahead on SQLite, returned on
    /// PostgreSQL) get the ids they are stored under, ascending in the order given, also
    /// beside events written without, twice in one transaction, and across transactions.
    async fn event_ids_are_the_stored_ones(url: &str) {
        let store = Store::connect(url, &StoreOptions::default())
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let mut tx = store.begin_write().await.expect("begin");
        let client = clients::insert(tx.conn(), "acme", "Acme", "{}", 1)
            .await
            .expect("client")
            .id;
        let events = |label: &str, n: usize| -> Vec<(&'static str, Option<i64>, String)> {
            (0..n)
                .map(|i| {
                    (
                        "order.allocated",
                        None,
                        format!("{{\"n\":\"{label}-{i}\"}}"),
                    )
                })
                .collect()
        };
        // Each event written with its ids, beside the id it was answered.
        async fn with_ids(
            conn: &mut sqlx::AnyConnection,
            client: crate::ClientId,
            events: Vec<(&'static str, Option<i64>, String)>,
        ) -> Vec<((&'static str, Option<i64>, String), i64)> {
            let ids = emit_many_with_ids(conn, client, &events, 1)
                .await
                .expect("events with ids");
            events.into_iter().zip(ids).collect()
        }
        let mut answered = Vec::new();
        emit_many(tx.conn(), client, &events("before", 2), 1)
            .await
            .expect("emit");
        answered.extend(with_ids(tx.conn(), client, events("first", 3)).await);
        emit_many(tx.conn(), client, &events("between", 1), 1)
            .await
            .expect("emit");
        answered.extend(with_ids(tx.conn(), client, events("second", 1_001)).await);
        tx.commit().await.expect("commit");
        let mut tx = store.begin_write().await.expect("begin");
        answered.extend(with_ids(tx.conn(), client, events("third", 2)).await);
        tx.commit().await.expect("commit");

        let ids: Vec<i64> = answered.iter().map(|(_, id)| *id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending: {ids:?}");
        for ((_, _, data), id) in &answered {
            let stored: String = sqlx::query("SELECT data FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_one(store.pool())
                .await
                .expect("stored event")
                .try_get("data")
                .expect("data");
            assert_eq!(&stored, data, "event {id}");
        }
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox")
            .fetch_one(store.pool())
            .await
            .expect("count");
        assert_eq!(count, 2 + 3 + 1 + 1_001 + 2);
    }

    #[tokio::test]
    async fn sqlite_event_ids_are_the_stored_ones() {
        let (_dir, url) = crate::test_support::fresh_sqlite();
        event_ids_are_the_stored_ones(&url).await;
    }

    #[tokio::test]
    async fn postgres_event_ids_are_the_stored_ones() {
        event_ids_are_the_stored_ones(&crate::test_support::fresh_postgres().await).await;
    }

    /// Events made as they are written (borrowed ones first, then ones made by the
    /// iterator, over several statements) are stored in the order given, under the ids
    /// answered; every event is made exactly once; a count the events fall short of is an
    /// error, not a silent gap.
    async fn events_made_as_written_are_stored_in_order(url: &str) {
        let store = Store::connect(url, &StoreOptions::default())
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let mut tx = store.begin_write().await.expect("begin");
        let client = clients::insert(tx.conn(), "acme", "Acme", "{}", 1)
            .await
            .expect("client")
            .id;
        let given: Vec<(&str, Option<i64>, String)> = (0..3)
            .map(|i| ("order.allocated", None, format!("{{\"given\":{i}}}")))
            .collect();
        // More than one statement's worth on either backend.
        let made = 6_001;
        let calls = std::cell::Cell::new(0);
        let events = borrowed_events(&given).chain((0..made).map(|i| {
            calls.set(calls.get() + 1);
            (
                "inventory.changed",
                None,
                Cow::Owned(format!("{{\"made\":{i}}}")),
            )
        }));
        let ids = emit_made(tx.conn(), client, given.len() + made, events, 1, true)
            .await
            .expect("written");
        assert_eq!(calls.get(), made, "each event made once");
        assert_eq!(ids.len(), given.len() + made);
        tx.commit().await.expect("commit");
        let stored: Vec<(i64, String)> = sqlx::query_as("SELECT id, data FROM outbox ORDER BY id")
            .fetch_all(store.pool())
            .await
            .expect("stored");
        let expected: Vec<String> = (0..3)
            .map(|i| format!("{{\"given\":{i}}}"))
            .chain((0..made).map(|i| format!("{{\"made\":{i}}}")))
            .collect();
        assert_eq!(stored.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
        assert_eq!(
            stored.into_iter().map(|(_, data)| data).collect::<Vec<_>>(),
            expected
        );

        let mut tx = store.begin_write().await.expect("begin");
        let short = emit_made(tx.conn(), client, 5, borrowed_events(&given), 1, true).await;
        assert!(
            short.is_err(),
            "three events counted as five must not pass: {short:?}"
        );
    }

    #[tokio::test]
    async fn sqlite_events_made_as_written_are_stored_in_order() {
        let (_dir, url) = crate::test_support::fresh_sqlite();
        events_made_as_written_are_stored_in_order(&url).await;
    }

    #[tokio::test]
    async fn postgres_events_made_as_written_are_stored_in_order() {
        events_made_as_written_are_stored_in_order(&crate::test_support::fresh_postgres().await)
            .await;
    }

    /// A line's quantities are summed however they come, each line once, in id order.
    #[test]
    fn quantities_sum_per_line_in_line_order() {
        let given = [(7, 2), (3, 1), (7, 5), (1, 4), (3, 3), (7, 1)];
        assert_eq!(
            super::summed_by_line(given.into_iter()),
            vec![(1, 4), (3, 4), (7, 8)]
        );
        assert!(super::summed_by_line(std::iter::empty()).is_empty());
    }

    /// What [`an_order`] stored.
    struct AnOrder {
        client: crate::ClientId,
        warehouses: Vec<i64>,
        sku: i64,
        order: i64,
    }

    /// A fresh store with client acme, warehouses BLR1 and DEL1, SKU TEE, and one order of
    /// `lines` lines (ids `1`, `2`, …) of `ordered` units each, written on `conn`.
    async fn an_order(conn: &mut crate::Conn, lines: usize, ordered: i64) -> AnOrder {
        let client = clients::insert(&mut *conn, "acme", "Acme", "{}", 1)
            .await
            .expect("client")
            .id;
        let id = crate::test_support::inserted_id;
        let mut warehouses = Vec::new();
        for code in ["BLR1", "DEL1"] {
            let warehouse = id(
                &mut *conn,
                format!(
                    "INSERT INTO warehouses (code, name, kind, pincode, priority, created_at, \
                     updated_at) VALUES ('{code}', 'W', 'WAREHOUSE', '560001', 1, 0, 0) RETURNING id"
                ),
            )
            .await;
            warehouses::map_to_client(&mut *conn, client, warehouse, 0)
                .await
                .expect("mapped");
            warehouses.push(warehouse);
        }
        let sku = id(
            &mut *conn,
            format!(
                "INSERT INTO skus (client_id, code, name, mrp_minor, attributes, created_at, \
                 updated_at) VALUES ({},  'TEE', 'Tee', 100, '{{}}', 0, 0) RETURNING id",
                client.0
            ),
        )
        .await;
        let channel = id(
            &mut *conn,
            format!(
                "INSERT INTO channels (client_id, code, name, kind, created_at, updated_at) \
                 VALUES ({},  'WEB', 'Web', 'WEBSITE', 0, 0) RETURNING id",
                client.0
            ),
        )
        .await;
        let record = OrderRecord {
            channel_id: channel,
            order_code: "A-1".into(),
            kind: "B2C".into(),
            fulfilment_type: "MULTI_SHIPMENT_PARTIAL".into(),
            retry: "AUTO".into(),
            dispatch_by: None,
            priority: 0,
            warehouse_id: None,
            destination_warehouse_id: None,
            stock: "GOOD".into(),
            ship_name: None,
            ship_address: None,
            ship_pincode: Some("560001".into()),
            ship_phone: None,
            ship_email: None,
            ship_lat: None,
            ship_lon: None,
        };
        let new_lines: Vec<NewLine> = (1..=lines)
            .map(|n| (n.to_string(), sku, ordered, None))
            .collect();
        let order = match insert(&mut *conn, client, &record, "hash", &new_lines, 1)
            .await
            .expect("order")
        {
            Inserted::Created(order) => order,
            exists => panic!("a fresh order exists: {exists:?}"),
        };
        AnOrder {
            client,
            warehouses,
            sku,
            order,
        }
    }

    /// A backlog's read (`open_demand` over every waiting order, paged) and a read of
    /// named orders find the same orders, each as the pass needs it: exactly what reading
    /// the whole order and narrowing it gives. Cancelled orders, orders with nothing open
    /// and, for retry passes, orders that are not retried are not demand.
    async fn open_demand_reads_what_the_pass_needs_of_waiting_orders(url: &str) {
        let store = Store::connect(url, &StoreOptions::default())
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let mut tx = store.begin_write().await.expect("begin");
        let fixture = an_order(tx.conn(), 2, 3).await;
        let client = fixture.client;
        let channel: i64 = sqlx::query("SELECT id FROM channels WHERE client_id = $1")
            .bind(client.0)
            .fetch_one(&mut *tx.conn())
            .await
            .expect("channel")
            .try_get("id")
            .expect("id");
        let mut ids = vec![fixture.order];
        for (code, retry, warehouse, ship) in [
            ("A-2", "NONE", None, true),
            ("A-3", "AUTO", Some(fixture.warehouses[1]), true),
            ("A-4", "AUTO", None, false),
            ("A-5", "AUTO", None, true),
        ] {
            let record = OrderRecord {
                channel_id: channel,
                order_code: code.into(),
                kind: "B2C".into(),
                fulfilment_type: "BLOCK_COMPLETE".into(),
                retry: retry.into(),
                dispatch_by: Some(1_000 + ids.len() as i64),
                priority: ids.len() as i64,
                warehouse_id: warehouse,
                destination_warehouse_id: None,
                stock: "GOOD".into(),
                ship_name: ship.then(|| "Asha".into()),
                ship_address: ship.then(|| "1 Long Road".into()),
                ship_pincode: ship.then(|| "560001".into()),
                ship_phone: ship.then(|| "+91 90000 00000".into()),
                ship_email: ship.then(|| "asha@example.com".into()),
                ship_lat: ship.then_some(12.97),
                ship_lon: ship.then_some(77.59),
            };
            let lines: Vec<NewLine> = vec![("1".into(), fixture.sku, 2, Some(499))];
            match insert(tx.conn(), client, &record, "hash", &lines, 1)
                .await
                .expect("order")
            {
                Inserted::Created(id) => ids.push(id),
                exists => panic!("a fresh order exists: {exists:?}"),
            }
        }
        // A-1 tried before; A-4 cancelled; A-5 with nothing open.
        let trace = r#"[[["BLR1",1.5,3,0,1]],"no stock for this order"]"#;
        for sql in [
            format!(
                "UPDATE orders SET allocation_trace = '{trace}', attempts = 2 WHERE id = {}",
                ids[0]
            ),
            format!(
                "UPDATE orders SET status = 'CANCELLED' WHERE id = {}",
                ids[3]
            ),
            format!(
                "UPDATE order_lines SET cancelled = ordered WHERE order_id = {}",
                ids[4]
            ),
        ] {
            sqlx::query(AssertSqlSafe(sql))
                .execute(&mut *tx.conn())
                .await
                .expect("update");
        }
        let whole = super::find_many(tx.conn(), client, &ids)
            .await
            .expect("whole");
        let narrowed = |kept: &[i64]| -> Vec<super::DemandOrder> {
            whole
                .iter()
                .filter(|o| kept.contains(&o.id))
                .map(super::DemandOrder::from)
                .collect()
        };
        for (only_auto, expected) in [
            (false, vec![ids[0], ids[1], ids[2]]),
            (true, vec![ids[0], ids[2]]),
        ] {
            let (backlog, lines) = super::open_demand(tx.conn(), client, only_auto, None)
                .await
                .expect("backlog");
            assert_eq!(backlog, narrowed(&expected), "only auto: {only_auto}");
            let line_orders: Vec<i64> = lines.iter().map(|l| l.order_id).collect();
            let mut expected_lines = vec![ids[0], ids[0]];
            expected_lines.extend(&expected[1..]);
            assert_eq!(line_orders, expected_lines, "only auto: {only_auto}");
            let (named, named_lines) = super::open_demand(tx.conn(), client, only_auto, Some(&ids))
                .await
                .expect("named");
            assert_eq!(named, backlog, "only auto: {only_auto}");
            assert_eq!(
                named_lines.iter().map(|l| l.id).collect::<Vec<_>>(),
                lines.iter().map(|l| l.id).collect::<Vec<_>>()
            );
        }
        let (first, _) = super::open_demand(tx.conn(), client, false, None)
            .await
            .expect("backlog");
        assert_eq!(first[0].allocation_trace.as_deref(), Some(trace));
        assert_eq!(first[0].attempts, 2);
        assert_eq!(first[1].channel, "WEB");
        assert_eq!(first[1].ship_lat, Some(12.97));
        assert_eq!(first[2].warehouse_id, Some(fixture.warehouses[1]));
        tx.commit().await.expect("commit");
    }

    #[tokio::test]
    async fn sqlite_open_demand_reads_what_the_pass_needs_of_waiting_orders() {
        let (_dir, url) = crate::test_support::fresh_sqlite();
        open_demand_reads_what_the_pass_needs_of_waiting_orders(&url).await;
    }

    #[tokio::test]
    async fn postgres_open_demand_reads_what_the_pass_needs_of_waiting_orders() {
        open_demand_reads_what_the_pass_needs_of_waiting_orders(
            &crate::test_support::fresh_postgres().await,
        )
        .await;
    }

    /// Allocation rows given for two shipments in turn are written shipment by shipment,
    /// each shipment's rows in the order given: a shipment's pick list reads them by id.
    async fn allocation_rows_keep_their_order_per_shipment(url: &str) {
        let store = Store::connect(url, &StoreOptions::default())
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let mut tx = store.begin_write().await.expect("begin");
        let conn = tx.conn();
        const ROWS: i64 = 300;
        let AnOrder {
            client,
            warehouses,
            sku,
            order,
        } = an_order(&mut *conn, 1, ROWS * (ROWS + 1)).await;
        let line = lines(&mut *conn, client, order).await.expect("lines")[0].id;
        let pairs: Vec<(i64, i64)> = warehouses.iter().map(|w| (order, *w)).collect();
        let shipment_of = insert_shipments(&mut *conn, client, &pairs, 1)
            .await
            .expect("shipments");
        let shipments: Vec<i64> = pairs.iter().map(|pair| shipment_of[pair]).collect();
        // The later shipment's rows first, then the two in turn: each row's quantity
        // says where it stood among its shipment's rows.
        let rows: Vec<NewAllocation> = (1..=ROWS)
            .flat_map(|n| [(1, n), (0, n)])
            .map(|(at, qty)| {
                let warehouse = warehouses[at];
                (shipments[at], line, warehouse, sku, "GOOD", qty)
            })
            .collect();
        insert_allocation_rows(&mut *conn, client, &rows)
            .await
            .expect("allocated");
        let (first, second) = (shipments[0], shipments[1]);
        tx.commit().await.expect("commit");

        let mut conn = store.pool().acquire().await.expect("conn");
        let mut all = Vec::new();
        for shipment in [first, second] {
            let read = crate::fulfilment::shipment_allocations(&mut conn, client, shipment)
                .await
                .expect("read");
            let quantities: Vec<i64> = read.iter().map(|row| row.qty).collect();
            assert_eq!(
                quantities,
                (1..=ROWS).collect::<Vec<_>>(),
                "shipment {shipment}"
            );
            all.extend(read.iter().map(|row| (row.shipment_id, row.id)));
        }
        // And shipment by shipment in the table: ids ascend through the first, then the second.
        assert!(all.windows(2).all(|pair| pair[0].1 < pair[1].1), "{all:?}");
    }

    #[tokio::test]
    async fn sqlite_allocation_rows_keep_their_order_per_shipment() {
        let (_dir, url) = crate::test_support::fresh_sqlite();
        allocation_rows_keep_their_order_per_shipment(&url).await;
    }

    #[tokio::test]
    async fn postgres_allocation_rows_keep_their_order_per_shipment() {
        allocation_rows_keep_their_order_per_shipment(&crate::test_support::fresh_postgres().await)
            .await;
    }

    /// A pass updates every line of a backlog in one transaction; on PostgreSQL each line's
    /// new version stays on its page (no index touched) only if the page has room for it.
    #[tokio::test]
    async fn postgres_lines_updated_all_at_once_stay_on_their_pages() {
        let store = Store::connect(
            &crate::test_support::fresh_postgres().await,
            &StoreOptions::default(),
        )
        .await
        .expect("open");
        store.migrate().await.expect("migrate");
        let mut tx = store.begin_write().await.expect("begin");
        // Pages' worth of lines, written full as a file's orders are.
        let AnOrder { client, order, .. } = an_order(tx.conn(), 3_000, 5).await;
        tx.commit().await.expect("commit");
        const PAGES: &str = "SELECT id, CAST((CAST(CAST(ctid AS TEXT) AS POINT))[0] AS BIGINT) \
                             FROM order_lines WHERE order_id = $1 ORDER BY id";
        let before: Vec<(i64, i64)> = sqlx::query_as(PAGES)
            .bind(order)
            .fetch_all(store.pool())
            .await
            .expect("pages");
        let mut tx = store.begin_write().await.expect("begin");
        sqlx::query("UPDATE order_lines SET allocated = allocated + 1 WHERE client_id = $1")
            .bind(client.0)
            .execute(tx.conn())
            .await
            .expect("allocated");
        tx.commit().await.expect("commit");
        let after: Vec<(i64, i64)> = sqlx::query_as(PAGES)
            .bind(order)
            .fetch_all(store.pool())
            .await
            .expect("pages");
        assert_eq!(before.len(), 3_000);
        let pages: std::collections::BTreeSet<i64> = before.iter().map(|(_, page)| *page).collect();
        assert!(pages.len() > 10, "the lines span pages: {}", pages.len());
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        assert_eq!(moved, 0, "{moved} of 3,000 lines moved to another page");
    }

    #[test]
    fn phone_searches_match_the_last_ten_digits() {
        assert_eq!(phone_digits_pattern("+91 98450 12345"), "%9845012345%");
        assert_eq!(phone_digits_pattern("09845012345"), "%9845012345%");
        assert_eq!(phone_digits_pattern("(98450)-12345"), "%9845012345%");
        assert_eq!(phone_digits_pattern("012345"), "%012345%");
        assert_eq!(phone_digits_pattern("12345"), "", "too short to be a phone");
        assert_eq!(phone_digits_pattern("MYN-123456"), "", "an order code");
        assert_eq!(phone_digits_pattern(""), "");
    }
}
