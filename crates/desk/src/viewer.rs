//! `skyshift-viewer`'s session: take a join ticket with the technician's token, join the relay
//! as a viewer, reassemble frames (bounded memory; an incomplete frame is dropped when a newer
//! one completes), report fps, kbit/s and dropped frames, and optionally save frames and send
//! clicks and typed text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use skyshift_proto::desk::{Control, Join, KeyEvent, MouseButton, MouseEvent, Packet, Reassembler};
use skyshift_proto::sessions::{JoinTicket, Session, SessionInfo};
use tokio::net::UdpSocket;

use crate::keymap;
use crate::net::Server;

pub struct ViewerOptions {
    pub server: String,
    pub ca_cert: Option<PathBuf>,
    pub token: String,
    pub session_id: i64,
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    pub save_frames: Option<PathBuf>,
    /// Clicks (left button) to send once the first frame arrived.
    pub clicks: Vec<(i32, i32)>,
    /// Text to type once the first frame arrived.
    pub text: Option<String>,
    /// Print a progress line every second.
    pub progress: bool,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct ViewerReport {
    pub frames: u64,
    pub bytes: u64,
    pub dropped_frames: u64,
    pub seconds: f64,
    pub fps: f64,
    pub kbit_per_s: f64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The session was closed while watching.
    pub closed: bool,
}

pub async fn run(options: ViewerOptions) -> anyhow::Result<ViewerReport> {
    let server = Server::new(&options.server, options.ca_cert.as_deref())?;
    let relay = relay_address(&server, &options).await?;
    let ticket = join_ticket(&server, &options).await?;
    let socket = UdpSocket::bind(if relay.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .await?;
    socket.connect(relay).await?;
    join(&socket, &ticket).await?;
    socket
        .send(&Packet::control(&Control::RequestFrame).encode())
        .await?;
    if let Some(dir) = &options.save_frames {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }

    let started = Instant::now();
    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut report = ViewerReport::default();
    let mut reassembler = Reassembler::new();
    let mut input_sent = false;
    let mut buffer = vec![0u8; 65_536];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_tick = (Instant::now(), 0u64, 0u64);
    loop {
        let sleep_until =
            deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            received = socket.recv(&mut buffer) => {
                let Ok(length) = received else { continue };
                match Packet::decode(&buffer[..length]) {
                    Ok(Packet::Frame(chunk)) => {
                        if let Some(frame) = reassembler.push(chunk) {
                            report.frames += 1;
                            report.bytes += frame.image.len() as u64;
                            if let Some(dir) = &options.save_frames {
                                let path = dir.join(format!("frame-{:06}.jpg", report.frames));
                                std::fs::write(&path, &frame.image).with_context(|| format!("cannot write {}", path.display()))?;
                            }
                            if !input_sent {
                                input_sent = true;
                                send_input(&socket, &options).await?;
                            }
                            if options.frames.is_some_and(|wanted| report.frames >= wanted) {
                                break;
                            }
                        }
                    }
                    Ok(Packet::Control(json)) => match Control::parse(&json) {
                        Some(Control::ScreenInfo { width, height }) => {
                            report.width = Some(width);
                            report.height = Some(height);
                        }
                        Some(Control::Closed) => {
                            report.closed = true;
                            break;
                        }
                        Some(Control::Error { message }) => bail!("the relay says: {message}"),
                        _ => {}
                    },
                    Ok(_) => {}
                    Err(err) => tracing::debug!(error = %err, "dropped an invalid packet"),
                }
            }
            _ = tick.tick() => {
                // Keep the relay from forgetting a quiet viewer.
                let _ = socket.send(&Packet::control(&Control::Ping).encode()).await;
                if options.progress {
                    let (at, frames, bytes) = last_tick;
                    let seconds = at.elapsed().as_secs_f64().max(1e-3);
                    eprintln!(
                        "{:.1} fps, {:.0} kbit/s, {} dropped",
                        (report.frames - frames) as f64 / seconds,
                        (report.bytes - bytes) as f64 * 8.0 / 1000.0 / seconds,
                        reassembler.stats().frames_dropped,
                    );
                    last_tick = (Instant::now(), report.frames, report.bytes);
                }
            }
            () = tokio::time::sleep_until(sleep_until) => break,
        }
    }
    let _ = socket.send(&Packet::control(&Control::Bye).encode()).await;
    report.dropped_frames = reassembler.stats().frames_dropped;
    report.seconds = started.elapsed().as_secs_f64();
    report.fps = report.frames as f64 / report.seconds.max(1e-3);
    report.kbit_per_s = report.bytes as f64 * 8.0 / 1000.0 / report.seconds.max(1e-3);
    Ok(report)
}

/// Where the session's relay listens: its port from the session list, its host from `info`.
async fn relay_address(server: &Server, options: &ViewerOptions) -> anyhow::Result<SocketAddr> {
    let response = server
        .http
        .get(server.url("/api/sessions"))
        .bearer_auth(&options.token)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "cannot list sessions: the server answered {}",
            response.status()
        );
    }
    let sessions: Vec<Session> = response.json().await?;
    let session = sessions
        .into_iter()
        .find(|s| s.id == options.session_id)
        .with_context(|| format!("no session {} among yours", options.session_id))?;
    let response = server
        .http
        .get(server.url(&format!("/api/sessions/{}/info", session.session_code)))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "session {} is not open: the server answered {}",
            options.session_id,
            response.status()
        );
    }
    let info: SessionInfo = response.json().await?;
    let address = tokio::net::lookup_host((info.udp_host.as_str(), info.udp_port))
        .await?
        .next()
        .context("the relay's host has no address")?;
    Ok(address)
}

