//! Writes the seed corpus `fuzz/corpus/<target>/` from real encodings: signed blocks from the
//! core's testkit, the op-node ENR vectors, the op-node bootnode strings, admin params and
//! req/resp responses from the core's own encoder. Deterministic: re-running it rewrites the
//! same files (signatures are RFC 6979).
//!
//! Run from the repository root:
//! `cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus`

use std::fs;
use std::path::{Path, PathBuf};

use op_p2p_core::admin::AdminMethod;
use op_p2p_core::fuzzing::{
    CHAIN_ID, NOW_SECS, REQRESP_CLOCK, REQRESP_FORKS, WIRE_RESIGN, sequencer_key,
};
use op_p2p_core::reqresp::codec;
use op_p2p_core::testkit::{BlockBuilder, transactions};
use op_p2p_core::gossip::wire;
use op_p2p_core::{BlockTopic, BlockVersion};

struct Corpus {
    root: PathBuf,
    written: usize,
    bytes: usize,
}

impl Corpus {
    fn put(&mut self, target: &str, name: &str, data: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("create corpus dir");
        fs::write(dir.join(name), data).expect("write seed");
        self.written += 1;
        self.bytes += data.len();
    }
}

fn with_head(head: u8, rest: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(rest.len() + 1);
    v.push(head);
    v.extend_from_slice(rest);
    v
}

fn decompressed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::decompress_into(data, &mut out).expect("own block decompresses");
    out
}

