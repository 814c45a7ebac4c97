//! `opp2pext_publishBlock` (issue 14): a block source for a node run as a binary. The call's
//! envelope goes into the same publish queue as [`Input::Publish`](super::Input::Publish)'s
//! blocks, under a [`PublishId`] from a range of its own (top bit set; a runtime numbers its
//! own publishes from 0), and the call is answered with the block's outcome when it comes, or
//! `queued` after [`PUBLISH_BLOCK_WAIT_MS`]. The block's [`Action::PublishOutcome`] is still
//! emitted, so the runtime's metrics and logs see it as any other.

use std::collections::BTreeMap;

use alloy_primitives::B256;
use op_alloy_rpc_types_engine::OpExecutionPayloadEnvelope;

use super::{Action, Node, PublishOutcome, PublishRequest, RequestId, UnixMillis};
use crate::admin::{AdminResponse, PUBLISH_BLOCK_WAIT_MS, PublishBlockResult, PublishStatus};
use crate::publish::PublishId;

/// The top bit marks the publish ids of admin calls.
pub(crate) const ADMIN_PUBLISH_ID_BIT: u64 = 1 << 63;

/// Admin calls waiting for their block's outcome. Bounded: each entry's block is in the
/// publish queue (which is bounded) or its entry goes at its deadline.
#[derive(Debug, Default)]
pub(super) struct AdminPublishes {
    next: u64,
    waiting: BTreeMap<PublishId, Waiter>,
}

#[derive(Debug)]
struct Waiter {
    request: RequestId,
    deadline: UnixMillis,
    number: u64,
    hash: B256,
}

impl Waiter {
    /// The answer for a block that is still queued (what the other outcomes start from).
    fn queued(&self) -> PublishBlockResult {
        PublishBlockResult {
            status: PublishStatus::Queued,
            number: self.number,
            hash: self.hash,
            message_id: None,
            peers: Vec::new(),
            reason: None,
            error: None,
        }
    }
}

impl AdminPublishes {
    /// When the first waiting call must be answered `queued`.
    pub(super) fn next_deadline(&self) -> Option<UnixMillis> {
        self.waiting.values().map(|w| w.deadline).min()
    }

    /// Calls waiting.
    pub(super) fn len(&self) -> usize {
        self.waiting.len()
    }
}

impl Node {
    /// Queues the envelope of an `opp2pext_publishBlock` call for signing and publishing.
    pub(super) fn admin_publish(
        &mut self,
        now: UnixMillis,
        request: RequestId,
        envelope: Box<OpExecutionPayloadEnvelope>,
    ) {
        let w = &mut self.admin_publishes;
        let id = PublishId(ADMIN_PUBLISH_ID_BIT | (w.next & !ADMIN_PUBLISH_ID_BIT));
        w.next = w.next.wrapping_add(1);
        let OpExecutionPayloadEnvelope {
            parent_beacon_block_root,
            execution_payload,
        } = *envelope;
        let v1 = execution_payload.as_v1();
        w.waiting.insert(
            id,
            Waiter {
                request,
                deadline: now.saturating_add(PUBLISH_BLOCK_WAIT_MS),
                number: v1.block_number,
                hash: v1.block_hash,
            },
        );
        self.handle_publish(
            now,
            id,
            PublishRequest::Sign {
                payload: Box::new(execution_payload),
                parent_beacon_block_root,
            },
        );
    }

    /// Answers the admin call waiting for this block, if one is.
    pub(super) fn answer_admin_publish(&mut self, id: PublishId, outcome: &PublishOutcome) {
        if id.0 & ADMIN_PUBLISH_ID_BIT == 0 {
            return;
        }
        let Some(w) = self.admin_publishes.waiting.remove(&id) else {
            return;
        };
        let mut result = w.queued();
        match outcome {
            PublishOutcome::Published { message_id, peers } => {
                result.status = PublishStatus::Published;
                result.message_id = Some(message_id.to_string());
                result.peers = peers.clone();
            }
            PublishOutcome::Dropped(why) => {
                result.status = PublishStatus::Dropped;
                result.reason = Some(why.as_str().into());
            }
            PublishOutcome::Failed(f) => {
                result.status = PublishStatus::Failed;
                result.reason = Some(f.kind.as_str().into());
                result.error = Some(f.error.to_string());
            }
        }
        self.respond_publish(w.request, result);
    }

