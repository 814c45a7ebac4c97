//! op-node's `payload_by_number` server rate limits as plain state (spec §8).
//!
//! op-node uses `golang.org/x/time/rate` token buckets: a global one (20 requests/s, burst 40)
//! and one per peer (4/s, burst 15), and waits on them (global first, then the peer's) for at
//! most 20 s from the start of the request before giving up. A wait is a *reservation*: the
//! token is taken at once and the balance may go negative, so later requests queue behind it.
//! [`TokenBucket::reserve`] is that reservation with time as an input: it answers "now",
//! "wait until T" or "give up", and gives up without taking the token, as `rate.Limiter.Wait`
//! does when the wait would pass the deadline.
//!
//! Tokens are counted in integer milli-tokens and time in integer milliseconds: a rate of `r`
//! per second refills exactly `r` milli-tokens per millisecond, so there is no float drift.

use std::collections::BTreeMap;

use libp2p_identity::PeerId;

/// Requests per second served to all peers together (op-node `globalServerBlocksRateLimit`).
pub const GLOBAL_RATE_PER_SEC: u32 = 20;
/// Burst of the global bucket (op-node `globalServerBlocksBurst`).
pub const GLOBAL_BURST: u32 = 40;
/// Requests per second served to one peer (op-node `peerServerBlocksRateLimit`).
pub const PEER_RATE_PER_SEC: u32 = 4;
/// Burst of a peer's bucket (op-node `peerServerBlocksBurst`).
pub const PEER_BURST: u32 = 15;
/// Longest a request may wait for the rate limits, counted from its start; past it the server
/// gives up and answers 3 (op-node `maxThrottleDelay`, 20 s).
pub const MAX_THROTTLE_DELAY_MS: u64 = 20_000;
/// Default bound on per-peer buckets (op-node keeps an LRU of 1000).
pub const DEFAULT_MAX_PEERS: usize = 1000;

const MILLI: i128 = 1000;

/// What a rate limit says about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Serve it now; a token was taken.
    Now,
    /// A token was reserved: serve it at this time (Unix ms), not before.
    WaitUntil(u64),
    /// The wait would pass the deadline: no token was taken; answer 3 and close.
    GiveUp,
}

/// One token bucket: `rate_per_sec` tokens per second, at most `burst` held, starting full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    rate_per_sec: u32,
    burst: u32,
    /// Balance in milli-tokens at `last`; negative while reservations are outstanding.
    milli_tokens: i128,
    /// The latest time seen (Unix ms). Earlier times are read as this one.
    last: u64,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate_per_sec: u32, burst: u32, now: u64) -> Self {
        Self {
            rate_per_sec,
            burst,
            milli_tokens: i128::from(burst) * MILLI,
            last: now,
        }
    }

    fn cap(&self) -> i128 {
        i128::from(self.burst) * MILLI
    }

    /// Refills up to `now` (a clock going backwards refills nothing). Lossless: refilling in
    /// steps gives the same balance as refilling once, since the cap only ever cuts the top.
    fn advance(&mut self, now: u64) {
        if now <= self.last {
            return;
        }
        let elapsed = i128::from(now - self.last);
        let refill = elapsed * i128::from(self.rate_per_sec);
        self.milli_tokens = (self.milli_tokens + refill).min(self.cap());
        self.last = now;
    }

    /// The balance at `now` in milli-tokens (negative while reservations are queued).
    pub fn milli_tokens(&self, now: u64) -> i128 {
        let mut b = self.clone();
        b.advance(now);
        b.milli_tokens
    }

    /// Whether the bucket is back to its burst at `now`: it then holds no information a fresh
    /// bucket would not, and may be dropped.
    pub fn is_full(&self, now: u64) -> bool {
        self.milli_tokens(now) >= self.cap()
    }

    /// Reserves one token at `now`, to be used no later than `deadline` (Unix ms). Takes it and
    /// answers [`Admission::Now`] if one is there, else [`Admission::WaitUntil`] the earliest
    /// time the balance is back to zero, if that is no later than `deadline`; else gives up
    /// without taking it (also when `burst` is 0, or `rate` is 0 and the bucket is empty).
    pub fn reserve(&mut self, now: u64, deadline: u64) -> Admission {
        self.advance(now);
        let now = self.last;
        if self.burst == 0 {
            return Admission::GiveUp;
        }
        let after = self.milli_tokens - MILLI;
        if after >= 0 {
            self.milli_tokens = after;
            return Admission::Now;
        }
        if self.rate_per_sec == 0 {
            return Admission::GiveUp;
        }
        // Round up: at `now + wait` the balance has refilled to at least zero.
        let rate = i128::from(self.rate_per_sec);
        let wait = (-after + rate - 1) / rate;
        let at = u64::try_from(i128::from(now) + wait).unwrap_or(u64::MAX);
        if at > deadline {
            return Admission::GiveUp;
        }
        self.milli_tokens = after;
        Admission::WaitUntil(at)
    }
}

