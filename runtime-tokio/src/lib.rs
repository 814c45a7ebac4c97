//! # op-p2p-tokio
//!
//! The op-p2p node on tokio, and the `op-p2p` binary. For now it carries the operator tools
//! that need only the core: [`tools::verdicts`] (replay captured gossip through one core
//! instance) and [`tools::examples`] (generate a set of real signed example messages). The
//! libp2p/discv5 node arrives with the runtime issue.

#![warn(missing_docs)]

pub mod cli;
pub mod tools;
