//! The HTTP core of [`AzureClient`]: one reqwest client, token acquisition bounded by a
//! timeout, the headers every call carries, per-call records, and response → [`AzureError`]
//! mapping. The typed operations live in `arm.rs` and `graph.rs`.
//!
//! There are no retry loops here on purpose: the job queue retries with back-off and records
//! each attempt; the client reports classified errors.

use super::cloud::Cloud;
use super::config::{ApiVersions, AzureSettings, ConfigError};
use super::context::{CallContext, CallRecord};
use super::error::{AzureError, AzureErrorInfo, ErrorKind, error_chain, parse_error_body, parse_retry_after, truncate};
use super::ids::SubscriptionId;
use super::quota::{Bucket, Observed, QuotaGate};
use azure_core::credentials::TokenCredential;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;
use uuid::Uuid;

/// Typed ARM / Microsoft Graph client. Cheap to clone (shares one connection pool and one
/// credential, whose token cache is shared by all clones).
#[derive(Clone)]
pub struct AzureClient {
    pub(super) inner: Arc<Inner>,
}

#[derive(Clone)]
pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    pub(super) credential: Arc<dyn TokenCredential>,
    pub(super) cloud: Cloud,
    pub(super) api: ApiVersions,
    pub(super) subscriptions: Vec<SubscriptionId>,
    pub(super) token_timeout: Duration,
    pub(super) arm_scope: String,
    pub(super) graph_scope: String,
    /// Who calls ARM, in quota bucket keys.
    pub(super) principal: String,
    /// ARM's quota as budgeted by acr-attach (none: only ARM's 429s pace the calls).
    pub(super) quota: Option<Arc<dyn QuotaGate>>,
}

impl std::fmt::Debug for AzureClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureClient")
            .field("arm_endpoint", &self.inner.cloud.arm_endpoint.as_str())
            .field("graph_endpoint", &self.inner.cloud.graph_endpoint.as_str())
            .finish_non_exhaustive()
    }
}

/// Builds the reqwest client used for ARM, Graph *and* the credential's token requests:
/// request/connect timeouts, and the extra CA bundle merged with the system roots.
pub fn build_http_client(settings: &AzureSettings) -> Result<reqwest::Client, ConfigError> {
    let mut b = reqwest::Client::builder()
        .timeout(settings.request_timeout)
        .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("acr-attach/", env!("CARGO_PKG_VERSION")));
    if let Some(bundle) = &settings.ca_bundle {
        let certs =
            reqwest::Certificate::from_pem_bundle(&bundle.pem).map_err(|e| ConfigError(format!("--ca-bundle: {e}")))?;
        b = b.tls_certs_merge(certs);
    }
    b.build()
        .map_err(|e| ConfigError(format!("cannot build the HTTPS client: {e}")))
}

/// Which API a request goes to (decides token scope and allowed nextLink origin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Service {
    Arm,
    Graph,
}

/// One request to send.
pub(super) struct Req<'a> {
    pub operation: &'static str,
    pub service: Service,
    pub method: reqwest::Method,
    pub url: Url,
    pub body: Option<&'a serde_json::Value>,
    /// Graph permission the operation needs (reported on `Authorization_RequestDenied`).
    pub permission: Option<&'static str>,
}

/// A complete response (any status).
pub(super) struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    operation: &'static str,
    path: String,
    correlation_id: Uuid,
    permission: Option<&'static str>,
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(|s| s.to_string())
}

