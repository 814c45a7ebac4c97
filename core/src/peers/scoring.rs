//! Peer scoring (spec §6) as plain data and pure logic.
//!
//! - [`PeerScoreParams`] / [`PeerScoreThresholds`]: op-node's "light" gossipsub profile,
//!   computed from the L2 block time. The runtime converts them into libp2p-gossipsub types.
//! - [`AppScores`]: the application-specific score gossipsub adds to each peer's total
//!   (weight 1). It sums op-node's req/resp score ([`ReqRespScoreParams`]) and, beyond op-node,
//!   a penalty for gossip REJECT verdicts ([`GossipAppScoreParams`]).
//!
//! What a low score leads to, the ban, is in [`crate::peers::score_ban`].
//!
//! Time is Unix milliseconds from the caller; decay happens on explicit [`AppScores::decay`]
//! calls, once per elapsed slot.

use std::collections::BTreeMap;

use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use crate::gossip::validate::Verdict;

/// A decayed value below this becomes 0 (op-node `DecayToZero`).
pub const DECAY_TO_ZERO: f64 = 0.01;
/// Slots per "epoch" in op-node's scoring (6 blocks).
pub const SLOTS_PER_EPOCH: u64 = 6;
/// Slot length used when the block time is 0 (op-node falls back to 2 s).
pub const DEFAULT_SLOT_MS: u64 = 2_000;

/// op-node's `ScoreDecay(duration, slot)`: the per-slot factor that takes 1.0 to
/// [`DECAY_TO_ZERO`] over `duration`. Like op-node, the number of slots is an integer division
/// (`duration / slot`), then `0.01^(1/n)`. Returns 0 when `duration < slot` (Go would divide by
/// zero and return `0.01^+Inf` = 0).
pub fn score_decay(duration_ms: u64, slot_ms: u64) -> f64 {
    let n = duration_ms.checked_div(slot_ms).unwrap_or(0);
    if n == 0 {
        return 0.0;
    }
    DECAY_TO_ZERO.powf(1.0 / n as f64)
}

/// Slot length from the L2 block time, with op-node's 2 s fallback for 0.
pub fn slot_ms(block_time_secs: u64) -> u64 {
    if block_time_secs == 0 {
        DEFAULT_SLOT_MS
    } else {
        block_time_secs.saturating_mul(1000)
    }
}

/// Router-level gossipsub peer-score parameters (no per-topic parameters: op-node leaves the
/// topic map empty on purpose, so leaving old topics is never punished).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeerScoreParams {
    /// Cap on the summed topic scores (op-node sets 34; no topics are scored).
    pub topic_score_cap: f64,
    /// Weight of the application-specific score ([`AppScores::score`]).
    pub app_specific_weight: f64,
    /// IP colocation weight (negative).
    pub ip_colocation_factor_weight: f64,
    /// Peers per IP above which colocation counts.
    pub ip_colocation_factor_threshold: f64,
    /// Behaviour penalty weight (negative).
    pub behaviour_penalty_weight: f64,
    /// Behaviour penalty threshold.
    pub behaviour_penalty_threshold: f64,
    /// Behaviour penalty decay per decay interval.
    pub behaviour_penalty_decay: f64,
    /// Decay interval, ms (one slot).
    pub decay_interval_ms: u64,
    /// Decayed counters below this become 0.
    pub decay_to_zero: f64,
    /// How long a disconnected peer's score is kept, ms (100 epochs).
    pub retain_score_ms: u64,
}

impl PeerScoreParams {
    /// op-node's "light" profile (`p2p.scoring=light`, the default) for a block time.
    pub fn light(block_time_secs: u64) -> Self {
        let slot = slot_ms(block_time_secs);
        let epoch = SLOTS_PER_EPOCH.saturating_mul(slot);
        Self {
            topic_score_cap: 34.0,
            app_specific_weight: 1.0,
            ip_colocation_factor_weight: -35.0,
            ip_colocation_factor_threshold: 10.0,
            behaviour_penalty_weight: -16.0,
            behaviour_penalty_threshold: 6.0,
            behaviour_penalty_decay: score_decay(epoch.saturating_mul(10), slot),
            decay_interval_ms: slot,
            decay_to_zero: DECAY_TO_ZERO,
            retain_score_ms: epoch.saturating_mul(100),
        }
    }
}

