//! The binary's block source (issue 14): `op-p2p node` signing through a remote signer (our
//! test op-signer, a real process speaking op-signer's JSON-RPC over mutual TLS) publishes
//! the unsigned blocks posted to its loopback RPC with `opp2pext_publishBlock`. A peer gets
//! them signed by the signer's key, a block of 1.5 MiB included; a block the fork schedule
//! refuses and malformed params get typed answers and the node runs on. Every process stops
//! when its handle drops.

use std::time::Duration;

use futures::StreamExt;
use op_p2p_core::BlockVersion;
use op_p2p_core::gossip::signature::{BLOCK_SIGNING_DOMAIN, recover_signer, signing_hash};
use op_p2p_core::testkit::{BlockBuilder, dev_key, transactions};
use op_p2p_tests::{
    BOUND, CHAIN, NodeProcess, Rt, SignerProcess, connect_addr, dev_config, json_rpc, json_rpc_ok,
    node_command, now_secs, publish_block_params, publish_block_rpc, shutdown, within,
};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_op-p2p");

#[test]
fn blocks_posted_over_rpc_reach_a_peer_signed_by_the_remote_signer() {
    Rt::Tokio.block_on_within(Duration::from_secs(120), async {
        let dir = tempfile::tempdir().expect("temp dir");
        let signer = SignerProcess::start(BIN, &dir.path().join("signer"), &[]).await;
        let path = |f: &str| signer.certs.join(f).to_string_lossy().into_owned();
        let (ca, cert, key) = (path("ca.pem"), path("client.pem"), path("client.key"));
        let address = dev_key(0).address().to_string();
        let mut node = NodeProcess::start(node_command(
            BIN,
            dev_key(0).address(),
            &dir.path().join("data"),
            &[],
            &[
                // The dev chain's forks, as the in-process peer's (all at genesis).
                "--canyon-time=0",
                "--ecotone-time=0",
                "--isthmus-time=0",
                "--jovian-time=0",
                "--rpc.addr",
                "127.0.0.1",
                "--rpc.port",
                "0",
                "--signer.endpoint",
                &signer.endpoint,
                "--signer.address",
                &address,
                "--signer.tls.ca",
                &ca,
                "--signer.tls.cert",
                &cert,
                "--signer.tls.key",
                &key,
            ],
        ))
        .await;
        let rpc = node.rpc.expect("the RPC listener");
        let mut peer = Rt::Tokio.spawn(dev_config(1)).await;
        connect_addr(&peer, node.listen_addrs[0].clone()).await;
        let mut blocks = peer.blocks().expect("blocks");

        let block = BlockBuilder::new(BlockVersion::V4, 1, now_secs());
        let r = publish_block_rpc(rpc, &block).await;
        let (payload, _) = block.build();
        assert_eq!(r["number"], 1, "{r}");
        assert_eq!(r["hash"], json!(payload.as_v1().block_hash), "{r}");
        assert!(
            r["messageId"].as_str().is_some_and(|m| m.len() == 42),
            "{r}"
        );
        assert_eq!(r["peers"], json!([peer.peer_id().to_string()]), "{r}");
        let got = within(BOUND, "block 1", blocks.next())
            .await
            .expect("delivered");
        assert_eq!(
            got.envelope.payload.as_v1().block_hash,
            payload.as_v1().block_hash
        );
        let hash = signing_hash(BLOCK_SIGNING_DOMAIN, CHAIN, got.envelope.payload_hash.0);
        assert_eq!(
            recover_signer(&got.envelope.signature, &hash).expect("recovers"),
            dev_key(0).address(),
            "signed by the remote signer's key"
        );

        // A 1.5 MiB block: about 3 MB of JSON, over the small RPC body limit.
        let big = BlockBuilder::new(BlockVersion::V4, 2, now_secs())
            .with_transactions(transactions(CHAIN, 2, 12, 128 * 1024));
        assert!(publish_block_params(&big).to_string().len() > 2 * 1024 * 1024);
        let r = publish_block_rpc(rpc, &big).await;
        assert_eq!(r["number"], 2, "{r}");
        let got = within(BOUND, "block 2", blocks.next())
            .await
            .expect("delivered");
        assert_eq!(got.envelope.payload.as_v1().transactions.len(), 12);

        // Refusals are typed answers, and the node runs on.
        let v3 = BlockBuilder::new(BlockVersion::V3, 3, now_secs());
        let r = json_rpc_ok(rpc, "opp2pext_publishBlock", publish_block_params(&v3)).await;
        assert_eq!(r["status"], "failed", "{r}");
        assert_eq!(r["reason"], "permanent", "{r}");
        let e = json_rpc(
            rpc,
            "opp2pext_publishBlock",
            json!([{"executionPayload": {}}]),
        )
        .await
        .expect_err("malformed");
        assert_eq!(e.0, -32602, "{e:?}");
        assert!(node.running());
        let r = publish_block_rpc(rpc, &BlockBuilder::new(BlockVersion::V4, 4, now_secs())).await;
        assert_eq!(r["number"], 4, "{r}");
        shutdown(peer).await;
        node.kill().await;
    });
}
