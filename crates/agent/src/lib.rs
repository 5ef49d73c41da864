//! The SkyShift Remote agent as a library; `main.rs` is a thin shell around `runtime::run`.
//!
//! - `config`: command line and `id.ini` → `Settings` (exit code 2 on a bad file).
//! - `runtime`: registration, the WebSocket (or HTTP polling), heartbeats, tasks, delivery.
//! - `executor`: runs one command in its own process group with timeout and cancellation.
//! - `transport`: the server's HTTP endpoints and the WebSocket handshake.
//! - `tls`: rustls client configuration (certificate pin, CA file, web roots, insecure).
//! - `outbox`, `ledger`, `state`: what survives a restart (results, seen tasks, credentials).
//! - `backoff`, `sysmon`, `files`: reconnect delays, machine figures, private atomic files.

pub mod backoff;
pub mod config;
pub mod executor;
pub mod files;
pub mod ledger;
pub mod outbox;
pub mod runtime;
pub mod state;
pub mod sysmon;
pub mod tls;
pub mod transport;
