//! The runtime-neutral glue both runtime crates share (feature `swarm`): everything between
//! the pure [`crate::Node`] and real sockets that does not depend on which executor runs it.
//!
//! - [`NodeConfig`]: what a running node needs besides the core's [`crate::Config`].
//! - [`AdminClient`]: how the HTTP JSON-RPC service (or an embedder) reaches the node's
//!   `opp2p_*` API: a request goes over a channel to the task that owns the node, the answer
//!   comes back on a oneshot.
//!
//! - [`http`]: the one hyper service (JSON-RPC, `GET /metrics`, `GET /healthz`) both runtimes
//!   serve over their own sockets.
//! - [`metrics`]: the Prometheus series (op-node's names under `op_p2p_`).
//! - [`datadir`]: the node key and the persisted state on disk (blocking `std::fs`).
//!
//! Nothing here opens a socket or names a runtime; the runtime crates bring TCP, timers, the
//! executor and the HTTP listener.

pub mod assemble;
pub mod behaviour;
pub mod datadir;
pub mod driver;
pub mod http;
pub mod metrics;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use futures::SinkExt;
use futures::channel::{mpsc, oneshot};
use libp2p::Multiaddr;

use crate::admin::{AdminError, AdminRequest, AdminResponse};
use crate::discovery::Bootnode;

/// The reply half of an admin call.
pub type AdminReply = oneshot::Sender<Result<AdminResponse, AdminError>>;

/// Most admin calls queued for the node at once; callers beyond it wait.
pub const ADMIN_QUEUE: usize = 64;

/// A cloneable handle that submits `opp2p_*` calls to the task that owns the node.
#[derive(Debug, Clone)]
pub struct AdminClient {
    tx: mpsc::Sender<(AdminRequest, AdminReply)>,
}

impl AdminClient {
    /// A client and the receiving end the node's task drains.
    pub fn channel() -> (Self, mpsc::Receiver<(AdminRequest, AdminReply)>) {
        let (tx, rx) = mpsc::channel(ADMIN_QUEUE);
        (Self { tx }, rx)
    }

    /// Makes one call and waits for its answer (`connectPeer` may take up to 30 s). A stopped
    /// node answers [`AdminError::Unavailable`].
    pub async fn call(&self, request: AdminRequest) -> Result<AdminResponse, AdminError> {
        let (reply, answer) = oneshot::channel();
        let mut tx = self.tx.clone();
        tx.send((request, reply))
            .await
            .map_err(|_| AdminError::Unavailable)?;
        answer.await.map_err(|_| AdminError::Unavailable)?
    }
}

/// Everything a running node needs besides the core's [`crate::Config`].
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The protocol core's settings (chain, signer, forks, tides, gating, bans, req/resp).
    pub core: crate::Config,
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
    /// Run discv5.
    pub discovery: bool,
    /// discv5 bootnodes.
    pub bootnodes: Vec<Bootnode>,
    /// Static peers, as multiaddrs ending in `/p2p/<id>`.
    pub static_peers: Vec<Multiaddr>,
    /// JSON-RPC listen address (`opp2p_*`), if served.
    pub rpc_addr: Option<SocketAddr>,
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
}

impl NodeConfig {
    /// A node on 127.0.0.1 with ephemeral TCP and UDP ports, discovery off, no bootnodes, no
    /// static peers, no RPC, no metrics and no data dir: the starting point for tests, devnets
    /// and examples. Change the fields you need.
    pub fn local(mut core: crate::Config, keypair: libp2p::identity::Keypair) -> Self {
        core.local_peer_id = keypair.public().to_peer_id();
        Self {
            core,
            keypair,
            listen_ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            tcp_port: 0,
            udp_port: 0,
            advertise_ip: None,
            discovery: false,
            bootnodes: Vec::new(),
            static_peers: Vec::new(),
            rpc_addr: None,
            metrics_addr: None,
            datadir: None,
            agent_version: default_agent_version(),
            ip_colocation_whitelist: Vec::new(),
        }
    }
}

/// Test support (feature `test-util`): the node's task as the driver runs it, minus the
/// network. Each admin call becomes an [`crate::Input::Admin`] at `now`; its
/// [`crate::Action::AdminResponse`] is the reply. Ends when every [`AdminClient`] is dropped.
#[cfg(feature = "test-util")]
pub async fn answer_admin_calls(
    mut node: crate::Node,
    now: crate::UnixMillis,
    mut rx: mpsc::Receiver<(AdminRequest, AdminReply)>,
) {
    use futures::StreamExt;
    let mut next = 0;
    while let Some((request, reply)) = rx.next().await {
        next += 1;
        let id = crate::RequestId(next);
        node.handle_input(now, crate::Input::Admin { id, request });
        let mut answer = None;
        while let Some(a) = node.poll_action() {
            if let crate::Action::AdminResponse { id: got, result } = a
                && got == id
            {
                answer = Some(result);
            }
        }
        if let Some(result) = answer {
            let _ = reply.send(result);
        }
    }
}

/// Our identify agent version.
pub fn default_agent_version() -> String {
    format!("op-p2p/{}", env!("CARGO_PKG_VERSION"))
}

