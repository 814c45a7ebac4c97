//! Test support (feature `test-util`) for this workspace's tests: the node's admin task and
//! HTTP service over a bare core [`Node`], without a network. Not for embedders.

use std::sync::Arc;

use futures::FutureExt;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use op_p2p_core::admin::AdminRequest;
use op_p2p_core::testkit::{dev_key, peer_id};
use op_p2p_core::{Config, Node, UnixMillis};

use crate::http::HttpState;
use crate::metrics::Metrics;
use crate::{AdminClient, AdminReply};

/// Test support (feature `test-util`): the node's task as the driver runs it, minus the
/// network. Each admin call becomes an [`op_p2p_core::Input::Admin`] at `now`; its
/// [`op_p2p_core::Action::AdminResponse`] is the reply. Ends when every [`AdminClient`] is dropped.
pub async fn answer_admin_calls(
    mut node: Node,
    now: UnixMillis,
    mut rx: mpsc::Receiver<(AdminRequest, AdminReply)>,
) {
    use futures::StreamExt;
    let mut next = 0;
    while let Some((request, reply)) = rx.next().await {
        next += 1;
        let id = op_p2p_core::RequestId(next);
        node.handle_input(now, op_p2p_core::Input::Admin { id, request });
        let mut answer = None;
        while let Some(a) = node.poll_action() {
            if let op_p2p_core::Action::AdminResponse { id: got, result } = a
                && got == id
            {
                answer = Some(result);
            }
        }
        if let Some(result) = answer {
            let _ = reply.send(result);
        }
    }
}

/// What an HTTP service test needs: the service's state over a fresh node (chain 901, signer
/// `dev_key(0)`), its metrics handle, and the task answering admin calls, which the caller
/// spawns on its runtime.
pub struct HttpFixture {
    /// The state to serve.
    pub state: Arc<HttpState>,
    /// The metrics registered in `state.registry`, already observed once.
    pub metrics: Metrics,
    /// Answers the admin calls `state.admin` submits, as of `now`; spawn it.
    pub answer_admin: BoxFuture<'static, ()>,
}

/// Builds an [`HttpFixture`] whose node answers as of `now` (Unix ms).
pub fn http_fixture(now: UnixMillis) -> HttpFixture {
    let node = Node::new(Config::new(
        901,
        dev_key(0).address(),
        op_p2p_core::fork::ForkSchedule::ALL_AT_GENESIS,
        2,
        peer_id(0),
    ));
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::new(&mut registry);
    metrics.observe(&node);
    let (admin, rx) = AdminClient::channel();
    HttpFixture {
        state: Arc::new(HttpState::rpc(
            admin,
            Arc::new(registry),
            crate::http::VirtualHosts::default(),
        )),
        metrics,
        answer_admin: answer_admin_calls(node, now, rx).boxed(),
    }
}
