//! The runtime-neutral glue both runtime crates share (feature `swarm`): everything between
//! the pure [`crate::Node`] and real sockets that does not depend on which executor runs it.
//!
//! - [`NodeConfig`]: what a running node needs besides the core's [`crate::Config`].
//! - [`AdminClient`]: how the HTTP JSON-RPC service (or an embedder) reaches the node's
//!   `opp2p_*` API: a request goes over a channel to the task that owns the node, the answer
//!   comes back on a oneshot.
//!
//! - [`datadir`]: the node key and the persisted state on disk (blocking `std::fs`).
//!
//! Nothing here opens a socket or names a runtime; the runtime crates bring TCP, timers, the
//! executor and the HTTP listener.

pub mod datadir;

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
}

/// Our identify agent version.
pub fn default_agent_version() -> String {
    format!("op-p2p/{}", env!("CARGO_PKG_VERSION"))
}
