//! Model-based test of the service layer (issue #8). Random operation sequences — B2C
//! orders of every fulfilment type over a few contended SKUs, B2B sales orders, stock
//! transfers and RTO orders drawing bad stock, inward orders with GRN and QC, restocks,
//! lost and found, pool movements, absolute counts, allocation passes of all three kinds,
//! seller cancellations, WMS status updates up to delivery or RTO — run against the real
//! OMS over HTTP and against a plain in-memory model of DESIGN.md §4–§5 written here. After
//! every step the OMS's balances, the touched orders (lines, status, shipments with their
//! pools) and `oms check` must agree with the model.
//!
//! The server runs without its background workers, so allocation happens only at the steps
//! that ask for it, and the model mirrors the documented allocation rules exactly (two
//! warehouses, pincode distances, both routing strategies, `max_splits` 1 or 2).
//!
//! - short form (CI): 20 sequences × 60 steps per backend;
//! - long form: `OMS_MODEL_CASES=500 ./scripts/test -E 'test(/model::/)'` (`OMS_MODEL_STEPS`
//!   sets the steps per sequence);
//! - replay: a failure prints its seed; `OMS_MODEL_SEED=<seed> ./scripts/test -E
//!   'test(/model::.*sqlite/)'` runs that one sequence again, step for step, and
//!   `OMS_MODEL_TRACE=1` prints each operation with the OMS's answer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Db, TestApp};

const CASES_DEFAULT: u64 = 20;
const STEPS_DEFAULT: usize = 60;
/// Sequences sharing one database before the next gets a fresh one (`oms check` reads the
/// whole database after every step, so it must stay small).
const SEQUENCES_PER_DATABASE: u64 = 10;
const BASE_SEED: u64 = 0x0005_eed0_0000;

const SKUS: [&str; 4] = ["S1", "S2", "S3", "S4"];
/// Zipf-ish: S1 is asked for eight times as often as S4, so stock is contended.
const SKU_WEIGHTS: [u64; 4] = [8, 4, 2, 1];
/// `AMZ` orders draw pool `MKT` before `COMMON`; `WEB` and `B2B` orders draw `COMMON`
/// only. B2C orders come from the first two.
const CHANNELS: [&str; 3] = ["AMZ", "WEB", "B2B"];
const B2C_CHANNELS: usize = 2;
const POOL: &str = "MKT";
const COMMON: &str = "COMMON";
const WAREHOUSE_PINCODES: [u64; 2] = [560_001, 110_001];
/// 335001 is as far from one warehouse as from the other: their priorities decide.
const SHIP_PINCODES: [u64; 5] = [560_001, 560_100, 110_001, 400_001, 335_001];
const FAIL_REASONS: [&str; 2] = ["DAMAGED", "EXPIRED"];

// ---------------------------------------------------------------------------------------
// Seeded randomness

/// SplitMix64: small, seedable, and the same sequence on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn range(&mut self, low: i64, high: i64) -> i64 {
        let span = u64::try_from(high - low + 1).expect("a non-empty range");
        low + i64::try_from(self.next() % span).expect("fits")
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("fits")
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn weighted(&mut self, weights: &[u64]) -> usize {
        let mut pick = self.next() % weights.iter().sum::<u64>();
        for (index, weight) in weights.iter().enumerate() {
            if pick < *weight {
                return index;
            }
            pick -= weight;
        }
        unreachable!("the pick is below the total weight")
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------
// The model

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fulfilment {
    BlockComplete,
    MultiShipmentPartial,
    SingleShipmentPartial,
}

const FULFILMENTS: [Fulfilment; 3] = [
    Fulfilment::BlockComplete,
    Fulfilment::MultiShipmentPartial,
    Fulfilment::SingleShipmentPartial,
];

impl Fulfilment {
    fn code(self) -> &'static str {
        match self {
            Fulfilment::BlockComplete => "BLOCK_COMPLETE",
            Fulfilment::MultiShipmentPartial => "MULTI_SHIPMENT_PARTIAL",
            Fulfilment::SingleShipmentPartial => "SINGLE_SHIPMENT_PARTIAL",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    B2c,
    /// A B2B sales order: ships from the warehouse it names.
    So,
    /// A stock transfer: ships from its warehouse to its destination's inward.
    St,
    /// Return to a supplier: draws bad stock (`stock: BAD`) at its warehouse.
    Rto,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::B2c => "B2C",
            Kind::So => "SO",
            Kind::St => "ST",
            Kind::Rto => "RTO",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Released,
    Picked,
    Packed,
    Shipped,
    Delivered,
    Rto,
    Cancelled,
}

impl Status {
    fn code(self) -> &'static str {
        match self {
            Status::Released => "RELEASED",
            Status::Picked => "PICKED",
            Status::Packed => "PACKED",
            Status::Shipped => "SHIPPED",
            Status::Delivered => "DELIVERED",
            Status::Rto => "RTO",
            Status::Cancelled => "CANCELLED",
        }
    }

    /// The status a WMS update to `self` must come from.
    fn required_before(self) -> Option<Status> {
        match self {
            Status::Picked => Some(Status::Released),
            Status::Packed => Some(Status::Picked),
            Status::Shipped => Some(Status::Packed),
            Status::Delivered | Status::Rto => Some(Status::Shipped),
            Status::Released | Status::Cancelled => None,
        }
    }
}

/// One pool at one key: good units and the part of them allocated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PoolStock {
    qty: i64,
    allocated: i64,
}

/// The buckets of one (warehouse, sku).
#[derive(Debug, Clone, Default)]
struct Balance {
    qc_pending: i64,
    /// Bad units not reserved, per reason.
    bad: BTreeMap<String, i64>,
    /// Bad units reserved by RTO orders, per reason (not shown by `GET /inventory`).
    allocated_bad: BTreeMap<String, i64>,
    lost: i64,
    shipped: i64,
    pools: BTreeMap<String, PoolStock>,
}

impl Balance {
    fn available(&self, pool: &str) -> i64 {
        self.pools.get(pool).map_or(0, |p| p.qty - p.allocated)
    }

    fn pool(&mut self, pool: &str) -> &mut PoolStock {
        self.pools.entry(pool.to_owned()).or_default()
    }

    fn good(&self) -> i64 {
        self.pools.values().map(|p| p.qty).sum()
    }

    /// Units an order may still take from `bucket`: a pool's available units, or the
    /// unreserved bad units of `BAD:<reason>`.
    fn allocatable(&self, bucket: &str) -> i64 {
        match bucket.strip_prefix("BAD:") {
            Some(reason) => self.bad.get(reason).copied().unwrap_or(0),
            None => self.available(bucket),
        }
    }

    /// Binds (`units` > 0) or frees (`units` < 0) units of `bucket`.
    fn reserve(&mut self, bucket: &str, units: i64) {
        match bucket.strip_prefix("BAD:") {
            Some(reason) => {
                *self.bad.entry(reason.to_owned()).or_default() -= units;
                *self.allocated_bad.entry(reason.to_owned()).or_default() += units;
            }
            None => self.pool(bucket).allocated += units,
        }
    }

    /// Bound units of `bucket` leave the warehouse.
    fn ship(&mut self, bucket: &str, units: i64) {
        match bucket.strip_prefix("BAD:") {
            Some(reason) => *self.allocated_bad.entry(reason.to_owned()).or_default() -= units,
            None => {
                let pool = self.pool(bucket);
                pool.allocated -= units;
                pool.qty -= units;
            }
        }
        self.shipped += units;
    }

    fn allocated(&self) -> i64 {
        self.pools.values().map(|p| p.allocated).sum()
    }

    /// The row `GET /inventory` shows for this key.
    fn json(&self, warehouse: &str, sku: &str) -> Value {
        let bad: BTreeMap<&String, &i64> = self.bad.iter().filter(|(_, q)| **q != 0).collect();
        let pools: Vec<Value> = self
            .pools
            .iter()
            .filter(|(_, p)| p.qty != 0 || p.allocated != 0)
            .map(|(name, p)| json!({"pool": name, "qty": p.qty, "allocated": p.allocated, "available": p.qty - p.allocated}))
            .collect();
        json!({
            "warehouse": warehouse, "sku": sku, "qc_pending": self.qc_pending,
            "good": self.good(), "bad": self.bad.values().sum::<i64>(), "bad_by_reason": bad,
            "allocated_bad": self.allocated_bad.values().sum::<i64>(),
            "lost": self.lost, "shipped": self.shipped, "allocated": self.allocated(),
            "available": self.good() - self.allocated(), "pools": pools,
        })
    }
}

#[derive(Debug, Clone)]
struct Line {
    sku: usize,
    ordered: i64,
    allocated: i64,
    shipped: i64,
    cancelled: i64,
}

