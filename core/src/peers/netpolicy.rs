//! Which addresses learned from the network the node may dial: op-node's `--p2p.netrestrict`
//! allow-list, and without one, public addresses only.
//!
//! Any peer can put any address in what it tells us (the IP of its ENR, its identify listen
//! addresses), and the node dials what it learns. Unchecked, that lets an outsider make the
//! node open TCP connections inside the operator's network: to `127.0.0.1` services, to RFC 1918
//! hosts, to the cloud metadata service at `169.254.169.254`. So an address learned from the
//! network is dialled only if:
//! - a netrestrict list is set ([`NetPolicy::netrestrict`]): the address lies inside it, and
//!   nothing else is dialled (op-node's meaning: "P2P will only try to connect on these
//!   networks"), a private or loopback range included when the operator lists it;
//! - none is set: the address is not in a special-purpose range ([`non_public`]: unspecified,
//!   loopback, RFC 1918 private, CGNAT, link-local with the cloud metadata address, multicast,
//!   broadcast, IPv6 unique-local).
//!
//! Addresses the operator gave (a static peer's configured address, the address of an
//! `opp2p_connectPeer` call) are not subject to this policy: the node decides that
//! ([`crate::Node::allow_dial`]), the gater applies the result
//! ([`crate::peers::gater::AddrOrigin`]). Blocks and bans apply to every dial.
//!
//! ⚠ op-node hands its netrestrict list to discv5 only (go-ethereum's discovery refuses nodes
//! outside it); its libp2p host dials identify and peerstore addresses unchecked, and without
//! the flag dials private addresses too (go-ethereum only drops a LAN address relayed by a
//! non-LAN node). We apply the list to every address learned from the network, and refuse
//! special-purpose ranges without one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The range type of netrestrict lists (re-exported so embedders name the one the core uses).
pub use ipnet::IpNet;

use super::gater::{canonical_ip, canonical_subnet};

/// A special-purpose address range a learned address is refused in when no netrestrict list
/// is set. The label ([`NonPublic::as_str`]) is stable, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NonPublic {
    /// `0.0.0.0/8` ("this network") and `::`.
    Unspecified,
    /// `127.0.0.0/8` and `::1`.
    Loopback,
    /// RFC 1918: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// RFC 6598 carrier-grade NAT: `100.64.0.0/10`.
    SharedCgnat,
    /// The cloud metadata service, `169.254.169.254` (AWS, GCP, Azure, …), and its IPv6 form
    /// `fd00:ec2::254`; listed apart from link-local for the logs.
    CloudMetadata,
    /// `169.254.0.0/16` and `fe80::/10`.
    LinkLocal,
    /// `224.0.0.0/4` and `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// IPv6 unique-local `fc00::/7` (the IPv6 private range).
    UniqueLocal,
}

impl NonPublic {
    /// A stable snake_case label.
    pub const fn as_str(self) -> &'static str {
        match self {
            NonPublic::Unspecified => "unspecified",
            NonPublic::Loopback => "loopback",
            NonPublic::Private => "private",
            NonPublic::SharedCgnat => "cgnat",
            NonPublic::CloudMetadata => "cloud_metadata",
            NonPublic::LinkLocal => "link_local",
            NonPublic::Multicast => "multicast",
            NonPublic::Broadcast => "broadcast",
            NonPublic::UniqueLocal => "unique_local",
        }
    }
}

impl fmt::Display for NonPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The loopback ranges, `127.0.0.0/8` and `::1/128`: the netrestrict list of a devnet, a
/// benchmark or a test running every node on one host (`NodeConfig::local` sets it).
pub const LOOPBACK_NETS: [IpNet; 2] = [
    IpNet::V4(ipnet::Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)),
    IpNet::V6(ipnet::Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)),
];

/// The cloud metadata service's IPv4 address.
pub const CLOUD_METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// The cloud metadata service's IPv6 address (AWS's IMDS on Nitro).
pub const CLOUD_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

