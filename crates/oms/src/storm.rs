//! `oms storm`: mixed load from many clients against several real `oms serve` processes on
//! one database, with `kill -9` of a serving process and immediate PostgreSQL restarts
//! in the middle of it, then proof that nothing was oversold, lost or duplicated:
//!
//! - no bucket is negative (no unit allocated or shipped that the pool did not hold);
//! - every order acknowledged with a 2xx exists, exactly once per channel and order code;
//! - after the allocator's own retry rounds no order line waits while a warehouse of the
//!   client holds available stock of its SKU in a pool its channel may draw from;
//! - every event `GET /api/v1/events` lists reached the webhook subscriber;
//! - `oms check` (the ledger replays to the balances, allocated = live allocations, …);
//! - no 5xx answer, except 503 with the JSON error shape while a fault is in progress
//!   (a process being killed or the database restarting, and a few seconds after).
//!
//! Clients retry connection errors and those 503s with the same body (and so the same
//! order codes). One JSON object on stdout; each violation on stderr; exit 1 on any.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use oms_store::{Backend, Store, StoreOptions};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;

use crate::bench::Lcg;
use crate::harness::{Cluster, ServeOptions, Server, free_port, start_server};
use crate::ingest_bench::{Skew, pick_sku, zipf_cdf};

pub struct StormArgs {
    pub backend: Backend,
    pub database_url: Option<String>,
    pub processes: usize,
    pub concurrency: u64,
    pub seconds: Option<f64>,
    pub operations: Option<u64>,
    pub seed: u64,
    pub skus: u64,
    pub warehouses: u64,
    pub kill_every: Option<f64>,
    pub pg_restarts: u32,
    pub server_log: Option<PathBuf>,
}

const ADMIN: &str = "oms_storm_operator";
const SECRET: &str = "storm-webhook-secret";
/// Units of every SKU at every warehouse before the load: scarce, so hot SKUs run out.
const INITIAL_STOCK: i64 = 10;
/// A 5xx this long after a fault ended still counts as inside its window.
const FAULT_GRACE: Duration = Duration::from_secs(3);
/// How long a client keeps retrying one request through faults.
const RETRY_FOR: Duration = Duration::from_secs(120);
/// Seconds between the servers' allocator rounds.
const ALLOCATION_INTERVAL_SECS: &str = "2";

/// When faults were in progress: (start, end once recovered).
#[derive(Default)]
struct Faults(Mutex<Vec<(Instant, Option<Instant>)>>);

impl Faults {
    fn begin(&self) -> usize {
        let mut windows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        windows.push((Instant::now(), None));
        windows.len() - 1
    }

    fn end(&self, window: usize) {
        let mut windows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        windows[window].1 = Some(Instant::now());
    }

    /// Whether a request sent at `sent` and answered at `answered` overlapped a fault.
    fn overlaps(&self, sent: Instant, answered: Instant) -> bool {
        let windows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        windows
            .iter()
            .any(|(start, end)| *start <= answered && end.is_none_or(|e| e + FAULT_GRACE >= sent))
    }
}

#[derive(Default)]
struct Stats {
    operations: AtomicU64,
    requests: AtomicU64,
    answered_2xx: AtomicU64,
    answered_4xx: AtomicU64,
    connection_errors: AtomicU64,
    fault_window_503: AtomicU64,
    fault_window_other_5xx: AtomicU64,
    server_errors: AtomicU64,
    gave_up: AtomicU64,
    orders_sent: AtomicU64,
    cancels: AtomicU64,
    wms_updates: AtomicU64,
    inward_receipts: AtomicU64,
    pool_moves: AtomicU64,
    kills: AtomicU64,
    pg_restarts: AtomicU64,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

struct AckedOrder {
    code: String,
    channel: &'static str,
    lines: Vec<String>,
}

/// What the load's clients share.
struct Shared {
    http: reqwest::Client,
    bases: Vec<String>,
    token: String,
    seed: u64,
    skus: u64,
    warehouses: u64,
    cdf: Vec<f64>,
    deadline: Instant,
    operations: Option<u64>,
    next_op: AtomicU64,
    faults: Faults,
    stats: Stats,
    violations: Mutex<Vec<String>>,
    acked: Mutex<Vec<AckedOrder>>,
    /// Released shipments seen in the event feed, with the WMS steps done so far.
    shipments: Mutex<Vec<(i64, u8)>>,
    events_cursor: tokio::sync::Mutex<i64>,
}

enum Answer {
    /// Status, body, and whether an earlier attempt of this request may have been applied.
    Status(u16, Value, bool),
    GaveUp,
}

impl Shared {
    fn violation(&self, text: String) {
        eprintln!("VIOLATION {text}");
        self.violations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(text);
    }

