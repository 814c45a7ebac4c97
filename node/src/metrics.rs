//! Prometheus metrics (spec §11): op-node's names and labels under our own prefix, so a
//! dashboard built for op-node works after swapping `op_node_default_` for `op_p2p_`.
//!
//! Two kinds of series:
//! - **Events** the driver reports as they happen ([`Metrics::gossip_event`],
//!   [`Metrics::on_unsafe_payload`], [`Metrics::on_publish_error`],
//!   [`Metrics::set_stream_count`]): ordinary `prometheus-client` counters and gauges.
//! - **Core state** read by [`Metrics::observe`] (the driver calls it every second): the core
//!   already keeps cumulative counts ([`op_p2p_core::stats::Stats`], [`op_p2p_core::peers::gater::GaterStats`]),
//!   so they are not re-counted here. `observe` copies them, with a histogram of the connected
//!   peers' scores, into one fixed-size snapshot, and a custom [`Collector`] writes that
//!   snapshot on each scrape. Counters therefore equal the core's counts exactly (no deltas to
//!   lose or double), and `peer_scores` describes the latest set of connected peers, as
//!   op-node's does (it resets its histogram before each observation).
//!
//! Names (with the `op_p2p` prefix; `…_total` is added to every counter by the OpenMetrics
//! encoder):
//!
//! | series | type | labels |
//! |---|---|---|
//! | `op_p2p_p2p_peer_count` | gauge | |
//! | `op_p2p_p2p_stream_count` | gauge | |
//! | `op_p2p_p2p_gossip_events_total` | counter | `type` ([`GossipEvent`]) |
//! | `op_p2p_p2p_peer_unbans_total`, `op_p2p_p2p_ip_unbans_total` | counter | |
//! | `op_p2p_p2p_dials_total`, `op_p2p_p2p_accepts_total` | counter | `allow` = `true`/`false` |
//! | `op_p2p_peer_scores` | histogram | `type` ([`SCORE_TYPES`]), buckets [`PEER_SCORE_BUCKETS`] |
//! | `op_p2p_p2p_req_total` | counter | `p2p_role` = `server`, `p2p_method` = `payload_by_number`, `result_code` = 0..3 |
//! | `op_p2p_unsafe_payloads_total`, `op_p2p_last_unsafe_payloads_unix` | counter, gauge | |
//! | `op_p2p_publishing_errors_total`, `op_p2p_last_publishing_errors_unix` | counter, gauge | |
//! | `op_p2p_publish_queue_length` | gauge | — ours: blocks waiting to be signed or published |
//! | `op_p2p_published_blocks_total` | counter | — ours |
//! | `op_p2p_publish_dropped_total` | counter | `reason` ([`op_p2p_core::publish::DropReason`]) — ours |
//! | `op_p2p_publish_failures_total` | counter | `kind` = `transient`/`permanent` — ours |
//! | `op_p2p_signing_latency_seconds` | histogram | — ours: one signer call |
//! | `op_p2p_gossip_verdicts_total` | counter | `verdict`, `reason` ([`op_p2p_core::Reason`], or for IGNOREs the node reports without validating: [`UNVALIDATED_IGNORES`]) — ours |
//! | `op_p2p_bans_total` | counter | — ours: score bans issued |
//! | `op_p2p_score_bans_total` | counter | `cause` = `invalid_gossip`/`score_drift` ([`op_p2p_core::peers::score_ban::BanCause`]) — ours |
//! | `op_p2p_score_ip_bans_total` | counter | — ours: IPs banned with a ban on invalid gossip |
//! | `op_p2p_discovery_records_total` | counter | `result` = `accepted`/`refused` — ours |
//!
//! ⚠ op-node serves the Prometheus 0.0.4 text format, where a counter keeps its bare name
//! (`op_node_default_p2p_dials`); OpenMetrics requires the `_total` suffix on every counter
//! sample, so ours is `op_p2p_p2p_dials_total` (likewise `p2p_accepts`, `p2p_peer_unbans`,
//! `p2p_ip_unbans`). Counters op-node already names `…_total` come out identical.
//!
//! No series carries a per-peer label: label values come from fixed enums only, so the number
//! of series is constant however many peers come and go.
//!
//! libp2p's own metrics (`libp2p::metrics::Metrics::new`) live under `libp2p_`, so both can
//! share one registry. Pass the root registry to [`Metrics::new`]; it adds the prefix. Among
//! them, `libp2p_bandwidth_bytes_total{protocols, direction}` counts every stream's bytes (the
//! transport is wrapped when [`crate::spawn`] builds the swarm). gossipsub's own series are under
//! `gossipsub_`; note that its `topic_msg_sent_bytes` counts a message when it is queued, and
//! an IDONTWANT can drop it before it is written.

use std::sync::{Arc, Mutex, MutexGuard};

/// Re-exported so the runtimes build the [`Registry`] with the same crate version.
pub use prometheus_client;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use op_p2p_core::Node;
use op_p2p_core::gossip::validate::Reason;
use op_p2p_core::stats::NodeStats;

/// The prefix of every series this module registers (op-node uses `op_node_default`).
pub const PREFIX: &str = "op_p2p";

