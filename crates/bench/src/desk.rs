//! `skyshift-bench desk`: the streaming pipeline on synthetic 1080p desktops in an Xvfb it
//! starts: capture and encode cost per frame, bytes per frame, achievable fps; end to end
//! through a running server's relay (client and viewer in this process, on one clock: frames/s,
//! Mbit/s, lost frames, glass-to-glass latency); the relay's packet rate; and ffmpeg's x11grab +
//! mjpeg on the same screen as the reference.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use skyshift_desk::capture::{self, Frame};
use skyshift_desk::encode::JpegEncoder;
use skyshift_proto::desk::{chunk_frame, Control, Join, Packet, Reassembler, DEFAULT_CHUNK_SIZE};

use crate::api_client::Api;
use crate::procfs;
use crate::progress;
use crate::scenes::{changed_tiles, Painter, Scene, Workload};
use crate::stats::Summary;
use crate::table::{num, Table};

#[derive(Debug, clap::Args)]
pub struct DeskArgs {
    /// A running server (loopback only) for the end-to-end and relay runs; without it they are
    /// skipped.
    #[arg(long)]
    pub server: Option<String>,
    /// The administrator's password (for sessions and join tickets).
    #[arg(long, env = "SKYSHIFT_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Scenes to run (default: all four).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenes: Vec<Scene>,
    /// Screen size.
    #[arg(long, default_value_t = 1920)]
    pub width: u32,
    #[arg(long, default_value_t = 1080)]
    pub height: u32,
    /// JPEG quality (the client's default).
    #[arg(long, default_value_t = 60)]
    pub quality: u8,
    /// Frames per scene for capture + encode as fast as possible.
    #[arg(long, default_value_t = 120)]
    pub frames: u64,
    /// Frame rate of the end-to-end run and of ffmpeg.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Seconds of each scene's end-to-end run.
    #[arg(long, default_value_t = 5)]
    pub e2e_seconds: u64,
    /// Packets per second offered to the relay in its own run (0: skip).
    #[arg(long, default_value_t = 40_000)]
    pub relay_pps: u64,
    #[arg(long, default_value_t = 3)]
    pub relay_seconds: u64,
    /// Skip the ffmpeg reference.
    #[arg(long)]
    pub no_ffmpeg: bool,
    /// ffmpeg's mjpeg -q:v; 5 has about the quantisation tables of libjpeg quality 60.
    #[arg(long, default_value_t = 5)]
    pub ffmpeg_q: u8,
    /// Write the report here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize)]
pub struct DeskReport {
    pub width: u32,
    pub height: u32,
    pub quality: u8,
    pub shared_memory: bool,
    pub scenes: Vec<SceneReport>,
    pub relay: Option<RelayReport>,
    pub notes: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct SceneReport {
    pub scene: String,
    pub frames: u64,
    pub capture: Summary,
    pub encode: Summary,
    /// Capture + encode CPU time of the capturing thread, per frame.
    pub cpu_ms_per_frame: f64,
    pub bytes_per_frame: f64,
    pub achievable_fps: f64,
    /// What a JPEG of only the changed 64×64 tiles' bounding box would weigh (an estimate for
    /// the changed-regions extension; not what the client sends).
    pub changed_region_bytes: Option<f64>,
    pub changed_tiles_per_frame: Option<f64>,
    pub ffmpeg: Option<FfmpegReport>,
    pub cpu_ratio_to_ffmpeg: Option<f64>,
    pub bytes_ratio_to_ffmpeg: Option<f64>,
    pub e2e: Option<E2eReport>,
}

#[derive(Debug, Default, Serialize)]
pub struct FfmpegReport {
    pub frames: u64,
    pub fps: u32,
    pub q: u8,
    pub cpu_ms_per_frame: f64,
    pub bytes_per_frame: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct E2eReport {
    pub seconds: f64,
    pub frames_sent: u64,
    pub frames_shown: u64,
    pub frames_lost: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub fps_at_viewer: f64,
    pub mbit_per_s: f64,
    /// Capture start → frame complete at the viewer.
    pub glass_to_glass: Summary,
}

#[derive(Debug, Default, Serialize)]
pub struct RelayReport {
    pub offered_pps: f64,
    pub delivered_pps: f64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub loss_percent: f64,
    pub udp_rmem_max: Option<u64>,
}

/// An Xvfb on a display it picks itself; killed when dropped.
pub struct Xvfb {
    child: std::process::Child,
    pub display: String,
}

impl Xvfb {
    pub fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        // -displayfd: Xvfb picks a free display and writes its number once it accepts clients.
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0"])
            .arg(format!("{width}x{height}x24"))
            // -noreset: without it Xvfb resets when its last client leaves, and refuses the next
            // one while it does (between scenes).
            .args(["-nolisten", "tcp", "-noreset"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start Xvfb (apt-get install xvfb)")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
        let number: u32 = line
            .trim()
            .parse()
            .context("Xvfb did not print its display")?;
        Ok(Self {
            child,
            display: format!(":{number}"),
        })
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), in seconds.
fn thread_cpu() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9)
        .unwrap_or(0.0)
}

/// A thread that paints a scene's frames on request, so its CPU never counts as ours.
struct PaintThread {
    steps: mpsc::Sender<u64>,
    done: mpsc::Receiver<anyhow::Result<()>>,
}

impl PaintThread {
    fn start(display: &str, scene: Scene) -> anyhow::Result<Self> {
        let (steps, step_rx) = mpsc::channel::<u64>();
        let (done_tx, done) = mpsc::channel();
        let display = display.to_string();
        std::thread::spawn(move || {
            let started = Painter::connect(&display)
                .and_then(|painter| Workload::start(scene, &painter).map(|w| (painter, w)));
            let (painter, mut workload) = match started {
                Ok(started) => {
                    let _ = done_tx.send(Ok(()));
                    started
                }
                Err(err) => {
                    let _ = done_tx.send(Err(err));
                    return;
                }
            };
            while let Ok(i) = step_rx.recv() {
                if done_tx.send(workload.step(&painter, i)).is_err() {
                    break;
                }
            }
        });
        let thread = Self { steps, done };
        thread.done.recv().context("painter thread died")??;
        Ok(thread)
    }

