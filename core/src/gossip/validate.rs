//! The receive-path validator (spec §5), in op-node's order. Each rule below is one step of
//! [`Validator::validate`], with its typed [`Reason`] and the verdict op-node gives:
//!
//! | # | rule | reason | verdict |
//! |---|---|---|---|
//! | 1 | snappy header unreadable, > 10 MiB or < 66 | `SnappyLengthUnreadable`, `TooLarge`, `TooSmall` | REJECT |
//! | 2 | snappy body corrupt | `SnappyCorrupt` | REJECT |
//! | 3 | no signer configured | `NoSigner` | IGNORE |
//! | 4 | v ∉ {0,1}, no recovery, or another signer | `BadRecoveryId`, `SignatureUnrecoverable`, `WrongSigner` | REJECT |
//! | 5 | SSZ in the topic's shape fails (incl. v3/v4 root) | `MissingBeaconRoot`, `SszDecode` | REJECT |
//! | 6 | timestamp < now − 60 s | `TooOld` | REJECT |
//! | 7 | timestamp > now + 5 s | `TooNew` | REJECT |
//! | 8 | recomputed block hash differs | `BlockHashMismatch` | REJECT |
//! | 9 | v2+: withdrawals non-empty | `WithdrawalsNotEmpty` | REJECT |
//! | 11 | v3+: blob gas used ≠ 0 before Jovian | `BlobGasUsedBeforeJovian` | REJECT |
//! | 12 | v3+: excess blob gas ≠ 0 | `ExcessBlobGasNonZero` | REJECT |
//! | 14 | 6 distinct blocks already at this height | `TooManyBlocksAtHeight` | REJECT |
//! | 15 | this block already accepted | `Duplicate` | IGNORE |
//! | 16 | otherwise | `Accepted` | ACCEPT |
//!
//! Rules 9–13 that are about a field being *absent* or *present* (withdrawals on v1, blob
//! fields on v1/v2, a missing root on v3/v4) are enforced by decoding in the topic's shape, so
//! they surface as rule 5.
//!
//! ⚠ The published OP spec checks "already seen" before the signature; op-node (and we) check
//! the signature right after decompression. So a badly signed duplicate is REJECT, not IGNORE,
//! and nothing unauthenticated reaches SSZ decoding or block hashing.

use std::sync::Arc;

use alloy_primitives::{Address, B256};
use op_alloy_rpc_types_engine::{OpNetworkPayloadEnvelope, PayloadHash};

use crate::fork::ForkSchedule;
use crate::gossip::check::{
    Checked, Checker, Recovered, RulesResult, Sequential, Stage, block_ref, decompress,
};
use crate::gossip::seen::{SeenBlocks, SeenCheck, default_max_heights};
use crate::gossip::signer_set::{DEFAULT_ROTATION_GRACE_MS, SignerMatch, SignerState};
use crate::gossip::topic::BlockVersion;
use crate::gossip::wire::{SignedBytes, split_signature};

/// A gossipsub validation result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Deliver and forward.
    Accept,
    /// Drop, and count it as an invalid delivery by the peer.
    Reject,
    /// Drop without penalty.
    Ignore,
}

impl Verdict {
    /// Lower-case name: `accept`, `reject`, `ignore`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::Ignore => "ignore",
        }
    }
}

/// Why a message got its verdict. One variant per rule; [`Reason::verdict`] is the only place
/// that maps reasons to verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Rule 16: valid and new.
    Accepted,
    /// Rule 1: the snappy length header is unreadable.
    SnappyLengthUnreadable,
    /// Rule 1: declared length above 10 MiB.
    TooLarge,
    /// Rule 1: declared length below 66 bytes.
    TooSmall,
    /// Rule 2: the snappy body does not decode to its declared length.
    SnappyCorrupt,
    /// Rule 3: no unsafe block signer configured.
    NoSigner,
    /// Rule 4: `v` is not 0 or 1.
    BadRecoveryId,
    /// Rule 4: no public key recovers.
    SignatureUnrecoverable,
    /// Rule 4: signed by someone other than the unsafe block signer.
    WrongSigner,
    /// Rule 5: v3/v4 signed bytes without the 32-byte beacon root.
    MissingBeaconRoot,
    /// Rule 5: the payload is not valid SSZ in the topic's shape.
    SszDecode,
    /// Rule 6: timestamp older than the window.
    TooOld,
    /// Rule 7: timestamp too far in the future.
    TooNew,
    /// Rule 8: the block hash does not match the payload.
    BlockHashMismatch,
    /// Rule 9: v2+ payload with a non-empty withdrawals list.
    WithdrawalsNotEmpty,
    /// Rule 11: non-zero `blob_gas_used` while Jovian is not active at the block's timestamp.
    BlobGasUsedBeforeJovian,
    /// Rule 12: non-zero `excess_blob_gas`.
    ExcessBlobGasNonZero,
    /// Rule 14: six distinct blocks already accepted at this height.
    TooManyBlocksAtHeight,
    /// Rule 15: this block was already accepted.
    Duplicate,
    /// The topic is not one of this chain's four block topics.
    UnknownTopic,
}

impl Reason {
    /// The verdict op-node gives for this reason.
    pub const fn verdict(self) -> Verdict {
        match self {
            Self::Accepted => Verdict::Accept,
            Self::NoSigner | Self::Duplicate => Verdict::Ignore,
            _ => Verdict::Reject,
        }
    }

