//! The unsafe block signer read from L1 (`--l1`, `op_p2p_node::l1_signer`): nodes follow a
//! key rotation written to anvil's `SystemConfig` slot without losing a block, and a broken L1
//! (refused, silent, another chain, garbage, oversized, not an address) leaves the last known
//! signer in force, is reported, never blocks the node, and is recovered from.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use op_p2p_core::BlockVersion;
use op_p2p_core::admin::AdminRequest;
use op_p2p_core::alloy_primitives::{Address, B256};
use op_p2p_core::testkit::{BlockBuilder, dev_key};
use op_p2p_node::NodeHandle;
use op_p2p_tests::*;

/// The L1's chain id in these tests.
const L1_CHAIN: u64 = 900;
/// The `SystemConfig` the nodes read.
const SYSTEM_CONFIG: Address = Address::repeat_byte(0x5c);
/// Blocks behind the L1 head the nodes read at.
const CONFS: u64 = 2;
/// Time between reads.
const INTERVAL: Duration = Duration::from_secs(1);

fn block(number: u64) -> BlockBuilder {
    BlockBuilder::new(BlockVersion::V4, number, now_secs())
}

/// `config` reading the signer from `url`, with RPC (for `/metrics` and admin calls).
fn l1_node(config: op_p2p_node::NodeConfig, url: &str, confs: u64) -> op_p2p_node::NodeConfig {
    let mut c = with_l1(config, url, L1_CHAIN, SYSTEM_CONFIG, INTERVAL, confs);
    c.rpc_addr = Some(local0());
    c
}

