//! op-node's strict no-sign policy (spec §1.2): gossip carrying `from`, `seqno` or `signature`
//! is dropped before validation, even when its payload is a valid block. A publisher built
//! here with rust-libp2p's gossipsub in signing mode sends a valid, correctly signed block;
//! our node must not deliver it. The same publisher in anonymous mode is delivered, so the
//! test can fail.

use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, SwarmBuilder, noise, tcp, yamux};
use op_p2p_core::BlockVersion;
use op_p2p_core::testkit::{BlockBuilder, dev_key, keypair};
use op_p2p_tests::{CHAIN, Rt, dev_config, now_secs, shutdown};

/// Spawns our node, connects a rust-libp2p gossipsub publisher with `authenticity`, publishes
/// one valid v4 block, and says whether our node delivered it within `wait`.
async fn delivered(
    authenticity: MessageAuthenticity,
    validation: ValidationMode,
    key: u64,
    wait: Duration,
) -> bool {
    let mut node = Rt::Tokio.spawn(dev_config(50 + key)).await;
    let mut blocks = node.blocks().unwrap();
    let target: Multiaddr = node.listen_addrs()[0].clone();

    let config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(100))
        .max_transmit_size(10 * 1024 * 1024)
        .validation_mode(validation)
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(
                op_p2p_core::gossip::wire::message_id(m.topic.as_str(), &m.data)
                    .0
                    .to_vec(),
            )
        })
        .build()
        .unwrap();
    let mut publisher = SwarmBuilder::with_existing_identity(keypair(60 + key))
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            gossipsub::Behaviour::<
                gossipsub::IdentityTransform,
                gossipsub::AllowAllSubscriptionFilter,
            >::new(authenticity, config)
            .unwrap()
        })
        .unwrap()
        .build();
    let topic = IdentTopic::new(format!("/optimism/{CHAIN}/3/blocks"));
    publisher.behaviour_mut().subscribe(&topic).unwrap();
    publisher.dial(target).unwrap();

    let data = BlockBuilder::new(BlockVersion::V4, 7, now_secs())
        .sign(&dev_key(0), CHAIN)
        .unwrap();
    let mut published = false;
    let deadline = tokio::time::sleep(Duration::from_secs(15));
    tokio::pin!(deadline);
    let mut stop_at: Option<tokio::time::Instant> = None;
    let result = loop {
        let settle = async {
            match stop_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => futures::future::pending().await,
            }
        };
        tokio::select! {
            ev = publisher.select_next_some() => {
                if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { topic: t, .. }) = ev
                    && t == topic.hash()
                    && !published
                {
                    // Our node is on the topic: publish (flood publish reaches it directly).
                    publisher.behaviour_mut().publish(topic.clone(), data.clone()).unwrap();
                    published = true;
                    stop_at = Some(tokio::time::Instant::now() + wait);
                }
            }
            b = blocks.next() => break b.is_some_and(|b| b.envelope.payload.as_v1().block_number == 7),
            _ = settle => break false,
            _ = &mut deadline => panic!("the publisher never saw our node subscribe"),
        }
    };
    shutdown(node).await;
    result
}

#[test]
fn gossip_carrying_from_seqno_and_signature_is_dropped() {
    Rt::Tokio.block_on_within(Duration::from_secs(60), async {
        let kp = keypair(70);
        assert!(
            !delivered(
                MessageAuthenticity::Signed(kp),
                ValidationMode::Strict,
                1,
                Duration::from_secs(3)
            )
            .await,
            "a signed gossip message (from/seqno/signature set) must never be delivered"
        );
        assert!(
            delivered(
                MessageAuthenticity::Anonymous,
                ValidationMode::Anonymous,
                2,
                Duration::from_secs(10)
            )
            .await,
            "the same block published anonymously is delivered"
        );
    });
}
