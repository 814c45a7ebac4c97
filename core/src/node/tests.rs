use super::*;
use crate::fork::ForkSchedule;
use crate::gossip::topic::BlockVersion;
use crate::publish::{FailureKind, PublishId};
use crate::testkit::{BlockBuilder, dev_key, peer_id};
use std::sync::Arc;

const NOW: u64 = 1_750_000_000;

pub(super) fn node() -> Node {
    Node::new(Config::new(
        901,
        dev_key(0).address(),
        ForkSchedule::ALL_AT_GENESIS,
        2,
        peer_id(0),
    ))
}

pub(super) fn gossip(handle: u64, topic: &str, data: Vec<u8>) -> Input {
    Input::Gossip(GossipMessage {
        handle: MessageHandle(handle),
        topic: topic.into(),
        data: data.into(),
        source: None,
    })
}

pub(super) fn drain(n: &mut Node) -> Vec<Action> {
    std::iter::from_fn(|| n.poll_action()).collect()
}

#[test]
fn every_gossip_input_gets_exactly_one_verdict_and_accepts_are_delivered() {
    let mut n = node();
    let data = BlockBuilder::new(BlockVersion::V4, 1, NOW)
        .sign(&dev_key(0), 901)
        .unwrap();
    n.handle_input(
        NOW * 1000,
        gossip(1, "/optimism/901/3/blocks", data.clone()),
    );
    let actions = drain(&mut n);
    assert!(matches!(
        actions.as_slice(),
        [Action::Verdict { handle: MessageHandle(1), verdict: Verdict::Accept, .. }, Action::Deliver(d)]
            if d.handle == MessageHandle(1) && d.version == BlockVersion::V4
    ));
    n.handle_input(
        NOW * 1000,
        gossip(2, "/optimism/901/3/blocks", data.clone()),
    );
    let actions = drain(&mut n);
    assert!(matches!(
        actions.as_slice(),
        [Action::Verdict {
            reason: Reason::Duplicate,
            ..
        }]
    ));
    assert_eq!(n.stats().counters.verdicts(Reason::Accepted), 1);
    assert_eq!(n.stats().counters.verdicts(Reason::Duplicate), 1);
}

#[test]
fn other_chains_and_unknown_topics_are_rejected() {
    let mut n = node();
    let data = BlockBuilder::new(BlockVersion::V4, 1, NOW)
        .sign(&dev_key(0), 10)
        .unwrap();
    for (h, topic) in [
        (1, "/optimism/10/3/blocks"),
        (2, "/optimism/901/4/blocks"),
        (3, "blocks"),
    ] {
        n.handle_input(NOW * 1000, gossip(h, topic, data.clone()));
        let actions = drain(&mut n);
        assert!(matches!(
            actions.as_slice(),
            [Action::Verdict {
                verdict: Verdict::Reject,
                reason: Reason::UnknownTopic,
                ..
            }]
        ));
    }
}

#[test]
fn signer_changes_arm_a_timer_that_clears_the_old_signer() {
    let mut n = node();
    let t0 = NOW * 1000;
    n.handle_input(t0, Input::Tick);
    drain(&mut n);
    let idle = n.poll_timeout().unwrap();
    assert!(idle > t0, "nothing due right after a tick");
    n.handle_input(t0, Input::SetUnsafeSigner(dev_key(1).address()));
    let grace_end = t0 + crate::gossip::signer_set::DEFAULT_ROTATION_GRACE_MS;
    assert_eq!(
        n.validator().signer().previous().map(|(_, end)| end),
        Some(grace_end)
    );
    // Tick at every deadline until the grace ends: the timer never skips it.
    let mut now = t0;
    while n.validator().signer().previous().is_some() {
        let next = n.poll_timeout().unwrap();
        assert!(
            next > now && next <= grace_end,
            "deadline {next} outside ({now}, {grace_end}]"
        );
        now = next;
        n.handle_input(now, Input::Tick);
        drain(&mut n);
    }
    assert_eq!(now, grace_end);
    // A clock that goes backwards does not move timers back.
    n.handle_input(t0, Input::Tick);
    assert!(n.poll_timeout().unwrap() >= grace_end);
}

// ---- peer side -------------------------------------------------------------------------

use crate::admin::{AdminError, AdminRequest, AdminResponse};
use crate::peers::score_ban::BanConfig;
use crate::testkit::enr;
use std::net::{IpAddr, Ipv4Addr};

pub(super) fn addr(ip: [u8; 4], port: u16) -> Multiaddr {
    format!("/ip4/{}.{}.{}.{}/tcp/{port}", ip[0], ip[1], ip[2], ip[3])
        .parse()
        .unwrap()
}

pub(super) fn connect(n: &mut Node, now: u64, i: u64, ip: [u8; 4], direction: Direction) -> bool {
    let a = addr(ip, 9000 + i as u16);
    let p = peer_id(i);
    if !n.allow_established(now, &p, &a, direction) {
        return false;
    }
    n.handle_input(
        now,
        Input::ConnectionEstablished {
            peer: p,
            addr: a,
            direction,
        },
    );
    true
}

pub(super) fn admin(
    n: &mut Node,
    now: u64,
    id: u64,
    request: AdminRequest,
) -> Result<AdminResponse, AdminError> {
    n.handle_input(
        now,
        Input::Admin {
            id: RequestId(id),
            request,
        },
    );
    drain(n)
        .into_iter()
        .find_map(|a| match a {
            Action::AdminResponse { id: got, result } if got == RequestId(id) => Some(result),
            _ => None,
        })
        .expect("an admin response")
}

#[test]
fn connections_show_up_in_the_peer_book_and_the_admin_api() {
    let mut n = node();
    let t = NOW * 1000;
    assert!(connect(&mut n, t, 1, [10, 0, 0, 1], Direction::Inbound));
    assert!(connect(&mut n, t, 2, [10, 0, 1, 1], Direction::Outbound));
    n.handle_input(
        t,
        Input::Ping {
            peer: peer_id(1),
            rtt_ns: 5_000_000,
        },
    );
    n.handle_input(
        t,
        Input::Subscription {
            peer: peer_id(1),
            topic: "/optimism/901/3/blocks".into(),
            subscribed: true,
        },
    );
    let Ok(AdminResponse::Peers(dump)) =
        admin(&mut n, t, 1, AdminRequest::Peers { connected: true })
    else {
        panic!()
    };
    assert_eq!(dump.total_connected, 2);
    let info = &dump.peers[&peer_id(1)];
    assert_eq!(info.latency_ns, 5_000_000, "latency in nanoseconds");
    assert!(info.gossip_blocks);
    assert_eq!(u8::from(info.direction), 1);
    let Ok(AdminResponse::PeerStats(stats)) = admin(&mut n, t, 2, AdminRequest::PeerStats) else {
        panic!()
    };
    assert_eq!(
        (stats.connected, stats.blocks_topic_v4, stats.known),
        (2, 1, 2)
    );
    n.handle_input(t + 1, Input::ConnectionClosed { peer: peer_id(1) });
    let Ok(AdminResponse::Peers(dump)) =
        admin(&mut n, t, 3, AdminRequest::Peers { connected: true })
    else {
        panic!()
    };
    assert_eq!(dump.total_connected, 1);
    let Ok(AdminResponse::SelfInfo(me)) = admin(&mut n, t, 4, AdminRequest::SelfInfo) else {
        panic!()
    };
    assert_eq!(me.peer_id, peer_id(0));
    assert_eq!(me.chain_id, 901, "self reports the real chain id");
    assert!(me.gossip_blocks);
}

