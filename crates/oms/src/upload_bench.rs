//! `oms bench upload`: a SKU file and an outward-order file of `rows` rows each, sent over
//! HTTP to a real server (this process's, on a loopback port) and timed from the first
//! byte sent to the answer: read, parsed, validated, written and (orders) allocated in one
//! transaction. Beside each, the ceiling: the same rows written by the store's multi-row
//! statements in one transaction on the same database, with no HTTP, CSV or validation —
//! SKUs as upserts; orders as their order and line rows plus, per line, the guarded stock
//! move and ledger row an allocation writes.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context;
use oms_app::{AppState, Limits};
use oms_domain::inventory::Movement;
use oms_store::orders::{NewLine, OrderRecord};
use oms_store::stock;
use oms_store::{Store, skus};
use serde_json::json;

use crate::bench::{self, backend_name, catalogue, open, stock_everywhere};

pub struct UploadArgs {
    pub rows: u64,
    pub database_url: Option<String>,
}

const TOKEN: &str = "oms_bench_upload_key";
const CLIENT: &str = "upload";
/// Units of every SKU at every warehouse: enough that no order line runs short.
const STOCK_PER_KEY: i64 = 1_000;
/// Warehouses holding every SKU.
const WAREHOUSES: u64 = 5;
const LINES_PER_ORDER: u64 = 3;

fn sku_file(rows: u64, prefix: &str) -> String {
    let mut csv = String::from("code,name,mrp,price,tax_rate,hsn,weight_grams\n");
    for i in 0..rows {
        let _ = writeln!(
            csv,
            "{prefix}{i:07},Product {i},{}.{:02},{},12,6109,{}",
            100 + i % 900,
            i % 100,
            50 + i % 50,
            100 + i % 400
        );
    }
    csv
}

/// `rows` lines: orders of three lines over the SKUs `{prefix}0000000…`.
fn order_file(rows: u64, prefix: &str, skus: u64) -> String {
    let mut csv = String::from(
        "order_code,kind,channel,fulfilment_type,ship_to.name,ship_to.address,ship_to.pincode,\
         ship_to.phone,line_id,sku,qty,price\n",
    );
    for i in 0..rows {
        let order = i / LINES_PER_ORDER;
        let _ = writeln!(
            csv,
            "UP-{order:07},B2C,WEB,MULTI_SHIPMENT_PARTIAL,Customer {order},{order} Long Road,560001,\
             +91 90000 00000,{},{prefix}{:07},1,499",
            i % LINES_PER_ORDER,
            (i * 7919) % skus
        );
    }
    csv
}

/// The ceilings, in rows per second: `rows` SKUs upserted, then `rows` order lines (with
/// their orders) inserted and each given a guarded stock move with its ledger row — every
/// kind in one multi-row statement per thousand rows, all in one transaction per file.
async fn ceilings(store: &Store, rows: u64) -> anyhow::Result<(f64, f64)> {
    let (client, warehouses) = catalogue(store, 0, WAREHOUSES, "raw").await?;
    let catalogue: Vec<(String, oms_domain::sku::Sku)> = (0..rows)
        .map(|i| {
            (
                format!("RAW-{i:07}"),
                oms_domain::sku::Sku {
                    name: format!("Product {i}"),
                    mrp_minor: 10_000 + i64::try_from(i % 900).unwrap_or(0) * 100,
                    price_minor: Some(5_000),
                    tax_rate_bp: Some(1_200),
                    hsn: Some("6109".into()),
                    weight_grams: Some(100),
                    attributes: Default::default(),
                },
            )
        })
        .collect();
    let started = Instant::now();
    let mut tx = store.begin_write().await?;
    skus::upsert_many(tx.conn(), client, &catalogue, 1).await?;
    tx.commit().await?;
    let skus_per_sec = rows as f64 / started.elapsed().as_secs_f64();

    let codes: Vec<String> = catalogue.into_iter().map(|(code, _)| code).collect();
    let keys = stock_everywhere(store, client, &warehouses[..1], &codes, STOCK_PER_KEY).await?;
    let channel = oms_store::channels::find(store.pool(), client, "WEB")
        .await?
        .context("channel WEB")?
        .id;
    let orders = rows.div_ceil(LINES_PER_ORDER);
    let records: Vec<OrderRecord> = (0..orders)
        .map(|o| bench::raw_order_record(channel, format!("RAW-{o:07}")))
        .collect();
    let key_of = |line: u64| keys[((line * 7919) % rows) as usize];
    let lines: Vec<Vec<NewLine>> = (0..orders)
        .map(|o| {
            (o * LINES_PER_ORDER..((o + 1) * LINES_PER_ORDER).min(rows))
                .map(|i| {
                    (
                        (i % LINES_PER_ORDER).to_string(),
                        key_of(i).sku,
                        1,
                        Some(49_900),
                    )
                })
                .collect()
        })
        .collect();
    let batch: Vec<_> = records
        .iter()
        .zip(&lines)
        .map(|(record, lines)| (record, "raw", lines.as_slice()))
        .collect();
    let movements: Vec<_> = (0..rows)
        .map(|i| Ok((key_of(i), Movement::qc_pass(1)?, "raw".to_owned())))
        .collect::<anyhow::Result<_>>()?;
    // Units to pass: QC-pending stock, booked outside the timing.
    bench::qc_pending(store, &keys, STOCK_PER_KEY).await?;
    let started = Instant::now();
    let mut tx = store.begin_write().await?;
    oms_store::orders::insert_many(tx.conn(), client, &batch, 1).await?;
    #[allow(clippy::disallowed_methods)]
    stock::apply_many(tx.conn(), &movements, "raw", 1).await?;
    tx.commit().await?;
    let lines_per_sec = rows as f64 / started.elapsed().as_secs_f64();
    Ok((skus_per_sec, lines_per_sec))
}

