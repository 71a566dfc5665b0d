//! The in-cluster probe: the command AKS run-command executes, and what its output means.
//!
//! The command is acr-attach's own fixed script; the only values in it are the registry's
//! login server (from ARM, checked to be a host name), the image (checked against the image
//! grammar at the API and again here) and a pod name derived from the job id. A pod named
//! after the job means a command that runs twice (a crash right after AKS accepted it) cannot
//! start a second pod: `kubectl run` refuses the existing name.
//!
//! The pod pulls with `imagePullPolicy: Always`, so a cached image proves nothing; the script
//! waits (at most two minutes) for kubelet's verdict and prints the pod's events, the same
//! lines `kubectl describe pod` shows, then deletes the pod.
use serde_json::json;
use uuid::Uuid;

use super::findings::{Finding, Severity};
use crate::azure::CommandResult;
use crate::domain::valid_image;

/// What a probe needs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeCommand {
    pub pod: String,
    /// `{loginServer}/{image}`: what the pod pulls.
    pub image_ref: String,
    pub command: String,
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// The probe's shell line, or why it cannot be built.
pub fn command(login_server: &str, image: &str, job: Uuid) -> Result<ProbeCommand, String> {
    let login = login_server.to_ascii_lowercase();
    if !valid_host(&login) {
        return Err(format!(
            "the registry's login server '{login_server}' is not a host name"
        ));
    }
    if !valid_image(image) {
        return Err(format!(
            "'{image}' is not an image reference (repository:tag or repository@sha256:digest)"
        ));
    }
    let pod = format!("acr-attach-probe-{}", &job.simple().to_string()[..12]);
    let image_ref = format!("{login}/{image}");
    let events = format!("kubectl get events --namespace default --field-selector involvedObject.name={pod}");
    let command = format!(
        "kubectl run {pod} --namespace default --image={image_ref} --restart=Never --image-pull-policy=Always \
         --labels=app.kubernetes.io/managed-by=acr-attach \
         --overrides='{{\"apiVersion\":\"v1\",\"spec\":{{\"nodeSelector\":{{\"kubernetes.io/os\":\"linux\"}}}}}}'; \
         for i in $(seq 1 60); do {events} -o custom-columns=REASON:.reason --no-headers | grep -qE '^(Pulled|Failed|BackOff)' && break; sleep 2; done; \
         {events} -o custom-columns=REASON:.reason,MESSAGE:.message --no-headers; \
         kubectl delete pod {pod} --namespace default --wait=false"
    );
    Ok(ProbeCommand {
        pod,
        image_ref,
        command,
    })
}

/// How the pull ended, read from kubelet's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pulled,
    DnsFailure,
    Unauthorized,
    Forbidden,
    NetworkTimeout,
    ImageNotFound,
    Inconclusive,
}

/// Reads the command's output. A `Pulled` event wins (the pull happened); otherwise the first
/// failure kubelet reported decides.
pub fn outcome(logs: &str) -> Outcome {
    let lines: Vec<&str> = logs.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines
        .iter()
        .any(|l| l.starts_with("Pulled") || l.contains("Successfully pulled image"))
    {
        return Outcome::Pulled;
    }
    for l in lines.iter().filter(|l| l.starts_with("Failed")) {
        let l = l.to_ascii_lowercase();
        if l.contains("no such host") || l.contains("server misbehaving") {
            return Outcome::DnsFailure;
        }
        if l.contains("i/o timeout") || l.contains("deadline exceeded") || l.contains("connection timed out") {
            return Outcome::NetworkTimeout;
        }
        if l.contains("401 unauthorized") || l.contains("failed to authorize") || l.contains("unauthorized:") {
            return Outcome::Unauthorized;
        }
        if l.contains("403 forbidden") || l.contains("denied:") {
            return Outcome::Forbidden;
        }
        if l.contains(": not found") || l.contains("manifest unknown") || l.contains("code = notfound") {
            return Outcome::ImageNotFound;
        }
    }
    Outcome::Inconclusive
}

/// The last `max` bytes of the output (kubelet's verdict comes last), on a character boundary.
fn tail(logs: &str, max: usize) -> &str {
    if logs.len() <= max {
        return logs;
    }
    let mut start = logs.len() - max;
    while !logs.is_char_boundary(start) {
        start += 1;
    }
    &logs[start..]
}

