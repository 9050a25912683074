//! A hostile registry of our own, for the tests that prove the client's
//! bounds. It stands in front of a real registry and forwards whatever it
//! does not make up; per repository it can instead send what broken or
//! malicious registries send: an endless tag list, a huge manifest, a body
//! that stalls, an HTML login page with status 200, blob redirects to
//! another host, and made-up content (a deeply nested index, referrers that
//! loop or fan out without end). Every request is logged.
//!
//! [`Elsewhere`] is the other host a redirect points to: it records what it
//! is sent (an `Authorization` header above all) and answers with a closure.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http1::{Request, read_request};
use crate::oci::sha256_digest;

/// What a repository of the hostile registry does instead of forwarding.
#[derive(Debug, Clone)]
pub enum Scene {
    /// `tags/list` streams a JSON list of `bytes` bytes, no `Content-Length`.
    EndlessTags {
        /// How much to send.
        bytes: u64,
    },
    /// Manifests are `bytes` long, announced with `Content-Length` and streamed.
    HugeManifest {
        /// Size of each manifest.
        bytes: u64,
    },
    /// Blob GETs send the blob's first `after` bytes, then nothing, holding
    /// the connection open (a range starting later gets no bytes at all).
    StallBlobs {
        /// Bytes sent before the stall.
        after: usize,
    },
    /// Manifests are an HTML login page, with status 200.
    Html,
    /// Blob GETs are answered `307` to `<to>/<repo>/<digest>`.
    RedirectBlobs {
        /// The URL prefix redirected to.
        to: String,
    },
    /// Manifests, blobs, tags and referrers come from what [`Hostile::put_manifest`],
    /// [`Hostile::put_blob`] and [`Hostile::set_referrers`] made up.
    Memory,
    /// Manifests answer 404 with an error body of `bytes` (announced, streamed).
    HugeError {
        /// Size of the error body.
        bytes: u64,
    },
    /// Blob GETs send `chunk` bytes every `every`: slow, but moving.
    Trickle {
        /// Bytes per step.
        chunk: usize,
        /// Time between steps.
        every: Duration,
    },
    /// Manifest requests are read and never answered.
    Silent,
}

/// One request, as logged.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Whether it carried an `Authorization` header.
    pub authorization: bool,
}

#[derive(Default)]
struct State {
    upstream: String,
    scenes: HashMap<String, Scene>,
    /// Digest → (media type, bytes) of made-up content.
    content: HashMap<String, (String, Vec<u8>)>,
    /// (repository, tag) → digest of made-up manifests.
    tags: HashMap<(String, String), String>,
    /// Subject digest → the descriptors its referrers listing gives.
    referrers: HashMap<String, Vec<Value>>,
    basic: Option<(String, String)>,
    /// A bearer realm every request must have a token from (any token).
    bearer: Option<String>,
    log: Vec<Seen>,
}

/// The hostile registry; it stops accepting when dropped.
pub struct Hostile {
    /// `127.0.0.1:PORT`
    pub host: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    /// Starts in front of `upstream` (`http://127.0.0.1:PORT`, without auth).
    pub fn start(upstream: &str) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind hostile registry");
        let host = listener.local_addr().expect("addr").to_string();
        let state =
            Arc::new(Mutex::new(State { upstream: upstream.trim_end_matches('/').to_string(), ..State::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let own = format!("http://{host}");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, st, own) = (s.clone(), st.clone(), own.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &s, &st, &own);
                });
            }
        });
        Hostile { host, state, stop }
    }

    /// Requires basic auth with these credentials for every request.
    pub fn require_basic(&self, user: &str, pass: &str) {
        self.state.lock().unwrap().basic = Some((user.to_string(), pass.to_string()));
    }

    /// Requires a bearer token from `realm` for every request (any token passes).
    pub fn require_bearer(&self, realm: &str) {
        self.state.lock().unwrap().bearer = Some(realm.to_string());
    }

    /// Makes `repo` act out `scene`.
    pub fn scene(&self, repo: &str, scene: Scene) {
        self.state.lock().unwrap().scenes.insert(repo.to_string(), scene);
    }

    /// Made-up blob content; its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        self.state.lock().unwrap().content.insert(digest.clone(), ("application/octet-stream".into(), bytes.to_vec()));
        digest
    }

    /// A made-up manifest, tagged `tag` in `repo` when given; its descriptor.
    pub fn put_manifest(&self, repo: &str, tag: Option<&str>, doc: &Value) -> Value {
        let bytes = serde_json::to_vec(doc).expect("json");
        let media_type = doc["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json").to_string();
        let digest = sha256_digest(&bytes);
        let mut state = self.state.lock().unwrap();
        state.content.insert(digest.clone(), (media_type.clone(), bytes.clone()));
        if let Some(tag) = tag {
            state.tags.insert((repo.to_string(), tag.to_string()), digest.clone());
        }
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    /// The bytes of made-up content named by a descriptor from [`Hostile::put_manifest`].
    pub fn manifest_bytes(&self, desc: &Value) -> Vec<u8> {
        let digest = desc["digest"].as_str().unwrap_or_default();
        self.state.lock().unwrap().content.get(digest).map(|(_, b)| b.clone()).unwrap_or_default()
    }

    /// What `GET /v2/<repo>/referrers/<subject>` lists (true or not).
    pub fn set_referrers(&self, subject: &str, referrers: Vec<Value>) {
        self.state.lock().unwrap().referrers.insert(subject.to_string(), referrers);
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Seen> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
    }
}

