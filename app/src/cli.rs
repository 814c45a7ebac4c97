//! The `op-p2p node` and `op-p2p keygen` command lines, and their translation into a
//! [`NodeConfig`].
//!
//! Flags are named after op-node's `--p2p.*` flags where one exists
//! (`op-node/flags/p2p_flags.go`), with the same defaults. Each has an environment variable:
//! op-node's name with the `OP_NODE` prefix replaced by `OP`, so `OP_NODE_P2P_LISTEN_IP` becomes
//! `OP_P2P_LISTEN_IP` and `OP_NODE_P2P_PEER_BANNING` becomes `OP_P2P_PEER_BANNING`. Booleans take
//! op-node's forms: `--p2p.no-discovery` or `--p2p.ban.peers=false`. Durations use Go syntax
//! (`30s`, `1m30s`, `1.5h`, `300ms`).
//!
//! Choices where op-node has no flag or we differ:
//! - The chain comes from `--network` (a [`op_p2p_core::presets`] name) or from `--chain-id`
//!   and `--unsafe-signer`; `--unsafe-signer`, the fork times and `--block-time` override the
//!   preset. A `--chain-id` that contradicts `--network` is an error.
//! - `--p2p.bootnodes` unset (or empty) uses op-node's built-in list, as op-node does; it is
//!   the list every preset carries (discovery filters records by chain).
//! - The node key: `--p2p.priv.path` if given (created if missing, like op-node), else
//!   `<datadir>/p2p_priv.txt`, else a fresh key kept only in memory (a warning is logged).
//!   op-node defaults `--p2p.priv.path` to `opnode_p2p_priv.txt` in the working directory; we
//!   write nothing outside an explicitly named place.
//! - `--p2p.listen.udp` unset or 0 means "the TCP port", as in op-node.
//! - ⚠ `--p2p.advertise.ip` takes an IP address only; op-node also resolves a host name.
//! - The `opp2p_*` JSON-RPC listens on `--rpc.addr`:`--rpc.port`, default `127.0.0.1:9545`
//!   (op-node's RPC defaults), loopback because the admin API can block and ban peers; port 0
//!   picks a free port; `--rpc.disabled` turns it off. Metrics are off unless
//!   `--metrics.enabled`, then on `--metrics.addr`:`--metrics.port`, default `0.0.0.0:7300`
//!   (op-node's).
//! - `--p2p.peers.hi` may be at most [`ConnConfig::max_connected`] (256), the core's bound on
//!   tracked connections.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use clap::builder::BoolishValueParser;
use multiaddr::{Multiaddr, Protocol};
use op_p2p_core::Config;
use op_p2p_core::PeerId;
use op_p2p_core::alloy_primitives::{Address, keccak256};
use op_p2p_core::discovery::{Bootnode, BootnodeError};
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::peers::score_ban::BanConfig;
use op_p2p_core::presets::{OP_NODE_BOOTNODES, Preset};
use op_p2p_node::datadir::{self, DataDir, DataDirError, Keypair};
use op_p2p_node::{NodeConfig, default_agent_version};

/// Longest user string echoed back in an error.
const MAX_ECHO: usize = 120;

