//! The sequencer's publish queue: the pure policy behind [`crate::Node`]'s publishing (issue 14;
//! op-node's async gossiper, optimism#22585).
//!
//! Rules, each with its test below:
//! - **Bounded**: at most [`QueueConfig::capacity`] blocks wait; a block pushed onto a full
//!   queue drops the oldest waiting one ([`DropReason::QueueFull`]).
//! - **Seal order**: blocks go out in the order they were pushed; only the front block is ever
//!   being signed or published, so a later block never overtakes an earlier one.
//! - **One per height**: a block at a height already waiting supersedes it
//!   ([`DropReason::Superseded`]): only the newest seal at a height goes out.
//! - **Transient failures retry at the front** with a doubling backoff
//!   ([`QueueConfig::retry_initial_ms`] up to [`QueueConfig::retry_max_ms`]); **permanent
//!   failures drop** the block at once.
//! - **Deadline**: a block not out [`QueueConfig::deadline_ms`] after it was pushed is dropped
//!   ([`DropReason::DeadlinePassed`], or a transient failure if it had failed before).
//! - **Age**: a block whose timestamp is more than [`QueueConfig::max_age_ms`] before `now`
//!   (the validator's timestamp threshold) is never published ([`DropReason::TooOld`]).
//!
//! The queue reads no clock: every call takes `now` (Unix ms).

use std::collections::VecDeque;

use crate::UnixMillis;

/// The token a runtime gives each publish, echoed in every action and outcome about it. Ids
/// with the top bit set are the node's own, for `opp2pext_publishBlock` calls: a runtime
/// numbers its publishes from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublishId(pub u64);

/// The queue's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Most blocks waiting at once (at least 1).
    pub capacity: usize,
    /// How long after it was pushed a block may still go out.
    pub deadline_ms: u64,
    /// Oldest block timestamp (relative to `now`) that is still published.
    pub max_age_ms: u64,
    /// First wait before retrying a transient failure.
    pub retry_initial_ms: u64,
    /// Longest wait between two retries.
    pub retry_max_ms: u64,
    /// Check that a signature recovers to the unsafe block signer before sending (a
    /// permanent `WrongSigner` failure otherwise). Only load tools that publish invalid
    /// blocks on purpose (the bench's spammer) turn it off.
    pub verify_signer: bool,
}

/// Most blocks waiting by default (16 s of 1 s blocks).
pub const DEFAULT_QUEUE_CAPACITY: usize = 16;
/// Default publish deadline.
pub const DEFAULT_PUBLISH_DEADLINE_MS: u64 = 10_000;
/// Default maximum age: the gossip validator's 60 s timestamp threshold.
pub const DEFAULT_MAX_AGE_MS: u64 = 60_000;

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_QUEUE_CAPACITY,
            deadline_ms: DEFAULT_PUBLISH_DEADLINE_MS,
            max_age_ms: DEFAULT_MAX_AGE_MS,
            retry_initial_ms: 100,
            retry_max_ms: 1_000,
            verify_signer: true,
        }
    }
}

/// Why a block left the queue without being published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// The queue was full and this was the oldest block waiting.
    #[error("publish queue full")]
    QueueFull,
    /// A newer block at the same height was pushed.
    #[error("superseded by a newer block at the same height")]
    Superseded,
    /// Its deadline passed before it went out.
    #[error("publish deadline passed")]
    DeadlinePassed,
    /// Its timestamp is older than the gossip threshold: peers would ignore it.
    #[error("block too old to publish")]
    TooOld,
}

impl DropReason {
    /// Every reason, for metrics labels.
    pub const ALL: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::Superseded,
        DropReason::DeadlinePassed,
        DropReason::TooOld,
    ];

    /// A short label (metrics, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Superseded => "superseded",
            DropReason::DeadlinePassed => "deadline",
            DropReason::TooOld => "too_old",
        }
    }
}

/// Whether a failure may go away on a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Retried at the front until the deadline (signer timeout, no peers yet...).
    Transient,
    /// Never retried (wrong signer, wrong version, encoding...).
    Permanent,
}

impl FailureKind {
    /// A short label (metrics, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Transient => "transient",
            FailureKind::Permanent => "permanent",
        }
    }
}

/// What a block is about, as the queue's rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockMeta {
    /// Block number (the height rule).
    pub number: u64,
    /// Block timestamp, Unix seconds (the age rule).
    pub timestamp: u64,
}

/// One waiting block.
#[derive(Debug)]
struct Entry<T> {
    id: PublishId,
    meta: BlockMeta,
    deadline: UnixMillis,
    /// Not before this (a retry's backoff).
    ready_at: UnixMillis,
    attempts: u32,
    /// It failed transiently before.
    failed: bool,
    item: T,
}

