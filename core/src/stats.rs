//! Plain counters the core keeps; the runtime exports them as metrics.

use crate::validate::Reason;

/// Counters of what the core has decided. Plain data, cheap to copy out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    verdicts: [u64; Reason::ALL.len()],
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
}
