//! The desktop path's UDP packets (`remote-access-api.md`): frames, mouse, keyboard and control,
//! big-endian, checked strictly on decode; the control messages; splitting a JPEG into frame
//! packets and a sans-IO `Reassembler` that puts them back together with bounded memory.
//!
//! Everything here is pure: the server's relay and browser bridge, the client and the viewer
//! share it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const TYPE_FRAME: u8 = 1;
pub const TYPE_MOUSE: u8 = 2;
pub const TYPE_KEYBOARD: u8 = 3;
pub const TYPE_CONTROL: u8 = 4;

/// Bytes before a frame chunk's data: type, frame id, chunk index, total chunks, total size.
pub const FRAME_HEADER_LEN: usize = 1 + 8 + 4 + 4 + 4;
const MOUSE_LEN: usize = 1 + 4 + 4 + 1 + 1;
const KEYBOARD_LEN: usize = 1 + 2 + 1;

/// Chunk data that fits one Ethernet MTU: 1500 − 20 (IPv4) − 8 (UDP) − 21 (our header).
pub const DEFAULT_CHUNK_SIZE: usize = 1500 - 20 - 8 - FRAME_HEADER_LEN;
/// The most data one UDP datagram can carry after our header (IPv4: 65 507 − 21).
pub const MAX_CHUNK_SIZE: usize = 65_507 - FRAME_HEADER_LEN;
/// The largest image a frame may announce. A 4K screen as JPEG is a few MB at most.
pub const MAX_FRAME_SIZE: u32 = 16 * 1024 * 1024;

/// Why a datagram is not a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty datagram")]
    Empty,
    #[error("unknown packet type {0}")]
    UnknownType(u8),
    #[error("packet of type {kind} has the wrong length {len}")]
    Length { kind: u8, len: usize },
    #[error("chunk {index} of a frame with {total} chunks")]
    ChunkIndex { index: u32, total: u32 },
    #[error("impossible frame sizes")]
    FrameSize,
    #[error("mouse button {0} is not 1, 2 or 3")]
    Button(u8),
    #[error("button or key state {0} is not 0 or 1")]
    State(u8),
    #[error("control message is not UTF-8")]
    Utf8,
}

/// One chunk of a JPEG frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameChunk {
    /// Grows with every new frame (the sender's timestamp or a counter).
    pub frame_id: u64,
    pub chunk_index: u32,
    pub total_chunks: u32,
    /// Size of the whole JPEG.
    pub total_size: u32,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MouseButton {
    Left,
    Right,
    Middle,
}

impl MouseButton {
    pub fn to_wire(self) -> u8 {
        match self {
            MouseButton::Left => 1,
            MouseButton::Right => 2,
            MouseButton::Middle => 3,
        }
    }

    pub fn from_wire(byte: u8) -> Result<Self, DecodeError> {
        match byte {
            1 => Ok(MouseButton::Left),
            2 => Ok(MouseButton::Right),
            3 => Ok(MouseButton::Middle),
            other => Err(DecodeError::Button(other)),
        }
    }
}

/// A pointer event in screen pixels (x and y may be negative on multi-monitor desktops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MouseEvent {
    pub x: i32,
    pub y: i32,
    pub button: MouseButton,
    pub down: bool,
}

/// A key press or release by virtual key code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyEvent {
    pub key: u16,
    pub down: bool,
}

/// One UDP datagram of the desktop protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Frame(FrameChunk),
    Mouse(MouseEvent),
    Keyboard(KeyEvent),
    /// UTF-8 JSON; see [`Control`] for the messages we define.
    Control(String),
}

fn state_byte(byte: u8) -> Result<bool, DecodeError> {
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(DecodeError::State(other)),
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(word)
}

impl Packet {
    /// The packet's type byte.
    pub fn kind(&self) -> u8 {
        match self {
            Packet::Frame(_) => TYPE_FRAME,
            Packet::Mouse(_) => TYPE_MOUSE,
            Packet::Keyboard(_) => TYPE_KEYBOARD,
            Packet::Control(_) => TYPE_CONTROL,
        }
    }

