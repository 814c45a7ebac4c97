//! The `opp2p_*` admin JSON-RPC (spec §10): typed, runtime-neutral requests and responses with
//! op-node's exact JSON shapes.
//!
//! [`AdminRequest::parse`] turns a method name and its raw JSON `params` into a typed request,
//! or an [`AdminError`] that maps to the JSON-RPC error op-node (go-ethereum's RPC server) would
//! send ([`AdminError::to_rpc`]). The Node answers with an [`AdminResponse`], whose JSON is the
//! `result` member. No transport, no runtime: the runtime's HTTP server only moves the strings.
//!
//! Key spelling and case follow op-node's Go structs (`peerID`, `ENR`, `IPColocationFactor`,
//! `bannedIPS`, ...), checked by golden tests. Subnets use Go's `net.IPNet` JSON form
//! ([`GoIpNet`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use alloy_primitives::{hex, keccak256};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use libp2p_identity::PeerId;
use multiaddr::{Multiaddr, Protocol};
use serde::de::DeserializeOwned;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::peers::gater::{Gater, GaterError, canonical_ip, canonical_subnet};

/// Largest `params` JSON accepted, checked before parsing. The largest legitimate params (a
/// multiaddr, a subnet object) are well under 1 KiB.
pub const MAX_PARAMS_BYTES: usize = 64 * 1024;

/// How long `opp2p_connectPeer` waits for the connection (and identify) before failing, as
/// op-node's 30 s context timeout.
pub const CONNECT_PEER_TIMEOUT_MS: u64 = 30_000;

/// The connection-manager tag `opp2p_protectPeer` sets (op-node's `api-protected`).
pub const API_PROTECTED_TAG: &str = "api-protected";

/// JSON-RPC error codes as go-ethereum's RPC server (which op-node uses) sends them.
pub mod codes {
    /// The request is not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Bad params: arity, types, values.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Any error the handler returns (go-ethereum's default error code).
    pub const SERVER_ERROR: i64 = -32000;
}

/// Longest piece of user input echoed back in an error message.
const ECHO_MAX: usize = 80;

fn echo(s: &str) -> String {
    match s.char_indices().nth(ECHO_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

// ---- methods ------------------------------------------------------------------------------

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
}

impl AdminMethod {
    /// Every method.
    pub const ALL: [AdminMethod; 17] = [
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
        }
    }

    /// The method with this exact (case-sensitive) name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Number of positional params the method takes (all required).
    pub const fn arity(self) -> usize {
        match self {
            AdminMethod::SelfInfo
            | AdminMethod::PeerStats
            | AdminMethod::DiscoveryTable
            | AdminMethod::ListBlockedPeers
            | AdminMethod::ListBlockedAddrs
            | AdminMethod::ListBlockedSubnets => 0,
            _ => 1,
        }
    }
}

impl fmt::Display for AdminMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---- errors -------------------------------------------------------------------------------

/// A JSON-RPC error object (`{"code":…,"message":…}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcError {
    /// The error code ([`codes`]).
    pub code: i64,
    /// The message.
    pub message: String,
}

/// Why an admin call failed. Messages follow go-ethereum's RPC server and op-node where they
/// have one; [`AdminError::to_rpc`] gives the JSON-RPC error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No such method (the name is echoed, truncated).
    #[error("the method {0} does not exist/is not available")]
    UnknownMethod(String),
    /// `params` is larger than [`MAX_PARAMS_BYTES`]; it was not parsed.
    #[error("invalid request: params are {len} bytes, more than {max}")]
    ParamsTooLarge {
        /// Size of the params.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `params` is not valid JSON.
    #[error("invalid params: {0}")]
    MalformedParams(String),
    /// `params` is neither an array nor absent/null.
    #[error("non-array args")]
    NotAnArray,
    /// Fewer params than the method takes.
    #[error("missing value for required argument {index}")]
    MissingArgument {
        /// The first missing position.
        index: usize,
    },
    /// More params than the method takes.
    #[error("too many arguments, want at most {max}")]
    TooManyArguments {
        /// The method's arity.
        max: usize,
    },
    /// A param has the wrong JSON type.
    #[error("invalid argument {index}: expected a JSON {expected}")]
    WrongType {
        /// Its position.
        index: usize,
        /// The JSON type wanted.
        expected: &'static str,
    },
    /// A peer id param is not a base58 peer id.
    #[error("invalid argument {index}: failed to parse peer ID: {reason}")]
    BadPeerId {
        /// Its position.
        index: usize,
        /// Why.
        reason: String,
    },
    /// An IP param is not an IPv4 or IPv6 address.
    #[error("invalid argument {index}: invalid IP address: {input}")]
    BadIp {
        /// Its position.
        index: usize,
        /// The input, truncated.
        input: String,
    },
    /// A subnet param is not a valid Go `net.IPNet` object.
    #[error("invalid argument {index}: {source}")]
    BadSubnet {
        /// Its position.
        index: usize,
        /// Why.
        source: SubnetError,
    },
    /// `connectPeer`'s address is not a multiaddr ending in `/p2p/<id>`. op-node parses it in the
    /// handler, so this is a server error (-32000) with op-node's `bad peer address:` prefix.
    #[error("bad peer address: {0}")]
    BadMultiaddr(String),
    /// The node runs without a connection gater (op-node's message).
    #[error("no connection gater")]
    NoConnectionGater,
    /// The node runs without a connection manager (op-node's message).
    #[error("no connection manager")]
    NoConnectionManager,
    /// Discovery is off (op-node's message).
    #[error("discovery disabled")]
    DiscoveryDisabled,
    /// `connectPeer` did not connect within [`CONNECT_PEER_TIMEOUT_MS`] (Go's context message).
    #[error("context deadline exceeded")]
    ConnectTimeout,
    /// `connectPeer` failed (dial error text).
    #[error("failed to connect: {0}")]
    ConnectFailed(String),
    /// The node is stopping or stopped and answers no more calls.
    #[error("node is shutting down")]
    Unavailable,
    /// A gater list is full.
    #[error(transparent)]
    Gater(#[from] GaterError),
}

impl AdminError {
    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        match self {
            AdminError::UnknownMethod(_) => codes::METHOD_NOT_FOUND,
            AdminError::ParamsTooLarge { .. } => codes::INVALID_REQUEST,
            AdminError::MalformedParams(_)
            | AdminError::NotAnArray
            | AdminError::MissingArgument { .. }
            | AdminError::TooManyArguments { .. }
            | AdminError::WrongType { .. }
            | AdminError::BadPeerId { .. }
            | AdminError::BadIp { .. }
            | AdminError::BadSubnet { .. } => codes::INVALID_PARAMS,
            AdminError::BadMultiaddr(_)
            | AdminError::NoConnectionGater
            | AdminError::NoConnectionManager
            | AdminError::DiscoveryDisabled
            | AdminError::ConnectTimeout
            | AdminError::ConnectFailed(_)
            | AdminError::Unavailable
            | AdminError::Gater(_) => codes::SERVER_ERROR,
        }
    }

    /// The JSON-RPC error object.
    pub fn to_rpc(&self) -> RpcError {
        RpcError {
            code: self.code(),
            message: self.to_string(),
        }
    }
}

