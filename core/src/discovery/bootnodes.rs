//! Bootnode strings (spec §7.4): `enr:<base64url>` records and
//! `enode://<128 hex pubkey>@<host>:<tcp>[?discport=<udp>]` URLs.
//!
//! Bootnodes only seed the DHT, which is shared with L1 and other networks, so they need no
//! `opstack` entry. An `enode://` host may be a DNS name (op-node's list has
//! `bootnode.conduit.xyz`); it is kept as given and [`Bootnode::needs_resolution`] says so:
//! resolving it is the runtime's job. A TCP port of 0 means "discovery only".

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    str::FromStr,
};

use ::enr::{Enr, EnrKey, NodeId};
use alloy_primitives::{hex, keccak256};
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;

use super::{
    DefaultKey,
    enr::{ParseEnrError, enr_peer_id, parse_enr, tcp_multiaddr},
};

/// Longest bootnode string accepted (bytes, before trimming); longer input is refused before
/// any parsing.
pub const MAX_BOOTNODE_LEN: usize = 4096;

/// Longest DNS name (RFC 1035, without the trailing dot).
const MAX_DNS_NAME_LEN: usize = 253;

/// Why a bootnode string does not parse.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BootnodeError {
    /// Longer than [`MAX_BOOTNODE_LEN`].
    #[error("bootnode string is {len} bytes, more than {MAX_BOOTNODE_LEN}")]
    TooLong {
        /// Length of the input.
        len: usize,
    },
    /// Empty or only whitespace.
    #[error("empty bootnode string")]
    Empty,
    /// Neither `enr:` nor `enode://`.
    #[error("bootnode must start with \"enr:\" or \"enode://\"")]
    UnknownScheme,
    /// The `enr:` record does not parse or verify.
    #[error(transparent)]
    Enr(#[from] ParseEnrError),
    /// No `@` between the public key and the address.
    #[error("enode has no '@host:port' part")]
    MissingAddress,
    /// The public key is not 128 hex digits of a valid secp256k1 point.
    #[error("enode public key is not 128 hex digits of a secp256k1 point")]
    BadPublicKey,
    /// The host is neither an IP address nor a DNS name.
    #[error("enode host is not an IP address or DNS name")]
    BadHost,
    /// No `:port` after the host.
    #[error("enode has no TCP port")]
    MissingPort,
    /// The TCP port is not a decimal u16.
    #[error("enode TCP port is not a number in 0..=65535")]
    BadPort,
    /// The `discport` query value is not a decimal u16.
    #[error("enode discport is not a number in 0..=65535")]
    BadDiscport,
    /// A path or fragment after the address.
    #[error("enode URL has a path or fragment")]
    UnexpectedPath,
}

/// Where an `enode://` node lives: an address, or a name the runtime must resolve.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A DNS name, kept as written.
    Dns(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Dns(name) => f.write_str(name),
        }
    }
}

/// A parsed `enode://` URL (the v4 node URL of go-ethereum).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enode {
    /// The node's secp256k1 key (validated as a curve point).
    pub public_key: libp2p_identity::secp256k1::PublicKey,
    /// The node's host.
    pub host: Host,
    /// The TCP (libp2p) port; 0 when the node only does discovery.
    pub tcp_port: u16,
    /// The UDP (discv5) port: `discport`, or the TCP port when absent.
    pub udp_port: u16,
}