#[test]
fn a_peer_spamming_invalid_blocks_is_banned_disconnected_and_refused() {
    let mut n = node();
    let spammer = peer_id(7);
    let t0 = NOW * 1000;
    assert!(connect(&mut n, t0, 7, [10, 0, 0, 7], Direction::Inbound));
    assert!(connect(&mut n, t0, 8, [10, 0, 0, 8], Direction::Inbound));
    drain(&mut n);
    let bad = BlockBuilder::new(BlockVersion::V4, 1, NOW)
        .sign(&dev_key(9), 901)
        .unwrap();
    let mut banned_at = None;
    for i in 0..200u64 {
        let now = t0 + i * 100;
        n.handle_input(
            now,
            Input::Gossip(GossipMessage {
                handle: MessageHandle(i),
                topic: "/optimism/901/3/blocks".into(),
                data: bad.clone().into(),
                source: Some(spammer),
            }),
        );
        n.handle_input(now, Input::Tick);
        for a in drain(&mut n) {
            if let Action::Disconnect {
                peer,
                reason: DisconnectReason::Banned,
            } = a
            {
                assert_eq!(peer, spammer, "only the spammer is banned");
                banned_at.get_or_insert(now);
            }
        }
        if banned_at.is_some() {
            break;
        }
    }
    let banned_at = banned_at.expect("banned within 20 s of spam");
    assert!(
        banned_at - t0 <= 10_000,
        "banned after {} ms",
        banned_at - t0
    );
    assert!(n.gater().peer_ban(banned_at, &spammer).is_some());
    assert!(!n.allow_dial(banned_at, &spammer, None));
    assert!(!n.allow_established(
        banned_at,
        &spammer,
        &addr([10, 0, 0, 7], 1),
        Direction::Inbound
    ));
    // The honest peer keeps its place; the ban expires after an hour.
    assert!(n.gater().peer_ban(banned_at, &peer_id(8)).is_none());
    assert!(
        n.gater()
            .peer_ban(banned_at + 3_600_000, &spammer)
            .is_none()
    );
}

#[test]
fn discovered_records_are_filtered_and_dialled_below_the_low_water_mark() {
    let mut n = node();
    let t = NOW * 1000;
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 3));
    n.handle_input(t, Input::Discovered(Box::new(enr(3, 901, ip, 9003))));
    n.handle_input(t, Input::Discovered(Box::new(enr(4, 10, ip, 9004))));
    assert_eq!(
        n.discovery_table().unwrap().len(),
        1,
        "the other chain's record is refused"
    );
    assert_eq!(n.stats().counters.discovered_refused, 1);
    let mut dialled = Vec::new();
    let mut now = t;
    for _ in 0..20 {
        now = n.poll_timeout().unwrap().max(now);
        n.handle_input(now, Input::Tick);
        for a in drain(&mut n) {
            if let Action::Dial { peer, addrs } = a {
                dialled.push((peer, addrs));
            }
        }
        if !dialled.is_empty() {
            break;
        }
    }
    assert_eq!(dialled.len(), 1);
    assert_eq!(dialled[0].0, peer_id(3));
    assert_eq!(
        dialled[0].1,
        vec!["/ip4/203.0.113.3/tcp/9003".parse::<Multiaddr>().unwrap()]
    );
    assert!(now - t <= 5_000);
}

#[test]
fn admin_blocks_and_disconnect_peer_lifts_the_block() {
    let mut n = node();
    let t = NOW * 1000;
    assert!(admin(&mut n, t, 1, AdminRequest::BlockPeer(peer_id(5))).is_ok());
    assert!(
        !connect(&mut n, t, 5, [10, 0, 0, 5], Direction::Inbound),
        "blocked inbound"
    );
    assert!(!n.allow_dial(t, &peer_id(5), None), "blocked outbound");
    let Ok(AdminResponse::BlockedPeers(list)) = admin(&mut n, t, 2, AdminRequest::ListBlockedPeers)
    else {
        panic!()
    };
    assert_eq!(list, vec![peer_id(5)]);
    assert!(
        admin(
            &mut n,
            t,
            3,
            AdminRequest::BlockAddr("10.9.9.9".parse().unwrap())
        )
        .is_ok()
    );
    assert!(!n.allow_inbound(t, "10.9.9.9".parse().unwrap()));
    assert!(
        admin(
            &mut n,
            t,
            4,
            AdminRequest::BlockSubnet("10.8.0.0/16".parse().unwrap())
        )
        .is_ok()
    );
    assert!(!n.allow_inbound(t, "10.8.200.1".parse().unwrap()));
    assert!(n.allow_inbound(t, "10.7.0.1".parse().unwrap()));
    // disconnectPeer also removes the permanent block, as op-node does.
    n.handle_input(
        t,
        Input::Admin {
            id: RequestId(5),
            request: AdminRequest::DisconnectPeer(peer_id(5)),
        },
    );
    let acts = drain(&mut n);
    assert!(acts.iter().any(|a| matches!(
        a,
        Action::Disconnect {
            reason: DisconnectReason::Admin,
            ..
        }
    )));
    assert!(acts.iter().any(|a| matches!(
        a,
        Action::PersistState(StateChanges {
            gater: true,
            peers: true,
            learned: false
        })
    )));
    assert!(connect(&mut n, t, 5, [10, 0, 0, 5], Direction::Inbound));
    assert_eq!(
        admin(&mut n, t, 6, AdminRequest::DiscoveryTable).map(|_| ()),
        Ok(())
    );
}

#[test]
fn connect_peer_waits_for_the_connection_or_times_out() {
    let mut n = node();
    let t = NOW * 1000;
    let a = addr([10, 0, 0, 9], 9009);
    n.handle_input(
        t,
        Input::Admin {
            id: RequestId(1),
            request: AdminRequest::ConnectPeer {
                addr: a.clone(),
                peer: peer_id(9),
            },
        },
    );
    let acts = drain(&mut n);
    assert!(
        acts.iter()
            .any(|x| matches!(x, Action::Dial { peer, .. } if *peer == peer_id(9)))
    );
    assert!(
        !acts
            .iter()
            .any(|x| matches!(x, Action::AdminResponse { .. })),
        "no answer before the connection"
    );
    n.handle_input(
        t + 2_000,
        Input::ConnectionEstablished {
            peer: peer_id(9),
            addr: a,
            direction: Direction::Outbound,
        },
    );
    // Connected, but answered only once identify ran (as go-libp2p's Host.Connect).
    assert!(
        !drain(&mut n)
            .iter()
            .any(|x| matches!(x, Action::AdminResponse { .. }))
    );
    n.handle_input(
        t + 2_000,
        Input::Identified {
            peer: peer_id(9),
            agent_version: "op-node".into(),
            protocol_version: "".into(),
            protocols: Vec::new(),
            listen_addrs: Vec::new(),
        },
    );
    let acts = drain(&mut n);
    assert!(acts.iter().any(|x| matches!(
        x,
        Action::AdminResponse {
            id: RequestId(1),
            result: Ok(AdminResponse::Null)
        }
    )));
    // A remote that closes the connection right after the handshake (its gater refusing
    // us): an error, not a success.
    n.handle_input(
        t + 2_000,
        Input::Admin {
            id: RequestId(3),
            request: AdminRequest::ConnectPeer {
                addr: addr([10, 0, 0, 11], 1),
                peer: peer_id(11),
            },
        },
    );
    drain(&mut n);
    n.handle_input(
        t + 2_000,
        Input::ConnectionEstablished {
            peer: peer_id(11),
            addr: addr([10, 0, 0, 11], 1),
            direction: Direction::Outbound,
        },
    );
    n.handle_input(t + 2_000, Input::ConnectionClosed { peer: peer_id(11) });
    assert!(drain(&mut n).iter().any(|x| matches!(
        x,
        Action::AdminResponse {
            id: RequestId(3),
            result: Err(AdminError::ConnectFailed(_))
        }
    )));
    // A peer that never answers: an error after 30 s, not before.
    let t = t + 2_000;
    n.handle_input(
        t,
        Input::Admin {
            id: RequestId(2),
            request: AdminRequest::ConnectPeer {
                addr: addr([10, 0, 0, 10], 1),
                peer: peer_id(10),
            },
        },
    );
    drain(&mut n);
    n.handle_input(t + 29_999, Input::Tick);
    assert!(
        !drain(&mut n)
            .iter()
            .any(|x| matches!(x, Action::AdminResponse { .. }))
    );
    n.handle_input(t + 30_000, Input::Tick);
    assert!(drain(&mut n).iter().any(|x| matches!(
        x,
        Action::AdminResponse {
            id: RequestId(2),
            result: Err(AdminError::ConnectTimeout)
        }
    )));
    assert_eq!(n.pending_counts().0, 0);
}

