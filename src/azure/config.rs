//! Every Azure setting as a flag plus environment variable ([`AzureConfig`], flattened into
//! the service's clap config), validated once into [`AzureSettings`].
//!
//! Validation happens at start-up so a typo fails the process with a clear message instead of
//! failing every job later. There is deliberately no plain-http mode: endpoints and the
//! authority must be https; a local simulator uses https plus `--ca-bundle`.

use super::cloud::{Cloud, CloudName};
use super::ids::SubscriptionId;
use crate::duration::parse_duration;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// A secret string: never printed by `Debug`/`Display` (shows `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// The secret value. Only the credential should call this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString(s)
    }
}
impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the service authenticates to Entra ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CredentialKind {
    /// client-secret if a secret is set, else workload-identity if `AZURE_FEDERATED_TOKEN_FILE`
    /// is set, else managed-identity.
    Auto,
    /// App registration with a client secret.
    ClientSecret,
    /// AKS workload identity (federated token file).
    WorkloadIdentity,
    /// Managed identity (IMDS / App Service); `AZURE_CLIENT_ID` picks a user-assigned one.
    ManagedIdentity,
    /// The signed-in Azure CLI (`az`), for local development.
    AzureCli,
}

/// Azure settings as given on the command line / environment. Use [`AzureConfig::resolve`].
#[derive(clap::Args, Clone)]
pub struct AzureConfig {
    /// Azure cloud: public, usgovernment, china or custom (custom needs every endpoint below).
    #[arg(long = "azure-cloud", env = "AZURE_CLOUD", value_enum, default_value = "public")]
    pub cloud: CloudName,
    /// ARM endpoint override (https), e.g. https://management.azure.com.
    #[arg(long = "arm-endpoint", env = "AZURE_ARM_ENDPOINT")]
    pub arm_endpoint: Option<String>,
    /// ARM token audience override, e.g. https://management.azure.com.
    #[arg(long = "arm-audience", env = "AZURE_ARM_AUDIENCE")]
    pub arm_audience: Option<String>,
    /// Entra ID authority host override (https), e.g. https://login.microsoftonline.com.
    #[arg(long = "authority-host", env = "AZURE_AUTHORITY_HOST")]
    pub authority_host: Option<String>,
    /// Microsoft Graph endpoint override (https), e.g. https://graph.microsoft.com.
    #[arg(long = "graph-endpoint", env = "AZURE_GRAPH_ENDPOINT")]
    pub graph_endpoint: Option<String>,
    /// Microsoft Graph token audience override.
    #[arg(long = "graph-audience", env = "AZURE_GRAPH_AUDIENCE")]
    pub graph_audience: Option<String>,
    /// Registry login-server suffix override (e.g. azurecr.io); optional for custom clouds.
    #[arg(long = "acr-suffix", env = "AZURE_ACR_SUFFIX")]
    pub acr_suffix: Option<String>,