/// A small image made up in `h` (config and one layer) under `repo:tag`; its descriptor.
pub fn made_up_image(h: &Hostile, repo: &str, tag: Option<&str>, seed: &str) -> Value {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
    let layer = format!("layer of {seed}").repeat(10);
    let (c, l) = (h.put_blob(config.as_bytes()), h.put_blob(layer.as_bytes()));
    h.put_manifest(
        repo,
        tag,
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l, "size": layer.len()}],
        }),
    )
}

/// `(repository, kind, rest)` of `/v2/<repository>/<kind>/<rest>`.
fn route(path: &str) -> Option<(String, &'static str, String)> {
    let path = path.split('?').next()?.strip_prefix("/v2/")?;
    for kind in ["manifests", "blobs", "tags", "referrers"] {
        if let Some(at) = path.rfind(&format!("/{kind}/")) {
            let rest = &path[at + kind.len() + 2..];
            if kind == "blobs" && rest.starts_with("uploads") {
                return None;
            }
            return Some((path[..at].to_string(), kind, rest.to_string()));
        }
    }
    None
}

fn head_text(status: u16, headers: &[(&str, String)]) -> String {
    let mut text = format!("HTTP/1.1 {status} X\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text + "\r\n"
}

fn answer(
    out: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    head: bool,
) -> std::io::Result<()> {
    let mut headers = headers.to_vec();
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
        headers.push(("Content-Length", body.len().to_string()));
    }
    out.write_all(head_text(status, &headers).as_bytes())?;
    if !head {
        out.write_all(body)?;
    }
    out.flush()
}

