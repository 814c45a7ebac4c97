//! How fast one source may open inbound connections: a token bucket per IPv4 address and per
//! IPv6 /64, consulted by [`crate::peers::gater::Gater::allow_accept`] before the handshake.
//!
//! Bans and caps bound what one *identity* can do, and an IP ban bounds a non-loopback address
//! after its first offence. What they do not bound is the rate of fresh identities from a source
//! that is never IP-banned (loopback when it is not exempt, an IPv6 host rotating through its
//! /64, an address of a protected peer): each fresh key pays one handshake and then floods until
//! its own ban. Charging a token per accepted TCP connection bounds that churn in identities per
//! minute, whatever happens after the accept. A source is an IPv4 address or an IPv6 /64 (what
//! one host normally gets), so rotating addresses inside a /64 buys nothing.
//!
//! Honest peers reconnect a few times an hour; the default burst ([`DEFAULT_ACCEPT_BURST`])
//! covers a restart of every node behind one NAT address at once, and the refill
//! ([`DEFAULT_ACCEPT_REFILL_MS`]) a steady reconnect every few seconds.
//!
//! Bounded: at most [`AcceptRate::MAX_SOURCES`] sources are remembered. When the table is full,
//! sources whose bucket has refilled are forgotten first (they would start full anyway); if
//! none has, the one with the most tokens left (the least limited), so the sources being held
//! back are the last to go. Making room scans the table (O(sources)), only when it is full. An
//! attacker with more addresses than the bound can reset its own buckets, but every address it
//! owns already buys it a fresh burst.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

/// Default number of inbound connections a source may open back to back.
pub const DEFAULT_ACCEPT_BURST: u32 = 16;

/// Default time for one more inbound connection to become available to a source, in ms
/// (15 per minute sustained).
pub const DEFAULT_ACCEPT_REFILL_MS: u64 = 4_000;

/// The key a source is counted under: an IPv4 address, or the /64 of an IPv6 address (the
/// address with its low 64 bits cleared). IPv4-mapped IPv6 addresses count as IPv4.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens left as of `at`.
    tokens: u32,
    /// When `tokens` was last brought up to date (ms, the caller's clock).
    at: u64,
}

/// Per-source token buckets for inbound connections. Pure: the caller passes `now` (ms).
#[derive(Debug, Clone)]
pub struct AcceptRate {
    burst: u32,
    refill_ms: u64,
    buckets: HashMap<IpAddr, Bucket>,
}

impl AcceptRate {
    /// Most sources remembered at once.
    pub const MAX_SOURCES: usize = 4096;

    /// Buckets of `burst` tokens, one token back every `refill_ms`. A `burst` of 0 or a
    /// `refill_ms` of 0 turns the limit off ([`AcceptRate::try_accept`] always allows).
    pub fn new(burst: u32, refill_ms: u64) -> Self {
        Self {
            burst,
            refill_ms,
            buckets: HashMap::new(),
        }
    }

    /// Whether the limit is on.
    pub fn enabled(&self) -> bool {
        self.burst > 0 && self.refill_ms > 0
    }

    /// Sources currently remembered.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no source is remembered.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Charges one inbound connection from `ip` at `now`: true when the source had a token
    /// left (the connection may proceed), false when it is over its rate. A refused attempt
    /// costs no token, so a source that stops trying gets its burst back in
    /// `burst × refill_ms`.
    pub fn try_accept(&mut self, now: u64, ip: IpAddr) -> bool {
        if !self.enabled() {
            return true;
        }
        let key = source_key(ip);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= Self::MAX_SOURCES {
            self.make_room(now);
        }
        let (burst, refill_ms) = (self.burst, self.refill_ms);
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        refill(bucket, now, burst, refill_ms);
        if bucket.tokens == 0 {
            return false;
        }
        bucket.tokens -= 1;
        true
    }

    /// Forgets every source whose bucket is full again; if none is, the one with the most
    /// tokens (the oldest of those).
    fn make_room(&mut self, now: u64) {
        let (burst, refill_ms) = (self.burst, self.refill_ms);
        self.buckets.retain(|_, b| {
            refill(b, now, burst, refill_ms);
            b.tokens < burst
        });
        if self.buckets.len() >= Self::MAX_SOURCES {
            let least_limited = self
                .buckets
                .iter()
                .max_by_key(|(_, b)| (b.tokens, std::cmp::Reverse(b.at)))
                .map(|(k, _)| *k);
            if let Some(k) = least_limited {
                self.buckets.remove(&k);
            }
        }
    }
}

impl Default for AcceptRate {
    fn default() -> Self {
        Self::new(DEFAULT_ACCEPT_BURST, DEFAULT_ACCEPT_REFILL_MS)
    }
}

