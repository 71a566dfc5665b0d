//! LISTEN for wake-ups (new jobs, finished targets) and cancellations of running jobs.
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::store::{CANCEL_CHANNEL, WAKE_CHANNEL};

pub async fn run(
    pool: sqlx::PgPool,
    wake: Arc<Notify>,
    on_cancel: impl Fn(Uuid) + Send + 'static,
    stop: CancellationToken,
) {
    loop {
        let mut listener = match connect(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection failed; relying on polling meanwhile");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = stop.cancelled() => return,
                }
            }
        };
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
                // Reconnected: notifications may have been lost.
                Ok(None) => wake.notify_one(),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection lost");
                    break;
                }
            }
        }
    }
}

async fn connect(pool: &sqlx::PgPool) -> sqlx::Result<PgListener> {
    let mut l = PgListener::connect_with(pool).await?;
    l.listen_all([WAKE_CHANNEL, CANCEL_CHANNEL]).await?;
    Ok(l)
}
