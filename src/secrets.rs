//! Sealing what a job must carry but nobody may read: an import's source-registry password.
//! AES-256-GCM with a key from configuration (`ACR_ATTACH_SECRETS_KEY`, 32 bytes, base64),
//! a random nonce per secret, and the job id as associated data, so a sealed value copied to
//! another job's row does not open. Only the worker that runs the job opens it, in memory.
//!
//! Without a key, the API refuses credentials (400) rather than store them readable. Under
//! `--simulator` a key is made at start (a restart then cannot open what was sealed before:
//! the import fails saying so).
use std::fmt;

use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;

/// The sealing key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// Parses `ACR_ATTACH_SECRETS_KEY`: base64 (standard or URL-safe) of exactly 32 bytes.
pub fn parse_key(s: &str) -> Result<SecretKey, String> {
    let s = s.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s))
        .map_err(|_| "the secrets key must be base64 (e.g. `openssl rand -base64 32`)".to_string())?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("the secrets key must be 32 bytes, not {}", b.len()))?;
    Ok(SecretKey(key))
}

impl SecretKey {
    /// A random key (demo mode).
    pub fn generate() -> SecretKey {
        let mut k = [0u8; 32];
        SystemRandom::new()
            .fill(&mut k)
            .expect("the system random source works");
        SecretKey(k)
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).expect("a 32-byte AES-256 key"))
    }

    /// Seals `plain` for `job`: `(nonce, sealed)`.
    pub fn seal(&self, job: Uuid, plain: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system random source works");
        let mut sealed = plain.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(job.as_bytes()),
                &mut sealed,
            )
            .expect("sealing a small value");
        (nonce.to_vec(), sealed)
    }

    /// Opens what [`Self::seal`] sealed for the same job; `None` if the key, job or bytes differ.
    pub fn open(&self, job: Uuid, nonce: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let mut buf = sealed.to_vec();
        let plain = self
            .aead()
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(job.as_bytes()), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_job_and_key() {
        let key = SecretKey::generate();
        let (job, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (nonce, sealed) = key.seal(job, b"s3cret");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(key.open(job, &nonce, &sealed).as_deref(), Some(&b"s3cret"[..]));
        assert_eq!(key.open(other, &nonce, &sealed), None);
        assert_eq!(SecretKey::generate().open(job, &nonce, &sealed), None);
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert_eq!(key.open(job, &nonce, &tampered), None);
    }

    #[test]
    fn keys_are_32_bytes_of_base64_and_never_printed() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let key = parse_key(&b64).unwrap();
        assert_eq!(format!("{key:?}"), "SecretKey(***)");
        assert!(parse_key("short").is_err());
        assert!(parse_key(&base64::engine::general_purpose::STANDARD.encode([7u8; 16])).is_err());
    }
}