    /// A control packet carrying `message`.
    pub fn control(message: &Control) -> Self {
        Packet::Control(message.to_json())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(match self {
            Packet::Frame(chunk) => FRAME_HEADER_LEN + chunk.data.len(),
            Packet::Control(json) => 1 + json.len(),
            _ => MOUSE_LEN,
        });
        self.encode_into(&mut out);
        out
    }

    /// Appends the wire form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.kind());
        match self {
            Packet::Frame(chunk) => {
                out.extend_from_slice(&chunk.frame_id.to_be_bytes());
                out.extend_from_slice(&chunk.chunk_index.to_be_bytes());
                out.extend_from_slice(&chunk.total_chunks.to_be_bytes());
                out.extend_from_slice(&chunk.total_size.to_be_bytes());
                out.extend_from_slice(&chunk.data);
            }
            Packet::Mouse(mouse) => {
                out.extend_from_slice(&mouse.x.to_be_bytes());
                out.extend_from_slice(&mouse.y.to_be_bytes());
                out.push(mouse.button.to_wire());
                out.push(u8::from(mouse.down));
            }
            Packet::Keyboard(key) => {
                out.extend_from_slice(&key.key.to_be_bytes());
                out.push(u8::from(key.down));
            }
            Packet::Control(json) => out.extend_from_slice(json.as_bytes()),
        }
    }

    /// Decodes one datagram; anything short, oversized or inconsistent is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (&kind, _) = bytes.split_first().ok_or(DecodeError::Empty)?;
        let wrong_length = || DecodeError::Length {
            kind,
            len: bytes.len(),
        };
        match kind {
            TYPE_FRAME => {
                if bytes.len() <= FRAME_HEADER_LEN {
                    return Err(wrong_length());
                }
                let mut id = [0; 8];
                id.copy_from_slice(&bytes[1..9]);
                let frame_id = u64::from_be_bytes(id);
                let chunk_index = be_u32(bytes, 9);
                let total_chunks = be_u32(bytes, 13);
                let total_size = be_u32(bytes, 17);
                let data = &bytes[FRAME_HEADER_LEN..];
                if total_chunks == 0 || chunk_index >= total_chunks {
                    return Err(DecodeError::ChunkIndex {
                        index: chunk_index,
                        total: total_chunks,
                    });
                }
                // Every chunk carries at least one byte, none more than the whole image.
                if total_size > MAX_FRAME_SIZE
                    || total_chunks > total_size
                    || data.len() > total_size as usize
                {
                    return Err(DecodeError::FrameSize);
                }
                Ok(Packet::Frame(FrameChunk {
                    frame_id,
                    chunk_index,
                    total_chunks,
                    total_size,
                    data: data.to_vec(),
                }))
            }
            TYPE_MOUSE => {
                if bytes.len() != MOUSE_LEN {
                    return Err(wrong_length());
                }
                Ok(Packet::Mouse(MouseEvent {
                    x: be_u32(bytes, 1) as i32,
                    y: be_u32(bytes, 5) as i32,
                    button: MouseButton::from_wire(bytes[9])?,
                    down: state_byte(bytes[10])?,
                }))
            }
            TYPE_KEYBOARD => {
                if bytes.len() != KEYBOARD_LEN {
                    return Err(wrong_length());
                }
                Ok(Packet::Keyboard(KeyEvent {
                    key: u16::from_be_bytes([bytes[1], bytes[2]]),
                    down: state_byte(bytes[3])?,
                }))
            }
            TYPE_CONTROL => {
                if bytes.len() < 2 {
                    return Err(wrong_length());
                }
                let text = std::str::from_utf8(&bytes[1..]).map_err(|_| DecodeError::Utf8)?;
                Ok(Packet::Control(text.to_owned()))
            }
            other => Err(DecodeError::UnknownType(other)),
        }
    }
}

