//! Admin results out: the `result` shapes of the `opp2p_*` methods, as op-node's Go structs
//! encode them ([`AdminResponse`], and the [`PeerInfo`], [`PeerDump`], [`PeerStats`] and score
//! structs it carries), and [`p2p_address`], the way op-node lists a peer's addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;

use libp2p_identity::PeerId;
use multiaddr::{Multiaddr, Protocol};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::gojson::{GoIpNet, NodeId, finite, null_as_default, null_if_empty};
use super::request::AdminMethod;
use crate::peers::gater::Gater;

/// Connectedness and direction as `PeerInfo` carries them: the peer book's types, which
/// serialise as Go's `network.Connectedness` / `network.Direction` integers.
pub use crate::peers::book::{Connectedness, Direction as PeerDirection};

/// Gossipsub counters on the block topics (op-node `store.TopicScores`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicScores {
    /// Seconds in the mesh.
    #[serde(serialize_with = "finite")]
    pub time_in_mesh: f64,
    /// First deliveries counter.
    #[serde(serialize_with = "finite")]
    pub first_message_deliveries: f64,
    /// Mesh deliveries counter.
    #[serde(serialize_with = "finite")]
    pub mesh_message_deliveries: f64,
    /// Invalid deliveries counter.
    #[serde(serialize_with = "finite")]
    pub invalid_message_deliveries: f64,
}

impl TopicScores {
    /// The `blocks` entry from the per-topic counters (spec §10): the delivery counters add up
    /// over all topics; `timeInMesh` is the largest per-topic value.
    pub fn combine(per_topic: impl IntoIterator<Item = TopicScores>) -> TopicScores {
        per_topic
            .into_iter()
            .fold(TopicScores::default(), |a, t| TopicScores {
                time_in_mesh: a.time_in_mesh.max(t.time_in_mesh),
                first_message_deliveries: a.first_message_deliveries + t.first_message_deliveries,
                mesh_message_deliveries: a.mesh_message_deliveries + t.mesh_message_deliveries,
                invalid_message_deliveries: a.invalid_message_deliveries
                    + t.invalid_message_deliveries,
            })
    }
}

/// A peer's gossipsub score parts (op-node `store.GossipScores`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GossipScores {
    /// Total gossipsub score, app score included.
    #[serde(serialize_with = "finite")]
    pub total: f64,
    /// Block-topic counters ([`TopicScores::combine`]).
    pub blocks: TopicScores,
    /// IP colocation factor.
    #[serde(rename = "IPColocationFactor", serialize_with = "finite")]
    pub ip_colocation_factor: f64,
    /// Behavioural penalty.
    #[serde(rename = "behavioralPenalty", serialize_with = "finite")]
    pub behavioral_penalty: f64,
}

/// A peer's req/resp (payload_by_number) counters (op-node `store.ReqRespScores`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReqRespScores {
    /// Valid responses (decayed).
    #[serde(serialize_with = "finite")]
    pub valid_responses: f64,
    /// Error responses (decayed).
    #[serde(serialize_with = "finite")]
    pub error_responses: f64,
    /// Rejected payloads (decayed).
    #[serde(serialize_with = "finite")]
    pub rejected_payloads: f64,
}

/// A peer's scores (op-node `store.PeerScores`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerScores {
    /// Gossipsub parts.
    pub gossip: GossipScores,
    /// Req/resp parts.
    #[serde(rename = "reqResp")]
    pub req_resp: ReqRespScores,
}

