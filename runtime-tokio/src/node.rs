//! [`spawn`]: a real op-p2p node on tokio: TCP (nodelay) + Noise + Yamux, the shared libp2p
//! behaviour and driver, discv5, and the node's state restored from and written to the data dir.

use std::net::SocketAddr;
use std::time::Duration;

use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use libp2p::{Multiaddr, tcp};
use op_p2p_core::UnixMillis;
use op_p2p_core::swarm::assemble::{self, AssembleError, WireParams, Wired};
use op_p2p_core::swarm::behaviour;
use op_p2p_core::swarm::driver::{Runtime, system_now_ms};
use op_p2p_core::swarm::{NodeConfig, NodeHandle, upgrade_transport};

use crate::discovery::{self, DiscoveryConfig, DiscoveryService};

/// The tokio side of the driver's [`Runtime`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn now_ms(&self) -> UnixMillis {
        system_now_ms()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        tokio::time::sleep(duration).boxed()
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The transport could not be built.
    #[error("transport: {0}")]
    Transport(String),
    /// The behaviour could not be built.
    #[error(transparent)]
    Behaviour(#[from] behaviour::BuildError),
    /// Listening failed.
    #[error("listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        error: String,
    },
    /// Discovery failed to start.
    #[error(transparent)]
    Discovery(#[from] discovery::DiscoveryError),
    /// An HTTP listener could not bind.
    #[error("http listen on {addr}: {error}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: String,
    },
    /// The data dir could not be used.
    #[error("data dir: {0}")]
    DataDir(String),
}

/// Options of [`spawn`] beyond the [`NodeConfig`].
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Also produce operator events ([`NodeHandle::events`]).
    pub events: bool,
}

/// Starts a node on the current tokio runtime and returns its handle.
///
/// ```
/// use op_p2p_core::admin::{AdminRequest, AdminResponse};
/// use op_p2p_core::{Config, fork::ForkSchedule, swarm::NodeConfig, testkit};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let keypair = testkit::keypair(1); // a secp256k1 identity (op-node's key type)
/// let signer = testkit::dev_key(0).address(); // the chain's unsafe block signer
/// let core = Config::new(901, signer, ForkSchedule::ALL_AT_GENESIS, 2, keypair.public().to_peer_id());
/// let mut node = op_p2p_tokio::spawn(NodeConfig::local(core, keypair), Default::default()).await.unwrap();
/// let _blocks = node.blocks().unwrap(); // stream of blocks accepted from gossip
/// match node.admin().call(AdminRequest::SelfInfo).await {
///     Ok(AdminResponse::SelfInfo(me)) => assert_eq!(me.chain_id, 901),
///     other => panic!("{other:?}"),
/// }
/// node.shutdown().await; // writes state when a data dir is configured
/// # }
/// ```
///
/// The start-up state machine is boxed, so the future this returns is small (≈ its arguments,
/// instead of ≈ 19 KB in a debug build) and can be awaited directly on a small stack.
pub async fn spawn(config: NodeConfig, options: SpawnOptions) -> Result<NodeHandle, SpawnError> {
    Box::pin(spawn_inner(config, options)).await
}

async fn spawn_inner(config: NodeConfig, options: SpawnOptions) -> Result<NodeHandle, SpawnError> {
    // Bind the HTTP listeners first: a port in use fails the spawn before anything runs.
    let mut http_listeners = Vec::new();
    for addr in assemble::http_addrs(&config) {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| SpawnError::Http {
                addr,
                error: e.to_string(),
            })?;
        http_listeners.push((addr, listener));
    }
    let prepared = assemble::prepare(&config, system_now_ms())?;
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    let transport = upgrade_transport(tcp, &config.keypair)
        .map_err(|e| SpawnError::Transport(e.to_string()))?;
    let (mut swarm, registry) = assemble::build_swarm(
        &config,
        prepared.node,
        transport,
        libp2p::swarm::Config::with_tokio_executor(),
    )?;
    let bound = assemble::listen(&mut swarm, &config, &TokioRuntime).await?;
    let tcp_port = assemble::tcp_port(&bound).unwrap_or(config.tcp_port);

    let (discovered_tx, discovered_rx) = mpsc::channel(discovery::DISCOVERED_QUEUE);
    let disc: Option<DiscoveryService> = if config.discovery {
        Some(
            discovery::start(
                discovery_config(&config, tcp_port, prepared.seeds),
                discovered_tx,
            )
            .await?,
        )
    } else {
        drop(discovered_tx);
        None
    };
    let Wired {
        driver,
        http,
        mut parts,
    } = assemble::wire(
        swarm,
        &config,
        TokioRuntime,
        WireParams {
            events: options.events,
            datadir: prepared.datadir,
            enr: disc.as_ref().map(|d| d.enr.clone()),
            bound,
            discovered: discovered_rx,
            registry,
        },
    );
    let task = tokio::spawn(driver.run());
    parts.on_shutdown.push(Box::new(move || task.abort()));
    // JSON-RPC and metrics: one HTTP service; one listener if both share an address.
    let mut bound_http = Vec::new();
    for (addr, listener) in http_listeners {
        let local = listener.local_addr().map_err(|e| SpawnError::Http {
            addr,
            error: e.to_string(),
        })?;
        let (stop, stopped) = futures::channel::oneshot::channel::<()>();
        // The server shuts down gracefully on its own once signalled.
        tokio::spawn(crate::http::serve(listener, http.clone(), async move {
            let _ = stopped.await;
        }));
        tracing::info!(%local, "http (json-rpc, /metrics) listening");
        parts.on_shutdown.push(Box::new(move || {
            let _ = stop.send(());
        }));
        bound_http.push((addr, local));
    }
    assemble::set_http_addrs(&mut parts, &config, &bound_http);
    if let Some(d) = disc {
        parts.on_shutdown.push(Box::new(move || d.stop()));
    }
    Ok(NodeHandle::from_parts(parts))
}

