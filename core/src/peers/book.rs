//! The peer book: what we know about each peer (spec §7.3, §9, §10 `PeerInfo`), bounded.
//!
//! One [`PeerRecord`] per [`PeerId`]: addresses, ENR, identify data, connection state, ping
//! latency, chain id, block-topic subscriptions, the last gossip score snapshot, and the
//! protected/static flags. It is the single source the admin RPC (`opp2p_peers`), the dial
//! loop and the persistence layer read from.
//!
//! ## Bounds
//! - At most [`PeerBookConfig::max_peers`] records (default [`DEFAULT_MAX_PEERS`] = 1,024).
//!   Adding a new peer at the bound evicts the **disconnected, non-static, non-protected peer
//!   seen least recently** (ties: the smallest peer id). Connected (or limited), static and
//!   protected peers are never evicted; if only such peers are held, the new peer is refused
//!   with [`PeerBookError::Full`]. The bound should therefore exceed the connection cap plus
//!   the static and protected peers.
//! - **Quota per subnet**: at most [`PeerBookConfig::max_per_subnet`] (default
//!   [`DEFAULT_MAX_PER_SUBNET`] = 8) records per IPv4 /24 or IPv6 /64 ([`quota_subnet`]),
//!   counted by each record's newest address, else the remote IP of its latest connection
//!   (inbound peers leave no dialable address). A new peer in a subnet at its quota evicts the
//!   least recently seen evictable record of **that subnet**; if none is evictable, a peer
//!   learned from the network ([`PeerBook::add_addrs`]) is refused
//!   ([`PeerBookError::SubnetFull`]) and a connected one is admitted all the same (the gater's
//!   per-subnet cap bounds connections). So records injected by discovery or churned through
//!   connections from one range displace each other, never honest records of other ranges.
//!   Connected, static and protected peers are never evicted by the quota. [`PeerBook::import`]
//!   applies it too (newest first), so a saved book cannot seed a restart with more. Loopback
//!   is exempt when the owner says so ([`PeerBook::exempt_loopback`]).
//! - Per peer: at most [`PeerBookConfig::max_addrs_per_peer`] addresses (default 8; adding one
//!   more drops the oldest), each at most [`MAX_ADDR_BYTES`] bytes; at most [`MAX_PROTOCOLS`]
//!   protocol ids of at most [`MAX_STRING_LEN`] bytes; agent and protocol version truncated to
//!   [`MAX_STRING_LEN`] bytes; ENR text at most [`MAX_ENR_TEXT_LEN`] bytes.
//!
//! ## Expiry
//! [`PeerBook::expire`] removes disconnected peers not seen for 24 h (op-node's peerstore address
//! TTL for discovered peers, spec §7.3 and §9). Static peers never expire: they are the
//! operator's configuration, which the node re-applies at every start, and must stay static
//! (redialled, ban-exempt) for as long as the process runs. ⚠ op-node's peerstore keeps static
//! addresses for 7 days; its connection manager redials static peers from the configuration
//! regardless, which is what never expiring gives here. Protected peers are exempt from
//! capacity eviction but not from expiry: op-node's protection is a connection-manager tag and
//! does not extend address TTLs.
//!
//! ## Time
//! `now` is Unix milliseconds. The book keeps the largest `now` seen, so a clock stepping back
//! never makes a record look younger than it is or expire early.

use std::collections::BTreeMap;

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use serde::{Deserialize, Serialize};

use std::net::IpAddr;

use ipnet::IpNet;

use crate::gossip::topic::BlockVersion;
use crate::peers::gater::{canonical_ip, quota_subnet};

/// Default bound on peer records.
pub const DEFAULT_MAX_PEERS: usize = 1024;
/// Default quota of records per IPv4 /24 or IPv6 /64: 8, the discovery table's (see the
/// module docs).
pub const DEFAULT_MAX_PER_SUBNET: usize = 8;
/// Default bound on addresses kept per peer.
pub const DEFAULT_MAX_ADDRS_PER_PEER: usize = 8;
/// Longest multiaddr (in its binary form) we store; longer ones are skipped.
pub const MAX_ADDR_BYTES: usize = 256;
/// Longest agent version, protocol version or protocol id we store (longer ones are truncated
/// at a character boundary; protocol ids that long are skipped instead, as a truncated id means
/// nothing).
pub const MAX_STRING_LEN: usize = 256;
/// Most protocol ids stored per peer.
pub const MAX_PROTOCOLS: usize = 64;
/// Longest ENR text (`enr:` + base64) we store. An ENR is at most 300 bytes, 400 in base64.
pub const MAX_ENR_TEXT_LEN: usize = 512;
/// op-node keeps discovered addresses for 24 h.
pub const DEFAULT_DISCOVERED_TTL_MS: u64 = 24 * 60 * 60 * 1000;
/// Weight of a new ping sample in the latency EWMA: go-libp2p's `LatencyEWMASmoothing` (0.1,
/// peerstore `metrics.go`), which op-node's `latency` field reports. The first sample is taken
/// as the mean; later ones give `0.9·old + 0.1·sample`, truncated to whole nanoseconds as Go's
/// `time.Duration(float)` does.
pub const LATENCY_EWMA_ALPHA: f64 = 0.1;

/// Version written into [`PeerBookSnapshot::version`].
pub const SNAPSHOT_VERSION: u32 = 1;

/// Peer book settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerBookConfig {
    /// Most peer records held.
    pub max_peers: usize,
    /// Most addresses kept per peer.
    pub max_addrs_per_peer: usize,
    /// Age after which a disconnected, non-static peer is forgotten.
    pub discovered_ttl_ms: u64,
    /// Most records per IPv4 /24 or IPv6 /64 (at least 1; `usize::MAX` turns the quota off).
    pub max_per_subnet: usize,
}

impl Default for PeerBookConfig {
    fn default() -> Self {
        Self {
            max_peers: DEFAULT_MAX_PEERS,
            max_addrs_per_peer: DEFAULT_MAX_ADDRS_PER_PEER,
            discovered_ttl_ms: DEFAULT_DISCOVERED_TTL_MS,
            max_per_subnet: DEFAULT_MAX_PER_SUBNET,
        }
    }
}

