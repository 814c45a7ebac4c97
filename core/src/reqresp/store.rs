//! Recently accepted payloads by block number, and op-node's answer policy (spec §8).
//!
//! op-node serves `payload_by_number` from its execution engine. A P2P library has no engine,
//! so it serves what it has seen: the blocks gossip accepted (or the embedder inserted), kept
//! in a bounded store. Unsafe blocks can be reorged, so one height may see several blocks; the
//! store keeps the **latest accepted** for each number, as that is the node's current view.

use std::collections::BTreeMap;

use op_alloy_rpc_types_engine::{OpExecutionPayload, OpNetworkPayloadEnvelope};
use ssz::Encode;

use crate::gossip::wire::{BEACON_ROOT_LEN, MAX_GOSSIP_SIZE, payload_version};

use super::ChainClock;
use super::codec::{ResultCode, encode_envelope_response};

/// Default bound on stored blocks: 256, about 8.5 minutes of 2 s blocks.
pub const DEFAULT_MAX_ENTRIES: usize = 256;
/// Default bound on stored bytes: 64 MiB of `[root ‖] SSZ(payload)`.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Bounds of a [`PayloadStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Most blocks held (at least 1).
    pub max_entries: usize,
    /// Most bytes held, counted as the wire size `[32 ‖] SSZ(payload)` of each block. The
    /// decoded envelope in memory is of the same order.
    pub max_bytes: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Why a payload was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A v3/v4 payload without a beacon root, or a v1/v2 payload with one: it could not be
    /// served.
    #[error("payload version and beacon root do not match")]
    BeaconRootMismatch,
    /// The payload alone is larger than the byte budget or the 10 MiB response limit.
    #[error("payload of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The payload's wire size.
        size: usize,
        /// The limit it exceeds.
        limit: usize,
    },
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InsertOutcome {
    /// Stored under a number not held before; `evicted` lower blocks were dropped for room.
    Added {
        /// Blocks evicted to stay within bounds.
        evicted: usize,
    },
    /// Replaced the block held at this number (a reorg of the unsafe chain).
    Replaced {
        /// Blocks evicted to stay within bounds.
        evicted: usize,
    },
    /// The block is lower than everything held in a full store, so it was evicted at once
    /// (together with any block it replaced).
    NotKept,
}

#[derive(Debug, Clone)]
struct Stored {
    /// Shared with the delivered block: storing costs no copy of the payload.
    envelope: std::sync::Arc<OpNetworkPayloadEnvelope>,
    size: usize,
}

/// Recently accepted payloads keyed by block number.
///
/// Bound: at most `max_entries` blocks and `max_bytes` bytes (see [`StoreConfig`]). Eviction:
/// the **lowest** block number first, whenever an insert goes over either bound. Low numbers
/// are the oldest blocks, the ones an op-node client syncing up to the tip asks for least.
#[derive(Debug, Clone)]
pub struct PayloadStore {
    config: StoreConfig,
    entries: BTreeMap<u64, Stored>,
    bytes: usize,
}

/// The wire size of a payload's body `[root ‖] SSZ(payload)`, computed without encoding.
fn body_size(payload: &OpExecutionPayload) -> usize {
    let ssz = match payload {
        OpExecutionPayload::V1(p) => p.ssz_bytes_len(),
        OpExecutionPayload::V2(p) => p.ssz_bytes_len(),
        OpExecutionPayload::V3(p) => p.ssz_bytes_len(),
        OpExecutionPayload::V4(p) => p.ssz_bytes_len(),
    };
    let root = if payload_version(payload).has_beacon_root() {
        BEACON_ROOT_LEN
    } else {
        0
    };
    ssz.saturating_add(root)
}

impl PayloadStore {
    /// An empty store with these bounds (`max_entries` at least 1).
    pub fn new(config: StoreConfig) -> Self {
        Self {
            config: StoreConfig {
                max_entries: config.max_entries.max(1),
                ..config
            },
            entries: BTreeMap::new(),
            bytes: 0,
        }
    }

    /// The bounds in force.
    pub fn config(&self) -> StoreConfig {
        self.config
    }

