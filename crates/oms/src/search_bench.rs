//! `oms bench search`: how long the order search (the API's `GET /api/v1/orders` and the
//! panel's search box, one store query) takes over a large order book, over HTTP against
//! the real server.

use std::time::Instant;

use oms_app::fields::Fields;
use oms_app::{AppState, Limits, service};

use crate::bench::{Lcg, backend_name, catalogue, open};

pub struct SearchArgs {
    pub orders: u64,
    pub repeats: u64,
    pub database_url: Option<String>,
}

const TOKEN: &str = "bench-operator-token";
const CLIENT: &str = "search";
/// Orders written per transaction while loading.
const LOAD_BATCH: u64 = 1_000;

fn order_fields(i: u64, rng: &mut Lcg) -> Fields {
    let mut pairs = vec![
        ("order_code".to_owned(), format!("S-{i:07}")),
        ("kind".to_owned(), "B2C".to_owned()),
        ("channel".to_owned(), "WEB".to_owned()),
        (
            "fulfilment_type".to_owned(),
            "MULTI_SHIPMENT_PARTIAL".to_owned(),
        ),
        ("ship_to.name".to_owned(), format!("Customer {i}")),
        ("ship_to.address".to_owned(), "12 MG Road".to_owned()),
        ("ship_to.pincode".to_owned(), "560001".to_owned()),
        (
            "ship_to.phone".to_owned(),
            format!("+91 9{:04} {:05}", i / 100_000, i % 100_000),
        ),
        ("ship_to.email".to_owned(), format!("c{i}@example.in")),
    ];
    for l in 0..1 + rng.below(3) {
        pairs.push((format!("lines[{l}].line_id"), format!("{l}")));
        pairs.push((
            format!("lines[{l}].sku"),
            format!("SKU-{:06}", rng.below(100)),
        ));
        pairs.push((format!("lines[{l}].qty"), "1".to_owned()));
    }
    Fields::from_pairs(pairs)
}

/// Loads `orders` orders (no stock, so they wait), then times each kind of search
/// `repeats` times through `GET /api/v1/orders`; one JSON line per kind.
pub async fn search(args: SearchArgs) -> anyhow::Result<()> {
    let (store, _dir) = open(args.database_url.as_deref()).await?;
    let (client, _) = catalogue(&store, 100, 1, CLIENT).await?;
    let loading = Instant::now();
    let mut rng = Lcg(7);
    let mut i = 0;
    while i < args.orders {
        let end = (i + LOAD_BATCH).min(args.orders);
        let mut valid = Vec::new();
        for n in i..end {
            valid.push(
                service::orders::validate(&order_fields(n, &mut rng))
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?,
            );
        }
        let batch: Vec<_> = valid.iter().map(|(o, h)| (o, h.as_str())).collect();
        let mut tx = store.begin_write().await?;
        for answer in service::orders::insert_many(tx.conn(), client, &batch, 1)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
        {
            answer.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        tx.commit().await?;
        i = end;
    }
    // Statistics as autovacuum would gather them on PostgreSQL soon after a bulk load, so
    // the plans are those of a book this size rather than of an empty table.
    crate::bench::settle_statistics(&store).await?;
    eprintln!("loaded {} orders in {:?}", args.orders, loading.elapsed());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = AppState::new(store.clone(), Some(TOKEN), Limits::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(oms_app::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    // The oldest order is the worst case for a match: newer rows are passed over first.
    let oldest = 0u64;
    // Stored as `+91 9XXXX XXXXX`; typed with the trunk 0 and no spaces.
    let phone = format!("09{:04}{:05}", oldest / 100_000, oldest % 100_000);
    let queries = [
        ("first_page", String::new()),
        ("status_of_every_order", "status=CREATED".to_owned()),
        ("status_of_none", "status=SHIPPED".to_owned()),
        ("order_code", format!("q=S-{oldest:07}")),
        ("phone_typed_differently", format!("q={phone}")),
        ("customer_name", format!("q=Customer%20{oldest}")),
        ("email", format!("q=c{oldest}@example.in")),
        ("no_match", "q=nobody%20by%20this%20name".to_owned()),
    ];
    for (name, query) in queries {
        let mut times = Vec::with_capacity(args.repeats as usize);
        let mut found = 0;
        for _ in 0..args.repeats {
            let started = Instant::now();
            let response = http
                .get(format!("{base}/api/v1/orders?limit=50&{query}"))
                .bearer_auth(TOKEN)
                .header("X-Client", CLIENT)
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "{name}: {}",
                response.status()
            );
            let page: serde_json::Value = response.json().await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            found = page["items"].as_array().map(Vec::len).unwrap_or(0);
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "{}",
            serde_json::json!({
                "name": format!("search:{name}"),
                "backend": backend_name(&store),
                "orders": args.orders,
                "found": found,
                "ops_per_sec": (1000.0 / at(0.5)).round(),
                "p50_ms": (at(0.5) * 10.0).round() / 10.0,
                "p99_ms": (at(0.99) * 10.0).round() / 10.0,
            })
        );
    }
    let _ = stop.send(());
    server.await??;
    store.close().await;
    Ok(())
}
