//! The support panel's users and sessions, and the reads only the panel makes (recent
//! ledger rows of a SKU, newest first).

use sqlx::{AnyConnection, AnyExecutor, Row};

use crate::stock::{LedgerRow, ledger_from_row};
use crate::{ClientId, StoreResult};

/// A panel user with its client's code; `password_hash` is an argon2 PHC string.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub client_id: ClientId,
    pub client_code: String,
    pub username: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

fn user_from_row(row: &sqlx::any::AnyRow) -> StoreResult<UserRow> {
    Ok(UserRow {
        id: row.try_get("id")?,
        client_id: ClientId(row.try_get("client_id")?),
        client_code: row.try_get("client_code")?,
        username: row.try_get("username")?,
        role: row.try_get("role")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}

/// Inserts a user; [`crate::StoreError::Conflict`] when the client has the username.
pub async fn insert_user(
    conn: &mut AnyConnection,
    client: ClientId,
    username: &str,
    role: &str,
    password_hash: &str,
    at: i64,
) -> StoreResult<i64> {
    const SQL: &str = "INSERT INTO panel_users (client_id, username, role, password_hash, created_at) \
                       VALUES ($1, $2, $3, $4, $5) RETURNING id";
    let row = sqlx::query(SQL)
        .bind(client.0)
        .bind(username)
        .bind(role)
        .bind(password_hash)
        .bind(at)
        .fetch_one(conn)
        .await?;
    Ok(row.try_get("id")?)
}

/// The user `username` of the client with code `client_code`, disabled or not.
pub async fn find_user<'e>(
    db: impl AnyExecutor<'e>,
    client_code: &str,
    username: &str,
) -> StoreResult<Option<UserRow>> {
    const SQL: &str = "SELECT u.id, u.client_id, c.code AS client_code, u.username, u.role, \
                       u.password_hash, u.created_at, u.disabled_at \
                       FROM panel_users u JOIN clients c ON c.id = u.client_id \
                       WHERE c.code = $1 AND u.username = $2";
    let row = sqlx::query(SQL)
        .bind(client_code)
        .bind(username)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// The client's panel users, disabled ones included, by username.
pub async fn list_users<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
) -> StoreResult<Vec<UserRow>> {
    const SQL: &str = "SELECT u.id, u.client_id, c.code AS client_code, u.username, u.role, \
                       u.password_hash, u.created_at, u.disabled_at \
                       FROM panel_users u JOIN clients c ON c.id = u.client_id \
                       WHERE u.client_id = $1 ORDER BY u.username";
    let rows = sqlx::query(SQL).bind(client.0).fetch_all(db).await?;
    rows.iter().map(user_from_row).collect()
}

/// Disables the user (it can no longer sign in) and ends its sessions; false when the
/// client has no such user. Disabling a disabled user changes nothing.
pub async fn disable_user(
    conn: &mut AnyConnection,
    client: ClientId,
    username: &str,
    at: i64,
) -> StoreResult<bool> {
    const FIND: &str = "SELECT id FROM panel_users WHERE client_id = $1 AND username = $2";
    const DISABLE: &str =
        "UPDATE panel_users SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL";
    const END_SESSIONS: &str = "DELETE FROM panel_sessions WHERE user_id = $1";
    let Some(row) = sqlx::query(FIND)
        .bind(client.0)
        .bind(username)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(false);
    };
    let id: i64 = row.try_get("id")?;
    sqlx::query(DISABLE)
        .bind(id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    sqlx::query(END_SESSIONS).bind(id).execute(conn).await?;
    Ok(true)
}

/// A live session with its user.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    pub role: String,
    pub client_id: ClientId,
    pub client_code: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

pub async fn insert_session(
    conn: &mut AnyConnection,
    token_hash: &str,
    user: i64,
    csrf_token: &str,
    at: i64,
    expires_at: i64,
) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO panel_sessions \
                       (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at) \
                       VALUES ($1, $2, $3, $4, $4, $5)";
    sqlx::query(SQL)
        .bind(token_hash)
        .bind(user)
        .bind(csrf_token)
        .bind(at)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// The session with this token hash, unless it expired before `now` or its user is
/// disabled.
pub async fn find_session<'e>(
    db: impl AnyExecutor<'e>,
    token_hash: &str,
    now: i64,
) -> StoreResult<Option<SessionRow>> {
    const SQL: &str = "SELECT s.id, s.user_id, u.username, u.role, u.client_id, c.code AS client_code, \
                       s.csrf_token, s.created_at, s.last_seen_at, s.expires_at \
                       FROM panel_sessions s JOIN panel_users u ON u.id = s.user_id \
                       JOIN clients c ON c.id = u.client_id \
                       WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL";
    let row = sqlx::query(SQL)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(db)
        .await?;
    row.as_ref()
        .map(|row| {
            Ok(SessionRow {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                username: row.try_get("username")?,
                role: row.try_get("role")?,
                client_id: ClientId(row.try_get("client_id")?),
                client_code: row.try_get("client_code")?,
                csrf_token: row.try_get("csrf_token")?,
                created_at: row.try_get("created_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
}

/// Moves a session's idle expiry forward; never past `expires_at` given.
pub async fn touch_session(
    conn: &mut AnyConnection,
    id: i64,
    at: i64,
    expires_at: i64,
) -> StoreResult<()> {
    const SQL: &str = "UPDATE panel_sessions SET last_seen_at = $2, expires_at = $3 WHERE id = $1";
    sqlx::query(SQL)
        .bind(id)
        .bind(at)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_session(conn: &mut AnyConnection, token_hash: &str) -> StoreResult<()> {
    const SQL: &str = "DELETE FROM panel_sessions WHERE token_hash = $1";
    sqlx::query(SQL).bind(token_hash).execute(conn).await?;
    Ok(())
}

/// Removes sessions that expired before `now`; answers how many.
pub async fn delete_expired_sessions(conn: &mut AnyConnection, now: i64) -> StoreResult<u64> {
    const SQL: &str = "DELETE FROM panel_sessions WHERE expires_at <= $1";
    Ok(sqlx::query(SQL)
        .bind(now)
        .execute(conn)
        .await?
        .rows_affected())
}

/// The latest `limit` ledger rows of one SKU (by code) of the client, newest first.
pub async fn recent_ledger<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    sku: &str,
    limit: i64,
) -> StoreResult<Vec<LedgerRow>> {
    const SQL: &str = "SELECT l.id, w.code AS warehouse, s.code AS sku, l.from_bucket, \
                       l.to_bucket, l.qty, l.kind, l.reference, l.note, l.actor, l.at \
                       FROM ledger l JOIN skus s ON s.id = l.sku_id \
                       JOIN warehouses w ON w.id = l.warehouse_id \
                       WHERE l.client_id = $1 AND s.client_id = $1 AND s.code = $2 \
                       ORDER BY l.id DESC LIMIT $3";
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(sku)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(ledger_from_row).collect()
}