/// A block that left the queue without going out.
#[derive(Debug, PartialEq, Eq)]
pub struct Removed<T> {
    /// Its token.
    pub id: PublishId,
    /// What the caller queued.
    pub item: T,
    /// Why it left.
    pub why: Removal,
}

/// Why a block left the queue without going out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Dropped by a queue rule.
    Dropped(DropReason),
    /// Its deadline passed after a transient failure.
    GaveUp,
}

/// The bounded, in-order publish queue. Generic over what it carries, so its rules are
/// tested without payloads.
#[derive(Debug)]
pub struct PublishQueue<T> {
    config: QueueConfig,
    entries: VecDeque<Entry<T>>,
    /// The front block is being signed or published.
    in_flight: Option<PublishId>,
}

impl<T> PublishQueue<T> {
    /// An empty queue.
    pub fn new(config: QueueConfig) -> Self {
        Self {
            config: QueueConfig {
                capacity: config.capacity.max(1),
                ..config
            },
            entries: VecDeque::new(),
            in_flight: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Blocks waiting (including the one in flight).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The block being signed or published, if any.
    pub fn in_flight(&self) -> Option<PublishId> {
        self.in_flight
    }

    fn too_old(&self, now: UnixMillis, meta: &BlockMeta) -> bool {
        meta.timestamp
            .saturating_mul(1000)
            .saturating_add(self.config.max_age_ms)
            < now
    }

    /// Queues a block. Returns what it pushed out: the block itself if it is already too old,
    /// a waiting block at the same height, or the oldest block when the queue is full. A
    /// block removed while in flight is simply forgotten: a late result for it is ignored.
    pub fn push(
        &mut self,
        now: UnixMillis,
        id: PublishId,
        meta: BlockMeta,
        item: T,
    ) -> Vec<Removed<T>> {
        let mut removed = Vec::new();
        if self.too_old(now, &meta) {
            removed.push(Removed {
                id,
                item,
                why: Removal::Dropped(DropReason::TooOld),
            });
            return removed;
        }
        while let Some(i) = self
            .entries
            .iter()
            .position(|e| e.meta.number == meta.number)
        {
            removed.push(self.remove_at(i, Removal::Dropped(DropReason::Superseded)));
        }
        while self.entries.len() >= self.config.capacity {
            removed.push(self.remove_at(0, Removal::Dropped(DropReason::QueueFull)));
        }
        self.entries.push_back(Entry {
            id,
            meta,
            deadline: now.saturating_add(self.config.deadline_ms),
            ready_at: now,
            attempts: 0,
            failed: false,
            item,
        });
        removed
    }

    fn remove_at(&mut self, i: usize, why: Removal) -> Removed<T> {
        // `i` comes from a position in `entries`.
        let e = self.entries.remove(i).expect("index in range");
        if self.in_flight == Some(e.id) {
            self.in_flight = None;
        }
        Removed {
            id: e.id,
            item: e.item,
            why,
        }
    }

    /// Drops every block past its deadline or its age.
    pub fn expire(&mut self, now: UnixMillis) -> Vec<Removed<T>> {
        let mut removed = Vec::new();
        let mut i = 0;
        while i < self.entries.len() {
            let e = &self.entries[i];
            let why = if self.too_old(now, &e.meta) {
                Some(Removal::Dropped(DropReason::TooOld))
            } else if now >= e.deadline {
                Some(if e.failed {
                    Removal::GaveUp
                } else {
                    Removal::Dropped(DropReason::DeadlinePassed)
                })
            } else {
                None
            };
            match why {
                Some(why) => removed.push(self.remove_at(i, why)),
                None => i += 1,
            }
        }
        removed
    }

    /// The front block, marked in flight, when nothing is in flight and its backoff is over.
    /// The caller signs or publishes it and reports back with [`PublishQueue::succeeded`] or
    /// [`PublishQueue::failed`].
    pub fn start(&mut self, now: UnixMillis) -> Option<(PublishId, &mut T)> {
        if self.in_flight.is_some() {
            return None;
        }
        let front = self.entries.front_mut()?;
        if front.ready_at > now {
            return None;
        }
        front.attempts += 1;
        self.in_flight = Some(front.id);
        Some((front.id, &mut front.item))
    }

    /// The block in flight, if it is `id` (a result for anything else is stale).
    pub fn in_flight_item(&mut self, id: PublishId) -> Option<&mut T> {
        if self.in_flight != Some(id) {
            return None;
        }
        self.entries.front_mut().map(|e| &mut e.item)
    }

    /// Ends the flight of `id` without a result yet: it stays at the front, ready at once
    /// (a step of a multi-step publish, such as signing, is done).
    pub fn step_done(&mut self, id: PublishId) {
        if self.in_flight == Some(id) {
            self.in_flight = None;
        }
    }

    /// The block in flight went out: removed and returned. `None` when `id` is not in flight.
    pub fn succeeded(&mut self, id: PublishId) -> Option<T> {
        if self.in_flight != Some(id) {
            return None;
        }
        self.in_flight = None;
        self.entries.pop_front().map(|e| e.item)
    }

    /// The block in flight failed. A permanent failure removes and returns it; a transient one
    /// keeps it at the front, ready again after the backoff (`None`). `None` too when `id` is
    /// not in flight.
    pub fn failed(&mut self, now: UnixMillis, id: PublishId, kind: FailureKind) -> Option<T> {
        if self.in_flight != Some(id) {
            return None;
        }
        self.in_flight = None;
        match kind {
            FailureKind::Permanent => self.entries.pop_front().map(|e| e.item),
            FailureKind::Transient => {
                let front = self.entries.front_mut()?;
                let shift = front.attempts.saturating_sub(1).min(16);
                let backoff = self
                    .config
                    .retry_initial_ms
                    .saturating_mul(1u64 << shift)
                    .min(self.config.retry_max_ms);
                front.ready_at = now.saturating_add(backoff);
                front.failed = true;
                None
            }
        }
    }

    /// When the queue next needs a tick: the earliest deadline, age limit, or end of backoff.
    pub fn next_deadline(&self) -> Option<UnixMillis> {
        let deadlines = self.entries.iter().map(|e| {
            let age = e
                .meta
                .timestamp
                .saturating_mul(1000)
                .saturating_add(self.config.max_age_ms)
                .saturating_add(1);
            e.deadline.min(age)
        });
        let ready = match (self.in_flight, self.entries.front()) {
            (None, Some(f)) => Some(f.ready_at),
            _ => None,
        };
        deadlines.chain(ready).min()
    }

    /// The waiting blocks' ids, front first.
    pub fn ids(&self) -> impl Iterator<Item = PublishId> + '_ {
        self.entries.iter().map(|e| e.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = 1_000_000_000;

    fn meta(number: u64) -> BlockMeta {
        BlockMeta {
            number,
            timestamp: NOW / 1000,
        }
    }

    fn queue(capacity: usize) -> PublishQueue<u64> {
        PublishQueue::new(QueueConfig {
            capacity,
            ..QueueConfig::default()
        })
    }

    fn push(q: &mut PublishQueue<u64>, now: UnixMillis, id: u64, number: u64) -> Vec<Removed<u64>> {
        q.push(now, PublishId(id), meta(number), id)
    }

    fn ids(q: &PublishQueue<u64>) -> Vec<u64> {
        q.ids().map(|i| i.0).collect()
    }

    #[test]
    fn blocks_go_out_in_push_order_one_at_a_time() {
        let mut q = queue(8);
        for n in 1..=3 {
            assert!(push(&mut q, NOW, n, n).is_empty());
        }
        let mut out = Vec::new();
        while let Some((id, _)) = q.start(NOW) {
            // Nothing else starts while one is in flight.
            assert!(q.start(NOW).is_none());
            out.push(q.succeeded(id).unwrap());
        }
        assert_eq!(out, [1, 2, 3]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let mut q = queue(2);
        push(&mut q, NOW, 1, 1);
        push(&mut q, NOW, 2, 2);
        let removed = push(&mut q, NOW, 3, 3);
        assert_eq!(
            removed,
            [Removed {
                id: PublishId(1),
                item: 1,
                why: Removal::Dropped(DropReason::QueueFull)
            }]
        );
        assert_eq!(ids(&q), [2, 3]);
    }

    #[test]
    fn a_reseal_at_the_same_height_supersedes_the_waiting_block() {
        let mut q = queue(8);
        push(&mut q, NOW, 1, 10);
        push(&mut q, NOW, 2, 11);
        let removed = push(&mut q, NOW, 3, 11);
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].id, PublishId(2));
        assert_eq!(removed[0].why, Removal::Dropped(DropReason::Superseded));
        assert_eq!(ids(&q), [1, 3]);
    }

    #[test]
    fn a_reseal_supersedes_the_block_in_flight_and_its_late_result_is_ignored() {
        let mut q = queue(8);
        push(&mut q, NOW, 1, 10);
        let (id, _) = q.start(NOW).unwrap();
        let removed = push(&mut q, NOW, 2, 10);
        assert_eq!(removed[0].id, id);
        assert_eq!(q.succeeded(id), None, "stale result");
        assert_eq!(q.failed(NOW, id, FailureKind::Permanent), None);
        let (next, _) = q.start(NOW).unwrap();
        assert_eq!(next, PublishId(2));
    }

    #[test]
    fn a_transient_failure_retries_at_the_front_after_a_doubling_backoff() {
        let mut q = queue(8);
        push(&mut q, NOW, 1, 1);
        push(&mut q, NOW, 2, 2);
        let (id, _) = q.start(NOW).unwrap();
        assert_eq!(q.failed(NOW, id, FailureKind::Transient), None);
        // Block 2 does not overtake the failed block 1.
        assert!(q.start(NOW + 99).is_none());
        assert_eq!(q.next_deadline(), Some(NOW + 100));
        let (again, _) = q.start(NOW + 100).unwrap();
        assert_eq!(again, id);
        q.failed(NOW + 100, id, FailureKind::Transient);
        assert!(q.start(NOW + 299).is_none());
        assert_eq!(q.start(NOW + 300).unwrap().0, id);
        assert_eq!(q.succeeded(id), Some(1));
        assert_eq!(q.start(NOW + 300).unwrap().0, PublishId(2));
    }

    #[test]
    fn the_backoff_stops_growing_at_its_maximum() {
        let mut q = queue(8);
        push(&mut q, NOW, 1, 1);
        let mut now = NOW;
        for _ in 0..8 {
            let (id, _) = q.start(now).unwrap();
            q.failed(now, id, FailureKind::Transient);
            now = q.next_deadline().unwrap();
        }
        let (id, _) = q.start(now).unwrap();
        q.failed(now, id, FailureKind::Transient);
        assert_eq!(q.next_deadline(), Some(now + 1_000));
    }

    #[test]
    fn a_permanent_failure_drops_the_block_and_the_next_one_starts() {
        let mut q = queue(8);
        push(&mut q, NOW, 1, 1);
        push(&mut q, NOW, 2, 2);
        let (id, _) = q.start(NOW).unwrap();
        assert_eq!(q.failed(NOW, id, FailureKind::Permanent), Some(1));
        assert_eq!(q.start(NOW).unwrap().0, PublishId(2));
    }

    #[test]
    fn blocks_past_their_deadline_are_dropped_with_the_reason() {
        let mut q = queue(8);
        push(&mut q, NOW, 1, 1);
        push(&mut q, NOW + 5_000, 2, 2);
        let (id, _) = q.start(NOW).unwrap();
        q.failed(NOW, id, FailureKind::Transient);
        assert!(q.expire(NOW + 9_999).is_empty());
        let removed = q.expire(NOW + 10_000);
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].id, PublishId(1));
        assert_eq!(
            removed[0].why,
            Removal::GaveUp,
            "it had failed: a transient failure"
        );
        let removed = q.expire(NOW + 15_000);
        assert_eq!(
            removed[0].why,
            Removal::Dropped(DropReason::DeadlinePassed),
            "never tried: dropped"
        );
        assert!(q.is_empty());
    }

