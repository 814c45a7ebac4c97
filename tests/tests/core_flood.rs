//! One million distinct invalid gossip messages through one sans-IO core [`Node`], from
//! thousands of source peers, with connections, dials, disconnects, identify, discovery and
//! admin calls interleaved (no sockets, virtual time).
//!
//! What it proves:
//! - every gossip input gets exactly one `Verdict` action, for its own handle, and that verdict
//!   is the one the message's kind must get (bomb → `TooLarge`, wrong signer → `WrongSigner`…);
//! - `Node::bounds_violation()` stays `None` (checked every 10,000 inputs), and the
//!   memory-bearing structures stay within their documented bounds: peer book, application
//!   scores, connected peers, seen heights and hashes per topic, discovery table, block lists,
//!   connection-manager backoff entries and dials in flight;
//! - the flood has the intended effect: the sources get banned and disconnected, valid blocks
//!   interleaved in the flood are still accepted.
//!
//! Speed (debug build): signature recovery is the only costly step, so wrong-signer blocks are
//! a minority of the mix, made from a few hundred signed blocks whose block number is patched
//! after signing (the signature then recovers some other address: a distinct wrong-signer block
//! of a distinct number, for the price of one recovery and no signing).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use op_p2p_core::admin::AdminRequest;
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::gossip::wire;
use op_p2p_core::testkit::{BlockBuilder, dev_key, enr, peer_id};
use op_p2p_core::{
    Action, BlockVersion, Config, Direction, GossipMessage, Input, MessageHandle, Node, Reason,
    RequestId,
};
use op_p2p_core::{Multiaddr, PeerId, SplitMix64};
use op_p2p_tests::{CHAIN, Draw};

/// Gossip messages in the flood (`OP_P2P_FLOOD_MESSAGES` overrides it, for profiling).
const MESSAGES: u64 = 1_000_000;
/// Distinct source peers (more than the peer book's and the score table's bound of 1,024).
const SOURCES: u64 = 2_500;
/// Sources most messages come from.
const HOT_SOURCES: u64 = 800;
/// Records fed to discovery (more than the table holds per subnet and in total is not needed:
/// the table's bound is checked either way).
const RECORDS: u64 = 600;
/// Blocks signed by the wrong key; each is reused with many patched numbers.
const WRONG_SIGNED: u64 = 300;
/// Valid blocks (the right signer) spread through the flood.
const VALID: u64 = 2_000;
/// Start of virtual time (ms). Every input advances it by 1 ms.
const T0: u64 = 1_750_000_000_000;

/// Byte offset of `block_number` in a v4 gossip message once decompressed: signature (65),
/// parent beacon block root (32), then the SSZ payload's fixed fields before it
/// (parent hash 32, fee recipient 20, state root 32, receipts root 32, logs bloom 256,
/// prev randao 32).
const NUMBER_OFFSET: usize = 65 + 32 + 32 + 20 + 32 + 32 + 256 + 32;

/// What a message was built to be, and the verdict reason it must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Snappy header declaring a huge length, distinct tail.
    Bomb,
    /// Random bytes.
    Garbage,
    /// A v4 block signed by the wrong key, number patched after signing.
    WrongSigner,
    /// A good v4 block on the v3 topic.
    WrongTopicVersion,
    /// Any data on a topic of another chain or no topic at all.
    UnknownTopic,
    /// A valid block (first time) or its replay.
    Valid,
    Replay,
}

fn topic(v: u8) -> String {
    format!("/optimism/{CHAIN}/{v}/blocks")
}

fn addr(ip: Ipv4Addr, port: u16) -> Multiaddr {
    format!("/ip4/{ip}/tcp/{port}").parse().expect("valid")
}

/// Source `i`'s address: many /24 subnets, a few peers per IP.
fn source_ip(i: u64) -> Ipv4Addr {
    Ipv4Addr::new(
        10,
        (i / 250 % 250) as u8,
        (i % 250) as u8,
        (i % 3) as u8 + 1,
    )
}

