//! CSV uploads: validated whole, all rows or none.

use std::fmt::Write as _;
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Db, TestApp, assert_error};
use crate::on_both_backends;

on_both_backends!(
    a_file_with_bad_rows_is_refused_whole_with_every_bad_row_listed,
    multipart_uploads_and_templates_work,
    partner_uploads_create_and_update,
    a_hundred_thousand_sku_rows_upload_in_one_go,
    a_bulk_upload_refreshes_the_planner_statistics,
);

async fn sku_count(app: &TestApp, token: &str) -> usize {
    let (_, page) = app.get("/api/v1/skus?limit=500", token).await;
    page["items"].as_array().map(Vec::len).unwrap_or_default()
}

async fn a_file_with_bad_rows_is_refused_whole_with_every_bad_row_listed(app: &TestApp) {
    let acme = app.client("acme").await;
    app.put(
        "/api/v1/settings",
        &acme.admin,
        json!({"sku_attributes": [
        {"name": "colour", "type": "ENUM", "values": ["Red", "Blue"]}]}),
    )
    .await;
    let bad = "\u{feff}code,name,mrp,price,attr.colour\n\
               TEE-1,Tee,999.50,899,Red\n\
               TEE-2,,100,,\n\
               TEE 3,Tee,100,,\n\
               TEE-4,Tee,12.345,,Green\n\
               TEE-1,Tee again,1,,\n\
               TEE-6,\"Tee, with comma\",5,,Blue\n";
    let (status, body) = app.upload("skus", &acme.admin, bad).await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let details: Vec<(u64, String)> = error["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| {
            (
                d["row"].as_u64().unwrap_or_default(),
                d["column"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        details,
        [
            (3, "name".to_owned()),
            (4, "code".to_owned()),
            (5, "mrp".to_owned()),
            (5, "attr.colour".to_owned()),
            (6, "code".to_owned()),
        ]
    );
    assert_eq!(
        sku_count(app, &acme.admin).await,
        0,
        "nothing of a refused file is written"
    );

    let good = "code,name,mrp,price,attr.colour\nTEE-1,Tee,999.50,899,Red\nTEE-6,\"Tee, with comma\",5,,Blue\n";
    let (status, body) = app.upload("skus", &acme.admin, good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rows"], 2);
    let (_, tee) = app.get("/api/v1/skus/TEE-1", &acme.admin).await;
    assert_eq!(tee["mrp"], 999.5);
    assert_eq!(tee["attributes"]["colour"], "Red");
    let (_, tee6) = app.get("/api/v1/skus/TEE-6", &acme.admin).await;
    assert_eq!(tee6["name"], "Tee, with comma");

    let (status, body) = app
        .upload("skus", &acme.admin, "code,name,cost\nA,B,1\n")
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        error["details"][0],
        json!({"row": 1, "column": "cost", "message": "is not a known column"})
    );
    let (status, body) = app
        .upload("skus", &acme.admin, "code,name,mrp\nA,B\n")
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"][0]["row"], 2);
    let (status, body) = app.upload("pallets", &acme.admin, "code\n").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(sku_count(app, &acme.admin).await, 2);
}

async fn multipart_uploads_and_templates_work(app: &TestApp) {
    let acme = app.client("acme").await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::text("code,name,mrp\nA,Alpha,1\nB,Beta,2\n")
            .file_name("skus.csv"),
    );
    let response = app
        .http
        .post(format!("{}/api/v1/uploads/skus", app.base))
        .bearer_auth(&acme.integration)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["rows"], 2);
    assert_eq!(sku_count(app, &acme.admin).await, 2);

    let template = app
        .http
        .get(format!("{}/api/v1/uploads/skus", app.base))
        .bearer_auth(&acme.support)
        .send()
        .await
        .expect("template");
    assert_eq!(template.status(), StatusCode::OK);
    let header = template.text().await.expect("text");
    assert!(header.starts_with("code,name,mrp,price"), "{header}");
}

