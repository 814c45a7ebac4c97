//! The validation worker pool: runs the stateless half of gossip validation
//! ([`Checker::check`]: snappy, signature recovery, SSZ, block hash) for different messages on
//! `N` worker threads, and hands the results back to the driver **in the order the workers took
//! the messages** (below), which feeds them to the core as
//! [`Input::GossipChecked`](op_p2p_core::Input::GossipChecked). The core then judges each against its live state
//! (signer re-match, seen state, per-height counts): state changes happen in the order the
//! workers took the messages, and every message gets exactly one verdict.
//!
//! **One queue per peer, served in turn.** Queued messages wait in a FIFO per propagation
//! source, and workers take one message from each source with queued messages in turn
//! (round robin), so the core sees each peer's messages in arrival order and a peer that
//! floods the pool delays another peer's message by at most one of its own per worker, not
//! by its whole backlog (issue 15: "honest blocks queue behind the spam"). Results are handed
//! back in the order workers took the messages.
//!
//! **Back-pressure: a bounded queue, then IGNORE, charged to the longest queue.** At most
//! [`MAX_PENDING`] messages and [`MAX_PENDING_BYTES`] of their bytes are submitted and not yet
//! handed back (queued, being checked, or waiting for an earlier one). A message that would
//! exceed either pushes out the newest queued messages of the peer with the most queued, as
//! long as that peer has more queued than the newcomer's; otherwise the newcomer is refused.
//! [`ValidationPool::submit`] gives back the handles of every message pushed out or refused,
//! and the driver reports IGNORE for them without validating (counted in
//! `op_p2p_validation_pool_overflow_total`): no penalty for the sender, and the driver never
//! blocks. A queue (rather than IGNORE at the first busy moment) is what keeps honest blocks
//! flowing under a flood the workers can keep up with; the bound is what keeps memory and the
//! added latency finite when they cannot; charging the longest queue is what keeps one
//! flooding peer from getting another peer's messages ignored.
//!
//! **Why std threads and a mutex-guarded queue** (not rayon): the pool needs a bounded queue
//! with a byte bound, an idle count for the parallel-hashing decision, and results sent to an
//! async channel; that is ~100 lines over std, with no new dependency. The results channel is
//! `futures::channel::mpsc`, which wakes the driver on any runtime (tokio and async-std).
//!
//! **A budget of checks per peer and second** ([`PeerBudget`], the driver's, with or without
//! the pool): each propagation source gets at most [`PEER_CHECKS_PER_SECOND`] messages checked
//! a second (`--p2p.validation.peer-budget`); past it, its messages are IGNOREd unvalidated (no penalty; counted in
//! `op_p2p_validation_pool_over_budget_total`). An honest peer forwards each block once, a few
//! a second at most, so this is two orders of magnitude above honest traffic; what it bounds is
//! the CPU one peer the node does not ban (`--p2p.ban.peers=false`, or a flood of messages that
//! only earn IGNORE) can take from the host: measured on the bench, one unbanned peer at
//! 20,000 invalid messages a second took 1.35 of the machine's two cores.
//!
//! **Messages below the parallel size inline while the pool is idle**
//! ([`ValidationPool::inline_ok`]): a hand-off to a worker and back costs two thread wake-ups,
//! which on a busy host add more latency than the check of a message too small for parallel
//! hashing saves (measured on the 20-process bench mesh: 100-tx blocks' median 4.65 → 7.05 ms
//! with every message on the pool; 1000-tx blocks of 154 KB, median of five alternated runs,
//! 31.6 ms inline against 37.0 ms through the pool). So a message under [`INLINE_MAX_BYTES`]
//! arriving while nothing is pending (no order to keep) is checked on the event loop, at most
//! [`INLINE_PER_SECOND`] a second (≤ 64 checks of a few ms: a bounded share of the loop's time):
//! honest traffic (a few blocks a second, times the copies) fits, and a flood uses the budget up
//! in its first milliseconds, after which it goes to the workers.
//!
//! **Parallel hashing of big blocks** (the pool's [`Join`]): a message of at least
//! [`PARALLEL_MIN_BYTES`] checked while another worker is idle and nothing is queued has its
//! two keccak passes (payload hash for the signature; transaction trie and block hash) run at
//! once, the second on a scoped thread. ⚠ That decodes and hashes the block before its
//! signature is known to be good: work on unauthenticated bytes. It is bounded by taking the
//! path only when a core would otherwise idle: under a flood the queue is non-empty and every
//! message is checked signature-first, as inline validation does.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use futures::channel::mpsc;
use op_p2p_core::gossip::check::{Checked, Checker, Join};
use op_p2p_core::{BlockTopic, GossipMessage, MessageHandle, PeerId, UnixMillis};

