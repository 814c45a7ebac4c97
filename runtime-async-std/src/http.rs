//! Serving the core's HTTP service ([`op_p2p_core::swarm::http`]: JSON-RPC, `/metrics`,
//! `/healthz`) on an async-std listener, with the same bounds and shutdown as the tokio crate's
//! `http::serve`.
//!
//! hyper 1 reads and writes through its own `hyper::rt::{Read, Write}` traits; [`FuturesIo`] is
//! the small adapter from the `futures::io` traits async-std's `TcpStream` implements, and
//! [`AsyncIoTimer`] gives hyper its timer (the header read timeout) on async-std's reactor.
//! We write these ~60 lines rather than take a crate: `hyper-util` only adapts tokio's IO
//! traits, and `smol-hyper` would add a dependency for the same two small impls. The adapter
//! is safe code: reads go through a stack buffer and `ReadBufCursor::put_slice`.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once (accepting waits for one to end);
//! request headers within [`HEADER_READ_TIMEOUT`]; bodies are limited by the service. On
//! shutdown the listener closes, open connections finish their current request (idle
//! keep-alive ones close at once), and whatever still runs after [`SHUTDOWN_GRACE`] is
//! cancelled.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_std::net::TcpListener;
use futures::stream::FuturesUnordered;
use futures::{AsyncRead, AsyncWrite, FutureExt, StreamExt};
use hyper::server::conn::http1;
use hyper_util::server::graceful::GracefulShutdown;
use op_p2p_core::swarm::http::{HttpState, service};

pub use op_p2p_tokio::http::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS, SHUTDOWN_GRACE};

/// Pause after a failed `accept`, so the loop does not spin (for example out of fds).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Largest chunk one `poll_read` moves into hyper's buffer.
const READ_CHUNK: usize = 8 * 1024;

/// A `futures::io` stream as hyper's IO.
#[derive(Debug)]
pub struct FuturesIo<T>(pub T);

impl<T: AsyncRead + Unpin> hyper::rt::Read for FuturesIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut chunk = [0u8; READ_CHUNK];
        let want = buf.remaining().min(READ_CHUNK);
        let Some(tmp) = chunk.get_mut(..want) else {
            return Poll::Ready(Ok(()));
        };
        match Pin::new(&mut self.0).poll_read(cx, tmp) {
            Poll::Ready(Ok(n)) => {
                if let Some(read) = tmp.get(..n) {
                    buf.put_slice(read);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for FuturesIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

/// hyper's timer on async-std's reactor (`async-io`, which `async_std::task::sleep` uses).
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncIoTimer;

struct AsyncIoSleep(async_io::Timer);

impl Future for AsyncIoSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl hyper::rt::Sleep for AsyncIoSleep {}

impl hyper::rt::Timer for AsyncIoTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(AsyncIoSleep(async_io::Timer::after(duration)))
    }
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(AsyncIoSleep(async_io::Timer::at(deadline)))
    }
}

/// Serves `state` on `listener` until `shutdown` completes, then shuts down gracefully (see
/// the module docs). Returns when every connection has ended or been cancelled.
pub async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    shutdown: impl Future<Output = ()>,
) {
    let svc = service(state);
    let mut builder = http1::Builder::new();
    builder
        .timer(AsyncIoTimer)
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    // At most MAX_CONNECTIONS running tasks; finished ones are reaped every loop.
    let mut tasks = FuturesUnordered::new();
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
            r = listener.accept().fuse() => r,
        };
        let (stream, remote) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "http accept failed");
                async_std::task::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let conn = graceful.watch(builder.serve_connection(FuturesIo(stream), svc.clone()));
        tasks.push(async_std::task::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%remote, error = %e, "http connection ended with an error");
            }
        }));
    }
    drop(listener);
    tracing::debug!(open = graceful.count(), "http server shutting down");
    if async_std::future::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("http connections still open after the grace period; cancelling them");
    }
    for task in tasks {
        task.cancel().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_std::future::timeout;
    use async_std::net::TcpStream;
    use futures::channel::oneshot;
    use futures::{AsyncReadExt, AsyncWriteExt};

    use serde_json::{Value, json};
    use std::net::SocketAddr;

    const BOUND: Duration = Duration::from_secs(20);
    const NOW: u64 = 1_750_000_000_000;

    async fn start() -> (
        SocketAddr,
        oneshot::Sender<()>,
        async_std::task::JoinHandle<()>,
    ) {
        let f = op_p2p_core::testkit::http_fixture(NOW);
        async_std::task::spawn(f.answer_admin);
        let state = f.state;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = async_std::task::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        (addr, stop, done)
    }

    async fn request(addr: SocketAddr, raw: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        timeout(BOUND, s.read_to_end(&mut out))
            .await
            .expect("response in time")
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_shared_service_answers_json_rpc_metrics_and_health_over_async_std() {
        async_std::task::block_on(async {
            let (addr, stop, done) = start().await;
            let body = r#"{"jsonrpc":"2.0","id":1,"method":"opp2p_peerStats","params":[]}"#;
            let r = request(
                addr,
                &format!(
                    "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
            )
            .await;
            assert!(r.starts_with("HTTP/1.1 200"), "{r}");
            let json = r.split("\r\n\r\n").nth(1).unwrap();
            let v: Value = serde_json::from_str(json).unwrap();
            assert_eq!(v["result"]["connected"], json!(0));

            let r = request(
                addr,
                "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .await;
            assert!(r.contains("\nop_p2p_p2p_peer_count 0\n"), "{r}");
            let r = request(
                addr,
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .await;
            assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("ok"), "{r}");

            // An idle keep-alive connection is closed by shutdown, and the listener is gone.
            let mut idle = TcpStream::connect(addr).await.unwrap();
            idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !got.ends_with(b"\r\n\r\nok") {
                let n = timeout(BOUND, idle.read(&mut buf)).await.unwrap().unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            let _ = stop.send(());
            timeout(BOUND, done).await.expect("serve returns");
            let n = timeout(BOUND, idle.read(&mut buf))
                .await
                .unwrap()
                .unwrap_or(0);
            assert_eq!(n, 0);
            assert!(TcpStream::connect(addr).await.is_err());
        });
    }
}
