//! Interop with independent JavaScript implementations (`tests/interop/`): a js-libp2p
//! gossipsub peer configured like op-node, and a @chainsafe/discv5 node. Loopback only; every
//! test is bounded by a timeout.
//!
//! These tests need Node.js ≥ 20 and `tests/interop/node_modules`: run
//! `tests/interop/install.sh` first (CI does). Without them the tests fail, they never skip.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use op_p2p_core::admin::{AdminRequest, AdminResponse};
use op_p2p_core::alloy_primitives::Address;
use op_p2p_core::discovery::Bootnode;
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::gossip::wire;
use op_p2p_core::testkit::{BlockBuilder, dev_key, keypair, transactions};
use op_p2p_core::{BlockVersion, Config, PublishRequest, Verdict};
use op_p2p_node::driver::NodeEvent;
use op_p2p_node::{NodeConfig, NodeHandle};
use op_p2p_tokio::{SpawnOptions, spawn};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

const CHAIN: u64 = 901;
/// The v3 (Ecotone) and v4 (Isthmus) block topics of chain 901 (spec §1.2).
const TOPIC_V3: &str = "/optimism/901/2/blocks";
const TOPIC_V4: &str = "/optimism/901/3/blocks";
/// Bound of each test; the scripts get a shorter `--timeout-ms` so they end first.
const TEST_TIMEOUT: Duration = Duration::from_secs(45);
const SCRIPT_TIMEOUT_MS: &str = "40000";

// ---------------------------------------------------------------------------------------------
// Locating and running the scripts
// ---------------------------------------------------------------------------------------------

/// `tests/interop`, checked to be installed: fails (never skips) when `node` or the npm
/// packages are missing.
fn interop_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("interop");
    let help = format!(
        "run `{}` first (it needs Node.js >= 20 and npm)",
        dir.join("install.sh").display()
    );
    match std::process::Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("`node --version` failed ({}): {help}", out.status),
        Err(e) => panic!("`node` not found ({e}): install Node.js >= 20, then {help}"),
    }
    assert!(
        dir.join("node_modules").join("libp2p").is_dir()
            && dir
                .join("node_modules")
                .join("@chainsafe")
                .join("discv5")
                .is_dir(),
        "{} has no installed packages: {help}",
        dir.join("node_modules").display()
    );
    dir
}

/// A running `node <script>`: stdin kept open (closing it stops the script), stdout read line
/// by line as JSON by a background task, the process killed when dropped.
struct Js {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<Value>,
}

