//! The connection gater (spec §9): which dials, inbound connections and established connections
//! the node lets through.
//!
//! A pure, bounded state machine. It holds:
//! - **permanent blocks** of peer ids, IPs and CIDR subnets, set by the admin RPC (§10) and
//!   persisted through [`Gater::export`] / [`Gater::import`];
//! - **timed bans** of peers and IPs with an expiry in Unix milliseconds, set by the node's ban
//!   policy, lifted by [`Gater::expire`] on ticks (and treated as lifted on read once due);
//! - the **connected peers** with their IP, for the anti-sybil caps (peers per IP, peers per
//!   subnet).
//!
//! Three decisions answer libp2p's connection hooks synchronously: [`Gater::allow_dial`]
//! (outbound, before dialling), [`Gater::allow_accept`] (inbound, by remote IP, before the
//! handshake) and [`Gater::allow_established`] (after the handshake, by peer id, IP and
//! direction). Every decision is counted in [`GaterStats`].
//!
//! A dial to an address learned from the network must also pass the address policy
//! ([`crate::peers::netpolicy`]: the operator's netrestrict list, or public addresses only);
//! one the operator gave does not ([`AddrOrigin`]).
//!
//! Inbound is gated as strictly as outbound: every block and every ban of a peer or an IP is
//! checked on every path where that peer or IP is known. This is stricter than op-node, which
//! checks peer bans only on dial and inbound-secured and IP bans only on dial and accept; it
//! refuses nothing op-node's own rules would let a banned party keep.
//!
//! Blocking or banning does **not** by itself close existing connections (as in op-node); the
//! Node decides, for example by closing every peer [`Gater::violations`] lists.
//!
//! IP addresses are canonicalised before every use: an IPv4-mapped IPv6 address
//! (`::ffff:1.2.3.4`) is the IPv4 address `1.2.3.4`, as Go's `net.IP` treats it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use crate::peers::accept_rate::AcceptRate;
use crate::peers::netpolicy::{AddrRefusal, NetPolicy};

/// Default cap on connected peers sharing one IP. op-node's gossipsub scoring penalises IP
/// colocation above 10 peers per IP (`IPColocationFactorThreshold`), so a hard cap of 10 never
/// refuses a peer op-node's own scoring tolerates, while one IP can take at most a third of
/// op-node's default 30-peer high water mark.
pub const DEFAULT_MAX_PEERS_PER_IP: usize = 10;

/// Default cap on connected peers in one subnet (/24 IPv4, /64 IPv6): two hosts at the per-IP
/// cap (a pair of nodes in one cloud range), while still leaving a third of op-node's default
/// 30-peer high water mark to other networks.
pub const DEFAULT_MAX_PEERS_PER_SUBNET: usize = 20;

/// Prefix length of the IPv4 subnet the subnet cap groups by: a /24 is the usual smallest unit
/// one operator gets.
pub const DEFAULT_SUBNET_PREFIX_V4: u8 = 24;

/// Prefix length of the IPv6 subnet the subnet cap groups by: a /64 is what one host or one site
/// normally gets, so it counts like one IPv4 /24.
pub const DEFAULT_SUBNET_PREFIX_V6: u8 = 64;

/// Default bound on permanently blocked peer ids (admin-set; operators block a handful).
pub const DEFAULT_MAX_BLOCKED_PEERS: usize = 4096;
/// Default bound on permanently blocked IPs (admin-set).
pub const DEFAULT_MAX_BLOCKED_IPS: usize = 4096;
/// Default bound on permanently blocked subnets (admin-set; checked linearly per decision, so
/// smaller than the other lists).
pub const DEFAULT_MAX_BLOCKED_SUBNETS: usize = 1024;
/// Default bound on live timed peer bans. op-node's ban monitor checks one connected peer per
/// second and bans for 1 h, so it alone leaves at most 3,600 bans live. A ban on invalid gossip
/// is not paced (see [`crate::peers::score_ban`]): each one costs the banned party a connection
/// the gater let through and about 17 invalid messages, and its IP ban refuses further
/// identities from that IP. A full list makes room by dropping the ban that ends first
/// ([`Gater::ban_peer`]).
pub const DEFAULT_MAX_PEER_BANS: usize = 4096;
/// Default bound on live timed IP bans (same reasoning as [`DEFAULT_MAX_PEER_BANS`]: one per
/// peer banned for invalid gossip from a non-loopback IP, at most).
pub const DEFAULT_MAX_IP_BANS: usize = 4096;

/// Which side opened a connection (shared with the peer book).
pub use crate::peers::book::Direction;

/// Where the address of a dial came from, which decides whether the address policy
/// ([`GaterConfig::netrestrict`], [`crate::peers::netpolicy`]) applies. Blocks and bans apply
/// either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrOrigin {
    /// Learned from the network: discovery records, identify listen addresses, the peer book
    /// built from them. Anyone can put any address there, so the policy applies.
    Network,
    /// Given by the operator: a static peer's configured address, the address of an
    /// `opp2p_connectPeer` call (the admin API, on loopback). The policy does not apply.
    Operator,
}

/// Why the gater refused a connection. The label ([`DenyReason::as_str`]) is stable, for logs
/// and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The peer id is permanently blocked.
    PeerBlocked,
    /// The peer id has a live timed ban.
    PeerBanned,
    /// The IP is permanently blocked.
    IpBlocked,
    /// The IP lies in a permanently blocked subnet.
    SubnetBlocked,
    /// The IP has a live timed ban.
    IpBanned,
    /// The connected-peer table is full (the gater's `max_connected`).
    PeerLimit,
    /// The IP already has [`GaterConfig::max_peers_per_ip`] connected peers.
    IpLimit,
    /// The IP's subnet already has [`GaterConfig::max_peers_per_subnet`] connected peers.
    SubnetLimit,
    /// A dial to an address learned from the network, outside [`GaterConfig::netrestrict`].
    NetRestrict,
    /// A dial to an address learned from the network, in a special-purpose range (loopback,
    /// private, link-local, …; see [`crate::peers::netpolicy::non_public`]) with no
    /// [`GaterConfig::netrestrict`] list set.
    NonPublicAddr,
    /// The source (IPv4 address or IPv6 /64) opened inbound connections faster than
    /// [`GaterConfig::accept_burst`] / [`GaterConfig::accept_refill_ms`] allow (see
    /// [`crate::peers::accept_rate`]).
    AcceptRate,
}

impl DenyReason {
    /// Every reason, in a fixed order (the order of the counters in [`DecisionCounts`]).
    pub const ALL: [DenyReason; 11] = [
        DenyReason::PeerBlocked,
        DenyReason::PeerBanned,
        DenyReason::IpBlocked,
        DenyReason::SubnetBlocked,
        DenyReason::IpBanned,
        DenyReason::PeerLimit,
        DenyReason::IpLimit,
        DenyReason::SubnetLimit,
        DenyReason::NetRestrict,
        DenyReason::NonPublicAddr,
        DenyReason::AcceptRate,
    ];

