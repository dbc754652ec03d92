//! Named pools: reservations of good stock for channels. `COMMON` is not stored: it always
//! exists.

use sqlx::{AnyConnection, AnyExecutor, AssertSqlSafe, Row};

use crate::{ClientId, Placeholders, StoreResult, upsert_sql};

#[derive(Debug, Clone)]
pub struct PoolRow {
    pub code: String,
    pub name: String,
    /// Channel codes, as a JSON list.
    pub channels: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(row: &sqlx::any::AnyRow) -> StoreResult<PoolRow> {
    Ok(PoolRow {
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        channels: row.try_get("channels")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: [&str; 6] = [
    "client_id",
    "code",
    "name",
    "channels",
    "created_at",
    "updated_at",
];

/// Creates or updates the client's pool `code`; true when it was created.
pub async fn upsert(
    conn: &mut AnyConnection,
    client: ClientId,
    code: &str,
    name: &str,
    channels_json: &str,
    at: i64,
) -> StoreResult<bool> {
    let existed = find(&mut *conn, client, code).await?.is_some();
    let sql = upsert_sql(
        Placeholders::of(conn),
        "pools",
        &COLUMNS,
        &["client_id", "code"],
        1,
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(client.0)
        .bind(code)
        .bind(name)
        .bind(channels_json)
        .bind(at)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(!existed)
}

pub async fn find<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    code: &str,
) -> StoreResult<Option<PoolRow>> {
    const SQL: &str = "SELECT code, name, channels, created_at, updated_at FROM pools \
                       WHERE client_id = $1 AND code = $2";
    let row = sqlx::query(SQL)
        .bind(client.0)
        .bind(code)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every named pool of the client, in code order (a client has few).
pub async fn list<'e>(db: impl AnyExecutor<'e>, client: ClientId) -> StoreResult<Vec<PoolRow>> {
    const SQL: &str = "SELECT code, name, channels, created_at, updated_at FROM pools \
                       WHERE client_id = $1 ORDER BY code";
    let rows = sqlx::query(SQL).bind(client.0).fetch_all(db).await?;
    rows.iter().map(from_row).collect()
}
