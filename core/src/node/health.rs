//! The node's health: [`Node::health`], a pure read of what the node knows, as a status and
//! the reasons behind it. Each reason has a stable [`HealthCode`], a message that says the fix
//! in words, and when it began. The reasons:
//!
//! | code | when |
//! |---|---|
//! | `no_recent_blocks` | peers are connected but no block was accepted (or published by us) for [`NO_BLOCK_BLOCK_TIMES`] block times |
//! | `low_peer_count` | fewer connected peers than the low-water mark (`p2p.peers.lo`) for [`LOW_PEERS_MS`] |
//! | `stale_signer` | blocks signed by one other address keep arriving and are spared ([`crate::gossip::stale_view`]) |
//! | `clock_offset` | most peers' correctly signed blocks fall outside our timestamp window |
//! | `fork_rules` | correctly signed blocks fail a rule that depends on our fork times |
//! | `signer_source_failing` | the runtime's signer source (L1) reports failures ([`Input::SignerSource`](super::Input::SignerSource)) |
//! | `discovery_empty` | discovery is on but its table has been empty for [`DISCOVERY_EMPTY_MS`] |
//!
//! Any reason makes the status `degraded`; none, `ok`. The node logs a warning when a reason
//! starts (checked on each housekeeping round, about once a second).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Node, SignerSourceStatus, UnixMillis};
use crate::gossip::stale_view::StaleCause;
use crate::gossip::validate::Reason;

/// `no_recent_blocks` fires after this many block times without an accepted block.
pub const NO_BLOCK_BLOCK_TIMES: u64 = 10;
/// `low_peer_count` fires after this long below the low-water mark.
pub const LOW_PEERS_MS: u64 = 5 * 60 * 1000;
/// `discovery_empty` fires after this long with an empty table.
pub const DISCOVERY_EMPTY_MS: u64 = 60 * 1000;
/// Longest signer-source error text carried into a health message.
const MAX_ERROR_CHARS: usize = 200;

/// Overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Nothing wrong that the node can see.
    Ok,
    /// Running, but at least one reason says it is not doing its job fully.
    Degraded,
}

/// A stable reason code (metric label and JSON `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCode {
    /// No accepted block for a while although peers are connected.
    NoRecentBlocks,
    /// Below the low-water mark for a while.
    LowPeerCount,
    /// Our unsafe signer may be outdated.
    StaleSigner,
    /// Our clock may be off.
    ClockOffset,
    /// Our fork schedule may be outdated.
    ForkRules,
    /// The signer source (L1) is failing.
    SignerSourceFailing,
    /// The discovery table is empty.
    DiscoveryEmpty,
}

impl HealthCode {
    /// Every code, for bounded metric labels.
    pub const ALL: [HealthCode; 7] = [
        HealthCode::NoRecentBlocks,
        HealthCode::LowPeerCount,
        HealthCode::StaleSigner,
        HealthCode::ClockOffset,
        HealthCode::ForkRules,
        HealthCode::SignerSourceFailing,
        HealthCode::DiscoveryEmpty,
    ];

    /// The stable snake_case code.
    pub const fn as_str(self) -> &'static str {
        match self {
            HealthCode::NoRecentBlocks => "no_recent_blocks",
            HealthCode::LowPeerCount => "low_peer_count",
            HealthCode::StaleSigner => "stale_signer",
            HealthCode::ClockOffset => "clock_offset",
            HealthCode::ForkRules => "fork_rules",
            HealthCode::SignerSourceFailing => "signer_source_failing",
            HealthCode::DiscoveryEmpty => "discovery_empty",
        }
    }
}

/// One reason the node is degraded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReason {
    /// Stable code.
    pub code: HealthCode,
    /// What is wrong and what fixes it, in words.
    pub message: String,
    /// When it began (node time, Unix ms).
    pub since_ms: UnixMillis,
}

/// The node's health: `{"status":"ok"|"degraded","reasons":[...]}` in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` without reasons, `degraded` with any.
    pub status: HealthStatus,
    /// The reasons, in [`HealthCode`] order.
    pub reasons: Vec<HealthReason>,
}

impl Health {
    /// Whether `code` is among the reasons.
    pub fn has(&self, code: HealthCode) -> bool {
        self.reasons.iter().any(|r| r.code == code)
    }
}

/// What the health report remembers between inputs.
#[derive(Debug, Clone, Default)]
pub(super) struct HealthState {
    /// The node's first housekeeping round.
    started: Option<UnixMillis>,
    /// The last accepted (or published) block.
    last_accepted: Option<UnixMillis>,
    /// Since when at least one peer has been connected, continuously.
    peers_since: Option<UnixMillis>,
    /// Since when we have been below the low-water mark, continuously.
    below_lo_since: Option<UnixMillis>,
    /// Since when the discovery table has been empty, continuously.
    discovery_empty_since: Option<UnixMillis>,
    /// Codes active at the last round (for the warning when one starts).
    active: BTreeSet<HealthCode>,
}

impl HealthState {
    pub(super) fn on_gossip(&mut self, now: UnixMillis, reason: Reason) {
        if reason == Reason::Accepted {
            self.last_accepted = Some(now);
        }
    }