async fn join_ticket(server: &Server, options: &ViewerOptions) -> anyhow::Result<String> {
    let response = server
        .http
        .post(server.url(&format!("/api/sessions/{}/join-ticket", options.session_id)))
        .bearer_auth(&options.token)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("no join ticket: the server answered {}", response.status());
    }
    Ok(response.json::<JoinTicket>().await?.ticket)
}

async fn join(socket: &UdpSocket, ticket: &str) -> anyhow::Result<()> {
    // A ticket is single-use: send the hello once and wait; the relay acknowledges it.
    let hello = Packet::control(&Control::Hello {
        join: Join::Viewer {
            ticket: ticket.to_owned(),
        },
    })
    .encode();
    socket.send(&hello).await?;
    let mut buffer = vec![0u8; 65_536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(received) = tokio::time::timeout_at(deadline, socket.recv(&mut buffer)).await {
        if let Ok(Packet::Control(json)) = Packet::decode(&buffer[..received?]) {
            match Control::parse(&json) {
                Some(Control::HelloAck { .. }) => return Ok(()),
                Some(Control::Error { message }) => bail!("the relay refused to join: {message}"),
                _ => {}
            }
        }
    }
    bail!("the relay did not answer")
}

async fn send_input(socket: &UdpSocket, options: &ViewerOptions) -> anyhow::Result<()> {
    let mouse = |x, y, down| {
        Packet::Mouse(MouseEvent {
            x,
            y,
            button: MouseButton::Left,
            down,
        })
        .encode()
    };
    let key = |key, down| Packet::Keyboard(KeyEvent { key, down }).encode();
    let pace = Duration::from_millis(5);
    for &(x, y) in &options.clicks {
        for packet in [mouse(x, y, false), mouse(x, y, true), mouse(x, y, false)] {
            socket.send(&packet).await?;
            tokio::time::sleep(pace).await;
        }
    }
    for c in options.text.as_deref().unwrap_or("").chars() {
        let Some((vk, shift)) = keymap::char_to_vk(c) else {
            tracing::warn!(character = %c, "cannot type this character; skipped");
            continue;
        };
        let mut packets = Vec::new();
        if shift {
            packets.push(key(keymap::VK_SHIFT, true));
        }
        packets.push(key(vk, true));
        packets.push(key(vk, false));
        if shift {
            packets.push(key(keymap::VK_SHIFT, false));
        }
        for packet in packets {
            socket.send(&packet).await?;
            tokio::time::sleep(pace).await;
        }
    }
    Ok(())
}
