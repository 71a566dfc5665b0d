//! Azure clouds: where ARM, Entra ID and Microsoft Graph live, and which token audiences
//! they expect. Built-in values follow the REST reference §7.6; a `Custom` cloud (sovereign
//! or air-gapped clouds, and the local Azure simulator) gives every endpoint explicitly.

use url::Url;

/// Which cloud; selected with `--azure-cloud` / `AZURE_CLOUD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudName {
    /// Azure public cloud.
    Public,
    /// Azure US Government.
    #[value(name = "usgovernment")]
    UsGovernment,
    /// Azure China (21Vianet).
    China,
    /// Every endpoint and audience given explicitly.
    Custom,
}

/// A resolved cloud: https endpoints and token audiences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// Which cloud this is (for custom clouds, `Custom`).
    pub name: CloudName,
    /// ARM endpoint, e.g. `https://management.azure.com`.
    pub arm_endpoint: Url,
    /// ARM token audience, e.g. `https://management.azure.com` (scope = audience + `/.default`).
    pub arm_audience: String,
    /// Entra ID authority host, e.g. `https://login.microsoftonline.com`.
    pub authority_host: Url,
    /// Microsoft Graph endpoint, e.g. `https://graph.microsoft.com`.
    pub graph_endpoint: Url,
    /// Graph token audience.
    pub graph_audience: String,
    /// Registry login-server suffix (`azurecr.io`), if known.
    pub acr_suffix: Option<String>,
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("built-in cloud URLs are valid")
}

impl Cloud {
    /// The built-in definition of a named cloud; `None` for `Custom`.
    pub fn builtin(name: CloudName) -> Option<Cloud> {
        let (arm, login, graph, acr) = match name {
            CloudName::Public => (
                "https://management.azure.com",
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
                "azurecr.io",
            ),
            CloudName::UsGovernment => (
                "https://management.usgovcloudapi.net",
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
                "azurecr.us",
            ),
            CloudName::China => (
                "https://management.chinacloudapi.cn",
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
                "azurecr.cn",
            ),
            CloudName::Custom => return None,
        };
        Some(Cloud {
            name,
            arm_endpoint: url(arm),
            arm_audience: arm.to_string(),
            authority_host: url(login),
            graph_endpoint: url(graph),
            graph_audience: graph.to_string(),
            acr_suffix: Some(acr.to_string()),
        })
    }

    /// The OAuth scope for ARM tokens (`{audience}/.default`).
    pub fn arm_scope(&self) -> String {
        scope_for(&self.arm_audience)
    }

    /// The OAuth scope for Microsoft Graph tokens.
    pub fn graph_scope(&self) -> String {
        scope_for(&self.graph_audience)
    }
}

/// `https://management.azure.com` → `https://management.azure.com/.default`; an audience that
/// already ends in `/.default` is kept as is.
pub fn scope_for(audience: &str) -> String {
    if audience.ends_with("/.default") {
        audience.to_string()
    } else {
        format!("{}/.default", audience.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_clouds_match_reference_table() {
        let p = Cloud::builtin(CloudName::Public).unwrap();
        assert_eq!(p.arm_endpoint.as_str(), "https://management.azure.com/");
        assert_eq!(p.arm_scope(), "https://management.azure.com/.default");
        assert_eq!(p.authority_host.as_str(), "https://login.microsoftonline.com/");
        assert_eq!(p.graph_scope(), "https://graph.microsoft.com/.default");
        assert_eq!(p.acr_suffix.as_deref(), Some("azurecr.io"));

        let g = Cloud::builtin(CloudName::UsGovernment).unwrap();
        assert_eq!(g.arm_scope(), "https://management.usgovcloudapi.net/.default");
        assert_eq!(g.authority_host.host_str(), Some("login.microsoftonline.us"));
        assert_eq!(g.graph_endpoint.host_str(), Some("graph.microsoft.us"));
        assert_eq!(g.acr_suffix.as_deref(), Some("azurecr.us"));

        let c = Cloud::builtin(CloudName::China).unwrap();
        assert_eq!(c.arm_scope(), "https://management.chinacloudapi.cn/.default");
        assert_eq!(c.authority_host.host_str(), Some("login.chinacloudapi.cn"));
        assert_eq!(c.graph_scope(), "https://microsoftgraph.chinacloudapi.cn/.default");
        assert_eq!(c.acr_suffix.as_deref(), Some("azurecr.cn"));

        assert!(Cloud::builtin(CloudName::Custom).is_none());
    }

    #[test]
    fn scopes() {
        assert_eq!(scope_for("https://x.example/"), "https://x.example/.default");
        assert_eq!(scope_for("https://x.example/.default"), "https://x.example/.default");
    }
}
