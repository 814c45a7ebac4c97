//! What a node needs from an async runtime, and nothing more (quinn's shape): a wall clock,
//! timers, spawning, a blocking pool, TCP for libp2p and for the HTTP listener, hyper's IO and
//! timer, and where discv5's tokio reactor lives. `op-p2p-tokio` and `op-p2p-async-std` each
//! implement [`Runtime`] once; everything else in this crate is written over it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::{PeerId, Transport};
use op_p2p_core::UnixMillis;

/// The transport a swarm runs on: a runtime's TCP after [`upgrade_transport`].
pub type BoxedTransport = Boxed<(PeerId, StreamMuxerBox)>;

/// An async runtime a node runs on. One clock serves the driver and the connection gate.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A listening TCP socket for the HTTP service.
    type HttpListener: Send + Sync + 'static;
    /// An accepted HTTP connection, readable and writable by hyper.
    type HttpStream: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static;
    /// hyper's timer on this runtime (header-read and body-read timeouts).
    type HttpTimer: hyper::rt::Timer + Clone + Send + Sync + 'static;

    /// Wall-clock Unix time in milliseconds: every time the node's core sees.
    fn now_ms(&self) -> UnixMillis;
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: BoxFuture<'static, ()>);
    /// Runs `work` on a thread where blocking (file IO, fsync) is allowed.
    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>);
    /// The swarm's configuration, naming this runtime's executor for connection tasks.
    fn swarm_config(&self) -> libp2p::swarm::Config;
    /// libp2p's transport: this runtime's TCP, upgraded with [`upgrade_transport`].
    fn transport(&self, keypair: &libp2p::identity::Keypair) -> Result<BoxedTransport, io::Error>;
    /// Binds a TCP listener for HTTP; returns it with the address it bound.
    fn bind_http(
        &self,
        addr: SocketAddr,
    ) -> BoxFuture<'static, io::Result<(Self::HttpListener, SocketAddr)>>;
    /// Accepts one HTTP connection.
    fn accept_http<'a>(
        &self,
        listener: &'a Self::HttpListener,
    ) -> BoxFuture<'a, io::Result<(Self::HttpStream, SocketAddr)>>;
    /// hyper's timer.
    fn http_timer(&self) -> Self::HttpTimer;
    /// The tokio runtime discv5 should run on, if this is one; `None` runs discv5 on a
    /// current-thread tokio runtime in a thread of its own (discv5 needs a tokio reactor).
    fn tokio_handle(&self) -> Option<tokio::runtime::Handle>;
}

/// Runs blocking `work` on `runtime`'s blocking pool and waits for its result. `None` when the
/// work panicked (its result never arrived).
pub async fn blocking<R: Runtime, T: Send + 'static>(
    runtime: &R,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = futures::channel::oneshot::channel();
    runtime.spawn_blocking(Box::new(move || {
        let _ = tx.send(work());
    }));
    rx.await.ok()
}

/// The system clock, Unix ms (0 before 1970).
pub fn system_now_ms() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// How long a connection may take to finish Noise and Yamux.
pub const UPGRADE_TIMEOUT: Duration = Duration::from_secs(20);

/// Noise (with the libp2p secp256k1 identity) and Yamux over any TCP-like transport: the
/// upgrade every runtime applies to its own TCP.
pub fn upgrade_transport<T>(
    tcp: T,
    keypair: &libp2p::identity::Keypair,
) -> Result<BoxedTransport, io::Error>
where
    T: Transport + Send + Unpin + 'static,
    T::Output: futures::AsyncRead + futures::AsyncWrite + Unpin + Send + 'static,
    T::Dial: Send,
    T::ListenerUpgrade: Send,
    T::Error: Send + Sync,
{
    use libp2p::core::upgrade::Version;
    let noise = libp2p::noise::Config::new(keypair).map_err(io::Error::other)?;
    Ok(tcp
        .upgrade(Version::V1)
        .authenticate(noise)
        .multiplex(libp2p::yamux::Config::default())
        .timeout(UPGRADE_TIMEOUT)
        .boxed())
}
