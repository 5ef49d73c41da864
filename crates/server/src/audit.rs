//! The audit log as services write it: who (`Actor`) did what (`action`), on what, from where.
//! Admins read it through `GET /api/audit`.

use chrono::{DateTime, Utc};

use crate::auth::{Caller, ClientAddr};
use crate::store::{NewAuditEntry, Store, StoreResult, UserRecord};

/// The action names recorded; later parts add their own.
pub mod action {
    pub const LOGIN: &str = "auth.login";
    pub const REGISTER: &str = "user.register";
    pub const CREATE: &str = "user.create";
    pub const APPROVE: &str = "user.approve";
    pub const REJECT: &str = "user.reject";
    pub const ROLE_CHANGE: &str = "user.role_change";
    pub const DELETE: &str = "user.delete";
    pub const PASSWORD_CHANGE: &str = "user.password_change";
    pub const PROFILE_UPDATE: &str = "user.profile_update";
}

/// Who acted and from where.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Option<String>,
    pub name: String,
    pub addr: Option<String>,
}

impl Actor {
    pub fn user(user: &UserRecord, addr: ClientAddr) -> Self {
        Self {
            id: Some(user.id.clone()),
            name: user.username.clone(),
            addr: addr.to_text(),
        }
    }

    /// A user by name, a customer as `customer:<name>`.
    pub fn caller(caller: &Caller, addr: ClientAddr) -> Self {
        match caller {
            Caller::User(user) => Self::user(user, addr),
            Caller::Customer(customer) => Self {
                id: Some(customer.id.clone()),
                name: caller.label(),
                addr: addr.to_text(),
            },
        }
    }

    pub fn anonymous(addr: ClientAddr) -> Self {
        Self {
            id: None,
            name: "anonymous".into(),
            addr: addr.to_text(),
        }
    }

    pub fn system() -> Self {
        Self {
            id: None,
            name: "system".into(),
            addr: None,
        }
    }
}

/// One thing that happened, ready to be recorded.
pub struct Event<'a> {
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub success: bool,
    pub detail: Option<&'a str>,
}

impl<'a> Event<'a> {
    pub fn ok(action: &'a str, target: Option<&'a str>) -> Self {
        Self {
            action,
            target,
            success: true,
            detail: None,
        }
    }

    pub fn failed(action: &'a str, target: Option<&'a str>, detail: &'a str) -> Self {
        Self {
            action,
            target,
            success: false,
            detail: Some(detail),
        }
    }

    pub fn detail(mut self, detail: &'a str) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// The row for `event`, for callers that store several in one transaction.
pub fn entry<'a>(actor: &'a Actor, event: Event<'a>, at: DateTime<Utc>) -> NewAuditEntry<'a> {
    NewAuditEntry {
        at,
        actor_id: actor.id.as_deref(),
        actor: &actor.name,
        action: event.action,
        target: event.target,
        success: event.success,
        detail: event.detail,
        client_addr: actor.addr.as_deref(),
    }
}

pub async fn record(store: &Store, actor: &Actor, event: Event<'_>) -> StoreResult<()> {
    store.insert_audit(entry(actor, event, Utc::now())).await
}
