//! [`Node`]: the sans-IO owner type. Inputs go in through [`Node::handle_input`] with an
//! explicit `now`; actions come out of [`Node::poll_action`]; [`Node::poll_timeout`] says when
//! the node next wants an [`Input::Tick`]. Connection hooks that must answer inside libp2p's
//! call are the synchronous gate queries [`Node::allow_dial`], [`Node::allow_inbound`] and
//! [`Node::allow_established`].
//!
//! The node ties the pure modules together: [`crate::gossip::validate`] for gossip, [`crate::peers::gater`]
//! for connection decisions, [`crate::peers::book`] for what is known of each peer,
//! [`crate::peers::tides`] for the dial and trim tides, [`crate::peers::scoring`] for application scores
//! and bans, [`crate::discovery`] for the discovery table, [`crate::reqresp`] for serving
//! `payload_by_number`, and [`crate::admin`] for the `opp2p_*` API.

mod peering;
mod rng;
mod rpc;
mod serve;
mod state;

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes};
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use op_alloy_rpc_types_engine::{OpExecutionPayload, OpNetworkPayloadEnvelope};

use crate::admin::{AdminError, AdminRequest, AdminResponse};
use crate::discovery::{DiscoveryTable, Enr, TableConfig};
use crate::gossip::signature::SequencerKey;
use crate::gossip::topic::{BlockTopic, BlockVersion};
use crate::gossip::validate::{Reason, Validator, ValidatorConfig, Verdict};
use crate::gossip::wire::MessageId;
use crate::peers::book::{GossipScores, PeerBook, PeerBookConfig};
use crate::peers::gater::{Gater, GaterConfig};
use crate::peers::scoring::{AppScoreConfig, AppScores, BanConfig, BanMonitor};
use crate::peers::tides::{ConnConfig, ConnManager};
use crate::reqresp::ChainClock;
use crate::reqresp::limit::{RateLimitConfig, ServerRateLimits};
use crate::reqresp::store::{PayloadStore, StoreConfig};
use crate::stats::Stats;

pub use peering::DisconnectReason;
pub use rng::SplitMix64;
pub use state::{NodeState, RestoreReport, STATE_VERSION, StateError};

pub use crate::peers::book::Direction;

/// Unix time in milliseconds: the only notion of time the core has. The runtime reads the wall
/// clock; simulations pass virtual time.
pub type UnixMillis = u64;

/// The runtime's token for a gossip message it holds until the core's verdict (for example an
/// index into its map of gossipsub message ids and propagation sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageHandle(pub u64);

/// The runtime's token for an admin call, echoed in [`Action::AdminResponse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The runtime's token for an inbound `payload_by_number` stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamHandle(pub u64);

/// What the node says about itself in `opp2p_self`; set at start and whenever it changes
/// (new listen address, new ENR).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalInfo {
    /// Identify agent version, e.g. `op-p2p/0.1.0`.
    pub agent_version: String,
    /// Identify protocol version.
    pub protocol_version: String,
    /// Our `enr:` text, if discovery runs.
    pub enr: Option<String>,
    /// Our listen addresses.
    pub addrs: Vec<Multiaddr>,
    /// Protocols we serve.
    pub protocols: Vec<String>,
}

