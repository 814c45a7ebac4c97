//! `op-p2p node` with several chains in one process (issue 16):
//! `op-p2p node --network base --network op-mainnet …` or `op-p2p node --config chains.toml`.
//!
//! Every chain is parsed by the same clap arguments ([`NodeArgs`]) and built by the same
//! [`cli::node_config`] as a single node, so every single-chain flag works per chain and a bad
//! one gets the same error, prefixed with the chain's name:
//!
//! - the flags outside the chain tables (on the command line, or the file's top-level keys)
//!   apply to every chain; a chain's table overrides them (its keys are the flag names
//!   without `--`: `"p2p.listen.tcp" = 9300`, `network = "base"`, `"p2p.static" = ["…"]`);
//! - `--rpc.*` and `--metrics.*` outside the tables are the process's shared listeners
//!   ([`op_p2p_node::host`]: `POST /chain/<id>`, `/metrics` with `chain_id`, `/healthz`); a
//!   chain table's `"rpc.port"` gives that chain its own RPC port too; `metrics.*` and
//!   `events-json` belong to the process, not to a chain;
//! - a chain without its own `"p2p.listen.tcp"` gets the next port from the shared one (9222
//!   by default) that no other chain uses, TCP and UDP alike (0 stays 0: the OS picks); each
//!   chain's ports are logged at start;
//! - a chain without its own `datadir` uses `<datadir>/<chain name>`;
//! - refused before anything starts, naming the chain and the key: an unknown key or bad
//!   value, a chain given twice (name or chain id), two chains on one port, data dir or key
//!   file.
//!
//! A chain that then fails to start (a port in use, a locked or corrupt data dir) is logged
//! and listed as `failed` on `/healthz` while the others run; `--chains.require-all` (or
//! `"chains.require-all" = true` at the file's top level) refuses to run instead.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use futures::StreamExt;
use op_p2p_node::host::{Host, HostConfig, HostError};
use op_p2p_node::http::{VhostError, VirtualHosts};
use op_p2p_node::{NodeConfig, NodeHandle, SpawnError, SpawnOptions};
use op_p2p_tokio::TokioRuntime;

use crate::cli::{self, CliError, NodeArgs};

/// Largest chains file read, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The file's top-level table of chains: `[chain.<name>]`.
pub const CHAIN_TABLE: &str = "chain";

/// Keys that belong to the process, not to one chain.
const PROCESS_KEYS: [&str; 4] = [
    "metrics.enabled",
    "metrics.addr",
    "metrics.port",
    "events-json",
];

