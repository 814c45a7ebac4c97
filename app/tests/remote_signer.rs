//! Publishing through a remote signer (issue 14): our test op-signer runs as a real process
//! speaking op-signer's JSON-RPC over mutual TLS on loopback; sequencer nodes sign through it.
//! Injected latency, errors, wrong-key answers and hangs; the node keeps receiving and
//! forwarding meanwhile, the queue drops what passed its deadline, and publishing resumes in
//! order. Every child is killed when its handle drops. The nodes run on both runtimes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use op_p2p_core::alloy_primitives::Address;
use op_p2p_core::alloy_primitives::B256;
use op_p2p_core::gossip::signature::{BLOCK_SIGNING_DOMAIN, recover_signer, signing_hash};
use op_p2p_core::publish::{DropReason, FailureKind};
use op_p2p_core::testkit::{BlockBuilder, dev_key};
use op_p2p_core::{BlockVersion, DeliveredBlock, PublishError, PublishOutcome};
use op_p2p_node::signer::{BlockSigner, LocalSigner, RemoteSigner, SignError, SignRequest};
use op_p2p_tests::{
    BOUND, Rt, SignerProcess, connect, dev_config, local0, node_metric, now_secs, on_both_runtimes,
    publish_when_ready, sequencer_config, shutdown, sign_request, sleep, v4_block, within,
};

const BIN: &str = env!("CARGO_BIN_EXE_op-p2p");

fn request(n: u8) -> SignRequest {
    SignRequest {
        chain_id: 901,
        payload_hash: B256::repeat_byte(n),
    }
}

async fn sign_blocking(
    signer: RemoteSigner,
    r: SignRequest,
) -> Result<op_p2p_core::alloy_primitives::Signature, SignError> {
    tokio::task::spawn_blocking(move || signer.sign(&r))
        .await
        .expect("sign task")
}

#[test]
fn the_signer_signs_over_mtls_and_refuses_a_client_without_a_certificate() {
    Rt::Tokio.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let signer = SignerProcess::start(BIN, dir.path(), &[]).await;
        let client = RemoteSigner::new(signer.client_config(Duration::from_secs(5))).unwrap();
        let sig = sign_blocking(client, request(1)).await.expect("signed");
        let hash = signing_hash(BLOCK_SIGNING_DOMAIN, 901, B256::repeat_byte(1));
        assert_eq!(recover_signer(&sig, &hash).unwrap(), dev_key(0).address());
        // Without a client certificate the TLS handshake fails: a transient transport error.
        let mut no_cert = signer.client_config(Duration::from_secs(5));
        no_cert.tls_cert = None;
        no_cert.tls_key = None;
        let err = sign_blocking(RemoteSigner::new(no_cert).unwrap(), request(2))
            .await
            .expect_err("refused");
        assert!(matches!(err, SignError::Transport(_)), "{err:?}");
        assert_eq!(err.kind(), FailureKind::Transient);
    });
}