pub(super) fn sign_request(version: BlockVersion, number: u64, ts: u64) -> PublishRequest {
    let (payload, root) = BlockBuilder::new(version, number, ts).build();
    PublishRequest::Sign {
        payload: Box::new(payload),
        parent_beacon_block_root: root,
    }
}

pub(super) fn enqueue(n: &mut Node, now: u64, id: u64, req: PublishRequest) -> Vec<Action> {
    n.handle_input(
        now,
        Input::Publish {
            id: PublishId(id),
            request: req,
        },
    );
    drain(n)
}

/// The runtime's answer to an [`Action::Sign`]: signs with `key`.
pub(super) fn answer_sign(
    n: &mut Node,
    now: u64,
    action: &Action,
    key: &crate::gossip::signature::SequencerKey,
) -> Vec<Action> {
    let Action::Sign {
        id,
        chain_id,
        payload_hash,
    } = action
    else {
        panic!("expected a sign action, got {action:?}")
    };
    let hash = crate::gossip::signature::signing_hash(
        crate::gossip::signature::BLOCK_SIGNING_DOMAIN,
        *chain_id,
        *payload_hash,
    );
    n.handle_input(
        now,
        Input::Signed {
            id: *id,
            result: Ok(key.sign_hash(&hash)),
        },
    );
    drain(n)
}

pub(super) fn published(n: &mut Node, now: u64, id: u64) -> Vec<Action> {
    n.handle_input(
        now,
        Input::Published {
            id: PublishId(id),
            result: Ok(vec![peer_id(7)]),
        },
    );
    drain(n)
}

fn outcome_of(actions: &[Action], id: u64) -> Option<PublishOutcome> {
    actions.iter().find_map(|a| match a {
        Action::PublishOutcome { id: i, outcome } if i.0 == id => Some(outcome.clone()),
        _ => None,
    })
}

#[test]
fn published_blocks_are_not_delivered_back_and_have_op_node_ids() {
    let mut n = node();
    let now = NOW * 1000;
    let acts = enqueue(&mut n, now, 1, sign_request(BlockVersion::V4, 3, NOW));
    assert!(matches!(
        acts.as_slice(),
        [Action::Sign {
            id: PublishId(1),
            chain_id: 901,
            ..
        }]
    ));
    let acts = answer_sign(&mut n, now, &acts[0], &dev_key(0));
    let Some(Action::Publish {
        id,
        topic,
        data,
        message_id,
        block,
    }) = acts.into_iter().next()
    else {
        panic!()
    };
    assert_eq!(id, PublishId(1));
    assert_eq!(topic, "/optimism/901/3/blocks");
    assert_eq!(message_id, crate::gossip::wire::message_id(&topic, &data));
    assert_eq!(block.0, 3);
    assert_eq!(
        outcome_of(&published(&mut n, now, 1), 1),
        Some(PublishOutcome::Published {
            message_id,
            peers: vec![peer_id(7)]
        })
    );
    assert_eq!(n.publish_queue_len(), 0);
    n.handle_input(now, gossip(1, &topic, data.to_vec()));
    let acts = drain(&mut n);
    assert!(matches!(
        acts.as_slice(),
        [Action::Verdict {
            reason: Reason::Duplicate,
            ..
        }]
    ));
    // A v3 payload at an Isthmus timestamp is refused: permanently, never signed.
    let acts = enqueue(&mut n, now, 2, sign_request(BlockVersion::V3, 4, NOW));
    assert!(matches!(
        acts.as_slice(),
        [Action::PublishOutcome {
            outcome: PublishOutcome::Failed(PublishFailed {
                kind: FailureKind::Permanent,
                error: PublishError::WrongVersion { .. }
            }),
            ..
        }]
    ));
}

#[test]
fn a_signature_from_the_wrong_key_is_a_permanent_failure_and_the_next_block_goes_on() {
    let mut n = node();
    let now = NOW * 1000;
    let acts = enqueue(&mut n, now, 1, sign_request(BlockVersion::V4, 3, NOW));
    enqueue(&mut n, now, 2, sign_request(BlockVersion::V4, 4, NOW));
    let acts = answer_sign(&mut n, now, &acts[0], &dev_key(5));
    let Some(PublishOutcome::Failed(f)) = outcome_of(&acts, 1) else {
        panic!("{acts:?}")
    };
    assert_eq!(f.kind, FailureKind::Permanent);
    assert!(
        matches!(f.error, PublishError::WrongSigner { got, want } if got == dev_key(5).address() && want == dev_key(0).address())
    );
    // Nothing of block 1 was published; block 2 is signed next.
    assert!(!acts.iter().any(|a| matches!(a, Action::Publish { .. })));
    assert!(acts.iter().any(|a| matches!(
        a,
        Action::Sign {
            id: PublishId(2),
            ..
        }
    )));
}

#[test]
fn a_transient_signer_failure_retries_the_same_block_after_the_backoff() {
    let mut n = node();
    let now = NOW * 1000;
    enqueue(&mut n, now, 1, sign_request(BlockVersion::V4, 3, NOW));
    enqueue(&mut n, now, 2, sign_request(BlockVersion::V4, 4, NOW));
    n.handle_input(
        now,
        Input::Signed {
            id: PublishId(1),
            result: Err(PublishFailed::transient(PublishError::Signer(
                "timeout".into(),
            ))),
        },
    );
    assert!(
        drain(&mut n).is_empty(),
        "no outcome, no other block starts"
    );
    assert_eq!(n.poll_timeout(), Some(now + 100));
    n.handle_input(now + 100, Input::Tick);
    let acts = drain(&mut n);
    assert!(matches!(
        acts.as_slice(),
        [Action::Sign {
            id: PublishId(1),
            ..
        }]
    ));
    let acts = answer_sign(&mut n, now + 100, &acts[0], &dev_key(0));
    assert!(matches!(
        acts.as_slice(),
        [Action::Publish {
            id: PublishId(1),
            ..
        }]
    ));
}

