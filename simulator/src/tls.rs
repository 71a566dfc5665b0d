//! Start-up PKI: a CA (throwaway, or kept in `--state-dir`) and a server certificate for the
//! loopback names and any configured host names, because clients (azure_identity, the Azure
//! CLI) insist on https and must be able to trust us.

use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The generated CA (PEM, to hand to clients) and the rustls config serving the leaf.
pub struct Pki {
    /// PEM of the throwaway CA: clients must trust it (e.g. acr-attach's `--ca-bundle`).
    pub ca_pem: String,
    /// Serves a leaf for `localhost`, `127.0.0.1`, `::1` and the extra names, signed by that CA
    /// (ALPN h2, http/1.1).
    pub server_config: Arc<ServerConfig>,
}

/// Generates a fresh CA and a server certificate signed by it, for the loopback names plus
/// `extra_names` (host names or IP addresses clients use to reach the simulator).
pub fn generate(extra_names: &[String]) -> anyhow::Result<Pki> {
    Ca::generate()?.serve(extra_names)
}

/// The simulator's certificate authority: made at start, or kept across restarts
/// (`--state-dir`), so clients that trust it once keep trusting it.
pub(crate) struct Ca {
    cert_pem: String,
    key_pem: String,
}

/// The CA's subject and usages: the same every time, so a saved CA key signs leaves whose
/// issuer matches the saved CA certificate.
fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "acr-attach Azure simulator CA");
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "azure-simulator");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(ca_params)
}

impl Ca {
    pub fn generate() -> anyhow::Result<Ca> {
        let key = KeyPair::generate().context("generating CA key")?;
        let cert = ca_params()?.self_signed(&key).context("self-signing CA")?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A CA saved earlier with [`Self::cert_pem`] and [`Self::key_pem`].
    pub fn from_pem(cert_pem: String, key_pem: String) -> anyhow::Result<Ca> {
        KeyPair::from_pem(&key_pem).context("reading the CA key")?;
        CertificateDer::from_pem_slice(cert_pem.as_bytes()).context("reading the CA certificate")?;
        Ok(Ca { cert_pem, key_pem })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A fresh server certificate for the loopback names and `extra_names`, signed by this CA.
    pub fn serve(&self, extra_names: &[String]) -> anyhow::Result<Pki> {
        let issuer = Issuer::new(ca_params()?, KeyPair::from_pem(&self.key_pem).context("CA key")?);
        let leaf_key = KeyPair::generate().context("generating server key")?;
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
        for n in extra_names {
            if !names.iter().any(|x| x.eq_ignore_ascii_case(n)) {
                names.push(n.clone());
            }
        }
        let mut leaf = CertificateParams::new(names).context("server certificate names")?;
        leaf.distinguished_name.push(DnType::CommonName, "azure-simulator");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        let leaf_cert = leaf
            .signed_by(&leaf_key, &issuer)
            .context("signing server certificate")?;
        let ca_der = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).context("CA certificate")?;
        let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_der];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("TLS server certificate")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Pki {
            ca_pem: self.cert_pem.clone(),
            server_config: Arc::new(config),
        })
    }
}
