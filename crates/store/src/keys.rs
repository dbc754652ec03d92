//! API keys: random tokens, stored only as their SHA-256, each belonging to one client.

use sqlx::AnyConnection;
use sqlx::{AnyExecutor, Row};

use crate::{ClientId, StoreResult};

#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: i64,
    pub client_id: ClientId,
    pub client_code: String,
    pub role: String,
    pub name: String,
    pub created_at: i64,
}

fn from_row(row: &sqlx::any::AnyRow) -> StoreResult<KeyRow> {
    Ok(KeyRow {
        id: row.try_get("id")?,
        client_id: ClientId(row.try_get("client_id")?),
        client_code: row.try_get("client_code")?,
        role: row.try_get("role")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn insert(
    conn: &mut AnyConnection,
    client: ClientId,
    role: &str,
    name: &str,
    token_hash: &str,
    at: i64,
) -> StoreResult<i64> {
    const SQL: &str = "INSERT INTO api_keys (client_id, role, name, token_hash, created_at) \
                       VALUES ($1, $2, $3, $4, $5) RETURNING id";
    let row = sqlx::query(SQL)
        .bind(client.0)
        .bind(role)
        .bind(name)
        .bind(token_hash)
        .bind(at)
        .fetch_one(conn)
        .await?;
    Ok(row.try_get("id")?)
}

/// The live key with this token hash, with its client's code.
pub async fn find_by_hash<'e>(
    db: impl AnyExecutor<'e>,
    token_hash: &str,
) -> StoreResult<Option<KeyRow>> {
    const SQL: &str = "SELECT k.id, k.client_id, c.code AS client_code, k.role, k.name, k.created_at \
                       FROM api_keys k JOIN clients c ON c.id = k.client_id \
                       WHERE k.token_hash = $1 AND k.revoked_at IS NULL";
    let row = sqlx::query(SQL).bind(token_hash).fetch_optional(db).await?;
    row.as_ref().map(from_row).transpose()
}

/// The client's live keys, newest first; never their hashes.
pub async fn list<'e>(db: impl AnyExecutor<'e>, client: ClientId) -> StoreResult<Vec<KeyRow>> {
    const SQL: &str = "SELECT k.id, k.client_id, c.code AS client_code, k.role, k.name, k.created_at \
                       FROM api_keys k JOIN clients c ON c.id = k.client_id \
                       WHERE k.client_id = $1 AND k.revoked_at IS NULL ORDER BY k.id DESC";
    let rows = sqlx::query(SQL).bind(client.0).fetch_all(db).await?;
    rows.iter().map(from_row).collect()
}

/// Revokes the client's key `id`; false when the client has no such live key.
pub async fn revoke(
    conn: &mut AnyConnection,
    client: ClientId,
    id: i64,
    at: i64,
) -> StoreResult<bool> {
    const SQL: &str = "UPDATE api_keys SET revoked_at = $3 \
                       WHERE client_id = $1 AND id = $2 AND revoked_at IS NULL";
    let done = sqlx::query(SQL)
        .bind(client.0)
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
