//! Image references as a registry names them: `repository:tag` or `repository@sha256:digest`,
//! with no host (the registry's login server goes in front). Checked against the OCI
//! distribution grammar wherever one is accepted, so nothing else can reach a command line.

/// Checks an image reference against the OCI distribution grammar (repository path, then a
/// tag or a digest), so nothing else can reach the command a probe runs in the cluster.
pub fn valid_image(image: &str) -> bool {
    let (repo, reference) = match (image.split_once('@'), image.rsplit_once(':')) {
        (Some((repo, digest)), _) => {
            let ok = digest
                .strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            (repo, ok)
        }
        (None, Some((repo, tag))) => {
            let ok = (1..=128).contains(&tag.len())
                && tag
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            (repo, ok)
        }
        (None, None) => return false,
    };
    let component = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && c.bytes()
                .last()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
    };
    reference && image.len() <= 512 && repo.split('/').all(component)
}

#[cfg(test)]
mod tests {
    use super::valid_image;

    #[test]
    fn image_references_follow_the_distribution_grammar() {
        for ok in [
            "hello-world:latest",
            "team/app:v1.2.3",
            "a/b/c:_x",
            "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(valid_image(ok), "{ok}");
        }
        for bad in [
            "hello",
            "Hello:v1",
            "app:v1;rm -rf /",
            "app:$(id)",
            "app:v1 --privileged",
            "acrdemo.azurecr.io:443/app:v1",
            "../app:v1",
            "app:",
            "-app:v1",
            "app@sha256:xyz",
            "app:v1\n",
            "app:'v1'",
        ] {
            assert!(!valid_image(bad), "{bad}");
        }
    }
}