    /// Sends one request to a random process, retrying connection errors and 503s during
    /// faults with the same body.
    async fn call(
        &self,
        rng: &mut Lcg,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        let started = Instant::now();
        let mut retried = false;
        loop {
            let base = &self.bases[rng.below(self.bases.len() as u64) as usize];
            let mut request = self
                .http
                .request(method.clone(), format!("{base}{path}"))
                .bearer_auth(&self.token);
            if let Some(body) = body {
                request = request.json(body);
            }
            add(&self.stats.requests);
            let sent = Instant::now();
            let result = async {
                let response = request.send().await?;
                let status = response.status().as_u16();
                Ok::<_, reqwest::Error>((status, response.text().await?))
            }
            .await;
            match result {
                Err(_) => add(&self.stats.connection_errors),
                Ok((status, text)) => {
                    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if status < 500 {
                        if status < 300 {
                            add(&self.stats.answered_2xx);
                        } else {
                            add(&self.stats.answered_4xx);
                        }
                        return Answer::Status(status, value, retried);
                    }
                    let in_fault = self.faults.overlaps(sent, Instant::now());
                    let shaped = value["error"]["code"].is_string();
                    if status == 503 && shaped && in_fault {
                        add(&self.stats.fault_window_503);
                    } else {
                        let when = if in_fault {
                            add(&self.stats.fault_window_other_5xx);
                            "inside a fault window"
                        } else {
                            add(&self.stats.server_errors);
                            "outside any fault window"
                        };
                        self.violation(format!("{method} {path} answered {status} {when}: {text}"));
                        return Answer::Status(status, value, retried);
                    }
                }
            }
            retried = true;
            if started.elapsed() > RETRY_FOR {
                add(&self.stats.gave_up);
                return Answer::GaveUp;
            }
            tokio::time::sleep(Duration::from_millis(50 + rng.below(200))).await;
        }
    }

    fn sku(&self, rng: &mut Lcg) -> String {
        format!("SKU-{:04}", pick_sku(rng, self.skus, Skew::Zipf, &self.cdf))
    }

    /// 1 to `max` distinct Zipf-hot SKUs.
    fn distinct_skus(&self, rng: &mut Lcg, max: u64) -> Vec<String> {
        let mut skus: Vec<String> = Vec::new();
        for _ in 0..1 + rng.below(max) {
            let sku = self.sku(rng);
            if !skus.contains(&sku) {
                skus.push(sku);
            }
        }
        skus
    }