/// Why a Go `net.IPNet` JSON object was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubnetError {
    /// Not a JSON object.
    #[error("subnet must be an object {{\"IP\":…,\"Mask\":…}}")]
    NotAnObject,
    /// No `IP` string.
    #[error("subnet has no IP string")]
    MissingIp,
    /// No `Mask` string.
    #[error("subnet has no Mask string")]
    MissingMask,
    /// `IP` is not an address.
    #[error("invalid IP address: {0}")]
    BadIp(String),
    /// `Mask` is not standard padded base64.
    #[error("subnet Mask is not base64: {0}")]
    BadMaskEncoding(String),
    /// `Mask` has the wrong length for the address family.
    #[error("subnet Mask has {len} bytes, not {want} for this address")]
    MaskLength {
        /// Decoded length.
        len: usize,
        /// Wanted length.
        want: usize,
    },
    /// `Mask` is not a run of one bits followed by zero bits.
    #[error("subnet Mask is not a canonical prefix mask")]
    NonCanonicalMask,
}

// ---- Go net.IPNet -------------------------------------------------------------------------

/// A subnet in Go's `net.IPNet` JSON form: `{"IP":"10.0.0.0","Mask":"/wAAAA=="}`, where `IP` is
/// the address text and `Mask` the base64 of the mask bytes, 4 bytes for IPv4 (Go's
/// `net.ParseCIDR` gives a 4-byte mask for an IPv4 CIDR) and 16 for IPv6.
///
/// Reading accepts what Go's gater would: keys in any case (Go's `encoding/json` matches them
/// case-insensitively), unknown keys ignored, an IPv4-mapped IPv6 `IP` as IPv4, and for IPv4 a
/// 16-byte mask whose first 12 bytes are `0xff` (the IPv6 form of the same mask). It refuses a
/// mask of the wrong length or not a prefix mask ([`SubnetError`]). Host bits in `IP` are
/// cleared (Go matches the same addresses either way). Writing always gives the canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GoIpNet(pub IpNet);

impl GoIpNet {
    /// Parses a subnet object.
    pub fn from_json(value: &Value) -> Result<IpNet, SubnetError> {
        let obj = value.as_object().ok_or(SubnetError::NotAnObject)?;
        let mut ip = None;
        let mut mask = None;
        for (k, v) in obj {
            if k.eq_ignore_ascii_case("ip") {
                ip = v.as_str();
            } else if k.eq_ignore_ascii_case("mask") {
                mask = v.as_str();
            }
        }
        let ip = ip.ok_or(SubnetError::MissingIp)?;
        let mask = mask.ok_or(SubnetError::MissingMask)?;
        let addr = canonical_ip(IpAddr::from_str(ip).map_err(|_| SubnetError::BadIp(echo(ip)))?);
        // 16 bytes are 24 base64 characters; refuse anything longer before decoding.
        if mask.len() > 24 {
            return Err(SubnetError::BadMaskEncoding("too long".into()));
        }
        let bytes = data_encoding::BASE64
            .decode(mask.as_bytes())
            .map_err(|e| SubnetError::BadMaskEncoding(e.to_string()))?;
        let net = match addr {
            IpAddr::V4(v4) => {
                let m: [u8; 4] = match bytes.len() {
                    4 => [bytes[0], bytes[1], bytes[2], bytes[3]],
                    16 if bytes[..12].iter().all(|b| *b == 0xff) => {
                        [bytes[12], bytes[13], bytes[14], bytes[15]]
                    }
                    16 => return Err(SubnetError::NonCanonicalMask),
                    len => return Err(SubnetError::MaskLength { len, want: 4 }),
                };
                IpNet::V4(
                    Ipv4Net::with_netmask(v4, Ipv4Addr::from(m))
                        .map_err(|_| SubnetError::NonCanonicalMask)?,
                )
            }
            IpAddr::V6(v6) => {
                let m: [u8; 16] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| SubnetError::MaskLength {
                            len: bytes.len(),
                            want: 16,
                        })?;
                IpNet::V6(
                    Ipv6Net::with_netmask(v6, Ipv6Addr::from(m))
                        .map_err(|_| SubnetError::NonCanonicalMask)?,
                )
            }
        };
        Ok(canonical_subnet(net))
    }

    /// The mask bytes as Go holds them: 4 for IPv4, 16 for IPv6.
    pub fn mask_bytes(&self) -> Vec<u8> {
        match self.0.netmask() {
            IpAddr::V4(m) => m.octets().to_vec(),
            IpAddr::V6(m) => m.octets().to_vec(),
        }
    }
}

impl From<IpNet> for GoIpNet {
    fn from(net: IpNet) -> Self {
        GoIpNet(net)
    }
}

