//! Serving `payload_by_number` (spec §8) from the recent-block store, with op-node's rate
//! limits: the global bucket first, then the peer's, sharing one 20 s give-up deadline.

use libp2p_identity::PeerId;

use super::{Action, Node, StreamHandle, UnixMillis};
use crate::reqresp::codec::{ResultCode, decode_request};
use crate::reqresp::limit::Admission;

impl Node {
    pub(super) fn handle_payload_request(
        &mut self,
        now: UnixMillis,
        stream: StreamHandle,
        peer: PeerId,
        data: &[u8],
    ) {
        let (Some(limits), Some(_)) = (&mut self.limits, &self.store) else {
            // No server configured: the stub answer the spec recommends.
            self.respond(stream, ResultCode::NotFound.error_reply().to_vec());
            return;
        };
        let number = match decode_request(data) {
            Ok(n) => n,
            Err(e) => {
                self.respond(stream, e.result_code().error_reply().to_vec());
                return;
            }
        };
        let deadline = limits.deadline(now);
        let after_global = match limits.reserve_global(now, deadline) {
            Admission::Now => now,
            Admission::WaitUntil(t) => t,
            Admission::GiveUp => {
                self.respond(stream, ResultCode::UnknownError.error_reply().to_vec());
                return;
            }
        };
        let serve_at = match limits.reserve_peer(peer, after_global, deadline) {
            Admission::Now => after_global,
            Admission::WaitUntil(t) => t,
            Admission::GiveUp => {
                self.respond(stream, ResultCode::UnknownError.error_reply().to_vec());
                return;
            }
        };
        if serve_at <= now {
            self.serve(now, stream, number);
        } else if self.throttled.len() >= self.config.max_throttled_requests {
            self.respond(stream, ResultCode::UnknownError.error_reply().to_vec());
        } else {
            self.throttled.push((serve_at, stream, number));
        }
    }

    fn serve(&mut self, now: UnixMillis, stream: StreamHandle, number: u64) {
        let data = match (&self.store, &self.config.reqresp) {
            (Some(store), Some(cfg)) => store.respond(&cfg.clock, number, now),
            _ => ResultCode::NotFound.error_reply().to_vec(),
        };
        self.respond(stream, data);
    }

    fn respond(&mut self, stream: StreamHandle, data: Vec<u8>) {
        let code = data
            .first()
            .copied()
            .unwrap_or(ResultCode::UnknownError.as_byte());
        self.stats.count_reqresp(code);
        self.actions
            .push_back(Action::PayloadResponse { stream, data });
    }

    /// Serves throttled requests whose time has come, in time order.
    pub(super) fn serve_due(&mut self, now: UnixMillis) {
        if self.throttled.is_empty() {
            return;
        }
        self.throttled.sort_by_key(|(t, s, _)| (*t, *s));
        let due = self
            .throttled
            .iter()
            .take_while(|(t, _, _)| *t <= now)
            .count();
        let ready: Vec<_> = self.throttled.drain(..due).collect();
        for (_, stream, number) in ready {
            self.serve(now, stream, number);
        }
    }
}
