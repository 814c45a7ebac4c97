//! The node's side of the publish queue ([`crate::publish`]): a block is checked and queued
//! on [`Input::Publish`], the front block is signed ([`Action::Sign`] → [`Input::Signed`]),
//! checked against our own validator's signer, published ([`Action::Publish`] →
//! [`Input::Published`]) and answered with one [`Action::PublishOutcome`].

use std::sync::Arc;

use alloy_primitives::{B256, Signature};
use libp2p_identity::PeerId;
use op_alloy_rpc_types_engine::{OpExecutionPayload, OpNetworkPayloadEnvelope, PayloadHash};

use super::{
    Action, Node, PublishError, PublishFailed, PublishOutcome, PublishRequest, UnixMillis,
};
use crate::gossip::signature::{BLOCK_SIGNING_DOMAIN, recover_signer, signing_hash};
use crate::gossip::topic::{BlockTopic, BlockVersion};
use crate::gossip::wire::{self, MessageId};
use crate::publish::{BlockMeta, FailureKind, PublishId, Removal, Removed};

/// A queued block with what publishing it needs.
#[derive(Debug)]
pub(crate) struct Pending {
    version: BlockVersion,
    payload: OpExecutionPayload,
    root: Option<B256>,
    /// The signed bytes (beacon root prefix and SSZ payload).
    signed: Vec<u8>,
    payload_hash: B256,
    signature: Option<Signature>,
    /// Set once handed to gossipsub (waiting for [`Input::Published`](super::Input::Published)).
    message_id: Option<MessageId>,
    /// The last transient failure, reported if the deadline passes.
    last_error: Option<PublishError>,
}

