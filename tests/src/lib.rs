//! The fixture library of op-p2p's real-socket and multi-node tests (`tests/tests/` and the
//! binary's tests in `app/tests/`): node configs, running a body on either runtime, the node
//! operations tests repeat (connect, publish, wait for blocks), a raw HTTP/1.1 and JSON-RPC
//! client, the HTTP service fixture on a real listener, process probes from `/proc`, the
//! `op-p2p` binary as a child process, attackers under fresh libp2p identities, and the JS
//! interop peers. Everything is on loopback, and every wait here has a deadline.
//!
//! Timers and client sockets are async-std's (`async-io`), which run under any executor, so
//! the helpers work the same inside a tokio and an async-std test body. [`JsPeer`],
//! [`NodeProcess`] and [`churn`] need tokio (child processes, reader tasks, tokio swarms).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::future::{BoxFuture, RemoteHandle};
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use op_p2p_core::admin::{AdminRequest, AdminResponse};
use op_p2p_core::discovery::Bootnode;
use op_p2p_core::fork::ForkSchedule;
use op_p2p_core::peers::netpolicy::LOOPBACK_NETS;
use op_p2p_core::testkit::{BlockBuilder, dev_key, keypair};
use op_p2p_core::{
    BlockVersion, Config, DeliveredBlock, MessageId, PublishRequest, SplitMix64, UnixMillis,
};
use op_p2p_node::http::ServeLimits;
use op_p2p_node::{NodeConfig, NodeHandle, Runtime, SpawnError, SpawnOptions};
use serde_json::{Value, json};

/// The dev chain every test node is on.
pub const CHAIN: u64 = 901;
/// Default bound of one test body: every test finishes in seconds on loopback; this only
/// turns a hang into a failure.
pub const BOUND: Duration = Duration::from_secs(45);
/// How long [`eventually`] polls before it fails.
pub const EVENTUALLY: Duration = Duration::from_secs(30);
/// Pause between two polls of a deadline loop.
pub const POLL: Duration = Duration::from_millis(20);
/// Bound of one HTTP exchange of the test client.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest HTTP response the test client reads.
pub const MAX_RESPONSE: u64 = 4 * 1024 * 1024;
/// How long [`publish_when_ready`] retries while gossipsub has no peer on the topic.
pub const PUBLISH_WAIT: Duration = Duration::from_secs(15);
/// How long [`shutdown`] may take.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(20);

// ---- paths and time ----------------------------------------------------------------------

/// The repository root, for tests that read committed fixtures.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Wall-clock Unix seconds (the nodes' clock), for block timestamps inside the 60 s
/// validity window.
pub fn now_secs() -> u64 {
    op_p2p_node::system_now_ms() / 1000
}

/// Sleeps on any executor (async-io's timer).
pub async fn sleep(d: Duration) {
    async_std::task::sleep(d).await;
}

/// Awaits `f`, failing the test with `what` if it takes longer than `limit`.
pub async fn within<F: Future>(limit: Duration, what: &str, f: F) -> F::Output {
    match async_std::future::timeout(limit, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: not done within {limit:?}"),
    }
}

/// Polls `f` every [`POLL`] until it returns `Some`; fails the test after [`EVENTUALLY`].
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {EVENTUALLY:?}"
        );
        sleep(POLL).await;
    }
}

/// Waits until `cond` holds, checking every [`POLL`]; fails the test after [`EVENTUALLY`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    eventually(what, || std::future::ready(cond().then_some(()))).await;
}

/// Serialises the tests of one test binary that measure the whole process (RSS, descriptors,
/// threads): hold the guard for the whole test. A test that failed holding it does not poison
/// the others.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

// ---- either runtime ----------------------------------------------------------------------

/// The runtime a node, an HTTP server or a whole test body runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    /// `op-p2p-tokio` on a two-worker multi-thread runtime.
    Tokio,
    /// `op-p2p-async-std`.
    AsyncStd,
}

impl Rt {
    /// Runs `body` to completion on this runtime, bounded by [`BOUND`].
    pub fn block_on<F: Future<Output = ()> + Send + 'static>(self, body: F) {
        self.block_on_within(BOUND, body);
    }

    /// Runs `body` to completion on this runtime, failing after `limit`.
    pub fn block_on_within<F: Future<Output = ()> + Send + 'static>(
        self,
        limit: Duration,
        body: F,
    ) {
        // Boxed: node futures are large in debug builds, and a test thread's stack is small.
        let bounded = Box::pin(async move { within(limit, "test body", Box::pin(body)).await });
        match self {
            Rt::Tokio => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(bounded),
            Rt::AsyncStd => async_std::task::block_on(bounded),
        }
    }

    /// Starts a node on this runtime. A tokio node needs the caller to be inside a tokio
    /// runtime; an async-std node is started on async-std's executor whatever the caller's.
    pub async fn try_spawn(
        self,
        config: NodeConfig,
        options: SpawnOptions,
    ) -> Result<NodeHandle, SpawnError> {
        match self {
            Rt::Tokio => op_p2p_tokio::spawn(config, options).await,
            Rt::AsyncStd => async_std::task::spawn(op_p2p_async_std::spawn(config, options)).await,
        }
    }

    /// Starts a node on this runtime (see [`Rt::try_spawn`]); fails the test if it cannot.
    pub async fn spawn(self, config: NodeConfig) -> NodeHandle {
        self.spawn_with(config, SpawnOptions::default()).await
    }

    /// [`Rt::spawn`] with options (operator events).
    pub async fn spawn_with(self, config: NodeConfig, options: SpawnOptions) -> NodeHandle {
        self.try_spawn(config, options).await.expect("node starts")
    }

    /// [`serve_fixture`] on this runtime.
    pub async fn serve_fixture(self, now: UnixMillis) -> HttpServer {
        self.serve_fixture_with(now, ServeLimits::default(), true)
            .await
    }

    /// [`serve_fixture_with`] on this runtime.
    pub async fn serve_fixture_with(
        self,
        now: UnixMillis,
        limits: ServeLimits,
        answer_admin: bool,
    ) -> HttpServer {
        match self {
            Rt::Tokio => {
                serve_fixture_with(op_p2p_tokio::TokioRuntime, now, limits, answer_admin).await
            }
            Rt::AsyncStd => {
                serve_fixture_with(op_p2p_async_std::AsyncStdRuntime, now, limits, answer_admin)
                    .await
            }
        }
    }
}

