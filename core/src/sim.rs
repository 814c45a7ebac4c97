//! A deterministic network simulator for the core (feature `test-util`).
//!
//! N [`Node`]s exchange gossip over an in-memory bus with per-message latency and loss, connect
//! through each other's gates, and are driven by a virtual clock that jumps straight to the next
//! event or deadline. One seed fixes everything: the same seed gives the same trace, bit for bit
//! ([`Sim::trace_hash`]). What the bus models of gossipsub: messages are identified by op-node's
//! message id, each node validates a message once (a duplicate cache with a 65 s TTL), forwards
//! what it accepts to every connected peer but the one it came from, and drops what it rejects
//! or ignores.
//!
//! Adversaries are nodes with a [`Role`]: spammers send invalid blocks, snappy bombs and
//! wrong-topic replays to whoever they are connected to.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use alloy_primitives::{B256, Bytes};
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

use crate::fork::ForkSchedule;
use crate::gossip::signature::SequencerKey;
use crate::gossip::topic::{BlockTopic, BlockVersion};
use crate::gossip::wire::{MessageId, message_id};
use crate::testkit::{BlockBuilder, dev_key, enr, peer_id};
use crate::{
    Action, Config, Direction, GossipMessage, Input, MessageHandle, Node, PublishRequest,
    SplitMix64, UnixMillis,
};

/// Chain id of simulated networks.
pub const SIM_CHAIN_ID: u64 = 901;
/// Start of simulated time (Unix ms).
pub const SIM_START_MS: u64 = 1_750_000_000_000;
/// gossipsub's duplicate-cache TTL.
pub const SEEN_TTL_MS: u64 = 65_000;

/// What a simulated node does besides running its core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Validates, forwards and delivers.
    Honest,
    /// Honest, and publishes the blocks the scenario asks for with its key.
    Sequencer,
    /// Every `interval_ms` sends one piece of junk to every connected peer.
    Spammer {
        /// Time between bursts.
        interval_ms: u64,
    },
}

/// Bus and network settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of everything random.
    pub seed: u64,
    /// Least one-way latency, ms.
    pub latency_min_ms: u64,
    /// Most one-way latency, ms.
    pub latency_max_ms: u64,
    /// Probability that one gossip transmission is lost.
    pub loss: f64,
    /// L2 block time, seconds.
    pub block_time_secs: u64,
    /// How many random other nodes each node learns from "discovery" at start.
    pub discovered_per_node: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            latency_min_ms: 5,
            latency_max_ms: 60,
            loss: 0.01,
            block_time_secs: 2,
            discovered_per_node: 12,
        }
    }
}

/// One simulated node.
#[derive(Debug)]
pub struct SimNode {
    /// The core under test.
    pub node: Node,
    /// Its peer id.
    pub peer_id: PeerId,
    /// Its address.
    pub addr: Multiaddr,
    /// Its IP.
    pub ip: IpAddr,
    /// What it does.
    pub role: Role,
    /// Whether it runs (a stopped node drops everything sent to it).
    pub alive: bool,
    /// Nodes it is connected to.
    pub conns: BTreeSet<usize>,
    /// Deliveries per block hash (must end at exactly 1 per block).
    pub delivered: BTreeMap<B256, u32>,
    /// Gossipsub's duplicate cache: message id -> expiry.
    seen: BTreeMap<MessageId, UnixMillis>,
    /// Messages held for a verdict: handle -> (id, topic, data, from).
    held: BTreeMap<u64, (MessageId, Arc<str>, Bytes, usize)>,
    next_handle: u64,
    timer: Option<UnixMillis>,
    /// Junk counter (spammers).
    junk: u64,
    /// Valid messages it has seen, for replay attacks (spammers).
    replayable: Option<Bytes>,
    /// Actions seen, by kind, for assertions.
    pub disconnects_banned: BTreeSet<PeerId>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Gossip {
        to: usize,
        from: usize,
        id: MessageId,
        topic: Arc<str>,
        data: Bytes,
    },
    Dial {
        from: usize,
        to: usize,
    },
    Timer {
        node: usize,
    },
    Spam {
        node: usize,
    },
}

