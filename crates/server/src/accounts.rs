//! Accounts: registration, sign-in, profiles, passwords and what admins do to users. Every
//! change lands in the audit log. Handlers call these; these call the store.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use rand::distributions::{Alphanumeric, DistString};
use skyshift_proto::api::{
    ChangePasswordRequest, CreateUserRequest, LoginRequest, LoginResponse, RegisterRequest,
    RegisterResponse, Role, UpdateProfileRequest, User, UserStatus,
};

use crate::audit::{self, action, Actor, Event};
use crate::auth::{password, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::store::{NewUser, UserRecord};
use crate::AppState;

pub const DEFAULT_MAX_SESSIONS: i64 = 10;
pub const ADMIN_MAX_SESSIONS: i64 = 50;
const BAD_CREDENTIALS: &str = "Incorrect username or password";

/// A username: 1–64 characters, none of them whitespace or control characters.
fn validate_username(username: &str) -> ApiResult<&str> {
    let username = username.trim();
    if username.is_empty() || username.chars().count() > 64 {
        return Err(ApiError::Unprocessable(
            "username must be 1 to 64 characters".into(),
        ));
    }
    if username
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::Unprocessable(
            "username must not contain spaces or control characters".into(),
        ));
    }
    Ok(username)
}

/// An email address, lower-cased: `local@domain`, no spaces, at most 254 characters.
fn validate_email(email: &str) -> ApiResult<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if !valid {
        return Err(ApiError::Unprocessable(format!(
            "`{email}` is not a valid email address"
        )));
    }
    Ok(email)
}

fn validate_full_name(full_name: Option<&str>) -> ApiResult<Option<&str>> {
    match full_name.map(str::trim) {
        Some(name) if name.chars().count() > 200 => Err(ApiError::Unprocessable(
            "full_name must be at most 200 characters".into(),
        )),
        Some("") | None => Ok(None),
        Some(name) => Ok(Some(name)),
    }
}

fn validate_max_sessions(max_sessions: i64) -> ApiResult<i64> {
    if !(0..=10_000).contains(&max_sessions) {
        return Err(ApiError::Unprocessable(
            "max_sessions must be between 0 and 10000".into(),
        ));
    }
    Ok(max_sessions)
}

