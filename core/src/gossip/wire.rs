//! The gossip wire format (spec §1.2, §1.3, §3): size guard, snappy, message id, and the signed
//! envelope `r ‖ s ‖ v ‖ [beacon root] ‖ SSZ(payload)`.
//!
//! Everything here is a pure function over bytes. Decoding never allocates more than the size
//! guard allowed, and never panics on any input.

use alloy_primitives::{B256, Signature, U256};
use alloy_rpc_types_engine::{ExecutionPayloadV1, ExecutionPayloadV2, ExecutionPayloadV3};
use op_alloy_rpc_types_engine::{
    OpExecutionPayload, OpExecutionPayloadV4, OpNetworkPayloadEnvelope, PayloadHash,
};
use sha2::{Digest, Sha256};
use ssz::{Decode, Encode};

use crate::gossip::topic::BlockVersion;

/// Largest decompressed gossip message: 10 MiB (spec §1.2).
pub const MAX_GOSSIP_SIZE: usize = 10 * 1024 * 1024;
/// Smallest decompressed gossip message: a 65-byte signature and at least one signed byte.
pub const MIN_GOSSIP_SIZE: usize = 66;
/// Length of the `r ‖ s ‖ v` signature that starts every message.
pub const SIGNATURE_LEN: usize = 65;
/// Length of the parent beacon block root that v3/v4 signed bytes start with.
pub const BEACON_ROOT_LEN: usize = 32;

/// Most extra-data bytes a payload may carry.
pub const MAX_EXTRA_DATA: usize = 32;
/// Most transactions a payload may carry (op-node's SSZ limit, 2^20).
pub const MAX_TRANSACTIONS: usize = 1 << 20;
/// Most withdrawals a payload may carry.
pub const MAX_WITHDRAWALS: usize = 16;
/// SSZ size of one withdrawal (index u64, validator u64, address 20, amount u64).
pub const WITHDRAWAL_SIZE: usize = 44;

/// The 20-byte gossipsub message id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 20]);

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MessageId({self})")
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("0x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Why the size guard refused a message (spec §5 rule 1). All are REJECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SizeError {
    /// The snappy length header (a uvarint) could not be read.
    #[error("snappy length header unreadable")]
    Unreadable,
    /// The declared decompressed length is above 10 MiB.
    #[error("declared length {0} is above the 10 MiB limit")]
    TooLarge(u64),
    /// The declared decompressed length is below 66 bytes.
    #[error("declared length {0} is below the 66-byte minimum")]
    TooSmall(u64),
}

