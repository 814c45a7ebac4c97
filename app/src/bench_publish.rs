//! `op-p2p bench-publish` (issue 14): what a remote signer costs a sequencer. Three nodes on
//! 127.0.0.1 in this process: the sequencer `seq`, signing through a test op-signer process
//! (HTTPS, mutual TLS) that adds a given latency per call, another publisher `other` (a local
//! key) and a receiver `rx`, wired `other — seq — rx`. Both publishers publish one block
//! every `interval` (2 blocks/s by default), interleaved. Per signer latency it reports:
//! - `submit→first peer`: from `seq`'s [`NodeHandle::submit`] to the first of its peers
//!   (`other`, `rx`) delivering the block (signing, the queue, gossipsub, one hop, validation);
//! - `seq receive`: from `other`'s submit to `seq` delivering `other`'s block: the receive
//!   path of the node that is publishing meanwhile;
//! - `relay to rx`: the same blocks at `rx`, which gets them only through `seq`.
//!
//! A first row without publishing on `seq` (signer latency `-`) is the receive baseline.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use op_p2p_core::admin::{AdminRequest, parse_p2p_multiaddr};
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::peers::netpolicy::LOOPBACK_NETS;
use op_p2p_core::testkit::{BlockBuilder, dev_key, keypair, transactions};
use op_p2p_core::{BlockVersion, PublishOutcome, PublishRequest};
use op_p2p_node::{NodeConfig, NodeHandle, system_now_ms};
use serde::Serialize;

use crate::devnet::{Latency, latency};
use crate::tools::test_signer::SignerChild;

/// The bench's chain id.
const CHAIN: u64 = 901;
/// `seq`'s own blocks are numbered from here (`other`'s from 1).
const OWN_BASE: u64 = 1_000_000;
/// How long to wait for the mesh, and for stragglers after the last block.
const SETTLE: Duration = Duration::from_secs(20);

/// The bench's settings.
#[derive(Debug, Clone)]
pub struct PublishBenchOptions {
    /// Signer latencies to run, milliseconds (plus the baseline without publishing).
    pub latencies_ms: Vec<u64>,
    /// Blocks each publisher publishes per scenario.
    pub blocks: u64,
    /// Time between two blocks of one publisher.
    pub interval: Duration,
    /// Transactions per block.
    pub txs: usize,
    /// This binary (it runs the test signer).
    pub exe: PathBuf,
}

/// One scenario's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct PublishBenchRow {
    /// The signer's added latency per call; `None` for the baseline (no own publishing).
    pub signer_latency_ms: Option<u64>,
    /// `seq`'s submit → first peer delivered.
    pub submit_to_first_peer: Latency,
    /// `other`'s submit → `seq` delivered.
    pub seq_receive: Latency,
    /// `other`'s submit → `rx` delivered (through `seq`).
    pub relay_to_rx: Latency,
    /// `seq`'s blocks published / submitted.
    pub published: u64,
    /// `seq`'s blocks submitted.
    pub submitted: u64,
    /// `other`'s blocks that never reached `seq` or `rx`.
    pub lost: u64,
}

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum PublishBenchError {
    /// A node did not start.
    #[error("node: {0}")]
    Spawn(String),
    /// The test signer did not start.
    #[error("test signer: {0}")]
    Signer(String),
    /// The nodes did not connect or form a mesh in time.
    #[error("no mesh within {0:?}")]
    NoMesh(Duration),
}

fn config(i: u64) -> Result<NodeConfig, PublishBenchError> {
    NodeConfig::builder(keypair(3000 + i))
        .chain(CHAIN, dev_key(0).address(), ForkSchedule::ALL_AT_GENESIS, 2)
        .listen_ip(Ipv4Addr::LOCALHOST.into())
        .tcp_port(0)
        .discovery(false)
        .rng_seed(i)
        .ip_colocation_whitelist([Ipv4Addr::LOCALHOST.into()])
        .exempt_loopback_from_caps(true)
        .netrestrict(LOOPBACK_NETS)
        .build()
        .map_err(|e| PublishBenchError::Spawn(e.to_string()))
}

