//! What an outsider reaches with the documented defaults, over real sockets on loopback (the
//! "Exposure" table of `tests/ADVERSARIAL.md`): the metrics listener refuses the admin API, the
//! RPC listener refuses a host name not on its allow-list (DNS rebinding), slow HTTP clients
//! cannot hold the listener, and a stream of admin calls cannot starve the swarm. Every test is
//! bounded by a timeout.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures::StreamExt;
use op_p2p_core::BlockVersion;
use op_p2p_core::admin::{AdminRequest, AdminResponse};
use op_p2p_core::testkit::BlockBuilder;
use op_p2p_node::http::{BODY_READ_TIMEOUT, MAX_CONNECTIONS_PER_IP, METRICS_CONTENT_TYPE};
use op_p2p_tests::{
    HostHeader, HttpRequest, Rt, closed_by_server, connect, connected, dev_config, http_get,
    json_rpc_ok, local0, node_metric, now_secs, on_both_runtimes, parse_http_response,
    publish_block_params, publish_block_rpc, publish_when_ready, read_to_close, sequencer_config,
    shutdown, sleep, stalled_body, v4_block, within,
};
use serde_json::{Value, json};

/// The fixture node's clock (Unix ms).
const NOW: u64 = 1_750_000_000_000;

/// The one-line attack on an exposed admin API: block every IPv4 address, persisted.
fn block_everything() -> HttpRequest {
    HttpRequest::json_rpc(
        "opp2p_blockSubnet",
        json!([{"IP": "0.0.0.0", "Mask": "AAAAAA=="}]),
    )
}

// ---------------------------------------------------------------------------------------------
// The metrics listener
// ---------------------------------------------------------------------------------------------

/// A node with its JSON-RPC on 127.0.0.1 and a separate metrics listener on 127.0.0.2 (two
/// addresses: `rpc_addr == metrics_addr` shares one listener). The admin call that blocked
/// every address through the metrics port gets a 404 there and changes nothing: the block list
/// stays empty and a peer still connects. The metrics port serves `/metrics` and `/healthz`,
/// and the same call on the RPC port does block (so the 404 is the listener's doing, not a
/// malformed call).
async fn the_metrics_port_refuses_the_admin_api_and_serves_metrics(rt: Rt) {
    let mut c = dev_config(1);
    c.rpc_addr = Some(local0());
    c.metrics_addr = Some(SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 0)));
    let node = rt.spawn(c).await;
    let rpc = node.rpc_addr().expect("RPC on");
    let metrics = node.metrics_addr().expect("metrics on");
    assert_ne!(rpc, metrics, "two listeners");

    for path in ["/", "/rpc", "/metrics/"] {
        let r = block_everything().path(path).send(metrics).await;
        assert_eq!(r.status, 404, "POST {path}: {r:?}");
    }
    assert_eq!(
        json_rpc_ok(rpc, "opp2p_listBlockedSubnets", json!([])).await,
        json!([]),
        "nothing was blocked through the metrics port"
    );
    let peer = rt.spawn(dev_config(2)).await;
    connect(&peer, &node).await;
    assert_eq!(connected(&node).await, 1, "a peer still connects");

    let m = http_get(metrics, "/metrics").await;
    assert_eq!(m.status, 200);
    assert_eq!(m.header("content-type"), Some(METRICS_CONTENT_TYPE));
    assert!(
        m.text().contains("\nop_p2p_p2p_peer_count "),
        "{}",
        m.text()
    );
    assert!(m.text().ends_with("# EOF\n"));
    let h = http_get(metrics, "/healthz").await;
    assert_eq!(h.status, 200);
    assert!(h.json()["status"].is_string(), "{}", h.text());

    // The same call on the RPC port works: the attack was real.
    let r = block_everything().send(rpc).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["result"], Value::Null, "{r:?}");
    assert_eq!(
        json_rpc_ok(rpc, "opp2p_listBlockedSubnets", json!([])).await,
        json!([{"IP": "0.0.0.0", "Mask": "AAAAAA=="}])
    );
    let late = rt.spawn(dev_config(3)).await;
    let mut addr = node.listen_addrs()[0].clone();
    let Some(libp2p::multiaddr::Protocol::P2p(id)) = addr.pop() else {
        panic!("no peer id")
    };
    let refused = late
        .admin()
        .call(AdminRequest::ConnectPeer { addr, peer: id })
        .await;
    assert!(refused.is_err(), "a blocked subnet refuses: {refused:?}");
    shutdown(late).await;
    shutdown(peer).await;
    shutdown(node).await;
}

