//! Issue #8: the tenant and role matrix. Every API route of the OpenAPI document (plus every
//! upload kind) × every kind of caller × {own object, the other client's object, a missing
//! one}: no 5xx, 401 for bad credentials, 403 where the role lacks the permission, and a
//! client naming another client's object answers exactly like a missing object.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, ClientKeys, TestApp, announce_body_with, answer_body};
use crate::on_both_backends;
use crate::orders::{BLR, b2c};
use crate::panel::{Panel, panel_user};

on_both_backends!(
    every_route_refuses_other_tenants_and_missing_permissions,
    every_route_with_a_body_refuses_oversized_and_stalled_bodies,
);

/// Every (method, path) of the OpenAPI document, read at run time so a new route is covered,
/// and whether it takes a request body.
fn api_routes() -> Vec<(Method, String, bool)> {
    let doc = serde_json::to_value(oms_app::api::openapi()).expect("OpenAPI as JSON");
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (name, method) in [
            ("get", Method::GET),
            ("put", Method::PUT),
            ("post", Method::POST),
            ("delete", Method::DELETE),
            ("patch", Method::PATCH),
        ] {
            if let Some(operation) = item.get(name) {
                let body = operation.get("requestBody").is_some() || path.contains("{kind}");
                routes.push((method, path.clone(), body));
            }
        }
    }
    routes
}

/// Every route that takes a body, called by a caller it admits: a body announced over the
/// limit is refused with 413 from its length alone, and a body that never comes is answered
/// 408 once the request timeout passes — both in the JSON error shape, nothing written.
async fn every_route_with_a_body_refuses_oversized_and_stalled_bodies(app: &TestApp) {
    let limits = oms_app::Limits {
        request_timeout: std::time::Duration::from_secs(1),
        json_body_bytes_max: 4096,
        upload_bytes_max: 8192,
        ..oms_app::Limits::default()
    };
    let quick = TestApp::start_with(app.db, limits.clone()).await;
    let (keys, a) = tenant(&quick, "alpha", "ZA").await;
    let before = snapshot(&quick, &keys).await;
    let mut swept = 0;
    for (method, template, takes_body) in api_routes() {
        // A route without a body does not read one: it answers whatever is announced.
        if !takes_body || method == Method::GET {
            continue;
        }
        let kinds: Vec<Option<&str>> = if template.contains("{kind}") {
            UPLOAD_KINDS.iter().copied().map(Some).collect()
        } else {
            vec![None]
        };
        for kind in kinds {
            let path = fill(&template, &a, kind).expect("filled");
            let token = if need(&method, &template, kind) == Need::Operator {
                ADMIN_TOKEN
            } else {
                keys.admin.as_str()
            };
            let (content_type, limit) = if kind.is_some() {
                ("text/csv", limits.upload_bytes_max)
            } else {
                ("application/json", limits.json_body_bytes_max)
            };
            let over = announce_body_with(
                &quick,
                method.as_str(),
                &path,
                token,
                content_type,
                limit + 1,
            )
            .await;
            assert!(over.starts_with("HTTP/1.1 413"), "{method} {path}: {over}");
            assert_eq!(answer_body(&over)["error"]["code"], "payload_too_large");
            let stalled =
                announce_body_with(&quick, method.as_str(), &path, token, content_type, 10).await;
            assert!(
                stalled.starts_with("HTTP/1.1 408"),
                "{method} {path}: {stalled}"
            );
            assert_eq!(answer_body(&stalled)["error"]["code"], "request_timeout");
            swept += 1;
        }
    }
    assert!(swept >= 25, "only {swept} routes take a body");
    assert_eq!(
        before,
        snapshot(&quick, &keys).await,
        "refused requests wrote nothing"
    );
    quick.assert_invariants().await;
}

const UPLOAD_KINDS: [&str; 7] = [
    "skus",
    "suppliers",
    "customers",
    "inward-orders",
    "outward-orders",
    "cancellations",
    "pool-movements",
];

