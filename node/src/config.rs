//! [`NodeConfig`], everything a running node needs, and [`NodeConfigBuilder`], the one place
//! a node configuration is made and checked.

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use alloy_primitives::Address;
use libp2p::identity::{KeyType, Keypair};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use op_p2p_core::Config;
use op_p2p_core::discovery::{Bootnode, BootnodeError};
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::gossip::signature::SequencerKey;
use op_p2p_core::peers::gater::GaterConfig;
use op_p2p_core::peers::netpolicy::{IpNet, LOOPBACK_NETS, NetRestrictError, parse_netrestrict};
use op_p2p_core::peers::score_ban::BanConfig;
use op_p2p_core::peers::tides::{ConnConfig, MAX_PEERS_HI};
use op_p2p_core::presets::{OP_NODE_BOOTNODES, Preset};

use crate::http::{DEFAULT_VHOSTS, VhostError, VirtualHosts};
use crate::l1_signer::{L1Config, L1Endpoint, L1UrlError, MAX_L1_CONFS};

/// libp2p TCP port (and discv5 UDP port) of a builder-made node unless set: op-node's.
pub const DEFAULT_P2P_PORT: u16 = 9222;
/// L2 block time of a chain without a preset unless set, seconds (the OP Stack's).
pub const DEFAULT_BLOCK_TIME_SECS: u64 = 2;
/// Longest user string echoed back in a [`ConfigError`], characters.
const MAX_ECHO: usize = 120;

/// Everything a running node needs: the protocol core's settings and the node's own.
///
/// Made by [`NodeConfig::builder`] (or [`NodeConfig::local`], a loopback starting point for
/// tests and examples). Each setting lives in one place: the protocol's in `core` (static
/// peers in `core.static_peers`, discovery on exactly when `core.discovery` holds a table),
/// the node's own here. `core.local_peer_id` is derived from [`keypair`](Self::keypair) when
/// the configuration is made.
///
/// The fields stay public to read and to adjust. [`NodeConfig::validate`] checks everything the
/// builder checks (the peer id included), and [`crate::spawn`] runs it before it binds
/// anything, so an invalid configuration never starts a node, however it was made.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// discv5 bootnodes.
    pub bootnodes: Vec<Bootnode>,
    /// JSON-RPC listen address (`opp2p_*`), if served.
    pub rpc_addr: Option<SocketAddr>,
    /// `Host` names the JSON-RPC answers (`--rpc.vhosts`, a DNS-rebinding guard; see
    /// [`VirtualHosts`]): `*` for every name; IP addresses always pass. Default
    /// [`DEFAULT_VHOSTS`], `localhost`.
    pub rpc_vhosts: Vec<String>,
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
    /// Where the unsafe block signer is read from on L1 (`--l1`), if it is: the node then
    /// follows L1's `SystemConfig` (see [`crate::l1_signer`]) and `core`'s signer is only the
    /// one it starts with.
    pub l1: Option<L1Config>,
    // ---- publishing (issue 14) ----
    /// Who signs the blocks this node publishes: the local sequencer key or a remote
    /// op-signer; `None` refuses [`PublishRequest::Sign`](op_p2p_core::PublishRequest::Sign)
    /// (already-signed envelopes still go out). The queue's bounds are in `core.publish`.
    pub signer: Option<std::sync::Arc<dyn crate::signer::BlockSigner>>,
    // ---- validation on every core (issue 15) ----
    /// Worker threads that run the stateless half of gossip validation (see
    /// [`crate::validation_pool`]); 0 validates on the event loop. Default: the cores
    /// available, at most 8 ([`crate::validation_pool::default_workers`]).
    pub validation_workers: usize,
    /// Most gossip messages one peer gets checked a second; past it they are IGNOREd
    /// unvalidated ([`crate::validation_pool::PeerBudget`]). 0: no budget. Default
    /// [`crate::validation_pool::PEER_CHECKS_PER_SECOND`].
    pub peer_checks_per_second: u32,
}

/// Why a node configuration is refused, by [`NodeConfigBuilder::build`],
/// [`NodeConfigBuilder::check`], [`NodeConfig::validate`] and so by [`crate::spawn`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither a preset nor a chain id was chosen.
    #[error("no chain: choose a preset or a chain id")]
    NoChain,
    /// A chain without a preset needs its unsafe block signer.
    #[error("chain {chain_id} has no preset: its unsafe block signer must be given")]
    NoSigner {
        /// The chain id given.
        chain_id: u64,
    },
    /// The remote block signer cannot be set up (TLS files, endpoint).
    #[error("remote signer: {0}")]
    RemoteSigner(#[from] crate::signer::SignerSetupError),
    /// Chain id 0 is not a chain.
    #[error("the chain id must not be 0")]
    ZeroChainId,
    /// The chain id given contradicts the preset's.
    #[error("chain id {given} contradicts preset {preset} (chain {preset_chain_id})")]
    ChainIdMismatch {
        /// The preset's name.
        preset: &'static str,
        /// The preset's chain id.
        preset_chain_id: u64,
        /// The chain id given.
        given: u64,
    },
    /// The L2 block time is 0.
    #[error("the block time must be at least 1 second")]
    ZeroBlockTime,
    /// The node key is not secp256k1 (op-node's only key type: the ENR key is the libp2p key).
    #[error("the node key must be secp256k1, not {found:?}")]
    KeyType {
        /// The key's type.
        found: KeyType,
    },
    /// `core.local_peer_id` is not the key's peer id (the key or the id changed after the
    /// config was made).
    #[error("core.local_peer_id is not {key}, the node key's peer id")]
    PeerIdMismatch {
        /// The key's peer id.
        key: PeerId,
    },
    /// The low tide is above the high tide.
    #[error("p2p.peers.lo {lo} is above p2p.peers.hi {hi}")]
    PeersLoAboveHi {
        /// The low tide.
        lo: usize,
        /// The high tide.
        hi: usize,
    },
    /// The high tide is above [`MAX_PEERS_HI`].
    #[error("p2p.peers.hi {hi} is above the most allowed, {max}")]
    PeersHiAboveMax {
        /// The high tide.
        hi: usize,
        /// [`MAX_PEERS_HI`].
        max: usize,
    },
    /// The ban threshold is NaN or infinite.
    #[error("p2p.ban.threshold must be a finite number, not {0}")]
    BanThreshold(f64),
    /// A bootnode does not parse.
    #[error("bootnode {index} ({input:?}): {source}")]
    Bootnode {
        /// Position in the list, from 0.
        index: usize,
        /// The entry (shortened).
        input: String,
        /// Why.
        #[source]
        source: BootnodeError,
    },
    /// A static peer is not a multiaddr.
    #[error("static peer {index} ({input:?}) is not a multiaddr: {source}")]
    StaticPeerAddr {
        /// Position in the list, from 0.
        index: usize,
        /// The entry (shortened).
        input: String,
        /// Why.
        #[source]
        source: libp2p::multiaddr::Error,
    },
    /// An `rpc.vhosts` entry is malformed.
    #[error("rpc.vhosts entry {index} ({input:?}) {reason}")]
    RpcVhost {
        /// Position in the list, from 0.
        index: usize,
        /// The entry (shortened).
        input: String,
        /// Why.
        reason: VhostError,
    },
    // ---- operator settings (bootnodes file, gossip timestamp threshold) ----
    /// The bootnodes file (`--p2p.bootnodes-file`) cannot be read or has a bad entry.
    #[error(transparent)]
    BootnodesFile(#[from] crate::bootnodes_file::BootnodesFileError),
    /// The gossip timestamp threshold is under one second (every block would be too old).
    #[error("p2p.gossip.timestamp.threshold must be at least 1s, not {0:?}")]
    TimestampThreshold(Duration),
    // ---- end operator settings ----
    /// The netrestrict list (`--p2p.netrestrict`) does not parse, or is empty.
    #[error("p2p.netrestrict: {0}")]
    NetRestrict(#[from] NetRestrictError),
    /// A static peer is a multiaddr, but not one to keep connected.
    #[error("static peer {index} ({addr}) {reason}")]
    StaticPeer {
        /// Position in the list, from 0.
        index: usize,
        /// The entry.
        addr: Multiaddr,
        /// What is wrong with it.
        reason: StaticPeerError,
    },
    // ---- reading the signer from L1 ----
    /// The L1 URL (`--l1`) is refused.
    #[error("l1 {input:?}: {source}")]
    L1Url {
        /// The URL (shortened).
        input: String,
        /// Why.
        #[source]
        source: L1UrlError,
    },
    /// Reading the signer from L1 needs the chain's `SystemConfig` address, and the chain has
    /// no preset that gives it.
    #[error("chain {chain_id} has no preset SystemConfig: give rollup.system-config")]
    NoSystemConfig {
        /// The L2 chain id.
        chain_id: u64,
    },
    /// Reading the signer from L1 needs the L1's chain id, and the chain has no preset that
    /// gives it.
    #[error("chain {chain_id} has no preset L1: give the L1 chain id")]
    NoL1ChainId {
        /// The L2 chain id.
        chain_id: u64,
    },
    /// L1 chain id 0.
    #[error("the L1 chain id must not be 0")]
    ZeroL1ChainId,
    /// The L1 chain id given contradicts the preset's.
    #[error("L1 chain id {given} contradicts preset {preset} (L1 chain {preset_l1_chain_id})")]
    L1ChainIdMismatch {
        /// The preset's name.
        preset: &'static str,
        /// The preset's L1 chain id.
        preset_l1_chain_id: u64,
        /// The L1 chain id given.
        given: u64,
    },
    /// The reload interval is under a second.
    #[error("l1.runtime-config-reload-interval must be at least 1s, not {0:?}")]
    L1ReloadInterval(Duration),
    /// More confirmations than [`MAX_L1_CONFS`].
    #[error("verifier.l1-confs {0} is above the most allowed, {MAX_L1_CONFS}")]
    L1Confs(u64),
    /// A JSON-RPC deadline of zero.
    #[error("the L1 request timeout must not be 0")]
    L1RequestTimeout,
    // ---- end of reading the signer from L1 ----
}

/// Why a static peer multiaddr is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StaticPeerError {
    /// Does not end in `/p2p/<peer id>`.
    #[error("must end in /p2p/<peer id>")]
    MissingPeerId,
    /// Only `/p2p/<id>`: nothing to dial.
    #[error("has no address before /p2p/<peer id>")]
    NoAddress,
    /// Our own peer id.
    #[error("is this node's own peer id")]
    OwnPeerId,
}

impl NodeConfig {
    /// A builder for a node with `keypair` as its identity; see [`NodeConfigBuilder`].
    pub fn builder(keypair: Keypair) -> NodeConfigBuilder {
        NodeConfigBuilder::new(keypair)
    }

    /// A node on 127.0.0.1 with ephemeral TCP and UDP ports, discovery off (no table), no
    /// bootnodes, no RPC, no metrics and no data dir, running `core` as given otherwise (our
    /// peer id taken from `keypair`): the starting point for tests and examples. Change the
    /// fields you need; [`NodeConfig::validate`] (which [`crate::spawn`] runs) checks them.
    ///
    /// Being a loopback starting point, it asks for what many nodes on one host need: loopback
    /// peers skip the per-IP and per-subnet caps
    /// ([`GaterConfig::exempt_loopback_from_caps`], off in production), and unless `core`
    /// already has a netrestrict list, addresses learned from the network are dialled on
    /// loopback only ([`GaterConfig::netrestrict`] = [`LOOPBACK_NETS`]; without a list,
    /// loopback addresses are never dialled).
    pub fn local(core: op_p2p_core::Config, keypair: Keypair) -> Self {
        let mut config = Self {
            core,
            keypair,
            listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            tcp_port: 0,
            udp_port: 0,
            advertise_ip: None,
            bootnodes: Vec::new(),
            rpc_addr: None,
            rpc_vhosts: default_vhosts(),
            metrics_addr: None,
            datadir: None,
            agent_version: default_agent_version(),
            ip_colocation_whitelist: Vec::new(),
            l1: None,
            signer: None,
            validation_workers: crate::validation_pool::default_workers(),
            peer_checks_per_second: crate::validation_pool::PEER_CHECKS_PER_SECOND,
        };
        config.core.local_peer_id = config.keypair.public().to_peer_id();
        config.core.discovery = None;
        config.core.gater.exempt_loopback_from_caps = true;
        config
            .core
            .gater
            .netrestrict
            .get_or_insert_with(|| LOOPBACK_NETS.to_vec());
        config
    }

    /// The JSON-RPC's `Host` allow-list from [`rpc_vhosts`](Self::rpc_vhosts)
    /// ([`ConfigError::RpcVhost`] for a malformed entry).
    pub fn rpc_virtual_hosts(&self) -> Result<VirtualHosts, ConfigError> {
        check_vhosts(&self.rpc_vhosts)
    }

    /// Whether discv5 runs: exactly when `core.discovery` holds the table's settings.
    pub fn discovery(&self) -> bool {
        self.core.discovery.is_some()
    }

    /// Checks what [`NodeConfigBuilder::build`] checks, on this configuration as it is now:
    /// for a configuration changed after it was made.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_chain(self.core.validator.chain_id, self.core.block_time_secs)?;
        let key = check_key(&self.keypair)?;
        if self.core.local_peer_id != key {
            return Err(ConfigError::PeerIdMismatch { key });
        }
        check_conn(&self.core.conn)?;
        check_bans(&self.core.bans)?;
        self.rpc_virtual_hosts()?;
        check_netrestrict(self.core.gater.netrestrict.as_deref())?;
        if let Some(l1) = &self.l1 {
            check_l1(l1)?;
        }
        for (index, (peer, addrs)) in self.core.static_peers.iter().enumerate() {
            let shown = addrs
                .first()
                .cloned()
                .unwrap_or_else(Multiaddr::empty)
                .with(Protocol::P2p(*peer));
            let bad = |reason| ConfigError::StaticPeer {
                index,
                addr: shown.clone(),
                reason,
            };
            if addrs.is_empty() || addrs.iter().any(|a| a.is_empty()) {
                return Err(bad(StaticPeerError::NoAddress));
            }
            if *peer == key {
                return Err(bad(StaticPeerError::OwnPeerId));
            }
        }
        Ok(())
    }
}