impl Line {
    fn open(&self) -> i64 {
        self.ordered - self.allocated - self.shipped - self.cancelled
    }
}

/// A new B2C order as generated.
#[derive(Debug, Clone)]
struct OrderSpec {
    kind: Kind,
    /// A stock transfer's destination warehouse.
    destination: Option<usize>,
    channel: usize,
    fulfilment: Fulfilment,
    auto_retry: bool,
    /// Hours after a fixed instant; `None` sorts after every SLA.
    dispatch_by: Option<i64>,
    priority: i64,
    ship_pincode: u64,
    /// The warehouse the order names, if any (else it is routed).
    warehouse: Option<usize>,
    /// (sku, qty) per line.
    lines: Vec<(usize, i64)>,
}

#[derive(Debug, Clone)]
struct Order {
    code: String,
    spec: OrderSpec,
    lines: Vec<Line>,
    body: Value,
}

/// Units of one line bound to one pool, in one shipment (an allocation row).
#[derive(Debug, Clone)]
struct Allocation {
    /// Creation order: the OMS's allocation ids follow it.
    seq: u64,
    line: usize,
    pool: String,
    qty: i64,
}

#[derive(Debug, Clone)]
struct Shipment {
    /// The OMS's id, learnt from the order once it exists.
    id: Option<i64>,
    order: usize,
    warehouse: usize,
    status: Status,
    allocations: Vec<Allocation>,
}

#[derive(Debug, Clone)]
struct InwardLine {
    sku: usize,
    ordered: i64,
    received: i64,
    /// Passed, failed or lost in QC.
    checked: i64,
}

#[derive(Debug, Clone)]
struct Inward {
    code: String,
    warehouse: usize,
    lines: Vec<InwardLine>,
    /// No more GRN or QC (409): a transfer's transit order once the transfer came back.
    closed: bool,
}

