//! Invoices and shipping labels: when they are available, what they print (read back with
//! poppler's pdftotext and a zbar barcode scan, as a warehouse scanner would), and the
//! gap-free invoice numbers.

use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ClientKeys, TestApp, assert_error, event_of, join_all};
use crate::on_both_backends;
use crate::orders::{DEL, b2c, shop, stock};

on_both_backends!(
    an_invoice_exists_once_the_shipment_is_packed_and_prints_the_sale,
    a_label_prints_the_awb_as_a_barcode_a_scanner_reads,
    invoice_numbers_run_without_gaps_even_when_packed_at_once,
    an_order_in_two_shipments_prints_one_invoice_per_shipment,
    another_clients_documents_answer_like_missing_ones,
);

/// Runs a poppler or zbar tool; a missing tool fails the test with how to install it.
fn tool(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed ({e}): apt-get install -y poppler-utils zbar-tools")
        })
}

fn write_pdf(bytes: &[u8]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("doc.pdf");
    std::fs::write(&path, bytes).expect("write pdf");
    let path = path.to_str().expect("utf-8 path").to_owned();
    (dir, path)
}

/// The text of a PDF as `pdftotext -layout` reads it.
fn pdf_text(bytes: &[u8]) -> String {
    let (_dir, path) = write_pdf(bytes);
    let out = tool("pdftotext", &["-layout", &path, "-"]);
    assert!(out.status.success(), "pdftotext: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `pdfinfo`'s "Pages" and "Page size" lines.
fn pdf_info(bytes: &[u8]) -> (usize, String) {
    let (_dir, path) = write_pdf(bytes);
    let out = tool("pdfinfo", &[&path]);
    assert!(out.status.success(), "pdfinfo: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    (field("Pages:").parse().unwrap_or(0), field("Page size:"))
}

/// The barcodes on the first page, rendered at 300 dpi and scanned.
fn barcodes(bytes: &[u8]) -> Vec<String> {
    let (dir, path) = write_pdf(bytes);
    let image = dir.path().join("page");
    let image = image.to_str().expect("utf-8 path");
    let out = tool(
        "pdftoppm",
        &[
            "-r",
            "300",
            "-f",
            "1",
            "-l",
            "1",
            "-png",
            "-singlefile",
            &path,
            image,
        ],
    );
    assert!(out.status.success(), "pdftoppm: {out:?}");
    let png = format!("{image}.png");
    assert!(Path::new(&png).exists(), "pdftoppm wrote no image");
    let out = tool("zbarimg", &["--raw", "-q", &png]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A PDF that must be there: 200 and `application/pdf`.
async fn fetch_pdf(app: &TestApp, path: &str, token: &str) -> Vec<u8> {
    let (status, kind, bytes) = app.get_bytes(path, token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(kind, "application/pdf");
    bytes
}

async fn set(app: &TestApp, keys: &ClientKeys, shipment: i64, body: Value) -> Value {
    let (status, order) = app
        .post(
            &format!("/api/v1/shipments/{shipment}/status"),
            &keys.integration,
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    order
}

/// An order of `qty` TEE released from BLR1; answers its shipment id.
async fn released(app: &TestApp, keys: &ClientKeys, code: &str, qty: i64) -> i64 {
    crate::fulfilment::released(app, keys, code, qty).await.1
}

async fn pack(app: &TestApp, keys: &ClientKeys, shipment: i64, awb: Option<&str>) {
    set(app, keys, shipment, json!({"status": "PICKED"})).await;
    let mut body = json!({"status": "PACKED"});
    if let Some(awb) = awb {
        body["awb"] = json!(awb);
        body["carrier"] = json!("Delhivery");
    }
    set(app, keys, shipment, body).await;
}

/// TEE carries HSN 6109 and 12% tax; the seller's invoicing details are set.
async fn invoicing_shop(app: &TestApp) -> ClientKeys {
    let acme = shop(app).await;
    let (status, body) = app
        .put(
            "/api/v1/skus/TEE",
            &acme.admin,
            json!({"name": "Cotton Tee", "mrp": 999, "tax_rate": 12, "hsn": "6109"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .put(
            "/api/v1/settings",
            &acme.admin,
            json!({"invoicing": {"legal_name": "Acme Apparel Pvt Ltd", "address": "4 Residency Road, Bengaluru",
                                 "pincode": "560025", "gstin": "29ABCDE1234F1Z5"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    acme
}

async fn an_invoice_exists_once_the_shipment_is_packed_and_prints_the_sale(app: &TestApp) {
    let acme = invoicing_shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 5).await;
    let shipment = released(app, &acme, "MYN-1", 3).await;
    for status in [None, Some("PICKED")] {
        if let Some(status) = status {
            set(app, &acme, shipment, json!({"status": status})).await;
        }
        for path in [
            "/api/v1/orders/MYN-1/invoice.pdf".to_owned(),
            format!("/api/v1/shipments/{shipment}/invoice.pdf"),
        ] {
            let (status, body) = app.get(&path, &acme.support).await;
            assert_error(status, &body, StatusCode::CONFLICT, "conflict");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("PACKED"),
                "{body}"
            );
        }
    }
    let order = set(app, &acme, shipment, json!({"status": "PACKED"})).await;
    assert_eq!(order["shipments"][0]["status"], "PACKED", "{order}");
    let (status, kind, bytes) = app
        .get_bytes("/api/v1/orders/MYN-1/invoice.pdf", &acme.support)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind, "application/pdf");
    let text = pdf_text(&bytes);
    for expected in [
        "TAX INVOICE",
        "INV-000001",
        "MYN-1",
        "Acme Apparel Pvt Ltd",
        "29ABCDE1234F1Z5",
        "Asha Rao",
        "12 MG Road",
        "BLR1",
        "TEE",
        "Cotton Tee",
        "6109",
        // 3 × 499.50 = 1498.50 with 12% included: 160.55 tax on 1337.95.
        "1498.50",
        "160.55",
        "1337.95",
        "INR",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    // The same invoice by shipment; the number stays with the shipment.
    let (status, _, again) = app
        .get_bytes(
            &format!("/api/v1/shipments/{shipment}/invoice.pdf"),
            &acme.support,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(pdf_text(&again).contains("INV-000001"));
    // The packed event carries the number.
    let (_, events) = app.get("/api/v1/events?limit=500", &acme.integration).await;
    let packed = event_of(&events["items"], "shipment.packed");
    assert_eq!(packed["data"]["invoice_number"], "INV-000001");
}

async fn a_label_prints_the_awb_as_a_barcode_a_scanner_reads(app: &TestApp) {
    let acme = invoicing_shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 5).await;
    let shipment = released(app, &acme, "MYN-7", 2).await;
    let label = format!("/api/v1/shipments/{shipment}/shipping-label.pdf");
    let (status, body) = app.get(&label, &acme.support).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    // Packed without an AWB: still no label, and the answer says why.
    pack(app, &acme, shipment, None).await;
    let (status, body) = app.get(&label, &acme.support).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("AWB"),
        "{body}"
    );
    set(
        app,
        &acme,
        shipment,
        json!({"status": "SHIPPED", "awb": "DLV-4471190023X", "carrier": "Delhivery"}),
    )
    .await;
    for path in [
        label.clone(),
        "/api/v1/orders/MYN-7/shipping-label.pdf".into(),
    ] {
        let (status, kind, bytes) = app.get_bytes(&path, &acme.support).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(kind, "application/pdf");
        let (pages, size) = pdf_info(&bytes);
        assert_eq!(pages, 1);
        assert!(size.starts_with("288 x 432 pts"), "4×6 inch: {size}");
        assert_eq!(barcodes(&bytes), ["DLV-4471190023X"]);
        let text = pdf_text(&bytes);
        for expected in [
            "Asha Rao",
            "560001",
            "MYN-7",
            "Delhivery",
            "DLV-4471190023X",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }
}

async fn invoice_numbers_run_without_gaps_even_when_packed_at_once(app: &TestApp) {
    let acme = invoicing_shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 20).await;
    let mut shipments = Vec::new();
    for i in 0..8 {
        let shipment = released(app, &acme, &format!("MYN-{i}"), 1).await;
        set(app, &acme, shipment, json!({"status": "PICKED"})).await;
        shipments.push(shipment);
    }
    // One packing refused mid-way (its shipment is not picked) takes no number.
    let unpicked = released(app, &acme, "MYN-X", 1).await;
    let (status, _) = app
        .post(
            &format!("/api/v1/shipments/{unpicked}/status"),
            &acme.integration,
            json!({"status": "PACKED"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let paths: Vec<String> = shipments
        .iter()
        .map(|s| format!("/api/v1/shipments/{s}/status"))
        .collect();
    let answers = join_all(
        paths
            .iter()
            .map(|path| app.post(path, &acme.integration, json!({"status": "PACKED"})))
            .collect(),
    )
    .await;
    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::OK),
        "{answers:?}"
    );
    let (_, events) = app.get("/api/v1/events?limit=500", &acme.integration).await;
    let mut numbers: Vec<String> = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["type"] == "shipment.packed")
        .map(|e| {
            e["data"]["invoice_number"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    numbers.sort();
    let expected: Vec<String> = (1..=8).map(|n| format!("INV-{n:06}")).collect();
    assert_eq!(numbers, expected);
    // A new prefix applies to the numbers issued after it; the sequence goes on.
    app.put(
        "/api/v1/settings",
        &acme.admin,
        json!({"invoicing": {"prefix": "AC/26-27/"}}),
    )
    .await;
    set(app, &acme, unpicked, json!({"status": "PICKED"})).await;
    set(app, &acme, unpicked, json!({"status": "PACKED"})).await;
    let bytes = fetch_pdf(app, "/api/v1/orders/MYN-X/invoice.pdf", &acme.support).await;
    assert!(pdf_text(&bytes).contains("AC/26-27/000009"));
    // Another client numbers from 1 on its own.
    let globex = app.client("globex").await;
    let (status, settings) = app.get("/api/v1/settings", &globex.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settings["invoicing"]["prefix"], "INV-");
}

async fn an_order_in_two_shipments_prints_one_invoice_per_shipment(app: &TestApp) {
    let acme = invoicing_shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 1).await;
    stock(app, &acme, "DEL1", "TEE", 1).await;
    let (status, order) = app
        .post(
            "/api/v1/orders",
            &acme.integration,
            b2c(
                "MYN-2",
                "MYNTRA",
                "MULTI_SHIPMENT_PARTIAL",
                &[("TEE", 2)],
                DEL,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let shipments: Vec<i64> = order["shipments"]
        .as_array()
        .expect("shipments")
        .iter()
        .filter_map(|s| s["shipment_id"].as_i64())
        .collect();
    assert_eq!(shipments.len(), 2, "{order}");
    pack(app, &acme, shipments[0], Some("AWB-A-1")).await;
    // One packed: the order's invoice holds that one only.
    let bytes = fetch_pdf(app, "/api/v1/orders/MYN-2/invoice.pdf", &acme.support).await;
    assert_eq!(pdf_info(&bytes).0, 1);
    pack(app, &acme, shipments[1], Some("AWB-B-2")).await;
    let bytes = fetch_pdf(app, "/api/v1/orders/MYN-2/invoice.pdf", &acme.support).await;
    assert_eq!(pdf_info(&bytes).0, 2);
    let text = pdf_text(&bytes);
    assert!(
        text.contains("INV-000001") && text.contains("INV-000002"),
        "{text}"
    );
    let labels = fetch_pdf(
        app,
        "/api/v1/orders/MYN-2/shipping-label.pdf",
        &acme.support,
    )
    .await;
    assert_eq!(pdf_info(&labels).0, 2);
    let text = pdf_text(&labels);
    assert!(
        text.contains("AWB-A-1") && text.contains("AWB-B-2"),
        "{text}"
    );
}

async fn another_clients_documents_answer_like_missing_ones(app: &TestApp) {
    let acme = invoicing_shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 1).await;
    let shipment = released(app, &acme, "MYN-1", 1).await;
    pack(app, &acme, shipment, Some("AWB-1")).await;
    let globex = app.client("globex").await;
    for doc in ["invoice.pdf", "shipping-label.pdf"] {
        let theirs = app
            .get(
                &format!("/api/v1/shipments/{shipment}/{doc}"),
                &globex.admin,
            )
            .await;
        let missing = app
            .get(&format!("/api/v1/shipments/999999/{doc}"), &globex.admin)
            .await;
        assert_eq!(theirs.0, StatusCode::NOT_FOUND);
        assert_eq!(theirs.0, missing.0);
        assert_eq!(
            theirs.1["error"]["code"], missing.1["error"]["code"],
            "{theirs:?} {missing:?}"
        );
        let (status, body) = app
            .get(&format!("/api/v1/orders/MYN-1/{doc}"), &globex.admin)
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
}
