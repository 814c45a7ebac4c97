//! Why an admin call failed, and the JSON-RPC error it becomes: [`AdminError`] (one variant
//! per failure, with op-node's or go-ethereum's message where they have one), [`RpcError`]
//! (the `{"code","message"}` object) and go-ethereum's error [`codes`]. User input echoed back
//! in a message is cut to a bounded length, so a huge param cannot make a huge error.

use serde::{Deserialize, Serialize};

use super::gojson::SubnetError;
use crate::peers::gater::GaterError;

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
pub(super) const ECHO_MAX: usize = 80;

/// `s`, cut to [`ECHO_MAX`] characters (with `…` when cut).
pub(super) fn echo(s: &str) -> String {
    match s.char_indices().nth(ECHO_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

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
    /// `params` is larger than [`MAX_PARAMS_BYTES`](super::MAX_PARAMS_BYTES); it was not parsed.
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
    /// An `opp2pext_publishBlock` param is not an engine API `ExecutionPayloadEnvelope`.
    #[error("invalid argument {index}: not an execution payload envelope: {reason}")]
    BadPayload {
        /// Its position.
        index: usize,
        /// Why (the decoder's message, cut).
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
    /// `connectPeer` did not connect within
    /// [`CONNECT_PEER_TIMEOUT_MS`](super::CONNECT_PEER_TIMEOUT_MS) (Go's context message).
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
            | AdminError::BadPayload { .. }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::admin::AdminRequest;
    use crate::admin::test_support::peer;

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
}
