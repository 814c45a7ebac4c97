//! [`NodeConfig`]: everything a running node needs besides the core's [`op_p2p_core::Config`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use libp2p::Multiaddr;
use op_p2p_core::discovery::Bootnode;

/// Everything a running node needs besides the core's [`op_p2p_core::Config`].
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The protocol core's settings (chain, signer, forks, tides, gating, bans, req/resp).
    pub core: op_p2p_core::Config,
    /// The secp256k1 identity, used for libp2p and discv5 alike (spec §1.1).
    pub keypair: libp2p::identity::Keypair,
    /// IP to listen on (TCP for libp2p, UDP for discv5).
    pub listen_ip: IpAddr,
    /// libp2p TCP port; 0 picks a free one.
    pub tcp_port: u16,
    /// discv5 UDP port; 0 picks a free one.
    pub udp_port: u16,
    /// IP to advertise in our ENR when it differs from `listen_ip` (e.g. behind NAT).
    pub advertise_ip: Option<IpAddr>,
    /// Run discv5.
    pub discovery: bool,
    /// discv5 bootnodes.
    pub bootnodes: Vec<Bootnode>,
    /// Static peers, as multiaddrs ending in `/p2p/<id>`.
    pub static_peers: Vec<Multiaddr>,
    /// JSON-RPC listen address (`opp2p_*`), if served.
    pub rpc_addr: Option<SocketAddr>,
    /// Prometheus listen address (`GET /metrics`), if served.
    pub metrics_addr: Option<SocketAddr>,
    /// Where state is kept; `None` keeps nothing across restarts.
    pub datadir: Option<PathBuf>,
    /// Identify agent version, `op-p2p/<version>` by default.
    pub agent_version: String,
    /// IPs exempt from gossipsub's IP-colocation penalty. Empty by default, as in op-node: a
    /// peer sharing its IP with more than 10 others scores negative and is kept out of the
    /// mesh. Only for devnets and benchmarks that run many nodes on one host (127.0.0.1).
    pub ip_colocation_whitelist: Vec<IpAddr>,
}

impl NodeConfig {
    /// A node on 127.0.0.1 with ephemeral TCP and UDP ports, discovery off, no bootnodes, no
    /// static peers, no RPC, no metrics and no data dir: the starting point for tests, devnets
    /// and examples. Change the fields you need.
    pub fn local(mut core: op_p2p_core::Config, keypair: libp2p::identity::Keypair) -> Self {
        core.local_peer_id = keypair.public().to_peer_id();
        Self {
            core,
            keypair,
            listen_ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            tcp_port: 0,
            udp_port: 0,
            advertise_ip: None,
            discovery: false,
            bootnodes: Vec::new(),
            static_peers: Vec::new(),
            rpc_addr: None,
            metrics_addr: None,
            datadir: None,
            agent_version: default_agent_version(),
            ip_colocation_whitelist: Vec::new(),
        }
    }
}

/// Our identify agent version.
pub fn default_agent_version() -> String {
    format!("op-p2p/{}", env!("CARGO_PKG_VERSION"))
}
