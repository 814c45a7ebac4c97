//! `op-p2p node`: run one node until SIGINT or SIGTERM, optionally printing one JSON line per
//! operator event (`--events-json`).

use futures::StreamExt;
use op_p2p_node::driver::NodeEvent;
use op_p2p_tokio::{NodeConfig, SpawnError, SpawnOptions, spawn};

/// Why `op-p2p node` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The node could not start.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The signal handler could not be installed.
    #[error("install signal handler")]
    Signal(#[source] std::io::Error),
}

/// One `--events-json` line for an event.
pub fn event_json(e: &NodeEvent) -> serde_json::Value {
    use NodeEvent as E;
    use serde_json::json;
    match e {
        E::Verdict {
            topic,
            message_id,
            verdict,
            reason,
            block,
            from,
        } => json!({
            "event": "gossip", "topic": topic, "message_id": message_id.to_string(),
            "verdict": verdict.as_str(), "reason": reason.as_str(),
            "block_number": block.map(|b| b.0), "block_hash": block.map(|b| b.1.to_string()),
            "from": from.to_string(),
        }),
        E::Published {
            topic,
            message_id,
            block,
        } => json!({
            "event": "published", "topic": topic, "message_id": message_id.to_string(),
            "block_number": block.0, "block_hash": block.1.to_string(),
        }),
        E::PeerConnected {
            peer,
            addr,
            outbound,
        } => json!({
            "event": "peer_connected", "peer": peer.to_string(), "addr": addr.to_string(),
            "direction": if *outbound { "outbound" } else { "inbound" },
        }),
        E::PeerDisconnected { peer } => {
            json!({ "event": "peer_disconnected", "peer": peer.to_string() })
        }
        E::Disconnecting { peer, reason } => json!({
            "event": "disconnecting", "peer": peer.to_string(), "reason": format!("{reason:?}").to_lowercase(),
        }),
        E::Listening { addr } => json!({ "event": "listening", "addr": addr.to_string() }),
        E::Banned(r) => {
            let (kind, target) = match r.kind {
                op_p2p_node::core::BanKind::Peer(p) => ("peer", p.to_string()),
                op_p2p_node::core::BanKind::Ip(ip) => ("ip", ip.to_string()),
            };
            json!({
                "event": "banned", "kind": kind, "target": target,
                "cause": r.source.as_str(), "reason": r.source.reason().map(|x| x.as_str()),
                "since_ms": r.since, "until_ms": r.until, "persisted": r.persisted(),
            })
        }
        E::SignerSuspect { address } => {
            json!({ "event": "signer_suspect", "address": address.to_string() })
        }
        _ => json!({ "event": "other" }),
    }
}

/// Runs a node until SIGINT or SIGTERM, printing one JSON line per event if `events_json`,
/// then shuts it down (writing its state).
pub async fn run_node(config: NodeConfig, events_json: bool) -> Result<(), RunError> {
    // Handlers before the node starts: a SIGTERM right after start must stop it cleanly
    // (tokio's `ctrl_c()` registers only when first polled).
    let signals = Signals::install().map_err(RunError::Signal)?;
    let mut node = spawn(config, SpawnOptions::default().with_events(events_json)).await?;
    tracing::info!(peer_id = %node.peer_id(), enr = ?node.enr(), addrs = ?node.listen_addrs(), rpc = ?node.rpc_addr(), "node running");
    let printer = node.events().map(|mut events| {
        tokio::spawn(async move {
            while let Some(e) = events.next().await {
                println!("{}", event_json(&e));
            }
        })
    });
    // Keep the delivered-block stream drained: the binary has no consumer for blocks.
    let mut blocks = node.blocks().expect("taken once");
    let drain = tokio::spawn(async move { while blocks.next().await.is_some() {} });
    let stopped = signals.wait().await;
    tracing::info!("stopping");
    node.shutdown().await;
    drain.abort();
    if let Some(p) = printer {
        p.abort();
    }
    stopped.map_err(RunError::Signal)
}

/// SIGINT and SIGTERM handlers, registered when made (not when first awaited), for the
/// binary's long-running commands (`node`, `bootnode`).
pub(crate) struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers both handlers now.
    pub(crate) fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Until SIGINT or SIGTERM (Ctrl-C elsewhere).
    pub(crate) async fn wait(self) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            let Self { mut int, mut term } = self;
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use op_p2p_core::gossip::validate::Reason;
    use op_p2p_core::peers::score_ban::BanCause;
    use op_p2p_core::testkit::{dev_key, peer_id};
    use op_p2p_core::{BanKind, BanRecord, BanSource};

    #[test]
    fn ban_and_signer_suspect_events_carry_their_reason() {
        let r = BanRecord {
            kind: BanKind::Peer(peer_id(1)),
            source: BanSource::Score(BanCause::InvalidGossip(Reason::WrongSigner)),
            since: 10,
            until: 20,
        };
        let v = event_json(&NodeEvent::Banned(r));
        assert_eq!(
            v,
            serde_json::json!({
                "event": "banned", "kind": "peer", "target": peer_id(1).to_string(),
                "cause": "invalid_gossip", "reason": "wrong_signer",
                "since_ms": 10, "until_ms": 20, "persisted": false,
            })
        );
        let a = dev_key(0).address();
        let v = event_json(&NodeEvent::SignerSuspect { address: a });
        assert_eq!(
            v,
            serde_json::json!({"event": "signer_suspect", "address": a.to_string()})
        );
    }
}