/// Who joins a session's UDP port, and what proves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Join {
    /// The customer's machine, with the session code.
    Client { code: String },
    /// A technician's viewer, with a single-use join ticket from the API (never a JWT).
    Viewer { ticket: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerRole {
    Client,
    Viewer,
}

/// The JSON of a control packet (`{"type": …}`). The relay reads `hello`, `ping` and `bye`
/// itself and forwards every other control message between client and viewers untouched, so
/// peers may add their own types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// First packet of a peer: joins the session.
    Hello {
        #[serde(flatten)]
        join: Join,
    },
    /// The relay accepted the hello.
    HelloAck {
        role: PeerRole,
        session_id: i64,
    },
    /// Something was refused; `message` says what.
    Error {
        message: String,
    },
    /// The client's screen size, for viewers.
    ScreenInfo {
        width: u32,
        height: u32,
    },
    /// Keep-alive; the relay answers `pong`.
    Ping,
    Pong,
    /// The peer leaves.
    Bye,
    /// The session was closed: peers should stop.
    Closed,
    /// A viewer asks the client for a full frame (e.g. after joining).
    RequestFrame,
}

impl Control {
    pub fn to_json(&self) -> String {
        // Serialising these plain enums cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(json: &str) -> Option<Self> {
        serde_json::from_str(json).ok()
    }
}

/// Input events as the browser sends them over the bridge WebSocket (JSON text messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BrowserInput {
    Mouse {
        x: i32,
        y: i32,
        button: MouseButton,
        down: bool,
    },
    Key {
        key: u16,
        down: bool,
    },
}

impl BrowserInput {
    pub fn to_packet(&self) -> Packet {
        match *self {
            BrowserInput::Mouse { x, y, button, down } => {
                Packet::Mouse(MouseEvent { x, y, button, down })
            }
            BrowserInput::Key { key, down } => Packet::Keyboard(KeyEvent { key, down }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("an empty image")]
    Empty,
    #[error("image larger than {MAX_FRAME_SIZE} bytes")]
    TooLarge,
    #[error("chunk size must be between 1 and {MAX_CHUNK_SIZE}")]
    ChunkSize,
}

/// Splits one JPEG into frame packets of at most `chunk_size` bytes of data each.
pub fn chunk_frame(
    frame_id: u64,
    image: &[u8],
    chunk_size: usize,
) -> Result<Vec<FrameChunk>, ChunkError> {
    if image.is_empty() {
        return Err(ChunkError::Empty);
    }
    if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
        return Err(ChunkError::ChunkSize);
    }
    let total_size = u32::try_from(image.len())
        .ok()
        .filter(|&size| size <= MAX_FRAME_SIZE)
        .ok_or(ChunkError::TooLarge)?;
    let total_chunks = image.len().div_ceil(chunk_size) as u32;
    Ok(image
        .chunks(chunk_size)
        .enumerate()
        .map(|(index, data)| FrameChunk {
            frame_id,
            chunk_index: index as u32,
            total_chunks,
            total_size,
            data: data.to_vec(),
        })
        .collect())
}

/// A whole frame, back together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub frame_id: u64,
    pub image: Vec<u8>,
}

/// What the reassembler did with chunks it could not use, for counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    pub frames_completed: u64,
    /// Incomplete frames given up (a newer one completed, or memory ran short).
    pub frames_dropped: u64,
    /// Chunks of frames already done or given up, duplicates, and chunks that contradict their
    /// frame's header.
    pub chunks_ignored: u64,
}

#[derive(Debug)]
struct Partial {
    total_chunks: u32,
    total_size: u32,
    received_bytes: usize,
    chunks: BTreeMap<u32, Vec<u8>>,
}

