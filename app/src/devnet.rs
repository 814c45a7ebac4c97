//! `op-p2p devnet`: N real nodes on 127.0.0.1 that find each other through a bootnode with
//! discovery on, and a sequencer that signs and publishes blocks with real transactions at an
//! interval. Prints a live progress line, then a summary with publish→delivery latency
//! percentiles, rejects and bans. This is the project's main job: it exercises every layer
//! (discv5, gating, gossipsub, validation, delivery) on real sockets.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::Multiaddr;
use op_p2p_core::admin::{AdminRequest, AdminResponse};
use op_p2p_core::discovery::Bootnode;
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::peers::netpolicy::LOOPBACK_NETS;
use op_p2p_core::testkit::{BlockBuilder, dev_key, keypair, transactions};
use op_p2p_core::{PublishRequest, Verdict};
use op_p2p_node::driver::NodeEvent;
use op_p2p_node::system_now_ms;
use op_p2p_node::{ConfigError, NodeConfig, NodeHandle};
use serde::Serialize;

use op_p2p_tokio::{SpawnOptions, spawn};

/// Chain id of the devnet.
pub const DEVNET_CHAIN_ID: u64 = 901;

/// Devnet settings.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// Nodes besides the bootnode (the first is the sequencer).
    pub nodes: usize,
    /// Blocks to publish.
    pub blocks: u64,
    /// Stop after this long even if blocks remain.
    pub duration: Duration,
    /// Time between blocks.
    pub interval: Duration,
    /// Transactions per block.
    pub txs: usize,
    /// Outside peers every node keeps connected (multiaddrs ending in `/p2p/<id>`).
    pub static_peers: Vec<Multiaddr>,
    /// Print the progress line.
    pub progress: bool,
    /// Sign the sequencer's blocks through this remote op-signer instead of its local key.
    pub remote_signer: Option<op_p2p_node::signer::RemoteSignerConfig>,
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Samples ((node, block) pairs delivered).
    pub samples: usize,
}

/// What the devnet measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DevnetSummary {
    /// Nodes (without the bootnode).
    pub nodes: usize,
    /// Blocks published.
    pub published: u64,
    /// Blocks delivered, per receiving node (the sequencer does not receive its own).
    pub delivered: Vec<u64>,
    /// (node, block) pairs expected to be delivered that were.
    pub delivered_fraction: f64,
    /// Publish → delivery latency over all (node, block) pairs.
    pub latency: Latency,
    /// Gossip messages rejected, over all nodes.
    pub rejects: u64,
    /// Peers banned for their score, over all nodes.
    pub bans: u64,
    /// Wall time of the run, seconds.
    pub seconds: f64,
}

