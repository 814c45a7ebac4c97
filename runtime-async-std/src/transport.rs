//! A plain TCP [`libp2p::core::Transport`] over `async_std::net`.
//!
//! libp2p 0.56 dropped its async-std TCP transport and `libp2p-tcp`'s provider trait is
//! private, so this is the small transport the async-std node runs on (before
//! [`op_p2p_node::upgrade_transport`] adds Noise and Yamux).
//!
//! - Addresses: `/ip4/<ip>/tcp/<port>` and `/ip6/<ip>/tcp/<port>` only; anything else is
//!   [`TransportError::MultiaddrNotSupported`] (for a dial, a trailing `/p2p/<id>` is allowed,
//!   as libp2p-tcp allows it).
//! - Listening binds at once; port 0 picks a free port and [`TransportEvent::NewAddress`]
//!   reports the real one. An unspecified IP (`0.0.0.0`, `::`) is reported as is: unlike
//!   libp2p-tcp this transport does not watch interfaces to expand it.
//! - A failed `accept` is a [`TransportEvent::ListenerError`] and the listener keeps going
//!   (after [`ACCEPT_BACKOFF`], so a full fd table does not spin the loop);
//!   [`Transport::remove_listener`] closes the socket and reports
//!   [`TransportEvent::ListenerClosed`] with `Ok(())`.
//! - Every stream, accepted or dialled, has `TCP_NODELAY` set.
//! - Dials always use a fresh ephemeral port (no port reuse: our node needs no hole punching).

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_std::net::{TcpListener, TcpStream};
use futures::future::{BoxFuture, Ready};
use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt};
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, Transport};

/// Pause after a failed `accept` before accepting again.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// `/ip4|ip6/<ip>/tcp/<port>` (optionally followed by `/p2p/<id>` when `allow_p2p`) as a
/// socket address; `None` for anything else.
pub fn socket_addr(addr: &Multiaddr, allow_p2p: bool) -> Option<SocketAddr> {
    let mut it = addr.iter();
    let ip: IpAddr = match it.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    let port = match it.next()? {
        Protocol::Tcp(port) => port,
        _ => return None,
    };
    match it.next() {
        None => {}
        Some(Protocol::P2p(_)) if allow_p2p && it.next().is_none() => {}
        Some(_) => return None,
    }
    Some(SocketAddr::new(ip, port))
}

fn multiaddr(addr: SocketAddr) -> Multiaddr {
    op_p2p_node::tcp_multiaddr(addr)
}

type Accepted = io::Result<(TcpStream, SocketAddr)>;

struct Listener {
    id: ListenerId,
    local: SocketAddr,
    /// Accepted connections (backs off after an error). Dropping it closes the socket.
    incoming: BoxStream<'static, Accepted>,
}

fn accept_stream(listener: TcpListener) -> BoxStream<'static, Accepted> {
    futures::stream::unfold((listener, false), |(listener, failed)| async move {
        if failed {
            async_std::task::sleep(ACCEPT_BACKOFF).await;
        }
        let r = listener.accept().await;
        let failed = r.is_err();
        Some((r, (listener, failed)))
    })
    .boxed()
}

/// TCP over async-std (see the module docs). Listeners: one per `listen_on`, each until it is
/// removed; no other state.
#[derive(Default)]
pub struct AsyncStdTcp {
    listeners: Vec<Listener>,
    /// Events produced outside `poll` (new addresses, closed listeners), delivered first.
    /// At most two per listener ever opened and removed since the last poll.
    pending: VecDeque<TransportEvent<Ready<Result<TcpStream, io::Error>>, io::Error>>,
    waker: Option<Waker>,
}