/// `opp2pext_publishBlock` (issue 14) exists on a sequencer's RPC listener only: posted to its
/// metrics listener (small or block-sized) it is a 404 and nothing is published; on the RPC
/// listener the same block goes out, signed by the node's key, and reaches a peer.
async fn the_metrics_port_refuses_publish_block_and_the_rpc_port_publishes(rt: Rt) {
    let mut c = sequencer_config(1);
    c.rpc_addr = Some(local0());
    c.metrics_addr = Some(SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 0)));
    let node = rt.spawn(c).await;
    let rpc = node.rpc_addr().expect("RPC on");
    let metrics = node.metrics_addr().expect("metrics on");
    let mut peer = rt.spawn(dev_config(2)).await;
    connect(&peer, &node).await;
    let mut blocks = peer.blocks().expect("blocks");

    let block = BlockBuilder::new(BlockVersion::V4, 1, now_secs());
    let small = HttpRequest::json_rpc("opp2pext_publishBlock", publish_block_params(&block));
    assert_eq!(small.send(metrics).await.status, 404);
    let big = BlockBuilder::new(BlockVersion::V4, 2, now_secs())
        .with_transactions(op_p2p_core::testkit::transactions(901, 2, 12, 128 * 1024));
    let big = HttpRequest::json_rpc("opp2pext_publishBlock", publish_block_params(&big));
    // The listener answers 404 without reading the 3 MB body and closes: our write may fail
    // (reset) before we read the answer, so the answer is a 404 or nothing at all.
    let raw = within(Duration::from_secs(20), "the big POST", async {
        let mut s = async_std::net::TcpStream::connect(metrics)
            .await
            .expect("connect");
        let _ = futures::AsyncWriteExt::write_all(&mut s, &big.to_bytes(metrics)).await;
        read_to_close(&mut s).await
    })
    .await;
    if !raw.is_empty() {
        assert_eq!(parse_http_response(&raw).status, 404);
    }
    assert_eq!(
        node_metric(&node, "op_p2p_published_blocks_total").await,
        0.0,
        "nothing was published through the metrics port"
    );

    let r = publish_block_rpc(rpc, &block).await;
    assert_eq!(r["number"], 1, "{r}");
    let got = within(Duration::from_secs(20), "the block", blocks.next())
        .await
        .expect("delivered");
    assert_eq!(got.envelope.payload.as_v1().block_number, 1);
    assert_eq!(
        node_metric(&node, "op_p2p_published_blocks_total").await,
        1.0
    );
    shutdown(peer).await;
    shutdown(node).await;
}

// ---------------------------------------------------------------------------------------------
// The RPC listener's Host allow-list (DNS rebinding)
// ---------------------------------------------------------------------------------------------

