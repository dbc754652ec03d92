//! Fulfilment: the WMS's status updates, shipping, RTO, stock transfers, seller
//! cancellation, remarks and the event feed.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::inventory;
use crate::helpers::{ClientKeys, TestApp, assert_error, event_of};
use crate::on_both_backends;
use crate::orders::{BLR, b2c, eventually, line, shop, stock};

on_both_backends!(
    a_shipment_moves_forward_to_delivery_and_shipping_takes_the_stock_out,
    an_rto_brings_the_goods_back_for_qc,
    shipping_a_stock_transfer_opens_its_inward_order_at_the_destination,
    sellers_cancel_open_and_unpicked_units_and_nothing_more,
    cancelling_a_whole_order_frees_its_stock_for_waiting_orders,
    remarks_are_added_and_edited_with_their_author,
    the_event_feed_lists_every_change_in_order,
    cancellation_files_are_all_or_nothing,
);

/// An order of `qty` TEE from MYNTRA, released at once; answers it and its shipment id.
pub async fn released(app: &TestApp, keys: &ClientKeys, code: &str, qty: i64) -> (Value, i64) {
    let (status, order) = app
        .post(
            "/api/v1/orders",
            &keys.integration,
            b2c(
                code,
                "MYNTRA",
                "MULTI_SHIPMENT_PARTIAL",
                &[("TEE", qty)],
                BLR,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let shipment = order["shipments"][0]["shipment_id"]
        .as_i64()
        .expect("a released shipment");
    (order, shipment)
}

async fn set(app: &TestApp, keys: &ClientKeys, shipment: i64, body: Value) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/shipments/{shipment}/status"),
        &keys.integration,
        body,
    )
    .await
}

fn shipped() -> Value {
    json!({"status": "SHIPPED", "awb": "AWB123456", "carrier": "Delhivery"})
}

