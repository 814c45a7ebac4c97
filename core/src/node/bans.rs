//! Why each timed ban exists, and what follows from it (issue #13):
//! - every score ban and the IP ban made with it carries a [`BanRecord`]: its cause (the
//!   invalid-gossip reason that crossed the threshold, or score drift), when it began and ends.
//!   The node emits it as [`Action::Banned`](super::Action::Banned) (the runtime's event stream
//!   and log), counts it by cause and reason (metrics), and lists it with
//!   `opp2pext_listBans` next to the operator's permanent blocks;
//! - **bans whose cause may be our own stale view are not persisted**: a score ban whose
//!   reason is one of [`StaleCause::of_reason`] (`wrong_signer`, `too_old`, `too_new`,
//!   `blob_gas_used_before_jovian`) and the IP ban made with it live in memory only. After a
//!   restart with a fixed signer, clock or fork schedule the peer is welcome again. We chose
//!   this over persisting the cause and comparing configurations on restore: it needs no
//!   record of the old configuration and cannot go wrong when the fix is outside our config
//!   (the system clock). The cost: a real spammer banned on such a reason is forgiven by a
//!   restart, and is banned again by its next 17 invalid messages;
//! - `opp2p_unblockPeer` lifts a peer's score ban and the IP ban made with it, and clears the
//!   peer's application-score penalty so it is not banned again at once.
//!
//! Bounded: one record per live ban in the gater, pruned with the gater's bans each
//! housekeeping round.

use std::collections::BTreeMap;
use std::net::IpAddr;

use libp2p_identity::PeerId;

use super::{Node, UnixMillis};
use crate::admin::BanEntry;
use crate::gossip::stale_view::StaleCause;
use crate::peers::gater::GaterSnapshot;
use crate::peers::score_ban::BanCause;

/// What is banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanKind {
    /// A peer id.
    Peer(PeerId),
    /// An IP.
    Ip(IpAddr),
}

/// Why it is banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanSource {
    /// The peer's score reached the ban threshold ([`crate::peers::score_ban`]).
    Score(BanCause),
    /// The IP a peer banned for invalid gossip was connected from.
    IpOfPeer {
        /// The banned peer.
        peer: PeerId,
        /// Its ban's cause.
        cause: BanCause,
    },
}

impl BanSource {
    /// The score ban's cause, for either kind.
    pub fn cause(&self) -> BanCause {
        match self {
            BanSource::Score(c) | BanSource::IpOfPeer { cause: c, .. } => *c,
        }
    }

    /// Stable label: `invalid_gossip`, `score_drift` or `ip_of_banned_peer`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BanSource::Score(c) => c.as_str(),
            BanSource::IpOfPeer { .. } => "ip_of_banned_peer",
        }
    }

    /// The invalid-gossip reason behind it, if any.
    pub fn reason(&self) -> Option<crate::gossip::validate::Reason> {
        match self.cause() {
            BanCause::InvalidGossip(r) => Some(r),
            BanCause::ScoreDrift => None,
        }
    }

    /// Whether our own stale view could have caused it (then it is not persisted).
    pub fn may_be_our_view(&self) -> bool {
        self.reason()
            .is_some_and(|r| StaleCause::of_reason(r).is_some())
    }
}

/// One timed ban with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanRecord {
    /// What.
    pub kind: BanKind,
    /// Why.
    pub source: BanSource,
    /// When it was made (node time, Unix ms).
    pub since: UnixMillis,
    /// When it ends (Unix ms).
    pub until: UnixMillis,
}

impl BanRecord {
    /// Whether it is written to the data dir (see the module docs).
    pub fn persisted(&self) -> bool {
        !self.source.may_be_our_view()
    }

    fn entry(&self) -> BanEntry {
        let (kind, target) = match self.kind {
            BanKind::Peer(p) => ("peer", p.to_base58()),
            BanKind::Ip(ip) => ("ip", ip.to_string()),
        };
        BanEntry {
            kind: kind.into(),
            target,
            cause: self.source.as_str().into(),
            reason: self.source.reason().map(|r| r.as_str().into()),
            peer: match self.source {
                BanSource::IpOfPeer { peer, .. } => Some(peer.to_base58()),
                BanSource::Score(_) => None,
            },
            since_ms: Some(self.since),
            until_ms: Some(self.until),
            persisted: self.persisted(),
        }
    }
}

/// The records of the live score bans and the IP bans made with them.
#[derive(Debug, Clone, Default)]
pub(super) struct BanRecords {
    peers: BTreeMap<PeerId, BanRecord>,
    ips: BTreeMap<IpAddr, BanRecord>,
}