/// Most messages submitted and not yet handed back.
pub const MAX_PENDING: usize = 4096;
/// Most bytes (gossip `data` as received) submitted and not yet handed back.
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;
/// Most worker threads (the default is the number of cores, up to this).
pub const MAX_WORKERS: usize = 16;
/// Smallest decompressed message whose two hashing passes may run in parallel: below it the
/// scoped thread costs more than it saves.
pub const PARALLEL_MIN_BYTES: usize = 256 * 1024;

/// Largest message (gossip `data` as received) [`ValidationPool::inline_ok`] lets the event loop
/// check itself: below [`PARALLEL_MIN_BYTES`] a worker would run the same sequential check, only
/// later.
pub const INLINE_MAX_BYTES: usize = PARALLEL_MIN_BYTES;
/// Most messages a second [`ValidationPool::inline_ok`] lets the event loop check itself.
pub const INLINE_PER_SECOND: u32 = 64;
/// Most messages one propagation source gets checked a second ([`PeerBudget`]).
pub const PEER_CHECKS_PER_SECOND: u32 = 500;

/// Each peer's checks of the current second ([`PEER_CHECKS_PER_SECOND`]; see the module docs).
/// The driver asks it for every received message, whether the pool or the event loop checks it
/// (`--p2p.validation.workers 0` too).
#[derive(Debug)]
pub struct PeerBudget {
    /// Checks a source gets a second; 0: no budget.
    per_second: u32,
    /// The second (ms, divided by 1,000) the budgets count in.
    second: u64,
    /// What each source used of it (only the sources seen this second: at most one entry per
    /// connected peer, and one for unknown sources).
    used: HashMap<Option<PeerId>, u32>,
}

impl Default for PeerBudget {
    fn default() -> Self {
        Self::new(PEER_CHECKS_PER_SECOND)
    }
}

impl PeerBudget {
    /// `per_second` checks a source, a second; 0: no budget.
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            second: 0,
            used: HashMap::new(),
        }
    }

    /// Whether `source` may have one more message checked at `now`; a true answer uses one of
    /// its checks of the second. The caller IGNOREs the message unvalidated on false.
    pub fn allow(&mut self, now: UnixMillis, source: Option<PeerId>) -> bool {
        if self.per_second == 0 {
            return true;
        }
        let second = now / 1000;
        if second != self.second {
            self.second = second;
            self.used.clear();
        }
        let used = self.used.entry(source).or_insert(0);
        if *used >= self.per_second {
            return false;
        }
        *used += 1;
        true
    }
}

/// The default worker count: the cores available, at most 8.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
}

/// A message back from the pool, in the order the workers took them.
#[derive(Debug)]
pub struct Done {
    /// The message as submitted.
    pub msg: GossipMessage,
    /// The stateless check's result; `None` when the topic is not a block topic (the core
    /// then rejects it without a check), `Err` if the check panicked (a bug; the driver
    /// IGNOREs the message).
    pub checked: Result<Option<Checked>, CheckPanicked>,
}

/// The stateless check panicked on a message (a bug in the core).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stateless check panicked")]
pub struct CheckPanicked;

struct Job {
    now: UnixMillis,
    checker: Checker,
    msg: GossipMessage,
}

