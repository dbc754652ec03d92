//! Background work. The allocator retries open `AUTO` orders on a schedule and as soon as
//! stock arrives; on PostgreSQL every instance runs it, and an advisory lock per client
//! makes sure only one runs a client's pass at a time.

use std::sync::Arc;
use std::time::Duration;

use oms_store::Store;
use tokio::sync::Notify;

use crate::error::ApiResult;
use crate::service::allocate::{PassSummary, Scope};
use crate::service::orders::run_pass;

/// The actor the ledger records for the allocator's own passes.
pub const ALLOCATOR_ACTOR: &str = "allocator";

/// Wakes the allocator early: stock arrived, or was freed.
#[derive(Clone, Default)]
pub struct AllocatorWake(Arc<Notify>);

impl AllocatorWake {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// What one round of the allocator did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundOutcome {
    pub clients: u64,
    pub summary: PassSummary,
}

/// One round: a retry pass for every client with waiting orders.
pub async fn allocation_round(store: &Store) -> ApiResult<RoundOutcome> {
    let mut outcome = RoundOutcome::default();
    for client in oms_store::orders::clients_with_waiting_orders(store.pool()).await? {
        // One client's failing pass must not hold up every client after it.
        let summary = match run_pass(store, client, Scope::AutoRetry, ALLOCATOR_ACTOR).await {
            Ok(summary) => summary,
            Err(error) => {
                tracing::warn!(client = client.0, %error, "allocation pass failed; next round retries it");
                continue;
            }
        };
        outcome.clients += 1;
        outcome.summary.orders_seen += summary.orders_seen;
        outcome.summary.lines_allocated += summary.lines_allocated;
        outcome.summary.units_allocated += summary.units_allocated;
    }
    Ok(outcome)
}

/// Runs rounds every `interval`, and at once when woken, until the task is dropped.
pub fn spawn_allocator(
    store: Store,
    wake: AllocatorWake,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = wake.0.notified() => {}
            }
            match allocation_round(&store).await {
                Ok(outcome) if outcome.summary.units_allocated > 0 => {
                    tracing::info!(
                        clients = outcome.clients,
                        units = outcome.summary.units_allocated,
                        "allocator round"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "allocator round failed; retrying next round"),
            }
        }
    })
}

/// How the webhook relay retries.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Attempts before a delivery goes to the dead-letter state.
    pub attempts_max: i64,
    /// The first retry waits this long; each next one twice as long, up to 64 times it.
    pub backoff_base: Duration,
    /// How long one attempt owns a delivery (several instances never send it twice).
    pub lease: Duration,
    /// Deliveries one subscriber gets per round, and events queued per round.
    pub batch_max: i64,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            attempts_max: 8,
            backoff_base: Duration::from_secs(2),
            lease: Duration::from_secs(30),
            batch_max: 200,
        }
    }
}

