//! [`spawn`]: starting a node, written once for every [`Runtime`].
//!
//! 0. The configuration is validated ([`NodeConfig::validate`]) before anything binds or runs.
//! 1. HTTP listeners bind first, so a port in use fails the spawn before anything runs.
//! 2. The core [`Node`] from [`NodeConfig::core`] as it is, its state restored from the data
//!    dir.
//! 3. The swarm: the shared behaviour over the runtime's transport, listening on the
//!    configured address (bounded by [`LISTEN_TIMEOUT`] on the runtime's clock).
//! 4. discv5, with the bound TCP port in our record.
//! 5. The driver, the state writer, the HTTP servers, and one node task that runs the driver
//!    and, when it stops, stops HTTP and discv5 and reports the node stopped.
//!
//! A failure at any step stops what the earlier steps started.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::{BoxFuture, RemoteHandle};
use futures::{FutureExt, StreamExt};
use libp2p::core::Transport as _;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm};
use op_p2p_core::{LocalInfo, Node, StateError};
use prometheus_client::registry::Registry;

use crate::behaviour::{self, Behaviour, Clock};
use crate::datadir::{DataDir, DataDirError};
use crate::discovery::{DISCOVERED_QUEUE, Discovery, DiscoveryConfig, DiscoveryError};
use crate::driver::{self, Driver};
use crate::handle::HandleParts;
use crate::http::HttpState;
use crate::metrics::Metrics;
use crate::runtime::{BoxedTransport, Runtime};
use crate::state_writer::StateWriter;
use crate::{AdminClient, ConfigError, NodeConfig, NodeHandle};

/// How long listening may take to report its bound address.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands queued from the handle to the driver.
pub const COMMAND_QUEUE: usize = 64;
/// Operator events buffered for a slow reader before new ones are dropped.
pub const EVENT_QUEUE: usize = 4096;
/// Idle connections close after this long.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of [`spawn`] beyond the [`NodeConfig`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SpawnOptions {
    /// Also produce operator events ([`NodeHandle::events`]).
    pub events: bool,
    /// The host this node is a chain of ([`crate::host::Host::spawn`] sets it).
    pub(crate) host: Option<crate::host::HostSlot>,
}

impl SpawnOptions {
    /// With (or without) operator events.
    pub fn with_events(mut self, events: bool) -> Self {
        self.events = events;
        self
    }
}

