//! Idle tracking for client connections: a stream wrapper that notes when
//! bytes last moved, so the server can close a connection nobody uses.
//!
//! hyper closes an HTTP/1.1 connection whose next request headers do not
//! arrive in time, but an HTTP/2 connection has no such deadline: a client
//! that sends its preface and then nothing would hold a socket, a task and
//! its buffers for ever. [`serve_conn`](super::server) shuts a connection
//! down gracefully once [`Activity::idle_for`] passes the configured idle
//! timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When a connection last read or wrote a byte.
#[derive(Clone, Debug)]
pub struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last read or write.
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The instant of the last read or write (the connection's start if
    /// none yet).
    pub fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// How long no byte has moved.
    pub fn idle_for(&self) -> Duration {
        self.last().elapsed()
    }
}

/// A stream that records its reads and writes in an [`Activity`].
#[derive(Debug)]
pub struct IdleIo<S> {
    inner: S,
    activity: Activity,
}

impl<S> IdleIo<S> {
    /// Wraps `inner`; the returned [`Activity`] follows it.
    pub fn new(inner: S) -> (IdleIo<S>, Activity) {
        let activity = Activity::new();
        (
            IdleIo {
                inner,
                activity: activity.clone(),
            },
            activity,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_and_writes_reset_the_idle_clock() {
        let pause = Duration::from_millis(300);
        let (a, mut b) = tokio::io::duplex(64);
        let (mut io, activity) = IdleIo::new(a);
        tokio::time::sleep(pause).await;
        assert!(activity.idle_for() >= pause);

        b.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        io.read_exact(&mut buf).await.expect("read");
        assert!(activity.idle_for() < pause);

        tokio::time::sleep(pause).await;
        assert!(activity.idle_for() >= pause);
        io.write_all(b"pong").await.expect("write");
        assert!(activity.idle_for() < pause);
    }
}
