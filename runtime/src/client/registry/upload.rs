//! Blob uploads (COPY-6): POST to open a session (or mount), then one
//! streaming PUT with `Content-Length`; chunked PATCH uploads when the blob is
//! larger than `blobMax`, when the registry asks for chunks
//! (`OCI-Chunk-Min-Length`), or after the single PUT failed. A chunked upload
//! that the registry refuses falls back to a single PUT. Either fallback opens
//! a new session and reads the source again from its start.
//!
//! Registries differ in what they answer (see the compatibility table in the
//! README): a chunk may be answered 201 (ECR) or 204, a session may open with
//! 200 or 201. Each chunk's `Range` answer is checked against what was sent:
//! a registry that kept less gets the rest again, a `416` resumes from the
//! upload's status, and a `Range` that stops advancing fails the upload after
//! a few tries instead of finishing it with the wrong bytes.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::Method;

use super::auth::Scope;
use super::transport::{Body, Request, Response, Transport, strip_query};
use super::urls;
use crate::client::blob::BlobData;
use crate::client::error::{ClientError, ErrorKind, Result};

/// Chunks in a row that a registry may answer without taking any new byte
/// before the upload fails.
const MAX_STALLED_CHUNKS: usize = 3;

/// An upload session the registry opened.
pub struct Session {
    location: String,
    chunk_min: Option<u64>,
}

/// The registry's `OCI-Chunk-Min-Length`, when it is a useful number.
fn chunk_min(resp: &Response) -> Option<u64> {
    resp.header("oci-chunk-min-length").and_then(|v| v.trim().parse().ok()).filter(|&n: &u64| n > 0)
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
    let status = resp.status();
    match status {
        201 if from.is_some() => Ok(None),
        200..=202 => {
            let location = resp.header("location").ok_or_else(|| {
                ClientError::new(ErrorKind::Invalid, strip_query(&url), "upload session without Location")
            })?;
            if status != 202 {
                tracing::debug!(url = strip_query(&url), status, "Upload session opened with an unusual status");
            }
            Ok(Some(Session { location: urls::join(&url, &location)?, chunk_min: chunk_min(&resp) }))
        }
        _ => Err(not_created(Transport::error(resp, &url).await)),
    }
}

/// Says what to do when the target has no such repository and will not
/// make one on push (ECR).
fn not_created(mut e: ClientError) -> ClientError {
    if e.code.as_deref() == Some("NAME_UNKNOWN") {
        e.message = format!("{} (this registry does not create repositories on push: create it first)", e.message);
    }
    e
}

/// Sends a blob into an open session: a single PUT unless chunking is due,
/// falling back to chunks (in a new session) when the single PUT fails, and
/// to a single PUT when chunks are refused.
pub async fn send(t: &Transport, repo: &str, blob: &BlobData, session: Session, blob_limit: u64) -> Result<()> {
    let size = blob.desc.size;
    let blob_max = t.host.blob_max;
    let asked_for_chunks = session.chunk_min.is_some();
    let chunked = (blob_max > 0 && size > blob_max as u64) || asked_for_chunks;
    if !chunked {
        match put_whole(t, repo, blob, &session).await {
            Ok(()) => return Ok(()),
            // The source failed (stalled, gone, wrong bytes): sending it in chunks
            // would read the same source again and fail the same way.
            Err(Failed::Source(e)) => return Err(e),
            Err(Failed::Target(e) | Failed::Refused(e)) if !chunks_may_help(&e) => return Err(e),
            Err(Failed::Target(e) | Failed::Refused(e)) => {
                tracing::debug!(repo, digest = blob.desc.digest, error = %e, "Single PUT failed, retrying in chunks");
            }
        }
        let session = start(t, repo, &blob.desc.digest, None).await?.expect("no mount asked");
        return put_chunks(t, repo, blob, session, blob_limit).await.map_err(Failed::into_error).map(|_| ());
    }
    match put_chunks(t, repo, blob, session, blob_limit).await {
        Ok(()) => Ok(()),
        // Only a registry that refuses chunks outright gets the single PUT; one
        // that asked for chunks, or failed in the middle, would fail it too.
        Err(Failed::Refused(e)) if !asked_for_chunks => {
            tracing::debug!(repo, digest = blob.desc.digest, error = %e, "Chunks refused, retrying as a single PUT");
            let session = start(t, repo, &blob.desc.digest, None).await?.expect("no mount asked");
            put_whole(t, repo, blob, &session).await.map_err(Failed::into_error)
        }
        Err(e) => Err(e.into_error()),
    }
}

/// Whether a failed single PUT may go through in chunks: not when the
/// registry refused the login, the repository or the bytes themselves.
fn chunks_may_help(e: &ClientError) -> bool {
    let refused = matches!(e.status, Some(401 | 403))
        || matches!(e.code.as_deref(), Some("NAME_UNKNOWN" | "DIGEST_INVALID" | "DENIED" | "UNAUTHORIZED"));
    !refused
}