async fn start(config: NodeConfig) -> Result<NodeHandle, PublishBenchError> {
    op_p2p_tokio::spawn(config, Default::default())
        .await
        .map_err(|e| PublishBenchError::Spawn(e.to_string()))
}

async fn connect(from: &NodeHandle, to: &NodeHandle) -> Result<(), PublishBenchError> {
    let addr = to.listen_addrs()[0].to_string();
    let (addr, peer) =
        parse_p2p_multiaddr(&addr).map_err(|e| PublishBenchError::Spawn(e.to_string()))?;
    from.admin()
        .call(AdminRequest::ConnectPeer { addr, peer })
        .await
        .map_err(|e| PublishBenchError::Spawn(e.to_string()))?;
    Ok(())
}

fn block(number: u64, txs: usize) -> PublishRequest {
    let (payload, root) = BlockBuilder::new(BlockVersion::V4, number, system_now_ms() / 1000)
        .with_transactions(transactions(CHAIN, number, txs, 100))
        .build();
    PublishRequest::Sign {
        payload: Box::new(payload),
        parent_beacon_block_root: root,
    }
}

/// Which node delivered a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Seq,
    Other,
    Rx,
}

/// Publishes `number` from `node` until it goes out (the mesh forms on heartbeats).
async fn publish_when_ready(
    node: &NodeHandle,
    number: u64,
    txs: usize,
) -> Result<(), PublishBenchError> {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        if let Ok(t) = node.submit(block(number, txs)).await
            && matches!(t.await, PublishOutcome::Published { .. })
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(PublishBenchError::NoMesh(SETTLE))
}

