//! Routing on a [`crate::host::Host`]'s listeners (issue 16): the same JSON-RPC, `/metrics`
//! and `/healthz` handling as a single node's, over several chains.
//!
//! | request | host RPC listener | host metrics listener |
//! |---|---|---|
//! | `GET /metrics` | every chain's series with `chain_id` | same |
//! | `GET /healthz` | overall, each chain listed | same |
//! | another method on `/metrics`, `/healthz` | `405` | same |
//! | host not allowed ([`VirtualHosts`]) | `403` (`400` if malformed) | `404` |
//! | `POST /chain/<id or name>` | the chain's JSON-RPC; `404` unknown chain; `503` not running | `404` |
//! | `GET /chain/<id or name>/healthz` | the chain's health; `404` unknown chain | `404` |
//! | another method on those | `405` | `404` |
//! | anything else | `404` | `404` |

use hyper::body::{Body, Bytes};
use hyper::{Method, Request, Response, StatusCode};

use http_body_util::Full;

use super::vhosts::{self, VirtualHosts};
use super::{INVALID_HOST, METRICS_CONTENT_TYPE, method_not_allowed, plain, response, rpc};
use crate::host::Chains;

/// Answers one request on a host's listener (`vhosts` is `None` on its metrics listener).
pub(super) async fn handle<B>(
    chains: &Chains,
    vhosts: Option<&VirtualHosts>,
    req: Request<B>,
) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match path.as_str() {
        "/metrics" if method == Method::GET => match chains.metrics_text() {
            Ok(text) => response(StatusCode::OK, METRICS_CONTENT_TYPE, Bytes::from(text)),
            Err(e) => {
                tracing::warn!(error = %e, "encoding metrics failed");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed")
            }
        },
        "/healthz" if method == Method::GET => json(chains.health_json()),
        "/metrics" | "/healthz" => method_not_allowed("GET"),
        _ => {
            let Some(vhosts) = vhosts else {
                return plain(StatusCode::NOT_FOUND, "not found");
            };
            match vhosts.check(&req) {
                Err(vhosts::HostRefusal::NotAllowed) => {
                    return plain(StatusCode::FORBIDDEN, INVALID_HOST);
                }
                Err(vhosts::HostRefusal::BadRequest(why)) => {
                    return plain(StatusCode::BAD_REQUEST, why);
                }
                Ok(()) => {}
            }
            let Some(rest) = path.strip_prefix("/chain/") else {
                return plain(StatusCode::NOT_FOUND, "not found");
            };
            if let Some(key) = rest.strip_suffix("/healthz") {
                if method != Method::GET {
                    return method_not_allowed("GET");
                }
                return match chains.chain_health_json(key) {
                    Some(body) => json(body),
                    None => plain(StatusCode::NOT_FOUND, "unknown chain"),
                };
            }
            let key = rest.strip_suffix('/').unwrap_or(rest);
            if key.contains('/') {
                return plain(StatusCode::NOT_FOUND, "not found");
            }
            if method != Method::POST {
                return method_not_allowed("POST");
            }
            match chains.admin(key) {
                None => plain(StatusCode::NOT_FOUND, "unknown chain"),
                Some(None) => plain(StatusCode::SERVICE_UNAVAILABLE, "chain not running"),
                // Block-sized bodies (opp2pext_publishBlock over 1 MiB) go to a chain's own RPC
                // port; the shared listener reads at most the ordinary body bound.
                Some(Some(admin)) => rpc(&admin, None, req).await,
            }
        }
    }
}

fn json(body: String) -> Response<Full<Bytes>> {
    response(StatusCode::OK, "application/json", Bytes::from(body))
}
