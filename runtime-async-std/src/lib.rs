//! # op-p2p-async-std
//!
//! The op-p2p node on async-std (and so on smol's reactor, which async-std runs on). [`spawn`]
//! takes the same [`NodeConfig`] and [`SpawnOptions`] as `op_p2p_tokio::spawn` and returns the
//! same [`NodeHandle`]; the data dir format is the shared glue's, so a node moves between the
//! runtimes with its identity and state.
//!
//! Everything runtime-neutral (the behaviour, the driver loop, the HTTP service, the data dir,
//! assembling a node) is `op_p2p_core::swarm`. This crate adds:
//! - [`transport`]: TCP over `async_std::net` as a libp2p transport;
//! - [`node`]: the executor, timers ([`AsyncStdRuntime`]) and [`spawn`];
//! - [`discovery`]: the tokio crate's discv5 service hosted on one dedicated tokio thread
//!   (discv5 needs a tokio reactor);
//! - [`http`]: the shared hyper service over async-std sockets.

#![warn(missing_docs)]

pub mod discovery;
pub mod http;
pub mod node;
pub mod transport;

pub use node::{AsyncStdRuntime, spawn};
pub use op_p2p_core as core;
pub use op_p2p_core::swarm::{NodeConfig, NodeHandle};
pub use op_p2p_tokio::{SpawnError, SpawnOptions};
