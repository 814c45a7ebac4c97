//! Connection manager tides as pure logic (spec §7.3 dial loop, §9 peer count tides).
//!
//! op-node spreads this over go-libp2p's `BasicConnMgr` (low/high water, grace, silence
//! period), its discovery loop (paced dial rounds over shuffled known peers, 4 workers) and its
//! static-peer monitor (redial every minute, with backoff). Here it is one state machine with
//! no clock and no I/O: events go in, [`ConnManager::tick`] returns dials to start and peers
//! to disconnect, and [`ConnManager::next_deadline`] says when to tick next.
//!
//! ## Rules
//! - **Dial rounds.** A round starts every [`ConnConfig::dial_interval_below_low_ms`] (5 s)
//!   while fewer than `low` peers are connected, every [`ConnConfig::dial_interval_ms`] (20 s)
//!   otherwise (the interval is chosen from the count at the time of the check, so losing peers
//!   speeds the next round up at once). A round below `low` takes the caller's candidates,
//!   shuffles them with the caller's seeded RNG and, for up to [`ConnConfig::round_timeout_ms`]
//!   (30 s), keeps at most [`ConnConfig::max_dials_in_flight`] (4) dials in flight from that
//!   queue, like op-node's 4 workers. It stops dialling once `low` is reached. A round at or
//!   above `low` dials nothing (op-node only dials below its connect goal).
//! - **Never dialled:** ourselves, connected peers, peers with a dial in flight, peers in
//!   backoff, and peers the caller's [`PeerView::is_allowed`] refuses (bans, blocks).
//! - **Backoff.** After the k-th consecutive failed dial of a peer, it is not dialled for
//!   `min(base · 1.5^k, cap)` = 7.5 s, 11.25 s, 16.9 s, … up to 5 min (k ≥ 11): op-node's
//!   static-peer backoff (5 s initial, ×1.5, 5 min cap), applied to every peer. A successful
//!   dial clears it; an entry is forgotten once `cap` has passed since its backoff ended.
//! - **Static peers** are redialled every [`ConnConfig::static_redial_interval_ms`] (1 min,
//!   first at the first tick) when not connected, subject to the same backoff and
//!   `is_allowed`, outside the 4 discovery slots (op-node dials them from a separate loop), at
//!   most [`ConnConfig::max_static_dials_in_flight`] at a time.
//! - **Trim** (go-libp2p `BasicConnMgr`): when more than `high` peers are connected, and at most
//!   once per [`ConnConfig::trim_interval_ms`] (60 s), the candidates are the connected peers
//!   that are not static, not protected and out of their [`ConnConfig::grace_ms`] (30 s);
//!   if there are more than `low` of them, the `candidates − low` with the lowest value go,
//!   lowest first. Value = the caller's [`PeerView::score`] (the gossip score snapshot); ties
//!   go to the most recently connected, then the smaller peer id. As in go-libp2p, protected
//!   and in-grace peers do not count toward `low` here.
//!
//! ## Bounds
//! - Connected peers tracked: at most the node's hard limit ([`ConnConfig::max_connected`]:
//!   twice `high`, plus the static peers). A connection beyond it is answered
//!   [`Admission::OverCapacity`]; the caller closes it.
//! - Dials in flight: at most `max_dials_in_flight + max_static_dials_in_flight`. An entry the
//!   runtime never resolves is dropped after [`ConnConfig::dial_timeout_ms`] (the runtime's
//!   own 10 s dial timeout reports the failure; this only frees the slot).
//! - Backoff entries: at most [`ConnConfig::max_backoff_entries`] (default 1,024); at the bound
//!   the entry whose backoff ends first (ties: the smaller peer id) is dropped. Expired on
//!   `tick`. An index ordered by (end, peer) finds the victim and the expired entries in
//!   O(log n) each: a failed dial at the bound used to scan the whole table.
//! - A round's queue: at most [`ConnConfig::max_round_queue`] (default 1,024) candidates.
//!
//! ## Randomness
//! The shuffle takes any `rand::Rng` from the caller; the node holds one seeded RNG (we use
//! `rand_chacha::ChaCha8Rng::seed_from_u64` in tests), so a simulation replays exactly. op-node
//! seeds its shuffle from OS randomness to keep outside peers from predicting it: the runtime
//! should seed the node's RNG from the OS in production.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use libp2p_identity::PeerId;
use rand::Rng;
use rand::seq::SliceRandom;