#[test]
fn a_gossipsub_failure_is_retried_without_signing_again() {
    let mut n = node();
    let now = NOW * 1000;
    let acts = enqueue(&mut n, now, 1, sign_request(BlockVersion::V4, 3, NOW));
    answer_sign(&mut n, now, &acts[0], &dev_key(0));
    n.handle_input(
        now,
        Input::Published {
            id: PublishId(1),
            result: Err(PublishFailed::transient(PublishError::Gossip(
                "no peers".into(),
            ))),
        },
    );
    assert!(drain(&mut n).is_empty());
    n.handle_input(now + 100, Input::Tick);
    assert!(matches!(
        drain(&mut n).as_slice(),
        [Action::Publish {
            id: PublishId(1),
            ..
        }]
    ));
    assert!(matches!(
        outcome_of(&published(&mut n, now + 100, 1), 1),
        Some(PublishOutcome::Published { .. })
    ));
}

#[test]
fn a_hung_signer_leaves_the_block_to_its_deadline_and_a_late_signature_is_ignored() {
    let mut n = node();
    let now = NOW * 1000;
    let first = enqueue(&mut n, now, 1, sign_request(BlockVersion::V4, 3, NOW));
    n.handle_input(now + 10_000, Input::Tick);
    let acts = drain(&mut n);
    assert_eq!(
        outcome_of(&acts, 1),
        Some(PublishOutcome::Dropped(
            crate::publish::DropReason::DeadlinePassed
        ))
    );
    // The signer answers at last: too late, nothing goes out.
    assert!(answer_sign(&mut n, now + 10_001, &first[0], &dev_key(0)).is_empty());
    // The next block is signed as usual.
    let acts = enqueue(
        &mut n,
        now + 10_001,
        2,
        sign_request(BlockVersion::V4, 4, NOW + 10),
    );
    assert!(matches!(
        acts.as_slice(),
        [Action::Sign {
            id: PublishId(2),
            ..
        }]
    ));
}

#[test]
fn a_resealed_block_supersedes_the_one_being_signed() {
    let mut n = node();
    let now = NOW * 1000;
    let first = enqueue(&mut n, now, 1, sign_request(BlockVersion::V4, 3, NOW));
    let (payload, root) = BlockBuilder::new(BlockVersion::V4, 3, NOW + 1).build();
    let acts = enqueue(
        &mut n,
        now,
        2,
        PublishRequest::Sign {
            payload: Box::new(payload),
            parent_beacon_block_root: root,
        },
    );
    assert_eq!(
        outcome_of(&acts, 1),
        Some(PublishOutcome::Dropped(
            crate::publish::DropReason::Superseded
        ))
    );
    assert!(acts.iter().any(|a| matches!(
        a,
        Action::Sign {
            id: PublishId(2),
            ..
        }
    )));
    assert!(
        answer_sign(&mut n, now, &first[0], &dev_key(0)).is_empty(),
        "stale signature"
    );
}

#[test]
fn a_signed_envelope_skips_signing_but_not_the_signer_check() {
    let mut n = node();
    let now = NOW * 1000;
    let envelope = |key: &crate::gossip::signature::SequencerKey| {
        let b = BlockBuilder::new(BlockVersion::V4, 3, NOW);
        let data = b.sign(key, 901).unwrap();
        let mut raw = Vec::new();
        crate::gossip::wire::decompress_into(&data, &mut raw).unwrap();
        crate::gossip::wire::decode_envelope(BlockVersion::V4, &raw).unwrap()
    };
    let acts = enqueue(
        &mut n,
        now,
        1,
        PublishRequest::Signed(Arc::new(envelope(&dev_key(0)))),
    );
    assert!(matches!(
        acts.as_slice(),
        [Action::Publish {
            id: PublishId(1),
            ..
        }]
    ));
    published(&mut n, now, 1);
    let acts = enqueue(
        &mut n,
        now,
        2,
        PublishRequest::Signed(Arc::new(envelope(&dev_key(3)))),
    );
    assert!(matches!(
        outcome_of(&acts, 2),
        Some(PublishOutcome::Failed(PublishFailed {
            error: PublishError::WrongSigner { .. },
            ..
        }))
    ));
}

#[test]
fn without_signer_verification_any_signature_goes_out() {
    let mut cfg = Config::new(
        901,
        dev_key(0).address(),
        ForkSchedule::ALL_AT_GENESIS,
        2,
        peer_id(0),
    );
    cfg.publish.verify_signer = false;
    let mut n = Node::new(cfg);
    let acts = enqueue(
        &mut n,
        NOW * 1000,
        1,
        sign_request(BlockVersion::V4, 3, NOW),
    );
    let acts = answer_sign(&mut n, NOW * 1000, &acts[0], &dev_key(9));
    assert!(matches!(
        acts.as_slice(),
        [Action::Publish {
            id: PublishId(1),
            ..
        }]
    ));
}

#[test]
fn a_block_older_than_the_gossip_threshold_is_dropped_unsigned() {
    let mut n = node();
    let acts = enqueue(
        &mut n,
        NOW * 1000,
        1,
        sign_request(BlockVersion::V4, 3, NOW - 61),
    );
    assert_eq!(
        acts.iter()
            .map(|a| matches!(a, Action::Sign { .. }))
            .filter(|x| *x)
            .count(),
        0
    );
    assert_eq!(
        outcome_of(&acts, 1),
        Some(PublishOutcome::Dropped(crate::publish::DropReason::TooOld))
    );
}

