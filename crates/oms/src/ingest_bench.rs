//! `oms bench ingest`: 3-line B2C orders over HTTP against a real `oms serve` (this binary,
//! started as a child process), from `concurrency` clients at once, with SKUs drawn
//! uniformly and Zipf-hot. Beside it, the ceiling: the same rows (an order, its lines, and
//! per line a guarded stock update with its ledger row) written by plain statements on
//! the same database — batched 1,000 orders per transaction on SQLite (its best case), one
//! transaction per order from 16 connections on PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use oms_domain::inventory::Movement;
use oms_store::stock::{self, LedgerEntry, StockKey};
use oms_store::{Backend, ClientId, Store, StoreOptions};
use serde_json::json;

use crate::bench::{self, Lcg, backend_name, catalogue};
use crate::harness::{Cluster, ServeOptions, Server, free_port, start_server};

#[derive(Clone)]
pub struct IngestArgs {
    pub backend: Backend,
    pub orders: u64,
    pub concurrency: u64,
    pub skus: u64,
    pub warehouses: u64,
    pub database_url: Option<String>,
}

const TOKEN: &str = "oms_bench_integration_key";
const ADMIN: &str = "oms_bench_operator";
/// Units of every SKU at every warehouse: enough that no order runs short.
const STOCK_PER_KEY: i64 = 100_000;

/// Cumulative Zipf(s = 1) weights over `n` SKUs: a few SKUs take most orders.
pub(crate) fn zipf_cdf(n: u64) -> Vec<f64> {
    let mut cdf = Vec::with_capacity(n as usize);
    let mut total = 0.0;
    for rank in 1..=n {
        total += 1.0 / rank as f64;
        cdf.push(total);
    }
    cdf.iter().map(|c| c / total).collect()
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Skew {
    Uniform,
    Zipf,
}

pub(crate) fn pick_sku(rng: &mut Lcg, skus: u64, skew: Skew, cdf: &[f64]) -> u64 {
    match skew {
        Skew::Uniform => rng.below(skus),
        Skew::Zipf => {
            let u = rng.below(1 << 30) as f64 / (1u64 << 30) as f64;
            cdf.partition_point(|c| *c < u) as u64
        }
    }
}

fn order_body(code: &str, rng: &mut Lcg, skus: u64, skew: Skew, cdf: &[f64]) -> serde_json::Value {
    let lines: Vec<_> = (0..3)
        .map(|l| {
            json!({"line_id": format!("{l}"), "sku": format!("SKU-{:06}", pick_sku(rng, skus, skew, cdf)),
                   "qty": 1, "price": 499})
        })
        .collect();
    json!({
        "order_code": code, "kind": "B2C", "channel": "WEB", "fulfilment_type": "MULTI_SHIPMENT_PARTIAL",
        "ship_to": {"name": "Bench Customer", "address": "1 Bench Street", "pincode": "560001",
                    "phone": "+91 90000 00000", "lat": 10.0 + rng.below(20) as f64, "lon": 70.0 + rng.below(20) as f64},
        "lines": lines,
    })
}

async fn open_store(url: &str) -> anyhow::Result<Store> {
    let options = StoreOptions {
        max_connections: 16,
        acquire_timeout: Duration::from_secs(60),
        exclusive: true,
    };
    let store = Store::connect(url, &options).await?;
    store.migrate().await?;
    Ok(store)
}

/// Client `bench` with its catalogue, stock everywhere and an integration key.
async fn seed(store: &Store, args: &IngestArgs) -> anyhow::Result<()> {
    let (client, warehouses) = catalogue(store, args.skus, args.warehouses, "bench").await?;
    stock_everywhere(store, client, &warehouses, args.skus).await?;
    bench::insert_key(store, client, "integration", TOKEN).await?;
    Ok(())
}

/// Gives `SKU-000000…` (`skus_n` of them) stock at every warehouse.
async fn stock_everywhere(
    store: &Store,
    client: ClientId,
    warehouses: &[i64],
    skus_n: u64,
) -> anyhow::Result<Vec<StockKey>> {
    let codes: Vec<String> = (0..skus_n).map(|i| format!("SKU-{i:06}")).collect();
    bench::stock_everywhere(store, client, warehouses, &codes, STOCK_PER_KEY).await
}

/// The ceiling: `orders` 3-line orders written by plain statements (order, lines, and per
/// line a guarded stock decrement + increment + ledger row) on the same database, under a
/// client of its own. Orders per second.
async fn ceiling(store: &Store, args: &IngestArgs) -> anyhow::Result<f64> {
    let (client, warehouses) = catalogue(store, 100, 1, "raw").await?;
    let keys = Arc::new(stock_everywhere(store, client, &warehouses, 100).await?);
    bench::qc_pending(store, &keys, STOCK_PER_KEY).await?;
    let channel = oms_store::channels::find(store.pool(), client, "WEB")
        .await?
        .context("channel")?
        .id;
    let record = |code: String| bench::raw_order_record(channel, code);
    let entry = LedgerEntry {
        reference: "raw",
        note: None,
        actor: "raw",
        at: 1,
    };
    let write_one = async |conn: &mut oms_store::Conn, i: u64| -> anyhow::Result<()> {
        let lines: Vec<(String, i64, i64, Option<i64>)> = (0..3u64)
            .map(|l| {
                let key = keys[((i * 3 + l) % keys.len() as u64) as usize];
                (format!("{l}"), key.sku, 1, Some(49_900))
            })
            .collect();
        oms_store::orders::insert(conn, client, &record(format!("RAW-{i}")), "raw", &lines, 1)
            .await?;
        for l in 0..3u64 {
            let key = keys[((i * 3 + l) % keys.len() as u64) as usize];
            #[allow(clippy::disallowed_methods)]
            stock::apply(conn, key, &Movement::qc_pass(1)?, &entry).await?;
        }
        Ok(())
    };
    let started = Instant::now();
    match store.backend() {
        Backend::Sqlite => {
            for batch in (0..args.orders).collect::<Vec<_>>().chunks(1000) {
                let mut tx = store.begin_write().await?;
                for i in batch {
                    write_one(tx.conn(), *i).await?;
                }
                tx.commit().await?;
            }
        }
        Backend::Postgres => {
            let next = Arc::new(AtomicU64::new(0));
            let mut tasks = Vec::new();
            for _ in 0..16 {
                let (store, next, orders) = (store.clone(), next.clone(), args.orders);
                let write_one = &write_one;
                tasks.push(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= orders {
                            return anyhow::Ok(());
                        }
                        let mut tx = store.begin_write().await?;
                        write_one(tx.conn(), i).await?;
                        tx.commit().await?;
                    }
                });
            }
            for result in futures_join_all(tasks).await {
                result?;
            }
        }
    }
    Ok(args.orders as f64 / started.elapsed().as_secs_f64())
}

