//! The HTTP accept loop, written once over [`Runtime`]: one hyper HTTP/1.1 connection task per
//! accepted socket, serving [`super::service`].
//!
//! Bounds, so that slow or many clients cannot hold the listener:
//! - at most [`MAX_CONNECTIONS`] connections at once (accepting waits for one to end), and at
//!   most [`MAX_CONNECTIONS_PER_IP`] from one IP (more are closed at once);
//! - a client must send its request headers within [`HEADER_READ_TIMEOUT`] and its body within
//!   [`BODY_READ_TIMEOUT`] (else `408`); the body's size is limited by the service;
//! - a whole request, admin call included, is answered within [`REQUEST_DEADLINE`] (else
//!   `503`; `opp2p_connectPeer` itself gives up after 30 s).
//!
//! On shutdown the listener closes, open connections finish their current request (idle
//! keep-alive ones close at once), and whatever is still running after [`SHUTDOWN_GRACE`] is
//! dropped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, Either, RemoteHandle};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::server::graceful::GracefulShutdown;

use super::{HttpState, handle};
use crate::runtime::Runtime;

/// Time a client has to send a request's headers before the connection is closed
/// (slowloris guard).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 256;

/// Most connections served at once from one IP address.
pub const MAX_CONNECTIONS_PER_IP: usize = 32;

/// Time a client has to send a request's whole body once its headers are in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a whole request may take, reading and answering. Above `opp2p_connectPeer`'s own 30 s.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(40);

/// How long shutdown waits for open connections before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (for example out of file descriptors), so the loop does not
/// spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The accept loop's bounds. [`ServeLimits::default`] is what every node serves with (the
/// constants of this module); tests shorten the timeouts to exercise them on real sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeLimits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`BODY_READ_TIMEOUT`].
    pub body_read_timeout: Duration,
    /// See [`REQUEST_DEADLINE`]; it starts once a request's headers are in.
    pub request_deadline: Duration,
    /// See [`MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`MAX_CONNECTIONS_PER_IP`].
    pub max_connections_per_ip: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
            request_deadline: REQUEST_DEADLINE,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_ip: MAX_CONNECTIONS_PER_IP,
        }
    }
}

impl ServeLimits {
    /// These limits with a whole-request deadline of `deadline`.
    pub fn with_request_deadline(mut self, deadline: Duration) -> Self {
        self.request_deadline = deadline;
        self
    }
}

/// Serves `state` on `listener` until `shutdown` completes, then shuts down gracefully (see
/// the module docs). Returns when every connection has ended or been dropped.
pub async fn serve<R: Runtime>(
    runtime: R,
    listener: R::HttpListener,
    state: Arc<HttpState>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with_limits(runtime, listener, state, ServeLimits::default(), shutdown).await
}

/// [`serve`] with other bounds than the defaults.
pub async fn serve_with_limits<R: Runtime>(
    runtime: R,
    listener: R::HttpListener,
    state: Arc<HttpState>,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let svc = {
        let rt = runtime.clone();
        service_fn(move |req: Request<Incoming>| {
            let (parts, body) = req.into_parts();
            let body = TimedBody {
                inner: body,
                deadline: rt.sleep(limits.body_read_timeout).fuse(),
            };
            let answer = handle(state.clone(), Request::from_parts(parts, body));
            let deadline = rt.sleep(limits.request_deadline);
            async move {
                match futures::future::select(Box::pin(answer), deadline).await {
                    Either::Left((answer, _)) => answer,
                    Either::Right(_) => Ok::<_, Infallible>(super::plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "request took too long",
                    )),
                }
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(runtime.http_timer())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    // Each connection runs as its own task; dropping its handle cancels it. At most
    // MAX_CONNECTIONS are held; finished ones are reaped every loop and give back their IP.
    let mut tasks: FuturesUnordered<RemoteHandle<IpAddr>> = FuturesUnordered::new();
    let mut per_ip: HashMap<IpAddr, usize> = HashMap::new();
    let mut shutdown = std::pin::pin!(shutdown.fuse());
    loop {
        reap(&mut tasks, &mut per_ip);
        if tasks.len() >= limits.max_connections {
            futures::select! {
                _ = shutdown => break,
                ip = tasks.next() => {
                    if let Some(ip) = ip {
                        release(&mut per_ip, ip);
                    }
                    continue;
                }
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
        // Connections may have ended while we waited for this one: count them out before the
        // per-IP check, or an IP whose connections all ended is refused once more.
        reap(&mut tasks, &mut per_ip);
        let from_ip = per_ip.entry(remote.ip()).or_default();
        if *from_ip >= limits.max_connections_per_ip {
            tracing::debug!(%remote, "http connection refused: too many from this IP");
            drop(stream);
            continue;
        }
        *from_ip += 1;
        let conn = graceful.watch(builder.serve_connection(stream, svc.clone()));
        let (task, handle) = async move {
            if let Err(e) = conn.await {
                tracing::debug!(%remote, error = %e, "http connection ended with an error");
            }
            remote.ip()
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

/// Counts out the connections that have ended.
fn reap(tasks: &mut FuturesUnordered<RemoteHandle<IpAddr>>, per_ip: &mut HashMap<IpAddr, usize>) {
    while let Some(Some(ip)) = tasks.next().now_or_never() {
        release(per_ip, ip);
    }
}

fn release(per_ip: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = per_ip.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            per_ip.remove(&ip);
        }
    }
}

/// A request body that fails with [`BodyTimedOut`] once its deadline passes.
struct TimedBody<B> {
    inner: B,
    deadline: futures::future::Fuse<BoxFuture<'static, ()>>,
}

/// The client did not send its body within its deadline ([`BODY_READ_TIMEOUT`] by default).
#[derive(Debug, thiserror::Error)]
#[error("request body not received in time")]
pub struct BodyTimedOut;

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match self.deadline.poll_unpin(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