    /// Answers `queued` to the calls whose wait is over (their blocks stay queued).
    pub(super) fn expire_admin_publishes(&mut self, now: UnixMillis) {
        let due: Vec<PublishId> = self
            .admin_publishes
            .waiting
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(w) = self.admin_publishes.waiting.remove(&id) {
                let result = w.queued();
                self.respond_publish(w.request, result);
            }
        }
    }

    fn respond_publish(&mut self, id: RequestId, result: PublishBlockResult) {
        self.actions.push_back(Action::AdminResponse {
            id,
            result: Ok(AdminResponse::PublishBlock(Box::new(result))),
        });
    }

    /// `opp2pext_publishBlock` calls waiting for their block's outcome.
    pub fn admin_publishes_waiting(&self) -> usize {
        self.admin_publishes.len()
    }
}

#[cfg(test)]
mod tests {
    use op_alloy_rpc_types_engine::OpExecutionPayloadEnvelope;
    use serde_json::Value;

    use super::super::tests::{answer_sign, drain, node, published};
    use super::*;
    use crate::admin::{AdminError, AdminMethod, AdminRequest, MAX_PUBLISH_PARAMS_BYTES};
    use crate::fork::ForkSchedule;
    use crate::gossip::topic::BlockVersion;
    use crate::node::{Config, Input, PublishError, PublishFailed};
    use crate::publish::DropReason;
    use crate::testkit::{BlockBuilder, dev_key, peer_id, transactions};

    const NOW: u64 = 1_750_000_000;

    fn envelope(version: BlockVersion, number: u64, ts: u64) -> OpExecutionPayloadEnvelope {
        let (execution_payload, parent_beacon_block_root) =
            BlockBuilder::new(version, number, ts).build();
        OpExecutionPayloadEnvelope {
            parent_beacon_block_root,
            execution_payload,
        }
    }

    /// The call as the HTTP layer hands it over: parsed from the engine API JSON.
    fn call(n: &mut Node, now: u64, req: u64, env: &OpExecutionPayloadEnvelope) -> Vec<Action> {
        let params = Value::Array(vec![serde_json::to_value(env).unwrap()]).to_string();
        let request = AdminRequest::parse("opp2pext_publishBlock", &params).unwrap();
        n.handle_input(
            now,
            Input::Admin {
                id: RequestId(req),
                request,
            },
        );
        drain(n)
    }

    fn answer(acts: &[Action], req: u64) -> Option<PublishBlockResult> {
        acts.iter().find_map(|a| match a {
            Action::AdminResponse {
                id,
                result: Ok(AdminResponse::PublishBlock(r)),
            } if id.0 == req => Some((**r).clone()),
            _ => None,
        })
    }

    #[test]
    fn the_engine_api_envelope_json_parses_and_round_trips() {
        let env = envelope(BlockVersion::V4, 7, NOW);
        let json = serde_json::to_value(&env).unwrap();
        // op-node's engine API shape: camelCase members, quantities as hex.
        assert!(json["parentBeaconBlockRoot"].is_string());
        let p = &json["executionPayload"];
        assert_eq!(p["blockNumber"], "0x7");
        for key in [
            "parentHash",
            "blockHash",
            "transactions",
            "withdrawals",
            "withdrawalsRoot",
        ] {
            assert!(!p[key].is_null(), "{key} in {p}");
        }
        let params = Value::Array(vec![json]).to_string();
        let req = AdminRequest::parse("opp2pext_publishBlock", &params).unwrap();
        assert_eq!(req, AdminRequest::PublishBlock(Box::new(env)));
        assert_eq!(req.method(), AdminMethod::PublishBlock);
        assert_eq!(
            AdminRequest::parse("opp2pext_publishBlock", &req.params().to_string()),
            Ok(req)
        );
    }

