//! [`spawn`]: the op-p2p node on async-std, with the same names and behaviour as
//! `op_p2p_tokio::spawn`. Everything runtime-neutral comes from
//! [`op_p2p_core::swarm::assemble`]; this file brings only the async-std parts: our TCP
//! transport, the executor, timers ([`AsyncStdRuntime`]), spawning the driver, discv5 on its
//! tokio thread, and the HTTP listeners.

use std::time::Duration;

use futures::FutureExt;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use op_p2p_core::UnixMillis;
use op_p2p_core::swarm::assemble::{self, WireParams, Wired};
use op_p2p_core::swarm::driver::{Runtime, system_now_ms};
use op_p2p_core::swarm::{NodeConfig, NodeHandle, upgrade_transport};
use op_p2p_tokio::discovery::DISCOVERED_QUEUE;
use op_p2p_tokio::{SpawnError, SpawnOptions, discovery_config};

use crate::transport::AsyncStdTcp;

/// The async-std side of the driver's [`Runtime`]: the system clock and
/// `async_std::task::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

impl Runtime for AsyncStdRuntime {
    fn now_ms(&self) -> UnixMillis {
        system_now_ms()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        async_std::task::sleep(duration).boxed()
    }
}

/// Starts a node on async-std and returns its handle. The same [`NodeConfig`], options,
/// errors, handle and data dir as `op_p2p_tokio::spawn`: a node can move between the two.
///
/// ```no_run
/// # async fn demo(config: op_p2p_core::swarm::NodeConfig) -> Result<(), Box<dyn std::error::Error>> {
/// use futures::StreamExt;
/// let mut node = op_p2p_async_std::spawn(config, Default::default()).await?;
/// let mut blocks = node.blocks().expect("taken once");
/// if let Some(block) = blocks.next().await {
///     println!("block {}", block.envelope.payload.as_v1().block_number);
/// }
/// node.shutdown().await; // writes state to the data dir, stops discv5's thread
/// # Ok(()) }
/// ```
///
/// The start-up state machine is boxed, so the future this returns is small and can be awaited
/// directly on a thread with a small stack (unboxed, ≈ 14 KB in a debug build, it overflowed a
/// 2 MiB test thread's stack once nested in a test body).
pub async fn spawn(config: NodeConfig, options: SpawnOptions) -> Result<NodeHandle, SpawnError> {
    Box::pin(spawn_inner(config, options)).await
}

async fn spawn_inner(config: NodeConfig, options: SpawnOptions) -> Result<NodeHandle, SpawnError> {
    let prepared = assemble::prepare(&config, system_now_ms())?;
    let transport = upgrade_transport(AsyncStdTcp::new(), &config.keypair)
        .map_err(|e| SpawnError::Transport(e.to_string()))?;
    let (mut swarm, registry) = assemble::build_swarm(
        &config,
        prepared.node,
        transport,
        libp2p::swarm::Config::with_executor(|f| {
            async_std::task::spawn(f);
        }),
    )?;
    let bound = assemble::listen(&mut swarm, &config, &AsyncStdRuntime).await?;
    let tcp_port = assemble::tcp_port(&bound).unwrap_or(config.tcp_port);

    let (discovered_tx, discovered_rx) = mpsc::channel(DISCOVERED_QUEUE);
    let disc = if config.discovery {
        Some(
            crate::discovery::start(
                discovery_config(&config, tcp_port, prepared.seeds),
                discovered_tx,
            )
            .await?,
        )
    } else {
        drop(discovered_tx);
        None
    };
    let Wired {
        driver,
        http,
        mut parts,
    } = assemble::wire(
        swarm,
        &config,
        AsyncStdRuntime,
        WireParams {
            events: options.events,
            datadir: prepared.datadir,
            enr: disc.as_ref().map(|d| d.enr.clone()),
            bound,
            discovered: discovered_rx,
            registry,
        },
    );
    // From here on, a failure must not leave discv5's thread behind.
    let mut stops: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
    if let Some(d) = disc {
        stops.push(Box::new(move || d.stop()));
    }
    let task = async_std::task::spawn(driver.run());
    parts.on_shutdown.push(Box::new(move || {
        // The driver has stopped (shutdown waits for it); cancel whatever is left.
        drop(async_std::task::spawn(task.cancel()));
    }));
    // JSON-RPC and metrics: one HTTP service; one listener if both share an address.
    let mut bound_http = Vec::new();
    for addr in assemble::http_addrs(&config) {
        let bound = match async_std::net::TcpListener::bind(addr).await {
            Ok(l) => l.local_addr().map(|local| (l, local)),
            Err(e) => Err(e),
        };
        let (listener, local) = match bound {
            Ok(x) => x,
            Err(e) => {
                // Stop the driver, the listeners opened so far and discv5's thread.
                for stop in parts.on_shutdown.drain(..).chain(stops) {
                    stop();
                }
                return Err(SpawnError::Http {
                    addr,
                    error: e.to_string(),
                });
            }
        };
        let (stop, stopped) = futures::channel::oneshot::channel::<()>();
        async_std::task::spawn(crate::http::serve(listener, http.clone(), async move {
            let _ = stopped.await;
        }));
        tracing::info!(%local, "http (json-rpc, /metrics) listening");
        parts.on_shutdown.push(Box::new(move || {
            let _ = stop.send(());
        }));
        bound_http.push((addr, local));
    }
    assemble::set_http_addrs(&mut parts, &config, &bound_http);
    parts.on_shutdown.extend(stops);
    Ok(NodeHandle::from_parts(parts))
}