/// Rates, bursts and bounds of [`ServerRateLimits`]; the default is op-node's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Global requests per second.
    pub global_rate_per_sec: u32,
    /// Global burst.
    pub global_burst: u32,
    /// Per-peer requests per second.
    pub peer_rate_per_sec: u32,
    /// Per-peer burst.
    pub peer_burst: u32,
    /// Most per-peer buckets kept (at least 1).
    pub max_peers: usize,
    /// Longest wait from the start of a request before giving up (ms).
    pub max_throttle_delay_ms: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            global_rate_per_sec: GLOBAL_RATE_PER_SEC,
            global_burst: GLOBAL_BURST,
            peer_rate_per_sec: PEER_RATE_PER_SEC,
            peer_burst: PEER_BURST,
            max_peers: DEFAULT_MAX_PEERS,
            max_throttle_delay_ms: MAX_THROTTLE_DELAY_MS,
        }
    }
}

#[derive(Clone, Debug)]
struct PeerBucket {
    bucket: TokenBucket,
    last_used: u64,
}

/// The server's global and per-peer buckets.
///
/// Use per request, as op-node does: `deadline = self.deadline(start)`; [`Self::reserve_global`]
/// at `start`; once that lets the request through (at once or after waiting until the time it
/// names), [`Self::reserve_peer`] at that later time with the same deadline. On
/// [`Admission::GiveUp`] at either step answer 3 and close; a global token already taken stays
/// taken, as in op-node.
///
/// Bound: at most `max_peers` per-peer buckets. Eviction: [`Self::expire`] drops every bucket
/// that has refilled to its burst (lossless: a fresh bucket is identical); when a new peer
/// finds the map full, idle buckets are expired first and, if none is idle, the least recently
/// used bucket is dropped (that peer starts again with a full burst, as with op-node's LRU).
#[derive(Clone, Debug)]
pub struct ServerRateLimits {
    config: RateLimitConfig,
    global: TokenBucket,
    peers: BTreeMap<PeerId, PeerBucket>,
}

