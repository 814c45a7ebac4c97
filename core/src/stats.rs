//! What the runtime exports as metrics (op-node's names with an `op_p2p_` prefix): [`Stats`],
//! the plain counters of the core's decisions, and [`NodeStats`], the one plain-data view the
//! node hands out for a scrape (these counters, the gater's [`GaterStats`] and each connected
//! peer's scores).

use crate::admin::PeerScores;
use crate::gossip::validate::Reason;
use crate::peers::gater::GaterStats;
use crate::peers::score_ban::BanCause;

/// Everything the metrics read from the node, copied out by [`crate::Node::stats`] so the
/// exporter needs no access to the node's tables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeStats {
    /// Counters of the node's own decisions (verdicts, discovery, dials, bans, req/resp).
    pub counters: Stats,
    /// Counters of the gater's decisions (dials, accepts, established, unbans).
    pub gating: GaterStats,
    /// The scores of each connected peer, as `opp2p_peers` reports them (`gossip.total`
    /// includes our application score). One entry per connected peer, in peer id order.
    pub connected_scores: Vec<PeerScores>,
    /// The estimated offset of our clock, ms: the median of block timestamp minus our wall
    /// time over recent correctly signed blocks (see
    /// [`StaleView::clock_offset_ms`](crate::gossip::stale_view::StaleView::clock_offset_ms));
    /// `None` without recent blocks.
    pub clock_offset_ms: Option<i64>,
}

/// Counters of what the core has decided. Plain data, cheap to copy out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    verdicts: [u64; Reason::ALL.len()],
    /// Discovered records accepted into the table.
    pub discovered_accepted: u64,
    /// Discovered records refused by the filter.
    pub discovered_refused: u64,
    /// Dials the node asked for.
    pub dials_requested: u64,
    /// Score bans issued, both causes (the gater took them; a ban refused because the ban list
    /// is full is not counted).
    pub bans: u64,
    /// Of [`Stats::bans`], those issued at once by a REJECT verdict that took the peer's total
    /// to the threshold ([`BanCause::InvalidGossip`]).
    pub bans_invalid_gossip: u64,
    /// Of [`Stats::bans`], those the round-robin monitor found ([`BanCause::ScoreDrift`]).
    pub bans_score_drift: u64,
    /// IP bans issued along with a ban on invalid gossip (see
    /// [`crate::peers::score_ban::ip_ban_decision`]).
    pub ip_bans: u64,
    /// `payload_by_number` responses by result code (0 ok, 1 not found, 2 invalid, 3 error).
    pub reqresp_responses: [u64; 4],
    /// REJECTs not charged to the peer because our own view may be stale, by cause
    /// (`[signer, clock, fork]`, see [`crate::gossip::stale_view`]).
    pub spared: [u64; 3],
    /// Score bans by the invalid-gossip reason that crossed the threshold (same order as
    /// [`Reason::ALL`]).
    bans_by_reason: [u64; Reason::ALL.len()],
}

impl Stats {
    /// Counts one verdict.
    pub fn count_verdict(&mut self, reason: Reason) {
        if let Some(i) = Reason::ALL.iter().position(|r| *r == reason) {
            self.verdicts[i] = self.verdicts[i].saturating_add(1);
        }
    }

    /// How many messages got this reason.
    pub fn verdicts(&self, reason: Reason) -> u64 {
        Reason::ALL
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.verdicts[i])
    }

    /// Every reason with its count.
    pub fn verdicts_by_reason(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL
            .iter()
            .copied()
            .zip(self.verdicts.iter().copied())
    }

    pub(crate) fn count_discovery(&mut self, accepted: bool) {
        if accepted {
            self.discovered_accepted += 1;
        } else {
            self.discovered_refused += 1;
        }
    }

    pub(crate) fn count_dial(&mut self) {
        self.dials_requested += 1;
    }

    pub(crate) fn count_ban(&mut self, cause: BanCause) {
        self.bans += 1;
        match cause {
            BanCause::InvalidGossip(r) => {
                self.bans_invalid_gossip += 1;
                if let Some(i) = Reason::ALL.iter().position(|x| *x == r) {
                    self.bans_by_reason[i] = self.bans_by_reason[i].saturating_add(1);
                }
            }
            BanCause::ScoreDrift => self.bans_score_drift += 1,
        }
    }

    /// Score bans on invalid gossip by the reason of the REJECT that crossed the threshold,
    /// every reason listed (bounded labels for metrics).
    pub fn bans_by_reason(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL
            .iter()
            .copied()
            .zip(self.bans_by_reason.iter().copied())
    }

    pub(crate) fn count_spared(&mut self, cause: crate::gossip::stale_view::StaleCause) {
        use crate::gossip::stale_view::StaleCause;
        let i = match cause {
            StaleCause::Signer => 0,
            StaleCause::Clock => 1,
            StaleCause::Fork => 2,
        };
        self.spared[i] = self.spared[i].saturating_add(1);
    }

    pub(crate) fn count_ip_ban(&mut self) {
        self.ip_bans += 1;
    }

    pub(crate) fn count_reqresp(&mut self, code: u8) {
        let i = usize::from(code.min(3));
        self.reqresp_responses[i] += 1;
    }
}
