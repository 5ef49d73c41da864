//! Support sessions (the service behind `/api/sessions` and the `/ws/…` routes): creating them
//! with a fresh code and a bound UDP port, listing, closing, info by code, join tickets,
//! expiry of pending sessions, code-guess limiting, and the live state of each running
//! session (its relay, counters, frames for browser bridges, and who to tell when it closes).
//!
//! - `codes`: code generation and the `CodeGuard` (failed look-ups per address and globally).
//! - `relay`: the sans-IO relay core; `shell`: its tokio loop around the session's socket.

pub mod codes;
pub mod relay;
pub mod shell;

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use rand::rngs::OsRng;
use rand::RngCore;
use skyshift_proto::desk::Packet;
use skyshift_proto::sessions::{
    CreateSessionRequest, EmailStatus, JoinTicket, Session, SessionInfo, SessionStats,
    SessionStatus,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use self::codes::{CodeGuard, Limited};
use self::shell::{BridgeFrame, Command, Counters, ShellContext};
use crate::audit::{self, Actor, Event};
use crate::auth::ClientAddr;
use crate::config::{Config, PortRange};
use crate::error::{ApiError, ApiResult};
use crate::store::{from_micros, FinalCounters, NewSession, SessionRecord, StoreError, UserRecord};
use crate::{mail, AppState};

/// Audit action names of this module.
pub mod action {
    pub const OPEN: &str = "session.open";
    pub const CLOSE: &str = "session.close";
    pub const EXPIRE: &str = "session.expire";
}

/// How long a viewer's join ticket is good for.
pub const TICKET_TTL: Duration = Duration::from_secs(60);
/// A code is not issued again for this long after it was issued or closed.
const CODE_REST: chrono::TimeDelta = chrono::TimeDelta::days(1);
/// Sessions a list shows.
const LIST_LIMIT: i64 = 100;

/// A session running on this replica.
pub struct LiveSession {
    pub id: i64,
    pub code: String,
    pub port: u16,
    pub tech_user_id: String,
    pub counters: Arc<Counters>,
    commands: mpsc::Sender<Command>,
    frames: watch::Sender<Option<BridgeFrame>>,
    closed: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl LiveSession {
    /// Complete frames for a browser bridge: the newest only (a slow reader skips frames).
    pub fn frames(&self) -> watch::Receiver<Option<BridgeFrame>> {
        self.frames.subscribe()
    }

    /// Becomes `true` when the session closes.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// Browser input for the client; dropped if the relay is behind (input is not queued
    /// without bound).
    pub fn send_input(&self, packet: Packet) {
        let _ = self.commands.try_send(Command::Input(packet));
    }
}

/// The service's state: live sessions, ports in use, the code guard.
pub struct Desk {
    /// This server process's name in `sessions.replica` (the data dir's `replica-id`).
    replica: String,
    ports: PortRange,
    bind: IpAddr,
    peer_timeout: Duration,
    live: Mutex<HashMap<i64, Arc<LiveSession>>>,
    ports_in_use: Mutex<BTreeSet<u16>>,
    pub guard: Arc<CodeGuard>,
    /// One creation at a time on this replica, so the per-user cap holds.
    create_lock: tokio::sync::Mutex<()>,
}

impl Desk {
    /// Loads (or creates) `<data-dir>/replica-id`, which names the sessions this server relays.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let path = config.data_dir.join("replica-id");
        let replica = match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => text.trim().to_owned(),
            _ => {
                let id = uuid::Uuid::new_v4().to_string();
                std::fs::write(&path, format!("{id}\n"))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                id
            }
        };
        Ok(Self {
            replica,
            ports: config.udp_port_range,
            bind: config.bind,
            peer_timeout: config.peer_timeout,
            live: Mutex::new(HashMap::new()),
            ports_in_use: Mutex::new(BTreeSet::new()),
            guard: Arc::new(CodeGuard::new(
                config.code_guess_addr_limit,
                config.code_guess_global_limit,
                Instant::now(),
            )),
            create_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn live(&self, id: i64) -> Option<Arc<LiveSession>> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Binds one given port (a session's own, after a restart).
    fn bind_exact(&self, port: u16) -> Option<std::net::UdpSocket> {
        let mut in_use = self.ports_in_use.lock().unwrap_or_else(|e| e.into_inner());
        if in_use.contains(&port) {
            return None;
        }
        let socket = bind_udp(SocketAddr::new(self.bind, port)).ok()?;
        in_use.insert(port);
        Some(socket)
    }

    /// Binds the lowest free port of the range.
    fn bind_port(&self) -> Option<(u16, std::net::UdpSocket)> {
        let mut in_use = self.ports_in_use.lock().unwrap_or_else(|e| e.into_inner());
        for port in self.ports.ports() {
            if in_use.contains(&port) {
                continue;
            }
            // Taken by another program (or another replica on this host): try the next.
            let Ok(socket) = bind_udp(SocketAddr::new(self.bind, port)) else {
                continue;
            };
            in_use.insert(port);
            return Some((port, socket));
        }
        None
    }

    fn release_port(&self, port: u16) {
        self.ports_in_use
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&port);
    }

    /// Counts a failed code look-up from `addr`.
    pub fn record_failed_lookup(&self, addr: ClientAddr) {
        self.guard.record_failure(addr.0, Instant::now());
    }

    /// 429 while `addr` (or everyone) has failed too many look-ups.
    pub fn check_lookup(&self, addr: ClientAddr) -> ApiResult<()> {
        self.guard.check(addr.0, Instant::now()).map_err(|limited| {
            let Limited {
                retry_after,
                global,
            } = limited;
            // `CodeGuard` logs when a limit is reached; each refusal only at debug (no flood).
            tracing::debug!(client = ?addr.0, global, "session code look-up refused: limit reached");
            ApiError::TooManyRequests {
                detail: "Too many failed session code look-ups; try again later".into(),
                retry_after_secs: retry_after.as_secs(),
            }
        })
    }
}

/// Socket buffers asked for a session's UDP socket. One 1080p JPEG is 100–200 datagrams sent in
/// a burst; the kernel's default (~208 KiB, about 90 datagrams) can drop part of one frame while
/// the relay is busy. The kernel caps the request at `net.core.rmem_max`/`wmem_max`: raise those
/// (e.g. `sysctl -w net.core.rmem_max=4194304`) to get the full size.
const UDP_BUFFER: usize = 4 * 1024 * 1024;

/// Binds a non-blocking UDP socket with large buffers (best effort).
fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = socket.set_recv_buffer_size(UDP_BUFFER);
    let _ = socket.set_send_buffer_size(UDP_BUFFER);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn stats_of(record: &SessionRecord, live: Option<&LiveSession>) -> SessionStats {
    match live {
        Some(live) => {
            let c = &live.counters;
            SessionStats {
                frames: c.frames.load(Ordering::Relaxed),
                bytes: c.bytes.load(Ordering::Relaxed),
                dropped_packets: c.dropped_packets.load(Ordering::Relaxed),
                viewers: c.udp_viewers.load(Ordering::Relaxed)
                    + c.bridge_viewers.load(Ordering::Relaxed),
            }
        }
        None => SessionStats {
            frames: record.frames.max(0) as u64,
            bytes: record.bytes.max(0) as u64,
            dropped_packets: record.dropped_packets.max(0) as u64,
            viewers: 0,
        },
    }
}

fn to_api(state: &AppState, record: &SessionRecord) -> Session {
    let live = state.desk.live(record.id);
    Session {
        id: record.id,
        session_code: record.code.clone(),
        tech_user_id: record.tech_user_id.clone(),
        customer_name: record.customer_name.clone(),
        customer_email: record.customer_email.clone(),
        status: SessionStatus::parse(&record.status),
        udp_port: u16::try_from(record.udp_port).unwrap_or_default(),
        created_at: from_micros(record.created_at),
        closed_at: record.closed_at.map(from_micros),
        email_status: record.email_status.as_deref().and_then(EmailStatus::parse),
        stats: stats_of(record, live.as_deref()),
    }
}

fn clean(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Opens a session for `user`: checks the cap, binds a port, issues a code, starts the relay,
/// records it, and mails the code in the background if asked. `join_host` is the host the
/// customer is told to use.
pub async fn create(
    state: &AppState,
    user: &UserRecord,
    addr: ClientAddr,
    request: CreateSessionRequest,
    join_host: &str,
) -> ApiResult<Session> {
    let customer_name = clean(request.customer_name);
    let customer_email = clean(request.customer_email);
    if customer_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > 200)
    {
        return Err(ApiError::Unprocessable(
            "customer_name is too long (200 characters at most)".into(),
        ));
    }
    if let Some(email) = &customer_email {
        if !mail::is_address(email) {
            return Err(ApiError::Unprocessable(
                "customer_email is not an email address".into(),
            ));
        }
    }
    let desk = &state.desk;
    let _one_at_a_time = desk.create_lock.lock().await;
    let open = state.store.count_open_sessions(&user.id).await?;
    if open >= user.max_sessions {
        return Err(ApiError::TooManyRequests {
            detail: format!(
                "Maximum concurrent sessions reached ({}); close one first",
                user.max_sessions
            ),
            retry_after_secs: 60,
        });
    }
    let (port, socket) = desk.bind_port().ok_or_else(|| {
        tracing::error!(range = ?desk.ports, "no free UDP port for a new session");
        ApiError::ServerError(format!(
            "Failed to allocate UDP port: all ports {}-{} are in use",
            desk.ports.first, desk.ports.last
        ))
    })?;
    let record =
        match insert_with_fresh_code(state, user, &customer_name, &customer_email, port).await {
            Ok(record) => record,
            Err(err) => {
                drop(socket);
                desk.release_port(port);
                return Err(err);
            }
        };
    start_live(state, &record, port, socket)?;
    let actor = Actor::user(user, addr);
    let detail = format!("port {port}");
    audit::record(
        &state.store,
        &actor,
        Event::ok(action::OPEN, Some(&record.id.to_string())).detail(&detail),
    )
    .await?;
    tracing::info!(session = record.id, port, user = %user.username, "session opened");
    if let Some(email) = &customer_email {
        mail::spawn_session_mail(
            state.clone(),
            record.id,
            email.clone(),
            record.code.clone(),
            join_host.to_owned(),
        );
    }
    Ok(to_api(state, &record))
}

async fn insert_with_fresh_code(
    state: &AppState,
    user: &UserRecord,
    customer_name: &Option<String>,
    customer_email: &Option<String>,
    port: u16,
) -> ApiResult<SessionRecord> {
    for _ in 0..32 {
        let code = codes::generate_code();
        let now = Utc::now();
        if state
            .store
            .session_code_in_use(&code, now - CODE_REST)
            .await?
        {
            continue;
        }
        let inserted = state
            .store
            .insert_session(NewSession {
                code: &code,
                tech_user_id: &user.id,
                customer_name: customer_name.as_deref(),
                customer_email: customer_email.as_deref(),
                udp_port: port,
                email_status: customer_email
                    .as_ref()
                    .map(|_| EmailStatus::Pending.as_str()),
                created_at: now,
                replica: &state.desk.replica,
            })
            .await;
        match inserted {
            Ok(record) => return Ok(record),
            // Another replica took the code between the check and the insert.
            Err(StoreError::Duplicate(_)) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "no free session code after 32 tries"
    )))
}

fn start_live(
    state: &AppState,
    record: &SessionRecord,
    port: u16,
    socket: std::net::UdpSocket,
) -> ApiResult<()> {
    let desk = &state.desk;
    let socket = tokio::net::UdpSocket::from_std(socket)
        .context("cannot register the session's UDP socket")?;
    let (commands, command_rx) = mpsc::channel(256);
    let (frames, _) = watch::channel(None);
    let (closed, _) = watch::channel(false);
    let counters = Arc::new(Counters::default());
    let relay = relay::Relay::new(record.id, record.code.clone(), desk.peer_timeout);
    let ctx = ShellContext {
        session_id: record.id,
        store: state.store.clone(),
        guard: desk.guard.clone(),
        counters: counters.clone(),
        frames: frames.clone(),
    };
    let task = tokio::spawn(shell::run(socket, relay, command_rx, ctx));
    let live = Arc::new(LiveSession {
        id: record.id,
        code: record.code.clone(),
        port,
        tech_user_id: record.tech_user_id.clone(),
        counters,
        commands,
        frames,
        closed,
        task: Mutex::new(Some(task)),
    });
    desk.live
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(record.id, live);
    Ok(())
}

/// The newest 100 sessions: the user's own, or everyone's for an admin.
pub async fn list(state: &AppState, user: &UserRecord) -> ApiResult<Vec<Session>> {
    let owner = (!user.is_admin()).then_some(user.id.as_str());
    let records = state.store.list_sessions(owner, LIST_LIMIT).await?;
    Ok(records.iter().map(|r| to_api(state, r)).collect())
}

/// A session the user may act on (theirs, or any for an admin).
async fn owned(state: &AppState, user: &UserRecord, id: i64) -> ApiResult<SessionRecord> {
    let record = state
        .store
        .session_by_id(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Session not found".into()))?;
    if record.tech_user_id != user.id && !user.is_admin() {
        return Err(ApiError::Forbidden(
            "Access denied: you can only act on your own sessions".into(),
        ));
    }
    Ok(record)
}

/// Closes a session on request of its owner or an admin.
pub async fn close(
    state: &AppState,
    user: &UserRecord,
    addr: ClientAddr,
    id: i64,
) -> ApiResult<()> {
    let record = owned(state, user, id).await?;
    if record.is_closed() {
        return Ok(());
    }
    shut_down(state, id, &Actor::user(user, addr), action::CLOSE).await
}

/// Marks the session closed, stops its relay (telling peers and WebSockets), frees the port
/// before returning, and records who did it.
async fn shut_down(state: &AppState, id: i64, actor: &Actor, action: &str) -> ApiResult<()> {
    let live = state
        .desk
        .live
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    let counters = live
        .as_deref()
        .map(|live| {
            let c = &live.counters;
            FinalCounters {
                frames: c.frames.load(Ordering::Relaxed),
                bytes: c.bytes.load(Ordering::Relaxed),
                dropped_packets: c.dropped_packets.load(Ordering::Relaxed),
            }
        })
        .unwrap_or_default();
    let closed_now = state.store.close_session(id, Utc::now(), counters).await?;
    if let Some(live) = live {
        stop_live(state, &live).await;
    }
    if closed_now {
        audit::record(
            &state.store,
            actor,
            Event::ok(action, Some(&id.to_string())),
        )
        .await?;
        tracing::info!(session = id, action, "session closed");
    }
    Ok(())
}

/// Tells the session's WebSockets and peers it is over, waits for the relay to drop its socket,
/// and frees the port.
async fn stop_live(state: &AppState, live: &LiveSession) {
    live.closed.send_replace(true);
    let _ = live.commands.send(Command::Close).await;
    let task = live.task.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(task) = task {
        if tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .is_err()
        {
            tracing::warn!(session = live.id, "relay did not stop within 2 s");
        }
    }
    state.desk.release_port(live.port);
}

/// Stops relays of sessions another replica closed (a DELETE or the expiry that ran there).
async fn reap_closed_elsewhere(state: &AppState) -> anyhow::Result<()> {
    let ids: Vec<i64> = state
        .desk
        .live
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .copied()
        .collect();
    for id in ids {
        let closed = match state.store.session_by_id(id).await? {
            Some(record) => record.is_closed(),
            None => true,
        };
        if !closed {
            continue;
        }
        let live = state
            .desk
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(live) = live {
            tracing::info!(
                session = id,
                "stopping the relay of a session closed elsewhere"
            );
            stop_live(state, &live).await;
        }
    }
    Ok(())
}

/// A session by code for the client: 404 unknown (a failed look-up), 410 closed, 429 while the
/// caller has failed too often.
pub async fn lookup(state: &AppState, addr: ClientAddr, code: &str) -> ApiResult<SessionRecord> {
    state.desk.check_lookup(addr)?;
    let record = if codes::is_code(code) {
        state.store.session_by_code(code).await?
    } else {
        None
    };
    let Some(record) = record else {
        state.desk.record_failed_lookup(addr);
        return Err(ApiError::NotFound("Session not found".into()));
    };
    if record.is_closed() {
        return Err(ApiError::Gone("Session has been closed".into()));
    }
    Ok(record)
}

pub async fn info(
    state: &AppState,
    addr: ClientAddr,
    code: &str,
    request_host: Option<&str>,
) -> ApiResult<SessionInfo> {
    let record = lookup(state, addr, code).await?;
    let udp_host = state
        .config
        .public_host
        .clone()
        .or_else(|| request_host.map(host_without_port))
        .unwrap_or_else(|| state.config.bind.to_string());
    Ok(SessionInfo {
        session_code: record.code,
        udp_port: u16::try_from(record.udp_port).unwrap_or_default(),
        udp_host,
        status: SessionStatus::parse(&record.status),
    })
}

/// `example.com:8080` → `example.com`, `[::1]:80` → `::1`.
pub fn host_without_port(host: &str) -> String {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_owned();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name.to_owned()
        }
        _ => host.to_owned(),
    }
}

/// A single-use ticket for one UDP viewer join, good for a minute.
pub async fn join_ticket(state: &AppState, user: &UserRecord, id: i64) -> ApiResult<JoinTicket> {
    let record = owned(state, user, id).await?;
    if record.is_closed() {
        return Err(ApiError::Gone("Session has been closed".into()));
    }
    let live = state
        .desk
        .live(id)
        .ok_or_else(|| ApiError::Conflict("Session is not running on this server".into()))?;
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let ticket = hex::encode(bytes);
    live.commands
        .send(Command::AddTicket(
            ticket.clone(),
            Instant::now() + TICKET_TTL,
        ))
        .await
        .map_err(|_| ApiError::Conflict("Session is closing".into()))?;
    Ok(JoinTicket {
        ticket,
        expires_in: TICKET_TTL.as_secs(),
    })
}

/// For the browser bridge: the live session a user may watch.
pub async fn viewable(state: &AppState, user: &UserRecord, id: i64) -> ApiResult<Arc<LiveSession>> {
    let record = owned(state, user, id).await?;
    if record.is_closed() {
        return Err(ApiError::Gone("Session has been closed".into()));
    }
    state
        .desk
        .live(id)
        .ok_or_else(|| ApiError::Conflict("Session is not running on this server".into()))
}

/// May `user` still watch session `live`? (Re-checked by the browser bridge.)
pub fn may_view(user: &UserRecord, live: &LiveSession) -> bool {
    user.is_admin() || user.id == live.tech_user_id
}

/// The signaling WebSocket connected: the session is `active`.
pub async fn signal_connected(state: &AppState, id: i64) {
    if let Some(live) = state.desk.live(id) {
        live.counters.signal_sockets.fetch_add(1, Ordering::Relaxed);
    }
    if let Err(err) = state.store.set_session_status(id, "active").await {
        tracing::warn!(session = id, error = %err, "cannot mark the session active");
    }
}

/// A signaling WebSocket went away: `disconnected` once none is left.
pub async fn signal_disconnected(state: &AppState, id: i64) {
    let remaining = match state.desk.live(id) {
        // Saturating: a socket opened before the relay was restored was never counted.
        Some(live) => live
            .counters
            .signal_sockets
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            })
            .map_or(0, |before| before.saturating_sub(1)),
        None => 0,
    };
    if remaining == 0 {
        if let Err(err) = state.store.set_session_status(id, "disconnected").await {
            tracing::warn!(session = id, error = %err, "cannot mark the session disconnected");
        }
    }
}

