//! The HTTP accept loop, written once over [`Runtime`]: one hyper HTTP/1.1 connection task per
//! accepted socket, serving [`super::service`].
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once (accepting waits for one to end);
//! a client must send its request headers within [`HEADER_READ_TIMEOUT`]; request bodies are
//! limited by the service itself. On shutdown the listener closes, open connections finish
//! their current request (idle keep-alive ones close at once), and whatever is still running
//! after [`SHUTDOWN_GRACE`] is dropped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::RemoteHandle;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use hyper::server::conn::http1;
use hyper_util::server::graceful::GracefulShutdown;

use super::{HttpState, service};
use crate::runtime::Runtime;

/// Time a client has to send a request's headers before the connection is closed
/// (slowloris guard).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 256;

/// How long shutdown waits for open connections before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (for example out of file descriptors), so the loop does not
/// spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `state` on `listener` until `shutdown` completes, then shuts down gracefully (see
/// the module docs). Returns when every connection has ended or been dropped.
pub async fn serve<R: Runtime>(
    runtime: R,
    listener: R::HttpListener,
    state: Arc<HttpState>,
    shutdown: impl Future<Output = ()>,
) {
    let svc = service(state);
    let mut builder = http1::Builder::new();
    builder
        .timer(runtime.http_timer())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    // Each connection runs as its own task; dropping its handle cancels it. At most
    // MAX_CONNECTIONS are held; finished ones are reaped every loop.
    let mut tasks: FuturesUnordered<RemoteHandle<()>> = FuturesUnordered::new();
    let mut shutdown = std::pin::pin!(shutdown.fuse());
    loop {
        while let Some(Some(())) = tasks.next().now_or_never() {}
        if tasks.len() >= MAX_CONNECTIONS {
            futures::select! {
                _ = shutdown => break,
                _ = tasks.next() => continue,
            }
        }
        let accepted = futures::select! {
            _ = shutdown => break,
            r = runtime.accept_http(&listener).fuse() => r,
        };
        let (stream, remote) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "http accept failed");
                runtime.sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let conn = graceful.watch(builder.serve_connection(stream, svc.clone()));
        let (task, handle) = async move {
            if let Err(e) = conn.await {
                tracing::debug!(%remote, error = %e, "http connection ended with an error");
            }
        }
        .remote_handle();
        runtime.spawn(task.boxed());
        tasks.push(handle);
    }
    drop(listener);
    tracing::debug!(open = graceful.count(), "http server shutting down");
    let grace = runtime.sleep(SHUTDOWN_GRACE).fuse();
    futures::select! {
        _ = graceful.shutdown().fuse() => {}
        _ = grace.fuse() => {
            tracing::warn!("http connections still open after the grace period; dropping them");
        }
    }
    // Dropping the handles cancels whatever is left.
    drop(tasks);
}
