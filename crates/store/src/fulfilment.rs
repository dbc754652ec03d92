//! Fulfilment writes: shipment status, shipping and cancelling allocated units, remarks,
//! and the outbox as the WMS reads it. Counts move through guarded updates.

use sqlx::{AnyConnection, AnyExecutor, Row};

use crate::{ClientId, StoreError, StoreResult};

/// A shipment with its order, as status updates need it.
#[derive(Debug, Clone)]
pub struct ShipmentHead {
    pub id: i64,
    pub order_id: i64,
    pub order_code: String,
    pub order_kind: String,
    pub destination_warehouse_id: Option<i64>,
    pub warehouse_id: i64,
    pub warehouse: String,
    pub status: String,
}

pub async fn shipment<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    id: i64,
) -> StoreResult<Option<ShipmentHead>> {
    const SQL: &str = "SELECT s.id, s.order_id, o.order_code, o.kind, o.destination_warehouse_id, s.warehouse_id, \
                       w.code AS warehouse, s.status FROM shipments s JOIN orders o ON o.id = s.order_id \
                       JOIN warehouses w ON w.id = s.warehouse_id WHERE s.client_id = $1 AND s.id = $2";
    let row = sqlx::query(SQL)
        .bind(client.0)
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.map(|row| {
        Ok(ShipmentHead {
            id: row.try_get("id")?,
            order_id: row.try_get("order_id")?,
            order_code: row.try_get("order_code")?,
            order_kind: row.try_get("kind")?,
            destination_warehouse_id: row.try_get("destination_warehouse_id")?,
            warehouse_id: row.try_get("warehouse_id")?,
            warehouse: row.try_get("warehouse")?,
            status: row.try_get("status")?,
        })
    })
    .transpose()
}

/// One live allocation row of a shipment.
#[derive(Debug, Clone)]
pub struct AllocationLine {
    pub id: i64,
    pub shipment_id: i64,
    pub order_line_id: i64,
    pub warehouse_id: i64,
    pub sku_id: i64,
    pub sku: String,
    pub bucket: String,
    pub qty: i64,
}

fn allocation_from_row(row: &sqlx::any::AnyRow) -> StoreResult<AllocationLine> {
    Ok(AllocationLine {
        id: row.try_get("id")?,
        shipment_id: row.try_get("shipment_id")?,
        order_line_id: row.try_get("order_line_id")?,
        warehouse_id: row.try_get("warehouse_id")?,
        sku_id: row.try_get("sku_id")?,
        sku: row.try_get("sku")?,
        bucket: row.try_get("bucket")?,
        qty: row.try_get("qty")?,
    })
}

/// The allocation rows of one shipment.
pub async fn shipment_allocations(
    conn: &mut AnyConnection,
    client: ClientId,
    shipment: i64,
) -> StoreResult<Vec<AllocationLine>> {
    const SQL: &str = "SELECT a.id, a.shipment_id, a.order_line_id, a.warehouse_id, a.sku_id, s.code AS sku, a.bucket, a.qty \
                       FROM allocations a JOIN skus s ON s.id = a.sku_id \
                       WHERE a.client_id = $1 AND a.shipment_id = $2 ORDER BY a.id";
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(shipment)
        .fetch_all(conn)
        .await?;
    rows.iter().map(allocation_from_row).collect()
}

/// The allocation rows of an order's shipments that are still RELEASED (cancellable),
/// newest shipment first.
pub async fn released_allocations(
    conn: &mut AnyConnection,
    client: ClientId,
    order: i64,
) -> StoreResult<Vec<AllocationLine>> {
    const SQL: &str = "SELECT a.id, a.shipment_id, a.order_line_id, a.warehouse_id, a.sku_id, s.code AS sku, a.bucket, a.qty \
                       FROM allocations a JOIN shipments sh ON sh.id = a.shipment_id JOIN skus s ON s.id = a.sku_id \
                       WHERE a.client_id = $1 AND sh.order_id = $2 AND sh.status = 'RELEASED' \
                       ORDER BY a.shipment_id DESC, a.id DESC";
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(order)
        .fetch_all(conn)
        .await?;
    rows.iter().map(allocation_from_row).collect()
}

/// Moves a shipment from `from` to `to`, with AWB and carrier when given; false when it
/// was no longer `from` (a concurrent update).
pub async fn set_status(
    conn: &mut AnyConnection,
    shipment: i64,
    from: &str,
    to: &str,
    awb: Option<&str>,
    carrier: Option<&str>,
    at: i64,
) -> StoreResult<bool> {
    const SQL: &str = "UPDATE shipments SET status = $3, awb = COALESCE($4, awb), carrier = COALESCE($5, carrier), \
                       updated_at = $6 WHERE id = $1 AND status = $2";
    let done = sqlx::query(SQL)
        .bind(shipment)
        .bind(from)
        .bind(to)
        .bind(awb)
        .bind(carrier)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes hold of a shipment that is still RELEASED (the update locks its row until the
/// transaction ends); false when it is not RELEASED any more.
pub async fn claim_released(conn: &mut AnyConnection, shipment: i64, at: i64) -> StoreResult<bool> {
    const SQL: &str = "UPDATE shipments SET updated_at = $2 WHERE id = $1 AND status = 'RELEASED'";
    let done = sqlx::query(SQL)
        .bind(shipment)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves `qty` of a line from allocated to `to` (`shipped` or `cancelled`), guarded.
pub async fn settle_allocated(
    conn: &mut AnyConnection,
    line: i64,
    qty: i64,
    to: Settled,
) -> StoreResult<()> {
    const SHIP: &str = "UPDATE order_lines SET allocated = allocated - $2, shipped = shipped + $2 \
                        WHERE id = $1 AND allocated >= $2";
    const CANCEL: &str = "UPDATE order_lines SET allocated = allocated - $2, cancelled = cancelled + $2 \
                          WHERE id = $1 AND allocated >= $2";
    let sql = match to {
        Settled::Shipped => SHIP,
        Settled::Cancelled => CANCEL,
    };
    let done = sqlx::query(sql).bind(line).bind(qty).execute(conn).await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Insufficient {
            bucket: format!("order line {line} allocated quantity"),
            requested: qty,
        });
    }
    Ok(())
}

/// Where allocated units of a line go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Shipped,
    Cancelled,
}

