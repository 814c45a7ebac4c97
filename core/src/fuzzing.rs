//! Fuzz target bodies (feature `fuzzing`): one function per target in `fuzz/fuzz_targets/`,
//! shared with the corpus replay test in `tests/`, so a crash found by the fuzzer is replayed
//! by an ordinary `cargo test` through the very same code.
//!
//! Each function takes arbitrary bytes, drives a public decoder of the core with them and
//! panics only when an invariant of that decoder is broken (a panic inside the core counts too):
//! errors are fine, inconsistent answers are not. Every function is deterministic: the time,
//! chain, keys and fork schedule are fixed constants below, so a crashing input replays exactly.

use std::io::Read;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::admin::{AdminMethod, AdminRequest};
use crate::discovery::{
    Bootnode, DefaultKey, Enode, Enr, OpStackEntry, accept_enr, dial_candidate, filter_enr,
    parse_enr,
};
use crate::fork::ForkSchedule;
use crate::gossip::check::SplitInline;
use crate::gossip::signature::SequencerKey;
use crate::gossip::topic::BlockVersion;
use crate::gossip::validate::{Reason, Source, Validator, ValidatorConfig};
use crate::gossip::wire::{self, DecompressError, MAX_GOSSIP_SIZE, SizeError};
use crate::reqresp::{self, ChainClock, codec};

/// Chain id of every fuzzed message.
pub const CHAIN_ID: u64 = 901;
/// The fixed "now" of the wire target, Unix seconds.
pub const NOW_SECS: u64 = 1_750_000_000;
/// The fixed "now" of the wire target, Unix ms (rounding down must not matter).
pub const NOW_MS: u64 = NOW_SECS * 1000 + 999;
/// The wire target's forks: all active long ago except Jovian, which starts at [`NOW_SECS`],
/// so both sides of the blob-gas rule are reachable from blocks in the time window.
pub const WIRE_FORKS: ForkSchedule = ForkSchedule {
    canyon: Some(0),
    ecotone: Some(0),
    isthmus: Some(0),
    jovian: Some(NOW_SECS),
};
/// The req/resp target's chain: genesis block 0 at t=0, 1 s blocks, so block n has timestamp n.
pub const REQRESP_CLOCK: ChainClock = ChainClock {
    genesis_number: 0,
    genesis_time: 0,
    block_time: 1,
};
/// The req/resp target's forks: v1 below 100, v2 below 200, v3 below 300, v4 from 300.
pub const REQRESP_FORKS: ForkSchedule = ForkSchedule {
    canyon: Some(100),
    ecotone: Some(200),
    isthmus: Some(300),
    jovian: Some(400),
};
/// The block a req/resp response is checked against when the input's request is malformed.
pub const REQRESP_DEFAULT_NUMBER: u64 = 250;

/// Flag in the first byte of a `wire_decode` input: re-sign the rest with [`sequencer_key`]
/// before validating, so mutations reach the rules behind the signature check.
pub const WIRE_RESIGN: u8 = 0x04;

/// The unsafe block signer of the wire target: `testkit::dev_key(0)`, derived once (a constant,
/// cached only because deriving a key per input would dominate the fuzzer's time).
pub fn sequencer_key() -> &'static SequencerKey {
    static KEY: OnceLock<SequencerKey> = OnceLock::new();
    KEY.get_or_init(|| crate::testkit::dev_key(0))
}

/// The wire target's validator: chain [`CHAIN_ID`], signer [`sequencer_key`], [`WIRE_FORKS`],
/// 2 s blocks, empty seen state.
pub fn wire_validator() -> Validator {
    let config = ValidatorConfig::new(CHAIN_ID, sequencer_key().address(), WIRE_FORKS, 2);
    Validator::new(config)
}

fn version_of(b: u8) -> BlockVersion {
    BlockVersion::ALL[usize::from(b & 3)]
}

