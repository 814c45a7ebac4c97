//! Where discv5 runs (`op_p2p_node::discovery::Discovery`): on tokio, on the node's own
//! runtime; on async-std, on a tokio runtime in a thread of its own (`op-p2p-discv5`) that
//! `stop` ends and joins. A start failure is a typed error on both, and discv5 really talks
//! to a peer on both hosts. Loopback only.
//!
//! The tests count this process's `op-p2p-discv5` threads, so they run one at a time.

use futures::StreamExt;
use futures::channel::mpsc;
use op_p2p_core::discovery::Bootnode;
use op_p2p_core::testkit::keypair;
use op_p2p_node::Runtime;
use op_p2p_node::discovery::{Discovery, DiscoveryConfig, DiscoveryError};
use op_p2p_tests::{
    BOUND, CHAIN, Rt, enr_node_id_hex, free_udp_port, one_at_a_time, threads_named, udp_free,
    wait_until, within,
};

/// The name of discv5's own thread on runtimes that are not tokio.
const DISCV5_THREAD: &str = "op-p2p-discv5";

/// Discovery for identity `keypair(i)` on 127.0.0.1:`udp_port`.
fn config(i: u64, udp_port: u16, bootnodes: Vec<Bootnode>) -> DiscoveryConfig {
    DiscoveryConfig {
        keypair: keypair(i),
        chain_id: CHAIN,
        listen_ip: std::net::Ipv4Addr::LOCALHOST.into(),
        udp_port,
        advertise_ip: None,
        tcp_port: 9222,
        bootnodes,
        seeds: vec![],
        public_only: false,
    }
}

/// Instantiates `async fn body<R: Runtime>(runtime: R, threads: usize)` on both hosts, one
/// test at a time; `threads` is how many discv5 threads of its own the host runs (async-std
/// one, tokio none).
macro_rules! on_both_hosts {
    ($($body:ident),* $(,)?) => {
        mod tokio_host {
            $( #[test] fn $body() {
                let _serial = super::one_at_a_time();
                super::Rt::Tokio.block_on(super::$body(op_p2p_tokio::TokioRuntime, 0));
            } )*
        }
        mod async_std_host {
            $( #[test] fn $body() {
                let _serial = super::one_at_a_time();
                super::Rt::AsyncStd.block_on(super::$body(op_p2p_async_std::AsyncStdRuntime, 1));
            } )*
        }
    };
}

/// Starts discovery on its own thread (async-std) or on the runtime (tokio), then stops it:
/// where stop joins a thread the UDP port is free when it returns and the thread is gone;
/// on tokio the port is released within a bounded wait (discv5's tasks wind down on the
/// runtime).
async fn discv5_runs_where_its_host_puts_it_and_stops<R: Runtime>(runtime: R, threads: usize) {
    let udp = free_udp_port();
    let (tx, _rx) = mpsc::channel(4);
    let d = Discovery::start(&runtime, config(7, udp, vec![]), tx)
        .await
        .expect("discv5 starts");
    assert!(d.enr.starts_with("enr:"), "{}", d.enr);
    assert_eq!(d.has_live_thread(), threads == 1);
    assert_eq!(threads_named(DISCV5_THREAD), threads);
    assert!(!udp_free(udp), "discv5 holds its UDP port");
    d.stop(&runtime).await;
    if threads == 1 {
        // stop returned after the join: the thread's runtime, and its socket, are gone.
        assert!(udp_free(udp), "the UDP port is released when stop returns");
        // The kernel reaps a joined thread's /proc entry a moment after the join.
        wait_until("the discv5 thread is gone", || {
            threads_named(DISCV5_THREAD) == 0
        })
        .await;
    } else {
        wait_until("the UDP port is released", || udp_free(udp)).await;
    }
}

/// discv5 cannot bind a UDP port already taken: `DiscoveryError::Start`, and no thread is
/// left behind (start joined it before returning the error).
async fn a_taken_udp_port_is_a_start_error<R: Runtime>(runtime: R, _threads: usize) {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (tx, _rx) = mpsc::channel(4);
    let r = Discovery::start(&runtime, config(8, port, vec![]), tx).await;
    assert!(matches!(r, Err(DiscoveryError::Start(_))), "{r:?}");
    wait_until("no discv5 thread left", || {
        threads_named(DISCV5_THREAD) == 0
    })
    .await;
}

/// Two discv5 services, B bootstrapped from A: A meets B over UDP and hands B's record to its
/// node (so the host really drives discv5, not only starts it).
async fn a_peer_that_contacts_us_is_handed_to_the_node<R: Runtime>(runtime: R, threads: usize) {
    let (a_tx, mut a_rx) = mpsc::channel(64);
    let a = Discovery::start(&runtime, config(20, 0, vec![]), a_tx)
        .await
        .expect("A starts");
    let boot: Bootnode = a.enr.parse().expect("A's record is a bootnode");
    let (b_tx, _b_rx) = mpsc::channel(64);
    let b = Discovery::start(&runtime, config(21, 0, vec![boot]), b_tx)
        .await
        .expect("B starts");
    assert_eq!(threads_named(DISCV5_THREAD), 2 * threads);
    let want = enr_node_id_hex(&b.enr);
    within(BOUND, "A hands B's record to its node", async {
        loop {
            let enr = a_rx.next().await.expect("A runs");
            if enr_node_id_hex(&enr) == want {
                return;
            }
        }
    })
    .await;
    b.stop(&runtime).await;
    a.stop(&runtime).await;
}

on_both_hosts!(
    discv5_runs_where_its_host_puts_it_and_stops,
    a_taken_udp_port_is_a_start_error,
    a_peer_that_contacts_us_is_handed_to_the_node,
);
