//! `op-p2p bench`: a loopback mesh of N nodes, each a separate process (this binary in the
//! hidden `bench-node` role, or `op-p2p-bench-node-async-std` next to it), formed the way a
//! network forms (node i dials up to [`DIALS_PER_NODE`] random earlier nodes, fixed seed).
//! Once every node has a mesh peer on the v4 topic, node 0 publishes freshly signed v4 blocks
//! at an interval; the coordinator collects accept times, CPU, RSS and gossip bytes from every
//! child and reports latency percentiles, delivery, receiver CPU per block, RSS and bytes sent.
//!
//! Coordinator ↔ child: JSON lines, commands on the child's stdin ([`Cmd`]), replies on its
//! stdout ([`Msg`]). A child exits when its stdin closes, so children die with the
//! coordinator (which also holds them with `kill_on_drop`). All processes share one machine,
//! so wall-clock milliseconds compare across them.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::channel::{mpsc, oneshot};
use futures::future::{BoxFuture, FutureExt};
use futures::{SinkExt, StreamExt};
use libp2p::{Multiaddr, PeerId};
use op_p2p_core::admin::{AdminRequest, AdminResponse};
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::gossip::topic::BlockTopic;
use op_p2p_core::peers::netpolicy::LOOPBACK_NETS;
use op_p2p_core::testkit::{BlockBuilder, dev_key, keypair};
use op_p2p_core::{BlockVersion, PublishRequest};
use op_p2p_node::{NodeConfig, NodeHandle};
use op_p2p_node::{Runtime, system_now_ms};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::devnet::{Latency, latency};

/// Chain id of the bench network.
pub const BENCH_CHAIN_ID: u64 = 901;
/// How many earlier nodes each node dials (fewer when there are fewer earlier nodes).
pub const DIALS_PER_NODE: usize = 4;
/// Longest accepted command or reply line, bytes (checked before parsing).
pub const MAX_LINE: usize = 64 * 1024;
/// File name of the async-std child binary, looked up next to the running executable.
pub const ASYNC_STD_CHILD: &str = "op-p2p-bench-node-async-std";

/// A command from the coordinator to a child.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Cmd {
    /// Dial a peer and wait for the connection.
    Dial {
        /// Transport address.
        addr: Multiaddr,
        /// Its peer id.
        peer: PeerId,
    },
    /// Report [`Stats`].
    Stats,
    /// (Node 0 only) build `blocks` blocks, then sign and publish one every `interval_ms`.
    Publish {
        /// Number of the first block.
        #[serde(default = "one")]
        first: u64,
        /// Blocks to publish.
        blocks: u64,
        /// Milliseconds between blocks.
        interval_ms: u64,
        /// Transactions per block.
        txs: usize,
        /// Calldata bytes per transaction.
        data_len: usize,
        /// How the calldata is filled.
        #[serde(default)]
        fill: TxFill,
    },
    /// (The spammer only) flood the node at `addr` with invalid-signature v4 messages for
    /// `duration_ms`, at most `rate` per second, from a fresh identity each time the target
    /// bans the current one.
    Spam {
        /// The target's address.
        addr: Multiaddr,
        /// The target's peer id.
        peer: PeerId,
        /// Most messages per second.
        rate: u64,
        /// How long, ms.
        duration_ms: u64,
        /// Publish from a bare gossipsub swarm (`raw_spam`) instead of through an op-p2p
        /// node, to reach rates the node's publish round trip cannot.
        #[serde(default)]
        raw: bool,
    },
}

fn one() -> u64 {
    1
}

/// A child's resource and gossip counters at one moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// CPU time used by the process so far (all threads), milliseconds.
    pub cpu_ms: f64,
    /// Resident set size, kB.
    pub rss_kb: u64,
    /// Proportional set size, kB ([`process_pss_kb`]); 0 from a child that does not report it.
    #[serde(default)]
    pub pss_kb: u64,
    /// Connected peers.
    pub peers: u64,
    /// Mesh peers on the v4 block topic.
    pub mesh: u64,
    /// Gossip message bytes sent (gossipsub's `topic_msg_sent_bytes`, all topics).
    pub sent_bytes: u64,
    /// Gossip message bytes received after duplicate filtering.
    pub recv_bytes: u64,
    /// Gossip messages received after duplicate filtering.
    pub recv_msgs: u64,
    /// Bytes written on all streams (`libp2p_bandwidth_bytes_total`, outbound): gossipsub
    /// messages with their protobuf framing and control messages, identify, ping.
    #[serde(default)]
    pub stream_sent_bytes: u64,
    /// Gossip messages this node's core REJECTed (`op_p2p_gossip_verdicts_total`).
    #[serde(default)]
    pub rejected: u64,
    /// Gossip messages this node IGNOREd (`op_p2p_gossip_verdicts_total`): judged by the core,
    /// or unvalidated (over the peer budget, pool full, a banned peer's backlog).
    #[serde(default)]
    pub ignored: u64,
    /// Gossip messages IGNOREd unvalidated because the validation pool was full
    /// (`op_p2p_validation_pool_overflow_total`): what a flood costs honest traffic once the
    /// workers fall behind.
    #[serde(default)]
    pub pool_overflow: u64,
    /// Gossip messages IGNOREd unvalidated because their peer used up its checks of the
    /// second (`op_p2p_validation_pool_over_budget_total`).
    #[serde(default)]
    pub over_budget: u64,
}

/// A reply or report from a child.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum Msg {
    /// The node runs.
    Ready {
        /// Its peer id.
        peer: PeerId,
        /// Its TCP listen address.
        addr: Multiaddr,
    },
    /// A [`Cmd::Dial`] finished.
    Dialed {
        /// Whether the connection came up.
        ok: bool,
    },
    /// The answer to [`Cmd::Stats`].
    Stats(Stats),
    /// A block was accepted from gossip.
    Accept {
        /// Block number.
        number: u64,
        /// Wall clock, Unix milliseconds (fractional).
        at_ms: f64,
    },
    /// A block was handed to the node to sign and publish.
    Published {
        /// Block number.
        number: u64,
        /// Wall clock just before the publish call, Unix milliseconds.
        at_ms: f64,
        /// Sum of the encoded transactions, bytes.
        tx_bytes: usize,
    },
    /// The publishing run is over.
    Done,
    /// The spam run is over.
    SpamDone {
        /// Messages handed to gossipsub.
        sent: u64,
        /// Identities that got a connection and spammed (the first plus one per ban).
        identities: u64,
        /// Fresh identities whose connection the target refused (an IP ban does that).
        #[serde(default)]
        refused: u64,
        /// Spam wall time, ms.
        ms: f64,
    },
    /// Something failed.
    Error {
        /// What.
        error: String,
    },
}

/// Wall clock in fractional Unix milliseconds.
pub fn now_ms_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// CPU time of this process, ms: the sum of `/proc/self/task/*/schedstat` run times (ns
/// precision), or `/proc/self/stat` utime+stime (clock ticks, assumed 100 Hz) without it.
pub fn process_cpu_ms() -> f64 {
    let mut ns: u64 = 0;
    let mut found = false;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat"))
                && let Some(v) = s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
            {
                ns = ns.saturating_add(v);
                found = true;
            }
        }
    }
    if found {
        return ns as f64 / 1e6;
    }
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the `(comm)`, which may hold spaces: utime and stime are 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: u64 = f.get(11)?.parse().ok()?;
            let k: u64 = f.get(12)?.parse().ok()?;
            Some((u + k) as f64 * 10.0)
        })
        .unwrap_or(0.0)
}

/// The kB value of line `field` (`VmRSS:`, `Pss:`) of the `/proc` file `file`, 0 if unknown.
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

/// Resident set size of this process, kB (`VmRSS` in `/proc/self/status`), 0 if unknown.
pub fn process_rss_kb() -> u64 {
    proc_kb("/proc/self/status", "VmRSS:")
}

/// Proportional set size of this process, kB (`Pss` in `/proc/self/smaps_rollup`), 0 if
/// unknown: its resident pages with each shared page divided among the processes mapping it.
/// Twenty bench nodes map one binary, so RSS counts its resident text twenty times over (for
/// op-p2p about 9 MB of a 15 MB idle RSS); PSS is what one more node costs the machine.
pub fn process_pss_kb() -> u64 {
    proc_kb("/proc/self/smaps_rollup", "Pss:")
}

/// Sums the samples of metric family `name` (exact family name, any labels) in Prometheus
/// text, keeping only samples whose label text contains `label` when given.
pub fn metric_sum(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once('}')?,
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            if label.is_some_and(|want| !labels.contains(want)) {
                return None;
            }
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// `GET /metrics` from `addr` on a plain thread (runtime-neutral), at most 4 MiB.
fn scrape(addr: std::net::SocketAddr) -> oneshot::Receiver<String> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let body = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
            let mut out = String::new();
            s.take(4 << 20).read_to_string(&mut out)?;
            Ok(out)
        })()
        .unwrap_or_default();
        let _ = tx.send(body);
    });
    rx
}

async fn stats(node: &NodeHandle, v4_topic: &str) -> Stats {
    let peers = match node.admin().call(AdminRequest::PeerStats).await {
        Ok(AdminResponse::PeerStats(s)) => s.connected,
        _ => 0,
    };
    let text = match node.metrics_addr() {
        Some(a) => scrape(a).await.unwrap_or_default(),
        None => String::new(),
    };
    let hash = format!("\"{v4_topic}\"");
    Stats {
        cpu_ms: process_cpu_ms(),
        rss_kb: process_rss_kb(),
        pss_kb: process_pss_kb(),
        peers,
        mesh: metric_sum(&text, "gossipsub_mesh_peer_counts", Some(&hash)) as u64,
        sent_bytes: metric_sum(&text, "gossipsub_topic_msg_sent_bytes_total", None) as u64,
        recv_bytes: metric_sum(&text, "gossipsub_topic_msg_recv_bytes_total", None) as u64,
        recv_msgs: metric_sum(&text, "gossipsub_topic_msg_recv_counts_total", None) as u64,
        stream_sent_bytes: metric_sum(&text, "libp2p_bandwidth_bytes_total", Some("utbound"))
            as u64,
        rejected: metric_sum(
            &text,
            "op_p2p_gossip_verdicts_total",
            Some("verdict=\"reject\""),
        ) as u64,
        ignored: metric_sum(
            &text,
            "op_p2p_gossip_verdicts_total",
            Some("verdict=\"ignore\""),
        ) as u64,
        pool_overflow: metric_sum(&text, "op_p2p_validation_pool_overflow_total", None) as u64,
        over_budget: metric_sum(&text, "op_p2p_validation_pool_over_budget_total", None) as u64,
    }
}

