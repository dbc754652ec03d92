//! `oms demo`: a small, realistic data set so a newcomer sees a working panel — one brand,
//! three warehouses, two marketplaces, 200 SKUs, and 300 orders in every state. Everything
//! goes through the HTTP API in-process (the same routes, services and checks as any
//! integration), so the data is consistent and `oms check` passes.

use anyhow::{Context, bail};
use axum::body::Body;
use axum::http::{Method, Request};
use clap::Args;
use oms_app::{AppState, Limits};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::DatabaseArgs;

pub const CLIENT: &str = "acme";
pub const DEMO_PASSWORD: &str = "acme-demo-2026";
const ORDERS: usize = 300;

#[derive(Args)]
pub struct DemoArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Serve the OMS (and its panel) once the data is loaded.
    #[arg(long)]
    serve: bool,
    /// Address to serve on with --serve.
    #[arg(long, env = "OMS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
}

/// The API in-process, called as the operator or as the client.
struct Api {
    router: axum::Router,
    operator: String,
    key: String,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Body,
        kind: &str,
    ) -> anyhow::Result<Value> {
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", kind)
            .body(body)
            .context("building a request")?;
        let response = self.router.clone().oneshot(request).await?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {value}");
        }
        Ok(value)
    }

    async fn json(&self, method: Method, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(
            method,
            path,
            &self.key,
            Body::from(body.to_string()),
            "application/json",
        )
        .await
    }

    async fn operator(&self, method: Method, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(
            method,
            path,
            &self.operator,
            Body::from(body.to_string()),
            "application/json",
        )
        .await
    }

    async fn csv(&self, kind: &str, text: String) -> anyhow::Result<Value> {
        self.call(
            Method::POST,
            &format!("/api/v1/uploads/{kind}"),
            &self.key,
            Body::from(text),
            "text/csv",
        )
        .await
    }
}

/// A fixed-seed xorshift: the same demo every time.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const WAREHOUSES: [(&str, &str, &str, f64, f64, i64); 3] = [
    (
        "BLR1",
        "Bengaluru Fulfilment Centre",
        "560058",
        13.03,
        77.51,
        10,
    ),
    (
        "DEL1",
        "Delhi NCR Fulfilment Centre",
        "122001",
        28.46,
        77.03,
        5,
    ),
    (
        "BOM1",
        "Mumbai Fulfilment Centre",
        "421302",
        19.29,
        73.06,
        5,
    ),
];
const PRODUCTS: [(&str, &str, i64); 10] = [
    ("TEE", "Crew Tee", 799),
    ("POLO", "Pique Polo", 1299),
    ("JEANS", "Slim Jeans", 2499),
    ("HOOD", "Fleece Hoodie", 1999),
    ("KURTA", "Cotton Kurta", 1499),
    ("SHORTS", "Chino Shorts", 999),
    ("DRESS", "Wrap Dress", 2199),
    ("JACKET", "Denim Jacket", 3499),
    ("SHIRT", "Oxford Shirt", 1799),
    ("TRACK", "Track Pants", 1199),
];
const COLOURS: [&str; 5] = ["Red", "Blue", "Black", "White", "Green"];
const SIZES: [&str; 4] = ["S", "M", "L", "XL"];
const NAMES: [&str; 16] = [
    "Asha Rao",
    "Rohan Mehta",
    "Priya Sharma",
    "Vikram Singh",
    "Ananya Iyer",
    "Kabir Khan",
    "Meera Nair",
    "Arjun Reddy",
    "Isha Patel",
    "Dev Malhotra",
    "Sneha Kulkarni",
    "Rahul Verma",
    "Nisha Gupta",
    "Aditya Joshi",
    "Pooja Das",
    "Farhan Ali",
];
const CITIES: [(&str, &str, f64, f64); 5] = [
    ("Bengaluru", "560001", 12.97, 77.59),
    ("New Delhi", "110001", 28.61, 77.21),
    ("Mumbai", "400001", 18.94, 72.84),
    ("Pune", "411001", 18.52, 73.86),
    ("Hyderabad", "500001", 17.39, 78.49),
];

