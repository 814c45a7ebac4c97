//! Ban on score (spec §9; op-node's peer monitor and `p2p.ban.*` flags): a connected peer whose
//! total score falls to the threshold is disconnected and refused for a while.
//!
//! The rule, [`ban_decision`]:
//! - **Score**: the peer's total, gossipsub's score without the application part plus our
//!   application score ([`AppScores`](crate::peers::scoring::AppScores)), the same total
//!   `opp2p_peers` reports.
//! - **Threshold**: a total **at or below** [`BanConfig::threshold`] (−100) bans. ⚠ The spec
//!   text says "below"; op-node skips a peer only when `score > threshold`, and we follow
//!   op-node. A NaN score never bans (in op-node it would).
//! - **Duration**: [`BanConfig::duration_ms`] (1 hour). The Node disconnects the peer and
//!   records a timed ban in the [`Gater`](crate::peers::gater::Gater), persisted with the
//!   node's state: until it ends we neither dial the peer nor keep a connection from it, then
//!   it is lifted. It is not a permanent block: `opp2p_listBlockedPeers` and `opp2p_peers` do
//!   not list it.
//! - **Exempt**: static peers only. RPC-protected peers (`opp2p_protectPeer`) are banned like
//!   any other, as in op-node (but their IP never is, below).
//! - **Off**: [`BanConfig::enabled`] false (`p2p.ban.peers=false`) bans nobody, on either path.
//!
//! Two paths apply the rule, each recording its [`BanCause`] (in the node's `Stats` and the
//! log, so metrics tell them apart):
//! - **At once, on invalid gossip** ([`BanCause::InvalidGossip`]): our application score moves
//!   down only on an input of ours, a REJECT verdict on gossip the peer forwarded. The Node
//!   applies the rule to that peer in the same `handle_input`, so a spamming identity is banned
//!   and disconnected by the REJECT that takes it to the threshold (about 17 in a burst), not
//!   whenever the monitor's turn comes. Beyond op-node, whose only path is the monitor's.
//! - **Round robin, for drift** ([`BanCause::ScoreDrift`]), [`BanMonitor`] (op-node's pace):
//!   one connected peer is checked per [`BanConfig::check_interval_ms`] (1 s), round-robin
//!   over a snapshot of the connected peers, so a bad peer is found within about
//!   `connected × 1 s`. It catches totals that fall without an input of ours: gossipsub's own
//!   score (behaviour penalty, IP colocation), which reaches the Node only as periodic
//!   snapshots.
//!
//! **IP ban**, [`ip_ban_decision`]: a ban on invalid gossip also bans the IP the peer is
//! connected from, for the same duration, so a fresh identity from that IP is refused at
//! accept (before the handshake) and at the established-connection check. Beyond op-node, whose
//! monitor bans the peer id only (its `BanIP` exists but nothing calls it). Never for a
//! loopback IP (local devnets and tests share 127.0.0.1), nor when the peer, or any peer
//! connected from the same IP, is static or RPC-protected (the operator's trusted address),
//! nor for drift bans (gossipsub's colocation penalty would otherwise turn into IP bans of
//! crowded NATs). The Node also disconnects the other peers connected from that IP, as
//! op-node's `BanIP` does.
//!
//! ⚠ A REJECT can be caused by our own stale view (an old signer, a wrong clock; issue #13).
//! The cause keeps the [`Reason`] of the REJECT that crossed the threshold, so such reasons can
//! be told apart where the ban is made.

use std::net::IpAddr;

use libp2p_identity::PeerId;

use crate::gossip::validate::Reason;

/// Ban policy settings (op-node `p2p.ban.*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BanConfig {
    /// Banning on (`p2p.ban.peers`, default true).
    pub enabled: bool,
    /// A total score at or below this bans (`p2p.ban.threshold`, −100).
    pub threshold: f64,
    /// How long a ban lasts, ms (`p2p.ban.duration`, 1 h).
    pub duration_ms: u64,
    /// One connected peer is checked per interval, ms (1 s).
    pub check_interval_ms: u64,
}

impl Default for BanConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: -100.0,
            duration_ms: 60 * 60 * 1000,
            check_interval_ms: 1000,
        }
    }
}

/// Why a score ban was issued: which of the two paths found it (see the module docs). Kept
/// with the ban so the rules that depend on it (the IP ban) and the counters can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BanCause {
    /// A REJECT verdict on gossip the peer forwarded took its total to the threshold; banned
    /// in the same input. The reason is that REJECT's (the last of those that added up).
    InvalidGossip(Reason),
    /// The round-robin monitor found the total at or below the threshold without an input
    /// of ours (gossipsub's own score).
    ScoreDrift,
}

