//! # op-p2p-tokio
//!
//! The op-p2p node on tokio, and the `op-p2p` binary. [`spawn`] starts a node (libp2p over
//! TCP + Noise + Yamux, gossipsub, identify, ping, `payload_by_number`, discv5) from a
//! [`op_p2p_core::swarm::NodeConfig`] and returns a [`op_p2p_core::swarm::NodeHandle`] to
//! publish, receive blocks, change the signer, call the admin API and shut down. Everything
//! but sockets, timers and the executor is the shared glue in `op_p2p_core::swarm`.
//!
//! The operator tools need only the core: [`tools::verdicts`] (replay captured gossip) and
//! [`tools::examples`] (the example gossip set).

#![warn(missing_docs)]

pub mod bench;
pub mod cli;
pub mod devnet;
pub mod discovery;
pub mod http;
mod node;
pub mod tools;

pub use node::{
    SpawnError, SpawnOptions, TokioRuntime, discovery_config, event_json, run_node, spawn,
};
pub use op_p2p_core::swarm::{NodeConfig, NodeHandle};