#[test]
fn payload_by_number_is_served_from_accepted_blocks_within_rate_limits() {
    use crate::reqresp::codec::{decode_response, encode_request};
    // Without a server: every request gets the single byte 1.
    let mut n = node();
    n.handle_input(
        NOW * 1000,
        Input::PayloadRequest {
            stream: StreamHandle(1),
            peer: peer_id(2),
            data: encode_request(5).to_vec().into(),
        },
    );
    assert!(
        matches!(drain(&mut n).as_slice(), [Action::PayloadResponse { data, .. }] if data == &[1])
    );

    let clock = crate::reqresp::ChainClock {
        genesis_number: 0,
        genesis_time: NOW - 1000,
        block_time: 2,
    };
    let mut cfg = Config::new(
        901,
        dev_key(0).address(),
        ForkSchedule::ALL_AT_GENESIS,
        2,
        peer_id(0),
    );
    cfg.reqresp = Some(ReqRespConfig {
        clock,
        store: Default::default(),
        limits: Default::default(),
    });
    let mut n = Node::new(cfg);
    let t = NOW * 1000;
    let b = BlockBuilder::new(BlockVersion::V4, 5, NOW);
    n.handle_input(
        t,
        gossip(
            1,
            "/optimism/901/3/blocks",
            b.sign(&dev_key(0), 901).unwrap(),
        ),
    );
    drain(&mut n);
    let ask = |n: &mut Node, stream: u64, number: u64, now: u64| {
        n.handle_input(
            now,
            Input::PayloadRequest {
                stream: StreamHandle(stream),
                peer: peer_id(2),
                data: encode_request(number).to_vec().into(),
            },
        );
        drain(n)
            .into_iter()
            .filter_map(|a| match a {
                Action::PayloadResponse { stream, data } => Some((stream.0, data)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let got = ask(&mut n, 2, 5, t);
    let forks = ForkSchedule::ALL_AT_GENESIS;
    let sync = decode_response(&got[0].1[..], 5, &clock, &forks).unwrap();
    assert_eq!(sync.payload, b.build().0);
    assert_eq!(ask(&mut n, 3, 6, t)[0].1, vec![1], "unknown block");
    assert_eq!(
        ask(&mut n, 4, 10_000, t)[0].1,
        vec![2],
        "above the wall-clock head"
    );
    assert_eq!(ask(&mut n, 5, 7, t)[0].1.len(), 1);
    // The peer's burst of 15 is spent after 15 requests; the next waits for a token.
    for s in 6..17 {
        assert_eq!(ask(&mut n, s, 6, t).len(), 1);
    }
    assert!(ask(&mut n, 100, 5, t).is_empty(), "throttled, not refused");
    assert_eq!(n.pending_counts().1, 1);
    let at = n.poll_timeout().unwrap();
    assert!(at > t && at <= t + 250, "4/s refill: {at}");
    n.handle_input(at, Input::Tick);
    let served: Vec<_> = drain(&mut n)
        .into_iter()
        .filter(|a| matches!(a, Action::PayloadResponse { .. }))
        .collect();
    assert_eq!(served.len(), 1);
    // A malformed request is answered at once with 2 (invalid request), not dropped.
    n.handle_input(
        at,
        Input::PayloadRequest {
            stream: StreamHandle(101),
            peer: peer_id(3),
            data: vec![1, 2, 3].into(),
        },
    );
    assert!(
        matches!(drain(&mut n).as_slice(), [Action::PayloadResponse { data, .. }] if data == &[2])
    );
}

#[test]
fn exported_state_restores_bans_blocks_and_discovery() {
    let mut n = node();
    let t = NOW * 1000;
    admin(&mut n, t, 1, AdminRequest::BlockPeer(peer_id(5))).unwrap();
    admin(
        &mut n,
        t,
        2,
        AdminRequest::BlockSubnet("10.8.0.0/16".parse().unwrap()),
    )
    .unwrap();
    n.handle_input(
        t,
        Input::Discovered(Box::new(enr(
            3,
            901,
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 3)),
            9003,
        ))),
    );
    let state = n.export_state();
    let json = serde_json::to_string(&state).unwrap();
    let mut m = node();
    let report = m
        .restore_state(t + 1000, serde_json::from_str(&json).unwrap())
        .unwrap();
    assert_eq!(report.discovery, 1);
    assert_eq!(m.gater().blocked_peers(), vec![peer_id(5)]);
    assert!(!m.allow_inbound(t, "10.8.1.1".parse().unwrap()));
    assert_eq!(m.discovery_table().unwrap().len(), 1);
    assert_eq!(m.export_state(), n.export_state());
    // A state from another layout version is refused and changes nothing.
    let mut bad = state.clone();
    bad.version = 99;
    let mut k = node();
    assert!(matches!(
        k.restore_state(t, bad),
        Err(StateError::Version(99))
    ));
    assert!(k.gater().blocked_peers().is_empty());
}

#[test]
fn gossipsub_app_scores_follow_the_decay_back_to_zero() {
    let mut n = node();
    let t0 = NOW * 1000;
    assert!(connect(&mut n, t0, 7, [10, 0, 0, 7], Direction::Inbound));
    let bad = BlockBuilder::new(BlockVersion::V4, 1, NOW)
        .sign(&dev_key(9), 901)
        .unwrap();
    for i in 0..3u64 {
        n.handle_input(
            t0,
            Input::Gossip(GossipMessage {
                handle: MessageHandle(i),
                topic: "/optimism/901/3/blocks".into(),
                data: bad.clone().into(),
                source: Some(peer_id(7)),
            }),
        );
    }
    let sent: Vec<f64> = drain(&mut n)
        .into_iter()
        .filter_map(|a| match a {
            Action::SetAppScore { score, .. } => Some(score),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 3);
    assert!(sent[2] < sent[1] && sent[1] < sent[0] && sent[0] < 0.0);
    // As the core's score decays, gossipsub is told, until it is back at zero.
    let mut last = sent[2];
    let mut now = t0;
    for _ in 0..10_000 {
        now = n.poll_timeout().unwrap().max(now + 1);
        n.handle_input(now, Input::Tick);
        for a in drain(&mut n) {
            if let Action::SetAppScore { score, .. } = a {
                assert!(score > last, "scores only recover");
                last = score;
            }
        }
        if last == 0.0 {
            break;
        }
    }
    assert_eq!(last, 0.0, "gossipsub's copy decays back to zero");
}

/// A fresh node (no saved state) with one static peer, `peer` at `ip`.
fn node_with_static_peer(peer: PeerId, ip: [u8; 4]) -> Node {
    let mut config = Config::new(
        901,
        dev_key(0).address(),
        ForkSchedule::ALL_AT_GENESIS,
        2,
        peer_id(0),
    );
    config.static_peers = vec![(peer, vec![addr(ip, 9222)])];
    Node::new(config)
}

/// A node started without saved state must keep its static peers static after the first
/// housekeeping at today's time (their records were made at time 0): a static peer relaying
/// REJECTed blocks is never score-banned and stays in the book as static.
#[test]
fn a_fresh_node_keeps_static_peers_static_and_never_score_bans_them() {
    let relay = peer_id(7);
    let mut n = node_with_static_peer(relay, [10, 0, 0, 7]);
    let t0 = NOW * 1000;
    n.handle_input(t0, Input::Tick);
    assert!(connect(&mut n, t0, 7, [10, 0, 0, 7], Direction::Outbound));
    drain(&mut n);
    let bad = BlockBuilder::new(BlockVersion::V4, 1, NOW)
        .sign(&dev_key(9), 901)
        .unwrap();
    for i in 0..200u64 {
        let now = t0 + i * 100;
        n.handle_input(now, gossip_from(i, &bad, relay));
        n.handle_input(now, Input::Tick);
        for a in drain(&mut n) {
            assert!(
                !matches!(a, Action::Disconnect { peer, .. } if peer == relay),
                "a static peer is never disconnected for its score"
            );
        }
    }
    let end = t0 + 200 * 100;
    assert!(n.gater().peer_ban(end, &relay).is_none());
    assert!(n.book.get(&relay).is_some_and(|r| r.is_static));
}

/// A peer removed from the static list is not static after a restart from saved state, and one
/// still listed is static however the node starts.
#[test]
fn static_status_follows_the_configuration_across_restarts() {
    let (kept, removed) = (peer_id(7), peer_id(8));
    let config = |statics: &[PeerId]| {
        let mut c = Config::new(
            901,
            dev_key(0).address(),
            ForkSchedule::ALL_AT_GENESIS,
            2,
            peer_id(0),
        );
        c.static_peers = statics
            .iter()
            .map(|p| (*p, vec![addr([10, 0, 0, 9], 9222)]))
            .collect();
        c
    };
    let t0 = NOW * 1000;
    let mut before = Node::new(config(&[kept, removed]));
    before.handle_input(t0, Input::Tick);
    // Seen now, so its record is saved and restored whatever the expiry rules.
    assert!(connect(
        &mut before,
        t0,
        8,
        [10, 0, 0, 8],
        Direction::Outbound
    ));
    drain(&mut before);
    let saved = before.export_state();
    let mut after = Node::new(config(&[kept]));
    after.restore_state(t0 + 1_000, saved).unwrap();
    let record = after.book.get(&removed).expect("restored");
    assert!(!record.is_static, "no longer configured");
    after.handle_input(t0 + 2_000, Input::Tick);
    assert!(after.book.get(&kept).is_some_and(|r| r.is_static));
}

pub(super) fn gossip_from(handle: u64, data: &[u8], from: PeerId) -> Input {
    Input::Gossip(GossipMessage {
        handle: MessageHandle(handle),
        topic: "/optimism/901/3/blocks".into(),
        data: data.to_vec().into(),
        source: Some(from),
    })
}

// ---- bans at once on invalid gossip, and IP bans -------------------------------------------

/// An invalid v4 block (signed by a key that is not the chain's signer: REJECT `WrongSigner`).
pub(super) fn invalid_block() -> Vec<u8> {
    BlockBuilder::new(BlockVersion::V4, 1, NOW)
        .sign(&dev_key(9), 901)
        .unwrap()
}

/// A node at `t0` (its first tick done, so the ban monitor made its check at `t0` and makes
/// the next one at `t0 + 1 s`) with 30 honest peers connected, each from its own /24.
pub(super) fn node_with_30_honest_peers(t0: u64) -> Node {
    let mut n = node();
    n.handle_input(t0, Input::Tick);
    for i in 1..=30u64 {
        assert!(connect(
            &mut n,
            t0,
            i,
            [10, i as u8, 0, 1],
            Direction::Inbound
        ));
    }
    drain(&mut n);
    n
}

/// Feeds `from`'s invalid messages one input each at `now` until an input's actions disconnect
/// it as banned (at most `max`); returns how many it took and every disconnect seen.
pub(super) fn spam_until_banned(
    n: &mut Node,
    now: u64,
    from: PeerId,
    max: u64,
) -> (Option<u64>, Vec<(PeerId, DisconnectReason)>) {
    let bad = invalid_block();
    let mut disconnects = Vec::new();
    for k in 1..=max {
        n.handle_input(now, gossip_from(10_000 + k, &bad, from));
        let mut banned = false;
        for a in drain(n) {
            if let Action::Disconnect { peer, reason } = a {
                banned |= peer == from && reason == DisconnectReason::Banned;
                disconnects.push((peer, reason));
            }
        }
        if banned {
            return (Some(k), disconnects);
        }
    }
    (None, disconnects)
}

/// The spam-until-the-monitor's-turn hole: a fresh identity among 30 honest peers is banned
/// by the very REJECT that takes it to the threshold (17 in a burst), not up to 30 s later; its
/// IP is banned with it, so the next fresh identity from that IP is refused at accept, and a
/// second identity it already had connected there is closed.
#[test]
fn a_fresh_spammer_is_banned_by_the_reject_that_crosses_and_its_ip_refuses_the_next_identity() {
    let t0 = NOW * 1000;
    let mut n = node_with_30_honest_peers(t0);
    let ip = [203, 0, 113, 7];
    let (spammer, sibling) = (peer_id(100), peer_id(101));
    assert!(connect(&mut n, t0, 100, ip, Direction::Inbound));
    assert!(connect(&mut n, t0, 101, ip, Direction::Inbound));
    drain(&mut n);
    // Half a second later: the monitor's next check is another half second away.
    let t1 = t0 + 500;
    let (took, disconnects) = spam_until_banned(&mut n, t1, spammer, 200);
    assert_eq!(took, Some(17), "banned by the 17th REJECT, in that input");
    assert_eq!(
        disconnects,
        vec![
            (spammer, DisconnectReason::Banned),
            (sibling, DisconnectReason::Gated)
        ],
        "the spammer, then the other identity on its IP; no honest peer"
    );
    let until = t1 + BanConfig::default().duration_ms;
    assert_eq!(n.gater().peer_ban(t1, &spammer), Some(until));
    let ipaddr = IpAddr::V4(Ipv4Addr::from(ip));
    assert_eq!(n.gater().ip_ban(t1, ipaddr), Some(until), "same duration");
    let c = n.stats().counters;
    assert_eq!(
        (c.bans, c.bans_invalid_gossip, c.bans_score_drift, c.ip_bans),
        (1, 1, 0, 1)
    );
    // The spammer's messages still in flight are REJECTed but ban nobody again.
    let (again, more) = spam_until_banned(&mut n, t1, spammer, 10);
    assert_eq!((again, more.len()), (None, 0));
    assert_eq!(n.stats().counters.bans, 1);
    // A fresh identity from the same IP: refused at accept, and after the handshake too.
    n.handle_input(t1, Input::ConnectionClosed { peer: spammer });
    n.handle_input(t1, Input::ConnectionClosed { peer: sibling });
    let t2 = t1 + 60_000;
    assert!(!n.allow_inbound(t2, ipaddr));
    assert!(!n.allow_established(t2, &peer_id(102), &addr(ip, 1), Direction::Inbound));
    assert_eq!(
        n.gater()
            .stats()
            .accepts
            .denied(crate::peers::gater::DenyReason::IpBanned),
        1
    );
    // Other IPs are unaffected; the IP ban ends with the peer's.
    assert!(n.allow_inbound(t2, "203.0.113.8".parse().unwrap()));
    assert!(n.allow_inbound(until, ipaddr));
}

/// Loopback is never IP-banned (local devnets and tests share it): the spammer is banned by id
/// at once, the other identity on 127.0.0.1 stays, and 127.0.0.1 is still accepted.
#[test]
fn a_loopback_spammer_is_banned_by_id_at_once_but_its_ip_is_not() {
    let t0 = NOW * 1000;
    let mut n = node_with_30_honest_peers(t0);
    let spammer = peer_id(100);
    assert!(connect(&mut n, t0, 100, [127, 0, 0, 1], Direction::Inbound));
    assert!(connect(&mut n, t0, 101, [127, 0, 0, 1], Direction::Inbound));
    drain(&mut n);
    let t1 = t0 + 500;
    let (took, disconnects) = spam_until_banned(&mut n, t1, spammer, 200);
    assert_eq!(took, Some(17));
    assert_eq!(disconnects, vec![(spammer, DisconnectReason::Banned)]);
    assert!(n.gater().peer_ban(t1, &spammer).is_some());
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert_eq!(n.gater().ip_ban(t1, lo), None);
    assert!(n.allow_inbound(t1, lo));
    assert!(n.allow_established(
        t1,
        &peer_id(102),
        &addr([127, 0, 0, 1], 1),
        Direction::Inbound
    ));
    let c = n.stats().counters;
    assert_eq!((c.bans_invalid_gossip, c.ip_bans), (1, 0));
}

/// A static peer relaying a burst of invalid blocks is never banned, and an IP it is connected
/// from is never banned, even when a spammer on the same IP is (at once, by id only). A
/// protected peer is banned by id (as in op-node) but its IP is not.
#[test]
fn static_peers_are_never_banned_and_static_or_protected_ips_never_ip_banned() {
    let relay = peer_id(7);
    let mut n = node_with_static_peer(relay, [10, 0, 0, 7]);
    let t0 = NOW * 1000;
    n.handle_input(t0, Input::Tick);
    for i in 1..=30u64 {
        assert!(connect(
            &mut n,
            t0,
            i + 10,
            [10, i as u8, 1, 1],
            Direction::Inbound
        ));
    }
    assert!(connect(&mut n, t0, 7, [10, 0, 0, 7], Direction::Outbound));
    // A spammer behind the static peer's IP, and a protected peer elsewhere.
    let (spammer, guarded) = (peer_id(8), peer_id(9));
    assert!(connect(&mut n, t0, 8, [10, 0, 0, 7], Direction::Inbound));
    assert!(connect(
        &mut n,
        t0,
        9,
        [198, 51, 100, 9],
        Direction::Inbound
    ));
    assert!(admin(&mut n, t0, 1, AdminRequest::ProtectPeer(guarded)).is_ok());
    drain(&mut n);
    let t1 = t0 + 500;
    // The static relay: far past the threshold, never disconnected.
    let (took, disconnects) = spam_until_banned(&mut n, t1, relay, 60);
    assert_eq!((took, disconnects.len()), (None, 0));
    assert!(
        n.app_scores().score(&relay) <= -100.0,
        "its score did cross"
    );
    assert!(n.gater().peer_ban(t1, &relay).is_none());
    // The spammer on its IP: banned at once, the IP is not.
    let (took, disconnects) = spam_until_banned(&mut n, t1, spammer, 200);
    assert_eq!(took, Some(17));
    assert_eq!(disconnects, vec![(spammer, DisconnectReason::Banned)]);
    assert_eq!(n.gater().ip_ban(t1, "10.0.0.7".parse().unwrap()), None);
    // The protected peer: banned at once by id, its IP is not.
    let (took, _) = spam_until_banned(&mut n, t1, guarded, 200);
    assert_eq!(took, Some(17));
    assert!(n.gater().peer_ban(t1, &guarded).is_some());
    assert_eq!(n.gater().ip_ban(t1, "198.51.100.9".parse().unwrap()), None);
    let c = n.stats().counters;
    assert_eq!((c.bans_invalid_gossip, c.ip_bans), (2, 0));
    // Much later, still connected and never banned.
    for s in 1..=60u64 {
        n.handle_input(t1 + s * 1_000, Input::Tick);
        for a in drain(&mut n) {
            assert!(!matches!(a, Action::Disconnect { peer, .. } if peer == relay));
        }
    }
    assert!(n.gater().peer_ban(t1 + 60_000, &relay).is_none());
}

/// The round-robin monitor stays for scores that fall without an input of ours: a peer whose
/// gossipsub snapshot drops below the threshold is banned within `connected × 1 s`, as a drift
/// ban (by id only: its IP is not banned).
#[test]
fn the_monitor_still_bans_a_peer_whose_gossipsub_score_drifts_below_the_threshold() {
    let t0 = NOW * 1000;
    let mut n = node_with_30_honest_peers(t0);
    let drifter = peer_id(100);
    let ip = [203, 0, 113, 9];
    assert!(connect(&mut n, t0, 100, ip, Direction::Inbound));
    n.handle_input(
        t0,
        Input::GossipScores(vec![(
            drifter,
            crate::peers::book::GossipScores {
                total: -150.0,
                behavioral_penalty: -150.0,
                ..Default::default()
            },
        )]),
    );
    drain(&mut n);
    // No ban on the snapshot itself (not an input that moves our application score).
    assert!(n.gater().peer_ban(t0, &drifter).is_none());
    let mut banned_at = None;
    for s in 1..=40u64 {
        let now = t0 + s * 1_000;
        n.handle_input(now, Input::Tick);
        for a in drain(&mut n) {
            // (Trims of the honest peers above the high water mark may come too.)
            if let Action::Disconnect {
                peer,
                reason: DisconnectReason::Banned,
            } = a
            {
                assert_eq!(peer, drifter, "only the drifter is banned");
                banned_at.get_or_insert(now);
            }
        }
    }
    let banned_at = banned_at.expect("the monitor got to it");
    assert!(banned_at - t0 <= 32_000, "within connected × 1 s");
    assert_eq!(
        n.gater().ip_ban(banned_at, IpAddr::V4(Ipv4Addr::from(ip))),
        None
    );
    let c = n.stats().counters;
    assert_eq!(
        (c.bans, c.bans_invalid_gossip, c.bans_score_drift, c.ip_bans),
        (1, 0, 1, 0)
    );
}

// ---- the address policy (--p2p.netrestrict) --------------------------------------------

/// Runs ticks until the tide dials (or 20 rounds pass); returns the dials.
fn dials_after_ticks(n: &mut Node, mut now: u64) -> Vec<(PeerId, Vec<Multiaddr>)> {
    let mut dialled = Vec::new();
    for _ in 0..20 {
        now = n.poll_timeout().unwrap().max(now);
        n.handle_input(now, Input::Tick);
        for a in drain(n) {
            if let Action::Dial { peer, addrs } = a {
                dialled.push((peer, addrs));
            }
        }
    }
    dialled
}

/// An attacker's records and identify addresses pointing into the operator's network
/// (loopback, RFC 1918, the cloud metadata service, CGNAT, link-local) are never dialled and
/// never stored; public ones are. ⚠ op-node dials them (it applies netrestrict to discv5
/// only, and has no default refusal of special-purpose ranges).
#[test]
fn learned_addresses_into_the_operators_network_are_never_dialled() {
    let mut n = node();
    let t = NOW * 1000;
    let inside = [
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 7),
        Ipv4Addr::new(192, 168, 1, 1),
        Ipv4Addr::new(169, 254, 169, 254),
        Ipv4Addr::new(100, 64, 0, 1),
        Ipv4Addr::new(169, 254, 3, 3),
    ];
    for (i, ip) in inside.iter().enumerate() {
        let record = enr(10 + i as u64, 901, IpAddr::V4(*ip), 80);
        n.handle_input(t, Input::Discovered(Box::new(record)));
    }
    assert_eq!(n.discovery_table().unwrap().len(), 0, "none kept");
    assert_eq!(n.stats().counters.discovered_refused, inside.len() as u64);
    n.handle_input(
        t,
        Input::Discovered(Box::new(enr(
            3,
            901,
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 3)),
            9003,
        ))),
    );
    assert_eq!(n.discovery_table().unwrap().len(), 1);
    // A connected peer's identify listen addresses: only the public one is kept.
    assert!(connect(&mut n, t, 4, [198, 51, 100, 4], Direction::Inbound));
    n.handle_input(
        t,
        Input::Identified {
            peer: peer_id(4),
            agent_version: "x".into(),
            protocol_version: "y".into(),
            protocols: vec![],
            listen_addrs: vec![
                addr([127, 0, 0, 1], 22),
                addr([169, 254, 169, 254], 80),
                addr([10, 1, 2, 3], 6379),
                addr([198, 51, 100, 4], 9222),
            ],
        },
    );
    assert_eq!(
        n.peer_book().get(&peer_id(4)).unwrap().addrs,
        vec![addr([198, 51, 100, 4], 9222)]
    );
    n.handle_input(t, Input::ConnectionClosed { peer: peer_id(4) });
    drain(&mut n);
    let dials = dials_after_ticks(&mut n, t);
    assert!(!dials.is_empty());
    for (peer, addrs) in &dials {
        for a in addrs {
            let ip = Node::ip_of(a).unwrap();
            assert!(
                crate::peers::netpolicy::non_public(ip).is_none(),
                "{peer} dialled at {a}"
            );
        }
    }
    // The dial hook refuses a learned private address whatever asked for the dial.
    assert!(!n.allow_dial(t, &peer_id(4), Some(&addr([10, 1, 2, 3], 6379))));
    assert!(n.allow_dial(t, &peer_id(4), Some(&addr([198, 51, 100, 4], 9222))));
}

