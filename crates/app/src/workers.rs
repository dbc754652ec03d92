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
