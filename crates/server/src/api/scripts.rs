//! `/api/scripts`: script CRUD and execution (users everything; customers the global scripts and
//! their own, and they change only their own).

use axum::extract::{Path, State};
use axum::Json;
use skyshift_proto::agent::{CommandAccepted, ExecuteScriptRequest, Script, ScriptRequest};
use skyshift_proto::api::{ErrorBody, Message};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use crate::audit::Actor;
use crate::auth::{Caller, ClientAddr};
use crate::error::ApiResult;
use crate::fleet::scripts;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_scripts, create_script))
        .routes(routes!(get_script, update_script, delete_script))
        .routes(routes!(execute_script))
}

/// Scripts the caller may see.
#[utoipa::path(get, path = "/api/scripts", tag = "scripts", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Vec<Script>), (status = 401, body = ErrorBody)))]
async fn list_scripts(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Script>>> {
    Ok(Json(scripts::list(&state, caller.customer_scope()).await?))
}

/// Create a script: global, or for one customer (`customer_uuid`; a customer's own key makes it its own).
#[utoipa::path(post, path = "/api/scripts", tag = "scripts", security(("bearer" = []), ("api_key" = [])),
    request_body = ScriptRequest,
    responses((status = 200, body = Script), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_script(
    State(state): State<AppState>,
    caller: Caller,
    addr: ClientAddr,
    ApiJson(request): ApiJson<ScriptRequest>,
) -> ApiResult<Json<Script>> {
    let actor = Actor::caller(&caller, addr);
    Ok(Json(
        scripts::create(&state, &caller, &actor, request).await?,
    ))
}

/// One script.
#[utoipa::path(get, path = "/api/scripts/{script_id}", tag = "scripts", security(("bearer" = []), ("api_key" = [])),
    params(("script_id" = String, Path)),
    responses((status = 200, body = Script), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_script(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Script>> {
    Ok(Json(scripts::get(&state, &caller, &id).await?))
}

/// Replace a script.
#[utoipa::path(put, path = "/api/scripts/{script_id}", tag = "scripts", security(("bearer" = []), ("api_key" = [])),
    params(("script_id" = String, Path)), request_body = ScriptRequest,
    responses((status = 200, body = Script), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_script(
    State(state): State<AppState>,
    caller: Caller,
    addr: ClientAddr,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ScriptRequest>,
) -> ApiResult<Json<Script>> {
    let actor = Actor::caller(&caller, addr);
    Ok(Json(
        scripts::update(&state, &caller, &actor, &id, request).await?,
    ))
}

/// Delete a script.
#[utoipa::path(delete, path = "/api/scripts/{script_id}", tag = "scripts", security(("bearer" = []), ("api_key" = [])),
    params(("script_id" = String, Path)),
    responses((status = 200, body = Message), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_script(
    State(state): State<AppState>,
    caller: Caller,
    addr: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<Message>> {
    let actor = Actor::caller(&caller, addr);
    scripts::delete(&state, &caller, &actor, &id).await?;
    Ok(Json(Message::new("Script deleted successfully")))
}

/// Run a script on an agent; `parameters` reach it as environment variables.
#[utoipa::path(post, path = "/api/scripts/{script_id}/execute", tag = "scripts", security(("bearer" = []), ("api_key" = [])),
    params(("script_id" = String, Path)), request_body = ExecuteScriptRequest,
    responses((status = 200, body = CommandAccepted), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "Invalid parameter names or timeout", body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn execute_script(
    State(state): State<AppState>,
    caller: Caller,
    addr: ClientAddr,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ExecuteScriptRequest>,
) -> ApiResult<Json<CommandAccepted>> {
    let actor = Actor::caller(&caller, addr);
    Ok(Json(
        scripts::execute(&state, &caller, &actor, &id, request).await?,
    ))
}
