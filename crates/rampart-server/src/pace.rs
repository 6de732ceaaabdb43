//! Request bodies must keep moving: a client that trickles a body (one byte every few seconds)
//! would otherwise hold a connection and a handler for as long as it likes. Both listeners wrap
//! every request body so that, after a grace period, it must have arrived at a minimum average
//! rate, and the whole body within a total time; a body that falls behind ends with
//! [`BodyTooSlow`], which handlers answer with 408.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

/// How fast a request body must arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    /// Longest time a whole body may take.
    pub total: Duration,
    /// Time before the rate is enforced (a slow start is normal).
    pub grace: Duration,
    /// Average bytes per second, counted from the start, after the grace period.
    pub min_rate: u64,
}

/// Why a request body was cut off.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly: {0}")]
pub(crate) struct BodyTooSlow(pub String);

/// A request body held to a [`BodyPace`].
pub(crate) struct PacedBody {
    inner: Incoming,
    pace: BodyPace,
    started: Instant,
    received: u64,
    /// Wakes the reader for the next check while the client sends nothing.
    timer: Pin<Box<Sleep>>,
}

/// How often a stalled body is checked.
const CHECK_EVERY: Duration = Duration::from_millis(250);

impl PacedBody {
    pub(crate) fn new(inner: Incoming, pace: BodyPace) -> PacedBody {
        let started = Instant::now();
        PacedBody {
            inner,
            pace,
            started,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(started + CHECK_EVERY)),
        }
    }

    fn check(&self) -> Result<(), BodyTooSlow> {
        let elapsed = self.started.elapsed();
        if elapsed > self.pace.total {
            return Err(BodyTooSlow(format!(
                "not complete after {} s",
                self.pace.total.as_secs()
            )));
        }
        if let Some(after_grace) = elapsed.checked_sub(self.pace.grace) {
            let due = (self.pace.min_rate as f64 * after_grace.as_secs_f64()) as u64;
            if self.received < due {
                return Err(BodyTooSlow(format!(
                    "{} bytes in {:.1} s, below {} bytes/s",
                    self.received,
                    elapsed.as_secs_f64(),
                    self.pace.min_rate
                )));
            }
        }
        Ok(())
    }
}

impl Body for PacedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                // Nothing arrived: check now, and again at the next tick unless data wakes us.
                loop {
                    if let Err(e) = this.check() {
                        return Poll::Ready(Some(Err(e.into())));
                    }
                    match this.timer.as_mut().poll(cx) {
                        Poll::Ready(()) => {
                            let next = Instant::now() + CHECK_EVERY;
                            this.timer.as_mut().reset(next);
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a body error (anywhere in its source chain) is a [`BodyTooSlow`].
pub(crate) fn is_too_slow(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.is::<BodyTooSlow>() {
            return true;
        }
        current = err.source();
    }
    false
}
