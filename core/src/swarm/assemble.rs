//! Putting a node together, written once for every runtime: each runtime crate's `spawn` is
//! these steps with its own TCP, executor, timers, discovery host and HTTP listener in between.
//!
//! 1. [`prepare`]: the core [`Node`] from a [`NodeConfig`] (our peer id, static peers,
//!    discovery on/off) with the state restored from the data dir, plus the discovery seeds.
//! 2. [`build_swarm`]: the shared behaviour over the runtime's boxed transport and its
//!    `libp2p::swarm::Config` (which names the executor).
//! 3. [`listen`]: listen on `listen_ip:tcp_port` and wait for the bound address (port 0
//!    picks one), bounded by a timeout on the runtime's clock.
//! 4. (the runtime starts discovery with the bound TCP port for our record)
//! 5. [`wire`]: the channels, metrics registry, persist closure and [`Driver`], and the
//!    [`HandleParts`] the runtime completes with its HTTP addresses and shutdown hooks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use libp2p::core::Transport as _;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use prometheus_client::registry::Registry;

use super::behaviour::{self, Behaviour, Clock};
use super::datadir::DataDir;
use super::driver::{self, Driver, Runtime};
use super::http::HttpState;
use super::metrics::Metrics;
use super::{AdminClient, HandleParts, NodeConfig};
use crate::{LocalInfo, Node, NodeState};

/// How long [`listen`] waits for the bound address.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands queued from the handle to the driver.
pub const COMMAND_QUEUE: usize = 64;
/// Operator events buffered for a slow reader before new ones are dropped.
pub const EVENT_QUEUE: usize = 4096;
/// Idle connections close after this long.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Why assembling a node failed (the runtime crates map it into their `SpawnError`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssembleError {
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
    /// The data dir could not be used.
    #[error("data dir: {0}")]
    DataDir(String),
}

/// A core node ready to be put into a swarm.
pub struct Prepared {
    /// Our peer id (from the config's keypair).
    pub peer_id: PeerId,
    /// The core, with persisted state restored.
    pub node: Node,
    /// The open data dir, if the config names one.
    pub datadir: Option<DataDir>,
    /// `enr:` records of the persisted discovery table, to seed discv5.
    pub seeds: Vec<String>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("peer_id", &self.peer_id)
            .field("seeds", &self.seeds.len())
            .finish_non_exhaustive()
    }
}

/// Step 1: the core node for `config`, its state restored from the data dir (if any) at
/// `now` (Unix ms). Static peers are multiaddrs ending in `/p2p/<id>`; others are skipped
/// with a warning.
pub fn prepare(config: &NodeConfig, now: crate::UnixMillis) -> Result<Prepared, AssembleError> {
    let peer_id = config.keypair.public().to_peer_id();
    let mut core = config.core.clone();
    core.local_peer_id = peer_id;
    if !config.discovery {
        core.discovery = None;
    }
    for addr in &config.static_peers {
        if let Some(Protocol::P2p(p)) = addr.iter().last() {
            let transport: Multiaddr = addr
                .iter()
                .filter(|p| !matches!(p, Protocol::P2p(_)))
                .collect();
            core.static_peers.push((p, vec![transport]));
        } else {
            tracing::warn!(%addr, "static peer without /p2p/<id>; skipped");
        }
    }
    let mut node = Node::new(core);
    let datadir = match &config.datadir {
        Some(path) => Some(DataDir::open(path).map_err(|e| AssembleError::DataDir(e.to_string()))?),
        None => None,
    };
    let mut seeds = Vec::new();
    if let Some(dir) = &datadir {
        match dir
            .load_state()
            .map_err(|e| AssembleError::DataDir(e.to_string()))?
        {
            Some(state) => {
                seeds = state.discovery.iter().map(|e| e.enr.clone()).collect();
                let report = node
                    .restore_state(now, state)
                    .map_err(|e| AssembleError::DataDir(e.to_string()))?;
                tracing::info!(?report, "state restored");
            }
            None => tracing::info!("no saved state"),
        }
    }
    Ok(Prepared {
        peer_id,
        node,
        datadir,
        seeds,
    })
}