/// Node settings. [`Config::new`] gives op-node's defaults for the rest.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our libp2p peer id (never dialled, never admitted as a remote).
    pub local_peer_id: PeerId,
    /// Validation settings (chain id, signer, forks, windows, bounds).
    pub validator: ValidatorConfig,
    /// L2 block time, seconds (scoring slots, req/resp head).
    pub block_time_secs: u64,
    /// The peer book's bounds.
    pub peers: PeerBookConfig,
    /// Dial and trim tides.
    pub conn: ConnConfig,
    /// Gating lists and caps.
    pub gater: GaterConfig,
    /// Score-based bans.
    pub bans: BanConfig,
    /// Application scores.
    pub app_scores: AppScoreConfig,
    /// The discovery table; `None` runs without discovery (`opp2p_discoveryTable` then
    /// answers "discovery disabled").
    pub discovery: Option<TableConfig>,
    /// Peers always redialled and never banned or pruned, with their addresses.
    pub static_peers: Vec<(PeerId, Vec<Multiaddr>)>,
    /// Serving `payload_by_number`: `None` answers every request with `1` (not found), the stub
    /// the spec recommends now that op-node stopped requesting.
    pub reqresp: Option<ReqRespConfig>,
    /// Key used to sign [`PublishRequest::Sign`] (sequencers only).
    pub sequencer_key: Option<SequencerKey>,
    /// Seed of the node's RNG (dial shuffles). Fixed in simulations, from the OS in production.
    pub rng_seed: u64,
    /// Most admin `connectPeer` calls waiting at once.
    pub max_pending_connects: usize,
    /// Most `payload_by_number` requests waiting for a rate-limit token at once.
    pub max_throttled_requests: usize,
}

/// Settings for serving `payload_by_number`.
#[derive(Debug, Clone)]
pub struct ReqRespConfig {
    /// The chain's genesis, for the wall-clock head.
    pub clock: ChainClock,
    /// The recent-block store's bounds.
    pub store: StoreConfig,
    /// Rate limits.
    pub limits: RateLimitConfig,
}

impl Config {
    /// The one hard limit on connected peers, from the high water mark and the static peers
    /// ([`ConnConfig::max_connected`]).
    pub fn max_connected_peers(&self) -> usize {
        self.conn.max_connected(self.static_peers.len())
    }

    /// op-node's defaults for a chain, a signer and our peer id.
    pub fn new(
        chain_id: u64,
        unsafe_signer: Address,
        forks: crate::fork::ForkSchedule,
        block_time_secs: u64,
        local_peer_id: PeerId,
    ) -> Self {
        Self {
            local_peer_id,
            validator: ValidatorConfig::new(chain_id, unsafe_signer, forks, block_time_secs),
            block_time_secs,
            peers: PeerBookConfig::default(),
            conn: ConnConfig::default(),
            gater: GaterConfig::default(),
            bans: BanConfig::default(),
            app_scores: AppScoreConfig::light(block_time_secs),
            discovery: Some(TableConfig::default()),
            static_peers: Vec::new(),
            reqresp: None,
            sequencer_key: None,
            rng_seed: 0,
            max_pending_connects: 64,
            max_throttled_requests: 256,
        }
    }
}

/// A gossip message held for validation.
#[derive(Debug, Clone)]
pub struct GossipMessage {
    /// The runtime's token, echoed in the verdict.
    pub handle: MessageHandle,
    /// The gossipsub topic string.
    pub topic: String,
    /// The gossipsub `data` field, exactly as received.
    pub data: Bytes,
    /// The peer that forwarded it to us (gossipsub's propagation source), when known. Its
    /// application score is charged for REJECTs.
    pub source: Option<PeerId>,
}

/// A block to publish.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PublishRequest {
    /// Sign with [`Config::sequencer_key`] and publish.
    Sign {
        /// The payload.
        payload: Box<OpExecutionPayload>,
        /// Its parent beacon block root (v3/v4).
        parent_beacon_block_root: Option<B256>,
    },
    /// Publish an envelope someone already signed.
    Signed(Arc<OpNetworkPayloadEnvelope>),
}

/// Why a publish did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// [`PublishRequest::Sign`] without a sequencer key.
    #[error("no sequencer key configured")]
    NoKey,
    /// The payload's version is not the one the fork schedule gives its timestamp.
    #[error("payload is {got} but a block at this timestamp is published as {want}")]
    WrongVersion {
        /// Version of the payload.
        got: BlockVersion,
        /// Version the fork schedule requires.
        want: BlockVersion,
    },
    /// The payload could not be encoded.
    #[error(transparent)]
    Encode(#[from] crate::gossip::wire::EncodeError),
}

