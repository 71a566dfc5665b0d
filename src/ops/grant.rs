//! Granting a registry's pull role to one principal (a kubelet identity, a group, a prepared
//! identity), shared by the job kinds: PUT under a deterministic name, adopt an equivalent grant
//! made under another name, wait out `PrincipalNotFound`, then wait until ARM reads it back.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Ops;
use super::failures::{details, generic};
use super::resolve::{ResolvedRegistry, Step};
use super::waits::{Verdict, Waits, condition, human, not_yet, wait};
use crate::azure::{
    AzureError, AzureErrorClass, CallContext, PrincipalType, RegistryId, RoleAssignment, RoleAssignmentCreate,
    RoleAssignmentFilter, RoleAssignmentId, assignment_name, role_definition_id,
};
use crate::queue::{JobError, Outcome};

/// Who receives the grant, and how to talk about it in messages.
pub struct Recipient<'a> {
    pub object_id: Uuid,
    pub principal_type: PrincipalType,
    /// E.g. "the principal X (kubeletIdentity of the cluster)", "the group X".
    pub who: String,
    /// What to check when the principal stays unknown (ends the `PrincipalNotFound` message).
    pub unknown_hint: &'a str,
    /// The role assignment's description.
    pub description: String,
}

/// What the grant step found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Granted {
    pub id: String,
    pub name: String,
    /// `created`, `alreadyPresent` (same deterministic name) or `adopted` (another name).
    pub outcome: String,
    pub readable: bool,
}

impl Granted {
    /// The assignment's id at the registry. ARM names role assignments by GUID; a name that is
    /// not one is an error, never the nil GUID.
    pub fn assignment_id(&self, registry: &RegistryId) -> Result<RoleAssignmentId, JobError> {
        let name = Uuid::parse_str(&self.name).map_err(|_| {
            JobError::permanent(
                "UnexpectedRoleAssignment",
                format!("ARM returned the role assignment {} whose name is not a GUID", self.id),
            )
        })?;
        Ok(RoleAssignmentId::new(registry.as_resource_id().clone(), name))
    }
}

/// Ensure `grantee` holds the registry's pull role at the registry scope.
pub async fn grant<C: Serialize>(
    ops: &Ops,
    call: &CallContext,
    registry_id: &RegistryId,
    registry: &ResolvedRegistry,
    grantee: &Recipient<'_>,
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C,
) -> Result<Step<Granted>, JobError> {
    let scope = registry_id.as_resource_id();
    let name = assignment_name(registry_id, &grantee.object_id, &registry.role);
    let body = RoleAssignmentCreate {
        role_definition_id: role_definition_id(&registry_id.subscription(), registry.role),
        principal_id: grantee.object_id,
        principal_type: grantee.principal_type.clone(),
        description: Some(grantee.description.clone()),
    };
    let err = match ops.azure.put_role_assignment(call, scope, name, &body).await {
        Ok((ra, created)) => {
            waits.met(condition::PRINCIPAL_REPLICATION);
            return Ok(Step::Done(Granted {
                id: ra.id,
                name: ra.name,
                outcome: if created { "created" } else { "alreadyPresent" }.into(),
                readable: !created,
            }));
        }
        Err(e) => e,
    };
    match err.class() {
        AzureErrorClass::RoleAssignmentExists => {
            waits.met(condition::PRINCIPAL_REPLICATION);
            match find_existing(
                ops,
                call,
                registry_id,
                registry,
                grantee.object_id,
                err.existing_role_assignment(),
            )
            .await
            {
                Ok(Some(ra)) => Ok(Step::Done(Granted {
                    id: ra.id,
                    name: ra.name,
                    outcome: "adopted".into(),
                    readable: true,
                })),
                // ARM says it exists but does not list it yet: read-after-write lag of
                // someone else's recent grant.
                Ok(None) => match waits.poll(condition::ASSIGNMENT_READABLE, ops.settings.readable_budget) {
                    Verdict::Wait(delay) => Ok(Step::Wait(wait(
                        condition::ASSIGNMENT_READABLE,
                        "ARM reports an existing equivalent role assignment that it does not list yet".into(),
                        delay,
                        &checkpoint(waits),
                    ))),
                    Verdict::Exhausted(waited) => Err(JobError::permanent(
                        "ExistingAssignmentNotFound",
                        format!(
                            "ARM answered RoleAssignmentExists but listed no matching assignment for {}",
                            human(waited)
                        ),
                    )
                    .with_details(details(&err))),
                },
                Err(e) => Err(generic(
                    e,
                    "looking up the existing role assignment",
                    waits,
                    &ops.settings,
                    checkpoint,
                )),
            }
        }
        AzureErrorClass::PrincipalNotFound => {
            match waits.poll(condition::PRINCIPAL_REPLICATION, ops.settings.principal_budget) {
                Verdict::Wait(delay) => Err(not_yet(
                    condition::PRINCIPAL_REPLICATION,
                    "PrincipalNotFound",
                    format!(
                        "ARM does not know {} yet (directory replication of a new identity can take minutes)",
                        grantee.who
                    ),
                    delay,
                    &checkpoint(waits),
                )
                .with_details(details(&err))),
                Verdict::Exhausted(waited) => Err(JobError::permanent(
                    "PrincipalNotFound",
                    format!(
                        "{} was still unknown to the directory after {}: {}",
                        grantee.who,
                        human(waited),
                        grantee.unknown_hint
                    ),
                )
                .with_details(details(&err))),
            }
        }
        _ => Err(generic(err, "granting the pull role", waits, &ops.settings, checkpoint)),
    }
}