    fn step(&self, i: u64) -> anyhow::Result<()> {
        self.steps.send(i).context("painter thread died")?;
        self.done.recv().context("painter thread died")?
    }
}

pub async fn run(args: DeskArgs) -> anyhow::Result<()> {
    let scenes = if args.scenes.is_empty() {
        Scene::ALL.to_vec()
    } else {
        args.scenes.clone()
    };
    let xvfb = Xvfb::start(args.width, args.height)?;
    let mut report = DeskReport {
        width: args.width,
        height: args.height,
        quality: args.quality,
        ..DeskReport::default()
    };
    let api = match (&args.server, &args.admin_password) {
        (Some(server), Some(password)) => Some(Api::login(server, password).await?),
        (Some(_), None) => bail!("--server needs --admin-password (or SKYSHIFT_ADMIN_PASSWORD)"),
        _ => {
            report
                .notes
                .push("no --server: end-to-end and relay runs skipped".into());
            None
        }
    };
    let ffmpeg = !args.no_ffmpeg && Command::new("ffmpeg").arg("-version").output().is_ok();
    if !args.no_ffmpeg && !ffmpeg {
        report
            .notes
            .push("ffmpeg is not installed (apt-get install ffmpeg): no reference".into());
    }

    for scene in scenes {
        let display = xvfb.display.clone();
        let (mut scene_report, shared_memory) =
            tokio::task::block_in_place(|| capture_and_encode(&display, scene, &args))?;
        report.shared_memory = shared_memory;
        if ffmpeg {
            match tokio::task::block_in_place(|| ffmpeg_reference(&display, scene, &args)) {
                Ok(reference) => {
                    scene_report.cpu_ratio_to_ffmpeg =
                        Some(scene_report.cpu_ms_per_frame / reference.cpu_ms_per_frame);
                    scene_report.bytes_ratio_to_ffmpeg =
                        Some(scene_report.bytes_per_frame / reference.bytes_per_frame);
                    scene_report.ffmpeg = Some(reference);
                }
                Err(err) => report
                    .notes
                    .push(format!("ffmpeg on {}: {err:#}", scene.name())),
            }
        }
        if let Some(api) = &api {
            let (relay, code, ticket, session) = open_session(api).await?;
            let result = tokio::task::block_in_place(|| {
                end_to_end(&display, scene, &args, relay, &code, &ticket)
            });
            let _ = api.close_session(session).await;
            scene_report.e2e = Some(result?);
        }
        report.scenes.push(scene_report);
    }
    if let (Some(api), true) = (&api, args.relay_pps > 0) {
        let (relay, code, ticket, session) = open_session(api).await?;
        let display = xvfb.display.clone();
        let result =
            tokio::task::block_in_place(|| relay_flood(&display, &args, relay, &code, &ticket));
        let _ = api.close_session(session).await;
        report.relay = Some(result?);
    }
    drop(xvfb);
    print!("{}", render(&report));
    crate::table::write_json(args.json.as_deref(), &report)
}

fn capture_and_encode(
    display: &str,
    scene: Scene,
    args: &DeskArgs,
) -> anyhow::Result<(SceneReport, bool)> {
    let painter = PaintThread::start(display, scene)?;
    let mut capture = capture::open(Some(display))?;
    let encoder = JpegEncoder::new(args.quality);
    let bar = progress::bar(args.frames, &format!("{} capture+encode", scene.name()));
    let (mut grabs, mut encodes, mut bytes, mut cpu) = (Vec::new(), Vec::new(), 0u64, 0.0);
    let (mut region_bytes, mut tiles, mut previous) = (0u64, 0u64, None::<Vec<u8>>);
    // One frame before timing, so caches and the shared segment are warm.
    for i in 0..=args.frames {
        painter.step(i)?;
        let cpu_before = thread_cpu();
        let started = Instant::now();
        let frame = capture.grab()?;
        let grabbed = Instant::now();
        let jpeg = encoder.encode(&frame)?;
        let encoded = Instant::now();
        let cpu_spent = thread_cpu() - cpu_before;
        // Untimed: what only the changed tiles would have cost.
        let (changed, changed_bytes) = changed_region(previous.as_deref(), &frame, &encoder)?;
        previous = Some(frame.pixels.to_vec());
        if i == 0 {
            continue;
        }
        grabs.push(grabbed - started);
        encodes.push(encoded - grabbed);
        bytes += jpeg.len() as u64;
        cpu += cpu_spent;
        tiles += changed;
        region_bytes += changed_bytes;
        bar.inc(1);
    }
    bar.finish_and_clear();
    // Known only once it has grabbed: the segment is set up on the first grab.
    let shared_memory = capture.uses_shared_memory();
    let frames = args.frames.max(1);
    let (capture_summary, encode_summary) = (
        Summary::of_durations(&grabs),
        Summary::of_durations(&encodes),
    );
    let per_frame_ms = capture_summary.mean_ms + encode_summary.mean_ms;
    let tile_scene = matches!(scene, Scene::Typing | Scene::Scrolling | Scene::Static);
    Ok((
        SceneReport {
            scene: scene.name().into(),
            frames,
            capture: capture_summary,
            encode: encode_summary,
            cpu_ms_per_frame: cpu * 1e3 / frames as f64,
            bytes_per_frame: bytes as f64 / frames as f64,
            achievable_fps: 1e3 / per_frame_ms.max(1e-9),
            changed_region_bytes: tile_scene.then(|| region_bytes as f64 / frames as f64),
            changed_tiles_per_frame: tile_scene.then(|| tiles as f64 / frames as f64),
            ..SceneReport::default()
        },
        shared_memory,
    ))
}

/// The changed 64×64 tiles since `previous`, and the JPEG size of their bounding box.
fn changed_region(
    previous: Option<&[u8]>,
    frame: &Frame<'_>,
    encoder: &JpegEncoder,
) -> anyhow::Result<(u64, u64)> {
    let Some(previous) = previous else {
        return Ok((0, 0));
    };
    if previous.len() != frame.pixels.len() || frame.stride != frame.width as usize * 4 {
        return Ok((0, 0));
    }
    let tiles = changed_tiles(previous, frame.pixels, frame.width, frame.height, 64);
    if tiles.is_empty() {
        return Ok((0, 0));
    }
    let left = tiles.iter().map(|t| t.0).min().unwrap_or(0);
    let top = tiles.iter().map(|t| t.1).min().unwrap_or(0);
    let right = tiles.iter().map(|t| t.0 + t.2).max().unwrap_or(0);
    let bottom = tiles.iter().map(|t| t.1 + t.3).max().unwrap_or(0);
    let picture = crate::scenes::Picture {
        width: frame.width,
        height: frame.height,
        pixels: frame.pixels.to_vec(),
    }
    .crop(left, top, right - left, bottom - top);
    let jpeg = encoder.encode(&Frame {
        width: picture.width,
        height: picture.height,
        stride: picture.width as usize * 4,
        pixels: &picture.pixels,
    })?;
    Ok((tiles.len() as u64, jpeg.len() as u64))
}

/// ffmpeg x11grab + mjpeg on the same screen while the scene plays at `fps`.
fn ffmpeg_reference(display: &str, scene: Scene, args: &DeskArgs) -> anyhow::Result<FfmpegReport> {
    let painter = PaintThread::start(display, scene)?;
    let frames = u64::from(args.fps) * 5;
    let out = std::env::temp_dir().join(format!("skyshift-bench-{}.mjpeg", std::process::id()));
    let stop = Arc::new(AtomicBool::new(false));
    let animator = {
        let (stop, fps) = (stop.clone(), args.fps.max(1));
        std::thread::spawn(move || -> anyhow::Result<()> {
            let period = Duration::from_secs_f64(1.0 / f64::from(fps));
            let started = Instant::now();
            let mut i = 1;
            while !stop.load(Ordering::Relaxed) {
                painter.step(i)?;
                let next = started + period * i as u32;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                i += 1;
            }
            Ok(())
        })
    };
    let bar = progress::spinner(&format!("{} ffmpeg", scene.name()));
    let output = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-benchmark",
            "-y",
            "-f",
            "x11grab",
        ])
        .args(["-framerate", &args.fps.to_string()])
        .args(["-video_size", &format!("{}x{}", args.width, args.height)])
        .args(["-i", display, "-frames:v", &frames.to_string()])
        .args([
            "-c:v",
            "mjpeg",
            "-pix_fmt",
            "yuvj420p",
            "-q:v",
            &args.ffmpeg_q.to_string(),
        ])
        .args(["-f", "mjpeg"])
        .arg(&out)
        .output()
        .context("cannot run ffmpeg")?;
    bar.finish_and_clear();
    stop.store(true, Ordering::Relaxed);
    let _ = animator.join();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "ffmpeg failed: {}",
            stderr.lines().last().unwrap_or_default()
        );
    }
    let cpu = procfs::parse_ffmpeg_bench(&stderr).context("no -benchmark line from ffmpeg")?;
    let size = std::fs::metadata(&out)?.len();
    let _ = std::fs::remove_file(&out);
    Ok(FfmpegReport {
        frames,
        fps: args.fps,
        q: args.ffmpeg_q,
        cpu_ms_per_frame: cpu * 1e3 / frames as f64,
        bytes_per_frame: size as f64 / frames as f64,
    })
}