impl Resp {
    /// Decodes a success body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, AzureError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let mut err = AzureError::new(
                self.operation,
                ErrorKind::Decode,
                format!(
                    "HTTP {} body is not the expected JSON: {e}; body starts with: {}",
                    self.status,
                    truncate(&String::from_utf8_lossy(&self.body), 200)
                ),
            );
            err.status = Some(self.status);
            err.path = Some(self.path.clone());
            err.request_id = self.request_id();
            err.correlation_id = Some(self.correlation_id);
            err
        })
    }

    /// A response header, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        header_str(&self.headers, name)
    }

    /// `Retry-After`, seconds or an HTTP date.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        header_str(&self.headers, "retry-after").and_then(|v| parse_retry_after(&v, chrono::Utc::now()))
    }

    fn request_id(&self) -> Option<String> {
        header_str(&self.headers, "x-ms-request-id").or_else(|| header_str(&self.headers, "request-id"))
    }

    /// The error this (unexpected) response represents.
    pub fn into_error(self) -> AzureError {
        let parsed = parse_error_body(&self.body);
        let retry_after =
            header_str(&self.headers, "retry-after").and_then(|v| parse_retry_after(&v, chrono::Utc::now()));
        let request_id = self.request_id().or(parsed.graph_request_id);
        let message = if parsed.message.is_empty() {
            format!("HTTP {} with no error message", self.status)
        } else {
            parsed.message
        };
        AzureErrorInfo {
            operation: self.operation.to_string(),
            kind: ErrorKind::Http,
            status: Some(self.status),
            code: parsed.code,
            message,
            target: parsed.target,
            details: parsed.details,
            required_permission: self.permission.map(str::to_string),
            path: Some(self.path),
            request_id,
            correlation_id: Some(self.correlation_id),
            retry_after,
        }
        .into()
    }
}

/// Percent-encodes a query value: everything but RFC 3986 unreserved characters and the
/// parentheses OData functions use (`atScope()`), so spaces become `%20` (not `+`) and quotes `%27`.
pub(super) fn encode_query_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() * 3);
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'(' | b')') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Upper bound on pages followed by one list call (defends against a looping nextLink).
pub(super) const MAX_PAGES: usize = 1000;

impl AzureClient {
    /// Builds the client: one reqwest client (timeouts, extra roots) and the configured credential.
    pub fn new(settings: &AzureSettings) -> Result<Self, ConfigError> {
        let http = build_http_client(settings)?;
        let credential = super::credential::build_credential(settings, http.clone())?;
        Ok(Self::from_parts(settings, http, credential))
    }

