//! The `opp2p_*` admin API over the node's state (spec §10).

use libp2p_identity::PeerId;

use super::{Action, Node, RequestId, UnixMillis};
use crate::admin::{
    AdminError, AdminRequest, AdminResponse, CONNECT_PEER_TIMEOUT_MS, Connectedness, GoIpNet,
    GossipScores, NodeId, PeerDirection, PeerDump, PeerInfo, PeerScores, PeerStats, ReqRespScores,
    TopicScores, p2p_address,
};
use crate::gossip::topic::BlockVersion;
use crate::peers::book::PeerRecord;
use crate::peers::gater::AddrOrigin;

impl Node {
    pub(super) fn handle_admin(&mut self, now: UnixMillis, id: RequestId, request: AdminRequest) {
        let result = match request {
            AdminRequest::ConnectPeer { addr, peer } => {
                self.connect_peer(now, id, addr, peer);
                return;
            }
            AdminRequest::PublishBlock(envelope) => {
                self.admin_publish(now, id, envelope);
                return;
            }
            other => self.admin_call(now, other),
        };
        self.actions.push_back(Action::AdminResponse { id, result });
    }

    fn admin_call(
        &mut self,
        now: UnixMillis,
        request: AdminRequest,
    ) -> Result<AdminResponse, AdminError> {
        use AdminRequest as R;
        // The operator's changes are written promptly: blocks to bans.json, protection and
        // forgotten addresses to peers.json (disconnectPeer also lifts a block).
        let changed = super::StateChanges {
            gater: matches!(
                request,
                R::BlockPeer(_)
                    | R::UnblockPeer(_)
                    | R::BlockAddr(_)
                    | R::UnblockAddr(_)
                    | R::BlockSubnet(_)
                    | R::UnblockSubnet(_)
                    | R::DisconnectPeer(_)
            ),
            peers: matches!(
                request,
                R::DisconnectPeer(_) | R::ProtectPeer(_) | R::UnprotectPeer(_)
            ),
            learned: false,
        };
        let out = match request {
            R::SelfInfo => Ok(AdminResponse::SelfInfo(Box::new(self.self_info()))),
            R::Peers { connected } => {
                let peers: Vec<PeerInfo> = self
                    .book
                    .iter()
                    .filter(|(_, r)| !connected || r.connectedness.is_connected())
                    .map(|(p, r)| self.peer_info(p, r))
                    .collect();
                Ok(AdminResponse::Peers(PeerDump::new(peers, &self.gater)))
            }
            R::PeerStats => Ok(AdminResponse::PeerStats(self.peer_stats())),
            R::DiscoveryTable => match &self.discovery {
                None => Err(AdminError::DiscoveryDisabled),
                Some(t) => Ok(AdminResponse::DiscoveryTable(
                    t.iter().map(|e| e.enr.to_base64()).collect(),
                )),
            },
            R::BlockPeer(p) => self
                .gater
                .block_peer(p)
                .map(|_| AdminResponse::Null)
                .map_err(Into::into),
            R::UnblockPeer(p) => {
                self.gater.unblock_peer(&p);
                // Beyond op-node (whose unblock leaves its monitor's ban): a score ban and the
                // IP ban made with it are lifted too (see `bans`).
                self.lift_score_ban(&p);
                Ok(AdminResponse::Null)
            }
            R::ListBans => Ok(AdminResponse::Bans(self.list_bans(now))),
            R::ListBlockedPeers => Ok(AdminResponse::BlockedPeers(self.gater.blocked_peers())),
            R::BlockAddr(ip) => self
                .gater
                .block_ip(ip)
                .map(|_| AdminResponse::Null)
                .map_err(Into::into),
            R::UnblockAddr(ip) => {
                self.gater.unblock_ip(ip);
                Ok(AdminResponse::Null)
            }
            R::ListBlockedAddrs => Ok(AdminResponse::BlockedAddrs(self.gater.blocked_ips())),
            R::BlockSubnet(net) => self
                .gater
                .block_subnet(net)
                .map(|_| AdminResponse::Null)
                .map_err(Into::into),
            R::UnblockSubnet(net) => {
                self.gater.unblock_subnet(net);
                Ok(AdminResponse::Null)
            }
            R::ListBlockedSubnets => Ok(AdminResponse::BlockedSubnets(
                self.gater
                    .blocked_subnets()
                    .into_iter()
                    .map(GoIpNet)
                    .collect(),
            )),
            R::ProtectPeer(p) => self
                .book
                .set_protected(now, p, true)
                .map(|_| AdminResponse::Null)
                .map_err(|e| {
                    tracing::warn!(error = %e, "protectPeer");
                    AdminError::NoConnectionManager
                }),
            R::UnprotectPeer(p) => {
                let _ = self.book.set_protected(now, p, false);
                Ok(AdminResponse::Null)
            }
            R::DisconnectPeer(p) => {
                // op-node: close, forget the addresses, and lift any permanent block.
                self.gater.unblock_peer(&p);
                self.book.clear_addrs(&p);
                self.disconnect(now, p, super::DisconnectReason::Admin);
                Ok(AdminResponse::Null)
            }
            R::ConnectPeer { .. } | R::PublishBlock(_) => unreachable_connect(),
        };
        if out.is_ok() {
            self.persist_pending |= changed;
        }
        out
    }