    fn warehouse(&self, rng: &mut Lcg) -> String {
        format!("STORM-W{}", rng.below(self.warehouses))
    }
}

/// A 3PL client's order: 1–3 lines of Zipf-hot SKUs, split across warehouses as needed.
async fn place_order(shared: &Shared, rng: &mut Lcg, n: u64) {
    add(&shared.stats.orders_sent);
    let code = format!("S{}-{n}", shared.seed);
    let channel = if rng.below(10) < 3 { "MKT" } else { "WEB" };
    let skus = shared.distinct_skus(rng, 3);
    let lines: Vec<Value> = skus
        .iter()
        .enumerate()
        .map(|(i, sku)| json!({"line_id": format!("L{i}"), "sku": sku, "qty": 1 + rng.below(2), "price": 499}))
        .collect();
    let body = json!({
        "order_code": code, "kind": "B2C", "channel": channel,
        "fulfilment_type": "MULTI_SHIPMENT_PARTIAL", "retry": "AUTO",
        "ship_to": {"name": "Storm Customer", "address": "1 Storm Street", "pincode": "560001",
                    "lat": 10.0 + rng.below(20) as f64, "lon": 70.0 + rng.below(20) as f64},
        "lines": lines,
    });
    match shared
        .call(rng, Method::POST, "/api/v1/orders", Some(&body))
        .await
    {
        Answer::Status(200 | 201, _, _) => {
            shared
                .acked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(AckedOrder {
                    code,
                    channel,
                    lines: (0..skus.len()).map(|i| format!("L{i}")).collect(),
                });
        }
        Answer::Status(status, value, retried) if status < 500 => shared.violation(format!(
            "order {code} (sent again: {retried}) answered {status}: {value}"
        )),
        _ => {}
    }
}

/// A seller cancellation: a whole order, or one unit of one line.
async fn cancel(shared: &Shared, rng: &mut Lcg) {
    let target = {
        let acked = shared.acked.lock().unwrap_or_else(|e| e.into_inner());
        if acked.is_empty() {
            return;
        }
        let order = &acked[rng.below(acked.len() as u64) as usize];
        let line = order.lines[rng.below(order.lines.len() as u64) as usize].clone();
        (order.code.clone(), order.channel, line)
    };
    add(&shared.stats.cancels);
    let (code, channel, line) = target;
    let body = if rng.below(2) == 0 {
        json!({"reason": "storm: whole order"})
    } else {
        json!({"reason": "storm: one unit", "lines": [{"line_id": line, "qty": 1}]})
    };
    let path = format!("/api/v1/orders/{code}/cancel?channel={channel}");
    if let Answer::Status(404, value, _) = shared.call(rng, Method::POST, &path, Some(&body)).await
    {
        shared.violation(format!(
            "acknowledged order {code} answered 404 to a cancel: {value}"
        ));
    }
}

/// The WMS: learns released shipments from the event feed and moves one a step forward.
async fn wms_step(shared: &Shared, rng: &mut Lcg) {
    if rng.below(4) == 0
        || shared
            .shipments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    {
        pull_events(shared, rng).await;
    }
    let picked = {
        let shipments = shared.shipments.lock().unwrap_or_else(|e| e.into_inner());
        if shipments.is_empty() {
            return;
        }
        shipments[rng.below(shipments.len() as u64) as usize]
    };
    add(&shared.stats.wms_updates);
    let (id, step) = picked;
    let body = match step {
        0 => json!({"status": "PICKED"}),
        1 => json!({"status": "PACKED"}),
        _ => json!({"status": "SHIPPED", "awb": format!("AWB{id}"), "carrier": "STORMEX"}),
    };
    let path = format!("/api/v1/shipments/{id}/status");
    let answer = shared.call(rng, Method::POST, &path, Some(&body)).await;
    let mut shipments = shared.shipments.lock().unwrap_or_else(|e| e.into_inner());
    let Some(at) = shipments.iter().position(|(s, _)| *s == id) else {
        return;
    };
    match answer {
        Answer::Status(200, _, _) if step < 2 => shipments[at].1 = step + 1,
        // Shipped, or cancelled under us (409): nothing more to do with it.
        Answer::Status(200 | 409, _, _) => {
            shipments.swap_remove(at);
        }
        Answer::Status(404, value, _) => {
            drop(shipments);
            shared.violation(format!("released shipment {id} answered 404: {value}"));
        }
        _ => {}
    }
}

async fn pull_events(shared: &Shared, rng: &mut Lcg) {
    // One puller at a time; the others go on with what is known.
    let Ok(mut cursor) = shared.events_cursor.try_lock() else {
        return;
    };
    let path = format!("/api/v1/events?after={}&limit=500", *cursor);
    let Answer::Status(200, page, _) = shared.call(rng, Method::GET, &path, None).await else {
        return;
    };
    let mut shipments = shared.shipments.lock().unwrap_or_else(|e| e.into_inner());
    for event in page["items"].as_array().into_iter().flatten() {
        *cursor = (*cursor).max(event["id"].as_i64().unwrap_or(0));
        if event["type"] == "shipment.released"
            && let Some(id) = event["data"]["shipment_id"].as_i64()
        {
            shipments.push((id, 0));
        }
    }
}

/// Goods in: an inward order, its GRN, and QC passing all of it.
async fn receive_goods(shared: &Shared, rng: &mut Lcg, n: u64) {
    add(&shared.stats.inward_receipts);
    let code = format!("PO-S{}-{n}", shared.seed);
    let lines: Vec<(String, u64)> = shared
        .distinct_skus(rng, 3)
        .into_iter()
        .map(|sku| (sku, 5 + rng.below(16)))
        .collect();
    let order = json!({
        "order_code": code, "type": "PO", "warehouse": shared.warehouse(rng),
        "lines": lines.iter().map(|(sku, qty)| json!({"sku": sku, "qty": qty})).collect::<Vec<_>>(),
    });
    let grn = json!({"lines": lines.iter().map(|(sku, qty)| json!({"sku": sku, "qty": qty})).collect::<Vec<_>>()});
    let qc = json!({"lines": lines.iter().map(|(sku, qty)| json!({"sku": sku, "pass": qty})).collect::<Vec<_>>()});
    // Sent again after a lost answer, each step may find itself done: 409 (the order
    // exists) or 422 (the units were received or checked already).
    let steps = [
        (Method::POST, "/api/v1/inward-orders".to_owned(), order, 409),
        (
            Method::POST,
            format!("/api/v1/inward-orders/{code}/grn"),
            grn,
            422,
        ),
        (
            Method::POST,
            format!("/api/v1/inward-orders/{code}/qc"),
            qc,
            422,
        ),
    ];
    for (method, path, body, done_already) in steps {
        match shared.call(rng, method, &path, Some(&body)).await {
            Answer::Status(200 | 201, _, _) => {}
            Answer::Status(status, _, true) if status == done_already => {}
            Answer::Status(status, value, _) => {
                if status < 500 {
                    shared.violation(format!("inward {path} answered {status}: {value}"));
                }
                return;
            }
            Answer::GaveUp => return,
        }
    }
}

/// Available units of a hot SKU from COMMON to the marketplace's pool (409 when none).
async fn move_to_pool(shared: &Shared, rng: &mut Lcg) {
    add(&shared.stats.pool_moves);
    let body = json!({"warehouse": shared.warehouse(rng), "sku": shared.sku(rng),
                      "from_pool": "COMMON", "to_pool": "MKT", "qty": 1 + rng.below(3)});
    shared
        .call(rng, Method::POST, "/api/v1/pool-movements", Some(&body))
        .await;
}

async fn client_task(shared: Arc<Shared>, worker: u64) {
    let mut rng = Lcg(shared
        .seed
        .wrapping_mul(7919)
        .wrapping_add(worker * 104_729 + 1));
    loop {
        let n = shared.next_op.fetch_add(1, Ordering::Relaxed);
        if shared.operations.is_some_and(|limit| n >= limit) || Instant::now() >= shared.deadline {
            return;
        }
        match rng.below(100) {
            0..55 => place_order(&shared, &mut rng, n).await,
            55..67 => cancel(&shared, &mut rng).await,
            67..85 => wms_step(&shared, &mut rng).await,
            85..95 => receive_goods(&shared, &mut rng, n).await,
            _ => move_to_pool(&shared, &mut rng).await,
        }
        add(&shared.stats.operations);
    }
}

/// The serving processes, each on its own port for the whole run.
struct Fleet {
    url: String,
    ports: Vec<u16>,
    servers: tokio::sync::Mutex<Vec<Option<Server>>>,
    log: PathBuf,
}

impl Fleet {
    async fn start_one(&self, index: usize) -> anyhow::Result<Server> {
        start_server(&ServeOptions {
            url: &self.url,
            port: self.ports[index],
            admin_token: ADMIN,
            extra_args: &["--allocation-interval-secs", ALLOCATION_INTERVAL_SECS],
            log: Some(&self.log),
        })
        .await
    }