/// The objects of one client, by path parameter meaning.
#[derive(Clone, Debug)]
struct Objects {
    client: String,
    warehouse: String,
    channel: String,
    sku: String,
    supplier: String,
    customer: String,
    inward: String,
    order: String,
    shipment: String,
    remark: String,
    webhook: String,
    pool: String,
    key_id: String,
    username: String,
    delivery: String,
}

impl Objects {
    fn named(client: &str, p: &str) -> Objects {
        Objects {
            client: client.to_owned(),
            warehouse: format!("{p}WH1"),
            channel: format!("{p}CH1"),
            sku: format!("{p}SKU1"),
            supplier: format!("{p}SUP1"),
            customer: format!("{p}CUS1"),
            inward: format!("{p}IN1"),
            order: format!("{p}ORD1"),
            shipment: String::new(),
            remark: String::new(),
            webhook: format!("{p}HOOK1"),
            pool: format!("{p}POOL1"),
            key_id: String::new(),
            username: format!("{p}user").to_lowercase(),
            delivery: "999999".to_owned(),
        }
    }

    fn missing() -> Objects {
        let mut o = Objects::named("nosuchclient", "MISSING");
        o.shipment = "987654".into();
        o.remark = "987654".into();
        o.key_id = "987654".into();
        o.delivery = "987654".into();
        o
    }
}

