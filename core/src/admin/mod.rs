//! The `opp2p_*` admin JSON-RPC (spec §10): typed, runtime-neutral requests and responses with
//! op-node's exact JSON shapes. No transport and no runtime here: the runtime's HTTP server
//! moves the strings, [`AdminRequest::parse`] turns a method name and its raw `params` into a
//! typed call, the [`crate::Node`] answers it with an [`AdminResponse`] (whose JSON is the
//! `result` member) or an [`AdminError`] (whose [`AdminError::to_rpc`] is the `error` member).
//!
//! op-node compatibility rules, each checked by golden tests next to the code that keeps it:
//! - Method names are op-node's, matched case-sensitively; params are positional and all
//!   required, checked in order with the first problem reported, as go-ethereum's RPC server
//!   does.
//! - Errors carry go-ethereum's JSON-RPC codes, and op-node's or go-ethereum's messages where
//!   they have one.
//! - Result keys keep the spelling and case of op-node's Go structs (`peerID`, `ENR`,
//!   `IPColocationFactor`, `bannedIPS`, ...), and values are encoded as Go's `encoding/json`
//!   encodes them where serde's defaults would differ: subnets as `net.IPNet` objects
//!   ([`GoIpNet`]), node ids as bare hex ([`NodeId`]), a peer's empty address and protocol
//!   lists as `null` (Go's nil slice), and no NaN.
//!
//! The parts: `request` (the method list [`AdminMethod`], parsing into [`AdminRequest`], the
//! limits and op-node constants of the calls), `response` (the `result` shapes), `error`
//! ([`AdminError`], [`RpcError`] and the JSON-RPC [`codes`]) and `gojson` (the types and serde
//! helpers that reproduce Go's JSON). Every public item is re-exported here: name it
//! `op_p2p_core::admin::X`.

mod error;
mod gojson;
mod request;
mod response;

pub use error::{AdminError, RpcError, codes};
pub use gojson::{GoIpNet, NodeId, SubnetError};
pub use request::{
    API_PROTECTED_TAG, AdminMethod, AdminRequest, CONNECT_PEER_TIMEOUT_MS, MAX_PARAMS_BYTES,
    MAX_PUBLISH_PARAMS_BYTES, parse_p2p_multiaddr,
};
pub use response::{
    AdminResponse, BanEntry, Connectedness, GossipScores, PUBLISH_BLOCK_WAIT_MS, PeerDirection,
    PeerDump, PeerInfo, PeerScores, PeerStats, PublishBlockResult, PublishStatus, ReqRespScores,
    TopicScores, p2p_address,
};

/// Fixtures shared by the tests of the admin modules.
#[cfg(test)]
mod test_support {
    use ipnet::IpNet;
    use libp2p_identity::PeerId;

    pub(super) fn peer(n: u8) -> PeerId {
        let mut secret = [7u8; 32];
        secret[31] = n;
        let sk = libp2p_identity::secp256k1::SecretKey::try_from_bytes(secret).unwrap();
        let kp = libp2p_identity::secp256k1::Keypair::from(sk);
        libp2p_identity::PublicKey::from(kp.public().clone()).to_peer_id()
    }

    pub(super) fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
}
