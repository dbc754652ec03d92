//! Inward orders and their lines. Line counts change only through guarded updates, so two
//! GRNs racing on one line can never receive more than the rule allows.

use oms_domain::inward::InwardLine;
use sqlx::{AnyConnection, AnyExecutor, Row};

use crate::{ClientId, StoreResult, like_contains};

#[derive(Debug, Clone)]
pub struct InwardOrderRow {
    pub id: i64,
    pub order_code: String,
    pub kind: String,
    pub warehouse_id: i64,
    pub warehouse: String,
    pub party: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct InwardLineRow {
    pub id: i64,
    pub sku_id: i64,
    pub sku: String,
    pub line: InwardLine,
}

fn order_from_row(row: &sqlx::any::AnyRow) -> StoreResult<InwardOrderRow> {
    Ok(InwardOrderRow {
        id: row.try_get("id")?,
        order_code: row.try_get("order_code")?,
        kind: row.try_get("kind")?,
        warehouse_id: row.try_get("warehouse_id")?,
        warehouse: row.try_get("warehouse")?,
        party: row.try_get("party")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        closed_at: row.try_get("closed_at")?,
    })
}

/// Creates an open inward order; [`crate::StoreError::Conflict`] when the code exists.
#[expect(clippy::too_many_arguments, reason = "one row of many columns")]
pub async fn insert_order(
    conn: &mut AnyConnection,
    client: ClientId,
    order_code: &str,
    kind: &str,
    warehouse: i64,
    party: Option<&str>,
    lines: &[(i64, i64)],
    at: i64,
) -> StoreResult<i64> {
    const ORDER: &str = "INSERT INTO inward_orders (client_id, order_code, kind, warehouse_id, \
                         party, status, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, 'OPEN', $6, $6) RETURNING id";
    const LINE: &str = "INSERT INTO inward_lines (client_id, inward_order_id, sku_id, ordered, \
                        received, qc_pass, qc_fail, lost) VALUES ($1, $2, $3, $4, 0, 0, 0, 0)";
    let id: i64 = sqlx::query(ORDER)
        .bind(client.0)
        .bind(order_code)
        .bind(kind)
        .bind(warehouse)
        .bind(party)
        .bind(at)
        .fetch_one(&mut *conn)
        .await?
        .try_get("id")?;
    for (sku, ordered) in lines {
        sqlx::query(LINE)
            .bind(client.0)
            .bind(id)
            .bind(*sku)
            .bind(*ordered)
            .execute(&mut *conn)
            .await?;
    }
    Ok(id)
}

macro_rules! select_order {
    ($tail:literal) => {
        concat!(
            "SELECT o.id, o.order_code, o.kind, o.warehouse_id, w.code AS warehouse, o.party, \
             o.status, o.created_at, o.updated_at, o.closed_at \
             FROM inward_orders o JOIN warehouses w ON w.id = o.warehouse_id ",
            $tail
        )
    };
}

pub async fn find_order<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    order_code: &str,
) -> StoreResult<Option<InwardOrderRow>> {
    const SQL: &str = select_order!("WHERE o.client_id = $1 AND o.order_code = $2");
    let row = sqlx::query(SQL)
        .bind(client.0)
        .bind(order_code)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(order_from_row).transpose()
}

/// The client's inward orders whose code contains `q`, with `status` (empty for any), in
/// code order after `after`.
pub async fn list_orders<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    status: &str,
    q: &str,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<InwardOrderRow>> {
    const SQL: &str = select_order!(
        "WHERE o.client_id = $1 AND ($2 = '' OR o.status = $2) \
         AND LOWER(o.order_code) LIKE $3 ESCAPE '\\' AND o.order_code > $4 \
         ORDER BY o.order_code LIMIT $5"
    );
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(status)
        .bind(like_contains(q))
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(order_from_row).collect()
}

