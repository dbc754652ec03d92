//! `oms check`: every invariant of DESIGN.md §4 that the data so far can break, verified on
//! the whole database. Balances must equal the replay of the ledger; no bucket is negative
//! and no pool has more allocated than it holds; inward lines keep their arithmetic; no row
//! points at another client's rows.

use std::collections::{BTreeMap, BTreeSet};

use oms_domain::inventory::{Balance, Bucket, Movement, MovementKind, check_balance};
use oms_domain::order::LineCounts;
use oms_domain::settings::ClientSettings;
use oms_store::stock::{self, StockKey};
use oms_store::{Conn, Store, StoreResult, documents, inward, orders};

/// Ledger rows read per query while replaying.
const REPLAY_BATCH_ROWS: i64 = 10_000;

/// What was checked, and every breach found.
#[derive(Debug, Default)]
pub struct Report {
    pub ledger_rows: u64,
    pub keys: u64,
    pub inward_lines: u64,
    pub order_lines: u64,
    pub breaches: Vec<String>,
}

fn key_name(key: &StockKey) -> String {
    format!(
        "client {} warehouse {} sku {}",
        key.client.0, key.warehouse, key.sku
    )
}

/// Runs every check; a breach is a finding, not an error.
pub async fn run(store: &Store) -> StoreResult<Report> {
    // One snapshot for every table, so a server writing beside the check cannot make the
    // tables disagree with each other mid-check.
    let mut tx = store.begin_snapshot().await?;
    run_in(tx.conn()).await
}

async fn run_in(conn: &mut Conn) -> StoreResult<Report> {
    let mut report = Report::default();
    let replayed = replay(&mut *conn, &mut report).await?;
    compare_balances(&mut *conn, &replayed, &mut report).await?;
    check_inward_lines(&mut *conn, &mut report).await?;
    check_order_lines(&mut *conn, &mut report).await?;
    check_allocated_stock(&mut *conn, &mut report).await?;
    check_invoices(&mut *conn, &mut report).await?;
    report
        .breaches
        .extend(stock::foreign_client_rows(&mut *conn).await?);
    Ok(report)
}

/// Replays the whole ledger, key by key, in id order.
async fn replay(conn: &mut Conn, report: &mut Report) -> StoreResult<BTreeMap<StockKey, Balance>> {
    let mut balances: BTreeMap<StockKey, Balance> = BTreeMap::new();
    let mut after = 0;
    loop {
        let rows = stock::ledger_batch(&mut *conn, after, REPLAY_BATCH_ROWS).await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for row in rows {
            report.ledger_rows += 1;
            let movement = parse_movement(&row.kind, &row.from_bucket, &row.to_bucket, row.qty);
            let movement = match movement {
                Ok(movement) => movement,
                Err(problem) => {
                    report
                        .breaches
                        .push(format!("ledger row {}: {problem}", row.id));
                    continue;
                }
            };
            let balance = balances.entry(row.key).or_default();
            if let Err(e) = balance.apply(&movement) {
                report.breaches.push(format!(
                    "ledger row {} at {} cannot be replayed: {e}",
                    row.id,
                    key_name(&row.key)
                ));
            }
        }
    }
    Ok(balances)
}

fn parse_movement(kind: &str, from: &str, to: &str, qty: i64) -> Result<Movement, String> {
    let kind: MovementKind = kind.parse().map_err(|e| format!("{e}"))?;
    let from: Bucket = from.parse().map_err(|e| format!("{e}"))?;
    let to: Bucket = to.parse().map_err(|e| format!("{e}"))?;
    Movement::new(kind, from, to, qty).map_err(|e| e.to_string())
}

/// Stored balances against the replay, and the bucket rules on what is stored.
async fn compare_balances(
    conn: &mut Conn,
    replayed: &BTreeMap<StockKey, Balance>,
    report: &mut Report,
) -> StoreResult<()> {
    let mut stored_rows: BTreeMap<StockKey, Vec<(Bucket, i64)>> = BTreeMap::new();
    for (key, bucket, qty) in stock::all_buckets(&mut *conn).await? {
        match bucket.parse::<Bucket>() {
            Ok(bucket) => stored_rows.entry(key).or_default().push((bucket, qty)),
            Err(e) => report
                .breaches
                .push(format!("stock row at {}: {e}", key_name(&key))),
        }
    }
    let keys: BTreeSet<StockKey> = stored_rows.keys().chain(replayed.keys()).copied().collect();
    report.keys = keys.len() as u64;
    let empty = Balance::default();
    for key in keys {
        let stored = Balance::from_buckets(stored_rows.remove(&key).unwrap_or_default());
        for breach in check_balance(&stored) {
            report
                .breaches
                .push(format!("{}: {breach}", key_name(&key)));
        }
        let replay = replayed.get(&key).unwrap_or(&empty);
        if &stored != replay {
            report.breaches.push(format!(
                "{}: stored balance {stored:?} differs from the ledger's replay {replay:?}",
                key_name(&key)
            ));
        }
    }
    Ok(())
}

