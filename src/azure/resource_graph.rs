//! Azure Resource Graph: one KQL query over many subscriptions, batched (ARG recommends fewer
//! than ~300 subscriptions per query) and paged with `options.$skipToken`. ARG is eventually
//! consistent: use it to discover and to read in bulk, then confirm with a `GET` what a
//! decision hangs on.

use reqwest::Method;
use serde::de::DeserializeOwned;

use super::client::{AzureClient, MAX_PAGES, Service, encode_query_value};
use super::context::CallContext;
use super::error::{AzureError, ErrorKind};
use super::ids::SubscriptionId;
use super::models::ArgResponse;

/// Subscriptions per Resource Graph query.
const SUBSCRIPTION_BATCH: usize = 250;

impl AzureClient {
    /// The rows of `query` (KQL) in `subscriptions` (empty ⇒ every subscription the caller can
    /// read), decoded as `T`. `operation` names the calls in the job's timeline.
    pub(super) async fn resource_graph<T: DeserializeOwned>(
        &self,
        ctx: &CallContext,
        operation: &'static str,
        query: &str,
        subscriptions: &[SubscriptionId],
    ) -> Result<Vec<T>, AzureError> {
        let url = self.url(
            Service::Arm,
            &["providers", "Microsoft.ResourceGraph", "resources"].map(String::from),
            Some(format!(
                "api-version={}",
                encode_query_value(&self.inner.api.resource_graph)
            )),
        );
        let batches: Vec<Vec<String>> = if subscriptions.is_empty() {
            vec![Vec::new()]
        } else {
            subscriptions
                .chunks(SUBSCRIPTION_BATCH)
                .map(|c| c.iter().map(|s| s.to_string()).collect())
                .collect()
        };
        let mut out = Vec::new();
        for batch in batches {
            let mut skip_token: Option<String> = None;
            for page in 0.. {
                if page >= MAX_PAGES {
                    return Err(AzureError::new(
                        operation,
                        ErrorKind::Refused,
                        "too many Resource Graph pages; stopping",
                    ));
                }
                let mut options = serde_json::json!({ "resultFormat": "objectArray" });
                if let Some(t) = &skip_token {
                    options["$skipToken"] = serde_json::Value::String(t.clone());
                }
                let mut body = serde_json::json!({ "query": query, "options": options });
                if !batch.is_empty() {
                    body["subscriptions"] = serde_json::json!(batch);
                }
                let resp = self.arm(ctx, operation, Method::POST, url.clone(), Some(&body)).await?;
                if resp.status != 200 {
                    return Err(resp.into_error());
                }
                let r: ArgResponse = resp.json()?;
                if !r.data.is_null() {
                    let rows: Vec<T> = serde_json::from_value(r.data).map_err(|e| {
                        AzureError::new(
                            operation,
                            ErrorKind::Decode,
                            format!("Resource Graph rows do not have the expected columns: {e}"),
                        )
                    })?;
                    out.extend(rows);
                }
                match r.skip_token.filter(|t| !t.is_empty()) {
                    // A token that does not move would loop forever.
                    Some(t) if Some(&t) != skip_token.as_ref() => skip_token = Some(t),
                    _ => break,
                }
            }
        }
        Ok(out)
    }
}
