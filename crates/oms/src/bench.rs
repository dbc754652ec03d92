//! `oms bench`: throughput of the OMS's hot paths on this machine, printed as one JSON
//! object per result. Each result carries `raw_ops_per_sec`: the same work done by plain SQL
//! statements in the same run, the ceiling the database itself sets, so the ratio means
//! something on a noisy machine.

use std::time::{Duration, Instant};

use anyhow::Context;
use oms_app::fields::Fields;
use oms_app::service::{self, allocate};
use oms_domain::code::Code;
use oms_domain::inventory::Movement;
use oms_store::stock::{self, LedgerEntry, StockKey};
use oms_store::{Backend, ClientId, Store, StoreOptions, skus, warehouses};
use serde_json::json;

/// A small deterministic generator: benchmarks must be repeatable, not random.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub struct AllocateArgs {
    pub orders: u64,
    pub skus: u64,
    pub warehouses: u64,
    pub database_url: Option<String>,
}

/// A temporary SQLite database unless a URL is given.
pub(crate) async fn open(
    database_url: Option<&str>,
) -> anyhow::Result<(Store, Option<tempfile::TempDir>)> {
    let (url, dir) = match database_url {
        Some(url) => (url.to_owned(), None),
        None => {
            let dir = tempfile::tempdir()?;
            (
                format!("sqlite://{}/bench.db", dir.path().display()),
                Some(dir),
            )
        }
    };
    let options = StoreOptions {
        max_connections: 8,
        acquire_timeout: Duration::from_secs(30),
        exclusive: true,
    };
    let store = Store::connect(&url, &options)
        .await
        .context("opening the bench database")?;
    store.migrate().await?;
    Ok((store, dir))
}

/// Statistics as the running OMS would have them after a bulk load that bypassed its
/// uploads: on PostgreSQL `ANALYZE`, as autovacuum (or the OMS after an upload) runs it;
/// SQLite none, as the OMS runs it (its plans are chosen without statistics).
pub(crate) async fn settle_statistics(store: &Store) -> anyhow::Result<()> {
    if store.backend() == Backend::Postgres {
        store.analyze().await?;
    }
    Ok(())
}

pub(crate) fn backend_name(store: &Store) -> &'static str {
    match store.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// A plain B2C order record of channel `channel`, as the plain-SQL ceilings write it.
pub(crate) fn raw_order_record(channel: i64, code: String) -> oms_store::orders::OrderRecord {
    oms_store::orders::OrderRecord {
        channel_id: channel,
        order_code: code,
        kind: "B2C".into(),
        fulfilment_type: "MULTI_SHIPMENT_PARTIAL".into(),
        retry: "AUTO".into(),
        dispatch_by: None,
        priority: 0,
        warehouse_id: None,
        destination_warehouse_id: None,
        stock: "GOOD".into(),
        ship_name: Some("Bench Customer".into()),
        ship_address: Some("1 Bench Street".into()),
        ship_pincode: Some("560001".into()),
        ship_phone: None,
        ship_email: None,
        ship_lat: None,
        ship_lon: None,
    }
}

/// Books `units` QC-pending at every key, for a ceiling to pass QC: a guarded move with its
/// ledger row, like an allocation's, that leaves no allocation for `oms check` to miss.
pub(crate) async fn qc_pending(store: &Store, keys: &[StockKey], units: i64) -> anyhow::Result<()> {
    let movements: Vec<_> = keys
        .iter()
        .map(|key| Ok((*key, Movement::grn(units)?, "raw".to_owned())))
        .collect::<anyhow::Result<_>>()?;
    let mut tx = store.begin_write().await?;
    #[allow(clippy::disallowed_methods)]
    stock::apply_many(tx.conn(), &movements, "raw", 0).await?;
    tx.commit().await?;
    Ok(())
}

