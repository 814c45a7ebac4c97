//! The RPC listener's `Host` allow-list, go-ethereum's `--http.vhosts`: a guard against DNS
//! rebinding, where a web page on `evil.example` that resolves to 127.0.0.1 makes the victim's
//! browser send requests to the loopback RPC as if same-origin. Such a request carries
//! `Host: evil.example`, which is not on the list.
//!
//! The rule is go-ethereum's `virtualHostHandler` (`node/rpcstack.go`) behind Go's `net/http`
//! server, which is what a request to op-node or geth meets:
//! - The host is the request target's authority if it has one (absolute form), else the `Host`
//!   header; its port is dropped (`[::1]:9545` → `::1`, `localhost:9545` → `localhost`).
//! - No host at all: allowed for HTTP/1.0; an HTTP/1.1 request without `Host` is `400` (RFC
//!   9112 §3.2; Go's server refuses it before geth's handler runs). More than one `Host`
//!   header, or one with bytes a host cannot have: `400`. An empty `Host` value is allowed
//!   (geth: "a browser would set the Host header"; no browser sends an empty one).
//! - An IP address (v4, v6, bracketed v6) is allowed: rebinding needs a name, and a page that
//!   targets an IP directly is cross-origin (CORS and our JSON content type apply). So
//!   `127.0.0.1`, `::1`, `[::1]` and the listener's own address always pass.
//! - A name is allowed if the list has `*` or the name itself (case-insensitive, exact: no
//!   suffix matching, a trailing dot is part of the name). Otherwise `403` with geth's body,
//!   `invalid host specified`.

use std::net::{IpAddr, Ipv6Addr};

use hyper::header::{self, HeaderValue};
use hyper::{Request, Version};

/// The names allowed unless configured: go-ethereum's `--http.vhosts` default.
pub const DEFAULT_VHOSTS: &[&str] = &["localhost"];

/// go-ethereum's answer to a host not on the list (403).
pub const INVALID_HOST: &str = "invalid host specified\n";

/// Which `Host` names the RPC listener answers; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualHosts {
    /// `*` was given: every name.
    any: bool,
    /// Lowercase names (IP entries are kept out: every IP passes).
    names: Vec<String>,
}

/// Why a `--rpc.vhosts` entry is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VhostError {
    /// Empty (or only spaces).
    #[error("is empty")]
    Empty,
    /// Has a port: the list names hosts, any port.
    #[error("has a port (the list names hosts; any port is allowed)")]
    Port,
    /// `*` inside a name: only a lone `*` (every name) is supported, as in go-ethereum.
    #[error("has a wildcard inside a name (only a lone * is supported)")]
    Wildcard,
    /// Neither `*`, an IP address nor a DNS name (letters, digits, `-`, `_` in dot-separated
    /// labels of at most 63 characters, at most 253 in all).
    #[error("is not a host name or an IP address")]
    Invalid,
}

/// Why a request's host is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostRefusal {
    /// Not on the list: `403`.
    NotAllowed,
    /// Malformed: `400` with this message (Go's).
    BadRequest(&'static str),
}

impl Default for VirtualHosts {
    fn default() -> Self {
        Self::parse(DEFAULT_VHOSTS).expect("the default list is valid")
    }
}

impl VirtualHosts {
    /// Every name (`*`).
    pub fn any() -> Self {
        Self {
            any: true,
            names: Vec::new(),
        }
    }

    /// The list from its entries (surrounding spaces ignored): `*`, IP addresses and DNS names;
    /// the first malformed entry is refused with its position. An empty list allows IP
    /// addresses only.
    pub fn parse<S: AsRef<str>>(
        entries: impl IntoIterator<Item = S>,
    ) -> Result<Self, (usize, VhostError)> {
        let mut list = Self {
            any: false,
            names: Vec::new(),
        };
        for (index, entry) in entries.into_iter().enumerate() {
            let entry = entry.as_ref().trim();
            match check_entry(entry).map_err(|e| (index, e))? {
                Entry::Any => list.any = true,
                Entry::Ip => {}
                Entry::Name => {
                    let name = entry.to_ascii_lowercase();
                    if !list.names.contains(&name) {
                        list.names.push(name);
                    }
                }
            }
        }
        Ok(list)
    }