    /// Stable snake_case name, for logs, metrics labels and JSON output.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::SnappyLengthUnreadable => "snappy_length_unreadable",
            Self::TooLarge => "too_large",
            Self::TooSmall => "too_small",
            Self::SnappyCorrupt => "snappy_corrupt",
            Self::NoSigner => "no_signer",
            Self::BadRecoveryId => "bad_recovery_id",
            Self::SignatureUnrecoverable => "signature_unrecoverable",
            Self::WrongSigner => "wrong_signer",
            Self::MissingBeaconRoot => "missing_beacon_root",
            Self::SszDecode => "ssz_decode",
            Self::TooOld => "too_old",
            Self::TooNew => "too_new",
            Self::BlockHashMismatch => "block_hash_mismatch",
            Self::WithdrawalsNotEmpty => "withdrawals_not_empty",
            Self::BlobGasUsedBeforeJovian => "blob_gas_used_before_jovian",
            Self::ExcessBlobGasNonZero => "excess_blob_gas_non_zero",
            Self::TooManyBlocksAtHeight => "too_many_blocks_at_height",
            Self::Duplicate => "duplicate",
            Self::UnknownTopic => "unknown_topic",
        }
    }

    /// Every reason, for exhaustive counters.
    pub const ALL: [Reason; 20] = [
        Self::Accepted,
        Self::SnappyLengthUnreadable,
        Self::TooLarge,
        Self::TooSmall,
        Self::SnappyCorrupt,
        Self::NoSigner,
        Self::BadRecoveryId,
        Self::SignatureUnrecoverable,
        Self::WrongSigner,
        Self::MissingBeaconRoot,
        Self::SszDecode,
        Self::TooOld,
        Self::TooNew,
        Self::BlockHashMismatch,
        Self::WithdrawalsNotEmpty,
        Self::BlobGasUsedBeforeJovian,
        Self::ExcessBlobGasNonZero,
        Self::TooManyBlocksAtHeight,
        Self::Duplicate,
        Self::UnknownTopic,
    ];
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Validator settings.
#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// L2 chain id (part of the signing hash).
    pub chain_id: u64,
    /// The unsafe block signer at start; the zero address IGNOREs everything until one is set.
    pub unsafe_signer: Address,
    /// Fork activation times (rule 11 consults Jovian).
    pub forks: ForkSchedule,
    /// Oldest accepted block timestamp, seconds before `now` (op-node: 60).
    pub max_past_secs: u64,
    /// Newest accepted block timestamp, seconds after `now` (op-node: 5).
    pub max_future_secs: u64,
    /// How long the previous signer stays valid after a rotation, in ms (op-node: 3 h).
    pub rotation_grace_ms: u64,
    /// Heights of accepted blocks remembered per topic (see [`crate::gossip::seen`]).
    pub seen_heights: usize,
}

impl ValidatorConfig {
    /// op-node's defaults for a chain with the given L2 block time.
    pub fn new(
        chain_id: u64,
        unsafe_signer: Address,
        forks: ForkSchedule,
        block_time_secs: u64,
    ) -> Self {
        Self {
            chain_id,
            unsafe_signer,
            forks,
            max_past_secs: 60,
            max_future_secs: 5,
            rotation_grace_ms: DEFAULT_ROTATION_GRACE_MS,
            seen_heights: default_max_heights(block_time_secs),
        }
    }
}

/// The result of validating one message.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Why (and through [`Reason::verdict`], what).
    pub reason: Reason,
    /// The decoded block, on ACCEPT only.
    pub block: Option<Arc<OpNetworkPayloadEnvelope>>,
    /// The address the signature recovers to, whenever it recovered (rule 4 and after). On
    /// [`Reason::WrongSigner`] it is the unknown signer; on later reasons one of ours.
    pub signer: Option<Address>,
    /// The hash of the signed bytes (the message's identity), whenever the signature parsed.
    pub payload_hash: Option<B256>,
    /// The block's number, hash and timestamp, whenever the payload decoded. On
    /// [`Reason::WrongSigner`] only when the caller's probe asked for the stateless checks
    /// and every one passed (see [`Validator::validate_probing`]): the block is plausible
    /// but for its signer.
    pub header: Option<BlockRef>,
}

/// The facts of a decoded block the stale-view detector needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash, as the payload states it.
    pub hash: B256,
    /// Block timestamp, Unix seconds.
    pub timestamp: u64,
}

impl Outcome {
    fn reason(reason: Reason) -> Self {
        Self {
            reason,
            block: None,
            signer: None,
            payload_hash: None,
            header: None,
        }
    }

    fn with(mut self, signer: Address, payload_hash: B256, header: Option<BlockRef>) -> Self {
        self.signer = Some(signer);
        self.payload_hash = Some(payload_hash);
        self.header = header;
        self
    }

    /// The verdict for the message.
    pub fn verdict(&self) -> Verdict {
        self.reason.verdict()
    }
}

/// The stateful validator: signer state, seen blocks and a reusable decompression buffer.
#[derive(Debug)]
pub struct Validator {
    config: ValidatorConfig,
    signer: SignerState,
    seen: SeenBlocks,
    buf: Vec<u8>,
}

