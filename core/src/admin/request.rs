//! Admin calls in: the `opp2p_*` method list ([`AdminMethod`], with each method's arity) and
//! the parse of a method name and its raw `params` JSON into a typed [`AdminRequest`]: our
//! size limit first ([`MAX_PARAMS_BYTES`]), then each positional param in order with the
//! first problem reported, as go-ethereum's RPC server checks them. Also op-node's constants
//! for two calls: `connectPeer`'s timeout and `protectPeer`'s tag.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use libp2p_identity::PeerId;
use multiaddr::{Multiaddr, Protocol};
use op_alloy_rpc_types_engine::OpExecutionPayloadEnvelope;
use serde::Deserialize;
use serde_json::Value;

use super::error::{AdminError, echo};
use super::gojson::GoIpNet;
use crate::peers::gater::canonical_ip;

/// Largest `params` JSON accepted, checked before parsing. The largest legitimate params (a
/// multiaddr, a subnet object) are well under 1 KiB.
pub const MAX_PARAMS_BYTES: usize = 64 * 1024;

/// Largest `params` JSON accepted for `opp2pext_publishBlock` (whose payload carries a whole
/// block, hex encoded): twice the largest gossip message ([`MAX_GOSSIP_SIZE`], 10 MiB, whose
/// SSZ a payload's JSON hex roughly doubles) plus 4 MiB for the JSON around it.
///
/// [`MAX_GOSSIP_SIZE`]: crate::gossip::wire::MAX_GOSSIP_SIZE
pub const MAX_PUBLISH_PARAMS_BYTES: usize =
    2 * crate::gossip::wire::MAX_GOSSIP_SIZE + 4 * 1024 * 1024;

/// How long `opp2p_connectPeer` waits for the connection (and identify) before failing, as
/// op-node's 30 s context timeout.
pub const CONNECT_PEER_TIMEOUT_MS: u64 = 30_000;

/// The connection-manager tag `opp2p_protectPeer` sets (op-node's `api-protected`).
pub const API_PROTECTED_TAG: &str = "api-protected";

/// Every `opp2p_*` method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminMethod {
    /// `opp2p_self`
    SelfInfo,
    /// `opp2p_peers`
    Peers,
    /// `opp2p_peerStats`
    PeerStats,
    /// `opp2p_discoveryTable`
    DiscoveryTable,
    /// `opp2p_blockPeer`
    BlockPeer,
    /// `opp2p_unblockPeer`
    UnblockPeer,
    /// `opp2p_listBlockedPeers`
    ListBlockedPeers,
    /// `opp2p_blockAddr`
    BlockAddr,
    /// `opp2p_unblockAddr`
    UnblockAddr,
    /// `opp2p_listBlockedAddrs`
    ListBlockedAddrs,
    /// `opp2p_blockSubnet`
    BlockSubnet,
    /// `opp2p_unblockSubnet`
    UnblockSubnet,
    /// `opp2p_listBlockedSubnets`
    ListBlockedSubnets,
    /// `opp2p_protectPeer`
    ProtectPeer,
    /// `opp2p_unprotectPeer`
    UnprotectPeer,
    /// `opp2p_connectPeer`
    ConnectPeer,
    /// `opp2p_disconnectPeer`
    DisconnectPeer,
    /// `opp2pext_listBans`: ours, not op-node's (see [`AdminRequest::ListBans`]).
    ListBans,
    /// `opp2pext_publishBlock`: ours (see [`AdminRequest::PublishBlock`]).
    PublishBlock,
}

impl AdminMethod {
    /// Every method.
    pub const ALL: [AdminMethod; 19] = [
        AdminMethod::SelfInfo,
        AdminMethod::Peers,
        AdminMethod::PeerStats,
        AdminMethod::DiscoveryTable,
        AdminMethod::BlockPeer,
        AdminMethod::UnblockPeer,
        AdminMethod::ListBlockedPeers,
        AdminMethod::BlockAddr,
        AdminMethod::UnblockAddr,
        AdminMethod::ListBlockedAddrs,
        AdminMethod::BlockSubnet,
        AdminMethod::UnblockSubnet,
        AdminMethod::ListBlockedSubnets,
        AdminMethod::ProtectPeer,
        AdminMethod::UnprotectPeer,
        AdminMethod::ConnectPeer,
        AdminMethod::DisconnectPeer,
        AdminMethod::ListBans,
        AdminMethod::PublishBlock,
    ];

