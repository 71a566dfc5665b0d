//! ACR `importImage`, as ACR serves it: `POST .../registries/{name}/importImage` answers 202
//! with a `Location` to `.../locations/{region}/operationResults/operationStatuses/registries-{guid}`,
//! which answers 202 while the copy runs (`behaviour.importSeconds`), then 200 with no body,
//! or the failure as an ARM error (see `Failure`). The outcome is decided when the copy ends;
//! on success the target tags point at the source digest, so probes can pull them.
//! Images of more than 50 manifests (ACR's limit) are not modelled: every image is one.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::errors::{ArmError, resource_group_not_found};
use super::image_ref::same_host;
use super::import_body::{self, ImportRequest, Source};
use super::permissions::{authorization_failed, authorize, is_allowed};
use super::pulls::PULL_ACTION;
use super::resources::{Kind, ResType, all_resources, locate};
use super::{Ctx, lro, scope};
use crate::registry::lookup;
use crate::reply;
use crate::state::State;
use crate::world::World;

const IMPORT_ACTION: &str = "Microsoft.ContainerRegistry/registries/importImage/action";
const STATUS_ACTION: &str = "Microsoft.ContainerRegistry/locations/operationResults/read";

/// Where an import stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportStatus {
    /// Still copying.
    Running,
    /// Done: the target tags exist.
    Succeeded,
    /// Failed with this ARM error (HTTP status, code, message).
    Failed {
        /// HTTP status of the final poll.
        status: u16,
        /// ARM error code.
        code: String,
        /// ARM error message.
        message: String,
    },
}

/// One `importImage` call.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageImport {
    /// Operation id, `registries-{guid}`.
    pub id: String,
    /// ARM id of the target registry.
    pub registry_id: String,
    /// `source.resourceId` or `source.registryUri` as sent.
    pub source: String,
    /// `source.sourceImage` as sent.
    pub source_image: String,
    /// Target `repo:tag`s (defaults applied).
    pub target_tags: Vec<String>,
    /// Repositories the manifest was copied to untagged.
    pub untagged_target_repositories: Vec<String>,
    /// `NoForce` or `Force`.
    pub mode: String,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
    /// Where it stands.
    pub status: ImportStatus,
    pub(crate) request: ImportRequest,
    pub(crate) caller_oid: String,
    pub(crate) scope: (String, String),
    pub(crate) ends_at_secs: f64,
}

/// `POST .../registries/{name}/importImage`.
pub(crate) fn submit(ctx: &Ctx<'_>, st: &mut State, sub: &str, rg: &str, name: &str) -> Result<Response, ArmError> {
    let r = locate(ctx, &st.world, (sub, rg, name), ResType::Registry, IMPORT_ACTION)?;
    let request = import_body::parse(ctx.body)?;
    let duration = st.world.behaviour.import_seconds.max(0.0);
    let id = format!("registries-{}", Uuid::new_v4());
    let region = r.location().replace(' ', "").to_ascii_lowercase();
    let location = format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerRegistry/locations/{region}/operationResults/operationStatuses/{id}?api-version={}",
        ctx.shared.base_url, r.sub.subscription_id, r.rg.name, ctx.api_version
    );
    let import = ImageImport {
        id,
        registry_id: r.id(),
        source: match &request.source {
            Source::ResourceId(s) | Source::RegistryUri(s) => s.clone(),
        },
        source_image: request.source_image.clone(),
        target_tags: request.target_tags.iter().map(|(r, t)| format!("{r}:{t}")).collect(),
        untagged_target_repositories: request.untagged_target_repositories.clone(),
        mode: request.mode.clone(),
        submitted_at: Utc::now(),
        status: ImportStatus::Running,
        request,
        caller_oid: ctx.caller_oid.clone(),
        scope: (r.sub.subscription_id.clone(), r.rg.name.clone()),
        ends_at_secs: ctx.shared.elapsed_secs() + duration,
    };
    lro::finish_at(ctx.shared, import.ends_at_secs, finish_due);
    st.imports.push(import);
    Ok(lro::accepted(&location, duration))
}

/// `GET .../providers/Microsoft.ContainerRegistry/locations/{l}/operationResults/operationStatuses/{id}`.
pub(crate) fn status(ctx: &Ctx<'_>, st: &mut State, sub: &str, rg: &str, id: &str) -> Result<Response, ArmError> {
    let target = scope::norm(ctx.raw_path);
    scope::check_subscription(&st.world, &target)?;
    authorize(&st.world, &ctx.caller_oid, STATUS_ACTION, ctx.raw_path)?;
    if st.world.resource_group(sub, rg).is_none() {
        return Err(resource_group_not_found(rg));
    }
    let now = ctx.shared.elapsed_secs();
    finish_due(st, now);
    let import = st
        .imports
        .iter()
        .find(|i| {
            i.id.eq_ignore_ascii_case(id) && i.scope.0.eq_ignore_ascii_case(sub) && i.scope.1.eq_ignore_ascii_case(rg)
        })
        .ok_or_else(|| ArmError::not_found("NotFound", format!("The operation '{id}' could not be found.")))?;
    match &import.status {
        ImportStatus::Running => {
            let url = format!(
                "{}{}?api-version={}",
                ctx.shared.base_url, ctx.raw_path, ctx.api_version
            );
            Ok(lro::accepted(&url, import.ends_at_secs - now))
        }
        ImportStatus::Succeeded => Ok(reply::empty(StatusCode::OK)),
        ImportStatus::Failed { status, code, message } => Err(ArmError::new(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message.clone(),
        )),
    }
}