/// The `node` subcommand: run a P2P node.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// Network preset: op-mainnet, base, op-sepolia or base-sepolia (chain id, unsafe signer,
    /// fork times, block time, bootnodes). Without it, --chain-id and --unsafe-signer are needed.
    #[arg(long, env = "OP_P2P_NETWORK")]
    pub network: Option<String>,
    /// L2 chain id (must match --network's if both are given).
    #[arg(long, env = "OP_P2P_CHAIN_ID")]
    pub chain_id: Option<u64>,
    /// Unsafe block signer address (0x…); overrides the preset's.
    #[arg(long, env = "OP_P2P_UNSAFE_SIGNER")]
    pub unsafe_signer: Option<Address>,
    /// Canyon activation time, Unix seconds; overrides the preset.
    #[arg(long, alias = "override.canyon", env = "OP_P2P_OVERRIDE_CANYON")]
    pub canyon_time: Option<u64>,
    /// Ecotone activation time, Unix seconds; overrides the preset.
    #[arg(long, alias = "override.ecotone", env = "OP_P2P_OVERRIDE_ECOTONE")]
    pub ecotone_time: Option<u64>,
    /// Isthmus activation time, Unix seconds; overrides the preset.
    #[arg(long, alias = "override.isthmus", env = "OP_P2P_OVERRIDE_ISTHMUS")]
    pub isthmus_time: Option<u64>,
    /// Jovian activation time, Unix seconds; overrides the preset.
    #[arg(long, alias = "override.jovian", env = "OP_P2P_OVERRIDE_JOVIAN")]
    pub jovian_time: Option<u64>,
    /// L2 block time in seconds [default: the preset's, else 2].
    #[arg(long, env = "OP_P2P_BLOCK_TIME", value_parser = clap::value_parser!(u64).range(1..))]
    pub block_time: Option<u64>,

    /// IP to bind libp2p (TCP) and discv5 (UDP) to.
    #[arg(long = "p2p.listen.ip", env = "OP_P2P_LISTEN_IP", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub listen_ip: IpAddr,
    /// TCP port for libp2p; 0 picks a free port.
    #[arg(
        long = "p2p.listen.tcp",
        env = "OP_P2P_LISTEN_TCP_PORT",
        default_value_t = 9222
    )]
    pub listen_tcp: u16,
    /// UDP port for discv5 [default: the TCP port; 0 also means the TCP port].
    #[arg(long = "p2p.listen.udp", env = "OP_P2P_LISTEN_UDP_PORT")]
    pub listen_udp: Option<u16>,
    /// IP address to advertise in our ENR (e.g. the public IP behind NAT).
    #[arg(long = "p2p.advertise.ip", env = "OP_P2P_ADVERTISE_IP")]
    pub advertise_ip: Option<IpAddr>,
    /// File with the hex-encoded 32-byte secp256k1 node key (op-node's format); created if
    /// missing [default: <datadir>/p2p_priv.txt, or an in-memory key without --datadir].
    #[arg(long = "p2p.priv.path", env = "OP_P2P_PRIV_PATH")]
    pub priv_path: Option<PathBuf>,
    /// Comma-separated bootnodes (enr: or enode://) [default: op-node's built-in list].
    #[arg(
        long = "p2p.bootnodes",
        env = "OP_P2P_BOOTNODES",
        value_delimiter = ','
    )]
    pub bootnodes: Vec<String>,
    /// Comma-separated static peers, multiaddrs ending in /p2p/<peer id>; always redialled,
    /// never pruned or score-banned.
    #[arg(long = "p2p.static", env = "OP_P2P_STATIC", value_delimiter = ',')]
    pub static_peers: Vec<String>,
    /// Disable discv5.
    #[arg(long = "p2p.no-discovery", env = "OP_P2P_NO_DISCOVERY", default_value_t = false,
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub no_discovery: bool,
    /// Low-tide peer count: below it the node dials discovered peers.
    #[arg(long = "p2p.peers.lo", env = "OP_P2P_PEERS_LO", default_value_t = 20)]
    pub peers_lo: usize,
    /// High-tide peer count: above it the node prunes connections.
    #[arg(long = "p2p.peers.hi", env = "OP_P2P_PEERS_HI", default_value_t = 30)]
    pub peers_hi: usize,
    /// Grace period during which a new peer is not pruned (Go duration).
    #[arg(long = "p2p.peers.grace", env = "OP_P2P_PEERS_GRACE", default_value = "30s",
          value_parser = parse_go_duration)]
    pub peers_grace: Duration,
    /// Ban peers whose score falls below --p2p.ban.threshold.
    #[arg(long = "p2p.ban.peers", env = "OP_P2P_PEER_BANNING", default_value_t = true,
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub ban_peers: bool,
    /// Score below which a peer is disconnected and banned.
    #[arg(long = "p2p.ban.threshold", env = "OP_P2P_PEER_BANNING_THRESHOLD", default_value_t = -100.0,
          allow_negative_numbers = true)]
    pub ban_threshold: f64,
    /// How long a score ban lasts (Go duration).
    #[arg(long = "p2p.ban.duration", env = "OP_P2P_PEER_BANNING_DURATION", default_value = "1h",
          value_parser = parse_go_duration)]
    pub ban_duration: Duration,
    /// Identify agent version [default: op-p2p/<version>].
    #[arg(long = "p2p.useragent", env = "OP_P2P_AGENT", hide = true)]
    pub user_agent: Option<String>,

    /// Address of the opp2p_* JSON-RPC server.
    #[arg(long = "rpc.addr", env = "OP_P2P_RPC_ADDR", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub rpc_addr: IpAddr,
    /// Port of the JSON-RPC server; 0 picks a free port.
    #[arg(long = "rpc.port", env = "OP_P2P_RPC_PORT", default_value_t = 9545)]
    pub rpc_port: u16,
    /// Do not serve JSON-RPC.
    #[arg(long = "rpc.disabled", env = "OP_P2P_RPC_DISABLED", default_value_t = false,
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub rpc_disabled: bool,
    /// Serve Prometheus metrics (GET /metrics).
    #[arg(long = "metrics.enabled", env = "OP_P2P_METRICS_ENABLED", default_value_t = false,
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub metrics_enabled: bool,
    /// Address of the metrics server.
    #[arg(long = "metrics.addr", env = "OP_P2P_METRICS_ADDR", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub metrics_addr: IpAddr,
    /// Port of the metrics server; 0 picks a free port.
    #[arg(
        long = "metrics.port",
        env = "OP_P2P_METRICS_PORT",
        default_value_t = 7300
    )]
    pub metrics_port: u16,

    /// Directory for the node key, bans, peer book and discovery table (created, mode 0700).
    /// Without it nothing survives a restart.
    #[arg(long, env = "OP_P2P_DATADIR")]
    pub datadir: Option<PathBuf>,
    /// Print node events (peers, blocks) as JSON lines on stdout.
    #[arg(long, env = "OP_P2P_EVENTS_JSON", default_value_t = false,
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub events_json: bool,
    /// Seed of the node's RNG, for reproducible tests only [default: from the OS].
    #[arg(long, env = "OP_P2P_RNG_SEED", hide = true)]
    pub rng_seed: Option<u64>,
}

