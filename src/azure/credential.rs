//! Builds the Entra ID credential from [`AzureSettings`].
//!
//! Every credential sends its HTTP through *our* reqwest client (so the extra CA bundle and
//! timeouts apply to the token endpoint too), with the cloud's authority host set through
//! `ClientOptions.cloud`. The SDK's default retry policy (8 retries, ~60 s) would make a dead
//! authority take ~80 s to fail; we allow two quick retries inside the credential and the
//! client bounds every `get_token` with `--token-timeout` anyway. Tokens are cached by the
//! credential types themselves. Nothing here logs a token or a secret.

use super::cloud::CloudName;
use super::config::{AzureSettings, ConfigError, CredentialSettings};
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use std::sync::Arc;

/// The azure_core cloud configuration for the settings' authority host: the built-in variant
/// when the authority is the built-in one, else `Custom` with our authority host.
fn cloud_configuration(settings: &AzureSettings) -> CloudConfiguration {
    let cloud = &settings.cloud;
    let builtin = super::cloud::Cloud::builtin(cloud.name);
    match (cloud.name, builtin) {
        (CloudName::Public, Some(b)) if b.authority_host == cloud.authority_host => CloudConfiguration::AzurePublic,
        (CloudName::UsGovernment, Some(b)) if b.authority_host == cloud.authority_host => {
            CloudConfiguration::AzureGovernment
        }
        (CloudName::China, Some(b)) if b.authority_host == cloud.authority_host => CloudConfiguration::AzureChina,
        _ => {
            let mut custom = CustomConfiguration::default();
            custom.authority_host = cloud.authority_host.as_str().trim_end_matches('/').to_string();
            custom.into()
        }
    }
}

/// Client options shared by every credential: our transport, the cloud, few retries.
fn client_options(settings: &AzureSettings, http: reqwest::Client) -> ClientOptions {
    let budget = settings.token_timeout.as_millis().min(i64::MAX as u128) as i64;
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http))),
        cloud: Some(Arc::new(cloud_configuration(settings))),
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: azure_core::time::Duration::milliseconds(250),
            max_retries: 2,
            max_total_elapsed: azure_core::time::Duration::milliseconds(budget),
            max_delay: azure_core::time::Duration::seconds(2),
        }),
        ..Default::default()
    }
}

/// Builds the configured credential; its HTTP goes through `http`.
pub fn build_credential(
    settings: &AzureSettings,
    http: reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, ConfigError> {
    let options = client_options(settings, http);
    let fail = |what: &str, e: azure_core::Error| ConfigError(format!("cannot create {what}: {e}"));
    Ok(match &settings.credential {
        CredentialSettings::ClientSecret {
            tenant_id,
            client_id,
            secret,
        } => ClientSecretCredential::new(
            tenant_id,
            client_id.clone(),
            Secret::new(secret.expose().to_string()),
            Some(ClientSecretCredentialOptions {
                client_options: options,
            }),
        )
        .map_err(|e| fail("ClientSecretCredential", e))?,
        CredentialSettings::WorkloadIdentity {
            tenant_id,
            client_id,
            token_file,
        } => WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
            credential_options: ClientAssertionCredentialOptions {
                client_options: options,
            },
            client_id: Some(client_id.clone()),
            tenant_id: Some(tenant_id.clone()),
            token_file_path: Some(token_file.clone()),
        }))
        .map_err(|e| fail("WorkloadIdentityCredential", e))?,
        CredentialSettings::ManagedIdentity { client_id } => {
            ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                client_options: options,
            }))
            .map_err(|e| fail("ManagedIdentityCredential", e))?
        }
        CredentialSettings::AzureCli { tenant_id } => AzureCliCredential::new(Some(AzureCliCredentialOptions {
            tenant_id: tenant_id.clone(),
            ..Default::default()
        }))
        .map_err(|e| fail("AzureCliCredential", e))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::config::tests::parse;

    #[test]
    fn builds_every_credential_kind() {
        let http = reqwest::Client::new();
        let dir = std::env::temp_dir().join(format!("acr-attach-cred-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let tok = dir.join("token");
        std::fs::write(&tok, "assertion").unwrap();
        let arg_sets: Vec<Vec<&str>> = vec![
            vec![
                "--azure-credential",
                "client-secret",
                "--azure-tenant-id",
                "t1",
                "--azure-client-id",
                "c",
                "--azure-client-secret",
                "s",
            ],
            vec![
                "--azure-credential",
                "workload-identity",
                "--azure-tenant-id",
                "t1",
                "--azure-client-id",
                "c",
                "--azure-federated-token-file",
                tok.to_str().unwrap(),
            ],
            vec!["--azure-credential", "managed-identity", "--azure-client-id", "c"],
            vec!["--azure-credential", "azure-cli"],
        ];
        for args in arg_sets {
            let s = parse(&args).unwrap().resolve().unwrap();
            build_credential(&s, http.clone()).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn cloud_configuration_follows_authority() {
        let s = parse(&["--azure-credential", "azure-cli"]).unwrap().resolve().unwrap();
        assert_eq!(cloud_configuration(&s), CloudConfiguration::AzurePublic);
        let s = parse(&["--azure-credential", "azure-cli", "--azure-cloud", "china"])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(cloud_configuration(&s), CloudConfiguration::AzureChina);
        let s = parse(&[
            "--azure-credential",
            "azure-cli",
            "--authority-host",
            "https://login.example:8443",
        ])
        .unwrap()
        .resolve()
        .unwrap();
        match cloud_configuration(&s) {
            CloudConfiguration::Custom(c) => {
                assert_eq!(c.authority_host, "https://login.example:8443")
            }
            other => panic!("{other:?}"),
        }
    }
}
