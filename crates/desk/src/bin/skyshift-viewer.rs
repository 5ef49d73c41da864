//! `skyshift-viewer`: a headless technician's viewer, for scripts and benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use skyshift_desk::viewer::{self, ViewerOptions};

/// Watch (and drive) a support session without a browser.
#[derive(Parser)]
#[command(name = "skyshift-viewer", version)]
struct Args {
    /// The server, e.g. https://support.example.com
    #[arg(long, env = "SKYSHIFT_SERVER")]
    server: String,
    /// Your sign-in token (JWT).
    #[arg(long, env = "SKYSHIFT_TOKEN", hide_env_values = true)]
    token: String,
    /// The session's id.
    #[arg(long)]
    session: i64,
    /// Exit after this many frames.
    #[arg(long)]
    frames: Option<u64>,
    /// Exit after this many seconds.
    #[arg(long)]
    seconds: Option<u64>,
    /// Write every frame as a JPEG into this directory.
    #[arg(long)]
    save_frames: Option<PathBuf>,
    /// Click the left button at X,Y once the first frame arrived (repeatable).
    #[arg(long, value_parser = parse_point)]
    click: Vec<(i32, i32)>,
    /// Type this text once the first frame arrived.
    #[arg(long = "type")]
    text: Option<String>,
    /// Trust this CA certificate (PEM), e.g. the server's self-signed cert.pem.
    #[arg(long, env = "SKYSHIFT_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// More log output.
    #[arg(short, long)]
    verbose: bool,
}

fn parse_point(text: &str) -> Result<(i32, i32), String> {
    let (x, y) = text.split_once(',').ok_or("expected X,Y")?;
    Ok((
        x.trim()
            .parse()
            .map_err(|_| format!("`{x}` is not a number"))?,
        y.trim()
            .parse()
            .map_err(|_| format!("`{y}` is not a number"))?,
    ))
}

fn main() -> ExitCode {
    let args = Args::parse();
    skyshift_desk::init_logging(args.verbose);
    let options = ViewerOptions {
        server: args.server,
        ca_cert: args.ca_cert,
        token: args.token,
        session_id: args.session,
        frames: args.frames,
        duration: args.seconds.map(Duration::from_secs),
        save_frames: args.save_frames,
        clicks: args.click,
        text: args.text,
        progress: !args.json,
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(viewer::run(options)) {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
            } else {
                println!(
                    "{} frames in {:.1} s: {:.1} fps, {:.0} kbit/s, {} dropped{}",
                    report.frames,
                    report.seconds,
                    report.fps,
                    report.kbit_per_s,
                    report.dropped_frames,
                    if report.closed {
                        " (session closed)"
                    } else {
                        ""
                    }
                );
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("skyshift-viewer: {err:#}");
            ExitCode::FAILURE
        }
    }
}