/// Completes every import whose time is up.
pub(crate) fn finish_due(st: &mut State, now: f64) {
    let due: Vec<usize> = (0..st.imports.len())
        .filter(|&i| st.imports[i].status == ImportStatus::Running && now >= st.imports[i].ends_at_secs)
        .collect();
    for i in due {
        let import = st.imports[i].clone();
        st.imports[i].status = match complete(&mut st.world, &import) {
            Ok(()) => ImportStatus::Succeeded,
            Err(e) => ImportStatus::Failed {
                status: e.status.as_u16(),
                code: e.code.clone(),
                message: e.message.clone(),
            },
        };
    }
}

/// Failures, all answered by the final poll: 400 `InvalidParameters` (source registry
/// unknown; a target tag exists in `NoForce` mode), 400 `ImageNotFound`, 400 `Unauthorized`
/// (missing or wrong source credentials), 403 `AuthorizationFailed` (no read on the source).
fn complete(world: &mut World, import: &ImageImport) -> Result<(), ArmError> {
    let req = &import.request;
    let failed = |code: &str, what: String| {
        ArmError::bad_request(
            code,
            format!("Operation {} failed. Resource {} {what}", import.id, import.registry_id),
        )
    };
    let (login, repos) = source_contents(world, import).map_err(|(code, what)| match code {
        "AuthorizationFailed" => authorization_failed(&import.caller_oid, PULL_ACTION, &what),
        _ => failed(code, what),
    })?;
    let digest = lookup(&login, &repos, &req.source_repo, &req.source_reference).ok_or_else(|| {
        failed(
            "ImageNotFound",
            format!("Source image {login}/{} not found.", req.source_image),
        )
    })?;
    let target = target_registry(world, &import.registry_id)
        .ok_or_else(|| failed("InvalidParameters", "Target registry not found.".into()))?;
    let tlogin = target.login();
    if req.mode == "NoForce"
        && let Some((repo, tag)) = req
            .target_tags
            .iter()
            .find(|(repo, tag)| lookup(&tlogin, &target.repositories, repo, tag).is_some())
    {
        return Err(failed(
            "InvalidParameters",
            format!("Tag {repo}:{tag} already exists in target registry. Use mode 'Force' to overwrite existing tags."),
        ));
    }
    for (repo, tag) in &req.target_tags {
        target
            .repositories
            .entry(repo.clone())
            .or_default()
            .insert(tag.clone(), digest.clone());
    }
    for repo in &req.untagged_target_repositories {
        target
            .repositories
            .entry(repo.clone())
            .or_default()
            .insert(digest.clone(), digest.clone());
    }
    Ok(())
}

type Contents = (String, crate::registry::Repositories);

/// The source registry's login and contents, after its access checks. Errors are (code,
/// detail); for `AuthorizationFailed` the detail is the source scope.
fn source_contents(world: &World, import: &ImageImport) -> Result<Contents, (&'static str, String)> {
    let req = &import.request;
    match &req.source {
        Source::ResourceId(id) => {
            let found = all_resources(world).into_iter().find_map(|r| match r.kind {
                Kind::Registry(reg) if scope::norm(&r.id()) == scope::norm(id) => Some((r.id(), reg)),
                _ => None,
            });
            let Some((canonical, reg)) = found else {
                return Err(("InvalidParameters", format!("Source registry {id} could not be found.")));
            };
            let reads = [PULL_ACTION, "Microsoft.ContainerRegistry/registries/read"];
            if !reads
                .iter()
                .any(|a| is_allowed(world, &import.caller_oid, a, &canonical))
            {
                return Err(("AuthorizationFailed", canonical));
            }
            Ok((reg.login(), reg.repositories.clone()))
        }
        Source::RegistryUri(uri) => {
            let acr = all_resources(world).into_iter().find_map(|r| match r.kind {
                Kind::Registry(reg) if same_host(&reg.login(), uri) => Some(reg),
                _ => None,
            });
            if let Some(reg) = acr {
                // By host name ACR is reached like any registry: anonymously or with credentials
                // (the simulator does not check ACR credentials).
                if !reg.anonymous_pull_enabled && req.credentials.is_none() {
                    return Err(unauthorized(uri));
                }
                return Ok((reg.login(), reg.repositories.clone()));
            }
            let Some(x) = world
                .external_registries
                .iter()
                .find(|x| same_host(&x.login_server, uri))
            else {
                return Err((
                    "InvalidParameters",
                    format!("Source registry {uri} could not be resolved."),
                ));
            };
            if let (Some(user), Some(pass)) = (&x.username, &x.password) {
                let ok = req
                    .credentials
                    .as_ref()
                    .is_some_and(|(u, p)| u.as_deref() == Some(user.as_str()) && p == pass);
                if !ok {
                    return Err(unauthorized(uri));
                }
            }
            Ok((x.login_server.clone(), x.repositories.clone()))
        }
    }
}

fn unauthorized(uri: &str) -> (&'static str, String) {
    (
        "Unauthorized",
        format!("Source registry {uri} refused the request: unauthorized: authentication required."),
    )
}

fn target_registry<'w>(world: &'w mut World, id: &str) -> Option<&'w mut crate::world::Registry> {
    world
        .subscriptions
        .iter_mut()
        .flat_map(|s| {
            let sid = s.subscription_id.clone();
            s.resource_groups.iter_mut().flat_map(move |g| {
                let prefix = format!("/subscriptions/{sid}/resourceGroups/{}", g.name);
                g.registries.iter_mut().map(move |r| (prefix.clone(), r))
            })
        })
        .find(|(prefix, r)| {
            scope::norm(&format!(
                "{prefix}/providers/Microsoft.ContainerRegistry/registries/{}",
                r.name
            )) == scope::norm(id)
        })
        .map(|(_, r)| r)
}
