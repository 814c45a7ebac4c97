//! [`Node`]: the sans-IO owner type. Inputs go in through [`Node::handle_input`] with an
//! explicit `now`; actions come out of [`Node::poll_action`]; [`Node::poll_timeout`] says when
//! the node next wants a [`Input::Tick`].

use std::collections::VecDeque;
use std::sync::Arc;

use alloy_primitives::{Address, Bytes};
use op_alloy_rpc_types_engine::OpNetworkPayloadEnvelope;

use crate::stats::Stats;
use crate::topic::{BlockTopic, BlockVersion};
use crate::validate::{Reason, Validator, ValidatorConfig, Verdict};

/// Unix time in milliseconds: the only notion of time the core has. The runtime reads the wall
/// clock; simulations pass virtual time.
pub type UnixMillis = u64;

/// The runtime's token for a gossip message it holds until the core's verdict (for example an
/// index into its map of gossipsub message ids and propagation sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageHandle(pub u64);

/// Node settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Validation settings (chain id, signer, forks, windows, bounds).
    pub validator: ValidatorConfig,
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
}

/// Something that happened, fed to the node.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input {
    /// A gossip message to validate; answered by exactly one [`Action::Verdict`].
    Gossip(GossipMessage),
    /// The unsafe block signer changed (from L1's SystemConfig, or the operator).
    SetUnsafeSigner(Address),
    /// A timer fired (or any time passed); see [`Node::poll_timeout`].
    Tick,
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
}

/// The protocol core. Single-threaded, deterministic, no I/O.
///
/// Drain contract: after every [`Node::handle_input`], call [`Node::poll_action`] until it
/// returns `None`, then read [`Node::poll_timeout`] and call `handle_input(now, Input::Tick)`
/// no later than that.
#[derive(Debug)]
pub struct Node {
    chain_id: u64,
    validator: Validator,
    actions: VecDeque<Action>,
    stats: Stats,
    /// Largest `now` seen: timers never go backwards even if the wall clock does.
    clock: UnixMillis,
}

impl Node {
    /// A node with empty state.
    pub fn new(config: Config) -> Self {
        Self {
            chain_id: config.validator.chain_id,
            validator: Validator::new(config.validator),
            actions: VecDeque::new(),
            stats: Stats::default(),
            clock: 0,
        }
    }

    /// Feeds one input at `now`.
    pub fn handle_input(&mut self, now: UnixMillis, input: Input) {
        self.clock = self.clock.max(now);
        match input {
            Input::Gossip(msg) => self.handle_gossip(now, msg),
            Input::SetUnsafeSigner(signer) => self.validator.set_signer(signer, self.clock),
            Input::Tick => {
                self.validator.expire(self.clock);
            }
        }
    }

    fn handle_gossip(&mut self, now: UnixMillis, msg: GossipMessage) {
        let topic = match BlockTopic::parse(&msg.topic) {
            Ok(t) if t.chain_id == self.chain_id => t,
            _ => {
                self.push_verdict(msg.handle, Reason::UnknownTopic);
                return;
            }
        };
        let outcome = self.validator.validate(now, topic.version, &msg.data);
        self.push_verdict(msg.handle, outcome.reason);
        if let Some(envelope) = outcome.block {
            self.actions.push_back(Action::Deliver(DeliveredBlock {
                handle: msg.handle,
                version: topic.version,
                envelope,
            }));
        }
    }

    fn push_verdict(&mut self, handle: MessageHandle, reason: Reason) {
        self.stats.count_verdict(reason);
        tracing::debug!(handle = handle.0, %reason, verdict = reason.verdict().as_str(), "gossip verdict");
        self.actions.push_back(Action::Verdict {
            handle,
            verdict: reason.verdict(),
            reason,
        });
    }

    /// The next action, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When the node next wants a [`Input::Tick`], if ever.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.validator.signer().previous().map(|(_, end)| end)
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The validator (signer and seen state), for inspection.
    pub fn validator(&self) -> &Validator {
        &self.validator
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::ForkSchedule;
    use crate::testkit::{BlockBuilder, dev_key};

    const NOW: u64 = 1_750_000_000;

    fn node() -> Node {
        Node::new(Config {
            validator: ValidatorConfig::new(
                901,
                dev_key(0).address(),
                ForkSchedule::ALL_AT_GENESIS,
                2,
            ),
        })
    }

    fn gossip(handle: u64, topic: &str, data: Vec<u8>) -> Input {
        Input::Gossip(GossipMessage {
            handle: MessageHandle(handle),
            topic: topic.into(),
            data: data.into(),
        })
    }

    fn drain(n: &mut Node) -> Vec<Action> {
        std::iter::from_fn(|| n.poll_action()).collect()
    }

    #[test]
    fn every_gossip_input_gets_exactly_one_verdict_and_accepts_are_delivered() {
        let mut n = node();
        let data = BlockBuilder::new(BlockVersion::V4, 1, NOW)
            .sign(&dev_key(0), 901)
            .unwrap();
        n.handle_input(
            NOW * 1000,
            gossip(1, "/optimism/901/3/blocks", data.clone()),
        );
        let actions = drain(&mut n);
        assert!(matches!(
            actions.as_slice(),
            [Action::Verdict { handle: MessageHandle(1), verdict: Verdict::Accept, .. }, Action::Deliver(d)]
                if d.handle == MessageHandle(1) && d.version == BlockVersion::V4
        ));
        n.handle_input(
            NOW * 1000,
            gossip(2, "/optimism/901/3/blocks", data.clone()),
        );
        let actions = drain(&mut n);
        assert!(matches!(
            actions.as_slice(),
            [Action::Verdict {
                reason: Reason::Duplicate,
                ..
            }]
        ));
        assert_eq!(n.stats().verdicts(Reason::Accepted), 1);
        assert_eq!(n.stats().verdicts(Reason::Duplicate), 1);
    }

    #[test]
    fn other_chains_and_unknown_topics_are_rejected() {
        let mut n = node();
        let data = BlockBuilder::new(BlockVersion::V4, 1, NOW)
            .sign(&dev_key(0), 10)
            .unwrap();
        for (h, topic) in [
            (1, "/optimism/10/3/blocks"),
            (2, "/optimism/901/4/blocks"),
            (3, "blocks"),
        ] {
            n.handle_input(NOW * 1000, gossip(h, topic, data.clone()));
            let actions = drain(&mut n);
            assert!(matches!(
                actions.as_slice(),
                [Action::Verdict {
                    verdict: Verdict::Reject,
                    reason: Reason::UnknownTopic,
                    ..
                }]
            ));
        }
    }

    #[test]
    fn signer_changes_arm_a_timer_that_clears_the_old_signer() {
        let mut n = node();
        assert_eq!(n.poll_timeout(), None);
        let t0 = NOW * 1000;
        n.handle_input(t0, Input::SetUnsafeSigner(dev_key(1).address()));
        let deadline = n.poll_timeout().unwrap();
        assert_eq!(deadline, t0 + crate::signer::DEFAULT_ROTATION_GRACE_MS);
        n.handle_input(deadline, Input::Tick);
        assert_eq!(n.poll_timeout(), None);
        assert!(n.validator().signer().previous().is_none());
        // A clock that goes backwards does not revive it or move timers back.
        n.handle_input(t0, Input::Tick);
        assert_eq!(n.poll_timeout(), None);
    }
}
