//! Panel sessions: a random token in an `HttpOnly; SameSite=Strict` cookie, stored as its
//! SHA-256, expiring after [`SESSION_IDLE_MICROS`] without a request; a CSRF token per
//! session that every POST must carry; and the in-memory limit on failed logins.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Multipart, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use oms_domain::access::Role;
use oms_store::{ClientId, panel};

use crate::AppState;
use crate::auth::{Scope, token_hash};
use crate::clock::now_micros;
use crate::error::ApiError;
use crate::panel::PanelError;

pub const SESSION_COOKIE: &str = "oms_session";
/// The hidden form field and the header (for htmx) that carry the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

const MINUTE_MICROS: i64 = 60 * 1_000_000;
/// A session ends after 12 hours without a request…
pub const SESSION_IDLE_MICROS: i64 = 12 * 60 * MINUTE_MICROS;
/// …and 7 days after login whatever happens.
pub const SESSION_LIFETIME_MAX_MICROS: i64 = 7 * 24 * 60 * MINUTE_MICROS;
/// A request moves the idle expiry forward at most this often (one write, not one per page).
const SESSION_TOUCH_MICROS: i64 = 5 * MINUTE_MICROS;

/// Failed logins allowed per username and per address within [`LOGIN_WINDOW_MICROS`].
pub const LOGIN_FAILURES_MAX: usize = 5;
pub const LOGIN_WINDOW_MICROS: i64 = 5 * MINUTE_MICROS;
/// Keys the limiter remembers; past this, keys with no recent failure are forgotten.
const LOGIN_KEYS_MAX: usize = 100_000;

/// 32 random bytes, hex.
pub fn random_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

/// The signed-in user of a panel request.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub client: ClientId,
    pub client_code: String,
    pub csrf: String,
    token_hash: String,
}

impl Session {
    /// The same scope an API key of this role would have: every action goes through the
    /// same services and permission checks as the API.
    pub fn scope(&self) -> Scope {
        Scope {
            client: self.client,
            client_code: self.client_code.clone(),
            role: Some(self.role),
            actor: format!("user:{}:{}", self.user_id, self.username),
        }
    }

    pub fn token_hash(&self) -> &str {
        &self.token_hash
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the request reached us over https (directly, or per a proxy's
/// `X-Forwarded-Proto`), so the session cookie is marked `Secure`.
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value for a new session token (or, with `None`, one that clears it).
pub fn session_cookie(token: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match token {
        Some(token) => {
            format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}")
        }
        None => format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"),
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = PanelError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Session, PanelError> {
        let token = cookie(&parts.headers, SESSION_COOKIE)
            .filter(|t| !t.is_empty())
            .ok_or(PanelError::Login)?;
        let hash = token_hash(token);
        let now = now_micros();
        let row = panel::find_session(state.store.pool(), &hash, now)
            .await
            .map_err(ApiError::from)?
            .ok_or(PanelError::Login)?;
        if now - row.last_seen_at > SESSION_TOUCH_MICROS {
            let expires =
                (now + SESSION_IDLE_MICROS).min(row.created_at + SESSION_LIFETIME_MAX_MICROS);
            let mut tx = state.store.begin_write().await.map_err(ApiError::from)?;
            panel::touch_session(tx.conn(), row.id, now, expires)
                .await
                .map_err(ApiError::from)?;
            tx.commit().await.map_err(ApiError::from)?;
        }
        let role = Role::parse(&row.role).map_err(ApiError::Internal)?;
        Ok(Session {
            user_id: row.user_id,
            username: row.username,
            role,
            client: row.client_id,
            client_code: row.client_code,
            csrf: row.csrf_token,
            token_hash: hash,
        })
    }
}

/// Compares two tokens in time independent of where they differ.
fn same_token(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn refuse_csrf() -> PanelError {
    PanelError::Api(ApiError::Forbidden(
        "this form has no valid security token (CSRF); go back, reload the page and try again"
            .into(),
    ))
}

/// A form's fields, in the order sent (a name may repeat, as checkboxes do).
#[derive(Debug, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// Every non-blank value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_owned())
            .filter(|value| !value.is_empty())
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(key, _)| key == name)
    }
}

/// A POSTed panel form: the session, and the form once its CSRF token (field `csrf`, or
/// header `X-CSRF-Token`) matched the session's. Anything else is a 403 page.
pub struct PanelForm {
    pub session: Session,
    pub form: FormData,
}

impl FromRequest<AppState> for PanelForm {
    type Rejection = PanelError;

