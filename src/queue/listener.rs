//! LISTEN for wake-ups (new jobs, finished targets) and cancellations of running jobs; and the
//! replica's liveness: this connection holds a session-level advisory lock named after the
//! worker. When the process dies, Postgres ends its session and releases the lock, so every
//! other replica sees at once that the worker's running jobs are orphaned (see
//! `JobStore::rescue_expired`), without waiting for their leases to expire.
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::store::{CANCEL_CHANNEL, WAKE_CHANNEL};

/// The two keys of a worker's liveness lock: a constant class (`acra`) and the worker id's hash.
pub const LIVENESS_LOCK_CLASS: i32 = 0x6163_7261;

pub async fn run(
    pool: sqlx::PgPool,
    worker_id: String,
    alive: Arc<AtomicBool>,
    wake: Arc<Notify>,
    on_cancel: impl Fn(Uuid) + Send + 'static,
    stop: CancellationToken,
) {
    loop {
        alive.store(false, Ordering::Relaxed);
        let mut listener = match connect(&pool, &worker_id).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection failed; not claiming jobs until it is back");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.cancelled() => return,
                }
            }
        };
        alive.store(true, Ordering::Relaxed);
        // Anything sent while we were not listening is lost: look now.
        wake.notify_one();
        loop {
            let next = tokio::select! {
                n = listener.try_recv() => n,
                _ = stop.cancelled() => return,
            };
            match next {
                Ok(Some(n)) if n.channel() == CANCEL_CHANNEL => {
                    if let Ok(id) = n.payload().parse() {
                        on_cancel(id);
                    }
                }
                Ok(Some(_)) => wake.notify_one(),
                // Reconnected on a new session: take the liveness lock again (meanwhile other
                // replicas may have rescued our jobs; fencing discards our late results), and
                // look for what was sent while we were away.
                Ok(None) => {
                    alive.store(false, Ordering::Relaxed);
                    match lock(&mut listener, &worker_id).await {
                        Ok(()) => alive.store(true, Ordering::Relaxed),
                        Err(e) => {
                            tracing::warn!(error = %e, "liveness lock not taken after a reconnect");
                            break;
                        }
                    }
                    wake.notify_one();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection lost");
                    break;
                }
            }
        }
    }
}

async fn connect(pool: &sqlx::PgPool, worker_id: &str) -> sqlx::Result<PgListener> {
    let mut l = PgListener::connect_with(pool).await?;
    l.listen_all([WAKE_CHANNEL, CANCEL_CHANNEL]).await?;
    lock(&mut l, worker_id).await?;
    Ok(l)
}

/// Takes the worker's liveness lock on the listener's session (worker ids are unique, so it is
/// always free; `try` so that a collision can never block the listener).
async fn lock(l: &mut PgListener, worker_id: &str) -> sqlx::Result<()> {
    // A replica whose machine vanishes closes no socket: these make Postgres probe the session
    // and end it (releasing the lock) within ~10 s, instead of the server's default two hours.
    sqlx::raw_sql("SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 2")
        .execute(&mut *l)
        .await?;
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2) & 2147483647)")
        .bind(LIVENESS_LOCK_CLASS)
        .bind(worker_id)
        .fetch_one(&mut *l)
        .await?;
    if !taken {
        tracing::warn!(worker = %worker_id, "another session holds this worker's liveness lock");
    }
    Ok(())
}