    /// Stores an accepted payload under its block number, replacing the block held there, then
    /// evicts the lowest numbers until both bounds hold.
    pub fn insert(
        &mut self,
        envelope: impl Into<std::sync::Arc<OpNetworkPayloadEnvelope>>,
    ) -> Result<InsertOutcome, StoreError> {
        let envelope = envelope.into();
        let version = payload_version(&envelope.payload);
        if version.has_beacon_root() != envelope.parent_beacon_block_root.is_some() {
            return Err(StoreError::BeaconRootMismatch);
        }
        let size = body_size(&envelope.payload);
        let limit = self.config.max_bytes.min(MAX_GOSSIP_SIZE);
        if size > limit {
            return Err(StoreError::TooLarge { size, limit });
        }
        let number = envelope.payload.as_v1().block_number;
        let replaced = match self.entries.insert(number, Stored { envelope, size }) {
            Some(old) => {
                self.bytes -= old.size;
                true
            }
            None => false,
        };
        self.bytes += size;
        let mut evicted = 0;
        let mut kept = true;
        while self.entries.len() > self.config.max_entries || self.bytes > self.config.max_bytes {
            let Some((n, old)) = self.entries.pop_first() else {
                break;
            };
            self.bytes -= old.size;
            if n == number {
                kept = false;
            } else {
                evicted += 1;
            }
        }
        tracing::trace!(
            number,
            size,
            replaced,
            evicted,
            kept,
            "reqresp store insert"
        );
        Ok(match (kept, replaced) {
            (false, _) => InsertOutcome::NotKept,
            (true, true) => InsertOutcome::Replaced { evicted },
            (true, false) => InsertOutcome::Added { evicted },
        })
    }

    /// The block held at `number`, if any.
    pub fn get(&self, number: u64) -> Option<&OpNetworkPayloadEnvelope> {
        self.entries.get(&number).map(|s| &*s.envelope)
    }

    /// Blocks held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held, as counted against `max_bytes`.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The lowest and highest numbers held.
    pub fn range(&self) -> Option<(u64, u64)> {
        let lo = self.entries.first_key_value()?.0;
        let hi = self.entries.last_key_value()?.0;
        Some((*lo, *hi))
    }

    /// op-node's answer to a request for `number` at `now` (Unix ms): the block, or the result
    /// code to send. See [`check_request`] for the range rule.
    pub fn lookup(
        &self,
        clock: &ChainClock,
        number: u64,
        now: u64,
    ) -> Result<&OpNetworkPayloadEnvelope, ResultCode> {
        check_request(clock, number, now)?;
        self.get(number).ok_or(ResultCode::NotFound)
    }

    /// The whole reply to a request for `number` at `now` (Unix ms): a success response, or the
    /// single result byte (1 not found, 2 out of range, 3 if the block cannot be encoded).
    pub fn respond(&self, clock: &ChainClock, number: u64, now: u64) -> Vec<u8> {
        match self.lookup(clock, number, now) {
            Ok(envelope) => encode_envelope_response(envelope).unwrap_or_else(|e| {
                tracing::warn!(number, error = %e, "cannot encode stored payload");
                ResultCode::UnknownError.error_reply().to_vec()
            }),
            Err(code) => {
                tracing::debug!(number, code = code.as_byte(), "payload_by_number refused");
                code.error_reply().to_vec()
            }
        }
    }
}

impl Default for PayloadStore {
    fn default() -> Self {
        Self::new(StoreConfig::default())
    }
}