impl Serialize for GoIpNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let net = canonical_subnet(self.0);
        let mut st = s.serialize_struct("IPNet", 2)?;
        st.serialize_field("IP", &net.network().to_string())?;
        st.serialize_field(
            "Mask",
            &data_encoding::BASE64.encode(&GoIpNet(net).mask_bytes()),
        )?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for GoIpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        GoIpNet::from_json(&v)
            .map(GoIpNet)
            .map_err(serde::de::Error::custom)
    }
}

// ---- requests -----------------------------------------------------------------------------

/// A parsed `opp2p_*` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRequest {
    /// `opp2p_self`: the local node's [`PeerInfo`] with `gossipBlocks: true`, `latency: 0` and
    /// our own ENR. ⚠ `chainID` is our configured chain id: op-node reads it from its own
    /// peerstore entry, which discovery fills only for remote peers, and so reports 0.
    SelfInfo,
    /// `opp2p_peers [connected]`: a [`PeerDump`] of connected peers (true) or of every peer in
    /// the peer store (false).
    Peers {
        /// Only connected peers.
        connected: bool,
    },
    /// `opp2p_peerStats`: [`PeerStats`].
    PeerStats,
    /// `opp2p_discoveryTable`: the discv5 table as `enr:` strings; [`AdminError::DiscoveryDisabled`]
    /// when discovery is off.
    DiscoveryTable,
    /// `opp2p_blockPeer [id]`: permanent block ([`Gater::block_peer`]); existing connections stay.
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
}

impl AdminRequest {
    /// Parses a call from its method name and raw `params` JSON (an array; empty text or `null`
    /// means no params). The size is checked against [`MAX_PARAMS_BYTES`] before parsing; then
    /// each param is checked in order, as go-ethereum does.
    pub fn parse(method: &str, params: &str) -> Result<Self, AdminError> {
        let m = AdminMethod::from_name(method)
            .ok_or_else(|| AdminError::UnknownMethod(echo(method)))?;
        if params.len() > MAX_PARAMS_BYTES {
            return Err(AdminError::ParamsTooLarge {
                len: params.len(),
                max: MAX_PARAMS_BYTES,
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

// ---- response shapes ----------------------------------------------------------------------

/// A discv5 node id: keccak256 of the uncompressed secp256k1 public key (without the `04`
/// prefix). JSON: 64 lowercase hex characters without `0x` (go-ethereum `enode.ID`); reading
/// also accepts a `0x` prefix, as `enode.ParseID` does. All zeros when the key is unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 32]);

impl NodeId {
    /// The node id of a peer whose id inlines a secp256k1 public key (every OP Stack peer);
    /// `None` for other key types or hashed ids.
    pub fn from_peer_id(peer: &PeerId) -> Option<NodeId> {
        let mh = peer.as_ref();
        if mh.code() != 0 {
            return None; // not the identity multihash: the key is not inlined
        }
        let key = libp2p_identity::PublicKey::try_decode_protobuf(mh.digest()).ok()?;
        let key = key.try_into_secp256k1().ok()?;
        let uncompressed = key.to_bytes_uncompressed();
        Some(NodeId(keccak256(&uncompressed[1..]).0))
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let h = s.strip_prefix("0x").unwrap_or(&s);
        let mut out = [0u8; 32];
        hex::decode_to_slice(h, &mut out).map_err(serde::de::Error::custom)?;
        Ok(NodeId(out))
    }
}

/// Connectedness and direction as `PeerInfo` carries them: the peer book's types, which
/// serialise as Go's `network.Connectedness` / `network.Direction` integers.
pub use crate::peers::book::{Connectedness, Direction as PeerDirection};

/// Serialises a float, writing a non-finite one as 0 (Go's encoder would fail the whole call on
/// NaN or ±Inf, and serde_json would write `null`, which Go cannot read into a float64).
fn finite<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(if v.is_finite() { *v } else { 0.0 })
}

/// Gossipsub counters on the block topics (op-node `store.TopicScores`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicScores {
    /// Seconds in the mesh.
    #[serde(serialize_with = "finite")]
    pub time_in_mesh: f64,
    /// First deliveries counter.
    #[serde(serialize_with = "finite")]
    pub first_message_deliveries: f64,
    /// Mesh deliveries counter.
    #[serde(serialize_with = "finite")]
    pub mesh_message_deliveries: f64,
    /// Invalid deliveries counter.
    #[serde(serialize_with = "finite")]
    pub invalid_message_deliveries: f64,
}

impl TopicScores {
    /// The `blocks` entry from the per-topic counters (spec §10): the delivery counters add up
    /// over all topics; `timeInMesh` is the largest per-topic value.
    pub fn combine(per_topic: impl IntoIterator<Item = TopicScores>) -> TopicScores {
        per_topic
            .into_iter()
            .fold(TopicScores::default(), |a, t| TopicScores {
                time_in_mesh: a.time_in_mesh.max(t.time_in_mesh),
                first_message_deliveries: a.first_message_deliveries + t.first_message_deliveries,
                mesh_message_deliveries: a.mesh_message_deliveries + t.mesh_message_deliveries,
                invalid_message_deliveries: a.invalid_message_deliveries
                    + t.invalid_message_deliveries,
            })
    }
}

/// A peer's gossipsub score parts (op-node `store.GossipScores`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GossipScores {
    /// Total gossipsub score, app score included.
    #[serde(serialize_with = "finite")]
    pub total: f64,
    /// Block-topic counters ([`TopicScores::combine`]).
    pub blocks: TopicScores,
    /// IP colocation factor.
    #[serde(rename = "IPColocationFactor", serialize_with = "finite")]
    pub ip_colocation_factor: f64,
    /// Behavioural penalty.
    #[serde(rename = "behavioralPenalty", serialize_with = "finite")]
    pub behavioral_penalty: f64,
}

/// A peer's req/resp (payload_by_number) counters (op-node `store.ReqRespScores`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReqRespScores {
    /// Valid responses (decayed).
    #[serde(serialize_with = "finite")]
    pub valid_responses: f64,
    /// Error responses (decayed).
    #[serde(serialize_with = "finite")]
    pub error_responses: f64,
    /// Rejected payloads (decayed).
    #[serde(serialize_with = "finite")]
    pub rejected_payloads: f64,
}

/// A peer's scores (op-node `store.PeerScores`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerScores {
    /// Gossipsub parts.
    pub gossip: GossipScores,
    /// Req/resp parts.
    #[serde(rename = "reqResp")]
    pub req_resp: ReqRespScores,
}