impl Enode {
    /// Parses `enode://<128 hex>@<host>:<tcp>[?discport=<udp>]`. IPv6 hosts are bracketed;
    /// query keys other than `discport` are ignored, as go-ethereum does.
    pub fn parse(text: &str) -> Result<Self, BootnodeError> {
        if text.len() > MAX_BOOTNODE_LEN {
            return Err(BootnodeError::TooLong { len: text.len() });
        }
        let rest = text
            .strip_prefix("enode://")
            .ok_or(BootnodeError::UnknownScheme)?;
        let (key_hex, address) = rest.split_once('@').ok_or(BootnodeError::MissingAddress)?;
        let public_key = parse_public_key(key_hex)?;
        if address.contains(['/', '#']) {
            return Err(BootnodeError::UnexpectedPath);
        }
        let (host_port, query) = match address.split_once('?') {
            Some((hp, q)) => (hp, Some(q)),
            None => (address, None),
        };
        let (host, port) = split_host_port(host_port)?;
        let tcp_port = parse_port(port).ok_or(BootnodeError::BadPort)?;
        let mut udp_port = tcp_port;
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if let Some(("discport", value)) = pair.split_once('=') {
                udp_port = parse_port(value).ok_or(BootnodeError::BadDiscport)?;
            }
        }
        Ok(Self {
            public_key,
            host,
            tcp_port,
            udp_port,
        })
    }

    /// The discv5 node id: keccak256 of the uncompressed key without its `04` prefix.
    pub fn node_id(&self) -> NodeId {
        let uncompressed = self.public_key.to_bytes_uncompressed();
        NodeId::new(&keccak256(&uncompressed[1..]).0)
    }

    /// The libp2p peer id of the same key.
    pub fn peer_id(&self) -> PeerId {
        libp2p_identity::PublicKey::from(self.public_key.clone()).to_peer_id()
    }

    /// Whether the host is a DNS name the runtime must resolve first.
    pub fn needs_resolution(&self) -> bool {
        matches!(self.host, Host::Dns(_))
    }

    /// The discv5 UDP address, if the host is an IP.
    pub fn udp_socket(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.udp_port)),
            Host::Dns(_) => None,
        }
    }

    /// `/ip4|ip6/<ip>/tcp/<tcp>`, if the host is an IP and the TCP port is not 0.
    pub fn tcp_multiaddr(&self) -> Option<Multiaddr> {
        match self.host {
            Host::Ip(ip) if self.tcp_port != 0 => Some(tcp_multiaddr(ip, self.tcp_port)),
            _ => None,
        }
    }
}

impl fmt::Display for Enode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uncompressed = self.public_key.to_bytes_uncompressed();
        write!(
            f,
            "enode://{}@{}:{}",
            hex::encode(&uncompressed[1..]),
            self.host,
            self.tcp_port
        )?;
        if self.udp_port != self.tcp_port {
            write!(f, "?discport={}", self.udp_port)?;
        }
        Ok(())
    }
}

impl FromStr for Enode {
    type Err = BootnodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn parse_public_key(key_hex: &str) -> Result<libp2p_identity::secp256k1::PublicKey, BootnodeError> {
    if key_hex.len() != 128 {
        return Err(BootnodeError::BadPublicKey);
    }
    let mut sec1 = [0u8; 65];
    sec1[0] = 0x04;
    hex::decode_to_slice(key_hex, &mut sec1[1..]).map_err(|_| BootnodeError::BadPublicKey)?;
    libp2p_identity::secp256k1::PublicKey::try_from_bytes(&sec1)
        .map_err(|_| BootnodeError::BadPublicKey)
}

/// Splits `host:port` or `[v6]:port`.
fn split_host_port(s: &str) -> Result<(Host, &str), BootnodeError> {
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or(BootnodeError::BadHost)?;
        let ip: Ipv6Addr = ip.parse().map_err(|_| BootnodeError::BadHost)?;
        let port = after.strip_prefix(':').ok_or(BootnodeError::MissingPort)?;
        return Ok((Host::Ip(IpAddr::V6(ip)), port));
    }
    let (host, port) = s.rsplit_once(':').ok_or(BootnodeError::MissingPort)?;
    if host.contains(':') {
        // An unbracketed IPv6 address is ambiguous with the port.
        return Err(BootnodeError::BadHost);
    }
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) if is_dns_name(host) => Host::Dns(host.to_owned()),
        Err(_) => return Err(BootnodeError::BadHost),
    };
    Ok((host, port))
}

/// A decimal u16 with 1 to 5 digits and nothing else (no sign, no spaces).
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// LDH labels of 1 to 63 characters, not starting or ending with '-', 253 characters at most.
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_DNS_NAME_LEN
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// One bootnode: a signed record, or an `enode://` URL.
#[derive(Clone, Debug)]
pub enum Bootnode<K: EnrKey = DefaultKey> {
    /// A verified `enr:` record.
    Enr(Box<Enr<K>>),
    /// An `enode://` URL.
    Enode(Enode),
}

