//! `op-p2p-bench-kona <index>`: one node of an `op-p2p bench` mesh, built on kona-p2p 0.1.2
//! (the gossip driver kona-node embeds) instead of op-p2p. It speaks the bench's child protocol:
//! JSON lines, commands on stdin, replies on stdout (`app/src/bench.rs`, `Cmd` and `Msg`), and
//! exits when stdin closes.
//!
//! What it runs is kona's: `GossipDriverBuilder` with the crate's defaults (gossipsub config,
//! connection gater, TCP/Noise/Yamux; no peer scoring: the builder's default, `--scoring light`
//! for kona's light scoring, which on loopback graylists every peer of a node with more than
//! ten, all at one IP, with no way to whitelist it through the builder), and kona's
//! event handling (`GossipDriver::handle_event`: decode, `BlockHandler::block_valid`, the
//! verdict to gossipsub). A block counts as accepted when `handle_event` hands back its
//! envelope, the point where kona-node passes it on to its engine; ours report at the same
//! point (the block leaves the node's stream).
//!
//! What is shared with op-p2p: the block contents, and nothing else (this program does not link
//! op-p2p). On a publish command node 0 runs `$OP_P2P_BENCH_EXE bench-blocks` (the coordinator's
//! `op-p2p`), which writes the very blocks an op-p2p node 0 would publish, decodes them into
//! kona's envelope type ahead of the run, and at each publish signs the payload hash (k256, as
//! kona-node's local signer does) and publishes through `GossipDriver::publish` (kona's SSZ and
//! snappy encoding). Both meshes therefore carry the same transaction bytes.

