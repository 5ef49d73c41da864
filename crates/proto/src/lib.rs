//! Wire formats shared by every SkyShift Remote program.
//!
//! `api` holds the JSON request and response bodies of the REST API. Later parts (agent
//! WebSocket messages, desktop UDP packets, `id.ini`) get modules of their own here, so that the
//! server and every client agree on one definition.

pub mod api;
