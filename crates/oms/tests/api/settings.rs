//! Client settings.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, assert_error};
use crate::on_both_backends;

on_both_backends!(
    settings_start_from_defaults_and_change_field_by_field,
    invalid_settings_are_refused_whole,
    only_client_admin_changes_settings,
);

async fn settings_start_from_defaults_and_change_field_by_field(app: &TestApp) {
    let acme = app.client("acme").await;
    let (status, settings) = app.get("/api/v1/settings", &acme.support).await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["excess_grn_allowed"], false);
    assert_eq!(
        settings["routing"],
        json!({"strategy": "MINIMIZE_SHIPMENTS", "max_splits": 3})
    );

    let (status, changed) = app
        .put(
            "/api/v1/settings",
            &acme.admin,
            json!({"excess_grn_allowed": true,
             "routing": {"strategy": "MINIMIZE_DISTANCE", "max_splits": 2},
             "qc_fail_reasons": ["DAMAGED", "SOILED"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let (_, stored) = app.get("/api/v1/settings", &acme.integration).await;
    assert_eq!(stored, changed);
    assert_eq!(stored["qc_fail_reasons"], json!(["DAMAGED", "SOILED"]));

    let (_, again) = app
        .put(
            "/api/v1/settings",
            &acme.admin,
            json!({"excess_grn_allowed": false}),
        )
        .await;
    assert_eq!(again["excess_grn_allowed"], false);
    assert_eq!(
        again["routing"]["strategy"], "MINIMIZE_DISTANCE",
        "fields not named are kept"
    );

    let globex = app.client("globex").await;
    let (_, theirs) = app.get("/api/v1/settings", &globex.admin).await;
    assert_eq!(
        theirs["routing"]["strategy"], "MINIMIZE_SHIPMENTS",
        "settings are per client"
    );
}

async fn invalid_settings_are_refused_whole(app: &TestApp) {
    let acme = app.client("acme").await;
    let (status, body) = app
        .put(
            "/api/v1/settings",
            &acme.admin,
            json!({"excess_grn_allowed": true,
             "routing": {"strategy": "MINIMIZE_DISTANCE", "max_splits": 0},
             "sku_attributes": [{"name": "colour", "type": "ENUM"}]}),
        )
        .await;
    let error = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        error["details"].as_array().map(Vec::len),
        Some(2),
        "{error}"
    );
    for bad in [
        json!({"routing": {"strategy": "FASTEST", "max_splits": 1}}),
        json!({"excess_grn_allowed": "yes"}),
        json!({"unknown_setting": 1}),
        json!({"qc_fail_reasons": ["has space"]}),
    ] {
        let (status, body) = app.put("/api/v1/settings", &acme.admin, bad).await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (_, settings) = app.get("/api/v1/settings", &acme.admin).await;
    assert_eq!(
        settings["excess_grn_allowed"], false,
        "nothing of a refused change applies"
    );
    assert_eq!(settings["sku_attributes"], json!([]));
}

async fn only_client_admin_changes_settings(app: &TestApp) {
    let acme = app.client("acme").await;
    for token in [&acme.support, &acme.integration] {
        let (status, body) = app
            .put(
                "/api/v1/settings",
                token,
                json!({"excess_grn_allowed": true}),
            )
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
    let (_, settings) = app.get("/api/v1/settings", &acme.admin).await;
    assert_eq!(settings["excess_grn_allowed"], false);
}