/// Why libp2p could not listen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The transport refused the address.
    #[error(transparent)]
    Transport(#[from] libp2p::TransportError<io::Error>),
    /// The listener failed.
    #[error("listener failed")]
    Listener(#[source] io::Error),
    /// The listener closed before reporting an address.
    #[error("listener closed")]
    Closed,
    /// No bound address within [`LISTEN_TIMEOUT`].
    #[error("no bound address within {0:?}")]
    TimedOut(Duration),
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The configuration is invalid ([`NodeConfig::validate`]); nothing was started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The transport could not be built.
    #[error("transport")]
    Transport(#[source] io::Error),
    /// The behaviour could not be built.
    #[error(transparent)]
    Behaviour(#[from] behaviour::BuildError),
    /// Listening failed.
    #[error("listen on {addr}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        #[source]
        source: ListenError,
    },
    /// Discovery failed to start.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// An HTTP listener could not bind.
    #[error("http listen on {addr}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The data dir could not be used.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The saved state could not be restored.
    #[error("restore saved state")]
    Restore(#[from] StateError),
    /// The L1 signer reader's thread could not start.
    #[error("L1 signer reader thread")]
    L1Reader(#[source] io::Error),
    /// The host refused the chain ([`crate::host::Host::spawn`]).
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
}

/// Starts a node on `runtime` and returns its handle.
///
/// An invalid `config` ([`NodeConfig::validate`]) is refused with [`SpawnError::Config`]
/// before the runtime is used. The start-up state machine is boxed at once, so the future this
/// returns is one pointer and can be awaited on a small stack.
pub fn spawn<R: Runtime>(
    runtime: R,
    config: NodeConfig,
    options: SpawnOptions,
) -> BoxFuture<'static, Result<NodeHandle, SpawnError>> {
    Box::pin(spawn_inner(runtime, config, options))
}

async fn spawn_inner<R: Runtime>(
    rt: R,
    config: NodeConfig,
    options: SpawnOptions,
) -> Result<NodeHandle, SpawnError> {
    // 0. The configuration, before anything binds.
    config.validate()?;
    crate::fd_limit::log_budget(&config);
    // 1. HTTP listeners.
    let mut http_listeners = Vec::new();
    for addr in http_addrs(&config) {
        let (listener, local) = rt
            .bind_http(addr)
            .await
            .map_err(|source| SpawnError::Http { addr, source })?;
        http_listeners.push((addr, listener, local));
    }
    // 2. The core.
    let prepared = prepare(&config, rt.now_ms())?;
    // 3. The swarm.
    let transport = rt
        .transport(&config.keypair)
        .map_err(SpawnError::Transport)?;
    let (mut swarm, registry) = build_swarm(&rt, &config, prepared.node, transport)?;
    let bound = listen(&mut swarm, &config, &rt).await?;
    let tcp_port = tcp_port(&bound).unwrap_or(config.tcp_port);
    // 4. discv5.
    let (discovered_tx, discovered_rx) = mpsc::channel(DISCOVERED_QUEUE);
    let discovery = if config.discovery() {
        let dc = discovery_config(&config, tcp_port, prepared.seeds);
        Some(Discovery::start(&rt, dc, discovered_tx).await?)
    } else {
        drop(discovered_tx);
        None
    };
    // 5. Driver, HTTP, node task.
    let peer_id = *swarm.local_peer_id();
    let (admin, admin_rx) = AdminClient::channel();
    let mut registry = registry;
    let metrics = Metrics::new(&mut registry);
    let libp2p_metrics = libp2p::metrics::Metrics::new(&mut registry);
    let health = crate::health::HealthReport::new(&mut registry);
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    // The L1 signer reader, when the signer comes from L1.
    let l1 = match config.l1.clone() {
        Some(l1) => {
            let metrics = crate::metrics::L1SignerMetrics::new(&mut registry);
            Some(crate::l1_signer::start(&rt, l1, metrics).map_err(SpawnError::L1Reader)?)
        }
        None => None,
    };
    let (delivered_tx, delivered_rx) = mpsc::channel(driver::DELIVERY_QUEUE);
    let (events_tx, events_rx) = if options.events {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let enr = discovery.as_ref().map(|d| d.enr.clone());
    let local = LocalInfo {
        agent_version: config.agent_version.clone(),
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
        runtime: rt.clone(),
        admin_rx,
        commands_rx,
        discovered_rx,
        delivered_tx,
        events_tx,
        writer: prepared.datadir.map(|dir| StateWriter::start(&rt, dir)),
        local,
        metrics: Some(metrics),
        libp2p_metrics: Some(libp2p_metrics),
        l1,
        health: Some(health.clone()),
        signer: config.signer.clone(),
        validation: start_validation_pool(config.validation_workers),
        peer_budget: crate::validation_pool::PeerBudget::new(config.peer_checks_per_second),
    };
    // The RPC listener serves the admin API (and metrics); a separate metrics listener serves
    // GET /metrics and /healthz only (see `crate::http`).
    let registry = Arc::new(registry);
    let rpc_state = Arc::new(
        HttpState::rpc(admin.clone(), registry.clone(), config.rpc_virtual_hosts()?)
            .with_health(health.clone())
            // A node with a block signer takes opp2pext_publishBlock's whole blocks (issue 14).
            .with_block_publishing(config.signer.is_some()),
    );
    let (host_registry, host_health) = (registry.clone(), health.clone());
    let metrics_state = Arc::new(HttpState::metrics_only(registry).with_health(health));
    let mut servers: Vec<(oneshot::Sender<()>, RemoteHandle<()>)> = Vec::new();
    let mut bound_http = Vec::new();
    for (addr, listener, local) in http_listeners {
        let state = if config.rpc_addr == Some(addr) {
            rpc_state.clone()
        } else {
            metrics_state.clone()
        };
        let what = if state.serves_admin() {
            "json-rpc, /metrics"
        } else {
            "/metrics only"
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (server, done) = crate::http::serve(rt.clone(), listener, state, async move {
            let _ = stopped.await;
        })
        .remote_handle();
        rt.spawn(server.boxed());
        tracing::info!(%local, what, "http listening");
        servers.push((stop, done));
        bound_http.push((addr, local));
    }
    let find = |want: Option<SocketAddr>| {
        want.and_then(|w| bound_http.iter().find(|(a, _)| *a == w).map(|(_, l)| *l))
    };
    let (rpc_addr, metrics_addr) = (find(config.rpc_addr), find(config.metrics_addr));
    let (stopped_tx, stopped_rx) = oneshot::channel();
    let task_rt = rt.clone();
    // ---- many chains, one process (issue 16): the host routes to this chain from now on ----
    let host_slot = options.host.clone();
    if let Some(slot) = &host_slot {
        slot.running(admin.clone(), host_registry, host_health);
    }
    // ---- end many chains ----
    rt.spawn(
        async move {
            driver.run().await;
            if let Some(slot) = host_slot {
                slot.stopped();
            }
            let (stops, dones): (Vec<_>, Vec<_>) = servers.into_iter().unzip();
            for stop in stops {
                let _ = stop.send(());
            }
            for done in dones {
                done.await;
            }
            if let Some(d) = discovery {
                d.stop(&task_rt).await;
            }
            tracing::info!("node stopped");
            let _ = stopped_tx.send(());
        }
        .boxed(),
    );
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
        stopped: stopped_rx.shared(),
    }))
}

/// A core node ready to be put into a swarm.
struct Prepared {
    node: Node,
    datadir: Option<DataDir>,
    /// `enr:` records of the persisted discovery table, to seed discv5.
    seeds: Vec<String>,
}

/// The core node for `config` (its core settings as they are: [`NodeConfig::validate`] has
/// checked them), its state restored from the data dir (if any) at `now` (Unix ms).
fn prepare(config: &NodeConfig, now: op_p2p_core::UnixMillis) -> Result<Prepared, SpawnError> {
    let mut node = Node::new(config.core.clone());
    let datadir = match &config.datadir {
        Some(path) => Some(DataDir::open(path)?),
        None => None,
    };
    let mut seeds = Vec::new();
    if let Some(dir) = &datadir {
        match dir.load_state()? {
            Some(state) => {
                seeds = state.discovery.iter().map(|e| e.enr.clone()).collect();
                let report = node.restore_state(now, state)?;
                tracing::info!(?report, "state restored");
            }
            None => tracing::info!("no saved state"),
        }
    }
    Ok(Prepared {
        node,
        datadir,
        seeds,
    })
}

/// The shared behaviour around `node` over `transport`, and the metrics registry gossipsub
/// already registered its own metrics in. The gate reads the runtime's clock, as the driver
/// does.
fn build_swarm<R: Runtime>(
    rt: &R,
    config: &NodeConfig,
    node: Node,
    transport: BoxedTransport,
) -> Result<(Swarm<Behaviour>, Registry), SpawnError> {
    let peer_id = config.keypair.public().to_peer_id();
    let clock_rt = rt.clone();
    let clock: Clock = Arc::new(move || clock_rt.now_ms());
    let mut registry = Registry::default();
    let behaviour = behaviour::build(
        &config.keypair,
        node,
        clock,
        config.agent_version.clone(),
        &config.ip_colocation_whitelist,
        Some(&mut registry),
    )?;
    // Bytes on every stream (gossipsub, identify, ping, req/resp) by direction, after Noise
    // and Yamux framing: `libp2p_bandwidth_bytes_total`.
    let transport = libp2p::metrics::BandwidthTransport::new(transport, &mut registry)
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed();
    let swarm = Swarm::new(
        transport,
        behaviour,
        peer_id,
        rt.swarm_config()
            .with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT),
    );
    Ok((swarm, registry))
}

/// `ip:port` as `/ip4|ip6/<ip>/tcp/<port>`.
pub fn tcp_multiaddr(addr: SocketAddr) -> Multiaddr {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) => Protocol::Ip4(ip),
        std::net::IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(addr.port()))
}