/// Gossipsub score thresholds (op-node `NewPeerScoreThresholds`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeerScoreThresholds {
    /// Below this, no gossip (IHAVE/IWANT) to or from the peer.
    pub gossip: f64,
    /// Below this, we do not publish to the peer.
    pub publish: f64,
    /// Below this, all the peer's RPCs are ignored.
    pub graylist: f64,
    /// Peer exchange is accepted only from peers above this.
    pub accept_px: f64,
    /// Median mesh score below which opportunistic grafting happens.
    pub opportunistic_graft: f64,
}

impl Default for PeerScoreThresholds {
    fn default() -> Self {
        Self {
            gossip: -10.0,
            publish: -40.0,
            graylist: -40.0,
            accept_px: 20.0,
            opportunistic_graft: 0.05,
        }
    }
}

/// op-node's req/resp application score parameters (`LightApplicationScoreParams`):
/// `score = 0.5·valid − 1·errors − 20·rejected`, counters capped at 10, 9 and 20, each decayed
/// per slot by the 10-epoch factor and zeroed below [`DECAY_TO_ZERO`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReqRespScoreParams {
    /// Cap on the valid-responses counter.
    pub valid_cap: f64,
    /// Weight of a valid response.
    pub valid_weight: f64,
    /// Per-slot decay of the valid counter.
    pub valid_decay: f64,
    /// Cap on the error counter (9: alone it never reaches the −10 gossip threshold).
    pub error_cap: f64,
    /// Weight of an error response.
    pub error_weight: f64,
    /// Per-slot decay of the error counter.
    pub error_decay: f64,
    /// Cap on the rejected-payload counter.
    pub rejected_cap: f64,
    /// Weight of a rejected payload (5 reach the −100 ban threshold).
    pub rejected_weight: f64,
    /// Per-slot decay of the rejected counter.
    pub rejected_decay: f64,
}

impl ReqRespScoreParams {
    /// op-node's light profile for a block time.
    pub fn light(block_time_secs: u64) -> Self {
        let slot = slot_ms(block_time_secs);
        let d = score_decay(
            SLOTS_PER_EPOCH.saturating_mul(slot).saturating_mul(10),
            slot,
        );
        Self {
            valid_cap: 10.0,
            valid_weight: 0.5,
            valid_decay: d,
            error_cap: 9.0,
            error_weight: -1.0,
            error_decay: d,
            rejected_cap: 20.0,
            rejected_weight: -20.0,
            rejected_decay: d,
        }
    }
}

/// Beyond op-node: the penalty for gossip REJECT verdicts, `weight · rejects²`.
///
/// op-node's light profile scores no topic, so a peer's invalid blocks cost it nothing in
/// gossipsub's own score. We count REJECTs per peer (IGNOREs and ACCEPTs do not count), decay
/// the count per slot and square it, like gossipsub's own invalid-delivery term (P4). Squaring
/// separates the occasional honest REJECT (a block at the edge of the timestamp window) from a
/// stream of bad blocks.
///
/// Defaults: weight −0.35, count capped at 40 (so at most −560), decay
/// `0.01^(1/(50 epochs · 6 slots))` = 0.984766 per slot (op-node's former invalid-delivery
/// decay, 50 epochs: 10 min at 2 s blocks). The arithmetic (score = −0.35·c²):
/// - 1 REJECT: −0.35. Even 5 in a burst: −8.75, above the −10 gossip threshold.
/// - 6 in a burst: −12.6, below the gossip threshold. 11 would be −42.35, below graylist
///   (−40), but gossipsub sees this part floored just above graylist
///   ([`AppScores::gossipsub_score`]) so that it keeps delivering the peer's messages up to
///   the ban.
/// - 16 in a burst: −89.6; **17: −101.15**, at or below the −100 ban threshold, so a peer that
///   sends 17 invalid blocks within one slot is banned at its next check.
/// - At one REJECT per slot the count after n slots is `(1 − 0.984766ⁿ)/(1 − 0.984766)`:
///   16.6 after 19 (−96.6), 17.4 after 20 (−105.4): the **20th** crosses.
/// - A sustained REJECT a minute (30 slots at 2 s) peaks at a count of
///   1/(1 − 0.984766³⁰) = 2.71, i.e. −2.57: honest noise never approaches a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GossipAppScoreParams {
    /// Weight of the squared REJECT count (negative).
    pub reject_weight: f64,
    /// Cap on the REJECT count.
    pub reject_cap: f64,
    /// Per-slot decay of the REJECT count.
    pub reject_decay: f64,
}

