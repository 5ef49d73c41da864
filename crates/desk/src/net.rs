//! Talking to the server from the desk programs: an HTTP client and the signaling WebSocket,
//! over plain TCP or TLS (system roots, plus `--ca-cert` for a self-signed server).

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::WebSocketStream;

/// Either side of a WebSocket: plain or TLS.
pub type Socket = WebSocketStream<Box<dyn Stream>>;

pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

pub struct Server {
    /// `http(s)://host:port`, no trailing slash.
    pub base: String,
    pub http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
}

impl Server {
    pub fn new(base: &str, ca_cert: Option<&Path>) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("the server URL must start with http:// or https:// (got {base})");
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = ca_cert {
            let pem =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                roots
                    .add(cert.with_context(|| format!("{} is not PEM", path.display()))?)
                    .context("unusable CA certificate")?;
            }
        }
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tls = Arc::new(tls);
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .timeout(std::time::Duration::from_secs(15))
            .build()?;
        Ok(Self { base, http, tls })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Opens a WebSocket on `path` (http→ws, https→wss), with `Authorization: Bearer` if given.
    pub async fn websocket(&self, path: &str, bearer: Option<&str>) -> anyhow::Result<Socket> {
        let url = self.url(path).replacen("http", "ws", 1);
        let mut request = url.as_str().into_client_request()?;
        if let Some(token) = bearer {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
        }
        let uri = request.uri().clone();
        let host = uri
            .host()
            .context("server URL without a host")?
            .trim_matches(['[', ']'])
            .to_owned();
        let secure = uri.scheme_str() == Some("wss");
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Stream> = if secure {
            let name = rustls::pki_types::ServerName::try_from(host.clone())?;
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            Box::new(connector.connect(name, tcp).await?)
        } else {
            Box::new(tcp)
        };
        let (socket, _) = tokio_tungstenite::client_async(request, stream).await?;
        Ok(socket)
    }
}