/// Takes `qty` out of an allocation row (deleting it at zero), guarded.
pub async fn reduce_allocation(
    conn: &mut AnyConnection,
    allocation: i64,
    qty: i64,
) -> StoreResult<()> {
    const SQL: &str = "UPDATE allocations SET qty = qty - $2 WHERE id = $1 AND qty > $2";
    const DELETE: &str = "DELETE FROM allocations WHERE id = $1 AND qty = $2";
    let reduced = sqlx::query(SQL)
        .bind(allocation)
        .bind(qty)
        .execute(&mut *conn)
        .await?;
    if reduced.rows_affected() == 1 {
        return Ok(());
    }
    let deleted = sqlx::query(DELETE)
        .bind(allocation)
        .bind(qty)
        .execute(conn)
        .await?;
    if deleted.rows_affected() != 1 {
        return Err(StoreError::Insufficient {
            bucket: format!("allocation {allocation}"),
            requested: qty,
        });
    }
    Ok(())
}

/// Cancels a RELEASED shipment that has no allocation rows left; false otherwise.
pub async fn cancel_if_empty(
    conn: &mut AnyConnection,
    shipment: i64,
    at: i64,
) -> StoreResult<bool> {
    const SQL: &str = "UPDATE shipments SET status = 'CANCELLED', updated_at = $2 WHERE id = $1 AND status = 'RELEASED' \
                       AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.shipment_id = $1)";
    let done = sqlx::query(SQL)
        .bind(shipment)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_order_status(
    conn: &mut AnyConnection,
    order: i64,
    status: &str,
    at: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE orders SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(order)
        .bind(status)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Statuses of an order's shipments.
pub async fn shipment_statuses(conn: &mut AnyConnection, order: i64) -> StoreResult<Vec<String>> {
    let rows = sqlx::query("SELECT status FROM shipments WHERE order_id = $1")
        .bind(order)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("status")?)).collect()
}

#[derive(Debug, Clone)]
pub struct RemarkRow {
    pub id: i64,
    pub text: String,
    pub author: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn add_remark(
    conn: &mut AnyConnection,
    client: ClientId,
    order: i64,
    text: &str,
    author: &str,
    at: i64,
) -> StoreResult<i64> {
    const SQL: &str = "INSERT INTO remarks (client_id, order_id, text, author, created_at, updated_at) \
                       VALUES ($1, $2, $3, $4, $5, $5) RETURNING id";
    let row = sqlx::query(SQL)
        .bind(client.0)
        .bind(order)
        .bind(text)
        .bind(author)
        .bind(at)
        .fetch_one(conn)
        .await?;
    Ok(row.try_get("id")?)
}

/// Changes a remark's text; false when the order has no such remark.
pub async fn update_remark(
    conn: &mut AnyConnection,
    client: ClientId,
    order: i64,
    id: i64,
    text: &str,
    author: &str,
    at: i64,
) -> StoreResult<bool> {
    const SQL: &str = "UPDATE remarks SET text = $4, author = $5, updated_at = $6 \
                       WHERE client_id = $1 AND order_id = $2 AND id = $3";
    let done = sqlx::query(SQL)
        .bind(client.0)
        .bind(order)
        .bind(id)
        .bind(text)
        .bind(author)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The remarks on the orders `ids` with their order's id, in id order.
pub async fn remarks_of(
    conn: &mut AnyConnection,
    client: ClientId,
    ids: &[i64],
) -> StoreResult<Vec<(i64, RemarkRow)>> {
    const SQL: &str = "SELECT id, order_id, text, author, created_at, updated_at FROM remarks \
                       WHERE client_id = $1 AND order_id IN {ids} ORDER BY id";
    let rows = crate::orders::rows_for_ids(conn, client, SQL, ids).await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("order_id")?,
                RemarkRow {
                    id: r.try_get("id")?,
                    text: r.try_get("text")?,
                    author: r.try_get("author")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                },
            ))
        })
        .collect()
}

/// The client's events after id `after`, oldest first.
pub async fn events<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<crate::orders::EventRow>> {
    const SQL: &str = "SELECT id, event_type, data, at FROM outbox WHERE client_id = $1 AND id > $2 ORDER BY id LIMIT $3";
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(crate::orders::event_from_row).collect()
}
