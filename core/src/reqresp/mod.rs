//! Req/resp sync, `payload_by_number` (spec §8): the pure pieces of serving it.
//!
//! The protocol is deprecated (op-node stopped requesting by default), but older op-node
//! clients still ask and count a failed negotiation against us. This module holds what a server
//! needs, with no I/O:
//! - [`protocol_id`] and the chain clock ([`ChainClock`]) that bounds valid requests;
//! - [`codec`]: the 8-byte request, the result byte, the `version ‖ snappy-framed` success body,
//!   and a size-capped response decoder for tests and a future client;
//! - [`store`]: a bounded store of recently accepted payloads and op-node's answer policy;
//! - [`limit`]: op-node's token-bucket rate limits as plain state driven by `now`.
//!
//! ## How a runtime serves one inbound stream (op-node's order)
//! 1. `start = now`, `deadline = start + MAX_THROTTLE_DELAY_MS`.
//! 2. [`limit::ServerRateLimits::reserve_global`]`(now, deadline)`: on `WaitUntil(t)` sleep
//!    until `t`; on `GiveUp` reply [`codec::ResultCode::UnknownError`] and close.
//! 3. [`limit::ServerRateLimits::reserve_peer`]`(peer, now, deadline)`, the same way.
//! 4. Read at most [`codec::REQUEST_LEN`]` + 1` bytes until the client's half-close, within
//!    [`READ_DEADLINE_MS`]; [`codec::decode_request`].
//! 5. [`store::PayloadStore::respond`]`(clock, number, now)` gives the whole reply; write it within
//!    [`WRITE_DEADLINE_MS`] and close.

pub mod codec;
pub mod limit;
pub mod store;

pub use codec::{
    REQUEST_LEN, RequestError, ResponseEncodeError, ResponseError, ResultCode, SyncPayload,
    decode_request, decode_response, encode_request, encode_response,
};
pub use limit::{Admission, RateLimitConfig, ServerRateLimits, TokenBucket};
pub use store::{InsertOutcome, PayloadStore, StoreConfig, StoreError};

/// How long the server waits to read the 8-byte request after the rate limits let it through
/// (op-node `serverReadRequestTimeout`, 10 s).
pub const READ_DEADLINE_MS: u64 = 10_000;
/// How long the server may take to write the reply (op-node `serverWriteChunkTimeout`, 10 s).
/// A client uses the same 10 s for writing its request and reading the reply.
pub const WRITE_DEADLINE_MS: u64 = 10_000;

/// The libp2p protocol id: `/opstack/req/payload_by_number/<chain id decimal>/0`.
///
/// ⚠ No trailing slash. The published spec text shows `/opstack/req/payload_by_number/<id>/0/`
/// and kona and base register that form, but op-node registers the string without the slash;
/// multistream-select compares ids byte for byte, so only this form negotiates with op-node.
pub fn protocol_id(chain_id: u64) -> String {
    format!("/opstack/req/payload_by_number/{chain_id}/0")
}

/// The L2 chain's genesis and block time: what turns wall-clock time into block numbers and
/// back (op-node `rollup.Config.TargetBlockNumber` / `TimestampForBlock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainClock {
    /// Number of the L2 genesis block.
    pub genesis_number: u64,
    /// Timestamp of the L2 genesis block (Unix seconds).
    pub genesis_time: u64,
    /// Seconds between L2 blocks (2 on OP Mainnet). Zero makes every request invalid.
    pub block_time: u64,
}

impl ChainClock {
    /// The highest block number the wall clock allows at `now_secs`; see [`wall_clock_head`].
    pub fn head(&self, now_secs: u64) -> Option<u64> {
        wall_clock_head(
            self.genesis_number,
            self.genesis_time,
            self.block_time,
            now_secs,
        )
    }

    /// The timestamp block `number` has on this chain:
    /// `genesis_time + (number - genesis_number) * block_time`. `None` for numbers below
    /// genesis or a timestamp past `u64::MAX` (op-node wraps around instead).
    pub fn timestamp_for_block(&self, number: u64) -> Option<u64> {
        let since = number.checked_sub(self.genesis_number)?;
        since
            .checked_mul(self.block_time)?
            .checked_add(self.genesis_time)
    }
}

/// op-node's wall-clock head: `genesis_number + (now_secs - genesis_time) / block_time`,
/// rounded down so no block from the future is served.
///
/// `None` when the chain has not started (`now_secs < genesis_time`, where op-node returns an
/// error and so answers "invalid request") or `block_time` is zero. Saturates at `u64::MAX`.
pub fn wall_clock_head(
    genesis_number: u64,
    genesis_time: u64,
    block_time: u64,
    now_secs: u64,
) -> Option<u64> {
    let elapsed = now_secs.checked_sub(genesis_time)?;
    let blocks = elapsed.checked_div(block_time)?;
    Some(genesis_number.saturating_add(blocks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Vectors {
        protocol_id_template: String,
        protocol_id_chain10: String,
    }

    pub(super) fn vectors() -> serde_json::Value {
        crate::op_node_vectors("reqresp_payload_by_number.json")
    }

    #[test]
    fn protocol_id_matches_op_node_without_trailing_slash() {
        let v: Vectors = serde_json::from_value(vectors()).unwrap();
        assert_eq!(protocol_id(10), v.protocol_id_chain10);
        assert_eq!(protocol_id(10), "/opstack/req/payload_by_number/10/0");
        assert_eq!(
            v.protocol_id_template.replace("<decimal chain id>", "8453"),
            protocol_id(8453)
        );
        // ⚠ The spec text / kona form with a trailing slash must not be what we register.
        assert_ne!(protocol_id(10), "/opstack/req/payload_by_number/10/0/");
        assert!(!protocol_id(u64::MAX).ends_with('/'));
        assert_eq!(
            protocol_id(u64::MAX),
            "/opstack/req/payload_by_number/18446744073709551615/0"
        );
    }

    #[test]
    fn head_rounds_down_and_starts_at_genesis() {
        // Genesis block 100 at t=1000, 2 s blocks.
        let c = ChainClock {
            genesis_number: 100,
            genesis_time: 1000,
            block_time: 2,
        };
        assert_eq!(c.head(1000), Some(100));
        assert_eq!(c.head(1001), Some(100));
        assert_eq!(c.head(1002), Some(101));
        assert_eq!(c.head(1003), Some(101));
        assert_eq!(c.head(3000), Some(1100));
        assert_eq!(wall_clock_head(100, 1000, 2, 3000), Some(1100));
    }

    #[test]
    fn head_with_genesis_in_the_future_or_no_block_time_is_none() {
        let c = ChainClock {
            genesis_number: 5,
            genesis_time: 1000,
            block_time: 2,
        };
        assert_eq!(c.head(999), None);
        assert_eq!(c.head(0), None);
        assert_eq!(wall_clock_head(0, u64::MAX, 2, 0), None);
        assert_eq!(wall_clock_head(0, 0, 0, 100), None);
        // Saturates instead of overflowing.
        assert_eq!(wall_clock_head(u64::MAX - 1, 0, 1, 100), Some(u64::MAX));
    }

    #[test]
    fn timestamp_for_block_inverts_head() {
        let c = ChainClock {
            genesis_number: 100,
            genesis_time: 1000,
            block_time: 2,
        };
        assert_eq!(c.timestamp_for_block(100), Some(1000));
        assert_eq!(c.timestamp_for_block(150), Some(1100));
        assert_eq!(c.head(1100), Some(150));
        assert_eq!(c.timestamp_for_block(99), None);
        assert_eq!(c.timestamp_for_block(u64::MAX), None);
    }
}
