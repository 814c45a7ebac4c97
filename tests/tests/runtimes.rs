//! One suite, every runtime: each test body is written once as an async fn over [`Rt`] and
//! instantiated for tokio and for async-std; the mixed tests put both in one network. Real
//! sockets on loopback; every test is bounded by [`BOUND`].
//!
//! Timers and test sockets here are async-std's (`async-io`), which run under any executor, so
//! the bodies need nothing from the runtime they are instantiated for but `spawn`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use async_std::future::timeout;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::multiaddr::Protocol;
use op_p2p_core::admin::{AdminError, AdminRequest, AdminResponse};
use op_p2p_core::alloy_primitives::Address;
use op_p2p_core::discovery::Bootnode;
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::testkit::{BlockBuilder, dev_key, keypair, peer_id};
use op_p2p_core::{BlockVersion, Config, PublishRequest};
use op_p2p_node::datadir::DataDir;
use op_p2p_node::{NodeConfig, NodeHandle};

const CHAIN: u64 = 901;
/// Each test finishes in a few seconds on loopback; this only turns a hang into a failure.
const BOUND: Duration = Duration::from_secs(45);

/// The runtime a node (or a test body) runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rt {
    Tokio,
    AsyncStd,
}

impl Rt {
    /// Runs `body` to completion on this runtime, bounded by [`BOUND`].
    fn block_on<F: Future<Output = ()> + Send + 'static>(self, body: F) {
        // Boxed: the node futures are large in debug builds, and a test thread's stack is small.
        let bounded =
            Box::pin(async move { timeout(BOUND, Box::pin(body)).await.expect("bounded") });
        match self {
            Rt::Tokio => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(bounded),
            Rt::AsyncStd => async_std::task::block_on(bounded),
        }
    }

    /// Starts a node on this runtime. A tokio node needs the caller to be inside a tokio
    /// runtime; an async-std node is started on async-std's executor whatever the caller's.
    async fn try_spawn(self, config: NodeConfig) -> Result<NodeHandle, op_p2p_tokio::SpawnError> {
        match self {
            Rt::Tokio => op_p2p_tokio::spawn(config, Default::default()).await,
            Rt::AsyncStd => {
                async_std::task::spawn(op_p2p_async_std::spawn(config, Default::default())).await
            }
        }
    }

    async fn spawn(self, config: NodeConfig) -> NodeHandle {
        self.try_spawn(config).await.expect("node starts")
    }
}

fn now_secs() -> u64 {
    op_p2p_node::system_now_ms() / 1000
}

fn config(i: u64, sequencer: bool) -> NodeConfig {
    let kp = keypair(i);
    let signer: Address = dev_key(0).address();
    let mut core = Config::new(
        CHAIN,
        signer,
        ForkSchedule::ALL_AT_GENESIS,
        2,
        kp.public().to_peer_id(),
    );
    core.rng_seed = i;
    if sequencer {
        core.sequencer_key = Some(dev_key(0));
    }
    NodeConfig::local(core, kp)
}

async fn call(node: &NodeHandle, request: AdminRequest) -> AdminResponse {
    node.admin().call(request).await.expect("admin call")
}

async fn connected(node: &NodeHandle) -> u64 {
    match call(node, AdminRequest::PeerStats).await {
        AdminResponse::PeerStats(s) => s.connected,
        other => panic!("{other:?}"),
    }
}

/// `opp2p_connectPeer` from `from` to `to`, over the admin client.
async fn connect(from: &NodeHandle, to: &NodeHandle) {
    let mut addr = to.listen_addrs()[0].clone();
    let Some(Protocol::P2p(peer)) = addr.pop() else {
        panic!("no /p2p/ in {addr}")
    };
    let r = call(from, AdminRequest::ConnectPeer { addr, peer }).await;
    assert_eq!(r, AdminResponse::Null);
}

fn v4_block(number: u64) -> PublishRequest {
    let (payload, root) = BlockBuilder::new(BlockVersion::V4, number, now_secs()).build();
    PublishRequest::Sign {
        payload: Box::new(payload),
        parent_beacon_block_root: root,
    }
}

