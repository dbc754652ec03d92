//! The support panel over HTTP, as a browser without JavaScript uses it: forms, cookies,
//! redirects. `browser` drives the same pages in Chromium.

mod browser;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, ClientKeys, TestApp, fresh_database, inventory};
use crate::on_both_backends;
use crate::orders::{line, shop, stock};

on_both_backends!(
    the_operator_creates_panel_users_with_long_passwords_only,
    a_login_sets_a_strict_cookie_and_logout_ends_the_session,
    a_disabled_user_is_signed_out_and_cannot_sign_in_again,
    pages_without_a_session_send_to_the_login_page,
    a_post_without_the_csrf_token_is_refused_and_changes_nothing,
    wrong_passwords_are_rate_limited_per_username,
    support_cannot_reach_settings_and_an_admin_changes_them,
    another_clients_order_looks_like_a_missing_one,
    cancelling_asks_for_confirmation_and_errors_show_in_the_page,
    search_remarks_inventory_and_documents_work_without_javascript,
    uploads_report_every_bad_row_or_the_rows_written,
    search_pages_through_orders_newest_first,
    the_demo_loads_orders_in_every_state_and_users_are_added_from_the_command_line,
);

pub const PASSWORD: &str = "correct horse battery";

/// Creates panel user `username` of `client` with `role`.
pub async fn panel_user(app: &TestApp, client: &str, username: &str, role: &str) {
    let (status, body) = app
        .post(
            &format!("/api/v1/clients/{client}/panel-users"),
            ADMIN_TOKEN,
            json!({"username": username, "password": PASSWORD, "role": role}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A signed-in panel user: its session cookie and the CSRF token its pages carry.
pub struct Panel {
    http: reqwest::Client,
    base: String,
    pub cookie: String,
    pub csrf: String,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// POSTs the login form; answers what came back.
pub async fn try_login(app: &TestApp, client: &str, username: &str, password: &str) -> Answer {
    send(
        &no_redirects(),
        Method::POST,
        &format!("{}/login", app.base),
        None,
        Some(&[
            ("client", client),
            ("username", username),
            ("password", password),
        ]),
        &[],
    )
    .await
}

async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = http.request(method, url);
    if let Some(cookie) = cookie {
        request = request.header("Cookie", format!("oms_session={cookie}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(form) = form {
        request = request
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form_body(form));
    }
    let response = request.send().await.expect("request");
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

/// `a=1&b=x%20y`: a form as a browser encodes it.
fn form_body(form: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                b' ' => "+".to_owned(),
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    form.iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The session token a login answer set.
fn session_token(answer: &Answer) -> String {
    let cookie = answer
        .headers
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie");
    cookie
        .strip_prefix("oms_session=")
        .and_then(|rest| rest.split(';').next())
        .expect("oms_session=<token>")
        .to_owned()
}

/// The CSRF token a page's forms carry.
pub fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
    page[start..].split('"').next().expect("token").to_owned()
}

impl Panel {
    pub async fn login(app: &TestApp, client: &str, username: &str) -> Panel {
        let answer = try_login(app, client, username, PASSWORD).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        assert_eq!(answer.location(), "/");
        let cookie = session_token(&answer);
        let mut panel = Panel {
            http: no_redirects(),
            base: app.base.clone(),
            cookie,
            csrf: String::new(),
        };
        let home = panel.get("/").await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
        panel.csrf = csrf_of(&home.body);
        panel
    }

    pub async fn get(&self, path: &str) -> Answer {
        send(
            &self.http,
            Method::GET,
            &format!("{}{path}", self.base),
            Some(&self.cookie),
            None,
            &[],
        )
        .await
    }

    /// POSTs a form with the session's CSRF token.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let mut fields = vec![("csrf", self.csrf.as_str())];
        fields.extend_from_slice(form);
        self.post_raw(path, &fields).await
    }

    /// POSTs a form as given (no token added).
    pub async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        send(
            &self.http,
            Method::POST,
            &format!("{}{path}", self.base),
            Some(&self.cookie),
            Some(form),
            &[],
        )
        .await
    }

    /// POSTs a multipart form with one file.
    pub async fn upload(&self, kind: &str, csv: &str, with_token: bool) -> Answer {
        let mut form = reqwest::multipart::Form::new();
        if with_token {
            form = form.text("csrf", self.csrf.clone());
        }
        form = form.text("kind", kind.to_owned()).part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec())
                .file_name("upload.csv")
                .mime_str("text/csv")
                .expect("mime"),
        );
        let response = self
            .http
            .post(format!("{}/uploads", self.base))
            .header("Cookie", format!("oms_session={}", self.cookie))
            .multipart(form)
            .send()
            .await
            .expect("upload");
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    }
}

/// acme (from `shop`) with 5 TEE at BLR1, order MYN-1 of 3 TEE released, a support user
/// `asha` and an admin `ravi`.
pub async fn support_desk(app: &TestApp) -> ClientKeys {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 5).await;
    crate::fulfilment::released(app, &acme, "MYN-1", 3).await;
    panel_user(app, "acme", "asha", "client_support").await;
    panel_user(app, "acme", "ravi", "client_admin").await;
    acme
}