/// The TCP port of a multiaddr, if it has one.
fn tcp_port(addr: &Multiaddr) -> Option<u16> {
    addr.iter().find_map(|p| match p {
        Protocol::Tcp(port) => Some(port),
        _ => None,
    })
}

/// Listens on `listen_ip:tcp_port` and returns the bound address once the transport reports
/// it. Swarm events before it are dropped (there are none but listener ones).
async fn listen<R: Runtime>(
    swarm: &mut Swarm<Behaviour>,
    config: &NodeConfig,
    runtime: &R,
) -> Result<Multiaddr, SpawnError> {
    let addr = tcp_multiaddr(SocketAddr::new(config.listen_ip, config.tcp_port));
    let fail = |source: ListenError| SpawnError::Listen {
        addr: addr.clone(),
        source,
    };
    swarm
        .listen_on(addr.clone())
        .map_err(|e| fail(ListenError::Transport(e)))?;
    let bound = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                SwarmEvent::ListenerError { error, .. }
                | SwarmEvent::ListenerClosed {
                    reason: Err(error), ..
                } => return Err(ListenError::Listener(error)),
                SwarmEvent::ListenerClosed { .. } => return Err(ListenError::Closed),
                _ => {}
            }
        }
    };
    let timeout = runtime.sleep(LISTEN_TIMEOUT);
    futures::select_biased! {
        r = bound.fuse() => r.map_err(fail),
        _ = timeout.fuse() => Err(fail(ListenError::TimedOut(LISTEN_TIMEOUT))),
    }
}

