//! `skyshift-client`'s session: look the code up, hold the signaling WebSocket, join the UDP
//! relay, stream the screen (capture + encode on their own thread, unchanged screens skipped,
//! a keyframe every few seconds) and apply the technician's input (on another thread, with a
//! bounded queue, so input can never hold frames back).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use skyshift_proto::desk::{chunk_frame, Control, Join, KeyEvent, MouseButton, MouseEvent, Packet};
use skyshift_proto::sessions::{SessionInfo, SignalMessage};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::capture::{self, CaptureError};
use crate::encode::JpegEncoder;
use crate::input::{Button, InputSink, XTestInput};
use crate::net::Server;

pub struct ClientOptions {
    pub server: String,
    pub ca_cert: Option<std::path::PathBuf>,
    pub code: String,
    pub display: Option<String>,
    pub quality: u8,
    pub fps: u32,
    pub chunk_size: usize,
    /// A full frame at least this often, so a new viewer gets a picture.
    pub keyframe_every: Duration,
}

/// How a session ended, when it ended well.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    ByTechnician,
    ByCustomer,
}

/// What went wrong, in words for the customer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("there is no session with code {0}; check the code the technician gave you")]
    UnknownCode(String),
    #[error("session {0} has already been closed; ask the technician for a new code")]
    Closed(String),
    #[error("too many attempts with wrong codes from this network; wait a minute and try again")]
    RateLimited,
    #[error("cannot reach the server at {0}: {1}")]
    Unreachable(String, String),
    #[error("the relay refused to join the session: {0}")]
    Refused(String),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

/// An encoded screen, ready to send.
struct Encoded {
    jpeg: Vec<u8>,
    width: u32,
    height: u32,
    resized: bool,
}