/// Adds the tokens earned since `b.at` (whole refill periods only, so the remainder keeps
/// counting), capped at `burst`. A clock that went backwards earns nothing.
fn refill(b: &mut Bucket, now: u64, burst: u32, refill_ms: u64) {
    let elapsed = now.saturating_sub(b.at);
    let earned = elapsed / refill_ms;
    if earned == 0 {
        if now < b.at {
            b.at = now;
        }
        return;
    }
    let tokens = u64::from(b.tokens).saturating_add(earned);
    if tokens >= u64::from(burst) {
        b.tokens = burst;
        b.at = now;
    } else {
        b.tokens = tokens as u32;
        b.at += earned * refill_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_gets_its_burst_then_one_per_refill() {
        let mut r = AcceptRate::new(3, 1_000);
        let a = ip("198.51.100.7");
        assert!((0..3).all(|_| r.try_accept(10_000, a)));
        assert!(!r.try_accept(10_000, a));
        assert!(!r.try_accept(10_999, a));
        assert!(r.try_accept(11_000, a));
        assert!(!r.try_accept(11_500, a));
        // Refused attempts cost nothing: after 3 s idle the whole burst is back.
        assert!((0..3).all(|_| r.try_accept(14_000, a)));
        assert!(!r.try_accept(14_000, a));
    }

    #[test]
    fn sources_are_independent() {
        let mut r = AcceptRate::new(2, 60_000);
        let (a, b) = (ip("198.51.100.7"), ip("198.51.100.8"));
        assert!(r.try_accept(0, a) && r.try_accept(0, a));
        assert!(!r.try_accept(0, a));
        assert!(r.try_accept(0, b));
    }

    #[test]
    fn an_ipv6_host_rotating_in_its_64_shares_one_bucket() {
        let mut r = AcceptRate::new(2, 60_000);
        assert!(r.try_accept(0, ip("2001:db8:1:2::1")));
        assert!(r.try_accept(0, ip("2001:db8:1:2:ffff::9")));
        assert!(!r.try_accept(0, ip("2001:db8:1:2:abcd:1:2:3")));
        // The next /64 is another source.
        assert!(r.try_accept(0, ip("2001:db8:1:3::1")));
        // IPv4-mapped IPv6 is its IPv4 address.
        assert_eq!(source_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn zero_turns_the_limit_off() {
        for mut r in [AcceptRate::new(0, 1_000), AcceptRate::new(5, 0)] {
            assert!((0..1_000).all(|_| r.try_accept(0, ip("192.0.2.1"))));
            assert!(r.is_empty());
        }
    }

    #[test]
    fn a_clock_going_back_earns_nothing() {
        let mut r = AcceptRate::new(1, 1_000);
        let a = ip("192.0.2.1");
        assert!(r.try_accept(50_000, a));
        assert!(!r.try_accept(10_000, a));
        assert!(!r.try_accept(10_999, a));
        assert!(r.try_accept(11_000, a));
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_the_sources_it_is_limiting() {
        let mut r = AcceptRate::new(2, 1_000);
        let attacker = ip("192.0.2.1");
        assert!(r.try_accept(0, attacker) && r.try_accept(0, attacker));
        // Many more sources than the bound, each charged once, within one refill period.
        for i in 0..(AcceptRate::MAX_SOURCES as u32 * 2) {
            let src = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(r.try_accept(500, src));
            assert!(r.len() <= AcceptRate::MAX_SOURCES);
        }
        // The flood did not push the limited source out: it is still refused.
        assert!(!r.try_accept(500, attacker));
        // Later the idle sources have refilled and are forgotten first; the attacker earned one.
        assert!(r.try_accept(1_000, attacker));
        assert!(!r.try_accept(1_000, attacker));
    }

    proptest! {
        /// Over any window, a source gets at most burst + window / refill accepts.
        #[test]
        fn never_more_than_burst_plus_refills(
            steps in proptest::collection::vec((0u64..5_000, any::<bool>()), 1..300),
            burst in 1u32..20,
            refill_ms in 1u64..3_000,
        ) {
            let mut r = AcceptRate::new(burst, refill_ms);
            let mut now = 1_000_000u64;
            let start = now;
            let mut accepted = 0u64;
            for (dt, other) in steps {
                now += dt;
                let src = if other { ip("192.0.2.2") } else { ip("192.0.2.1") };
                if r.try_accept(now, src) && !other {
                    accepted += 1;
                }
            }
            prop_assert!(accepted <= u64::from(burst) + (now - start) / refill_ms);
        }
    }
}