/// Messages waiting for a worker: a FIFO per propagation source (`None`: unknown), the
/// sources served in turn.
#[derive(Default)]
struct Queue {
    by_source: HashMap<Option<PeerId>, VecDeque<Job>>,
    /// Sources with queued messages, the next one to serve first.
    turn: VecDeque<Option<PeerId>>,
    /// The number the next message a worker takes gets: results are handed back in it.
    next_seq: u64,
    closed: bool,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.turn.is_empty()
    }

    fn queued_by(&self, source: &Option<PeerId>) -> usize {
        self.by_source.get(source).map_or(0, VecDeque::len)
    }

    fn push(&mut self, job: Job) {
        let source = job.msg.source;
        let q = self.by_source.entry(source).or_default();
        if q.is_empty() {
            self.turn.push_back(source);
        }
        q.push_back(job);
    }

    /// The oldest message of the source whose turn it is, numbered; that source goes to the
    /// back of the line if it has more.
    fn pop(&mut self) -> Option<(u64, Job)> {
        let source = self.turn.pop_front()?;
        let q = self.by_source.get_mut(&source)?;
        let job = q.pop_front()?;
        if q.is_empty() {
            self.by_source.remove(&source);
        } else {
            self.turn.push_back(source);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Some((seq, job))
    }

    /// Removes every queued message of `source`.
    fn remove_source(&mut self, source: &Option<PeerId>) -> Option<VecDeque<Job>> {
        let jobs = self.by_source.remove(source)?;
        self.turn.retain(|s| s != source);
        Some(jobs)
    }

    /// Removes the newest message of the source with the most queued, if it has more than
    /// `than`.
    fn evict_longest(&mut self, than: usize) -> Option<Job> {
        let (&source, q) = self.by_source.iter_mut().max_by_key(|(_, q)| q.len())?;
        if q.len() <= than {
            return None;
        }
        let job = q.pop_back()?;
        if q.is_empty() {
            self.by_source.remove(&source);
            self.turn.retain(|s| *s != source);
        }
        Some(job)
    }
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Workers waiting for a job.
    idle: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A worker that panicked while holding the lock left the queue consistent (it only
        // pops); keep going.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pool (owned by the driver). Dropping it stops the workers once they finish the message
/// they are on; queued messages are dropped.
pub struct ValidationPool {
    shared: Arc<Shared>,
    workers: usize,
    results_tx: mpsc::UnboundedSender<(u64, Done)>,
    results_rx: mpsc::UnboundedReceiver<(u64, Done)>,
    /// Messages submitted (and not pushed out) and not yet handed back.
    pending: usize,
    /// The number of the next result to hand back.
    next_out: u64,
    /// Results that came back before an earlier message's.
    reorder: BTreeMap<u64, Done>,
    pending_bytes: usize,
    threads: Vec<JoinHandle<()>>,
    /// The second (ms, divided by 1,000) the inline budget counts in, and what it used.
    inline_second: u64,
    inline_used: u32,
}

impl std::fmt::Debug for ValidationPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidationPool")
            .field("workers", &self.workers)
            .field("pending", &self.pending())
            .field("pending_bytes", &self.pending_bytes)
            .finish()
    }
}

impl ValidationPool {
    /// Starts `workers` threads (at least 1, at most [`MAX_WORKERS`]).
    pub fn new(workers: usize) -> std::io::Result<Self> {
        let workers = workers.clamp(1, MAX_WORKERS);
        let mut pool = Self::without_threads(workers);
        pool.start_threads()?;
        Ok(pool)
    }

