//! The `payload_by_number` byte formats (spec §8, payload layout §1.2/§1.3).
//!
//! ```text
//! client -> server : block number, u64 little-endian (8 bytes), then half-close
//! server -> client : result u8
//!                    result 0: version u32 LE, then a snappy FRAMED stream (to EOF) of
//!                       version 0: SSZ(ExecutionPayload)                   pre-Ecotone
//!                       version 1: beacon_root(32) ‖ SSZ(ExecutionPayload)  Ecotone and later
//!                    otherwise nothing more
//! ```
//!
//! No signature travels here: the client checks the block hash and links blocks by parent hash.

use std::io::{self, Read, Write};

use alloy_primitives::B256;
use op_alloy_rpc_types_engine::{OpExecutionPayload, OpNetworkPayloadEnvelope};

use crate::fork::ForkSchedule;
use crate::gossip::block_hash::compute_block_hash;
use crate::gossip::topic::BlockVersion;
use crate::gossip::wire::{
    EncodeError, SszError, decode_payload, payload_version, signed_bytes, split_beacon_root,
};

use super::ChainClock;

/// Length of a request: one u64 little-endian block number.
pub const REQUEST_LEN: usize = 8;

/// Most bytes a response may take, both raw on the stream and decompressed: 10 MiB, the gossip
/// limit (op-node caps both with `io.LimitReader(…, maxGossipSize)`).
pub const MAX_RESPONSE_SIZE: usize = 10 * 1024 * 1024;

/// Response version 0: the body is `SSZ(ExecutionPayload)` (v1 before Canyon, v2 after).
pub const VERSION_PAYLOAD: u32 = 0;
/// Response version 1: the body is `beacon_root ‖ SSZ(ExecutionPayload)` (v3 or v4).
///
/// ⚠ op-node sends version 1 for Ecotone **and** for Isthmus/Jovian blocks; the spec's
/// "version 2" for Isthmus is not implemented there and op-node's client refuses it. The
/// client tells v3 from v4 by its own fork schedule.
pub const VERSION_ENVELOPE: u32 = 1;

/// The first bytes of every snappy framed stream: the stream identifier chunk.
pub const SNAPPY_STREAM_IDENTIFIER: [u8; 10] =
    [0xff, 0x06, 0x00, 0x00, b's', b'N', b'a', b'P', b'p', b'Y'];

/// The result byte that starts every response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ResultCode {
    /// 0: a version and a payload follow.
    Success = 0,
    /// 1: the server does not have the block.
    NotFound = 1,
    /// 2: the request is malformed or out of range (below genesis, above the wall-clock head).
    InvalidRequest = 2,
    /// 3: any other failure, including giving up on rate limits.
    UnknownError = 3,
}

impl ResultCode {
    /// The byte on the wire.
    pub const fn as_byte(self) -> u8 {
        self as u8
    }

    /// The code for a byte, if it is one of the four defined (4..=127 are undefined, 128..=255
    /// reserved).
    pub const fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Success),
            1 => Some(Self::NotFound),
            2 => Some(Self::InvalidRequest),
            3 => Some(Self::UnknownError),
            _ => None,
        }
    }

    /// Whether a byte is in the range the protocol reserves (≥ 128).
    pub const fn is_reserved(b: u8) -> bool {
        b >= 128
    }

    /// The whole reply for a failure: the single result byte, nothing after it.
    pub const fn error_reply(self) -> [u8; 1] {
        [self as u8]
    }
}

/// Why a request is not a valid `payload_by_number` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The client sent other than exactly 8 bytes before half-closing. Answer
    /// [`ResultCode::InvalidRequest`].
    #[error("request is {0} bytes, expected exactly 8")]
    WrongLength(usize),
}

impl RequestError {
    /// The result code the server answers with.
    pub const fn result_code(&self) -> ResultCode {
        ResultCode::InvalidRequest
    }
}

/// Encodes a request for block `number`.
pub const fn encode_request(number: u64) -> [u8; REQUEST_LEN] {
    number.to_le_bytes()
}