/// Runs futures concurrently on this task (no spawn: they borrow).
async fn futures_join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

struct Load {
    /// Cumulative group-commit figures after this run: (batches, orders/batch, ms/batch).
    batches: (f64, f64, f64),
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    failures: u64,
}

/// Brings PostgreSQL to the state a running database is in: orders, shipments and
/// allocations in its tables, and planner statistics that know them. A fresh database's
/// statistics say those tables are empty, so until autovacuum's first analyze (a minute
/// or so) every foreign-key check on them scans the table — tens of millions of rows read
/// in a 6,000-order run. A short load, then `ANALYZE`, then the measured runs.
async fn steady(server: &Server, url: &str, args: &IngestArgs) -> anyhow::Result<()> {
    let warm_up = IngestArgs {
        orders: (args.orders / 5).clamp(100, 2_000),
        ..args.clone()
    };
    let warmed = load(server, &warm_up, Skew::Uniform, "W").await?;
    anyhow::ensure!(warmed.failures == 0, "the warm-up load failed");
    let store = open_store(url).await?;
    store.analyze().await?;
    store.close().await;
    Ok(())
}

async fn load(
    server: &Server,
    args: &IngestArgs,
    skew: Skew,
    prefix: &str,
) -> anyhow::Result<Load> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency as usize)
        .build()?;
    let cdf = Arc::new(zipf_cdf(args.skus));
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (http, cdf, next, failures) =
            (http.clone(), cdf.clone(), next.clone(), failures.clone());
        let url = format!("{}/api/v1/orders", server.base);
        let (orders, skus, prefix) = (args.orders, args.skus, prefix.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut rng = Lcg(1000 + worker);
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= orders {
                    return latencies;
                }
                let body = order_body(&format!("{prefix}-{i}"), &mut rng, skus, skew, &cdf);
                let sent = Instant::now();
                let answer = http.post(&url).bearer_auth(TOKEN).json(&body).send().await;
                let ok = match answer {
                    Ok(response) => {
                        let ok = response.status() == reqwest::StatusCode::CREATED;
                        let _ = response.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let batches = batch_figures(&http, &server.base).await;
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    Ok(Load {
        ops_per_sec: args.orders as f64 / elapsed,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        failures: failures.load(Ordering::Relaxed),
        batches,
    })
}

/// The server's group-commit figures so far, from `/metrics`: batches, orders per batch,
/// and milliseconds per batch (both averages).
async fn batch_figures(http: &reqwest::Client, base: &str) -> (f64, f64, f64) {
    let text = match http.get(format!("{base}/metrics")).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(str::trim))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let count = value("oms_order_batch_orders_count");
    let orders = value("oms_order_batch_orders_sum");
    let seconds = value("oms_order_batch_seconds_sum");
    if count == 0.0 {
        return (0.0, 0.0, 0.0);
    }
    (count, orders / count, seconds / count * 1000.0)
}

pub async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let _dir;
    let _cluster;
    let url = match (&args.database_url, args.backend) {
        (Some(url), _) => url.clone(),
        (None, Backend::Sqlite) => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}/bench.db", dir.path().display());
            _dir = dir;
            url
        }
        (None, Backend::Postgres) => {
            let cluster = Cluster::start()?;
            let url = cluster.url.clone();
            _cluster = cluster;
            url
        }
    };
    let setup = Instant::now();
    let store = open_store(&url).await?;
    anyhow::ensure!(
        store.backend() == args.backend || args.database_url.is_some(),
        "backend mismatch"
    );
    seed(&store, &args).await?;
    let raw = ceiling(&store, &args).await?;
    let backend = backend_name(&store);
    let store_backend = store.backend();
    store.close().await;
    // The SQLite process lock goes with the store.
    drop(store);
    eprintln!(
        "setup: {} SKUs x {} warehouses seeded, ceiling measured, in {:?}",
        args.skus,
        args.warehouses,
        setup.elapsed()
    );
    let server = start_server(&ServeOptions {
        url: &url,
        port: free_port()?,
        admin_token: ADMIN,
        extra_args: &["--db-max-connections", "32"],
        log: None,
    })
    .await?;
    if store_backend == Backend::Postgres {
        steady(&server, &url, &args).await?;
    }
    let mut results = Vec::new();
    for (name, skew, prefix) in [
        ("ingest_uniform", Skew::Uniform, "U"),
        ("ingest_zipf", Skew::Zipf, "Z"),
    ] {
        let measured = load(&server, &args, skew, prefix).await?;
        println!(
            "{}",
            json!({
                "name": name,
                "backend": backend,
                "orders": args.orders,
                "concurrency": args.concurrency,
                "failures": measured.failures,
                "ops_per_sec": measured.ops_per_sec.round(),
                "raw_ops_per_sec": raw.round(),
                "ratio": (measured.ops_per_sec / raw * 1000.0).round() / 1000.0,
                "p50_ms": (measured.p50_ms * 100.0).round() / 100.0,
                "p99_ms": (measured.p99_ms * 100.0).round() / 100.0,
                "batches_so_far": measured.batches.0,
                "orders_per_batch": (measured.batches.1 * 10.0).round() / 10.0,
                "ms_per_batch": (measured.batches.2 * 100.0).round() / 100.0,
            })
        );
        results.push(measured);
    }
    server.stop().await;
    // What the server wrote must hold every invariant.
    let store = open_store(&url).await?;
    let report = oms_app::check::run(&store).await?;
    store.close().await;
    anyhow::ensure!(
        report.breaches.is_empty(),
        "invariants broken after the load: {:?}",
        report.breaches
    );
    let failures: u64 = results.iter().map(|r| r.failures).sum();
    anyhow::ensure!(failures == 0, "{failures} orders were not created");
    Ok(())
}
