//! The node's persistent state as plain data: permanent blocks and timed bans, the peer book,
//! and the discovery table. Whenever [`super::Action::PersistState`] comes out, its
//! [`StateChanges`] say which parts changed; the runtime writes the due parts atomically
//! ([`Node::export_parts`]) and everything at shutdown ([`Node::export_state`]). A restarted
//! node restores it before anything else.

use serde::{Deserialize, Serialize};

use super::{Node, UnixMillis};
use crate::discovery::PersistedEnr;
use crate::peers::book::{PeerBookError, PeerBookSnapshot};
use crate::peers::gater::{GaterError, GaterSnapshot};

/// Version of [`NodeState`]'s layout.
pub const STATE_VERSION: u32 = 1;

/// Everything a node keeps across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    /// Layout version, [`STATE_VERSION`].
    pub version: u32,
    /// Permanent blocks and live timed bans.
    pub gater: GaterSnapshot,
    /// The peer book.
    pub peers: PeerBookSnapshot,
    /// The discovery table (empty when discovery is off).
    #[serde(default)]
    pub discovery: Vec<PersistedEnr>,
}

/// Which parts of the persisted state changed, carried by
/// [`Action::PersistState`](super::Action::PersistState), and so when they are due.
///
/// The split is by who can cause the change, because that decides how often a runtime may
/// write it:
/// - `gater` and `peers` are changes a write must not lose: blocks and bans (the admin API and
///   the score-ban policy, at most one policy ban a second) and the operator's peer-book
///   changes (`protectPeer`, `unprotectPeer`, `disconnectPeer`). Write them promptly.
/// - `learned` is what the network told us: records found by discovery (the discovery table,
///   and the addresses and ENRs they put in the peer book) and their expiry. Any discv5 node
///   can hand us new records at will, so writing these on every change would let it keep the
///   node serialising, hashing and fsyncing; write them on a slow schedule instead (the
///   op-p2p runtime: every 5 minutes at most, and at shutdown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// Permanent blocks or timed bans changed (`bans.json`).
    pub gater: bool,
    /// The operator changed the peer book (`peers.json`).
    pub peers: bool,
    /// Discovered records changed (`discovery.json`, and `peers.json` for what they added to
    /// the peer book).
    pub learned: bool,
}

impl StateChanges {
    /// Every part: what a runtime writes at shutdown.
    pub const ALL: Self = Self {
        gater: true,
        peers: true,
        learned: true,
    };

    /// Nothing changed.
    pub const fn is_empty(self) -> bool {
        !(self.gater || self.peers || self.learned)
    }
}

impl std::ops::BitOr for StateChanges {
    type Output = Self;
    fn bitor(self, other: Self) -> Self {
        Self {
            gater: self.gater || other.gater,
            peers: self.peers || other.peers,
            learned: self.learned || other.learned,
        }
    }
}

impl std::ops::BitOrAssign for StateChanges {
    fn bitor_assign(&mut self, other: Self) {
        *self = *self | other;
    }
}

/// Some parts of [`NodeState`], for a runtime that writes each part to its own file: a part
/// that is `None` was not exported and is left as it is on disk. Two updates merge with
/// [`StateUpdate::merge`], the newer part winning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateUpdate {
    /// Layout version, [`STATE_VERSION`].
    pub version: u32,
    /// Permanent blocks and live timed bans, if exported.
    pub gater: Option<GaterSnapshot>,
    /// The peer book, if exported.
    pub peers: Option<PeerBookSnapshot>,
    /// The discovery table, if exported.
    pub discovery: Option<Vec<PersistedEnr>>,
}

impl StateUpdate {
    /// Takes every part `newer` holds, keeping this update's other parts: a writer that is
    /// still busy merges the updates queued meanwhile, so no part due earlier is dropped.
    pub fn merge(&mut self, newer: StateUpdate) {
        self.version = newer.version;
        if newer.gater.is_some() {
            self.gater = newer.gater;
        }
        if newer.peers.is_some() {
            self.peers = newer.peers;
        }
        if newer.discovery.is_some() {
            self.discovery = newer.discovery;
        }
    }