    async fn from_request(request: Request, state: &AppState) -> Result<PanelForm, PanelError> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let header = header_token(&parts.headers);
        let request = Request::from_parts(parts, body);
        // A body that is not a form carries no token: the check below refuses it.
        let form = axum::Form::<Vec<(String, String)>>::from_request(request, state)
            .await
            .map(|axum::Form(pairs)| FormData(pairs))
            .unwrap_or_default();
        let given = header.or_else(|| form.get(CSRF_FIELD));
        if !given.is_some_and(|t| same_token(&t, &session.csrf)) {
            return Err(refuse_csrf());
        }
        Ok(PanelForm { session, form })
    }
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A POSTed `multipart/form-data` panel form with one file: text fields first (`csrf`,
/// `kind`), then the file. Refused (403) unless the CSRF token matches.
pub struct PanelUpload {
    pub session: Session,
    pub form: FormData,
    pub file: Vec<u8>,
    pub file_name: Option<String>,
}

impl FromRequest<AppState> for PanelUpload {
    type Rejection = PanelError;

    async fn from_request(request: Request, state: &AppState) -> Result<PanelUpload, PanelError> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let header = header_token(&parts.headers);
        let request = Request::from_parts(parts, body);
        let mut multipart = Multipart::from_request(request, state)
            .await
            .map_err(|_| refuse_csrf())?;
        let mut form = FormData::default();
        let mut file = Vec::new();
        let mut file_name = None;
        while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
            let name = field.name().unwrap_or_default().to_owned();
            if field.file_name().is_some() || name == "file" {
                let given = header.clone().or_else(|| form.get(CSRF_FIELD));
                if !given.is_some_and(|t| same_token(&t, &session.csrf)) {
                    // The token comes before the file: nothing is read without it.
                    return Err(refuse_csrf());
                }
                file_name = field.file_name().map(str::to_owned);
                file = field.bytes().await.map_err(multipart_error)?.to_vec();
            } else {
                let value = field.text().await.map_err(multipart_error)?;
                form.0.push((name, value));
            }
        }
        let given = header.or_else(|| form.get(CSRF_FIELD));
        if !given.is_some_and(|t| same_token(&t, &session.csrf)) {
            return Err(refuse_csrf());
        }
        Ok(PanelUpload {
            session,
            form,
            file,
            file_name,
        })
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> PanelError {
    PanelError::Api(if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the file is too large".into())
    } else {
        ApiError::BadRequest(e.body_text())
    })
}

/// The address a login comes from: the peer, or — when the peer is a proxy on this host —
/// the last address the proxy appended to `X-Forwarded-For`.
pub fn client_address(parts_headers: &HeaderMap, peer: Option<&ConnectInfo<SocketAddr>>) -> String {
    let peer = peer.map(|ConnectInfo(addr)| addr.ip());
    let forwarded = parts_headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match (peer, forwarded) {
        (Some(ip), Some(forwarded)) if ip.is_loopback() => forwarded.to_owned(),
        (Some(ip), _) => ip.to_string(),
        (None, _) => "unknown".to_owned(),
    }
}

/// Failed logins per key (`user:<client>/<username>`, `ip:<address>`), kept in memory:
/// the limit holds per instance, so N instances allow up to N times as many tries.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<i64>>>,
}

impl LoginLimiter {
    /// Seconds until a login may be tried again, when any key is over the limit.
    pub fn blocked(&self, keys: &[String], now: i64) -> Option<i64> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|key| failures.get(key))
            .filter_map(|times| {
                let recent: Vec<i64> = times
                    .iter()
                    .copied()
                    .filter(|t| now - t < LOGIN_WINDOW_MICROS)
                    .collect();
                (recent.len() >= LOGIN_FAILURES_MAX).then(|| {
                    let oldest = recent.iter().copied().min().unwrap_or(now);
                    ((oldest + LOGIN_WINDOW_MICROS - now) / 1_000_000).max(1)
                })
            })
            .max()
    }

    pub fn failed(&self, keys: &[String], now: i64) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= LOGIN_KEYS_MAX {
            failures.retain(|_, times| times.iter().any(|t| now - t < LOGIN_WINDOW_MICROS));
        }
        for key in keys {
            let times = failures.entry(key.clone()).or_default();
            times.retain(|t| now - t < LOGIN_WINDOW_MICROS);
            times.push(now);
        }
    }

    /// A successful login clears the username's failures (not the address's).
    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_in_five_minutes_block_the_key_until_the_oldest_ages_out() {
        let limiter = LoginLimiter::default();
        let keys = vec!["user:acme/asha".to_owned()];
        for minute in 0..5 {
            assert_eq!(limiter.blocked(&keys, minute * MINUTE_MICROS), None);
            limiter.failed(&keys, minute * MINUTE_MICROS);
        }
        assert_eq!(
            limiter.blocked(&keys, 5 * MINUTE_MICROS - 1_000_000),
            Some(1)
        );
        assert_eq!(limiter.blocked(&keys, 5 * MINUTE_MICROS), None);
        limiter.succeeded("user:acme/asha");
        assert_eq!(limiter.blocked(&keys, 4 * MINUTE_MICROS), None);
    }

    #[test]
    fn cookies_are_found_among_others_and_marked_secure_over_https() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "cookie",
            "a=1; oms_session=abc; b=2".parse().expect("header"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert!(!is_https(&headers));
        headers.insert("x-forwarded-proto", "https".parse().expect("header"));
        assert!(is_https(&headers));
        assert!(session_cookie(Some("t"), true).ends_with("; Secure"));
        assert!(session_cookie(Some("t"), false).contains("HttpOnly; SameSite=Strict; Path=/"));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
    }
}
