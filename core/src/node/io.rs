//! The plain data that crosses the [`Node`](super::Node)'s boundary, and nothing else: what
//! the runtime feeds in ([`Input`], with the [`GossipMessage`], [`PublishRequest`] and
//! [`LocalInfo`] it carries), what the node asks the runtime to do ([`Action`], with
//! [`DeliveredBlock`], [`PublishError`] and [`DisconnectReason`]), the runtime's opaque tokens
//! echoed back in answers ([`MessageHandle`], [`RequestId`], [`StreamHandle`]) and the core's
//! one notion of time ([`UnixMillis`]). No behaviour lives here: a runtime author reads this
//! file to learn the contract, and `mod.rs` for what the node does with it.

use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes};
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use op_alloy_rpc_types_engine::{OpExecutionPayload, OpNetworkPayloadEnvelope};

use crate::admin::{AdminError, AdminRequest, AdminResponse};
use crate::discovery::Enr;
use crate::gossip::topic::BlockVersion;
use crate::gossip::validate::{Reason, Verdict};
use crate::gossip::wire::MessageId;
use crate::peers::book::GossipScores;
use crate::publish::{DropReason, FailureKind, PublishId};
use alloy_primitives::Signature;

pub use super::state::StateChanges;

/// Who dialled a connection (the peer book's type, carried by
/// [`Input::ConnectionEstablished`]).
pub use crate::peers::book::Direction;

/// Unix time in milliseconds: the only notion of time the core has. The runtime reads the wall
/// clock; simulations pass virtual time.
pub type UnixMillis = u64;

/// The runtime's token for a gossip message it holds until the core's verdict (for example an
/// index into its map of gossipsub message ids and propagation sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageHandle(pub u64);

/// The runtime's token for an admin call, echoed in [`Action::AdminResponse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The runtime's token for an inbound `payload_by_number` stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamHandle(pub u64);

/// What the node says about itself in `opp2p_self`; set at start and whenever it changes
/// (new listen address, new ENR).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalInfo {
    /// Identify agent version, e.g. `op-p2p/0.1.0`.
    pub agent_version: String,
    /// Identify protocol version.
    pub protocol_version: String,
    /// Our `enr:` text, if discovery runs.
    pub enr: Option<String>,
    /// Our listen addresses.
    pub addrs: Vec<Multiaddr>,
    /// Protocols we serve.
    pub protocols: Vec<String>,
}

/// A gossip message held for validation.
#[derive(Debug, Clone)]
pub struct GossipMessage {
    /// The runtime's token, echoed in the verdict.
    pub handle: MessageHandle,
    /// The gossipsub topic string.
    pub topic: String,
    /// The gossipsub `data` field, exactly as received.
    pub data: Bytes,
    /// The peer that forwarded it to us (gossipsub's propagation source), when known. Its
    /// application score is charged for REJECTs.
    pub source: Option<PeerId>,
}

/// A block to publish.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PublishRequest {
    /// Have the runtime's signer sign it ([`Action::Sign`]), then publish.
    Sign {
        /// The payload.
        payload: Box<OpExecutionPayload>,
        /// Its parent beacon block root (v3/v4).
        parent_beacon_block_root: Option<B256>,
    },
    /// Publish an envelope someone already signed.
    Signed(Arc<OpNetworkPayloadEnvelope>),
}

/// Why a publish did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// [`PublishRequest::Sign`] without a sequencer key or remote signer.
    #[error("no sequencer key or remote signer configured")]
    NoKey,
    /// The signature recovers to an address our own validator does not accept.
    #[error("signature recovers to {got}, but the unsafe block signer is {want}")]
    WrongSigner {
        /// The address the signature recovers to.
        got: Address,
        /// The configured unsafe block signer.
        want: Address,
    },
    /// The signature recovers no address.
    #[error("signature does not recover a public key")]
    BadSignature,
    /// The signer could not sign (its message).
    #[error("signer: {0}")]
    Signer(String),
    /// No peer is subscribed to the block topic yet. Transient by decision: a sequencer that
    /// just started, or whose peers are reconnecting, gets one within seconds, so the block
    /// is retried at the front of the queue until its deadline (10 s by default) and only
    /// then reported `Failed(transient, NoPeers)`. (op-node's gossipsub publishes into the
    /// void instead and reports success.)
    #[error("no peers on the block topic yet (retried until the publish deadline)")]
    NoPeers,
    /// Gossipsub could not send it (its message, for example every peer's queue full).
    #[error("gossipsub: {0}")]
    Gossip(String),
    /// The payload's version is not the one the fork schedule gives its timestamp.
    #[error("payload is {got} but a block at this timestamp is published as {want}")]
    WrongVersion {
        /// Version of the payload.
        got: BlockVersion,
        /// Version the fork schedule requires.
        want: BlockVersion,
    },
    /// The payload could not be encoded.
    #[error(transparent)]
    Encode(#[from] crate::gossip::wire::EncodeError),
}

