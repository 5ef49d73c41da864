//! Passwords: argon2id with the crate's defaults (19 MiB, 2 passes), hashed off the async
//! runtime and at most a few at a time.

use std::sync::{Arc, LazyLock};

use anyhow::Context;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use tokio::sync::Semaphore;

use crate::error::{ApiError, ApiResult};

pub const MIN_LEN: usize = 8;
/// Longer passwords are refused so that nobody can make the server hash megabytes.
pub const MAX_LEN: usize = 1024;

/// Each hash holds 19 MiB for tens of milliseconds; a flood of sign-ins must not take all the
/// memory and every core, so hashing waits for one of these permits.
static HASHING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(4)));

/// A hash of a random password: verifying against it costs what a real check costs, so an
/// unknown user answers as slowly as a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_blocking("no user has this password, it only costs time").unwrap_or_default()
});

/// Checks the length rules (422 otherwise).
pub fn validate(password: &str) -> ApiResult<()> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(ApiError::Unprocessable(format!(
            "password must be at least {MIN_LEN} characters"
        )));
    }
    if password.len() > MAX_LEN {
        return Err(ApiError::Unprocessable(format!(
            "password must be at most {MAX_LEN} bytes"
        )));
    }
    Ok(())
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|err| anyhow::anyhow!("argon2: {err}"))?;
    Ok(hash.to_string())
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

pub async fn hash(password: &str) -> anyhow::Result<String> {
    let _permit = HASHING.acquire().await.context("hashing closed")?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

/// Verifies `password` against `hash`, or against a dummy hash when there is no user, so that
/// both take the same time.
pub async fn verify(password: &str, hash: Option<&str>) -> anyhow::Result<bool> {
    let _permit = HASHING.acquire().await.context("hashing closed")?;
    let password = password.to_owned();
    let (hash, real) = match hash {
        Some(hash) => (hash.to_owned(), true),
        None => (DUMMY_HASH.clone(), false),
    };
    let matches = tokio::task::spawn_blocking(move || verify_blocking(&password, &hash)).await?;
    Ok(real && matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let hashed = hash("correct horse").await.unwrap();
        assert!(hashed.starts_with("$argon2id$"));
        assert!(verify("correct horse", Some(&hashed)).await.unwrap());
        assert!(!verify("wrong horse", Some(&hashed)).await.unwrap());
        assert!(!verify("correct horse", None).await.unwrap());
    }

    #[test]
    fn length_rules() {
        assert!(validate("short").is_err());
        assert!(validate("eight ch").is_ok());
        assert!(validate(&"x".repeat(MAX_LEN + 1)).is_err());
    }
}