/// Publishes once gossipsub has a peer on the topic (the mesh forms on heartbeats).
async fn publish_when_ready(node: &NodeHandle, req: PublishRequest) {
    for _ in 0..100 {
        if node.publish(req.clone()).await.is_ok() {
            return;
        }
        async_std::task::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not publish");
}

/// One JSON-RPC call over HTTP (a plain socket, `Connection: close`); returns the body.
async fn json_rpc(addr: SocketAddr, body: &str) -> serde_json::Value {
    let mut s = async_std::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    serde_json::from_str(raw.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

// ---- the bodies, written once ----

async fn two_nodes_gossip_a_v4_block(rt: Rt) {
    let a = rt.spawn(config(0, true)).await;
    let mut b = rt.spawn(config(1, false)).await;
    connect(&b, &a).await;
    let mut blocks = b.blocks().unwrap();
    publish_when_ready(&a, v4_block(7)).await;
    let got = blocks.next().await.unwrap();
    assert_eq!(got.version, BlockVersion::V4);
    assert_eq!(got.envelope.payload.as_v1().block_number, 7);
    a.shutdown().await;
    b.shutdown().await;
}

async fn admin_connect_peer_over_json_rpc(rt: Rt) {
    let mut c = config(2, false);
    c.rpc_addr = Some("127.0.0.1:0".parse().unwrap());
    let a = rt.spawn(c).await;
    let b = rt.spawn(config(3, false)).await;
    let rpc = a.rpc_addr().expect("rpc served");
    let target = b.listen_addrs()[0].to_string();
    let v = json_rpc(
        rpc,
        &format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"opp2p_connectPeer","params":["{target}"]}}"#
        ),
    )
    .await;
    assert_eq!(v["result"], serde_json::Value::Null, "{v}");
    assert_eq!(connected(&a).await, 1);
    // The other side sees the connection too (the event may trail the dialer's answer).
    while connected(&b).await != 1 {
        async_std::task::sleep(Duration::from_millis(20)).await;
    }
    let v = json_rpc(
        rpc,
        r#"{"jsonrpc":"2.0","id":2,"method":"opp2p_self","params":[]}"#,
    )
    .await;
    assert_eq!(
        v["result"]["peerID"],
        serde_json::json!(a.peer_id().to_string()),
        "{v}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

async fn shutdown_persists_and_releases_everything(rt: Rt) {
    let dir = tempfile::tempdir().unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    drop(udp);
    let mut c = config(4, false);
    c.discovery = true;
    c.core.discovery = Some(Default::default());
    c.udp_port = udp_port;
    c.rpc_addr = Some("127.0.0.1:0".parse().unwrap());
    c.datadir = Some(dir.path().to_path_buf());
    let node = rt.spawn(c).await;
    assert!(node.enr().is_some(), "discv5 runs");
    let rpc = node.rpc_addr().unwrap();
    let tcp = node.listen_addrs()[0].clone();
    let admin = node.admin();
    assert_eq!(
        admin.call(AdminRequest::BlockPeer(peer_id(40))).await,
        Ok(AdminResponse::Null)
    );
    node.shutdown().await;
    // The driver is gone, the state is on disk.
    assert_eq!(
        admin.call(AdminRequest::PeerStats).await,
        Err(AdminError::Unavailable)
    );
    let state = DataDir::open(dir.path()).unwrap().load_state().unwrap();
    assert!(state.is_some(), "state written at shutdown");
    // The libp2p listener, the HTTP listener and discv5's UDP socket are released (the
    // last two close as their tasks wind down: allow them a moment).
    let tcp_addr = match (tcp.iter().next(), tcp.iter().nth(1)) {
        (Some(Protocol::Ip4(ip)), Some(Protocol::Tcp(p))) => SocketAddr::new(ip.into(), p),
        _ => panic!("{tcp}"),
    };
    let mut released = false;
    for _ in 0..100 {
        let http_closed = async_std::net::TcpStream::connect(rpc).await.is_err();
        let tcp_closed = async_std::net::TcpStream::connect(tcp_addr).await.is_err();
        let udp_free = std::net::UdpSocket::bind(("127.0.0.1", udp_port)).is_ok();
        if http_closed && tcp_closed && udp_free {
            released = true;
            break;
        }
        async_std::task::sleep(Duration::from_millis(20)).await;
    }
    assert!(released, "sockets still held after shutdown");
}

async fn a_taken_http_port_is_a_typed_error(rt: Rt) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut c = config(5, false);
    c.rpc_addr = Some(addr);
    match rt.try_spawn(c).await {
        Err(op_p2p_tokio::SpawnError::Http { addr: a, .. }) => assert_eq!(a, addr),
        other => panic!("{other:?}"),
    }
}

macro_rules! on_every_runtime {
    ($($body:ident),* $(,)?) => {
        mod tokio_runtime {
            $( #[test] fn $body() { super::Rt::Tokio.block_on(super::$body(super::Rt::Tokio)); } )*
        }
        mod async_std_runtime {
            $( #[test] fn $body() { super::Rt::AsyncStd.block_on(super::$body(super::Rt::AsyncStd)); } )*
        }
    };
}

on_every_runtime!(
    two_nodes_gossip_a_v4_block,
    admin_connect_peer_over_json_rpc,
    shutdown_persists_and_releases_everything,
    a_taken_http_port_is_a_typed_error,
);

// ---- across runtimes ----

/// 5 tokio and 5 async-std nodes find each other through an async-std bootnode; a sequencer
/// on each side publishes; every node gets every block.
#[test]
fn a_mixed_mesh_delivers_every_block_to_every_node() {
    Rt::Tokio.block_on(async {
        let mut boot = config(100, false);
        boot.discovery = true;
        boot.core.discovery = Some(Default::default());
        let boot = Rt::AsyncStd.spawn(boot).await;
        let boot_enr: Bootnode = boot.enr().unwrap().parse().unwrap();
        let mut nodes = Vec::new();
        for i in 0..10u64 {
            let rt = if i < 5 { Rt::Tokio } else { Rt::AsyncStd };
            // Node 0 (tokio) and node 5 (async-std) sequence with the same key.
            let mut c = config(10 + i, i == 0 || i == 5);
            c.discovery = true;
            c.core.discovery = Some(Default::default());
            c.bootnodes = vec![boot_enr.clone()];
            nodes.push(rt.spawn(c).await);
        }
        loop {
            let mut min = u64::MAX;
            for n in &nodes {
                min = min.min(connected(n).await);
            }
            if min >= 3 {
                break;
            }
            async_std::task::sleep(Duration::from_millis(200)).await;
        }
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
            let mut got = Vec::new();
            while got.len() < want.len() {
                got.push(
                    s.next()
                        .await
                        .unwrap()
                        .envelope
                        .payload
                        .as_v1()
                        .block_number,
                );
            }
            got.sort();
            assert_eq!(got, want, "node {i}");
        }
        for n in nodes {
            n.shutdown().await;
        }
        boot.shutdown().await;
    });
}

fn keyed_config(dir: &Path, fresh_secret: u8) -> NodeConfig {
    let keypair = DataDir::open(dir)
        .unwrap()
        .load_or_create_key(None, [fresh_secret; 32])
        .unwrap();
    let mut c = config(0, false);
    c.core.local_peer_id = keypair.public().to_peer_id();
    c.keypair = keypair;
    c.datadir = Some(dir.to_path_buf());
    c
}

async fn blocked(node: &NodeHandle) -> Vec<libp2p::PeerId> {
    match call(node, AdminRequest::ListBlockedPeers).await {
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
        call(&first, AdminRequest::BlockPeer(peer_id(50))).await;
        first.shutdown().await;

        // A different fresh secret: the key must come from the data dir.
        let second = Rt::AsyncStd.spawn(keyed_config(dir.path(), 0x22)).await;
        assert_eq!(second.peer_id(), id);
        assert_eq!(blocked(&second).await, vec![peer_id(50)]);
        call(&second, AdminRequest::BlockPeer(peer_id(51))).await;
        second.shutdown().await;

        let third = Rt::Tokio.spawn(keyed_config(dir.path(), 0x33)).await;
        assert_eq!(third.peer_id(), id);
        let mut got = blocked(&third).await;
        got.sort();
        let mut want = vec![peer_id(50), peer_id(51)];
        want.sort();
        assert_eq!(got, want);
        third.shutdown().await;
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
            std::mem::size_of_val(&op_p2p_tokio::spawn(config(1, false), Default::default())),
        ),
        (
            "async-std",
            std::mem::size_of_val(&op_p2p_async_std::spawn(
                config(2, false),
                Default::default(),
            )),
        ),
    ];
    for (rt, size) in sizes {
        assert!(
            size <= 2 * std::mem::size_of::<usize>(),
            "{rt}: spawn's future is {size} bytes"
        );
    }
}
