//! Writes that record work already done (an attempt's end, a batch of successes, a checkpoint,
//! a timeline event) are retried through a database outage instead of being dropped, so Azure
//! work that finished is not repeated because the database blinked. Bounded by the lease: past
//! it the job may be another worker's, and fencing would refuse the write anyway.
use std::future::Future;
use std::time::{Duration, Instant};

/// Runs `op` until it succeeds, fails for a reason other than the database being unreachable,
/// or `bound` has passed.
pub async fn persistently<T, Fut>(what: &str, bound: Duration, mut op: impl FnMut() -> Fut) -> sqlx::Result<T>
where
    Fut: Future<Output = sqlx::Result<T>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if database_unreachable(&e) && start.elapsed() + delay < bound => {
                tracing::warn!(error = %e, what, "the database did not take it; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The database is away (connection refused or lost, server shutting down), as opposed to a
/// statement it refused. A closed pool is this replica shutting down: not "away".
pub fn database_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        // 08: connection exception; 57P: operator intervention (admin shutdown, crash recovery).
        sqlx::Error::Database(d) => d.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn refused() -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    }

    #[tokio::test]
    async fn an_outage_is_waited_out_within_the_bound() {
        let calls = AtomicU32::new(0);
        let r = persistently("test", Duration::from_secs(5), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err(refused()),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn other_errors_and_long_outages_are_given_up() {
        let calls = AtomicU32::new(0);
        let r: sqlx::Result<()> = persistently("test", Duration::from_secs(5), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(sqlx::Error::RowNotFound)
        })
        .await;
        assert!(matches!(r, Err(sqlx::Error::RowNotFound)));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a refused statement is not retried");
        let started = Instant::now();
        let r: sqlx::Result<()> = persistently("test", Duration::from_millis(500), || async { Err(refused()) }).await;
        assert!(r.is_err());
        assert!(started.elapsed() < Duration::from_secs(2), "bounded");
    }
}