impl BanCause {
    /// A stable snake_case label for logs and metrics: `invalid_gossip` or `score_drift`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BanCause::InvalidGossip(_) => "invalid_gossip",
            BanCause::ScoreDrift => "score_drift",
        }
    }
}

/// A ban decided by the policy: the node disconnects `peer` and refuses it until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ban {
    /// The peer to disconnect and ban.
    pub peer: PeerId,
    /// Unix ms at which the ban ends.
    pub until: u64,
    /// Which path found it.
    pub cause: BanCause,
}

/// The ban rule for one peer.
///
/// ⚠ The spec text says "below −100"; op-node's peer monitor skips a peer only when
/// `score > threshold`, so a score of exactly −100 bans. We follow op-node. Static peers are
/// exempt; RPC-protected peers are not (op-node). A NaN score (a bug, never a peer's doing)
/// does not ban, unlike op-node where `NaN > x` is false and the peer would be banned.
/// `cause` is carried into the [`Ban`]; it does not change the decision.
pub fn ban_decision(
    cfg: &BanConfig,
    now: u64,
    peer: PeerId,
    score: f64,
    is_static: bool,
    cause: BanCause,
) -> Option<Ban> {
    if !cfg.enabled || is_static || score.is_nan() || score > cfg.threshold {
        return None;
    }
    Some(Ban {
        peer,
        until: now.saturating_add(cfg.duration_ms),
        cause,
    })
}

