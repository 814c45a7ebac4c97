//! Block builders with real signatures, for tests, benchmarks, the example generator and
//! simulated sequencers (feature `test-util`).
//!
//! Blocks carry real transactions: an L1-attributes-style deposit first, then EIP-1559
//! transfers signed by deterministic development keys. Block hashes are computed, not faked,
//! so built blocks pass validation unless a test breaks them on purpose.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bloom, Bytes, TxKind, U256, keccak256};
use alloy_rpc_types_engine::{ExecutionPayloadV1, ExecutionPayloadV2, ExecutionPayloadV3};
use op_alloy_consensus::TxDeposit;
use op_alloy_rpc_types_engine::{OpExecutionPayload, OpExecutionPayloadV4};

use crate::gossip::block_hash::compute_block_hash;
use crate::gossip::signature::{SequencerKey, sign_block_message};
use crate::gossip::topic::BlockVersion;
use crate::gossip::wire::EncodeError;

/// A deterministic development key: keccak256("op-p2p dev key" ‖ i), never zero in practice.
pub fn dev_key(i: u64) -> SequencerKey {
    SequencerKey::from_bytes(&dev_key_bytes(i)).expect("dev_key_bytes are a valid key")
}

/// The 32 secret bytes of [`dev_key`] `i` (for tools that take a key as hex).
pub fn dev_key_bytes(i: u64) -> [u8; 32] {
    let mut seed = b"op-p2p dev key ".to_vec();
    seed.extend_from_slice(&i.to_be_bytes());
    let mut secret = keccak256(&seed).0;
    loop {
        if SequencerKey::from_bytes(&secret).is_ok() {
            return secret;
        }
        secret = keccak256(secret).0;
    }
}

/// A deterministic libp2p identity (secp256k1, like op-node's), for simulated peers.
pub fn keypair(i: u64) -> libp2p_identity::Keypair {
    let mut seed = b"op-p2p peer key ".to_vec();
    seed.extend_from_slice(&i.to_be_bytes());
    let mut secret = keccak256(&seed).0;
    loop {
        if let Ok(sk) = libp2p_identity::secp256k1::SecretKey::try_from_bytes(secret) {
            return libp2p_identity::secp256k1::Keypair::from(sk).into();
        }
        secret = keccak256(secret).0;
    }
}

/// The discovery key of [`keypair`]`(i)`: the same secp256k1 secret, as op-node requires.
pub fn enr_key(i: u64) -> crate::discovery::DefaultKey {
    let kp = keypair(i)
        .try_into_secp256k1()
        .expect("keypair() is secp256k1");
    crate::discovery::DefaultKey::from_slice(&kp.secret().to_bytes()).expect("valid secret")
}

/// A signed record for simulated peer `i` of `chain_id` at `ip:port` (tcp and udp).
pub fn enr(i: u64, chain_id: u64, ip: std::net::IpAddr, port: u16) -> crate::discovery::Enr {
    crate::discovery::local_enr(&enr_key(i), 1, chain_id, Some(ip), port, port)
        .expect("small record")
}

/// The peer id of [`keypair`]`(i)`.
pub fn peer_id(i: u64) -> libp2p_identity::PeerId {
    keypair(i).public().to_peer_id()
}

/// How [`transactions_filled`] fills each transaction's calldata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Calldata {
    /// A short repeating byte pattern: snappy compresses it well (the default).
    #[default]
    Pattern,
    /// Pseudo-random bytes (keccak256 in counter mode over the nonce): incompressible, like
    /// the hashes, addresses and signed payloads of real calldata.
    Random,
}

impl Calldata {
    /// `len` bytes of calldata for the transaction with `nonce`.
    pub fn bytes(self, nonce: u64, len: usize) -> Vec<u8> {
        match self {
            Calldata::Pattern => (0..len)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(nonce as u8))
                .collect(),
            Calldata::Random => {
                let mut out = Vec::with_capacity(len.next_multiple_of(32));
                let mut block = [0u8; 16];
                block[..8].copy_from_slice(&nonce.to_be_bytes());
                let mut counter = 0u64;
                while out.len() < len {
                    block[8..].copy_from_slice(&counter.to_be_bytes());
                    out.extend_from_slice(keccak256(block).as_slice());
                    counter += 1;
                }
                out.truncate(len);
                out
            }
        }
    }
}