async fn order(app: &TestApp, keys: &ClientKeys, code: &str) -> Value {
    let (status, order) = app
        .get(&format!("/api/v1/orders/{code}"), &keys.support)
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    order
}

async fn the_operator_creates_panel_users_with_long_passwords_only(app: &TestApp) {
    let acme = app.client("acme").await;
    let path = "/api/v1/clients/acme/panel-users";
    let (status, body) = app
        .post(
            path,
            ADMIN_TOKEN,
            json!({"username": "asha", "password": PASSWORD, "role": "client_support"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["username"], "asha");
    assert_eq!(body["role"], "client_support");
    assert!(body.get("password").is_none() && !body.to_string().contains(PASSWORD));
    let (status, body) = app
        .post(
            path,
            ADMIN_TOKEN,
            json!({"username": "asha", "password": PASSWORD, "role": "client_admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = app
        .post(
            path,
            ADMIN_TOKEN,
            json!({"username": "ravi", "password": "eleven char", "role": "integration"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(fields, ["password", "role"]);
    let (status, _) = app
        .post(
            path,
            &acme.admin,
            json!({"username": "ravi", "password": PASSWORD, "role": "client_admin"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only the operator makes users"
    );
    let (status, _) = app
        .post(
            "/api/v1/clients/nobody/panel-users",
            ADMIN_TOKEN,
            json!({"username": "ravi", "password": PASSWORD, "role": "client_admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The same username in another client is another person.
    app.client("zeta").await;
    panel_user(app, "zeta", "asha", "client_admin").await;
}

async fn a_login_sets_a_strict_cookie_and_logout_ends_the_session(app: &TestApp) {
    app.client("acme").await;
    panel_user(app, "acme", "asha", "client_support").await;
    let answer = try_login(app, "acme", "asha", PASSWORD).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let cookie = answer.headers[SET_COOKIE].to_str().expect("text");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http gets no Secure flag: {cookie}"
    );
    let over_https = send(
        &no_redirects(),
        Method::POST,
        &format!("{}/login", app.base),
        None,
        Some(&[
            ("client", "acme"),
            ("username", "asha"),
            ("password", PASSWORD),
        ]),
        &[("X-Forwarded-Proto", "https")],
    )
    .await;
    let cookie = over_https.headers[SET_COOKIE].to_str().expect("text");
    assert!(cookie.contains("; Secure"), "{cookie}");

    let panel = Panel::login(app, "acme", "asha").await;
    let home = panel.get("/").await;
    assert!(home.body.contains("asha · acme"), "{}", home.body);
    // A session past its expiry is gone: back to the login page.
    let idle = Panel::login(app, "acme", "asha").await;
    sqlx::query("UPDATE panel_sessions SET expires_at = created_at + 1 WHERE token_hash = $1")
        .bind(oms_app::auth::token_hash(&idle.cookie))
        .execute(app.store.pool())
        .await
        .expect("age the session");
    let expired = idle.get("/").await;
    assert_eq!(expired.status, StatusCode::SEE_OTHER);
    assert_eq!(expired.location(), "/login");
    assert_eq!(
        panel.get("/").await.status,
        StatusCode::OK,
        "other sessions live on"
    );
    let out = panel.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login");
    assert!(
        out.headers[SET_COOKIE]
            .to_str()
            .expect("text")
            .contains("Max-Age=0")
    );
    let after = panel.get("/").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "the session is gone");
    assert_eq!(after.location(), "/login");
}

async fn a_disabled_user_is_signed_out_and_cannot_sign_in_again(app: &TestApp) {
    let acme = app.client("acme").await;
    panel_user(app, "acme", "asha", "client_support").await;
    panel_user(app, "acme", "ravi", "client_admin").await;
    let asha = Panel::login(app, "acme", "asha").await;
    let ravi = Panel::login(app, "acme", "ravi").await;
    assert_eq!(asha.get("/").await.status, StatusCode::OK);
    // Only the operator disables; a client key cannot.
    let (status, _) = app
        .delete("/api/v1/clients/acme/panel-users/asha", &acme.admin)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .delete("/api/v1/clients/acme/panel-users/asha", ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = app
        .delete("/api/v1/clients/acme/panel-users/asha", ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "again: still disabled");
    let (status, body) = app
        .delete("/api/v1/clients/acme/panel-users/nobody", ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Her open session ends at once; she cannot sign in again; others carry on.
    let gone = asha.get("/").await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(gone.location(), "/login");
    let again = try_login(app, "acme", "asha", PASSWORD).await;
    assert_ne!(
        again.status,
        StatusCode::SEE_OTHER,
        "no session for a disabled user"
    );
    assert_eq!(ravi.get("/").await.status, StatusCode::OK);
    let (status, users) = app
        .get("/api/v1/clients/acme/panel-users", ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::OK);
    let users = users.as_array().expect("users");
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["username"], "asha");
    assert!(users[0]["disabled_at"].is_string(), "{users:?}");
    assert!(users[1].get("disabled_at").is_none(), "{users:?}");
}

async fn pages_without_a_session_send_to_the_login_page(app: &TestApp) {
    let http = no_redirects();
    for path in ["/", "/orders/MYN-1", "/inventory", "/settings", "/uploads"] {
        for cookie in [None, Some("not-a-session")] {
            let answer = send(
                &http,
                Method::GET,
                &format!("{}{path}", app.base),
                cookie,
                None,
                &[],
            )
            .await;
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
            assert_eq!(answer.location(), "/login", "{path}");
        }
    }
    let login = send(
        &http,
        Method::GET,
        &format!("{}/login", app.base),
        None,
        None,
        &[],
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("name=\"password\""));
    let htmx = send(
        &http,
        Method::GET,
        &format!("{}/static/htmx.min.js", app.base),
        None,
        None,
        &[],
    )
    .await;
    assert_eq!(htmx.status, StatusCode::OK);
    assert!(htmx.body.starts_with("var htmx="));
    assert!(
        htmx.headers["cache-control"]
            .to_str()
            .expect("text")
            .contains("max-age=31536000")
    );
}

async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing(app: &TestApp) {
    let acme = support_desk(app).await;
    let panel = Panel::login(app, "acme", "asha").await;
    let path = "/orders/MYN-1/remarks?channel=MYNTRA";
    let missing = panel.post_raw(path, &[("text", "no token")]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(missing.body.contains("security token"), "{}", missing.body);
    assert!(missing.body.contains("<html"), "an HTML page, not JSON");
    let wrong = panel
        .post_raw(path, &[("csrf", "0000"), ("text", "wrong token")])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let cancel = panel
        .post_raw(
            "/orders/MYN-1/cancel?channel=MYNTRA",
            &[("reason", "x"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(cancel.status, StatusCode::FORBIDDEN);
    let upload = panel.upload("cancellations", "order_code\n", false).await;
    assert_eq!(upload.status, StatusCode::FORBIDDEN);
    let order = order(app, &acme, "MYN-1").await;
    assert_eq!(order["remarks"], json!([]), "{order}");
    assert_eq!(line(&order, "1")["cancelled"], 0);
    // The header htmx sends is as good as the field.
    let via_header = send(
        &no_redirects(),
        Method::POST,
        &format!("{}{path}", app.base),
        Some(&panel.cookie),
        Some(&[("text", "sent by htmx")]),
        &[("X-CSRF-Token", &panel.csrf)],
    )
    .await;
    assert_eq!(
        via_header.status,
        StatusCode::SEE_OTHER,
        "{}",
        via_header.body
    );
}

async fn wrong_passwords_are_rate_limited_per_username(app: &TestApp) {
    app.client("acme").await;
    panel_user(app, "acme", "asha", "client_support").await;
    for _ in 0..5 {
        let answer = try_login(app, "acme", "asha", "not the password").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer.body.contains("Wrong client, username or password"));
    }
    let answer = try_login(app, "acme", "asha", PASSWORD).await;
    assert_eq!(
        answer.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(
        answer.body.contains("Too many failed logins"),
        "{}",
        answer.body
    );
    assert!(answer.headers.get(SET_COOKIE).is_none());
}

async fn support_cannot_reach_settings_and_an_admin_changes_them(app: &TestApp) {
    let acme = support_desk(app).await;
    let support = Panel::login(app, "acme", "asha").await;
    let home = support.get("/").await;
    assert!(
        !home.body.contains("href=\"/settings\""),
        "no settings link for support"
    );
    assert_eq!(support.get("/settings").await.status, StatusCode::FORBIDDEN);
    let refused = support
        .post(
            "/settings/general",
            &[("strategy", "MINIMIZE_DISTANCE"), ("max_splits", "2")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let admin = Panel::login(app, "acme", "ravi").await;
    let page = admin.get("/").await;
    assert!(page.body.contains("href=\"/settings\""));
    assert_eq!(admin.get("/settings").await.status, StatusCode::OK);
    let saved = admin
        .post(
            "/settings/general",
            &[
                ("excess_grn_allowed", "on"),
                ("qc_fail_reasons", "DAMAGED\nTORN"),
                ("strategy", "MINIMIZE_DISTANCE"),
                ("max_splits", "2"),
                ("legal_name", "Acme Apparel Pvt Ltd"),
                ("prefix", "AC-"),
                ("currency", "INR"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let saved = admin
        .post(
            "/settings/attributes",
            &[
                ("new_name", "colour"),
                ("new_type", "ENUM"),
                ("new_values", "Red, Blue"),
                ("new_displayed", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let saved = admin
        .post(
            "/settings/pools",
            &[
                ("code", "MYN"),
                ("name", "Myntra stock"),
                ("channels", "MYNTRA"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let (_, settings) = app.get("/api/v1/settings", &acme.admin).await;
    assert_eq!(settings["excess_grn_allowed"], true);
    assert_eq!(settings["qc_fail_reasons"], json!(["DAMAGED", "TORN"]));
    assert_eq!(
        settings["routing"],
        json!({"strategy": "MINIMIZE_DISTANCE", "max_splits": 2})
    );
    assert_eq!(settings["invoicing"]["prefix"], "AC-");
    assert_eq!(settings["sku_attributes"][0]["name"], "colour");
    assert_eq!(settings["sku_attributes"][0]["displayed"], true);
    let (_, pool) = app.get("/api/v1/pools/MYN", &acme.admin).await;
    assert_eq!(pool["channels"], json!(["MYNTRA"]), "{pool}");
    // A bad value shows inside the settings page, and nothing changes.
    let bad = admin
        .post(
            "/settings/general",
            &[("strategy", "MINIMIZE_DISTANCE"), ("max_splits", "0")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("id=\"error\""), "{}", bad.body);
    let (_, settings) = app.get("/api/v1/settings", &acme.admin).await;
    assert_eq!(settings["routing"]["max_splits"], 2);
}

async fn another_clients_order_looks_like_a_missing_one(app: &TestApp) {
    support_desk(app).await;
    app.client("zeta").await;
    panel_user(app, "zeta", "zoe", "client_support").await;
    let zeta = Panel::login(app, "zeta", "zoe").await;
    let theirs = zeta.get("/orders/MYN-1?channel=MYNTRA").await;
    let missing = zeta.get("/orders/NOPE-1?channel=MYNTRA").await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        theirs.body.replace("MYN-1", "X"),
        missing.body.replace("NOPE-1", "X")
    );
    let search = zeta.get("/?q=MYN-1").await;
    assert!(search.body.contains("No orders match"), "{}", search.body);
    let remark = zeta
        .post("/orders/MYN-1/remarks?channel=MYNTRA", &[("text", "hello")])
        .await;
    assert_eq!(remark.status, StatusCode::NOT_FOUND);
    assert_eq!(
        zeta.get("/orders/MYN-1/invoice.pdf?channel=MYNTRA")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn cancelling_asks_for_confirmation_and_errors_show_in_the_page(app: &TestApp) {
    let acme = support_desk(app).await;
    let panel = Panel::login(app, "acme", "asha").await;
    let path = "/orders/MYN-1/cancel?channel=MYNTRA";
    let ask = panel
        .post(
            path,
            &[("line_id", "1"), ("qty", "1"), ("reason", "customer asked")],
        )
        .await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("id=\"confirm-cancel\""), "{}", ask.body);
    assert_eq!(
        line(&order(app, &acme, "MYN-1").await, "1")["cancelled"],
        0,
        "not yet"
    );
    let before = inventory(app, &acme.admin, "TEE", "BLR1").await["available"]
        .as_i64()
        .expect("available");
    let done = panel
        .post(
            path,
            &[
                ("line_id", "1"),
                ("qty", "1"),
                ("reason", "customer asked"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let page = panel.get(done.location()).await;
    assert!(page.body.contains("Cancelled."), "{}", page.body);
    let order_now = order(app, &acme, "MYN-1").await;
    assert_eq!(line(&order_now, "1")["cancelled"], 1);
    assert_eq!(line(&order_now, "1")["allocated"], 2);
    let after = inventory(app, &acme.admin, "TEE", "BLR1").await["available"]
        .as_i64()
        .expect("available");
    assert_eq!(after, before + 1, "the unit is free again");
    // More than is cancellable: a 409 shown inside the order page, nothing changed.
    let too_many = panel
        .post(
            path,
            &[
                ("line_id", "1"),
                ("qty", "9"),
                ("reason", "customer asked"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(too_many.status, StatusCode::CONFLICT);
    assert!(too_many.body.contains("id=\"error\""), "{}", too_many.body);
    assert!(
        too_many.body.contains("Order MYN-1"),
        "the order page around the error"
    );
    // No reason: 422 in the page.
    let no_reason = panel
        .post(path, &[("line_id", "1"), ("qty", "1"), ("confirm", "yes")])
        .await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_reason.body.contains("reason"), "{}", no_reason.body);
    // The whole order.
    let whole = panel
        .post(path, &[("reason", "fraud suspected"), ("confirm", "yes")])
        .await;
    assert_eq!(whole.status, StatusCode::SEE_OTHER, "{}", whole.body);
    let order_now = order(app, &acme, "MYN-1").await;
    assert_eq!(order_now["status"], "CANCELLED");
    assert_eq!(
        inventory(app, &acme.admin, "TEE", "BLR1").await["available"],
        5
    );
}

async fn search_remarks_inventory_and_documents_work_without_javascript(app: &TestApp) {
    let acme = support_desk(app).await;
    let panel = Panel::login(app, "acme", "asha").await;
    let found = panel.get("/?q=98450").await;
    assert!(
        found.body.contains("/orders/MYN-1?channel=MYNTRA"),
        "{}",
        found.body
    );
    let by_status = panel.get("/?status=CANCELLED").await;
    assert!(by_status.body.contains("No orders match"));
    let bad_status = panel.get("/?status=LOST").await;
    assert!(bad_status.body.contains("LOST is not an order status"));

    let page = panel.get("/orders/MYN-1?channel=MYNTRA").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("BLR1 had 3, 3 allocated; DEL1 had none; allocated 3 of 3 units from BLR1."),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("id=\"invoice\""),
        "no invoice before packing"
    );
    let early = panel.get("/orders/MYN-1/invoice.pdf?channel=MYNTRA").await;
    assert_eq!(early.status, StatusCode::CONFLICT, "not packed yet");
    assert!(
        early.body.contains("<html") && early.body.contains("PACKED"),
        "{}",
        early.body
    );
    let unknown = panel.get("/orders/MYN-1/receipt.pdf?channel=MYNTRA").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let added = panel
        .post(
            "/orders/MYN-1/remarks?channel=MYNTRA",
            &[("text", "called the customer")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let order_now = order(app, &acme, "MYN-1").await;
    let remark = &order_now["remarks"][0];
    assert_eq!(remark["text"], "called the customer");
    assert!(
        remark["author"]
            .as_str()
            .is_some_and(|a| a.starts_with("user:") && a.ends_with(":asha"))
    );
    let id = remark["id"].as_i64().expect("id");
    let edited = panel
        .post(
            &format!("/orders/MYN-1/remarks/{id}?channel=MYNTRA"),
            &[("text", "called twice")],
        )
        .await;
    assert_eq!(edited.status, StatusCode::SEE_OTHER, "{}", edited.body);
    assert_eq!(
        order(app, &acme, "MYN-1").await["remarks"][0]["text"],
        "called twice"
    );
    let empty = panel
        .post("/orders/MYN-1/remarks?channel=MYNTRA", &[("text", "  ")])
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);

    let stock_page = panel.get("/inventory?sku=TEE").await;
    assert!(
        stock_page.body.contains("id=\"stock-BLR1\""),
        "{}",
        stock_page.body
    );
    assert!(
        stock_page.body.contains("QC_PASS") || stock_page.body.contains("GRN"),
        "{}",
        stock_page.body
    );

    let shipment = order_now["shipments"][0]["shipment_id"]
        .as_i64()
        .expect("shipment");
    for body in [
        json!({"status": "PICKED"}),
        json!({"status": "PACKED", "awb": "AWB42", "carrier": "Delhivery"}),
    ] {
        let (status, body) = app
            .post(
                &format!("/api/v1/shipments/{shipment}/status"),
                &acme.integration,
                body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let page = panel.get("/orders/MYN-1?channel=MYNTRA").await;
    assert!(page.body.contains("id=\"invoice\""), "{}", page.body);
    assert!(page.body.contains("id=\"label\""));
    for document in ["invoice.pdf", "shipping-label.pdf"] {
        let pdf = panel
            .http
            .get(format!(
                "{}/orders/MYN-1/{document}?channel=MYNTRA",
                app.base
            ))
            .header("Cookie", format!("oms_session={}", panel.cookie))
            .send()
            .await
            .expect("pdf");
        assert_eq!(pdf.status(), StatusCode::OK);
        assert_eq!(pdf.headers()["content-type"], "application/pdf");
        assert!(pdf.bytes().await.expect("bytes").starts_with(b"%PDF"));
    }
    // A picked unit cannot be cancelled: the page says so.
    let refused = panel
        .post(
            "/orders/MYN-1/cancel?channel=MYNTRA",
            &[
                ("line_id", "1"),
                ("qty", "1"),
                ("reason", "late"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("id=\"error\""));
}

async fn uploads_report_every_bad_row_or_the_rows_written(app: &TestApp) {
    let acme = support_desk(app).await;
    let admin = Panel::login(app, "acme", "ravi").await;
    let page = admin.get("/uploads").await;
    assert!(page.body.contains("/uploads/skus.csv"));
    let template = admin.get("/uploads/skus.csv").await;
    assert_eq!(template.status, StatusCode::OK);
    assert!(
        template.body.starts_with("code,name,mrp"),
        "{}",
        template.body
    );
    let bad = admin
        .upload(
            "skus",
            "code,name,mrp\nSOCK,Socks,abc\n,Nameless,10\n",
            true,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("id=\"row-errors\""), "{}", bad.body);
    assert!(
        bad.body.contains("2 rows have errors; nothing was written"),
        "{}",
        bad.body
    );
    let (status, _) = app.get("/api/v1/skus/SOCK", &acme.admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "all or nothing");
    let good = admin
        .upload("skus", "code,name,mrp\nSOCK,Socks,199\nCAP,Cap,299\n", true)
        .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.body);
    assert!(good.body.contains("2 rows written"), "{}", good.body);
    let (status, _) = app.get("/api/v1/skus/SOCK", &acme.admin).await;
    assert_eq!(status, StatusCode::OK);
    // Support may upload cancellations but not masters.
    let support = Panel::login(app, "acme", "asha").await;
    let page = support.get("/uploads").await;
    assert!(page.body.contains("cancellations") && !page.body.contains("value=\"skus\""));
    let refused = support
        .upload("skus", "code,name,mrp\nHAT,Hat,99\n", true)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

async fn oms(args: &[&str], database_url: &str, password: Option<&str>) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_oms"));
    command
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("OMS_USER_PASSWORD")
        .stdin(std::process::Stdio::null());
    if let Some(password) = password {
        command.env("OMS_USER_PASSWORD", password);
    }
    command.output().await.expect("run oms")
}

async fn the_demo_loads_orders_in_every_state_and_users_are_added_from_the_command_line(
    app: &TestApp,
) {
    // A database of its own, not the one the in-process server holds.
    let dir = tempfile::tempdir().expect("dir");
    let url = fresh_database(app.db, dir.path()).await;
    let demo = oms(&["demo"], &url, None).await;
    let printed = String::from_utf8_lossy(&demo.stdout);
    assert!(
        demo.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(printed.contains("username support"), "{printed}");
    assert!(printed.contains("300 orders"), "{printed}");
    let check = oms(&["check"], &url, None).await;
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let again = oms(&["demo"], &url, None).await;
    assert!(
        !again.status.success(),
        "the demo loads into a fresh database only"
    );

    let added = oms(
        &[
            "user",
            "add",
            "--client",
            "acme",
            "--username",
            "lee",
            "--role",
            "client_support",
        ],
        &url,
        Some(PASSWORD),
    )
    .await;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let short = oms(
        &[
            "user",
            "add",
            "--client",
            "acme",
            "--username",
            "kim",
            "--role",
            "client_admin",
        ],
        &url,
        Some("short"),
    )
    .await;
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));

    let store = oms_store::Store::connect(
        &url,
        &oms_store::StoreOptions {
            exclusive: false,
            ..oms_store::StoreOptions::default()
        },
    )
    .await
    .expect("open the demo database");
    let acme = oms_store::clients::find_by_code(store.pool(), "acme")
        .await
        .expect("read")
        .expect("the demo client");
    for status in [
        "RELEASED",
        "PARTIALLY_ALLOCATED",
        "SHIPPED",
        "DELIVERED",
        "CANCELLED",
    ] {
        let found = oms_store::orders::search(store.pool(), acme.id, status, "", "", 0, 1)
            .await
            .expect("search");
        assert_eq!(found.len(), 1, "the demo has a {status} order");
    }
    for user in ["support", "admin", "lee"] {
        let row = oms_store::panel::find_user(store.pool(), "acme", user)
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("user {user}"));
        assert!(row.password_hash.starts_with("$argon2id$"));
    }
    assert!(
        oms_store::panel::find_user(store.pool(), "acme", "kim")
            .await
            .expect("read")
            .is_none()
    );
    store.close().await;
}

async fn search_pages_through_orders_newest_first(app: &TestApp) {
    let acme = shop(app).await;
    for number in 1..=27 {
        let (status, body) = app
            .post(
                "/api/v1/orders",
                &acme.integration,
                crate::orders::b2c(
                    &format!("AJ-{number}"),
                    "AJIO",
                    "BLOCK_COMPLETE",
                    &[("TEE", 1)],
                    crate::orders::BLR,
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    panel_user(app, "acme", "asha", "client_support").await;
    let panel = Panel::login(app, "acme", "asha").await;
    let links = |page: &str| -> Vec<String> {
        page.split("class=\"order-link\">")
            .skip(1)
            .filter_map(|rest| rest.split('<').next())
            .map(str::to_owned)
            .collect()
    };
    let first = panel.get("/?channel=AJIO&status=UNFULFILLABLE").await;
    let codes = links(&first.body);
    assert_eq!(codes.len(), 25);
    assert_eq!(codes[0], "AJ-27", "newest first");
    let marker = "href=\"";
    let next = first
        .body
        .split("id=\"next-page\"")
        .next()
        .and_then(|before| before.rsplit(marker).next())
        .and_then(|rest| rest.split('"').next())
        .expect("a next page link")
        .replace("&#38;", "&");
    let second = panel.get(&next).await;
    assert_eq!(links(&second.body), ["AJ-2", "AJ-1"]);
    assert!(!second.body.contains("id=\"next-page\""));
    assert!(second.body.contains("First page"));
    let other_channel = panel.get("/?channel=MYNTRA").await;
    assert!(other_channel.body.contains("No orders match"));
    // The search's results download as CSV, with the same filters, for this session only.
    let export = first
        .body
        .split("id=\"export\"")
        .next()
        .and_then(|before| before.rsplit(marker).next())
        .and_then(|rest| rest.split('"').next())
        .expect("an export link")
        .replace("&#38;", "&");
    let csv = panel.get(&export).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .expect("text")
            .starts_with("text/csv")
    );
    let rows: Vec<&str> = csv.body.lines().collect();
    assert_eq!(rows.len(), 28, "a header and 27 orders");
    assert!(rows[1].starts_with("AJ-27,AJIO,"), "{}", rows[1]);
    let stranger = send(
        &no_redirects(),
        Method::GET,
        &format!("{}{export}", app.base),
        None,
        None,
        &[],
    )
    .await;
    assert_eq!(stranger.status, StatusCode::SEE_OTHER);
    assert_eq!(stranger.location(), "/login");
}
