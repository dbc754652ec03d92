//! `TestApp`: the real OMS on port 0 over a fresh database, once per backend.

use std::sync::atomic::{AtomicU32, Ordering};

use oms_app::{AppState, Limits};
use oms_store::{Store, StoreOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const ADMIN_TOKEN: &str = "test-operator-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(&TestApp)` once on SQLite and once on PostgreSQL, then
/// checks every inventory invariant (`oms check`) on what the test left behind.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::start($crate::helpers::Db::Sqlite).await;
                super::$test(&app).await;
                app.assert_invariants().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = $crate::helpers::TestApp::start($crate::helpers::Db::Postgres).await;
                super::$test(&app).await;
                app.assert_invariants().await;
            }
        }
    )+};
}

pub struct TestApp {
    pub base: String,
    database_url: String,
    pub http: reqwest::Client,
    pub store: Store,
    pub db: Db,
    _dir: tempfile::TempDir,
    _shutdown: oneshot::Sender<()>,
}

/// One client with a key of each role.
pub struct ClientKeys {
    pub admin: String,
    pub support: String,
    pub integration: String,
}

static DATABASES: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty database for one test.
pub async fn fresh_database(db: Db, dir: &std::path::Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}/oms.db", dir.display()),
        Db::Postgres => {
            let admin_url = std::env::var("OMS_TEST_PG_URL").expect(
                "OMS_TEST_PG_URL is not set: run the suite with ./scripts/test, which starts \
                 a throwaway PostgreSQL cluster",
            );
            let name = format!(
                "oms_test_{}_{}",
                std::process::id(),
                DATABASES.fetch_add(1, Ordering::Relaxed)
            );
            let admin = Store::connect(
                &admin_url,
                &StoreOptions {
                    max_connections: 1,
                    ..StoreOptions::default()
                },
            )
            .await
            .expect("connect to the test cluster");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(admin.pool())
                .await
                .expect("create test database");
            admin.close().await;
            let (base, _) = admin_url
                .rsplit_once('/')
                .expect("URL ends in a database name");
            format!("{base}/{name}")
        }
    }
}

impl TestApp {
    pub async fn start(db: Db) -> TestApp {
        Self::start_with(db, Limits::default()).await
    }

    pub async fn start_with(db: Db, limits: Limits) -> TestApp {
        Self::launch(db, limits, true).await
    }

    /// The server without its background workers: stock is allocated only when a request
    /// asks (order creation, `…/allocate`, `/allocation/run`) or when the test runs
    /// `oms_app::workers::allocation_round` itself, so every allocation happens at a known
    /// step.
    pub async fn start_without_workers(db: Db) -> TestApp {
        Self::launch(db, Limits::default(), false).await
    }

    async fn launch(db: Db, limits: Limits, workers: bool) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = fresh_database(db, dir.path()).await;
        let store = Store::connect(&database_url, &StoreOptions::default())
            .await
            .expect("open store");
        store.migrate().await.expect("migrate");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let state = AppState::new(store.clone(), Some(ADMIN_TOKEN), limits);
        tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            let served = if workers {
                oms_app::serve(listener, state, stopped).await
            } else {
                oms_app::serve_without_workers(listener, state, stopped).await
            };
            served.expect("serve");
        });
        TestApp {
            base,
            database_url,
            http: reqwest::Client::new(),
            store,
            db,
            _dir: dir,
            _shutdown: shutdown,
        }
    }

    /// The URL of the database the server runs on.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Every invariant of DESIGN.md §4 holds on the database.
    pub async fn assert_invariants(&self) {
        let report = oms_app::check::run(&self.store).await.expect("check runs");
        assert!(
            report.breaches.is_empty(),
            "invariant breaches: {:#?}",
            report.breaches
        );
    }

    /// Sends a request; answers the status and the JSON body (`Null` when there is none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        client: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(client) = client {
            request = request.header("X-Client", client);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// GETs a binary answer: the status, its content type and the bytes.
    pub async fn get_bytes(&self, path: &str, token: &str) -> (StatusCode, String, Vec<u8>) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let kind = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await.expect("body").to_vec();
        (status, kind, bytes)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None, None).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(token), None, Some(&body))
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), None, Some(&body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None, None)
            .await
    }

    /// Posts a CSV file as a `text/csv` body.
    pub async fn upload(
        &self,
        kind: &str,
        token: &str,
        csv: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/api/v1/uploads/{kind}", self.base))
            .bearer_auth(token)
            .header("Content-Type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("upload");
        let status = response.status();
        (status, response.json().await.expect("JSON answer"))
    }

    /// Creates client `code` with a key of each role.
    pub async fn client(&self, code: &str) -> ClientKeys {
        let (status, body) = self
            .post(
                "/api/v1/clients",
                ADMIN_TOKEN,
                json!({"code": code, "name": format!("{code} Brand")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let key = async |role: &str| {
            let (status, body) = self
                .post(
                    &format!("/api/v1/clients/{code}/api-keys"),
                    ADMIN_TOKEN,
                    json!({"role": role}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["token"].as_str().expect("token").to_owned()
        };
        ClientKeys {
            admin: key("client_admin").await,
            support: key("client_support").await,
            integration: key("integration").await,
        }
    }
}

/// Asserts the API's error shape and code; answers the body's `error` object.
pub fn assert_error(
    status: StatusCode,
    body: &Value,
    expected_status: StatusCode,
    code: &str,
) -> Value {
    assert_eq!(status, expected_status, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["details"].is_array(), "{body}");
    error.clone()
}

/// The (row, column) of each per-row error of a refused upload.
pub fn rejected_cells(error: &Value) -> Vec<(i64, &str)> {
    error["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| {
            (
                d["row"].as_i64().unwrap_or_default(),
                d["column"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

/// Runs the futures concurrently on the test's runtime.
pub async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

/// One (warehouse, sku) row of `GET /inventory`, as `token` sees it; `Null` when the key has
/// no stock.
pub async fn inventory(app: &TestApp, token: &str, sku: &str, warehouse: &str) -> Value {
    let (status, page) = app
        .get(
            &format!("/api/v1/inventory?sku={sku}&warehouse={warehouse}"),
            token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .and_then(|items| items.first())
        .cloned()
        .unwrap_or(Value::Null)
}

/// Sends only the head of a POST announcing `length` body bytes, and reads the answer
/// (head and body): the server must answer without waiting for the body forever.
pub async fn announce_body(
    app: &TestApp,
    path: &str,
    token: &str,
    kind: &str,
    length: usize,
) -> String {
    announce_body_with(app, "POST", path, token, kind, length).await
}

/// [`announce_body`] with any method.
pub async fn announce_body_with(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    kind: &str,
    length: usize,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: {kind}\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let n = stream.read(&mut buffer).await.expect("read");
            answer.extend_from_slice(&buffer[..n]);
            if n == 0 || answer_is_whole(&answer) {
                break;
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server waited for a body it should refuse"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether `answer` holds a whole HTTP response: the head and `Content-Length` body bytes.
fn answer_is_whole(answer: &[u8]) -> bool {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..end]).to_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    answer.len() >= end + 4 + length
}

/// The JSON body of a raw HTTP answer.
pub fn answer_body(answer: &str) -> Value {
    let (_, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// The first event of type `kind` in a list of events (an order's `events`, or the
/// `items` of `GET /events`).
pub fn event_of<'a>(events: &'a Value, kind: &str) -> &'a Value {
    events
        .as_array()
        .expect("a list of events")
        .iter()
        .find(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event in {events}"))
}