async fn ok(app: &TestApp, method: Method, path: &str, token: &str, body: Value) -> Value {
    let (status, answer) = app.call(method, path, Some(token), None, Some(&body)).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// A client with a warehouse, channel, SKU, supplier, customer, stock, an inward order, an
/// order with a packed shipment and an AWB, a remark, a webhook, a pool, a spare key and a
/// panel user; every code starts with `p`.
async fn tenant(app: &TestApp, code: &str, p: &str) -> (ClientKeys, Objects) {
    let keys = app.client(code).await;
    let mut o = Objects::named(code, p);
    let w = o.warehouse.clone();
    ok(
        app,
        Method::PUT,
        &format!("/api/v1/warehouses/{w}"),
        ADMIN_TOKEN,
        json!({"name": w, "type": "WAREHOUSE", "pincode": "560001", "lat": BLR.0, "lon": BLR.1}),
    )
    .await;
    ok(
        app,
        Method::PUT,
        &format!("/api/v1/clients/{code}/warehouses/{w}"),
        ADMIN_TOKEN,
        json!({}),
    )
    .await;
    ok(
        app,
        Method::PUT,
        &format!("/api/v1/channels/{}", o.channel),
        &keys.admin,
        json!({"name": "Channel", "type": "MARKETPLACE"}),
    )
    .await;
    ok(
        app,
        Method::PUT,
        &format!("/api/v1/skus/{}", o.sku),
        &keys.admin,
        json!({"name": "Tee", "mrp": 999}),
    )
    .await;
    ok(
        app,
        Method::PUT,
        &format!("/api/v1/suppliers/{}", o.supplier),
        &keys.admin,
        json!({"name": "Supplier"}),
    )
    .await;
    ok(
        app,
        Method::PUT,
        &format!("/api/v1/customers/{}", o.customer),
        &keys.admin,
        json!({"name": "Customer"}),
    )
    .await;
    ok(
        app,
        Method::PUT,
        &format!("/api/v1/webhooks/{}", o.webhook),
        &keys.admin,
        json!({"url": "http://127.0.0.1:9/hook", "secret": "s3cret-s3cret-s3cret", "event_types": []}),
    )
    .await;
    ok(
        app,
        Method::POST,
        "/api/v1/inward-orders",
        &keys.integration,
        json!({"order_code": o.inward, "type": "PO", "warehouse": w, "party": o.supplier,
               "lines": [{"sku": o.sku, "qty": 10}]}),
    )
    .await;
    ok(
        app,
        Method::POST,
        &format!("/api/v1/inward-orders/{}/grn", o.inward),
        &keys.integration,
        json!({"lines": [{"sku": o.sku, "qty": 10}]}),
    )
    .await;
    ok(
        app,
        Method::POST,
        &format!("/api/v1/inward-orders/{}/qc", o.inward),
        &keys.integration,
        json!({"lines": [{"sku": o.sku, "pass": 10}]}),
    )
    .await;
    let order = ok(
        app,
        Method::POST,
        "/api/v1/orders",
        &keys.integration,
        b2c(
            &o.order,
            &o.channel,
            "MULTI_SHIPMENT_PARTIAL",
            &[(o.sku.as_str(), 2)],
            BLR,
        ),
    )
    .await;
    let shipment = order["shipments"][0]["shipment_id"]
        .as_i64()
        .expect("a shipment");
    o.shipment = shipment.to_string();
    let status = format!("/api/v1/shipments/{shipment}/status");
    ok(
        app,
        Method::POST,
        &status,
        &keys.integration,
        json!({"status": "PICKED"}),
    )
    .await;
    ok(
        app,
        Method::POST,
        &status,
        &keys.integration,
        json!({"status": "PACKED", "awb": format!("{p}AWB1"), "carrier": "Delhivery"}),
    )
    .await;
    let remark = ok(
        app,
        Method::POST,
        &format!("/api/v1/orders/{}/remarks", o.order),
        &keys.support,
        json!({"text": "called"}),
    )
    .await;
    o.remark = remark["remarks"][0]["id"]
        .as_i64()
        .or_else(|| remark["id"].as_i64())
        .expect("remark id")
        .to_string();
    ok(
        app,
        Method::PUT,
        &format!("/api/v1/pools/{}", o.pool),
        &keys.admin,
        json!({"name": "Pool", "channels": [o.channel]}),
    )
    .await;
    ok(
        app,
        Method::POST,
        &format!("/api/v1/clients/{code}/api-keys"),
        ADMIN_TOKEN,
        json!({"role": "integration"}),
    )
    .await;
    let (_, list) = app
        .get(&format!("/api/v1/clients/{code}/api-keys"), ADMIN_TOKEN)
        .await;
    o.key_id = list
        .as_array()
        .and_then(|l| l.iter().filter_map(|k| k["id"].as_i64()).max())
        .expect("key ids")
        .to_string();
    panel_user(app, code, &o.username, "client_support").await;
    // The relay queues deliveries for the hook (to a closed port): the first one's id.
    for _ in 0..50 {
        let (_, list) = app
            .get(
                &format!("/api/v1/webhooks/{}/deliveries", o.webhook),
                &keys.admin,
            )
            .await;
        let first = list
            .as_array()
            .and_then(|l| l.iter().filter_map(|d| d["id"].as_i64()).min());
        if let Some(id) = first {
            o.delivery = id.to_string();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (keys, o)
}

/// One caller of the matrix.
struct Caller {
    name: &'static str,
    token: Option<String>,
    x_client: Option<String>,
    /// The client it acts for (`None`: no client scope).
    tenant: Option<char>,
    role: Option<&'static str>,
    /// Bad credentials: 401 everywhere.
    unauthenticated: bool,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Need {
    Public,
    Operator,
    Read,
    ActOnOrders,
    WriteMasters,
    MoveStock,
    WriteSettings,
}

/// The permission access.rs and decisions.md give a route.
fn need(method: &Method, path: &str, kind: Option<&str>) -> Need {
    if path == "/healthz" || path == "/metrics" {
        return Need::Public;
    }
    // A client reads the warehouses mapped to it (decisions.md); only the operator writes them.
    if path.starts_with("/api/v1/warehouses") && *method == Method::GET {
        return Need::Read;
    }
    if path.starts_with("/api/v1/clients") || path.starts_with("/api/v1/warehouses") {
        return Need::Operator;
    }
    if *method == Method::GET {
        return Need::Read;
    }
    if path.contains("/cancel") || path.contains("/remarks") || path.ends_with("/allocate") {
        return Need::ActOnOrders;
    }
    if path.starts_with("/api/v1/settings")
        || path.starts_with("/api/v1/pools/")
        || path.starts_with("/api/v1/webhooks")
    {
        return Need::WriteSettings;
    }
    if path.starts_with("/api/v1/uploads") {
        return match kind {
            Some("cancellations") => Need::ActOnOrders,
            Some("inward-orders" | "pool-movements") => Need::MoveStock,
            _ => Need::WriteMasters,
        };
    }
    if path.starts_with("/api/v1/inventory")
        || path.starts_with("/api/v1/pool-movements")
        || path.starts_with("/api/v1/inward-orders")
        || path.starts_with("/api/v1/shipments")
    {
        return Need::MoveStock;
    }
    Need::WriteMasters
}

fn allows(role: &str, need: Need) -> bool {
    match need {
        Need::Public | Need::Read | Need::ActOnOrders => true,
        Need::Operator => false,
        Need::WriteMasters | Need::MoveStock => role != "client_support",
        Need::WriteSettings => role == "client_admin",
    }
}

/// Fills `{param}` from the target's objects; `None` when the harness cannot fill one.
fn fill(template: &str, o: &Objects, kind: Option<&str>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let name = &rest[start + 1..end];
        let value = match name {
            "order_code" if template.starts_with("/api/v1/inward-orders") => o.inward.clone(),
            "order_code" => o.order.clone(),
            "shipment_id" => o.shipment.clone(),
            "client" => o.client.clone(),
            "warehouse" => o.warehouse.clone(),
            "username" => o.username.clone(),
            "kind" => kind.expect("an upload kind").to_owned(),
            "id" if template.contains("/api-keys/") => o.key_id.clone(),
            "id" if template.contains("/remarks/") => o.remark.clone(),
            "id" if template.contains("/deliveries/") => o.delivery.clone(),
            "code" => {
                let section = template.split('/').nth(3).unwrap_or_default();
                match section {
                    "channels" => o.channel.clone(),
                    "skus" => o.sku.clone(),
                    "suppliers" => o.supplier.clone(),
                    "customers" => o.customer.clone(),
                    "pools" => o.pool.clone(),
                    "webhooks" => o.webhook.clone(),
                    "warehouses" => o.warehouse.clone(),
                    other => {
                        return Err(format!("{template}: no value for {{code}} under {other}"));
                    }
                }
            }
            other => return Err(format!("{template}: the matrix cannot fill {{{other}}}")),
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A body naming the target's objects, so the write reaches the tenant check.
fn body(method: &Method, path: &str, o: &Objects) -> Option<Value> {
    if *method == Method::GET || *method == Method::DELETE {
        return None;
    }
    let section = path.split('/').nth(3).unwrap_or_default();
    Some(match (section, path) {
        (_, p) if p.ends_with("/cancel") => json!({"reason": "matrix"}),
        (_, p) if p.contains("/remarks") => json!({"text": "matrix"}),
        (_, p) if p.ends_with("/grn") => json!({"lines": [{"sku": o.sku, "qty": 1}]}),
        (_, p) if p.ends_with("/qc") => json!({"lines": [{"sku": o.sku, "pass": 1}]}),
        (_, p) if p.ends_with("/status") => json!({"status": "PACKED"}),
        ("orders", "/api/v1/orders") => b2c(
            "MX-1",
            &o.channel,
            "MULTI_SHIPMENT_PARTIAL",
            &[(o.sku.as_str(), 1)],
            BLR,
        ),
        ("inward-orders", "/api/v1/inward-orders") => json!({"order_code": "MXIN-1", "type": "PO",
            "warehouse": o.warehouse, "party": o.supplier, "lines": [{"sku": o.sku, "qty": 1}]}),
        (_, "/api/v1/inventory/absolute") => {
            json!({"warehouse": o.warehouse, "items": [{"sku": o.sku, "good": 8}]})
        }
        ("inventory", _) => {
            json!({"warehouse": o.warehouse, "sku": o.sku, "qty": 1, "reason": "matrix"})
        }
        ("pool-movements", _) => json!({"warehouse": o.warehouse, "sku": o.sku, "qty": 1,
            "from_pool": "COMMON", "to_pool": o.pool}),
        ("channels", _) => json!({"name": "x", "type": "MARKETPLACE"}),
        ("skus", _) => json!({"name": "x", "mrp": 999}),
        ("suppliers" | "customers", _) => json!({"name": "x"}),
        ("pools", _) => json!({"name": "x", "channels": [o.channel]}),
        ("webhooks", _) => {
            json!({"url": "http://127.0.0.1:9/x", "secret": "s3cret-s3cret-s3cret", "event_types": []})
        }
        _ => json!({}),
    })
}

/// A CSV for upload `kind` whose cells name the target's objects, from the kind's template.
fn csv_for(kind: &str, template: &str, o: &Objects) -> String {
    let header = template.lines().next().unwrap_or_default().to_owned();
    let row: Vec<String> = header
        .split(',')
        .map(|column| match column.trim() {
            "sku" => o.sku.clone(),
            "warehouse" if kind == "outward-orders" => String::new(),
            "warehouse" => o.warehouse.clone(),
            "order_code" if kind == "cancellations" => o.order.clone(),
            "order_code" => format!("MXUP-{kind}"),
            "code" => "MXUPCODE".into(),
            "channel" => o.channel.clone(),
            "party" => o.supplier.clone(),
            "type" => "PO".into(),
            "kind" => "B2C".into(),
            "fulfilment_type" => "MULTI_SHIPMENT_PARTIAL".into(),
            "from_pool" => "COMMON".into(),
            "to_pool" => o.pool.clone(),
            "reason" | "name" | "ship_to.name" | "ship_to.address" => "matrix".into(),
            "ship_to.pincode" => "560001".into(),
            "ship_to.phone" => "+91 98450 12345".into(),
            "line_id" | "qty" | "mrp" => "1".into(),
            _ => String::new(),
        })
        .collect();
    format!("{header}\n{}\n", row.join(","))
}

struct Answer {
    status: StatusCode,
    body: Value,
    text: String,
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    caller: &Caller,
    body: Option<Value>,
    csv: Option<String>,
) -> Answer {
    let mut request = app.http.request(method, format!("{}{path}", app.base));
    if let Some(token) = &caller.token {
        request = request.bearer_auth(token);
    }
    if let Some(client) = &caller.x_client {
        request = request.header("X-Client", client);
    }
    if let Some(csv) = csv {
        request = request.header("Content-Type", "text/csv").body(csv);
    } else if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, body, text }
}

fn error_code(answer: &Answer) -> String {
    answer.body["error"]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// B's orders, inventory, ledger and events as B's admin sees them.
async fn snapshot(app: &TestApp, b: &ClientKeys) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/api/v1/orders?limit=500",
        "/api/v1/inventory?limit=500",
        "/api/v1/inventory/ledger?limit=500",
        "/api/v1/events?limit=500",
        "/api/v1/inward-orders?limit=500",
        "/api/v1/skus?limit=500",
    ] {
        let (status, body) = app.get(path, &b.admin).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        all.push(body);
    }
    all
}

async fn every_route_refuses_other_tenants_and_missing_permissions(app: &TestApp) {
    let (a_keys, a) = tenant(app, "alpha", "ZA").await;
    let (b_keys, b) = tenant(app, "beta", "ZB").await;
    let missing = Objects::missing();
    let revoked = app.client("gamma").await;
    let (_, keys) = app.get("/api/v1/clients/gamma/api-keys", ADMIN_TOKEN).await;
    for key in keys.as_array().expect("keys") {
        let id = key["id"].as_i64().expect("id");
        let (status, _) = app
            .delete(&format!("/api/v1/clients/gamma/api-keys/{id}"), ADMIN_TOKEN)
            .await;
        assert!(status.is_success());
    }

    panel_checks(app, &a, &b).await;

    let c = |name, token: Option<&str>, x: Option<&str>, tenant, role, unauth| Caller {
        name,
        token: token.map(str::to_owned),
        x_client: x.map(str::to_owned),
        tenant,
        role,
        unauthenticated: unauth,
    };
    // B's own callers run first: what they write in B is theirs. The snapshot is taken after.
    let b_callers = vec![
        c(
            "B client_admin",
            Some(&b_keys.admin),
            None,
            Some('B'),
            Some("client_admin"),
            false,
        ),
        c(
            "B client_support",
            Some(&b_keys.support),
            None,
            Some('B'),
            Some("client_support"),
            false,
        ),
        c(
            "B integration",
            Some(&b_keys.integration),
            None,
            Some('B'),
            Some("integration"),
            false,
        ),
    ];
    let other_callers = vec![
        c("operator", Some(ADMIN_TOKEN), None, None, None, false),
        c(
            "operator X-Client A",
            Some(ADMIN_TOKEN),
            Some("alpha"),
            Some('A'),
            None,
            false,
        ),
        c(
            "A client_admin",
            Some(&a_keys.admin),
            None,
            Some('A'),
            Some("client_admin"),
            false,
        ),
        c(
            "A client_support",
            Some(&a_keys.support),
            None,
            Some('A'),
            Some("client_support"),
            false,
        ),
        c(
            "A integration",
            Some(&a_keys.integration),
            None,
            Some('A'),
            Some("integration"),
            false,
        ),
        c("no token", None, None, None, None, true),
        c(
            "malformed token",
            Some("oms_not a key"),
            None,
            None,
            None,
            true,
        ),
        c("revoked key", Some(&revoked.admin), None, None, None, true),
    ];

    let mut routes: Vec<(Method, String, Option<&str>)> = Vec::new();
    for (method, path, _) in api_routes() {
        if path.contains("{kind}") {
            for kind in UPLOAD_KINDS {
                routes.push((method.clone(), path.clone(), Some(kind)));
            }
        } else {
            routes.push((method.clone(), path.clone(), None));
        }
        fill(&path, &a, Some("skus")).unwrap_or_else(|e| panic!("uncovered route: {e}"));
    }
    let route_templates: std::collections::BTreeSet<_> = routes
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    assert!(
        route_templates.len() >= 60,
        "the OpenAPI document lists only {} routes",
        route_templates.len()
    );
    // Codes are per client: a PUT or a master upload naming the other client's code makes
    // the caller an object of its own under that code. Those routes run last in each round,
    // so every body or file naming a foreign or missing code is tried while the caller
    // really has no such object.
    routes.sort_by_key(|(method, _, kind)| {
        *method == Method::PUT || matches!(kind, Some("skus" | "suppliers" | "customers"))
    });

    // MATRIX_TRACE=1 prints every request and its answer.
    let trace = std::env::var_os("MATRIX_TRACE").is_some();
    let mut requests = 0usize;
    let mut cross_tenant = Vec::<String>::new();
    let mut server_errors = Vec::<String>::new();
    let mut violations = Vec::<String>::new();
    let mut before = None;
    for (round, callers) in [b_callers, other_callers].iter().enumerate() {
        if round == 1 {
            before = Some(snapshot(app, &b_keys).await);
        }
        for (method, template, kind) in &routes {
            let required = need(method, template, *kind);
            // Warehouses belong to the operator, who sees them all whatever `X-Client` says.
            let operator_owned = template.starts_with("/api/v1/warehouses");
            let has_params = template.contains('{')
                && !(template.contains("{kind}") && template.matches('{').count() == 1);
            for caller in callers {
                let tenant = if operator_owned && caller.role.is_none() {
                    None
                } else {
                    caller.tenant
                };
                let (own, foreign) = match caller.tenant {
                    Some('B') => (&b, &a),
                    _ => (&a, &b),
                };
                // Targets: own, the other client's, missing (one target for parameterless routes,
                // except uploads whose files name the target's objects).
                let targets: Vec<(&str, &Objects)> = if has_params
                    || (kind.is_some() && *method == Method::POST)
                    || body(method, template, own) != body(method, template, &missing)
                {
                    vec![("own", own), ("foreign", foreign), ("missing", &missing)]
                } else {
                    vec![("own", own)]
                };
                let mut answers = BTreeMap::new();
                for (label, target) in targets {
                    let path = fill(template, target, *kind).expect("filled");
                    let csv = match (kind, method) {
                        (Some(k), &Method::POST) => {
                            let (_, _, bytes) = app
                                .get_bytes(&format!("/api/v1/uploads/{k}"), &a_keys.admin)
                                .await;
                            Some(csv_for(k, &String::from_utf8_lossy(&bytes), target))
                        }
                        _ => None,
                    };
                    let answer = send(
                        app,
                        method.clone(),
                        &path,
                        caller,
                        body(method, template, target),
                        csv,
                    )
                    .await;
                    requests += 1;
                    let what = format!("{method} {path} by {} ({label})", caller.name);
                    if trace {
                        eprintln!(
                            "{what}: {} {}",
                            answer.status,
                            answer.text.chars().take(160).collect::<String>()
                        );
                    }
                    if answer.status.is_server_error() {
                        server_errors.push(format!("{what}: {} {}", answer.status, answer.text));
                    }
                    if caller.unauthenticated
                        && required != Need::Public
                        && (answer.status != StatusCode::UNAUTHORIZED
                            || error_code(&answer) != "unauthorized"
                            || !answer.body["error"]["message"].is_string())
                    {
                        violations.push(format!(
                            "{what}: expected 401 unauthorized, got {} {}",
                            answer.status, answer.text
                        ));
                    }
                    if let Some(role) = caller.role {
                        if required == Need::Operator && answer.status != StatusCode::FORBIDDEN {
                            violations.push(format!(
                                "{what}: operator-only route answered {} {}",
                                answer.status, answer.text
                            ));
                        }
                        if required != Need::Operator
                            && !allows(role, required)
                            && answer.status != StatusCode::FORBIDDEN
                        {
                            violations.push(format!(
                                "{what}: needs {required:?}, expected 403, got {} {}",
                                answer.status, answer.text
                            ));
                        }
                        if role == "client_support"
                            && *method != Method::GET
                            && answer.status.is_success()
                            && required != Need::ActOnOrders
                        {
                            violations.push(format!(
                                "{what}: support succeeded on a write: {}",
                                answer.status
                            ));
                        }
                    }
                    if tenant == Some('A')
                        && required != Need::Operator
                        && !has_params
                        && *method == Method::GET
                        && answer.status.is_success()
                        && answer.text.contains("ZB")
                    {
                        cross_tenant.push(format!(
                            "{what}: B's codes appear in A's answer: {}",
                            answer.text
                        ));
                    }
                    if tenant == Some('B')
                        && required != Need::Operator
                        && !has_params
                        && *method == Method::GET
                        && answer.status.is_success()
                        && answer.text.contains("ZA")
                    {
                        cross_tenant.push(format!(
                            "{what}: A's codes appear in B's answer: {}",
                            answer.text
                        ));
                    }
                    // A file or body naming another client's (or no) object must be refused.
                    if label != "own"
                        && *method != Method::GET
                        && answer.status.is_success()
                        && tenant.is_some()
                        && required != Need::Operator
                        && !has_params
                        && !matches!(kind, Some("skus" | "suppliers" | "customers"))
                    {
                        let finding = format!(
                            "{what}: accepted a body naming the {label} object: {} {}",
                            answer.status, answer.text
                        );
                        cross_tenant.push(finding);
                    }
                    answers.insert(label, answer);
                }
                if tenant.is_some()
                    && required != Need::Operator
                    && let (Some(f), Some(m)) = (answers.get("foreign"), answers.get("missing"))
                    && (f.status != m.status || error_code(f) != error_code(m))
                {
                    cross_tenant.push(format!(
                        "{method} {template} [{kind:?}] by {}: the other client's object answered {} {} but a missing one {} {}",
                        caller.name, f.status, f.text, m.status, m.text));
                }
            }
        }
    }
    if trace {
        let (_, found) = app.get("/api/v1/orders?q=MXUP", &a_keys.admin).await;
        eprintln!("MXUP orders of A: {found}");
    }
    let after = snapshot(app, &b_keys).await;
    assert_eq!(
        before.expect("snapshot"),
        after,
        "client B's data changed under other callers"
    );

    let callers = 11;
    eprintln!(
        "matrix: {} routes ({} with upload kinds) × {callers} callers × up to 3 targets = {requests} requests, {} cross-tenant successes, {} 5xx, {} role/auth violations",
        route_templates.len(),
        routes.len(),
        cross_tenant.len(),
        server_errors.len(),
        violations.len(),
    );
    for line in cross_tenant.iter().chain(&server_errors).chain(&violations) {
        eprintln!("  {line}");
    }
    assert!(requests >= 1500, "the matrix shrank to {requests} requests");
    assert!(
        server_errors.is_empty(),
        "5xx answers:\n{}",
        server_errors.join("\n")
    );
    assert!(
        cross_tenant.is_empty(),
        "cross-tenant answers:\n{}",
        cross_tenant.join("\n")
    );
    assert!(
        violations.is_empty(),
        "role and auth violations:\n{}",
        violations.join("\n")
    );
}

/// The panel: no session → /login; another client's order, PDFs, remark and cancel answer
/// like a missing one; support cannot reach settings.
async fn panel_checks(app: &TestApp, a: &Objects, b: &Objects) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/uploads"),
        (Method::GET, "/exports/orders.csv"),
        (Method::GET, "/orders/ZAORD1"),
        (Method::GET, "/orders/ZAORD1/invoice.pdf"),
        (Method::GET, "/orders/ZAORD1/shipping-label.pdf"),
        (Method::GET, "/inventory"),
        (Method::GET, "/settings"),
        (Method::GET, "/uploads/skus.csv"),
    ] {
        let response = http
            .request(method, format!("{}{path}", app.base))
            .send()
            .await
            .expect("request");
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            response.status().is_redirection() && location.starts_with("/login"),
            "{path} without a session: {} {location}",
            response.status()
        );
    }
    let support = Panel::login(app, &a.client, &a.username).await;
    let settings = support.get("/settings").await;
    assert_eq!(
        settings.status,
        StatusCode::FORBIDDEN,
        "support at /settings"
    );
    for suffix in ["", "/invoice.pdf", "/shipping-label.pdf"] {
        let foreign = support.get(&format!("/orders/{}{suffix}", b.order)).await;
        let missing = support.get(&format!("/orders/NOSUCHORDER{suffix}")).await;
        assert_eq!(foreign.status, missing.status, "panel /orders/…{suffix}");
        assert!(
            !foreign.status.is_success(),
            "panel /orders/{}{suffix}",
            b.order
        );
    }
    for (suffix, form) in [
        ("/remarks", vec![("text", "x")]),
        ("/cancel", vec![("reason", "x"), ("confirm", "yes")]),
    ] {
        let foreign = support
            .post(&format!("/orders/{}{suffix}", b.order), &form)
            .await;
        let missing = support
            .post(&format!("/orders/NOSUCHORDER{suffix}"), &form)
            .await;
        assert_eq!(
            foreign.status, missing.status,
            "panel POST /orders/…{suffix}"
        );
        assert!(
            !foreign.status.is_success() && !foreign.status.is_redirection(),
            "panel POST …{suffix}: {}",
            foreign.status
        );
    }
    let foreign = support
        .post(
            &format!("/orders/{}/remarks/{}", b.order, b.remark),
            &[("text", "x")],
        )
        .await;
    let missing = support
        .post(
            &format!("/orders/NOSUCHORDER/remarks/{}", b.remark),
            &[("text", "x")],
        )
        .await;
    assert_eq!(foreign.status, missing.status, "panel remark edit");
}
