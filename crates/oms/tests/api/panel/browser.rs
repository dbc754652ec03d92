//! The panel in a real browser: Debian's Chromium, headless, driven through chromedriver
//! (started per test on a free loopback port) with fantoccini. One story per backend walks
//! every support flow and saves screenshots of the main pages to
//! `test-output/screenshots/`.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{PASSWORD, panel_user, support_desk};
use crate::helpers::{ClientKeys, TestApp};
use crate::on_both_backends;

on_both_backends!(a_support_agent_works_an_order_in_the_browser);

/// chromedriver and the Chromium it runs; both end when this is dropped.
struct Browser {
    client: Option<Client>,
    driver: std::process::Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads its own process group (Chromium included): end all of it.
        let group = format!("-{}", self.driver.id());
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &group])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn start_browser() -> Browser {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    let driver = std::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .expect("chromedriver runs (scripts/test installs chromium-driver)");
    let profile = tempfile::tempdir().expect("profile dir");
    let mut browser = Browser {
        client: None,
        driver,
        _profile: profile,
    };
    let address = format!("127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&address).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "chromedriver did not listen on {address}");
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([format!(
        "--user-data-dir={}",
        browser._profile.path().display()
    )])
    .collect::<Vec<_>>();
    let capabilities = json!({
        "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("an object literal");
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://{address}"))
        .await
        .expect("a Chromium session");
    browser.client = Some(client);
    browser
}

fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-output/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// The story's view of the browser: short helpers that fail the test with context.
struct Agent<'a> {
    client: &'a Client,
    base: String,
    backend: &'static str,
}

impl Agent<'_> {
    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigate");
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("type");
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .is_empty()
    }

    async fn page_text(&self) -> String {
        self.text("body").await
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(
            screenshots_dir().join(format!("{name}-{}.png", self.backend)),
            png,
        )
        .expect("save screenshot");
    }

    async fn login(&self, client: &str, username: &str, password: &str) {
        self.goto("/login").await;
        self.fill("#client", client).await;
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        self.click("#login").await;
    }

    async fn logout(&self) {
        // Error pages have no top bar: log out from the order search.
        self.goto("/").await;
        self.click("#logout").await;
        self.find("#login").await;
    }

    /// Chooses `file` in the upload form and sends it.
    async fn upload(&self, file: &std::path::Path) {
        let input = self.find("#file").await;
        input
            .send_keys(&file.display().to_string())
            .await
            .expect("choose the file");
        self.click("#upload").await;
    }

    /// The session cookie the browser holds.
    async fn session_cookie(&self) -> String {
        self.client
            .get_named_cookie("oms_session")
            .await
            .expect("a session cookie")
            .value()
            .to_owned()
    }

    /// A POST made from the page without the CSRF token; answers its status.
    async fn post_without_token(&self, path: &str) -> i64 {
        let script = "const done = arguments[arguments.length - 1];
            fetch(arguments[0], {method: 'POST', body: 'text=sneaky',
                headers: {'Content-Type': 'application/x-www-form-urlencoded'}})
              .then(r => done(r.status), e => done(String(e)));";
        let status = self
            .client
            .execute_async(script, vec![json!(path)])
            .await
            .expect("script");
        status
            .as_i64()
            .unwrap_or_else(|| panic!("a status: {status}"))
    }
}

