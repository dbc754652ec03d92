//! Orders in, stock allocated: fulfilment types, routing, pools, SLA order, retries,
//! idempotent ingestion, search, and no oversell under concurrency.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, ClientKeys, Db, TestApp, assert_error, event_of, inventory, join_all,
    rejected_cells,
};
use crate::on_both_backends;

on_both_backends!(
    a_b2c_order_is_allocated_at_once_from_the_nearest_warehouse_and_released,
    the_same_order_again_is_the_same_order_and_a_different_body_is_refused,
    concurrent_duplicates_make_exactly_one_order,
    block_complete_waits_until_every_line_can_be_allocated,
    multi_shipment_partial_splits_across_warehouses_within_max_splits,
    single_shipment_partial_ships_once_and_closes_the_rest_short,
    scarce_stock_goes_to_the_earliest_sla,
    channel_pools_are_drawn_before_common_and_by_their_channel_only,
    b2b_orders_ship_from_the_warehouse_they_name_and_rto_draws_bad_stock,
    bad_orders_are_refused_whole,
    orders_are_found_by_code_customer_phone_email_status_and_channel,
    an_order_code_in_two_channels_needs_its_channel,
    another_clients_order_answers_like_a_missing_one,
    retry_none_waits_for_a_person,
    racing_orders_for_scarce_stock_allocate_exactly_what_exists,
    order_files_are_all_or_nothing_and_allocate_what_they_add,
    a_pass_writes_each_orders_events_together_in_order,
    a_large_order_file_reports_bad_rows_wherever_they_are,
);

pub const BLR: (f64, f64) = (12.97, 77.59);
pub const DEL: (f64, f64) = (28.61, 77.21);