/// Why an upload failed, which decides whether another way may work.
enum Failed {
    /// Reading the blob (the source, or its digest check).
    Source(ClientError),
    /// The registry we upload to.
    Target(ClientError),
    /// The registry refused the first chunk: it may not take chunks at all.
    Refused(ClientError),
}

impl Failed {
    fn into_error(self) -> ClientError {
        match self {
            Failed::Source(e) | Failed::Target(e) | Failed::Refused(e) => e,
        }
    }
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
    finished(t, repo, &blob.desc.digest, resp, &url).await.map_err(Failed::Target)
}

/// Accepts the answer to the PUT that completes an upload. `201` and `204`
/// say it is done; a `200` or `202` may also mean a session still open, so
/// the blob must be named in the answer or be there.
async fn finished(t: &Transport, repo: &str, digest: &str, resp: Response, url: &str) -> Result<()> {
    let status = resp.status();
    match status {
        201 | 204 => Ok(()),
        200 | 202 => {
            tracing::debug!(url = strip_query(url), status, "Upload completed with an unusual status");
            if resp.header("docker-content-digest").as_deref() == Some(digest) {
                return Ok(());
            }
            drop(resp);
            let blob = format!("{}/v2/{repo}/blobs/{digest}", t.base_url);
            let head = Request::new(Method::HEAD, blob, Scope::Repository { name: repo.to_string(), push: false });
            match t.send(head).await?.status() {
                200 => Ok(()),
                other => Err(ClientError::new(
                    ErrorKind::Invalid,
                    strip_query(url),
                    format!("upload of {digest} answered {status} but the blob is not there ({other})"),
                )),
            }
        }
        _ => Err(Transport::error(resp, url).await),
    }
}

/// The end (exclusive) of the bytes a registry says it holds, from a `Range`
/// header: `0-N` (or `bytes=0-N`) means `N + 1`.
fn held(range: &str) -> Option<u64> {
    let range = range.trim();
    let range = range.strip_prefix("bytes=").unwrap_or(range);
    let (start, end) = range.split_once('-')?;
    let (start, end): (u64, u64) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    if start != 0 {
        return None;
    }
    end.checked_add(1)
}

/// Reads a `Range` answer after a chunk `offset..=end` was sent. distribution
/// says `0-0` for an empty upload as for one byte: at the start, after more
/// than one byte, it can only mean nothing was kept.
fn held_after(range: Option<String>, offset: u64, end: u64) -> Option<u64> {
    let held = held(&range?)?;
    Some(if offset == 0 && held == 1 && end > 0 { 0 } else { held })
}

/// An upload's status (after a `416`): its `Range`, and where to continue.
async fn upload_status(t: &Transport, location: &str, scope: &Scope) -> Result<(Option<String>, String)> {
    let resp = t.send(Request::new(Method::GET, location.to_string(), scope.clone())).await?;
    if !matches!(resp.status(), 200 | 204) {
        return Err(Transport::error(resp, location).await);
    }
    let next = match resp.header("location") {
        Some(l) => urls::join(location, &l)?,
        None => location.to_string(),
    };
    Ok((resp.header("range"), next))
}

