//! Who is calling: the operator (the `OMS_ADMIN_TOKEN`) or a client's API key. The client a
//! request acts on comes from here — the key's own client, or the operator's `X-Client` —
//! never from a body.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use oms_domain::access::{Permission, Role};
use oms_store::keys::KeyRow;
use oms_store::{ClientId, clients, keys};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// The header by which the operator names the client it acts on.
pub const CLIENT_HEADER: &str = "x-client";

/// A fresh API key: 32 random bytes, hex, with a prefix that makes leaked keys easy to grep.
pub fn new_token() -> ApiResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    Ok(format!("oms_{}", hex::encode(bytes)))
}

/// Tokens are high-entropy, so one SHA-256 is enough to store them safely.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Clone)]
pub enum Caller {
    Operator,
    Client {
        client: ClientId,
        client_code: String,
        role: Role,
        /// Who acts, as the ledger records it: `key:<id>:<name>`.
        actor: String,
    },
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::Unauthorized("missing Authorization: Bearer <token>".into())
            })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("expected Authorization: Bearer <token>".into())
            })?;
        let hash = token_hash(token);
        if state.admin_token_hash.as_deref() == Some(hash.as_str()) {
            return Ok(Caller::Operator);
        }
        let key = match state.keys_seen.get(&hash) {
            Some(key) => key,
            None => {
                let key = keys::find_by_hash(state.store.pool(), &hash)
                    .await?
                    .ok_or_else(|| ApiError::Unauthorized("unknown or revoked token".into()))?;
                state.keys_seen.put(hash, key.clone());
                key
            }
        };
        let role = Role::parse(&key.role).map_err(ApiError::Internal)?;
        Ok(Caller::Client {
            client: key.client_id,
            client_code: key.client_code,
            role,
            actor: format!("key:{}:{}", key.id, key.name),
        })
    }
}

/// API keys recently found valid, by token hash, so that a busy integration's every request
/// does not look its key up again (on PostgreSQL that lookup was a third of the database's
/// work under order ingest). A key revoked through this instance is forgotten at once;
/// another instance refuses it within [`KEY_SEEN_FOR`]. Unknown tokens are never kept.
#[derive(Default)]
pub struct KeysSeen {
    keys: Mutex<HashMap<String, (Instant, KeyRow)>>,
}

/// How long a key found valid is trusted without looking again.
pub const KEY_SEEN_FOR: Duration = Duration::from_secs(2);
/// Keys kept at most; beyond it the memory starts afresh.
const KEYS_SEEN_MAX: usize = 10_000;

impl KeysSeen {
    fn get(&self, hash: &str) -> Option<KeyRow> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.get(hash)
            .filter(|(seen, _)| seen.elapsed() < KEY_SEEN_FOR)
            .map(|(_, key)| key.clone())
    }

    fn put(&self, hash: String, key: KeyRow) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= KEYS_SEEN_MAX {
            keys.clear();
        }
        keys.insert(hash, (Instant::now(), key));
    }

    /// Forgets every key: called when a key is revoked.
    pub fn forget_all(&self) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The operator, and only the operator.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Operator> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Operator => Ok(Operator),
            Caller::Client { .. } => {
                Err(ApiError::Forbidden("only the operator may do this".into()))
            }
        }
    }
}

/// The client a client-scoped request acts on, and with what role (`None`: the operator).
#[derive(Debug, Clone)]
pub struct Scope {
    pub client: ClientId,
    pub client_code: String,
    pub role: Option<Role>,
    /// Who acts, as the ledger records it.
    pub actor: String,
}

impl Scope {
    pub fn require(&self, permission: Permission) -> ApiResult<()> {
        match self.role {
            None => Ok(()),
            Some(role) if role.allows(permission) => Ok(()),
            Some(role) => Err(ApiError::Forbidden(format!(
                "a {} key may not do this",
                role.as_str()
            ))),
        }
    }
}

impl FromRequestParts<AppState> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Scope> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Client {
                client,
                client_code,
                role,
                actor,
            } => Ok(Scope {
                client,
                client_code,
                role: Some(role),
                actor,
            }),
            Caller::Operator => {
                let code = parts
                    .headers
                    .get(CLIENT_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        ApiError::BadRequest(
                            "the operator names the client with the X-Client header".into(),
                        )
                    })?;
                let row = clients::find_by_code(state.store.pool(), code)
                    .await?
                    .ok_or_else(|| ApiError::NotFound(format!("client {code}")))?;
                Ok(Scope {
                    client: row.id,
                    client_code: row.code,
                    role: None,
                    actor: "operator".to_owned(),
                })
            }
        }
    }
}