impl Inward {
    /// The OMS's own inward orders: `units` per SKU, all received when `received` is 1
    /// (an RTO), none when 0 (a transfer in transit).
    fn expected(
        code: &str,
        warehouse: usize,
        units: &BTreeMap<usize, i64>,
        received: i64,
    ) -> Inward {
        Inward {
            code: code.to_owned(),
            warehouse,
            lines: units
                .iter()
                .map(|(sku, qty)| InwardLine {
                    sku: *sku,
                    ordered: *qty,
                    received: qty * received,
                    checked: 0,
                })
                .collect(),
            closed: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum PassScope {
    /// `POST /orders/{code}/allocate` and creation: one order, whatever its retry.
    One(usize),
    /// `POST /allocation/run`: every open order.
    AllOpen,
    /// The allocator's round: open orders with `retry = AUTO`.
    AutoRetry,
}

struct Model {
    warehouses: [String; 2],
    warehouse_priority: [i64; 2],
    minimize_distance: bool,
    max_splits: usize,
    stock: BTreeMap<(usize, usize), Balance>,
    orders: Vec<Order>,
    shipments: Vec<Shipment>,
    inwards: Vec<Inward>,
    allocation_seq: u64,
    /// Every unit any pass bound, for the run's tally.
    units_allocated: i64,
    /// Of those, bad units bound to RTO orders.
    bad_units_allocated: i64,
    /// Units of stock transfers received at their destination.
    transfer_units_received: i64,
    /// Returns of transfers the destination had received from, refused.
    transfer_returns_refused: i64,
}

/// What an operation is expected to answer, and which orders it changes.
struct Expect {
    status: StatusCode,
    touched: BTreeSet<usize>,
    units_allocated: Option<i64>,
}

impl Expect {
    fn refused(status: StatusCode) -> Expect {
        Expect {
            status,
            touched: BTreeSet::new(),
            units_allocated: None,
        }
    }

    fn ok(touched: impl IntoIterator<Item = usize>) -> Expect {
        Expect {
            status: StatusCode::OK,
            touched: touched.into_iter().collect(),
            units_allocated: None,
        }
    }
}

/// Where a guarded movement takes units from or puts them.
#[derive(Debug, Clone, Copy)]
enum Spot {
    Available(&'static str),
    Lost,
}

impl Model {
    /// Moves `qty` units at one key when the source holds them; otherwise the OMS refuses
    /// with 409 and nothing moves (lost, found, pool movements).
    fn guarded_move(
        &mut self,
        warehouse: usize,
        sku: usize,
        from: Spot,
        to: Spot,
        qty: i64,
    ) -> Expect {
        let balance = self.balance(warehouse, sku);
        let holds = match from {
            Spot::Available(pool) => balance.available(pool),
            Spot::Lost => balance.lost,
        };
        if holds < qty {
            return Expect::refused(StatusCode::CONFLICT);
        }
        for (spot, units) in [(from, -qty), (to, qty)] {
            match spot {
                Spot::Available(pool) => balance.pool(pool).qty += units,
                Spot::Lost => balance.lost += units,
            }
        }
        Expect::ok([])
    }

    fn balance(&mut self, warehouse: usize, sku: usize) -> &mut Balance {
        self.stock.entry((warehouse, sku)).or_default()
    }

    /// The buckets an order draws, in order: its channel's pools then `COMMON`, or for an
    /// RTO order the bad reasons in name order.
    fn buckets_of(order: &OrderSpec) -> Vec<String> {
        let names: &[&str] = if order.kind == Kind::Rto {
            &["BAD:DAMAGED", "BAD:EXPIRED"]
        } else if CHANNELS[order.channel] == "AMZ" {
            &[POOL, COMMON]
        } else {
            &[COMMON]
        };
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn allocatable(&self, warehouse: usize, sku: usize, bucket: &str) -> i64 {
        self.stock
            .get(&(warehouse, sku))
            .map_or(0, |b| b.allocatable(bucket))
    }

    /// DESIGN.md §5's status from the lines and the shipments that left.
    fn order_status(&self, order: usize) -> &'static str {
        let lines = &self.orders[order].lines;
        let sum = |f: fn(&Line) -> i64| lines.iter().map(f).sum::<i64>();
        let (ordered, allocated, shipped, cancelled) = (
            sum(|l| l.ordered),
            sum(|l| l.allocated),
            sum(|l| l.shipped),
            sum(|l| l.cancelled),
        );
        let open = ordered - allocated - shipped - cancelled;
        let left: Vec<Status> = self
            .shipments
            .iter()
            .filter(|s| s.order == order)
            .map(|s| s.status)
            .filter(|s| matches!(s, Status::Shipped | Status::Delivered | Status::Rto))
            .collect();
        let delivered = !left.is_empty() && left.iter().all(|s| *s == Status::Delivered);
        if cancelled == ordered {
            "CANCELLED"
        } else if open == 0 && allocated == 0 {
            if delivered { "DELIVERED" } else { "SHIPPED" }
        } else if shipped > 0 {
            "PARTIALLY_SHIPPED"
        } else if open == 0 {
            "RELEASED"
        } else if allocated > 0 {
            "PARTIALLY_ALLOCATED"
        } else {
            "UNFULFILLABLE"
        }
    }

    // ---- allocation: the rules of DESIGN.md §5 and `oms_domain::allocation`'s header ----

    /// One pass; answers the units allocated and the orders it changed.
    fn pass(&mut self, scope: PassScope) -> (i64, BTreeSet<usize>) {
        let mut candidates: Vec<usize> = match scope {
            PassScope::One(order) => vec![order],
            PassScope::AllOpen => (0..self.orders.len()).collect(),
            PassScope::AutoRetry => (0..self.orders.len())
                .filter(|o| self.orders[*o].spec.auto_retry)
                .collect(),
        };
        candidates.retain(|o| self.orders[*o].lines.iter().any(|l| l.open() > 0));
        // Earliest SLA (none last), then higher priority, then older.
        candidates.sort_by_key(|o| {
            let order = &self.orders[*o].spec;
            (
                order.dispatch_by.is_none(),
                order.dispatch_by,
                std::cmp::Reverse(order.priority),
                *o,
            )
        });
        let mut units = 0;
        let mut touched = BTreeSet::new();
        for order in candidates {
            let taken = self.allocate_order(order);
            if taken > 0 {
                touched.insert(order);
            }
            units += taken;
        }
        (units, touched)
    }

    fn distance(&self, order: usize, warehouse: usize) -> u64 {
        self.orders[order]
            .spec
            .ship_pincode
            .abs_diff(WAREHOUSE_PINCODES[warehouse])
    }

    /// Plans and applies one order against the model's stock; answers the units allocated
    /// (a single-shipment order may also close quantity short).
    fn allocate_order(&mut self, o: usize) -> i64 {
        let order = self.orders[o].spec.clone();
        let order_lines = self.orders[o].lines.clone();
        let pools = Self::buckets_of(&order);
        // Slots: the open lines grouped by SKU, in the order each SKU first appears.
        let mut slots: Vec<(usize, Vec<usize>, i64)> = Vec::new();
        for (index, line) in order_lines.iter().enumerate() {
            if line.open() <= 0 {
                continue;
            }
            match slots.iter_mut().find(|s| s.0 == line.sku) {
                Some(slot) => {
                    slot.1.push(index);
                    slot.2 += line.open();
                }
                None => slots.push((line.sku, vec![index], line.open())),
            }
        }
        let open: i64 = slots.iter().map(|s| s.2).sum();
        if open == 0 {
            return 0;
        }
        let warehouses: Vec<usize> = match order.warehouse {
            Some(w) => vec![w],
            None => vec![0, 1],
        };
        let mut used = [false; 2];
        for s in self
            .shipments
            .iter()
            .filter(|s| s.order == o && s.status != Status::Cancelled)
        {
            used[s.warehouse] = true;
        }
        let mut splits_left = self
            .max_splits
            .saturating_sub(used.iter().filter(|u| **u).count());
        let mut preference = warehouses.clone();
        preference.sort_by_key(|w| {
            (
                self.distance(o, *w),
                std::cmp::Reverse(self.warehouse_priority[*w]),
                *w,
            )
        });
        let units: Vec<[i64; 2]> = slots
            .iter()
            .map(|(sku, _, _)| {
                let mut per = [0; 2];
                for w in &warehouses {
                    per[*w] = pools
                        .iter()
                        .map(|p| self.allocatable(*w, *sku, p).max(0))
                        .sum();
                }
                per
            })
            .collect();
        let mut remaining: Vec<i64> = slots.iter().map(|s| s.2).collect();
        let cover = |remaining: &[i64], w: usize| -> i64 {
            remaining
                .iter()
                .zip(&units)
                .map(|(r, u)| (*r).min(u[w]))
                .sum()
        };
        let available_at_start: Vec<i64> = (0..2).map(|w| cover(&remaining, w)).collect();
        let mut chosen: Vec<usize> = Vec::new();
        let mut take: Vec<[i64; 2]> = vec![[0; 2]; slots.len()];
        let choose = |w: usize,
                      remaining: &mut [i64],
                      take: &mut [[i64; 2]],
                      chosen: &mut Vec<usize>,
                      used: &mut [bool; 2],
                      splits_left: &mut usize| {
            for (row, r) in remaining.iter_mut().enumerate() {
                let t = (*r).min(units[row][w]);
                take[row][w] = t;
                *r -= t;
            }
            if !used[w] {
                used[w] = true;
                *splits_left -= 1;
            }
            chosen.push(w);
        };
        let best = |remaining: &[i64], chosen: &[usize], used: &[bool; 2], splits_left: usize| {
            let mut best: Option<(usize, i64)> = None;
            for w in &preference {
                if chosen.contains(w) || !(used[*w] || splits_left > 0) {
                    continue;
                }
                let units = cover(remaining, *w);
                if units > 0 && best.is_none_or(|(_, b)| units > b) {
                    best = Some((*w, units));
                }
            }
            best
        };
        if order.fulfilment == Fulfilment::SingleShipmentPartial {
            if let Some((w, _)) = best(&remaining, &chosen, &used, splits_left) {
                choose(
                    w,
                    &mut remaining,
                    &mut take,
                    &mut chosen,
                    &mut used,
                    &mut splits_left,
                );
            }
        } else if !self.minimize_distance {
            while remaining.iter().sum::<i64>() > 0 {
                let Some((w, _)) = best(&remaining, &chosen, &used, splits_left) else {
                    break;
                };
                choose(
                    w,
                    &mut remaining,
                    &mut take,
                    &mut chosen,
                    &mut used,
                    &mut splits_left,
                );
            }
        } else {
            for w in preference.clone() {
                if available_at_start[w] == 0
                    || remaining.iter().sum::<i64>() == 0
                    || cover(&remaining, w) == 0
                    || !(used[w] || splits_left > 0)
                {
                    continue;
                }
                choose(
                    w,
                    &mut remaining,
                    &mut take,
                    &mut chosen,
                    &mut used,
                    &mut splits_left,
                );
            }
        }
        let covered = open - remaining.iter().sum::<i64>();
        let commit =
            covered > 0 && (order.fulfilment != Fulfilment::BlockComplete || covered == open);
        if !commit {
            return 0;
        }
        // Bind the units: per chosen warehouse, per slot, lines in order, pools in order.
        let mut line_remaining: Vec<i64> = order_lines.iter().map(Line::open).collect();
        for w in &chosen {
            let mut allocations = Vec::new();
            for (row, (sku, lines, _)) in slots.iter().enumerate() {
                let mut left = take[row][*w];
                if left == 0 {
                    continue;
                }
                let mut cells: Vec<(&str, i64)> = pools
                    .iter()
                    .map(|p| (p.as_str(), self.allocatable(*w, *sku, p)))
                    .filter(|(_, q)| *q > 0)
                    .collect();
                let mut cell = 0;
                for line in lines {
                    let mut need = line_remaining[*line].min(left);
                    line_remaining[*line] -= need;
                    left -= need;
                    while need > 0 {
                        let (pool, units) = cells[cell];
                        let t = need.min(units);
                        cells[cell].1 -= t;
                        need -= t;
                        self.balance(*w, *sku).reserve(pool, t);
                        if pool.starts_with("BAD:") {
                            self.bad_units_allocated += t;
                        }
                        self.orders[o].lines[*line].allocated += t;
                        self.allocation_seq += 1;
                        allocations.push(Allocation {
                            seq: self.allocation_seq,
                            line: *line,
                            pool: pool.to_owned(),
                            qty: t,
                        });
                        if cells[cell].1 == 0 {
                            cell += 1;
                        }
                    }
                    if left == 0 {
                        break;
                    }
                }
            }
            if !allocations.is_empty() {
                self.shipments.push(Shipment {
                    id: None,
                    order: o,
                    warehouse: *w,
                    status: Status::Released,
                    allocations,
                });
            }
        }
        if order.fulfilment == Fulfilment::SingleShipmentPartial && covered < open {
            for (line, left) in line_remaining.iter().enumerate() {
                if *left > 0 {
                    self.orders[o].lines[line].cancelled += left;
                }
            }
        }
        self.units_allocated += covered;
        covered
    }

    // ---- seller cancellation ----

    /// The allocations of `line` in RELEASED shipments, in the order a cancellation takes
    /// them: newest shipment first, then newest allocation.
    fn unpicked(&self, order: usize, line: usize) -> Vec<(usize, usize)> {
        let mut found: Vec<(i64, u64, usize, usize)> = Vec::new();
        for (s, shipment) in self.shipments.iter().enumerate() {
            if shipment.order != order || shipment.status != Status::Released {
                continue;
            }
            for (a, allocation) in shipment.allocations.iter().enumerate() {
                if allocation.line == line {
                    let id = shipment
                        .id
                        .expect("shipment ids are learnt after each step");
                    found.push((id, allocation.seq, s, a));
                }
            }
        }
        found.sort_by_key(|(id, seq, _, _)| std::cmp::Reverse((*id, *seq)));
        found.into_iter().map(|(_, _, s, a)| (s, a)).collect()
    }

    fn cancellable(&self, order: usize, line: usize) -> i64 {
        self.orders[order].lines[line].open()
            + self
                .unpicked(order, line)
                .iter()
                .map(|(s, a)| self.shipments[*s].allocations[*a].qty)
                .sum::<i64>()
    }

    fn cancel(&mut self, order: usize, request: Option<&[(usize, i64)]>) -> Expect {
        let wanted: Vec<(usize, i64)> = match request {
            None => {
                let mut wanted = Vec::new();
                for (index, line) in self.orders[order].lines.iter().enumerate() {
                    let released: i64 = self
                        .unpicked(order, index)
                        .iter()
                        .map(|(s, a)| self.shipments[*s].allocations[*a].qty)
                        .sum();
                    if line.allocated - released > 0 {
                        return Expect::refused(StatusCode::CONFLICT);
                    }
                    let can = self.cancellable(order, index);
                    if can > 0 {
                        wanted.push((index, can));
                    }
                }
                if wanted.is_empty() {
                    return Expect::refused(StatusCode::CONFLICT);
                }
                wanted
            }
            Some(lines) => {
                if lines
                    .iter()
                    .any(|(line, qty)| *qty > self.cancellable(order, *line))
                {
                    return Expect::refused(StatusCode::CONFLICT);
                }
                lines.to_vec()
            }
        };
        let mut touched_shipments = BTreeSet::new();
        for (line, qty) in wanted {
            let from_open = qty.min(self.orders[order].lines[line].open());
            self.orders[order].lines[line].cancelled += from_open;
            let mut rest = qty - from_open;
            for (s, a) in self.unpicked(order, line) {
                if rest == 0 {
                    break;
                }
                let shipment = &mut self.shipments[s];
                let warehouse = shipment.warehouse;
                let allocation = &mut shipment.allocations[a];
                let take = rest.min(allocation.qty);
                allocation.qty -= take;
                rest -= take;
                let pool = allocation.pool.clone();
                touched_shipments.insert(s);
                let sku = self.orders[order].lines[line].sku;
                self.balance(warehouse, sku).reserve(&pool, -take);
                let line = &mut self.orders[order].lines[line];
                line.allocated -= take;
                line.cancelled += take;
            }
            assert_eq!(rest, 0, "the model checked the line was cancellable");
        }
        for s in touched_shipments {
            let shipment = &mut self.shipments[s];
            shipment.allocations.retain(|a| a.qty > 0);
            if shipment.allocations.is_empty() {
                shipment.status = Status::Cancelled;
            }
        }
        Expect::ok([order])
    }

    // ---- WMS updates ----

    fn update_shipment(&mut self, s: usize, to: Status) -> Expect {
        let current = self.shipments[s].status;
        let order = self.shipments[s].order;
        if current == to {
            return Expect::ok([order]);
        }
        if to.required_before() != Some(current) {
            return Expect::refused(StatusCode::CONFLICT);
        }
        let shipment = self.shipments[s].clone();
        let id = shipment
            .id
            .expect("shipment ids are learnt after each step");
        let spec = self.orders[order].spec.clone();
        // What the shipment carries, per SKU in id order.
        let mut carried: BTreeMap<usize, i64> = BTreeMap::new();
        for a in &shipment.allocations {
            *carried
                .entry(self.orders[order].lines[a.line].sku)
                .or_default() += a.qty;
        }
        let transit = format!("TRANSIT-S{id}");
        match to {
            Status::Shipped => {
                for a in &shipment.allocations {
                    let sku = self.orders[order].lines[a.line].sku;
                    self.balance(shipment.warehouse, sku).ship(&a.pool, a.qty);
                    let line = &mut self.orders[order].lines[a.line];
                    line.allocated -= a.qty;
                    line.shipped += a.qty;
                }
                if let (Kind::St, Some(destination)) = (spec.kind, spec.destination) {
                    self.inwards
                        .push(Inward::expected(&transit, destination, &carried, 0));
                }
            }
            Status::Rto => {
                // A transfer that comes back never arrives: its transit inward closes,
                // unless the destination received some of it already (then 409).
                if let Some(inward) = self.inwards.iter_mut().find(|i| i.code == transit) {
                    if inward.lines.iter().any(|l| l.received > 0) {
                        self.transfer_returns_refused += 1;
                        return Expect::refused(StatusCode::CONFLICT);
                    }
                    inward.closed = true;
                }
                // Back for QC: an inward order received at once.
                for (sku, qty) in &carried {
                    self.balance(shipment.warehouse, *sku).qc_pending += qty;
                }
                let code = format!("RTO-S{id}");
                let returned = Inward::expected(&code, shipment.warehouse, &carried, 1);
                self.inwards.push(returned);
            }
            _ => {}
        }
        self.shipments[s].status = to;
        Expect::ok([order])
    }
}

// ---------------------------------------------------------------------------------------
// Operations

#[derive(Debug, Clone)]
enum Op {
    CreateOrder(OrderSpec),
    /// The same body again: 200 and nothing changes.
    Resubmit {
        order: usize,
    },
    CreateInward {
        warehouse: usize,
        lines: Vec<(usize, i64)>,
    },
    /// Stock that arrives whole: a PO, its GRN and a QC passing every unit but `fail`.
    Restock {
        warehouse: usize,
        sku: usize,
        qty: i64,
        fail: i64,
        reason: &'static str,
    },
    Grn {
        inward: usize,
        line: usize,
        qty: i64,
    },
    Qc {
        inward: usize,
        line: usize,
        pass: i64,
        fail: i64,
        lost: i64,
        reason: &'static str,
    },
    Lost {
        warehouse: usize,
        sku: usize,
        pool: &'static str,
        qty: i64,
    },
    Found {
        warehouse: usize,
        sku: usize,
        qty: i64,
    },
    PoolMove {
        warehouse: usize,
        sku: usize,
        from: &'static str,
        to: &'static str,
        qty: i64,
    },
    Absolute {
        warehouse: usize,
        items: Vec<(usize, i64)>,
    },
    AllocateOne {
        order: usize,
    },
    AllocationRun,
    AllocatorRound,
    CancelLines {
        order: usize,
        lines: Vec<(usize, i64)>,
    },
    CancelOrder {
        order: usize,
    },
    UpdateShipment {
        shipment: usize,
        to: Status,
    },
}

fn zipf_sku(rng: &mut Rng) -> usize {
    rng.weighted(&SKU_WEIGHTS)
}

/// Mostly a (warehouse, sku) where `units` is positive, now and then any; with its units.
fn stocked_key(
    rng: &mut Rng,
    model: &Model,
    units: impl Fn(&Balance) -> i64,
) -> (usize, usize, i64) {
    let stocked: Vec<(usize, usize, i64)> = model
        .stock
        .iter()
        .map(|((w, s), b)| (*w, *s, units(b)))
        .filter(|(_, _, u)| *u > 0)
        .collect();
    if !stocked.is_empty() && rng.chance(85) {
        return rng.pick(&stocked);
    }
    let (w, s) = (rng.below(2), zipf_sku(rng));
    (w, s, model.stock.get(&(w, s)).map_or(0, &units))
}

/// Between 1 and `units`; now and then one more than `units` (refused).
fn some_of(rng: &mut Rng, units: i64) -> i64 {
    if units <= 0 || rng.chance(10) {
        units.max(0) + 1
    } else {
        rng.range(1, units)
    }
}

/// (inward, line, units) of a random inward line where `units` is positive, if any.
fn inward_line(
    rng: &mut Rng,
    model: &Model,
    units: impl Fn(&Inward, &InwardLine) -> i64,
) -> Option<(usize, usize, i64)> {
    let mut found = Vec::new();
    for (i, inward) in model.inwards.iter().enumerate() {
        for (l, line) in inward.lines.iter().enumerate() {
            if units(inward, line) > 0 {
                found.push((i, l, units(inward, line)));
            }
        }
    }
    (!found.is_empty()).then(|| rng.pick(&found))
}

/// Mostly all of `units` or part of it; `over_percent` of the time one more (refused).
fn portion(rng: &mut Rng, units: i64, over_percent: u64) -> i64 {
    if rng.chance(over_percent) {
        units + 1
    } else if rng.chance(60) {
        units
    } else {
        rng.range(1, units)
    }
}

/// Draws the next operation from what the model holds now.
fn generate(rng: &mut Rng, model: &Model) -> Op {
    const WEIGHTS: [u64; 17] = [12, 2, 5, 7, 9, 4, 2, 8, 4, 3, 5, 5, 6, 3, 16, 10, 7];
    loop {
        let op = match rng.weighted(&WEIGHTS) {
            0 => {
                let lines = (0..rng.range(1, 3))
                    .map(|_| (zipf_sku(rng), rng.range(1, 6)))
                    .collect();
                Op::CreateOrder(OrderSpec {
                    kind: Kind::B2c,
                    destination: None,
                    channel: rng.below(B2C_CHANNELS),
                    fulfilment: rng.pick(&FULFILMENTS),
                    auto_retry: rng.chance(80),
                    dispatch_by: rng.chance(80).then(|| rng.range(0, 5)),
                    priority: rng.range(0, 2),
                    ship_pincode: rng.pick(&SHIP_PINCODES),
                    warehouse: rng.chance(10).then(|| rng.below(2)),
                    lines,
                })
            }
            1 if !model.orders.is_empty() => Op::Resubmit {
                order: rng.below(model.orders.len()),
            },
            2 => Op::CreateInward {
                warehouse: rng.below(2),
                lines: (0..rng.range(1, 2))
                    .map(|_| (zipf_sku(rng), rng.range(1, 16)))
                    .collect::<BTreeMap<usize, i64>>()
                    .into_iter()
                    .collect(),
            },
            3 => {
                // Half the time a transfer in transit, when one is, so that transfers
                // arrive and returns of received transfers are refused.
                let transit = rng.chance(50);
                let receivable = |i: &Inward, l: &InwardLine| {
                    if transit && !i.code.starts_with("TRANSIT-") {
                        0
                    } else {
                        l.ordered - l.received
                    }
                };
                let Some((inward, line, left)) = inward_line(rng, model, receivable)
                    .or_else(|| inward_line(rng, model, |_, l| l.ordered - l.received))
                else {
                    continue;
                };
                // Now and then one unit more than is left: an over-receipt, refused.
                let qty = portion(rng, left, 8);
                Op::Grn { inward, line, qty }
            }
            4 => {
                let Some((inward, line, pending)) =
                    inward_line(rng, model, |_, l| l.received - l.checked)
                else {
                    continue;
                };
                let total = portion(rng, pending, 5);
                let pass = if rng.chance(80) {
                    total
                } else {
                    rng.range(0, total)
                };
                let lost = if rng.chance(20) {
                    rng.range(0, total - pass)
                } else {
                    0
                };
                Op::Qc {
                    inward,
                    line,
                    pass,
                    fail: total - pass - lost,
                    lost,
                    reason: rng.pick(&FAIL_REASONS),
                }
            }
            5 => {
                let pool = rng.pick(&[COMMON, COMMON, POOL]);
                let (warehouse, sku, available) = stocked_key(rng, model, |b| b.available(pool));
                Op::Lost {
                    warehouse,
                    sku,
                    pool,
                    qty: some_of(rng, available),
                }
            }
            6 => {
                let (warehouse, sku, lost) = stocked_key(rng, model, |b| b.lost);
                Op::Found {
                    warehouse,
                    sku,
                    qty: some_of(rng, lost),
                }
            }
            7 => {
                let (from, to) = if rng.chance(60) {
                    (COMMON, POOL)
                } else {
                    (POOL, COMMON)
                };
                let (warehouse, sku, available) = stocked_key(rng, model, |b| b.available(from));
                Op::PoolMove {
                    warehouse,
                    sku,
                    from,
                    to,
                    qty: some_of(rng, available),
                }
            }
            8 => {
                let warehouse = rng.below(2);
                let skus: BTreeSet<usize> = (0..rng.range(1, 2)).map(|_| zipf_sku(rng)).collect();
                let items = skus
                    .into_iter()
                    .map(|sku| {
                        let good = model.stock.get(&(warehouse, sku)).map_or(0, Balance::good);
                        (sku, (good + rng.range(-3, 3)).max(0))
                    })
                    .collect();
                Op::Absolute { warehouse, items }
            }
            9 if !model.orders.is_empty() => Op::AllocateOne {
                order: rng.below(model.orders.len()),
            },
            10 => Op::AllocationRun,
            11 => Op::AllocatorRound,
            12 if !model.orders.is_empty() => {
                // Half the time a line held by several unpicked allocation rows, cut into
                // them but not through them all: which rows give the units back is the
                // rule under test (newest shipment first, then newest row).
                let split: Vec<(usize, usize, i64, i64)> = (0..model.orders.len())
                    .flat_map(|o| (0..model.orders[o].lines.len()).map(move |l| (o, l)))
                    .filter(|(o, l)| model.unpicked(*o, *l).len() > 1)
                    .map(|(o, l)| {
                        (
                            o,
                            l,
                            model.orders[o].lines[l].open(),
                            model.cancellable(o, l),
                        )
                    })
                    .collect();
                if !split.is_empty() && rng.chance(50) {
                    let (order, line, open, can) = rng.pick(&split);
                    let qty = rng.range(open + 1, (can - 1).max(open + 1));
                    return Op::CancelLines {
                        order,
                        lines: vec![(line, qty)],
                    };
                }
                let order = rng.below(model.orders.len());
                let count = model.orders[order].lines.len();
                let mut lines: Vec<(usize, i64)> = Vec::new();
                for _ in 0..rng.range(1, 2) {
                    let line = rng.below(count);
                    // Mostly what can be cancelled now, so that cancellations take units
                    // from shipments; sometimes anything up to the ordered quantity.
                    let can = model.cancellable(order, line);
                    let qty = if can > 0 && rng.chance(75) {
                        rng.range(1, can)
                    } else {
                        rng.range(1, model.orders[order].lines[line].ordered)
                    };
                    if lines.iter().all(|(l, _)| *l != line) {
                        lines.push((line, qty));
                    }
                }
                Op::CancelLines { order, lines }
            }
            13 if !model.orders.is_empty() => Op::CancelOrder {
                order: rng.below(model.orders.len()),
            },
            14 if !model.shipments.is_empty() => {
                let live: Vec<usize> = (0..model.shipments.len())
                    .filter(|s| {
                        !matches!(
                            model.shipments[*s].status,
                            Status::Delivered | Status::Rto | Status::Cancelled
                        )
                    })
                    .collect();
                // Half the time one already on its way, so that shipments reach SHIPPED and
                // beyond (transfers arrive, returns come back) within a sequence.
                let moving: Vec<usize> = live
                    .iter()
                    .copied()
                    .filter(|s| model.shipments[*s].status != Status::Released)
                    .collect();
                let shipment = if !moving.is_empty() && rng.chance(50) {
                    rng.pick(&moving)
                } else if !live.is_empty() && rng.chance(90) {
                    rng.pick(&live)
                } else {
                    rng.below(model.shipments.len())
                };
                let next = match model.shipments[shipment].status {
                    Status::Released => Status::Picked,
                    Status::Picked => Status::Packed,
                    Status::Packed => Status::Shipped,
                    Status::Shipped if rng.chance(60) => Status::Delivered,
                    Status::Shipped => Status::Rto,
                    other => other,
                };
                let to = if rng.chance(85) {
                    next
                } else {
                    rng.pick(&[
                        Status::Picked,
                        Status::Packed,
                        Status::Shipped,
                        Status::Delivered,
                        Status::Rto,
                    ])
                };
                Op::UpdateShipment { shipment, to }
            }
            16 => {
                let kind = rng.pick(&[Kind::So, Kind::St, Kind::St, Kind::Rto, Kind::Rto]);
                // Mostly from a warehouse that holds the stock the kind draws.
                let (warehouse, sku, units) = if kind == Kind::Rto {
                    stocked_key(rng, model, |b| b.bad.values().sum())
                } else {
                    stocked_key(rng, model, |b| b.good() - b.allocated())
                };
                let mut lines = vec![(sku, rng.range(1, units.clamp(1, 4) + 1))];
                if rng.chance(30) {
                    lines.push((zipf_sku(rng), rng.range(1, 4)));
                }
                Op::CreateOrder(OrderSpec {
                    kind,
                    destination: (kind == Kind::St).then_some(1 - warehouse),
                    channel: B2C_CHANNELS,
                    fulfilment: rng.pick(&FULFILMENTS),
                    auto_retry: rng.chance(80),
                    dispatch_by: rng.chance(50).then(|| rng.range(0, 5)),
                    priority: rng.range(0, 2),
                    ship_pincode: 0,
                    warehouse: Some(warehouse),
                    lines,
                })
            }
            15 => {
                let qty = rng.range(1, 8);
                Op::Restock {
                    warehouse: rng.below(2),
                    sku: zipf_sku(rng),
                    qty,
                    fail: if rng.chance(25) { rng.range(1, qty) } else { 0 },
                    reason: rng.pick(&FAIL_REASONS),
                }
            }
            _ => continue,
        };
        return op;
    }
}

// ---------------------------------------------------------------------------------------
// Running a sequence

struct Run<'a> {
    app: &'a TestApp,
    token: String,
    client: String,
    model: Model,
    log: Vec<String>,
    tally: Tally,
    /// The last answer: status and, for a refusal, the error (`OMS_MODEL_TRACE=1` prints it).
    last: String,
}

/// Per kind of operation: how many the OMS accepted and refused (as the model expected),
/// and the units the model allocated — so a run shows what it exercised.
#[derive(Default)]
struct Tally {
    kinds: BTreeMap<&'static str, (u64, u64)>,
    units_allocated: i64,
    bad_units_allocated: i64,
    transfer_units_received: i64,
    transfer_returns_refused: i64,
    units_shipped: i64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        for (kind, (accepted, refused)) in &other.kinds {
            let entry = self.kinds.entry(kind).or_default();
            entry.0 += accepted;
            entry.1 += refused;
        }
        self.units_allocated += other.units_allocated;
        self.bad_units_allocated += other.bad_units_allocated;
        self.transfer_units_received += other.transfer_units_received;
        self.transfer_returns_refused += other.transfer_returns_refused;
        self.units_shipped += other.units_shipped;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} units allocated ({} of them bad stock to RTO orders), {} shipped, {} received \
             by stock transfer, {} returns of received transfers refused; accepted/refused:",
            self.units_allocated,
            self.bad_units_allocated,
            self.units_shipped,
            self.transfer_units_received,
            self.transfer_returns_refused
        )?;
        for (kind, (accepted, refused)) in &self.kinds {
            write!(f, " {kind} {accepted}/{refused}")?;
        }
        Ok(())
    }
}

