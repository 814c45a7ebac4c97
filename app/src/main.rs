//! `op-p2p`: the op-p2p node binary and its operator tools.

// Flag doc comments are clap's `--help` text, where `<datadir>` or `<peer id>` is a
// placeholder, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use op_p2p_cli::cli::{self, KeygenArgs, NodeArgs};
use op_p2p_cli::ops;
use op_p2p_cli::tools::{examples, test_signer, verdicts};
use op_p2p_core::alloy_primitives::Address;
use op_p2p_core::fork::ForkSchedule;
use op_p2p_node::NodeConfig;

/// The peer-to-peer layer of an OP Stack rollup node.
#[derive(Debug, Parser)]
#[command(name = "op-p2p", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: op_p2p_cli::logging::LogArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a P2P node: discv5 discovery, block gossip, the opp2p_* JSON-RPC and metrics.
    #[command(
        after_help = "Several chains in one process: `op-p2p node --network base --network op-mainnet …` \
        (these flags for every chain, ports allocated from --p2p.listen.tcp, data dirs <datadir>/<network>), or \
        `op-p2p node --config chains.toml` (one [chain.<name>] table per chain, keys are these flags without --); \
        --chains.require-all refuses to run unless every chain starts. See README.md, \"Several chains in one process\"."
    )]
    Node(Box<NodeArgs>),
    /// Create a node key in op-node's --p2p.priv.path format and print its peer id.
    Keygen(KeygenArgs),
    /// Run a discovery-only bootnode (discv5, no gossip) until SIGINT or SIGTERM; prints its
    /// record.
    Bootnode(Box<ops::BootnodeArgs>),
    /// Print the record (ENR) a node key and these flags give, without opening a socket.
    Enr(Box<ops::EnrArgs>),
    /// Bootnode list tools.
    Bootnodes {
        #[command(subcommand)]
        command: ops::BootnodesCommand,
    },
    /// Run N nodes on 127.0.0.1 with a sequencer publishing real blocks; report delivery and latency.
    Devnet(DevnetArgs),
    /// Loopback mesh of N node processes; node 0 publishes signed blocks; report latency, CPU, RSS, bytes.
    Bench(BenchArgs),
    /// Sequencer publishing through a remote test signer (0/20/100 ms): submit→first-peer latency and the node's receive p99.
    BenchPublish(BenchPublishArgs),
    /// One node of `op-p2p bench` (commands on stdin, reports on stdout; exits when stdin closes).
    #[command(hide = true)]
    BenchNode {
        /// Node index (0 publishes).
        #[arg(long)]
        index: u64,
    },
    /// The blocks of a bench publish command, signed and framed, on stdout: what an external
    /// bench child (`--compare`) publishes, so it carries the same bytes as op-p2p nodes.
    #[command(hide = true)]
    BenchBlocks {
        /// The coordinator's publish command, as the JSON line the child received.
        cmd: String,
        /// Timestamp of the first block, Unix seconds.
        #[arg(long)]
        start_s: u64,
    },
    /// Memory and idle CPU of N chains in one process against N processes (issue 16).
    BenchChains {
        /// Chain counts to measure, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
        chains: Vec<usize>,
        /// Seconds to let the processes settle before measuring.
        #[arg(long, default_value_t = 5)]
        settle_secs: u64,
        /// Seconds of idle CPU measured.
        #[arg(long, default_value_t = 10)]
        window_secs: u64,
    },
    /// Replay captured gossip through one core instance and print each verdict as JSON lines.
    Verdicts(VerdictsArgs),
    /// Write the example gossip set (real signed blocks, valid and broken) and its manifest.
    ExampleGossip {
        /// Directory to write into.
        #[arg(long, default_value = "examples/gossip")]
        out: PathBuf,
    },
    /// A test op-signer: op-signer's block-signing JSON-RPC over HTTPS with mutual TLS, with
    /// injected latency, errors, wrong-key answers and hangs (tests and devnets only).
    #[command(hide = true)]
    TestSigner(Box<test_signer::TestSignerArgs>),
    /// Write a throw-away CA and server/client certificates for `test-signer`.
    #[command(hide = true)]
    TestSignerCerts {
        /// Directory to write ca.pem, server.pem/.key and client.pem/.key into.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
struct DevnetArgs {
    /// Nodes besides the bootnode (the first one is the sequencer).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=64))]
    nodes: u64,
    /// Blocks to publish.
    #[arg(long, default_value_t = 30)]
    blocks: u64,
    /// Stop after this many seconds even if blocks remain.
    #[arg(long, default_value_t = 120)]
    duration: u64,
    /// Milliseconds between blocks.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..))]
    interval_ms: u64,
    /// Transactions per block (signed EIP-1559 transfers after a deposit).
    #[arg(long, default_value_t = 50)]
    txs: usize,
    /// An outside peer every node keeps connected (multiaddr ending in /p2p/<id>); repeatable.
    #[arg(long = "static-peer")]
    static_peers: Vec<op_p2p_core::Multiaddr>,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Sign the sequencer's blocks through a test op-signer process (HTTPS, mutual TLS).
    #[arg(long)]
    remote_signer: bool,
    /// With --remote-signer: the signer's added latency per call, milliseconds.
    #[arg(long, default_value_t = 0, requires = "remote_signer")]
    signer_latency_ms: u64,
}

// ---- bench-publish (issue 14) ----

#[derive(Debug, Args)]
struct BenchPublishArgs {
    /// Signer latencies to run, milliseconds, comma-separated (a baseline without publishing
    /// runs first).
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 20, 100])]
    signer_latency_ms: Vec<u64>,
    /// Blocks each publisher publishes per scenario.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    blocks: u64,
    /// Milliseconds between two blocks of one publisher (500: 2 blocks/s).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..))]
    interval_ms: u64,
    /// Transactions per block.
    #[arg(long, default_value_t = 20)]
    txs: usize,
    /// Print the results as JSON instead of the table.
    #[arg(long)]
    json: bool,
}

