//! Group commit: orders arriving together share a transaction, and each still gets its own
//! answer — a bad order fails alone, duplicates resolve to one order, stock is never
//! promised twice.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, inventory, join_all};
use crate::on_both_backends;
use crate::orders::{BLR, b2c, shop, stock};

on_both_backends!(orders_arriving_together_each_get_their_own_answer);

async fn orders_arriving_together_each_get_their_own_answer(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 10).await;
    // A stored order that a later body contradicts.
    let (status, _) = app
        .post(
            "/api/v1/orders",
            &acme.integration,
            b2c("MYN-OLD", "MYNTRA", "BLOCK_COMPLETE", &[("JEANS", 1)], BLR),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut bodies: Vec<(String, Value)> = (0..30)
        .map(|i| {
            let code = format!("MYN-{i}");
            (
                code.clone(),
                b2c(&code, "MYNTRA", "BLOCK_COMPLETE", &[("TEE", 1)], BLR),
            )
        })
        .collect();
    // Bad ones among them: a SKU the client lacks, a contradicting body, and the same new
    // order twice.
    bodies.push((
        "MYN-BAD".into(),
        b2c("MYN-BAD", "MYNTRA", "BLOCK_COMPLETE", &[("NOPE", 1)], BLR),
    ));
    bodies.push((
        "MYN-OLD".into(),
        b2c("MYN-OLD", "MYNTRA", "BLOCK_COMPLETE", &[("TEE", 2)], BLR),
    ));
    bodies.push((
        "MYN-0".into(),
        b2c("MYN-0", "MYNTRA", "BLOCK_COMPLETE", &[("TEE", 1)], BLR),
    ));
    let answers = join_all(
        bodies
            .iter()
            .map(|(_, body)| app.post("/api/v1/orders", &acme.integration, body.clone()))
            .collect(),
    )
    .await;
    let mut created = 0;
    let mut repeated = 0;
    for ((code, _), (status, body)) in bodies.iter().zip(&answers) {
        match code.as_str() {
            "MYN-BAD" => assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}"),
            "MYN-OLD" => assert_eq!(*status, StatusCode::CONFLICT, "{body}"),
            _ => {
                assert_eq!(body["order_code"], code.as_str(), "{body}");
                match *status {
                    StatusCode::CREATED => created += 1,
                    StatusCode::OK => repeated += 1,
                    other => panic!("{code}: {other} {body}"),
                }
            }
        }
    }
    assert_eq!((created, repeated), (30, 1), "MYN-0 twice is one order");
    // Ten units, thirty one-unit orders: exactly ten allocated, twenty waiting.
    let (_, page) = app
        .get("/api/v1/orders?status=RELEASED&limit=100", &acme.support)
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(10), "{page}");
    let (_, page) = app
        .get(
            "/api/v1/orders?status=UNFULFILLABLE&limit=100",
            &acme.support,
        )
        .await;
    // MYN-OLD (JEANS, never stocked) waits too.
    let waiting = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|o| o["order_code"] != "MYN-OLD")
        .count();
    let tee = inventory(app, &acme.integration, "TEE", "BLR1").await;
    assert_eq!(
        (tee["allocated"].clone(), tee["available"].clone()),
        (json!(10), json!(0))
    );
    assert_eq!(waiting, 20, "{page}");
    let (status, _) = app.get("/api/v1/orders/MYN-BAD", &acme.support).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused order leaves nothing behind"
    );
}

on_both_backends!(a_new_orders_answer_is_the_order_as_stored);