/// [`DEFAULT_VHOSTS`] as owned strings.
fn default_vhosts() -> Vec<String> {
    DEFAULT_VHOSTS.iter().map(|h| (*h).to_owned()).collect()
}

/// Our identify agent version.
pub fn default_agent_version() -> String {
    format!("op-p2p/{}", env!("CARGO_PKG_VERSION"))
}

/// Entries given as values or as text the builder parses.
#[derive(Debug, Clone)]
enum Entries<T> {
    Parsed(Vec<T>),
    Text(Vec<String>),
}

/// The one way to make a [`NodeConfig`]: choose a chain (a [`Preset`] or explicit values),
/// change what differs from the defaults, then [`build`](Self::build), which checks every
/// setting and derives the core's [`Config`] once.
///
/// Defaults (op-node's where it has one): listen on `0.0.0.0`, TCP and UDP port
/// [`DEFAULT_P2P_PORT`], discovery on, the preset's bootnodes (op-node's built-in list
/// without a preset), no static peers, op-node's tides, ban policy and gating, no JSON-RPC, no
/// metrics, no data dir, agent `op-p2p/<version>`, no colocation whitelist, an RNG seed from
/// the OS, not a sequencer. Settings without a setter here (req/resp serving, peer book
/// bounds, application scores) are changed on [`NodeConfig::core`] after `build`.
///
/// Joining Base mainnet, with the node key and state kept in a data dir:
///
/// ```
/// use op_p2p_node::NodeConfig;
/// use op_p2p_node::core::presets::BASE;
/// use op_p2p_node::datadir::DataDir;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// # let path = tmp.path().join("op-p2p");
/// let secret = os_random(); // 32 bytes, the key only if none exists yet
/// let keypair = DataDir::open(&path)?.load_or_create_key(None, secret)?;
/// let config = NodeConfig::builder(keypair).preset(&BASE).datadir(&path).build()?;
/// assert_eq!(config.core.validator.chain_id, 8453);
/// assert_eq!(config.bootnodes.len(), BASE.bootnodes.len());
/// // let node = op_p2p_tokio::spawn(config, Default::default()).await?;
/// # Ok(())
/// # }
/// # fn os_random() -> [u8; 32] { [7; 32] }
/// ```
///
/// A devnet node, checked like any other:
///
/// ```
/// use op_p2p_node::{ConfigError, NodeConfig};
/// use op_p2p_node::core::fork::ForkSchedule;
/// use op_p2p_node::core::testkit::{dev_key, keypair};
///
/// let config = NodeConfig::builder(keypair(1))
///     .chain(901, dev_key(0).address(), ForkSchedule::ALL_AT_GENESIS, 2)
///     .listen_ip([127, 0, 0, 1].into())
///     .tcp_port(0)
///     .discovery(false)
///     .build()
///     .unwrap();
/// assert_eq!(config.core.local_peer_id, keypair(1).public().to_peer_id());
/// assert!(config.core.discovery.is_none());
///
/// let refused = NodeConfig::builder(keypair(1)).chain_id(901).build();
/// assert!(matches!(refused, Err(ConfigError::NoSigner { chain_id: 901 })));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct NodeConfigBuilder {
    keypair: Keypair,
    preset: Option<&'static Preset>,
    chain_id: Option<u64>,
    unsafe_signer: Option<Address>,
    forks: Option<ForkSchedule>,
    block_time_secs: Option<u64>,
    listen_ip: IpAddr,
    tcp_port: u16,
    udp_port: Option<u16>,
    advertise_ip: Option<IpAddr>,
    discovery: bool,
    bootnodes: Option<Entries<Bootnode>>,
    static_peers: Entries<Multiaddr>,
    conn: ConnConfig,
    bans: BanConfig,
    gater: GaterConfig,
    rpc_addr: Option<SocketAddr>,
    rpc_vhosts: Vec<String>,
    metrics_addr: Option<SocketAddr>,
    datadir: Option<PathBuf>,
    agent_version: Option<String>,
    ip_colocation_whitelist: Vec<IpAddr>,
    netrestrict: Option<Entries<IpNet>>,
    rng_seed: Option<u64>,
    sequencer_key: Option<SequencerKey>,
    l1: L1Settings,
    // Operator settings (see the "operator settings" setters).
    bootnodes_file: Option<PathBuf>,
    gossip_timestamp_threshold: Option<Duration>,
    remote_signer: Option<crate::signer::RemoteSignerConfig>,
    publish_queue: op_p2p_core::publish::QueueConfig,
    // ---- validation on every core (issue 15) ----
    validation_workers: Option<usize>,
    peer_checks_per_second: Option<u32>,
}

/// The builder's L1 settings, as given.
#[derive(Debug, Clone, Default)]
struct L1Settings {
    url: Option<String>,
    system_config: Option<Address>,
    chain_id: Option<u64>,
    reload_interval: Option<Duration>,
    confs: Option<u64>,
    request_timeout: Option<Duration>,
}

/// The chain settings after presets and overrides.
struct Chain {
    chain_id: u64,
    signer: Address,
    forks: ForkSchedule,
    block_time_secs: u64,
}

