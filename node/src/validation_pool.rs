//! The validation worker pool: runs the stateless half of gossip validation
//! ([`Checker::check`]: snappy, signature recovery, SSZ, block hash) for different messages on
//! `N` worker threads, and hands the results back to the driver **in the order the messages
//! were submitted**, which feeds them to the core as
//! [`Input::GossipChecked`](op_p2p_core::Input::GossipChecked). The core then judges each against its live state
//! (signer re-match, seen state, per-height counts): state changes happen in arrival order,
//! and every message gets exactly one verdict.
//!
//! **Back-pressure: a bounded queue, then IGNORE.** At most [`MAX_PENDING`] messages and
//! [`MAX_PENDING_BYTES`] of their bytes are submitted and not yet handed back (queued,
//! being checked, or waiting for an earlier one). A message that would exceed either is
//! refused ([`ValidationPool::submit`] gives its handle back) and the driver reports IGNORE to
//! gossipsub without validating it (counted in `opp2p_validation_pool_overflow_total`): no
//! penalty for the sender, and the driver never blocks. A queue (rather than IGNORE at the
//! first busy moment) is what keeps honest blocks flowing under a flood the workers can keep
//! up with; the bound is what keeps memory and the added latency finite when they cannot.
//!
//! **Why std threads and a mutex-guarded queue** (not rayon): the pool needs a bounded queue
//! with a byte bound, an idle count for the parallel-hashing decision, and results sent to an
//! async channel; that is ~100 lines over std, with no new dependency. The results channel is
//! `futures::channel::mpsc`, which wakes the driver on any runtime (tokio and async-std).
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

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use futures::channel::mpsc;
use op_p2p_core::gossip::check::{Checked, Checker, Join};
use op_p2p_core::{BlockTopic, GossipMessage, MessageHandle, UnixMillis};

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

/// The default worker count: the cores available, at most 8.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
}

/// A message back from the pool, in submission order.
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
    seq: u64,
    now: UnixMillis,
    checker: Checker,
    msg: GossipMessage,
}

struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
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
    next_seq: u64,
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
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            idle: AtomicUsize::new(0),
        });
        let (results_tx, results_rx) = mpsc::unbounded();
        let mut pool = Self {
            shared,
            workers,
            results_tx,
            results_rx,
            next_seq: 0,
            next_out: 0,
            reorder: BTreeMap::new(),
            pending_bytes: 0,
            threads: Vec::with_capacity(workers),
            inline_second: 0,
            inline_used: 0,
        };
        for i in 0..workers {
            let shared = pool.shared.clone();
            let tx = pool.results_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("opp2p-validate-{i}"))
                .spawn(move || worker(&shared, &tx))?;
            pool.threads.push(handle);
        }
        Ok(pool)
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Messages submitted and not yet handed back.
    pub fn pending(&self) -> usize {
        (self.next_seq - self.next_out) as usize
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

    /// Queues `msg` for a check against `checker` at `now`; never blocks. When the pool is at
    /// its bound ([`MAX_PENDING`], [`MAX_PENDING_BYTES`]) the message is dropped and its handle
    /// given back, for the caller to IGNORE it.
    pub fn submit(
        &mut self,
        now: UnixMillis,
        checker: Checker,
        msg: GossipMessage,
    ) -> Result<(), MessageHandle> {
        let len = msg.data.len();
        if self.pending() >= MAX_PENDING || self.pending_bytes + len > MAX_PENDING_BYTES {
            return Err(msg.handle);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending_bytes += len;
        self.shared.lock().jobs.push_back(Job {
            seq,
            now,
            checker,
            msg,
        });
        self.shared.ready.notify_one();
        Ok(())
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

    /// The next result in submission order, if it is back.
    pub fn pop_ready(&mut self) -> Option<Done> {
        let done = self.reorder.remove(&self.next_out)?;
        self.next_out += 1;
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
        let job = {
            let mut q = shared.lock();
            loop {
                if q.closed {
                    return;
                }
                if let Some(job) = q.jobs.pop_front() {
                    break job;
                }
                shared.idle.fetch_add(1, Ordering::SeqCst);
                q = shared.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                shared.idle.fetch_sub(1, Ordering::SeqCst);
            }
        };
        let Job {
            seq,
            now,
            checker,
            msg,
        } = job;
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
            && self.shared.lock().jobs.is_empty()
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
            pool.submit(NOW * 1000, checker(), msg(h, data)).unwrap();
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

    #[test]
    fn a_full_pool_gives_the_message_back() {
        let mut pool = ValidationPool::new(1).expect("threads");
        // Results are counted until handed back, so the bound holds whatever the workers do.
        for h in 0..MAX_PENDING as u64 {
            pool.submit(NOW * 1000, checker(), msg(h, vec![0; 4]))
                .unwrap();
        }
        let refused = pool.submit(NOW * 1000, checker(), msg(9999, vec![0; 4]));
        assert_eq!(refused, Err(MessageHandle(9999)));
        // The byte bound, on an empty pool.
        let mut pool = ValidationPool::new(1).expect("threads");
        let big = msg(1, vec![0; MAX_PENDING_BYTES + 1]);
        assert!(pool.submit(NOW * 1000, checker(), big).is_err());
        assert!(
            pool.submit(NOW * 1000, checker(), msg(2, vec![0; 4]))
                .is_ok()
        );
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
        pool.submit(t, checker(), msg(1, vec![0; 4])).unwrap();
        assert!(!pool.inline_ok(t + 5_000, 100));
        futures::executor::block_on(pool.wait_result());
        assert!(pool.pop_ready().is_some());
        assert!(pool.inline_ok(t + 5_000, 100));
    }
}
