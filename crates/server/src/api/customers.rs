//! `/api/customers`: customers (users) and their API keys and `id.ini` (admins); and
//! `/api/customer/…`, what a customer sees with its own API key.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use skyshift_proto::agent::{
    AgentList, ApiKeyCreated, ApiKeyInfo, Customer, CustomerRequest, Script,
};
use skyshift_proto::api::{ErrorBody, Message};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use crate::audit::Actor;
use crate::auth::{AdminUser, AuthUser, ClientAddr, CustomerKey};
use crate::error::ApiResult;
use crate::fleet::{agents, customers, scripts};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_customers, create_customer))
        .routes(routes!(get_customer, update_customer, delete_customer))
        .routes(routes!(generate_api_key))
        .routes(routes!(revoke_api_key))
        .routes(routes!(api_key_info))
        .routes(routes!(download_config))
        .routes(routes!(customer_profile))
        .routes(routes!(customer_agents))
        .routes(routes!(customer_scripts))
}

/// Every customer.
#[utoipa::path(get, path = "/api/customers", tag = "customers", security(("bearer" = [])),
    responses((status = 200, body = Vec<Customer>), (status = 401, body = ErrorBody)))]
async fn list_customers(
    State(state): State<AppState>,
    _user: AuthUser,
) -> ApiResult<Json<Vec<Customer>>> {
    let records = state.store.list_customers().await?;
    Ok(Json(records.iter().map(customers::to_api).collect()))
}

/// Create a customer.
#[utoipa::path(post, path = "/api/customers", tag = "customers", security(("bearer" = [])),
    request_body = CustomerRequest,
    responses((status = 200, body = Customer), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_customer(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    addr: ClientAddr,
    ApiJson(request): ApiJson<CustomerRequest>,
) -> ApiResult<Json<Customer>> {
    Ok(Json(
        customers::create(&state, &Actor::user(&user, addr), request).await?,
    ))
}

/// One customer.
#[utoipa::path(get, path = "/api/customers/{customer_uuid}", tag = "customers", security(("bearer" = [])),
    params(("customer_uuid" = String, Path)),
    responses((status = 200, body = Customer), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_customer(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Customer>> {
    Ok(Json(customers::to_api(
        &customers::fetch(&state, &id).await?,
    )))
}

/// Rename a customer or change its address.
#[utoipa::path(put, path = "/api/customers/{customer_uuid}", tag = "customers", security(("bearer" = [])),
    params(("customer_uuid" = String, Path)), request_body = CustomerRequest,
    responses((status = 200, body = Customer), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_customer(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    addr: ClientAddr,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<CustomerRequest>,
) -> ApiResult<Json<Customer>> {
    Ok(Json(
        customers::update(&state, &Actor::user(&user, addr), &id, request).await?,
    ))
}

/// Delete a customer that has no agents.
#[utoipa::path(delete, path = "/api/customers/{customer_uuid}", tag = "customers", security(("bearer" = [])),
    params(("customer_uuid" = String, Path)),
    responses((status = 200, body = Message), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The customer still has agents", body = ErrorBody)))]
async fn delete_customer(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    addr: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<Message>> {
    customers::delete(&state, &Actor::user(&user, addr), &id).await?;
    Ok(Json(Message::new("Customer deleted successfully")))
}

/// Generate the customer's API key (admin). It is shown once and replaces any earlier key at once.
#[utoipa::path(post, path = "/api/customers/{customer_uuid}/generate-api-key", tag = "customers",
    security(("bearer" = [])), params(("customer_uuid" = String, Path)),
    responses((status = 200, body = ApiKeyCreated), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn generate_api_key(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    addr: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKeyCreated>> {
    Ok(Json(
        customers::generate_key(&state, &Actor::user(&admin, addr), &id).await?,
    ))
}

/// Revoke the customer's API key (admin); it stops working at once.
#[utoipa::path(post, path = "/api/customers/{customer_uuid}/revoke-api-key", tag = "customers",
    security(("bearer" = [])), params(("customer_uuid" = String, Path)),
    responses((status = 200, body = Message), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "No key to revoke", body = ErrorBody)))]
async fn revoke_api_key(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    addr: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<Message>> {
    customers::revoke_key(&state, &Actor::user(&admin, addr), &id).await?;
    Ok(Json(Message::new("API key revoked successfully")))
}

/// Whether the customer has a key, and when it was made and last used (admin).
#[utoipa::path(get, path = "/api/customers/{customer_uuid}/api-key-info", tag = "customers",
    security(("bearer" = [])), params(("customer_uuid" = String, Path)),
    responses((status = 200, body = ApiKeyInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn api_key_info(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKeyInfo>> {
    Ok(Json(customers::key_info(&state, &id).await?))
}

/// The customer's `id.ini` as a download (admin): its key, the server URL and the certificate
/// fingerprint agents pin.
#[utoipa::path(get, path = "/api/customers/{customer_uuid}/download-config", tag = "customers",
    security(("bearer" = [])), params(("customer_uuid" = String, Path)),
    responses((status = 200, description = "id.ini", content_type = "text/plain"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "No API key yet", body = ErrorBody)))]
async fn download_config(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    addr: ClientAddr,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| host.parse::<axum::http::uri::Authority>().ok())
        .map(|authority| authority.host().trim_matches(['[', ']']).to_owned())
        .unwrap_or_else(|| "localhost".into());
    let file = customers::config_file(&state, &Actor::user(&admin, addr), &id, &host).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"id.ini\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        file,
    )
        .into_response())
}

/// The customer the API key belongs to.
#[utoipa::path(get, path = "/api/customer/profile", tag = "customer", security(("api_key" = [])),
    responses((status = 200, body = Customer), (status = 401, body = ErrorBody)))]
async fn customer_profile(CustomerKey(customer): CustomerKey) -> Json<Customer> {
    Json(customers::to_api(&customer))
}

/// The customer's own agents.
#[utoipa::path(get, path = "/api/customer/agents", tag = "customer", security(("api_key" = [])),
    responses((status = 200, body = AgentList), (status = 401, body = ErrorBody)))]
async fn customer_agents(
    State(state): State<AppState>,
    CustomerKey(customer): CustomerKey,
) -> ApiResult<Json<AgentList>> {
    Ok(Json(agents::list(&state, Some(&customer.id), false).await?))
}

/// The scripts the customer may run: the global ones and its own.
#[utoipa::path(get, path = "/api/customer/scripts", tag = "customer", security(("api_key" = [])),
    responses((status = 200, body = Vec<Script>), (status = 401, body = ErrorBody)))]
async fn customer_scripts(
    State(state): State<AppState>,
    CustomerKey(customer): CustomerKey,
) -> ApiResult<Json<Vec<Script>>> {
    Ok(Json(scripts::list(&state, Some(&customer.id)).await?))
}