impl BanRecords {
    pub(super) fn insert(&mut self, r: BanRecord) {
        match r.kind {
            BanKind::Peer(p) => {
                self.peers.insert(p, r);
            }
            BanKind::Ip(ip) => {
                self.ips.insert(ip, r);
            }
        }
    }

    pub(super) fn len(&self) -> usize {
        self.peers.len() + self.ips.len()
    }

    /// Drops from a snapshot for disk the bans that may be our own stale view's doing.
    pub(super) fn drop_unpersisted(&self, snapshot: &mut GaterSnapshot) {
        snapshot
            .peer_bans
            .retain(|b| self.peers.get(&b.peer).is_none_or(BanRecord::persisted));
        snapshot
            .ip_bans
            .retain(|b| self.ips.get(&b.ip).is_none_or(BanRecord::persisted));
    }
}

impl Node {
    /// Records a ban made by [`Node::apply_ban`](super::Node) and tells the runtime.
    pub(super) fn record_ban(&mut self, record: BanRecord) {
        self.ban_records.insert(record);
        self.actions.push_back(super::Action::Banned(record));
    }

    /// The gater's blocks and live bans as written to disk: without the bans that may be our
    /// own stale view's doing (see the module docs).
    pub(super) fn gater_for_disk(&self) -> GaterSnapshot {
        let mut g = self.gater.export(self.clock);
        self.ban_records.drop_unpersisted(&mut g);
        g
    }

    /// Drops the records of bans the gater no longer holds (expired or replaced).
    pub(super) fn prune_ban_records(&mut self, now: UnixMillis) {
        let gater = &self.gater;
        self.ban_records
            .peers
            .retain(|p, r| gater.peer_ban(now, p) == Some(r.until));
        self.ban_records
            .ips
            .retain(|ip, r| gater.ip_ban(now, *ip) == Some(r.until));
    }

    /// `opp2p_unblockPeer`'s extra: lifts the peer's score ban, the IP ban made with it, and
    /// (when there was a ban) its application-score penalty. Returns whether a ban was lifted.
    pub(super) fn lift_score_ban(&mut self, peer: &PeerId) -> bool {
        let lifted = self.gater.unban_peer(peer);
        self.ban_records.peers.remove(peer);
        let ips: Vec<IpAddr> = self
            .ban_records
            .ips
            .iter()
            .filter(|(_, r)| matches!(r.source, BanSource::IpOfPeer { peer: p, .. } if p == *peer))
            .map(|(ip, _)| *ip)
            .collect();
        for ip in ips {
            self.gater.unban_ip(ip);
            self.ban_records.ips.remove(&ip);
        }
        if lifted {
            self.scores.remove(peer);
            self.send_app_score(*peer);
            tracing::info!(%peer, "score ban lifted by the operator");
        }
        lifted
    }

    /// `opp2pext_listBans`: permanent blocks (cause `manual`), then the live timed bans with
    /// their records (`restored` when the ban came from the saved state).
    pub(super) fn list_bans(&self, now: UnixMillis) -> Vec<BanEntry> {
        let manual = |kind: &str, target: String| BanEntry {
            kind: kind.into(),
            target,
            cause: "manual".into(),
            reason: None,
            peer: None,
            since_ms: None,
            until_ms: None,
            persisted: true,
        };
        let restored = |kind: &str, target: String, until: u64| BanEntry {
            kind: kind.into(),
            target,
            cause: "restored".into(),
            reason: None,
            peer: None,
            since_ms: None,
            until_ms: Some(until),
            persisted: true,
        };
        let mut out: Vec<BanEntry> = Vec::new();
        out.extend(
            self.gater
                .blocked_peers()
                .into_iter()
                .map(|p| manual("peer", p.to_base58())),
        );
        out.extend(
            self.gater
                .blocked_ips()
                .into_iter()
                .map(|ip| manual("ip", ip.to_string())),
        );
        out.extend(
            self.gater
                .blocked_subnets()
                .into_iter()
                .map(|n| manual("subnet", n.to_string())),
        );
        let live = self.gater.export(now);
        for b in live.peer_bans {
            out.push(match self.ban_records.peers.get(&b.peer) {
                Some(r) if r.until == b.until_ms => r.entry(),
                _ => restored("peer", b.peer.to_base58(), b.until_ms),
            });
        }
        for b in live.ip_bans {
            out.push(match self.ban_records.ips.get(&b.ip) {
                Some(r) if r.until == b.until_ms => r.entry(),
                _ => restored("ip", b.ip.to_string(), b.until_ms),
            });
        }
        out
    }
}
