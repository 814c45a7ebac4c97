//! The one event loop every runtime runs: it owns the swarm (and, inside its [`Gate`], the
//! [`Node`]), feeds every swarm event, admin call, command, discovered record and timer to the
//! core, and carries out every action the core emits. It is generic over the [`Runtime`]
//! (clock and timers; the state is written off this loop by a writer task).
//!
//! [`Gate`]: crate::behaviour::Gate

use std::collections::BTreeMap;
use std::time::Duration;

use alloy_primitives::{Address, B256};
use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::request_response::{self, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, Swarm, identify, ping};

use crate::AdminReply;
use crate::behaviour::{Behaviour, Event};
use crate::runtime::Runtime;
use crate::state_writer::{PersistSchedule, StateWriter};
use op_p2p_core::admin::AdminRequest;
use op_p2p_core::discovery::{DefaultKey, parse_enr};
use op_p2p_core::gossip::wire::MessageId;
use op_p2p_core::peers::book::GossipScores;
use op_p2p_core::publish::{DropReason, PublishId};
use op_p2p_core::{
    Action, DeliveredBlock, GossipMessage, Input, LocalInfo, MessageHandle, PublishError,
    PublishFailed, PublishOutcome, PublishRequest, RequestId, StreamHandle,
};
use op_p2p_core::{Node, Reason, UnixMillis, Verdict};

/// Commands from the [`crate::NodeHandle`].
#[derive(Debug)]
pub enum Command {
    /// Queue a block for publishing; the reply carries its outcome.
    Publish(PublishRequest, oneshot::Sender<PublishOutcome>),
    /// Replace the unsafe block signer.
    SetUnsafeSigner(Address),
    /// Persist state and stop.
    Shutdown,
}

/// Why a publish did not happen ([`crate::NodeHandle::publish`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishFailure {
    /// A queue rule dropped it (full, superseded, deadline, too old).
    #[error("dropped: {0}")]
    Dropped(#[source] DropReason),
    /// It failed: permanently (wrong signer, wrong version...) or transiently until its
    /// deadline (signer down, no peers on the topic).
    #[error(transparent)]
    Failed(#[from] PublishFailed),
    /// The node stopped.
    #[error(transparent)]
    Stopped(#[from] crate::NodeStopped),
}

impl PublishFailure {
    /// The failure's core error, if it is one.
    pub fn error(&self) -> Option<&PublishError> {
        match self {
            PublishFailure::Failed(f) => Some(&f.error),
            _ => None,
        }
    }
}

/// Things worth telling an operator (the binary's `--events-json`) or an embedder.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A gossip verdict.
    Verdict {
        /// Topic string.
        topic: String,
        /// op-node's message id.
        message_id: MessageId,
        /// The verdict.
        verdict: Verdict,
        /// The rule that decided.
        reason: Reason,
        /// Block number and hash, on accept.
        block: Option<(u64, B256)>,
        /// The peer that forwarded it.
        from: PeerId,
    },
    /// A block was published.
    Published {
        /// Topic string.
        topic: String,
        /// Its message id.
        message_id: MessageId,
        /// Number and hash.
        block: (u64, B256),
    },
    /// First connection to a peer.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Its address.
        addr: Multiaddr,
        /// We dialled it.
        outbound: bool,
    },
    /// Last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// The core asked to disconnect a peer.
    Disconnecting {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: op_p2p_core::DisconnectReason,
    },
    /// A listen address is up.
    Listening {
        /// The address.
        addr: Multiaddr,
    },
    /// A timed ban was made, with its reason (a score ban, or the IP ban made with one).
    Banned(op_p2p_core::BanRecord),
    /// Blocks signed by one other address keep arriving from honest-looking peers: our unsafe
    /// signer may be outdated (the core's `Action::SignerSuspect`).
    SignerSuspect {
        /// The address the blocks recover to.
        address: Address,
    },
}

/// How often gossipsub scores are copied into the core (and metrics observed).
pub const SCORE_SNAPSHOT_INTERVAL_MS: u64 = 1_000;
/// Most swarm events handled between accepting a block and forwarding it: while the loop
/// yields once to the executor (for a large block), and again right before the forward. Each may be another message to validate, so this bounds the delay a flood adds
/// to forwarding (32 invalid-signature messages ≈ 1.5 ms).
pub const MAX_EVENTS_BEFORE_FORWARD: usize = 32;
/// Accepted messages of at least this many bytes (compressed, as gossiped) wait for one trip
/// through the executor before they are forwarded, so that the connection tasks first decode
/// the IDONTWANTs that arrived during validation; smaller ones are forwarded right after the
/// ready events. Measured (BENCHMARKS.md, issue 15): for
/// 154 KB messages the copies it saves cost more than the wait, for 16 KB ones they do not.
pub const YIELD_BEFORE_FORWARD_BYTES: usize = 32 * 1024;
/// Ready swarm events handled after each admin call, so a stream of admin calls (which the
/// loop polls first) cannot starve gossip, connections and timers.
pub const MAX_EVENTS_PER_ADMIN_CALL: usize = 32;
/// Bans and the operator's peer-book changes are written at most this often (and at
/// shutdown); what discovery learned waits for
/// [`LEARNED_PERSIST_INTERVAL_MS`].
pub const PERSIST_INTERVAL_MS: u64 = 1_000;
pub use crate::state_writer::LEARNED_PERSIST_INTERVAL_MS;
/// Delivered blocks buffered for a slow consumer before the oldest are dropped.
pub const DELIVERY_QUEUE: usize = 256;

