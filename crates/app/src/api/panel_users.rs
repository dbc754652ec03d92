//! Panel users: the operator creates the people who sign in to a client's panel.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::clients::find_client;
use crate::auth::Operator;
use crate::clock::{now_micros, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::panel::users;
use oms_store::panel;

#[derive(Debug, Deserialize, ToSchema)]
pub struct PanelUserBody {
    /// 1 to 64 of letters, digits and `._@-`; unique within the client.
    pub username: String,
    /// At least 12 characters; stored only as an argon2id hash.
    pub password: String,
    /// client_admin or client_support.
    pub role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PanelUserOut {
    pub id: i64,
    pub client: String,
    pub username: String,
    pub role: String,
    pub created_at: String,
    /// When the operator disabled the user; it can no longer sign in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
}

/// Creates a user who signs in to the panel at `/login` with the client's code, the
/// username and the password.
#[utoipa::path(post, path = "/api/v1/clients/{client}/panel-users", tag = "operator", security(("bearer" = [])),
    params(("client" = String, Path)), request_body = PanelUserBody,
    responses((status = 201, body = PanelUserOut), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_panel_user(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(client): ApiPath<String>,
    ApiJson(body): ApiJson<PanelUserBody>,
) -> ApiResult<(StatusCode, Json<PanelUserOut>)> {
    let client = find_client(&state, &client).await?;
    let user = users::validate(Some(&body.username), Some(&body.password), Some(&body.role))?;
    let (id, at) = users::create(&state.store, client.id, &user).await?;
    Ok((
        StatusCode::CREATED,
        Json(PanelUserOut {
            id,
            client: client.code,
            username: user.username,
            role: user.role.as_str().to_owned(),
            created_at: rfc3339(at),
            disabled_at: None,
        }),
    ))
}

/// The client's panel users, disabled ones included.
#[utoipa::path(get, path = "/api/v1/clients/{client}/panel-users", tag = "operator", security(("bearer" = [])),
    params(("client" = String, Path)),
    responses((status = 200, body = Vec<PanelUserOut>), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_panel_users(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(client): ApiPath<String>,
) -> ApiResult<Json<Vec<PanelUserOut>>> {
    let client = find_client(&state, &client).await?;
    let rows = panel::list_users(state.store.pool(), client.id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|u| PanelUserOut {
                id: u.id,
                client: client.code.clone(),
                username: u.username,
                role: u.role,
                created_at: rfc3339(u.created_at),
                disabled_at: u.disabled_at.map(rfc3339),
            })
            .collect(),
    ))
}

/// Disables a panel user: it can no longer sign in and its sessions end at once (someone
/// who left the team). 204; again on a disabled user, 204.
#[utoipa::path(delete, path = "/api/v1/clients/{client}/panel-users/{username}", tag = "operator", security(("bearer" = [])),
    params(("client" = String, Path), ("username" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn disable_panel_user(
    State(state): State<AppState>,
    _: Operator,
    ApiPath((client, username)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let client = find_client(&state, &client).await?;
    let mut tx = state.store.begin_write().await?;
    if !panel::disable_user(tx.conn(), client.id, &username, now_micros()).await? {
        return Err(ApiError::NotFound(format!("panel user {username}")));
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
