//! # op-p2p-core
//!
//! The sans-IO protocol core of op-p2p, the peer-to-peer layer of an OP Stack rollup node. It
//! decodes and validates unsafe-block gossip exactly as op-node does and keeps the peer book,
//! gating, scoring and discovery policy. It reads no clock, opens no socket and spawns nothing:
//! time comes in as an input, so it is unit-tested, simulated and fuzzed without a network.
//!
//! ## Shape
//! - [`gossip`]: the wire and the receive-path rules, each next to its test: the topic, the
//!   wire format (size guard, snappy, message id, envelope), the block signature and hash,
//!   validation in op-node's order, the seen set and the signer set with rotation grace.
//! - [`peers`]: the peer book, connection gating, tides, scoring and score bans.
//! - [`discovery`]: the `opstack` ENR entry, op-node's filter, bootnodes and the table;
//!   [`reqresp`]: `payload_by_number`; [`admin`]: the `opp2p_*` API in op-node's JSON shapes.
//! - One owner type, [`Node`]: `handle_input(now, input)`, then drain `poll_action()` until it
//!   returns `None`, then read `poll_timeout()` and tick no later than that.
//!
//! This crate is pure with every feature: no sockets, no clock, no threads, no files. The
//! runtime-neutral node over libp2p is `op-p2p-node`. Each rule of the protocol is described
//! in the doc of the module that holds it (the validation rules, in order, in
//! [`gossip::validate`]); where op-node (which the network runs) differs from the published
//! OP spec text or kona, the code says so with a ⚠ comment and a test.
//!
//! ## Example
//! ```
//! use op_p2p_core::{Config, Input, GossipMessage, MessageHandle, Node, Action, PeerId};
//! use op_p2p_core::fork::ForkSchedule;
//! use alloy_primitives::Address;
//!
//! let signer: Address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".parse().unwrap();
//! let me: PeerId = "16Uiu2HAm31LCBALXkJfNGmK1tVkgzQDw9QQoNcFznzBBCYUPUhAD".parse().unwrap();
//! let mut node = Node::new(Config::new(901, signer, ForkSchedule::ALL_AT_GENESIS, 2, me));
//! node.handle_input(1_700_000_000_000, Input::Gossip(GossipMessage {
//!     handle: MessageHandle(1),
//!     topic: "/optimism/901/3/blocks".into(),
//!     data: vec![0xff; 4].into(), // not even a snappy header
//!     source: None,
//! }));
//! match node.poll_action() {
//!     Some(Action::Verdict { verdict, reason, .. }) => {
//!         assert_eq!(verdict.as_str(), "reject");
//!         assert_eq!(reason.as_str(), "snappy_length_unreadable");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! assert!(node.poll_action().is_none());
//! ```

#![warn(missing_docs)]

pub mod admin;
pub mod discovery;
pub mod fork;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod gossip;
mod node;
pub mod peers;
pub mod presets;
pub mod publish;
pub mod reqresp;
pub mod stats;

#[cfg(feature = "test-util")]
pub mod sim;
#[cfg(feature = "test-util")]
pub mod testkit;

/// Shared by the unit tests: the op-node vectors in `core/testdata/op-node/` (their sources
/// are named inside each file and in that folder's README).
#[cfg(test)]
pub(crate) fn op_node_vectors(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/op-node")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path:?}: {e}"))
}

pub use gossip::topic::{BlockTopic, BlockVersion};
pub use gossip::validate::{Reason, Verdict};
pub use gossip::wire::MessageId;
pub use libp2p_identity::PeerId;
pub use multiaddr::Multiaddr;
pub use node::{
    Action, BanKind, BanRecord, BanSource, Config, DISCOVERY_EMPTY_MS, DeliveredBlock, Direction,
    DisconnectReason, GossipMessage, HOUSEKEEPING_INTERVAL_MS, Health, HealthCode, HealthReason,
    HealthStatus, Input, LOW_PEERS_MS, LocalInfo, MessageHandle, NO_BLOCK_BLOCK_TIMES, Node,
    NodeState, PublishError, PublishFailed, PublishOutcome, PublishRequest, ReqRespConfig,
    RequestId, RestoreReport, SIGNER_SUSPECT_INTERVAL_MS, STATE_VERSION, SignerSourceStatus,
    SplitMix64, StateChanges, StateError, StateUpdate, StreamHandle, UnixMillis,
};

/// Re-exported so embedders name the same primitive types the core uses.
pub use alloy_primitives;
/// Re-exported so embedders name the same types the core uses.
pub use op_alloy_rpc_types_engine;
