//! Blocks already accepted, per topic and height (spec §5 rules 14–16).
//!
//! For each of the four topics the state maps a block height to the distinct block hashes
//! accepted at it. op-node keeps the last 1,000 heights in an LRU; we keep the highest
//! `max_heights` heights and evict the **lowest** height when a new one would exceed the bound.
//! Every accepted block lies in the ±60 s timestamp window, so low heights are the ones no peer
//! can still send; evicting them is deterministic and can only forget blocks that would be
//! refused as too old anyway. Memory is bounded by `4 × max_heights × 6` hashes.

use std::collections::BTreeMap;

use alloy_primitives::B256;

use crate::gossip::topic::BlockVersion;

/// Most distinct blocks accepted at one height: a 7th is refused (op-node: "more than 5 seen").
pub const MAX_BLOCKS_PER_HEIGHT: usize = 6;

/// What the seen state says about a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenCheck {
    /// Not seen, and the height has room: record it and accept.
    New,
    /// This hash is already recorded at this height (IGNORE).
    Duplicate,
    /// The height already holds the maximum number of distinct blocks (REJECT). Checked before
    /// [`SeenCheck::Duplicate`], as op-node does.
    HeightFull,
}

/// Per-topic, per-height record of accepted block hashes, bounded by height count.
#[derive(Debug, Clone)]
pub struct SeenBlocks {
    topics: [BTreeMap<u64, Vec<B256>>; 4],
    max_heights: usize,
}

impl SeenBlocks {
    /// An empty record keeping at most `max_heights` heights per topic (at least 1).
    pub fn new(max_heights: usize) -> Self {
        Self {
            topics: Default::default(),
            max_heights: max_heights.max(1),
        }
    }

    /// The bound on heights per topic.
    pub fn max_heights(&self) -> usize {
        self.max_heights
    }

    /// Classifies a block without recording it.
    pub fn check(&self, version: BlockVersion, height: u64, hash: &B256) -> SeenCheck {
        match self.topics[version.topic_index() as usize].get(&height) {
            None => SeenCheck::New,
            Some(hashes) if hashes.len() >= MAX_BLOCKS_PER_HEIGHT => SeenCheck::HeightFull,
            Some(hashes) if hashes.contains(hash) => SeenCheck::Duplicate,
            Some(_) => SeenCheck::New,
        }
    }

    /// Records an accepted block, evicting the lowest height if the topic is over its bound.
    pub fn record(&mut self, version: BlockVersion, height: u64, hash: B256) {
        let map = &mut self.topics[version.topic_index() as usize];
        let hashes = map.entry(height).or_default();
        if hashes.len() < MAX_BLOCKS_PER_HEIGHT && !hashes.contains(&hash) {
            hashes.push(hash);
        }
        while map.len() > self.max_heights {
            map.pop_first();
        }
    }

    /// Heights currently held for a topic.
    pub fn heights(&self, version: BlockVersion) -> usize {
        self.topics[version.topic_index() as usize].len()
    }

    /// The lowest height held for a topic, if any.
    pub fn lowest_height(&self, version: BlockVersion) -> Option<u64> {
        self.topics[version.topic_index() as usize]
            .keys()
            .next()
            .copied()
    }

    /// Total hashes held over all topics.
    pub fn total_hashes(&self) -> usize {
        self.topics
            .iter()
            .flat_map(|m| m.values())
            .map(Vec::len)
            .sum()
    }
}

/// The default height bound: enough heights to cover the 65 s duplicate window at the chain's
/// block time, and never fewer than op-node's 1,000.
pub fn default_max_heights(block_time_secs: u64) -> usize {
    let window = 65u64.div_ceil(block_time_secs.max(1));
    (window as usize).max(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> B256 {
        B256::repeat_byte(n)
    }

    #[test]
    fn six_distinct_per_height_then_full_even_for_duplicates() {
        let mut s = SeenBlocks::new(10);
        let v = BlockVersion::V3;
        for i in 0..6 {
            assert_eq!(s.check(v, 5, &h(i)), SeenCheck::New);
            s.record(v, 5, h(i));
            assert_eq!(
                s.check(v, 5, &h(i)),
                if i < 5 {
                    SeenCheck::Duplicate
                } else {
                    SeenCheck::HeightFull
                }
            );
        }
        assert_eq!(s.check(v, 5, &h(6)), SeenCheck::HeightFull);
        // Count before duplicate: an exact duplicate at a full height is HeightFull (REJECT).
        assert_eq!(s.check(v, 5, &h(0)), SeenCheck::HeightFull);
        // Other heights and other topics are independent.
        assert_eq!(s.check(v, 6, &h(0)), SeenCheck::New);
        assert_eq!(s.check(BlockVersion::V4, 5, &h(0)), SeenCheck::New);
    }

    #[test]
    fn evicts_the_lowest_height_at_the_bound() {
        let mut s = SeenBlocks::new(3);
        let v = BlockVersion::V1;
        for height in [10, 11, 12] {
            s.record(v, height, h(1));
        }
        assert_eq!(s.heights(v), 3);
        s.record(v, 13, h(1));
        assert_eq!(s.heights(v), 3);
        assert_eq!(s.lowest_height(v), Some(11));
        assert_eq!(
            s.check(v, 10, &h(1)),
            SeenCheck::New,
            "evicted height is forgotten"
        );
        assert_eq!(s.check(v, 13, &h(1)), SeenCheck::Duplicate);
        // An old height arriving late is itself the lowest and goes at once.
        s.record(v, 1, h(1));
        assert_eq!(s.lowest_height(v), Some(11));
        assert_eq!(s.heights(v), 3);
    }

    #[test]
    fn memory_stays_bounded_under_many_heights() {
        let mut s = SeenBlocks::new(1000);
        for height in 0..100_000u64 {
            for i in 0..8 {
                s.record(BlockVersion::ALL[(height % 4) as usize], height, h(i));
            }
        }
        assert!(s.total_hashes() <= 4 * 1000 * MAX_BLOCKS_PER_HEIGHT);
    }

    #[test]
    fn default_bound_covers_the_window() {
        assert_eq!(default_max_heights(2), 1000);
        assert_eq!(default_max_heights(0), 1000);
        assert_eq!(SeenBlocks::new(0).max_heights(), 1);
    }
}