pub async fn lines<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    order: i64,
) -> StoreResult<Vec<InwardLineRow>> {
    const SQL: &str = "SELECT l.id, l.sku_id, s.code AS sku, l.ordered, l.received, l.qc_pass, \
                       l.qc_fail, l.lost FROM inward_lines l JOIN skus s ON s.id = l.sku_id \
                       WHERE l.client_id = $1 AND l.inward_order_id = $2 ORDER BY l.id";
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(order)
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(InwardLineRow {
                id: row.try_get("id")?,
                sku_id: row.try_get("sku_id")?,
                sku: row.try_get("sku")?,
                line: InwardLine {
                    ordered: row.try_get("ordered")?,
                    received: row.try_get("received")?,
                    qc_pass: row.try_get("qc_pass")?,
                    qc_fail: row.try_get("qc_fail")?,
                    lost: row.try_get("lost")?,
                },
            })
        })
        .collect()
}

/// Adds `qty` received units to a line of an open order, never past `ordered` unless
/// `excess_allowed`; false when the guard refused (a concurrent change).
pub async fn receive(
    conn: &mut AnyConnection,
    line: i64,
    qty: i64,
    excess_allowed: bool,
) -> StoreResult<bool> {
    const SQL: &str = "UPDATE inward_lines SET received = received + $2 \
                       WHERE id = $1 AND (received + $2 <= ordered OR $3 = 1) \
                       AND inward_order_id IN (SELECT id FROM inward_orders WHERE status = 'OPEN')";
    let done = sqlx::query(SQL)
        .bind(line)
        .bind(qty)
        .bind(i64::from(excess_allowed))
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Books QC results on a line of an open order, never more than await QC; false when the
/// guard refused.
pub async fn quality_check(
    conn: &mut AnyConnection,
    line: i64,
    pass: i64,
    fail: i64,
    lost: i64,
) -> StoreResult<bool> {
    const SQL: &str = "UPDATE inward_lines SET qc_pass = qc_pass + $2, qc_fail = qc_fail + $3, \
                       lost = lost + $4 \
                       WHERE id = $1 AND qc_pass + qc_fail + lost + $2 + $3 + $4 <= received \
                       AND inward_order_id IN (SELECT id FROM inward_orders WHERE status = 'OPEN')";
    let done = sqlx::query(SQL)
        .bind(line)
        .bind(pass)
        .bind(fail)
        .bind(lost)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Closes an open order; false when it was closed already.
pub async fn close(
    conn: &mut AnyConnection,
    client: ClientId,
    order: i64,
    at: i64,
) -> StoreResult<bool> {
    const SQL: &str = "UPDATE inward_orders SET status = 'CLOSED', closed_at = $3, updated_at = $3 \
                       WHERE client_id = $1 AND id = $2 AND status = 'OPEN'";
    let done = sqlx::query(SQL)
        .bind(client.0)
        .bind(order)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn touch(conn: &mut AnyConnection, order: i64, at: i64) -> StoreResult<()> {
    sqlx::query("UPDATE inward_orders SET updated_at = $2 WHERE id = $1")
        .bind(order)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// For `oms check`: every inward line with its order code and its client's settings.
pub async fn all_lines<'e>(
    db: impl AnyExecutor<'e>,
) -> StoreResult<Vec<(String, String, String, InwardLine)>> {
    const SQL: &str = "SELECT c.settings, o.order_code, s.code AS sku, l.ordered, l.received, \
                       l.qc_pass, l.qc_fail, l.lost FROM inward_lines l \
                       JOIN inward_orders o ON o.id = l.inward_order_id \
                       JOIN clients c ON c.id = l.client_id JOIN skus s ON s.id = l.sku_id \
                       ORDER BY l.id";
    let rows = sqlx::query(SQL).fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("settings")?,
                row.try_get("order_code")?,
                row.try_get("sku")?,
                InwardLine {
                    ordered: row.try_get("ordered")?,
                    received: row.try_get("received")?,
                    qc_pass: row.try_get("qc_pass")?,
                    qc_fail: row.try_get("qc_fail")?,
                    lost: row.try_get("lost")?,
                },
            ))
        })
        .collect()
}