impl ServerRateLimits {
    /// Full buckets at `now`.
    pub fn new(config: RateLimitConfig, now: u64) -> Self {
        let config = RateLimitConfig {
            max_peers: config.max_peers.max(1),
            ..config
        };
        Self {
            global: TokenBucket::new(config.global_rate_per_sec, config.global_burst, now),
            peers: BTreeMap::new(),
            config,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> RateLimitConfig {
        self.config
    }

    /// The give-up deadline of a request that started at `start` (Unix ms).
    pub fn deadline(&self, start: u64) -> u64 {
        start.saturating_add(self.config.max_throttle_delay_ms)
    }

    /// Step 1: a token from the global bucket.
    pub fn reserve_global(&mut self, now: u64, deadline: u64) -> Admission {
        self.global.reserve(now, deadline)
    }

    /// Step 2: a token from `peer`'s bucket, created full if the peer has none.
    pub fn reserve_peer(&mut self, peer: PeerId, now: u64, deadline: u64) -> Admission {
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.config.max_peers {
            self.expire(now);
            if self.peers.len() >= self.config.max_peers {
                let lru = self
                    .peers
                    .iter()
                    .min_by_key(|(_, b)| b.last_used)
                    .map(|(p, _)| *p);
                if let Some(p) = lru {
                    tracing::debug!(peer = %p, "reqresp rate limit: evicting least recently used peer bucket");
                    self.peers.remove(&p);
                }
            }
        }
        let (rate, burst) = (self.config.peer_rate_per_sec, self.config.peer_burst);
        let entry = self.peers.entry(peer).or_insert_with(|| PeerBucket {
            bucket: TokenBucket::new(rate, burst, now),
            last_used: now,
        });
        entry.last_used = entry.last_used.max(now);
        entry.bucket.reserve(now, deadline)
    }

    /// Drops the per-peer buckets that are full again at `now`; returns how many.
    pub fn expire(&mut self, now: u64) -> usize {
        let before = self.peers.len();
        self.peers.retain(|_, b| !b.bucket.is_full(now));
        before - self.peers.len()
    }

    /// Per-peer buckets held.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;
    const FAR: u64 = u64::MAX;

    /// A deterministic secp256k1 peer id (`16Uiu2…`), distinct for each `i`.
    fn peer(i: u8) -> PeerId {
        let mut secret = [0u8; 32];
        secret[31] = i.wrapping_add(1);
        secret[0] = 0x42;
        let sk = libp2p_identity::secp256k1::SecretKey::try_from_bytes(&mut secret).unwrap();
        let kp = libp2p_identity::secp256k1::Keypair::from(sk);
        libp2p_identity::PublicKey::from(kp.public().clone()).to_peer_id()
    }

    #[test]
    fn global_burst_then_wait_then_exact_refill() {
        let mut b = TokenBucket::new(GLOBAL_RATE_PER_SEC, GLOBAL_BURST, T0);
        for _ in 0..40 {
            assert_eq!(b.reserve(T0, T0), Admission::Now);
        }
        // Empty: with no room to wait, give up and take nothing.
        assert_eq!(b.reserve(T0, T0 + 49), Admission::GiveUp);
        assert_eq!(b.milli_tokens(T0), 0);
        // One token every 50 ms at 20/s: the next reservations queue 50 ms apart.
        assert_eq!(b.reserve(T0, FAR), Admission::WaitUntil(T0 + 50));
        assert_eq!(b.reserve(T0, FAR), Admission::WaitUntil(T0 + 100));
        assert_eq!(b.milli_tokens(T0), -2000);
        // At +149 ms the balance is -2000 + 149 * 20 = 980 milli-tokens: not a whole token.
        assert_eq!(b.milli_tokens(T0 + 149), 980);
        assert_eq!(b.reserve(T0 + 149, FAR), Admission::WaitUntil(T0 + 150));
        assert_eq!(b.reserve(T0 + 200, FAR), Admission::Now);
        assert_eq!(b.milli_tokens(T0 + 200), 0);
        // Two seconds idle refills the whole burst and no more.
        assert_eq!(b.milli_tokens(T0 + 2200), 40_000);
        assert_eq!(b.milli_tokens(T0 + 100_000), 40_000);
        assert!(b.is_full(T0 + 2200));
        assert!(!b.is_full(T0 + 2199));
    }

    #[test]
    fn fractional_refill_is_exact_over_many_steps() {
        // 4/s: one token per 250 ms, refilled 1 ms at a time without drift.
        let mut b = TokenBucket::new(PEER_RATE_PER_SEC, PEER_BURST, T0);
        for _ in 0..15 {
            assert_eq!(b.reserve(T0, T0), Admission::Now);
        }
        for ms in 1..250 {
            assert_eq!(b.reserve(T0 + ms, T0 + ms), Admission::GiveUp);
            assert_eq!(b.milli_tokens(T0 + ms), ms as i128 * 4);
        }
        assert_eq!(b.reserve(T0 + 250, T0 + 250), Admission::Now);
        assert_eq!(b.reserve(T0 + 250, FAR), Admission::WaitUntil(T0 + 500));
    }

    #[test]
    fn deadline_is_inclusive_and_give_up_takes_nothing() {
        let mut b = TokenBucket::new(4, 1, T0);
        assert_eq!(b.reserve(T0, T0), Admission::Now);
        assert_eq!(b.reserve(T0, T0 + 249), Admission::GiveUp);
        assert_eq!(b.reserve(T0, T0 + 250), Admission::WaitUntil(T0 + 250));
        // Queued behind that reservation: 500 ms.
        assert_eq!(b.reserve(T0, T0 + 499), Admission::GiveUp);
        assert_eq!(b.reserve(T0, T0 + 500), Admission::WaitUntil(T0 + 500));
    }

    #[test]
    fn degenerate_buckets_and_clock_going_back() {
        assert_eq!(
            TokenBucket::new(4, 0, T0).reserve(T0, FAR),
            Admission::GiveUp
        );
        let mut b = TokenBucket::new(0, 1, T0);
        assert_eq!(b.reserve(T0, FAR), Admission::Now);
        assert_eq!(b.reserve(T0 + 1_000_000, FAR), Admission::GiveUp);
        // A clock that goes back refills nothing and is read as the latest time.
        let mut b = TokenBucket::new(4, 1, T0);
        assert_eq!(b.reserve(T0 + 1000, FAR), Admission::Now);
        assert_eq!(b.reserve(T0, FAR), Admission::WaitUntil(T0 + 1250));
        // Huge gaps neither overflow nor exceed the burst.
        let mut b = TokenBucket::new(u32::MAX, u32::MAX, 0);
        assert_eq!(b.reserve(u64::MAX, u64::MAX), Admission::Now);
        assert_eq!(b.milli_tokens(u64::MAX), i128::from(u32::MAX) * 1000 - 1000);
    }

    #[test]
    fn server_waits_up_to_twenty_seconds() {
        let mut l = ServerRateLimits::new(RateLimitConfig::default(), T0);
        let deadline = l.deadline(T0);
        assert_eq!(deadline, T0 + MAX_THROTTLE_DELAY_MS);
        let peer = peer(0);
        for _ in 0..15 {
            assert_eq!(l.reserve_global(T0, deadline), Admission::Now);
            assert_eq!(l.reserve_peer(peer, T0, deadline), Admission::Now);
        }
        // The peer bucket is empty: 4/s, so the k-th extra request waits k * 250 ms.
        assert_eq!(l.reserve_global(T0, deadline), Admission::Now);
        assert_eq!(
            l.reserve_peer(peer, T0, deadline),
            Admission::WaitUntil(T0 + 250)
        );
        for k in 2..=80u64 {
            assert_eq!(
                l.reserve_peer(peer, T0, deadline),
                Admission::WaitUntil(T0 + k * 250)
            );
        }
        // The 81st extra would wait 20.25 s: give up.
        assert_eq!(l.reserve_peer(peer, T0, deadline), Admission::GiveUp);
    }

    #[test]
    fn global_limit_spans_peers_and_peers_are_independent() {
        let mut l = ServerRateLimits::new(RateLimitConfig::default(), T0);
        let d = l.deadline(T0);
        let (a, b) = (peer(1), peer(2));
        for _ in 0..15 {
            assert_eq!(l.reserve_peer(a, T0, d), Admission::Now);
        }
        assert_eq!(l.reserve_peer(a, T0, d), Admission::WaitUntil(T0 + 250));
        // Peer b is unaffected by a's exhaustion.
        assert_eq!(l.reserve_peer(b, T0, d), Admission::Now);
        assert_eq!(l.peer_count(), 2);
        // The global bucket counts both: 40 at once, then one per 50 ms.
        for _ in 0..40 {
            assert_eq!(l.reserve_global(T0, d), Admission::Now);
        }
        assert_eq!(l.reserve_global(T0, d), Admission::WaitUntil(T0 + 50));
        assert_eq!(l.reserve_global(T0, T0 + 99), Admission::GiveUp);
    }

    #[test]
    fn expire_drops_only_refilled_buckets() {
        let mut l = ServerRateLimits::new(RateLimitConfig::default(), T0);
        let (a, b) = (peer(1), peer(2));
        assert_eq!(l.reserve_peer(a, T0, FAR), Admission::Now);
        for _ in 0..15 {
            l.reserve_peer(b, T0, FAR);
        }
        // a is full again after 250 ms, b (15 tokens short) after 3.75 s.
        assert_eq!(l.expire(T0 + 249), 0);
        assert_eq!(l.expire(T0 + 250), 1);
        assert_eq!(l.peer_count(), 1);
        assert_eq!(l.expire(T0 + 3749), 0);
        assert_eq!(l.expire(T0 + 3750), 1);
        assert_eq!(l.peer_count(), 0);
    }

    #[test]
    fn peer_map_is_bounded() {
        let cfg = RateLimitConfig {
            max_peers: 3,
            ..RateLimitConfig::default()
        };
        let mut l = ServerRateLimits::new(cfg, T0);
        let peers: Vec<PeerId> = (0..10).map(peer).collect();
        assert!(peers[0].to_string().starts_with("16Uiu2"));
        // Drain each peer's burst so no bucket is idle.
        for (i, p) in peers.iter().enumerate() {
            let now = T0 + i as u64;
            for _ in 0..15 {
                l.reserve_peer(*p, now, FAR);
            }
            assert!(l.peer_count() <= 3);
        }
        assert_eq!(l.peer_count(), 3);
        // The least recently used went first: peers 7, 8, 9 remain, so peer 9 is still empty
        // while the evicted peer 0 comes back with a fresh burst.
        assert!(matches!(
            l.reserve_peer(peers[9], T0 + 10, FAR),
            Admission::WaitUntil(_)
        ));
        assert_eq!(l.reserve_peer(peers[0], T0 + 10, FAR), Admission::Now);
        assert_eq!(l.peer_count(), 3);
        // When a bucket is idle, a newcomer expires it instead of evicting an active one.
        let mut l = ServerRateLimits::new(cfg, T0);
        l.reserve_peer(peers[0], T0, FAR); // full again at T0 + 250
        for p in &peers[1..3] {
            for _ in 0..15 {
                l.reserve_peer(*p, T0 + 100, FAR);
            }
        }
        assert_eq!(l.reserve_peer(peers[3], T0 + 300, FAR), Admission::Now);
        assert_eq!(l.peer_count(), 3);
        assert!(matches!(
            l.reserve_peer(peers[1], T0 + 300, FAR),
            Admission::WaitUntil(_)
        ));
        assert!(matches!(
            l.reserve_peer(peers[2], T0 + 300, FAR),
            Admission::WaitUntil(_)
        ));
    }
}
