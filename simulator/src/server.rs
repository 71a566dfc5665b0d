//! The HTTPS listener: TLS (tokio-rustls) + hyper-util auto HTTP/1.1/HTTP/2 around one axum
//! router that splits requests between the Entra, ARM and Graph "hosts".

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::Response;
use chrono::Utc;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::faults::DropConnection;
use crate::reply::{parse_query, query_param};
use crate::state::{CallRecord, SharedRef};
use crate::{arm, auth, graph, metadata, reply};

/// Builds the router: everything goes through one fallback so paths can be matched the way
/// Azure does (case-insensitive, arbitrary scope prefixes).
pub(crate) fn router(shared: SharedRef) -> Router {
    Router::new().fallback(dispatch).with_state(shared)
}

fn is_token_path(segs: &[&str]) -> bool {
    segs.len() == 4
        && segs[1].eq_ignore_ascii_case("oauth2")
        && segs[2].eq_ignore_ascii_case("v2.0")
        && segs[3].eq_ignore_ascii_case("token")
}

fn api_version(uri: &Uri) -> Option<String> {
    query_param(&parse_query(uri.query()), "api-version").map(str::to_string)
}

async fn dispatch(
    State(shared): State<SharedRef>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = shared.lock().world.behaviour.latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let path = uri.path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (operation, client_id, mut response) = if is_token_path(&segs) {
        if method == Method::POST {
            let (cid, resp) = auth::token_endpoint(&shared, segs[0], &body);
            ("Token".to_string(), cid, resp)
        } else {
            let body = serde_json::json!({ "error": "invalid_request", "error_description": "AADSTS900561: The endpoint only accepts POST requests." });
            (
                "Token".to_string(),
                None,
                reply::json(StatusCode::METHOD_NOT_ALLOWED, &body),
            )
        }
    } else if let Some((op, resp)) = auth::discovery(&shared, &method, &segs) {
        (op.to_string(), None, resp)
    } else if let Some(resp) = metadata::handle(&shared, &method, &segs, api_version(&uri).as_deref()) {
        ("Metadata_Endpoints".to_string(), None, resp)
    } else if segs.first().is_some_and(|s| s.eq_ignore_ascii_case("v1.0")) {
        let o = graph::handle(&shared, &method, &uri, &headers, &body);
        (o.operation, o.client_id, o.response)
    } else {
        let o = arm::handle(&shared, &method, &uri, &headers, &body);
        (o.operation, o.client_id, o.response)
    };
    let dropped = {
        let mut st = shared.lock();
        let rate = st.world.behaviour.drop_connection_rate;
        let dropped = st.rng.chance(rate);
        let record = CallRecord {
            method: method.to_string(),
            path,
            api_version: api_version(&uri),
            operation,
            status: response.status().as_u16(),
            client_id,
            dropped,
            at: Utc::now(),
        };
        if shared.request_log {
            println!("{}", log_line(&record));
        }
        st.calls.push(record);
        dropped
    };
    if dropped {
        response.extensions_mut().insert(DropConnection);
    }
    response
}

/// The standalone request log: time, method, path, api-version, status, operation, caller.
fn log_line(r: &CallRecord) -> String {
    format!(
        "{} {} {} api-version={} {}{} {} client={}",
        r.at.format("%H:%M:%S%.3f"),
        r.method,
        r.path,
        r.api_version.as_deref().unwrap_or("-"),
        r.status,
        if r.dropped { " (connection dropped)" } else { "" },
        r.operation,
        r.client_id.as_deref().unwrap_or("-"),
    )
}

/// Error returned to hyper to make it abandon the connection without a response.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// Accepts TLS connections until `shutdown` flips, then aborts open connections.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let app = app.clone();
                conns.spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else { return };
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let app = app.clone();
                        async move {
                            let resp = match app.oneshot(req.map(Body::new)).await {
                                Ok(r) => r,
                                Err(e) => match e {},
                            };
                            if resp.extensions().get::<DropConnection>().is_some() {
                                return Err(Dropped);
                            }
                            Ok::<_, Dropped>(resp)
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
}