impl NodeConfigBuilder {
    /// A builder for a node with `keypair` (secp256k1) as its identity, every setting at its
    /// default and no chain chosen yet.
    pub fn new(keypair: Keypair) -> Self {
        Self {
            keypair,
            preset: None,
            chain_id: None,
            unsafe_signer: None,
            forks: None,
            block_time_secs: None,
            listen_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            tcp_port: DEFAULT_P2P_PORT,
            udp_port: None,
            advertise_ip: None,
            discovery: true,
            bootnodes: None,
            static_peers: Entries::Parsed(Vec::new()),
            conn: ConnConfig::default(),
            bans: BanConfig::default(),
            gater: GaterConfig::default(),
            rpc_addr: None,
            rpc_vhosts: default_vhosts(),
            metrics_addr: None,
            datadir: None,
            agent_version: None,
            ip_colocation_whitelist: Vec::new(),
            netrestrict: None,
            rng_seed: None,
            sequencer_key: None,
            l1: L1Settings::default(),
            bootnodes_file: None,
            gossip_timestamp_threshold: None,
            remote_signer: None,
            publish_queue: Default::default(),
            validation_workers: None,
            peer_checks_per_second: None,
        }
    }

    /// Replaces the node key.
    pub fn keypair(mut self, keypair: Keypair) -> Self {
        self.keypair = keypair;
        self
    }

    // ---- the chain ----

    /// Joins a public network: its chain id, unsafe block signer, fork times, block time and
    /// (unless [`bootnodes`](Self::bootnodes) are given) bootnodes. The setters below override
    /// single values; a chain id must agree with the preset's.
    pub fn preset(mut self, preset: &'static Preset) -> Self {
        self.preset = Some(preset);
        self
    }

    /// A chain given by its values: chain id, unsafe block signer, fork activation times and
    /// L2 block time in seconds.
    pub fn chain(
        self,
        chain_id: u64,
        unsafe_signer: Address,
        forks: ForkSchedule,
        block_time_secs: u64,
    ) -> Self {
        self.chain_id(chain_id)
            .unsafe_signer(unsafe_signer)
            .forks(forks)
            .block_time(block_time_secs)
    }

    /// The L2 chain id (with a preset: must be the preset's).
    pub fn chain_id(mut self, chain_id: u64) -> Self {
        self.chain_id = Some(chain_id);
        self
    }

    /// The unsafe block signer, overriding the preset's.
    pub fn unsafe_signer(mut self, signer: Address) -> Self {
        self.unsafe_signer = Some(signer);
        self
    }

    /// The fork activation times, overriding the preset's [default: the preset's, else none
    /// scheduled].
    pub fn forks(mut self, forks: ForkSchedule) -> Self {
        self.forks = Some(forks);
        self
    }

    /// The L2 block time in seconds, overriding the preset's [default: the preset's, else
    /// [`DEFAULT_BLOCK_TIME_SECS`]].
    pub fn block_time(mut self, secs: u64) -> Self {
        self.block_time_secs = Some(secs);
        self
    }

    // ---- sockets and discovery ----

    /// IP to listen on, TCP and UDP [default `0.0.0.0`].
    pub fn listen_ip(mut self, ip: IpAddr) -> Self {
        self.listen_ip = ip;
        self
    }

    /// libp2p TCP port; 0 picks a free one [default [`DEFAULT_P2P_PORT`]].
    pub fn tcp_port(mut self, port: u16) -> Self {
        self.tcp_port = port;
        self
    }

    /// discv5 UDP port; 0 picks a free one [default: the TCP port, as in op-node].
    pub fn udp_port(mut self, port: u16) -> Self {
        self.udp_port = Some(port);
        self
    }

    /// IP to advertise in our ENR (e.g. the public IP behind NAT) [default: none].
    pub fn advertise_ip(mut self, ip: impl Into<Option<IpAddr>>) -> Self {
        self.advertise_ip = ip.into();
        self
    }

    /// Runs discv5 or not [default: on].
    pub fn discovery(mut self, on: bool) -> Self {
        self.discovery = on;
        self
    }

    /// Exactly these bootnodes (an empty list: none) [default: the preset's, else op-node's
    /// built-in list].
    pub fn bootnodes(mut self, bootnodes: impl IntoIterator<Item = Bootnode>) -> Self {
        self.bootnodes = Some(Entries::Parsed(bootnodes.into_iter().collect()));
        self
    }

    /// Exactly these bootnodes, as `enr:` or `enode://` text parsed by
    /// [`build`](Self::build) ([`ConfigError::Bootnode`]).
    pub fn bootnode_strings<S: AsRef<str>>(
        mut self,
        bootnodes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.bootnodes = Some(Entries::Text(
            bootnodes
                .into_iter()
                .map(|s| s.as_ref().to_owned())
                .collect(),
        ));
        self
    }

    /// Exactly these static peers, multiaddrs ending in `/p2p/<peer id>`: always redialled,
    /// never pruned or score-banned [default: none].
    pub fn static_peers(mut self, peers: impl IntoIterator<Item = Multiaddr>) -> Self {
        self.static_peers = Entries::Parsed(peers.into_iter().collect());
        self
    }

    /// Exactly these static peers, as multiaddr text (surrounding whitespace ignored) parsed
    /// by [`build`](Self::build) ([`ConfigError::StaticPeerAddr`]).
    pub fn static_peer_strings<S: AsRef<str>>(
        mut self,
        peers: impl IntoIterator<Item = S>,
    ) -> Self {
        self.static_peers = Entries::Text(
            peers
                .into_iter()
                .map(|s| s.as_ref().trim().to_owned())
                .collect(),
        );
        self
    }

    // ---- peering policy ----

    /// Low-tide peer count: below it the node dials discovered peers (`p2p.peers.lo`,
    /// default 20).
    pub fn peers_lo(mut self, lo: usize) -> Self {
        self.conn.low = lo;
        self
    }

    /// High-tide peer count: above it the node prunes connections (`p2p.peers.hi`, default
    /// 30, at most [`MAX_PEERS_HI`]). The node keeps at most `2 × hi + static peers`
    /// connected ([`ConnConfig::max_connected`]).
    pub fn peers_hi(mut self, hi: usize) -> Self {
        self.conn.high = hi;
        self
    }

    /// How long a new peer is not pruned (`p2p.peers.grace`, default 30 s).
    pub fn peers_grace(mut self, grace: Duration) -> Self {
        self.conn.grace_ms = millis(grace);
        self
    }

    /// Bans peers whose score falls to the threshold, or not (`p2p.ban.peers`, default on).
    pub fn ban_peers(mut self, on: bool) -> Self {
        self.bans.enabled = on;
        self
    }

    /// Score at or below which a peer is disconnected and banned (`p2p.ban.threshold`,
    /// default −100; must be finite).
    pub fn ban_threshold(mut self, threshold: f64) -> Self {
        self.bans.threshold = threshold;
        self
    }

    /// How long a score ban lasts (`p2p.ban.duration`, default 1 h).
    pub fn ban_duration(mut self, duration: Duration) -> Self {
        self.bans.duration_ms = millis(duration);
        self
    }

    /// Connection gating: per-IP and per-subnet caps, list bounds [default:
    /// [`GaterConfig::default`]].
    pub fn gater(mut self, gater: GaterConfig) -> Self {
        self.gater = gater;
        self
    }

    /// op-node's `--p2p.netrestrict`: addresses learned from the network (discovery records,
    /// identify) are dialled only inside these ranges [default: no list, and then only public
    /// addresses: never loopback, private, link-local, CGNAT, multicast or the cloud metadata
    /// service; see [`op_p2p_core::peers::netpolicy`]]. Static peers' configured addresses and
    /// `opp2p_connectPeer` addresses are dialled either way. A node whose peers are all on
    /// one host lists [`LOOPBACK_NETS`]. An empty list is refused
    /// ([`ConfigError::NetRestrict`]).
    pub fn netrestrict(mut self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.netrestrict = Some(Entries::Parsed(nets.into_iter().collect()));
        self
    }

    /// [`netrestrict`](Self::netrestrict) as text, the way op-node's flag reads it: each entry
    /// comma-separated CIDR ranges, whitespace ignored, parsed by [`build`](Self::build)
    /// ([`ConfigError::NetRestrict`]).
    pub fn netrestrict_strings<S: AsRef<str>>(
        mut self,
        entries: impl IntoIterator<Item = S>,
    ) -> Self {
        self.netrestrict = Some(Entries::Text(
            entries.into_iter().map(|s| s.as_ref().to_owned()).collect(),
        ));
        self
    }

    /// Lets loopback peers (127.0.0.0/8, `::1`) skip the per-IP and per-subnet caps, or not
    /// [default: not] ([`GaterConfig::exempt_loopback_from_caps`]; only for many nodes on one
    /// host: devnets, benchmarks, tests). Set after [`gater`](Self::gater), which replaces it.
    pub fn exempt_loopback_from_caps(mut self, on: bool) -> Self {
        self.gater.exempt_loopback_from_caps = on;
        self
    }

