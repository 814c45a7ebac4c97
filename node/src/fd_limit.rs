//! File descriptors: what a node may need at its caps, and raising the process's soft limit
//! toward its hard limit (a common soft limit is 1,024, which about a thousand silent sockets
//! would exhaust: accepts, dials and state writes then fail).

use crate::NodeConfig;
use crate::behaviour::{MAX_CONNECTIONS_PER_PEER, MAX_PENDING_INBOUND, MAX_PENDING_OUTBOUND};
use crate::http::MAX_CONNECTIONS as MAX_HTTP_CONNECTIONS;

/// Descriptors besides connections: listeners, discv5's socket, the data dir's files and lock,
/// the runtime's own (epoll, eventfd, threads' pipes), logs.
const BASE: u64 = 64;

/// The most descriptors `config` may hold at once when every cap is reached: libp2p's
/// established and pending connections, each HTTP listener's connections, and a base.
pub fn needed(config: &NodeConfig) -> u64 {
    let peers = config.core.max_connected_peers() as u64;
    let libp2p = peers * u64::from(MAX_CONNECTIONS_PER_PEER)
        + u64::from(MAX_PENDING_INBOUND)
        + u64::from(MAX_PENDING_OUTBOUND);
    let listeners = u64::from(config.rpc_addr.is_some())
        + u64::from(config.metrics_addr.is_some() && config.metrics_addr != config.rpc_addr);
    BASE + libp2p + listeners * MAX_HTTP_CONNECTIONS as u64
}

/// The process's open-file limits (soft, hard), where the platform has them.
pub fn limits() -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::NOFILE).ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Raises the soft open-file limit to the hard limit (what a process may do without
/// privileges) and returns the new (soft, hard) limits. For binaries at start-up; a library
/// leaves process-wide limits to its host.
pub fn raise_to_hard_limit() -> std::io::Result<(u64, u64)> {
    #[cfg(unix)]
    {
        let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
        // macOS refuses values above OPEN_MAX; `increase_nofile_limit` knows the platforms.
        rlimit::increase_nofile_limit(hard)?;
        rlimit::getrlimit(rlimit::Resource::NOFILE)
    }
    #[cfg(not(unix))]
    {
        Err(std::io::Error::other("no open-file limit on this platform"))
    }
}

/// Logs what `config` may need against what the process has: a warning when the soft limit
/// is below it.
pub fn log_budget(config: &NodeConfig) {
    let need = needed(config);
    match limits() {
        Some((soft, hard)) if soft < need => tracing::warn!(
            soft,
            hard,
            need,
            "the open-file limit is below what this node's caps may use; raise it (ulimit -n) \
             or lower --p2p.peers.hi"
        ),
        Some((soft, hard)) => tracing::info!(soft, hard, need, "open-file limit"),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_grows_with_the_peer_cap_and_the_http_listeners() {
        let core = op_p2p_core::Config::new(
            901,
            op_p2p_core::testkit::dev_key(0).address(),
            op_p2p_core::fork::ForkSchedule::ALL_AT_GENESIS,
            2,
            op_p2p_core::testkit::peer_id(0),
        );
        let mut c = NodeConfig::local(core, op_p2p_core::testkit::keypair(1));
        let bare = needed(&c);
        // 60 peers × 2 connections + 64 + 32 pending + the base.
        assert_eq!(bare, 64 + 120 + 96);
        c.rpc_addr = Some("127.0.0.1:9545".parse().unwrap());
        assert_eq!(needed(&c), bare + 256);
        c.metrics_addr = c.rpc_addr;
        assert_eq!(needed(&c), bare + 256, "one shared listener");
        c.metrics_addr = Some("0.0.0.0:7300".parse().unwrap());
        assert_eq!(needed(&c), bare + 512);
    }

    #[cfg(unix)]
    #[test]
    fn limits_are_readable_and_raising_reaches_the_hard_limit() {
        let (soft, hard) = limits().unwrap();
        assert!(soft <= hard);
        let (soft2, hard2) = raise_to_hard_limit().unwrap();
        assert_eq!(hard2, hard);
        assert!(soft2 >= soft);
    }
}
