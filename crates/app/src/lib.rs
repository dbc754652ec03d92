//! Services and edges of the OMS: the HTTP API, uploads, and the operations endpoints.

pub mod api;
pub mod auth;
pub mod check;
pub mod clock;
pub mod error;
pub mod extract;
pub mod fields;
pub mod panel;
pub mod service;
pub mod telemetry;
pub mod upload;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use oms_store::{Backend, Store};

/// Limits on what one request may ask of the server.
#[derive(Debug, Clone)]
pub struct Limits {
    pub json_body_bytes_max: usize,
    pub upload_bytes_max: usize,
    pub upload_rows_max: usize,
    pub request_timeout: Duration,
    /// How often the allocator retries waiting orders when nothing wakes it sooner.
    pub allocation_interval: Duration,
    /// How often the webhook relay looks for events to push.
    pub relay_interval: Duration,
    pub relay: workers::RelaySettings,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            json_body_bytes_max: 2 * 1024 * 1024,
            upload_bytes_max: 128 * 1024 * 1024,
            upload_rows_max: 1_000_000,
            request_timeout: Duration::from_secs(60),
            allocation_interval: Duration::from_secs(30),
            relay_interval: Duration::from_secs(1),
            relay: workers::RelaySettings::default(),
        }
    }
}

/// Order batches committing at once on PostgreSQL (SQLite has one writer: one batch). Two
/// overlap one batch's commit with the next one's work; a third split the queue into
/// smaller batches that wait on each other's hot stock rows (`oms bench ingest`, Zipf).
const INTAKE_WORKERS_POSTGRES: usize = 2;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// SHA-256 of the operator token; `None` leaves the operator routes closed.
    pub admin_token_hash: Option<String>,
    pub limits: Arc<Limits>,
    /// Wakes the allocator when stock arrives or is freed.
    pub allocator: workers::AllocatorWake,
    /// Failed panel logins, per username and per address (this instance only).
    pub logins: Arc<panel::session::LoginLimiter>,
    /// API keys recently found valid (this instance only).
    pub keys_seen: Arc<auth::KeysSeen>,
    /// Group commit for `POST /orders`.
    pub intake: service::intake::OrderIntake,
}

impl AppState {
    pub fn new(store: Store, admin_token: Option<&str>, limits: Limits) -> Self {
        let intake_workers = match store.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => INTAKE_WORKERS_POSTGRES,
        };
        let intake = service::intake::OrderIntake::new(store.clone(), intake_workers);
        AppState {
            store,
            admin_token_hash: admin_token.map(auth::token_hash),
            limits: Arc::new(limits),
            allocator: workers::AllocatorWake::default(),
            logins: Arc::default(),
            keys_seen: Arc::default(),
            intake,
        }
    }
}

/// Serves the OMS on `listener`, with its background workers, until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let allocator = workers::spawn_allocator(
        state.store.clone(),
        state.allocator.clone(),
        state.limits.allocation_interval,
    );
    let relay = workers::spawn_relay(
        state.store.clone(),
        state.limits.relay.clone(),
        state.limits.relay_interval,
    );
    let served = serve_without_workers(listener, state, shutdown).await;
    allocator.abort();
    relay.abort();
    served
}

/// Serves the API and the panel only: no allocator, no relay. Allocation then happens
/// only when a request asks for it (order creation, `…/allocate`, `/allocation/run`) or
/// when the caller runs `workers::allocation_round` itself — what a test that must know
/// when stock moves needs.
pub async fn serve_without_workers(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = api::router(state);
    // The peer address keys the panel's per-address login limit.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
