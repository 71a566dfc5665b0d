//! Every relevant official example (tests/fixtures/azure-examples) parses into these types.
use super::*;
use uuid::Uuid;

fn example(path: &str) -> serde_json::Value {
    let full = format!("{}/tests/fixtures/azure-examples/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn body(path: &str, status: &str) -> serde_json::Value {
    example(path)["responses"][status]["body"].clone()
}

fn ra(path: &str, status: &str) -> RoleAssignment {
    serde_json::from_value::<WireRoleAssignment>(body(path, status))
        .unwrap()
        .into()
}

#[test]
fn role_assignment_examples_parse() {
    for (file, statuses) in [
        (
            "authorization/2022-04-01/RoleAssignments_CreateForResource.json",
            &["201", "200"][..],
        ),
        (
            "authorization/2022-04-01/RoleAssignments_CreateForResourceGroup.json",
            &["201", "200"],
        ),
        ("authorization/2022-04-01/RoleAssignments_Get.json", &["200"]),
        ("authorization/2022-04-01/RoleAssignments_Delete.json", &["200"]),
        ("authorization/2022-04-01/RoleAssignments_DeleteById.json", &["200"]),
    ] {
        for s in statuses {
            let a = ra(file, s);
            assert_eq!(
                a.role_definition_guid().unwrap().to_string(),
                "0b5fe924-9a61-425c-96af-cfe6e287ca2d",
                "{file}"
            );
            assert!(a.is_for_principal("ce2ce14e-85d7-4629-bdbc-454d0519d987".parse().unwrap()));
            assert_eq!(a.principal_type, Some(PrincipalType::User));
            let id: crate::azure::ids::RoleAssignmentId = a.id.parse().unwrap();
            assert_eq!(id.name(), a.name_guid().unwrap());
            assert!(a.is_at_scope(id.scope()), "{file}");
        }
    }
    // 204 of delete has no body
    assert!(
        example("authorization/2022-04-01/RoleAssignments_Delete.json")["responses"]["204"]
            .get("body")
            .is_none()
    );

    let page: ArmPage<WireRoleAssignment> = serde_json::from_value(body(
        "authorization/2022-04-01/RoleAssignments_ListForScope.json",
        "200",
    ))
    .unwrap();
    assert_eq!(page.value.len(), 1);
    assert!(page.next_link.is_none());
}

#[test]
fn role_assignment_create_body_matches_example_request() {
    let ex = example("authorization/2022-04-01/RoleAssignments_CreateForResource.json");
    let req = &ex["parameters"]["parameters"];
    let create = RoleAssignmentCreate {
        role_definition_id: req["properties"]["roleDefinitionId"].as_str().unwrap().into(),
        principal_id: req["properties"]["principalId"].as_str().unwrap().parse().unwrap(),
        principal_type: PrincipalType::User,
        description: None,
    };
    assert_eq!(&create.to_body(), req);
}

#[test]
fn role_definition_example_parses() {
    let d: RoleDefinition = serde_json::from_value::<WireRoleDefinition>(body(
        "authorization/2022-04-01/GetRoleDefinitionById.json",
        "200",
    ))
    .unwrap()
    .into();
    assert_eq!(d.role_name, "Role name");
    assert_eq!(d.role_type.as_deref(), Some("roletype"));
    assert_eq!(d.permissions[0].actions, vec!["action"]);
    assert_eq!(d.permissions[0].data_actions, vec!["dataAction"]);
    assert_eq!(d.assignable_scopes, vec!["/subscriptions/subId"]);
}

#[test]
fn registry_examples_parse() {
    let r: Registry =
        serde_json::from_value::<WireRegistry>(body("containerregistry/2025-11-01/RegistryGet.json", "200"))
            .unwrap()
            .into();
    assert_eq!(r.name, "myRegistry");
    assert_eq!(r.login_server.as_deref(), Some("myRegistry.azurecr.io"));
    assert_eq!(r.role_assignment_mode, RoleAssignmentMode::LegacyRegistryPermissions);
    assert_eq!(r.provisioning_state.as_deref(), Some("Succeeded"));
    assert_eq!(r.public_network_access.as_deref(), Some("Enabled"));
    assert_eq!(r.network_default_action.as_deref(), Some("Allow"));
    assert_eq!(r.aad_auth_as_arm_policy.as_deref(), Some("enabled"));
    assert_eq!(r.sku.as_deref(), Some("Standard"));
    assert_eq!(r.registry_id().unwrap().name(), "myRegistry");

    let page: ArmPage<WireRegistry> =
        serde_json::from_value(body("containerregistry/2025-11-01/RegistryList.json", "200")).unwrap();
    assert_eq!(page.value.len(), 1);

    let abac = example("containerregistry/2025-11-01/RegistryCreateAbac.json");
    let responses = abac["responses"].as_object().unwrap();
    assert!(!responses.is_empty());
    for (status, resp) in responses {
        if let Some(b) = resp.get("body") {
            let r: Registry = serde_json::from_value::<WireRegistry>(b.clone()).unwrap().into();
            assert_eq!(
                r.role_assignment_mode,
                RoleAssignmentMode::AbacRepositoryPermissions,
                "status {status}"
            );
        }
    }
    // absent ⇒ legacy; unknown kept
    let mut b = body("containerregistry/2025-11-01/RegistryGet.json", "200");
    b["properties"].as_object_mut().unwrap().remove("roleAssignmentMode");
    let r: Registry = serde_json::from_value::<WireRegistry>(b).unwrap().into();
    assert_eq!(r.role_assignment_mode, RoleAssignmentMode::LegacyRegistryPermissions);
    assert_eq!(
        RoleAssignmentMode::parse(Some("Future")),
        RoleAssignmentMode::Other("Future".into())
    );
}

#[test]
fn managed_cluster_example_parses_sp_cluster() {
    let c: ManagedCluster =
        serde_json::from_value::<WireCluster>(body("containerservice/2026-07-01/ManagedClustersGet.json", "200"))
            .unwrap()
            .into();
    assert_eq!(c.name, "clustername1");
    assert_eq!(c.location, "location1");
    assert_eq!(c.provisioning_state.as_deref(), Some("Succeeded"));
    assert!(c.kubelet_identity.is_none());
    assert!(!c.is_msi_cluster());
    assert_eq!(c.service_principal_app_id(), Some("clientid"));
    assert_eq!(c.node_resource_group.as_deref(), Some("MC_rg1_clustername1_location1"));
}

#[test]
fn managed_cluster_with_kubelet_identity() {
    let mut b = body("containerservice/2026-07-01/ManagedClustersGet.json", "200");
    b["properties"]["servicePrincipalProfile"]["clientId"] = "msi".into();
    b["properties"]["identityProfile"] = serde_json::json!({
        "kubeletidentity": {
            "resourceId": "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/MC_rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/clustername1-agentpool",
            "clientId": "4024ab25-56a8-4370-aea6-6389221caf29",
            "objectId": "25cc773c-7f05-40fc-a104-32d2300754ad"
        }
    });
    let c: ManagedCluster = serde_json::from_value::<WireCluster>(b).unwrap().into();
    assert!(c.is_msi_cluster());
    assert_eq!(c.kubelet_object_id(), Some("25cc773c-7f05-40fc-a104-32d2300754ad"));
    assert_eq!(c.service_principal_app_id(), None);
}

#[test]
fn identity_examples_parse() {
    for file in [
        "msi/2023-01-31/IdentityCreate.json",
        "msi/2023-01-31/IdentityGet.json",
        "msi/2026-05-31/IdentityCreate.json",
        "msi/2026-05-31/IdentityGet.json",
    ] {
        let ex = example(file);
        for (_, resp) in ex["responses"].as_object().unwrap() {
            let i: UserAssignedIdentity = serde_json::from_value::<WireIdentity>(resp["body"].clone())
                .unwrap()
                .into();
            assert_eq!(i.principal_id, "25cc773c-7f05-40fc-a104-32d2300754ad", "{file}");
            assert_eq!(i.client_id, "4024ab25-56a8-4370-aea6-6389221caf29");
            assert_eq!(i.tenant_id, "b6c948ef-f6b5-4384-8354-da3a15eca969");
            assert_eq!(i.tags.get("key1").map(String::as_str), Some("value1"));
        }
    }
}

#[test]
fn resource_graph_examples_parse() {
    for file in [
        "resourcegraph/2024-04-01/ResourcesFilterQuery.json",
        "resourcegraph/2024-04-01/ResourcesTenantBasicQuery.json",
        "resourcegraph/2024-04-01/ResourcesNextPageQuery.json",
    ] {
        let r: ArgResponse = serde_json::from_value(body(file, "200")).unwrap();
        assert_eq!(r.data.as_array().unwrap().len(), 3, "{file}");
        let rows: Vec<RegistrySummary> = serde_json::from_value(r.data).unwrap();
        assert!(rows.iter().all(|r| r.id.starts_with("/subscriptions/")));
    }
    let r: ArgResponse =
        serde_json::from_value(body("resourcegraph/2024-04-01/ResourcesNextPageQuery.json", "200")).unwrap();
    assert_eq!(
        r.skip_token.as_deref(),
        Some("eyAibm8yIjogImx1Y2syIiwgImJ1dDIiOiAibmljZTIiLCAidHJ5MiI6ICIhIiB9")
    );
}

#[test]
fn filter_expressions() {
    let p: Uuid = "ce2ce14e-85d7-4629-bdbc-454d0519d987".parse().unwrap();
    assert_eq!(RoleAssignmentFilter::None.expression(), None);
    assert_eq!(RoleAssignmentFilter::AtScope.expression().unwrap(), "atScope()");
    assert_eq!(
        RoleAssignmentFilter::PrincipalId(p).expression().unwrap(),
        format!("principalId eq '{p}'")
    );
    assert_eq!(
        RoleAssignmentFilter::AssignedTo(p).expression().unwrap(),
        format!("assignedTo('{p}')")
    );
    assert_eq!(
        RoleAssignmentFilter::AtScopeAndAssignedTo(p).expression().unwrap(),
        format!("atScope() and assignedTo('{p}')")
    );
}

#[test]
fn trailing_guid_forms() {
    let g = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
    for id in [
        format!("/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/{g}"),
        format!(
            "/providers/microsoft.authorization/ROLEDEFINITIONS/{}",
            g.to_uppercase()
        ),
        format!("{g}/"),
    ] {
        assert_eq!(trailing_guid(&id).unwrap().to_string(), g);
    }
    assert_eq!(trailing_guid("/x/roleDefinitions/roleDefinitionId"), None);
}