    /// The JSON-RPC method name.
    pub const fn name(self) -> &'static str {
        match self {
            AdminMethod::SelfInfo => "opp2p_self",
            AdminMethod::Peers => "opp2p_peers",
            AdminMethod::PeerStats => "opp2p_peerStats",
            AdminMethod::DiscoveryTable => "opp2p_discoveryTable",
            AdminMethod::BlockPeer => "opp2p_blockPeer",
            AdminMethod::UnblockPeer => "opp2p_unblockPeer",
            AdminMethod::ListBlockedPeers => "opp2p_listBlockedPeers",
            AdminMethod::BlockAddr => "opp2p_blockAddr",
            AdminMethod::UnblockAddr => "opp2p_unblockAddr",
            AdminMethod::ListBlockedAddrs => "opp2p_listBlockedAddrs",
            AdminMethod::BlockSubnet => "opp2p_blockSubnet",
            AdminMethod::UnblockSubnet => "opp2p_unblockSubnet",
            AdminMethod::ListBlockedSubnets => "opp2p_listBlockedSubnets",
            AdminMethod::ProtectPeer => "opp2p_protectPeer",
            AdminMethod::UnprotectPeer => "opp2p_unprotectPeer",
            AdminMethod::ConnectPeer => "opp2p_connectPeer",
            AdminMethod::DisconnectPeer => "opp2p_disconnectPeer",
            AdminMethod::ListBans => "opp2pext_listBans",
            AdminMethod::PublishBlock => "opp2pext_publishBlock",
        }
    }

    /// The method with this exact (case-sensitive) name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Largest `params` JSON the method accepts, checked before parsing: [`MAX_PARAMS_BYTES`],
    /// or [`MAX_PUBLISH_PARAMS_BYTES`] for `opp2pext_publishBlock`.
    pub const fn max_params_bytes(self) -> usize {
        match self {
            AdminMethod::PublishBlock => MAX_PUBLISH_PARAMS_BYTES,
            _ => MAX_PARAMS_BYTES,
        }
    }

    /// Number of positional params the method takes (all required).
    pub const fn arity(self) -> usize {
        match self {
            AdminMethod::SelfInfo
            | AdminMethod::PeerStats
            | AdminMethod::DiscoveryTable
            | AdminMethod::ListBlockedPeers
            | AdminMethod::ListBlockedAddrs
            | AdminMethod::ListBlockedSubnets
            | AdminMethod::ListBans => 0,
            _ => 1,
        }
    }
}

