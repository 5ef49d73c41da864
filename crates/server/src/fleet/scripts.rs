//! Scripts: global ones every customer sees, and customer-specific ones. Running a script is a
//! task whose command is the script's content; its parameters reach it as environment
//! variables, never pasted into the text.

use skyshift_proto::agent::{
    CommandAccepted, ExecuteScriptRequest, Script, ScriptRequest, ShellType,
};

use super::tasks::{self, ValidCommand};
use super::{optional_text, required_text, uuid};
use crate::audit::{self, Actor, Event};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::store::{from_micros, ScriptFields, ScriptRecord};
use crate::AppState;

pub mod action {
    pub const CREATE: &str = "script.create";
    pub const UPDATE: &str = "script.update";
    pub const DELETE: &str = "script.delete";
}

const MAX_CONTENT_BYTES: usize = 512 * 1024;

pub fn to_api(record: &ScriptRecord) -> Script {
    Script {
        script_id: uuid(&record.id),
        name: record.name.clone(),
        description: record.description.clone(),
        content: record.content.clone(),
        script_type: ShellType::parse(&record.script_type).unwrap_or(ShellType::Bash),
        customer_uuid: record.customer_id.as_deref().map(uuid),
        created_at: from_micros(record.created_at),
        updated_at: from_micros(record.updated_at),
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("Script not found".into())
}

/// The script, if the caller may see it: users all, a customer the global ones and its own.
async fn visible(state: &AppState, caller: &Caller, id: &str) -> ApiResult<ScriptRecord> {
    let script = state.store.script(id).await?.ok_or_else(not_found)?;
    match (caller.customer_scope(), script.customer_id.as_deref()) {
        (Some(own), Some(owner)) if own != owner => Err(not_found()),
        _ => Ok(script),
    }
}

/// The script, if the caller may change it: users any, a customer only its own.
async fn editable(state: &AppState, caller: &Caller, id: &str) -> ApiResult<ScriptRecord> {
    let script = visible(state, caller, id).await?;
    if caller.customer_scope().is_some() && script.customer_id.is_none() {
        return Err(ApiError::Forbidden(
            "Global scripts can only be changed by users".into(),
        ));
    }
    Ok(script)
}

/// Validates a request; the owner is the customer itself for a customer caller.
async fn fields<'a>(
    state: &AppState,
    caller: &Caller,
    request: &'a ScriptRequest,
) -> ApiResult<(ScriptFields<'a>, Option<String>)> {
    let name = required_text(&request.name, "name", 200)?;
    let description = optional_text(request.description.as_deref(), "description", 2000)?;
    if request.content.trim().is_empty() {
        return Err(ApiError::Unprocessable("content must not be empty".into()));
    }
    if request.content.len() > MAX_CONTENT_BYTES {
        return Err(ApiError::Unprocessable(format!(
            "content must be at most {MAX_CONTENT_BYTES} bytes"
        )));
    }
    let requested = request
        .customer_uuid
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let owner = match caller.customer_scope() {
        Some(own) => {
            if requested.is_some_and(|c| c != own) {
                return Err(ApiError::Forbidden(
                    "A customer creates scripts only for itself".into(),
                ));
            }
            Some(own.to_owned())
        }
        None => match requested {
            Some(id) => Some(super::customers::fetch(state, id).await?.id),
            None => None,
        },
    };
    Ok((
        ScriptFields {
            name,
            description,
            content: &request.content,
            script_type: request.script_type.as_str(),
            customer_id: None,
        },
        owner,
    ))
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    request: ScriptRequest,
) -> ApiResult<Script> {
    let (mut fields, owner) = fields(state, caller, &request).await?;
    fields.customer_id = owner.as_deref();
    let script = state.store.insert_script(fields).await?;
    audit::record(
        &state.store,
        actor,
        Event::ok(action::CREATE, Some(&script.name)),
    )
    .await?;
    Ok(to_api(&script))
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    id: &str,
    request: ScriptRequest,
) -> ApiResult<Script> {
    editable(state, caller, id).await?;
    let (mut fields, owner) = fields(state, caller, &request).await?;
    fields.customer_id = owner.as_deref();
    if !state.store.update_script(id, fields).await? {
        return Err(not_found());
    }
    let script = visible(state, caller, id).await?;
    audit::record(
        &state.store,
        actor,
        Event::ok(action::UPDATE, Some(&script.name)),
    )
    .await?;
    Ok(to_api(&script))
}

pub async fn delete(state: &AppState, caller: &Caller, actor: &Actor, id: &str) -> ApiResult<()> {
    let script = editable(state, caller, id).await?;
    if !state.store.delete_script(id).await? {
        return Err(not_found());
    }
    audit::record(
        &state.store,
        actor,
        Event::ok(action::DELETE, Some(&script.name)),
    )
    .await?;
    Ok(())
}

pub async fn get(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Script> {
    Ok(to_api(&visible(state, caller, id).await?))
}

pub async fn list(state: &AppState, scope: Option<&str>) -> ApiResult<Vec<Script>> {
    Ok(state
        .store
        .list_scripts(scope)
        .await?
        .iter()
        .map(to_api)
        .collect())
}

pub async fn execute(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    id: &str,
    request: ExecuteScriptRequest,
) -> ApiResult<CommandAccepted> {
    let script = visible(state, caller, id).await?;
    let command = ValidCommand {
        command: script.content.clone(),
        args: Vec::new(),
        shell_type: ShellType::parse(&script.script_type).unwrap_or(ShellType::Bash),
        timeout: tasks::validate_timeout(request.timeout)?,
        working_directory: None,
        environment: tasks::validate_environment(request.parameters, "parameter")?,
    };
    tasks::run_script(
        state,
        caller,
        actor,
        request.agent_id.trim(),
        &command,
        &script.name,
    )
    .await
}
