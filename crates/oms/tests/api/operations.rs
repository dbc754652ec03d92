//! Health, metrics, the OpenAPI document, and the `oms` process itself.

use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Db, TestApp, fresh_database};
use crate::on_both_backends;

on_both_backends!(
    health_metrics_and_openapi_answer,
    the_oms_binary_serves_migrates_and_guards_its_sqlite_file,
);

async fn health_metrics_and_openapi_answer(app: &TestApp) {
    let (status, _) = app.call(Method::GET, "/healthz", None, None, None).await;
    assert_eq!(status, StatusCode::OK);
    app.client("acme").await;
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.expect("text");
    assert!(text.contains("oms_http_requests_total"), "{text}");

    let (status, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for (path, method) in [
        ("/api/v1/clients", "post"),
        ("/api/v1/clients/{client}/api-keys", "post"),
        ("/api/v1/warehouses/{code}", "put"),
        ("/api/v1/clients/{client}/warehouses/{warehouse}", "put"),
        ("/api/v1/clients/{client}/warehouses/{warehouse}", "delete"),
        ("/api/v1/channels/{code}", "put"),
        ("/api/v1/skus/{code}", "put"),
        ("/api/v1/skus", "get"),
        ("/api/v1/suppliers/{code}", "put"),
        ("/api/v1/customers/{code}", "put"),
        ("/api/v1/uploads/{kind}", "post"),
        ("/api/v1/settings", "put"),
        ("/healthz", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is documented"
        );
    }
    let q = &doc["paths"]["/api/v1/skus"]["get"]["parameters"][0];
    assert_eq!(q["in"], "query", "{q}");
}

fn oms(args: &[&str], database_url: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_oms"));
    command
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("OMS_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts `oms serve` on `database_url` at a free port; answers the process and its base URL
/// once it is healthy.
pub async fn spawn_serve(database_url: &str) -> (tokio::process::Child, String) {
    let port = free_port();
    // A serving process logs for as long as it runs: its output goes nowhere, so a full pipe
    // can never stall it.
    let child = oms(
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
        database_url,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn oms serve");
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&reqwest::Client::new(), &base).await;
    (child, base)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{base}/healthz")).send().await
            && response.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("oms at {base} never became healthy");
}

async fn the_oms_binary_serves_migrates_and_guards_its_sqlite_file(app: &TestApp) {
    // A database of its own, not the one the in-process server holds.
    let dir = tempfile::tempdir().expect("dir");
    let url = fresh_database(app.db, dir.path()).await;
    let migrate = oms(&["migrate"], &url).output().await.expect("oms migrate");
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let first_port = free_port();
    let _first = oms(
        &["serve", "--listen", &format!("127.0.0.1:{first_port}")],
        &url,
    )
    .spawn()
    .expect("spawn");
    let first_base = format!("http://127.0.0.1:{first_port}");
    wait_healthy(&app.http, &first_base).await;
    let (status, _) = app.call(Method::GET, "/healthz", None, None, None).await;
    assert_eq!(status, StatusCode::OK);

    let second_port = free_port();
    let second = oms(
        &["serve", "--listen", &format!("127.0.0.1:{second_port}")],
        &url,
    );
    match app.db {
        Db::Sqlite => {
            let output = tokio::time::timeout(Duration::from_secs(20), {
                let mut second = second;
                async move { second.output().await }
            })
            .await
            .expect("the second process exits at once")
            .expect("run");
            assert!(!output.status.success());
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("another oms process is using the SQLite database"),
                "{stderr}"
            );
        }
        Db::Postgres => {
            drop(second);
            let (_second, second_base) = spawn_serve(&url).await;
            // A client made through one instance is seen by the other.
            let created = app
                .http
                .post(format!("{first_base}/api/v1/clients"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"code": "acme", "name": "Acme"}))
                .send()
                .await
                .expect("create");
            assert_eq!(created.status(), StatusCode::CREATED);
            let seen = app
                .http
                .get(format!("{second_base}/api/v1/clients/acme"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .expect("get");
            assert_eq!(seen.status(), StatusCode::OK);
        }
    }
}
