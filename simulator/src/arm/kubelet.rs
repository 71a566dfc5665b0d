//! The one command shape run-command understands, a probe pod (`kubectl run <pod>
//! --image=<ref> ...`), and what such a command prints: `pod/<pod> created`, then the pod's
//! events as `kubectl get events --field-selector involvedObject.name=<pod> -o
//! custom-columns=REASON:.reason,MESSAGE:.message --no-headers` lists them, with kubelet's
//! and containerd's own messages.

use super::image_ref::ImageRef;
use super::pulls::Pull;

/// A `kubectl run` found in a command.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Probe {
    pub pod: String,
    pub namespace: String,
    pub image: String,
}

/// `kubectl run` flags whose value may come as the next word.
const VALUE_FLAGS: &[&str] = &[
    "--image",
    "-n",
    "--namespace",
    "--restart",
    "--overrides",
    "--labels",
    "-l",
    "--env",
    "--port",
    "--image-pull-policy",
    "--pod-running-timeout",
    "--timeout",
    "--annotations",
    "-o",
    "--output",
    "--context",
    "--kubeconfig",
    "--serviceaccount",
];

fn unquote(s: &str) -> String {
    s.trim_matches(|c| c == '"' || c == '\'').to_string()
}

/// Finds the first `kubectl run <pod> ... --image=<ref>` (or `--image <ref>`) in `command`.
pub(crate) fn find_probe(command: &str) -> Option<Probe> {
    let words: Vec<&str> = command
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '|' | '&' | '(' | ')'))
        .filter(|w| !w.is_empty())
        .collect();
    let start = words
        .windows(2)
        .position(|w| w[0].ends_with("kubectl") && w[1] == "run")?
        + 2;
    let (mut pod, mut image, mut namespace) = (None, None, None);
    let mut i = start;
    while i < words.len() && !words[i].ends_with("kubectl") && words[i] != "--" {
        let w = words[i];
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f, Some(v.to_string())),
            _ => (w, None),
        };
        if flag.starts_with('-') {
            let takes_value = VALUE_FLAGS.contains(&flag);
            let value = match inline {
                Some(v) => Some(v),
                None if takes_value => {
                    i += 1;
                    words.get(i).map(|v| v.to_string())
                }
                None => None,
            };
            match (flag, value) {
                ("--image", Some(v)) => image = Some(unquote(&v)),
                ("-n" | "--namespace", Some(v)) => namespace = Some(unquote(&v)),
                _ => {}
            }
        } else if pod.is_none() {
            pod = Some(unquote(w));
        }
        i += 1;
    }
    Some(Probe {
        pod: pod?,
        namespace: namespace.unwrap_or_else(|| "default".into()),
        image: image?,
    })
}

/// What the probe prints and its exit code, given how the pull went (`None`: the image
/// reference itself is invalid).
pub(crate) fn probe_output(probe: &Probe, image: Option<&ImageRef>, pull: Option<&Pull>, node: &str) -> (i32, String) {
    let spec = &probe.image;
    let mut events: Vec<(&str, String)> = vec![(
        "Scheduled",
        format!("Successfully assigned {}/{} to {node}", probe.namespace, probe.pod),
    )];
    let (Some(image), Some(pull)) = (image, pull) else {
        events.push((
            "InspectFailed",
            format!("Failed to apply default image tag \"{spec}\": couldn't parse image name \"{spec}\": invalid reference format"),
        ));
        events.push(("Failed", "Error: InvalidImageName".into()));
        return (1, render(probe, &events));
    };
    events.push(("Pulling", format!("Pulling image \"{spec}\"")));
    let norm = image.normalized();
    let unknown = |desc: String| {
        format!(
            "Failed to pull image \"{spec}\": rpc error: code = Unknown desc = failed to pull and unpack image \"{norm}\": failed to resolve reference \"{norm}\": {desc}"
        )
    };
    let url = image.manifest_url();
    let failure = match pull {
        Pull::Pulled { digest } => {
            let (secs, size) = timing(digest);
            events.push((
                "Pulled",
                format!(
                    "Successfully pulled image \"{spec}\" in {secs} ({secs} including waiting). Image size: {size} bytes."
                ),
            ));
            events.push(("Created", format!("Created container: {}", probe.pod)));
            events.push(("Started", format!("Started container {}", probe.pod)));
            return (0, render(probe, &events));
        }
        Pull::NoSuchHost => unknown(format!(
            "failed to do request: Head \"{url}\": dial tcp: lookup {} on 168.63.129.16:53: no such host",
            image.endpoint_host()
        )),
        Pull::Timeout { ip } => unknown(format!(
            "failed to do request: Head \"{url}\": dial tcp {ip}:443: i/o timeout"
        )),
        Pull::Forbidden => unknown(format!("unexpected status from HEAD request to {url}: 403 Forbidden")),
        Pull::Unauthorized => {
            let host = image.endpoint_host();
            let scope = form_urlencoded::byte_serialize(format!("repository:{}:pull", image.repo).as_bytes())
                .collect::<String>();
            unknown(format!(
                "failed to authorize: failed to fetch anonymous token: unexpected status from GET request to https://{host}/oauth2/token?scope={scope}&service={host}: 401 Unauthorized"
            ))
        }
        Pull::NotFound => format!(
            "Failed to pull image \"{spec}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{norm}\": failed to resolve reference \"{norm}\": {norm}: not found"
        ),
    };
    events.push(("Failed", failure));
    events.push(("Failed", "Error: ErrImagePull".into()));
    events.push(("BackOff", format!("Back-off pulling image \"{spec}\"")));
    events.push(("Failed", "Error: ImagePullBackOff".into()));
    (1, render(probe, &events))
}

