//! `op-p2p node --l1 …`: the binary reads the unsafe block signer from an anvil L1 through
//! its flags, and follows a rotation written there. Loopback only; anvil and the node are
//! killed when their handles drop.

use std::time::Duration;

use op_p2p_core::alloy_primitives::Address;
use op_p2p_core::testkit::dev_key;
use op_p2p_tests::{Anvil, NodeProcess, Rt, eventually, http_get, metric_value};

const L1_CHAIN: u64 = 900;
const SYSTEM_CONFIG: Address = Address::repeat_byte(0x5c);

/// `series` from the node's `/metrics`, 0 when absent.
async fn metric(node: &NodeProcess, series: &str) -> f64 {
    let text = http_get(node.rpc.expect("rpc"), "/metrics")
        .await
        .text()
        .to_owned();
    metric_value(&text, series).unwrap_or(0.0)
}

#[test]
fn the_binary_follows_the_signer_on_l1() {
    Rt::Tokio.block_on_within(Duration::from_secs(60), async {
        let anvil = Anvil::start(L1_CHAIN);
        anvil
            .set_signer(SYSTEM_CONFIG, dev_key(1).address(), 1)
            .await;
        let dir = tempfile::tempdir().expect("temp dir");
        let node = NodeProcess::start(op_p2p_tests::node_command(
            env!("CARGO_BIN_EXE_op-p2p"),
            dev_key(0).address(),
            dir.path(),
            &[],
            &[
                "--rpc.port=0",
                "--l1",
                &anvil.url(),
                "--rollup.system-config",
                &SYSTEM_CONFIG.to_string(),
                "--l1.chain-id",
                &L1_CHAIN.to_string(),
                "--l1.runtime-config-reload-interval=1s",
                "--verifier.l1-confs=1",
            ],
        ))
        .await;
        for (changes, signer) in [(1.0, dev_key(1).address()), (2.0, dev_key(2).address())] {
            if changes > 1.0 {
                anvil.set_signer(SYSTEM_CONFIG, signer, 2).await;
            }
            eventually("the node read the signer", || async {
                (metric(&node, "op_p2p_l1_signer_changes_total").await == changes
                    && metric(&node, "op_p2p_l1_signer_source_ok").await == 1.0)
                    .then_some(())
            })
            .await;
        }
    });
}