/// Environment variable the coordinator sets on the spam target's child: the IP it listens on
/// instead of 127.0.0.1 (the unspecified address, so the spammer can reach it at a
/// non-loopback address while the mesh still dials 127.0.0.1). An environment variable, not a
/// flag, so both child binaries (tokio and async-std) read it the same way.
pub const LISTEN_IP_ENV: &str = "OP_P2P_BENCH_LISTEN_IP";

/// Environment variable the coordinator sets (to `1`) on the spam target's child for
/// `--spam-no-ban`: the target runs with `--p2p.ban.peers=false`, so the spammer keeps its one
/// identity and every message it sends reaches validation. It measures what validation costs
/// under a sustained flood, which the ban otherwise cuts short; never a setting for a real node.
pub const NO_BAN_ENV: &str = "OP_P2P_BENCH_NO_BAN";

/// The node config of bench node `index`: node 0 holds the sequencer key; metrics on an
/// ephemeral loopback port; no discovery (the coordinator wires the mesh).
pub fn child_config(index: u64) -> NodeConfig {
    child_config_on(index, std::net::Ipv4Addr::LOCALHOST.into())
}

/// [`child_config`] listening for libp2p on `listen_ip` (metrics stay on loopback).
pub fn child_config_on(index: u64, listen_ip: std::net::IpAddr) -> NodeConfig {
    let loopback = std::net::Ipv4Addr::LOCALHOST;
    let mut b = NodeConfig::builder(keypair(2000 + index))
        .chain(
            BENCH_CHAIN_ID,
            dev_key(0).address(),
            ForkSchedule::ALL_AT_GENESIS,
            2,
        )
        .listen_ip(listen_ip)
        .tcp_port(0)
        .udp_port(0)
        .discovery(false)
        .bootnodes([])
        .metrics_addr(std::net::SocketAddr::from((loopback, 0)))
        .rng_seed(index)
        // All nodes share 127.0.0.1: without this, op-node's IP-colocation penalty scores every
        // peer of a node with more than 10 connections at about -35, and gossipsub keeps that
        // node's mesh empty (it then gets blocks only through IHAVE/IWANT).
        .ip_colocation_whitelist([loopback.into()])
        // ...and every connection comes from 127.0.0.1, so the per-IP cap (10) would refuse
        // all but ten of them: loopback skips the caps here (never in production).
        .exempt_loopback_from_caps(true)
        // Peers learned from discovery and identify are on 127.0.0.1, which the address
        // policy never dials unless the netrestrict list covers it.
        .netrestrict(LOOPBACK_NETS);
    if index == 0 {
        b = b.sequencer_key(dev_key(0));
    }
    if let Some(n) = bench_validation_workers() {
        b = b.validation_workers(n);
    }
    b.build()
        .expect("fixed loopback settings: checked by the bench tests")
}

// ---- validation on every core (issue 15) ----

/// Environment variable that sets every bench child's validation worker count (as
/// `--p2p.validation.workers` does for a node; 0 validates on the event loop). The children
/// inherit it from the coordinator: `OP_P2P_BENCH_VALIDATION_WORKERS=1 op-p2p bench ...`.
pub const VALIDATION_WORKERS_ENV: &str = "OP_P2P_BENCH_VALIDATION_WORKERS";

/// The worker count [`VALIDATION_WORKERS_ENV`] asks for, if it is set to a number.
fn bench_validation_workers() -> Option<usize> {
    std::env::var(VALIDATION_WORKERS_ENV)
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn emit(msg: &Msg) {
    if let Ok(line) = serde_json::to_string(msg) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// Reads stdin lines on a plain thread; the process exits when stdin closes (the coordinator
/// is gone). Lines longer than [`MAX_LINE`] or not a [`Cmd`] are reported and skipped.
fn stdin_commands() -> mpsc::Receiver<Cmd> {
    let (mut tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        loop {
            let mut line = Vec::new();
            match (&mut lock)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) if line.len() > MAX_LINE => {
                    emit(&Msg::Error {
                        error: "command line too long".into(),
                    });
                    // Skip the rest of the line.
                    let mut sink = Vec::new();
                    if matches!(lock.read_until(b'\n', &mut sink), Ok(0) | Err(_)) {
                        std::process::exit(0);
                    }
                }
                Ok(_) => match serde_json::from_slice::<Cmd>(&line) {
                    Ok(cmd) => {
                        if futures::executor::block_on(tx.send(cmd)).is_err() {
                            std::process::exit(0);
                        }
                    }
                    Err(e) => emit(&Msg::Error {
                        error: format!("bad command: {e}"),
                    }),
                },
            }
        }
    });
    rx
}

/// A child: starts node `index` with `spawn`, then serves coordinator commands until stdin
/// closes. Runtime-neutral: `rt` gives the timer, `spawn` the node.
pub async fn child_main<R, F>(rt: R, index: u64, spawn: F) -> Result<(), String>
where
    R: Runtime,
    F: Fn(NodeConfig) -> BoxFuture<'static, Result<NodeHandle, String>>,
{
    let listen_ip = std::env::var(LISTEN_IP_ENV)
        .ok()
        .and_then(|s| s.parse::<std::net::IpAddr>().ok());
    let mut config = match listen_ip {
        Some(ip) => child_config_on(index, ip),
        None => child_config(index),
    };
    if std::env::var(NO_BAN_ENV).is_ok_and(|v| v == "1") {
        config.core.bans.enabled = false;
    }
    let mut node = spawn(config).await?;
    let v4_topic = BlockTopic::all(BENCH_CHAIN_ID)[3].to_string();
    let addr = node
        .listen_addrs()
        .into_iter()
        .next()
        .ok_or("node has no listen address")?;
    // Listening on every interface: the mesh reaches it at 127.0.0.1 like every other node.
    let addr = if listen_ip.is_some_and(|ip| ip.is_unspecified()) {
        with_ip(&addr, std::net::Ipv4Addr::LOCALHOST.into())
    } else {
        addr
    };
    emit(&Msg::Ready {
        peer: node.peer_id(),
        addr,
    });
    let mut blocks = node.blocks().ok_or("blocks taken")?.fuse();
    let mut cmds = stdin_commands().fuse();
    let mut queue: std::collections::VecDeque<(
        op_p2p_core::op_alloy_rpc_types_engine::OpExecutionPayload,
        _,
        usize,
    )> = Default::default();
    let mut interval_ms = 0u64;
    let mut start_ms = 0u64;
    let mut published = 0u64;
    let mut tick: futures::future::Fuse<BoxFuture<'static, ()>> =
        futures::future::Fuse::terminated();
    loop {
        futures::select! {
            b = blocks.next() => {
                let Some(b) = b else { break };
                emit(&Msg::Accept {
                    number: b.envelope.payload.as_v1().block_number,
                    at_ms: now_ms_f64(),
                });
            }
            cmd = cmds.next() => {
                let Some(cmd) = cmd else { break };
                match cmd {
                    Cmd::Dial { addr, peer } => {
                        let ok = node
                            .admin()
                            .call(AdminRequest::ConnectPeer { addr, peer })
                            .await
                            .is_ok();
                        emit(&Msg::Dialed { ok });
                    }
                    Cmd::Stats => emit(&Msg::Stats(stats(&node, &v4_topic).await)),
                    Cmd::Spam { addr, peer, rate, duration_ms, raw } => {
                        // The raw spammer leaves this process's bench node running, idle: it
                        // has no peers and is never dialled.
                        let r = if raw {
                            raw_spam(&rt, (addr, peer), rate, duration_ms).await
                        } else {
                            spam(&rt, &mut node, &spawn, (addr, peer), rate, duration_ms).await
                        };
                        match r {
                            Ok(m) => emit(&m),
                            Err(error) => emit(&Msg::Error { error }),
                        }
                    }
                    Cmd::Publish { interval_ms: iv, .. } => {
                        // Build every block first so building is not timed; sign at publish.
                        for (b, bytes) in publish_blocks_of(&cmd, system_now_ms() / 1000) {
                            let (p, root) = b.build();
                            queue.push_back((p, root, bytes));
                        }
                        interval_ms = iv;
                        start_ms = rt.now_ms();
                        published = 0;
                        tick = rt.sleep(Duration::ZERO).fuse();
                    }
                }
            }
            () = tick => {
                if let Some((payload, root, bytes)) = queue.pop_front() {
                    let number = payload.as_v1().block_number;
                    let at_ms = now_ms_f64();
                    match node
                        .publish(PublishRequest::Sign {
                            payload: Box::new(payload),
                            parent_beacon_block_root: root,
                        })
                        .await
                    {
                        Ok(_) => emit(&Msg::Published { number, at_ms, tx_bytes: bytes }),
                        Err(e) => emit(&Msg::Error { error: format!("publish {number}: {e}") }),
                    }
                    published += 1;
                }
                if queue.is_empty() {
                    emit(&Msg::Done);
                } else {
                    let due = start_ms + published * interval_ms;
                    let wait = due.saturating_sub(rt.now_ms());
                    tick = rt.sleep(Duration::from_millis(wait)).fuse();
                }
            }
        }
    }
    node.shutdown().await;
    Ok(())
}

/// The blocks a [`Cmd::Publish`] asks for, in publish order, unsigned, each with its encoded
/// transaction bytes: block `k` is stamped `start_s + k × interval`, its publish time, so a
/// long run stays within validators' 60 s window. Empty for any other command.
pub fn publish_blocks_of(cmd: &Cmd, start_s: u64) -> Vec<(BlockBuilder, usize)> {
    let Cmd::Publish {
        first,
        blocks,
        interval_ms,
        txs,
        data_len,
        fill,
    } = *cmd
    else {
        return Vec::new();
    };
    (first..first.saturating_add(blocks))
        .enumerate()
        .map(|(k, number)| {
            let t = block_transactions(number, txs, data_len, fill);
            let bytes = t.iter().map(|x| x.len()).sum();
            let ts = start_s + (k as u64).saturating_mul(interval_ms) / 1000;
            (
                BlockBuilder::new(BlockVersion::V4, number, ts).with_transactions(t),
                bytes,
            )
        })
        .collect()
}

/// Environment variable the coordinator sets on an external child (`--compare`): the path of
/// this executable, whose hidden `bench-blocks` command ([`write_blocks`]) hands the child the
/// very blocks an op-p2p node 0 would publish, so both implementations carry the same bytes.
pub const BENCH_EXE_ENV: &str = "OP_P2P_BENCH_EXE";