    fn connect_peer(
        &mut self,
        now: UnixMillis,
        id: RequestId,
        addr: multiaddr::Multiaddr,
        peer: PeerId,
    ) {
        if self.conn.is_connected(&peer) {
            self.actions.push_back(Action::AdminResponse {
                id,
                result: Ok(AdminResponse::Null),
            });
            return;
        }
        let waiting: usize = self.pending_connects.values().map(Vec::len).sum();
        if waiting >= self.config.max_pending_connects {
            self.actions.push_back(Action::AdminResponse {
                id,
                result: Err(AdminError::ConnectFailed(
                    "too many connectPeer calls waiting".into(),
                )),
            });
            return;
        }
        // The operator's address is dialled whatever the address policy (netrestrict, or public
        // addresses only): the admin API is the operator's, on loopback. Without one, the
        // peer's known addresses were learned from the network (or configured, for a static
        // peer) and are filtered as any dial's.
        let (addrs, explicit): (Vec<multiaddr::Multiaddr>, _) = if addr.is_empty() {
            let known = self
                .book
                .get(&peer)
                .map(|r| r.addrs.clone())
                .unwrap_or_default();
            let allowed = known
                .into_iter()
                .filter(|a| self.may_dial_addr(&peer, a))
                .collect();
            (allowed, None)
        } else {
            let _ = self.book.add_addrs(now, peer, [addr.clone()]);
            (vec![addr.clone()], Some(addr))
        };
        if addrs.is_empty() {
            self.actions.push_back(Action::AdminResponse {
                id,
                result: Err(AdminError::ConnectFailed(format!(
                    "no addresses for {peer} (or none the address policy allows)"
                ))),
            });
            return;
        }
        // Checked without counting: the dial hook counts the dial itself (one `p2p_dials`).
        let ip = addrs.first().and_then(Node::ip_of);
        let origin = if explicit.is_some() {
            AddrOrigin::Operator
        } else {
            addrs
                .first()
                .map_or(AddrOrigin::Network, |a| self.addr_origin(&peer, a))
        };
        if peer == self.config.local_peer_id
            || self
                .gater
                .check_dial(now.max(self.clock), &peer, ip, origin)
                != crate::peers::gater::Decision::Allow
        {
            self.actions.push_back(Action::AdminResponse {
                id,
                result: Err(AdminError::ConnectFailed(
                    "dial refused by the connection gater".into(),
                )),
            });
            return;
        }
        // Wait for the connection and identify (or a failure) up to 30 s rather than failing
        // at once.
        self.pending_connects
            .entry(peer)
            .or_default()
            .push(super::PendingConnect {
                id,
                deadline: now.saturating_add(CONNECT_PEER_TIMEOUT_MS),
                addr: explicit,
            });
        self.stats.count_dial();
        self.actions.push_back(Action::Dial { peer, addrs });
    }

    pub(super) fn expire_pending_connects(&mut self, now: UnixMillis) {
        let mut timed_out = Vec::new();
        self.pending_connects.retain(|_, waiters| {
            waiters.retain(|w| {
                let keep = now < w.deadline;
                if !keep {
                    timed_out.push(w.id);
                }
                keep
            });
            !waiters.is_empty()
        });
        for id in timed_out {
            self.actions.push_back(Action::AdminResponse {
                id,
                result: Err(AdminError::ConnectTimeout),
            });
        }
    }