/// The special-purpose range `ip` lies in, if any (after [`canonical_ip`], so
/// `::ffff:10.0.0.1` is private).
pub fn non_public(ip: IpAddr) -> Option<NonPublic> {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4 == CLOUD_METADATA_V4 {
                Some(NonPublic::CloudMetadata)
            } else if a == 0 {
                Some(NonPublic::Unspecified)
            } else if v4.is_loopback() {
                Some(NonPublic::Loopback)
            } else if v4.is_private() {
                Some(NonPublic::Private)
            } else if a == 100 && (b & 0xc0) == 64 {
                Some(NonPublic::SharedCgnat)
            } else if v4.is_link_local() {
                Some(NonPublic::LinkLocal)
            } else if v4.is_multicast() {
                Some(NonPublic::Multicast)
            } else if v4.is_broadcast() {
                Some(NonPublic::Broadcast)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6 == CLOUD_METADATA_V6 {
                Some(NonPublic::CloudMetadata)
            } else if v6.is_unspecified() {
                Some(NonPublic::Unspecified)
            } else if v6.is_loopback() {
                Some(NonPublic::Loopback)
            } else if (first & 0xfe00) == 0xfc00 {
                Some(NonPublic::UniqueLocal)
            } else if (first & 0xffc0) == 0xfe80 {
                Some(NonPublic::LinkLocal)
            } else if v6.is_multicast() {
                Some(NonPublic::Multicast)
            } else {
                None
            }
        }
    }
}

/// Why an address learned from the network is not dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrRefusal {
    /// A netrestrict list is set and the address is outside it.
    OutsideNetRestrict,
    /// No netrestrict list is set and the address is in a special-purpose range.
    NonPublic(NonPublic),
}

/// The address policy: see the module docs. Cheap to clone; checked linearly (the list is the
/// operator's, a handful of ranges).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPolicy {
    netrestrict: Option<Vec<IpNet>>,
}

impl NetPolicy {
    /// The policy for an operator's netrestrict list (`None`: public addresses only). Each
    /// range is taken in [`canonical_subnet`] form.
    pub fn new(netrestrict: Option<&[IpNet]>) -> Self {
        Self {
            netrestrict: netrestrict.map(|l| l.iter().copied().map(canonical_subnet).collect()),
        }
    }

    /// The netrestrict list in force, if any.
    pub fn netrestrict(&self) -> Option<&[IpNet]> {
        self.netrestrict.as_deref()
    }

    /// Whether an address learned from the network may be dialled at `ip`, and if not, why.
    pub fn check(&self, ip: IpAddr) -> Result<(), AddrRefusal> {
        let ip = canonical_ip(ip);
        match &self.netrestrict {
            Some(list) if list.iter().any(|n| n.contains(&ip)) => Ok(()),
            Some(_) => Err(AddrRefusal::OutsideNetRestrict),
            None => non_public(ip).map_or(Ok(()), |r| Err(AddrRefusal::NonPublic(r))),
        }
    }

    /// [`NetPolicy::check`] as a yes or no.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.check(ip).is_ok()
    }
}

/// Why a netrestrict text does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetRestrictError {
    /// An entry is not CIDR notation (`10.0.0.0/8`, `2001:db8::/32`).
    #[error("netrestrict entry {index} ({entry:?}) is not a CIDR range: {reason}")]
    NotCidr {
        /// Position in the list, from 0.
        index: usize,
        /// The entry (at most 64 characters of it).
        entry: String,
        /// The parser's message.
        reason: String,
    },
    /// No entry at all: nothing learned from the network could be dialled.
    #[error("netrestrict is empty: nothing learned from the network could be dialled")]
    Empty,
}

