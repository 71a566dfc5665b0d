//! `--state-dir`: the keys a standalone simulator keeps across restarts, as Azure keeps its own
//! for weeks. Without it every start makes a new CA and a new token signing key: clients must
//! be given the new CA, and tokens they cached (the Azure CLI and MSAL cache them for an hour)
//! no longer verify. With it, a restarted simulator is the same "cloud" to them.
//!
//! Files: `ca.pem` (the CA certificate clients trust), `ca-key.pem`, `signing-key.der` (PKCS#8)
//! and `signing-cert.der`. Key files are written owner-only. The world itself is not kept:
//! role assignments and other state start again from the world file.

use std::path::Path;

use anyhow::Context;

use crate::keys::SigningKey;
use crate::tls::Ca;

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const SIGNING_KEY: &str = "signing-key.der";
const SIGNING_CERT: &str = "signing-cert.der";

/// Loads the CA and signing key from `dir`, or makes and saves them there.
pub(crate) fn load_or_create(dir: &Path) -> anyhow::Result<(Ca, SigningKey)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating the state directory {}", dir.display()))?;
    let ca = match (read_text(&dir.join(CA_CERT))?, read_text(&dir.join(CA_KEY))?) {
        (Some(cert), Some(key)) => Ca::from_pem(cert, key).with_context(|| format!("in {}", dir.display()))?,
        _ => {
            let ca = Ca::generate()?;
            write(&dir.join(CA_KEY), ca.key_pem().as_bytes(), true)?;
            write(&dir.join(CA_CERT), ca.cert_pem().as_bytes(), false)?;
            ca
        }
    };
    let signing = match (read(&dir.join(SIGNING_KEY))?, read(&dir.join(SIGNING_CERT))?) {
        (Some(key), Some(cert)) => {
            SigningKey::from_parts(&key, &cert).with_context(|| format!("in {}", dir.display()))?
        }
        _ => {
            let key = SigningKey::generate()?;
            let (pkcs8, cert) = key.parts();
            write(&dir.join(SIGNING_KEY), pkcs8, true)?;
            write(&dir.join(SIGNING_CERT), cert, false)?;
            key
        }
    };
    Ok((ca, signing))
}

fn read(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn read_text(path: &Path) -> anyhow::Result<Option<String>> {
    read(path)?
        .map(|b| String::from_utf8(b).with_context(|| format!("{} is not text", path.display())))
        .transpose()
}

fn write(path: &Path, bytes: &[u8], secret: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    use std::io::Write;
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("writing {}", path.display()))
}