/// Decodes the bytes a client sent before half-closing. A runtime reads at most
/// `REQUEST_LEN + 1` bytes, so a longer request shows up here as 9 bytes.
///
/// ⚠ op-node's server reads exactly 8 bytes and then closes its read side, so it ignores extra
/// bytes and answers 3 (not 2) to a short request. Both are failures to an op-node client; we
/// answer 2 for any length but 8, as the request is malformed.
pub fn decode_request(bytes: &[u8]) -> Result<u64, RequestError> {
    let arr: [u8; REQUEST_LEN] = bytes
        .try_into()
        .map_err(|_| RequestError::WrongLength(bytes.len()))?;
    Ok(u64::from_le_bytes(arr))
}

/// The response version a payload of `version` is sent as: 0 for v1/v2, 1 for v3/v4.
pub const fn response_version(version: BlockVersion) -> u32 {
    if version.has_beacon_root() {
        VERSION_ENVELOPE
    } else {
        VERSION_PAYLOAD
    }
}

/// The 5 bytes before a success body: result 0, then `version` as u32 little-endian.
pub const fn success_header(version: u32) -> [u8; 5] {
    let v = version.to_le_bytes();
    [0, v[0], v[1], v[2], v[3]]
}

/// Why a success response could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseEncodeError {
    /// The payload and beacon root do not match, or the payload is too large to send.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The snappy frame encoder failed (it writes to memory, so this is not expected).
    #[error("snappy framing failed: {0}")]
    Compress(String),
}

/// Encodes a whole success response: `00 ‖ version u32 LE ‖ snappy-framed([root ‖] SSZ)`.
/// The version follows the payload's shape (pre-Ecotone v1/v2 → 0, v3/v4 → 1); see
/// [`VERSION_ENVELOPE`] for why Isthmus is version 1 too.
///
/// op-node picks the version by `IsEcotone(timestamp)`; a payload accepted from gossip has the
/// shape of its fork, so the two agree for every block the store holds.
pub fn encode_response(
    payload: &OpExecutionPayload,
    parent_beacon_block_root: Option<B256>,
) -> Result<Vec<u8>, ResponseEncodeError> {
    let body = signed_bytes(payload, parent_beacon_block_root)?;
    let version = response_version(payload_version(payload));
    let mut out = Vec::with_capacity(5 + SNAPPY_STREAM_IDENTIFIER.len() + body.len() / 2 + 64);
    out.extend_from_slice(&success_header(version));
    let mut enc = snap::write::FrameEncoder::new(out);
    enc.write_all(&body)
        .map_err(|e| ResponseEncodeError::Compress(e.to_string()))?;
    enc.into_inner()
        .map_err(|e| ResponseEncodeError::Compress(e.error().to_string()))
}

/// [`encode_response`] for a stored gossip envelope (its signature is not sent).
pub fn encode_envelope_response(
    envelope: &OpNetworkPayloadEnvelope,
) -> Result<Vec<u8>, ResponseEncodeError> {
    encode_response(&envelope.payload, envelope.parent_beacon_block_root)
}

/// A payload received over req/resp: no signature, just the payload and (v3/v4) its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPayload {
    /// The execution payload, in the shape the client's fork schedule gives the block.
    pub payload: OpExecutionPayload,
    /// The parent beacon block root (response version 1).
    pub parent_beacon_block_root: Option<B256>,
}