    /// Credential: auto, client-secret, workload-identity, managed-identity or azure-cli.
    #[arg(
        long = "azure-credential",
        env = "AZURE_CREDENTIAL",
        value_enum,
        default_value = "auto"
    )]
    pub credential: CredentialKind,
    /// Entra tenant id.
    #[arg(long = "azure-tenant-id", env = "AZURE_TENANT_ID")]
    pub tenant_id: Option<String>,
    /// Client (application) id; for managed identity, selects a user-assigned identity.
    #[arg(long = "azure-client-id", env = "AZURE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Client secret. Prefer the environment variable; the value is never printed.
    #[arg(long = "azure-client-secret", env = "AZURE_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<SecretString>,
    /// Federated token file (workload identity).
    #[arg(long = "azure-federated-token-file", env = "AZURE_FEDERATED_TOKEN_FILE")]
    pub federated_token_file: Option<PathBuf>,

    /// Extra PEM root certificates trusted in addition to the system roots (TLS-inspecting
    /// proxies, the Azure simulator's CA).
    #[arg(long = "ca-bundle", env = "ACR_ATTACH_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    /// Comma-separated subscription ids searched when a registry is given by bare name.
    #[arg(long = "subscriptions", env = "ACR_ATTACH_SUBSCRIPTIONS", value_delimiter = ',')]
    pub subscriptions: Vec<String>,

    /// api-version for Microsoft.Authorization (role assignments, definitions, permissions).
    #[arg(long, env = "ACR_ATTACH_API_VERSION_ROLE_ASSIGNMENTS", default_value = "2022-04-01")]
    pub api_version_role_assignments: String,
    /// api-version for Microsoft.ContainerRegistry (2025-11-01 shows roleAssignmentMode).
    #[arg(long, env = "ACR_ATTACH_API_VERSION_REGISTRIES", default_value = "2025-11-01")]
    pub api_version_registries: String,
    /// api-version for Microsoft.ContainerService/managedClusters.
    #[arg(long, env = "ACR_ATTACH_API_VERSION_MANAGED_CLUSTERS", default_value = "2026-07-01")]
    pub api_version_managed_clusters: String,
    /// api-version for Microsoft.ManagedIdentity.
    #[arg(
        long,
        env = "ACR_ATTACH_API_VERSION_MANAGED_IDENTITIES",
        default_value = "2023-01-31"
    )]
    pub api_version_managed_identities: String,
    /// api-version for Microsoft.ResourceGraph.
    #[arg(long, env = "ACR_ATTACH_API_VERSION_RESOURCE_GRAPH", default_value = "2024-04-01")]
    pub api_version_resource_graph: String,
    /// api-version for Microsoft.Resources subscriptions (listing them).
    #[arg(long, env = "ACR_ATTACH_API_VERSION_SUBSCRIPTIONS", default_value = "2022-12-01")]
    pub api_version_subscriptions: String,

    /// Upper bound for acquiring one token (e.g. 20s, 1500ms).
    #[arg(long = "token-timeout", env = "ACR_ATTACH_TOKEN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub token_timeout: Duration,
    /// Upper bound for one ARM / Graph HTTP request.
    #[arg(long = "arm-request-timeout", env = "ACR_ATTACH_ARM_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub arm_request_timeout: Duration,
}

fn redact_opt(v: &Option<SecretString>) -> &'static str {
    if v.is_some() { "***" } else { "(unset)" }
}

impl fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureConfig")
            .field("cloud", &self.cloud)
            .field("arm_endpoint", &self.arm_endpoint)
            .field("arm_audience", &self.arm_audience)
            .field("authority_host", &self.authority_host)
            .field("graph_endpoint", &self.graph_endpoint)
            .field("graph_audience", &self.graph_audience)
            .field("acr_suffix", &self.acr_suffix)
            .field("credential", &self.credential)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &redact_opt(&self.client_secret))
            .field("federated_token_file", &self.federated_token_file)
            .field("ca_bundle", &self.ca_bundle)
            .field("subscriptions", &self.subscriptions)
            .field("api_version_role_assignments", &self.api_version_role_assignments)
            .field("api_version_registries", &self.api_version_registries)
            .field("api_version_managed_clusters", &self.api_version_managed_clusters)
            .field("api_version_managed_identities", &self.api_version_managed_identities)
            .field("api_version_resource_graph", &self.api_version_resource_graph)
            .field("api_version_subscriptions", &self.api_version_subscriptions)
            .field("token_timeout", &self.token_timeout)
            .field("arm_request_timeout", &self.arm_request_timeout)
            .finish()
    }
}

impl fmt::Display for AzureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cloud={:?} credential={:?} tenant={} client_id={} client_secret={} ca_bundle={} subscriptions=[{}]",
            self.cloud,
            self.credential,
            self.tenant_id.as_deref().unwrap_or("(unset)"),
            self.client_id.as_deref().unwrap_or("(unset)"),
            redact_opt(&self.client_secret),
            self.ca_bundle
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(none)".into()),
            self.subscriptions.join(",")
        )
    }
}