impl GossipAppScoreParams {
    /// Our defaults for a block time (see the type docs).
    pub fn light(block_time_secs: u64) -> Self {
        let slot = slot_ms(block_time_secs);
        Self {
            reject_weight: -0.35,
            reject_cap: 40.0,
            reject_decay: score_decay(
                SLOTS_PER_EPOCH.saturating_mul(slot).saturating_mul(50),
                slot,
            ),
        }
    }
}

/// Settings of the [`AppScores`] table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppScoreConfig {
    /// Req/resp part (op-node).
    pub reqresp: ReqRespScoreParams,
    /// Gossip-verdict part (ours).
    pub gossip: GossipAppScoreParams,
    /// Decay interval, ms (one slot).
    pub decay_interval_ms: u64,
    /// Counters below this become 0 when decayed.
    pub decay_to_zero: f64,
    /// An entry not updated for this long is dropped by [`AppScores::expire`] (op-node keeps
    /// scores 100 epochs).
    pub retain_ms: u64,
    /// Most peers tracked.
    pub max_peers: usize,
}

impl AppScoreConfig {
    /// The light profile for a block time; up to 1,024 peers.
    pub fn light(block_time_secs: u64) -> Self {
        let slot = slot_ms(block_time_secs);
        Self {
            reqresp: ReqRespScoreParams::light(block_time_secs),
            gossip: GossipAppScoreParams::light(block_time_secs),
            decay_interval_ms: slot,
            decay_to_zero: DECAY_TO_ZERO,
            retain_ms: SLOTS_PER_EPOCH.saturating_mul(slot).saturating_mul(100),
            max_peers: 1024,
        }
    }
}

/// op-node's `PeerScores.reqResp` counters (JSON names as op-node's).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReqRespScores {
    /// Valid responses (capped, decayed).
    pub valid_responses: f64,
    /// Error responses (capped, decayed).
    pub error_responses: f64,
    /// Rejected payloads (capped, decayed).
    pub rejected_payloads: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    reqresp: ReqRespScores,
    rejects: f64,
    last_update: u64,
}

impl Entry {
    fn is_zero(&self) -> bool {
        self.reqresp == ReqRespScores::default() && self.rejects == 0.0
    }
}

/// Per-peer application scores.
///
/// Bounded by [`AppScoreConfig::max_peers`]: a new peer at the bound evicts the entry with the
/// **highest** score (the least damning record; ties: least recently updated, then smallest
/// peer id), so flooding the table with fresh identities cannot wash out a bad peer's record.
/// Entries whose counters have all decayed to 0 are dropped by [`AppScores::decay`]; entries
/// not updated for [`AppScoreConfig::retain_ms`] are dropped by [`AppScores::expire`].
///
/// Eviction cost: the victim is found by a scan of the table, O(`max_peers`) per new peer at
/// the bound. This is kept on purpose: scores decay per counter with different factors (and the
/// REJECT term is squared), and only connected peers decay, so the order of entries changes
/// at every decay step and a static ordered index would go stale. Measured: 41 µs per insert
/// at the default bound (1,024 entries) in a debug build of the core (opt-level 0, so an upper
/// bound). A new entry needs a new peer id that sends a REJECTed gossip message (or answers
/// our req/resp request), i.e. a fresh libp2p connection: TCP + Noise + Yamux, whose
/// handshake costs the node itself more than the scan (2,000 such connections took 3.3 s,
/// ~1.6 ms each, in `tests/tests/adversarial.rs`) and is capped per IP by the gater.
#[derive(Debug, Clone)]
pub struct AppScores {
    cfg: AppScoreConfig,
    peers: BTreeMap<PeerId, Entry>,
    /// Slot boundary up to which decay has been applied.
    decayed_to: Option<u64>,
}