/// Something that happened, fed to the node.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input {
    /// A gossip message to validate; answered by exactly one [`Action::Verdict`].
    Gossip(GossipMessage),
    /// The unsafe block signer changed (from L1's SystemConfig, or the operator).
    SetUnsafeSigner(Address),
    /// A timer fired (or any time passed); see [`Node::poll_timeout`].
    Tick,
    /// The first connection to `peer` is up (after [`Node::allow_established`] allowed it).
    ConnectionEstablished {
        /// The peer.
        peer: PeerId,
        /// Its address on this connection.
        addr: Multiaddr,
        /// Who dialled.
        direction: Direction,
    },
    /// The last connection to `peer` closed.
    ConnectionClosed {
        /// The peer.
        peer: PeerId,
    },
    /// A dial we were asked to make failed.
    DialFailed {
        /// The peer.
        peer: PeerId,
        /// The error, for `connectPeer` callers.
        error: String,
    },
    /// Identify information from a peer.
    Identified {
        /// The peer.
        peer: PeerId,
        /// Agent version.
        agent_version: String,
        /// Protocol version.
        protocol_version: String,
        /// Protocols it speaks.
        protocols: Vec<String>,
        /// Addresses it listens on.
        listen_addrs: Vec<Multiaddr>,
    },
    /// A ping round trip, in nanoseconds.
    Ping {
        /// The peer.
        peer: PeerId,
        /// Round-trip time.
        rtt_ns: u64,
    },
    /// A peer subscribed to (`true`) or left (`false`) a topic.
    Subscription {
        /// The peer.
        peer: PeerId,
        /// The topic string.
        topic: String,
        /// Joined or left.
        subscribed: bool,
    },
    /// Gossipsub scores, **without** the application-specific part (the runtime subtracts what
    /// it last set from [`Action::SetAppScore`]), for peers it has scores for.
    GossipScores(Vec<(PeerId, GossipScores)>),
    /// A record found by discovery.
    Discovered(Box<Enr>),
    /// Our own identity details changed.
    SetLocalInfo(Box<LocalInfo>),
    /// An admin (`opp2p_*`) call; answered by one [`Action::AdminResponse`].
    Admin {
        /// The caller's token.
        id: RequestId,
        /// The parsed call.
        request: AdminRequest,
    },
    /// Publish a block; answered by [`Action::Publish`] or [`Action::PublishFailed`].
    Publish(PublishRequest),
    /// An inbound `payload_by_number` request (the bytes the client wrote before half-closing);
    /// answered by one [`Action::PayloadResponse`].
    PayloadRequest {
        /// The stream.
        stream: StreamHandle,
        /// The requesting peer.
        peer: PeerId,
        /// The request bytes.
        data: Bytes,
    },
}

/// A block accepted from gossip, for the application.
#[derive(Debug, Clone)]
pub struct DeliveredBlock {
    /// The message it came in.
    pub handle: MessageHandle,
    /// The topic version it came on.
    pub version: BlockVersion,
    /// The decoded, validated envelope.
    pub envelope: Arc<OpNetworkPayloadEnvelope>,
}

