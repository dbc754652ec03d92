//! Clients: the tenants. Each carries its settings as one JSON document.

use sqlx::AnyConnection;
use sqlx::{AnyExecutor, AssertSqlSafe, Row};

use crate::{ClientId, Placeholders, StoreResult, decode_json_rows, json_rows_value};

#[derive(Debug, Clone)]
pub struct ClientRow {
    pub id: ClientId,
    pub code: String,
    pub name: String,
    /// The client's settings as JSON; the domain owns their shape.
    pub settings: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(row: &sqlx::any::AnyRow) -> StoreResult<ClientRow> {
    Ok(ClientRow {
        id: ClientId(row.try_get("id")?),
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        settings: row.try_get("settings")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const INSERT: &str = "INSERT INTO clients (code, name, settings, created_at, updated_at) \
                      VALUES ($1, $2, $3, $4, $4) \
                      RETURNING id, code, name, settings, created_at, updated_at";

/// Inserts a new client; [`crate::StoreError::Conflict`] when the code exists.
pub async fn insert(
    conn: &mut AnyConnection,
    code: &str,
    name: &str,
    settings: &str,
    at: i64,
) -> StoreResult<ClientRow> {
    let row = sqlx::query(INSERT)
        .bind(code)
        .bind(name)
        .bind(settings)
        .bind(at)
        .fetch_one(conn)
        .await?;
    from_row(&row)
}

pub async fn find_by_code<'e>(
    db: impl AnyExecutor<'e>,
    code: &str,
) -> StoreResult<Option<ClientRow>> {
    const SQL: &str = "SELECT id, code, name, settings, created_at, updated_at \
                       FROM clients WHERE code = $1";
    let row = sqlx::query(SQL).bind(code).fetch_optional(db).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn find_by_id<'e>(
    db: impl AnyExecutor<'e>,
    id: ClientId,
) -> StoreResult<Option<ClientRow>> {
    const SQL: &str = "SELECT id, code, name, settings, created_at, updated_at \
                       FROM clients WHERE id = $1";
    let row = sqlx::query(SQL).bind(id.0).fetch_optional(db).await?;
    row.as_ref().map(from_row).transpose()
}

/// Clients in code order after `after` (empty for the first page).
pub async fn list<'e>(
    db: impl AnyExecutor<'e>,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<ClientRow>> {
    const SQL: &str = "SELECT id, code, name, settings, created_at, updated_at \
                       FROM clients WHERE code > $1 ORDER BY code LIMIT $2";
    let rows = sqlx::query(SQL)
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(from_row).collect()
}

/// The client's settings as the transaction sees them.
pub async fn settings_in(conn: &mut AnyConnection, client: ClientId) -> StoreResult<String> {
    const SQL: &str = "SELECT settings FROM clients WHERE id = $1";
    let row = sqlx::query(SQL).bind(client.0).fetch_one(conn).await?;
    Ok(row.try_get("settings")?)
}

/// A warehouse a client may ship from, as allocation plans with it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct PlanningWarehouse {
    pub id: i64,
    pub code: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub pincode: String,
    pub priority: i64,
}

/// What an allocation pass plans with besides its demand and the stock: the client's
/// settings (JSON), the warehouses mapped to it and its named pools (code, channel codes
/// as a JSON list), each list in code order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanningMasters {
    pub settings: String,
    pub warehouses: Vec<PlanningWarehouse>,
    pub pools: Vec<(String, String)>,
}

/// Reads [`PlanningMasters`] in one statement: every order batch takes a pass, and the
/// three reads it was took a round trip each.
pub async fn planning_masters(
    conn: &mut AnyConnection,
    client: ClientId,
) -> StoreResult<PlanningMasters> {
    let placeholders = Placeholders::of(conn);
    let warehouses = json_rows_value(
        placeholders,
        &["id", "code", "lat", "lon", "pincode", "priority"],
    );
    let pools = json_rows_value(placeholders, &["code", "channels"]);
    // `$1` names the client in every part, on both backends.
    let sql = format!(
        "SELECT c.settings, \
         (SELECT {warehouses} FROM (SELECT w.id, w.code, w.lat, w.lon, w.pincode, w.priority \
          FROM warehouses w JOIN client_warehouses cw ON cw.warehouse_id = w.id \
          WHERE cw.client_id = $1) AS q) AS warehouses, \
         (SELECT {pools} FROM (SELECT code, channels FROM pools WHERE client_id = $1) AS q) \
          AS pools \
         FROM clients c WHERE c.id = $1"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(client.0)
        .fetch_one(conn)
        .await?;
    type WarehouseColumns = (i64, String, Option<f64>, Option<f64>, String, i64);
    let mut warehouses: Vec<PlanningWarehouse> =
        decode_json_rows::<WarehouseColumns>(&row.try_get::<String, _>("warehouses")?)?
            .into_iter()
            .map(
                |(id, code, lat, lon, pincode, priority)| PlanningWarehouse {
                    id,
                    code,
                    lat,
                    lon,
                    pincode,
                    priority,
                },
            )
            .collect();
    // In code order whatever order the aggregates kept.
    warehouses.sort_unstable_by(|a, b| a.code.cmp(&b.code));
    let mut pools: Vec<(String, String)> = decode_json_rows(&row.try_get::<String, _>("pools")?)?;
    pools.sort_unstable();
    Ok(PlanningMasters {
        settings: row.try_get("settings")?,
        warehouses,
        pools,
    })
}

/// Reads the client's settings inside a writing transaction and holds them, so a change is
/// applied to what is current.
pub async fn settings_for_update(
    conn: &mut AnyConnection,
    client: ClientId,
) -> StoreResult<String> {
    const SQL: &str = "SELECT settings FROM clients WHERE id = $1";
    // PostgreSQL: lock the row so two concurrent changes apply one after the other; SQLite's
    // write lock already serialises them and it has no row locks. NO KEY UPDATE, because
    // every insert referencing the client holds KEY SHARE on this row, which FOR UPDATE
    // would wait for — and two such transactions would deadlock.
    const SQL_LOCKING: &str = "SELECT settings FROM clients WHERE id = $1 FOR NO KEY UPDATE";
    let sql = if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        SQL
    } else {
        SQL_LOCKING
    };
    let row = sqlx::query(sql).bind(client.0).fetch_one(conn).await?;
    Ok(row.try_get("settings")?)
}

