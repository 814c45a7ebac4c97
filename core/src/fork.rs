//! Hardfork activation times that matter to block gossip (spec §2 and §5 rule 11).
//!
//! Only four forks change what goes over the wire: Canyon (v2 topic), Ecotone (v3 topic, beacon
//! root), Isthmus (v4 topic, `withdrawals_root`) and Jovian (non-zero `blob_gas_used` allowed on
//! v3+). Each is a Unix timestamp in seconds; `None` means "not scheduled".

use crate::gossip::topic::BlockVersion;

/// Activation times (Unix seconds) of the forks that change block gossip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkSchedule {
    /// Canyon: blocks move to the v2 topic (withdrawals list).
    pub canyon: Option<u64>,
    /// Ecotone: blocks move to the v3 topic (beacon root and blob gas fields).
    pub ecotone: Option<u64>,
    /// Isthmus: blocks move to the v4 topic (`withdrawals_root`).
    pub isthmus: Option<u64>,
    /// Jovian: `blob_gas_used` carries the DA footprint and may be non-zero.
    pub jovian: Option<u64>,
}

fn active(fork: Option<u64>, timestamp: u64) -> bool {
    fork.is_some_and(|t| timestamp >= t)
}

impl ForkSchedule {
    /// Every fork active from genesis: new chains and devnets.
    pub const ALL_AT_GENESIS: Self = Self {
        canyon: Some(0),
        ecotone: Some(0),
        isthmus: Some(0),
        jovian: Some(0),
    };

    /// The payload version (and so the topic) a block with this timestamp is published on:
    /// the newest topic whose fork is active (Jovian stays on v4).
    pub fn publish_version(&self, timestamp: u64) -> BlockVersion {
        if active(self.isthmus, timestamp) {
            BlockVersion::V4
        } else if active(self.ecotone, timestamp) {
            BlockVersion::V3
        } else if active(self.canyon, timestamp) {
            BlockVersion::V2
        } else {
            BlockVersion::V1
        }
    }

    /// Whether Jovian is active at `timestamp` (the only fork the validator itself consults).
    pub fn is_jovian(&self, timestamp: u64) -> bool {
        active(self.jovian, timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_version_follows_the_newest_active_fork() {
        let s = ForkSchedule {
            canyon: Some(100),
            ecotone: Some(200),
            isthmus: Some(300),
            jovian: Some(400),
        };
        assert_eq!(s.publish_version(0), BlockVersion::V1);
        assert_eq!(s.publish_version(99), BlockVersion::V1);
        assert_eq!(s.publish_version(100), BlockVersion::V2);
        assert_eq!(s.publish_version(199), BlockVersion::V2);
        assert_eq!(s.publish_version(200), BlockVersion::V3);
        assert_eq!(s.publish_version(300), BlockVersion::V4);
        // Jovian does not add a topic.
        assert_eq!(s.publish_version(500), BlockVersion::V4);
        assert!(!s.is_jovian(399));
        assert!(s.is_jovian(400));
    }

    #[test]
    fn unscheduled_forks_never_activate() {
        let s = ForkSchedule::default();
        assert_eq!(s.publish_version(u64::MAX), BlockVersion::V1);
        assert!(!s.is_jovian(u64::MAX));
        assert_eq!(
            ForkSchedule::ALL_AT_GENESIS.publish_version(0),
            BlockVersion::V4
        );
    }
}
