//! Times `plan_allocation` over a client-sized batch: 10,000 SKUs × 5 warehouses of stock
//! (COMMON plus one channel pool) and 100,000 open order lines in ~33,000 orders.
//!
//! Run: `cargo bench -p oms-domain --bench allocation`. Prints figures; asserts nothing
//! about time. Randomness is a fixed LCG, so every run plans the same batch.

use std::time::{Duration, Instant};

use oms_domain::allocation::{
    Demand, DemandLine, FulfilmentType, Place, StockSnapshot, StockSource, Warehouse,
    plan_allocation,
};
use oms_domain::settings::{Routing, RoutingStrategy};

const SKUS: i64 = 10_000;
const LINES: usize = 100_000;
const REPETITIONS: usize = 9;
const CHANNEL_POOL: &str = "MYNTRA";
const COMMON: &str = "COMMON";

/// Knuth's MMIX LCG; the high bits are the usable ones.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * (self.below(1 << 24) as f64 / (1u64 << 24) as f64)
    }
}

fn warehouses() -> Vec<Warehouse> {
    let sites = [
        (1, "BLR1", 12.97, 77.59, "560001", 3),
        (2, "DEL1", 28.61, 77.21, "110001", 2),
        (3, "BOM1", 19.08, 72.88, "400001", 2),
        (4, "MAA1", 13.08, 80.27, "600001", 1),
        (5, "CCU1", 22.57, 88.36, "700001", 1),
    ];
    sites
        .into_iter()
        .map(|(id, code, lat, lon, pincode, priority)| Warehouse {
            id,
            code: code.to_owned(),
            place: Place {
                lat: Some(lat),
                lon: Some(lon),
                pincode: Some(pincode.to_owned()),
            },
            priority,
        })
        .collect()
}

fn stock(rng: &mut Lcg, warehouses: &[Warehouse]) -> StockSnapshot {
    let mut stock = StockSnapshot::default();
    for warehouse in warehouses {
        for sku in 1..=SKUS {
            let common = rng.below(12) as i64;
            let channel = rng.below(6) as i64;
            stock
                .available
                .insert((warehouse.id, sku, COMMON.to_owned()), common);
            stock
                .available
                .insert((warehouse.id, sku, CHANNEL_POOL.to_owned()), channel);
        }
    }
    stock
}

fn demands(rng: &mut Lcg, warehouses: &[Warehouse]) -> Vec<Demand> {
    let mut demands = Vec::new();
    let mut lines = 0;
    let mut line_id = 0;
    while lines < LINES {
        let order_id = demands.len() as i64 + 1;
        let fulfilment = match rng.below(100) {
            0..60 => FulfilmentType::MultiShipmentPartial,
            60..85 => FulfilmentType::SingleShipmentPartial,
            _ => FulfilmentType::BlockComplete,
        };
        let pools = if rng.chance(50) {
            vec![CHANNEL_POOL.to_owned(), COMMON.to_owned()]
        } else {
            vec![COMMON.to_owned()]
        };
        let ship_to = if rng.chance(90) {
            Place {
                lat: Some(rng.between(8.0, 32.0)),
                lon: Some(rng.between(70.0, 92.0)),
                pincode: None,
            }
        } else {
            Place {
                lat: None,
                lon: None,
                pincode: Some(format!("{}", 110_000 + rng.below(700_000))),
            }
        };
        let pick = |rng: &mut Lcg| warehouses[rng.below(warehouses.len() as u64) as usize].id;
        let fixed_warehouse = rng.chance(3).then(|| pick(rng));
        let used_warehouses = if rng.chance(5) {
            vec![pick(rng)]
        } else {
            Vec::new()
        };
        let count = (1 + rng.below(5) as usize).min(LINES - lines);
        let order_lines = (0..count)
            .map(|_| {
                line_id += 1;
                DemandLine {
                    line_id,
                    sku: 1 + rng.below(SKUS as u64) as i64,
                    open: 1 + rng.below(3) as i64,
                }
            })
            .collect();
        lines += count;
        demands.push(Demand {
            order_id,
            seq: order_id,
            dispatch_by: rng
                .chance(90)
                .then(|| 1_800_000_000_000_000 + rng.below(3 * 86_400) as i64 * 1_000_000),
            priority: rng.below(3) as i64,
            fulfilment,
            fixed_warehouse,
            pools,
            source: StockSource::Good,
            ship_to: Some(ship_to),
            used_warehouses,
            lines: order_lines,
        });
    }
    demands
}

fn main() {
    let mut rng = Lcg(0x0A11_0CA7_10B5_EED5);
    let warehouses = warehouses();
    let stock = stock(&mut rng, &warehouses);
    let demands = demands(&mut rng, &warehouses);
    let lines: usize = demands.iter().map(|d| d.lines.len()).sum();
    let open: i64 = demands.iter().flat_map(|d| &d.lines).map(|l| l.open).sum();
    println!(
        "batch: {} orders, {lines} lines, {open} open units; stock: {} entries",
        demands.len(),
        stock.available.len()
    );
    for strategy in [
        RoutingStrategy::MinimizeShipments,
        RoutingStrategy::MinimizeDistance,
    ] {
        let routing = Routing {
            strategy,
            max_splits: 3,
        };
        let mut times: Vec<Duration> = Vec::with_capacity(REPETITIONS);
        let mut summary = String::new();
        for _ in 0..REPETITIONS {
            let mut snapshot = stock.clone();
            let started = Instant::now();
            let plan = plan_allocation(&demands, &mut snapshot, &warehouses, &routing);
            times.push(started.elapsed());
            let allocated: i64 = plan
                .orders
                .iter()
                .flat_map(|o| &o.allocations)
                .map(|a| a.qty)
                .sum();
            let allocations: usize = plan.orders.iter().map(|o| o.allocations.len()).sum();
            let short: i64 = plan
                .orders
                .iter()
                .flat_map(|o| &o.short_closed)
                .map(|s| s.1)
                .sum();
            let trace_rows: usize = plan.orders.iter().map(|o| o.trace.considered.len()).sum();
            summary = format!(
                "{allocated} units allocated in {allocations} allocations, {short} closed short, \
                 {trace_rows} trace rows"
            );
            // The plan is dropped here, outside the timed part.
        }
        times.sort();
        let best = times[0];
        let median = times[times.len() / 2];
        let rate = |time: Duration| lines as f64 / time.as_secs_f64();
        println!("{strategy:?}: {summary}");
        println!(
            "  best {:.2} ms ({:.2} M lines/s), median {:.2} ms ({:.2} M lines/s) over {REPETITIONS} runs",
            best.as_secs_f64() * 1e3,
            rate(best) / 1e6,
            median.as_secs_f64() * 1e3,
            rate(median) / 1e6,
        );
    }
}