/// The transport a swarm runs on: the runtime's TCP after [`super::upgrade_transport`].
pub type BoxedTransport = Boxed<(PeerId, StreamMuxerBox)>;

/// Step 2: the shared behaviour around `node` over `transport`, and the metrics registry
/// gossipsub already registered its own metrics in. `swarm_config` names the runtime's
/// executor; the idle connection timeout is set here so both runtimes agree.
pub fn build_swarm(
    config: &NodeConfig,
    node: Node,
    transport: BoxedTransport,
    swarm_config: libp2p::swarm::Config,
) -> Result<(Swarm<Behaviour>, Registry), AssembleError> {
    let peer_id = config.keypair.public().to_peer_id();
    let clock: Clock = Arc::new(driver::system_now_ms);
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
        swarm_config.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT),
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
pub fn tcp_port(addr: &Multiaddr) -> Option<u16> {
    addr.iter().find_map(|p| match p {
        Protocol::Tcp(port) => Some(port),
        _ => None,
    })
}

/// Step 3: listens on `listen_ip:tcp_port` and returns the bound address once the transport
/// reports it, or an error if it fails or takes longer than [`LISTEN_TIMEOUT`] on
/// `runtime`'s timer. Swarm events before it are dropped (there are none but listener ones).
pub async fn listen<R: Runtime>(
    swarm: &mut Swarm<Behaviour>,
    config: &NodeConfig,
    runtime: &R,
) -> Result<Multiaddr, AssembleError> {
    let listen = tcp_multiaddr(SocketAddr::new(config.listen_ip, config.tcp_port));
    let fail = |error: String| AssembleError::Listen {
        addr: listen.clone(),
        error,
    };
    swarm
        .listen_on(listen.clone())
        .map_err(|e| fail(e.to_string()))?;
    let bound = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                SwarmEvent::ListenerError { error, .. }
                | SwarmEvent::ListenerClosed {
                    reason: Err(error), ..
                } => return Err(error.to_string()),
                SwarmEvent::ListenerClosed { .. } => return Err("listener closed".into()),
                _ => {}
            }
        }
    };
    let timeout = runtime.sleep(LISTEN_TIMEOUT);
    futures::select_biased! {
        r = bound.fuse() => r.map_err(fail),
        _ = timeout.fuse() => Err(fail("timed out".into())),
    }
}

/// What [`wire`] needs besides the swarm.
pub struct WireParams {
    /// Also produce operator events.
    pub events: bool,
    /// The data dir from [`prepare`], written by the driver's persist closure.
    pub datadir: Option<DataDir>,
    /// Our ENR, when discovery runs.
    pub enr: Option<String>,
    /// The bound listen address from [`listen`].
    pub bound: Multiaddr,
    /// Records the runtime's discovery service found, as `enr:` text.
    pub discovered: mpsc::Receiver<String>,
    /// The registry from [`build_swarm`]; our series and libp2p's are added to it here.
    pub registry: Registry,
}

impl std::fmt::Debug for WireParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireParams")
            .field("events", &self.events)
            .field("enr", &self.enr)
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

/// A node ready to run: the runtime spawns `driver.run()`, serves `http` on its listeners,
/// and completes `parts` (`rpc_addr`, `metrics_addr`, `on_shutdown`) into a
/// [`super::NodeHandle`].
pub struct Wired<R: Runtime> {
    /// The event loop to spawn.
    pub driver: Driver<R>,
    /// The HTTP service's state (JSON-RPC and metrics), complete: nothing registers later.
    pub http: Arc<HttpState>,
    /// The handle's parts, without HTTP addresses or shutdown hooks yet.
    pub parts: HandleParts,
}