/// Puts frame chunks back together, in any order. Memory is bounded: at most
/// `MAX_PARTIAL_FRAMES` frames in progress and `MAX_PARTIAL_BYTES` of their data; past either,
/// the oldest frame in progress is dropped. When a frame completes, every older incomplete frame
/// is dropped, and chunks of frames at or before it are ignored from then on (frame ids grow).
#[derive(Debug, Default)]
pub struct Reassembler {
    partial: BTreeMap<u64, Partial>,
    partial_bytes: usize,
    last_completed: Option<u64>,
    stats: ReassemblyStats,
}

pub const MAX_PARTIAL_FRAMES: usize = 8;
pub const MAX_PARTIAL_BYTES: usize = 2 * MAX_FRAME_SIZE as usize;

impl Reassembler {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Bytes held for frames in progress.
    pub fn buffered_bytes(&self) -> usize {
        self.partial_bytes
    }

    /// Takes one chunk; returns the frame it completes, if any.
    pub fn push(&mut self, chunk: FrameChunk) -> Option<Frame> {
        if self
            .last_completed
            .is_some_and(|last| chunk.frame_id <= last)
            || chunk.total_chunks == 0
            || chunk.chunk_index >= chunk.total_chunks
            || chunk.data.is_empty()
        {
            self.stats.chunks_ignored += 1;
            return None;
        }
        if !self.partial.contains_key(&chunk.frame_id) {
            while self.partial.len() >= MAX_PARTIAL_FRAMES {
                self.drop_oldest();
            }
            self.partial.insert(
                chunk.frame_id,
                Partial {
                    total_chunks: chunk.total_chunks,
                    total_size: chunk.total_size,
                    received_bytes: 0,
                    chunks: BTreeMap::new(),
                },
            );
        }
        let id = chunk.frame_id;
        let partial = self.partial.get_mut(&id)?;
        if partial.total_chunks != chunk.total_chunks
            || partial.total_size != chunk.total_size
            || partial.chunks.contains_key(&chunk.chunk_index)
            || partial.received_bytes + chunk.data.len() > partial.total_size as usize
        {
            self.stats.chunks_ignored += 1;
            return None;
        }
        partial.received_bytes += chunk.data.len();
        self.partial_bytes += chunk.data.len();
        partial.chunks.insert(chunk.chunk_index, chunk.data);
        let complete = partial.chunks.len() == partial.total_chunks as usize;
        if !complete {
            while self.partial_bytes > MAX_PARTIAL_BYTES && self.partial.len() > 1 {
                self.drop_oldest();
            }
            return None;
        }
        let partial = self.partial.remove(&id)?;
        self.partial_bytes -= partial.received_bytes;
        // Older frames can no longer be shown: drop them.
        let newer = self.partial.split_off(&id);
        for (_, old) in std::mem::replace(&mut self.partial, newer) {
            self.partial_bytes -= old.received_bytes;
            self.stats.frames_dropped += 1;
        }
        self.last_completed = Some(id);
        if partial.received_bytes != partial.total_size as usize {
            self.stats.frames_dropped += 1;
            return None;
        }
        let mut image = Vec::with_capacity(partial.received_bytes);
        for data in partial.chunks.into_values() {
            image.extend_from_slice(&data);
        }
        self.stats.frames_completed += 1;
        Some(Frame {
            frame_id: id,
            image,
        })
    }