/// Instantiates `async fn body(rt: Rt)` test bodies as `#[test]`s on both runtimes:
/// `tokio_runtime::body` and `async_std_runtime::body`, each bounded by [`BOUND`]. Prefixed
/// with `one_at_a_time:`, each test holds [`one_at_a_time`] while it runs.
#[macro_export]
macro_rules! on_both_runtimes {
    (one_at_a_time: $($body:ident),* $(,)?) => {
        mod tokio_runtime {
            $( #[test] fn $body() {
                let _serial = $crate::one_at_a_time();
                $crate::Rt::Tokio.block_on(super::$body($crate::Rt::Tokio));
            } )*
        }
        mod async_std_runtime {
            $( #[test] fn $body() {
                let _serial = $crate::one_at_a_time();
                $crate::Rt::AsyncStd.block_on(super::$body($crate::Rt::AsyncStd));
            } )*
        }
    };
    ($($body:ident),* $(,)?) => {
        mod tokio_runtime {
            $( #[test] fn $body() {
                $crate::Rt::Tokio.block_on(super::$body($crate::Rt::Tokio));
            } )*
        }
        mod async_std_runtime {
            $( #[test] fn $body() {
                $crate::Rt::AsyncStd.block_on(super::$body($crate::Rt::AsyncStd));
            } )*
        }
    };
}

// ---- node configs ------------------------------------------------------------------------

/// Node `i` of the dev chain: chain 901, accepts blocks signed by `dev_key(0)`, identity
/// `keypair(i)`, RNG seed `i`, 127.0.0.1 with ephemeral ports, no discovery, RPC or data dir
/// ([`NodeConfig::local`]). Not a sequencer.
pub fn dev_config(i: u64) -> NodeConfig {
    let kp = keypair(i);
    let mut core = Config::new(
        CHAIN,
        dev_key(0).address(),
        ForkSchedule::ALL_AT_GENESIS,
        2,
        kp.public().to_peer_id(),
    );
    core.rng_seed = i;
    let mut c = NodeConfig::local(core, kp);
    // Every fixture node and attacker shares 127.0.0.1: loopback skips the per-IP caps, and
    // the addresses peers learn of each other (127.0.0.1) are dialled, which the address
    // policy refuses without a netrestrict list covering them (as `NodeConfig::local` already
    // asks; said here too so the fixture does not depend on it).
    c.core.gater.exempt_loopback_from_caps = true;
    c.core.gater.netrestrict = Some(LOOPBACK_NETS.to_vec());
    c
}

/// [`dev_config`] that also signs and publishes with the dev chain's key, `dev_key(0)`.
pub fn sequencer_config(i: u64) -> NodeConfig {
    let mut c = dev_config(i);
    c.signer = Some(std::sync::Arc::new(op_p2p_node::signer::LocalSigner(
        dev_key(0),
    )));
    c
}

/// `config` with discovery on, bootstrapped from `bootnode`.
pub fn bootstrapped(mut config: NodeConfig, bootnode: &Bootnode) -> NodeConfig {
    config.core.discovery = Some(Default::default());
    config.bootnodes = vec![bootnode.clone()];
    config
}

/// `config` under identity `keypair` (the core's local peer id follows the key).
pub fn with_keypair(mut config: NodeConfig, keypair: libp2p::identity::Keypair) -> NodeConfig {
    config.core.local_peer_id = keypair.public().to_peer_id();
    config.keypair = keypair;
    config
}

/// `127.0.0.1:0`: an HTTP listen address the OS picks a port for.
pub fn local0() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// A UDP port on 127.0.0.1 that was free a moment ago, for discv5 tests that must know the
/// port before the node binds it.
pub fn free_udp_port() -> u16 {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind udp");
    s.local_addr().expect("bound").port()
}

/// Whether `addr` can be bound again (TCP): nothing listens on it any more.
pub fn tcp_free(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_ok()
}

/// Whether UDP port `port` on 127.0.0.1 can be bound again.
pub fn udp_free(port: u16) -> bool {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

// ---- node operations ---------------------------------------------------------------------

/// One admin call that must succeed.
pub async fn admin(node: &NodeHandle, request: AdminRequest) -> AdminResponse {
    let what = format!("{request:?}");
    within(BOUND, &what, node.admin().call(request))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:?}"))
}

/// Starts node `i` ([`dev_config`]) with discovery on `rt`, as a bootnode for others.
pub async fn spawn_bootnode(rt: Rt, i: u64) -> (NodeHandle, Bootnode) {
    let mut config = dev_config(i);
    config.core.discovery = Some(Default::default());
    let node = rt.spawn(config).await;
    let enr = node.enr().expect("discovery on").parse().expect("our ENR");
    (node, enr)
}

/// Connected peers, from `opp2p_peerStats`.
pub async fn connected(node: &NodeHandle) -> u64 {
    match admin(node, AdminRequest::PeerStats).await {
        AdminResponse::PeerStats(s) => s.connected,
        other => panic!("{other:?}"),
    }
}

/// `opp2p_connectPeer` from `from` to `to` over the admin client; answers once connected.
pub async fn connect(from: &NodeHandle, to: &NodeHandle) {
    connect_addr(from, to.listen_addrs()[0].clone()).await;
}

/// `opp2p_connectPeer` from `from` to `addr` (ending in `/p2p/<peer id>`, e.g. a child
/// process's address); answers once connected.
pub async fn connect_addr(from: &NodeHandle, mut addr: Multiaddr) {
    let Some(Protocol::P2p(peer)) = addr.pop() else {
        panic!("no /p2p/ in {addr}")
    };
    let r = admin(from, AdminRequest::ConnectPeer { addr, peer }).await;
    assert_eq!(r, AdminResponse::Null);
}

