//! The node's HTTP service: one hyper 1 service ([`service`]) and its accept loop
//! ([`serve`], written once over the [`crate::Runtime`], which brings the socket and hyper's IO).
//!
//! A listener serves one of two [`HttpState`]s. The RPC listener ([`HttpState::rpc`], loopback
//! by default) answers everything below. The metrics listener ([`HttpState::metrics_only`],
//! which operators expose to their scraper, `0.0.0.0:7300` in op-node's defaults) answers
//! `GET /metrics` and `GET /healthz` only: the admin API (which can block every address and
//! persist it) is never reachable through it, whatever the method or path.
//!
//! | request | RPC listener | metrics listener |
//! |---|---|---|
//! | any but `/metrics`, `/healthz`, from a host not allowed ([`VirtualHosts`]) | `403 invalid host specified` (`400` if malformed) | `404` |
//! | `POST` any path but the two below | JSON-RPC 2.0 (single or batch) over `opp2p_*` | `404` |
//! | `GET /metrics` | Prometheus exposition, OpenMetrics text ([`METRICS_CONTENT_TYPE`]) | same |
//! | `GET /healthz` | `200` JSON `{"status":"ok"\|"degraded","reasons":[...]}` ([`crate::health`]) | same |
//! | another method on `/metrics`, `/healthz` | `405` with `Allow: GET` | same |
//! | another method on `/` | `405` with `Allow: POST` | `404` |
//! | anything else | `404` | `404` |
//!
//! JSON-RPC follows the 2.0 spec and go-ethereum's server (which op-node uses) where the spec
//! leaves room:
//! - The body is limited to [`MAX_BODY_BYTES`], enforced while reading (`http-body-util`'s
//!   `Limited`): a larger body is refused with HTTP `413` as soon as the limit is crossed,
//!   whatever `Content-Length` says, and its JSON body carries a `-32600` error too.
//! - `Content-Type` must be `application/json` (or go-ethereum's other two JSON-RPC types),
//!   else `415`, as go-ethereum does: it makes a browser preflight a cross-site call, so a web
//!   page cannot block peers through a node's loopback RPC with a plain form post.
//! - Invalid JSON: `-32700 parse error`. Neither object nor array, or an object that is not a
//!   request: `-32600 invalid request`. `[]`: `-32600 empty batch`. More than [`MAX_BATCH`]
//!   calls: one `-32600 batch too large` error.
//! - `jsonrpc` may be absent (go-ethereum accepts it); when present it must be `"2.0"`.
//! - Each call goes through [`AdminRequest::parse`] (unknown methods get
//!   `-32601`, bad params `-32602` with go-ethereum's messages), then [`AdminClient::call`].
//!   Batch calls run one after the other, in order, as go-ethereum runs them.
//! - Notifications (no `id` member) are executed and get no entry; a request or batch of only
//!   notifications is answered `204 No Content`.

mod chains;
mod serve;
mod vhosts;
pub use serve::{
    BODY_READ_TIMEOUT, BodyTimedOut, HEADER_READ_TIMEOUT, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP,
    REQUEST_DEADLINE, SHUTDOWN_GRACE, ServeLimits, serve, serve_with_limits,
};
pub use vhosts::{DEFAULT_VHOSTS, INVALID_HOST, VhostError, VirtualHosts};

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::service::{Service, service_fn};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::registry::Registry;
use serde::Serialize;
use serde_json::Value;

use crate::AdminClient;
use op_p2p_core::admin::{AdminRequest, AdminResponse, RpcError};

/// Largest request body read, in bytes (1 MiB, a little under go-ethereum's 5 MiB default:
/// the largest `opp2p_*` call is well under 1 KiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

// ---- large bodies for opp2pext_publishBlock (issue 14) ----

/// Largest request body the RPC listener of a publishing node (one with a block signer,
/// [`HttpState::with_block_publishing`]) reads: an `opp2pext_publishBlock` call's params
/// ([`MAX_PUBLISH_PARAMS_BYTES`](op_p2p_core::admin::MAX_PUBLISH_PARAMS_BYTES), a whole block
/// in JSON hex) and the request around them. Such a body must declare its `Content-Length`,
/// must be a single call (not a batch), and is read one at a time: a second large body waits
/// (within the request deadline) until the first is parsed into its typed request, so large
/// bodies held at once are bounded by one. Everything else keeps [`MAX_BODY_BYTES`].
pub const MAX_PUBLISH_BODY_BYTES: usize = op_p2p_core::admin::MAX_PUBLISH_PARAMS_BYTES + 64 * 1024;

/// The one place for a body over [`MAX_BODY_BYTES`].
type LargeBodyPermit = futures::lock::Mutex<()>;

// ---- end of large bodies ----

/// Most calls in one batch.
pub const MAX_BATCH: usize = 100;

/// The content type of `GET /metrics`: `prometheus-client` writes OpenMetrics 1.0 text (with
/// `# EOF`), which Prometheus asks for first in its `Accept` header and parses natively.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// JSON-RPC parse error code.
pub const PARSE_ERROR: i64 = -32700;

/// go-ethereum's error code for a call not answered because the batch's answers grew too
/// large.
pub const RESPONSE_TOO_LARGE: i64 = -32003;

