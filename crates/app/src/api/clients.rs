//! Clients and their API keys: the operator's routes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use oms_domain::access::Role;
use oms_domain::masters::NAME_CHARS_MAX;
use oms_domain::validation::required_text;
use oms_store::{ClientId, clients, keys};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::{ListQuery, Page};
use crate::auth::{Operator, new_token, token_hash};
use crate::clock::{now_micros, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, path_code};
use crate::service;

#[derive(Debug, Deserialize, ToSchema)]
pub struct ClientBody {
    pub code: String,
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientOut {
    pub code: String,
    pub name: String,
    pub created_at: String,
}

impl From<clients::ClientRow> for ClientOut {
    fn from(row: clients::ClientRow) -> Self {
        ClientOut {
            code: row.code,
            name: row.name,
            created_at: rfc3339(row.created_at),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/clients", tag = "operator", security(("bearer" = [])),
    request_body = ClientBody,
    responses((status = 201, body = ClientOut), (status = 403, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_client(
    State(state): State<AppState>,
    _: Operator,
    ApiJson(body): ApiJson<ClientBody>,
) -> ApiResult<(StatusCode, Json<ClientOut>)> {
    let code = path_code("code", &body.code)?;
    let row = service::create_client(&state.store, &code, body.name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

#[utoipa::path(get, path = "/api/v1/clients", tag = "operator", security(("bearer" = [])),
    params(ListQuery), responses((status = 200, body = Page<ClientOut>)))]
pub async fn list_clients(
    State(state): State<AppState>,
    _: Operator,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<ClientOut>>> {
    let limit = query.limit()?;
    let rows = clients::list(state.store.pool(), query.after(), limit + 1).await?;
    Ok(Json(Page::of(rows, limit, |r| &r.code, ClientOut::from)))
}

#[utoipa::path(get, path = "/api/v1/clients/{client}", tag = "operator", security(("bearer" = [])),
    params(("client" = String, Path)),
    responses((status = 200, body = ClientOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_client(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(client): ApiPath<String>,
) -> ApiResult<Json<ClientOut>> {
    Ok(Json(find_client(&state, &client).await?.into()))
}

pub async fn find_client(state: &AppState, code: &str) -> ApiResult<clients::ClientRow> {
    let code = path_code("client", code)?;
    clients::find_by_code(state.store.pool(), code.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("client {code}")))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ApiKeyBody {
    /// client_admin, client_support or integration.
    pub role: String,
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    pub id: i64,
    pub role: &'static str,
    pub name: String,
    pub created_at: String,
    /// The key itself: shown once, when it is created, and never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn key_out(row: keys::KeyRow) -> ApiResult<ApiKeyOut> {
    Ok(ApiKeyOut {
        id: row.id,
        role: Role::parse(&row.role).map_err(ApiError::Internal)?.as_str(),
        name: row.name,
        created_at: rfc3339(row.created_at),
        token: None,
    })
}

#[utoipa::path(post, path = "/api/v1/clients/{client}/api-keys", tag = "operator", security(("bearer" = [])),
    params(("client" = String, Path)), request_body = ApiKeyBody,
    responses((status = 201, body = ApiKeyOut), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_api_key(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(client): ApiPath<String>,
    ApiJson(body): ApiJson<ApiKeyBody>,
) -> ApiResult<(StatusCode, Json<ApiKeyOut>)> {
    let client = find_client(&state, &client).await?;
    let role = Role::parse(&body.role).map_err(|m| ApiError::invalid_field("role", m))?;
    let name = match body.name.as_deref() {
        None => role.as_str().to_owned(),
        Some(name) => required_text(Some(name), NAME_CHARS_MAX)
            .map_err(|m| ApiError::invalid_field("name", m))?,
    };
    let token = new_token()?;
    let at = now_micros();
    let mut tx = state.store.begin_write().await?;
    let id = keys::insert(
        tx.conn(),
        client.id,
        role.as_str(),
        &name,
        &token_hash(&token),
        at,
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyOut {
            id,
            role: role.as_str(),
            name,
            created_at: rfc3339(at),
            token: Some(token),
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/clients/{client}/api-keys", tag = "operator", security(("bearer" = [])),
    params(("client" = String, Path)),
    responses((status = 200, body = Vec<ApiKeyOut>), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(client): ApiPath<String>,
) -> ApiResult<Json<Vec<ApiKeyOut>>> {
    let client = find_client(&state, &client).await?;
    let rows = keys::list(state.store.pool(), client.id).await?;
    Ok(Json(
        rows.into_iter().map(key_out).collect::<ApiResult<_>>()?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/clients/{client}/api-keys/{id}", tag = "operator", security(("bearer" = [])),
    params(("client" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    _: Operator,
    ApiPath((client, id)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    let client: ClientId = find_client(&state, &client).await?.id;
    let mut tx = state.store.begin_write().await?;
    let revoked = keys::revoke(tx.conn(), client, id, now_micros()).await?;
    tx.commit().await?;
    state.keys_seen.forget_all();
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("api key {id}")))
    }
}