async fn upload(
    http: &reqwest::Client,
    base: &str,
    kind: &str,
    body: String,
) -> anyhow::Result<(f64, serde_json::Value)> {
    let started = Instant::now();
    let response = http
        .post(format!("{base}/api/v1/uploads/{kind}"))
        .bearer_auth(TOKEN)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        status.is_success(),
        "{kind} upload answered {status}: {answer}"
    );
    Ok((seconds, answer))
}

pub async fn upload_bench(args: UploadArgs) -> anyhow::Result<()> {
    let (store, _dir) = open(args.database_url.as_deref()).await?;
    let backend = backend_name(&store);
    let (raw_skus, raw_lines) = ceilings(&store, args.rows).await?;
    let (client, warehouses) = catalogue(&store, 0, WAREHOUSES, CLIENT).await?;
    bench::insert_key(&store, client, "client_admin", TOKEN).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = AppState::new(store.clone(), None, Limits::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(oms_app::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();

    let prefix = "UPL-";
    let (seconds, answer) = upload(&http, &base, "skus", sku_file(args.rows, prefix)).await?;
    anyhow::ensure!(answer["rows"] == json!(args.rows), "SKU upload: {answer}");
    report("upload_skus", backend, args.rows, seconds, raw_skus);

    let codes: Vec<String> = (0..args.rows).map(|i| format!("{prefix}{i:07}")).collect();
    stock_everywhere(&store, client, &warehouses, &codes, STOCK_PER_KEY).await?;
    // The stock was stored directly, not by an upload.
    bench::settle_statistics(&store).await?;
    let file = order_file(args.rows, prefix, args.rows);
    let (seconds, answer) = upload(&http, &base, "outward-orders", file).await?;
    anyhow::ensure!(answer["rows"] == json!(args.rows), "order upload: {answer}");
    report(
        "upload_outward_orders",
        backend,
        args.rows,
        seconds,
        raw_lines,
    );

    let _ = stop.send(());
    server.await??;
    let report = oms_app::check::run(&store).await?;
    store.close().await;
    anyhow::ensure!(
        report.breaches.is_empty(),
        "invariants broken after the uploads: {:?}",
        report.breaches
    );
    Ok(())
}

fn report(name: &str, backend: &str, rows: u64, seconds: f64, raw_rows_per_sec: f64) {
    let per_sec = rows as f64 / seconds;
    println!(
        "{}",
        json!({
            "name": name,
            "backend": backend,
            "rows": rows,
            "ops_per_sec": per_sec.round(),
            "raw_ops_per_sec": raw_rows_per_sec.round(),
            "ratio": (per_sec / raw_rows_per_sec * 1000.0).round() / 1000.0,
            // One request per file: its time is both percentiles.
            "p50_ms": (seconds * 1000.0).round(),
            "p99_ms": (seconds * 1000.0).round(),
        })
    );
}