async fn check_inward_lines(conn: &mut Conn, report: &mut Report) -> StoreResult<()> {
    let mut excess_of: BTreeMap<String, bool> = BTreeMap::new();
    for (settings, order_code, sku, line) in inward::all_lines(&mut *conn).await? {
        report.inward_lines += 1;
        let excess_allowed = *excess_of.entry(settings.clone()).or_insert_with(|| {
            serde_json::from_str::<ClientSettings>(&settings)
                .map(|s| s.excess_grn_allowed)
                .unwrap_or(false)
        });
        for breach in line.breaches(excess_allowed) {
            report
                .breaches
                .push(format!("inward order {order_code} line {sku}: {breach}"));
        }
    }
    Ok(())
}

/// DESIGN §4 item 4: every order line's counts are ≥ 0 and add up to what was ordered, and
/// its allocated count equals its live allocations.
async fn check_order_lines(conn: &mut Conn, report: &mut Report) -> StoreResult<()> {
    let live = orders::live_allocated_by_line(&mut *conn).await?;
    for (order_code, line_id, id, ordered, allocated, shipped, cancelled) in
        orders::all_line_counts(&mut *conn).await?
    {
        report.order_lines += 1;
        let counts = LineCounts {
            ordered,
            allocated,
            shipped,
            cancelled,
        };
        for breach in counts.breaches() {
            report
                .breaches
                .push(format!("order {order_code} line {line_id}: {breach}"));
        }
        let bound = live.get(&id).copied().unwrap_or(0);
        if bound != allocated {
            report.breaches.push(format!(
                "order {order_code} line {line_id}: allocated {allocated} but its live allocations hold {bound}"
            ));
        }
    }
    Ok(())
}

/// Invoice numbers run 1..=last per client with no gap and no repeat, and a shipment has an
/// invoice exactly when it was packed.
async fn check_invoices(conn: &mut Conn, report: &mut Report) -> StoreResult<()> {
    for (client, last, numbers) in documents::invoice_numbers(&mut *conn).await? {
        let expected: Vec<i64> = (1..=last.unwrap_or(0)).collect();
        if numbers != expected {
            report.breaches.push(format!(
                "client {client}: invoice numbers are not 1..={} without gaps: {} issued",
                last.unwrap_or(0),
                numbers.len()
            ));
        }
    }
    for (shipment, status) in documents::invoice_mismatches(&mut *conn).await? {
        report.breaches.push(format!(
            "shipment {shipment} is {status} and its invoice disagrees (packed ⇔ invoiced)"
        ));
    }
    Ok(())
}

/// DESIGN §4 item 3: the allocated buckets at every key equal the live allocations there.
async fn check_allocated_stock(conn: &mut Conn, report: &mut Report) -> StoreResult<()> {
    let mut expected: BTreeMap<(StockKey, String), i64> = BTreeMap::new();
    for (client, warehouse, sku, bucket, qty) in orders::live_allocations(&mut *conn).await? {
        let stock_bucket = match bucket.strip_prefix("BAD:") {
            Some(reason) => format!("ALLOCATED_BAD:{reason}"),
            None => format!("ALLOCATED:{bucket}"),
        };
        expected.insert(
            (
                StockKey {
                    client,
                    warehouse,
                    sku,
                },
                stock_bucket,
            ),
            qty,
        );
    }
    let mut stored: BTreeMap<(StockKey, String), i64> = BTreeMap::new();
    for (key, bucket, qty) in stock::all_buckets(&mut *conn).await? {
        if bucket.starts_with("ALLOCATED") && qty != 0 {
            stored.insert((key, bucket), qty);
        }
    }
    let keys: BTreeSet<&(StockKey, String)> = expected.keys().chain(stored.keys()).collect();
    for key in keys {
        let (want, have) = (
            expected.get(key).copied().unwrap_or(0),
            stored.get(key).copied().unwrap_or(0),
        );
        if want != have {
            report.breaches.push(format!(
                "{} {}: stock holds {have} allocated, live allocations {want}",
                key_name(&key.0),
                key.1
            ));
        }
    }
    Ok(())
}