fn sku_codes() -> Vec<(String, String, i64, &'static str, &'static str)> {
    let mut skus = Vec::new();
    for (code, name, mrp) in PRODUCTS {
        for colour in COLOURS {
            for size in SIZES {
                skus.push((
                    format!("{code}-{}-{size}", colour.to_uppercase()),
                    format!("{colour} {name} {size}"),
                    mrp,
                    colour,
                    size,
                ));
            }
        }
    }
    skus
}

async fn masters(api: &Api) -> anyhow::Result<()> {
    for (code, name, pincode, lat, lon, priority) in WAREHOUSES {
        api.operator(
            Method::PUT,
            &format!("/api/v1/warehouses/{code}"),
            json!({"name": name, "type": "WAREHOUSE", "pincode": pincode, "lat": lat, "lon": lon, "priority": priority}),
        )
        .await?;
        api.operator(
            Method::PUT,
            &format!("/api/v1/clients/{CLIENT}/warehouses/{code}"),
            json!({}),
        )
        .await?;
    }
    api.json(
        Method::PUT,
        "/api/v1/settings",
        json!({
            "sku_attributes": [
                {"name": "colour", "type": "ENUM", "values": COLOURS, "displayed": true},
                {"name": "size", "type": "ENUM", "values": SIZES, "displayed": true}],
            "routing": {"strategy": "MINIMIZE_DISTANCE", "max_splits": 2},
            "invoicing": {"legal_name": "Acme Apparel Pvt Ltd", "address": "4 Residency Road, Bengaluru",
                          "pincode": "560025", "gstin": "29ABCDE1234F1Z5"}
        }),
    )
    .await?;
    for (code, name) in [("MYNTRA", "Myntra"), ("AJIO", "Ajio")] {
        api.json(
            Method::PUT,
            &format!("/api/v1/channels/{code}"),
            json!({"name": name, "type": "MARKETPLACE"}),
        )
        .await?;
    }
    api.json(
        Method::PUT,
        "/api/v1/suppliers/TIRUPUR-KNITS",
        json!({"name": "Tirupur Knits", "pincode": "641601", "gstin": "33ABCDE1234F1Z5"}),
    )
    .await?;
    let mut csv = String::from("code,name,mrp,tax_rate,hsn,attr.colour,attr.size\n");
    for (code, name, mrp, colour, size) in sku_codes() {
        csv.push_str(&format!("{code},{name},{mrp},12,6109,{colour},{size}\n"));
    }
    api.csv("skus", csv).await?;
    Ok(())
}

/// Receives stock at every warehouse: most SKUs some units, one in ten none (their orders
/// wait for stock).
async fn stock(api: &Api, dice: &mut Dice) -> anyhow::Result<()> {
    let skus = sku_codes();
    for (warehouse, ..) in WAREHOUSES {
        let code = format!("PO-{warehouse}-1");
        let lines: Vec<Value> = skus
            .iter()
            .enumerate()
            .filter(|(index, _)| index % 10 != 7)
            .map(|(_, (sku, ..))| json!({"sku": sku, "qty": 2 + dice.below(6)}))
            .collect();
        api.json(
            Method::POST,
            "/api/v1/inward-orders",
            json!({"order_code": code, "type": "PO", "warehouse": warehouse, "party": "TIRUPUR-KNITS", "lines": lines}),
        )
        .await?;
        api.json(
            Method::POST,
            &format!("/api/v1/inward-orders/{code}/grn"),
            json!({"lines": lines}),
        )
        .await?;
        let qc: Vec<Value> = lines
            .iter()
            .map(|l| match l["qty"].as_u64().unwrap_or(0) {
                // Now and then a unit fails QC.
                qty if qty > 5 => {
                    json!({"sku": l["sku"], "pass": qty - 1, "fail": 1, "fail_reason": "DAMAGED"})
                }
                qty => json!({"sku": l["sku"], "pass": qty}),
            })
            .collect();
        api.json(
            Method::POST,
            &format!("/api/v1/inward-orders/{code}/qc"),
            json!({"lines": qc}),
        )
        .await?;
    }
    Ok(())
}

