//! The node's health as the runtime serves it: the driver copies [`Node::health`] (and the
//! stale-view counters) into a [`HealthReport`] about once a second; `GET /healthz` answers
//! from it (see [`crate::http`]) and the metrics registry exports it.
//!
//! `GET /healthz` answers `200` with `{"status":"ok"|"degraded","reasons":[...]}` in both
//! cases: a Kubernetes liveness probe must not restart a node that is merely degraded (a
//! restart fixes none of the reasons: a stale signer, a wrong clock, no peers). Alerting and
//! readiness checks read `status` or the `op_p2p_health_reason` gauges. Each reason is
//! `{"code","message","since_ms"}` ([`op_p2p_core::HealthReason`]).
//!
//! Series (under `op_p2p_`, fixed label sets):
//!
//! | series | type | labels |
//! |---|---|---|
//! | `op_p2p_health_reason` | gauge (0/1) | `code` ([`HealthCode`]) |
//! | `op_p2p_clock_offset_seconds` | gauge | — median block timestamp minus our clock; absent without recent blocks |
//! | `op_p2p_gossip_spared_total` | counter | `cause` = `stale_signer`/`clock_offset`/`fork_rules`: REJECTs not charged to the peer |
//! | `op_p2p_score_ban_reasons_total` | counter | `reason` ([`op_p2p_core::Reason`]): score bans on invalid gossip by the REJECT that crossed |

use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use op_p2p_core::gossip::stale_view::StaleCause;
use op_p2p_core::{Health, HealthCode, HealthStatus, Node, Reason, UnixMillis};

#[derive(Debug, Clone)]
struct Snapshot {
    health: Health,
    clock_offset_ms: Option<i64>,
    spared: [u64; 3],
    bans_by_reason: Vec<(Reason, u64)>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            health: Health {
                status: HealthStatus::Ok,
                reasons: Vec::new(),
            },
            clock_offset_ms: None,
            spared: [0; 3],
            bans_by_reason: Reason::ALL.iter().map(|r| (*r, 0)).collect(),
        }
    }
}

/// The latest health, shared by the driver (writer), the HTTP listeners and the metrics
/// registry (readers). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct HealthReport(Arc<Mutex<Snapshot>>);

fn lock(m: &Mutex<Snapshot>) -> MutexGuard<'_, Snapshot> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HealthReport {
    /// A report registered in `registry` (pass the root registry; the series get `op_p2p_`).
    pub fn new(registry: &mut Registry) -> Self {
        let report = Self::default();
        registry
            .sub_registry_with_prefix(crate::metrics::PREFIX)
            .register_collector(Box::new(HealthCollector(report.0.clone())));
        report
    }

    /// Copies the node's health at `now` and its stale-view counters. O(peers in the book);
    /// the driver calls it about once a second.
    pub fn observe(&self, node: &Node, now: UnixMillis) {
        let stats = node.stats();
        let snap = Snapshot {
            health: node.health(now),
            clock_offset_ms: stats.clock_offset_ms,
            spared: stats.counters.spared,
            bans_by_reason: stats.counters.bans_by_reason().collect(),
        };
        *lock(&self.0) = snap;
    }

    /// The latest health (`ok` before the first observation).
    pub fn health(&self) -> Health {
        lock(&self.0).health.clone()
    }

    /// The `GET /healthz` body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.health())
            .unwrap_or_else(|_| r#"{"status":"degraded","reasons":[]}"#.into())
    }
}

#[derive(Debug)]
struct HealthCollector(Arc<Mutex<Snapshot>>);

impl Collector for HealthCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = lock(&self.0).clone();
        let mut e = enc.encode_descriptor(
            "health_reason",
            "Whether each health reason is active (1) or not (0); see GET /healthz",
            None,
            MetricType::Gauge,
        )?;
        for code in HealthCode::ALL {
            let v = i64::from(s.health.has(code));
            ConstGauge::new(v).encode(e.encode_family(&[("code", code.as_str())])?)?;
        }
        if let Some(ms) = s.clock_offset_ms {
            let e = enc.encode_descriptor(
                "clock_offset_seconds",
                "Median of recent correctly signed blocks' timestamp minus our clock",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(ms as f64 / 1000.0).encode(e)?;
        }
        let mut e = enc.encode_descriptor(
            "gossip_spared",
            "REJECTs not charged to the peer because our own view may be stale, by cause",
            None,
            MetricType::Counter,
        )?;
        for (cause, v) in [StaleCause::Signer, StaleCause::Clock, StaleCause::Fork]
            .iter()
            .zip(s.spared)
        {
            ConstCounter::new(v).encode(e.encode_family(&[("cause", cause.as_str())])?)?;
        }
        let mut e = enc.encode_descriptor(
            "score_ban_reasons",
            "Score bans on invalid gossip, by the reason of the REJECT that crossed the threshold",
            None,
            MetricType::Counter,
        )?;
        for (reason, v) in s.bans_by_reason {
            ConstCounter::new(v).encode(e.encode_family(&[("reason", reason.as_str())])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use op_p2p_core::fork::ForkSchedule;
    use op_p2p_core::testkit::{dev_key, peer_id};
    use op_p2p_core::{Config, Input, SignerSourceStatus};

    #[test]
    fn the_report_follows_the_node_and_every_code_has_a_gauge() {
        let mut registry = Registry::default();
        let report = HealthReport::new(&mut registry);
        assert_eq!(report.to_json(), r#"{"status":"ok","reasons":[]}"#);
        let mut node = Node::new(Config::new(
            901,
            dev_key(0).address(),
            ForkSchedule::ALL_AT_GENESIS,
            2,
            peer_id(0),
        ));
        let now = 1_750_000_000_000;
        node.handle_input(
            now,
            Input::SignerSource(SignerSourceStatus::Failing {
                since: now,
                error: "timeout".into(),
            }),
        );
        report.observe(&node, now);
        let v: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(v["status"], "degraded");
        assert_eq!(v["reasons"][0]["code"], "signer_source_failing");
        assert_eq!(v["reasons"][0]["since_ms"], now);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for code in HealthCode::ALL {
            let want = i64::from(code == HealthCode::SignerSourceFailing);
            let line = format!("op_p2p_health_reason{{code=\"{}\"}} {want}", code.as_str());
            assert!(text.contains(&line), "{line} in\n{text}");
        }
        assert!(text.contains(r#"op_p2p_gossip_spared_total{cause="stale_signer"} 0"#));
        assert!(text.contains(r#"op_p2p_score_ban_reasons_total{reason="wrong_signer"} 0"#));
    }
}