/// New orders are answered from what their batch wrote, not read back: every answer must
/// be exactly what reading the order answers — split, partly allocated, closed short,
/// waiting, fixed to a warehouse, sent twice.
async fn a_new_orders_answer_is_the_order_as_stored(app: &TestApp) {
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 3).await;
    stock(app, &acme, "DEL1", "TEE", 2).await;
    stock(app, &acme, "DEL1", "JEANS", 4).await;
    let mut bodies: Vec<Value> = Vec::new();
    for i in 0..6 {
        // Two SKUs from two warehouses: split shipments while stock lasts.
        bodies.push(b2c(
            &format!("MIX-{i}"),
            "MYNTRA",
            "MULTI_SHIPMENT_PARTIAL",
            &[("TEE", 1), ("JEANS", 1)],
            BLR,
        ));
    }
    let mut fixed = b2c("FIX-1", "AJIO", "BLOCK_COMPLETE", &[("JEANS", 1)], BLR);
    fixed["warehouse"] = json!("DEL1");
    bodies.push(fixed);
    bodies.push(b2c("BIG-1", "AJIO", "BLOCK_COMPLETE", &[("TEE", 50)], BLR));
    // Takes what is left and closes the rest short.
    bodies.push(b2c(
        "ONE-1",
        "AJIO",
        "SINGLE_SHIPMENT_PARTIAL",
        &[("JEANS", 9)],
        BLR,
    ));
    bodies.push(b2c(
        "MIX-0",
        "MYNTRA",
        "MULTI_SHIPMENT_PARTIAL",
        &[("TEE", 1), ("JEANS", 1)],
        BLR,
    ));
    let answers = join_all(
        bodies
            .iter()
            .map(|body| app.post("/api/v1/orders", &acme.integration, body.clone()))
            .collect(),
    )
    .await;
    let mut allocated = 0;
    for (body, (status, answer)) in bodies.iter().zip(&answers) {
        assert!(
            *status == StatusCode::CREATED || *status == StatusCode::OK,
            "{status} {answer}"
        );
        let code = body["order_code"].as_str().expect("code");
        let (status, stored) = app
            .get(&format!("/api/v1/orders/{code}"), &acme.support)
            .await;
        assert_eq!(status, StatusCode::OK, "{stored}");
        assert_eq!(
            *answer, stored,
            "{code}: the answer differs from the stored order"
        );
        allocated += stored["shipments"].as_array().map_or(0, Vec::len);
    }
    assert!(allocated > 0, "some orders were allocated: {answers:?}");
}

on_both_backends!(lines_drawn_twice_before_being_written_do_not_collide);

/// A transaction may stage orders twice (the intake stages each client's orders, then
/// allocates each): the second draw of order and line ids must not hand out the first
/// draw's ids, which are not written yet.
async fn lines_drawn_twice_before_being_written_do_not_collide(app: &TestApp) {
    use oms_app::fields::Fields;
    use oms_app::service::{allocate, orders};
    let acme = shop(app).await;
    stock(app, &acme, "BLR1", "TEE", 1).await;
    let client = oms_store::clients::find_by_code(app.store.pool(), "acme")
        .await
        .expect("read")
        .expect("acme")
        .id;
    let validated: Vec<_> = ["DRAW-1", "DRAW-2"]
        .iter()
        .map(|code| {
            let body = b2c(
                code,
                "MYNTRA",
                "BLOCK_COMPLETE",
                &[("TEE", 1), ("JEANS", 2)],
                BLR,
            );
            orders::validate(&Fields::from_json(&body).expect("fields")).expect("valid")
        })
        .collect();
    let mut tx = app.store.begin_write().await.expect("begin");
    let mut staged = Vec::new();
    for (order, hash) in &validated {
        for answer in orders::stage_many(tx.conn(), client, &[(order, hash.as_str())], 1)
            .await
            .expect("stage")
        {
            match answer {
                Ok(orders::Ingested::Created(view)) => staged.push(*view),
                _ => panic!("a new order was not created"),
            }
        }
    }
    let mut ids: Vec<i64> = staged
        .iter()
        .flat_map(|v| v.lines.iter().map(|l| l.id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "four lines, four ids: {ids:?}");
    assert_ne!(
        staged[0].order.id, staged[1].order.id,
        "two orders, two ids"
    );
    allocate::run_created(tx.conn(), client, &mut staged, true, "test", 1)
        .await
        .expect("allocate");
    tx.commit().await.expect("commit");
    // One unit of TEE: the first order waits for JEANS (none), so neither takes it whole;
    // both are stored with all their lines.
    for code in ["DRAW-1", "DRAW-2"] {
        let (status, order) = app
            .get(&format!("/api/v1/orders/{code}"), &acme.support)
            .await;
        assert_eq!(status, StatusCode::OK, "{order}");
        assert_eq!(order["lines"].as_array().map(Vec::len), Some(2), "{order}");
    }
}
