//! Panel users: created by the operator (API or `oms user add`), one role each —
//! `client_admin` or `client_support` — with an argon2id password hash.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use oms_domain::access::Role;
use oms_domain::validation::Problems;
use oms_store::{ClientId, Store, StoreError, panel};

use crate::clock::now_micros;
use crate::error::{ApiError, ApiResult};

pub const PASSWORD_CHARS_MIN: usize = 12;
pub const PASSWORD_CHARS_MAX: usize = 1_000;
pub const USERNAME_CHARS_MAX: usize = 64;

/// A validated new user.
pub struct NewUser {
    pub username: String,
    pub role: Role,
    pub password: String,
}

/// Usernames: 1 to 64 of letters, digits and `._@-`, kept as typed (compared exactly).
fn username(text: Option<&str>) -> Result<String, String> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("is required")?;
    if text.chars().count() > USERNAME_CHARS_MAX {
        return Err(format!("must be at most {USERNAME_CHARS_MAX} characters"));
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
    {
        return Err("may hold only letters, digits and . _ @ -".into());
    }
    Ok(text.to_owned())
}

fn password(text: Option<&str>) -> Result<String, String> {
    let text = text.unwrap_or_default();
    let chars = text.chars().count();
    if chars < PASSWORD_CHARS_MIN {
        return Err(format!("must be at least {PASSWORD_CHARS_MIN} characters"));
    }
    if chars > PASSWORD_CHARS_MAX {
        return Err(format!("must be at most {PASSWORD_CHARS_MAX} characters"));
    }
    Ok(text.to_owned())
}

fn panel_role(text: Option<&str>) -> Result<Role, String> {
    match text.map(Role::parse) {
        Some(Ok(role @ (Role::ClientAdmin | Role::ClientSupport))) => Ok(role),
        _ => Err("must be client_admin or client_support".into()),
    }
}

/// Checks every field at once (422 listing each problem).
pub fn validate(
    username_text: Option<&str>,
    password_text: Option<&str>,
    role_text: Option<&str>,
) -> ApiResult<NewUser> {
    let mut problems = Problems::new();
    let username = problems.take("username", username(username_text));
    let password = problems.take("password", password(password_text));
    let role = problems.take("role", panel_role(role_text));
    match (username, password, role) {
        (Some(username), Some(password), Some(role)) if problems.is_empty() => Ok(NewUser {
            username,
            role,
            password,
        }),
        _ => Err(ApiError::invalid(problems.into_vec())),
    }
}

/// The argon2id PHC string of `password`, with a fresh random salt. Slow on purpose: run
/// it off the async threads.
pub fn hash_password(password: &str) -> ApiResult<String> {
    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| ApiError::Internal(format!("hashing a password: {e}")))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string; an unreadable hash matches nothing.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).ok().is_some_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A hash to verify against when the username does not exist, so a wrong username takes
/// as long to refuse as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

/// Creates a user of the client; 409 when the client has the username already.
pub async fn create(store: &Store, client: ClientId, user: &NewUser) -> ApiResult<(i64, i64)> {
    let password = user.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))??;
    let at = now_micros();
    let mut tx = store.begin_write().await?;
    let id = panel::insert_user(
        tx.conn(),
        client,
        &user.username,
        user.role.as_str(),
        &hash,
        at,
    )
    .await
    .map_err(|e| match e {
        StoreError::Conflict(_) => {
            ApiError::Conflict(format!("user {} exists already", user.username))
        }
        other => other.into(),
    })?;
    tx.commit().await?;
    Ok((id, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn short_passwords_and_other_roles_are_refused_together() {
        let Err(ApiError::Invalid { details, .. }) =
            validate(Some("asha rao"), Some("short"), Some("integration"))
        else {
            panic!("expected 422");
        };
        let fields: Vec<&str> = details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["username", "password", "role"]);
        assert!(validate(Some("asha"), Some("twelve chars"), Some("client_support")).is_ok());
    }
}
