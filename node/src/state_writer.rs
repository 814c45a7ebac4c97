//! Writes the node's state to the data dir off the event loop. The driver hands over the due
//! parts ([`StateWriter::submit`], never blocking); a writer task saves them on the runtime's
//! blocking pool with the data dir's atomic temp + fsync + rename. Updates that arrive while a
//! write runs merge, the newer part winning: a part due earlier is never dropped.
//!
//! When parts are due is [`PersistSchedule`]'s rule, from the core's
//! [`StateChanges`](op_p2p_core::StateChanges): bans and the operator's peer-book changes at
//! most once per [`PERSIST_INTERVAL_MS`] (1 s), what discovery learned (`discovery.json`, and
//! `peers.json` for the records it added) at most once per [`LEARNED_PERSIST_INTERVAL_MS`]
//! (5 min), and everything at shutdown.

use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use futures::future::RemoteHandle;
use futures::{FutureExt, StreamExt};
use op_p2p_core::{StateChanges, StateUpdate, UnixMillis};

use crate::datadir::DataDir;
use crate::runtime::{Runtime, blocking};

use crate::driver::PERSIST_INTERVAL_MS;

/// What discovery learned is written at most this often (and at shutdown): 5 minutes. Any
/// discv5 node can hand us new records at will; writing them within a second made every
/// injected record cost a serialisation, a hash and an fsync of the table (up to 2,048
/// records) and the peer book. Losing up to 5 minutes of discovered records in a crash costs
/// only a slower start: the table refills from the bootnodes.
pub const LEARNED_PERSIST_INTERVAL_MS: u64 = 5 * 60 * 1000;

/// When each part of the state is due: the driver notes every
/// [`StateChanges`] the core reports and asks what is due after each turn of its loop. Pure
/// (time is passed in), so the rule is tested in virtual time.
#[derive(Debug, Default)]
pub(crate) struct PersistSchedule {
    pending: StateChanges,
    last_prompt: Option<UnixMillis>,
    last_learned: Option<UnixMillis>,
}

impl PersistSchedule {
    /// Records changes reported by the core.
    pub(crate) fn note(&mut self, changes: StateChanges) {
        self.pending |= changes;
    }

    /// The parts due at `now` (possibly none), taken out of the pending changes: `gater` and
    /// `peers` once [`PERSIST_INTERVAL_MS`] has passed since the last prompt write, `learned`
    /// once [`LEARNED_PERSIST_INTERVAL_MS`] has passed since the last write of it. The first
    /// change of each kind is due at once.
    pub(crate) fn due(&mut self, now: UnixMillis) -> StateChanges {
        let since = |last: Option<UnixMillis>| last.map_or(u64::MAX, |t| now.saturating_sub(t));
        let mut due = StateChanges::default();
        if (self.pending.gater || self.pending.peers)
            && since(self.last_prompt) >= PERSIST_INTERVAL_MS
        {
            due.gater = std::mem::take(&mut self.pending.gater);
            due.peers = std::mem::take(&mut self.pending.peers);
            self.last_prompt = Some(now);
        }
        if self.pending.learned && since(self.last_learned) >= LEARNED_PERSIST_INTERVAL_MS {
            due.learned = std::mem::take(&mut self.pending.learned);
            self.last_learned = Some(now);
        }
        due
    }

    /// Everything, whatever is pending: the write at shutdown.
    pub(crate) fn all(&mut self) -> StateChanges {
        self.pending = StateChanges::default();
        StateChanges::ALL
    }
}

/// The driver's end of the writer task.
pub(crate) struct StateWriter {
    slot: Arc<Mutex<Option<StateUpdate>>>,
    bell: mpsc::Sender<()>,
    done: RemoteHandle<()>,
}

impl StateWriter {
    /// Starts the writer task for `dir` on `runtime`.
    pub(crate) fn start<R: Runtime>(runtime: &R, dir: DataDir) -> Self {
        let slot: Arc<Mutex<Option<StateUpdate>>> = Arc::default();
        let (bell, mut rung) = mpsc::channel::<()>(1);
        let dir = Arc::new(dir);
        let rt = runtime.clone();
        let pending = slot.clone();
        let (task, done) = async move {
            loop {
                let more = rung.next().await.is_some();
                let next = pending.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(update) = next {
                    let dir = dir.clone();
                    match blocking(&rt, move || dir.save_update(&update)).await {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => tracing::error!(error = %e, "cannot write state"),
                        None => tracing::error!("state writer panicked"),
                    }
                }
                if !more {
                    break;
                }
            }
            // Release the data dir (and its lock) before reporting the writer finished, so a
            // node restarted on the same directory right after shutdown can open it.
            drop(dir);
        }
        .remote_handle();
        runtime.spawn(task.boxed());
        Self { slot, bell, done }
    }

    /// Queues `update` to be written, merged into an update not yet written (its parts win).
    /// Never blocks.
    pub(crate) fn submit(&mut self, update: StateUpdate) {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_mut() {
            Some(queued) => queued.merge(update),
            None => *slot = Some(update),
        }
        drop(slot);
        // Full means a wake-up is already pending, which will find this snapshot.
        let _ = self.bell.try_send(());
    }