/// Waits until every node has at least `min` connected peers (discovery and dialling).
pub async fn wait_for_peers(nodes: &[NodeHandle], min: u64) {
    eventually("every node connected", || async {
        for n in nodes {
            if connected(n).await < min {
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// A request to sign `block` with the node's sequencer key and publish it.
pub fn sign_request(block: &BlockBuilder) -> PublishRequest {
    let (payload, root) = block.build();
    PublishRequest::Sign {
        payload: Box::new(payload),
        parent_beacon_block_root: root,
    }
}

/// [`sign_request`] for an empty v4 block `number`, timestamped now.
pub fn v4_block(number: u64) -> PublishRequest {
    sign_request(&BlockBuilder::new(BlockVersion::V4, number, now_secs()))
}

/// Publishes once gossipsub has a peer on the topic (the mesh forms on heartbeats): retries
/// for up to [`PUBLISH_WAIT`]; returns the message id.
pub async fn publish_when_ready(node: &NodeHandle, req: PublishRequest) -> MessageId {
    let deadline = Instant::now() + PUBLISH_WAIT;
    loop {
        match node.publish(req.clone()).await {
            Ok(id) => return id,
            Err(e) if Instant::now() > deadline => panic!("could not publish: {e:?}"),
            Err(_) => sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The block numbers of the next `n` blocks a node delivers, sorted; fails after [`BOUND`].
pub async fn block_numbers(blocks: &mut mpsc::Receiver<DeliveredBlock>, n: usize) -> Vec<u64> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let b = within(BOUND, "next block", blocks.next())
            .await
            .expect("the node runs");
        got.push(b.envelope.payload.as_v1().block_number);
    }
    got.sort_unstable();
    got
}

/// Shuts `node` down, failing the test if that takes longer than [`SHUTDOWN_WAIT`].
pub async fn shutdown(node: NodeHandle) {
    within(SHUTDOWN_WAIT, "shutdown", node.shutdown()).await;
}

/// The TCP port of a multiaddr.
pub fn tcp_port(addr: &Multiaddr) -> u16 {
    addr.iter()
        .find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no TCP port in {addr}"))
}

/// `ip:port` of an `/ip4/…/tcp/…` multiaddr.
pub fn tcp_socket_addr(addr: &Multiaddr) -> SocketAddr {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => SocketAddr::from((ip, tcp_port(addr))),
        _ => panic!("not /ip4/…/tcp/…: {addr}"),
    }
}

/// The discv5 node id of an `enr:` record, as 64 lowercase hex digits.
pub fn enr_node_id_hex(enr: &str) -> String {
    let r: op_p2p_core::discovery::Enr = enr.parse().expect("a valid ENR");
    op_p2p_core::alloy_primitives::hex::encode(r.node_id().raw())
}

// ---- HTTP/1.1 and JSON-RPC client --------------------------------------------------------

/// A parsed HTTP/1.1 response: exactly what the server wrote.
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HttpResponse {
    /// The body as (lossy) text, which is what a failing assertion needs to show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl HttpResponse {
    /// A header's value (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

/// Parses a whole `HTTP/1.1` response (status line, headers, body).
pub fn parse_http_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).expect("UTF-8 headers");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {status_line}"));
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header line");
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Writes `request` on a fresh connection and reads until the server closes it (at most
/// [`MAX_RESPONSE`] bytes, within [`HTTP_TIMEOUT`]).
pub async fn http_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    http_exchange_from(None, addr, request).await
}

/// [`http_exchange`] from the source address `from` (e.g. `127.0.0.2`: another loopback
/// client than 127.0.0.1), or the system's choice.
pub async fn http_exchange_from(from: Option<IpAddr>, addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    within(HTTP_TIMEOUT, "HTTP exchange", async {
        let mut s = match from {
            Some(ip) => connect_from(ip, addr),
            None => async_std::net::TcpStream::connect(addr)
                .await
                .expect("connect"),
        };
        s.write_all(request).await.expect("write");
        read_to_close(&mut s).await
    })
    .await
}

/// Everything the server writes on `s` until it closes it (at most [`MAX_RESPONSE`] bytes; a
/// reset ends the read like a close). No deadline of its own: wrap it in [`within`].
pub async fn read_to_close(s: &mut async_std::net::TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    // On the heap: the futures of tests that make many requests stay small (a debug build's
    // frames hold copies of them, and a test thread's stack is 2 MiB).
    let mut buf = vec![0u8; 8192];
    while (raw.len() as u64) < MAX_RESPONSE {
        match s.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if raw.is_empty() => panic!("read: {e}"),
            Err(_) => break,
        }
    }
    raw
}

/// A TCP connection to `addr` whose local end is bound to `from` first, so a test can be a
/// client of another IP (any of 127.0.0.0/8 on loopback). The connect is blocking, which on
/// loopback is immediate.
pub fn connect_from(from: IpAddr, addr: SocketAddr) -> async_std::net::TcpStream {
    use socket2::{Domain, Protocol as SockProtocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(SockProtocol::TCP),
    )
    .expect("socket");
    socket
        .bind(&SocketAddr::new(from, 0).into())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    socket
        .connect(&addr.into())
        .unwrap_or_else(|e| panic!("connect {addr} from {from}: {e}"));
    let stream: std::net::TcpStream = socket.into();
    stream.set_nonblocking(true).expect("non-blocking");
    async_std::net::TcpStream::from(stream)
}

/// The `Host` header an [`HttpRequest`] sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostHeader {
    /// `Host: <ip:port it connects to>` (the default).
    Target,
    /// `Host: <this value>`.
    Value(String),
    /// No `Host` header at all.
    Absent,
}

/// One HTTP request of the test client, written by hand (so a test chooses the version, the
/// `Host` header and the source address) with `Connection: close`; the response is read to the
/// end and parsed. Our server sizes every body, so a `Content-Length` it sends is checked exact.
#[derive(Debug, Clone)]
#[must_use]
pub struct HttpRequest {
    method: String,
    path: String,
    version: &'static str,
    host: HostHeader,
    content_type: Option<String>,
    body: String,
    from: Option<IpAddr>,
}

impl HttpRequest {
    /// `method path HTTP/1.1`, `Host` the target, no body.
    pub fn new(method: &str, path: &str) -> Self {
        HttpRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            version: "HTTP/1.1",
            host: HostHeader::Target,
            content_type: None,
            body: String::new(),
            from: None,
        }
    }

    /// A JSON-RPC call `method(params)` (id 7) as `POST /` with `application/json`.
    pub fn json_rpc(method: &str, params: Value) -> Self {
        let body =
            json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string();
        Self::new("POST", "/")
            .content_type("application/json")
            .body(&body)
    }

    /// The request target.
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    /// The `Host` header to send.
    pub fn host(mut self, host: HostHeader) -> Self {
        self.host = host;
        self
    }

    /// The protocol version of the request line (`HTTP/1.0` or `HTTP/1.1`).
    pub fn version(mut self, version: &'static str) -> Self {
        self.version = version;
        self
    }

    /// A `Content-Type` header.
    pub fn content_type(mut self, content_type: &str) -> Self {
        self.content_type = Some(content_type.to_owned());
        self
    }

    /// The body (its `Content-Length` is always sent).
    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }

    /// Connect from this source address (see [`connect_from`]).
    pub fn from_ip(mut self, from: IpAddr) -> Self {
        self.from = Some(from);
        self
    }

    /// The bytes written to `addr`.
    pub fn to_bytes(&self, addr: SocketAddr) -> Vec<u8> {
        let mut req = format!("{} {} {}\r\n", self.method, self.path, self.version);
        match &self.host {
            HostHeader::Target => req.push_str(&format!("Host: {addr}\r\n")),
            HostHeader::Value(v) => req.push_str(&format!("Host: {v}\r\n")),
            HostHeader::Absent => {}
        }
        req.push_str(&format!(
            "Connection: close\r\nContent-Length: {}\r\n",
            self.body.len()
        ));
        if let Some(ct) = &self.content_type {
            req.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(&self.body);
        req.into_bytes()
    }

    /// Sends it to `addr` and reads the whole response.
    pub async fn send(self, addr: SocketAddr) -> HttpResponse {
        let bytes = self.to_bytes(addr);
        let raw = Box::pin(http_exchange_from(self.from, addr, &bytes)).await;
        let resp = parse_http_response(&raw);
        if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().expect("length");
            assert_eq!(len, resp.body.len(), "{resp:?}");
        }
        resp
    }
}

/// One request with `Connection: close`, the response read to the end and parsed. Our server
/// sizes every body, so `Content-Length` is checked present and exact.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> HttpResponse {
    let mut req = HttpRequest::new(method, path).body(body);
    if let Some(ct) = content_type {
        req = req.content_type(ct);
    }
    let resp = req.send(addr).await;
    assert!(resp.header("content-length").is_some(), "{resp:?}");
    resp
}

