//! The `op-p2p node` and `op-p2p keygen` command lines, and their mapping onto the node's
//! configuration builder ([`NodeConfig::builder`]), which checks every setting and derives the
//! node's configuration: this module adds only what is the command line's own (flag and
//! environment parsing, Go durations, the preset name, where the node key is kept).
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
//! - `--l1` reads the unsafe block signer from L1's `SystemConfig` as op-node does (`http://`
//!   only); `--verifier.l1-confs` defaults to 4, not op-node's 0, and `--l1.chain-id` (the L1
//!   must report it) is ours. See [`L1Args`].
//! - `--p2p.bootnodes` unset (or empty), and no `--p2p.bootnodes-file`, uses the preset's list:
//!   the one the network's consensus client ships (op-node's built-in list for the OP
//!   networks and a custom chain, `base-consensus`'s for Base). `--p2p.bootnodes-file` adds
//!   one entry per line after `--p2p.bootnodes`.
//! - `--p2p.gossip.timestamp.threshold` (op-node's flag, default 60s) is how old a gossiped
//!   block may be; under 1s is refused.
//! - The node key: `--p2p.priv.path` if given (created if missing, like op-node), else
//!   `<datadir>/p2p_priv.txt`, else a fresh key kept only in memory (a warning is logged).
//!   op-node defaults `--p2p.priv.path` to `opnode_p2p_priv.txt` in the working directory; we
//!   write nothing outside an explicitly named place.
//! - `--p2p.listen.udp` unset or 0 means "the TCP port", as in op-node.
//! - ⚠ `--p2p.advertise.ip` takes an IP address only; op-node also resolves a host name.
//! - The `opp2p_*` JSON-RPC listens on `--rpc.addr`:`--rpc.port`, default `127.0.0.1:9545`
//!   (op-node's RPC defaults), loopback because the admin API can block and ban peers; port 0
//!   picks a free port; `--rpc.disabled` turns it off. `--rpc.vhosts` (default `localhost`,
//!   go-ethereum's `--http.vhosts` default; blank entries dropped, so `--rpc.vhosts=` leaves IP
//!   addresses only) lists the `Host` names it answers. Metrics are off unless
//!   `--metrics.enabled`, then on `--metrics.addr`:`--metrics.port`, default `0.0.0.0:7300`
//!   (op-node's).
//! - `--p2p.netrestrict` (op-node's flag) applies to every address learned from the network,
//!   not only to discv5 as in op-node; without it, learned addresses in special-purpose
//!   ranges (loopback, RFC 1918, link-local and the cloud metadata service, CGNAT, multicast,
//!   IPv6 unique-local) are not dialled. A blank value is no list. See
//!   [`op_p2p_core::peers::netpolicy`].
//! - `--p2p.peers.hi` may be at most [`MAX_PEERS_HI`](op_p2p_core::peers::tides::MAX_PEERS_HI)
//!   (256); the node keeps at most `2 × hi + static peers` connected.