/// The `keygen` subcommand: write a new node key in op-node's `--p2p.priv.path` format.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// File to create (refused if it exists).
    #[arg(long, default_value = "p2p_priv.txt")]
    pub out: PathBuf,
}

/// Why the command line does not make a node configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// `--network` is not a preset name.
    #[error("unknown network {0:?}; expected one of op-mainnet, base, op-sepolia, base-sepolia")]
    UnknownNetwork(String),
    /// Neither `--network` nor `--chain-id`.
    #[error("no chain: pass --network or --chain-id")]
    MissingChainId,
    /// `--chain-id` without `--network` needs `--unsafe-signer`.
    #[error("--unsafe-signer is required without --network")]
    MissingSigner,
    /// Chain id 0 is not a chain.
    #[error("--chain-id must not be 0")]
    ZeroChainId,
    /// `--chain-id` contradicts `--network`.
    #[error("--chain-id {given} contradicts --network {network} (chain {preset})")]
    ChainIdMismatch {
        /// The preset's name.
        network: String,
        /// The preset's chain id.
        preset: u64,
        /// The chain id given.
        given: u64,
    },
    /// A `--p2p.bootnodes` entry does not parse.
    #[error("--p2p.bootnodes entry {index} ({input:?}): {source}")]
    BadBootnode {
        /// Position in the list, from 0.
        index: usize,
        /// The entry (shortened).
        input: String,
        /// Why.
        #[source]
        source: BootnodeError,
    },
    /// A `--p2p.static` entry is not a dialable `/p2p/<id>` multiaddr.
    #[error("--p2p.static entry {index} ({input:?}): {reason}")]
    BadStaticPeer {
        /// Position in the list, from 0.
        index: usize,
        /// The entry (shortened).
        input: String,
        /// Why.
        reason: StaticPeerError,
    },
    /// The peer tides are inconsistent.
    #[error("--p2p.peers.lo {lo} and --p2p.peers.hi {hi}: need lo <= hi <= {max}")]
    PeerTides {
        /// `--p2p.peers.lo`.
        lo: usize,
        /// `--p2p.peers.hi`.
        hi: usize,
        /// The core's bound on tracked connections.
        max: usize,
    },
    /// The ban threshold is NaN or infinite.
    #[error("--p2p.ban.threshold must be a finite number, not {0}")]
    BadBanThreshold(f64),
    /// The data dir or the key file failed.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
}

/// Why a static peer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StaticPeerError {
    /// Not a multiaddr.
    #[error("not a multiaddr: {0}")]
    Multiaddr(String),
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

fn echo(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// Parses a Go `time.ParseDuration` string: an optional `+`, then one or more decimal numbers
/// (with an optional fraction), each followed by a unit `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`
/// or `h` (`1h30m`, `1.5s`); `0` alone is zero. Negative durations are refused.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let err = || {
        format!(
            "invalid duration {:?} (Go syntax, e.g. 30s, 1m, 1h30m)",
            echo(s)
        )
    };
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.starts_with('-') {
        return Err(format!("negative duration {:?}", echo(s)));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err());
        }
        let unit_len = after
            .char_indices()
            .find(|&(_, c)| c == '.' || c.is_ascii_digit())
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        // Go caps durations at about 292 years; refuse long digit runs before they overflow.
        if int_part.len() > 20 {
            return Err(err());
        }
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err())?
        };
        let mut value = int.checked_mul(unit_ns).ok_or_else(err)?;
        // Fraction digits beyond nanosecond precision of the unit contribute nothing.
        let mut scale = unit_ns;
        for d in frac_part.bytes().take(20) {
            scale /= 10;
            value += u128::from(d - b'0') * scale;
        }
        total_ns = total_ns.checked_add(value).ok_or_else(err)?;
        if total_ns > u128::from(i64::MAX as u64) {
            return Err(err());
        }
        rest = after;
    }
    let secs = u64::try_from(total_ns / 1_000_000_000).map_err(|_| err())?;
    let nanos = u32::try_from(total_ns % 1_000_000_000).map_err(|_| err())?;
    Ok(Duration::new(secs, nanos))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Parsed `--p2p.static` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticPeers {
    /// Each entry as given (`<address>/p2p/<id>`), for [`NodeConfig::static_peers`].
    pub full: Vec<Multiaddr>,
    /// Transport addresses per peer, for the core's `Config::static_peers`.
    pub by_peer: Vec<(PeerId, Vec<Multiaddr>)>,
}

/// Parses `--p2p.static` entries into full multiaddrs and per-peer transport addresses
/// (entries for the same peer are merged, in order). With `local`, an entry naming our own
/// peer id is refused. Empty entries are skipped.
pub fn parse_static_peers(
    entries: &[String],
    local: Option<&PeerId>,
) -> Result<StaticPeers, CliError> {
    let mut full = Vec::new();
    let mut by_peer: Vec<(PeerId, Vec<Multiaddr>)> = Vec::new();
    for (index, raw) in entries.iter().enumerate() {
        let input = raw.trim();
        if input.is_empty() {
            continue;
        }
        let bad = |reason| CliError::BadStaticPeer {
            index,
            input: echo(input),
            reason,
        };
        let addr: Multiaddr = input
            .parse()
            .map_err(|e: multiaddr::Error| bad(StaticPeerError::Multiaddr(e.to_string())))?;
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
        full.push(addr);
        match by_peer.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, addrs)) => {
                if !addrs.contains(&transport) {
                    addrs.push(transport);
                }
            }
            None => by_peer.push((peer, vec![transport])),
        }
    }
    Ok(StaticPeers { full, by_peer })
}