#[test]
fn a_million_invalid_messages_keep_every_bound_and_get_one_verdict_each() {
    let started = Instant::now();
    let messages: u64 = std::env::var("OP_P2P_FLOOD_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MESSAGES);
    let signer = dev_key(0);
    let mut config = Config::new(
        CHAIN,
        signer.address(),
        ForkSchedule::ALL_AT_GENESIS,
        2,
        peer_id(0),
    );
    config.rng_seed = 7;
    // The flood's peers live in private space (sources in 10/8, records in 172.16/12): listed
    // as the operator's netrestrict, so their records are kept and their addresses dialled.
    config.gater.netrestrict = Some(vec![
        "10.0.0.0/8".parse().expect("valid"),
        "172.16.0.0/12".parse().expect("valid"),
    ]);
    let mut node = Node::new(config);

    // ---- material --------------------------------------------------------------------------
    let sources: Vec<PeerId> = (1..=SOURCES).map(|i| peer_id(1_000 + i)).collect();
    let records: Vec<_> = (0..RECORDS)
        .map(|i| {
            let ip = IpAddr::V4(Ipv4Addr::new(172, 16 + (i % 16) as u8, (i / 16) as u8, 1));
            enr(50_000 + i, if i % 5 == 0 { 10 } else { CHAIN }, ip, 9_000)
        })
        .collect();
    // Wrong-signer v4 blocks, decompressed; numbers get patched per message.
    let wrong: Vec<Vec<u8>> = (0..WRONG_SIGNED)
        .map(|i| {
            let data = BlockBuilder::new(BlockVersion::V4, i, T0 / 1000)
                .sign(&dev_key(1 + i % 4), CHAIN)
                .expect("encodes");
            let mut raw = Vec::new();
            wire::decompress_into(&data, &mut raw).expect("our own encoding");
            assert_eq!(
                raw[NUMBER_OFFSET..NUMBER_OFFSET + 8],
                i.to_le_bytes(),
                "the number sits where NUMBER_OFFSET says"
            );
            raw
        })
        .collect();
    let valid_every = messages / VALID;
    let sign_start = Instant::now();
    let valid_at = |k: u64| k * valid_every + valid_every / 2;
    let valid: Vec<Vec<u8>> = (0..VALID)
        .map(|k| {
            // Timestamp: the virtual second at which it is sent, inside the 60 s window.
            let ts = (T0 + valid_at(k)) / 1000;
            let mut b = BlockBuilder::new(BlockVersion::V4, 1_000_000 + k, ts);
            b.salt = k as u8;
            b.sign(&signer, CHAIN).expect("encodes")
        })
        .collect();
    eprintln!(
        "material: {} sources, {} records, {} wrong-signer and {} valid blocks in {:?} (signing {:?})",
        sources.len(),
        records.len(),
        wrong.len(),
        valid.len(),
        started.elapsed(),
        sign_start.elapsed()
    );

    // ---- the flood -------------------------------------------------------------------------
    // Seeded: the flood must replay identically.
    let mut rng = SplitMix64::new(0xF100D);
    let mut now = T0;
    let mut connected: BTreeSet<PeerId> = BTreeSet::new();
    let mut counts = [0u64; 7];
    let mut reasons: std::collections::HashMap<Reason, u64> = Default::default();
    let mut disconnects_banned = 0u64;
    let mut dials = 0u64;
    let mut delivered = 0u64;
    let mut admin_asked = 0u64;
    let mut admin_answered = 0u64;
    let mut peak = Peak::default();
    let mut pending: Vec<Action> = Vec::new();
    let mut handle = 0u64;
    let mut inputs = 0u64;
    let mut next_valid = 0u64;
    let t_flood = Instant::now();

    while handle < messages {
        now += 1;
        inputs += 1;
        // Interleaved peer-side inputs: about one in eight inputs.
        if rng.below(8) == 0 {
            let peer = sources[rng.below(SOURCES) as usize];
            let i = rng.below(SOURCES);
            match rng.below(10) {
                0..=2 => {
                    let ip = source_ip(i);
                    let a = addr(ip, 10_000 + (i % 50_000) as u16);
                    if node.allow_inbound(now, IpAddr::V4(ip))
                        && node.allow_established(now, &peer, &a, Direction::Inbound)
                        && connected.insert(peer)
                    {
                        node.handle_input(
                            now,
                            Input::ConnectionEstablished {
                                peer,
                                addr: a,
                                direction: Direction::Inbound,
                            },
                        );
                    }
                }
                3 => {
                    if connected.remove(&peer) {
                        node.handle_input(now, Input::ConnectionClosed { peer });
                    }
                }
                4 => node.handle_input(
                    now,
                    Input::Identified {
                        peer,
                        agent_version: format!("flood/{i}"),
                        protocol_version: "x".repeat((i % 300) as usize),
                        protocols: (0..(i % 40)).map(|p| format!("/p/{p}")).collect(),
                        listen_addrs: (0..(i % 30))
                            .map(|p| addr(source_ip(i), 20_000 + p as u16))
                            .collect(),
                    },
                ),
                5 => node.handle_input(
                    now,
                    Input::Discovered(Box::new(records[rng.below(RECORDS) as usize].clone())),
                ),
                6 => node.handle_input(
                    now,
                    Input::Subscription {
                        peer,
                        topic: topic((i % 5) as u8),
                        subscribed: i.is_multiple_of(2),
                    },
                ),
                7 => node.handle_input(
                    now,
                    Input::Ping {
                        peer,
                        rtt_ns: i * 1_000,
                    },
                ),
                8 => node.handle_input(
                    now,
                    Input::DialFailed {
                        peer,
                        error: "refused".into(),
                    },
                ),
                _ => {
                    admin_asked += 1;
                    let request = match i % 4 {
                        0 => AdminRequest::BlockPeer(peer),
                        1 => AdminRequest::BlockAddr(IpAddr::V4(source_ip(i))),
                        2 => AdminRequest::UnblockPeer(peer),
                        // The whole book is costly to dump; ask now and then.
                        _ if i % 64 == 3 => AdminRequest::Peers { connected: false },
                        _ => AdminRequest::PeerStats,
                    };
                    node.handle_input(
                        now,
                        Input::Admin {
                            id: RequestId(admin_asked),
                            request,
                        },
                    );
                }
            }
            drain(
                &mut node,
                &mut pending,
                &mut connected,
                &mut rng,
                now,
                &mut Tally {
                    banned: &mut disconnects_banned,
                    dials: &mut dials,
                    admin: &mut admin_answered,
                    delivered: &mut delivered,
                },
            );
        }

        // The gossip message.
        let (kind, topic_str, data) = if next_valid < VALID && handle >= valid_at(next_valid) {
            let k = next_valid;
            next_valid += 1;
            (Kind::Valid, topic(3), valid[k as usize].clone())
        } else {
            match rng.below(20) {
                0..=8 => {
                    // Declared 64 MiB, then a distinct tail.
                    let mut d = vec![0x80, 0x80, 0x80, 0x20];
                    d.extend_from_slice(&handle.to_le_bytes());
                    d.extend((0..rng.below(64)).map(|_| rng.next() as u8));
                    (Kind::Bomb, topic((rng.below(4)) as u8), d)
                }
                9..=14 => {
                    let len = rng.below(600) as usize;
                    let mut d: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                    d.extend_from_slice(&handle.to_le_bytes());
                    (Kind::Garbage, topic((rng.below(4)) as u8), d)
                }
                15..=16 => {
                    let mut raw = wrong[rng.below(WRONG_SIGNED) as usize].clone();
                    raw[NUMBER_OFFSET..NUMBER_OFFSET + 8]
                        .copy_from_slice(&(10_000_000 + handle).to_le_bytes());
                    (Kind::WrongSigner, topic(3), wire::compress(&raw))
                }
                17 => {
                    let k = rng.below(next_valid.max(1)) as usize;
                    (Kind::WrongTopicVersion, topic(2), valid[k].clone())
                }
                18 => {
                    let mut d = vec![1, 2, 3];
                    d.extend_from_slice(&handle.to_le_bytes());
                    let t = if handle.is_multiple_of(2) {
                        "/optimism/10/3/blocks".to_string()
                    } else {
                        format!("spam-{handle}")
                    };
                    (Kind::UnknownTopic, t, d)
                }
                _ if next_valid > 0 => {
                    // One of the last 500: still held by the seen state (1,000 heights).
                    let recent = next_valid.min(500);
                    let k = (next_valid - 1 - rng.below(recent)) as usize;
                    (Kind::Replay, topic(3), valid[k].clone())
                }
                _ => (Kind::Garbage, topic(3), handle.to_le_bytes().to_vec()),
            }
        };
        counts[kind as usize] += 1;
        // Most messages come from a hot set that fits the score table; one in ten from any
        // source, so the table keeps evicting at its bound.
        let source = if rng.below(10) == 0 {
            sources[rng.below(SOURCES) as usize]
        } else {
            sources[rng.below(HOT_SOURCES) as usize]
        };
        node.handle_input(
            now,
            Input::Gossip(GossipMessage {
                handle: MessageHandle(handle),
                topic: topic_str,
                data: data.into(),
                source: Some(source),
            }),
        );
        // Exactly one verdict, for this handle, with the reason its kind must get.
        let before = pending.len();
        let mut tally = Tally {
            banned: &mut disconnects_banned,
            dials: &mut dials,
            admin: &mut admin_answered,
            delivered: &mut delivered,
        };
        drain(
            &mut node,
            &mut pending,
            &mut connected,
            &mut rng,
            now,
            &mut tally,
        );
        let verdicts: Vec<(MessageHandle, Reason)> = pending
            .drain(before..)
            .filter_map(|a| match a {
                Action::Verdict { handle, reason, .. } => Some((handle, reason)),
                _ => None,
            })
            .collect();
        assert_eq!(
            verdicts.len(),
            1,
            "message {handle} ({kind:?}): {verdicts:?}"
        );
        let (got, reason) = verdicts[0];
        assert_eq!(got, MessageHandle(handle));
        assert!(
            expected(kind, reason),
            "message {handle} ({kind:?}) got {reason:?}"
        );
        *reasons.entry(reason).or_default() += 1;
        handle += 1;

        // Timers, as a runtime would fire them.
        if node.poll_timeout().is_some_and(|t| t <= now) {
            node.handle_input(now, Input::Tick);
            let mut tally = Tally {
                banned: &mut disconnects_banned,
                dials: &mut dials,
                admin: &mut admin_answered,
                delivered: &mut delivered,
            };
            drain(
                &mut node,
                &mut pending,
                &mut connected,
                &mut rng,
                now,
                &mut tally,
            );
        }
        if handle.is_multiple_of(10_000) {
            check_bounds(&node, &mut peak, handle);
            if handle.is_multiple_of(100_000) {
                eprintln!("{handle} messages in {:?}", t_flood.elapsed());
            }
        }
    }
    check_bounds(&node, &mut peak, handle);
    let elapsed = t_flood.elapsed();
    eprintln!(
        "flood: {messages} messages, {inputs} loop steps in {elapsed:?} ({:.1} µs/message); kinds \
         [bomb, garbage, wrong-signer, wrong-topic-version, unknown-topic, valid, replay] = {counts:?}",
        elapsed.as_secs_f64() * 1e6 / messages as f64
    );
    eprintln!("reasons: {reasons:?}");
    eprintln!(
        "banned disconnects {disconnects_banned}, bans {}, dials {dials}, admin {admin_answered}/{admin_asked}, \
         delivered {delivered}; peaks {peak:?}",
        node.stats().counters.bans
    );

    // Every message kind occurred many times, and each kind's verdicts add up.
    assert!(counts.iter().all(|&c| c >= 1_000), "{counts:?}");
    assert_eq!(reasons.values().sum::<u64>(), messages);
    assert_eq!(
        reasons[&Reason::Accepted],
        VALID,
        "every valid block accepted once"
    );
    assert_eq!(delivered, VALID, "and delivered once");
    assert!(reasons[&Reason::TooLarge] >= counts[Kind::Bomb as usize]);
    assert_eq!(admin_answered, admin_asked, "every admin call answered");
    // The sources were punished: score bans happened and disconnected them.
    assert!(node.stats().counters.bans > 0 && disconnects_banned > 0);
    // The bounds were actually reached, not trivially met by an idle node.
    let book = node.peer_book().config().max_peers;
    assert_eq!(
        peak.book, book,
        "the flood filled the peer book to its bound"
    );
    assert!(peak.app_scores >= 1_000, "{peak:?}");
    let max_heights = node.validator().seen().max_heights();
    assert_eq!(
        peak.seen_heights, max_heights,
        "seen heights reached their bound"
    );
    assert!(
        elapsed < Duration::from_secs(120),
        "the core must stay fast under a flood: {elapsed:?}"
    );
}

/// The highest value each bounded structure reached.
#[derive(Debug, Default)]
struct Peak {
    book: usize,
    app_scores: usize,
    connected: usize,
    seen_heights: usize,
    seen_hashes: usize,
    discovery: usize,
    backoff: usize,
}

fn check_bounds(node: &Node, peak: &mut Peak, at: u64) {
    if let Some(v) = node.bounds_violation() {
        panic!("after {at} messages: {v}");
    }
    let c = node.config();
    let book = node.peer_book().len();
    assert!(book <= c.peers.max_peers, "peer book {book} at {at}");
    let scores = node.app_scores().len();
    assert!(scores <= c.app_scores.max_peers, "app scores {scores}");
    let conn = node.conn_manager();
    assert!(conn.connected_count() <= c.max_connected_peers());
    assert!(conn.backoff_entries() <= c.conn.max_backoff_entries);
    assert!(
        conn.dials_in_flight() <= c.conn.max_dials_in_flight + c.conn.max_static_dials_in_flight
    );
    let seen = node.validator().seen();
    let mut heights = 0;
    for v in BlockVersion::ALL {
        assert!(seen.heights(v) <= seen.max_heights(), "{v} heights at {at}");
        heights = heights.max(seen.heights(v));
    }
    let table = node.discovery_table().map_or(0, |t| t.len());
    if let Some(tc) = &c.discovery {
        assert!(table <= tc.max_entries);
    }
    assert!(node.gater().blocked_peers().len() <= c.gater.max_blocked_peers);
    assert!(node.gater().blocked_ips().len() <= c.gater.max_blocked_ips);
    let (connects, throttled) = node.pending_counts();
    assert!(connects <= c.max_pending_connects && throttled <= c.max_throttled_requests);
    peak.book = peak.book.max(book);
    peak.app_scores = peak.app_scores.max(scores);
    peak.connected = peak.connected.max(conn.connected_count());
    peak.seen_heights = peak.seen_heights.max(heights);
    peak.seen_hashes = peak.seen_hashes.max(seen.total_hashes());
    peak.discovery = peak.discovery.max(table);
    peak.backoff = peak.backoff.max(conn.backoff_entries());
}

/// Whether `reason` is a verdict the message's kind may get.
fn expected(kind: Kind, reason: Reason) -> bool {
    use Reason as R;
    match kind {
        Kind::Bomb => reason == R::TooLarge,
        // Random bytes fail somewhere in the first rules; never accepted, never a duplicate.
        Kind::Garbage => matches!(
            reason,
            R::SnappyLengthUnreadable
                | R::TooLarge
                | R::TooSmall
                | R::SnappyCorrupt
                | R::BadRecoveryId
                | R::SignatureUnrecoverable
                | R::WrongSigner
        ),
        Kind::WrongSigner => matches!(reason, R::WrongSigner | R::SignatureUnrecoverable),
        // A v4 block on the v3 topic: decoded in the v3 shape, it fails.
        Kind::WrongTopicVersion => matches!(reason, R::SszDecode | R::BlockHashMismatch),
        Kind::UnknownTopic => reason == R::UnknownTopic,
        Kind::Valid => reason == R::Accepted,
        // Replays are duplicates, or too old once the window passed them.
        Kind::Replay => matches!(reason, R::Duplicate | R::TooOld),
    }
}

/// Counters `drain` updates.
struct Tally<'a> {
    banned: &'a mut u64,
    dials: &'a mut u64,
    admin: &'a mut u64,
    delivered: &'a mut u64,
}