/// Creates the first admin when there are no users. The password comes from the caller
/// (`SKYSHIFT_ADMIN_PASSWORD`) or is generated; a generated one is written to
/// `<data_dir>/initial-admin-password` (mode 0600) and returned so `main` can print it once.
pub async fn ensure_admin(
    state: &AppState,
    password: Option<String>,
    data_dir: &Path,
) -> anyhow::Result<Option<String>> {
    if state.store.count_users().await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(password) => {
            password::validate(&password)
                .map_err(|err| anyhow::anyhow!("SKYSHIFT_ADMIN_PASSWORD: {err}"))?;
            (password, false)
        }
        None => (Alphanumeric.sample_string(&mut rand::rngs::OsRng, 24), true),
    };
    let hash = password::hash(&password).await?;
    let inserted = state
        .store
        .insert_user(NewUser {
            username: "admin",
            email: "admin@localhost",
            full_name: Some("System Administrator"),
            password_hash: &hash,
            role: Role::Admin,
            status: UserStatus::Active,
            max_sessions: ADMIN_MAX_SESSIONS,
            created_at: Utc::now(),
        })
        .await;
    match inserted {
        Ok(admin) => {
            audit::record(
                &state.store,
                &Actor::system(),
                Event::ok(action::CREATE, Some(&admin.username)).detail("initial admin"),
            )
            .await?;
        }
        // Another replica created it first.
        Err(crate::store::StoreError::Duplicate(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    if !generated {
        return Ok(None);
    }
    let path = data_dir.join("initial-admin-password");
    write_private(&path, &format!("{password}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Some(password))
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

pub async fn register(
    state: &AppState,
    addr: ClientAddr,
    request: RegisterRequest,
) -> ApiResult<RegisterResponse> {
    let username = validate_username(&request.username)?;
    let email = validate_email(&request.email)?;
    let full_name = validate_full_name(request.full_name.as_deref())?;
    password::validate(&request.password)?;
    let hash = password::hash(&request.password).await?;
    let user = state
        .store
        .insert_user(NewUser {
            username,
            email: &email,
            full_name,
            password_hash: &hash,
            role: Role::Tech,
            status: UserStatus::Pending,
            max_sessions: DEFAULT_MAX_SESSIONS,
            created_at: Utc::now(),
        })
        .await?;
    audit::record(
        &state.store,
        &Actor::user(&user, addr),
        Event::ok(action::REGISTER, Some(&user.username)),
    )
    .await?;
    tracing::info!(user = %user.username, "user registered, awaiting approval");
    Ok(RegisterResponse {
        user_id: user.uuid(),
        status: UserStatus::Pending,
        message: "User registered successfully; an administrator must approve the account \
                  before it can sign in"
            .into(),
    })
}

pub async fn login(
    state: &AppState,
    addr: ClientAddr,
    request: LoginRequest,
) -> ApiResult<LoginResponse> {
    let (identifier, by_email) = match (&request.username, &request.email) {
        (Some(username), _) if !username.trim().is_empty() => (username.trim(), false),
        (_, Some(email)) if !email.trim().is_empty() => (email.trim(), true),
        _ => {
            return Err(ApiError::Unprocessable(
                "username or email is required".into(),
            ))
        }
    };
    let user = if by_email {
        state.store.user_by_email(identifier).await?
    } else {
        match state.store.user_by_username(identifier).await? {
            Some(user) => Some(user),
            None => state.store.user_by_email(identifier).await?,
        }
    };
    // Record the account only when it exists: a typo'd password in the username field must
    // not end up in the log.
    let target = user.as_ref().map(|user| user.username.clone());
    let target = target.as_deref();
    // One account is one key, whichever name it was addressed by.
    let account_key = match &user {
        Some(user) => user.id.clone(),
        None => identifier.to_lowercase(),
    };
    let addr_key = addr.to_text().unwrap_or_default();
    let now = Instant::now();
    let throttled = state
        .account_throttle
        .check(&account_key, now)
        .and(state.addr_throttle.check(&addr_key, now));
    let actor = match &user {
        Some(user) => Actor::user(user, addr),
        None => Actor::anonymous(addr),
    };

    if let Err(wait) = throttled {
        tracing::warn!(client = ?addr.0, "sign-in throttled after repeated failures");
        audit::record(
            &state.store,
            &actor,
            Event::failed(action::LOGIN, target, "throttled after repeated failures"),
        )
        .await?;
        return Err(ApiError::TooManyRequests {
            detail: "Too many failed sign-in attempts; try again later".into(),
            retry_after_secs: wait.as_secs_f64().ceil() as u64,
        });
    }

    let matches = password::verify(
        &request.password,
        user.as_ref().map(|u| u.password_hash.as_str()),
    )
    .await?;
    let user = match user {
        Some(user) if matches => user,
        _ => {
            state.account_throttle.record_failure(&account_key, now);
            state.addr_throttle.record_failure(&addr_key, now);
            let why = if target.is_some() {
                "wrong password"
            } else {
                "unknown user"
            };
            audit::record(
                &state.store,
                &actor,
                Event::failed(action::LOGIN, target, why),
            )
            .await?;
            return Err(ApiError::Unauthorized(BAD_CREDENTIALS.into()));
        }
    };
    state.account_throttle.reset(&account_key);

    match user.status() {
        UserStatus::Active => {}
        status => {
            let detail = if status == UserStatus::Pending {
                "Account is pending approval by an administrator"
            } else {
                "Account has been rejected by an administrator"
            };
            audit::record(
                &state.store,
                &actor,
                Event::failed(action::LOGIN, target, detail),
            )
            .await?;
            return Err(ApiError::Forbidden(detail.into()));
        }
    }

    let token = state.jwt.issue(&user.id, user.token_version)?;
    audit::record(&state.store, &actor, Event::ok(action::LOGIN, target)).await?;
    tracing::info!(user = %user.username, "signed in");
    Ok(LoginResponse {
        access_token: token,
        token_type: "bearer".into(),
        expires_in: state.jwt.ttl().as_secs(),
        user: user.to_api(),
    })
}

pub async fn update_profile(
    state: &AppState,
    user: &UserRecord,
    addr: ClientAddr,
    request: UpdateProfileRequest,
) -> ApiResult<User> {
    let email = request.email.as_deref().map(validate_email).transpose()?;
    let full_name = validate_full_name(request.full_name.as_deref())?;
    state
        .store
        .update_profile(&user.id, email.as_deref(), full_name)
        .await?;
    audit::record(
        &state.store,
        &Actor::user(user, addr),
        Event::ok(action::PROFILE_UPDATE, Some(&user.username)),
    )
    .await?;
    Ok(fetch(state, &user.id).await?.to_api())
}

pub async fn change_password(
    state: &AppState,
    user: &UserRecord,
    addr: ClientAddr,
    request: ChangePasswordRequest,
) -> ApiResult<()> {
    let actor = Actor::user(user, addr);
    let account_key = user.id.clone();
    let now = Instant::now();
    if let Err(wait) = state.account_throttle.check(&account_key, now) {
        return Err(ApiError::TooManyRequests {
            detail: "Too many failed password checks; try again later".into(),
            retry_after_secs: wait.as_secs_f64().ceil() as u64,
        });
    }
    if !password::verify(&request.current_password, Some(&user.password_hash)).await? {
        state.account_throttle.record_failure(&account_key, now);
        audit::record(
            &state.store,
            &actor,
            Event::failed(
                action::PASSWORD_CHANGE,
                Some(&user.username),
                "wrong current password",
            ),
        )
        .await?;
        return Err(ApiError::BadRequest("Current password is incorrect".into()));
    }
    password::validate(&request.new_password)?;
    let hash = password::hash(&request.new_password).await?;
    state.store.set_password(&user.id, &hash).await?;
    audit::record(
        &state.store,
        &actor,
        Event::ok(action::PASSWORD_CHANGE, Some(&user.username)),
    )
    .await?;
    tracing::info!(user = %user.username, "password changed; earlier tokens revoked");
    Ok(())
}

pub async fn create_user(
    state: &AppState,
    admin: &UserRecord,
    addr: ClientAddr,
    request: CreateUserRequest,
) -> ApiResult<User> {
    let email = validate_email(&request.email)?;
    let username = validate_username(request.username.as_deref().unwrap_or(&email))?;
    let full_name = validate_full_name(request.full_name.as_deref())?;
    let max_sessions = validate_max_sessions(request.max_sessions.unwrap_or(DEFAULT_MAX_SESSIONS))?;
    password::validate(&request.password)?;
    let hash = password::hash(&request.password).await?;
    let user = state
        .store
        .insert_user(NewUser {
            username,
            email: &email,
            full_name,
            password_hash: &hash,
            role: request.role.unwrap_or(Role::Tech),
            status: UserStatus::Active,
            max_sessions,
            created_at: Utc::now(),
        })
        .await?;
    audit::record(
        &state.store,
        &Actor::user(admin, addr),
        Event::ok(action::CREATE, Some(&user.username)).detail(user.role().as_str()),
    )
    .await?;
    Ok(user.to_api())
}

async fn fetch(state: &AppState, id: &str) -> ApiResult<UserRecord> {
    state
        .store
        .user_by_id(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("User not found".into()))
}

/// A user by id: any user may see themselves, admins anyone.
pub async fn get_user(state: &AppState, asker: &UserRecord, id: &str) -> ApiResult<User> {
    if asker.id != id && !asker.is_admin() {
        return Err(ApiError::Forbidden(
            "You may only view your own account".into(),
        ));
    }
    Ok(fetch(state, id).await?.to_api())
}

pub async fn list_users(state: &AppState, status: Option<UserStatus>) -> ApiResult<Vec<User>> {
    let users = state.store.list_users(status).await?;
    Ok(users.iter().map(UserRecord::to_api).collect())
}

pub async fn delete_user(
    state: &AppState,
    admin: &UserRecord,
    addr: ClientAddr,
    id: &str,
) -> ApiResult<()> {
    let user = fetch(state, id).await?;
    if !state.store.delete_user(id).await? {
        return Err(ApiError::Conflict(
            "Cannot delete the last administrator".into(),
        ));
    }
    audit::record(
        &state.store,
        &Actor::user(admin, addr),
        Event::ok(action::DELETE, Some(&user.username)),
    )
    .await?;
    Ok(())
}

/// Approves a pending (or earlier rejected) user.
pub async fn approve(
    state: &AppState,
    admin: &UserRecord,
    addr: ClientAddr,
    id: &str,
) -> ApiResult<User> {
    let user = fetch(state, id).await?;
    if user.status() != UserStatus::Active {
        state.store.set_status(id, UserStatus::Active).await?;
    }
    audit::record(
        &state.store,
        &Actor::user(admin, addr),
        Event::ok(action::APPROVE, Some(&user.username)),
    )
    .await?;
    Ok(fetch(state, id).await?.to_api())
}

/// Rejects a pending user; an active account is deleted instead, not rejected.
pub async fn reject(
    state: &AppState,
    admin: &UserRecord,
    addr: ClientAddr,
    id: &str,
) -> ApiResult<User> {
    let user = fetch(state, id).await?;
    if user.status() == UserStatus::Active {
        return Err(ApiError::Conflict(
            "Only pending users can be rejected; delete an active user instead".into(),
        ));
    }
    state.store.set_status(id, UserStatus::Rejected).await?;
    audit::record(
        &state.store,
        &Actor::user(admin, addr),
        Event::ok(action::REJECT, Some(&user.username)),
    )
    .await?;
    Ok(fetch(state, id).await?.to_api())
}

pub async fn set_role(
    state: &AppState,
    admin: &UserRecord,
    addr: ClientAddr,
    id: &str,
    role: Role,
) -> ApiResult<User> {
    let user = fetch(state, id).await?;
    if user.role() != role && !state.store.set_role(id, role).await? {
        return Err(ApiError::Conflict(
            "Cannot remove admin privileges from the last administrator".into(),
        ));
    }
    audit::record(
        &state.store,
        &Actor::user(admin, addr),
        Event::ok(action::ROLE_CHANGE, Some(&user.username)).detail(role.as_str()),
    )
    .await?;
    Ok(fetch(state, id).await?.to_api())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_usernames() {
        assert_eq!(
            validate_email(" Bob@Example.COM ").unwrap(),
            "bob@example.com"
        );
        assert!(validate_email("admin@localhost").is_ok());
        assert!(validate_email("no-at-sign").is_err());
        assert!(validate_email("a@b@c").is_err());
        assert!(validate_email("@x").is_err());
        assert!(validate_username("has space").is_err());
        assert!(validate_username("").is_err());
        assert_eq!(validate_username(" alice ").unwrap(), "alice");
    }
}