    #[test]
    fn bad_params_are_typed_errors_and_a_block_over_a_mebibyte_fits_the_limit() {
        let e = AdminRequest::parse("opp2pext_publishBlock", "[\"0x00\"]").unwrap_err();
        assert!(
            matches!(
                e,
                AdminError::WrongType {
                    index: 0,
                    expected: "object"
                }
            ),
            "{e:?}"
        );
        let e = AdminRequest::parse("opp2pext_publishBlock", r#"[{"executionPayload":{}}]"#)
            .unwrap_err();
        assert!(
            matches!(e, AdminError::BadPayload { index: 0, .. }),
            "{e:?}"
        );
        assert_eq!(e.code(), crate::admin::codes::INVALID_PARAMS);
        assert!(matches!(
            AdminRequest::parse("opp2pext_publishBlock", "[]"),
            Err(AdminError::MissingArgument { index: 0 })
        ));
        // A 1.5 MiB block (hex roughly doubles it in JSON) is within the limit.
        let (payload, root) = BlockBuilder::new(BlockVersion::V4, 9, NOW)
            .with_transactions(transactions(901, 9, 12, 128 * 1024))
            .build();
        let env = OpExecutionPayloadEnvelope {
            parent_beacon_block_root: root,
            execution_payload: payload,
        };
        let params = Value::Array(vec![serde_json::to_value(&env).unwrap()]).to_string();
        assert!(params.len() > 2 * 1024 * 1024, "{}", params.len());
        assert!(params.len() < MAX_PUBLISH_PARAMS_BYTES);
        assert!(AdminRequest::parse("opp2pext_publishBlock", &params).is_ok());
        // Over the limit: refused before parsing; other methods keep the small limit.
        let big = format!("[\"{}\"]", "a".repeat(MAX_PUBLISH_PARAMS_BYTES));
        assert!(matches!(
            AdminRequest::parse("opp2pext_publishBlock", &big),
            Err(AdminError::ParamsTooLarge {
                max: MAX_PUBLISH_PARAMS_BYTES,
                ..
            })
        ));
        assert!(matches!(
            AdminRequest::parse("opp2p_blockAddr", &params),
            Err(AdminError::ParamsTooLarge { .. })
        ));
    }

    #[test]
    fn a_published_block_answers_the_call_with_message_id_and_peers() {
        let mut n = node();
        let now = NOW * 1000;
        let env = envelope(BlockVersion::V4, 3, NOW);
        let acts = call(&mut n, now, 5, &env);
        let [Action::Sign { id, .. }] = acts.as_slice() else {
            panic!("{acts:?}")
        };
        assert_ne!(id.0 & ADMIN_PUBLISH_ID_BIT, 0, "the node's own id range");
        let id = *id;
        assert_eq!(n.admin_publishes_waiting(), 1);
        let acts = answer_sign(&mut n, now, &acts[0], &dev_key(0));
        assert!(matches!(acts.as_slice(), [Action::Publish { .. }]));
        let acts = published(&mut n, now, id.0);
        let r = answer(&acts, 5).expect("answered");
        assert_eq!(r.status, PublishStatus::Published);
        assert_eq!(r.number, 3);
        assert_eq!(r.hash, env.execution_payload.as_v1().block_hash);
        assert_eq!(r.peers, vec![peer_id(7)]);
        let Some(Action::PublishOutcome {
            outcome: PublishOutcome::Published { message_id, .. },
            ..
        }) = acts
            .iter()
            .find(|a| matches!(a, Action::PublishOutcome { .. }))
        else {
            panic!("the outcome still goes to the runtime: {acts:?}")
        };
        assert_eq!(r.message_id, Some(message_id.to_string()));
        let json = AdminResponse::PublishBlock(Box::new(r.clone())).to_json();
        assert_eq!(json["status"], "published");
        assert_eq!(
            AdminResponse::from_json(AdminMethod::PublishBlock, json).unwrap(),
            AdminResponse::PublishBlock(Box::new(r))
        );
        assert_eq!(n.admin_publishes_waiting(), 0);
    }

    #[test]
    fn refusals_drops_and_failures_answer_with_their_reason() {
        let mut n = node();
        let now = NOW * 1000;
        // Wrong version for the fork schedule: failed, permanent, at once.
        let acts = call(&mut n, now, 1, &envelope(BlockVersion::V3, 3, NOW));
        let r = answer(&acts, 1).unwrap();
        assert_eq!(r.status, PublishStatus::Failed);
        assert_eq!(r.reason.as_deref(), Some("permanent"));
        assert!(r.error.unwrap().contains("published as v4"));
        // A signer that never answers: dropped at the publish deadline (10 s).
        call(&mut n, now, 2, &envelope(BlockVersion::V4, 4, NOW));
        n.handle_input(now + 9_999, Input::Tick);
        assert_eq!(answer(&drain(&mut n), 2), None);
        n.handle_input(now + 10_000, Input::Tick);
        let r = answer(&drain(&mut n), 2).unwrap();
        assert_eq!(r.status, PublishStatus::Dropped);
        assert_eq!(
            r.reason.as_deref(),
            Some(DropReason::DeadlinePassed.as_str())
        );
        // No peer on the topic yet: transient, retried until the deadline, then failed with it.
        let t = now + 20_000;
        let acts = call(&mut n, t, 3, &envelope(BlockVersion::V4, 5, NOW + 20));
        let acts = answer_sign(&mut n, t, &acts[0], &dev_key(0));
        let Some(Action::Publish { id, .. }) = acts.first() else {
            panic!("{acts:?}")
        };
        let id = *id;
        n.handle_input(
            t,
            Input::Published {
                id,
                result: Err(PublishFailed::transient(PublishError::NoPeers)),
            },
        );
        assert_eq!(answer(&drain(&mut n), 3), None, "retried, not answered");
        n.handle_input(t + 10_000, Input::Tick);
        let r = answer(&drain(&mut n), 3).unwrap();
        assert_eq!(r.status, PublishStatus::Failed);
        assert_eq!(r.reason.as_deref(), Some("transient"));
        assert_eq!(r.error, Some(PublishError::NoPeers.to_string()));
        assert_eq!(n.admin_publishes_waiting(), 0);
    }

    #[test]
    fn a_call_outliving_the_wait_is_answered_queued_and_the_block_stays() {
        let mut config = Config::new(
            901,
            dev_key(0).address(),
            ForkSchedule::ALL_AT_GENESIS,
            2,
            peer_id(0),
        );
        config.publish.deadline_ms = 60_000;
        config.publish.max_age_ms = 120_000;
        let mut n = Node::new(config);
        let now = NOW * 1000;
        let first = call(&mut n, now, 1, &envelope(BlockVersion::V4, 3, NOW));
        assert!(n.poll_timeout().unwrap() <= now + PUBLISH_BLOCK_WAIT_MS);
        n.handle_input(now + PUBLISH_BLOCK_WAIT_MS, Input::Tick);
        let r = answer(&drain(&mut n), 1).unwrap();
        assert_eq!(r.status, PublishStatus::Queued);
        assert_eq!(n.publish_queue_len(), 1);
        // The block still goes out when the signer answers; nobody is waiting any more.
        let acts = answer_sign(&mut n, now + 31_000, &first[0], &dev_key(0));
        assert!(matches!(acts.as_slice(), [Action::Publish { .. }]));
    }
}
