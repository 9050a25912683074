//! Waiting on and reading from a registry with bounds: an idle timeout on
//! every wait (a request's headers, each chunk of a body, each chunk of an
//! upload the registry takes) and a byte cap on every body read into memory.
//!
//! reqwest's own `read_timeout` is a deadline from the start of a request
//! until its headers, so a long upload that keeps moving would trip it; an
//! idle timeout resets whenever a byte moves, which is what tells a stalled
//! registry from a slow one.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;

use crate::client::blob::ByteStream;
use crate::client::error::{ClientError, ErrorKind, Result};

/// Bytes of an error body read for its message (the registry's first error entry).
pub const ERROR_BODY_LIMIT: usize = 64 << 10;
/// A body read into memory past this size is a large one; see [`ReadGate`].
pub const LARGE_BODY: usize = 1 << 20;
/// Large bodies in memory at once, client-wide.
pub const LARGE_READS: usize = 1;

/// Lets only [`LARGE_READS`] large bodies (manifests, listing pages past
/// [`LARGE_BODY`]) be read at once, whatever the concurrency: a registry that
/// answers every request with a body just under its limit then costs a few
/// limits of memory, not one per image in flight. Small bodies never wait.
#[derive(Clone)]
pub struct ReadGate(Arc<tokio::sync::Semaphore>);

impl Default for ReadGate {
    fn default() -> Self {
        ReadGate(Arc::new(tokio::sync::Semaphore::new(LARGE_READS)))
    }
}

/// A large read's turn, held until its bytes are dropped or parsed.
pub type ReadTurn = Option<tokio::sync::OwnedSemaphorePermit>;

impl ReadGate {
    async fn turn(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.0.clone().acquire_owned().await.expect("the read gate is never closed")
    }
}
/// Bytes of a token response read (JWTs run to a few KiB).
pub const TOKEN_BODY_LIMIT: usize = 256 << 10;

/// When bytes last moved, shared between a request body being sent and the
/// wait for its answer.
#[derive(Clone)]
pub struct Activity {
    base: Instant,
    last: Arc<AtomicU64>,
    /// The registry asked for more of the body and our source has not given
    /// it yet: the wait is on the source, whose reads have their own timeout
    /// (and may resume), so the registry is not idle.
    waiting_on_source: Arc<AtomicBool>,
}

impl Activity {
    /// Activity starting now.
    pub fn new() -> Self {
        Activity {
            base: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
            waiting_on_source: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Bytes moved now.
    pub fn touch(&self) {
        let now = self.base.elapsed().as_millis() as u64;
        self.last.fetch_max(now, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        if self.waiting_on_source.load(Ordering::Relaxed) {
            return Instant::now();
        }
        self.base + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }

    /// Wraps a request body so that every chunk taken from it counts as
    /// activity, and time spent waiting on the body's own source does not
    /// count as the registry being idle.
    pub fn watch(&self, body: ByteStream) -> ByteStream {
        Box::pin(Watched { inner: body, activity: self.clone() })
    }
}

struct Watched {
    inner: ByteStream,
    activity: Activity,
}

impl Stream for Watched {
    type Item = Result<Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        let waiting = polled.is_pending();
        self.activity.waiting_on_source.store(waiting, Ordering::Relaxed);
        if !waiting {
            self.activity.touch();
        }
        polled
    }
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

/// Runs `fut` until it ends, or `None` once `activity` has seen nothing for `idle`.
pub async fn within_idle<F: Future>(idle: Duration, activity: &Activity, fut: F) -> Option<F::Output> {
    tokio::pin!(fut);
    loop {
        let deadline = activity.last() + idle;
        tokio::select! {
            out = &mut fut => return Some(out),
            _ = tokio::time::sleep_until(deadline) => {
                if activity.last() + idle <= Instant::now() {
                    return None;
                }
            }
        }
    }
}

/// A failed request as a client error: a refused redirect is final, anything
/// else (connect, reset, TLS) is a connection failure that may pass on retry.
pub fn request_error(location: &str, e: &reqwest::Error) -> ClientError {
    let kind = if e.is_redirect() || e.is_builder() { ErrorKind::Invalid } else { ErrorKind::Connect };
    ClientError::new(kind, super::urls::strip_query(location), crate::client::error::describe(e))
}

/// The error of a wait that saw no bytes for `idle`.
pub fn idle_error(location: &str, idle: Duration) -> ClientError {
    ClientError::new(
        ErrorKind::Connect,
        location,
        format!("no data for {} (limits.idleTimeout)", crate::duration::GoDuration::from_nanos(idle.as_nanos() as i64)),
    )
}

/// A response body as a stream whose every chunk must come within `idle`
/// (a stall ends it with a connection error, which blob reads resume from).
pub fn idle_stream(resp: reqwest::Response, idle: Duration, location: String) -> ByteStream {
    guard_stream(resp.bytes_stream(), idle, location)
}

fn guard_stream(
    inner: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    idle: Duration,
    location: String,
) -> ByteStream {
    let inner = Box::pin(inner);
    Box::pin(futures_util::stream::unfold(Some(inner), move |state| {
        let location = location.clone();
        async move {
            let mut inner = state?;
            match tokio::time::timeout(idle, inner.next()).await {
                Err(_) => Some((Err(idle_error(&location, idle)), None)),
                Ok(None) => None,
                Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(inner))),
                Ok(Some(Err(e))) => Some((Err(ClientError::connect(location, &e)), None)),
            }
        }
    }))
}

/// Reads a whole body of at most `limit` bytes. A declared `Content-Length`
/// above it fails before reading; a body that grows past it fails as soon as
/// it does, so memory never holds more than `limit`. `what` describes the
/// body for the error (`tag list page of registry/repo`).
pub async fn read_limited(
    resp: reqwest::Response,
    limit: usize,
    idle: Duration,
    location: &str,
    what: impl Fn() -> String,
    limit_name: &str,
) -> Result<Bytes> {
    read_gated(resp, limit, idle, None, location, what, limit_name).await.map(|(bytes, _)| bytes)
}

/// [`read_limited`], taking a turn at `gate` once the body is (or is
/// announced to be) larger than [`LARGE_BODY`]; the turn comes back with the
/// bytes, so a caller can hold it while it parses them.
pub async fn read_gated(
    resp: reqwest::Response,
    limit: usize,
    idle: Duration,
    gate: Option<&ReadGate>,
    location: &str,
    what: impl Fn() -> String,
    limit_name: &str,
) -> Result<(Bytes, ReadTurn)> {
    let too_large = |seen: String| {
        ClientError::new(
            ErrorKind::TooLarge,
            location,
            format!("{} is larger than {limit_name} ({limit} bytes){seen}", what()),
        )
    };
    if let Some(len) = resp.content_length()
        && len > limit as u64
    {
        return Err(too_large(format!(": {len} bytes announced")));
    }
    let mut turn = None;
    if let Some(gate) = gate
        && resp.content_length().is_some_and(|len| len > LARGE_BODY as u64)
    {
        turn = Some(gate.turn().await);
    }
    let mut stream = idle_stream(resp, idle, location.to_string());
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large(String::new()));
        }
        if turn.is_none()
            && let Some(gate) = gate
            && buf.len() + chunk.len() > LARGE_BODY
        {
            turn = Some(gate.turn().await);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf.freeze(), turn))
}

