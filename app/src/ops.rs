//! Operator commands around discovery: `op-p2p bootnode` (a discovery-only node), `op-p2p enr`
//! (the record a key and flags give, no sockets) and `op-p2p bootnodes check` (decode, chain
//! check and discv5 probe of a bootnode list).
//!
//! The key is kept as `op-p2p node` keeps it (see [`crate::cli`]): `--p2p.priv.path`, else
//! `<datadir>/p2p_priv.txt`; so a bootnode's record is stable across restarts, and `op-p2p enr`
//! with the same data dir shows the same node id.

// Flag doc comments are clap's `--help` text.
#![allow(rustdoc::invalid_html_tags)]

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use futures::StreamExt;
use op_p2p_core::alloy_primitives::hex;
use op_p2p_core::discovery::{Bootnode, BootnodeError, OpStackEntry};
use op_p2p_core::presets::{OP_NODE_BOOTNODES, Preset};
use op_p2p_node::bootnodes_file::{BootnodesFileError, read_bootnodes_file};
use op_p2p_node::datadir::{self, DataDir, DataDirError};
use op_p2p_node::discovery::{Discovery, DiscoveryConfig, DiscoveryError, local_record};
use op_p2p_node::probe::{ProbeOutcome, probe_bootnodes};

use crate::cli::parse_go_duration;

/// Longest entry text shown in a table or error.
const MAX_SHOWN: usize = 48;

/// The identity and chain flags `bootnode` and `enr` share with `node`.
#[derive(Debug, Clone, Args)]
pub struct IdentityArgs {
    /// Network preset (op-mainnet, base, op-sepolia, base-sepolia): the chain id of the
    /// record's `opstack` entry [or --chain-id].
    #[arg(long, env = "OP_P2P_NETWORK")]
    pub network: Option<String>,
    /// L2 chain id for the `opstack` entry (must match --network's if both are given).
    #[arg(long, env = "OP_P2P_CHAIN_ID")]
    pub chain_id: Option<u64>,
    /// IP to bind discv5 (UDP) to.
    #[arg(long = "p2p.listen.ip", env = "OP_P2P_LISTEN_IP", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub listen_ip: IpAddr,
    /// IP address to advertise in the record (e.g. the public IP behind NAT).
    #[arg(long = "p2p.advertise.ip", env = "OP_P2P_ADVERTISE_IP")]
    pub advertise_ip: Option<IpAddr>,
    /// The node key file (op-node's format) [default: <datadir>/p2p_priv.txt].
    #[arg(long = "p2p.priv.path", env = "OP_P2P_PRIV_PATH")]
    pub priv_path: Option<PathBuf>,
    /// Directory holding the node key (as `op-p2p node --datadir`).
    #[arg(long, env = "OP_P2P_DATADIR")]
    pub datadir: Option<PathBuf>,
}

/// `op-p2p bootnode`: run discv5 only.
#[derive(Debug, Clone, Args)]
pub struct BootnodeArgs {
    /// The key, chain and address flags.
    #[command(flatten)]
    pub id: IdentityArgs,
    /// UDP port for discv5; 0 picks a free one.
    #[arg(
        long = "p2p.listen.udp",
        env = "OP_P2P_LISTEN_UDP_PORT",
        default_value_t = 9222
    )]
    pub listen_udp: u16,
    /// Comma-separated bootnodes of its own (enr: or enode://) [default: the preset's list, or
    /// op-node's without --network].
    #[arg(
        long = "p2p.bootnodes",
        env = "OP_P2P_BOOTNODES",
        value_delimiter = ','
    )]
    pub bootnodes: Vec<String>,
    /// File of bootnodes, one per line (# comments allowed); added after --p2p.bootnodes.
    #[arg(long = "p2p.bootnodes-file", env = "OP_P2P_BOOTNODES_FILE")]
    pub bootnodes_file: Option<PathBuf>,
}

