//! `import`: copy an image into a registry, as `az acr import` does, as a job.
//!
//! Steps (each checkpointed):
//! 1. target   – the registry, by id or name.
//! 2. start    – `POST importImage` once; the operation's location is saved as soon as ACR
//!    accepts, so a restart polls it instead of importing again.
//! 3. follow   – poll the location, honouring `Retry-After`, waiting between polls without
//!    holding a worker (condition `importOperation`, within `--import-budget`).
//! 4. record   – remember the imported tags (a probe pulls the newest when none is named),
//!    forget the credentials, return what was imported.
//!
//! Credentials (if any) are opened from the job's sealed secret only for the `POST`, and
//! forgotten when the import ends either way.
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

use super::failures::{details, generic};
use super::resolve;
use super::waits::{Snapshot, Verdict, Waits, condition, human, wait};
use super::{IMPORT, Ops};
use crate::azure::{AzureErrorClass, CallContext, ImportRequest, ImportSource, ImportState, SourceCredentials};
use crate::domain::ImportArgs;
use crate::queue::{JobContext, JobError, Outcome};

pub struct Import(pub Arc<Ops>);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    registry: Option<Target>,
    location: Option<String>,
    #[serde(default)]
    waits: Waits,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    id: String,
    name: String,
    login_server: Option<String>,
}

crate::ops::waits::snapshot_with_waits!(Progress);

#[async_trait::async_trait]
impl crate::queue::BackgroundJob for Import {
    const KIND: &'static str = IMPORT;
    type Args = ImportArgs;

    fn retry_policy(&self) -> crate::queue::RetryPolicy {
        self.0.settings.retry_policy()
    }

    async fn run(&self, ctx: &JobContext, args: ImportArgs) -> Result<Outcome, JobError> {
        let result = super::with_calls(ctx, async |call| {
            self.steps(ctx, &args, &mut ctx.checkpoint(), call).await
        })
        .await;
        // The credentials are not needed once the import has ended, whichever way.
        let ended = match &result {
            Ok(Outcome::Succeeded(_)) => true,
            Err(e) => e.class == crate::queue::ErrorClass::Permanent,
            _ => false,
        };
        if ended && args.credentials {
            let _ = self.0.imports.forget_secret(ctx.id).await;
        }
        result
    }
}

/// The tags the import writes: the given ones, or the source's repository and tag.
pub fn target_tags(args: &ImportArgs) -> Vec<String> {
    if !args.target_tags.is_empty() {
        return args.target_tags.clone();
    }
    let image = &args.source.image;
    match image.split_once('@') {
        // A digest has no tag: ACR tags it `latest` unless told otherwise.
        Some((repo, _)) => vec![format!("{repo}:latest")],
        None if image.contains(':') => vec![image.clone()],
        None => vec![format!("{image}:latest")],
    }
}