    /// How fast one source (an IPv4 address, an IPv6 /64) may open inbound connections: `burst`
    /// back to back, then one per `refill` [default: 16, one per 4 s]; a `burst` of 0 or a zero
    /// `refill` turns the limit off ([`op_p2p_core::peers::accept_rate`]). Raise it for a node
    /// that many honest peers reach through one address (a NAT, a load balancer). Set after
    /// [`gater`](Self::gater), which replaces it.
    pub fn accept_rate(mut self, burst: u32, refill: Duration) -> Self {
        self.gater.accept_burst = burst;
        self.gater.accept_refill_ms = u64::try_from(refill.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// IPs exempt from gossipsub's IP-colocation penalty (see
    /// [`NodeConfig::ip_colocation_whitelist`]; only for many nodes on one host).
    pub fn ip_colocation_whitelist(mut self, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.ip_colocation_whitelist = ips.into_iter().collect();
        self
    }

    /// Seed of the node's RNG (dial shuffles), for reproducible runs [default: from the OS].
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.rng_seed = Some(seed);
        self
    }

    /// The key this node signs published blocks with (sequencers only; `--p2p.sequencer.key`).
    /// A [`remote_signer`](Self::remote_signer) given too takes precedence.
    pub fn sequencer_key(mut self, key: SequencerKey) -> Self {
        self.sequencer_key = Some(key);
        self
    }

    /// Signs published blocks with a remote op-signer (`--signer.*`).
    pub fn remote_signer(mut self, signer: crate::signer::RemoteSignerConfig) -> Self {
        self.remote_signer = Some(signer);
        self
    }

    /// The publish queue's bound, deadline and age limit [default: 16 blocks, 10 s, 60 s].
    pub fn publish_queue(mut self, queue: op_p2p_core::publish::QueueConfig) -> Self {
        self.publish_queue = queue;
        self
    }

    // ---- services and state ----

    /// Serves the `opp2p_*` JSON-RPC on this address (port 0 picks one), or not [default:
    /// not]. The admin API can block and ban peers: keep it on loopback.
    pub fn rpc_addr(mut self, addr: impl Into<Option<SocketAddr>>) -> Self {
        self.rpc_addr = addr.into();
        self
    }

    /// Exactly these `Host` names may reach the JSON-RPC (`--rpc.vhosts`, go-ethereum's
    /// `--http.vhosts`): `*` for every name; IP addresses always pass (see [`VirtualHosts`];
    /// [`ConfigError::RpcVhost`] for a malformed entry) [default: [`DEFAULT_VHOSTS`],
    /// `localhost`].
    pub fn rpc_vhosts<S: AsRef<str>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        self.rpc_vhosts = hosts
            .into_iter()
            .map(|h| h.as_ref().trim().to_owned())
            .collect();
        self
    }

    /// Serves Prometheus metrics (`GET /metrics`) on this address, or not [default: not]. The
    /// same address as the JSON-RPC shares its listener.
    pub fn metrics_addr(mut self, addr: impl Into<Option<SocketAddr>>) -> Self {
        self.metrics_addr = addr.into();
        self
    }