    fn self_info(&self) -> PeerInfo {
        let me = self.config.local_peer_id;
        PeerInfo {
            peer_id: me,
            node_id: NodeId::from_peer_id(&me).unwrap_or_default(),
            user_agent: self.local.agent_version.clone(),
            protocol_version: self.local.protocol_version.clone(),
            enr: self.local.enr.clone().unwrap_or_default(),
            addresses: self
                .local
                .addrs
                .iter()
                .map(|a| p2p_address(a, &me))
                .collect(),
            protocols: self.local.protocols.clone(),
            connectedness: Connectedness::NotConnected,
            direction: PeerDirection::Unknown,
            protected: false,
            // ⚠ op-node reports 0 here; we report our real chain id.
            chain_id: self.chain_id,
            latency_ns: 0,
            gossip_blocks: true,
            scores: PeerScores::default(),
        }
    }

    fn peer_info(&self, peer: &PeerId, r: &PeerRecord) -> PeerInfo {
        PeerInfo {
            peer_id: *peer,
            node_id: r
                .node_id
                .map(NodeId)
                .or_else(|| NodeId::from_peer_id(peer))
                .unwrap_or_default(),
            user_agent: r.agent_version.clone(),
            protocol_version: r.protocol_version.clone(),
            enr: r.enr.clone().unwrap_or_default(),
            addresses: r.addrs.iter().map(|a| p2p_address(a, peer)).collect(),
            protocols: r.protocols.clone(),
            connectedness: r.connectedness,
            direction: r.direction,
            protected: r.protected,
            chain_id: r.chain_id,
            latency_ns: i64::try_from(r.latency_ns).unwrap_or(i64::MAX),
            gossip_blocks: BlockVersion::ALL
                .iter()
                .any(|v| r.block_topics.contains(*v)),
            scores: self.peer_scores(peer, r),
        }
    }

    /// The peer's scores as `opp2p_peers` reports them (and the metrics export them): the
    /// gossipsub parts from the runtime's last snapshot, the req/resp counters from our
    /// application scores, and as `total` gossipsub's score without the application part plus
    /// our application score.
    pub(super) fn peer_scores(&self, peer: &PeerId, r: &PeerRecord) -> PeerScores {
        let gossip = r.scores;
        let app = self.scores.reqresp(peer);
        PeerScores {
            gossip: GossipScores {
                total: super::peering::total_score(&self.book, &self.scores, peer),
                blocks: TopicScores {
                    time_in_mesh: gossip.time_in_mesh,
                    first_message_deliveries: gossip.first_message_deliveries,
                    mesh_message_deliveries: gossip.mesh_message_deliveries,
                    invalid_message_deliveries: gossip.invalid_message_deliveries,
                },
                ip_colocation_factor: gossip.ip_colocation_factor,
                behavioral_penalty: gossip.behavioral_penalty,
            },
            req_resp: ReqRespScores {
                valid_responses: app.valid_responses,
                error_responses: app.error_responses,
                rejected_payloads: app.rejected_payloads,
            },
        }
    }

    fn peer_stats(&self) -> PeerStats {
        let mut topics = [0u64; 4];
        let mut connected = 0;
        for (_, r) in self
            .book
            .iter()
            .filter(|(_, r)| r.connectedness.is_connected())
        {
            connected += 1;
            for v in BlockVersion::ALL {
                if r.block_topics.contains(v) {
                    topics[v.topic_index() as usize] += 1;
                }
            }
        }
        PeerStats {
            connected,
            table: self.discovery.as_ref().map_or(0, |t| t.len() as u64),
            blocks_topic: topics[0],
            blocks_topic_v2: topics[1],
            blocks_topic_v3: topics[2],
            blocks_topic_v4: topics[3],
            banned: self.gater.blocked_peers().len() as u64,
            known: self.book.len() as u64,
        }
    }
}

fn unreachable_connect() -> Result<AdminResponse, AdminError> {
    // ConnectPeer and PublishBlock are answered asynchronously (`connect_peer`,
    // `admin_publish`); `admin_call` never sees them.
    Err(AdminError::NoConnectionManager)
}