use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, Signature};
use kona_genesis::{HardForkConfig, RollupConfig};
use kona_p2p::{ConnectionGater, GossipDriver};
use kona_peers::PeerScoreLevel;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};
use op_alloy_rpc_types_engine::OpNetworkPayloadEnvelope;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Chain id of the bench network (`op-p2p bench`'s `BENCH_CHAIN_ID`).
const CHAIN_ID: u64 = 901;
/// Longest accepted command line, bytes.
const MAX_LINE: usize = 64 * 1024;
/// Largest block message read from `bench-blocks`, bytes (op-node's gossip limit).
const MAX_BLOCK: usize = 10 * 1024 * 1024;
/// Environment variable with the coordinator's executable (`bench-blocks`).
const BENCH_EXE_ENV: &str = "OP_P2P_BENCH_EXE";
/// How long a dial may take before it is reported failed.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// A command from the coordinator (the subset of `Cmd` a kona node serves; `spam` is answered
/// with an error).
#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
enum Cmd {
    Dial {
        addr: Multiaddr,
        peer: PeerId,
    },
    Stats,
    /// Node 0 only; the rest of the command goes to `bench-blocks` as it came.
    Publish {
        interval_ms: u64,
    },
    Spam {},
}

/// The coordinator's `Stats`; what kona does not expose stays 0.
#[derive(Debug, Default, Clone, Serialize)]
struct Stats {
    cpu_ms: f64,
    rss_kb: u64,
    pss_kb: u64,
    peers: u64,
    mesh: u64,
    /// Not exposed by kona-p2p's swarm (no gossipsub metrics registry): 0.
    sent_bytes: u64,
    /// Gossip message bytes received on the block topics (after gossipsub's duplicate filter).
    recv_bytes: u64,
    /// Gossip messages received on the block topics.
    recv_msgs: u64,
}

/// A reply to the coordinator (`Msg`).
#[derive(Debug, Serialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
enum Msg {
    Ready {
        peer: PeerId,
        addr: Multiaddr,
    },
    Dialed {
        ok: bool,
    },
    Stats(Stats),
    Accept {
        number: u64,
        at_ms: f64,
    },
    Published {
        number: u64,
        at_ms: f64,
        tx_bytes: usize,
    },
    Done,
    Error {
        error: String,
    },
}

fn emit(msg: &Msg) {
    if let Ok(line) = serde_json::to_string(msg) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn now_ms_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// CPU time of this process, ms (all threads' `schedstat` run times).
fn process_cpu_ms() -> f64 {
    let mut ns: u64 = 0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    ns as f64 / 1e6
}

/// A kB field (`VmRSS:`, `Pss:`) of a `/proc/self` file, 0 if unknown.
fn proc_kb(file: &str, field: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Every fork through Isthmus at genesis: the v4 topic, like the op-p2p bench chain.
fn rollup_config() -> RollupConfig {
    RollupConfig {
        l2_chain_id: alloy_chains::Chain::from_id(CHAIN_ID),
        block_time: 2,
        hardforks: HardForkConfig {
            regolith_time: Some(0),
            canyon_time: Some(0),
            delta_time: Some(0),
            ecotone_time: Some(0),
            fjord_time: Some(0),
            granite_time: Some(0),
            holocene_time: Some(0),
            pectra_blob_schedule_time: None,
            isthmus_time: Some(0),
            jovian_time: None,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// `keccak256(tag ‖ i)`, rehashed until it is a valid secp256k1 secret: op-p2p-core's
/// `testkit` derivation of its bench keys (`dev_key_bytes`, `keypair`), written out here
/// because this program does not link op-p2p. `sequencer_key` checks the result against the
/// blocks' signatures.
fn derived_secret(tag: &[u8], i: u64) -> [u8; 32] {
    let mut seed = tag.to_vec();
    seed.extend_from_slice(&i.to_be_bytes());
    let mut secret = alloy_primitives::keccak256(&seed).0;
    while k256::ecdsa::SigningKey::from_slice(&secret).is_err() {
        secret = alloy_primitives::keccak256(secret).0;
    }
    secret
}

/// The bench sequencer's key (op-p2p's `dev_key(0)`).
fn sequencer_key() -> k256::ecdsa::SigningKey {
    k256::ecdsa::SigningKey::from_slice(&derived_secret(b"op-p2p dev key ", 0))
        .expect("derived_secret returns a valid key")
}

/// Node `index`'s libp2p identity: secp256k1, like kona-node's, deterministic per index and
/// distinct from every op-p2p bench identity.
fn keypair(index: u64) -> libp2p::identity::Keypair {
    let secret = derived_secret(b"op-p2p kona bench key ", index);
    let sk = libp2p::identity::secp256k1::SecretKey::try_from_bytes(secret)
        .expect("a valid k256 secret is a valid secp256k1 secret");
    libp2p::identity::secp256k1::Keypair::from(sk).into()
}

/// A block ready to go: kona's envelope (signed again at publish), its timestamp and the
/// transaction bytes it carries.
struct Prepared {
    envelope: OpNetworkPayloadEnvelope,
    timestamp: u64,
    tx_bytes: usize,
}

/// The blocks of publish command `line` from `$OP_P2P_BENCH_EXE bench-blocks`, decoded into
/// kona's envelope; checks each is signed by `signer`.
fn prepare(line: &str, start_s: u64, signer: Address) -> Result<Vec<Prepared>, String> {
    let exe = std::env::var_os(BENCH_EXE_ENV).ok_or(format!("{BENCH_EXE_ENV} is not set"))?;
    let out = std::process::Command::new(exe)
        .args(["bench-blocks", line, "--start-s", &start_s.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("bench-blocks: {e}"))?;
    if !out.status.success() {
        return Err(format!("bench-blocks: {}", out.status));
    }
    let mut rest = &out.stdout[..];
    let mut blocks = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_at_checked(4)
            .ok_or("bench-blocks: truncated length")?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > MAX_BLOCK {
            return Err(format!("bench-blocks: a {len}-byte block"));
        }
        let (wire, tail) = tail
            .split_at_checked(len)
            .ok_or("bench-blocks: truncated block")?;
        rest = tail;
        let envelope =
            OpNetworkPayloadEnvelope::decode_v4(wire).map_err(|e| format!("decode: {e}"))?;
        let msg = envelope.payload_hash.signature_message(CHAIN_ID);
        let by = envelope
            .signature
            .recover_address_from_prehash(&msg)
            .map_err(|e| format!("recover: {e}"))?;
        if by != signer {
            return Err(format!(
                "block signed by {by}, this child signs as {signer}"
            ));
        }
        if blocks.is_empty() {
            same_bytes(wire, &envelope);
        }
        let tx_bytes = envelope
            .payload
            .as_v1()
            .transactions
            .iter()
            .map(|t| t.len())
            .sum();
        let timestamp = envelope.payload.timestamp();
        blocks.push(Prepared {
            envelope,
            timestamp,
            tx_bytes,
        });
    }
    Ok(blocks)
}

/// Reports on stderr where kona's re-encoding of `envelope` differs from op-p2p's `wire`
/// (decompressed), if it does: the two implementations should put the same bytes on the wire.
fn same_bytes(wire: &[u8], envelope: &OpNetworkPayloadEnvelope) {
    let ours = snap::raw::Decoder::new().decompress_vec(wire);
    let theirs = envelope
        .encode_v4()
        .ok()
        .and_then(|w| snap::raw::Decoder::new().decompress_vec(&w).ok());
    match (ours, theirs) {
        (Ok(a), Some(b)) if a == b => {}
        (Ok(a), Some(b)) => {
            let at = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            eprintln!(
                "op-p2p-bench-kona: kona re-encodes block differently: {} vs {} bytes decompressed, first difference at byte {at}",
                a.len(),
                b.len()
            );
        }
        _ => eprintln!("op-p2p-bench-kona: could not compare the encodings"),
    }
}

/// Signs `envelope`'s payload hash for the bench chain with the sequencer's key (k256).
fn sign(
    envelope: &mut OpNetworkPayloadEnvelope,
    key: &k256::ecdsa::SigningKey,
) -> Result<(), String> {
    let msg = envelope.payload_hash.signature_message(CHAIN_ID);
    let (sig, recid) = key
        .sign_prehash_recoverable(msg.as_slice())
        .map_err(|e| format!("sign: {e}"))?;
    envelope.signature = Signature::from_signature_and_parity(sig, recid.is_y_odd());
    Ok(())
}

/// A dial in flight: the coordinator waits for exactly one answer.
struct PendingDial {
    peer: PeerId,
    deadline: tokio::time::Instant,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let index: u64 = match args.next().and_then(|a| a.parse().ok()) {
        Some(i) => i,
        None => {
            eprintln!("usage: op-p2p-bench-kona <index> [--scoring off|light]");
            std::process::exit(2);
        }
    };
    let mut scoring = PeerScoreLevel::Off;
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().as_deref()) {
            ("--scoring", Some("light")) => scoring = PeerScoreLevel::Light,
            ("--scoring", Some("off")) => scoring = PeerScoreLevel::Off,
            _ => {
                eprintln!("unknown argument {a}");
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = run(index, scoring).await {
        emit(&Msg::Error { error: e });
        std::process::exit(1);
    }
}

async fn run(index: u64, scoring: PeerScoreLevel) -> Result<(), String> {
    let key = sequencer_key();
    let signer = Address::from_public_key(key.verifying_key());
    let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().map_err(|e| format!("{e}"))?;
    let (mut driver, _signer_tx): (GossipDriver<ConnectionGater>, _) =
        GossipDriver::<ConnectionGater>::builder(rollup_config(), signer, listen, keypair(index))
            .with_peer_scoring(scoring)
            .build()
            .map_err(|e| format!("build: {e}"))?;
    driver.start().await.map_err(|e| format!("listen: {e}"))?;
    let addr = driver
        .swarm
        .listeners()
        .next()
        .cloned()
        .ok_or("no listen address")?;
    emit(&Msg::Ready {
        peer: *driver.local_peer_id(),
        addr,
    });
    let v4 = driver.handler.blocks_v4_topic.hash();
    let topics = {
        use kona_p2p::Handler;
        driver.handler.topics()
    };
    // Every node subscribes to the block topics, as kona-node's network actor does.
    for t in [
        &driver.handler.blocks_v1_topic,
        &driver.handler.blocks_v2_topic,
        &driver.handler.blocks_v3_topic,
        &driver.handler.blocks_v4_topic,
    ] {
        driver
            .swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(t)
            .map_err(|e| format!("subscribe: {e}"))?;
    }

    let (cmd_tx, mut cmds) = tokio::sync::mpsc::channel::<(Cmd, String)>(64);
    tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.len() > MAX_LINE {
                continue;
            }
            match serde_json::from_str::<Cmd>(&line) {
                Ok(c) => {
                    if cmd_tx.send((c, line)).await.is_err() {
                        return;
                    }
                }
                Err(e) => emit(&Msg::Error {
                    error: format!("unreadable command: {e}"),
                }),
            }
        }
    });

    let mut stats = Stats::default();
    let mut queue: VecDeque<Prepared> = VecDeque::new();
    let mut interval_ms = 0u64;
    let mut start = tokio::time::Instant::now();
    let mut published = 0u64;
    let mut publishing = false;
    let mut dial: Option<PendingDial> = None;
    let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
    let mut next_tick = far();
    loop {
        let dial_deadline = dial.as_ref().map_or_else(far, |d| d.deadline);
        tokio::select! {
            ev = driver.next() => {
                let Some(ev) = ev else { break };
                match &ev {
                    SwarmEvent::Behaviour(kona_p2p::Event::Gossipsub(e)) => {
                        if let libp2p::gossipsub::Event::Message { message, .. } = e.as_ref()
                            && topics.contains(&message.topic)
                        {
                            stats.recv_msgs += 1;
                            stats.recv_bytes += message.data.len() as u64;
                        }
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, .. }
                        if dial.as_ref().is_some_and(|d| d.peer == *peer_id) =>
                    {
                        dial = None;
                        emit(&Msg::Dialed { ok: true });
                    }
                    SwarmEvent::OutgoingConnectionError { peer_id: Some(p), .. }
                        if dial.as_ref().is_some_and(|d| d.peer == *p) =>
                    {
                        dial = None;
                        emit(&Msg::Dialed { ok: false });
                    }
                    _ => {}
                }
                if let Some(envelope) = driver.handle_event(ev) {
                    emit(&Msg::Accept { number: envelope.payload.block_number(), at_ms: now_ms_f64() });
                }
            }
            cmd = cmds.recv() => {
                let Some((cmd, line)) = cmd else { break };
                match cmd {
                    Cmd::Dial { addr, peer } => {
                        if driver.swarm.is_connected(&peer) {
                            emit(&Msg::Dialed { ok: true });
                        } else {
                            dial = Some(PendingDial { peer, deadline: tokio::time::Instant::now() + DIAL_TIMEOUT });
                            driver.dial_multiaddr(addr.with(libp2p::multiaddr::Protocol::P2p(peer)));
                        }
                    }
                    Cmd::Stats => {
                        stats.cpu_ms = process_cpu_ms();
                        stats.rss_kb = proc_kb("/proc/self/status", "VmRSS:");
                        stats.pss_kb = proc_kb("/proc/self/smaps_rollup", "Pss:");
                        stats.peers = driver.connected_peers() as u64;
                        stats.mesh = driver.swarm.behaviour().gossipsub.mesh_peers(&v4).count() as u64;
                        emit(&Msg::Stats(stats.clone()));
                    }
                    Cmd::Publish { interval_ms: iv, .. } => {
                        // Built before the run so building is not timed; each block stamped
                        // with its publish time (kona IGNOREs blocks older than 60 s).
                        let start_s = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                        match prepare(&line, start_s, signer) {
                            Ok(b) => queue.extend(b),
                            Err(error) => emit(&Msg::Error { error }),
                        }
                        interval_ms = iv;
                        start = tokio::time::Instant::now();
                        published = 0;
                        publishing = true;
                        next_tick = start;
                    }
                    Cmd::Spam {} => emit(&Msg::Error { error: "a kona child does not spam".into() }),
                }
            }
            () = tokio::time::sleep_until(next_tick), if publishing => {
                if let Some(mut p) = queue.pop_front() {
                    let number = p.envelope.payload.block_number();
                    let at_ms = now_ms_f64();
                    let ts = p.timestamp;
                    let r = sign(&mut p.envelope, &key).and_then(|()| {
                        driver
                            .publish(|h| h.topic(ts), Some(p.envelope))
                            .map_err(|e| format!("publish {number}: {e}"))
                    });
                    match r {
                        Ok(_) => emit(&Msg::Published { number, at_ms, tx_bytes: p.tx_bytes }),
                        Err(error) => emit(&Msg::Error { error }),
                    }
                    published += 1;
                }
                if queue.is_empty() {
                    publishing = false;
                    next_tick = far();
                    emit(&Msg::Done);
                } else {
                    next_tick = start + Duration::from_millis(published * interval_ms);
                }
            }
            () = tokio::time::sleep_until(dial_deadline), if dial.is_some() => {
                dial = None;
                emit(&Msg::Dialed { ok: false });
            }
        }
    }
    Ok(())
}