/// The discovery settings for `config`, with our bound TCP port and the persisted seeds.
fn discovery_config(config: &NodeConfig, tcp_port: u16, seeds: Vec<String>) -> DiscoveryConfig {
    DiscoveryConfig {
        keypair: config.keypair.clone(),
        chain_id: config.core.validator.chain_id,
        listen_ip: config.listen_ip,
        udp_port: config.udp_port,
        advertise_ip: config.advertise_ip,
        tcp_port,
        bootnodes: config.bootnodes.clone(),
        seeds,
        public_only: config.core.gater.netrestrict.is_none(),
    }
}

/// The HTTP addresses to bind: the RPC address, and the metrics address unless it is the
/// same one (then one listener serves both).
fn http_addrs(config: &NodeConfig) -> Vec<SocketAddr> {
    let mut wanted: Vec<SocketAddr> = config.rpc_addr.into_iter().collect();
    if let Some(m) = config.metrics_addr
        && config.rpc_addr != Some(m)
    {
        wanted.push(m);
    }
    wanted
}

// ---- validation on every core (issue 15) ----

/// The validation worker pool for `workers` threads; none for 0, or when no thread can be
/// started (then every message is validated on the event loop, as with 0).
fn start_validation_pool(workers: usize) -> Option<crate::validation_pool::ValidationPool> {
    if workers == 0 {
        return None;
    }
    match crate::validation_pool::ValidationPool::new(workers) {
        Ok(pool) => Some(pool),
        Err(e) => {
            tracing::warn!(error = %e, workers, "validation threads did not start; validating on the event loop");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use op_p2p_core::Config;
    use op_p2p_core::fork::ForkSchedule;
    use op_p2p_core::testkit::{dev_key, keypair, peer_id};

    fn config() -> NodeConfig {
        let core = Config::new(
            901,
            dev_key(0).address(),
            ForkSchedule::ALL_AT_GENESIS,
            2,
            peer_id(9),
        );
        NodeConfig::local(core, keypair(3))
    }

    #[test]
    fn prepare_runs_the_core_config_as_it_is() {
        let good: Multiaddr = format!("/ip4/10.0.0.1/tcp/9222/p2p/{}", peer_id(4))
            .parse()
            .unwrap();
        let c = NodeConfig::builder(keypair(3))
            .chain(901, dev_key(0).address(), ForkSchedule::ALL_AT_GENESIS, 2)
            .static_peers([good])
            .discovery(false)
            .build()
            .unwrap();
        let p = prepare(&c, 0).unwrap();
        assert_eq!(p.node.config().local_peer_id, c.core.local_peer_id);
        assert_eq!(p.node.config().static_peers, c.core.static_peers);
        assert!(p.node.config().discovery.is_none());
        assert!(p.seeds.is_empty() && p.datadir.is_none());
    }

    #[test]
    fn http_addrs_share_one_listener_when_rpc_and_metrics_agree() {
        let mut c = config();
        let a: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:1".parse().unwrap();
        c.rpc_addr = Some(a);
        c.metrics_addr = Some(a);
        assert_eq!(http_addrs(&c), vec![a]);
        c.metrics_addr = Some(b);
        assert_eq!(http_addrs(&c), vec![a, b]);
        c.rpc_addr = None;
        assert_eq!(http_addrs(&c), vec![b]);
    }

    #[test]
    fn tcp_multiaddr_round_trips_the_port() {
        let m = tcp_multiaddr("[::1]:4242".parse().unwrap());
        assert_eq!(m.to_string(), "/ip6/::1/tcp/4242");
        assert_eq!(tcp_port(&m), Some(4242));
        assert_eq!(tcp_port(&"/ip4/1.2.3.4".parse().unwrap()), None);
    }
}
