//! Each health reason: driven into its state and out of it.

use super::super::tests::{
    answer_sign, connect, drain, enqueue, gossip_from, node, published, sign_request,
};
use super::*;
use crate::gossip::topic::BlockVersion;
use crate::node::{Direction, Input};
use crate::testkit::{BlockBuilder, dev_key, enr, peer_id};
use std::net::{IpAddr, Ipv4Addr};

const NOW: u64 = 1_750_000_000;
const T0: u64 = NOW * 1000;

/// Ticks the node every second from `from` to `to` (inclusive), so housekeeping runs.
fn tick_until(n: &mut Node, from: u64, to: u64) {
    let mut t = from;
    while t <= to {
        n.handle_input(t, Input::Tick);
        drain(n);
        t += 1000;
    }
}

fn codes(n: &Node, now: u64) -> Vec<HealthCode> {
    n.health(now).reasons.iter().map(|r| r.code).collect()
}

fn block(n: &mut Node, now: u64, number: u64) {
    let data = BlockBuilder::new(BlockVersion::V4, number, now / 1000)
        .sign(&dev_key(0), 901)
        .unwrap();
    n.handle_input(now, gossip_from(number, &data, peer_id(1)));
    drain(n);
}

#[test]
fn a_fresh_node_is_ok_and_serialises_as_documented() {
    let mut n = node();
    n.handle_input(T0, Input::Tick);
    let h = n.health(T0);
    assert_eq!(h.status, HealthStatus::Ok);
    assert_eq!(
        serde_json::to_value(&h).unwrap(),
        serde_json::json!({"status": "ok", "reasons": []})
    );
}

#[test]
fn no_recent_blocks_while_peers_are_connected_starts_after_ten_block_times_and_clears() {
    let mut n = node();
    n.config.discovery = None;
    n.discovery = None;
    assert!(connect(&mut n, T0, 1, [10, 0, 0, 1], Direction::Inbound));
    tick_until(&mut n, T0, T0 + 19_000);
    assert!(!codes(&n, T0 + 19_000).contains(&HealthCode::NoRecentBlocks));
    tick_until(&mut n, T0 + 20_000, T0 + 21_000);
    let h = n.health(T0 + 21_000);
    let r = h
        .reasons
        .iter()
        .find(|r| r.code == HealthCode::NoRecentBlocks)
        .expect("no_recent_blocks");
    assert_eq!(r.since_ms, T0 + NO_BLOCK_BLOCK_TIMES * 2000);
    assert_eq!(h.status, HealthStatus::Degraded);
    assert_eq!(
        serde_json::to_value(r).unwrap()["code"],
        serde_json::json!("no_recent_blocks")
    );
    // A block clears it.
    block(&mut n, T0 + 22_000, 1);
    assert!(!codes(&n, T0 + 22_000).contains(&HealthCode::NoRecentBlocks));
    // Without peers, silence is not this reason.
    n.handle_input(T0 + 23_000, Input::ConnectionClosed { peer: peer_id(1) });
    tick_until(&mut n, T0 + 23_000, T0 + 60_000);
    assert!(!codes(&n, T0 + 60_000).contains(&HealthCode::NoRecentBlocks));
}

#[test]
fn low_peer_count_starts_after_five_minutes_below_the_low_water_mark_and_clears() {
    let mut n = node();
    n.config.conn.low = 2;
    n.discovery = None;
    assert!(connect(&mut n, T0, 1, [10, 0, 0, 1], Direction::Inbound));
    tick_until(&mut n, T0, T0 + LOW_PEERS_MS - 1000);
    assert!(!codes(&n, T0 + LOW_PEERS_MS - 1000).contains(&HealthCode::LowPeerCount));
    tick_until(&mut n, T0 + LOW_PEERS_MS, T0 + LOW_PEERS_MS);
    let h = n.health(T0 + LOW_PEERS_MS);
    assert!(h.has(HealthCode::LowPeerCount), "{h:?}");
    assert!(connect(
        &mut n,
        T0 + LOW_PEERS_MS,
        2,
        [10, 0, 1, 1],
        Direction::Inbound
    ));
    tick_until(&mut n, T0 + LOW_PEERS_MS + 1000, T0 + LOW_PEERS_MS + 1000);
    assert!(!codes(&n, T0 + LOW_PEERS_MS + 1000).contains(&HealthCode::LowPeerCount));
}