/// Parses a netrestrict list as op-node's `--p2p.netrestrict` does (go-ethereum's
/// `netutil.ParseNetlist`): comma-separated CIDR ranges, whitespace anywhere ignored, empty
/// entries skipped. A bare IP is not a range. ⚠ go-ethereum accepts a list with no entry
/// (and then dials nothing); we refuse it ([`NetRestrictError::Empty`]).
pub fn parse_netrestrict(text: &str) -> Result<Vec<IpNet>, NetRestrictError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    for (index, entry) in compact.split(',').filter(|e| !e.is_empty()).enumerate() {
        let net: IpNet =
            entry
                .parse()
                .map_err(|e: ipnet::AddrParseError| NetRestrictError::NotCidr {
                    index,
                    entry: entry.chars().take(64).collect(),
                    reason: e.to_string(),
                })?;
        out.push(canonical_subnet(net));
    }
    if out.is_empty() {
        return Err(NetRestrictError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// ⚠ Stricter than op-node, which dials private and loopback addresses learned from the
    /// network when no netrestrict list is set.
    #[test]
    fn special_purpose_ranges_are_refused_without_a_list() {
        let p = NetPolicy::new(None);
        for (addr, range) in [
            ("0.0.0.0", NonPublic::Unspecified),
            ("0.1.2.3", NonPublic::Unspecified),
            ("::", NonPublic::Unspecified),
            ("127.0.0.1", NonPublic::Loopback),
            ("127.255.0.9", NonPublic::Loopback),
            ("::1", NonPublic::Loopback),
            ("10.0.0.1", NonPublic::Private),
            ("172.16.0.1", NonPublic::Private),
            ("172.31.255.255", NonPublic::Private),
            ("192.168.1.1", NonPublic::Private),
            ("::ffff:192.168.1.1", NonPublic::Private),
            ("100.64.0.1", NonPublic::SharedCgnat),
            ("100.127.255.254", NonPublic::SharedCgnat),
            ("169.254.169.254", NonPublic::CloudMetadata),
            ("::ffff:169.254.169.254", NonPublic::CloudMetadata),
            ("fd00:ec2::254", NonPublic::CloudMetadata),
            ("169.254.1.1", NonPublic::LinkLocal),
            ("fe80::1", NonPublic::LinkLocal),
            ("febf::1", NonPublic::LinkLocal),
            ("224.0.0.1", NonPublic::Multicast),
            ("239.255.255.250", NonPublic::Multicast),
            ("ff02::1", NonPublic::Multicast),
            ("255.255.255.255", NonPublic::Broadcast),
            ("fc00::1", NonPublic::UniqueLocal),
            ("fdff::1", NonPublic::UniqueLocal),
        ] {
            assert_eq!(non_public(ip(addr)), Some(range), "{addr}");
            assert_eq!(
                p.check(ip(addr)),
                Err(AddrRefusal::NonPublic(range)),
                "{addr}"
            );
        }
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "169.253.255.255",
            "192.169.0.1",
            "2001:4860::8888",
            "fec0::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(non_public(ip(addr)), None, "{addr}");
            assert!(p.allows(ip(addr)), "{addr}");
        }
    }

    #[test]
    fn a_list_allows_only_what_it_covers_private_ranges_included() {
        let list = parse_netrestrict("127.0.0.0/8, 10.1.0.0/16,2001:db8::/32").unwrap();
        let p = NetPolicy::new(Some(&list));
        for addr in ["127.0.0.1", "10.1.2.3", "::ffff:10.1.0.1", "2001:db8::7"] {
            assert!(p.allows(ip(addr)), "{addr}");
        }
        for addr in [
            "10.2.0.1",
            "8.8.8.8",
            "169.254.169.254",
            "::1",
            "192.168.0.1",
        ] {
            assert_eq!(
                p.check(ip(addr)),
                Err(AddrRefusal::OutsideNetRestrict),
                "{addr}"
            );
        }
        assert_eq!(p.netrestrict().map(<[IpNet]>::len), Some(3));
    }

    #[test]
    fn netrestrict_text_parses_like_go_ethereums_netlist() {
        assert_eq!(
            parse_netrestrict(" 10.0.0.0/8 ,\n192.168.0.0/16,,").unwrap(),
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "192.168.0.0/16".parse().unwrap()
            ]
        );
        // Host bits are cleared, IPv4-mapped ranges become IPv4.
        assert_eq!(
            parse_netrestrict("10.1.2.3/8,::ffff:192.168.0.0/112").unwrap(),
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "192.168.0.0/16".parse().unwrap()
            ]
        );
        assert!(matches!(
            parse_netrestrict("10.0.0.0/8,10.0.0.1"),
            Err(NetRestrictError::NotCidr { index: 1, .. })
        ));
        assert!(matches!(
            parse_netrestrict("nonsense"),
            Err(NetRestrictError::NotCidr { index: 0, .. })
        ));
        // ⚠ go-ethereum takes an empty list (and then dials nothing); we refuse it.
        assert_eq!(parse_netrestrict(" , "), Err(NetRestrictError::Empty));
    }
}
