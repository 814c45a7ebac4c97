//! `op-p2p example-gossip`: writes a set of example gossip messages and their manifest.
//!
//! The messages are real: blocks built with signed transactions, block hashes computed, signed
//! by a development sequencer key, snappy-compressed, then (for the negative cases) broken in
//! exactly one way. Each case in the manifest also says the verdict and reason op-node gives
//! it (`expect_verdict`, `expect_reason`), which `op-p2p verdicts` ignores and the conformance
//! test checks. The output is deterministic, so the committed set can be regenerated and
//! compared byte for byte.

use std::path::Path;

use op_p2p_core::alloy_primitives::{Address, U256};
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::gossip::signature::SequencerKey;
use op_p2p_core::gossip::wire::{compress, decompress_into, snappy_declared_len};
use op_p2p_core::testkit::{BlockBuilder, dev_key, transactions};
use op_p2p_core::{BlockTopic, BlockVersion};
use serde::{Deserialize, Serialize};

/// Chain id of the example set.
pub const CHAIN_ID: u64 = 901;
/// The replay time of the example set (Unix seconds).
pub const NOW: u64 = 1_750_000_000;
/// Jovian activates 30 s before [`NOW`]; every other fork is active from genesis.
pub const JOVIAN_TIME: u64 = NOW - 30;

/// The sequencer key of the example set.
pub fn sequencer() -> SequencerKey {
    dev_key(0)
}

/// The fork schedule of the example set.
pub fn forks() -> ForkSchedule {
    ForkSchedule {
        canyon: Some(0),
        ecotone: Some(0),
        isthmus: Some(0),
        jovian: Some(JOVIAN_TIME),
    }
}

/// One example case, as written to the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExampleCase {
    /// Message file.
    pub file: String,
    /// Topic it is replayed on.
    pub topic: String,
    /// Verdict op-node gives it, in order after the cases before it.
    pub expect_verdict: String,
    /// Reason (our rule name).
    pub expect_reason: String,
    /// What the case is.
    pub note: String,
}

/// The manifest with the parameters the set was made for (ignored by `verdicts`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExampleManifest {
    /// What to pass as `--chain-id`.
    pub chain_id: u64,
    /// What to pass as `--unsafe-signer`.
    pub unsafe_signer: Address,
    /// What to pass as `--now`.
    pub now: u64,
    /// What to pass as `--jovian-time` (other forks at genesis).
    pub jovian_time: u64,
    /// The cases.
    pub cases: Vec<ExampleCase>,
}

fn decompress(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    decompress_into(data, &mut out).expect("our own messages decompress");
    out
}