/// `pod/<pod> created`, then the events in `custom-columns` layout (columns padded to the
/// widest value plus three spaces, as kubectl's tabwriter does).
fn render(probe: &Probe, events: &[(&str, String)]) -> String {
    let width = events.iter().map(|(r, _)| r.len()).max().unwrap_or(0) + 3;
    let mut out = format!("pod/{} created\n", probe.pod);
    for (reason, message) in events {
        out.push_str(&format!("{reason:<width$}{message}\n"));
    }
    out
}

/// A plausible pull time (Go's duration format) and image size, stable per digest.
fn timing(digest: &str) -> (String, u64) {
    let hex = digest.trim_start_matches("sha256:");
    let n = u64::from_str_radix(hex.get(..8).unwrap_or("0"), 16).unwrap_or(0);
    let millis = 400 + n % 2600;
    let secs = format!("{}.{:03}s", millis / 1000, millis % 1000);
    (secs, 2_000_000 + n % 60_000_000)
}

/// The node a probe lands on: the first node of the cluster's system pool.
pub(crate) fn node_name(cluster_id: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, cluster_id.to_ascii_lowercase().as_bytes());
    let n = u32::from_be_bytes([d.as_ref()[0], d.as_ref()[1], d.as_ref()[2], d.as_ref()[3]]) % 100_000_000;
    format!("aks-nodepool1-{n:08}-vmss000000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_found_in_command_lines() {
        let p = find_probe("kubectl run acr-probe-1 --image=acrone.azurecr.io/hello:v1 --restart=Never -n probes && kubectl get events").unwrap();
        assert_eq!(p.pod, "acr-probe-1");
        assert_eq!(p.image, "acrone.azurecr.io/hello:v1");
        assert_eq!(p.namespace, "probes");
        let p = find_probe("set -e; kubectl run --restart Never p2 --image 'x.azurecr.io/a:b'").unwrap();
        assert_eq!((p.pod.as_str(), p.image.as_str()), ("p2", "x.azurecr.io/a:b"));
        assert!(find_probe("kubectl get pods").is_none());
        assert!(find_probe("kubectl run nameonly").is_none());
    }

    #[test]
    fn events_are_column_aligned() {
        let probe = Probe {
            pod: "p".into(),
            namespace: "default".into(),
            image: "x.azurecr.io/a:b".into(),
        };
        let image = ImageRef::parse(&probe.image).unwrap();
        let (code, logs) = probe_output(&probe, Some(&image), Some(&Pull::NotFound), "node");
        assert_eq!(code, 1);
        let lines: Vec<&str> = logs.lines().collect();
        assert_eq!(lines[0], "pod/p created");
        assert!(lines[1].starts_with("Scheduled   Successfully assigned default/p to node"));
        assert!(lines[2].starts_with("Pulling     Pulling image"));
        assert!(lines[3].ends_with("x.azurecr.io/a:b: not found"), "{}", lines[3]);
    }
}