/// op-node's range rule: a request below the L2 genesis number, or above the wall-clock head
/// `genesis_number + (now_secs - genesis_time) / block_time`, is invalid (2). Before genesis
/// time (or with a zero block time) no head exists and every request is invalid. `now` is Unix
/// ms; like op-node's `time.Now().Unix()`, it is rounded down to seconds.
pub fn check_request(clock: &ChainClock, number: u64, now: u64) -> Result<(), ResultCode> {
    if number < clock.genesis_number {
        return Err(ResultCode::InvalidRequest);
    }
    match clock.head(now / 1000) {
        Some(head) if number <= head => Ok(()),
        _ => Err(ResultCode::InvalidRequest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::ForkSchedule;
    use crate::gossip::signature::payload_hash;
    use crate::gossip::topic::BlockVersion;
    use crate::gossip::wire::signed_bytes;
    use crate::reqresp::codec::{VERSION_ENVELOPE, VERSION_PAYLOAD, decode_response};
    use crate::testkit::{BlockBuilder, dev_key, transactions};
    use alloy_primitives::B256;
    use op_alloy_rpc_types_engine::PayloadHash;

    const CHAIN: u64 = 901;
    /// Genesis block 1000 at t=10_000 s, 2 s blocks.
    const CLOCK: ChainClock = ChainClock {
        genesis_number: 1000,
        genesis_time: 10_000,
        block_time: 2,
    };

    fn envelope_of(b: &BlockBuilder) -> OpNetworkPayloadEnvelope {
        let (payload, root) = b.build();
        let signed = signed_bytes(&payload, root).unwrap();
        OpNetworkPayloadEnvelope {
            signature: dev_key(1).sign_block(CHAIN, &signed),
            payload_hash: PayloadHash(payload_hash(&signed)),
            payload,
            parent_beacon_block_root: root,
        }
    }

    fn envelope(version: BlockVersion, number: u64, txs: usize) -> OpNetworkPayloadEnvelope {
        envelope_of(
            &BlockBuilder::new(version, number, 10_000 + 2 * (number - 1000))
                .with_transactions(transactions(CHAIN, number, txs, 100)),
        )
    }

    fn size_of(e: &OpNetworkPayloadEnvelope) -> usize {
        signed_bytes(&e.payload, e.parent_beacon_block_root)
            .unwrap()
            .len()
    }

    #[test]
    fn byte_count_is_the_wire_body_size() {
        for v in BlockVersion::ALL {
            let e = envelope(v, 1001, 3);
            assert_eq!(body_size(&e.payload), size_of(&e));
        }
    }

    #[test]
    fn count_bound_evicts_lowest_first() {
        let mut s = PayloadStore::new(StoreConfig {
            max_entries: 3,
            max_bytes: usize::MAX,
        });
        for n in [1005, 1001, 1003] {
            assert_eq!(
                s.insert(envelope(BlockVersion::V3, n, 1)),
                Ok(InsertOutcome::Added { evicted: 0 })
            );
        }
        assert_eq!(
            s.insert(envelope(BlockVersion::V3, 1004, 1)),
            Ok(InsertOutcome::Added { evicted: 1 })
        );
        assert_eq!(s.len(), 3);
        assert_eq!(s.range(), Some((1003, 1005)));
        assert!(s.get(1001).is_none());
        // Lower than everything in a full store: not kept, nothing else lost.
        assert_eq!(
            s.insert(envelope(BlockVersion::V3, 1002, 1)),
            Ok(InsertOutcome::NotKept)
        );
        assert_eq!(s.range(), Some((1003, 1005)));
        // Many inserts never exceed the bound.
        for n in 1006..1100 {
            s.insert(envelope(BlockVersion::V1, n, 0)).unwrap();
            assert!(s.len() <= 3);
        }
        assert_eq!(s.range(), Some((1097, 1099)));
    }

    #[test]
    fn byte_bound_evicts_lowest_first_and_tracks_bytes() {
        let a = envelope(BlockVersion::V4, 1001, 4);
        let b = envelope(BlockVersion::V4, 1002, 4);
        let c = envelope(BlockVersion::V4, 1003, 4);
        let (sa, sb, sc) = (size_of(&a), size_of(&b), size_of(&c));
        let mut s = PayloadStore::new(StoreConfig {
            max_entries: 100,
            max_bytes: sa + sb + sc - 1,
        });
        s.insert(a).unwrap();
        s.insert(b).unwrap();
        assert_eq!(s.bytes(), sa + sb);
        assert_eq!(s.insert(c), Ok(InsertOutcome::Added { evicted: 1 }));
        assert_eq!(s.bytes(), sb + sc);
        assert_eq!(s.range(), Some((1002, 1003)));
        assert!(s.bytes() <= s.config().max_bytes);
        // A single payload above the budget is refused outright, leaving the store as it was.
        let big = envelope(BlockVersion::V4, 1010, 40);
        assert!(size_of(&big) > s.config().max_bytes);
        assert!(matches!(s.insert(big), Err(StoreError::TooLarge { .. })));
        assert_eq!(s.range(), Some((1002, 1003)));
        assert_eq!(s.bytes(), sb + sc);
    }

    #[test]
    fn same_height_keeps_the_latest_accepted() {
        let mut s = PayloadStore::default();
        let first = BlockBuilder::new(BlockVersion::V3, 1001, 10_002);
        let mut second = first.clone();
        second.salt = 1;
        let (e1, e2) = (envelope_of(&first), envelope_of(&second));
        assert_ne!(e1.payload.block_hash(), e2.payload.block_hash());
        s.insert(e1).unwrap();
        assert_eq!(
            s.insert(e2.clone()),
            Ok(InsertOutcome::Replaced { evicted: 0 })
        );
        assert_eq!(s.len(), 1);
        assert_eq!(s.get(1001), Some(&e2));
        assert_eq!(s.bytes(), size_of(&e2));
    }

    #[test]
    fn root_must_match_version() {
        let mut s = PayloadStore::default();
        let mut e = envelope(BlockVersion::V3, 1001, 0);
        e.parent_beacon_block_root = None;
        assert_eq!(s.insert(e), Err(StoreError::BeaconRootMismatch));
        let mut e = envelope(BlockVersion::V2, 1001, 0);
        e.parent_beacon_block_root = Some(B256::ZERO);
        assert_eq!(s.insert(e), Err(StoreError::BeaconRootMismatch));
        assert!(s.is_empty());
    }

    #[test]
    fn range_rule_of_op_node() {
        // At t = 10_100.999 s the head is 1000 + 100 / 2 = 1050.
        let now = 10_100_999;
        assert_eq!(
            check_request(&CLOCK, 999, now),
            Err(ResultCode::InvalidRequest)
        );
        assert_eq!(check_request(&CLOCK, 1000, now), Ok(()));
        assert_eq!(check_request(&CLOCK, 1050, now), Ok(()));
        assert_eq!(
            check_request(&CLOCK, 1051, now),
            Err(ResultCode::InvalidRequest)
        );
        assert_eq!(check_request(&CLOCK, 1051, 10_102_000), Ok(()));
        // Genesis in the future: nothing is valid, not even the genesis block.
        assert_eq!(
            check_request(&CLOCK, 1000, 9_999_999),
            Err(ResultCode::InvalidRequest)
        );
        assert_eq!(
            check_request(&CLOCK, 1000, 0),
            Err(ResultCode::InvalidRequest)
        );
        assert_eq!(
            check_request(&CLOCK, u64::MAX, u64::MAX),
            Err(ResultCode::InvalidRequest)
        );
    }

    #[test]
    fn respond_answers_like_op_node() {
        let mut s = PayloadStore::default();
        let pre = envelope(BlockVersion::V2, 1001, 2);
        let eco = envelope(BlockVersion::V3, 1002, 2);
        let ist = envelope(BlockVersion::V4, 1003, 2);
        for e in [&pre, &eco, &ist] {
            s.insert(e.clone()).unwrap();
        }
        let now = 20_000_000;
        assert_eq!(s.respond(&CLOCK, 999, now), vec![2]);
        assert_eq!(s.respond(&CLOCK, 1004, now), vec![1]);
        assert_eq!(s.respond(&CLOCK, 1003, 10_005_999), vec![2]); // head is 1002
        assert_eq!(s.lookup(&CLOCK, 1002, 10_005_999), Ok(&eco));

        let forks = ForkSchedule {
            canyon: Some(0),
            ecotone: Some(10_004),
            isthmus: Some(10_006),
            jovian: None,
        };
        for (e, version) in [
            (&pre, VERSION_PAYLOAD),
            (&eco, VERSION_ENVELOPE),
            (&ist, VERSION_ENVELOPE),
        ] {
            let n = e.payload.block_number();
            let wire = s.respond(&CLOCK, n, now);
            assert_eq!(wire[1..5], version.to_le_bytes());
            let got = decode_response(&wire[..], n, &CLOCK, &forks).unwrap();
            assert_eq!(got.payload, e.payload);
            assert_eq!(got.parent_beacon_block_root, e.parent_beacon_block_root);
        }
    }
}