/// `GET path`.
pub async fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_request(addr, "GET", path, None, "").await
}

/// One JSON-RPC call over HTTP: `Ok(result)` or `Err((code, message))`, the envelope checked
/// (200, `application/json`, `jsonrpc` 2.0, our id, exactly one of result and error).
pub async fn json_rpc(
    addr: SocketAddr,
    method: &str,
    params: Value,
) -> Result<Value, (i64, String)> {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string();
    let r = http_request(addr, "POST", "/", Some("application/json"), &body).await;
    assert_eq!(r.status, 200, "{method}: {r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["id"], 7);
    let obj = v.as_object().expect("response object");
    match (obj.get("result"), obj.get("error")) {
        (Some(res), None) => Ok(res.clone()),
        (None, Some(e)) => {
            let mut keys: Vec<&String> = e.as_object().expect("error object").keys().collect();
            keys.sort_unstable();
            assert_eq!(keys, ["code", "message"], "{e}");
            Err((
                e["code"].as_i64().expect("code"),
                e["message"].as_str().expect("message").to_owned(),
            ))
        }
        _ => panic!("neither result nor error: {v}"),
    }
}

/// [`json_rpc`] that must succeed; returns the result.
pub async fn json_rpc_ok(addr: SocketAddr, method: &str, params: Value) -> Value {
    match json_rpc(addr, method, params.clone()).await {
        Ok(v) => v,
        Err(e) => panic!("{method} {params}: {e:?}"),
    }
}

/// A `POST /` whose declared body never comes, kept in flight: the server has asked for the
/// body (`Expect: 100-continue`, answered `100 Continue`), so the request is being served,
/// not idle. Returns the open connection.
pub async fn request_in_flight(addr: SocketAddr) -> async_std::net::TcpStream {
    within(HTTP_TIMEOUT, "100 Continue", async {
        let mut s = async_std::net::TcpStream::connect(addr)
            .await
            .expect("connect");
        s.write_all(
            b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .expect("write");
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while !got.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(
            got.starts_with(b"HTTP/1.1 100 "),
            "{}",
            String::from_utf8_lossy(&got)
        );
        s
    })
    .await
}

/// A `POST /` whose headers declare a 100-byte JSON body of which only 10 bytes are sent,
/// from `from` (or the system's choice of source address): a slow client the server is
/// reading a body from. Returns the open connection.
pub async fn stalled_body(addr: SocketAddr, from: Option<IpAddr>) -> async_std::net::TcpStream {
    let mut s = match from {
        Some(ip) => connect_from(ip, addr),
        None => within(
            HTTP_TIMEOUT,
            "connect",
            async_std::net::TcpStream::connect(addr),
        )
        .await
        .expect("connect"),
    };
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"jsonrpc\"",
    )
    .await
    .expect("write");
    s
}

/// Whether the server has closed `s`: a read gives EOF or an error within a second (a
/// closed loopback connection answers at once).
pub async fn closed_by_server(s: &mut async_std::net::TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        async_std::future::timeout(Duration::from_secs(1), s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

// ---- the HTTP service on a real listener -------------------------------------------------

/// `op_p2p_node::http::serve` running over [`op_p2p_node::testkit::http_fixture`].
pub struct HttpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    done: RemoteHandle<()>,
    /// The admin side of a fixture that never answers, kept alive (unpolled) so calls hang.
    _idle_admin: Option<BoxFuture<'static, ()>>,
}

impl HttpServer {
    /// Triggers shutdown and waits (bounded) until `serve` has returned.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        within(BOUND, "serve returns after shutdown", self.done).await;
    }
}

/// Binds 127.0.0.1:0 with `runtime.bind_http` and runs the one HTTP accept loop on it over a
/// fresh node's admin API and metrics (answering as of `now`, Unix ms).
pub async fn serve_fixture<R: Runtime>(runtime: R, now: UnixMillis) -> HttpServer {
    serve_fixture_with(runtime, now, ServeLimits::default(), true).await
}

/// [`serve_fixture`] with other accept-loop bounds; with `answer_admin` false, admin calls are
/// taken but never answered (a stuck node), so requests run into their deadline.
pub async fn serve_fixture_with<R: Runtime>(
    runtime: R,
    now: UnixMillis,
    limits: ServeLimits,
    answer_admin: bool,
) -> HttpServer {
    let f = op_p2p_node::testkit::http_fixture(now);
    let idle_admin = if answer_admin {
        runtime.spawn(f.answer_admin);
        None
    } else {
        Some(f.answer_admin)
    };
    let (listener, addr) = runtime.bind_http(local0()).await.expect("bind http");
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let (task, done) =
        op_p2p_node::http::serve_with_limits(runtime.clone(), listener, f.state, limits, shutdown)
            .remote_handle();
    runtime.spawn(task.boxed());
    HttpServer {
        addr,
        stop,
        done,
        _idle_admin: idle_admin,
    }
}

// ---- this process and its children, from /proc ---------------------------------------------

/// This process's resident set, KiB (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> u64 {
    rss_kib_of(std::process::id())
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    fd_count_of(std::process::id())
}