/// Why the book refused an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerBookError {
    /// The book is at its bound and holds only connected, static or protected peers.
    #[error("peer book full: {max} peers, none evictable")]
    Full {
        /// The bound.
        max: usize,
    },
    /// The ENR text is longer than [`MAX_ENR_TEXT_LEN`].
    #[error("ENR text too long: {len} bytes")]
    EnrTooLong {
        /// Its length.
        len: usize,
    },
    /// The ENR text does not start with `enr:`.
    #[error("ENR text lacks the enr: prefix")]
    EnrPrefix,
    /// The peer's subnet is at its quota and holds only connected, static or protected peers.
    #[error("peer book subnet full: {max} peers in one /24 or /64, none evictable")]
    SubnetFull {
        /// The quota.
        max: usize,
    },
    /// The peer is not in the book.
    #[error("unknown peer")]
    UnknownPeer,
    /// A snapshot of a version this code does not read.
    #[error("unsupported snapshot version {0}")]
    SnapshotVersion(u32),
}

/// libp2p/op-node connectedness, as reported in `PeerInfo.connectedness`; serialised as Go's
/// `network.Connectedness` integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
#[repr(u8)]
pub enum Connectedness {
    /// 0: no connection, nothing known.
    #[default]
    NotConnected = 0,
    /// 1: connected.
    Connected = 1,
    /// 2: not connected, but recently reachable.
    CanConnect = 2,
    /// 3: not connected, and the last dial failed.
    CannotConnect = 3,
    /// 4: connected over a limited (relayed) connection.
    Limited = 4,
}

impl Connectedness {
    /// The integer op-node's JSON carries.
    pub const fn as_int(self) -> u8 {
        self as u8
    }

    /// Connected or limited: a live connection exists.
    pub const fn is_connected(self) -> bool {
        matches!(self, Self::Connected | Self::Limited)
    }
}

/// Which side opened the connection, as in `PeerInfo.direction`; serialised as Go's
/// `network.Direction` integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
#[repr(u8)]
pub enum Direction {
    /// 0: not known (never connected, or from a snapshot).
    #[default]
    Unknown = 0,
    /// 1: they dialled us.
    Inbound = 1,
    /// 2: we dialled them.
    Outbound = 2,
}

impl Direction {
    /// The integer op-node's JSON carries.
    pub const fn as_int(self) -> u8 {
        self as u8
    }
}

impl From<Connectedness> for u8 {
    fn from(c: Connectedness) -> u8 {
        c as u8
    }
}

impl TryFrom<u8> for Connectedness {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        Ok(match v {
            0 => Self::NotConnected,
            1 => Self::Connected,
            2 => Self::CanConnect,
            3 => Self::CannotConnect,
            4 => Self::Limited,
            _ => return Err(format!("unknown connectedness {v}")),
        })
    }
}

impl From<Direction> for u8 {
    fn from(d: Direction) -> u8 {
        d as u8
    }
}

impl TryFrom<u8> for Direction {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        Ok(match v {
            0 => Self::Unknown,
            1 => Self::Inbound,
            2 => Self::Outbound,
            _ => return Err(format!("unknown direction {v}")),
        })
    }
}

/// A gossipsub score snapshot, the fields of op-node's `PeerScores.gossip` flattened (the
/// per-topic `blocks` counters summed over topics, `timeInMesh` the largest, in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GossipScores {
    /// Total peer score (app score included).
    pub total: f64,
    /// Time in mesh, seconds.
    pub time_in_mesh: f64,
    /// First message deliveries.
    pub first_message_deliveries: f64,
    /// Mesh message deliveries.
    pub mesh_message_deliveries: f64,
    /// Invalid message deliveries.
    pub invalid_message_deliveries: f64,
    /// IP colocation factor.
    #[serde(rename = "IPColocationFactor")]
    pub ip_colocation_factor: f64,
    /// Behavioural penalty.
    pub behavioral_penalty: f64,
}

/// Bitset of the block topics (v1..v4) a peer is subscribed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct BlockTopics(u8);

impl BlockTopics {
    /// No topics.
    pub const NONE: Self = Self(0);

    /// From raw bits (bit `i` = topic index `i`); bits above 3 are dropped.
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits & 0x0f)
    }

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the peer is on this topic.
    pub const fn contains(self, v: BlockVersion) -> bool {
        self.0 & (1 << v.topic_index()) != 0
    }

    /// Adds or removes one topic.
    pub fn set(&mut self, v: BlockVersion, on: bool) {
        let bit = 1 << v.topic_index();
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }

    /// On any block topic (`PeerInfo.gossipBlocks`).
    pub const fn any(self) -> bool {
        self.0 != 0
    }
}

/// Everything the book knows about one peer. Read through [`PeerBook::get`]; changed only
/// through the book's methods, which keep the bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// Known addresses, oldest first (bounded, see module docs).
    pub addrs: Vec<Multiaddr>,
    /// The peer's ENR text (`enr:…`), if discovered.
    pub enr: Option<String>,
    /// The peer's discv5 node id, if known.
    pub node_id: Option<[u8; 32]>,
    /// Identify agent version (truncated).
    pub agent_version: String,
    /// Identify protocol version (truncated).
    pub protocol_version: String,
    /// Identify protocols (bounded).
    pub protocols: Vec<String>,
    /// Direction of the current or last connection.
    pub direction: Direction,
    /// Connection state.
    pub connectedness: Connectedness,
    /// Ping latency EWMA in nanoseconds; 0 when never pinged.
    pub latency_ns: u64,
    /// Chain id from the peer's `opstack` ENR entry; 0 when unknown.
    pub chain_id: u64,
    /// Block topics the peer is subscribed to.
    pub block_topics: BlockTopics,
    /// Last gossip score snapshot.
    pub scores: GossipScores,
    /// When the record was created, Unix ms.
    pub first_seen: u64,
    /// Last time anything was learnt about the peer or its connection changed, Unix ms.
    pub last_seen: u64,
    /// Protected over RPC (`opp2p_protectPeer`): never pruned or evicted.
    pub protected: bool,
    /// A configured static peer: always redialled, never pruned, banned or evicted.
    pub is_static: bool,
    /// The remote IP of the peer's latest connection: what places a peer without addresses
    /// (an inbound one) in a subnet for the quota.
    #[serde(default)]
    pub remote_ip: Option<IpAddr>,
}

