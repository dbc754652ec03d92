//! Channels: where a client's orders come from.

use oms_domain::masters::Channel;
use sqlx::AnyConnection;
use sqlx::{AnyExecutor, AssertSqlSafe, Row};

use crate::{ClientId, Placeholders, StoreResult, upsert_sql};

#[derive(Debug, Clone)]
pub struct ChannelRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(row: &sqlx::any::AnyRow) -> StoreResult<ChannelRow> {
    Ok(ChannelRow {
        id: row.try_get("id")?,
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: [&str; 6] = [
    "client_id",
    "code",
    "name",
    "kind",
    "created_at",
    "updated_at",
];

/// Creates or updates the client's channel `code`; true when it was created.
pub async fn upsert(
    conn: &mut AnyConnection,
    client: ClientId,
    code: &str,
    channel: &Channel,
    at: i64,
) -> StoreResult<bool> {
    let existed = find(&mut *conn, client, code).await?.is_some();
    let sql = upsert_sql(
        Placeholders::of(conn),
        "channels",
        &COLUMNS,
        &["client_id", "code"],
        1,
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(client.0)
        .bind(code)
        .bind(&channel.name)
        .bind(channel.kind.as_str())
        .bind(at)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(!existed)
}

macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT id, code, name, kind, created_at, updated_at FROM channels ",
            $tail
        )
    };
}

pub async fn find<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    code: &str,
) -> StoreResult<Option<ChannelRow>> {
    const SQL: &str = select!("WHERE client_id = $1 AND code = $2");
    let row = sqlx::query(SQL)
        .bind(client.0)
        .bind(code)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The client's channels in code order after `after` (empty for the first page).
pub async fn list<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<ChannelRow>> {
    const SQL: &str = select!("WHERE client_id = $1 AND code > $2 ORDER BY code LIMIT $3");
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(from_row).collect()
}