/// Resident set of process `pid`, KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib_of(pid: u32) -> u64 {
    let path = format!("/proc/{pid}/status");
    let s = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// Open file descriptors of process `pid` (`/proc/<pid>/fd`; a child of ours is readable).
pub fn fd_count_of(pid: u32) -> usize {
    let path = format!("/proc/{pid}/fd");
    std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .count()
}

/// Threads of this process named `name` (`/proc/self/task/*/comm`), e.g. discv5's own
/// thread on async-std, `op-p2p-discv5`.
pub fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

// ---- attackers: fresh libp2p identities --------------------------------------------------

/// Handshakes in flight at once in [`churn`].
pub const FRESH_WAVE: usize = 50;

/// How one attacker connection ended, seen from the attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Churned {
    /// The node closed the connection right after the handshake (a gater refusal).
    Refused,
    /// Up, then dropped by us at once.
    Dropped,
    /// Up, the node's identify arrived, then dropped by us.
    Identified,
    /// The dial or the handshake failed.
    Failed,
}

/// One connection from a fresh secp256k1 identity, through the node's own transport stack
/// (`upgrade_transport`: TCP, Noise, Yamux) and an identify-only swarm. Dropped as soon as it
/// is up, or once the node's identify arrived and `hold` passed.
pub async fn fresh_identity_connection(
    addr: libp2p::Multiaddr,
    after_identify: bool,
    hold: Duration,
) -> Churned {
    use libp2p::swarm::SwarmEvent;
    let kp = libp2p::identity::Keypair::generate_secp256k1();
    let peer_id = kp.public().to_peer_id();
    let tcp = libp2p::tcp::tokio::Transport::new(libp2p::tcp::Config::default().nodelay(true));
    let transport = op_p2p_node::upgrade_transport(tcp, &kp).expect("noise keys from a keypair");
    let identify = libp2p::identify::Behaviour::new(libp2p::identify::Config::new(
        "ipfs/0.1.0".into(),
        kp.public(),
    ));
    let mut swarm = libp2p::Swarm::new(
        transport,
        identify,
        peer_id,
        libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(Duration::from_secs(30)),
    );
    if swarm.dial(addr).is_err() {
        return Churned::Failed;
    }
    let mut up = false;
    let outcome = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => {
                    up = true;
                    if !after_identify {
                        return Churned::Dropped;
                    }
                }
                SwarmEvent::Behaviour(libp2p::identify::Event::Received { .. }) => {
                    return Churned::Identified;
                }
                SwarmEvent::ConnectionClosed { .. } => return Churned::Refused,
                SwarmEvent::OutgoingConnectionError { .. } => return Churned::Failed,
                _ => {}
            }
        }
    })
    .await
    .unwrap_or(if up {
        Churned::Refused
    } else {
        Churned::Failed
    });
    if outcome == Churned::Identified && !hold.is_zero() {
        // Keep the connection (and answer the node's streams) a little longer.
        let _ = tokio::time::timeout(hold, async {
            loop {
                if let SwarmEvent::ConnectionClosed { .. } = swarm.select_next_some().await {
                    return;
                }
            }
        })
        .await;
    }
    outcome
}

/// `count` fresh-identity connections to `addr`, [`FRESH_WAVE`] at a time; half drop at once,
/// half after identify (+ `hold`). Returns how many ended each way (by
/// [`Churned`] name). Needs a tokio runtime (the attackers are tokio swarms).
pub async fn churn(
    addr: libp2p::Multiaddr,
    count: usize,
    hold: Duration,
) -> std::collections::BTreeMap<String, usize> {
    let mut ended = std::collections::BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        if tasks.len() >= FRESH_WAVE {
            let r = tasks.join_next().await.expect("a task").expect("no panic");
            *ended.entry(format!("{r:?}")).or_insert(0) += 1;
        }
        tasks.spawn(fresh_identity_connection(addr.clone(), i % 2 == 1, hold));
    }
    while let Some(r) = tasks.join_next().await {
        *ended
            .entry(format!("{:?}", r.expect("no panic")))
            .or_insert(0) += 1;
    }
    ended
}

// ---- the op-p2p binary as a child process ------------------------------------------------

/// How long [`NodeProcess::start`] waits for the "node running" line.
pub const PROCESS_START: Duration = Duration::from_secs(20);

/// The `op-p2p` binary at `bin` (a test of the app crate passes `env!("CARGO_BIN_EXE_op-p2p")`)
/// as `op-p2p node` on the dev chain ([`CHAIN`], signer `signer`), on 127.0.0.1 with an
/// ephemeral TCP port, no discovery, state in `datadir`, plus `extra` flags. `wrapper` runs it
/// under another command that execs it (`prlimit …`).
pub fn node_command(
    bin: &str,
    signer: op_p2p_core::alloy_primitives::Address,
    datadir: &std::path::Path,
    wrapper: &[&str],
    extra: &[&str],
) -> tokio::process::Command {
    let mut command = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = tokio::process::Command::new(first);
            c.args(rest).arg("--").arg(bin);
            c
        }
        None => tokio::process::Command::new(bin),
    };
    command
        .args(["node", "--chain-id", &CHAIN.to_string(), "--unsafe-signer"])
        .arg(signer.to_string())
        .arg("--datadir")
        .arg(datadir)
        .args([
            "--p2p.listen.ip",
            "127.0.0.1",
            "--p2p.listen.tcp",
            "0",
            "--p2p.no-discovery",
        ])
        .args(extra);
    command
}