impl fmt::Display for AdminMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed `opp2p_*` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRequest {
    /// `opp2p_self`: the local node's [`PeerInfo`](super::PeerInfo) with `gossipBlocks: true`,
    /// `latency: 0` and our own ENR. ⚠ `chainID` is our configured chain id: op-node reads it
    /// from its own peerstore entry, which discovery fills only for remote peers, and so
    /// reports 0.
    SelfInfo,
    /// `opp2p_peers [connected]`: a [`PeerDump`](super::PeerDump) of connected peers (true) or
    /// of every peer in the peer store (false).
    Peers {
        /// Only connected peers.
        connected: bool,
    },
    /// `opp2p_peerStats`: [`PeerStats`](super::PeerStats).
    PeerStats,
    /// `opp2p_discoveryTable`: the discv5 table as `enr:` strings; [`AdminError::DiscoveryDisabled`]
    /// when discovery is off.
    DiscoveryTable,
    /// `opp2p_blockPeer [id]`: permanent block
    /// ([`Gater::block_peer`](crate::peers::gater::Gater::block_peer)); existing connections
    /// stay.
    BlockPeer(PeerId),
    /// `opp2p_unblockPeer [id]`.
    UnblockPeer(PeerId),
    /// `opp2p_listBlockedPeers`: permanently blocked peer ids.
    ListBlockedPeers,
    /// `opp2p_blockAddr [ip]`: permanent IP block (canonicalised); existing connections stay.
    BlockAddr(IpAddr),
    /// `opp2p_unblockAddr [ip]`.
    UnblockAddr(IpAddr),
    /// `opp2p_listBlockedAddrs`: permanently blocked IPs.
    ListBlockedAddrs,
    /// `opp2p_blockSubnet [IPNet]`: permanent subnet block; existing connections stay.
    BlockSubnet(IpNet),
    /// `opp2p_unblockSubnet [IPNet]`.
    UnblockSubnet(IpNet),
    /// `opp2p_listBlockedSubnets`: permanently blocked subnets as [`GoIpNet`] objects.
    ListBlockedSubnets,
    /// `opp2p_protectPeer [id]`: tag the peer [`API_PROTECTED_TAG`] so trimming spares it.
    /// (Score bans still apply to RPC-protected peers, spec §9.)
    ProtectPeer(PeerId),
    /// `opp2p_unprotectPeer [id]`.
    UnprotectPeer(PeerId),
    /// `opp2p_connectPeer ["<multiaddr>/p2p/<id>"]`: dial and wait for the connection and
    /// identify, at most [`CONNECT_PEER_TIMEOUT_MS`] (30 s), then answer `null` or an error.
    /// A bare `/p2p/<id>` (empty `addr`) dials the addresses already known for the peer, as
    /// op-node does.
    ConnectPeer {
        /// The transport address, without the trailing `/p2p/<id>`.
        addr: Multiaddr,
        /// The peer id from the trailing `/p2p/<id>`.
        peer: PeerId,
    },
    /// `opp2p_disconnectPeer [id]`: close every connection to the peer, forget its addresses,
    /// **and remove any permanent block of it** (as op-node does: disconnecting is also how an
    /// operator undoes a block). Timed bans are not touched.
    DisconnectPeer(PeerId),
    /// `opp2pext_listBans`: every ban and block with its reason and expiry, as
    /// [`BanEntry`](super::BanEntry) objects. Ours: op-node has no such call, so it lives in
    /// the `opp2pext_` namespace, leaving every `opp2p_` shape exactly op-node's.
    ListBans,
    /// `opp2pext_publishBlock [envelope]`: queue an unsigned block for this node's signer and
    /// publish it ([`PublishRequest::Sign`](crate::PublishRequest::Sign)). The param is
    /// op-node's engine API `ExecutionPayloadEnvelope` JSON (`executionPayload` and
    /// `parentBeaconBlockRoot`, as `engine_getPayloadV*` returns it). The answer is the
    /// block's [`PublishBlockResult`](super::PublishBlockResult), once known (at most
    /// [`PUBLISH_BLOCK_WAIT_MS`](super::PUBLISH_BLOCK_WAIT_MS), after which it is `queued`).
    /// Ours, on the RPC listener only (never the metrics listener).
    PublishBlock(Box<OpExecutionPayloadEnvelope>),
}

impl AdminRequest {
    /// Parses a call from its method name and raw `params` JSON (an array; empty text or `null`
    /// means no params). The size is checked against [`MAX_PARAMS_BYTES`] before parsing; then
    /// each param is checked in order, as go-ethereum does.
    pub fn parse(method: &str, params: &str) -> Result<Self, AdminError> {
        let m = AdminMethod::from_name(method)
            .ok_or_else(|| AdminError::UnknownMethod(echo(method)))?;
        if params.len() > m.max_params_bytes() {
            return Err(AdminError::ParamsTooLarge {
                len: params.len(),
                max: m.max_params_bytes(),
            });
        }
        let trimmed = params.trim();
        let args = if trimmed.is_empty() {
            Vec::new()
        } else {
            match serde_json::from_str::<Value>(trimmed)
                .map_err(|e| AdminError::MalformedParams(e.to_string()))?
            {
                Value::Null => Vec::new(),
                Value::Array(a) => a,
                _ => return Err(AdminError::NotAnArray),
            }
        };
        Self::from_args(m, &args)
    }

