//! Connections, dials, discovery and bans: the node's peer side.

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use std::net::IpAddr;

use super::{Action, Node, PendingConnect, UnixMillis};
use crate::admin::AdminError;
use crate::discovery::{Enr, Insert};
use crate::peers::book::{Direction, PeerBook};
use crate::peers::gater::{AddrOrigin, Decision};
use crate::peers::score_ban::{Ban, BanCause, ban_decision, ip_ban_decision};
use crate::peers::scoring::AppScores;
use crate::peers::tides::{Admission, PeerView};

/// The node's view for the connection manager.
struct View<'a> {
    book: &'a PeerBook,
    gater: &'a crate::peers::gater::Gater,
    scores: &'a AppScores,
    now: UnixMillis,
}

impl PeerView for View<'_> {
    fn dial_candidates(&self) -> Vec<PeerId> {
        self.book.dial_candidates()
    }
    fn static_peers(&self) -> Vec<PeerId> {
        self.book
            .iter()
            .filter(|(_, r)| r.is_static)
            .map(|(p, _)| *p)
            .collect()
    }
    fn is_static(&self, peer: &PeerId) -> bool {
        self.book.get(peer).is_some_and(|r| r.is_static)
    }
    fn is_protected(&self, peer: &PeerId) -> bool {
        self.book.get(peer).is_some_and(|r| r.protected)
    }
    fn score(&self, peer: &PeerId) -> f64 {
        total_score(self.book, self.scores, peer)
    }
    fn is_allowed(&self, peer: &PeerId) -> bool {
        self.gater.peer_ban(self.now, peer).is_none() && !self.gater.is_peer_blocked(peer)
    }
}

/// A peer's total score: gossipsub's score without the application part (the runtime's last
/// snapshot, 0 if none) plus our current application score.
pub(super) fn total_score(book: &PeerBook, scores: &AppScores, peer: &PeerId) -> f64 {
    book.get(peer).map_or(0.0, |r| r.scores.total) + scores.score(peer)
}

impl Node {
    /// Gate: may we dial `peer` at `addr`? Answered inside libp2p's dial hook, for every
    /// address of a dial. Blocks and bans apply to every address; the address policy
    /// (`--p2p.netrestrict`, or public addresses only: [`crate::peers::netpolicy`]) to those
    /// learned from the network, not to the operator's ([`Node::addr_origin`]).
    pub fn allow_dial(&mut self, now: UnixMillis, peer: &PeerId, addr: Option<&Multiaddr>) -> bool {
        if *peer == self.config.local_peer_id {
            return false;
        }
        let ip = addr.and_then(Node::ip_of);
        let origin = addr.map_or(AddrOrigin::Network, |a| self.addr_origin(peer, a));
        matches!(
            self.gater.allow_dial(now.max(self.clock), peer, ip, origin),
            Decision::Allow
        )
    }

    /// Where `addr`, an address of a dial to `peer`, came from: the operator's if it is one of
    /// the static peer's configured addresses or the address of a waiting
    /// `opp2p_connectPeer` call; learned from the network otherwise (then the address policy
    /// applies). ⚠ The exemption lasts while the call waits: once it is answered, a redial of
    /// that address (it stays in the peer book) is a learned one; a peer on a private network
    /// belongs in `--p2p.static` or `--p2p.netrestrict`.
    pub fn addr_origin(&self, peer: &PeerId, addr: &Multiaddr) -> AddrOrigin {
        let configured = self
            .config
            .static_peers
            .iter()
            .any(|(p, addrs)| p == peer && addrs.contains(addr));
        let requested = self
            .pending_connects
            .get(peer)
            .is_some_and(|w| w.iter().any(|c| c.addr.as_ref() == Some(addr)));
        if configured || requested {
            AddrOrigin::Operator
        } else {
            AddrOrigin::Network
        }
    }

    /// Whether the node may put `addr` in a dial to `peer` as far as the address policy goes
    /// (blocks and bans are the dial hook's): an operator's address always, a learned one if
    /// it has an IP the policy allows (an address without one cannot be checked, and the
    /// transport dials only IP addresses anyway). Not counted.
    pub(super) fn may_dial_addr(&self, peer: &PeerId, addr: &Multiaddr) -> bool {
        match self.addr_origin(peer, addr) {
            AddrOrigin::Operator => true,
            AddrOrigin::Network => self.learned_addr_allowed(addr),
        }
    }