impl Op {
    fn kind(&self) -> &'static str {
        match self {
            Op::CreateOrder(spec) => match spec.kind {
                Kind::B2c => "order_b2c",
                Kind::So => "order_so",
                Kind::St => "order_st",
                Kind::Rto => "order_rto",
            },
            Op::Resubmit { .. } => "resubmit",
            Op::CreateInward { .. } => "inward",
            Op::Restock { .. } => "restock",
            Op::Grn { .. } => "grn",
            Op::Qc { .. } => "qc",
            Op::Lost { .. } => "lost",
            Op::Found { .. } => "found",
            Op::PoolMove { .. } => "pool_move",
            Op::Absolute { .. } => "absolute",
            Op::AllocateOne { .. } => "allocate_one",
            Op::AllocationRun => "allocation_run",
            Op::AllocatorRound => "allocator_round",
            Op::CancelLines { .. } => "cancel_lines",
            Op::CancelOrder { .. } => "cancel_order",
            Op::UpdateShipment { .. } => "wms_status",
        }
    }
}

type Checked = Result<(), String>;

/// What a step sends: a request to the API, or one round of the allocator worker.
enum Request {
    Post(String, Value),
    AllocatorRound,
}

fn post(path: &str, body: Value) -> Request {
    Request::Post(path.to_owned(), body)
}