/// A failed step of a publish, and whether it may succeed on a retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} failure: {error}", kind.as_str())]
pub struct PublishFailed {
    /// Transient (retried until the deadline) or permanent (dropped).
    pub kind: FailureKind,
    /// What went wrong.
    #[source]
    pub error: PublishError,
}

impl PublishFailed {
    /// A failure that may go away on a retry.
    pub fn transient(error: PublishError) -> Self {
        Self {
            kind: FailureKind::Transient,
            error,
        }
    }

    /// A failure that will not.
    pub fn permanent(error: PublishError) -> Self {
        Self {
            kind: FailureKind::Permanent,
            error,
        }
    }
}

/// How a queued block ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishOutcome {
    /// Gossipsub sent it.
    Published {
        /// op-node's message id.
        message_id: MessageId,
        /// The peers it was sent to.
        peers: Vec<PeerId>,
    },
    /// A queue rule dropped it (full, superseded, deadline, too old).
    Dropped(DropReason),
    /// It failed: permanently, or transiently until its deadline passed.
    Failed(PublishFailed),
}

/// Something that happened, fed to the node.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input {
    /// A gossip message to validate; answered by exactly one [`Action::Verdict`].
    Gossip(GossipMessage),
    /// A gossip message whose stateless rules the runtime already ran, with a
    /// [`Checker`](crate::gossip::check::Checker) from
    /// [`Node::stateless_checker`](crate::Node::stateless_checker), on the message's `data`: judged against the live
    /// state like [`Input::Gossip`] and answered by exactly one [`Action::Verdict`]. Feed
    /// these in the order the messages arrived.
    GossipChecked(GossipMessage, crate::gossip::check::Checked),
    /// The unsafe block signer changed (from L1's SystemConfig, or the operator).
    SetUnsafeSigner(Address),
    /// How the runtime's source of the unsafe block signer (L1's SystemConfig) is doing; the
    /// node reports it in its health. Never sent when no such source is configured.
    SignerSource(SignerSourceStatus),
    /// A timer fired (or any time passed); see [`Node::poll_timeout`](super::Node::poll_timeout).
    Tick,
    /// The first connection to `peer` is up (after
    /// [`Node::allow_established`](super::Node::allow_established) allowed it).
    ConnectionEstablished {
        /// The peer.
        peer: PeerId,
        /// Its address on this connection.
        addr: Multiaddr,
        /// Who dialled.
        direction: Direction,
    },
    /// The last connection to `peer` closed.
    ConnectionClosed {
        /// The peer.
        peer: PeerId,
    },
    /// A dial we were asked to make failed.
    DialFailed {
        /// The peer.
        peer: PeerId,
        /// The error, for `connectPeer` callers.
        error: String,
    },
    /// Identify information from a peer.
    Identified {
        /// The peer.
        peer: PeerId,
        /// Agent version.
        agent_version: String,
        /// Protocol version.
        protocol_version: String,
        /// Protocols it speaks.
        protocols: Vec<String>,
        /// Addresses it listens on.
        listen_addrs: Vec<Multiaddr>,
    },
    /// A ping round trip, in nanoseconds.
    Ping {
        /// The peer.
        peer: PeerId,
        /// Round-trip time.
        rtt_ns: u64,
    },
    /// A peer subscribed to (`true`) or left (`false`) a topic.
    Subscription {
        /// The peer.
        peer: PeerId,
        /// The topic string.
        topic: String,
        /// Joined or left.
        subscribed: bool,
    },
    /// Gossipsub scores, **without** the application-specific part (the runtime subtracts what
    /// it last set from [`Action::SetAppScore`]), for peers it has scores for.
    GossipScores(Vec<(PeerId, GossipScores)>),
    /// A record found by discovery.
    Discovered(Box<Enr>),
    /// Our own identity details changed.
    SetLocalInfo(Box<LocalInfo>),
    /// An admin (`opp2p_*`) call; answered by one [`Action::AdminResponse`].
    Admin {
        /// The caller's token.
        id: RequestId,
        /// The parsed call.
        request: AdminRequest,
    },
    /// Queue a block for publishing (see [`crate::publish`]); answered by exactly one
    /// [`Action::PublishOutcome`] with the same id, after any number of [`Action::Sign`] and
    /// [`Action::Publish`].
    Publish {
        /// The runtime's token for it.
        id: PublishId,
        /// The block.
        request: PublishRequest,
    },
    /// The answer to an [`Action::Sign`]: the signature, or why there is none.
    Signed {
        /// The block.
        id: PublishId,
        /// The signature, or the failure (transient ones are retried).
        result: Result<Signature, PublishFailed>,
    },
    /// The answer to an [`Action::Publish`]: the peers gossipsub sent it to, or why it did not.
    Published {
        /// The block.
        id: PublishId,
        /// The peers, or the failure (transient ones are retried).
        result: Result<Vec<PeerId>, PublishFailed>,
    },
    /// An inbound `payload_by_number` request (the bytes the client wrote before half-closing);
    /// answered by one [`Action::PayloadResponse`].
    PayloadRequest {
        /// The stream.
        stream: StreamHandle,
        /// The requesting peer.
        peer: PeerId,
        /// The request bytes.
        data: Bytes,
    },
}