/// Most bytes of answers one batch builds before its remaining calls are refused with
/// [`RESPONSE_TOO_LARGE`] instead of run (go-ethereum's default is 25 MB).
pub const MAX_BATCH_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// What a listener serves: the metrics registry (complete before it is shared: nothing
/// registers after serving starts) and, on the RPC listener only, the way to the node's admin
/// API and the `Host` names it answers.
#[derive(Debug)]
pub struct HttpState {
    /// Submits `opp2p_*` calls to the node's task, and the hosts allowed to; `None` on a
    /// metrics-only listener.
    admin: Option<(AdminClient, VirtualHosts)>,
    /// Everything `GET /metrics` exposes.
    registry: Arc<Registry>,
    /// What `GET /healthz` reports (`ok` until the driver's first observation).
    health: crate::health::HealthReport,
    /// A host's listener ([`crate::host`]): its chains, and the allowed hosts on its RPC
    /// listener (`None` on its metrics listener). Routed by `chains::handle` instead.
    host: Option<(Arc<crate::host::Chains>, Option<VirtualHosts>)>,
    /// Set on a publishing node's RPC listener: bodies up to [`MAX_PUBLISH_BODY_BYTES`], one
    /// at a time.
    large_bodies: Option<LargeBodyPermit>,
}

impl HttpState {
    /// The RPC listener's state: JSON-RPC (for requests whose host `vhosts` allows; see
    /// [`VirtualHosts`]), metrics and health (for any host).
    pub fn rpc(admin: AdminClient, registry: Arc<Registry>, vhosts: VirtualHosts) -> Self {
        Self {
            admin: Some((admin, vhosts)),
            registry,
            health: Default::default(),
            host: None,
            large_bodies: None,
        }
    }

    /// The metrics listener's state: `GET /metrics` and `GET /healthz`, nothing else, for any
    /// host.
    pub fn metrics_only(registry: Arc<Registry>) -> Self {
        Self {
            admin: None,
            registry,
            health: Default::default(),
            host: None,
            large_bodies: None,
        }
    }

    /// A [`crate::host::Host`]'s listener over `chains`: its RPC listener with `vhosts`
    /// (`/chain/<id>`, `/chain/<id>/healthz`, `/metrics`, `/healthz`), its metrics listener
    /// without (`GET /metrics` and `GET /healthz` only).
    pub fn host(chains: Arc<crate::host::Chains>, vhosts: Option<VirtualHosts>) -> Self {
        Self {
            admin: None,
            registry: Arc::new(Registry::default()),
            health: Default::default(),
            host: Some((chains, vhosts)),
            large_bodies: None,
        }
    }

    /// Serves `report` on `GET /healthz` (the driver keeps it current).
    pub fn with_health(mut self, report: crate::health::HealthReport) -> Self {
        self.health = report;
        self
    }

    /// With `on`, accepts single calls with bodies up to [`MAX_PUBLISH_BODY_BYTES`] (one read
    /// at a time), so `opp2pext_publishBlock` can carry a whole block. Only on the RPC
    /// listener: a metrics-only state ignores it.
    pub fn with_block_publishing(mut self, on: bool) -> Self {
        if on && self.admin.is_some() {
            self.large_bodies = Some(LargeBodyPermit::new(()));
        }
        self
    }

    /// Whether this state serves the admin API.
    pub fn serves_admin(&self) -> bool {
        self.admin.is_some()
    }
}

/// The hyper service over `state`, for `hyper::server::conn::http1::Builder::serve_connection`.
pub fn service(
    state: Arc<HttpState>,
) -> impl Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send,
> + Clone
+ Send {
    service_fn(move |req: Request<Incoming>| handle(state.clone(), req))
}

/// Answers one request. Generic over the body so tests (and other servers) can call it with
/// any body type; never fails (errors are HTTP or JSON-RPC responses).
pub async fn handle<B>(
    state: Arc<HttpState>,
    req: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some((chains, vhosts)) = &state.host {
        return Ok(chains::handle(chains, vhosts.as_ref(), req).await);
    }
    let path = req.uri().path();
    let method = req.method();
    let resp = match (path, &state.admin) {
        ("/metrics", _) if method == Method::GET => metrics(&state.registry),
        // 200 whether ok or degraded: a liveness probe must not restart a degraded node.
        ("/healthz", _) if method == Method::GET => response(
            StatusCode::OK,
            "application/json",
            Bytes::from(state.health.to_json()),
        ),
        ("/metrics" | "/healthz", _) => method_not_allowed("GET"),
        (_, Some((admin, vhosts))) => match vhosts.check(&req) {
            Err(vhosts::HostRefusal::NotAllowed) => plain(StatusCode::FORBIDDEN, INVALID_HOST),
            Err(vhosts::HostRefusal::BadRequest(why)) => plain(StatusCode::BAD_REQUEST, why),
            Ok(()) if method == Method::POST => rpc(admin, state.large_bodies.as_ref(), req).await,
            Ok(()) if path == "/" => method_not_allowed("POST"),
            Ok(()) => plain(StatusCode::NOT_FOUND, "not found"),
        },
        _ => plain(StatusCode::NOT_FOUND, "not found"),
    };
    Ok(resp)
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    response(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(text.as_bytes()),
    )
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn metrics(registry: &Registry) -> Response<Full<Bytes>> {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, registry) {
        Ok(()) => response(StatusCode::OK, METRICS_CONTENT_TYPE, Bytes::from(text)),
        Err(e) => {
            tracing::warn!(error = %e, "encoding metrics failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed")
        }
    }
}

// ---- JSON-RPC ------------------------------------------------------------------------------

/// One response object.
#[derive(Debug, Serialize)]
struct RpcResponse {
    jsonrpc: &'static str,
    id: Value,
    #[serde(flatten)]
    outcome: Outcome,
}

/// `result` is the [`AdminResponse`] serialised directly: the same JSON as
/// [`AdminResponse::to_json`], with op-node's key order (its Go struct order) kept.
#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Result(Box<AdminResponse>),
    Error(RpcError),
}