/// `wire_decode`: byte 0 picks the topic version (`& 3`) and [`WIRE_RESIGN`]; the rest is the
/// gossip `data`. Runs the size guard, decompression, the whole validator and the envelope
/// decoder, and checks they agree; accepted and decodable envelopes must re-encode exactly.
pub fn wire_decode(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let version = version_of(head);
    let resigned;
    let gossip = if head & WIRE_RESIGN != 0 {
        // `rest` is taken as the signed bytes `[root ‖] SSZ`: sign them as the sequencer would.
        let signature = sequencer_key().sign_block(CHAIN_ID, rest);
        match wire::encode_message(&signature, rest) {
            Ok(m) => {
                resigned = m;
                &resigned[..]
            }
            Err(_) => return,
        }
    } else {
        rest
    };

    // Size guard and decompression agree with each other.
    let size = wire::check_size(gossip);
    let mut raw = Vec::new();
    let decompressed = wire::decompress_into(gossip, &mut raw);
    match (&size, &decompressed) {
        (Err(e), Err(DecompressError::Size(d))) => assert_eq!(e, d),
        (Ok(n), Ok(())) => assert_eq!(raw.len(), *n, "decompressed length != declared"),
        (Ok(_), Err(DecompressError::Snappy)) => assert!(raw.is_empty()),
        other => panic!("size guard and decompression disagree: {other:?}"),
    }
    if let Ok(n) = size {
        assert!((wire::MIN_GOSSIP_SIZE..=MAX_GOSSIP_SIZE).contains(&n));
    }

    // The validator, fresh each time so the input alone decides.
    let mut validator = wire_validator();
    let outcome = validator.validate(NOW_MS, version, gossip);
    assert_eq!(outcome.block.is_some(), outcome.reason == Reason::Accepted);
    // The two halves run apart (the parallel path, judged from the compressed bytes as a
    // worker pool's result is) agree with the composed validator.
    let mut split = wire_validator();
    let checked = split
        .checker()
        .check(NOW_MS, version, gossip, &mut Vec::new(), &SplitInline);
    let apart = split.judge(NOW_MS, checked, Source::Compressed(gossip), |_, _| false);
    assert_eq!(
        (apart.reason, apart.signer, apart.payload_hash, apart.header),
        (
            outcome.reason,
            outcome.signer,
            outcome.payload_hash,
            outcome.header
        ),
        "split validation disagrees"
    );
    assert_eq!(apart.block, outcome.block);
    match decompressed {
        Err(DecompressError::Size(SizeError::Unreadable)) => {
            assert_eq!(outcome.reason, Reason::SnappyLengthUnreadable)
        }
        Err(DecompressError::Size(SizeError::TooLarge(_))) => {
            assert_eq!(outcome.reason, Reason::TooLarge)
        }
        Err(DecompressError::Size(SizeError::TooSmall(_))) => {
            assert_eq!(outcome.reason, Reason::TooSmall)
        }
        Err(_) => assert_eq!(outcome.reason, Reason::SnappyCorrupt),
        Ok(()) => assert!(!matches!(
            outcome.reason,
            Reason::SnappyLengthUnreadable | Reason::SnappyCorrupt | Reason::TooLarge
        )),
    }
    if let Some(block) = &outcome.block {
        // Accepted: the decoder agrees, the block re-encodes to the same bytes, and the same
        // message again is a duplicate.
        let decoded = wire::decode_envelope(version, &raw);
        assert_eq!(
            decoded.as_ref(),
            Ok(&**block),
            "validator and decoder disagree"
        );
        let again = wire::encode_envelope(block).expect("an accepted block re-encodes");
        let mut again_raw = Vec::new();
        wire::decompress_into(&again, &mut again_raw).expect("own encoding decompresses");
        assert_eq!(
            again_raw, raw,
            "accepted block does not re-encode to its bytes"
        );
        let second = validator.validate(NOW_MS, version, gossip);
        assert_eq!(second.reason, Reason::Duplicate);
    }
    if decompressed.is_ok() {
        envelope_round_trip(version, &raw);
    }
    // The envelope decoder straight on the input, as if it were already decompressed.
    envelope_round_trip(version, rest);
}

/// Decodes `raw` as a decompressed envelope; whatever decodes must re-encode byte for byte.
fn envelope_round_trip(version: BlockVersion, raw: &[u8]) {
    let Ok(envelope) = wire::decode_envelope(version, raw) else {
        return;
    };
    assert_eq!(wire::payload_version(&envelope.payload), version);
    assert_eq!(
        envelope.parent_beacon_block_root.is_some(),
        version.has_beacon_root()
    );
    let encoded = wire::encode_envelope(&envelope).expect("a decoded envelope re-encodes");
    let mut back = Vec::new();
    wire::decompress_into(&encoded, &mut back).expect("own encoding decompresses");
    assert_eq!(
        back, raw,
        "decoded envelope does not re-encode to its bytes"
    );
}

