//! The discv5 service (spec §7). discv5 needs a tokio reactor: on a tokio [`Runtime`] it runs
//! on that runtime; on any other it runs on one current-thread tokio runtime in a thread of its
//! own (`op-p2p-discv5`), which [`Discovery::stop`] ends and joins.
//!
//! It builds our record (the libp2p secp256k1 key, `ip`/`tcp`/`udp`, the `opstack` entry),
//! seeds the table from bootnodes and the persisted table, walks the DHT with random lookups,
//! and hands every record it meets to the node as `enr:` text over a bounded channel. A full
//! channel drops records rather than stalling discovery; the core filters them (chain id,
//! version 0) and dials.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use discv5::{ConfigBuilder, Discv5, Event, ListenConfig};
use op_p2p_core::discovery::enr_crate::{CombinedKey, NodeId};

/// A record with discv5's key type.
type Enr = op_p2p_core::discovery::enr_crate::Enr<CombinedKey>;
use futures::channel::mpsc;
use libp2p::identity::Keypair;
use op_p2p_core::discovery::{Bootnode, Host, local_enr};

use crate::runtime::Runtime;

/// Random lookups run this often once the table has some entries.
pub const LOOKUP_INTERVAL: Duration = Duration::from_secs(30);
/// ...and this often while it is nearly empty.
pub const FAST_LOOKUP_INTERVAL: Duration = Duration::from_secs(3);
/// Records buffered for the node before new ones are dropped.
pub const DISCOVERED_QUEUE: usize = 1024;