/// Why a response was refused by [`decode_response`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The stream ended inside the 1-byte result or the 4-byte version.
    #[error("response ended inside its header")]
    TruncatedHeader,
    /// The server answered with a non-zero result byte (see [`ResultCode::from_byte`]).
    #[error("server answered result code {0}")]
    Remote(u8),
    /// A version other than 0 or 1 (op-node refuses "version 2" too).
    #[error("unknown response version {0}")]
    UnknownVersion(u32),
    /// More than 10 MiB on the stream.
    #[error("response is larger than 10 MiB on the wire")]
    RawTooLarge,
    /// More than 10 MiB after decompression.
    #[error("response decompresses to more than 10 MiB")]
    DecompressedTooLarge,
    /// The snappy framed stream is corrupt.
    #[error("snappy framed stream invalid: {0}")]
    Snappy(String),
    /// The underlying reader failed.
    #[error("reading the response failed: {0:?}")]
    Io(io::ErrorKind),
    /// The requested number is below genesis, so no fork (and shape) can be assigned.
    #[error("block {0} is below the chain's genesis")]
    BeforeGenesis(u64),
    /// A version 1 body shorter than the 32-byte beacon root.
    #[error("version 1 body is missing its beacon root")]
    MissingBeaconRoot,
    /// The payload does not decode in the shape the fork schedule gives the block.
    #[error("payload does not decode as SSZ {version}: {detail}")]
    Ssz {
        /// The shape expected from the fork schedule.
        version: BlockVersion,
        /// What was wrong.
        detail: SszError,
    },
    /// The payload is for another block than the one requested.
    #[error("asked for block {expected}, got block {got}")]
    WrongNumber {
        /// The requested number.
        expected: u64,
        /// The number in the payload.
        got: u64,
    },
    /// The payload's `block_hash` is not the hash of its contents.
    #[error("block hash {claimed} does not match the computed {computed}")]
    BadBlockHash {
        /// The hash the payload claims.
        claimed: B256,
        /// The hash recomputed from the payload.
        computed: B256,
    },
}

fn io_error(e: io::Error) -> ResponseError {
    if e.get_ref().is_some_and(|inner| inner.is::<snap::Error>()) {
        ResponseError::Snappy(e.to_string())
    } else if e.kind() == io::ErrorKind::UnexpectedEof {
        // The frame decoder reports a stream cut inside a chunk this way.
        ResponseError::Snappy("stream ends inside a chunk".into())
    } else {
        ResponseError::Io(e.kind())
    }
}

/// Reads and checks one whole response for block `expected_number`, as an op-node client does:
/// at most 10 MiB raw and 10 MiB decompressed, checked while reading (a peer claiming more
/// makes it read at most 10 MiB + 1 byte and buffer at most 10 MiB + 1 byte of output), then the SSZ shape from the client's own fork schedule at the
/// block's timestamp: version 0 is v1 before Canyon and v2 after; version 1 is v3 before
/// Isthmus and v4 after. The block number and block hash are verified too; linking to a trusted
/// hash is the caller's.
pub fn decode_response<R: Read>(
    mut reader: R,
    expected_number: u64,
    clock: &ChainClock,
    forks: &ForkSchedule,
) -> Result<SyncPayload, ResponseError> {
    let mut raw = (&mut reader).take(MAX_RESPONSE_SIZE as u64);
    let mut header = [0u8; 5];
    read_header(&mut raw, &mut header[..1])?;
    if header[0] != ResultCode::Success.as_byte() {
        return Err(ResponseError::Remote(header[0]));
    }
    read_header(&mut raw, &mut header[1..])?;
    let version = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
    if version != VERSION_PAYLOAD && version != VERSION_ENVELOPE {
        return Err(ResponseError::UnknownVersion(version));
    }
    let timestamp = clock
        .timestamp_for_block(expected_number)
        .ok_or(ResponseError::BeforeGenesis(expected_number))?;

    let mut body = Vec::new();
    let read = snap::read::FrameDecoder::new(&mut raw)
        .take(MAX_RESPONSE_SIZE as u64 + 1)
        .read_to_end(&mut body);
    if body.len() > MAX_RESPONSE_SIZE {
        return Err(ResponseError::DecompressedTooLarge);
    }
    if raw.limit() == 0 {
        // The 10 MiB raw budget is used up. A stream cut there (a decode error) or one that
        // holds anything more is too large; one ending exactly at 10 MiB is fine.
        let mut one = [0u8; 1];
        if read.is_err() || reader.read(&mut one).map_err(io_error)? > 0 {
            return Err(ResponseError::RawTooLarge);
        }
    }
    read.map_err(io_error)?;

    let shape = match (version, forks.publish_version(timestamp)) {
        (VERSION_PAYLOAD, BlockVersion::V1) => BlockVersion::V1,
        (VERSION_PAYLOAD, _) => BlockVersion::V2,
        (_, BlockVersion::V4) => BlockVersion::V4,
        _ => BlockVersion::V3,
    };
    // Splitting fails only when the body is shorter than the root.
    let (root, ssz) =
        split_beacon_root(shape, &body).map_err(|_| ResponseError::MissingBeaconRoot)?;
    let payload = decode_payload(shape, ssz).map_err(|detail| ResponseError::Ssz {
        version: shape,
        detail,
    })?;
    let got = payload.as_v1().block_number;
    if got != expected_number {
        return Err(ResponseError::WrongNumber {
            expected: expected_number,
            got,
        });
    }
    let claimed = payload.as_v1().block_hash;
    let computed = compute_block_hash(&payload, root);
    if claimed != computed {
        return Err(ResponseError::BadBlockHash { claimed, computed });
    }
    Ok(SyncPayload {
        payload,
        parent_beacon_block_root: root,
    })
}

