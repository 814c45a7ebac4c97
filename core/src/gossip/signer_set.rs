//! The unsafe block signer, with rotation grace (spec §4).
//!
//! The signer is an input the embedder updates whenever L1's SystemConfig changes it. When it
//! changes, the previous signer stays valid for a grace window (3 h by default, as op-node),
//! which ends early at the first block accepted from the new signer. Without this, a node
//! refuses every block between the L1 update and the sequencer's switch.

use alloy_primitives::Address;

/// Default rotation grace: 3 hours, in milliseconds.
pub const DEFAULT_ROTATION_GRACE_MS: u64 = 3 * 60 * 60 * 1000;

/// Which configured signer a recovered address matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerMatch {
    /// The current signer.
    Current,
    /// The previous signer, inside its grace window.
    Previous,
}

/// Current and (during a rotation) previous unsafe block signer.
#[derive(Debug, Clone)]
pub struct SignerState {
    current: Address,
    /// Previous signer and the time (ms) its grace ends.
    previous: Option<(Address, u64)>,
    grace_ms: u64,
}

impl SignerState {
    /// Starts with `signer` (the zero address means "not configured").
    pub fn new(signer: Address, grace_ms: u64) -> Self {
        Self {
            current: signer,
            previous: None,
            grace_ms,
        }
    }

    /// The current signer.
    pub fn current(&self) -> Address {
        self.current
    }

    /// The previous signer and the end of its grace (ms), while one is in grace.
    pub fn previous(&self) -> Option<(Address, u64)> {
        self.previous
    }

    /// Whether no signer can currently be matched (rule 3: IGNORE everything).
    pub fn is_unconfigured(&self, now_ms: u64) -> bool {
        self.current.is_zero()
            && !self
                .previous
                .is_some_and(|(a, end)| !a.is_zero() && now_ms < end)
    }

    /// Sets a new signer at `now_ms`. The old one (if any, and different) enters its grace.
    pub fn set(&mut self, signer: Address, now_ms: u64) {
        if signer == self.current {
            return;
        }
        let old = std::mem::replace(&mut self.current, signer);
        self.previous = if old.is_zero() || self.grace_ms == 0 {
            None
        } else {
            Some((old, now_ms.saturating_add(self.grace_ms)))
        };
    }

    /// Which signer `recovered` is, if any is valid at `now_ms`.
    pub fn matches(&self, recovered: Address, now_ms: u64) -> Option<SignerMatch> {
        if !self.current.is_zero() && recovered == self.current {
            return Some(SignerMatch::Current);
        }
        match self.previous {
            Some((prev, end)) if recovered == prev && now_ms < end => Some(SignerMatch::Previous),
            _ => None,
        }
    }

    /// Called when a block signed by the current signer is accepted: the grace ends now.
    pub fn on_accepted_from_current(&mut self) {
        self.previous = None;
    }

    /// Drops the previous signer once its grace has passed; returns when it next expires.
    pub fn expire(&mut self, now_ms: u64) -> Option<u64> {
        match self.previous {
            Some((_, end)) if now_ms >= end => {
                self.previous = None;
                None
            }
            Some((_, end)) => Some(end),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Address = Address::repeat_byte(0xaa);
    const B: Address = Address::repeat_byte(0xbb);

    #[test]
    fn previous_signer_valid_inside_grace_only() {
        let mut s = SignerState::new(A, 1000);
        assert_eq!(s.matches(A, 0), Some(SignerMatch::Current));
        s.set(B, 5_000);
        assert_eq!(s.matches(B, 5_000), Some(SignerMatch::Current));
        assert_eq!(s.matches(A, 5_999), Some(SignerMatch::Previous));
        assert_eq!(s.matches(A, 6_000), None, "grace ends at set time + grace");
        assert_eq!(s.expire(5_500), Some(6_000));
        assert_eq!(s.expire(6_000), None);
        assert_eq!(s.previous(), None);
    }

    #[test]
    fn grace_ends_early_on_first_block_from_new_signer() {
        let mut s = SignerState::new(A, 1000);
        s.set(B, 0);
        assert_eq!(s.matches(A, 10), Some(SignerMatch::Previous));
        s.on_accepted_from_current();
        assert_eq!(s.matches(A, 10), None);
    }

    #[test]
    fn zero_signer_means_unconfigured() {
        let mut s = SignerState::new(Address::ZERO, 1000);
        assert!(s.is_unconfigured(0));
        assert_eq!(s.matches(Address::ZERO, 0), None);
        s.set(A, 0);
        assert!(!s.is_unconfigured(0));
        assert_eq!(s.previous(), None, "no grace for the zero address");
        // Unsetting keeps the old signer in grace; once it passes, the node is unconfigured.
        s.set(Address::ZERO, 100);
        assert!(!s.is_unconfigured(500));
        assert!(s.is_unconfigured(1100));
        // Setting the same signer again does not restart anything.
        let mut s = SignerState::new(A, 1000);
        s.set(A, 50);
        assert_eq!(s.previous(), None);
    }
}