/// Gives `client` an API key of `role` whose token is `token`.
pub(crate) async fn insert_key(
    store: &Store,
    client: ClientId,
    role: &str,
    token: &str,
) -> anyhow::Result<()> {
    let mut tx = store.begin_write().await?;
    oms_store::keys::insert(
        tx.conn(),
        client,
        role,
        "bench",
        &oms_app::auth::token_hash(token),
        0,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Gives every SKU of `codes` `units` at every warehouse, in one transaction; answers the
/// stock keys.
pub(crate) async fn stock_everywhere(
    store: &Store,
    client: ClientId,
    warehouses: &[i64],
    codes: &[String],
    units: i64,
) -> anyhow::Result<Vec<StockKey>> {
    let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    let mut tx = store.begin_write().await?;
    let ids = skus::ids_by_code(tx.conn(), client, &refs).await?;
    let mut movements = Vec::with_capacity(codes.len() * warehouses.len());
    for code in codes {
        let sku = *ids.get(code).context("a SKU to stock is missing")?;
        for warehouse in warehouses {
            let key = StockKey {
                client,
                warehouse: *warehouse,
                sku,
            };
            movements.push((key, Movement::absolute_increase(units)?, "bench".to_owned()));
        }
    }
    #[allow(clippy::disallowed_methods)]
    stock::apply_many(tx.conn(), &movements, "bench", 0).await?;
    tx.commit().await?;
    Ok(movements.into_iter().map(|(key, _, _)| key).collect())
}

/// Client `bench`, `warehouses` warehouses (lat/lon spread over India), channel WEB, `skus`
/// SKUs; answers the client and the warehouse ids.
pub(crate) async fn catalogue(
    store: &Store,
    skus_n: u64,
    warehouses_n: u64,
    code: &str,
) -> anyhow::Result<(ClientId, Vec<i64>)> {
    let client = service::create_client(
        store,
        &Code::parse(code).map_err(anyhow::Error::msg)?,
        Some("Bench Brand"),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .id;
    let mut warehouse_ids = Vec::new();
    for w in 0..warehouses_n {
        let wcode = Code::parse(&format!("{code}-W{w}")).map_err(anyhow::Error::msg)?;
        let fields = Fields::from_pairs([
            ("name".to_owned(), format!("Warehouse {w}")),
            ("type".to_owned(), "WAREHOUSE".to_owned()),
            ("pincode".to_owned(), format!("{}", 110_001 + w * 100_000)),
            ("lat".to_owned(), format!("{}", 12.0 + (w as f64) * 3.0)),
            ("lon".to_owned(), format!("{}", 72.0 + (w as f64) * 2.0)),
        ]);
        let (row, _) = service::put_warehouse(store, &wcode, &fields)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut tx = store.begin_write().await?;
        warehouses::map_to_client(tx.conn(), client, row.id, 0).await?;
        tx.commit().await?;
        warehouse_ids.push(row.id);
    }
    let channel = Fields::from_pairs([
        ("name".to_owned(), "Web".to_owned()),
        ("type".to_owned(), "WEBSITE".to_owned()),
    ]);
    service::put_channel(
        store,
        client,
        &Code::parse("WEB").map_err(anyhow::Error::msg)?,
        &channel,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let catalogue: Vec<(String, oms_domain::sku::Sku)> = (0..skus_n)
        .map(|i| {
            (
                format!("SKU-{i:06}"),
                oms_domain::sku::Sku {
                    name: format!("Product {i}"),
                    mrp_minor: 99_900,
                    price_minor: None,
                    tax_rate_bp: None,
                    hsn: None,
                    weight_grams: None,
                    attributes: Default::default(),
                },
            )
        })
        .collect();
    let mut tx = store.begin_write().await?;
    skus::upsert_many(tx.conn(), client, &catalogue, 0).await?;
    tx.commit().await?;
    Ok((client, warehouse_ids))
}

/// A backlog of `orders` waiting B2C orders (1–3 lines over the catalogue), stored without
/// stock so nothing allocates, then stock for every SKU at every warehouse; then one timed
/// allocation pass over the whole backlog. Each order is due on a day and hour of its own
/// (`dispatch_by`), as a real backlog is: the pass plans in SLA order, not in the order the
/// orders arrived, and writes what it planned in that order unless a write sorts it.
pub async fn allocate(args: AllocateArgs) -> anyhow::Result<()> {
    let (store, _dir) = open(args.database_url.as_deref()).await?;
    let (client, warehouse_ids) = catalogue(&store, args.skus, args.warehouses, "bench").await?;
    let mut rng = Lcg(42);
    let setup = Instant::now();
    let mut lines_total = 0u64;
    let mut backlog = Vec::with_capacity(args.orders as usize);
    for i in 0..args.orders {
        let lines = 1 + rng.below(3);
        let mut pairs = vec![
            ("order_code".to_owned(), format!("B-{i:07}")),
            ("kind".to_owned(), "B2C".to_owned()),
            ("channel".to_owned(), "WEB".to_owned()),
            (
                "fulfilment_type".to_owned(),
                "MULTI_SHIPMENT_PARTIAL".to_owned(),
            ),
            (
                "dispatch_by".to_owned(),
                format!(
                    "2026-12-{:02}T{:02}:00:00Z",
                    1 + rng.below(28),
                    rng.below(24)
                ),
            ),
            ("ship_to.name".to_owned(), "Customer".to_owned()),
            ("ship_to.address".to_owned(), "Street 1".to_owned()),
            ("ship_to.pincode".to_owned(), "560001".to_owned()),
            (
                "ship_to.lat".to_owned(),
                format!("{}", 10.0 + rng.below(20) as f64),
            ),
            (
                "ship_to.lon".to_owned(),
                format!("{}", 70.0 + rng.below(20) as f64),
            ),
        ];
        for l in 0..lines {
            pairs.push((format!("lines[{l}].line_id"), format!("{l}")));
            pairs.push((
                format!("lines[{l}].sku"),
                format!("SKU-{:06}", (rng.below(args.skus) + l * 7) % args.skus),
            ));
            pairs.push((format!("lines[{l}].qty"), format!("{}", 1 + rng.below(2))));
        }
        lines_total += lines;
        backlog.push(
            service::orders::validate(&Fields::from_pairs(pairs))
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        );
    }
    // Stored while there is no stock: written as received, in multi-row statements, a
    // transaction per 1,000 orders. Statistics are refreshed after the first: without
    // them, PostgreSQL looks each next chunk's codes up by reading all the client's orders.
    for (i, chunk) in backlog.chunks(1_000).enumerate() {
        let mut tx = store.begin_write().await?;
        let batch: Vec<_> = chunk.iter().map(|(o, h)| (o, h.as_str())).collect();
        for stored in service::orders::insert_many(tx.conn(), client, &batch, 1)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
        {
            stored.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        tx.commit().await?;
        if i == 0 {
            settle_statistics(&store).await?;
        }
    }
    let mut tx = store.begin_write().await?;
    let entry = LedgerEntry {
        reference: "bench",
        note: None,
        actor: "bench",
        at: 1,
    };
    let sku_ids = skus::ids_by_code(
        tx.conn(),
        client,
        &(0..args.skus)
            .map(|i| format!("SKU-{i:06}"))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await?;
    for sku in sku_ids.values() {
        for warehouse in &warehouse_ids {
            let qty = 1 + rng.below(30) as i64;
            stock::apply(
                tx.conn(),
                StockKey {
                    client,
                    warehouse: *warehouse,
                    sku: *sku,
                },
                &Movement::absolute_increase(qty)?,
                &entry,
            )
            .await?;
        }
    }
    tx.commit().await?;
    settle_statistics(&store).await?;
    eprintln!(
        "setup: {} orders, {lines_total} lines, {} SKUs x {} warehouses in {:?}",
        args.orders,
        args.skus,
        args.warehouses,
        setup.elapsed()
    );

    let started = Instant::now();
    let summary = service::orders::run_pass(&store, client, allocate::Scope::AllOpen, "bench")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let elapsed = started.elapsed();
    let report = oms_app::check::run(&store).await?;
    anyhow::ensure!(
        report.breaches.is_empty(),
        "invariants broken after the pass: {:?}",
        report.breaches
    );

    let seconds_per_line = raw_seconds_per_allocated_line(summary.lines_allocated).await?;
    let ops = summary.orders_seen as f64 / elapsed.as_secs_f64();
    let raw =
        summary.orders_seen as f64 / (seconds_per_line * summary.lines_allocated.max(1) as f64);
    println!(
        "{}",
        json!({
            "name": "allocate",
            "backend": backend_name(&store),
            "orders": summary.orders_seen,
            "lines_allocated": summary.lines_allocated,
            "units_allocated": summary.units_allocated,
            "elapsed_ms": elapsed.as_millis(),
            "ops_per_sec": ops.round(),
            "raw_ops_per_sec": raw.round(),
            "ratio": (ops / raw * 1000.0).round() / 1000.0,
            "p50_ms": elapsed.as_millis(),
            "p99_ms": elapsed.as_millis(),
        })
    );
    store.close().await;
    Ok(())
}

/// The ceiling for a pass: the statements an allocation cannot avoid — per allocated line
/// the guarded stock decrement, the increment and the ledger row — run `lines` times in one
/// transaction on a fresh database of the same backend kind; seconds per line.
async fn raw_seconds_per_allocated_line(lines: u64) -> anyhow::Result<f64> {
    let (raw, _dir) = open(None).await?;
    let (client, warehouse_ids) = catalogue(&raw, 1, 1, "raw").await?;
    let mut tx = raw.begin_write().await?;
    let sku = *skus::ids_by_code(tx.conn(), client, &["SKU-000000"])
        .await?
        .values()
        .next()
        .context("sku")?;
    let key = StockKey {
        client,
        warehouse: warehouse_ids[0],
        sku,
    };
    let entry = LedgerEntry {
        reference: "raw",
        note: None,
        actor: "raw",
        at: 1,
    };
    stock::apply(
        tx.conn(),
        key,
        &Movement::absolute_increase(oms_domain::inventory::QTY_MAX)?,
        &entry,
    )
    .await?;
    tx.commit().await?;
    let n = lines.max(1);
    let started = Instant::now();
    let mut tx = raw.begin_write().await?;
    for _ in 0..n {
        stock::apply(tx.conn(), key, &Movement::allocate("COMMON", 1)?, &entry).await?;
    }
    tx.commit().await?;
    let per_line = started.elapsed().as_secs_f64() / n as f64;
    raw.close().await;
    Ok(per_line)
}
