//! Blob byte streams: reading from any offset (for Range resume and for
//! re-sending after a failed upload), hashing while bytes flow, and never
//! holding more than one chunk of a blob in memory.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use sha2::{Digest as _, Sha256};

use super::error::{ClientError, ErrorKind, Result};
use super::types::hex;

/// A stream of blob bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// Where a blob's bytes can be read from, starting at any offset.
pub trait BlobSource: Send + Sync {
    /// Opens the blob at `offset`.
    fn open(&self, offset: u64) -> BoxFuture<'_, Result<ByteStream>>;
    /// Where the bytes come from, for messages.
    fn location(&self) -> String;
}

/// Bytes already in memory (a small artifact being pushed).
pub struct MemoryBlobSource(pub Bytes);

impl BlobSource for MemoryBlobSource {
    fn open(&self, offset: u64) -> BoxFuture<'_, Result<ByteStream>> {
        let rest = self.0.slice((offset as usize).min(self.0.len())..);
        Box::pin(async move { Ok(Box::pin(futures_util::stream::once(async move { Ok(rest) })) as ByteStream) })
    }

    fn location(&self) -> String {
        "memory".into()
    }
}

/// How many times in a row a read that breaks off without progress is resumed.
pub const RESUME_ATTEMPTS: usize = 5;

struct Resume {
    source: Arc<dyn BlobSource>,
    current: Option<ByteStream>,
    offset: u64,
    size: u64,
    attempts_left: usize,
    done: bool,
}

/// Reads `size` bytes from `source`, reopening at the current offset when the
/// stream fails or ends early (a reset in the middle of a GET resumes with Range).
pub fn resuming(source: Arc<dyn BlobSource>, size: u64) -> ByteStream {
    let state = Resume { source, current: None, offset: 0, size, attempts_left: RESUME_ATTEMPTS, done: false };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            if st.current.is_none() {
                match st.source.open(st.offset).await {
                    Ok(s) => st.current = Some(s),
                    Err(e) if e.kind == ErrorKind::Connect && st.attempts_left > 0 => {
                        st.attempts_left -= 1;
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                }
            }
            let next = st.current.as_mut().expect("opened above").next().await;
            match next {
                Some(Ok(chunk)) => {
                    st.offset += chunk.len() as u64;
                    // Progress: a later break gets the full set of attempts again.
                    st.attempts_left = RESUME_ATTEMPTS;
                    return Some((Ok(chunk), st));
                }
                None if st.offset >= st.size => return None,
                // Broke off: a reset connection, or the body ended short.
                broken if st.attempts_left > 0 && resumable(&broken) => {
                    tracing::debug!(location = st.source.location(), offset = st.offset, "Resuming blob read");
                    st.attempts_left -= 1;
                    st.current = None;
                }
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.done = true;
                    let e = ClientError::new(
                        ErrorKind::Connect,
                        st.source.location(),
                        format!("blob ended after {} of {} bytes", st.offset, st.size),
                    );
                    return Some((Err(e), st));
                }
            }
        }
    }))
}

fn resumable(item: &Option<Result<Bytes>>) -> bool {
    match item {
        None => true,
        Some(Err(e)) => e.kind == ErrorKind::Connect,
        Some(Ok(_)) => false,
    }
}

