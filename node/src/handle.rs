//! The embedder's side of a running node: [`NodeHandle`] (publish, blocks, signer, admin,
//! shutdown) and [`AdminClient`] (the `opp2p_*` API, which the HTTP service also uses).
//!
//! Drop semantics (quinn's): dropping the [`NodeHandle`] shuts the node down gracefully, in the
//! background, exactly as [`NodeHandle::shutdown`] does (state written, HTTP listeners and
//! discv5 stopped); `shutdown` also waits for it. An [`AdminClient`] does not keep a node
//! running. Calls on a stopped node fail with [`NodeStopped`] (admin calls with
//! [`AdminError::Unavailable`], the JSON-RPC shape op-node gives).

use futures::SinkExt;
use futures::channel::{mpsc, oneshot};
use futures::future::Shared;
use libp2p::Multiaddr;
use std::net::SocketAddr;

use op_p2p_core::admin::{AdminError, AdminRequest, AdminResponse};

use crate::driver::{self, Command};

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

/// A call on a node that has stopped (or is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the node has stopped")]
pub struct NodeStopped;

impl From<NodeStopped> for AdminError {
    fn from(_: NodeStopped) -> Self {
        AdminError::Unavailable
    }
}

/// A queued block's outcome, from [`NodeHandle::submit`]: a future of
/// [`op_p2p_core::PublishOutcome`]. A node that stops first resolves it to
/// `Failed(transient, "node stopped")`.
#[derive(Debug)]
#[must_use = "a ticket does nothing unless awaited; dropping it does not cancel the publish"]
pub struct PublishTicket(oneshot::Receiver<op_p2p_core::PublishOutcome>);

impl std::future::Future for PublishTicket {
    type Output = op_p2p_core::PublishOutcome;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                op_p2p_core::PublishOutcome::Failed(op_p2p_core::PublishFailed::transient(
                    op_p2p_core::PublishError::Signer("node stopped".into()),
                ))
            })
        })
    }
}

/// Completes once the node has stopped entirely (driver, state written, HTTP, discv5).
pub(crate) type Stopped = Shared<oneshot::Receiver<()>>;

/// The handle an embedder (or the binary) holds on a running node. Dropping it shuts the node
/// down gracefully in the background (see the module docs); [`NodeHandle::shutdown`] does the
/// same and waits for it.
pub struct NodeHandle {
    peer_id: libp2p::PeerId,
    commands: mpsc::Sender<Command>,
    admin: AdminClient,
    blocks: Option<mpsc::Receiver<op_p2p_core::DeliveredBlock>>,
    events: Option<mpsc::Receiver<driver::NodeEvent>>,
    enr: Option<String>,
    listen_addrs: Vec<Multiaddr>,
    rpc_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    stopped: Stopped,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("peer_id", &self.peer_id)
            .field("enr", &self.enr)
            .finish_non_exhaustive()
    }
}

/// The parts [`crate::spawn`] assembles a [`NodeHandle`] from.
pub(crate) struct HandleParts {
    pub(crate) peer_id: libp2p::PeerId,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) admin: AdminClient,
    pub(crate) blocks: mpsc::Receiver<op_p2p_core::DeliveredBlock>,
    pub(crate) events: Option<mpsc::Receiver<driver::NodeEvent>>,
    pub(crate) enr: Option<String>,
    pub(crate) listen_addrs: Vec<Multiaddr>,
    pub(crate) rpc_addr: Option<SocketAddr>,
    pub(crate) metrics_addr: Option<SocketAddr>,
    pub(crate) stopped: Stopped,
}

impl NodeHandle {
    pub(crate) fn from_parts(p: HandleParts) -> Self {
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
            stopped: p.stopped,
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

    /// The admin API client. It does not keep the node running.
    pub fn admin(&self) -> AdminClient {
        self.admin.clone()
    }

    /// The stream of blocks accepted from gossip (take it once). It ends when the node stops.
    pub fn blocks(&mut self) -> Option<mpsc::Receiver<op_p2p_core::DeliveredBlock>> {
        self.blocks.take()
    }

    /// The stream of operator events (take it once), if enabled at spawn.
    pub fn events(&mut self) -> Option<mpsc::Receiver<driver::NodeEvent>> {
        self.events.take()
    }

    /// Queues a block for publishing and returns as soon as it is queued (waiting only for
    /// room in the command queue), with a [`PublishTicket`] that resolves to its typed
    /// outcome. The block is a payload the node's signer signs, or an envelope already
    /// signed; see [`op_p2p_core::publish`] for the queue's rules.
    pub async fn submit(
        &self,
        request: op_p2p_core::PublishRequest,
    ) -> Result<PublishTicket, NodeStopped> {
        let (reply, answer) = oneshot::channel();
        let mut tx = self.commands.clone();
        tx.send(Command::Publish(request, reply))
            .await
            .map_err(|_| NodeStopped)?;
        Ok(PublishTicket(answer))
    }

    /// Publishes a block and waits for its outcome: [`NodeHandle::submit`] then the ticket.
    /// Returns the gossip message id. Kept for callers that want one result; a sequencer
    /// that must not wait uses `submit`.
    pub async fn publish(
        &self,
        request: op_p2p_core::PublishRequest,
    ) -> Result<op_p2p_core::MessageId, driver::PublishFailure> {
        match self.submit(request).await?.await {
            op_p2p_core::PublishOutcome::Published { message_id, .. } => Ok(message_id),
            op_p2p_core::PublishOutcome::Dropped(why) => Err(driver::PublishFailure::Dropped(why)),
            op_p2p_core::PublishOutcome::Failed(f) => Err(driver::PublishFailure::Failed(f)),
            _ => Err(driver::PublishFailure::Stopped(NodeStopped)),
        }
    }

    /// Replaces the unsafe block signer (the previous one stays valid for the grace window).
    pub async fn set_unsafe_signer(
        &self,
        signer: alloy_primitives::Address,
    ) -> Result<(), NodeStopped> {
        let mut tx = self.commands.clone();
        tx.send(Command::SetUnsafeSigner(signer))
            .await
            .map_err(|_| NodeStopped)
    }

    /// Whether the node has stopped entirely.
    pub fn is_stopped(&self) -> bool {
        self.stopped.peek().is_some()
    }

    /// Stops the node and waits until it has: the driver writes its state to the data dir and
    /// stops, then the HTTP listeners close and discv5 stops.
    pub async fn shutdown(mut self) {
        let _ = self.commands.send(Command::Shutdown).await;
        let _ = self.stopped.clone().await;
    }
}