/// The finding a finished probe makes, and whether it decides the verdict (`Some(true)`: the
/// cluster pulled; `Some(false)`: it could not; `None`: the probe does not tell).
pub fn finding(result: &CommandResult, probe: &ProbeCommand) -> (Finding, Option<bool>) {
    let logs = result.logs.clone().unwrap_or_default();
    let evidence = json!({
        "commandId": result.id,
        "pod": probe.pod,
        "image": probe.image_ref,
        "exitCode": result.exit_code,
        "provisioningState": result.provisioning_state,
        "reason": result.reason,
        "startedAt": result.started_at,
        "finishedAt": result.finished_at,
        "logs": tail(&logs, 2048),
    });
    if result
        .provisioning_state
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("failed"))
    {
        let why = result.reason.clone().unwrap_or_else(|| "no reason given".into());
        return (
            Finding::new(
                "ProbeCommandFailed",
                Severity::Warning,
                format!(
                    "AKS could not run the probe's command pod ({why}); the probe tells nothing about the registry"
                ),
                evidence,
            )
            .fix("look at the aks-command namespace of the cluster; run-command needs a node that can start its pod"),
            None,
        );
    }
    let image = &probe.image_ref;
    let (code, severity, message, fix, decides) = match outcome(&logs) {
        Outcome::Pulled => (
            "ProbePulled",
            Severity::Info,
            format!("a pod in the cluster pulled {image}"),
            None,
            Some(true),
        ),
        Outcome::DnsFailure => (
            "ProbeDnsFailure",
            Severity::Error,
            format!("the nodes cannot resolve the registry's name while pulling {image}"),
            Some(
                "with a private endpoint, link the privatelink.azurecr.io zone to the cluster's virtual network; otherwise check the cluster's DNS servers",
            ),
            Some(false),
        ),
        Outcome::NetworkTimeout => (
            "ProbeNetworkTimeout",
            Severity::Error,
            format!("the nodes cannot reach the registry (the connection timed out) while pulling {image}"),
            Some(
                "allow outbound HTTPS from the nodes to the login server and the registry's data endpoints (firewall, NSG, route table)",
            ),
            Some(false),
        ),
        Outcome::Unauthorized => (
            "ProbeUnauthorized",
            Severity::Error,
            format!("the registry refused the kubelet identity's credentials (401) for {image}"),
            Some(
                "attach the pair; if a grant was made in the last minutes (hours through a group), wait and probe again",
            ),
            Some(false),
        ),
        Outcome::Forbidden => (
            "ProbeForbidden",
            Severity::Error,
            format!(
                "the registry refused the pull (403) of {image}: its firewall does not allow the nodes, or the identity's grant does not cover the repository"
            ),
            Some(
                "allow the cluster's outbound IPs in the registry's network rules or use a private endpoint; in ABAC mode, check the grant's repository condition",
            ),
            Some(false),
        ),
        Outcome::ImageNotFound => (
            "ProbeImageNotFound",
            Severity::Warning,
            format!("the registry has no {image}, so the probe could not show a pull"),
            Some("import the image (POST /v1/imports) or name one that exists"),
            None,
        ),
        Outcome::Inconclusive => (
            "ProbeInconclusive",
            Severity::Warning,
            format!("the probe's output does not say how pulling {image} ended"),
            Some("read the logs in the evidence; probe again"),
            None,
        ),
    };
    let mut f = Finding::new(code, severity, message, evidence);
    if let Some(fix) = fix {
        f = f.fix(fix);
    }
    (f, decides)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_built_only_from_checked_values() {
        let job = Uuid::parse_str("0f8fad5b-d9cb-469f-a165-70867728950e").unwrap();
        let c = command("acrdemo.azurecr.io", "hello-world:latest", job).unwrap();
        assert_eq!(c.pod, "acr-attach-probe-0f8fad5bd9cb");
        assert_eq!(c.image_ref, "acrdemo.azurecr.io/hello-world:latest");
        assert!(c.command.starts_with("kubectl run acr-attach-probe-0f8fad5bd9cb --namespace default --image=acrdemo.azurecr.io/hello-world:latest "));
        assert!(command("acrdemo.azurecr.io", "x:v1;reboot", job).is_err());
        assert!(command("evil.io;reboot", "x:v1", job).is_err());
        assert!(command("$(id).azurecr.io", "x:v1", job).is_err());
    }

    #[test]
    fn kubelet_events_map_to_outcomes() {
        let failed = |m: &str| {
            format!(
                "Scheduled   Successfully assigned default/p to aks-node\nPulling   Pulling image \"x\"\nFailed   {m}\n"
            )
        };
        assert_eq!(
            outcome("Pulled   Successfully pulled image \"x\" in 1.2s"),
            Outcome::Pulled
        );
        assert_eq!(
            outcome(&failed(
                "Failed to pull image \"x\": dial tcp: lookup acr.azurecr.io on 10.0.0.10:53: no such host"
            )),
            Outcome::DnsFailure
        );
        assert_eq!(
            outcome(&failed(
                "Failed to pull image \"x\": dial tcp 20.1.2.3:443: i/o timeout"
            )),
            Outcome::NetworkTimeout
        );
        assert_eq!(
            outcome(&failed(
                "Failed to pull image \"x\": failed to authorize: failed to fetch anonymous token: 401 Unauthorized"
            )),
            Outcome::Unauthorized
        );
        assert_eq!(
            outcome(&failed(
                "Failed to pull image \"x\": unexpected status from HEAD request: 403 Forbidden"
            )),
            Outcome::Forbidden
        );
        assert_eq!(
            outcome(&failed(
                "Failed to pull image \"x\": rpc error: code = NotFound desc = failed to resolve reference \"x\": x: not found"
            )),
            Outcome::ImageNotFound
        );
        assert_eq!(outcome(""), Outcome::Inconclusive);
    }

    #[test]
    fn evidence_keeps_the_end_of_long_output() {
        let long = format!("{}é{}", "a".repeat(3000), "Failed   the verdict");
        let t = tail(&long, 20);
        assert!(t.ends_with("Failed   the verdict"));
    }
}
