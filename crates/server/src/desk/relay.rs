//! The relay's rules for one session, as a core that never touches a socket (sans-IO, like
//! firezone's relay): feed it datagrams, the peer's address and `now`; read back the datagrams
//! to send (`poll_transmit`), what happened (`poll_event`) and when to wake (`poll_timeout`).
//!
//! - A peer joins with a control `hello`: the client with the session code, a viewer with a
//!   single-use join ticket. Anything else from an address that has not joined is dropped and
//!   counted.
//! - Frames go from the client to every viewer; mouse and keyboard from viewers to the client;
//!   other control messages both ways. `ping` is answered with `pong`, `bye` leaves.
//! - Peers silent for longer than `peer_timeout` are forgotten.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use skyshift_proto::desk::{Control, FrameChunk, Join, Packet, PeerRole};

use super::codes::same_secret;

/// Viewers one session relays to; bounds the fan-out of one client's frames.
pub const MAX_VIEWERS: usize = 16;

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub payload: Bytes,
}

/// What happened, for the shell to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    ClientJoined(SocketAddr),
    /// The client said `bye`, went silent, or was replaced by a new client address.
    ClientLeft(SocketAddr),
    ViewerJoined(SocketAddr),
    ViewerLeft(SocketAddr),
    /// A hello with a wrong code or ticket: counts as a failed code look-up.
    JoinRefused(IpAddr),
    /// A frame chunk from the client, only while `want_frames` is set (for the browser bridge).
    FrameChunk(FrameChunk),
}

/// Counters as the session's JSON shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Distinct frames the client sent.
    pub frames: u64,
    /// Bytes of frame packets the client sent.
    pub bytes: u64,
    /// Packets dropped: malformed, from strangers, or of a kind the sender may not send.
    pub dropped_packets: u64,
    pub viewers: u64,
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    addr: SocketAddr,
    last_seen: Instant,
}

pub struct Relay {
    session_id: i64,
    code: String,
    peer_timeout: Duration,
    client: Option<Peer>,
    viewers: HashMap<SocketAddr, Peer>,
    /// Unused join tickets and when each expires.
    tickets: HashMap<String, Instant>,
    last_frame_id: Option<u64>,
    want_frames: bool,
    stats: RelayStats,
    transmits: VecDeque<Transmit>,
    events: VecDeque<RelayEvent>,
}