/// The simulator.
#[derive(Debug)]
pub struct Sim {
    /// Settings.
    pub config: SimConfig,
    /// Virtual time (Unix ms).
    pub now: UnixMillis,
    /// The nodes.
    pub nodes: Vec<SimNode>,
    by_peer: BTreeMap<PeerId, usize>,
    queue: BinaryHeap<Reverse<(UnixMillis, u64, Event)>>,
    seq: u64,
    rng: SplitMix64,
    trace: Sha256,
    /// Events processed.
    pub events: u64,
    /// Gossip transmissions lost on the bus.
    pub lost: u64,
    /// The sequencer's current key.
    pub sequencer_key: SequencerKey,
    /// Forks of the simulated chain.
    pub forks: ForkSchedule,
}

/// The range every simulated node's address lies in (each node's [`Config`] lists it as its
/// netrestrict, as an operator of a private network would).
pub const SIM_NET: ipnet::IpNet = ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
    std::net::Ipv4Addr::new(10, 0, 0, 0),
    8,
));

impl Sim {
    /// An empty simulation; add nodes with [`Sim::add_node`].
    pub fn new(config: SimConfig) -> Self {
        Self {
            rng: SplitMix64::new(config.seed),
            config,
            now: SIM_START_MS,
            nodes: Vec::new(),
            by_peer: BTreeMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            trace: Sha256::new(),
            events: 0,
            lost: 0,
            sequencer_key: dev_key(0),
            forks: ForkSchedule::ALL_AT_GENESIS,
        }
    }

    /// The node config a simulated node `i` gets (tests may change it before `add_node_with`).
    pub fn node_config(&self, i: u64) -> Config {
        let mut c = Config::new(
            SIM_CHAIN_ID,
            self.sequencer_key.address(),
            self.forks,
            self.config.block_time_secs,
            peer_id(i),
        );
        c.rng_seed = self.config.seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // The simulated network lives in 10.0.0.0/8, private space the address policy refuses
        // to dial unless the operator's netrestrict list covers it.
        c.gater.netrestrict = Some(vec![SIM_NET]);
        c
    }

    /// Adds a node with the default config at `ip`; returns its index. A sequencer signs with
    /// [`Sim::sequencer_key`] (the sim answers its [`Action::Sign`]).
    pub fn add_node(&mut self, role: Role, ip: Ipv4Addr) -> usize {
        let i = self.nodes.len() as u64;
        let c = self.node_config(i);
        self.add_node_with(role, ip, c)
    }

    /// Adds a node with this config; its peer id must be `testkit::peer_id(index)`.
    pub fn add_node_with(&mut self, role: Role, ip: Ipv4Addr, config: Config) -> usize {
        let index = self.nodes.len();
        let pid = peer_id(index as u64);
        assert_eq!(
            config.local_peer_id, pid,
            "sim node {index} must use testkit::peer_id({index})"
        );
        let addr: Multiaddr = format!("/ip4/{ip}/tcp/9000")
            .parse()
            .expect("valid multiaddr");
        self.nodes.push(SimNode {
            node: Node::new(config),
            peer_id: pid,
            addr,
            ip: IpAddr::V4(ip),
            role,
            alive: true,
            conns: BTreeSet::new(),
            delivered: BTreeMap::new(),
            seen: BTreeMap::new(),
            held: BTreeMap::new(),
            next_handle: 0,
            timer: None,
            junk: 0,
            replayable: None,
            disconnects_banned: BTreeSet::new(),
        });
        self.by_peer.insert(pid, index);
        if let Role::Spammer { interval_ms } = role {
            self.schedule(self.now + interval_ms, Event::Spam { node: index });
        }
        self.schedule(self.now, Event::Timer { node: index });
        index
    }

    /// Tells node `to` about node `about` as if discovery had found its record.
    pub fn discover(&mut self, to: usize, about: usize) {
        let n = &self.nodes[about];
        let record = enr(about as u64, SIM_CHAIN_ID, n.ip, 9000);
        self.input(to, Input::Discovered(Box::new(record)));
    }

    /// Gives every node `discovered_per_node` random other nodes among `candidates`.
    pub fn discover_random(&mut self, nodes: &[usize], candidates: &[usize]) {
        for &i in nodes {
            let mut picks: Vec<usize> = candidates.iter().copied().filter(|&c| c != i).collect();
            for k in (1..picks.len()).rev() {
                let j = self.rng.random_range(0..=k);
                picks.swap(k, j);
            }
            picks.truncate(self.config.discovered_per_node);
            for c in picks {
                self.discover(i, c);
            }
        }
    }