/// A running `op-p2p node` child process (the binary's tests pass
/// `env!("CARGO_BIN_EXE_op-p2p")`): its addresses read from its info log, its
/// `--events-json` lines (if asked for) read from stdout, killed when dropped. Needs a tokio
/// runtime.
pub struct NodeProcess {
    child: tokio::process::Child,
    /// Its peer id, from the "node running" line.
    pub peer_id: String,
    /// Its libp2p listen addresses, each ending in `/p2p/<peer id>`.
    pub listen_addrs: Vec<Multiaddr>,
    /// The JSON-RPC listener (`--rpc.*`), if one runs.
    pub rpc: Option<SocketAddr>,
    /// The metrics-only listener (`--metrics.*` at another address than the RPC), if one runs.
    pub metrics: Option<SocketAddr>,
    /// Its log lines up to and including "node running".
    pub startup_log: Vec<String>,
    events: tokio::sync::mpsc::UnboundedReceiver<Value>,
}

impl NodeProcess {
    /// Starts `command` (the binary's `node` command line, possibly under a wrapper that execs
    /// it, such as `prlimit`) with info logs on a piped stderr, and waits until it logs "node
    /// running"; fails the test if it logs an `ERROR` first, exits, or takes longer than
    /// [`PROCESS_START`]. Afterwards its stderr is drained (`WARN`/`ERROR` lines echoed to the
    /// test's stderr) and its stdout read as JSON lines (non-JSON lines are skipped).
    pub async fn start(mut command: tokio::process::Command) -> NodeProcess {
        use tokio::io::AsyncBufReadExt;
        let mut child = command
            .env("OP_P2P_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        // Unbounded, and read at once: a full pipe would block the child's event printer.
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut log = Vec::new();
        let started = tokio::time::timeout(PROCESS_START, async {
            while let Ok(Some(line)) = lines.next_line().await {
                assert!(
                    !line.contains(" ERROR "),
                    "the node logged an error: {line}"
                );
                let running = line.contains("node running");
                log.push(line);
                if running {
                    return true;
                }
            }
            false
        })
        .await;
        if started != Ok(true) {
            panic!(
                "the node did not start within {PROCESS_START:?} (status {:?}); its log:\n{}",
                child.try_wait(),
                log.join("\n")
            );
        }
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(" WARN ") || line.contains(" ERROR ") {
                    eprintln!("[op-p2p node] {line}");
                }
            }
        });
        let running = log.last().expect("the running line");
        let field = |line: &str, key: &str| -> Option<String> {
            let rest = line.split(&format!(" {key}=")).nth(1)?;
            Some(rest.split(' ').next().unwrap_or_default().to_owned())
        };
        let peer_id = field(running, "peer_id").expect("peer_id in the running line");
        let addrs = running
            .split(" addrs=[")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .expect("addrs in the running line");
        let listen_addrs = addrs
            .split(", ")
            .map(|a| a.parse().unwrap_or_else(|e| panic!("{a}: {e}")))
            .collect();
        let mut rpc = None;
        let mut metrics = None;
        for line in log.iter().filter(|l| l.contains("http listening")) {
            let local: SocketAddr = field(line, "local")
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("no local address: {line}"));
            if line.contains("/metrics only") {
                metrics = Some(local);
            } else {
                rpc = Some(local);
            }
        }
        NodeProcess {
            child,
            peer_id,
            listen_addrs,
            rpc,
            metrics,
            startup_log: log,
            events,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// The first startup log line containing `text`.
    pub fn log_line(&self, text: &str) -> Option<&str> {
        self.startup_log
            .iter()
            .find(|l| l.contains(text))
            .map(String::as_str)
    }

    /// The next `--events-json` line; `None` once stdout closed.
    pub async fn next_event(&mut self) -> Option<Value> {
        self.events.recv().await
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and waits until it is gone.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL");
    }
}

// ---- seeded randomness -------------------------------------------------------------------

/// The draws tests make from the core's seeded [`SplitMix64`] (a run replays exactly).
pub trait Draw {
    /// The next 64 random bits.
    fn next(&mut self) -> u64;
    /// A draw in `0..n` (modulo bias is fine for tests).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

impl Draw for SplitMix64 {
    fn next(&mut self) -> u64 {
        rand::RngCore::next_u64(self)
    }
}

// ---- JS interop peers --------------------------------------------------------------------

/// `tests/interop`, checked to be installed: fails (never skips) when `node` or the npm
/// packages are missing.
pub fn interop_dir() -> PathBuf {
    let dir = repo_root().join("tests").join("interop");
    let help = format!(
        "run `{}` first (it needs Node.js >= 20 and npm)",
        dir.join("install.sh").display()
    );
    match std::process::Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("`node --version` failed ({}): {help}", out.status),
        Err(e) => panic!("`node` not found ({e}): install Node.js >= 20, then {help}"),
    }
    let modules = dir.join("node_modules");
    assert!(
        modules.join("libp2p").is_dir() && modules.join("@chainsafe").join("discv5").is_dir(),
        "{} has no installed packages: {help}",
        modules.display()
    );
    dir
}

/// The arguments of `gossip-peer.mjs` that subscribe it to `topics`, dial `dial` (if given)
/// and stop it after `timeout_ms`; callers add the rest (`--publish`, `--key`, `--max-hex`).
pub fn gossip_peer_args(topics: &[&str], dial: Option<&Multiaddr>, timeout_ms: u64) -> Vec<String> {
    let mut args = Vec::new();
    for t in topics {
        args.extend(["--topic".to_string(), t.to_string()]);
    }
    if let Some(addr) = dial {
        args.extend(["--dial".to_string(), addr.to_string()]);
    }
    args.extend(["--timeout-ms".to_string(), timeout_ms.to_string()]);
    args
}

/// A running `node <script>` of `tests/interop`: stdin kept open (closing it stops the
/// script), stdout read line by line as JSON by a tokio task, the process killed when dropped.
/// Needs a tokio runtime.
pub struct JsPeer {
    name: String,
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    events: tokio::sync::mpsc::Receiver<Value>,
}