/// One peer, as `opp2p_self` and `opp2p_peers` report it (op-node `PeerInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Base58 peer id.
    #[serde(rename = "peerID")]
    pub peer_id: PeerId,
    /// discv5 node id ([`NodeId::from_peer_id`]), zeros if unknown.
    #[serde(rename = "nodeID")]
    pub node_id: NodeId,
    /// identify agent version.
    #[serde(rename = "userAgent")]
    pub user_agent: String,
    /// identify protocol version.
    #[serde(rename = "protocolVersion")]
    pub protocol_version: String,
    /// `enr:…` text, `""` if unknown.
    #[serde(rename = "ENR")]
    pub enr: String,
    /// Known multiaddrs, each ending in `/p2p/<id>` ([`p2p_address`]). Empty serialises as
    /// `null`, as Go's nil slice does.
    #[serde(serialize_with = "null_if_empty", deserialize_with = "null_as_default")]
    pub addresses: Vec<String>,
    /// Supported protocols from identify. Empty serialises as `null`.
    #[serde(serialize_with = "null_if_empty", deserialize_with = "null_as_default")]
    pub protocols: Vec<String>,
    /// Connectedness.
    pub connectedness: Connectedness,
    /// Direction of the first connection.
    pub direction: PeerDirection,
    /// Protected from trimming (static or RPC-protected).
    pub protected: bool,
    /// Chain id from the peer's ENR `opstack` entry, 0 if unknown (ours for `opp2p_self`).
    #[serde(rename = "chainID")]
    pub chain_id: u64,
    /// Ping latency EWMA in **nanoseconds** (Go `time.Duration`); do not convert to ms.
    #[serde(rename = "latency")]
    pub latency_ns: i64,
    /// The peer is on one of our block topics (always true for `opp2p_self`).
    #[serde(rename = "gossipBlocks")]
    pub gossip_blocks: bool,
    /// Scores.
    #[serde(default)]
    pub scores: PeerScores,
}

/// `addr` with `/p2p/<peer>` appended unless it already ends in it (op-node lists every
/// address that way).
pub fn p2p_address(addr: &Multiaddr, peer: &PeerId) -> String {
    match addr.iter().last() {
        Some(Protocol::P2p(p)) if p == *peer => addr.to_string(),
        _ => addr.clone().with(Protocol::P2p(*peer)).to_string(),
    }
}

/// `opp2p_peers` result (op-node `PeerDump`). The banned lists are the **permanent** blocks
/// only, never timed score bans, and serialise as `[]` when empty (never `null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerDump {
    /// Peers in `peers` whose connectedness is `Connected`.
    #[serde(rename = "totalConnected")]
    pub total_connected: u64,
    /// Peers by base58 id.
    #[serde(deserialize_with = "null_as_default")]
    pub peers: BTreeMap<PeerId, PeerInfo>,
    /// Permanently blocked peer ids.
    #[serde(rename = "bannedPeers", deserialize_with = "null_as_default")]
    pub banned_peers: Vec<PeerId>,
    /// Permanently blocked IPs (note op-node's key spelling `bannedIPS`).
    #[serde(rename = "bannedIPS", deserialize_with = "null_as_default")]
    pub banned_ips: Vec<IpAddr>,
    /// Permanently blocked subnets.
    #[serde(rename = "bannedSubnets", deserialize_with = "null_as_default")]
    pub banned_subnets: Vec<GoIpNet>,
}

impl PeerDump {
    /// A dump of these peers with the gater's permanent blocks; `totalConnected` counts the
    /// connected ones.
    pub fn new(peers: impl IntoIterator<Item = PeerInfo>, gater: &Gater) -> Self {
        let peers: BTreeMap<PeerId, PeerInfo> = peers.into_iter().map(|p| (p.peer_id, p)).collect();
        PeerDump {
            total_connected: peers
                .values()
                .filter(|p| p.connectedness == Connectedness::Connected)
                .count() as u64,
            peers,
            banned_peers: gater.blocked_peers(),
            banned_ips: gater.blocked_ips(),
            banned_subnets: gater.blocked_subnets().into_iter().map(GoIpNet).collect(),
        }
    }
}

/// `opp2p_peerStats` result (op-node `PeerStats`). All counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStats {
    /// Connected peers.
    pub connected: u64,
    /// Nodes in the discv5 table.
    pub table: u64,
    /// Peers on the v1 blocks topic.
    pub blocks_topic: u64,
    /// Peers on the v2 blocks topic.
    pub blocks_topic_v2: u64,
    /// Peers on the v3 blocks topic.
    pub blocks_topic_v3: u64,
    /// Peers on the v4 blocks topic.
    pub blocks_topic_v4: u64,
    /// Permanently blocked peer ids only (not timed bans).
    pub banned: u64,
    /// Peers in the peer store.
    pub known: u64,
}