/// The IP to ban along with `ban`, if any (see the module docs): the peer's connection IP
/// (`ip`, canonicalised) when the ban is for invalid gossip, the IP is known and not loopback
/// (or unspecified), and `exempt` is false. The caller sets `exempt` when the peer, or any peer
/// connected from the same IP, is static or RPC-protected. The IP ban ends with the peer's.
pub fn ip_ban_decision(ban: &Ban, ip: Option<IpAddr>, exempt: bool) -> Option<IpAddr> {
    if exempt || !matches!(ban.cause, BanCause::InvalidGossip(_)) {
        return None;
    }
    let ip = crate::peers::gater::canonical_ip(ip?);
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// op-node's peer monitor: each [`BanConfig::check_interval_ms`] it checks the next peer of a
/// snapshot of the connected peers, taking a fresh snapshot when the last one is used up, so a
/// bad peer is found within about `connected × 1 s`. Its bans are [`BanCause::ScoreDrift`]:
/// a REJECT that crosses the threshold is banned by the Node at once, without waiting for it.
///
/// Bounded: the snapshot holds at most `max_snapshot` peers (the connection cap); extra peers
/// are checked in later passes as the snapshot order is the caller's.
#[derive(Debug, Clone)]
pub struct BanMonitor {
    cfg: BanConfig,
    snapshot: Vec<PeerId>,
    next: usize,
    next_check: Option<u64>,
    max_snapshot: usize,
}

impl BanMonitor {
    /// A monitor taking snapshots of at most `max_snapshot` peers.
    pub fn new(cfg: BanConfig, max_snapshot: usize) -> Self {
        Self {
            cfg,
            snapshot: Vec::new(),
            next: 0,
            next_check: None,
            max_snapshot: max_snapshot.max(1),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &BanConfig {
        &self.cfg
    }

    /// When [`BanMonitor::tick`] next has a check to make (`None`: banning is off).
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.cfg.enabled {
            return None;
        }
        Some(self.next_check.unwrap_or(0))
    }

    /// Checks the next peer if a check is due. `connected` is called only for a new snapshot;
    /// `score` returns a peer's total gossipsub score (app score included). A peer that
    /// disconnected since the snapshot may still be checked; banning it is harmless.
    pub fn tick(
        &mut self,
        now: u64,
        connected: impl FnOnce() -> Vec<PeerId>,
        score: impl Fn(&PeerId) -> f64,
        is_static: impl Fn(&PeerId) -> bool,
    ) -> Option<Ban> {
        if !self.cfg.enabled || self.next_check.is_some_and(|t| now < t) {
            return None;
        }
        self.next_check = Some(now.saturating_add(self.cfg.check_interval_ms));
        if self.next >= self.snapshot.len() {
            self.snapshot = connected();
            self.snapshot.truncate(self.max_snapshot);
            self.next = 0;
        }
        let peer = *self.snapshot.get(self.next)?;
        self.next += 1;
        ban_decision(
            &self.cfg,
            now,
            peer,
            score(&peer),
            is_static(&peer),
            BanCause::ScoreDrift,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::{Ipv4Addr, Ipv6Addr};

    const D: BanCause = BanCause::ScoreDrift;

    fn pid(n: u32) -> PeerId {
        let b = n.to_be_bytes();
        PeerId::from_bytes(&[0, 4, b[0], b[1], b[2], b[3]]).unwrap()
    }

    #[test]
    fn ban_policy_exempts_static_not_protected_and_bans_at_threshold() {
        let cfg = BanConfig::default();
        let p = pid(1);
        assert_eq!(
            ban_decision(&cfg, 1_000, p, -100.0, false, D),
            Some(Ban {
                peer: p,
                until: 1_000 + 3_600_000,
                cause: D
            })
        );
        assert_eq!(ban_decision(&cfg, 1_000, p, -99.999, false, D), None);
        assert_eq!(
            ban_decision(&cfg, 1_000, p, -1e9, true, D),
            None,
            "static exempt"
        );
        assert_eq!(ban_decision(&cfg, 1_000, p, f64::NAN, false, D), None);
        // Protection (`opp2p_protectPeer`) is not an input: protected peers are banned like
        // any other (op-node), which the signature itself guarantees.
        let off = BanConfig {
            enabled: false,
            ..cfg
        };
        assert_eq!(ban_decision(&off, 1_000, p, -1e9, false, D), None);
    }

    #[test]
    fn monitor_checks_one_peer_per_second_round_robin() {
        let mut m = BanMonitor::new(BanConfig::default(), 64);
        let peers = vec![pid(1), pid(2), pid(3)];
        let score = |p: &PeerId| {
            if *p == pid(2) || *p == pid(3) {
                -500.0
            } else {
                0.0
            }
        };
        let is_static = |p: &PeerId| *p == pid(3);
        let mut snapshots = 0;
        let mut bans = Vec::new();
        assert_eq!(m.next_deadline(), Some(0));
        for s in 0..6u64 {
            let now = s * 1_000;
            let snap = || {
                snapshots += 1;
                peers.clone()
            };
            if let Some(b) = m.tick(now, snap, score, is_static) {
                bans.push((now, b));
            }
            assert_eq!(m.next_deadline(), Some(now + 1_000));
            // Another tick within the same second checks nobody.
            assert_eq!(m.tick(now + 999, Vec::new, |_| -1e9, |_| false), None);
        }
        // Snapshot [1, 2, 3] twice; 2 is banned on each pass, 3 (static) never.
        assert_eq!(snapshots, 2);
        assert_eq!(
            bans,
            vec![
                (
                    1_000,
                    Ban {
                        peer: pid(2),
                        until: 1_000 + 3_600_000,
                        cause: BanCause::ScoreDrift
                    }
                ),
                (
                    4_000,
                    Ban {
                        peer: pid(2),
                        until: 4_000 + 3_600_000,
                        cause: BanCause::ScoreDrift
                    }
                ),
            ]
        );
        let mut off = BanMonitor::new(
            BanConfig {
                enabled: false,
                ..BanConfig::default()
            },
            64,
        );
        assert_eq!(off.next_deadline(), None);
        assert_eq!(off.tick(0, || peers.clone(), |_| -1e9, |_| false), None);
    }

    fn ban(cause: BanCause) -> Ban {
        Ban {
            peer: pid(42),
            until: 7,
            cause,
        }
    }

    #[test]
    fn ip_ban_only_for_invalid_gossip_from_a_known_non_loopback_unexempt_ip() {
        let gossip = ban(BanCause::InvalidGossip(Reason::WrongSigner));
        let public: IpAddr = Ipv4Addr::new(203, 0, 113, 9).into();
        assert_eq!(ip_ban_decision(&gossip, Some(public), false), Some(public));
        // An IPv4-mapped IPv6 address is banned as the IPv4 address the gater checks.
        let mapped: IpAddr = Ipv4Addr::new(203, 0, 113, 9).to_ipv6_mapped().into();
        assert_eq!(ip_ban_decision(&gossip, Some(mapped), false), Some(public));
        assert_eq!(ip_ban_decision(&gossip, None, false), None, "IP unknown");
        assert_eq!(ip_ban_decision(&gossip, Some(public), true), None, "exempt");
        for lo in [
            IpAddr::from(Ipv4Addr::LOCALHOST),
            Ipv4Addr::new(127, 9, 9, 9).into(),
            Ipv6Addr::LOCALHOST.into(),
            Ipv4Addr::LOCALHOST.to_ipv6_mapped().into(),
            Ipv4Addr::UNSPECIFIED.into(),
        ] {
            assert_eq!(ip_ban_decision(&gossip, Some(lo), false), None, "{lo}");
        }
        assert_eq!(
            ip_ban_decision(&ban(BanCause::ScoreDrift), Some(public), false),
            None,
            "drift bans the peer id only"
        );
        assert_eq!(gossip.cause.as_str(), "invalid_gossip");
        assert_eq!(BanCause::ScoreDrift.as_str(), "score_drift");
    }
}
