//! Per-hop timestamps of gossip blocks (issue 15), off unless asked for.
//!
//! With `OP_P2P_LOG=op_p2p::hop=trace` the driver logs one line per stage of every block
//! message: `recv` (gossipsub handed it to us, after its message id and duplicate filter),
//! `verdict` (the core accepted it), `fwd` (reported to gossipsub, which queues it for the
//! mesh), `pub` (our own block handed to gossipsub). Every line names this node (`me`) and
//! the message id's first 8 hex digits; `recv` names the peer it came from, so one run's
//! lines from every process (one clock) give each hop: the sender's `fwd`/`pub` → the
//! receiver's `recv` (transport), `recv` → `verdict` (validation), `verdict` → `fwd`
//! (the driver). Disabled, a stage costs one level check.

use libp2p::PeerId;
use libp2p::gossipsub::MessageId;

/// The log target of these lines.
pub const TARGET: &str = "op_p2p::hop";

/// Logs `stage` of message `id` at this node `me` (from `from`, for `recv`).
pub(crate) fn hop(me: &PeerId, stage: &'static str, id: &MessageId, from: Option<&PeerId>) {
    if !tracing::enabled!(target: TARGET, tracing::Level::TRACE) {
        return;
    }
    let short: String = id.0.iter().take(4).map(|b| format!("{b:02x}")).collect();
    match from {
        Some(from) => tracing::trace!(target: TARGET, %me, stage, id = %short, %from, "hop"),
        None => tracing::trace!(target: TARGET, %me, stage, id = %short, "hop"),
    }
}
