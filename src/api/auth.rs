//! API keys for `/v1`: acr-attach can grant pull access to any registry its own identity
//! manages, so who may ask it matters. Keys are compared by their SHA-256 digests in constant
//! time; they are never logged. Health, readiness, metrics and the docs stay open (probes and
//! scrapers carry no keys). Without configured keys the API is open, and start-up says so.
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;

use super::error::ApiError;

#[derive(Clone, Default)]
pub struct ApiKeys(Arc<Vec<[u8; 32]>>);

impl ApiKeys {
    pub fn new(keys: &[String]) -> ApiKeys {
        ApiKeys(Arc::new(
            keys.iter()
                .map(|k| k.trim())
                .filter(|k| !k.is_empty())
                .map(digest)
                .collect(),
        ))
    }

    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    fn accepts(&self, presented: &str) -> bool {
        let d = digest(presented);
        // Every key is compared, each in constant time: no timing tells how close a guess was.
        self.0.iter().fold(false, |ok, k| {
            let diff = k.iter().zip(d.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            ok | (diff == 0)
        })
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// `Authorization: Bearer <key>` on every `/v1` request when keys are configured.
pub async fn require_key(State(keys): State<ApiKeys>, req: Request, next: Next) -> Response {
    if keys.is_open() || !req.uri().path().starts_with("/v1/") {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let refusal = match presented {
        Some(key) if keys.accepts(key) => return next.run(req).await,
        Some(_) => "the API key is not valid",
        None => "this API needs an API key: send Authorization: Bearer <key>",
    };
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", refusal)
        .with_target("Authorization")
        .into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"acr-attach\""),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_keys_pass() {
        let keys = ApiKeys::new(&["alpha".into(), " beta ".into(), "".into()]);
        assert!(!keys.is_open());
        assert!(keys.accepts("alpha") && keys.accepts("beta"));
        assert!(!keys.accepts("alph") && !keys.accepts("") && !keys.accepts("gamma"));
        assert!(ApiKeys::new(&[]).is_open());
    }
}