/// op-node's `peer_scores` histogram buckets (upper bounds; `+Inf` is added).
pub const PEER_SCORE_BUCKETS: [f64; 18] = [
    -100.0, -40.0, -20.0, -10.0, -5.0, -2.0, -1.0, -0.5, -0.05, 0.0, 0.05, 0.5, 1.0, 2.0, 5.0,
    10.0, 20.0, 40.0,
];

/// The `type` label values of `peer_scores`, in op-node's spelling.
pub const SCORE_TYPES: [&str; 10] = [
    "total",
    "ipColocation",
    "behavioralPenalty",
    "blocksFirstMessage",
    "blocksTimeInMesh",
    "blocksMessageDeliveries",
    "blocksInvalidMessageDeliveries",
    "reqRespValidResponses",
    "reqRespErrorResponses",
    "reqRespRejectedPayloads",
];

/// `payload_by_number` result codes as labels (0 ok, 1 not found, 2 invalid, 3 error), the
/// order of [`op_p2p_core::stats::Stats::reqresp_responses`].
const RESULT_CODES: [&str; 4] = ["0", "1", "2", "3"];

/// A gossipsub trace event, the `type` label of `p2p_gossip_events_total` (the names of
/// go-libp2p-pubsub's `TraceEvent_Type`, which op-node uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GossipEvent {
    /// We published a message.
    PublishMessage,
    /// A message was rejected by validation.
    RejectMessage,
    /// A message was a duplicate.
    DuplicateMessage,
    /// A message was delivered to the application.
    DeliverMessage,
    /// A peer joined (connected with gossipsub).
    AddPeer,
    /// A peer left.
    RemovePeer,
    /// An RPC came in.
    RecvRpc,
    /// An RPC went out.
    SendRpc,
    /// An outgoing RPC was dropped (queue full).
    DropRpc,
    /// We joined a topic.
    Join,
    /// We left a topic.
    Leave,
    /// A peer was grafted into a mesh.
    Graft,
    /// A peer was pruned from a mesh.
    Prune,
}

impl GossipEvent {
    /// Every event, in go-libp2p-pubsub's order.
    pub const ALL: [GossipEvent; 13] = [
        GossipEvent::PublishMessage,
        GossipEvent::RejectMessage,
        GossipEvent::DuplicateMessage,
        GossipEvent::DeliverMessage,
        GossipEvent::AddPeer,
        GossipEvent::RemovePeer,
        GossipEvent::RecvRpc,
        GossipEvent::SendRpc,
        GossipEvent::DropRpc,
        GossipEvent::Join,
        GossipEvent::Leave,
        GossipEvent::Graft,
        GossipEvent::Prune,
    ];

    /// The label value (go-libp2p-pubsub's `TraceEvent_Type` name).
    pub const fn as_str(self) -> &'static str {
        match self {
            GossipEvent::PublishMessage => "PUBLISH_MESSAGE",
            GossipEvent::RejectMessage => "REJECT_MESSAGE",
            GossipEvent::DuplicateMessage => "DUPLICATE_MESSAGE",
            GossipEvent::DeliverMessage => "DELIVER_MESSAGE",
            GossipEvent::AddPeer => "ADD_PEER",
            GossipEvent::RemovePeer => "REMOVE_PEER",
            GossipEvent::RecvRpc => "RECV_RPC",
            GossipEvent::SendRpc => "SEND_RPC",
            GossipEvent::DropRpc => "DROP_RPC",
            GossipEvent::Join => "JOIN",
            GossipEvent::Leave => "LEAVE",
            GossipEvent::Graft => "GRAFT",
            GossipEvent::Prune => "PRUNE",
        }
    }
}

type TypeLabel = [(&'static str, &'static str); 1];

/// The node's metrics. Cheap to clone (every handle is shared); register once per registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    peer_count: Gauge,
    stream_count: Gauge,
    gossip_events: Family<TypeLabel, Counter>,
    unsafe_payloads: Counter,
    last_unsafe_payload: Gauge,
    publishing_errors: Counter,
    last_publishing_error: Gauge,
    core: Arc<Mutex<CoreSnapshot>>,
    /// The publish queue's series.
    pub publish: PublishMetrics,
    /// The validation worker pool's series (issue 15).
    pub validation: ValidationMetrics,
}