// Flag doc comments are clap's `--help` text, where `<datadir>` or `<peer id>` is a
// placeholder, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use clap::builder::BoolishValueParser;
use op_p2p_core::PeerId;
use op_p2p_core::alloy_primitives::{Address, keccak256};
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::presets::Preset;
use op_p2p_node::datadir::{self, DataDir, DataDirError, Keypair};
use op_p2p_node::{ConfigError, NodeConfig, NodeConfigBuilder};

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
    /// Comma-separated bootnodes (enr: or enode://) [default: the preset's list: op-node's
    /// built-in one, base-consensus's for base and base-sepolia; op-node's without a preset].
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
    /// Comma-separated CIDR ranges: addresses learned from the network (discovery, identify)
    /// are dialled only inside them [default: public addresses only, never loopback, private,
    /// link-local, CGNAT or multicast]. Static peers and opp2p_connectPeer addresses are
    /// dialled either way.
    #[arg(
        long = "p2p.netrestrict",
        env = "OP_P2P_NETRESTRICT",
        value_delimiter = ','
    )]
    pub netrestrict: Vec<String>,
    /// Inbound connections one source (an IPv4 address, an IPv6 /64) may open back to back,
    /// before the handshake; 0 turns the accept rate limit off. Raise it when many honest
    /// peers reach this node through one address.
    #[arg(
        long = "p2p.accept.burst",
        env = "OP_P2P_ACCEPT_BURST",
        default_value_t = op_p2p_core::peers::accept_rate::DEFAULT_ACCEPT_BURST
    )]
    pub accept_burst: u32,
    /// Time for one more inbound connection to become available to a source after its burst
    /// (e.g. 4s); 0 turns the accept rate limit off.
    #[arg(long = "p2p.accept.interval", env = "OP_P2P_ACCEPT_INTERVAL", default_value = "4s",
          value_parser = parse_go_duration)]
    pub accept_interval: Duration,
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
    /// Comma-separated host names the JSON-RPC answers (the Host header, any port; a DNS-
    /// rebinding guard, geth's --http.vhosts); "*" allows every name. IP addresses always pass;
    /// another name gets 403.
    #[arg(
        long = "rpc.vhosts",
        env = "OP_P2P_RPC_VHOSTS",
        value_delimiter = ',',
        default_value = "localhost"
    )]
    pub rpc_vhosts: Vec<String>,
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
    /// Reading the unsafe block signer from L1.
    #[command(flatten)]
    pub l1: L1Args,

    // ---- operator flags: bootnodes file, gossip timestamp threshold ----
    /// File of bootnodes, one enr: or enode:// per line (blank lines and # comments skipped);
    /// added after --p2p.bootnodes, and replaces the default list.
    #[arg(long = "p2p.bootnodes-file", env = "OP_P2P_BOOTNODES_FILE")]
    pub bootnodes_file: Option<PathBuf>,
    /// Reject gossiped blocks whose timestamp is older than this (Go duration, whole seconds,
    /// at least 1s; op-node's flag).
    #[arg(long = "p2p.gossip.timestamp.threshold", env = "OP_P2P_GOSSIP_TIMESTAMP_THRESHOLD",
          default_value = "60s", value_parser = parse_go_duration)]
    pub gossip_timestamp_threshold: Duration,
    // ---- end operator flags ----
    /// Publishing as a sequencer.
    #[command(flatten)]
    pub publish: PublishArgs,
    // ---- validation on every core (issue 15) ----
    /// Worker threads for the stateless half of gossip validation (signature, decoding, block
    /// hash); 0 validates on the event loop. Default: the cores available, at most 8.
    #[arg(long = "p2p.validation.workers", env = "OP_P2P_VALIDATION_WORKERS")]
    pub validation_workers: Option<usize>,
    /// Most gossip messages one peer gets checked a second; past it they are IGNOREd
    /// unvalidated (no penalty). 0: no budget. [default: 500]
    #[arg(
        long = "p2p.validation.peer-budget",
        env = "OP_P2P_VALIDATION_PEER_BUDGET"
    )]
    pub peer_checks_per_second: Option<u32>,
}

// ---- publishing as a sequencer (issue 14) ----

/// Who signs published blocks, and the publish queue (op-node's flag names where it has them).
#[derive(Debug, Clone, Default, Args)]
pub struct PublishArgs {
    /// Hex private key the sequencer signs gossiped blocks with.
    #[arg(
        long = "p2p.sequencer.key",
        env = "OP_P2P_SEQUENCER_KEY",
        hide_env_values = true
    )]
    pub sequencer_key: Option<String>,
    /// Remote op-signer JSON-RPC endpoint (https://…); takes precedence over the local key.
    #[arg(long = "signer.endpoint", env = "OP_P2P_SIGNER_ENDPOINT")]
    pub signer_endpoint: Option<String>,
    /// The address the remote signer signs as.
    #[arg(long = "signer.address", env = "OP_P2P_SIGNER_ADDRESS")]
    pub signer_address: Option<op_p2p_core::alloy_primitives::Address>,
    /// PEM CA bundle that signs the signer's server certificate.
    #[arg(long = "signer.tls.ca", env = "OP_P2P_SIGNER_TLS_CA")]
    pub signer_tls_ca: Option<PathBuf>,
    /// PEM client certificate for mTLS to the signer.
    #[arg(long = "signer.tls.cert", env = "OP_P2P_SIGNER_TLS_CERT")]
    pub signer_tls_cert: Option<PathBuf>,
    /// PEM client key for mTLS to the signer.
    #[arg(long = "signer.tls.key", env = "OP_P2P_SIGNER_TLS_KEY")]
    pub signer_tls_key: Option<PathBuf>,
    /// Extra HTTP header for the signer, "Key=Value"; repeatable.
    #[arg(long = "signer.header")]
    pub signer_headers: Vec<String>,
    /// Whole-request timeout of one signer call.
    #[arg(long = "signer.timeout", default_value = "5s", value_parser = parse_go_duration)]
    pub signer_timeout: Duration,
    /// Most blocks waiting to be published; the oldest is dropped beyond it.
    #[arg(long = "p2p.publish.queue-size", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub queue_size: u64,
    /// How long a block may wait to be signed and published before it is dropped.
    #[arg(long = "p2p.publish.deadline", default_value = "10s", value_parser = parse_go_duration)]
    pub deadline: Duration,
}

