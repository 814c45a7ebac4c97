//! [`TokioRuntime`]: tokio's executor, timers, blocking pool and TCP as an op-p2p-node
//! [`Runtime`].

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use hyper_util::rt::{TokioIo, TokioTimer};
use libp2p::tcp;
use op_p2p_node::core::UnixMillis;
use op_p2p_node::{BoxedTransport, Runtime, system_now_ms, upgrade_transport};

/// The tokio [`Runtime`]: the system clock, `tokio::time`, `tokio::spawn`,
/// `spawn_blocking`, libp2p's tokio TCP (nodelay) and tokio listeners for HTTP. discv5 runs on
/// the same runtime. Its methods must be called within a tokio runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    type HttpListener = tokio::net::TcpListener;
    type HttpStream = TokioIo<tokio::net::TcpStream>;
    type HttpTimer = TokioTimer;

    fn now_ms(&self) -> UnixMillis {
        system_now_ms()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        tokio::time::sleep(duration).boxed()
    }

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        drop(tokio::spawn(task));
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
        drop(tokio::task::spawn_blocking(work));
    }

    fn swarm_config(&self) -> libp2p::swarm::Config {
        libp2p::swarm::Config::with_tokio_executor()
    }

    fn transport(&self, keypair: &libp2p::identity::Keypair) -> Result<BoxedTransport, io::Error> {
        let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
        upgrade_transport(tcp, keypair)
    }

    fn bind_http(
        &self,
        addr: SocketAddr,
    ) -> BoxFuture<'static, io::Result<(Self::HttpListener, SocketAddr)>> {
        async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
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
            Ok((TokioIo::new(stream), remote))
        }
        .boxed()
    }

    fn http_timer(&self) -> Self::HttpTimer {
        TokioTimer::new()
    }

    fn tokio_handle(&self) -> Option<tokio::runtime::Handle> {
        Some(tokio::runtime::Handle::current())
    }
}