async fn open_session(api: &Api) -> anyhow::Result<(SocketAddr, String, String, i64)> {
    let session = api.create_session().await?;
    let ticket = api.join_ticket(session.id).await?;
    let relay = SocketAddr::from(([127, 0, 0, 1], session.udp_port));
    Ok((relay, session.session_code, ticket, session.id))
}

/// A UDP socket on loopback joined to the relay as `join`.
fn joined(relay: SocketAddr, join: Join) -> anyhow::Result<UdpSocket> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let sock = socket2::SockRef::from(&socket);
    let _ = sock.set_recv_buffer_size(8 << 20);
    let _ = sock.set_send_buffer_size(8 << 20);
    socket.connect(relay)?;
    socket.set_read_timeout(Some(Duration::from_millis(300)))?;
    let hello = Packet::control(&Control::Hello { join }).encode();
    let mut buffer = vec![0u8; 65_536];
    let mut refused = None;
    for _ in 0..10 {
        socket.send(&hello)?;
        while let Ok(length) = socket.recv(&mut buffer) {
            if let Ok(Packet::Control(json)) = Packet::decode(&buffer[..length]) {
                match Control::parse(&json) {
                    Some(Control::HelloAck { .. }) => return Ok(socket),
                    // The ticket travels to the relay task in memory and may not be there yet
                    // on a loaded machine: ask again a little later.
                    Some(Control::Error { message }) => {
                        refused = Some(message);
                        std::thread::sleep(Duration::from_millis(300));
                        break;
                    }
                    _ => {}
                }
            }
        }
    }
    match refused {
        Some(message) => bail!("the relay refused: {message}"),
        None => bail!("the relay at {relay} did not answer"),
    }
}