/// The operator's addresses skip the policy: a static peer on a private network is dialled,
/// and so is an `opp2p_connectPeer` address on loopback while the call waits.
#[test]
fn static_peers_and_connect_peer_addresses_skip_the_address_policy() {
    let lan = addr([10, 0, 0, 9], 9222);
    let mut cfg = Config::new(
        901,
        dev_key(0).address(),
        ForkSchedule::ALL_AT_GENESIS,
        2,
        peer_id(0),
    );
    cfg.static_peers = vec![(peer_id(9), vec![lan.clone()])];
    let mut n = Node::new(cfg);
    let t = NOW * 1000;
    let dials = dials_after_ticks(&mut n, t);
    assert!(
        dials
            .iter()
            .any(|(p, a)| *p == peer_id(9) && a == &vec![lan.clone()]),
        "{dials:?}"
    );
    assert!(n.allow_dial(t, &peer_id(9), Some(&lan)));
    // A private address the static peer announces itself is a learned one.
    assert!(!n.allow_dial(t, &peer_id(9), Some(&addr([10, 0, 0, 10], 9222))));

    let local = addr([127, 0, 0, 1], 9555);
    assert!(!n.allow_dial(t, &peer_id(7), Some(&local)));
    n.handle_input(
        t,
        Input::Admin {
            id: RequestId(1),
            request: AdminRequest::ConnectPeer {
                addr: local.clone(),
                peer: peer_id(7),
            },
        },
    );
    let acts = drain(&mut n);
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Dial { peer, addrs } if *peer == peer_id(7) && addrs == &vec![local.clone()])),
        "{acts:?}"
    );
    assert!(
        n.allow_dial(t, &peer_id(7), Some(&local)),
        "while the call waits"
    );
    // Once answered, that address is the peer book's like any other.
    n.handle_input(
        t,
        Input::DialFailed {
            peer: peer_id(7),
            error: "refused".into(),
        },
    );
    drain(&mut n);
    assert!(!n.allow_dial(t, &peer_id(7), Some(&local)));
    // Without an address, the peer's learned addresses are filtered: none left here.
    assert!(matches!(
        admin(
            &mut n,
            t,
            2,
            AdminRequest::ConnectPeer {
                addr: Multiaddr::empty(),
                peer: peer_id(7)
            }
        ),
        Err(AdminError::ConnectFailed(_))
    ));
}

