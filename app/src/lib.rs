//! The `op-p2p` application: what the `op-p2p` binary runs, kept in a library target only so
//! the binary's own integration tests can reach it. It is not an API for embedders (they use
//! `op-p2p-tokio` or `op-p2p-async-std`), and it is not published.

#![warn(missing_docs)]

pub mod bench;
pub mod bench_chains;
pub mod bench_publish;
pub mod cli;
pub mod devnet;
pub mod logging;
pub mod multi;
pub mod netns;
pub mod ops;
pub mod run;
pub mod tools;

/// The README's Rust examples, compiled and run as doctests so they keep matching the code.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