    /// Builds a call from already-split params.
    pub fn from_args(method: AdminMethod, args: &[Value]) -> Result<Self, AdminError> {
        let arity = method.arity();
        // go-ethereum decodes positionally and reports the first problem it meets.
        if arity == 0 {
            return match args.len() {
                0 => Ok(match method {
                    AdminMethod::SelfInfo => AdminRequest::SelfInfo,
                    AdminMethod::PeerStats => AdminRequest::PeerStats,
                    AdminMethod::DiscoveryTable => AdminRequest::DiscoveryTable,
                    AdminMethod::ListBlockedPeers => AdminRequest::ListBlockedPeers,
                    AdminMethod::ListBlockedAddrs => AdminRequest::ListBlockedAddrs,
                    AdminMethod::ListBans => AdminRequest::ListBans,
                    _ => AdminRequest::ListBlockedSubnets,
                }),
                _ => Err(AdminError::TooManyArguments { max: 0 }),
            };
        }
        let first = args
            .first()
            .ok_or(AdminError::MissingArgument { index: 0 })?;
        let req = match method {
            AdminMethod::Peers => AdminRequest::Peers {
                connected: first.as_bool().ok_or(AdminError::WrongType {
                    index: 0,
                    expected: "boolean",
                })?,
            },
            AdminMethod::BlockPeer => AdminRequest::BlockPeer(peer_arg(0, first)?),
            AdminMethod::UnblockPeer => AdminRequest::UnblockPeer(peer_arg(0, first)?),
            AdminMethod::ProtectPeer => AdminRequest::ProtectPeer(peer_arg(0, first)?),
            AdminMethod::UnprotectPeer => AdminRequest::UnprotectPeer(peer_arg(0, first)?),
            AdminMethod::DisconnectPeer => AdminRequest::DisconnectPeer(peer_arg(0, first)?),
            AdminMethod::BlockAddr => AdminRequest::BlockAddr(ip_arg(0, first)?),
            AdminMethod::UnblockAddr => AdminRequest::UnblockAddr(ip_arg(0, first)?),
            AdminMethod::BlockSubnet => AdminRequest::BlockSubnet(subnet_arg(0, first)?),
            AdminMethod::UnblockSubnet => AdminRequest::UnblockSubnet(subnet_arg(0, first)?),
            AdminMethod::PublishBlock => AdminRequest::PublishBlock(envelope_arg(0, first)?),
            _ => {
                let s = str_arg(0, first)?;
                let (addr, peer) = parse_p2p_multiaddr(s)?;
                AdminRequest::ConnectPeer { addr, peer }
            }
        };
        if args.len() > arity {
            return Err(AdminError::TooManyArguments { max: arity });
        }
        Ok(req)
    }

    /// The method.
    pub fn method(&self) -> AdminMethod {
        match self {
            AdminRequest::SelfInfo => AdminMethod::SelfInfo,
            AdminRequest::Peers { .. } => AdminMethod::Peers,
            AdminRequest::PeerStats => AdminMethod::PeerStats,
            AdminRequest::DiscoveryTable => AdminMethod::DiscoveryTable,
            AdminRequest::BlockPeer(_) => AdminMethod::BlockPeer,
            AdminRequest::UnblockPeer(_) => AdminMethod::UnblockPeer,
            AdminRequest::ListBlockedPeers => AdminMethod::ListBlockedPeers,
            AdminRequest::BlockAddr(_) => AdminMethod::BlockAddr,
            AdminRequest::UnblockAddr(_) => AdminMethod::UnblockAddr,
            AdminRequest::ListBlockedAddrs => AdminMethod::ListBlockedAddrs,
            AdminRequest::BlockSubnet(_) => AdminMethod::BlockSubnet,
            AdminRequest::UnblockSubnet(_) => AdminMethod::UnblockSubnet,
            AdminRequest::ListBlockedSubnets => AdminMethod::ListBlockedSubnets,
            AdminRequest::ProtectPeer(_) => AdminMethod::ProtectPeer,
            AdminRequest::UnprotectPeer(_) => AdminMethod::UnprotectPeer,
            AdminRequest::ConnectPeer { .. } => AdminMethod::ConnectPeer,
            AdminRequest::DisconnectPeer(_) => AdminMethod::DisconnectPeer,
            AdminRequest::ListBans => AdminMethod::ListBans,
            AdminRequest::PublishBlock(_) => AdminMethod::PublishBlock,
        }
    }