/// What the demo does to an order after it is taken in.
#[derive(Clone, Copy)]
enum Fate {
    Released,
    Picked,
    Packed,
    Shipped,
    Delivered,
    Cancelled,
}

const FATES: [Fate; 10] = [
    Fate::Released,
    Fate::Released,
    Fate::Picked,
    Fate::Packed,
    Fate::Shipped,
    Fate::Shipped,
    Fate::Delivered,
    Fate::Delivered,
    Fate::Delivered,
    Fate::Cancelled,
];

async fn advance(api: &Api, order: &Value, fate: Fate, number: usize) -> anyhow::Result<()> {
    if let Fate::Cancelled = fate {
        let code = order["order_code"].as_str().unwrap_or_default();
        let channel = order["channel"].as_str().unwrap_or_default();
        api.json(
            Method::POST,
            &format!("/api/v1/orders/{code}/cancel?channel={channel}"),
            json!({"reason": "customer cancelled before dispatch"}),
        )
        .await?;
        return Ok(());
    }
    let steps: &[&str] = match fate {
        Fate::Released | Fate::Cancelled => &[],
        Fate::Picked => &["PICKED"],
        Fate::Packed => &["PICKED", "PACKED"],
        Fate::Shipped => &["PICKED", "PACKED", "SHIPPED"],
        Fate::Delivered => &["PICKED", "PACKED", "SHIPPED", "DELIVERED"],
    };
    let shipments: Vec<i64> = order["shipments"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["shipment_id"].as_i64()).collect())
        .unwrap_or_default();
    for shipment in shipments {
        for step in steps {
            let body = match *step {
                "PACKED" | "SHIPPED" => {
                    json!({"status": step, "awb": format!("DLV{:09}", 100_000 + number * 10 + usize::try_from(shipment % 10).unwrap_or(0)), "carrier": "Delhivery"})
                }
                _ => json!({"status": step}),
            };
            api.json(
                Method::POST,
                &format!("/api/v1/shipments/{shipment}/status"),
                body,
            )
            .await?;
        }
    }
    Ok(())
}