impl PeerRecord {
    fn new(now: u64) -> Self {
        Self {
            addrs: Vec::new(),
            enr: None,
            node_id: None,
            agent_version: String::new(),
            protocol_version: String::new(),
            protocols: Vec::new(),
            direction: Direction::Unknown,
            connectedness: Connectedness::NotConnected,
            latency_ns: 0,
            chain_id: 0,
            block_topics: BlockTopics::NONE,
            scores: GossipScores::default(),
            first_seen: now,
            last_seen: now,
            protected: false,
            is_static: false,
            remote_ip: None,
        }
    }

    fn evictable(&self) -> bool {
        !self.connectedness.is_connected() && !self.is_static && !self.protected
    }

    /// The IP the subnet quota counts the record under: its newest address's, else its latest
    /// connection's.
    fn quota_ip(&self) -> Option<IpAddr> {
        self.addrs.last().and_then(ip_of).or(self.remote_ip)
    }
}

/// One peer in a [`PeerBookSnapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerEntry {
    /// The peer.
    pub peer: PeerId,
    /// What was known about it.
    pub record: PeerRecord,
}

/// The book as plain data, for the runtime to persist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerBookSnapshot {
    /// Format version, [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// The peers, in peer-id order.
    pub peers: Vec<PeerEntry>,
}

/// The bounded peer book (see module docs for bounds and eviction).
#[derive(Debug, Clone)]
pub struct PeerBook {
    cfg: PeerBookConfig,
    peers: BTreeMap<PeerId, PeerRecord>,
    now: u64,
    /// Loopback records skip the subnet quota.
    exempt_loopback: bool,
}