    /// A block we published ourselves counts as block activity (a sequencer receives none).
    pub(super) fn on_published(&mut self, now: UnixMillis) {
        self.last_accepted = Some(now);
    }
}

impl Node {
    /// Updates what the health report tracks over time and warns about reasons that started.
    /// Runs on each housekeeping round.
    pub(super) fn health_tick(&mut self, now: UnixMillis) {
        let connected = self.gater.connected_count();
        let h = &mut self.health;
        h.started.get_or_insert(now);
        if connected > 0 {
            h.peers_since.get_or_insert(now);
        } else {
            h.peers_since = None;
        }
        if connected < self.config.conn.low {
            h.below_lo_since.get_or_insert(now);
        } else {
            h.below_lo_since = None;
        }
        match &self.discovery {
            Some(t) if t.iter().next().is_none() => {
                h.discovery_empty_since.get_or_insert(now);
            }
            _ => h.discovery_empty_since = None,
        }
        let report = self.health(now);
        let now_active: BTreeSet<HealthCode> = report.reasons.iter().map(|r| r.code).collect();
        for r in &report.reasons {
            if !self.health.active.contains(&r.code) {
                tracing::warn!(code = r.code.as_str(), "node degraded: {}", r.message);
            }
        }
        for gone in self.health.active.difference(&now_active) {
            tracing::info!(code = gone.as_str(), "health reason cleared");
        }
        self.health.active = now_active;
    }

    /// The node's health at `now` (see the module docs). Pure: reads what the node tracked.
    pub fn health(&self, now: UnixMillis) -> Health {
        let now = now.max(self.clock);
        let h = &self.health;
        let bt = self.config.block_time_secs.max(1) * 1000;
        let mut reasons = Vec::new();
        let connected = self.gater.connected_count();
        if let Some(peers_since) = h.peers_since {
            let quiet_from = h
                .last_accepted
                .unwrap_or(0)
                .max(peers_since)
                .max(h.started.unwrap_or(0));
            let since = quiet_from.saturating_add(NO_BLOCK_BLOCK_TIMES * bt);
            if connected > 0 && now >= since {
                reasons.push(HealthReason {
                    code: HealthCode::NoRecentBlocks,
                    message: format!(
                        "no block accepted for {} s although {connected} peer(s) are connected: \
                         check the other reasons (signer, clock), that the sequencer is \
                         publishing, and that our peers are on this chain",
                        now.saturating_sub(quiet_from) / 1000
                    ),
                    since_ms: since,
                });
            }
        }
        if let Some(below) = h.below_lo_since {
            let since = below.saturating_add(LOW_PEERS_MS);
            if now >= since {
                reasons.push(HealthReason {
                    code: HealthCode::LowPeerCount,
                    message: format!(
                        "{connected} connected peer(s), below the low-water mark of {} for over \
                         5 min: check bootnodes or static peers, the listen address and \
                         firewall, and discovery",
                        self.config.conn.low
                    ),
                    since_ms: since,
                });
            }
        }
        for s in self.stale.suspicions(now) {
            let (code, message) = match s.cause {
                StaleCause::Signer => (
                    HealthCode::StaleSigner,
                    format!(
                        "blocks signed by {} (not our unsafe signer) keep arriving from peers: \
                         our unsafe signer is probably outdated; set --p2p.unsafe-signer (or \
                         the L1 SystemConfig source) to the chain's current signer and restart",
                        s.address.map(|a| a.to_string()).unwrap_or_default()
                    ),
                ),
                StaleCause::Clock => (
                    HealthCode::ClockOffset,
                    format!(
                        "most peers' correctly signed blocks are outside our timestamp window \
                         (blocks are {} ms off our clock): fix the system clock (NTP)",
                        s.offset_ms.unwrap_or(0)
                    ),
                ),
                StaleCause::Fork => (
                    HealthCode::ForkRules,
                    "correctly signed blocks fail a rule that depends on our fork times: the \
                     fork schedule (network preset or fork flags) is probably outdated; update it"
                        .to_string(),
                ),
            };
            reasons.push(HealthReason {
                code,
                message,
                since_ms: s.since,
            });
        }
        if let Some(SignerSourceStatus::Failing { since, error }) = &self.signer_source {
            let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
            reasons.push(HealthReason {
                code: HealthCode::SignerSourceFailing,
                message: format!(
                    "reading the unsafe signer from L1 fails ({error}); the last known signer \
                     stays in use: check the L1 RPC endpoint and the SystemConfig address"
                ),
                since_ms: *since,
            });
        }
        if let Some(empty) = h.discovery_empty_since {
            let since = empty.saturating_add(DISCOVERY_EMPTY_MS);
            if now >= since {
                reasons.push(HealthReason {
                    code: HealthCode::DiscoveryEmpty,
                    message: "discovery is on but its table has been empty for over a minute: \
                              check the bootnodes and that UDP reaches the discovery port"
                        .to_string(),
                    since_ms: since,
                });
            }
        }
        reasons.sort_by_key(|r| r.code);
        Health {
            status: if reasons.is_empty() {
                HealthStatus::Ok
            } else {
                HealthStatus::Degraded
            },
            reasons,
        }
    }
}

#[cfg(test)]
mod tests;