// ---- end of bench-publish ----

#[derive(Debug, Args)]
struct BenchArgs {
    /// Node counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [10u64, 20])]
    nodes: Vec<u64>,
    /// Block sizes to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["100tx", "1000tx"])]
    sizes: Vec<op_p2p_cli::bench::BlockSize>,
    /// Runtimes to run, comma-separated (async-std needs op-p2p-bench-node-async-std next to this binary).
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["tokio"])]
    runtimes: Vec<op_p2p_cli::bench::BenchRuntime>,
    /// Blocks per scenario.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    blocks: u64,
    /// Milliseconds between blocks.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..))]
    interval_ms: u64,
    /// Seed of the dial choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Bound of each scenario, seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Also run each scenario's spam phase: the publishing run again while a spammer
    /// floods the last node with invalid-signature messages, at most this many per second.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    spam: Option<u64>,
    /// The loopback address the spammer reaches the target at [default: 127.0.0.1]; another
    /// one (127.0.0.2, …) makes the target listen on every address for the spam phase.
    /// Loopback only: a load test sends to this machine's loopback range and nowhere else.
    #[arg(long, value_parser = loopback_ip)]
    spam_ip: Option<std::net::IpAddr>,
    /// Run the spammer in a network namespace of its own (needs root and iproute2), linked to
    /// this host by a private /30, so the target sees a non-loopback address and bans its IP.
    #[arg(long, conflicts_with = "spam_ip")]
    spam_netns: bool,
    /// The spam target does not ban peers (as `--p2p.ban.peers=false`): the spammer keeps one
    /// identity and every message reaches validation, which measures validation under a
    /// sustained flood rather than the ban that ends it.
    #[arg(long, requires = "spam")]
    spam_no_ban: bool,
    /// The spammer publishes from a bare gossipsub swarm instead of through an op-p2p node:
    /// no publish round trip per message, so it reaches tens of thousands of messages a second
    /// (the node-based spammer, several hundred).
    #[arg(long, requires = "spam")]
    spam_raw: bool,
    /// Calldata bytes per transaction instead of each size preset's (64, or 930 for 1mb).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    tx_bytes: Option<u64>,
    /// How calldata is filled: `pattern` compresses to about half, `random` does not.
    #[arg(long, value_enum, default_value = "pattern")]
    tx_fill: op_p2p_cli::bench::TxFill,
    /// Run each scenario a second time with every node started as `PATH <index>`: another
    /// implementation speaking the bench's child protocol (`bench/kona` builds one around
    /// kona-p2p), so both are measured under the same coordinator, topology and blocks,
    /// alternated on the same machine.
    #[arg(long, value_name = "PATH", conflicts_with = "spam")]
    compare: Option<PathBuf>,
    /// Run each scenario twice more on a mixed mesh: odd nodes started as `PATH <index>` with
    /// op-p2p publishing, then even nodes (so `PATH` publishes); every block must reach every
    /// node across both implementations. An interop check as much as a benchmark.
    #[arg(long, value_name = "PATH", conflicts_with = "spam")]
    mix: Option<PathBuf>,
    /// Repeat the whole set of scenarios this many times (alternating implementations within
    /// each round).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    rounds: u64,
    /// Print the results as one JSON array instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct VerdictsArgs {
    /// L2 chain id.
    #[arg(long, env = "OP_P2P_CHAIN_ID")]
    chain_id: u64,
    /// Unsafe block signer address (0x…); the zero address ignores everything.
    #[arg(long, env = "OP_P2P_UNSAFE_SIGNER")]
    unsafe_signer: Address,
    /// Wall-clock time to judge every message at, Unix seconds.
    #[arg(long)]
    now: u64,
    /// Canyon activation time (Unix seconds); unset means not scheduled.
    #[arg(long, alias = "override.canyon")]
    canyon_time: Option<u64>,
    /// Ecotone activation time.
    #[arg(long, alias = "override.ecotone")]
    ecotone_time: Option<u64>,
    /// Isthmus activation time.
    #[arg(long, alias = "override.isthmus")]
    isthmus_time: Option<u64>,
    /// Jovian activation time (allows non-zero blob_gas_used on v3/v4).
    #[arg(long, alias = "override.jovian")]
    jovian_time: Option<u64>,
    /// L2 block time in seconds (sizes the seen-block bound).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    block_time: u64,
    /// The manifest: {"cases": [{"file": "000.bin", "topic": "/optimism/901/2/blocks"}, ...]}.
    #[arg(long)]
    manifest: PathBuf,
}

