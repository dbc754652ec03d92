//! Inventory truth: inward orders, GRN, QC, lost and found, absolute counts, pools, the
//! ledger, and `oms check`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, ClientKeys, TestApp, assert_error, inventory, join_all, rejected_cells,
};
use crate::on_both_backends;

on_both_backends!(
    a_po_is_received_and_quality_checked_into_buckets_that_add_up,
    excess_grn_is_allowed_only_when_the_client_says_so,
    qc_fail_reasons_are_the_clients_own,
    inward_orders_refuse_unknown_masters_and_repeated_codes,
    pools_take_only_available_stock_and_always_add_up_to_good,
    lost_found_and_absolute_counts_are_booked_as_movements,
    inward_order_files_are_all_or_nothing,
    pool_movement_files_are_all_or_nothing,
    another_clients_stock_and_inward_orders_are_invisible,
    concurrent_grns_never_receive_more_than_ordered,
    oms_check_reports_a_tampered_balance,
);

/// A client with warehouse BLR1 (and DEL1) mapped, supplier KNITS, SKUs TEE and JEANS.
async fn stocked_client(app: &TestApp, code: &str) -> ClientKeys {
    let keys = app.client(code).await;
    for (warehouse, pincode) in [("BLR1", "560001"), ("DEL1", "110001")] {
        app.put(
            &format!("/api/v1/warehouses/{warehouse}"),
            ADMIN_TOKEN,
            json!({"name": warehouse, "type": "WAREHOUSE", "pincode": pincode}),
        )
        .await;
        let (status, _) = app
            .put(
                &format!("/api/v1/clients/{code}/warehouses/{warehouse}"),
                ADMIN_TOKEN,
                json!({}),
            )
            .await;
        assert!(status.is_success());
    }
    app.put(
        "/api/v1/suppliers/KNITS",
        &keys.admin,
        json!({"name": "Knits"}),
    )
    .await;
    for sku in ["TEE", "JEANS"] {
        let (status, _) = app
            .put(
                &format!("/api/v1/skus/{sku}"),
                &keys.admin,
                json!({"name": sku, "mrp": 500}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    keys
}

fn line<'a>(order: &'a Value, sku: &str) -> &'a Value {
    order["lines"]
        .as_array()
        .and_then(|lines| lines.iter().find(|l| l["sku"] == sku))
        .expect("line")
}

/// Creates PO-1 at BLR1 and receives and passes `good` TEE units into COMMON.
async fn with_good_tees(app: &TestApp, keys: &ClientKeys, good: i64) {
    let (status, body) = app
        .post(
            "/api/v1/inward-orders",
            &keys.integration,
            json!({
        "order_code": "PO-1", "type": "PO", "warehouse": "BLR1", "party": "KNITS",
        "lines": [{"sku": "TEE", "qty": good}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/inward-orders/PO-1/grn",
            &keys.integration,
            json!({"lines": [{"sku": "TEE", "qty": good}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/inward-orders/PO-1/qc",
            &keys.integration,
            json!({"lines": [{"sku": "TEE", "pass": good}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_po_is_received_and_quality_checked_into_buckets_that_add_up(app: &TestApp) {
    let acme = stocked_client(app, "acme").await;
    let (status, order) = app
        .post(
            "/api/v1/inward-orders",
            &acme.admin,
            json!({
        "order_code": "PO-1", "type": "PO", "warehouse": "BLR1", "party": "KNITS",
        "lines": [{"sku": "TEE", "qty": 10}, {"sku": "JEANS", "qty": 5}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "OPEN");
    assert_eq!(line(&order, "TEE")["ordered"], 10);
    assert_eq!(line(&order, "TEE")["received"], 0);

    let (status, order) = app
        .post(
            "/api/v1/inward-orders/PO-1/grn",
            &acme.admin,
            json!({"lines": [{"sku": "TEE", "qty": 6}, {"sku": "JEANS", "qty": 5}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    let (_, order) = app
        .post(
            "/api/v1/inward-orders/PO-1/grn",
            &acme.admin,
            json!({"lines": [{"sku": "TEE", "qty": 4}]}),
        )
        .await;
    assert_eq!(line(&order, "TEE")["received"], 10);
    assert_eq!(line(&order, "TEE")["awaiting_qc"], 10);
    assert_eq!(
        inventory(app, &acme.support, "TEE", "BLR1").await["qc_pending"],
        10
    );

    let (status, body) = app
        .post(
            "/api/v1/inward-orders/PO-1/grn",
            &acme.admin,
            json!({"lines": [{"sku": "TEE", "qty": 1}]}),
        )
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"][0]["field"], "lines[0].qty");
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "BLR1").await["qc_pending"],
        10,
        "a refused GRN moves nothing"
    );

    let (status, order) = app
        .post(
            "/api/v1/inward-orders/PO-1/qc",
            &acme.admin,
            json!({"lines": [
        {"sku": "TEE", "pass": 7, "fail": 2, "fail_reason": "DAMAGED", "lost": 1},
        {"sku": "JEANS", "pass": 5}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    let tee = line(&order, "TEE");
    assert_eq!(
        (
            tee["qc_pass"].as_i64(),
            tee["qc_fail"].as_i64(),
            tee["lost"].as_i64(),
            tee["awaiting_qc"].as_i64()
        ),
        (Some(7), Some(2), Some(1), Some(0))
    );

    let stock = inventory(app, &acme.support, "TEE", "BLR1").await;
    assert_eq!(stock["qc_pending"], 0);
    assert_eq!(stock["good"], 7);
    assert_eq!(stock["available"], 7);
    assert_eq!(stock["allocated"], 0);
    assert_eq!(stock["bad"], 2);
    assert_eq!(stock["bad_by_reason"], json!({"DAMAGED": 2}));
    assert_eq!(stock["lost"], 1);
    assert_eq!(
        stock["pools"],
        json!([{"pool": "COMMON", "qty": 7, "allocated": 0, "available": 7}])
    );

    let (status, body) = app
        .post(
            "/api/v1/inward-orders/PO-1/qc",
            &acme.admin,
            json!({"lines": [{"sku": "TEE", "pass": 1}]}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    let (status, ledger) = app
        .get(
            "/api/v1/inventory/ledger?sku=TEE&warehouse=BLR1",
            &acme.support,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let kinds: Vec<&str> = ledger["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["GRN", "GRN", "QC_PASS", "QC_FAIL", "LOST_IN_QC"]);
    let fail = &ledger["items"][3];
    assert_eq!(fail["from_bucket"], "QC_PENDING");
    assert_eq!(fail["to_bucket"], "BAD:DAMAGED");
    assert_eq!(fail["qty"], 2);
    assert_eq!(fail["reference"], "inward:PO-1");
    assert!(
        fail["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("key:")),
        "{fail}"
    );
    let (_, page) = app
        .get(
            &format!(
                "/api/v1/inventory/ledger?sku=TEE&limit=2&after={}",
                ledger["items"][1]["id"]
            ),
            &acme.admin,
        )
        .await;
    assert_eq!(page["items"][0]["kind"], "QC_PASS");
    assert!(page["next_after"].is_i64());

    let (status, closed) = app
        .post("/api/v1/inward-orders/PO-1/close", &acme.admin, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["status"], "CLOSED");
    let (status, body) = app
        .post(
            "/api/v1/inward-orders/PO-1/grn",
            &acme.admin,
            json!({"lines": [{"sku": "TEE", "qty": 1}]}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (_, list) = app
        .get("/api/v1/inward-orders?status=CLOSED", &acme.support)
        .await;
    assert_eq!(list["items"][0]["order_code"], "PO-1");
}

async fn excess_grn_is_allowed_only_when_the_client_says_so(app: &TestApp) {
    let acme = stocked_client(app, "acme").await;
    app.post(
        "/api/v1/inward-orders",
        &acme.admin,
        json!({"order_code": "PO-1", "type": "PO", "warehouse": "BLR1",
        "lines": [{"sku": "TEE", "qty": 2}]}),
    )
    .await;
    let (status, body) = app
        .post(
            "/api/v1/inward-orders/PO-1/grn",
            &acme.admin,
            json!({"lines": [{"sku": "TEE", "qty": 3}]}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    app.put(
        "/api/v1/settings",
        &acme.admin,
        json!({"excess_grn_allowed": true}),
    )
    .await;
    let (status, order) = app
        .post(
            "/api/v1/inward-orders/PO-1/grn",
            &acme.admin,
            json!({"lines": [{"sku": "TEE", "qty": 3}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(line(&order, "TEE")["received"], 3);
}

async fn qc_fail_reasons_are_the_clients_own(app: &TestApp) {
    let acme = stocked_client(app, "acme").await;
    app.put(
        "/api/v1/settings",
        &acme.admin,
        json!({"qc_fail_reasons": ["TORN"]}),
    )
    .await;
    app.post(
        "/api/v1/inward-orders",
        &acme.admin,
        json!({"order_code": "PO-1", "type": "PO", "warehouse": "BLR1",
        "lines": [{"sku": "TEE", "qty": 4}]}),
    )
    .await;
    app.post(
        "/api/v1/inward-orders/PO-1/grn",
        &acme.admin,
        json!({"lines": [{"sku": "TEE", "qty": 4}]}),
    )
    .await;
    for bad in [
        json!({"sku": "TEE", "fail": 1, "fail_reason": "DAMAGED"}),
        json!({"sku": "TEE", "fail": 1}),
        json!({"sku": "TEE", "pass": -1}),
        json!({"sku": "SOCKS", "pass": 1}),
        json!({"sku": "TEE"}),
    ] {
        let (status, body) = app
            .post(
                "/api/v1/inward-orders/PO-1/qc",
                &acme.admin,
                json!({"lines": [bad]}),
            )
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
            "/api/v1/inward-orders/PO-1/qc",
            &acme.admin,
            json!({"lines": [{"sku": "TEE", "fail": 1, "fail_reason": "TORN"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "BLR1").await["bad_by_reason"],
        json!({"TORN": 1})
    );
}

async fn inward_orders_refuse_unknown_masters_and_repeated_codes(app: &TestApp) {
    let acme = stocked_client(app, "acme").await;
    app.put(
        "/api/v1/warehouses/MUM1",
        ADMIN_TOKEN,
        json!({"name": "M", "type": "WAREHOUSE", "pincode": "400001"}),
    )
    .await;
    let (status, body) = app.post("/api/v1/inward-orders", &acme.admin, json!({"order_code": "PO-1", "type": "PO",
        "warehouse": "MUM1", "party": "NOBODY", "lines": [{"sku": "TEE", "qty": 1}, {"sku": "SOCKS", "qty": 1}, {"sku": "JEANS", "qty": 0}]})).await;
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
    assert_eq!(
        fields,
        ["lines[2].qty"],
        "shape problems come first: {error}"
    );
    let (status, body) = app.post("/api/v1/inward-orders", &acme.admin, json!({"order_code": "PO-1", "type": "PO",
        "warehouse": "MUM1", "party": "NOBODY", "lines": [{"sku": "TEE", "qty": 1}, {"sku": "SOCKS", "qty": 1}]})).await;
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
    assert_eq!(fields, ["warehouse", "party", "lines[1].sku"]);
    let (status, body) = app
        .post(
            "/api/v1/inward-orders",
            &acme.admin,
            json!({"order_code": "ST-1", "type": "ST",
        "warehouse": "BLR1", "party": "DEL1", "lines": [{"sku": "TEE", "qty": 1}]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a stock transfer names its source warehouse: {body}"
    );
    let (status, body) = app
        .post(
            "/api/v1/inward-orders",
            &acme.admin,
            json!({"order_code": "ST-1", "type": "PO",
        "warehouse": "BLR1", "lines": [{"sku": "TEE", "qty": 1}]}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = app
        .post(
            "/api/v1/inward-orders",
            &acme.support,
            json!({"order_code": "PO-9", "type": "PO",
        "warehouse": "BLR1", "lines": [{"sku": "TEE", "qty": 1}]}),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .post(
            "/api/v1/inward-orders",
            &acme.admin,
            json!({"order_code": "PO-2", "type": "GIFT",
        "warehouse": "BLR1", "lines": []}),
        )
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"].as_array().map(Vec::len), Some(2));
    let (status, body) = app
        .delete("/api/v1/clients/acme/warehouses/BLR1", ADMIN_TOKEN)
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
}

async fn pools_take_only_available_stock_and_always_add_up_to_good(app: &TestApp) {
    let acme = stocked_client(app, "acme").await;
    with_good_tees(app, &acme, 7).await;
    let (status, body) = app
        .put(
            "/api/v1/pools/MYNTRA",
            &acme.admin,
            json!({"name": "Myntra", "channels": ["MYNTRA"]}),
        )
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"][0]["field"], "channels[0]");
    app.put(
        "/api/v1/channels/MYNTRA",
        &acme.admin,
        json!({"name": "Myntra", "type": "MARKETPLACE"}),
    )
    .await;
    let (status, pool) = app
        .put(
            "/api/v1/pools/MYNTRA",
            &acme.admin,
            json!({"name": "Myntra", "channels": ["MYNTRA"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pool}");
    let (status, body) = app
        .put(
            "/api/v1/pools/COMMON",
            &acme.admin,
            json!({"name": "Mine", "channels": []}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .put(
            "/api/v1/pools/EXPORTS",
            &acme.integration,
            json!({"name": "Exports", "channels": []}),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (_, pools) = app.get("/api/v1/pools", &acme.support).await;
    assert_eq!(pools[0]["code"], "COMMON");
    assert_eq!(pools[1]["channels"], json!(["MYNTRA"]));

    let movement = |qty: i64, from: &str, to: &str| json!({"warehouse": "BLR1", "sku": "TEE", "from_pool": from, "to_pool": to, "qty": qty});
    let (status, stock) = app
        .post(
            "/api/v1/pool-movements",
            &acme.integration,
            movement(3, "COMMON", "MYNTRA"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stock}");
    assert_eq!(stock["good"], 7);
    assert_eq!(
        stock["pools"],
        json!([
        {"pool": "COMMON", "qty": 4, "allocated": 0, "available": 4},
        {"pool": "MYNTRA", "qty": 3, "allocated": 0, "available": 3}])
    );
    let (status, body) = app
        .post(
            "/api/v1/pool-movements",
            &acme.integration,
            movement(4, "MYNTRA", "COMMON"),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = app
        .post(
            "/api/v1/pool-movements",
            &acme.integration,
            movement(1, "COMMON", "NOPE"),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .post(
            "/api/v1/pool-movements",
            &acme.integration,
            movement(1, "COMMON", "COMMON"),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .post(
            "/api/v1/pool-movements",
            &acme.integration,
            movement(0, "COMMON", "MYNTRA"),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let stock = inventory(app, &acme.admin, "TEE", "BLR1").await;
    assert_eq!(stock["pools"][1]["qty"], 3, "refused moves changed nothing");
    let sum: i64 = stock["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .map(|p| p["qty"].as_i64().unwrap_or_default())
        .sum();
    assert_eq!(Some(sum), stock["good"].as_i64());
}

async fn lost_found_and_absolute_counts_are_booked_as_movements(app: &TestApp) {
    let acme = stocked_client(app, "acme").await;
    with_good_tees(app, &acme, 6).await;
    let lost =
        |qty: i64| json!({"warehouse": "BLR1", "sku": "TEE", "qty": qty, "reason": "rack 4 count"});
    let (status, stock) = app
        .post("/api/v1/inventory/lost", &acme.integration, lost(2))
        .await;
    assert_eq!(status, StatusCode::OK, "{stock}");
    assert_eq!(
        (stock["good"].as_i64(), stock["lost"].as_i64()),
        (Some(4), Some(2))
    );
    let (status, body) = app
        .post("/api/v1/inventory/lost", &acme.integration, lost(5))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = app
        .post(
            "/api/v1/inventory/lost",
            &acme.integration,
            json!({"warehouse": "BLR1", "sku": "TEE", "qty": 1}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, stock) = app
        .post(
            "/api/v1/inventory/found",
            &acme.integration,
            json!({"warehouse": "BLR1", "sku": "TEE", "qty": 1, "reason": "behind rack"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stock}");
    assert_eq!(
        (stock["good"].as_i64(), stock["lost"].as_i64()),
        (Some(5), Some(1))
    );
    let (status, body) = app
        .post(
            "/api/v1/inventory/found",
            &acme.integration,
            json!({"warehouse": "BLR1", "sku": "TEE", "qty": 2, "reason": "x"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");

    app.put(
        "/api/v1/channels/MYNTRA",
        &acme.admin,
        json!({"name": "Myntra", "type": "MARKETPLACE"}),
    )
    .await;
    app.put(
        "/api/v1/pools/MYNTRA",
        &acme.admin,
        json!({"name": "Myntra", "channels": ["MYNTRA"]}),
    )
    .await;
    app.post("/api/v1/pool-movements", &acme.admin, json!({"warehouse": "BLR1", "sku": "TEE", "from_pool": "COMMON", "to_pool": "MYNTRA", "qty": 3})).await;

    let (status, after) = app.post("/api/v1/inventory/absolute", &acme.integration,
        json!({"warehouse": "BLR1", "items": [{"sku": "TEE", "good": 9}, {"sku": "JEANS", "good": 4}]})).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after[0]["good"], 9);
    assert_eq!(
        after[0]["pools"][0],
        json!({"pool": "COMMON", "qty": 6, "allocated": 0, "available": 6})
    );
    assert_eq!(after[1]["good"], 4);
    let (status, after) = app
        .post(
            "/api/v1/inventory/absolute",
            &acme.integration,
            json!({"warehouse": "BLR1", "items": [{"sku": "TEE", "good": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(
        after[0]["pools"],
        json!([{"pool": "MYNTRA", "qty": 1, "allocated": 0, "available": 1}]),
        "a count below good takes COMMON first, then named pools"
    );
    for bad in [
        json!({"warehouse": "BLR1", "items": [{"sku": "TEE", "good": -1}]}),
        json!({"warehouse": "BLR1", "items": [{"sku": "SOCKS", "good": 1}]}),
        json!({"warehouse": "BLR1", "items": [{"sku": "TEE", "good": 1}, {"sku": "TEE", "good": 2}]}),
        json!({"warehouse": "NOPE", "items": [{"sku": "TEE", "good": 1}]}),
        json!({"warehouse": "BLR1", "items": []}),
    ] {
        let (status, body) = app
            .post("/api/v1/inventory/absolute", &acme.integration, bad.clone())
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (status, body) = app.post("/api/v1/inventory/absolute", &acme.integration,
        json!({"warehouse": "BLR1", "items": [{"sku": "JEANS", "good": 10}, {"sku": "SOCKS", "good": 1}]})).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        inventory(app, &acme.admin, "JEANS", "BLR1").await["good"],
        4,
        "a refused count writes none of its items"
    );
    let (_, ledger) = app
        .get("/api/v1/inventory/ledger?sku=TEE&limit=100", &acme.admin)
        .await;
    let adjustments = ledger["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|r| r["kind"] == "ABSOLUTE_ADJUSTMENT")
        .count();
    assert_eq!(
        adjustments, 3,
        "one up, then down from COMMON and from MYNTRA"
    );
}

async fn inward_order_files_are_all_or_nothing(app: &TestApp) {
    let acme = stocked_client(app, "acme").await;
    let bad = "order_code,type,warehouse,party,sku,qty\n\
               PO-1,PO,BLR1,KNITS,TEE,10\n\
               PO-1,PO,BLR1,KNITS,JEANS,5\n\
               PO-2,PO,BLR1,,SOCKS,3\n\
               PO-2,PO,DEL1,,TEE,0\n";
    let (status, body) = app.upload("inward-orders", &acme.integration, bad).await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        rejected_cells(&error),
        [(5, "warehouse"), (5, "qty")],
        "{error}"
    );
    let (status, _) = app.get("/api/v1/inward-orders/PO-1", &acme.admin).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "nothing of a refused file is written"
    );

    let unknown_sku = "order_code,type,warehouse,party,sku,qty\nPO-1,PO,BLR1,KNITS,TEE,10\nPO-2,PO,BLR1,,SOCKS,3\n";
    let (status, body) = app
        .upload("inward-orders", &acme.integration, unknown_sku)
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        error["details"][0],
        json!({"row": 3, "column": "sku", "message": "SOCKS is not a SKU of this client"})
    );

    let good = "order_code,type,warehouse,party,sku,qty\nPO-1,PO,BLR1,KNITS,TEE,10\nPO-1,PO,BLR1,KNITS,JEANS,5\nPO-2,PO,DEL1,,TEE,3\n";
    let (status, body) = app.upload("inward-orders", &acme.integration, good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rows"], 3);
    let (_, order) = app.get("/api/v1/inward-orders/PO-1", &acme.admin).await;
    assert_eq!(order["lines"].as_array().map(Vec::len), Some(2));
    let (status, body) = app.upload("inward-orders", &acme.integration, good).await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        error["details"][0]["message"],
        "inward order PO-1 exists already"
    );
}

async fn pool_movement_files_are_all_or_nothing(app: &TestApp) {
    let acme = stocked_client(app, "acme").await;
    with_good_tees(app, &acme, 5).await;
    app.put(
        "/api/v1/channels/MYNTRA",
        &acme.admin,
        json!({"name": "Myntra", "type": "MARKETPLACE"}),
    )
    .await;
    app.put(
        "/api/v1/pools/MYNTRA",
        &acme.admin,
        json!({"name": "Myntra", "channels": ["MYNTRA"]}),
    )
    .await;
    let bad =
        "warehouse,sku,from_pool,to_pool,qty\nBLR1,TEE,COMMON,MYNTRA,3\nBLR1,TEE,COMMON,MYNTRA,3\n";
    let (status, body) = app.upload("pool-movements", &acme.integration, bad).await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        error["details"][0]["row"], 3,
        "the second row finds only 2 left: {error}"
    );
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "BLR1").await["pools"][0]["qty"],
        5,
        "the first row was rolled back"
    );
    let good =
        "warehouse,sku,from_pool,to_pool,qty\nBLR1,TEE,COMMON,MYNTRA,3\nBLR1,TEE,MYNTRA,COMMON,1\n";
    let (status, body) = app.upload("pool-movements", &acme.integration, good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stock = inventory(app, &acme.admin, "TEE", "BLR1").await;
    assert_eq!(stock["pools"][1]["qty"], 2);
}

async fn another_clients_stock_and_inward_orders_are_invisible(app: &TestApp) {
    let acme = stocked_client(app, "acme").await;
    with_good_tees(app, &acme, 3).await;
    let globex = app.client("globex").await;
    app.put(
        "/api/v1/clients/globex/warehouses/BLR1",
        ADMIN_TOKEN,
        json!({}),
    )
    .await;
    let (foreign_status, foreign) = app.get("/api/v1/inward-orders/PO-1", &globex.admin).await;
    let (missing_status, missing) = app.get("/api/v1/inward-orders/PO-404", &globex.admin).await;
    assert_eq!(
        (foreign_status, missing_status),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(
        foreign["error"]["message"]
            .as_str()
            .map(|m| m.replace("PO-1", "X")),
        missing["error"]["message"]
            .as_str()
            .map(|m| m.replace("PO-404", "X"))
    );
    let (status, _) = app
        .post(
            "/api/v1/inward-orders/PO-1/grn",
            &globex.admin,
            json!({"lines": [{"sku": "TEE", "qty": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, stock) = app.get("/api/v1/inventory", &globex.admin).await;
    assert_eq!(stock["items"], json!([]));
    let (_, ledger) = app.get("/api/v1/inventory/ledger", &globex.admin).await;
    assert_eq!(ledger["items"], json!([]));
    let (status, body) = app
        .post(
            "/api/v1/inventory/lost",
            &globex.admin,
            json!({"warehouse": "BLR1", "sku": "TEE", "qty": 1, "reason": "x"}),
        )
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        error["details"][0]["field"], "sku",
        "acme's SKU is no SKU of globex"
    );
    assert_eq!(inventory(app, &acme.admin, "TEE", "BLR1").await["good"], 3);
}

async fn concurrent_grns_never_receive_more_than_ordered(app: &TestApp) {
    let acme = stocked_client(app, "acme").await;
    app.post(
        "/api/v1/inward-orders",
        &acme.admin,
        json!({"order_code": "PO-1", "type": "PO", "warehouse": "BLR1",
        "lines": [{"sku": "TEE", "qty": 5}]}),
    )
    .await;
    let mut requests = Vec::new();
    for _ in 0..12 {
        let body = json!({"lines": [{"sku": "TEE", "qty": 1}]});
        requests.push(app.post("/api/v1/inward-orders/PO-1/grn", &acme.integration, body));
    }
    let answers = join_all(requests).await;
    let accepted = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    for (status, body) in &answers {
        assert!(
            matches!(
                *status,
                StatusCode::OK | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT
            ),
            "{status} {body}"
        );
    }
    assert_eq!(accepted, 5);
    let (_, order) = app.get("/api/v1/inward-orders/PO-1", &acme.admin).await;
    assert_eq!(line(&order, "TEE")["received"], 5);
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "BLR1").await["qc_pending"],
        5
    );
}

async fn oms_check_reports_a_tampered_balance(app: &TestApp) {
    let acme = stocked_client(app, "acme").await;
    with_good_tees(app, &acme, 4).await;
    let check = || async {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_oms"))
            .args(["check"])
            .env("DATABASE_URL", app.database_url())
            .output()
            .await
            .expect("oms check")
    };
    let clean = check().await;
    let stdout = String::from_utf8_lossy(&clean.stdout);
    assert!(
        clean.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(stdout.contains("0 breaches"), "{stdout}");

    let tamper = |delta: i64| async move {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE stock SET qty = qty + {delta} WHERE bucket = 'AVAILABLE:COMMON'"
        )))
        .execute(app.store.pool())
        .await
        .expect("tamper");
    };
    tamper(1).await;
    let broken = check().await;
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert!(!broken.status.success(), "{stdout}");
    assert!(
        stdout.contains("BREACH") && stdout.contains("differs from the ledger's replay"),
        "{stdout}"
    );
    tamper(-1).await;
}
