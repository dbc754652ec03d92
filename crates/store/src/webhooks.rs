//! Webhook subscribers and deliveries. Each subscriber keeps a cursor over the outbox; new
//! events become PENDING deliveries, delivered oldest first. A delivery is taken with a
//! guarded update that leases it (`next_attempt_at` moves into the future), so several
//! instances never send the same attempt twice.

use sqlx::{AnyConnection, AnyExecutor, Row};

use crate::{ClientId, StoreResult};

#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub id: i64,
    pub client_id: ClientId,
    pub code: String,
    pub url: String,
    pub secret: String,
    /// JSON list of event types; empty for every type.
    pub event_types: String,
    pub last_event_id: i64,
}

fn webhook_from_row(row: &sqlx::any::AnyRow) -> StoreResult<WebhookRow> {
    Ok(WebhookRow {
        id: row.try_get("id")?,
        client_id: ClientId(row.try_get("client_id")?),
        code: row.try_get("code")?,
        url: row.try_get("url")?,
        secret: row.try_get("secret")?,
        event_types: row.try_get("event_types")?,
        last_event_id: row.try_get("last_event_id")?,
    })
}

/// Creates or updates the client's subscriber `code`; a new one starts after the newest
/// event (it receives what happens from now on). True when it was created.
pub async fn upsert(
    conn: &mut AnyConnection,
    client: ClientId,
    code: &str,
    url: &str,
    secret: &str,
    event_types: &str,
    at: i64,
) -> StoreResult<bool> {
    const UPDATE: &str = "UPDATE webhooks SET url = $3, secret = $4, event_types = $5, updated_at = $6 \
                          WHERE client_id = $1 AND code = $2";
    const INSERT: &str = "INSERT INTO webhooks (client_id, code, url, secret, event_types, last_event_id, created_at, updated_at) \
                          VALUES ($1, $2, $3, $4, $5, (SELECT COALESCE(MAX(id), 0) FROM outbox WHERE client_id = $1), $6, $6)";
    let updated = sqlx::query(UPDATE)
        .bind(client.0)
        .bind(code)
        .bind(url)
        .bind(secret)
        .bind(event_types)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    if updated.rows_affected() == 1 {
        return Ok(false);
    }
    sqlx::query(INSERT)
        .bind(client.0)
        .bind(code)
        .bind(url)
        .bind(secret)
        .bind(event_types)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(true)
}

macro_rules! select_webhook {
    ($tail:literal) => {
        concat!(
            "SELECT id, client_id, code, url, secret, event_types, last_event_id FROM webhooks ",
            $tail
        )
    };
}

pub async fn find<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    code: &str,
) -> StoreResult<Option<WebhookRow>> {
    const SQL: &str = select_webhook!("WHERE client_id = $1 AND code = $2");
    let row = sqlx::query(SQL)
        .bind(client.0)
        .bind(code)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(webhook_from_row).transpose()
}

pub async fn list<'e>(db: impl AnyExecutor<'e>, client: ClientId) -> StoreResult<Vec<WebhookRow>> {
    const SQL: &str = select_webhook!("WHERE client_id = $1 ORDER BY code");
    let rows = sqlx::query(SQL).bind(client.0).fetch_all(db).await?;
    rows.iter().map(webhook_from_row).collect()
}

/// Every subscriber of every client: the relay's round.
pub async fn all<'e>(db: impl AnyExecutor<'e>) -> StoreResult<Vec<WebhookRow>> {
    const SQL: &str = select_webhook!("ORDER BY id");
    let rows = sqlx::query(SQL).fetch_all(db).await?;
    rows.iter().map(webhook_from_row).collect()
}

/// The subscriber's client's events after its cursor (at most `limit`): (id, type).
pub async fn new_events(
    conn: &mut AnyConnection,
    webhook: &WebhookRow,
    limit: i64,
) -> StoreResult<Vec<(i64, String)>> {
    const SQL: &str =
        "SELECT id, event_type FROM outbox WHERE client_id = $1 AND id > $2 ORDER BY id LIMIT $3";
    let rows = sqlx::query(SQL)
        .bind(webhook.client_id.0)
        .bind(webhook.last_event_id)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("event_type")?)))
        .collect()
}

/// Queues deliveries of `events` and moves the cursor to `cursor`, guarded on the cursor
/// it was read at; false when another instance moved it first (nothing is queued twice).
pub async fn enqueue(
    conn: &mut AnyConnection,
    webhook: &WebhookRow,
    events: &[i64],
    cursor: i64,
    at: i64,
) -> StoreResult<bool> {
    const MOVE: &str =
        "UPDATE webhooks SET last_event_id = $2 WHERE id = $1 AND last_event_id = $3";
    const QUEUE: &str = "INSERT INTO webhook_deliveries (client_id, webhook_id, event_id, status, attempts, next_attempt_at, updated_at) \
                         VALUES ($1, $2, $3, 'PENDING', 0, $4, $4) ON CONFLICT (webhook_id, event_id) DO NOTHING";
    let moved = sqlx::query(MOVE)
        .bind(webhook.id)
        .bind(cursor)
        .bind(webhook.last_event_id)
        .execute(&mut *conn)
        .await?;
    if moved.rows_affected() != 1 {
        return Ok(false);
    }
    for event in events {
        sqlx::query(QUEUE)
            .bind(webhook.client_id.0)
            .bind(webhook.id)
            .bind(*event)
            .bind(at)
            .execute(&mut *conn)
            .await?;
    }
    Ok(true)
}

