//! API tests through HTTP against a real server on port 0, each run on SQLite and PostgreSQL.

mod helpers;

mod admin;
mod agent_ws;
mod agents;
mod audit;
mod auth;
mod commands;
mod customers;
mod errors;
mod relay;
mod scripts;
mod sessions;
mod signaling;
mod smtp;
mod spec_examples;
mod tokens;
mod users;