/// After a create, GET the assignment until ARM returns it (read-after-write lag).
/// `None`: readable now; `Some(outcome)`: wait and check again.
pub async fn readable<C: Serialize>(
    ops: &Ops,
    call: &CallContext,
    registry_id: &RegistryId,
    granted: &mut Granted,
    waits: &mut Waits,
    checkpoint: impl Fn(&Waits) -> C,
) -> Result<Option<Outcome>, JobError> {
    if granted.readable {
        return Ok(None);
    }
    match ops
        .azure
        .get_role_assignment(call, &granted.assignment_id(registry_id)?)
        .await
    {
        Ok(Some(_)) => {
            waits.met(condition::ASSIGNMENT_READABLE);
            granted.readable = true;
            Ok(None)
        }
        Ok(None) => match waits.poll(condition::ASSIGNMENT_READABLE, ops.settings.readable_budget) {
            Verdict::Wait(delay) => Ok(Some(wait(
                condition::ASSIGNMENT_READABLE,
                format!(
                    "the role assignment {} was created; waiting until ARM can read it back",
                    granted.id
                ),
                delay,
                &checkpoint(waits),
            ))),
            Verdict::Exhausted(waited) => Err(JobError::permanent(
                "AssignmentNotReadable",
                format!(
                    "the role assignment {} was created but ARM still did not return it after {}",
                    granted.id,
                    human(waited)
                ),
            )),
        },
        Err(e) => Err(generic(
            e,
            "reading the new role assignment back",
            waits,
            &ops.settings,
            checkpoint,
        )),
    }
}

/// The equivalent assignment ARM says exists: by the id in its message when given,
/// otherwise by listing the principal's assignments at the registry.
async fn find_existing(
    ops: &Ops,
    call: &CallContext,
    registry_id: &RegistryId,
    registry: &ResolvedRegistry,
    principal: Uuid,
    hinted: Option<Uuid>,
) -> Result<Option<RoleAssignment>, AzureError> {
    let scope = registry_id.as_resource_id();
    let matches =
        |ra: &RoleAssignment| ra.is_at_scope(scope) && ra.is_role(registry.role) && ra.is_for_principal(principal);
    if let Some(guid) = hinted
        && let Some(ra) = ops
            .azure
            .get_role_assignment(call, &RoleAssignmentId::new(scope.clone(), guid))
            .await?
        && matches(&ra)
    {
        return Ok(Some(ra));
    }
    let listed = ops
        .azure
        .list_role_assignments(call, scope, RoleAssignmentFilter::PrincipalId(principal))
        .await?;
    Ok(listed.into_iter().find(matches))
}
