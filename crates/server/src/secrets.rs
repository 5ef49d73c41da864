//! Secrets at rest: values the server must read back later (customer API keys for `id.ini`,
//! the SMTP password) are sealed with XChaCha20-Poly1305 under a key kept in the data dir
//! (`secret.key`, mode 0600) — not in the database, so a copy of the database alone reveals
//! none of them. Replicas sharing one database must share this file.

use std::path::Path;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::accounts::write_private;

const NONCE_LEN: usize = 24;

pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl SecretBox {
    /// Loads `<data_dir>/secret.key`, creating it on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("secret.key");
        let key = if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let key = BASE64
                .decode(text.trim())
                .with_context(|| format!("{} is not base64", path.display()))?;
            if key.len() != 32 {
                bail!("{} must hold a 32-byte key", path.display());
            }
            key
        } else {
            let key = XChaCha20Poly1305::generate_key(&mut OsRng).to_vec();
            write_private(&path, &format!("{}\n", BASE64.encode(&key)))
                .with_context(|| format!("cannot write {}", path.display()))?;
            key
        };
        Ok(Self {
            cipher: XChaCha20Poly1305::new_from_slice(&key).context("bad key length")?,
        })
    }

    /// Base64 of nonce ‖ ciphertext.
    pub fn seal(&self, plaintext: &str) -> anyhow::Result<String> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(BASE64.encode(out))
    }

    pub fn open(&self, sealed: &str) -> anyhow::Result<String> {
        let bytes = BASE64
            .decode(sealed)
            .context("sealed value is not base64")?;
        if bytes.len() < NONCE_LEN {
            bail!("sealed value is too short");
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| {
                anyhow::anyhow!("sealed value does not open with this server's secret.key")
            })?;
        String::from_utf8(plain).context("sealed value is not UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = SecretBox::load_or_create(dir.path()).unwrap();
        let sealed = secrets.seal("sk_live_secret").unwrap();
        assert!(!sealed.contains("sk_live_secret"));
        assert_ne!(
            sealed,
            secrets.seal("sk_live_secret").unwrap(),
            "fresh nonce each time"
        );
        let again = SecretBox::load_or_create(dir.path()).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), "sk_live_secret");
        let other = SecretBox::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.open(&sealed).is_err());
        assert!(secrets.open("bm9uc2Vuc2U=").is_err());
    }
}
