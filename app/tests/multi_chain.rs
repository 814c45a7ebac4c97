//! Many chains, one process (issue 16): `op-p2p node --config chains.toml` runs three chains,
//! each with its own outside peers (a sequencer and an observer in this test's process);
//! blocks reach their own chain only, a ban stays on its chain, a restart restores each
//! chain from its own subdirectory, metrics carry `chain_id`, `/chain/<id>` answers for the
//! right chain; and a bad chains file is refused with an error naming the chain and the key.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use libp2p::Multiaddr;
use op_p2p_core::testkit::dev_key;
use op_p2p_node::NodeHandle;
use op_p2p_tests::{
    HttpRequest, NodeProcess, Rt, connect_addr, dev_config, eventually, http_get,
    publish_when_ready, sequencer_config, shutdown, v4_block, within,
};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_op-p2p");
/// The three chains: (table name, chain id).
const CHAINS: [(&str, u64); 3] = [("alpha", 901), ("beta", 902), ("gamma", 903)];
/// Blocks each chain's sequencer publishes (numbers `chain id * 1000 + k`).
const BLOCKS: u64 = 3;

fn chains_file(dir: &Path, extra_shared: &str, extra_chain: &[&str]) -> std::path::PathBuf {
    let mut toml = format!(
        "\"p2p.listen.ip\" = \"127.0.0.1\"\n\"p2p.listen.tcp\" = 0\n\"p2p.no-discovery\" = true\n\
         \"unsafe-signer\" = \"{}\"\ndatadir = {:?}\n\"rpc.port\" = 0\n\"events-json\" = true\n{extra_shared}\n",
        dev_key(0).address(),
        dir.join("data").display().to_string(),
    );
    for (i, (name, id)) in CHAINS.iter().enumerate() {
        toml.push_str(&format!("[chain.{name}]\n\"chain-id\" = {id}\n"));
        if let Some(extra) = extra_chain.get(i) {
            toml.push_str(extra);
            toml.push('\n');
        }
    }
    let path = dir.join("chains.toml");
    std::fs::write(&path, toml).expect("write chains file");
    path
}

