//! Interop with independent JavaScript implementations (`tests/interop/`): a js-libp2p
//! gossipsub peer configured like op-node, and a @chainsafe/discv5 node. Loopback only; every
//! test is bounded by a timeout.
//!
//! These tests need Node.js ≥ 20 and `tests/interop/node_modules`: run
//! `tests/interop/install.sh` first (CI does). Without them the tests fail, they never skip.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use op_p2p_core::admin::{AdminRequest, AdminResponse};
use op_p2p_core::discovery::Bootnode;
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::gossip::wire;
use op_p2p_core::testkit::{BlockBuilder, Calldata, dev_key, transactions, transactions_filled};
use op_p2p_core::{BlockVersion, Verdict};
use op_p2p_node::driver::NodeEvent;
use op_p2p_node::{NodeConfig, SpawnOptions};
use op_p2p_tests::{
    CHAIN, JsPeer, Rt, admin, enr_node_id_hex, eventually, gossip_peer_args, interop_dir, now_secs,
    publish_when_ready, sequencer_config, shutdown, sign_request, tcp_port,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The v3 (Ecotone) and v4 (Isthmus) block topics of chain 901 (spec §1.2).
const TOPIC_V3: &str = "/optimism/901/2/blocks";
const TOPIC_V4: &str = "/optimism/901/3/blocks";
/// Bound of each test; the scripts get a shorter `--timeout-ms` so they end first.
const TEST_TIMEOUT: Duration = Duration::from_secs(45);
const SCRIPT_TIMEOUT_MS: u64 = 40_000;

/// Our node: the dev chain's sequencer (`dev_key(0)`, the signer every node accepts) on
/// `forks`, with discovery (from `bootnodes`) or without.
fn our_config(forks: ForkSchedule, discovery: bool, bootnodes: Vec<Bootnode>) -> NodeConfig {
    let mut c = sequencer_config(0);
    c.core.validator.forks = forks;
    c.core.discovery = discovery.then(Default::default);
    c.bootnodes = bootnodes;
    c
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The id as the JS peer prints it: 40 hex digits, no prefix.
fn id_hex(id: &wire::MessageId) -> String {
    hex::encode(id.0)
}

// ---------------------------------------------------------------------------------------------
// 1. Gossip
// ---------------------------------------------------------------------------------------------

/// Blocks flow both ways on the v3 and v4 topics between our node and js-libp2p, and both
/// sides compute the same op-node message ids (spec §1.2, §2, §3).
#[test]
fn blocks_flow_both_ways_with_js_libp2p_on_v3_and_v4_with_equal_message_ids() {
    interop_dir();
    Rt::Tokio.block_on_within(TEST_TIMEOUT, async {
        let t = now_secs();
        // Isthmus 5 s ago: a block at t-10 goes out on v3, one at t on v4; both stay inside
        // the 60 s validity window for the whole test.
        let forks = ForkSchedule {
            canyon: Some(0),
            ecotone: Some(0),
            isthmus: Some(t - 5),
            jovian: None,
        };
        let mut ours = Rt::Tokio
            .spawn_with(
                our_config(forks, false, vec![]),
                SpawnOptions::default().with_events(true),
            )
            .await;
        let mut blocks = ours.blocks().expect("blocks stream");
        let mut events = ours.events().expect("events stream");

        // The blocks JS publishes: signed by the sequencer key our node trusts.
        let js_blocks = [
            (TOPIC_V3, BlockVersion::V3, 20u64, t - 10),
            (TOPIC_V4, BlockVersion::V4, 21u64, t),
        ];
        let files = tempfile::tempdir().expect("temp dir");
        let mut js_data: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        let mut args = gossip_peer_args(
            &[TOPIC_V3, TOPIC_V4],
            Some(&ours.listen_addrs()[0]),
            SCRIPT_TIMEOUT_MS,
        );
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
        let mut js = JsPeer::spawn("gossip-peer.mjs", &args);
        let listening = js.until("listening").await;
        let js_peer = listening["peerId"].as_str().expect("peerId").to_string();

        // Rust → JS: we sign and publish one v3 and one v4 block. The v4 one is ~200 KB of
        // incompressible calldata: many yamux and Noise frames, which js-libp2p must reassemble.
        let mut sent: BTreeMap<String, (&str, u64, Vec<u8>)> = BTreeMap::new();
        for (topic, v, number, ts) in [
            (TOPIC_V3, BlockVersion::V3, 10u64, t - 10),
            (TOPIC_V4, BlockVersion::V4, 11u64, t),
        ] {
            let txs = if v == BlockVersion::V4 {
                transactions_filled(CHAIN, number, 50, 4096, Calldata::Random)
            } else {
                transactions(CHAIN, number, 3, 48)
            };
            let builder = BlockBuilder::new(v, number, ts).with_transactions(txs);
            let id = publish_when_ready(&ours, sign_request(&builder)).await;
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
        shutdown(ours).await;
    });
}

// ---------------------------------------------------------------------------------------------
// 2. @chainsafe/discv5 reads our record
// ---------------------------------------------------------------------------------------------

/// @chainsafe/discv5 talks to our discv5 (PING, FINDNODE distance 0) and decodes the record
/// it gets over the wire: our node id, `opstack` = (901, 0), our TCP port (spec §7).
#[test]
fn chainsafe_discv5_fetches_and_decodes_our_opstack_enr() {
    interop_dir();
    Rt::Tokio.block_on_within(TEST_TIMEOUT, async {
        let ours = Rt::Tokio
            .spawn(our_config(ForkSchedule::ALL_AT_GENESIS, true, vec![]))
            .await;
        let enr = ours.enr().expect("discovery on: an ENR").to_string();
        let mut probe = JsPeer::spawn(
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
        assert_eq!(got["nodeId"], enr_node_id_hex(&enr).as_str());
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
        shutdown(ours).await;
    });
}

// ---------------------------------------------------------------------------------------------
// 3. Our node finds @chainsafe/discv5 nodes, and filters them by chain
// ---------------------------------------------------------------------------------------------

/// An op-node-like JS peer (one key for discv5 and libp2p, `opstack` = (901, 0)) given as our
/// only bootnode ends up in our `opp2p_discoveryTable` and gets dialled; a JS node of chain 10
/// that our discv5 also talked to stays out of the table (spec §7 filter).
#[test]
fn our_node_finds_a_chainsafe_discv5_node_and_filters_other_chains() {
    interop_dir();
    Rt::Tokio.block_on_within(TEST_TIMEOUT, async {
        const KEY_901: &str = "0x5a01000000000000000000000000000000000000000000000000000000000901";
        const KEY_10: &str = "0x5a01000000000000000000000000000000000000000000000000000000000010";
        // The libp2p side of the chain-901 peer, so the discovered record is dialable.
        let mut args = gossip_peer_args(&[TOPIC_V4], None, SCRIPT_TIMEOUT_MS);
        args.extend(["--key".into(), KEY_901.into()]);
        let mut gossip = JsPeer::spawn("gossip-peer.mjs", &args);
        let listening = gossip.until("listening").await;
        let addr: libp2p::Multiaddr = listening["addrs"][0]
            .as_str()
            .expect("addr")
            .parse()
            .expect("a multiaddr");
        let port = tcp_port(&addr).to_string();
        let serve = |chain: &str, key: &str, tcp: &str| {
            JsPeer::spawn(
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
                    SCRIPT_TIMEOUT_MS.to_string(),
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
        assert_eq!(enr_node_id_hex(&enr901), id901, "we parse their record");

        let bootnodes: Vec<Bootnode> = [&enr901, &enr10]
            .iter()
            .map(|e| e.parse().expect("their ENR is a valid bootnode"))
            .collect();
        let ours = Rt::Tokio
            .spawn(our_config(ForkSchedule::ALL_AT_GENESIS, true, bootnodes))
            .await;
        let our_id = enr_node_id_hex(ours.enr().expect("enr"));

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
        let table = eventually("the chain-901 record in our table", || async {
            let AdminResponse::DiscoveryTable(table) =
                admin(&ours, AdminRequest::DiscoveryTable).await
            else {
                panic!("opp2p_discoveryTable")
            };
            let ids: BTreeSet<String> = table.iter().map(|e| enr_node_id_hex(e)).collect();
            ids.contains(&id901).then_some(ids)
        })
        .await;
        loop {
            let c = gossip.until("connected").await;
            if c["peer"] == ours.peer_id().to_string() {
                break;
            }
        }
        // Both bootnode records reach the core together at start; give the core a moment more
        // and check the other chain is still out.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let AdminResponse::DiscoveryTable(later) = admin(&ours, AdminRequest::DiscoveryTable).await
        else {
            panic!("opp2p_discoveryTable")
        };
        for ids in [table, later.iter().map(|e| enr_node_id_hex(e)).collect()] {
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
        shutdown(ours).await;
    });
}