/// Everything the driver runs with.
pub(crate) struct Driver<R: Runtime> {
    /// The swarm (the node lives in `swarm.behaviour().gate`).
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) runtime: R,
    pub(crate) admin_rx: mpsc::Receiver<(AdminRequest, AdminReply)>,
    pub(crate) commands_rx: mpsc::Receiver<Command>,
    /// `enr:` records found by discv5.
    pub(crate) discovered_rx: mpsc::Receiver<String>,
    pub(crate) delivered_tx: mpsc::Sender<DeliveredBlock>,
    pub(crate) events_tx: Option<mpsc::Sender<NodeEvent>>,
    /// Writes persisted state to the data dir, if there is one.
    pub(crate) writer: Option<StateWriter>,
    /// Our identity as `opp2p_self` reports it.
    pub(crate) local: LocalInfo,
    pub(crate) metrics: Option<crate::metrics::Metrics>,
    /// libp2p's own metrics (connections, identify, ping, gossipsub messages), recorded from
    /// swarm events into the same registry.
    pub(crate) libp2p_metrics: Option<libp2p::metrics::Metrics>,
    /// The L1 signer reader, when the signer comes from L1: its updates for the core, and
    /// where [`Action::SignerSuspect`] asks for a read now.
    pub(crate) l1: Option<crate::l1_signer::ReaderLink>,
    /// The health `GET /healthz` serves, refreshed with the metrics.
    pub(crate) health: Option<crate::health::HealthReport>,
    /// Signs published blocks, off this loop.
    pub(crate) signer: Option<std::sync::Arc<dyn crate::signer::BlockSigner>>,
    /// Runs the stateless half of gossip validation on worker threads (issue 15); `None`
    /// validates on this loop.
    pub(crate) validation: Option<crate::validation_pool::ValidationPool>,
    /// Each peer's checks of the second, with or without the pool.
    pub(crate) peer_budget: crate::validation_pool::PeerBudget,
}

/// A signer's answer: the block, the result, how long the call took.
type SignedMsg = (
    PublishId,
    Result<alloy_primitives::Signature, PublishFailed>,
    Duration,
);

/// Signer answers buffered for the loop (at most one call is current; superseded or expired
/// calls may still answer late).
const SIGNED_QUEUE: usize = 16;

/// Most signer calls running at once (issue 14). The core has one block in flight, but a
/// block that passes its deadline (or is re-sealed) while its call hangs makes the core ask
/// for the next signature before the old call returns; without a bound a hung signer would
/// take one blocking thread per block until each call's own timeout. Two: the current call
/// and one abandoned one; a further request waits for a free call.
pub const MAX_SIGNING_CALLS: usize = 2;

/// The signer calls running, and the one request waiting for a free call (the core's latest:
/// it only ever waits for one signature, so a newer request replaces a waiting one).
#[derive(Debug, Default)]
struct SigningSlots {
    running: usize,
    waiting: Option<(PublishId, crate::signer::SignRequest)>,
}

struct State {
    /// Messages at the core, by handle: id, source, topic, and data size (bytes).
    held: BTreeMap<u64, (gossipsub::MessageId, PeerId, String, usize)>,
    next_handle: u64,
    admin: BTreeMap<u64, AdminReply>,
    next_admin: u64,
    streams: BTreeMap<u64, ResponseChannel<Vec<u8>>>,
    next_stream: u64,
    /// Callers waiting for their block's outcome, by publish id. Bounded by the command
    /// queue and the core's publish queue: every queued block gets exactly one outcome.
    publish_replies: BTreeMap<u64, oneshot::Sender<PublishOutcome>>,
    next_publish: u64,
    signed_tx: mpsc::Sender<SignedMsg>,
    /// Signer calls running and waiting (bounded by [`MAX_SIGNING_CALLS`]).
    signing: SigningSlots,
    app_scores: BTreeMap<PeerId, f64>,
    persist: PersistSchedule,
    last_snapshot: UnixMillis,
    dropped_deliveries: u64,
    /// Accepted messages whose verdict is not yet reported to gossipsub (see
    /// [`Driver::report_accepted`]).
    accepted: Vec<(gossipsub::MessageId, PeerId)>,
    /// Loop turns (one event each) since `accepted` became non-empty, while the forward
    /// waits for its yield (bounded by [`MAX_EVENTS_BEFORE_FORWARD`]).
    accepted_waited: usize,
    /// Whether one of `accepted` is at least [`YIELD_BEFORE_FORWARD_BYTES`].
    accepted_large: bool,
    /// The event of an ACCEPT verdict, held until the core's `Deliver` of the same message
    /// (its next action) gives the block number and hash.
    accept_event: Option<(u64, NodeEvent)>,
}

