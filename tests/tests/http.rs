//! The one HTTP accept loop, `op_p2p_node::http::serve`, over a real socket on both runtimes
//! (the listener bound with the runtime's `bind_http`): JSON-RPC, `/metrics` and `/healthz`,
//! 404 and 405, a too large declared body refused before it is sent, and a shutdown that
//! closes the listener and idle keep-alive connections at once and a request in flight after
//! the grace period. The service behind it is
//! `op_p2p_node::testkit::http_fixture`, a fresh node's admin API and metrics.

use std::time::Instant;

use futures::{AsyncReadExt, AsyncWriteExt};
use op_p2p_core::testkit::peer_id;
use op_p2p_node::http::{MAX_BODY_BYTES, METRICS_CONTENT_TYPE, SHUTDOWN_GRACE};
use op_p2p_tests::{
    HTTP_TIMEOUT, Rt, closed_by_server, http_exchange, http_get, http_request, on_both_runtimes,
    parse_http_response, request_in_flight, within,
};
use serde_json::json;

/// The fixture node's clock (Unix ms).
const NOW: u64 = 1_750_000_000_000;

async fn json_rpc_metrics_and_health_over_a_real_socket(rt: Rt) {
    let srv = rt.serve_fixture(NOW).await;
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"opp2p_peerStats","params":[]}"#;
    let r = http_request(srv.addr, "POST", "/", Some("application/json"), call).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["id"], json!(1));
    assert_eq!(v["result"]["connected"], json!(0), "{v}");

    // A batch: the block made by the first call is seen by the second.
    let p = peer_id(4).to_base58();
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "opp2p_blockPeer", "params": [p]},
        {"jsonrpc": "2.0", "id": 2, "method": "opp2p_listBlockedPeers"},
    ])
    .to_string();
    let r = http_request(srv.addr, "POST", "/", Some("application/json"), &batch).await;
    assert_eq!(
        r.json(),
        json!([{"jsonrpc": "2.0", "id": 1, "result": null},
               {"jsonrpc": "2.0", "id": 2, "result": [p]}])
    );

    let r = http_get(srv.addr, "/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(METRICS_CONTENT_TYPE));
    assert!(
        r.text().contains("\nop_p2p_p2p_peer_count 0\n"),
        "{}",
        r.text()
    );
    assert!(r.text().ends_with("# EOF\n"));

    let r = http_get(srv.addr, "/healthz").await;
    assert_eq!(
        (r.status, r.text()),
        (200, r#"{"status":"ok","reasons":[]}"#)
    );
    assert_eq!(http_get(srv.addr, "/x").await.status, 404);
    let put = http_request(srv.addr, "PUT", "/", Some("application/json"), "{}").await;
    assert_eq!(put.status, 405);
    srv.stop().await;
}

async fn an_oversized_declared_body_is_refused_without_reading_it(rt: Rt) {
    let srv = rt.serve_fixture(NOW).await;
    let declared = 2 * 1024 * 1024;
    assert!(declared > MAX_BODY_BYTES);
    // Only the headers are sent: the 413 must come without the 2 MiB body (the exchange reads
    // until the server closes, within HTTP_TIMEOUT).
    let head = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    );
    let raw = http_exchange(srv.addr, head.as_bytes()).await;
    assert_eq!(parse_http_response(&raw).status, 413);
    srv.stop().await;
}

async fn shutdown_closes_idle_keep_alive_connections_and_the_listener(rt: Rt) {
    let srv = rt.serve_fixture(NOW).await;
    let addr = srv.addr;
    let mut s = async_std::net::TcpStream::connect(addr).await.unwrap();
    // A keep-alive request: the connection stays open after the response.
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.ends_with(br#"{"status":"ok","reasons":[]}"#) {
        let n = within(HTTP_TIMEOUT, "response", s.read(&mut buf))
            .await
            .unwrap();
        assert!(n > 0, "closed before the response");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(parse_http_response(&got).status, 200);
    assert!(
        !closed_by_server(&mut s).await,
        "an idle keep-alive connection stays open while the server runs"
    );
    let t = Instant::now();
    srv.stop().await;
    assert!(
        t.elapsed() < SHUTDOWN_GRACE,
        "idle connections do not wait for the grace period"
    );
    assert!(
        closed_by_server(&mut s).await,
        "the idle connection is closed"
    );
    // And nothing listens any more.
    assert!(async_std::net::TcpStream::connect(addr).await.is_err());
}

async fn shutdown_lets_a_request_in_flight_run_for_the_grace_period_then_drops_it(rt: Rt) {
    let srv = rt.serve_fixture(NOW).await;
    let addr = srv.addr;
    // Its body never comes: the request can only end by being dropped.
    let mut stalled = request_in_flight(addr).await;
    let t = Instant::now();
    srv.stop().await;
    let took = t.elapsed();
    assert!(took >= SHUTDOWN_GRACE, "serve returned after {took:?}");
    assert!(
        closed_by_server(&mut stalled).await,
        "dropped after the grace period"
    );
    assert!(async_std::net::TcpStream::connect(addr).await.is_err());
}

on_both_runtimes!(
    json_rpc_metrics_and_health_over_a_real_socket,
    an_oversized_declared_body_is_refused_without_reading_it,
    shutdown_closes_idle_keep_alive_connections_and_the_listener,
    shutdown_lets_a_request_in_flight_run_for_the_grace_period_then_drops_it,
);
