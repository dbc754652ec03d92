//! Panel users: the operator creates the people who sign in to a client's panel.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::clients::find_client;
use crate::auth::Operator;
use crate::clock::rfc3339;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::panel::users;

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
    pub role: &'static str,
    pub created_at: String,
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
            role: user.role.as_str(),
            created_at: rfc3339(at),
        }),
    ))
}