/// A configuration problem, reported at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Azure configuration: {0}")]
pub struct ConfigError(pub String);

/// The credential to build, with everything it needs.
#[derive(Debug, Clone)]
pub enum CredentialSettings {
    /// App registration + secret.
    ClientSecret {
        /// Tenant.
        tenant_id: String,
        /// Application (client) id.
        client_id: String,
        /// Secret (redacted in Debug).
        secret: SecretString,
    },
    /// AKS workload identity.
    WorkloadIdentity {
        /// Tenant.
        tenant_id: String,
        /// Application (client) id of the federated identity.
        client_id: String,
        /// Projected service-account token, re-read by the credential.
        token_file: PathBuf,
    },
    /// Managed identity; `client_id` selects a user-assigned identity.
    ManagedIdentity {
        /// Optional user-assigned client id.
        client_id: Option<String>,
    },
    /// Azure CLI.
    AzureCli {
        /// Optional tenant.
        tenant_id: Option<String>,
    },
}

/// api-versions per resource provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersions {
    /// Microsoft.Authorization.
    pub role_assignments: String,
    /// Microsoft.ContainerRegistry.
    pub registries: String,
    /// Microsoft.ContainerService.
    pub managed_clusters: String,
    /// Microsoft.ManagedIdentity.
    pub managed_identities: String,
    /// Microsoft.ResourceGraph.
    pub resource_graph: String,
    /// Microsoft.Resources subscriptions.
    pub subscriptions: String,
}

impl Default for ApiVersions {
    fn default() -> Self {
        ApiVersions {
            role_assignments: "2022-04-01".into(),
            registries: "2025-11-01".into(),
            managed_clusters: "2026-07-01".into(),
            managed_identities: "2023-01-31".into(),
            resource_graph: "2024-04-01".into(),
            subscriptions: "2022-12-01".into(),
        }
    }
}

/// Extra trusted roots from `--ca-bundle`, already checked to parse.
#[derive(Clone)]
pub struct CaBundle {
    /// Where it was read from.
    pub path: PathBuf,
    /// PEM contents.
    pub pem: Arc<Vec<u8>>,
    /// Number of certificates in it.
    pub certificates: usize,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} certificates)", self.path.display(), self.certificates)
    }
}

/// Validated Azure settings, ready to build an [`super::AzureClient`].
#[derive(Debug, Clone)]
pub struct AzureSettings {
    /// Endpoints and audiences.
    pub cloud: Cloud,
    /// Which credential to use.
    pub credential: CredentialSettings,
    /// Extra trusted roots, in addition to the system roots.
    pub ca_bundle: Option<CaBundle>,
    /// Subscriptions searched for bare registry names.
    pub subscriptions: Vec<SubscriptionId>,
    /// api-versions.
    pub api_versions: ApiVersions,
    /// Bound for acquiring one token.
    pub token_timeout: Duration,
    /// Bound for one HTTP request.
    pub request_timeout: Duration,
}