/// Reads the decompressed length a raw snappy block declares, without touching the rest.
/// Returns `None` if the uvarint header is truncated or longer than a u64.
pub fn snappy_declared_len(data: &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for (i, &b) in data.iter().enumerate().take(10) {
        let low = u64::from(b & 0x7f);
        if i == 9 && b > 1 {
            return None; // overflows u64
        }
        value |= low << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The size guard: the declared length must be readable and within 66..=10 MiB. This runs
/// before anything is allocated for the message.
pub fn check_size(data: &[u8]) -> Result<usize, SizeError> {
    let declared = snappy_declared_len(data).ok_or(SizeError::Unreadable)?;
    if declared > MAX_GOSSIP_SIZE as u64 {
        return Err(SizeError::TooLarge(declared));
    }
    if declared < MIN_GOSSIP_SIZE as u64 {
        return Err(SizeError::TooSmall(declared));
    }
    Ok(declared as usize)
}

/// Upper bound of a raw snappy block's expansion (decompressed bytes per input byte): the
/// densest element is a 3-byte copy producing 64 bytes.
pub const MAX_SNAPPY_EXPANSION: u64 = 22;

/// Decompresses a raw snappy block into `out` (cleared first), after the size guard.
/// `out` can be reused across messages to avoid reallocating.
pub fn decompress_into(data: &[u8], out: &mut Vec<u8>) -> Result<(), DecompressError> {
    let len = check_size(data)?;
    // No snappy element expands more than 64/3 times (a 3-byte copy of 64 bytes): a body too
    // short for the declared length is corrupt, found before zero-filling `len` bytes (else a
    // 10-byte message costs a 10 MiB fill).
    if (len as u64) > (data.len() as u64).saturating_mul(MAX_SNAPPY_EXPANSION) {
        out.clear();
        return Err(DecompressError::Snappy);
    }
    out.clear();
    out.resize(len, 0);
    match snap::raw::Decoder::new().decompress(data, out) {
        Ok(n) if n == len => Ok(()),
        _ => {
            out.clear();
            Err(DecompressError::Snappy)
        }
    }
}

/// Why a gossip `data` field could not be decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecompressError {
    /// The size guard refused it.
    #[error(transparent)]
    Size(#[from] SizeError),
    /// The snappy body is corrupt (spec §5 rule 2).
    #[error("snappy decode failed")]
    Snappy,
}

/// Compresses bytes as one raw snappy block (what gossip carries).
pub fn compress(raw: &[u8]) -> Vec<u8> {
    // Compressing cannot fail for inputs below snappy's 4 GiB limit, and every caller passes at
    // most a 10 MiB message; an empty vector (which no peer accepts) stands in for the impossible.
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .unwrap_or_default()
}

/// op-node's message id (spec §3), bound to the topic:
/// `sha256(domain ‖ u64_le(len(topic)) ‖ topic ‖ body)[..20]`, where body is the decompressed
/// data and domain `01000000` if `data` is a valid snappy block of at most 10 MiB, else the raw
/// data and domain `00000000`.
///
/// ⚠ The published spec leaves the topic out; op-node (and so the network) puts it in.
pub fn message_id(topic: &str, data: &[u8]) -> MessageId {
    // A body shorter than its declared length allows cannot decompress: it gets the raw-data id
    // without first allocating (and zero-filling) up to 10 MiB for it.
    let decoded = snappy_declared_len(data)
        .filter(|&n| {
            n <= MAX_GOSSIP_SIZE as u64
                && n <= (data.len() as u64).saturating_mul(MAX_SNAPPY_EXPANSION)
        })
        .and_then(|_| snap::raw::Decoder::new().decompress_vec(data).ok());
    match decoded {
        Some(body) => message_id_of_decoded(topic, &body),
        None => message_id_with_domain(topic, [0, 0, 0, 0], data),
    }
}

/// The message id of a message whose valid snappy body is already decompressed, so the runtime
/// and the validator need not decompress twice.
pub fn message_id_of_decoded(topic: &str, decompressed: &[u8]) -> MessageId {
    message_id_with_domain(topic, [1, 0, 0, 0], decompressed)
}

fn message_id_with_domain(topic: &str, domain: [u8; 4], body: &[u8]) -> MessageId {
    let mut h = Sha256::new();
    h.update(domain);
    h.update((topic.len() as u64).to_le_bytes());
    h.update(topic.as_bytes());
    h.update(body);
    let digest = h.finalize();
    let mut id = [0u8; 20];
    id.copy_from_slice(&digest[..20]);
    MessageId(id)
}

/// Remembers the message ids of the last few distinct gossip messages.
///
/// gossipsub asks for the id of every copy it receives, before its duplicate filter, and op-node's
/// id (see [`message_id`]) costs a snappy decompression and a SHA-256 over the whole decompressed
/// block. A block reaches a node from several mesh peers within milliseconds, so every copy after
/// the first is answered here by comparing bytes with a remembered message instead.
///
/// A hit requires the same topic and byte-identical data, so the answer is always exactly
/// [`message_id`]'s. Bounded: at most [`MessageIdMemo::MAX_ENTRIES`] messages and
/// [`MessageIdMemo::MAX_BYTES`] of data in total, oldest forgotten first; a larger message is
/// never remembered. A lookup costs at most one length check per entry plus byte comparisons
/// limited to entries of the same length, so a peer cannot make it cost more than a small
/// multiple of the bytes it sent.
#[derive(Debug, Default)]
pub struct MessageIdMemo {
    entries: std::collections::VecDeque<MemoEntry>,
    bytes: usize,
    hits: u64,
}

#[derive(Debug)]
struct MemoEntry {
    topic: Box<str>,
    data: Box<[u8]>,
    id: MessageId,
}

impl MessageIdMemo {
    /// Most messages remembered: a few blocks are in flight at once, on at most four topics.
    pub const MAX_ENTRIES: usize = 8;
    /// Most data bytes remembered in total (raw gossip data, i.e. still compressed).
    pub const MAX_BYTES: usize = 4 * 1024 * 1024;

    /// An empty memo.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `data` on `topic`: remembered if these exact bytes were seen on this topic
    /// recently, else computed with [`message_id`] and remembered.
    pub fn message_id(&mut self, topic: &str, data: &[u8]) -> MessageId {
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.data.len() == data.len() && *e.topic == *topic && *e.data == *data)
        {
            self.hits += 1;
            return e.id;
        }
        let id = message_id(topic, data);
        if data.len() <= Self::MAX_BYTES {
            while self.entries.len() >= Self::MAX_ENTRIES
                || self.bytes + data.len() > Self::MAX_BYTES
            {
                match self.entries.pop_front() {
                    Some(old) => self.bytes -= old.data.len(),
                    None => break,
                }
            }
            self.bytes += data.len();
            self.entries.push_back(MemoEntry {
                topic: topic.into(),
                data: data.into(),
                id,
            });
        }
        id
    }

    /// Messages remembered now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Data bytes remembered now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Lookups answered from memory so far.
    pub fn hits(&self) -> u64 {
        self.hits
    }
}

/// Why a decompressed envelope could not be taken apart (all REJECT).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Shorter than signature + one byte.
    #[error("message shorter than 66 bytes")]
    TooShort,
    /// `v` is not 0 or 1 (27/28 are not accepted on this wire).
    #[error("signature recovery id {0} is not 0 or 1")]
    BadRecoveryId(u8),
    /// v3/v4 signed bytes shorter than the 32-byte beacon root.
    #[error("v3/v4 message is missing its parent beacon block root")]
    MissingBeaconRoot,
    /// The SSZ payload does not decode in the topic's shape.
    #[error("payload does not decode as SSZ {version}: {detail}")]
    Ssz {
        /// The shape expected from the topic.
        version: BlockVersion,
        /// What was wrong.
        detail: SszError,
    },
}

