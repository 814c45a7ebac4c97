//! The `op-p2p node` binary as an outsider meets it (the "Exposure" table of
//! `tests/ADVERSARIAL.md`): its metrics-only listener refuses the admin API, and at a 1,024
//! open-file limit it keeps every descriptor it needs through a flood of silent sockets and
//! handshake churn. Loopback only; every child is killed when its handle drops.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use op_p2p_core::testkit::dev_key;
use op_p2p_node::datadir::BANS_FILE;
use op_p2p_tests::{
    HttpRequest, NodeProcess, Rt, churn, fd_count_of, http_get, json_rpc_ok, publish_when_ready,
    rss_kib_of, sequencer_config, shutdown, tcp_socket_addr, v4_block,
};
use serde_json::json;
use tokio::process::Command;

/// `op-p2p node` on the dev chain with `dev_key(0)` as signer (see [`op_p2p_tests::node_command`]).
fn node_command(datadir: &Path, wrapper: &[&str], extra: &[&str]) -> Command {
    op_p2p_tests::node_command(
        env!("CARGO_BIN_EXE_op-p2p"),
        dev_key(0).address(),
        datadir,
        wrapper,
        extra,
    )
}

// ---------------------------------------------------------------------------------------------
// The metrics-only listener
// ---------------------------------------------------------------------------------------------

/// `--rpc.disabled --metrics.enabled`: the one HTTP listener the binary runs serves metrics and
/// health; the admin call that blocked every address through it is a 404.
#[test]
fn the_binarys_metrics_listener_refuses_the_admin_api() {
    Rt::Tokio.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = NodeProcess::start(node_command(
            &dir.path().join("data"),
            &[],
            &[
                "--rpc.disabled",
                "--metrics.enabled",
                "--metrics.addr",
                "127.0.0.1",
                "--metrics.port",
                "0",
            ],
        ))
        .await;
        // The one listener it runs (logged as "/metrics only").
        let metrics = node.metrics.or(node.rpc).expect("an HTTP listener");
        let block_all = HttpRequest::json_rpc(
            "opp2p_blockSubnet",
            json!([{"IP": "0.0.0.0", "Mask": "AAAAAA=="}]),
        );
        let r = block_all.send(metrics).await;
        assert_eq!(r.status, 404, "{r:?}");
        assert_eq!(
            (node.rpc, node.metrics),
            (None, Some(metrics)),
            "a metrics-only listener, no RPC"
        );
        let r = http_get(metrics, "/metrics").await;
        assert_eq!(r.status, 200);
        assert!(r.text().contains("op_p2p_p2p_peer_count"), "{}", r.text());
        let r = http_get(metrics, "/healthz").await;
        assert_eq!(r.status, 200);
        assert!(r.json()["status"].is_string(), "{}", r.text());
        node.kill().await;
    });
}

// ---------------------------------------------------------------------------------------------
// Descriptor exhaustion at a 1,024 limit
// ---------------------------------------------------------------------------------------------

/// Silent TCP sockets held open at once against the binary's libp2p port.
const SILENT: usize = 2_000;
/// Fresh identities that complete TCP + Noise + Yamux and drop (half at once, half after
/// identify).
const CHURNED: usize = 1_000;
/// Descriptors the binary may hold above its baseline once the flood is over.
const FD_MARGIN: usize = 16;
/// `opp2p_blockAddr` during the flood answers within this (measured: a few ms; with the
/// pending-inbound cap removed the listener ran out of descriptors and it took 20 s).
const ADMIN_WITHIN: Duration = Duration::from_secs(2);
/// An honest block every so often, during and after the flood.
const HONEST_EVERY: Duration = Duration::from_millis(500);