/// A page on evil.example that resolves to 127.0.0.1 posts to the loopback RPC: the browser
/// sends `Host: evil.example:<port>`. The default allow-list (`localhost`; IP addresses always
/// pass) refuses it with go-ethereum's 403 and nothing is blocked; `Host: localhost` and the
/// listener's own address are served; the metrics listener answers any host.
async fn the_rpc_refuses_a_rebound_host_and_serves_localhost(rt: Rt) {
    let mut c = dev_config(1);
    c.rpc_addr = Some(local0());
    c.metrics_addr = Some(SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 0)));
    let node = rt.spawn(c).await;
    let rpc = node.rpc_addr().expect("RPC on");
    let metrics = node.metrics_addr().expect("metrics on");
    let port = rpc.port();

    for host in [format!("evil.example:{port}"), "EVIL.EXAMPLE".to_owned()] {
        let r = block_everything()
            .host(HostHeader::Value(host.clone()))
            .send(rpc)
            .await;
        assert_eq!(
            (r.status, r.text()),
            (403, "invalid host specified\n"),
            "Host: {host}"
        );
    }
    assert_eq!(
        json_rpc_ok(rpc, "opp2p_listBlockedSubnets", json!([])).await,
        json!([]),
        "nothing was blocked through a rebound name"
    );
    for host in [format!("localhost:{port}"), rpc.to_string()] {
        let r = HttpRequest::json_rpc("opp2p_peerStats", json!([]))
            .host(HostHeader::Value(host.clone()))
            .send(rpc)
            .await;
        assert_eq!(r.status, 200, "Host: {host}: {r:?}");
        assert_eq!(r.json()["result"]["connected"], json!(0));
    }
    let r = HttpRequest::new("GET", "/metrics")
        .host(HostHeader::Value("evil.example".into()))
        .send(metrics)
        .await;
    assert_eq!(r.status, 200, "the metrics listener answers any host");
    shutdown(node).await;
}

// ---------------------------------------------------------------------------------------------
// Slow HTTP clients
// ---------------------------------------------------------------------------------------------

/// Stalled clients from one IP: 300 sockets that send their headers and 10 of 100 declared
/// body bytes, then nothing.
const STALLED: usize = 300;
/// Slack on the body timer: the 408 may come this much after `BODY_READ_TIMEOUT` (timer
/// granularity, a loaded machine).
const BODY_SLACK: Duration = Duration::from_secs(3);
/// "Promptly": another client's request while the listener holds the stalled ones.
const PROMPT: Duration = Duration::from_secs(2);

/// 300 stalled clients from 127.0.0.1 against `http::serve`: at most `MAX_CONNECTIONS_PER_IP`
/// of them are held, the rest are closed at once; a client on 127.0.0.2 is answered promptly
/// meanwhile; each held one gets `408` once `BODY_READ_TIMEOUT` passed (not before, not much
/// after); after that 127.0.0.1 is served again (the slots were freed). One 10 s wait per
/// runtime.
async fn stalled_bodies_get_408_and_hold_at_most_the_per_ip_cap(rt: Rt) {
    let srv = rt.serve_fixture(NOW).await;
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        sockets.push(stalled_body(srv.addr, None).await);
    }
    let opened = started.elapsed();
    // Read them all at once (a held socket makes its probe wait its whole second).
    let closed: Vec<bool> =
        futures::future::join_all(sockets.iter_mut().map(closed_by_server)).await;
    let (held, refused): (Vec<_>, Vec<_>) = sockets
        .into_iter()
        .zip(closed)
        .partition(|(_, closed)| !closed);
    let mut held: Vec<_> = held.into_iter().map(|(s, _)| s).collect();
    eprintln!(
        "{rt:?}: {STALLED} stalled clients opened in {opened:?}: {} held, {} closed at once",
        held.len(),
        refused.len()
    );
    assert_eq!(
        held.len(),
        MAX_CONNECTIONS_PER_IP,
        "exactly the per-IP cap is held"
    );
    assert_eq!(refused.len(), STALLED - MAX_CONNECTIONS_PER_IP);

    // Another client is answered while they stall.
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let t = Instant::now();
    let r = HttpRequest::json_rpc("opp2p_peerStats", json!([]))
        .from_ip(other)
        .send(srv.addr)
        .await;
    let prompt = t.elapsed();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["result"]["connected"], json!(0));
    eprintln!("{rt:?}: a request from {other} answered in {prompt:?}");
    assert!(prompt < PROMPT, "{prompt:?}");

    // Each held client gets 408 once its body timer fired.
    let responses = within(
        BODY_READ_TIMEOUT + BODY_SLACK + Duration::from_secs(2),
        "408s",
        futures::future::join_all(held.iter_mut().map(|s| async {
            let raw = read_to_close(s).await;
            (started.elapsed(), raw)
        })),
    )
    .await;
    let mut latest = Duration::ZERO;
    for (at, raw) in &responses {
        let resp = parse_http_response(raw);
        assert_eq!(resp.status, 408, "{resp:?}");
        latest = latest.max(*at);
        assert!(*at >= BODY_READ_TIMEOUT, "408 after {at:?}");
    }
    eprintln!(
        "{rt:?}: {} held clients got 408; the last {latest:?} after the first was opened",
        responses.len()
    );
    assert!(
        latest <= opened + BODY_READ_TIMEOUT + BODY_SLACK,
        "the last 408 came {latest:?} after the start"
    );
    // Their slots are free: 127.0.0.1 is served again, a whole cap of it. (A moment for the
    // server's connection tasks to end after their sockets closed.)
    sleep(Duration::from_millis(100)).await;
    let mut again = Vec::new();
    for _ in 0..MAX_CONNECTIONS_PER_IP {
        again.push(stalled_body(srv.addr, None).await);
    }
    let closed = futures::future::join_all(again.iter_mut().map(closed_by_server)).await;
    let refused_again = closed.iter().filter(|c| **c).count();
    assert_eq!(
        refused_again, 0,
        "after the 408s, 127.0.0.1 has its {MAX_CONNECTIONS_PER_IP} slots back"
    );
    drop(again);
    // The server counts a connection until it has seen it close.
    sleep(Duration::from_millis(100)).await;
    let r = http_get(srv.addr, "/healthz").await;
    assert_eq!(r.status, 200);
    srv.stop().await;
}

