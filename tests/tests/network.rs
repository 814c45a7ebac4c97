//! Real nodes on loopback: gossip on every topic version, discovery through a bootnode,
//! the admin API. Every test is bounded by a timeout.

use std::time::Duration;

use futures::StreamExt;
use op_p2p_core::admin::{AdminRequest, AdminResponse};
use op_p2p_core::alloy_primitives::Address;
use op_p2p_core::discovery::Bootnode;
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::testkit::{BlockBuilder, dev_key, keypair, transactions};
use op_p2p_core::{BlockVersion, Config, PublishRequest};
use op_p2p_node::{NodeConfig, NodeHandle};
use op_p2p_tokio::{SpawnOptions, spawn};

const CHAIN: u64 = 901;

fn now_secs() -> u64 {
    op_p2p_node::system_now_ms() / 1000
}

fn config(i: u64, forks: ForkSchedule, discovery: bool, bootnodes: Vec<Bootnode>) -> NodeConfig {
    let kp = keypair(i);
    let signer: Address = dev_key(0).address();
    let mut core = Config::new(CHAIN, signer, forks, 2, kp.public().to_peer_id());
    core.rng_seed = i;
    if i == 0 {
        core.sequencer_key = Some(dev_key(0));
    }
    let mut c = NodeConfig::local(core, kp);
    c.discovery = discovery;
    c.core.discovery = discovery.then(Default::default);
    c.bootnodes = bootnodes;
    c
}

async fn connect(from: &NodeHandle, to: &NodeHandle) {
    let addr = to.listen_addrs()[0].clone();
    let mut transport = addr.clone();
    let peer = match transport.pop() {
        Some(libp2p::multiaddr::Protocol::P2p(p)) => p,
        other => panic!("{other:?}"),
    };
    let r = from
        .admin()
        .call(AdminRequest::ConnectPeer {
            addr: transport,
            peer,
        })
        .await;
    assert_eq!(r, Ok(AdminResponse::Null));
}

/// Publishes until gossipsub has a peer for the topic (the mesh forms on heartbeats).
async fn publish_when_ready(node: &NodeHandle, req: PublishRequest) {
    for _ in 0..100 {
        match node.publish(req.clone()).await {
            Ok(_) => return,
            Err(e) => {
                tracing_fallback(&e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    panic!("could not publish");
}

fn tracing_fallback(_e: &op_p2p_node::driver::PublishFailure) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_gossip_blocks_on_all_four_topics() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let t = now_secs();
        // v1 before Canyon, v2 before Ecotone, v3 before Isthmus, v4 after: each block's
        // timestamp picks its topic, and all are inside the 60 s window.
        let forks = ForkSchedule {
            canyon: Some(t - 40),
            ecotone: Some(t - 30),
            isthmus: Some(t - 20),
            jovian: None,
        };
        let a = spawn(config(0, forks, false, vec![]), SpawnOptions::default())
            .await
            .unwrap();
        let mut b = spawn(config(1, forks, false, vec![]), SpawnOptions::default())
            .await
            .unwrap();
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
            let b = BlockBuilder::new(v, number, ts)
                .with_transactions(transactions(CHAIN, number, 5, 32));
            let (payload, root) = b.build();
            publish_when_ready(
                &a,
                PublishRequest::Sign {
                    payload: Box::new(payload),
                    parent_beacon_block_root: root,
                },
            )
            .await;
            let got = blocks.next().await.unwrap();
            assert_eq!(got.version, v);
            assert_eq!(got.envelope.payload.as_v1().block_number, number);
        }
        a.shutdown().await;
        b.shutdown().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_find_each_other_through_a_bootnode_and_deliver_every_block() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let forks = ForkSchedule::ALL_AT_GENESIS;
        let boot = spawn(config(100, forks, true, vec![]), SpawnOptions::default())
            .await
            .unwrap();
        let boot_enr: Bootnode = boot.enr().unwrap().parse().unwrap();
        let mut nodes = Vec::new();
        for i in 0..9u64 {
            nodes.push(
                spawn(
                    config(i, forks, true, vec![boot_enr.clone()]),
                    SpawnOptions::default(),
                )
                .await
                .unwrap(),
            );
        }
        // Everyone connects to several others, found through discovery alone.
        loop {
            let mut min = usize::MAX;
            for n in &nodes {
                let Ok(AdminResponse::PeerStats(s)) = n.admin().call(AdminRequest::PeerStats).await
                else {
                    panic!()
                };
                min = min.min(s.connected as usize);
            }
            if min >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut streams: Vec<_> = nodes
            .iter_mut()
            .skip(1)
            .map(|n| n.blocks().unwrap())
            .collect();
        let t = now_secs();
        for number in 1..=5u64 {
            let (payload, root) = BlockBuilder::new(BlockVersion::V4, number, t).build();
            publish_when_ready(
                &nodes[0],
                PublishRequest::Sign {
                    payload: Box::new(payload),
                    parent_beacon_block_root: root,
                },
            )
            .await;
        }
        for s in &mut streams {
            let mut got = Vec::new();
            while got.len() < 5 {
                got.push(
                    s.next()
                        .await
                        .unwrap()
                        .envelope
                        .payload
                        .as_v1()
                        .block_number,
                );
            }
            got.sort();
            assert_eq!(got, vec![1, 2, 3, 4, 5]);
        }
        let Ok(AdminResponse::DiscoveryTable(table)) =
            nodes[1].admin().call(AdminRequest::DiscoveryTable).await
        else {
            panic!()
        };
        assert!(!table.is_empty());
        for n in nodes {
            n.shutdown().await;
        }
        boot.shutdown().await;
    })
    .await
    .expect("bounded");
}
