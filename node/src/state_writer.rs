//! Writes the node's state to the data dir off the event loop. The driver hands over a
//! snapshot ([`StateWriter::submit`], never blocking); a writer task saves it on the runtime's
//! blocking pool with the data dir's atomic temp + fsync + rename. Snapshots that arrive while
//! a write runs replace each other: only the newest is written next. The driver submits at
//! most once per [`crate::driver::PERSIST_INTERVAL_MS`] and once at shutdown.

use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use futures::future::RemoteHandle;
use futures::{FutureExt, StreamExt};
use op_p2p_core::NodeState;

use crate::datadir::DataDir;
use crate::runtime::{Runtime, blocking};

/// The driver's end of the writer task.
pub(crate) struct StateWriter {
    slot: Arc<Mutex<Option<NodeState>>>,
    bell: mpsc::Sender<()>,
    done: RemoteHandle<()>,
}

impl StateWriter {
    /// Starts the writer task for `dir` on `runtime`.
    pub(crate) fn start<R: Runtime>(runtime: &R, dir: DataDir) -> Self {
        let slot: Arc<Mutex<Option<NodeState>>> = Arc::default();
        let (bell, mut rung) = mpsc::channel::<()>(1);
        let dir = Arc::new(dir);
        let rt = runtime.clone();
        let pending = slot.clone();
        let (task, done) = async move {
            loop {
                let more = rung.next().await.is_some();
                let next = pending.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(state) = next {
                    let dir = dir.clone();
                    match blocking(&rt, move || dir.save_state(&state)).await {
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

    /// Queues `state` to be written; replaces a snapshot not yet written. Never blocks.
    pub(crate) fn submit(&mut self, state: NodeState) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(state);
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