/// Writes the blocks of `cmd` (a [`Cmd::Publish`]) to `out`, each signed by the bench
/// sequencer and encoded for the wire (snappy-compressed, the v4 topic's format) behind its
/// length as a 4-byte big-endian integer.
pub fn write_blocks(cmd: &Cmd, start_s: u64, out: &mut impl Write) -> Result<(), String> {
    if !matches!(cmd, Cmd::Publish { .. }) {
        return Err("bench-blocks takes a publish command".into());
    }
    let key = dev_key(0);
    for (b, _) in publish_blocks_of(cmd, start_s) {
        let wire = b
            .sign(&key, BENCH_CHAIN_ID)
            .map_err(|e| format!("block {}: {e}", b.number))?;
        let len = u32::try_from(wire.len()).map_err(|_| "block over 4 GiB".to_string())?;
        out.write_all(&len.to_be_bytes())
            .and_then(|()| out.write_all(&wire))
            .map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

/// Pause between two attempts of the spammer to get a refused fresh identity in, ms.
pub const SPAM_RETRY_MS: u64 = 100;

/// Indices of the spammer's identities start here (far from the mesh's; never 0, the sequencer).
const SPAM_INDEX_BASE: u64 = 1_000_000;

/// The spammer's `k`-th identity: a bench node config under an index no mesh node has.
fn spam_config(k: u64) -> NodeConfig {
    let mut c = child_config(SPAM_INDEX_BASE + k);
    // The spammer publishes badly signed blocks on purpose, and wants a refused send back at
    // once (it then pauses or changes identity), not retried for the default 10 s.
    c.core.publish.verify_signer = false;
    c.core.publish.deadline_ms = 20;
    c
}

/// `addr` with its first `/ip4` or `/ip6` component replaced by `ip`.
pub fn with_ip(addr: &Multiaddr, ip: std::net::IpAddr) -> Multiaddr {
    use libp2p::multiaddr::Protocol;
    let mut done = false;
    addr.iter()
        .map(|p| match p {
            Protocol::Ip4(_) | Protocol::Ip6(_) if !done => {
                done = true;
                match ip {
                    std::net::IpAddr::V4(v4) => Protocol::Ip4(v4),
                    std::net::IpAddr::V6(v6) => Protocol::Ip6(v6),
                }
            }
            p => p,
        })
        .collect()
}

/// Connects `node` to `target`; whether the connection came up.
async fn connect(node: &NodeHandle, (addr, peer): &(Multiaddr, PeerId)) -> bool {
    node.admin()
        .call(AdminRequest::ConnectPeer {
            addr: addr.clone(),
            peer: *peer,
        })
        .await
        .is_ok()
}

/// Floods `target` with v4 messages whose signature is invalid for the chain's signer, each
/// distinct: a fixed empty block and a fixed `r` taken from a real signature (so recovery
/// does its full work and yields some other address: `WrongSigner`), with `s` drawn at
/// random per message. At most `rate` per second for `duration_ms`. When the target bans the
/// current identity (no peer left), the node is replaced by a fresh identity that connects
/// again from the same IP, as a sybil spammer would; while the target refuses it (an IP ban),
/// a fresh identity tries again every [`SPAM_RETRY_MS`], each refusal counted.
async fn spam<R, F>(
    rt: &R,
    node: &mut NodeHandle,
    spawn: &F,
    target: (Multiaddr, PeerId),
    rate: u64,
    duration_ms: u64,
) -> Result<Msg, String>
where
    R: Runtime,
    F: Fn(NodeConfig) -> BoxFuture<'static, Result<NodeHandle, String>>,
{
    use op_p2p_core::alloy_primitives::{B256, Signature, U256};
    use op_p2p_core::op_alloy_rpc_types_engine::{OpNetworkPayloadEnvelope, PayloadHash};
    use std::sync::Arc;

    let ts = system_now_ms() / 1000;
    let (payload, root) = BlockBuilder::new(BlockVersion::V4, 1_000_000, ts).build();
    // A real signature over something else: its r is a valid curve x coordinate.
    let r = dev_key(7)
        .sign_block(BENCH_CHAIN_ID, b"op-p2p bench spam")
        .r();
    let mut seed = 0x5eed_u64;
    let mut identities = 1u64;
    let mut refused = 0u64;
    let mut sent = 0u64;
    // The spammer's identities publish through a node that does not check signatures
    // ([`spam_config`]): the first one replaces the bench node this process ran.
    let old = std::mem::replace(node, spawn(spam_config(0)).await?);
    old.shutdown().await;
    if !connect(node, &target).await {
        return Err("spammer could not connect to the target".into());
    }
    let start = rt.now_ms();
    let end = start.saturating_add(duration_ms);
    while rt.now_ms() < end {
        let elapsed = rt.now_ms().saturating_sub(start);
        if sent >= rate.saturating_mul(elapsed.max(1)) / 1000 {
            rt.sleep(Duration::from_millis(1)).await;
            continue;
        }
        let mut s_bytes = [0u8; 32];
        for chunk in s_bytes.chunks_mut(8) {
            chunk.copy_from_slice(&splitmix(&mut seed).to_be_bytes());
        }
        s_bytes[0] &= 0x7f; // below the curve order
        s_bytes[31] |= 1; // never zero
        let env = OpNetworkPayloadEnvelope {
            payload: payload.clone(),
            signature: Signature::new(r, U256::from_be_bytes(s_bytes), seed & 1 == 1),
            payload_hash: PayloadHash(B256::ZERO),
            parent_beacon_block_root: root,
        };
        match node.publish(PublishRequest::Signed(Arc::new(env))).await {
            Ok(_) => sent += 1,
            Err(_) => {
                let connected = match node.admin().call(AdminRequest::PeerStats).await {
                    Ok(AdminResponse::PeerStats(s)) => s.connected,
                    _ => 0,
                };
                if connected == 0 {
                    let mut k = identities + refused;
                    let (joined, r) = rejoin(rt, end, async || {
                        let old = std::mem::replace(node, spawn(spam_config(k)).await?);
                        old.shutdown().await;
                        k += 1;
                        Ok(connect(node, &target).await)
                    })
                    .await?;
                    identities += u64::from(joined);
                    refused += r;
                } else {
                    // Not yet subscribed or the send queue is full: a moment's pause.
                    rt.sleep(Duration::from_millis(2)).await;
                }
            }
        }
    }
    Ok(Msg::SpamDone {
        sent,
        identities,
        refused,
        ms: rt.now_ms().saturating_sub(start) as f64,
    })
}

// ---- the raw spammer (`--spam-raw`) ----

/// Messages the raw spammer's gossipsub may queue for its one connection (rust-libp2p's
/// default; the node's own is 32). At 20,000 messages a second that is a quarter second of
/// sending: enough to ride out a scheduling hiccup, small enough to bound memory.
pub const RAW_SPAM_QUEUE_LEN: usize = 5_000;

/// How long the raw spammer's gossipsub remembers the ids of what it published, s. Every
/// message is distinct, so at 20,000 a second this cache is all the memory it holds.
const RAW_SPAM_DUPLICATE_CACHE_S: u64 = 3;

/// How long a fresh raw-spammer identity waits for the target to take it in (connect and
/// announce its subscriptions), ms.
const RAW_SPAM_JOIN_MS: u64 = 5_000;

/// The raw spammer's pause after its send queue was full or the target not yet subscribed,
/// ms: long enough for the connection task to drain some of the queue.
const RAW_SPAM_BACKOFF_MS: u64 = 2;

/// How long the raw spammer keeps its connection after the last publish, ms, so its send
/// queue (at most [`RAW_SPAM_QUEUE_LEN`] messages) goes out rather than being dropped.
const RAW_SPAM_DRAIN_MS: u64 = 500;

/// Most messages the raw spammer hands gossipsub per pacing tick (~1 ms): a catch-up after a
/// pause stays a bounded burst and the swarm is polled in between.
const RAW_SPAM_MAX_BATCH: u64 = 500;

type RawSwarm = libp2p::Swarm<libp2p::gossipsub::Behaviour>;

/// The raw spammer's gossipsub: anonymous messages (as op-stack's StrictNoSign expects, so the
/// target's gossipsub lets them through to validation), the node's size limit, op-node's
/// content-based message id (rust-libp2p's default id of an anonymous message is the same for
/// every message, so every publish after the first would be a duplicate), and small caches of
/// its own so its memory stays flat at tens of thousands of messages a second.
fn raw_gossipsub() -> Result<libp2p::gossipsub::Behaviour, String> {
    use libp2p::gossipsub::{self, MessageAuthenticity, ValidationMode};
    let max_transmit = op_p2p_node::behaviour::gossipsub_config()
        .map_err(|e| format!("node gossipsub config: {e}"))?
        .max_transmit_size();
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Anonymous)
        .max_transmit_size(max_transmit)
        .message_id_fn(|m: &gossipsub::Message| {
            let id = op_p2p_core::gossip::wire::message_id(m.topic.as_str(), &m.data);
            gossipsub::MessageId::from(id.0.to_vec())
        })
        .connection_handler_queue_len(RAW_SPAM_QUEUE_LEN)
        .history_length(2)
        .history_gossip(1)
        .duplicate_cache_time(Duration::from_secs(RAW_SPAM_DUPLICATE_CACHE_S))
        .build()
        .map_err(|e| format!("spammer gossipsub config: {e}"))?;
    gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config)
        .map_err(|e| format!("spammer gossipsub: {e}"))
}

/// The raw spammer's `k`-th identity: a swarm with nothing but [`raw_gossipsub`], on the
/// runtime's transport (TCP, Noise, Yamux: what the nodes speak).
fn raw_swarm<R: Runtime>(rt: &R, k: u64) -> Result<RawSwarm, String> {
    let key = keypair(SPAM_INDEX_BASE + k);
    let transport = rt
        .transport(&key)
        .map_err(|e| format!("spammer transport: {e}"))?;
    Ok(libp2p::Swarm::new(
        transport,
        raw_gossipsub()?,
        key.public().to_peer_id(),
        rt.swarm_config()
            .with_idle_connection_timeout(Duration::from_secs(60)),
    ))
}

