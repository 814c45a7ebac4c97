//! # op-p2p-async-std
//!
//! The op-p2p node on async-std (and so next to smol, whose reactor async-std runs on).
//! [`spawn`] takes the same [`NodeConfig`] and [`SpawnOptions`] as `op_p2p_tokio::spawn` and
//! returns the same [`NodeHandle`]; both are `op-p2p-node`'s, so a node moves between the
//! runtimes with its identity and state.
//!
//! This crate holds only what async-std needs: [`AsyncStdRuntime`], with
//! - [`transport`]: TCP over `async_std::net` as a libp2p transport;
//! - [`hyper_io`]: hyper's IO and timer over async-std sockets.
//!
//! discv5 needs a tokio reactor, so on this runtime it runs on one current-thread tokio
//! runtime in a thread of its own (`op-p2p-discv5`), which shutdown ends and joins.

#![warn(missing_docs)]

pub mod hyper_io;
pub mod transport;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
pub use op_p2p_node::{
    AdminClient, ConfigError, NodeConfig, NodeConfigBuilder, NodeHandle, NodeStopped, SpawnError,
    SpawnOptions, core,
};
use op_p2p_node::{BoxedTransport, Runtime, system_now_ms, upgrade_transport};

/// The runtime-neutral node crate, for what the re-exports above leave out.
pub use op_p2p_node as node;

/// The async-std [`Runtime`]: the system clock, `async_std::task` for timers, spawning and
/// blocking work, [`transport::AsyncStdTcp`] for libp2p, `async_std::net` listeners for HTTP.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

impl Runtime for AsyncStdRuntime {
    type HttpListener = async_std::net::TcpListener;
    type HttpStream = hyper_io::FuturesIo<async_std::net::TcpStream>;
    type HttpTimer = hyper_io::AsyncIoTimer;

    fn now_ms(&self) -> core::UnixMillis {
        system_now_ms()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        async_std::task::sleep(duration).boxed()
    }

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        drop(async_std::task::spawn(task));
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
        drop(async_std::task::spawn_blocking(work));
    }

    fn swarm_config(&self) -> libp2p::swarm::Config {
        libp2p::swarm::Config::with_executor(|f| {
            async_std::task::spawn(f);
        })
    }

    fn transport(&self, keypair: &libp2p::identity::Keypair) -> Result<BoxedTransport, io::Error> {
        upgrade_transport(transport::AsyncStdTcp::new(), keypair)
    }

    fn bind_http(
        &self,
        addr: SocketAddr,
    ) -> BoxFuture<'static, io::Result<(Self::HttpListener, SocketAddr)>> {
        async move {
            let listener = async_std::net::TcpListener::bind(addr).await?;
            let local = listener.local_addr()?;
            Ok((listener, local))
        }
        .boxed()
    }

    fn accept_http<'a>(
        &self,
        listener: &'a Self::HttpListener,
    ) -> BoxFuture<'a, io::Result<(Self::HttpStream, SocketAddr)>> {
        async move {
            let (stream, remote) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            Ok((hyper_io::FuturesIo(stream), remote))
        }
        .boxed()
    }

    fn http_timer(&self) -> Self::HttpTimer {
        hyper_io::AsyncIoTimer
    }

    fn tokio_handle(&self) -> Option<tokio::runtime::Handle> {
        None
    }
}

/// Starts a node on async-std and returns its handle. The same [`NodeConfig`], options,
/// errors, handle and data dir as `op_p2p_tokio::spawn`: a node can move between the two.
///
/// ```no_run
/// # async fn demo(config: op_p2p_async_std::NodeConfig) -> Result<(), op_p2p_async_std::SpawnError> {
/// use futures::StreamExt;
/// let mut node = op_p2p_async_std::spawn(config, Default::default()).await?;
/// let mut blocks = node.blocks().expect("taken once");
/// if let Some(block) = blocks.next().await {
///     println!("block {}", block.envelope.payload.as_v1().block_number);
/// }
/// node.shutdown().await; // writes state to the data dir, stops discv5's thread
/// # Ok(()) }
/// ```
pub fn spawn(
    config: NodeConfig,
    options: SpawnOptions,
) -> impl Future<Output = Result<NodeHandle, SpawnError>> + Send + 'static {
    op_p2p_node::spawn(AsyncStdRuntime, config, options)
}