/// One ban or block in `opp2pext_listBans` (ours; op-node has no such call). JSON keys are
/// camelCase; times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BanEntry {
    /// `peer`, `ip` or `subnet`.
    pub kind: String,
    /// The peer id, IP or subnet, as text.
    pub target: String,
    /// Why: `manual` (`opp2p_block*`, permanent), `invalid_gossip` or `score_drift` (a score
    /// ban), `ip_of_banned_peer` (the IP ban made with a peer's score ban), `restored` (a ban
    /// read back from the saved state, whose reason was not kept).
    pub cause: String,
    /// For `invalid_gossip` (and `ip_of_banned_peer` made with one): the validation reason of
    /// the REJECT that crossed the threshold, e.g. `wrong_signer`.
    pub reason: Option<String>,
    /// For `ip_of_banned_peer`: the peer whose ban made it.
    pub peer: Option<String>,
    /// When the ban was made, if known.
    pub since_ms: Option<u64>,
    /// When it ends; `None` for a permanent block.
    pub until_ms: Option<u64>,
    /// Whether it is written to the data dir (bans whose reason may be our own stale view,
    /// such as `wrong_signer`, are not: they must not outlive a restart with a fixed
    /// configuration).
    pub persisted: bool,
}

// ---- opp2pext_publishBlock (issue 14) ----

/// Longest `opp2pext_publishBlock` waits for its block's outcome before answering `queued`
/// (30 s: under the HTTP server's 40 s request deadline; with the default 10 s publish
/// deadline every block's outcome comes first).
pub const PUBLISH_BLOCK_WAIT_MS: u64 = 30_000;

/// Where a block submitted with `opp2pext_publishBlock` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PublishStatus {
    /// Gossipsub sent it (`messageId`, `peers`).
    Published,
    /// A queue rule dropped it (`reason`: `queue_full`, `superseded`, `deadline`, `too_old`).
    Dropped,
    /// It failed (`reason`: `transient` when every try failed with an error that may go away,
    /// such as no peer on the topic yet or a signer timeout, and the deadline passed;
    /// `permanent` when retrying cannot help), with the `error`.
    Failed,
    /// Still in the queue after [`PUBLISH_BLOCK_WAIT_MS`]: its outcome is only logged and
    /// counted in the metrics.
    Queued,
}

/// The `result` of `opp2pext_publishBlock`: the block's publish outcome. JSON keys are
/// camelCase; absent members are omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishBlockResult {
    /// The outcome.
    pub status: PublishStatus,
    /// The block's number.
    pub number: u64,
    /// The block's hash.
    pub hash: alloy_primitives::B256,
    /// The gossip message id (`0x` and 40 hex digits), when published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The peers gossipsub sent it to, when published.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerId>,
    /// The drop reason or the failure kind (see [`PublishStatus`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What went wrong, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

// ---- end of opp2pext_publishBlock ----

/// The `result` of an admin call; serialises to exactly op-node's JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AdminResponse {
    /// `opp2p_self`.
    SelfInfo(Box<PeerInfo>),
    /// `opp2p_peers`.
    Peers(PeerDump),
    /// `opp2p_peerStats`.
    PeerStats(PeerStats),
    /// `opp2p_discoveryTable`: `enr:` strings.
    DiscoveryTable(Vec<String>),
    /// `opp2p_listBlockedPeers`.
    BlockedPeers(Vec<PeerId>),
    /// `opp2p_listBlockedAddrs`.
    BlockedAddrs(Vec<IpAddr>),
    /// `opp2p_listBlockedSubnets`.
    BlockedSubnets(Vec<GoIpNet>),
    /// `opp2pext_listBans`.
    Bans(Vec<BanEntry>),
    /// `opp2pext_publishBlock`.
    PublishBlock(Box<PublishBlockResult>),
    /// Every other method: `null`.
    Null,
}