/// What one relay round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayOutcome {
    pub delivered: u64,
    pub failed: u64,
    pub dead: u64,
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// The signature a receiver checks: `sha256=` and the hex HMAC-SHA256 of the body under
/// the subscriber's secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One round: queue each subscriber's new events, then lease a batch of its due deliveries
/// (one commit), send them in event order until one fails, and record the outcomes (one
/// commit). Leases not used because an earlier delivery failed, or because the lease is
/// nearly spent, are given back.
pub async fn relay_round(
    store: &Store,
    http: &reqwest::Client,
    settings: &RelaySettings,
) -> ApiResult<RelayOutcome> {
    let mut outcome = RelayOutcome::default();
    for webhook in oms_store::webhooks::all(store.pool()).await? {
        queue_new_events(store, &webhook, settings).await?;
        let now = crate::clock::now_micros();
        let lease_until = now + micros(settings.lease);
        let mut tx = store.begin_write().await?;
        let batch = oms_store::webhooks::lease_batch(
            tx.conn(),
            webhook.id,
            now,
            lease_until,
            settings.batch_max,
        )
        .await?;
        tx.commit().await?;
        // Stop sending with a tenth of the lease left: past it another instance may send.
        let send_until = lease_until - micros(settings.lease) / 10;
        let mut results: Vec<(&oms_store::webhooks::DueDelivery, Option<String>)> = Vec::new();
        for delivery in &batch {
            if crate::clock::now_micros() >= send_until {
                break;
            }
            let error = send(http, &webhook, delivery).await;
            let failed = error.is_some();
            results.push((delivery, error));
            if failed {
                // Later events wait behind this one, so the subscriber sees them in order.
                break;
            }
        }
        let at = crate::clock::now_micros();
        let mut tx = store.begin_write().await?;
        for (delivery, error) in &results {
            match error {
                None => {
                    oms_store::webhooks::record_attempt(
                        tx.conn(),
                        delivery.id,
                        "DELIVERED",
                        None,
                        at,
                        at,
                    )
                    .await?;
                    outcome.delivered += 1;
                }
                Some(reason) => {
                    let attempts = delivery.attempts + 1;
                    let dead = attempts >= settings.attempts_max;
                    let backoff = micros(settings.backoff_base) * (1_i64 << attempts.min(6));
                    let status = if dead { "DEAD" } else { "PENDING" };
                    oms_store::webhooks::record_attempt(
                        tx.conn(),
                        delivery.id,
                        status,
                        Some(reason),
                        at + backoff,
                        at,
                    )
                    .await?;
                    if dead {
                        outcome.dead += 1;
                    } else {
                        outcome.failed += 1;
                    }
                }
            }
        }
        for delivery in &batch[results.len()..] {
            oms_store::webhooks::release_lease(tx.conn(), delivery.id, lease_until, at).await?;
        }
        tx.commit().await?;
    }
    Ok(outcome)
}

/// POSTs one delivery, signed; the reason when it was not accepted.
async fn send(
    http: &reqwest::Client,
    webhook: &oms_store::webhooks::WebhookRow,
    delivery: &oms_store::webhooks::DueDelivery,
) -> Option<String> {
    let body = serde_json::json!({
        "id": delivery.event_id,
        "type": delivery.event_type,
        "at": crate::clock::rfc3339(delivery.at),
        "data": serde_json::from_str::<serde_json::Value>(&delivery.data).unwrap_or_default(),
    })
    .to_string();
    let sent = http
        .post(&webhook.url)
        .header("Content-Type", "application/json")
        .header("X-OMS-Event-Id", delivery.event_id.to_string())
        .header("X-OMS-Event-Type", delivery.event_type.as_str())
        .header(
            "X-OMS-Signature",
            signature(&webhook.secret, body.as_bytes()),
        )
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => None,
        Ok(response) => Some(format!("answered {}", response.status())),
        Err(e) => Some(format!("not reached: {e}")),
    }
}

async fn queue_new_events(
    store: &Store,
    webhook: &oms_store::webhooks::WebhookRow,
    settings: &RelaySettings,
) -> ApiResult<()> {
    let wanted: Vec<String> = serde_json::from_str(&webhook.event_types).unwrap_or_default();
    let mut tx = store.begin_write().await?;
    let events = oms_store::webhooks::new_events(tx.conn(), webhook, settings.batch_max).await?;
    let Some((last, _)) = events.last() else {
        return Ok(());
    };
    let ids: Vec<i64> = events
        .iter()
        .filter(|(_, event_type)| wanted.is_empty() || wanted.contains(event_type))
        .map(|(id, _)| *id)
        .collect();
    if oms_store::webhooks::enqueue(tx.conn(), webhook, &ids, *last, crate::clock::now_micros())
        .await?
    {
        tx.commit().await?;
    }
    Ok(())
}

/// Runs relay rounds every `interval` until the task is dropped.
pub fn spawn_relay(
    store: Store,
    settings: RelaySettings,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
        {
            Ok(http) => http,
            Err(error) => {
                tracing::error!(%error, "webhook relay cannot start");
                return;
            }
        };
        // A round that delivered a full batch leaves more waiting: the next starts at once,
        // so the relay keeps up with events arriving faster than a batch per interval.
        let full = u64::try_from(settings.batch_max).unwrap_or(u64::MAX);
        let mut backlog = false;
        loop {
            if !backlog {
                tokio::time::sleep(interval).await;
            }
            backlog = match relay_round(&store, &http, &settings).await {
                Ok(outcome) => outcome.delivered >= full,
                Err(error) => {
                    tracing::warn!(%error, "webhook relay round failed; retrying next round");
                    false
                }
            };
        }
    })
}