pub async fn run(
    options: ClientOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Ended, ClientError> {
    let code: String = options
        .code
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    if code.len() != 9 {
        return Err(ClientError::UnknownCode(options.code.clone()));
    }
    let server = Server::new(&options.server, options.ca_cert.as_deref())?;
    let info = look_up(&server, &code).await?;

    // Capture first: a machine we cannot capture should fail before anyone waits for it.
    let capture = capture::open(options.display.as_deref())?;
    let display = options
        .display
        .clone()
        .or_else(|| std::env::var("DISPLAY").ok())
        .unwrap_or_default();

    let mut signaling = server
        .websocket(&format!("/ws/session/{code}"), None)
        .await
        .map_err(|err| ClientError::Unreachable(server.base.clone(), err.to_string()))?;

    let relay = resolve(&info.udp_host, info.udp_port).await?;
    let socket = UdpSocket::bind(if relay.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .await
    .map_err(anyhow::Error::from)?;
    socket.connect(relay).await.map_err(anyhow::Error::from)?;
    join(&socket, &code).await?;
    println!(
        "Connected to session {code}. A technician can now see your screen; press Ctrl-C to end."
    );

    let stop = Arc::new(AtomicBool::new(false));
    let force_frame = Arc::new(AtomicBool::new(true));
    let (frames_tx, mut frames) = mpsc::channel::<Encoded>(2);
    let capture_thread = {
        let (stop, force_frame) = (stop.clone(), force_frame.clone());
        let (quality, fps, keyframe_every) =
            (options.quality, options.fps.max(1), options.keyframe_every);
        std::thread::spawn(move || {
            capture_loop(
                capture,
                quality,
                fps,
                keyframe_every,
                &force_frame,
                &stop,
                frames_tx,
            )
        })
    };
    // Only mouse and keyboard packets travel on this queue.
    let (input_tx, input_rx) = mpsc::channel::<Packet>(1024);
    let input_thread = std::thread::spawn(move || input_loop(&display, input_rx));

    let mut technician_seen = false;
    let mut frame_id = 0u64;
    let mut buffer = vec![0u8; 65_536];
    let mut keepalive = tokio::time::interval(Duration::from_secs(5));
    tokio::pin!(shutdown);
    let ended = loop {
        tokio::select! {
            encoded = frames.recv() => {
                let Some(encoded) = encoded else {
                    break Err(ClientError::Other(anyhow::anyhow!("screen capture stopped")));
                };
                if encoded.resized {
                    let info = Control::ScreenInfo { width: encoded.width, height: encoded.height };
                    let _ = socket.send(&Packet::control(&info).encode()).await;
                }
                // The spec's frame id is a timestamp; keep it strictly increasing.
                let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_micros() as u64;
                frame_id = now.max(frame_id + 1);
                match chunk_frame(frame_id, &encoded.jpeg, options.chunk_size) {
                    Ok(chunks) => {
                        for chunk in chunks {
                            if let Err(err) = socket.send(&Packet::Frame(chunk).encode()).await {
                                tracing::debug!(error = %err, "frame chunk not sent");
                            }
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "frame not sent"),
                }
            }
            received = socket.recv(&mut buffer) => {
                let Ok(length) = received else { continue };
                let event = match Packet::decode(&buffer[..length]) {
                    Ok(input @ (Packet::Mouse(_) | Packet::Keyboard(_))) => Some(input),
                    Ok(Packet::Control(json)) => {
                        match Control::parse(&json) {
                            Some(Control::RequestFrame) => force_frame.store(true, Ordering::Relaxed),
                            Some(Control::Closed) => break Ok(Ended::ByTechnician),
                            Some(Control::Error { message }) => tracing::warn!(%message, "relay error"),
                            _ => {}
                        }
                        None
                    }
                    Ok(Packet::Frame(_)) => None,
                    Err(err) => {
                        tracing::debug!(error = %err, "dropped an invalid packet");
                        None
                    }
                };
                if let Some(event) = event {
                    if !technician_seen {
                        technician_seen = true;
                        println!("A technician is controlling your screen.");
                    }
                    // A full queue means the screen cannot keep up; drop rather than fall behind.
                    let _ = input_tx.try_send(event);
                }
            }
            message = signaling.next() => {
                match message {
                    Some(Ok(Message::Text(text))) => {
                        if let Ok(SignalMessage::Closed) = serde_json::from_str(&text) {
                            break Ok(Ended::ByTechnician);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        // Closed from the server's side: the session ended, or the server went away.
                        break match look_up(&server, &code).await {
                            Err(ClientError::Closed(_)) => Ok(Ended::ByTechnician),
                            _ => Err(ClientError::Unreachable(server.base.clone(), "the connection was lost".into())),
                        };
                    }
                    Some(Ok(_)) => {}
                }
            }
            _ = keepalive.tick() => {
                let _ = signaling.send(Message::Text(r#"{"type":"ping"}"#.into())).await;
                let _ = socket.send(&Packet::control(&Control::Ping).encode()).await;
            }
            () = &mut shutdown => {
                let _ = signaling.send(Message::Text(r#"{"type":"disconnect"}"#.into())).await;
                break Ok(Ended::ByCustomer);
            }
        }
    };
    let _ = socket.send(&Packet::control(&Control::Bye).encode()).await;
    let _ = signaling.close(None).await;
    stop.store(true, Ordering::Relaxed);
    drop(frames);
    drop(input_tx);
    let _ = capture_thread.join();
    let _ = input_thread.join();
    match &ended {
        Ok(Ended::ByTechnician) => println!("The technician ended the session."),
        Ok(Ended::ByCustomer) => println!("You ended the session."),
        Err(_) => {}
    }
    ended
}

async fn look_up(server: &Server, code: &str) -> Result<SessionInfo, ClientError> {
    let response = server
        .http
        .get(server.url(&format!("/api/sessions/{code}/info")))
        .send()
        .await
        .map_err(|err| {
            ClientError::Unreachable(server.base.clone(), err.without_url().to_string())
        })?;
    match response.status().as_u16() {
        200 => Ok(response.json().await.map_err(anyhow::Error::from)?),
        404 => Err(ClientError::UnknownCode(code.to_owned())),
        410 => Err(ClientError::Closed(code.to_owned())),
        429 => Err(ClientError::RateLimited),
        status => Err(ClientError::Unreachable(
            server.base.clone(),
            format!("it answered {status}"),
        )),
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, ClientError> {
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| ClientError::Unreachable(format!("{host}:{port}"), err.to_string()))?
        .next()
        .ok_or_else(|| ClientError::Unreachable(format!("{host}:{port}"), "no address".into()))
}

/// Sends the hello until the relay answers (UDP may drop it).
async fn join(socket: &UdpSocket, code: &str) -> Result<(), ClientError> {
    let hello = Packet::control(&Control::Hello {
        join: Join::Client {
            code: code.to_owned(),
        },
    })
    .encode();
    let mut buffer = vec![0u8; 65_536];
    for _ in 0..10 {
        socket.send(&hello).await.map_err(anyhow::Error::from)?;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(received) = tokio::time::timeout_at(deadline, socket.recv(&mut buffer)).await {
            let Ok(length) = received else { break };
            if let Ok(Packet::Control(json)) = Packet::decode(&buffer[..length]) {
                match Control::parse(&json) {
                    Some(Control::HelloAck { .. }) => return Ok(()),
                    Some(Control::Error { message }) => return Err(ClientError::Refused(message)),
                    _ => {}
                }
            }
        }
    }
    Err(ClientError::Refused("the relay did not answer".into()))
}

fn capture_loop(
    mut capture: Box<dyn capture::Capture>,
    quality: u8,
    fps: u32,
    keyframe_every: Duration,
    force_frame: &AtomicBool,
    stop: &AtomicBool,
    out: mpsc::Sender<Encoded>,
) {
    let encoder = JpegEncoder::new(quality);
    let period = Duration::from_secs_f64(1.0 / f64::from(fps));
    let mut previous: Vec<u8> = Vec::new();
    let mut size = (0, 0);
    let mut last_sent: Option<Instant> = None;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let frame = match capture.grab() {
            Ok(frame) => frame,
            Err(err) => {
                tracing::error!(error = %err, "screen capture failed");
                return;
            }
        };
        let resized = (frame.width, frame.height) != size;
        let changed = resized || frame.pixels != previous.as_slice();
        let due = last_sent.is_none_or(|at| at.elapsed() >= keyframe_every)
            || force_frame.swap(false, Ordering::Relaxed);
        if changed || due {
            if changed {
                previous.clear();
                previous.extend_from_slice(frame.pixels);
            }
            match encoder.encode(&frame) {
                Ok(jpeg) => {
                    let encoded = Encoded {
                        jpeg,
                        width: frame.width,
                        height: frame.height,
                        resized,
                    };
                    match out.try_send(encoded) {
                        Ok(()) => {
                            size = (frame.width, frame.height);
                            last_sent = Some(Instant::now());
                        }
                        // The network is behind: skip this frame, the next one supersedes it.
                        Err(mpsc::error::TrySendError::Full(_)) => {}
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
                Err(err) => tracing::warn!(error = %err, "frame not encoded"),
            }
        }
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}

/// Applies input in order. Mouse packets carry a button and its state; one that repeats the
/// button's current state is a move only.
fn input_loop(display: &str, mut events: mpsc::Receiver<Packet>) {
    let mut sink = match XTestInput::connect(display) {
        Ok(sink) => sink,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "remote control unavailable");
            while events.blocking_recv().is_some() {}
            return;
        }
    };
    let mut pressed = [false; 3];
    while let Some(event) = events.blocking_recv() {
        let result = match event {
            Packet::Mouse(MouseEvent { x, y, button, down }) => {
                let (slot, button) = match button {
                    MouseButton::Left => (0, Button::Left),
                    MouseButton::Right => (1, Button::Right),
                    MouseButton::Middle => (2, Button::Middle),
                };
                let transition = (pressed[slot] != down).then_some((button, down));
                pressed[slot] = down;
                sink.mouse(x, y, transition)
            }
            Packet::Keyboard(KeyEvent { key, down }) => sink.key(key, down),
            Packet::Frame(_) | Packet::Control(_) => Ok(()),
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "input not applied");
        }
    }
}