/// What was wrong with an SSZ payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SszError {
    /// Shorter than the fixed part of the version.
    #[error("{len} bytes is shorter than the {fixed}-byte fixed part")]
    TooShort {
        /// Payload length.
        len: usize,
        /// Fixed-part size of the version.
        fixed: usize,
    },
    /// `off(extra_data)` is not exactly the fixed size (a payload of another version).
    #[error("extra data offset {0} is not the fixed size of this version")]
    ExtraDataOffset(u32),
    /// Extra data longer than 32 bytes.
    #[error("extra data is {0} bytes, more than 32")]
    ExtraDataTooLong(usize),
    /// More than 2^20 transactions.
    #[error("{0} transactions, more than 2^20")]
    TooManyTransactions(usize),
    /// More than 16 withdrawals.
    #[error("{0} withdrawals, more than 16")]
    TooManyWithdrawals(usize),
    /// Any other layout error, as the SSZ decoder reports it.
    #[error("{0}")]
    Layout(String),
}

/// The signature and the bytes it covers, split from a decompressed message without copying.
#[derive(Debug, Clone, Copy)]
pub struct SignedBytes<'a> {
    /// `r ‖ s ‖ v` with `v` checked to be 0 or 1.
    pub signature: Signature,
    /// Everything after the signature: `[beacon root ‖] SSZ(payload)`. The signature covers it.
    pub signed: &'a [u8],
}

/// Splits a decompressed message into its signature and the bytes it signs.
pub fn split_signature(decompressed: &[u8]) -> Result<SignedBytes<'_>, EnvelopeError> {
    if decompressed.len() < MIN_GOSSIP_SIZE {
        return Err(EnvelopeError::TooShort);
    }
    let (sig, signed) = decompressed.split_at(SIGNATURE_LEN);
    let v = sig[64];
    if v > 1 {
        return Err(EnvelopeError::BadRecoveryId(v));
    }
    let r = U256::from_be_slice(&sig[..32]);
    let s = U256::from_be_slice(&sig[32..64]);
    Ok(SignedBytes {
        signature: Signature::new(r, s, v == 1),
        signed,
    })
}

/// The fixed-part size of the SSZ payload of `version` (508/512/528/560, spec §1.3).
pub const fn fixed_size(version: BlockVersion) -> usize {
    match version {
        BlockVersion::V1 => 508,
        BlockVersion::V2 => 512,
        BlockVersion::V3 => 528,
        BlockVersion::V4 => 560,
    }
}

const EXTRA_DATA_OFFSET_POS: usize = 436;
const TRANSACTIONS_OFFSET_POS: usize = 504;
const WITHDRAWALS_OFFSET_POS: usize = 508;

fn read_u32(b: &[u8], at: usize) -> Option<usize> {
    let bytes: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes) as usize)
}