    /// Builds the client with a given credential (tests, or a credential built elsewhere).
    pub fn with_credential(
        settings: &AzureSettings,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<Self, ConfigError> {
        let http = build_http_client(settings)?;
        Ok(Self::from_parts(settings, http, credential))
    }

    fn from_parts(settings: &AzureSettings, http: reqwest::Client, credential: Arc<dyn TokenCredential>) -> Self {
        AzureClient {
            inner: Arc::new(Inner {
                http,
                credential,
                cloud: settings.cloud.clone(),
                api: settings.api_versions.clone(),
                subscriptions: settings.subscriptions.clone(),
                token_timeout: settings.token_timeout,
                arm_scope: settings.cloud.arm_scope(),
                graph_scope: settings.cloud.graph_scope(),
                principal: super::quota::principal_label(&settings.credential),
                quota: None,
            }),
        }
    }

    /// The same client, budgeting every ARM call against `quota` first.
    pub fn with_quota(&self, quota: Arc<dyn QuotaGate>) -> Self {
        let mut inner = (*self.inner).clone();
        inner.quota = Some(quota);
        AzureClient { inner: Arc::new(inner) }
    }

    /// Takes the ARM call's token: waits in place for one due soon; for a later one, the call
    /// is not sent and the job is told when its reserved token is due.
    async fn take_quota(&self, ctx: &CallContext, req: &Req<'_>) -> Result<Option<Bucket>, AzureError> {
        let Some(quota) = self.inner.quota.as_ref().filter(|_| req.service == Service::Arm) else {
            return Ok(None);
        };
        let bucket = Bucket::for_request(req.url.path(), &req.method, &self.inner.principal);
        match quota.take(&bucket, ctx.correlation_id).await {
            Ok(wait) if wait.is_zero() => {}
            Ok(wait) if wait <= quota.settings().inline_wait => tokio::time::sleep(wait).await,
            Ok(wait) => {
                let mut e = AzureError::new(
                    req.operation,
                    ErrorKind::Quota,
                    format!(
                        "ARM's {} quota for {} is spent until a token is due in {} ms (reserved for this job)",
                        bucket.kind.as_str(),
                        bucket.key.split(':').next().unwrap_or("tenant"),
                        wait.as_millis()
                    ),
                );
                e.retry_after = Some(wait);
                e.code = Some("ArmQuotaWait".into());
                e.path = Some(req.url.path().to_string());
                e.correlation_id = Some(ctx.correlation_id);
                return Err(e);
            }
            // The store is unreachable: call unbudgeted rather than not at all (ARM's 429 stays).
            Err(e) => tracing::warn!(bucket = %bucket.key, error = %e, "ARM quota unavailable; calling unbudgeted"),
        }
        Ok(Some(bucket))
    }

    /// Tells the quota what ARM answered: a 429 slows every job of the bucket; a low remaining
    /// count corrects our copy when someone else spends the same principal's quota.
    async fn observe_quota(&self, bucket: &Bucket, status: u16, headers: &HeaderMap) {
        let Some(quota) = &self.inner.quota else { return };
        let seen = if status == 429 {
            let after = header_str(headers, "retry-after")
                .and_then(|v| parse_retry_after(&v, chrono::Utc::now()))
                .unwrap_or(Duration::from_secs(1));
            Observed::Throttled(after)
        } else {
            let limit = bucket.limit(quota.settings());
            match header_str(headers, &bucket.remaining_header()).and_then(|v| v.trim().parse::<f64>().ok()) {
                // Only worth a write when it may matter: our copy is never more generous than
                // ARM's by more than what is in flight, except when others share the principal.
                Some(left) if left < limit.burst / 4.0 => Observed::Remaining(left),
                _ => return,
            }
        };
        if let Err(e) = quota.observe(bucket, seen).await {
            tracing::warn!(bucket = %bucket.key, error = %e, "could not record ARM's quota answer");
        }
    }

    /// The cloud's endpoints.
    pub fn cloud(&self) -> &Cloud {
        &self.inner.cloud
    }

    /// The subscriptions configured for bare-name registry lookups.
    pub fn default_subscriptions(&self) -> &[SubscriptionId] {
        &self.inner.subscriptions
    }

    /// The base URL of a service.
    fn base(&self, service: Service) -> &Url {
        match service {
            Service::Arm => &self.inner.cloud.arm_endpoint,
            Service::Graph => &self.inner.cloud.graph_endpoint,
        }
    }

    /// `{endpoint}/{segments...}?{query}`; segments are percent-encoded by `url`, the query is
    /// given pre-encoded.
    pub(super) fn url(&self, service: Service, segments: &[String], query: Option<String>) -> Url {
        let mut url = self.base(service).clone();
        {
            let mut p = url.path_segments_mut().expect("endpoints are validated https URLs");
            p.pop_if_empty();
            p.extend(segments);
        }
        url.set_query(query.as_deref());
        url
    }

    /// An ARM URL with `api-version` and an optional `$filter`.
    pub(super) fn arm_url(&self, segments: &[String], api_version: &str, filter: Option<&str>) -> Url {
        let mut q = format!("api-version={}", encode_query_value(api_version));
        if let Some(f) = filter {
            q.push_str("&$filter=");
            q.push_str(&encode_query_value(f));
        }
        self.url(Service::Arm, segments, Some(q))
    }

    /// Validates a `nextLink`: it must point at the configured endpoint of the same service,
    /// because we send the bearer token to it.
    pub(super) fn next_link(&self, service: Service, operation: &'static str, link: &str) -> Result<Url, AzureError> {
        let base = self.base(service);
        let url = Url::parse(link).map_err(|e| {
            AzureError::new(
                operation,
                ErrorKind::Refused,
                format!("nextLink '{}' is not an absolute URL: {e}", truncate(link, 200)),
            )
        })?;
        let same_origin = url.scheme() == base.scheme()
            && url.host_str().map(str::to_ascii_lowercase) == base.host_str().map(str::to_ascii_lowercase)
            && url.port_or_known_default() == base.port_or_known_default();
        if !same_origin {
            return Err(AzureError::new(
                operation,
                ErrorKind::Refused,
                format!(
                    "nextLink origin {} differs from the configured endpoint {}; refusing to send the bearer token there",
                    url.origin().ascii_serialization(),
                    base.origin().ascii_serialization()
                ),
            ));
        }
        Ok(url)
    }

    /// Acquires a token (bounded by the token timeout), sends the request with the standard
    /// headers, records the call and returns the response whatever its status.
    pub(super) async fn send(&self, ctx: &CallContext, req: Req<'_>) -> Result<Resp, AzureError> {
        let bucket = self.take_quota(ctx, &req).await?;
        let resp = self.send_now(ctx, req).await;
        if let (Some(bucket), Ok(r)) = (&bucket, &resp) {
            self.observe_quota(bucket, r.status, &r.headers).await;
        }
        resp
    }

    async fn send_now(&self, ctx: &CallContext, req: Req<'_>) -> Result<Resp, AzureError> {
        let scope = match req.service {
            Service::Arm => &self.inner.arm_scope,
            Service::Graph => &self.inner.graph_scope,
        };
        let path = req.url.path().to_string();
        let with_ids = |mut e: AzureError| {
            e.path = Some(path.clone());
            e.correlation_id = Some(ctx.correlation_id);
            e
        };
        let token = match tokio::time::timeout(
            self.inner.token_timeout,
            self.inner.credential.get_token(&[scope.as_str()], None),
        )
        .await
        {
            Err(_) => {
                tracing::warn!(operation = req.operation, %scope, timeout = ?self.inner.token_timeout, "token acquisition timed out");
                return Err(with_ids(AzureError::new(
                    req.operation,
                    ErrorKind::Timeout,
                    format!(
                        "acquiring a token for {scope} took longer than {:?} (--token-timeout); is the authority {} reachable?",
                        self.inner.token_timeout, self.inner.cloud.authority_host
                    ),
                )));
            }
            Ok(Err(e)) => {
                tracing::warn!(operation = req.operation, %scope, error = %e, "token acquisition failed");
                return Err(with_ids(super::error::from_token_error(req.operation, scope, &e)));
            }
            Ok(Ok(t)) => t,
        };

        let client_request_id = Uuid::new_v4();
        let mut rb = self
            .inner
            .http
            .request(req.method.clone(), req.url.clone())
            .bearer_auth(token.token.secret())
            .header("x-ms-correlation-request-id", ctx.correlation_id.to_string())
            .header("x-ms-client-request-id", client_request_id.to_string())
            .header(reqwest::header::ACCEPT, "application/json");
        if req.service == Service::Graph {
            rb = rb.header("client-request-id", client_request_id.to_string());
        }
        if let Some(body) = req.body {
            rb = rb.json(body);
        }
        let started_at = chrono::Utc::now();
        let started = Instant::now();
        let outcome = match rb.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                resp.bytes().await.map(|b| (status, headers, b.to_vec()))
            }
            Err(e) => Err(e),
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let mut record = CallRecord {
            operation: req.operation.to_string(),
            method: req.method.to_string(),
            path: path.clone(),
            status: None,
            error_code: None,
            request_id: None,
            client_request_id,
            duration_ms,
            started_at,
            ratelimit_remaining: Vec::new(),
        };
        match outcome {
            Err(e) => {
                let kind = if e.is_timeout() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Transport
                };
                let chain = error_chain(&e);
                let code = if super::error::is_certificate_error(&chain) {
                    super::error::TLS_CERTIFICATE
                } else if kind == ErrorKind::Timeout {
                    "timeout"
                } else {
                    "transport"
                };
                record.error_code = Some(code.into());
                tracing::debug!(operation = req.operation, method = %req.method, %path, correlation_id = %ctx.correlation_id, duration_ms, error = %e, "azure call failed without response");
                ctx.push(record);
                let mut err = AzureError::new(req.operation, kind, chain);
                err.code = Some(code.into());
                Err(with_ids(err))
            }
            Ok((status, headers, body)) => {
                record.status = Some(status);
                record.request_id =
                    header_str(&headers, "x-ms-request-id").or_else(|| header_str(&headers, "request-id"));
                record.ratelimit_remaining = headers
                    .iter()
                    .filter(|(k, _)| {
                        k.as_str().starts_with("x-ms-ratelimit-remaining-") || k.as_str() == "x-ms-user-quota-remaining"
                    })
                    .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                    .collect();
                if status >= 400 {
                    record.error_code = parse_error_body(&body).code;
                }
                tracing::debug!(
                    operation = req.operation,
                    method = %req.method,
                    %path,
                    status,
                    request_id = record.request_id.as_deref().unwrap_or(""),
                    correlation_id = %ctx.correlation_id,
                    duration_ms,
                    "azure call"
                );
                ctx.push(record);
                Ok(Resp {
                    status,
                    headers,
                    body,
                    operation: req.operation,
                    path,
                    correlation_id: ctx.correlation_id,
                    permission: req.permission,
                })
            }
        }
    }

    /// GETs `url` and every `nextLink` after it, collecting `value`.
    pub(super) async fn get_all_pages<W, T>(
        &self,
        ctx: &CallContext,
        service: Service,
        operation: &'static str,
        permission: Option<&'static str>,
        first: Url,
    ) -> Result<Vec<T>, AzureError>
    where
        W: DeserializeOwned,
        T: From<W>,
    {
        let mut out = Vec::new();
        let mut url = first;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            seen.insert(url.to_string());
            let resp = self
                .send(
                    ctx,
                    Req {
                        operation,
                        service,
                        method: reqwest::Method::GET,
                        url: url.clone(),
                        body: None,
                        permission,
                    },
                )
                .await?;
            if resp.status != 200 {
                return Err(resp.into_error());
            }
            let next = match service {
                Service::Arm => {
                    let page: super::models::ArmPage<W> = resp.json()?;
                    out.extend(page.value.into_iter().map(T::from));
                    page.next_link
                }
                Service::Graph => {
                    let page: super::models::GraphPage<W> = resp.json()?;
                    out.extend(page.value.into_iter().map(T::from));
                    page.next_link
                }
            };
            match next.filter(|l| !l.is_empty()) {
                None => return Ok(out),
                Some(link) => {
                    url = self.next_link(service, operation, &link)?;
                    if seen.contains(url.as_str()) {
                        return Err(AzureError::new(
                            operation,
                            ErrorKind::Refused,
                            "nextLink repeats a page already fetched; stopping",
                        ));
                    }
                }
            }
        }
        Err(AzureError::new(
            operation,
            ErrorKind::Refused,
            format!("more than {MAX_PAGES} pages; stopping"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        assert_eq!(encode_query_value("atScope()"), "atScope()");
        assert_eq!(
            encode_query_value("principalId eq 'ce2ce14e-85d7-4629-bdbc-454d0519d987'"),
            "principalId%20eq%20%27ce2ce14e-85d7-4629-bdbc-454d0519d987%27"
        );
        assert_eq!(
            encode_query_value("atScope() and assignedTo('x')"),
            "atScope()%20and%20assignedTo(%27x%27)"
        );
        assert_eq!(encode_query_value("a&b=c+d#"), "a%26b%3Dc%2Bd%23");
    }
}