    /// Whether an address learned from the network passes the address policy.
    pub(super) fn learned_addr_allowed(&self, addr: &Multiaddr) -> bool {
        Node::ip_of(addr).is_some_and(|ip| self.gater.addr_rules(ip).is_none())
    }

    /// Gate: may an inbound connection from `ip` proceed to the handshake? Answered inside
    /// libp2p's accept hook, before anything is known of the peer.
    pub fn allow_inbound(&mut self, now: UnixMillis, ip: IpAddr) -> bool {
        matches!(
            self.gater.allow_accept(now.max(self.clock), ip),
            Decision::Allow
        )
    }

    /// Gate: may this established connection stay? Answered inside libp2p's
    /// established-connection hook, in both directions: blocks, bans and the per-IP and
    /// per-subnet caps all apply (static and protected peers skip the caps only).
    pub fn allow_established(
        &mut self,
        now: UnixMillis,
        peer: &PeerId,
        addr: &Multiaddr,
        direction: Direction,
    ) -> bool {
        if *peer == self.config.local_peer_id {
            return false;
        }
        let protected = self
            .book
            .get(peer)
            .is_some_and(|r| r.is_static || r.protected);
        let ip = Node::ip_of(addr);
        matches!(
            self.gater
                .allow_established(now.max(self.clock), peer, ip, direction, protected),
            Decision::Allow
        )
    }

    pub(super) fn on_connection_established(
        &mut self,
        now: UnixMillis,
        peer: PeerId,
        addr: Multiaddr,
        direction: Direction,
    ) {
        let ip = Node::ip_of(&addr);
        if direction == Direction::Outbound {
            self.conn.on_dial_succeeded(now, &peer);
        }
        let admitted = self.conn.on_connected(now, peer) == Admission::Tracked
            && self.gater.on_connected(peer, ip, direction).is_ok()
            && self.book.on_connected(now, peer, direction, ip).is_ok();
        if !admitted {
            tracing::debug!(%peer, "connection over the tracked-peer bound; closing");
            self.disconnect(now, peer, super::DisconnectReason::OverCapacity);
            return;
        }
        if direction == Direction::Outbound {
            // We reached it at this address: remember it (inbound addresses are ephemeral ports).
            let _ = self.book.add_addrs(now, peer, [addr]);
        }
        // `opp2p_connectPeer` callers are answered on identify (`on_identified`), as
        // go-libp2p's `Host.Connect` waits for identify: a connection the remote closes at
        // once (its gater refusing us after the handshake) is then an error, not a success.
    }

    pub(super) fn on_connection_closed(&mut self, now: UnixMillis, peer: PeerId) {
        self.app_scores_sent.remove(&peer);
        self.conn.on_disconnected(now, &peer);
        self.gater.on_disconnected(&peer);
        self.book.on_disconnected(now, &peer);
        if let Some(waiters) = self.pending_connects.remove(&peer) {
            for PendingConnect { id, .. } in waiters {
                self.actions.push_back(Action::AdminResponse {
                    id,
                    result: Err(AdminError::ConnectFailed(
                        "connection closed before identify".into(),
                    )),
                });
            }
        }
    }

    pub(super) fn on_dial_failed(&mut self, now: UnixMillis, peer: PeerId, error: String) {
        self.conn.on_dial_failed(now, peer);
        self.book.on_dial_failed(now, &peer);
        if let Some(waiters) = self.pending_connects.remove(&peer) {
            for PendingConnect { id, .. } in waiters {
                self.actions.push_back(Action::AdminResponse {
                    id,
                    result: Err(AdminError::ConnectFailed(error.clone())),
                });
            }
        }
    }

