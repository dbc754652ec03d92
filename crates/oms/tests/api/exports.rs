//! CSV exports (formula cells neutralised, tenant walls kept) and oversized requests
//! refused with 413 before they are read whole.

use oms_app::Limits;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, announce_body, answer_body, assert_error, inventory};
use crate::on_both_backends;
use crate::orders::{BLR, b2c, shop, stock};

on_both_backends!(
    exports_keep_formulas_as_text_and_show_only_the_clients_rows,
    oversized_bodies_and_uploads_are_refused_with_413,
    a_stalled_request_is_answered_408_and_changes_nothing,
);

fn parse_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes)
        .records()
        .map(|r| r.expect("a CSV record").iter().map(str::to_owned).collect())
        .collect()
}

/// No cell of an export starts with what a spreadsheet would run as a formula.
fn assert_no_formula_cells(rows: &[Vec<String>]) {
    for (r, row) in rows.iter().enumerate() {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r', '\n']),
                "row {r}: {cell:?} would be read as a formula"
            );
        }
    }
}

async fn exports_keep_formulas_as_text_and_show_only_the_clients_rows(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 5).await;
    let mut hostile = b2c(
        "MYN-1",
        "MYNTRA",
        "MULTI_SHIPMENT_PARTIAL",
        &[("TEE", 2)],
        BLR,
    );
    hostile["ship_to"]["name"] = json!("=HYPERLINK(\"http://evil.example\",\"click\")");
    hostile["ship_to"]["email"] = json!("-2+3@x.in");
    hostile["ship_to"]["address"] = json!("@SUM(1+1)|' /C calc'!A0");
    let (status, body) = app.post("/api/v1/orders", &acme.integration, hostile).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = app
        .post(
            "/api/v1/orders",
            &acme.integration,
            b2c(
                "MYN-2",
                "MYNTRA",
                "MULTI_SHIPMENT_PARTIAL",
                &[("JEANS", 1)],
                BLR,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Another client's order never shows in acme's export.
    let globex = shop_of(app, "globex").await;
    let (status, _) = app
        .post(
            "/api/v1/orders",
            &globex,
            b2c(
                "GLX-1",
                "MYNTRA",
                "MULTI_SHIPMENT_PARTIAL",
                &[("TEE", 1)],
                BLR,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, kind, bytes) = app
        .get_bytes("/api/v1/exports/orders.csv", &acme.support)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/csv"), "{kind}");
    let rows = parse_csv(&bytes);
    assert_eq!(rows[0][0], "order_code");
    let codes: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(codes, ["MYN-2", "MYN-1"], "newest first, acme's only");
    assert_no_formula_cells(&rows);
    let first = &rows[2];
    assert_eq!(first[6], "'=HYPERLINK(\"http://evil.example\",\"click\")");
    assert_eq!(first[7], "'+91 98450 12345");
    assert_eq!(first[8], "'-2+3@x.in");
    // ordered, allocated, shipped, cancelled, open
    assert_eq!(&first[10..15], ["2", "2", "0", "0", "0"]);
    assert_eq!(&rows[1][10..15], ["1", "0", "0", "0", "1"]);
    // Filters are the search's.
    let (_, _, waiting) = app
        .get_bytes(
            "/api/v1/exports/orders.csv?status=UNFULFILLABLE",
            &acme.support,
        )
        .await;
    assert_eq!(parse_csv(&waiting).len(), 2, "header and MYN-2");
    let (status, body) = app
        .get("/api/v1/exports/orders.csv?status=LOST", &acme.support)
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    let (status, _, bytes) = app
        .get_bytes("/api/v1/exports/inventory.csv", &acme.support)
        .await;
    assert_eq!(status, StatusCode::OK);
    let rows = parse_csv(&bytes);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_no_formula_cells(&rows);
    let tee = inventory(app, &acme.support, "TEE", "BLR1").await;
    let expected: Vec<String> = [
        "qc_pending",
        "good",
        "bad",
        "lost",
        "shipped",
        "allocated",
        "available",
    ]
    .iter()
    .map(|k| tee[*k].as_i64().unwrap_or(-1).to_string())
    .collect();
    assert_eq!(rows[1][0..2], ["BLR1", "TEE"]);
    assert_eq!(rows[1][2..], expected[..]);
}

/// A second client with the same warehouses, channel and SKUs as `shop`; its integration key.
async fn shop_of(app: &TestApp, code: &str) -> String {
    let keys = app.client(code).await;
    app.put(
        &format!("/api/v1/clients/{code}/warehouses/BLR1"),
        crate::helpers::ADMIN_TOKEN,
        json!({}),
    )
    .await;
    app.put(
        "/api/v1/channels/MYNTRA",
        &keys.admin,
        json!({"name": "Myntra", "type": "MARKETPLACE"}),
    )
    .await;
    app.put(
        "/api/v1/skus/TEE",
        &keys.admin,
        json!({"name": "Tee", "mrp": 999}),
    )
    .await;
    keys.integration
}

async fn a_stalled_request_is_answered_408_and_changes_nothing(app: &TestApp) {
    let quick = TestApp::start_with(
        app.db,
        Limits {
            request_timeout: std::time::Duration::from_secs(1),
            ..Limits::default()
        },
    )
    .await;
    let keys = quick.client("acme").await;
    // The head promises 100 bytes of CSV that never come: the server gives up after its
    // timeout rather than hold the connection and a worker for ever.
    let answer = announce_body(&quick, "/api/v1/uploads/skus", &keys.admin, "text/csv", 100).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = answer_body(&answer);
    assert_eq!(body["error"]["code"], "request_timeout", "{answer}");
    assert!(body["error"]["message"].is_string(), "{answer}");
    let answer = announce_body(
        &quick,
        "/api/v1/orders",
        &keys.integration,
        "application/json",
        50,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let (status, page) = quick.get("/api/v1/skus", &keys.admin).await;
    assert_eq!(status, StatusCode::OK, "the server still answers");
    assert_eq!(page["items"], json!([]), "nothing was written");
    quick.assert_invariants().await;
}

async fn oversized_bodies_and_uploads_are_refused_with_413(app: &TestApp) {
    let acme = shop(app).await;
    // JSON bodies are limited to 2 MiB by default: 3 MiB is refused from its length alone.
    let answer = announce_body(
        app,
        "/api/v1/orders",
        &acme.integration,
        "application/json",
        3 * 1024 * 1024,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A body that is sent and turns out too long is refused the same way, with the JSON
    // error shape, and nothing is written.
    let mut order = b2c("MYN-BIG", "MYNTRA", "BLOCK_COMPLETE", &[("TEE", 1)], BLR);
    order["ship_to"]["address"] = Value::String("x".repeat(3 * 1024 * 1024));
    let fresh = reqwest::Client::new();
    if let Ok(response) = fresh
        .post(format!("{}/api/v1/orders", app.base))
        .bearer_auth(&acme.integration)
        .json(&order)
        .send()
        .await
    {
        // The server may close before the client finishes writing; when an answer
        // arrives it is the 413.
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_error(
            status,
            &body,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        );
    }
    let (status, _) = app.get("/api/v1/orders/MYN-BIG", &acme.support).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was written");
    // Uploads have their own, larger limit; a server configured small shows it.
    let small = TestApp::start_with(
        app.db,
        Limits {
            upload_bytes_max: 1024,
            ..Limits::default()
        },
    )
    .await;
    let keys = small.client("acme").await;
    let answer = announce_body(
        &small,
        "/api/v1/uploads/skus",
        &keys.admin,
        "text/csv",
        4096,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let (_, page) = small.get("/api/v1/skus", &keys.admin).await;
    assert_eq!(page["items"], json!([]), "nothing was written");
}