impl RpcResponse {
    fn error(id: Value, code: i64, message: &str) -> Self {
        RpcResponse {
            jsonrpc: "2.0",
            id,
            outcome: Outcome::Error(RpcError {
                code,
                message: message.to_owned(),
            }),
        }
    }
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(body) {
        Ok(bytes) => response(status, "application/json", Bytes::from(bytes)),
        // Our responses are Values and strings: serialising cannot fail.
        Err(e) => {
            tracing::warn!(error = %e, "serialising a JSON-RPC response failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

fn rpc_error(status: StatusCode, code: i64, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &RpcResponse::error(Value::Null, code, message))
}

/// go-ethereum's accepted JSON-RPC content types (parameters such as `charset` allowed).
fn json_content_type(v: Option<&HeaderValue>) -> bool {
    let Some(v) = v.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = v.split(';').next().unwrap_or("").trim();
    [
        "application/json",
        "application/json-rpc",
        "application/jsonrequest",
    ]
    .iter()
    .any(|t| essence.eq_ignore_ascii_case(t))
}

fn too_large() -> Response<Full<Bytes>> {
    rpc_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        op_p2p_core::admin::codes::INVALID_REQUEST,
        &format!("request body larger than {MAX_BODY_BYTES} bytes"),
    )
}

async fn rpc<B>(
    admin: &AdminClient,
    large_bodies: Option<&LargeBodyPermit>,
    req: Request<B>,
) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if !json_content_type(req.headers().get(header::CONTENT_TYPE)) {
        let mut r = plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type must be application/json",
        );
        r.headers_mut()
            .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        return r;
    }
    // A declared length over the limit is refused before reading anything.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A larger declared body is read only by a publishing node, one at a time (the permit is
    // held until the call is parsed); otherwise it is refused before reading anything.
    let mut permit = None;
    let mut limit = MAX_BODY_BYTES;
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        match large_bodies {
            Some(p) if declared.is_some_and(|n| n <= MAX_PUBLISH_BODY_BYTES as u64) => {
                permit = Some(p.lock().await);
                limit = MAX_PUBLISH_BODY_BYTES;
            }
            _ => return too_large(),
        }
    }
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Err(e) if e.downcast_ref::<serve::BodyTimedOut>().is_some() => {
            return plain(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time",
            );
        }
        Err(e) => {
            tracing::debug!(error = %e, "reading a JSON-RPC body failed");
            return plain(StatusCode::BAD_REQUEST, "could not read the request body");
        }
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return rpc_error(StatusCode::OK, PARSE_ERROR, "parse error"),
    };
    drop(body);
    match value {
        Value::Array(_) if permit.is_some() => rpc_error(
            StatusCode::OK,
            op_p2p_core::admin::codes::INVALID_REQUEST,
            "a body over 1 MiB must be a single call, not a batch",
        ),
        Value::Array(calls) => {
            if calls.is_empty() {
                return rpc_error(
                    StatusCode::OK,
                    op_p2p_core::admin::codes::INVALID_REQUEST,
                    "empty batch",
                );
            }
            if calls.len() > MAX_BATCH {
                return rpc_error(
                    StatusCode::OK,
                    op_p2p_core::admin::codes::INVALID_REQUEST,
                    "batch too large",
                );
            }
            // The answers are written one by one into one buffer; once it holds
            // MAX_BATCH_RESPONSE_BYTES the remaining calls are not run and are answered
            // "response too large" (go-ethereum's batch response limit), so a batch of large
            // answers (opp2p_peers over a full peer book) cannot build hundreds of MB.
            let mut out = Vec::with_capacity(1024);
            out.push(b'[');
            let mut answered = 0usize;
            for call in calls {
                let full = out.len() >= MAX_BATCH_RESPONSE_BYTES;
                let r = if full {
                    too_large_answer(call)
                } else {
                    one_call(admin, call, None).await
                };
                let Some(r) = r else { continue };
                if answered > 0 {
                    out.push(b',');
                }
                if serde_json::to_writer(&mut out, &r).is_err() {
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
                }
                answered += 1;
            }
            out.push(b']');
            if answered == 0 {
                no_content()
            } else {
                response(StatusCode::OK, "application/json", Bytes::from(out))
            }
        }
        Value::Object(_) => match one_call(admin, value, permit).await {
            Some(r) => json_response(StatusCode::OK, &r),
            None => no_content(),
        },
        _ => rpc_error(
            StatusCode::OK,
            op_p2p_core::admin::codes::INVALID_REQUEST,
            "invalid request",
        ),
    }
}

fn no_content() -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// The answer to a batch call not run because the batch's answers are already
/// [`MAX_BATCH_RESPONSE_BYTES`] long; `None` for a notification.
fn too_large_answer(call: Value) -> Option<RpcResponse> {
    let id = match call {
        Value::Object(mut obj) => obj.remove("id")?,
        _ => Value::Null,
    };
    Some(RpcResponse::error(
        id,
        RESPONSE_TOO_LARGE,
        "response too large",
    ))
}

