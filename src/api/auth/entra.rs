//! Microsoft Entra ID bearer tokens: OpenID discovery and the JWKS of the configured authority,
//! cached and fetched again when a token names a key id the cache does not know (Entra rotates
//! its signing keys). The JWT work is `jsonwebtoken`'s: RS256 only, signature, issuer, audience,
//! expiry and not-before checked. A token is never logged.
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

use super::Caller;

/// What the validator needs to know.
#[derive(Debug, Clone)]
pub struct EntraSettings {
    /// `https://login.microsoftonline.com/{tenant}/v2.0`: discovery is at
    /// `{authority}/.well-known/openid-configuration`.
    pub authority: String,
    /// Accepted `aud` values (the API's application id and/or its identifier URI).
    pub audiences: Vec<String>,
    /// An unknown `kid` fetches the JWKS again at most this often.
    pub refresh_interval: Duration,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
}

/// Why a token was refused (said to the caller in `WWW-Authenticate`, without echoing it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefusal {
    Invalid(String),
    /// The keys could not be fetched: not the caller's fault.
    Unavailable(String),
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

struct Keys {
    issuer: String,
    jwks_uri: String,
    by_kid: HashMap<String, DecodingKey>,
    fetched: Instant,
}

#[derive(Debug, Deserialize)]
struct Claims {
    oid: Option<String>,
    sub: Option<String>,
    tid: Option<String>,
    /// v2 tokens: the client application.
    azp: Option<String>,
    /// v1 tokens: the client application.
    appid: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

pub struct EntraValidator {
    settings: EntraSettings,
    http: reqwest::Client,
    keys: RwLock<Option<Keys>>,
}

impl EntraValidator {
    pub fn new(settings: EntraSettings, http: reqwest::Client) -> Self {
        EntraValidator {
            settings,
            http,
            keys: RwLock::new(None),
        }
    }

    pub fn authority(&self) -> &str {
        &self.settings.authority
    }

    /// Validates `token`; the caller it names, or why not.
    pub async fn validate(&self, token: &str) -> Result<Caller, TokenRefusal> {
        let header = decode_header(token).map_err(|_| invalid("the token is not a well-formed JWT"))?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid("the token must be signed with RS256"));
        }
        let kid = header
            .kid
            .ok_or_else(|| invalid("the token names no signing key (kid)"))?;
        let (key, issuer) = self.key(&kid).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&self.settings.audiences);
        v.set_issuer(&[issuer.as_str()]);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
        v.validate_nbf = true;
        v.leeway = self.settings.leeway.as_secs();
        let data = decode::<Claims>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind::*;
            invalid(match e.kind() {
                ExpiredSignature => "the token has expired",
                ImmatureSignature => "the token is not valid yet (nbf)",
                InvalidAudience => "the token is for another audience",
                InvalidIssuer => "the token is from another issuer",
                InvalidSignature => "the token's signature is not valid",
                MissingRequiredClaim(_) => "the token lacks a required claim (exp, nbf, iss, aud)",
                _ => "the token is not valid",
            })
        })?;
        let c = data.claims;
        let oid = c
            .oid
            .or(c.sub)
            .filter(|o| uuid::Uuid::parse_str(o).is_ok())
            .ok_or_else(|| invalid("the token carries no object id (oid)"))?;
        Ok(Caller::entra(oid, c.azp.or(c.appid), c.tid, c.roles))
    }

    /// The key for `kid`, fetching discovery and the JWKS when it is not known yet (first use,
    /// or a rotation), at most once per refresh interval.
    async fn key(&self, kid: &str) -> Result<(DecodingKey, String), TokenRefusal> {
        {
            let guard = self.keys.read().await;
            if let Some(keys) = guard.as_ref() {
                if let Some(k) = keys.by_kid.get(kid) {
                    return Ok((k.clone(), keys.issuer.clone()));
                }
                if keys.fetched.elapsed() < self.settings.refresh_interval {
                    return Err(invalid("the token is signed by an unknown key"));
                }
            }
        }
        let mut guard = self.keys.write().await;
        // Another request may have refreshed meanwhile.
        let fresh = guard
            .as_ref()
            .is_some_and(|k| k.fetched.elapsed() < self.settings.refresh_interval);
        if !fresh {
            let jwks_uri = guard.as_ref().map(|k| k.jwks_uri.clone());
            *guard = Some(self.fetch(jwks_uri).await?);
        }
        let keys = guard.as_ref().expect("just fetched");
        match keys.by_kid.get(kid) {
            Some(k) => Ok((k.clone(), keys.issuer.clone())),
            None => Err(invalid("the token is signed by an unknown key")),
        }
    }

    /// Fetches discovery (first time) and the JWKS. Warms the cache at start-up too.
    pub async fn refresh(&self) -> Result<usize, TokenRefusal> {
        let mut guard = self.keys.write().await;
        let jwks_uri = guard.as_ref().map(|k| k.jwks_uri.clone());
        let keys = self.fetch(jwks_uri).await?;
        let n = keys.by_kid.len();
        *guard = Some(keys);
        Ok(n)
    }

    async fn fetch(&self, known_jwks_uri: Option<String>) -> Result<Keys, TokenRefusal> {
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.authority.trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(&discovery_url).await?;
        let jwks_uri = known_jwks_uri.unwrap_or(discovery.jwks_uri);
        if !jwks_uri.starts_with("https://") {
            return Err(TokenRefusal::Unavailable(format!(
                "the authority's jwks_uri is not https: {jwks_uri}"
            )));
        }
        let set: JwkSet = self.get_json(&jwks_uri).await?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                by_kid.insert(kid, key);
            }
        }
        tracing::info!(keys = by_kid.len(), issuer = %discovery.issuer, "Entra signing keys fetched");
        Ok(Keys {
            issuer: discovery.issuer,
            jwks_uri,
            by_kid,
            fetched: Instant::now(),
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, TokenRefusal> {
        let unavailable = |e: String| TokenRefusal::Unavailable(format!("fetching {url}: {e}"));
        let resp = self
            .http
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("HTTP {}", resp.status())));
        }
        resp.json().await.map_err(|e| unavailable(e.to_string()))
    }
}

fn invalid(why: &str) -> TokenRefusal {
    TokenRefusal::Invalid(why.to_string())
}