impl Metrics {
    /// Registers every series under `op_p2p_` in `registry` (pass the root registry).
    pub fn new(registry: &mut Registry) -> Self {
        let r = registry.sub_registry_with_prefix(PREFIX);
        let m = Metrics {
            peer_count: Gauge::default(),
            stream_count: Gauge::default(),
            gossip_events: Family::default(),
            unsafe_payloads: Counter::default(),
            last_unsafe_payload: Gauge::default(),
            publishing_errors: Counter::default(),
            last_publishing_error: Gauge::default(),
            core: Arc::new(Mutex::new(CoreSnapshot::default())),
            publish: PublishMetrics::default(),
            validation: ValidationMetrics::default(),
        };
        m.publish.register(r);
        m.validation.register(r);
        // Every event series exists from the start, at 0, so rates work from the first scrape.
        for ev in GossipEvent::ALL {
            drop(m.gossip_events.get_or_create(&[("type", ev.as_str())]));
        }
        r.register(
            "p2p_peer_count",
            "Count of currently connected p2p peers",
            m.peer_count.clone(),
        );
        r.register(
            "p2p_stream_count",
            "Count of currently connected p2p streams",
            m.stream_count.clone(),
        );
        r.register(
            "p2p_gossip_events",
            "Count of gossip events by type",
            m.gossip_events.clone(),
        );
        r.register(
            "unsafe_payloads",
            "Count of unsafe payloads received",
            m.unsafe_payloads.clone(),
        );
        r.register(
            "last_unsafe_payloads_unix",
            "Timestamp of last unsafe payloads event",
            m.last_unsafe_payload.clone(),
        );
        r.register(
            "publishing_errors",
            "Count of p2p publishing errors",
            m.publishing_errors.clone(),
        );
        r.register(
            "last_publishing_errors_unix",
            "Timestamp of last p2p publishing errors event",
            m.last_publishing_error.clone(),
        );
        r.register_collector(Box::new(CoreCollector(
            m.core.clone(),
            m.validation.clone(),
        )));
        m
    }

    /// Copies the node's counters and the connected peers' scores; the next scrape shows them.
    /// O(peers in the book); the driver calls it about once a second.
    pub fn observe(&self, node: &Node) {
        let NodeStats {
            counters: stats,
            gating: gater,
            connected_scores,
            ..
        } = node.stats();
        let mut snap = CoreSnapshot {
            verdicts: [0; Reason::ALL.len()],
            dials: [gater.dials.allowed, gater.dials.denied_total()],
            accepts: [gater.accepts.allowed, gater.accepts.denied_total()],
            peer_unbans: gater.peer_unbans,
            ip_unbans: gater.ip_unbans,
            bans: stats.bans,
            bans_by_cause: [stats.bans_invalid_gossip, stats.bans_score_drift],
            ip_bans: stats.ip_bans,
            discovery: [stats.discovered_accepted, stats.discovered_refused],
            reqresp_server: stats.reqresp_responses,
            scores: Default::default(),
        };
        for (slot, (_, n)) in snap.verdicts.iter_mut().zip(stats.verdicts_by_reason()) {
            *slot = n;
        }
        let connected = i64::try_from(connected_scores.len()).unwrap_or(i64::MAX);
        for s in &connected_scores {
            let (g, rr) = (&s.gossip, &s.req_resp);
            // `total` is the one `opp2p_peers` reports: gossipsub's score without the
            // application part, plus our application score.
            let values = [
                g.total,
                g.ip_colocation_factor,
                g.behavioral_penalty,
                g.blocks.first_message_deliveries,
                g.blocks.time_in_mesh,
                g.blocks.mesh_message_deliveries,
                g.blocks.invalid_message_deliveries,
                rr.valid_responses,
                rr.error_responses,
                rr.rejected_payloads,
            ];
            for (h, v) in snap.scores.iter_mut().zip(values) {
                h.observe(v);
            }
        }
        self.peer_count.set(connected);
        *lock(&self.core) = snap;
    }

    /// Counts one gossipsub trace event.
    pub fn gossip_event(&self, event: GossipEvent) {
        self.gossip_events
            .get_or_create(&[("type", event.as_str())])
            .inc();
    }

    /// Counts an unsafe payload received (a block delivered from gossip) at `now_unix_secs`.
    pub fn on_unsafe_payload(&self, now_unix_secs: u64) {
        self.unsafe_payloads.inc();
        self.last_unsafe_payload.set(secs(now_unix_secs));
    }

    /// Counts a publish that failed at `now_unix_secs`.
    pub fn on_publish_error(&self, now_unix_secs: u64) {
        self.publishing_errors.inc();
        self.last_publishing_error.set(secs(now_unix_secs));
    }

