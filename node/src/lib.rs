//! # op-p2p-node
//!
//! The op-p2p node, written once for every async runtime: everything between the pure protocol
//! core ([`op_p2p_core`]) and real sockets that does not depend on which executor runs it. A
//! runtime crate (`op-p2p-tokio`, `op-p2p-async-std`) implements the small [`Runtime`] trait
//! and calls [`spawn`]; embedders use that crate's `spawn` and get a [`NodeHandle`].
//!
//! - [`NodeConfig`]: what a running node needs, made and checked by [`NodeConfigBuilder`]
//!   ([`NodeConfig::builder`]); [`ConfigError`] says why one is refused.
//! - [`spawn`]: the one start-up sequence (HTTP listeners, core with restored state, swarm,
//!   discv5, driver, state writer), returning a [`NodeHandle`].
//! - [`host::Host`]: several chains' nodes on one runtime behind one HTTP server and one
//!   metrics endpoint (each series labelled `chain_id`).
//! - [`NodeHandle`] and [`AdminClient`]: publish, blocks, signer, the `opp2p_*` API, shutdown.
//!   Dropping the handle shuts the node down gracefully.
//! - [`behaviour`]: the libp2p behaviour (gossipsub as op-node configures it, identify, ping,
//!   `payload_by_number`) and the connection gate that asks the core.
//! - [`l1_signer`]: the unsafe block signer read from L1's `SystemConfig` (`--l1`).
//! - [`driver`]'s event loop, [`discovery`] (discv5), [`http`] (JSON-RPC, `/metrics`,
//!   `/healthz` and the accept loop), [`metrics`], [`datadir`] (key and state on disk).
//!
//! The protocol rules themselves live in the core, each next to its test; this crate carries
//! their decisions out.

#![warn(missing_docs)]

pub mod behaviour;
pub mod bootnodes_file;
mod config;
pub mod datadir;
pub mod discovery;
pub mod driver;
pub mod fd_limit;
mod handle;
pub mod health;
pub mod hop_trace;
pub mod host;
pub mod http;
pub mod l1_signer;
pub mod metrics;
pub mod probe;
mod runtime;
pub mod signer;
mod spawn;
mod state_writer;
#[cfg(any(test, feature = "test-util"))]
pub mod testkit;
pub mod validation_pool;

pub use config::{
    ConfigError, DEFAULT_BLOCK_TIME_SECS, DEFAULT_P2P_PORT, NodeConfig, NodeConfigBuilder,
    StaticPeerError, default_agent_version, resolve_chain_id,
};
pub use handle::{ADMIN_QUEUE, AdminClient, AdminReply, NodeHandle, NodeStopped, PublishTicket};
pub use runtime::{
    BoxedTransport, Runtime, UPGRADE_TIMEOUT, blocking, system_now_ms, upgrade_transport,
};
pub use spawn::{
    COMMAND_QUEUE, EVENT_QUEUE, IDLE_CONNECTION_TIMEOUT, LISTEN_TIMEOUT, ListenError, SpawnError,
    SpawnOptions, spawn, tcp_multiaddr,
};

/// Re-exported so embedders name the same core types this crate uses.
pub use op_p2p_core as core;
