//! The `op-p2p node` binary is killed with SIGKILL at random moments while it writes state;
//! every restart finds valid state (temp + fsync + rename in the data dir). Moved here from the
//! adversarial suite because it runs the binary, which only this package's tests can name.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use op_p2p_core::alloy_primitives::Address;
use op_p2p_core::testkit::dev_key;
use op_p2p_node::datadir::DataDir;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

// ---------------------------------------------------------------------------------------------
// e. SIGKILL while the node writes state
// ---------------------------------------------------------------------------------------------

const KILL_ROUNDS: u64 = 20;

/// Starts `op-p2p node` on `datadir` (loopback, no discovery, RPC on an ephemeral port whose
/// address `rpc_addr_from_log` reads from its log).
fn start_node(signer: Address, datadir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_op-p2p"))
        .args(["node", "--chain-id", "901", "--unsafe-signer"])
        .arg(signer.to_string())
        .arg("--datadir")
        .arg(datadir)
        .args([
            "--p2p.listen.ip",
            "127.0.0.1",
            "--p2p.listen.tcp",
            "0",
            "--p2p.no-discovery",
            "--rpc.port",
            "0",
        ])
        .env("OP_P2P_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start op-p2p")
}

/// The `op-p2p node` binary is killed with SIGKILL at random moments while admin calls make it
/// write state; every restart finds valid state, and nothing it had persisted is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_state_writes_never_leaves_invalid_state() {
    tokio::time::timeout(Duration::from_secs(150), async {
        let dir = tempfile::tempdir().expect("temp dir");
        let datadir = dir.path().join("data");
        let signer: Address = dev_key(0).address();
        let mut rng: u64 = 0x6b11;
        let mut blocked_before = 0usize;
        let mut next_ip = 0u32;
        let mut writes = Vec::new();
        for round in 0..KILL_ROUNDS {
            let mut child = start_node(signer, &datadir);
            let rpc = rpc_addr_from_log(&mut child, round).await;
            // Block IPs until killed at a random moment (a state write follows each change,
            // at most once per second).
            rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let kill_after = Duration::from_millis(150 + (rng >> 33) % 1_800);
            let t = Instant::now();
            let mut calls = 0;
            while t.elapsed() < kill_after {
                let ip = Ipv4Addr::from(0x0a00_0000 + next_ip);
                next_ip += 1;
                let r = rpc_call(rpc, "opp2p_blockAddr", json!([ip.to_string()])).await;
                assert!(r.get("error").is_none(), "{r}");
                calls += 1;
                tokio::time::sleep(Duration::from_millis(8)).await;
            }
            child.kill().await.expect("SIGKILL");
            let state = DataDir::open(&datadir)
                .expect("data dir opens")
                .load_state()
                .unwrap_or_else(|e| panic!("round {round}: state invalid after SIGKILL: {e}"));
            let blocked = state.map_or(0, |s| s.gater.blocked_ips.len());
            assert!(
                blocked >= blocked_before,
                "round {round}: persisted blocks went from {blocked_before} to {blocked}"
            );
            writes.push((calls, blocked));
            blocked_before = blocked;
        }
        eprintln!("kill rounds (calls, blocked ips persisted): {writes:?}");
        // The kills landed after writes: state grew over the rounds.
        assert!(blocked_before > 0, "no state was ever written");
        // A last clean start on the final state.
        let mut child = start_node(signer, &datadir);
        let rpc = rpc_addr_from_log(&mut child, KILL_ROUNDS).await;
        let listed = rpc_call(rpc, "opp2p_listBlockedAddrs", json!([])).await;
        let n = listed["result"].as_array().expect("a list").len();
        assert_eq!(
            n, blocked_before,
            "the restarted node restored every persisted block"
        );
        child.kill().await.expect("kill");
    })
    .await
    .expect("bounded");
}

/// Reads the child's log until the "node running" line and returns its RPC address.
async fn rpc_addr_from_log(child: &mut Child, round: u64) -> SocketAddr {
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("rpc=Some(").nth(1)
                && line.contains("node running")
            {
                let addr = rest.split(')').next().unwrap_or_default();
                return addr.parse::<SocketAddr>().ok();
            }
            assert!(!line.contains("ERROR"), "round {round}: {line}");
        }
        None
    })
    .await;
    let addr = match found {
        Ok(Some(a)) => a,
        other => panic!(
            "round {round}: the node did not start ({other:?}; status {:?})",
            child.try_wait()
        ),
    };
    // Keep reading the log so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    addr
}

/// One JSON-RPC call over plain HTTP/1.1.
async fn rpc_call(addr: SocketAddr, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect rpc");
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    s.take(1 << 20).read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw);
    let (_, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
}