impl std::fmt::Debug for AsyncStdTcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncStdTcp")
            .field(
                "listeners",
                &self.listeners.iter().map(|l| l.local).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl AsyncStdTcp {
    /// A transport with no listeners.
    pub fn new() -> Self {
        Self::default()
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    // Bind synchronously (it does not block) so `listen_on` can report errors at once.
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    Ok(TcpListener::from(std_listener))
}

impl Transport for AsyncStdTcp {
    type Output = TcpStream;
    type Error = io::Error;
    type ListenerUpgrade = Ready<Result<TcpStream, io::Error>>;
    type Dial = BoxFuture<'static, Result<TcpStream, io::Error>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        let Some(sa) = socket_addr(&addr, false) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let listener = bind(sa).map_err(TransportError::Other)?;
        let local = listener.local_addr().map_err(TransportError::Other)?;
        tracing::debug!(%local, "tcp listening");
        self.listeners.push(Listener {
            id,
            local,
            incoming: accept_stream(listener),
        });
        self.pending.push_back(TransportEvent::NewAddress {
            listener_id: id,
            listen_addr: multiaddr(local),
        });
        self.wake();
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let Some(i) = self.listeners.iter().position(|l| l.id == id) else {
            return false;
        };
        let l = self.listeners.remove(i);
        self.pending.push_back(TransportEvent::AddressExpired {
            listener_id: id,
            listen_addr: multiaddr(l.local),
        });
        self.pending.push_back(TransportEvent::ListenerClosed {
            listener_id: id,
            reason: Ok(()),
        });
        self.wake();
        true
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        _opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let Some(sa) = socket_addr(&addr, true) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        if sa.port() == 0 || sa.ip().is_unspecified() {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        Ok(async move {
            let stream = TcpStream::connect(sa).await?;
            stream.set_nodelay(true)?;
            Ok(stream)
        }
        .boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        if let Some(e) = self.pending.pop_front() {
            return Poll::Ready(e);
        }
        let this = &mut *self;
        let mut closed = None;
        let mut ready = None;
        for (i, l) in this.listeners.iter_mut().enumerate() {
            match l.incoming.poll_next_unpin(cx) {
                Poll::Pending => {}
                Poll::Ready(None) => {
                    closed = Some(i);
                    break;
                }
                Poll::Ready(Some(Ok((stream, remote)))) => {
                    let event = match stream.set_nodelay(true) {
                        Ok(()) => TransportEvent::Incoming {
                            listener_id: l.id,
                            upgrade: futures::future::ready(Ok(stream)),
                            local_addr: multiaddr(l.local),
                            send_back_addr: multiaddr(remote),
                        },
                        Err(error) => TransportEvent::ListenerError {
                            listener_id: l.id,
                            error,
                        },
                    };
                    ready = Some((i, event));
                    break;
                }
                Poll::Ready(Some(Err(error))) => {
                    tracing::warn!(local = %l.local, %error, "tcp accept failed");
                    ready = Some((
                        i,
                        TransportEvent::ListenerError {
                            listener_id: l.id,
                            error,
                        },
                    ));
                    break;
                }
            }
        }
        if let Some(i) = closed {
            // The accept stream never ends on its own; kept for completeness.
            let l = this.listeners.remove(i);
            return Poll::Ready(TransportEvent::ListenerClosed {
                listener_id: l.id,
                reason: Ok(()),
            });
        }
        if let Some((i, event)) = ready {
            // Fairness: the listener that just yielded goes last.
            let l = this.listeners.remove(i);
            this.listeners.push(l);
            return Poll::Ready(event);
        }
        this.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Stream for AsyncStdTcp {
    type Item = TransportEvent<Ready<Result<TcpStream, io::Error>>, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Transport::poll(self, cx).map(Some)
    }
}

#[cfg(test)]
mod tests {
    //! Address handling, which opens no socket. The transport on real sockets (listen, dial,
    //! bind errors, removing a listener) is tested in `tests/tests/async_std_transport.rs`.
    use super::*;
    use libp2p::core::Endpoint;
    use libp2p::core::transport::PortUse;

    fn opts() -> DialOpts {
        DialOpts {
            role: Endpoint::Dialer,
            port_use: PortUse::New,
        }
    }

    #[test]
    fn only_ip_tcp_addresses_are_supported() {
        let mut t = AsyncStdTcp::new();
        for bad in [
            "/ip4/127.0.0.1/udp/1",
            "/dns4/localhost/tcp/1",
            "/ip4/127.0.0.1/tcp/1/ws",
            "/ip4/127.0.0.1",
            "/ip4/127.0.0.1/udp/1/quic-v1",
        ] {
            let a: Multiaddr = bad.parse().unwrap();
            assert!(
                matches!(
                    t.listen_on(ListenerId::next(), a.clone()),
                    Err(TransportError::MultiaddrNotSupported(x)) if x == a
                ),
                "{bad}"
            );
            assert!(
                matches!(
                    t.dial(a.clone(), opts()),
                    Err(TransportError::MultiaddrNotSupported(_))
                ),
                "{bad}"
            );
        }
        // A dial address may end in /p2p/<id>; a listen address may not.
        let with_id: Multiaddr = format!(
            "/ip4/127.0.0.1/tcp/1/p2p/{}",
            op_p2p_node::core::testkit::peer_id(1)
        )
        .parse()
        .unwrap();
        assert_eq!(
            socket_addr(&with_id, true),
            Some("127.0.0.1:1".parse().unwrap())
        );
        assert_eq!(socket_addr(&with_id, false), None);
        // Port 0 and unspecified IPs cannot be dialled.
        assert!(
            t.dial("/ip4/127.0.0.1/tcp/0".parse().unwrap(), opts())
                .is_err()
        );
        assert!(
            t.dial("/ip4/0.0.0.0/tcp/1".parse().unwrap(), opts())
                .is_err()
        );
    }
}
