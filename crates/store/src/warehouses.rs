//! Warehouses (the operator's) and their mapping to the clients they serve.

use oms_domain::masters::Warehouse;
use sqlx::AnyConnection;
use sqlx::{AnyExecutor, AssertSqlSafe, Row};

use crate::{ClientId, Placeholders, StoreResult, upsert_sql};

#[derive(Debug, Clone)]
pub struct WarehouseRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub address: Option<String>,
    pub pincode: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub priority: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(row: &sqlx::any::AnyRow) -> StoreResult<WarehouseRow> {
    Ok(WarehouseRow {
        id: row.try_get("id")?,
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        address: row.try_get("address")?,
        pincode: row.try_get("pincode")?,
        lat: row.try_get("lat")?,
        lon: row.try_get("lon")?,
        priority: row.try_get("priority")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: [&str; 10] = [
    "code",
    "name",
    "kind",
    "address",
    "pincode",
    "lat",
    "lon",
    "priority",
    "created_at",
    "updated_at",
];

/// Creates or updates the warehouse `code`; true when it was created.
pub async fn upsert(
    conn: &mut AnyConnection,
    code: &str,
    warehouse: &Warehouse,
    at: i64,
) -> StoreResult<bool> {
    let existed = find(&mut *conn, code).await?.is_some();
    let sql = upsert_sql(Placeholders::of(conn), "warehouses", &COLUMNS, &["code"], 1);
    sqlx::query(AssertSqlSafe(sql))
        .bind(code)
        .bind(&warehouse.name)
        .bind(warehouse.kind.as_str())
        .bind(&warehouse.address)
        .bind(&warehouse.pincode)
        .bind(warehouse.lat)
        .bind(warehouse.lon)
        .bind(warehouse.priority)
        .bind(at)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(!existed)
}

/// `SELECT` of every warehouse column (aliased `w`), followed by the given tail.
macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT w.id, w.code, w.name, w.kind, w.address, w.pincode, w.lat, w.lon, \
             w.priority, w.created_at, w.updated_at FROM warehouses w ",
            $tail
        )
    };
}

pub async fn find<'e>(db: impl AnyExecutor<'e>, code: &str) -> StoreResult<Option<WarehouseRow>> {
    const SQL: &str = select!("WHERE w.code = $1");
    let row = sqlx::query(SQL).bind(code).fetch_optional(db).await?;
    row.as_ref().map(from_row).transpose()
}

/// The warehouse `code` if it is mapped to `client`.
pub async fn find_mapped<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    code: &str,
) -> StoreResult<Option<WarehouseRow>> {
    const SQL: &str = select!(
        "JOIN client_warehouses cw ON cw.warehouse_id = w.id \
         WHERE cw.client_id = $1 AND w.code = $2"
    );
    let row = sqlx::query(SQL)
        .bind(client.0)
        .bind(code)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// All warehouses in code order after `after` (empty for the first page).
pub async fn list<'e>(
    db: impl AnyExecutor<'e>,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<WarehouseRow>> {
    const SQL: &str = select!("WHERE w.code > $1 ORDER BY w.code LIMIT $2");
    let rows = sqlx::query(SQL)
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(from_row).collect()
}

/// The warehouses mapped to `client`, in code order after `after`.
pub async fn list_mapped<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<WarehouseRow>> {
    const SQL: &str = select!(
        "JOIN client_warehouses cw ON cw.warehouse_id = w.id \
         WHERE cw.client_id = $1 AND w.code > $2 ORDER BY w.code LIMIT $3"
    );
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Maps `warehouse` to `client`; true when the mapping is new.
pub async fn map_to_client(
    conn: &mut AnyConnection,
    client: ClientId,
    warehouse: i64,
    at: i64,
) -> StoreResult<bool> {
    const SQL: &str = "INSERT INTO client_warehouses (client_id, warehouse_id, created_at) \
                       VALUES ($1, $2, $3) ON CONFLICT (client_id, warehouse_id) DO NOTHING";
    let done = sqlx::query(SQL)
        .bind(client.0)
        .bind(warehouse)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes the mapping; false when there was none.
pub async fn unmap_from_client(
    conn: &mut AnyConnection,
    client: ClientId,
    warehouse: i64,
) -> StoreResult<bool> {
    const SQL: &str = "DELETE FROM client_warehouses WHERE client_id = $1 AND warehouse_id = $2";
    let done = sqlx::query(SQL)
        .bind(client.0)
        .bind(warehouse)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use oms_domain::masters::{Warehouse, WarehouseKind};

    use super::{find, upsert};
    use crate::{Store, StoreOptions};

    /// A warehouse without coordinates, then one with them, then one without again, on
    /// one connection (so through one kept statement): each stored as given. (With sqlx
    /// 0.9.0 the first kept a null as the other float type, and PostgreSQL refused the
    /// second's coordinates as bad binary data.)
    async fn coordinates_may_come_after_a_warehouse_without(url: &str) {
        let store = Store::connect(url, &StoreOptions::default())
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let mut tx = store.begin_write().await.expect("begin");
        let conn = tx.conn();
        for (code, lat) in [("DEL1", None), ("BLR1", Some(12.5)), ("PNQ1", None)] {
            let lon = lat.map(|l| l + 65.0);
            let warehouse = Warehouse {
                name: code.into(),
                kind: WarehouseKind::Warehouse,
                address: None,
                pincode: "560001".into(),
                lat,
                lon,
                priority: 1,
            };
            upsert(&mut *conn, code, &warehouse, 1)
                .await
                .unwrap_or_else(|e| panic!("{code}: {e}"));
            let stored = find(&mut *conn, code).await.expect("find").expect("stored");
            assert_eq!((stored.lat, stored.lon), (lat, lon), "{code}");
        }
        tx.commit().await.expect("commit");
    }

    #[tokio::test]
    async fn sqlite_coordinates_may_come_after_a_warehouse_without() {
        let (_dir, url) = crate::test_support::fresh_sqlite();
        coordinates_may_come_after_a_warehouse_without(&url).await;
    }

    #[tokio::test]
    async fn postgres_coordinates_may_come_after_a_warehouse_without() {
        coordinates_may_come_after_a_warehouse_without(
            &crate::test_support::fresh_postgres().await,
        )
        .await;
    }
}