impl<K: EnrKey> Bootnode<K> {
    /// Parses one bootnode string. Surrounding whitespace is ignored (lists are often written
    /// one per line or comma-and-space separated); the length bound applies to the raw input.
    pub fn parse(text: &str) -> Result<Self, BootnodeError> {
        if text.len() > MAX_BOOTNODE_LEN {
            return Err(BootnodeError::TooLong { len: text.len() });
        }
        let text = text.trim();
        if text.is_empty() {
            return Err(BootnodeError::Empty);
        }
        if text.starts_with("enr:") {
            Ok(Self::Enr(Box::new(parse_enr(text)?)))
        } else if text.starts_with("enode://") {
            Ok(Self::Enode(Enode::parse(text)?))
        } else {
            Err(BootnodeError::UnknownScheme)
        }
    }

    /// The discv5 node id.
    pub fn node_id(&self) -> NodeId {
        match self {
            Self::Enr(enr) => enr.node_id(),
            Self::Enode(enode) => enode.node_id(),
        }
    }

    /// The libp2p peer id, if the record carries a secp256k1 key (always, for scheme "v4").
    pub fn peer_id(&self) -> Option<PeerId> {
        match self {
            Self::Enr(enr) => enr_peer_id(enr).ok(),
            Self::Enode(enode) => Some(enode.peer_id()),
        }
    }

    /// Whether the runtime must resolve a DNS name before using it.
    pub fn needs_resolution(&self) -> bool {
        match self {
            Self::Enr(_) => false,
            Self::Enode(enode) => enode.needs_resolution(),
        }
    }
}

impl<K: EnrKey> FromStr for Bootnode<K> {
    type Err = BootnodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<K: EnrKey> fmt::Display for Bootnode<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Enr(enr) => f.write_str(&enr.to_base64()),
            Self::Enode(enode) => enode.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::enr::tests::{key, op_record, vectors};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const OP_LABS: &str = "enode://869d07b5932f17e8490990f75a3f94195e9504ddb6b85f7189e5a9c0a8fff8b00aecf6f3ac450ecba6cdabdb5858788a94bde2b613e0f2d82e9b395355f76d1a@34.65.67.101:30305";
    const CONDUIT: &str = "enode://d25ce99435982b04d60c4b41ba256b84b888626db7bee45a9419382300fbe907359ae5ef250346785bff8d3b9d07cd3e017a27e2ee3cfda3bcbb0ba762ac9674@bootnode.conduit.xyz:0?discport=30301";

    fn parse(s: &str) -> Result<Bootnode, BootnodeError> {
        Bootnode::parse(s)
    }

    #[test]
    fn enode_with_ip() {
        let Bootnode::Enode(e) = parse(OP_LABS).unwrap() else {
            panic!("not an enode")
        };
        assert_eq!(e.host, Host::Ip(IpAddr::V4(Ipv4Addr::new(34, 65, 67, 101))));
        assert_eq!((e.tcp_port, e.udp_port), (30305, 30305));
        assert!(!e.needs_resolution());
        assert_eq!(e.udp_socket(), Some("34.65.67.101:30305".parse().unwrap()));
        assert_eq!(
            e.tcp_multiaddr(),
            Some("/ip4/34.65.67.101/tcp/30305".parse().unwrap())
        );
        assert_eq!(e.to_string(), OP_LABS, "display is the canonical URL");
        // Node id is keccak256 of the 64-byte key.
        let raw = hex::decode(&OP_LABS[8..136]).unwrap();
        assert_eq!(e.node_id().raw(), keccak256(&raw).0);
        assert!(e.peer_id().to_string().starts_with("16Uiu2HA"));
    }

    #[test]
    fn enode_with_dns_name_needs_resolution() {
        let b = parse(CONDUIT).unwrap();
        assert!(b.needs_resolution());
        let Bootnode::Enode(e) = b else { panic!() };
        assert_eq!(e.host, Host::Dns("bootnode.conduit.xyz".into()));
        assert_eq!((e.tcp_port, e.udp_port), (0, 30301));
        assert_eq!(e.udp_socket(), None);
        assert_eq!(e.tcp_multiaddr(), None);
        assert_eq!(e.to_string(), CONDUIT);
    }