/// The whole-request deadline in the next test (the node's is `REQUEST_DEADLINE`, 40 s).
const SHORT_DEADLINE: Duration = Duration::from_millis(1_500);

/// The total connection cap and the whole-request deadline on real sockets. 256 silent
/// clients from 8 addresses (32 each, the per-IP cap) take every place: a 257th client's
/// request from another address is accepted by the kernel but not served while they stay;
/// when one of them leaves, it is served at once. Then, against a node whose admin side never
/// answers (a stuck node), an admin call gets `503` at the deadline (here shortened to 1.5 s
/// through `ServeLimits`; the node's own is 40 s) and not before, and the listener still
/// serves `/healthz`.
async fn the_total_cap_holds_and_a_stuck_call_gets_503_at_its_deadline(rt: Rt) {
    use async_std::io::{ReadExt, WriteExt};
    use op_p2p_node::http::{MAX_CONNECTIONS, ServeLimits};
    let limits = ServeLimits::default().with_request_deadline(SHORT_DEADLINE);
    let srv = rt.serve_fixture_with(NOW, limits, false).await;
    let sources = MAX_CONNECTIONS / MAX_CONNECTIONS_PER_IP;
    let mut held = Vec::with_capacity(MAX_CONNECTIONS);
    for i in 0..sources {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 10 + i as u8));
        for _ in 0..MAX_CONNECTIONS_PER_IP {
            // Silent: held by the header timeout (10 s), not by the request deadline, which
            // starts once a request's headers are in.
            held.push(op_p2p_tests::connect_from(ip, srv.addr));
        }
    }
    let closed = futures::future::join_all(held.iter_mut().map(closed_by_server)).await;
    assert_eq!(
        closed.iter().filter(|c| **c).count(),
        0,
        "all {MAX_CONNECTIONS} are held"
    );

    // The 257th: connected by the kernel, its request waits for a place.
    let late_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 99));
    let mut late = op_p2p_tests::connect_from(late_ip, srv.addr);
    late.write_all(&HttpRequest::new("GET", "/healthz").to_bytes(srv.addr))
        .await
        .expect("write");
    let mut first = [0u8; 1];
    let waited = async_std::future::timeout(Duration::from_secs(1), late.read(&mut first)).await;
    assert!(
        waited.is_err(),
        "the 257th client got an answer or was closed while every place was taken: {waited:?}"
    );
    let t = Instant::now();
    drop(held.pop());
    let raw = within(
        PROMPT,
        "the waiting request is served",
        read_to_close(&mut late),
    )
    .await;
    let resp = parse_http_response(&raw);
    assert_eq!(resp.status, 200, "{resp:?}");
    eprintln!(
        "{rt:?}: {MAX_CONNECTIONS} held from {sources} addresses; the next served {:?} after one left",
        t.elapsed()
    );
    drop(held);
    sleep(Duration::from_millis(100)).await;

    // A stuck admin call: 503 at the deadline.
    let t = Instant::now();
    let r = HttpRequest::json_rpc("opp2p_peerStats", json!([]))
        .from_ip(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 100)))
        .send(srv.addr)
        .await;
    let took = t.elapsed();
    eprintln!(
        "{rt:?}: a call to a stuck node answered {} after {took:?}",
        r.status
    );
    assert_eq!(r.status, 503, "{r:?}");
    assert!(took >= SHORT_DEADLINE, "503 after {took:?}");
    assert!(took < SHORT_DEADLINE + PROMPT, "503 after {took:?}");
    assert_eq!(http_get(srv.addr, "/healthz").await.status, 200);
    srv.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Admin calls cannot starve the swarm