impl Relay {
    pub fn new(session_id: i64, code: String, peer_timeout: Duration) -> Self {
        Self {
            session_id,
            code,
            peer_timeout,
            client: None,
            viewers: HashMap::new(),
            tickets: HashMap::new(),
            last_frame_id: None,
            want_frames: false,
            stats: RelayStats::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn stats(&self) -> RelayStats {
        RelayStats {
            viewers: self.viewers.len() as u64,
            ..self.stats
        }
    }

    pub fn client(&self) -> Option<SocketAddr> {
        self.client.map(|peer| peer.addr)
    }

    /// Whether frame chunks should also come out as events (someone watches in a browser).
    pub fn set_want_frames(&mut self, want: bool) {
        self.want_frames = want;
    }

    /// A single-use ticket a viewer may join with until `expires`.
    pub fn add_ticket(&mut self, ticket: String, expires: Instant) {
        self.tickets.insert(ticket, expires);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let peers = self
            .client
            .iter()
            .chain(self.viewers.values())
            .map(|peer| peer.last_seen + self.peer_timeout);
        peers.chain(self.tickets.values().copied()).min()
    }

    /// Forgets silent peers and expired tickets.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timeout = self.peer_timeout;
        let silent = |peer: &Peer| now.duration_since(peer.last_seen) >= timeout;
        if let Some(client) = self.client.filter(silent) {
            self.client = None;
            self.events.push_back(RelayEvent::ClientLeft(client.addr));
        }
        let gone: Vec<SocketAddr> = self
            .viewers
            .values()
            .filter(|peer| silent(peer))
            .map(|peer| peer.addr)
            .collect();
        for addr in gone {
            self.viewers.remove(&addr);
            self.events.push_back(RelayEvent::ViewerLeft(addr));
        }
        self.tickets.retain(|_, expires| *expires > now);
    }

    /// One datagram from `from`. `may_join` says whether this address may still try a hello
    /// (the code-guess limit); it is asked only for hellos from addresses not yet joined.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        may_join: &mut dyn FnMut(IpAddr) -> bool,
    ) {
        let Ok(packet) = Packet::decode(datagram) else {
            self.stats.dropped_packets += 1;
            return;
        };
        let role = self.role_of(from);
        if let Packet::Control(json) = &packet {
            match (Control::parse(json), role) {
                (Some(Control::Hello { join }), _) => {
                    return self.hello(now, from, join, may_join);
                }
                (Some(Control::Ping), Some(_)) => {
                    self.touch(from, now);
                    self.send(from, Packet::control(&Control::Pong).encode().into());
                    return;
                }
                (Some(Control::Bye), Some(role)) => {
                    self.forget(from, role);
                    return;
                }
                _ => {}
            }
        }
        let Some(role) = role else {
            self.stats.dropped_packets += 1;
            return;
        };
        self.touch(from, now);
        match (role, packet) {
            (PeerRole::Client, Packet::Frame(chunk)) => {
                if self.last_frame_id != Some(chunk.frame_id) {
                    self.last_frame_id = Some(chunk.frame_id);
                    self.stats.frames += 1;
                }
                self.stats.bytes += datagram.len() as u64;
                self.send_to_viewers(Bytes::copy_from_slice(datagram));
                if self.want_frames {
                    self.events.push_back(RelayEvent::FrameChunk(chunk));
                }
            }
            (PeerRole::Client, Packet::Control(_)) => {
                self.send_to_viewers(Bytes::copy_from_slice(datagram));
            }
            (PeerRole::Viewer, Packet::Mouse(_) | Packet::Keyboard(_) | Packet::Control(_)) => {
                self.send_to_client(Bytes::copy_from_slice(datagram));
            }
            _ => self.stats.dropped_packets += 1,
        }
    }

    /// Input from the browser bridge, for the client.
    pub fn input_from_bridge(&mut self, packet: &Packet) {
        if matches!(packet, Packet::Mouse(_) | Packet::Keyboard(_)) {
            self.send_to_client(packet.encode().into());
        }
    }

    /// Tells every peer the session is over and forgets them.
    pub fn close(&mut self) {
        let closed: Bytes = Packet::control(&Control::Closed).encode().into();
        let peers: Vec<SocketAddr> = self
            .client
            .iter()
            .chain(self.viewers.values())
            .map(|peer| peer.addr)
            .collect();
        for addr in peers {
            self.send(addr, closed.clone());
        }
        self.client = None;
        self.viewers.clear();
        self.tickets.clear();
    }

    fn role_of(&self, addr: SocketAddr) -> Option<PeerRole> {
        if self.client.is_some_and(|peer| peer.addr == addr) {
            Some(PeerRole::Client)
        } else if self.viewers.contains_key(&addr) {
            Some(PeerRole::Viewer)
        } else {
            None
        }
    }

    fn touch(&mut self, addr: SocketAddr, now: Instant) {
        match &mut self.client {
            Some(peer) if peer.addr == addr => peer.last_seen = now,
            _ => {
                if let Some(peer) = self.viewers.get_mut(&addr) {
                    peer.last_seen = now;
                }
            }
        }
    }

    fn forget(&mut self, addr: SocketAddr, role: PeerRole) {
        match role {
            PeerRole::Client => {
                self.client = None;
                self.events.push_back(RelayEvent::ClientLeft(addr));
            }
            PeerRole::Viewer => {
                self.viewers.remove(&addr);
                self.events.push_back(RelayEvent::ViewerLeft(addr));
            }
        }
    }