/// Runs one request object; `None` for a notification. A large body's `permit` is released
/// once the call is parsed, before it runs (an `opp2pext_publishBlock` waits for its block).
async fn one_call(
    admin: &AdminClient,
    call: Value,
    permit: Option<futures::lock::MutexGuard<'_, ()>>,
) -> Option<RpcResponse> {
    let invalid = |id| {
        Some(RpcResponse::error(
            id,
            op_p2p_core::admin::codes::INVALID_REQUEST,
            "invalid request",
        ))
    };
    let Value::Object(mut obj) = call else {
        return invalid(Value::Null);
    };
    // `None`: no `id` member, a notification (if otherwise valid).
    let id = obj.remove("id");
    let id_valid = matches!(
        id,
        None | Some(Value::Null | Value::Number(_) | Value::String(_))
    );
    let version_valid = match obj.get("jsonrpc") {
        None => true,
        Some(v) => v.as_str() == Some("2.0"),
    };
    let method = obj.get("method").and_then(Value::as_str);
    let (Some(method), true, true) = (method, id_valid, version_valid) else {
        // Not a valid request object: answered even without an id (JSON-RPC 2.0 §5).
        let echo = id.filter(|_| id_valid).unwrap_or(Value::Null);
        return invalid(echo);
    };
    let params = match obj.get("params") {
        None => String::new(),
        Some(p) => p.to_string(),
    };
    let parsed = AdminRequest::parse(method, &params);
    // The raw call is not needed any more: a large one is freed before the call runs.
    drop(params);
    drop(obj);
    drop(permit);
    let outcome = match parsed {
        Err(e) => Outcome::Error(e.to_rpc()),
        Ok(request) => {
            tracing::debug!(method = request.method().name(), "admin call");
            match admin.call(request).await {
                Ok(r) => Outcome::Result(Box::new(r)),
                Err(e) => Outcome::Error(e.to_rpc()),
            }
        }
    };
    id.map(|id| RpcResponse {
        jsonrpc: "2.0",
        id,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::StreamExt;

    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use serde_json::json;

    use super::*;
    use op_p2p_core::admin::AdminError;
    use op_p2p_core::testkit::peer_id;

    const NOW: u64 = 1_750_000_000_000;

    struct Fixture {
        pool: LocalPool,
        state: Arc<HttpState>,
    }

    fn fixture() -> Fixture {
        let f = crate::testkit::http_fixture(NOW);
        f.metrics.set_stream_count(3);
        let pool = LocalPool::new();
        pool.spawner().spawn_local(f.answer_admin).expect("spawn");
        Fixture {
            pool,
            state: f.state,
        }
    }

    struct Answer {
        status: StatusCode,
        content_type: Option<String>,
        allow: Option<String>,
        body: Bytes,
    }

    impl Answer {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).expect("JSON body")
        }
        fn text(&self) -> &str {
            std::str::from_utf8(&self.body).expect("utf-8")
        }
    }

    impl Fixture {
        /// Sends `req`, with `Host: localhost` unless it has a host (as every HTTP/1.1
        /// client sends one).
        fn send<B>(&mut self, mut req: Request<B>) -> Answer
        where
            B: Body<Data = Bytes>,
            B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        {
            req.headers_mut()
                .entry(header::HOST)
                .or_insert(HeaderValue::from_static("localhost"));
            let resp = self
                .pool
                .run_until(handle(self.state.clone(), req))
                .unwrap();
            let header = |h| {
                resp.headers()
                    .get(h)
                    .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
            };
            let (status, content_type, allow) = (
                resp.status(),
                header(header::CONTENT_TYPE),
                header(header::ALLOW),
            );
            let body = self
                .pool
                .run_until(resp.into_body().collect())
                .unwrap()
                .to_bytes();
            Answer {
                status,
                content_type,
                allow,
                body,
            }
        }

        fn post(&mut self, body: &str) -> Answer {
            self.send(post_req("/", body.to_owned()))
        }

        fn get(&mut self, path: &str) -> Answer {
            self.send(Request::get(path).body(Full::new(Bytes::new())).unwrap())
        }
    }

    fn post_req(path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
        Request::post(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(body.into()))
            .unwrap()
    }

    fn call(method: &str, params: Value, id: u64) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    }

    #[test]
    fn peer_stats_answers_op_node_json() {
        let mut f = fixture();
        let a = f.post(r#"{"jsonrpc":"2.0","id":1,"method":"opp2p_peerStats","params":[]}"#);
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.content_type.as_deref(), Some("application/json"));
        assert_eq!(
            a.text(),
            r#"{"jsonrpc":"2.0","id":1,"result":{"connected":0,"table":0,"blocksTopic":0,"blocksTopicV2":0,"blocksTopicV3":0,"blocksTopicV4":0,"banned":0,"known":0}}"#
        );
        // No params member at all is the same as [].
        let a = f.post(r#"{"jsonrpc":"2.0","id":"x","method":"opp2p_peerStats"}"#);
        assert_eq!(a.json()["id"], json!("x"));
        assert_eq!(a.json()["result"]["banned"], json!(0));
    }

    #[test]
    fn block_peer_then_list_shows_it_and_peer_stats_counts_it() {
        let mut f = fixture();
        let p = peer_id(7).to_base58();
        let a = f.post(&call("opp2p_blockPeer", json!([p]), 1).to_string());
        assert_eq!(
            a.text(),
            r#"{"jsonrpc":"2.0","id":1,"result":null}"#,
            "null result is present"
        );
        let a = f.post(&call("opp2p_listBlockedPeers", json!([]), 2).to_string());
        assert_eq!(a.json(), json!({"jsonrpc": "2.0", "id": 2, "result": [p]}));
        let a = f.post(&call("opp2p_peerStats", json!([]), 3).to_string());
        assert_eq!(a.json()["result"]["banned"], json!(1));
        // Unblocking empties the list again.
        f.post(&call("opp2p_unblockPeer", json!([p]), 4).to_string());
        let a = f.post(&call("opp2p_listBlockedPeers", json!([]), 5).to_string());
        assert_eq!(a.json()["result"], json!([]));
    }

    #[test]
    fn batches_run_in_order_and_skip_notifications() {
        let mut f = fixture();
        let p = peer_id(8).to_base58();
        let batch = json!([
            {"jsonrpc": "2.0", "method": "opp2p_blockPeer", "params": [p]},
            call("opp2p_listBlockedPeers", json!([]), 10),
            call("opp2p_nope", json!([]), 11),
            1,
            {"jsonrpc": "2.0", "id": 12, "method": "opp2p_blockAddr", "params": ["not an ip"]},
        ]);
        let a = f.post(&batch.to_string());
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(
            a.json(),
            json!([
                {"jsonrpc": "2.0", "id": 10, "result": [p]},
                {"jsonrpc": "2.0", "id": 11, "error": {"code": -32601,
                    "message": "the method opp2p_nope does not exist/is not available"}},
                {"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "invalid request"}},
                {"jsonrpc": "2.0", "id": 12, "error": {"code": -32602,
                    "message": "invalid argument 0: invalid IP address: not an ip"}},
            ])
        );
    }

    #[test]
    fn notifications_execute_and_get_no_response() {
        let mut f = fixture();
        let p = peer_id(9).to_base58();
        let a = f.post(
            &json!({"jsonrpc": "2.0", "method": "opp2p_blockPeer", "params": [p]}).to_string(),
        );
        assert_eq!(a.status, StatusCode::NO_CONTENT);
        assert!(a.body.is_empty());
        // A batch of notifications only, one of them to an unknown method: still nothing.
        let a = f.post(
            &json!([{"jsonrpc": "2.0", "method": "opp2p_x"},
                    {"jsonrpc": "2.0", "method": "opp2p_peerStats"}])
            .to_string(),
        );
        assert_eq!(a.status, StatusCode::NO_CONTENT);
        // The notification did run.
        let a = f.post(&call("opp2p_listBlockedPeers", json!([]), 1).to_string());
        assert_eq!(a.json()["result"], json!([p]));
        // `"id": null` is a call (with a null id), not a notification.
        let a = f.post(r#"{"jsonrpc":"2.0","id":null,"method":"opp2p_peerStats"}"#);
        assert_eq!(a.json()["id"], Value::Null);
        assert_eq!(a.json()["result"]["banned"], json!(1));
    }

    #[test]
    fn malformed_requests_get_the_json_rpc_error_codes() {
        let mut f = fixture();
        let cases: [(&str, Value); 9] = [
            (
                "{not json",
                json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error"}}),
            ),
            (
                "",
                json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error"}}),
            ),
            (
                "42",
                json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "invalid request"}}),
            ),
            (
                "[]",
                json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "empty batch"}}),
            ),
            (
                r#"{"jsonrpc":"2.0","id":3,"method":5}"#,
                json!({"jsonrpc": "2.0", "id": 3, "error": {"code": -32600, "message": "invalid request"}}),
            ),
            (
                r#"{"jsonrpc":"1.0","id":4,"method":"opp2p_self"}"#,
                json!({"jsonrpc": "2.0", "id": 4, "error": {"code": -32600, "message": "invalid request"}}),
            ),
            (
                r#"{"jsonrpc":"2.0","id":{"a":1},"method":"opp2p_self"}"#,
                json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "invalid request"}}),
            ),
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"eth_chainId","params":[]}"#,
                json!({"jsonrpc": "2.0", "id": 5, "error": {"code": -32601,
                    "message": "the method eth_chainId does not exist/is not available"}}),
            ),
            (
                r#"{"jsonrpc":"2.0","id":6,"method":"opp2p_peers","params":{"connected":true}}"#,
                json!({"jsonrpc": "2.0", "id": 6, "error": {"code": -32602, "message": "non-array args"}}),
            ),
        ];
        for (body, want) in cases {
            let a = f.post(body);
            assert_eq!(a.status, StatusCode::OK, "{body}");
            assert_eq!(a.json(), want, "{body}");
        }
        // A `jsonrpc` member may be left out, as go-ethereum allows.
        let a = f.post(r#"{"id":7,"method":"opp2p_listBlockedAddrs"}"#);
        assert_eq!(a.json()["result"], json!([]));
    }

    #[test]
    fn wrong_params_get_op_node_messages() {
        let mut f = fixture();
        let cases = [
            (
                call("opp2p_blockPeer", json!([]), 1),
                AdminError::MissingArgument { index: 0 },
                "missing value for required argument 0",
            ),
            (
                call("opp2p_peerStats", json!([1]), 2),
                AdminError::TooManyArguments { max: 0 },
                "too many arguments, want at most 0",
            ),
            (
                call("opp2p_peers", json!(["yes"]), 3),
                AdminError::WrongType {
                    index: 0,
                    expected: "boolean",
                },
                "invalid argument 0: expected a JSON boolean",
            ),
        ];
        for (req, err, message) in cases {
            let a = f.post(&req.to_string());
            let e = &a.json()["error"];
            assert_eq!(e["code"], json!(-32602), "{req}");
            assert_eq!(e["message"], json!(message), "{req}");
            assert_eq!(e["message"], json!(err.to_rpc().message));
        }
    }

    #[test]
    fn node_errors_are_server_errors() {
        let mut f = fixture();
        // Connecting to ourselves is refused by the gater inside the node.
        let me = format!("/ip4/127.0.0.1/tcp/1/p2p/{}", peer_id(0));
        let a = f.post(&call("opp2p_connectPeer", json!([me]), 1).to_string());
        let e = &a.json()["error"];
        assert_eq!(e["code"], json!(-32000));
        assert_eq!(
            e["message"],
            json!("failed to connect: dial refused by the connection gater")
        );
    }

    /// The metrics listener is what operators expose: it must never reach the admin API. The
    /// outsider's one-line `curl` that blocked every address through it now gets a 404, and
    /// the node's admin task never sees a call.
    #[test]
    fn the_metrics_listener_serves_metrics_and_health_only() {
        let f = crate::testkit::http_fixture(NOW);
        let registry = f.state.registry.clone();
        // An admin client whose receiving end we watch: nothing may arrive.
        let (_admin, mut calls) = AdminClient::channel();
        let state = Arc::new(HttpState::metrics_only(registry));
        assert!(!state.serves_admin());
        let send = |req: Request<Full<Bytes>>| {
            let resp = futures::executor::block_on(handle(state.clone(), req)).unwrap();
            let allow = resp
                .headers()
                .get(header::ALLOW)
                .map(|v| v.to_str().unwrap().to_owned());
            (resp.status(), allow)
        };
        let block_all = call(
            "opp2p_blockSubnet",
            json!([{"IP": "0.0.0.0", "Mask": "AAAAAA=="}]),
            1,
        )
        .to_string();
        for path in ["/", "/rpc", "/metrics/", "/x"] {
            assert_eq!(
                send(post_req(path, block_all.clone())).0,
                StatusCode::NOT_FOUND,
                "POST {path}"
            );
        }
        for (method, path) in [("PUT", "/"), ("GET", "/"), ("DELETE", "/x"), ("GET", "/x")] {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .body(Full::new(Bytes::new()))
                .unwrap();
            assert_eq!(send(req).0, StatusCode::NOT_FOUND, "{method} {path}");
        }
        for path in ["/metrics", "/healthz"] {
            assert_eq!(
                send(post_req(path, block_all.clone())),
                (StatusCode::METHOD_NOT_ALLOWED, Some("GET".to_owned()))
            );
            let get = Request::get(path).body(Full::new(Bytes::new())).unwrap();
            assert_eq!(send(get).0, StatusCode::OK, "GET {path}");
        }
        assert!(
            calls.try_recv().is_err(),
            "no admin call may be submitted through the metrics listener"
        );
    }

    /// A request to the RPC listener with `host` (or none) and `version`.
    fn with_host(
        method: Method,
        path: &str,
        host: Option<&str>,
        version: hyper::Version,
    ) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .version(version)
            .header("content-type", "application/json");
        if let Some(h) = host {
            b = b.header("host", h);
        }
        b.body(Full::new(Bytes::from(
            call("opp2p_blockAddr", json!(["10.0.0.9"]), 1).to_string(),
        )))
        .unwrap()
    }

    /// DNS rebinding: a page on evil.example that resolves to 127.0.0.1 posts to the loopback
    /// RPC, and the browser sends `Host: evil.example`. The RPC listener refuses it with
    /// go-ethereum's 403 before anything reaches the admin task; a host that is not a host at
    /// all is 400. `/metrics` and `/healthz` answer any host, and so does the metrics listener.
    #[test]
    fn the_rpc_listener_refuses_hosts_not_on_its_list() {
        let f = crate::testkit::http_fixture(NOW);
        let registry = f.state.registry.clone();
        let (admin, mut calls) = AdminClient::channel();
        let state = Arc::new(HttpState::rpc(
            admin,
            registry.clone(),
            VirtualHosts::default(),
        ));
        let send = |state: &Arc<HttpState>, req: Request<Full<Bytes>>| {
            let resp = futures::executor::block_on(handle(state.clone(), req)).unwrap();
            let status = resp.status();
            let body = futures::executor::block_on(resp.into_body().collect())
                .unwrap()
                .to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        };
        let v11 = hyper::Version::HTTP_11;
        for host in [
            "evil.example",
            "evil.example:9545",
            "EVIL.EXAMPLE",
            "localhost.evil.example",
        ] {
            for (method, path) in [
                (Method::POST, "/"),
                (Method::POST, "/x"),
                (Method::GET, "/"),
            ] {
                assert_eq!(
                    send(&state, with_host(method.clone(), path, Some(host), v11)),
                    (StatusCode::FORBIDDEN, "invalid host specified\n".to_owned()),
                    "{method} {path} Host: {host}"
                );
            }
        }
        for (host, why) in [
            (None, "missing required Host header"),
            (Some("local host"), "malformed Host header"),
        ] {
            assert_eq!(
                send(&state, with_host(Method::POST, "/", host, v11)),
                (StatusCode::BAD_REQUEST, why.to_owned()),
                "Host: {host:?}"
            );
        }
        let absolute = with_host(Method::POST, "http://evil.example/", Some("localhost"), v11);
        assert_eq!(send(&state, absolute).0, StatusCode::FORBIDDEN);
        for path in ["/metrics", "/healthz"] {
            let get = with_host(Method::GET, path, Some("evil.example"), v11);
            assert_eq!(send(&state, get).0, StatusCode::OK, "GET {path}");
        }
        let metrics_only = Arc::new(HttpState::metrics_only(registry));
        let get = with_host(Method::GET, "/metrics", Some("evil.example"), v11);
        assert_eq!(send(&metrics_only, get).0, StatusCode::OK);
        assert!(
            calls.try_recv().is_err(),
            "no admin call was submitted for a refused host"
        );
    }

    /// Allowed: the listed names (case-insensitive, any port), IP addresses, an HTTP/1.0
    /// request without `Host`, an empty `Host`; with `*` every name.
    #[test]
    fn allowed_hosts_reach_the_admin_api() {
        let mut f = fixture();
        let v11 = hyper::Version::HTTP_11;
        let cases = [
            (Some("localhost"), v11),
            (Some("LocalHost:9545"), v11),
            (Some("127.0.0.1:9545"), v11),
            (Some("[::1]:9545"), v11),
            (Some("[::1]"), v11),
            (Some("192.0.2.7"), v11),
            (Some(""), v11),
            (None, hyper::Version::HTTP_10),
        ];
        for (host, version) in cases {
            let a = f.send(with_host(Method::POST, "/", host, version));
            assert_eq!(a.status, StatusCode::OK, "Host: {host:?} {version:?}");
            assert_eq!(a.json()["result"], Value::Null, "Host: {host:?}");
        }
        // `*`: any name.
        let any = Arc::new(HttpState::rpc(
            f.state.admin.as_ref().unwrap().0.clone(),
            f.state.registry.clone(),
            VirtualHosts::any(),
        ));
        let req = with_host(Method::POST, "/", Some("evil.example"), v11);
        let resp = f.pool.run_until(handle(any, req)).unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        // A listed name beyond the default.
        let listed = Arc::new(HttpState::rpc(
            f.state.admin.as_ref().unwrap().0.clone(),
            f.state.registry.clone(),
            VirtualHosts::parse(["op-p2p.internal"]).unwrap(),
        ));
        for (host, want) in [
            ("op-p2p.internal:9545", StatusCode::OK),
            ("localhost", StatusCode::FORBIDDEN),
        ] {
            let req = with_host(Method::POST, "/", Some(host), v11);
            let resp = f.pool.run_until(handle(listed.clone(), req)).unwrap();
            assert_eq!(resp.status(), want, "{host}");
        }
    }

    #[test]
    fn a_stopped_node_answers_unavailable() {
        let (admin, rx) = AdminClient::channel();
        drop(rx);
        let state = Arc::new(HttpState::rpc(
            admin,
            Arc::new(Registry::default()),
            VirtualHosts::default(),
        ));
        let req = post_req("/", call("opp2p_self", json!([]), 1).to_string());
        let resp = futures::executor::block_on(handle(state, req)).unwrap();
        let body = futures::executor::block_on(resp.into_body().collect())
            .unwrap()
            .to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["error"],
            json!({"code": -32000, "message": AdminError::Unavailable.to_string()})
        );
    }

    #[test]
    fn batch_size_is_bounded() {
        let mut f = fixture();
        let ok: Vec<Value> = (0..MAX_BATCH as u64)
            .map(|i| call("opp2p_peerStats", json!([]), i))
            .collect();
        let a = f.post(&Value::Array(ok).to_string());
        assert_eq!(a.json().as_array().unwrap().len(), MAX_BATCH);
        let too_many: Vec<Value> = (0..=MAX_BATCH as u64)
            .map(|i| call("opp2p_peerStats", json!([]), i))
            .collect();
        let a = f.post(&Value::Array(too_many).to_string());
        assert_eq!(
            a.json(),
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "batch too large"}})
        );
    }

    /// A batch of calls with large answers stops running calls once its answers reach
    /// MAX_BATCH_RESPONSE_BYTES: the rest are answered "response too large" without reaching
    /// the node, and the response stays near the bound instead of 100 large answers.
    #[test]
    fn a_batch_of_large_answers_is_bounded_in_bytes_and_in_calls_run() {
        use op_p2p_core::admin::AdminResponse;
        let (admin, mut rx) = AdminClient::channel();
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        // ≈ 1.1 MB of JSON per answer: 20,000 peer ids.
        let big: Vec<op_p2p_core::PeerId> = (0..20_000).map(|i| peer_id(i % 64)).collect();
        let mut pool = LocalPool::new();
        pool.spawner()
            .spawn_local(async move {
                while let Some((_req, reply)) = rx.next().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = reply.send(Ok(AdminResponse::BlockedPeers(big.clone())));
                }
            })
            .unwrap();
        let state = Arc::new(HttpState::rpc(
            admin,
            Arc::new(Registry::default()),
            VirtualHosts::default(),
        ));
        let batch: Vec<Value> = (0..MAX_BATCH as u64)
            .map(|i| call("opp2p_listBlockedPeers", json!([]), i))
            .collect();
        let req = post_req("/", Value::Array(batch).to_string());
        let resp = pool.run_until(handle(state, req)).unwrap();
        let body = pool
            .run_until(resp.into_body().collect())
            .unwrap()
            .to_bytes();
        let one = 20_000 * 56;
        assert!(
            body.len() < MAX_BATCH_RESPONSE_BYTES + 2 * one,
            "{} bytes",
            body.len()
        );
        let answers: Vec<Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(answers.len(), MAX_BATCH, "every call is answered");
        let run = ran.load(Ordering::SeqCst);
        assert!((10..MAX_BATCH).contains(&run), "{run} calls ran");
        for (i, a) in answers.iter().enumerate() {
            assert_eq!(a["id"], json!(i), "in order");
            if i < run {
                assert!(a["result"].is_array());
            } else {
                assert_eq!(
                    a["error"],
                    json!({"code": RESPONSE_TOO_LARGE, "message": "response too large"})
                );
            }
        }
    }

    #[test]
    fn a_two_mib_body_is_refused_with_413() {
        let mut f = fixture();
        let big = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"opp2p_self","params":["{}"]}}"#,
            "a".repeat(2 * 1024 * 1024)
        );
        let a = f.post(&big);
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(a.json()["error"]["code"], json!(-32600));
        // Exactly at the limit is read (and here fails as JSON, not as size).
        let at_limit = " ".repeat(MAX_BODY_BYTES - 2) + "[]";
        let a = f.post(&at_limit);
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.json()["error"]["message"], json!("empty batch"));
    }

    // ---- opp2pext_publishBlock bodies (issue 14) ----

    /// A publishBlock call whose block is `txs` × 128 KiB of transactions (a V3 payload: the
    /// fixture's node refuses it at once, answering without a signer).
    fn publish_call(txs: usize) -> String {
        use op_p2p_core::gossip::topic::BlockVersion;
        use op_p2p_core::testkit::{BlockBuilder, transactions};
        let (execution_payload, parent_beacon_block_root) =
            BlockBuilder::new(BlockVersion::V3, 5, NOW / 1000)
                .with_transactions(transactions(901, 5, txs, 128 * 1024))
                .build();
        let env = op_p2p_core::op_alloy_rpc_types_engine::OpExecutionPayloadEnvelope {
            parent_beacon_block_root,
            execution_payload,
        };
        call("opp2pext_publishBlock", json!([env]), 1).to_string()
    }

    #[test]
    fn a_publishing_node_reads_a_block_sized_body_and_others_refuse_it() {
        let body = publish_call(12);
        assert!(body.len() > 2 * MAX_BODY_BYTES, "{}", body.len());
        // Without a signer the RPC listener keeps its 1 MiB limit.
        let mut plain = fixture();
        let mut req = post_req("/", body.clone());
        req.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        assert_eq!(
            plain.send(req).status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "no block signer, no large bodies"
        );
        let f = crate::testkit::http_fixture(NOW);
        let state = Arc::try_unwrap(f.state)
            .expect("only owner")
            .with_block_publishing(true);
        let pool = LocalPool::new();
        pool.spawner().spawn_local(f.answer_admin).expect("spawn");
        let mut f = Fixture {
            pool,
            state: Arc::new(state),
        };
        // As a client sends it: with its length.
        let sized = |body: &str| {
            let mut req = post_req("/", body.to_owned());
            req.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            req
        };
        let a = f.send(sized(&body));
        assert_eq!(a.status, StatusCode::OK);
        let r = a.json();
        assert_eq!(r["result"]["status"], json!("failed"), "{r}");
        assert_eq!(r["result"]["reason"], json!("permanent"));
        assert_eq!(r["result"]["number"], json!(5));
        // A large batch is refused; a body over the publish limit too, before reading.
        let batch = format!("[{body}]");
        assert_eq!(
            f.send(sized(&batch)).json()["error"]["code"],
            json!(op_p2p_core::admin::codes::INVALID_REQUEST)
        );
        let req = Request::post("/")
            .header("content-type", "application/json")
            .header("content-length", (MAX_PUBLISH_BODY_BYTES + 1).to_string())
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        assert_eq!(f.send(req).status, StatusCode::PAYLOAD_TOO_LARGE);
        // An unsized large body is refused at the small limit.
        let chunks = futures::stream::iter(vec![Ok::<_, Infallible>(Frame::data(Bytes::from(
            body.clone(),
        )))]);
        let req = Request::post("/")
            .header("content-type", "application/json")
            .body(StreamBody::new(chunks))
            .unwrap();
        assert_eq!(f.send(req).status, StatusCode::PAYLOAD_TOO_LARGE);
        // The metrics listener never takes them (nor any POST).
        let metrics_only =
            HttpState::metrics_only(Arc::new(Registry::default())).with_block_publishing(true);
        assert!(!metrics_only.serves_admin());
        assert!(metrics_only.large_bodies.is_none());
    }

    // ---- end of opp2pext_publishBlock bodies ----

    #[test]
    fn an_unsized_stream_stops_being_read_at_the_limit() {
        let mut f = fixture();
        const CHUNK: usize = 64 * 1024;
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = pulled.clone();
        // 4 MiB in 64 chunks, no Content-Length.
        let chunks = futures::stream::iter(0..64).map(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b' '; CHUNK])))
        });
        let req = Request::post("/")
            .header("content-type", "application/json")
            .body(StreamBody::new(chunks))
            .unwrap();
        let a = f.send(req);
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
        let n = pulled.load(Ordering::SeqCst);
        assert_eq!(
            n,
            MAX_BODY_BYTES / CHUNK + 1,
            "reading stopped at the chunk over the limit"
        );
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let mut f = fixture();
        let req = Request::post("/")
            .header("content-type", "application/json")
            .header("content-length", (2 * MAX_BODY_BYTES).to_string())
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        assert_eq!(f.send(req).status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn non_json_content_types_are_refused() {
        let mut f = fixture();
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let mut b = Request::post("/");
            if let Some(ct) = ct {
                b = b.header("content-type", ct);
            }
            let req = b
                .body(Full::new(Bytes::from(
                    call("opp2p_blockPeer", json!([peer_id(3).to_base58()]), 1).to_string(),
                )))
                .unwrap();
            assert_eq!(
                f.send(req).status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{ct:?}"
            );
        }
        // Nothing was blocked.
        let a = f.post(&call("opp2p_listBlockedPeers", json!([]), 1).to_string());
        assert_eq!(a.json()["result"], json!([]));
        let req = Request::post("/any/path")
            .header("content-type", "application/json; charset=utf-8")
            .body(Full::new(Bytes::from(
                call("opp2p_peerStats", json!([]), 1).to_string(),
            )))
            .unwrap();
        let a = f.send(req);
        assert_eq!(
            a.json()["result"]["connected"],
            json!(0),
            "any path, charset allowed"
        );
    }

    #[test]
    fn metrics_healthz_and_routing() {
        let mut f = fixture();
        let a = f.get("/metrics");
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.content_type.as_deref(), Some(METRICS_CONTENT_TYPE));
        let t = a.text();
        assert!(t.contains("\nop_p2p_p2p_stream_count 3\n"), "{t}");
        assert!(t.contains("\nop_p2p_p2p_peer_count 0\n"), "{t}");
        assert!(t.contains("# TYPE op_p2p_peer_scores histogram\n"), "{t}");
        assert!(t.ends_with("# EOF\n"));

        let a = f.get("/healthz");
        assert_eq!(
            (a.status, a.content_type.as_deref(), a.text()),
            (
                StatusCode::OK,
                Some("application/json"),
                r#"{"status":"ok","reasons":[]}"#
            )
        );

        assert_eq!(f.get("/nope").status, StatusCode::NOT_FOUND);
        let a = f.get("/");
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(a.allow.as_deref(), Some("POST"));
        let a = f.send(post_req("/metrics", "{}"));
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(a.allow.as_deref(), Some("GET"));
        let req = Request::delete("/healthz")
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(f.send(req).status, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn result_is_admin_response_to_json() {
        // Serialised directly, the result member is the same value as to_json gives.
        let g = op_p2p_core::peers::gater::Gater::default();
        let responses = [
            AdminResponse::BlockedAddrs(vec!["::1".parse().unwrap()]),
            AdminResponse::PeerStats(op_p2p_core::admin::PeerStats::default()),
            AdminResponse::Peers(op_p2p_core::admin::PeerDump::new(Vec::new(), &g)),
            AdminResponse::Null,
        ];
        for r in responses {
            let want = r.to_json();
            let resp = RpcResponse {
                jsonrpc: "2.0",
                id: json!(1),
                outcome: Outcome::Result(Box::new(r)),
            };
            let v = serde_json::to_value(&resp).unwrap();
            assert_eq!(v, json!({"jsonrpc": "2.0", "id": 1, "result": want}));
        }
    }
}