/// Something the runtime must do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Action {
    /// Report this verdict for a held message to gossipsub.
    Verdict {
        /// The held message.
        handle: MessageHandle,
        /// What to report.
        verdict: Verdict,
        /// Why.
        reason: Reason,
    },
    /// Hand an accepted block to the application.
    Deliver(DeliveredBlock),
    /// Publish these bytes on this topic (anonymous, no from/seqno/signature).
    Publish {
        /// Topic string.
        topic: String,
        /// Gossip `data`.
        data: Bytes,
        /// op-node's message id of it.
        message_id: MessageId,
        /// Block number and hash, for logs.
        block: (u64, B256),
    },
    /// A publish was refused.
    PublishFailed(PublishError),
    /// Dial the peer at these addresses.
    Dial {
        /// The peer.
        peer: PeerId,
        /// Where.
        addrs: Vec<Multiaddr>,
    },
    /// Close every connection to the peer.
    Disconnect {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
    },
    /// Set gossipsub's application-specific score of the peer.
    SetAppScore {
        /// The peer.
        peer: PeerId,
        /// The score (weight 1).
        score: f64,
    },
    /// The answer to an admin call.
    AdminResponse {
        /// The caller's token.
        id: RequestId,
        /// The result.
        result: Result<AdminResponse, AdminError>,
    },
    /// Write these bytes on the stream and close it.
    PayloadResponse {
        /// The stream.
        stream: StreamHandle,
        /// The whole response.
        data: Vec<u8>,
    },
    /// Persistent state changed: export it with [`Node::export_state`] and write it.
    PersistState,
}

/// The protocol core. Single-threaded, deterministic, no I/O.
///
/// Drain contract: after every [`Node::handle_input`], call [`Node::poll_action`] until it
/// returns `None`, then read [`Node::poll_timeout`] and call `handle_input(now, Input::Tick)`
/// no later than that.
#[derive(Debug)]
pub struct Node {
    config: Config,
    chain_id: u64,
    validator: Validator,
    actions: VecDeque<Action>,
    stats: Stats,
    /// Largest `now` seen: timers never go backwards even if the wall clock does.
    clock: UnixMillis,
    rng: SplitMix64,
    book: PeerBook,
    conn: ConnManager,
    gater: Gater,
    scores: AppScores,
    bans: BanMonitor,
    discovery: Option<DiscoveryTable>,
    local: LocalInfo,
    /// Admin `connectPeer` calls waiting: peer -> (caller, deadline). Bounded by
    /// [`Config::max_pending_connects`].
    pending_connects: BTreeMap<PeerId, Vec<(RequestId, UnixMillis)>>,
    store: Option<PayloadStore>,
    limits: Option<ServerRateLimits>,
    /// Requests waiting for their rate-limit slot: (serve at, stream, number). Bounded by
    /// [`Config::max_throttled_requests`].
    throttled: Vec<(UnixMillis, StreamHandle, u64)>,
    next_housekeeping: UnixMillis,
    persist_pending: bool,
    /// The application score last sent to gossipsub per peer (only non-zero ones; bounded by
    /// the app-score table, entries leave when the score decays to zero or the peer leaves).
    app_scores_sent: BTreeMap<PeerId, f64>,
}

/// Housekeeping (expiry of the peer book, bans, discovery table, rate-limit buckets) runs
/// at least this often.
pub const HOUSEKEEPING_INTERVAL_MS: u64 = 1_000;

impl Node {
    /// A node with empty state.
    pub fn new(config: Config) -> Self {
        let chain_id = config.validator.chain_id;
        let max_connected = config.max_connected_peers();
        let mut book = PeerBook::new(config.peers.clone());
        for (peer, addrs) in &config.static_peers {
            // Static peers are few and configured by the operator; a full book refuses extra
            // ones, which the count in the book's bound makes visible.
            let _ = book.set_static(0, *peer, true);
            let _ = book.add_addrs(0, *peer, addrs.iter().cloned());
        }
        Self {
            chain_id,
            validator: Validator::new(config.validator.clone()),
            actions: VecDeque::new(),
            stats: Stats::default(),
            clock: 0,
            rng: SplitMix64::new(config.rng_seed),
            book,
            conn: ConnManager::new(config.conn.clone(), config.local_peer_id, max_connected),
            gater: Gater::new(config.gater.clone(), max_connected),
            scores: AppScores::new(config.app_scores),
            bans: BanMonitor::new(config.bans, max_connected),
            discovery: config.discovery.map(|t| DiscoveryTable::new(chain_id, t)),
            local: LocalInfo::default(),
            pending_connects: BTreeMap::new(),
            store: config.reqresp.as_ref().map(|r| PayloadStore::new(r.store)),
            limits: config
                .reqresp
                .as_ref()
                .map(|r| ServerRateLimits::new(r.limits, 0)),
            throttled: Vec::new(),
            next_housekeeping: 0,
            persist_pending: false,
            app_scores_sent: BTreeMap::new(),
            config,
        }
    }

