//! "Maybe it is us": telling a peer's invalid gossip from our own stale view (issue #13).
//!
//! Some REJECTs are caused by our configuration or clock, not by the peer that forwarded the
//! block: an outdated unsafe signer ([`Reason::WrongSigner`] on every honest block), a wall
//! clock off by more than the window ([`Reason::TooOld`] / [`Reason::TooNew`] on every block),
//! or a fork time we lack ([`Reason::BlobGasUsedBeforeJovian`]). Penalising the peer for those
//! (we charge REJECTs to the application score and ban at the threshold) would ban every
//! honest peer and isolate the node. [`StaleView::judge`] decides, per REJECT, whether the
//! peer is charged ([`Judgement::Charge`]) or spared ([`Judgement::Spare`]). The verdict sent
//! to gossipsub never changes (REJECT, as op-node).
//!
//! The rules, each bounded so a spammer is charged as fast as before:
//! - **Stale signer**: a `WrongSigner` block is spared when its address is a known candidate
//!   (seen before: the first block of any unknown address is charged, so random signatures
//!   and random keys are charged on every message), its payload hash is new for that address
//!   (a repeat is charged), its address's token bucket has a token (refilled at twice the
//!   block rate, at most [`BURST`] saved, empty at the first sighting: a flood far above the
//!   block rate is charged), and the stateless rules pass on it (SSZ, timestamp window, block
//!   hash, field rules: a real block, not junk). Decoding and hashing run only when the other
//!   conditions hold (the probe, [`StaleView::wants_probe`]), so an unauthenticated flood
//!   costs a signature recovery as before. At most [`MAX_CANDIDATES`] addresses are tracked;
//!   a new one replaces the one with the fewest spared blocks, the least recently seen first.
//!   A spared block names its address for [`Action::SignerSuspect`](crate::Action) (at most
//!   once per [`SIGNER_SUSPECT_INTERVAL_MS`] per address).
//! - **Clock off**: a `TooOld`/`TooNew` block signed by our signer (authentically the
//!   sequencer's) is spared when its payload hash is new, the clock bucket has a token, and
//!   within the last window more distinct peers sent us such out-of-window blocks than sent us
//!   blocks inside the window, at least two ("most peers at once"). A single peer replaying old
//!   signed blocks among honest peers is charged. The offset estimate
//!   ([`StaleView::clock_offset_ms`]) is the median of block timestamp minus our wall time over
//!   the recent correctly signed blocks, accepted or not.
//! - **Fork rules**: a `BlobGasUsedBeforeJovian` block signed by our signer is spared when its
//!   payload hash is new and the fork bucket has a token: the block is the sequencer's, our
//!   fork schedule may be the stale part.
//!
//! ⚠ A peer may still cost us a little without being charged: blocks signed by its own key at
//! up to twice the block rate (one signature recovery, one decode and hash each), or authentic
//! old blocks when it and its sybils outnumber the honest peers that reach us. Both are the
//! cost of ordinary block traffic; gossipsub's own invalid-delivery penalty still applies to
//! every REJECT.
//!
//! Pure and deterministic: `now` is the node's monotonic clock (timers, buckets, windows),
//! `wall_ms` the wall time the runtime gave with the input (offsets only).

use std::collections::{BTreeMap, VecDeque};

use alloy_primitives::{Address, B256};
use libp2p_identity::PeerId;

use crate::gossip::validate::{Outcome, Reason};
use crate::node::SIGNER_SUSPECT_INTERVAL_MS;

/// Most unknown signer addresses tracked at once.
pub const MAX_CANDIDATES: usize = 8;
/// Most tokens a bucket saves: this many blocks in a burst are spared after a quiet time.
pub const BURST: f64 = 4.0;
/// Recent payload hashes remembered per address (and for the clock and fork cases).
const RECENT_HASHES: usize = 64;
/// Recent offset samples kept for the median.
const OFFSET_SAMPLES: usize = 32;
/// Most peers remembered for the "most peers" count.
const MAX_PEERS: usize = 128;

