//! discv5 for the async-std node. discv5 needs a tokio reactor, so the tokio crate's discovery
//! service ([`op_p2p_tokio::discovery::start`], the same code, not a copy) runs on ONE
//! dedicated tokio current-thread runtime in its own std thread. Records cross to the node
//! over the runtime-neutral bounded `futures` channel the service already writes with
//! `try_send`: a slow node loses records, discovery never stalls. [`DiscoveryThread::stop`]
//! stops the service, drops that runtime (cancelling discv5's tasks and closing its socket)
//! and joins the thread.

use std::thread::JoinHandle;

use futures::channel::{mpsc, oneshot};
use op_p2p_tokio::discovery::{self, DiscoveryConfig, DiscoveryError};

/// The discovery service on its own thread.
#[derive(Debug)]
pub struct DiscoveryThread {
    /// Our record, `enr:…`.
    pub enr: String,
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

/// Starts discv5 on a new thread; discovered records go to `out`. Returns once discv5 is up
/// (or failed to start, in which case the thread has ended).
pub async fn start(
    config: DiscoveryConfig,
    out: mpsc::Sender<String>,
) -> Result<DiscoveryThread, DiscoveryError> {
    let (ready_tx, ready_rx) = oneshot::channel::<Result<String, DiscoveryError>>();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("op-p2p-discv5".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ =
                        ready_tx.send(Err(DiscoveryError::Discv5(format!("tokio runtime: {e}"))));
                    return;
                }
            };
            rt.block_on(async move {
                match discovery::start(config, out).await {
                    Ok(service) => {
                        let _ = ready_tx.send(Ok(service.enr.clone()));
                        // Until stopped, or until the node (holding `stop`) is gone.
                        let _ = stopped.await;
                        service.stop();
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
            // Dropping the runtime cancels what discv5 still has running.
            drop(rt);
            tracing::debug!("discv5 thread stopped");
        })
        .map_err(DiscoveryError::Port)?;
    match ready_rx.await {
        Ok(Ok(enr)) => Ok(DiscoveryThread { enr, stop, thread }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(DiscoveryError::Discv5(
                "discovery thread ended early".into(),
            ))
        }
    }
}

impl DiscoveryThread {
    /// Stops discv5 and joins its thread (a few milliseconds: the runtime only has discv5's
    /// tasks to cancel).
    pub fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::error!("discv5 thread panicked");
        }
    }

    /// Whether the thread is still running (for tests and health checks).
    pub fn is_running(&self) -> bool {
        !self.thread.is_finished()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use op_p2p_core::testkit::keypair;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn discv5_runs_on_its_own_thread_and_stop_joins_it() {
        async_std::task::block_on(async {
            let (tx, _rx) = mpsc::channel(4);
            let d = start(
                DiscoveryConfig {
                    keypair: keypair(7),
                    chain_id: 901,
                    listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    udp_port: 0,
                    advertise_ip: None,
                    tcp_port: 9222,
                    bootnodes: vec![],
                    seeds: vec![],
                },
                tx,
            )
            .await
            .unwrap();
            assert!(d.enr.starts_with("enr:"));
            assert!(d.is_running());
            d.stop(); // returns only once the thread has ended
        });
    }

    #[test]
    fn a_start_failure_is_reported_and_the_thread_ends() {
        async_std::task::block_on(async {
            let (tx, _rx) = mpsc::channel(4);
            // The UDP port is taken: discv5 cannot bind.
            let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let r = start(
                DiscoveryConfig {
                    keypair: keypair(8),
                    chain_id: 901,
                    listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    udp_port: taken.local_addr().unwrap().port(),
                    advertise_ip: None,
                    tcp_port: 9222,
                    bootnodes: vec![],
                    seeds: vec![],
                },
                tx,
            )
            .await;
            assert!(matches!(r, Err(DiscoveryError::Discv5(_))), "{r:?}");
        });
    }
}