async fn partner_uploads_create_and_update(app: &TestApp) {
    let acme = app.client("acme").await;
    let csv =
        "code,name,pincode,phone,email\nS1,Knits,641601,+91 98450 12345,a@b.in\nS2,Weaves,,,\n";
    let (status, body) = app.upload("suppliers", &acme.admin, csv).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .upload("suppliers", &acme.admin, "code,name\nS1,Knits Pvt Ltd\n")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, s1) = app.get("/api/v1/suppliers/S1", &acme.admin).await;
    assert_eq!(s1["name"], "Knits Pvt Ltd");
    assert_eq!(
        s1["phone"],
        json!(null),
        "an upload row replaces the whole partner"
    );
    let (status, body) = app
        .upload(
            "customers",
            &acme.admin,
            "code,name,email\nC1,Shop,not-an-email\n",
        )
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"][0]["column"], "email");
    let (status, _) = app.get("/api/v1/customers/C1", &acme.admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn a_hundred_thousand_sku_rows_upload_in_one_go(app: &TestApp) {
    let acme = app.client("acme").await;
    let rows = 100_000;
    let mut csv = String::from("code,name,mrp,price,tax_rate,hsn,weight_grams\n");
    for i in 0..rows {
        writeln!(
            csv,
            "SKU-{i:06},Product {i},{}.{:02},{},12,6109,{}",
            100 + i % 900,
            i % 100,
            50 + i % 50,
            100 + i % 400
        )
        .expect("write");
    }
    let started = Instant::now();
    let (status, body) = app.upload("skus", &acme.admin, csv).await;
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rows"], rows);
    println!("{:?}: uploaded {rows} SKU rows in {elapsed:?}", app.db);
    let (_, last) = app.get("/api/v1/skus/SKU-099999", &acme.admin).await;
    assert_eq!(last["name"], "Product 99999");
    assert_eq!(last["mrp"], 199.99);
    let count = oms_store::skus::count(app.store.pool(), oms_store::ClientId(1))
        .await
        .expect("count");
    assert_eq!(count, i64::from(rows));
}

/// Statistics that PostgreSQL's planner reads: (rows it counts in `skus`, whether `skus`
/// was analyzed other than by autovacuum).
async fn skus_statistics(app: &TestApp) -> (i64, bool) {
    use sqlx::Row;
    let row = sqlx::query(
        "SELECT CAST(c.reltuples AS BIGINT) AS counted, \
         CAST(CASE WHEN s.last_analyze IS NULL THEN 0 ELSE 1 END AS BIGINT) AS analyzed \
         FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relname = 'skus'",
    )
    .fetch_one(app.store.pool())
    .await
    .expect("statistics");
    (
        row.try_get("counted").expect("counted"),
        row.try_get::<i64, _>("analyzed").expect("analyzed") == 1,
    )
}

/// After a bulk load PostgreSQL's statistics miss the new rows until autovacuum comes
/// round, and lookups by client plan as if the client had none; the OMS refreshes them
/// itself. SQLite plans without statistics and is given none.
async fn a_bulk_upload_refreshes_the_planner_statistics(app: &TestApp) {
    let acme = app.client("acme").await;
    let rows = 1_000;
    let mut csv = String::from("code,name,mrp\n");
    for i in 0..rows {
        writeln!(csv, "BULK-{i:04},Product {i},100").expect("write");
    }
    match app.db {
        Db::Postgres => {
            let (_, analyzed) = skus_statistics(app).await;
            assert!(!analyzed, "skus analyzed before any upload");
            let (status, body) = app.upload("skus", &acme.admin, csv).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            // Refreshed in the background, after the upload answered. PostgreSQL shows
            // the analyze's time as soon as it ran, and the row count it took only when
            // its transaction commits: wait for both.
            let deadline = Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let (counted, analyzed) = skus_statistics(app).await;
                if analyzed && counted == rows {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "skus never analyzed with their rows counted (analyzed: {analyzed}, \
                     counted: {counted})"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        Db::Sqlite => {
            let (status, body) = app.upload("skus", &acme.admin, csv).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let stored = oms_store::skus::count(app.store.pool(), oms_store::ClientId(1))
                .await
                .expect("count");
            assert_eq!(stored, rows);
            use sqlx::Row;
            let statistics: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE name LIKE 'sqlite_stat%'",
            )
            .fetch_one(app.store.pool())
            .await
            .expect("sqlite_master")
            .try_get("n")
            .expect("n");
            assert_eq!(statistics, 0);
        }
    }
}