    /// Keeps bans, the peer book and the discovery table in this directory across restarts
    /// [default: nothing is kept]. The node key is the caller's: see
    /// [`crate::datadir::DataDir::load_or_create_key`].
    pub fn datadir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.datadir = Some(dir.into());
        self
    }

    // ---- operator settings ----

    /// Also the bootnodes of this file (`--p2p.bootnodes-file`, one `enr:`/`enode://` per
    /// line, see [`crate::bootnodes_file`]), read when the configuration is checked and built.
    /// They come after the [`bootnodes`](Self::bootnodes) given; with a file and no list given,
    /// the preset's list is replaced, not extended.
    pub fn bootnodes_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.bootnodes_file = Some(path.into());
        self
    }

    /// How old a gossiped block may be (`--p2p.gossip.timestamp.threshold`, op-node's flag):
    /// blocks with `timestamp < now − threshold` are rejected. Whole seconds count (the
    /// fraction is dropped); at least 1 s [default: 60 s].
    pub fn gossip_timestamp_threshold(mut self, threshold: Duration) -> Self {
        self.gossip_timestamp_threshold = Some(threshold);
        self
    }

    // ---- end operator settings ----

    /// The identify agent version; a blank one keeps the default `op-p2p/<version>`.
    pub fn agent_version(mut self, agent: impl Into<String>) -> Self {
        self.agent_version = Some(agent.into());
        self
    }

    // ---- the signer from L1 ----

    /// Reads the unsafe block signer from this L1 execution node's JSON-RPC (`--l1`,
    /// `http://` only), at start and every
    /// [`l1_reload_interval`](Self::l1_reload_interval), as op-node does; the signer given
    /// by the preset or [`unsafe_signer`](Self::unsafe_signer) is the one the node starts
    /// with. The other L1 settings matter only with this one. [default: none, the signer is
    /// fixed]
    pub fn l1_rpc(mut self, url: impl Into<String>) -> Self {
        self.l1.url = Some(url.into());
        self
    }

    /// The chain's `SystemConfig` proxy on L1 (`--rollup.system-config`) [default: the
    /// preset's].
    pub fn system_config(mut self, address: Address) -> Self {
        self.l1.system_config = Some(address);
        self
    }

    /// The chain id the L1 must report [default: the preset's, 1 or 11155111].
    pub fn l1_chain_id(mut self, chain_id: u64) -> Self {
        self.l1.chain_id = Some(chain_id);
        self
    }

    /// Time between reads (`--l1.runtime-config-reload-interval`, at least 1 s) [default:
    /// [`DEFAULT_RELOAD_INTERVAL`](crate::l1_signer::DEFAULT_RELOAD_INTERVAL), op-node's 10 minutes].
    pub fn l1_reload_interval(mut self, interval: Duration) -> Self {
        self.l1.reload_interval = Some(interval);
        self
    }

    /// Blocks behind the L1 head the signer is read at (`--verifier.l1-confs`, at most
    /// [`MAX_L1_CONFS`]) [default: [`DEFAULT_L1_CONFS`](crate::l1_signer::DEFAULT_L1_CONFS)].
    pub fn l1_confs(mut self, confs: u64) -> Self {
        self.l1.confs = Some(confs);
        self
    }

    /// Deadline of each JSON-RPC call to L1 [default: [`DEFAULT_REQUEST_TIMEOUT`](crate::l1_signer::DEFAULT_REQUEST_TIMEOUT)].
    pub fn l1_request_timeout(mut self, timeout: Duration) -> Self {
        self.l1.request_timeout = Some(timeout);
        self
    }

    /// The L1 settings resolved against the preset and checked (`None` without a URL).
    fn resolve_l1(&self, chain_id: u64) -> Result<Option<L1Config>, ConfigError> {
        let Some(url) = &self.l1.url else {
            return Ok(None);
        };
        let endpoint = L1Endpoint::parse(url).map_err(|source| ConfigError::L1Url {
            input: echo(&without_path(url)),
            source,
        })?;
        let preset = self.preset.and_then(|p| p.l1().map(|l1| (p.name, l1)));
        let system_config = self
            .l1
            .system_config
            .or(preset.map(|(_, l1)| l1.system_config))
            .ok_or(ConfigError::NoSystemConfig { chain_id })?;
        let l1_chain_id = match (preset, self.l1.chain_id) {
            (Some((name, l1)), Some(given)) if given != l1.chain_id => {
                return Err(ConfigError::L1ChainIdMismatch {
                    preset: name,
                    preset_l1_chain_id: l1.chain_id,
                    given,
                });
            }
            (_, Some(given)) => given,
            (Some((_, l1)), None) => l1.chain_id,
            (None, None) => return Err(ConfigError::NoL1ChainId { chain_id }),
        };
        let mut l1 = L1Config::new(endpoint, system_config, l1_chain_id);
        l1.reload_interval = self.l1.reload_interval.unwrap_or(l1.reload_interval);
        l1.confs = self.l1.confs.unwrap_or(l1.confs);
        l1.request_timeout = self.l1.request_timeout.unwrap_or(l1.request_timeout);
        check_l1(&l1)?;
        Ok(Some(l1))
    }

    // ---- checking and building ----

    /// Runs every check of [`build`](Self::build) that does not depend on the key (all but
    /// the key type and a static peer naming our own id), so a caller can refuse bad settings
    /// before it creates a key file.
    pub fn check(&self) -> Result<(), ConfigError> {
        let chain = self.resolve_chain()?;
        self.resolve_l1(chain.chain_id)?;
        self.resolve_bootnodes()?;
        self.resolve_timestamp_threshold()?;
        self.resolve_static_peers()?;
        self.resolve_netrestrict()?;
        check_conn(&self.conn)?;
        check_bans(&self.bans)?;
        check_vhosts(&self.rpc_vhosts).map(drop)
    }

    // ---- validation on every core (issue 15) ----

    /// Worker threads for the stateless half of gossip validation (signature recovery,
    /// decoding, block hash), capped at [`crate::validation_pool::MAX_WORKERS`]; 0 validates
    /// every message on the event loop. Default: the cores available, at most 8.
    pub fn validation_workers(mut self, workers: usize) -> Self {
        self.validation_workers = Some(workers.min(crate::validation_pool::MAX_WORKERS));
        self
    }

    /// Most gossip messages one peer gets checked a second, pool or not; past it they are
    /// IGNOREd unvalidated (no penalty). 0 turns the budget off. Default
    /// [`crate::validation_pool::PEER_CHECKS_PER_SECOND`] (500: an honest peer forwards a few
    /// blocks a second).
    pub fn peer_checks_per_second(mut self, n: u32) -> Self {
        self.peer_checks_per_second = Some(n);
        self
    }

    /// Checks every setting and makes the [`NodeConfig`], deriving the core's [`Config`] once:
    /// our peer id from the key, the static peers' transport addresses, no discovery table
    /// when discovery is off.
    pub fn build(self) -> Result<NodeConfig, ConfigError> {
        let chain = self.resolve_chain()?;
        let l1 = self.resolve_l1(chain.chain_id)?;
        let bootnodes = self.resolve_bootnodes()?;
        let static_peers = self.resolve_static_peers()?;
        let netrestrict = self.resolve_netrestrict()?;
        let timestamp_threshold = self.resolve_timestamp_threshold()?;
        let mut core = Config::new(
            chain.chain_id,
            chain.signer,
            chain.forks,
            chain.block_time_secs,
            self.keypair.public().to_peer_id(),
        );
        core.conn = self.conn;
        core.bans = self.bans;
        core.gater = self.gater;
        if netrestrict.is_some() {
            core.gater.netrestrict = netrestrict;
        }
        if let Some(secs) = timestamp_threshold {
            core.validator.max_past_secs = secs;
        }
        core.publish = self.publish_queue;
        let signer: Option<std::sync::Arc<dyn crate::signer::BlockSigner>> =
            match (self.remote_signer, self.sequencer_key) {
                (Some(remote), _) => Some(std::sync::Arc::new(crate::signer::RemoteSigner::new(
                    remote,
                )?)),
                (None, Some(key)) => Some(std::sync::Arc::new(crate::signer::LocalSigner(key))),
                (None, None) => None,
            };
        core.rng_seed = self.rng_seed.unwrap_or_else(os_seed);
        core.static_peers = group_static_peers(&static_peers);
        core.discovery = self.discovery.then(Default::default);
        let agent_version = self
            .agent_version
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(default_agent_version);
        let config = NodeConfig {
            core,
            keypair: self.keypair,
            listen_ip: self.listen_ip,
            tcp_port: self.tcp_port,
            udp_port: self.udp_port.unwrap_or(self.tcp_port),
            advertise_ip: self.advertise_ip,
            bootnodes,
            rpc_addr: self.rpc_addr,
            rpc_vhosts: self.rpc_vhosts,
            metrics_addr: self.metrics_addr,
            datadir: self.datadir,
            agent_version,
            ip_colocation_whitelist: self.ip_colocation_whitelist,
            l1,
            signer,
            validation_workers: self
                .validation_workers
                .unwrap_or_else(crate::validation_pool::default_workers),
            peer_checks_per_second: self
                .peer_checks_per_second
                .unwrap_or(crate::validation_pool::PEER_CHECKS_PER_SECOND),
        };
        config.validate()?;
        Ok(config)
    }

    fn resolve_chain(&self) -> Result<Chain, ConfigError> {
        let preset = self.preset;
        let chain_id = resolve_chain_id(preset, self.chain_id)?;
        let block_time_secs = self
            .block_time_secs
            .or(preset.map(|p| p.block_time_secs))
            .unwrap_or(DEFAULT_BLOCK_TIME_SECS);
        check_chain(chain_id, block_time_secs)?;
        let signer = self
            .unsafe_signer
            .or(preset.map(|p| p.unsafe_block_signer))
            .ok_or(ConfigError::NoSigner { chain_id })?;
        Ok(Chain {
            chain_id,
            signer,
            forks: self.forks.or(preset.map(|p| p.forks)).unwrap_or_default(),
            block_time_secs,
        })
    }

    fn resolve_bootnodes(&self) -> Result<Vec<Bootnode>, ConfigError> {
        let parse = |list: &[&str]| -> Result<Vec<Bootnode>, ConfigError> {
            list.iter()
                .enumerate()
                .map(|(index, s)| {
                    Bootnode::parse(s).map_err(|source| ConfigError::Bootnode {
                        index,
                        input: echo(s),
                        source,
                    })
                })
                .collect()
        };
        let mut list = match &self.bootnodes {
            Some(Entries::Parsed(list)) => list.clone(),
            Some(Entries::Text(list)) => {
                parse(&list.iter().map(String::as_str).collect::<Vec<_>>())?
            }
            // A file alone replaces the preset's list.
            None if self.bootnodes_file.is_some() => Vec::new(),
            None => parse(self.preset.map_or(OP_NODE_BOOTNODES, |p| p.bootnodes))?,
        };
        if let Some(path) = &self.bootnodes_file {
            list.extend(crate::bootnodes_file::load_bootnodes_file(path)?);
        }
        Ok(list)
    }

    /// The gossip timestamp threshold in whole seconds, if one was given.
    fn resolve_timestamp_threshold(&self) -> Result<Option<u64>, ConfigError> {
        match self.gossip_timestamp_threshold {
            None => Ok(None),
            Some(t) if t.as_secs() == 0 => Err(ConfigError::TimestampThreshold(t)),
            Some(t) => Ok(Some(t.as_secs())),
        }
    }

    /// The netrestrict list given here, parsed and checked (`None`: keep the gater's).
    fn resolve_netrestrict(&self) -> Result<Option<Vec<IpNet>>, ConfigError> {
        let list = match &self.netrestrict {
            None => return Ok(None),
            Some(Entries::Parsed(list)) => list.clone(),
            Some(Entries::Text(list)) => parse_netrestrict(&list.join(","))?,
        };
        check_netrestrict(Some(&list))?;
        Ok(Some(list))
    }

    /// The static peers parsed, each checked but for naming our own id.
    fn resolve_static_peers(&self) -> Result<Vec<Multiaddr>, ConfigError> {
        let addrs = match &self.static_peers {
            Entries::Parsed(list) => list.clone(),
            Entries::Text(list) => list
                .iter()
                .enumerate()
                .map(|(index, s)| {
                    s.parse().map_err(|source| ConfigError::StaticPeerAddr {
                        index,
                        input: echo(s),
                        source,
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        for (index, addr) in addrs.iter().enumerate() {
            check_static_peer(index, addr, None)?;
        }
        Ok(addrs)
    }
}

/// A URL up to its host and port (`scheme://authority/…`): hosted L1 endpoints carry their API
/// key in the path or query, which an error message must not repeat.
fn without_path(url: &str) -> String {
    let url = url.trim();
    let start = url.find("://").map_or(0, |i| i + 3);
    match url[start..].find(['/', '?']) {
        Some(end) => format!("{}/…", &url[..start + end]),
        None => url.to_owned(),
    }
}

/// The L1 reader's settings that can be wrong after resolving.
fn check_l1(l1: &L1Config) -> Result<(), ConfigError> {
    if l1.chain_id == 0 {
        return Err(ConfigError::ZeroL1ChainId);
    }
    if l1.reload_interval < Duration::from_secs(1) {
        return Err(ConfigError::L1ReloadInterval(l1.reload_interval));
    }
    if l1.confs > MAX_L1_CONFS {
        return Err(ConfigError::L1Confs(l1.confs));
    }
    if l1.request_timeout.is_zero() {
        return Err(ConfigError::L1RequestTimeout);
    }
    Ok(())
}

/// The L2 chain id a preset and an explicit id give: the preset's, the id, or both when they
/// agree; neither, a contradiction or 0 is an error. The builder and the binary's record tools
/// (`op-p2p enr`, `bootnode`, `bootnodes check`) resolve the chain with it.
pub fn resolve_chain_id(
    preset: Option<&Preset>,
    chain_id: Option<u64>,
) -> Result<u64, ConfigError> {
    let id = match (preset, chain_id) {
        (Some(p), Some(given)) if given != p.chain_id => {
            return Err(ConfigError::ChainIdMismatch {
                preset: p.name,
                preset_chain_id: p.chain_id,
                given,
            });
        }
        (Some(p), _) => p.chain_id,
        (None, Some(id)) => id,
        (None, None) => return Err(ConfigError::NoChain),
    };
    if id == 0 {
        return Err(ConfigError::ZeroChainId);
    }
    Ok(id)
}

fn check_chain(chain_id: u64, block_time_secs: u64) -> Result<(), ConfigError> {
    if chain_id == 0 {
        return Err(ConfigError::ZeroChainId);
    }
    if block_time_secs == 0 {
        return Err(ConfigError::ZeroBlockTime);
    }
    Ok(())
}

/// The key's peer id, if it is secp256k1.
fn check_key(keypair: &Keypair) -> Result<PeerId, ConfigError> {
    match keypair.key_type() {
        KeyType::Secp256k1 => Ok(keypair.public().to_peer_id()),
        found => Err(ConfigError::KeyType { found }),
    }
}

fn check_conn(conn: &ConnConfig) -> Result<(), ConfigError> {
    if conn.low > conn.high {
        return Err(ConfigError::PeersLoAboveHi {
            lo: conn.low,
            hi: conn.high,
        });
    }
    if conn.high > MAX_PEERS_HI {
        return Err(ConfigError::PeersHiAboveMax {
            hi: conn.high,
            max: MAX_PEERS_HI,
        });
    }
    Ok(())
}

fn check_vhosts(hosts: &[String]) -> Result<VirtualHosts, ConfigError> {
    VirtualHosts::parse(hosts).map_err(|(index, reason)| ConfigError::RpcVhost {
        index,
        input: echo(&hosts[index]),
        reason,
    })
}

fn check_netrestrict(list: Option<&[IpNet]>) -> Result<(), ConfigError> {
    match list {
        Some([]) => Err(ConfigError::NetRestrict(NetRestrictError::Empty)),
        _ => Ok(()),
    }
}

fn check_bans(bans: &BanConfig) -> Result<(), ConfigError> {
    if !bans.threshold.is_finite() {
        return Err(ConfigError::BanThreshold(bans.threshold));
    }
    Ok(())
}

/// Checks static peer `index`; with `local`, naming our own peer id is refused too.
fn check_static_peer(
    index: usize,
    addr: &Multiaddr,
    local: Option<&PeerId>,
) -> Result<(), ConfigError> {
    let bad = |reason| ConfigError::StaticPeer {
        index,
        addr: addr.clone(),
        reason,
    };
    let mut transport = addr.clone();
    let peer = match transport.pop() {
        Some(Protocol::P2p(peer)) => peer,
        _ => return Err(bad(StaticPeerError::MissingPeerId)),
    };
    if transport.is_empty() {
        return Err(bad(StaticPeerError::NoAddress));
    }
    if local == Some(&peer) {
        return Err(bad(StaticPeerError::OwnPeerId));
    }
    Ok(())
}

/// The core's static peers: the transport addresses of each `…/p2p/<id>` entry, grouped by
/// peer in first-seen order without repeats. Entries without an id or an address are left out
/// (the checks refuse them).
fn group_static_peers(addrs: &[Multiaddr]) -> Vec<(PeerId, Vec<Multiaddr>)> {
    let mut by_peer: Vec<(PeerId, Vec<Multiaddr>)> = Vec::new();
    for addr in addrs {
        let mut transport = addr.clone();
        let Some(Protocol::P2p(peer)) = transport.pop() else {
            continue;
        };
        if transport.is_empty() {
            continue;
        }
        match by_peer.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, list)) => {
                if !list.contains(&transport) {
                    list.push(transport);
                }
            }
            None => by_peer.push((peer, vec![transport])),
        }
    }
    by_peer
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An RNG seed from the OS: std's hasher keys are drawn from OS randomness per process.
fn os_seed() -> u64 {
    RandomState::new().hash_one("op-p2p rng seed")
}

fn echo(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_l1_url_in_an_error_shows_no_path_or_query() {
        assert_eq!(
            without_path("https://eth.example/v3/SECRET"),
            "https://eth.example/…"
        );
        assert_eq!(without_path("http://h:1?key=SECRET"), "http://h:1/…");
        assert_eq!(without_path("http://h:1"), "http://h:1");
        let err = NodeConfig::builder(keypair(1))
            .preset(&op_p2p_core::presets::BASE)
            .l1_rpc("https://eth.example/v3/SECRET")
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::L1Url { .. }));
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
    use super::*;
    use op_p2p_core::discovery::TableConfig;
    use op_p2p_core::presets::{ALL, BASE, OP_SEPOLIA};
    use op_p2p_core::testkit::{dev_key, keypair, peer_id};

    const CHAIN: u64 = 901;

    /// A devnet chain, loopback, discovery off: valid as built.
    fn devnet() -> NodeConfigBuilder {
        NodeConfig::builder(keypair(1))
            .chain(CHAIN, dev_key(0).address(), ForkSchedule::ALL_AT_GENESIS, 2)
            .listen_ip(Ipv4Addr::LOCALHOST.into())
            .tcp_port(0)
            .discovery(false)
    }

    fn static_peer(ip: &str, port: u16, peer: u64) -> Multiaddr {
        format!("/ip4/{ip}/tcp/{port}/p2p/{}", peer_id(peer))
            .parse()
            .unwrap()
    }

    fn err(b: NodeConfigBuilder) -> ConfigError {
        match b.build() {
            Err(e) => e,
            Ok(c) => panic!("accepted: {c:?}"),
        }
    }

    #[test]
    fn a_preset_fills_chain_signer_forks_block_time_and_bootnodes() {
        for p in ALL {
            let c = NodeConfig::builder(keypair(1)).preset(p).build().unwrap();
            let v = &c.core.validator;
            assert_eq!(v.chain_id, p.chain_id, "{}", p.name);
            assert_eq!(v.unsafe_signer, p.unsafe_block_signer);
            assert_eq!(v.forks, p.forks);
            assert_eq!(c.core.block_time_secs, p.block_time_secs);
            assert_eq!(
                format!("{:?}", c.bootnodes),
                format!("{:?}", p.parse_bootnodes().unwrap())
            );
            assert!(c.discovery() && c.core.discovery.is_some());
        }
        // The preset's own chain id is no contradiction.
        assert!(
            NodeConfig::builder(keypair(1))
                .preset(&BASE)
                .chain_id(BASE.chain_id)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn explicit_values_win_over_the_preset_and_stand_without_one() {
        let signer = dev_key(5).address();
        let forks = ForkSchedule {
            jovian: Some(42),
            ..OP_SEPOLIA.forks
        };
        let c = NodeConfig::builder(keypair(1))
            .preset(&OP_SEPOLIA)
            .unsafe_signer(signer)
            .forks(forks)
            .block_time(1)
            .bootnode_strings([OP_NODE_BOOTNODES[2]])
            .build()
            .unwrap();
        assert_eq!(c.core.validator.chain_id, OP_SEPOLIA.chain_id);
        assert_eq!(c.core.validator.unsafe_signer, signer);
        assert_eq!(c.core.validator.forks, forks);
        assert_eq!(c.core.block_time_secs, 1);
        assert_eq!(
            format!("{:?}", c.bootnodes),
            format!("{:?}", [<Bootnode>::parse(OP_NODE_BOOTNODES[2]).unwrap()])
        );

        // Without a preset: the values given, no fork scheduled unless given, 2 s blocks and
        // op-node's built-in bootnodes unless given.
        let c = NodeConfig::builder(keypair(1))
            .chain_id(CHAIN)
            .unsafe_signer(signer)
            .build()
            .unwrap();
        assert_eq!(c.core.validator.chain_id, CHAIN);
        assert_eq!(c.core.validator.forks, ForkSchedule::default());
        assert_eq!(c.core.block_time_secs, DEFAULT_BLOCK_TIME_SECS);
        assert_eq!(c.bootnodes.len(), OP_NODE_BOOTNODES.len());
        // `chain` sets all four.
        let c = devnet().build().unwrap();
        assert_eq!(c.core.validator.chain_id, CHAIN);
        assert_eq!(c.core.validator.unsafe_signer, dev_key(0).address());
        assert_eq!(c.core.validator.forks, ForkSchedule::ALL_AT_GENESIS);
        assert_eq!(c.core.block_time_secs, 2);
    }

    #[test]
    fn defaults_are_op_nodes_and_every_setter_lands() {
        let c = NodeConfig::builder(keypair(1))
            .preset(&BASE)
            .build()
            .unwrap();
        assert_eq!(c.listen_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!((c.tcp_port, c.udp_port), (9222, 9222));
        assert_eq!(c.advertise_ip, None);
        assert_eq!(c.core.conn, ConnConfig::default());
        assert_eq!(c.core.bans, BanConfig::default());
        assert_eq!(c.core.gater, GaterConfig::default());
        assert!(
            !c.core.gater.exempt_loopback_from_caps,
            "loopback is capped like any IP unless asked"
        );
        assert!(c.core.static_peers.is_empty());
        assert_eq!(
            (c.rpc_addr, c.metrics_addr, c.datadir.as_ref()),
            (None, None, None)
        );
        assert_eq!(c.agent_version, default_agent_version());
        assert!(c.ip_colocation_whitelist.is_empty() && c.signer.is_none());
        assert_eq!(c.rpc_vhosts, ["localhost"]);
        assert_eq!(c.rpc_virtual_hosts().unwrap(), VirtualHosts::default());

        let rpc: SocketAddr = "127.0.0.1:9545".parse().unwrap();
        let metrics: SocketAddr = "0.0.0.0:7300".parse().unwrap();
        let gater = GaterConfig {
            max_peers_per_ip: 3,
            ..GaterConfig::default()
        };
        let c = devnet()
            .tcp_port(7000)
            .udp_port(7001)
            .advertise_ip(IpAddr::from([203, 0, 113, 9]))
            .peers_lo(5)
            .peers_hi(8)
            .peers_grace(Duration::from_millis(1500))
            .ban_peers(false)
            .ban_threshold(-7.0)
            .ban_duration(Duration::from_secs(120))
            .gater(gater.clone())
            .exempt_loopback_from_caps(true)
            .rpc_addr(rpc)
            .rpc_vhosts([" node.internal ", "*"])
            .metrics_addr(metrics)
            .datadir("/x/data")
            .agent_version("tester")
            .ip_colocation_whitelist([Ipv4Addr::LOCALHOST.into()])
            .rng_seed(99)
            .sequencer_key(dev_key(0))
            .bootnodes([])
            .build()
            .unwrap();
        assert_eq!(c.listen_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!((c.tcp_port, c.udp_port), (7000, 7001));
        assert_eq!(c.advertise_ip, Some(IpAddr::from([203, 0, 113, 9])));
        assert_eq!((c.core.conn.low, c.core.conn.high), (5, 8));
        assert_eq!(c.core.conn.grace_ms, 1500);
        assert_eq!(
            c.core.bans,
            BanConfig {
                enabled: false,
                threshold: -7.0,
                duration_ms: 120_000,
                ..BanConfig::default()
            }
        );
        assert_eq!(
            c.core.gater,
            GaterConfig {
                exempt_loopback_from_caps: true,
                ..gater
            }
        );
        assert_eq!((c.rpc_addr, c.metrics_addr), (Some(rpc), Some(metrics)));
        assert_eq!(c.rpc_vhosts, ["node.internal", "*"]);
        assert!(c.rpc_virtual_hosts().unwrap().allows("evil.example"), "*");
        assert_eq!(c.datadir, Some(PathBuf::from("/x/data")));
        assert_eq!(c.agent_version, "tester");
        assert_eq!(
            c.ip_colocation_whitelist,
            vec![IpAddr::from(Ipv4Addr::LOCALHOST)]
        );
        assert_eq!(c.core.rng_seed, 99);
        assert_eq!(
            c.signer.as_ref().map(|s| s.address()),
            Some(dev_key(0).address())
        );
        assert!(c.bootnodes.is_empty(), "an explicit empty list means none");
        // A blank agent version keeps the default; `None` turns a service off again.
        let c = devnet()
            .agent_version("  ")
            .rpc_addr(rpc)
            .rpc_addr(None)
            .build()
            .unwrap();
        assert_eq!(c.agent_version, default_agent_version());
        assert_eq!(c.rpc_addr, None);
    }

    #[test]
    fn the_derived_core_has_our_id_the_static_peers_and_the_one_peer_cap() {
        let statics = [
            static_peer("10.0.0.2", 9222, 4),
            static_peer("10.0.0.3", 9000, 5),
            static_peer("10.0.0.4", 1, 4),
            static_peer("10.0.0.2", 9222, 4), // a repeat adds nothing
        ];
        let c = devnet()
            .peers_hi(40)
            .static_peers(statics.clone())
            .build()
            .unwrap();
        assert_eq!(c.core.local_peer_id, keypair(1).public().to_peer_id());
        assert_eq!(
            c.core.static_peers,
            vec![
                (
                    peer_id(4),
                    vec![
                        "/ip4/10.0.0.2/tcp/9222".parse().unwrap(),
                        "/ip4/10.0.0.4/tcp/1".parse().unwrap()
                    ]
                ),
                (peer_id(5), vec!["/ip4/10.0.0.3/tcp/9000".parse().unwrap()]),
            ]
        );
        assert_eq!(c.core.max_connected_peers(), 2 * 40 + 2);
        assert!(!c.discovery() && c.core.discovery.is_none());
        // Text entries parse to the same, whitespace ignored.
        let text: Vec<String> = statics.iter().map(|a| format!(" {a} ")).collect();
        let t = devnet()
            .peers_hi(40)
            .static_peer_strings(&text)
            .build()
            .unwrap();
        assert_eq!(t.core.static_peers, c.core.static_peers);
        // Discovery on keeps the core's table.
        let on = devnet().discovery(true).bootnodes([]).build().unwrap();
        assert_eq!(on.core.discovery, Some(TableConfig::default()));
    }

    #[test]
    fn local_takes_the_peer_id_from_the_key_and_turns_discovery_off() {
        let core = Config::new(
            CHAIN,
            dev_key(0).address(),
            ForkSchedule::ALL_AT_GENESIS,
            2,
            peer_id(9),
        );
        let c = NodeConfig::local(core, keypair(3));
        assert_eq!(c.core.local_peer_id, keypair(3).public().to_peer_id());
        assert!(!c.discovery() && c.core.discovery.is_none());
        assert_eq!(
            (c.listen_ip, c.tcp_port, c.udp_port),
            (IpAddr::from(Ipv4Addr::LOCALHOST), 0, 0)
        );
        assert!(
            c.core.gater.exempt_loopback_from_caps,
            "a loopback starting point asks for the loopback exemption"
        );
        assert_eq!(
            c.core.gater.netrestrict.as_deref(),
            Some(&LOOPBACK_NETS[..]),
            "and dials its loopback peers"
        );
        c.validate().unwrap();
        // A list the core already has is kept.
        let mut core = c.core.clone();
        core.gater.netrestrict = Some(vec!["10.0.0.0/8".parse().unwrap()]);
        let c = NodeConfig::local(core, keypair(3));
        assert_eq!(c.core.gater.netrestrict.unwrap().len(), 1);
    }

    #[test]
    fn netrestrict_is_parsed_checked_and_kept_apart_from_the_gater_setter() {
        let nets: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let c = devnet()
            .netrestrict(nets.clone())
            .gater(GaterConfig::default())
            .build()
            .unwrap();
        assert_eq!(c.core.gater.netrestrict, Some(nets));
        let c = devnet()
            .netrestrict_strings(["127.0.0.0/8, ::1/128", "192.168.1.7/24"])
            .build()
            .unwrap();
        let got: Vec<String> = c
            .core
            .gater
            .netrestrict
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["127.0.0.0/8", "::1/128", "192.168.1.0/24"]);
        assert!(matches!(
            err(devnet().netrestrict_strings(["10.0.0.0/8", "nope"])),
            ConfigError::NetRestrict(NetRestrictError::NotCidr { index: 1, .. })
        ));
        assert!(matches!(
            devnet().netrestrict_strings([" "]).check(),
            Err(ConfigError::NetRestrict(NetRestrictError::Empty))
        ));
        assert!(matches!(
            err(devnet().netrestrict([])),
            ConfigError::NetRestrict(NetRestrictError::Empty)
        ));
        // `validate` catches an empty list set on the fields.
        let mut c = devnet().build().unwrap();
        c.core.gater.netrestrict = Some(Vec::new());
        assert!(matches!(c.validate(), Err(ConfigError::NetRestrict(_))));
    }

    #[test]
    fn every_error_is_typed() {
        assert!(matches!(
            err(NodeConfig::builder(keypair(1))),
            ConfigError::NoChain
        ));
        assert!(matches!(
            err(NodeConfig::builder(keypair(1)).chain_id(CHAIN)),
            ConfigError::NoSigner { chain_id: CHAIN }
        ));
        assert!(matches!(
            err(devnet().chain_id(0)),
            ConfigError::ZeroChainId
        ));
        assert!(matches!(
            err(NodeConfig::builder(keypair(1)).preset(&BASE).chain_id(10)),
            ConfigError::ChainIdMismatch {
                preset: "base",
                preset_chain_id: 8453,
                given: 10
            }
        ));
        assert!(matches!(
            err(devnet().block_time(0)),
            ConfigError::ZeroBlockTime
        ));
        let ed = Keypair::ed25519_from_bytes([7u8; 32]).unwrap();
        assert!(matches!(
            err(devnet().keypair(ed)),
            ConfigError::KeyType {
                found: KeyType::Ed25519
            }
        ));
        assert!(matches!(
            err(devnet().peers_lo(31)),
            ConfigError::PeersLoAboveHi { lo: 31, hi: 30 }
        ));
        assert!(matches!(
            err(devnet().peers_hi(MAX_PEERS_HI + 1)),
            ConfigError::PeersHiAboveMax { hi: 257, max: 256 }
        ));
        assert!(devnet().peers_lo(0).peers_hi(MAX_PEERS_HI).build().is_ok());
        for t in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                err(devnet().ban_threshold(t)),
                ConfigError::BanThreshold(_)
            ));
        }
        match err(devnet().bootnode_strings([OP_NODE_BOOTNODES[0], "enode://zz@1.2.3.4:1"])) {
            ConfigError::Bootnode {
                index: 1, input, ..
            } => {
                assert_eq!(input, "enode://zz@1.2.3.4:1")
            }
            other => panic!("{other:?}"),
        }
        let long = "x".repeat(500);
        match err(devnet().static_peer_strings(["/ip4/1.2.3.4/tcp/1", &long])) {
            ConfigError::StaticPeerAddr {
                index: 1, input, ..
            } => {
                assert_eq!(input.chars().count(), MAX_ECHO + 1, "shortened")
            }
            other => panic!("{other:?}"),
        }
        let me = keypair(1).public().to_peer_id();
        for (entry, want) in [
            (
                "/ip4/1.2.3.4/tcp/1".to_string(),
                StaticPeerError::MissingPeerId,
            ),
            (format!("/p2p/{me}"), StaticPeerError::NoAddress),
            (
                format!("/ip4/1.2.3.4/tcp/1/p2p/{me}"),
                StaticPeerError::OwnPeerId,
            ),
        ] {
            match err(devnet().static_peer_strings([entry.as_str()])) {
                ConfigError::StaticPeer {
                    index: 0, reason, ..
                } => assert_eq!(reason, want, "{entry}"),
                other => panic!("{entry}: {other:?}"),
            }
        }
        match err(devnet().rpc_vhosts(["localhost", "localhost:9545"])) {
            ConfigError::RpcVhost {
                index: 1,
                input,
                reason: VhostError::Port,
            } => assert_eq!(input, "localhost:9545"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            err(devnet().rpc_vhosts(["*.example.com"])),
            ConfigError::RpcVhost {
                index: 0,
                reason: VhostError::Wildcard,
                ..
            }
        ));
        assert!(matches!(
            err(devnet().rpc_vhosts([""])),
            ConfigError::RpcVhost {
                reason: VhostError::Empty,
                ..
            }
        ));
        // No names at all is a list: IP addresses only.
        assert!(devnet().rpc_vhosts(Vec::<String>::new()).build().is_ok());
        // The rest only arise when a built config is changed: see the validate test.
    }

    #[test]
    fn check_runs_every_check_that_needs_no_key() {
        let own = format!(
            "/ip4/1.2.3.4/tcp/1/p2p/{}",
            keypair(1).public().to_peer_id()
        );
        let b = devnet().static_peer_strings([own]);
        b.check().unwrap();
        assert!(matches!(
            err(b),
            ConfigError::StaticPeer {
                reason: StaticPeerError::OwnPeerId,
                ..
            }
        ));
        assert!(matches!(
            devnet().peers_lo(31).check(),
            Err(ConfigError::PeersLoAboveHi { .. })
        ));
        assert!(matches!(
            NodeConfig::builder(keypair(1)).check(),
            Err(ConfigError::NoChain)
        ));
        assert!(matches!(
            devnet().ban_threshold(f64::NAN).check(),
            Err(ConfigError::BanThreshold(_))
        ));
        assert!(matches!(
            devnet().bootnode_strings(["nope"]).check(),
            Err(ConfigError::Bootnode { .. })
        ));
        assert!(matches!(
            devnet().static_peer_strings(["nope"]).check(),
            Err(ConfigError::StaticPeerAddr { .. })
        ));
        assert!(matches!(
            devnet().rpc_vhosts(["http://x"]).check(),
            Err(ConfigError::RpcVhost { .. })
        ));
    }

    #[test]
    fn validate_catches_a_config_changed_after_build() {
        let built = devnet()
            .static_peers([static_peer("10.0.0.2", 1, 4)])
            .build()
            .unwrap();
        built.validate().unwrap();
        let changed = |f: &dyn Fn(&mut NodeConfig)| {
            let mut c = built.clone();
            f(&mut c);
            c.validate().expect_err("changed config accepted")
        };
        assert!(matches!(
            changed(&|c| c.keypair = keypair(2)),
            ConfigError::PeerIdMismatch { key } if key == peer_id(2)
        ));
        assert!(matches!(
            changed(&|c| c.core.local_peer_id = peer_id(7)),
            ConfigError::PeerIdMismatch { key } if key == peer_id(1)
        ));
        assert!(matches!(
            changed(&|c| c.keypair = Keypair::ed25519_from_bytes([7u8; 32]).unwrap()),
            ConfigError::KeyType { .. }
        ));
        assert!(matches!(
            changed(&|c| c.core.static_peers.push((peer_id(5), vec![]))),
            ConfigError::StaticPeer {
                index: 1,
                reason: StaticPeerError::NoAddress,
                ..
            }
        ));
        assert!(matches!(
            changed(&|c| c
                .core
                .static_peers
                .push((peer_id(1), vec!["/ip4/1.2.3.4/tcp/1".parse().unwrap()]))),
            ConfigError::StaticPeer {
                index: 1,
                reason: StaticPeerError::OwnPeerId,
                ..
            }
        ));
        assert!(matches!(
            changed(&|c| c.core.conn.low = 99),
            ConfigError::PeersLoAboveHi { lo: 99, hi: 30 }
        ));
        assert!(matches!(
            changed(&|c| c.core.conn.high = 1000),
            ConfigError::PeersHiAboveMax { hi: 1000, .. }
        ));
        assert!(matches!(
            changed(&|c| c.core.bans.threshold = f64::NAN),
            ConfigError::BanThreshold(_)
        ));
        assert!(matches!(
            changed(&|c| c.core.validator.chain_id = 0),
            ConfigError::ZeroChainId
        ));
        assert!(matches!(
            changed(&|c| c.core.block_time_secs = 0),
            ConfigError::ZeroBlockTime
        ));
        assert!(matches!(
            changed(&|c| c.rpc_vhosts.push("evil.example:80".into())),
            ConfigError::RpcVhost { index: 1, .. }
        ));
        // Valid changes are fine.
        let mut c = built.clone();
        c.core.discovery = Some(TableConfig::default());
        c.core.static_peers.clear();
        c.rpc_addr = Some("127.0.0.1:0".parse().unwrap());
        c.validate().unwrap();
    }

    #[test]
    fn every_error_message_names_the_setting() {
        let shown = [
            ConfigError::NoChain.to_string(),
            ConfigError::PeersLoAboveHi { lo: 31, hi: 30 }.to_string(),
            err(devnet().bootnode_strings(["enode://zz@1.2.3.4:1"])).to_string(),
            err(devnet().rpc_vhosts(["a:1"])).to_string(),
        ];
        assert_eq!(shown[0], "no chain: choose a preset or a chain id");
        assert_eq!(shown[1], "p2p.peers.lo 31 is above p2p.peers.hi 30");
        assert!(
            shown[2].starts_with("bootnode 0 (\"enode://zz@1.2.3.4:1\"): "),
            "{}",
            shown[2]
        );
        assert_eq!(
            shown[3],
            "rpc.vhosts entry 0 (\"a:1\") has a port (the list names hosts; any port is allowed)"
        );
    }

    /// A runtime every method of which panics: spawn must refuse an invalid config before it
    /// uses the runtime at all.
    #[derive(Clone)]
    struct UntouchedRuntime;

    const TOUCHED: &str = "the runtime was used before the config was validated";

    struct NoStream;

    impl hyper::rt::Read for NoStream {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: hyper::rt::ReadBufCursor<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            unreachable!("{TOUCHED}")
        }
    }

    impl hyper::rt::Write for NoStream {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            unreachable!("{TOUCHED}")
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            unreachable!("{TOUCHED}")
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            unreachable!("{TOUCHED}")
        }
    }

    #[derive(Clone)]
    struct NoTimer;

    impl hyper::rt::Timer for NoTimer {
        fn sleep(&self, _: Duration) -> std::pin::Pin<Box<dyn hyper::rt::Sleep>> {
            unreachable!("{TOUCHED}")
        }
        fn sleep_until(&self, _: std::time::Instant) -> std::pin::Pin<Box<dyn hyper::rt::Sleep>> {
            unreachable!("{TOUCHED}")
        }
    }

    impl crate::Runtime for UntouchedRuntime {
        type HttpListener = ();
        type HttpStream = NoStream;
        type HttpTimer = NoTimer;

        fn now_ms(&self) -> op_p2p_core::UnixMillis {
            unreachable!("{TOUCHED}")
        }
        fn sleep(&self, _: Duration) -> futures::future::BoxFuture<'static, ()> {
            unreachable!("{TOUCHED}")
        }
        fn spawn(&self, _: futures::future::BoxFuture<'static, ()>) {
            unreachable!("{TOUCHED}")
        }
        fn spawn_blocking(&self, _: Box<dyn FnOnce() + Send>) {
            unreachable!("{TOUCHED}")
        }
        fn swarm_config(&self) -> libp2p::swarm::Config {
            unreachable!("{TOUCHED}")
        }
        fn transport(&self, _: &Keypair) -> Result<crate::BoxedTransport, std::io::Error> {
            unreachable!("{TOUCHED}")
        }
        fn bind_http(
            &self,
            _: SocketAddr,
        ) -> futures::future::BoxFuture<'static, std::io::Result<((), SocketAddr)>> {
            unreachable!("{TOUCHED}")
        }
        fn accept_http<'a>(
            &self,
            _: &'a (),
        ) -> futures::future::BoxFuture<'a, std::io::Result<(NoStream, SocketAddr)>> {
            unreachable!("{TOUCHED}")
        }
        fn http_timer(&self) -> NoTimer {
            unreachable!("{TOUCHED}")
        }
        fn tokio_handle(&self) -> Option<tokio::runtime::Handle> {
            unreachable!("{TOUCHED}")
        }
    }

    #[test]
    fn spawn_refuses_an_invalid_config_before_using_the_runtime() {
        let mut c = devnet()
            .rpc_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
            .build()
            .unwrap();
        c.core.conn.low = c.core.conn.high + 1;
        let spawned =
            futures::executor::block_on(crate::spawn(UntouchedRuntime, c, Default::default()));
        match spawned {
            Err(crate::SpawnError::Config(ConfigError::PeersLoAboveHi { .. })) => {}
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("an invalid config started a node"),
        }
        // Made by hand and never checked: refused all the same.
        let mut c = NodeConfig::local(
            Config::new(
                CHAIN,
                dev_key(0).address(),
                ForkSchedule::ALL_AT_GENESIS,
                2,
                peer_id(9),
            ),
            keypair(3),
        );
        c.core.static_peers = vec![(peer_id(4), vec![])];
        assert!(matches!(
            futures::executor::block_on(crate::spawn(UntouchedRuntime, c, Default::default())),
            Err(crate::SpawnError::Config(ConfigError::StaticPeer {
                reason: StaticPeerError::NoAddress,
                ..
            }))
        ));
    }

    // ---- operator settings ----

    #[test]
    fn a_bootnodes_file_replaces_the_preset_list_or_extends_the_given_one() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("boot.txt");
        std::fs::write(
            &file,
            format!(
                "# two\n{}\n\n{}\n",
                OP_NODE_BOOTNODES[3], OP_NODE_BOOTNODES[4]
            ),
        )
        .unwrap();
        let shown = |c: &NodeConfig| {
            c.bootnodes
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
        };
        let alone = devnet().bootnodes_file(&file).build().unwrap();
        assert_eq!(shown(&alone), [OP_NODE_BOOTNODES[3], OP_NODE_BOOTNODES[4]]);
        let both = devnet()
            .bootnode_strings([OP_NODE_BOOTNODES[0]])
            .bootnodes_file(&file)
            .build()
            .unwrap();
        assert_eq!(
            shown(&both),
            [
                OP_NODE_BOOTNODES[0],
                OP_NODE_BOOTNODES[3],
                OP_NODE_BOOTNODES[4]
            ]
        );
        // A bad line is refused by check() and build(), naming the line.
        std::fs::write(&file, format!("{}\nenr:nope\n", OP_NODE_BOOTNODES[3])).unwrap();
        for e in [
            devnet().bootnodes_file(&file).check().unwrap_err(),
            err(devnet().bootnodes_file(&file)),
        ] {
            assert!(
                matches!(
                    &e,
                    ConfigError::BootnodesFile(crate::bootnodes_file::BootnodesFileError::Entry {
                        line: 2,
                        ..
                    })
                ),
                "{e:?}"
            );
        }
        assert!(matches!(
            err(devnet().bootnodes_file(tmp.path().join("missing"))),
            ConfigError::BootnodesFile(_)
        ));
    }

    #[test]
    fn the_gossip_timestamp_threshold_sets_the_validators_past_window() {
        assert_eq!(devnet().build().unwrap().core.validator.max_past_secs, 60);
        let c = devnet()
            .gossip_timestamp_threshold(Duration::from_millis(90_500))
            .build()
            .unwrap();
        assert_eq!(c.core.validator.max_past_secs, 90, "whole seconds");
        assert_eq!(
            devnet()
                .gossip_timestamp_threshold(Duration::from_secs(1))
                .build()
                .unwrap()
                .core
                .validator
                .max_past_secs,
            1
        );
        for t in [Duration::ZERO, Duration::from_millis(999)] {
            assert!(matches!(
                devnet().gossip_timestamp_threshold(t).check(),
                Err(ConfigError::TimestampThreshold(d)) if d == t
            ));
            assert!(matches!(
                err(devnet().gossip_timestamp_threshold(t)),
                ConfigError::TimestampThreshold(_)
            ));
        }
    }
}
