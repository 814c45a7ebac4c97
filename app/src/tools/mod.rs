//! Operator tools behind `op-p2p` subcommands.

pub mod examples;
pub mod test_signer;
pub mod verdicts;