    /// The pool's state, no thread started yet.
    fn without_threads(workers: usize) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            idle: AtomicUsize::new(0),
        });
        let (results_tx, results_rx) = mpsc::unbounded();
        Self {
            shared,
            workers,
            results_tx,
            results_rx,
            pending: 0,
            next_out: 0,
            reorder: BTreeMap::new(),
            pending_bytes: 0,
            threads: Vec::with_capacity(workers),
            inline_second: 0,
            inline_used: 0,
        }
    }

    fn start_threads(&mut self) -> std::io::Result<()> {
        for i in 0..self.workers {
            let shared = self.shared.clone();
            let tx = self.results_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("opp2p-validate-{i}"))
                .spawn(move || worker(&shared, &tx))?;
            self.threads.push(handle);
        }
        Ok(())
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Messages submitted and not yet handed back.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Whether the caller may check a message of `len` bytes itself, on its own thread, at
    /// `now` instead of submitting it (see the module docs): nothing pending (so arrival order
    /// holds), small, and within this second's budget; a true answer uses one of the budget.
    pub fn inline_ok(&mut self, now: UnixMillis, len: usize) -> bool {
        if self.pending() > 0 || len >= INLINE_MAX_BYTES {
            return false;
        }
        let second = now / 1000;
        if second != self.inline_second {
            self.inline_second = second;
            self.inline_used = 0;
        }
        if self.inline_used >= INLINE_PER_SECOND {
            return false;
        }
        self.inline_used += 1;
        true
    }

    /// Queues `msg` for a check against `checker` at `now`; never blocks. Gives back the
    /// handles of the messages the caller must IGNORE unvalidated: none while the pool is
    /// within its bounds ([`MAX_PENDING`], [`MAX_PENDING_BYTES`]); past them, the newest
    /// queued messages of the peer with the most queued (while it has more than `msg`'s
    /// peer), and `msg`'s own handle if that does not make room.
    pub fn submit(
        &mut self,
        now: UnixMillis,
        checker: Checker,
        msg: GossipMessage,
    ) -> Vec<MessageHandle> {
        let len = msg.data.len();
        let mut ignored = Vec::new();
        let over = |pending: usize, bytes: usize| {
            pending >= MAX_PENDING || bytes.saturating_add(len) > MAX_PENDING_BYTES
        };
        let mut q = self.shared.lock();
        if over(self.pending, self.pending_bytes) {
            let own = q.queued_by(&msg.source);
            while over(self.pending, self.pending_bytes) {
                let Some(out) = q.evict_longest(own + 1) else {
                    break;
                };
                self.pending -= 1;
                self.pending_bytes -= out.msg.data.len();
                ignored.push(out.msg.handle);
            }
            if over(self.pending, self.pending_bytes) {
                ignored.push(msg.handle);
                return ignored;
            }
        }
        self.pending += 1;
        self.pending_bytes += len;
        q.push(Job { now, checker, msg });
        drop(q);
        self.shared.ready.notify_one();
        ignored
    }

    /// Takes `peer`'s queued messages out of the pool (not those a worker already took), for
    /// the caller to IGNORE unvalidated: the driver does so when it bans `peer`, so a banned
    /// flood's backlog costs no more checks (issue 15: a peer banned at its 17th REJECT had
    /// ~70 checked, its queue still ahead of it).
    pub fn drop_queued_from(&mut self, peer: &PeerId) -> Vec<MessageHandle> {
        let Some(jobs) = self.shared.lock().remove_source(&Some(*peer)) else {
            return Vec::new();
        };
        self.pending -= jobs.len();
        jobs.into_iter()
            .map(|job| {
                self.pending_bytes -= job.msg.data.len();
                job.msg.handle
            })
            .collect()
    }

    /// Waits for the next result (any order) and keeps it for [`ValidationPool::pop_ready`].
    /// Pending forever while nothing is submitted; cancel-safe.
    pub async fn wait_result(&mut self) {
        use futures::StreamExt;
        if let Some((seq, done)) = self.results_rx.next().await {
            self.reorder.insert(seq, done);
        }
    }

    /// Takes every result that is back now, without waiting.
    pub fn collect_ready(&mut self) {
        while let Ok((seq, done)) = self.results_rx.try_recv() {
            self.reorder.insert(seq, done);
        }
    }

    /// The next result in the order the workers took the messages, if it is back.
    pub fn pop_ready(&mut self) -> Option<Done> {
        let done = self.reorder.remove(&self.next_out)?;
        self.next_out += 1;
        self.pending -= 1;
        self.pending_bytes -= done.msg.data.len();
        Some(done)
    }
}

impl Drop for ValidationPool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
        // Not joined: a worker finishes its message (milliseconds) and exits by itself; the
        // driver's task must not block on it.
        self.threads.clear();
    }
}

