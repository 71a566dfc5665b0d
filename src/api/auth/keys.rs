//! API keys, for callers that cannot use Entra: created and revoked with `acr-attach keys`,
//! shown once, stored only as a SHA-256 digest (a key is 256 random bits, so a fast hash is
//! enough: nothing to brute-force), each with a name the policy refers to and an optional
//! expiry.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

use crate::duration::parse_duration;

/// Every key starts with this, so it is recognisable (secret scanners, logs) and never taken
/// for a JWT.
pub const KEY_PREFIX: &str = "acr_";

/// A key's visible facts (never the key).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Names: what the policy and the audit trail call the caller.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&name.len())
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err("a key name is 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit".into())
    }
}

fn digest(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

#[derive(Clone)]
pub struct ApiKeyStore {
    pool: PgPool,
}

impl ApiKeyStore {
    pub fn new(pool: PgPool) -> Self {
        ApiKeyStore { pool }
    }

    /// Creates a key; the returned string is the only time it exists outside the caller.
    pub async fn create(&self, name: &str, expires_at: Option<DateTime<Utc>>) -> anyhow::Result<String> {
        validate_name(name).map_err(anyhow::Error::msg)?;
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
        let inserted = sqlx::query(
            "INSERT INTO api_key (id, name, digest, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(Uuid::new_v4())
        .bind(name)
        .bind(digest(&key))
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            anyhow::bail!("a key named '{name}' exists already; revoke it first or choose another name");
        }
        Ok(key)
    }

    pub async fn list(&self) -> anyhow::Result<Vec<ApiKeyInfo>> {
        Ok(sqlx::query_as(
            "SELECT name, created_at, expires_at, revoked_at, last_used_at FROM api_key ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Revokes the live key named `name`; false if there is none.
    pub async fn revoke(&self, name: &str) -> anyhow::Result<bool> {
        let r = sqlx::query("UPDATE api_key SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The name of the live key `key`, if it is one; records its use (at most once a minute).
    pub async fn authenticate(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        // A read on every request; the row is written only when its last use is a minute old.
        sqlx::query_scalar(
            "WITH k AS (SELECT id, name, last_used_at FROM api_key \
                        WHERE digest = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())), \
                  used AS (UPDATE api_key SET last_used_at = now() FROM k \
                           WHERE api_key.id = k.id \
                             AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')) \
             SELECT name FROM k",
        )
        .bind(digest(key))
        .fetch_optional(&self.pool)
        .await
    }
}

/// `acr-attach keys ...`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once and stored only as a digest.
    Create {
        /// The name the policy and the audit trail use for this caller.
        #[arg(long)]
        name: String,
        /// The key stops working after this long (e.g. 90d); without it, until revoked.
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<Duration>,
    },
    /// List the keys (names, dates; never the keys).
    List,
    /// Revoke the live key with this name.
    Revoke { name: String },
}

/// Runs `acr-attach keys ...`: the key is printed once, to stdout; everything else to stderr.
pub async fn run_command(command: KeysCommand, pool: PgPool) -> anyhow::Result<()> {
    let store = ApiKeyStore::new(pool);
    match command {
        KeysCommand::Create { name, expires_in } => {
            let expires_at = expires_in
                .map(|d| chrono::Duration::from_std(d).map(|d| Utc::now() + d))
                .transpose()?;
            let key = store.create(&name, expires_at).await?;
            eprintln!("API key '{name}' created; it is shown only now, store it safely:");
            println!("{key}");
        }
        KeysCommand::List => {
            for k in store.list().await? {
                let state = match (k.revoked_at, k.expires_at) {
                    (Some(r), _) => format!("revoked {r}"),
                    (None, Some(e)) if e <= Utc::now() => format!("expired {e}"),
                    (None, Some(e)) => format!("expires {e}"),
                    (None, None) => "no expiry".into(),
                };
                let used = k.last_used_at.map(|u| u.to_string()).unwrap_or_else(|| "never".into());
                println!("{}\tcreated {}\t{state}\tlast used {used}", k.name, k.created_at);
            }
        }
        KeysCommand::Revoke { name } => {
            if !store.revoke(&name).await? {
                anyhow::bail!("no live API key is named '{name}'");
            }
            eprintln!("API key '{name}' revoked");
        }
    }
    Ok(())
}