/// Parses `--p2p.bootnodes`; an unset or all-empty list gives `default`.
pub fn parse_bootnodes(entries: &[String], default: &[&str]) -> Result<Vec<Bootnode>, CliError> {
    let given: Vec<&str> = entries
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let list: Vec<&str> = if given.is_empty() {
        default.to_vec()
    } else {
        given
    };
    list.iter()
        .enumerate()
        .map(|(index, s)| {
            Bootnode::parse(s).map_err(|source| CliError::BadBootnode {
                index,
                input: echo(s),
                source,
            })
        })
        .collect()
}

/// The chain settings: preset, then overrides.
struct Chain {
    chain_id: u64,
    signer: Address,
    forks: ForkSchedule,
    block_time: u64,
    bootnodes: &'static [&'static str],
}

fn chain(args: &NodeArgs) -> Result<Chain, CliError> {
    let preset = match &args.network {
        Some(name) => {
            Some(Preset::by_name(name.trim()).ok_or_else(|| CliError::UnknownNetwork(echo(name)))?)
        }
        None => None,
    };
    let chain_id = match (preset, args.chain_id) {
        (Some(p), Some(given)) if given != p.chain_id => {
            return Err(CliError::ChainIdMismatch {
                network: p.name.to_owned(),
                preset: p.chain_id,
                given,
            });
        }
        (Some(p), _) => p.chain_id,
        (None, Some(0)) => return Err(CliError::ZeroChainId),
        (None, Some(id)) => id,
        (None, None) => return Err(CliError::MissingChainId),
    };
    let signer = args
        .unsafe_signer
        .or(preset.map(|p| p.unsafe_block_signer))
        .ok_or(CliError::MissingSigner)?;
    let base = preset.map(|p| p.forks).unwrap_or(ForkSchedule {
        canyon: None,
        ecotone: None,
        isthmus: None,
        jovian: None,
    });
    let forks = ForkSchedule {
        canyon: args.canyon_time.or(base.canyon),
        ecotone: args.ecotone_time.or(base.ecotone),
        isthmus: args.isthmus_time.or(base.isthmus),
        jovian: args.jovian_time.or(base.jovian),
    };
    Ok(Chain {
        chain_id,
        signer,
        forks,
        block_time: args
            .block_time
            .or(preset.map(|p| p.block_time_secs))
            .unwrap_or(2),
        bootnodes: preset.map_or(OP_NODE_BOOTNODES, |p| p.bootnodes),
    })
}

/// The RNG seed when `--rng-seed` is not given: a one-way, domain-separated hash of the
/// caller's fresh OS randomness, so the seed (observable through dial order) reveals nothing
/// about a node key made from the same bytes.
fn derive_rng_seed(fresh_secret: &[u8; 32]) -> u64 {
    let mut input = Vec::with_capacity(48);
    input.extend_from_slice(b"op-p2p rng seed\0");
    input.extend_from_slice(fresh_secret);
    let h = keccak256(&input);
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&h[..8]);
    u64::from_le_bytes(seed)
}

/// Loads or creates the node key as the module docs describe.
fn node_key(args: &NodeArgs, fresh_secret: [u8; 32]) -> Result<Keypair, CliError> {
    Ok(match (&args.datadir, &args.priv_path) {
        (Some(dir), explicit) => {
            DataDir::open(dir)?.load_or_create_key(explicit.as_deref(), fresh_secret)?
        }
        (None, Some(path)) => datadir::load_or_create_key_file(path, fresh_secret)?,
        (None, None) => {
            tracing::warn!(
                "no --datadir or --p2p.priv.path: using a new node key that is lost at exit"
            );
            datadir::keypair_from_secret(fresh_secret).map_err(|source| DataDirError::Key {
                path: PathBuf::from("<memory>"),
                source,
            })?
        }
    })
}