/// Why a several-chain `op-p2p node` could not be set up or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MultiError {
    /// The chains file could not be read.
    #[error("read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The chains file is larger than [`MAX_CONFIG_BYTES`].
    #[error("{path} is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The chains file is not TOML.
    #[error("{path} is not valid TOML")]
    Toml {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: toml_edit::TomlError,
    },
    /// A key outside the chain tables is refused.
    #[error("key {key:?}: {why}")]
    SharedKey {
        /// The key.
        key: String,
        /// Why.
        why: String,
    },
    /// A key of a chain is refused (its value, or a process-wide key in a chain table).
    #[error("chain {chain:?}: key {key:?}: {why}")]
    ChainKey {
        /// The chain.
        chain: String,
        /// The key.
        key: String,
        /// Why.
        why: String,
    },
    /// The shared flags do not parse (clap's message, naming the flag).
    #[error("shared flags: {0}")]
    SharedFlags(String),
    /// A chain's flags do not parse (clap's message, naming the key).
    #[error("chain {chain:?}: {message}")]
    ChainFlags {
        /// The chain.
        chain: String,
        /// clap's message.
        message: String,
    },
    /// A chain's settings are refused by the builder.
    #[error("chain {chain:?}")]
    ChainConfig {
        /// The chain.
        chain: String,
        /// Why.
        #[source]
        source: CliError,
    },
    /// Two chains have one name.
    #[error("chain {chain:?} is given twice")]
    DuplicateName {
        /// The name.
        chain: String,
    },
    /// Two chains have one chain id.
    #[error("chain {chain:?}: chain id {chain_id} is also chain {other:?}'s")]
    DuplicateChainId {
        /// The later chain.
        chain: String,
        /// The id.
        chain_id: u64,
        /// The earlier chain.
        other: String,
    },
    /// Two listeners would share a port.
    #[error("chain {chain:?}: key {key:?}: port {port} is also {other}")]
    PortClash {
        /// The chain.
        chain: String,
        /// Its key.
        key: String,
        /// The port.
        port: u16,
        /// Who else has it (`chain "x"'s "p2p.listen.tcp"`, `the shared "rpc.port"`).
        other: String,
    },
    /// Two chains would share a data dir.
    #[error("chain {chain:?}: key \"datadir\": {path} is also chain {other:?}'s data dir")]
    SharedDataDir {
        /// The later chain.
        chain: String,
        /// The directory.
        path: PathBuf,
        /// The earlier chain.
        other: String,
    },
    /// Two chains would share a key file (and so one identity).
    #[error("chain {chain:?}: key \"p2p.priv.path\": {path} is also chain {other:?}'s key file")]
    SharedKeyFile {
        /// The later chain.
        chain: String,
        /// The file.
        path: PathBuf,
        /// The earlier chain.
        other: String,
    },
    /// No free port above the shared one for a chain.
    #[error("chain {chain:?}: no free port from {base} upwards")]
    NoFreePort {
        /// The chain.
        chain: String,
        /// The shared port.
        base: u16,
    },
    /// No chain at all.
    #[error("no chains: give --network more than once, or --config with [chain.<name>] tables")]
    NoChains,
    /// A shared `--rpc.vhosts` entry is refused.
    #[error("key \"rpc.vhosts\": entry {index}")]
    Vhosts {
        /// The entry's position.
        index: usize,
        /// Why.
        #[source]
        source: VhostError,
    },
    /// The shared listeners could not start.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A chain failed to start and `--chains.require-all` is set.
    #[error("chain {chain:?} failed to start")]
    Spawn {
        /// The chain.
        chain: String,
        /// Why.
        #[source]
        source: SpawnError,
    },
    /// Every chain failed to start.
    #[error("no chain started")]
    NoneStarted,
    /// The signal handler could not be installed.
    #[error("install signal handler")]
    Signal(#[source] std::io::Error),
    /// No OS randomness for a chain's node key.
    #[error("OS randomness for a node key")]
    Random(#[source] getrandom::Error),
    /// The log flags do not parse.
    #[error("log flags: {0}")]
    LogFlags(String),
}

/// One chain as given: its name, its own flags (`--key=value`), and which keys it set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSpec {
    /// The chain's name (its table name, or the `--network` value).
    pub name: String,
    /// Its own flags, after the shared ones.
    pub argv: Vec<String>,
    /// The keys it set itself.
    pub keys: BTreeSet<String>,
}

/// What the command line asks for: the shared flags and the chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Flags for every chain and the shared listeners.
    pub shared: Vec<String>,
    /// The chains, in order.
    pub chains: Vec<ChainSpec>,
    /// Refuse to run unless every chain starts.
    pub require_all: bool,
}

/// One chain ready to spawn.
#[derive(Debug)]
pub struct Chain {
    /// Its name.
    pub name: String,
    /// Its node's configuration.
    pub config: NodeConfig,
}

/// Everything a several-chain `op-p2p node` runs.
#[derive(Debug)]
pub struct Plan {
    /// The shared listeners.
    pub host: HostConfig,
    /// The chains.
    pub chains: Vec<Chain>,
    /// Print events as JSON lines (each with `"chain"`).
    pub events_json: bool,
    /// Refuse to run unless every chain starts.
    pub require_all: bool,
    /// Chains whose data dir or key file could not be used (not with `require_all`): reported
    /// as failed while the others run.
    pub failed: Vec<(String, MultiError)>,
}

/// The `node` arguments parsed on their own (log flags allowed, as on the real command line);
/// a later flag overrides an earlier one, so a chain's own flags win over the shared ones.
#[derive(Debug, Parser)]
#[command(name = "op-p2p node", args_override_self = true)]
struct Wrap {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    _log: crate::logging::LogArgs,
}

