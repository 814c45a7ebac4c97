//! hyper's IO and timer on async-std. hyper 1 reads and writes through its own
//! `hyper::rt::{Read, Write}` traits; [`FuturesIo`] is the small adapter from the
//! `futures::io` traits async-std's `TcpStream` implements, and [`AsyncIoTimer`] gives hyper its
//! timer on async-std's reactor. We write these ~60 lines rather than take a crate:
//! `hyper-util` only adapts tokio's IO traits, and `smol-hyper` would add a dependency for the
//! same two small impls. The adapter is safe code: reads go through a stack buffer and
//! `ReadBufCursor::put_slice`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncWrite};

/// Largest chunk one `poll_read` moves into hyper's buffer.
const READ_CHUNK: usize = 8 * 1024;

/// A `futures::io` stream as hyper's IO.
#[derive(Debug)]
pub struct FuturesIo<T>(pub T);

impl<T: AsyncRead + Unpin> hyper::rt::Read for FuturesIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut chunk = [0u8; READ_CHUNK];
        let want = buf.remaining().min(READ_CHUNK);
        let Some(tmp) = chunk.get_mut(..want) else {
            return Poll::Ready(Ok(()));
        };
        match Pin::new(&mut self.0).poll_read(cx, tmp) {
            Poll::Ready(Ok(n)) => {
                if let Some(read) = tmp.get(..n) {
                    buf.put_slice(read);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for FuturesIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

/// hyper's timer on async-std's reactor (`async-io`, which `async_std::task::sleep` uses).
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncIoTimer;

struct AsyncIoSleep(async_io::Timer);

impl Future for AsyncIoSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl hyper::rt::Sleep for AsyncIoSleep {}

impl hyper::rt::Timer for AsyncIoTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(AsyncIoSleep(async_io::Timer::after(duration)))
    }
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(AsyncIoSleep(async_io::Timer::at(deadline)))
    }
}
