//! Read access to the node's internal tables, and the check that each stays within its bound,
//! for tests, the simulator and the fuzzers. Compiled only under `cfg(test)` or the
//! `test-util` feature: production code reads the node through [`Node::stats`] (metrics),
//! [`Node::config`] and [`Node::export_state`], and never depends on how the tables are kept.

use super::Node;
use crate::discovery::DiscoveryTable;
use crate::gossip::topic::BlockVersion;
use crate::gossip::validate::Validator;
use crate::peers::book::PeerBook;
use crate::peers::gater::Gater;
use crate::peers::scoring::AppScores;
use crate::peers::tides::ConnManager;

impl Node {
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

    /// Pending `connectPeer` calls and throttled requests, for bound checks.
    pub fn pending_counts(&self) -> (usize, usize) {
        (
            self.pending_connects.values().map(Vec::len).sum(),
            self.throttled.len(),
        )
    }

    /// Checks that every map the node holds is within its documented bound; returns the first
    /// one that is not. Cheap enough to run after every input in tests and fuzzers.
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
}