/// A delivery to attempt, with its event.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub event_id: i64,
    pub event_type: String,
    pub data: String,
    pub at: i64,
    pub attempts: i64,
}

/// Leases the subscriber's oldest PENDING deliveries, up to `limit`, in event order: from
/// the head on, while each is due and not leased by another instance (deliveries go out in
/// event order, so a failing one holds back those after it). Empty when the head is not
/// due or another instance holds it. Run it in a transaction: one commit leases the batch.
pub async fn lease_batch(
    conn: &mut AnyConnection,
    webhook: i64,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> StoreResult<Vec<DueDelivery>> {
    const HEAD: &str = "SELECT d.id, d.event_id, o.event_type, o.data, o.at, d.attempts, d.next_attempt_at \
                        FROM webhook_deliveries d JOIN outbox o ON o.id = d.event_id \
                        WHERE d.webhook_id = $1 AND d.status = 'PENDING' ORDER BY d.event_id LIMIT $2";
    const LEASE: &str = "UPDATE webhook_deliveries SET next_attempt_at = $3 \
                         WHERE id = $1 AND status = 'PENDING' AND next_attempt_at = $2 AND next_attempt_at <= $4";
    let rows = sqlx::query(HEAD)
        .bind(webhook)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    let mut leased = Vec::with_capacity(rows.len());
    for row in rows {
        let next: i64 = row.try_get("next_attempt_at")?;
        if next > now {
            break;
        }
        let id: i64 = row.try_get("id")?;
        let taken = sqlx::query(LEASE)
            .bind(id)
            .bind(next)
            .bind(lease_until)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        if taken.rows_affected() != 1 {
            break;
        }
        leased.push(DueDelivery {
            id,
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("event_type")?,
            data: row.try_get("data")?,
            at: row.try_get("at")?,
            attempts: row.try_get("attempts")?,
        });
    }
    Ok(leased)
}

/// Gives back a lease not used (the delivery was not attempted): due again at `now`, unless
/// the lease ran out and another instance took it meanwhile.
pub async fn release_lease(
    conn: &mut AnyConnection,
    delivery: i64,
    lease_until: i64,
    now: i64,
) -> StoreResult<()> {
    const SQL: &str = "UPDATE webhook_deliveries SET next_attempt_at = $3 \
                       WHERE id = $1 AND status = 'PENDING' AND next_attempt_at = $2";
    sqlx::query(SQL)
        .bind(delivery)
        .bind(lease_until)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records an attempt's outcome: delivered, failed with a retry at `retry_at`, or dead.
pub async fn record_attempt(
    conn: &mut AnyConnection,
    delivery: i64,
    status: &str,
    error: Option<&str>,
    retry_at: i64,
    at: i64,
) -> StoreResult<()> {
    const SQL: &str = "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, last_error = $3, \
                       next_attempt_at = $4, updated_at = $5 WHERE id = $1";
    sqlx::query(SQL)
        .bind(delivery)
        .bind(status)
        .bind(error)
        .bind(retry_at)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: i64,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

/// The subscriber's deliveries with `status` (empty for any), newest first.
pub async fn deliveries<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    webhook: i64,
    status: &str,
    limit: i64,
) -> StoreResult<Vec<DeliveryRow>> {
    const SQL: &str = "SELECT d.id, d.event_id, o.event_type, d.status, d.attempts, d.last_error, d.updated_at \
                       FROM webhook_deliveries d JOIN outbox o ON o.id = d.event_id \
                       WHERE d.client_id = $1 AND d.webhook_id = $2 AND ($3 = '' OR d.status = $3) \
                       ORDER BY d.event_id DESC LIMIT $4";
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(webhook)
        .bind(status)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DeliveryRow {
                id: r.try_get("id")?,
                event_id: r.try_get("event_id")?,
                event_type: r.try_get("event_type")?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                last_error: r.try_get("last_error")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

/// Puts a DEAD delivery back in line, attempts reset; false when it is not dead.
pub async fn replay(
    conn: &mut AnyConnection,
    client: ClientId,
    webhook: i64,
    delivery: i64,
    at: i64,
) -> StoreResult<bool> {
    const SQL: &str = "UPDATE webhook_deliveries SET status = 'PENDING', attempts = 0, next_attempt_at = $4, updated_at = $4 \
                       WHERE client_id = $1 AND webhook_id = $2 AND id = $3 AND status = 'DEAD'";
    let done = sqlx::query(SQL)
        .bind(client.0)
        .bind(webhook)
        .bind(delivery)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
