//! The HTTPS certificate: the operator's (`--tls-cert`/`--tls-key`) or one generated on first
//! start into `<data-dir>/tls/` and reused afterwards.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::accounts::write_private;
use crate::config::Config;

pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// SHA-256 of the leaf certificate (DER), lower-case hex: what agents pin.
    pub fingerprint: String,
}

/// Finds or creates the certificate and key to serve.
pub fn prepare(config: &Config) -> anyhow::Result<TlsFiles> {
    let (cert, key) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => {
            let dir = config.data_dir.join("tls");
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !cert.exists() || !key.exists() {
                generate(&dir, &cert, &key, config.public_host.as_deref())?;
            }
            (cert, key)
        }
    };
    let fingerprint = fingerprint(&cert)?;
    Ok(TlsFiles {
        cert,
        key,
        fingerprint,
    })
}

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

fn generate(
    dir: &Path,
    cert_path: &Path,
    key_path: &Path,
    public_host: Option<&str>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    names.extend(host_name());
    names.extend(public_host.map(str::to_owned));
    names.dedup();
    let mut params = rcgen::CertificateParams::new(names.clone())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "SkyShift Remote server");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    std::fs::write(cert_path, cert.pem())
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    write_private(key_path, &key.serialize_pem())
        .with_context(|| format!("cannot write {}", key_path.display()))?;
    tracing::info!(path = %cert_path.display(), names = ?names, "generated a self-signed TLS certificate");
    Ok(())
}

fn fingerprint(cert_path: &Path) -> anyhow::Result<String> {
    let pem =
        std::fs::read(cert_path).with_context(|| format!("cannot read {}", cert_path.display()))?;
    let Some(first) = rustls_pemfile::certs(&mut pem.as_slice()).next() else {
        bail!("{} holds no certificate", cert_path.display());
    };
    let der = first.with_context(|| format!("{} is not valid PEM", cert_path.display()))?;
    Ok(hex::encode(Sha256::digest(der.as_ref())))
}