    /// Sets the number of open streams.
    pub fn set_stream_count(&self, streams: usize) {
        self.stream_count
            .set(i64::try_from(streams).unwrap_or(i64::MAX));
    }
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

/// A lock that survives a panic elsewhere: the data is plain counters, always consistent.
fn lock(m: &Mutex<CoreSnapshot>) -> MutexGuard<'_, CoreSnapshot> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One `peer_scores` series: per-bucket counts (the last is `+Inf`), sum and count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct ScoreHistogram {
    buckets: [u64; PEER_SCORE_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl ScoreHistogram {
    /// Adds a value to the first bucket whose upper bound is at least `v` (`le`). Non-finite
    /// values (a NaN from a broken score function) are skipped so the sum stays meaningful.
    fn observe(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let i = PEER_SCORE_BUCKETS
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(PEER_SCORE_BUCKETS.len());
        if let Some(c) = self.buckets.get_mut(i) {
            *c += 1;
        }
        self.sum += v;
        self.count += 1;
    }
}

/// What [`Metrics::observe`] copied from the core. Fixed size.
#[derive(Debug, Clone, Default)]
struct CoreSnapshot {
    verdicts: [u64; Reason::ALL.len()],
    /// [allowed, denied].
    dials: [u64; 2],
    /// [allowed, denied].
    accepts: [u64; 2],
    peer_unbans: u64,
    ip_unbans: u64,
    bans: u64,
    /// [invalid gossip, score drift].
    bans_by_cause: [u64; 2],
    ip_bans: u64,
    /// [accepted, refused].
    discovery: [u64; 2],
    reqresp_server: [u64; 4],
    scores: [ScoreHistogram; SCORE_TYPES.len()],
}

/// Writes the latest [`CoreSnapshot`] on each scrape, with the node's unvalidated IGNOREs in
/// the verdict family.
#[derive(Debug)]
struct CoreCollector(Arc<Mutex<CoreSnapshot>>, ValidationMetrics);

fn counter(
    enc: &mut DescriptorEncoder,
    name: &'static str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let e = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(e)
}

fn allow_counter(
    enc: &mut DescriptorEncoder,
    name: &'static str,
    help: &str,
    [allowed, denied]: [u64; 2],
) -> Result<(), std::fmt::Error> {
    let mut e = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (label, v) in [("true", allowed), ("false", denied)] {
        let labels = [("allow", label)];
        ConstCounter::new(v).encode(e.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for CoreCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = lock(&self.0).clone();
        allow_counter(
            &mut enc,
            "p2p_dials",
            "Count of outgoing dial attempts, with label to filter to allowed attempts",
            s.dials,
        )?;
        allow_counter(
            &mut enc,
            "p2p_accepts",
            "Count of incoming dial attempts to accept, with label to filter to allowed attempts",
            s.accepts,
        )?;
        counter(
            &mut enc,
            "p2p_peer_unbans",
            "Count of peer unbans",
            s.peer_unbans,
        )?;
        counter(&mut enc, "p2p_ip_unbans", "Count of IP unbans", s.ip_unbans)?;

        let mut e = enc.encode_descriptor(
            "peer_scores",
            "Histogram of currently connected peer scores",
            None,
            MetricType::Histogram,
        )?;
        for (name, h) in SCORE_TYPES.iter().zip(s.scores.iter()) {
            let labels = [("type", *name)];
            let buckets: Vec<(f64, u64)> = PEER_SCORE_BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(h.buckets.iter().copied())
                .collect();
            e.encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)?;
        }

        let mut e = enc.encode_descriptor(
            "p2p_req",
            "Number of P2P requests",
            None,
            MetricType::Counter,
        )?;
        for (code, v) in RESULT_CODES.iter().zip(s.reqresp_server) {
            let labels = [
                ("p2p_role", "server"),
                ("p2p_method", "payload_by_number"),
                ("result_code", *code),
            ];
            ConstCounter::new(v).encode(e.encode_family(&labels)?)?;
        }

        let mut e = enc.encode_descriptor(
            "gossip_verdicts",
            "Gossip validation verdicts by reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, v) in Reason::ALL.iter().zip(s.verdicts) {
            let labels = [
                ("verdict", reason.verdict().as_str()),
                ("reason", reason.as_str()),
            ];
            ConstCounter::new(v).encode(e.encode_family(&labels)?)?;
        }
        for (reason, v) in UNVALIDATED_IGNORES.iter().zip(self.1.unvalidated_ignores()) {
            let labels = [("verdict", "ignore"), ("reason", *reason)];
            ConstCounter::new(v).encode(e.encode_family(&labels)?)?;
        }

        counter(&mut enc, "bans", "Score bans issued", s.bans)?;

        let mut e = enc.encode_descriptor(
            "score_bans",
            "Score bans issued, by cause: at once on invalid gossip, or by the monitor on drift",
            None,
            MetricType::Counter,
        )?;
        for (cause, v) in [
            ("invalid_gossip", s.bans_by_cause[0]),
            ("score_drift", s.bans_by_cause[1]),
        ] {
            ConstCounter::new(v).encode(e.encode_family(&[("cause", cause)])?)?;
        }
        counter(
            &mut enc,
            "score_ip_bans",
            "IPs banned along with a peer banned for invalid gossip",
            s.ip_bans,
        )?;

        let mut e = enc.encode_descriptor(
            "discovery_records",
            "Discovered records, by whether the filter accepted them into the table",
            None,
            MetricType::Counter,
        )?;
        for (result, v) in [("accepted", s.discovery[0]), ("refused", s.discovery[1])] {
            let labels = [("result", result)];
            ConstCounter::new(v).encode(e.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

// ---- the L1 signer reader's series (see crate::l1_signer) ----

/// The L1 signer reader's series (ours; registered only when the node reads the signer from
/// L1):
///
/// | series | type | labels |
/// |---|---|---|
/// | `op_p2p_l1_signer_reads_total` | counter | `result` = `ok` or an [`L1Error::kind`](crate::l1_signer::L1Error::kind) |
/// | `op_p2p_l1_signer_last_success_unix` | gauge | — seconds |
/// | `op_p2p_l1_signer_changes_total` | counter | — signers read that differ from the last one read |
/// | `op_p2p_l1_signer_source_ok` | gauge | — 1 after a successful read, 0 after a failed one |
#[derive(Debug, Clone, Default)]
pub struct L1SignerMetrics {
    reads: Family<[(&'static str, &'static str); 1], Counter>,
    last_success: Gauge,
    changes: Counter,
    source_ok: Gauge,
}

impl L1SignerMetrics {
    /// Registers the series under `op_p2p_` in `registry` (pass the root registry).
    pub fn new(registry: &mut Registry) -> Self {
        let r = registry.sub_registry_with_prefix(PREFIX);
        let m = Self::default();
        for result in std::iter::once("ok").chain(crate::l1_signer::L1Error::KINDS) {
            drop(m.reads.get_or_create(&[("result", result)]));
        }
        r.register(
            "l1_signer_reads",
            "Reads of the unsafe block signer from L1 by result",
            m.reads.clone(),
        );
        r.register(
            "l1_signer_last_success_unix",
            "Time of the last successful read of the unsafe block signer from L1",
            m.last_success.clone(),
        );
        r.register(
            "l1_signer_changes",
            "Unsafe block signers read from L1 that differ from the last one read",
            m.changes.clone(),
        );
        r.register(
            "l1_signer_source_ok",
            "1 when the last read of the unsafe block signer from L1 succeeded, else 0",
            m.source_ok.clone(),
        );
        m
    }

    /// Counts a read with `result` (`ok` or an error kind); `ok_at` is its time (Unix ms) when
    /// it succeeded.
    pub fn on_read(&self, result: &'static str, ok_at: Option<u64>) {
        self.reads.get_or_create(&[("result", result)]).inc();
        self.source_ok.set(i64::from(ok_at.is_some()));
        if let Some(ms) = ok_at {
            self.last_success.set(secs(ms / 1000));
        }
    }

    /// Counts a changed signer.
    pub fn on_change(&self) {
        self.changes.inc();
    }
}

// ---- end of the L1 signer reader's series ----

#[cfg(test)]
mod tests {
    use super::*;
    use op_p2p_core::fork::ForkSchedule;
    use op_p2p_core::gossip::topic::BlockVersion;
    use op_p2p_core::peers::book::GossipScores;
    use op_p2p_core::testkit::{BlockBuilder, dev_key, peer_id};
    use op_p2p_core::{Config, Direction, GossipMessage, Input, MessageHandle, Multiaddr};
    use prometheus_client::encoding::text::encode;

    const NOW: u64 = 1_750_000_000;

    fn node() -> Node {
        Node::new(Config::new(
            901,
            dev_key(0).address(),
            ForkSchedule::ALL_AT_GENESIS,
            2,
            peer_id(0),
        ))
    }

    fn text(registry: &Registry) -> String {
        let mut s = String::new();
        encode(&mut s, registry).unwrap();
        s
    }

    /// The sample lines (not comments) of an exposition.
    fn samples(t: &str) -> Vec<&str> {
        t.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn has(t: &str, line: &str) {
        assert!(
            samples(t).contains(&line),
            "missing `{line}` in\n{}",
            samples(t).join("\n")
        );
    }

    fn drain(n: &mut Node) {
        while n.poll_action().is_some() {}
    }

    fn connect(n: &mut Node, i: u64) {
        let a: Multiaddr = format!("/ip4/10.0.{i}.1/tcp/9000").parse().unwrap();
        let p = peer_id(i);
        assert!(n.allow_established(NOW * 1000, &p, &a, Direction::Inbound));
        n.handle_input(
            NOW * 1000,
            Input::ConnectionEstablished {
                peer: p,
                addr: a,
                direction: Direction::Inbound,
            },
        );
        drain(n);
    }

    #[test]
    fn verdicts_are_exported_by_verdict_and_reason() {
        let mut n = node();
        for (h, num) in [(1, 1), (2, 2)] {
            let data = BlockBuilder::new(BlockVersion::V4, num, NOW)
                .sign(&dev_key(1), 901)
                .unwrap();
            n.handle_input(
                NOW * 1000,
                Input::Gossip(GossipMessage {
                    handle: MessageHandle(h),
                    topic: "/optimism/901/3/blocks".into(),
                    data: data.into(),
                    source: None,
                }),
            );
            drain(&mut n);
        }
        let mut reg = Registry::default();
        let m = Metrics::new(&mut reg);
        // Before observe: every series is there, at 0.
        has(
            &text(&reg),
            r#"op_p2p_gossip_verdicts_total{verdict="reject",reason="wrong_signer"} 0"#,
        );
        m.observe(&n);
        let t = text(&reg);
        has(
            &t,
            r#"op_p2p_gossip_verdicts_total{verdict="reject",reason="wrong_signer"} 2"#,
        );
        has(
            &t,
            r#"op_p2p_gossip_verdicts_total{verdict="accept",reason="accepted"} 0"#,
        );
        has(
            &t,
            r#"op_p2p_gossip_verdicts_total{verdict="ignore",reason="duplicate"} 0"#,
        );
        // One series per reason, the core's and the node's unvalidated IGNOREs, no more.
        let verdict_lines = samples(&t)
            .iter()
            .filter(|l| l.starts_with("op_p2p_gossip_verdicts_total{"))
            .count();
        assert_eq!(verdict_lines, Reason::ALL.len() + UNVALIDATED_IGNORES.len());
        for r in UNVALIDATED_IGNORES {
            assert!(
                Reason::ALL.iter().all(|c| c.as_str() != r),
                "{r} is a core reason"
            );
            has(
                &t,
                &format!(r#"op_p2p_gossip_verdicts_total{{verdict="ignore",reason="{r}"}} 0"#),
            );
        }
        // The node's IGNOREs without a check count as verdicts, each under its reason.
        m.validation.on_over_budget();
        m.validation.on_over_budget();
        m.validation.on_overflow();
        m.validation.on_banned_backlog();
        m.validation.on_check_failed();
        let t = text(&reg);
        for (r, v) in UNVALIDATED_IGNORES.iter().zip([2, 1, 1, 1]) {
            has(
                &t,
                &format!(r#"op_p2p_gossip_verdicts_total{{verdict="ignore",reason="{r}"}} {v}"#),
            );
        }
        has(&t, "op_p2p_validation_pool_over_budget_total 2");
        assert!(t.contains("# TYPE op_p2p_gossip_verdicts counter\n"));
        assert!(t.ends_with("# EOF\n"));
        // Observing again does not double-count: the counters mirror the core.
        m.observe(&n);
        has(
            &text(&reg),
            r#"op_p2p_gossip_verdicts_total{verdict="reject",reason="wrong_signer"} 2"#,
        );
    }

    #[test]
    fn gater_decisions_unbans_and_peer_count_follow_the_core() {
        let mut n = node();
        let t0 = NOW * 1000;
        n.handle_input(
            t0,
            Input::Admin {
                id: op_p2p_core::RequestId(1),
                request: op_p2p_core::admin::AdminRequest::BlockAddr("1.2.3.4".parse().unwrap()),
            },
        );
        drain(&mut n);
        assert!(!n.allow_inbound(t0, "1.2.3.4".parse().unwrap()));
        assert!(n.allow_inbound(t0, "5.6.7.8".parse().unwrap()));
        assert!(n.allow_inbound(t0, "5.6.7.9".parse().unwrap()));
        let a: Multiaddr = "/ip4/9.9.9.9/tcp/1".parse().unwrap();
        assert!(n.allow_dial(t0, &peer_id(3), Some(&a)));
        connect(&mut n, 1);
        connect(&mut n, 2);
        let mut reg = Registry::default();
        let m = Metrics::new(&mut reg);
        m.observe(&n);
        let t = text(&reg);
        has(&t, r#"op_p2p_p2p_accepts_total{allow="true"} 2"#);
        has(&t, r#"op_p2p_p2p_accepts_total{allow="false"} 1"#);
        has(&t, r#"op_p2p_p2p_dials_total{allow="true"} 1"#);
        has(&t, r#"op_p2p_p2p_dials_total{allow="false"} 0"#);
        has(&t, "op_p2p_p2p_peer_count 2");
        has(&t, "op_p2p_p2p_peer_unbans_total 0");
        has(&t, "op_p2p_p2p_ip_unbans_total 0");
        has(&t, "op_p2p_bans_total 0");
        has(&t, r#"op_p2p_score_bans_total{cause="invalid_gossip"} 0"#);
        has(&t, r#"op_p2p_score_bans_total{cause="score_drift"} 0"#);
        has(&t, "op_p2p_score_ip_bans_total 0");
        has(
            &t,
            r#"op_p2p_p2p_req_total{p2p_role="server",p2p_method="payload_by_number",result_code="0"} 0"#,
        );
        has(&t, r#"op_p2p_discovery_records_total{result="accepted"} 0"#);
        // A disconnect lowers the gauge at the next observe.
        n.handle_input(t0, Input::ConnectionClosed { peer: peer_id(2) });
        drain(&mut n);
        m.observe(&n);
        has(&text(&reg), "op_p2p_p2p_peer_count 1");
    }

    #[test]
    fn peer_scores_histogram_describes_the_latest_connected_set() {
        let mut n = node();
        connect(&mut n, 1);
        connect(&mut n, 2);
        let s = |total, mesh| GossipScores {
            total,
            time_in_mesh: mesh,
            ..GossipScores::default()
        };
        n.handle_input(
            NOW * 1000,
            Input::GossipScores(vec![(peer_id(1), s(-30.0, 3.0)), (peer_id(2), s(7.0, 0.0))]),
        );
        drain(&mut n);
        let mut reg = Registry::default();
        let m = Metrics::new(&mut reg);
        m.observe(&n);
        let t = text(&reg);
        assert!(t.contains("# TYPE op_p2p_peer_scores histogram\n"));
        has(&t, r#"op_p2p_peer_scores_count{type="total"} 2"#);
        has(&t, r#"op_p2p_peer_scores_sum{type="total"} -23.0"#);
        // -30 falls in le=-20 (not le=-40), 7 in le=10; buckets are cumulative.
        has(
            &t,
            r#"op_p2p_peer_scores_bucket{le="-40.0",type="total"} 0"#,
        );
        has(
            &t,
            r#"op_p2p_peer_scores_bucket{le="-20.0",type="total"} 1"#,
        );
        has(&t, r#"op_p2p_peer_scores_bucket{le="5.0",type="total"} 1"#);
        has(&t, r#"op_p2p_peer_scores_bucket{le="10.0",type="total"} 2"#);
        has(&t, r#"op_p2p_peer_scores_bucket{le="+Inf",type="total"} 2"#);
        has(&t, r#"op_p2p_peer_scores_sum{type="blocksTimeInMesh"} 3.0"#);
        has(
            &t,
            r#"op_p2p_peer_scores_bucket{le="0.0",type="blocksTimeInMesh"} 1"#,
        );
        for ty in SCORE_TYPES {
            has(&t, &format!(r#"op_p2p_peer_scores_count{{type="{ty}"}} 2"#));
        }
        // A peer leaves: the histogram is rebuilt, not accumulated.
        n.handle_input(NOW * 1000, Input::ConnectionClosed { peer: peer_id(1) });
        drain(&mut n);
        m.observe(&n);
        let t = text(&reg);
        has(&t, r#"op_p2p_peer_scores_count{type="total"} 1"#);
        has(&t, r#"op_p2p_peer_scores_sum{type="total"} 7.0"#);
        has(
            &t,
            r#"op_p2p_peer_scores_bucket{le="-20.0",type="total"} 0"#,
        );
    }

    #[test]
    fn histogram_bucketing_is_le_and_skips_non_finite_values() {
        let mut h = ScoreHistogram::default();
        for v in [
            -100.0,
            -100.5,
            0.0,
            0.05,
            40.0,
            40.1,
            f64::NAN,
            f64::INFINITY,
        ] {
            h.observe(v);
        }
        assert_eq!(h.count, 6);
        assert_eq!(h.buckets[0], 2, "-100.5 and -100 are <= -100");
        assert_eq!(h.buckets[9], 1, "0 is in le=0");
        assert_eq!(h.buckets[10], 1, "0.05 is in le=0.05");
        assert_eq!(h.buckets[17], 1, "40 is in le=40");
        assert_eq!(h.buckets[18], 1, "40.1 is in +Inf");
    }

    #[test]
    fn events_count_and_stamp_their_time() {
        let mut reg = Registry::default();
        let m = Metrics::new(&mut reg);
        let t = text(&reg);
        for ev in GossipEvent::ALL {
            has(
                &t,
                &format!(
                    r#"op_p2p_p2p_gossip_events_total{{type="{}"}} 0"#,
                    ev.as_str()
                ),
            );
        }
        m.gossip_event(GossipEvent::Graft);
        m.gossip_event(GossipEvent::Graft);
        m.gossip_event(GossipEvent::DeliverMessage);
        m.on_unsafe_payload(1_700_000_000);
        m.on_unsafe_payload(1_700_000_005);
        m.on_publish_error(1_700_000_001);
        m.set_stream_count(7);
        let t = text(&reg);
        has(&t, r#"op_p2p_p2p_gossip_events_total{type="GRAFT"} 2"#);
        has(
            &t,
            r#"op_p2p_p2p_gossip_events_total{type="DELIVER_MESSAGE"} 1"#,
        );
        has(&t, r#"op_p2p_p2p_gossip_events_total{type="PRUNE"} 0"#);
        has(&t, "op_p2p_unsafe_payloads_total 2");
        has(&t, "op_p2p_last_unsafe_payloads_unix 1700000005");
        has(&t, "op_p2p_publishing_errors_total 1");
        has(&t, "op_p2p_last_publishing_errors_unix 1700000001");
        has(&t, "op_p2p_p2p_stream_count 7");
    }

    #[test]
    fn no_peer_labels_and_no_name_clash_with_libp2p_metrics() {
        let mut n = node();
        for i in 1..=5 {
            connect(&mut n, i);
        }
        let mut reg = Registry::default();
        let m = Metrics::new(&mut reg);
        let _libp2p = libp2p::metrics::Metrics::new(&mut reg);
        m.observe(&n);
        let t = text(&reg);
        let families: Vec<&str> = t
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let mut unique = families.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), families.len(), "a family name appears twice");
        assert!(families.iter().any(|f| f.starts_with("libp2p_")));
        for f in families.iter().filter(|f| !f.starts_with("libp2p_")) {
            assert!(f.starts_with("op_p2p_"), "{f}");
        }
        for l in samples(&t) {
            assert!(!l.contains("peer=") && !l.contains("peer_id="), "{l}");
            for i in 1..=5 {
                assert!(!l.contains(&peer_id(i).to_base58()), "{l}");
            }
        }
        // The series count does not depend on the number of peers.
        let ours = |t: &str| {
            samples(t)
                .iter()
                .filter(|l| l.starts_with("op_p2p_"))
                .count()
        };
        let mut reg2 = Registry::default();
        let m2 = Metrics::new(&mut reg2);
        m2.observe(&node());
        assert_eq!(ours(&t), ours(&text(&reg2)));
    }
}

// ---- the publish queue (issue 14) ----

/// The publish queue's series (see the table in the module docs).
#[derive(Debug, Clone)]
pub struct PublishMetrics {
    queue_length: Gauge,
    published: Counter,
    dropped: Family<[(&'static str, &'static str); 1], Counter>,
    failures: Family<[(&'static str, &'static str); 1], Counter>,
    signing_latency: prometheus_client::metrics::histogram::Histogram,
}

/// Buckets of the signing latency, seconds.
pub const SIGNING_LATENCY_BUCKETS: [f64; 10] =
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

impl Default for PublishMetrics {
    fn default() -> Self {
        Self {
            queue_length: Gauge::default(),
            published: Counter::default(),
            dropped: Family::default(),
            failures: Family::default(),
            signing_latency: prometheus_client::metrics::histogram::Histogram::new(
                SIGNING_LATENCY_BUCKETS,
            ),
        }
    }
}

impl PublishMetrics {
    fn register(&self, r: &mut Registry) {
        for why in op_p2p_core::publish::DropReason::ALL {
            drop(self.dropped.get_or_create(&[("reason", why.as_str())]));
        }
        for kind in ["transient", "permanent"] {
            drop(self.failures.get_or_create(&[("kind", kind)]));
        }
        r.register(
            "publish_queue_length",
            "Blocks waiting to be signed or published",
            self.queue_length.clone(),
        );
        r.register(
            "published_blocks",
            "Blocks this node published",
            self.published.clone(),
        );
        r.register(
            "publish_dropped",
            "Blocks dropped from the publish queue, by reason",
            self.dropped.clone(),
        );
        r.register(
            "publish_failures",
            "Blocks that failed to publish, by kind",
            self.failures.clone(),
        );
        r.register(
            "signing_latency_seconds",
            "Time one block-signer call took",
            self.signing_latency.clone(),
        );
    }

    /// The queue's current length.
    pub fn set_queue_length(&self, len: usize) {
        self.queue_length
            .set(i64::try_from(len).unwrap_or(i64::MAX));
    }

    /// One signer call took `latency`.
    pub fn on_signed(&self, latency: std::time::Duration) {
        self.signing_latency.observe(latency.as_secs_f64());
    }

    /// A block's outcome.
    pub fn on_outcome(&self, outcome: &op_p2p_core::PublishOutcome) {
        use op_p2p_core::PublishOutcome;
        match outcome {
            PublishOutcome::Published { .. } => {
                self.published.inc();
            }
            PublishOutcome::Dropped(why) => {
                self.dropped
                    .get_or_create(&[("reason", why.as_str())])
                    .inc();
            }
            PublishOutcome::Failed(f) => {
                self.failures
                    .get_or_create(&[("kind", f.kind.as_str())])
                    .inc();
            }
            _ => {}
        }
    }
}

// ---- validation worker pool (issue 15) ----

/// The validation worker pool's series (see [`crate::validation_pool`]):
/// `op_p2p_validation_pool_overflow_total` (messages IGNOREd unvalidated because the pool was
/// at its bound), `op_p2p_validation_pool_over_budget_total` (IGNOREd unvalidated because their
/// peer used up its checks of the second), `op_p2p_validation_pool_pending` (messages submitted and not yet judged,
/// sampled once a second) and `op_p2p_validation_pool_workers`.
#[derive(Debug, Clone, Default)]
pub struct ValidationMetrics {
    overflow: Counter,
    over_budget: Counter,
    banned_backlog: Counter,
    check_failed: Counter,
    pending: Gauge,
    workers: Gauge,
}

/// The `reason` labels of the IGNOREs the node reports to gossipsub without the core judging
/// the message, in `op_p2p_gossip_verdicts_total` beside the core's reasons (none of which they
/// share), so that family counts every verdict the node gives: the peer was over its checks a
/// second; the validation pool was full; the peer was banned with the message still queued; a
/// worker's check failed (a worker panicked).
pub const UNVALIDATED_IGNORES: [&str; 4] = [
    "peer_over_budget",
    "validation_pool_full",
    "banned_peer_backlog",
    "check_failed",
];

impl ValidationMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "validation_pool_overflow",
            "Gossip messages ignored without validation because the validation pool was full",
            self.overflow.clone(),
        );
        r.register(
            "validation_pool_over_budget",
            "Gossip messages ignored without validation because their peer used up its checks of the second",
            self.over_budget.clone(),
        );
        r.register(
            "validation_pool_pending",
            "Gossip messages in the validation pool (queued, being checked or waiting for an earlier one)",
            self.pending.clone(),
        );
        r.register(
            "validation_pool_workers",
            "Validation worker threads (0: validation runs on the event loop)",
            self.workers.clone(),
        );
    }

    /// One message refused by the full pool.
    pub fn on_overflow(&self) {
        self.overflow.inc();
    }

    /// One message IGNOREd because its peer was over its checks a second.
    pub fn on_over_budget(&self) {
        self.over_budget.inc();
    }

    /// One queued message of a banned peer IGNOREd unchecked.
    pub fn on_banned_backlog(&self) {
        self.banned_backlog.inc();
    }

    /// One message IGNOREd because its check failed on a worker.
    pub fn on_check_failed(&self) {
        self.check_failed.inc();
    }

    /// The counts behind [`UNVALIDATED_IGNORES`], in its order.
    fn unvalidated_ignores(&self) -> [u64; 4] {
        [
            self.over_budget.get(),
            self.overflow.get(),
            self.banned_backlog.get(),
            self.check_failed.get(),
        ]
    }

    /// The pool's current size and backlog.
    pub fn set_pool(&self, workers: usize, pending: usize) {
        self.workers.set(workers as i64);
        self.pending.set(pending as i64);
    }
}