fn read_header<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<(), ResponseError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ResponseError::TruncatedHeader,
        kind => ResponseError::Io(kind),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{BlockBuilder, transactions};

    const CHAIN: u64 = 901;

    fn header_hex(v: &serde_json::Value, key: &str) -> Vec<u8> {
        hex::decode(v[key].as_str().unwrap()).unwrap()
    }

    /// Genesis block 0 at t=0 with 1 s blocks: block n has timestamp n.
    const CLOCK: ChainClock = ChainClock {
        genesis_number: 0,
        genesis_time: 0,
        block_time: 1,
    };
    const FORKS: ForkSchedule = ForkSchedule {
        canyon: Some(100),
        ecotone: Some(200),
        isthmus: Some(300),
        jovian: Some(400),
    };

    fn block(version: BlockVersion, number: u64) -> (OpExecutionPayload, Option<B256>) {
        BlockBuilder::new(version, number, number)
            .with_transactions(transactions(CHAIN, number, 3, 40))
            .build()
    }

    #[test]
    fn request_is_exactly_eight_le_bytes() {
        let v = super::super::tests::vectors();
        assert_eq!(
            encode_request(100).to_vec(),
            header_hex(&v, "request_block_100_hex")
        );
        assert_eq!(
            decode_request(&header_hex(&v, "request_block_100_hex")),
            Ok(100)
        );
        assert_eq!(decode_request(&[0xff; 8]), Ok(u64::MAX));
        assert_eq!(decode_request(&[1; 7]), Err(RequestError::WrongLength(7)));
        assert_eq!(decode_request(&[1; 9]), Err(RequestError::WrongLength(9)));
        assert_eq!(decode_request(&[]), Err(RequestError::WrongLength(0)));
        assert_eq!(
            RequestError::WrongLength(9).result_code(),
            ResultCode::InvalidRequest
        );
    }

    #[test]
    fn header_and_error_bytes_match_op_node_vectors() {
        let v = super::super::tests::vectors();
        assert_eq!(
            success_header(VERSION_PAYLOAD).to_vec(),
            header_hex(&v, "response_success_header_pre_ecotone_hex")
        );
        assert_eq!(
            success_header(VERSION_ENVELOPE).to_vec(),
            header_hex(&v, "response_success_header_ecotone_and_later_hex")
        );
        assert_eq!(
            ResultCode::NotFound.error_reply().to_vec(),
            header_hex(&v, "response_not_found_hex")
        );
        assert_eq!(
            ResultCode::InvalidRequest.error_reply().to_vec(),
            header_hex(&v, "response_invalid_request_hex")
        );
        assert_eq!(
            ResultCode::UnknownError.error_reply().to_vec(),
            header_hex(&v, "response_unknown_error_hex")
        );
        for b in 0..=255u8 {
            match ResultCode::from_byte(b) {
                Some(c) => assert_eq!(c.as_byte(), b),
                None => assert!(b > 3),
            }
            assert_eq!(ResultCode::is_reserved(b), b >= 128);
        }
        // The body description names the snappy stream identifier chunk.
        let ident = hex::encode(SNAPPY_STREAM_IDENTIFIER);
        assert_eq!(ident, "ff060000734e61507059");
        assert!(v["body"].as_str().unwrap().contains(&ident));
    }

    /// Encodes, checks the header against the vector file, and decodes with the client's
    /// schedule; returns the version byte seen on the wire.
    fn round_trip(version: BlockVersion, number: u64) -> u32 {
        let v = super::super::tests::vectors();
        let (payload, root) = block(version, number);
        let wire = encode_response(&payload, root).unwrap();
        let key = if version.has_beacon_root() {
            "response_success_header_ecotone_and_later_hex"
        } else {
            "response_success_header_pre_ecotone_hex"
        };
        assert_eq!(wire[..5].to_vec(), header_hex(&v, key));
        assert_eq!(wire[5..15], SNAPPY_STREAM_IDENTIFIER);
        let got = decode_response(&wire[..], number, &CLOCK, &FORKS).unwrap();
        assert_eq!(got.payload, payload);
        assert_eq!(got.parent_beacon_block_root, root);
        // The body is [root ‖] SSZ, the same bytes a gossip message signs.
        let mut body = Vec::new();
        snap::read::FrameDecoder::new(&wire[5..])
            .read_to_end(&mut body)
            .unwrap();
        assert_eq!(body, signed_bytes(&payload, root).unwrap());
        u32::from_le_bytes([wire[1], wire[2], wire[3], wire[4]])
    }

    #[test]
    fn round_trip_pre_ecotone_is_version_0() {
        assert_eq!(round_trip(BlockVersion::V1, 50), VERSION_PAYLOAD);
        assert_eq!(round_trip(BlockVersion::V2, 150), VERSION_PAYLOAD);
    }

    #[test]
    fn round_trip_ecotone_is_version_1() {
        assert_eq!(round_trip(BlockVersion::V3, 250), VERSION_ENVELOPE);
    }

    #[test]
    fn round_trip_isthmus_and_jovian_are_version_1_too() {
        // ⚠ Not the spec's "version 2": op-node sends 1 and the client picks v4 by its forks.
        assert_eq!(round_trip(BlockVersion::V4, 350), VERSION_ENVELOPE);
        assert_eq!(round_trip(BlockVersion::V4, 450), VERSION_ENVELOPE);
    }

    #[test]
    fn client_schedule_decides_v3_or_v4() {
        // An Isthmus block read by a client that thinks the block is pre-Isthmus fails the v3
        // shape (the extra-data offset is 560, not 528), and the reverse fails too.
        let (p4, r4) = block(BlockVersion::V4, 350);
        let wire = encode_response(&p4, r4).unwrap();
        let no_isthmus = ForkSchedule {
            isthmus: None,
            jovian: None,
            ..FORKS
        };
        assert!(matches!(
            decode_response(&wire[..], 350, &CLOCK, &no_isthmus),
            Err(ResponseError::Ssz {
                version: BlockVersion::V3,
                detail: SszError::ExtraDataOffset(560)
            })
        ));
        let (p3, r3) = block(BlockVersion::V3, 250);
        let wire = encode_response(&p3, r3).unwrap();
        assert!(matches!(
            decode_response(&wire[..], 250, &CLOCK, &ForkSchedule::ALL_AT_GENESIS),
            Err(ResponseError::Ssz {
                version: BlockVersion::V4,
                ..
            })
        ));
    }

    #[test]
    fn version_2_and_other_versions_are_refused() {
        for version in [2u32, 3, u32::MAX] {
            let mut wire = success_header(version).to_vec();
            wire.extend_from_slice(&SNAPPY_STREAM_IDENTIFIER);
            assert_eq!(
                decode_response(&wire[..], 1, &CLOCK, &FORKS),
                Err(ResponseError::UnknownVersion(version))
            );
        }
    }

    #[test]
    fn error_codes_and_truncated_headers() {
        for code in [1u8, 2, 3, 4, 200] {
            assert_eq!(
                decode_response(&[code][..], 1, &CLOCK, &FORKS),
                Err(ResponseError::Remote(code))
            );
        }
        assert_eq!(
            decode_response(&[][..], 1, &CLOCK, &FORKS),
            Err(ResponseError::TruncatedHeader)
        );
        assert_eq!(
            decode_response(&[0, 1, 0][..], 1, &CLOCK, &FORKS),
            Err(ResponseError::TruncatedHeader)
        );
        let before = ChainClock {
            genesis_number: 10,
            ..CLOCK
        };
        assert_eq!(
            decode_response(&success_header(0)[..], 5, &before, &FORKS),
            Err(ResponseError::BeforeGenesis(5))
        );
    }

    #[test]
    fn wrong_number_and_bad_hash_are_refused() {
        let (payload, root) = block(BlockVersion::V3, 250);
        let wire = encode_response(&payload, root).unwrap();
        assert_eq!(
            decode_response(&wire[..], 251, &CLOCK, &FORKS),
            Err(ResponseError::WrongNumber {
                expected: 251,
                got: 250
            })
        );
        // Another beacon root changes the v3 hash.
        let wire = encode_response(&payload, Some(B256::repeat_byte(1))).unwrap();
        assert!(matches!(
            decode_response(&wire[..], 250, &CLOCK, &FORKS),
            Err(ResponseError::BadBlockHash { .. })
        ));
    }

    #[test]
    fn body_shape_errors_are_typed() {
        // Version 1 with a 10-byte body: no room for the beacon root.
        let mut wire = success_header(VERSION_ENVELOPE).to_vec();
        let mut enc = snap::write::FrameEncoder::new(Vec::new());
        enc.write_all(&[7; 10]).unwrap();
        wire.extend_from_slice(&enc.into_inner().unwrap());
        assert_eq!(
            decode_response(&wire[..], 250, &CLOCK, &FORKS),
            Err(ResponseError::MissingBeaconRoot)
        );
        // Empty stream: zero bytes of payload.
        assert!(matches!(
            decode_response(&success_header(0)[..], 50, &CLOCK, &FORKS),
            Err(ResponseError::Ssz {
                version: BlockVersion::V1,
                detail: SszError::TooShort { len: 0, .. }
            })
        ));
        // A raw (unframed) snappy block is not a framed stream.
        let (payload, root) = block(BlockVersion::V1, 50);
        let mut wire = success_header(0).to_vec();
        wire.extend_from_slice(&crate::gossip::wire::compress(
            &signed_bytes(&payload, root).unwrap(),
        ));
        assert!(matches!(
            decode_response(&wire[..], 50, &CLOCK, &FORKS),
            Err(ResponseError::Snappy(_))
        ));
        // A framed stream cut short.
        let good = encode_response(&payload, root).unwrap();
        assert!(matches!(
            decode_response(&good[..good.len() - 3], 50, &CLOCK, &FORKS),
            Err(ResponseError::Snappy(_))
        ));
    }

    /// A snappy framed chunk header: type byte, then a u24 little-endian length.
    fn chunk_header(ty: u8, len: u32) -> Vec<u8> {
        let l = len.to_le_bytes();
        vec![ty, l[0], l[1], l[2]]
    }

    #[test]
    fn one_gib_claims_are_refused_without_allocating() {
        // A compressed chunk whose snappy block declares 1 GiB of output (uvarint 2^30).
        let mut wire = success_header(0).to_vec();
        wire.extend_from_slice(&SNAPPY_STREAM_IDENTIFIER);
        let block_header = [0x80, 0x80, 0x80, 0x80, 0x04];
        wire.extend(chunk_header(0x00, 4 + block_header.len() as u32));
        wire.extend_from_slice(&[0; 4]); // CRC
        wire.extend_from_slice(&block_header);
        assert!(matches!(
            decode_response(&wire[..], 50, &CLOCK, &FORKS),
            Err(ResponseError::Snappy(_))
        ));
        // A chunk claiming the largest length a frame can state (16 MiB - 1), with no data.
        let mut wire = success_header(0).to_vec();
        wire.extend_from_slice(&SNAPPY_STREAM_IDENTIFIER);
        wire.extend(chunk_header(0x00, 0xff_ffff));
        assert!(matches!(
            decode_response(&wire[..], 50, &CLOCK, &FORKS),
            Err(ResponseError::Snappy(_))
        ));
        // An endless stream of padding chunks: decoding stops at the 10 MiB raw budget
        // instead of reading (or buffering) without end.
        struct Endless {
            prefix: Vec<u8>,
            chunk: Vec<u8>,
            read: u64,
        }
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                for b in buf.iter_mut() {
                    let at = self.read as usize;
                    *b = match self.prefix.get(at) {
                        Some(&p) => p,
                        None => {
                            let off = (at - self.prefix.len()) % self.chunk.len();
                            self.chunk[off]
                        }
                    };
                    self.read += 1;
                }
                Ok(buf.len())
            }
        }
        let mut prefix = success_header(0).to_vec();
        prefix.extend_from_slice(&SNAPPY_STREAM_IDENTIFIER);
        let mut chunk = chunk_header(0xfe, 0xff_ff);
        chunk.resize(4 + 0xff_ff, 0);
        let mut endless = Endless {
            prefix,
            chunk,
            read: 0,
        };
        assert_eq!(
            decode_response(&mut endless, 50, &CLOCK, &FORKS),
            Err(ResponseError::RawTooLarge)
        );
        // The budget plus at most one probing byte was read.
        assert!(
            endless.read <= MAX_RESPONSE_SIZE as u64 + 1,
            "{}",
            endless.read
        );
    }

    #[test]
    fn decompression_bomb_stops_at_ten_mib() {
        // 11 MiB of zeros compresses to a few hundred KiB but must not decode past 10 MiB.
        let mut wire = success_header(0).to_vec();
        let mut enc = snap::write::FrameEncoder::new(Vec::new());
        enc.write_all(&vec![0u8; 11 << 20]).unwrap();
        let framed = enc.into_inner().unwrap();
        assert!(framed.len() < MAX_RESPONSE_SIZE);
        wire.extend_from_slice(&framed);
        assert_eq!(
            decode_response(&wire[..], 50, &CLOCK, &FORKS),
            Err(ResponseError::DecompressedTooLarge)
        );
    }

    #[test]
    fn raw_stream_over_ten_mib_is_refused() {
        // Incompressible-ish padding chunks: more than 10 MiB on the wire.
        let mut wire = success_header(0).to_vec();
        wire.extend_from_slice(&SNAPPY_STREAM_IDENTIFIER);
        while wire.len() <= MAX_RESPONSE_SIZE {
            wire.extend(chunk_header(0xfe, 0xff_ff));
            wire.extend(std::iter::repeat_n(0u8, 0xff_ff));
        }
        assert_eq!(
            decode_response(&wire[..], 50, &CLOCK, &FORKS),
            Err(ResponseError::RawTooLarge)
        );
    }

    #[test]
    fn encode_refuses_mismatched_root() {
        let (payload, _) = block(BlockVersion::V3, 250);
        assert!(matches!(
            encode_response(&payload, None),
            Err(ResponseEncodeError::Encode(EncodeError::BeaconRoot(..)))
        ));
        let (payload, _) = block(BlockVersion::V1, 50);
        assert!(matches!(
            encode_response(&payload, Some(B256::ZERO)),
            Err(ResponseEncodeError::Encode(EncodeError::BeaconRoot(..)))
        ));
    }
}
