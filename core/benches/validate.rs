//! Validation cost: `cargo bench -p op-p2p-core --bench validate`.
//!
//! - `validate/*`: the whole accept path (size guard, snappy, signature, SSZ, block hash,
//!   version rules, seen state) on v4 blocks of growing size, with fresh seen state per
//!   iteration.
//! - `validate/block_1mb_parallel`: the same 1 MB block through the split validator
//!   ([`Checker::check`] then [`Validator::judge`]) with its two hashing passes (payload hash
//!   for the signature; transaction trie and block hash) on two threads, as the node's
//!   validation pool runs it when a worker idles; `validate/block_1mb_split_sequential` is the
//!   split path on one thread, beside it (issue 15).
//! - `reject/*`: what an attacker costs us: a badly signed 1,000-tx block (one keccak over the
//!   message and one recovery, no SSZ or trie work) and a snappy bomb (header only).
//! - `floor/*`: the pieces no implementation can skip, so `validate/*` can be compared with
//!   the sum of its floors; `floor/keccak_1mb_two_at_once` is two of them on two threads, what
//!   this machine's second core gives the parallel path, and
//!   `floor/keccak_and_tx_root_1mb_two_at_once` the parallel path's two hashing halves alone.

use criterion::{BatchSize, Criterion, Throughput, black_box, criterion_group, criterion_main};
use op_p2p_core::BlockVersion;
use op_p2p_core::alloy_primitives::{Bytes, keccak256};
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::gossip::block_hash::transactions_root;
use op_p2p_core::gossip::check::{Join, Sequential};
use op_p2p_core::gossip::signature::{block_signing_hash, recover_signer};
use op_p2p_core::gossip::validate::{Reason, Source, Validator, ValidatorConfig};
use op_p2p_core::gossip::wire::{
    decode_payload, decompress_into, split_beacon_root, split_signature,
};
use op_p2p_core::testkit::{BlockBuilder, dev_key, transactions};

const CHAIN: u64 = 901;
const NOW: u64 = 1_750_000_000;

fn config() -> ValidatorConfig {
    ValidatorConfig::new(CHAIN, dev_key(0).address(), ForkSchedule::ALL_AT_GENESIS, 2)
}

/// A v4 block with `n` transactions of `data_len` calldata bytes each, signed by `signer`.
fn message(n: usize, data_len: usize, signer: u64) -> (Vec<u8>, Vec<Bytes>) {
    let txs = transactions(CHAIN, 1, n, data_len);
    let b = BlockBuilder::new(BlockVersion::V4, 1, NOW).with_transactions(txs.clone());
    (
        b.sign(&dev_key(signer), CHAIN).expect("bench blocks fit"),
        txs,
    )
}

/// The validation pool's parallel hashing, for the bench: `b` on a scoped thread while this
/// thread runs `a`.
struct ScopedJoin;

impl Join for ScopedJoin {
    fn parallel(&self, _signed_len: usize) -> bool {
        true
    }

    fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        std::thread::scope(|s| {
            let handle = s.spawn(b);
            let ra = a();
            (ra, handle.join().expect("bench hashing does not panic"))
        })
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate");
    // 0, 10, 100, 1000 ordinary transfers (~115 bytes each), and ~1 MB of 4 KiB-calldata txs.
    let cases: [(&str, usize, usize); 5] = [
        ("txs_0", 0, 0),
        ("txs_10", 10, 0),
        ("txs_100", 100, 0),
        ("txs_1000", 1000, 0),
        ("block_1mb", 250, 4096),
    ];
    let mut one_mb: Option<(Vec<u8>, Vec<Bytes>)> = None;
    let mut thousand: Option<Vec<Bytes>> = None;
    for (name, n, data_len) in cases {
        let (data, txs) = message(n, data_len, 0);
        let mut raw = Vec::new();
        decompress_into(&data, &mut raw).expect("valid");
        // Sanity: the message is accepted, so the bench measures the accept path.
        assert_eq!(
            Validator::new(config())
                .validate(NOW * 1000, BlockVersion::V4, &data)
                .reason,
            Reason::Accepted
        );
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(name, |b| {
            b.iter_batched(
                || Validator::new(config()),
                |mut v| {
                    let out = v.validate(NOW * 1000, BlockVersion::V4, black_box(&data));
                    debug_assert_eq!(out.reason, Reason::Accepted);
                    out
                },
                BatchSize::SmallInput,
            )
        });
        if name == "block_1mb" {
            one_mb = Some((data, txs));
        } else if name == "txs_1000" {
            thousand = Some(txs);
        }
    }
    // ---- issue 15: the split path, sequential and with the two hashing passes in parallel.
    let (one_mb_data, _) = one_mb.as_ref().expect("built above");
    let split = |v: &mut Validator, buf: &mut Vec<u8>, parallel: bool| {
        let checker = v.checker();
        let checked = if parallel {
            checker.check(NOW * 1000, BlockVersion::V4, one_mb_data, buf, &ScopedJoin)
        } else {
            checker.check(NOW * 1000, BlockVersion::V4, one_mb_data, buf, &Sequential)
        };
        v.judge(
            NOW * 1000,
            checked,
            Source::Decompressed(&buf[..]),
            |_, _| false,
        )
    };
    for (name, parallel) in [
        ("block_1mb_split_sequential", false),
        ("block_1mb_parallel", true),
    ] {
        assert_eq!(
            split(&mut Validator::new(config()), &mut Vec::new(), parallel).reason,
            Reason::Accepted
        );
        g.bench_function(name, |b| {
            let mut buf = Vec::new();
            b.iter_batched(
                || Validator::new(config()),
                |mut v| split(&mut v, &mut buf, parallel),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let mut g = c.benchmark_group("reject");
    let (bad, _) = message(1000, 0, 7);
    assert_eq!(
        Validator::new(config())
            .validate(NOW * 1000, BlockVersion::V4, &bad)
            .reason,
        Reason::WrongSigner
    );
    g.bench_function("bad_signature_txs_1000", |b| {
        let mut v = Validator::new(config());
        b.iter(|| v.validate(NOW * 1000, BlockVersion::V4, black_box(&bad)))
    });
    // Declares 4 GiB in a 20-byte message.
    let bomb = [
        0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(
        Validator::new(config())
            .validate(NOW * 1000, BlockVersion::V4, &bomb)
            .reason,
        Reason::TooLarge
    );
    g.bench_function("snappy_bomb", |b| {
        let mut v = Validator::new(config());
        b.iter(|| v.validate(NOW * 1000, BlockVersion::V4, black_box(&bomb)))
    });
    g.finish();

    let mut g = c.benchmark_group("floor");
    let (one_mb_data, one_mb_txs) = one_mb.expect("built above");
    let mut raw = Vec::new();
    decompress_into(&one_mb_data, &mut raw).expect("valid");
    let signed = split_signature(&raw).expect("valid");
    let hash = block_signing_hash(CHAIN, signed.signed);
    g.bench_function("recover", |b| {
        b.iter(|| recover_signer(black_box(&signed.signature), black_box(&hash)))
    });
    let mib = vec![0xabu8; 1 << 20];
    g.bench_function("keccak_1mb", |b| b.iter(|| keccak256(black_box(&mib))));
    // What the parallel path can gain on this machine: the same hash on both cores at once
    // (the wall time of the pair; 2× faster than one after the other only with two free cores).
    g.bench_function("keccak_1mb_two_at_once", |b| {
        b.iter(|| ScopedJoin.join(|| keccak256(black_box(&mib)), || keccak256(black_box(&mib))))
    });
    g.bench_function("snappy_1mb", |b| {
        let mut out = Vec::new();
        b.iter(|| decompress_into(black_box(&one_mb_data), &mut out))
    });
    let thousand = thousand.expect("built above");
    g.bench_function("tx_root_1000", |b| {
        b.iter(|| transactions_root(black_box(&thousand)))
    });
    g.bench_function("tx_root_1mb", |b| {
        b.iter(|| transactions_root(black_box(&one_mb_txs)))
    });
    // The parallel path's two halves alone, on two threads: its floor on this machine.
    g.bench_function("keccak_and_tx_root_1mb_two_at_once", |b| {
        b.iter(|| {
            ScopedJoin.join(
                || keccak256(black_box(signed.signed)),
                || transactions_root(black_box(&one_mb_txs)),
            )
        })
    });
    let (_, payload) = split_beacon_root(BlockVersion::V4, signed.signed).expect("v4");
    g.bench_function("decode_1mb", |b| {
        b.iter(|| decode_payload(BlockVersion::V4, black_box(payload)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