/// A signed EIP-1559 transfer from `key`, with `data_len` bytes of calldata, EIP-2718 encoded.
pub fn signed_transfer(key: &SequencerKey, chain_id: u64, nonce: u64, data_len: usize) -> Bytes {
    signed_transfer_with(
        key,
        chain_id,
        nonce,
        Calldata::Pattern.bytes(nonce, data_len),
    )
}

/// A signed EIP-1559 transfer from `key` carrying `input` as calldata, EIP-2718 encoded.
pub fn signed_transfer_with(
    key: &SequencerKey,
    chain_id: u64,
    nonce: u64,
    input: Vec<u8>,
) -> Bytes {
    let data_len = input.len();
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000 + 16 * data_len as u64,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000,
        to: TxKind::Call(Address::with_last_byte((nonce % 250) as u8 + 1)),
        value: U256::from(nonce + 1),
        access_list: Default::default(),
        input: input.into(),
    };
    let sig = key.sign_hash(&tx.signature_hash());
    TxEnvelope::Eip1559(tx.into_signed(sig))
        .encoded_2718()
        .into()
}

/// A deposit transaction like the L1 attributes deposit that starts every OP block.
pub fn attributes_deposit(number: u64) -> Bytes {
    let tx = TxDeposit {
        source_hash: keccak256(number.to_be_bytes()),
        from: "0xDeaDDEaDDeAdDeAdDEAdDEaddeAddEAdDEAd0001"
            .parse()
            .unwrap_or_default(),
        to: TxKind::Call(
            "0x4200000000000000000000000000000000000015"
                .parse()
                .unwrap_or_default(),
        ),
        mint: 0,
        value: U256::ZERO,
        gas_limit: 1_000_000,
        is_system_transaction: false,
        input: vec![0x44; 164].into(),
    };
    tx.encoded_2718().into()
}

/// `n` transactions: one deposit, then `n - 1` transfers from a few dev keys, each with
/// `data_len` bytes of calldata.
pub fn transactions(chain_id: u64, number: u64, n: usize, data_len: usize) -> Vec<Bytes> {
    transactions_filled(chain_id, number, n, data_len, Calldata::Pattern)
}

/// [`transactions`] with the calldata filled as `fill` says.
pub fn transactions_filled(
    chain_id: u64,
    number: u64,
    n: usize,
    data_len: usize,
    fill: Calldata,
) -> Vec<Bytes> {
    let keys: Vec<SequencerKey> = (100..104).map(dev_key).collect();
    let mut txs = Vec::with_capacity(n);
    if n > 0 {
        txs.push(attributes_deposit(number));
    }
    for i in 1..n {
        let key = &keys[i % keys.len()];
        let nonce = number * 100_000 + i as u64;
        txs.push(signed_transfer_with(
            key,
            chain_id,
            nonce,
            fill.bytes(nonce, data_len),
        ));
    }
    txs
}

/// A block under construction. Fields are public so tests can break exactly one thing.
#[derive(Debug, Clone)]
pub struct BlockBuilder {
    /// Payload version (topic) of the block.
    pub version: BlockVersion,
    /// Block number.
    pub number: u64,
    /// Block timestamp (Unix seconds).
    pub timestamp: u64,
    /// Raw EIP-2718 transactions.
    pub transactions: Vec<Bytes>,
    /// Base fee (full 256 bits, as on the wire).
    pub base_fee: U256,
    /// Extra data.
    pub extra_data: Bytes,
    /// Parent beacon block root (v3/v4).
    pub parent_beacon_root: B256,
    /// `blob_gas_used` (v3/v4; non-zero only after Jovian).
    pub blob_gas_used: u64,
    /// `excess_blob_gas` (v3/v4; must be zero).
    pub excess_blob_gas: u64,
    /// Withdrawals (v2+; must be empty).
    pub withdrawals: Vec<alloy_eips::eip4895::Withdrawal>,
    /// L2ToL1MessagePasser storage root (v4).
    pub withdrawals_root: B256,
    /// Distinguishes otherwise identical blocks at one height.
    pub salt: u8,
}

impl BlockBuilder {
    /// An empty block of `version` at `number` and `timestamp`.
    pub fn new(version: BlockVersion, number: u64, timestamp: u64) -> Self {
        Self {
            version,
            number,
            timestamp,
            transactions: Vec::new(),
            base_fee: U256::from(1_000_000u64),
            extra_data: Bytes::new(),
            parent_beacon_root: B256::repeat_byte(0xbe),
            blob_gas_used: 0,
            excess_blob_gas: 0,
            withdrawals: Vec::new(),
            withdrawals_root: B256::repeat_byte(0x57),
            salt: 0,
        }
    }