/// Parses an IP address that must be a loopback address.
fn loopback_ip(s: &str) -> Result<std::net::IpAddr, String> {
    let ip: std::net::IpAddr = s.parse().map_err(|e| format!("{e}"))?;
    if ip.is_loopback() {
        Ok(ip)
    } else {
        Err(format!("{ip} is not a loopback address"))
    }
}

fn main() -> ExitCode {
    // ---- many chains, one process (issue 16): `node --config …` or `node --network a --network b` ----
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(args) = op_p2p_cli::multi::intercept(&argv) {
        let run = op_p2p_cli::multi::log_args(&args)
            .map_err(Into::into)
            .and_then(|log| {
                log.init();
                raise_fd_limit();
                op_p2p_cli::multi::main(args)
            });
        return exit(run);
    }
    // ---- end many chains ----
    let cli = Cli::parse();
    cli.log.init();
    raise_fd_limit();
    exit(run(cli))
}

/// A 1,024 soft limit is common and below what a node's caps may use; the hard limit is ours
/// to take. Each node logs its need against the result.
fn raise_fd_limit() {
    match op_p2p_node::fd_limit::raise_to_hard_limit() {
        Ok((soft, hard)) => tracing::debug!(soft, hard, "open-file limit raised"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// The exit code for `result`, printing an error and every cause under it as one line.
fn exit(result: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut line = format!("op-p2p: {e}");
            let mut cause = e.source();
            while let Some(c) = cause {
                line.push_str(&format!(": {c}"));
                cause = c.source();
            }
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}

fn run_node(config: NodeConfig, events_json: bool) -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(op_p2p_cli::run::run_node(config, events_json))?;
    Ok(())
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::TestSigner(args) => Ok(test_signer::serve(*args)?),
        Command::TestSignerCerts { out } => Ok(test_signer::gen_certs(&out)?),
        Command::Node(args) => {
            let config = cli::node_config(&args, cli::os_secret()?)?;
            tracing::info!(
                peer_id = %config.keypair.public().to_peer_id(),
                chain_id = config.core.validator.chain_id,
                "node configured"
            );
            run_node(config, args.events_json)
        }
        Command::Devnet(a) => {
            let opts = op_p2p_cli::devnet::DevnetOptions {
                nodes: a.nodes as usize,
                blocks: a.blocks,
                duration: std::time::Duration::from_secs(a.duration),
                interval: std::time::Duration::from_millis(a.interval_ms),
                txs: a.txs,
                static_peers: a.static_peers,
                progress: !a.json,
                remote_signer: None,
            };
            let signer = if a.remote_signer {
                Some(test_signer::SignerChild::start(
                    &std::env::current_exe()?,
                    a.signer_latency_ms,
                )?)
            } else {
                None
            };
            let opts = op_p2p_cli::devnet::DevnetOptions {
                remote_signer: signer.as_ref().map(|s| s.config().clone()),
                ..opts
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let summary = rt.block_on(op_p2p_cli::devnet::run(opts))?;
            if a.json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                println!("{}", op_p2p_cli::devnet::render(&summary));
            }
            if summary.published == 0 || summary.delivered_fraction < 1.0 {
                return Err(format!(
                    "devnet delivered {:.1}% of blocks",
                    summary.delivered_fraction * 100.0
                )
                .into());
            }
            Ok(())
        }
        Command::Bench(a) => {
            use op_p2p_cli::bench;
            let exe = std::env::current_exe()?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let mut results = Vec::new();
            for round in 0..a.rounds {
                for &runtime in &a.runtimes {
                    for &size in &a.sizes {
                        for &nodes in &a.nodes {
                            let ours = bench::BenchOptions {
                                nodes: nodes as usize,
                                size,
                                runtime,
                                blocks: a.blocks,
                                interval_ms: a.interval_ms,
                                seed: a.seed,
                                exe: exe.clone(),
                                timeout: std::time::Duration::from_secs(a.timeout),
                                spam_rate: a.spam,
                                spam_ip: a.spam_ip,
                                spam_netns: a.spam_netns,
                                spam_no_ban: a.spam_no_ban,
                                spam_raw: a.spam_raw,
                                contents: bench::BlockContents {
                                    tx_bytes: a.tx_bytes.map(|b| b as usize),
                                    fill: a.tx_fill,
                                },
                                child_bin: None,
                                child_nodes: bench::ChildNodes::All,
                            };
                            let mut set = vec![ours.clone()];
                            if let Some(bin) = &a.compare {
                                set.push(bench::BenchOptions {
                                    child_bin: Some(bin.clone()),
                                    ..ours.clone()
                                });
                                // Odd rounds start with the other implementation, so neither
                                // always runs on a machine the previous run just warmed.
                                if round % 2 == 1 {
                                    set.reverse();
                                }
                            }
                            if let Some(bin) = &a.mix {
                                for child_nodes in [bench::ChildNodes::Odd, bench::ChildNodes::Even]
                                {
                                    set.push(bench::BenchOptions {
                                        child_bin: Some(bin.clone()),
                                        child_nodes,
                                        ..ours.clone()
                                    });
                                }
                            }
                            for opts in set {
                                eprintln!(
                                    "bench: round {} {} {runtime:?} N={nodes} {size:?} …",
                                    round + 1,
                                    opts.implementation()
                                );
                                let r = rt.block_on(bench::run(&opts))?;
                                eprint!("{}", bench::render(std::slice::from_ref(&r)));
                                results.push(r);
                            }
                        }
                    }
                }
            }
            if a.json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                print!("{}", bench::render(&results));
            }
            Ok(())
        }
        Command::BenchChains {
            chains,
            settle_secs,
            window_secs,
        } => {
            use op_p2p_cli::bench_chains as bc;
            let exe = std::env::current_exe()?;
            let dir =
                std::env::temp_dir().join(format!("op-p2p-bench-chains-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let (settle, window) = (
                std::time::Duration::from_secs(settle_secs),
                std::time::Duration::from_secs(window_secs),
            );
            let mut samples = Vec::new();
            for n in chains.into_iter().filter(|n| *n > 0) {
                let one = bc::one_process(&exe, &dir, n, settle, window)?;
                let many = bc::many_processes(&exe, n, settle, window)?;
                eprintln!("{n} chains: {one:?} / {many:?}");
                samples.push((one, many));
            }
            let _ = std::fs::remove_dir_all(&dir);
            print!("{}", bc::table(&samples));
            Ok(())
        }
        Command::BenchPublish(a) => {
            let opts = op_p2p_cli::bench_publish::PublishBenchOptions {
                latencies_ms: a.signer_latency_ms,
                blocks: a.blocks,
                interval: std::time::Duration::from_millis(a.interval_ms),
                txs: a.txs,
                exe: std::env::current_exe()?,
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let rows = rt.block_on(op_p2p_cli::bench_publish::run(&opts))?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", op_p2p_cli::bench_publish::render(&rows));
            }
            Ok(())
        }
        Command::BenchBlocks { cmd, start_s } => {
            let cmd: op_p2p_cli::bench::Cmd = serde_json::from_str(&cmd)?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            op_p2p_cli::bench::write_blocks(&cmd, start_s, &mut out)?;
            Ok(())
        }
        Command::BenchNode { index } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(op_p2p_cli::bench::child_main(
                op_p2p_tokio::TokioRuntime,
                index,
                |config| {
                    Box::pin(async move {
                        op_p2p_tokio::spawn(config, Default::default())
                            .await
                            .map_err(|e| e.to_string())
                    })
                },
            ))?;
            Ok(())
        }
        Command::Bootnode(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(ops::run_bootnode(&args, cli::os_secret()?))?;
            Ok(())
        }
        Command::Enr(args) => {
            let info = ops::enr(&args)?;
            if args.json {
                println!("{}", serde_json::to_string(&info)?);
            } else {
                println!("{}", info.enr);
            }
            Ok(())
        }
        Command::Bootnodes {
            command: ops::BootnodesCommand::Check(args),
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let report = rt.block_on(ops::check(&args))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", ops::render(&report));
            }
            if report.usable == 0 {
                return Err(ops::OpsError::NoneUsable {
                    checked: report.rows.len(),
                }
                .into());
            }
            Ok(())
        }
        Command::Keygen(args) => {
            let peer_id = cli::keygen(&args, cli::os_secret()?)?;
            println!("{peer_id}");
            eprintln!("wrote the node key for {peer_id} to {}", args.out.display());
            Ok(())
        }
        Command::Verdicts(a) => {
            let params = verdicts::VerdictsParams {
                chain_id: a.chain_id,
                unsafe_signer: a.unsafe_signer,
                now: a.now,
                forks: ForkSchedule {
                    canyon: a.canyon_time,
                    ecotone: a.ecotone_time,
                    isthmus: a.isthmus_time,
                    jovian: a.jovian_time,
                },
                block_time: a.block_time,
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut write_err: Option<std::io::Error> = None;
            let summary = verdicts::replay(&params, &a.manifest, |r| {
                let line = serde_json::to_writer(&mut out, r)
                    .map_err(std::io::Error::from)
                    .and_then(|_| writeln!(out));
                if let (None, Err(e)) = (&write_err, line) {
                    write_err = Some(e);
                }
            })?;
            if let Some(e) = write_err {
                return Err(e.into());
            }
            serde_json::to_writer(&mut out, &serde_json::json!({ "summary": summary }))?;
            writeln!(out)?;
            out.flush()?;
            Ok(())
        }
        Command::ExampleGossip { out } => {
            let m = examples::write(&out)?;
            eprintln!(
                "wrote {} cases to {}; replay with: op-p2p verdicts --chain-id {} --unsafe-signer {} --now {} \
                 --canyon-time 0 --ecotone-time 0 --isthmus-time 0 --jovian-time {} --manifest {}",
                m.cases.len(),
                out.display(),
                m.chain_id,
                m.unsafe_signer,
                m.now,
                m.jovian_time,
                out.join("manifest.json").display()
            );
            Ok(())
        }
    }
}