impl AdminResponse {
    /// The `result` JSON value.
    pub fn to_json(&self) -> Value {
        // Every shape here serialises infallibly (string map keys, finite floats).
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a `result` for `method` (the client side; bounded by the caller's response limit).
    pub fn from_json(method: AdminMethod, result: Value) -> Result<Self, serde_json::Error> {
        fn de<T: DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
            serde_json::from_value(v)
        }
        Ok(match method {
            AdminMethod::SelfInfo => AdminResponse::SelfInfo(Box::new(de(result)?)),
            AdminMethod::Peers => AdminResponse::Peers(de(result)?),
            AdminMethod::PeerStats => AdminResponse::PeerStats(de(result)?),
            AdminMethod::DiscoveryTable => AdminResponse::DiscoveryTable(de(result)?),
            AdminMethod::ListBlockedPeers => AdminResponse::BlockedPeers(de(result)?),
            AdminMethod::ListBlockedAddrs => AdminResponse::BlockedAddrs(de(result)?),
            AdminMethod::ListBlockedSubnets => AdminResponse::BlockedSubnets(de(result)?),
            AdminMethod::ListBans => AdminResponse::Bans(de(result)?),
            AdminMethod::PublishBlock => AdminResponse::PublishBlock(Box::new(de(result)?)),
            _ => {
                de::<()>(result)?;
                AdminResponse::Null
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::admin::test_support::{net, peer};

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(|s| s.as_str()).collect();
        k.sort_unstable();
        k
    }

    fn sample_info() -> PeerInfo {
        let p = peer(1);
        PeerInfo {
            peer_id: p,
            node_id: NodeId::from_peer_id(&p).unwrap(),
            user_agent: "optimism".into(),
            protocol_version: "".into(),
            enr: "enr:-abc".into(),
            addresses: vec![p2p_address(&"/ip4/1.2.3.4/tcp/9222".parse().unwrap(), &p)],
            protocols: vec!["/meshsub/1.1.0".into()],
            connectedness: Connectedness::Connected,
            direction: PeerDirection::Outbound,
            protected: true,
            chain_id: 10,
            latency_ns: 1_500_000,
            gossip_blocks: true,
            scores: PeerScores {
                gossip: GossipScores {
                    total: -1.5,
                    blocks: TopicScores {
                        time_in_mesh: 12.0,
                        first_message_deliveries: 3.0,
                        mesh_message_deliveries: 4.0,
                        invalid_message_deliveries: 0.0,
                    },
                    ip_colocation_factor: -0.25,
                    behavioral_penalty: 0.0,
                },
                req_resp: ReqRespScores {
                    valid_responses: 2.0,
                    error_responses: 1.0,
                    rejected_payloads: 0.0,
                },
            },
        }
    }

    #[test]
    fn peer_info_golden_json_has_exactly_op_node_keys() {
        let info = sample_info();
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(
            keys(&v),
            vec![
                "ENR",
                "addresses",
                "chainID",
                "connectedness",
                "direction",
                "gossipBlocks",
                "latency",
                "nodeID",
                "peerID",
                "protected",
                "protocolVersion",
                "protocols",
                "scores",
                "userAgent",
            ]
        );
        assert_eq!(keys(&v["scores"]), vec!["gossip", "reqResp"]);
        assert_eq!(
            keys(&v["scores"]["gossip"]),
            vec!["IPColocationFactor", "behavioralPenalty", "blocks", "total"]
        );
        assert_eq!(
            keys(&v["scores"]["gossip"]["blocks"]),
            vec![
                "firstMessageDeliveries",
                "invalidMessageDeliveries",
                "meshMessageDeliveries",
                "timeInMesh"
            ]
        );
        assert_eq!(
            keys(&v["scores"]["reqResp"]),
            vec!["errorResponses", "rejectedPayloads", "validResponses"]
        );
        let id = info.peer_id.to_base58();
        let golden = json!({
            "peerID": id,
            "nodeID": hex::encode(info.node_id.0),
            "userAgent": "optimism",
            "protocolVersion": "",
            "ENR": "enr:-abc",
            "addresses": [format!("/ip4/1.2.3.4/tcp/9222/p2p/{id}")],
            "protocols": ["/meshsub/1.1.0"],
            "connectedness": 1,
            "direction": 2,
            "protected": true,
            "chainID": 10,
            "latency": 1_500_000,
            "gossipBlocks": true,
            "scores": {
                "gossip": {
                    "total": -1.5,
                    "blocks": {"timeInMesh": 12.0, "firstMessageDeliveries": 3.0,
                               "meshMessageDeliveries": 4.0, "invalidMessageDeliveries": 0.0},
                    "IPColocationFactor": -0.25,
                    "behavioralPenalty": 0.0
                },
                "reqResp": {"validResponses": 2.0, "errorResponses": 1.0, "rejectedPayloads": 0.0}
            }
        });
        assert_eq!(v, golden);
        assert!(!v["nodeID"].as_str().unwrap().starts_with("0x"));
        let back: PeerInfo = serde_json::from_value(v).unwrap();
        assert_eq!(back, info);
    }

    #[test]
    fn peer_info_empty_lists_are_null_and_unknown_values_are_zero() {
        let info = PeerInfo {
            addresses: vec![],
            protocols: vec![],
            node_id: NodeId::default(),
            scores: PeerScores::default(),
            connectedness: Connectedness::NotConnected,
            direction: PeerDirection::Unknown,
            ..sample_info()
        };
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(v["addresses"], Value::Null);
        assert_eq!(v["protocols"], Value::Null);
        assert_eq!(v["nodeID"], json!("0".repeat(64)));
        assert_eq!(v["connectedness"], json!(0));
        assert_eq!(v["direction"], json!(0));
        let back: PeerInfo = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, info);
        // Go output with a 0x-prefixed node id, and an unknown connectedness, and NaN scores.
        let mut v2 = v.clone();
        v2["nodeID"] = json!(format!("0x{}", "ab".repeat(32)));
        let b: PeerInfo = serde_json::from_value(v2).unwrap();
        assert_eq!(b.node_id, NodeId([0xab; 32]));
        let mut v3 = v;
        v3["connectedness"] = json!(9);
        assert!(serde_json::from_value::<PeerInfo>(v3).is_err());
        let nan = PeerScores {
            gossip: GossipScores {
                total: f64::NAN,
                ip_colocation_factor: f64::NEG_INFINITY,
                ..GossipScores::default()
            },
            ..PeerScores::default()
        };
        let j = serde_json::to_value(nan).unwrap();
        assert_eq!(j["gossip"]["total"], json!(0.0));
        assert_eq!(j["gossip"]["IPColocationFactor"], json!(0.0));
    }

    #[test]
    fn peer_dump_golden_json_lists_permanent_blocks_only_and_never_null() {
        let mut g = Gater::default();
        let empty = PeerDump::new(Vec::new(), &g);
        assert_eq!(
            serde_json::to_value(&empty).unwrap(),
            json!({"totalConnected": 0, "peers": {}, "bannedPeers": [], "bannedIPS": [],
                   "bannedSubnets": []})
        );
        g.block_peer(peer(3)).unwrap();
        g.block_ip("1.2.3.4".parse().unwrap()).unwrap();
        g.block_subnet(net("10.0.0.0/8")).unwrap();
        g.ban_peer(peer(4), u64::MAX).unwrap(); // a timed ban: not listed
        let a = sample_info();
        let b = PeerInfo {
            peer_id: peer(5),
            connectedness: Connectedness::CanConnect,
            ..sample_info()
        };
        let dump = PeerDump::new([a.clone(), b.clone()], &g);
        assert_eq!(dump.total_connected, 1);
        let v = serde_json::to_value(&dump).unwrap();
        assert_eq!(
            keys(&v),
            vec![
                "bannedIPS",
                "bannedPeers",
                "bannedSubnets",
                "peers",
                "totalConnected"
            ]
        );
        assert_eq!(v["bannedPeers"], json!([peer(3).to_base58()]));
        assert_eq!(v["bannedIPS"], json!(["1.2.3.4"]));
        assert_eq!(
            v["bannedSubnets"],
            json!([{"IP": "10.0.0.0", "Mask": "/wAAAA=="}])
        );
        assert_eq!(
            v["peers"][a.peer_id.to_base58()]["peerID"],
            json!(a.peer_id.to_base58())
        );
        assert_eq!(v["peers"].as_object().unwrap().len(), 2);
        let back: PeerDump = serde_json::from_value(v).unwrap();
        assert_eq!(back, dump);
        // Go writes null lists when it has no gater; they read as empty.
        let go = json!({"totalConnected": 0, "peers": {}, "bannedPeers": null,
                        "bannedIPS": null, "bannedSubnets": null});
        let d: PeerDump = serde_json::from_value(go).unwrap();
        assert!(d.banned_peers.is_empty() && d.banned_ips.is_empty());
    }

    #[test]
    fn peer_stats_golden_json() {
        let s = PeerStats {
            connected: 1,
            table: 2,
            blocks_topic: 3,
            blocks_topic_v2: 4,
            blocks_topic_v3: 5,
            blocks_topic_v4: 6,
            banned: 7,
            known: 8,
        };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(
            text,
            r#"{"connected":1,"table":2,"blocksTopic":3,"blocksTopicV2":4,"blocksTopicV3":5,"blocksTopicV4":6,"banned":7,"known":8}"#
        );
        assert_eq!(serde_json::from_str::<PeerStats>(&text).unwrap(), s);
    }

    #[test]
    fn responses_serialise_to_the_result_json_and_read_back() {
        let g = Gater::default();
        let cases = vec![
            (
                AdminMethod::SelfInfo,
                AdminResponse::SelfInfo(Box::new(sample_info())),
            ),
            (
                AdminMethod::Peers,
                AdminResponse::Peers(PeerDump::new([sample_info()], &g)),
            ),
            (
                AdminMethod::PeerStats,
                AdminResponse::PeerStats(PeerStats::default()),
            ),
            (
                AdminMethod::DiscoveryTable,
                AdminResponse::DiscoveryTable(vec!["enr:-x".into()]),
            ),
            (
                AdminMethod::ListBlockedPeers,
                AdminResponse::BlockedPeers(vec![peer(1)]),
            ),
            (
                AdminMethod::ListBlockedAddrs,
                AdminResponse::BlockedAddrs(vec!["::1".parse().unwrap()]),
            ),
            (
                AdminMethod::ListBlockedSubnets,
                AdminResponse::BlockedSubnets(vec![GoIpNet(net("10.0.0.0/8"))]),
            ),
            (AdminMethod::BlockPeer, AdminResponse::Null),
            (AdminMethod::ConnectPeer, AdminResponse::Null),
        ];
        for (m, r) in cases {
            let v = r.to_json();
            assert_eq!(AdminResponse::from_json(m, v).unwrap(), r, "{m}");
        }
        assert_eq!(AdminResponse::Null.to_json(), Value::Null);
        assert_eq!(AdminResponse::BlockedPeers(vec![]).to_json(), json!([]));
        assert_eq!(
            AdminResponse::BlockedAddrs(vec!["1.2.3.4".parse().unwrap()]).to_json(),
            json!(["1.2.3.4"])
        );
        assert_eq!(
            AdminResponse::BlockedPeers(vec![peer(1)]).to_json(),
            json!([peer(1).to_base58()])
        );
        assert!(AdminResponse::from_json(AdminMethod::BlockPeer, json!(1)).is_err());
    }

    #[test]
    fn blocks_combine_sums_counters_and_takes_max_time_in_mesh() {
        let t = |m, f, d, i| TopicScores {
            time_in_mesh: m,
            first_message_deliveries: f,
            mesh_message_deliveries: d,
            invalid_message_deliveries: i,
        };
        let c = TopicScores::combine([
            t(5.0, 1.0, 2.0, 0.0),
            t(9.0, 3.0, 0.5, 1.0),
            t(2.0, 0.0, 0.0, 0.0),
        ]);
        assert_eq!(c, t(9.0, 4.0, 2.5, 1.0));
        assert_eq!(TopicScores::combine([]), TopicScores::default());
    }

    #[test]
    fn p2p_address_appends_the_peer_once() {
        let p = peer(1);
        let with = format!("/ip4/1.2.3.4/tcp/1/p2p/{p}");
        assert_eq!(p2p_address(&with.parse().unwrap(), &p), with);
        assert_eq!(
            p2p_address(&"/ip4/1.2.3.4/tcp/1".parse().unwrap(), &p),
            with
        );
    }
}