/// The binary under `prlimit --nofile=1024` (soft and hard: it raises its soft limit to the
/// hard one at start) against 2,000 silent sockets held at once, then 1,000 fresh identities
/// that handshake and drop, while an in-process sequencer it is connected to publishes a block
/// every 500 ms. Every honest block arrives (its `--events-json` ACCEPT lines), its
/// descriptors stay within what its budget line says it needs, `opp2p_blockAddr` during the
/// flood answers and reaches `bans.json`, and afterwards its descriptors are back within
/// `FD_MARGIN` of the baseline.
#[test]
fn at_a_1024_descriptor_limit_the_binary_survives_silent_sockets_and_handshake_churn() {
    Rt::Tokio.block_on_within(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().expect("temp dir");
        let datadir = dir.path().join("data");
        let mut node = NodeProcess::start(node_command(
            &datadir,
            &["prlimit", "--nofile=1024"],
            // The accept rate per source (16, then one per 4 s) would refuse nearly all of
            // this flood at accept, since it all comes from 127.0.0.1; it is off here so the
            // descriptor bounds are measured against handshakes that really happen. The rate
            // has its own test (tests/tests/adversarial.rs, the per-IP cap test).
            &["--rpc.port", "0", "--events-json", "--p2p.accept.burst=0"],
        ))
        .await;
        let pid = node.pid();
        let budget = node
            .log_line("open-file limit")
            .expect("the budget line")
            .to_owned();
        eprintln!("budget: {budget}");
        assert!(
            budget.contains("soft=1024") && budget.contains("hard=1024"),
            "{budget}"
        );
        let need: usize = budget
            .split(" need=")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("need=N in the budget line");
        assert!(need < 1024, "the node's caps fit in 1,024: {budget}");
        let rpc = node.rpc.expect("RPC on");
        let target = node.listen_addrs[0].clone();

        // The honest sequencer on 127.0.0.2, dialled by the binary (so it is 127.0.0.2 to the
        // binary; the attackers are all 127.0.0.1, which gossipsub's colocation penalty would
        // otherwise share with it).
        let mut s = sequencer_config(0);
        s.listen_ip = Ipv4Addr::new(127, 0, 0, 2).into();
        let sequencer = Rt::Tokio.spawn(s).await;
        let seq_addr = sequencer.listen_addrs()[0].to_string();
        json_rpc_ok(rpc, "opp2p_connectPeer", json!([seq_addr])).await;
        publish_when_ready(&sequencer, v4_block(1)).await;
        let mut accepted = BTreeSet::new();
        let t = Instant::now();
        while !accepted.contains(&1) {
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "block 1 never arrived"
            );
            next_accepted(&mut node, &mut accepted).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (fds_before, rss_before) = (fd_count_of(pid), rss_kib_of(pid));

        let port_addr = tcp_socket_addr(&target);
        let flood = async {
            // 1. Silent sockets, all held at once, an admin write meanwhile.
            let opened = Instant::now();
            let mut silent = Vec::with_capacity(SILENT);
            for _ in 0..SILENT {
                silent.push(
                    tokio::net::TcpStream::connect(port_addr)
                        .await
                        .expect("the node's listener accepts TCP"),
                );
            }
            let open_time = opened.elapsed();
            let t = Instant::now();
            let r = json_rpc_ok(rpc, "opp2p_blockAddr", json!(["10.9.8.7"])).await;
            let admin_latency = t.elapsed();
            assert_eq!(r, serde_json::Value::Null);
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(silent);
            // 2. Fresh identities that handshake and drop.
            let churned = Instant::now();
            let ended = churn(target.clone(), CHURNED, Duration::ZERO).await;
            (open_time, admin_latency, churned.elapsed(), ended)
        };
        // While the flood runs: an honest block every HONEST_EVERY, the binary's events read,
        // its descriptors sampled every 20 ms.
        let mut published = 1;
        let mut honest = tokio::time::interval(HONEST_EVERY);
        let mut sample = tokio::time::interval(Duration::from_millis(20));
        let mut max_fds = fds_before;
        let mut flood = std::pin::pin!(flood);
        let (open_time, admin_latency, churn_time, ended) = loop {
            tokio::select! {
                out = &mut flood => break out,
                _ = honest.tick() => {
                    published += 1;
                    sequencer.publish(v4_block(published)).await.expect("publish");
                }
                _ = sample.tick() => max_fds = max_fds.max(fd_count_of(pid)),
                _ = next_accepted(&mut node, &mut accepted) => {}
            }
        };
        max_fds = max_fds.max(fd_count_of(pid));
        let rss_during = rss_kib_of(pid);

        // Two more honest blocks after the flood, then every one must have arrived.
        for _ in 0..2 {
            honest.tick().await;
            published += 1;
            sequencer
                .publish(v4_block(published))
                .await
                .expect("publish");
        }
        let t = Instant::now();
        while accepted.len() < published as usize && t.elapsed() < Duration::from_secs(10) {
            let _ = tokio::time::timeout(
                Duration::from_millis(200),
                next_accepted(&mut node, &mut accepted),
            )
            .await;
        }
        let missing: Vec<u64> = (1..=published).filter(|n| !accepted.contains(n)).collect();

        // Descriptors back near the baseline; the blocked address persisted.
        let t = Instant::now();
        let mut fds_after = fd_count_of(pid);
        while fds_after > fds_before + FD_MARGIN && t.elapsed() < Duration::from_secs(15) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            fds_after = fd_count_of(pid);
        }
        let rss_after = rss_kib_of(pid);
        let bans = datadir.join(BANS_FILE);
        let t = Instant::now();
        let mut persisted = false;
        while !persisted && t.elapsed() < Duration::from_secs(5) {
            persisted = std::fs::read_to_string(&bans).is_ok_and(|s| s.contains("10.9.8.7"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "fd flood at soft=hard=1024 (need {need}): {SILENT} silent sockets opened in \
             {open_time:?}, opp2p_blockAddr answered in {admin_latency:?}; {CHURNED} fresh \
             identities in {churn_time:?} ended {ended:?}; binary fds before {fds_before}, max \
             during {max_fds}, after {fds_after}; RSS before {} KiB, after the flood {} KiB, \
             settled {} KiB; honest blocks published {published}, accepted {}",
            rss_before,
            rss_during,
            rss_after,
            accepted.len()
        );
        assert!(node.running(), "the binary is still running");
        assert!(
            admin_latency < ADMIN_WITHIN,
            "opp2p_blockAddr took {admin_latency:?} while the silent sockets were open"
        );
        assert!(missing.is_empty(), "honest blocks lost: {missing:?}");
        // Loopback is capped like any IP (10 peers, 8 handshakes in progress): most identities
        // are refused at accept or right after the handshake; the rest complete it and drop.
        // All of them reached the node, and at least a full per-source share of handshakes
        // completed (measured: 86 of 1,000 with the share of 8).
        assert_eq!(
            ended.values().sum::<usize>(),
            CHURNED,
            "every churned identity ended: {ended:?}"
        );
        assert!(
            ended.get("Dropped").copied().unwrap_or(0)
                + ended.get("Identified").copied().unwrap_or(0)
                >= op_p2p_node::behaviour::MAX_PENDING_INBOUND_PER_IP as usize,
            "the churn's handshakes completed: {ended:?}"
        );
        assert!(
            max_fds <= need,
            "the binary held {max_fds} descriptors, more than the {need} its caps need"
        );
        assert!(
            fds_after <= fds_before + FD_MARGIN,
            "descriptors leaked: {fds_before} before, {fds_after} after"
        );
        assert!(persisted, "{} has the blocked address", bans.display());
        let listed = json_rpc_ok(rpc, "opp2p_listBlockedAddrs", json!([])).await;
        assert_eq!(listed, json!(["10.9.8.7"]));
        shutdown(sequencer).await;
        node.kill().await;
    });
}

/// Reads the binary's next event line; an ACCEPTed block adds its number to `accepted`.
async fn next_accepted(node: &mut NodeProcess, accepted: &mut BTreeSet<u64>) {
    let e = node
        .next_event()
        .await
        .expect("the binary's stdout is open");
    if e["event"] == "gossip"
        && e["verdict"] == "accept"
        && let Some(n) = e["block_number"].as_u64()
    {
        accepted.insert(n);
    }
}
