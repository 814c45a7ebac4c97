//! The libp2p behaviour both runtimes run: gossipsub configured as op-node (spec §6), identify,
//! ping, the `payload_by_number` server (spec §8) and [`Gate`], which owns the [`Node`] and
//! answers libp2p's connection hooks with the core's gating decisions.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::gossipsub::{
    self, IdentTopic, MessageAuthenticity, ValidationMode, WhitelistSubscriptionFilter,
};
use libp2p::identity::{Keypair, PeerId};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{StreamProtocol, identify, ping, request_response};

use op_p2p_core::gossip::topic::BlockTopic;
use op_p2p_core::gossip::wire::{MAX_GOSSIP_SIZE, MessageIdMemo};
use op_p2p_core::peers::scoring::{PeerScoreParams, PeerScoreThresholds};
use op_p2p_core::{Direction, Input, Node, UnixMillis};

/// The wall clock the gate reads for its decisions (Unix ms), supplied by the runtime.
pub type Clock = Arc<dyn Fn() -> UnixMillis + Send + Sync>;

/// Messages queued for one connection before gossipsub drops new ones (see
/// [`gossipsub_config`]).
pub const SEND_QUEUE_LEN: usize = 32;

/// Score per message a peer's full send queue made gossipsub drop (see [`peer_score`]).
pub const SLOW_PEER_WEIGHT: f64 = -1.0;

/// How often we ping each peer (op-node: about every 3 minutes; we answer any rate).
pub const PING_INTERVAL: Duration = Duration::from_secs(180);

/// Largest `payload_by_number` request read (the request is exactly 8 bytes).
const MAX_REQUEST_BYTES: u64 = 64;

/// Connections accepted and still in their handshake (Noise, Yamux), at most. Each holds a
/// socket until it finishes or times out (20 s), so silent sockets beyond this are closed at
/// once instead of exhausting descriptors.
pub const MAX_PENDING_INBOUND: u32 = 64;
/// Handshakes in progress from one source address at most (IPv6: one /64), so one host
/// re-opening silent sockets cannot take every one of the [`MAX_PENDING_INBOUND`] places.
/// Loopback is exempt when the gater exempts it from its caps (local devnets).
pub const MAX_PENDING_INBOUND_PER_IP: u32 = 8;
/// Our own dials in progress, at most (the connection manager keeps ≤ 4 + 8 in flight).
pub const MAX_PENDING_OUTBOUND: u32 = 32;
/// Established connections to one peer id, at most: two, for the moment both sides dial each
/// other at once; libp2p keeps one of them.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;

/// libp2p's connection limits for a node whose one connected-peer cap is `max_peers`
/// ([`op_p2p_core::Config::max_connected_peers`]) and whose low water mark is `low`: inbound
/// connections may take at most `max_peers − low` places, so inbound churn can never fill the
/// slots our own dials need to reach `low`.
pub fn connection_limits(max_peers: usize, low: usize) -> ConnectionLimits {
    let cap = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    ConnectionLimits::default()
        .with_max_pending_incoming(Some(MAX_PENDING_INBOUND))
        .with_max_pending_outgoing(Some(MAX_PENDING_OUTBOUND))
        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
        .with_max_established_incoming(Some(cap(max_peers.saturating_sub(low).max(1))))
        .with_max_established(Some(cap(
            max_peers.saturating_mul(MAX_CONNECTIONS_PER_PEER as usize)
        )))
}

/// The composed behaviour.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude", to_swarm = "Event")]
pub struct Behaviour {
    /// Connection counts before and after the handshake (first, so it refuses before the
    /// others see a connection).
    pub limits: connection_limits::Behaviour,
    /// Owns the core; answers the connection hooks.
    pub gate: Gate,
    /// Block gossip.
    pub gossipsub: gossipsub::Behaviour<gossipsub::IdentityTransform, WhitelistSubscriptionFilter>,
    /// Identify, with agent `op-p2p/<version>`.
    pub identify: identify::Behaviour,
    /// Ping.
    pub ping: ping::Behaviour,
    /// The `payload_by_number` server.
    pub reqresp: request_response::Behaviour<PayloadByNumberCodec>,
}