    /// Feeds one input at `now`.
    pub fn handle_input(&mut self, now: UnixMillis, input: Input) {
        self.clock = self.clock.max(now);
        let now = self.clock;
        match input {
            Input::Gossip(msg) => self.handle_gossip(now, msg),
            Input::SetUnsafeSigner(signer) => self.validator.set_signer(signer, now),
            Input::Tick => {}
            Input::ConnectionEstablished {
                peer,
                addr,
                direction,
            } => self.on_connection_established(now, peer, addr, direction),
            Input::ConnectionClosed { peer } => self.on_connection_closed(now, peer),
            Input::DialFailed { peer, error } => self.on_dial_failed(now, peer, error),
            Input::Identified {
                peer,
                agent_version,
                protocol_version,
                protocols,
                listen_addrs,
            } => self.on_identified(
                now,
                peer,
                &agent_version,
                &protocol_version,
                &protocols,
                listen_addrs,
            ),
            Input::Ping { peer, rtt_ns } => self.book.record_ping(now, &peer, rtt_ns),
            Input::Subscription {
                peer,
                topic,
                subscribed,
            } => {
                if let Ok(t) = BlockTopic::parse(&topic)
                    && t.chain_id == self.chain_id
                {
                    self.book.set_subscribed(&peer, t.version, subscribed);
                }
            }
            Input::GossipScores(scores) => {
                for (peer, s) in scores {
                    self.book.set_scores(&peer, s);
                }
            }
            Input::Discovered(enr) => self.on_discovered(now, *enr),
            Input::SetLocalInfo(info) => self.local = *info,
            Input::Admin { id, request } => self.handle_admin(now, id, request),
            Input::Publish(req) => self.handle_publish(now, req),
            Input::PayloadRequest { stream, peer, data } => {
                self.handle_payload_request(now, stream, peer, &data)
            }
        }
        self.run_timers(now);
        if std::mem::take(&mut self.persist_pending) {
            self.actions.push_back(Action::PersistState);
        }
    }

    fn handle_gossip(&mut self, now: UnixMillis, msg: GossipMessage) {
        let topic = match BlockTopic::parse(&msg.topic) {
            Ok(t) if t.chain_id == self.chain_id => t,
            _ => {
                self.push_verdict(now, msg.handle, msg.source, Reason::UnknownTopic);
                return;
            }
        };
        let outcome = self.validator.validate(now, topic.version, &msg.data);
        self.push_verdict(now, msg.handle, msg.source, outcome.reason);
        if let Some(envelope) = outcome.block {
            if let Some(store) = &mut self.store {
                let _ = store.insert(envelope.clone());
            }
            self.actions.push_back(Action::Deliver(DeliveredBlock {
                handle: msg.handle,
                version: topic.version,
                envelope,
            }));
        }
    }

    fn push_verdict(
        &mut self,
        now: UnixMillis,
        handle: MessageHandle,
        source: Option<PeerId>,
        reason: Reason,
    ) {
        self.stats.count_verdict(reason);
        let verdict = reason.verdict();
        tracing::debug!(handle = handle.0, %reason, verdict = verdict.as_str(), "gossip verdict");
        self.actions.push_back(Action::Verdict {
            handle,
            verdict,
            reason,
        });
        if let Some(peer) = source
            && verdict == Verdict::Reject
        {
            self.scores.on_gossip_verdict(now, peer, verdict);
            self.send_app_score(peer);
        }
    }

