//! The thin tokio shell around one session's `Relay`: owns the session's UDP socket, feeds the
//! core datagrams, commands (tickets, browser input, close) and timeouts, sends what it returns,
//! reassembles frames for browser bridges, and publishes the counters. Dropping out of `run`
//! drops the socket, which frees the port.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use skyshift_proto::desk::{Packet, Reassembler};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use super::codes::CodeGuard;
use super::relay::{Relay, RelayEvent, RelayStats};
use crate::store::Store;

/// What the rest of the server asks of a running relay.
pub enum Command {
    /// A viewer may join with this ticket until the instant.
    AddTicket(String, Instant),
    /// Mouse or keyboard from a browser, for the client.
    Input(Packet),
    /// Tell the peers, stop, and free the port.
    Close,
}

/// A complete frame for browser bridges; `seq` counts frames published.
#[derive(Debug, Clone)]
pub struct BridgeFrame {
    pub seq: u64,
    pub frame_id: u64,
    pub jpeg: Bytes,
}

/// Counters readable while the session runs.
#[derive(Debug, Default)]
pub struct Counters {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub dropped_packets: AtomicU64,
    pub udp_viewers: AtomicU64,
    pub bridge_viewers: AtomicU64,
    /// Signaling WebSockets open for this session.
    pub signal_sockets: AtomicU64,
}

impl Counters {
    fn publish(&self, stats: RelayStats) {
        self.frames.store(stats.frames, Ordering::Relaxed);
        self.bytes.store(stats.bytes, Ordering::Relaxed);
        self.dropped_packets
            .store(stats.dropped_packets, Ordering::Relaxed);
        self.udp_viewers.store(stats.viewers, Ordering::Relaxed);
    }
}

pub struct ShellContext {
    pub session_id: i64,
    pub store: Store,
    pub guard: Arc<CodeGuard>,
    pub counters: Arc<Counters>,
    pub frames: watch::Sender<Option<BridgeFrame>>,
}

/// Runs the relay until `Command::Close` (or every sender is gone).
pub async fn run(
    socket: UdpSocket,
    mut relay: Relay,
    mut commands: mpsc::Receiver<Command>,
    ctx: ShellContext,
) {
    // The largest UDP payload, so no datagram is truncated into a different packet.
    let mut buf = vec![0u8; 65_536];
    let mut reassembler = Reassembler::new();
    let mut frame_seq = 0u64;
    loop {
        let wake = relay
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let mut closing = false;
        tokio::select! {
            // Commands first: a join ticket is queued before the API hands it out, so it must be
            // in the relay before the viewer's hello (already waiting on the socket) is read.
            biased;
            command = commands.recv() => match command {
                Some(Command::AddTicket(ticket, expires)) => relay.add_ticket(ticket, expires),
                Some(Command::Input(packet)) => relay.input_from_bridge(&packet),
                Some(Command::Close) | None => {
                    relay.close();
                    closing = true;
                }
            },
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, from)) => {
                    // Reassemble only while a browser watches.
                    relay.set_want_frames(ctx.frames.receiver_count() > 0);
                    let guard = &ctx.guard;
                    relay.handle_datagram(Instant::now(), from, &buf[..len], &mut |ip| {
                        guard.check(Some(ip), Instant::now()).is_ok()
                    });
                }
                // e.g. ICMP port unreachable reported on a later receive: not fatal.
                Err(err) => tracing::debug!(session = ctx.session_id, error = %err, "UDP receive failed"),
            },
            () = tokio::time::sleep_until(wake) => relay.handle_timeout(Instant::now()),
        }
        while let Some(transmit) = relay.poll_transmit() {
            send(&socket, &transmit.payload, transmit.to).await;
        }
        while let Some(event) = relay.poll_event() {
            match event {
                RelayEvent::FrameChunk(chunk) => {
                    if let Some(frame) = reassembler.push(chunk) {
                        frame_seq += 1;
                        ctx.frames.send_replace(Some(BridgeFrame {
                            seq: frame_seq,
                            frame_id: frame.frame_id,
                            jpeg: frame.image.into(),
                        }));
                    }
                }
                RelayEvent::JoinRefused(ip) => {
                    tracing::info!(session = ctx.session_id, client = %ip, "UDP join refused");
                    ctx.guard.record_failure(Some(ip), Instant::now());
                }
                RelayEvent::ClientJoined(addr) => {
                    tracing::info!(session = ctx.session_id, client = %addr, "client joined over UDP");
                    set_status(&ctx, "active");
                }
                RelayEvent::ClientLeft(addr) => {
                    tracing::info!(session = ctx.session_id, client = %addr, "client left UDP");
                    if !closing && ctx.counters.signal_sockets.load(Ordering::Relaxed) == 0 {
                        set_status(&ctx, "disconnected");
                    }
                }
                RelayEvent::ViewerJoined(addr) => {
                    tracing::info!(session = ctx.session_id, viewer = %addr, "viewer joined over UDP");
                }
                RelayEvent::ViewerLeft(addr) => {
                    tracing::info!(session = ctx.session_id, viewer = %addr, "viewer left UDP");
                }
            }
        }
        ctx.counters.publish(relay.stats());
        if closing {
            return;
        }
    }
}

async fn send(socket: &UdpSocket, payload: &[u8], to: SocketAddr) {
    if let Err(err) = socket.send_to(payload, to).await {
        tracing::debug!(to = %to, error = %err, "UDP send failed");
    }
}

fn set_status(ctx: &ShellContext, status: &'static str) {
    let store = ctx.store.clone();
    let id = ctx.session_id;
    tokio::spawn(async move {
        if let Err(err) = store.set_session_status(id, status).await {
            tracing::warn!(session = id, error = %err, "cannot update the session status");
        }
    });
}