pub async fn update_settings(
    conn: &mut AnyConnection,
    client: ClientId,
    settings: &str,
    at: i64,
) -> StoreResult<()> {
    const SQL: &str = "UPDATE clients SET settings = $2, updated_at = $3 WHERE id = $1";
    sqlx::query(SQL)
        .bind(client.0)
        .bind(settings)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use oms_domain::masters::{Warehouse, WarehouseKind};

    use super::{PlanningWarehouse, insert, planning_masters};
    use crate::{Store, StoreOptions, pools, warehouses};

    /// One statement reads what three did: the client's settings, exactly the warehouses
    /// mapped to it (with and without coordinates) and its own pools, each list in code
    /// order — nothing of another client's, nothing unmapped.
    async fn planning_masters_are_the_clients_own(url: &str) {
        let store = Store::connect(url, &StoreOptions::default())
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let mut tx = store.begin_write().await.expect("begin");
        let conn = tx.conn();
        let acme = insert(&mut *conn, "acme", "Acme", r#"{"routing":"x"}"#, 1)
            .await
            .expect("acme")
            .id;
        let other = insert(&mut *conn, "other", "Other", "{}", 1)
            .await
            .expect("other")
            .id;
        // Nothing mapped and no pools yet: empty lists, not an error.
        let bare = planning_masters(&mut *conn, acme).await.expect("bare");
        assert_eq!(bare.settings, r#"{"routing":"x"}"#);
        assert!(bare.warehouses.is_empty() && bare.pools.is_empty());
        for (code, lat, client) in [
            ("DEL1", None, Some(acme)),
            ("BLR1", Some(12.5), Some(acme)),
            ("HYD1", Some(17.0), Some(other)),
            ("PNQ1", Some(18.0), None),
        ] {
            let warehouse = Warehouse {
                name: code.into(),
                kind: WarehouseKind::Warehouse,
                address: None,
                pincode: format!("{code}-PIN"),
                lat,
                lon: lat.map(|l| l + 65.0),
                priority: lat.map_or(7, |l| l as i64),
            };
            warehouses::upsert(&mut *conn, code, &warehouse, 1)
                .await
                .expect("warehouse");
            if let Some(client) = client {
                let id = warehouses::find(&mut *conn, code)
                    .await
                    .expect("find")
                    .expect("stored")
                    .id;
                warehouses::map_to_client(&mut *conn, client, id, 1)
                    .await
                    .expect("mapped");
            }
        }
        for (client, code, channels) in [
            (acme, "VIP", r#"["WEB","APP"]"#),
            (acme, "B2B", r#"["TRADE"]"#),
            (other, "OTHER", r#"["WEB"]"#),
        ] {
            pools::upsert(&mut *conn, client, code, code, channels, 1)
                .await
                .expect("pool");
        }
        let read = planning_masters(&mut *conn, acme).await.expect("read");
        let mapped = warehouses::list_mapped(&mut *conn, acme, "", i64::MAX)
            .await
            .expect("mapped");
        let expected: Vec<PlanningWarehouse> = mapped
            .into_iter()
            .map(|w| PlanningWarehouse {
                id: w.id,
                code: w.code,
                lat: w.lat,
                lon: w.lon,
                pincode: w.pincode,
                priority: w.priority,
            })
            .collect();
        assert_eq!(
            expected.iter().map(|w| w.code.as_str()).collect::<Vec<_>>(),
            ["BLR1", "DEL1"]
        );
        assert_eq!(read.warehouses, expected);
        assert_eq!(read.warehouses[0].lon, Some(77.5));
        assert_eq!(read.warehouses[1].lat, None);
        assert_eq!(
            read.pools,
            vec![
                ("B2B".to_owned(), r#"["TRADE"]"#.to_owned()),
                ("VIP".to_owned(), r#"["WEB","APP"]"#.to_owned()),
            ]
        );
        tx.commit().await.expect("commit");
    }

    #[tokio::test]
    async fn sqlite_planning_masters_are_the_clients_own() {
        let (_dir, url) = crate::test_support::fresh_sqlite();
        planning_masters_are_the_clients_own(&url).await;
    }

    #[tokio::test]
    async fn postgres_planning_masters_are_the_clients_own() {
        planning_masters_are_the_clients_own(&crate::test_support::fresh_postgres().await).await;
    }
}