async fn put_chunks(
    t: &Transport,
    repo: &str,
    blob: &BlobData,
    session: Session,
    blob_limit: u64,
) -> std::result::Result<(), Failed> {
    let mut chunk_size = t.host.blob_chunk.max(1) as u64;
    if let Some(min) = session.chunk_min {
        chunk_size = chunk_size.max(min.min(blob_limit));
    }
    // A chunk never needs more room than the blob.
    let size = blob.desc.size.max(1);
    chunk_size = chunk_size.min(size);
    let scope = Scope::Repository { name: repo.to_string(), push: true };
    let mut location = session.location;
    // Bytes confirmed by the registry; `pending` holds what follows them,
    // read from the source and not sent yet.
    let mut offset = 0u64;
    let mut pending = BytesMut::with_capacity(chunk_size as usize);
    let (mut stream, failure) = blob.stream_watched();
    let mut stalled = 0usize;
    let mut first = true;
    let mut source_done = false;
    loop {
        while !source_done && (pending.len() as u64) < chunk_size {
            match stream.next().await {
                Some(Ok(bytes)) => pending.extend_from_slice(&bytes),
                Some(Err(e)) => return Err(Failed::Source(e)),
                None => source_done = true,
            }
        }
        if pending.is_empty() {
            break;
        }
        let take = (pending.len() as u64).min(chunk_size) as usize;
        let chunk = pending.split_to(take).freeze();
        let end = offset + chunk.len() as u64 - 1;
        let req = Request::new(Method::PATCH, location.clone(), scope.clone())
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{offset}-{end}"))
            .body(Body::Bytes(chunk.clone()));
        let resp = t.send(req).await.map_err(Failed::Target)?;
        let status = resp.status();
        let now_held = match status {
            // 201: ECR answers chunks as if the upload were complete.
            201..=204 => {
                if status != 202 {
                    tracing::debug!(url = strip_query(&location), status, "Chunk taken with an unusual status");
                }
                if let Some(min) = chunk_min(&resp) {
                    chunk_size = chunk_size.max(min.min(blob_limit)).min(size);
                }
                if let Some(next) = resp.header("location") {
                    location = urls::join(&location, &next).map_err(Failed::Target)?;
                }
                // No Range in the answer: taken as all sent (older registries).
                held_after(resp.header("range"), offset, end).unwrap_or(end + 1)
            }
            416 => {
                drop(resp);
                // A registry that cannot say where the first chunk stands may not take chunks at all.
                let (range, next) = upload_status(t, &location, &scope)
                    .await
                    .map_err(|e| if first { Failed::Refused(e) } else { Failed::Target(e) })?;
                // No Range: the registry holds nothing yet.
                let now_held = held_after(range, offset, end).unwrap_or(0);
                tracing::debug!(
                    url = strip_query(&location),
                    held = now_held,
                    "Chunk refused as out of range, resuming"
                );
                location = next;
                now_held
            }
            _ => {
                let e = Transport::error(resp, &location).await;
                let refused = first && matches!(status, 400 | 404 | 405 | 413 | 415 | 501);
                return Err(if refused { Failed::Refused(not_created(e)) } else { Failed::Target(e) });
            }
        };
        first = false;
        if now_held < offset {
            // Before what it confirmed: those bytes are gone from memory.
            return Err(Failed::Target(ClientError::new(
                ErrorKind::Invalid,
                strip_query(&location),
                format!(
                    "upload of {} broken: the registry holds {now_held} bytes after bytes {offset}-{end} were sent",
                    blob.desc.digest
                ),
            )));
        }
        // One byte more than was sent is a registry counting its own way
        // (an exclusive end); more means bytes we did not send, or sent twice.
        let now_held = if now_held == end + 2 {
            tracing::debug!(
                url = strip_query(&location),
                held = now_held,
                sent = end + 1,
                "Range one beyond the bytes sent"
            );
            end + 1
        } else if now_held > end + 2 {
            return Err(Failed::Target(ClientError::new(
                ErrorKind::Invalid,
                strip_query(&location),
                format!(
                    "upload of {} broken: the registry holds {now_held} bytes after only {} were sent",
                    blob.desc.digest,
                    end + 1
                ),
            )));
        } else {
            now_held
        };
        if now_held == offset {
            stalled += 1;
            if stalled >= MAX_STALLED_CHUNKS {
                return Err(Failed::Target(ClientError::new(
                    ErrorKind::Invalid,
                    strip_query(&location),
                    format!(
                        "upload of {} stalled: the registry stopped taking data at byte {offset} of {} ({stalled} chunks in a row not taken)",
                        blob.desc.digest, blob.desc.size
                    ),
                )));
            }
        } else {
            stalled = 0;
        }
        if now_held <= end {
            // Rare: the registry kept part of the chunk; the rest goes first again.
            let mut again = BytesMut::from(&chunk[(now_held - offset) as usize..]);
            again.extend_from_slice(&pending);
            pending = again;
        }
        offset = now_held;
    }
    if let Some(e) = failure.lock().expect("poisoned").take() {
        return Err(Failed::Source(e));
    }
    let url = urls::with_query(&location, &[("digest", &blob.desc.digest)]).map_err(Failed::Target)?;
    let resp = t
        .send(Request::new(Method::PUT, url.clone(), scope).body(Body::Bytes(Bytes::new())))
        .await
        .map_err(Failed::Target)?;
    finished(t, repo, &blob.desc.digest, resp, &url).await.map_err(Failed::Target)
}

#[cfg(test)]
mod tests {
    use super::held;

    #[test]
    fn range_answers_read_as_bytes_held() {
        assert_eq!(held("0-1023"), Some(1024));
        assert_eq!(held("bytes=0-99"), Some(100));
        assert_eq!(held(" 0-0 "), Some(1));
        assert_eq!(held("5-9"), None);
        assert_eq!(held("0-"), None);
        assert_eq!(held("junk"), None);
        assert_eq!(held(&format!("0-{}", u64::MAX)), None);
    }

    #[test]
    fn an_empty_upload_reads_as_nothing_held() {
        use super::held_after;
        assert_eq!(held_after(Some("0-0".into()), 0, 1023), Some(0));
        assert_eq!(held_after(Some("0-0".into()), 0, 0), Some(1), "a one-byte chunk");
        assert_eq!(held_after(Some("0-1023".into()), 0, 1023), Some(1024));
        assert_eq!(held_after(None, 0, 1023), None);
    }
}
