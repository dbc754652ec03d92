//! Clients: the tenants. Each carries its settings as one JSON document.

use sqlx::AnyConnection;
use sqlx::{AnyExecutor, Row};

use crate::{ClientId, StoreResult};

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
