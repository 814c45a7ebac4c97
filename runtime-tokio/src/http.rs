//! Serving the core's HTTP service ([`op_p2p_core::swarm::http`]: JSON-RPC, `/metrics`,
//! `/healthz`) on a tokio listener: one task per connection, HTTP/1.1 only.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once (accepting waits for a free slot);
//! a client must send its request headers within [`HEADER_READ_TIMEOUT`]; request bodies are
//! limited by the service itself. On shutdown the listener closes, open connections finish
//! their current request (idle keep-alive ones close at once), and whatever is still running
//! after [`SHUTDOWN_GRACE`] is aborted.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use op_p2p_core::swarm::http::{HttpState, service};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Time a client has to send a request's headers before the connection is closed
/// (slowloris guard).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 256;

/// How long shutdown waits for open connections before aborting them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (for example out of file descriptors), so the loop does not
/// spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `state` on `listener` until `shutdown` completes, then shuts down gracefully (see
/// the module docs). Returns when every connection has ended or been aborted.
pub async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    shutdown: impl Future<Output = ()>,
) {
    let svc = service(state);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Bounded by MAX_CONNECTIONS running tasks; finished ones are reaped every loop.
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // never closed
            },
        };
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc.clone()));
        tasks.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%remote, error = %e, "http connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::debug!(open = graceful.count(), "http server shutting down");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("http connections still open after the grace period; aborting them");
    }
    // Dropping the set aborts whatever is left.
    tasks.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    use op_p2p_core::testkit::peer_id;
    use serde_json::{Value, json};
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;
    use tokio::time::timeout;

    /// Every network step of these tests finishes in milliseconds on loopback; this only
    /// turns a hang into a failure.
    const BOUND: Duration = Duration::from_secs(20);
    const NOW: u64 = 1_750_000_000_000;

    struct Server {
        addr: SocketAddr,
        stop: oneshot::Sender<()>,
        done: tokio::task::JoinHandle<()>,
    }

    async fn start() -> Server {
        let f = op_p2p_core::testkit::http_fixture(NOW);
        tokio::spawn(f.answer_admin);
        let state = f.state;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Server { addr, stop, done }
    }

    /// Parsed `HTTP/1.1` response: status code, lower-cased headers, body.
    struct Resp {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Resp {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    fn parse(raw: &[u8]) -> Resp {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = std::str::from_utf8(&raw[..split]).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let status = status_line[9..12].parse().unwrap();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        Resp {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    /// Sends one request with `Connection: close` and reads the whole response.
    async fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Resp {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some(b) = body {
            req += &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            );
        } else {
            req += "\r\n";
        }
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        timeout(BOUND, s.read_to_end(&mut raw))
            .await
            .expect("response in time")
            .unwrap();
        parse(&raw)
    }

    #[tokio::test]
    async fn json_rpc_metrics_and_health_over_a_real_socket() {
        let srv = start().await;
        let r = request(
            srv.addr,
            "POST",
            "/",
            Some(r#"{"jsonrpc":"2.0","id":1,"method":"opp2p_peerStats","params":[]}"#),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["id"], json!(1));
        assert_eq!(v["result"]["connected"], json!(0));

        let p = peer_id(4).to_base58();
        let body = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "opp2p_blockPeer", "params": [p]},
            {"jsonrpc": "2.0", "id": 2, "method": "opp2p_listBlockedPeers"},
        ])
        .to_string();
        let r = request(srv.addr, "POST", "/", Some(&body)).await;
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v,
            json!([{"jsonrpc": "2.0", "id": 1, "result": null},
                   {"jsonrpc": "2.0", "id": 2, "result": [p]}])
        );

        let r = request(srv.addr, "GET", "/metrics", None).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type"),
            Some(op_p2p_core::swarm::http::METRICS_CONTENT_TYPE)
        );
        let text = String::from_utf8(r.body).unwrap();
        assert!(text.contains("\nop_p2p_p2p_peer_count 0\n"), "{text}");
        assert!(text.ends_with("# EOF\n"));

        let r = request(srv.addr, "GET", "/healthz", None).await;
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        assert_eq!(request(srv.addr, "GET", "/x", None).await.status, 404);
        assert_eq!(request(srv.addr, "PUT", "/", Some("{}")).await.status, 405);

        let _ = srv.stop.send(());
        timeout(BOUND, srv.done).await.expect("stops").unwrap();
    }

    #[tokio::test]
    async fn an_oversized_declared_body_is_refused_without_reading_it() {
        let srv = start().await;
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        // Only the headers are sent: the 413 must come without the 2 MiB body.
        s.write_all(
            b"POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
              Content-Type: application/json\r\nContent-Length: 2097152\r\n\r\n",
        )
        .await
        .unwrap();
        let mut raw = Vec::new();
        timeout(BOUND, s.read_to_end(&mut raw))
            .await
            .expect("answered before the body")
            .unwrap();
        assert_eq!(parse(&raw).status, 413);
        let _ = srv.stop.send(());
        timeout(BOUND, srv.done).await.expect("stops").unwrap();
    }

    #[tokio::test]
    async fn shutdown_closes_idle_keep_alive_connections_and_the_listener() {
        let srv = start().await;
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        // A keep-alive request: the connection stays open after the response.
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.ends_with(b"\r\n\r\nok") {
            let n = timeout(BOUND, s.read(&mut buf))
                .await
                .expect("response")
                .unwrap();
            assert!(n > 0, "closed before the response");
            got.extend_from_slice(&buf[..n]);
        }
        let _ = srv.stop.send(());
        timeout(BOUND, srv.done)
            .await
            .expect("serve returns")
            .unwrap();
        // The idle connection was closed by the server.
        let n = timeout(BOUND, s.read(&mut buf))
            .await
            .expect("closed")
            .unwrap_or(0);
        assert_eq!(n, 0);
        // And nothing listens any more.
        assert!(TcpStream::connect(srv.addr).await.is_err());
    }
}