impl Js {
    fn spawn(script: &str, args: &[String]) -> Js {
        let dir = interop_dir();
        let mut child = Command::new("node")
            .arg(dir.join(script))
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node {script}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, events) = mpsc::channel(1024);
        let name = script.to_string();
        let who = name.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("{who} printed a non-JSON line ({e}): {line}"));
                if tx.send(value).await.is_err() {
                    return;
                }
            }
        });
        Js {
            name,
            child,
            stdin,
            events,
        }
    }

    /// The next output line; fails if the script ended.
    async fn next(&mut self) -> Value {
        match self.events.recv().await {
            Some(v) => v,
            None => panic!(
                "{} ended early (status {:?}); see its stderr above",
                self.name,
                self.child.try_wait()
            ),
        }
    }

    /// Skips lines until one whose `event` is `event`; an `error` line fails the test.
    async fn until(&mut self, event: &str) -> Value {
        loop {
            let v = self.next().await;
            let got = v["event"].as_str().unwrap_or_default();
            assert_ne!(got, "error", "{}: {v}", self.name);
            if got == event {
                return v;
            }
        }
    }

    /// Closes stdin (the script stops and exits 0), or kills it if it does not.
    async fn stop(mut self) {
        drop(self.stdin.take());
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(status)) => assert!(status.success(), "{} exited with {status}", self.name),
            _ => {
                let _ = self.child.kill().await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Our node
// ---------------------------------------------------------------------------------------------

fn now_secs() -> u64 {
    op_p2p_node::system_now_ms() / 1000
}

/// Node `i` of chain 901 on loopback; node 0 is the sequencer (`dev_key(0)`), the signer every
/// node accepts.
fn config(i: u64, forks: ForkSchedule, discovery: bool, bootnodes: Vec<Bootnode>) -> NodeConfig {
    let kp = keypair(i);
    let signer: Address = dev_key(0).address();
    let mut core = Config::new(CHAIN, signer, forks, 2, kp.public().to_peer_id());
    core.rng_seed = i;
    if i == 0 {
        core.sequencer_key = Some(dev_key(0));
    }
    let mut c = NodeConfig::local(core, kp);
    c.discovery = discovery;
    c.core.discovery = discovery.then(Default::default);
    c.bootnodes = bootnodes;
    c
}

/// Publishes until gossipsub has a peer for the topic (the mesh forms on heartbeats).
async fn publish_when_ready(node: &NodeHandle, req: PublishRequest) -> wire::MessageId {
    let mut last = None;
    for _ in 0..150 {
        match node.publish(req.clone()).await {
            Ok(id) => return id,
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    panic!("could not publish: {last:?}");
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The id as the JS peer prints it: 40 hex digits, no prefix.
fn id_hex(id: &wire::MessageId) -> String {
    hex::encode(id.0)
}

fn tcp_port(addr: &libp2p::Multiaddr) -> u16 {
    addr.iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("a TCP listen address")
}

/// The discv5 node id of a record, as 64 hex digits.
fn node_id_hex(enr: &str) -> String {
    let r: op_p2p_core::discovery::Enr = enr.parse().expect("a valid ENR");
    hex::encode(r.node_id().raw())
}

// ---------------------------------------------------------------------------------------------
// 1. Gossip
// ---------------------------------------------------------------------------------------------

/// Blocks flow both ways on the v3 and v4 topics between our node and js-libp2p, and both
/// sides compute the same op-node message ids (spec §1.2, §2, §3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_flow_both_ways_with_js_libp2p_on_v3_and_v4_with_equal_message_ids() {
    let dir = interop_dir();
    tokio::time::timeout(TEST_TIMEOUT, async {
        let t = now_secs();
        // Isthmus 5 s ago: a block at t-10 goes out on v3, one at t on v4; both stay inside
        // the 60 s validity window for the whole test.
        let forks = ForkSchedule {
            canyon: Some(0),
            ecotone: Some(0),
            isthmus: Some(t - 5),
            jovian: None,
        };
        let mut ours = spawn(
            config(0, forks, false, vec![]),
            SpawnOptions::default().with_events(true),
        )
        .await
        .expect("our node starts");
        let mut blocks = ours.blocks().expect("blocks stream");
        let mut events = ours.events().expect("events stream");

        // The blocks JS publishes: signed by the sequencer key our node trusts.
        let js_blocks = [
            (TOPIC_V3, BlockVersion::V3, 20u64, t - 10),
            (TOPIC_V4, BlockVersion::V4, 21u64, t),
        ];
        let files = tempfile::tempdir().expect("temp dir");
        let mut js_data: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        let mut args: Vec<String> = vec![
            "--topic".into(),
            TOPIC_V3.into(),
            "--topic".into(),
            TOPIC_V4.into(),
            "--dial".into(),
            ours.listen_addrs()[0].to_string(),
            "--timeout-ms".into(),
            SCRIPT_TIMEOUT_MS.into(),
        ];
        for (topic, v, number, ts) in js_blocks {
            let data = BlockBuilder::new(v, number, ts)
                .with_transactions(transactions(CHAIN, number, 3, 48))
                .sign(&dev_key(0), CHAIN)
                .expect("block encodes");
            let path = files.path().join(format!("block-{number}.bin"));
            std::fs::write(&path, &data).expect("write block file");
            args.push("--publish".into());
            args.push(format!("{topic}={}", path.display()));
            js_data.insert(topic, data);
        }
        let mut js = Js::spawn("gossip-peer.mjs", &args);
        let listening = js.until("listening").await;
        let js_peer = listening["peerId"].as_str().expect("peerId").to_string();

        // Rust → JS: we sign and publish one v3 and one v4 block.
        let mut sent: BTreeMap<String, (&str, u64, Vec<u8>)> = BTreeMap::new();
        for (topic, v, number, ts) in [
            (TOPIC_V3, BlockVersion::V3, 10u64, t - 10),
            (TOPIC_V4, BlockVersion::V4, 11u64, t),
        ] {
            let builder = BlockBuilder::new(v, number, ts)
                .with_transactions(transactions(CHAIN, number, 3, 48));
            let (payload, root) = builder.build();
            let id = publish_when_ready(
                &ours,
                PublishRequest::Sign {
                    payload: Box::new(payload),
                    parent_beacon_block_root: root,
                },
            )
            .await;
            // Signing is deterministic (RFC 6979), so these are the bytes the node sent.
            let data = builder.sign(&dev_key(0), CHAIN).expect("block encodes");
            assert_eq!(id, wire::message_id(topic, &data), "publish returns op-node's id");
            sent.insert(id_hex(&id), (topic, number, data));
        }

        // Collect until: JS received both of ours, JS published both of its own, our node
        // delivered both of JS's and reported their ids.
        let mut js_received: BTreeMap<String, Value> = BTreeMap::new();
        let mut js_published: BTreeMap<String, Value> = BTreeMap::new();
        let mut delivered: BTreeSet<(BlockVersion, u64)> = BTreeSet::new();
        let mut accepted_ids: BTreeMap<String, String> = BTreeMap::new();
        while js_received.len() < 2
            || js_published.len() < 2
            || delivered.len() < 2
            || accepted_ids.len() < 2
        {
            tokio::select! {
                v = js.next() => match v["event"].as_str().unwrap_or_default() {
                    "message" => {
                        let id = v["msgId"].as_str().expect("msgId").to_string();
                        js_received.insert(id, v);
                    }
                    "published" => {
                        let topic = v["topic"].as_str().expect("topic").to_string();
                        js_published.insert(topic, v);
                    }
                    "publish_error" | "dial_error" => panic!("gossip-peer: {v}"),
                    _ => {}
                },
                b = blocks.next() => {
                    let b = b.expect("our node runs");
                    delivered.insert((b.version, b.envelope.payload.as_v1().block_number));
                }
                e = events.next() => {
                    if let Some(NodeEvent::Verdict { topic, message_id, verdict, from, .. }) = e {
                        assert_eq!(verdict, Verdict::Accept, "our node accepts JS's block on {topic}");
                        assert_eq!(from.to_string(), js_peer);
                        accepted_ids.insert(topic, id_hex(&message_id));
                    }
                }
            }
        }

        // Rust → JS: same ids, same bytes, from us.
        for (id, (topic, number, data)) in &sent {
            let m = js_received
                .get(id)
                .unwrap_or_else(|| panic!("JS got no message with id {id} (block {number}); it got {js_received:?}"));
            assert_eq!(m["topic"], *topic);
            assert_eq!(m["from"], ours.peer_id().to_string());
            assert_eq!(m["snappy"], true);
            assert_eq!(m["dataLen"], data.len());
            assert_eq!(m["sha256"], sha256_hex(data), "JS saw the bytes we sent");
        }
        // JS → Rust: JS's id is ours, our node decoded the right blocks on the right topics.
        for (topic, data) in &js_data {
            let p = &js_published[*topic];
            let want = id_hex(&wire::message_id(topic, data));
            assert_eq!(p["msgId"], want.as_str(), "JS and op_p2p_core::gossip::wire agree on the id");
            assert_eq!(p["sha256"], sha256_hex(data));
            assert!(p["recipients"].as_u64() >= Some(1), "JS sent it to us: {p}");
            assert_eq!(accepted_ids[*topic], want, "our node computed the same id on receipt");
        }
        assert_eq!(
            delivered,
            BTreeSet::from([(BlockVersion::V3, 20), (BlockVersion::V4, 21)])
        );

        js.stop().await;
        ours.shutdown().await;
    })
    .await
    .unwrap_or_else(|_| panic!("timed out after {TEST_TIMEOUT:?} (scripts in {})", dir.display()));
}

// ---------------------------------------------------------------------------------------------
// 2. @chainsafe/discv5 reads our record
// ---------------------------------------------------------------------------------------------

/// @chainsafe/discv5 talks to our discv5 (PING, FINDNODE distance 0) and decodes the record
/// it gets over the wire: our node id, `opstack` = (901, 0), our TCP port (spec §7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chainsafe_discv5_fetches_and_decodes_our_opstack_enr() {
    interop_dir();
    tokio::time::timeout(TEST_TIMEOUT, async {
        let ours = spawn(
            config(0, ForkSchedule::ALL_AT_GENESIS, true, vec![]),
            SpawnOptions::default(),
        )
        .await
        .expect("our node starts");
        let enr = ours.enr().expect("discovery on: an ENR").to_string();
        let mut probe = Js::spawn(
            "discv5-probe.mjs",
            &[
                "--enr".into(),
                enr.clone(),
                "--timeout-ms".into(),
                "20000".into(),
            ],
        );
        let got = probe.until("enr").await;
        assert_eq!(got["source"], "findnode", "the record came over the wire");
        assert_eq!(got["nodeId"], node_id_hex(&enr).as_str());
        assert_eq!(got["peerId"], ours.peer_id().to_string());
        assert_eq!(got["opstack"]["chainId"], CHAIN);
        assert_eq!(got["opstack"]["version"], 0);
        assert!(got.get("opstackError").is_none(), "{got}");
        assert_eq!(got["ip"], "127.0.0.1");
        assert_eq!(got["tcp"], tcp_port(&ours.listen_addrs()[0]));
        let udp = got["udp"].as_u64().expect("udp");
        assert_ne!(udp, 0);
        // What JS decoded is the record we advertise.
        assert_eq!(got["enr"], enr.as_str());
        probe.stop().await;
        ours.shutdown().await;
    })
    .await
    .expect("bounded");
}

// ---------------------------------------------------------------------------------------------
// 3. Our node finds @chainsafe/discv5 nodes, and filters them by chain
// ---------------------------------------------------------------------------------------------

/// An op-node-like JS peer (one key for discv5 and libp2p, `opstack` = (901, 0)) given as our
/// only bootnode ends up in our `opp2p_discoveryTable` and gets dialled; a JS node of chain 10
/// that our discv5 also talked to stays out of the table (spec §7 filter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_node_finds_a_chainsafe_discv5_node_and_filters_other_chains() {
    interop_dir();
    tokio::time::timeout(TEST_TIMEOUT, async {
        const KEY_901: &str = "0x5a01000000000000000000000000000000000000000000000000000000000901";
        const KEY_10: &str = "0x5a01000000000000000000000000000000000000000000000000000000000010";
        // The libp2p side of the chain-901 peer, so the discovered record is dialable.
        let mut gossip = Js::spawn(
            "gossip-peer.mjs",
            &[
                "--key".into(),
                KEY_901.into(),
                "--topic".into(),
                TOPIC_V4.into(),
                "--timeout-ms".into(),
                SCRIPT_TIMEOUT_MS.into(),
            ],
        );
        let listening = gossip.until("listening").await;
        let addr: libp2p::Multiaddr = listening["addrs"][0]
            .as_str()
            .expect("addr")
            .parse()
            .expect("a multiaddr");
        let port = tcp_port(&addr).to_string();
        let serve = |chain: &str, key: &str, tcp: &str| {
            Js::spawn(
                "discv5-probe.mjs",
                &[
                    "--serve".into(),
                    "--chain-id".into(),
                    chain.into(),
                    "--key".into(),
                    key.into(),
                    "--tcp".into(),
                    tcp.into(),
                    "--timeout-ms".into(),
                    SCRIPT_TIMEOUT_MS.into(),
                ],
            )
        };
        let mut js901 = serve("901", KEY_901, &port);
        // The chain-10 record points at a listener of ours, which must never see a dial.
        // (A port >= 256: @chainsafe/enr writes ports as two bytes, so a port below 256 gets
        // a leading zero, a non-canonical integer that rust-enr, like geth, rejects.)
        let trap = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let trap_port = trap.local_addr().expect("addr").port();
        assert!(trap_port >= 256);
        let mut js10 = serve("10", KEY_10, &trap_port.to_string());
        let s901 = js901.until("serving").await;
        let s10 = js10.until("serving").await;
        assert_eq!(s901["peerId"], listening["peerId"], "one identity for both");
        assert_eq!(s10["opstack"]["chainId"], 10);
        let enr901 = s901["enr"].as_str().expect("enr").to_string();
        let enr10 = s10["enr"].as_str().expect("enr").to_string();
        let id901 = s901["nodeId"].as_str().expect("nodeId").to_string();
        let id10 = s10["nodeId"].as_str().expect("nodeId").to_string();
        assert_eq!(node_id_hex(&enr901), id901, "we parse their record");

        let bootnodes: Vec<Bootnode> = [&enr901, &enr10]
            .iter()
            .map(|e| e.parse().expect("their ENR is a valid bootnode"))
            .collect();
        let ours = spawn(
            config(0, ForkSchedule::ALL_AT_GENESIS, true, bootnodes),
            SpawnOptions::default(),
        )
        .await
        .expect("our node starts");
        let our_id = node_id_hex(ours.enr().expect("enr"));

        // Our discv5 talks to both JS nodes: each adds us to its table.
        for (name, js) in [("chain 901", &mut js901), ("chain 10", &mut js10)] {
            loop {
                let e = js.until("enr_added").await;
                if e["nodeId"] == our_id.as_str() {
                    assert_eq!(e["opstack"]["chainId"], CHAIN, "{name} decoded our opstack");
                    break;
                }
            }
        }
        // The chain-901 record reaches our table and is dialled.
        let table = loop {
            let Ok(AdminResponse::DiscoveryTable(table)) =
                ours.admin().call(AdminRequest::DiscoveryTable).await
            else {
                panic!("opp2p_discoveryTable fails")
            };
            let ids: BTreeSet<String> = table.iter().map(|e| node_id_hex(e)).collect();
            if ids.contains(&id901) {
                break ids;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        loop {
            let c = gossip.until("connected").await;
            if c["peer"] == ours.peer_id().to_string() {
                break;
            }
        }
        // Both bootnode records reach the core together at start; give the core a moment more
        // and check the other chain is still out.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok(AdminResponse::DiscoveryTable(later)) =
            ours.admin().call(AdminRequest::DiscoveryTable).await
        else {
            panic!("opp2p_discoveryTable fails")
        };
        for ids in [table, later.iter().map(|e| node_id_hex(e)).collect()] {
            assert!(!ids.contains(&id10), "chain 10 filtered out: {later:?}");
            assert!(ids.contains(&id901));
        }
        assert!(
            futures::FutureExt::now_or_never(trap.accept()).is_none(),
            "our node dialled the chain-10 peer"
        );

        gossip.stop().await;
        js901.stop().await;
        js10.stop().await;
        ours.shutdown().await;
    })
    .await
    .expect("bounded");
}
