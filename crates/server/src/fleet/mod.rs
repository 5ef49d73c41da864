//! The RMM fleet: customers and their API keys, agents, the tasks they run, and scripts.
//! Handlers call these services with the caller they proved; the services decide what that
//! caller may see (a customer only its own, anything else answers 404) and talk to the store
//! and the hub.

pub mod agents;
pub mod customers;
pub mod scripts;
pub mod tasks;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::from_micros;

fn uuid(id: &str) -> Uuid {
    Uuid::parse_str(id).unwrap_or_default()
}

fn time(micros: Option<i64>) -> Option<DateTime<Utc>> {
    micros.map(from_micros)
}

/// A required text field, trimmed, 1..=max characters.
fn required_text<'a>(value: &'a str, field: &str, max: usize) -> Result<&'a str, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "{field} must not be empty"
        )));
    }
    if value.chars().count() > max {
        return Err(ApiError::Unprocessable(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(value)
}

/// An optional text field: blank is none.
fn optional_text<'a>(
    value: Option<&'a str>,
    field: &str,
    max: usize,
) -> Result<Option<&'a str>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => required_text(value, field, max).map(Some),
    }
}

/// An environment variable name: a letter or `_`, then letters, digits or `_`.
fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names() {
        for good in ["PATH", "_x", "a1_B2"] {
            assert!(valid_env_name(good), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "ä"] {
            assert!(!valid_env_name(bad), "{bad}");
        }
    }
}