#[test]
fn a_failing_signer_source_is_reported_until_it_recovers() {
    let mut n = node();
    n.handle_input(
        T0,
        Input::SignerSource(SignerSourceStatus::Failing {
            since: T0 - 5000,
            error: "connection refused".into(),
        }),
    );
    let h = n.health(T0);
    let r = &h.reasons[0];
    assert_eq!(
        (r.code, r.since_ms),
        (HealthCode::SignerSourceFailing, T0 - 5000)
    );
    assert!(r.message.contains("connection refused"));
    n.handle_input(
        T0 + 1000,
        Input::SignerSource(SignerSourceStatus::Ok { at: T0 + 1000 }),
    );
    assert!(!codes(&n, T0 + 1000).contains(&HealthCode::SignerSourceFailing));
}

#[test]
fn an_empty_discovery_table_is_reported_after_a_minute_and_clears_with_a_record() {
    let mut n = node();
    tick_until(&mut n, T0, T0 + DISCOVERY_EMPTY_MS);
    assert!(codes(&n, T0 + DISCOVERY_EMPTY_MS).contains(&HealthCode::DiscoveryEmpty));
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 3));
    n.handle_input(
        T0 + DISCOVERY_EMPTY_MS,
        Input::Discovered(Box::new(enr(3, 901, ip, 9003))),
    );
    tick_until(
        &mut n,
        T0 + DISCOVERY_EMPTY_MS + 1000,
        T0 + DISCOVERY_EMPTY_MS + 1000,
    );
    assert!(!codes(&n, T0 + DISCOVERY_EMPTY_MS + 1000).contains(&HealthCode::DiscoveryEmpty));
    // Discovery off: never reported.
    let mut off = node();
    off.discovery = None;
    tick_until(&mut off, T0, T0 + 2 * DISCOVERY_EMPTY_MS);
    assert!(!codes(&off, T0 + 2 * DISCOVERY_EMPTY_MS).contains(&HealthCode::DiscoveryEmpty));
}

#[test]
fn a_stale_signer_is_reported_while_its_blocks_arrive_and_clears_after_the_window() {
    let mut n = node();
    n.discovery = None;
    assert!(connect(&mut n, T0, 1, [10, 0, 0, 1], Direction::Inbound));
    for i in 0..10u64 {
        let now = T0 + i * 2000;
        let data = BlockBuilder::new(BlockVersion::V4, 100 + i, now / 1000)
            .sign(&dev_key(5), 901)
            .unwrap();
        n.handle_input(now, gossip_from(i, &data, peer_id(1)));
        drain(&mut n);
    }
    let h = n.health(T0 + 20_000);
    let r = h
        .reasons
        .iter()
        .find(|r| r.code == HealthCode::StaleSigner)
        .expect("stale_signer");
    assert_eq!(r.since_ms, T0 + 2000, "from the first spared block");
    // The operator fixes the signer: blocks are accepted, the reason fades after the window.
    n.handle_input(T0 + 21_000, Input::SetUnsafeSigner(dev_key(5).address()));
    assert!(!codes(&n, T0 + 21_000).contains(&HealthCode::StaleSigner));
}

#[test]
fn a_sequencer_publishing_its_own_blocks_is_not_without_blocks() {
    let mut n = node();
    n.discovery = None;
    assert!(connect(&mut n, T0, 1, [10, 0, 0, 1], Direction::Inbound));
    for i in 0..30u64 {
        let now = T0 + i * 2000;
        let actions = enqueue(
            &mut n,
            now,
            i,
            sign_request(BlockVersion::V4, i + 1, now / 1000),
        );
        let sign = actions
            .iter()
            .find(|a| matches!(a, crate::node::Action::Sign { .. }))
            .expect("the queue asks for a signature");
        let after = answer_sign(&mut n, now, sign, &dev_key(0));
        assert!(
            after
                .iter()
                .any(|a| matches!(a, crate::node::Action::Publish { .. })),
            "{after:?}"
        );
        published(&mut n, now, i);
        n.handle_input(now + 1000, Input::Tick);
        drain(&mut n);
    }
    assert!(!codes(&n, T0 + 60_000).contains(&HealthCode::NoRecentBlocks));
}