/// What the viewer saw: frame packets, and each completed frame's id, time and size.
#[derive(Default)]
struct Seen {
    packets: u64,
    frames: Vec<(u64, Instant, usize)>,
}

fn spawn_viewer(socket: UdpSocket, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        let _ = socket.set_read_timeout(Some(Duration::from_millis(50)));
        let mut seen = Seen::default();
        let mut reassembler = Reassembler::new();
        let mut buffer = vec![0u8; 65_536];
        let mut pinged = Instant::now();
        let ping = Packet::control(&Control::Ping).encode();
        while !stop.load(Ordering::Relaxed) {
            if pinged.elapsed() > Duration::from_secs(1) {
                let _ = socket.send(&ping);
                pinged = Instant::now();
            }
            let Ok(length) = socket.recv(&mut buffer) else {
                continue;
            };
            if let Ok(Packet::Frame(chunk)) = Packet::decode(&buffer[..length]) {
                seen.packets += 1;
                if let Some(frame) = reassembler.push(chunk) {
                    seen.frames
                        .push((frame.frame_id, Instant::now(), frame.image.len()));
                }
            }
        }
        seen
    })
}

fn end_to_end(
    display: &str,
    scene: Scene,
    args: &DeskArgs,
    relay: SocketAddr,
    code: &str,
    ticket: &str,
) -> anyhow::Result<E2eReport> {
    let client = joined(relay, Join::Client { code: code.into() })?;
    let viewer = joined(
        relay,
        Join::Viewer {
            ticket: ticket.into(),
        },
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let viewer = spawn_viewer(viewer, stop.clone());
    let painter = PaintThread::start(display, scene)?;
    let mut capture = capture::open(Some(display))?;
    let encoder = JpegEncoder::new(args.quality);
    let period = Duration::from_secs_f64(1.0 / f64::from(args.fps.max(1)));
    let duration = Duration::from_secs(args.e2e_seconds.max(1));
    let bar = progress::spinner(&format!("{} end to end", scene.name()));
    let mut captured_at = Vec::new();
    let mut packets_sent = 0u64;
    let started = Instant::now();
    let mut i = 0u64;
    while started.elapsed() < duration {
        if let Some(wait) = (started + period * i as u32).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        painter.step(i + 1)?;
        let at = Instant::now();
        let frame = capture.grab()?;
        let jpeg = encoder.encode(&frame)?;
        captured_at.push(at);
        for chunk in chunk_frame(i + 1, &jpeg, DEFAULT_CHUNK_SIZE)? {
            if client.send(&Packet::Frame(chunk).encode()).is_ok() {
                packets_sent += 1;
            }
        }
        i += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let seen = viewer
        .join()
        .map_err(|_| anyhow::anyhow!("viewer thread panicked"))?;
    bar.finish_and_clear();
    let latencies: Vec<Duration> = seen
        .frames
        .iter()
        .filter_map(|(id, at, _)| {
            let captured = captured_at.get(usize::try_from(*id).ok()?.checked_sub(1)?)?;
            Some(*at - *captured)
        })
        .collect();
    let shown_bytes: usize = seen.frames.iter().map(|f| f.2).sum();
    Ok(E2eReport {
        seconds,
        frames_sent: i,
        frames_shown: seen.frames.len() as u64,
        frames_lost: i.saturating_sub(seen.frames.len() as u64),
        packets_sent,
        packets_received: seen.packets,
        fps_at_viewer: seen.frames.len() as f64 / seconds,
        mbit_per_s: shown_bytes as f64 * 8.0 / 1e6 / seconds,
        glass_to_glass: Summary::of_durations(&latencies),
    })
}

/// Offers the relay `relay_pps` frame packets per second (one full-motion frame, again and
/// again) and counts what reaches the viewer.
fn relay_flood(
    display: &str,
    args: &DeskArgs,
    relay: SocketAddr,
    code: &str,
    ticket: &str,
) -> anyhow::Result<RelayReport> {
    let painter = PaintThread::start(display, Scene::FullMotion)?;
    painter.step(1)?;
    let mut capture = capture::open(Some(display))?;
    let jpeg = JpegEncoder::new(args.quality).encode(&capture.grab()?)?;
    let client = joined(relay, Join::Client { code: code.into() })?;
    let viewer = joined(
        relay,
        Join::Viewer {
            ticket: ticket.into(),
        },
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let viewer = spawn_viewer(viewer, stop.clone());
    let bar = progress::spinner("relay packets/s");
    let duration = Duration::from_secs(args.relay_seconds.max(1));
    let started = Instant::now();
    let mut sent = 0u64;
    let mut frame_id = 1;
    'outer: loop {
        for chunk in chunk_frame(frame_id, &jpeg, DEFAULT_CHUNK_SIZE)? {
            // Pace: never ahead of relay_pps.
            let due = started + Duration::from_secs_f64(sent as f64 / args.relay_pps as f64);
            while Instant::now() < due {
                std::hint::spin_loop();
            }
            if started.elapsed() >= duration {
                break 'outer;
            }
            if client.send(&Packet::Frame(chunk).encode()).is_ok() {
                sent += 1;
            }
        }
        frame_id += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let seen = viewer
        .join()
        .map_err(|_| anyhow::anyhow!("viewer thread panicked"))?;
    bar.finish_and_clear();
    Ok(RelayReport {
        offered_pps: sent as f64 / seconds,
        delivered_pps: seen.packets as f64 / seconds,
        packets_sent: sent,
        packets_received: seen.packets,
        loss_percent: 100.0 * (1.0 - seen.packets as f64 / sent.max(1) as f64),
        udp_rmem_max: std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|text| text.trim().parse().ok()),
    })
}

pub fn render(report: &DeskReport) -> String {
    let mut out = format!(
        "{}x{} JPEG q{} (capture {})\n",
        report.width,
        report.height,
        report.quality,
        if report.shared_memory {
            "MIT-SHM"
        } else {
            "GetImage"
        }
    );
    let mut table = Table::new(&[
        "scene",
        "capture ms",
        "encode ms",
        "CPU ms/frame",
        "fps max",
        "KiB/frame",
        "changed-tiles KiB",
        "ffmpeg CPU ms",
        "ffmpeg KiB",
        "CPU ratio",
        "bytes ratio",
    ]);
    for s in &report.scenes {
        let ff = s.ffmpeg.as_ref();
        table.row(vec![
            s.scene.clone(),
            num(s.capture.mean_ms, 2),
            num(s.encode.mean_ms, 2),
            num(s.cpu_ms_per_frame, 2),
            num(s.achievable_fps, 1),
            num(s.bytes_per_frame / 1024.0, 1),
            s.changed_region_bytes
                .map_or("-".into(), |b| num(b / 1024.0, 2)),
            ff.map_or("-".into(), |f| num(f.cpu_ms_per_frame, 2)),
            ff.map_or("-".into(), |f| num(f.bytes_per_frame / 1024.0, 1)),
            s.cpu_ratio_to_ffmpeg.map_or("-".into(), |r| num(r, 2)),
            s.bytes_ratio_to_ffmpeg.map_or("-".into(), |r| num(r, 2)),
        ]);
    }
    out.push_str(&table.render());
    if report.scenes.iter().any(|s| s.e2e.is_some()) {
        let mut table = Table::new(&[
            "end to end",
            "sent",
            "shown",
            "lost",
            "fps",
            "Mbit/s",
            "pkt loss %",
            "g2g p50 ms",
            "g2g p95 ms",
            "g2g p99 ms",
        ]);
        for s in &report.scenes {
            let Some(e) = &s.e2e else { continue };
            table.row(vec![
                s.scene.clone(),
                e.frames_sent.to_string(),
                e.frames_shown.to_string(),
                e.frames_lost.to_string(),
                num(e.fps_at_viewer, 1),
                num(e.mbit_per_s, 1),
                num(
                    100.0 * (1.0 - e.packets_received as f64 / e.packets_sent.max(1) as f64),
                    3,
                ),
                num(e.glass_to_glass.p50_ms, 1),
                num(e.glass_to_glass.p95_ms, 1),
                num(e.glass_to_glass.p99_ms, 1),
            ]);
        }
        out.push('\n');
        out.push_str(&table.render());
    }
    if let Some(r) = &report.relay {
        out.push_str(&format!(
            "\nrelay: offered {} packets/s, delivered {} packets/s, loss {} % ({} of {})\n",
            num(r.offered_pps, 0),
            num(r.delivered_pps, 0),
            num(r.loss_percent, 3),
            r.packets_sent - r.packets_received.min(r.packets_sent),
            r.packets_sent
        ));
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}