/// Drains the node's actions, playing the runtime: disconnects close, dials succeed or fail.
/// Verdicts are left in `pending` for the caller.
fn drain(
    node: &mut Node,
    pending: &mut Vec<Action>,
    connected: &mut BTreeSet<PeerId>,
    rng: &mut SplitMix64,
    now: u64,
    tally: &mut Tally<'_>,
) {
    let mut follow: Vec<Input> = Vec::new();
    loop {
        while let Some(a) = node.poll_action() {
            match a {
                Action::Verdict { .. } => pending.push(a),
                Action::Deliver(_) => *tally.delivered += 1,
                Action::Disconnect { peer, reason } => {
                    if reason == op_p2p_core::DisconnectReason::Banned {
                        *tally.banned += 1;
                    }
                    if connected.remove(&peer) {
                        follow.push(Input::ConnectionClosed { peer });
                    }
                }
                Action::Dial { peer, addrs } => {
                    *tally.dials += 1;
                    let ok = rng.below(2) == 0
                        && node.allow_established(now, &peer, &addrs[0], Direction::Outbound);
                    if ok && connected.insert(peer) {
                        follow.push(Input::ConnectionEstablished {
                            peer,
                            addr: addrs[0].clone(),
                            direction: Direction::Outbound,
                        });
                    } else {
                        follow.push(Input::DialFailed {
                            peer,
                            error: "flood".into(),
                        });
                    }
                }
                Action::AdminResponse { .. } => *tally.admin += 1,
                _ => {}
            }
        }
        if follow.is_empty() {
            return;
        }
        for input in follow.drain(..) {
            node.handle_input(now, input);
        }
    }
}