/// Which of our views a spared REJECT points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StaleCause {
    /// Blocks signed by one consistent unknown address: our unsafe signer may be outdated.
    Signer,
    /// Correctly signed blocks outside our timestamp window: our clock may be off.
    Clock,
    /// Correctly signed blocks failing a rule that depends on our fork times.
    Fork,
}

impl StaleCause {
    /// Stable snake_case name: `stale_signer`, `clock_offset`, `fork_rules`.
    pub const fn as_str(self) -> &'static str {
        match self {
            StaleCause::Signer => "stale_signer",
            StaleCause::Clock => "clock_offset",
            StaleCause::Fork => "fork_rules",
        }
    }

    /// The cause a REJECT of this reason could have on our side, if any: the reasons whose
    /// bans must not outlive a restart with a fixed configuration.
    pub const fn of_reason(reason: Reason) -> Option<StaleCause> {
        match reason {
            Reason::WrongSigner => Some(StaleCause::Signer),
            Reason::TooOld | Reason::TooNew => Some(StaleCause::Clock),
            Reason::BlobGasUsedBeforeJovian => Some(StaleCause::Fork),
            _ => None,
        }
    }
}

/// What to do with the peer that forwarded a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// Charge a REJECT to its application score as usual (also the answer for non-REJECTs).
    Charge,
    /// Do not charge it: the REJECT may be our stale view's fault.
    Spare {
        /// Which view.
        cause: StaleCause,
        /// An address to announce with `Action::SignerSuspect` now (rate-limited here).
        announce: Option<Address>,
    },
}

/// A stale-view suspicion active now, for health reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspicion {
    /// Which view.
    pub cause: StaleCause,
    /// When the current run of spared blocks began (monotonic node time, Unix ms).
    pub since: u64,
    /// For [`StaleCause::Signer`], the address the blocks recover to.
    pub address: Option<Address>,
    /// For [`StaleCause::Clock`], the median offset (block time minus our time), ms.
    pub offset_ms: Option<i64>,
}

/// A token bucket refilled at twice the block rate, saving at most [`BURST`] tokens.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: u64,
}

impl Bucket {
    fn empty(now: u64) -> Self {
        Self {
            tokens: 0.0,
            at: now,
        }
    }

    fn level(&self, now: u64, block_time_ms: u64) -> f64 {
        let per_token = (block_time_ms / 2).max(1) as f64;
        let gained = now.saturating_sub(self.at) as f64 / per_token;
        (self.tokens + gained).min(BURST)
    }

    fn has_token(&self, now: u64, block_time_ms: u64) -> bool {
        self.level(now, block_time_ms) >= 1.0
    }

    fn take(&mut self, now: u64, block_time_ms: u64) {
        self.tokens = (self.level(now, block_time_ms) - 1.0).max(0.0);
        self.at = now;
    }
}

/// A run of events with no gap longer than the window.
#[derive(Debug, Clone, Copy, Default)]
struct Episode {
    since: u64,
    last: Option<u64>,
}

impl Episode {
    fn touch(&mut self, now: u64, window: u64) {
        if self.last.is_none_or(|l| now.saturating_sub(l) > window) {
            self.since = now;
        }
        self.last = Some(now);
    }

    fn active(&self, now: u64, window: u64) -> Option<u64> {
        self.last
            .filter(|l| now.saturating_sub(*l) <= window)
            .map(|_| self.since)
    }
}

/// Recent payload hashes, bounded.
#[derive(Debug, Clone, Default)]
struct Recent(VecDeque<B256>);

impl Recent {
    fn contains(&self, h: &B256) -> bool {
        self.0.contains(h)
    }

    fn insert(&mut self, h: B256) {
        if !self.contains(&h) {
            if self.0.len() >= RECENT_HASHES {
                self.0.pop_front();
            }
            self.0.push_back(h);
        }
    }
}

/// One unknown signer address.
#[derive(Debug, Clone)]
struct Candidate {
    last_seen: u64,
    bucket: Bucket,
    recent: Recent,
    spared: u64,
    episode: Episode,
    announced: Option<u64>,
}

/// A gated class of authentic blocks (the clock and fork cases).
#[derive(Debug, Clone)]
struct Class {
    bucket: Bucket,
    recent: Recent,
    episode: Episode,
}