    fn drop_oldest(&mut self) {
        if let Some((_, old)) = self.partial.pop_first() {
            self.partial_bytes -= old.received_bytes;
            self.stats.frames_dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_packet() -> impl Strategy<Value = Packet> {
        let frame = (
            any::<u64>(),
            1u32..64,
            proptest::collection::vec(any::<u8>(), 1..2000),
        )
            .prop_flat_map(|(frame_id, total_chunks, data)| {
                let len = data.len() as u32;
                (
                    0..total_chunks,
                    Just(frame_id),
                    Just(total_chunks),
                    Just(data),
                )
                    .prop_flat_map(move |(index, id, total, data)| {
                        (len.max(total)..=MAX_FRAME_SIZE).prop_map(move |total_size| {
                            Packet::Frame(FrameChunk {
                                frame_id: id,
                                chunk_index: index,
                                total_chunks: total,
                                total_size,
                                data: data.clone(),
                            })
                        })
                    })
            });
        let button = prop_oneof![
            Just(MouseButton::Left),
            Just(MouseButton::Right),
            Just(MouseButton::Middle)
        ];
        let mouse = (any::<i32>(), any::<i32>(), button, any::<bool>())
            .prop_map(|(x, y, button, down)| Packet::Mouse(MouseEvent { x, y, button, down }));
        let key = (any::<u16>(), any::<bool>())
            .prop_map(|(key, down)| Packet::Keyboard(KeyEvent { key, down }));
        let control = ".{1,200}".prop_map(Packet::Control);
        prop_oneof![frame, mouse, key, control]
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(packet in arb_packet()) {
            prop_assert_eq!(Packet::decode(&packet.encode()), Ok(packet));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let _ = Packet::decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_typed_garbage(
            kind in 0u8..6,
            rest in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = vec![kind];
            bytes.extend(rest);
            if let Ok(packet) = Packet::decode(&bytes) {
                prop_assert_eq!(packet.encode(), bytes, "what decodes re-encodes the same");
            }
        }

        #[test]
        fn chunks_reassemble_in_any_order(
            image in proptest::collection::vec(any::<u8>(), 1..20_000),
            chunk_size in 1usize..3000,
            seed in any::<u64>(),
            lose in any::<bool>(),
        ) {
            let mut chunks = chunk_frame(7, &image, chunk_size).unwrap();
            for chunk in &chunks {
                let packet = Packet::Frame(chunk.clone());
                prop_assert_eq!(Packet::decode(&packet.encode()), Ok(packet));
                prop_assert!(chunk.data.len() <= chunk_size);
            }
            // A deterministic shuffle from the seed.
            let mut state = seed | 1;
            for i in (1..chunks.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                chunks.swap(i, (state % (i as u64 + 1)) as usize);
            }
            if lose {
                let lost = (state % chunks.len() as u64) as usize;
                chunks.remove(lost);
            }
            let mut reassembler = Reassembler::new();
            let mut frames = Vec::new();
            for chunk in chunks.clone() {
                frames.extend(reassembler.push(chunk));
            }
            // Duplicates change nothing.
            for chunk in chunks {
                prop_assert_eq!(reassembler.push(chunk), None);
            }
            if lose {
                prop_assert!(frames.is_empty());
            } else {
                prop_assert_eq!(frames, vec![Frame { frame_id: 7, image: image.clone() }]);
                prop_assert_eq!(reassembler.buffered_bytes(), 0);
            }
        }
    }

    #[test]
    fn strict_decode() {
        assert_eq!(Packet::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(Packet::decode(&[9]), Err(DecodeError::UnknownType(9)));
        assert!(matches!(
            Packet::decode(&[2, 0, 0]),
            Err(DecodeError::Length { .. })
        ));
        assert_eq!(
            Packet::decode(&[2, 0, 0, 0, 1, 0, 0, 0, 2, 4, 1]),
            Err(DecodeError::Button(4))
        );
        assert_eq!(Packet::decode(&[3, 0, 65, 2]), Err(DecodeError::State(2)));
        assert_eq!(Packet::decode(&[4, 0xff, 0xfe]), Err(DecodeError::Utf8));
        let frame = |index: u32, total: u32, size: u32, data: &[u8]| {
            let mut bytes = vec![1];
            bytes.extend(1u64.to_be_bytes());
            bytes.extend(index.to_be_bytes());
            bytes.extend(total.to_be_bytes());
            bytes.extend(size.to_be_bytes());
            bytes.extend(data);
            Packet::decode(&bytes)
        };
        assert!(frame(0, 1, 3, b"abc").is_ok());
        assert!(matches!(
            frame(1, 1, 3, b"abc"),
            Err(DecodeError::ChunkIndex { .. })
        ));
        assert!(matches!(
            frame(0, 0, 3, b"abc"),
            Err(DecodeError::ChunkIndex { .. })
        ));
        assert_eq!(frame(0, 1, 2, b"abc"), Err(DecodeError::FrameSize));
        assert_eq!(frame(0, 4, 3, b"abc"), Err(DecodeError::FrameSize));
        assert_eq!(
            frame(0, 1, MAX_FRAME_SIZE + 1, b"abc"),
            Err(DecodeError::FrameSize)
        );
        assert!(matches!(
            frame(0, 1, 3, b""),
            Err(DecodeError::Length { .. })
        ));
    }

    #[test]
    fn default_chunk_fits_one_mtu() {
        assert_eq!(DEFAULT_CHUNK_SIZE, 1451);
        let chunks = chunk_frame(1, &[0; 5000], DEFAULT_CHUNK_SIZE).unwrap();
        assert_eq!(chunks.len(), 4);
        assert!(chunks
            .iter()
            .all(|c| Packet::Frame(c.clone()).encode().len() <= 1500 - 28));
        assert_eq!(chunk_frame(1, &[], 10), Err(ChunkError::Empty));
        assert_eq!(chunk_frame(1, &[1], 0), Err(ChunkError::ChunkSize));
    }

    #[test]
    fn control_messages_have_the_spec_shape() {
        let hello: Control =
            serde_json::from_str(r#"{"type":"hello","role":"client","code":"123456789"}"#).unwrap();
        assert_eq!(
            hello,
            Control::Hello {
                join: Join::Client {
                    code: "123456789".into()
                }
            }
        );
        let viewer = Control::Hello {
            join: Join::Viewer { ticket: "t".into() },
        };
        assert_eq!(
            serde_json::to_value(&viewer).unwrap(),
            serde_json::json!({"type": "hello", "role": "viewer", "ticket": "t"})
        );
        assert_eq!(Control::parse(&viewer.to_json()), Some(viewer));
        assert_eq!(
            Control::parse(r#"{"type":"screen_info","width":1920,"height":1080}"#),
            Some(Control::ScreenInfo {
                width: 1920,
                height: 1080
            })
        );
        assert_eq!(Control::parse(r#"{"type":"nonsense"}"#), None);
    }

    #[test]
    fn newer_complete_frame_drops_older_partial() {
        let mut r = Reassembler::new();
        let old = chunk_frame(1, &[1; 30], 10).unwrap();
        let new = chunk_frame(2, &[2; 20], 10).unwrap();
        assert_eq!(r.push(old[0].clone()), None);
        assert_eq!(r.push(new[1].clone()), None);
        let done = r.push(new[0].clone()).unwrap();
        assert_eq!(done.frame_id, 2);
        assert_eq!(r.stats().frames_dropped, 1);
        assert_eq!(r.buffered_bytes(), 0);
        // The rest of frame 1 comes too late.
        assert_eq!(r.push(old[1].clone()), None);
        assert_eq!(r.push(old[2].clone()), None);
        assert_eq!(r.stats().frames_completed, 1);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut r = Reassembler::new();
        for id in 0..20u64 {
            // Never complete: the first of two 5 MB chunks.
            r.push(FrameChunk {
                frame_id: id,
                chunk_index: 0,
                total_chunks: 2,
                total_size: 10_000_000,
                data: vec![0; 5_000_000],
            });
            assert!(r.partial.len() <= MAX_PARTIAL_FRAMES);
            assert!(r.buffered_bytes() <= MAX_PARTIAL_BYTES);
        }
        assert_eq!(r.partial.len(), MAX_PARTIAL_BYTES / 5_000_000);
        assert_eq!(
            r.stats().frames_dropped,
            20 - (MAX_PARTIAL_BYTES / 5_000_000) as u64
        );
        // Contradicting headers are ignored.
        let mut chunk = chunk_frame(200, &[1; 20], 10).unwrap()[0].clone();
        r.push(chunk.clone());
        chunk.chunk_index = 1;
        chunk.total_size = 30;
        assert_eq!(r.push(chunk), None);
    }
}