/// The IP of a multiaddr's first `/ip4` or `/ip6` component.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        multiaddr::Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        multiaddr::Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Truncates to at most `max` bytes at a character boundary.
fn truncated(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl PeerBook {
    /// An empty book. Bounds of 0 are raised to 1.
    pub fn new(mut cfg: PeerBookConfig) -> Self {
        cfg.max_peers = cfg.max_peers.max(1);
        cfg.max_addrs_per_peer = cfg.max_addrs_per_peer.max(1);
        cfg.max_per_subnet = cfg.max_per_subnet.max(1);
        Self {
            cfg,
            peers: BTreeMap::new(),
            now: 0,
            exempt_loopback: false,
        }
    }

    /// Loopback records skip the subnet quota, or not (the default): the node turns it on with
    /// the gater's loopback exemption, for many nodes on one host.
    pub fn exempt_loopback(mut self, on: bool) -> Self {
        self.exempt_loopback = on;
        self
    }

    /// The quota subnet of a record, if it has an IP that counts.
    fn subnet_of(&self, r: &PeerRecord) -> Option<IpNet> {
        r.quota_ip()
            .and_then(|ip| quota_subnet(ip, self.exempt_loopback))
    }

    /// How many records lie in `ip`'s quota subnet (0 for an exempt loopback address).
    pub fn peers_in_subnet_of(&self, ip: IpAddr) -> usize {
        quota_subnet(ip, self.exempt_loopback).map_or(0, |net| {
            self.peers
                .values()
                .filter(|r| self.subnet_of(r) == Some(net))
                .count()
        })
    }

    /// Makes room for one more record in `net`: if the subnet holds
    /// [`PeerBookConfig::max_per_subnet`] or more, evicts its least recently seen evictable
    /// records until one more fits; [`PeerBookError::SubnetFull`], evicting nothing, if too
    /// few are evictable. A scan of the book (at most `max_peers`), once per new peer.
    fn make_room_in(&mut self, net: IpNet) -> Result<(), PeerBookError> {
        let mut members: usize = 0;
        let mut evictable: Vec<(u64, PeerId)> = Vec::new();
        for (p, r) in &self.peers {
            if self.subnet_of(r) == Some(net) {
                members += 1;
                if r.evictable() {
                    evictable.push((r.last_seen, *p));
                }
            }
        }
        let need = (members + 1).saturating_sub(self.cfg.max_per_subnet);
        if need > evictable.len() {
            return Err(PeerBookError::SubnetFull {
                max: self.cfg.max_per_subnet,
            });
        }
        evictable.sort_unstable();
        for (_, p) in evictable.into_iter().take(need) {
            tracing::debug!(peer = %p, %net, "subnet at its quota, evicting its least recently seen");
            self.peers.remove(&p);
        }
        Ok(())
    }

    /// The settings in force.
    pub fn config(&self) -> &PeerBookConfig {
        &self.cfg
    }

    /// Number of peers held.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The record of one peer.
    pub fn get(&self, peer: &PeerId) -> Option<&PeerRecord> {
        self.peers.get(peer)
    }

    /// All records, in peer-id order.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &PeerRecord)> {
        self.peers.iter()
    }

    /// Peers with a live connection (connected or limited).
    pub fn connected_count(&self) -> usize {
        self.peers
            .values()
            .filter(|r| r.connectedness.is_connected())
            .count()
    }

    /// Peers not connected that have at least one address: what a dial round shuffles.
    pub fn dial_candidates(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(_, r)| !r.connectedness.is_connected() && !r.addrs.is_empty())
            .map(|(p, _)| *p)
            .collect()
    }

    fn tick(&mut self, now: u64) -> u64 {
        self.now = self.now.max(now);
        self.now
    }

    /// The record of `peer`, created if absent (evicting at the bound); `last_seen` is bumped.
    fn entry(&mut self, now: u64, peer: PeerId) -> Result<&mut PeerRecord, PeerBookError> {
        let now = self.tick(now);
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.cfg.max_peers {
            self.evict_one()?;
        }
        let rec = self
            .peers
            .entry(peer)
            .or_insert_with(|| PeerRecord::new(now));
        rec.last_seen = rec.last_seen.max(now);
        Ok(rec)
    }

    fn existing(&mut self, now: u64, peer: &PeerId) -> Result<&mut PeerRecord, PeerBookError> {
        let now = self.tick(now);
        let rec = self.peers.get_mut(peer).ok_or(PeerBookError::UnknownPeer)?;
        rec.last_seen = rec.last_seen.max(now);
        Ok(rec)
    }

    fn evict_one(&mut self) -> Result<(), PeerBookError> {
        let victim = self
            .peers
            .iter()
            .filter(|(_, r)| r.evictable())
            .min_by_key(|(p, r)| (r.last_seen, **p))
            .map(|(p, _)| *p);
        match victim {
            Some(p) => {
                tracing::debug!(peer = %p, "peer book full, evicting least recently seen");
                self.peers.remove(&p);
                Ok(())
            }
            None => Err(PeerBookError::Full {
                max: self.cfg.max_peers,
            }),
        }
    }

    /// Adds addresses (from discovery, identify or the operator). Addresses already known move
    /// to the newest position; over the per-peer bound the oldest go; addresses longer than
    /// [`MAX_ADDR_BYTES`] are skipped. Creates the record if absent, within its subnet's quota
    /// (the subnet of the newest address given): [`PeerBookError::SubnetFull`] if the subnet
    /// holds nothing evictable.
    pub fn add_addrs(
        &mut self,
        now: u64,
        peer: PeerId,
        addrs: impl IntoIterator<Item = Multiaddr>,
    ) -> Result<(), PeerBookError> {
        let max = self.cfg.max_addrs_per_peer;
        let addrs: Vec<Multiaddr> = addrs
            .into_iter()
            .filter(|a| a.len() <= MAX_ADDR_BYTES)
            .collect();
        if !self.peers.contains_key(&peer)
            && let Some(net) = addrs
                .last()
                .and_then(ip_of)
                .and_then(|ip| quota_subnet(ip, self.exempt_loopback))
        {
            self.make_room_in(net)?;
        }
        let rec = self.entry(now, peer)?;
        for a in addrs {
            rec.addrs.retain(|x| x != &a);
            rec.addrs.push(a);
            if rec.addrs.len() > max {
                let excess = rec.addrs.len() - max;
                rec.addrs.drain(..excess);
            }
        }
        Ok(())
    }

    /// Forgets a peer's addresses (`opp2p_disconnectPeer` does this), keeping the record.
    pub fn clear_addrs(&mut self, peer: &PeerId) {
        if let Some(r) = self.peers.get_mut(peer) {
            r.addrs.clear();
        }
    }

    /// Records a discovered ENR: its text, discv5 node id and `opstack` chain id (0 if none).
    /// Creates the record if absent.
    pub fn set_enr(
        &mut self,
        now: u64,
        peer: PeerId,
        enr_text: &str,
        node_id: [u8; 32],
        chain_id: u64,
    ) -> Result<(), PeerBookError> {
        if enr_text.len() > MAX_ENR_TEXT_LEN {
            return Err(PeerBookError::EnrTooLong {
                len: enr_text.len(),
            });
        }
        if !enr_text.starts_with("enr:") {
            return Err(PeerBookError::EnrPrefix);
        }
        let rec = self.entry(now, peer)?;
        rec.enr = Some(enr_text.to_owned());
        rec.node_id = Some(node_id);
        rec.chain_id = chain_id;
        Ok(())
    }

    /// Records identify data. Strings are truncated to [`MAX_STRING_LEN`]; protocol ids longer
    /// than that are skipped, and at most [`MAX_PROTOCOLS`] are kept (the first ones given).
    pub fn set_identify<'a>(
        &mut self,
        now: u64,
        peer: &PeerId,
        agent_version: &str,
        protocol_version: &str,
        protocols: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), PeerBookError> {
        let rec = self.existing(now, peer)?;
        rec.agent_version = truncated(agent_version, MAX_STRING_LEN);
        rec.protocol_version = truncated(protocol_version, MAX_STRING_LEN);
        rec.protocols.clear();
        for p in protocols {
            if rec.protocols.len() >= MAX_PROTOCOLS {
                break;
            }
            if p.len() <= MAX_STRING_LEN && !rec.protocols.iter().any(|x| x == p) {
                rec.protocols.push(p.to_owned());
            }
        }
        Ok(())
    }

    /// A connection to `peer` from or to `ip` was established. Creates the record if absent,
    /// first making room in `ip`'s subnet if it is at its quota (a connected peer is admitted
    /// even when nothing there is evictable: the gater's caps bound connections).
    pub fn on_connected(
        &mut self,
        now: u64,
        peer: PeerId,
        direction: Direction,
        ip: Option<IpAddr>,
    ) -> Result<(), PeerBookError> {
        let ip = ip.map(canonical_ip);
        if !self.peers.contains_key(&peer)
            && let Some(net) = ip.and_then(|ip| quota_subnet(ip, self.exempt_loopback))
        {
            let _ = self.make_room_in(net);
        }
        let rec = self.entry(now, peer)?;
        rec.connectedness = Connectedness::Connected;
        rec.direction = direction;
        if ip.is_some() {
            rec.remote_ip = ip;
        }
        Ok(())
    }

    /// The last connection to `peer` closed. It was reachable, so it becomes `CanConnect`.
    pub fn on_disconnected(&mut self, now: u64, peer: &PeerId) {
        if let Ok(rec) = self.existing(now, peer) {
            rec.connectedness = Connectedness::CanConnect;
            rec.block_topics = BlockTopics::NONE;
        }
    }

    /// A dial to `peer` failed: `CannotConnect` unless a connection exists meanwhile.
    pub fn on_dial_failed(&mut self, now: u64, peer: &PeerId) {
        if let Ok(rec) = self.existing(now, peer)
            && !rec.connectedness.is_connected()
        {
            rec.connectedness = Connectedness::CannotConnect;
        }
    }

    /// Feeds one ping round-trip time (nanoseconds) into the latency EWMA
    /// ([`LATENCY_EWMA_ALPHA`]).
    pub fn record_ping(&mut self, now: u64, peer: &PeerId, rtt_ns: u64) {
        if let Ok(rec) = self.existing(now, peer) {
            rec.latency_ns = if rec.latency_ns == 0 {
                rtt_ns
            } else {
                let v = (1.0 - LATENCY_EWMA_ALPHA) * rec.latency_ns as f64
                    + LATENCY_EWMA_ALPHA * rtt_ns as f64;
                // `as` saturates and truncates toward zero, like Go's Duration(float).
                v as u64
            };
        }
    }

    /// Sets whether `peer` is subscribed to a block topic.
    pub fn set_subscribed(&mut self, peer: &PeerId, version: BlockVersion, on: bool) {
        if let Some(rec) = self.peers.get_mut(peer) {
            rec.block_topics.set(version, on);
        }
    }

    /// Stores the latest gossip score snapshot of a known peer (unknown peers are ignored: a
    /// score alone never creates a record).
    pub fn set_scores(&mut self, peer: &PeerId, scores: GossipScores) {
        if let Some(rec) = self.peers.get_mut(peer) {
            rec.scores = scores;
        }
    }

    /// Marks or unmarks `peer` as protected. Creates the record if absent.
    pub fn set_protected(
        &mut self,
        now: u64,
        peer: PeerId,
        protected: bool,
    ) -> Result<(), PeerBookError> {
        self.entry(now, peer)?.protected = protected;
        Ok(())
    }

    /// Marks or unmarks `peer` as static. Creates the record if absent.
    pub fn set_static(
        &mut self,
        now: u64,
        peer: PeerId,
        is_static: bool,
    ) -> Result<(), PeerBookError> {
        self.entry(now, peer)?.is_static = is_static;
        Ok(())
    }

    /// Removes a peer entirely.
    pub fn remove(&mut self, peer: &PeerId) -> Option<PeerRecord> {
        self.peers.remove(peer)
    }

    /// Forgets disconnected peers older than their TTL (see module docs); returns how many.
    /// Static peers are never forgotten: they come from the operator's configuration, which
    /// the book must not outlive (their records are created before any time is known).
    pub fn expire(&mut self, now: u64) -> usize {
        let now = self.tick(now);
        let before = self.peers.len();
        let d = self.cfg.discovered_ttl_ms;
        self.peers.retain(|_, r| {
            if r.connectedness.is_connected() || r.is_static {
                return true;
            }
            now.saturating_sub(r.last_seen) <= d
        });
        before - self.peers.len()
    }

    /// Clears the static mark of every record (before the configured static peers are marked
    /// again, so a peer removed from the configuration stops being static).
    pub fn clear_static(&mut self) {
        for r in self.peers.values_mut() {
            r.is_static = false;
        }
    }

    /// The book as plain data, for persistence.
    pub fn export(&self) -> PeerBookSnapshot {
        PeerBookSnapshot {
            version: SNAPSHOT_VERSION,
            peers: self
                .peers
                .iter()
                .map(|(p, r)| PeerEntry {
                    peer: *p,
                    record: r.clone(),
                })
                .collect(),
        }
    }

    /// Loads a snapshot (from disk: untrusted). Every record is re-bounded (addresses,
    /// strings, protocols, ENR length), marked not connected with unknown direction and no
    /// topics, and inserted through the normal bound and the subnet quota, most recently seen
    /// first (so a subnet keeps its newest records; static and protected ones are kept over
    /// it); peers already held are kept as they are.
    /// Only the `max_peers` most recently seen entries are considered. The runtime should bound
    /// the file's size before deserialising it. Returns how many peers were added.
    pub fn import(&mut self, now: u64, snapshot: PeerBookSnapshot) -> Result<usize, PeerBookError> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(PeerBookError::SnapshotVersion(snapshot.version));
        }
        let now = self.tick(now);
        // Only the `max_peers` most recently seen can survive; dropping the rest first keeps
        // the work bounded whatever the snapshot's length.
        let mut entries = snapshot.peers;
        entries.sort_by_key(|e| std::cmp::Reverse(e.record.last_seen));
        entries.truncate(self.cfg.max_peers);
        let mut added = 0;
        for PeerEntry { peer, record } in entries {
            if self.peers.contains_key(&peer) {
                continue;
            }
            let mut rec = self.sanitise(record, now);
            if rec.evictable()
                && let Some(net) = self.subnet_of(&rec)
                && self
                    .peers
                    .values()
                    .filter(|r| self.subnet_of(r) == Some(net))
                    .count()
                    >= self.cfg.max_per_subnet
            {
                continue;
            }
            if self.peers.len() >= self.cfg.max_peers {
                // Evict only if the incoming record is more recent than the best victim.
                let victim = self
                    .peers
                    .iter()
                    .filter(|(_, r)| r.evictable())
                    .min_by_key(|(p, r)| (r.last_seen, **p))
                    .map(|(p, r)| (*p, r.last_seen));
                match victim {
                    Some((v, seen)) if seen < rec.last_seen || !rec.evictable() => {
                        self.peers.remove(&v);
                    }
                    _ => continue,
                }
            }
            rec.first_seen = rec.first_seen.min(rec.last_seen);
            self.peers.insert(peer, rec);
            added += 1;
        }
        Ok(added)
    }

    fn sanitise(&self, r: PeerRecord, now: u64) -> PeerRecord {
        let mut addrs: Vec<Multiaddr> = r
            .addrs
            .into_iter()
            .filter(|a| a.len() <= MAX_ADDR_BYTES)
            .collect();
        if addrs.len() > self.cfg.max_addrs_per_peer {
            let excess = addrs.len() - self.cfg.max_addrs_per_peer;
            addrs.drain(..excess);
        }
        let enr = r
            .enr
            .filter(|e| e.len() <= MAX_ENR_TEXT_LEN && e.starts_with("enr:"));
        PeerRecord {
            addrs,
            enr,
            node_id: r.node_id,
            agent_version: truncated(&r.agent_version, MAX_STRING_LEN),
            protocol_version: truncated(&r.protocol_version, MAX_STRING_LEN),
            protocols: r
                .protocols
                .into_iter()
                .filter(|p| p.len() <= MAX_STRING_LEN)
                .take(MAX_PROTOCOLS)
                .collect(),
            direction: Direction::Unknown,
            connectedness: match r.connectedness {
                Connectedness::CannotConnect => Connectedness::CannotConnect,
                _ => Connectedness::NotConnected,
            },
            latency_ns: r.latency_ns,
            chain_id: r.chain_id,
            block_topics: BlockTopics::NONE,
            scores: r.scores,
            // A record from the future (clock skew) is treated as seen now.
            first_seen: r.first_seen.min(now),
            last_seen: r.last_seen.min(now),
            protected: r.protected,
            is_static: r.is_static,
            remote_ip: r.remote_ip.map(canonical_ip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, distinct peer id (identity multihash of a counter), deterministic per run.
    fn pid() -> PeerId {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        PeerId::from_bytes(&[0, 4, n[0], n[1], n[2], n[3]]).unwrap()
    }

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/10.0.0.1/tcp/{port}").parse().unwrap()
    }

    /// A book of `max` records without the subnet quota: `addr` is always 10.0.0.1.
    fn small(max: usize) -> PeerBook {
        PeerBook::new(PeerBookConfig {
            max_peers: max,
            max_per_subnet: usize::MAX,
            ..Default::default()
        })
    }

    #[test]
    fn bound_holds_under_many_inserts() {
        let mut b = small(64);
        for i in 0..5_000u64 {
            b.add_addrs(i, pid(), [addr(1)]).unwrap();
            assert!(b.len() <= 64);
        }
        assert_eq!(b.len(), 64);
        // The survivors are the 64 most recently seen.
        assert!(b.iter().all(|(_, r)| r.last_seen >= 5_000 - 64));
    }

    #[test]
    fn eviction_never_removes_connected_static_or_protected() {
        let mut b = small(6);
        let (c, s, p) = (pid(), pid(), pid());
        b.on_connected(0, c, Direction::Inbound, None).unwrap();
        b.set_static(0, s, true).unwrap();
        b.set_protected(0, p, true).unwrap();
        let old = pid();
        b.add_addrs(1, old, [addr(1)]).unwrap();
        for i in 0..100 {
            b.add_addrs(10 + i, pid(), [addr(2)]).unwrap();
        }
        assert!(b.get(&c).is_some() && b.get(&s).is_some() && b.get(&p).is_some());
        assert!(b.get(&old).is_none(), "least recently seen goes first");
        assert_eq!(b.len(), 6);
    }

    #[test]
    fn full_of_unevictable_peers_refuses_new_ones() {
        let mut b = small(2);
        b.on_connected(0, pid(), Direction::Outbound, None).unwrap();
        b.set_static(0, pid(), true).unwrap();
        assert_eq!(
            b.add_addrs(1, pid(), [addr(1)]),
            Err(PeerBookError::Full { max: 2 })
        );
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn least_recently_seen_disconnected_is_evicted() {
        let mut b = small(3);
        let (a, bb, c) = (pid(), pid(), pid());
        b.add_addrs(10, a, [addr(1)]).unwrap();
        b.add_addrs(20, bb, [addr(1)]).unwrap();
        b.add_addrs(30, c, [addr(1)]).unwrap();
        b.record_ping(40, &a, 1_000); // a seen again: now b is the oldest
        b.add_addrs(50, pid(), [addr(1)]).unwrap();
        assert!(b.get(&a).is_some());
        assert!(b.get(&bb).is_none());
        assert!(b.get(&c).is_some());
    }

    #[test]
    fn per_peer_lists_and_strings_are_bounded() {
        let mut b = PeerBook::new(PeerBookConfig::default());
        let p = pid();
        b.add_addrs(0, p, (0..100).map(addr)).unwrap();
        let r = b.get(&p).unwrap();
        assert_eq!(r.addrs.len(), DEFAULT_MAX_ADDRS_PER_PEER);
        assert_eq!(r.addrs.last(), Some(&addr(99)), "newest kept");
        // A known address re-added moves to the newest slot, no duplicate.
        b.add_addrs(0, p, [addr(95)]).unwrap();
        let r = b.get(&p).unwrap();
        assert_eq!(r.addrs.len(), DEFAULT_MAX_ADDRS_PER_PEER);
        assert_eq!(r.addrs.iter().filter(|a| **a == addr(95)).count(), 1);
        assert_eq!(r.addrs.last(), Some(&addr(95)));

        let long = "é".repeat(1000); // 2 bytes each: truncation must land on a boundary
        let protos: Vec<String> = (0..500).map(|i| format!("/p/{i}")).collect();
        let huge_proto = "x".repeat(MAX_STRING_LEN + 1);
        b.set_identify(
            0,
            &p,
            &long,
            &long,
            std::iter::once(huge_proto.as_str()).chain(protos.iter().map(String::as_str)),
        )
        .unwrap();
        let r = b.get(&p).unwrap();
        assert!(r.agent_version.len() <= MAX_STRING_LEN && !r.agent_version.is_empty());
        assert!(r.protocol_version.len() <= MAX_STRING_LEN);
        assert_eq!(r.protocols.len(), MAX_PROTOCOLS);
        assert_eq!(r.protocols[0], "/p/0", "over-long protocol id skipped");

        let enr = format!("enr:{}", "A".repeat(MAX_ENR_TEXT_LEN));
        assert!(matches!(
            b.set_enr(0, p, &enr, [1; 32], 10),
            Err(PeerBookError::EnrTooLong { .. })
        ));
        assert_eq!(
            b.set_enr(0, p, "-abc", [1; 32], 10),
            Err(PeerBookError::EnrPrefix)
        );
        b.set_enr(0, p, "enr:-abc", [1; 32], 10).unwrap();
        let r = b.get(&p).unwrap();
        assert_eq!((r.chain_id, r.node_id), (10, Some([1; 32])));
    }

    #[test]
    fn identify_for_unknown_peer_is_an_error_not_an_insert() {
        let mut b = small(4);
        assert_eq!(
            b.set_identify(0, &pid(), "a", "b", []),
            Err(PeerBookError::UnknownPeer)
        );
        assert!(b.is_empty());
        b.set_scores(&pid(), GossipScores::default());
        assert!(b.is_empty());
    }

    #[test]
    fn latency_ewma_takes_first_sample_then_weights_new_ones_by_a_tenth() {
        let mut b = small(4);
        let p = pid();
        b.on_connected(0, p, Direction::Outbound, None).unwrap();
        b.record_ping(0, &p, 100_000_000);
        assert_eq!(b.get(&p).unwrap().latency_ns, 100_000_000);
        b.record_ping(0, &p, 200_000_000);
        assert_eq!(b.get(&p).unwrap().latency_ns, 110_000_000);
        b.record_ping(0, &p, 0);
        assert_eq!(b.get(&p).unwrap().latency_ns, 99_000_000);
    }

    #[test]
    fn connection_state_and_topics() {
        let mut b = small(4);
        let p = pid();
        b.on_connected(5, p, Direction::Inbound, None).unwrap();
        b.set_subscribed(&p, BlockVersion::V3, true);
        b.set_subscribed(&p, BlockVersion::V4, true);
        let r = b.get(&p).unwrap();
        assert_eq!(r.connectedness.as_int(), 1);
        assert_eq!(r.direction.as_int(), 1);
        assert_eq!(r.block_topics.bits(), 0b1100);
        assert!(r.block_topics.contains(BlockVersion::V3));
        assert!(!r.block_topics.contains(BlockVersion::V1));
        assert_eq!(b.connected_count(), 1);
        assert!(b.dial_candidates().is_empty());
        b.on_disconnected(6, &p);
        let r = b.get(&p).unwrap();
        assert_eq!(r.connectedness.as_int(), 2);
        assert!(!r.block_topics.any());
        b.on_dial_failed(7, &p);
        assert_eq!(b.get(&p).unwrap().connectedness.as_int(), 3);
    }

    #[test]
    fn expire_honours_ttls_and_connections() {
        let mut b = PeerBook::new(PeerBookConfig::default());
        let (disc, stat, conn, prot) = (pid(), pid(), pid(), pid());
        b.add_addrs(0, disc, [addr(1)]).unwrap();
        b.set_static(0, stat, true).unwrap();
        b.on_connected(0, conn, Direction::Inbound, None).unwrap();
        b.set_protected(0, prot, true).unwrap();
        assert_eq!(
            b.expire(DEFAULT_DISCOVERED_TTL_MS),
            0,
            "exactly at TTL stays"
        );
        assert_eq!(b.expire(DEFAULT_DISCOVERED_TTL_MS + 1), 2);
        assert!(b.get(&disc).is_none() && b.get(&prot).is_none());
        assert!(b.get(&stat).is_some() && b.get(&conn).is_some());
        // A clock stepping back does not revive anything or change the verdict.
        assert_eq!(b.expire(5), 0);
        // Static peers never expire: their record was made at time 0 (before the node knew
        // the time) and must survive the first housekeeping at today's Unix time.
        assert_eq!(b.expire(1_750_000_000_000), 0);
        assert!(b.get(&stat).is_some_and(|r| r.is_static));
        assert!(b.get(&conn).is_some(), "connected peers never expire");
    }

    #[test]
    fn export_import_round_trips_through_json_and_rebounds() {
        let mut b = small(8);
        let p = pid();
        b.add_addrs(100, p, [addr(1), addr(2)]).unwrap();
        b.set_enr(100, p, "enr:-xyz", [7; 32], 901).unwrap();
        b.on_connected(100, p, Direction::Outbound, None).unwrap();
        b.set_identify(100, &p, "op-node", "1", ["/meshsub/1.1.0"])
            .unwrap();
        b.set_scores(
            &p,
            GossipScores {
                total: -3.5,
                ip_colocation_factor: 1.0,
                ..Default::default()
            },
        );
        let json = serde_json::to_string(&b.export()).unwrap();
        assert!(json.contains("IPColocationFactor"));
        let snap: PeerBookSnapshot = serde_json::from_str(&json).unwrap();
        let mut c = small(8);
        assert_eq!(c.import(200, snap.clone()).unwrap(), 1);
        let r = c.get(&p).unwrap();
        assert_eq!(r.addrs, vec![addr(1), addr(2)]);
        assert_eq!(r.chain_id, 901);
        assert_eq!(r.scores.total, -3.5);
        assert_eq!(r.connectedness, Connectedness::NotConnected);
        assert_eq!(r.direction, Direction::Unknown);

        // A hostile snapshot: too many addresses, huge strings, future timestamps, bad version.
        let mut bad = snap.clone();
        let rec = &mut bad.peers[0].record;
        rec.addrs = (0..1000).map(addr).collect();
        rec.agent_version = "a".repeat(100_000);
        rec.protocols = vec!["p".into(); 10_000];
        rec.enr = Some("garbage".into());
        rec.last_seen = u64::MAX;
        bad.peers[0].peer = pid();
        let mut d = small(8);
        assert_eq!(d.import(300, bad.clone()).unwrap(), 1);
        let r = d.get(&bad.peers[0].peer).unwrap();
        assert_eq!(r.addrs.len(), DEFAULT_MAX_ADDRS_PER_PEER);
        assert_eq!(r.agent_version.len(), MAX_STRING_LEN);
        assert_eq!(r.protocols.len(), MAX_PROTOCOLS);
        assert_eq!(r.enr, None);
        assert_eq!(r.last_seen, 300);
        bad.version = 99;
        assert_eq!(d.import(300, bad), Err(PeerBookError::SnapshotVersion(99)));
    }

    #[test]
    fn import_respects_the_bound() {
        let mut src = small(100);
        for i in 0..100 {
            src.add_addrs(i, pid(), [addr(1)]).unwrap();
        }
        let mut dst = small(10);
        let keep = pid();
        dst.on_connected(0, keep, Direction::Inbound, None).unwrap();
        dst.import(1_000, src.export()).unwrap();
        assert_eq!(dst.len(), 10);
        assert!(dst.get(&keep).is_some());
        // The newest imported records won.
        assert!(
            dst.iter()
                .filter(|(p, _)| **p != keep)
                .all(|(_, r)| r.last_seen >= 91)
        );
    }

    // ---- the subnet quota ----------------------------------------------------------------

    fn at(ip: [u8; 4], port: u16) -> Multiaddr {
        format!("/ip4/{}.{}.{}.{}/tcp/{port}", ip[0], ip[1], ip[2], ip[3])
            .parse()
            .unwrap()
    }

    /// A full default-size book: 1,000 honest peers, each in its own /24.
    fn honest_book() -> (PeerBook, Vec<PeerId>) {
        let mut b = PeerBook::new(PeerBookConfig::default());
        let honest: Vec<PeerId> = (0..1_000u64)
            .map(|i| {
                let p = pid();
                b.add_addrs(i, p, [at([11, (i / 250) as u8, (i % 250) as u8, 7], 9222)])
                    .unwrap();
                p
            })
            .collect();
        (b, honest)
    }

    /// 1,000 records injected (discovery) from one /24 into a book of 1,000 honest ones: every
    /// honest record stays and the range holds 8, its newest. Without the quota the book's
    /// bound evicted 976 honest records.
    #[test]
    fn a_thousand_injected_peers_from_one_subnet_leave_the_honest_ones_in_place() {
        let (mut b, honest) = honest_book();
        for i in 0..1_000u64 {
            b.add_addrs(
                10_000 + i,
                pid(),
                [at([203, 0, 113, (i % 250) as u8 + 1], 9222)],
            )
            .unwrap();
            assert!(b.peers_in_subnet_of("203.0.113.1".parse().unwrap()) <= DEFAULT_MAX_PER_SUBNET);
        }
        assert!(
            honest.iter().all(|p| b.get(p).is_some()),
            "an honest record was evicted"
        );
        assert_eq!(b.len(), 1_000 + DEFAULT_MAX_PER_SUBNET);
        assert!(
            b.iter()
                .filter(|(_, r)| r.last_seen >= 10_000)
                .all(|(_, r)| r.last_seen >= 10_992)
        );
    }

    /// Inbound churn: 1,000 fresh identities connecting from one /24 and dropping (no
    /// addresses, only the connection's IP) displace each other, not the honest records.
    #[test]
    fn churned_connections_from_one_subnet_leave_the_honest_ones_in_place() {
        let (mut b, honest) = honest_book();
        for i in 0..1_000u64 {
            let p = pid();
            let ip = Some(IpAddr::from([198, 51, 100, (i % 250) as u8 + 1]));
            b.on_connected(10_000 + i, p, Direction::Inbound, ip)
                .unwrap();
            b.on_disconnected(10_000 + i, &p);
        }
        assert!(
            honest.iter().all(|p| b.get(p).is_some()),
            "an honest record was evicted"
        );
        assert_eq!(b.peers_in_subnet_of("198.51.100.9".parse().unwrap()), 8);
    }

    /// Connected, static and protected peers are never evicted by the quota: a subnet full of
    /// them refuses a discovered peer, and still admits a connected one.
    #[test]
    fn the_quota_never_evicts_connected_static_or_protected_peers() {
        let mut b = PeerBook::new(PeerBookConfig::default());
        let net = |i: u8| at([203, 0, 113, i], 9222);
        let mut keep = Vec::new();
        for i in 0..8u8 {
            let p = pid();
            b.add_addrs(u64::from(i), p, [net(i + 1)]).unwrap();
            match i % 3 {
                0 => b
                    .on_connected(u64::from(i), p, Direction::Outbound, None)
                    .unwrap(),
                1 => b.set_static(u64::from(i), p, true).unwrap(),
                _ => b.set_protected(u64::from(i), p, true).unwrap(),
            }
            keep.push(p);
        }
        assert_eq!(
            b.add_addrs(100, pid(), [net(50)]),
            Err(PeerBookError::SubnetFull { max: 8 })
        );
        let late = pid();
        b.on_connected(
            101,
            late,
            Direction::Inbound,
            Some("203.0.113.77".parse().unwrap()),
        )
        .unwrap();
        assert!(keep.iter().chain([&late]).all(|p| b.get(p).is_some()));
        assert_eq!(b.peers_in_subnet_of("203.0.113.1".parse().unwrap()), 9);
        // One evictable record in a subnet of 9 is not room for a tenth: refused, and
        // nothing is evicted for it.
        b.on_disconnected(102, &late);
        assert!(b.add_addrs(103, pid(), [net(51)]).is_err());
        assert!(b.get(&late).is_some());
        // Once the operator unprotects one, the two evictable ones make room, least recently
        // seen first, and the subnet is back at its quota.
        b.set_protected(104, keep[2], false).unwrap();
        let newcomer = pid();
        b.add_addrs(105, newcomer, [net(52)]).unwrap();
        assert!(b.get(&late).is_none() && b.get(&keep[2]).is_none());
        assert!(b.get(&newcomer).is_some());
        assert_eq!(b.peers_in_subnet_of("203.0.113.1".parse().unwrap()), 8);
        assert!(
            keep.iter()
                .enumerate()
                .all(|(i, p)| i == 2 || b.get(p).is_some())
        );
    }

    /// A saved book cannot seed a restart with more than the quota: import keeps the newest 8
    /// evictable records of a subnet (plus static and protected ones), through JSON.
    #[test]
    fn the_quota_holds_across_export_and_import() {
        let mut src = PeerBook::new(PeerBookConfig {
            max_per_subnet: usize::MAX,
            ..Default::default()
        });
        let protected = pid();
        src.add_addrs(0, protected, [at([203, 0, 113, 1], 1)])
            .unwrap();
        src.set_protected(0, protected, true).unwrap();
        for i in 0..100u64 {
            src.add_addrs(10 + i, pid(), [at([203, 0, 113, (i % 250) as u8 + 2], 1)])
                .unwrap();
        }
        let honest = pid();
        src.add_addrs(5, honest, [at([11, 0, 0, 7], 1)]).unwrap();
        let json = serde_json::to_string(&src.export()).unwrap();

        let mut dst = PeerBook::new(PeerBookConfig::default());
        dst.import(1_000, serde_json::from_str(&json).unwrap())
            .unwrap();
        assert!(dst.get(&protected).is_some() && dst.get(&honest).is_some());
        assert_eq!(dst.peers_in_subnet_of("203.0.113.9".parse().unwrap()), 9);
        assert!(
            dst.iter()
                .filter(|(p, r)| **p != protected && r.addrs[0].to_string().contains("203.0.113"))
                .all(|(_, r)| r.last_seen >= 102)
        );
        // And what it exports again is within the quota.
        let mut again = PeerBook::new(PeerBookConfig::default());
        again.import(2_000, dst.export()).unwrap();
        assert_eq!(again.peers_in_subnet_of("203.0.113.9".parse().unwrap()), 9);
    }

    /// Loopback skips the quota only when the owner asks (many nodes on one host).
    #[test]
    fn loopback_is_quota_exempt_only_when_asked() {
        let mut strict = PeerBook::new(PeerBookConfig::default());
        let mut devnet = PeerBook::new(PeerBookConfig::default()).exempt_loopback(true);
        for i in 0..30u64 {
            let a = at([127, 0, 0, 1], 9000 + i as u16);
            let _ = strict.add_addrs(i, pid(), [a.clone()]);
            devnet.add_addrs(i, pid(), [a]).unwrap();
        }
        assert_eq!((strict.len(), devnet.len()), (8, 30));
    }
}