/// With `--p2p.netrestrict`, only what it covers is dialled: a loopback devnet lists
/// 127.0.0.0/8 and its records are kept and dialled; a public record is not.
#[test]
fn a_netrestrict_list_is_the_only_thing_dialled() {
    let mut cfg = Config::new(
        901,
        dev_key(0).address(),
        ForkSchedule::ALL_AT_GENESIS,
        2,
        peer_id(0),
    );
    cfg.gater.netrestrict = Some(vec!["127.0.0.0/8".parse().unwrap()]);
    let mut n = Node::new(cfg);
    let t = NOW * 1000;
    n.handle_input(
        t,
        Input::Discovered(Box::new(enr(3, 901, IpAddr::V4(Ipv4Addr::LOCALHOST), 9003))),
    );
    n.handle_input(
        t,
        Input::Discovered(Box::new(enr(
            4,
            901,
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 4)),
            9004,
        ))),
    );
    assert_eq!(n.discovery_table().unwrap().len(), 1);
    let dials = dials_after_ticks(&mut n, t);
    assert!(!dials.is_empty());
    assert!(
        dials
            .iter()
            .all(|d| *d == (peer_id(3), vec![addr([127, 0, 0, 1], 9003)])),
        "{dials:?}"
    );
    assert!(!n.allow_dial(t, &peer_id(4), Some(&addr([203, 0, 113, 4], 9004))));
    assert_eq!(
        n.gater()
            .stats()
            .dials
            .denied(crate::peers::gater::DenyReason::NetRestrict),
        1
    );
}