/// op-node's bounds that the generic SSZ decoder does not know: the exact extra-data offset,
/// at most 32 extra-data bytes, at most 2^20 transactions and 16 withdrawals. Checked on the
/// offsets alone, before the decoder allocates anything per transaction.
fn check_layout(version: BlockVersion, payload: &[u8]) -> Result<(), SszError> {
    let fixed = fixed_size(version);
    if payload.len() < fixed {
        return Err(SszError::TooShort {
            len: payload.len(),
            fixed,
        });
    }
    let layout = |what: &str| SszError::Layout(what.to_string());
    let extra = read_u32(payload, EXTRA_DATA_OFFSET_POS).ok_or_else(|| layout("extra"))?;
    if extra != fixed {
        return Err(SszError::ExtraDataOffset(extra as u32));
    }
    let txs = read_u32(payload, TRANSACTIONS_OFFSET_POS).ok_or_else(|| layout("txs"))?;
    let txs_end = if version == BlockVersion::V1 {
        payload.len()
    } else {
        read_u32(payload, WITHDRAWALS_OFFSET_POS).ok_or_else(|| layout("withdrawals"))?
    };
    if txs < extra || txs_end < txs || txs_end > payload.len() {
        return Err(layout("offsets out of order or out of bounds"));
    }
    if txs - extra > MAX_EXTRA_DATA {
        return Err(SszError::ExtraDataTooLong(txs - extra));
    }
    if txs_end > txs {
        let first = read_u32(payload, txs).ok_or_else(|| layout("tx table"))?;
        let count = first / 4;
        if count > MAX_TRANSACTIONS {
            return Err(SszError::TooManyTransactions(count));
        }
    }
    if version != BlockVersion::V1 {
        let region = payload.len() - txs_end;
        let count = region / WITHDRAWAL_SIZE;
        if count > MAX_WITHDRAWALS {
            return Err(SszError::TooManyWithdrawals(count));
        }
    }
    Ok(())
}

/// Decodes an SSZ execution payload in the shape of `version` (without the beacon root),
/// applying op-node's decoder rules (spec §1.3).
pub fn decode_payload(
    version: BlockVersion,
    payload: &[u8],
) -> Result<OpExecutionPayload, SszError> {
    check_layout(version, payload)?;
    let layout = |e: ssz::DecodeError| SszError::Layout(format!("{e:?}"));
    Ok(match version {
        BlockVersion::V1 => {
            OpExecutionPayload::V1(ExecutionPayloadV1::from_ssz_bytes(payload).map_err(layout)?)
        }
        BlockVersion::V2 => {
            OpExecutionPayload::V2(ExecutionPayloadV2::from_ssz_bytes(payload).map_err(layout)?)
        }
        BlockVersion::V3 => {
            OpExecutionPayload::V3(ExecutionPayloadV3::from_ssz_bytes(payload).map_err(layout)?)
        }
        BlockVersion::V4 => {
            OpExecutionPayload::V4(OpExecutionPayloadV4::from_ssz_bytes(payload).map_err(layout)?)
        }
    })
}

/// Splits v3/v4 signed bytes into the beacon root and the SSZ payload.
pub fn split_beacon_root(
    version: BlockVersion,
    signed: &[u8],
) -> Result<(Option<B256>, &[u8]), EnvelopeError> {
    if !version.has_beacon_root() {
        return Ok((None, signed));
    }
    if signed.len() < BEACON_ROOT_LEN {
        return Err(EnvelopeError::MissingBeaconRoot);
    }
    let (root, payload) = signed.split_at(BEACON_ROOT_LEN);
    Ok((Some(B256::from_slice(root)), payload))
}

/// Decodes a whole decompressed message on a `version` topic into op-alloy's envelope type.
/// This does **not** check the signature; see [`crate::gossip::validate`] for the pipeline that does.
pub fn decode_envelope(
    version: BlockVersion,
    decompressed: &[u8],
) -> Result<OpNetworkPayloadEnvelope, EnvelopeError> {
    let SignedBytes { signature, signed } = split_signature(decompressed)?;
    let (root, payload) = split_beacon_root(version, signed)?;
    let payload = decode_payload(version, payload)
        .map_err(|detail| EnvelopeError::Ssz { version, detail })?;
    Ok(OpNetworkPayloadEnvelope {
        payload,
        signature,
        payload_hash: PayloadHash(crate::gossip::signature::payload_hash(signed)),
        parent_beacon_block_root: root,
    })
}

/// The version a payload variant is published as.
pub fn payload_version(payload: &OpExecutionPayload) -> BlockVersion {
    match payload {
        OpExecutionPayload::V1(_) => BlockVersion::V1,
        OpExecutionPayload::V2(_) => BlockVersion::V2,
        OpExecutionPayload::V3(_) => BlockVersion::V3,
        OpExecutionPayload::V4(_) => BlockVersion::V4,
    }
}

