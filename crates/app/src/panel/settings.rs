//! The client's settings, for `client_admin` only: general settings (excess GRN, QC-fail
//! reasons, routing, invoicing), SKU attributes and which are displayed, pools and their
//! channels, webhook subscribers. Each form goes through the same service as the API.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use oms_domain::access::Permission;
use oms_domain::code::Code;
use oms_domain::settings::{ClientSettings, SettingsChange, SkuAttribute};
use oms_store::{channels, pools, webhooks};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::fields::Fields;
use crate::panel::session::{FormData, PanelForm, Session};
use crate::panel::{Nav, PanelResult, describe, render};
use crate::service::{self, stock, webhooks as webhook_service};

const LISTED_MAX: i64 = 500;

#[derive(Debug, Default, Deserialize)]
pub struct SettingsQuery {
    pub notice: Option<String>,
}

pub struct AttributeRow {
    pub name: String,
    pub kind: String,
    pub values: String,
    pub required: bool,
    pub displayed: bool,
}

pub struct PoolRow {
    pub code: String,
    pub name: String,
    pub channels: String,
}

pub struct WebhookRow {
    pub code: String,
    pub url: String,
    pub event_types: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Nav,
    settings: ClientSettings,
    strategy: &'static str,
    qc_fail_reasons: String,
    attributes: Vec<AttributeRow>,
    pools: Vec<PoolRow>,
    channels: Vec<String>,
    webhooks: Vec<WebhookRow>,
    event_types: &'static [&'static str],
    notice: bool,
    error: Option<String>,
    error_details: Vec<String>,
}

fn codes_text(json: &str) -> String {
    serde_json::from_str::<Vec<String>>(json)
        .unwrap_or_default()
        .join(", ")
}