async fn injected_errors_are_retried_and_a_wrong_key_is_a_permanent_failure(rt: Rt) {
    let dir = tempfile::tempdir().expect("temp dir");
    // Two JSON-RPC errors, then 20 ms per answer.
    let flaky = SignerProcess::start(
        BIN,
        &dir.path().join("a"),
        &["--fail-first", "2", "--latency-ms", "20"],
    )
    .await;
    let seq = rt
        .spawn(flaky.sequencer_config(0, Duration::from_secs(2)))
        .await;
    let mut rx = rt.spawn(dev_config(1)).await;
    connect(&rx, &seq).await;
    let mut blocks = rx.blocks().expect("blocks");
    publish_when_ready(&seq, v4_block(1)).await;
    let got = within(BOUND, "block 1", blocks.next())
        .await
        .expect("delivered");
    assert_eq!(got.envelope.payload.as_v1().block_number, 1);

    let wrong_key = hex::encode(op_p2p_core::testkit::dev_key_bytes(7));
    let wrong =
        SignerProcess::start(BIN, &dir.path().join("b"), &["--wrong-key", &wrong_key]).await;
    let mut bad_config = wrong.sequencer_config(2, Duration::from_secs(2));
    bad_config.rpc_addr = Some(local0());
    let bad = rt.spawn(bad_config).await;
    let outcome = within(
        BOUND,
        "outcome",
        bad.submit(v4_block(5)).await.expect("queued"),
    )
    .await;
    match outcome {
        PublishOutcome::Failed(f) => {
            assert_eq!(f.kind, FailureKind::Permanent);
            assert!(
                matches!(f.error, PublishError::WrongSigner { got, .. } if got == dev_key(7).address()),
                "{f:?}"
            );
        }
        other => panic!("expected a wrong-signer failure, got {other:?}"),
    }
    // A loud failure, not a stop: the node runs on.
    assert!(!bad.is_stopped());
    assert_eq!(
        node_metric(&bad, "op_p2p_publish_failures_total{kind=\"permanent\"}").await,
        1.0,
        "the wrong-key failure is counted"
    );
    assert_eq!(
        node_metric(&bad, "op_p2p_published_blocks_total").await,
        0.0
    );
    for n in [seq, rx, bad] {
        shutdown(n).await;
    }
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get((v.len() * 99).div_ceil(100).saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

/// Publishes `count` blocks from `publisher` from `first` on, every 100 ms, while reading
/// `rx`'s deliveries; returns the publish→delivery latencies of those blocks (other blocks
/// delivered meanwhile go to `others`).
async fn relay_round(
    publisher: &op_p2p_node::NodeHandle,
    blocks: &mut futures::channel::mpsc::Receiver<DeliveredBlock>,
    first: u64,
    count: u64,
    others: &mut Vec<u64>,
) -> Vec<Duration> {
    let sent = std::sync::Mutex::new(std::collections::BTreeMap::new());
    let publish = async {
        for n in first..first + count {
            sent.lock().unwrap().insert(n, Instant::now());
            drop(publisher.submit(v4_block(n)).await.expect("queued"));
            sleep(Duration::from_millis(100)).await;
        }
    };
    let receive = async {
        let mut lat = Vec::new();
        while lat.len() < count as usize {
            let b = within(BOUND, "relayed block", blocks.next())
                .await
                .expect("delivered");
            let number = b.envelope.payload.as_v1().block_number;
            match sent.lock().unwrap().get(&number) {
                Some(t) => lat.push(t.elapsed()),
                None => others.push(number),
            }
        }
        lat
    };
    futures::join!(publish, receive).1
}

/// Publishes a fresh block from `publisher` every 600 ms until `blocks` yields one: the relay
/// path is up. One publish is not enough: a block the relay accepts before it has grafted (or
/// even heard the subscription of) the receiver is offered to it by IHAVE for three heartbeats
/// (1.5 s) only, and on a loaded host the subscription can come later than that. Numbers
/// 90..100; any that arrive late are told apart from the sequencer's own (1..=6).
async fn relay_ready(
    publisher: &op_p2p_node::NodeHandle,
    blocks: &mut futures::channel::mpsc::Receiver<DeliveredBlock>,
) {
    for n in 90..100 {
        publish_when_ready(publisher, v4_block(n)).await;
        let next = std::pin::pin!(blocks.next());
        let wait = std::pin::pin!(sleep(Duration::from_millis(600)));
        if let futures::future::Either::Left((got, _)) = futures::future::select(next, wait).await {
            got.expect("delivered");
            return;
        }
    }
    panic!("no block relayed to the receiver in 10 tries");
}

/// The signer hangs on its first 4 calls (30 s each, past the node's 1 s call timeout): the
/// node keeps receiving and forwarding another publisher's blocks, drops its own blocks when
/// their 2.5 s deadline passes, and publishes in order once the signer answers again.
async fn a_hung_signer_stalls_neither_receiving_nor_forwarding_and_publishing_resumes_in_order(
    rt: Rt,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let signer = SignerProcess::start(
        BIN,
        dir.path(),
        &["--hang-first", "4", "--hang-ms", "30000"],
    )
    .await;
    let mut config = signer.sequencer_config(0, Duration::from_secs(1));
    config.core.publish.deadline_ms = 2_500;
    let seq = rt.spawn(config).await;
    let other = rt.spawn(sequencer_config(1)).await;
    let mut rx = rt.spawn(dev_config(2)).await;
    // other — seq — rx: rx gets the other publisher's blocks only if seq forwards them.
    connect(&other, &seq).await;
    connect(&rx, &seq).await;
    let mut blocks = rx.blocks().expect("blocks");
    relay_ready(&other, &mut blocks).await;

    // Our blocks 1 and 2 wait on the hung signer.
    let t1 = seq.submit(v4_block(1)).await.expect("queued");
    let t2 = seq.submit(v4_block(2)).await.expect("queued");
    let mut ours = Vec::new();
    let hung = relay_round(&other, &mut blocks, 101, 20, &mut ours).await;
    let o1 = within(BOUND, "outcome 1", t1).await;
    let o2 = within(BOUND, "outcome 2", t2).await;
    assert!(
        matches!(&o1, PublishOutcome::Failed(f) if f.kind == FailureKind::Transient),
        "block 1 timed out on the signer until its deadline: {o1:?}"
    );
    assert_eq!(o2, PublishOutcome::Dropped(DropReason::DeadlinePassed));
    assert!(
        !ours.contains(&1) && !ours.contains(&2),
        "nothing of ours went out: {ours:?}"
    );

    // The signer's hanging calls are used up: it answers again.
    let mut tickets = Vec::new();
    for n in 3..=6 {
        tickets.push(seq.submit(v4_block(n)).await.expect("queued"));
    }
    let mut numbers = Vec::new();
    for t in tickets {
        match within(BOUND, "outcome", t).await {
            PublishOutcome::Published { .. } => {}
            other => {
                // A call still hanging when block 3 came may have cost it its deadline.
                eprintln!("outcome: {other:?}");
            }
        }
    }
    let calm = relay_round(&other, &mut blocks, 121, 20, &mut numbers).await;
    numbers.retain(|n| (3..=6).contains(n));
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!(numbers, sorted, "our blocks arrive in seal order");
    assert!(numbers.contains(&6), "publishing resumed: {numbers:?}");
    eprintln!(
        "receive p99 via the sequencer: {:?} while its signer hangs, {:?} after",
        p99(hung),
        p99(calm)
    );
    for n in [seq, other, rx] {
        shutdown(n).await;
    }
}

/// A full queue drops its oldest block (counted), and a block re-sealed at the same height
/// supersedes the waiting one: only the newest goes out.
async fn a_full_queue_drops_the_oldest_and_a_reseal_supersedes(rt: Rt) {
    let dir = tempfile::tempdir().expect("temp dir");
    let signer = SignerProcess::start(BIN, dir.path(), &["--latency-ms", "300"]).await;
    let mut config = signer.sequencer_config(0, Duration::from_secs(2));
    config.core.publish.capacity = 2;
    config.rpc_addr = Some(local0());
    let seq = rt.spawn(config).await;
    let mut rx = rt.spawn(dev_config(1)).await;
    connect(&rx, &seq).await;
    let mut blocks = rx.blocks().expect("blocks");
    publish_when_ready(&seq, v4_block(1)).await;
    within(BOUND, "block 1", blocks.next())
        .await
        .expect("delivered");

    let ts = now_secs();
    let first = sign_request(&BlockBuilder::new(BlockVersion::V4, 10, ts));
    let reseal = BlockBuilder::new(BlockVersion::V4, 10, ts + 1);
    let (reseal_payload, _) = reseal.build();
    let t_first = seq.submit(first).await.expect("queued");
    let t_reseal = seq.submit(sign_request(&reseal)).await.expect("queued");
    assert_eq!(
        within(BOUND, "superseded", t_first).await,
        PublishOutcome::Dropped(DropReason::Superseded)
    );
    assert!(matches!(
        within(BOUND, "reseal", t_reseal).await,
        PublishOutcome::Published { .. }
    ));
    let got = within(BOUND, "block 10", blocks.next())
        .await
        .expect("delivered");
    assert_eq!(
        got.envelope.payload.as_v1().block_hash,
        reseal_payload.as_v1().block_hash
    );

    // Capacity 2: five at once drop the three oldest.
    let mut tickets = Vec::new();
    for n in 20..25 {
        tickets.push(seq.submit(v4_block(n)).await.expect("queued"));
    }
    let mut full = 0;
    let mut published = Vec::new();
    for (n, t) in (20..25).zip(tickets) {
        match within(BOUND, "outcome", t).await {
            PublishOutcome::Dropped(DropReason::QueueFull) => full += 1,
            PublishOutcome::Published { .. } => published.push(n),
            other => panic!("block {n}: {other:?}"),
        }
    }
    assert_eq!(full, 3);
    assert_eq!(published, [23, 24]);
    // The publish metrics say the same (issue 14): 4 published (1, the re-seal, 23, 24),
    // 3 dropped as queue full, 1 superseded, none failed, nothing left in the queue, and one
    // signing call of at least the signer's 300 ms per published block.
    let m = |series: &'static str| node_metric(&seq, series);
    assert_eq!(m("op_p2p_published_blocks_total").await, 4.0);
    assert_eq!(
        m("op_p2p_publish_dropped_total{reason=\"queue_full\"}").await,
        3.0
    );
    assert_eq!(
        m("op_p2p_publish_dropped_total{reason=\"superseded\"}").await,
        1.0
    );
    assert_eq!(
        m("op_p2p_publish_dropped_total{reason=\"deadline\"}").await,
        0.0
    );
    assert_eq!(
        m("op_p2p_publish_failures_total{kind=\"permanent\"}").await,
        0.0
    );
    assert_eq!(m("op_p2p_publish_queue_length").await, 0.0);
    let calls = m("op_p2p_signing_latency_seconds_count").await;
    assert!(calls >= 4.0, "{calls} signing calls");
    assert!(m("op_p2p_signing_latency_seconds_sum").await >= 0.3 * 4.0);
    for n in [seq, rx] {
        shutdown(n).await;
    }
}

/// A signer slower than the publish deadline (issue 14): each block passes its deadline while
/// its call hangs and the core asks for the next one's signature, but at most
/// `MAX_SIGNING_CALLS` calls run at once (a hung signer cannot take the blocking pool); once
/// the signer is fast again, publishing goes on.
#[derive(Debug)]
struct SlowSigner {
    key: LocalSigner,
    slow: AtomicBool,
    running: AtomicUsize,
    max_running: AtomicUsize,
    calls: AtomicUsize,
}

impl BlockSigner for SlowSigner {
    fn address(&self) -> Address {
        self.key.address()
    }

    fn sign(&self, r: &SignRequest) -> Result<op_p2p_core::alloy_primitives::Signature, SignError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.slow.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1_500));
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.key.sign(r)
    }
}