/// Why discovery could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The identity is not secp256k1 (op-node requires it: the ENR key is the libp2p key).
    #[error("the node key must be secp256k1")]
    KeyType,
    /// Our record could not be built.
    #[error(transparent)]
    Enr(#[from] op_p2p_core::discovery::EnrBuildError),
    /// discv5 refused its configuration.
    #[error("discv5: {0}")]
    Create(&'static str),
    /// discv5 could not start (for example its UDP port is taken). discv5's error type has no
    /// `std::error::Error` impl, so it is kept as is and shown with `Debug`.
    #[error("discv5 did not start: {0:?}")]
    Start(discv5::Error),
    /// No free UDP port could be found.
    #[error("udp port")]
    Port(#[source] std::io::Error),
    /// The thread or tokio runtime discv5 runs on could not be started.
    #[error("discv5 host thread")]
    Host(#[source] std::io::Error),
    /// The discv5 task or thread ended before reporting that it started.
    #[error("discv5 ended while starting")]
    Ended,
}

/// What discovery needs.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// The node identity (secp256k1).
    pub keypair: Keypair,
    /// Chain id for the `opstack` entry.
    pub chain_id: u64,
    /// IP to bind.
    pub listen_ip: IpAddr,
    /// UDP port; 0 picks a free one.
    pub udp_port: u16,
    /// IP to put in the record (defaults to `listen_ip`, or loopback if that is unspecified).
    pub advertise_ip: Option<IpAddr>,
    /// Our libp2p TCP port, for the record.
    pub tcp_port: u16,
    /// Bootnodes.
    pub bootnodes: Vec<Bootnode>,
    /// Records from the persisted table, to seed the DHT.
    pub seeds: Vec<String>,
    /// Keep records with a non-public address (loopback, private, link-local, CGNAT, the cloud
    /// metadata service, …; [`op_p2p_core::peers::netpolicy::non_public`]) out of discv5's
    /// table and out of its query results, so discv5 itself never sends packets there (an
    /// attacker's FINDNODE answers could otherwise point it at hosts inside the operator's
    /// network). Bootnodes with such an address are refused too. The node sets it when it has
    /// no `--p2p.netrestrict` list (public addresses only). ⚠ discv5's filter is a plain `fn`
    /// and cannot hold an operator's list: with a list, discv5 contacts what it learns and the
    /// list applies to the node's own dials only (as op-node applies it to discv5 only).
    pub public_only: bool,
}

/// discv5 running on a tokio runtime. Stopping it (or dropping it) shuts discv5 down.
struct DiscoveryService {
    /// Our record, `enr:…`.
    pub enr: String,
    /// Where discv5 listens.
    pub udp: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for DiscoveryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryService")
            .field("enr", &self.enr)
            .field("udp", &self.udp)
            .finish_non_exhaustive()
    }
}

/// Dropping the service stops it: the lookup task ends, and discv5 shuts down when its last
/// handle (held by that task) is dropped.
impl Drop for DiscoveryService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A running discovery service, on whichever host its runtime needs.
#[derive(Debug)]
pub struct Discovery {
    /// Our record, `enr:…`.
    pub enr: String,
    host: ServiceHost,
}

#[derive(Debug)]
enum ServiceHost {
    /// On the node's own tokio runtime.
    Tokio(DiscoveryService),
    /// On a tokio runtime in a thread of its own.
    Thread {
        stop: futures::channel::oneshot::Sender<()>,
        thread: std::thread::JoinHandle<()>,
    },
}

impl Discovery {
    /// Starts discv5 where `runtime` needs it (see the module docs); discovered records go to
    /// `out`. Returns once discv5 is up, or with why it could not start (a thread it started
    /// has ended by then).
    pub async fn start<R: Runtime>(
        runtime: &R,
        config: DiscoveryConfig,
        out: mpsc::Sender<String>,
    ) -> Result<Self, DiscoveryError> {
        if let Some(handle) = runtime.tokio_handle() {
            let service = handle
                .spawn(start(config, out))
                .await
                .map_err(|_| DiscoveryError::Ended)??;
            return Ok(Self {
                enr: service.enr.clone(),
                host: ServiceHost::Tokio(service),
            });
        }
        let (ready_tx, ready_rx) =
            futures::channel::oneshot::channel::<Result<String, DiscoveryError>>();
        let (stop, stopped) = futures::channel::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("op-p2p-discv5".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(DiscoveryError::Host(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    match start(config, out).await {
                        Ok(service) => {
                            let _ = ready_tx.send(Ok(service.enr.clone()));
                            // Until stopped, or until the node (holding `stop`) is gone.
                            let _ = stopped.await;
                            drop(service);
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
            .map_err(DiscoveryError::Host)?;
        let ready = ready_rx.await;
        match ready {
            Ok(Ok(enr)) => Ok(Self {
                enr,
                host: ServiceHost::Thread { stop, thread },
            }),
            other => {
                let _ = crate::runtime::blocking(runtime, move || thread.join()).await;
                Err(match other {
                    Ok(Err(e)) => e,
                    _ => DiscoveryError::Ended,
                })
            }
        }
    }

    /// Stops discv5 and, when it has a thread of its own, waits for that thread to end (on
    /// `runtime`'s blocking pool: a few milliseconds, the thread only has discv5 to cancel).
    pub async fn stop<R: Runtime>(self, runtime: &R) {
        match self.host {
            ServiceHost::Tokio(service) => drop(service),
            ServiceHost::Thread { stop, thread } => {
                let _ = stop.send(());
                if !matches!(
                    crate::runtime::blocking(runtime, move || thread.join().is_ok()).await,
                    Some(true)
                ) {
                    tracing::error!("discv5 thread panicked");
                }
            }
        }
    }

    /// Whether discv5 runs in a thread of its own that is still alive (for tests).
    pub fn has_live_thread(&self) -> bool {
        matches!(&self.host, ServiceHost::Thread { thread, .. } if !thread.is_finished())
    }
}

/// The IP our record carries, and whether discv5 may replace it with the address a majority of
/// its peers report seeing (its "ENR update" from PONG votes):
/// - an advertised IP (`--p2p.advertise.ip`) is the operator's word: used as is, never
///   replaced;
/// - a specific listen IP is used, and may be corrected by what peers see (behind NAT);
/// - listening on every interface (`0.0.0.0`, `::`) with nothing advertised: no IP at first,
///   learnt from peers, never a loopback address that is wrong for every peer outside.
fn record_ip(listen: IpAddr, advertise: Option<IpAddr>) -> (Option<IpAddr>, bool) {
    match advertise {
        Some(ip) => (Some(ip), false),
        None if listen.is_unspecified() => (None, true),
        None => (Some(listen), true),
    }
}

fn free_udp_port(ip: IpAddr) -> std::io::Result<u16> {
    Ok(UdpSocket::bind(SocketAddr::new(ip, 0))?
        .local_addr()?
        .port())
}

// ---- our record without sockets (`op-p2p enr`, `op-p2p bootnode`) ----

/// The discv5 key of a libp2p identity (the same secp256k1 key, spec §1.1).
fn discv5_key(keypair: &Keypair) -> Result<CombinedKey, DiscoveryError> {
    let secp = keypair
        .clone()
        .try_into_secp256k1()
        .map_err(|_| DiscoveryError::KeyType)?;
    let mut secret = secp.secret().to_bytes();
    CombinedKey::secp256k1_from_bytes(&mut secret).map_err(|_| DiscoveryError::KeyType)
}

/// The record discovery starts with for `config` when it listens on `udp_port` (not 0): the
/// same record [`Discovery::start`] advertises, built without opening a socket. A
/// `config.tcp_port` of 0 gives a discovery-only record (no `tcp` key).
pub fn local_record(config: &DiscoveryConfig, udp_port: u16) -> Result<String, DiscoveryError> {
    let key = discv5_key(&config.keypair)?;
    let (ip, _) = record_ip(config.listen_ip, config.advertise_ip);
    let enr: Enr = local_enr(&key, 1, config.chain_id, ip, config.tcp_port, udp_port)?;
    Ok(enr.to_base64())
}

// ---- end of our record without sockets ----

/// discv5's table filter for [`DiscoveryConfig::public_only`]: a record passes when every IP it
/// carries is public. A record with no IP passes (discv5 cannot contact it anyway).
fn public_record(enr: &Enr) -> bool {
    use op_p2p_core::peers::netpolicy::non_public;
    enr.ip4().is_none_or(|ip| non_public(ip.into()).is_none())
        && enr.ip6().is_none_or(|ip| non_public(ip.into()).is_none())
}

/// Starts discv5 on the current tokio runtime; discovered records go to `out`.
async fn start(
    config: DiscoveryConfig,
    out: mpsc::Sender<String>,
) -> Result<DiscoveryService, DiscoveryError> {
    let key = discv5_key(&config.keypair)?;
    let udp_port = if config.udp_port == 0 {
        free_udp_port(config.listen_ip).map_err(DiscoveryError::Port)?
    } else {
        config.udp_port
    };
    let (ip, learn_ip) = record_ip(config.listen_ip, config.advertise_ip);
    let enr: Enr = local_enr(&key, 1, config.chain_id, ip, config.tcp_port, udp_port)?;
    let text = enr.to_base64();
    let listen = ListenConfig::from_ip(config.listen_ip, udp_port);
    let mut builder = ConfigBuilder::new(listen);
    if !learn_ip {
        builder.disable_enr_update();
    }
    if config.public_only {
        builder.table_filter(public_record);
    }
    let mut discv5 = Discv5::new(enr, key, builder.build()).map_err(DiscoveryError::Create)?;
    discv5.start().await.map_err(DiscoveryError::Start)?;
    let discv5 = Arc::new(discv5);
    tracing::info!(enr = %text, udp = udp_port, "discv5 started");

    for seed in &config.seeds {
        if let Ok(r) = seed.parse::<Enr>() {
            let _ = discv5.add_enr(r);
        }
    }
    let mut enodes = Vec::new();
    for b in &config.bootnodes {
        match b {
            Bootnode::Enr(r) => match r.to_base64().parse::<Enr>() {
                Ok(r) => {
                    if let Err(e) = discv5.add_enr(r) {
                        tracing::warn!(
                            error = e,
                            "bootnode not added (one with a private or loopback address needs \
                             --p2p.netrestrict covering it)"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "bootnode record does not parse"),
            },
            Bootnode::Enode(enode) => enodes.push(enode.clone()),
        }
    }

    let d = discv5.clone();
    let task = tokio::spawn(async move {
        // Enode bootnodes carry no record: ask them for it (resolving DNS names first).
        for enode in enodes {
            let ip = match &enode.host {
                Host::Ip(ip) => Some(*ip),
                Host::Dns(name) => tokio::net::lookup_host((name.as_str(), enode.udp_port))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .map(|a| a.ip()),
            };
            let Some(ip) = ip else {
                tracing::warn!(%enode, "bootnode host does not resolve");
                continue;
            };
            let proto = if ip.is_ipv4() { "ip4" } else { "ip6" };
            let addr = format!(
                "/{proto}/{ip}/udp/{}/p2p/{}",
                enode.udp_port,
                enode.peer_id()
            );
            let Ok(ma) = addr.parse::<libp2p::Multiaddr>() else {
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(5), d.request_enr(ma)).await {
                Ok(Ok(r)) => {
                    let _ = d.add_enr(r);
                }
                other => tracing::debug!(%enode, ?other, "bootnode did not answer"),
            }
        }
        run(d, out).await;
    });
    Ok(DiscoveryService {
        enr: text,
        udp: SocketAddr::new(config.listen_ip, udp_port),
        task,
    })
}

async fn run(discv5: Arc<Discv5>, mut out: mpsc::Sender<String>) {
    let mut events = match discv5.event_stream().await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "discv5 event stream unavailable");
            return;
        }
    };
    let forward = |r: &Enr, out: &mut mpsc::Sender<String>| {
        // A slow node loses records; discovery keeps walking.
        let _ = out.try_send(r.to_base64());
    };
    for r in discv5.table_entries_enr() {
        forward(&r, &mut out);
    }
    let mut next_lookup = tokio::time::Instant::now();
    loop {
        let lookup_due = tokio::time::sleep_until(next_lookup);
        tokio::select! {
            ev = events.recv() => match ev {
                Some(Event::Discovered(r)) | Some(Event::SessionEstablished(r, _)) => forward(&r, &mut out),
                Some(_) => {}
                None => return,
            },
            _ = lookup_due => {
                let found = discv5.find_node(NodeId::random()).await.unwrap_or_default();
                for r in &found {
                    forward(r, &mut out);
                }
                let interval = if discv5.table_entries_enr().len() < 8 { FAST_LOOKUP_INTERVAL } else { LOOKUP_INTERVAL };
                next_lookup = tokio::time::Instant::now() + interval;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn the_record_ip_is_the_advertised_one_never_a_guessed_loopback() {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let public = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
        let private = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(record_ip(any, Some(public)), (Some(public), false));
        assert_eq!(record_ip(private, Some(public)), (Some(public), false));
        assert_eq!(record_ip(private, None), (Some(private), true));
        assert_eq!(record_ip(any, None), (None, true));
        assert_eq!(record_ip("::".parse().unwrap(), None), (None, true));
    }

    fn config(listen: IpAddr, advertise: Option<IpAddr>, tcp_port: u16) -> DiscoveryConfig {
        DiscoveryConfig {
            keypair: op_p2p_core::testkit::keypair(5),
            chain_id: 901,
            listen_ip: listen,
            udp_port: 0,
            advertise_ip: advertise,
            tcp_port,
            bootnodes: vec![],
            seeds: vec![],
            public_only: false,
        }
    }

    fn started_with(config: DiscoveryConfig) -> Enr {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, _rx) = mpsc::channel(4);
            let service = start(config, tx).await.unwrap();
            service.enr.parse().unwrap()
        })
    }

    fn started(listen: IpAddr, advertise: Option<IpAddr>) -> Enr {
        started_with(config(listen, advertise, 9222))
    }

    /// A record at `ip`:`udp`, signed by test key `i`.
    fn record_at(i: u64, ip: IpAddr, udp: u16) -> Enr {
        let key = discv5_key(&op_p2p_core::testkit::keypair(i)).unwrap();
        local_enr(&key, 1, 901, Some(ip), 9222, udp).unwrap()
    }

    #[test]
    fn the_public_only_filter_passes_public_records_only() {
        for (ip, public) in [
            ("8.8.8.8", true),
            ("2a00:1450:4001::1", true),
            ("127.0.0.1", false),
            ("10.1.2.3", false),
            ("192.168.0.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("::1", false),
            ("fe80::1", false),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let expected = op_p2p_core::peers::netpolicy::non_public(ip).is_none();
            assert_eq!(public_record(&record_at(1, ip, 30303)), expected, "{ip}");
            if public {
                assert!(expected, "{ip} is public");
            }
        }
    }

    /// On real sockets: a bootnode record pointing at a loopback UDP socket (an attacker's
    /// FINDNODE answer could point anywhere inside the operator's network) gets packets from
    /// a permissive discv5 and none at all from a `public_only` one.
    #[test]
    fn a_public_only_node_sends_nothing_to_a_loopback_record() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for public_only in [false, true] {
                let target = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .unwrap();
                let port = target.local_addr().unwrap().port();
                let bootnode = record_at(7, Ipv4Addr::LOCALHOST.into(), port);
                let text = bootnode.to_base64();
                let mut c = config(Ipv4Addr::LOCALHOST.into(), None, 9222);
                c.bootnodes = vec![Bootnode::parse(&text).unwrap()];
                c.public_only = public_only;
                let (tx, _rx) = mpsc::channel(4);
                let service = start(c, tx).await.unwrap();
                let mut buf = [0u8; 1500];
                let got = tokio::time::timeout(Duration::from_secs(3), target.recv(&mut buf)).await;
                drop(service);
                if public_only {
                    assert!(
                        got.is_err(),
                        "a public-only node sent a packet to 127.0.0.1"
                    );
                } else {
                    assert!(got.is_ok(), "a permissive node contacts its bootnode");
                }
            }
        });
    }

    /// `op-p2p enr` computes, without a socket, the record discv5 starts with.
    #[test]
    fn the_socketless_record_is_the_started_one() {
        let public = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
        for (listen, advertise, tcp) in [
            (IpAddr::V4(Ipv4Addr::LOCALHOST), None, 9222),
            (IpAddr::V4(Ipv4Addr::LOCALHOST), Some(public), 0),
            (IpAddr::V4(Ipv4Addr::UNSPECIFIED), None, 0),
        ] {
            let running = started_with(config(listen, advertise, tcp));
            let udp = running.udp4().expect("a udp port");
            let offline: Enr = local_record(&config(listen, advertise, tcp), udp)
                .unwrap()
                .parse()
                .unwrap();
            // The same signed content (signatures differ: signing is randomised).
            assert!(offline.compare_content(&running), "{offline} vs {running}");
            assert_eq!(running.tcp4(), (tcp != 0).then_some(tcp));
        }
        let ed = DiscoveryConfig {
            keypair: Keypair::generate_ed25519(),
            ..config(IpAddr::V4(Ipv4Addr::LOCALHOST), None, 1)
        };
        assert!(matches!(local_record(&ed, 1), Err(DiscoveryError::KeyType)));
    }

    #[test]
    fn a_running_node_advertises_what_the_operator_gave() {
        let public = Ipv4Addr::new(203, 0, 113, 7);
        let enr = started(IpAddr::V4(Ipv4Addr::LOCALHOST), Some(IpAddr::V4(public)));
        assert_eq!(enr.ip4(), Some(public));
        assert_eq!(enr.tcp4(), Some(9222));
        let enr = started(IpAddr::V4(Ipv4Addr::UNSPECIFIED), None);
        assert_eq!(
            enr.ip4(),
            None,
            "no loopback guess for a node on every interface"
        );
        assert_eq!(enr.tcp4(), Some(9222));
    }
}