/// Most decay steps applied in one call: far more than any capped counter needs to reach 0.
const MAX_DECAY_STEPS: u64 = 10_000;

fn decay_value(v: f64, factor: f64, to_zero: f64) -> f64 {
    let v = v * factor;
    if v < to_zero { 0.0 } else { v }
}

impl AppScores {
    /// An empty table.
    pub fn new(mut cfg: AppScoreConfig) -> Self {
        cfg.max_peers = cfg.max_peers.max(1);
        cfg.decay_interval_ms = cfg.decay_interval_ms.max(1);
        Self {
            cfg,
            peers: BTreeMap::new(),
            decayed_to: None,
        }
    }

    /// Number of peers tracked.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is tracked.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    fn entry(&mut self, now: u64, peer: PeerId) -> &mut Entry {
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.cfg.max_peers {
            let cfg = self.cfg;
            let victim = self
                .peers
                .iter()
                .max_by(|(pa, a), (pb, b)| {
                    Self::entry_score(&cfg, a)
                        .total_cmp(&Self::entry_score(&cfg, b))
                        .then(b.last_update.cmp(&a.last_update))
                        .then(pb.cmp(pa))
                })
                .map(|(p, _)| *p);
            if let Some(v) = victim {
                self.peers.remove(&v);
            }
        }
        let e = self.peers.entry(peer).or_default();
        e.last_update = e.last_update.max(now);
        e
    }

    /// A valid req/resp response from `peer`.
    pub fn on_valid_response(&mut self, now: u64, peer: PeerId) {
        let cap = self.cfg.reqresp.valid_cap;
        let e = &mut self.entry(now, peer).reqresp;
        e.valid_responses = (e.valid_responses + 1.0).min(cap);
    }

    /// A failed or unsupported req/resp request to `peer`.
    pub fn on_error_response(&mut self, now: u64, peer: PeerId) {
        let cap = self.cfg.reqresp.error_cap;
        let e = &mut self.entry(now, peer).reqresp;
        e.error_responses = (e.error_responses + 1.0).min(cap);
    }

    /// A payload from `peer` over req/resp that failed validation.
    pub fn on_rejected_payload(&mut self, now: u64, peer: PeerId) {
        let cap = self.cfg.reqresp.rejected_cap;
        let e = &mut self.entry(now, peer).reqresp;
        e.rejected_payloads = (e.rejected_payloads + 1.0).min(cap);
    }

    /// A gossip verdict on a message `peer` propagated: REJECT counts, ACCEPT and IGNORE do
    /// not (and create no entry).
    pub fn on_gossip_verdict(&mut self, now: u64, peer: PeerId, verdict: Verdict) {
        if verdict != Verdict::Reject {
            return;
        }
        let cap = self.cfg.gossip.reject_cap;
        let e = self.entry(now, peer);
        e.rejects = (e.rejects + 1.0).min(cap);
    }

    fn entry_score(cfg: &AppScoreConfig, e: &Entry) -> f64 {
        let r = &cfg.reqresp;
        e.reqresp.valid_responses * r.valid_weight
            + e.reqresp.error_responses * r.error_weight
            + e.reqresp.rejected_payloads * r.rejected_weight
            + cfg.gossip.reject_weight * e.rejects * e.rejects
    }

    /// The application-specific score of `peer` (0 when untracked): what gossipsub's
    /// `AppSpecificScore` returns.
    pub fn score(&self, peer: &PeerId) -> f64 {
        self.peers
            .get(peer)
            .map_or(0.0, |e| Self::entry_score(&self.cfg, e))
    }

    /// The application score to hand to gossipsub: [`AppScores::score`] with the gossip-REJECT
    /// part floored at `reject_floor` (the req/resp part, op-node's, is not floored).
    ///
    /// ⚠ Why: gossipsub ignores every message of a peer whose score is below its graylist
    /// threshold (−40, crossed at 11 REJECTs), so no further REJECT is ever counted and the
    /// −100 ban (17 REJECTs) would never come; the peer would stay connected and muted. With
    /// the REJECT part floored just above the graylist threshold, gossipsub keeps handing us
    /// the peer's messages until the ban check, which uses the full [`AppScores::score`],
    /// bans and disconnects it.
    pub fn gossipsub_score(&self, peer: &PeerId, reject_floor: f64) -> f64 {
        self.peers.get(peer).map_or(0.0, |e| {
            let full = Self::entry_score(&self.cfg, e);
            let rejects = self.cfg.gossip.reject_weight * e.rejects * e.rejects;
            full - rejects + rejects.max(reject_floor)
        })
    }

    /// The req/resp counters of `peer`, for `PeerScores.reqResp`.
    pub fn reqresp(&self, peer: &PeerId) -> ReqRespScores {
        self.peers.get(peer).map(|e| e.reqresp).unwrap_or_default()
    }

    /// The decayed REJECT count of `peer`.
    pub fn gossip_rejects(&self, peer: &PeerId) -> f64 {
        self.peers.get(peer).map_or(0.0, |e| e.rejects)
    }

    /// Applies one decay step per whole slot elapsed since the last call (the first call only
    /// sets the baseline) to the peers `is_connected` accepts, as op-node decays only connected
    /// peers' app scores. Entries that reach all zeros are dropped.
    pub fn decay(&mut self, now: u64, is_connected: impl Fn(&PeerId) -> bool) {
        let slot = self.cfg.decay_interval_ms;
        let Some(base) = self.decayed_to else {
            self.decayed_to = Some(now);
            return;
        };
        if now <= base {
            return;
        }
        let steps = (now - base) / slot;
        if steps == 0 {
            return;
        }
        self.decayed_to = Some(base.saturating_add(steps.saturating_mul(slot)));
        let cfg = self.cfg;
        let z = cfg.decay_to_zero;
        for (peer, e) in self.peers.iter_mut() {
            if !is_connected(peer) {
                continue;
            }
            for _ in 0..steps.min(MAX_DECAY_STEPS) {
                let r = &mut e.reqresp;
                r.valid_responses = decay_value(r.valid_responses, cfg.reqresp.valid_decay, z);
                r.error_responses = decay_value(r.error_responses, cfg.reqresp.error_decay, z);
                r.rejected_payloads =
                    decay_value(r.rejected_payloads, cfg.reqresp.rejected_decay, z);
                e.rejects = decay_value(e.rejects, cfg.gossip.reject_decay, z);
                if e.is_zero() {
                    break;
                }
            }
        }
        self.peers.retain(|_, e| !e.is_zero());
    }

    /// When [`AppScores::decay`] next has a step to apply.
    pub fn next_decay(&self) -> Option<u64> {
        self.decayed_to
            .map(|b| b.saturating_add(self.cfg.decay_interval_ms))
    }

    /// Drops entries not updated for [`AppScoreConfig::retain_ms`]; returns how many.
    pub fn expire(&mut self, now: u64) -> usize {
        let before = self.peers.len();
        let retain = self.cfg.retain_ms;
        self.peers
            .retain(|_, e| now.saturating_sub(e.last_update) <= retain);
        before - self.peers.len()
    }

    /// Forgets a peer.
    pub fn remove(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::score_ban::{BanCause, BanConfig, ban_decision};

    const G: BanCause = BanCause::InvalidGossip(crate::gossip::validate::Reason::WrongSigner);

    fn pid(n: u32) -> PeerId {
        let b = n.to_be_bytes();
        PeerId::from_bytes(&[0, 4, b[0], b[1], b[2], b[3]]).unwrap()
    }

    #[test]
    fn behaviour_penalty_decay_matches_op_node() {
        let p = PeerScoreParams::light(2);
        assert!((p.behaviour_penalty_decay - 0.9261187281287935).abs() < 1e-15);
        // Bit-exact with op-node's number, not just close.
        assert_eq!(p.behaviour_penalty_decay, 0.9261187281287935);
        // 10 epochs of it take 1.0 to 0.01.
        assert!((p.behaviour_penalty_decay.powi(60) - 0.01).abs() < 1e-12);
        // The decay depends on slots per window only, so every block time gives the same factor.
        assert_eq!(
            PeerScoreParams::light(1).behaviour_penalty_decay,
            0.9261187281287935
        );
        assert_eq!(
            PeerScoreParams::light(0),
            p,
            "block time 0 falls back to 2 s"
        );
    }

    #[test]
    fn light_profile_values() {
        let p = PeerScoreParams::light(2);
        assert_eq!(p.decay_interval_ms, 2_000);
        assert_eq!(p.retain_score_ms, 100 * 12_000);
        assert_eq!(p.decay_to_zero, 0.01);
        assert_eq!(p.app_specific_weight, 1.0);
        assert_eq!(
            (
                p.ip_colocation_factor_weight,
                p.ip_colocation_factor_threshold
            ),
            (-35.0, 10.0)
        );
        assert_eq!(
            (p.behaviour_penalty_weight, p.behaviour_penalty_threshold),
            (-16.0, 6.0)
        );
        let t = PeerScoreThresholds::default();
        assert_eq!(
            (
                t.gossip,
                t.publish,
                t.graylist,
                t.accept_px,
                t.opportunistic_graft
            ),
            (-10.0, -40.0, -40.0, 20.0, 0.05)
        );
        assert_eq!(
            score_decay(1_000, 2_000),
            0.0,
            "less than a slot: Go's 0.01^Inf"
        );
        assert_eq!(score_decay(1_000, 0), 0.0);
    }

    fn table() -> AppScores {
        AppScores::new(AppScoreConfig::light(2))
    }

    #[test]
    fn reqresp_score_matches_op_node_weights_and_caps() {
        let mut s = table();
        let p = pid(1);
        for _ in 0..50 {
            s.on_valid_response(0, p);
            s.on_error_response(0, p);
            s.on_rejected_payload(0, p);
        }
        assert_eq!(
            s.reqresp(&p),
            ReqRespScores {
                valid_responses: 10.0,
                error_responses: 9.0,
                rejected_payloads: 20.0
            }
        );
        assert_eq!(s.score(&p), 0.5 * 10.0 - 9.0 - 20.0 * 20.0);
        // Errors alone never reach the gossip threshold; 5 rejected payloads reach the ban.
        let q = pid(2);
        for _ in 0..100 {
            s.on_error_response(0, q);
        }
        assert_eq!(s.score(&q), -9.0);
        let r = pid(3);
        for _ in 0..5 {
            s.on_rejected_payload(0, r);
        }
        assert!(ban_decision(&BanConfig::default(), 0, r, s.score(&r), false, G).is_some());
    }

    #[test]
    fn decay_per_slot_like_op_node_only_for_connected() {
        let mut s = table();
        let (a, b) = (pid(1), pid(2));
        s.on_error_response(0, a);
        s.on_error_response(0, b);
        s.decay(0, |_| true); // baseline
        s.decay(1_999, |_| true);
        assert_eq!(s.reqresp(&a).error_responses, 1.0, "no whole slot yet");
        s.decay(4_000, |p| *p == a); // two slots
        let d = ReqRespScoreParams::light(2).error_decay;
        assert_eq!(s.reqresp(&a).error_responses, 1.0 * d * d);
        assert_eq!(s.reqresp(&b).error_responses, 1.0, "disconnected: frozen");
        assert_eq!(s.next_decay(), Some(6_000));
        // 1.0 falls under 0.01 after 60 slots (10 epochs) and the entry goes.
        s.decay(4_000 + 57 * 2_000, |p| *p == a);
        assert!(s.reqresp(&a).error_responses > 0.0);
        s.decay(4_000 + 58 * 2_000, |p| *p == a);
        assert_eq!(s.reqresp(&a).error_responses, 0.0);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn ignores_do_not_count_rejects_do() {
        let mut s = table();
        let p = pid(1);
        for _ in 0..100 {
            s.on_gossip_verdict(0, p, Verdict::Ignore);
            s.on_gossip_verdict(0, p, Verdict::Accept);
        }
        assert_eq!(s.score(&p), 0.0);
        assert!(s.is_empty(), "no entry for non-rejects");
        s.on_gossip_verdict(0, p, Verdict::Reject);
        assert_eq!(s.score(&p), -0.35);
    }

    #[test]
    fn seventeen_rejects_in_a_burst_cross_the_ban_threshold() {
        let mut s = table();
        let ban = BanConfig::default();
        let p = pid(1);
        let mut crossed_at = None;
        for n in 1..=40 {
            s.on_gossip_verdict(0, p, Verdict::Reject);
            if crossed_at.is_none() && ban_decision(&ban, 0, p, s.score(&p), false, G).is_some() {
                crossed_at = Some(n);
            }
        }
        assert_eq!(crossed_at, Some(17));
        assert_eq!(s.score(&p), -0.35 * 40.0 * 40.0, "count capped at 40");
    }

    #[test]
    fn gossipsub_never_sees_rejects_below_the_floor_while_the_ban_sees_them_all() {
        let mut s = table();
        let ban = BanConfig::default();
        let graylist = PeerScoreThresholds::default().graylist;
        let p = pid(1);
        for n in 1..=40 {
            s.on_gossip_verdict(0, p, Verdict::Reject);
            let g = s.gossipsub_score(&p, graylist + 1.0);
            // Gossipsub would stop handing us the peer's messages below graylist: it never is.
            assert!(g >= graylist, "{n}: {g}");
            assert_eq!(g, s.score(&p).max(graylist + 1.0), "{n}");
            if n == 17 {
                assert!(ban_decision(&ban, 0, p, s.score(&p), false, G).is_some());
            }
        }
        // The req/resp part (op-node's) is not floored.
        for _ in 0..20 {
            s.on_rejected_payload(0, p);
        }
        assert_eq!(
            s.gossipsub_score(&p, graylist + 1.0),
            graylist + 1.0 - 400.0
        );
        assert_eq!(s.gossipsub_score(&pid(9), graylist + 1.0), 0.0, "untracked");
    }

    #[test]
    fn one_reject_per_slot_crosses_at_the_twentieth() {
        let mut s = table();
        let ban = BanConfig::default();
        let p = pid(1);
        s.decay(0, |_| true);
        let mut crossed_at = None;
        for n in 1..=40u64 {
            s.on_gossip_verdict(n * 2_000, p, Verdict::Reject);
            if crossed_at.is_none() && ban_decision(&ban, 0, p, s.score(&p), false, G).is_some() {
                crossed_at = Some(n);
            }
            s.decay((n + 1) * 2_000, |_| true);
        }
        assert_eq!(crossed_at, Some(20));
    }

    #[test]
    fn occasional_honest_rejects_stay_harmless() {
        let mut s = table();
        let t = PeerScoreThresholds::default();
        let p = pid(1);
        s.decay(0, |_| true);
        // One REJECT a minute for two hours.
        let mut worst: f64 = 0.0;
        for minute in 0..120u64 {
            let now = minute * 60_000;
            s.decay(now, |_| true);
            s.on_gossip_verdict(now, p, Verdict::Reject);
            worst = worst.min(s.score(&p));
        }
        assert!(worst > t.gossip, "worst {worst}");
        assert!(worst > -3.0);
        // A burst of 5 stays above the gossip threshold too.
        let q = pid(2);
        for _ in 0..5 {
            s.on_gossip_verdict(0, q, Verdict::Reject);
        }
        assert!(s.score(&q) > t.gossip);
    }

    #[test]
    fn table_bounded_keeps_the_worst_records() {
        let mut s = AppScores::new(AppScoreConfig {
            max_peers: 8,
            ..AppScoreConfig::light(2)
        });
        let bad = pid(0);
        for _ in 0..20 {
            s.on_gossip_verdict(0, bad, Verdict::Reject);
        }
        for n in 1..10_000 {
            s.on_valid_response(n as u64, pid(n));
            assert!(s.len() <= 8);
        }
        assert_eq!(
            s.score(&bad),
            -0.35 * 400.0,
            "flooding does not wash out a bad record"
        );
        // Expiry after 100 epochs (1,200 s at 2 s blocks) without updates. Survivors: `bad`
        // (updated at 0) and the 7 newest (9_993..=9_999).
        assert_eq!(s.expire(1_200_000), 0, "exactly the retention is kept");
        assert_eq!(s.expire(1_200_001), 1);
        assert_eq!(s.score(&bad), 0.0);
        assert_eq!(s.expire(9_999 + 1_200_000), 6);
        assert_eq!(s.expire(9_999 + 1_200_001), 1);
        assert!(s.is_empty());
    }
}