/// Applies [`PublishArgs`] to the builder.
fn apply_publish(
    args: &PublishArgs,
    mut b: NodeConfigBuilder,
) -> Result<NodeConfigBuilder, CliError> {
    if let Some(hex_key) = &args.sequencer_key {
        let bytes: [u8; 32] = op_p2p_core::alloy_primitives::hex::decode(hex_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(CliError::SequencerKey)?;
        let key = op_p2p_core::gossip::signature::SequencerKey::from_bytes(&bytes)
            .map_err(|_| CliError::SequencerKey)?;
        b = b.sequencer_key(key);
    }
    if let Some(endpoint) = &args.signer_endpoint {
        let address = args.signer_address.ok_or(CliError::SignerAddress)?;
        let mut remote = op_p2p_node::signer::RemoteSignerConfig::new(endpoint.trim(), address);
        remote.tls_ca = args.signer_tls_ca.clone();
        remote.tls_cert = args.signer_tls_cert.clone();
        remote.tls_key = args.signer_tls_key.clone();
        remote.timeout = args.signer_timeout;
        for h in &args.signer_headers {
            let (k, v) = h
                .split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| CliError::SignerHeader(echo(h)))?;
            remote
                .headers
                .push((k.trim().to_string(), v.trim().to_string()));
        }
        b = b.remote_signer(remote);
    }
    let deadline_ms = u64::try_from(args.deadline.as_millis()).unwrap_or(u64::MAX);
    Ok(b.publish_queue(op_p2p_core::publish::QueueConfig {
        capacity: usize::try_from(args.queue_size).unwrap_or(usize::MAX),
        deadline_ms,
        ..Default::default()
    }))
}

// ---- reading the signer from L1 ----

/// The flags that make the node follow the unsafe block signer in L1's `SystemConfig`, as
/// op-node does (op-node's names and environment variables where it has them).
#[derive(Debug, Clone, Args)]
pub struct L1Args {
    /// L1 execution node JSON-RPC URL (http:// only). With it, the unsafe block signer is read
    /// from the chain's SystemConfig on L1 at start and every reload interval; --unsafe-signer
    /// (or the preset's) is the signer until the first read succeeds.
    #[arg(long = "l1", env = "OP_P2P_L1_ETH_RPC")]
    pub l1_url: Option<String>,
    /// The chain's SystemConfig proxy address on L1 [default: the --network preset's].
    #[arg(long = "rollup.system-config", env = "OP_P2P_ROLLUP_SYSTEM_CONFIG")]
    pub l1_system_config: Option<Address>,
    /// The chain id the L1 must report [default: the --network preset's L1, 1 or 11155111].
    #[arg(long = "l1.chain-id", env = "OP_P2P_L1_CHAIN_ID")]
    pub l1_chain_id: Option<u64>,
    /// How often the signer is re-read from L1 (at least 1s).
    #[arg(long = "l1.runtime-config-reload-interval", env = "OP_P2P_L1_RUNTIME_CONFIG_RELOAD_INTERVAL",
          default_value = "10m", value_parser = parse_go_duration)]
    pub l1_reload_interval: Duration,
    /// Blocks behind the L1 head the signer is read at (op-node's flag, whose default is 0;
    /// ours is 4 so a shallow L1 reorg cannot flip the signer).
    #[arg(long = "verifier.l1-confs", env = "OP_P2P_VERIFIER_L1_CONFS", default_value_t = op_p2p_node::l1_signer::DEFAULT_L1_CONFS)]
    pub l1_confs: u64,
}