async fn a_hung_signer_holds_at_most_two_calls_at_once(rt: Rt) {
    let signer = Arc::new(SlowSigner {
        key: LocalSigner(dev_key(0)),
        slow: AtomicBool::new(true),
        running: AtomicUsize::new(0),
        max_running: AtomicUsize::new(0),
        calls: AtomicUsize::new(0),
    });
    let mut config = dev_config(0);
    config.signer = Some(signer.clone());
    config.core.publish.deadline_ms = 200;
    let seq = rt.spawn(config).await;
    let mut rx = rt.spawn(dev_config(1)).await;
    connect(&rx, &seq).await;
    let mut blocks = rx.blocks().expect("blocks");
    // 12 blocks 100 ms apart, each with a 200 ms deadline, against 1.5 s calls.
    let mut tickets = Vec::new();
    for n in 1..=12 {
        tickets.push(seq.submit(v4_block(n)).await.expect("queued"));
        sleep(Duration::from_millis(100)).await;
    }
    for t in tickets {
        let o = within(BOUND, "outcome", t).await;
        assert!(!matches!(o, PublishOutcome::Published { .. }), "{o:?}");
    }
    let max = signer.max_running.load(Ordering::SeqCst);
    assert!(
        max <= op_p2p_node::driver::MAX_SIGNING_CALLS,
        "{max} signer calls ran at once"
    );
    assert!(signer.calls.load(Ordering::SeqCst) >= 2);
    // Fast again: the next block is signed and delivered.
    signer.slow.store(false, Ordering::SeqCst);
    publish_when_ready(&seq, v4_block(20)).await;
    let got = within(BOUND, "block 20", blocks.next())
        .await
        .expect("delivered");
    assert_eq!(got.envelope.payload.as_v1().block_number, 20);
    for n in [seq, rx] {
        shutdown(n).await;
    }
}

// The node side runs on both runtimes (the signer is a process of its own either way).
on_both_runtimes!(
    injected_errors_are_retried_and_a_wrong_key_is_a_permanent_failure,
    a_hung_signer_stalls_neither_receiving_nor_forwarding_and_publishing_resumes_in_order,
    a_full_queue_drops_the_oldest_and_a_reseal_supersedes,
    a_hung_signer_holds_at_most_two_calls_at_once,
);