/// `message_id`: byte 0 is the topic length (capped by the input), then the topic (lossy
/// UTF-8), then the data. The id never panics, equals [`wire::message_id_of_decoded`] when the
/// data is a valid snappy block of at most 10 MiB, and otherwise is the domain-0 hash of the
/// raw data, recomputed here from the spec formula.
pub fn message_id(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (topic, body) = rest.split_at(usize::from(n).min(rest.len()));
    let topic = String::from_utf8_lossy(topic);
    let id = wire::message_id(&topic, body);

    let mut out = Vec::new();
    if wire::decompress_into(body, &mut out).is_ok() {
        assert_eq!(id, wire::message_id_of_decoded(&topic, &out));
    }
    let decodes = wire::snappy_declared_len(body)
        .is_some_and(|len| len <= MAX_GOSSIP_SIZE as u64)
        .then(|| snap::raw::Decoder::new().decompress_vec(body).ok())
        .flatten();
    let expected = match decodes {
        Some(decoded) => wire::message_id_of_decoded(&topic, &decoded),
        None => {
            let mut h = Sha256::new();
            h.update([0u8, 0, 0, 0]);
            h.update((topic.len() as u64).to_le_bytes());
            h.update(topic.as_bytes());
            h.update(body);
            let digest = h.finalize();
            let mut id = [0u8; 20];
            id.copy_from_slice(&digest[..20]);
            wire::MessageId(id)
        }
    };
    assert_eq!(id, expected);
}

/// `enr_opstack`: the input as an `opstack` value, as its string contents, as `enr:` text
/// (lossy UTF-8) and as a raw record wrapped into `enr:` + base64url. Whatever decodes must
/// round-trip through our own encoders, and accepted records must survive the dial filters.
pub fn enr_opstack(data: &[u8]) {
    if let Ok(entry) = OpStackEntry::decode_rlp(data) {
        // The value is one RLP string whose contents decode the same way.
        let mut buf = data;
        let header = alloy_rlp::Header::decode(&mut buf).expect("decode_rlp read a header");
        assert!(!header.list);
        assert_eq!(OpStackEntry::decode_contents(buf), Ok(entry));
        entry_round_trip(entry);
    }
    if let Ok(entry) = OpStackEntry::decode_contents(data) {
        entry_round_trip(entry);
    }
    enr_text(&String::from_utf8_lossy(data));
    let wrapped = format!("enr:{}", data_encoding::BASE64URL_NOPAD.encode(data));
    enr_text(&wrapped);
}

fn entry_round_trip(entry: OpStackEntry) {
    assert_eq!(OpStackEntry::decode_rlp(&entry.to_rlp()), Ok(entry));
    assert_eq!(OpStackEntry::decode_contents(&entry.contents()), Ok(entry));
}

fn enr_text(text: &str) {
    let Ok(enr) = parse_enr::<DefaultKey>(text) else {
        return;
    };
    assert_eq!(
        enr.to_base64(),
        text,
        "parse_enr accepted a non-canonical text"
    );
    let again: Enr = parse_enr(&enr.to_base64()).expect("a parsed record re-parses");
    assert_eq!(again, enr);
    if let Some(Ok(entry)) = OpStackEntry::from_enr(&enr) {
        assert_eq!(filter_enr(&enr, entry.chain_id).is_ok(), entry.version == 0);
    }
    let candidate = dial_candidate(&enr);
    let accepted = accept_enr(&enr, CHAIN_ID);
    if accepted.is_ok() {
        assert!(candidate.is_ok());
        assert!(filter_enr(&enr, CHAIN_ID).is_ok());
    }
}

