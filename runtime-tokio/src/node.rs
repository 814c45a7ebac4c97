//! [`spawn`]: a real op-p2p node on tokio: TCP (nodelay) + Noise + Yamux, the shared libp2p
//! behaviour and driver, discv5, and the node's state restored from and written to the data dir.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm, tcp};
use op_p2p_core::swarm::behaviour::{self, Clock};
use op_p2p_core::swarm::driver::{self, Driver, Runtime, system_now_ms};
use op_p2p_core::swarm::http::HttpState;
use op_p2p_core::swarm::metrics::Metrics;
use op_p2p_core::swarm::metrics::prometheus_client::registry::Registry;
use op_p2p_core::swarm::{AdminClient, HandleParts, NodeConfig, NodeHandle, upgrade_transport};
use op_p2p_core::{LocalInfo, Node, UnixMillis};

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
pub async fn spawn(config: NodeConfig, options: SpawnOptions) -> Result<NodeHandle, SpawnError> {
    let keypair = config.keypair.clone();
    let peer_id = keypair.public().to_peer_id();
    let mut core = config.core.clone();
    core.local_peer_id = peer_id;
    if !config.discovery {
        core.discovery = None;
    }
    for addr in &config.static_peers {
        if let Some(libp2p::multiaddr::Protocol::P2p(p)) = addr.iter().last() {
            let transport: Multiaddr = addr
                .iter()
                .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
                .collect();
            core.static_peers.push((p, vec![transport]));
        }
    }
    let mut node = Node::new(core);
    let datadir = match &config.datadir {
        Some(path) => Some(
            op_p2p_core::swarm::datadir::DataDir::open(path)
                .map_err(|e| SpawnError::DataDir(e.to_string()))?,
        ),
        None => None,
    };
    let mut seeds = Vec::new();
    if let Some(dir) = &datadir {
        match dir
            .load_state()
            .map_err(|e| SpawnError::DataDir(e.to_string()))?
        {
            Some(state) => {
                seeds = state.discovery.iter().map(|e| e.enr.clone()).collect();
                let report = node
                    .restore_state(system_now_ms(), state)
                    .map_err(|e| SpawnError::DataDir(e.to_string()))?;
                tracing::info!(?report, "state restored");
            }
            None => tracing::info!("no saved state"),
        }
    }

    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    let transport =
        upgrade_transport(tcp, &keypair).map_err(|e| SpawnError::Transport(e.to_string()))?;
    let clock: Clock = Arc::new(system_now_ms);
    let agent = config.agent_version.clone();
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let libp2p_metrics = libp2p::metrics::Metrics::new(&mut registry);
    let behaviour = behaviour::build(&keypair, node, clock, agent.clone(), Some(&mut registry))?;
    let mut swarm = Swarm::new(
        transport,
        behaviour,
        peer_id,
        libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(Duration::from_secs(60)),
    );
    let listen: Multiaddr = SocketAddr::new(config.listen_ip, config.tcp_port).into_multiaddr();
    swarm
        .listen_on(listen.clone())
        .map_err(|e| SpawnError::Listen {
            addr: listen.clone(),
            error: e.to_string(),
        })?;
    // Wait for the bound address (port 0 picks one) before building our record.
    let bound = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                SwarmEvent::ListenerError { error, .. }
                | SwarmEvent::ListenerClosed {
                    reason: Err(error), ..
                } => {
                    return Err(error.to_string());
                }
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| SpawnError::Listen {
        addr: listen.clone(),
        error: "timed out".into(),
    })?
    .map_err(|error| SpawnError::Listen {
        addr: listen.clone(),
        error,
    })?;
    let tcp_port = bound
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap_or(config.tcp_port);

    let (discovered_tx, discovered_rx) = mpsc::channel(discovery::DISCOVERED_QUEUE);
    let disc: Option<DiscoveryService> = if config.discovery {
        let chain_id = config.core.validator.chain_id;
        Some(
            discovery::start(
                DiscoveryConfig {
                    keypair: keypair.clone(),
                    chain_id,
                    listen_ip: config.listen_ip,
                    udp_port: config.udp_port,
                    advertise_ip: config.advertise_ip,
                    tcp_port,
                    bootnodes: config.bootnodes.clone(),
                    seeds,
                },
                discovered_tx,
            )
            .await?,
        )
    } else {
        drop(discovered_tx);
        None
    };
    let enr = disc.as_ref().map(|d| d.enr.clone());

    let (admin, admin_rx) = AdminClient::channel();
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let (delivered_tx, delivered_rx) = mpsc::channel(driver::DELIVERY_QUEUE);
    let (events_tx, events_rx) = if options.events {
        let (tx, rx) = mpsc::channel(4096);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let persist: Option<driver::PersistFn> = datadir.map(|dir| {
        Box::new(move |state: &op_p2p_core::NodeState| {
            if let Err(e) = dir.save_state(state) {
                tracing::error!(error = %e, "cannot write state");
            }
        }) as driver::PersistFn
    });
    let local = LocalInfo {
        agent_version: agent,
        protocol_version: "ipfs/0.1.0".into(),
        enr: enr.clone(),
        addrs: vec![bound.clone()],
        protocols: vec![
            "/meshsub/1.1.0".into(),
            "/ipfs/id/1.0.0".into(),
            "/ipfs/ping/1.0.0".into(),
            op_p2p_core::reqresp::protocol_id(config.core.validator.chain_id),
        ],
    };
    let driver = Driver {
        swarm,
        runtime: TokioRuntime,
        admin_rx,
        commands_rx,
        discovered_rx,
        delivered_tx,
        events_tx,
        persist,
        local,
        metrics: Some(metrics),
        libp2p_metrics: Some(libp2p_metrics),
    };
    let task = tokio::spawn(driver.run());
    let mut on_shutdown: Vec<Box<dyn FnOnce() + Send>> = vec![Box::new(move || task.abort())];
    // JSON-RPC and metrics: one HTTP service; one listener if both share an address.
    let state = Arc::new(HttpState {
        admin: admin.clone(),
        registry: Arc::new(registry),
    });
    let mut bound_http = Vec::new();
    let mut wanted: Vec<SocketAddr> = config.rpc_addr.into_iter().collect();
    if let Some(m) = config.metrics_addr
        && config.rpc_addr != Some(m)
    {
        wanted.push(m);
    }
    for addr in wanted {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| SpawnError::Http {
                addr,
                error: e.to_string(),
            })?;
        let local = listener.local_addr().map_err(|e| SpawnError::Http {
            addr,
            error: e.to_string(),
        })?;
        let (stop, stopped) = futures::channel::oneshot::channel::<()>();
        let http = tokio::spawn(crate::http::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        tracing::info!(%local, "http (json-rpc, /metrics) listening");
        on_shutdown.push(Box::new(move || {
            let _ = stop.send(());
            drop(http);
        }));
        bound_http.push((addr, local));
    }
    let find = |want: Option<SocketAddr>| {
        want.and_then(|w| bound_http.iter().find(|(a, _)| *a == w).map(|(_, l)| *l))
    };
    let rpc_addr = find(config.rpc_addr);
    let metrics_addr = find(config.metrics_addr);
    if let Some(d) = disc {
        on_shutdown.push(Box::new(move || d.stop()));
    }
    Ok(NodeHandle::from_parts(HandleParts {
        peer_id,
        commands: commands_tx,
        admin,
        blocks: delivered_rx,
        events: events_rx,
        enr,
        listen_addrs: vec![bound],
        rpc_addr,
        metrics_addr,
        on_shutdown,
    }))
}

trait IntoMultiaddr {
    fn into_multiaddr(self) -> Multiaddr;
}

impl IntoMultiaddr for SocketAddr {
    fn into_multiaddr(self) -> Multiaddr {
        let ip = match self.ip() {
            std::net::IpAddr::V4(ip) => libp2p::multiaddr::Protocol::Ip4(ip),
            std::net::IpAddr::V6(ip) => libp2p::multiaddr::Protocol::Ip6(ip),
        };
        Multiaddr::empty()
            .with(ip)
            .with(libp2p::multiaddr::Protocol::Tcp(self.port()))
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
