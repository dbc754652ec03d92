//! Races and edges: concurrent counts, a cancel racing a pick, empty lists, NUL bytes,
//! the OMS's own inward codes, and an RTO of a stock transfer.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::inventory;
use crate::helpers::{TestApp, assert_error, join_all};
use crate::on_both_backends;
use crate::orders::{BLR, b2c, line, shop, stock};

on_both_backends!(
    concurrent_identical_absolute_counts_land_on_the_count,
    a_cancel_racing_a_pick_never_frees_picked_units,
    an_empty_lines_list_does_not_cancel_the_whole_order,
    a_nul_in_a_query_parameter_is_not_a_500,
    the_omss_own_inward_codes_are_reserved_so_an_rto_is_never_blocked,
    an_rto_of_a_stock_transfer_closes_the_transit_inward,
    stock_writers_meeting_on_the_same_keys_in_opposite_orders_never_deadlock,
);

fn shipped() -> serde_json::Value {
    json!({"status": "SHIPPED", "awb": "AWB1", "carrier": "X"})
}

async fn concurrent_identical_absolute_counts_land_on_the_count(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 10).await;
    for round in 0..10 {
        // The WMS re-sends the same count (a retry after a timeout, two sync workers...).
        let counted = 12 + 2 * round;
        let body = json!({"warehouse": "BLR1", "items": [{"sku": "TEE", "good": counted}]});
        let answers = join_all(
            (0..16)
                .map(|_| {
                    app.post(
                        "/api/v1/inventory/absolute",
                        &acme.integration,
                        body.clone(),
                    )
                })
                .collect(),
        )
        .await;
        let statuses: Vec<u16> = answers.iter().map(|(s, _)| s.as_u16()).collect();
        let good = inventory(app, &acme.admin, "TEE", "BLR1").await["good"].clone();
        assert_eq!(
            good, counted,
            "round {round}: statuses {statuses:?}; the WMS counted {counted}"
        );
    }
}