    /// Tells gossipsub the peer's application score when it changed since we last did.
    /// Floored above graylist so REJECTs keep counting up to the ban (see
    /// `AppScores::gossipsub_score`); the ban check uses the full score.
    pub(crate) fn send_app_score(&mut self, peer: PeerId) {
        let floor = crate::peers::scoring::PeerScoreThresholds::default().graylist + 1.0;
        let score = self.scores.gossipsub_score(&peer, floor);
        let last = self.app_scores_sent.get(&peer).copied().unwrap_or(0.0);
        // Small changes are batched, but reaching zero is always reported.
        if score == last || (score != 0.0 && (score - last).abs() < 1e-3) {
            return;
        }
        if score == 0.0 {
            self.app_scores_sent.remove(&peer);
        } else {
            self.app_scores_sent.insert(peer, score);
        }
        self.actions.push_back(Action::SetAppScore { peer, score });
    }

    fn handle_publish(&mut self, now: UnixMillis, req: PublishRequest) {
        match self.publish(now, req) {
            Ok(action) => self.actions.push_back(action),
            Err(e) => {
                tracing::warn!(error = %e, "publish refused");
                self.actions.push_back(Action::PublishFailed(e));
            }
        }
    }

    fn publish(&mut self, _now: UnixMillis, req: PublishRequest) -> Result<Action, PublishError> {
        let (payload, root, signature) = match req {
            PublishRequest::Sign {
                payload,
                parent_beacon_block_root,
            } => {
                let key = self
                    .config
                    .sequencer_key
                    .as_ref()
                    .ok_or(PublishError::NoKey)?;
                let signed = crate::gossip::wire::signed_bytes(&payload, parent_beacon_block_root)?;
                let sig = key.sign_block(self.chain_id, &signed);
                (*payload, parent_beacon_block_root, sig)
            }
            PublishRequest::Signed(env) => {
                let env = Arc::unwrap_or_clone(env);
                (env.payload, env.parent_beacon_block_root, env.signature)
            }
        };
        let got = crate::gossip::wire::payload_version(&payload);
        let v1 = payload.as_v1();
        let want = self.config.validator.forks.publish_version(v1.timestamp);
        if got != want {
            return Err(PublishError::WrongVersion { got, want });
        }
        let signed = crate::gossip::wire::signed_bytes(&payload, root)?;
        let data = crate::gossip::wire::encode_message(&signature, &signed)?;
        let topic = BlockTopic::new(self.chain_id, got).to_string();
        let message_id = crate::gossip::wire::message_id(&topic, &data);
        let block = (v1.block_number, v1.block_hash);
        // Our own block arriving back from peers is a duplicate, never delivered to us again.
        self.validator.record_published(got, block.0, block.1);
        if let Some(store) = &mut self.store {
            let _ = store.insert(Arc::new(OpNetworkPayloadEnvelope {
                payload_hash: op_alloy_rpc_types_engine::PayloadHash(
                    crate::gossip::signature::payload_hash(&signed),
                ),
                payload,
                signature,
                parent_beacon_block_root: root,
            }));
        }
        Ok(Action::Publish {
            topic,
            data: data.into(),
            message_id,
            block,
        })
    }