/// The handle an embedder (or the binary) holds on a running node. Dropping it does not stop
/// the node; call [`NodeHandle::shutdown`], which also writes the state to the data dir.
pub struct NodeHandle {
    peer_id: libp2p::PeerId,
    commands: mpsc::Sender<driver::Command>,
    admin: AdminClient,
    blocks: Option<mpsc::Receiver<crate::DeliveredBlock>>,
    events: Option<mpsc::Receiver<driver::NodeEvent>>,
    enr: Option<String>,
    listen_addrs: Vec<Multiaddr>,
    rpc_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    /// Behind a mutex only so the handle is `Sync` (a `&NodeHandle` may be held across an
    /// await in a task that moves between threads); it is taken once, by `shutdown`.
    on_shutdown: std::sync::Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("peer_id", &self.peer_id)
            .field("enr", &self.enr)
            .finish_non_exhaustive()
    }
}

/// The parts a runtime crate assembles a [`NodeHandle`] from.
pub struct HandleParts {
    /// Our peer id.
    pub peer_id: libp2p::PeerId,
    /// Commands to the driver.
    pub commands: mpsc::Sender<driver::Command>,
    /// Admin calls to the driver.
    pub admin: AdminClient,
    /// Delivered blocks from the driver.
    pub blocks: mpsc::Receiver<crate::DeliveredBlock>,
    /// Operator events from the driver.
    pub events: Option<mpsc::Receiver<driver::NodeEvent>>,
    /// Our ENR, when discovery runs.
    pub enr: Option<String>,
    /// Where libp2p listens.
    pub listen_addrs: Vec<Multiaddr>,
    /// Where JSON-RPC is served.
    pub rpc_addr: Option<SocketAddr>,
    /// Where metrics are served.
    pub metrics_addr: Option<SocketAddr>,
    /// Stops the runtime's own tasks (discv5, HTTP) after the driver has stopped.
    pub on_shutdown: Vec<Box<dyn FnOnce() + Send>>,
}

impl NodeHandle {
    /// Assembles a handle (runtime crates call this from their `spawn`).
    pub fn from_parts(p: HandleParts) -> Self {
        Self {
            peer_id: p.peer_id,
            commands: p.commands,
            admin: p.admin,
            blocks: Some(p.blocks),
            events: p.events,
            enr: p.enr,
            listen_addrs: p.listen_addrs,
            rpc_addr: p.rpc_addr,
            metrics_addr: p.metrics_addr,
            on_shutdown: std::sync::Mutex::new(p.on_shutdown),
        }
    }

    /// Our libp2p peer id.
    pub fn peer_id(&self) -> libp2p::PeerId {
        self.peer_id
    }

    /// Our ENR (`enr:…`), when discovery runs.
    pub fn enr(&self) -> Option<&str> {
        self.enr.as_deref()
    }

    /// Where libp2p listens, each ending in `/p2p/<our id>`.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen_addrs
            .iter()
            .map(|a| {
                a.clone()
                    .with(libp2p::multiaddr::Protocol::P2p(self.peer_id))
            })
            .collect()
    }

    /// Where JSON-RPC is served, if it is.
    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.rpc_addr
    }

    /// Where metrics are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The admin API client.
    pub fn admin(&self) -> AdminClient {
        self.admin.clone()
    }

    /// The stream of blocks accepted from gossip (take it once).
    pub fn blocks(&mut self) -> Option<mpsc::Receiver<crate::DeliveredBlock>> {
        self.blocks.take()
    }

    /// The stream of operator events (take it once), if enabled at spawn.
    pub fn events(&mut self) -> Option<mpsc::Receiver<driver::NodeEvent>> {
        self.events.take()
    }

    /// Publishes a block: a payload the node signs with its sequencer key, or an envelope
    /// already signed. Returns the gossip message id.
    pub async fn publish(
        &self,
        request: crate::PublishRequest,
    ) -> Result<crate::MessageId, driver::PublishFailure> {
        let (reply, answer) = oneshot::channel();
        let mut tx = self.commands.clone();
        tx.send(driver::Command::Publish(request, reply))
            .await
            .map_err(|_| driver::PublishFailure::Stopped)?;
        answer.await.map_err(|_| driver::PublishFailure::Stopped)?
    }

    /// Replaces the unsafe block signer (the previous one stays valid for the grace window).
    pub async fn set_unsafe_signer(
        &self,
        signer: alloy_primitives::Address,
    ) -> Result<(), AdminError> {
        let mut tx = self.commands.clone();
        tx.send(driver::Command::SetUnsafeSigner(signer))
            .await
            .map_err(|_| AdminError::Unavailable)
    }

    /// Stops the node: the driver writes its state and stops, then the runtime's tasks stop.
    pub async fn shutdown(mut self) {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(driver::Command::Shutdown(reply))
            .await
            .is_ok()
        {
            let _ = done.await;
        }
        let stops = self
            .on_shutdown
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for stop in stops {
            stop();
        }
    }
}

/// Noise (with the libp2p secp256k1 identity) and yamux over any TCP-like transport: the
/// upgrade both runtimes apply to their own TCP.
pub fn upgrade_transport<T>(
    tcp: T,
    keypair: &libp2p::identity::Keypair,
) -> Result<
    libp2p::core::transport::Boxed<(libp2p::PeerId, libp2p::core::muxing::StreamMuxerBox)>,
    libp2p::noise::Error,
>
where
    T: libp2p::Transport + Send + Unpin + 'static,
    T::Output: futures::AsyncRead + futures::AsyncWrite + Unpin + Send + 'static,
    T::Dial: Send,
    T::ListenerUpgrade: Send,
    T::Error: Send + Sync,
{
    use libp2p::core::upgrade::Version;
    Ok(tcp
        .upgrade(Version::V1)
        .authenticate(libp2p::noise::Config::new(keypair)?)
        .multiplex(libp2p::yamux::Config::default())
        .timeout(std::time::Duration::from_secs(20))
        .boxed())
}
