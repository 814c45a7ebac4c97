//! One suite, every runtime: each test body is written once as an async fn over [`Rt`] and
//! instantiated for tokio and for async-std; the mixed tests put both in one network. Real
//! sockets on loopback; every test is bounded by
//! [`op_p2p_tests::BOUND`]. Drop and shutdown semantics are in `lifecycle.rs`.
//!
//! The helpers (`op_p2p_tests`) time and connect with async-std's `async-io`, which runs under
//! any executor, so the bodies need nothing from the runtime they are instantiated for but
//! `spawn`.

use std::path::Path;

use futures::StreamExt;
use op_p2p_core::admin::{AdminRequest, AdminResponse};
use op_p2p_core::testkit::peer_id;
use op_p2p_core::{BlockVersion, Verdict};
use op_p2p_node::datadir::DataDir;
use op_p2p_node::driver::NodeEvent;
use op_p2p_node::{NodeConfig, NodeHandle, SpawnError, SpawnOptions};
use op_p2p_tests::{
    BOUND, Rt, admin, block_numbers, bootstrapped, connect, connected, dev_config, eventually,
    json_rpc_ok, local0, on_both_runtimes, publish_when_ready, sequencer_config, shutdown,
    spawn_bootnode, tcp_port, v4_block, wait_for_peers, with_keypair, within,
};
use serde_json::json;

// ---- the bodies, written once ----

async fn two_nodes_gossip_a_v4_block(rt: Rt) {
    let a = rt.spawn(sequencer_config(0)).await;
    let mut b = rt
        .spawn_with(dev_config(1), SpawnOptions::default().with_events(true))
        .await;
    let mut events = b.events().expect("events on");
    connect(&b, &a).await;
    let mut blocks = b.blocks().unwrap();
    publish_when_ready(&a, v4_block(7)).await;
    let got = blocks.next().await.unwrap();
    assert_eq!(got.version, BlockVersion::V4);
    let v1 = got.envelope.payload.as_v1();
    assert_eq!(v1.block_number, 7);
    // The ACCEPT verdict event names the block (what `--events-json` prints).
    let accepted = loop {
        match within(BOUND, "the accept event", events.next()).await {
            Some(NodeEvent::Verdict {
                verdict: Verdict::Accept,
                block,
                ..
            }) => break block,
            Some(_) => {}
            None => panic!("events ended"),
        }
    };
    assert_eq!(accepted, Some((7, v1.block_hash)));
    shutdown(a).await;
    shutdown(b).await;
}

async fn admin_connect_peer_over_json_rpc(rt: Rt) {
    let mut c = dev_config(2);
    c.rpc_addr = Some(local0());
    let a = rt.spawn(c).await;
    let b = rt.spawn(dev_config(3)).await;
    let rpc = a.rpc_addr().expect("rpc served");
    let target = b.listen_addrs()[0].to_string();
    let v = json_rpc_ok(rpc, "opp2p_connectPeer", json!([target])).await;
    assert_eq!(v, serde_json::Value::Null);
    assert_eq!(connected(&a).await, 1);
    // The other side sees the connection too (the event may trail the dialer's answer).
    eventually("B sees A", || async {
        (connected(&b).await == 1).then_some(())
    })
    .await;
    let me = json_rpc_ok(rpc, "opp2p_self", json!([])).await;
    assert_eq!(me["peerID"], json!(a.peer_id().to_string()), "{me}");
    shutdown(a).await;
    shutdown(b).await;
}

/// A dial goes out from a fresh local port, not from our listen port (libp2p's default reuse,
/// which the async-std transport never did): with reuse, every connection a node opens shares
/// one source port, and a dial fails with EADDRINUSE when that pair is still held (seen on
/// tokio in CI: "Failed to negotiate transport protocol(s) ... Address already in use").
async fn dials_leave_from_a_fresh_port_not_the_listen_port(rt: Rt) {
    let a = rt.spawn(dev_config(6)).await;
    let mut b = rt
        .spawn_with(dev_config(7), SpawnOptions::default().with_events(true))
        .await;
    let mut events = b.events().expect("events");
    connect(&a, &b).await;
    let from = loop {
        match within(BOUND, "B sees A", events.next()).await {
            Some(NodeEvent::PeerConnected {
                addr,
                outbound: false,
                ..
            }) => break addr,
            Some(_) => {}
            None => panic!("B stopped"),
        }
    };
    let listen_port = tcp_port(&a.listen_addrs()[0]);
    assert_ne!(
        tcp_port(&from),
        listen_port,
        "A dialled from its listen port: {from}"
    );
    shutdown(a).await;
    shutdown(b).await;
}

async fn a_taken_http_port_is_a_typed_error(rt: Rt) {
    let taken = std::net::TcpListener::bind(local0()).unwrap();
    let addr = taken.local_addr().unwrap();
    let mut c = dev_config(5);
    c.rpc_addr = Some(addr);
    match rt.try_spawn(c, Default::default()).await {
        Err(SpawnError::Http { addr: a, .. }) => assert_eq!(a, addr),
        other => panic!("{other:?}"),
    }
}

