//! Signing in and out. A login names the client, the username and the password; wrong
//! tries are limited per username and per address (see [`super::session::LoginLimiter`]).

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use oms_store::panel;

use crate::AppState;
use crate::auth::token_hash;
use crate::clock::now_micros;
use crate::error::ApiError;
use crate::panel::session::{
    FormData, PanelForm, SESSION_IDLE_MICROS, client_address, is_https, random_token,
    session_cookie,
};
use crate::panel::users::{decoy_hash, verify_password};
use crate::panel::{PanelResult, render};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    client: String,
    username: String,
    error: Option<String>,
}

pub async fn page() -> Response {
    render(
        StatusCode::OK,
        &LoginPage {
            client: String::new(),
            username: String::new(),
            error: None,
        },
    )
}

fn refused(status: StatusCode, form: &FormData, message: String) -> Response {
    render(
        status,
        &LoginPage {
            client: form.get("client").unwrap_or_default(),
            username: form.get("username").unwrap_or_default(),
            error: Some(message),
        },
    )
}

pub async fn login(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> PanelResult<Response> {
    let form = FormData(pairs);
    let client = form.get("client").unwrap_or_default().to_lowercase();
    let username = form.get("username").unwrap_or_default();
    let password = form
        .0
        .iter()
        .find(|(k, _)| k == "password")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let user_key = format!("user:{client}/{}", username.to_lowercase());
    let keys = [
        user_key.clone(),
        format!(
            "ip:{}",
            client_address(&headers, extensions.get::<ConnectInfo<SocketAddr>>())
        ),
    ];
    let now = now_micros();
    if let Some(seconds) = state.logins.blocked(&keys, now) {
        let minutes = (seconds + 59) / 60;
        return Ok(refused(
            StatusCode::TOO_MANY_REQUESTS,
            &form,
            format!(
                "Too many failed logins. Wait {minutes} minute{} and try again.",
                if minutes == 1 { "" } else { "s" }
            ),
        ));
    }
    let user = panel::find_user(state.store.pool(), &client, &username).await?;
    let stored = user
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &stored))
        .await
        .map_err(|e| ApiError::Internal(format!("verifying task: {e}")))?;
    let user = match user {
        Some(user) if matches && user.disabled_at.is_none() => user,
        _ => {
            state.logins.failed(&keys, now);
            return Ok(refused(
                StatusCode::UNAUTHORIZED,
                &form,
                "Wrong client, username or password.".to_owned(),
            ));
        }
    };
    state.logins.succeeded(&user_key);
    let token = random_token()?;
    let csrf = random_token()?;
    let mut tx = state.store.begin_write().await?;
    panel::delete_expired_sessions(tx.conn(), now).await?;
    panel::insert_session(
        tx.conn(),
        &token_hash(&token),
        user.id,
        &csrf,
        now,
        now + SESSION_IDLE_MICROS,
    )
    .await?;
    tx.commit().await?;
    Ok((
        [(
            header::SET_COOKIE,
            session_cookie(Some(&token), is_https(&headers)),
        )],
        Redirect::to("/"),
    )
        .into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    PanelForm { session, .. }: PanelForm,
) -> PanelResult<Response> {
    let mut tx = state.store.begin_write().await?;
    panel::delete_session(tx.conn(), session.token_hash()).await?;
    tx.commit().await?;
    Ok((
        [(header::SET_COOKIE, session_cookie(None, is_https(&headers)))],
        Redirect::to("/login"),
    )
        .into_response())
}
