//! `op_p2p_async_std::transport::AsyncStdTcp`, the libp2p TCP transport of the async-std node,
//! on real loopback sockets: it listens on port 0 and reports the real port, dials and carries
//! bytes both ways with `TCP_NODELAY`, reports a bind error from `listen_on`, and closes a
//! removed listener's socket. Its address parsing, which opens no socket, is tested next to it.

use std::time::Duration;

use futures::future::Ready;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::Endpoint;
use libp2p::core::transport::{DialOpts, ListenerId, PortUse, TransportError, TransportEvent};
use libp2p::{Multiaddr, Transport};
use op_p2p_async_std::transport::{AsyncStdTcp, socket_addr};
use op_p2p_tests::{Rt, within};

/// Every step here is one loopback round trip; this only turns a hang into a failure.
const STEP: Duration = Duration::from_secs(10);

type Event = TransportEvent<Ready<std::io::Result<async_std::net::TcpStream>>, std::io::Error>;

fn opts() -> DialOpts {
    DialOpts {
        role: Endpoint::Dialer,
        port_use: PortUse::New,
    }
}

/// The transport's next event, within [`STEP`].
async fn next(t: &mut AsyncStdTcp) -> Event {
    within(STEP, "transport event", t.next())
        .await
        .expect("the transport never ends")
}

/// Listens on `listen` (port 0), dials the reported address with a second transport and
/// echoes bytes over the accepted stream.
async fn echo_over(listen: &str) {
    let mut t = AsyncStdTcp::new();
    let id = ListenerId::next();
    t.listen_on(id, listen.parse().unwrap()).unwrap();
    let addr = match next(&mut t).await {
        TransportEvent::NewAddress {
            listener_id,
            listen_addr,
        } => {
            assert_eq!(listener_id, id);
            listen_addr
        }
        _ => panic!("expected NewAddress"),
    };
    let port = socket_addr(&addr, false).unwrap().port();
    assert_ne!(port, 0, "the real port is reported");
    assert!(
        addr.to_string()
            .starts_with(listen.trim_end_matches("/tcp/0"))
    );

    let mut dialer = AsyncStdTcp::new();
    let dial = dialer.dial(addr.clone(), opts()).unwrap();
    let client = async_std::task::spawn(async move {
        let mut s = dial.await.unwrap();
        assert!(s.nodelay().unwrap());
        s.write_all(b"ping over tcp").await.unwrap();
        let mut back = [0u8; 13];
        s.read_exact(&mut back).await.unwrap();
        back
    });
    let (upgrade, local, remote) = match next(&mut t).await {
        TransportEvent::Incoming {
            listener_id,
            upgrade,
            local_addr,
            send_back_addr,
        } => {
            assert_eq!(listener_id, id);
            (upgrade, local_addr, send_back_addr)
        }
        _ => panic!("expected Incoming"),
    };
    assert_eq!(local, addr);
    assert!(socket_addr(&remote, false).is_some());
    let mut s = upgrade.await.unwrap();
    assert!(s.nodelay().unwrap());
    let mut buf = [0u8; 13];
    within(STEP, "client bytes", s.read_exact(&mut buf))
        .await
        .unwrap();
    s.write_all(&buf).await.unwrap();
    let back = within(STEP, "echo", client).await;
    assert_eq!(&back, b"ping over tcp");
}

#[test]
fn listens_on_ipv4_port_zero_dials_and_echoes() {
    Rt::AsyncStd.block_on(echo_over("/ip4/127.0.0.1/tcp/0"));
}

#[test]
fn listens_on_ipv6_port_zero_dials_and_echoes() {
    // Hosts without IPv6 loopback cannot run this; everything else must.
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    }
    Rt::AsyncStd.block_on(echo_over("/ip6/::1/tcp/0"));
}

#[test]
fn a_bind_error_is_reported_by_listen_on() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut t = AsyncStdTcp::new();
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let r = t.listen_on(ListenerId::next(), addr);
    assert!(matches!(r, Err(TransportError::Other(_))));
}

#[test]
fn a_removed_listener_closes_its_socket_and_says_so() {
    Rt::AsyncStd.block_on(async {
        let mut t = AsyncStdTcp::new();
        let id = ListenerId::next();
        t.listen_on(id, "/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let addr = match next(&mut t).await {
            TransportEvent::NewAddress { listen_addr, .. } => listen_addr,
            _ => panic!("expected NewAddress"),
        };
        assert!(t.remove_listener(id));
        assert!(!t.remove_listener(id), "already gone");
        assert!(!t.remove_listener(ListenerId::next()), "never existed");
        assert!(matches!(
            next(&mut t).await,
            TransportEvent::AddressExpired { listener_id, listen_addr }
                if listener_id == id && listen_addr == addr
        ));
        assert!(matches!(
            next(&mut t).await,
            TransportEvent::ListenerClosed { listener_id, reason: Ok(()) } if listener_id == id
        ));
        // Nothing accepts on that port any more.
        let sa = socket_addr(&addr, false).unwrap();
        assert!(async_std::net::TcpStream::connect(sa).await.is_err());
    });
}
