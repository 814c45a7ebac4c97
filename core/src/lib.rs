//! # op-p2p-core
//!
//! The sans-IO protocol core of op-p2p, the peer-to-peer layer of an OP Stack rollup node. It
//! decodes and validates unsafe-block gossip exactly as op-node does, and (in later modules)
//! keeps the peer book and gating policy. It reads no clock, opens no socket and spawns nothing:
//! time comes in as an input, so it is unit-tested, simulated and fuzzed without a network.
//!
//! ## Shape
//! - Pure functions for the wire, usable alone: [`topic`], [`wire`] (size guard, snappy,
//!   message id, envelope), [`signing`], [`block_hash`].
//! - The receive-path rules of the protocol, each next to its test: [`validate`], with its state
//!   in [`seen`] and [`signer`].
//! - One owner type, [`Node`]: `handle_input(now, input)`, then drain `poll_action()` until it
//!   returns `None`, then read `poll_timeout()` and tick no later than that.
//!
//! The protocol reference is `shared/spec/op-stack-p2p.md`; where it (following op-node)
//! differs from the published OP spec text or kona, the code says so with a ⚠ comment and a test.
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
pub mod block_hash;
pub mod connmgr;
pub mod discovery;
pub mod fork;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod gater;
mod node;
pub mod peers;
pub mod presets;
pub mod reqresp;
pub mod scoring;
pub mod seen;
pub mod signer;
pub mod signing;
pub mod stats;
pub mod topic;
pub mod validate;
pub mod wire;

#[cfg(feature = "test-util")]
pub mod sim;
#[cfg(feature = "swarm")]
pub mod swarm;
#[cfg(feature = "test-util")]
pub mod testkit;

/// Shared by the unit tests: the op-node vectors in `shared/vectors/`, found by walking up from
/// the crate (beside the repository in CI, or further up from a nested worktree).
#[cfg(test)]
pub(crate) fn shared_vectors(name: &str) -> serde_json::Value {
    let file = format!("shared/vectors/{name}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join(&file))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{file} not found above the crate"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path:?}: {e}"))
}

pub use libp2p_identity::PeerId;
pub use multiaddr::Multiaddr;
pub use node::{
    Action, Config, DeliveredBlock, Direction, DisconnectReason, GossipMessage,
    HOUSEKEEPING_INTERVAL_MS, Input, LocalInfo, MessageHandle, Node, NodeState, PublishError,
    PublishRequest, ReqRespConfig, RequestId, RestoreReport, STATE_VERSION, SplitMix64, StateError,
    StreamHandle, UnixMillis,
};
pub use topic::{BlockTopic, BlockVersion};
pub use validate::{Reason, Verdict};
pub use wire::MessageId;

/// Re-exported so embedders name the same primitive types the core uses.
pub use alloy_primitives;
/// Re-exported so embedders name the same types the core uses.
pub use op_alloy_rpc_types_engine;