// ---------------------------------------------------------------------------------------------

/// Blocks the sequencer publishes while the receiver's admin API is hammered.
const HAMMERED_BLOCKS: u64 = 20;
/// Between two of them.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// Threads of admin callers, each running `CALLERS` callers in a tight loop.
const CALLER_THREADS: usize = 4;
/// Concurrent admin callers per thread.
const CALLERS: usize = 16;
/// Most publish → delivery latency allowed under the hammer. Measured on loopback (2 cores):
/// max 2–7 ms, median 2–3 ms (quiet: 0.5–1 ms). With `MAX_EVENTS_PER_ADMIN_CALL` at 0 (the
/// loop as it was) blocks waited for the rare empty admin queue: median 2.9–5.6 s, max 3.8–6.1 s.
const MAX_LATENCY: Duration = Duration::from_secs(1);

/// Two connected nodes; 4 threads of 16 callers each call the receiver's admin API
/// (`opp2p_peers`, `opp2p_peerStats`, in turn) as fast as it answers, through its in-process
/// admin client (the shortest path to the driver: no HTTP in between), while the sequencer
/// publishes 20 blocks, one every 100 ms. Every block arrives, and the slowest publish →
/// delivery stays under `MAX_LATENCY`.
///
/// The callers run on threads of their own, not as tasks of the node's runtime: a task the
/// driver wakes with its reply runs on the driver's worker after the driver yields, so such
/// callers refill the queue only once it is empty, and even 64 of them never starved the
/// loop without the fix. Threads of their own keep the queue full, as many HTTP clients on a
/// busy machine can.
async fn admin_calls_in_a_tight_loop_do_not_starve_gossip(rt: Rt) {
    let sequencer = rt.spawn(sequencer_config(0)).await;
    let mut ours = rt.spawn(dev_config(1)).await;
    let mut blocks = ours.blocks().expect("blocks");
    connect(&ours, &sequencer).await;
    // The mesh is up once one block got through; the next three give the quiet latency.
    publish_when_ready(&sequencer, v4_block(1)).await;
    let first = within(Duration::from_secs(20), "block 1", blocks.next())
        .await
        .expect("node runs");
    assert_eq!(first.envelope.payload.as_v1().block_number, 1);
    let mut quiet = Duration::MAX;
    for n in 2..=4 {
        let t = Instant::now();
        publish_when_ready(&sequencer, v4_block(n)).await;
        let b = within(Duration::from_secs(10), "quiet block", blocks.next())
            .await
            .expect("node runs");
        assert_eq!(b.envelope.payload.as_v1().block_number, n);
        quiet = quiet.min(t.elapsed());
    }

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let hammers: Vec<_> = (0..CALLER_THREADS)
        .map(|t| {
            let admin = ours.admin();
            let (stop, calls) = (stop.clone(), calls.clone());
            let (done_tx, done) = futures::channel::oneshot::channel::<()>();
            std::thread::spawn(move || {
                futures::executor::block_on(futures::future::join_all((0..CALLERS).map(|i| {
                    let (admin, stop, calls) = (admin.clone(), stop.clone(), calls.clone());
                    async move {
                        use std::sync::atomic::Ordering::Relaxed;
                        let mut k = t + i;
                        while !stop.load(Relaxed) {
                            let req = if k % 2 == 0 {
                                AdminRequest::Peers { connected: false }
                            } else {
                                AdminRequest::PeerStats
                            };
                            k += 1;
                            match admin.call(req).await {
                                Ok(AdminResponse::Peers(_) | AdminResponse::PeerStats(_)) => {}
                                other => panic!("admin call: {other:?}"),
                            }
                            calls.fetch_add(1, Relaxed);
                        }
                    }
                })));
                let _ = done_tx.send(());
            });
            done
        })
        .collect();
    // Let the hammer reach speed.
    sleep(Duration::from_millis(200)).await;
    let hammer_started = Instant::now();
    let calls_before = calls.load(std::sync::atomic::Ordering::Relaxed);

    let first_hammered = 5;
    let last = first_hammered + HAMMERED_BLOCKS - 1;
    let mut published = std::collections::BTreeMap::new();
    let mut latencies = std::collections::BTreeMap::new();
    let mut next = first_hammered;
    let mut tick = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.len() < HAMMERED_BLOCKS as usize {
        assert!(
            Instant::now() < deadline,
            "blocks still missing after 30 s: delivered {:?}",
            latencies.keys().collect::<Vec<_>>()
        );
        if next <= last && Instant::now() >= tick {
            published.insert(next, Instant::now());
            sequencer
                .publish(v4_block(next))
                .await
                .expect("the sequencer publishes");
            next += 1;
            tick += PUBLISH_EVERY;
        }
        let wait = tick
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        if let Ok(b) = async_std::future::timeout(wait, blocks.next()).await {
            let b = b.expect("node runs");
            let n = b.envelope.payload.as_v1().block_number;
            let at = published.get(&n).expect("a block we published");
            latencies.insert(n, at.elapsed());
        }
    }
    let hammered_for = hammer_started.elapsed();
    let made = calls.load(std::sync::atomic::Ordering::Relaxed) - calls_before;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in hammers {
        within(Duration::from_secs(10), "a caller thread stops", h)
            .await
            .expect("a caller thread ended without panicking");
    }
    let max = latencies.values().max().copied().unwrap_or_default();
    let mut sorted: Vec<Duration> = latencies.values().copied().collect();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    eprintln!(
        "{rt:?}: {CALLER_THREADS}×{CALLERS} callers made {made} admin calls in {hammered_for:?} ({:.0}/s); \
         {HAMMERED_BLOCKS} blocks, publish → delivery median {median:?}, max {max:?} (quiet: \
         {quiet:?})",
        made as f64 / hammered_for.as_secs_f64()
    );
    assert_eq!(
        latencies.keys().copied().collect::<Vec<_>>(),
        (first_hammered..=last).collect::<Vec<_>>(),
        "every block delivered"
    );
    assert!(made > 1_000, "the admin API was hammered: {made} calls");
    assert!(max < MAX_LATENCY, "slowest delivery {max:?}");
    shutdown(ours).await;
    shutdown(sequencer).await;
}

on_both_runtimes!(
    the_metrics_port_refuses_the_admin_api_and_serves_metrics,
    the_metrics_port_refuses_publish_block_and_the_rpc_port_publishes,
    the_rpc_refuses_a_rebound_host_and_serves_localhost,
    stalled_bodies_get_408_and_hold_at_most_the_per_ip_cap,
    the_total_cap_holds_and_a_stuck_call_gets_503_at_its_deadline,
    admin_calls_in_a_tight_loop_do_not_starve_gossip,
);
