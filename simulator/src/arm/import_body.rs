//! The `ImportImageParameters` body of `Registries_ImportImage`, checked as ACR does before it
//! accepts the operation.

use serde_json::{Map, Value};

use super::errors::ArmError;
use super::image_ref::split_repo_ref;

/// Where the image comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    /// A registry in the tenant, by ARM id.
    ResourceId(String),
    /// A registry by host name (another tenant's ACR, Docker Hub, MCR...).
    RegistryUri(String),
}

/// A validated import request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImportRequest {
    pub source: Source,
    /// `repo[:tag]` or `repo@sha256:...` as sent.
    pub source_image: String,
    pub source_repo: String,
    /// Tag or digest.
    pub source_reference: String,
    pub credentials: Option<(Option<String>, String)>,
    /// Target `(repo, tag)` pairs, defaults applied.
    pub target_tags: Vec<(String, String)>,
    pub untagged_target_repositories: Vec<String>,
    /// `NoForce` or `Force`.
    pub mode: String,
}

fn invalid_content(msg: &str) -> ArmError {
    ArmError::bad_request(
        "InvalidRequestContent",
        format!("The request content was invalid and could not be deserialized: '{msg}'."),
    )
}

fn invalid_parameters(msg: impl Into<String>) -> ArmError {
    ArmError::bad_request("InvalidParameters", msg)
}

fn string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, ArmError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid_content(&format!("Property '{key}' must be a string"))),
    }
}

fn strings(obj: &Map<String, Value>, key: &str) -> Result<Vec<String>, ArmError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid_content(&format!("Property '{key}' must be an array of strings")))
            })
            .collect(),
        Some(_) => Err(invalid_content(&format!(
            "Property '{key}' must be an array of strings"
        ))),
    }
}

/// Parses and checks the body; target tags get their defaults (a tag-less target takes the
/// source tag; no targets at all: the source `repo:tag`, or for a digest the source repo
/// untagged).
pub(crate) fn parse(raw: &[u8]) -> Result<ImportRequest, ArmError> {
    let body: Value = serde_json::from_slice(raw).map_err(|e| invalid_content(&e.to_string()))?;
    let obj = body
        .as_object()
        .ok_or_else(|| invalid_content("The request body must be an ImportImageParameters object"))?;
    let src = match obj.get("source") {
        Some(Value::Object(s)) => s,
        None | Some(Value::Null) => return Err(invalid_content("Required property 'source' not found in JSON")),
        Some(_) => return Err(invalid_content("Property 'source' must be an object")),
    };
    let source_image = string(src, "sourceImage")?
        .ok_or_else(|| invalid_content("Required property 'sourceImage' not found in JSON"))?;
    let source = match (string(src, "resourceId")?, string(src, "registryUri")?) {
        (Some(id), None) => Source::ResourceId(id),
        (None, Some(uri)) => Source::RegistryUri(uri),
        _ => {
            return Err(invalid_parameters(
                "Exactly one of source.resourceId and source.registryUri must be specified.",
            ));
        }
    };
    let (source_repo, source_reference) = split_repo_ref(&source_image).ok_or_else(|| {
        invalid_parameters(format!(
            "The source image '{source_image}' is not valid: use 'repository[:tag]' or 'repository@sha256:<digest>'."
        ))
    })?;
    let credentials = match src.get("credentials") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => {
            let password = string(c, "password")?
                .ok_or_else(|| invalid_content("Required property 'password' not found in JSON"))?;
            Some((string(c, "username")?, password))
        }
        Some(_) => return Err(invalid_content("Property 'credentials' must be an object")),
    };
    let mode = match string(obj, "mode")? {
        None => "NoForce".to_string(),
        Some(m) => ["NoForce", "Force"]
            .iter()
            .find(|x| x.eq_ignore_ascii_case(&m))
            .map(|x| x.to_string())
            .ok_or_else(|| invalid_content(&format!("Error converting value \"{m}\" to type 'ImportMode'")))?,
    };
    let default_tag = if source_reference.starts_with("sha256:") {
        "latest".to_string()
    } else {
        source_reference.clone()
    };
    let mut target_tags = Vec::new();
    for t in strings(obj, "targetTags")? {
        let explicit_tag = t.rsplit_once(':').is_some_and(|(_, tag)| !tag.contains('/'));
        match split_repo_ref(&t) {
            Some((repo, tag)) if !tag.starts_with("sha256:") => {
                target_tags.push((repo, if explicit_tag { tag } else { default_tag.clone() }))
            }
            _ => {
                return Err(invalid_parameters(format!(
                    "The target tag '{t}' is not valid: use 'repository[:tag]'."
                )));
            }
        }
    }
    let mut untagged = Vec::new();
    for r in strings(obj, "untaggedTargetRepositories")? {
        match split_repo_ref(&r) {
            Some((repo, _)) if !r.contains(':') && !r.contains('@') => untagged.push(repo),
            _ => {
                return Err(invalid_parameters(format!(
                    "The target repository '{r}' is not a valid repository name."
                )));
            }
        }
    }
    if target_tags.is_empty() && untagged.is_empty() {
        if source_reference.starts_with("sha256:") {
            untagged.push(source_repo.clone());
        } else {
            target_tags.push((source_repo.clone(), source_reference.clone()));
        }
    }
    Ok(ImportRequest {
        source,
        source_image,
        source_repo,
        source_reference,
        credentials,
        target_tags,
        untagged_target_repositories: untagged,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_and_defaults_applied() {
        let r = parse(br#"{"source":{"registryUri":"mcr.microsoft.com","sourceImage":"hello-world"}}"#).unwrap();
        assert_eq!(r.target_tags, vec![("hello-world".into(), "latest".into())]);
        assert_eq!(r.mode, "NoForce");
        let r =
            parse(br#"{"source":{"resourceId":"/x","sourceImage":"a:v1"},"targetTags":["b"],"mode":"force"}"#).unwrap();
        assert_eq!(r.target_tags, vec![("b".into(), "v1".into())]);
        assert_eq!(r.mode, "Force");
        assert_eq!(
            parse(br#"{"source":{"resourceId":"/x"}}"#).unwrap_err().code,
            "InvalidRequestContent"
        );
        assert_eq!(
            parse(br#"{"source":{"sourceImage":"a"}}"#).unwrap_err().code,
            "InvalidParameters"
        );
        assert_eq!(
            parse(br#"{"source":{"resourceId":"/x","sourceImage":"a"},"mode":"Sometimes"}"#)
                .unwrap_err()
                .code,
            "InvalidRequestContent"
        );
        assert_eq!(parse(b"nope").unwrap_err().code, "InvalidRequestContent");
    }
}
