//! The pure half of discovery (spec §7): the ENR `opstack` entry, op-node's record filter,
//! turning an accepted record into dial candidates, bootnode parsing, and a bounded table of
//! discovered records with explicit expiry and plain-data persistence.
//!
//! The discv5 service itself (sockets, the DHT walk, timers) belongs to the runtime. It hands
//! every record it finds to [`accept_enr`] (or straight to [`DiscoveryTable::insert`], which runs
//! the same filter) and dials what comes back.
//!
//! ## Key type
//! Records are [`enr::Enr<K>`](::enr::Enr) from the `enr` crate at the version the newest `discv5` uses
//! (0.14, for discv5 0.12), so the runtime shares the type. Everything here is generic over
//! `K: EnrKey` and defaults to [`DefaultKey`] (k256): the core itself does not need the ed25519
//! half of `enr::CombinedKey`, while the runtime can pass discv5's `Enr<CombinedKey>` to the very
//! same functions without re-encoding. Only the raw `secp256k1` entry is used for identity, as
//! op-node does.

mod bootnodes;
mod enr;
mod table;

pub use self::bootnodes::{Bootnode, BootnodeError, Enode, Host, MAX_BOOTNODE_LEN};
pub use self::enr::{
    DialCandidate, EnrBuildError, MAX_ENR_TEXT_LEN, OPSTACK_ENR_KEY, OpStackDecodeError,
    OpStackEntry, ParseEnrError, Refusal, VarintField, accept_enr, dial_candidate, enr_peer_id,
    filter_enr, local_enr, parse_enr,
};
pub use self::table::{
    DEFAULT_MAX_AGE_MS, DEFAULT_MAX_ENTRIES, DiscoveryTable, ImportReport, Insert, PersistedEnr,
    TableConfig, TableEntry,
};

/// The default ENR key type: secp256k1 through the pure-Rust `k256` backend.
pub type DefaultKey = ::enr::k256::ecdsa::SigningKey;

/// A node record with the default key type.
pub type Enr = ::enr::Enr<DefaultKey>;

/// Re-exported so the runtime names the same ENR crate (and version) as the core.
pub use ::enr as enr_crate;
