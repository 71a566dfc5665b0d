//! Which api-versions each operation family accepts, and ARM's errors when they don't match.

use super::errors::ArmError;

// Each set holds the versions acr-attach sends, the Azure CLI's defaults (az 2.91: managed
// clusters 2026-06-01, registries 2026-09-01-preview, role definitions 2022-05-01-preview,
// resources 2024-11-01) and the newest stable SDKs' (azure-mgmt-containerservice 41.8: 2026-08-01,
// -containerregistry 15.0: 2025-11-01, -authorization 4.0: 2022-04-01, -resource 26.0: 2025-04-01).
// The simulator README lists them; anything else gets ARM's InvalidApiVersionParameter.
pub(crate) const ROLE_ASSIGNMENTS: &[&str] = &["2022-04-01", "2020-04-01-preview", "2018-09-01-preview"];
pub(crate) const AUTHORIZATION: &[&str] = &["2022-05-01-preview", "2022-04-01"];
pub(crate) const REGISTRIES: &[&str] = &["2026-09-01-preview", "2025-11-01", "2023-07-01"];
pub(crate) const CLUSTERS: &[&str] = &["2026-08-01", "2026-07-01", "2026-06-01", "2026-03-01", "2025-10-01"];
/// AKS's operation-status URLs say 2016-03-30; the cluster versions are accepted too.
pub(crate) const CLUSTER_OPERATIONS: &[&str] = &[
    "2016-03-30",
    "2026-08-01",
    "2026-07-01",
    "2026-06-01",
    "2026-03-01",
    "2025-10-01",
];
/// ACR's operation-status URLs carry the api-version of the call that started the operation.
pub(crate) const REGISTRY_OPERATIONS: &[&str] = REGISTRIES;
pub(crate) const IDENTITIES: &[&str] = &["2026-05-31", "2026-04-30", "2024-11-30", "2023-01-31", "2018-11-30"];
pub(crate) const RESOURCE_GRAPH: &[&str] = &["2024-04-01", "2022-10-01", "2021-03-01"];
pub(crate) const RESOURCES: &[&str] = &["2025-04-01", "2024-11-01", "2021-04-01"];
pub(crate) const SUBSCRIPTIONS: &[&str] = &["2022-12-01", "2021-01-01", "2020-01-01"];

/// Returns the accepted version or ARM's 400.
pub(crate) fn check(given: Option<&str>, supported: &[&str]) -> Result<String, ArmError> {
    let Some(v) = given.filter(|v| !v.is_empty()) else {
        return Err(ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    match supported.iter().find(|s| s.eq_ignore_ascii_case(v)) {
        Some(s) => Ok(s.to_string()),
        None => Err(ArmError::bad_request(
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{v}' is invalid. The supported versions are '{}'.",
                supported.join(",")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_unsupported_versions_are_rejected() {
        assert_eq!(check(None, REGISTRIES).unwrap_err().code, "MissingApiVersionParameter");
        let e = check(Some("2019-01-01"), REGISTRIES).unwrap_err();
        assert_eq!(e.code, "InvalidApiVersionParameter");
        assert!(
            e.message.contains("2026-09-01-preview,2025-11-01,2023-07-01"),
            "{}",
            e.message
        );
        assert_eq!(check(Some("2025-11-01"), REGISTRIES).unwrap(), "2025-11-01");
    }
}