/// The discovery settings for `config`, with our bound TCP port and the persisted seeds.
pub fn discovery_config(config: &NodeConfig, tcp_port: u16, seeds: Vec<String>) -> DiscoveryConfig {
    DiscoveryConfig {
        keypair: config.keypair.clone(),
        chain_id: config.core.validator.chain_id,
        listen_ip: config.listen_ip,
        udp_port: config.udp_port,
        advertise_ip: config.advertise_ip,
        tcp_port,
        bootnodes: config.bootnodes.clone(),
        seeds,
    }
}

impl From<AssembleError> for SpawnError {
    fn from(e: AssembleError) -> Self {
        match e {
            AssembleError::Behaviour(e) => SpawnError::Behaviour(e),
            AssembleError::Listen { addr, error } => SpawnError::Listen { addr, error },
            AssembleError::DataDir(e) => SpawnError::DataDir(e),
            other => SpawnError::DataDir(other.to_string()),
        }
    }
}

/// One `--events-json` line for an event.
pub fn event_json(e: &op_p2p_core::swarm::driver::NodeEvent) -> serde_json::Value {
    use op_p2p_core::swarm::driver::NodeEvent as E;
    use serde_json::json;
    match e {
        E::Verdict {
            topic,
            message_id,
            verdict,
            reason,
            block,
            from,
        } => json!({
            "event": "gossip", "topic": topic, "message_id": message_id.to_string(),
            "verdict": verdict.as_str(), "reason": reason.as_str(),
            "block_number": block.map(|b| b.0), "block_hash": block.map(|b| b.1.to_string()),
            "from": from.to_string(),
        }),
        E::Published {
            topic,
            message_id,
            block,
        } => json!({
            "event": "published", "topic": topic, "message_id": message_id.to_string(),
            "block_number": block.0, "block_hash": block.1.to_string(),
        }),
        E::PeerConnected {
            peer,
            addr,
            outbound,
        } => json!({
            "event": "peer_connected", "peer": peer.to_string(), "addr": addr.to_string(),
            "direction": if *outbound { "outbound" } else { "inbound" },
        }),
        E::PeerDisconnected { peer } => {
            json!({ "event": "peer_disconnected", "peer": peer.to_string() })
        }
        E::Disconnecting { peer, reason } => json!({
            "event": "disconnecting", "peer": peer.to_string(), "reason": format!("{reason:?}").to_lowercase(),
        }),
        E::Listening { addr } => json!({ "event": "listening", "addr": addr.to_string() }),
        _ => json!({ "event": "other" }),
    }
}

/// Runs a node until SIGINT or SIGTERM, printing one JSON line per event if `events_json`,
/// then shuts it down (writing its state).
pub async fn run_node(config: NodeConfig, events_json: bool) -> Result<(), SpawnError> {
    let mut node = spawn(
        config,
        SpawnOptions {
            events: events_json,
        },
    )
    .await?;
    tracing::info!(peer_id = %node.peer_id(), enr = ?node.enr(), addrs = ?node.listen_addrs(), rpc = ?node.rpc_addr(), "node running");
    let printer = node.events().map(|mut events| {
        tokio::spawn(async move {
            while let Some(e) = events.next().await {
                println!("{}", event_json(&e));
            }
        })
    });
    // Keep the delivered-block stream drained: the binary has no consumer for blocks.
    let mut blocks = node.blocks().expect("taken once");
    let drain = tokio::spawn(async move { while blocks.next().await.is_some() {} });
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| SpawnError::Transport(e.to_string()))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping");
    node.shutdown().await;
    drain.abort();
    if let Some(p) = printer {
        p.abort();
    }
    Ok(())
}