/// `bootnode_parse`: the input (lossy UTF-8) as a bootnode string. A parsed bootnode prints to
/// a string that parses to the same node, and an `enode://` URL round-trips exactly.
pub fn bootnode_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(node) = Bootnode::<DefaultKey>::parse(&text) else {
        return;
    };
    let printed = node.to_string();
    let again = Bootnode::<DefaultKey>::parse(&printed).expect("a printed bootnode re-parses");
    assert_eq!(again.to_string(), printed);
    assert_eq!(again.node_id(), node.node_id());
    assert_eq!(again.peer_id(), node.peer_id());
    assert_eq!(again.needs_resolution(), node.needs_resolution());
    match (&node, &again) {
        (Bootnode::Enode(a), Bootnode::Enode(b)) => {
            assert_eq!(a, b);
            assert_eq!(Enode::parse(&printed).as_ref(), Ok(a));
            assert_eq!(a.needs_resolution(), a.udp_socket().is_none());
            if a.tcp_port == 0 {
                assert!(a.tcp_multiaddr().is_none());
            }
        }
        (Bootnode::Enr(a), Bootnode::Enr(b)) => {
            assert_eq!(a, b);
            assert_eq!(printed, text.trim());
        }
        _ => panic!("bootnode kind changed on re-parse: {printed}"),
    }
}

/// `admin_request`: byte 0 picks the method from [`AdminMethod::ALL`], the rest is the raw
/// `params` JSON (lossy UTF-8). Errors carry a JSON-RPC code; a parsed request's
/// [`AdminRequest::params`] parses back to the same request.
pub fn admin_request(data: &[u8]) {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let method = AdminMethod::ALL[usize::from(m) % AdminMethod::ALL.len()];
    let params = String::from_utf8_lossy(rest);
    match AdminRequest::parse(method.name(), &params) {
        Ok(req) => {
            assert_eq!(req.method(), method);
            let text = req.params().to_string();
            assert_eq!(
                AdminRequest::parse(method.name(), &text).as_ref(),
                Ok(&req),
                "params() {text} does not parse back"
            );
        }
        Err(e) => {
            let rpc = e.to_rpc();
            assert!(
                (-32700..=-32000).contains(&rpc.code),
                "{e:?} has code {}",
                rpc.code
            );
            assert_eq!(rpc.code, e.code());
        }
    }
}

/// `reqresp`: byte 0 (`% 10`) is the length of the request that follows; [`codec::decode_request`]
/// reads it and gives the block number the rest, a response stream, is checked against
/// ([`REQRESP_DEFAULT_NUMBER`] if the request is malformed). Bit 7 of byte 0 feeds the response
/// one byte per `read` call, which must not change the answer. A decoded payload is for the
/// requested block, has the shape of its fork, and re-encodes to a response that decodes the same.
pub fn reqresp(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let (request, response) = rest.split_at(usize::from(head % 10).min(rest.len()));
    let number = match codec::decode_request(request) {
        Ok(n) => {
            assert_eq!(request.len(), reqresp::REQUEST_LEN);
            assert_eq!(codec::encode_request(n), request);
            n
        }
        Err(e) => {
            assert_ne!(request.len(), reqresp::REQUEST_LEN);
            assert_eq!(e.result_code(), codec::ResultCode::InvalidRequest);
            REQRESP_DEFAULT_NUMBER
        }
    };
    let decoded = codec::decode_response(response, number, &REQRESP_CLOCK, &REQRESP_FORKS);
    if head & 0x80 != 0 {
        let trickled =
            codec::decode_response(OneByte(response), number, &REQRESP_CLOCK, &REQRESP_FORKS);
        assert_eq!(trickled, decoded, "byte-at-a-time reads changed the answer");
    }
    let Ok(sync) = decoded else {
        return;
    };
    let v1 = sync.payload.as_v1();
    assert_eq!(v1.block_number, number);
    let version = wire::payload_version(&sync.payload);
    let fork =
        REQRESP_FORKS.publish_version(REQRESP_CLOCK.timestamp_for_block(number).unwrap_or(0));
    // Version 0 bodies are v1 before Canyon and v2 after; version 1 bodies v3 or v4.
    match fork {
        BlockVersion::V1 => assert_eq!(version, BlockVersion::V1),
        BlockVersion::V2 => assert_eq!(version, BlockVersion::V2),
        BlockVersion::V3 => assert!(matches!(version, BlockVersion::V2 | BlockVersion::V3)),
        BlockVersion::V4 => assert!(matches!(version, BlockVersion::V2 | BlockVersion::V4)),
    }
    let encoded = codec::encode_response(&sync.payload, sync.parent_beacon_block_root)
        .expect("a decoded payload re-encodes");
    let again = codec::decode_response(&encoded[..], number, &REQRESP_CLOCK, &REQRESP_FORKS);
    assert_eq!(again.as_ref(), Ok(&sync));
}