    /// A stable snake_case label.
    pub const fn as_str(self) -> &'static str {
        match self {
            DenyReason::PeerBlocked => "peer_blocked",
            DenyReason::PeerBanned => "peer_banned",
            DenyReason::IpBlocked => "ip_blocked",
            DenyReason::SubnetBlocked => "subnet_blocked",
            DenyReason::IpBanned => "ip_banned",
            DenyReason::PeerLimit => "peer_limit",
            DenyReason::IpLimit => "ip_limit",
            DenyReason::SubnetLimit => "subnet_limit",
            DenyReason::NetRestrict => "netrestrict",
            DenyReason::NonPublicAddr => "non_public_addr",
            DenyReason::AcceptRate => "accept_rate",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A gating decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let the connection through.
    Allow,
    /// Refuse it, for this reason.
    Deny(DenyReason),
}

impl Decision {
    /// Whether the connection may go ahead (the `allow` label of op-node's `p2p_dials` and
    /// `p2p_accepts` metrics).
    pub const fn is_allow(self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Counts of one kind of decision: allowed, and denied per [`DenyReason`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionCounts {
    /// Decisions that allowed.
    pub allowed: u64,
    denied: [u64; DenyReason::ALL.len()],
}

impl DecisionCounts {
    fn count(&mut self, decision: Decision) {
        match decision {
            Decision::Allow => self.allowed = self.allowed.saturating_add(1),
            Decision::Deny(r) => {
                let c = &mut self.denied[r.index()];
                *c = c.saturating_add(1);
            }
        }
    }

    /// Decisions denied for this reason.
    pub fn denied(&self, reason: DenyReason) -> u64 {
        self.denied[reason.index()]
    }

    /// Decisions denied for any reason (op-node's `allow="false"`).
    pub fn denied_total(&self) -> u64 {
        self.denied.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Every reason with its count.
    pub fn denied_by_reason(&self) -> impl Iterator<Item = (DenyReason, u64)> + '_ {
        DenyReason::ALL
            .iter()
            .copied()
            .zip(self.denied.iter().copied())
    }
}

/// What the gater has decided and lifted; the runtime exports these as metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GaterStats {
    /// [`Gater::allow_dial`] decisions (op-node `p2p_dials{allow}`).
    pub dials: DecisionCounts,
    /// [`Gater::allow_accept`] decisions (op-node `p2p_accepts{allow}`).
    pub accepts: DecisionCounts,
    /// [`Gater::allow_established`] decisions.
    pub established: DecisionCounts,
    /// Timed peer bans lifted by [`Gater::expire`] (op-node `p2p_peer_unbans`).
    pub peer_unbans: u64,
    /// Timed IP bans lifted by [`Gater::expire`] (op-node `p2p_ip_unbans`).
    pub ip_unbans: u64,
}

/// Gater settings. [`GaterConfig::default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaterConfig {
    /// Most connected peers sharing one IP; `usize::MAX` disables the cap.
    pub max_peers_per_ip: usize,
    /// Most connected peers in one subnet; `usize::MAX` disables the cap.
    pub max_peers_per_subnet: usize,
    /// IPv4 subnet prefix for the subnet cap (clamped to 0..=32).
    pub subnet_prefix_v4: u8,
    /// IPv6 subnet prefix for the subnet cap (clamped to 0..=128).
    pub subnet_prefix_v6: u8,
    /// Loopback peers (127.0.0.0/8, ::1) skip the per-IP and per-subnet caps, and the per-subnet
    /// quotas of the peer book and the discovery table ([`quota_subnet`]), so local devnets
    /// and simulations with many nodes on one host work. Blocks and bans still apply.
    ///
    /// Off by default: on a production host every local process (a sidecar, a compromised
    /// container sharing the network namespace, an SSH tunnel) connects from 127.0.0.1, and
    /// with the exemption one of them could take every connection slot. Local devnets, the
    /// benchmark, `NodeConfig::local` and the test fixtures turn it on explicitly.
    pub exempt_loopback_from_caps: bool,
    /// op-node's `--p2p.netrestrict`: when set, addresses learned from the network are dialled
    /// only inside these ranges; when `None`, only outside the special-purpose ranges
    /// (loopback, private, link-local, …). Addresses the operator gave are exempt. See
    /// [`crate::peers::netpolicy`]. Local devnets and tests set `127.0.0.0/8`.
    pub netrestrict: Option<Vec<IpNet>>,
    /// Inbound connections one source (IPv4 address, IPv6 /64) may open back to back, before
    /// the handshake ([`crate::peers::accept_rate`]); 0 turns the rate limit off. Loopback is
    /// limited unless [`GaterConfig::exempt_loopback_from_caps`].
    pub accept_burst: u32,
    /// Time for one more inbound connection to become available to a source, in ms; 0 turns
    /// the rate limit off.
    pub accept_refill_ms: u64,
    /// Bound on permanently blocked peer ids.
    pub max_blocked_peers: usize,
    /// Bound on permanently blocked IPs.
    pub max_blocked_ips: usize,
    /// Bound on permanently blocked subnets.
    pub max_blocked_subnets: usize,
    /// Bound on live timed peer bans.
    pub max_peer_bans: usize,
    /// Bound on live timed IP bans.
    pub max_ip_bans: usize,
}

impl Default for GaterConfig {
    fn default() -> Self {
        Self {
            max_peers_per_ip: DEFAULT_MAX_PEERS_PER_IP,
            max_peers_per_subnet: DEFAULT_MAX_PEERS_PER_SUBNET,
            subnet_prefix_v4: DEFAULT_SUBNET_PREFIX_V4,
            subnet_prefix_v6: DEFAULT_SUBNET_PREFIX_V6,
            exempt_loopback_from_caps: false,
            netrestrict: None,
            accept_burst: crate::peers::accept_rate::DEFAULT_ACCEPT_BURST,
            accept_refill_ms: crate::peers::accept_rate::DEFAULT_ACCEPT_REFILL_MS,
            max_blocked_peers: DEFAULT_MAX_BLOCKED_PEERS,
            max_blocked_ips: DEFAULT_MAX_BLOCKED_IPS,
            max_blocked_subnets: DEFAULT_MAX_BLOCKED_SUBNETS,
            max_peer_bans: DEFAULT_MAX_PEER_BANS,
            max_ip_bans: DEFAULT_MAX_IP_BANS,
        }
    }
}

/// One of the gater's bounded lists, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Permanently blocked peer ids.
    BlockedPeers,
    /// Permanently blocked IPs.
    BlockedIps,
    /// Permanently blocked subnets.
    BlockedSubnets,
    /// Timed peer bans.
    PeerBans,
    /// Timed IP bans.
    IpBans,
    /// Connected peers.
    ConnectedPeers,
}

impl fmt::Display for ListKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListKind::BlockedPeers => "blocked peers",
            ListKind::BlockedIps => "blocked IPs",
            ListKind::BlockedSubnets => "blocked subnets",
            ListKind::PeerBans => "peer bans",
            ListKind::IpBans => "IP bans",
            ListKind::ConnectedPeers => "connected peers",
        })
    }
}

/// A gater call that could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GaterError {
    /// Adding an entry would exceed the list's bound; nothing was changed.
    #[error("{list} list is full ({max} entries)")]
    Full {
        /// The list.
        list: ListKind,
        /// Its bound.
        max: usize,
    },
    /// An imported snapshot holds more entries than the list's bound; nothing was imported.
    #[error("imported {list} has {len} entries, more than the bound of {max}")]
    ImportTooLarge {
        /// The list.
        list: ListKind,
        /// Entries in the snapshot.
        len: usize,
        /// The bound.
        max: usize,
    },
}

/// A timed peer ban, as exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerBan {
    /// The banned peer.
    pub peer: PeerId,
    /// Unix milliseconds from which the ban no longer applies.
    pub until_ms: u64,
}

/// A timed IP ban, as exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpBan {
    /// The banned IP.
    pub ip: IpAddr,
    /// Unix milliseconds from which the ban no longer applies.
    pub until_ms: u64,
}

/// The gater's persistent state as plain data (permanent blocks and live bans), for the runtime
/// to write to disk. Peer ids serialise as base58 strings, IPs and subnets as text
/// (`"10.0.0.0/8"`) in human-readable formats such as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaterSnapshot {
    /// Permanently blocked peer ids.
    #[serde(default)]
    pub blocked_peers: Vec<PeerId>,
    /// Permanently blocked IPs.
    #[serde(default)]
    pub blocked_ips: Vec<IpAddr>,
    /// Permanently blocked subnets.
    #[serde(default)]
    pub blocked_subnets: Vec<IpNet>,
    /// Timed peer bans.
    #[serde(default)]
    pub peer_bans: Vec<PeerBan>,
    /// Timed IP bans.
    #[serde(default)]
    pub ip_bans: Vec<IpBan>,
}

/// What [`Gater::import`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Bans in the snapshot that had already expired, dropped.
    pub expired_bans_dropped: usize,
}

/// Timed bans lifted by [`Gater::expire`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unbanned {
    /// Peers whose ban was lifted, in peer id order.
    pub peers: Vec<PeerId>,
    /// IPs whose ban was lifted, in address order.
    pub ips: Vec<IpAddr>,
}

impl Unbanned {
    /// Whether nothing was lifted.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty() && self.ips.is_empty()
    }
}

#[derive(Debug, Clone, Copy)]
struct ConnectedPeer {
    ip: Option<IpAddr>,
    direction: Direction,
}

/// The connection gater. See the module docs.
///
/// Bounds (each set in [`GaterConfig`]): blocked peers, IPs and subnets and the two ban lists
/// refuse new entries when full ([`GaterError::Full`]); nothing is evicted, since dropping a
/// block or ban silently would let a blocked party back in. Expired bans leave on
/// [`Gater::expire`]. The connected-peer table holds at most `max_connected` peers, and
/// its per-IP and per-subnet counters hold at most one entry per tracked peer each.
#[derive(Debug, Clone)]
pub struct Gater {
    config: GaterConfig,
    /// Bound on tracked connected peers: [`Gater::allow_established`] refuses a new peer beyond
    /// it ([`DenyReason::PeerLimit`]) and [`Gater::on_connected`] refuses to track one.
    max_connected: usize,
    blocked_peers: BTreeSet<PeerId>,
    blocked_ips: BTreeSet<IpAddr>,
    blocked_subnets: BTreeSet<IpNet>,
    peer_bans: Bans<PeerId>,
    ip_bans: Bans<IpAddr>,
    connected: BTreeMap<PeerId, ConnectedPeer>,
    per_ip: BTreeMap<IpAddr, usize>,
    per_subnet: BTreeMap<IpNet, usize>,
    policy: NetPolicy,
    accept_rate: AcceptRate,
    stats: GaterStats,
}

impl Default for Gater {
    fn default() -> Self {
        Self::new(
            GaterConfig::default(),
            crate::peers::tides::ConnConfig::default().max_connected(0),
        )
    }
}

/// Canonical form of an IP: IPv4-mapped IPv6 becomes IPv4 (as Go's `net.IP` treats it).
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The subnet the peer book's and the discovery table's per-subnet quotas group `ip` in: its
/// /24 ([`DEFAULT_SUBNET_PREFIX_V4`]) or /64 ([`DEFAULT_SUBNET_PREFIX_V6`]), after
/// [`canonical_ip`]. `None` (not counted) for loopback when `exempt_loopback`: many nodes on
/// one host, see [`GaterConfig::exempt_loopback_from_caps`].
pub fn quota_subnet(ip: IpAddr, exempt_loopback: bool) -> Option<IpNet> {
    let ip = canonical_ip(ip);
    if exempt_loopback && ip.is_loopback() {
        return None;
    }
    let prefix = match ip {
        IpAddr::V4(_) => DEFAULT_SUBNET_PREFIX_V4,
        IpAddr::V6(_) => DEFAULT_SUBNET_PREFIX_V6,
    };
    IpNet::new(ip, prefix).ok().map(|n| n.trunc())
}

