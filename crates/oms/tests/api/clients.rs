//! The operator, clients, API keys, roles and the walls between tenants.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, TestApp, assert_error};
use crate::on_both_backends;

on_both_backends!(
    operator_creates_clients_and_keys_shown_once,
    client_keys_cannot_use_operator_routes,
    another_clients_sku_answers_exactly_like_a_missing_one,
    support_reads_but_changes_no_masters,
    missing_bad_and_revoked_tokens_are_refused,
    a_key_revoked_by_another_instance_is_refused_within_seconds,
    operator_acts_on_a_client_through_x_client,
);

async fn operator_creates_clients_and_keys_shown_once(app: &TestApp) {
    let (status, body) = app
        .post(
            "/api/v1/clients",
            ADMIN_TOKEN,
            json!({"code": "acme", "name": "Acme"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["code"], "acme");

    let (status, body) = app
        .post(
            "/api/v1/clients",
            ADMIN_TOKEN,
            json!({"code": "acme", "name": "Again"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");

    let (status, body) = app
        .post(
            "/api/v1/clients",
            ADMIN_TOKEN,
            json!({"code": "a b", "name": "Bad"}),
        )
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"][0]["field"], "code");

    let (status, key) = app
        .post(
            "/api/v1/clients/acme/api-keys",
            ADMIN_TOKEN,
            json!({"role": "integration", "name": "Myntra connector"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let token = key["token"].as_str().expect("token shown at creation");
    assert_eq!(key["role"], "integration");

    let (status, keys) = app.get("/api/v1/clients/acme/api-keys", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys.as_array().map(Vec::len), Some(1));
    assert_eq!(keys[0]["name"], "Myntra connector");
    assert!(
        keys[0].get("token").is_none(),
        "a key is never shown again: {keys}"
    );

    // The new key works for its own client.
    let (status, _) = app.get("/api/v1/skus", token).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app
        .post(
            "/api/v1/clients/acme/api-keys",
            ADMIN_TOKEN,
            json!({"role": "admin"}),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .post(
            "/api/v1/clients/nobody/api-keys",
            ADMIN_TOKEN,
            json!({"role": "integration"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let (status, list) = app.get("/api/v1/clients?limit=10", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"][0]["code"], "acme");
}

async fn client_keys_cannot_use_operator_routes(app: &TestApp) {
    let acme = app.client("acme").await;
    for token in [&acme.admin, &acme.support, &acme.integration] {
        let (status, body) = app.get("/api/v1/clients", token).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
        let (status, body) = app
            .post(
                "/api/v1/clients",
                token,
                json!({"code": "evil", "name": "Evil"}),
            )
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
        let (status, body) = app
            .put(
                "/api/v1/warehouses/W1",
                token,
                json!({"name": "W", "type": "WAREHOUSE", "pincode": "560001"}),
            )
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
        let (status, body) = app
            .post(
                "/api/v1/clients/acme/api-keys",
                token,
                json!({"role": "client_admin"}),
            )
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
}

async fn another_clients_sku_answers_exactly_like_a_missing_one(app: &TestApp) {
    let acme = app.client("acme").await;
    let globex = app.client("globex").await;
    let (status, body) = app
        .put(
            "/api/v1/skus/TEE-1",
            &acme.admin,
            json!({"name": "Tee", "mrp": 999}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.put(
        "/api/v1/channels/MYNTRA",
        &acme.admin,
        json!({"name": "Myntra", "type": "MARKETPLACE"}),
    )
    .await;
    app.put(
        "/api/v1/suppliers/SUP1",
        &acme.admin,
        json!({"name": "Supplier"}),
    )
    .await;

    for (path, missing) in [
        ("/api/v1/skus/TEE-1", "/api/v1/skus/NOPE"),
        ("/api/v1/channels/MYNTRA", "/api/v1/channels/NOPE"),
        ("/api/v1/suppliers/SUP1", "/api/v1/suppliers/NOPE"),
    ] {
        let (foreign_status, foreign) = app.get(path, &globex.admin).await;
        let (missing_status, absent) = app.get(missing, &globex.admin).await;
        assert_eq!(foreign_status, StatusCode::NOT_FOUND);
        assert_eq!(missing_status, StatusCode::NOT_FOUND);
        // Same shape and words, but for the code itself.
        let foreign_message = foreign["error"]["message"].as_str().unwrap_or_default();
        let missing_message = absent["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(
            foreign_message
                .replace("TEE-1", "X")
                .replace("MYNTRA", "X")
                .replace("SUP1", "X"),
            missing_message.replace("NOPE", "X")
        );
        assert_eq!(foreign["error"]["code"], absent["error"]["code"]);
    }
    let (_, list) = app.get("/api/v1/skus", &globex.admin).await;
    assert_eq!(list["items"], json!([]), "globex sees none of acme's SKUs");

    // Globex writing the same code makes its own SKU; acme's is untouched.
    let (status, _) = app
        .put(
            "/api/v1/skus/TEE-1",
            &globex.admin,
            json!({"name": "Other", "mrp": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, acme_sku) = app.get("/api/v1/skus/TEE-1", &acme.admin).await;
    assert_eq!(acme_sku["name"], "Tee");
    assert_eq!(acme_sku["mrp"], 999.0);
}

async fn support_reads_but_changes_no_masters(app: &TestApp) {
    let acme = app.client("acme").await;
    app.put(
        "/api/v1/skus/TEE-1",
        &acme.integration,
        json!({"name": "Tee", "mrp": 10}),
    )
    .await;
    let (status, sku) = app.get("/api/v1/skus/TEE-1", &acme.support).await;
    assert_eq!(status, StatusCode::OK, "{sku}");
    let writes = [
        ("/api/v1/skus/TEE-2", json!({"name": "Tee", "mrp": 10})),
        (
            "/api/v1/channels/WEB",
            json!({"name": "Web", "type": "WEBSITE"}),
        ),
        ("/api/v1/customers/C1", json!({"name": "C"})),
        ("/api/v1/settings", json!({"excess_grn_allowed": true})),
    ];
    for (path, body) in writes {
        let (status, answer) = app.put(path, &acme.support, body).await;
        assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    }
    let (status, body) = app
        .upload("skus", &acme.support, "code,name,mrp\nX,X,1\n")
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (_, list) = app.get("/api/v1/skus", &acme.admin).await;
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(1),
        "nothing was written: {list}"
    );
}

async fn missing_bad_and_revoked_tokens_are_refused(app: &TestApp) {
    let acme = app.client("acme").await;
    let (status, body) = app
        .call(Method::GET, "/api/v1/skus", None, None, None)
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = app.get("/api/v1/skus", "oms_not_a_key").await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    let (_, keys) = app.get("/api/v1/clients/acme/api-keys", ADMIN_TOKEN).await;
    let support_id = keys
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["role"] == "client_support"))
        .and_then(|k| k["id"].as_i64())
        .expect("support key listed");
    // Used once, so that this instance remembers the key as valid.
    let (status, _) = app.get("/api/v1/skus", &acme.support).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .delete(
            &format!("/api/v1/clients/acme/api-keys/{support_id}"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/api/v1/skus", &acme.support).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = app
        .delete(
            &format!("/api/v1/clients/acme/api-keys/{support_id}"),
            ADMIN_TOKEN,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = app.get("/api/v1/skus", &acme.admin).await;
    assert_eq!(status, StatusCode::OK, "other keys keep working");
}

/// Another instance on the same database revokes a key this instance remembers as valid:
/// this instance refuses it once its trust in the key lapses (`KEY_SEEN_FOR`, 2 s).
async fn a_key_revoked_by_another_instance_is_refused_within_seconds(app: &TestApp) {
    let acme = app.client("acme").await;
    let (status, _) = app.get("/api/v1/skus", &acme.integration).await;
    assert_eq!(status, StatusCode::OK);
    let (_, keys) = app.get("/api/v1/clients/acme/api-keys", ADMIN_TOKEN).await;
    let integration_id = keys
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["role"] == "integration"))
        .and_then(|k| k["id"].as_i64())
        .expect("integration key listed");
    let client = oms_store::clients::find_by_code(app.store.pool(), "acme")
        .await
        .expect("read")
        .expect("acme");
    // The revocation as another instance writes it: straight to the database.
    let mut tx = app.store.begin_write().await.expect("begin");
    let revoked = oms_store::keys::revoke(tx.conn(), client.id, integration_id, 1)
        .await
        .expect("revoke");
    tx.commit().await.expect("commit");
    assert!(revoked);
    let started = std::time::Instant::now();
    loop {
        let (status, body) = app.get("/api/v1/skus", &acme.integration).await;
        if status == StatusCode::UNAUTHORIZED {
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the revoked key still works after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, _) = app.get("/api/v1/skus", &acme.admin).await;
    assert_eq!(status, StatusCode::OK, "other keys keep working");
}

async fn operator_acts_on_a_client_through_x_client(app: &TestApp) {
    app.client("acme").await;
    let body = json!({"name": "Tee", "mrp": 1});
    let (status, answer) = app
        .call(
            Method::PUT,
            "/api/v1/skus/TEE-1",
            Some(ADMIN_TOKEN),
            Some("acme"),
            Some(&body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = app
        .put("/api/v1/skus/TEE-1", ADMIN_TOKEN, body.clone())
        .await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
    let (status, answer) = app
        .call(
            Method::GET,
            "/api/v1/skus/TEE-1",
            Some(ADMIN_TOKEN),
            Some("nobody"),
            None,
        )
        .await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found");
}
