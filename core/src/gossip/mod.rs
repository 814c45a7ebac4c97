//! Unsafe-block gossip, one rule per module, in the order a message meets them: the [`topic`]
//! it came on, the [`wire`] format (size guard, snappy, message id, envelope), its
//! [`signature`] and [`block_hash`], then the receive-path rules: the stateless ones in [`check`], composed with the stateful
//! ones in [`validate`] with their state: the [`seen`] set and the [`signer_set`] (current signer, rotation grace). [`stale_view`]
//! tells REJECTs our own stale view may cause (old signer, clock, fork times) from a peer's.
//! Pure functions and plain state; nothing here reads a clock or does IO.

pub mod block_hash;
pub mod check;
pub mod seen;
pub mod signature;
pub mod signer_set;
pub mod stale_view;
pub mod topic;
pub mod validate;
pub mod wire;
