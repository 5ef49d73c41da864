//! The reference for connection memory: a `nats-server` started on a free loopback port, the
//! same count of idle clients held open against it (`CONNECT` + `PING` → `PONG`, then answering
//! the server's pings), and its resident memory per client.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::procfs;
use crate::progress;

#[derive(Debug, Default, Serialize)]
pub struct NatsReport {
    pub clients: usize,
    pub connect_seconds: f64,
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    pub bytes_per_client: f64,
}

/// Kills the child when dropped, whatever happened.
struct Child(tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

pub async fn measure(binary: &Path, clients: usize) -> anyhow::Result<NatsReport> {
    let binary = if binary == Path::new("nats-server") && which("nats-server").is_none() {
        Path::new("/usr/sbin/nats-server")
    } else {
        binary
    };
    let port = free_port()?;
    let child = tokio::process::Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let child = Child(child);
    let pid = child.0.id().context("nats-server exited at once")?;
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&address).await.is_err() {
        if Instant::now() > deadline {
            bail!("nats-server did not accept connections on {address}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = procfs::rss_bytes(pid)?;

    let bar = progress::bar(clients as u64, "NATS clients");
    let started = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let semaphore = Arc::new(Semaphore::new(64));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<anyhow::Result<()>>(1024);
    let mut running = JoinSet::new();
    for _ in 0..clients {
        let (address, stop, semaphore, ready) = (
            address.clone(),
            stop_rx.clone(),
            semaphore.clone(),
            ready_tx.clone(),
        );
        running.spawn(async move {
            let connected = {
                let _permit = semaphore.acquire_owned().await;
                handshake(&address).await
            };
            match connected {
                Ok(stream) => {
                    let _ = ready.send(Ok(())).await;
                    hold(stream, stop).await;
                }
                Err(err) => {
                    let _ = ready.send(Err(err)).await;
                }
            }
        });
    }
    drop(ready_tx);
    let mut connected = 0;
    for _ in 0..clients {
        match ready_rx.recv().await {
            Some(Ok(())) => connected += 1,
            Some(Err(err)) => eprintln!("a NATS client failed: {err:#}"),
            None => break,
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let connect_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = procfs::rss_bytes(pid)?;
    let _ = stop_tx.send(true);
    while running.join_next().await.is_some() {}
    drop(child);
    if connected == 0 {
        bail!("no client could connect to nats-server");
    }
    Ok(NatsReport {
        clients: connected,
        connect_seconds,
        rss_before_bytes: rss_before,
        rss_after_bytes: rss_after,
        bytes_per_client: rss_after.saturating_sub(rss_before) as f64 / connected as f64,
    })
}

type Stream = BufReader<TcpStream>;

async fn handshake(address: &str) -> anyhow::Result<Stream> {
    let mut stream = BufReader::with_capacity(512, TcpStream::connect(address).await?);
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    if !line.starts_with("INFO") {
        bail!("nats-server greeted with {line:?}");
    }
    stream
        .get_mut()
        .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n")
        .await?;
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            bail!("nats-server closed the connection");
        }
        match line.trim_end() {
            "PONG" => return Ok(stream),
            "PING" => stream.get_mut().write_all(b"PONG\r\n").await?,
            other if other.starts_with("-ERR") => bail!("nats-server: {other}"),
            _ => {}
        }
    }
}

/// Idles until told to stop, answering the server's keep-alive pings.
async fn hold(mut stream: Stream, mut stop: watch::Receiver<bool>) {
    let mut line = String::new();
    loop {
        line.clear();
        tokio::select! {
            read = stream.read_line(&mut line) => {
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.trim_end() == "PING" => {
                        if stream.get_mut().write_all(b"PONG\r\n").await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                }
            }
            _ = stop.changed() => break,
        }
    }
}

/// A loopback port nobody listens on now (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
}