/// Validates the `node` arguments and builds the node's configuration. `fresh_secret` is 32
/// bytes of OS randomness: the node key if none exists yet, and (hashed) the RNG seed unless
/// `--rng-seed` is given. Creates the data dir and the key file when needed; reads no state.
pub fn node_config(args: &NodeArgs, fresh_secret: [u8; 32]) -> Result<NodeConfig, CliError> {
    let chain = chain(args)?;
    let max = op_p2p_core::peers::tides::MAX_PEERS_HI;
    if args.peers_lo > args.peers_hi || args.peers_hi > max {
        return Err(CliError::PeerTides {
            lo: args.peers_lo,
            hi: args.peers_hi,
            max,
        });
    }
    if !args.ban_threshold.is_finite() {
        return Err(CliError::BadBanThreshold(args.ban_threshold));
    }
    let bootnodes = parse_bootnodes(&args.bootnodes, chain.bootnodes)?;
    // Every check that does not need the key runs before a key file may be created.
    parse_static_peers(&args.static_peers, None)?;
    let keypair = node_key(args, fresh_secret)?;
    let local = keypair.public().to_peer_id();
    let statics = parse_static_peers(&args.static_peers, Some(&local))?;

    let mut core = Config::new(
        chain.chain_id,
        chain.signer,
        chain.forks,
        chain.block_time,
        local,
    );
    core.conn.low = args.peers_lo;
    core.conn.high = args.peers_hi;
    core.conn.grace_ms = millis(args.peers_grace);
    core.bans = BanConfig {
        enabled: args.ban_peers,
        threshold: args.ban_threshold,
        duration_ms: millis(args.ban_duration),
        ..BanConfig::default()
    };
    core.static_peers = statics.by_peer;
    core.rng_seed = args
        .rng_seed
        .unwrap_or_else(|| derive_rng_seed(&fresh_secret));
    if args.no_discovery {
        core.discovery = None;
    }
    let udp_port = match args.listen_udp {
        None | Some(0) => args.listen_tcp,
        Some(p) => p,
    };
    Ok(NodeConfig {
        core,
        keypair,
        listen_ip: args.listen_ip,
        tcp_port: args.listen_tcp,
        udp_port,
        advertise_ip: args.advertise_ip,
        discovery: !args.no_discovery,
        bootnodes,
        static_peers: statics.full,
        rpc_addr: (!args.rpc_disabled).then(|| SocketAddr::new(args.rpc_addr, args.rpc_port)),
        metrics_addr: args
            .metrics_enabled
            .then(|| SocketAddr::new(args.metrics_addr, args.metrics_port)),
        datadir: args.datadir.clone(),
        agent_version: args
            .user_agent
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(default_agent_version),
        ip_colocation_whitelist: Vec::new(),
    })
}

/// Runs `keygen`: writes a new key made from `fresh_secret` to `--out` in op-node's format
/// (refusing an existing file) and returns its peer id.
pub fn keygen(args: &KeygenArgs, fresh_secret: [u8; 32]) -> Result<PeerId, CliError> {
    let keypair = datadir::create_key_file(&args.out, fresh_secret)?;
    Ok(keypair.public().to_peer_id())
}