// ---- subnet quotas -----------------------------------------------------------------------

/// Through the node: 1,000 records from one /24 after 50 honest ones from other ranges leave
/// every honest record in the table and the peer book, keep 8 of the range in each, and a
/// restart from the saved state seeds no more than that.
#[test]
fn records_from_one_subnet_stay_within_the_quota_across_a_restart() {
    let mut n = node();
    let t = NOW * 1000;
    let honest: Vec<u64> = (1..=50).collect();
    for &i in &honest {
        let ip = IpAddr::V4(Ipv4Addr::new(11, 0, i as u8, 7));
        n.handle_input(t + i, Input::Discovered(Box::new(enr(i, 901, ip, 9222))));
    }
    for k in 0..1_000u64 {
        let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, (k % 250) as u8 + 1));
        n.handle_input(
            t + 1_000 + k,
            Input::Discovered(Box::new(enr(10_000 + k, 901, ip, 9222))),
        );
    }
    let range: IpAddr = "203.0.113.1".parse().unwrap();
    let table = n.discovery_table().unwrap();
    assert_eq!(table.entries_in_subnet_of(range), 8);
    assert_eq!(n.peer_book().peers_in_subnet_of(range), 8);
    for &i in &honest {
        assert!(n.peer_book().get(&peer_id(i)).is_some(), "honest peer {i}");
    }
    assert_eq!(table.len(), honest.len() + 8);

    let mut restarted = node();
    let report = restarted
        .restore_state(t + 5_000, n.export_state())
        .unwrap();
    assert_eq!(report.discovery, honest.len() + 8);
    assert_eq!(
        restarted
            .discovery_table()
            .unwrap()
            .entries_in_subnet_of(range),
        8
    );
    assert_eq!(restarted.peer_book().peers_in_subnet_of(range), 8);
}

// ---- pre-checked gossip (issue 15) ----

#[test]
fn pre_checked_gossip_with_an_outdated_checker_gets_the_live_verdict() {
    use crate::gossip::check::Sequential;
    let mut n = node();
    let checker = n.stateless_checker();
    n.handle_input(NOW * 1000, Input::SetUnsafeSigner(dev_key(1).address()));
    drain(&mut n);
    let msg = |handle: u64, data: &[u8]| GossipMessage {
        handle: MessageHandle(handle),
        topic: "/optimism/901/3/blocks".into(),
        data: data.to_vec().into(),
        source: None,
    };
    let data = BlockBuilder::new(BlockVersion::V4, 1, NOW)
        .sign(&dev_key(1), 901)
        .unwrap();
    let checked = checker.check(
        NOW * 1000,
        BlockVersion::V4,
        &data,
        &mut Vec::new(),
        &Sequential,
    );
    n.handle_input(NOW * 1000, Input::GossipChecked(msg(1, &data), checked));
    assert!(matches!(
        drain(&mut n).as_slice(),
        [
            Action::Verdict {
                handle: MessageHandle(1),
                verdict: Verdict::Accept,
                ..
            },
            Action::Deliver(_)
        ]
    ));
    // Checked for another topic version than it came on: validated again, inline.
    let data = BlockBuilder::new(BlockVersion::V4, 2, NOW)
        .sign(&dev_key(1), 901)
        .unwrap();
    let checked = checker.check(
        NOW * 1000,
        BlockVersion::V1,
        &data,
        &mut Vec::new(),
        &Sequential,
    );
    n.handle_input(NOW * 1000, Input::GossipChecked(msg(2, &data), checked));
    assert!(matches!(
        drain(&mut n).as_slice(),
        [
            Action::Verdict {
                handle: MessageHandle(2),
                verdict: Verdict::Accept,
                ..
            },
            Action::Deliver(_)
        ]
    ));
}