async fn settings_page(
    state: &AppState,
    session: &Session,
    notice: bool,
    failure: Option<ApiError>,
) -> PanelResult<Response> {
    session.scope().require(Permission::WriteSettings)?;
    let pool = state.store.pool();
    let settings = service::settings(&state.store, session.client).await?;
    let (error, error_details, status) = match failure {
        Some(failure) => {
            let status = failure.status();
            let (message, details) = describe(failure);
            (Some(message), details, status)
        }
        None => (None, Vec::new(), StatusCode::OK),
    };
    let page = SettingsPage {
        nav: Nav::new(session, "settings"),
        strategy: match settings.routing.strategy {
            oms_domain::settings::RoutingStrategy::MinimizeShipments => "MINIMIZE_SHIPMENTS",
            oms_domain::settings::RoutingStrategy::MinimizeDistance => "MINIMIZE_DISTANCE",
        },
        qc_fail_reasons: settings.qc_fail_reasons.join("\n"),
        attributes: settings
            .sku_attributes
            .iter()
            .map(|a| AttributeRow {
                name: a.name.clone(),
                kind: serde_json::to_value(a.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                values: a.values.join(", "),
                required: a.required,
                displayed: a.displayed,
            })
            .collect(),
        pools: pools::list(pool, session.client)
            .await?
            .into_iter()
            .map(|p| PoolRow {
                channels: codes_text(&p.channels),
                code: p.code,
                name: p.name,
            })
            .collect(),
        channels: channels::list(pool, session.client, "", LISTED_MAX)
            .await?
            .into_iter()
            .map(|c| c.code)
            .collect(),
        webhooks: webhooks::list(pool, session.client)
            .await?
            .into_iter()
            .map(|w| WebhookRow {
                event_types: match codes_text(&w.event_types) {
                    none if none.is_empty() => "every event".to_owned(),
                    some => some,
                },
                code: w.code,
                url: w.url,
            })
            .collect(),
        event_types: webhook_service::EVENT_TYPES,
        settings,
        notice,
        error,
        error_details,
    };
    Ok(render(status, &page))
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<SettingsQuery>,
) -> PanelResult<Response> {
    settings_page(&state, &session, query.notice.is_some(), None).await
}

/// Back to the settings page: with a notice after a change, or with the change's error.
async fn saved(
    state: &AppState,
    session: &Session,
    outcome: ApiResult<()>,
) -> PanelResult<Response> {
    match outcome {
        Ok(()) => Ok(Redirect::to("/settings?notice=saved").into_response()),
        Err(error @ ApiError::Forbidden(_)) => Err(error.into()),
        Err(error) => settings_page(state, session, false, Some(error)).await,
    }
}

/// A settings change read from a JSON document, as `PUT /api/v1/settings` reads it.
fn change_of(document: Value) -> ApiResult<SettingsChange> {
    serde_json::from_value(document).map_err(|e| ApiError::invalid_field("settings", e.to_string()))
}

fn general_change(form: &FormData) -> ApiResult<SettingsChange> {
    let max_splits: u32 = form
        .get("max_splits")
        .unwrap_or_default()
        .parse()
        .map_err(|_| ApiError::invalid_field("max_splits", "must be a whole number"))?;
    let reasons: Vec<String> = form
        .get("qc_fail_reasons")
        .unwrap_or_default()
        .split(['\n', ','])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    change_of(json!({
        "excess_grn_allowed": form.has("excess_grn_allowed"),
        "qc_fail_reasons": reasons,
        "routing": {"strategy": form.get("strategy").unwrap_or_default(), "max_splits": max_splits},
        "invoicing": {
            "legal_name": form.get("legal_name"),
            "address": form.get("address"),
            "pincode": form.get("pincode"),
            "gstin": form.get("gstin"),
            "prefix": form.get("prefix").unwrap_or_else(|| "INV-".to_owned()),
            "currency": form.get("currency").unwrap_or_else(|| "INR".to_owned()),
        },
    }))
}

pub async fn general(
    State(state): State<AppState>,
    PanelForm { session, form }: PanelForm,
) -> PanelResult<Response> {
    let outcome = async {
        session.scope().require(Permission::WriteSettings)?;
        let change = general_change(&form)?;
        service::change_settings(&state.store, session.client, change).await?;
        Ok(())
    }
    .await;
    saved(&state, &session, outcome).await
}

/// The attribute list after the form: `displayed` and `remove` name existing attributes;
/// `new_*` adds one.
fn attributes_change(current: &[SkuAttribute], form: &FormData) -> ApiResult<SettingsChange> {
    let displayed = form.all("displayed");
    let removed = form.all("remove");
    let mut list: Vec<Value> = current
        .iter()
        .filter(|a| !removed.contains(&a.name))
        .map(|a| {
            let mut value = serde_json::to_value(a).unwrap_or(Value::Null);
            value["displayed"] = Value::Bool(displayed.contains(&a.name));
            value
        })
        .collect();
    if let Some(name) = form.get("new_name") {
        let values: Vec<String> = form
            .get("new_values")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        list.push(json!({
            "name": name,
            "type": form.get("new_type").unwrap_or_else(|| "TEXT".to_owned()),
            "values": values,
            "required": form.has("new_required"),
            "displayed": form.has("new_displayed"),
        }));
    }
    change_of(json!({ "sku_attributes": list }))
}

pub async fn attributes(
    State(state): State<AppState>,
    PanelForm { session, form }: PanelForm,
) -> PanelResult<Response> {
    let outcome = async {
        session.scope().require(Permission::WriteSettings)?;
        let current = service::settings(&state.store, session.client).await?;
        let change = attributes_change(&current.sku_attributes, &form)?;
        service::change_settings(&state.store, session.client, change).await?;
        Ok(())
    }
    .await;
    saved(&state, &session, outcome).await
}

/// Fields of a form with a repeated name turned into a list (`channels[0]`, `channels[1]`).
fn fields_with_list(pairs: Vec<(String, String)>, list: &str, values: Vec<String>) -> Fields {
    let mut fields = Fields::from_pairs(pairs);
    for (index, value) in values.into_iter().enumerate() {
        fields.insert(format!("{list}[{index}]"), value);
    }
    fields
}

fn code_of(form: &FormData) -> ApiResult<Code> {
    Code::parse(&form.get("code").unwrap_or_default())
        .map_err(|m| ApiError::invalid_field("code", m))
}

/// A named thing of the settings (`code` plus fields, one of them a list), saved by `put`.
async fn save_named(
    state: &AppState,
    PanelForm { session, form }: PanelForm,
    scalars: &[&str],
    list: &str,
    put: impl AsyncFnOnce(&Code, &Fields) -> ApiResult<()>,
) -> PanelResult<Response> {
    let outcome = async {
        session.scope().require(Permission::WriteSettings)?;
        let code = code_of(&form)?;
        let pairs = scalars
            .iter()
            .map(|name| ((*name).to_owned(), form.get(name).unwrap_or_default()))
            .collect();
        put(&code, &fields_with_list(pairs, list, form.all(list))).await
    }
    .await;
    saved(state, &session, outcome).await
}

pub async fn pool(State(state): State<AppState>, form: PanelForm) -> PanelResult<Response> {
    let client = form.session.client;
    save_named(&state, form, &["name"], "channels", async |code, fields| {
        stock::put_pool(&state.store, client, code, fields)
            .await
            .map(|_| ())
    })
    .await
}

pub async fn webhook(State(state): State<AppState>, form: PanelForm) -> PanelResult<Response> {
    let client = form.session.client;
    save_named(
        &state,
        form,
        &["url", "secret"],
        "event_types",
        async |code, fields| {
            webhook_service::put(&state.store, client, code, fields)
                .await
                .map(|_| ())
        },
    )
    .await
}