/// Passes bytes through while hashing them. The last chunk is held back
/// until the digest and size are checked, and a mismatch replaces it with an
/// error, so a consumer that writes the bytes (a file, an upload with a
/// `Content-Length`) never receives a complete wrong body and cannot commit it.
pub fn verified(stream: ByteStream, digest: &str, size: u64, location: String) -> ByteStream {
    struct State {
        inner: ByteStream,
        hasher: Sha256,
        seen: u64,
        pending: Option<Bytes>,
        expected: String,
        size: u64,
        location: String,
        finished: bool,
    }
    let state = State {
        inner: stream,
        hasher: Sha256::new(),
        seen: 0,
        pending: None,
        expected: digest.to_string(),
        size,
        location,
        finished: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.finished {
                return None;
            }
            match st.inner.next().await {
                Some(Ok(chunk)) => {
                    st.hasher.update(&chunk);
                    st.seen += chunk.len() as u64;
                    if st.seen > st.size {
                        st.finished = true;
                        let e = ClientError::new(
                            ErrorKind::DigestMismatch,
                            st.location.clone(),
                            format!("blob is longer than its descriptor's {} bytes", st.size),
                        );
                        return Some((Err(e), st));
                    }
                    if let Some(previous) = st.pending.replace(chunk) {
                        return Some((Ok(previous), st));
                    }
                }
                Some(Err(e)) => {
                    st.finished = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.finished = true;
                    let actual = format!("sha256:{}", hex(&st.hasher.clone().finalize()));
                    if st.seen != st.size || actual != st.expected {
                        let e = ClientError::digest_mismatch(st.location.clone(), &st.expected, &actual);
                        return Some((Err(e), st));
                    }
                    return st.pending.take().map(|last| (Ok(last), st));
                }
            }
        }
    }))
}

/// A blob to send: where to read it, what it must be, and whether to hash it
/// on the way (a registry target re-hashes on commit, so that is optional there).
#[derive(Clone)]
pub struct BlobData {
    /// Where the bytes come from.
    pub source: Arc<dyn BlobSource>,
    /// What they must be.
    pub desc: super::types::Descriptor,
    /// Hash while streaming and fail on mismatch.
    pub verify: bool,
    /// Told of the bytes as they stream (a progress display).
    pub progress: Option<Arc<dyn BlobProgress>>,
}

/// Watches blob transfers: a progress display implements it.
pub trait TransferWatch: Send + Sync {
    /// The bytes of `desc` start moving. The handle counts them; the transfer
    /// has ended when the last clone of it is dropped.
    fn blob_started(&self, desc: &super::types::Descriptor) -> Arc<dyn BlobProgress>;
}

/// Counts the bytes of one blob transfer (see [`TransferWatch`]).
pub trait BlobProgress: Send + Sync {
    /// `n` more bytes went through. A retried upload counts its bytes again.
    fn advance(&self, n: u64);
}

impl BlobData {
    /// A fresh stream over the whole blob, resuming on breaks.
    pub fn stream(&self) -> ByteStream {
        let s = resuming(self.source.clone(), self.desc.size);
        let s = if self.verify { verified(s, &self.desc.digest, self.desc.size, self.source.location()) } else { s };
        match &self.progress {
            None => s,
            Some(p) => {
                let p = p.clone();
                Box::pin(s.inspect(move |chunk| {
                    if let Ok(c) = chunk {
                        p.advance(c.len() as u64);
                    }
                }))
            }
        }
    }

    /// Like [`BlobData::stream`], also keeping the first error the stream yields, so
    /// a consumer that only sees "body failed" (an HTTP upload) can tell why.
    pub fn stream_watched(&self) -> (ByteStream, Arc<std::sync::Mutex<Option<ClientError>>>) {
        let slot = Arc::new(std::sync::Mutex::new(None));
        let keep = slot.clone();
        let s = self.stream().inspect(move |item| {
            if let Err(e) = item {
                let mut k = keep.lock().expect("poisoned");
                if k.is_none() {
                    *k = Some(e.clone());
                }
            }
        });
        (Box::pin(s), slot)
    }
}

