//! Image references as containerd normalises them (`nginx` → `docker.io/library/nginx:latest`)
//! and the `repo[:tag]` / `repo@sha256:...` forms ACR's import takes.

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImageRef {
    /// What the pod spec said (kubelet prints this).
    pub spec: String,
    /// Registry host, `docker.io` when the reference names none.
    pub host: String,
    /// Repository path inside the registry.
    pub repo: String,
    /// Tag, or `sha256:...` digest.
    pub reference: String,
}

const DOCKER_HUB: &str = "docker.io";

impl ImageRef {
    /// Parses a pod's `image`, as containerd does; `None` for an invalid reference format.
    pub fn parse(spec: &str) -> Option<ImageRef> {
        let (first, rest) = spec.split_once('/').unwrap_or(("", spec));
        let has_host = !first.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost");
        let (host, path) = if has_host {
            (first.to_ascii_lowercase(), rest)
        } else {
            (DOCKER_HUB.to_string(), spec)
        };
        let (mut repo, reference) = split_repo_ref(path)?;
        if host == DOCKER_HUB && !repo.contains('/') {
            repo = format!("library/{repo}");
        }
        Some(ImageRef {
            spec: spec.to_string(),
            host,
            repo,
            reference,
        })
    }

    /// The fully qualified name containerd prints: `host/repo:tag` or `host/repo@sha256:...`.
    pub fn normalized(&self) -> String {
        format!("{}/{}{}{}", self.host, self.repo, self.separator(), self.reference)
    }

    fn separator(&self) -> char {
        if self.is_digest() { '@' } else { ':' }
    }

    pub fn is_digest(&self) -> bool {
        self.reference.starts_with("sha256:")
    }

    /// The host containerd actually dials (Docker Hub's registry lives elsewhere).
    pub fn endpoint_host(&self) -> &str {
        if self.host == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            &self.host
        }
    }

    /// `https://<host>/v2/<repo>/manifests/<reference>`: the request that resolves a reference.
    pub fn manifest_url(&self) -> String {
        format!(
            "https://{}/v2/{}/manifests/{}",
            self.endpoint_host(),
            self.repo,
            self.reference
        )
    }
}

/// Whether two registry host names are the same registry (Docker Hub has aliases).
pub(crate) fn same_host(a: &str, b: &str) -> bool {
    let canon = |h: &str| {
        let h = h.trim().trim_end_matches('/').to_ascii_lowercase();
        let h = h
            .strip_prefix("https://")
            .or_else(|| h.strip_prefix("http://"))
            .map(str::to_string)
            .unwrap_or(h);
        match h.as_str() {
            "registry.hub.docker.com" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => h,
        }
    };
    canon(a) == canon(b)
}

/// Splits `repo[:tag]` or `repo@sha256:<64 hex>` (tag defaults to `latest`), checking the
/// repository grammar (lower-case components of `[a-z0-9._-]`, joined by `/`).
pub(crate) fn split_repo_ref(s: &str) -> Option<(String, String)> {
    let (name, reference) = if let Some((name, digest)) = s.split_once('@') {
        let hex = digest.strip_prefix("sha256:")?;
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        (name, digest.to_ascii_lowercase())
    } else {
        match s.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => {
                let ok = !tag.is_empty()
                    && tag.len() <= 128
                    && tag.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                    && !tag.starts_with(['.', '-']);
                if !ok {
                    return None;
                }
                (name, tag.to_string())
            }
            _ => (s, "latest".to_string()),
        }
    };
    let valid = !name.is_empty()
        && name.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
        });
    valid.then(|| (name.to_string(), reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_like_containerd() {
        let r = ImageRef::parse("nginx").unwrap();
        assert_eq!(r.normalized(), "docker.io/library/nginx:latest");
        assert_eq!(
            r.manifest_url(),
            "https://registry-1.docker.io/v2/library/nginx/manifests/latest"
        );
        let r = ImageRef::parse("AcrOne.azurecr.io/team/app:v1.2").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repo.as_str(), r.reference.as_str()),
            ("acrone.azurecr.io", "team/app", "v1.2")
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("localhost:5000/app@{d}")).unwrap();
        assert!(r.is_digest());
        assert_eq!(r.normalized(), format!("localhost:5000/app@{d}"));
        assert!(ImageRef::parse("acr.azurecr.io/App:v1").is_none());
        assert!(ImageRef::parse("acr.azurecr.io/app@sha256:xyz").is_none());
        assert!(same_host("registry.hub.docker.com", "docker.io"));
        assert_eq!(
            split_repo_ref("hello-world"),
            Some(("hello-world".into(), "latest".into()))
        );
    }
}