/// Client acme with BLR1 (Bengaluru) and DEL1 (Delhi) mapped, channels MYNTRA and AJIO,
/// SKUs TEE and JEANS, no stock.
pub async fn shop(app: &TestApp) -> ClientKeys {
    let keys = app.client("acme").await;
    for (code, pincode, (lat, lon)) in [("BLR1", "560001", BLR), ("DEL1", "110001", DEL)] {
        app.put(
            &format!("/api/v1/warehouses/{code}"),
            ADMIN_TOKEN,
            json!({"name": code, "type": "WAREHOUSE", "pincode": pincode, "lat": lat, "lon": lon}),
        )
        .await;
        app.put(
            &format!("/api/v1/clients/acme/warehouses/{code}"),
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    }
    for channel in ["MYNTRA", "AJIO"] {
        app.put(
            &format!("/api/v1/channels/{channel}"),
            &keys.admin,
            json!({"name": channel, "type": "MARKETPLACE"}),
        )
        .await;
    }
    app.put(
        "/api/v1/channels/B2B",
        &keys.admin,
        json!({"name": "Wholesale", "type": "B2B"}),
    )
    .await;
    for sku in ["TEE", "JEANS"] {
        app.put(
            &format!("/api/v1/skus/{sku}"),
            &keys.admin,
            json!({"name": sku, "mrp": 999}),
        )
        .await;
    }
    keys
}

/// Receives and passes `qty` units of `sku` at `warehouse` (good stock in COMMON).
pub async fn stock(app: &TestApp, keys: &ClientKeys, warehouse: &str, sku: &str, qty: i64) {
    let code = format!("PO-{warehouse}-{sku}-{qty}-{}", rand_suffix());
    let (status, body) = app
        .post(
            "/api/v1/inward-orders",
            &keys.integration,
            json!({"order_code": code, "type": "PO",
        "warehouse": warehouse, "lines": [{"sku": sku, "qty": qty}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.post(
        &format!("/api/v1/inward-orders/{code}/grn"),
        &keys.integration,
        json!({"lines": [{"sku": sku, "qty": qty}]}),
    )
    .await;
    let (status, body) = app
        .post(
            &format!("/api/v1/inward-orders/{code}/qc"),
            &keys.integration,
            json!({"lines": [{"sku": sku, "pass": qty}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub fn b2c(
    code: &str,
    channel: &str,
    fulfilment: &str,
    lines: &[(&str, i64)],
    at: (f64, f64),
) -> Value {
    json!({
        "order_code": code, "kind": "B2C", "channel": channel, "fulfilment_type": fulfilment,
        "ship_to": {"name": "Asha Rao", "address": "12 MG Road", "pincode": "560001",
                    "phone": "+91 98450 12345", "email": "asha@example.in", "lat": at.0, "lon": at.1},
        "lines": lines.iter().enumerate().map(|(i, (sku, qty))| json!({"line_id": format!("{}", i + 1), "sku": sku, "qty": qty, "price": 499.5})).collect::<Vec<_>>()
    })
}

pub fn line<'a>(order: &'a Value, line_id: &str) -> &'a Value {
    order["lines"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["line_id"] == line_id))
        .expect("line")
}

async fn a_b2c_order_is_allocated_at_once_from_the_nearest_warehouse_and_released(app: &TestApp) {
    let acme = shop(app).await;
    app.put(
        "/api/v1/settings",
        &acme.admin,
        json!({"routing": {"strategy": "MINIMIZE_DISTANCE", "max_splits": 2}}),
    )
    .await;
    stock(app, &acme, "BLR1", "TEE", 5).await;
    stock(app, &acme, "DEL1", "TEE", 5).await;
    let (status, order) = app
        .post(
            "/api/v1/orders",
            &acme.integration,
            b2c(
                "MYN-1",
                "MYNTRA",
                "MULTI_SHIPMENT_PARTIAL",
                &[("TEE", 2)],
                BLR,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "RELEASED");
    let tee = line(&order, "1");
    assert_eq!(
        (
            tee["ordered"].as_i64(),
            tee["allocated"].as_i64(),
            tee["open"].as_i64()
        ),
        (Some(2), Some(2), Some(0))
    );
    assert_eq!(order["shipments"].as_array().map(Vec::len), Some(1));
    let shipment = &order["shipments"][0];
    assert_eq!(shipment["warehouse"], "BLR1");
    assert_eq!(shipment["status"], "RELEASED");
    assert_eq!(
        shipment["lines"],
        json!([{"line_id": "1", "sku": "TEE", "qty": 2, "pool": "COMMON"}])
    );
    let outcome = order["allocation_trace"]["outcome"]
        .as_str()
        .unwrap_or_default();
    assert!(
        outcome.contains("BLR1"),
        "the trace says where: {}",
        order["allocation_trace"]
    );
    let considered = order["allocation_trace"]["considered"]
        .as_array()
        .expect("considered");
    assert_eq!(
        considered.len(),
        2,
        "both warehouses were considered: {considered:?}"
    );
    let events: Vec<&str> = order["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(events, ["order.allocated", "shipment.released"]);

    let blr = inventory(app, &acme.admin, "TEE", "BLR1").await;
    assert_eq!(
        (
            blr["good"].as_i64(),
            blr["allocated"].as_i64(),
            blr["available"].as_i64()
        ),
        (Some(5), Some(2), Some(3))
    );
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "DEL1").await["allocated"],
        0
    );
    let (_, ledger) = app
        .get(
            "/api/v1/inventory/ledger?sku=TEE&warehouse=BLR1&limit=100",
            &acme.admin,
        )
        .await;
    let last = ledger["items"]
        .as_array()
        .and_then(|i| i.last())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(last["kind"], "ALLOCATE");
    assert_eq!(last["reference"], "order:MYN-1");
    let (status, fetched) = app.get("/api/v1/orders/MYN-1", &acme.support).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["status"], "RELEASED");
}

async fn the_same_order_again_is_the_same_order_and_a_different_body_is_refused(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 5).await;
    let body = b2c(
        "MYN-1",
        "MYNTRA",
        "MULTI_SHIPMENT_PARTIAL",
        &[("TEE", 2)],
        BLR,
    );
    let (status, first) = app
        .post("/api/v1/orders", &acme.integration, body.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = app
        .post("/api/v1/orders", &acme.integration, body.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again["shipments"], first["shipments"],
        "no second allocation"
    );
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "BLR1").await["allocated"],
        2
    );
    let mut different = body.clone();
    different["lines"][0]["qty"] = json!(3);
    let (status, answer) = app
        .post("/api/v1/orders", &acme.integration, different)
        .await;
    assert_error(status, &answer, StatusCode::CONFLICT, "conflict");
    let mut other_channel = body;
    other_channel["channel"] = json!("AJIO");
    let (status, _) = app
        .post("/api/v1/orders", &acme.integration, other_channel)
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the natural key includes the channel"
    );
}

async fn concurrent_duplicates_make_exactly_one_order(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 10).await;
    let body = b2c(
        "MYN-DUP",
        "MYNTRA",
        "MULTI_SHIPMENT_PARTIAL",
        &[("TEE", 3)],
        BLR,
    );
    let answers = join_all(
        (0..8)
            .map(|_| app.post("/api/v1/orders", &acme.integration, body.clone()))
            .collect(),
    )
    .await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let same = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!((created, same), (1, 7), "{answers:?}");
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "BLR1").await["allocated"],
        3,
        "allocated once"
    );
    let (_, page) = app.get("/api/v1/orders?q=MYN-DUP", &acme.admin).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
}