/// Runs one scenario: `signer_latency_ms` `None` is the baseline.
async fn scenario(
    opts: &PublishBenchOptions,
    signer_latency_ms: Option<u64>,
) -> Result<PublishBenchRow, PublishBenchError> {
    let signer = match signer_latency_ms {
        Some(ms) => {
            let exe = opts.exe.clone();
            Some(
                tokio::task::spawn_blocking(move || {
                    SignerChild::start(&exe, ms).map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| PublishBenchError::Signer(e.to_string()))?
                .map_err(PublishBenchError::Signer)?,
            )
        }
        None => None,
    };
    let mut seq_config = config(0)?;
    seq_config.signer = match &signer {
        Some(s) => Some(Arc::new(
            op_p2p_node::signer::RemoteSigner::new(s.config().clone())
                .map_err(|e| PublishBenchError::Signer(e.to_string()))?,
        )),
        None => None,
    };
    let mut other_config = config(1)?;
    other_config.signer = Some(Arc::new(op_p2p_node::signer::LocalSigner(dev_key(0))));
    let mut seq = start(seq_config).await?;
    let mut other = start(other_config).await?;
    let mut rx = start(config(2)?).await?;
    connect(&other, &seq).await?;
    connect(&rx, &seq).await?;

    let (tx, mut arrivals) = futures::channel::mpsc::unbounded::<(At, u64, Instant)>();
    let mut readers = Vec::new();
    for (at, node) in [
        (At::Seq, &mut seq),
        (At::Other, &mut other),
        (At::Rx, &mut rx),
    ] {
        let mut blocks = node
            .blocks()
            .ok_or_else(|| PublishBenchError::Spawn("blocks taken".into()))?;
        let tx = tx.clone();
        readers.push(tokio::spawn(async move {
            while let Some(b) = blocks.next().await {
                let n = b.envelope.payload.as_v1().block_number;
                if tx.unbounded_send((at, n, Instant::now())).is_err() {
                    return;
                }
            }
        }));
    }
    drop(tx);
    // Warm-up: both publishers reach the mesh (numbers outside the measured ranges).
    publish_when_ready(&other, OWN_BASE - 1, opts.txs).await?;
    if signer.is_some() {
        publish_when_ready(&seq, 2 * OWN_BASE, opts.txs).await?;
    }

    let mut own_sent: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut other_sent: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut own_tickets = Vec::new();
    let half = opts.interval / 2;
    for k in 1..=opts.blocks {
        if signer.is_some() {
            let n = OWN_BASE + k;
            own_sent.insert(n, Instant::now());
            if let Ok(t) = seq.submit(block(n, opts.txs)).await {
                own_tickets.push(tokio::spawn(t));
            }
        }
        tokio::time::sleep(half).await;
        other_sent.insert(k, Instant::now());
        if let Ok(t) = other.submit(block(k, opts.txs)).await {
            drop(tokio::spawn(t));
        }
        tokio::time::sleep(opts.interval - half).await;
    }
    let mut published = 0;
    for t in own_tickets {
        if let Ok(PublishOutcome::Published { .. }) = t.await {
            published += 1;
        }
    }

    // Collect until every block is in (or the settle time passed).
    let mut first_peer: BTreeMap<u64, f64> = BTreeMap::new();
    let mut at_seq: BTreeMap<u64, f64> = BTreeMap::new();
    let mut at_rx: BTreeMap<u64, f64> = BTreeMap::new();
    let want_own = own_sent.len();
    let want_other = other_sent.len();
    let deadline = Instant::now() + SETTLE;
    loop {
        let done = first_peer.len() >= want_own.min(published as usize)
            && at_seq.len() >= want_other
            && at_rx.len() >= want_other;
        let left = deadline.saturating_duration_since(Instant::now());
        if done || left.is_zero() {
            break;
        }
        let Ok(Some((at, n, when))) = tokio::time::timeout(left, arrivals.next()).await else {
            break;
        };
        let ms = |sent: &Instant| when.duration_since(*sent).as_secs_f64() * 1000.0;
        match at {
            At::Other | At::Rx if own_sent.contains_key(&n) => {
                let v = ms(&own_sent[&n]);
                first_peer
                    .entry(n)
                    .and_modify(|x| *x = x.min(v))
                    .or_insert(v);
            }
            _ => {}
        }
        if let Some(sent) = other_sent.get(&n) {
            match at {
                At::Seq => {
                    at_seq.insert(n, ms(sent));
                }
                At::Rx => {
                    at_rx.insert(n, ms(sent));
                }
                At::Other => {}
            }
        }
    }
    let lost = other_sent
        .keys()
        .filter(|n| !at_seq.contains_key(n) || !at_rx.contains_key(n))
        .count() as u64;
    for n in [seq, other, rx] {
        n.shutdown().await;
    }
    for r in readers {
        let _ = r.await;
    }
    drop(signer);
    Ok(PublishBenchRow {
        signer_latency_ms,
        submit_to_first_peer: latency(first_peer.into_values().collect()),
        seq_receive: latency(at_seq.into_values().collect()),
        relay_to_rx: latency(at_rx.into_values().collect()),
        published,
        submitted: want_own as u64,
        lost,
    })
}

/// Runs the baseline, then one scenario per signer latency.
pub async fn run(opts: &PublishBenchOptions) -> Result<Vec<PublishBenchRow>, PublishBenchError> {
    let mut rows = Vec::new();
    let scenarios = std::iter::once(None).chain(opts.latencies_ms.iter().map(|&ms| Some(ms)));
    for l in scenarios {
        eprintln!("bench-publish: signer latency {l:?} ms …");
        rows.push(scenario(opts, l).await?);
    }
    Ok(rows)
}

/// The rows as a table.
pub fn render(rows: &[PublishBenchRow]) -> String {
    let mut s = String::from(
        "| signer latency | published | submit→first peer p50 / p99 / max ms | seq receive p50 / p99 / max ms | relay to rx p50 / p99 ms | lost |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let l = r
            .signer_latency_ms
            .map_or("– (no publishing)".to_string(), |ms| format!("{ms} ms"));
        let own = if r.signer_latency_ms.is_some() {
            format!(
                "{:.1} / {:.1} / {:.1}",
                r.submit_to_first_peer.p50_ms,
                r.submit_to_first_peer.p99_ms,
                r.submit_to_first_peer.max_ms
            )
        } else {
            "–".into()
        };
        s.push_str(&format!(
            "| {l} | {}/{} | {own} | {:.1} / {:.1} / {:.1} | {:.1} / {:.1} | {} |\n",
            r.published,
            r.submitted,
            r.seq_receive.p50_ms,
            r.seq_receive.p99_ms,
            r.seq_receive.max_ms,
            r.relay_to_rx.p50_ms,
            r.relay_to_rx.p99_ms,
            r.lost
        ));
    }
    s
}