    /// Whether no part is held.
    pub fn is_empty(&self) -> bool {
        self.gater.is_none() && self.peers.is_none() && self.discovery.is_none()
    }
}

impl From<NodeState> for StateUpdate {
    fn from(s: NodeState) -> Self {
        Self {
            version: s.version,
            gater: Some(s.gater),
            peers: Some(s.peers),
            discovery: Some(s.discovery),
        }
    }
}

/// Why a state could not be restored. Nothing is changed when restoring fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Written by another layout version.
    #[error("state version {0} is not {STATE_VERSION}")]
    Version(u32),
    /// The block and ban lists do not fit the configured bounds.
    #[error("gater state: {0}")]
    Gater(#[from] GaterError),
    /// The peer book snapshot is unusable.
    #[error("peer book state: {0}")]
    Peers(#[from] PeerBookError),
}

/// What a restore kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Peers restored into the book.
    pub peers: usize,
    /// Discovery records restored.
    pub discovery: usize,
    /// Discovery records skipped (invalid, refused, expired or over the bound).
    pub discovery_skipped: usize,
    /// Bans that had expired while the node was down.
    pub expired_bans: usize,
}

impl Node {
    /// The state to persist.
    pub fn export_state(&self) -> NodeState {
        NodeState {
            version: STATE_VERSION,
            gater: self.gater_for_disk(),
            peers: self.book.export(),
            discovery: self
                .discovery
                .as_ref()
                .map(|t| t.export())
                .unwrap_or_default(),
        }
    }

    /// The parts of the state `changes` name, as [`StateChanges`] maps them to files: `gater`
    /// exports the blocks and bans, `peers` the peer book, `learned` the discovery table and
    /// the peer book. Exporting only what is due keeps a prompt ban write from serialising the
    /// whole discovery table.
    pub fn export_parts(&self, changes: StateChanges) -> StateUpdate {
        StateUpdate {
            version: STATE_VERSION,
            gater: changes.gater.then(|| self.gater_for_disk()),
            peers: (changes.peers || changes.learned).then(|| self.book.export()),
            discovery: changes.learned.then(|| {
                self.discovery
                    .as_ref()
                    .map(|t| t.export())
                    .unwrap_or_default()
            }),
        }
    }

    /// Restores persisted state at `now`. Every part is validated as it is read (expired bans
    /// and records dropped, bounds enforced); a part that cannot be used leaves the node as it
    /// was and returns an error.
    pub fn restore_state(
        &mut self,
        now: UnixMillis,
        state: NodeState,
    ) -> Result<RestoreReport, StateError> {
        if state.version != STATE_VERSION {
            return Err(StateError::Version(state.version));
        }
        self.clock = self.clock.max(now);
        let now = self.clock;
        // Validate into copies first so a failure changes nothing.
        let mut gater = self.gater.clone();
        let gater_report = gater.import(now, state.gater)?;
        let mut book = self.book.clone();
        let peers = book.import(now, state.peers)?;
        let mut report = RestoreReport {
            peers,
            expired_bans: gater_report.expired_bans_dropped,
            ..Default::default()
        };
        if let Some(table) = &mut self.discovery {
            let r = table.import(now, &state.discovery);
            // A table saved under another address policy (or before there was one) keeps
            // only the records we would dial now.
            let policy = &gater;
            let outside = table.retain(|e| {
                e.candidate
                    .addrs
                    .iter()
                    .any(|a| Node::ip_of(a).is_some_and(|ip| policy.addr_rules(ip).is_none()))
            });
            report.discovery = r.imported.saturating_sub(outside);
            report.discovery_skipped =
                r.crowded_out + r.invalid + r.refused + r.expired + r.over_limit + outside;
        }
        // Static peers are the configuration's, not the saved state's: a peer removed from it
        // stops being static (ban-exempt, cap-exempt, redialled) after a restart.
        book.clear_static();
        for (peer, addrs) in &self.config.static_peers {
            let _ = book.set_static(now, *peer, true);
            let _ = book.add_addrs(now, *peer, addrs.iter().cloned());
        }
        self.gater = gater;
        self.book = book;
        Ok(report)
    }
}