    /// The `params` array a client sends for this call (the inverse of [`AdminRequest::parse`]).
    pub fn params(&self) -> Value {
        let one = |v: Value| Value::Array(vec![v]);
        match self {
            AdminRequest::Peers { connected } => one(Value::Bool(*connected)),
            AdminRequest::BlockPeer(p)
            | AdminRequest::UnblockPeer(p)
            | AdminRequest::ProtectPeer(p)
            | AdminRequest::UnprotectPeer(p)
            | AdminRequest::DisconnectPeer(p) => one(Value::String(p.to_base58())),
            AdminRequest::BlockAddr(ip) | AdminRequest::UnblockAddr(ip) => {
                one(Value::String(ip.to_string()))
            }
            AdminRequest::BlockSubnet(n) | AdminRequest::UnblockSubnet(n) => {
                one(serde_json::to_value(GoIpNet(*n)).unwrap_or(Value::Null))
            }
            AdminRequest::ConnectPeer { addr, peer } => one(Value::String(
                addr.clone().with(Protocol::P2p(*peer)).to_string(),
            )),
            AdminRequest::PublishBlock(env) => {
                one(serde_json::to_value(env).unwrap_or(Value::Null))
            }
            _ => Value::Array(Vec::new()),
        }
    }
}

fn str_arg(index: usize, v: &Value) -> Result<&str, AdminError> {
    v.as_str().ok_or(AdminError::WrongType {
        index,
        expected: "string",
    })
}

fn peer_arg(index: usize, v: &Value) -> Result<PeerId, AdminError> {
    let s = str_arg(index, v)?;
    PeerId::from_str(s).map_err(|e| AdminError::BadPeerId {
        index,
        reason: e.to_string(),
    })
}

fn ip_arg(index: usize, v: &Value) -> Result<IpAddr, AdminError> {
    let s = str_arg(index, v)?;
    IpAddr::from_str(s)
        .map(canonical_ip)
        .map_err(|_| AdminError::BadIp {
            index,
            input: echo(s),
        })
}

fn envelope_arg(index: usize, v: &Value) -> Result<Box<OpExecutionPayloadEnvelope>, AdminError> {
    if !v.is_object() {
        return Err(AdminError::WrongType {
            index,
            expected: "object",
        });
    }
    OpExecutionPayloadEnvelope::deserialize(v)
        .map(Box::new)
        .map_err(|e| AdminError::BadPayload {
            index,
            reason: echo(&e.to_string()),
        })
}

fn subnet_arg(index: usize, v: &Value) -> Result<IpNet, AdminError> {
    GoIpNet::from_json(v).map_err(|source| AdminError::BadSubnet { index, source })
}