on_both_runtimes!(
    two_nodes_gossip_a_v4_block,
    admin_connect_peer_over_json_rpc,
    dials_leave_from_a_fresh_port_not_the_listen_port,
    a_taken_http_port_is_a_typed_error,
);

// ---- across runtimes ----

/// 5 tokio and 5 async-std nodes find each other through an async-std bootnode; a sequencer
/// on each side publishes; every node gets every block.
#[test]
fn a_mixed_mesh_delivers_every_block_to_every_node() {
    Rt::Tokio.block_on(async {
        let (boot, boot_enr) = spawn_bootnode(Rt::AsyncStd, 100).await;
        let mut nodes = Vec::new();
        for i in 0..10u64 {
            let rt = if i < 5 { Rt::Tokio } else { Rt::AsyncStd };
            // Node 0 (tokio) and node 5 (async-std) sequence with the same key.
            let config = match i {
                0 | 5 => sequencer_config(10 + i),
                _ => dev_config(10 + i),
            };
            nodes.push(rt.spawn(bootstrapped(config, &boot_enr)).await);
        }
        wait_for_peers(&nodes, 3).await;
        let mut streams: Vec<_> = nodes.iter_mut().map(|n| n.blocks().unwrap()).collect();
        for number in 1..=3u64 {
            publish_when_ready(&nodes[0], v4_block(number)).await;
        }
        for number in 4..=6u64 {
            publish_when_ready(&nodes[5], v4_block(number)).await;
        }
        for (i, s) in streams.iter_mut().enumerate() {
            // A sequencer does not deliver its own blocks back to itself.
            let want: Vec<u64> = match i {
                0 => vec![4, 5, 6],
                5 => vec![1, 2, 3],
                _ => vec![1, 2, 3, 4, 5, 6],
            };
            assert_eq!(block_numbers(s, want.len()).await, want, "node {i}");
        }
        for n in nodes {
            shutdown(n).await;
        }
        shutdown(boot).await;
    });
}

/// Node 0's config with the key of the data dir at `dir` (created from `fresh_secret` if the
/// dir has none).
fn keyed_config(dir: &Path, fresh_secret: u8) -> NodeConfig {
    let keypair = DataDir::open(dir)
        .unwrap()
        .load_or_create_key(None, [fresh_secret; 32])
        .unwrap();
    let mut c = with_keypair(dev_config(0), keypair);
    c.datadir = Some(dir.to_path_buf());
    c
}

async fn blocked(node: &NodeHandle) -> Vec<libp2p::PeerId> {
    match admin(node, AdminRequest::ListBlockedPeers).await {
        AdminResponse::BlockedPeers(p) => p,
        other => panic!("{other:?}"),
    }
}

/// A node moves tokio -> async-std -> tokio on one data dir and keeps its peer id and bans.
#[test]
fn a_node_restarted_on_the_other_runtime_keeps_its_identity_and_bans() {
    Rt::Tokio.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let first = Rt::Tokio.spawn(keyed_config(dir.path(), 0x11)).await;
        let id = first.peer_id();
        admin(&first, AdminRequest::BlockPeer(peer_id(50))).await;
        shutdown(first).await;

        // A different fresh secret: the key must come from the data dir.
        let second = Rt::AsyncStd.spawn(keyed_config(dir.path(), 0x22)).await;
        assert_eq!(second.peer_id(), id);
        assert_eq!(blocked(&second).await, vec![peer_id(50)]);
        admin(&second, AdminRequest::BlockPeer(peer_id(51))).await;
        shutdown(second).await;

        let third = Rt::Tokio.spawn(keyed_config(dir.path(), 0x33)).await;
        assert_eq!(third.peer_id(), id);
        let mut got = blocked(&third).await;
        got.sort();
        let mut want = vec![peer_id(50), peer_id(51)];
        want.sort();
        assert_eq!(got, want);
        shutdown(third).await;
    });
}

/// Both runtimes box spawn's start-up state machine at once, so the future an embedder awaits
/// is a pointer (unboxed it was 14–19 KB in a debug build and overflowed a 2 MiB thread's
/// stack once nested in a test body).
#[test]
fn spawn_futures_are_small_on_both_runtimes() {
    // Not polled: only their sizes matter.
    let sizes = [
        (
            "tokio",
            std::mem::size_of_val(&op_p2p_tokio::spawn(dev_config(1), Default::default())),
        ),
        (
            "async-std",
            std::mem::size_of_val(&op_p2p_async_std::spawn(dev_config(2), Default::default())),
        ),
    ];
    for (rt, size) in sizes {
        assert!(
            size <= 2 * std::mem::size_of::<usize>(),
            "{rt}: spawn's future is {size} bytes"
        );
    }
}