/// Holds a connection open without sending until the client gives up (or the server stops).
fn stall(out: &mut TcpStream, stop: &AtomicBool) {
    let _ = out.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::SeqCst) {
        match out.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// Streams `total` bytes made by `fill` (called with the offset), stopping at the first write error.
fn stream(out: &mut TcpStream, total: u64, mut fill: impl FnMut(u64, &mut Vec<u8>)) {
    let mut sent = 0u64;
    let mut chunk = Vec::with_capacity(64 << 10);
    while sent < total {
        chunk.clear();
        fill(sent, &mut chunk);
        let n = (chunk.len() as u64).min(total - sent) as usize;
        if out.write_all(&chunk[..n]).is_err() {
            return;
        }
        sent += n as u64;
    }
    let _ = out.flush();
}

fn serve(conn: TcpStream, state: &Mutex<State>, stop: &AtomicBool, own: &str) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("forwarding client");
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let Some(req) = read_request(&mut reader)? else { return Ok(()) };
        let head = req.method == "HEAD";
        let authorization = req.header("authorization").map(str::to_string);
        let (scene, basic, bearer, upstream) = {
            let mut s = state.lock().unwrap();
            s.log.push(Seen {
                method: req.method.clone(),
                path: req.target.clone(),
                authorization: authorization.is_some(),
            });
            let scene = route(&req.target).and_then(|(repo, _, _)| s.scenes.get(&repo).cloned());
            (scene, s.basic.clone(), s.bearer.clone(), s.upstream.clone())
        };
        if let Some(realm) = bearer
            && !authorization.as_deref().is_some_and(|a| a.starts_with("Bearer "))
        {
            let h = [("WWW-Authenticate", format!("Bearer realm=\"{realm}\",service=\"hostile\""))];
            answer(&mut out, 401, &h, b"", head)?;
            continue;
        }
        if let Some((user, pass)) = basic {
            use base64::Engine as _;
            let want = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")));
            if authorization.as_deref() != Some(want.as_str()) {
                let h = [("WWW-Authenticate", "Basic realm=\"hostile\"".to_string())];
                answer(&mut out, 401, &h, b"", head)?;
                continue;
            }
        }
        let Some((repo, kind, rest)) = route(&req.target) else {
            forward(&client, &upstream, own, &req, &mut out)?;
            continue;
        };
        match (scene, kind) {
            (Some(Scene::EndlessTags { bytes }), "tags") => {
                let h = [("Content-Type", "application/json".to_string()), ("Connection", "close".to_string())];
                out.write_all(head_text(200, &h).as_bytes())?;
                // Whole names only, then a proper end: valid JSON for a client that reads it all.
                let mut chunk = format!(r#"{{"name":"{repo}","tags":["#).into_bytes();
                let (mut sent, mut n) = (0u64, 0u64);
                while sent + chunk.len() as u64 + 20 < bytes {
                    chunk.extend_from_slice(format!(r#""t{n:08}","#).as_bytes());
                    n += 1;
                    if chunk.len() >= 60 << 10 {
                        if out.write_all(&chunk).is_err() {
                            return Ok(());
                        }
                        sent += chunk.len() as u64;
                        chunk.clear();
                    }
                }
                chunk.extend_from_slice(br#""end"]}"#);
                let _ = out.write_all(&chunk);
                return Ok(());
            }
            (Some(Scene::HugeManifest { bytes }), "manifests") => {
                let h = [
                    ("Content-Type", "application/vnd.oci.image.manifest.v1+json".to_string()),
                    ("Content-Length", bytes.to_string()),
                    ("Docker-Content-Digest", format!("sha256:{}", "ab".repeat(32))),
                ];
                out.write_all(head_text(200, &h).as_bytes())?;
                if !head {
                    let opening = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":""#;
                    stream(&mut out, bytes, |at, chunk| {
                        if at == 0 {
                            chunk.extend_from_slice(opening);
                        }
                        chunk.resize(chunk.len() + (64 << 10), b'a');
                    });
                    return Ok(());
                }
            }
            (Some(Scene::Html), "manifests") => {
                let page = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form>Password</form></body></html>\n";
                answer(&mut out, 200, &[("Content-Type", "text/html; charset=utf-8".to_string())], page, head)?;
            }
            (Some(Scene::StallBlobs { after }), "blobs") if req.method == "GET" => {
                let bytes = client
                    .get(format!("{upstream}/v2/{repo}/blobs/{rest}"))
                    .send()
                    .and_then(|r| r.bytes())
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                let start: usize = req
                    .header("range")
                    .and_then(|r| r.strip_prefix("bytes="))
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
                    .min(bytes.len());
                let status = if start > 0 { 206 } else { 200 };
                let h = [("Content-Length", (bytes.len() - start).to_string())];
                out.write_all(head_text(status, &h).as_bytes())?;
                if start < after {
                    out.write_all(&bytes[start..after.min(bytes.len())])?;
                    out.flush()?;
                }
                stall(&mut out, stop);
                return Ok(());
            }
            (Some(Scene::RedirectBlobs { to }), "blobs") if req.method == "GET" => {
                answer(&mut out, 307, &[("Location", format!("{to}/{repo}/{rest}"))], b"", false)?;
            }
            (Some(Scene::Memory), _) => made_up(state, &repo, kind, &rest, head, &mut out)?,
            (Some(Scene::HugeError { bytes }), "manifests") => {
                let h = [("Content-Type", "application/json".to_string()), ("Content-Length", bytes.to_string())];
                out.write_all(head_text(404, &h).as_bytes())?;
                if !head {
                    let opening = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":""#;
                    stream(&mut out, bytes, |at, chunk| {
                        if at == 0 {
                            chunk.extend_from_slice(opening);
                        }
                        chunk.resize(chunk.len() + (64 << 10), b'x');
                    });
                    return Ok(());
                }
            }
            (Some(Scene::Trickle { chunk, every }), "blobs") if req.method == "GET" => {
                let bytes = client
                    .get(format!("{upstream}/v2/{repo}/blobs/{rest}"))
                    .send()
                    .and_then(|r| r.bytes())
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                out.write_all(head_text(200, &[("Content-Length", bytes.len().to_string())]).as_bytes())?;
                for piece in bytes.chunks(chunk.max(1)) {
                    out.write_all(piece)?;
                    out.flush()?;
                    std::thread::sleep(every);
                }
            }
            (Some(Scene::Silent), "manifests") => {
                stall(&mut out, stop);
                return Ok(());
            }
            _ => forward(&client, &upstream, own, &req, &mut out)?,
        }
    }
}

/// Answers from made-up content: manifests and blobs by digest, manifests by
/// tag, the tag list and referrers listings.
fn made_up(
    state: &Mutex<State>,
    repo: &str,
    kind: &str,
    rest: &str,
    head: bool,
    out: &mut TcpStream,
) -> std::io::Result<()> {
    let s = state.lock().unwrap();
    let not_found = |out: &mut TcpStream, code: &str| {
        let body = json!({"errors": [{"code": code, "message": "unknown"}]}).to_string();
        answer(out, 404, &[("Content-Type", "application/json".to_string())], body.as_bytes(), head)
    };
    match kind {
        "manifests" | "blobs" => {
            let digest = if rest.starts_with("sha256:") {
                Some(rest.to_string())
            } else {
                s.tags.get(&(repo.to_string(), rest.to_string())).cloned()
            };
            match digest.and_then(|d| s.content.get(&d).map(|c| (d, c.clone()))) {
                Some((digest, (media_type, bytes))) => {
                    let h = [("Content-Type", media_type), ("Docker-Content-Digest", digest)];
                    answer(out, 200, &h, &bytes, head)
                }
                None => not_found(out, if kind == "blobs" { "BLOB_UNKNOWN" } else { "MANIFEST_UNKNOWN" }),
            }
        }
        "tags" => {
            let tags: Vec<&String> = s.tags.keys().filter(|(r, _)| r == repo).map(|(_, t)| t).collect();
            let body = json!({"name": repo, "tags": tags}).to_string();
            answer(out, 200, &[("Content-Type", "application/json".to_string())], body.as_bytes(), head)
        }
        _ => {
            let listed = s.referrers.get(rest).cloned().unwrap_or_default();
            let body = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": listed});
            let h = [("Content-Type", "application/vnd.oci.image.index.v1+json".to_string())];
            answer(out, 200, &h, body.to_string().as_bytes(), head)
        }
    }
}

fn forward(
    client: &reqwest::blocking::Client,
    upstream: &str,
    own: &str,
    req: &Request,
    out: &mut TcpStream,
) -> std::io::Result<()> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut r = client.request(method, format!("{upstream}{}", req.target));
    for (k, v) in &req.headers {
        if !matches!(k.to_ascii_lowercase().as_str(), "host" | "connection" | "content-length" | "authorization") {
            r = r.header(k.as_str(), v.as_str());
        }
    }
    let Ok(resp) = r.body(req.body.clone()).send() else {
        return answer(out, 502, &[], b"", false);
    };
    let status = resp.status().as_u16();
    let length = resp.headers().get("content-length").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "connection" | "transfer-encoding" | "content-length"))
        .map(|(k, v)| {
            let v = v.to_str().unwrap_or("").to_string();
            let v =
                if k == "location" && v.starts_with(upstream) { format!("{own}{}", &v[upstream.len()..]) } else { v };
            (k.to_string(), v)
        })
        .collect();
    let head = req.method == "HEAD";
    let body = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
    headers.push((
        "Content-Length".into(),
        if head { length.unwrap_or_else(|| "0".into()) } else { body.len().to_string() },
    ));
    let refs: Vec<(&str, String)> = headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    answer(out, status, &refs, &body, head)
}

/// What [`Elsewhere`] answers: status, headers, body.
pub type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// Another host, where redirects point: records every request and answers
/// with `reply` (given the request's path).
pub struct Elsewhere {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Elsewhere {
    /// Starts answering with `reply`.
    pub fn start(reply: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Elsewhere {
        Self::start_with_request(move |req| reply(&req.target))
    }

    /// Starts answering with `reply`, given the whole request.
    pub fn start_with_request(reply: impl Fn(&crate::http1::Request) -> Reply + Send + Sync + 'static) -> Elsewhere {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind elsewhere");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (s, reply) = (seen.clone(), Arc::new(reply));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s, reply) = (s.clone(), reply.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                    let mut out = conn;
                    while let Ok(Some(req)) = read_request(&mut reader) {
                        s.lock().unwrap().push(Seen {
                            method: req.method.clone(),
                            path: req.target.clone(),
                            authorization: req.header("authorization").is_some(),
                        });
                        let (status, headers, body) = reply(&req);
                        let refs: Vec<(&str, String)> = headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                        if answer(&mut out, status, &refs, &body, req.method == "HEAD").is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Elsewhere { url, seen }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
