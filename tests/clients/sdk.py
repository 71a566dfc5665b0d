"""The Azure SDK for Python, unmodified, against the Azure simulator.

azure-identity + azure-mgmt-containerservice, -containerregistry and -authorization, each at
its default api-version: get the cluster and the registry, find AcrPull by name, grant it to
the kubelet identity, read it back (get and list), and revoke it. Prints one JSON line with
what it saw; asserts as it goes (a failed assertion exits non-zero).

Configuration comes from the environment (see tests/api/clients.rs and the README):
SIM_URL, TENANT_ID, CLIENT_ID, CLIENT_SECRET, SUBSCRIPTION_ID, RESOURCE_GROUP, CLUSTER,
REGISTRY_ID, and SSL_CERT_FILE or REQUESTS_CA_BUNDLE naming the simulator's CA.
"""

import json
import os
import sys
import uuid

from azure.identity import ClientSecretCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerservice import ContainerServiceClient

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"


def main() -> int:
    env = os.environ
    base = env["SIM_URL"].rstrip("/")
    sub = env["SUBSCRIPTION_ID"]
    # The simulator is the authority: MSAL must not ask login.microsoftonline.com which
    # authorities exist (instance discovery), so that is switched off.
    credential = ClientSecretCredential(
        env["TENANT_ID"],
        env["CLIENT_ID"],
        env["CLIENT_SECRET"],
        authority=base,
        disable_instance_discovery=True,
    )
    arm = {"base_url": base, "credential_scopes": ["https://management.azure.com/.default"]}
    aks = ContainerServiceClient(credential, sub, **arm)
    acr = ContainerRegistryManagementClient(credential, sub, **arm)
    authz = AuthorizationManagementClient(credential, sub, **arm)

    cluster = aks.managed_clusters.get(env["RESOURCE_GROUP"], env["CLUSTER"])
    kubelet = cluster.identity_profile["kubeletidentity"].object_id
    assert cluster.provisioning_state == "Succeeded", cluster.provisioning_state

    registry_id = env["REGISTRY_ID"]
    parts = registry_id.split("/")
    registry = acr.registries.get(parts[4], parts[8])
    assert registry.id.lower() == registry_id.lower(), registry.id

    role = next(iter(authz.role_definitions.list(registry.id, filter="roleName eq 'acrpull'")))
    assert role.name == ACR_PULL, role.name

    name = str(uuid.uuid4())
    created = authz.role_assignments.create(
        registry.id,
        name,
        RoleAssignmentCreateParameters(
            role_definition_id=role.id, principal_id=kubelet, principal_type="ServicePrincipal"
        ),
    )
    got = authz.role_assignments.get(registry.id, name)
    listed = [
        a.name
        for a in authz.role_assignments.list_for_scope(registry.id, filter=f"principalId eq '{kubelet}'")
        if a.role_definition_id.lower().endswith(ACR_PULL)
    ]
    assert got.id == created.id and name in listed, (got.id, listed)
    deleted = authz.role_assignments.delete(registry.id, name)
    assert deleted is not None and deleted.name == name
    after = [a.name for a in authz.role_assignments.list_for_scope(registry.id, filter=f"principalId eq '{kubelet}'")]
    assert name not in after, after

    print(
        json.dumps(
            {
                "cluster": cluster.id,
                "kubeletObjectId": kubelet,
                "registry": registry.id,
                "roleAssignmentMode": getattr(registry, "role_assignment_mode", None),
                "role": role.role_name,
                "created": created.id,
                "listedAfterCreate": listed,
                "listedAfterDelete": after,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