    #[test]
    fn enode_with_ipv6_and_unknown_query_keys() {
        let k = &OP_LABS[8..136];
        let Bootnode::Enode(e) = parse(&format!(
            "enode://{k}@[2001:db8::1]:30303?foo=bar&discport=30301"
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(e.host, Host::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!((e.tcp_port, e.udp_port), (30303, 30301));
        assert_eq!(
            e.tcp_multiaddr(),
            Some("/ip6/2001:db8::1/tcp/30303".parse().unwrap())
        );
    }

    #[test]
    fn enr_bootnode_needs_no_opstack_entry() {
        let v = vectors();
        let text = v["decoded_real_records"][0]["enr"].as_str().unwrap();
        let b = parse(&format!("  {text}\n")).unwrap();
        assert!(!b.needs_resolution());
        assert_eq!(
            b.peer_id().unwrap().to_string(),
            v["decoded_real_records"][0]["libp2p_peer_id"]
                .as_str()
                .unwrap()
        );
        assert_eq!(b.to_string(), text);

        // A record without any opstack entry is a fine bootnode.
        let mut builder = ::enr::Enr::builder();
        builder.ip4(Ipv4Addr::new(1, 2, 3, 4)).udp4(30303);
        let plain: crate::discovery::Enr = builder.build(&key(9)).unwrap();
        let b = parse(&plain.to_base64()).unwrap();
        assert_eq!(b.node_id(), plain.node_id());
        let _ = op_record(&key(9), 1, 10);
    }

    #[test]
    fn bad_bootnodes_get_typed_errors() {
        use BootnodeError as E;
        let k = &OP_LABS[8..136];
        let cases: Vec<(String, E)> = vec![
            ("".into(), E::Empty),
            ("   ".into(), E::Empty),
            ("http://x".into(), E::UnknownScheme),
            (format!("enode://{k}"), E::MissingAddress),
            (format!("enode://{}@1.2.3.4:1", &k[..126]), E::BadPublicKey),
            (
                format!("enode://{}zz@1.2.3.4:1", &k[..126]),
                E::BadPublicKey,
            ),
            // 64 bytes that are not a curve point.
            (
                format!("enode://{}@1.2.3.4:1", "00".repeat(64)),
                E::BadPublicKey,
            ),
            (format!("enode://{k}@1.2.3.4"), E::MissingPort),
            (format!("enode://{k}@1.2.3.4:"), E::BadPort),
            (format!("enode://{k}@1.2.3.4:65536"), E::BadPort),
            (format!("enode://{k}@1.2.3.4:+80"), E::BadPort),
            (
                format!("enode://{k}@1.2.3.4:30303?discport=x"),
                E::BadDiscport,
            ),
            (
                format!("enode://{k}@1.2.3.4:30303?discport=99999"),
                E::BadDiscport,
            ),
            (format!("enode://{k}@2001:db8::1:30303"), E::BadHost),
            (format!("enode://{k}@[2001:db8::1]30303"), E::MissingPort),
            (format!("enode://{k}@[nonsense]:1"), E::BadHost),
            (format!("enode://{k}@bad_host!:1"), E::BadHost),
            (format!("enode://{k}@-lead.example:1"), E::BadHost),
            (format!("enode://{k}@:1"), E::BadHost),
            (format!("enode://{k}@1.2.3.4:1/path"), E::UnexpectedPath),
            (format!("enode://{k}@1.2.3.4:1#frag"), E::UnexpectedPath),
        ];
        for (input, want) in cases {
            assert_eq!(parse(&input).unwrap_err(), want, "{input:?}");
        }
        assert!(matches!(
            parse("enr:garbage").unwrap_err(),
            E::Enr(ParseEnrError::Invalid(_))
        ));
        let huge = format!("enode://{}", "a".repeat(MAX_BOOTNODE_LEN));
        assert_eq!(
            parse(&huge).unwrap_err(),
            E::TooLong {
                len: MAX_BOOTNODE_LEN + 8
            }
        );
        assert_eq!(
            Enode::parse(&huge).unwrap_err(),
            E::TooLong {
                len: MAX_BOOTNODE_LEN + 8
            }
        );
        // Within 4 KiB but longer than any record: refused by the ENR bound, still typed.
        let long_enr = format!("enr:{}", "A".repeat(2000));
        assert!(matches!(
            parse(&long_enr).unwrap_err(),
            E::Enr(ParseEnrError::TooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn bootnode_parser_never_panics(s in "\\PC{0,300}") {
            let _ = parse(&s);
            let _ = parse(&format!("enode://{s}"));
            let _ = parse(&format!("enr:{s}"));
        }

        #[test]
        fn enode_address_part_never_panics(addr in "[0-9a-z:\\[\\]\\.?=&/#@-]{0,60}") {
            let _ = parse(&format!("enode://{}@{addr}", &OP_LABS[8..136]));
        }
    }
}
