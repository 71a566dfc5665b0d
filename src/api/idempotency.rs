//! `Idempotency-Key` for POSTs: the first request's outcome (status and job) is stored in the
//! same transaction as the job it created; a repeat gets the same status and that job. The same
//! key with a different request is refused. Concurrent repeats wait on the key's row lock.
//! Keys belong to the caller who sent them: another caller's identical key is another request.
//! The API owns the table, and prunes it (keys are kept a day).
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::error::ApiError;

/// One request's key, scoped to its caller and route.
pub struct Key {
    scope: String,
    key: String,
    hash: String,
}

impl Key {
    /// `None` without an `Idempotency-Key` header.
    pub fn new(caller: &str, route: &str, key: Option<String>, path: &str, body: &[u8]) -> Option<Key> {
        key.map(|key| Key {
            scope: format!("{caller} {route}"),
            key,
            hash: request_hash(path, body),
        })
    }

    /// The first answer, if this key was used before for this request; claims the key otherwise
    /// (then [`Key::remember`] must follow in the same transaction).
    pub async fn replay(&self, conn: &mut PgConnection) -> Result<Option<(StatusCode, Uuid)>, ApiError> {
        let inserted: Option<(i32,)> = sqlx::query_as(
            "INSERT INTO idempotency_key (scope, key, request_hash, status, job_id) \
             VALUES ($1, $2, $3, 0, '00000000-0000-0000-0000-000000000000') \
             ON CONFLICT DO NOTHING RETURNING 1",
        )
        .bind(&self.scope)
        .bind(&self.key)
        .bind(&self.hash)
        .fetch_optional(&mut *conn)
        .await?;
        if inserted.is_some() {
            return Ok(None);
        }
        let (stored_hash, status, job_id): (String, i16, Uuid) =
            sqlx::query_as("SELECT request_hash, status, job_id FROM idempotency_key WHERE scope = $1 AND key = $2")
                .bind(&self.scope)
                .bind(&self.key)
                .fetch_one(&mut *conn)
                .await?;
        if stored_hash != self.hash {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IdempotencyKeyReused",
                "this Idempotency-Key was already used for a different request; use a new key for a new request",
            )
            .with_target("Idempotency-Key"));
        }
        Ok(Some((
            StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK),
            job_id,
        )))
    }

    /// Stores the answer of the first request.
    pub async fn remember(&self, conn: &mut PgConnection, status: StatusCode, job_id: Uuid) -> Result<(), ApiError> {
        sqlx::query("UPDATE idempotency_key SET status = $3, job_id = $4 WHERE scope = $1 AND key = $2")
            .bind(&self.scope)
            .bind(&self.key)
            .bind(status.as_u16() as i16)
            .bind(job_id)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// The request's fingerprint: its path and its body, a JSON body in canonical form (keys
/// sorted, no whitespace), so the same JSON written another way is the same request.
fn request_hash(path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(path.as_bytes());
    h.update([0]);
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => canonical(&v, &mut h),
        Err(_) => h.update(body),
    }
    hex::encode(h.finalize())
}

fn canonical(v: &serde_json::Value, h: &mut Sha256) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            h.update(b"{");
            for k in keys {
                h.update(Value::String(k.clone()).to_string().as_bytes());
                h.update(b":");
                canonical(&map[k], h);
                h.update(b",");
            }
            h.update(b"}");
        }
        Value::Array(items) => {
            h.update(b"[");
            for i in items {
                canonical(i, h);
                h.update(b",");
            }
            h.update(b"]");
        }
        scalar => h.update(scalar.to_string().as_bytes()),
    }
}

/// Keys older than a day: swept on each API replica (`db::sweep_every`; cheap).
pub const PRUNE: &str = "DELETE FROM idempotency_key WHERE created_at < now() - interval '24 hours'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_json_written_another_way_is_the_same_request() {
        let a = request_hash(
            "/v1/attachments",
            br#"{"cluster": "c", "registry": "r", "x": [1, {"b": 2, "a": 1}]}"#,
        );
        let b = request_hash(
            "/v1/attachments",
            br#"{"x":[1,{"a":1,"b":2}],"registry":"r","cluster":"c"}"#,
        );
        assert_eq!(a, b);
        let c = request_hash("/v1/attachments", br#"{"cluster": "c", "registry": "other"}"#);
        assert_ne!(a, c);
        assert_ne!(
            request_hash("/v1/attachments", b"[1,2]"),
            request_hash("/v1/attachments", b"[2,1]")
        );
        assert_ne!(
            a,
            request_hash(
                "/v1/detachments",
                br#"{"x":[1,{"a":1,"b":2}],"registry":"r","cluster":"c"}"#
            )
        );
    }
}