    fn hello(
        &mut self,
        now: Instant,
        from: SocketAddr,
        join: Join,
        may_join: &mut dyn FnMut(IpAddr) -> bool,
    ) {
        let role = match join {
            Join::Client { .. } => PeerRole::Client,
            Join::Viewer { .. } => PeerRole::Viewer,
        };
        // A repeated hello (its ack was lost) is acknowledged again.
        if self.role_of(from) == Some(role) {
            self.touch(from, now);
            self.ack(from, role);
            return;
        }
        if !may_join(from.ip()) {
            self.stats.dropped_packets += 1;
            self.refuse(from, "too many failed attempts; wait a minute");
            return;
        }
        match join {
            Join::Client { code } => {
                if !same_secret(&code, &self.code) {
                    self.events.push_back(RelayEvent::JoinRefused(from.ip()));
                    self.refuse(from, "unknown session code");
                    return;
                }
                if let Some(old) = self.client.take() {
                    self.events.push_back(RelayEvent::ClientLeft(old.addr));
                }
                self.viewers.remove(&from);
                self.client = Some(Peer {
                    addr: from,
                    last_seen: now,
                });
                self.events.push_back(RelayEvent::ClientJoined(from));
            }
            Join::Viewer { ticket } => {
                let valid = self
                    .tickets
                    .remove(&ticket)
                    .is_some_and(|expires| expires > now);
                if !valid {
                    self.events.push_back(RelayEvent::JoinRefused(from.ip()));
                    self.refuse(from, "invalid or expired join ticket");
                    return;
                }
                if self.viewers.len() >= MAX_VIEWERS {
                    self.refuse(from, "too many viewers in this session");
                    return;
                }
                if self.client.is_some_and(|peer| peer.addr == from) {
                    self.client = None;
                    self.events.push_back(RelayEvent::ClientLeft(from));
                }
                self.viewers.insert(
                    from,
                    Peer {
                        addr: from,
                        last_seen: now,
                    },
                );
                self.events.push_back(RelayEvent::ViewerJoined(from));
            }
        }
        self.ack(from, role);
    }

    fn ack(&mut self, to: SocketAddr, role: PeerRole) {
        let ack = Control::HelloAck {
            role,
            session_id: self.session_id,
        };
        self.send(to, Packet::control(&ack).encode().into());
    }

    fn refuse(&mut self, to: SocketAddr, message: &str) {
        let error = Control::Error {
            message: message.into(),
        };
        self.send(to, Packet::control(&error).encode().into());
    }

    fn send(&mut self, to: SocketAddr, payload: Bytes) {
        self.transmits.push_back(Transmit { to, payload });
    }

    fn send_to_viewers(&mut self, payload: Bytes) {
        for addr in self.viewers.keys() {
            self.transmits.push_back(Transmit {
                to: *addr,
                payload: payload.clone(),
            });
        }
    }