impl Class {
    fn new() -> Self {
        Self {
            bucket: Bucket::empty(0),
            recent: Recent::default(),
            episode: Episode::default(),
        }
    }
}

/// What the detector remembers of a peer: when it last sent a correctly signed block inside
/// our window, and outside it.
#[derive(Debug, Clone, Copy, Default)]
struct PeerSeen {
    inside: Option<u64>,
    outside: Option<u64>,
}

impl PeerSeen {
    fn last(&self) -> u64 {
        self.inside.unwrap_or(0).max(self.outside.unwrap_or(0))
    }
}

/// The detector's state. See the module docs. Every table is bounded: [`MAX_CANDIDATES`]
/// addresses with 64 hashes each, 128 peers, 32 offset samples.
#[derive(Debug, Clone)]
pub struct StaleView {
    block_time_ms: u64,
    window_ms: u64,
    candidates: BTreeMap<Address, Candidate>,
    clock: Class,
    fork: Class,
    peers: BTreeMap<PeerId, PeerSeen>,
    offsets: VecDeque<(u64, i64)>,
}

impl StaleView {
    /// A detector for a chain with this block time. Its window (for "recent" and "most peers")
    /// is ten block times, at least a minute.
    pub fn new(block_time_secs: u64) -> Self {
        let block_time_ms = block_time_secs.max(1) * 1000;
        Self {
            block_time_ms,
            window_ms: (10 * block_time_ms).max(60_000),
            candidates: BTreeMap::new(),
            clock: Class::new(),
            fork: Class::new(),
            peers: BTreeMap::new(),
            offsets: VecDeque::new(),
        }
    }

    /// The window within which suspicions stay active and peers count as recent, ms.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// The validator's probe: whether a `WrongSigner` message from `signer` deserves the
    /// stateless checks (decode and hash). Only for a known candidate, a new payload hash and
    /// a token in the candidate's bucket, so the cost is bounded by the block rate.
    pub fn wants_probe(&self, now: u64, signer: Address, payload_hash: &B256) -> bool {
        self.candidates.get(&signer).is_some_and(|c| {
            !c.recent.contains(payload_hash) && c.bucket.has_token(now, self.block_time_ms)
        })
    }

    /// Judges one validated message forwarded by `peer` (see the module docs) and records
    /// what it teaches. `now` is monotonic node time, `wall_ms` the input's wall time.
    pub fn judge(
        &mut self,
        now: u64,
        wall_ms: u64,
        peer: Option<PeerId>,
        outcome: &Outcome,
    ) -> Judgement {
        match outcome.reason {
            Reason::WrongSigner => self.judge_signer(now, outcome),
            Reason::TooOld | Reason::TooNew => {
                self.sample(now, wall_ms, outcome);
                self.see_peer(now, peer, false);
                self.judge_clock(now, outcome)
            }
            Reason::BlobGasUsedBeforeJovian => {
                self.sample(now, wall_ms, outcome);
                self.see_peer(now, peer, true);
                let Some(h) = outcome.payload_hash else {
                    return Judgement::Charge;
                };
                let bt = self.block_time_ms;
                let f = &mut self.fork;
                if outcome.signer.is_none() || f.recent.contains(&h) || !f.bucket.has_token(now, bt)
                {
                    f.recent.insert(h);
                    return Judgement::Charge;
                }
                f.recent.insert(h);
                f.bucket.take(now, bt);
                f.episode.touch(now, self.window_ms);
                Judgement::Spare {
                    cause: StaleCause::Fork,
                    announce: None,
                }
            }
            Reason::Accepted
            | Reason::Duplicate
            | Reason::TooManyBlocksAtHeight
            | Reason::BlockHashMismatch
            | Reason::WithdrawalsNotEmpty
            | Reason::ExcessBlobGasNonZero
                if outcome.signer.is_some() && outcome.header.is_some() =>
            {
                self.sample(now, wall_ms, outcome);
                self.see_peer(now, peer, true);
                Judgement::Charge
            }
            _ => Judgement::Charge,
        }
    }

