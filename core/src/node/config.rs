//! The node's settings: [`Config`] (every knob of the core in one value, with op-node's
//! defaults from [`Config::new`]) and [`ReqRespConfig`] (serving `payload_by_number`). Also
//! the one derived bound every component shares, [`Config::max_connected_peers`].

use alloy_primitives::Address;
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;

use crate::discovery::TableConfig;
use crate::gossip::validate::ValidatorConfig;
use crate::peers::book::PeerBookConfig;
use crate::peers::gater::GaterConfig;
use crate::peers::score_ban::BanConfig;
use crate::peers::scoring::AppScoreConfig;
use crate::peers::tides::ConnConfig;
use crate::publish::QueueConfig;
use crate::reqresp::ChainClock;
use crate::reqresp::limit::RateLimitConfig;
use crate::reqresp::store::StoreConfig;

/// Node settings. [`Config::new`] gives op-node's defaults for the rest.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our libp2p peer id (never dialled, never admitted as a remote).
    pub local_peer_id: PeerId,
    /// Validation settings (chain id, signer, forks, windows, bounds).
    pub validator: ValidatorConfig,
    /// L2 block time, seconds (scoring slots, req/resp head).
    pub block_time_secs: u64,
    /// The peer book's bounds.
    pub peers: PeerBookConfig,
    /// Dial and trim tides.
    pub conn: ConnConfig,
    /// Gating lists and caps.
    pub gater: GaterConfig,
    /// Bans on score ([`crate::peers::score_ban`]).
    pub bans: BanConfig,
    /// Application scores.
    pub app_scores: AppScoreConfig,
    /// The discovery table; `None` runs without discovery (`opp2p_discoveryTable` then
    /// answers "discovery disabled").
    pub discovery: Option<TableConfig>,
    /// Peers always redialled and never banned or pruned, with their addresses.
    pub static_peers: Vec<(PeerId, Vec<Multiaddr>)>,
    /// Serving `payload_by_number`: `None` answers every request with `1` (not found), the stub
    /// the spec recommends now that op-node stopped requesting.
    pub reqresp: Option<ReqRespConfig>,
    /// The publish queue's bounds, deadline and age limit (sequencers; see [`crate::publish`]).
    /// The signing key is not here: the runtime signs ([`Action::Sign`](super::Action::Sign)).
    pub publish: QueueConfig,
    /// Seed of the node's RNG (dial shuffles). Fixed in simulations, from the OS in production.
    pub rng_seed: u64,
    /// Most admin `connectPeer` calls waiting at once.
    pub max_pending_connects: usize,
    /// Most `payload_by_number` requests waiting for a rate-limit token at once.
    pub max_throttled_requests: usize,
}

/// Settings for serving `payload_by_number`.
#[derive(Debug, Clone)]
pub struct ReqRespConfig {
    /// The chain's genesis, for the wall-clock head.
    pub clock: ChainClock,
    /// The recent-block store's bounds.
    pub store: StoreConfig,
    /// Rate limits.
    pub limits: RateLimitConfig,
}

impl Config {
    /// The one hard limit on connected peers, from the high water mark and the static peers
    /// ([`ConnConfig::max_connected`]).
    pub fn max_connected_peers(&self) -> usize {
        self.conn.max_connected(self.static_peers.len())
    }

    /// op-node's defaults for a chain, a signer and our peer id.
    pub fn new(
        chain_id: u64,
        unsafe_signer: Address,
        forks: crate::fork::ForkSchedule,
        block_time_secs: u64,
        local_peer_id: PeerId,
    ) -> Self {
        Self {
            local_peer_id,
            validator: ValidatorConfig::new(chain_id, unsafe_signer, forks, block_time_secs),
            block_time_secs,
            peers: PeerBookConfig::default(),
            conn: ConnConfig::default(),
            gater: GaterConfig::default(),
            bans: BanConfig::default(),
            app_scores: AppScoreConfig::light(block_time_secs),
            discovery: Some(TableConfig::default()),
            static_peers: Vec::new(),
            reqresp: None,
            publish: QueueConfig::default(),
            rng_seed: 0,
            max_pending_connects: 64,
            max_throttled_requests: 256,
        }
    }
}