/// Settings; the defaults are op-node's (spec §7.3, §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnConfig {
    /// Low-water peer count and discovery target (`p2p.peers.lo`).
    pub low: usize,
    /// High-water peer count above which trimming starts (`p2p.peers.hi`).
    pub high: usize,
    /// New connections are not trimmed for this long (`p2p.peers.grace`).
    pub grace_ms: u64,
    /// Least time between two trims (go-libp2p's silence period).
    pub trim_interval_ms: u64,
    /// Dial round interval while below `low`.
    pub dial_interval_below_low_ms: u64,
    /// Dial round interval at or above `low`.
    pub dial_interval_ms: u64,
    /// How long one round keeps feeding dials from its queue.
    pub round_timeout_ms: u64,
    /// Discovery dials in flight at once (op-node: 4 workers).
    pub max_dials_in_flight: usize,
    /// Static-peer dials in flight at once.
    pub max_static_dials_in_flight: usize,
    /// After this long an unresolved dial frees its slot (op-node: 10 s per dial).
    pub dial_timeout_ms: u64,
    /// First backoff step (multiplied by 1.5 per failure, first failure included).
    pub backoff_base_ms: u64,
    /// Backoff cap.
    pub backoff_cap_ms: u64,
    /// Static peers are redialled this often.
    pub static_redial_interval_ms: u64,
    /// Most peers with a backoff entry.
    pub max_backoff_entries: usize,
    /// Most candidates queued in one round.
    pub max_round_queue: usize,
}

/// The most `high` may be (`--p2p.peers.hi`): the config builder refuses more.
pub const MAX_PEERS_HI: usize = 256;

impl ConnConfig {
    /// The hard limit on connected peers, the one cap the whole node uses (connection manager,
    /// gater, ban monitor): twice `high`, so peers that connect above the high water mark are
    /// admitted until trimming keeps the best `high` of them, plus room for every static peer,
    /// which must always connect. Beyond it a new peer is refused at the gate. Default: 60 + the
    /// static peers.
    pub fn max_connected(&self, static_peers: usize) -> usize {
        self.high
            .saturating_mul(2)
            .max(1)
            .saturating_add(static_peers)
    }
}

impl Default for ConnConfig {
    fn default() -> Self {
        Self {
            low: 20,
            high: 30,
            grace_ms: 30_000,
            trim_interval_ms: 60_000,
            dial_interval_below_low_ms: 5_000,
            dial_interval_ms: 20_000,
            round_timeout_ms: 30_000,
            max_dials_in_flight: 4,
            max_static_dials_in_flight: 8,
            dial_timeout_ms: 10_000,
            backoff_base_ms: 5_000,
            backoff_cap_ms: 5 * 60_000,
            static_redial_interval_ms: 60_000,
            max_backoff_entries: 1024,
            max_round_queue: 1024,
        }
    }
}

/// What the manager asks of the rest of the node during a tick.
pub trait PeerView {
    /// Known peers that could be dialled (for example the peer book's peers with addresses).
    /// Called only when a dial round below `low` starts.
    fn dial_candidates(&self) -> Vec<PeerId>;
    /// The configured static peers. Called only when a static redial is due.
    fn static_peers(&self) -> Vec<PeerId>;
    /// Whether `peer` is a static peer (never trimmed).
    fn is_static(&self, peer: &PeerId) -> bool;
    /// Whether `peer` is protected (never trimmed).
    fn is_protected(&self, peer: &PeerId) -> bool;
    /// The peer's value for trimming: its latest gossip score snapshot.
    fn score(&self, peer: &PeerId) -> f64;
    /// Whether we may dial `peer` at all (not banned or blocked).
    fn is_allowed(&self, peer: &PeerId) -> bool;
}

/// Answer to a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Tracked.
    Tracked,
    /// The tracking table is full ([`ConnConfig::max_connected`]): close this connection.
    OverCapacity,
}

/// A dial the runtime should start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dial {
    /// Whom to dial (addresses come from the peer book).
    pub peer: PeerId,
    /// A static-peer redial rather than a discovery dial.
    pub is_static: bool,
}

/// What a tick asks the runtime to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickOutput {
    /// Dials to start; each is resolved later by `on_dial_succeeded`/`on_dial_failed`.
    pub dials: Vec<Dial>,
    /// Peers to disconnect, lowest value first.
    pub trims: Vec<PeerId>,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    started: u64,
    is_static: bool,
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    until: u64,
}

#[derive(Debug, Clone)]
struct Round {
    started: u64,
    queue: VecDeque<PeerId>,
}