/// Events out of [`Behaviour`].
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// From gossipsub.
    Gossipsub(gossipsub::Event),
    /// From identify.
    Identify(identify::Event),
    /// From ping.
    Ping(ping::Event),
    /// From the req/resp server.
    ReqResp(request_response::Event<Vec<u8>, Vec<u8>>),
}

impl From<Infallible> for Event {
    fn from(e: Infallible) -> Self {
        match e {}
    }
}
impl From<gossipsub::Event> for Event {
    fn from(e: gossipsub::Event) -> Self {
        Event::Gossipsub(e)
    }
}
impl From<identify::Event> for Event {
    fn from(e: identify::Event) -> Self {
        Event::Identify(e)
    }
}
impl From<ping::Event> for Event {
    fn from(e: ping::Event) -> Self {
        Event::Ping(e)
    }
}
impl From<request_response::Event<Vec<u8>, Vec<u8>>> for Event {
    fn from(e: request_response::Event<Vec<u8>, Vec<u8>>) -> Self {
        Event::ReqResp(e)
    }
}

/// Why a connection was refused by the gate.
#[derive(Debug, thiserror::Error)]
#[error("connection refused by the op-p2p gater ({0})")]
pub struct Refused(&'static str);

/// The behaviour that owns the [`Node`]: libp2p asks it about every inbound accept, every
/// dial and every established connection (both directions), and tells it about connections
/// opening and closing. It produces no events of its own; the driver drains the node.
pub struct Gate {
    /// The protocol core.
    pub node: Node,
    clock: Clock,
    pending: PendingInbound,
}

/// Inbound handshakes in progress, by source address (see [`MAX_PENDING_INBOUND_PER_IP`]).
/// Each entry leaves when libp2p reports the connection established or failed, so the maps
/// hold at most [`MAX_PENDING_INBOUND`] entries.
#[derive(Debug, Default)]
struct PendingInbound {
    by_source: std::collections::HashMap<IpAddr, u32>,
    by_id: std::collections::HashMap<ConnectionId, IpAddr>,
}

impl PendingInbound {
    /// The address a source is counted under: an IPv4 address, or an IPv6 address's /64 (a
    /// host usually holds a whole /64, so counting single IPv6 addresses bounds nothing).
    fn source(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::V6(o.into())
            }
        }
    }

    /// Takes a place for `id` from `ip`, or says the source has none left.
    fn admit(&mut self, id: ConnectionId, ip: IpAddr) -> bool {
        let source = Self::source(ip);
        let n = self.by_source.entry(source).or_default();
        if *n >= MAX_PENDING_INBOUND_PER_IP {
            return false;
        }
        *n += 1;
        self.by_id.insert(id, source);
        true
    }

    /// Gives back `id`'s place, if it holds one.
    fn release(&mut self, id: ConnectionId) {
        let Some(source) = self.by_id.remove(&id) else {
            return;
        };
        if let Some(n) = self.by_source.get_mut(&source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_source.remove(&source);
            }
        }
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

impl Gate {
    /// A gate around `node`, reading time from `clock`.
    pub fn new(node: Node, clock: Clock) -> Self {
        Self {
            node,
            clock,
            pending: PendingInbound::default(),
        }
    }

