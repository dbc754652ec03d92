//! The support panel at `/`: server-rendered HTML (askama) with a little htmx, for each
//! client's support team. Every page signs in through a session ([`session::Session`]) that
//! becomes the same [`crate::auth::Scope`] an API key would, so the panel acts through the
//! same services and permission checks as the API. The core flows work without JavaScript.

pub mod inventory;
pub mod login;
pub mod orders;
pub mod session;
pub mod settings;
pub mod uploads;
pub mod users;

use askama::Template;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use oms_domain::access::Permission;

use crate::AppState;
use crate::error::ApiError;
use session::Session;

/// htmx 2, vendored from the npm package `htmx.org` (BSD Zero Clause licence).
const HTMX_JS: &str = include_str!("../../static/htmx.min.js");
pub const HTMX_VERSION: &str = "2.0.11";
/// The panel's own script: upload progress.
const PANEL_JS: &str = include_str!("../../static/panel.js");
static PANEL_JS_VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    PANEL_JS.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
});

/// The panel's routes, merged beside the API in [`crate::api::router`].
pub fn router(upload_bytes_max: usize) -> Router<AppState> {
    let uploads = Router::new()
        .route("/uploads", get(uploads::page).post(uploads::upload))
        .layer(DefaultBodyLimit::max(upload_bytes_max));
    Router::new()
        .route("/", get(orders::search))
        .route("/login", get(login::page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/exports/orders.csv", get(orders::export))
        .route("/orders/{code}", get(orders::page))
        .route("/orders/{code}/remarks", post(orders::add_remark))
        .route("/orders/{code}/remarks/{id}", post(orders::edit_remark))
        .route("/orders/{code}/cancel", post(orders::cancel))
        .route("/orders/{code}/{document}", get(orders::document))
        .route("/inventory", get(inventory::page))
        .route("/settings", get(settings::page))
        .route("/settings/general", post(settings::general))
        .route("/settings/attributes", post(settings::attributes))
        .route("/settings/pools", post(settings::pool))
        .route("/settings/webhooks", post(settings::webhook))
        .route("/uploads/{file}", get(uploads::template))
        .route("/static/htmx.min.js", get(|| script(HTMX_JS)))
        .route("/static/panel.js", get(|| script(PANEL_JS)))
        .merge(uploads)
}

async fn script(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // The URL carries the version (`?v=`), so a year's caching is safe.
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

/// What the top bar of every signed-in page needs.
pub struct Nav {
    pub username: String,
    pub client_code: String,
    pub role: &'static str,
    pub csrf: String,
    pub is_admin: bool,
    /// Which tab is lit: `orders`, `inventory`, `uploads`, `settings`.
    pub tab: &'static str,
    pub htmx_version: &'static str,
    /// Changes with the script's text, so a changed script is never served from a cache.
    pub panel_js_version: &'static str,
}

impl Nav {
    pub fn new(session: &Session, tab: &'static str) -> Nav {
        Nav {
            username: session.username.clone(),
            client_code: session.client_code.clone(),
            role: session.role.as_str(),
            csrf: session.csrf.clone(),
            is_admin: session.role.allows(Permission::WriteSettings),
            tab,
            htmx_version: HTMX_VERSION,
            panel_js_version: &PANEL_JS_VERSION,
        }
    }
}

/// What a panel request can end in besides its page: the login page (no or an expired
/// session), or an error page with the status of the service's error.
#[derive(Debug)]
pub enum PanelError {
    Login,
    Api(ApiError),
}

impl From<ApiError> for PanelError {
    fn from(error: ApiError) -> Self {
        PanelError::Api(error)
    }
}

impl From<oms_store::StoreError> for PanelError {
    fn from(error: oms_store::StoreError) -> Self {
        PanelError::Api(error.into())
    }
}

pub type PanelResult<T> = Result<T, PanelError>;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: &'static str,
    message: String,
    details: Vec<String>,
}

impl IntoResponse for PanelError {
    fn into_response(self) -> Response {
        match self {
            PanelError::Login => Redirect::to("/login").into_response(),
            PanelError::Api(error) => {
                let status = error.status();
                let title = match status {
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::CONFLICT => "Conflict",
                    StatusCode::UNPROCESSABLE_ENTITY => "Not valid",
                    StatusCode::TOO_MANY_REQUESTS => "Too many tries",
                    s if s.is_server_error() => "Something went wrong",
                    _ => "Cannot do this",
                };
                let (message, details) = describe(error);
                render(
                    status,
                    &ErrorPage {
                        title,
                        message,
                        details,
                    },
                )
            }
        }
    }
}

/// A service error in words for a page: the message and, for invalid input, each problem.
/// Internal errors are logged and shown only as ours.
pub fn describe(error: ApiError) -> (String, Vec<String>) {
    match error {
        ApiError::Invalid { message, details } => (
            message,
            details
                .into_iter()
                .map(|d| format!("{}: {}", d.field, d.message))
                .collect(),
        ),
        ApiError::InvalidRows { message, details } => (
            message,
            details
                .into_iter()
                .map(|d| format!("row {}, {}: {}", d.row, d.column, d.message))
                .collect(),
        ),
        ApiError::Internal(internal) => {
            tracing::error!(error = %internal, "internal error in the panel");
            (
                "Something went wrong on our side; try again, and tell the operator if it keeps happening."
                    .to_owned(),
                Vec::new(),
            )
        }
        other => (other.to_string(), Vec::new()),
    }
}

/// Renders a page with a status; a template that fails to render is a 500.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "panel template");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// Percent-encodes a path segment or query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Where the order `code` of `channel` lives in the panel, with `suffix` (`/cancel`, …).
pub fn order_url(code: &str, channel: &str, suffix: &str) -> String {
    format!(
        "/orders/{}{suffix}?channel={}",
        encode(code),
        encode(channel)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_encoded_for_urls() {
        assert_eq!(super::encode("MYN-1/2 a"), "MYN-1%2F2%20a");
        assert_eq!(
            super::order_url("A&B", "MYNTRA", "/cancel"),
            "/orders/A%26B/cancel?channel=MYNTRA"
        );
    }
}