    /// Starts process `index` again, retrying while it cannot start (its database is
    /// restarting).
    async fn restart(&self, index: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            match self.start_one(index).await {
                Ok(server) => {
                    self.servers.lock().await[index] = Some(server);
                    return Ok(());
                }
                Err(error) if started.elapsed() < RETRY_FOR => {
                    tracing::debug!(%error, "oms serve did not start; trying again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Processes that exited without being killed by the storm.
    async fn unexpected_exits(&self) -> Vec<usize> {
        let mut servers = self.servers.lock().await;
        let mut exited = Vec::new();
        for (index, server) in servers.iter_mut().enumerate() {
            if server.as_mut().is_some_and(Server::exited) {
                exited.push(index);
            }
        }
        exited
    }

    async fn stop(&self) {
        let mut servers = self.servers.lock().await;
        for server in servers.iter_mut() {
            if let Some(server) = server.take() {
                server.stop().await;
            }
        }
    }
}

/// Sleeps `duration`, or less when the load finished; false when it did.
async fn sleep_unless_done(duration: Duration, done: &AtomicBool) -> bool {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        if done.load(Ordering::Relaxed) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    !done.load(Ordering::Relaxed)
}

async fn kill_loop(
    shared: Arc<Shared>,
    fleet: Arc<Fleet>,
    every: Duration,
    done: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let mut rng = Lcg(shared.seed ^ 0x6b69_6c6c);
    while sleep_unless_done(every, &done).await {
        let index = rng.below(fleet.ports.len() as u64) as usize;
        for exited in fleet.unexpected_exits().await {
            shared.violation(format!("process {exited} exited without being killed"));
        }
        let window = shared.faults.begin();
        let server = fleet.servers.lock().await[index].take();
        if let Some(server) = server {
            server.stop().await;
            add(&shared.stats.kills);
        }
        fleet.restart(index).await?;
        shared.faults.end(window);
    }
    Ok(())
}

async fn pg_restart_loop(
    shared: Arc<Shared>,
    fleet: Arc<Fleet>,
    cluster: Arc<Cluster>,
    restarts: u32,
    every: Duration,
    done: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    for _ in 0..restarts {
        if !sleep_unless_done(every, &done).await {
            break;
        }
        let window = shared.faults.begin();
        let stopping = cluster.clone();
        tokio::task::spawn_blocking(move || stopping.stop_immediately()).await??;
        add(&shared.stats.pg_restarts);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let starting = cluster.clone();
        tokio::task::spawn_blocking(move || starting.start_again()).await??;
        // Recovered when every process answers /healthz again (the database answers).
        let started = Instant::now();
        for base in &shared.bases {
            while started.elapsed() < RETRY_FOR
                && !shared
                    .http
                    .get(format!("{base}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        shared.faults.end(window);
    }
    let _ = fleet;
    Ok(())
}

/// A webhook subscriber on loopback: every event id it was sent, and bad signatures.
#[derive(Default)]
struct Receiver {
    ids: Mutex<HashSet<i64>>,
    deliveries: AtomicU64,
    unsigned: AtomicU64,
}

async fn receive(
    axum::extract::State(receiver): axum::extract::State<Arc<Receiver>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let signed = headers.get("x-oms-signature").and_then(|v| v.to_str().ok())
        == Some(oms_app::workers::signature(SECRET, &body).as_str());
    if !signed {
        add(&receiver.unsigned);
    }
    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(id) = event["id"].as_i64() {
        receiver
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id);
    }
    add(&receiver.deliveries);
    axum::http::StatusCode::OK
}

async fn start_receiver() -> anyhow::Result<(String, Arc<Receiver>)> {
    let receiver = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, receiver))
}

/// A setup request that must succeed.
async fn setup(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: &Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut request = http
        .request(method.clone(), format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(
        status.is_success(),
        "setup {method} {path}: {status} {text}"
    );
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Client `code`: warehouses, channels WEB and MKT (with pool MKT), SKUs, the webhook,
/// stock in every warehouse. Returns its key and the webhook's first event cursor.
async fn seed(
    base: &str,
    code: &str,
    args: &StormArgs,
    hook_url: &str,
) -> anyhow::Result<(String, i64)> {
    let http = reqwest::Client::new();
    let (put, post) = (Method::PUT, Method::POST);
    let client = json!({"code": code, "name": "Storm Brand"});
    setup(&http, base, ADMIN, &post, "/api/v1/clients", Some(client)).await?;
    let key = json!({"role": "client_admin", "name": "storm"});
    let keys = format!("/api/v1/clients/{code}/api-keys");
    let key = setup(&http, base, ADMIN, &post, &keys, Some(key)).await?;
    let token = key["token"].as_str().context("api key token")?.to_owned();
    let mut steps: Vec<(&str, &Method, String, Option<Value>)> = Vec::new();
    for w in 0..args.warehouses {
        let body = json!({"name": format!("Storm {w}"), "type": "WAREHOUSE",
                          "pincode": format!("{}", 110_001 + w * 100_000),
                          "lat": 12.0 + w as f64 * 3.0, "lon": 72.0 + w as f64 * 2.0, "priority": w});
        steps.push((
            ADMIN,
            &put,
            format!("/api/v1/warehouses/STORM-W{w}"),
            Some(body),
        ));
        let mapping = format!("/api/v1/clients/{code}/warehouses/STORM-W{w}");
        steps.push((ADMIN, &put, mapping, None));
    }
    let routing = json!({"strategy": "MINIMIZE_SHIPMENTS", "max_splits": args.warehouses});
    steps.extend([
        (
            &*token,
            &put,
            "/api/v1/settings".to_owned(),
            Some(json!({"routing": routing})),
        ),
        (
            &*token,
            &put,
            "/api/v1/channels/WEB".to_owned(),
            Some(json!({"name": "Web", "type": "WEBSITE"})),
        ),
        (
            &*token,
            &put,
            "/api/v1/channels/MKT".to_owned(),
            Some(json!({"name": "Market", "type": "MARKETPLACE"})),
        ),
        (
            &*token,
            &put,
            "/api/v1/pools/MKT".to_owned(),
            Some(json!({"name": "Market", "channels": ["MKT"]})),
        ),
    ]);
    for (token, method, path, body) in steps {
        setup(&http, base, token, method, &path, body).await?;
    }
    let hook = json!({"url": hook_url, "secret": SECRET, "event_types": []});
    let hook = setup(
        &http,
        base,
        &token,
        &put,
        "/api/v1/webhooks/storm",
        Some(hook),
    )
    .await?;
    let first_event = hook["last_event_id"].as_i64().unwrap_or(0);
    let mut csv = String::from("code,name,mrp\n");
    for i in 0..args.skus {
        csv.push_str(&format!("SKU-{i:04},Storm product {i},999\n"));
    }
    let response = http
        .post(format!("{base}/api/v1/uploads/skus"))
        .bearer_auth(&token)
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "SKU upload: {}",
        response.text().await?
    );
    let lines = |field: &str| -> Value {
        let lines: Vec<Value> = (0..args.skus)
            .map(|i| json!({"sku": format!("SKU-{i:04}"), field: INITIAL_STOCK}))
            .collect();
        json!({ "lines": lines })
    };
    for w in 0..args.warehouses {
        let order = format!("PO-SEED-{code}-W{w}");
        let mut inward = lines("qty");
        inward["order_code"] = json!(order);
        inward["type"] = json!("PO");
        inward["warehouse"] = json!(format!("STORM-W{w}"));
        let grn = format!("/api/v1/inward-orders/{order}/grn");
        let qc = format!("/api/v1/inward-orders/{order}/qc");
        setup(
            &http,
            base,
            &token,
            &post,
            "/api/v1/inward-orders",
            Some(inward),
        )
        .await?;
        setup(&http, base, &token, &post, &grn, Some(lines("qty"))).await?;
        setup(&http, base, &token, &post, &qc, Some(lines("pass"))).await?;
    }
    Ok((token, first_event))
}

/// Open order lines that an eligible warehouse could serve now: (order, sku, open).
async fn serviceable_waiting_lines(
    store: &Store,
    client: &str,
) -> anyhow::Result<Vec<(String, i64, i64)>> {
    let mut tx = store.begin_snapshot().await?;
    let conn = tx.conn();
    let client_id: i64 = sqlx::query("SELECT id FROM clients WHERE code = $1")
        .bind(client)
        .fetch_one(&mut *conn)
        .await?
        .try_get("id")?;
    // Pool code → channels that may draw from it; COMMON serves every channel.
    let mut pools: HashMap<String, Vec<String>> = HashMap::new();
    for row in sqlx::query("SELECT code, channels FROM pools WHERE client_id = $1")
        .bind(client_id)
        .fetch_all(&mut *conn)
        .await?
    {
        let channels: Vec<String> =
            serde_json::from_str(&row.try_get::<String, _>("channels")?).unwrap_or_default();
        pools.insert(row.try_get("code")?, channels);
    }
    // SKU → channels that some mapped warehouse could serve now.
    let mut servable: HashMap<i64, HashSet<String>> = HashMap::new();
    let mut common: HashSet<i64> = HashSet::new();
    let stock = "SELECT s.sku_id, s.bucket FROM stock s JOIN client_warehouses cw \
                 ON cw.client_id = s.client_id AND cw.warehouse_id = s.warehouse_id \
                 WHERE s.client_id = $1 AND s.bucket LIKE 'AVAILABLE:%' AND s.qty > 0";
    for row in sqlx::query(stock)
        .bind(client_id)
        .fetch_all(&mut *conn)
        .await?
    {
        let sku: i64 = row.try_get("sku_id")?;
        let bucket: String = row.try_get("bucket")?;
        match bucket.strip_prefix("AVAILABLE:") {
            Some("COMMON") => {
                common.insert(sku);
            }
            Some(pool) => servable
                .entry(sku)
                .or_default()
                .extend(pools.get(pool).cloned().unwrap_or_default()),
            None => {}
        }
    }
    let lines = "SELECT o.order_code, c.code AS channel, l.sku_id, l.ordered, l.allocated, l.shipped, l.cancelled \
                 FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN channels c ON c.id = o.channel_id \
                 WHERE o.client_id = $1 AND l.ordered > l.allocated + l.shipped + l.cancelled";
    let mut waiting = Vec::new();
    for row in sqlx::query(lines)
        .bind(client_id)
        .fetch_all(&mut *conn)
        .await?
    {
        let sku: i64 = row.try_get("sku_id")?;
        let channel: String = row.try_get("channel")?;
        let open = row.try_get::<i64, _>("ordered")?
            - row.try_get::<i64, _>("allocated")?
            - row.try_get::<i64, _>("shipped")?
            - row.try_get::<i64, _>("cancelled")?;
        if common.contains(&sku) || servable.get(&sku).is_some_and(|c| c.contains(&channel)) {
            waiting.push((row.try_get("order_code")?, sku, open));
        }
    }
    Ok(waiting)
}

/// (channel, order code) → rows, for the client's orders.
async fn stored_orders(
    store: &Store,
    client: &str,
) -> anyhow::Result<HashMap<(String, String), u64>> {
    let sql = "SELECT c.code AS channel, o.order_code FROM orders o JOIN channels c ON c.id = o.channel_id \
               JOIN clients k ON k.id = o.client_id WHERE k.code = $1";
    let mut rows = HashMap::new();
    for row in sqlx::query(sql)
        .bind(client)
        .fetch_all(store.pool())
        .await?
    {
        *rows
            .entry((row.try_get("channel")?, row.try_get("order_code")?))
            .or_insert(0) += 1;
    }
    Ok(rows)
}

/// Units the orders hold or have shipped that the stock does not account for, per SKU:
/// each order line's allocated and shipped units against the stock's allocated and shipped
/// buckets (nothing takes units out of `SHIPPED`; bad stock returned without an order only
/// adds to it). Independent of `oms check`, which compares allocations key by key.
async fn oversold_units(store: &Store) -> anyhow::Result<(i64, Vec<String>)> {
    let sql = "SELECT l.client_id, l.sku_id, l.claimed, COALESCE(k.held, 0) AS held FROM \
               (SELECT client_id, sku_id, CAST(SUM(allocated + shipped) AS BIGINT) AS claimed \
                FROM order_lines GROUP BY client_id, sku_id) l \
               LEFT JOIN (SELECT client_id, sku_id, CAST(SUM(qty) AS BIGINT) AS held FROM stock \
                          WHERE bucket LIKE 'ALLOCATED%' OR bucket = 'SHIPPED' \
                          GROUP BY client_id, sku_id) k \
               ON k.client_id = l.client_id AND k.sku_id = l.sku_id \
               WHERE l.claimed > COALESCE(k.held, 0)";
    let mut units = 0;
    let mut rows = Vec::new();
    for row in sqlx::query(sql).fetch_all(store.pool()).await? {
        let claimed: i64 = row.try_get("claimed")?;
        let held: i64 = row.try_get("held")?;
        units += claimed - held;
        rows.push(format!(
            "client {} sku {}: orders hold or shipped {claimed}, stock accounts for {held}",
            row.try_get::<i64, _>("client_id")?,
            row.try_get::<i64, _>("sku_id")?,
        ));
    }
    Ok((units, rows))
}

/// Every event id the API lists for the client after `after`.
async fn listed_events(shared: &Shared, after: i64) -> anyhow::Result<Vec<i64>> {
    let mut ids = Vec::new();
    let mut cursor = after;
    let mut rng = Lcg(shared.seed);
    loop {
        let path = format!("/api/v1/events?after={cursor}&limit=500");
        let Answer::Status(200, page, _) = shared.call(&mut rng, Method::GET, &path, None).await
        else {
            anyhow::bail!("listing events failed");
        };
        let items = page["items"].as_array().cloned().unwrap_or_default();
        ids.extend(items.iter().filter_map(|e| e["id"].as_i64()));
        match page["next_after"].as_i64() {
            Some(next) => cursor = next,
            None => return Ok(ids),
        }
    }
}

pub async fn run(args: StormArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cluster = None;
    let url = match (&args.database_url, args.backend) {
        (Some(url), _) => url.clone(),
        (None, Backend::Sqlite) => format!("sqlite://{}/storm.db", dir.path().display()),
        (None, Backend::Postgres) => {
            let started = Arc::new(Cluster::start()?);
            let url = started.url.clone();
            cluster = Some(started);
            url
        }
    };
    anyhow::ensure!(
        args.pg_restarts == 0 || cluster.is_some(),
        "--pg-restarts needs the storm's own PostgreSQL cluster (no --database-url, --backend postgres)"
    );
    let processes = if url.starts_with("sqlite:") {
        // SQLite serves one process by design.
        1
    } else {
        args.processes.max(1)
    };
    let log = args
        .server_log
        .clone()
        .unwrap_or_else(|| dir.path().join("servers.log"));
    let fleet = Arc::new(Fleet {
        url: url.clone(),
        ports: (0..processes)
            .map(|_| free_port())
            .collect::<anyhow::Result<_>>()?,
        servers: tokio::sync::Mutex::new((0..processes).map(|_| None).collect()),
        log,
    });
    for index in 0..processes {
        fleet.restart(index).await?;
    }
    let bases: Vec<String> = fleet
        .ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let client = match args.database_url {
        Some(_) => format!(
            "storm-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis()
        ),
        None => "storm".to_owned(),
    };
    let (hook_url, receiver) = start_receiver().await?;
    let (token, first_event) = seed(&bases[0], &client, &args, &hook_url).await?;

    let seconds = match (args.seconds, args.operations) {
        (None, None) => Some(30.0),
        (seconds, _) => seconds,
    };
    let started = Instant::now();
    let shared = Arc::new(Shared {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(args.concurrency as usize)
            .build()?,
        bases,
        token,
        seed: args.seed,
        skus: args.skus,
        warehouses: args.warehouses,
        cdf: zipf_cdf(args.skus),
        deadline: started + Duration::from_secs_f64(seconds.unwrap_or(86_400.0)),
        operations: args.operations,
        next_op: AtomicU64::new(0),
        faults: Faults::default(),
        stats: Stats::default(),
        violations: Mutex::default(),
        acked: Mutex::default(),
        shipments: Mutex::default(),
        events_cursor: tokio::sync::Mutex::new(first_event),
    });
    let done = Arc::new(AtomicBool::new(false));
    let mut faults = Vec::new();
    if let Some(every) = args.kill_every {
        faults.push(tokio::spawn(kill_loop(
            shared.clone(),
            fleet.clone(),
            Duration::from_secs_f64(every.max(0.5)),
            done.clone(),
        )));
    }
    if let Some(cluster) = &cluster
        && args.pg_restarts > 0
    {
        let every = seconds.unwrap_or(20.0) / f64::from(args.pg_restarts + 1);
        faults.push(tokio::spawn(pg_restart_loop(
            shared.clone(),
            fleet.clone(),
            cluster.clone(),
            args.pg_restarts,
            Duration::from_secs_f64(every),
            done.clone(),
        )));
    }
    let clients: Vec<_> = (0..args.concurrency)
        .map(|worker| tokio::spawn(client_task(shared.clone(), worker)))
        .collect();
    for client in clients {
        client.await?;
    }
    let load_seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    for fault in faults {
        fault.await??;
    }
    for exited in fleet.unexpected_exits().await {
        shared.violation(format!("process {exited} exited without being killed"));
        fleet.restart(exited).await?;
    }

    let store = Store::connect(
        &url,
        &StoreOptions {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(60),
            exclusive: false,
        },
    )
    .await?;

    // The allocator's own rounds (every ALLOCATION_INTERVAL_SECS) serve what waits.
    let settle = Instant::now();
    let mut waiting = serviceable_waiting_lines(&store, &client).await?;
    while !waiting.is_empty() && settle.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        waiting = serviceable_waiting_lines(&store, &client).await?;
    }
    for (order, sku, open) in waiting.iter().take(20) {
        shared.violation(format!(
            "order {order} waits for {open} of sku {sku} while an eligible warehouse has it available"
        ));
    }

    // Every listed event reaches the subscriber.
    let delivery = Instant::now();
    let listed = listed_events(&shared, first_event).await?;
    let mut missing: Vec<i64>;
    let mut last_progress = (Instant::now(), 0);
    loop {
        {
            let ids = receiver.ids.lock().unwrap_or_else(|e| e.into_inner());
            missing = listed
                .iter()
                .copied()
                .filter(|id| !ids.contains(id))
                .collect();
        }
        if missing.is_empty() {
            break;
        }
        let delivered = get(&receiver.deliveries);
        if delivered != last_progress.1 {
            last_progress = (Instant::now(), delivered);
        }
        // Bounded: a delivery leased by a killed process waits out its 30 s lease.
        if last_progress.0.elapsed() > Duration::from_secs(90)
            || delivery.elapsed() > Duration::from_secs(600)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let delivery_seconds = delivery.elapsed().as_secs_f64();
    if !missing.is_empty() {
        shared.violation(format!(
            "{} of {} listed events never reached the webhook subscriber (first: {:?})",
            missing.len(),
            listed.len(),
            &missing[..missing.len().min(10)]
        ));
    }
    if get(&receiver.unsigned) > 0 {
        shared.violation(format!(
            "{} deliveries had a bad signature",
            get(&receiver.unsigned)
        ));
    }

    // Every acknowledged order exists exactly once.
    let stored = stored_orders(&store, &client).await?;
    let acked: Vec<(String, String)> = shared
        .acked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|o| (o.channel.to_owned(), o.code.clone()))
        .collect();
    let mut lost = 0;
    for key in &acked {
        if !stored.contains_key(key) {
            lost += 1;
            if lost <= 20 {
                shared.violation(format!(
                    "acknowledged order {} ({}) is missing",
                    key.1, key.0
                ));
            }
        }
    }
    let duplicated: BTreeMap<_, _> = stored.iter().filter(|(_, n)| **n > 1).collect();
    for ((channel, code), rows) in &duplicated {
        shared.violation(format!("order {code} ({channel}) is stored {rows} times"));
    }
    let (oversold, unaccounted) = oversold_units(&store).await?;
    for row in unaccounted {
        shared.violation(format!("oversold: {row}"));
    }
    let report = oms_app::check::run(&store).await?;
    for breach in &report.breaches {
        shared.violation(format!("oms check: {breach}"));
    }
    store.close().await;
    fleet.stop().await;
    drop(cluster);

    let s = &shared.stats;
    let violations = shared
        .violations
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .len();
    println!(
        "{}",
        json!({
            "name": "storm",
            "backend": if url.starts_with("sqlite:") { "sqlite" } else { "postgres" },
            "processes": processes,
            "concurrency": args.concurrency,
            "seed": args.seed,
            "seconds": (load_seconds * 10.0).round() / 10.0,
            "operations": get(&s.operations),
            "ops_per_sec": (get(&s.operations) as f64 / load_seconds).round(),
            "requests": get(&s.requests),
            "answered_2xx": get(&s.answered_2xx),
            "answered_4xx": get(&s.answered_4xx),
            "orders_sent": get(&s.orders_sent),
            "orders_acknowledged": acked.len(),
            "orders_stored": stored.len(),
            "cancels": get(&s.cancels),
            "wms_updates": get(&s.wms_updates),
            "inward_receipts": get(&s.inward_receipts),
            "pool_moves": get(&s.pool_moves),
            "kills": get(&s.kills),
            "pg_restarts": get(&s.pg_restarts),
            "connection_errors_retried": get(&s.connection_errors),
            "fault_window_503": get(&s.fault_window_503),
            "fault_window_other_5xx": get(&s.fault_window_other_5xx),
            "server_errors": get(&s.server_errors),
            "gave_up": get(&s.gave_up),
            "acknowledged_missing": lost,
            "duplicated_orders": duplicated.len(),
            "oversold_units": oversold,
            "serviceable_waiting_lines": waiting.len(),
            "events_listed": listed.len(),
            "events_missing": missing.len(),
            "webhook_deliveries": get(&receiver.deliveries),
            "delivery_wait_s": (delivery_seconds * 10.0).round() / 10.0,
            "ledger_rows": report.ledger_rows,
            "check_breaches": report.breaches.len(),
            "violations": violations,
        })
    );
    anyhow::ensure!(violations == 0, "{violations} violations");
    Ok(())
}