/// Each chain's "chain running" line: (peer id, first listen address).
fn chain_lines(p: &NodeProcess) -> Vec<(String, Multiaddr)> {
    CHAINS
        .iter()
        .map(|(name, _)| {
            let line = p
                .startup_log
                .iter()
                .find(|l| l.contains("chain running") && l.contains(&format!(" chain={name} ")))
                .unwrap_or_else(|| panic!("no running line for {name}"));
            let peer = line
                .split(" peer_id=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            let addr = line
                .split(" addrs=[")
                .nth(1)
                .unwrap()
                .split([']', ','])
                .next()
                .unwrap();
            (peer.to_owned(), addr.parse().unwrap())
        })
        .collect()
}

async fn start(file: &Path) -> NodeProcess {
    let mut c = tokio::process::Command::new(BIN);
    c.arg("node").arg("--config").arg(file);
    NodeProcess::start(c).await
}

/// SIGTERM, and waits until the process has written its state and exited.
async fn stop(mut p: NodeProcess) {
    let pid = p.pid().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(ok.expect("kill").success());
    eventually("the process exits", || {
        let running = p.running();
        async move { (!running).then_some(()) }
    })
    .await;
}

async fn rpc(addr: std::net::SocketAddr, chain: u64, method: &str, params: Value) -> Value {
    let r = HttpRequest::json_rpc(method, params)
        .path(&format!("/chain/{chain}"))
        .send(addr)
        .await;
    let v = r.json();
    assert!(v.get("error").is_none(), "{method} on {chain}: {v}");
    v["result"].clone()
}

/// A node of chain `id` (identity `i`), a sequencer or not.
fn outside(id: u64, i: u64, sequencer: bool) -> op_p2p_node::NodeConfig {
    let mut c = if sequencer {
        sequencer_config(i)
    } else {
        dev_config(i)
    };
    c.core.validator.chain_id = id;
    c
}

#[test]
fn three_chains_in_one_process_stay_apart_and_restore_from_their_own_dirs() {
    Rt::Tokio.block_on_within(Duration::from_secs(150), async {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = chains_file(dir.path(), "", &[]);
        let mut p = start(&file).await;
        let rpc_addr = p.rpc.expect("the shared RPC listener");
        let lines = chain_lines(&p);
        // Outside peers: per chain a sequencer and an observer, both dialling that chain.
        let mut sequencers: Vec<NodeHandle> = Vec::new();
        let mut observers: Vec<NodeHandle> = Vec::new();
        for (k, ((_, id), (_, addr))) in CHAINS.iter().zip(&lines).enumerate() {
            let s = Rt::Tokio.spawn(outside(*id, 10 + k as u64, true)).await;
            let o = Rt::Tokio.spawn(outside(*id, 20 + k as u64, false)).await;
            connect_addr(&s, addr.clone()).await;
            connect_addr(&o, addr.clone()).await;
            sequencers.push(s);
            observers.push(o);
        }
        for (_, id) in CHAINS {
            eventually("both outside peers on the chain", || async move {
                let stats = rpc(rpc_addr, id, "opp2p_peerStats", json!([])).await;
                (stats["connected"] == json!(2)).then_some(())
            })
            .await;
        }
        // Meshes form on heartbeats; then each sequencer publishes its blocks.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for (s, (_, id)) in sequencers.iter().zip(CHAINS) {
            for k in 0..BLOCKS {
                publish_when_ready(s, v4_block(id * 1000 + k)).await;
            }
        }
        // Each observer gets exactly its chain's blocks.
        for (o, (name, id)) in observers.iter_mut().zip(CHAINS) {
            let mut blocks = o.blocks().expect("blocks");
            let mut got = Vec::new();
            while got.len() < BLOCKS as usize {
                let b = within(Duration::from_secs(30), "next block", blocks.next())
                    .await
                    .expect("the observer runs");
                got.push(b.envelope.payload.as_v1().block_number);
            }
            got.sort_unstable();
            let want: Vec<u64> = (0..BLOCKS).map(|k| id * 1000 + k).collect();
            assert_eq!(got, want, "chain {name}'s observer");
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                futures::FutureExt::now_or_never(blocks.next()).is_none(),
                "chain {name}'s observer got a block of another chain"
            );
        }
        // The process's own events: every accepted block on the chain it belongs to.
        let mut accepted = 0;
        while accepted < CHAINS.len() * BLOCKS as usize {
            let e = within(Duration::from_secs(10), "event", p.next_event())
                .await
                .expect("events");
            if e["event"] == "gossip" && e["verdict"] == "accept" {
                let n = e["block_number"].as_u64().unwrap();
                assert_eq!(e["chain_id"].as_u64().unwrap(), n / 1000, "{e}");
                accepted += 1;
            }
        }
        // Metrics: one exposition, every chain labelled; health per chain and overall.
        let m = http_get(rpc_addr, "/metrics").await;
        for (_, id) in CHAINS {
            assert!(
                m.text()
                    .contains(&format!("op_p2p_p2p_peer_count{{chain_id=\"{id}\"}} ")),
                "{}",
                m.text()
            );
        }
        assert_eq!(m.text().matches("# TYPE op_p2p_p2p_peer_count ").count(), 1);
        let h = http_get(rpc_addr, "/healthz").await.json();
        let names: Vec<&str> = h["chains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["alpha", "beta", "gamma"], "{h}");
        let beta = http_get(rpc_addr, "/chain/902/healthz").await.json();
        assert_eq!(
            (beta["name"].clone(), beta["chain_id"].clone()),
            (json!("beta"), json!(902))
        );
        // /chain/<id> answers for that chain: its own peer id.
        for ((_, id), (peer, _)) in CHAINS.iter().zip(&lines) {
            let me = rpc(rpc_addr, *id, "opp2p_self", json!([])).await;
            assert_eq!(me["peerID"], json!(peer), "chain {id}");
        }
        // A ban on alpha (op-node's blockPeer: refused from now on) stays on alpha.
        let banned = observers[0].peer_id().to_string();
        rpc(rpc_addr, 901, "opp2p_blockPeer", json!([banned])).await;
        assert_eq!(
            rpc(rpc_addr, 901, "opp2p_listBlockedPeers", json!([])).await,
            json!([banned])
        );
        for id in [902, 903] {
            assert_eq!(
                rpc(rpc_addr, id, "opp2p_listBlockedPeers", json!([])).await,
                json!([])
            );
            let stats = rpc(rpc_addr, id, "opp2p_peerStats", json!([])).await;
            assert_eq!(stats["connected"], json!(2), "chain {id} keeps its peers");
        }
        for n in sequencers.into_iter().chain(observers) {
            shutdown(n).await;
        }
        stop(p).await;
        for (name, _) in CHAINS {
            assert!(
                dir.path()
                    .join("data")
                    .join(name)
                    .join("p2p_priv.txt")
                    .is_file()
            );
        }
        // Restart: each chain comes back with its own identity and its own bans.
        let p = start(&file).await;
        let rpc_addr = p.rpc.expect("the shared RPC listener");
        let again = chain_lines(&p);
        for (((_, id), (before, _)), (after, _)) in CHAINS.iter().zip(&lines).zip(&again) {
            assert_eq!(before, after, "chain {id} keeps its key");
            let want = if *id == 901 {
                json!([banned])
            } else {
                json!([])
            };
            assert_eq!(
                rpc(rpc_addr, *id, "opp2p_listBlockedPeers", json!([])).await,
                want
            );
        }
        stop(p).await;
    });
}