/// Why a payload could not be encoded for the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// v3/v4 payloads need a parent beacon block root; v1/v2 must not have one.
    #[error("{0} payload {1} a parent beacon block root")]
    BeaconRoot(BlockVersion, &'static str),
    /// The encoded message would exceed 10 MiB, which no peer accepts.
    #[error("encoded message is {0} bytes, above the 10 MiB limit")]
    TooLarge(usize),
}

/// The bytes a sequencer signs: `[beacon root ‖] SSZ(payload)`. Checks the root's presence
/// against the payload version instead of panicking as op-alloy's encoder does.
pub fn signed_bytes(
    payload: &OpExecutionPayload,
    parent_beacon_block_root: Option<B256>,
) -> Result<Vec<u8>, EncodeError> {
    let version = payload_version(payload);
    let mut out = Vec::new();
    match (version.has_beacon_root(), parent_beacon_block_root) {
        (true, Some(root)) => out.extend_from_slice(root.as_slice()),
        (true, None) => return Err(EncodeError::BeaconRoot(version, "needs")),
        (false, Some(_)) => return Err(EncodeError::BeaconRoot(version, "must not have")),
        (false, None) => {}
    }
    match payload {
        OpExecutionPayload::V1(p) => p.ssz_append(&mut out),
        OpExecutionPayload::V2(p) => p.ssz_append(&mut out),
        OpExecutionPayload::V3(p) => p.ssz_append(&mut out),
        OpExecutionPayload::V4(p) => p.ssz_append(&mut out),
    }
    if out.len() + SIGNATURE_LEN > MAX_GOSSIP_SIZE {
        return Err(EncodeError::TooLarge(out.len() + SIGNATURE_LEN));
    }
    Ok(out)
}

/// Serialises `r ‖ s ‖ v` with `v` ∈ {0, 1}.
pub fn signature_bytes(signature: &Signature) -> [u8; SIGNATURE_LEN] {
    let mut out = [0u8; SIGNATURE_LEN];
    out[..32].copy_from_slice(&signature.r().to_be_bytes::<32>());
    out[32..64].copy_from_slice(&signature.s().to_be_bytes::<32>());
    out[64] = u8::from(signature.v());
    out
}

/// Assembles and compresses a wire message from a signature and the bytes it signs.
pub fn encode_message(signature: &Signature, signed: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let total = SIGNATURE_LEN + signed.len();
    if total > MAX_GOSSIP_SIZE {
        return Err(EncodeError::TooLarge(total));
    }
    let mut raw = Vec::with_capacity(total);
    raw.extend_from_slice(&signature_bytes(signature));
    raw.extend_from_slice(signed);
    Ok(compress(&raw))
}

