//! Extractors that turn every kind of bad input into a precise 4xx in the one error shape.
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;

/// A JSON body: `Content-Type: application/json`, within the size limit, well-formed, and
/// matching the schema exactly (request types deny unknown fields).
pub struct JsonBody<T> {
    pub value: T,
    /// The raw body, for the idempotency request hash.
    pub raw: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !(mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))) {
            let got = if ct.is_empty() {
                "no Content-Type".to_string()
            } else {
                format!("Content-Type '{ct}'")
            };
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!("the request has {got}; send a JSON body with Content-Type: application/json"),
            )
            .with_target("Content-Type"));
        }
        let raw = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestBodyTooLarge",
                    "the request body is larger than the service accepts (ACR_ATTACH_MAX_BODY_BYTES)",
                )
            } else {
                ApiError::bad_request(
                    "InvalidRequestContent",
                    format!("the request body could not be read: {}", rej.body_text()),
                )
            }
        })?;
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "InvalidRequestContent",
                "the request body is empty; expected a JSON object",
            ));
        }
        let de = &mut serde_json::Deserializer::from_slice(&raw);
        let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let what = if inner.is_syntax() || inner.is_eof() {
                "is not valid JSON"
            } else {
                "does not match the schema"
            };
            let err = ApiError::bad_request("InvalidRequestContent", format!("the request body {what}: {inner}"));
            if path == "." { err } else { err.with_target(path) }
        })?;
        Ok(JsonBody { value, raw })
    }
}

/// Query-string parameters, with a 400 naming the bad parameter.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|q| QueryParams(q.0))
            .map_err(|rej| ApiError::bad_request("InvalidQueryParameter", rej.body_text()))
    }
}

/// `Idempotency-Key`: makes a POST safely repeatable (the first answer is replayed).
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let bad = || {
            ApiError::bad_request(
                "InvalidIdempotencyKey",
                "Idempotency-Key must be 1 to 255 printable ASCII characters (a UUID is a good choice)",
            )
            .with_target("Idempotency-Key")
        };
        let s = v.to_str().map_err(|_| bad())?.trim();
        if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(bad());
        }
        Ok(IdempotencyKey(Some(s.to_string())))
    }
}

/// A job id from the path; anything but a UUID is a 400, not a 404.
pub fn parse_job_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::bad_request("InvalidJobId", format!("'{raw}' is not a job id; job ids are UUIDs")).with_target("id")
    })
}