/// Reads a whole (small) stream into memory, up to `limit` bytes.
#[cfg(test)]
pub async fn collect(mut stream: ByteStream, limit: usize, location: &str) -> Result<Bytes> {
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if buf.len() + chunk.len() > limit {
            return Err(ClientError::new(ErrorKind::Invalid, location, format!("content exceeds {limit} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A source over bytes in memory.
#[cfg(test)]
pub struct MemorySource(pub Bytes);

#[cfg(test)]
impl BlobSource for MemorySource {
    fn open(&self, offset: u64) -> BoxFuture<'_, Result<ByteStream>> {
        let data = self.0.slice((offset as usize).min(self.0.len())..);
        Box::pin(async move { Ok(Box::pin(futures_util::stream::iter([Ok(data)])) as ByteStream) })
    }

    fn location(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::types::sha256_digest;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Serves `data` in 3-byte chunks; while `breaks` lasts, each open breaks off
    /// after one chunk (or at once, with `stall`).
    struct Flaky {
        data: Bytes,
        breaks: AtomicUsize,
        opens: AtomicUsize,
        stall: bool,
    }

    impl BlobSource for Flaky {
        fn open(&self, offset: u64) -> BoxFuture<'_, Result<ByteStream>> {
            self.opens.fetch_add(1, Ordering::SeqCst);
            let rest = self.data.slice(offset as usize..);
            let breaking = self.breaks.load(Ordering::SeqCst) > 0;
            if breaking {
                self.breaks.fetch_sub(1, Ordering::SeqCst);
            }
            let mut chunks: Vec<Result<Bytes>> = rest.chunks(3).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            if breaking && chunks.len() > 1 {
                chunks.truncate(if self.stall { 0 } else { 1 });
                chunks.push(Err(ClientError::new(ErrorKind::Connect, "flaky", "connection reset")));
            }
            Box::pin(async move { Ok(Box::pin(futures_util::stream::iter(chunks)) as ByteStream) })
        }
        fn location(&self) -> String {
            "flaky".into()
        }
    }

    #[tokio::test]
    async fn resumes_after_resets() {
        let data = Bytes::from_static(b"0123456789abcdef");
        let source = Arc::new(Flaky {
            data: data.clone(),
            breaks: AtomicUsize::new(3),
            opens: AtomicUsize::new(0),
            stall: false,
        });
        let stream = resuming(source.clone(), data.len() as u64);
        let got = collect(stream, 1 << 20, "t").await.unwrap();
        assert_eq!(got, data);
        assert_eq!(source.opens.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn keeps_resuming_while_progressing() {
        let data = Bytes::from(vec![7u8; 64]);
        let source = Arc::new(Flaky {
            data: data.clone(),
            breaks: AtomicUsize::new(100),
            opens: AtomicUsize::new(0),
            stall: false,
        });
        assert_eq!(collect(resuming(source, 64), 1 << 20, "t").await.unwrap(), data);
    }

    #[tokio::test]
    async fn gives_up_when_no_progress() {
        let data = Bytes::from(vec![7u8; 64]);
        let source = Arc::new(Flaky {
            data: data.clone(),
            breaks: AtomicUsize::new(100),
            opens: AtomicUsize::new(0),
            stall: true,
        });
        let err = collect(resuming(source.clone(), 64), 1 << 20, "t").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Connect);
        assert_eq!(source.opens.load(Ordering::SeqCst), RESUME_ATTEMPTS + 1);
    }

    #[tokio::test]
    async fn verification_rejects_wrong_bytes() {
        let good = Bytes::from_static(b"payload");
        let digest = sha256_digest(&good);
        let ok = verified(MemorySource(good.clone()).open(0).await.unwrap(), &digest, 7, "m".into());
        assert_eq!(collect(ok, 100, "m").await.unwrap(), good);
        let bad = verified(MemorySource(Bytes::from_static(b"paylo4d")).open(0).await.unwrap(), &digest, 7, "m".into());
        assert_eq!(collect(bad, 100, "m").await.unwrap_err().kind, ErrorKind::DigestMismatch);
        let long =
            verified(MemorySource(Bytes::from_static(b"payload!")).open(0).await.unwrap(), &digest, 7, "m".into());
        assert_eq!(collect(long, 100, "m").await.unwrap_err().kind, ErrorKind::DigestMismatch);
    }
}