/// If `argv` (the whole command line) is `op-p2p … node …` with `--config` or more than one
/// `--network`, the arguments around `node` (log flags and the node's); else `None` (the
/// single-node path).
pub fn intercept(argv: &[String]) -> Option<Vec<String>> {
    // The subcommand: the first word that is neither a flag nor a global log flag's value.
    let mut at = None;
    let mut i = 1;
    while i < argv.len() {
        match argv[i].as_str() {
            "--log.level" | "--log.format" => i += 2,
            a if a.starts_with('-') => i += 1,
            _ => {
                at = Some(i);
                break;
            }
        }
    }
    let at = at?;
    if argv[at] != "node" {
        return None;
    }
    let rest: Vec<String> = argv[1..at].iter().chain(&argv[at + 1..]).cloned().collect();
    let networks = rest
        .iter()
        .filter(|a| *a == "--network" || a.starts_with("--network="))
        .count();
    let config = rest
        .iter()
        .any(|a| a == "--config" || a.starts_with("--config="));
    (networks > 1 || config).then_some(rest)
}

/// Takes `--name value` / `--name=value` out of `args`, returning the values.
fn take_valued(args: &mut Vec<String>, name: &str) -> Result<Vec<String>, MultiError> {
    let mut out = Vec::new();
    let mut kept = Vec::with_capacity(args.len());
    let mut it = std::mem::take(args).into_iter();
    let eq = format!("{name}=");
    while let Some(a) = it.next() {
        if a == name {
            match it.next() {
                Some(v) => out.push(v),
                None => {
                    return Err(MultiError::SharedFlags(format!("{name} needs a value")));
                }
            }
        } else if let Some(v) = a.strip_prefix(&eq) {
            out.push(v.to_owned());
        } else {
            kept.push(a);
        }
    }
    *args = kept;
    Ok(out)
}