impl JsPeer {
    /// Starts `node <script> <args…>` in `tests/interop`.
    pub fn spawn(script: &str, args: &[String]) -> JsPeer {
        use tokio::io::AsyncBufReadExt;
        let dir = interop_dir();
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join(script))
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node {script}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, events) = tokio::sync::mpsc::channel(4096);
        let who = script.to_string();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("{who} printed a non-JSON line ({e}): {line}"));
                if tx.send(value).await.is_err() {
                    return;
                }
            }
        });
        JsPeer {
            name: script.to_string(),
            child,
            stdin,
            events,
        }
    }

    /// The next output line, or `None` once the script has ended.
    pub async fn recv(&mut self) -> Option<Value> {
        self.events.recv().await
    }

    /// The next output line; fails if the script ended.
    pub async fn next(&mut self) -> Value {
        match self.events.recv().await {
            Some(v) => v,
            None => panic!(
                "{} ended early (status {:?}); see its stderr above",
                self.name,
                self.child.try_wait()
            ),
        }
    }

    /// Skips lines until one whose `event` is `event`; an `error` line fails the test.
    pub async fn until(&mut self, event: &str) -> Value {
        loop {
            let v = self.next().await;
            let got = v["event"].as_str().unwrap_or_default();
            assert_ne!(got, "error", "{}: {v}", self.name);
            if got == event {
                return v;
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Closes stdin (the script stops and exits 0), or kills it if it does not within 5 s.
    pub async fn stop(mut self) {
        drop(self.stdin.take());
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(status)) => assert!(status.success(), "{} exited with {status}", self.name),
            _ => {
                let _ = self.child.kill().await;
            }
        }
    }
}

// ---- anvil: a local L1 for the L1-signer tests ---------------------------------------------

/// The anvil binary `tests/interop/install.sh` installs (`tests/anvil`, npm
/// `@foundry-rs/anvil`, whose platform package ships it).
pub fn anvil_binary() -> PathBuf {
    let scope = repo_root().join("tests/anvil/node_modules/@foundry-rs");
    std::fs::read_dir(&scope)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin/anvil"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no anvil under {scope:?}: run `bash tests/interop/install.sh`"))
}

/// A running anvil on 127.0.0.1 (a free port it picks), L1 chain `chain_id`: killed and
/// reaped when dropped, and (Linux) killed by the kernel if the test process dies first.
pub struct Anvil {
    child: std::process::Child,
    /// Its JSON-RPC address.
    pub addr: SocketAddr,
}

impl Anvil {
    /// Starts anvil and waits (at most [`PROCESS_START`]) until it listens.
    pub fn start(chain_id: u64) -> Anvil {
        use std::io::BufRead;
        let mut command = std::process::Command::new(anvil_binary());
        command
            .args(["--host", "127.0.0.1", "--port", "0", "--chain-id"])
            .arg(chain_id.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("anvil starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads its output to the end (it ends when anvil does), so anvil never blocks on a
        // full pipe; reports the listen address.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(addr) = line.strip_prefix("Listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(PROCESS_START) {
            Ok(a) => a.parse().expect("anvil's listen address"),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("anvil did not start: {e}");
            }
        };
        Anvil { child, addr }
    }

    /// Its URL, for `--l1`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes `word` to the `SystemConfig` signer slot of `system_config`
    /// (`anvil_setStorageAt`), then mines `blocks` blocks (`anvil_mine`) so a reader that
    /// stays that many blocks behind the head sees it.
    pub async fn set_signer_slot(
        &self,
        system_config: op_p2p_core::alloy_primitives::Address,
        word: op_p2p_core::alloy_primitives::B256,
        blocks: u64,
    ) {
        let slot = op_p2p_node::l1_signer::UNSAFE_BLOCK_SIGNER_SLOT;
        let ok = json_rpc_ok(
            self.addr,
            "anvil_setStorageAt",
            json!([system_config, slot, word]),
        )
        .await;
        assert_eq!(ok, json!(true));
        json_rpc_ok(self.addr, "anvil_mine", json!([format!("{blocks:#x}")])).await;
    }

