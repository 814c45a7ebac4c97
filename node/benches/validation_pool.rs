//! Validation capacity on 1 vs 2 workers: `cargo bench -p op-p2p-node --bench validation_pool`.
//!
//! - `spam_reject/inline`: 1,000 invalid-signature v4 messages (a 100-tx block signed by a
//!   stranger, each with its own payload) checked one after the other on the calling thread,
//!   as the driver did before the pool;
//! - `spam_reject/workers_1`, `workers_2`: the same messages through a
//!   [`ValidationPool`] of that many threads, submitted at once and collected in order.
//!
//! Throughput is in messages per second. This is the validation half of a REJECT only (snappy,
//! payload hash, signature recovery); libp2p's receive path and the verdict stay on the driver.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::gossip::check::Sequential;
use op_p2p_core::testkit::{BlockBuilder, dev_key, peer_id, transactions};
use op_p2p_core::{BlockVersion, Config, GossipMessage, MessageHandle, Node, Reason};
use op_p2p_node::validation_pool::ValidationPool;

const CHAIN: u64 = 901;
const NOW: u64 = 1_750_000_000;
const MESSAGES: usize = 1_000;

fn bench(c: &mut Criterion) {
    let node = Node::new(Config::new(
        CHAIN,
        dev_key(0).address(),
        ForkSchedule::ALL_AT_GENESIS,
        2,
        peer_id(0),
    ));
    let checker = node.stateless_checker();
    let txs = transactions(CHAIN, 1, 100, 0);
    let messages: Vec<Vec<u8>> = (0..MESSAGES as u64)
        .map(|i| {
            BlockBuilder::new(BlockVersion::V4, 1 + i, NOW)
                .with_transactions(txs.clone())
                .sign(&dev_key(7), CHAIN)
                .expect("fits")
        })
        .collect();
    let msg = |i: usize, data: &Vec<u8>| GossipMessage {
        handle: MessageHandle(i as u64),
        topic: format!("/optimism/{CHAIN}/3/blocks"),
        data: data.clone().into(),
        source: None,
    };
    let mut g = c.benchmark_group("spam_reject");
    g.throughput(Throughput::Elements(MESSAGES as u64));
    g.bench_function("inline", |b| {
        let mut buf = Vec::new();
        b.iter(|| {
            for data in &messages {
                let c = checker.check(NOW * 1000, BlockVersion::V4, data, &mut buf, &Sequential);
                debug_assert_eq!(c.reason_so_far(), Reason::WrongSigner);
            }
        })
    });
    for workers in [1usize, 2] {
        let mut pool = ValidationPool::new(workers).expect("threads");
        g.bench_function(format!("workers_{workers}"), |b| {
            b.iter_batched(
                || {
                    messages
                        .iter()
                        .enumerate()
                        .map(|(i, d)| msg(i, d))
                        .collect::<Vec<_>>()
                },
                |batch| {
                    for m in batch {
                        let ignored = pool.submit(NOW * 1000, checker.clone(), m);
                        assert!(ignored.is_empty(), "room for the batch");
                    }
                    let mut n = 0;
                    futures::executor::block_on(async {
                        while n < MESSAGES {
                            pool.wait_result().await;
                            while let Some(done) = pool.pop_ready() {
                                debug_assert!(matches!(done.checked, Ok(Some(_))));
                                n += 1;
                            }
                        }
                    });
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