    /// The next action, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When the node next wants an [`Input::Tick`].
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        let mut t = Some(self.next_housekeeping);
        let mut consider = |x: Option<u64>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        consider(self.validator.signer().previous().map(|(_, end)| end));
        consider(Some(self.conn.next_deadline()));
        consider(self.bans.next_deadline());
        consider(self.gater.next_expiry());
        consider(self.scores.next_decay());
        consider(
            self.pending_connects
                .values()
                .flatten()
                .map(|(_, d)| *d)
                .min(),
        );
        consider(self.throttled.iter().map(|(t, _, _)| *t).min());
        t.map(|t| t.max(self.clock))
    }

    fn run_timers(&mut self, now: UnixMillis) {
        self.validator.expire(now);
        self.peering_tick(now);
        self.serve_due(now);
        self.expire_pending_connects(now);
        if now >= self.next_housekeeping {
            self.next_housekeeping = now.saturating_add(HOUSEKEEPING_INTERVAL_MS);
            let lifted = self.gater.expire(now);
            if !lifted.is_empty() {
                self.persist_pending = true;
            }
            self.book.expire(now);
            if let Some(d) = &mut self.discovery
                && d.expire(now) > 0
            {
                self.persist_pending = true;
            }
            if let Some(l) = &mut self.limits {
                l.expire(now);
            }
            self.scores.expire(now);
        }
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The validator (signer and seen state), for inspection.
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// The gater (lists, bans, caps, decision counters).
    pub fn gater(&self) -> &Gater {
        &self.gater
    }

    /// The peer book.
    pub fn peer_book(&self) -> &PeerBook {
        &self.book
    }

    /// The discovery table, when discovery is on.
    pub fn discovery_table(&self) -> Option<&DiscoveryTable> {
        self.discovery.as_ref()
    }

    /// Application scores.
    pub fn app_scores(&self) -> &AppScores {
        &self.scores
    }

    /// The connection manager.
    pub fn conn_manager(&self) -> &ConnManager {
        &self.conn
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.config.local_peer_id
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Pending `connectPeer` calls and throttled requests, for bound checks.
    pub fn pending_counts(&self) -> (usize, usize) {
        (
            self.pending_connects.values().map(Vec::len).sum(),
            self.throttled.len(),
        )
    }

    /// Checks that every map the node holds is within its documented bound; returns the first
    /// one that is not. Cheap enough for tests, fuzzers and debug assertions.
    pub fn bounds_violation(&self) -> Option<String> {
        let c = &self.config;
        let mut checks: Vec<(&str, usize, usize)> = vec![
            ("peer book", self.book.len(), c.peers.max_peers),
            (
                "connected peers (conn manager)",
                self.conn.connected_count(),
                c.max_connected_peers(),
            ),
            (
                "connected peers (gater)",
                self.gater.connected_count(),
                c.max_connected_peers(),
            ),
            (
                "blocked peers",
                self.gater.blocked_peers().len(),
                c.gater.max_blocked_peers,
            ),
            (
                "blocked ips",
                self.gater.blocked_ips().len(),
                c.gater.max_blocked_ips,
            ),
            (
                "blocked subnets",
                self.gater.blocked_subnets().len(),
                c.gater.max_blocked_subnets,
            ),
            ("app scores", self.scores.len(), c.app_scores.max_peers),
            (
                "pending connects",
                self.pending_counts().0,
                c.max_pending_connects,
            ),
            (
                "throttled requests",
                self.throttled.len(),
                c.max_throttled_requests,
            ),
            (
                "seen hashes",
                self.validator.seen().total_hashes(),
                4 * self.validator.seen().max_heights()
                    * crate::gossip::seen::MAX_BLOCKS_PER_HEIGHT,
            ),
        ];
        for v in BlockVersion::ALL {
            checks.push((
                "seen heights",
                self.validator.seen().heights(v),
                self.validator.seen().max_heights(),
            ));
        }
        if let (Some(t), Some(tc)) = (&self.discovery, &c.discovery) {
            checks.push(("discovery table", t.len(), tc.max_entries.max(1)));
        }
        if let (Some(store), Some(rc)) = (&self.store, &c.reqresp) {
            checks.push(("payload store", store.len(), rc.store.max_entries));
        }
        if let (Some(l), Some(rc)) = (&self.limits, &c.reqresp) {
            checks.push(("rate-limit buckets", l.peer_count(), rc.limits.max_peers));
        }
        checks
            .into_iter()
            .find(|(_, len, max)| len > max)
            .map(|(what, len, max)| format!("{what}: {len} > {max}"))
    }

    /// The IP of a multiaddr's first `/ip4` or `/ip6` component.
    pub fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
        addr.iter().find_map(|p| match p {
            multiaddr::Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
            multiaddr::Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests;