/// The example set: messages and manifest, in memory.
pub fn generate() -> (ExampleManifest, Vec<(String, Vec<u8>)>) {
    let key = sequencer();
    let imposter = dev_key(1);
    let mut cases = Vec::new();
    let mut files = Vec::new();
    let mut add =
        |data: Vec<u8>, version: BlockVersion, verdict: &str, reason: &str, note: &str| {
            let file = format!("{:03}.bin", files.len());
            cases.push(ExampleCase {
                file: file.clone(),
                topic: BlockTopic::new(CHAIN_ID, version).to_string(),
                expect_verdict: verdict.into(),
                expect_reason: reason.into(),
                note: note.into(),
            });
            files.push((file, data));
        };
    let sign = |b: &BlockBuilder| b.sign(&key, CHAIN_ID).expect("example blocks are small");
    let block = |v: BlockVersion, number: u64, ts: u64, txs: usize| {
        BlockBuilder::new(v, number, ts).with_transactions(transactions(CHAIN_ID, number, txs, 60))
    };
    use BlockVersion::*;

    // Valid blocks on every topic.
    for (i, v) in BlockVersion::ALL.into_iter().enumerate() {
        let b = block(v, 100 + i as u64, NOW - 2, 10);
        add(
            sign(&b),
            v,
            "accept",
            "accepted",
            &format!("valid {v} block with 10 transactions"),
        );
    }
    let v4 = block(V4, 200, NOW - 1, 100);
    let v4_msg = sign(&v4);
    add(
        v4_msg.clone(),
        V4,
        "accept",
        "accepted",
        "valid v4 block with 100 transactions",
    );
    add(
        v4_msg.clone(),
        V4,
        "ignore",
        "duplicate",
        "the same block again",
    );
    // The same block on the v3 topic: a v4 body does not decode in the v3 shape.
    add(
        v4_msg.clone(),
        V3,
        "reject",
        "ssz_decode",
        "the v4 block replayed on the v3 topic",
    );

    // Signature rules, before any decoding.
    add(
        v4.sign(&imposter, CHAIN_ID).unwrap(),
        V4,
        "reject",
        "wrong_signer",
        "signed by another key",
    );
    add(
        v4.sign(&key, CHAIN_ID + 1).unwrap(),
        V4,
        "reject",
        "wrong_signer",
        "signed for another chain id",
    );
    let mut raw = decompress(&v4_msg);
    raw[64] += 27;
    add(
        compress(&raw),
        V4,
        "reject",
        "bad_recovery_id",
        "v = 27/28 instead of 0/1",
    );
    let mut raw = decompress(&v4_msg);
    let last = raw.len() - 1;
    raw[last] ^= 1;
    add(
        compress(&raw),
        V4,
        "reject",
        "wrong_signer",
        "a duplicate with one signed byte flipped",
    );

    // Size and snappy rules.
    let mut bomb = Vec::new();
    let mut n: u64 = 4 << 30;
    while n >= 0x80 {
        bomb.push((n as u8) | 0x80);
        n >>= 7;
    }
    bomb.push(n as u8);
    bomb.extend_from_slice(&[0; 16]);
    debug_assert_eq!(snappy_declared_len(&bomb), Some(4 << 30));
    add(
        bomb,
        V4,
        "reject",
        "too_large",
        "declares 4 GiB: refused from the header",
    );
    let mut truncated = v4_msg.clone();
    truncated.truncate(truncated.len() / 2);
    add(
        truncated,
        V4,
        "reject",
        "snappy_corrupt",
        "snappy body cut in half",
    );
    add(
        compress(&[7u8; 40]),
        V4,
        "reject",
        "too_small",
        "40 bytes, below the 66-byte minimum",
    );

    // Timestamp window at the edges.
    add(
        sign(&block(V4, 300, NOW - 60, 2)),
        V4,
        "accept",
        "accepted",
        "timestamp exactly now - 60",
    );
    add(
        sign(&block(V4, 301, NOW - 61, 2)),
        V4,
        "reject",
        "too_old",
        "timestamp now - 61",
    );
    add(
        sign(&block(V4, 302, NOW + 5, 2)),
        V4,
        "accept",
        "accepted",
        "timestamp exactly now + 5",
    );
    add(
        sign(&block(V4, 303, NOW + 6, 2)),
        V4,
        "reject",
        "too_new",
        "timestamp now + 6",
    );

    // Block hash and version field rules.
    let (mut payload, root) = block(V4, 400, NOW, 3).build();
    payload.as_v1_mut().block_hash.0[0] ^= 1;
    let msg =
        op_p2p_core::gossip::signature::sign_block_message(&key, CHAIN_ID, &payload, root).unwrap();
    add(
        msg,
        V4,
        "reject",
        "block_hash_mismatch",
        "block hash off by one bit",
    );
    let mut b = block(V4, 401, JOVIAN_TIME - 1, 3);
    b.blob_gas_used = 1000;
    add(
        sign(&b),
        V4,
        "reject",
        "blob_gas_used_before_jovian",
        "DA footprint before Jovian",
    );
    let mut b = block(V4, 402, JOVIAN_TIME, 3);
    b.blob_gas_used = 1000;
    add(
        sign(&b),
        V4,
        "accept",
        "accepted",
        "DA footprint at Jovian (op-node's exemption)",
    );
    let mut b = block(V3, 403, NOW, 3);
    b.excess_blob_gas = 1;
    add(
        sign(&b),
        V3,
        "reject",
        "excess_blob_gas_non_zero",
        "non-zero excess blob gas",
    );
    let mut b = block(V2, 404, NOW, 3);
    b.withdrawals = vec![Default::default()];
    add(
        sign(&b),
        V2,
        "reject",
        "withdrawals_not_empty",
        "a withdrawal on L2",
    );
    let mut b = block(V4, 405, NOW, 3);
    b.base_fee = U256::from(u64::MAX) * U256::from(3u64);
    add(
        sign(&b),
        V4,
        "accept",
        "accepted",
        "base fee above u64 (geth's big.Int)",
    );

    // Per-height limit: six distinct blocks accepted, the seventh refused, then a duplicate.
    for salt in 0..7u8 {
        let mut b = block(V4, 500, NOW, 1);
        b.salt = salt;
        let (verdict, reason) = if salt < 6 {
            ("accept", "accepted")
        } else {
            ("reject", "too_many_blocks_at_height")
        };
        add(
            sign(&b),
            V4,
            verdict,
            reason,
            &format!("distinct block {} at height 500", salt + 1),
        );
    }
    let mut b = block(V4, 500, NOW, 1);
    b.salt = 0;
    add(
        sign(&b),
        V4,
        "reject",
        "too_many_blocks_at_height",
        "a duplicate once the height is full",
    );

    let manifest = ExampleManifest {
        chain_id: CHAIN_ID,
        unsafe_signer: key.address(),
        now: NOW,
        jovian_time: JOVIAN_TIME,
        cases,
    };
    (manifest, files)
}

/// Writes the example set into `dir` (created if missing): the message files and
/// `manifest.json`.
pub fn write(dir: &Path) -> std::io::Result<ExampleManifest> {
    std::fs::create_dir_all(dir)?;
    let (manifest, files) = generate();
    for (name, data) in &files {
        std::fs::write(dir.join(name), data)?;
    }
    let mut json = serde_json::to_string_pretty(&manifest).map_err(std::io::Error::other)?;
    json.push('\n');
    std::fs::write(dir.join("manifest.json"), json)?;
    Ok(manifest)
}