/// MYN-2: one TEE, picked and packed with an AWB, so its invoice and label exist.
async fn packed_order(app: &TestApp, keys: &ClientKeys) {
    let (_, shipment) = crate::fulfilment::released(app, keys, "MYN-2", 1).await;
    for body in [
        json!({"status": "PICKED"}),
        json!({"status": "PACKED", "awb": "DLV123456789", "carrier": "Delhivery"}),
    ] {
        let (status, body) = app
            .post(
                &format!("/api/v1/shipments/{shipment}/status"),
                &keys.integration,
                body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

async fn a_support_agent_works_an_order_in_the_browser(app: &TestApp) {
    let acme = support_desk(app).await;
    packed_order(app, &acme).await;
    app.client("zeta").await;
    panel_user(app, "zeta", "zoe", "client_support").await;
    let mut browser = start_browser().await;
    let client = browser.client.take().expect("client");
    let agent = Agent {
        client: &client,
        base: app.base.clone(),
        backend: match app.db {
            crate::helpers::Db::Sqlite => "sqlite",
            crate::helpers::Db::Postgres => "postgres",
        },
    };
    story(app, &acme, &agent).await;
    client.close().await.expect("close the session");
}

async fn story(app: &TestApp, acme: &ClientKeys, agent: &Agent<'_>) {
    // Log in; search by the customer's phone.
    agent.login("acme", "asha", PASSWORD).await;
    agent.find("#q").await;
    assert!(agent.page_text().await.contains("asha · acme"));
    agent.fill("#q", "98450 12345").await;
    agent.click("#search-button").await;
    agent.find("#orders").await;
    let codes: Vec<String> = {
        let mut codes = Vec::new();
        for link in agent
            .client
            .find_all(Locator::Css("a.order-link"))
            .await
            .expect("links")
        {
            codes.push(link.text().await.expect("text"));
        }
        codes
    };
    assert_eq!(codes, ["MYN-2", "MYN-1"], "newest first");
    agent.screenshot("orders").await;

    // Open the order; the trace reads as a sentence.
    agent
        .click("a.order-link[href='/orders/MYN-1?channel=MYNTRA']")
        .await;
    let trace = agent.text("#trace").await;
    assert!(
        trace.contains("BLR1 had 3, 3 allocated; DEL1 had none; allocated 3 of 3 units from BLR1."),
        "{trace}"
    );
    assert_eq!(agent.text("#order-status").await, "RELEASED");

    // Add a remark.
    agent
        .fill("#remark-text", "Customer called: wants one less")
        .await;
    agent.click("#add-remark-button").await;
    assert_eq!(agent.text("#notice").await, "Remark added.");
    let (_, order) = app.get("/api/v1/orders/MYN-1", &acme.support).await;
    assert_eq!(
        order["remarks"][0]["text"],
        "Customer called: wants one less"
    );
    agent.screenshot("order").await;

    // Cancel one unit of line 1, behind the confirmation step.
    agent.fill("#line-1 input[name=qty]", "1").await;
    agent
        .fill("#line-1 input[name=reason]", "customer asked")
        .await;
    agent.click("#line-1 button").await;
    let confirm = agent.text("#confirm-cancel").await;
    assert!(
        confirm.contains("Cancel 1 unit(s) of TEE on line 1"),
        "{confirm}"
    );
    agent.screenshot("cancel-confirm").await;
    let (_, before) = app.get("/api/v1/orders/MYN-1", &acme.support).await;
    assert_eq!(
        before["lines"][0]["cancelled"], 0,
        "nothing before confirming"
    );
    agent.click("#confirm").await;
    assert!(agent.text("#notice").await.starts_with("Cancelled."));
    assert_eq!(agent.text("#line-1 .cancelled").await, "1");
    assert_eq!(agent.text("#line-1 .allocated").await, "2");

    // The freed unit is available again: 5 received, 2 + 1 allocated.
    agent.goto("/inventory?sku=TEE").await;
    assert_eq!(agent.text("#stock-BLR1 .available").await, "2");
    assert_eq!(agent.text("#stock-BLR1 .allocated").await, "3");
    let ledger = agent.text("#ledger").await;
    assert!(
        ledger.contains("ALLOCATED:COMMON → AVAILABLE:COMMON 1 DEALLOCATE"),
        "the cancellation is the newest movement: {ledger}"
    );
    agent.screenshot("inventory").await;
    let (_, api) = app
        .get("/api/v1/inventory?sku=TEE&warehouse=BLR1", &acme.admin)
        .await;
    assert_eq!(api["items"][0]["available"], 2, "{api}");

    // Download the invoice of the packed order with the session cookie.
    agent.goto("/orders/MYN-2?channel=MYNTRA").await;
    let href = agent
        .find("#invoice")
        .await
        .attr("href")
        .await
        .expect("attr")
        .expect("an invoice link");
    let cookie = agent.session_cookie().await;
    let response = reqwest::Client::new()
        .get(format!("{}{href}", app.base))
        .header("Cookie", format!("oms_session={cookie}"))
        .send()
        .await
        .expect("invoice");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    assert!(response.bytes().await.expect("pdf").starts_with(b"%PDF"));
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}{href}", app.base))
        .send()
        .await
        .expect("invoice");
    assert_eq!(
        anonymous.status(),
        StatusCode::SEE_OTHER,
        "no cookie, no invoice"
    );

    // Support sees no settings and cannot reach them.
    assert!(!agent.exists("header a[href='/settings']").await);
    agent.goto("/settings").await;
    assert_eq!(agent.text("h1").await, "Not allowed");

    // A POST without the CSRF token is refused.
    agent.goto("/").await;
    assert_eq!(
        agent
            .post_without_token("/orders/MYN-1/remarks?channel=MYNTRA")
            .await,
        403
    );
    let (_, order) = app.get("/api/v1/orders/MYN-1", &acme.support).await;
    assert_eq!(order["remarks"].as_array().map(Vec::len), Some(1));
    agent.logout().await;

    // Another client's support user finds no such order.
    agent.login("zeta", "zoe", PASSWORD).await;
    agent.find("#q").await;
    agent.goto("/orders/MYN-1?channel=MYNTRA").await;
    let theirs = agent.text("#error").await;
    agent.goto("/orders/NOPE-9?channel=MYNTRA").await;
    let missing = agent.text("#error").await;
    assert_eq!(agent.text("h1").await, "Not found");
    assert_eq!(theirs.replace("MYN-1", "X"), missing.replace("NOPE-9", "X"));
    agent.logout().await;

    // The admin sees settings and uploads a file (htmx shows the result in place).
    agent.login("acme", "ravi", PASSWORD).await;
    agent.click("header a[href='/settings']").await;
    agent.find("#general").await;
    agent.screenshot("settings").await;
    agent.goto("/uploads").await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("skus.csv");
    std::fs::write(&file, "code,name,mrp\nSOCK,Socks,199\nCAP,Cap,299\n").expect("csv");
    agent
        .find("#kind option[value='skus']")
        .await
        .click()
        .await
        .expect("choose");
    agent.upload(&file).await;
    assert_eq!(agent.text("#upload-ok").await, "skus.csv: 2 rows written.");
    // The progress bar followed the upload to its last byte, then hid itself.
    let bar = agent.find("#upload-progress").await;
    let sent = bar.attr("data-sent").await.expect("attribute");
    let body_bytes: u64 = sent
        .as_deref()
        .unwrap_or("0")
        .parse()
        .expect("a byte count");
    assert!(
        body_bytes > std::fs::metadata(&file).expect("file").len(),
        "the whole multipart body was reported sent: {sent:?}"
    );
    assert_eq!(
        bar.attr("hidden").await.expect("attribute").as_deref(),
        Some("true")
    );
    // A bad file writes nothing and lists every bad row, in place.
    std::fs::write(&file, "code,name,mrp\nHAT,Hat,abc\n,Nameless,10\n").expect("csv");
    agent.upload(&file).await;
    let report = agent.text("#row-errors").await;
    assert!(
        report.contains("mrp") && report.contains("code"),
        "{report}"
    );
    assert!(
        agent
            .text("#upload-error")
            .await
            .ends_with("nothing was written")
    );
    agent.screenshot("uploads").await;
    let (status, _) = app.get("/api/v1/skus/HAT", &acme.admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "all rows or none");
    let (status, _) = app.get("/api/v1/skus/CAP", &acme.admin).await;
    assert_eq!(status, StatusCode::OK);
    agent.logout().await;

    // Wrong passwords are limited: after five, even the right one waits.
    for _ in 0..5 {
        agent.login("acme", "asha", "not my password").await;
        assert_eq!(
            agent.text("#error").await,
            "Wrong client, username or password."
        );
    }
    agent.login("acme", "asha", PASSWORD).await;
    let error = agent.text("#error").await;
    assert!(error.starts_with("Too many failed logins."), "{error}");
    agent.screenshot("login-rate-limited").await;
}
