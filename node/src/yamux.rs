//! Yamux for libp2p with frames as large as one Noise frame (issue 15).
//!
//! libp2p-yamux 0.48 fixes yamux's split size at 16 KiB, and the yamux connection flushes the
//! socket after every frame, so a 154 KB block left as ten Noise frames and ten writes per copy
//! (and woke the receiver up to ten times). Here the split size is [`FRAME_PAYLOAD`]: a frame's
//! 12-byte header and payload fill one Noise frame exactly (65,535 bytes less the 16-byte tag),
//! so the same block leaves as three. The wire is unchanged: yamux frames carry any length up
//! to the receiver's window (256 KiB at least), and go-yamux and js-libp2p's yamux send up
//! to 64 KiB frames themselves.
//!
//! Everything else is rust-yamux's default configuration, as libp2p-yamux uses it; the
//! [`StreamMuxer`] below is the adapter libp2p needs around [`yamux::Connection`].

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};

/// The most payload one frame carries: one Noise frame (65,535 bytes less its 16-byte tag)
/// less yamux's 12-byte header.
pub const FRAME_PAYLOAD: usize = 65_535 - 16 - 12;

/// Inbound streams kept while nobody asks for them; past it new ones are dropped (reset).
/// rust-yamux's ACK backlog, so a well-behaved peer never gets there.
const MAX_WAITING_INBOUND: usize = 256;

/// The protocol name negotiated for yamux.
const PROTOCOL: &str = "/yamux/1.0.0";

/// The yamux upgrade: rust-yamux's defaults with [`FRAME_PAYLOAD`]-byte frames.
#[derive(Debug, Clone)]
pub struct Config(yamux::Config);

impl Default for Config {
    fn default() -> Self {
        let mut c = yamux::Config::default();
        c.set_split_send_size(FRAME_PAYLOAD);
        Self(c)
    }
}

impl UpgradeInfo for Config {
    type Info = &'static str;
    type InfoIter = std::iter::Once<Self::Info>;

    fn protocol_info(&self) -> Self::InfoIter {
        std::iter::once(PROTOCOL)
    }
}

impl<C> InboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = futures::future::Ready<Result<Muxer<C>, io::Error>>;

    fn upgrade_inbound(self, io: C, _: Self::Info) -> Self::Future {
        futures::future::ready(Ok(Muxer::new(yamux::Connection::new(
            io,
            self.0,
            yamux::Mode::Server,
        ))))
    }
}

impl<C> OutboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = futures::future::Ready<Result<Muxer<C>, io::Error>>;

    fn upgrade_outbound(self, io: C, _: Self::Info) -> Self::Future {
        futures::future::ready(Ok(Muxer::new(yamux::Connection::new(
            io,
            self.0,
            yamux::Mode::Client,
        ))))
    }
}

/// A yamux connection as libp2p's [`StreamMuxer`].
#[derive(Debug)]
pub struct Muxer<C> {
    connection: yamux::Connection<C>,
    /// Inbound streams that arrived while the connection was driven by [`StreamMuxer::poll`]
    /// (yamux makes progress only through `poll_next_inbound`), for the next `poll_inbound`.
    waiting: VecDeque<yamux::Stream>,
    /// Whoever waits in `poll_inbound`.
    inbound_waker: Option<Waker>,
}

impl<C> Muxer<C> {
    fn new(connection: yamux::Connection<C>) -> Self {
        Self {
            connection,
            waiting: VecDeque::new(),
            inbound_waker: None,
        }
    }
}