impl Validator {
    /// A validator with empty seen state.
    pub fn new(config: ValidatorConfig) -> Self {
        Self {
            signer: SignerState::new(config.unsafe_signer, config.rotation_grace_ms),
            seen: SeenBlocks::new(config.seen_heights),
            config,
            buf: Vec::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ValidatorConfig {
        &self.config
    }

    /// The signer state.
    pub fn signer(&self) -> &SignerState {
        &self.signer
    }

    /// The seen-block state.
    pub fn seen(&self) -> &SeenBlocks {
        &self.seen
    }

    /// Replaces the unsafe block signer at `now_ms` (the old one enters its grace window).
    pub fn set_signer(&mut self, signer: Address, now_ms: u64) {
        self.signer.set(signer, now_ms);
    }

    /// Drops an expired previous signer; returns when the current grace ends, if any.
    pub fn expire(&mut self, now_ms: u64) -> Option<u64> {
        self.signer.expire(now_ms)
    }

    /// Records a block this node itself published, so the same block arriving from peers is a
    /// duplicate.
    pub fn record_published(&mut self, version: BlockVersion, number: u64, hash: B256) {
        self.seen.record(version, number, hash);
    }

    /// Validates one gossip `data` received on the `version` topic at `now_ms` (Unix ms).
    pub fn validate(&mut self, now_ms: u64, version: BlockVersion, data: &[u8]) -> Outcome {
        self.validate_probing(now_ms, version, data, |_, _| false)
    }

    /// As [`Validator::validate`], but a message signed by an unknown address (rule 4,
    /// [`Reason::WrongSigner`]) is offered to `probe` with that address and its payload hash;
    /// when it answers true, the stateless rules (5–12: SSZ, timestamp window, block hash,
    /// field rules) also run, and [`Outcome::header`] is set if they all pass. The verdict is
    /// `WrongSigner` either way. The probe lets the caller bound how often unauthenticated
    /// bytes reach decoding and hashing (see [`crate::gossip::stale_view`]).
    ///
    /// The composition of the two halves: [`Checker::check`] with this validator's own
    /// snapshot, run [`Sequential`]ly, then [`Validator::judge`].
    pub fn validate_probing(
        &mut self,
        now_ms: u64,
        version: BlockVersion,
        data: &[u8],
        probe: impl FnOnce(Address, &B256) -> bool,
    ) -> Outcome {
        let mut buf = std::mem::take(&mut self.buf);
        let checked = self
            .checker()
            .check(now_ms, version, data, &mut buf, &Sequential);
        let outcome = self.judge(now_ms, checked, Source::Decompressed(&buf), probe);
        // Keep the buffer for the next message unless it is oversized for ordinary blocks.
        if buf.capacity() <= 2 * 1024 * 1024 {
            self.buf = buf;
        }
        outcome
    }

    /// Rules 3–16 over an already decompressed message.
    pub fn validate_decompressed(
        &mut self,
        now_ms: u64,
        version: BlockVersion,
        raw: &[u8],
    ) -> Outcome {
        let checked = self
            .checker()
            .check_decompressed(now_ms, version, raw, &Sequential);
        self.judge(now_ms, checked, Source::Decompressed(raw), |_, _| false)
    }

    /// A snapshot of what the stateless rules need (chain id, fork schedule, timestamp
    /// window, the signer set as it is now), for [`Checker::check`] on any thread.
    pub fn checker(&self) -> Checker {
        Checker {
            chain_id: self.config.chain_id,
            forks: self.config.forks,
            max_past_secs: self.config.max_past_secs,
            max_future_secs: self.config.max_future_secs,
            signer: self.signer.clone(),
        }
    }

    /// The stateful half: judges a [`Checked`] message at `now_ms` against the live signer
    /// set and seen state (rules 3–4 re-matched, 14–16), with `probe` as in
    /// [`Validator::validate_probing`]. `source` is the message the check ran on; it is
    /// decompressed again only when the check's snapshot skipped rules that the live state
    /// needs:
    ///
    /// - the snapshot had no signer and one is configured now: the message is checked again;
    /// - the signer was unknown to the snapshot but is valid now (a rotation raced the
    ///   check): rules 5–12 run here, now that the bytes are authenticated;
    /// - the signer was valid in the snapshot but is not now (rotated out, grace over or
    ///   ended): `WrongSigner`, whatever the check found.
    ///
    /// So the verdict is the one an inline validation at `now_ms` gives, except that the
    /// timestamp window (rules 6–7) was judged at the check's `now`.
    pub fn judge(
        &mut self,
        now_ms: u64,
        checked: Checked,
        source: Source<'_>,
        probe: impl FnOnce(Address, &B256) -> bool,
    ) -> Outcome {
        let version = checked.version;
        let rec = match checked.stage {
            Stage::Undecodable(reason) => return Outcome::reason(reason),
            // Rule 3 against the live set.
            _ if self.signer.is_unconfigured(now_ms) => return Outcome::reason(Reason::NoSigner),
            Stage::NoSigner => {
                // Checked before a signer was configured: check again with the live set.
                let mut buf = Vec::new();
                let Some(raw) = source.decompressed(&mut buf) else {
                    return Outcome::reason(Reason::SnappyCorrupt);
                };
                let again = self
                    .checker()
                    .check_decompressed(now_ms, version, raw, &Sequential);
                if let Stage::NoSigner = again.stage {
                    return Outcome::reason(Reason::NoSigner);
                }
                return self.judge(now_ms, again, Source::Decompressed(raw), probe);
            }
            Stage::BadSignature(reason) => return Outcome::reason(reason),
            Stage::Recovered(rec) => rec,
        };
        let Recovered {
            signer: addr,
            payload_hash,
            signature,
            rules,
        } = *rec;
        let checker = self.checker();
        let rules_or_run = |rules: Option<RulesResult>| -> RulesResult {
            rules.unwrap_or_else(|| {
                let mut buf = Vec::new();
                match source.decompressed(&mut buf).map(split_signature) {
                    Some(Ok(SignedBytes { signed, .. })) => {
                        checker.stateless_rules(now_ms, version, signed)
                    }
                    // The check decoded the same bytes; not reached.
                    _ => Err((Reason::SszDecode, None)),
                }
            })
        };
        let signer_match = match self.signer.matches(addr, now_ms) {
            Some(m) => m,
            None => {
                // Unauthenticated: decoded and hashed only when the probe allows.
                let header = if probe(addr, &payload_hash) {
                    rules_or_run(rules)
                        .ok()
                        .map(|(payload, _)| block_ref(&payload))
                } else {
                    None
                };
                return Outcome::reason(Reason::WrongSigner).with(addr, payload_hash, header);
            }
        };
        let (payload, root) = match rules_or_run(rules) {
            Ok(x) => x,
            Err((reason, header)) => {
                return Outcome::reason(reason).with(addr, payload_hash, header);
            }
        };
        let v1 = payload.as_v1();
        // Rules 14–15: count before duplicate.
        let (number, hash) = (v1.block_number, v1.block_hash);
        match self.seen.check(version, number, &hash) {
            SeenCheck::HeightFull => {
                return Outcome::reason(Reason::TooManyBlocksAtHeight).with(
                    addr,
                    payload_hash,
                    Some(block_ref(&payload)),
                );
            }
            SeenCheck::Duplicate => {
                return Outcome::reason(Reason::Duplicate).with(
                    addr,
                    payload_hash,
                    Some(block_ref(&payload)),
                );
            }
            SeenCheck::New => {}
        }
        // Rule 16.
        self.seen.record(version, number, hash);
        if signer_match == SignerMatch::Current {
            self.signer.on_accepted_from_current();
        }
        let header = Some(block_ref(&payload));
        Outcome {
            reason: Reason::Accepted,
            signer: Some(addr),
            payload_hash: Some(payload_hash),
            header,
            block: Some(Arc::new(OpNetworkPayloadEnvelope {
                payload,
                signature,
                payload_hash: PayloadHash(payload_hash),
                parent_beacon_block_root: root,
            })),
        }
    }
}

/// The bytes a [`Checked`] message was checked from, for [`Validator::judge`] to re-read when
/// the live state needs rules the check skipped.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// The gossip `data` as received (snappy).
    Compressed(&'a [u8]),
    /// The decompressed message.
    Decompressed(&'a [u8]),
}

impl<'a> Source<'a> {
    /// The decompressed message, decompressing into `buf` if needed; `None` if it does not
    /// decompress (never for bytes a check got past rule 2 with).
    fn decompressed<'b>(self, buf: &'b mut Vec<u8>) -> Option<&'b [u8]>
    where
        'a: 'b,
    {
        match self {
            Source::Decompressed(raw) => Some(raw),
            Source::Compressed(data) => {
                decompress(data, buf).ok()?;
                Some(buf.as_slice())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::signature::{SequencerKey, sign_block_message};
    use crate::gossip::wire::{MAX_GOSSIP_SIZE, compress, decompress_into, encode_message};
    use crate::testkit::{BlockBuilder, dev_key, transactions};
    use BlockVersion::*;
    use alloy_primitives::{Bytes, U256};

    const CHAIN: u64 = 901;
    const NOW: u64 = 1_750_000_000;
    const NOW_MS: u64 = NOW * 1000 + 999; // rounding down must not matter

    fn key() -> SequencerKey {
        dev_key(0)
    }

    fn validator() -> Validator {
        Validator::new(ValidatorConfig::new(
            CHAIN,
            key().address(),
            ForkSchedule::ALL_AT_GENESIS,
            2,
        ))
    }

    fn block(v: BlockVersion, number: u64, ts: u64) -> BlockBuilder {
        BlockBuilder::new(v, number, ts).with_transactions(transactions(CHAIN, number, 4, 40))
    }

    fn reason(val: &mut Validator, v: BlockVersion, data: &[u8]) -> Reason {
        val.validate(NOW_MS, v, data).reason
    }

    fn raw(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decompress_into(data, &mut out).unwrap();
        out
    }

    #[test]
    fn sign_encode_decode_validate_round_trip_on_every_version() {
        let mut val = validator();
        for (i, v) in BlockVersion::ALL.into_iter().enumerate() {
            let b = block(v, 10 + i as u64, NOW);
            let (payload, root) = b.build();
            let data = b.sign(&key(), CHAIN).unwrap();
            let out = val.validate(NOW_MS, v, &data);
            assert_eq!(out.reason, Reason::Accepted, "{v}");
            let env = out.block.unwrap();
            assert_eq!(env.payload, payload);
            assert_eq!(env.parent_beacon_block_root, root);
            // The decoded envelope re-encodes to the same decompressed bytes.
            let again = crate::gossip::wire::encode_envelope(&env).unwrap();
            assert_eq!(raw(&again), raw(&data));
            let decoded = crate::gossip::wire::decode_envelope(v, &raw(&data)).unwrap();
            assert_eq!(decoded, *env);
        }
    }

    #[test]
    fn rule_1_size_guard() {
        let mut val = validator();
        assert_eq!(reason(&mut val, V4, &[]), Reason::SnappyLengthUnreadable);
        assert_eq!(
            reason(&mut val, V4, &[0xff; 12]),
            Reason::SnappyLengthUnreadable
        );
        assert_eq!(reason(&mut val, V4, &compress(&[1; 65])), Reason::TooSmall);
        // 4 GiB declared: refused from the header.
        assert_eq!(
            reason(&mut val, V4, &[0x80, 0x80, 0x80, 0x80, 0x10, 0, 0]),
            Reason::TooLarge
        );
    }

    #[test]
    fn exactly_10_mib_is_accepted_and_one_byte_more_is_not() {
        let mut val = validator();
        // v4 message: 65 sig + 32 root + 560 fixed + 4 tx offset + tx bytes.
        let tx_len = MAX_GOSSIP_SIZE - 65 - 32 - 560 - 4;
        let mut b = BlockBuilder::new(V4, 7, NOW);
        b.transactions = vec![Bytes::from(vec![0xee; tx_len])];
        let data = b.sign(&key(), CHAIN).unwrap();
        assert_eq!(raw(&data).len(), MAX_GOSSIP_SIZE);
        assert_eq!(reason(&mut val, V4, &data), Reason::Accepted);
        b.transactions = vec![Bytes::from(vec![0xee; tx_len + 1])];
        assert!(
            b.sign(&key(), CHAIN).is_err(),
            "our encoder refuses what peers refuse"
        );
        let (payload, root) = b.build();
        let signed = crate::gossip::wire::signed_bytes(&payload, root);
        assert!(signed.is_err());
        // Hand-assemble the oversized message anyway: the size guard refuses it.
        let mut body = root.unwrap().to_vec();
        use ssz::Encode;
        body.extend_from_slice(&payload.as_v4().unwrap().as_ssz_bytes());
        let sig = key().sign_block(CHAIN, &body);
        let mut msg = crate::gossip::wire::signature_bytes(&sig).to_vec();
        msg.extend_from_slice(&body);
        assert_eq!(msg.len(), MAX_GOSSIP_SIZE + 1);
        assert_eq!(reason(&mut val, V4, &compress(&msg)), Reason::TooLarge);
    }

    #[test]
    fn rule_2_corrupt_snappy() {
        let mut val = validator();
        let data = block(V4, 1, NOW).sign(&key(), CHAIN).unwrap();
        assert_eq!(
            reason(&mut val, V4, &data[..data.len() - 3]),
            Reason::SnappyCorrupt
        );
    }

    #[test]
    fn rule_3_no_signer_ignores_everything_after_decompression() {
        let mut val = Validator::new(ValidatorConfig::new(
            CHAIN,
            Address::ZERO,
            ForkSchedule::ALL_AT_GENESIS,
            2,
        ));
        let good = block(V4, 1, NOW).sign(&key(), CHAIN).unwrap();
        assert_eq!(reason(&mut val, V4, &good), Reason::NoSigner);
        assert_eq!(reason(&mut val, V4, &compress(&[9; 100])), Reason::NoSigner);
        assert_eq!(val.validate(NOW_MS, V4, &good).verdict(), Verdict::Ignore);
        // The size guard still runs first.
        assert_eq!(reason(&mut val, V4, &[]), Reason::SnappyLengthUnreadable);
    }

    #[test]
    fn rule_4_signature() {
        let mut val = validator();
        let b = block(V4, 1, NOW);
        assert_eq!(
            reason(&mut val, V4, &b.sign(&dev_key(9), CHAIN).unwrap()),
            Reason::WrongSigner
        );
        assert_eq!(
            reason(&mut val, V4, &b.sign(&key(), CHAIN + 1).unwrap()),
            Reason::WrongSigner
        );
        let good = b.sign(&key(), CHAIN).unwrap();
        for v in [27u8, 28, 2] {
            let mut m = raw(&good);
            m[64] = v;
            assert_eq!(
                reason(&mut val, V4, &compress(&m)),
                Reason::BadRecoveryId,
                "v = {v}"
            );
        }
        // r = 0 does not recover.
        let mut m = raw(&good);
        m[..32].fill(0);
        assert_eq!(
            reason(&mut val, V4, &compress(&m)),
            Reason::SignatureUnrecoverable
        );
        // The signature covers the beacon root: change it and the signer changes.
        let mut m = raw(&good);
        m[65] ^= 1;
        assert_eq!(reason(&mut val, V4, &compress(&m)), Reason::WrongSigner);
    }

    #[test]
    fn high_s_signatures_are_accepted() {
        let n = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let (payload, root) = block(V3, 1, NOW).build();
        let signed = crate::gossip::wire::signed_bytes(&payload, root).unwrap();
        let low = key().sign_block(CHAIN, &signed);
        let high = alloy_primitives::Signature::new(low.r(), n - low.s(), !low.v());
        let data = encode_message(&high, &signed).unwrap();
        assert_eq!(reason(&mut validator(), V3, &data), Reason::Accepted);
    }

    #[test]
    fn signature_is_checked_before_decoding() {
        // Garbage SSZ with a bad signature is WrongSigner, not SszDecode: unauthenticated bytes
        // never reach the decoder.
        let mut val = validator();
        let garbage = [0x5a; 200];
        let sig = dev_key(9).sign_block(CHAIN, &garbage);
        assert_eq!(
            reason(&mut val, V4, &encode_message(&sig, &garbage).unwrap()),
            Reason::WrongSigner
        );
        // The same garbage, properly signed, reaches the decoder and fails there.
        let sig = key().sign_block(CHAIN, &garbage);
        assert_eq!(
            reason(&mut val, V4, &encode_message(&sig, &garbage).unwrap()),
            Reason::SszDecode
        );
    }

    #[test]
    fn rule_5_payload_on_another_version_topic_is_rejected() {
        for from in BlockVersion::ALL {
            let data = block(from, 1, NOW).sign(&key(), CHAIN).unwrap();
            for to in BlockVersion::ALL {
                let r = reason(&mut validator(), to, &data);
                if from == to {
                    assert_eq!(r, Reason::Accepted);
                } else {
                    assert!(
                        matches!(r, Reason::SszDecode | Reason::MissingBeaconRoot),
                        "{from} on {to}: {r}"
                    );
                }
            }
        }
        // v3 without a root at all.
        let signed = [0u8; 20];
        let sig = key().sign_block(CHAIN, &signed);
        assert_eq!(
            reason(
                &mut validator(),
                V3,
                &encode_message(&sig, &signed).unwrap()
            ),
            Reason::MissingBeaconRoot
        );
    }

    fn signed_v1_bytes(mutate: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let (payload, _) = block(V1, 1, NOW).build();
        let mut bytes = crate::gossip::wire::signed_bytes(&payload, None).unwrap();
        mutate(&mut bytes);
        let sig = key().sign_block(CHAIN, &bytes);
        encode_message(&sig, &bytes).unwrap()
    }

    #[test]
    fn rule_5_op_node_decoder_bounds() {
        // Extra data of 33 bytes.
        let mut b = block(V1, 1, NOW);
        b.extra_data = Bytes::from(vec![1; 33]);
        assert_eq!(
            reason(&mut validator(), V1, &b.sign(&key(), CHAIN).unwrap()),
            Reason::SszDecode
        );
        b.extra_data = Bytes::from(vec![1; 32]);
        assert_eq!(
            reason(&mut validator(), V1, &b.sign(&key(), CHAIN).unwrap()),
            Reason::Accepted
        );
        // 2^20 + 1 transactions claimed by the first offset.
        let data = signed_v1_bytes(|b| {
            let txs = u32::from_le_bytes(b[504..508].try_into().unwrap()) as usize;
            b.truncate(txs);
            b.extend_from_slice(&(((1u32 << 20) + 1) * 4).to_le_bytes());
            b.resize(b.len() + 8, 0);
        });
        assert_eq!(reason(&mut validator(), V1, &data), Reason::SszDecode);
        // First tx offset not a multiple of 4.
        let data = signed_v1_bytes(|b| {
            let txs = u32::from_le_bytes(b[504..508].try_into().unwrap()) as usize;
            b[txs..txs + 4].copy_from_slice(&17u32.to_le_bytes());
        });
        assert_eq!(reason(&mut validator(), V1, &data), Reason::SszDecode);
        // Extra data offset pointing into the fixed part.
        let data = signed_v1_bytes(|b| b[436..440].copy_from_slice(&400u32.to_le_bytes()));
        assert_eq!(reason(&mut validator(), V1, &data), Reason::SszDecode);
        // 17 withdrawals on v2.
        let mut b = block(V2, 1, NOW);
        b.withdrawals = vec![Default::default(); 17];
        assert_eq!(
            reason(&mut validator(), V2, &b.sign(&key(), CHAIN).unwrap()),
            Reason::SszDecode
        );
    }

    #[test]
    fn rules_6_7_timestamp_window_edges() {
        let mut val = validator();
        let cases = [
            (NOW - 60, Reason::Accepted),
            (NOW - 61, Reason::TooOld),
            (NOW + 5, Reason::Accepted),
            (NOW + 6, Reason::TooNew),
            (0, Reason::TooOld),
            (u64::MAX, Reason::TooNew),
        ];
        for (i, (ts, want)) in cases.into_iter().enumerate() {
            let data = block(V4, 100 + i as u64, ts).sign(&key(), CHAIN).unwrap();
            assert_eq!(reason(&mut val, V4, &data), want, "timestamp {ts}");
        }
        // A clock near zero does not underflow: now = 10 s, block at 0 is inside -60 s.
        let data = block(V4, 1, 0).sign(&key(), CHAIN).unwrap();
        assert_eq!(
            validator().validate(10_000, V4, &data).reason,
            Reason::Accepted
        );
    }

    #[test]
    fn rule_8_block_hash() {
        let (mut payload, root) = block(V4, 1, NOW).build();
        payload.as_v1_mut().block_hash.0[31] ^= 0x80;
        let data = sign_block_message(&key(), CHAIN, &payload, root).unwrap();
        assert_eq!(
            reason(&mut validator(), V4, &data),
            Reason::BlockHashMismatch
        );
    }

    #[test]
    fn v4_hash_without_the_requests_hash_is_rejected() {
        // What a client that forgets Isthmus' requests_hash would compute: the V3-style header
        // with the V4 withdrawals root.
        let b = block(V4, 1, NOW);
        let (mut payload, root) = b.build();
        let v4 = payload.as_v4().unwrap().clone();
        let mut as_v3 = v4.payload_inner.clone();
        as_v3.payload_inner.withdrawals = vec![];
        // Recompute a hash over the same fields minus requests_hash by hashing as V3 and then
        // overriding the withdrawals root: build the header by hand through alloy.
        let p1 = &as_v3.payload_inner.payload_inner;
        let header = alloy_consensus::Header {
            parent_hash: p1.parent_hash,
            ommers_hash: crate::gossip::block_hash::EMPTY_OMMERS_HASH,
            beneficiary: p1.fee_recipient,
            state_root: p1.state_root,
            transactions_root: crate::gossip::block_hash::transactions_root(&p1.transactions),
            receipts_root: p1.receipts_root,
            logs_bloom: p1.logs_bloom,
            number: p1.block_number,
            gas_limit: p1.gas_limit,
            gas_used: p1.gas_used,
            timestamp: p1.timestamp,
            extra_data: p1.extra_data.clone(),
            mix_hash: p1.prev_randao,
            base_fee_per_gas: Some(p1.base_fee_per_gas.to::<u64>()),
            withdrawals_root: Some(v4.withdrawals_root),
            blob_gas_used: Some(as_v3.blob_gas_used),
            excess_blob_gas: Some(as_v3.excess_blob_gas),
            parent_beacon_block_root: root,
            requests_hash: None,
            ..Default::default()
        };
        let wrong = header.hash_slow();
        assert_ne!(wrong, payload.as_v1().block_hash);
        payload.as_v1_mut().block_hash = wrong;
        let data = sign_block_message(&key(), CHAIN, &payload, root).unwrap();
        assert_eq!(
            reason(&mut validator(), V4, &data),
            Reason::BlockHashMismatch
        );
    }

    #[test]
    fn transactions_are_never_decoded() {
        let mut b = BlockBuilder::new(V4, 1, NOW);
        b.transactions = vec![
            Bytes::from_static(&[0xff, 0x00, 0x13]),
            Bytes::new(),
            Bytes::from(vec![0xc0; 3]),
        ];
        b.base_fee = U256::MAX;
        assert_eq!(
            reason(&mut validator(), V4, &b.sign(&key(), CHAIN).unwrap()),
            Reason::Accepted
        );
    }

    #[test]
    fn rules_9_to_12_version_fields() {
        let mut b = block(V2, 1, NOW);
        b.withdrawals = vec![Default::default()];
        assert_eq!(
            reason(&mut validator(), V2, &b.sign(&key(), CHAIN).unwrap()),
            Reason::WithdrawalsNotEmpty
        );
        let mut b = block(V3, 1, NOW);
        b.excess_blob_gas = 1;
        assert_eq!(
            reason(&mut validator(), V3, &b.sign(&key(), CHAIN).unwrap()),
            Reason::ExcessBlobGasNonZero
        );
    }

    #[test]
    fn rule_11_blob_gas_used_allowed_from_jovian_only() {
        // ⚠ The spec text says blob_gas_used must be zero; op-node exempts Jovian blocks.
        let forks = ForkSchedule {
            jovian: Some(NOW),
            ..ForkSchedule::ALL_AT_GENESIS
        };
        let mut val = Validator::new(ValidatorConfig::new(CHAIN, key().address(), forks, 2));
        for (number, ts, v, want) in [
            (1, NOW - 1, V4, Reason::BlobGasUsedBeforeJovian),
            (2, NOW, V4, Reason::Accepted),
            (3, NOW - 1, V3, Reason::BlobGasUsedBeforeJovian),
            (4, NOW + 1, V3, Reason::Accepted),
        ] {
            let mut b = block(v, number, ts);
            b.blob_gas_used = 12_345;
            assert_eq!(
                reason(&mut val, v, &b.sign(&key(), CHAIN).unwrap()),
                want,
                "block {number}"
            );
        }
    }

    #[test]
    fn rules_14_15_six_per_height_count_before_duplicate() {
        let mut val = validator();
        let msgs: Vec<Vec<u8>> = (0..7u8)
            .map(|salt| {
                let mut b = block(V4, 50, NOW);
                b.salt = salt;
                b.sign(&key(), CHAIN).unwrap()
            })
            .collect();
        assert_eq!(reason(&mut val, V4, &msgs[0]), Reason::Accepted);
        assert_eq!(reason(&mut val, V4, &msgs[0]), Reason::Duplicate);
        assert_eq!(
            val.validate(NOW_MS, V4, &msgs[0]).verdict(),
            Verdict::Ignore
        );
        for m in &msgs[1..6] {
            assert_eq!(reason(&mut val, V4, m), Reason::Accepted);
        }
        assert_eq!(
            reason(&mut val, V4, &msgs[6]),
            Reason::TooManyBlocksAtHeight
        );
        assert_eq!(
            reason(&mut val, V4, &msgs[0]),
            Reason::TooManyBlocksAtHeight
        );
        // Seen state is per topic: the same height on v3 is fresh.
        let mut b = block(V3, 50, NOW);
        b.salt = 9;
        assert_eq!(
            reason(&mut val, V3, &b.sign(&key(), CHAIN).unwrap()),
            Reason::Accepted
        );
    }

    #[test]
    fn a_duplicate_with_a_bad_signature_is_rejected_not_ignored() {
        let mut val = validator();
        let good = block(V4, 60, NOW).sign(&key(), CHAIN).unwrap();
        assert_eq!(reason(&mut val, V4, &good), Reason::Accepted);
        let (payload, root) = block(V4, 60, NOW).build();
        let forged = sign_block_message(&dev_key(5), CHAIN, &payload, root).unwrap();
        assert_eq!(reason(&mut val, V4, &forged), Reason::WrongSigner);
        assert_eq!(val.validate(NOW_MS, V4, &forged).verdict(), Verdict::Reject);
    }

    #[test]
    fn signer_rotation_inside_and_after_grace() {
        let old = key();
        let new = dev_key(1);
        let mut val = validator();
        let t0 = NOW_MS;
        val.set_signer(new.address(), t0);
        // Inside the 3 h grace both are valid.
        assert_eq!(
            reason(&mut val, V4, &block(V4, 1, NOW).sign(&old, CHAIN).unwrap()),
            Reason::Accepted
        );
        // After the grace only the new one (judge blocks at a later `now`).
        let later_ms = t0 + DEFAULT_ROTATION_GRACE_MS;
        let later = later_ms / 1000;
        let r = val
            .validate(
                later_ms,
                V4,
                &block(V4, 2, later).sign(&old, CHAIN).unwrap(),
            )
            .reason;
        assert_eq!(r, Reason::WrongSigner);
        let r = val
            .validate(
                later_ms,
                V4,
                &block(V4, 3, later).sign(&new, CHAIN).unwrap(),
            )
            .reason;
        assert_eq!(r, Reason::Accepted);
    }

    #[test]
    fn signer_rotation_grace_ends_at_first_block_from_new_signer() {
        let old = key();
        let new = dev_key(1);
        let mut val = validator();
        val.set_signer(new.address(), NOW_MS);
        assert_eq!(
            reason(&mut val, V4, &block(V4, 1, NOW).sign(&old, CHAIN).unwrap()),
            Reason::Accepted
        );
        assert_eq!(
            reason(&mut val, V4, &block(V4, 2, NOW).sign(&new, CHAIN).unwrap()),
            Reason::Accepted
        );
        assert_eq!(
            reason(&mut val, V4, &block(V4, 3, NOW).sign(&old, CHAIN).unwrap()),
            Reason::WrongSigner
        );
    }

    #[test]
    fn a_rejected_block_from_the_new_signer_does_not_end_the_grace() {
        let old = key();
        let new = dev_key(1);
        let mut val = validator();
        val.set_signer(new.address(), NOW_MS);
        let stale = block(V4, 1, NOW - 100).sign(&new, CHAIN).unwrap();
        assert_eq!(reason(&mut val, V4, &stale), Reason::TooOld);
        assert_eq!(
            reason(&mut val, V4, &block(V4, 2, NOW).sign(&old, CHAIN).unwrap()),
            Reason::Accepted
        );
    }

    #[test]
    fn every_reason_has_a_distinct_name_and_the_op_node_verdict() {
        let names: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Reason::ALL.len());
        for r in Reason::ALL {
            let want = match r {
                Reason::Accepted => Verdict::Accept,
                Reason::NoSigner | Reason::Duplicate => Verdict::Ignore,
                _ => Verdict::Reject,
            };
            assert_eq!(r.verdict(), want, "{r}");
        }
    }

    // ---- the split into a stateless check and a stateful judge (issue 15) ----

    use crate::gossip::check::{Join, SplitInline};

    /// Every kind of message the tests above build, plus the op-node message-id vectors.
    fn split_corpus() -> Vec<(BlockVersion, Vec<u8>)> {
        let mut out = Vec::new();
        for v in BlockVersion::ALL {
            for to in BlockVersion::ALL {
                out.push((to, block(v, 1, NOW).sign(&key(), CHAIN).unwrap()));
            }
            out.push((v, block(v, 2, NOW).sign(&dev_key(3), CHAIN).unwrap()));
            out.push((v, block(v, 3, NOW - 100).sign(&key(), CHAIN).unwrap()));
            out.push((v, block(v, 4, NOW + 100).sign(&key(), CHAIN).unwrap()));
            let (mut payload, root) = block(v, 5, NOW).build();
            payload.as_v1_mut().block_hash.0[0] ^= 1;
            out.push((
                v,
                sign_block_message(&key(), CHAIN, &payload, root).unwrap(),
            ));
            let mut b = BlockBuilder::new(v, 6, NOW);
            b.transactions = transactions(CHAIN, 6, 40, 200);
            out.push((v, b.sign(&key(), CHAIN).unwrap()));
        }
        let mut b = block(V2, 7, NOW);
        b.withdrawals = vec![Default::default()];
        out.push((V2, b.sign(&key(), CHAIN).unwrap()));
        let mut b = block(V3, 8, NOW);
        b.excess_blob_gas = 1;
        out.push((V3, b.sign(&key(), CHAIN).unwrap()));
        let mut b = block(V4, 9, NOW);
        b.blob_gas_used = 1;
        out.push((V4, b.sign(&key(), CHAIN).unwrap()));
        let good = block(V4, 10, NOW).sign(&key(), CHAIN).unwrap();
        let mut m = raw(&good);
        m[64] = 27;
        out.push((V4, compress(&m)));
        let mut m = raw(&good);
        m[..32].fill(0);
        out.push((V4, compress(&m)));
        let garbage = [0x5a; 200];
        for k in [key(), dev_key(9)] {
            let sig = k.sign_block(CHAIN, &garbage);
            out.push((V4, encode_message(&sig, &garbage).unwrap()));
        }
        out.push((V4, vec![]));
        out.push((V4, vec![0xff; 10]));
        out.push((V4, good[..good.len() / 2].to_vec()));
        for vector in crate::op_node_vectors("gossip_message_id.json")["vectors"]
            .as_array()
            .unwrap()
        {
            let data = hex::decode(vector["data_hex"].as_str().unwrap()).unwrap();
            for v in BlockVersion::ALL {
                out.push((v, data.clone()));
            }
        }
        out
    }

    type Facts = (
        Reason,
        Option<Address>,
        Option<B256>,
        Option<BlockRef>,
        Option<Arc<OpNetworkPayloadEnvelope>>,
    );

    fn facts(o: Outcome) -> Facts {
        (o.reason, o.signer, o.payload_hash, o.header, o.block)
    }

    fn split<J: Join>(val: &mut Validator, version: BlockVersion, data: &[u8], join: &J) -> Facts {
        let checked = val
            .checker()
            .check(NOW_MS, version, data, &mut Vec::new(), join);
        facts(val.judge(NOW_MS, checked, Source::Compressed(data), |_, _| true))
    }

    #[test]
    fn the_split_gives_the_composed_verdicts_on_every_message() {
        let corpus = split_corpus();
        // Each validator sees the whole corpus twice, so duplicates and per-height counts
        // are compared too.
        let mut composed = validator();
        let mut sequential = validator();
        let mut parallel = validator();
        for (version, data) in corpus.iter().chain(corpus.iter()) {
            let want = facts(composed.validate_probing(NOW_MS, *version, data, |_, _| true));
            assert_eq!(
                split(&mut sequential, *version, data, &Sequential),
                want,
                "sequential, {version}"
            );
            assert_eq!(
                split(&mut parallel, *version, data, &SplitInline),
                want,
                "parallel, {version}"
            );
        }
    }

    #[test]
    fn unauthenticated_bytes_are_not_decoded_on_the_sequential_path() {
        let data = block(V4, 1, NOW).sign(&dev_key(3), CHAIN).unwrap();
        let c = validator()
            .checker()
            .check(NOW_MS, V4, &data, &mut Vec::new(), &Sequential);
        assert_eq!(c.reason_so_far(), Reason::WrongSigner);
        assert_eq!(c.header(), None, "not decoded");
        assert_eq!(c.signer(), Some(dev_key(3).address()));
        // The parallel path decodes it meanwhile, but the judge reports the header only when
        // the probe asks for it.
        let mut val = validator();
        let c = val
            .checker()
            .check(NOW_MS, V4, &data, &mut Vec::new(), &SplitInline);
        assert!(c.header().is_some());
        let o = val.judge(NOW_MS, c, Source::Compressed(&data), |_, _| false);
        assert_eq!((o.reason, o.header), (Reason::WrongSigner, None));
    }

    /// Checks `data` against `snapshot`, then judges it with `val` (whose state may have moved
    /// on), from the compressed bytes as a worker pool's result is.
    fn judge_later(val: &mut Validator, snapshot: &Checker, data: &[u8]) -> Reason {
        let checked = snapshot.check(NOW_MS, V4, data, &mut Vec::new(), &Sequential);
        val.judge(NOW_MS, checked, Source::Compressed(data), |_, _| false)
            .reason
    }

    #[test]
    fn a_rotation_racing_an_in_flight_check_is_judged_by_the_live_signer() {
        let (old, new) = (key(), dev_key(1));
        // The new signer's block was checked before the rotation reached the validator: the
        // check stopped at rule 4, the judge runs rules 5–12 and accepts.
        let mut val = validator();
        let before = val.checker();
        val.set_signer(new.address(), NOW_MS);
        let by_new = block(V4, 1, NOW).sign(&new, CHAIN).unwrap();
        assert_eq!(
            before
                .check(NOW_MS, V4, &by_new, &mut Vec::new(), &Sequential)
                .reason_so_far(),
            Reason::WrongSigner
        );
        assert_eq!(judge_later(&mut val, &before, &by_new), Reason::Accepted);
        // That block ended the old signer's grace: the old signer's block, checked fine
        // against the same outdated snapshot, is now WrongSigner.
        let by_old = block(V4, 2, NOW).sign(&old, CHAIN).unwrap();
        assert_eq!(
            before
                .check(NOW_MS, V4, &by_old, &mut Vec::new(), &Sequential)
                .reason_so_far(),
            Reason::Accepted
        );
        assert_eq!(judge_later(&mut val, &before, &by_old), Reason::WrongSigner);
        // Same as inline validation of the same sequence.
        let mut inline = validator();
        inline.set_signer(new.address(), NOW_MS);
        assert_eq!(reason(&mut inline, V4, &by_new), Reason::Accepted);
        assert_eq!(reason(&mut inline, V4, &by_old), Reason::WrongSigner);
    }

    #[test]
    fn a_signer_configured_or_removed_after_the_check_is_honoured() {
        let unset = || {
            Validator::new(ValidatorConfig::new(
                CHAIN,
                Address::ZERO,
                ForkSchedule::ALL_AT_GENESIS,
                2,
            ))
        };
        let data = block(V4, 1, NOW).sign(&key(), CHAIN).unwrap();
        // Checked while no signer was configured, judged after one was: checked again.
        let mut val = unset();
        let before = val.checker();
        assert_eq!(
            before
                .check(NOW_MS, V4, &data, &mut Vec::new(), &Sequential)
                .reason_so_far(),
            Reason::NoSigner
        );
        val.set_signer(key().address(), NOW_MS);
        assert_eq!(judge_later(&mut val, &before, &data), Reason::Accepted);
        // Checked with a signer, judged after it was removed and its grace passed: rule 3.
        let mut val = validator();
        let before = val.checker();
        val.set_signer(Address::ZERO, 0);
        assert!(val.signer().is_unconfigured(NOW_MS));
        assert_eq!(judge_later(&mut val, &before, &data), Reason::NoSigner);
        // A malformed signature is IGNOREd under rule 3 when the signer is gone, as inline.
        let mut m = raw(&data);
        m[64] = 27;
        assert_eq!(
            judge_later(&mut val, &before, &compress(&m)),
            Reason::NoSigner
        );
        assert_eq!(reason(&mut val, V4, &compress(&m)), Reason::NoSigner);
    }
}
