//! Webhook subscribers: configuration (client_admin), deliveries and their replay.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use oms_domain::access::Permission;
use oms_store::webhooks::{self, DeliveryRow, WebhookRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::page_limit;
use crate::api::warehouses::put_status;
use crate::auth::Scope;
use crate::clock::{now_micros, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, path_code};
use crate::fields::Fields;
use crate::service::webhooks as service;

#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the schema; never built")]
pub struct WebhookBody {
    /// Where events are POSTed (http://).
    url: String,
    /// Signs each delivery: `X-OMS-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    secret: String,
    /// Event types to deliver; empty for every type.
    event_types: Vec<String>,
}

/// A subscriber, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    pub code: String,
    pub url: String,
    pub event_types: Vec<String>,
    /// The last event queued for it.
    pub last_event_id: i64,
}

fn webhook_out(row: WebhookRow) -> WebhookOut {
    WebhookOut {
        code: row.code,
        url: row.url,
        event_types: serde_json::from_str(&row.event_types).unwrap_or_default(),
        last_event_id: row.last_event_id,
    }
}

#[utoipa::path(put, path = "/api/v1/webhooks/{code}", tag = "webhooks", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = WebhookBody,
    responses((status = 201, body = WebhookOut), (status = 200, body = WebhookOut),
        (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn put_webhook(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<WebhookOut>)> {
    scope.require(Permission::WriteSettings)?;
    let code = path_code("code", &code)?;
    let fields = Fields::from_json(&body).map_err(ApiError::invalid)?;
    let (row, created) = service::put(&state.store, scope.client, &code, &fields).await?;
    Ok((put_status(created), Json(webhook_out(row))))
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = Vec<WebhookOut>)))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    scope: Scope,
) -> ApiResult<Json<Vec<WebhookOut>>> {
    scope.require(Permission::WriteSettings)?;
    let rows = webhooks::list(state.store.pool(), scope.client).await?;
    Ok(Json(rows.into_iter().map(webhook_out).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    pub id: i64,
    pub event_id: i64,
    pub event_type: String,
    /// PENDING, DELIVERED or DEAD (gave up after the last retry; replay to send again).
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub updated_at: String,
}

fn delivery_out(row: DeliveryRow) -> DeliveryOut {
    DeliveryOut {
        id: row.id,
        event_id: row.event_id,
        event_type: row.event_type,
        status: row.status,
        attempts: row.attempts,
        last_error: row.last_error,
        updated_at: rfc3339(row.updated_at),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// PENDING, DELIVERED or DEAD.
    pub status: Option<String>,
    /// 1 to 500 (50), newest first.
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/webhooks/{code}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("code" = String, Path), DeliveryQuery),
    responses((status = 200, body = Vec<DeliveryOut>), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(code): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<Vec<DeliveryOut>>> {
    scope.require(Permission::WriteSettings)?;
    let code = path_code("code", &code)?;
    let limit = page_limit(query.limit)?;
    let status = query.status.unwrap_or_default();
    if !matches!(status.as_str(), "" | "PENDING" | "DELIVERED" | "DEAD") {
        return Err(ApiError::invalid_field(
            "status",
            "must be PENDING, DELIVERED or DEAD",
        ));
    }
    let webhook = service::find(&state.store, scope.client, code.as_str()).await?;
    let rows =
        webhooks::deliveries(state.store.pool(), scope.client, webhook.id, &status, limit).await?;
    Ok(Json(rows.into_iter().map(delivery_out).collect()))
}

/// Puts a DEAD delivery back in line; the relay sends it again in event order.
#[utoipa::path(post, path = "/api/v1/webhooks/{code}/deliveries/{id}/replay", tag = "webhooks", security(("bearer" = [])),
    params(("code" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn replay_delivery(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath((code, id)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    scope.require(Permission::WriteSettings)?;
    let code = path_code("code", &code)?;
    let webhook = service::find(&state.store, scope.client, code.as_str()).await?;
    let mut tx = state.store.begin_write().await?;
    let replayed = webhooks::replay(tx.conn(), scope.client, webhook.id, id, now_micros()).await?;
    tx.commit().await?;
    if replayed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("dead delivery {id}")))
    }
}