/// Dials the target from `swarm` and drives it until the target has announced its
/// subscription to `topic` (true: publishing reaches it now), or the connection failed or
/// closed (a refusal), or `wait_ms` passed (false).
async fn raw_join<R: Runtime>(
    rt: &R,
    swarm: &mut RawSwarm,
    (addr, peer): &(Multiaddr, PeerId),
    topic: &libp2p::gossipsub::TopicHash,
    wait_ms: u64,
) -> bool {
    use libp2p::gossipsub::Event;
    use libp2p::swarm::SwarmEvent;
    use libp2p::swarm::dial_opts::DialOpts;
    let dial = DialOpts::peer_id(*peer)
        .addresses(vec![addr.clone()])
        .build();
    if swarm.dial(dial).is_err() {
        return false;
    }
    let mut timeout = rt.sleep(Duration::from_millis(wait_ms)).fuse();
    loop {
        let ev = futures::select! {
            ev = swarm.select_next_some() => ev,
            () = timeout => return false,
        };
        match ev {
            SwarmEvent::Behaviour(Event::Subscribed {
                peer_id, topic: t, ..
            }) if peer_id == *peer && t == *topic => {
                return true;
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(p), ..
            } if p == *peer => return false,
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } if peer_id == *peer => return false,
            _ => {}
        }
    }
}

/// What woke the raw spammer's loop.
enum RawStep {
    /// The last connection to the target closed (it banned this identity).
    TargetGone,
    /// Another swarm event.
    Swarm,
    /// The pacing tick.
    Tick,
}

/// [`spam`] without an op-p2p node (`--spam-raw`): the same invalid-signature v4 messages,
/// published from a bare gossipsub swarm ([`raw_swarm`]) straight into its connection's send
/// queue, a batch per ~1 ms tick, so one process reaches tens of thousands a second (the node's
/// publish is a round trip through its event loop per message). At most `rate` per second
/// for `duration_ms`; a full send queue counts as not sent and pauses [`RAW_SPAM_BACKOFF_MS`].
/// When the target closes the connection (it banned the identity), a fresh identity dials
/// again, and while the target refuses them (an IP ban) a fresh one tries every
/// [`SPAM_RETRY_MS`], each refusal counted, as [`spam`] does.
async fn raw_spam<R: Runtime>(
    rt: &R,
    target: (Multiaddr, PeerId),
    rate: u64,
    duration_ms: u64,
) -> Result<Msg, String> {
    use libp2p::gossipsub::{PublishError, TopicHash};
    use libp2p::swarm::SwarmEvent;
    use op_p2p_core::alloy_primitives::{Signature, U256};
    use op_p2p_core::gossip::wire;

    let topic = TopicHash::from_raw(BlockTopic::all(BENCH_CHAIN_ID)[3].to_string());
    // The bytes every message signs, built once; each message differs only in its `s`.
    let ts = system_now_ms() / 1000;
    let (payload, root) = BlockBuilder::new(BlockVersion::V4, 1_000_000, ts).build();
    let signed = wire::signed_bytes(&payload, root).map_err(|e| format!("spam block: {e}"))?;
    // A real signature over something else: its r is a valid curve x coordinate.
    let r = dev_key(7)
        .sign_block(BENCH_CHAIN_ID, b"op-p2p bench spam")
        .r();
    let mut seed = 0x5eed_u64;
    let mut message = move || -> Result<Vec<u8>, String> {
        let mut s_bytes = [0u8; 32];
        for chunk in s_bytes.chunks_mut(8) {
            chunk.copy_from_slice(&splitmix(&mut seed).to_be_bytes());
        }
        s_bytes[0] &= 0x7f; // below the curve order
        s_bytes[31] |= 1; // never zero
        let sig = Signature::new(r, U256::from_be_bytes(s_bytes), seed & 1 == 1);
        wire::encode_message(&sig, &signed).map_err(|e| format!("spam message: {e}"))
    };

    let mut k = 0u64;
    let mut swarm = raw_swarm(rt, k)?;
    if !raw_join(rt, &mut swarm, &target, &topic, RAW_SPAM_JOIN_MS * 2).await {
        return Err("raw spammer could not connect to the target".into());
    }
    let mut identities = 1u64;
    let mut refused = 0u64;
    let mut sent = 0u64;
    let mut lost = false;
    let start = rt.now_ms();
    let end = start.saturating_add(duration_ms);
    let mut tick = rt.sleep(Duration::ZERO).fuse();
    while rt.now_ms() < end {
        if lost {
            lost = false;
            let (joined, r) = rejoin(rt, end, async || {
                k += 1;
                swarm = raw_swarm(rt, k)?;
                Ok(raw_join(rt, &mut swarm, &target, &topic, RAW_SPAM_JOIN_MS).await)
            })
            .await?;
            identities += u64::from(joined);
            refused += r;
            tick = rt.sleep(Duration::ZERO).fuse();
            continue;
        }
        let step = futures::select! {
            ev = swarm.select_next_some() => match ev {
                SwarmEvent::ConnectionClosed {
                    peer_id,
                    num_established: 0,
                    ..
                } if peer_id == target.1 => RawStep::TargetGone,
                _ => RawStep::Swarm,
            },
            () = tick => RawStep::Tick,
        };
        match step {
            RawStep::TargetGone => lost = true,
            RawStep::Swarm => {}
            RawStep::Tick => {
                let elapsed = rt.now_ms().saturating_sub(start);
                let due = rate.saturating_mul(elapsed.max(1)) / 1000;
                let mut pause = 1;
                for _ in 0..due.saturating_sub(sent).min(RAW_SPAM_MAX_BATCH) {
                    match swarm.behaviour_mut().publish(topic.clone(), message()?) {
                        Ok(_) => sent += 1,
                        // Not sent: the queue is full, or the target is gone (its closed
                        // connection is the next swarm event).
                        Err(
                            PublishError::AllQueuesFull(_) | PublishError::NoPeersSubscribedToTopic,
                        ) => {
                            pause = RAW_SPAM_BACKOFF_MS;
                            break;
                        }
                        // Cannot happen (every `s` differs); the next message has another.
                        Err(PublishError::Duplicate) => {}
                        Err(e) => return Err(format!("raw spam publish: {e}")),
                    }
                }
                tick = rt.sleep(Duration::from_millis(pause)).fuse();
            }
        }
    }
    let ms = rt.now_ms().saturating_sub(start) as f64;
    // What is still queued was counted as sent: let the connection write it out before the
    // swarm (and with it the connection) goes.
    let mut drained = rt.sleep(Duration::from_millis(RAW_SPAM_DRAIN_MS)).fuse();
    loop {
        futures::select! {
            _ = swarm.select_next_some() => {}
            () = drained => break,
        }
    }
    drop(swarm);
    Ok(Msg::SpamDone {
        sent,
        identities,
        refused,
        ms,
    })
}

// ---- end of the raw spammer ----

/// After a ban: fresh identities from the same IP, as a sybil spammer would, one every
/// [`SPAM_RETRY_MS`] while the target refuses them (an IP ban), until `attempt` gets one in or
/// `end` passes. Whether one got in, and the refusals.
async fn rejoin<R: Runtime>(
    rt: &R,
    end: u64,
    mut attempt: impl AsyncFnMut() -> Result<bool, String>,
) -> Result<(bool, u64), String> {
    let mut refused = 0;
    loop {
        if attempt().await? {
            return Ok((true, refused));
        }
        refused += 1;
        if rt.now_ms() >= end {
            return Ok((false, refused));
        }
        rt.sleep(Duration::from_millis(SPAM_RETRY_MS)).await;
    }
}

/// Which runtime the children run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BenchRuntime {
    /// Every node on tokio.
    Tokio,
    /// Every node on async-std.
    AsyncStd,
    /// Even nodes on tokio, odd nodes on async-std.
    Mixed,
}

/// A block size preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum BlockSize {
    /// 100 transactions with 64 bytes of calldata each.
    #[value(name = "100tx")]
    #[serde(rename = "100tx")]
    Txs100,
    /// 1,000 transactions with 64 bytes of calldata each.
    #[value(name = "1000tx")]
    #[serde(rename = "1000tx")]
    Txs1000,
    /// About 1 MB: 1,000 transactions with 930 bytes of calldata each.
    #[value(name = "1mb")]
    #[serde(rename = "1mb")]
    Mb1,
}

impl BlockSize {
    /// (transactions, calldata bytes per transaction).
    pub fn shape(self) -> (usize, usize) {
        match self {
            BlockSize::Txs100 => (100, 64),
            BlockSize::Txs1000 => (1000, 64),
            BlockSize::Mb1 => (1000, 930),
        }
    }
}

// ---- Block contents (issue 15): calldata size and fill, over the size presets. ----

/// How the bench fills each transaction's calldata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TxFill {
    /// A repeating pattern that snappy compresses to about half.
    #[default]
    Pattern,
    /// Pseudo-random bytes that do not compress (like real hashes, addresses, signatures).
    Random,
}

impl From<TxFill> for op_p2p_core::testkit::Calldata {
    fn from(f: TxFill) -> Self {
        match f {
            TxFill::Pattern => Self::Pattern,
            TxFill::Random => Self::Random,
        }
    }
}

/// What a block's transactions carry, over its [`BlockSize`] preset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockContents {
    /// Calldata bytes per transaction instead of the preset's.
    pub tx_bytes: Option<usize>,
    /// How the calldata is filled.
    pub fill: TxFill,
}

impl BlockContents {
    /// (transactions, calldata bytes per transaction) of `size` with these contents.
    pub fn shape(&self, size: BlockSize) -> (usize, usize) {
        let (txs, data_len) = size.shape();
        (txs, self.tx_bytes.unwrap_or(data_len))
    }
}

/// The transactions of bench block `number`.
fn block_transactions(
    number: u64,
    txs: usize,
    data_len: usize,
    fill: TxFill,
) -> Vec<op_p2p_core::alloy_primitives::Bytes> {
    op_p2p_core::testkit::transactions_filled(BENCH_CHAIN_ID, number, txs, data_len, fill.into())
}

/// The size column: the preset, and the calldata when it is not the preset's.
fn size_label(r: &BenchResult) -> String {
    let preset = match r.size {
        BlockSize::Txs100 => "100tx",
        BlockSize::Txs1000 => "1000tx",
        BlockSize::Mb1 => "1mb",
    };
    let fill = match r.tx_fill {
        TxFill::Pattern => "",
        TxFill::Random => "r",
    };
    if r.tx_data_len == r.size.shape().1 && fill.is_empty() {
        preset.to_string()
    } else {
        format!("{preset}/{}{fill}", r.tx_data_len)
    }
}

// ---- end block contents ----