    fn now(&self) -> UnixMillis {
        (self.clock)()
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let now = self.now();
        let Some(ip) = Node::ip_of(remote) else {
            return Ok(());
        };
        if !self.node.allow_inbound(now, ip) {
            return Err(ConnectionDenied::new(Refused("inbound ip")));
        }
        let exempt = ip.is_loopback() && self.node.config().gater.exempt_loopback_from_caps;
        if !exempt && !self.pending.admit(id, ip) {
            return Err(ConnectionDenied::new(Refused(
                "handshakes from this address",
            )));
        }
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _id: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let now = self.now();
        if self
            .node
            .allow_established(now, &peer, remote, Direction::Inbound)
        {
            Ok(dummy::ConnectionHandler)
        } else {
            Err(ConnectionDenied::new(Refused("inbound peer")))
        }
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _id: ConnectionId,
        peer: Option<PeerId>,
        addresses: &[Multiaddr],
        _role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        let now = self.now();
        // Every address the dial may try is checked, not just the first: libp2p tries them
        // in turn, so one blocked address among them would be dialled all the same.
        if let Some(peer) = peer {
            let refused = if addresses.is_empty() {
                !self.node.allow_dial(now, &peer, None)
            } else {
                !addresses
                    .iter()
                    .all(|a| self.node.allow_dial(now, &peer, Some(a)))
            };
            if refused {
                return Err(ConnectionDenied::new(Refused("dial")));
            }
        }
        Ok(Vec::new())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let now = self.now();
        if self
            .node
            .allow_established(now, &peer, addr, Direction::Outbound)
        {
            Ok(dummy::ConnectionHandler)
        } else {
            Err(ConnectionDenied::new(Refused("outbound peer")))
        }
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        let now = self.now();
        match &event {
            FromSwarm::ConnectionEstablished(e) => self.pending.release(e.connection_id),
            FromSwarm::ListenFailure(e) => self.pending.release(e.connection_id),
            _ => {}
        }
        match event {
            FromSwarm::ConnectionEstablished(e) if e.other_established == 0 => {
                let direction = if e.endpoint.is_dialer() {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                };
                let addr = e.endpoint.get_remote_address().clone();
                self.node.handle_input(
                    now,
                    Input::ConnectionEstablished {
                        peer: e.peer_id,
                        addr,
                        direction,
                    },
                );
            }
            FromSwarm::ConnectionClosed(e) if e.remaining_established == 0 => {
                self.node
                    .handle_input(now, Input::ConnectionClosed { peer: e.peer_id });
            }
            FromSwarm::DialFailure(e) => {
                if let Some(peer) = e.peer_id {
                    self.node.handle_input(
                        now,
                        Input::DialFailed {
                            peer,
                            error: e.error.to_string(),
                        },
                    );
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        e: THandlerOutEvent<Self>,
    ) {
        match e {}
    }

    fn poll(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// The `payload_by_number` codec: the request is the bytes the client writes before
/// half-closing (8 expected; at most 64 read), the response is written raw and the stream
/// closed (spec §8). This node only serves; it never requests.
#[derive(Debug, Clone, Default)]
pub struct PayloadByNumberCodec;

impl request_response::Codec for PayloadByNumberCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        io.take(MAX_REQUEST_BYTES).read_to_end(&mut buf).await?;
        Ok(buf)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        io.take(op_p2p_core::reqresp::codec::MAX_RESPONSE_SIZE as u64 + 5)
            .read_to_end(&mut buf)
            .await?;
        Ok(buf)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()> {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> std::io::Result<()> {
        io.write_all(&res).await?;
        io.close().await
    }
}

/// Why the behaviour could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Gossipsub refused its configuration.
    #[error("gossipsub configuration")]
    GossipsubConfig(#[source] gossipsub::ConfigBuilderError),
    /// Gossipsub refused to start (libp2p gives a static message).
    #[error("gossipsub: {0}")]
    Gossipsub(&'static str),
    /// Gossipsub refused the peer-score parameters (libp2p gives its reason as text).
    #[error("gossipsub peer scoring: {0}")]
    PeerScore(String),
    /// Subscribing to a block topic failed.
    #[error("gossipsub subscription")]
    Subscribe(#[source] gossipsub::SubscriptionError),
    /// The protocol id is not valid.
    #[error("req/resp protocol id")]
    Protocol(#[source] libp2p::swarm::InvalidProtocol),
}

/// op-node's gossipsub configuration (spec §6): D 8/6/12/6, 500 ms heartbeat, 24 s fanout,
/// 12/3 history, 65 s duplicate cache, 10 MiB messages, no flood publishing, no peer exchange,
/// strict no-sign validation, and the topic-bound message id (spec §3). Messages are held
/// until the core's verdict (`validate_messages`).
pub fn gossipsub_config() -> Result<gossipsub::Config, BuildError> {
    let memo = std::sync::Mutex::new(MessageIdMemo::new());
    gossipsub::ConfigBuilder::default()
        .mesh_n(8)
        .mesh_n_low(6)
        .mesh_n_high(12)
        .gossip_lazy(6)
        .heartbeat_interval(Duration::from_millis(500))
        .fanout_ttl(Duration::from_secs(24))
        .history_length(12)
        .history_gossip(3)
        .duplicate_cache_time(Duration::from_secs(65))
        .max_transmit_size(MAX_GOSSIP_SIZE + 1024)
        .flood_publish(false)
        // Messages queued for one connection, at most: go-libp2p-pubsub's outbound queue size
        // (op-node's), instead of rust-libp2p's 5,000. A stalled peer never dequeues, and
        // queued messages expire only when dequeued, so this is what bounds the memory one
        // stalled mesh peer pins (32 blocks; a full queue drops and counts the message).
        .connection_handler_queue_len(SEND_QUEUE_LEN)
        .validation_mode(ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(move |m: &gossipsub::Message| {
            // gossipsub asks for every copy's id before it filters duplicates; the memo answers
            // the copies of a block from memory. The lock is never contended (one swarm task);
            // a poisoned one still holds a consistent memo.
            let id = memo
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .message_id(m.topic.as_str(), &m.data);
            gossipsub::MessageId::from(id.0.to_vec())
        })
        .build()
        .map_err(BuildError::GossipsubConfig)
}

/// op-node's "light" peer-score parameters as libp2p types: no topic parameters at all.
/// `colocation_whitelist` are IPs exempt from the IP-colocation penalty (op-node: none).
pub fn peer_score(
    block_time_secs: u64,
    colocation_whitelist: &[IpAddr],
) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let p = PeerScoreParams::light(block_time_secs);
    let t = PeerScoreThresholds::default();
    let params = gossipsub::PeerScoreParams {
        topics: Default::default(),
        topic_score_cap: p.topic_score_cap,
        app_specific_weight: p.app_specific_weight,
        ip_colocation_factor_weight: p.ip_colocation_factor_weight,
        ip_colocation_factor_threshold: p.ip_colocation_factor_threshold,
        ip_colocation_factor_whitelist: colocation_whitelist.iter().copied().collect(),
        behaviour_penalty_weight: p.behaviour_penalty_weight,
        behaviour_penalty_threshold: p.behaviour_penalty_threshold,
        behaviour_penalty_decay: p.behaviour_penalty_decay,
        decay_interval: Duration::from_millis(p.decay_interval_ms),
        decay_to_zero: p.decay_to_zero,
        retain_score: Duration::from_millis(p.retain_score_ms),
        // ⚠ op-node has no slow-peer penalty (go-libp2p drops messages for a full queue and
        // scores nothing). Here each message a peer's full queue drops costs it 1 point,
        // decaying like the behaviour penalty: a stalled peer falls under the gossip and
        // graylist thresholds and is pruned from the mesh, so nothing more queues for it.
        slow_peer_weight: SLOW_PEER_WEIGHT,
        slow_peer_threshold: 0.0,
        slow_peer_decay: p.behaviour_penalty_decay,
    };
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: t.gossip,
        publish_threshold: t.publish,
        graylist_threshold: t.graylist,
        accept_px_threshold: t.accept_px,
        opportunistic_graft_threshold: t.opportunistic_graft,
    };
    (params, thresholds)
}

/// Builds the behaviour for `node`, subscribed to the chain's four block topics.
/// When `registry` is given, gossipsub's own metrics (mesh, scores, queues) are registered in it
/// under the `gossipsub` prefix.
pub fn build(
    keypair: &Keypair,
    node: Node,
    clock: Clock,
    agent_version: String,
    colocation_whitelist: &[IpAddr],
    registry: Option<&mut prometheus_client::registry::Registry>,
) -> Result<Behaviour, BuildError> {
    let chain_id = node.config().validator.chain_id;
    let block_time = node.config().block_time_secs;
    let topics: Vec<IdentTopic> = BlockTopic::all(chain_id)
        .iter()
        .map(|t| IdentTopic::new(t.to_string()))
        .collect();
    let filter = WhitelistSubscriptionFilter(topics.iter().map(|t| t.hash()).collect());
    let mut gossipsub = gossipsub::Behaviour::new_with_subscription_filter(
        MessageAuthenticity::Anonymous,
        gossipsub_config()?,
        filter,
    )
    .map_err(BuildError::Gossipsub)?;
    if let Some(registry) = registry {
        gossipsub = gossipsub.with_metrics(
            registry.sub_registry_with_prefix("gossipsub"),
            gossipsub::MetricsConfig::default(),
        );
    }
    let (params, thresholds) = peer_score(block_time, colocation_whitelist);
    gossipsub
        .with_peer_score(params, thresholds)
        .map_err(BuildError::PeerScore)?;
    for t in &topics {
        gossipsub.subscribe(t).map_err(BuildError::Subscribe)?;
    }
    let identify = identify::Behaviour::new(
        identify::Config::new("ipfs/0.1.0".into(), keypair.public())
            .with_agent_version(agent_version),
    );
    let ping = ping::Behaviour::new(ping::Config::new().with_interval(PING_INTERVAL));
    let protocol = StreamProtocol::try_from_owned(op_p2p_core::reqresp::protocol_id(chain_id))
        .map_err(BuildError::Protocol)?;
    let reqresp = request_response::Behaviour::with_codec(
        PayloadByNumberCodec,
        [(protocol, request_response::ProtocolSupport::Inbound)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_millis(
                op_p2p_core::reqresp::WRITE_DEADLINE_MS,
            ))
            .with_max_concurrent_streams(64),
    );
    let limits = connection_limits::Behaviour::new(connection_limits(
        node.config().max_connected_peers(),
        node.config().conn.low,
    ));
    Ok(Behaviour {
        limits,
        gate: Gate::new(node, clock),
        gossipsub,
        identify,
        ping,
        reqresp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn one_source_holds_at_most_its_share_of_handshakes_and_ipv6_counts_by_64() {
        let mut p = PendingInbound::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let id = ConnectionId::new_unchecked;
        for i in 0..MAX_PENDING_INBOUND_PER_IP as usize {
            assert!(p.admit(id(i), a));
        }
        assert!(!p.admit(id(100), a), "one more from the same address");
        assert!(p.admit(id(101), b), "another address has its own share");
        p.release(id(0));
        p.release(id(0)); // twice: no effect
        p.release(id(999)); // never admitted: no effect
        assert!(
            p.admit(id(102), a),
            "a finished handshake gives its place back"
        );
        assert!(!p.admit(id(103), a));
        // Every address of one /64 shares the share; the next /64 does not.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        for i in 0..MAX_PENDING_INBOUND_PER_IP as usize {
            let ip = v6(&format!("2001:db8:1:2::{:x}", i + 1));
            assert!(p.admit(id(200 + i), ip));
        }
        assert!(!p.admit(id(300), v6("2001:db8:1:2:ffff::9")));
        assert!(p.admit(id(301), v6("2001:db8:1:3::1")));
        for i in 0..400 {
            p.release(id(i));
        }
        assert!(p.by_id.is_empty() && p.by_source.is_empty(), "{p:?}");
    }

    #[test]
    fn a_connection_queues_at_most_go_libp2ps_32_messages() {
        let c = gossipsub_config().unwrap();
        assert_eq!(c.connection_handler_queue_len(), 32);
        assert_eq!(c.max_transmit_size(), MAX_GOSSIP_SIZE + 1024);
    }

    #[test]
    fn peer_score_is_op_nodes_light_set_with_an_optional_colocation_whitelist() {
        let (p, t) = peer_score(2, &[]);
        assert!(p.topics.is_empty(), "light scoring has no topic parameters");
        assert!(
            p.ip_colocation_factor_whitelist.is_empty(),
            "op-node whitelists nothing"
        );
        assert!(p.ip_colocation_factor_weight < 0.0);
        assert_eq!(p.ip_colocation_factor_threshold, 10.0);
        // Our one addition: a peer whose send queue overflows loses score (op-node: none).
        assert_eq!((p.slow_peer_weight, p.slow_peer_threshold), (-1.0, 0.0));
        assert!(p.validate().is_ok());
        assert_eq!(
            (
                t.gossip_threshold,
                t.publish_threshold,
                t.graylist_threshold
            ),
            (-10.0, -40.0, -40.0)
        );
        let local: IpAddr = std::net::Ipv4Addr::LOCALHOST.into();
        let (p, _) = peer_score(2, &[local]);
        assert_eq!(p.ip_colocation_factor_whitelist, HashSet::from([local]));
    }
}