/// Polls the order until `done` holds, for at most a few seconds.
pub async fn eventually(
    app: &TestApp,
    token: &str,
    code: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..100 {
        let (_, order) = app.get(&format!("/api/v1/orders/{code}"), token).await;
        if done(&order) {
            return order;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, order) = app.get(&format!("/api/v1/orders/{code}"), token).await;
    panic!("order {code} never reached the expected state: {order}");
}

async fn block_complete_waits_until_every_line_can_be_allocated(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 5).await;
    let (status, order) = app
        .post(
            "/api/v1/orders",
            &acme.integration,
            b2c(
                "MYN-1",
                "MYNTRA",
                "BLOCK_COMPLETE",
                &[("TEE", 2), ("JEANS", 1)],
                BLR,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "UNFULFILLABLE");
    assert_eq!(
        line(&order, "1")["allocated"],
        0,
        "nothing until every line can be allocated"
    );
    assert_eq!(order["shipments"], json!([]));
    let outcome = order["allocation_trace"]["outcome"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(outcome.to_lowercase().contains("wait"), "{outcome}");
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "BLR1").await["allocated"],
        0
    );

    // Stock arriving wakes the allocator, which retries the order by itself.
    stock(app, &acme, "BLR1", "JEANS", 1).await;
    let order = eventually(app, &acme.support, "MYN-1", |o| o["status"] == "RELEASED").await;
    assert_eq!(line(&order, "2")["allocated"], 1);
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "BLR1").await["allocated"],
        2
    );
}

async fn multi_shipment_partial_splits_across_warehouses_within_max_splits(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 3).await;
    stock(app, &acme, "DEL1", "TEE", 2).await;
    let (_, order) = app
        .post(
            "/api/v1/orders",
            &acme.integration,
            b2c(
                "MYN-1",
                "MYNTRA",
                "MULTI_SHIPMENT_PARTIAL",
                &[("TEE", 5)],
                BLR,
            ),
        )
        .await;
    assert_eq!(order["status"], "RELEASED", "{order}");
    let warehouses: Vec<&str> = order["shipments"]
        .as_array()
        .expect("shipments")
        .iter()
        .map(|s| s["warehouse"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(warehouses.len(), 2);
    assert!(warehouses.contains(&"BLR1") && warehouses.contains(&"DEL1"));

    app.put(
        "/api/v1/settings",
        &acme.admin,
        json!({"routing": {"strategy": "MINIMIZE_SHIPMENTS", "max_splits": 1}}),
    )
    .await;
    stock(app, &acme, "BLR1", "JEANS", 3).await;
    stock(app, &acme, "DEL1", "JEANS", 2).await;
    let (_, order) = app
        .post(
            "/api/v1/orders",
            &acme.integration,
            b2c(
                "MYN-2",
                "MYNTRA",
                "MULTI_SHIPMENT_PARTIAL",
                &[("JEANS", 5)],
                BLR,
            ),
        )
        .await;
    assert_eq!(order["status"], "PARTIALLY_ALLOCATED", "{order}");
    assert_eq!(
        order["shipments"].as_array().map(Vec::len),
        Some(1),
        "max_splits 1"
    );
    assert_eq!(
        order["shipments"][0]["warehouse"], "BLR1",
        "the warehouse covering most units"
    );
    assert_eq!(line(&order, "1")["open"], 2);
}

async fn single_shipment_partial_ships_once_and_closes_the_rest_short(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 3).await;
    stock(app, &acme, "DEL1", "TEE", 1).await;
    let (_, order) = app
        .post(
            "/api/v1/orders",
            &acme.integration,
            b2c(
                "MYN-1",
                "MYNTRA",
                "SINGLE_SHIPMENT_PARTIAL",
                &[("TEE", 5)],
                DEL,
            ),
        )
        .await;
    assert_eq!(order["status"], "RELEASED", "{order}");
    assert_eq!(order["shipments"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        order["shipments"][0]["warehouse"], "BLR1",
        "the best single cover, not the nearest"
    );
    let tee = line(&order, "1");
    assert_eq!(
        (
            tee["allocated"].as_i64(),
            tee["cancelled"].as_i64(),
            tee["open"].as_i64()
        ),
        (Some(3), Some(2), Some(0))
    );
    let events: Vec<&str> = order["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect();
    assert!(events.contains(&"order.cancelled"), "{events:?}");
    let cancelled = event_of(&order["events"], "order.cancelled");
    assert_eq!(
        cancelled["data"],
        json!({
            "cancelled": [{"line_id": "1", "qty": 2, "reason": "SHORT_CLOSED"}],
            "channel": "MYNTRA",
            "order_code": "MYN-1",
        })
    );
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "DEL1").await["allocated"],
        0
    );
}