fn worker(shared: &Arc<Shared>, tx: &mpsc::UnboundedSender<(u64, Done)>) {
    let join = PoolJoin { shared };
    let mut buf = Vec::new();
    loop {
        let (seq, job) = {
            let mut q = shared.lock();
            loop {
                if q.closed {
                    return;
                }
                if let Some(next) = q.pop() {
                    break next;
                }
                shared.idle.fetch_add(1, Ordering::SeqCst);
                q = shared.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                shared.idle.fetch_sub(1, Ordering::SeqCst);
            }
        };
        let Job { now, checker, msg } = job;
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let version = BlockTopic::parse(&msg.topic).ok()?.version;
            Some(checker.check(now, version, &msg.data, &mut buf, &join))
        }))
        .map_err(|_| CheckPanicked);
        // Do not keep a huge buffer for ordinary blocks.
        if buf.capacity() > 2 * 1024 * 1024 {
            buf = Vec::new();
        }
        if tx.unbounded_send((seq, Done { msg, checked })).is_err() {
            return;
        }
    }
}

/// The pool's [`Join`]: parallel only for big messages while a worker idles and nothing
/// waits (see the module docs for the unauthenticated-work bound).
struct PoolJoin<'a> {
    shared: &'a Shared,
}

impl Join for PoolJoin<'_> {
    fn parallel(&self, signed_len: usize) -> bool {
        signed_len >= PARALLEL_MIN_BYTES
            && self.shared.idle.load(Ordering::SeqCst) > 0
            && self.shared.lock().is_empty()
    }

    fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        // `b` waits in a slot: the scoped thread takes it, or, if no thread can be started,
        // this thread runs it after `a`.
        let slot = Mutex::new(Some(b));
        let take = || slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        std::thread::scope(|s| {
            let handle = std::thread::Builder::new()
                .spawn_scoped(s, || take().map(|b| b()))
                .ok();
            let ra = a();
            let rb = handle.and_then(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            match (rb, take()) {
                (Some(rb), _) => (ra, rb),
                (None, Some(b)) => (ra, b()),
                (None, None) => unreachable!("the slot is taken only by the thread that runs it"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use op_p2p_core::fork::ForkSchedule;
    use op_p2p_core::testkit::{BlockBuilder, dev_key};
    use op_p2p_core::{Config, Node, Reason};

    const NOW: u64 = 1_750_000_000;

    fn checker() -> Checker {
        let config = Config::new(
            901,
            dev_key(0).address(),
            ForkSchedule::ALL_AT_GENESIS,
            2,
            op_p2p_core::testkit::peer_id(0),
        );
        Node::new(config).stateless_checker()
    }

    fn msg(handle: u64, data: Vec<u8>) -> GossipMessage {
        GossipMessage {
            handle: MessageHandle(handle),
            topic: "/optimism/901/3/blocks".into(),
            data: data.into(),
            source: None,
        }
    }

    #[test]
    fn results_come_back_in_submission_order() {
        let mut pool = ValidationPool::new(2).expect("threads");
        let good = BlockBuilder::new(op_p2p_core::BlockVersion::V4, 1, NOW)
            .sign(&dev_key(0), 901)
            .unwrap();
        for h in 0..50u64 {
            let data = if h % 2 == 0 {
                good.clone()
            } else {
                vec![0xff; 8]
            };
            assert!(pool.submit(NOW * 1000, checker(), msg(h, data)).is_empty());
        }
        let mut got = Vec::new();
        futures::executor::block_on(async {
            while got.len() < 50 {
                pool.wait_result().await;
                while let Some(done) = pool.pop_ready() {
                    let reason = done.checked.unwrap().unwrap().reason_so_far();
                    got.push((done.msg.handle.0, reason));
                }
            }
        });
        let want: Vec<_> = (0..50u64)
            .map(|h| {
                let r = if h % 2 == 0 {
                    Reason::Accepted
                } else {
                    Reason::SnappyLengthUnreadable
                };
                (h, r)
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(pool.pending(), 0);
    }

    fn from(source: u64, handle: u64, data: Vec<u8>) -> GossipMessage {
        GossipMessage {
            source: Some(op_p2p_core::testkit::peer_id(source)),
            ..msg(handle, data)
        }
    }

    #[test]
    fn a_full_pool_gives_the_message_back() {
        let mut pool = ValidationPool::new(1).expect("threads");
        // Results are counted until handed back, so the bound holds whatever the workers do.
        for h in 0..MAX_PENDING as u64 {
            assert!(
                pool.submit(NOW * 1000, checker(), msg(h, vec![0; 4]))
                    .is_empty()
            );
        }
        let refused = pool.submit(NOW * 1000, checker(), msg(9999, vec![0; 4]));
        assert_eq!(refused, vec![MessageHandle(9999)]);
        // The byte bound, on an empty pool.
        let mut pool = ValidationPool::new(1).expect("threads");
        let big = msg(1, vec![0; MAX_PENDING_BYTES + 1]);
        assert_eq!(
            pool.submit(NOW * 1000, checker(), big),
            vec![MessageHandle(1)]
        );
        assert!(
            pool.submit(NOW * 1000, checker(), msg(2, vec![0; 4]))
                .is_empty()
        );
    }

    #[test]
    fn workers_serve_the_peers_in_turn_each_in_arrival_order() {
        let mut q = Queue::default();
        let job = |source, handle| Job {
            now: 0,
            checker: checker(),
            msg: from(source, handle, vec![]),
        };
        // Peer 1 floods (handles 100..), then peers 2 and 3 send one each, then peer 2 again.
        for h in 100..110 {
            q.push(job(1, h));
        }
        q.push(job(2, 200));
        q.push(job(3, 300));
        q.push(job(2, 201));
        let mut order = Vec::new();
        while let Some((seq, j)) = q.pop() {
            assert_eq!(seq, order.len() as u64, "numbered in the order taken");
            order.push(j.msg.handle.0);
        }
        assert_eq!(
            order,
            vec![
                100, 200, 300, 101, 201, 102, 103, 104, 105, 106, 107, 108, 109
            ]
        );
        assert!(q.is_empty() && q.by_source.is_empty());
    }

    #[test]
    fn a_flood_that_fills_the_pool_loses_its_own_messages_not_another_peers() {
        use op_p2p_core::alloy_primitives::Bytes;
        // No worker runs: everything stays queued, so the test sees the bound itself.
        let mut pool = ValidationPool::without_threads(1);
        let t = NOW * 1000;
        // 4,096 flood messages of 16 KiB: both bounds reached at once (one shared buffer).
        let chunk = Bytes::from(vec![0u8; MAX_PENDING_BYTES / MAX_PENDING]);
        let flood = |h: u64| GossipMessage {
            data: chunk.clone(),
            ..from(1, h, Vec::new())
        };
        for h in 0..MAX_PENDING as u64 {
            assert!(pool.submit(t, checker(), flood(h)).is_empty());
        }
        // The flood's next message is its own loss.
        let last = MAX_PENDING as u64;
        assert_eq!(
            pool.submit(t, checker(), flood(last)),
            vec![MessageHandle(last)]
        );
        // Another peer's message gets in, pushing out the flood's newest.
        assert_eq!(
            pool.submit(t, checker(), from(2, 5000, vec![0; 4])),
            vec![MessageHandle(last - 1)]
        );
        assert_eq!(pool.pending(), MAX_PENDING);
        // A 1 MiB block gets the room of 64 flood messages, the newest ones.
        let out = pool.submit(t, checker(), from(3, 6000, vec![0; 1 << 20]));
        let want: Vec<_> = (last - 65..last - 1).rev().map(MessageHandle).collect();
        assert_eq!(out, want);
        assert!(pool.pending_bytes <= MAX_PENDING_BYTES);
        // Once the workers run, peers 2 and 3 are served second and third.
        pool.start_threads().expect("threads");
        let mut got = Vec::new();
        futures::executor::block_on(async {
            while got.len() < 3 {
                pool.wait_result().await;
                while let Some(done) = pool.pop_ready() {
                    got.push(done.msg.handle.0);
                }
            }
        });
        assert_eq!(got, vec![0, 5000, 6000]);
    }

    #[test]
    fn each_peer_gets_its_own_budget_of_checks_a_second() {
        let mut budget = PeerBudget::default();
        let t = NOW * 1000;
        let (a, b) = (
            Some(op_p2p_core::testkit::peer_id(1)),
            Some(op_p2p_core::testkit::peer_id(2)),
        );
        assert!((0..PEER_CHECKS_PER_SECOND).all(|_| budget.allow(t, a)));
        assert!(!budget.allow(t + 999, a), "a's second is used up");
        assert!(budget.allow(t + 999, b), "b's is its own");
        assert!(budget.allow(t + 999, None), "so is the unknown source's");
        assert!(budget.allow(t + 1_000, a), "a new second, a new budget");
        let mut off = PeerBudget::new(0);
        assert!(
            (0..10 * PEER_CHECKS_PER_SECOND).all(|_| off.allow(t, a)),
            "0: no budget"
        );
        let mut two = PeerBudget::new(2);
        assert!(two.allow(t, a) && two.allow(t, a) && !two.allow(t, a));
    }

    #[test]
    fn a_banned_peers_queued_messages_leave_the_pool_and_the_others_stay() {
        let mut pool = ValidationPool::without_threads(1);
        let t = NOW * 1000;
        for h in 0..100 {
            assert!(
                pool.submit(t, checker(), from(1, h, vec![0; 10]))
                    .is_empty()
            );
        }
        assert!(
            pool.submit(t, checker(), from(2, 500, vec![0; 7]))
                .is_empty()
        );
        let out = pool.drop_queued_from(&op_p2p_core::testkit::peer_id(1));
        assert_eq!(out, (0..100).map(MessageHandle).collect::<Vec<_>>());
        assert_eq!((pool.pending(), pool.pending_bytes), (1, 7));
        assert!(
            pool.drop_queued_from(&op_p2p_core::testkit::peer_id(1))
                .is_empty()
        );
        pool.start_threads().expect("threads");
        futures::executor::block_on(pool.wait_result());
        assert_eq!(
            pool.pop_ready().map(|d| d.msg.handle),
            Some(MessageHandle(500))
        );
        assert_eq!(pool.pending(), 0);
    }

    #[test]
    fn a_peer_with_as_many_queued_as_the_flood_is_refused_not_the_flood_trimmed() {
        let mut pool = ValidationPool::without_threads(1);
        let t = NOW * 1000;
        let half = MAX_PENDING as u64 / 2;
        for h in 0..half {
            assert!(pool.submit(t, checker(), from(1, h, vec![0; 4])).is_empty());
            assert!(
                pool.submit(t, checker(), from(2, 10_000 + h, vec![0; 4]))
                    .is_empty()
            );
        }
        // Both hold half: neither has more than the other, so the newcomer is the one refused.
        assert_eq!(
            pool.submit(t, checker(), from(2, 20_000, vec![0; 4])),
            vec![MessageHandle(20_000)]
        );
        // A third peer with nothing queued pushes out one of theirs.
        let out = pool.submit(t, checker(), from(3, 30_000, vec![0; 4]));
        assert_eq!(out.len(), 1);
        assert!([half - 1, 10_000 + half - 1].contains(&out[0].0), "{out:?}");
    }

    #[test]
    fn small_messages_go_inline_only_while_idle_and_within_the_budget() {
        let mut pool = ValidationPool::new(1).expect("threads");
        let t = NOW * 1000;
        // Idle: small ones inline, up to the budget of the second; big ones never.
        assert!(!pool.inline_ok(t, INLINE_MAX_BYTES));
        assert!((0..INLINE_PER_SECOND).all(|_| pool.inline_ok(t, 100)));
        assert!(!pool.inline_ok(t + 999, 100), "a flood uses the budget up");
        assert!(pool.inline_ok(t + 1_000, 100), "a new second, a new budget");
        // Something pending: never inline, whatever the budget (order must hold).
        assert!(pool.submit(t, checker(), msg(1, vec![0; 4])).is_empty());
        assert!(!pool.inline_ok(t + 5_000, 100));
        futures::executor::block_on(pool.wait_result());
        assert!(pool.pop_ready().is_some());
        assert!(pool.inline_ok(t + 5_000, 100));
    }
}