    #[test]
    fn a_block_older_than_the_age_limit_is_never_queued_or_published() {
        let mut q = queue(8);
        let old = BlockMeta {
            number: 1,
            timestamp: NOW / 1000 - 61,
        };
        let removed = q.push(NOW, PublishId(1), old, 1);
        assert_eq!(removed[0].why, Removal::Dropped(DropReason::TooOld));
        assert!(q.is_empty());
        // A block that ages out while waiting (a long deadline) is dropped too.
        let mut q = PublishQueue::new(QueueConfig {
            deadline_ms: 120_000,
            ..QueueConfig::default()
        });
        q.push(NOW, PublishId(2), meta(2), 2u64);
        q.start(NOW).unwrap();
        let limit = q.next_deadline().unwrap();
        assert_eq!(limit, NOW + 60_001);
        assert!(q.expire(limit - 1).is_empty());
        assert_eq!(q.expire(limit)[0].why, Removal::Dropped(DropReason::TooOld));
    }

    #[test]
    fn a_multi_step_publish_keeps_the_block_at_the_front() {
        let mut q = queue(8);
        push(&mut q, NOW, 1, 1);
        push(&mut q, NOW, 2, 2);
        let (id, item) = q.start(NOW).unwrap();
        *item += 100;
        q.step_done(id);
        let (again, item) = q.start(NOW).unwrap();
        assert_eq!((again, *item), (id, 101));
        assert_eq!(q.in_flight_item(PublishId(2)), None);
        assert_eq!(q.in_flight_item(id).copied(), Some(101));
    }

    #[test]
    fn next_deadline_is_none_when_empty_and_skips_the_backoff_while_in_flight() {
        let mut q = queue(8);
        assert_eq!(q.next_deadline(), None);
        push(&mut q, NOW, 1, 1);
        assert_eq!(q.next_deadline(), Some(NOW));
        q.start(NOW).unwrap();
        assert_eq!(q.next_deadline(), Some(NOW + 10_000));
    }
}
