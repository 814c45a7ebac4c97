//! The validation worker pool (issue 15): a node validating on two worker threads gives every
//! message exactly one verdict, in the order the messages arrived, and delivers the honest
//! blocks, on both runtimes.

use std::time::Duration;

use futures::StreamExt;
use op_p2p_core::testkit::{BlockBuilder, dev_key, transactions};
use op_p2p_core::{BlockVersion, Reason, Verdict};
use op_p2p_node::SpawnOptions;
use op_p2p_node::driver::NodeEvent;
use op_p2p_tests::{
    CHAIN, Rt, block_numbers, connect, dev_config, now_secs, on_both_runtimes, publish_when_ready,
    signed_by, within,
};

/// Honest blocks published.
const HONEST: u64 = 24;
/// Every this many honest blocks, one signed by a stranger follows.
const FORGED_EVERY: u64 = 6;
/// Transactions (of 4 KiB calldata) in the big block: ~400 KB, past the pool's parallel
/// hashing threshold, and slower to check than the small ones after it.
const BIG_TXS: usize = 100;

/// What a verdict event must say, in order.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    Accept(u64),
    WrongSigner,
}

async fn two_workers_keep_arrival_order_and_deliver_honest_blocks(rt: Rt) {
    let mut pc = dev_config(0);
    // The publisher stands for the network, forged blocks included.
    pc.core.publish.verify_signer = false;
    let publisher = rt.spawn(pc).await;
    let mut rc = dev_config(1);
    rc.validation_workers = 2;
    let mut receiver = rt
        .spawn_with(rc, SpawnOptions::default().with_events(true))
        .await;
    let mut events = receiver.events().expect("events");
    let mut blocks = receiver.blocks().expect("blocks");
    connect(&receiver, &publisher).await;

    let t = now_secs();
    let mut want = Vec::new();
    for n in 1..=HONEST {
        let mut b = BlockBuilder::new(BlockVersion::V4, n, t);
        if n == 1 {
            // A big block first: the small ones behind it finish on the other worker before
            // it does, and must still be judged after it.
            b = b.with_transactions(transactions(CHAIN, n, BIG_TXS, 4096));
        }
        publish_when_ready(&publisher, signed_by(&dev_key(0), &b)).await;
        want.push(Want::Accept(n));
        if n % FORGED_EVERY == 0 {
            let forged = BlockBuilder::new(BlockVersion::V4, 1000 + n, t);
            publish_when_ready(&publisher, signed_by(&dev_key(7), &forged)).await;
            want.push(Want::WrongSigner);
        }
    }

    // Every honest block arrives.
    let numbers = block_numbers(&mut blocks, HONEST as usize).await;
    assert_eq!(numbers, (1..=HONEST).collect::<Vec<_>>());

    // One verdict per message, in publishing order (one connection: arrival order).
    let mut got = Vec::new();
    while got.len() < want.len() {
        let event = within(Duration::from_secs(20), "a verdict event", events.next())
            .await
            .expect("the node runs");
        if let NodeEvent::Verdict {
            verdict,
            reason,
            block,
            ..
        } = event
        {
            got.push(match (verdict, reason, block) {
                (Verdict::Accept, Reason::Accepted, Some((n, _))) => Want::Accept(n),
                (Verdict::Reject, Reason::WrongSigner, None) => Want::WrongSigner,
                other => panic!("unexpected verdict {other:?}"),
            });
        }
    }
    assert_eq!(got, want);
    // ...and no second verdict for any of them.
    let extra = async_std::future::timeout(Duration::from_millis(500), async {
        while let Some(event) = events.next().await {
            if let NodeEvent::Verdict { .. } = event {
                return true;
            }
        }
        false
    })
    .await;
    assert_ne!(extra, Ok(true), "a message got a second verdict");
}

on_both_runtimes!(two_workers_keep_arrival_order_and_deliver_honest_blocks);
