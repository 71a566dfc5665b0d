//! A scriptable job kind for queue tests: each run of a job follows the step its arguments
//! script for that run, and every start and end is logged for assertions.
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

use acr_attach::queue::{JobContext, JobError, JobHandler, Outcome, RetryPolicy, Wait};

#[derive(Debug, Clone)]
pub struct Entry {
    pub group: String,
    pub n: i64,
    pub started: Instant,
    pub ended: Option<Instant>,
}

#[derive(Default)]
pub struct Log {
    entries: Mutex<Vec<Entry>>,
    active: Mutex<HashMap<String, usize>>,
    max_active_per_group: Mutex<usize>,
    /// Releases jobs blocked on a `block` step.
    pub release: Notify,
}

impl Log {
    pub fn entries(&self) -> Vec<Entry> {
        self.entries.lock().unwrap().clone()
    }
    pub fn max_active_per_group(&self) -> usize {
        *self.max_active_per_group.lock().unwrap()
    }
}

/// Kind `scripted`. Args: `{"steps": [...], "group": "t1", "n": 3}`; the step of run r is
/// `steps[min(r, len) - 1]`: `ok`, `transient`, `permanent`, `wait`, `block` (until released),
/// `sleep:MS`, `retry_after:MS`, `checkpoint` (saves `{"run": r}` then fails transiently).
pub struct Scripted {
    pub log: Arc<Log>,
    pub policy: RetryPolicy,
}

impl Scripted {
    pub fn new(log: Arc<Log>) -> Self {
        Scripted {
            log,
            policy: RetryPolicy {
                base: Duration::from_millis(100),
                cap: Duration::from_millis(400),
                max_retry_after: Duration::from_secs(60),
            },
        }
    }
}

pub fn scripted(steps: &[&str], group: &str, n: i64) -> Value {
    json!({ "steps": steps, "group": group, "n": n })
}

#[async_trait]
impl JobHandler for Scripted {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.policy
    }

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let steps: Vec<String> = serde_json::from_value(ctx.args["steps"].clone()).unwrap_or_default();
        let group = ctx.args["group"].as_str().unwrap_or("").to_string();
        let n = ctx.args["n"].as_i64().unwrap_or(0);
        let idx = (ctx.run as usize).min(steps.len()).saturating_sub(1);
        let step = steps.get(idx).cloned().unwrap_or_else(|| "ok".into());
        let entry_idx = {
            let mut active = self.log.active.lock().unwrap();
            let a = active.entry(group.clone()).or_default();
            *a += 1;
            let mut max = self.log.max_active_per_group.lock().unwrap();
            *max = (*max).max(*a);
            let mut entries = self.log.entries.lock().unwrap();
            entries.push(Entry {
                group: group.clone(),
                n,
                started: Instant::now(),
                ended: None,
            });
            entries.len() - 1
        };
        let result = self.step(ctx, &step).await;
        *self.log.active.lock().unwrap().get_mut(&group).unwrap() -= 1;
        self.log.entries.lock().unwrap()[entry_idx].ended = Some(Instant::now());
        result
    }
}

impl Scripted {
    async fn step(&self, ctx: &JobContext, step: &str) -> Result<Outcome, JobError> {
        let ok = || Ok(Outcome::Succeeded(json!({ "run": ctx.run })));
        match step.split_once(':') {
            Some(("sleep", ms)) => {
                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
                ok()
            }
            Some(("retry_after", ms)) => Err(JobError::transient("Throttled", "slow down")
                .with_retry_after(Some(Duration::from_millis(ms.parse().unwrap())))),
            _ => match step {
                "ok" => ok(),
                "transient" => Err(JobError::transient("Flaky", format!("run {} failed", ctx.run))),
                "permanent" => Err(JobError::permanent("Broken", "this cannot work")),
                "wait" => Ok(Outcome::Wait(Wait::new(
                    "somethingPropagating",
                    "waiting for the remote side",
                    Duration::from_millis(100),
                ))),
                "nyc" => Err(
                    JobError::not_yet_consistent("replication", "PrincipalNotFound", "not replicated yet")
                        .with_retry_after(Some(Duration::from_millis(100))),
                ),
                "checkpoint" => {
                    ctx.save_checkpoint(&json!({ "run": ctx.run })).await?;
                    Err(JobError::transient("AfterCheckpoint", "failed after saving progress"))
                }
                "echo_checkpoint" => Ok(Outcome::Succeeded(json!({ "checkpoint": ctx.checkpoint }))),
                "block" => {
                    self.log.release.notified().await;
                    ok()
                }
                other => panic!("unknown step {other}"),
            },
        }
    }
}
