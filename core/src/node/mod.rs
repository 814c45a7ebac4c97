//! [`Node`]: the sans-IO owner type. Inputs go in through [`Node::handle_input`] with an
//! explicit `now`; actions come out of [`Node::poll_action`]; [`Node::poll_timeout`] says when
//! the node next wants an [`Input::Tick`]. Connection hooks that must answer inside libp2p's
//! call are the synchronous gate queries [`Node::allow_dial`], [`Node::allow_inbound`] and
//! [`Node::allow_established`].
//!
//! The node ties the pure modules together: [`crate::gossip::validate`] for gossip,
//! [`crate::peers::gater`] for connection decisions, [`crate::peers::book`] for what is known
//! of each peer, [`crate::peers::tides`] for the dial and trim tides, [`crate::peers::scoring`]
//! for application scores, [`crate::peers::score_ban`] for bans on score,
//! [`crate::discovery`] for the discovery table, [`crate::reqresp`] for serving
//! `payload_by_number`, and [`crate::admin`] for the `opp2p_*` API.
//!
//! The files: this one holds [`Node`] itself (input dispatch, gossip verdicts, publishing,
//! timers); `publish` the publish queue's steps (signing, publishing, outcomes); `config` its settings ([`Config`]); `io` the plain data in and out ([`Input`],
//! [`Action`] and what they carry); `peering` connections, dials, discovery and score bans;
//! `rpc` the admin calls; `serve` `payload_by_number`; `state` the persisted state; `rng` the
//! node's RNG; `inspect` (tests and `test-util` only) read access to the internal tables and
//! the bound check.

mod bans;
mod config;
mod health;
#[cfg(any(test, feature = "test-util"))]
mod inspect;
mod io;
mod peering;
mod publish;
mod publish_rpc;
mod rng;
mod rpc;
mod serve;
mod state;

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;

use crate::discovery::DiscoveryTable;
use crate::gossip::stale_view::{Judgement, StaleView};
use crate::gossip::topic::BlockTopic;
use crate::gossip::validate::{Reason, Source, Validator, Verdict};
use crate::peers::book::PeerBook;
use crate::peers::gater::Gater;
use crate::peers::score_ban::BanMonitor;
use crate::peers::scoring::AppScores;
use crate::peers::tides::ConnManager;
use crate::publish::PublishQueue;
use crate::reqresp::limit::ServerRateLimits;
use crate::reqresp::store::PayloadStore;
use crate::stats::{NodeStats, Stats};

pub use bans::{BanKind, BanRecord, BanSource};
pub use config::{Config, ReqRespConfig};
pub use health::{
    DISCOVERY_EMPTY_MS, Health, HealthCode, HealthReason, HealthStatus, LOW_PEERS_MS,
    NO_BLOCK_BLOCK_TIMES,
};
pub use io::{
    Action, DeliveredBlock, Direction, DisconnectReason, GossipMessage, Input, LocalInfo,
    MessageHandle, PublishError, PublishFailed, PublishOutcome, PublishRequest, RequestId,
    SIGNER_SUSPECT_INTERVAL_MS, SignerSourceStatus, StreamHandle, UnixMillis,
};
pub use rng::SplitMix64;
pub use state::{NodeState, RestoreReport, STATE_VERSION, StateChanges, StateError, StateUpdate};

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
    /// Admin `connectPeer` calls waiting, per peer. Bounded by
    /// [`Config::max_pending_connects`].
    pending_connects: BTreeMap<PeerId, Vec<PendingConnect>>,
    store: Option<PayloadStore>,
    limits: Option<ServerRateLimits>,
    /// Requests waiting for their rate-limit slot: (serve at, stream, number). Bounded by
    /// [`Config::max_throttled_requests`].
    throttled: Vec<(UnixMillis, StreamHandle, u64)>,
    next_housekeeping: UnixMillis,
    /// What changed in the persisted state since the last [`Action::PersistState`].
    persist_pending: StateChanges,
    /// The application score last sent to gossipsub per peer (only non-zero ones; bounded by
    /// the app-score table, entries leave when the score decays to zero or the peer leaves).
    app_scores_sent: BTreeMap<PeerId, f64>,
    /// The runtime's last report on its signer source, if it has one.
    signer_source: Option<SignerSourceStatus>,
    /// Which REJECTs may be our own stale view's fault (signer, clock, fork times).
    stale: StaleView,
    /// Why each live timed ban was made (see `bans`).
    ban_records: bans::BanRecords,
    /// What the health report needs to remember (see `health`).
    health: health::HealthState,
    /// Blocks waiting to be signed and published, in seal order.
    publish: PublishQueue<Box<publish::Pending>>,
    /// `opp2pext_publishBlock` calls waiting for their block's outcome.
    admin_publishes: publish_rpc::AdminPublishes,
}