impl Run<'_> {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.app.get(path, &self.token).await
    }

    async fn send(&self, request: Request) -> (StatusCode, Value) {
        match request {
            Request::Post(path, body) => self.app.post(&path, &self.token, body).await,
            Request::AllocatorRound => {
                match oms_app::workers::allocation_round(&self.app.store).await {
                    Ok(_) => (StatusCode::OK, Value::Null),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, json!(format!("{e:?}"))),
                }
            }
        }
    }

    /// The client, its two warehouses, channels, pool, SKUs and routing.
    async fn setup<'a>(app: &'a TestApp, seed: u64, rng: &mut Rng) -> Run<'a> {
        let client = format!("m{seed:x}");
        let keys = app.client(&client).await;
        let warehouses = [format!("A-{client}"), format!("B-{client}")];
        let priorities = [rng.range(0, 1), rng.range(0, 1)];
        for (w, code) in warehouses.iter().enumerate() {
            let (status, body) = app
                .put(
                    &format!("/api/v1/warehouses/{code}"),
                    ADMIN_TOKEN,
                    json!({"name": code, "type": "WAREHOUSE",
                           "pincode": WAREHOUSE_PINCODES[w].to_string(), "priority": priorities[w]}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let (status, body) = app
                .put(
                    &format!("/api/v1/clients/{client}/warehouses/{code}"),
                    ADMIN_TOKEN,
                    json!({}),
                )
                .await;
            assert!(status.is_success(), "{body}");
        }
        let admin = keys.admin;
        for (index, channel) in CHANNELS.iter().enumerate() {
            let kind = if index < B2C_CHANNELS {
                "MARKETPLACE"
            } else {
                "B2B"
            };
            let (status, body) = app
                .put(
                    &format!("/api/v1/channels/{channel}"),
                    &admin,
                    json!({"name": channel, "type": kind}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let (status, body) = app
            .put(
                &format!("/api/v1/pools/{POOL}"),
                &admin,
                json!({"name": "Marketplace", "channels": ["AMZ"]}),
            )
            .await;
        assert!(status.is_success(), "{body}");
        for sku in SKUS {
            let (status, body) = app
                .put(
                    &format!("/api/v1/skus/{sku}"),
                    &admin,
                    json!({"name": sku, "mrp": 999}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let minimize_distance = rng.chance(40);
        let max_splits = if rng.chance(50) { 1 } else { 2 };
        let strategy = if minimize_distance {
            "MINIMIZE_DISTANCE"
        } else {
            "MINIMIZE_SHIPMENTS"
        };
        let (status, body) = app
            .put(
                "/api/v1/settings",
                &admin,
                json!({"routing": {"strategy": strategy, "max_splits": max_splits}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let log = vec![format!(
            "setup: warehouse priorities {priorities:?}, {strategy}, max_splits {max_splits}"
        )];
        Run {
            app,
            token: admin,
            client,
            model: Model {
                warehouses,
                warehouse_priority: priorities,
                minimize_distance,
                max_splits,
                stock: BTreeMap::new(),
                orders: Vec::new(),
                shipments: Vec::new(),
                inwards: Vec::new(),
                allocation_seq: 0,
                units_allocated: 0,
                bad_units_allocated: 0,
                transfer_units_received: 0,
                transfer_returns_refused: 0,
            },
            log,
            tally: Tally::default(),
            last: String::new(),
        }
    }

    /// Applies `op` to the model (only when the OMS is expected to accept it) and sends it
    /// to the OMS; compares the answer's status, then the state.
    async fn step(&mut self, op: &Op) -> Checked {
        let allocated_before = self.model.units_allocated;
        let shipped_before: i64 = self.model.stock.values().map(|b| b.shipped).sum();
        // A restock is three requests: a PO, its GRN and a QC passing everything.
        let requests = match op {
            Op::Restock {
                warehouse,
                sku,
                qty,
                fail,
                reason,
            } => {
                let inward = self.model.inwards.len();
                vec![
                    Op::CreateInward {
                        warehouse: *warehouse,
                        lines: vec![(*sku, *qty)],
                    },
                    Op::Grn {
                        inward,
                        line: 0,
                        qty: *qty,
                    },
                    Op::Qc {
                        inward,
                        line: 0,
                        pass: qty - fail,
                        fail: *fail,
                        lost: 0,
                        reason,
                    },
                ]
            }
            other => vec![other.clone()],
        };
        let mut touched = BTreeSet::new();
        let mut accepted = true;
        for request in &requests {
            let (expect, request) = self.plan(request);
            let (status, body) = self.send(request).await;
            self.last = if status.is_success() {
                status.to_string()
            } else {
                format!("{status} {}", body["error"]["message"])
            };
            accepted &= expect.status.is_success();
            if status != expect.status {
                return Err(format!(
                    "answered {status}, the model expected {}: {body}",
                    expect.status
                ));
            }
            if let Some(units) = expect.units_allocated
                && body["units_allocated"] != json!(units)
            {
                return Err(format!(
                    "the pass allocated {} units, the model {units}: {body}",
                    body["units_allocated"]
                ));
            }
            touched.extend(expect.touched);
        }
        let counts = self.tally.kinds.entry(op.kind()).or_default();
        if accepted {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
        self.tally.units_allocated += self.model.units_allocated - allocated_before;
        self.tally.units_shipped +=
            self.model.stock.values().map(|b| b.shipped).sum::<i64>() - shipped_before;
        let expect = Expect::ok(touched);
        self.learn_shipment_ids(&expect.touched).await?;
        self.compare_stock().await?;
        for order in &expect.touched {
            self.compare_order(*order).await?;
        }
        let report = oms_app::check::run(&self.app.store)
            .await
            .map_err(|e| format!("oms check failed to run: {e:?}"))?;
        if !report.breaches.is_empty() {
            return Err(format!("oms check: {:#?}", report.breaches));
        }
        Ok(())
    }

    /// Applies `op` to the model and answers what the OMS should say and the request to send.
    fn plan(&mut self, op: &Op) -> (Expect, Request) {
        let m = &mut self.model;
        match op {
            Op::CreateOrder(spec) => {
                let OrderSpec {
                    kind,
                    destination,
                    channel,
                    fulfilment,
                    auto_retry,
                    dispatch_by,
                    priority,
                    ship_pincode,
                    warehouse,
                    lines,
                } = spec;
                let code = format!("O{}", m.orders.len() + 1);
                let mut body = json!({
                    "order_code": code, "kind": kind.code(), "channel": CHANNELS[*channel],
                    "fulfilment_type": fulfilment.code(),
                    "retry": if *auto_retry { "AUTO" } else { "NONE" }, "priority": priority,
                    "lines": lines.iter().enumerate().map(|(i, (sku, qty))| json!({"line_id": format!("L{}", i + 1), "sku": SKUS[*sku], "qty": qty})).collect::<Vec<_>>(),
                });
                match kind {
                    Kind::B2c => {
                        body["ship_to"] = json!({"name": "Model Buyer", "address": "1 Test Road",
                                                 "pincode": ship_pincode.to_string()});
                    }
                    Kind::St => {
                        let to = destination.expect("a transfer has a destination");
                        body["destination_warehouse"] = json!(m.warehouses[to]);
                    }
                    Kind::Rto => body["stock"] = json!("BAD"),
                    Kind::So => {}
                }
                if let Some(hours) = dispatch_by {
                    body["dispatch_by"] = json!(format!("2026-12-01T{hours:02}:00:00Z"));
                }
                if let Some(w) = warehouse {
                    body["warehouse"] = json!(m.warehouses[*w]);
                }
                m.orders.push(Order {
                    code,
                    spec: spec.clone(),
                    lines: lines
                        .iter()
                        .map(|(sku, qty)| Line {
                            sku: *sku,
                            ordered: *qty,
                            allocated: 0,
                            shipped: 0,
                            cancelled: 0,
                        })
                        .collect(),
                    body: body.clone(),
                });
                let order = m.orders.len() - 1;
                m.pass(PassScope::One(order));
                let expect = Expect {
                    status: StatusCode::CREATED,
                    ..Expect::ok([order])
                };
                (expect, post("/api/v1/orders", body))
            }
            Op::Resubmit { order } => {
                let body = m.orders[*order].body.clone();
                (Expect::ok([*order]), post("/api/v1/orders", body))
            }
            Op::Restock { .. } => unreachable!("a restock is sent as its three requests"),
            Op::CreateInward { warehouse, lines } => {
                let code = format!("PO-{}", m.inwards.len() + 1);
                m.inwards.push(Inward {
                    code: code.clone(),
                    warehouse: *warehouse,
                    lines: lines
                        .iter()
                        .map(|(sku, qty)| InwardLine {
                            sku: *sku,
                            ordered: *qty,
                            received: 0,
                            checked: 0,
                        })
                        .collect(),
                    closed: false,
                });
                let body = json!({"order_code": code, "type": "PO", "warehouse": m.warehouses[*warehouse],
                    "lines": lines.iter().map(|(sku, qty)| json!({"sku": SKUS[*sku], "qty": qty})).collect::<Vec<_>>()});
                let expect = Expect {
                    status: StatusCode::CREATED,
                    ..Expect::ok([])
                };
                (expect, post("/api/v1/inward-orders", body))
            }
            Op::Grn { inward, line, qty } => {
                let (code, warehouse, closed) = (
                    m.inwards[*inward].code.clone(),
                    m.inwards[*inward].warehouse,
                    m.inwards[*inward].closed,
                );
                let l = &mut m.inwards[*inward].lines[*line];
                let sku = l.sku;
                let expect = if closed {
                    Expect::refused(StatusCode::CONFLICT)
                } else if l.received + qty > l.ordered {
                    Expect::refused(StatusCode::UNPROCESSABLE_ENTITY)
                } else {
                    l.received += qty;
                    if code.starts_with("TRANSIT-") {
                        m.transfer_units_received += qty;
                    }
                    m.balance(warehouse, sku).qc_pending += qty;
                    Expect::ok([])
                };
                let body = json!({"lines": [{"sku": SKUS[sku], "qty": qty}]});
                (
                    expect,
                    post(&format!("/api/v1/inward-orders/{code}/grn"), body),
                )
            }
            Op::Qc {
                inward,
                line,
                pass,
                fail,
                lost,
                reason,
            } => {
                let (code, warehouse, closed) = (
                    m.inwards[*inward].code.clone(),
                    m.inwards[*inward].warehouse,
                    m.inwards[*inward].closed,
                );
                let l = &mut m.inwards[*inward].lines[*line];
                let sku = l.sku;
                let total = pass + fail + lost;
                let expect = if closed {
                    Expect::refused(StatusCode::CONFLICT)
                } else if l.checked + total > l.received {
                    Expect::refused(StatusCode::UNPROCESSABLE_ENTITY)
                } else {
                    l.checked += total;
                    let balance = m.balance(warehouse, sku);
                    balance.qc_pending -= total;
                    balance.pool(COMMON).qty += pass;
                    *balance.bad.entry((*reason).to_owned()).or_default() += fail;
                    balance.lost += lost;
                    Expect::ok([])
                };
                let body = json!({"lines": [{"sku": SKUS[sku], "pass": pass, "fail": fail, "lost": lost, "fail_reason": reason}]});
                (
                    expect,
                    post(&format!("/api/v1/inward-orders/{code}/qc"), body),
                )
            }
            Op::Lost {
                warehouse,
                sku,
                pool,
                qty,
            } => {
                let expect =
                    m.guarded_move(*warehouse, *sku, Spot::Available(pool), Spot::Lost, *qty);
                let body = json!({"warehouse": m.warehouses[*warehouse], "sku": SKUS[*sku], "qty": qty,
                                  "reason": "not on the shelf", "pool": pool});
                (expect, post("/api/v1/inventory/lost", body))
            }
            Op::Found {
                warehouse,
                sku,
                qty,
            } => {
                let expect =
                    m.guarded_move(*warehouse, *sku, Spot::Lost, Spot::Available(COMMON), *qty);
                let body = json!({"warehouse": m.warehouses[*warehouse], "sku": SKUS[*sku], "qty": qty,
                                  "reason": "found in aisle 3"});
                (expect, post("/api/v1/inventory/found", body))
            }
            Op::PoolMove {
                warehouse,
                sku,
                from,
                to,
                qty,
            } => {
                let expect = m.guarded_move(
                    *warehouse,
                    *sku,
                    Spot::Available(from),
                    Spot::Available(to),
                    *qty,
                );
                let body = json!({"warehouse": m.warehouses[*warehouse], "sku": SKUS[*sku],
                                  "from_pool": from, "to_pool": to, "qty": qty});
                (expect, post("/api/v1/pool-movements", body))
            }
            Op::Absolute { warehouse, items } => {
                let below = items.iter().any(|(sku, good)| {
                    m.stock
                        .get(&(*warehouse, *sku))
                        .is_some_and(|b| *good < b.allocated())
                });
                let expect = if below {
                    Expect::refused(StatusCode::UNPROCESSABLE_ENTITY)
                } else {
                    for (sku, counted) in items {
                        let balance = m.balance(*warehouse, *sku);
                        let good = balance.good();
                        if *counted > good {
                            balance.pool(COMMON).qty += counted - good;
                        } else {
                            // Short: out of available stock, COMMON first, then named pools
                            // in code order.
                            let mut short = good - counted;
                            let mut order: Vec<String> = vec![COMMON.to_owned()];
                            order.extend(balance.pools.keys().filter(|p| *p != COMMON).cloned());
                            for pool in order {
                                let take = balance.available(&pool).min(short);
                                balance.pool(&pool).qty -= take;
                                short -= take;
                            }
                        }
                    }
                    Expect::ok([])
                };
                let body = json!({"warehouse": m.warehouses[*warehouse],
                    "items": items.iter().map(|(sku, good)| json!({"sku": SKUS[*sku], "good": good})).collect::<Vec<_>>()});
                (expect, post("/api/v1/inventory/absolute", body))
            }
            Op::AllocateOne { order } => {
                let (_, mut touched) = m.pass(PassScope::One(*order));
                touched.insert(*order);
                let code = m.orders[*order].code.clone();
                let answer = post(&format!("/api/v1/orders/{code}/allocate"), json!({}));
                (Expect::ok(touched), answer)
            }
            Op::AllocationRun => {
                let (units, touched) = m.pass(PassScope::AllOpen);
                let expect = Expect {
                    units_allocated: Some(units),
                    ..Expect::ok(touched)
                };
                (expect, post("/api/v1/allocation/run", json!({})))
            }
            Op::AllocatorRound => {
                let (_, touched) = m.pass(PassScope::AutoRetry);
                (Expect::ok(touched), Request::AllocatorRound)
            }
            Op::CancelLines { order, lines } => {
                let expect = m.cancel(*order, Some(lines));
                let code = m.orders[*order].code.clone();
                let body = json!({"reason": "seller out of stock",
                    "lines": lines.iter().map(|(l, qty)| json!({"line_id": format!("L{}", l + 1), "qty": qty})).collect::<Vec<_>>()});
                let answer = post(&format!("/api/v1/orders/{code}/cancel"), body);
                (expect, answer)
            }
            Op::CancelOrder { order } => {
                let expect = m.cancel(*order, None);
                let code = m.orders[*order].code.clone();
                let answer = post(
                    &format!("/api/v1/orders/{code}/cancel"),
                    json!({"reason": "customer changed their mind"}),
                );
                (expect, answer)
            }
            Op::UpdateShipment { shipment, to } => {
                let id = m.shipments[*shipment]
                    .id
                    .expect("shipment ids are learnt after each step");
                let expect = m.update_shipment(*shipment, *to);
                let mut body = json!({"status": to.code()});
                if *to == Status::Shipped {
                    body["awb"] = json!(format!("AWB{id}"));
                    body["carrier"] = json!("ModelPost");
                }
                let answer = post(&format!("/api/v1/shipments/{id}/status"), body);
                (expect, answer)
            }
        }
    }

    async fn get_order(&self, order: usize) -> Result<Value, String> {
        let code = &self.model.orders[order].code;
        let (status, body) = self.get(&format!("/api/v1/orders/{code}")).await;
        if status != StatusCode::OK {
            return Err(format!("GET order {code} answered {status}: {body}"));
        }
        Ok(body)
    }

    /// New shipments get their OMS id: a pass makes at most one per (order, warehouse).
    async fn learn_shipment_ids(&mut self, touched: &BTreeSet<usize>) -> Checked {
        for order in touched {
            let unknown: Vec<usize> = (0..self.model.shipments.len())
                .filter(|s| {
                    self.model.shipments[*s].order == *order
                        && self.model.shipments[*s].id.is_none()
                })
                .collect();
            if unknown.is_empty() {
                continue;
            }
            let known: BTreeSet<i64> = self.model.shipments.iter().filter_map(|s| s.id).collect();
            let body = self.get_order(*order).await?;
            let fresh: Vec<(i64, String)> = body["shipments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| {
                    Some((
                        s["shipment_id"].as_i64()?,
                        s["warehouse"].as_str()?.to_owned(),
                    ))
                })
                .filter(|(id, _)| !known.contains(id))
                .collect();
            if fresh.len() != unknown.len() {
                return Err(format!(
                    "order {} has {} new shipments, the model {}: {body}",
                    self.model.orders[*order].code,
                    fresh.len(),
                    unknown.len()
                ));
            }
            for s in unknown {
                let code = &self.model.warehouses[self.model.shipments[s].warehouse];
                let Some((id, _)) = fresh.iter().find(|(_, w)| w == code) else {
                    return Err(format!(
                        "order {}: no new shipment at {code}: {body}",
                        self.model.orders[*order].code
                    ));
                };
                self.model.shipments[s].id = Some(*id);
            }
        }
        Ok(())
    }

    /// Every (warehouse, sku) row of `GET /inventory` equals the model's.
    async fn compare_stock(&self) -> Checked {
        let (status, page) = self.get("/api/v1/inventory?limit=200").await;
        if status != StatusCode::OK {
            return Err(format!("GET /inventory answered {status}: {page}"));
        }
        let mut actual: BTreeMap<(String, String), Value> = BTreeMap::new();
        for row in page["items"].as_array().into_iter().flatten() {
            let key = (
                row["warehouse"].as_str().unwrap_or_default().to_owned(),
                row["sku"].as_str().unwrap_or_default().to_owned(),
            );
            actual.insert(key, row.clone());
        }
        for (w, warehouse) in self.model.warehouses.iter().enumerate() {
            for (s, sku) in SKUS.iter().enumerate() {
                let expected = self
                    .model
                    .stock
                    .get(&(w, s))
                    .cloned()
                    .unwrap_or_default()
                    .json(warehouse, sku);
                let row = actual
                    .remove(&(warehouse.clone(), (*sku).to_owned()))
                    .unwrap_or_else(|| Balance::default().json(warehouse, sku));
                if row != expected {
                    return Err(format!(
                        "stock at ({warehouse}, {sku}):\n  OMS   {row}\n  model {expected}"
                    ));
                }
            }
        }
        if !actual.is_empty() {
            return Err(format!("rows the model does not know: {actual:?}"));
        }
        Ok(())
    }

    /// The order's status, line counts and shipments (status and allocation rows) equal
    /// the model's.
    async fn compare_order(&self, order: usize) -> Checked {
        let body = self.get_order(order).await?;
        let m = &self.model;
        let lines: Vec<Value> = m.orders[order]
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                json!({"line_id": format!("L{}", i + 1), "sku": SKUS[l.sku], "ordered": l.ordered,
                       "allocated": l.allocated, "shipped": l.shipped, "cancelled": l.cancelled,
                       "open": l.open()})
            })
            .collect();
        let mut shipments: Vec<Value> = m
            .shipments
            .iter()
            .filter(|s| s.order == order)
            .map(|s| {
                let mut rows: Vec<Value> = s
                    .allocations
                    .iter()
                    .map(|a| json!([format!("L{}", a.line + 1), a.pool, a.qty]))
                    .collect();
                rows.sort_by_key(Value::to_string);
                json!({"shipment_id": s.id, "warehouse": m.warehouses[s.warehouse],
                       "status": s.status.code(), "lines": rows})
            })
            .collect();
        shipments.sort_by_key(|s| s["shipment_id"].as_i64());
        let expected =
            json!({"status": m.order_status(order), "lines": lines, "shipments": shipments});
        let actual_lines: Vec<Value> = body["lines"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                json!({"line_id": l["line_id"], "sku": l["sku"], "ordered": l["ordered"],
                       "allocated": l["allocated"], "shipped": l["shipped"],
                       "cancelled": l["cancelled"], "open": l["open"]})
            })
            .collect();
        let mut actual_shipments: Vec<Value> = body["shipments"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let mut rows: Vec<Value> = s["lines"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| json!([l["line_id"], l["pool"], l["qty"]]))
                    .collect();
                rows.sort_by_key(Value::to_string);
                json!({"shipment_id": s["shipment_id"], "warehouse": s["warehouse"],
                       "status": s["status"], "lines": rows})
            })
            .collect();
        actual_shipments.sort_by_key(|s| s["shipment_id"].as_i64());
        let actual =
            json!({"status": body["status"], "lines": actual_lines, "shipments": actual_shipments});
        if actual != expected {
            return Err(format!(
                "order {}:\n  OMS   {actual}\n  model {expected}\n  trace {}",
                m.orders[order].code, body["allocation_trace"]
            ));
        }
        Ok(())
    }

    /// Every order, at the end of a sequence.
    async fn compare_all_orders(&self) -> Checked {
        for order in 0..self.model.orders.len() {
            self.compare_order(order).await?;
        }
        Ok(())
    }
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {text:?}")),
    )
}

/// Runs one sequence of `steps` operations from `seed`; on a discrepancy panics with the
/// seed, the operations so far and what differed.
async fn run_sequence(app: &TestApp, seed: u64, steps: usize, tally: &mut Tally) -> usize {
    let mut rng = Rng(seed);
    let mut run = Run::setup(app, seed, &mut rng).await;
    let trace = std::env::var_os("OMS_MODEL_TRACE").is_some();
    for step in 0..steps {
        let op = generate(&mut rng, &run.model);
        run.log.push(format!("{step:>3}: {op:?}"));
        let outcome = run.step(&op).await;
        if trace {
            println!(
                "{} -> {:?}",
                run.log.last().map_or("", String::as_str),
                run.last
            );
        }
        if let Err(discrepancy) = outcome {
            fail(app, &run, seed, steps, &discrepancy);
        }
    }
    if let Err(discrepancy) = run.compare_all_orders().await {
        fail(app, &run, seed, steps, &discrepancy);
    }
    run.tally.bad_units_allocated = run.model.bad_units_allocated;
    run.tally.transfer_units_received = run.model.transfer_units_received;
    run.tally.transfer_returns_refused = run.model.transfer_returns_refused;
    tally.add(&run.tally);
    steps
}

fn fail(app: &TestApp, run: &Run<'_>, seed: u64, steps: usize, discrepancy: &str) -> ! {
    let mut text = String::new();
    let backend = match app.db {
        Db::Sqlite => "sqlite",
        Db::Postgres => "postgres",
    };
    let _ = writeln!(
        text,
        "model and OMS disagree ({backend}, client {}, seed {seed}); replay with\n  \
         OMS_MODEL_SEED={seed} OMS_MODEL_STEPS={steps} ./scripts/test -E 'test(/model::.*{backend}/)'\n\
         operations:",
        run.client
    );
    for line in &run.log {
        let _ = writeln!(text, "  {line}");
    }
    let _ = writeln!(text, "after the last operation: {discrepancy}");
    panic!("{text}");
}

async fn model_matches_the_oms(db: Db) {
    let steps = env_number("OMS_MODEL_STEPS").map_or(STEPS_DEFAULT, |s| s as usize);
    let seeds: Vec<u64> = match env_number("OMS_MODEL_SEED") {
        Some(seed) => vec![seed],
        None => {
            let cases = env_number("OMS_MODEL_CASES").unwrap_or(CASES_DEFAULT);
            (0..cases).map(|i| BASE_SEED + i).collect()
        }
    };
    let started = std::time::Instant::now();
    let mut total = 0;
    let mut tally = Tally::default();
    for chunk in seeds.chunks(SEQUENCES_PER_DATABASE as usize) {
        let app = TestApp::start_without_workers(db).await;
        for seed in chunk {
            total += run_sequence(&app, *seed, steps, &mut tally).await;
        }
        app.assert_invariants().await;
    }
    println!(
        "model: {} sequences, {total} steps on {db:?} in {:.1} s, 0 discrepancies; {tally}",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
}

mod random_operations_match_the_model {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::model_matches_the_oms(crate::helpers::Db::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::model_matches_the_oms(crate::helpers::Db::Postgres).await;
    }
}
