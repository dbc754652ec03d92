//! Webhooks: signed pushes in event order, retries with backoff, the dead-letter state and
//! replay — against a real receiver on loopback that fails when told to.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use oms_app::Limits;
use oms_app::workers::{RelaySettings, relay_round, signature};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::helpers::{Db, TestApp, assert_error};
use crate::orders::{BLR, b2c, shop, stock};

const SECRET: &str = "a-long-shared-secret";

#[derive(Default)]
struct Receiver {
    /// Requests still to refuse with 500.
    failures_left: AtomicU32,
    /// (event id, type, signature valid) of every accepted delivery.
    accepted: Mutex<Vec<(i64, String, bool)>>,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> AxumStatus {
    if receiver
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return AxumStatus::INTERNAL_SERVER_ERROR;
    }
    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
    let signed = headers.get("x-oms-signature").and_then(|v| v.to_str().ok())
        == Some(signature(SECRET, &body).as_str());
    let id_header = headers
        .get("x-oms-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let id = event["id"].as_i64().unwrap_or_default();
    receiver.accepted.lock().await.push((
        id,
        event["type"].as_str().unwrap_or_default().to_owned(),
        signed && id_header == Some(id),
    ));
    AxumStatus::OK
}

async fn start_receiver(failures: u32) -> (String, Arc<Receiver>) {
    let receiver = Arc::new(Receiver {
        failures_left: AtomicU32::new(failures),
        ..Receiver::default()
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
    (url, receiver)
}

/// The server's own relay waits an hour; the test drives rounds itself.
async fn app_without_background_relay(db: Db) -> TestApp {
    TestApp::start_with(
        db,
        Limits {
            relay_interval: Duration::from_secs(3600),
            ..Limits::default()
        },
    )
    .await
}

fn fast() -> RelaySettings {
    RelaySettings {
        attempts_max: 3,
        backoff_base: Duration::from_millis(1),
        lease: Duration::from_secs(30),
        batch_max: 100,
    }
}

async fn rounds_until(app: &TestApp, done: impl AsyncFn() -> bool) {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        relay_round(&app.store, &http, &fast())
            .await
            .expect("relay round");
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the relay never got there");
}

macro_rules! both {
    ($($test:ident),+) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = super::app_without_background_relay(crate::helpers::Db::Sqlite).await;
                super::$test(&app).await;
                app.assert_invariants().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = super::app_without_background_relay(crate::helpers::Db::Postgres).await;
                super::$test(&app).await;
                app.assert_invariants().await;
            }
        }
    )+};
}

both!(
    events_reach_a_subscriber_signed_in_order_despite_failures,
    a_delivery_that_keeps_failing_goes_dead_and_replays,
    only_client_admin_configures_webhooks
);

async fn events_reach_a_subscriber_signed_in_order_despite_failures(app: &TestApp) {
    let acme = shop(app).await;
    let (url, receiver) = start_receiver(2).await;
    let (status, hook) = app
        .put(
            "/api/v1/webhooks/WMS",
            &acme.admin,
            json!({"url": url, "secret": SECRET, "event_types": []}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    stock(app, &acme, "BLR1", "TEE", 5).await;
    for i in 0..3 {
        app.post(
            "/api/v1/orders",
            &acme.integration,
            b2c(
                &format!("MYN-{i}"),
                "MYNTRA",
                "MULTI_SHIPMENT_PARTIAL",
                &[("TEE", 1)],
                BLR,
            ),
        )
        .await;
    }
    let (_, feed) = app.get("/api/v1/events?limit=500", &acme.integration).await;
    let expected: Vec<i64> = feed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["id"].as_i64().unwrap_or_default())
        .collect();
    // Per stock batch: GRN, QC; per order: allocated, released, inventory changed.
    assert_eq!(expected.len(), 11, "{feed}");
    rounds_until(app, async || {
        receiver.accepted.lock().await.len() >= expected.len()
    })
    .await;
    let accepted = receiver.accepted.lock().await.clone();
    let ids: Vec<i64> = accepted.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(ids, expected, "every event once, in order");
    assert!(
        accepted.iter().all(|(_, _, signed)| *signed),
        "every delivery is signed: {accepted:?}"
    );
    let (_, deliveries) = app
        .get("/api/v1/webhooks/WMS/deliveries", &acme.admin)
        .await;
    let items = deliveries.as_array().expect("deliveries");
    assert!(
        items.iter().all(|d| d["status"] == "DELIVERED"),
        "{deliveries}"
    );
    let first = items
        .iter()
        .find(|d| d["event_id"] == expected[0])
        .expect("first");
    assert_eq!(first["attempts"], 3, "two failures, then delivered");
}

async fn a_delivery_that_keeps_failing_goes_dead_and_replays(app: &TestApp) {
    let acme = shop(app).await;
    let (url, receiver) = start_receiver(u32::MAX).await;
    app.put(
        "/api/v1/webhooks/WMS",
        &acme.admin,
        json!({"url": url, "secret": SECRET, "event_types": ["order.allocated"]}),
    )
    .await;
    stock(app, &acme, "BLR1", "TEE", 1).await;
    app.post(
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
    rounds_until(app, async || {
        let (_, dead) = app
            .get("/api/v1/webhooks/WMS/deliveries?status=DEAD", &acme.admin)
            .await;
        dead.as_array().is_some_and(|d| d.len() == 1)
    })
    .await;
    let (_, dead) = app
        .get("/api/v1/webhooks/WMS/deliveries?status=DEAD", &acme.admin)
        .await;
    assert_eq!(dead[0]["attempts"], 3);
    assert_eq!(
        dead[0]["event_type"], "order.allocated",
        "only the types subscribed to"
    );
    assert!(
        dead[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{dead}"
    );
    receiver.failures_left.store(0, Ordering::SeqCst);
    let id = dead[0]["id"].as_i64().expect("id");
    let (status, _) = app
        .post(
            &format!("/api/v1/webhooks/WMS/deliveries/{id}/replay"),
            &acme.admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    rounds_until(app, async || !receiver.accepted.lock().await.is_empty()).await;
    assert_eq!(receiver.accepted.lock().await.len(), 1);
    let (status, body) = app
        .post(
            &format!("/api/v1/webhooks/WMS/deliveries/{id}/replay"),
            &acme.admin,
            json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

async fn only_client_admin_configures_webhooks(app: &TestApp) {
    let acme = shop(app).await;
    let body = json!({"url": "http://127.0.0.1:9/hook", "secret": SECRET, "event_types": []});
    for token in [&acme.support, &acme.integration] {
        let (status, answer) = app.put("/api/v1/webhooks/WMS", token, body.clone()).await;
        assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    }
    for bad in [
        json!({"url": "ftp://x", "secret": SECRET, "event_types": []}),
        json!({"url": "http://127.0.0.1:9/hook", "secret": "short", "event_types": []}),
        json!({"url": "http://127.0.0.1:9/hook", "secret": SECRET, "event_types": ["order.exploded"]}),
    ] {
        let (status, answer) = app.put("/api/v1/webhooks/WMS", &acme.admin, bad).await;
        assert_error(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (status, _) = app.put("/api/v1/webhooks/WMS", &acme.admin, body).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, hooks) = app.get("/api/v1/webhooks", &acme.admin).await;
    assert!(
        hooks[0].get("secret").is_none(),
        "the secret is never shown: {hooks}"
    );
    let globex = app.client("globex").await;
    let (status, _) = app
        .get("/api/v1/webhooks/WMS/deliveries", &globex.admin)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