/// One bench scenario.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Nodes (node 0 publishes).
    pub nodes: usize,
    /// Block size.
    pub size: BlockSize,
    /// Runtime of the children.
    pub runtime: BenchRuntime,
    /// Blocks to publish.
    pub blocks: u64,
    /// Milliseconds between blocks.
    pub interval_ms: u64,
    /// Seed of the dial choice.
    pub seed: u64,
    /// The `op-p2p` executable (children run it as `bench-node`).
    pub exe: PathBuf,
    /// Bound of the whole scenario.
    pub timeout: Duration,
    /// Run the spam phase too, at most this many invalid messages per second.
    pub spam_rate: Option<u64>,
    /// The loopback address the spammer reaches the target at (`None`: 127.0.0.1). Only
    /// loopback: a load test here sends to addresses of this machine's loopback range alone.
    /// Loopback is exempt from IP bans, so the bench shows the ban by peer id; the IP ban is
    /// shown by the core's tests.
    pub spam_ip: Option<std::net::IpAddr>,
    /// Run the spammer in a network namespace of its own ([`crate::netns`], needs root), so
    /// the target sees it come from a non-loopback address ([`crate::netns::NetNs::PEER_IP`])
    /// and bans its IP and limits its accept rate as it would an outside attacker's.
    /// Overrides `spam_ip`.
    pub spam_netns: bool,
    /// The spam target does not ban ([`NO_BAN_ENV`]): the spammer's flood is sustained and
    /// every message is validated, to measure validation under spam rather than the ban.
    pub spam_no_ban: bool,
    /// The spammer publishes from a bare gossipsub swarm (`raw_spam`) rather than through
    /// an op-p2p node, whose publish round trip caps it at several hundred messages a second.
    pub spam_raw: bool,
    /// Calldata size and fill of the transactions (the preset's by default).
    pub contents: BlockContents,
    /// Run nodes as `child_bin <index>` instead of op-p2p nodes (which ones:
    /// [`Self::child_nodes`]): another implementation speaking the child protocol ([`Cmd`],
    /// [`Msg`]), such as the kona-p2p child in `bench/kona`, under the same coordinator,
    /// topology and blocks. Its nodes report no sent bytes or verdict counts (0 in the result).
    pub child_bin: Option<PathBuf>,
    /// Which nodes run [`Self::child_bin`].
    pub child_nodes: ChildNodes,
}

/// Which nodes of a scenario run the external child ([`BenchOptions::child_bin`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChildNodes {
    /// Every node: the other implementation alone (`--compare`).
    #[default]
    All,
    /// Odd nodes: a mixed mesh whose publisher (node 0) is op-p2p (`--mix`).
    Odd,
    /// Even nodes: a mixed mesh whose publisher is the other implementation (`--mix`).
    Even,
}

impl ChildNodes {
    /// Whether node `index` runs the external child.
    pub fn includes(self, index: usize) -> bool {
        match self {
            ChildNodes::All => true,
            ChildNodes::Odd => index % 2 == 1,
            ChildNodes::Even => index.is_multiple_of(2),
        }
    }
}

impl BenchOptions {
    /// What the nodes run: `op-p2p`; the file name of [`Self::child_bin`] without an
    /// `op-p2p-bench-` prefix (`kona` for `op-p2p-bench-kona`); or, for a mixed mesh, both
    /// joined by `+`, the publisher's first (`op-p2p+kona`, `kona+op-p2p`).
    pub fn implementation(&self) -> String {
        let Some(bin) = &self.child_bin else {
            return "op-p2p".to_string();
        };
        let name = bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| bin.display().to_string());
        let name = match name.strip_prefix("op-p2p-bench-") {
            Some(short) if !short.is_empty() => short.to_string(),
            _ => name,
        };
        match self.child_nodes {
            ChildNodes::All => name,
            ChildNodes::Odd => format!("op-p2p+{name}"),
            ChildNodes::Even => format!("{name}+op-p2p"),
        }
    }
}

/// What one scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Nodes.
    pub nodes: usize,
    /// Block size preset.
    pub size: BlockSize,
    /// Runtime of the children.
    pub runtime: BenchRuntime,
    /// What the nodes run (`op-p2p`, or the external child's file name).
    pub implementation: String,
    /// Calldata bytes per transaction.
    pub tx_data_len: usize,
    /// How the calldata was filled.
    pub tx_fill: TxFill,
    /// Encoded transaction bytes per block (mean).
    pub block_tx_bytes: f64,
    /// Gossip message bytes per block as received (mean, snappy-compressed envelope).
    pub gossip_msg_bytes: f64,
    /// Blocks published.
    pub published: u64,
    /// (node, block) pairs delivered over those expected (receivers × published).
    pub delivered_fraction: f64,
    /// Publish → accept latency over all (receiver, block) pairs.
    pub latency: Latency,
    /// Publish → accept latency per block at the last node (ms; `null` when not delivered).
    pub last_node_ms: Vec<Option<f64>>,
    /// Receiver CPU per block, ms: (CPU during publishing − the idle rate × that time) / blocks,
    /// averaged over receivers.
    pub receiver_cpu_ms_per_block: f64,
    /// The same without subtracting the idle rate.
    pub receiver_cpu_ms_per_block_raw: f64,
    /// Idle CPU of a receiver, ms per second (heartbeats, pings).
    pub idle_cpu_ms_per_s: f64,
    /// RSS per receiver at the end, kB: mean and max.
    pub rss_kb_mean: f64,
    /// Largest receiver RSS at the end, kB.
    pub rss_kb_max: u64,
    /// RSS of the publisher at the end, kB (holds every prebuilt block).
    pub rss_kb_publisher: u64,
    /// Mean receiver RSS over its connected peers, kB per peer.
    pub rss_kb_per_peer: f64,
    /// PSS per receiver at the end, kB (mean): shared pages (the binary's text) divided among
    /// the nodes that map them.
    pub pss_kb_mean: f64,
    /// Mean connected peers per node.
    pub peers_mean: f64,
    /// Mean v4 mesh peers per node at the start.
    pub mesh_mean: f64,
    /// Nodes without a v4 mesh peer when publishing started (readiness gave up after 20 s).
    pub nodes_without_mesh: usize,
    /// Gossip bytes sent per block per node (mean over all nodes).
    pub sent_bytes_per_block_per_node: f64,
    /// All stream bytes sent per block per node (gossip with framing and control traffic,
    /// identify, ping; without Noise and Yamux overhead), idle rate not subtracted.
    pub stream_bytes_sent_per_block_per_node: f64,
    /// Copies of the block sent per node per block (sent bytes / message bytes).
    pub copies_per_block_per_node: f64,
    /// Copies over the mean mesh degree.
    pub amplification_over_mesh: f64,
    /// 1-minute load average at the start of the scenario.
    pub loadavg_start: f64,
    /// Wall time of the scenario, s.
    pub seconds: f64,
    /// The spam phase, when asked for.
    pub spam: Option<SpamResult>,
}

/// The spam phase: the same publishing run again while a spammer child floods the last node
/// (the target) with invalid-signature messages.
#[derive(Debug, Clone, Serialize)]
pub struct SpamResult {
    /// The spammer's ceiling, messages per second.
    pub rate_limit: u64,
    /// Whether the target ran without bans (`--spam-no-ban`).
    pub no_ban: bool,
    /// Whether the spammer was a bare gossipsub swarm (`--spam-raw`).
    pub raw: bool,
    /// Messages the spammer handed to gossipsub, per second of spamming.
    pub sent_per_s: f64,
    /// Identities the spammer used (one more per ban).
    pub identities: u64,
    /// Identities burned per minute of spamming.
    pub identities_per_min: f64,
    /// Fresh identities the target refused at connect (after an IP ban).
    pub refused: u64,
    /// The IP the target saw the spammer at.
    pub spammer_ip: std::net::IpAddr,
    /// REJECT verdicts of the target per second of spamming.
    pub target_rejects_per_s: f64,
    /// Gossip messages the target received (after duplicate filtering, honest blocks
    /// included) per second of spamming: with the verdicts, where the spammer's messages went.
    pub target_received_per_s: f64,
    /// IGNORE verdicts of the target per second of spamming.
    pub target_ignores_per_s: f64,
    /// Messages the target's validation pool turned away unvalidated (full) per second of
    /// spamming.
    pub target_pool_overflow_per_s: f64,
    /// Messages the target IGNOREd unvalidated because their peer was over its checks a
    /// second, per second of spamming.
    pub target_over_budget_per_s: f64,
    /// Target CPU from the first block under spam to the end (honest blocks included), ms per
    /// second (of one core).
    pub target_cpu_ms_per_s: f64,
    /// Publish → accept latency at the target without spam (the first phase).
    pub target_unloaded: Latency,
    /// The same under spam.
    pub target_loaded: Latency,
    /// Publish → accept latency over all receivers under spam.
    pub all_loaded: Latency,
    /// (node, block) pairs delivered under spam over those expected.
    pub delivered_fraction: f64,
}

/// Why a scenario failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A child could not be started or its pipes used.
    #[error("child {index}: {error}")]
    Child {
        /// Child index.
        index: usize,
        /// Why.
        error: String,
    },
    /// A phase did not finish in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// Fewer than two nodes.
    #[error("need at least 2 nodes")]
    TooFew,
}

/// 1-minute load average, 0 if unknown.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// SplitMix64: the fixed-seed generator of the dial choice.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// For each node i ≥ 1, up to [`DIALS_PER_NODE`] distinct earlier nodes to dial, from `seed`.
pub fn dial_plan(nodes: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut s = seed;
    (0..nodes)
        .map(|i| {
            // Partial Fisher–Yates over 0..i.
            let mut pool: Vec<usize> = (0..i).collect();
            let k = DIALS_PER_NODE.min(i);
            for j in 0..k {
                let r = j + (splitmix(&mut s) % (i - j) as u64) as usize;
                pool.swap(j, r);
            }
            pool.truncate(k);
            pool
        })
        .collect()
}

struct Child {
    stdin: tokio::process::ChildStdin,
    _proc: tokio::process::Child,
}