/// Takes `--name` / `--name=<bool>` out of `args`: whether it was set true.
fn take_flag(args: &mut Vec<String>, name: &str) -> Result<bool, MultiError> {
    let mut set = false;
    let eq = format!("{name}=");
    let mut bad = None;
    args.retain(|a| {
        if a == name {
            set = true;
            false
        } else if let Some(v) = a.strip_prefix(&eq) {
            match parse_bool(v) {
                Some(b) => set = b,
                None => bad = Some(v.to_owned()),
            }
            false
        } else {
            true
        }
    });
    match bad {
        Some(v) => Err(MultiError::SharedFlags(format!(
            "{name}: {v:?} is not a boolean"
        ))),
        None => Ok(set),
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// A chain name: 1–64 of `A-Z a-z 0-9 . _ -`, not `.` or `..` (it names a directory and a
/// URL path).
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One TOML value as a flag value: strings as they are, numbers and booleans as written,
/// arrays comma-joined; `None` for tables and dates.
fn flag_value(v: &toml_edit::Value) -> Option<String> {
    use toml_edit::Value as V;
    Some(match v {
        V::String(s) => s.value().clone(),
        V::Integer(i) => i.value().to_string(),
        V::Float(f) => f.value().to_string(),
        V::Boolean(b) => b.value().to_string(),
        V::Array(a) => {
            let parts: Option<Vec<String>> = a
                .iter()
                .map(|v| match v {
                    V::Array(_) | V::InlineTable(_) => None,
                    v => flag_value(v),
                })
                .collect();
            parts?.join(",")
        }
        V::Datetime(_) | V::InlineTable(_) => return None,
    })
}

/// Reads the node's arguments (without `node`): `--config` files, repeated `--network`s,
/// `--chains.require-all`, and the rest as shared flags.
pub fn request(mut args: Vec<String>) -> Result<Request, MultiError> {
    let files = take_valued(&mut args, "--config")?;
    let networks = take_valued(&mut args, "--network")?;
    let mut require_all = take_flag(&mut args, "--chains.require-all")?;
    let mut shared = args;
    let mut chains = Vec::new();
    for file in files {
        let (file_shared, file_chains, file_require) = read_file(Path::new(&file))?;
        // The command line's flags win over the file's top level.
        shared = file_shared.into_iter().chain(shared).collect();
        chains.extend(file_chains);
        require_all |= file_require;
    }
    for n in networks {
        chains.push(ChainSpec {
            name: n.clone(),
            argv: vec![format!("--network={n}")],
            keys: BTreeSet::from(["network".to_owned()]),
        });
    }
    Ok(Request {
        shared,
        chains,
        require_all,
    })
}

/// A chains file: its top-level flags, its chains, and its `chains.require-all`.
fn read_file(path: &Path) -> Result<(Vec<String>, Vec<ChainSpec>, bool), MultiError> {
    use std::io::Read;
    let read = |source| MultiError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(MultiError::TooLarge {
            path: path.to_owned(),
        });
    }
    let doc: toml_edit::DocumentMut = text.parse().map_err(|source| MultiError::Toml {
        path: path.to_owned(),
        source,
    })?;
    let mut shared = Vec::new();
    let mut chains = Vec::new();
    let mut require_all = false;
    for (key, item) in doc.as_table().iter() {
        if key == CHAIN_TABLE {
            let Some(table) = item.as_table_like() else {
                return Err(MultiError::SharedKey {
                    key: key.into(),
                    why: "must be a table of chains, [chain.<name>]".into(),
                });
            };
            for (name, chain) in table.iter() {
                chains.push(chain_spec(name, chain)?);
            }
            continue;
        }
        let Some(v) = item.as_value() else {
            return Err(MultiError::SharedKey {
                key: key.into(),
                why: "unknown table; chains go in [chain.<name>]".into(),
            });
        };
        if key == "chains.require-all" {
            require_all = v.as_bool().ok_or_else(|| MultiError::SharedKey {
                key: key.into(),
                why: "must be true or false".into(),
            })?;
            continue;
        }
        if key == "network" || key == "config" {
            return Err(MultiError::SharedKey {
                key: key.into(),
                why: "belongs in a [chain.<name>] table".into(),
            });
        }
        let value = flag_value(v).ok_or_else(|| MultiError::SharedKey {
            key: key.into(),
            why: "must be a string, number, boolean or array".into(),
        })?;
        shared.push(format!("--{key}={value}"));
    }
    Ok((shared, chains, require_all))
}

fn chain_spec(name: &str, item: &toml_edit::Item) -> Result<ChainSpec, MultiError> {
    let bad = |key: &str, why: &str| MultiError::ChainKey {
        chain: name.into(),
        key: key.into(),
        why: why.into(),
    };
    if !valid_name(name) {
        return Err(bad(
            &format!("{CHAIN_TABLE}.{name}"),
            "a chain name is 1-64 of A-Z a-z 0-9 . _ -",
        ));
    }
    let table = item
        .as_table_like()
        .ok_or_else(|| bad(&format!("{CHAIN_TABLE}.{name}"), "must be a table"))?;
    let mut argv = Vec::new();
    let mut keys = BTreeSet::new();
    for (key, v) in table.iter() {
        if PROCESS_KEYS.contains(&key) || key == "config" || key == "chains.require-all" {
            return Err(bad(
                key,
                "belongs to the process: set it outside the chain tables",
            ));
        }
        let value = v
            .as_value()
            .and_then(flag_value)
            .ok_or_else(|| bad(key, "must be a string, number, boolean or array"))?;
        argv.push(format!("--{key}={value}"));
        keys.insert(key.to_owned());
    }
    Ok(ChainSpec {
        name: name.into(),
        argv,
        keys,
    })
}

/// clap's message without its `error: ` prefix and usage lines.
fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

fn parse(argv: &[String]) -> Result<NodeArgs, String> {
    let full = std::iter::once("node".to_owned()).chain(argv.iter().cloned());
    Wrap::try_parse_from(full)
        .map(|w| w.node)
        .map_err(|e| clap_message(&e))
}

/// The ports each listener takes, to find clashes: (port, who, chain, key).
struct Ports {
    tcp: BTreeMap<u16, String>,
    udp: BTreeMap<u16, String>,
}

impl Ports {
    fn claim(
        map: &mut BTreeMap<u16, String>,
        port: u16,
        chain: &str,
        key: &str,
        who: String,
    ) -> Result<(), MultiError> {
        if port == 0 {
            return Ok(());
        }
        if let Some(other) = map.get(&port) {
            return Err(MultiError::PortClash {
                chain: chain.into(),
                key: key.into(),
                port,
                other: other.clone(),
            });
        }
        map.insert(port, who);
        Ok(())
    }
}

/// Builds every chain's configuration, refusing the clashes the module docs list.
/// `fresh_secret` gives each chain its own 32 bytes of OS randomness.
pub fn plan(
    req: Request,
    mut fresh_secret: impl FnMut() -> Result<[u8; 32], getrandom::Error>,
) -> Result<Plan, MultiError> {
    if req.chains.is_empty() {
        return Err(MultiError::NoChains);
    }
    let shared = parse(&req.shared).map_err(MultiError::SharedFlags)?;
    // Names first: a chain given twice is the clearest error.
    let mut names = BTreeSet::new();
    for c in &req.chains {
        if !valid_name(&c.name) {
            return Err(MultiError::ChainKey {
                chain: c.name.clone(),
                key: "network".into(),
                why: "a chain name is 1-64 of A-Z a-z 0-9 . _ -".into(),
            });
        }
        if !names.insert(c.name.clone()) {
            return Err(MultiError::DuplicateName {
                chain: c.name.clone(),
            });
        }
    }
    let mut ports = Ports {
        tcp: BTreeMap::new(),
        udp: BTreeMap::new(),
    };
    let shared_rpc = (!shared.rpc_disabled).then_some(shared.rpc_port);
    if let Some(p) = shared_rpc {
        Ports::claim(
            &mut ports.tcp,
            p,
            "*",
            "rpc.port",
            "the shared \"rpc.port\"".into(),
        )?;
    }
    let shared_metrics = shared.metrics_enabled.then_some(shared.metrics_port);
    if let Some(p) = shared_metrics
        && shared_metrics != shared_rpc
    {
        Ports::claim(
            &mut ports.tcp,
            p,
            "*",
            "metrics.port",
            "the shared \"metrics.port\"".into(),
        )?;
    }
    // Each chain's flags, with the explicit ports claimed first.
    let mut parsed = Vec::with_capacity(req.chains.len());
    for c in &req.chains {
        let argv: Vec<String> = req.shared.iter().chain(&c.argv).cloned().collect();
        let mut args = parse(&argv).map_err(|message| MultiError::ChainFlags {
            chain: c.name.clone(),
            message,
        })?;
        let own = |k: &str| c.keys.contains(k);
        let who = |k: &str| format!("chain {:?}'s {k:?}", c.name);
        if own("p2p.listen.tcp") {
            let p = args.listen_tcp;
            Ports::claim(
                &mut ports.tcp,
                p,
                &c.name,
                "p2p.listen.tcp",
                who("p2p.listen.tcp"),
            )?;
            if !own("p2p.listen.udp") {
                Ports::claim(
                    &mut ports.udp,
                    p,
                    &c.name,
                    "p2p.listen.tcp",
                    who("p2p.listen.tcp"),
                )?;
            }
        }
        if own("p2p.listen.udp") {
            let p = args.listen_udp.unwrap_or(0);
            Ports::claim(
                &mut ports.udp,
                p,
                &c.name,
                "p2p.listen.udp",
                who("p2p.listen.udp"),
            )?;
        } else {
            args.listen_udp = None;
        }
        if own("rpc.port") {
            args.rpc_disabled = false;
            Ports::claim(
                &mut ports.tcp,
                args.rpc_port,
                &c.name,
                "rpc.port",
                who("rpc.port"),
            )?;
        } else {
            args.rpc_disabled = true;
        }
        args.metrics_enabled = false;
        args.events_json = false;
        if !own("datadir") {
            args.datadir = shared.datadir.as_ref().map(|d| d.join(&c.name));
        }
        parsed.push(args);
    }
    // Allocated ports: the next one from the shared port no listener has, TCP and UDP.
    let base = shared.listen_tcp;
    let mut next = base;
    for (c, args) in req.chains.iter().zip(parsed.iter_mut()) {
        if c.keys.contains("p2p.listen.tcp") || base == 0 {
            continue;
        }
        while ports.tcp.contains_key(&next) || ports.udp.contains_key(&next) {
            next = next.checked_add(1).ok_or_else(|| MultiError::NoFreePort {
                chain: c.name.clone(),
                base,
            })?;
        }
        args.listen_tcp = next;
        let who = format!("chain {:?}'s allocated port", c.name);
        ports.tcp.insert(next, who.clone());
        ports.udp.insert(next, who);
    }
    // Data dirs and key files: one chain each.
    let mut dirs: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut keys: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (c, args) in req.chains.iter().zip(&parsed) {
        if let Some(d) = &args.datadir {
            let d = normalise(d);
            if let Some(other) = dirs.insert(d.clone(), c.name.clone()) {
                return Err(MultiError::SharedDataDir {
                    chain: c.name.clone(),
                    path: d,
                    other,
                });
            }
        }
        if let Some(k) = &args.priv_path {
            let k = normalise(k);
            if let Some(other) = keys.insert(k.clone(), c.name.clone()) {
                return Err(MultiError::SharedKeyFile {
                    chain: c.name.clone(),
                    path: k,
                    other,
                });
            }
        }
    }
    // The builder's checks, then one chain id per chain.
    let mut chains: Vec<Chain> = Vec::with_capacity(parsed.len());
    let mut failed = Vec::new();
    for (c, args) in req.chains.iter().zip(&parsed) {
        let secret = fresh_secret().map_err(MultiError::Random)?;
        let config = match cli::node_config(args, secret) {
            Ok(config) => config,
            // A locked or unreadable data dir or key file is this chain's trouble only.
            Err(source @ CliError::DataDir(_)) if !req.require_all => {
                failed.push((
                    c.name.clone(),
                    MultiError::ChainConfig {
                        chain: c.name.clone(),
                        source,
                    },
                ));
                continue;
            }
            Err(source) => {
                return Err(MultiError::ChainConfig {
                    chain: c.name.clone(),
                    source,
                });
            }
        };
        let id = config.core.validator.chain_id;
        if let Some(other) = chains
            .iter()
            .find(|o| o.config.core.validator.chain_id == id)
        {
            return Err(MultiError::DuplicateChainId {
                chain: c.name.clone(),
                chain_id: id,
                other: other.name.clone(),
            });
        }
        chains.push(Chain {
            name: c.name.clone(),
            config,
        });
    }
    let vhosts = VirtualHosts::parse(&shared.rpc_vhosts)
        .map_err(|(index, source)| MultiError::Vhosts { index, source })?;
    Ok(Plan {
        host: HostConfig {
            rpc_addr: shared_rpc.map(|p| SocketAddr::new(shared.rpc_addr, p)),
            metrics_addr: shared_metrics.map(|p| SocketAddr::new(shared.metrics_addr, p)),
            rpc_vhosts: vhosts,
        },
        chains,
        events_json: shared.events_json,
        require_all: req.require_all,
        failed,
    })
}

/// `a/./b/../c` → `a/c`, lexically (the directories need not exist yet).
fn normalise(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Runs the plan until SIGINT or SIGTERM: the shared listeners, then every chain (a chain
/// that fails is logged and listed as failed unless `require_all`), then stops them all.
pub async fn run(plan: Plan) -> Result<(), MultiError> {
    let signals = crate::run::Signals::install().map_err(MultiError::Signal)?;
    let rt = TokioRuntime;
    let host = Host::start(&rt, plan.host).await?;
    for (name, e) in &plan.failed {
        tracing::warn!(chain = %name, error = %error_line(e), "chain failed to start; the others keep running (listed as failed on /healthz)");
        host.report_failed(name, None, e)?;
    }
    let mut running: Vec<(String, NodeHandle)> = Vec::new();
    let mut tasks = Vec::new();
    for chain in plan.chains {
        let name = chain.name;
        let chain_id = chain.config.core.validator.chain_id;
        let datadir = chain.config.datadir.clone();
        let options = SpawnOptions::default().with_events(plan.events_json);
        match host.spawn(rt, &name, chain.config, options).await {
            Ok(mut node) => {
                tracing::info!(
                    chain = %name, chain_id, peer_id = %node.peer_id(), enr = ?node.enr(),
                    addrs = ?node.listen_addrs(), rpc = ?node.rpc_addr(), datadir = ?datadir,
                    "chain running"
                );
                if let Some(mut events) = node.events() {
                    let name = name.clone();
                    tasks.push(tokio::spawn(async move {
                        while let Some(e) = events.next().await {
                            let mut v = crate::run::event_json(&e);
                            v["chain"] = serde_json::Value::from(name.as_str());
                            v["chain_id"] = serde_json::Value::from(chain_id);
                            println!("{v}");
                        }
                    }));
                }
                if let Some(mut blocks) = node.blocks() {
                    tasks.push(tokio::spawn(async move {
                        while blocks.next().await.is_some() {}
                    }));
                }
                running.push((name, node));
            }
            Err(source) if plan.require_all => {
                tracing::error!(chain = %name, error = %error_line(&source), "chain failed to start; --chains.require-all: stopping");
                stop_all(running, host, tasks).await;
                return Err(MultiError::Spawn {
                    chain: name,
                    source,
                });
            }
            Err(e) => {
                tracing::warn!(chain = %name, chain_id, error = %error_line(&e), "chain failed to start; the others keep running (listed as failed on /healthz)");
            }
        }
    }
    if running.is_empty() {
        tracing::error!("no chain started");
        stop_all(running, host, tasks).await;
        return Err(MultiError::NoneStarted);
    }
    let (_, first) = &running[0];
    tracing::info!(
        chains = running.len(), peer_id = %first.peer_id(), addrs = ?first.listen_addrs(),
        rpc = ?host.rpc_addr(), metrics = ?host.metrics_addr(),
        "node running (several chains; peer_id and addrs are the first chain's, every chain's in its \"chain running\" line)"
    );
    let stopped = signals.wait().await;
    tracing::info!("stopping");
    stop_all(running, host, tasks).await;
    stopped.map_err(MultiError::Signal)
}

async fn stop_all(
    running: Vec<(String, NodeHandle)>,
    host: Host,
    tasks: Vec<tokio::task::JoinHandle<()>>,
) {
    futures::future::join_all(running.into_iter().map(|(_, n)| n.shutdown())).await;
    host.shutdown().await;
    for t in tasks {
        t.abort();
    }
}

/// The binary's several-chain path: `args` is what [`intercept`] returned, logging already
/// set up ([`log_args`]).
pub fn main(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let req = request(args)?;
    let plan = plan(req, cli::os_secret)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(plan))?;
    Ok(())
}

/// The log flags among the node's arguments (`--log.level`, `--log.format`), parsed alone.
pub fn log_args(args: &[String]) -> Result<crate::logging::LogArgs, MultiError> {
    #[derive(Debug, Parser)]
    #[command(name = "op-p2p node")]
    struct LogOnly {
        #[command(flatten)]
        log: crate::logging::LogArgs,
    }
    let mut rest = args.to_vec();
    let mut argv = vec!["node".to_owned()];
    for name in ["--log.level", "--log.format"] {
        for v in take_valued(&mut rest, name)? {
            argv.push(format!("{name}={v}"));
        }
    }
    LogOnly::try_parse_from(argv)
        .map(|l| l.log)
        .map_err(|e| MultiError::LogFlags(clap_message(&e)))
}

/// An error and its causes on one line.
fn error_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(&format!(": {c}"));
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn secret() -> Result<[u8; 32], getrandom::Error> {
        Ok([0x42; 32])
    }

    #[test]
    fn only_several_networks_or_a_config_take_the_several_chain_path() {
        assert_eq!(
            intercept(&s(&["op-p2p", "node", "--network", "base"])),
            None
        );
        assert_eq!(intercept(&s(&["op-p2p", "bench", "--config", "x"])), None);
        assert_eq!(intercept(&s(&["op-p2p"])), None);
        assert_eq!(
            intercept(&s(&[
                "op-p2p",
                "node",
                "--network=base",
                "--network",
                "op-mainnet"
            ])),
            Some(s(&["--network=base", "--network", "op-mainnet"]))
        );
        assert_eq!(
            intercept(&s(&[
                "op-p2p",
                "--log.level=info",
                "node",
                "--config",
                "f.toml"
            ])),
            Some(s(&["--log.level=info", "--config", "f.toml"]))
        );
    }

    #[test]
    fn ports_are_allocated_from_the_shared_one_around_every_taken_port() {
        let req = request(s(&[
            "--network",
            "base",
            "--network=op-mainnet",
            "--network",
            "op-sepolia",
            "--p2p.listen.tcp=9300",
            "--rpc.port=9301",
            "--p2p.no-discovery",
        ]))
        .unwrap();
        let plan = plan(req, secret).unwrap();
        let ports: Vec<(String, u16, Option<u16>)> = plan
            .chains
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.config.tcp_port,
                    c.config.rpc_addr.map(|a| a.port()),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                ("base".to_owned(), 9300, None),
                ("op-mainnet".to_owned(), 9302, None),
                ("op-sepolia".to_owned(), 9303, None),
            ]
        );
        assert_eq!(plan.host.rpc_addr.map(|a| a.port()), Some(9301));
        assert_eq!(plan.host.metrics_addr, None);
        for c in &plan.chains {
            assert_eq!(c.config.udp_port, c.config.tcp_port, "{}", c.name);
        }
    }

    #[test]
    fn a_chain_table_sets_its_own_port_data_dir_and_rpc_and_arrays_are_comma_joined() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let peer =
            "/ip4/10.0.0.7/tcp/9222/p2p/16Uiu2HAm3wdopohoeMNywZCUDx8a5S1nm9zPqeoFpvUdGXZTaSxW";
        let other =
            "/ip4/10.0.0.8/tcp/9222/p2p/16Uiu2HAm3iHHVJND2MgWAcfjy6gfH2wXxH9K2N64jzZfAn8PW4bv";
        std::fs::write(
            &file,
            format!(
                "\"p2p.listen.tcp\" = 9400\n\"p2p.no-discovery\" = true\ndatadir = {:?}\n\
                 [chain.a]\nnetwork = \"base\"\n\"p2p.listen.tcp\" = 9401\n\"rpc.port\" = 9550\n\
                 \"p2p.static\" = [{peer:?}, {other:?}]\n\
                 [chain.b]\nnetwork = \"op-mainnet\"\n",
                dir.path().join("data").display().to_string()
            ),
        )
        .unwrap();
        let req = request(s(&["--config", file.to_str().unwrap()])).unwrap();
        assert_eq!(
            req.chains[0].argv,
            s(&[
                "--network=base",
                "--p2p.listen.tcp=9401",
                "--rpc.port=9550",
                &format!("--p2p.static={peer},{other}"),
            ])
        );
        let mut n = 0u8;
        let distinct = move || {
            n += 1;
            Ok([n; 32])
        };
        let plan = plan(req, distinct).unwrap();
        let (a, b) = (&plan.chains[0].config, &plan.chains[1].config);
        assert_eq!((a.tcp_port, b.tcp_port), (9401, 9400));
        assert_eq!(a.rpc_addr.map(|x| x.port()), Some(9550));
        assert_eq!(b.rpc_addr, None);
        assert_eq!(a.datadir, Some(dir.path().join("data").join("a")));
        assert_eq!(b.datadir, Some(dir.path().join("data").join("b")));
        assert_eq!(a.core.static_peers.len(), 2);
        assert_ne!(a.keypair.public(), b.keypair.public(), "a key per chain");
    }

    #[test]
    fn names_files_and_process_keys_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| {
            let f = dir.path().join("c.toml");
            std::fs::write(&f, text).unwrap();
            request(s(&["--config", f.to_str().unwrap()]))
        };
        assert!(matches!(
            write("[chain.\"../x\"]\nnetwork = \"base\"\n"),
            Err(MultiError::ChainKey { chain, .. }) if chain == "../x"
        ));
        assert!(matches!(
            write("[chain.a]\n\"events-json\" = true\n"),
            Err(MultiError::ChainKey { key, .. }) if key == "events-json"
        ));
        assert!(matches!(
            write("network = \"base\"\n"),
            Err(MultiError::SharedKey { key, .. }) if key == "network"
        ));
        assert!(matches!(
            write("[chain.a]\nnetwork = { x = 1 }\n"),
            Err(MultiError::ChainKey { key, .. }) if key == "network"
        ));
        assert!(matches!(write("x = "), Err(MultiError::Toml { .. })));
        let big = format!("# {}\n", "x".repeat(MAX_CONFIG_BYTES as usize));
        assert!(matches!(write(&big), Err(MultiError::TooLarge { .. })));
        assert!(matches!(
            plan(request(s(&["--p2p.no-discovery"])).unwrap(), secret),
            Err(MultiError::NoChains)
        ));
        // One key file for two chains would make them one identity.
        let key = dir.path().join("key.txt");
        let args = s(&[
            "--network=base",
            "--network=op-mainnet",
            "--p2p.no-discovery",
            "--p2p.priv.path",
            key.to_str().unwrap(),
        ]);
        assert!(matches!(
            plan(request(args).unwrap(), secret),
            Err(MultiError::SharedKeyFile { chain, other, .. }) if chain == "op-mainnet" && other == "base"
        ));
        assert!(!key.exists(), "refused before anything is written");
    }
}