fn null_if_empty<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        s.collect_seq(v)
    }
}

fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One peer, as `opp2p_self` and `opp2p_peers` report it (op-node `PeerInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Base58 peer id.
    #[serde(rename = "peerID")]
    pub peer_id: PeerId,
    /// discv5 node id ([`NodeId::from_peer_id`]), zeros if unknown.
    #[serde(rename = "nodeID")]
    pub node_id: NodeId,
    /// identify agent version.
    #[serde(rename = "userAgent")]
    pub user_agent: String,
    /// identify protocol version.
    #[serde(rename = "protocolVersion")]
    pub protocol_version: String,
    /// `enr:…` text, `""` if unknown.
    #[serde(rename = "ENR")]
    pub enr: String,
    /// Known multiaddrs, each ending in `/p2p/<id>` ([`p2p_address`]). Empty serialises as
    /// `null`, as Go's nil slice does.
    #[serde(serialize_with = "null_if_empty", deserialize_with = "null_as_default")]
    pub addresses: Vec<String>,
    /// Supported protocols from identify. Empty serialises as `null`.
    #[serde(serialize_with = "null_if_empty", deserialize_with = "null_as_default")]
    pub protocols: Vec<String>,
    /// Connectedness.
    pub connectedness: Connectedness,
    /// Direction of the first connection.
    pub direction: PeerDirection,
    /// Protected from trimming (static or RPC-protected).
    pub protected: bool,
    /// Chain id from the peer's ENR `opstack` entry, 0 if unknown (ours for `opp2p_self`).
    #[serde(rename = "chainID")]
    pub chain_id: u64,
    /// Ping latency EWMA in **nanoseconds** (Go `time.Duration`); do not convert to ms.
    #[serde(rename = "latency")]
    pub latency_ns: i64,
    /// The peer is on one of our block topics (always true for `opp2p_self`).
    #[serde(rename = "gossipBlocks")]
    pub gossip_blocks: bool,
    /// Scores.
    #[serde(default)]
    pub scores: PeerScores,
}

/// `addr` with `/p2p/<peer>` appended unless it already ends in it (op-node lists every
/// address that way).
pub fn p2p_address(addr: &Multiaddr, peer: &PeerId) -> String {
    match addr.iter().last() {
        Some(Protocol::P2p(p)) if p == *peer => addr.to_string(),
        _ => addr.clone().with(Protocol::P2p(*peer)).to_string(),
    }
}

/// `opp2p_peers` result (op-node `PeerDump`). The banned lists are the **permanent** blocks
/// only, never timed score bans, and serialise as `[]` when empty (never `null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerDump {
    /// Peers in `peers` whose connectedness is `Connected`.
    #[serde(rename = "totalConnected")]
    pub total_connected: u64,
    /// Peers by base58 id.
    #[serde(deserialize_with = "null_as_default")]
    pub peers: BTreeMap<PeerId, PeerInfo>,
    /// Permanently blocked peer ids.
    #[serde(rename = "bannedPeers", deserialize_with = "null_as_default")]
    pub banned_peers: Vec<PeerId>,
    /// Permanently blocked IPs (note op-node's key spelling `bannedIPS`).
    #[serde(rename = "bannedIPS", deserialize_with = "null_as_default")]
    pub banned_ips: Vec<IpAddr>,
    /// Permanently blocked subnets.
    #[serde(rename = "bannedSubnets", deserialize_with = "null_as_default")]
    pub banned_subnets: Vec<GoIpNet>,
}

impl PeerDump {
    /// A dump of these peers with the gater's permanent blocks; `totalConnected` counts the
    /// connected ones.
    pub fn new(peers: impl IntoIterator<Item = PeerInfo>, gater: &Gater) -> Self {
        let peers: BTreeMap<PeerId, PeerInfo> = peers.into_iter().map(|p| (p.peer_id, p)).collect();
        PeerDump {
            total_connected: peers
                .values()
                .filter(|p| p.connectedness == Connectedness::Connected)
                .count() as u64,
            peers,
            banned_peers: gater.blocked_peers(),
            banned_ips: gater.blocked_ips(),
            banned_subnets: gater.blocked_subnets().into_iter().map(GoIpNet).collect(),
        }
    }
}

/// `opp2p_peerStats` result (op-node `PeerStats`). All counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStats {
    /// Connected peers.
    pub connected: u64,
    /// Nodes in the discv5 table.
    pub table: u64,
    /// Peers on the v1 blocks topic.
    pub blocks_topic: u64,
    /// Peers on the v2 blocks topic.
    pub blocks_topic_v2: u64,
    /// Peers on the v3 blocks topic.
    pub blocks_topic_v3: u64,
    /// Peers on the v4 blocks topic.
    pub blocks_topic_v4: u64,
    /// Permanently blocked peer ids only (not timed bans).
    pub banned: u64,
    /// Peers in the peer store.
    pub known: u64,
}

/// The `result` of an admin call; serialises to exactly op-node's JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AdminResponse {
    /// `opp2p_self`.
    SelfInfo(Box<PeerInfo>),
    /// `opp2p_peers`.
    Peers(PeerDump),
    /// `opp2p_peerStats`.
    PeerStats(PeerStats),
    /// `opp2p_discoveryTable`: `enr:` strings.
    DiscoveryTable(Vec<String>),
    /// `opp2p_listBlockedPeers`.
    BlockedPeers(Vec<PeerId>),
    /// `opp2p_listBlockedAddrs`.
    BlockedAddrs(Vec<IpAddr>),
    /// `opp2p_listBlockedSubnets`.
    BlockedSubnets(Vec<GoIpNet>),
    /// Every other method: `null`.
    Null,
}

