//! Real nodes on loopback: gossip on every topic version, discovery through a bootnode,
//! the admin API. Every test is bounded by a timeout.

use std::time::Duration;

use futures::StreamExt;
use op_p2p_core::BlockVersion;
use op_p2p_core::admin::{AdminRequest, AdminResponse};
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::testkit::{BlockBuilder, transactions};
use op_p2p_tests::{
    CHAIN, Rt, admin, block_numbers, bootstrapped, connect, dev_config, now_secs,
    publish_when_ready, sequencer_config, shutdown, sign_request, spawn_bootnode, v4_block,
    wait_for_peers,
};

#[test]
fn two_nodes_gossip_blocks_on_all_four_topics() {
    Rt::Tokio.block_on_within(Duration::from_secs(60), async {
        let t = now_secs();
        // v1 before Canyon, v2 before Ecotone, v3 before Isthmus, v4 after: each block's
        // timestamp picks its topic, and all are inside the 60 s window.
        let forks = ForkSchedule {
            canyon: Some(t - 40),
            ecotone: Some(t - 30),
            isthmus: Some(t - 20),
            jovian: None,
        };
        let mut ca = sequencer_config(0);
        ca.core.validator.forks = forks;
        let mut cb = dev_config(1);
        cb.core.validator.forks = forks;
        let a = Rt::Tokio.spawn(ca).await;
        let mut b = Rt::Tokio.spawn(cb).await;
        connect(&b, &a).await;
        let mut blocks = b.blocks().unwrap();
        let cases = [
            (BlockVersion::V1, t - 45),
            (BlockVersion::V2, t - 35),
            (BlockVersion::V3, t - 25),
            (BlockVersion::V4, t),
        ];
        for (i, (v, ts)) in cases.into_iter().enumerate() {
            let number = 10 + i as u64;
            let block = BlockBuilder::new(v, number, ts)
                .with_transactions(transactions(CHAIN, number, 5, 32));
            publish_when_ready(&a, sign_request(&block)).await;
            let got = blocks.next().await.unwrap();
            assert_eq!(got.version, v);
            assert_eq!(got.envelope.payload.as_v1().block_number, number);
        }
        shutdown(a).await;
        shutdown(b).await;
    });
}

#[test]
fn ten_nodes_find_each_other_through_a_bootnode_and_deliver_every_block() {
    Rt::Tokio.block_on_within(Duration::from_secs(120), async {
        let (boot, boot_enr) = spawn_bootnode(Rt::Tokio, 100).await;
        let mut nodes = vec![
            Rt::Tokio
                .spawn(bootstrapped(sequencer_config(0), &boot_enr))
                .await,
        ];
        for i in 1..9u64 {
            nodes.push(
                Rt::Tokio
                    .spawn(bootstrapped(dev_config(i), &boot_enr))
                    .await,
            );
        }
        // Everyone connects to several others, found through discovery alone.
        wait_for_peers(&nodes, 3).await;
        let mut streams: Vec<_> = nodes
            .iter_mut()
            .skip(1)
            .map(|n| n.blocks().unwrap())
            .collect();
        for number in 1..=5u64 {
            publish_when_ready(&nodes[0], v4_block(number)).await;
        }
        for s in &mut streams {
            assert_eq!(block_numbers(s, 5).await, vec![1, 2, 3, 4, 5]);
        }
        let AdminResponse::DiscoveryTable(table) =
            admin(&nodes[1], AdminRequest::DiscoveryTable).await
        else {
            panic!()
        };
        assert!(!table.is_empty());
        for n in nodes {
            shutdown(n).await;
        }
        shutdown(boot).await;
    });
}
