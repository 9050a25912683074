//! Blob uploads (COPY-6): POST to open a session (or mount), then one
//! streaming PUT with `Content-Length`; chunked PATCH uploads when the blob is
//! larger than `blobMax`, when the registry asks for chunks
//! (`OCI-Chunk-Min-Length`), or after the single PUT failed.

use bytes::BytesMut;
use futures_util::StreamExt;
use reqwest::Method;

use super::auth::Scope;
use super::transport::{Body, Request, Transport, strip_query};
use super::urls;
use crate::client::blob::BlobData;
use crate::client::error::{ClientError, ErrorKind, Result};

/// How a blob reached the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded {
    /// Bytes were sent.
    Sent,
    /// The registry linked it from another repository.
    Mounted,
}

/// An upload session the registry opened.
pub struct Session {
    location: String,
    chunk_min: Option<u64>,
}

/// Opens an upload, asking to mount from `from` when given. `Ok(None)` means
/// the registry mounted the blob; a 202 answer to a mount is "mount refused,
/// upload here".
pub async fn start(t: &Transport, repo: &str, digest: &str, from: Option<&str>) -> Result<Option<Session>> {
    let mut url = format!("{}/v2/{repo}/blobs/uploads/", t.base_url);
    if let Some(from) = from {
        url = urls::with_query(&url, &[("mount", digest), ("from", from)])?;
    }
    let scope = match from {
        Some(from) => Scope::Mount { name: repo.to_string(), from: from.to_string() },
        None => Scope::Repository { name: repo.to_string(), push: true },
    };
    let resp = t.send(Request::new(Method::POST, url.clone(), scope)).await?;
    match resp.status() {
        201 if from.is_some() => Ok(None),
        202 => {
            let location = resp.header("location").ok_or_else(|| {
                ClientError::new(ErrorKind::Invalid, strip_query(&url), "upload session without Location")
            })?;
            let chunk_min = resp.header("oci-chunk-min-length").and_then(|v| v.trim().parse().ok());
            Ok(Some(Session { location: urls::join(&url, &location)?, chunk_min }))
        }
        _ => Err(Transport::error(resp, &url).await),
    }
}

/// Sends a blob into an open session: a single PUT unless chunking is due,
/// falling back to chunks (in a new session) when the single PUT fails.
pub async fn send(t: &Transport, repo: &str, blob: &BlobData, session: Session, blob_limit: u64) -> Result<Uploaded> {
    let size = blob.desc.size;
    let blob_max = t.host.blob_max;
    let chunked = (blob_max > 0 && size > blob_max as u64) || session.chunk_min.is_some();
    if !chunked {
        match put_whole(t, repo, blob, &session).await {
            Ok(()) => return Ok(Uploaded::Sent),
            // The source failed (stalled, gone, wrong bytes): sending it in chunks
            // would read the same source again and fail the same way.
            Err(Failed::Source(e)) => return Err(e),
            Err(Failed::Target(e)) => {
                tracing::debug!(repo, digest = blob.desc.digest, error = %e, "Single PUT failed, retrying in chunks");
            }
        }
        let session = start(t, repo, &blob.desc.digest, None).await?.expect("no mount asked");
        return put_chunks(t, repo, blob, session, blob_limit).await.map(|_| Uploaded::Sent);
    }
    put_chunks(t, repo, blob, session, blob_limit).await.map(|_| Uploaded::Sent)
}

/// Which side a failed single PUT failed on.
enum Failed {
    /// Reading the blob (the source, or its digest check).
    Source(ClientError),
    /// The registry we upload to.
    Target(ClientError),
}

async fn put_whole(t: &Transport, repo: &str, blob: &BlobData, session: &Session) -> std::result::Result<(), Failed> {
    let url = urls::with_query(&session.location, &[("digest", &blob.desc.digest)]).map_err(Failed::Target)?;
    let (stream, failure) = blob.stream_watched();
    let req = Request::new(Method::PUT, url.clone(), Scope::Repository { name: repo.to_string(), push: true })
        .header("content-type", "application/octet-stream")
        .body(Body::Stream(stream, blob.desc.size));
    let result = t.send(req).await;
    // A failure of our own stream (digest mismatch, source gone) explains a broken PUT better.
    if let Some(e) = failure.lock().expect("poisoned").take() {
        return Err(Failed::Source(e));
    }
    let resp = result.map_err(Failed::Target)?;
    match resp.status() {
        201 | 204 => Ok(()),
        _ => Err(Failed::Target(Transport::error(resp, &url).await)),
    }
}

async fn put_chunks(t: &Transport, repo: &str, blob: &BlobData, session: Session, blob_limit: u64) -> Result<()> {
    let mut chunk_size = t.host.blob_chunk.max(1) as u64;
    if let Some(min) = session.chunk_min {
        chunk_size = chunk_size.max(min.min(blob_limit));
    }
    let scope = Scope::Repository { name: repo.to_string(), push: true };
    let mut location = session.location;
    let mut offset = 0u64;
    let (mut stream, failure) = blob.stream_watched();
    let mut buf = BytesMut::with_capacity(chunk_size as usize);
    loop {
        let next = stream.next().await;
        let done = match next {
            Some(Ok(bytes)) => {
                buf.extend_from_slice(&bytes);
                false
            }
            Some(Err(e)) => return Err(e),
            None => true,
        };
        while buf.len() as u64 >= chunk_size || (done && !buf.is_empty()) {
            let take = (buf.len() as u64).min(chunk_size) as usize;
            let chunk = buf.split_to(take).freeze();
            let end = offset + chunk.len() as u64 - 1;
            let req = Request::new(Method::PATCH, location.clone(), scope.clone())
                .header("content-type", "application/octet-stream")
                .header("content-range", format!("{offset}-{end}"))
                .body(Body::Bytes(chunk.clone()));
            let resp = t.send(req).await?;
            if resp.status() != 202 {
                return Err(Transport::error(resp, &location).await);
            }
            offset = end + 1;
            if let Some(next) = resp.header("location") {
                location = urls::join(&location, &next)?;
            }
        }
        if done {
            break;
        }
    }
    if let Some(e) = failure.lock().expect("poisoned").take() {
        return Err(e);
    }
    let url = urls::with_query(&location, &[("digest", &blob.desc.digest)])?;
    let resp = t.send(Request::new(Method::PUT, url.clone(), scope).body(Body::Bytes(bytes::Bytes::new()))).await?;
    match resp.status() {
        201 | 204 => Ok(()),
        _ => Err(Transport::error(resp, &url).await),
    }
}
