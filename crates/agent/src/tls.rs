//! The agent's TLS client configuration (rustls with the ring provider): trust the server by
//! the SHA-256 pin of its certificate, by a CA file, by the web PKI roots, or — `--insecure` —
//! not at all. Handshake signatures are verified in every mode.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

/// How the agent decides that it talks to its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The end-entity certificate's DER must hash (SHA-256) to this.
    Pin([u8; 32]),
    /// Certificates chaining to the CA(s) in this PEM file.
    CaFile(PathBuf),
    /// The web PKI roots compiled in (webpki-roots).
    WebRoots,
    /// Any certificate (`--insecure`): encrypts, proves nothing.
    Insecure,
}

impl Trust {
    /// From the hex digits `id.ini` carries (colons allowed).
    pub fn pin_from_hex(hex_digits: &str) -> anyhow::Result<Self> {
        let clean: String = hex_digits.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(clean).context("the pin is not hexadecimal")?;
        let pin: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the pin is not 32 bytes (SHA-256)"))?;
        Ok(Trust::Pin(pin))
    }
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the one client configuration both the WebSocket and HTTP use.
pub fn client_config(trust: &Trust) -> anyhow::Result<Arc<ClientConfig>> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let config = match trust {
        Trust::Pin(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier {
                pin: Some(*pin),
                provider,
            }))
            .with_no_client_auth(),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier {
                pin: None,
                provider,
            }))
            .with_no_client_auth(),
        Trust::CaFile(path) => builder
            .with_root_certificates(roots_from_file(path)?)
            .with_no_client_auth(),
        Trust::WebRoots => {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

fn roots_from_file(path: &Path) -> anyhow::Result<RootCertStore> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.with_context(|| format!("{} is not PEM", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("{} holds an unusable certificate", path.display()))?;
    }
    anyhow::ensure!(!roots.is_empty(), "{} holds no certificate", path.display());
    Ok(roots)
}

pub fn fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    Sha256::digest(cert.as_ref()).into()
}

/// Accepts the server certificate whose SHA-256 is the pin (or any, when `pin` is `None`), and
/// still checks that the server proved it holds the certificate's key.
#[derive(Debug)]
pub struct PinVerifier {
    pin: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pin) = self.pin else {
            return Ok(ServerCertVerified::assertion());
        };
        let actual = fingerprint(end_entity);
        if actual == pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server certificate's SHA-256 is {}, not the pinned {}",
                hex::encode(actual),
                hex::encode(pin)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    struct TestServer {
        port: u16,
        cert_der: CertificateDer<'static>,
        cert_pem: String,
    }

    /// A TLS server on 127.0.0.1:0 with a fresh rcgen certificate that answers "pong" once per
    /// connection.
    async fn tls_server() -> TestServer {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let cert_der = cert.der().clone();
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone()], key_der)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut buf = [0u8; 4];
                        if tls.read_exact(&mut buf).await.is_ok() {
                            let _ = tls.write_all(b"pong").await;
                            let _ = tls.shutdown().await;
                        }
                    }
                });
            }
        });
        TestServer {
            port,
            cert_der,
            cert_pem: cert.pem(),
        }
    }

    async fn exchange(trust: &Trust, port: u16, name: &str) -> Result<(), String> {
        let config = client_config(trust).map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut reply = [0u8; 4];
        tls.read_exact(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(&reply, b"pong");
        Ok(())
    }

    #[tokio::test]
    async fn the_pinned_certificate_is_trusted_and_no_other() {
        let server = tls_server().await;
        let pin = Trust::pin_from_hex(&hex::encode(fingerprint(&server.cert_der))).unwrap();
        exchange(&pin, server.port, "127.0.0.1").await.unwrap();
        // The pin does not depend on the name the agent used.
        exchange(&pin, server.port, "some.other.name")
            .await
            .unwrap();

        let wrong = Trust::Pin([7; 32]);
        let err = exchange(&wrong, server.port, "127.0.0.1")
            .await
            .unwrap_err();
        assert!(err.contains("not the pinned"), "{err}");
        // A self-signed certificate is not in the web roots.
        assert!(exchange(&Trust::WebRoots, server.port, "127.0.0.1")
            .await
            .is_err());
        exchange(&Trust::Insecure, server.port, "127.0.0.1")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_ca_file_is_trusted_for_its_names() {
        let server = tls_server().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, &server.cert_pem).unwrap();
        let trust = Trust::CaFile(path.clone());
        exchange(&trust, server.port, "localhost").await.unwrap();
        assert!(exchange(&trust, server.port, "elsewhere.test")
            .await
            .is_err());
        std::fs::write(&path, "nothing").unwrap();
        assert!(client_config(&trust).is_err());
    }

    #[test]
    fn pins_parse_with_or_without_colons() {
        let hex_digits = "ab".repeat(32);
        let with_colons = vec!["AB"; 32].join(":");
        assert_eq!(
            Trust::pin_from_hex(&hex_digits).unwrap(),
            Trust::pin_from_hex(&with_colons).unwrap()
        );
        assert!(Trust::pin_from_hex("abcd").is_err());
    }
}