async fn scarce_stock_goes_to_the_earliest_sla(app: &TestApp) {
    let acme = shop(app).await;
    let mut late = b2c(
        "LATE",
        "MYNTRA",
        "MULTI_SHIPMENT_PARTIAL",
        &[("TEE", 1)],
        BLR,
    );
    late["dispatch_by"] = json!("2026-12-05T10:00:00Z");
    let mut early = b2c(
        "EARLY",
        "MYNTRA",
        "MULTI_SHIPMENT_PARTIAL",
        &[("TEE", 1)],
        BLR,
    );
    early["dispatch_by"] = json!("2026-12-01T10:00:00Z");
    let mut none = b2c(
        "NO-SLA",
        "MYNTRA",
        "MULTI_SHIPMENT_PARTIAL",
        &[("TEE", 1)],
        BLR,
    );
    none["priority"] = json!(100);
    for body in [late, none, early] {
        let (status, order) = app.post("/api/v1/orders", &acme.integration, body).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(order["status"], "UNFULFILLABLE");
    }
    // Stock arrives through QC; the allocator gives the one unit to the earliest SLA.
    stock(app, &acme, "BLR1", "TEE", 1).await;
    let (status, summary) = app
        .post("/api/v1/allocation/run", &acme.admin, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    let early = eventually(app, &acme.admin, "EARLY", |o| o["status"] == "RELEASED").await;
    assert_eq!(line(&early, "1")["allocated"], 1);
    for code in ["LATE", "NO-SLA"] {
        let (_, order) = app
            .get(&format!("/api/v1/orders/{code}"), &acme.admin)
            .await;
        assert_eq!(order["status"], "UNFULFILLABLE", "{code}: {order}");
    }
}

async fn channel_pools_are_drawn_before_common_and_by_their_channel_only(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 5).await;
    app.put(
        "/api/v1/pools/MYNTRA",
        &acme.admin,
        json!({"name": "Myntra", "channels": ["MYNTRA"]}),
    )
    .await;
    app.post("/api/v1/pool-movements", &acme.admin, json!({"warehouse": "BLR1", "sku": "TEE", "from_pool": "COMMON", "to_pool": "MYNTRA", "qty": 2})).await;
    let (_, order) = app
        .post(
            "/api/v1/orders",
            &acme.integration,
            b2c(
                "MYN-1",
                "MYNTRA",
                "MULTI_SHIPMENT_PARTIAL",
                &[("TEE", 3)],
                BLR,
            ),
        )
        .await;
    let mut pools: Vec<(String, i64)> = order["shipments"][0]["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["pool"].as_str().unwrap_or_default().to_owned(),
                l["qty"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    pools.sort();
    assert_eq!(
        pools,
        [("COMMON".to_owned(), 1), ("MYNTRA".to_owned(), 2)],
        "{order}"
    );
    let (_, ajio) = app
        .post(
            "/api/v1/orders",
            &acme.integration,
            b2c("AJ-1", "AJIO", "MULTI_SHIPMENT_PARTIAL", &[("TEE", 3)], BLR),
        )
        .await;
    assert_eq!(
        line(&ajio, "1")["allocated"],
        2,
        "AJIO gets only COMMON's last 2: {ajio}"
    );
    let stock = inventory(app, &acme.admin, "TEE", "BLR1").await;
    assert_eq!(stock["available"], 0);
    assert_eq!(
        stock["pools"],
        json!([
        {"pool": "COMMON", "qty": 3, "allocated": 3, "available": 0},
        {"pool": "MYNTRA", "qty": 2, "allocated": 2, "available": 0}])
    );
}

async fn b2b_orders_ship_from_the_warehouse_they_name_and_rto_draws_bad_stock(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 5).await;
    stock(app, &acme, "DEL1", "TEE", 1).await;
    let so = json!({"order_code": "SO-1", "kind": "SO", "channel": "B2B", "fulfilment_type": "MULTI_SHIPMENT_PARTIAL",
                    "warehouse": "DEL1", "lines": [{"line_id": "1", "sku": "TEE", "qty": 3}]});
    let (status, order) = app.post("/api/v1/orders", &acme.integration, so).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["shipments"][0]["warehouse"], "DEL1");
    assert_eq!(
        line(&order, "1")["allocated"],
        1,
        "only DEL1's unit, though BLR1 has five"
    );

    let po = json!({"order_code": "PO-BAD", "type": "PO", "warehouse": "BLR1", "lines": [{"sku": "JEANS", "qty": 4}]});
    app.post("/api/v1/inward-orders", &acme.integration, po)
        .await;
    app.post(
        "/api/v1/inward-orders/PO-BAD/grn",
        &acme.integration,
        json!({"lines": [{"sku": "JEANS", "qty": 4}]}),
    )
    .await;
    app.post(
        "/api/v1/inward-orders/PO-BAD/qc",
        &acme.integration,
        json!({"lines": [{"sku": "JEANS", "fail": 4, "fail_reason": "DAMAGED"}]}),
    )
    .await;
    let rto = json!({"order_code": "RTO-1", "kind": "RTO", "channel": "B2B", "fulfilment_type": "BLOCK_COMPLETE",
                     "warehouse": "BLR1", "stock": "BAD", "lines": [{"line_id": "1", "sku": "JEANS", "qty": 3}]});
    let (status, order) = app.post("/api/v1/orders", &acme.integration, rto).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "RELEASED", "{order}");
    assert_eq!(order["shipments"][0]["lines"][0]["pool"], "BAD:DAMAGED");
    let jeans = inventory(app, &acme.admin, "JEANS", "BLR1").await;
    assert_eq!(
        (
            jeans["bad"].as_i64(),
            jeans["allocated_bad"].as_i64(),
            jeans["good"].as_i64()
        ),
        (Some(1), Some(3), Some(0)),
        "the three units reserved for the RTO are shown until they ship: {jeans}"
    );
}