/// Runs `op-p2p node` with `args` and returns its stderr; it must fail at once.
fn refused(args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .arg("node")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run op-p2p");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} was accepted: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn bad_chains_files_are_refused_naming_the_chain_and_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, &[&str], &[&str]); 6] = [
        // An unknown key: clap's message names it.
        (
            "",
            &["", "\"p2p.no-such-flag\" = 1"],
            &["chain \"beta\"", "--p2p.no-such-flag"],
        ),
        // A bad value.
        (
            "",
            &["\"p2p.peers.lo\" = \"many\""],
            &["chain \"alpha\"", "--p2p.peers.lo"],
        ),
        // Two chains with one chain id (delta comes first in the file).
        (
            "[chain.delta]\n\"chain-id\" = 901",
            &[],
            &["chain \"alpha\"", "chain id 901", "\"delta\""],
        ),
        // One chain twice: TOML refuses the duplicate table.
        ("[chain.alpha]\n\"chain-id\" = 904", &[], &["alpha"]),
        // Two chains on one port.
        (
            "",
            &[
                "\"p2p.listen.tcp\" = 19411",
                "",
                "\"p2p.listen.tcp\" = 19411",
            ],
            &[
                "chain \"gamma\"",
                "\"p2p.listen.tcp\"",
                "19411",
                "\"alpha\"",
            ],
        ),
        // Two chains on one data dir.
        (
            "",
            &[
                "datadir = \"/tmp/op-p2p-shared\"",
                "datadir = \"/tmp/op-p2p-shared/\"",
            ],
            &["chain \"beta\"", "\"datadir\"", "\"alpha\""],
        ),
    ];
    for (shared, per_chain, want) in cases {
        let file = chains_file(dir.path(), shared, per_chain);
        let err = refused(&["--config", file.to_str().unwrap()]);
        for w in want {
            assert!(err.contains(w), "{per_chain:?}: {w:?} not in {err}");
        }
    }
    // A chain given twice on the command line.
    let err = refused(&["--network", "base", "--network=base", "--p2p.no-discovery"]);
    assert!(err.contains("chain \"base\" is given twice"), "{err}");
    // A process-wide key in a chain table, and a table that is not a chain.
    let file = chains_file(dir.path(), "", &["\"metrics.port\" = 7301"]);
    let err = refused(&["--config", file.to_str().unwrap()]);
    assert!(
        err.contains("chain \"alpha\": key \"metrics.port\""),
        "{err}"
    );
    let file = chains_file(dir.path(), "[chains.x]\na = 1", &[]);
    let err = refused(&["--config", file.to_str().unwrap()]);
    assert!(err.contains("key \"chains\""), "{err}");
}

/// A chain that cannot bind its port and one whose data dir is locked by another process are
/// reported (logged, `failed` on `/healthz`) while the third runs; with
/// `--chains.require-all` the process refuses to run instead.
#[test]
fn failed_chains_are_reported_and_the_others_keep_running() {
    Rt::Tokio.block_on_within(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().expect("temp dir");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = taken.local_addr().unwrap().port();
        let beta = format!("\"p2p.listen.tcp\" = {port}");
        let file = chains_file(dir.path(), "", &["", &beta]);
        let lock = op_p2p_node::datadir::DataDir::open(dir.path().join("data").join("gamma"))
            .expect("lock gamma's data dir");
        let p = start(&file).await;
        let rpc_addr = p.rpc.expect("the shared RPC listener");
        let h = http_get(rpc_addr, "/healthz").await.json();
        assert_eq!(h["status"], "degraded", "{h}");
        let chains = h["chains"].as_array().unwrap();
        let status = |name: &str| {
            chains
                .iter()
                .find(|c| c["name"] == name)
                .unwrap_or_else(|| panic!("{name} not listed: {h}"))
                .clone()
        };
        assert_eq!(status("alpha")["status"], "ok", "{h}");
        assert_eq!(status("beta")["status"], "failed", "{h}");
        assert!(
            status("beta")["error"].as_str().unwrap().contains("listen"),
            "{h}"
        );
        assert_eq!(status("gamma")["status"], "failed", "{h}");
        assert!(
            status("gamma")["error"].as_str().unwrap().contains("gamma"),
            "{h}"
        );
        assert!(p.log_line("failed to start").is_some());
        rpc(rpc_addr, 901, "opp2p_self", json!([])).await;
        let r = HttpRequest::json_rpc("opp2p_self", json!([]))
            .path("/chain/902")
            .send(rpc_addr)
            .await;
        assert_eq!(r.status, 503);
        stop(p).await;
        // Refused at once with require-all: gamma's locked data dir before anything starts,
        // then (unlocked) beta's port.
        let file_s = file.to_str().unwrap();
        let err = refused(&["--config", file_s, "--chains.require-all"]);
        assert!(err.contains("chain \"gamma\""), "{err}");
        drop(lock);
        let err = refused(&["--config", file_s, "--chains.require-all"]);
        assert!(err.contains("chain \"beta\" failed to start"), "{err}");
        drop(taken);
    });
}