/// Closes pending sessions older than the expiry; returns how many.
pub async fn expire_pending(state: &AppState) -> anyhow::Result<usize> {
    let expiry = chrono::TimeDelta::from_std(state.config.session_expiry)
        .unwrap_or(chrono::TimeDelta::hours(1));
    let stale = state
        .store
        .stale_pending_sessions(Utc::now() - expiry)
        .await?;
    for record in &stale {
        shut_down(state, record.id, &Actor::system(), action::EXPIRE)
            .await
            .map_err(|err| anyhow::anyhow!("cannot expire session {}: {err}", record.id))?;
    }
    Ok(stale.len())
}

/// After a restart: starts the relays of this replica's open sessions again on their own ports,
/// so codes and ports the customers were given keep working. A session whose port cannot be
/// bound any more is closed.
pub async fn restore(state: &AppState) -> anyhow::Result<()> {
    let open = state
        .store
        .open_sessions_of_replica(&state.desk.replica)
        .await?;
    for record in open {
        if state.desk.live(record.id).is_some() {
            continue;
        }
        let port = u16::try_from(record.udp_port).unwrap_or_default();
        match state.desk.bind_exact(port) {
            Some(socket) => {
                start_live(state, &record, port, socket).map_err(|err| anyhow::anyhow!("{err}"))?;
                tracing::info!(session = record.id, port, "session relay restarted");
            }
            None => {
                tracing::warn!(
                    session = record.id,
                    port,
                    "cannot bind the session's port again: closing it"
                );
                shut_down(state, record.id, &Actor::system(), action::CLOSE)
                    .await
                    .map_err(|err| anyhow::anyhow!("{err}"))?;
            }
        }
    }
    Ok(())
}

/// Runs `expire_pending` (and stops relays of sessions closed on another replica) forever, a
/// few times per expiry period (at most every 30 s).
pub fn spawn_expiry(state: AppState) -> JoinHandle<()> {
    let every = (state.config.session_expiry / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(30));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match expire_pending(&state).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "expired pending sessions"),
                Err(err) => tracing::warn!(error = format!("{err:#}"), "session expiry failed"),
            }
            if let Err(err) = reap_closed_elsewhere(&state).await {
                tracing::warn!(error = format!("{err:#}"), "cannot check live sessions");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "::1");
        assert_eq!(host_without_port("10.0.0.1:80"), "10.0.0.1");
        assert_eq!(host_without_port("::1"), "::1");
    }
}
