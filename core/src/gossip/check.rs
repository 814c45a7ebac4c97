//! The stateless half of validation (rules 1–13): a pure function of the message bytes, the
//! topic's version, the chain id, a snapshot of the signer set, the fork schedule, the
//! timestamp window and `now`. It returns a plain-data [`Checked`] that the stateful half
//! ([`Validator::judge`](crate::gossip::validate::Validator::judge): signer re-match, seen
//! state, per-height counts, rotation bookkeeping) turns into the final
//! [`Outcome`](crate::gossip::validate::Outcome).
//!
//! A runtime may run [`Checker::check`] for different messages on other threads: a
//! [`Checker`] is a cheap `Clone + Send + Sync` snapshot
//! ([`Node::stateless_checker`](crate::Node::stateless_checker)). A snapshot may be outdated by the time its result is
//! judged (the signer rotated meanwhile); the judge re-matches the recovered signer against
//! the live signer set and runs the rules this check skipped, so the verdict is the one the
//! live state gives (see [`Validator::judge`](crate::gossip::validate::Validator::judge)).
//!
//! Nothing here reads a clock or spawns: the two big hashing passes (the payload hash over the
//! signed bytes for the signature, and the transaction trie with the block hash) run in
//! parallel only through the caller's [`Join`]; [`Sequential`] runs them one after the other.

use alloy_primitives::{Address, B256, Signature};
use op_alloy_rpc_types_engine::OpExecutionPayload;

use crate::fork::ForkSchedule;
use crate::gossip::block_hash::compute_block_hash;
use crate::gossip::signature::{BLOCK_SIGNING_DOMAIN, payload_hash, recover_signer, signing_hash};
use crate::gossip::signer_set::SignerState;
use crate::gossip::topic::BlockVersion;
use crate::gossip::validate::{BlockRef, Reason};
use crate::gossip::wire::{
    self, DecompressError, EnvelopeError, SignedBytes, SizeError, split_beacon_root,
    split_signature,
};

/// How the stateless check may run two independent computations: the caller's hook for
/// parallelism (the core itself never spawns).
pub trait Join: Sync {
    /// Whether a message whose signed part is `signed_len` bytes should have its two hashing
    /// passes run through [`Join::join`]. Answering true makes the check decode and hash the
    /// block *before* its signature is known to be good: work on unauthenticated bytes. An
    /// implementation should say yes only when that work is otherwise idle capacity (a free
    /// core), so a flood of large forged messages falls back to the sequential order, where
    /// nothing unauthenticated is decoded or hashed.
    fn parallel(&self, signed_len: usize) -> bool;

    /// Runs `a` and `b`, possibly at the same time, and returns both results. The default runs
    /// them one after the other on the calling thread.
    fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        (a(), b())
    }
}

/// The [`Join`] that never splits: signature first, then (only for a known signer) decoding
/// and hashing. What the node uses when it validates inline.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sequential;

impl Join for Sequential {
    fn parallel(&self, _signed_len: usize) -> bool {
        false
    }
}

/// Everything the stateless rules need: a snapshot, cheap to clone and `Send`.
#[derive(Debug, Clone)]
pub struct Checker {
    pub(crate) chain_id: u64,
    pub(crate) forks: ForkSchedule,
    pub(crate) max_past_secs: u64,
    pub(crate) max_future_secs: u64,
    pub(crate) signer: SignerState,
}

/// The result of rules 5–12: the payload and its beacon root, or why not (with the header
/// facts when the payload decoded).
pub(crate) type RulesResult =
    Result<(OpExecutionPayload, Option<B256>), (Reason, Option<BlockRef>)>;

/// What the stateless check found: plain data, to be judged by
/// [`Validator::judge`](crate::gossip::validate::Validator::judge).
#[derive(Debug, Clone)]
pub struct Checked {
    /// The topic version the message was checked for.
    pub version: BlockVersion,
    pub(crate) stage: Stage,
}

/// How far the check got.
#[derive(Debug, Clone)]
pub(crate) enum Stage {
    /// Rules 1–2 failed: the same verdict under any signer set.
    Undecodable(Reason),
    /// Rule 3: the snapshot had no signer, so nothing after it ran.
    NoSigner,
    /// Rule 4 failed before any address recovered (`BadRecoveryId`, `TooSmall`,
    /// `SignatureUnrecoverable`).
    BadSignature(Reason),
    /// The signature recovered.
    Recovered(Box<Recovered>),
}