/// One waiting `opp2p_connectPeer` call.
#[derive(Debug, Clone)]
struct PendingConnect {
    /// The caller's token.
    id: RequestId,
    /// When the call times out.
    deadline: UnixMillis,
    /// The address the operator gave, if any: dialled without the address policy while the
    /// call waits (see [`Node::allow_dial`]).
    addr: Option<Multiaddr>,
}

/// Housekeeping (expiry of the peer book, bans, discovery table, rate-limit buckets) runs
/// at least this often.
pub const HOUSEKEEPING_INTERVAL_MS: u64 = 1_000;

impl Node {
    /// A node with empty state.
    pub fn new(config: Config) -> Self {
        let chain_id = config.validator.chain_id;
        let max_connected = config.max_connected_peers();
        // Loopback skips the subnet quotas exactly when it skips the gater's caps.
        let exempt_loopback = config.gater.exempt_loopback_from_caps;
        let mut book = PeerBook::new(config.peers.clone()).exempt_loopback(exempt_loopback);
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
            discovery: config
                .discovery
                .map(|t| DiscoveryTable::new(chain_id, t).exempt_loopback(exempt_loopback)),
            local: LocalInfo::default(),
            pending_connects: BTreeMap::new(),
            store: config.reqresp.as_ref().map(|r| PayloadStore::new(r.store)),
            limits: config
                .reqresp
                .as_ref()
                .map(|r| ServerRateLimits::new(r.limits, 0)),
            throttled: Vec::new(),
            next_housekeeping: 0,
            persist_pending: StateChanges::default(),
            app_scores_sent: BTreeMap::new(),
            signer_source: None,
            stale: StaleView::new(config.block_time_secs),
            ban_records: bans::BanRecords::default(),
            health: health::HealthState::default(),
            publish: PublishQueue::new(config.publish),
            admin_publishes: Default::default(),
            config,
        }
    }

    /// Feeds one input at `now`.
    ///
    /// Timers run on the largest `now` seen (monotonic), but block timestamps are checked
    /// against this input's `now` itself, the wall time: after the wall clock jumps forward and
    /// back, blocks are accepted again at once instead of after the jump's length.
    pub fn handle_input(&mut self, now: UnixMillis, input: Input) {
        let wall = now;
        self.clock = self.clock.max(now);
        let now = self.clock;
        match input {
            Input::Gossip(msg) => self.handle_gossip(now, wall, msg, None),
            Input::GossipChecked(msg, checked) => self.handle_gossip(now, wall, msg, Some(checked)),
            Input::SetUnsafeSigner(signer) => {
                self.validator.set_signer(signer, now);
                self.stale.forget_signer(signer);
            }
            Input::SignerSource(status) => self.signer_source = Some(status),
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
            Input::Publish { id, request } => self.handle_publish(now, id, request),
            Input::Signed { id, result } => self.on_signed(now, id, result),
            Input::Published { id, result } => self.on_published(now, id, result),
            Input::PayloadRequest { stream, peer, data } => {
                self.handle_payload_request(now, stream, peer, &data)
            }
        }
        self.run_timers(now);
        let changes = std::mem::take(&mut self.persist_pending);
        if !changes.is_empty() {
            self.actions.push_back(Action::PersistState(changes));
        }
    }

    /// A snapshot of what the stateless validation rules need (chain, forks, time window, the
    /// signer set as it is now), for a runtime that runs
    /// [`Checker::check`](crate::gossip::check::Checker::check) off its event loop and feeds
    /// the results back as [`Input::GossipChecked`]. Cheap to clone and `Send`; take a fresh
    /// one after every [`Input::SetUnsafeSigner`] (an outdated one still gives correct
    /// verdicts: the judge re-checks what the signer change affects).
    pub fn stateless_checker(&self) -> crate::gossip::check::Checker {
        self.validator.checker()
    }

    fn handle_gossip(
        &mut self,
        now: UnixMillis,
        wall: UnixMillis,
        msg: GossipMessage,
        checked: Option<crate::gossip::check::Checked>,
    ) {
        let topic = match BlockTopic::parse(&msg.topic) {
            Ok(t) if t.chain_id == self.chain_id => t,
            _ => {
                self.push_verdict(now, msg.handle, msg.source, Reason::UnknownTopic, true);
                return;
            }
        };
        let stale = &self.stale;
        let probe = |addr, hash: &_| stale.wants_probe(now, addr, hash);
        let outcome = match checked {
            Some(checked) if checked.version == topic.version => {
                self.validator
                    .judge(wall, checked, Source::Compressed(&msg.data), probe)
            }
            // Checked for another topic (a runtime bug) or not at all: validate here.
            _ => self
                .validator
                .validate_probing(wall, topic.version, &msg.data, probe),
        };
        let judgement = self.stale.judge(now, wall, msg.source, &outcome);
        self.health.on_gossip(now, outcome.reason);
        let charge = match judgement {
            Judgement::Charge => true,
            Judgement::Spare { cause, announce } => {
                self.stats.count_spared(cause);
                if let Some(address) = announce {
                    tracing::warn!(
                        %address,
                        "blocks signed by an address other than our unsafe signer keep arriving \
                         from peers: our signer may be outdated (check --p2p.unsafe-signer or \
                         the L1 SystemConfig); not penalising the peers"
                    );
                    self.actions.push_back(Action::SignerSuspect { address });
                }
                false
            }
        };
        self.push_verdict(now, msg.handle, msg.source, outcome.reason, charge);
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
        charge: bool,
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
            && charge
        {
            self.scores.on_gossip_verdict(now, peer, verdict);
            self.send_app_score(peer);
            // The score just went down: ban now if it reached the threshold, not when the
            // round-robin monitor gets to this peer.
            self.ban_on_invalid_gossip(now, peer, reason);
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
                .map(|w| w.deadline)
                .min(),
        );
        consider(self.throttled.iter().map(|(t, _, _)| *t).min());
        consider(self.publish.next_deadline());
        consider(self.admin_publishes.next_deadline());
        t.map(|t| t.max(self.clock))
    }

    fn run_timers(&mut self, now: UnixMillis) {
        self.validator.expire(now);
        self.peering_tick(now);
        self.serve_due(now);
        self.expire_pending_connects(now);
        self.publish_step(now);
        self.expire_admin_publishes(now);
        if now >= self.next_housekeeping {
            self.next_housekeeping = now.saturating_add(HOUSEKEEPING_INTERVAL_MS);
            let lifted = self.gater.expire(now);
            if !lifted.is_empty() {
                self.persist_pending.gater = true;
            }
            if self.ban_records.len() > 0 {
                self.prune_ban_records(now);
            }
            self.health_tick(now);
            self.book.expire(now);
            if let Some(d) = &mut self.discovery
                && d.expire(now) > 0
            {
                self.persist_pending.learned = true;
            }
            if let Some(l) = &mut self.limits {
                l.expire(now);
            }
            self.scores.expire(now);
        }
    }

    /// Everything the metrics exporter reads, copied out in one call: the node's decision
    /// counters, the gater's, and the scores of every connected peer as `opp2p_peers` reports
    /// them. O(peers in the peer book); the runtime calls it about once a second.
    pub fn stats(&self) -> NodeStats {
        NodeStats {
            counters: self.stats.clone(),
            gating: self.gater.stats().clone(),
            connected_scores: self
                .book
                .iter()
                .filter(|(_, r)| r.connectedness.is_connected())
                .map(|(p, r)| self.peer_scores(p, r))
                .collect(),
            clock_offset_ms: self.stale.clock_offset_ms(self.clock),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
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
mod selfiso_tests;
#[cfg(test)]
mod tests;
