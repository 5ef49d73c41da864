//! A TCP proxy in front of the test server: it can cut every connection and refuse new ones
//! (a network cut or a server restart, as the agent sees it), point at a new server instance,
//! and refuse WebSocket upgrades like a proxy that blocks them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    upstream: Arc<Mutex<Option<SocketAddr>>>,
    block_upgrades: Arc<std::sync::atomic::AtomicBool>,
    /// Bumped to cut every open connection.
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = Arc::new(Mutex::new(Some(upstream)));
        let block_upgrades = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let task = {
            let upstream = upstream.clone();
            let block = block_upgrades.clone();
            let generation = generation.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Some(target) = *upstream.lock().unwrap() else {
                        drop(client); // down: the connection closes at once
                        continue;
                    };
                    let block = block.load(std::sync::atomic::Ordering::SeqCst);
                    let mut cut = generation.subscribe();
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = forward(client, target, block) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            })
        };
        Proxy {
            addr,
            upstream,
            block_upgrades,
            generation,
            task,
        }
    }

    /// Cuts every connection; new ones are closed at once until `resume`.
    pub fn cut(&self) {
        *self.upstream.lock().unwrap() = None;
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn resume(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = Some(upstream);
    }

    /// From now on, WebSocket upgrades are answered 403 (existing connections are cut).
    pub fn block_upgrades(&self) {
        self.block_upgrades
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr, block_upgrades: bool) {
    let mut head = Vec::new();
    if block_upgrades {
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        if text.contains("upgrade: websocket") {
            let _ = client
                .write_all(
                    b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            return;
        }
    }
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    if server.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