/// Parses an https endpoint/audience; rejects http and anything with query, fragment or credentials.
fn https_url(flag: &str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim()).map_err(|e| ConfigError(format!("{flag} '{value}' is not a valid URL: {e}")))?;
    if url.scheme() != "https" {
        return Err(ConfigError(format!(
            "{flag} '{value}' must use https (there is no plain-http mode; for a local simulator use https and trust its CA with --ca-bundle/ACR_ATTACH_CA_BUNDLE)"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError(format!("{flag} '{value}' has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError(format!(
            "{flag} '{value}' must be a plain https://host[:port][/path] URL without query, fragment or credentials"
        )));
    }
    Ok(url)
}

fn validate_api_version(flag: &str, v: &str) -> Result<String, ConfigError> {
    let b = v.as_bytes();
    let date_ok = b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    // The first 10 bytes are ASCII when date_ok, so slicing at 10 is on a char boundary.
    let suffix_ok = date_ok && {
        let rest = &v[10..];
        rest.is_empty()
            || (rest.len() > 1 && rest.starts_with('-') && rest[1..].chars().all(|c| c.is_ascii_alphanumeric()))
    };
    if date_ok && suffix_ok {
        Ok(v.to_string())
    } else {
        Err(ConfigError(format!(
            "{flag} '{v}' is not an api-version; expected YYYY-MM-DD or YYYY-MM-DD-preview"
        )))
    }
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl AzureConfig {
    /// Validates everything and produces [`AzureSettings`] (reads the CA bundle file).
    pub fn resolve(&self) -> Result<AzureSettings, ConfigError> {
        let cloud = self.resolve_cloud()?;
        let credential = self.resolve_credential()?;

        let ca_bundle = match &self.ca_bundle {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    ConfigError(format!(
                        "--ca-bundle/ACR_ATTACH_CA_BUNDLE '{}' cannot be read: {e}",
                        path.display()
                    ))
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    ConfigError(format!(
                        "--ca-bundle '{}' is not a PEM certificate bundle: {e}",
                        path.display()
                    ))
                })?;
                if certs.is_empty() {
                    return Err(ConfigError(format!(
                        "--ca-bundle '{}' contains no PEM certificates (expected -----BEGIN CERTIFICATE----- blocks)",
                        path.display()
                    )));
                }
                Some(CaBundle {
                    path: path.clone(),
                    pem: Arc::new(pem),
                    certificates: certs.len(),
                })
            }
        };

        let mut subscriptions = Vec::new();
        for s in self.subscriptions.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let sub: SubscriptionId = s
                .parse()
                .map_err(|e| ConfigError(format!("--subscriptions/ACR_ATTACH_SUBSCRIPTIONS: {e}")))?;
            if !subscriptions.contains(&sub) {
                subscriptions.push(sub);
            }
        }

        let api_versions = ApiVersions {
            role_assignments: validate_api_version(
                "--api-version-role-assignments",
                &self.api_version_role_assignments,
            )?,
            registries: validate_api_version("--api-version-registries", &self.api_version_registries)?,
            managed_clusters: validate_api_version(
                "--api-version-managed-clusters",
                &self.api_version_managed_clusters,
            )?,
            managed_identities: validate_api_version(
                "--api-version-managed-identities",
                &self.api_version_managed_identities,
            )?,
            resource_graph: validate_api_version("--api-version-resource-graph", &self.api_version_resource_graph)?,
            subscriptions: validate_api_version("--api-version-subscriptions", &self.api_version_subscriptions)?,
        };

        Ok(AzureSettings {
            cloud,
            credential,
            ca_bundle,
            subscriptions,
            api_versions,
            token_timeout: self.token_timeout,
            request_timeout: self.arm_request_timeout,
        })
    }

    fn resolve_cloud(&self) -> Result<Cloud, ConfigError> {
        let overrides = [
            ("--arm-endpoint/AZURE_ARM_ENDPOINT", nonempty(&self.arm_endpoint)),
            ("--arm-audience/AZURE_ARM_AUDIENCE", nonempty(&self.arm_audience)),
            ("--authority-host/AZURE_AUTHORITY_HOST", nonempty(&self.authority_host)),
            ("--graph-endpoint/AZURE_GRAPH_ENDPOINT", nonempty(&self.graph_endpoint)),
            ("--graph-audience/AZURE_GRAPH_AUDIENCE", nonempty(&self.graph_audience)),
        ];
        let mut cloud = match Cloud::builtin(self.cloud) {
            Some(c) => c,
            None => {
                let missing: Vec<&str> = overrides
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(flag, _)| *flag)
                    .collect();
                if !missing.is_empty() {
                    return Err(ConfigError(format!(
                        "AZURE_CLOUD=custom needs every endpoint and audience; missing {}",
                        missing.join(", ")
                    )));
                }
                // Placeholders, all replaced below.
                let mut c = Cloud::builtin(CloudName::Public).expect("public is built in");
                c.name = CloudName::Custom;
                c.acr_suffix = None;
                c
            }
        };
        let [arm, arm_aud, authority, graph, graph_aud] = overrides;
        if let Some(v) = arm.1 {
            cloud.arm_endpoint = https_url(arm.0, &v)?;
        }
        if let Some(v) = arm_aud.1 {
            https_url(arm_aud.0, &v)?;
            cloud.arm_audience = v;
        }
        if let Some(v) = authority.1 {
            cloud.authority_host = https_url(authority.0, &v)?;
        }
        if let Some(v) = graph.1 {
            cloud.graph_endpoint = https_url(graph.0, &v)?;
        }
        if let Some(v) = graph_aud.1 {
            https_url(graph_aud.0, &v)?;
            cloud.graph_audience = v;
        }
        if let Some(v) = nonempty(&self.acr_suffix) {
            cloud.acr_suffix = Some(v.trim_start_matches('.').to_string());
        }
        Ok(cloud)
    }

    fn resolve_credential(&self) -> Result<CredentialSettings, ConfigError> {
        let tenant = nonempty(&self.tenant_id);
        let client = nonempty(&self.client_id);
        let secret = self.client_secret.clone().filter(|s| !s.expose().is_empty());
        let token_file = self.federated_token_file.clone().filter(|p| !p.as_os_str().is_empty());
        let kind = match self.credential {
            CredentialKind::Auto if secret.is_some() => CredentialKind::ClientSecret,
            CredentialKind::Auto if token_file.is_some() => CredentialKind::WorkloadIdentity,
            CredentialKind::Auto => CredentialKind::ManagedIdentity,
            k => k,
        };
        if let Some(t) = &tenant
            && !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(ConfigError(format!(
                "AZURE_TENANT_ID '{t}' must be a tenant GUID or domain name"
            )));
        }
        let need =
            |v: Option<String>, what: &str| v.ok_or_else(|| ConfigError(format!("credential {kind:?} needs {what}")));
        Ok(match kind {
            CredentialKind::ClientSecret => CredentialSettings::ClientSecret {
                tenant_id: need(tenant, "AZURE_TENANT_ID (--azure-tenant-id)")?,
                client_id: need(client, "AZURE_CLIENT_ID (--azure-client-id)")?,
                secret: secret
                    .ok_or_else(|| ConfigError("credential ClientSecret needs AZURE_CLIENT_SECRET".into()))?,
            },
            CredentialKind::WorkloadIdentity => {
                let token_file = token_file.ok_or_else(|| {
                    ConfigError("credential WorkloadIdentity needs AZURE_FEDERATED_TOKEN_FILE".into())
                })?;
                if !token_file.is_file() {
                    return Err(ConfigError(format!(
                        "AZURE_FEDERATED_TOKEN_FILE '{}' does not exist or is not a file (is the pod labelled azure.workload.identity/use=true?)",
                        token_file.display()
                    )));
                }
                CredentialSettings::WorkloadIdentity {
                    tenant_id: need(tenant, "AZURE_TENANT_ID (--azure-tenant-id)")?,
                    client_id: need(client, "AZURE_CLIENT_ID (--azure-client-id)")?,
                    token_file,
                }
            }
            CredentialKind::ManagedIdentity => CredentialSettings::ManagedIdentity { client_id: client },
            CredentialKind::AzureCli => CredentialSettings::AzureCli { tenant_id: tenant },
            CredentialKind::Auto => unreachable!("auto resolved above"),
        })
    }
}