/// The command that starts child `index`: `op-p2p bench-node` (or the async-std child binary),
/// or `child_bin <index>` when another implementation is under test.
fn child_command(
    exe: &Path,
    runtime: BenchRuntime,
    child_bin: Option<&Path>,
    index: usize,
) -> tokio::process::Command {
    if let Some(bin) = child_bin {
        let mut c = tokio::process::Command::new(bin);
        c.arg(index.to_string())
            .env(BENCH_EXE_ENV, exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        return c;
    }
    let async_std = match runtime {
        BenchRuntime::Tokio => false,
        BenchRuntime::AsyncStd => true,
        BenchRuntime::Mixed => index % 2 == 1,
    };
    let mut c = if async_std {
        let mut c = tokio::process::Command::new(exe.with_file_name(ASYNC_STD_CHILD));
        c.arg(index.to_string());
        c
    } else {
        let mut c = tokio::process::Command::new(exe);
        c.args(["bench-node", "--index", &index.to_string()]);
        c
    };
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    c
}

async fn send(children: &mut [Child], i: usize, cmd: &Cmd) -> Result<(), BenchError> {
    let err = |e: String| BenchError::Child { index: i, error: e };
    let mut line = serde_json::to_vec(cmd).map_err(|e| err(e.to_string()))?;
    line.push(b'\n');
    let c = children
        .get_mut(i)
        .ok_or_else(|| err("no such child".into()))?;
    c.stdin
        .write_all(&line)
        .await
        .map_err(|e| err(e.to_string()))?;
    c.stdin.flush().await.map_err(|e| err(e.to_string()))
}

/// Waits until every child in `0..n` has sent a message `pick` accepts (the first per child);
/// accept times arriving meanwhile go to `accepts`, anything else is logged or dropped.
async fn gather<T>(
    rx: &mut mpsc::Receiver<(usize, Msg)>,
    n: usize,
    what: &'static str,
    accepts: &mut [BTreeMap<u64, f64>],
    mut pick: impl FnMut(&Msg) -> Option<T>,
) -> Result<Vec<T>, BenchError> {
    let mut got: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let run = async {
        let mut left = n;
        while left > 0 {
            let Some((i, m)) = rx.next().await else {
                let index = got.iter().position(Option::is_none).unwrap_or(0);
                return Err(BenchError::Child {
                    index,
                    error: format!("exited before {what}"),
                });
            };
            if let Some(slot) = got.get_mut(i)
                && slot.is_none()
                && let Some(t) = pick(&m)
            {
                *slot = Some(t);
                left -= 1;
                continue;
            }
            match m {
                Msg::Error { error } => tracing::warn!(child = i, %error, "child error"),
                m => record(i, m, accepts),
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .map_err(|_| BenchError::Timeout(what))??;
    Ok(got.into_iter().flatten().collect())
}

/// Records an accept time.
fn record(i: usize, m: Msg, accepts: &mut [BTreeMap<u64, f64>]) {
    if let (Msg::Accept { number, at_ms }, Some(a)) = (m, accepts.get_mut(i)) {
        a.insert(number, at_ms);
    }
}

/// Runs one scenario: starts the children, forms the mesh, publishes, collects.
pub async fn run(opts: &BenchOptions) -> Result<BenchResult, BenchError> {
    tokio::time::timeout(opts.timeout, run_inner(opts))
        .await
        .map_err(|_| BenchError::Timeout("the scenario"))?
}

async fn run_inner(opts: &BenchOptions) -> Result<BenchResult, BenchError> {
    let n = opts.nodes;
    if n < 2 {
        return Err(BenchError::TooFew);
    }
    let started = std::time::Instant::now();
    let load = loadavg();
    let (tx, mut rx) = mpsc::channel::<(usize, Msg)>(4096);
    let mut children = Vec::with_capacity(n);
    let mut readers = Vec::new();
    // The spam target listens on every loopback address when the spammer is to come from
    // another one than 127.0.0.1 (the mesh still dials it at 127.0.0.1).
    let spam_ip = if opts.spam_netns {
        opts.spam_rate.map(|_| crate::netns::NetNs::HOST_IP)
    } else {
        opts.spam_rate.and(opts.spam_ip).filter(|ip| {
            ip.is_loopback() && *ip != std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST)
        })
    };
    for i in 0..n {
        let external = opts
            .child_bin
            .as_deref()
            .filter(|_| opts.child_nodes.includes(i));
        let mut cmd = child_command(&opts.exe, opts.runtime, external, i);
        if i == n - 1
            && let Some(ip) = spam_ip
        {
            let any: std::net::IpAddr = if ip.is_ipv4() {
                std::net::Ipv4Addr::UNSPECIFIED.into()
            } else {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            };
            cmd.env(LISTEN_IP_ENV, any.to_string());
        }
        if i == n - 1 && opts.spam_rate.is_some() && opts.spam_no_ban {
            cmd.env(NO_BAN_ENV, "1");
        }
        let mut p = cmd.spawn().map_err(|e| BenchError::Child {
            index: i,
            error: e.to_string(),
        })?;
        let (Some(stdin), Some(stdout)) = (p.stdin.take(), p.stdout.take()) else {
            return Err(BenchError::Child {
                index: i,
                error: "no pipes".into(),
            });
        };
        let mut tx = tx.clone();
        readers.push(tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.len() > MAX_LINE {
                    continue;
                }
                match serde_json::from_str::<Msg>(&line) {
                    Ok(m) => {
                        if tx.send((i, m)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!(child = i, error = %e, "unreadable child line"),
                }
            }
        }));
        children.push(Child { stdin, _proc: p });
    }
    drop(tx);

    // Accept times: (node, block) → ms; publish times: block → (ms, tx bytes).
    let mut accepts: Vec<BTreeMap<u64, f64>> = vec![BTreeMap::new(); n];

    let addrs = gather(&mut rx, n, "ready", &mut accepts, |m| match m {
        Msg::Ready { peer, addr } => Some((addr.clone(), *peer)),
        _ => None,
    })
    .await?;
    for (i, targets) in dial_plan(n, opts.seed).into_iter().enumerate() {
        for t in targets {
            let Some((addr, peer)) = addrs.get(t).cloned() else {
                continue;
            };
            send(&mut children, i, &Cmd::Dial { addr, peer }).await?;
            // Only child i has a dial outstanding: wait for its answer.
            let mut ok = None;
            let wait = async {
                while let Some((j, m)) = rx.next().await {
                    match m {
                        Msg::Dialed { ok: o } if j == i => {
                            ok = Some(o);
                            return;
                        }
                        m => record(j, m, &mut accepts),
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(60), wait)
                .await
                .map_err(|_| BenchError::Timeout("dial"))?;
            let ok = ok.ok_or(BenchError::Child {
                index: i,
                error: "exited before dial".into(),
            })?;
            if !ok {
                tracing::warn!(from = i, to = t, "dial failed");
            }
        }
    }

    async fn all_stats(
        children: &mut [Child],
        rx: &mut mpsc::Receiver<(usize, Msg)>,
        accepts: &mut [BTreeMap<u64, f64>],
    ) -> Result<Vec<Stats>, BenchError> {
        for i in 0..children.len() {
            send(children, i, &Cmd::Stats).await?;
        }
        gather(rx, children.len(), "stats", accepts, |m| match m {
            Msg::Stats(s) => Some(s.clone()),
            _ => None,
        })
        .await
    }

    // Mesh readiness: every node has a mesh peer on the v4 topic.
    let mesh_deadline = std::time::Instant::now() + Duration::from_secs(20);
    let ready = loop {
        let s = all_stats(&mut children, &mut rx, &mut accepts).await?;
        if s.iter().all(|s| s.mesh >= 1) {
            break s;
        }
        if std::time::Instant::now() > mesh_deadline {
            // Publish anyway: delivery shows whether the meshless nodes still get blocks.
            let view: Vec<(u64, u64)> = s.iter().map(|s| (s.peers, s.mesh)).collect();
            tracing::warn!(
                ?view,
                "not every node has a v4 mesh peer: (peers, mesh) per node"
            );
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Idle baseline: 2 s of heartbeats and pings, for the CPU correction.
    let idle_start = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s0 = all_stats(&mut children, &mut rx, &mut accepts).await?;
    let idle_secs = idle_start.elapsed().as_secs_f64();

    let pub_start = std::time::Instant::now();
    let (published, _) =
        publish_blocks(opts, 1, &mut children, &mut rx, &mut accepts, None).await?;
    settle(&mut rx, &mut accepts, &published).await;
    let pub_secs = pub_start.elapsed().as_secs_f64();
    let s1 = all_stats(&mut children, &mut rx, &mut accepts).await?;
    let first_phase: Vec<BTreeMap<u64, f64>> = accepts.clone();
    let spam = match opts.spam_rate {
        Some(rate) => Some(
            spam_phase(
                opts,
                rate,
                spam_ip,
                &mut children,
                &mut rx,
                &mut accepts,
                &addrs,
                &published,
            )
            .await?,
        ),
        None => None,
    };
    let accepts = first_phase;
    drop(children);
    for r in readers {
        r.abort();
    }

    let mut samples = Vec::new();
    for a in accepts.iter().skip(1) {
        for (number, at) in a {
            if let Some((p, _)) = published.get(number) {
                samples.push((at - p).max(0.0));
            }
        }
    }
    let last = accepts.last().cloned().unwrap_or_default();
    let last_node_ms = published
        .iter()
        .map(|(number, (p, _))| last.get(number).map(|a| (a - p).max(0.0)))
        .collect();
    let receivers = (n - 1) as f64;
    let blocks = published.len().max(1) as f64;
    let expected = published.len() as f64 * receivers;
    let mut idle_rate = 0.0;
    let mut cpu_raw = 0.0;
    for i in 1..n {
        let idle = (s0[i].cpu_ms - ready[i].cpu_ms) / idle_secs;
        idle_rate += idle / receivers;
        cpu_raw += (s1[i].cpu_ms - s0[i].cpu_ms) / blocks / receivers;
    }
    let cpu_corrected = cpu_raw - idle_rate * pub_secs / blocks;
    let mean =
        |f: &dyn Fn(&Stats) -> f64, v: &[Stats]| v.iter().map(f).sum::<f64>() / v.len() as f64;
    let rx_end = &s1[1..];
    let recv_bytes: u64 = (1..n).map(|i| s1[i].recv_bytes - s0[i].recv_bytes).sum();
    let recv_msgs: u64 = (1..n).map(|i| s1[i].recv_msgs - s0[i].recv_msgs).sum();
    let msg_bytes = if recv_msgs > 0 {
        recv_bytes as f64 / recv_msgs as f64
    } else {
        0.0
    };
    let sent_per_block = (0..n)
        .map(|i| (s1[i].sent_bytes - s0[i].sent_bytes) as f64)
        .sum::<f64>()
        / n as f64
        / blocks;
    let copies = if msg_bytes > 0.0 {
        sent_per_block / msg_bytes
    } else {
        0.0
    };
    let mesh_mean = mean(&|s| s.mesh as f64, &s0);
    Ok(BenchResult {
        nodes: n,
        size: opts.size,
        runtime: opts.runtime,
        implementation: opts.implementation(),
        tx_data_len: opts.contents.shape(opts.size).1,
        tx_fill: opts.contents.fill,
        block_tx_bytes: published.values().map(|(_, b)| *b as f64).sum::<f64>() / blocks,
        gossip_msg_bytes: msg_bytes,
        published: published.len() as u64,
        delivered_fraction: if expected > 0.0 {
            samples.len() as f64 / expected
        } else {
            0.0
        },
        latency: latency(samples),
        last_node_ms,
        receiver_cpu_ms_per_block: cpu_corrected,
        receiver_cpu_ms_per_block_raw: cpu_raw,
        idle_cpu_ms_per_s: idle_rate,
        rss_kb_mean: mean(&|s| s.rss_kb as f64, rx_end),
        rss_kb_max: rx_end.iter().map(|s| s.rss_kb).max().unwrap_or(0),
        rss_kb_publisher: s1[0].rss_kb,
        rss_kb_per_peer: mean(&|s| s.rss_kb as f64 / s.peers.max(1) as f64, rx_end),
        pss_kb_mean: mean(&|s| s.pss_kb as f64, rx_end),
        peers_mean: mean(&|s| s.peers as f64, &s1),
        mesh_mean,
        nodes_without_mesh: ready.iter().filter(|s| s.mesh == 0).count(),
        sent_bytes_per_block_per_node: sent_per_block,
        stream_bytes_sent_per_block_per_node: (0..n)
            .map(|i| {
                s1[i]
                    .stream_sent_bytes
                    .saturating_sub(s0[i].stream_sent_bytes) as f64
            })
            .sum::<f64>()
            / n as f64
            / blocks,
        copies_per_block_per_node: copies,
        amplification_over_mesh: if mesh_mean > 0.0 {
            copies / mesh_mean
        } else {
            0.0
        },
        loadavg_start: load,
        seconds: started.elapsed().as_secs_f64(),
        spam,
    })
}

/// Node 0 publishes `opts.blocks` blocks numbered from `first`, one every `interval_ms`;
/// returns them (number → publish time, tx bytes) once it reports Done, and when the first
/// went out. `on_first` is a command sent to another child at that moment (the spammer's).
async fn publish_blocks(
    opts: &BenchOptions,
    first: u64,
    children: &mut [Child],
    rx: &mut mpsc::Receiver<(usize, Msg)>,
    accepts: &mut [BTreeMap<u64, f64>],
    mut on_first: Option<(&mut [Child], &Cmd)>,
) -> Result<(BTreeMap<u64, (f64, usize)>, Option<std::time::Instant>), BenchError> {
    let (txs, data_len) = opts.contents.shape(opts.size);
    send(
        children,
        0,
        &Cmd::Publish {
            first,
            blocks: opts.blocks,
            interval_ms: opts.interval_ms,
            txs,
            data_len,
            fill: opts.contents.fill,
        },
    )
    .await?;
    let mut published = BTreeMap::new();
    let mut first_at = None;
    let limit = Duration::from_millis(opts.blocks * opts.interval_ms) + Duration::from_secs(120);
    tokio::time::timeout(limit, async {
        while let Some((i, m)) = rx.next().await {
            match m {
                Msg::Published {
                    number,
                    at_ms,
                    tx_bytes,
                } => {
                    published.insert(number, (at_ms, tx_bytes));
                    if first_at.is_none() {
                        first_at = Some(std::time::Instant::now());
                        if let Some((other, cmd)) = on_first.take() {
                            send(other, 0, cmd).await?;
                        }
                    }
                }
                Msg::Done if i == 0 => return Ok(()),
                Msg::Error { error } => tracing::warn!(child = i, %error, "child error"),
                other => record(i, other, accepts),
            }
        }
        Err(BenchError::Child {
            index: 0,
            error: "exited while publishing".into(),
        })
    })
    .await
    .map_err(|_| BenchError::Timeout("publishing"))??;
    Ok((published, first_at))
}

/// Lets the last blocks spread: until every receiver has every block of `published`, at
/// most 3 s.
async fn settle(
    rx: &mut mpsc::Receiver<(usize, Msg)>,
    accepts: &mut [BTreeMap<u64, f64>],
    published: &BTreeMap<u64, (f64, usize)>,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while accepts
        .iter()
        .skip(1)
        .any(|a| published.keys().any(|k| !a.contains_key(k)))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(left, rx.next()).await {
            Ok(Some((i, m))) => record(i, m, accepts),
            _ => break,
        }
    }
}

/// Latency samples of `published` blocks at the given receivers.
fn samples_of(
    accepts: &[BTreeMap<u64, f64>],
    receivers: std::ops::Range<usize>,
    published: &BTreeMap<u64, (f64, usize)>,
) -> Vec<f64> {
    let mut out = Vec::new();
    for a in accepts.get(receivers).unwrap_or_default() {
        for (number, (p, _)) in published {
            if let Some(at) = a.get(number) {
                out.push((at - p).max(0.0));
            }
        }
    }
    out
}

/// Node 0 publishes `blocks` more blocks (numbered after `first_phase`) while a spammer
/// child, started now and connected only to the last node, floods that node.
#[allow(clippy::too_many_arguments)]
async fn spam_phase(
    opts: &BenchOptions,
    rate: u64,
    spam_ip: Option<std::net::IpAddr>,
    children: &mut [Child],
    rx: &mut mpsc::Receiver<(usize, Msg)>,
    accepts: &mut [BTreeMap<u64, f64>],
    addrs: &[(Multiaddr, PeerId)],
    first_phase: &BTreeMap<u64, (f64, usize)>,
) -> Result<SpamResult, BenchError> {
    let n = children.len();
    let target = n - 1;
    let (addr, peer) = addrs.get(target).cloned().ok_or(BenchError::TooFew)?;
    let dial_ip = spam_ip.unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    let addr = with_ip(&addr, dial_ip);
    // The spammer: one more child, outside the mesh, dialling only the target; in a network
    // namespace of its own when asked (removed when `_netns` drops, after the spammer).
    let spammer_index = n;
    let (mut cmd, _netns, spammer_ip) = if opts.spam_netns {
        let ns = crate::netns::NetNs::create("bench").map_err(|e| BenchError::Child {
            index: spammer_index,
            error: format!("network namespace for the spammer: {e}"),
        })?;
        let mut c = ns.command(&opts.exe);
        c.args(["bench-node", "--index", &spammer_index.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        (c, Some(ns), crate::netns::NetNs::PEER_IP)
    } else {
        (
            child_command(&opts.exe, BenchRuntime::Tokio, None, spammer_index),
            None,
            dial_ip,
        )
    };
    // Its publishes fail by design whenever its send queue is full or it was banned.
    cmd.env("OP_P2P_LOG", "error");
    let mut p = cmd.spawn().map_err(|e| BenchError::Child {
        index: spammer_index,
        error: e.to_string(),
    })?;
    let (Some(stdin), Some(stdout)) = (p.stdin.take(), p.stdout.take()) else {
        return Err(BenchError::Child {
            index: spammer_index,
            error: "no pipes".into(),
        });
    };
    let (mut stx, mut srx) = mpsc::channel::<Msg>(64);
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.len() <= MAX_LINE
                && let Ok(m) = serde_json::from_str::<Msg>(&line)
                && stx.send(m).await.is_err()
            {
                break;
            }
        }
    });
    let mut spammer = vec![Child { stdin, _proc: p }];
    let spammer_ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(m) = srx.next().await {
            if matches!(m, Msg::Ready { .. }) {
                return true;
            }
        }
        false
    })
    .await;
    if spammer_ready != Ok(true) {
        return Err(BenchError::Timeout("the spammer"));
    }
    let publish_ms = opts.blocks * opts.interval_ms;
    // Target counters around the phase.
    let before = target_stats(children, rx, accepts, target).await?;
    let first = first_phase.keys().last().copied().unwrap_or(0) + 1;
    // Spam starts with the first block (the publisher builds its blocks first, for a time
    // that depends on their size) and ends 1 s after the last.
    let spam_cmd = Cmd::Spam {
        addr,
        peer,
        rate,
        duration_ms: publish_ms + 1_000,
        raw: opts.spam_raw,
    };
    let (published, t0) = publish_blocks(
        opts,
        first,
        children,
        rx,
        accepts,
        Some((&mut spammer[..], &spam_cmd)),
    )
    .await?;
    let t0 = t0.ok_or(BenchError::Timeout("the first block under spam"))?;
    let done = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            tokio::select! {
                m = srx.next() => match m {
                    Some(Msg::SpamDone { sent, identities, refused, ms }) => return Ok((sent, identities, refused, ms)),
                    Some(Msg::Error { error }) => return Err(BenchError::Child { index: spammer_index, error }),
                    Some(_) => {}
                    None => return Err(BenchError::Child { index: spammer_index, error: "exited while spamming".into() }),
                },
                m = rx.next() => if let Some((i, m)) = m { record(i, m, accepts) },
            }
        }
    })
    .await
    .map_err(|_| BenchError::Timeout("the spam run"))??;
    settle(rx, accepts, &published).await;
    let secs = t0.elapsed().as_secs_f64();
    let after = target_stats(children, rx, accepts, target).await?;
    // The core's verdict counters reach the metrics in a snapshot about once a second
    // (`SCORE_SNAPSHOT_INTERVAL_MS`), so `after` may miss up to a second of REJECTs (a fifth
    // of them in a short run): count them from a snapshot taken after the spam has ended.
    // (`after` still times the CPU, which this idle wait would dilute.)
    let snapshot = Duration::from_millis(op_p2p_node::driver::SCORE_SNAPSHOT_INTERVAL_MS + 500);
    let until = tokio::time::Instant::now() + snapshot;
    while let Ok(Some((i, m))) = tokio::time::timeout_at(until, rx.next()).await {
        record(i, m, accepts);
    }
    let verdicts = target_stats(children, rx, accepts, target).await?;
    reader.abort();
    drop(spammer);
    let (sent, identities, refused, spam_ms) = done;
    let loaded_all = samples_of(accepts, 1..n, &published);
    let expected = published.len() as f64 * (n - 1) as f64;
    Ok(SpamResult {
        rate_limit: rate,
        no_ban: opts.spam_no_ban,
        raw: opts.spam_raw,
        sent_per_s: sent as f64 / (spam_ms / 1000.0).max(1e-3),
        identities,
        identities_per_min: identities as f64 / (spam_ms / 60_000.0).max(1e-6),
        refused,
        spammer_ip,
        target_rejects_per_s: verdicts.rejected.saturating_sub(before.rejected) as f64
            / (spam_ms / 1000.0).max(1e-3),
        target_received_per_s: after.recv_msgs.saturating_sub(before.recv_msgs) as f64
            / (spam_ms / 1000.0).max(1e-3),
        target_ignores_per_s: verdicts.ignored.saturating_sub(before.ignored) as f64
            / (spam_ms / 1000.0).max(1e-3),
        target_pool_overflow_per_s: after.pool_overflow.saturating_sub(before.pool_overflow) as f64
            / (spam_ms / 1000.0).max(1e-3),
        target_over_budget_per_s: after.over_budget.saturating_sub(before.over_budget) as f64
            / (spam_ms / 1000.0).max(1e-3),
        target_cpu_ms_per_s: (after.cpu_ms - before.cpu_ms) / secs,
        target_unloaded: latency(samples_of(accepts, target..n, first_phase)),
        target_loaded: latency(samples_of(accepts, target..n, &published)),
        delivered_fraction: if expected > 0.0 {
            loaded_all.len() as f64 / expected
        } else {
            0.0
        },
        all_loaded: latency(loaded_all),
    })
}