async fn bad_orders_are_refused_whole(app: &TestApp) {
    let acme = shop(app).await;
    let mut unknown = b2c(
        "X-1",
        "FLIPKART",
        "MULTI_SHIPMENT_PARTIAL",
        &[("SOCKS", 1)],
        BLR,
    );
    unknown["warehouse"] = json!("MUM1");
    let (status, body) = app.post("/api/v1/orders", &acme.integration, unknown).await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let fields: Vec<&str> = error["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["field"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(fields, ["channel", "warehouse", "lines[0].sku"]);
    let mut no_ship_to = b2c("X-2", "MYNTRA", "BLOCK_COMPLETE", &[("TEE", 1)], BLR);
    no_ship_to
        .as_object_mut()
        .expect("object")
        .remove("ship_to");
    for bad in [
        no_ship_to,
        b2c("X-3", "MYNTRA", "BLOCK_COMPLETE", &[("TEE", 0)], BLR),
        b2c("X-4", "MYNTRA", "ALL_AT_ONCE", &[("TEE", 1)], BLR),
        b2c("X 5", "MYNTRA", "BLOCK_COMPLETE", &[("TEE", 1)], BLR),
        json!({"order_code": "X-6", "kind": "SO", "channel": "B2B", "fulfilment_type": "BLOCK_COMPLETE", "lines": [{"line_id": "1", "sku": "TEE", "qty": 1}]}),
        json!({"order_code": "X-7", "kind": "B2C", "channel": "MYNTRA", "fulfilment_type": "BLOCK_COMPLETE", "dispatch_by": "tomorrow",
               "ship_to": {"name": "A", "address": "B", "pincode": "560001"}, "lines": [{"line_id": "1", "sku": "TEE", "qty": 1}]}),
    ] {
        let (status, body) = app
            .post("/api/v1/orders", &acme.integration, bad.clone())
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (status, body) = app
        .post(
            "/api/v1/orders",
            &acme.support,
            b2c("X-8", "MYNTRA", "BLOCK_COMPLETE", &[("TEE", 1)], BLR),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (_, page) = app.get("/api/v1/orders", &acme.admin).await;
    assert_eq!(page["items"], json!([]), "no refused order was stored");
}

async fn orders_are_found_by_code_customer_phone_email_status_and_channel(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 1).await;
    for i in 0..5 {
        let mut body = b2c(
            &format!("MYN-{i}"),
            if i % 2 == 0 { "MYNTRA" } else { "AJIO" },
            "MULTI_SHIPMENT_PARTIAL",
            &[("TEE", 1)],
            BLR,
        );
        body["ship_to"]["name"] = json!(format!("Customer {i}"));
        body["ship_to"]["phone"] = json!(format!("+91 90000 0000{i}"));
        body["ship_to"]["email"] = json!(format!("c{i}@example.in"));
        app.post("/api/v1/orders", &acme.integration, body).await;
    }
    let codes = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|o| o["order_code"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (_, page) = app
        .get("/api/v1/orders?q=90000%2000003", &acme.support)
        .await;
    assert_eq!(codes(&page), ["MYN-3"]);
    // However the customer reads the number out: with the trunk 0, the country code, dashes.
    for typed in [
        "09000000003",
        "%2B919000000003",
        "90000-00003",
        "(90000)%2000003",
    ] {
        let (_, page) = app
            .get(&format!("/api/v1/orders?q={typed}"), &acme.support)
            .await;
        assert_eq!(codes(&page), ["MYN-3"], "{typed}");
    }
    let (_, page) = app.get("/api/v1/orders?q=0000003", &acme.support).await;
    assert_eq!(codes(&page), ["MYN-3"], "a part of the number");
    let (_, page) = app
        .get("/api/v1/orders?q=customer%204", &acme.support)
        .await;
    assert_eq!(codes(&page), ["MYN-4"]);
    let (_, page) = app.get("/api/v1/orders?q=C2@EXAMPLE", &acme.support).await;
    assert_eq!(codes(&page), ["MYN-2"]);
    let (_, page) = app
        .get("/api/v1/orders?status=RELEASED", &acme.support)
        .await;
    assert_eq!(
        codes(&page),
        ["MYN-0"],
        "the first order took the only unit"
    );
    let (_, page) = app.get("/api/v1/orders?channel=AJIO", &acme.support).await;
    assert_eq!(codes(&page), ["MYN-3", "MYN-1"], "newest first");
    let (_, first) = app.get("/api/v1/orders?limit=2", &acme.support).await;
    assert_eq!(codes(&first), ["MYN-4", "MYN-3"]);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("more pages")
        .to_owned();
    let (_, second) = app
        .get(
            &format!("/api/v1/orders?limit=2&cursor={cursor}"),
            &acme.support,
        )
        .await;
    assert_eq!(codes(&second), ["MYN-2", "MYN-1"]);
    let (status, body) = app.get("/api/v1/orders?status=LOST", &acme.support).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

async fn an_order_code_in_two_channels_needs_its_channel(app: &TestApp) {
    let acme = shop(app).await;
    app.post(
        "/api/v1/orders",
        &acme.integration,
        b2c("SAME-1", "MYNTRA", "BLOCK_COMPLETE", &[("TEE", 1)], BLR),
    )
    .await;
    let (status, order) = app.get("/api/v1/orders/SAME-1", &acme.admin).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a unique code needs no channel: {order}"
    );
    app.post(
        "/api/v1/orders",
        &acme.integration,
        b2c("SAME-1", "AJIO", "BLOCK_COMPLETE", &[("TEE", 2)], BLR),
    )
    .await;
    let (status, body) = app.get("/api/v1/orders/SAME-1", &acme.admin).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, order) = app
        .get("/api/v1/orders/SAME-1?channel=AJIO", &acme.admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(line(&order, "1")["ordered"], 2);
}

async fn another_clients_order_answers_like_a_missing_one(app: &TestApp) {
    let acme = shop(app).await;
    app.post(
        "/api/v1/orders",
        &acme.integration,
        b2c("MYN-1", "MYNTRA", "BLOCK_COMPLETE", &[("TEE", 1)], BLR),
    )
    .await;
    let globex = app.client("globex").await;
    let (foreign_status, foreign) = app.get("/api/v1/orders/MYN-1", &globex.admin).await;
    let (missing_status, missing) = app.get("/api/v1/orders/MYN-404", &globex.admin).await;
    assert_eq!(
        (foreign_status, missing_status),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(
        foreign["error"]["message"]
            .as_str()
            .map(|m| m.replace("MYN-1", "X")),
        missing["error"]["message"]
            .as_str()
            .map(|m| m.replace("MYN-404", "X"))
    );
    let (status, _) = app
        .post("/api/v1/orders/MYN-1/allocate", &globex.admin, json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = app.get("/api/v1/orders?q=MYN", &globex.admin).await;
    assert_eq!(page["items"], json!([]));
}

async fn retry_none_waits_for_a_person(app: &TestApp) {
    let acme = shop(app).await;
    let mut body = b2c(
        "MYN-1",
        "MYNTRA",
        "MULTI_SHIPMENT_PARTIAL",
        &[("TEE", 2)],
        BLR,
    );
    body["retry"] = json!("NONE");
    let (_, order) = app.post("/api/v1/orders", &acme.integration, body).await;
    assert_eq!(order["status"], "UNFULFILLABLE");
    stock(app, &acme, "BLR1", "TEE", 2).await;
    let round = oms_app::workers::allocation_round(&app.store)
        .await
        .expect("round");
    assert_eq!(
        round.summary.units_allocated, 0,
        "the allocator leaves retry NONE orders alone"
    );
    let (_, order) = app.get("/api/v1/orders/MYN-1", &acme.admin).await;
    assert_eq!(order["status"], "UNFULFILLABLE");
    let (status, order) = app
        .post("/api/v1/orders/MYN-1/allocate", &acme.support, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["status"], "RELEASED");
}

async fn racing_orders_for_scarce_stock_allocate_exactly_what_exists(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 7).await;
    stock(app, &acme, "DEL1", "TEE", 3).await;
    // On PostgreSQL two more `oms serve` processes share the database with the test's own.
    let mut bases = vec![app.base.clone()];
    let mut _processes = Vec::new();
    if app.db == Db::Postgres {
        for _ in 0..2 {
            let (child, base) = crate::operations::spawn_serve(app.database_url()).await;
            _processes.push(child);
            bases.push(base);
        }
    }
    let requests = (0..30).map(|i| {
        let base = bases[i % bases.len()].clone();
        let body = b2c(
            &format!("RACE-{i}"),
            "MYNTRA",
            "MULTI_SHIPMENT_PARTIAL",
            &[("TEE", 1)],
            if i % 2 == 0 { BLR } else { DEL },
        );
        let http = app.http.clone();
        let token = acme.integration.clone();
        async move {
            let response = http
                .request(Method::POST, format!("{base}/api/v1/orders"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("send");
            let status = response.status();
            let body: Value = response.json().await.expect("json");
            (status, body)
        }
    });
    let answers = join_all(requests.collect()).await;
    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::CREATED),
        "{answers:?}"
    );
    let allocated: i64 = answers
        .iter()
        .map(|(_, o)| line(o, "1")["allocated"].as_i64().unwrap_or_default())
        .sum();
    assert_eq!(allocated, 10, "exactly the units that exist");
    let blr = inventory(app, &acme.admin, "TEE", "BLR1").await;
    let del = inventory(app, &acme.admin, "TEE", "DEL1").await;
    assert_eq!(
        (blr["allocated"].as_i64(), del["allocated"].as_i64()),
        (Some(7), Some(3))
    );
    assert_eq!(
        (blr["available"].as_i64(), del["available"].as_i64()),
        (Some(0), Some(0))
    );
}

/// A pass plans its orders in SLA order, but writes each order's events together, order
/// by order (as they were created), `order.allocated` before its shipments' releases: a
/// WMS reading the outbox meets an order whole.
async fn a_pass_writes_each_orders_events_together_in_order(app: &TestApp) {
    const ORDERS: usize = 40;
    let acme = shop(app).await;
    let codes: Vec<String> = (0..ORDERS).map(|i| format!("SPLIT-{i:02}")).collect();
    for (i, code) in codes.iter().enumerate() {
        let mut order = b2c(
            code,
            "MYNTRA",
            "BLOCK_COMPLETE",
            &[("TEE", 1), ("JEANS", 1)],
            BLR,
        );
        // Due at times that are no order of creation: the pass plans them shuffled.
        let hours = (i * 17) % ORDERS;
        order["dispatch_by"] = json!(format!(
            "2026-12-{:02}T{:02}:00:00Z",
            1 + hours / 24,
            hours % 24
        ));
        let (status, body) = app.post("/api/v1/orders", &acme.integration, order).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // TEE only at BLR1, JEANS only at DEL1: no order can be allocated whole until both
    // are in, and then every order ships from both.
    stock(app, &acme, "BLR1", "TEE", ORDERS as i64).await;
    let after = events_after(app, &acme, 0)
        .await
        .last()
        .map_or(0, |last| last["id"].as_i64().expect("id"));
    stock(app, &acme, "DEL1", "JEANS", ORDERS as i64).await;
    let (status, summary) = app
        .post("/api/v1/allocation/run", &acme.admin, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    for code in &codes {
        eventually(app, &acme.admin, code, |o| o["status"] == "RELEASED").await;
    }
    let written: Vec<(String, String)> = events_after(app, &acme, after)
        .await
        .iter()
        .filter(|event| event["type"] != "inventory.changed")
        .map(|event| {
            (
                event["data"]["order_code"]
                    .as_str()
                    .expect("order code")
                    .to_owned(),
                event["type"].as_str().expect("type").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = codes
        .iter()
        .flat_map(|code| {
            ["order.allocated", "shipment.released", "shipment.released"]
                .map(|kind| (code.clone(), kind.to_owned()))
        })
        .collect();
    assert_eq!(written, expected);
}

/// Every outbox event after id `after`, page by page.
async fn events_after(app: &TestApp, keys: &ClientKeys, mut after: i64) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let (status, page) = app
            .get(
                &format!("/api/v1/events?after={after}&limit=500"),
                &keys.integration,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        events.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => return events,
        }
    }
}

/// A file large enough to be checked on several threads reports each bad cell at its
/// own row, wherever in the file it is, and writes nothing; the same file made good is
/// written whole.
async fn a_large_order_file_reports_bad_rows_wherever_they_are(app: &TestApp) {
    const ORDERS: usize = 5_000;
    let acme = shop(app).await;
    let header = "order_code,kind,channel,fulfilment_type,ship_to.name,ship_to.address,\
                  ship_to.pincode,line_id,sku,qty\n";
    let file = |bad: &[(usize, &str)]| {
        let mut file = String::from(header);
        for i in 0..ORDERS {
            // Two lines an order; a bad order's second line has a wrong quantity or no SKU.
            let second = match bad.iter().find(|(at, _)| *at == i) {
                Some((_, wrong)) => *wrong,
                None => "JEANS,1",
            };
            file.push_str(&format!(
                "BIG-{i:05},B2C,MYNTRA,MULTI_SHIPMENT_PARTIAL,Asha,1 MG Road,560001,1,TEE,1\n\
                 BIG-{i:05},B2C,MYNTRA,MULTI_SHIPMENT_PARTIAL,Asha,1 MG Road,560001,2,{second}\n"
            ));
        }
        file
    };
    // Order i's second line is row 2 + 2i + 1.
    let bad = [
        (3, "JEANS,0"),
        (ORDERS / 2 + 1, ",1"),
        (ORDERS - 1, "JEANS,x"),
    ];
    let (status, body) = app
        .upload("outward-orders", &acme.integration, file(&bad))
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let row = |order: usize| (2 * order + 3) as i64;
    assert_eq!(
        rejected_cells(&error),
        [
            (row(3), "qty"),
            (row(ORDERS / 2 + 1), "sku"),
            (row(ORDERS - 1), "qty")
        ],
        "{error}"
    );
    let (_, page) = app.get("/api/v1/orders", &acme.admin).await;
    assert_eq!(
        page["items"],
        json!([]),
        "nothing of a refused file is stored"
    );

    let (status, body) = app
        .upload("outward-orders", &acme.integration, file(&[]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rows"], 2 * ORDERS, "{body}");
    let (_, last) = app
        .get(
            &format!("/api/v1/orders/BIG-{:05}", ORDERS - 1),
            &acme.admin,
        )
        .await;
    assert_eq!(last["lines"].as_array().map(Vec::len), Some(2), "{last}");
}

async fn order_files_are_all_or_nothing_and_allocate_what_they_add(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 4).await;
    let header = "order_code,kind,channel,fulfilment_type,ship_to.name,ship_to.address,ship_to.pincode,ship_to.phone,line_id,sku,qty,price\n";
    let bad = format!(
        "{header}\
        MYN-1,B2C,MYNTRA,MULTI_SHIPMENT_PARTIAL,Asha,12 MG Road,560001,+91 98450 12345,1,TEE,2,499\n\
        MYN-1,B2C,MYNTRA,MULTI_SHIPMENT_PARTIAL,Asha,12 MG Road,560001,+91 98450 12345,2,SOCKS,1,99\n\
        MYN-2,B2C,MYNTRA,BLOCK_COMPLETE,Ravi,1 Park St,700016,,1,TEE,0,499\n\
        SO-1,SO,B2B,BLOCK_COMPLETE,,,,,1,TEE,1,\n"
    );
    let (status, body) = app.upload("outward-orders", &acme.integration, bad).await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        rejected_cells(&error),
        [(4, "qty"), (5, "warehouse")],
        "{error}"
    );

    // Well-formed rows naming a channel or SKU this client does not have are refused
    // per row, like the same order sent as JSON; nothing of the file is written.
    let unknown = format!(
        "{header}\
        MYN-9,B2C,MYNTRA,MULTI_SHIPMENT_PARTIAL,Asha,12 MG Road,560001,+91 98450 12345,1,TEE,1,499\n\
        MYN-9,B2C,MYNTRA,MULTI_SHIPMENT_PARTIAL,Asha,12 MG Road,560001,+91 98450 12345,2,SOCKS,1,99\n\
        NYK-1,B2C,NYKAA,BLOCK_COMPLETE,Ravi,1 Park St,700016,,1,TEE,1,499\n"
    );
    let (status, body) = app
        .upload("outward-orders", &acme.integration, unknown)
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        rejected_cells(&error),
        [(3, "sku"), (4, "channel")],
        "{error}"
    );
    let (_, page) = app.get("/api/v1/orders", &acme.admin).await;
    assert_eq!(
        page["items"],
        json!([]),
        "nothing of a refused file is stored"
    );

    let good = format!(
        "{header}\
        MYN-1,B2C,MYNTRA,MULTI_SHIPMENT_PARTIAL,Asha,12 MG Road,560001,+91 98450 12345,1,TEE,2,499\n\
        MYN-1,B2C,MYNTRA,MULTI_SHIPMENT_PARTIAL,Asha,12 MG Road,560001,+91 98450 12345,2,JEANS,1,99\n\
        MYN-2,B2C,MYNTRA,BLOCK_COMPLETE,Ravi,1 Park St,700016,,1,TEE,2,499\n"
    );
    let (status, body) = app
        .upload("outward-orders", &acme.integration, good.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rows"], 3);
    let (_, first) = app.get("/api/v1/orders/MYN-1", &acme.admin).await;
    assert_eq!(first["status"], "PARTIALLY_ALLOCATED", "{first}");
    assert_eq!(line(&first, "1")["allocated"], 2);
    let (_, second) = app.get("/api/v1/orders/MYN-2", &acme.admin).await;
    assert_eq!(second["status"], "RELEASED");
    let (status, body) = app
        .upload("outward-orders", &acme.integration, good.clone())
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the same file again changes nothing: {body}"
    );
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "BLR1").await["allocated"],
        4
    );
    let changed = good.replace("1,TEE,2,499\nMYN-1", "1,TEE,3,499\nMYN-1");
    let (status, body) = app
        .upload("outward-orders", &acme.integration, changed)
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"][0]["column"], "order_code");
}

/// A pass reads a backlog a page at a time (10,000 orders, then 10,000 lines): one more
/// order than a page, stored while there is no stock, is still seen and allocated by one
/// `POST /allocation/run`. No background worker runs, so only that pass allocates.
async fn a_backlog_larger_than_one_read_page_is_allocated_whole(db: Db) {
    const ORDERS: usize = 10_001;
    let app = TestApp::start_without_workers(db).await;
    let acme = shop(&app).await;
    let mut file = String::from(
        "order_code,kind,channel,fulfilment_type,ship_to.name,ship_to.address,ship_to.pincode,line_id,sku,qty\n",
    );
    for i in 0..ORDERS {
        file.push_str(&format!(
            "BIG-{i},B2C,MYNTRA,MULTI_SHIPMENT_PARTIAL,Asha,12 MG Road,560001,1,TEE,1\n"
        ));
    }
    let (status, body) = app.upload("outward-orders", &acme.integration, file).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    stock(&app, &acme, "BLR1", "TEE", ORDERS as i64).await;
    let (status, summary) = app
        .post("/api/v1/allocation/run", &acme.admin, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(
        (
            summary["orders_seen"].as_u64(),
            summary["lines_allocated"].as_u64(),
            summary["units_allocated"].as_u64()
        ),
        (
            Some(ORDERS as u64),
            Some(ORDERS as u64),
            Some(ORDERS as u64)
        ),
        "{summary}"
    );
    app.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_one_read_page_is_allocated_whole_on_sqlite() {
    a_backlog_larger_than_one_read_page_is_allocated_whole(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_one_read_page_is_allocated_whole_on_postgres() {
    a_backlog_larger_than_one_read_page_is_allocated_whole(Db::Postgres).await;
}