async fn a_cancel_racing_a_pick_never_frees_picked_units(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 40).await;
    for i in 0..30 {
        let code = format!("RACE-{i}");
        let (status, order) = app
            .post(
                "/api/v1/orders",
                &acme.integration,
                b2c(
                    &code,
                    "MYNTRA",
                    "MULTI_SHIPMENT_PARTIAL",
                    &[("TEE", 1)],
                    BLR,
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        let shipment = order["shipments"][0]["shipment_id"].as_i64().unwrap();
        let cancel_path = format!("/api/v1/orders/{code}/cancel");
        let pick_path = format!("/api/v1/shipments/{shipment}/status");
        let cancel = app.post(&cancel_path, &acme.support, json!({"reason": "fraud"}));
        let pick = app.post(&pick_path, &acme.integration, json!({"status": "PICKED"}));
        let (c, p) = tokio::join!(cancel, pick);
        if c.0 == StatusCode::OK && p.0 == StatusCode::OK {
            let before_ship = inventory(app, &acme.admin, "TEE", "BLR1").await;
            for body in [json!({"status": "PACKED"}), shipped()] {
                let (s, b) = app.post(&pick_path, &acme.integration, body).await;
                assert_eq!(s, StatusCode::OK, "{b}");
            }
            let after_ship = inventory(app, &acme.admin, "TEE", "BLR1").await;
            let report = oms_app::check::run(&app.store).await.expect("check");
            panic!(
                "attempt {i}: cancel and pick both 200. Stock before ship {before_ship}; after the \
                 WMS shipped the picked parcel {after_ship}; oms check breaches: {:?}",
                report.breaches
            );
        }
        assert!(
            !(c.0 == StatusCode::OK && p.0 == StatusCode::OK),
            "attempt {i}: both the cancel and the pick succeeded: the WMS holds picked units \
             whose stock went back to available.\ncancel: {}\npick: {}",
            c.1,
            p.1
        );
    }
}

async fn an_empty_lines_list_does_not_cancel_the_whole_order(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 5).await;
    let (status, order) = app
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
    assert_eq!(status, StatusCode::CREATED, "{order}");
    for lines in [json!([]), json!([{}])] {
        let (status, body) = app
            .post(
                "/api/v1/orders/MYN-1/cancel",
                &acme.support,
                json!({"reason": "nothing today", "lines": lines}),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (_, after) = app.get("/api/v1/orders/MYN-1", &acme.admin).await;
    assert_eq!(line(&after, "1")["cancelled"], 0, "{after}");
}

async fn a_nul_in_a_query_parameter_is_not_a_500(app: &TestApp) {
    let acme = shop(app).await;
    for path in [
        "/api/v1/orders?q=%00",
        "/api/v1/inventory?sku=%00",
        "/api/v1/skus?cursor=%00",
        "/api/v1/orders/MYN-1?channel=%00",
    ] {
        let (status, body) = app.get(path, &acme.admin).await;
        assert!(status.is_client_error(), "{path}: {status} {body}");
    }
}

async fn the_omss_own_inward_codes_are_reserved_so_an_rto_is_never_blocked(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 5).await;
    let (_, order) = app
        .post(
            "/api/v1/orders",
            &acme.integration,
            b2c(
                "MYN-1",
                "MYNTRA",
                "MULTI_SHIPMENT_PARTIAL",
                &[("TEE", 1)],
                BLR,
            ),
        )
        .await;
    let shipment = order["shipments"][0]["shipment_id"].as_i64().unwrap();
    let path = format!("/api/v1/shipments/{shipment}/status");
    for body in [
        json!({"status": "PICKED"}),
        json!({"status": "PACKED"}),
        shipped(),
    ] {
        let (s, b) = app.post(&path, &acme.integration, body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    // A client's own purchase order may not take the code the RTO will use.
    let (s, b) = app
        .post(
            "/api/v1/inward-orders",
            &acme.integration,
            json!({"order_code": format!("RTO-S{shipment}"), "type": "PO", "warehouse": "BLR1",
                   "lines": [{"sku": "TEE", "qty": 1}]}),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let (s, b) = app
        .post(&path, &acme.integration, json!({"status": "RTO"}))
        .await;
    assert_eq!(s, StatusCode::OK, "the carrier returned the parcel: {b}");
}

async fn an_rto_of_a_stock_transfer_closes_the_transit_inward(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 3).await;
    let st = json!({"order_code": "ST-1", "kind": "ST", "channel": "B2B", "fulfilment_type": "BLOCK_COMPLETE",
                    "warehouse": "BLR1", "destination_warehouse": "DEL1", "lines": [{"line_id": "1", "sku": "TEE", "qty": 3}]});
    let (_, order) = app.post("/api/v1/orders", &acme.integration, st).await;
    let shipment = order["shipments"][0]["shipment_id"].as_i64().unwrap();
    let path = format!("/api/v1/shipments/{shipment}/status");
    for body in [
        json!({"status": "PICKED"}),
        json!({"status": "PACKED"}),
        shipped(),
        json!({"status": "RTO"}),
    ] {
        let (s, b) = app.post(&path, &acme.integration, body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    // The goods came back to BLR1; the transit order at DEL1 must not receive them too.
    let (s, _) = app
        .post(
            &format!("/api/v1/inward-orders/TRANSIT-S{shipment}/grn"),
            &acme.admin,
            json!({"lines": [{"sku": "TEE", "qty": 3}]}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "the transit inward order is closed"
    );
    let blr = inventory(app, &acme.admin, "TEE", "BLR1").await;
    let del = inventory(app, &acme.admin, "TEE", "DEL1").await;
    let total = blr["qc_pending"].as_i64().unwrap_or(0) + del["qc_pending"].as_i64().unwrap_or(0);
    assert_eq!(
        total, 3,
        "GRN answered {s}; 3 units exist, QC-pending holds {total}"
    );
}

/// Deadlocks PostgreSQL has detected in this test's database so far (0 on SQLite).
async fn deadlocks(app: &TestApp) -> i64 {
    use sqlx::Row;
    if app.store.backend() == oms_store::Backend::Sqlite {
        return 0;
    }
    sqlx::query("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(app.store.pool())
        .await
        .expect("pg_stat_database")
        .try_get("deadlocks")
        .expect("deadlocks")
}

/// QC of two-line inward orders (lines in both SKU orders), cancellations of allocated
/// two-line orders and new orders allocating the same two keys, all at once. Each use case
/// takes its stock keys in one global order before any other lock, so none deadlocks: the
/// storm (`oms storm`) found QC, cancel and allocation deadlocking on PostgreSQL, each
/// broken only after a second, and four in a row answered 503.
async fn stock_writers_meeting_on_the_same_keys_in_opposite_orders_never_deadlock(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 100).await;
    stock(app, &acme, "BLR1", "JEANS", 100).await;
    let before = deadlocks(app).await;
    let both = |first: &str, second: &str, field: &str| json!({"lines": [{"sku": first, field: 5}, {"sku": second, field: 5}]});
    for round in 0..3 {
        let mut requests = Vec::new();
        for i in 0..8 {
            let (first, second) = if i % 2 == 0 {
                ("TEE", "JEANS")
            } else {
                ("JEANS", "TEE")
            };
            let inward = format!("PO-DL-{round}-{i}");
            let mut order = both(first, second, "qty");
            order["order_code"] = json!(inward);
            order["type"] = json!("PO");
            order["warehouse"] = json!("BLR1");
            let (status, body) = app
                .post("/api/v1/inward-orders", &acme.integration, order)
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let (status, body) = app
                .post(
                    &format!("/api/v1/inward-orders/{inward}/grn"),
                    &acme.integration,
                    both(first, second, "qty"),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let code = format!("DL-{round}-{i}");
            let (status, body) = app
                .post(
                    "/api/v1/orders",
                    &acme.integration,
                    b2c(
                        &code,
                        "MYNTRA",
                        "MULTI_SHIPMENT_PARTIAL",
                        &[(first, 1), (second, 1)],
                        BLR,
                    ),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            requests.push((
                format!("/api/v1/inward-orders/{inward}/qc"),
                both(second, first, "pass"),
            ));
            requests.push((
                format!("/api/v1/orders/{code}/cancel"),
                json!({"reason": "deadlock race"}),
            ));
            requests.push((
                "/api/v1/orders".to_owned(),
                b2c(
                    &format!("DL-NEW-{round}-{i}"),
                    "MYNTRA",
                    "MULTI_SHIPMENT_PARTIAL",
                    &[(second, 1), (first, 1)],
                    BLR,
                ),
            ));
        }
        let answers = join_all(
            requests
                .iter()
                .map(|(path, body)| app.post(path, &acme.integration, body.clone()))
                .collect(),
        )
        .await;
        for ((path, _), (status, body)) in requests.iter().zip(&answers) {
            assert!(status.is_success(), "{path}: {status} {body}");
        }
    }
    // The statistics reach pg_stat_database within a second or so.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(deadlocks(app).await - before, 0, "deadlocks were detected");
}