impl Import {
    async fn steps(
        &self,
        ctx: &JobContext,
        args: &ImportArgs,
        p: &mut Progress,
        call: &CallContext,
    ) -> Result<Outcome, JobError> {
        let ops = &*self.0;
        let mut waits = std::mem::take(&mut p.waits);
        let target = match p.registry.clone() {
            Some(t) => t,
            None => {
                let r = resolve::read_registry(ops, call, &args.registry, &mut waits, |w| p.snapshot(w)).await?;
                let t = Target {
                    id: r.id,
                    name: r.name,
                    login_server: r.login_server,
                };
                p.registry = Some(t.clone());
                ctx.save_checkpoint(&p.snapshot(&waits)).await?;
                t
            }
        };
        let registry_id: crate::azure::RegistryId = target
            .id
            .parse()
            .map_err(|e| JobError::permanent("InvalidRegistryId", format!("ARM returned {e}")))?;
        let tags = target_tags(args);
        let state = match p.location.clone() {
            Some(location) => ops.azure.import_status(call, &location).await,
            None => {
                let credentials = self.credentials(ctx.id, args).await?;
                let source = ImportSource {
                    resource_id: args.source.registry_id.as_ref().map(|r| r.to_string()),
                    registry_uri: args.source.login_server.clone(),
                    source_image: args.source.image.clone(),
                };
                let request = ImportRequest {
                    source: &source,
                    credentials: credentials.as_ref(),
                    target_tags: &tags,
                    mode: &args.mode,
                };
                ops.azure.import_image(call, &registry_id, &request).await
            }
        };
        let state = state.map_err(|e| match e.class() {
            AzureErrorClass::Permanent | AzureErrorClass::NotFound => {
                let code = e.code.clone().unwrap_or_else(|| "ImportFailed".into());
                JobError::permanent(
                    code.clone(),
                    format!("the import failed: {}; {}", e.message, fix_for(&code)),
                )
                .with_details(details(&e))
            }
            _ => generic(e, "importing the image", &mut waits, &ops.settings, |w| p.snapshot(w)),
        })?;
        match state {
            ImportState::Running { location, retry_after } => {
                if p.location.as_deref() != Some(location.as_str()) {
                    p.location = Some(location);
                    ctx.save_checkpoint(&p.snapshot(&waits)).await?;
                }
                match waits.poll(condition::IMPORT_OPERATION, ops.settings.import_budget) {
                    Verdict::Wait(delay) => Ok(wait(
                        condition::IMPORT_OPERATION,
                        format!("ACR is importing {} into {}", args.source.image, target.name),
                        retry_after.unwrap_or(delay),
                        &p.snapshot(&waits),
                    )),
                    Verdict::Exhausted(waited) => Err(JobError::permanent(
                        "ImportTimedOut",
                        format!(
                            "the import was still running after {}; it may still finish in Azure: look at the registry's repositories",
                            human(waited)
                        ),
                    )),
                }
            }
            ImportState::Done => {
                waits.done(condition::IMPORT_OPERATION);
                for tag in &tags {
                    ops.imports
                        .record_image(&target.name, tag, ctx.id)
                        .await
                        .map_err(|e| JobError::transient("DatabaseUnavailable", e.to_string()))?;
                }
                let login = target.login_server.clone().unwrap_or_default();
                Ok(Outcome::Succeeded(json!({
                    "registry": { "id": target.id, "loginServer": target.login_server },
                    "source": args.source,
                    "mode": args.mode,
                    "imported": tags,
                    "images": tags.iter().map(|t| format!("{login}/{t}")).collect::<Vec<_>>(),
                    "digest": args.source.image.split_once('@').map(|(_, d)| d),
                })))
            }
        }
    }

    /// The source credentials, opened from the job's sealed secret (never stored readable).
    async fn credentials(&self, job: Uuid, args: &ImportArgs) -> Result<Option<SourceCredentials>, JobError> {
        if !args.credentials {
            return Ok(None);
        }
        let ops = &*self.0;
        let unavailable = |why: &str| {
            JobError::permanent(
                "CredentialsUnavailable",
                format!("the import's source credentials {why}; submit the import again"),
            )
        };
        let Some(key) = ops.settings.secrets_key.as_ref() else {
            return Err(unavailable(
                "cannot be opened: this replica has no ACR_ATTACH_SECRETS_KEY",
            ));
        };
        let (nonce, sealed) = ops
            .imports
            .secret(job)
            .await
            .map_err(|e| JobError::transient("DatabaseUnavailable", e.to_string()))?
            .ok_or_else(|| unavailable("are gone"))?;
        let plain = key.open(job, &nonce, &sealed).ok_or_else(|| {
            unavailable("do not open with this replica's key (was the key changed, or made at start in demo mode?)")
        })?;
        #[derive(Deserialize)]
        struct Sealed {
            username: String,
            password: String,
        }
        let s: Sealed = serde_json::from_slice(&plain).map_err(|_| unavailable("are unreadable"))?;
        Ok(Some(SourceCredentials {
            username: s.username,
            password: s.password,
        }))
    }
}

/// What to do about an import error ACR reported, by its code.
fn fix_for(code: &str) -> &'static str {
    match code {
        "InvalidParameters" => {
            "check that the source registry and image exist, and use mode Force to overwrite existing tags"
        }
        "ImageNotFound" | "ManifestUnknown" | "NotFound" => "check the source image's repository and tag (or digest)",
        "Unauthorized" => "check the source credentials (a token or service principal with pull rights on the source)",
        "AuthorizationFailed" => {
            "give acr-attach Microsoft.ContainerRegistry/registries/importImage/action on the target (e.g. Container Registry Data Importer and Data Reader) and pull rights on a source registry given by id"
        }
        _ => "see the details for ACR's own words",
    }
}