impl AdminResponse {
    /// The `result` JSON value.
    pub fn to_json(&self) -> Value {
        // Every shape here serialises infallibly (string map keys, finite floats).
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a `result` for `method` (the client side; bounded by the caller's response limit).
    pub fn from_json(method: AdminMethod, result: Value) -> Result<Self, serde_json::Error> {
        fn de<T: DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
            serde_json::from_value(v)
        }
        Ok(match method {
            AdminMethod::SelfInfo => AdminResponse::SelfInfo(Box::new(de(result)?)),
            AdminMethod::Peers => AdminResponse::Peers(de(result)?),
            AdminMethod::PeerStats => AdminResponse::PeerStats(de(result)?),
            AdminMethod::DiscoveryTable => AdminResponse::DiscoveryTable(de(result)?),
            AdminMethod::ListBlockedPeers => AdminResponse::BlockedPeers(de(result)?),
            AdminMethod::ListBlockedAddrs => AdminResponse::BlockedAddrs(de(result)?),
            AdminMethod::ListBlockedSubnets => AdminResponse::BlockedSubnets(de(result)?),
            _ => {
                de::<()>(result)?;
                AdminResponse::Null
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn peer(n: u8) -> PeerId {
        let mut secret = [7u8; 32];
        secret[31] = n;
        let sk = libp2p_identity::secp256k1::SecretKey::try_from_bytes(secret).unwrap();
        let kp = libp2p_identity::secp256k1::Keypair::from(sk);
        libp2p_identity::PublicKey::from(kp.public().clone()).to_peer_id()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(|s| s.as_str()).collect();
        k.sort_unstable();
        k
    }

    fn sample_info() -> PeerInfo {
        let p = peer(1);
        PeerInfo {
            peer_id: p,
            node_id: NodeId::from_peer_id(&p).unwrap(),
            user_agent: "optimism".into(),
            protocol_version: "".into(),
            enr: "enr:-abc".into(),
            addresses: vec![p2p_address(&"/ip4/1.2.3.4/tcp/9222".parse().unwrap(), &p)],
            protocols: vec!["/meshsub/1.1.0".into()],
            connectedness: Connectedness::Connected,
            direction: PeerDirection::Outbound,
            protected: true,
            chain_id: 10,
            latency_ns: 1_500_000,
            gossip_blocks: true,
            scores: PeerScores {
                gossip: GossipScores {
                    total: -1.5,
                    blocks: TopicScores {
                        time_in_mesh: 12.0,
                        first_message_deliveries: 3.0,
                        mesh_message_deliveries: 4.0,
                        invalid_message_deliveries: 0.0,
                    },
                    ip_colocation_factor: -0.25,
                    behavioral_penalty: 0.0,
                },
                req_resp: ReqRespScores {
                    valid_responses: 2.0,
                    error_responses: 1.0,
                    rejected_payloads: 0.0,
                },
            },
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
    fn every_error_path_has_its_code_and_message() {
        let id = peer(1).to_base58();
        let cases: Vec<(&str, String, AdminError, i64, String)> = vec![
            (
                "opp2p_nope",
                "[]".into(),
                AdminError::UnknownMethod("opp2p_nope".into()),
                -32601,
                "the method opp2p_nope does not exist/is not available".into(),
            ),
            (
                "opp2p_self",
                "{}".into(),
                AdminError::NotAnArray,
                -32602,
                "non-array args".into(),
            ),
            (
                "opp2p_self",
                "[1]".into(),
                AdminError::TooManyArguments { max: 0 },
                -32602,
                "too many arguments, want at most 0".into(),
            ),
            (
                "opp2p_blockPeer",
                format!("[\"{id}\", 2]"),
                AdminError::TooManyArguments { max: 1 },
                -32602,
                "too many arguments, want at most 1".into(),
            ),
            (
                "opp2p_peers",
                "[]".into(),
                AdminError::MissingArgument { index: 0 },
                -32602,
                "missing value for required argument 0".into(),
            ),
            (
                "opp2p_peers",
                "[\"yes\"]".into(),
                AdminError::WrongType {
                    index: 0,
                    expected: "boolean",
                },
                -32602,
                "invalid argument 0: expected a JSON boolean".into(),
            ),
            (
                "opp2p_blockPeer",
                "[null]".into(),
                AdminError::WrongType {
                    index: 0,
                    expected: "string",
                },
                -32602,
                "invalid argument 0: expected a JSON string".into(),
            ),
            (
                "opp2p_blockAddr",
                "[\"1.2.3\"]".into(),
                AdminError::BadIp {
                    index: 0,
                    input: "1.2.3".into(),
                },
                -32602,
                "invalid argument 0: invalid IP address: 1.2.3".into(),
            ),
            (
                "opp2p_blockSubnet",
                r#"[{"IP":"10.0.0.0","Mask":"/wD/AA=="}]"#.into(),
                AdminError::BadSubnet {
                    index: 0,
                    source: SubnetError::NonCanonicalMask,
                },
                -32602,
                "invalid argument 0: subnet Mask is not a canonical prefix mask".into(),
            ),
            (
                "opp2p_connectPeer",
                "[\"/ip4/1.2.3.4/tcp/1\"]".into(),
                AdminError::BadMultiaddr("invalid p2p multiaddr".into()),
                -32000,
                "bad peer address: invalid p2p multiaddr".into(),
            ),
            (
                "opp2p_self",
                "[".into(),
                AdminError::MalformedParams(String::new()),
                -32602,
                String::new(),
            ),
        ];
        for (method, params, want, code, msg) in cases {
            let err = AdminRequest::parse(method, &params).unwrap_err();
            if let AdminError::MalformedParams(_) = want {
                assert!(matches!(err, AdminError::MalformedParams(_)), "{err:?}");
            } else {
                assert_eq!(err, want, "{method} {params}");
                assert_eq!(err.to_rpc().message, msg);
            }
            assert_eq!(err.code(), code, "{method} {params}");
        }
        // Bad peer ids, multiaddrs that do not parse.
        let e = AdminRequest::parse("opp2p_unprotectPeer", "[\"notapeer0OIl\"]").unwrap_err();
        assert!(matches!(e, AdminError::BadPeerId { index: 0, .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("invalid argument 0: failed to parse peer ID")
        );
        assert_eq!(e.code(), codes::INVALID_PARAMS);
        let e = AdminRequest::parse("opp2p_connectPeer", "[\"ip4/garbage\"]").unwrap_err();
        assert!(matches!(e, AdminError::BadMultiaddr(_)), "{e:?}");
        assert_eq!(e.code(), codes::SERVER_ERROR);
        let e = AdminRequest::parse("opp2p_connectPeer", "[7]").unwrap_err();
        assert!(matches!(e, AdminError::WrongType { .. }));
        // Backend errors carry op-node's messages.
        for (e, msg) in [
            (AdminError::NoConnectionGater, "no connection gater"),
            (AdminError::NoConnectionManager, "no connection manager"),
            (AdminError::DiscoveryDisabled, "discovery disabled"),
            (AdminError::ConnectTimeout, "context deadline exceeded"),
        ] {
            assert_eq!(
                serde_json::to_value(e.to_rpc()).unwrap(),
                json!({"code": -32000, "message": msg})
            );
        }
        let full: AdminError = GaterError::Full {
            list: crate::peers::gater::ListKind::BlockedPeers,
            max: 3,
        }
        .into();
        assert_eq!(full.code(), -32000);
        assert_eq!(full.to_string(), "blocked peers list is full (3 entries)");
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
    fn go_ipnet_json_matches_go_encoding() {
        // Go: net.ParseCIDR("10.0.0.0/8") -> {"IP":"10.0.0.0","Mask":"/wAAAA=="} (4-byte mask).
        let cases = [
            ("10.0.0.0/8", r#"{"IP":"10.0.0.0","Mask":"/wAAAA=="}"#),
            ("10.0.0.0/16", r#"{"IP":"10.0.0.0","Mask":"//8AAA=="}"#),
            (
                "192.168.1.0/24",
                r#"{"IP":"192.168.1.0","Mask":"////AA=="}"#,
            ),
            ("1.2.3.4/32", r#"{"IP":"1.2.3.4","Mask":"/////w=="}"#),
            ("0.0.0.0/0", r#"{"IP":"0.0.0.0","Mask":"AAAAAA=="}"#),
            (
                "2001:db8::/32",
                r#"{"IP":"2001:db8::","Mask":"/////wAAAAAAAAAAAAAAAA=="}"#,
            ),
            (
                "fe80::/64",
                r#"{"IP":"fe80::","Mask":"//////////8AAAAAAAAAAA=="}"#,
            ),
        ];
        for (cidr, golden) in cases {
            let n = GoIpNet(net(cidr));
            assert_eq!(serde_json::to_string(&n).unwrap(), golden, "{cidr}");
            let back: GoIpNet = serde_json::from_str(golden).unwrap();
            assert_eq!(back, n);
        }
        // Host bits are cleared on write and read.
        assert_eq!(
            serde_json::to_string(&GoIpNet(net("10.1.2.3/8"))).unwrap(),
            r#"{"IP":"10.0.0.0","Mask":"/wAAAA=="}"#
        );
        let v = json!({"IP": "10.9.9.9", "Mask": "/wAAAA=="});
        assert_eq!(GoIpNet::from_json(&v), Ok(net("10.0.0.0/8")));
        // Go accepts keys in any case and ignores unknown ones.
        let v = json!({"ip": "10.0.0.0", "mask": "/wAAAA==", "extra": 1});
        assert_eq!(GoIpNet::from_json(&v), Ok(net("10.0.0.0/8")));
        // An IPv4 net in 16-byte (IPv4-mapped) form.
        let v = json!({"IP": "::ffff:10.0.0.0", "Mask": "/////////////////wAAAA=="});
        assert_eq!(GoIpNet::from_json(&v), Ok(net("10.0.0.0/8")));
    }

    #[test]
    fn go_ipnet_refuses_bad_shapes_with_typed_errors() {
        let cases = [
            (json!("10.0.0.0/8"), SubnetError::NotAnObject),
            (json!({"Mask": "/wAAAA=="}), SubnetError::MissingIp),
            (json!({"IP": "10.0.0.0"}), SubnetError::MissingMask),
            (
                json!({"IP": "10.0.0.0", "Mask": null}),
                SubnetError::MissingMask,
            ),
            (
                json!({"IP": "10.0.0", "Mask": "/wAAAA=="}),
                SubnetError::BadIp("10.0.0".into()),
            ),
            (
                json!({"IP": "10.0.0.0", "Mask": "/wAAAA"}),
                SubnetError::BadMaskEncoding(String::new()),
            ),
            (
                json!({"IP": "10.0.0.0", "Mask": "/wAA"}),
                SubnetError::MaskLength { len: 3, want: 4 },
            ),
            (
                json!({"IP": "2001:db8::", "Mask": "/wAAAA=="}),
                SubnetError::MaskLength { len: 4, want: 16 },
            ),
            (
                json!({"IP": "10.0.0.0", "Mask": "AP8AAA=="}),
                SubnetError::NonCanonicalMask,
            ),
            (
                json!({"IP": "10.0.0.0", "Mask": "AAAAAAAAAAAAAAAA/wAAAA=="}),
                SubnetError::NonCanonicalMask,
            ),
            (
                json!({"IP": "2001:db8::", "Mask": "/////wAAAAAAAAAAAAAAAQ=="}),
                SubnetError::NonCanonicalMask,
            ),
            (
                json!({"IP": "10.0.0.0", "Mask": "A".repeat(100)}),
                SubnetError::BadMaskEncoding(String::new()),
            ),
        ];
        for (v, want) in cases {
            let got = GoIpNet::from_json(&v);
            match (&got, &want) {
                (Err(SubnetError::BadMaskEncoding(_)), SubnetError::BadMaskEncoding(_)) => {}
                _ => assert_eq!(got, Err(want), "{v}"),
            }
        }
        assert!(serde_json::from_value::<GoIpNet>(json!({"IP": "x", "Mask": ""})).is_err());
    }

    #[test]
    fn peer_info_golden_json_has_exactly_op_node_keys() {
        let info = sample_info();
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(
            keys(&v),
            vec![
                "ENR",
                "addresses",
                "chainID",
                "connectedness",
                "direction",
                "gossipBlocks",
                "latency",
                "nodeID",
                "peerID",
                "protected",
                "protocolVersion",
                "protocols",
                "scores",
                "userAgent",
            ]
        );
        assert_eq!(keys(&v["scores"]), vec!["gossip", "reqResp"]);
        assert_eq!(
            keys(&v["scores"]["gossip"]),
            vec!["IPColocationFactor", "behavioralPenalty", "blocks", "total"]
        );
        assert_eq!(
            keys(&v["scores"]["gossip"]["blocks"]),
            vec![
                "firstMessageDeliveries",
                "invalidMessageDeliveries",
                "meshMessageDeliveries",
                "timeInMesh"
            ]
        );
        assert_eq!(
            keys(&v["scores"]["reqResp"]),
            vec!["errorResponses", "rejectedPayloads", "validResponses"]
        );
        let id = info.peer_id.to_base58();
        let golden = json!({
            "peerID": id,
            "nodeID": hex::encode(info.node_id.0),
            "userAgent": "optimism",
            "protocolVersion": "",
            "ENR": "enr:-abc",
            "addresses": [format!("/ip4/1.2.3.4/tcp/9222/p2p/{id}")],
            "protocols": ["/meshsub/1.1.0"],
            "connectedness": 1,
            "direction": 2,
            "protected": true,
            "chainID": 10,
            "latency": 1_500_000,
            "gossipBlocks": true,
            "scores": {
                "gossip": {
                    "total": -1.5,
                    "blocks": {"timeInMesh": 12.0, "firstMessageDeliveries": 3.0,
                               "meshMessageDeliveries": 4.0, "invalidMessageDeliveries": 0.0},
                    "IPColocationFactor": -0.25,
                    "behavioralPenalty": 0.0
                },
                "reqResp": {"validResponses": 2.0, "errorResponses": 1.0, "rejectedPayloads": 0.0}
            }
        });
        assert_eq!(v, golden);
        assert!(!v["nodeID"].as_str().unwrap().starts_with("0x"));
        let back: PeerInfo = serde_json::from_value(v).unwrap();
        assert_eq!(back, info);
    }

    #[test]
    fn peer_info_empty_lists_are_null_and_unknown_values_are_zero() {
        let info = PeerInfo {
            addresses: vec![],
            protocols: vec![],
            node_id: NodeId::default(),
            scores: PeerScores::default(),
            connectedness: Connectedness::NotConnected,
            direction: PeerDirection::Unknown,
            ..sample_info()
        };
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(v["addresses"], Value::Null);
        assert_eq!(v["protocols"], Value::Null);
        assert_eq!(v["nodeID"], json!("0".repeat(64)));
        assert_eq!(v["connectedness"], json!(0));
        assert_eq!(v["direction"], json!(0));
        let back: PeerInfo = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, info);
        // Go output with a 0x-prefixed node id, and an unknown connectedness, and NaN scores.
        let mut v2 = v.clone();
        v2["nodeID"] = json!(format!("0x{}", "ab".repeat(32)));
        let b: PeerInfo = serde_json::from_value(v2).unwrap();
        assert_eq!(b.node_id, NodeId([0xab; 32]));
        let mut v3 = v;
        v3["connectedness"] = json!(9);
        assert!(serde_json::from_value::<PeerInfo>(v3).is_err());
        let nan = PeerScores {
            gossip: GossipScores {
                total: f64::NAN,
                ip_colocation_factor: f64::NEG_INFINITY,
                ..GossipScores::default()
            },
            ..PeerScores::default()
        };
        let j = serde_json::to_value(nan).unwrap();
        assert_eq!(j["gossip"]["total"], json!(0.0));
        assert_eq!(j["gossip"]["IPColocationFactor"], json!(0.0));
    }

    #[test]
    fn node_id_matches_the_eip778_example_key() {
        // EIP-778 example record: this private key has node id a448f24c…17f7.
        let sk = libp2p_identity::secp256k1::SecretKey::try_from_bytes(
            hex::decode("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
                .unwrap(),
        )
        .unwrap();
        let kp = libp2p_identity::secp256k1::Keypair::from(sk);
        let p = libp2p_identity::PublicKey::from(kp.public().clone()).to_peer_id();
        assert_eq!(
            hex::encode(NodeId::from_peer_id(&p).unwrap().0),
            "a448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7"
        );
        // A hashed (sha2-256) peer id does not inline its key: no node id.
        let mut bytes = vec![0x12, 0x20];
        bytes.extend_from_slice(&[9u8; 32]);
        let hashed = PeerId::from_bytes(&bytes).unwrap();
        assert_eq!(NodeId::from_peer_id(&hashed), None);
    }

    #[test]
    fn peer_dump_golden_json_lists_permanent_blocks_only_and_never_null() {
        let mut g = Gater::default();
        let empty = PeerDump::new(Vec::new(), &g);
        assert_eq!(
            serde_json::to_value(&empty).unwrap(),
            json!({"totalConnected": 0, "peers": {}, "bannedPeers": [], "bannedIPS": [],
                   "bannedSubnets": []})
        );
        g.block_peer(peer(3)).unwrap();
        g.block_ip("1.2.3.4".parse().unwrap()).unwrap();
        g.block_subnet(net("10.0.0.0/8")).unwrap();
        g.ban_peer(peer(4), u64::MAX).unwrap(); // a timed ban: not listed
        let a = sample_info();
        let b = PeerInfo {
            peer_id: peer(5),
            connectedness: Connectedness::CanConnect,
            ..sample_info()
        };
        let dump = PeerDump::new([a.clone(), b.clone()], &g);
        assert_eq!(dump.total_connected, 1);
        let v = serde_json::to_value(&dump).unwrap();
        assert_eq!(
            keys(&v),
            vec![
                "bannedIPS",
                "bannedPeers",
                "bannedSubnets",
                "peers",
                "totalConnected"
            ]
        );
        assert_eq!(v["bannedPeers"], json!([peer(3).to_base58()]));
        assert_eq!(v["bannedIPS"], json!(["1.2.3.4"]));
        assert_eq!(
            v["bannedSubnets"],
            json!([{"IP": "10.0.0.0", "Mask": "/wAAAA=="}])
        );
        assert_eq!(
            v["peers"][a.peer_id.to_base58()]["peerID"],
            json!(a.peer_id.to_base58())
        );
        assert_eq!(v["peers"].as_object().unwrap().len(), 2);
        let back: PeerDump = serde_json::from_value(v).unwrap();
        assert_eq!(back, dump);
        // Go writes null lists when it has no gater; they read as empty.
        let go = json!({"totalConnected": 0, "peers": {}, "bannedPeers": null,
                        "bannedIPS": null, "bannedSubnets": null});
        let d: PeerDump = serde_json::from_value(go).unwrap();
        assert!(d.banned_peers.is_empty() && d.banned_ips.is_empty());
    }

    #[test]
    fn peer_stats_golden_json() {
        let s = PeerStats {
            connected: 1,
            table: 2,
            blocks_topic: 3,
            blocks_topic_v2: 4,
            blocks_topic_v3: 5,
            blocks_topic_v4: 6,
            banned: 7,
            known: 8,
        };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(
            text,
            r#"{"connected":1,"table":2,"blocksTopic":3,"blocksTopicV2":4,"blocksTopicV3":5,"blocksTopicV4":6,"banned":7,"known":8}"#
        );
        assert_eq!(serde_json::from_str::<PeerStats>(&text).unwrap(), s);
    }

    #[test]
    fn responses_serialise_to_the_result_json_and_read_back() {
        let g = Gater::default();
        let cases = vec![
            (
                AdminMethod::SelfInfo,
                AdminResponse::SelfInfo(Box::new(sample_info())),
            ),
            (
                AdminMethod::Peers,
                AdminResponse::Peers(PeerDump::new([sample_info()], &g)),
            ),
            (
                AdminMethod::PeerStats,
                AdminResponse::PeerStats(PeerStats::default()),
            ),
            (
                AdminMethod::DiscoveryTable,
                AdminResponse::DiscoveryTable(vec!["enr:-x".into()]),
            ),
            (
                AdminMethod::ListBlockedPeers,
                AdminResponse::BlockedPeers(vec![peer(1)]),
            ),
            (
                AdminMethod::ListBlockedAddrs,
                AdminResponse::BlockedAddrs(vec!["::1".parse().unwrap()]),
            ),
            (
                AdminMethod::ListBlockedSubnets,
                AdminResponse::BlockedSubnets(vec![GoIpNet(net("10.0.0.0/8"))]),
            ),
            (AdminMethod::BlockPeer, AdminResponse::Null),
            (AdminMethod::ConnectPeer, AdminResponse::Null),
        ];
        for (m, r) in cases {
            let v = r.to_json();
            assert_eq!(AdminResponse::from_json(m, v).unwrap(), r, "{m}");
        }
        assert_eq!(AdminResponse::Null.to_json(), Value::Null);
        assert_eq!(AdminResponse::BlockedPeers(vec![]).to_json(), json!([]));
        assert_eq!(
            AdminResponse::BlockedAddrs(vec!["1.2.3.4".parse().unwrap()]).to_json(),
            json!(["1.2.3.4"])
        );
        assert_eq!(
            AdminResponse::BlockedPeers(vec![peer(1)]).to_json(),
            json!([peer(1).to_base58()])
        );
        assert!(AdminResponse::from_json(AdminMethod::BlockPeer, json!(1)).is_err());
    }

    #[test]
    fn blocks_combine_sums_counters_and_takes_max_time_in_mesh() {
        let t = |m, f, d, i| TopicScores {
            time_in_mesh: m,
            first_message_deliveries: f,
            mesh_message_deliveries: d,
            invalid_message_deliveries: i,
        };
        let c = TopicScores::combine([
            t(5.0, 1.0, 2.0, 0.0),
            t(9.0, 3.0, 0.5, 1.0),
            t(2.0, 0.0, 0.0, 0.0),
        ]);
        assert_eq!(c, t(9.0, 4.0, 2.5, 1.0));
        assert_eq!(TopicScores::combine([]), TopicScores::default());
    }

    #[test]
    fn constants_match_op_node() {
        assert_eq!(CONNECT_PEER_TIMEOUT_MS, 30_000);
        assert_eq!(API_PROTECTED_TAG, "api-protected");
        assert_eq!(MAX_PARAMS_BYTES, 65_536);
        let p = peer(1);
        let with = format!("/ip4/1.2.3.4/tcp/1/p2p/{p}");
        assert_eq!(p2p_address(&with.parse().unwrap(), &p), with);
        assert_eq!(
            p2p_address(&"/ip4/1.2.3.4/tcp/1".parse().unwrap(), &p),
            with
        );
    }

    proptest! {
        /// No input makes the parser panic; every error maps to a JSON-RPC code in range.
        #[test]
        fn parse_never_panics(method_ix in 0usize..18, params in ".{0,200}") {
            let method = AdminMethod::ALL.get(method_ix).map_or("opp2p_x", |m| m.name());
            if let Err(e) = AdminRequest::parse(method, &params) {
                let c = e.code();
                prop_assert!((-32700..=-32000).contains(&c));
            }
        }

        /// Any IPv4 or IPv6 subnet survives the Go JSON round trip in canonical form.
        #[test]
        fn go_ipnet_round_trips(a in any::<u32>(), p4 in 0u8..=32, b in any::<u128>(), p6 in 0u8..=128) {
            for n in [
                IpNet::new(IpAddr::from(Ipv4Addr::from(a)), p4).unwrap(),
                IpNet::new(IpAddr::from(Ipv6Addr::from(b)), p6).unwrap(),
            ] {
                let v = serde_json::to_value(GoIpNet(n)).unwrap();
                let back = GoIpNet::from_json(&v);
                prop_assert_eq!(back, Ok(canonical_subnet(n)));
            }
        }
    }
}
