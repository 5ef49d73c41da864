//! `skyshift-client`: the customer joins a support session with the 9-digit code and shares
//! the screen until the technician or the customer ends it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use skyshift_desk::client::{self, ClientOptions};

/// Share your screen with a technician for a support session.
#[derive(Parser)]
#[command(name = "skyshift-client", version)]
struct Args {
    /// The server, e.g. https://support.example.com
    #[arg(long, env = "SKYSHIFT_SERVER")]
    server: String,
    /// The 9-digit session code from your technician (asked for when missing).
    code: Option<String>,
    /// X display to share (default: $DISPLAY).
    #[arg(long, env = "DISPLAY")]
    display: Option<String>,
    /// JPEG quality, 1–100.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Frames per second at most.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=120))]
    fps: u32,
    /// Bytes of image per UDP packet (the default fits one Ethernet MTU).
    #[arg(long, default_value_t = skyshift_proto::desk::DEFAULT_CHUNK_SIZE)]
    chunk_size: usize,
    /// Trust this CA certificate (PEM), e.g. the server's self-signed cert.pem.
    #[arg(long, env = "SKYSHIFT_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// More log output.
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    skyshift_desk::init_logging(args.verbose);
    let code = match args.code.clone() {
        Some(code) => code,
        None => match ask_code() {
            Some(code) => code,
            None => {
                eprintln!("skyshift-client: no session code given");
                return ExitCode::from(2);
            }
        },
    };
    if args.chunk_size == 0 || args.chunk_size > skyshift_proto::desk::MAX_CHUNK_SIZE {
        eprintln!(
            "skyshift-client: --chunk-size must be 1 to {}",
            skyshift_proto::desk::MAX_CHUNK_SIZE
        );
        return ExitCode::from(2);
    }
    let options = ClientOptions {
        server: args.server,
        ca_cert: args.ca_cert,
        code,
        display: args.display,
        quality: args.quality,
        fps: args.fps,
        chunk_size: args.chunk_size,
        keyframe_every: Duration::from_secs(3),
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match runtime.block_on(client::run(options, shutdown)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("skyshift-client: {err}");
            ExitCode::FAILURE
        }
    }
}

fn ask_code() -> Option<String> {
    print!("Session code: ");
    std::io::stdout().flush().ok()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).ok()?;
    let code = line.trim().to_owned();
    (!code.is_empty()).then_some(code)
}
