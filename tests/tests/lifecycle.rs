//! How a node stops, on both runtimes, with discovery, JSON-RPC and a data dir:
//! - `shutdown().await` returns once the state is written, the libp2p and HTTP listeners are
//!   closed, HTTP's last request is dropped and discv5 has stopped (on async-std its thread
//!   has been joined);
//! - dropping the `NodeHandle` without calling shutdown stops the node the same way in the
//!   background: the state is written (a ban survives a respawn), every port is released, the
//!   blocks stream ends, and an `AdminClient` kept from before answers `Unavailable`.
//!
//! The tests count this process's discv5 threads, so they run one at a time.

use std::path::Path;

use futures::StreamExt;
use op_p2p_core::admin::{AdminError, AdminRequest, AdminResponse};
use op_p2p_core::testkit::peer_id;
use op_p2p_node::NodeConfig;
use op_p2p_node::datadir::DataDir;
use op_p2p_tests::{
    BOUND, Rt, admin, closed_by_server, dev_config, eventually, free_udp_port, local0,
    on_both_runtimes, request_in_flight, shutdown, tcp_free, tcp_socket_addr, threads_named,
    udp_free, wait_until, within,
};

/// The name of discv5's own thread on async-std.
const DISCV5_THREAD: &str = "op-p2p-discv5";

/// Node `i` with discovery on a known UDP port (returned), JSON-RPC and the data dir `dir`.
fn full_config(i: u64, dir: &Path) -> (NodeConfig, u16) {
    let udp = free_udp_port();
    let mut c = dev_config(i);
    c.core.discovery = Some(Default::default());
    c.udp_port = udp;
    c.rpc_addr = Some(local0());
    c.datadir = Some(dir.to_path_buf());
    (c, udp)
}

/// The permanently blocked peers saved in the data dir at `dir`, if any state is saved.
fn saved_blocks(dir: &Path) -> Option<Vec<libp2p::PeerId>> {
    let state = DataDir::open(dir).unwrap().load_state().unwrap()?;
    Some(state.gater.blocked_peers)
}

async fn shutdown_returns_once_state_is_written_and_http_and_discv5_have_stopped(rt: Rt) {
    let dir = tempfile::tempdir().unwrap();
    let (config, udp) = full_config(4, dir.path());
    let node = rt.spawn(config).await;
    assert!(node.enr().is_some(), "discv5 runs");
    let on_own_thread = usize::from(rt == Rt::AsyncStd);
    assert_eq!(threads_named(DISCV5_THREAD), on_own_thread);
    assert!(!udp_free(udp), "discv5 holds its port");
    let rpc = node.rpc_addr().unwrap();
    let tcp = tcp_socket_addr(&node.listen_addrs()[0]);
    assert!(!tcp_free(rpc) && !tcp_free(tcp), "the node listens");
    // A JSON-RPC request whose body never comes: HTTP can only stop by dropping it after the
    // grace period, and shutdown must wait for that.
    let mut stalled = request_in_flight(rpc).await;
    let client = node.admin();
    assert_eq!(
        client.call(AdminRequest::BlockPeer(peer_id(40))).await,
        Ok(AdminResponse::Null)
    );
    assert!(!node.is_stopped());
    shutdown(node).await;

    // All of it at once, no waiting: shutdown returned after each step.
    assert_eq!(
        client.call(AdminRequest::PeerStats).await,
        Err(AdminError::Unavailable)
    );
    assert_eq!(saved_blocks(dir.path()), Some(vec![peer_id(40)]));
    assert!(
        tcp_free(rpc),
        "the HTTP listener is closed when shutdown returns"
    );
    assert!(
        closed_by_server(&mut stalled).await,
        "the request in flight is dropped when shutdown returns"
    );
    assert!(
        tcp_free(tcp),
        "the libp2p listener is closed when shutdown returns"
    );
    if rt == Rt::AsyncStd {
        assert!(
            udp_free(udp),
            "discv5's thread was joined: its socket is closed"
        );
        // The kernel reaps a joined thread's /proc entry a moment after the join.
        wait_until("the discv5 thread is gone", || {
            threads_named(DISCV5_THREAD) == 0
        })
        .await;
    } else {
        // On tokio discv5's own tasks wind down on the runtime after it is stopped.
        wait_until("the discv5 port is released", || udp_free(udp)).await;
    }
}

async fn dropping_the_handle_stops_the_node_gracefully_in_the_background(rt: Rt) {
    let dir = tempfile::tempdir().unwrap();
    let (config, udp) = full_config(6, dir.path());
    let mut node = rt.spawn(config).await;
    let rpc = node.rpc_addr().unwrap();
    let tcp = tcp_socket_addr(&node.listen_addrs()[0]);
    let mut blocks = node.blocks().unwrap();
    let client = node.admin();
    assert_eq!(
        client.call(AdminRequest::BlockPeer(peer_id(41))).await,
        Ok(AdminResponse::Null)
    );
    drop(node);

    // Stopping runs in the background: each effect is awaited with a deadline.
    eventually("the kept admin client answers Unavailable", || async {
        match client.call(AdminRequest::PeerStats).await {
            Err(AdminError::Unavailable) => Some(()),
            Ok(_) => None,
            Err(e) => panic!("{e:?}"),
        }
    })
    .await;
    let end = within(BOUND, "the blocks stream ends", blocks.next()).await;
    assert!(end.is_none(), "no block was published");
    eventually("the state is written", || async {
        saved_blocks(dir.path()).filter(|b| !b.is_empty())
    })
    .await;
    assert_eq!(saved_blocks(dir.path()), Some(vec![peer_id(41)]));
    wait_until("every port is released", || {
        tcp_free(rpc) && tcp_free(tcp) && udp_free(udp)
    })
    .await;
    wait_until("no discv5 thread is left", || {
        threads_named(DISCV5_THREAD) == 0
    })
    .await;

    // The same node on the same data dir has its ban back.
    let mut again = dev_config(6);
    again.datadir = Some(dir.path().to_path_buf());
    let again = rt.spawn(again).await;
    assert_eq!(
        admin(&again, AdminRequest::ListBlockedPeers).await,
        AdminResponse::BlockedPeers(vec![peer_id(41)])
    );
    shutdown(again).await;
}

on_both_runtimes!(
    one_at_a_time:
    shutdown_returns_once_state_is_written_and_http_and_discv5_have_stopped,
    dropping_the_handle_stops_the_node_gracefully_in_the_background,
);
