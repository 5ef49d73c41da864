//! Customers, their API key (`sk_…`, shown once, replaced or revoked at once) and the `id.ini`
//! an agent needs to join them.

use skyshift_proto::agent::{ApiKeyCreated, ApiKeyInfo, Customer, CustomerRequest};
use skyshift_proto::idini::{IdIni, DEFAULT_CAPABILITIES, DEFAULT_PORT};

use super::{optional_text, required_text, time, uuid};
use crate::audit::{self, Actor, Event};
use crate::auth::keys;
use crate::error::{ApiError, ApiResult};
use crate::store::{from_micros, CustomerDelete, CustomerRecord};
use crate::AppState;

pub mod action {
    pub const CREATE: &str = "customer.create";
    pub const UPDATE: &str = "customer.update";
    pub const DELETE: &str = "customer.delete";
    pub const KEY_GENERATE: &str = "customer.api_key_generate";
    pub const KEY_REVOKE: &str = "customer.api_key_revoke";
    pub const CONFIG_DOWNLOAD: &str = "customer.config_download";
}

pub fn to_api(record: &CustomerRecord) -> Customer {
    Customer {
        customer_uuid: uuid(&record.id),
        name: record.name.clone(),
        address: record.address.clone(),
        has_api_key: record.api_key_hash.is_some(),
        agent_count: record.agent_count.max(0) as u64,
        created_at: from_micros(record.created_at),
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("Customer not found".into())
}

pub async fn fetch(state: &AppState, id: &str) -> ApiResult<CustomerRecord> {
    state.store.customer(id).await?.ok_or_else(not_found)
}

fn validate(request: &CustomerRequest) -> ApiResult<(&str, Option<&str>)> {
    Ok((
        required_text(&request.name, "name", 200)?,
        optional_text(request.address.as_deref(), "address", 500)?,
    ))
}

pub async fn create(
    state: &AppState,
    actor: &Actor,
    request: CustomerRequest,
) -> ApiResult<Customer> {
    let (name, address) = validate(&request)?;
    let customer = state.store.insert_customer(name, address).await?;
    audit::record(
        &state.store,
        actor,
        Event::ok(action::CREATE, Some(&customer.name)),
    )
    .await?;
    Ok(to_api(&customer))
}

pub async fn update(
    state: &AppState,
    actor: &Actor,
    id: &str,
    request: CustomerRequest,
) -> ApiResult<Customer> {
    let (name, address) = validate(&request)?;
    if !state.store.update_customer(id, name, address).await? {
        return Err(not_found());
    }
    audit::record(&state.store, actor, Event::ok(action::UPDATE, Some(name))).await?;
    Ok(to_api(&fetch(state, id).await?))
}

pub async fn delete(state: &AppState, actor: &Actor, id: &str) -> ApiResult<()> {
    let customer = fetch(state, id).await?;
    match state.store.delete_customer(id).await? {
        CustomerDelete::Deleted => {}
        CustomerDelete::NotFound => return Err(not_found()),
        CustomerDelete::HasAgents => {
            return Err(ApiError::Conflict(
                "Customer still has agents; unregister them first".into(),
            ))
        }
    }
    audit::record(
        &state.store,
        actor,
        Event::ok(action::DELETE, Some(&customer.name)),
    )
    .await?;
    Ok(())
}

/// A new key, replacing any earlier one at once.
pub async fn generate_key(state: &AppState, actor: &Actor, id: &str) -> ApiResult<ApiKeyCreated> {
    let customer = fetch(state, id).await?;
    let key = keys::generate(keys::API_KEY_PREFIX);
    let sealed = state.secrets.seal(&key)?;
    if !state
        .store
        .set_api_key(id, &keys::digest(&key), &sealed)
        .await?
    {
        return Err(not_found());
    }
    audit::record(
        &state.store,
        actor,
        Event::ok(action::KEY_GENERATE, Some(&customer.name)),
    )
    .await?;
    Ok(ApiKeyCreated {
        customer_uuid: uuid(id),
        api_key: key,
        message: "API key generated successfully; it is shown only this once".into(),
    })
}

pub async fn revoke_key(state: &AppState, actor: &Actor, id: &str) -> ApiResult<()> {
    let customer = fetch(state, id).await?;
    if customer.api_key_hash.is_none() {
        return Err(ApiError::Conflict("Customer has no API key".into()));
    }
    state.store.revoke_api_key(id).await?;
    audit::record(
        &state.store,
        actor,
        Event::ok(action::KEY_REVOKE, Some(&customer.name)),
    )
    .await?;
    Ok(())
}

pub async fn key_info(state: &AppState, id: &str) -> ApiResult<ApiKeyInfo> {
    let customer = fetch(state, id).await?;
    Ok(ApiKeyInfo {
        customer_uuid: uuid(&customer.id),
        has_api_key: customer.api_key_hash.is_some(),
        api_key_created_at: time(customer.api_key_created_at),
        api_key_last_used: time(customer.api_key_last_used),
    })
}

/// `id.ini` for the customer's agents: its key, where the server is, and the certificate
/// fingerprint to pin. `host` is the host the request came to (used without `--public-host`).
pub async fn config_file(
    state: &AppState,
    actor: &Actor,
    id: &str,
    host: &str,
) -> ApiResult<String> {
    let customer = fetch(state, id).await?;
    let Some(sealed) = &customer.api_key_sealed else {
        return Err(ApiError::Conflict(
            "Customer has no API key; generate one with POST /api/customers/{customer_uuid}/generate-api-key first".into(),
        ));
    };
    let api_key = state.secrets.open(sealed)?;
    let host = state.config.public_host.as_deref().unwrap_or(host);
    let ini = IdIni {
        customer_id: customer.id.clone(),
        api_key,
        hostname: None,
        ip_address: None,
        port: DEFAULT_PORT,
        version: "1.0.0".into(),
        capabilities: DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        server_url: Some(format!(
            "https://{}:{}",
            bracket_ipv6(host),
            state.config.https_port
        )),
        server_cert_sha256: Some(state.tls.fingerprint.clone()),
    };
    audit::record(
        &state.store,
        actor,
        Event::ok(action::CONFIG_DOWNLOAD, Some(&customer.name)),
    )
    .await?;
    Ok(ini.render())
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}