/// Waits until every node has read `changes` distinct signers and its last read succeeded.
async fn wait_changes(nodes: &[NodeHandle], changes: f64) {
    eventually("every node read the signer", || async {
        for n in nodes {
            if node_metric(n, "op_p2p_l1_signer_changes_total").await != changes
                || node_metric(n, "op_p2p_l1_signer_source_ok").await != 1.0
            {
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// Three nodes on one L1. The sequencer signs with key A, then the operator rotates the key on
/// L1 (the slot written, blocks mined past the confirmation depth) and the sequencer signs
/// with key B. Node 2 was started with a stale `--unsafe-signer`: L1 overrides it. Both
/// receivers get every block, before and after the switch.
async fn three_nodes_follow_a_key_switch_on_l1(rt: Rt) {
    let anvil = Anvil::start(L1_CHAIN);
    let (a, b) = (dev_key(0), dev_key(1));
    anvil
        .set_signer(SYSTEM_CONFIG, a.address(), CONFS + 1)
        .await;
    let mut stale = dev_config(2);
    stale.core.validator.unsafe_signer = dev_key(9).address();
    let mut nodes = Vec::new();
    for c in [sequencer_config(0), dev_config(1), stale] {
        nodes.push(rt.spawn(l1_node(c, &anvil.url(), CONFS)).await);
    }
    connect(&nodes[0], &nodes[1]).await;
    connect(&nodes[0], &nodes[2]).await;
    connect(&nodes[1], &nodes[2]).await;
    let mut receivers: Vec<_> = nodes[1..]
        .iter_mut()
        .map(|n| n.blocks().expect("blocks"))
        .collect();
    wait_changes(&nodes, 1.0).await;
    for n in 1..=5 {
        publish_when_ready(&nodes[0], signed_by(&a, &block(n))).await;
    }
    // The rotation on L1; the nodes pick it up within a reload interval.
    anvil
        .set_signer(SYSTEM_CONFIG, b.address(), CONFS + 1)
        .await;
    wait_changes(&nodes, 2.0).await;
    for n in 6..=10 {
        publish_when_ready(&nodes[0], signed_by(&b, &block(n))).await;
    }
    for rx in &mut receivers {
        assert_eq!(block_numbers(rx, 10).await, (1..=10).collect::<Vec<_>>());
    }
    for n in nodes {
        shutdown(n).await;
    }
}

/// What the fake L1 does with each request.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Answers as an L1 whose slot holds this signer.
    Good(Address),
    /// Accepts and never answers.
    Silent,
    /// Reports chain 1.
    WrongChain,
    /// Answers 200 with HTML.
    Garbage,
    /// Answers 200 with a 4 MiB body.
    Huge,
    /// The slot holds a word that is not an address.
    NotAnAddress,
}

/// A fake L1 JSON-RPC on 127.0.0.1:`port`, on a tokio runtime in a thread of its own; stops
/// (and cancels every connection) when dropped.
struct FakeL1 {
    mode: Arc<Mutex<Mode>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeL1 {
    fn start(port: u16, mode: Mode) -> FakeL1 {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let mode = Arc::new(Mutex::new(mode));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = mode.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => if let Ok((s, _)) = accepted {
                            let mode = *shared.lock().unwrap();
                            tokio::spawn(serve(s, mode));
                        },
                    }
                }
            });
        });
        FakeL1 {
            mode,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

impl Drop for FakeL1 {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(mut s: tokio::net::TcpStream, mode: Mode) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The request: headers, then Content-Length bytes of body (bounded).
    let mut buf = Vec::new();
    let body = loop {
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 65_536 {
            return;
        }
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            break buf[end + 4..end + 4 + len].to_vec();
        }
    };
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let answer = |result: String| {
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"result":"{result}"}}"#);
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let word = |w: B256| format!("{w}");
    let response = match (mode, request["method"].as_str().unwrap_or("")) {
        (Mode::Silent, _) => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
        (Mode::Garbage, _) => {
            "HTTP/1.1 200 OK\r\ncontent-length: 21\r\n\r\n<html>not json</html>".to_owned()
        }
        (Mode::Huge, _) => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4194304\r\n\r\n";
            let _ = s.write_all(head.as_bytes()).await;
            let chunk = vec![b' '; 65_536];
            for _ in 0..64 {
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            return;
        }
        (Mode::WrongChain, "eth_chainId") => answer("0x1".into()),
        (_, "eth_chainId") => answer(format!("{L1_CHAIN:#x}")),
        (_, "eth_blockNumber") => answer("0x10".into()),
        (Mode::Good(signer), "eth_getStorageAt") => answer(word(signer.into_word())),
        (Mode::NotAnAddress, "eth_getStorageAt") => answer(word(B256::repeat_byte(0xff))),
        _ => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_owned(),
    };
    let _ = s.write_all(response.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// An admin call answers quickly: the driver is not waiting on L1.
async fn answers_fast(node: &NodeHandle) {
    within(
        Duration::from_millis(800),
        "an admin call while L1 misbehaves",
        node.admin().call(AdminRequest::PeerStats),
    )
    .await
    .expect("answered");
}

/// Waits until a read failed with `kind` (once more than `before`) and the source is failing.
async fn failed_with(node: &NodeHandle, kind: &str) {
    let series = format!("op_p2p_l1_signer_reads_total{{result=\"{kind}\"}}");
    let before = node_metric(node, &series).await;
    eventually(kind, || async {
        (node_metric(node, &series).await > before
            && node_metric(node, "op_p2p_l1_signer_source_ok").await == 0.0)
            .then_some(())
    })
    .await;
}

/// A node reading from a broken L1 keeps its signer, reports the failure, keeps answering and
/// validating, and takes the L1's signer once it answers properly.
async fn a_broken_l1_keeps_the_last_signer_and_recovers(rt: Rt) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (a, b) = (dev_key(0), dev_key(1));
    // The reader starts with the flag's signer, A; L1 will say B.
    let mut reader = rt.spawn(l1_node(dev_config(1), &url, 0)).await;
    // The publisher stands for the network: it sends blocks signed by A or by B, whichever
    // its own (fixed) signer is, so its publish queue must not check them against it.
    let mut pc = dev_config(0);
    pc.core.publish.verify_signer = false;
    let publisher = rt.spawn(pc).await;
    connect(&publisher, &reader).await;
    let mut blocks = reader.blocks().expect("blocks");
    let mut number = 0;
    let mut delivered = async |key: &op_p2p_core::gossip::signature::SequencerKey| {
        number += 1;
        publish_when_ready(&publisher, signed_by(key, &block(number))).await;
        assert_eq!(block_numbers(&mut blocks, 1).await, [number]);
    };

    // Nothing listens: refused. The flag's signer stays in force.
    failed_with(&reader, "connect").await;
    answers_fast(&reader).await;
    delivered(&a).await;

    // L1 comes up: its signer replaces the flag's.
    let l1 = FakeL1::start(port, Mode::Good(b.address()));
    wait_changes(std::slice::from_ref(&reader), 1.0).await;
    delivered(&b).await;

    for (mode, kind) in [
        (Mode::Silent, "timeout"),
        (Mode::WrongChain, "wrong_chain"),
        (Mode::Garbage, "json"),
        (Mode::Huge, "too_large"),
        (Mode::NotAnAddress, "not_an_address"),
    ] {
        l1.set(mode);
        failed_with(&reader, kind).await;
        answers_fast(&reader).await;
        // The last signer read stays in force.
        delivered(&b).await;
    }

    l1.set(Mode::Good(b.address()));
    wait_changes(std::slice::from_ref(&reader), 1.0).await;
    delivered(&b).await;
    drop(l1);
    shutdown(publisher).await;
    shutdown(reader).await;
}

on_both_runtimes!(
    three_nodes_follow_a_key_switch_on_l1,
    a_broken_l1_keeps_the_last_signer_and_recovers,
);