impl L1Args {
    /// These flags on `b` (nothing without `--l1`).
    fn apply(&self, mut b: NodeConfigBuilder) -> NodeConfigBuilder {
        let Some(url) = &self.l1_url else {
            return b;
        };
        b = b
            .l1_rpc(url)
            .l1_reload_interval(self.l1_reload_interval)
            .l1_confs(self.l1_confs);
        if let Some(address) = self.l1_system_config {
            b = b.system_config(address);
        }
        if let Some(id) = self.l1_chain_id {
            b = b.l1_chain_id(id);
        }
        b
    }
}

// ---- end of reading the signer from L1 ----

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
    /// `--p2p.sequencer.key` is not a 32-byte hex secp256k1 key.
    #[error("--p2p.sequencer.key must be a 32-byte hex secp256k1 key")]
    SequencerKey,
    /// `--signer.endpoint` without `--signer.address`.
    #[error("--signer.endpoint needs --signer.address")]
    SignerAddress,
    /// A `--signer.header` that is not `Key=Value`.
    #[error("--signer.header must be Key=Value, got {0:?}")]
    SignerHeader(String),
    /// `--network` is not a preset name.
    #[error("unknown network {0:?}; expected one of op-mainnet, base, op-sepolia, base-sepolia")]
    UnknownNetwork(String),
    /// The settings are refused by the node's configuration builder.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data dir or the key file failed.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
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

