//! Block hash reconstruction (spec §1.4): rebuild the execution header from the payload and
//! keccak its RLP, in go-ethereum `types.Header` field order.
//!
//! Transactions are hashed as the opaque bytes the payload carries (never decoded), and the
//! base fee is a full 256-bit integer (geth's `*big.Int`), so a base fee above `u64::MAX` hashes
//! as op-node hashes it. `alloy_consensus::Header` holds the base fee as `u64`, hence this small
//! encoder of our own.

use alloy_consensus::proofs::calculate_withdrawals_root;
use alloy_primitives::{B64, B256, U256, b256, keccak256};
use alloy_rlp::{Encodable, Header};
use alloy_rpc_types_engine::{ExecutionPayloadV1, ExecutionPayloadV3};
use op_alloy_rpc_types_engine::OpExecutionPayload;

/// keccak256(RLP([])): the ommers hash of every post-merge block.
pub const EMPTY_OMMERS_HASH: B256 =
    b256!("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347");
/// sha256(""): the Isthmus `requests_hash` of OP blocks (no execution-layer requests).
pub const EMPTY_REQUESTS_HASH: B256 =
    b256!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

/// The ordered trie root of raw transaction bytes, keyed by RLP(index). The bytes are the
/// leaf values as they are (alloy's `_encoded` variant): no copy of each transaction into a
/// value buffer first.
pub fn transactions_root<T: AsRef<[u8]>>(txs: &[T]) -> B256 {
    alloy_trie::root::ordered_trie_root_encoded(txs)
}

/// The post-London fields every version shares.
struct Base<'a> {
    p: &'a ExecutionPayloadV1,
}

/// The fields after `base_fee` that later forks append, in order.
#[derive(Default)]
struct Tail {
    withdrawals_root: Option<B256>,
    blob_gas_used: Option<u64>,
    excess_blob_gas: Option<u64>,
    parent_beacon_root: Option<B256>,
    requests_hash: Option<B256>,
}

fn header_hash(base: Base<'_>, tx_root: B256, tail: Tail) -> B256 {
    let p = base.p;
    let fields: [&dyn Encodable; 16] = [
        &p.parent_hash,
        &EMPTY_OMMERS_HASH,
        &p.fee_recipient,
        &p.state_root,
        &tx_root,
        &p.receipts_root,
        &p.logs_bloom,
        &U256::ZERO, // difficulty
        &p.block_number,
        &p.gas_limit,
        &p.gas_used,
        &p.timestamp,
        &p.extra_data,
        &p.prev_randao, // mix hash
        &B64::ZERO,     // nonce
        &p.base_fee_per_gas,
    ];
    let tail_fields: [Option<&dyn Encodable>; 5] = [
        tail.withdrawals_root.as_ref().map(|v| v as &dyn Encodable),
        tail.blob_gas_used.as_ref().map(|v| v as &dyn Encodable),
        tail.excess_blob_gas.as_ref().map(|v| v as &dyn Encodable),
        tail.parent_beacon_root
            .as_ref()
            .map(|v| v as &dyn Encodable),
        tail.requests_hash.as_ref().map(|v| v as &dyn Encodable),
    ];
    let payload_length: usize = fields.iter().map(|f| f.length()).sum::<usize>()
        + tail_fields
            .iter()
            .flatten()
            .map(|f| f.length())
            .sum::<usize>();
    let mut out = Vec::with_capacity(payload_length + 4);
    Header {
        list: true,
        payload_length,
    }
    .encode(&mut out);
    for f in fields {
        f.encode(&mut out);
    }
    for f in tail_fields.into_iter().flatten() {
        f.encode(&mut out);
    }
    keccak256(&out)
}

/// Recomputes the block hash of a payload. `parent_beacon_root` is the v3/v4 prefix (ignored
/// for v1/v2).
pub fn compute_block_hash(payload: &OpExecutionPayload, parent_beacon_root: Option<B256>) -> B256 {
    match payload {
        OpExecutionPayload::V1(p) => header_hash(
            Base { p },
            transactions_root(&p.transactions),
            Tail::default(),
        ),
        OpExecutionPayload::V2(p) => {
            let v1 = &p.payload_inner;
            header_hash(
                Base { p: v1 },
                transactions_root(&v1.transactions),
                Tail {
                    withdrawals_root: Some(calculate_withdrawals_root(&p.withdrawals)),
                    ..Tail::default()
                },
            )
        }
        OpExecutionPayload::V3(p) => v3_hash(p, parent_beacon_root, None, None),
        OpExecutionPayload::V4(p) => v3_hash(
            &p.payload_inner,
            parent_beacon_root,
            Some(p.withdrawals_root),
            Some(EMPTY_REQUESTS_HASH),
        ),
    }
}