    /// Whether a `Host` value (`name`, `name:port`, an IP, `[v6]:port`) passes; an empty one
    /// does (see the module docs).
    pub fn allows(&self, host: &str) -> bool {
        let host = strip_port(host);
        if host.is_empty() || parse_ip(host).is_some() || self.any {
            return true;
        }
        self.names.iter().any(|n| n.eq_ignore_ascii_case(host))
    }

    /// Checks a request's host (see the module docs).
    pub(crate) fn check<B>(&self, req: &Request<B>) -> Result<(), HostRefusal> {
        let host = match req.uri().authority() {
            Some(authority) => authority.as_str().to_owned(),
            None => {
                let mut values = req.headers().get_all(header::HOST).iter();
                match (values.next(), values.next()) {
                    (None, _) if req.version() <= Version::HTTP_10 => return Ok(()),
                    (None, _) => {
                        return Err(HostRefusal::BadRequest("missing required Host header"));
                    }
                    (Some(_), Some(_)) => {
                        return Err(HostRefusal::BadRequest("too many Host headers"));
                    }
                    (Some(v), None) => host_text(v)
                        .ok_or(HostRefusal::BadRequest("malformed Host header"))?
                        .to_owned(),
                }
            }
        };
        if self.allows(&host) {
            Ok(())
        } else {
            Err(HostRefusal::NotAllowed)
        }
    }
}

enum Entry {
    Any,
    Ip,
    Name,
}

fn check_entry(entry: &str) -> Result<Entry, VhostError> {
    if entry.is_empty() {
        return Err(VhostError::Empty);
    }
    if entry == "*" {
        return Ok(Entry::Any);
    }
    if parse_ip(entry).is_some() {
        return Ok(Entry::Ip);
    }
    if entry.contains('*') {
        return Err(VhostError::Wildcard);
    }
    if let Some((host, port)) = entry.rsplit_once(':') {
        // An IP or a name with a port (`127.0.0.1:9545`, `[::1]:9545`, `localhost:9545`).
        let with_port = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && (parse_ip(host).is_some() || is_name(host));
        return Err(if with_port {
            VhostError::Port
        } else {
            VhostError::Invalid
        });
    }
    if is_name(entry) {
        Ok(Entry::Name)
    } else {
        Err(VhostError::Invalid)
    }
}

/// A DNS name: dot-separated labels of letters, digits, `-` (not first or last) and `_`
/// (container and service names use it), at most 63 characters each and 253 in all; one
/// trailing dot allowed.
fn is_name(s: &str) -> bool {
    let labels = s.strip_suffix('.').unwrap_or(s);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    s.len() <= 253 && labels.split('.').all(label_ok)
}

/// The host of a `Host` value: `[v6]:port` and `[v6]` → `v6`, `name:port` → `name`; a value
/// with several colons and no brackets (a bare IPv6 address) is kept whole, as Go's
/// `net.SplitHostPort` failing leaves it.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((inner, _)) => inner,
            None => host,
        };
    }
    match host.split_once(':') {
        Some((name, port)) if !port.contains(':') => name,
        _ => host,
    }
}

fn parse_ip(host: &str) -> Option<IpAddr> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    host.parse().ok()
}

