//! The `op-p2p node` binary is killed with SIGKILL at random moments while it writes state;
//! every restart finds valid state (temp + fsync + rename in the data dir). Moved here from the
//! adversarial suite because it runs the binary, which only this package's tests can name.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use op_p2p_core::SplitMix64;
use op_p2p_core::alloy_primitives::Address;
use op_p2p_core::testkit::dev_key;
use op_p2p_node::datadir::DataDir;
use op_p2p_tests::{Draw, Rt, json_rpc_ok};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
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
#[test]
fn sigkill_during_state_writes_never_leaves_invalid_state() {
    Rt::Tokio.block_on_within(Duration::from_secs(150), async {
        let dir = tempfile::tempdir().expect("temp dir");
        let datadir = dir.path().join("data");
        let signer: Address = dev_key(0).address();
        let mut rng = SplitMix64::new(0x6b11);
        let mut blocked_before = 0usize;
        let mut next_ip = 0u32;
        let mut writes = Vec::new();
        for round in 0..KILL_ROUNDS {
            let mut child = start_node(signer, &datadir);
            let rpc = rpc_addr_from_log(&mut child, round).await;
            // Block IPs until killed at a random moment (a state write follows each change,
            // at most once per second).
            let kill_after = Duration::from_millis(150 + rng.below(1_800));
            let t = Instant::now();
            let mut calls = 0;
            while t.elapsed() < kill_after {
                let ip = Ipv4Addr::from(0x0a00_0000 + next_ip);
                next_ip += 1;
                json_rpc_ok(rpc, "opp2p_blockAddr", json!([ip.to_string()])).await;
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
        let listed = json_rpc_ok(rpc, "opp2p_listBlockedAddrs", json!([])).await;
        let n = listed.as_array().expect("a list").len();
        assert_eq!(
            n, blocked_before,
            "the restarted node restored every persisted block"
        );
        child.kill().await.expect("kill");
    });
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