/// A recovered signature and, when they ran, rules 5–12.
#[derive(Debug, Clone)]
pub(crate) struct Recovered {
    pub(crate) signer: Address,
    pub(crate) payload_hash: B256,
    pub(crate) signature: Signature,
    /// Rules 5–12, run when the snapshot knew the signer (or on the parallel path).
    pub(crate) rules: Option<RulesResult>,
}

impl Checked {
    /// The reason the check alone gives: final for rules 1–4; `Accepted` here still has
    /// the stateful rules (signer re-match, 14–16) ahead of it.
    pub fn reason_so_far(&self) -> Reason {
        match &self.stage {
            Stage::Undecodable(r) | Stage::BadSignature(r) => *r,
            Stage::NoSigner => Reason::NoSigner,
            Stage::Recovered(rec) => match &rec.rules {
                None => Reason::WrongSigner,
                Some(Ok(_)) => Reason::Accepted,
                Some(Err((r, _))) => *r,
            },
        }
    }

    /// The recovered signer, if the signature recovered.
    pub fn signer(&self) -> Option<Address> {
        match &self.stage {
            Stage::Recovered(rec) => Some(rec.signer),
            _ => None,
        }
    }

    /// The hash of the signed bytes, if the signature recovered.
    pub fn payload_hash(&self) -> Option<B256> {
        match &self.stage {
            Stage::Recovered(rec) => Some(rec.payload_hash),
            _ => None,
        }
    }

    /// The block's number, hash and timestamp, if the payload was decoded.
    pub fn header(&self) -> Option<BlockRef> {
        match &self.stage {
            Stage::Recovered(rec) => match &rec.rules {
                Some(Ok((payload, _))) => Some(block_ref(payload)),
                Some(Err((_, header))) => *header,
                None => None,
            },
            _ => None,
        }
    }

    /// The decoded payload, if every stateless rule passed.
    pub fn payload(&self) -> Option<&OpExecutionPayload> {
        match &self.stage {
            Stage::Recovered(rec) => match &rec.rules {
                Some(Ok((payload, _))) => Some(payload),
                _ => None,
            },
            _ => None,
        }
    }
}

impl Checker {
    /// The snapshot's signer set.
    pub fn signer(&self) -> &SignerState {
        &self.signer
    }

    /// Rules 1–13 over one gossip `data` received on the `version` topic, judged at `now_ms`
    /// (Unix ms). `buf` is reused for the decompressed bytes (and holds them afterwards).
    pub fn check<J: Join>(
        &self,
        now_ms: u64,
        version: BlockVersion,
        data: &[u8],
        buf: &mut Vec<u8>,
        join: &J,
    ) -> Checked {
        // Rules 1–2: size guard before allocating, then decompress.
        match decompress(data, buf) {
            Err(reason) => Checked {
                version,
                stage: Stage::Undecodable(reason),
            },
            Ok(()) => self.check_decompressed(now_ms, version, buf, join),
        }
    }

    /// Rules 3–13 over an already decompressed message.
    pub fn check_decompressed<J: Join>(
        &self,
        now_ms: u64,
        version: BlockVersion,
        raw: &[u8],
        join: &J,
    ) -> Checked {
        let stage = self.stage(now_ms, version, raw, join);
        Checked { version, stage }
    }

    fn stage<J: Join>(&self, now_ms: u64, version: BlockVersion, raw: &[u8], join: &J) -> Stage {
        // Rule 3: without a signer nothing can be authenticated.
        if self.signer.is_unconfigured(now_ms) {
            return Stage::NoSigner;
        }
        // Rule 4: signature over everything after it, before any decoding.
        let SignedBytes { signature, signed } = match split_signature(raw) {
            Ok(s) => s,
            Err(EnvelopeError::BadRecoveryId(_)) => {
                return Stage::BadSignature(Reason::BadRecoveryId);
            }
            Err(_) => return Stage::BadSignature(Reason::TooSmall),
        };
        let (recovered, rules) = if join.parallel(signed.len()) {
            // Both big hashing passes at once; the rules' result is kept only as the judge's
            // cache (it reports it for an unknown signer only when its probe asks).
            let (recovered, rules) = join.join(
                || self.recover(&signature, signed),
                || self.stateless_rules(now_ms, version, signed),
            );
            (recovered, Some(rules))
        } else {
            (self.recover(&signature, signed), None)
        };
        let (signer, payload_hash) = match recovered {
            Ok(x) => x,
            Err(reason) => return Stage::BadSignature(reason),
        };
        // Unauthenticated bytes are decoded and hashed only on the parallel path.
        let rules = match rules {
            Some(rules) => Some(rules),
            None if self.signer.matches(signer, now_ms).is_some() => {
                Some(self.stateless_rules(now_ms, version, signed))
            }
            None => None,
        };
        Stage::Recovered(Box::new(Recovered {
            signer,
            payload_hash,
            signature,
            rules,
        }))
    }