    /// Writes whatever is pending and waits until the writer has finished.
    pub(crate) async fn finish(self) {
        let Self { bell, done, .. } = self;
        drop(bell);
        done.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datadir::DataDir;
    use op_p2p_core::admin::AdminRequest;
    use op_p2p_core::fork::ForkSchedule;
    use op_p2p_core::testkit::{dev_key, enr, peer_id};
    use op_p2p_core::{Action, Config, Input, Node, RequestId};
    use std::net::{IpAddr, Ipv4Addr};

    const CHAIN: u64 = 901;
    const T0: UnixMillis = 1_750_000_000_000;

    /// Feeds `input` at `now`, notes every change the core reports, and writes what is due
    /// the way the driver does; returns the parts written.
    fn step(
        node: &mut Node,
        schedule: &mut PersistSchedule,
        dir: &DataDir,
        now: UnixMillis,
        input: Input,
    ) -> StateChanges {
        node.handle_input(now, input);
        while let Some(action) = node.poll_action() {
            if let Action::PersistState(changes) = action {
                schedule.note(changes);
            }
        }
        let due = schedule.due(now);
        if !due.is_empty() {
            dir.save_update(&node.export_parts(due)).unwrap();
        }
        due
    }

    /// The attack: a discv5 node hands us a fresh record every 100 ms for 10 minutes (6,000
    /// records, each new to the table). Before, every record made the whole state due within
    /// a second: 600 writes of the discovery table and the peer book. Now what discovery
    /// learned is written at most every 5 minutes, while a ban set in the middle of the flood
    /// is written at once.
    #[test]
    fn a_record_flood_is_written_every_5_minutes_while_a_ban_is_written_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let mut node = Node::new(Config::new(
            CHAIN,
            dev_key(0).address(),
            ForkSchedule::ALL_AT_GENESIS,
            2,
            peer_id(0),
        ));
        let mut schedule = PersistSchedule::default();
        let mut learned_writes = Vec::new();
        let mut ban_written_at = None;
        let block_at = T0 + 200_037;
        let mut blocked = false;
        for i in 0..6_000u64 {
            let now = T0 + i * 100;
            // Every record from its own /24, so no quota refuses any of them.
            let ip = IpAddr::V4(Ipv4Addr::new(11, (i >> 8) as u8, i as u8, 1));
            let record = Box::new(enr(1_000 + i, CHAIN, ip, 9222));
            let due = step(
                &mut node,
                &mut schedule,
                &dir,
                now,
                Input::Discovered(record),
            );
            if due.learned {
                learned_writes.push(now - T0);
            }
            if due.gater && ban_written_at.is_none() {
                ban_written_at = Some(now);
            }
            if !blocked && now >= block_at {
                blocked = true;
                let block = Input::Admin {
                    id: RequestId(1),
                    request: AdminRequest::BlockPeer(peer_id(99)),
                };
                let due = step(&mut node, &mut schedule, &dir, now, block);
                assert!(due.gater, "the block is written by the input that made it");
                ban_written_at = Some(now);
            }
        }
        assert_eq!(
            learned_writes,
            vec![0, LEARNED_PERSIST_INTERVAL_MS],
            "discovery written at the first record, then every 5 minutes"
        );
        let written = ban_written_at.expect("the ban was written");
        assert!(written - block_at <= PERSIST_INTERVAL_MS);
        let on_disk = dir.load_state().unwrap().unwrap();
        assert_eq!(on_disk.gater.blocked_peers, vec![peer_id(99)]);
        // What was learned since the last write waits for the next one, or shutdown.
        assert!(!on_disk.discovery.is_empty());
        assert_ne!(on_disk.discovery, node.export_state().discovery);
        dir.save_update(&node.export_parts(schedule.all())).unwrap();
        assert_eq!(
            dir.load_state().unwrap().unwrap().discovery,
            node.export_state().discovery
        );
    }

    /// The rule alone: prompt parts once a second, learned ones every 5 minutes, each on its
    /// own clock; nothing pending is nothing due; shutdown takes everything.
    #[test]
    fn each_kind_of_change_is_due_on_its_own_interval() {
        let learned = StateChanges {
            learned: true,
            ..StateChanges::default()
        };
        let ban = StateChanges {
            gater: true,
            ..StateChanges::default()
        };
        let mut s = PersistSchedule::default();
        assert!(s.due(T0).is_empty());
        s.note(learned);
        assert_eq!(s.due(T0), learned, "the first change is due at once");
        s.note(learned);
        s.note(ban);
        assert_eq!(
            s.due(T0 + 1),
            ban,
            "a ban does not wait for discovery's interval"
        );
        s.note(ban);
        assert!(s.due(T0 + 999).is_empty());
        assert_eq!(s.due(T0 + 1_001), ban);
        assert!(s.due(T0 + LEARNED_PERSIST_INTERVAL_MS - 1).is_empty());
        assert_eq!(s.due(T0 + LEARNED_PERSIST_INTERVAL_MS), learned);
        assert!(s.due(T0 + 2 * LEARNED_PERSIST_INTERVAL_MS).is_empty());
        s.note(learned);
        assert_eq!(s.all(), StateChanges::ALL);
        assert!(s.due(T0 + 3 * LEARNED_PERSIST_INTERVAL_MS).is_empty());
    }
}