fn v3_hash(
    p: &ExecutionPayloadV3,
    parent_beacon_root: Option<B256>,
    withdrawals_root_override: Option<B256>,
    requests_hash: Option<B256>,
) -> B256 {
    let v2 = &p.payload_inner;
    let v1 = &v2.payload_inner;
    let withdrawals_root =
        withdrawals_root_override.unwrap_or_else(|| calculate_withdrawals_root(&v2.withdrawals));
    header_hash(
        Base { p: v1 },
        transactions_root(&v1.transactions),
        Tail {
            withdrawals_root: Some(withdrawals_root),
            blob_gas_used: Some(p.blob_gas_used),
            excess_blob_gas: Some(p.excess_blob_gas),
            parent_beacon_root: Some(parent_beacon_root.unwrap_or_default()),
            requests_hash,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::Header as AlloyHeader;
    use alloy_primitives::{Address, Bloom, Bytes};

    fn v1() -> ExecutionPayloadV1 {
        ExecutionPayloadV1 {
            parent_hash: B256::repeat_byte(1),
            fee_recipient: Address::repeat_byte(2),
            state_root: B256::repeat_byte(3),
            receipts_root: B256::repeat_byte(4),
            logs_bloom: Bloom::repeat_byte(5),
            prev_randao: B256::repeat_byte(6),
            block_number: 1234,
            gas_limit: 30_000_000,
            gas_used: 21_000,
            timestamp: 1_700_000_000,
            extra_data: Bytes::from_static(b"extra"),
            base_fee_per_gas: U256::from(7u64),
            block_hash: B256::ZERO,
            transactions: vec![
                Bytes::from_static(&[0x02, 0xc0]),
                Bytes::from_static(&[0xff; 40]),
            ],
        }
    }

    /// Our encoder agrees with alloy's `Header` wherever alloy can represent the header.
    #[test]
    fn matches_alloy_header_hash_for_all_shapes() {
        let p = v1();
        let tx_root = transactions_root(&p.transactions);
        let mut h = AlloyHeader {
            parent_hash: p.parent_hash,
            ommers_hash: EMPTY_OMMERS_HASH,
            beneficiary: p.fee_recipient,
            state_root: p.state_root,
            transactions_root: tx_root,
            receipts_root: p.receipts_root,
            logs_bloom: p.logs_bloom,
            difficulty: U256::ZERO,
            number: p.block_number,
            gas_limit: p.gas_limit,
            gas_used: p.gas_used,
            timestamp: p.timestamp,
            extra_data: p.extra_data.clone(),
            mix_hash: p.prev_randao,
            nonce: B64::ZERO,
            base_fee_per_gas: Some(7),
            ..Default::default()
        };
        assert_eq!(
            compute_block_hash(&OpExecutionPayload::V1(p.clone()), None),
            h.hash_slow()
        );

        let v2 = alloy_rpc_types_engine::ExecutionPayloadV2 {
            payload_inner: p.clone(),
            withdrawals: vec![],
        };
        h.withdrawals_root = Some(alloy_trie::EMPTY_ROOT_HASH);
        assert_eq!(
            compute_block_hash(&OpExecutionPayload::V2(v2.clone()), None),
            h.hash_slow()
        );

        let v3 = ExecutionPayloadV3 {
            payload_inner: v2,
            blob_gas_used: 9,
            excess_blob_gas: 0,
        };
        let root = B256::repeat_byte(0xbb);
        h.blob_gas_used = Some(9);
        h.excess_blob_gas = Some(0);
        h.parent_beacon_block_root = Some(root);
        assert_eq!(
            compute_block_hash(&OpExecutionPayload::V3(v3.clone()), Some(root)),
            h.hash_slow()
        );

        let v4 = op_alloy_rpc_types_engine::OpExecutionPayloadV4 {
            payload_inner: v3,
            withdrawals_root: B256::repeat_byte(0xcc),
        };
        h.withdrawals_root = Some(B256::repeat_byte(0xcc));
        h.requests_hash = Some(EMPTY_REQUESTS_HASH);
        let with_requests = h.hash_slow();
        assert_eq!(
            compute_block_hash(&OpExecutionPayload::V4(v4.clone()), Some(root)),
            with_requests
        );
        // Without the requests hash it is another block.
        h.requests_hash = None;
        assert_ne!(h.hash_slow(), with_requests);
    }

    #[test]
    fn base_fee_above_u64_changes_the_hash_and_does_not_panic() {
        let mut p = v1();
        let small = compute_block_hash(&OpExecutionPayload::V1(p.clone()), None);
        p.base_fee_per_gas = U256::from(u64::MAX) + U256::from(1u64);
        let big = compute_block_hash(&OpExecutionPayload::V1(p), None);
        assert_ne!(small, big);
    }

    #[test]
    fn transactions_root_of_nothing_is_the_empty_root() {
        assert_eq!(transactions_root::<Bytes>(&[]), alloy_trie::EMPTY_ROOT_HASH);
    }

    proptest::proptest! {
        /// The root without a value buffer equals the root through one (how it was computed
        /// before), across the key-length boundaries at 128 and 256 items and for leaves under
        /// 32 bytes (inlined in their parent, not hashed).
        #[test]
        fn transactions_root_equals_the_root_with_a_value_buffer(
            count in 0usize..300,
            lens in proptest::collection::vec(0usize..80, 1..16),
        ) {
            let txs: Vec<Vec<u8>> = (0..count)
                .map(|i| vec![i as u8; lens[i % lens.len()]])
                .collect();
            let buffered = alloy_trie::root::ordered_trie_root_with_encoder(&txs, |tx, buf| {
                buf.extend_from_slice(tx)
            });
            proptest::prop_assert_eq!(transactions_root(&txs), buffered);
        }
    }

    #[test]
    fn constants_are_what_they_claim() {
        let empty_list: Vec<B256> = vec![];
        assert_eq!(keccak256(alloy_rlp::encode(&empty_list)), EMPTY_OMMERS_HASH);
        use sha2::Digest;
        assert_eq!(
            B256::from_slice(&sha2::Sha256::digest([])),
            EMPTY_REQUESTS_HASH
        );
    }
}