/// Stats of one child.
async fn target_stats(
    children: &mut [Child],
    rx: &mut mpsc::Receiver<(usize, Msg)>,
    accepts: &mut [BTreeMap<u64, f64>],
    target: usize,
) -> Result<Stats, BenchError> {
    send(children, target, &Cmd::Stats).await?;
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some((i, m)) = rx.next().await {
            match m {
                Msg::Stats(s) if i == target => return Some(s),
                m => record(i, m, accepts),
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or(BenchError::Timeout("target stats"))
}

/// The human table of results.
pub fn render(results: &[BenchResult]) -> String {
    let mut s = format!(
        "{:<9} {:>3} {:<6} {:>9} {:>6} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>7} {:>7} {:>6} {:>9} {:>9} {:>6} {:>5}\n",
        "runtime",
        "N",
        "size",
        "msg B",
        "deliv",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "cpu/blk",
        "raw/blk",
        "RSS MB",
        "PSS MB",
        "kB/pr",
        "sent/blk",
        "strm/blk",
        "copies",
        "load"
    );
    for r in results {
        let rt = match r.runtime {
            _ if r.implementation != "op-p2p" => r.implementation.as_str(),
            BenchRuntime::Tokio => "tokio",
            BenchRuntime::AsyncStd => "async-std",
            BenchRuntime::Mixed => "mixed",
        };
        let size = size_label(r);
        s.push_str(&format!(
            "{:<9} {:>3} {:<6} {:>9.0} {:>5.1}% {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>8.3} {:>8.3} {:>7.1} {:>7.1} {:>6.0} {:>9.0} {:>9.0} {:>6.2} {:>5.2}\n",
            rt,
            r.nodes,
            size,
            r.gossip_msg_bytes,
            r.delivered_fraction * 100.0,
            r.latency.p50_ms,
            r.latency.p95_ms,
            r.latency.p99_ms,
            r.latency.max_ms,
            r.receiver_cpu_ms_per_block,
            r.receiver_cpu_ms_per_block_raw,
            r.rss_kb_mean / 1024.0,
            r.pss_kb_mean / 1024.0,
            r.rss_kb_per_peer,
            r.sent_bytes_per_block_per_node,
            r.stream_bytes_sent_per_block_per_node,
            r.copies_per_block_per_node,
            r.loadavg_start,
        ));
    }
    for r in results {
        if let Some(x) = &r.spam {
            s.push_str(&format!(
                "  spam on the last node{} from {}{}: {:.0} sent/s (limit {}), {} identities ({:.1}/min), \
                 {} refused, {:.0} received/s, {:.0} REJECT/s, {:.0} IGNORE/s, \
                 {:.0} pool overflow/s, {:.0} over the peer budget/s, \
                 target CPU {:.0} ms/s; target p99 {:.2} ms unloaded → {:.2} ms under spam; \
                 all nodes p99 {:.2} ms, delivered {:.1}%\n",
                if x.no_ban { " (which never bans)" } else { "" },
                x.spammer_ip,
                if x.raw { " (a raw gossipsub spammer)" } else { "" },
                x.sent_per_s,
                x.rate_limit,
                x.identities,
                x.identities_per_min,
                x.refused,
                x.target_received_per_s,
                x.target_rejects_per_s,
                x.target_ignores_per_s,
                x.target_pool_overflow_per_s,
                x.target_over_budget_per_s,
                x.target_cpu_ms_per_s,
                x.target_unloaded.p99_ms,
                x.target_loaded.p99_ms,
                x.all_loaded.p99_ms,
                x.delivered_fraction * 100.0,
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_configs_build_and_only_node_0_sequences() {
        let c = child_config(0);
        assert_eq!(c.core.local_peer_id, keypair(2000).public().to_peer_id());
        assert_eq!(c.core.validator.chain_id, BENCH_CHAIN_ID);
        assert!(!c.discovery() && c.core.discovery.is_none() && c.bootnodes.is_empty());
        assert_eq!(
            c.metrics_addr,
            Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        );
        assert_eq!((c.tcp_port, c.udp_port, c.core.rng_seed), (0, 0, 0));
        assert!(c.signer.is_some());
        let spam = spam_config(3);
        assert!(spam.signer.is_none());
        assert_eq!(spam.core.rng_seed, SPAM_INDEX_BASE + 3);
    }

    #[test]
    fn with_ip_swaps_only_the_address() {
        let a: Multiaddr =
            "/ip4/0.0.0.0/tcp/4001/p2p/12D3KooWGzh9qqmBqRoJmC7bKRBQDsLbaPPi9WBxxsWvXe9Ysm8C"
                .parse()
                .unwrap();
        let b = with_ip(&a, [192, 0, 2, 2].into());
        assert_eq!(
            b.to_string(),
            "/ip4/192.0.2.2/tcp/4001/p2p/12D3KooWGzh9qqmBqRoJmC7bKRBQDsLbaPPi9WBxxsWvXe9Ysm8C"
        );
        let c = with_ip(&b, std::net::Ipv6Addr::LOCALHOST.into());
        assert!(c.to_string().starts_with("/ip6/::1/tcp/4001/p2p/"));
        let loop_cfg = child_config_on(1, std::net::Ipv4Addr::UNSPECIFIED.into());
        assert!(loop_cfg.listen_ip.is_unspecified());
        assert_eq!(child_config(1).listen_ip, std::net::Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn bench_blocks_are_node_0s_blocks_signed_and_framed() {
        let cmd = Cmd::Publish {
            first: 7,
            blocks: 3,
            interval_ms: 1000,
            txs: 5,
            data_len: 10,
            fill: TxFill::Random,
        };
        let built = publish_blocks_of(&cmd, 1_000);
        let numbers: Vec<(u64, u64)> = built.iter().map(|(b, _)| (b.number, b.timestamp)).collect();
        assert_eq!(numbers, [(7, 1_000), (8, 1_001), (9, 1_002)]);
        assert!(built.iter().all(|(b, bytes)| b.transactions.len() == 5
            && *bytes == b.transactions.iter().map(|t| t.len()).sum::<usize>()));
        let mut out = Vec::new();
        write_blocks(&cmd, 1_000, &mut out).unwrap();
        let mut rest = &out[..];
        for (b, _) in &built {
            let (len, tail) = rest.split_at(4);
            let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
            let (wire, tail) = tail.split_at(len);
            // Signing is deterministic (RFC 6979): the very message node 0 would publish.
            assert_eq!(wire, b.sign(&dev_key(0), BENCH_CHAIN_ID).unwrap());
            rest = tail;
        }
        assert!(rest.is_empty());
        assert!(write_blocks(&Cmd::Stats, 1_000, &mut Vec::new()).is_err());
    }

    #[test]
    fn block_contents_override_the_preset_and_old_publish_commands_still_parse() {
        let c = BlockContents::default();
        assert_eq!(c.shape(BlockSize::Txs1000), (1000, 64));
        assert_eq!(c.shape(BlockSize::Mb1), (1000, 930));
        let c = BlockContents {
            tx_bytes: Some(80),
            fill: TxFill::Random,
        };
        assert_eq!(c.shape(BlockSize::Txs100), (100, 80));
        // The gossip message (snappy-compressed) of random calldata is larger.
        let wire = |fill| {
            let txs = block_transactions(5, 100, 80, fill);
            assert_eq!(txs.len(), 100);
            BlockBuilder::new(BlockVersion::V4, 5, 1)
                .with_transactions(txs)
                .sign(&dev_key(0), BENCH_CHAIN_ID)
                .unwrap()
                .len()
        };
        let (pattern, random) = (wire(TxFill::Pattern), wire(TxFill::Random));
        assert!(random * 10 > pattern * 13, "{random} vs {pattern}");
        // A coordinator without the fill field (an older binary) means the pattern.
        let cmd: Cmd = serde_json::from_str(
            r#"{"cmd":"publish","blocks":1,"interval_ms":10,"txs":2,"data_len":3}"#,
        )
        .unwrap();
        assert!(matches!(
            cmd,
            Cmd::Publish {
                fill: TxFill::Pattern,
                ..
            }
        ));
    }

    #[test]
    fn dial_plan_is_seeded_distinct_and_earlier() {
        let p = dial_plan(20, 7);
        assert_eq!(p, dial_plan(20, 7));
        assert_ne!(p, dial_plan(20, 8));
        assert!(p[0].is_empty());
        assert_eq!(p[1], vec![0]);
        assert_eq!(p[3].len(), 3);
        for (i, t) in p.iter().enumerate() {
            assert_eq!(t.len(), DIALS_PER_NODE.min(i));
            let mut d = t.clone();
            d.sort_unstable();
            d.dedup();
            assert_eq!(d.len(), t.len(), "distinct");
            assert!(t.iter().all(|&j| j < i), "earlier only");
        }
    }

    #[test]
    fn metric_sum_reads_families_by_exact_name_and_label() {
        let text = "# TYPE x counter\n\
                    gossipsub_topic_msg_sent_bytes_total{hash=\"a\"} 10\n\
                    gossipsub_topic_msg_sent_bytes_total{hash=\"b\"} 5\n\
                    gossipsub_topic_msg_sent_bytes_total_other 99\n\
                    gossipsub_mesh_peer_counts{hash=\"/optimism/901/3/blocks\"} 4\n\
                    gossipsub_mesh_peer_counts{hash=\"/optimism/901/2/blocks\"} 2\n";
        assert_eq!(
            metric_sum(text, "gossipsub_topic_msg_sent_bytes_total", None),
            15.0
        );
        assert_eq!(
            metric_sum(
                text,
                "gossipsub_mesh_peer_counts",
                Some("\"/optimism/901/3/blocks\"")
            ),
            4.0
        );
        assert_eq!(metric_sum(text, "missing", None), 0.0);
    }

    #[test]
    fn process_counters_read_proc() {
        let (rss, pss) = (process_rss_kb(), process_pss_kb());
        assert!(rss > 0);
        // Shared pages count in full in RSS and in part in PSS.
        assert!(pss > 0 && pss <= rss, "pss {pss} rss {rss}");
        let a = process_cpu_ms();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process_cpu_ms() > a);
    }
}