fn vectors_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/testdata/op-node/enr_opstack.json")
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut c = Corpus {
        root,
        written: 0,
        bytes: 0,
    };
    let key = sequencer_key();

    // wire_decode and message_id: signed blocks on every version, plus a few rule breakers.
    for v in BlockVersion::ALL {
        let i = v.topic_index();
        let number = 1000 + u64::from(i);
        let block = BlockBuilder::new(v, number, NOW_SECS)
            .with_transactions(transactions(CHAIN_ID, number, 3, 24));
        let data = block.sign(key, CHAIN_ID).expect("sign");
        c.put(
            "wire_decode",
            &format!("v{}_signed", i + 1),
            &with_head(i, &data),
        );
        // Resign mode: the signed bytes without the signature.
        let signed = &decompressed(&data)[wire::SIGNATURE_LEN..];
        c.put(
            "wire_decode",
            &format!("v{}_resign", i + 1),
            &with_head(i | WIRE_RESIGN, signed),
        );
        let topic = BlockTopic::new(CHAIN_ID, v).to_string();
        let mut id_input = vec![topic.len() as u8];
        id_input.extend_from_slice(topic.as_bytes());
        id_input.extend_from_slice(&data);
        c.put("message_id", &format!("v{}_block", i + 1), &id_input);
    }
    // Empty block, old block, blob gas before and after Jovian, non-empty extra data.
    let mut old = BlockBuilder::new(BlockVersion::V2, 7, NOW_SECS - 600);
    old.extra_data = vec![0xab; 32].into();
    let (p, r) = old.build();
    let signed = wire::signed_bytes(&p, r).expect("signed bytes");
    c.put(
        "wire_decode",
        "v2_too_old_resign",
        &with_head(1 | WIRE_RESIGN, &signed),
    );
    for (name, ts) in [
        ("v3_blob_gas_before_jovian", NOW_SECS - 1),
        ("v4_blob_gas_jovian", NOW_SECS),
    ] {
        let v = if name.starts_with("v3") {
            BlockVersion::V3
        } else {
            BlockVersion::V4
        };
        let mut b = BlockBuilder::new(v, 9, ts);
        b.blob_gas_used = 1234;
        let data = b.sign(key, CHAIN_ID).expect("sign");
        c.put("wire_decode", name, &with_head(v.topic_index(), &data));
    }
    let empty = BlockBuilder::new(BlockVersion::V1, 3, NOW_SECS)
        .sign(key, CHAIN_ID)
        .expect("sign");
    // A v1 block on the v4 topic: wrong shape.
    c.put("wire_decode", "v1_on_v4_topic", &with_head(3, &empty));
    c.put(
        "message_id",
        "not_snappy",
        b"\x16/optimism/901/0/blocks\xff\xff\xff\xff\xff\xff",
    );
    c.put(
        "message_id",
        "empty_topic_tiny_snappy",
        &[0, 3, 8, b'a', b'b', b'c'],
    );

    // enr_opstack: opstack values, raw records (wrapped into enr: by the target), enr texts.
    let text = fs::read_to_string(vectors_file()).expect("read vectors");
    let v: serde_json::Value = serde_json::from_str(&text).expect("vectors json");
    let hex = |s: &serde_json::Value| hex::decode(s.as_str().expect("hex string")).expect("hex");
    for e in v["opstack_encodings"].as_array().expect("encodings") {
        let chain = e["chain_id"].as_u64().expect("chain id");
        c.put(
            "enr_opstack",
            &format!("opstack_{chain}"),
            &hex(&e["opstack_value_rlp_hex"]),
        );
    }
    for (i, r) in v["decoded_real_records"]
        .as_array()
        .expect("records")
        .iter()
        .enumerate()
    {
        if i % 2 == 0 {
            c.put(
                "enr_opstack",
                &format!("record_{i}_rlp"),
                &hex(&r["rlp_hex"]),
            );
        } else {
            let enr = r["enr"].as_str().expect("enr text");
            c.put("enr_opstack", &format!("record_{i}_text"), enr.as_bytes());
        }
    }

    // bootnode_parse: op-node's default bootnodes, plus IPv6 and DNS variants.
    for (i, s) in op_p2p_core::presets::OP_NODE_BOOTNODES.iter().enumerate() {
        c.put("bootnode_parse", &format!("op_node_{i:02}"), s.as_bytes());
    }
    let key_hex = "869d07b5932f17e8490990f75a3f94195e9504ddb6b85f7189e5a9c0a8fff8b00aecf6f3ac450ecba6cdabdb5858788a94bde2b613e0f2d82e9b395355f76d1a";
    c.put(
        "bootnode_parse",
        "enode_ipv6_discport",
        format!("  enode://{key_hex}@[2001:db8::1]:30303?discport=30301\n").as_bytes(),
    );

    // admin_request: a valid call of every method.
    let peer = "16Uiu2HAm31LCBALXkJfNGmK1tVkgzQDw9QQoNcFznzBBCYUPUhAD";
    for (i, m) in AdminMethod::ALL.iter().enumerate() {
        let params = match m {
            AdminMethod::Peers => "[true]".to_string(),
            AdminMethod::BlockAddr | AdminMethod::UnblockAddr => "[\"::ffff:10.1.2.3\"]".into(),
            AdminMethod::BlockSubnet | AdminMethod::UnblockSubnet => {
                "[{\"IP\":\"10.0.0.0\",\"Mask\":\"/wAAAA==\"}]".into()
            }
            AdminMethod::ConnectPeer => format!("[\"/ip4/1.2.3.4/tcp/9222/p2p/{peer}\"]"),
            _ if m.arity() == 0 => "[]".into(),
            _ => format!("[\"{peer}\"]"),
        };
        c.put(
            "admin_request",
            m.name(),
            &with_head(i as u8, params.as_bytes()),
        );
    }

    // reqresp: a success response per fork (one read byte by byte), and error replies.
    for n in [50u64, 150, 250, 350] {
        let ts = REQRESP_CLOCK.timestamp_for_block(n).expect("after genesis");
        let version = REQRESP_FORKS.publish_version(ts);
        let (payload, root) = BlockBuilder::new(version, n, ts)
            .with_transactions(transactions(CHAIN_ID, n, 2, 16))
            .build();
        let body = codec::encode_response(&payload, root).expect("encode response");
        let head = if n == 250 { 0x80 | 8 } else { 8 };
        let mut input = with_head(head, &codec::encode_request(n));
        input.extend_from_slice(&body);
        c.put("reqresp", &format!("ok_{n}"), &input);
    }
    let mut not_found = with_head(8, &codec::encode_request(42));
    not_found.extend_from_slice(&codec::ResultCode::NotFound.error_reply());
    c.put("reqresp", "not_found", &not_found);
    c.put("reqresp", "short_request", &[3, 1, 2, 3, 0, 0, 0, 0, 0]);

    eprintln!("wrote {} seeds, {} bytes", c.written, c.bytes);
}
