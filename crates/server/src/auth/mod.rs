//! Who is asking: password hashing, sign-in tokens, the sign-in throttle, and the extractors
//! that turn a request into a principal (handlers name the principal they need in their
//! signature; nothing else checks credentials).

pub mod extract;
pub mod jwt;
pub mod keys;
pub mod password;
pub mod throttle;

pub use extract::{AdminUser, AgentToken, AuthUser, Caller, ClientAddr, CustomerKey};