/// A block accepted from gossip, for the application.
#[derive(Debug, Clone)]
pub struct DeliveredBlock {
    /// The message it came in.
    pub handle: MessageHandle,
    /// The topic version it came on.
    pub version: BlockVersion,
    /// The decoded, validated envelope.
    pub envelope: Arc<OpNetworkPayloadEnvelope>,
}

/// Something the runtime must do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Action {
    /// Report this verdict for a held message to gossipsub.
    Verdict {
        /// The held message.
        handle: MessageHandle,
        /// What to report.
        verdict: Verdict,
        /// Why.
        reason: Reason,
    },
    /// Hand an accepted block to the application.
    Deliver(DeliveredBlock),
    /// Sign block gossip: answer with [`Input::Signed`]. Signing may take long (a remote
    /// signer): the runtime must do it off its event loop.
    Sign {
        /// The block.
        id: PublishId,
        /// The chain id of the signing message.
        chain_id: u64,
        /// `keccak256` of the signed bytes (op-signer's `payloadHash`).
        payload_hash: B256,
    },
    /// Publish these bytes on this topic (anonymous, no from/seqno/signature); answer with
    /// [`Input::Published`].
    Publish {
        /// The block.
        id: PublishId,
        /// Topic string.
        topic: String,
        /// Gossip `data`.
        data: Bytes,
        /// op-node's message id of it.
        message_id: MessageId,
        /// Block number and hash, for logs.
        block: (u64, B256),
    },
    /// How a queued block ended: exactly one per [`Input::Publish`].
    PublishOutcome {
        /// The block.
        id: PublishId,
        /// How it ended.
        outcome: PublishOutcome,
    },
    /// Dial the peer at these addresses.
    Dial {
        /// The peer.
        peer: PeerId,
        /// Where.
        addrs: Vec<Multiaddr>,
    },
    /// Close every connection to the peer.
    Disconnect {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
    },
    /// Set gossipsub's application-specific score of the peer.
    SetAppScore {
        /// The peer.
        peer: PeerId,
        /// The score (weight 1).
        score: f64,
    },
    /// The answer to an admin call.
    AdminResponse {
        /// The caller's token.
        id: RequestId,
        /// The result.
        result: Result<AdminResponse, AdminError>,
    },
    /// Write these bytes on the stream and close it.
    PayloadResponse {
        /// The stream.
        stream: StreamHandle,
        /// The whole response.
        data: Vec<u8>,
    },
    /// Persistent state changed; [`StateChanges`] says which parts and so how soon they are
    /// due. The runtime exports the due parts with
    /// [`Node::export_parts`](super::Node::export_parts) and writes them (bans and the
    /// operator's peer-book changes within a second, what the network told us on a slower
    /// schedule: see [`StateChanges`]).
    PersistState(StateChanges),
    /// Blocks signed by one consistent address other than the configured signer keep arriving
    /// from honest-looking peers: our signer may be stale. The runtime re-reads the signer from
    /// its source (L1) now rather than at the next poll. Emitted at most once per
    /// [`SIGNER_SUSPECT_INTERVAL_MS`] per address.
    SignerSuspect {
        /// The address the blocks recover to.
        address: Address,
    },
    /// A timed ban was made (a score ban, or the IP ban made with one), with its reason: for
    /// the runtime's event stream and metrics. Nothing to carry out: the node already
    /// disconnects and refuses.
    Banned(super::BanRecord),
}

/// Least time between two [`Action::SignerSuspect`] for the same address.
pub const SIGNER_SUSPECT_INTERVAL_MS: u64 = 30_000;

/// The state of the runtime's unsafe-signer source, as the runtime sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignerSourceStatus {
    /// The last read succeeded at this time (Unix ms); the signer it gave was sent as
    /// [`Input::SetUnsafeSigner`].
    Ok {
        /// When.
        at: UnixMillis,
    },
    /// Reads have failed since `since` (Unix ms); the node keeps the last known signer.
    Failing {
        /// First failure of the current run of failures.
        since: UnixMillis,
        /// The last error, for the health report (bounded by the sender).
        error: String,
    },
}

/// Why the node asks for a disconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// Above the high-water mark, lowest value first.
    Trim,
    /// Score below the ban threshold.
    Banned,
    /// A block or ban now forbids the connection.
    Gated,
    /// A bound on tracked peers was hit.
    OverCapacity,
    /// `opp2p_disconnectPeer`.
    Admin,
}
