//! Wire formats shared by every SkyShift Remote program.
//!
//! - `api`: JSON bodies of the users/sign-in/admin part of the REST API.
//! - `agent`: agents, customers, commands, tasks, scripts and the agent WebSocket messages.
//! - `desk`: the desktop path's UDP packets, control messages, frame chunking and reassembly.
//! - `sessions`: support sessions, SMTP settings and the signaling WebSocket's messages.
//! - `duration`: `90s`/`30m`-style durations for flags and environment.
//! - `idini`: the agent's `id.ini` (the server renders it, the agent parses it).
//!
//! One definition here keeps the server and every client in agreement.

pub mod agent;
pub mod api;
pub mod desk;
pub mod duration;
pub mod idini;
pub mod sessions;