    pub(super) fn on_identified(
        &mut self,
        now: UnixMillis,
        peer: PeerId,
        agent: &str,
        protocol_version: &str,
        protocols: &[String],
        listen_addrs: Vec<Multiaddr>,
    ) {
        let _ = self.book.set_identify(
            now,
            &peer,
            agent,
            protocol_version,
            protocols.iter().map(String::as_str),
        );
        // A peer can list any address: only those the address policy lets us dial are kept
        // (netrestrict, or public addresses only), so it cannot point our dials into the
        // operator's network. The book bounds the rest.
        let allowed: Vec<Multiaddr> = listen_addrs
            .into_iter()
            .filter(|a| self.learned_addr_allowed(a))
            .collect();
        let _ = self.book.add_addrs(now, peer, allowed);
        if let Some(waiters) = self.pending_connects.remove(&peer) {
            for PendingConnect { id, .. } in waiters {
                self.actions.push_back(Action::AdminResponse {
                    id,
                    result: Ok(crate::admin::AdminResponse::Null),
                });
            }
        }
    }

    pub(super) fn on_discovered(&mut self, now: UnixMillis, enr: Enr) {
        if self.discovery.is_none() {
            return;
        }
        let text = enr.to_base64();
        let candidate = crate::discovery::accept_enr(&enr, self.chain_id).map(|mut c| {
            // The record's addresses are the sender's word: keep those the address policy
            // lets us dial (netrestrict, or public addresses only).
            c.addrs.retain(|a| self.learned_addr_allowed(a));
            c
        });
        if candidate.as_ref().is_ok_and(|c| c.addrs.is_empty()) {
            // Nothing we would dial: neither the table (and so the saved state) nor the book
            // keeps it.
            self.stats.count_discovery(false);
            tracing::trace!("discovered record has no address the address policy allows");
            return;
        }
        let Some(table) = &mut self.discovery else {
            return;
        };
        match table.insert(now, enr) {
            Ok(insert) => {
                self.stats.count_discovery(true);
                if matches!(insert, Insert::New { .. } | Insert::Updated) {
                    // Anyone on discv5 can hand us new records: written on the slow schedule.
                    self.persist_pending.learned = true;
                }
                if let Ok(c) = candidate
                    && c.peer_id != self.config.local_peer_id
                    && !matches!(insert, Insert::Stale | Insert::Crowded)
                {
                    // A peer its subnet's quota refuses gets no record at all (the ENR alone
                    // would create one).
                    if self.book.add_addrs(now, c.peer_id, c.addrs).is_ok() {
                        let _ = self.book.set_enr(
                            now,
                            c.peer_id,
                            &text,
                            c.node_id.raw(),
                            self.chain_id,
                        );
                    }
                }
            }
            Err(refusal) => {
                self.stats.count_discovery(false);
                tracing::trace!(reason = refusal.as_str(), "discovered record refused");
            }
        }
    }

    pub(super) fn disconnect(
        &mut self,
        _now: UnixMillis,
        peer: PeerId,
        reason: super::DisconnectReason,
    ) {
        self.actions.push_back(Action::Disconnect { peer, reason });
    }

    /// Dial rounds, trims, score decay and the ban check.
    pub(super) fn peering_tick(&mut self, now: UnixMillis) {
        let view = View {
            book: &self.book,
            gater: &self.gater,
            scores: &self.scores,
            now,
        };
        let out = self.conn.tick(now, &mut self.rng, &view);
        for dial in out.dials {
            // Only addresses the address policy allows (a static peer's configured ones
            // always): the book may hold older ones, from a saved state or a policy change.
            let addrs: Vec<Multiaddr> = self
                .book
                .get(&dial.peer)
                .map(|r| r.addrs.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|a| self.may_dial_addr(&dial.peer, a))
                .collect();
            let allowed = !addrs.is_empty() && self.allow_dial(now, &dial.peer, addrs.first());
            if allowed {
                self.stats.count_dial();
                self.actions.push_back(Action::Dial {
                    peer: dial.peer,
                    addrs,
                });
            } else {
                self.conn.on_dial_failed(now, dial.peer);
            }
        }
        for peer in out.trims {
            self.disconnect(now, peer, super::DisconnectReason::Trim);
        }
        let conn = &self.conn;
        // Scores change between inputs only by a decay step (at most once per slot); verdicts
        // and req/resp results send their own update. Re-syncing every peer on every input
        // made each gossip message cost O(scored peers) under a flood from many sources.
        let decay_due = self.scores.next_decay().is_none_or(|t| now >= t);
        self.scores.decay(now, |p| conn.is_connected(p));
        if decay_due {
            // Keep gossipsub's copy of the application score in step with the decay (and with
            // entries `expire` dropped).
            let sent: Vec<PeerId> = self.app_scores_sent.keys().copied().collect();
            for peer in sent {
                self.send_app_score(peer);
            }
        }
        let book = &self.book;
        let scores = &self.scores;
        let connected = || {
            book.iter()
                .filter(|(_, r)| r.connectedness.is_connected())
                .map(|(p, _)| *p)
                .collect()
        };
        let ban = self.bans.tick(
            now,
            connected,
            |p| total_score(book, scores, p),
            |p| book.get(p).is_some_and(|r| r.is_static),
        );
        if let Some(ban) = ban {
            self.apply_ban(now, ban);
        }
    }