    fn schedule(&mut self, at: UnixMillis, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, event)));
    }

    fn latency(&mut self) -> u64 {
        let (lo, hi) = (
            self.config.latency_min_ms,
            self.config.latency_max_ms.max(self.config.latency_min_ms),
        );
        self.rng.random_range(lo..=hi)
    }

    fn record(&mut self, node: usize, tag: u8, extra: &[u8]) {
        self.trace.update(self.now.to_le_bytes());
        self.trace.update((node as u64).to_le_bytes());
        self.trace.update([tag]);
        self.trace.update((extra.len() as u64).to_le_bytes());
        self.trace.update(extra);
    }

    /// A digest of every event and action so far: equal seeds give equal digests.
    pub fn trace_hash(&self) -> [u8; 32] {
        self.trace.clone().finalize().into()
    }

    /// Feeds an input to node `i` now and processes its actions.
    pub fn input(&mut self, i: usize, input: Input) {
        if !self.nodes[i].alive {
            return;
        }
        let now = self.now;
        self.nodes[i].node.handle_input(now, input);
        self.drain(i);
    }

    fn drain(&mut self, i: usize) {
        while let Some(action) = self.nodes[i].node.poll_action() {
            self.act(i, action);
        }
        if let Some(t) = self.nodes[i].node.poll_timeout() {
            let t = t.max(self.now);
            if self.nodes[i]
                .timer
                .is_none_or(|cur| t < cur || cur < self.now)
            {
                self.nodes[i].timer = Some(t);
                self.schedule(t, Event::Timer { node: i });
            }
        }
    }

    fn act(&mut self, i: usize, action: Action) {
        match action {
            Action::Verdict {
                handle, verdict, ..
            } => {
                let Some((id, topic, data, from)) = self.nodes[i].held.remove(&handle.0) else {
                    return;
                };
                self.record(i, 1, &[verdict as u8]);
                if verdict == crate::Verdict::Accept {
                    if matches!(self.nodes[i].role, Role::Spammer { .. }) {
                        self.nodes[i].replayable = Some(data.clone());
                    }
                    self.broadcast(i, Some(from), id, topic, data);
                }
            }
            Action::Deliver(block) => {
                let hash = block.envelope.payload.as_v1().block_hash;
                self.record(i, 2, hash.as_slice());
                *self.nodes[i].delivered.entry(hash).or_default() += 1;
            }
            Action::Sign {
                id,
                chain_id,
                payload_hash,
            } => {
                let hash = crate::gossip::signature::signing_hash(
                    crate::gossip::signature::BLOCK_SIGNING_DOMAIN,
                    chain_id,
                    payload_hash,
                );
                let signature = self.sequencer_key.sign_hash(&hash);
                let now = self.now;
                self.nodes[i].node.handle_input(
                    now,
                    Input::Signed {
                        id,
                        result: Ok(signature),
                    },
                );
            }
            Action::Publish {
                id,
                topic,
                data,
                message_id,
                ..
            } => {
                let now = self.now;
                self.nodes[i].node.handle_input(
                    now,
                    Input::Published {
                        id,
                        result: Ok(Vec::new()),
                    },
                );
                self.record(i, 3, &message_id.0);
                self.nodes[i]
                    .seen
                    .insert(message_id, self.now + SEEN_TTL_MS);
                self.broadcast(i, None, message_id, topic.into(), data);
            }
            Action::Dial { peer, .. } => {
                self.record(i, 4, &peer.to_bytes());
                let Some(&to) = self.by_peer.get(&peer) else {
                    let now = self.now;
                    self.nodes[i].node.handle_input(
                        now,
                        Input::DialFailed {
                            peer,
                            error: "unknown".into(),
                        },
                    );
                    return;
                };
                let at = self.now + self.latency();
                self.schedule(at, Event::Dial { from: i, to });
            }
            Action::Disconnect { peer, reason } => {
                self.record(i, 5, &peer.to_bytes());
                if reason == crate::DisconnectReason::Banned {
                    self.nodes[i].disconnects_banned.insert(peer);
                }
                if let Some(&to) = self.by_peer.get(&peer) {
                    self.close(i, to);
                }
            }
            // A block the sequencer's own validator refuses (a key the nodes no longer
            // accept, in rotation scenarios) is never sent: like a block lost in transit.
            Action::PublishOutcome { id, outcome } => {
                if !matches!(outcome, crate::PublishOutcome::Published { .. }) {
                    self.record(i, 8, &id.0.to_be_bytes());
                }
            }
            Action::SetAppScore { .. }
            | Action::AdminResponse { .. }
            | Action::PayloadResponse { .. } => {}
            Action::PersistState(_) => self.record(i, 6, &[]),
            Action::SignerSuspect { address } => self.record(i, 7, address.as_slice()),
            Action::Banned(_) => {}
        }
    }

    fn close(&mut self, a: usize, b: usize) {
        let was = self.nodes[a].conns.remove(&b) | self.nodes[b].conns.remove(&a);
        if was {
            let now = self.now;
            let (pa, pb) = (self.nodes[a].peer_id, self.nodes[b].peer_id);
            self.nodes[a]
                .node
                .handle_input(now, Input::ConnectionClosed { peer: pb });
            self.nodes[b]
                .node
                .handle_input(now, Input::ConnectionClosed { peer: pa });
            self.drain(b);
        }
    }

    fn broadcast(
        &mut self,
        from: usize,
        except: Option<usize>,
        id: MessageId,
        topic: Arc<str>,
        data: Bytes,
    ) {
        let targets: Vec<usize> = self.nodes[from]
            .conns
            .iter()
            .copied()
            .filter(|&t| Some(t) != except)
            .collect();
        for to in targets {
            if self.rng.random_bool(self.config.loss.clamp(0.0, 1.0)) {
                self.lost += 1;
                continue;
            }
            let at = self.now + self.latency();
            self.schedule(
                at,
                Event::Gossip {
                    to,
                    from,
                    id,
                    topic: topic.clone(),
                    data: data.clone(),
                },
            );
        }
    }

    /// Sends gossip from `from` to its peers as if it had published it (no validation on its
    /// side): how adversaries inject messages.
    pub fn inject(&mut self, from: usize, topic: &str, data: Vec<u8>) {
        let id = message_id(topic, &data);
        self.broadcast(from, None, id, topic.into(), data.into());
    }

    /// The sequencer node publishes a v4 block `number` with a few real transactions, signed
    /// with [`Sim::sequencer_key`].
    pub fn publish_block(&mut self, sequencer: usize, number: u64) {
        let ts = self.now / 1000;
        let version = self.forks.publish_version(ts);
        let txs = crate::testkit::transactions(SIM_CHAIN_ID, number, 3, 16);
        let (payload, root) = BlockBuilder::new(version, number, ts)
            .with_transactions(txs)
            .build();
        self.input(
            sequencer,
            Input::Publish {
                id: crate::publish::PublishId(number),
                request: PublishRequest::Sign {
                    payload: Box::new(payload),
                    parent_beacon_block_root: root,
                },
            },
        );
    }

    /// Runs events until virtual time `until` (inclusive).
    pub fn run_until(&mut self, until: UnixMillis) {
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > until {
                break;
            }
            let Some(Reverse((at, _, event))) = self.queue.pop() else {
                break;
            };
            self.now = self.now.max(at);
            self.events += 1;
            self.handle(event);
        }
        self.now = self.now.max(until);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Timer { node } => {
                if !self.nodes[node].alive {
                    return;
                }
                if self.nodes[node].timer.is_some_and(|t| t <= self.now) {
                    self.nodes[node].timer = None;
                }
                let now = self.now;
                self.nodes[node].seen.retain(|_, exp| *exp > now);
                self.input(node, Input::Tick);
            }
            Event::Gossip {
                to,
                from,
                id,
                topic,
                data,
            } => {
                let n = &mut self.nodes[to];
                if !n.alive || !n.conns.contains(&from) {
                    return;
                }
                if n.seen.contains_key(&id) {
                    return;
                }
                n.seen.insert(id, self.now + SEEN_TTL_MS);
                let handle = n.next_handle;
                n.next_handle += 1;
                n.held
                    .insert(handle, (id, topic.clone(), data.clone(), from));
                let source = Some(self.nodes[from].peer_id);
                self.record(to, 7, &id.0);
                self.input(
                    to,
                    Input::Gossip(GossipMessage {
                        handle: MessageHandle(handle),
                        topic: topic.to_string(),
                        data,
                        source,
                    }),
                );
            }
            Event::Dial { from, to } => self.complete_dial(from, to),
            Event::Spam { node } => self.spam(node),
        }
    }

    fn complete_dial(&mut self, from: usize, to: usize) {
        let now = self.now;
        let (pf, pt) = (self.nodes[from].peer_id, self.nodes[to].peer_id);
        let (af, at) = (self.nodes[from].addr.clone(), self.nodes[to].addr.clone());
        let from_ip = self.nodes[from].ip;
        let ok = self.nodes[to].alive
            && self.nodes[from].alive
            && self.nodes[to].node.allow_inbound(now, from_ip)
            && self.nodes[to]
                .node
                .allow_established(now, &pf, &af, Direction::Inbound)
            && self.nodes[from]
                .node
                .allow_established(now, &pt, &at, Direction::Outbound);
        self.record(from, 8, &[ok as u8]);
        if !ok {
            self.input(
                from,
                Input::DialFailed {
                    peer: pt,
                    error: "refused".into(),
                },
            );
            return;
        }
        if self.nodes[from].conns.contains(&to) {
            self.input(
                from,
                Input::ConnectionEstablished {
                    peer: pt,
                    addr: at,
                    direction: Direction::Outbound,
                },
            );
            return;
        }
        self.nodes[from].conns.insert(to);
        self.nodes[to].conns.insert(from);
        self.input(
            to,
            Input::ConnectionEstablished {
                peer: pf,
                addr: af,
                direction: Direction::Inbound,
            },
        );
        self.input(
            from,
            Input::ConnectionEstablished {
                peer: pt,
                addr: at,
                direction: Direction::Outbound,
            },
        );
    }

    fn spam(&mut self, node: usize) {
        let Role::Spammer { interval_ms } = self.nodes[node].role else {
            return;
        };
        if !self.nodes[node].alive {
            return;
        }
        let k = self.nodes[node].junk;
        self.nodes[node].junk += 1;
        let v4 = BlockTopic::new(SIM_CHAIN_ID, BlockVersion::V4).to_string();
        let v3 = BlockTopic::new(SIM_CHAIN_ID, BlockVersion::V3).to_string();
        match k % 3 {
            0 => {
                // A well-formed block signed by the wrong key.
                let b = BlockBuilder::new(BlockVersion::V4, 1_000_000 + k, self.now / 1000);
                let data = b.sign(&dev_key(666), SIM_CHAIN_ID).expect("small block");
                self.inject(node, &v4, data);
            }
            1 => {
                // A snappy bomb: declares 4 GiB; the tail makes every id distinct.
                let mut data = vec![0x80, 0x80, 0x80, 0x80, 0x10];
                data.extend_from_slice(&k.to_le_bytes());
                data.extend_from_slice(&self.rng.next_u64().to_le_bytes());
                self.inject(node, &v4, data);
            }
            _ => {
                // A valid block replayed on the v3 topic (another id, another shape).
                match self.nodes[node].replayable.clone() {
                    Some(data) => self.inject(node, &v3, data.to_vec()),
                    None => {
                        let b = BlockBuilder::new(BlockVersion::V4, 2_000_000 + k, self.now / 1000);
                        let data = b.sign(&dev_key(667), SIM_CHAIN_ID).expect("small block");
                        self.inject(node, &v3, data);
                    }
                }
            }
        }
        self.schedule(self.now + interval_ms, Event::Spam { node });
    }

    /// Stops node `i` (its connections close).
    pub fn stop(&mut self, i: usize) {
        let peers: Vec<usize> = self.nodes[i].conns.iter().copied().collect();
        for p in peers {
            self.close(i, p);
        }
        self.nodes[i].alive = false;
    }

    /// Replaces node `i`'s core with a fresh one from `config`, restores `state` into it, and
    /// starts it again (a restart from disk).
    pub fn restart(
        &mut self,
        i: usize,
        config: Config,
        state: crate::NodeState,
    ) -> crate::RestoreReport {
        self.stop(i);
        let mut node = Node::new(config);
        let report = node.restore_state(self.now, state).expect("state restores");
        let n = &mut self.nodes[i];
        n.node = node;
        n.alive = true;
        n.seen.clear();
        n.held.clear();
        n.timer = None;
        self.schedule(self.now, Event::Timer { node: i });
        report
    }

    /// Nodes connected to node `i`.
    pub fn connections(&self, i: usize) -> &BTreeSet<usize> {
        &self.nodes[i].conns
    }

    /// Draws a number in `0..n` from the simulation's RNG.
    pub fn random_below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n.max(1))
    }
}
