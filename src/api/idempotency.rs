//! `Idempotency-Key` for POSTs: the first request's outcome (status and job) is stored in the
//! same transaction as the job it created; a repeat gets the same status and that job. The same
//! key with a different request is refused. Concurrent repeats wait on the key's row lock.
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::error::ApiError;

pub enum Claim {
    /// First use of the key: go ahead, then call [`remember`] in the same transaction.
    New,
    /// The key was used before for this request: answer like the first time.
    Replay { status: StatusCode, job_id: Uuid },
}

pub fn request_hash(path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

pub async fn claim(conn: &mut PgConnection, scope: &str, key: &str, hash: &str) -> Result<Claim, ApiError> {
    let inserted: Option<(i32,)> = sqlx::query_as(
        "INSERT INTO idempotency_key (scope, key, request_hash, status, job_id) \
         VALUES ($1, $2, $3, 0, '00000000-0000-0000-0000-000000000000') \
         ON CONFLICT DO NOTHING RETURNING 1",
    )
    .bind(scope)
    .bind(key)
    .bind(hash)
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_some() {
        return Ok(Claim::New);
    }
    let (stored_hash, status, job_id): (String, i16, Uuid) =
        sqlx::query_as("SELECT request_hash, status, job_id FROM idempotency_key WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
    if stored_hash != hash {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IdempotencyKeyReused",
            "this Idempotency-Key was already used for a different request; use a new key for a new request",
        )
        .with_target("Idempotency-Key"));
    }
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    Ok(Claim::Replay { status, job_id })
}

pub async fn remember(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
    status: StatusCode,
    job_id: Uuid,
) -> Result<(), ApiError> {
    sqlx::query("UPDATE idempotency_key SET status = $3, job_id = $4 WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .bind(status.as_u16() as i16)
        .bind(job_id)
        .execute(conn)
        .await?;
    Ok(())
}
