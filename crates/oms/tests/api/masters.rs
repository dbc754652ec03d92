//! Warehouses and their mapping, channels, SKUs, suppliers and customers.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, TestApp, assert_error};
use crate::on_both_backends;

on_both_backends!(
    warehouses_are_created_updated_and_seen_by_mapped_clients_only,
    skus_are_created_updated_and_searched_page_by_page,
    sku_attributes_follow_the_clients_configuration,
    suppliers_customers_and_channels_round_trip,
    bad_input_is_refused_with_the_error_shape_and_changes_nothing,
);

async fn warehouses_are_created_updated_and_seen_by_mapped_clients_only(app: &TestApp) {
    let acme = app.client("acme").await;
    let globex = app.client("globex").await;
    let body = json!({"name": "Bengaluru 1", "type": "WAREHOUSE", "pincode": "560001",
                      "lat": 12.97, "lon": 77.59, "priority": 5, "address": "Peenya"});
    let (status, created) = app.put("/api/v1/warehouses/BLR1", ADMIN_TOKEN, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["type"], "WAREHOUSE");
    assert_eq!(created["lat"], 12.97);
    let (status, updated) = app
        .put(
            "/api/v1/warehouses/BLR1",
            ADMIN_TOKEN,
            json!({"name": "Bengaluru One", "type": "STORE", "pincode": "560002"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "Bengaluru One");
    assert_eq!(updated["priority"], 0);
    assert_eq!(updated["lat"], json!(null));
    app.put(
        "/api/v1/warehouses/DEL1",
        ADMIN_TOKEN,
        json!({"name": "Delhi", "type": "WAREHOUSE", "pincode": "110001"}),
    )
    .await;

    let (status, body) = app.get("/api/v1/warehouses/BLR1", &acme.admin).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let (status, _) = app
        .put(
            "/api/v1/clients/acme/warehouses/BLR1",
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .put(
            "/api/v1/clients/acme/warehouses/BLR1",
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "mapping again is a no-op");
    let (status, body) = app
        .put(
            "/api/v1/clients/acme/warehouses/NOPE",
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let (status, seen) = app.get("/api/v1/warehouses/BLR1", &acme.support).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    let (_, list) = app.get("/api/v1/warehouses", &acme.admin).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let (_, list) = app.get("/api/v1/warehouses", &globex.admin).await;
    assert_eq!(list["items"], json!([]));
    let (_, list) = app.get("/api/v1/warehouses", ADMIN_TOKEN).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    let (_, mapped) = app
        .get("/api/v1/clients/acme/warehouses", ADMIN_TOKEN)
        .await;
    assert_eq!(mapped["items"][0]["code"], "BLR1");

    let (status, _) = app
        .delete("/api/v1/clients/acme/warehouses/BLR1", ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get("/api/v1/warehouses/BLR1", &acme.admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .delete("/api/v1/clients/acme/warehouses/BLR1", ADMIN_TOKEN)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

async fn skus_are_created_updated_and_searched_page_by_page(app: &TestApp) {
    let acme = app.client("acme").await;
    let (status, sku) = app
        .put(
            "/api/v1/skus/TEE-RED-M",
            &acme.admin,
            json!({"name": "Red Tee M", "mrp": 999.5, "price": 899.05,
             "tax_rate": 12, "hsn": "6109", "weight_grams": 180}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sku}");
    assert_eq!(sku["mrp"], 999.5);
    assert_eq!(sku["price"], 899.05);
    assert_eq!(sku["tax_rate"], 12.0);
    let (status, sku) = app
        .put(
            "/api/v1/skus/TEE-RED-M",
            &acme.admin,
            json!({"name": "Red Tee (M)", "mrp": "1099"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sku}");
    assert_eq!(sku["mrp"], 1099.0);
    assert_eq!(sku["price"], json!(null), "a PUT replaces the whole SKU");

    for i in 0..7 {
        let (status, _) = app
            .put(
                &format!("/api/v1/skus/JEANS-{i}"),
                &acme.integration,
                json!({"name": format!("Blue Jeans {i}"), "mrp": 1999}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app
            .get(
                &format!("/api/v1/skus?q=jeans&limit=3&cursor={cursor}"),
                &acme.support,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().expect("items") {
            seen.push(item["code"].as_str().expect("code").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("JEANS-{i}")).collect();
    assert_eq!(seen, expected, "every match once, in code order");

    let (_, by_name) = app.get("/api/v1/skus?q=RED%20TEE", &acme.admin).await;
    assert_eq!(
        by_name["items"][0]["code"], "TEE-RED-M",
        "search ignores case and matches names"
    );
    let (_, literal) = app.get("/api/v1/skus?q=%25", &acme.admin).await;
    assert_eq!(literal["items"], json!([]), "% is matched literally");
    let (status, body) = app.get("/api/v1/skus?limit=0", &acme.admin).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

async fn sku_attributes_follow_the_clients_configuration(app: &TestApp) {
    let acme = app.client("acme").await;
    let (status, settings) = app
        .put("/api/v1/settings", &acme.admin, json!({"sku_attributes": [
            {"name": "colour", "type": "ENUM", "values": ["Red", "Blue"], "required": true, "displayed": true},
            {"name": "chest_cm", "type": "NUMBER"},
            {"name": "fabric", "type": "TEXT"}
        ]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{settings}");

    let (status, sku) = app
        .put(
            "/api/v1/skus/TEE-1",
            &acme.admin,
            json!({"name": "Tee", "mrp": 10,
             "attributes": {"colour": "Red", "chest_cm": 96.5, "fabric": "cotton"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sku}");
    assert_eq!(
        sku["attributes"],
        json!({"colour": "Red", "chest_cm": 96.5, "fabric": "cotton"})
    );

    let (status, body) = app
        .put(
            "/api/v1/skus/TEE-2",
            &acme.admin,
            json!({"name": "Tee", "mrp": 10,
             "attributes": {"colour": "Green", "chest_cm": "wide", "size": "M"}}),
        )
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let fields: Vec<&str> = error["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["field"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        [
            "attributes.chest_cm",
            "attributes.colour",
            "attributes.size"
        ]
    );

    let (status, body) = app
        .put(
            "/api/v1/skus/TEE-3",
            &acme.admin,
            json!({"name": "Tee", "mrp": 10}),
        )
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"][0]["field"], "attributes.colour");
    assert_eq!(error["details"][0]["message"], "is required");
    let (status, _) = app.get("/api/v1/skus/TEE-3", &acme.admin).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused SKU is not written"
    );
}

async fn suppliers_customers_and_channels_round_trip(app: &TestApp) {
    let acme = app.client("acme").await;
    let supplier = json!({"name": "Tiruppur Knits", "address": "Tiruppur", "pincode": "641601",
                          "gstin": "33aaaca1234a1z5", "phone": "+91 98450 12345", "email": "ops@knits.in"});
    let (status, body) = app
        .put("/api/v1/suppliers/KNITS", &acme.admin, supplier)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["gstin"], "33AAACA1234A1Z5",
        "GSTIN is kept in capitals"
    );
    let (status, body) = app
        .put(
            "/api/v1/customers/KNITS",
            &acme.admin,
            json!({"name": "A customer"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "suppliers and customers have their own codes: {body}"
    );
    let (_, supplier) = app.get("/api/v1/suppliers/KNITS", &acme.support).await;
    assert_eq!(supplier["name"], "Tiruppur Knits");
    let (_, customer) = app.get("/api/v1/customers/KNITS", &acme.support).await;
    assert_eq!(customer["name"], "A customer");
    let (_, suppliers) = app.get("/api/v1/suppliers?q=tiruppur", &acme.support).await;
    assert_eq!(suppliers["items"].as_array().map(Vec::len), Some(1));

    let (status, channel) = app
        .put(
            "/api/v1/channels/MYNTRA",
            &acme.admin,
            json!({"name": "Myntra", "type": "MARKETPLACE"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let (status, channel) = app
        .put(
            "/api/v1/channels/MYNTRA",
            &acme.admin,
            json!({"name": "Myntra India", "type": "MARKETPLACE"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(channel["name"], "Myntra India");
    let (_, channels) = app.get("/api/v1/channels", &acme.support).await;
    assert_eq!(channels["items"][0]["type"], "MARKETPLACE");
    let (status, body) = app
        .put(
            "/api/v1/channels/B2B",
            &acme.admin,
            json!({"name": "B2B", "type": "SHOP"}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

async fn bad_input_is_refused_with_the_error_shape_and_changes_nothing(app: &TestApp) {
    let acme = app.client("acme").await;
    let url = format!("{}/api/v1/skus/TEE-1", app.base);

    let malformed = app
        .http
        .put(&url)
        .bearer_auth(&acme.admin)
        .header("Content-Type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("send");
    let status = malformed.status();
    let body = malformed.json().await.expect("JSON error");
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");

    let no_type = app
        .http
        .put(&url)
        .bearer_auth(&acme.admin)
        .body("{}")
        .send()
        .await
        .expect("send");
    let status = no_type.status();
    let body = no_type.json().await.expect("JSON error");
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    let cases = [
        json!({"name": "Tee", "mrp": 9.999}),
        json!({"name": "Tee", "mrp": -1}),
        json!({"name": "Tee", "mrp": 10, "price": 11}),
        json!({"name": "Tee", "mrp": 10, "prise": 9}),
        json!({"name": ["Tee"], "mrp": 10}),
        json!({"mrp": 10}),
        json!([1, 2]),
        json!({"name": "Tee", "mrp": 1e300}),
    ];
    for case in cases {
        let (status, body) = app
            .put("/api/v1/skus/TEE-1", &acme.admin, case.clone())
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(
            !body["error"]["details"]
                .as_array()
                .expect("details")
                .is_empty(),
            "{case} → {body}"
        );
    }
    let long_code = "X".repeat(65);
    for code in [long_code.as_str(), "a%20b", "caf%C3%A9"] {
        let (status, body) = app
            .put(
                &format!("/api/v1/skus/{code}"),
                &acme.admin,
                json!({"name": "Tee", "mrp": 1}),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (status, body) = app
        .call(
            Method::GET,
            "/api/v1/nothing-here",
            Some(&acme.admin),
            None,
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let (_, list) = app.get("/api/v1/skus", &acme.admin).await;
    assert_eq!(
        list["items"],
        json!([]),
        "no refused request wrote anything"
    );
}
