//! Bootnode probing for `op-p2p bootnodes check`: an ephemeral discv5 node (fresh key, no
//! `opstack` entry, a free UDP port) asks each bootnode over the real discv5 wire:
//! - an `enr:` bootnode gets a PING (its round trip is the RTT) and, if it answers, a FINDNODE
//!   at distance 0, which returns the record it runs now;
//! - an `enode://` bootnode has no record, so it is asked for one (discv5's `request_enr`: a
//!   handshake and FINDNODE at distance 0); the RTT is that exchange's. A DNS host is resolved
//!   first.
//!
//! Every wait has a deadline: each bootnode gets `timeout` for all of its steps (DNS, PING,
//! FINDNODE), and they are probed concurrently, so the whole probe takes about `timeout`.
//! Needs a tokio runtime (discv5 does).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use discv5::{ConfigBuilder, Discv5, ListenConfig};
use op_p2p_core::discovery::enr_crate::CombinedKey;
use op_p2p_core::discovery::{Bootnode, Enode, Host};

use crate::discovery::DiscoveryError;

/// A record with discv5's key type.
type Enr = op_p2p_core::discovery::enr_crate::Enr<CombinedKey>;

/// Most bootnodes probed at once (a list longer than this is refused by the caller's bounds
/// anyway; this keeps one probe's memory and sockets' work bounded).
pub const MAX_PROBED: usize = 1024;

/// What probing one bootnode found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// The UDP address asked (after DNS resolution), if there was one.
    pub addr: Option<SocketAddr>,
    /// Whether it answered over discv5 within the deadline.
    pub reachable: bool,
    /// The round trip of the PING (`enr:`) or of the record request (`enode://`).
    pub rtt: Option<Duration>,
    /// The record it returned (FINDNODE distance 0), `enr:…`, if it did.
    pub live_record: Option<String>,
    /// Why it is not reachable, or why no record came back.
    pub error: Option<String>,
}

impl ProbeOutcome {
    fn failed(addr: Option<SocketAddr>, error: impl Into<String>) -> Self {
        Self {
            addr,
            reachable: false,
            rtt: None,
            live_record: None,
            error: Some(error.into()),
        }
    }
}

/// Probes `bootnodes` (at most [`MAX_PROBED`]; the rest are reported as not probed) from an
/// ephemeral discv5 node bound to `listen_ip` on a free port, each within `timeout`. The
/// outcomes are in the order of `bootnodes`. Fails only if the local node cannot start.
pub async fn probe_bootnodes(
    listen_ip: IpAddr,
    bootnodes: &[Bootnode],
    timeout: Duration,
) -> Result<Vec<ProbeOutcome>, DiscoveryError> {
    let key = CombinedKey::generate_secp256k1();
    let local: Enr = Enr::builder().build(&key).map_err(|e| {
        DiscoveryError::Enr(op_p2p_core::discovery::EnrBuildError::Build(e.to_string()))
    })?;
    let mut builder = ConfigBuilder::new(ListenConfig::from_ip(listen_ip, 0));
    builder
        .request_timeout(timeout)
        .query_timeout(timeout)
        .request_retries(0)
        // We only ask; what the bootnodes report seeing is not ours to advertise.
        .disable_enr_update();
    let mut discv5 = Discv5::new(local, key, builder.build()).map_err(DiscoveryError::Create)?;
    discv5.start().await.map_err(DiscoveryError::Start)?;
    let discv5 = &discv5;
    let probes = bootnodes.iter().enumerate().map(|(i, b)| async move {
        if i >= MAX_PROBED {
            return ProbeOutcome::failed(None, format!("not probed: more than {MAX_PROBED}"));
        }
        match tokio::time::timeout(timeout, probe_one(discv5, b)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                ProbeOutcome::failed(address_hint(b), format!("no answer within {timeout:?}"))
            }
        }
    });
    let outcomes = futures::future::join_all(probes).await;
    Ok(outcomes)
}

/// The UDP address of a bootnode, if it is known without DNS.
fn address_hint(b: &Bootnode) -> Option<SocketAddr> {
    match b {
        Bootnode::Enr(r) => r
            .udp4_socket()
            .map(SocketAddr::V4)
            .or(r.udp6_socket().map(SocketAddr::V6)),
        Bootnode::Enode(e) => e.udp_socket(),
    }
}

async fn probe_one(discv5: &Discv5, b: &Bootnode) -> ProbeOutcome {
    match b {
        Bootnode::Enr(record) => probe_record(discv5, record.to_base64()).await,
        Bootnode::Enode(enode) => probe_enode(discv5, enode).await,
    }
}

async fn probe_record(discv5: &Discv5, text: String) -> ProbeOutcome {
    let record: Enr = match text.parse() {
        Ok(r) => r,
        Err(e) => return ProbeOutcome::failed(None, format!("record: {e}")),
    };
    let addr = record
        .udp4_socket()
        .map(SocketAddr::V4)
        .or(record.udp6_socket().map(SocketAddr::V6));
    if addr.is_none() {
        return ProbeOutcome::failed(None, "the record has no UDP address");
    }
    let started = Instant::now();
    if let Err(e) = discv5.send_ping(record.clone()).await {
        return ProbeOutcome::failed(addr, format!("ping: {e:?}"));
    }
    let rtt = started.elapsed();
    let (live_record, error) = match discv5.find_node_designated_peer(record, vec![0]).await {
        Ok(found) => match found.into_iter().next() {
            Some(r) => (Some(r.to_base64()), None),
            None => (None, Some("FINDNODE 0 returned no record".to_owned())),
        },
        Err(e) => (None, Some(format!("findnode: {e:?}"))),
    };
    ProbeOutcome {
        addr,
        reachable: true,
        rtt: Some(rtt),
        live_record,
        error,
    }
}

async fn probe_enode(discv5: &Discv5, enode: &Enode) -> ProbeOutcome {
    let ip = match &enode.host {
        Host::Ip(ip) => *ip,
        Host::Dns(name) => match tokio::net::lookup_host((name.as_str(), enode.udp_port)).await {
            Ok(mut addrs) => match addrs.next() {
                Some(a) => a.ip(),
                None => return ProbeOutcome::failed(None, format!("{name} has no address")),
            },
            Err(e) => return ProbeOutcome::failed(None, format!("resolve {name}: {e}")),
        },
    };
    let addr = SocketAddr::new(ip, enode.udp_port);
    let proto = if ip.is_ipv4() { "ip4" } else { "ip6" };
    let multiaddr = match format!(
        "/{proto}/{ip}/udp/{}/p2p/{}",
        enode.udp_port,
        enode.peer_id()
    )
    .parse::<libp2p::Multiaddr>()
    {
        Ok(m) => m,
        Err(e) => return ProbeOutcome::failed(Some(addr), format!("address: {e}")),
    };
    let started = Instant::now();
    match discv5.request_enr(multiaddr).await {
        Ok(record) => ProbeOutcome {
            addr: Some(addr),
            reachable: true,
            rtt: Some(started.elapsed()),
            live_record: Some(record.to_base64()),
            error: None,
        },
        Err(e) => ProbeOutcome::failed(Some(addr), format!("request record: {e:?}")),
    }
}