/// Encodes an already signed envelope for the wire (its signature is not re-checked).
pub fn encode_envelope(envelope: &OpNetworkPayloadEnvelope) -> Result<Vec<u8>, EncodeError> {
    let signed = signed_bytes(&envelope.payload, envelope.parent_beacon_block_root)?;
    encode_message(&envelope.signature, &signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct IdVectors {
        vectors: Vec<IdVector>,
        counter_examples_spec_formula_without_topic: Vec<CounterExample>,
    }
    #[derive(serde::Deserialize)]
    struct IdVector {
        topic: String,
        data_hex: String,
        snappy_valid: bool,
        message_id_hex: String,
    }
    #[derive(serde::Deserialize)]
    struct CounterExample {
        data_hex: String,
        message_id_hex: String,
    }

    #[test]
    fn message_id_matches_op_node_vectors() {
        let v: IdVectors =
            serde_json::from_value(crate::op_node_vectors("gossip_message_id.json")).unwrap();
        assert!(v.vectors.len() >= 6);
        for case in &v.vectors {
            let data = hex::decode(&case.data_hex).unwrap();
            assert_eq!(
                snap::raw::Decoder::new().decompress_vec(&data).is_ok(),
                case.snappy_valid,
                "{}",
                case.data_hex
            );
            let id = message_id(&case.topic, &data);
            assert_eq!(
                hex::encode(id.0),
                case.message_id_hex,
                "topic {}",
                case.topic
            );
        }
        // The spec formula without the topic gives other ids; we must not produce them.
        for case in &v.counter_examples_spec_formula_without_topic {
            let data = hex::decode(&case.data_hex).unwrap();
            assert_ne!(
                hex::encode(message_id("test", &data).0),
                case.message_id_hex
            );
        }
    }

    #[test]
    fn message_id_is_topic_bound_and_ignores_snappy_encoding() {
        let raw = vec![7u8; 300];
        let a = compress(&raw);
        // A second valid encoding of the same content: uvarint(300), then one literal of 300
        // bytes (tag 61 << 2: a two-byte little-endian length - 1 follows), no copies.
        let mut lit = vec![0xac, 0x02, 0xf4, 0x2b, 0x01];
        lit.extend_from_slice(&raw);
        assert_eq!(snap::raw::Decoder::new().decompress_vec(&lit).unwrap(), raw);
        assert_ne!(a, lit);
        assert_eq!(message_id("t", &a), message_id("t", &lit));
        assert_eq!(message_id("t", &a), message_id_of_decoded("t", &raw));
        assert_ne!(
            message_id("/optimism/10/2/blocks", &a),
            message_id("/optimism/10/3/blocks", &a)
        );
    }

    #[test]
    fn message_id_of_oversized_snappy_uses_raw_domain() {
        // Declares 10 MiB + 1: the id must hash the raw bytes under domain 0 without decoding.
        let mut data = Vec::new();
        let mut n = (MAX_GOSSIP_SIZE + 1) as u64;
        while n >= 0x80 {
            data.push((n as u8) | 0x80);
            n >>= 7;
        }
        data.push(n as u8);
        data.extend_from_slice(&[0; 8]);
        assert_eq!(
            message_id("t", &data),
            message_id_with_domain("t", [0; 4], &data)
        );
    }

    #[test]
    fn message_id_of_a_body_too_short_for_its_length_uses_raw_domain() {
        // Declares 10 MiB (allowed) in 12 bytes: no snappy block expands that much, so the id is
        // the raw-data id, as when decoding fails, found without decoding.
        let mut data = vec![0x80, 0x80, 0x80, 0x05];
        data.extend_from_slice(&[0; 8]);
        assert_eq!(snappy_declared_len(&data), Some(MAX_GOSSIP_SIZE as u64));
        assert!(snap::raw::Decoder::new().decompress_vec(&data).is_err());
        assert_eq!(
            message_id("t", &data),
            message_id_with_domain("t", [0; 4], &data)
        );
    }

    #[test]
    fn memo_answers_copies_from_memory_and_stays_bounded() {
        let mut memo = MessageIdMemo::new();
        let a = compress(&[1u8; 5000]);
        let b = compress(&[2u8; 5000]);
        assert_eq!(a.len(), b.len(), "same length, different bytes");
        assert_eq!(memo.message_id("t", &a), message_id("t", &a));
        assert_eq!(memo.message_id("t", &a), message_id("t", &a));
        assert_eq!(memo.hits(), 1);
        // Same length but other bytes, or the same bytes on another topic: not a hit.
        assert_eq!(memo.message_id("t", &b), message_id("t", &b));
        assert_eq!(memo.message_id("u", &a), message_id("u", &a));
        assert_eq!(memo.hits(), 1);
        assert_eq!(memo.len(), 3);
        // Entry bound: the oldest goes first.
        for i in 0..20u32 {
            memo.message_id("t", &compress(&i.to_le_bytes().repeat(40)));
            assert!(memo.len() <= MessageIdMemo::MAX_ENTRIES);
        }
        let hits = memo.hits();
        memo.message_id("t", &a);
        assert_eq!(memo.hits(), hits, "evicted");
        // Byte bound: big messages push out old ones; one above the bound is never kept.
        let big = vec![9u8; MessageIdMemo::MAX_BYTES / 2 + 1];
        let mut big2 = big.clone();
        big2[0] = 8;
        memo.message_id("t", &big);
        memo.message_id("t", &big2);
        assert!(memo.bytes() <= MessageIdMemo::MAX_BYTES);
        assert_eq!(memo.len(), 1, "only the newer big message fits");
        let huge = vec![7u8; MessageIdMemo::MAX_BYTES + 1];
        assert_eq!(memo.message_id("t", &huge), message_id("t", &huge));
        assert_eq!(memo.len(), 1);
        assert!(memo.bytes() <= MessageIdMemo::MAX_BYTES);
    }

    #[test]
    fn size_guard_boundaries() {
        let varint = |mut n: u64| {
            let mut v = Vec::new();
            while n >= 0x80 {
                v.push((n as u8) | 0x80);
                n >>= 7;
            }
            v.push(n as u8);
            v
        };
        assert_eq!(check_size(&[]), Err(SizeError::Unreadable));
        assert_eq!(check_size(&[0x80, 0x80]), Err(SizeError::Unreadable));
        assert_eq!(check_size(&[0xff; 11]), Err(SizeError::Unreadable));
        assert_eq!(check_size(&varint(65)), Err(SizeError::TooSmall(65)));
        assert_eq!(check_size(&varint(66)), Ok(66));
        assert_eq!(
            check_size(&varint(MAX_GOSSIP_SIZE as u64)),
            Ok(MAX_GOSSIP_SIZE)
        );
        assert_eq!(
            check_size(&varint(MAX_GOSSIP_SIZE as u64 + 1)),
            Err(SizeError::TooLarge(MAX_GOSSIP_SIZE as u64 + 1))
        );
        // 4 GiB declared: refused from the header alone (nothing is allocated).
        let four_gib = varint(4 << 30);
        assert_eq!(check_size(&four_gib), Err(SizeError::TooLarge(4 << 30)));
        let mut buf = Vec::new();
        assert!(decompress_into(&four_gib, &mut buf).is_err());
        assert_eq!(buf.capacity(), 0);
        assert_eq!(snappy_declared_len(&varint(u64::MAX)), Some(u64::MAX));
    }

    #[test]
    fn decompress_rejects_corrupt_and_short_bodies() {
        let good = compress(&[1u8; 100]);
        let mut buf = Vec::new();
        decompress_into(&good, &mut buf).unwrap();
        assert_eq!(buf, vec![1u8; 100]);
        // Declares 100 bytes but ends early.
        assert_eq!(
            decompress_into(&good[..good.len() - 1], &mut buf),
            Err(DecompressError::Snappy)
        );
        let mut bad = good.clone();
        bad.push(0);
        assert_eq!(
            decompress_into(&bad, &mut buf),
            Err(DecompressError::Snappy)
        );
    }

    #[test]
    fn signature_v_must_be_zero_or_one() {
        let mut msg = vec![0u8; 100];
        for v in [0u8, 1] {
            msg[64] = v;
            assert_eq!(split_signature(&msg).unwrap().signature.v(), v == 1);
        }
        for v in [2u8, 27, 28, 255] {
            msg[64] = v;
            assert_eq!(
                split_signature(&msg).unwrap_err(),
                EnvelopeError::BadRecoveryId(v)
            );
        }
        assert_eq!(
            split_signature(&msg[..65]).unwrap_err(),
            EnvelopeError::TooShort
        );
    }

    #[test]
    fn beacon_root_is_required_on_v3_and_v4() {
        for v in [BlockVersion::V3, BlockVersion::V4] {
            assert_eq!(
                split_beacon_root(v, &[0; 31]).unwrap_err(),
                EnvelopeError::MissingBeaconRoot
            );
            let (root, rest) = split_beacon_root(v, &[9; 40]).unwrap();
            assert_eq!(root, Some(B256::repeat_byte(9)));
            assert_eq!(rest.len(), 8);
        }
        let (root, rest) = split_beacon_root(BlockVersion::V1, &[9; 40]).unwrap();
        assert!(root.is_none());
        assert_eq!(rest.len(), 40);
    }

    #[test]
    fn a_short_body_declaring_a_large_length_is_corrupt_before_any_allocation() {
        // The most compressible input there is still decompresses: the bound is never hit.
        for raw in [vec![0u8; MAX_GOSSIP_SIZE], vec![7u8; 100_000]] {
            let data = compress(&raw);
            assert!((raw.len() as u64) <= data.len() as u64 * MAX_SNAPPY_EXPANSION);
            let mut out = Vec::new();
            decompress_into(&data, &mut out).unwrap();
            assert_eq!(out, raw);
        }
        // 5 MiB declared, 12 bytes sent: refused without growing the buffer.
        let mut bomb = vec![0x80, 0x80, 0xc0, 0x02];
        bomb.extend_from_slice(&[0; 8]);
        assert_eq!(check_size(&bomb), Ok(5 * 1024 * 1024));
        let mut out = Vec::new();
        assert_eq!(
            decompress_into(&bomb, &mut out),
            Err(DecompressError::Snappy)
        );
        assert_eq!(
            out.capacity(),
            0,
            "nothing allocated for the declared length"
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::testkit::{BlockBuilder, dev_key};
    use alloy_primitives::Bytes;
    use proptest::prelude::*;

    fn version() -> impl Strategy<Value = BlockVersion> {
        prop_oneof![
            Just(BlockVersion::V1),
            Just(BlockVersion::V2),
            Just(BlockVersion::V3),
            Just(BlockVersion::V4)
        ]
    }

    prop_compose! {
        fn block()(
            v in version(),
            number in any::<u64>(),
            timestamp in any::<u64>(),
            txs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8),
            extra in proptest::collection::vec(any::<u8>(), 0..=32),
            base_fee in any::<[u8; 32]>(),
            withdrawals in 0usize..=16,
            blob_gas_used in any::<u64>(),
            excess_blob_gas in any::<u64>(),
            root in any::<[u8; 32]>(),
            salt in any::<u8>(),
        ) -> BlockBuilder {
            let mut b = BlockBuilder::new(v, number, timestamp);
            b.transactions = txs.into_iter().map(Bytes::from).collect();
            b.extra_data = Bytes::from(extra);
            b.base_fee = U256::from_be_bytes(base_fee);
            if v != BlockVersion::V1 {
                b.withdrawals = (0..withdrawals as u64)
                    .map(|i| alloy_eips::eip4895::Withdrawal { index: i, validator_index: i * 7, address: Default::default(), amount: i * 3 })
                    .collect();
            }
            if v.has_beacon_root() {
                b.blob_gas_used = blob_gas_used;
                b.excess_blob_gas = excess_blob_gas;
                b.parent_beacon_root = B256::from(root);
            }
            b.salt = salt;
            b
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any payload of any version survives sign → encode → decode unchanged, in its own
        /// shape only.
        #[test]
        fn envelopes_round_trip_on_their_own_topic(b in block()) {
            let (payload, root) = b.build();
            let data = b.sign(&dev_key(0), 901).unwrap();
            let mut raw = Vec::new();
            decompress_into(&data, &mut raw).unwrap();
            let env = decode_envelope(b.version, &raw).unwrap();
            prop_assert_eq!(&env.payload, &payload);
            prop_assert_eq!(env.parent_beacon_block_root, root);
            let again = encode_envelope(&env).unwrap();
            let mut raw2 = Vec::new();
            decompress_into(&again, &mut raw2).unwrap();
            prop_assert_eq!(raw2, raw.clone());
            for other in BlockVersion::ALL {
                if other != b.version {
                    prop_assert!(decode_envelope(other, &raw).is_err(), "{} decoded as {}", b.version, other);
                }
            }
        }

        /// The id of a valid snappy block is the id of its content, whatever the encoding, and
        /// it is bound to the topic.
        #[test]
        fn message_ids_depend_on_content_and_topic_only(
            content in proptest::collection::vec(any::<u8>(), 0..4096),
            topic in "[a-z/0-9]{1,40}",
            other in "[a-z/0-9]{1,40}",
        ) {
            let data = compress(&content);
            prop_assert_eq!(message_id(&topic, &data), message_id_of_decoded(&topic, &content));
            if topic != other {
                prop_assert_ne!(message_id(&topic, &data), message_id(&other, &data));
            }
        }

        /// Whatever sequence of messages and topics it sees, the memo answers exactly what
        /// `message_id` computes.
        #[test]
        fn memo_always_equals_message_id(
            ops in proptest::collection::vec((0usize..12, 0usize..3, any::<bool>()), 1..80),
        ) {
            let pool: Vec<Vec<u8>> = (0..12u8)
                .map(|i| if i % 3 == 0 { vec![i; 100 + usize::from(i)] } else { compress(&[i % 4; 700]) })
                .collect();
            let topics = ["/optimism/10/3/blocks", "/optimism/10/2/blocks", "t"];
            let mut memo = MessageIdMemo::new();
            for (m, t, corrupt) in ops {
                let mut data = pool[m].clone();
                if corrupt {
                    let last = data.len() - 1;
                    data[last] ^= 1;
                }
                prop_assert_eq!(memo.message_id(topics[t], &data), message_id(topics[t], &data));
                prop_assert!(memo.len() <= MessageIdMemo::MAX_ENTRIES);
            }
        }

        /// Arbitrary bytes never panic the decoders, and what the size guard refuses never
        /// decompresses.
        #[test]
        fn arbitrary_bytes_get_errors_not_panics(data in proptest::collection::vec(any::<u8>(), 0..2048), v in version()) {
            let mut buf = Vec::new();
            let ok = decompress_into(&data, &mut buf).is_ok();
            prop_assert!(!(check_size(&data).is_err() && ok));
            let _ = decode_envelope(v, &data);
            let _ = message_id("t", &data);
        }
    }
}