    /// The at-once path of the ban rule (see [`crate::peers::score_ban`]): called right after a
    /// REJECT (for `reason`) lowered `peer`'s application score. Bans and disconnects the peer
    /// when its total is now at or below the threshold.
    pub(super) fn ban_on_invalid_gossip(
        &mut self,
        now: UnixMillis,
        peer: PeerId,
        reason: crate::gossip::validate::Reason,
    ) {
        let is_static = self.book.get(&peer).is_some_and(|r| r.is_static);
        let score = total_score(&self.book, &self.scores, &peer);
        if let Some(ban) = ban_decision(
            self.bans.config(),
            now,
            peer,
            score,
            is_static,
            BanCause::InvalidGossip(reason),
        ) {
            self.apply_ban(now, ban);
        }
    }

    /// Carries out a score ban from either path: the timed ban in the gater, counted by cause,
    /// and the peer's disconnect; for a ban on invalid gossip, the IP ban ([`ip_ban_decision`])
    /// and the disconnect of the other peers on that IP.
    ///
    /// A peer whose ban is already live is left alone: messages it sent before the disconnect
    /// took effect still arrive and are REJECTed, and the monitor's snapshot may still hold it;
    /// each would otherwise count (and extend) the same ban again.
    fn apply_ban(&mut self, now: UnixMillis, ban: Ban) {
        if self.gater.peer_ban(now, &ban.peer).is_some() {
            return;
        }
        let reason = match ban.cause {
            BanCause::InvalidGossip(r) => Some(r.as_str()),
            BanCause::ScoreDrift => None,
        };
        tracing::info!(
            peer = %ban.peer,
            until = ban.until,
            cause = ban.cause.as_str(),
            reason,
            "banning peer for low score"
        );
        match self.gater.ban_peer(ban.peer, ban.until) {
            Ok(()) => {
                self.stats.count_ban(ban.cause);
                self.record_ban(super::BanRecord {
                    kind: super::BanKind::Peer(ban.peer),
                    source: super::BanSource::Score(ban.cause),
                    since: now,
                    until: ban.until,
                });
                self.persist_pending.gater = true;
            }
            Err(e) => tracing::warn!(peer = %ban.peer, error = %e, "ban list full"),
        }
        self.disconnect(now, ban.peer, super::DisconnectReason::Banned);
        let ip = self.gater.connected_ip(&ban.peer);
        let trusted = |p: &PeerId| self.book.get(p).is_some_and(|r| r.is_static || r.protected);
        let exempt = trusted(&ban.peer)
            || ip.is_some_and(|ip| self.gater.connected_on_ip(ip).iter().any(trusted));
        let Some(ip) = ip_ban_decision(&ban, ip, exempt) else {
            return;
        };
        if let Err(e) = self.gater.ban_ip(ip, ban.until) {
            tracing::warn!(%ip, error = %e, "IP ban list full");
            return;
        }
        tracing::info!(%ip, until = ban.until, peer = %ban.peer, "banning the IP of a peer banned for invalid gossip");
        self.stats.count_ip_ban();
        self.record_ban(super::BanRecord {
            kind: super::BanKind::Ip(ip),
            source: super::BanSource::IpOfPeer {
                peer: ban.peer,
                cause: ban.cause,
            },
            since: now,
            until: ban.until,
        });
        self.persist_pending.gater = true;
        // As op-node's `BanIP`: the other peers on that IP go too (none is static or protected).
        for other in self.gater.connected_on_ip(ip) {
            if other != ban.peer {
                self.disconnect(now, other, super::DisconnectReason::Gated);
            }
        }
    }
}