    fn judge_signer(&mut self, now: u64, outcome: &Outcome) -> Judgement {
        let (Some(addr), Some(h)) = (outcome.signer, outcome.payload_hash) else {
            return Judgement::Charge;
        };
        let bt = self.block_time_ms;
        if !self.candidates.contains_key(&addr) {
            if self.candidates.len() >= MAX_CANDIDATES {
                // The weakest goes: fewest spared blocks, then least recently seen.
                let weakest = self
                    .candidates
                    .iter()
                    .min_by_key(|(_, c)| (c.spared, c.last_seen))
                    .map(|(a, _)| *a);
                if let Some(w) = weakest {
                    self.candidates.remove(&w);
                }
            }
            let mut recent = Recent::default();
            recent.insert(h);
            self.candidates.insert(
                addr,
                Candidate {
                    last_seen: now,
                    bucket: Bucket::empty(now),
                    recent,
                    spared: 0,
                    episode: Episode::default(),
                    announced: None,
                },
            );
            return Judgement::Charge;
        }
        let window = self.window_ms;
        let Some(c) = self.candidates.get_mut(&addr) else {
            return Judgement::Charge;
        };
        c.last_seen = now;
        // `header` is set only when the probe ran (new hash, a token) and every stateless
        // rule passed.
        let plausible =
            outcome.header.is_some() && !c.recent.contains(&h) && c.bucket.has_token(now, bt);
        c.recent.insert(h);
        if !plausible {
            return Judgement::Charge;
        }
        c.bucket.take(now, bt);
        c.spared = c.spared.saturating_add(1);
        c.episode.touch(now, window);
        let announce = c
            .announced
            .is_none_or(|t| now.saturating_sub(t) >= SIGNER_SUSPECT_INTERVAL_MS);
        if announce {
            c.announced = Some(now);
        }
        Judgement::Spare {
            cause: StaleCause::Signer,
            announce: announce.then_some(addr),
        }
    }

    fn judge_clock(&mut self, now: u64, outcome: &Outcome) -> Judgement {
        let (Some(_), Some(h), Some(_)) = (outcome.signer, outcome.payload_hash, outcome.header)
        else {
            return Judgement::Charge;
        };
        let (bt, window) = (self.block_time_ms, self.window_ms);
        let recent = |t: Option<u64>| t.is_some_and(|t| now.saturating_sub(t) <= window);
        let outside = self.peers.values().filter(|p| recent(p.outside)).count();
        let inside = self.peers.values().filter(|p| recent(p.inside)).count();
        let c = &mut self.clock;
        let most = outside >= 2 && outside > inside;
        if c.recent.contains(&h) || !c.bucket.has_token(now, bt) || !most {
            c.recent.insert(h);
            return Judgement::Charge;
        }
        c.recent.insert(h);
        c.bucket.take(now, bt);
        c.episode.touch(now, window);
        Judgement::Spare {
            cause: StaleCause::Clock,
            announce: None,
        }
    }

    /// Records an offset sample from a correctly signed, decoded block.
    fn sample(&mut self, now: u64, wall_ms: u64, outcome: &Outcome) {
        let Some(header) = outcome.header else {
            return;
        };
        if outcome.signer.is_none() {
            return;
        }
        let block_ms = i64::try_from(header.timestamp.saturating_mul(1000)).unwrap_or(i64::MAX);
        let wall = i64::try_from(wall_ms).unwrap_or(i64::MAX);
        if self.offsets.len() >= OFFSET_SAMPLES {
            self.offsets.pop_front();
        }
        self.offsets.push_back((now, block_ms.saturating_sub(wall)));
    }