/// 32 bytes of OS randomness.
pub fn os_secret() -> Result<[u8; 32], getrandom::Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use op_p2p_core::presets::{BASE, OP_MAINNET, OP_SEPOLIA};

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: NodeArgs,
    }

    fn parse(extra: &[&str]) -> NodeArgs {
        try_parse(extra).unwrap_or_else(|e| panic!("{extra:?}: {e}"))
    }

    fn try_parse(extra: &[&str]) -> Result<NodeArgs, clap::Error> {
        Wrap::try_parse_from(std::iter::once("node").chain(extra.iter().copied())).map(|w| w.args)
    }

    const SECRET: [u8; 32] = [0x11; 32];
    const SIGNER: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

    fn peer_of(secret: [u8; 32]) -> PeerId {
        datadir::keypair_from_secret(secret)
            .unwrap()
            .public()
            .to_peer_id()
    }

    #[test]
    fn every_flag_has_op_nodes_default() {
        let a = parse(&[]);
        assert_eq!(a.listen_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(a.listen_tcp, 9222);
        assert_eq!(a.listen_udp, None);
        assert_eq!(a.advertise_ip, None);
        assert_eq!(a.priv_path, None);
        assert!(a.bootnodes.is_empty() && a.static_peers.is_empty());
        assert!(!a.no_discovery);
        assert_eq!((a.peers_lo, a.peers_hi), (20, 30));
        assert_eq!(a.peers_grace, Duration::from_secs(30));
        assert!(a.ban_peers);
        assert_eq!(a.ban_threshold, -100.0);
        assert_eq!(a.ban_duration, Duration::from_secs(3600));
        assert_eq!(a.rpc_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(a.rpc_port, 9545);
        assert!(!a.rpc_disabled && !a.metrics_enabled && !a.events_json);
        assert_eq!(a.metrics_addr, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(a.metrics_port, 7300);
        assert_eq!(a.datadir, None);
        assert_eq!(a.rng_seed, None);
        assert_eq!(a.network, None);
        assert_eq!(a.chain_id, None);
        assert_eq!(a.block_time, None);

        // The defaults make the same core settings as the core's own op-node defaults.
        let c = node_config(&parse(&["--network", "op-mainnet"]), SECRET).unwrap();
        assert_eq!(
            c.core.conn,
            op_p2p_core::peers::tides::ConnConfig::default()
        );
        assert_eq!(c.core.bans, BanConfig::default());
        assert_eq!((c.tcp_port, c.udp_port), (9222, 9222));
        assert_eq!(c.rpc_addr, Some("127.0.0.1:9545".parse().unwrap()));
        assert_eq!(c.metrics_addr, None);
        assert!(c.discovery && c.core.discovery.is_some());
        assert_eq!(c.agent_version, default_agent_version());
        assert_eq!(c.keypair.public().to_peer_id(), peer_of(SECRET));
        assert_eq!(c.core.local_peer_id, peer_of(SECRET));
        assert_eq!(c.datadir, None);
    }

    #[test]
    fn every_flag_parses_a_given_value() {
        let static_peer = format!("/ip4/10.0.0.2/tcp/9222/p2p/{}", peer_of([0x22; 32]));
        let a = parse(&[
            "--p2p.listen.ip=127.0.0.1",
            "--p2p.listen.tcp",
            "0",
            "--p2p.listen.udp=9333",
            "--p2p.advertise.ip=203.0.113.9",
            "--p2p.priv.path=/x/key.txt",
            "--p2p.bootnodes",
            OP_NODE_BOOTNODES[0],
            "--p2p.static",
            &static_peer,
            "--p2p.no-discovery",
            "--p2p.peers.lo=5",
            "--p2p.peers.hi=8",
            "--p2p.peers.grace=1m30s",
            "--p2p.ban.peers=false",
            "--p2p.ban.threshold",
            "-20.5",
            "--p2p.ban.duration=90m",
            "--p2p.useragent=tester",
            "--rpc.addr=0.0.0.0",
            "--rpc.port=0",
            "--rpc.disabled",
            "--metrics.enabled",
            "--metrics.addr=127.0.0.1",
            "--metrics.port=0",
            "--datadir=/x/data",
            "--events-json",
            "--rng-seed=7",
            "--network=base",
            "--chain-id=8453",
            "--unsafe-signer",
            SIGNER,
            "--override.canyon=1",
            "--ecotone-time=2",
            "--isthmus-time=3",
            "--jovian-time=4",
            "--block-time=1",
        ]);
        assert_eq!(a.listen_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!((a.listen_tcp, a.listen_udp), (0, Some(9333)));
        assert_eq!(a.advertise_ip, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(a.priv_path, Some(PathBuf::from("/x/key.txt")));
        assert_eq!(a.bootnodes, vec![OP_NODE_BOOTNODES[0].to_string()]);
        assert_eq!(a.static_peers, vec![static_peer]);
        assert!(a.no_discovery);
        assert_eq!((a.peers_lo, a.peers_hi), (5, 8));
        assert_eq!(a.peers_grace, Duration::from_secs(90));
        assert!(!a.ban_peers);
        assert_eq!(a.ban_threshold, -20.5);
        assert_eq!(a.ban_duration, Duration::from_secs(90 * 60));
        assert_eq!(a.user_agent.as_deref(), Some("tester"));
        assert_eq!((a.rpc_addr, a.rpc_port), ("0.0.0.0".parse().unwrap(), 0));
        assert!(a.rpc_disabled && a.metrics_enabled && a.events_json);
        assert_eq!(
            (a.metrics_addr, a.metrics_port),
            ("127.0.0.1".parse().unwrap(), 0)
        );
        assert_eq!(a.datadir, Some(PathBuf::from("/x/data")));
        assert_eq!(a.rng_seed, Some(7));
        assert_eq!(a.network.as_deref(), Some("base"));
        assert_eq!(a.chain_id, Some(8453));
        assert_eq!(a.unsafe_signer, Some(SIGNER.parse().unwrap()));
        assert_eq!(
            [a.canyon_time, a.ecotone_time, a.isthmus_time, a.jovian_time],
            [Some(1), Some(2), Some(3), Some(4)]
        );
        assert_eq!(a.block_time, Some(1));
        // A bare boolean flag does not swallow the next argument.
        let b = parse(&["--p2p.no-discovery", "--p2p.peers.lo", "3"]);
        assert!(b.no_discovery);
        assert_eq!(b.peers_lo, 3);
        // Comma lists split.
        let c = parse(&["--p2p.bootnodes", "a,b", "--p2p.static=x,y,z"]);
        assert_eq!(c.bootnodes.len(), 2);
        assert_eq!(c.static_peers.len(), 3);
    }

    #[test]
    fn values_clap_refuses() {
        for bad in [
            &["--p2p.listen.tcp=65536"][..],
            &["--p2p.listen.ip=nope"],
            &["--p2p.peers.grace=30"],
            &["--p2p.ban.duration=-1h"],
            &["--p2p.ban.peers=maybe"],
            &["--block-time=0"],
            &["--unsafe-signer=0x1234"],
            &["--p2p.advertise.ip=example.com"],
        ] {
            assert!(try_parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn presets_fill_the_chain() {
        for p in [&OP_MAINNET, &BASE, &OP_SEPOLIA] {
            let c = node_config(&parse(&["--network", p.name]), SECRET).unwrap();
            let v = &c.core.validator;
            assert_eq!(v.chain_id, p.chain_id);
            assert_eq!(c.core.block_time_secs, p.block_time_secs);
            assert_eq!(c.bootnodes.len(), p.bootnodes.len());
            assert_eq!(
                format!("{:?}", c.bootnodes),
                format!("{:?}", p.parse_bootnodes().unwrap())
            );
            assert_eq!(v.unsafe_signer, p.unsafe_block_signer);
            assert_eq!(v.forks, p.forks);
        }
        // The same chain id as the preset is fine.
        assert!(node_config(&parse(&["--network=base", "--chain-id=8453"]), SECRET).is_ok());
    }

    #[test]
    fn overrides_win_over_the_preset() {
        let signer: Address = SIGNER.parse().unwrap();
        let c = node_config(
            &parse(&[
                "--network=op-sepolia",
                "--unsafe-signer",
                SIGNER,
                "--jovian-time=42",
                "--block-time=1",
                "--p2p.bootnodes",
                OP_NODE_BOOTNODES[2],
            ]),
            SECRET,
        )
        .unwrap();
        let want = ForkSchedule {
            jovian: Some(42),
            ..OP_SEPOLIA.forks
        };
        assert_eq!(c.core.validator.unsafe_signer, signer);
        assert_ne!(signer, OP_SEPOLIA.unsafe_block_signer);
        assert_eq!(c.core.validator.forks, want);
        assert_eq!(c.core.block_time_secs, 1);
        assert_eq!(
            format!("{:?}", c.bootnodes),
            format!(
                "{:?}",
                vec![<Bootnode>::parse(OP_NODE_BOOTNODES[2]).unwrap()]
            )
        );
    }

    #[test]
    fn a_custom_chain_needs_id_and_signer_and_gets_op_nodes_bootnodes() {
        let c = node_config(
            &parse(&[
                "--chain-id=901",
                "--unsafe-signer",
                SIGNER,
                "--canyon-time=0",
            ]),
            SECRET,
        )
        .unwrap();
        assert_eq!(c.core.validator.chain_id, 901);
        assert_eq!(c.core.block_time_secs, 2);
        assert_eq!(c.bootnodes.len(), OP_NODE_BOOTNODES.len());
        let want = ForkSchedule {
            canyon: Some(0),
            ecotone: None,
            isthmus: None,
            jovian: None,
        };
        assert_eq!(c.core.validator.forks, want);
        assert_eq!(
            c.core.validator.unsafe_signer,
            SIGNER.parse::<Address>().unwrap()
        );
    }

    #[test]
    fn tides_bans_static_peers_and_ports_reach_the_config() {
        let s1 = peer_of([0x22; 32]);
        let s2 = peer_of([0x33; 32]);
        let statics = format!(
            "/ip4/10.0.0.2/tcp/9222/p2p/{s1}, /dns4/peer.example/tcp/9000/p2p/{s2},/ip6/::1/tcp/1/p2p/{s1}"
        );
        let c = node_config(
            &parse(&[
                "--network=base",
                "--p2p.peers.lo=1",
                "--p2p.peers.hi=1",
                "--p2p.peers.grace=1.5s",
                "--p2p.ban.peers=false",
                "--p2p.ban.threshold=-7",
                "--p2p.ban.duration=2m",
                "--p2p.static",
                &statics,
                "--p2p.listen.tcp=7000",
                "--p2p.listen.udp=0",
                "--p2p.no-discovery",
                "--rng-seed=99",
                "--rpc.disabled",
                "--metrics.enabled",
                "--metrics.port=0",
            ]),
            SECRET,
        )
        .unwrap();
        assert_eq!((c.core.conn.low, c.core.conn.high), (1, 1));
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
        assert_eq!(c.static_peers.len(), 3);
        assert_eq!(
            c.core.static_peers,
            vec![
                (
                    s1,
                    vec![
                        "/ip4/10.0.0.2/tcp/9222".parse().unwrap(),
                        "/ip6/::1/tcp/1".parse().unwrap()
                    ]
                ),
                (s2, vec!["/dns4/peer.example/tcp/9000".parse().unwrap()]),
            ]
        );
        assert_eq!((c.tcp_port, c.udp_port), (7000, 7000), "udp 0 = tcp port");
        assert!(!c.discovery && c.core.discovery.is_none());
        assert_eq!(c.core.rng_seed, 99);
        assert_eq!(c.rpc_addr, None);
        assert_eq!(c.metrics_addr, Some("0.0.0.0:0".parse().unwrap()));
    }

    #[test]
    fn the_rng_seed_is_a_hash_of_the_secret_not_the_secret() {
        let a = node_config(&parse(&["--network=base"]), SECRET).unwrap();
        let b = node_config(&parse(&["--network=base"]), [0x12; 32]).unwrap();
        assert_ne!(a.core.rng_seed, b.core.rng_seed);
        assert_ne!(a.core.rng_seed, u64::from_le_bytes([0x11; 8]));
        assert_eq!(a.core.rng_seed, derive_rng_seed(&SECRET));
    }

    fn err(extra: &[&str]) -> CliError {
        match node_config(&parse(extra), SECRET) {
            Err(e) => e,
            Ok(c) => panic!("{extra:?} accepted: {c:?}"),
        }
    }

    #[test]
    fn each_error_path_is_typed() {
        assert!(matches!(err(&["--network=goerli"]), CliError::UnknownNetwork(n) if n == "goerli"));
        assert!(matches!(err(&[]), CliError::MissingChainId));
        assert!(matches!(err(&["--chain-id=901"]), CliError::MissingSigner));
        assert!(matches!(
            err(&["--chain-id=0", "--unsafe-signer", SIGNER]),
            CliError::ZeroChainId
        ));
        assert!(matches!(
            err(&["--network=base", "--chain-id=10"]),
            CliError::ChainIdMismatch {
                preset: 8453,
                given: 10,
                ..
            }
        ));
        assert!(matches!(
            err(&["--network=base", "--p2p.peers.lo=31"]),
            CliError::PeerTides { lo: 31, hi: 30, .. }
        ));
        assert!(matches!(
            err(&["--network=base", "--p2p.peers.lo=1", "--p2p.peers.hi=257"]),
            CliError::PeerTides {
                hi: 257,
                max: 256,
                ..
            }
        ));
        assert!(matches!(
            err(&["--network=base", "--p2p.ban.threshold=NaN"]),
            CliError::BadBanThreshold(_)
        ));
        assert!(matches!(
            err(&[
                "--network=base",
                "--p2p.bootnodes",
                &format!("{},enode://zz@1.2.3.4:1", OP_NODE_BOOTNODES[0])
            ]),
            CliError::BadBootnode { index: 1, .. }
        ));
        let me = peer_of(SECRET);
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
            match err(&["--network=base", "--p2p.static", &entry]) {
                CliError::BadStaticPeer {
                    index: 0, reason, ..
                } => assert_eq!(reason, want),
                other => panic!("{entry}: {other:?}"),
            }
        }
        assert!(matches!(
            err(&["--network=base", "--p2p.static", "not-a-multiaddr"]),
            CliError::BadStaticPeer {
                reason: StaticPeerError::Multiaddr(_),
                ..
            }
        ));
    }

    #[test]
    fn key_comes_from_datadir_or_priv_path() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let data_s = data.to_str().unwrap();
        // Created in the data dir, then reused whatever the fresh secret.
        let a = node_config(&parse(&["--network=base", "--datadir", data_s]), SECRET).unwrap();
        let b = node_config(&parse(&["--network=base", "--datadir", data_s]), [0x44; 32]).unwrap();
        assert_eq!(a.keypair.public().to_peer_id(), peer_of(SECRET));
        assert_eq!(b.keypair.public().to_peer_id(), peer_of(SECRET));
        assert_eq!(b.datadir.as_deref(), Some(data.as_path()));
        assert!(data.join(datadir::KEY_FILE).is_file());
        // --p2p.priv.path wins, with or without a data dir.
        let key = tmp.path().join("key.txt");
        std::fs::write(&key, format!("0x{}\n", "55".repeat(32))).unwrap();
        let key_s = key.to_str().unwrap();
        for extra in [&["--datadir", data_s][..], &[]] {
            let mut argv = vec!["--network=base", "--p2p.priv.path", key_s];
            argv.extend_from_slice(extra);
            let c = node_config(&parse(&argv), SECRET).unwrap();
            assert_eq!(c.keypair.public().to_peer_id(), peer_of([0x55; 32]));
        }
        // A broken key file is a typed error naming it.
        std::fs::write(&key, "zz").unwrap();
        match err(&["--network=base", "--p2p.priv.path", key_s]) {
            CliError::DataDir(DataDirError::Key { path, .. }) => assert_eq!(path, key),
            other => panic!("{other:?}"),
        }
        // A bad static peer is reported before a key file is created.
        let fresh = tmp.path().join("fresh");
        let fresh_s = fresh.to_str().unwrap();
        assert!(matches!(
            err(&[
                "--network=base",
                "--datadir",
                fresh_s,
                "--p2p.static=/ip4/1.2.3.4/tcp/1"
            ]),
            CliError::BadStaticPeer { .. }
        ));
        assert!(!fresh.exists());
    }

    #[test]
    fn keygen_writes_a_key_that_loads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("k.txt");
        let args = KeygenArgs { out: out.clone() };
        let id = keygen(&args, [0x66; 32]).unwrap();
        assert_eq!(id, peer_of([0x66; 32]));
        let back = datadir::load_or_create_key_file(&out, [0x77; 32]).unwrap();
        assert_eq!(back.public().to_peer_id(), id);
        assert!(matches!(
            keygen(&args, [0x77; 32]),
            Err(CliError::DataDir(DataDirError::KeyExists { .. }))
        ));
    }

    #[test]
    fn go_durations() {
        let ms = |s: &str| parse_go_duration(s).map(|d| d.as_nanos());
        assert_eq!(ms("0"), Ok(0));
        assert_eq!(ms("30s"), Ok(30_000_000_000));
        assert_eq!(ms("1m"), Ok(60_000_000_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(ms("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(ms("+2s"), Ok(2_000_000_000));
        assert_eq!(ms("300ms"), Ok(300_000_000));
        assert_eq!(ms(".5s"), Ok(500_000_000));
        assert_eq!(ms("1.s"), Ok(1_000_000_000));
        assert_eq!(ms("2us"), Ok(2_000));
        assert_eq!(ms("2µs"), Ok(2_000));
        assert_eq!(ms("7ns"), Ok(7));
        assert_eq!(ms("1h1m1s1ms1us1ns"), Ok(3_661_001_001_001));
        assert_eq!(ms("2562047h"), Ok(2_562_047 * 3_600_000_000_000));
        for bad in [
            "",
            "30",
            "s",
            "1x",
            "1.5.5s",
            "-1s",
            "1 s",
            "1s ",
            ".s",
            "+",
            "9999999999999999999999h",
            "2562048h",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }
}