impl<C> Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    /// Drives the connection to its next inbound stream; a closed connection is an error.
    fn next_inbound(&mut self, cx: &mut Context<'_>) -> Poll<Result<yamux::Stream, Error>> {
        match self.connection.poll_next_inbound(cx) {
            Poll::Ready(Some(Ok(s))) => Poll::Ready(Ok(s)),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Err(Error(e))),
            Poll::Ready(None) => Poll::Ready(Err(Error(yamux::ConnectionError::Closed))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<C> StreamMuxer for Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin + 'static,
{
    type Substream = Stream;
    type Error = Error;

    fn poll_inbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Stream, Error>> {
        let this = self.get_mut();
        if let Some(s) = this.waiting.pop_front() {
            return Poll::Ready(Ok(Stream(s)));
        }
        match this.next_inbound(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(Stream)),
            Poll::Pending => {
                this.inbound_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn poll_outbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Stream, Error>> {
        self.get_mut()
            .connection
            .poll_new_outbound(cx)
            .map(|r| r.map(Stream).map_err(Error))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().connection.poll_close(cx).map_err(Error)
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<StreamMuxerEvent, Error>> {
        let this = self.get_mut();
        let stream = match this.next_inbound(cx) {
            Poll::Ready(Ok(s)) => s,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        if this.waiting.len() < MAX_WAITING_INBOUND {
            this.waiting.push_back(stream);
            if let Some(w) = this.inbound_waker.take() {
                w.wake();
            }
        } else {
            tracing::debug!(%stream, "too many inbound yamux streams waiting: dropping one");
        }
        // More may be ready: come back at once, after others had their turn.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// One yamux stream.
#[derive(Debug)]
pub struct Stream(yamux::Stream);

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_close(cx)
    }
}

/// A yamux connection error.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(#[from] yamux::ConnectionError);

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e.0 {
            yamux::ConnectionError::Io(e) => e,
            other => io::Error::other(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::{poll_fn, select};
    use futures::{AsyncReadExt, AsyncWriteExt};
    use std::sync::{Arc, Mutex};

    /// One direction of an in-memory connection.
    #[derive(Default)]
    struct Pipe {
        bytes: VecDeque<u8>,
        reader: Option<Waker>,
    }

    /// One end: reads one pipe, writes the other, and keeps a copy of what it wrote.
    struct End {
        rx: Arc<Mutex<Pipe>>,
        tx: Arc<Mutex<Pipe>>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    fn pair() -> (End, End, Arc<Mutex<Vec<u8>>>) {
        let (ab, ba) = (Arc::default(), Arc::default());
        let written = Arc::default();
        let a = End {
            rx: Arc::clone(&ba),
            tx: Arc::clone(&ab),
            written: Arc::clone(&written),
        };
        let b = End {
            rx: ab,
            tx: ba,
            written: Arc::default(),
        };
        (a, b, written)
    }

    impl AsyncRead for End {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let mut p = self.rx.lock().unwrap();
            if p.bytes.is_empty() {
                p.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = buf.len().min(p.bytes.len());
            for (dst, src) in buf.iter_mut().zip(p.bytes.drain(..n)) {
                *dst = src;
            }
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for End {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.written.lock().unwrap().extend_from_slice(buf);
            let mut p = self.tx.lock().unwrap();
            p.bytes.extend(buf);
            if let Some(w) = p.reader.take() {
                w.wake();
            }
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// The payload lengths of the data frames in a yamux byte stream.
    fn data_frames(mut wire: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        while wire.len() >= 12 {
            let kind = wire[1];
            let len = u32::from_be_bytes([wire[8], wire[9], wire[10], wire[11]]) as usize;
            wire = &wire[12..];
            if kind == 0 {
                out.push(len);
                wire = &wire[len..];
            }
        }
        out
    }

    /// A 200 KB write leaves in four frames of at most [`FRAME_PAYLOAD`] (libp2p-yamux's
    /// 16 KiB split sends thirteen), and arrives whole.
    #[test]
    fn a_big_write_leaves_in_frames_of_one_noise_frame_each() {
        const LEN: usize = 200_000;
        let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
        let (a, b, written) = pair();
        let mut client = Muxer::new(yamux::Connection::new(
            a,
            Config::default().0,
            yamux::Mode::Client,
        ));
        let mut server = Muxer::new(yamux::Connection::new(
            b,
            Config::default().0,
            yamux::Mode::Server,
        ));
        let got = futures::executor::block_on(async {
            let mut out = poll_fn(|cx| Pin::new(&mut client).poll_outbound(cx))
                .await
                .expect("outbound stream");
            let write = async {
                out.write_all(&data).await.expect("write");
                out.close().await.expect("close");
            };
            let read = async {
                let mut s = poll_fn(|cx| Pin::new(&mut server).poll_inbound(cx))
                    .await
                    .expect("inbound stream");
                let mut got = Vec::new();
                let drive = poll_fn(|cx| Pin::new(&mut server).poll(cx));
                let read = s.read_to_end(&mut got);
                futures::pin_mut!(drive, read);
                match select(read, drive).await {
                    futures::future::Either::Left((r, _)) => {
                        r.expect("read");
                    }
                    futures::future::Either::Right((r, _)) => panic!("server ended: {r:?}"),
                }
                got
            };
            let drive = poll_fn(|cx| Pin::new(&mut client).poll(cx));
            let both = futures::future::join(write, read);
            futures::pin_mut!(drive, both);
            match select(both, drive).await {
                futures::future::Either::Left((((), got), _)) => got,
                futures::future::Either::Right((r, _)) => panic!("client ended: {r:?}"),
            }
        });
        assert_eq!(got, data);
        let frames: Vec<usize> = data_frames(&written.lock().unwrap())
            .into_iter()
            .filter(|&n| n > 0)
            .collect();
        assert_eq!(frames.iter().sum::<usize>(), LEN);
        assert_eq!(frames.len(), LEN.div_ceil(FRAME_PAYLOAD), "{frames:?}");
        assert!(frames.iter().all(|&n| n <= FRAME_PAYLOAD), "{frames:?}");
    }

    /// A yamux frame of the largest payload, with its header, fills one Noise frame exactly.
    #[test]
    fn a_full_frame_is_one_noise_frame() {
        const NOISE_MAX_FRAME: usize = 65_535;
        const NOISE_TAG: usize = 16;
        const YAMUX_HEADER: usize = 12;
        assert_eq!(FRAME_PAYLOAD + YAMUX_HEADER + NOISE_TAG, NOISE_MAX_FRAME);
    }
}