/// Why the devnet could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevnetError {
    /// A node's configuration is refused (a bad `--static-peer`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A node did not start.
    #[error(transparent)]
    Spawn(#[from] op_p2p_tokio::SpawnError),
    /// The remote signer cannot be set up.
    #[error(transparent)]
    Signer(#[from] op_p2p_node::signer::SignerSetupError),
    /// The network did not form in time.
    #[error("the network did not form within {0:?}")]
    NoMesh(Duration),
}

/// Devnet node `i` on 127.0.0.1 with OS-chosen ports and discovery on; node 1 is the
/// sequencer. The outside static peers are checked like any node's.
fn node_config(
    i: u64,
    bootnodes: Vec<Bootnode>,
    statics: &[Multiaddr],
) -> Result<NodeConfig, ConfigError> {
    let mut b = NodeConfig::builder(keypair(1000 + i))
        .chain(
            DEVNET_CHAIN_ID,
            dev_key(0).address(),
            ForkSchedule::ALL_AT_GENESIS,
            2,
        )
        .listen_ip(Ipv4Addr::LOCALHOST.into())
        .tcp_port(0)
        .udp_port(0)
        .discovery(true)
        .bootnodes(bootnodes)
        .static_peers(statics.iter().cloned())
        .rng_seed(i)
        // Every devnet node shares 127.0.0.1; op-node's colocation penalty would score them all
        // negative once a node has more than 10 peers.
        .ip_colocation_whitelist([Ipv4Addr::LOCALHOST.into()])
        // ...and every connection comes from 127.0.0.1, so the per-IP cap (10) would refuse
        // all but ten of them: loopback skips the caps here (never in production).
        .exempt_loopback_from_caps(true)
        // Peers learned from discovery and identify are on 127.0.0.1, which the address
        // policy never dials unless the netrestrict list covers it.
        .netrestrict(LOOPBACK_NETS);
    if i == 1 {
        b = b.sequencer_key(dev_key(0));
    }
    b.build()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarises latency samples (ms).
pub fn latency(mut samples: Vec<f64>) -> Latency {
    samples.sort_by(f64::total_cmp);
    Latency {
        p50_ms: percentile(&samples, 50.0),
        p95_ms: percentile(&samples, 95.0),
        p99_ms: percentile(&samples, 99.0),
        max_ms: samples.last().copied().unwrap_or(0.0),
        samples: samples.len(),
    }
}

/// Runs a devnet and returns what it measured.
pub async fn run(opts: DevnetOptions) -> Result<DevnetSummary, DevnetError> {
    let started = Instant::now();
    let ev = SpawnOptions::default().with_events(true);
    let mut boot = spawn(node_config(0, vec![], &opts.static_peers)?, ev.clone()).await?;
    let boot_enr: Vec<Bootnode> = boot
        .enr()
        .and_then(|e| e.parse().ok())
        .into_iter()
        .collect();
    let mut nodes: Vec<NodeHandle> = Vec::new();
    for i in 1..=opts.nodes.max(2) as u64 {
        let mut config = node_config(i, boot_enr.clone(), &opts.static_peers)?;
        if let (1, Some(remote)) = (i, &opts.remote_signer) {
            config.signer = Some(Arc::new(op_p2p_node::signer::RemoteSigner::new(
                remote.clone(),
            )?));
        }
        nodes.push(spawn(config, ev.clone()).await?);
    }
    let rejects = Arc::new(Mutex::new(0u64));
    let bans = Arc::new(Mutex::new(0u64));
    let mut event_tasks = Vec::new();
    for n in nodes.iter_mut().chain(std::iter::once(&mut boot)) {
        if let Some(mut events) = n.events() {
            let (rejects, bans) = (rejects.clone(), bans.clone());
            event_tasks.push(tokio::spawn(async move {
                while let Some(e) = events.next().await {
                    match e {
                        NodeEvent::Verdict {
                            verdict: Verdict::Reject,
                            ..
                        } => *rejects.lock().unwrap_or_else(|p| p.into_inner()) += 1,
                        NodeEvent::Disconnecting {
                            reason: op_p2p_core::DisconnectReason::Banned,
                            ..
                        } => *bans.lock().unwrap_or_else(|p| p.into_inner()) += 1,
                        _ => {}
                    }
                }
            }));
        }
    }
    // Wait for the network to form: every node with at least two peers.
    let form_limit = Duration::from_secs(60);
    let formed = tokio::time::timeout(form_limit, async {
        loop {
            let mut min = u64::MAX;
            for n in &nodes {
                if let Ok(AdminResponse::PeerStats(s)) =
                    n.admin().call(AdminRequest::PeerStats).await
                {
                    min = min.min(s.connected);
                }
            }
            if min >= 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    if formed.is_err() {
        for n in nodes {
            n.shutdown().await;
        }
        boot.shutdown().await;
        return Err(DevnetError::NoMesh(form_limit));
    }

    // Receivers: every node but the sequencer (index 0) records when each block arrives.
    let published_at: Arc<Mutex<BTreeMap<u64, Instant>>> = Arc::default();
    let receipts: Arc<Mutex<Vec<BTreeMap<u64, Instant>>>> =
        Arc::new(Mutex::new(vec![BTreeMap::new(); nodes.len()]));
    let mut receivers = Vec::new();
    for (k, n) in nodes.iter_mut().enumerate().skip(1) {
        let mut blocks = n.blocks().expect("taken once");
        let receipts = receipts.clone();
        receivers.push(tokio::spawn(async move {
            while let Some(b) = blocks.next().await {
                let number = b.envelope.payload.as_v1().block_number;
                receipts.lock().unwrap_or_else(|p| p.into_inner())[k]
                    .insert(number, Instant::now());
            }
        }));
    }

    let deadline = Instant::now() + opts.duration;
    let mut published = 0u64;
    let mut tick = tokio::time::interval(opts.interval);
    while published < opts.blocks && Instant::now() < deadline {
        tick.tick().await;
        let number = published + 1;
        let ts = system_now_ms() / 1000;
        let txs = transactions(DEVNET_CHAIN_ID, number, opts.txs, 64);
        let (payload, root) = BlockBuilder::new(op_p2p_core::BlockVersion::V4, number, ts)
            .with_transactions(txs)
            .build();
        let at = Instant::now();
        match nodes[0]
            .publish(PublishRequest::Sign {
                payload: Box::new(payload),
                parent_beacon_block_root: root,
            })
            .await
        {
            Ok(_) => {
                published_at
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(number, at);
                published += 1;
            }
            Err(e) => tracing::warn!(error = %e, "publish failed; retrying next tick"),
        }
        if opts.progress {
            let r = receipts.lock().unwrap_or_else(|p| p.into_inner());
            let counts: Vec<usize> = r.iter().skip(1).map(BTreeMap::len).collect();
            eprint!(
                "\rpublished {published}/{}  delivered min {} max {}  ",
                opts.blocks,
                counts.iter().min().copied().unwrap_or(0),
                counts.iter().max().copied().unwrap_or(0)
            );
            let _ = std::io::stderr().flush();
        }
    }
    // Let the last block spread.
    tokio::time::sleep(Duration::from_secs(2)).await;
    if opts.progress {
        eprintln!();
    }

    let published_at = published_at
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let receipts = receipts.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut samples = Vec::new();
    let mut delivered = Vec::new();
    for r in receipts.iter().skip(1) {
        delivered.push(r.len() as u64);
        for (number, t) in r {
            if let Some(p) = published_at.get(number) {
                samples.push(t.saturating_duration_since(*p).as_secs_f64() * 1000.0);
            }
        }
    }
    let expected = published as f64 * (nodes.len() - 1) as f64;
    let summary = DevnetSummary {
        nodes: nodes.len(),
        published,
        delivered_fraction: if expected > 0.0 {
            samples.len() as f64 / expected
        } else {
            0.0
        },
        delivered,
        latency: latency(samples),
        rejects: *rejects.lock().unwrap_or_else(|p| p.into_inner()),
        bans: *bans.lock().unwrap_or_else(|p| p.into_inner()),
        seconds: started.elapsed().as_secs_f64(),
    };
    for r in receivers {
        r.abort();
    }
    for n in nodes {
        n.shutdown().await;
    }
    boot.shutdown().await;
    for t in event_tasks {
        t.abort();
    }
    Ok(summary)
}

/// The human-readable summary.
pub fn render(s: &DevnetSummary) -> String {
    format!(
        "devnet: {} nodes, {} blocks published, {:.1}% of (node, block) pairs delivered in {:.1} s\n\
         publish→delivery latency: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)\n\
         rejects {}, bans {}",
        s.nodes,
        s.published,
        s.delivered_fraction * 100.0,
        s.seconds,
        s.latency.p50_ms,
        s.latency.p95_ms,
        s.latency.p99_ms,
        s.latency.max_ms,
        s.latency.samples,
        s.rejects,
        s.bans
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devnet_nodes_keep_the_settings_they_had() {
        let statics = [format!(
            "/ip4/10.0.0.9/tcp/1/p2p/{}",
            keypair(7).public().to_peer_id()
        )
        .parse()
        .unwrap()];
        let seq = node_config(1, vec![], &statics).unwrap();
        assert_eq!(seq.core.local_peer_id, keypair(1001).public().to_peer_id());
        assert_eq!(seq.core.validator.chain_id, DEVNET_CHAIN_ID);
        assert_eq!((seq.tcp_port, seq.udp_port), (0, 0));
        assert!(seq.discovery() && seq.core.discovery.is_some() && seq.bootnodes.is_empty());
        assert_eq!(seq.core.static_peers.len(), 1);
        assert_eq!(seq.core.rng_seed, 1);
        assert!(seq.signer.is_some());
        assert!(node_config(2, vec![], &[]).unwrap().signer.is_none());
        // An outside static peer without /p2p/<id> is refused, not skipped.
        assert!(matches!(
            node_config(0, vec![], &["/ip4/10.0.0.9/tcp/1".parse().unwrap()]),
            Err(ConfigError::StaticPeer { .. })
        ));
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let l = latency((1..=100).map(f64::from).collect());
        assert_eq!(
            (l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.samples),
            (50.0, 95.0, 99.0, 100.0, 100)
        );
        assert_eq!(latency(vec![]), Latency::default());
        assert_eq!(latency(vec![7.0]).p99_ms, 7.0);
    }
}