/// The header as text, if it holds only visible ASCII (what a host may contain).
fn host_text(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    s.bytes().all(|b| b.is_ascii_graphic()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_or_are_refused_with_their_position() {
        let l = VirtualHosts::parse([
            " LocalHost ",
            "node.internal",
            "op_node",
            "10.0.0.1",
            "[::1]",
        ])
        .unwrap();
        assert_eq!(l.names, ["localhost", "node.internal", "op_node"]);
        assert!(!l.any);
        assert!(VirtualHosts::parse(["localhost", "*"]).unwrap().any);
        assert!(
            VirtualHosts::parse(Vec::<String>::new())
                .unwrap()
                .names
                .is_empty()
        );
        for (bad, why) in [
            ("", VhostError::Empty),
            ("  ", VhostError::Empty),
            ("localhost:8545", VhostError::Port),
            ("127.0.0.1:8545", VhostError::Port),
            ("[::1]:8545", VhostError::Port),
            ("*.example.com", VhostError::Wildcard),
            ("a b", VhostError::Invalid),
            ("http://localhost", VhostError::Invalid),
            ("-x.example", VhostError::Invalid),
            ("a..b", VhostError::Invalid),
            ("x/y", VhostError::Invalid),
        ] {
            assert_eq!(
                VirtualHosts::parse(["localhost", bad]),
                Err((1, why)),
                "{bad:?}"
            );
        }
        let long = "a".repeat(64);
        assert_eq!(
            VirtualHosts::parse([long.as_str()]),
            Err((0, VhostError::Invalid))
        );
    }

    #[test]
    fn names_must_be_listed_and_ips_always_pass() {
        let l = VirtualHosts::default();
        for ok in [
            "localhost",
            "LOCALHOST:9545",
            "127.0.0.1",
            "127.0.0.1:9545",
            "[::1]",
            "[::1]:9545",
            "::1",
            "10.1.2.3:80",
            "",
        ] {
            assert!(l.allows(ok), "{ok:?}");
        }
        for bad in [
            "evil.example",
            "evil.example:9545",
            "localhost.evil.example",
            "localhost.",
            "127.0.0.1.nip.io",
        ] {
            assert!(!l.allows(bad), "{bad:?}");
        }
        assert!(VirtualHosts::any().allows("evil.example"));
        let only_ips = VirtualHosts::parse(Vec::<&str>::new()).unwrap();
        assert!(!only_ips.allows("localhost") && only_ips.allows("127.0.0.1:1"));
    }

    #[test]
    fn the_host_comes_from_the_absolute_target_or_the_single_host_header() {
        let l = VirtualHosts::default();
        let req = |version, hosts: &[&str], uri: &str| {
            let mut b = Request::post(uri).version(version);
            for h in hosts {
                b = b.header(header::HOST, *h);
            }
            b.body(()).unwrap()
        };
        let h11 = Version::HTTP_11;
        assert_eq!(l.check(&req(h11, &["localhost:1"], "/")), Ok(()));
        assert_eq!(
            l.check(&req(h11, &["evil.example"], "/")),
            Err(HostRefusal::NotAllowed)
        );
        // An absolute target's authority wins over the header (Go's rule).
        assert_eq!(
            l.check(&req(h11, &["localhost"], "http://evil.example/")),
            Err(HostRefusal::NotAllowed)
        );
        assert_eq!(
            l.check(&req(h11, &["evil.example"], "http://localhost:9545/")),
            Ok(())
        );
        assert_eq!(
            l.check(&req(h11, &[], "/")),
            Err(HostRefusal::BadRequest("missing required Host header"))
        );
        assert_eq!(l.check(&req(Version::HTTP_10, &[], "/")), Ok(()));
        assert_eq!(l.check(&req(h11, &[""], "/")), Ok(()));
        assert_eq!(
            l.check(&req(h11, &["localhost", "localhost"], "/")),
            Err(HostRefusal::BadRequest("too many Host headers"))
        );
        let mut odd = req(h11, &[], "/");
        odd.headers_mut().insert(
            header::HOST,
            HeaderValue::from_bytes(b"local host").unwrap(),
        );
        assert_eq!(
            l.check(&odd),
            Err(HostRefusal::BadRequest("malformed Host header"))
        );
    }
}