/// `op-p2p enr`: print the record a key and flags give.
#[derive(Debug, Clone, Args)]
pub struct EnrArgs {
    /// The key, chain and address flags.
    #[command(flatten)]
    pub id: IdentityArgs,
    /// TCP (libp2p) port the record carries.
    #[arg(
        long = "p2p.listen.tcp",
        env = "OP_P2P_LISTEN_TCP_PORT",
        default_value_t = 9222
    )]
    pub listen_tcp: u16,
    /// UDP (discv5) port the record carries [default: the TCP port].
    #[arg(long = "p2p.listen.udp", env = "OP_P2P_LISTEN_UDP_PORT")]
    pub listen_udp: Option<u16>,
    /// The record `op-p2p bootnode` advertises: discovery only, no TCP port.
    #[arg(long)]
    pub bootnode: bool,
    /// Print a JSON object (enr, node_id, peer_id, chain_id, ports) instead of the record.
    #[arg(long)]
    pub json: bool,
}

/// `op-p2p bootnodes …`.
#[derive(Debug, Subcommand)]
pub enum BootnodesCommand {
    /// Decode every bootnode, flag wrong-chain records, ping each over discv5 and print a
    /// table; exits non-zero when none is usable.
    Check(CheckArgs),
}

/// `op-p2p bootnodes check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Network preset: the chain records must advertise, and the list checked when no
    /// --p2p.bootnodes or --p2p.bootnodes-file is given.
    #[arg(long, env = "OP_P2P_NETWORK")]
    pub network: Option<String>,
    /// The chain records must advertise (instead of, or equal to, --network's).
    #[arg(long, env = "OP_P2P_CHAIN_ID")]
    pub chain_id: Option<u64>,
    /// Comma-separated bootnodes to check (enr: or enode://).
    #[arg(
        long = "p2p.bootnodes",
        env = "OP_P2P_BOOTNODES",
        value_delimiter = ','
    )]
    pub bootnodes: Vec<String>,
    /// File of bootnodes to check, one per line (# comments allowed).
    #[arg(long = "p2p.bootnodes-file", env = "OP_P2P_BOOTNODES_FILE")]
    pub bootnodes_file: Option<PathBuf>,
    /// How long each bootnode has to answer (Go duration, 100ms to 1m).
    #[arg(long, default_value = "5s", value_parser = check_timeout)]
    pub timeout: Duration,
    /// IP the probing discv5 node binds (a free UDP port).
    #[arg(long = "listen-ip", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub listen_ip: IpAddr,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn check_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_go_duration(s)?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(60) {
        return Err(format!("timeout {d:?} is outside 100ms..=1m"));
    }
    Ok(d)
}

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// `--network` is not a preset name.
    #[error("unknown network {0:?}; expected one of op-mainnet, base, op-sepolia, base-sepolia")]
    UnknownNetwork(String),
    /// No chain, a `--chain-id` that contradicts `--network`, or chain id 0 (the builder's
    /// rule, [`op_p2p_node::resolve_chain_id`]).
    #[error(transparent)]
    Chain(op_p2p_node::ConfigError),
    /// `op-p2p enr` has no stored key to read.
    #[error("no node key: give --datadir or --p2p.priv.path")]
    NoKey,
    /// `op-p2p enr` needs a fixed UDP port (0 is only picked when a socket opens).
    #[error("the record needs a fixed UDP port; 0 is picked when discv5 starts")]
    PortZero,
    /// The key or data dir failed.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The bootnodes file failed.
    #[error(transparent)]
    BootnodesFile(#[from] BootnodesFileError),
    /// A bootnode of `op-p2p bootnode` does not parse.
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
    /// discv5 could not start.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// `bootnodes check` got an empty list.
    #[error("no bootnodes to check: give --network, --p2p.bootnodes or --p2p.bootnodes-file")]
    NothingToCheck,
    /// `bootnodes check` found no usable bootnode.
    #[error("none of the {checked} bootnodes is usable")]
    NoneUsable {
        /// How many were checked.
        checked: usize,
    },
    /// The probe did not finish in time (a bug: every step has its own deadline).
    #[error("the probe did not finish within {0:?}")]
    ProbeStuck(Duration),
    /// The signal handler could not be installed.
    #[error("install signal handler")]
    Signal(#[source] std::io::Error),
    /// Our own record did not parse back (a bug).
    #[error("our record {0:?} does not parse back")]
    OwnRecord(String),
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(MAX_SHOWN) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// The chain: `--network`'s, `--chain-id`, both equal, or an error.
fn chain(
    network: Option<&str>,
    chain_id: Option<u64>,
) -> Result<(u64, Option<&'static Preset>), OpsError> {
    let preset = match network {
        Some(n) => {
            Some(Preset::by_name(n.trim()).ok_or_else(|| OpsError::UnknownNetwork(shorten(n)))?)
        }
        None => None,
    };
    let id = op_p2p_node::resolve_chain_id(preset, chain_id).map_err(OpsError::Chain)?;
    Ok((id, preset))
}

fn key_path(id: &IdentityArgs) -> Option<PathBuf> {
    id.priv_path
        .clone()
        .or_else(|| id.datadir.as_ref().map(|d| d.join(datadir::KEY_FILE)))
}

// ---- op-p2p enr ----

/// What `op-p2p enr` prints: the record and what it says.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnrInfo {
    /// The record, `enr:…`.
    pub enr: String,
    /// The discv5 node id, hex.
    pub node_id: String,
    /// The libp2p peer id of the same key.
    pub peer_id: String,
    /// The `opstack` chain id.
    pub chain_id: u64,
    /// The TCP port, absent for a bootnode's record.
    pub tcp: Option<u16>,
    /// The UDP port.
    pub udp: u16,
    /// The IP, if the record has one (none when listening on every interface with nothing
    /// advertised: discv5 learns it from peers).
    pub ip: Option<IpAddr>,
}

/// Computes `op-p2p enr`'s record: reads the stored key (never creates one, takes no lock:
/// a running node may hold the data dir) and builds the record discovery would start with.
pub fn enr(args: &EnrArgs) -> Result<EnrInfo, OpsError> {
    let (chain_id, _) = chain(args.id.network.as_deref(), args.id.chain_id)?;
    let path = key_path(&args.id).ok_or(OpsError::NoKey)?;
    let keypair = datadir::read_key_file(&path)?;
    let tcp = if args.bootnode { 0 } else { args.listen_tcp };
    let udp = args
        .listen_udp
        .filter(|&p| p != 0)
        .unwrap_or(args.listen_tcp);
    if udp == 0 {
        return Err(OpsError::PortZero);
    }
    let config = DiscoveryConfig {
        keypair: keypair.clone(),
        chain_id,
        listen_ip: args.id.listen_ip,
        udp_port: udp,
        advertise_ip: args.id.advertise_ip,
        tcp_port: tcp,
        bootnodes: Vec::new(),
        seeds: Vec::new(),
        public_only: false,
    };
    let text = local_record(&config, udp)?;
    info_of(&text, keypair.public().to_peer_id().to_string(), chain_id)
}

fn info_of(text: &str, peer_id: String, chain_id: u64) -> Result<EnrInfo, OpsError> {
    let record = match Bootnode::<op_p2p_core::discovery::DefaultKey>::parse(text) {
        Ok(Bootnode::Enr(r)) => r,
        _ => return Err(OpsError::OwnRecord(shorten(text))),
    };
    Ok(EnrInfo {
        enr: text.to_owned(),
        node_id: hex::encode(record.node_id().raw()),
        peer_id,
        chain_id,
        tcp: record.tcp4().or(record.tcp6()),
        udp: record.udp4().or(record.udp6()).unwrap_or_default(),
        ip: record
            .ip4()
            .map(IpAddr::V4)
            .or(record.ip6().map(IpAddr::V6)),
    })
}

// ---- op-p2p bootnode ----

/// Runs `op-p2p bootnode` until SIGINT or SIGTERM: discv5 only (no libp2p, no gossip), its
/// record printed on stdout once it listens. The data dir stays locked while it runs.
pub async fn run_bootnode(args: &BootnodeArgs, fresh_secret: [u8; 32]) -> Result<(), OpsError> {
    let (chain_id, preset) = chain(args.id.network.as_deref(), args.id.chain_id)?;
    let mut entries: Vec<String> = args
        .bootnodes
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(file) = &args.bootnodes_file {
        entries.extend(read_bootnodes_file(file)?.into_iter().map(|l| l.text));
    } else if entries.is_empty() {
        entries = preset
            .map_or(OP_NODE_BOOTNODES, |p| p.bootnodes)
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    }
    let bootnodes = entries
        .iter()
        .enumerate()
        .map(|(index, s)| {
            Bootnode::parse(s).map_err(|source| OpsError::Bootnode {
                index,
                input: shorten(s),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The key: as `op-p2p node` keeps it; the data dir is held (locked) while we run.
    let (_dir, keypair) = match (&args.id.datadir, &args.id.priv_path) {
        (Some(dir), explicit) => {
            let dir = DataDir::open(dir)?;
            let key = dir.load_or_create_key(explicit.as_deref(), fresh_secret)?;
            (Some(dir), key)
        }
        (None, Some(path)) => (None, datadir::load_or_create_key_file(path, fresh_secret)?),
        (None, None) => {
            tracing::warn!(
                "no --datadir or --p2p.priv.path: using a new node key, so a new record each start"
            );
            let key =
                datadir::keypair_from_secret(fresh_secret).map_err(|source| DataDirError::Key {
                    path: PathBuf::from("<memory>"),
                    source,
                })?;
            (None, key)
        }
    };
    let peer_id = keypair.public().to_peer_id().to_string();
    let config = DiscoveryConfig {
        keypair,
        chain_id,
        listen_ip: args.id.listen_ip,
        udp_port: args.listen_udp,
        advertise_ip: args.id.advertise_ip,
        tcp_port: 0,
        bootnodes,
        seeds: Vec::new(),
        // A bootnode on a public or unspecified address keeps the network's private
        // addresses out of its table (and so out of its answers); one on loopback or a
        // private address serves a local network.
        public_only: args.id.listen_ip.is_unspecified()
            || op_p2p_core::peers::netpolicy::non_public(args.id.listen_ip).is_none(),
    };
    // Handlers first: a SIGTERM right after the record is printed must stop us cleanly.
    let signals = crate::run::Signals::install().map_err(OpsError::Signal)?;
    let runtime = op_p2p_tokio::TokioRuntime;
    let (tx, mut rx) = futures::channel::mpsc::channel(op_p2p_node::discovery::DISCOVERED_QUEUE);
    let discovery = Discovery::start(&runtime, config, tx).await?;
    let info = info_of(&discovery.enr, peer_id, chain_id)?;
    println!("{}", info.enr);
    tracing::info!(enr = %info.enr, node_id = %info.node_id, peer_id = %info.peer_id, udp = info.udp, chain_id, "bootnode running");
    // Records discovery meets: counted, nothing to dial.
    let counter = tokio::spawn(async move {
        let mut seen = 0u64;
        while rx.next().await.is_some() {
            seen += 1;
            tracing::debug!(seen, "record discovered");
        }
    });
    let stopped = signals.wait().await.map_err(OpsError::Signal);
    tracing::info!("stopping");
    discovery.stop(&runtime).await;
    counter.abort();
    stopped
}

// ---- op-p2p bootnodes check ----

/// One row of `op-p2p bootnodes check`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckRow {
    /// Where the entry came from: `preset:<name>`, `flag`, or `<file>:<line>`.
    pub source: String,
    /// The entry (shortened).
    pub entry: String,
    /// `enr`, `enode` or `invalid`.
    pub kind: &'static str,
    /// The discv5 node id, hex.
    pub node_id: Option<String>,
    /// The UDP address probed.
    pub addr: Option<String>,
    /// The record's chain: a chain id, `unknown` (an enode has no record), `none` (no
    /// `opstack` entry) or `invalid` (an undecodable one).
    pub chain: String,
    /// The chain of the record the node returned over the wire, if it did.
    pub live_chain: Option<String>,
    /// The EIP-2124 fork id of the record's `eth` entry (`0x<hash>/<next>`), if any.
    pub fork_id: Option<String>,
    /// Whether it answered over discv5.
    pub reachable: bool,
    /// Round trip, milliseconds.
    pub rtt_ms: Option<f64>,
    /// `usable`, `wrong-chain`, `unreachable` or `invalid`.
    pub status: &'static str,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// `op-p2p bootnodes check`'s result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    /// The chain the records must advertise, if one was given.
    pub chain_id: Option<u64>,
    /// How many rows are usable.
    pub usable: usize,
    /// One row per entry, in order.
    pub rows: Vec<CheckRow>,
}

/// A record's chain as shown, and its chain id if it decodes.
fn record_chain<K: op_p2p_core::discovery::enr_crate::EnrKey>(
    r: &op_p2p_core::discovery::enr_crate::Enr<K>,
) -> (String, Option<u64>) {
    match OpStackEntry::from_enr(r) {
        None => ("none".into(), None),
        Some(Err(_)) => ("invalid".into(), None),
        Some(Ok(e)) => (e.chain_id.to_string(), Some(e.chain_id)),
    }
}

/// The EIP-2124 fork id of an `eth` ENR entry: `[[fork_hash (4 bytes), fork_next]]`.
pub fn eth_fork_id(raw: &[u8]) -> Option<String> {
    /// The payload of a short RLP list (all an `eth` entry needs) and what follows it.
    fn list(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let (&h, rest) = b.split_first()?;
        let len = usize::from(h.checked_sub(0xc0).filter(|l| *l <= 55)?);
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    /// A short RLP byte string and what follows it.
    fn string(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let (&h, rest) = b.split_first()?;
        match h {
            0..=0x7f => Some((&b[..1], rest)),
            0x80..=0xb7 => {
                let len = usize::from(h - 0x80);
                (rest.len() >= len).then(|| rest.split_at(len))
            }
            _ => None,
        }
    }
    let (outer, _) = list(raw)?;
    let (pair, _) = list(outer)?;
    let (hash, rest) = string(pair)?;
    let (next, _) = string(rest)?;
    if hash.len() != 4 || next.len() > 8 {
        return None;
    }
    let next = next.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
    Some(format!("0x{}/{next}", hex::encode(hash)))
}

/// Gathers the entries (`--p2p.bootnodes`, then the file; else the preset's list), probes
/// them and builds the report. Errors only for bad arguments or a probe that cannot start;
/// a list with nothing usable is a report with `usable == 0`.
pub async fn check(args: &CheckArgs) -> Result<CheckReport, OpsError> {
    let (chain_id, entries) = check_entries(args)?;
    check_entries_probed(args, chain_id, entries).await
}

/// One entry to check: where it came from, and its text.
type Entry = (String, String);

/// The chain to check against and the `(source, entry)` list: `--p2p.bootnodes`, then the
/// file's lines, else the preset's list.
fn check_entries(args: &CheckArgs) -> Result<(Option<u64>, Vec<Entry>), OpsError> {
    let expected = match (args.network.as_deref(), args.chain_id) {
        (None, None) => None,
        (n, c) => Some(chain(n, c)?),
    };
    let mut entries: Vec<Entry> = Vec::new();
    for s in args
        .bootnodes
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        entries.push(("flag".into(), s.to_owned()));
    }
    if let Some(file) = &args.bootnodes_file {
        for l in read_bootnodes_file(file)? {
            entries.push((format!("{}:{}", file.display(), l.line), l.text));
        }
    }
    if entries.is_empty()
        && let Some((_, Some(p))) = expected
    {
        entries = p
            .bootnodes
            .iter()
            .map(|s| (format!("preset:{}", p.name), (*s).to_owned()))
            .collect();
    }
    if entries.is_empty() {
        return Err(OpsError::NothingToCheck);
    }
    Ok((expected.map(|(id, _)| id), entries))
}

async fn check_entries_probed(
    args: &CheckArgs,
    chain_id: Option<u64>,
    entries: Vec<Entry>,
) -> Result<CheckReport, OpsError> {
    let parsed: Vec<Result<Bootnode, BootnodeError>> =
        entries.iter().map(|(_, s)| Bootnode::parse(s)).collect();
    let valid: Vec<Bootnode> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    let limit = args.timeout * 2 + Duration::from_secs(5);
    let outcomes =
        tokio::time::timeout(limit, probe_bootnodes(args.listen_ip, &valid, args.timeout))
            .await
            .map_err(|_| OpsError::ProbeStuck(limit))??;
    let mut outcomes = outcomes.into_iter();
    let mut rows = Vec::with_capacity(entries.len());
    for ((source, text), parsed) in entries.iter().zip(parsed) {
        let entry = shorten(text);
        let b = match parsed {
            Err(e) => {
                rows.push(CheckRow {
                    source: source.clone(),
                    entry,
                    kind: "invalid",
                    node_id: None,
                    addr: None,
                    chain: "invalid".into(),
                    live_chain: None,
                    fork_id: None,
                    reachable: false,
                    rtt_ms: None,
                    status: "invalid",
                    error: Some(e.to_string()),
                });
                continue;
            }
            Ok(b) => b,
        };
        let outcome = outcomes.next().unwrap_or_else(|| ProbeOutcome {
            addr: None,
            reachable: false,
            rtt: None,
            live_record: None,
            error: Some("not probed".into()),
        });
        let (kind, (chain, record_chain_id), fork_id) = match &b {
            Bootnode::Enr(r) => (
                "enr",
                record_chain(r),
                r.get_raw_rlp("eth").and_then(eth_fork_id),
            ),
            Bootnode::Enode(_) => ("enode", ("unknown".to_owned(), None), None),
        };
        let live = outcome.live_record.as_deref().and_then(|t| {
            match Bootnode::<op_p2p_core::discovery::DefaultKey>::parse(t) {
                Ok(Bootnode::Enr(r)) => Some(record_chain(&r)),
                _ => None,
            }
        });
        let wrong =
            |id: Option<u64>| matches!((chain_id, id), (Some(want), Some(got)) if want != got);
        let wrong_chain = wrong(record_chain_id) || wrong(live.as_ref().and_then(|l| l.1));
        let status = if wrong_chain {
            "wrong-chain"
        } else if outcome.reachable {
            "usable"
        } else {
            "unreachable"
        };
        let mut error = outcome.error;
        if wrong_chain {
            let want = chain_id.unwrap_or_default();
            error = Some(format!("advertises another chain than {want}"));
        }
        rows.push(CheckRow {
            source: source.clone(),
            entry,
            kind,
            node_id: Some(hex::encode(b.node_id().raw())),
            addr: outcome.addr.map(|a| a.to_string()),
            chain,
            live_chain: live.map(|l| l.0),
            fork_id,
            reachable: outcome.reachable,
            rtt_ms: outcome.rtt.map(|d| (d.as_secs_f64() * 1e5).round() / 100.0),
            status,
            error,
        });
    }
    let usable = rows.iter().filter(|r| r.status == "usable").count();
    Ok(CheckReport {
        chain_id,
        usable,
        rows,
    })
}

/// The report as a table.
pub fn render(report: &CheckReport) -> String {
    let mut out = String::new();
    let header = [
        "#",
        "SOURCE",
        "KIND",
        "ADDRESS",
        "CHAIN",
        "LIVE",
        "FORK ID",
        "REACHABLE",
        "RTT",
        "STATUS",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
    for (i, r) in report.rows.iter().enumerate() {
        lines.push(vec![
            i.to_string(),
            r.source.clone(),
            r.kind.to_owned(),
            r.addr.clone().unwrap_or_else(|| "-".into()),
            r.chain.clone(),
            r.live_chain.clone().unwrap_or_else(|| "-".into()),
            r.fork_id.clone().unwrap_or_else(|| "-".into()),
            if r.reachable { "yes" } else { "no" }.to_owned(),
            r.rtt_ms
                .map_or_else(|| "-".into(), |ms| format!("{ms:.1}ms")),
            r.status.to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    for (i, r) in report.rows.iter().enumerate() {
        if let Some(e) = &r.error {
            let _ = writeln!(out, "#{i}: {e}");
        }
    }
    let chain = report
        .chain_id
        .map_or_else(|| "any chain".to_owned(), |c| format!("chain {c}"));
    let _ = writeln!(
        out,
        "{} of {} usable for {chain}",
        report.usable,
        report.rows.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use op_p2p_node::ConfigError;

    #[test]
    fn eth_fork_ids_decode() {
        // Mainnet's genesis fork id: hash fc64ec04, next 1150000 (EIP-2124 vectors).
        let raw = hex::decode("cac984fc64ec0483118c30").unwrap();
        assert_eq!(eth_fork_id(&raw).as_deref(), Some("0xfc64ec04/1150000"));
        let raw = hex::decode("c7c684fc64ec0480").unwrap();
        assert_eq!(eth_fork_id(&raw).as_deref(), Some("0xfc64ec04/0"));
        for bad in ["", "c0", "c1c0", "c6c584fc64ec04", "c5c483fc64ec", "c2c1ff"] {
            assert_eq!(eth_fork_id(&hex::decode(bad).unwrap()), None, "{bad}");
        }
    }

    #[test]
    fn the_chain_comes_from_the_network_or_the_id() {
        assert_eq!(chain(Some("base"), None).unwrap().0, 8453);
        assert_eq!(chain(None, Some(901)).unwrap(), (901, None));
        assert_eq!(chain(Some("base"), Some(8453)).unwrap().0, 8453);
        assert!(matches!(
            chain(Some("base"), Some(10)),
            Err(OpsError::Chain(ConfigError::ChainIdMismatch {
                given: 10,
                ..
            }))
        ));
        assert!(matches!(
            chain(None, None),
            Err(OpsError::Chain(ConfigError::NoChain))
        ));
        assert!(matches!(
            chain(None, Some(0)),
            Err(OpsError::Chain(ConfigError::ZeroChainId))
        ));
        assert!(matches!(
            chain(Some("goerli"), None),
            Err(OpsError::UnknownNetwork(_))
        ));
    }

    #[test]
    fn check_lists_come_from_flags_then_the_file_else_the_preset() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Wrap {
            #[command(flatten)]
            a: CheckArgs,
        }
        let args = |extra: &[&str]| {
            Wrap::try_parse_from(std::iter::once("check").chain(extra.iter().copied()))
                .unwrap()
                .a
        };
        let (chain_id, preset) = check_entries(&args(&["--network", "base-sepolia"])).unwrap();
        assert_eq!(chain_id, Some(84_532));
        assert_eq!(
            preset.len(),
            op_p2p_core::presets::BASE_SEPOLIA.bootnodes.len()
        );
        assert!(preset.iter().all(|(src, _)| src == "preset:base-sepolia"));

        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f.txt");
        std::fs::write(&file, "# x\n\nenr:one\n").unwrap();
        let f = file.to_str().unwrap();
        let (chain_id, list) = check_entries(&args(&[
            "--network=base",
            "--p2p.bootnodes",
            "enode://a, ,enode://b",
            "--p2p.bootnodes-file",
            f,
        ]))
        .unwrap();
        assert_eq!(chain_id, Some(8453));
        let got: Vec<(&str, &str)> = list.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let line3 = format!("{f}:3");
        assert_eq!(
            got,
            [
                ("flag", "enode://a"),
                ("flag", "enode://b"),
                (line3.as_str(), "enr:one")
            ]
        );
        // No chain is fine (nothing is then "wrong"); no list is not.
        assert_eq!(
            check_entries(&args(&["--p2p.bootnodes", "enr:x"]))
                .unwrap()
                .0,
            None
        );
        assert!(matches!(
            check_entries(&args(&[])),
            Err(OpsError::NothingToCheck)
        ));
        assert!(matches!(
            check_entries(&args(&["--chain-id", "901"])),
            Err(OpsError::NothingToCheck)
        ));
        assert!(matches!(
            check_entries(&args(&["--network=base", "--chain-id=10"])),
            Err(OpsError::Chain(ConfigError::ChainIdMismatch { .. }))
        ));
    }

    #[test]
    fn check_timeouts_are_bounded() {
        assert_eq!(check_timeout("2s"), Ok(Duration::from_secs(2)));
        for bad in ["0", "99ms", "61s", "5"] {
            assert!(check_timeout(bad).is_err(), "{bad}");
        }
    }
}