    /// Adds transactions.
    pub fn with_transactions(mut self, txs: Vec<Bytes>) -> Self {
        self.transactions = txs;
        self
    }

    /// The payload, with its real block hash, and the beacon root for v3/v4.
    pub fn build(&self) -> (OpExecutionPayload, Option<B256>) {
        let mut payload = self.build_unhashed();
        let root = self
            .version
            .has_beacon_root()
            .then_some(self.parent_beacon_root);
        let hash = compute_block_hash(&payload, root);
        payload.as_v1_mut().block_hash = hash;
        (payload, root)
    }

    /// The payload with a zero block hash.
    pub fn build_unhashed(&self) -> OpExecutionPayload {
        let v1 = ExecutionPayloadV1 {
            parent_hash: keccak256(self.number.saturating_sub(1).to_be_bytes()),
            fee_recipient: Address::with_last_byte(0x11),
            state_root: keccak256([self.salt, 1]),
            receipts_root: keccak256([self.salt, 2]),
            logs_bloom: Bloom::ZERO,
            prev_randao: keccak256([self.salt, 3]),
            block_number: self.number,
            gas_limit: 60_000_000,
            gas_used: 21_000 * self.transactions.len() as u64,
            timestamp: self.timestamp,
            extra_data: self.extra_data.clone(),
            base_fee_per_gas: self.base_fee,
            block_hash: B256::ZERO,
            transactions: self.transactions.clone(),
        };
        if self.version == BlockVersion::V1 {
            return OpExecutionPayload::V1(v1);
        }
        let v2 = ExecutionPayloadV2 {
            payload_inner: v1,
            withdrawals: self.withdrawals.clone(),
        };
        if self.version == BlockVersion::V2 {
            return OpExecutionPayload::V2(v2);
        }
        let v3 = ExecutionPayloadV3 {
            payload_inner: v2,
            blob_gas_used: self.blob_gas_used,
            excess_blob_gas: self.excess_blob_gas,
        };
        if self.version == BlockVersion::V3 {
            return OpExecutionPayload::V3(v3);
        }
        OpExecutionPayload::V4(OpExecutionPayloadV4 {
            payload_inner: v3,
            withdrawals_root: self.withdrawals_root,
        })
    }

    /// Builds, signs with `key` for `chain_id`, and encodes for the wire.
    pub fn sign(&self, key: &SequencerKey, chain_id: u64) -> Result<Vec<u8>, EncodeError> {
        let (payload, root) = self.build();
        sign_block_message(key, chain_id, &payload, root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_calldata_is_unchanged_and_random_calldata_does_not_compress() {
        // The default fill is the pattern every existing test and benchmark was built with.
        let p = Calldata::Pattern.bytes(7, 64);
        assert_eq!(p[0], 7);
        assert_eq!(p[1], 31 + 7);
        assert_eq!(
            transactions(10, 3, 5, 64),
            transactions_filled(10, 3, 5, 64, Calldata::Pattern)
        );
        let r = Calldata::Random.bytes(7, 1_000);
        assert_eq!(r.len(), 1_000);
        assert_eq!(r, Calldata::Random.bytes(7, 1_000), "deterministic");
        assert_ne!(
            r,
            Calldata::Random.bytes(8, 1_000),
            "differs per transaction"
        );
        let packed = |txs: &[Bytes]| {
            let all: Vec<u8> = txs.iter().flat_map(|t| t.iter().copied()).collect();
            (
                all.len(),
                snap::raw::Encoder::new().compress_vec(&all).unwrap().len(),
            )
        };
        let (raw_p, zip_p) = packed(&transactions(10, 3, 100, 64));
        let (raw_r, zip_r) = packed(&transactions_filled(10, 3, 100, 64, Calldata::Random));
        assert_eq!(raw_p, raw_r, "same sizes, only the calldata bytes differ");
        assert!(
            zip_p * 10 < raw_p * 6,
            "the pattern compresses: {zip_p} of {raw_p}"
        );
        assert!(
            zip_r * 10 > raw_r * 8,
            "random calldata barely does: {zip_r} of {raw_r}"
        );
    }
}