/// Step 5: the driver and the handle's parts around `swarm`.
pub fn wire<R: Runtime>(
    swarm: Swarm<Behaviour>,
    config: &NodeConfig,
    runtime: R,
    params: WireParams,
) -> Wired<R> {
    let peer_id = *swarm.local_peer_id();
    let (admin, admin_rx) = AdminClient::channel();
    let mut registry = params.registry;
    let metrics = Metrics::new(&mut registry);
    let libp2p_metrics = libp2p::metrics::Metrics::new(&mut registry);
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let (delivered_tx, delivered_rx) = mpsc::channel(driver::DELIVERY_QUEUE);
    let (events_tx, events_rx) = if params.events {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let persist: Option<driver::PersistFn> = params.datadir.map(|dir| {
        Box::new(move |state: &NodeState| {
            if let Err(e) = dir.save_state(state) {
                tracing::error!(error = %e, "cannot write state");
            }
        }) as driver::PersistFn
    });
    let local = LocalInfo {
        agent_version: config.agent_version.clone(),
        protocol_version: "ipfs/0.1.0".into(),
        enr: params.enr.clone(),
        addrs: vec![params.bound.clone()],
        protocols: vec![
            "/meshsub/1.1.0".into(),
            "/ipfs/id/1.0.0".into(),
            "/ipfs/ping/1.0.0".into(),
            crate::reqresp::protocol_id(config.core.validator.chain_id),
        ],
    };
    let driver = Driver {
        swarm,
        runtime,
        admin_rx,
        commands_rx,
        discovered_rx: params.discovered,
        delivered_tx,
        events_tx,
        persist,
        local,
        metrics: Some(metrics),
        libp2p_metrics: Some(libp2p_metrics),
    };
    let http = Arc::new(HttpState {
        admin: admin.clone(),
        registry: Arc::new(registry),
    });
    Wired {
        driver,
        http,
        parts: HandleParts {
            peer_id,
            commands: commands_tx,
            admin,
            blocks: delivered_rx,
            events: events_rx,
            enr: params.enr,
            listen_addrs: vec![params.bound],
            rpc_addr: None,
            metrics_addr: None,
            on_shutdown: Vec::new(),
        },
    }
}

/// The HTTP addresses to bind: the RPC address, and the metrics address unless it is the
/// same one (then one listener serves both).
pub fn http_addrs(config: &NodeConfig) -> Vec<SocketAddr> {
    let mut wanted: Vec<SocketAddr> = config.rpc_addr.into_iter().collect();
    if let Some(m) = config.metrics_addr
        && config.rpc_addr != Some(m)
    {
        wanted.push(m);
    }
    wanted
}

/// Fills `parts.rpc_addr` and `parts.metrics_addr` from `(wanted, bound)` pairs of the
/// listeners a runtime opened for [`http_addrs`].
pub fn set_http_addrs(
    parts: &mut HandleParts,
    config: &NodeConfig,
    bound: &[(SocketAddr, SocketAddr)],
) {
    let find = |want: Option<SocketAddr>| {
        want.and_then(|w| bound.iter().find(|(a, _)| *a == w).map(|(_, l)| *l))
    };
    parts.rpc_addr = find(config.rpc_addr);
    parts.metrics_addr = find(config.metrics_addr);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use crate::fork::ForkSchedule;
    use crate::testkit::{dev_key, keypair, peer_id};
    use std::net::{IpAddr, Ipv4Addr};

    fn config() -> NodeConfig {
        let kp = keypair(3);
        NodeConfig {
            core: Config::new(
                901,
                dev_key(0).address(),
                ForkSchedule::ALL_AT_GENESIS,
                2,
                peer_id(9),
            ),
            keypair: kp,
            listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            tcp_port: 0,
            udp_port: 0,
            advertise_ip: None,
            discovery: false,
            bootnodes: vec![],
            static_peers: vec![],
            rpc_addr: None,
            metrics_addr: None,
            datadir: None,
            agent_version: super::super::default_agent_version(),
            ip_colocation_whitelist: Vec::new(),
        }
    }

    #[test]
    fn prepare_takes_the_peer_id_from_the_key_and_keeps_only_static_peers_with_an_id() {
        let mut c = config();
        let good: Multiaddr = format!("/ip4/10.0.0.1/tcp/9222/p2p/{}", peer_id(4))
            .parse()
            .unwrap();
        c.static_peers = vec![good, "/ip4/10.0.0.2/tcp/9222".parse().unwrap()];
        let p = prepare(&c, 0).unwrap();
        assert_eq!(p.peer_id, keypair(3).public().to_peer_id());
        assert_eq!(p.node.config().local_peer_id, p.peer_id);
        assert_eq!(
            p.node.config().static_peers,
            vec![(peer_id(4), vec!["/ip4/10.0.0.1/tcp/9222".parse().unwrap()])]
        );
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
