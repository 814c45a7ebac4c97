//! The discv5 service (spec §7) on a tokio runtime. The async-std crate hosts this same code on
//! a dedicated tokio thread, since discv5 needs a tokio reactor.
//!
//! It builds our record (the libp2p secp256k1 key, `ip`/`tcp`/`udp`, the `opstack` entry),
//! seeds the table from bootnodes and the persisted table, walks the DHT with random lookups,
//! and hands every record it meets to the node as `enr:` text over a bounded channel. A full
//! channel drops records rather than stalling discovery; the core filters them (chain id,
//! version 0) and dials.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use discv5::{ConfigBuilder, Discv5, Event, ListenConfig};
use op_p2p_core::discovery::enr_crate::{CombinedKey, NodeId};

/// A record with discv5's key type.
type Enr = op_p2p_core::discovery::enr_crate::Enr<CombinedKey>;
use futures::channel::mpsc;
use libp2p::identity::Keypair;
use op_p2p_core::discovery::{Bootnode, Host, local_enr};

/// Random lookups run this often once the table has some entries.
pub const LOOKUP_INTERVAL: Duration = Duration::from_secs(30);
/// ...and this often while it is nearly empty.
pub const FAST_LOOKUP_INTERVAL: Duration = Duration::from_secs(3);
/// Records buffered for the node before new ones are dropped.
pub const DISCOVERED_QUEUE: usize = 1024;

/// Why discovery could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The identity is not secp256k1 (op-node requires it: the ENR key is the libp2p key).
    #[error("the node key must be secp256k1")]
    KeyType,
    /// Our record could not be built.
    #[error(transparent)]
    Enr(#[from] op_p2p_core::discovery::EnrBuildError),
    /// discv5 refused to start.
    #[error("discv5: {0}")]
    Discv5(String),
    /// No free UDP port could be found.
    #[error("udp port: {0}")]
    Port(#[from] std::io::Error),
}

/// What discovery needs.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// The node identity (secp256k1).
    pub keypair: Keypair,
    /// Chain id for the `opstack` entry.
    pub chain_id: u64,
    /// IP to bind.
    pub listen_ip: IpAddr,
    /// UDP port; 0 picks a free one.
    pub udp_port: u16,
    /// IP to put in the record (defaults to `listen_ip`, or loopback if that is unspecified).
    pub advertise_ip: Option<IpAddr>,
    /// Our libp2p TCP port, for the record.
    pub tcp_port: u16,
    /// Bootnodes.
    pub bootnodes: Vec<Bootnode>,
    /// Records from the persisted table, to seed the DHT.
    pub seeds: Vec<String>,
}

/// A running discovery service. Stopping it (or dropping it) shuts discv5 down.
pub struct DiscoveryService {
    /// Our record, `enr:…`.
    pub enr: String,
    /// Where discv5 listens.
    pub udp: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    discv5: Arc<Discv5>,
}

impl std::fmt::Debug for DiscoveryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryService")
            .field("enr", &self.enr)
            .field("udp", &self.udp)
            .finish_non_exhaustive()
    }
}

impl DiscoveryService {
    /// Stops the service: the lookup task ends, and discv5 shuts down when its last handle
    /// (held by that task) is dropped.
    pub fn stop(self) {
        self.task.abort();
        drop(self.discv5);
    }

    /// The records in discv5's routing table, as `enr:` text.
    pub fn table(&self) -> Vec<String> {
        self.discv5
            .table_entries_enr()
            .iter()
            .map(|r| r.to_base64())
            .collect()
    }
}

fn free_udp_port(ip: IpAddr) -> std::io::Result<u16> {
    Ok(UdpSocket::bind(SocketAddr::new(ip, 0))?
        .local_addr()?
        .port())
}