async fn a_shipment_moves_forward_to_delivery_and_shipping_takes_the_stock_out(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 5).await;
    let (_, shipment) = released(app, &acme, "MYN-1", 2).await;
    let (status, order) = set(app, &acme, shipment, json!({"status": "PICKED"})).await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["shipments"][0]["status"], "PICKED");
    let (status, _) = set(app, &acme, shipment, json!({"status": "PICKED"})).await;
    assert_eq!(status, StatusCode::OK, "a repeat is a no-op");
    let (status, body) = set(app, &acme, shipment, shipped()).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, _) = set(app, &acme, shipment, json!({"status": "PACKED"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = set(app, &acme, shipment, json!({"status": "SHIPPED"})).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = set(app, &acme, shipment, json!({"status": "LOST"})).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let before = inventory(app, &acme.admin, "TEE", "BLR1").await;
    assert_eq!(
        (before["good"].as_i64(), before["allocated"].as_i64()),
        (Some(5), Some(2))
    );

    let (status, order) = set(app, &acme, shipment, shipped()).await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["status"], "SHIPPED");
    assert_eq!(order["shipments"][0]["awb"], "AWB123456");
    let tee = line(&order, "1");
    assert_eq!(
        (tee["allocated"].as_i64(), tee["shipped"].as_i64()),
        (Some(0), Some(2))
    );
    let after = inventory(app, &acme.admin, "TEE", "BLR1").await;
    assert_eq!(
        (
            after["good"].as_i64(),
            after["allocated"].as_i64(),
            after["shipped"].as_i64(),
            after["available"].as_i64()
        ),
        (Some(3), Some(0), Some(2), Some(3))
    );
    let (status, _) = set(app, &acme, shipment, shipped()).await;
    assert_eq!(status, StatusCode::OK, "shipping again changes nothing");
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "BLR1").await["shipped"],
        2
    );

    let (status, order) = set(app, &acme, shipment, json!({"status": "DELIVERED"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(order["status"], "DELIVERED");
    let (status, body) = set(app, &acme, shipment, json!({"status": "PACKED"})).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = set(app, &acme, shipment, json!({"status": "RTO"})).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");

    let globex = app.client("globex").await;
    let (status, body) = app
        .post(
            &format!("/api/v1/shipments/{shipment}/status"),
            &globex.integration,
            json!({"status": "PICKED"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = app
        .post(
            &format!("/api/v1/shipments/{shipment}/status"),
            &acme.support,
            json!({"status": "PICKED"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn an_rto_brings_the_goods_back_for_qc(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 3).await;
    let (_, shipment) = released(app, &acme, "MYN-1", 2).await;
    for status in [
        json!({"status": "PICKED"}),
        json!({"status": "PACKED"}),
        shipped(),
        json!({"status": "RTO"}),
    ] {
        let (code, body) = set(app, &acme, shipment, status).await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    let (status, inward) = app
        .get(
            &format!("/api/v1/inward-orders/RTO-S{shipment}"),
            &acme.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{inward}");
    assert_eq!(inward["type"], "B2B_RETURN");
    assert_eq!(inward["lines"][0]["received"], 2);
    let stock_now = inventory(app, &acme.admin, "TEE", "BLR1").await;
    assert_eq!(
        (stock_now["qc_pending"].as_i64(), stock_now["good"].as_i64()),
        (Some(2), Some(1))
    );
    let (status, _) = app
        .post(
            &format!("/api/v1/inward-orders/RTO-S{shipment}/qc"),
            &acme.admin,
            json!({"lines": [{"sku": "TEE", "pass": 1, "fail": 1, "fail_reason": "DAMAGED"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let stock_now = inventory(app, &acme.admin, "TEE", "BLR1").await;
    assert_eq!(
        (stock_now["good"].as_i64(), stock_now["bad"].as_i64()),
        (Some(2), Some(1))
    );
}

async fn shipping_a_stock_transfer_opens_its_inward_order_at_the_destination(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 4).await;
    let st = json!({"order_code": "ST-1", "kind": "ST", "channel": "B2B", "fulfilment_type": "BLOCK_COMPLETE",
                    "warehouse": "BLR1", "destination_warehouse": "DEL1", "lines": [{"line_id": "1", "sku": "TEE", "qty": 3}]});
    let (status, order) = app.post("/api/v1/orders", &acme.integration, st).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let shipment = order["shipments"][0]["shipment_id"]
        .as_i64()
        .expect("shipment");
    for status in [
        json!({"status": "PICKED"}),
        json!({"status": "PACKED"}),
        shipped(),
    ] {
        set(app, &acme, shipment, status).await;
    }
    let (status, inward) = app
        .get(
            &format!("/api/v1/inward-orders/TRANSIT-S{shipment}"),
            &acme.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{inward}");
    assert_eq!(
        (
            inward["type"].as_str(),
            inward["warehouse"].as_str(),
            inward["party"].as_str()
        ),
        (Some("ST"), Some("DEL1"), Some("BLR1"))
    );
    assert_eq!(inward["lines"][0]["ordered"], 3);
    assert_eq!(
        inward["lines"][0]["received"], 0,
        "in transit until received"
    );
    assert_eq!(inventory(app, &acme.admin, "TEE", "BLR1").await["good"], 1);
    let code = format!("TRANSIT-S{shipment}");
    app.post(
        &format!("/api/v1/inward-orders/{code}/grn"),
        &acme.admin,
        json!({"lines": [{"sku": "TEE", "qty": 3}]}),
    )
    .await;
    app.post(
        &format!("/api/v1/inward-orders/{code}/qc"),
        &acme.admin,
        json!({"lines": [{"sku": "TEE", "pass": 3}]}),
    )
    .await;
    assert_eq!(inventory(app, &acme.admin, "TEE", "DEL1").await["good"], 3);
}

async fn sellers_cancel_open_and_unpicked_units_and_nothing_more(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 3).await;
    let (order, shipment) = released(app, &acme, "MYN-1", 5).await;
    assert_eq!(line(&order, "1")["open"], 2);
    let (status, body) = app
        .post(
            "/api/v1/orders/MYN-1/cancel",
            &acme.support,
            json!({"lines": [{"line_id": "1", "qty": 6}], "reason": "out of stock"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = app
        .post(
            "/api/v1/orders/MYN-1/cancel",
            &acme.support,
            json!({"lines": [{"line_id": "9", "qty": 1}], "reason": "x"}),
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
            "/api/v1/orders/MYN-1/cancel",
            &acme.support,
            json!({"lines": [{"line_id": "1", "qty": 1}]}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    let (status, order) = app
        .post(
            "/api/v1/orders/MYN-1/cancel",
            &acme.support,
            json!({"lines": [{"line_id": "1", "qty": 3}], "reason": "customer asked"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    let tee = line(&order, "1");
    assert_eq!(
        (
            tee["open"].as_i64(),
            tee["allocated"].as_i64(),
            tee["cancelled"].as_i64()
        ),
        (Some(0), Some(2), Some(3)),
        "open units go first, then unpicked allocated ones"
    );
    assert_eq!(order["shipments"][0]["status"], "RELEASED");
    assert_eq!(order["shipments"][0]["lines"][0]["qty"], 2);
    let stock_now = inventory(app, &acme.admin, "TEE", "BLR1").await;
    assert_eq!(
        (
            stock_now["allocated"].as_i64(),
            stock_now["available"].as_i64()
        ),
        (Some(2), Some(1))
    );
    let cancelled = event_of(&order["events"], "shipment.cancelled");
    assert_eq!(cancelled["data"]["whole"], false);

    set(app, &acme, shipment, json!({"status": "PICKED"})).await;
    let (status, body) = app
        .post(
            "/api/v1/orders/MYN-1/cancel",
            &acme.support,
            json!({"lines": [{"line_id": "1", "qty": 1}], "reason": "late"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = app
        .post(
            "/api/v1/orders/MYN-1/cancel",
            &acme.support,
            json!({"reason": "late"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "BLR1").await["allocated"],
        2,
        "a refused cancel changes nothing"
    );
}

async fn cancelling_a_whole_order_frees_its_stock_for_waiting_orders(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 2).await;
    released(app, &acme, "FIRST", 2).await;
    let (_, waiting) = app
        .post(
            "/api/v1/orders",
            &acme.integration,
            b2c("SECOND", "MYNTRA", "BLOCK_COMPLETE", &[("TEE", 2)], BLR),
        )
        .await;
    assert_eq!(waiting["status"], "UNFULFILLABLE");
    let (status, order) = app
        .post(
            "/api/v1/orders/FIRST/cancel",
            &acme.admin,
            json!({"reason": "fraud"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["shipments"][0]["status"], "CANCELLED");
    let second = eventually(app, &acme.admin, "SECOND", |o| o["status"] == "RELEASED").await;
    assert_eq!(
        line(&second, "1")["allocated"],
        2,
        "the freed units went to the waiting order"
    );
    let (status, body) = app
        .post(
            "/api/v1/orders/FIRST/cancel",
            &acme.admin,
            json!({"reason": "again"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
}

async fn remarks_are_added_and_edited_with_their_author(app: &TestApp) {
    let acme = shop(app).await;
    app.post(
        "/api/v1/orders",
        &acme.integration,
        b2c("MYN-1", "MYNTRA", "BLOCK_COMPLETE", &[("TEE", 1)], BLR),
    )
    .await;
    let (status, remark) = app
        .post(
            "/api/v1/orders/MYN-1/remarks",
            &acme.support,
            json!({"text": "Customer called: wants it by Friday"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{remark}");
    let id = remark["id"].as_i64().expect("id");
    assert!(
        remark["author"]
            .as_str()
            .is_some_and(|a| a.starts_with("key:"))
    );
    let (status, order) = app
        .put(
            &format!("/api/v1/orders/MYN-1/remarks/{id}"),
            &acme.support,
            json!({"text": "Customer called twice"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["remarks"][0]["text"], "Customer called twice");
    let (status, body) = app
        .post(
            "/api/v1/orders/MYN-1/remarks",
            &acme.support,
            json!({"text": "  "}),
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
            "/api/v1/orders/MYN-1/remarks/999999",
            &acme.support,
            json!({"text": "x"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let globex = app.client("globex").await;
    let (status, _) = app
        .post(
            "/api/v1/orders/MYN-1/remarks",
            &globex.admin,
            json!({"text": "hi"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn the_event_feed_lists_every_change_in_order(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 2).await;
    let (order, shipment) = released(app, &acme, "MYN-1", 1).await;
    set(app, &acme, shipment, json!({"status": "PICKED"})).await;
    let (status, page) = app.get("/api/v1/events?limit=4", &acme.integration).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut types: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    let after = page["next_after"].as_i64().expect("more");
    let (_, rest) = app
        .get(&format!("/api/v1/events?after={after}"), &acme.integration)
        .await;
    types.extend(
        rest["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default().to_owned()),
    );
    // Receiving, QC and allocation each change the TEE stock at BLR1; picking does not.
    assert_eq!(
        types,
        [
            "inventory.changed",
            "inventory.changed",
            "order.allocated",
            "shipment.released",
            "inventory.changed",
            "shipment.picked"
        ]
    );
    assert_eq!(rest["next_after"], Value::Null);
    let (_, all) = app.get("/api/v1/events", &acme.integration).await;
    let stock_events: Vec<&Value> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["type"] == "inventory.changed")
        .map(|e| &e["data"])
        .collect();
    let released = event_of(&all["items"], "shipment.released");
    let line_id = &order["lines"][0]["line_id"];
    assert_eq!(
        released["data"],
        json!({
            "channel": "MYNTRA",
            "lines": [{"line_id": line_id, "qty": 1, "sku": "TEE"}],
            "order_code": "MYN-1",
            "shipment_id": shipment,
            "warehouse": "BLR1",
        })
    );
    let allocated = event_of(&all["items"], "order.allocated");
    assert_eq!(
        allocated["data"],
        json!({
            "allocated": [{"line_id": line_id, "qty": 1}],
            "channel": "MYNTRA",
            "order_code": "MYN-1",
            "status": order["status"],
        })
    );
    assert_eq!(stock_events[0]["qc_pending"], 2, "after the GRN");
    assert_eq!(stock_events[1]["good"], 2, "after QC");
    assert_eq!(stock_events[1]["available"], 2);
    // The last one carries the balance as GET /inventory shows it now.
    let now = inventory(app, &acme.integration, "TEE", "BLR1").await;
    assert_eq!(*stock_events[2], now);
    assert_eq!(now["available"], 1);
    let globex = app.client("globex").await;
    let (_, theirs) = app.get("/api/v1/events", &globex.integration).await;
    assert_eq!(theirs["items"], json!([]));
}

async fn cancellation_files_are_all_or_nothing(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 4).await;
    released(app, &acme, "MYN-1", 2).await;
    released(app, &acme, "MYN-2", 2).await;
    let bad = "order_code,channel,reason,line_id,qty\nMYN-1,MYNTRA,customer asked,1,1\nMYN-2,MYNTRA,oos,1,5\nMYN-404,MYNTRA,x,1,1\n";
    let (status, body) = app.upload("cancellations", &acme.support, bad).await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let rows: Vec<i64> = error["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["row"].as_i64().unwrap_or_default())
        .collect();
    assert_eq!(rows, [3, 4], "{error}");
    let (_, order) = app.get("/api/v1/orders/MYN-1", &acme.admin).await;
    assert_eq!(
        line(&order, "1")["cancelled"],
        0,
        "the good row was rolled back with the file"
    );

    let good = "order_code,channel,reason,line_id,qty\nMYN-1,MYNTRA,customer asked,1,1\nMYN-2,MYNTRA,fraud,,\n";
    let (status, body) = app.upload("cancellations", &acme.support, good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, first) = app.get("/api/v1/orders/MYN-1", &acme.admin).await;
    assert_eq!(line(&first, "1")["cancelled"], 1);
    let (_, second) = app.get("/api/v1/orders/MYN-2", &acme.admin).await;
    assert_eq!(second["status"], "CANCELLED");
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "BLR1").await["allocated"],
        1
    );
}