/// The connection manager (see module docs).
#[derive(Debug, Clone)]
pub struct ConnManager {
    cfg: ConnConfig,
    local: PeerId,
    now: u64,
    /// Connected peer -> connected since (ms). Bounded by `max_connected`.
    connected: BTreeMap<PeerId, u64>,
    max_connected: usize,
    /// Bounded by `max_dials_in_flight + max_static_dials_in_flight`.
    in_flight: BTreeMap<PeerId, InFlight>,
    /// Bounded by `max_backoff_entries`. Changed only through `backoff_insert` and
    /// `backoff_remove`, which keep `backoff_order` in step.
    backoff: BTreeMap<PeerId, Backoff>,
    /// `(until, peer)` for every entry of `backoff`, exactly: its first element is both the
    /// eviction victim at the bound and the next entry the sweep may forget.
    backoff_order: BTreeSet<(u64, PeerId)>,
    round: Option<Round>,
    last_round: Option<u64>,
    last_trim: Option<u64>,
    last_static: Option<u64>,
    static_pending: bool,
}

/// The wait after `failures` consecutive failures: `min(base · 1.5^failures, cap)`.
pub fn backoff_ms(cfg: &ConnConfig, failures: u32) -> u64 {
    // In floating point, truncated once, as op-node multiplies a nanosecond Duration by 1.5.
    let cap = cfg.backoff_cap_ms as f64;
    let mut ms = cfg.backoff_base_ms as f64;
    // 1.5^64 exceeds any cap; the bound keeps a zero base from looping long.
    for _ in 0..failures.min(64) {
        ms *= 1.5;
        if ms >= cap {
            return cfg.backoff_cap_ms;
        }
    }
    (ms as u64).min(cfg.backoff_cap_ms)
}