/// Splits `<transport>/p2p/<id>` into the transport part and the peer id, as go-libp2p's
/// `peer.AddrInfoFromString` (the transport part may be empty).
pub fn parse_p2p_multiaddr(s: &str) -> Result<(Multiaddr, PeerId), AdminError> {
    let mut addr = Multiaddr::from_str(s).map_err(|e| AdminError::BadMultiaddr(e.to_string()))?;
    match addr.pop() {
        Some(Protocol::P2p(peer)) => Ok((addr, peer)),
        _ => Err(AdminError::BadMultiaddr("invalid p2p multiaddr".into())),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::admin::codes;
    use crate::admin::error::ECHO_MAX;
    use crate::admin::test_support::{net, peer};

    fn envelope() -> OpExecutionPayloadEnvelope {
        let (execution_payload, parent_beacon_block_root) =
            crate::testkit::BlockBuilder::new(crate::gossip::topic::BlockVersion::V4, 1, 1).build();
        OpExecutionPayloadEnvelope {
            parent_beacon_block_root,
            execution_payload,
        }
    }

    #[test]
    fn method_names_are_exact_and_round_trip() {
        let names = [
            "opp2p_self",
            "opp2p_peers",
            "opp2p_peerStats",
            "opp2p_discoveryTable",
            "opp2p_blockPeer",
            "opp2p_unblockPeer",
            "opp2p_listBlockedPeers",
            "opp2p_blockAddr",
            "opp2p_unblockAddr",
            "opp2p_listBlockedAddrs",
            "opp2p_blockSubnet",
            "opp2p_unblockSubnet",
            "opp2p_listBlockedSubnets",
            "opp2p_protectPeer",
            "opp2p_unprotectPeer",
            "opp2p_connectPeer",
            "opp2p_disconnectPeer",
            "opp2pext_listBans",
            "opp2pext_publishBlock",
        ];
        let got: Vec<&str> = AdminMethod::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(got, names);
        for m in AdminMethod::ALL {
            assert_eq!(AdminMethod::from_name(m.name()), Some(m));
        }
        assert_eq!(AdminMethod::from_name("opp2p_Self"), None);
        assert_eq!(AdminMethod::from_name("opp2p_peerstats"), None);
    }

    #[test]
    fn parses_every_method() {
        let p = peer(2);
        let id = p.to_base58();
        let cases: Vec<(&str, String, AdminRequest)> = vec![
            ("opp2p_self", "[]".into(), AdminRequest::SelfInfo),
            (
                "opp2p_peers",
                "[true]".into(),
                AdminRequest::Peers { connected: true },
            ),
            (
                "opp2p_peers",
                "[false]".into(),
                AdminRequest::Peers { connected: false },
            ),
            ("opp2p_peerStats", "".into(), AdminRequest::PeerStats),
            (
                "opp2p_discoveryTable",
                "null".into(),
                AdminRequest::DiscoveryTable,
            ),
            (
                "opp2p_blockPeer",
                format!("[\"{id}\"]"),
                AdminRequest::BlockPeer(p),
            ),
            (
                "opp2p_unblockPeer",
                format!("[\"{id}\"]"),
                AdminRequest::UnblockPeer(p),
            ),
            (
                "opp2p_listBlockedPeers",
                "[]".into(),
                AdminRequest::ListBlockedPeers,
            ),
            (
                "opp2p_blockAddr",
                "[\"1.2.3.4\"]".into(),
                AdminRequest::BlockAddr("1.2.3.4".parse().unwrap()),
            ),
            (
                "opp2p_unblockAddr",
                "[\"::1\"]".into(),
                AdminRequest::UnblockAddr("::1".parse().unwrap()),
            ),
            (
                "opp2p_blockAddr",
                "[\"::ffff:1.2.3.4\"]".into(),
                AdminRequest::BlockAddr("1.2.3.4".parse().unwrap()),
            ),
            (
                "opp2p_listBlockedAddrs",
                " [ ] ".into(),
                AdminRequest::ListBlockedAddrs,
            ),
            (
                "opp2p_blockSubnet",
                r#"[{"IP":"10.0.0.0","Mask":"//8AAA=="}]"#.into(),
                AdminRequest::BlockSubnet(net("10.0.0.0/16")),
            ),
            (
                "opp2p_unblockSubnet",
                r#"[{"IP":"2001:db8::","Mask":"/////wAAAAAAAAAAAAAAAA=="}]"#.into(),
                AdminRequest::UnblockSubnet(net("2001:db8::/32")),
            ),
            (
                "opp2p_listBlockedSubnets",
                "[]".into(),
                AdminRequest::ListBlockedSubnets,
            ),
            (
                "opp2p_protectPeer",
                format!("[\"{id}\"]"),
                AdminRequest::ProtectPeer(p),
            ),
            (
                "opp2p_unprotectPeer",
                format!("[\"{id}\"]"),
                AdminRequest::UnprotectPeer(p),
            ),
            (
                "opp2p_connectPeer",
                format!("[\"/ip4/127.0.0.1/tcp/9222/p2p/{id}\"]"),
                AdminRequest::ConnectPeer {
                    addr: "/ip4/127.0.0.1/tcp/9222".parse().unwrap(),
                    peer: p,
                },
            ),
            (
                "opp2p_connectPeer",
                format!("[\"/p2p/{id}\"]"),
                AdminRequest::ConnectPeer {
                    addr: Multiaddr::empty(),
                    peer: p,
                },
            ),
            (
                "opp2p_disconnectPeer",
                format!("[\"{id}\"]"),
                AdminRequest::DisconnectPeer(p),
            ),
            ("opp2pext_listBans", "[]".into(), AdminRequest::ListBans),
            (
                "opp2pext_publishBlock",
                format!("[{}]", serde_json::to_string(&envelope()).unwrap()),
                AdminRequest::PublishBlock(Box::new(envelope())),
            ),
        ];
        let mut seen = std::collections::HashSet::new();
        for (method, params, want) in cases {
            let got = AdminRequest::parse(method, &params);
            assert_eq!(got.as_ref(), Ok(&want), "{method} {params}");
            assert_eq!(want.method().name(), method);
            // params() is the inverse of parse.
            let again = AdminRequest::parse(method, &want.params().to_string());
            assert_eq!(again, Ok(want), "{method}");
            seen.insert(method);
        }
        assert_eq!(seen.len(), AdminMethod::ALL.len(), "every method parsed");
    }

    #[test]
    fn oversized_params_are_refused_before_parsing_and_long_input_is_not_echoed_whole() {
        let big = format!("[\"{}\"]", "a".repeat(MAX_PARAMS_BYTES));
        let e = AdminRequest::parse("opp2p_blockPeer", &big).unwrap_err();
        assert_eq!(
            e,
            AdminError::ParamsTooLarge {
                len: MAX_PARAMS_BYTES + 4,
                max: MAX_PARAMS_BYTES
            }
        );
        assert_eq!(e.code(), codes::INVALID_REQUEST);
        assert!(e.to_string().starts_with("invalid request"));
        // Just under the limit parses (and fails on content, not size).
        let ok_size = format!("[\"{}\"]", "a".repeat(MAX_PARAMS_BYTES - 4));
        assert!(matches!(
            AdminRequest::parse("opp2p_blockAddr", &ok_size),
            Err(AdminError::BadIp { .. })
        ));
        if let Err(AdminError::BadIp { input, .. }) =
            AdminRequest::parse("opp2p_blockAddr", &ok_size)
        {
            assert!(input.chars().count() <= ECHO_MAX + 1);
        }
        let long_method = "x".repeat(10_000);
        let e = AdminRequest::parse(&long_method, "[]").unwrap_err();
        assert!(e.to_string().len() < 200);
    }

    #[test]
    fn constants_match_op_node() {
        assert_eq!(CONNECT_PEER_TIMEOUT_MS, 30_000);
        assert_eq!(API_PROTECTED_TAG, "api-protected");
        assert_eq!(MAX_PARAMS_BYTES, 65_536);
    }

    proptest! {
        /// No input makes the parser panic; every error maps to a JSON-RPC code in range.
        #[test]
        fn parse_never_panics(method_ix in 0usize..20, params in ".{0,200}") {
            let method = AdminMethod::ALL.get(method_ix).map_or("opp2p_x", |m| m.name());
            if let Err(e) = AdminRequest::parse(method, &params) {
                let c = e.code();
                prop_assert!((-32700..=-32000).contains(&c));
            }
        }
    }
}