impl Node {
    /// Checks a block and queues it.
    pub(super) fn handle_publish(&mut self, now: UnixMillis, id: PublishId, req: PublishRequest) {
        let pending = match self.prepare(req) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(id = id.0, error = %e, "publish refused");
                self.outcome(id, PublishOutcome::Failed(PublishFailed::permanent(e)));
                return;
            }
        };
        let v1 = pending.payload.as_v1();
        let meta = BlockMeta {
            number: v1.block_number,
            timestamp: v1.timestamp,
        };
        tracing::debug!(id = id.0, number = meta.number, hash = %v1.block_hash, "block queued");
        let removed = self.publish.push(now, id, meta, Box::new(pending));
        for r in removed {
            self.removed(r);
        }
    }

    fn prepare(&self, req: PublishRequest) -> Result<Pending, PublishError> {
        let (payload, root, signature) = match req {
            PublishRequest::Sign {
                payload,
                parent_beacon_block_root,
            } => (*payload, parent_beacon_block_root, None),
            PublishRequest::Signed(env) => {
                let env = Arc::unwrap_or_clone(env);
                (
                    env.payload,
                    env.parent_beacon_block_root,
                    Some(env.signature),
                )
            }
        };
        let version = wire::payload_version(&payload);
        let want = self
            .config
            .validator
            .forks
            .publish_version(payload.as_v1().timestamp);
        if version != want {
            return Err(PublishError::WrongVersion { got: version, want });
        }
        let signed = wire::signed_bytes(&payload, root)?;
        let payload_hash = crate::gossip::signature::payload_hash(&signed);
        Ok(Pending {
            version,
            payload,
            root,
            signed,
            payload_hash,
            signature,
            message_id: None,
            last_error: None,
        })
    }

    /// Drops what expired, then starts the front block's next step if nothing is in flight.
    pub(super) fn publish_step(&mut self, now: UnixMillis) {
        for r in self.publish.expire(now) {
            self.removed(r);
        }
        let chain_id = self.chain_id;
        let Some((id, pending)) = self.publish.start(now) else {
            return;
        };
        if pending.signature.is_none() {
            let payload_hash = pending.payload_hash;
            self.actions.push_back(Action::Sign {
                id,
                chain_id,
                payload_hash,
            });
        } else {
            self.send(now, id);
        }
    }

    /// A signature arrived for the block in flight.
    pub(super) fn on_signed(
        &mut self,
        now: UnixMillis,
        id: PublishId,
        result: Result<Signature, PublishFailed>,
    ) {
        let Some(pending) = self.publish.in_flight_item(id) else {
            tracing::debug!(id = id.0, "signature for a block no longer in flight");
            return;
        };
        match result {
            Ok(sig) => {
                pending.signature = Some(sig);
                self.send(now, id);
            }
            Err(f) => self.fail(now, id, f),
        }
    }

    /// Checks the signature of the block in flight and hands it to gossipsub.
    fn send(&mut self, now: UnixMillis, id: PublishId) {
        let chain_id = self.chain_id;
        let want = self.validator.signer().current();
        let Some(pending) = self.publish.in_flight_item(id) else {
            return;
        };
        let Some(sig) = pending.signature else {
            return;
        };
        let hash = signing_hash(BLOCK_SIGNING_DOMAIN, chain_id, pending.payload_hash);
        if self.config.publish.verify_signer {
            let got = match recover_signer(&sig, &hash) {
                Ok(a) => a,
                Err(_) => {
                    self.fail(
                        now,
                        id,
                        PublishFailed::permanent(PublishError::BadSignature),
                    );
                    return;
                }
            };
            if self.validator.signer().matches(got, now).is_none() {
                // Our own validator (and every peer's) would reject it: loud, never retried.
                tracing::error!(id = id.0, %got, %want, "signer answered with the wrong key");
                let f = PublishFailed::permanent(PublishError::WrongSigner { got, want });
                self.fail(now, id, f);
                return;
            }
        }
        let Some(pending) = self.publish.in_flight_item(id) else {
            return;
        };
        let data = match wire::encode_message(&sig, &pending.signed) {
            Ok(d) => d,
            Err(e) => {
                self.fail(now, id, PublishFailed::permanent(e.into()));
                return;
            }
        };
        let topic = BlockTopic::new(chain_id, pending.version).to_string();
        let message_id = wire::message_id(&topic, &data);
        pending.message_id = Some(message_id);
        let v1 = pending.payload.as_v1();
        let block = (v1.block_number, v1.block_hash);
        let version = pending.version;
        // Our own block arriving back from peers is a duplicate, never delivered to us again.
        self.validator.record_published(version, block.0, block.1);
        // Our own blocks count as activity for the health report (a lone sequencer).
        self.health.on_published(now);
        self.actions.push_back(Action::Publish {
            id,
            topic,
            data: data.into(),
            message_id,
            block,
        });
    }

    /// Gossipsub's answer for the block in flight.
    pub(super) fn on_published(
        &mut self,
        now: UnixMillis,
        id: PublishId,
        result: Result<Vec<PeerId>, PublishFailed>,
    ) {
        match result {
            Ok(peers) => {
                let Some(p) = self.publish.succeeded(id) else {
                    return;
                };
                let (Some(message_id), Some(signature)) = (p.message_id, p.signature) else {
                    return;
                };
                if let Some(store) = &mut self.store {
                    let _ = store.insert(Arc::new(OpNetworkPayloadEnvelope {
                        payload_hash: PayloadHash(p.payload_hash),
                        payload: p.payload,
                        signature,
                        parent_beacon_block_root: p.root,
                    }));
                }
                self.outcome(id, PublishOutcome::Published { message_id, peers });
            }
            Err(f) => self.fail(now, id, f),
        }
    }

    fn fail(&mut self, now: UnixMillis, id: PublishId, f: PublishFailed) {
        if f.kind == FailureKind::Transient {
            tracing::warn!(id = id.0, error = %f.error, "publish step failed; retrying");
            if let Some(p) = self.publish.in_flight_item(id) {
                p.last_error = Some(f.error.clone());
            }
        } else {
            tracing::warn!(id = id.0, error = %f.error, "publish failed");
        }
        if self.publish.failed(now, id, f.kind).is_some() {
            self.outcome(id, PublishOutcome::Failed(f));
        }
    }

    fn removed(&mut self, r: Removed<Box<Pending>>) {
        let outcome = match r.why {
            Removal::Dropped(why) => {
                tracing::warn!(
                    id = r.id.0,
                    reason = why.as_str(),
                    "block dropped from the publish queue"
                );
                PublishOutcome::Dropped(why)
            }
            Removal::GaveUp => {
                let error = r
                    .item
                    .last_error
                    .unwrap_or(PublishError::Signer("deadline passed".into()));
                tracing::warn!(id = r.id.0, %error, "publish deadline passed after a transient failure");
                PublishOutcome::Failed(PublishFailed::transient(error))
            }
        };
        self.outcome(r.id, outcome);
    }

    fn outcome(&mut self, id: PublishId, outcome: PublishOutcome) {
        self.answer_admin_publish(id, &outcome);
        self.actions
            .push_back(Action::PublishOutcome { id, outcome });
    }

    /// Blocks in the publish queue (including the one being signed or published).
    pub fn publish_queue_len(&self) -> usize {
        self.publish.len()
    }
}