    /// [`set_signer_slot`](Self::set_signer_slot) with `signer` in the low 20 bytes.
    pub async fn set_signer(
        &self,
        system_config: op_p2p_core::alloy_primitives::Address,
        signer: op_p2p_core::alloy_primitives::Address,
        blocks: u64,
    ) {
        self.set_signer_slot(system_config, signer.into_word(), blocks)
            .await;
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `config` reading its signer from the L1 at `url` (L1 chain `l1_chain_id`, `SystemConfig`
/// `system_config`), every `interval`, `confs` blocks deep, each call bounded by 1 s.
pub fn with_l1(
    mut config: NodeConfig,
    url: &str,
    l1_chain_id: u64,
    system_config: op_p2p_core::alloy_primitives::Address,
    interval: Duration,
    confs: u64,
) -> NodeConfig {
    use op_p2p_node::l1_signer::{L1Config, L1Endpoint};
    let mut l1 = L1Config::new(
        L1Endpoint::parse(url).expect("an http URL"),
        system_config,
        l1_chain_id,
    );
    l1.reload_interval = interval;
    l1.confs = confs;
    l1.request_timeout = Duration::from_secs(1);
    config.l1 = Some(l1);
    config
}

/// `block` signed by `key` for the dev chain, as an envelope any node publishes as is (a
/// sequencer that switched keys).
pub fn signed_by(
    key: &op_p2p_core::gossip::signature::SequencerKey,
    block: &BlockBuilder,
) -> PublishRequest {
    use op_p2p_core::op_alloy_rpc_types_engine::{OpNetworkPayloadEnvelope, PayloadHash};
    let (payload, root) = block.build();
    let signed = op_p2p_core::gossip::wire::signed_bytes(&payload, root).expect("encodes");
    let envelope = OpNetworkPayloadEnvelope {
        signature: key.sign_block(CHAIN, &signed),
        payload_hash: PayloadHash(op_p2p_core::gossip::signature::payload_hash(&signed)),
        payload,
        parent_beacon_block_root: root,
    };
    PublishRequest::Signed(std::sync::Arc::new(envelope))
}

/// A series' value in a Prometheus text exposition (`name{labels} value`), if present.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// `series` from `node`'s `GET /metrics` (its RPC listener), 0 when absent.
pub async fn node_metric(node: &NodeHandle, series: &str) -> f64 {
    let addr = node.rpc_addr().expect("the node serves RPC");
    let text = http_get(addr, "/metrics").await.text().to_owned();
    metric_value(&text, series).unwrap_or(0.0)
}

// ---- end anvil ----

// ---------------------------------------------------------------------------------------------
// The test op-signer (`op-p2p test-signer`, issue 14)
// ---------------------------------------------------------------------------------------------

/// A running `op-p2p test-signer` (op-signer's JSON-RPC over mTLS) with its certificates;
/// killed (and reaped) when dropped. Runtime-neutral (a std child process; its stdout is read
/// by a thread that ends when the process does), so nodes on either runtime can use it.
pub struct SignerProcess {
    child: std::process::Child,
    /// Where it listens (`https://127.0.0.1:<port>`).
    pub endpoint: String,
    /// The directory with `ca.pem`, `server.*` and `client.*`.
    pub certs: PathBuf,
}

impl Drop for SignerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SignerProcess {
    /// Writes fresh certificates into `dir` with `bin` (`env!("CARGO_BIN_EXE_op-p2p")`) and
    /// starts a signer that signs with `dev_key(0)`, plus `extra` flags (`--latency-ms`,
    /// `--fail-first`, `--wrong-key`, `--hang-first`, `--hang-ms`).
    pub async fn start(bin: &str, dir: &std::path::Path, extra: &[&str]) -> SignerProcess {
        use std::io::BufRead;
        let certs = dir.to_path_buf();
        let status = std::process::Command::new(bin)
            .args(["test-signer-certs", "--out"])
            .arg(&certs)
            .stdin(Stdio::null())
            .status()
            .expect("run test-signer-certs");
        assert!(status.success(), "test-signer-certs failed");
        let key = op_p2p_core::alloy_primitives::hex::encode(dev_key_secret(0));
        let mut child = std::process::Command::new(bin)
            .arg("test-signer")
            .arg("--tls.ca")
            .arg(certs.join("ca.pem"))
            .arg("--tls.cert")
            .arg(certs.join("server.pem"))
            .arg("--tls.key")
            .arg(certs.join("server.key"))
            .args(["--key", &key])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start test-signer");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, first) = futures::channel::oneshot::channel();
        // Reads the first line for us, then drains the rest until the process exits.
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines.by_ref() {}
        });
        let line = within(BOUND, "test-signer listening", first)
            .await
            .expect("the reader thread")
            .expect("a listening line")
            .expect("read stdout");
        let addr = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        SignerProcess {
            endpoint: format!("https://{addr}"),
            child,
            certs,
        }
    }

    /// A client of this signer as `dev_key(0)`, with the client certificate (mTLS) and a
    /// per-call `timeout`.
    pub fn client_config(&self, timeout: Duration) -> op_p2p_node::signer::RemoteSignerConfig {
        let mut c = op_p2p_node::signer::RemoteSignerConfig::new(
            self.endpoint.clone(),
            op_p2p_core::testkit::dev_key(0).address(),
        );
        c.tls_ca = Some(self.certs.join("ca.pem"));
        c.tls_cert = Some(self.certs.join("client.pem"));
        c.tls_key = Some(self.certs.join("client.key"));
        c.timeout = timeout;
        c
    }

    /// [`dev_config`] `i` signing through this signer.
    pub fn sequencer_config(&self, i: u64, timeout: Duration) -> NodeConfig {
        let mut c = dev_config(i);
        let signer = op_p2p_node::signer::RemoteSigner::new(self.client_config(timeout))
            .expect("remote signer config");
        c.signer = Some(std::sync::Arc::new(signer));
        c
    }
}

/// The 32 secret bytes of `dev_key(i)` (the test signer takes them as hex).
pub fn dev_key_secret(i: u64) -> [u8; 32] {
    op_p2p_core::testkit::dev_key_bytes(i)
}

// ---- many chains, one process (issue 16) -------------------------------------------------

impl Rt {
    /// Starts a [`op_p2p_node::host::Host`] (shared listeners for several chains) on this
    /// runtime; fails the test if it cannot.
    pub async fn start_host(
        self,
        config: op_p2p_node::host::HostConfig,
    ) -> op_p2p_node::host::Host {
        use op_p2p_node::host::Host;
        match self {
            Rt::Tokio => Host::start(&op_p2p_tokio::TokioRuntime, config).await,
            Rt::AsyncStd => Host::start(&op_p2p_async_std::AsyncStdRuntime, config).await,
        }
        .expect("host starts")
    }

    /// Starts chain `name`'s node from `config` under `host` on this runtime (see
    /// [`Rt::try_spawn`]).
    pub async fn spawn_chain(
        self,
        host: &op_p2p_node::host::Host,
        name: &str,
        config: NodeConfig,
    ) -> Result<NodeHandle, SpawnError> {
        match self {
            Rt::Tokio => {
                host.spawn(
                    op_p2p_tokio::TokioRuntime,
                    name,
                    config,
                    SpawnOptions::default(),
                )
                .await
            }
            Rt::AsyncStd => {
                let spawning = host.spawn(
                    op_p2p_async_std::AsyncStdRuntime,
                    name,
                    config,
                    SpawnOptions::default(),
                );
                async_std::task::spawn(spawning).await
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// opp2pext_publishBlock (issue 14)
// ---------------------------------------------------------------------------------------------

/// The `params` of `opp2pext_publishBlock` for `block`: one engine API
/// `ExecutionPayloadEnvelope` (`executionPayload`, `parentBeaconBlockRoot`), unsigned.
pub fn publish_block_params(block: &BlockBuilder) -> Value {
    let (execution_payload, parent_beacon_block_root) = block.build();
    let envelope = op_p2p_core::op_alloy_rpc_types_engine::OpExecutionPayloadEnvelope {
        parent_beacon_block_root,
        execution_payload,
    };
    json!([envelope])
}

/// Posts `block` with `opp2pext_publishBlock` to the RPC listener at `addr` until it is
/// `published` (the first tries may find no peer on the topic yet), for up to
/// [`PUBLISH_WAIT`]; the `result` of the call that published it. Each retry is the same
/// block: a block that failed was never sent.
pub async fn publish_block_rpc(addr: SocketAddr, block: &BlockBuilder) -> Value {
    let params = publish_block_params(block);
    let deadline = Instant::now() + PUBLISH_WAIT;
    loop {
        let r = json_rpc_ok(addr, "opp2pext_publishBlock", params.clone()).await;
        if r["status"] == "published" {
            return r;
        }
        assert!(Instant::now() < deadline, "could not publish over RPC: {r}");
        sleep(Duration::from_millis(100)).await;
    }
}

// ---- end of opp2pext_publishBlock ----
