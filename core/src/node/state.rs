//! The node's persistent state as plain data: permanent blocks and timed bans, the peer book,
//! and the discovery table. The runtime writes it atomically whenever [`super::Action::PersistState`]
//! comes out, and at shutdown; a restarted node restores it before anything else.

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
            gater: self.gater.export(self.clock),
            peers: self.book.export(),
            discovery: self
                .discovery
                .as_ref()
                .map(|t| t.export())
                .unwrap_or_default(),
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
            report.discovery = r.imported;
            report.discovery_skipped =
                r.crowded_out + r.invalid + r.refused + r.expired + r.over_limit;
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