/// A reader that hands out one byte per call, like a slow stream.
struct OneByte<'a>(&'a [u8]);

impl Read for OneByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Most operations one `node_inputs` input is read as.
pub const NODE_INPUTS_MAX_OPS: usize = 512;

/// One run of `node_inputs`: every action the node emitted, as text, and the counts checked.
fn run_node_inputs(data: &[u8]) -> Vec<String> {
    use crate::testkit::peer_id;
    use crate::{Action, Config, Direction, GossipMessage, Input, MessageHandle, Node, RequestId};
    let key = sequencer_key();
    let mut config = Config::new(CHAIN_ID, key.address(), WIRE_FORKS, 2, peer_id(0));
    // Small bounds, so short inputs reach them.
    config.peers.max_peers = 8;
    config.app_scores.max_peers = 8;
    config.conn.low = 2;
    config.conn.high = 4; // a hard limit of 8 connected peers
    // The inputs' addresses are in 10.0.0.0/8: listed, so dials to them are exercised.
    config.gater.netrestrict = Some(vec!["10.0.0.0/8".parse().expect("valid")]);
    let mut node = Node::new(config);
    let mut now = NOW_MS;
    let mut log = Vec::new();
    let mut handle = 0u64;
    let mut ops = data.chunks(4).take(NODE_INPUTS_MAX_OPS);
    let topics = [
        "/optimism/901/0/blocks",
        "/optimism/901/2/blocks",
        "/optimism/901/3/blocks",
        "/optimism/10/3/blocks",
    ];
    while let Some(op) = ops.next() {
        let [kind, a, b, c] = [
            op[0],
            *op.get(1).unwrap_or(&0),
            *op.get(2).unwrap_or(&0),
            *op.get(3).unwrap_or(&0),
        ];
        let peer = peer_id(1 + u64::from(a % 16));
        let addr: crate::Multiaddr = format!("/ip4/10.0.{}.{}/tcp/9000", b % 4, 1 + c % 8)
            .parse()
            .expect("valid");
        let mut gossip = false;
        let input = match kind % 10 {
            0 | 1 => {
                // Gossip: the next chunk (up to 255 bytes from the rest) is the data.
                gossip = true;
                handle += 1;
                let len = usize::from(b);
                let mut body = Vec::with_capacity(len);
                for chunk in ops.by_ref() {
                    body.extend_from_slice(chunk);
                    if body.len() >= len {
                        break;
                    }
                }
                let data = if c & 1 == 1 {
                    // A real signed block with fuzzed number and timestamp offset.
                    crate::testkit::BlockBuilder::new(
                        BlockVersion::V4,
                        u64::from(b),
                        NOW_SECS - u64::from(c % 70),
                    )
                    .sign(key, CHAIN_ID)
                    .unwrap_or_default()
                } else {
                    body
                };
                Input::Gossip(GossipMessage {
                    handle: MessageHandle(handle),
                    topic: topics[usize::from(a % 4)].into(),
                    data: data.into(),
                    source: Some(peer),
                })
            }
            2 => {
                let dir = if b & 1 == 0 {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                };
                if !node.allow_established(now, &peer, &addr, dir) {
                    continue;
                }
                Input::ConnectionEstablished {
                    peer,
                    addr,
                    direction: dir,
                }
            }
            3 => Input::ConnectionClosed { peer },
            4 => Input::DialFailed {
                peer,
                error: "fuzz".into(),
            },
            5 => {
                now = now.saturating_add(u64::from(u16::from_le_bytes([b, c])) * 10);
                Input::Tick
            }
            6 => Input::Ping {
                peer,
                rtt_ns: u64::from(b) * 1_000_000,
            },
            7 => Input::Subscription {
                peer,
                topic: topics[usize::from(b % 4)].into(),
                subscribed: c & 1 == 0,
            },
            8 => {
                let method = AdminMethod::ALL[usize::from(b) % AdminMethod::ALL.len()];
                let params = match c % 3 {
                    0 => format!("[\"{peer}\"]"),
                    1 => format!("[\"10.0.{}.1\"]", b % 4),
                    _ => "[true]".to_string(),
                };
                match AdminRequest::parse(method.name(), &params) {
                    Ok(request) => Input::Admin {
                        id: RequestId(u64::from(a)),
                        request,
                    },
                    Err(_) => continue,
                }
            }
            _ => Input::SetUnsafeSigner(if b & 1 == 0 {
                key.address()
            } else {
                crate::testkit::dev_key(1).address()
            }),
        };
        node.handle_input(now, input);
        let mut verdicts = 0;
        while let Some(action) = node.poll_action() {
            if let Action::Verdict { handle: h, .. } = &action {
                assert_eq!(h.0, handle, "a verdict for another message");
                verdicts += 1;
            }
            log.push(format!("{action:?}"));
        }
        if gossip {
            assert_eq!(verdicts, 1, "every gossip input gets exactly one verdict");
        } else {
            assert_eq!(verdicts, 0, "verdicts only answer gossip");
        }
        if let Some(v) = node.bounds_violation() {
            panic!("bound exceeded: {v}");
        }
    }
    log
}

