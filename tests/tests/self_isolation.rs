//! No self-isolation (issue #13), over real sockets: a node started with a stale unsafe signer
//! does not ban the honest peer whose blocks are signed by the chain's current key; it says
//! why on `GET /healthz` and in its events, and once restarted on the same data dir with the
//! right signer it receives every block the peer publishes.

use std::time::{Duration, Instant};

use futures::StreamExt;
use op_p2p_core::testkit::dev_key;
use op_p2p_node::driver::NodeEvent;
use op_p2p_tests::*;
use serde_json::json;

/// Node A: block time 1 s (so the test publishes at the block rate without waiting 2 s per
/// block), RPC on loopback, state in `dir`, accepting blocks signed by `signer_key`'s address.
fn node_a(dir: &std::path::Path, signer_key: u64) -> op_p2p_node::NodeConfig {
    let mut c = dev_config(1);
    c.core.validator.unsafe_signer = dev_key(signer_key).address();
    c.core.block_time_secs = 1;
    c.rpc_addr = Some(local0());
    c.datadir = Some(dir.to_path_buf());
    c
}

async fn story(rt: Rt) {
    let dir = tempfile::tempdir().expect("temp dir");
    // B publishes with dev_key(0), the chain's current signer; A still has dev_key(5).
    let b = rt.spawn(sequencer_config(0)).await;
    let mut a = rt
        .spawn_with(
            node_a(dir.path(), 5),
            op_p2p_node::SpawnOptions::default().with_events(true),
        )
        .await;
    let mut events = a.events().expect("events");
    connect(&a, &b).await;
    let rpc = a.rpc_addr().expect("rpc");
    let b_id = b.peer_id();

    // Ten honest blocks at the block rate (one a second, as A's block time says).
    let started = Instant::now();
    for n in 1..=10 {
        publish_when_ready(&b, v4_block(n)).await;
        sleep(Duration::from_millis(1_000)).await;
    }
    let mut suspects = Vec::new();
    let mut rejected = 0;
    while let Ok(e) = events.try_recv() {
        match e {
            NodeEvent::SignerSuspect { address } => suspects.push(address),
            NodeEvent::Banned(r) => panic!("A banned someone: {r:?}"),
            NodeEvent::Disconnecting { peer, reason } if peer == b_id => {
                panic!("A disconnects B: {reason:?}")
            }
            NodeEvent::Verdict { reason, .. } => {
                assert_eq!(reason, op_p2p_core::Reason::WrongSigner);
                rejected += 1;
            }
            _ => {}
        }
    }
    assert!(rejected >= 9, "only {rejected} of B's blocks reached A");
    assert_eq!(
        suspects,
        vec![dev_key(0).address()],
        "one SignerSuspect for the new key (rate-limited)"
    );
    assert_eq!(connected(&a).await, 1, "B is still connected");
    assert_eq!(
        json_rpc_ok(rpc, "opp2pext_listBans", json!([])).await,
        json!([]),
        "no ban"
    );
    // /healthz: degraded, stale signer, served as JSON (the driver refreshes it each second).
    let health = eventually("healthz says stale_signer", || async {
        let r = http_get(rpc, "/healthz").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        let codes: Vec<String> = v["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .map(|r| r["code"].as_str().unwrap_or_default().to_string())
            .collect();
        codes.iter().any(|c| c == "stale_signer").then_some(v)
    })
    .await;
    assert_eq!(health["status"], "degraded");
    let metrics = http_get(rpc, "/metrics").await.text().to_string();
    assert!(
        metrics.contains(r#"op_p2p_health_reason{code="stale_signer"} 1"#),
        "{metrics}"
    );
    eprintln!(
        "stale signer: {rejected} blocks REJECTed in {:?}, no ban, health {health}",
        started.elapsed()
    );
    shutdown(a).await;

    // The operator fixes the signer and restarts A on the same data dir.
    let mut a = rt.spawn(node_a(dir.path(), 0)).await;
    let mut blocks = a.blocks().expect("blocks");
    // A redials B by itself, from its saved peer book: B is not locked out.
    let a = [a];
    wait_for_peers(&a, 1).await;
    let [a] = a;
    assert_eq!(
        json_rpc_ok(a.rpc_addr().expect("rpc"), "opp2pext_listBans", json!([])).await,
        json!([]),
        "nothing banned after the restart"
    );
    let mut published = Vec::new();
    for n in 100..105 {
        publish_when_ready(&b, v4_block(n)).await;
        published.push(n);
        sleep(Duration::from_millis(300)).await;
    }
    let mut got = Vec::new();
    while got.len() < published.len() {
        let blk = within(BOUND, "a block after the restart", blocks.next())
            .await
            .expect("A runs");
        got.push(blk.envelope.payload.as_v1().block_number);
    }
    got.sort_unstable();
    assert_eq!(got, published, "every block B published after the restart");
    shutdown(a).await;
    shutdown(b).await;
}

on_both_runtimes!(story);