impl<R: Runtime> Driver<R> {
    fn node(&mut self) -> &mut Node {
        &mut self.swarm.behaviour_mut().gate.node
    }

    fn input(&mut self, st: &mut State, input: Input) {
        let now = self.runtime.now_ms();
        self.node().handle_input(now, input);
        self.drain(st);
    }

    fn gossip_event(&self, e: crate::metrics::GossipEvent) {
        if let Some(m) = &self.metrics {
            m.gossip_event(e);
        }
    }

    fn emit(&mut self, event: NodeEvent) {
        if let Some(tx) = &mut self.events_tx {
            // A slow event reader loses events rather than stalling the node.
            let _ = tx.try_send(event);
        }
    }

    /// Carries out every queued action.
    fn drain(&mut self, st: &mut State) {
        while let Some(action) = self.node().poll_action() {
            self.act(st, action);
        }
        // An accept without a delivery (none today) is still reported.
        if let Some((_, event)) = st.accept_event.take() {
            self.emit(event);
        }
    }

    fn act(&mut self, st: &mut State, action: Action) {
        // A held ACCEPT event goes out before anything else happens: with its block if this
        // is the delivery of its message.
        if let Some((handle, mut event)) = st.accept_event.take() {
            if let (Action::Deliver(b), NodeEvent::Verdict { block, .. }) = (&action, &mut event)
                && b.handle.0 == handle
            {
                let v1 = b.envelope.payload.as_v1();
                *block = Some((v1.block_number, v1.block_hash));
            }
            self.emit(event);
        }
        match action {
            Action::Verdict {
                handle,
                verdict,
                reason,
            } => {
                let Some((id, source, topic, size)) = st.held.remove(&handle.0) else {
                    return;
                };
                let acceptance = match verdict {
                    Verdict::Accept => MessageAcceptance::Accept,
                    Verdict::Reject => MessageAcceptance::Reject,
                    Verdict::Ignore => MessageAcceptance::Ignore,
                };
                let mut mid = [0u8; 20];
                if id.0.len() == 20 {
                    mid.copy_from_slice(&id.0);
                }
                if verdict == Verdict::Accept {
                    crate::hop_trace::hop(self.swarm.local_peer_id(), "verdict", &id, None);
                    // Forwarded once the events that arrived during validation are handled.
                    st.accepted.push((id, source));
                    st.accepted_large |= size >= YIELD_BEFORE_FORWARD_BYTES;
                } else {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(&id, &source, acceptance);
                }
                self.gossip_event(match verdict {
                    Verdict::Accept => crate::metrics::GossipEvent::DeliverMessage,
                    Verdict::Reject => crate::metrics::GossipEvent::RejectMessage,
                    Verdict::Ignore => crate::metrics::GossipEvent::DuplicateMessage,
                });
                let event = NodeEvent::Verdict {
                    topic,
                    message_id: MessageId(mid),
                    verdict,
                    reason,
                    block: None,
                    from: source,
                };
                if verdict == Verdict::Accept {
                    st.accept_event = Some((handle.0, event));
                } else {
                    self.emit(event);
                }
            }
            Action::Deliver(block) => {
                if let Some(m) = &self.metrics {
                    m.on_unsafe_payload(self.runtime.now_ms() / 1000);
                }
                if self.delivered_tx.try_send(block).is_err() {
                    st.dropped_deliveries += 1;
                    tracing::warn!(
                        dropped = st.dropped_deliveries,
                        "block consumer is slow; dropping a delivered block"
                    );
                }
            }
            Action::Sign {
                id,
                chain_id,
                payload_hash,
            } => self.sign(
                st,
                id,
                crate::signer::SignRequest {
                    chain_id,
                    payload_hash,
                },
            ),
            Action::Publish {
                id,
                topic,
                data,
                message_id,
                block,
            } => self.publish(id, topic, data.to_vec(), message_id, block),
            Action::PublishOutcome { id, outcome } => self.on_outcome(st, id, outcome),
            Action::Dial { peer, addrs } => {
                // A fresh local port for every dial, not our listen port (libp2p's default
                // reuse, which our async-std transport never did): with reuse every
                // connection we open binds the one listen port, and on a busy host a tokio
                // node's dial failed with EADDRINUSE (libp2p-tcp 0.45 retries on a new port
                // only after EADDRNOTAVAIL). We need no reuse: our dialable addresses come
                // from our ENR and identify's listen addresses, never from a connection's
                // source port, and we punch no holes through NATs.
                let opts = DialOpts::peer_id(peer)
                    .addresses(addrs)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .allocate_new_port()
                    .build();
                if let Err(e) = self.swarm.dial(opts) {
                    tracing::debug!(%peer, error = %e, "dial not started");
                }
            }
            Action::Disconnect { peer, reason } => {
                tracing::debug!(%peer, ?reason, "disconnecting");
                if reason == op_p2p_core::DisconnectReason::Banned
                    && let Some(pool) = &mut self.validation
                {
                    // Its backlog is not worth checking: IGNORE it unvalidated.
                    let dropped = pool.drop_queued_from(&peer);
                    if !dropped.is_empty() {
                        tracing::debug!(%peer, messages = dropped.len(), "dropping a banned peer's queued messages");
                    }
                    for handle in dropped {
                        if let Some(m) = &self.metrics {
                            m.validation.on_banned_backlog();
                        }
                        self.ignore_unvalidated(st, handle);
                    }
                }
                self.emit(NodeEvent::Disconnecting { peer, reason });
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Action::SetAppScore { peer, score } => {
                st.app_scores.insert(peer, score);
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .set_application_score(&peer, score);
            }
            Action::AdminResponse { id, result } => {
                if let Some(reply) = st.admin.remove(&id.0) {
                    let _ = reply.send(result);
                }
            }
            Action::PayloadResponse { stream, data } => {
                if let Some(channel) = st.streams.remove(&stream.0) {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .reqresp
                        .send_response(channel, data);
                }
            }
            Action::PersistState(changes) => st.persist.note(changes),
            // ---- issue #13: ban reasons and the stale-signer hint ----
            Action::Banned(record) => self.emit(NodeEvent::Banned(record)),
            Action::SignerSuspect { address } => {
                match &mut self.l1 {
                    Some(l1) => l1.suspect(address),
                    None => tracing::warn!(
                        %address,
                        "blocks signed by another address keep arriving; the signer may be \
                         stale (no L1 to re-read it from)"
                    ),
                }
                self.emit(NodeEvent::SignerSuspect { address });
            }
            // `Action` is non-exhaustive; an action this driver does not know is logged.
            other => tracing::warn!(?other, "action not carried out"),
        }
    }

    // ---- publishing (issue 14) ----

    /// Runs the signer on the blocking pool; its answer comes back through `signed_rx`. Never
    /// awaited here: a slow or hung signer holds one blocking thread until its own timeout,
    /// and at most [`MAX_SIGNING_CALLS`] run at once (a further request waits for one).
    fn sign(&mut self, st: &mut State, id: PublishId, request: crate::signer::SignRequest) {
        let Some(signer) = self.signer.clone() else {
            let now = self.runtime.now_ms();
            let result = Err(PublishFailed::permanent(PublishError::NoKey));
            self.node().handle_input(now, Input::Signed { id, result });
            return;
        };
        if st.signing.running >= MAX_SIGNING_CALLS {
            tracing::debug!(
                id = id.0,
                running = st.signing.running,
                "signer calls busy; the request waits"
            );
            st.signing.waiting = Some((id, request));
            return;
        }
        st.signing.running += 1;
        let rt = self.runtime.clone();
        let mut tx = st.signed_tx.clone();
        self.runtime.spawn(Box::pin(async move {
            let started = std::time::Instant::now();
            let answer = crate::runtime::blocking(&rt, move || signer.sign(&request)).await;
            let result = match answer {
                Some(Ok(sig)) => Ok(sig),
                Some(Err(e)) => Err(PublishFailed {
                    kind: e.kind(),
                    error: PublishError::Signer(e.to_string()),
                }),
                None => Err(PublishFailed::transient(PublishError::Signer(
                    "signer call panicked".into(),
                ))),
            };
            let _ = futures::SinkExt::send(&mut tx, (id, result, started.elapsed())).await;
        }));
    }

    /// A signer call returned: its place goes to the waiting request, if any.
    fn signing_call_done(&mut self, st: &mut State) {
        st.signing.running = st.signing.running.saturating_sub(1);
        if let Some((id, request)) = st.signing.waiting.take() {
            self.sign(st, id, request);
        }
    }

    /// Hands a signed block to gossipsub and tells the core how it went.
    fn publish(
        &mut self,
        id: PublishId,
        topic: String,
        data: Vec<u8>,
        message_id: MessageId,
        block: (u64, B256),
    ) {
        let topic = IdentTopic::new(topic);
        let hash = topic.hash();
        let gs = &mut self.swarm.behaviour_mut().gossipsub;
        let result = match gs.publish(topic.clone(), data) {
            Ok(mid) => {
                crate::hop_trace::hop(self.swarm.local_peer_id(), "pub", &mid, None);
                let gs = &mut self.swarm.behaviour_mut().gossipsub;
                // Without flood publishing gossipsub sends to the mesh (or the fanout, which
                // it does not expose: then every peer on the topic is named).
                let mut peers: Vec<PeerId> = gs.mesh_peers(&hash).copied().collect();
                if peers.is_empty() {
                    peers = gs
                        .all_peers()
                        .filter(|(_, topics)| topics.contains(&&hash))
                        .map(|(p, _)| *p)
                        .collect();
                }
                self.gossip_event(crate::metrics::GossipEvent::PublishMessage);
                tracing::debug!(topic = %hash, number = block.0, hash = %block.1, peers = peers.len(), "published");
                self.emit(NodeEvent::Published {
                    topic: hash.to_string(),
                    message_id,
                    block,
                });
                Ok(peers)
            }
            Err(e) => {
                if let Some(m) = &self.metrics {
                    m.on_publish_error(self.runtime.now_ms() / 1000);
                }
                let transient = matches!(
                    e,
                    gossipsub::PublishError::NoPeersSubscribedToTopic
                        | gossipsub::PublishError::AllQueuesFull(_)
                );
                tracing::debug!(topic = %hash, number = block.0, error = %e, "gossipsub did not publish");
                let error = if matches!(e, gossipsub::PublishError::NoPeersSubscribedToTopic) {
                    PublishError::NoPeers
                } else {
                    PublishError::Gossip(e.to_string())
                };
                Err(if transient {
                    PublishFailed::transient(error)
                } else {
                    PublishFailed::permanent(error)
                })
            }
        };
        let now = self.runtime.now_ms();
        self.node()
            .handle_input(now, Input::Published { id, result });
    }

    fn on_outcome(&mut self, st: &mut State, id: PublishId, outcome: PublishOutcome) {
        if let Some(m) = &self.metrics {
            m.publish.on_outcome(&outcome);
            m.publish
                .set_queue_length(self.swarm.behaviour().gate.node.publish_queue_len());
        }
        if let Some(reply) = st.publish_replies.remove(&id.0) {
            let _ = reply.send(outcome);
        }
    }

    fn on_swarm_event(&mut self, st: &mut State, event: SwarmEvent<Event>) {
        if let Some(m) = &self.libp2p_metrics {
            use libp2p::metrics::Recorder;
            m.record(&event);
            match &event {
                SwarmEvent::Behaviour(Event::Gossipsub(e)) => m.record(e),
                SwarmEvent::Behaviour(Event::Identify(e)) => m.record(e),
                SwarmEvent::Behaviour(Event::Ping(e)) => m.record(e),
                _ => {}
            }
        }
        match event {
            SwarmEvent::Behaviour(Event::Gossipsub(e)) => self.on_gossipsub(st, e),
            SwarmEvent::Behaviour(Event::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                let input = Input::Identified {
                    peer: peer_id,
                    agent_version: info.agent_version,
                    protocol_version: info.protocol_version,
                    protocols: info.protocols.iter().map(|p| p.to_string()).collect(),
                    listen_addrs: info.listen_addrs,
                };
                self.input(st, input);
            }
            SwarmEvent::Behaviour(Event::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            })) => {
                self.input(
                    st,
                    Input::Ping {
                        peer,
                        rtt_ns: rtt.as_nanos().min(u64::MAX as u128) as u64,
                    },
                );
            }
            SwarmEvent::Behaviour(Event::ReqResp(request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            })) => {
                let stream = st.next_stream;
                st.next_stream += 1;
                st.streams.insert(stream, channel);
                self.input(
                    st,
                    Input::PayloadRequest {
                        stream: StreamHandle(stream),
                        peer,
                        data: request.into(),
                    },
                );
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.local.addrs.push(address.clone());
                let info = self.local.clone();
                self.input(st, Input::SetLocalInfo(Box::new(info)));
                self.emit(NodeEvent::Listening { addr: address });
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } if num_established.get() == 1 => {
                self.drain(st);
                let addr = endpoint.get_remote_address().clone();
                self.gossip_event(crate::metrics::GossipEvent::AddPeer);
                self.emit(NodeEvent::PeerConnected {
                    peer: peer_id,
                    addr,
                    outbound: endpoint.is_dialer(),
                });
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                st.app_scores.remove(&peer_id);
                self.drain(st);
                self.gossip_event(crate::metrics::GossipEvent::RemovePeer);
                self.emit(NodeEvent::PeerDisconnected { peer: peer_id });
            }
            _ => self.drain(st),
        }
    }

    fn on_gossipsub(&mut self, st: &mut State, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                crate::hop_trace::hop(
                    self.swarm.local_peer_id(),
                    "recv",
                    &message_id,
                    Some(&propagation_source),
                );
                let handle = st.next_handle;
                st.next_handle += 1;
                let topic = message.topic.into_string();
                let size = message.data.len();
                st.held.insert(
                    handle,
                    (message_id, propagation_source, topic.clone(), size),
                );
                let msg = GossipMessage {
                    handle: MessageHandle(handle),
                    topic,
                    data: message.data.into(),
                    source: Some(propagation_source),
                };
                self.dispatch_gossip(st, msg);
            }
            gossipsub::Event::Subscribed { peer_id, topic, .. } => self.input(
                st,
                Input::Subscription {
                    peer: peer_id,
                    topic: topic.into_string(),
                    subscribed: true,
                },
            ),
            gossipsub::Event::Unsubscribed { peer_id, topic } => self.input(
                st,
                Input::Subscription {
                    peer: peer_id,
                    topic: topic.into_string(),
                    subscribed: false,
                },
            ),
            _ => {}
        }
    }

    // ---- validation on every core (issue 15) ----

    /// Validates a received message: on the worker pool when there is one (its result comes
    /// back through [`Driver::on_validated`]), else here; a small one here too while the pool
    /// is idle ([`crate::validation_pool::ValidationPool::inline_ok`]). A peer over its checks a
    /// second ([`crate::validation_pool::PeerBudget`]) is IGNOREd unvalidated, pool or not; a
    /// full pool IGNOREs, unvalidated, the newest messages of the peer with the most queued, or
    /// this one (see [`crate::validation_pool`]).
    fn dispatch_gossip(&mut self, st: &mut State, msg: GossipMessage) {
        let now = self.runtime.now_ms();
        if !self.peer_budget.allow(now, msg.source) {
            tracing::trace!(handle = msg.handle.0, source = ?msg.source, "peer over its checks a second: ignoring a message");
            if let Some(m) = &self.metrics {
                m.validation.on_over_budget();
            }
            self.ignore_unvalidated(st, msg.handle);
            return;
        }
        let Some(pool) = &mut self.validation else {
            self.input(st, Input::Gossip(msg));
            return;
        };
        if pool.inline_ok(now, msg.data.len()) {
            self.input(st, Input::Gossip(msg));
            return;
        }
        let checker = self.swarm.behaviour().gate.node.stateless_checker();
        for handle in pool.submit(now, checker, msg) {
            tracing::debug!(
                handle = handle.0,
                "validation pool full: ignoring a message"
            );
            if let Some(m) = &self.metrics {
                m.validation.on_overflow();
            }
            self.ignore_unvalidated(st, handle);
        }
    }

    /// Hands the pool's results that are back, in the order the workers took the messages
    /// (each peer's in arrival order), to the core.
    fn on_validated(&mut self, st: &mut State) {
        if let Some(pool) = &mut self.validation {
            pool.collect_ready();
        }
        while let Some(done) = self.validation.as_mut().and_then(|p| p.pop_ready()) {
            match done.checked {
                Ok(Some(checked)) => self.input(st, Input::GossipChecked(done.msg, checked)),
                // Not a block topic: the core rejects it without a check.
                Ok(None) => self.input(st, Input::Gossip(done.msg)),
                Err(e) => {
                    tracing::error!(handle = done.msg.handle.0, error = %e, "ignoring a message");
                    if let Some(m) = &self.metrics {
                        m.validation.on_check_failed();
                    }
                    self.ignore_unvalidated(st, done.msg.handle);
                }
            }
        }
    }

    /// Reports IGNORE for a held message the core never saw.
    fn ignore_unvalidated(&mut self, st: &mut State, handle: MessageHandle) {
        if let Some((id, source, _, _)) = st.held.remove(&handle.0) {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, MessageAcceptance::Ignore);
        }
    }

    /// Samples the pool's series.
    fn observe_validation_pool(&self) {
        if let Some(m) = &self.metrics {
            let (workers, pending) = self
                .validation
                .as_ref()
                .map_or((0, 0), |p| (p.workers(), p.pending()));
            m.validation.set_pool(workers, pending);
        }
    }

    /// Reports the accepted messages to gossipsub, which forwards them to the mesh.
    ///
    /// Validation runs on this task, so while a block was being validated the IDONTWANTs mesh
    /// peers sent on receiving it (gossipsub 1.2) queued up unread, and forwarding at once
    /// would send the block to peers that already have it. So for a large block (at least
    /// [`YIELD_BEFORE_FORWARD_BYTES`]) the loop first yields once to the executor
    /// ([`YieldOnce`]), which lets the connection tasks decode what arrived meanwhile; then
    /// this handles the swarm events that are ready (at most
    /// [`MAX_EVENTS_BEFORE_FORWARD`], never waiting), so gossipsub skips those peers. Blocks
    /// accepted meanwhile are forwarded in the same batch.
    fn report_accepted(&mut self, st: &mut State) {
        st.accepted_waited = 0;
        st.accepted_large = false;
        if st.accepted.is_empty() {
            return;
        }
        self.handle_ready_swarm_events(st, MAX_EVENTS_BEFORE_FORWARD);
        for (id, source) in std::mem::take(&mut st.accepted) {
            crate::hop_trace::hop(self.swarm.local_peer_id(), "fwd", &id, None);
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, MessageAcceptance::Accept);
        }
    }

    /// Handles up to `max` swarm events that are ready now, never waiting.
    fn handle_ready_swarm_events(&mut self, st: &mut State, max: usize) {
        for _ in 0..max {
            // A pending poll registers a no-op waker; the loop's next `select` polls the swarm
            // again with the task's waker, so no wake-up is lost.
            match self.swarm.next().now_or_never() {
                Some(Some(event)) => self.on_swarm_event(st, event),
                _ => break,
            }
        }
    }

    /// Copies gossipsub's scores (minus the application part we set) into the core.
    fn snapshot_scores(&mut self, st: &mut State) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        let gs = &self.swarm.behaviour().gossipsub;
        let scores: Vec<(PeerId, GossipScores)> = peers
            .into_iter()
            .filter_map(|p| {
                let total = gs.peer_score(&p)?;
                let app = st.app_scores.get(&p).copied().unwrap_or(0.0);
                Some((
                    p,
                    GossipScores {
                        total: total - app,
                        ..Default::default()
                    },
                ))
            })
            .collect();
        if !scores.is_empty() {
            self.input(st, Input::GossipScores(scores));
        }
    }

    /// Hands the parts due now (everything with `force`, at shutdown) to the writer; see
    /// [`PersistSchedule`].
    fn persist(&mut self, st: &mut State, now: UnixMillis, force: bool) {
        let due = if force {
            st.persist.all()
        } else {
            st.persist.due(now)
        };
        if due.is_empty() {
            return;
        }
        if let Some(writer) = &mut self.writer {
            writer.submit(self.swarm.behaviour().gate.node.export_parts(due));
        }
    }

    /// Runs until a [`Command::Shutdown`] (or until the handle is dropped), then writes the
    /// state one last time and waits for the write.
    pub(crate) async fn run(mut self) {
        let (signed_tx, mut signed_rx) = mpsc::channel::<SignedMsg>(SIGNED_QUEUE);
        let mut st = State {
            held: BTreeMap::new(),
            next_handle: 0,
            admin: BTreeMap::new(),
            next_admin: 0,
            streams: BTreeMap::new(),
            next_stream: 0,
            publish_replies: BTreeMap::new(),
            next_publish: 0,
            signed_tx,
            signing: SigningSlots::default(),
            app_scores: BTreeMap::new(),
            persist: PersistSchedule::default(),
            last_snapshot: 0,
            dropped_deliveries: 0,
            accepted: Vec::new(),
            accepted_waited: 0,
            accepted_large: false,
            accept_event: None,
        };
        let info = self.local.clone();
        self.input(&mut st, Input::SetLocalInfo(Box::new(info)));
        // Armed when a block is accepted; ready after one trip through the executor, when the
        // accepted blocks are forwarded (see `report_accepted`).
        let mut forward_soon = futures::future::Fuse::terminated();
        loop {
            let now = self.runtime.now_ms();
            let next = self
                .swarm
                .behaviour()
                .gate
                .node
                .poll_timeout()
                .unwrap_or(now + 1_000);
            let wait = next.saturating_sub(now).clamp(1, 1_000);
            let mut sleep = self.runtime.sleep(Duration::from_millis(wait)).fuse();
            futures::select_biased! {
                cmd = self.commands_rx.next() => match cmd {
                    Some(Command::Shutdown) => break,
                    None => break,
                    Some(Command::SetUnsafeSigner(a)) => self.input(&mut st, Input::SetUnsafeSigner(a)),
                    Some(Command::Publish(req, reply)) => {
                        let id = st.next_publish;
                        st.next_publish += 1;
                        st.publish_replies.insert(id, reply);
                        self.input(&mut st, Input::Publish { id: PublishId(id), request: req });
                    }
                },
                call = self.admin_rx.next() => if let Some((request, reply)) = call {
                    let id = st.next_admin;
                    st.next_admin += 1;
                    st.admin.insert(id, reply);
                    self.input(&mut st, Input::Admin { id: RequestId(id), request });
                    // Admin calls come before swarm events in this select; a stream of them
                    // must not starve the network, so every call lets ready events run.
                    self.handle_ready_swarm_events(&mut st, MAX_EVENTS_PER_ADMIN_CALL);
                    // ...and the validation results that are back (issue 15).
                    self.on_validated(&mut st);
                },
                _ = validated(&mut self.validation).fuse() => self.on_validated(&mut st),
                event = self.swarm.select_next_some() => self.on_swarm_event(&mut st, event),
                () = forward_soon => self.report_accepted(&mut st),
                signed = signed_rx.next() => if let Some((id, result, took)) = signed {
                    if let Some(m) = &self.metrics {
                        m.publish.on_signed(took);
                    }
                    self.signing_call_done(&mut st);
                    self.input(&mut st, Input::Signed { id, result });
                },
                enr = self.discovered_rx.next() => if let Some(text) = enr {
                    match parse_enr::<DefaultKey>(&text) {
                        Ok(enr) => self.input(&mut st, Input::Discovered(Box::new(enr))),
                        Err(e) => tracing::debug!(error = %e, "discovered record does not parse"),
                    }
                },
                input = l1_update(&mut self.l1).fuse() => self.input(&mut st, input),
                _ = sleep => {}
            }
            // ---- forward after one yield (issue 15) ----
            if !st.accepted.is_empty() && !st.accepted_large {
                // Small blocks: a copy too many costs less than the wait for the executor.
                self.report_accepted(&mut st);
            } else if !st.accepted.is_empty() {
                if futures::future::FusedFuture::is_terminated(&forward_soon) {
                    forward_soon = YieldOnce::default().fuse();
                } else {
                    // Events ready one after another never let the yield complete: forward
                    // after at most MAX_EVENTS_BEFORE_FORWARD of them.
                    st.accepted_waited += 1;
                    if st.accepted_waited >= MAX_EVENTS_BEFORE_FORWARD {
                        self.report_accepted(&mut st);
                        forward_soon = futures::future::Fuse::terminated();
                    }
                }
            }
            // ---- end forward after one yield ----
            let now = self.runtime.now_ms();
            // Every input already runs the node's due timers; tick only when one is due and
            // no input ran it (the sleep fired, or a swarm event that fed the node nothing).
            let due = self
                .swarm
                .behaviour()
                .gate
                .node
                .poll_timeout()
                .is_some_and(|t| t <= now);
            if due {
                self.input(&mut st, Input::Tick);
            }
            if now.saturating_sub(st.last_snapshot) >= SCORE_SNAPSHOT_INTERVAL_MS {
                st.last_snapshot = now;
                self.snapshot_scores(&mut st);
                if let Some(m) = &self.metrics {
                    m.observe(&self.swarm.behaviour().gate.node);
                }
                if let Some(h) = &self.health {
                    h.observe(&self.swarm.behaviour().gate.node, now);
                }
                self.observe_validation_pool();
            }
            self.persist(&mut st, now, false);
        }
        let now = self.runtime.now_ms();
        self.persist(&mut st, now, true);
        for (_, reply) in std::mem::take(&mut st.admin) {
            let _ = reply.send(Err(op_p2p_core::admin::AdminError::Unavailable));
        }
        if let Some(writer) = self.writer.take() {
            writer.finish().await;
        }
    }
}

/// A future that is pending once, waking its task at once, and then ready: awaiting it lets
/// the executor run the other ready tasks (on any runtime) before the awaiting task goes on.
#[derive(Debug, Default)]
struct YieldOnce {
    yielded: bool,
}

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.yielded {
            return std::task::Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// The next input from the L1 signer reader; pending forever without one.
async fn l1_update(l1: &mut Option<crate::l1_signer::ReaderLink>) -> Input {
    match l1 {
        Some(l1) => l1.next().await,
        None => futures::future::pending().await,
    }
}

/// Waits for the next result of the validation pool; pending forever without one.
async fn validated(pool: &mut Option<crate::validation_pool::ValidationPool>) {
    match pool {
        Some(pool) => pool.wait_result().await,
        None => futures::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn yield_once_is_pending_once_waking_its_task_then_ready() {
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(YieldOnce::default());
        assert_eq!(f.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "woken at once, not lost");
        assert_eq!(f.as_mut().poll(&mut cx), Poll::Ready(()));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    }
}