/// The entries of a comma-separated list flag that are not blank (`a,,b`, a trailing comma).
fn non_blank(entries: &[String]) -> Vec<&str> {
    entries
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The `node` flags mapped onto the node's configuration builder, with `keypair` as the key.
/// The builder checks and derives everything; only the preset name is looked up here.
fn builder(
    args: &NodeArgs,
    keypair: Keypair,
    fresh_secret: &[u8; 32],
) -> Result<NodeConfigBuilder, CliError> {
    let mut b = NodeConfig::builder(keypair);
    let preset = match &args.network {
        Some(name) => {
            Some(Preset::by_name(name.trim()).ok_or_else(|| CliError::UnknownNetwork(echo(name)))?)
        }
        None => None,
    };
    if let Some(p) = preset {
        b = b.preset(p);
    }
    if let Some(id) = args.chain_id {
        b = b.chain_id(id);
    }
    if let Some(signer) = args.unsafe_signer {
        b = b.unsafe_signer(signer);
    }
    let fork_flags = [
        args.canyon_time,
        args.ecotone_time,
        args.isthmus_time,
        args.jovian_time,
    ];
    if fork_flags.iter().any(Option::is_some) {
        // Each fork flag overrides one time of the preset's schedule.
        let base = preset.map(|p| p.forks).unwrap_or_default();
        b = b.forks(ForkSchedule {
            canyon: args.canyon_time.or(base.canyon),
            ecotone: args.ecotone_time.or(base.ecotone),
            isthmus: args.isthmus_time.or(base.isthmus),
            jovian: args.jovian_time.or(base.jovian),
        });
    }
    if let Some(secs) = args.block_time {
        b = b.block_time(secs);
    }
    b = b
        .listen_ip(args.listen_ip)
        .tcp_port(args.listen_tcp)
        .advertise_ip(args.advertise_ip)
        .discovery(!args.no_discovery);
    // Unset or 0: the builder's default, the TCP port (op-node).
    if let Some(udp) = args.listen_udp.filter(|&p| p != 0) {
        b = b.udp_port(udp);
    }
    // Unset or all blank: the builder's default, the preset's (op-node's) list.
    let bootnodes = non_blank(&args.bootnodes);
    if !bootnodes.is_empty() {
        b = b.bootnode_strings(bootnodes);
    }
    // Unset or all blank: no list, public addresses only.
    let netrestrict = non_blank(&args.netrestrict);
    if !netrestrict.is_empty() {
        b = b.netrestrict_strings(netrestrict);
    }
    b = b
        .accept_rate(args.accept_burst, args.accept_interval)
        .static_peer_strings(non_blank(&args.static_peers))
        .peers_lo(args.peers_lo)
        .peers_hi(args.peers_hi)
        .peers_grace(args.peers_grace)
        .ban_peers(args.ban_peers)
        .ban_threshold(args.ban_threshold)
        .ban_duration(args.ban_duration)
        .rpc_addr((!args.rpc_disabled).then(|| SocketAddr::new(args.rpc_addr, args.rpc_port)))
        .rpc_vhosts(non_blank(&args.rpc_vhosts))
        .metrics_addr(
            args.metrics_enabled
                .then(|| SocketAddr::new(args.metrics_addr, args.metrics_port)),
        )
        .rng_seed(
            args.rng_seed
                .unwrap_or_else(|| derive_rng_seed(fresh_secret)),
        );
    if let Some(dir) = &args.datadir {
        b = b.datadir(dir);
    }
    if let Some(agent) = &args.user_agent {
        b = b.agent_version(agent);
    }
    b = args.l1.apply(b);
    // Operator flags.
    if let Some(file) = &args.bootnodes_file {
        b = b.bootnodes_file(file);
    }
    b = b.gossip_timestamp_threshold(args.gossip_timestamp_threshold);
    if let Some(n) = args.peer_checks_per_second {
        b = b.peer_checks_per_second(n);
    }
    if let Some(n) = args.validation_workers {
        b = b.validation_workers(n);
    }
    apply_publish(&args.publish, b)
}

/// The node key kept on disk as the module docs describe (created if missing), or `None`
/// without `--datadir` and `--p2p.priv.path`.
fn stored_key(args: &NodeArgs, fresh_secret: [u8; 32]) -> Result<Option<Keypair>, CliError> {
    Ok(match (&args.datadir, &args.priv_path) {
        (Some(dir), explicit) => {
            Some(DataDir::open(dir)?.load_or_create_key(explicit.as_deref(), fresh_secret)?)
        }
        (None, Some(path)) => Some(datadir::load_or_create_key_file(path, fresh_secret)?),
        (None, None) => None,
    })
}

/// Maps the `node` arguments onto [`NodeConfig::builder`] and builds the node's configuration
/// (the builder does every check and derivation). `fresh_secret` is 32 bytes of OS
/// randomness: the node key if none is stored yet (or none is stored at all), and (hashed) the
/// RNG seed unless `--rng-seed` is given. Creates the data dir and the key file when needed,
/// only once every check that does not need the key has passed; reads no state.
pub fn node_config(args: &NodeArgs, fresh_secret: [u8; 32]) -> Result<NodeConfig, CliError> {
    let memory_key =
        datadir::keypair_from_secret(fresh_secret).map_err(|source| DataDirError::Key {
            path: PathBuf::from("<memory>"),
            source,
        })?;
    let builder = builder(args, memory_key, &fresh_secret)?;
    builder.check()?;
    let builder = match stored_key(args, fresh_secret)? {
        Some(keypair) => builder.keypair(keypair),
        None => {
            tracing::warn!(
                "no --datadir or --p2p.priv.path: using a new node key that is lost at exit"
            );
            builder
        }
    };
    Ok(builder.build()?)
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
    use op_p2p_core::discovery::Bootnode;
    use op_p2p_core::peers::score_ban::BanConfig;
    use op_p2p_core::presets::{BASE, OP_MAINNET, OP_NODE_BOOTNODES, OP_SEPOLIA};
    use op_p2p_node::{StaticPeerError, default_agent_version};
    use std::net::{IpAddr, Ipv4Addr};

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
        assert_eq!(a.rpc_vhosts, ["localhost"]);
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
        assert_eq!(c.rpc_vhosts, ["localhost"]);
        assert_eq!(c.metrics_addr, None);
        assert!(c.discovery() && c.core.discovery.is_some());
        assert_eq!(c.agent_version, default_agent_version());
        assert_eq!(c.keypair.public().to_peer_id(), peer_of(SECRET));
        assert_eq!(c.core.local_peer_id, peer_of(SECRET));
        assert_eq!(c.datadir, None);
        // Production defaults: no netrestrict list (public addresses only), loopback capped.
        assert!(a.netrestrict.is_empty());
        assert_eq!(c.core.gater.netrestrict, None);
        assert!(!c.core.gater.exempt_loopback_from_caps);
    }

    /// The inbound accept rate per source: 16 back to back and one per 4 s by default; both
    /// flags reach the gater; 0 turns the limit off.
    #[test]
    fn accept_rate_flags_reach_the_gater() {
        let c = node_config(&parse(&["--network=base"]), SECRET).unwrap();
        assert_eq!(
            (c.core.gater.accept_burst, c.core.gater.accept_refill_ms),
            (16, 4_000)
        );
        let c = node_config(
            &parse(&[
                "--network=base",
                "--p2p.accept.burst=64",
                "--p2p.accept.interval=250ms",
            ]),
            SECRET,
        )
        .unwrap();
        assert_eq!(
            (c.core.gater.accept_burst, c.core.gater.accept_refill_ms),
            (64, 250)
        );
        let off = node_config(
            &parse(&["--network=base", "--p2p.accept.interval=0"]),
            SECRET,
        );
        assert_eq!(off.unwrap().core.gater.accept_refill_ms, 0);
    }

    /// The per-peer budget of checks a second: 500 by default, the flag reaches the config, 0
    /// turns it off.
    #[test]
    fn peer_budget_flag_reaches_the_config() {
        let c = node_config(&parse(&["--network=base"]), SECRET).unwrap();
        assert_eq!(c.peer_checks_per_second, 500);
        let c = node_config(
            &parse(&["--network=base", "--p2p.validation.peer-budget=2000"]),
            SECRET,
        )
        .unwrap();
        assert_eq!(c.peer_checks_per_second, 2000);
        let c = node_config(
            &parse(&["--network=base", "--p2p.validation.peer-budget=0"]),
            SECRET,
        )
        .unwrap();
        assert_eq!(c.peer_checks_per_second, 0);
    }

    /// op-node's `--p2p.netrestrict` (`OP_P2P_NETRESTRICT`): comma-separated CIDR ranges into
    /// the gater's list; a bad entry is a configuration error naming the flag; a blank value
    /// is no list.
    #[test]
    fn netrestrict_reaches_the_gater() {
        let c = node_config(
            &parse(&[
                "--network=base",
                "--p2p.netrestrict",
                "10.0.0.0/8, 192.168.0.0/16,",
                "--p2p.netrestrict=2001:db8::/32",
            ]),
            SECRET,
        )
        .unwrap();
        let list: Vec<String> = c
            .core
            .gater
            .netrestrict
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(list, ["10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"]);
        let bad = node_config(
            &parse(&["--network=base", "--p2p.netrestrict=10.0.0.1"]),
            SECRET,
        );
        match bad {
            Err(e) => assert!(e.to_string().contains("p2p.netrestrict"), "{e}"),
            Ok(_) => panic!("a bare IP is not a range"),
        }
        let blank = node_config(&parse(&["--network=base", "--p2p.netrestrict= "]), SECRET);
        assert_eq!(blank.unwrap().core.gater.netrestrict, None);
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
            "--rpc.vhosts=localhost, node.internal",
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
        assert_eq!(a.rpc_vhosts, ["localhost", " node.internal"]);
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
        // The vhosts list reaches the config trimmed; `*`; an empty one leaves IPs only.
        let vhosts = |flag: &str| {
            node_config(&parse(&["--network=base", flag]), SECRET)
                .unwrap()
                .rpc_vhosts
        };
        assert_eq!(
            vhosts("--rpc.vhosts=localhost, node.internal"),
            ["localhost", "node.internal"]
        );
        assert_eq!(vhosts("--rpc.vhosts=*"), ["*"]);
        assert!(vhosts("--rpc.vhosts=").is_empty());
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
        assert!(!c.discovery() && c.core.discovery.is_none());
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
        assert!(matches!(err(&[]), CliError::Config(ConfigError::NoChain)));
        assert!(matches!(
            err(&["--chain-id=901"]),
            CliError::Config(ConfigError::NoSigner { chain_id: 901 })
        ));
        assert!(matches!(
            err(&["--chain-id=0", "--unsafe-signer", SIGNER]),
            CliError::Config(ConfigError::ZeroChainId)
        ));
        assert!(matches!(
            err(&["--network=base", "--chain-id=10"]),
            CliError::Config(ConfigError::ChainIdMismatch {
                preset: "base",
                preset_chain_id: 8453,
                given: 10,
            })
        ));
        assert!(matches!(
            err(&["--network=base", "--p2p.peers.lo=31"]),
            CliError::Config(ConfigError::PeersLoAboveHi { lo: 31, hi: 30 })
        ));
        assert!(matches!(
            err(&["--network=base", "--p2p.peers.lo=1", "--p2p.peers.hi=257"]),
            CliError::Config(ConfigError::PeersHiAboveMax { hi: 257, max: 256 })
        ));
        assert!(matches!(
            err(&["--network=base", "--p2p.ban.threshold=NaN"]),
            CliError::Config(ConfigError::BanThreshold(_))
        ));
        assert!(matches!(
            err(&["--network=base", "--rpc.vhosts=localhost,localhost:9545"]),
            CliError::Config(ConfigError::RpcVhost { index: 1, .. })
        ));
        assert!(matches!(
            err(&[
                "--network=base",
                "--p2p.bootnodes",
                &format!("{},enode://zz@1.2.3.4:1", OP_NODE_BOOTNODES[0])
            ]),
            CliError::Config(ConfigError::Bootnode { index: 1, .. })
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
                CliError::Config(ConfigError::StaticPeer {
                    index: 0, reason, ..
                }) => assert_eq!(reason, want),
                other => panic!("{entry}: {other:?}"),
            }
        }
        assert!(matches!(
            err(&["--network=base", "--p2p.static", "not-a-multiaddr"]),
            CliError::Config(ConfigError::StaticPeerAddr { index: 0, .. })
        ));
        // Blank list entries (a trailing comma) are dropped before the builder sees them.
        assert!(matches!(
            err(&["--network=base", "--p2p.static", ",not-a-multiaddr"]),
            CliError::Config(ConfigError::StaticPeerAddr { index: 0, .. })
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
        #[cfg(unix)]
        {
            // A key file others may read is refused (tested in the data dir's tests).
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
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
            CliError::Config(ConfigError::StaticPeer { .. })
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

    /// `--l1` and its siblings reach the builder; the preset gives the SystemConfig and the
    /// L1 chain id; a custom chain needs both; bad values are typed errors.
    #[test]
    fn l1_flags_reach_the_config() {
        use op_p2p_node::l1_signer::{DEFAULT_L1_CONFS, DEFAULT_RELOAD_INTERVAL};
        let a = parse(&[]);
        assert_eq!(a.l1.l1_url, None);
        assert_eq!(a.l1.l1_reload_interval, DEFAULT_RELOAD_INTERVAL);
        assert_eq!(a.l1.l1_confs, DEFAULT_L1_CONFS);
        assert!(
            node_config(&parse(&["--network=base"]), SECRET)
                .unwrap()
                .l1
                .is_none()
        );

        let c = node_config(
            &parse(&["--network=op-sepolia", "--l1", "http://127.0.0.1:8545"]),
            SECRET,
        )
        .unwrap();
        let l1 = c.l1.unwrap();
        assert_eq!(
            (l1.endpoint.host(), l1.endpoint.port()),
            ("127.0.0.1", 8545)
        );
        assert_eq!(l1.system_config, OP_SEPOLIA.l1().unwrap().system_config);
        assert_eq!(l1.chain_id, 11_155_111);
        assert_eq!(
            (l1.reload_interval, l1.confs),
            (DEFAULT_RELOAD_INTERVAL, DEFAULT_L1_CONFS)
        );

        let c = node_config(
            &parse(&[
                "--chain-id=901",
                "--unsafe-signer",
                SIGNER,
                "--l1=http://l1:8545/rpc",
                "--rollup.system-config",
                SIGNER,
                "--l1.chain-id=900",
                "--l1.runtime-config-reload-interval=30s",
                "--verifier.l1-confs=0",
            ]),
            SECRET,
        )
        .unwrap();
        let l1 = c.l1.unwrap();
        assert_eq!(l1.system_config, SIGNER.parse::<Address>().unwrap());
        assert_eq!((l1.chain_id, l1.confs), (900, 0));
        assert_eq!(l1.reload_interval, Duration::from_secs(30));

        let custom = [
            "--chain-id=901",
            "--unsafe-signer",
            SIGNER,
            "--l1=http://l1:8545",
        ];
        type Check = fn(&ConfigError) -> bool;
        let cases: [(&[&str], Check); 6] = [
            (&custom, |e| {
                matches!(e, ConfigError::NoSystemConfig { chain_id: 901 })
            }),
            (&["--network=base", "--l1=https://l1"], |e| {
                matches!(e, ConfigError::L1Url { .. })
            }),
            (
                &["--network=base", "--l1=http://l1", "--l1.chain-id=5"],
                |e| matches!(e, ConfigError::L1ChainIdMismatch { given: 5, .. }),
            ),
            (
                &["--network=base", "--l1=http://l1", "--l1.chain-id=0"],
                |e| matches!(e, ConfigError::L1ChainIdMismatch { given: 0, .. }),
            ),
            (
                &[
                    "--network=base",
                    "--l1=http://l1",
                    "--l1.runtime-config-reload-interval=500ms",
                ],
                |e| matches!(e, ConfigError::L1ReloadInterval(_)),
            ),
            (
                &[
                    "--network=base",
                    "--l1=http://l1",
                    "--verifier.l1-confs=100000",
                ],
                |e| matches!(e, ConfigError::L1Confs(100_000)),
            ),
        ];
        for (flags, want) in cases {
            match node_config(&parse(flags), SECRET) {
                Err(CliError::Config(e)) => assert!(want(&e), "{flags:?}: {e}"),
                other => panic!("{flags:?}: {other:?}"),
            }
        }
        let mut with_sc = custom.to_vec();
        with_sc.extend(["--rollup.system-config", SIGNER]);
        assert!(matches!(
            node_config(&parse(&with_sc), SECRET),
            Err(CliError::Config(ConfigError::NoL1ChainId { chain_id: 901 }))
        ));
    }

    // ---- operator flags ----

    #[test]
    fn operator_flags_parse_and_reach_the_config() {
        let d = parse(&[]);
        assert_eq!(d.bootnodes_file, None);
        assert_eq!(d.gossip_timestamp_threshold, Duration::from_secs(60));
        let c = node_config(&parse(&["--network=base"]), SECRET).unwrap();
        assert_eq!(c.core.validator.max_past_secs, 60, "op-node's default");
        let c = node_config(
            &parse(&["--network=base", "--p2p.gossip.timestamp.threshold=2m30s"]),
            SECRET,
        )
        .unwrap();
        assert_eq!(c.core.validator.max_past_secs, 150);
        assert!(try_parse(&["--p2p.gossip.timestamp.threshold=60"]).is_err());
        assert!(matches!(
            err(&["--network=base", "--p2p.gossip.timestamp.threshold=500ms"]),
            CliError::Config(ConfigError::TimestampThreshold(_))
        ));

        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("boot.txt");
        std::fs::write(&file, format!("# mine\n{}\n", OP_NODE_BOOTNODES[4])).unwrap();
        let f = file.to_str().unwrap();
        let c = node_config(
            &parse(&["--network=base", "--p2p.bootnodes-file", f]),
            SECRET,
        )
        .unwrap();
        assert_eq!(
            c.bootnodes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [OP_NODE_BOOTNODES[4]],
            "the file replaces the preset's list"
        );
        let c = node_config(
            &parse(&[
                "--network=base",
                "--p2p.bootnodes",
                OP_NODE_BOOTNODES[0],
                "--p2p.bootnodes-file",
                f,
            ]),
            SECRET,
        )
        .unwrap();
        assert_eq!(c.bootnodes.len(), 2, "flags first, then the file");
        std::fs::write(&file, "enode://nope\n").unwrap();
        match err(&["--network=base", "--p2p.bootnodes-file", f]) {
            CliError::Config(e @ ConfigError::BootnodesFile(_)) => {
                assert!(e.to_string().contains("line 1"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }
}
