//! Listening and serving: bind both listeners up front (so a port problem is one clear error
//! before anything starts), then serve the same app on HTTP and HTTPS until shutdown, letting
//! requests in flight finish.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;

/// How long requests in flight may take to finish after shutdown begins.
const DRAIN: Duration = Duration::from_secs(20);

pub struct Listeners {
    pub http: TcpListener,
    pub https: TcpListener,
}

impl Listeners {
    pub fn bind(ip: IpAddr, http_port: u16, https_port: u16) -> anyhow::Result<Self> {
        Ok(Self {
            http: bind_one(ip, http_port, "HTTP", "--http-port")?,
            https: bind_one(ip, https_port, "HTTPS", "--https-port")?,
        })
    }
}

fn bind_one(ip: IpAddr, port: u16, what: &str, flag: &str) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::new(ip, port);
    let listener = TcpListener::bind(addr).map_err(|err| {
        let fix = match err.kind() {
            io::ErrorKind::PermissionDenied => format!(
                "ports below 1024 need root or the capability to bind them \
                 (setcap cap_net_bind_service=+ep skyshift-server); or choose a port above 1024 with {flag}"
            ),
            io::ErrorKind::AddrInUse => {
                format!("another program is using it; stop it or choose another port with {flag}")
            }
            _ => format!("choose another address with --bind or another port with {flag}"),
        };
        anyhow::anyhow!("cannot listen for {what} on {addr}: {err}; {fix}")
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `app` on both listeners until `shutdown` completes, then drains.
pub async fn serve(
    app: Router,
    listeners: Listeners,
    tls: RustlsConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let handle = Handle::new();
    let make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let http = axum_server::from_tcp(listeners.http)
        .handle(handle.clone())
        .serve(make_service.clone());
    let https = axum_server::from_tcp_rustls(listeners.https, tls)
        .handle(handle.clone())
        .serve(make_service);
    let servers = async {
        let (http, https) = tokio::join!(http, https);
        http.and(https)
    };
    tokio::pin!(servers);
    tokio::select! {
        result = &mut servers => return result,
        () = shutdown => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
    handle.graceful_shutdown(Some(DRAIN));
    servers.await
}
