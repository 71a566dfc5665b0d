//! Token signing keys, as Entra publishes them: RSA-2048 key pairs made at start-up, each with
//! a self-signed certificate so the JWKS carries `x5t` and `x5c`, and `kid` equal to `x5t`
//! (the base64url SHA-1 thumbprint of the certificate), as Entra's keys have.
//!
//! The `rsa` crate only generates the keys; signing and verification go through `ring`.

use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, anyhow};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{CertificateParams, DnType};
use ring::signature::{self, RsaKeyPair, RsaPublicKeyComponents};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use rustls::pki_types::PrivatePkcs8KeyDer;
use serde_json::{Value, json};

/// One RSA signing key with its certificate.
pub(crate) struct SigningKey {
    /// Key id: the certificate thumbprint, base64url (Entra's `kid` and `x5t` are the same).
    pub kid: String,
    /// `x5c`: the certificate, standard base64 of its DER.
    x5c: String,
    n: Vec<u8>,
    e: Vec<u8>,
    pair: RsaKeyPair,
    /// The private key (PKCS#8 DER) and certificate (DER), to save it (`--state-dir`).
    pkcs8: Vec<u8>,
    cert_der: Vec<u8>,
}

impl SigningKey {
    /// Generates a fresh RSA-2048 key pair and its self-signed certificate.
    pub fn generate() -> anyhow::Result<SigningKey> {
        let private =
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).context("generating the RSA signing key")?;
        let pkcs8 = private.to_pkcs8_der().context("encoding the RSA signing key")?;
        let cert_key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.as_bytes()),
            &rcgen::PKCS_RSA_SHA256,
        )
        .context("loading the RSA signing key for its certificate")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "accounts.accesscontrol.windows.net");
        let cert = params
            .self_signed(&cert_key)
            .context("self-signing the token signing certificate")?;
        Self::from_parts(pkcs8.as_bytes(), cert.der())
    }

    /// A key saved earlier: its PKCS#8 DER and its certificate's DER.
    pub fn from_parts(pkcs8: &[u8], cert_der: &[u8]) -> anyhow::Result<SigningKey> {
        let private = rsa::RsaPrivateKey::from_pkcs8_der(pkcs8).context("reading the RSA signing key")?;
        let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| anyhow!("loading the RSA signing key: {e}"))?;
        let thumbprint = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert_der);
        Ok(SigningKey {
            kid: URL_SAFE_NO_PAD.encode(thumbprint.as_ref()),
            x5c: STANDARD.encode(cert_der),
            n: private.n().to_bytes_be(),
            e: private.e().to_bytes_be(),
            pair,
            pkcs8: pkcs8.to_vec(),
            cert_der: cert_der.to_vec(),
        })
    }

    /// The PKCS#8 DER of the private key and the certificate's DER, for [`Self::from_parts`].
    pub fn parts(&self) -> (&[u8], &[u8]) {
        (&self.pkcs8, &self.cert_der)
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (`RS256`).
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        let rng = ring::rand::SystemRandom::new();
        let mut sig = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &rng, input, &mut sig)
            .expect("RS256 signing with a valid key");
        sig
    }

    /// Checks an `RS256` signature with the public key.
    pub fn verify(&self, input: &[u8], sig: &[u8]) -> bool {
        RsaPublicKeyComponents { n: &self.n, e: &self.e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, input, sig)
            .is_ok()
    }

    /// The key as a JWK, in Entra's shape (`issuer` only on the v2.0 tenant endpoint).
    pub fn jwk(&self, issuer: Option<&str>) -> Value {
        let mut k = json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
            "x5c": [self.x5c],
            "cloud_instance_name": "microsoftonline.com",
        });
        if let Some(iss) = issuer {
            k["issuer"] = Value::String(iss.to_string());
        }
        k
    }
}

/// The published keys: the current signing key, the previous ones still published (Entra
/// overlaps keys around a rotation), and a key that is never published (for forged tokens).
pub(crate) struct KeyRing {
    state: Mutex<Keys>,
}

struct Keys {
    current: Arc<SigningKey>,
    previous: Vec<Arc<SigningKey>>,
    unpublished: Option<Arc<SigningKey>>,
}

impl KeyRing {
    pub fn new(first: SigningKey) -> Self {
        KeyRing {
            state: Mutex::new(Keys {
                current: Arc::new(first),
                previous: Vec::new(),
                unpublished: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Keys> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key tokens are signed with now.
    pub fn current(&self) -> Arc<SigningKey> {
        self.lock().current.clone()
    }

    /// Every key in the JWKS: the current one first, then previous ones, newest first.
    pub fn published(&self) -> Vec<Arc<SigningKey>> {
        let k = self.lock();
        std::iter::once(k.current.clone())
            .chain(k.previous.iter().cloned())
            .collect()
    }

    /// A published key by `kid`.
    pub fn find(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.published().into_iter().find(|k| k.kid == kid)
    }

    /// Makes `next` the signing key; the old one stays published.
    pub fn rotate(&self, next: SigningKey) {
        let mut k = self.lock();
        let old = std::mem::replace(&mut k.current, Arc::new(next));
        k.previous.insert(0, old);
    }

    /// Drops every key but the current one from the JWKS.
    pub fn retire_previous(&self) {
        self.lock().previous.clear();
    }

    /// A key that is never published (made on first use).
    pub fn unpublished(&self) -> anyhow::Result<Arc<SigningKey>> {
        if let Some(k) = self.lock().unpublished.clone() {
            return Ok(k);
        }
        let key = Arc::new(SigningKey::generate()?);
        Ok(self.lock().unpublished.get_or_insert(key).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sign_verify_and_rotate() {
        let started = std::time::Instant::now();
        let a = SigningKey::generate().unwrap();
        assert!(
            started.elapsed().as_secs() < 5,
            "key generation is fast enough for test start-up"
        );
        assert_eq!(a.kid.len(), 27, "base64url of a 20-byte SHA-1 thumbprint");
        let sig = a.sign(b"data");
        assert!(a.verify(b"data", &sig));
        assert!(!a.verify(b"datb", &sig));
        assert_eq!(a.jwk(None)["e"], "AQAB");
        let kid_a = a.kid.clone();
        let ring = KeyRing::new(a);
        let b = SigningKey::generate().unwrap();
        assert!(!b.verify(b"data", &sig));
        let kid_b = b.kid.clone();
        ring.rotate(b);
        assert_eq!(ring.current().kid, kid_b);
        assert!(ring.find(&kid_a).is_some());
        ring.retire_previous();
        assert!(ring.find(&kid_a).is_none());
        assert_eq!(ring.published().len(), 1);
        let u = ring.unpublished().unwrap();
        assert!(ring.find(&u.kid).is_none());
        assert_eq!(ring.unpublished().unwrap().kid, u.kid);
    }
}
