//! What imports leave in the database: the images acr-attach put into registries, and the
//! sealed source credentials an import holds until it has used them (see [`crate::secrets`]).
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Clone)]
pub struct ImportStore {
    pool: PgPool,
}

impl ImportStore {
    pub fn new(pool: PgPool) -> Self {
        ImportStore { pool }
    }

    /// Remembers that `job` imported `image` into the registry named `registry`.
    pub async fn record_image(&self, registry: &str, image: &str, job: Uuid) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO imported_image (registry_key, image, job_id) VALUES (lower($1), $2, $3) \
             ON CONFLICT (registry_key, image) DO UPDATE SET job_id = $3, imported_at = now()",
        )
        .bind(registry)
        .bind(image)
        .bind(job)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// The image most recently imported into the registry named `registry`.
    pub async fn newest_image(&self, registry: &str) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT image FROM imported_image WHERE registry_key = lower($1) ORDER BY imported_at DESC LIMIT 1",
        )
        .bind(registry)
        .fetch_optional(&self.pool)
        .await
    }

    /// Keeps a sealed secret for `job`, in the transaction that enqueues it.
    pub async fn put_secret(conn: &mut PgConnection, job: Uuid, nonce: &[u8], sealed: &[u8]) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO job_secret (job_id, nonce, sealed) VALUES ($1, $2, $3) ON CONFLICT (job_id) DO NOTHING",
        )
        .bind(job)
        .bind(nonce)
        .bind(sealed)
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// The sealed secret of `job`: `(nonce, sealed)`.
    pub async fn secret(&self, job: Uuid) -> sqlx::Result<Option<(Vec<u8>, Vec<u8>)>> {
        sqlx::query_as("SELECT nonce, sealed FROM job_secret WHERE job_id = $1")
            .bind(job)
            .fetch_optional(&self.pool)
            .await
    }

    /// Forgets `job`'s secret (the import no longer needs it).
    pub async fn forget_secret(&self, job: Uuid) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM job_secret WHERE job_id = $1")
            .bind(job)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// The clean-up every replica runs (`db::sweep_every`): secrets of jobs that ended
    /// without forgetting them (cancelled, failed while the database was away).
    pub const FORGET_FINISHED: &'static str = "DELETE FROM job_secret s USING job j \
         WHERE j.id = s.job_id AND j.state IN ('succeeded', 'failed', 'cancelled')";
}