/// The first `limit` bytes of a body (an error message), or what came before
/// it broke off or stalled: never an error, never more than `limit`.
pub async fn read_prefix(resp: reqwest::Response, limit: usize, idle: Duration) -> Bytes {
    let mut stream = idle_stream(resp, idle, String::new());
    let mut buf = BytesMut::new();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = limit - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= limit {
            break;
        }
    }
    buf.freeze()
}

/// Sends a request built outside a transport (a token request) with the
/// idle timeout on its headers.
pub async fn send_idle(rb: reqwest::RequestBuilder, idle: Duration, location: &str) -> Result<reqwest::Response> {
    let activity = Activity::new();
    match within_idle(idle, &activity, rb.send()).await {
        None => Err(idle_error(location, idle)),
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(request_error(location, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_after_idle_time_without_activity() {
        let activity = Activity::new();
        let idle = Duration::from_secs(5);
        let never = std::future::pending::<()>();
        let started = Instant::now();
        assert!(within_idle(idle, &activity, never).await.is_none());
        assert_eq!(started.elapsed(), idle);
    }

    #[tokio::test(start_paused = true)]
    async fn activity_keeps_a_slow_wait_alive() {
        let activity = Activity::new();
        let idle = Duration::from_secs(5);
        let a = activity.clone();
        let slow = async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(3)).await;
                a.touch();
            }
            "done"
        };
        assert_eq!(within_idle(idle, &activity, slow).await, Some("done"));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_on_the_bodys_own_source_is_not_idleness() {
        let activity = Activity::new();
        let idle = Duration::from_secs(2);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Bytes>>();
        let rx = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        let mut body = activity.watch(Box::pin(rx));
        let consumer = async move {
            let mut n = 0;
            while let Some(Ok(_)) = body.next().await {
                n += 1;
            }
            n
        };
        let producer = async move {
            // The source takes 10 s per chunk: slower than the idle timeout, but the
            // registry is waiting for us, not the other way round.
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(10)).await;
                tx.send(Ok(Bytes::from_static(b"x"))).unwrap();
            }
        };
        let (n, ()) = tokio::join!(within_idle(idle, &activity, consumer), producer);
        assert_eq!(n, Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_stream_ends_with_a_connection_error() {
        let chunks =
            futures_util::stream::iter([Ok(Bytes::from_static(b"abc"))]).chain(futures_util::stream::pending());
        let mut s = guard_stream(chunks, Duration::from_secs(2), "loc".into());
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from_static(b"abc"));
        let e = s.next().await.unwrap().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Connect);
        assert!(e.to_string().contains("no data for 2s (limits.idleTimeout)"), "{e}");
        assert!(s.next().await.is_none());
    }
}