/// Canonical form of a subnet: host bits cleared, and an IPv6 subnet inside the IPv4-mapped
/// range `::ffff:0:0/96` rewritten as the IPv4 subnet it covers (so it matches canonical IPs).
pub fn canonical_subnet(net: IpNet) -> IpNet {
    let net = net.trunc();
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && let Ok(n) = IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96)
    {
        return n.trunc();
    }
    net
}

impl Gater {
    /// A gater with no blocks, bans or peers, tracking at most `max_connected` connected peers
    /// (the node passes its one hard limit, [`crate::peers::tides::ConnConfig::max_connected`]).
    /// Subnet prefixes are clamped to the address size.
    pub fn new(mut config: GaterConfig, max_connected: usize) -> Self {
        config.subnet_prefix_v4 = config.subnet_prefix_v4.min(32);
        config.subnet_prefix_v6 = config.subnet_prefix_v6.min(128);
        let policy = NetPolicy::new(config.netrestrict.as_deref());
        Self {
            policy,
            accept_rate: AcceptRate::new(config.accept_burst, config.accept_refill_ms),
            config,
            max_connected,
            blocked_peers: BTreeSet::new(),
            blocked_ips: BTreeSet::new(),
            blocked_subnets: BTreeSet::new(),
            peer_bans: Bans::default(),
            ip_bans: Bans::default(),
            connected: BTreeMap::new(),
            per_ip: BTreeMap::new(),
            per_subnet: BTreeMap::new(),
            stats: GaterStats::default(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &GaterConfig {
        &self.config
    }

    /// The decision counters.
    pub fn stats(&self) -> &GaterStats {
        &self.stats
    }

    // ---- decisions ----------------------------------------------------------------------

    /// Outbound: may we dial `peer` (at `ip`, when the address is known)? Checks the peer's
    /// blocks and bans, and the IP's when given; an address learned from the network
    /// ([`AddrOrigin::Network`]) must also pass the address policy ([`Gater::addr_rules`]).
    /// The caps are not checked here: they apply once the connection is established
    /// ([`Gater::allow_established`]).
    pub fn allow_dial(
        &mut self,
        now: u64,
        peer: &PeerId,
        ip: Option<IpAddr>,
        origin: AddrOrigin,
    ) -> Decision {
        let decision = self.check_dial(now, peer, ip, origin);
        self.stats.dials.count(decision);
        log_deny("dial", decision, Some(peer), ip);
        decision
    }

    /// [`Gater::allow_dial`]'s decision without counting it: for a check ahead of a dial whose
    /// own hook will count it (`opp2p_connectPeer`), so one dial is one `p2p_dials` sample.
    pub fn check_dial(
        &self,
        now: u64,
        peer: &PeerId,
        ip: Option<IpAddr>,
        origin: AddrOrigin,
    ) -> Decision {
        self.peer_rules(now, peer)
            .or_else(|| ip.and_then(|ip| self.ip_rules(now, canonical_ip(ip))))
            .or_else(|| match (origin, ip) {
                (AddrOrigin::Network, Some(ip)) => self.addr_rules(ip),
                _ => None,
            })
            .map_or(Decision::Allow, Decision::Deny)
    }

    /// The address policy alone: may an address learned from the network be dialled at `ip`?
    /// `None` if so, else [`DenyReason::NetRestrict`] or [`DenyReason::NonPublicAddr`]. Not
    /// counted; the node filters what it learns with it before anything is dialled.
    pub fn addr_rules(&self, ip: IpAddr) -> Option<DenyReason> {
        match self.policy.check(ip) {
            Ok(()) => None,
            Err(AddrRefusal::OutsideNetRestrict) => Some(DenyReason::NetRestrict),
            Err(AddrRefusal::NonPublic(_)) => Some(DenyReason::NonPublicAddr),
        }
    }

    /// Inbound, before the handshake: may a connection from `ip` proceed? Checks the IP's
    /// blocks and bans, the per-IP and per-subnet caps, then charges the source's accept rate
    /// ([`crate::peers::accept_rate`]). The peer id is not known yet; its rules apply in
    /// [`Gater::allow_established`].
    pub fn allow_accept(&mut self, now: u64, ip: IpAddr) -> Decision {
        let ip = canonical_ip(ip);
        // The per-IP and per-subnet caps apply here already, where the address is all that is
        // known: a connection from a full IP or subnet is refused before it costs a handshake.
        // ⚠ A protected peer (static or RPC-protected) behind a full IP or over its source's
        // accept rate is refused at accept too, since its id is not known yet; it still
        // connects when we dial it.
        let exempt = self.config.exempt_loopback_from_caps && ip.is_loopback();
        let decision = self
            .ip_rules(now, ip)
            .or_else(|| self.ip_cap_rules(ip))
            .or_else(|| {
                (!exempt && !self.accept_rate.try_accept(now, ip)).then_some(DenyReason::AcceptRate)
            })
            .map_or(Decision::Allow, Decision::Deny);
        self.stats.accepts.count(decision);
        log_deny("accept", decision, None, Some(ip));
        decision
    }

    /// After the handshake, either direction: may this connection stay? Checks every block and
    /// ban of the peer and of the IP (the same for inbound and outbound), then, unless
    /// `protected` (static and RPC-protected peers, which the Node tracks) or the peer is already
    /// connected (a second connection is not a new peer), the connected-peer bound and the
    /// per-IP and per-subnet caps. Blocks and bans apply to protected peers too.
    ///
    /// The direction does not change the rules; it is logged.
    pub fn allow_established(
        &mut self,
        now: u64,
        peer: &PeerId,
        ip: Option<IpAddr>,
        direction: Direction,
        protected: bool,
    ) -> Decision {
        let ip = ip.map(canonical_ip);
        let decision = self
            .peer_rules(now, peer)
            .or_else(|| ip.and_then(|ip| self.ip_rules(now, ip)))
            .or_else(|| {
                if protected || self.connected.contains_key(peer) {
                    None
                } else {
                    self.cap_rules(ip)
                }
            })
            .map_or(Decision::Allow, Decision::Deny);
        self.stats.established.count(decision);
        if let Decision::Deny(reason) = decision {
            tracing::debug!(%peer, ?ip, ?direction, %reason, "gater denied established connection");
        }
        decision
    }

    fn peer_rules(&self, now: u64, peer: &PeerId) -> Option<DenyReason> {
        if self.blocked_peers.contains(peer) {
            return Some(DenyReason::PeerBlocked);
        }
        if self.peer_ban(now, peer).is_some() {
            return Some(DenyReason::PeerBanned);
        }
        None
    }

    fn ip_rules(&self, now: u64, ip: IpAddr) -> Option<DenyReason> {
        if self.blocked_ips.contains(&ip) {
            return Some(DenyReason::IpBlocked);
        }
        if self.blocked_subnets.iter().any(|n| n.contains(&ip)) {
            return Some(DenyReason::SubnetBlocked);
        }
        if self.ip_ban(now, ip).is_some() {
            return Some(DenyReason::IpBanned);
        }
        None
    }

    fn cap_rules(&self, ip: Option<IpAddr>) -> Option<DenyReason> {
        if self.connected.len() >= self.max_connected {
            return Some(DenyReason::PeerLimit);
        }
        self.ip_cap_rules(ip?)
    }

    /// The per-IP and per-subnet caps for a new peer from `ip`.
    fn ip_cap_rules(&self, ip: IpAddr) -> Option<DenyReason> {
        if self.config.exempt_loopback_from_caps && ip.is_loopback() {
            return None;
        }
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= self.config.max_peers_per_ip {
            return Some(DenyReason::IpLimit);
        }
        let subnet = self.subnet_of(ip);
        if self.per_subnet.get(&subnet).copied().unwrap_or(0) >= self.config.max_peers_per_subnet {
            return Some(DenyReason::SubnetLimit);
        }
        None
    }

    /// The subnet the subnet cap groups `ip` in (/24 or /64 by default).
    pub fn subnet_of(&self, ip: IpAddr) -> IpNet {
        let ip = canonical_ip(ip);
        let prefix = match ip {
            IpAddr::V4(_) => self.config.subnet_prefix_v4,
            IpAddr::V6(_) => self.config.subnet_prefix_v6,
        };
        // The prefix is clamped in `new`, so this cannot fail; fall back to the host route.
        IpNet::new(ip, prefix).map_or(IpNet::from(ip), |n| n.trunc())
    }

    /// Tracked peers that the current blocks and bans would refuse, with the first reason. The
    /// Node calls this after a block or ban to decide which connections to close (the gater
    /// closes nothing itself). Caps are not re-checked: a connected peer is never evicted for
    /// them.
    pub fn violations(&self, now: u64) -> Vec<(PeerId, DenyReason)> {
        self.connected
            .iter()
            .filter_map(|(peer, c)| {
                self.peer_rules(now, peer)
                    .or_else(|| c.ip.and_then(|ip| self.ip_rules(now, ip)))
                    .map(|r| (*peer, r))
            })
            .collect()
    }

    // ---- connection tracking ------------------------------------------------------------

    /// Records that `peer` is now connected (its first connection: libp2p's
    /// `ConnectionEstablished` with `num_established == 1`). A peer already tracked keeps its
    /// first IP and direction. Refused with [`GaterError::Full`] when `max_connected` are
    /// tracked; the Node then closes the connection.
    pub fn on_connected(
        &mut self,
        peer: PeerId,
        ip: Option<IpAddr>,
        direction: Direction,
    ) -> Result<(), GaterError> {
        if self.connected.contains_key(&peer) {
            return Ok(());
        }
        if self.connected.len() >= self.max_connected {
            return Err(GaterError::Full {
                list: ListKind::ConnectedPeers,
                max: self.max_connected,
            });
        }
        let ip = ip.map(canonical_ip);
        if let Some(ip) = ip {
            *self.per_ip.entry(ip).or_insert(0) += 1;
            *self.per_subnet.entry(self.subnet_of(ip)).or_insert(0) += 1;
        }
        self.connected.insert(peer, ConnectedPeer { ip, direction });
        Ok(())
    }

    /// Records that `peer` has no connection left (libp2p's `ConnectionClosed` with
    /// `remaining_established == 0`). Returns whether it was tracked.
    pub fn on_disconnected(&mut self, peer: &PeerId) -> bool {
        let Some(c) = self.connected.remove(peer) else {
            return false;
        };
        if let Some(ip) = c.ip {
            decrement(&mut self.per_ip, ip);
            let subnet = self.subnet_of(ip);
            decrement(&mut self.per_subnet, subnet);
        }
        true
    }

    /// Tracked connected peers.
    pub fn connected_count(&self) -> usize {
        self.connected.len()
    }

    /// Tracked connected peers in one direction.
    pub fn connected_in_direction(&self, direction: Direction) -> usize {
        self.connected
            .values()
            .filter(|c| c.direction == direction)
            .count()
    }

    /// Tracked connected peers on this IP.
    pub fn peers_on_ip(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&canonical_ip(ip)).copied().unwrap_or(0)
    }

    /// The IP `peer` is tracked as connected from (its first connection's), if it is tracked
    /// and the address had one. What the Node bans along with a peer banned for invalid
    /// gossip.
    pub fn connected_ip(&self, peer: &PeerId) -> Option<IpAddr> {
        self.connected.get(peer).and_then(|c| c.ip)
    }

    /// Tracked connected peers whose IP is `ip` (canonicalised), in peer id order. O(tracked
    /// peers): for the rare IP ban, not for every decision.
    pub fn connected_on_ip(&self, ip: IpAddr) -> Vec<PeerId> {
        let ip = canonical_ip(ip);
        self.connected
            .iter()
            .filter(|(_, c)| c.ip == Some(ip))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Tracked connected peers in this IP's subnet.
    pub fn peers_in_subnet_of(&self, ip: IpAddr) -> usize {
        self.per_subnet
            .get(&self.subnet_of(ip))
            .copied()
            .unwrap_or(0)
    }

    // ---- permanent blocks (admin) -------------------------------------------------------

    /// Blocks a peer id permanently. Returns whether it was newly added. Does not close
    /// connections (see [`Gater::violations`]).
    pub fn block_peer(&mut self, peer: PeerId) -> Result<bool, GaterError> {
        insert_bounded(
            &mut self.blocked_peers,
            peer,
            self.config.max_blocked_peers,
            ListKind::BlockedPeers,
        )
    }

    /// Lifts a permanent peer block. Returns whether there was one.
    pub fn unblock_peer(&mut self, peer: &PeerId) -> bool {
        self.blocked_peers.remove(peer)
    }

    /// Whether the peer id is permanently blocked.
    pub fn is_peer_blocked(&self, peer: &PeerId) -> bool {
        self.blocked_peers.contains(peer)
    }

    /// Permanently blocked peer ids, in order.
    pub fn blocked_peers(&self) -> Vec<PeerId> {
        self.blocked_peers.iter().copied().collect()
    }

    /// Blocks an IP permanently (canonicalised). Returns whether it was newly added. Does not
    /// close connections.
    pub fn block_ip(&mut self, ip: IpAddr) -> Result<bool, GaterError> {
        insert_bounded(
            &mut self.blocked_ips,
            canonical_ip(ip),
            self.config.max_blocked_ips,
            ListKind::BlockedIps,
        )
    }

    /// Lifts a permanent IP block. Returns whether there was one.
    pub fn unblock_ip(&mut self, ip: IpAddr) -> bool {
        self.blocked_ips.remove(&canonical_ip(ip))
    }

    /// Whether the IP is permanently blocked (by itself, not by subnet).
    pub fn is_ip_blocked(&self, ip: IpAddr) -> bool {
        self.blocked_ips.contains(&canonical_ip(ip))
    }

    /// Permanently blocked IPs, in order.
    pub fn blocked_ips(&self) -> Vec<IpAddr> {
        self.blocked_ips.iter().copied().collect()
    }

    /// Blocks a subnet permanently ([`canonical_subnet`] form). Returns whether it was newly
    /// added. Does not close connections.
    pub fn block_subnet(&mut self, net: IpNet) -> Result<bool, GaterError> {
        insert_bounded(
            &mut self.blocked_subnets,
            canonical_subnet(net),
            self.config.max_blocked_subnets,
            ListKind::BlockedSubnets,
        )
    }

    /// Lifts a permanent subnet block (matched in [`canonical_subnet`] form). Returns whether
    /// there was one.
    pub fn unblock_subnet(&mut self, net: IpNet) -> bool {
        self.blocked_subnets.remove(&canonical_subnet(net))
    }

    /// Permanently blocked subnets, in order.
    pub fn blocked_subnets(&self) -> Vec<IpNet> {
        self.blocked_subnets.iter().copied().collect()
    }

    // ---- timed bans ---------------------------------------------------------------------

    /// Bans a peer until `until_ms` (Unix ms, exclusive). A peer already banned gets the new
    /// expiry, longer or shorter (op-node overwrites too). Refused with [`GaterError::Full`]
    /// when the ban list is full; the Node ticks [`Gater::expire`] to make room.
    pub fn ban_peer(&mut self, peer: PeerId, until_ms: u64) -> Result<(), GaterError> {
        insert_ban(
            &mut self.peer_bans,
            peer,
            until_ms,
            self.config.max_peer_bans,
            ListKind::PeerBans,
        )
    }

    /// Lifts a peer's ban now (not counted as an unban). Returns whether there was one.
    pub fn unban_peer(&mut self, peer: &PeerId) -> bool {
        self.peer_bans.remove(peer).is_some()
    }

    /// The expiry of the peer's ban if it is live at `now` (a ban is live while
    /// `now < until_ms`; an expired one reads as absent even before [`Gater::expire`]).
    pub fn peer_ban(&self, now: u64, peer: &PeerId) -> Option<u64> {
        self.peer_bans.get(peer).filter(|u| now < *u)
    }

    /// Bans an IP (canonicalised) until `until_ms`; as [`Gater::ban_peer`].
    pub fn ban_ip(&mut self, ip: IpAddr, until_ms: u64) -> Result<(), GaterError> {
        insert_ban(
            &mut self.ip_bans,
            canonical_ip(ip),
            until_ms,
            self.config.max_ip_bans,
            ListKind::IpBans,
        )
    }

    /// Lifts an IP's ban now (not counted as an unban). Returns whether there was one.
    pub fn unban_ip(&mut self, ip: IpAddr) -> bool {
        self.ip_bans.remove(&canonical_ip(ip)).is_some()
    }

    /// The expiry of the IP's ban if it is live at `now` (see [`Gater::peer_ban`]).
    pub fn ip_ban(&self, now: u64, ip: IpAddr) -> Option<u64> {
        self.ip_bans.get(&canonical_ip(ip)).filter(|u| now < *u)
    }

    /// Removes every ban whose time has come (`until_ms <= now`), counts them in
    /// [`GaterStats::peer_unbans`] / [`GaterStats::ip_unbans`] and returns them.
    pub fn expire(&mut self, now: u64) -> Unbanned {
        let out = Unbanned {
            peers: self.peer_bans.expire(now),
            ips: self.ip_bans.expire(now),
        };
        self.stats.peer_unbans = self
            .stats
            .peer_unbans
            .saturating_add(out.peers.len() as u64);
        self.stats.ip_unbans = self.stats.ip_unbans.saturating_add(out.ips.len() as u64);
        if !out.is_empty() {
            tracing::debug!(
                peers = out.peers.len(),
                ips = out.ips.len(),
                "gater lifted expired bans"
            );
        }
        out
    }

    /// The earliest ban expiry, for the Node's `poll_timeout` (asked on every driver loop
    /// turn, so read from the time index, not by scanning the bans).
    pub fn next_expiry(&self) -> Option<u64> {
        match (self.peer_bans.earliest(), self.ip_bans.earliest()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- persistence --------------------------------------------------------------------

    /// The permanent blocks and the bans live at `now`, as plain data.
    pub fn export(&self, now: u64) -> GaterSnapshot {
        GaterSnapshot {
            blocked_peers: self.blocked_peers(),
            blocked_ips: self.blocked_ips(),
            blocked_subnets: self.blocked_subnets(),
            peer_bans: self
                .peer_bans
                .iter()
                .filter(|(_, u)| now < **u)
                .map(|(peer, until_ms)| PeerBan {
                    peer: *peer,
                    until_ms: *until_ms,
                })
                .collect(),
            ip_bans: self
                .ip_bans
                .iter()
                .filter(|(_, u)| now < **u)
                .map(|(ip, until_ms)| IpBan {
                    ip: *ip,
                    until_ms: *until_ms,
                })
                .collect(),
        }
    }

    /// Replaces the permanent blocks and bans with a snapshot's. Each list's length is checked
    /// against its bound before anything is built ([`GaterError::ImportTooLarge`], nothing
    /// changed); bans already expired at `now` are dropped and counted; duplicates collapse
    /// (a duplicated ban keeps the later expiry). Connection tracking and stats are kept.
    pub fn import(
        &mut self,
        now: u64,
        snapshot: GaterSnapshot,
    ) -> Result<ImportReport, GaterError> {
        let c = &self.config;
        for (list, len, max) in [
            (
                ListKind::BlockedPeers,
                snapshot.blocked_peers.len(),
                c.max_blocked_peers,
            ),
            (
                ListKind::BlockedIps,
                snapshot.blocked_ips.len(),
                c.max_blocked_ips,
            ),
            (
                ListKind::BlockedSubnets,
                snapshot.blocked_subnets.len(),
                c.max_blocked_subnets,
            ),
            (
                ListKind::PeerBans,
                snapshot.peer_bans.len(),
                c.max_peer_bans,
            ),
            (ListKind::IpBans, snapshot.ip_bans.len(), c.max_ip_bans),
        ] {
            if len > max {
                return Err(GaterError::ImportTooLarge { list, len, max });
            }
        }
        let mut report = ImportReport::default();
        let mut peer_bans = Bans::default();
        for b in snapshot.peer_bans {
            if now < b.until_ms {
                let until = peer_bans.get(&b.peer).unwrap_or(0).max(b.until_ms);
                peer_bans.set(b.peer, until);
            } else {
                report.expired_bans_dropped += 1;
            }
        }
        let mut ip_bans = Bans::default();
        for b in snapshot.ip_bans {
            if now < b.until_ms {
                let ip = canonical_ip(b.ip);
                let until = ip_bans.get(&ip).unwrap_or(0).max(b.until_ms);
                ip_bans.set(ip, until);
            } else {
                report.expired_bans_dropped += 1;
            }
        }
        self.blocked_peers = snapshot.blocked_peers.into_iter().collect();
        self.blocked_ips = snapshot.blocked_ips.into_iter().map(canonical_ip).collect();
        self.blocked_subnets = snapshot
            .blocked_subnets
            .into_iter()
            .map(canonical_subnet)
            .collect();
        self.peer_bans = peer_bans;
        self.ip_bans = ip_bans;
        Ok(report)
    }
}

fn insert_bounded<T: Ord>(
    set: &mut BTreeSet<T>,
    value: T,
    max: usize,
    list: ListKind,
) -> Result<bool, GaterError> {
    if set.contains(&value) {
        return Ok(false);
    }
    if set.len() >= max {
        return Err(GaterError::Full { list, max });
    }
    Ok(set.insert(value))
}

fn insert_ban<K: Ord + Copy>(
    bans: &mut Bans<K>,
    key: K,
    until_ms: u64,
    max: usize,
    list: ListKind,
) -> Result<(), GaterError> {
    if bans.get(&key).is_none() && bans.len() >= max {
        // Full: the ban that ends first makes room, if it ends before this one would. Long
        // ban durations fill the list with live bans; refusing new ones then would leave
        // every later offender disconnected but free to come back.
        match bans.by_time.first().copied() {
            Some((first_until, first_key)) if first_until < until_ms => {
                bans.remove(&first_key);
            }
            _ => return Err(GaterError::Full { list, max }),
        }
    }
    bans.set(key, until_ms);
    Ok(())
}

/// Timed bans by key, with a time-ordered index so the earliest expiry and the expired bans
/// are found without scanning every ban (the Node asks for the earliest expiry on every driver
/// loop turn, and a sybil attack can fill the list). The two sets always hold the same pairs.
#[derive(Debug, Clone)]
struct Bans<K> {
    by_key: BTreeMap<K, u64>,
    by_time: BTreeSet<(u64, K)>,
}

impl<K> Default for Bans<K> {
    fn default() -> Self {
        Self {
            by_key: BTreeMap::new(),
            by_time: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Copy> Bans<K> {
    fn len(&self) -> usize {
        self.by_key.len()
    }

    fn get(&self, key: &K) -> Option<u64> {
        self.by_key.get(key).copied()
    }

    /// Sets (or replaces) `key`'s expiry.
    fn set(&mut self, key: K, until_ms: u64) {
        if let Some(old) = self.by_key.insert(key, until_ms) {
            self.by_time.remove(&(old, key));
        }
        self.by_time.insert((until_ms, key));
    }

    fn remove(&mut self, key: &K) -> Option<u64> {
        let until = self.by_key.remove(key)?;
        self.by_time.remove(&(until, *key));
        Some(until)
    }

    fn earliest(&self) -> Option<u64> {
        self.by_time.first().map(|(u, _)| *u)
    }

    /// Removes and returns, earliest first, every key whose ban ended (`until_ms <= now`).
    fn expire(&mut self, now: u64) -> Vec<K> {
        let mut out = Vec::new();
        while let Some(&(until, key)) = self.by_time.first()
            && until <= now
        {
            self.by_time.pop_first();
            self.by_key.remove(&key);
            out.push(key);
        }
        out
    }

    fn iter(&self) -> impl Iterator<Item = (&K, &u64)> {
        self.by_key.iter()
    }
}

fn decrement<K: Ord>(map: &mut BTreeMap<K, usize>, key: K) {
    if let Some(n) = map.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&key);
        }
    }
}

fn log_deny(what: &str, decision: Decision, peer: Option<&PeerId>, ip: Option<IpAddr>) {
    if let Decision::Deny(reason) = decision {
        tracing::debug!(?peer, ?ip, %reason, "gater denied {what}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peer(n: u8) -> PeerId {
        let mut secret = [0u8; 32];
        secret[31] = n.max(1);
        secret[0] = 1;
        let sk = libp2p_identity::secp256k1::SecretKey::try_from_bytes(secret).unwrap();
        let kp = libp2p_identity::secp256k1::Keypair::from(sk);
        libp2p_identity::PublicKey::from(kp.public().clone()).to_peer_id()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    const NOW: u64 = 1_700_000_000_000;
    const BOTH: [Direction; 2] = [Direction::Inbound, Direction::Outbound];

    #[test]
    fn blocked_peer_is_denied_on_dial_and_established_in_both_directions() {
        let mut g = Gater::default();
        let p = peer(1);
        assert_eq!(g.block_peer(p), Ok(true));
        assert_eq!(g.block_peer(p), Ok(false));
        assert_eq!(
            g.allow_dial(NOW, &p, None, AddrOrigin::Network),
            Decision::Deny(DenyReason::PeerBlocked)
        );
        for d in BOTH {
            assert_eq!(
                g.allow_established(NOW, &p, Some(ip("1.2.3.4")), d, false),
                Decision::Deny(DenyReason::PeerBlocked)
            );
            // Protection does not lift an operator's block.
            assert_eq!(
                g.allow_established(NOW, &p, None, d, true),
                Decision::Deny(DenyReason::PeerBlocked)
            );
        }
        assert_eq!(
            g.allow_dial(NOW, &peer(2), None, AddrOrigin::Network),
            Decision::Allow
        );
        assert!(g.unblock_peer(&p));
        assert!(!g.unblock_peer(&p));
        assert_eq!(
            g.allow_dial(NOW, &p, None, AddrOrigin::Network),
            Decision::Allow
        );
        let s = g.stats();
        assert_eq!(s.dials.allowed, 2);
        assert_eq!(s.dials.denied(DenyReason::PeerBlocked), 1);
        assert_eq!(s.dials.denied_total(), 1);
        assert_eq!(s.established.denied(DenyReason::PeerBlocked), 4);
        assert_eq!(s.accepts, DecisionCounts::default());
    }

    #[test]
    fn check_dial_decides_like_allow_dial_without_counting() {
        let mut g = Gater::default();
        let p = peer(1);
        g.block_peer(p).unwrap();
        g.block_ip(ip("1.2.3.4")).unwrap();
        let cases = [
            (p, None, Decision::Deny(DenyReason::PeerBlocked)),
            (
                peer(2),
                Some(ip("1.2.3.4")),
                Decision::Deny(DenyReason::IpBlocked),
            ),
            (peer(2), Some(ip("5.6.7.8")), Decision::Allow),
            (peer(2), None, Decision::Allow),
        ];
        for (peer, addr, want) in cases {
            assert_eq!(g.check_dial(NOW, &peer, addr, AddrOrigin::Network), want);
        }
        assert_eq!(
            g.stats().dials,
            DecisionCounts::default(),
            "nothing counted"
        );
        for (peer, addr, want) in cases {
            assert_eq!(g.allow_dial(NOW, &peer, addr, AddrOrigin::Network), want);
        }
        assert_eq!(g.stats().dials.allowed, 2);
        assert_eq!(g.stats().dials.denied_total(), 2);
    }

    /// ⚠ op-node applies `--p2p.netrestrict` to discv5 only and dials private addresses its
    /// peers advertise; we refuse both on every dial of a learned address.
    #[test]
    fn learned_addresses_pass_the_address_policy_and_operator_ones_skip_it() {
        use crate::peers::netpolicy::parse_netrestrict;
        let mut open = Gater::default();
        for addr in [
            "127.0.0.1",
            "10.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "fe80::1",
        ] {
            assert_eq!(
                open.allow_dial(NOW, &peer(1), Some(ip(addr)), AddrOrigin::Network),
                Decision::Deny(DenyReason::NonPublicAddr),
                "{addr}"
            );
            assert!(
                open.allow_dial(NOW, &peer(1), Some(ip(addr)), AddrOrigin::Operator)
                    .is_allow(),
                "{addr}: the operator's address"
            );
        }
        assert!(
            open.allow_dial(NOW, &peer(1), Some(ip("8.8.8.8")), AddrOrigin::Network)
                .is_allow()
        );
        assert_eq!(open.stats().dials.denied(DenyReason::NonPublicAddr), 5);

        let mut restricted = Gater::new(
            GaterConfig {
                netrestrict: Some(parse_netrestrict("127.0.0.0/8").unwrap()),
                ..GaterConfig::default()
            },
            100,
        );
        assert!(
            restricted
                .allow_dial(NOW, &peer(1), Some(ip("127.0.0.1")), AddrOrigin::Network)
                .is_allow(),
            "the list covers loopback"
        );
        for addr in ["8.8.8.8", "10.0.0.1"] {
            assert_eq!(
                restricted.allow_dial(NOW, &peer(1), Some(ip(addr)), AddrOrigin::Network),
                Decision::Deny(DenyReason::NetRestrict),
                "{addr}: only the list is dialled"
            );
        }
        assert!(
            restricted
                .allow_dial(NOW, &peer(1), Some(ip("8.8.8.8")), AddrOrigin::Operator)
                .is_allow()
        );
        // Blocks and bans still apply to the operator's addresses, and come first.
        restricted.block_ip(ip("8.8.8.8")).unwrap();
        assert_eq!(
            restricted.allow_dial(NOW, &peer(1), Some(ip("8.8.8.8")), AddrOrigin::Operator),
            Decision::Deny(DenyReason::IpBlocked)
        );
        // The policy is about addresses: a dial with none is the peer's rules only.
        assert!(
            restricted
                .allow_dial(NOW, &peer(1), None, AddrOrigin::Network)
                .is_allow()
        );
    }

    #[test]
    fn blocked_ip_and_subnet_apply_on_every_path() {
        let mut g = Gater::default();
        g.block_ip(ip("1.2.3.4")).unwrap();
        g.block_subnet(net("10.0.0.0/8")).unwrap();
        g.block_subnet(net("2001:db8::/32")).unwrap();
        let p = peer(1);
        let cases = [
            ("1.2.3.4", DenyReason::IpBlocked),
            ("::ffff:1.2.3.4", DenyReason::IpBlocked),
            ("10.200.3.4", DenyReason::SubnetBlocked),
            ("::ffff:10.0.0.1", DenyReason::SubnetBlocked),
            ("2001:db8:1::7", DenyReason::SubnetBlocked),
        ];
        for (addr, reason) in cases {
            let a = ip(addr);
            assert_eq!(g.allow_accept(NOW, a), Decision::Deny(reason), "{addr}");
            assert_eq!(
                g.allow_dial(NOW, &p, Some(a), AddrOrigin::Network),
                Decision::Deny(reason)
            );
            for d in BOTH {
                assert_eq!(
                    g.allow_established(NOW, &p, Some(a), d, true),
                    Decision::Deny(reason)
                );
            }
        }
        for addr in ["1.2.3.5", "11.0.0.1", "2001:db9::1"] {
            assert_eq!(g.allow_accept(NOW, ip(addr)), Decision::Allow, "{addr}");
        }
        assert_eq!(g.stats().accepts.allowed, 3);
        assert_eq!(g.stats().accepts.denied_total(), 5);
        assert!(
            g.unblock_subnet(net("10.1.2.3/8")),
            "matched in canonical form"
        );
        assert_eq!(g.allow_accept(NOW, ip("10.0.0.1")), Decision::Allow);
        assert!(g.unblock_ip(ip("::ffff:1.2.3.4")));
        assert_eq!(g.allow_accept(NOW, ip("1.2.3.4")), Decision::Allow);
    }

    #[test]
    fn subnets_are_canonicalised() {
        assert_eq!(canonical_subnet(net("10.1.2.3/8")), net("10.0.0.0/8"));
        assert_eq!(
            canonical_subnet(net("::ffff:10.1.0.0/112")),
            net("10.1.0.0/16")
        );
        assert_eq!(
            canonical_subnet(net("2001:db8::1/64")),
            net("2001:db8::/64")
        );
        let mut g = Gater::default();
        g.block_subnet(net("::ffff:192.168.0.0/120")).unwrap();
        assert_eq!(g.blocked_subnets(), vec![net("192.168.0.0/24")]);
        assert_eq!(
            g.allow_accept(NOW, ip("192.168.0.9")),
            Decision::Deny(DenyReason::SubnetBlocked)
        );
    }

    #[test]
    fn peer_ban_applies_until_expiry_then_reads_as_lifted_and_expire_reports_it() {
        let mut g = Gater::default();
        let p = peer(1);
        g.ban_peer(p, NOW + 1000).unwrap();
        for d in BOTH {
            assert_eq!(
                g.allow_established(NOW + 999, &p, None, d, true),
                Decision::Deny(DenyReason::PeerBanned)
            );
        }
        assert_eq!(
            g.allow_dial(NOW, &p, None, AddrOrigin::Network),
            Decision::Deny(DenyReason::PeerBanned)
        );
        assert_eq!(g.peer_ban(NOW, &p), Some(NOW + 1000));
        // Due: lifted on read even before the tick.
        assert_eq!(g.peer_ban(NOW + 1000, &p), None);
        assert_eq!(
            g.allow_dial(NOW + 1000, &p, None, AddrOrigin::Network),
            Decision::Allow
        );
        assert_eq!(g.next_expiry(), Some(NOW + 1000));
        assert!(g.expire(NOW + 999).is_empty());
        let lifted = g.expire(NOW + 1000);
        assert_eq!(lifted.peers, vec![p]);
        assert!(lifted.ips.is_empty());
        assert!(g.expire(NOW + 5000).is_empty());
        assert_eq!(g.stats().peer_unbans, 1);
        assert_eq!(g.next_expiry(), None);
    }

    #[test]
    fn ip_ban_applies_on_accept_dial_and_established() {
        let mut g = Gater::default();
        g.ban_ip(ip("::ffff:5.6.7.8"), NOW + 10).unwrap();
        let a = ip("5.6.7.8");
        let p = peer(3);
        assert_eq!(g.allow_accept(NOW, a), Decision::Deny(DenyReason::IpBanned));
        assert_eq!(
            g.allow_dial(NOW, &p, Some(a), AddrOrigin::Network),
            Decision::Deny(DenyReason::IpBanned)
        );
        for d in BOTH {
            assert_eq!(
                g.allow_established(NOW, &p, Some(a), d, false),
                Decision::Deny(DenyReason::IpBanned)
            );
        }
        assert_eq!(g.allow_accept(NOW + 10, a), Decision::Allow);
        assert_eq!(g.expire(NOW + 10).ips, vec![a]);
        assert_eq!(g.stats().ip_unbans, 1);
        assert!(!g.unban_ip(a));
    }

    #[test]
    fn accepts_from_one_source_are_rate_limited_before_the_handshake() {
        let config = GaterConfig {
            accept_burst: 4,
            accept_refill_ms: 1_000,
            ..GaterConfig::default()
        };
        let mut g = Gater::new(config.clone(), 100);
        let a = ip("203.0.113.9");
        assert!((0..4).all(|_| g.allow_accept(NOW, a).is_allow()));
        assert_eq!(
            g.allow_accept(NOW, a),
            Decision::Deny(DenyReason::AcceptRate)
        );
        // Another source is not held back; a refill lets one more through.
        assert!(g.allow_accept(NOW, ip("203.0.113.10")).is_allow());
        assert!(g.allow_accept(NOW + 1_000, a).is_allow());
        assert_eq!(g.stats().accepts.denied(DenyReason::AcceptRate), 1);
        // A banned IP is refused as banned and charged nothing.
        let b = ip("203.0.113.11");
        g.ban_ip(b, NOW + 10).unwrap();
        assert!((0..10).all(|_| g.allow_accept(NOW, b) == Decision::Deny(DenyReason::IpBanned)));
        assert!(g.allow_accept(NOW + 10, b).is_allow());
        // Loopback is limited like any source unless the operator exempts it.
        let lo = ip("127.0.0.1");
        assert!((0..4).all(|_| g.allow_accept(NOW, lo).is_allow()));
        assert_eq!(
            g.allow_accept(NOW, lo),
            Decision::Deny(DenyReason::AcceptRate)
        );
        let mut exempt = Gater::new(
            GaterConfig {
                exempt_loopback_from_caps: true,
                ..config
            },
            100,
        );
        assert!((0..100).all(|_| exempt.allow_accept(NOW, lo).is_allow()));
    }

    #[test]
    fn rebanning_overwrites_and_unban_lifts_without_counting() {
        let mut g = Gater::default();
        let p = peer(1);
        g.ban_peer(p, NOW + 100).unwrap();
        g.ban_peer(p, NOW + 50).unwrap();
        assert_eq!(g.peer_ban(NOW, &p), Some(NOW + 50));
        assert!(g.unban_peer(&p));
        assert_eq!(g.peer_ban(NOW, &p), None);
        assert!(g.expire(NOW + 1000).is_empty());
        assert_eq!(g.stats().peer_unbans, 0);
    }

    #[test]
    fn every_admin_list_refuses_entries_over_its_bound() {
        let mut g = Gater::new(
            GaterConfig {
                max_blocked_peers: 2,
                max_blocked_ips: 2,
                max_blocked_subnets: 2,
                max_peer_bans: 2,
                max_ip_bans: 2,
                ..GaterConfig::default()
            },
            100,
        );
        g.block_peer(peer(1)).unwrap();
        g.block_peer(peer(2)).unwrap();
        assert_eq!(
            g.block_peer(peer(3)),
            Err(GaterError::Full {
                list: ListKind::BlockedPeers,
                max: 2
            })
        );
        assert_eq!(
            g.block_peer(peer(2)),
            Ok(false),
            "re-blocking is not growth"
        );
        g.block_ip(ip("1.1.1.1")).unwrap();
        g.block_ip(ip("1.1.1.2")).unwrap();
        assert!(matches!(
            g.block_ip(ip("1.1.1.3")),
            Err(GaterError::Full {
                list: ListKind::BlockedIps,
                ..
            })
        ));
        g.block_subnet(net("1.0.0.0/8")).unwrap();
        g.block_subnet(net("2.0.0.0/8")).unwrap();
        assert!(g.block_subnet(net("3.0.0.0/8")).is_err());
        assert_eq!(g.block_subnet(net("2.3.0.0/8")), Ok(false));
        // Timed bans: a full list makes room by dropping the ban that ends first, when the
        // new one ends later; a new ban ending no later than every live one is refused.
        g.ban_peer(peer(1), NOW + 1).unwrap();
        g.ban_peer(peer(2), NOW + 2).unwrap();
        assert_eq!(
            g.ban_peer(peer(3), NOW + 1),
            Err(GaterError::Full {
                list: ListKind::PeerBans,
                max: 2
            })
        );
        g.ban_peer(peer(3), NOW + 3).unwrap();
        assert_eq!(
            g.peer_ban(NOW, &peer(1)),
            None,
            "the first to end made room"
        );
        assert_eq!(g.peer_ban(NOW, &peer(3)), Some(NOW + 3));
        g.ban_peer(peer(2), NOW + 5).unwrap();
        g.ban_ip(ip("9.9.9.1"), NOW + 1).unwrap();
        g.ban_ip(ip("9.9.9.2"), NOW + 1).unwrap();
        assert!(matches!(
            g.ban_ip(ip("9.9.9.3"), NOW + 1),
            Err(GaterError::Full {
                list: ListKind::IpBans,
                ..
            })
        ));
        assert_eq!(g.blocked_peers().len(), 2);
        assert_eq!(g.blocked_ips().len(), 2);
        assert_eq!(g.blocked_subnets().len(), 2);
        // Expiry makes room too.
        g.expire(NOW + 1);
        g.ban_ip(ip("9.9.9.3"), NOW + 3).unwrap();
        g.ban_ip(ip("9.9.9.4"), NOW + 3).unwrap();
    }

    /// Bans as long as op-node's longest (a day) from a stream of offenders: the list stays at
    /// its bound and the newest offender is always banned.
    #[test]
    fn long_bans_from_many_offenders_keep_banning_the_newest() {
        let mut g = Gater::new(
            GaterConfig {
                max_peer_bans: 64,
                ..GaterConfig::default()
            },
            100,
        );
        let day = 24 * 3600 * 1000;
        for n in 0..1_000u64 {
            let now = NOW + n * 1_000;
            g.expire(now);
            let offender = crate::testkit::peer_id(n);
            g.ban_peer(offender, now + day).unwrap();
            assert_eq!(g.peer_ban(now, &offender), Some(now + day));
            assert!(g.peer_bans.len() <= 64);
        }
    }

    #[test]
    fn per_ip_cap_counts_connected_peers_and_exempts_protected_and_known_peers() {
        let mut g = Gater::new(
            GaterConfig {
                max_peers_per_ip: 2,
                ..GaterConfig::default()
            },
            100,
        );
        let a = ip("8.8.8.8");
        for n in 1..=2 {
            assert!(
                g.allow_established(NOW, &peer(n), Some(a), Direction::Inbound, false)
                    .is_allow()
            );
            g.on_connected(peer(n), Some(a), Direction::Inbound)
                .unwrap();
        }
        assert_eq!(g.peers_on_ip(a), 2);
        for d in BOTH {
            assert_eq!(
                g.allow_established(NOW, &peer(3), Some(a), d, false),
                Decision::Deny(DenyReason::IpLimit)
            );
        }
        // A full IP is refused already at accept, before a handshake; another IP is not.
        assert_eq!(g.allow_accept(NOW, a), Decision::Deny(DenyReason::IpLimit));
        assert!(g.allow_accept(NOW, ip("8.8.4.4")).is_allow());
        // A second connection of a connected peer is not a new peer.
        assert!(
            g.allow_established(NOW, &peer(1), Some(a), Direction::Outbound, false)
                .is_allow()
        );
        g.on_connected(peer(1), Some(a), Direction::Outbound)
            .unwrap();
        assert_eq!(g.peers_on_ip(a), 2);
        // Protected peers skip the caps.
        assert!(
            g.allow_established(NOW, &peer(3), Some(a), Direction::Inbound, true)
                .is_allow()
        );
        assert!(g.on_disconnected(&peer(2)));
        assert!(!g.on_disconnected(&peer(2)));
        assert_eq!(g.peers_on_ip(a), 1);
        assert!(
            g.allow_established(NOW, &peer(3), Some(a), Direction::Inbound, false)
                .is_allow()
        );
        assert_eq!(g.stats().established.denied(DenyReason::IpLimit), 2);
    }

    #[test]
    fn subnet_cap_groups_ipv4_by_24_and_ipv6_by_64() {
        let mut g = Gater::new(
            GaterConfig {
                max_peers_per_ip: 10,
                max_peers_per_subnet: 2,
                ..GaterConfig::default()
            },
            100,
        );
        g.on_connected(peer(1), Some(ip("20.0.0.1")), Direction::Inbound)
            .unwrap();
        g.on_connected(peer(2), Some(ip("::ffff:20.0.0.2")), Direction::Outbound)
            .unwrap();
        assert_eq!(g.peers_in_subnet_of(ip("20.0.0.200")), 2);
        assert_eq!(
            g.allow_established(
                NOW,
                &peer(3),
                Some(ip("20.0.0.3")),
                Direction::Inbound,
                false
            ),
            Decision::Deny(DenyReason::SubnetLimit)
        );
        assert!(
            g.allow_established(
                NOW,
                &peer(3),
                Some(ip("20.0.1.3")),
                Direction::Inbound,
                false
            )
            .is_allow()
        );
        g.on_connected(peer(4), Some(ip("2001:db8:0:1::1")), Direction::Inbound)
            .unwrap();
        g.on_connected(peer(5), Some(ip("2001:db8:0:1::2")), Direction::Inbound)
            .unwrap();
        assert_eq!(
            g.allow_established(
                NOW,
                &peer(6),
                Some(ip("2001:db8:0:1:ffff::9")),
                Direction::Outbound,
                false
            ),
            Decision::Deny(DenyReason::SubnetLimit)
        );
        assert!(
            g.allow_established(
                NOW,
                &peer(6),
                Some(ip("2001:db8:0:2::9")),
                Direction::Outbound,
                false
            )
            .is_allow()
        );
        assert_eq!(g.connected_in_direction(Direction::Inbound), 3);
        assert_eq!(g.connected_in_direction(Direction::Outbound), 1);
    }

    #[test]
    fn loopback_is_capped_by_default_and_exempt_only_when_asked() {
        assert!(!GaterConfig::default().exempt_loopback_from_caps);
        let cfg = GaterConfig {
            max_peers_per_ip: 1,
            ..GaterConfig::default()
        };
        let lo = ip("127.0.0.1");
        let mut strict = Gater::new(cfg.clone(), 100);
        strict
            .on_connected(peer(1), Some(lo), Direction::Inbound)
            .unwrap();
        assert_eq!(
            strict.allow_established(NOW, &peer(2), Some(lo), Direction::Inbound, false),
            Decision::Deny(DenyReason::IpLimit)
        );
        let mut exempt = Gater::new(
            GaterConfig {
                exempt_loopback_from_caps: true,
                ..cfg
            },
            100,
        );
        exempt
            .on_connected(peer(1), Some(lo), Direction::Inbound)
            .unwrap();
        assert!(
            exempt
                .allow_established(NOW, &peer(2), Some(lo), Direction::Inbound, false)
                .is_allow()
        );
    }

    #[test]
    fn connection_tracking_is_bounded_by_max_connected_peers() {
        let mut g = Gater::new(
            GaterConfig {
                ..GaterConfig::default()
            },
            3,
        );
        for n in 1..=3 {
            g.on_connected(
                peer(n),
                Some(ip(&format!("30.0.{n}.1"))),
                Direction::Inbound,
            )
            .unwrap();
        }
        assert_eq!(
            g.on_connected(peer(4), None, Direction::Inbound),
            Err(GaterError::Full {
                list: ListKind::ConnectedPeers,
                max: 3
            })
        );
        assert_eq!(g.connected_count(), 3);
        assert_eq!(
            g.allow_established(NOW, &peer(4), None, Direction::Outbound, false),
            Decision::Deny(DenyReason::PeerLimit)
        );
        // Known peers are still fine.
        assert!(
            g.allow_established(NOW, &peer(2), None, Direction::Outbound, false)
                .is_allow()
        );
        g.on_disconnected(&peer(1));
        g.on_connected(peer(4), None, Direction::Inbound).unwrap();
    }

    #[test]
    fn blocking_does_not_close_connections_but_violations_lists_them() {
        let mut g = Gater::default();
        g.on_connected(peer(1), Some(ip("40.0.0.1")), Direction::Inbound)
            .unwrap();
        g.on_connected(peer(2), Some(ip("40.0.1.1")), Direction::Outbound)
            .unwrap();
        g.on_connected(peer(3), Some(ip("40.0.2.1")), Direction::Outbound)
            .unwrap();
        g.block_subnet(net("40.0.1.0/24")).unwrap();
        g.ban_peer(peer(3), NOW + 1).unwrap();
        assert_eq!(g.connected_count(), 3);
        let mut want = vec![
            (peer(2), DenyReason::SubnetBlocked),
            (peer(3), DenyReason::PeerBanned),
        ];
        want.sort_by_key(|(p, _)| *p);
        assert_eq!(g.violations(NOW), want);
        assert_eq!(
            g.violations(NOW + 1),
            vec![(peer(2), DenyReason::SubnetBlocked)]
        );
    }

    #[test]
    fn export_import_round_trips_through_json_and_drops_expired_bans() {
        let mut g = Gater::default();
        g.block_peer(peer(1)).unwrap();
        g.block_ip(ip("1.2.3.4")).unwrap();
        g.block_ip(ip("2001:db8::1")).unwrap();
        g.block_subnet(net("10.0.0.0/8")).unwrap();
        g.ban_peer(peer(2), NOW + 100).unwrap();
        g.ban_peer(peer(3), NOW + 5).unwrap();
        g.ban_ip(ip("5.5.5.5"), NOW + 100).unwrap();
        let snap = g.export(NOW);
        let json = serde_json::to_string(&snap).unwrap();
        assert!(json.contains("\"10.0.0.0/8\""), "{json}");
        assert!(json.contains(&peer(1).to_base58()), "{json}");
        let back: GaterSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snap);

        let mut fresh = Gater::default();
        let report = fresh.import(NOW + 10, back).unwrap();
        assert_eq!(report.expired_bans_dropped, 1);
        assert!(fresh.is_peer_blocked(&peer(1)));
        assert!(fresh.is_ip_blocked(ip("1.2.3.4")));
        assert_eq!(fresh.blocked_subnets(), vec![net("10.0.0.0/8")]);
        assert_eq!(fresh.peer_ban(NOW + 10, &peer(2)), Some(NOW + 100));
        assert_eq!(fresh.peer_ban(NOW + 10, &peer(3)), None);
        assert_eq!(fresh.ip_ban(NOW + 10, ip("5.5.5.5")), Some(NOW + 100));
        assert_eq!(fresh.export(NOW + 10).peer_bans.len(), 1);
        // Export leaves out bans that are due.
        assert_eq!(g.export(NOW + 5).peer_bans.len(), 1);
        // A missing list is empty.
        let empty: GaterSnapshot = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, GaterSnapshot::default());
    }

    #[test]
    fn import_over_a_bound_is_refused_and_changes_nothing() {
        let mut g = Gater::new(
            GaterConfig {
                max_blocked_ips: 2,
                max_peer_bans: 1,
                ..GaterConfig::default()
            },
            100,
        );
        g.block_peer(peer(9)).unwrap();
        let too_many_ips = GaterSnapshot {
            blocked_ips: vec![ip("1.1.1.1"), ip("1.1.1.2"), ip("1.1.1.3")],
            ..GaterSnapshot::default()
        };
        assert_eq!(
            g.import(NOW, too_many_ips),
            Err(GaterError::ImportTooLarge {
                list: ListKind::BlockedIps,
                len: 3,
                max: 2
            })
        );
        let too_many_bans = GaterSnapshot {
            peer_bans: vec![
                PeerBan {
                    peer: peer(1),
                    until_ms: NOW + 1,
                },
                PeerBan {
                    peer: peer(2),
                    until_ms: NOW + 1,
                },
            ],
            ..GaterSnapshot::default()
        };
        assert!(matches!(
            g.import(NOW, too_many_bans),
            Err(GaterError::ImportTooLarge {
                list: ListKind::PeerBans,
                ..
            })
        ));
        assert_eq!(g.blocked_peers(), vec![peer(9)]);
        assert!(g.blocked_ips().is_empty());
        // Duplicates collapse and keep the later expiry.
        let dup = GaterSnapshot {
            ip_bans: vec![
                IpBan {
                    ip: ip("::ffff:7.7.7.7"),
                    until_ms: NOW + 5,
                },
                IpBan {
                    ip: ip("7.7.7.7"),
                    until_ms: NOW + 9,
                },
            ],
            ..GaterSnapshot::default()
        };
        g.import(NOW, dup).unwrap();
        assert_eq!(g.ip_ban(NOW, ip("7.7.7.7")), Some(NOW + 9));
        assert!(g.blocked_peers().is_empty(), "import replaces the lists");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Connect(u8, u8),
        Disconnect(u8),
        BlockPeer(u8),
        BlockIp(u8),
        BanPeer(u8, u16),
        BanIp(u8, u16),
        Expire(u16),
        Unban(u8, bool),
        Established(u8, u8, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), any::<u8>()).prop_map(|(p, i)| Op::Connect(p, i)),
            any::<u8>().prop_map(Op::Disconnect),
            any::<u8>().prop_map(Op::BlockPeer),
            any::<u8>().prop_map(Op::BlockIp),
            (any::<u8>(), any::<u16>()).prop_map(|(p, t)| Op::BanPeer(p, t)),
            (any::<u8>(), any::<u16>()).prop_map(|(p, t)| Op::BanIp(p, t)),
            any::<u16>().prop_map(Op::Expire),
            (any::<u8>(), any::<bool>()).prop_map(|(k, ip)| Op::Unban(k, ip)),
            (any::<u8>(), any::<u8>(), any::<bool>())
                .prop_map(|(p, i, x)| Op::Established(p, i, x)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Whatever the sequence of calls, no table grows past its bound and the per-IP and
        /// per-subnet counters always sum to the tracked peers that have an IP.
        #[test]
        fn bounds_and_counters_hold(ops in proptest::collection::vec(op(), 1..120)) {
            let cfg = GaterConfig {
                max_blocked_peers: 3,
                max_blocked_ips: 3,
                max_peer_bans: 4,
                max_ip_bans: 4,
                max_peers_per_ip: 2,
                max_peers_per_subnet: 3,
                ..GaterConfig::default()
            };
            let peers: Vec<PeerId> = (0..8).map(|n| peer(n + 1)).collect();
            let ipof = |i: u8| IpAddr::from([50, 0, i % 3, i % 5]);
            let mut g = Gater::new(cfg, 5);
            for op in ops {
                match op {
                    Op::Connect(p, i) => { let _ = g.on_connected(peers[p as usize % 8], Some(ipof(i)), Direction::Inbound); }
                    Op::Disconnect(p) => { g.on_disconnected(&peers[p as usize % 8]); }
                    Op::BlockPeer(p) => { let _ = g.block_peer(peers[p as usize % 8]); }
                    Op::BlockIp(i) => { let _ = g.block_ip(ipof(i)); }
                    Op::BanPeer(p, t) => { let _ = g.ban_peer(peers[p as usize % 8], u64::from(t)); }
                    Op::BanIp(i, t) => { let _ = g.ban_ip(ipof(i), u64::from(t)); }
                    Op::Unban(k, true) => { g.unban_ip(ipof(k)); }
                    Op::Unban(k, false) => { g.unban_peer(&peers[k as usize % 8]); }
                    Op::Expire(t) => {
                        g.expire(u64::from(t));
                        prop_assert!(g.next_expiry().is_none_or(|e| e > u64::from(t)));
                    }
                    Op::Established(p, i, x) => { g.allow_established(0, &peers[p as usize % 8], Some(ipof(i)), Direction::Outbound, x); }
                }
                prop_assert!(g.connected_count() <= 5);
                prop_assert!(g.blocked_peers().len() <= 3);
                prop_assert!(g.blocked_ips().len() <= 3);
                prop_assert!(g.peer_bans.len() <= 4);
                prop_assert!(g.ip_bans.len() <= 4);
                // The time index holds exactly the bans, so the earliest expiry read from it is
                // the one a scan finds.
                for (by_key, by_time) in [
                    (g.peer_bans.by_key.iter().map(|(k, u)| (*u, k.to_bytes())).collect::<BTreeSet<_>>(),
                     g.peer_bans.by_time.iter().map(|(u, k)| (*u, k.to_bytes())).collect::<BTreeSet<_>>()),
                    (g.ip_bans.by_key.iter().map(|(k, u)| (*u, k.to_string().into_bytes())).collect(),
                     g.ip_bans.by_time.iter().map(|(u, k)| (*u, k.to_string().into_bytes())).collect()),
                ] {
                    prop_assert_eq!(by_key, by_time);
                }
                let naive = g.peer_bans.by_key.values().chain(g.ip_bans.by_key.values()).copied().min();
                prop_assert_eq!(g.next_expiry(), naive);
                prop_assert_eq!(g.per_ip.values().sum::<usize>(), g.connected_count());
                prop_assert_eq!(g.per_subnet.values().sum::<usize>(), g.connected_count());
                prop_assert!(g.per_ip.values().all(|n| *n > 0));
            }
        }
    }
}
