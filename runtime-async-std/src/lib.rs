//! # op-p2p-async-std
//!
//! The op-p2p node on the async-std runtime. The socket, executor, timer and HTTP bindings
//! arrive with the runtime issue; until then this crate re-exports the protocol core so
//! embedders can already depend on the crate name they will use.

pub use op_p2p_core as core;
