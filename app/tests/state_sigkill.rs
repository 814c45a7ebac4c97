//! The `op-p2p node` binary is killed with SIGKILL at random moments while it writes state;
//! every restart finds valid state (temp + fsync + rename in the data dir). Moved here from the
//! adversarial suite because it runs the binary, which only this package's tests can name.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use op_p2p_core::SplitMix64;
use op_p2p_core::alloy_primitives::Address;
use op_p2p_core::testkit::dev_key;
use op_p2p_node::datadir::DataDir;
use op_p2p_tests::{Draw, NodeProcess, Rt, json_rpc_ok};
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// e. SIGKILL while the node writes state
// ---------------------------------------------------------------------------------------------

const KILL_ROUNDS: u64 = 20;

/// Starts `op-p2p node` on `datadir` (loopback, no discovery, RPC on an ephemeral port) and
/// waits until it runs.
async fn start_node(signer: Address, datadir: &Path) -> NodeProcess {
    let command = op_p2p_tests::node_command(
        env!("CARGO_BIN_EXE_op-p2p"),
        signer,
        datadir,
        &[],
        &["--rpc.port", "0"],
    );
    NodeProcess::start(command).await
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
            let child = start_node(signer, &datadir).await;
            let rpc = child.rpc.expect("RPC on");
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
            child.kill().await;
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
        let child = start_node(signer, &datadir).await;
        let rpc = child.rpc.expect("RPC on");
        let listed = json_rpc_ok(rpc, "opp2p_listBlockedAddrs", json!([])).await;
        let n = listed.as_array().expect("a list").len();
        assert_eq!(
            n, blocked_before,
            "the restarted node restored every persisted block"
        );
        child.kill().await;
    });
}