    fn see_peer(&mut self, now: u64, peer: Option<PeerId>, inside: bool) {
        let Some(peer) = peer else {
            return;
        };
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_PEERS {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(_, s)| s.last())
                .map(|(p, _)| *p);
            if let Some(o) = oldest {
                self.peers.remove(&o);
            }
        }
        let seen = self.peers.entry(peer).or_default();
        if inside {
            seen.inside = Some(now);
        } else {
            seen.outside = Some(now);
        }
    }

    /// The median of block timestamp minus our wall time over the recent correctly signed
    /// blocks (within the window), ms; `None` without samples. Positive: blocks are ahead of
    /// our clock (our clock is behind).
    pub fn clock_offset_ms(&self, now: u64) -> Option<i64> {
        let mut v: Vec<i64> = self
            .offsets
            .iter()
            .filter(|(t, _)| now.saturating_sub(*t) <= self.window_ms)
            .map(|(_, o)| *o)
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        Some(v[v.len() / 2])
    }

    /// The suspicions active now: a cause with a spared block within the window. For the
    /// signer, the address with the most spared blocks in its current run.
    pub fn suspicions(&self, now: u64) -> Vec<Suspicion> {
        let w = self.window_ms;
        let mut out = Vec::new();
        if let Some((addr, since)) = self
            .candidates
            .iter()
            .filter_map(|(a, c)| c.episode.active(now, w).map(|s| (*a, s, c.spared)))
            .max_by_key(|(_, _, spared)| *spared)
            .map(|(a, s, _)| (a, s))
        {
            out.push(Suspicion {
                cause: StaleCause::Signer,
                since,
                address: Some(addr),
                offset_ms: None,
            });
        }
        if let Some(since) = self.clock.episode.active(now, w) {
            out.push(Suspicion {
                cause: StaleCause::Clock,
                since,
                address: None,
                offset_ms: self.clock_offset_ms(now),
            });
        }
        if let Some(since) = self.fork.episode.active(now, w) {
            out.push(Suspicion {
                cause: StaleCause::Fork,
                since,
                address: None,
                offset_ms: None,
            });
        }
        out
    }

    /// Entries held, for the node's bound check: (candidates, peers, offset samples).
    pub fn len(&self) -> (usize, usize, usize) {
        (self.candidates.len(), self.peers.len(), self.offsets.len())
    }

    /// Forgets what it learned about a signer address that is now ours (after
    /// `SetUnsafeSigner`), so an old suspicion does not linger.
    pub fn forget_signer(&mut self, signer: Address) {
        self.candidates.remove(&signer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::topic::BlockVersion;
    use crate::gossip::validate::{Validator, ValidatorConfig};
    use crate::testkit::{BlockBuilder, dev_key, peer_id};

    const CHAIN: u64 = 901;
    const NOW: u64 = 1_750_000_000;

    fn validator() -> Validator {
        Validator::new(ValidatorConfig::new(
            CHAIN,
            dev_key(0).address(),
            crate::fork::ForkSchedule::ALL_AT_GENESIS,
            2,
        ))
    }

    /// Validates with the detector's probe and judges, at monotonic `now` = wall.
    fn run(sv: &mut StaleView, val: &mut Validator, now: u64, peer: u64, data: &[u8]) -> Judgement {
        let out = val.validate_probing(now, BlockVersion::V4, data, |a, h| {
            sv.wants_probe(now, a, h)
        });
        sv.judge(now, now, Some(peer_id(peer)), &out)
    }

    fn signed(key: u64, number: u64, ts: u64) -> Vec<u8> {
        BlockBuilder::new(BlockVersion::V4, number, ts)
            .sign(&dev_key(key), CHAIN)
            .unwrap()
    }

    #[test]
    fn a_new_signer_at_the_block_rate_is_spared_after_its_first_block() {
        let (mut sv, mut val) = (StaleView::new(2), validator());
        let t0 = NOW * 1000;
        let mut spared = 0;
        let mut announced = Vec::new();
        for i in 0..30u64 {
            let now = t0 + i * 2000;
            match run(
                &mut sv,
                &mut val,
                now,
                1 + i % 3,
                &signed(5, 100 + i, now / 1000),
            ) {
                Judgement::Charge => assert_eq!(i, 0, "only the first block is charged"),
                Judgement::Spare { cause, announce } => {
                    assert_eq!(cause, StaleCause::Signer);
                    spared += 1;
                    announced.extend(announce.map(|a| (now, a)));
                }
            }
        }
        assert_eq!(spared, 29);
        // Announced at the first spare, then once per interval.
        let a = dev_key(5).address();
        let t1 = t0 + 2000;
        assert_eq!(
            announced,
            vec![(t1, a), (t1 + 30_000, a)],
            "once per SIGNER_SUSPECT_INTERVAL_MS"
        );
        let s = sv.suspicions(t0 + 60_000);
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].cause, s[0].address, s[0].since),
            (StaleCause::Signer, Some(a), t1)
        );
        assert!(
            sv.suspicions(t0 + 58_000 + sv.window_ms() + 1).is_empty(),
            "fades"
        );
    }

    #[test]
    fn a_flood_from_one_key_far_above_the_block_rate_is_charged() {
        let (mut sv, mut val) = (StaleView::new(2), validator());
        let t0 = NOW * 1000;
        // 200 distinct valid-looking blocks in 2 s: at most 2 tokens earned (one per second).
        let mut spared = 0;
        for i in 0..200u64 {
            let now = t0 + i * 10;
            if run(&mut sv, &mut val, now, 7, &signed(7, 100 + i, NOW)) != Judgement::Charge {
                spared += 1;
            }
        }
        assert!(spared <= 2, "{spared} spared");
        // The same block repeated: charged every time.
        let mut sv = StaleView::new(2);
        let data = signed(7, 1, NOW);
        for i in 0..20u64 {
            let now = t0 + i * 5_000;
            assert_eq!(run(&mut sv, &mut val, now, 7, &data), Judgement::Charge);
        }
    }

    #[test]
    fn random_keys_and_junk_are_charged_and_the_table_stays_bounded() {
        let (mut sv, mut val) = (StaleView::new(2), validator());
        let t0 = NOW * 1000;
        // A new key per message: every first sighting is charged.
        for i in 0..40u64 {
            let now = t0 + i * 2_000;
            assert_eq!(
                run(&mut sv, &mut val, now, 7, &signed(10 + i, 5, NOW)),
                Judgement::Charge
            );
        }
        assert!(sv.len().0 <= MAX_CANDIDATES);
        // One key signing junk (a block whose hash does not match) at the block rate: charged.
        let key = dev_key(3);
        for i in 0..10u64 {
            let now = t0 + 100_000 + i * 2_000;
            let b = BlockBuilder::new(BlockVersion::V4, 200 + i, now / 1000);
            let (_, root) = b.build();
            let junk = b.build_unhashed();
            let data =
                crate::gossip::signature::sign_block_message(&key, CHAIN, &junk, root).unwrap();
            assert_eq!(run(&mut sv, &mut val, now, 7, &data), Judgement::Charge);
        }
    }

    #[test]
    fn out_of_window_blocks_from_most_peers_are_spared_and_a_lone_replayer_is_not() {
        let t0 = NOW * 1000;
        // Our clock is 90 s behind: every block is TooNew, from three peers in turn.
        let (mut sv, mut val) = (StaleView::new(2), validator());
        let mut charged = 0;
        for i in 0..30u64 {
            let now = t0 + i * 2000;
            let ts = now / 1000 + 90;
            match run(&mut sv, &mut val, now, 1 + i % 3, &signed(0, 100 + i, ts)) {
                Judgement::Charge => charged += 1,
                Judgement::Spare { cause, .. } => assert_eq!(cause, StaleCause::Clock),
            }
        }
        assert_eq!(charged, 1, "only while a single peer had shown it");
        let off = sv.clock_offset_ms(t0 + 60_000).unwrap();
        assert!((89_000..=91_000).contains(&off), "{off}");
        let s = sv.suspicions(t0 + 60_000);
        assert_eq!(s[0].cause, StaleCause::Clock);

        // One peer replays old signed blocks while two others bring fresh ones: charged.
        let (mut sv, mut val) = (StaleView::new(2), validator());
        for i in 0..30u64 {
            let now = t0 + i * 2000;
            for p in [1, 2] {
                let fresh = signed(0, 1000 + 2 * i + p, now / 1000);
                assert_eq!(run(&mut sv, &mut val, now, p, &fresh), Judgement::Charge);
            }
            let old = signed(0, 10 + i, now / 1000 - 600);
            assert_eq!(
                run(&mut sv, &mut val, now, 9, &old),
                Judgement::Charge,
                "{i}"
            );
        }
        assert!(sv.suspicions(t0 + 60_000).is_empty());
    }
}
