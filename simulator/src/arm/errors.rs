//! ARM's common error body `{"error":{"code","message","target"?,"details"?}}`.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::reply;

/// An ARM error response waiting to be rendered (boxed: it travels in every `Result`).
#[derive(Debug, Clone)]
pub(crate) struct ArmError(Box<ArmErrorBody>);

/// The fields of an ARM error.
#[derive(Debug, Clone)]
pub(crate) struct ArmErrorBody {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub target: Option<String>,
    pub details: Vec<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl std::ops::Deref for ArmError {
    type Target = ArmErrorBody;
    fn deref(&self) -> &ArmErrorBody {
        &self.0
    }
}

impl ArmError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ArmError(Box::new(ArmErrorBody {
            status,
            code: code.to_string(),
            message: message.into(),
            target: None,
            details: Vec::new(),
            headers: Vec::new(),
        }))
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.0.headers.push((name, value.into()));
        self
    }

    pub fn with_details(mut self, details: Vec<Value>) -> Self {
        self.0.details = details;
        self
    }

    pub fn into_response(self) -> Response {
        let body = *self.0;
        let mut err = json!({ "code": body.code, "message": body.message });
        if let Some(t) = body.target {
            err["target"] = Value::String(t);
        }
        if !body.details.is_empty() {
            err["details"] = Value::Array(body.details);
        }
        let mut resp = reply::json(body.status, &json!({ "error": err }));
        for (name, value) in body.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(HeaderName::from_static(name), v);
            }
        }
        resp
    }
}

/// ARM's 404 for a resource group that doesn't exist.
pub(crate) fn resource_group_not_found(rg: &str) -> ArmError {
    ArmError::not_found(
        "ResourceGroupNotFound",
        format!("Resource group '{rg}' could not be found."),
    )
}

/// ARM's 404 for a subscription unknown to the tenant.
pub(crate) fn subscription_not_found(sub: &str) -> ArmError {
    ArmError::not_found(
        "SubscriptionNotFound",
        format!("The subscription '{sub}' could not be found."),
    )
}

/// ARM's 404 for a missing resource in an existing resource group.
pub(crate) fn resource_not_found(type_path: &str, name: &str, rg: &str) -> ArmError {
    ArmError::not_found(
        "ResourceNotFound",
        format!(
            "The Resource '{type_path}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}