    /// Rule 4's recovery: the signer and the payload hash.
    fn recover(&self, signature: &Signature, signed: &[u8]) -> Result<(Address, B256), Reason> {
        let payload_hash = payload_hash(signed);
        let hash = signing_hash(BLOCK_SIGNING_DOMAIN, self.chain_id, payload_hash);
        match recover_signer(signature, &hash) {
            Ok(addr) => Ok((addr, payload_hash)),
            Err(_) => Err(Reason::SignatureUnrecoverable),
        }
    }

    /// Rules 5–12, which depend on the bytes, `now` and the fork schedule only. On failure,
    /// the reason and, when the payload decoded, its header facts.
    pub(crate) fn stateless_rules(
        &self,
        now_ms: u64,
        version: BlockVersion,
        signed: &[u8],
    ) -> RulesResult {
        // Rule 5: SSZ in the topic's shape.
        let (root, payload_bytes) =
            split_beacon_root(version, signed).map_err(|_| (Reason::MissingBeaconRoot, None))?;
        let payload = match wire::decode_payload(version, payload_bytes) {
            Ok(p) => p,
            Err(e) => {
                tracing::trace!(%version, error = %e, "payload does not decode");
                return Err((Reason::SszDecode, None));
            }
        };
        let header = Some(block_ref(&payload));
        let v1 = payload.as_v1();
        // Rules 6–7: timestamp window against `now` (seconds, rounded down; unsigned).
        let now = now_ms / 1000;
        if v1.timestamp < now.saturating_sub(self.max_past_secs) {
            return Err((Reason::TooOld, header));
        }
        if v1.timestamp > now.saturating_add(self.max_future_secs) {
            return Err((Reason::TooNew, header));
        }
        // Rule 8: block hash.
        if compute_block_hash(&payload, root) != v1.block_hash {
            return Err((Reason::BlockHashMismatch, header));
        }
        // Rules 9–13: version field rules (presence is enforced by the shape).
        if let Some(reason) = self.version_rules(&payload) {
            return Err((reason, header));
        }
        Ok((payload, root))
    }

    fn version_rules(&self, payload: &OpExecutionPayload) -> Option<Reason> {
        let withdrawals_non_empty = payload.as_v2().is_some_and(|p| !p.withdrawals.is_empty());
        if withdrawals_non_empty {
            return Some(Reason::WithdrawalsNotEmpty);
        }
        if let Some(v3) = payload.as_v3() {
            // ⚠ Since Jovian, blob_gas_used carries the DA footprint; the spec text still
            // demands zero. op-node exempts Jovian blocks, and so do we.
            if v3.blob_gas_used != 0
                && !self
                    .forks
                    .is_jovian(v3.payload_inner.payload_inner.timestamp)
            {
                return Some(Reason::BlobGasUsedBeforeJovian);
            }
            if v3.excess_blob_gas != 0 {
                return Some(Reason::ExcessBlobGasNonZero);
            }
        }
        None
    }
}

/// Rules 1–2: decompresses `data` into `buf`, or the reason it cannot.
pub(crate) fn decompress(data: &[u8], buf: &mut Vec<u8>) -> Result<(), Reason> {
    wire::decompress_into(data, buf).map_err(|e| match e {
        DecompressError::Size(SizeError::Unreadable) => Reason::SnappyLengthUnreadable,
        DecompressError::Size(SizeError::TooLarge(_)) => Reason::TooLarge,
        DecompressError::Size(SizeError::TooSmall(_)) => Reason::TooSmall,
        DecompressError::Snappy => Reason::SnappyCorrupt,
    })
}

pub(crate) fn block_ref(payload: &OpExecutionPayload) -> BlockRef {
    let v1 = payload.as_v1();
    BlockRef {
        number: v1.block_number,
        hash: v1.block_hash,
        timestamp: v1.timestamp,
    }
}

/// A [`Join`] that takes the parallel path for every message but runs both halves one after
/// the other on the calling thread: the parallel path's logic, deterministically (tests,
/// fuzz targets).
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct SplitInline;

#[cfg(any(test, feature = "test-util"))]
impl Join for SplitInline {
    fn parallel(&self, _signed_len: usize) -> bool {
        true
    }
}