/// `node_inputs`: the bytes are read as a sequence of operations on one core [`crate::Node`]
/// (4 bytes each: kind, peer, two arguments): gossip (raw bytes from the input, or a really
/// signed block with fuzzed number and age) from one of 16 peers on one of four topics,
/// connections through the gate, closes, failed dials, time steps, pings, subscriptions, admin
/// calls and signer changes. Invariants: no panic; every gossip input gets exactly one verdict,
/// nothing else does; every map stays within its bound (small bounds, so inputs reach them);
/// the same sequence gives the same actions.
pub fn node_inputs(data: &[u8]) {
    let first = run_node_inputs(data);
    let second = run_node_inputs(data);
    assert_eq!(first, second, "the same inputs gave different actions");
}

/// The fuzz targets by name, as `fuzz/fuzz_targets/` and `fuzz/corpus/` name them.
pub const TARGETS: [(&str, Target); 7] = [
    ("node_inputs", node_inputs),
    ("wire_decode", wire_decode),
    ("message_id", message_id),
    ("enr_opstack", enr_opstack),
    ("bootnode_parse", bootnode_parse),
    ("admin_request", admin_request),
    ("reqresp", reqresp),
];

/// The target function of `name`, if there is one.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{BlockBuilder, transactions};

    #[test]
    fn every_target_survives_empty_and_short_inputs() {
        for (name, f) in TARGETS {
            for input in [&[][..], &[0], &[0xff; 3], &[7; 70]] {
                f(input);
            }
            assert!(target(name).is_some());
        }
        assert!(target("nope").is_none());
    }

    #[test]
    fn signed_blocks_are_accepted_through_both_wire_modes() {
        // Seeds built like this reach the accept branch with its round-trip checks.
        for v in BlockVersion::ALL {
            let b = BlockBuilder::new(v, 7, NOW_SECS)
                .with_transactions(transactions(CHAIN_ID, 7, 3, 10));
            let data = b.sign(sequencer_key(), CHAIN_ID).unwrap();
            let reason = wire_validator().validate(NOW_MS, v, &data).reason;
            assert_eq!(reason, Reason::Accepted, "{v}");
            let mut input = vec![v.topic_index()];
            input.extend_from_slice(&data);
            wire_decode(&input);
            // The resign mode takes the signed bytes without the signature.
            let mut raw = Vec::new();
            wire::decompress_into(&data, &mut raw).unwrap();
            let mut input = vec![v.topic_index() | WIRE_RESIGN];
            input.extend_from_slice(&raw[wire::SIGNATURE_LEN..]);
            wire_decode(&input);
        }
    }

    #[test]
    fn reqresp_round_trips_an_encoded_response() {
        for n in [50u64, 150, 250, 350] {
            let v = REQRESP_FORKS.publish_version(n);
            let (payload, root) = BlockBuilder::new(v, n, n).build();
            let body = codec::encode_response(&payload, root).unwrap();
            let mut input = vec![0x80 | 8];
            input.extend_from_slice(&codec::encode_request(n));
            input.extend_from_slice(&body);
            reqresp(&input);
            let ok = codec::decode_response(&body[..], n, &REQRESP_CLOCK, &REQRESP_FORKS);
            assert!(ok.is_ok(), "{n}: {ok:?}");
        }
    }
}