/// Starts discv5 on the current tokio runtime; discovered records go to `out`.
pub async fn start(
    config: DiscoveryConfig,
    out: mpsc::Sender<String>,
) -> Result<DiscoveryService, DiscoveryError> {
    let secp = config
        .keypair
        .clone()
        .try_into_secp256k1()
        .map_err(|_| DiscoveryError::KeyType)?;
    let mut secret = secp.secret().to_bytes();
    let key =
        CombinedKey::secp256k1_from_bytes(&mut secret).map_err(|_| DiscoveryError::KeyType)?;
    let udp_port = if config.udp_port == 0 {
        free_udp_port(config.listen_ip)?
    } else {
        config.udp_port
    };
    let advertise = config
        .advertise_ip
        .unwrap_or(if config.listen_ip.is_unspecified() {
            IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        } else {
            config.listen_ip
        });
    let enr: Enr = local_enr(
        &key,
        1,
        config.chain_id,
        advertise,
        config.tcp_port,
        udp_port,
    )?;
    let text = enr.to_base64();
    let listen = ListenConfig::from_ip(config.listen_ip, udp_port);
    let mut discv5 = Discv5::new(enr, key, ConfigBuilder::new(listen).build())
        .map_err(|e| DiscoveryError::Discv5(e.into()))?;
    discv5
        .start()
        .await
        .map_err(|e| DiscoveryError::Discv5(e.to_string()))?;
    let discv5 = Arc::new(discv5);
    tracing::info!(enr = %text, udp = udp_port, "discv5 started");

    for seed in &config.seeds {
        if let Ok(r) = seed.parse::<Enr>() {
            let _ = discv5.add_enr(r);
        }
    }
    let mut enodes = Vec::new();
    for b in &config.bootnodes {
        match b {
            Bootnode::Enr(r) => match r.to_base64().parse::<Enr>() {
                Ok(r) => {
                    if let Err(e) = discv5.add_enr(r) {
                        tracing::warn!(error = e, "bootnode not added");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "bootnode record does not parse"),
            },
            Bootnode::Enode(enode) => enodes.push(enode.clone()),
        }
    }

    let d = discv5.clone();
    let task = tokio::spawn(async move {
        // Enode bootnodes carry no record: ask them for it (resolving DNS names first).
        for enode in enodes {
            let ip = match &enode.host {
                Host::Ip(ip) => Some(*ip),
                Host::Dns(name) => tokio::net::lookup_host((name.as_str(), enode.udp_port))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .map(|a| a.ip()),
            };
            let Some(ip) = ip else {
                tracing::warn!(%enode, "bootnode host does not resolve");
                continue;
            };
            let proto = if ip.is_ipv4() { "ip4" } else { "ip6" };
            let addr = format!(
                "/{proto}/{ip}/udp/{}/p2p/{}",
                enode.udp_port,
                enode.peer_id()
            );
            let Ok(ma) = addr.parse::<libp2p::Multiaddr>() else {
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(5), d.request_enr(ma)).await {
                Ok(Ok(r)) => {
                    let _ = d.add_enr(r);
                }
                other => tracing::debug!(%enode, ?other, "bootnode did not answer"),
            }
        }
        run(d, out).await;
    });
    Ok(DiscoveryService {
        enr: text,
        udp: SocketAddr::new(config.listen_ip, udp_port),
        task,
        discv5,
    })
}

async fn run(discv5: Arc<Discv5>, mut out: mpsc::Sender<String>) {
    let mut events = match discv5.event_stream().await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "discv5 event stream unavailable");
            return;
        }
    };
    let forward = |r: &Enr, out: &mut mpsc::Sender<String>| {
        // A slow node loses records; discovery keeps walking.
        let _ = out.try_send(r.to_base64());
    };
    for r in discv5.table_entries_enr() {
        forward(&r, &mut out);
    }
    let mut next_lookup = tokio::time::Instant::now();
    loop {
        let lookup_due = tokio::time::sleep_until(next_lookup);
        tokio::select! {
            ev = events.recv() => match ev {
                Some(Event::Discovered(r)) | Some(Event::SessionEstablished(r, _)) => forward(&r, &mut out),
                Some(_) => {}
                None => return,
            },
            _ = lookup_due => {
                let found = discv5.find_node(NodeId::random()).await.unwrap_or_default();
                for r in &found {
                    forward(r, &mut out);
                }
                let interval = if discv5.table_entries_enr().len() < 8 { FAST_LOOKUP_INTERVAL } else { LOOKUP_INTERVAL };
                next_lookup = tokio::time::Instant::now() + interval;
            }
        }
    }
}