impl ConnManager {
    /// A manager for the node `local` (never dialled) tracking at most `max_connected`
    /// connected peers (the node passes [`ConnConfig::max_connected`]).
    pub fn new(cfg: ConnConfig, local: PeerId, max_connected: usize) -> Self {
        Self {
            cfg,
            local,
            now: 0,
            connected: BTreeMap::new(),
            max_connected,
            in_flight: BTreeMap::new(),
            backoff: BTreeMap::new(),
            backoff_order: BTreeSet::new(),
            round: None,
            last_round: None,
            last_trim: None,
            last_static: None,
            static_pending: true,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &ConnConfig {
        &self.cfg
    }

    /// Connected peers tracked.
    pub fn connected_count(&self) -> usize {
        self.connected.len()
    }

    /// Whether `peer` is connected.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.connected.contains_key(peer)
    }

    /// Dials in flight (discovery and static).
    pub fn dials_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Peers holding a backoff entry.
    pub fn backoff_entries(&self) -> usize {
        self.backoff.len()
    }

    /// When `peer` may next be dialled, if it is in backoff at the latest time seen.
    pub fn backoff_until(&self, peer: &PeerId) -> Option<u64> {
        self.backoff
            .get(peer)
            .map(|b| b.until)
            .filter(|u| *u > self.now)
    }

    fn advance(&mut self, now: u64) -> u64 {
        self.now = self.now.max(now);
        self.now
    }

    /// A connection to `peer` is up (either direction). Frees its dial slot if any.
    pub fn on_connected(&mut self, now: u64, peer: PeerId) -> Admission {
        let now = self.advance(now);
        self.in_flight.remove(&peer);
        if self.connected.contains_key(&peer) {
            return Admission::Tracked;
        }
        if self.connected.len() >= self.max_connected {
            return Admission::OverCapacity;
        }
        self.connected.insert(peer, now);
        Admission::Tracked
    }

    /// The last connection to `peer` closed.
    pub fn on_disconnected(&mut self, now: u64, peer: &PeerId) {
        self.advance(now);
        self.connected.remove(peer);
    }

    /// Our dial to `peer` succeeded: its slot is freed and its backoff cleared.
    pub fn on_dial_succeeded(&mut self, now: u64, peer: &PeerId) {
        self.advance(now);
        self.in_flight.remove(peer);
        self.backoff_remove(peer);
    }

    /// Sets `peer`'s entry, keeping the index in step.
    fn backoff_insert(&mut self, peer: PeerId, entry: Backoff) {
        if let Some(old) = self.backoff.insert(peer, entry) {
            self.backoff_order.remove(&(old.until, peer));
        }
        self.backoff_order.insert((entry.until, peer));
    }

    /// Drops `peer`'s entry, keeping the index in step.
    fn backoff_remove(&mut self, peer: &PeerId) {
        if let Some(old) = self.backoff.remove(peer) {
            self.backoff_order.remove(&(old.until, *peer));
        }
    }

    /// Our dial to `peer` failed: its slot is freed and its backoff grows.
    pub fn on_dial_failed(&mut self, now: u64, peer: PeerId) {
        let now = self.advance(now);
        self.in_flight.remove(&peer);
        let failures = self.backoff.get(&peer).map_or(0, |b| b.failures);
        let failures = failures.saturating_add(1);
        if !self.backoff.contains_key(&peer)
            && self.backoff.len() >= self.cfg.max_backoff_entries
            && let Some((_, victim)) = self.backoff_order.first().copied()
        {
            self.backoff_remove(&victim);
        }
        let until = now.saturating_add(backoff_ms(&self.cfg, failures));
        self.backoff_insert(peer, Backoff { failures, until });
    }

    fn dial_interval(&self) -> u64 {
        if self.connected.len() < self.cfg.low {
            self.cfg.dial_interval_below_low_ms
        } else {
            self.cfg.dial_interval_ms
        }
    }

    fn discovery_in_flight(&self) -> usize {
        self.in_flight.values().filter(|d| !d.is_static).count()
    }

    fn static_in_flight(&self) -> usize {
        self.in_flight.values().filter(|d| d.is_static).count()
    }

    fn dialable(&self, peer: &PeerId, view: &impl PeerView) -> bool {
        *peer != self.local
            && !self.connected.contains_key(peer)
            && !self.in_flight.contains_key(peer)
            && self.backoff.get(peer).is_none_or(|b| b.until <= self.now)
            && view.is_allowed(peer)
    }

    /// Runs the due rules at `now` (see module docs) and returns what to do.
    pub fn tick<R: Rng + ?Sized>(
        &mut self,
        now: u64,
        rng: &mut R,
        view: &impl PeerView,
    ) -> TickOutput {
        let now = self.advance(now);
        let mut out = TickOutput::default();

        // Free slots of dials the runtime never resolved.
        let timeout = self.cfg.dial_timeout_ms;
        self.in_flight
            .retain(|_, d| now.saturating_sub(d.started) < timeout);
        // Forget backoff entries quiet for a full cap after their end: earliest end first,
        // so only the entries forgotten are visited.
        let cap = self.cfg.backoff_cap_ms;
        while let Some(&(until, peer)) = self.backoff_order.first()
            && now >= until.saturating_add(cap)
        {
            self.backoff_remove(&peer);
        }

        self.static_round(now, view, &mut out);
        self.dial_round(now, rng, view, &mut out);
        self.trim(now, view, &mut out);
        out
    }

    fn static_round(&mut self, now: u64, view: &impl PeerView, out: &mut TickOutput) {
        let due = self
            .last_static
            .is_none_or(|t| now >= t.saturating_add(self.cfg.static_redial_interval_ms));
        if !due {
            return;
        }
        self.last_static = Some(now);
        let statics = view.static_peers();
        self.static_pending = !statics.is_empty();
        for peer in statics {
            if self.static_in_flight() >= self.cfg.max_static_dials_in_flight {
                break;
            }
            if self.dialable(&peer, view) {
                self.start_dial(now, peer, true, out);
            }
        }
    }

    fn start_dial(&mut self, now: u64, peer: PeerId, is_static: bool, out: &mut TickOutput) {
        tracing::debug!(%peer, is_static, "dialling");
        self.in_flight.insert(
            peer,
            InFlight {
                started: now,
                is_static,
            },
        );
        out.dials.push(Dial { peer, is_static });
    }

    fn dial_round<R: Rng + ?Sized>(
        &mut self,
        now: u64,
        rng: &mut R,
        view: &impl PeerView,
        out: &mut TickOutput,
    ) {
        let due = self
            .last_round
            .is_none_or(|t| now >= t.saturating_add(self.dial_interval()));
        if due {
            self.last_round = Some(now);
            self.round = None;
            if self.connected.len() < self.cfg.low {
                let mut candidates = view.dial_candidates();
                candidates.shuffle(rng);
                candidates.truncate(self.cfg.max_round_queue);
                self.round = Some(Round {
                    started: now,
                    queue: candidates.into(),
                });
            }
        }
        let Some(mut round) = self.round.take() else {
            return;
        };
        if now >= round.started.saturating_add(self.cfg.round_timeout_ms) {
            return; // round over; the queue goes
        }
        while self.connected.len() + self.discovery_in_flight() < self.cfg.low
            && self.discovery_in_flight() < self.cfg.max_dials_in_flight
        {
            let Some(peer) = round.queue.pop_front() else {
                break;
            };
            if self.dialable(&peer, view) {
                self.start_dial(now, peer, false, out);
            }
        }
        if !round.queue.is_empty() {
            self.round = Some(round);
        }
    }

    fn trim(&mut self, now: u64, view: &impl PeerView, out: &mut TickOutput) {
        if self.connected.len() <= self.cfg.high {
            return;
        }
        if self
            .last_trim
            .is_some_and(|t| now < t.saturating_add(self.cfg.trim_interval_ms))
        {
            return;
        }
        self.last_trim = Some(now);
        let grace = self.cfg.grace_ms;
        let mut candidates: Vec<(f64, u64, PeerId)> = self
            .connected
            .iter()
            .filter(|(p, since)| {
                now.saturating_sub(**since) >= grace && !view.is_static(p) && !view.is_protected(p)
            })
            .map(|(p, since)| (view.score(p), *since, *p))
            .collect();
        if candidates.len() <= self.cfg.low {
            return;
        }
        let target = candidates.len() - self.cfg.low;
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        tracing::debug!(
            connected = self.connected.len(),
            trimming = target,
            "above high water, trimming"
        );
        out.trims
            .extend(candidates.into_iter().take(target).map(|(_, _, p)| p));
    }

    /// When [`ConnManager::tick`] should next run (Unix ms; at or before the latest `now` means
    /// "now").
    pub fn next_deadline(&self) -> u64 {
        let now = self.now;
        let mut next = match self.last_round {
            None => now,
            Some(t) => t.saturating_add(self.dial_interval()),
        };
        match self.last_static {
            None => next = now,
            Some(t) if self.static_pending => {
                next = next.min(t.saturating_add(self.cfg.static_redial_interval_ms));
            }
            Some(_) => {}
        }
        if let Some(r) = &self.round {
            let active = now < r.started.saturating_add(self.cfg.round_timeout_ms);
            if active
                && self.discovery_in_flight() < self.cfg.max_dials_in_flight
                && self.connected.len() + self.discovery_in_flight() < self.cfg.low
            {
                next = now;
            }
        }
        if let Some(d) = self.in_flight.values().map(|d| d.started).min() {
            next = next.min(d.saturating_add(self.cfg.dial_timeout_ms));
        }
        if self.connected.len() > self.cfg.high {
            let t = self
                .last_trim
                .map_or(now, |t| t.saturating_add(self.cfg.trim_interval_ms));
            next = next.min(t);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::{BTreeSet, HashMap};

    fn pid(n: u32) -> PeerId {
        let b = n.to_be_bytes();
        PeerId::from_bytes(&[0, 4, b[0], b[1], b[2], b[3]]).unwrap()
    }

    #[derive(Default)]
    struct View {
        candidates: Vec<PeerId>,
        statics: Vec<PeerId>,
        protected: BTreeSet<PeerId>,
        denied: BTreeSet<PeerId>,
        scores: HashMap<PeerId, f64>,
    }

    impl PeerView for View {
        fn dial_candidates(&self) -> Vec<PeerId> {
            self.candidates.clone()
        }
        fn static_peers(&self) -> Vec<PeerId> {
            self.statics.clone()
        }
        fn is_static(&self, p: &PeerId) -> bool {
            self.statics.contains(p)
        }
        fn is_protected(&self, p: &PeerId) -> bool {
            self.protected.contains(p)
        }
        fn score(&self, p: &PeerId) -> f64 {
            self.scores.get(p).copied().unwrap_or(0.0)
        }
        fn is_allowed(&self, p: &PeerId) -> bool {
            !self.denied.contains(p)
        }
    }

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    fn mgr() -> ConnManager {
        ConnManager::new(ConnConfig::default(), pid(0), 256)
    }

    #[test]
    fn dials_below_low_never_above_the_in_flight_limit() {
        let mut m = mgr();
        let view = View {
            candidates: (1..=100).map(pid).collect(),
            ..Default::default()
        };
        let out = m.tick(1_000, &mut rng(), &view);
        assert_eq!(out.dials.len(), 4);
        assert!(out.dials.iter().all(|d| !d.is_static));
        assert_eq!(m.dials_in_flight(), 4);
        // Nothing more while the 4 are in flight, even when ticked again.
        assert!(m.tick(1_001, &mut rng(), &view).dials.is_empty());
        // One fails: its slot is refilled from the same round at once.
        let failed = out.dials[0].peer;
        m.on_dial_failed(1_002, failed);
        assert_eq!(m.next_deadline(), 1_002, "a free slot wants a tick now");
        let out2 = m.tick(1_002, &mut rng(), &view);
        assert_eq!(out2.dials.len(), 1);
        assert_ne!(out2.dials[0].peer, failed);
        assert_eq!(m.dials_in_flight(), 4);
    }

    #[test]
    fn shuffle_is_seeded_and_deterministic() {
        let view = View {
            candidates: (1..=100).map(pid).collect(),
            ..Default::default()
        };
        let a = mgr().tick(0, &mut rng(), &view);
        let b = mgr().tick(0, &mut rng(), &view);
        let c = mgr().tick(0, &mut ChaCha8Rng::seed_from_u64(8), &view);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let in_order: Vec<_> = (1..=4).map(pid).collect();
        assert_ne!(a.dials.iter().map(|d| d.peer).collect::<Vec<_>>(), in_order);
    }

    #[test]
    fn never_dials_self_connected_or_denied() {
        let mut m = mgr();
        let me = pid(0);
        m.on_connected(0, pid(1));
        let view = View {
            candidates: vec![me, pid(1), pid(2), pid(3)],
            denied: [pid(2)].into(),
            ..Default::default()
        };
        let out = m.tick(0, &mut rng(), &view);
        assert_eq!(
            out.dials,
            vec![Dial {
                peer: pid(3),
                is_static: false
            }]
        );
    }

    #[test]
    fn stops_at_low_and_paces_rounds() {
        let cfg = ConnConfig {
            low: 3,
            ..Default::default()
        };
        let mut m = ConnManager::new(cfg, pid(0), 256);
        let view = View {
            candidates: (1..=50).map(pid).collect(),
            ..Default::default()
        };
        m.on_connected(0, pid(1000));
        // 1 connected, low 3: only 2 dials although 4 slots exist.
        let out = m.tick(0, &mut rng(), &view);
        assert_eq!(out.dials.len(), 2);
        for d in &out.dials {
            m.on_dial_succeeded(10, &d.peer);
            m.on_connected(10, d.peer);
        }
        assert_eq!(m.connected_count(), 3);
        // At low: the next round is 20 s after the last, and dials nothing.
        assert_eq!(m.next_deadline(), 20_000);
        assert!(m.tick(19_999, &mut rng(), &view).dials.is_empty());
        assert!(m.tick(20_000, &mut rng(), &view).dials.is_empty());
        // Losing a peer brings the 5 s pace back, counted from the last round.
        m.on_disconnected(21_000, &pid(1000));
        assert_eq!(m.next_deadline(), 25_000);
        assert!(m.tick(24_999, &mut rng(), &view).dials.is_empty());
        assert_eq!(m.tick(25_000, &mut rng(), &view).dials.len(), 1);
    }

    #[test]
    fn backoff_is_respected_and_grows() {
        let cfg = ConnConfig::default();
        assert_eq!(backoff_ms(&cfg, 1), 7_500);
        assert_eq!(backoff_ms(&cfg, 2), 11_250);
        assert_eq!(backoff_ms(&cfg, 10), 288_325);
        assert_eq!(backoff_ms(&cfg, 11), 300_000);
        assert_eq!(backoff_ms(&cfg, u32::MAX), 300_000);

        let mut m = mgr();
        let p = pid(1);
        let view = View {
            candidates: vec![p],
            ..Default::default()
        };
        assert_eq!(m.tick(0, &mut rng(), &view).dials.len(), 1);
        m.on_dial_failed(100, p);
        assert_eq!(m.backoff_until(&p), Some(7_600));
        // Rounds at 5 s: still backed off.
        assert!(m.tick(5_000, &mut rng(), &view).dials.is_empty());
        // Round at 10 s: backoff over, dialled again.
        assert_eq!(m.tick(10_000, &mut rng(), &view).dials.len(), 1);
        m.on_dial_failed(10_000, p);
        assert_eq!(m.backoff_until(&p), Some(21_250));
        assert!(m.tick(20_000, &mut rng(), &view).dials.is_empty());
        assert_eq!(m.tick(25_000, &mut rng(), &view).dials.len(), 1);
        // Success clears it.
        m.on_dial_succeeded(25_001, &p);
        assert_eq!(m.backoff_entries(), 0);
    }

    #[test]
    fn backoff_table_is_bounded() {
        let cfg = ConnConfig {
            max_backoff_entries: 16,
            ..Default::default()
        };
        let mut m = ConnManager::new(cfg, pid(0), 256);
        for n in 1..=10_000 {
            m.on_dial_failed(n as u64, pid(n));
            assert!(m.backoff_entries() <= 16);
        }
        // The survivors are those whose backoff ends last.
        assert!(m.backoff_until(&pid(10_000)).is_some());
        assert!(m.backoff_until(&pid(1)).is_none());
        // Expired on tick once quiet for a cap after their end.
        m.tick(10_000 + 7_500 + 300_000, &mut rng(), &View::default());
        assert_eq!(m.backoff_entries(), 0);
    }

    #[test]
    fn backoff_victim_is_the_earliest_end_then_the_smaller_peer_id() {
        let cfg = ConnConfig {
            max_backoff_entries: 3,
            ..Default::default()
        };
        let mut m = ConnManager::new(cfg, pid(0), 256);
        // Three entries ending together at 1_000 + 7_500; a fourth peer evicts the smallest id.
        for n in [9, 5, 7] {
            m.on_dial_failed(1_000, pid(n));
        }
        m.on_dial_failed(1_000, pid(8));
        assert!(m.backoff_until(&pid(5)).is_none(), "tie broken by peer id");
        for n in [7, 8, 9] {
            assert_eq!(m.backoff_until(&pid(n)), Some(8_500));
        }
        // A second failure of 7 moves its end later: 8 (then 9) now end first.
        m.on_dial_failed(2_000, pid(7));
        m.on_dial_failed(2_000, pid(1));
        assert!(m.backoff_until(&pid(8)).is_none());
        assert_eq!(m.backoff_until(&pid(7)), Some(2_000 + 11_250));
        // A peer already in the table never evicts anyone.
        m.on_dial_failed(2_000, pid(9));
        assert_eq!(m.backoff_entries(), 3);
        assert_index_matches(&m);
    }

    /// The ordered index holds exactly `(until, peer)` for every entry of the table.
    fn assert_index_matches(m: &ConnManager) {
        let from_map: BTreeSet<(u64, PeerId)> =
            m.backoff.iter().map(|(p, b)| (b.until, *p)).collect();
        assert_eq!(m.backoff_order, from_map, "index drifted from the table");
    }

    /// The backoff table as it was before the index: a full scan picks the victim and a full
    /// `retain` sweeps. The indexed table must match it after every step.
    #[derive(Default)]
    struct NaiveBackoff {
        now: u64,
        table: BTreeMap<PeerId, (u32, u64)>,
    }

    impl NaiveBackoff {
        fn failed(&mut self, cfg: &ConnConfig, now: u64, peer: PeerId) {
            self.now = self.now.max(now);
            let failures = self.table.get(&peer).map_or(0, |e| e.0).saturating_add(1);
            if !self.table.contains_key(&peer)
                && self.table.len() >= cfg.max_backoff_entries
                && let Some(victim) = self
                    .table
                    .iter()
                    .min_by_key(|(p, e)| (e.1, **p))
                    .map(|(p, _)| *p)
            {
                self.table.remove(&victim);
            }
            let until = self.now.saturating_add(backoff_ms(cfg, failures));
            self.table.insert(peer, (failures, until));
        }

        fn succeeded(&mut self, now: u64, peer: &PeerId) {
            self.now = self.now.max(now);
            self.table.remove(peer);
        }

        fn tick(&mut self, cfg: &ConnConfig, now: u64) {
            self.now = self.now.max(now);
            let now = self.now;
            self.table
                .retain(|_, e| now < e.1.saturating_add(cfg.backoff_cap_ms));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Random failures, successes and ticks over few peers and a small bound (so the
        /// bound, ties and re-failures are frequent): the indexed table evicts and forgets
        /// exactly what the naive scan did, and its index never drifts.
        #[test]
        fn indexed_backoff_matches_the_naive_scan(
            bound in 1usize..8,
            ops in proptest::collection::vec((0u8..4, 1u32..24, 0u64..4), 1..300),
        ) {
            let cfg = ConnConfig { max_backoff_entries: bound, ..Default::default() };
            let mut m = ConnManager::new(cfg.clone(), pid(0), 256);
            let mut naive = NaiveBackoff::default();
            let mut now = 0u64;
            for (op, peer, step) in ops {
                // Time steps of 0 make ties; 100 s and 400 s steps cross backoffs and the cap.
                now += [0, 1_000, 100_000, 400_000][step as usize];
                let peer = pid(peer);
                match op {
                    0 | 1 => {
                        m.on_dial_failed(now, peer);
                        naive.failed(&cfg, now, peer);
                    }
                    2 => {
                        m.on_dial_succeeded(now, &peer);
                        naive.succeeded(now, &peer);
                    }
                    _ => {
                        m.tick(now, &mut rng(), &View::default());
                        naive.tick(&cfg, now);
                    }
                }
                let got: BTreeMap<PeerId, (u32, u64)> =
                    m.backoff.iter().map(|(p, b)| (*p, (b.failures, b.until))).collect();
                proptest::prop_assert_eq!(&got, &naive.table);
                proptest::prop_assert!(m.backoff_entries() <= bound);
                assert_index_matches(&m);
            }
        }
    }

    #[test]
    fn static_peers_redialled_every_minute_outside_discovery_slots() {
        let mut m = mgr();
        let s = pid(1_000);
        let view = View {
            candidates: (1..=100).map(pid).collect(),
            statics: vec![s],
            ..Default::default()
        };
        let out = m.tick(0, &mut rng(), &view);
        assert!(out.dials.contains(&Dial {
            peer: s,
            is_static: true
        }));
        assert_eq!(out.dials.iter().filter(|d| !d.is_static).count(), 4);
        m.on_dial_failed(1_000, s);
        // Not again before a minute has passed.
        assert!(
            !m.tick(30_000, &mut rng(), &view)
                .dials
                .iter()
                .any(|d| d.peer == s)
        );
        assert!(m.next_deadline() <= 60_000);
        let out = m.tick(60_000, &mut rng(), &view);
        assert!(out.dials.contains(&Dial {
            peer: s,
            is_static: true
        }));
        // Connected: no redial.
        m.on_connected(60_001, s);
        assert!(
            !m.tick(120_000, &mut rng(), &view)
                .dials
                .iter()
                .any(|d| d.peer == s)
        );
    }

    #[test]
    fn unresolved_dials_free_their_slot_after_the_timeout() {
        let mut m = mgr();
        let view = View {
            candidates: (1..=100).map(pid).collect(),
            ..Default::default()
        };
        m.tick(0, &mut rng(), &view);
        assert_eq!(m.dials_in_flight(), 4);
        assert_eq!(m.next_deadline(), 5_000);
        m.tick(9_999, &mut rng(), &view);
        assert_eq!(m.dials_in_flight(), 4);
        let out = m.tick(10_000, &mut rng(), &view);
        assert_eq!(out.dials.len(), 4, "all four slots refilled");
    }

    fn connect_many(m: &mut ConnManager, at: u64, ids: impl IntoIterator<Item = u32>) {
        for n in ids {
            assert_eq!(m.on_connected(at, pid(n)), Admission::Tracked);
        }
    }

    #[test]
    fn trims_lowest_score_first_sparing_grace_static_protected() {
        let mut m = mgr();
        // 31 connected at t=0 (above high 30), peers 1..=31, score = n.
        connect_many(&mut m, 0, 1..=31);
        let mut view = View {
            statics: vec![pid(1)],
            protected: [pid(2)].into(),
            ..Default::default()
        };
        for n in 1..=31 {
            view.scores.insert(pid(n), n as f64);
        }
        view.scores.insert(pid(1), -1000.0);
        view.scores.insert(pid(2), -1000.0);
        // All in grace at 29.999 s: nothing trimmed.
        assert!(m.tick(29_999, &mut rng(), &view).trims.is_empty());
        // Next allowed trim is a minute later; a newcomer in grace is spared.
        connect_many(&mut m, 89_000, [32]);
        view.scores.insert(pid(32), -500.0);
        assert!(m.tick(89_998, &mut rng(), &view).trims.is_empty());
        let out = m.tick(89_999, &mut rng(), &view);
        // Candidates: 3..=31 (29 peers) -> trim 29 - 20 = 9, lowest scores first.
        let want: Vec<_> = (3..=11).map(pid).collect();
        assert_eq!(out.trims, want);
        assert!(!out.trims.contains(&pid(1)) && !out.trims.contains(&pid(2)));
        assert!(!out.trims.contains(&pid(32)));
        // At most once per minute.
        assert!(m.tick(100_000, &mut rng(), &view).trims.is_empty());
    }

    #[test]
    fn no_trim_at_or_below_high() {
        let mut m = mgr();
        connect_many(&mut m, 0, 1..=30);
        assert!(
            m.tick(100_000, &mut rng(), &View::default())
                .trims
                .is_empty()
        );
    }

    #[test]
    fn connected_table_is_bounded() {
        let mut m = ConnManager::new(ConnConfig::default(), pid(0), 8);
        connect_many(&mut m, 0, 1..=8);
        assert_eq!(m.on_connected(0, pid(9)), Admission::OverCapacity);
        assert_eq!(m.on_connected(0, pid(1)), Admission::Tracked);
        assert_eq!(m.connected_count(), 8);
    }

    #[test]
    fn round_queue_is_bounded() {
        let cfg = ConnConfig {
            max_round_queue: 10,
            ..Default::default()
        };
        let mut m = ConnManager::new(cfg, pid(0), 256);
        let view = View {
            candidates: (1..=10_000).map(pid).collect(),
            ..Default::default()
        };
        let mut dialled = 0;
        for i in 0..10 {
            let out = m.tick(i, &mut rng(), &view);
            for d in out.dials {
                dialled += 1;
                m.on_dial_failed(i, d.peer);
            }
        }
        assert_eq!(dialled, 10, "one round dials at most its queue");
    }
}
