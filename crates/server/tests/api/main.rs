//! API tests through HTTP against a real server on port 0, each run on SQLite and PostgreSQL.

mod helpers;

mod admin;
mod audit;
mod auth;
mod errors;
mod relay;
mod sessions;
mod signaling;
mod smtp;
mod tokens;
mod users;