impl AzureConfig {
    /// Every setting at its default (as if no flag or variable were given).
    pub fn defaults() -> AzureConfig {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            azure: AzureConfig,
        }
        <Only as clap::Parser>::try_parse_from(["acr-attach"])
            .expect("the defaults parse")
            .azure
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        azure: AzureConfig,
    }

    /// Parses flags only (environment variables of the test process are ignored for the
    /// flags given; the ones not given fall back to defaults or env as clap does).
    pub(crate) fn parse(args: &[&str]) -> Result<AzureConfig, clap::Error> {
        let mut v = vec!["acr-attach"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).map(|c| c.azure)
    }

    const SECRET_ARGS: &[&str] = &[
        "--azure-credential",
        "client-secret",
        "--azure-tenant-id",
        "7e7a0000-0000-4000-8000-000000000001",
        "--azure-client-id",
        "11111111-1111-1111-1111-111111111111",
        "--azure-client-secret",
        "s3cr3t-value",
    ];

    #[test]
    fn defaults_and_public_cloud() {
        let cfg = parse(SECRET_ARGS).unwrap();
        let s = cfg.resolve().unwrap();
        assert_eq!(s.cloud.name, CloudName::Public);
        assert_eq!(s.api_versions, ApiVersions::default());
        assert_eq!(s.token_timeout, Duration::from_secs(20));
        assert_eq!(s.request_timeout, Duration::from_secs(30));
        assert!(matches!(s.credential, CredentialSettings::ClientSecret { .. }));
    }

    #[test]
    fn secret_is_never_printed() {
        let cfg = parse(SECRET_ARGS).unwrap();
        let dbg = format!("{cfg:?}");
        let disp = format!("{cfg}");
        let settings = format!("{:?}", cfg.resolve().unwrap());
        for out in [dbg, disp, settings] {
            assert!(!out.contains("s3cr3t-value"), "{out}");
            assert!(out.contains("***"), "{out}");
        }
    }

    #[test]
    fn custom_cloud_requires_every_endpoint_and_https() {
        let err = parse(&["--azure-cloud", "custom", "--arm-endpoint", "https://sim:8443"])
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing --arm-audience/AZURE_ARM_AUDIENCE"), "{err}");
        assert!(err.contains("--graph-audience"), "{err}");

        let mut args = vec![
            "--azure-cloud",
            "custom",
            "--arm-endpoint",
            "http://sim:8080",
            "--arm-audience",
            "https://management.sim",
            "--authority-host",
            "https://sim:8443",
            "--graph-endpoint",
            "https://sim:8443",
            "--graph-audience",
            "https://graph.sim",
            "--azure-credential",
            "managed-identity",
        ];
        let err = parse(&args).unwrap().resolve().unwrap_err().to_string();
        assert!(err.contains("must use https"), "{err}");
        assert!(err.contains("no plain-http"), "{err}");
        args[3] = "https://sim:8443/arm";
        let s = parse(&args).unwrap().resolve().unwrap();
        assert_eq!(s.cloud.name, CloudName::Custom);
        assert_eq!(s.cloud.arm_endpoint.as_str(), "https://sim:8443/arm");
        assert_eq!(s.cloud.arm_scope(), "https://management.sim/.default");
        assert_eq!(s.cloud.graph_scope(), "https://graph.sim/.default");
    }

    #[test]
    fn builtin_cloud_overrides() {
        let mut args = SECRET_ARGS.to_vec();
        args.extend([
            "--azure-cloud",
            "usgovernment",
            "--graph-endpoint",
            "https://dod-graph.microsoft.us",
            "--graph-audience",
            "https://dod-graph.microsoft.us",
        ]);
        let s = parse(&args).unwrap().resolve().unwrap();
        assert_eq!(s.cloud.arm_endpoint.host_str(), Some("management.usgovcloudapi.net"));
        assert_eq!(s.cloud.graph_scope(), "https://dod-graph.microsoft.us/.default");
        let mut args = SECRET_ARGS.to_vec();
        args.extend(["--authority-host", "http://login.example"]);
        assert!(
            parse(&args)
                .unwrap()
                .resolve()
                .unwrap_err()
                .to_string()
                .contains("https")
        );
    }

    #[test]
    fn credential_selection() {
        // auto with a secret
        let mut args = SECRET_ARGS.to_vec();
        args[1] = "auto";
        assert!(matches!(
            parse(&args).unwrap().resolve().unwrap().credential,
            CredentialSettings::ClientSecret { .. }
        ));
        // auto with a federated token file
        let dir = std::env::temp_dir().join(format!("acr-attach-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let tok = dir.join("token");
        std::fs::write(&tok, "eyJ...").unwrap();
        let tok_s = tok.to_str().unwrap();
        let s = parse(&[
            "--azure-credential",
            "auto",
            "--azure-tenant-id",
            "contoso.onmicrosoft.com",
            "--azure-client-id",
            "abc",
            "--azure-federated-token-file",
            tok_s,
        ])
        .unwrap()
        .resolve()
        .unwrap();
        assert!(matches!(s.credential, CredentialSettings::WorkloadIdentity { .. }));
        // auto with nothing: managed identity
        let s = parse(&["--azure-credential", "auto", "--azure-client-id", "abc"])
            .unwrap()
            .resolve()
            .unwrap();
        assert!(matches!(
            s.credential,
            CredentialSettings::ManagedIdentity { client_id: Some(_) }
        ));
        // explicit client-secret without a secret
        let err = parse(&[
            "--azure-credential",
            "client-secret",
            "--azure-tenant-id",
            "t",
            "--azure-client-id",
            "c",
        ])
        .unwrap()
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(err.contains("AZURE_CLIENT_SECRET"), "{err}");
        // workload identity with a missing file
        let err = parse(&[
            "--azure-credential",
            "workload-identity",
            "--azure-tenant-id",
            "t",
            "--azure-client-id",
            "c",
            "--azure-federated-token-file",
            "/nonexistent/token",
        ])
        .unwrap()
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(err.contains("does not exist"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn subscriptions_api_versions_durations_and_ca_bundle() {
        let mut args = vec!["--azure-credential", "azure-cli"];
        args.extend([
            "--subscriptions",
            "00000000-0000-0000-0000-000000000001, 00000000-0000-0000-0000-000000000002",
        ]);
        args.extend(["--token-timeout", "1500ms", "--arm-request-timeout", "2m"]);
        args.extend(["--api-version-managed-clusters", "2026-08-01"]);
        let s = parse(&args).unwrap().resolve().unwrap();
        assert_eq!(s.subscriptions.len(), 2);
        assert_eq!(s.token_timeout, Duration::from_millis(1500));
        assert_eq!(s.request_timeout, Duration::from_secs(120));
        assert_eq!(s.api_versions.managed_clusters, "2026-08-01");

        let err = parse(&["--azure-credential", "azure-cli", "--subscriptions", "nope"])
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid subscription id 'nope'"), "{err}");
        let err = parse(&[
            "--azure-credential",
            "azure-cli",
            "--api-version-registries",
            "2025-11-01&x=1",
        ])
        .unwrap()
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(err.contains("not an api-version"), "{err}");
        assert!(validate_api_version("x", "2025-12-01-preview").is_ok());
        assert!(parse(&["--token-timeout", "0s"]).is_err());
        assert!(parse(&["--token-timeout", "soon"]).is_err());

        let err = parse(&["--azure-credential", "azure-cli", "--ca-bundle", "/nonexistent.pem"])
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be read"), "{err}");
        let f = std::env::temp_dir().join(format!("acr-attach-empty-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&f, "not a pem").unwrap();
        let err = parse(&["--azure-credential", "azure-cli", "--ca-bundle", f.to_str().unwrap()])
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("no PEM certificates"), "{err}");
        std::fs::remove_file(f).ok();
    }
}