async fn orders(api: &Api, dice: &mut Dice) -> anyhow::Result<usize> {
    let skus = sku_codes();
    let now = oms_app::clock::now_micros();
    const HOUR_MICROS: i64 = 3_600 * 1_000_000;
    for number in 0..ORDERS {
        let channel = if number % 3 == 0 { "AJIO" } else { "MYNTRA" };
        let prefix = if channel == "AJIO" { "AJ" } else { "MYN" };
        let (city, pincode, lat, lon) = *dice.pick(&CITIES);
        let name = *dice.pick(&NAMES);
        let lines: Vec<Value> = (0..1 + dice.below(3))
            .map(|line| {
                let (sku, _, mrp, ..) = dice.pick(&skus);
                json!({"line_id": format!("{}", line + 1), "sku": sku, "qty": 1 + dice.below(2),
                       // 20% off the MRP, in rupees with paise.
                       "price": (*mrp * 80) as f64 / 100.0})
            })
            .collect();
        // SLAs from two days ago (some overdue) to three days ahead.
        let hours = i64::try_from(dice.below(120)).unwrap_or(0) - 48;
        let dispatch_by = oms_app::clock::rfc3339(now + hours * HOUR_MICROS);
        let phone = format!("+91 98{:03} {:05}", 100 + dice.below(900), 10_000 + number);
        let email = format!(
            "{}.{number}@example.in",
            name.split(' ').next().unwrap_or("customer").to_lowercase()
        );
        let order = api
            .json(
                Method::POST,
                "/api/v1/orders",
                json!({
                    "order_code": format!("{prefix}-{}", 10_001 + number),
                    "kind": "B2C", "channel": channel, "fulfilment_type": "MULTI_SHIPMENT_PARTIAL",
                    "dispatch_by": dispatch_by,
                    "ship_to": {"name": name, "address": format!("{} Main Road, {city}", 1 + dice.below(200)),
                                "pincode": pincode, "phone": phone, "email": email, "lat": lat, "lon": lon},
                    "lines": lines,
                }),
            )
            .await?;
        let fully_released = order["status"] == "RELEASED";
        if fully_released {
            advance(api, &order, *dice.pick(&FATES), number).await?;
        }
    }
    Ok(ORDERS)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let store = crate::open(&args.database).await?;
    if oms_store::clients::find_by_code(store.pool(), CLIENT)
        .await?
        .is_some()
    {
        bail!(
            "client {CLIENT} exists in {} already: the demo loads into a fresh database",
            crate::redacted(&args.database.database_url)
        );
    }
    let operator = oms_app::auth::new_token().map_err(|e| anyhow::anyhow!("{e}"))?;
    let state = AppState::new(store.clone(), Some(&operator), Limits::default());
    let mut api = Api {
        router: oms_app::api::router(state),
        operator,
        key: String::new(),
    };
    println!(
        "loading the demo into {} …",
        crate::redacted(&args.database.database_url)
    );
    api.operator(
        Method::POST,
        "/api/v1/clients",
        json!({"code": CLIENT, "name": "Acme Apparel"}),
    )
    .await?;
    let key = api
        .operator(
            Method::POST,
            &format!("/api/v1/clients/{CLIENT}/api-keys"),
            json!({"role": "client_admin", "name": "demo loader"}),
        )
        .await?;
    api.key = key["token"].as_str().context("a key")?.to_owned();
    let mut dice = Dice(0x005e_ed0f_0a5e);
    masters(&api).await?;
    stock(&api, &mut dice).await?;
    let orders = orders(&api, &mut dice).await?;
    for (username, role) in [("support", "client_support"), ("admin", "client_admin")] {
        api.operator(
            Method::POST,
            &format!("/api/v1/clients/{CLIENT}/panel-users"),
            json!({"username": username, "password": DEMO_PASSWORD, "role": role}),
        )
        .await?;
    }
    // Revoke the loader's key: the demo leaves only the panel users behind.
    let keys = api
        .operator(
            Method::GET,
            &format!("/api/v1/clients/{CLIENT}/api-keys"),
            json!({}),
        )
        .await?;
    for id in keys
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["id"].as_i64())
    {
        let path = format!("/api/v1/clients/{CLIENT}/api-keys/{id}");
        api.call(
            Method::DELETE,
            &path,
            &api.operator,
            Body::empty(),
            "application/json",
        )
        .await?;
    }
    drop(api);
    let url = crate::redacted(&args.database.database_url);
    println!(
        "loaded: 1 client ({CLIENT}), 3 warehouses, 2 marketplaces, {} SKUs, {orders} orders",
        sku_codes().len()
    );
    let login = format!("client {CLIENT}, username support (or admin), password {DEMO_PASSWORD}");
    if !args.serve {
        store.close().await;
        println!(
            "panel:  http://{}/ once `oms serve --database-url {url}` runs\nlogin:  {login}",
            args.listen
        );
        return Ok(());
    }
    // Serve on the store already open: on SQLite it holds the file's process lock.
    crate::init_logs(crate::LogFormat::Text);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    let operator = oms_app::auth::new_token().map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("panel:  http://{address}/ (serving {url} now; Ctrl-C stops)\nlogin:  {login}");
    println!("operator token for this run: {operator}");
    let state = AppState::new(store.clone(), Some(&operator), Limits::default());
    oms_app::serve(listener, state, crate::shutdown_signal()).await?;
    store.close().await;
    Ok(())
}
