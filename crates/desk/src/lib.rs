//! The desktop path of SkyShift Remote: capture a screen (`capture`), encode it as JPEG
//! (`encode`), apply a technician's mouse and keyboard (`input`, with the virtual-key table in
//! `keymap`); and the two programs built on them: the customer's `client` (stream the screen,
//! take input) and the technician's headless `viewer`, both talking to the server through `net`.

pub mod capture;
pub mod client;
pub mod encode;
pub mod input;
pub mod keymap;
pub mod net;
pub mod viewer;

/// Logs to stderr: warnings only, or everything with `--verbose`; `RUST_LOG` overrides.
pub fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
}