    fn send_to_client(&mut self, payload: Bytes) {
        if let Some(client) = self.client {
            self.send(client.addr, payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use skyshift_proto::desk::{chunk_frame, KeyEvent, MouseButton, MouseEvent};

    use super::*;

    const CODE: &str = "123456789";
    const TIMEOUT: Duration = Duration::from_secs(30);

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    struct Harness {
        relay: Relay,
        now: Instant,
    }

    impl Harness {
        fn new() -> Self {
            Self {
                relay: Relay::new(7, CODE.into(), TIMEOUT),
                now: Instant::now(),
            }
        }

        fn feed(&mut self, from: SocketAddr, packet: Packet) -> Vec<Transmit> {
            self.relay
                .handle_datagram(self.now, from, &packet.encode(), &mut |_| true);
            self.drain()
        }

        fn control(&mut self, from: SocketAddr, control: Control) -> Vec<Transmit> {
            self.feed(from, Packet::control(&control))
        }

        fn drain(&mut self) -> Vec<Transmit> {
            std::iter::from_fn(|| self.relay.poll_transmit()).collect()
        }

        fn events(&mut self) -> Vec<RelayEvent> {
            std::iter::from_fn(|| self.relay.poll_event()).collect()
        }

        fn join_client(&mut self, from: SocketAddr) {
            let out = self.control(
                from,
                Control::Hello {
                    join: Join::Client { code: CODE.into() },
                },
            );
            assert_eq!(out.len(), 1);
            assert_eq!(
                control_of(&out[0]),
                Control::HelloAck {
                    role: PeerRole::Client,
                    session_id: 7
                }
            );
        }

        fn join_viewer(&mut self, from: SocketAddr, ticket: &str) {
            self.relay
                .add_ticket(ticket.into(), self.now + Duration::from_secs(60));
            let out = self.control(
                from,
                Control::Hello {
                    join: Join::Viewer {
                        ticket: ticket.into(),
                    },
                },
            );
            assert_eq!(
                control_of(&out[0]),
                Control::HelloAck {
                    role: PeerRole::Viewer,
                    session_id: 7
                }
            );
        }
    }

    fn control_of(transmit: &Transmit) -> Control {
        match Packet::decode(&transmit.payload).unwrap() {
            Packet::Control(json) => Control::parse(&json).unwrap(),
            other => panic!("not a control packet: {other:?}"),
        }
    }

    fn mouse() -> Packet {
        Packet::Mouse(MouseEvent {
            x: 10,
            y: -5,
            button: MouseButton::Left,
            down: true,
        })
    }

    #[test]
    fn frames_fan_out_and_input_flows_back() {
        let mut h = Harness::new();
        h.join_client(addr(1));
        h.join_viewer(addr(2), "t1");
        h.join_viewer(addr(3), "t2");
        let chunks = chunk_frame(1, &[9; 3000], 1451).unwrap();
        for chunk in &chunks {
            let out = h.feed(addr(1), Packet::Frame(chunk.clone()));
            let mut to: Vec<_> = out.iter().map(|t| t.to).collect();
            to.sort();
            assert_eq!(to, vec![addr(2), addr(3)]);
            assert_eq!(out[0].payload, Packet::Frame(chunk.clone()).encode());
        }
        let stats = h.relay.stats();
        assert_eq!((stats.frames, stats.viewers), (1, 2));
        assert_eq!(stats.bytes, 3000 + 3 * 21);

        let out = h.feed(addr(2), mouse());
        assert_eq!(
            out,
            vec![Transmit {
                to: addr(1),
                payload: mouse().encode().into()
            }]
        );
        let key = Packet::Keyboard(KeyEvent {
            key: 65,
            down: false,
        });
        assert_eq!(h.feed(addr(3), key.clone())[0].to, addr(1));
        // Control both ways.
        let info = Control::ScreenInfo {
            width: 800,
            height: 600,
        };
        assert_eq!(h.control(addr(1), info.clone()).len(), 2);
        assert_eq!(h.control(addr(2), Control::RequestFrame)[0].to, addr(1));
        assert_eq!(h.relay.stats().dropped_packets, 0);
    }

    #[test]
    fn strangers_and_wrong_directions_are_dropped() {
        let mut h = Harness::new();
        h.join_client(addr(1));
        h.join_viewer(addr(2), "t");
        let chunk = chunk_frame(1, &[1; 10], 10).unwrap().remove(0);
        assert!(h.feed(addr(9), Packet::Frame(chunk.clone())).is_empty());
        assert!(h.feed(addr(9), mouse()).is_empty());
        assert!(h.control(addr(9), Control::Ping).is_empty());
        h.relay
            .handle_datagram(h.now, addr(1), &[1, 2, 3], &mut |_| true);
        assert!(
            h.feed(addr(2), Packet::Frame(chunk)).is_empty(),
            "viewers send no frames"
        );
        assert!(
            h.feed(addr(1), mouse()).is_empty(),
            "the client sends no input"
        );
        assert_eq!(h.relay.stats().dropped_packets, 6);
        assert_eq!(h.relay.stats().frames, 0);
    }

    #[test]
    fn wrong_code_and_used_ticket_are_refused() {
        let mut h = Harness::new();
        h.events();
        let out = h.control(
            addr(1),
            Control::Hello {
                join: Join::Client {
                    code: "000000000".into(),
                },
            },
        );
        assert!(matches!(control_of(&out[0]), Control::Error { .. }));
        assert_eq!(h.events(), vec![RelayEvent::JoinRefused(addr(1).ip())]);
        assert_eq!(h.relay.client(), None);

        h.join_viewer(addr(2), "once");
        let out = h.control(
            addr(3),
            Control::Hello {
                join: Join::Viewer {
                    ticket: "once".into(),
                },
            },
        );
        assert!(
            matches!(control_of(&out[0]), Control::Error { .. }),
            "single use"
        );

        h.relay
            .add_ticket("late".into(), h.now + Duration::from_secs(60));
        h.now += Duration::from_secs(61);
        let out = h.control(
            addr(4),
            Control::Hello {
                join: Join::Viewer {
                    ticket: "late".into(),
                },
            },
        );
        assert!(
            matches!(control_of(&out[0]), Control::Error { .. }),
            "expired"
        );

        // A blocked address is refused before its code is even checked.
        let mut blocked = |_| false;
        let hello = Packet::control(&Control::Hello {
            join: Join::Client { code: CODE.into() },
        });
        h.relay
            .handle_datagram(h.now, addr(5), &hello.encode(), &mut blocked);
        assert!(matches!(control_of(&h.drain()[0]), Control::Error { .. }));
        assert_eq!(h.relay.client(), None);
    }

    #[test]
    fn silent_peers_are_forgotten_and_pings_keep_them() {
        let mut h = Harness::new();
        h.join_client(addr(1));
        h.join_viewer(addr(2), "t");
        h.events();
        assert_eq!(h.relay.poll_timeout(), Some(h.now + TIMEOUT));
        h.now += Duration::from_secs(20);
        let pong = h.control(addr(2), Control::Ping);
        assert_eq!(control_of(&pong[0]), Control::Pong);
        h.now += Duration::from_secs(10);
        h.relay.handle_timeout(h.now);
        assert_eq!(h.events(), vec![RelayEvent::ClientLeft(addr(1))]);
        assert_eq!(h.relay.stats().viewers, 1);
        h.now += Duration::from_secs(20);
        h.relay.handle_timeout(h.now);
        assert_eq!(h.events(), vec![RelayEvent::ViewerLeft(addr(2))]);
        assert_eq!(h.relay.poll_timeout(), None);
        // Forgotten means a stranger again.
        assert!(h.feed(addr(2), mouse()).is_empty());
    }

    #[test]
    fn bye_leaves_and_close_tells_everyone() {
        let mut h = Harness::new();
        h.join_client(addr(1));
        h.join_viewer(addr(2), "t");
        h.join_viewer(addr(3), "u");
        h.events();
        assert!(h.control(addr(3), Control::Bye).is_empty());
        assert_eq!(h.events(), vec![RelayEvent::ViewerLeft(addr(3))]);
        // A repeated hello is acknowledged again without a ticket check.
        h.join_viewer(addr(2), "unused");
        h.relay.close();
        let out = h.drain();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|t| control_of(t) == Control::Closed));
        assert_eq!(h.relay.stats().viewers, 0);
    }

    #[test]
    fn bridge_input_and_frames_for_the_bridge() {
        let mut h = Harness::new();
        h.relay.input_from_bridge(&mouse());
        assert!(h.drain().is_empty(), "no client yet");
        h.join_client(addr(1));
        h.relay.input_from_bridge(&mouse());
        assert_eq!(h.drain()[0].to, addr(1));
        h.events();
        h.relay.set_want_frames(true);
        let chunk = chunk_frame(5, &[1; 10], 10).unwrap().remove(0);
        h.feed(addr(1), Packet::Frame(chunk.clone()));
        assert_eq!(h.events(), vec![RelayEvent::FrameChunk(chunk)]);
    }

    #[test]
    fn a_new_client_address_replaces_the_old() {
        let mut h = Harness::new();
        h.join_client(addr(1));
        h.events();
        h.join_client(addr(5));
        assert_eq!(
            h.events(),
            vec![
                RelayEvent::ClientLeft(addr(1)),
                RelayEvent::ClientJoined(addr(5))
            ]
        );
        assert_eq!(h.relay.client(), Some(addr(5)));
    }
}
