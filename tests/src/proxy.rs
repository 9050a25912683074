//! A fault-injecting HTTP proxy of our own, in front of a real registry:
//! answers with 429/5xx, breaks connections in the middle of a body,
//! corrupts bytes, rejects large uploads, adds headers, and logs every
//! request so tests can count them. The registry behind stays real.

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` seconds) instead of forwarding.
    Status {
        /// HTTP status.
        code: u16,
        /// `Retry-After` value.
        retry_after: Option<u64>,
    },
    /// Forward, then send only the first `bytes` of the body and close the connection.
    Reset {
        /// Bytes of body sent before closing.
        bytes: usize,
    },
    /// Forward, then flip one byte of the body.
    Corrupt,
    /// Answer 413 when the request body is larger than this.
    RejectLargerThan(usize),
    /// Forward, and add this header to the response.
    AddHeader(String, String),
    /// Wait this long, then forward (a slow registry).
    Delay(Duration),
    /// Forward, and drop this response header (e.g. `Link`).
    StripHeader(String),
    /// Serve `tags/list` in pages of this size with `Link` headers, using
    /// `n`/`last` like newer registries (distribution 2.8 ignores `n` for tags).
    PaginateTags(usize),
}

/// A fault for the next `times` requests with `method` whose path contains `path`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// HTTP method, or `None` for any.
    pub method: Option<String>,
    /// A substring of the path (and query).
    pub path: String,
    /// What to do.
    pub fault: Fault,
    /// How many more requests it applies to.
    pub times: usize,
}

impl Rule {
    /// A rule for `times` requests.
    pub fn new(method: Option<&str>, path: &str, fault: Fault, times: usize) -> Self {
        Rule { method: method.map(str::to_string), path: path.to_string(), fault, times }
    }
}

/// One proxied request, as logged.
#[derive(Debug, Clone)]
pub struct Logged {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Status sent back.
    pub status: u16,
    /// The `Range` request header, if any.
    pub range: Option<String>,
    /// The `Content-Range` request header, if any.
    pub content_range: Option<String>,
    /// Request body length.
    pub body_len: usize,
    /// The `User-Agent` request header (tells processes sharing a proxy apart).
    pub user_agent: Option<String>,
    /// When the request arrived.
    pub at: std::time::Instant,
}

/// The referrers API (OCI distribution 1.1) the proxy adds in front of a
/// registry without it: manifests pushed through the proxy with a `subject`
/// are indexed and answered with `OCI-Subject`, and
/// `GET /v2/<repo>/referrers/<digest>` lists them, `page` at a time with
/// `Link` headers.
#[derive(Default)]
struct ReferrersApi {
    page: usize,
    listed: std::collections::HashMap<(String, String), Vec<serde_json::Value>>,
}

type SharedApi = Arc<Mutex<Option<ReferrersApi>>>;

/// A running proxy; it stops accepting when dropped.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`
    pub host: String,
    /// Requests being handled now, and the most seen at once.
    pub in_flight: Arc<(std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize)>,
    rules: Arc<Mutex<Vec<Rule>>>,
    log: Arc<Mutex<Vec<Logged>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    api: SharedApi,
    quirks: SharedQuirks,
}

type SharedQuirks = Arc<Mutex<crate::quirks::Quirks>>;

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let host = listener.local_addr().expect("addr").to_string();
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let log: Arc<Mutex<Vec<Logged>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let upstream = upstream.trim_end_matches('/').to_string();
        let in_flight: Arc<(std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize)> = Arc::default();
        let api: SharedApi = Arc::default();
        let quirks: SharedQuirks = Arc::default();
        let (r, l, s, f, a, q) =
            (rules.clone(), log.clone(), stop.clone(), in_flight.clone(), api.clone(), quirks.clone());
        let own = format!("http://{host}");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (r, l, up, f, me) = (r.clone(), l.clone(), upstream.clone(), f.clone(), own.clone());
                let (a, q) = (a.clone(), q.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, (&up, &me), &r, &l, &f, (&a, &q));
                });
            }
        });
        FaultProxy { host, in_flight, rules, log, stop, api, quirks }
    }

    /// Imitates a registry quirk from now on (see [`crate::quirks::Quirk`]).
    pub fn quirk(&self, quirk: crate::quirks::Quirk) {
        if let crate::quirks::Quirk::ReferrersApi { page } = quirk {
            self.emulate_referrers_api(page);
        }
        self.quirks.lock().unwrap().on.push(quirk);
    }

    /// The pre-signed URLs [`crate::quirks::Quirk::BlobsFromStorage`] hands out.
    pub(crate) fn signed_urls(&self) -> crate::quirks::SignedUrls {
        self.quirks.lock().unwrap().signed.clone()
    }

    /// Offers the referrers API from now on, listing `page` referrers per
    /// response. Only manifests pushed through this proxy are indexed.
    pub fn emulate_referrers_api(&self, page: usize) {
        *self.api.lock().unwrap() = Some(ReferrersApi { page: page.max(1), ..ReferrersApi::default() });
    }

    /// Adds a rule.
    pub fn add(&self, rule: Rule) {
        self.rules.lock().unwrap().push(rule);
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    /// Requests with this method whose path contains `path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.log().iter().filter(|l| l.method == method && l.path.contains(path)).count()
    }

    /// The most requests handled at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.in_flight.1.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

/// A real registry (relative `Location`s, so uploads come back through the
/// proxy) with this proxy in front of it.
pub fn proxied(options: crate::registry::RegistryOptions) -> (crate::registry::Registry, FaultProxy) {
    let reg = crate::registry::Registry::start_with(options.relative_urls());
    let proxy = FaultProxy::start(&reg.url);
    (reg, proxy)
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
    }
}

fn take_fault(rules: &Mutex<Vec<Rule>>, method: &str, path: &str, body_len: usize) -> Option<Fault> {
    let mut rules = rules.lock().unwrap();
    let rule = rules.iter_mut().find(|r| {
        r.times > 0
            && r.method.as_deref().is_none_or(|m| m == method)
            && path.contains(&r.path)
            && match r.fault {
                Fault::RejectLargerThan(max) => body_len > max,
                _ => true,
            }
    })?;
    rule.times -= 1;
    Some(rule.fault.clone())
}

/// Counts a request as in flight while alive.
struct InFlight<'a>(&'a (std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize));

impl<'a> InFlight<'a> {
    fn new(c: &'a (std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize)) -> Self {
        let now = c.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        c.1.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
        InFlight(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `(repository, rest)` of `/v2/<repository>/<kind>/<rest>`.
fn split_route<'p>(path: &'p str, kind: &str) -> Option<(&'p str, &'p str)> {
    let path = path.split('?').next()?.strip_prefix("/v2/")?;
    let at = path.find(&format!("/{kind}/"))?;
    Some((&path[..at], &path[at + kind.len() + 2..]))
}

/// A response the proxy makes up: status, headers, body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// The referrers listing for a `GET /v2/<repo>/referrers/<digest>`, if the
/// API is emulated and this is one.
fn referrers_answer(api: &SharedApi, method: &str, path: &str) -> Option<Answer> {
    let api = api.lock().unwrap();
    let api = api.as_ref()?;
    let (repo, digest) = split_route(path, "referrers").filter(|_| method == "GET")?;
    let page: usize = path
        .split_once('?')
        .and_then(|(_, q)| q.split('&').find_map(|p| p.strip_prefix("page=")))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let all = api.listed.get(&(repo.to_string(), digest.to_string())).cloned().unwrap_or_default();
    let chunk: Vec<serde_json::Value> = all.iter().skip(page * api.page).take(api.page).cloned().collect();
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": chunk,
    })
    .to_string()
    .into_bytes();
    let mut headers = vec![
        ("Content-Type".to_string(), "application/vnd.oci.image.index.v1+json".to_string()),
        ("Content-Length".to_string(), body.len().to_string()),
    ];
    if (page + 1) * api.page < all.len() {
        // A target without scheme and host, as registries send them.
        headers.push(("Link".to_string(), format!("</v2/{repo}/referrers/{digest}?page={}>; rel=\"next\"", page + 1)));
    }
    Some((200, headers, body))
}

/// Indexes a manifest pushed with a `subject`; returns the subject digest.
fn index_referrer(api: &SharedApi, path: &str, content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let mut api = api.lock().unwrap();
    let api = api.as_mut()?;
    let (repo, _) = split_route(path, "manifests")?;
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    let subject = doc["subject"]["digest"].as_str()?.to_string();
    let media_type = doc["mediaType"].as_str().or(content_type).unwrap_or_default();
    let mut desc = serde_json::json!({
        "mediaType": media_type,
        "digest": crate::oci::sha256_digest(body),
        "size": body.len(),
    });
    if let Some(t) = doc["artifactType"].as_str().or(doc["config"]["mediaType"].as_str()) {
        desc["artifactType"] = serde_json::json!(t);
    }
    if doc["annotations"].is_object() {
        desc["annotations"] = doc["annotations"].clone();
    }
    let list = api.listed.entry((repo.to_string(), subject.clone())).or_default();
    if !list.iter().any(|d| d["digest"] == desc["digest"]) {
        list.push(desc);
    }
    Some(subject)
}

fn serve(
    conn: TcpStream,
    (upstream, own): (&str, &str),
    rules: &Mutex<Vec<Rule>>,
    log: &Mutex<Vec<Logged>>,
    flight: &(std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize),
    (api, quirks): (&SharedApi, &SharedQuirks),
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("proxy client");
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let Some(request) = crate::http1::read_request(&mut reader)? else {
            return Ok(());
        };
        let len = request.body.len();
        let range = request.header("range").map(str::to_string);
        let content_range = request.header("content-range").map(str::to_string);
        let user_agent = request.header("user-agent").map(str::to_string);
        let crate::http1::Request { method, target: path, headers, body } = request;
        let at = std::time::Instant::now();
        let _counted = InFlight::new(flight);
        let fault = take_fault(rules, &method, &path, len);
        let record = |status: u16| {
            log.lock().unwrap().push(Logged {
                method: method.clone(),
                path: path.clone(),
                status,
                range: range.clone(),
                content_range: content_range.clone(),
                body_len: len,
                user_agent: user_agent.clone(),
                at,
            });
        };
        let respond = |out: &mut TcpStream,
                       status: u16,
                       hdrs: &[(String, String)],
                       body: &[u8],
                       head: bool|
         -> std::io::Result<()> {
            let mut text = format!("HTTP/1.1 {status} X\r\n");
            for (k, v) in hdrs {
                text.push_str(&format!("{k}: {v}\r\n"));
            }
            text.push_str("\r\n");
            out.write_all(text.as_bytes())?;
            if !head {
                out.write_all(body)?;
            }
            out.flush()
        };
        let seen = crate::quirks::Seen { method: &method, path: &path, headers: &headers, body: &body };
        let made_up = quirks.lock().unwrap().answer(&seen, upstream, &client);
        if let Some((status, hdrs, body)) = made_up {
            record(status);
            respond(&mut out, status, &hdrs, &body, method == "HEAD")?;
            continue;
        }
        if let Some((status, hdrs, body)) = referrers_answer(api, &method, &path) {
            record(status);
            respond(&mut out, status, &hdrs, &body, false)?;
            continue;
        }
        match &fault {
            Some(Fault::Status { code, retry_after }) => {
                record(*code);
                let mut hdrs = vec![("Content-Length".to_string(), "0".to_string())];
                if let Some(s) = retry_after {
                    hdrs.push(("Retry-After".to_string(), s.to_string()));
                }
                respond(&mut out, *code, &hdrs, b"", false)?;
                continue;
            }
            Some(Fault::RejectLargerThan(_)) => {
                record(413);
                respond(&mut out, 413, &[("Content-Length".to_string(), "0".to_string())], b"", false)?;
                continue;
            }
            _ => {}
        }
        if let Some(Fault::PaginateTags(page)) = &fault {
            let (base, query) = path.split_once('?').unwrap_or((&path, ""));
            let param = |k: &str| query.split('&').find_map(|p| p.strip_prefix(&format!("{k}=")).map(str::to_string));
            let n: usize = param("n").and_then(|v| v.parse().ok()).unwrap_or(*page);
            let full: serde_json::Value = client
                .get(format!("{upstream}{base}"))
                .send()
                .and_then(|r| r.bytes())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let mut tags: Vec<String> =
                full["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_string)).collect();
            tags.sort();
            let start = param("last").map_or(0, |l| tags.iter().position(|t| *t > l).unwrap_or(tags.len()));
            let page_tags: Vec<String> = tags.iter().skip(start).take(n).cloned().collect();
            let body = serde_json::json!({"name": full["name"], "tags": page_tags}).to_string();
            let mut hdrs = vec![
                ("Content-Type".to_string(), "application/json".to_string()),
                ("Content-Length".to_string(), body.len().to_string()),
            ];
            if start + n < tags.len() {
                let last = page_tags.last().cloned().unwrap_or_default();
                hdrs.push(("Link".to_string(), format!("<{base}?n={n}&last={last}>; rel=\"next\"")));
            }
            record(200);
            respond(&mut out, 200, &hdrs, body.as_bytes(), false)?;
            continue;
        }
        if let Some(Fault::Delay(d)) = &fault {
            std::thread::sleep(*d);
        }
        let pushed_manifest = (method == "PUT" && split_route(&path, "manifests").is_some()).then(|| body.clone());
        let content_type = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.clone());
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let forward = quirks.lock().unwrap().forward_path(&path);
        let mut req = client.request(m, format!("{upstream}{forward}"));
        for (k, v) in &headers {
            if !matches!(k.to_ascii_lowercase().as_str(), "host" | "connection" | "content-length") {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        let resp = match req.body(body).send() {
            Ok(r) => r,
            Err(_) => {
                record(502);
                respond(&mut out, 502, &[("Content-Length".to_string(), "0".to_string())], b"", false)?;
                continue;
            }
        };
        let mut status = resp.status().as_u16();
        let mut hdrs: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "connection" | "transfer-encoding" | "content-length"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        // Upload sessions come back through the proxy, so every request is seen.
        for (k, v) in hdrs.iter_mut() {
            if k.eq_ignore_ascii_case("location") && v.starts_with(upstream) {
                *v = format!("{own}{}", &v[upstream.len()..]);
            }
        }
        let upstream_len = resp.headers().get("content-length").and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut bytes = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
        {
            let seen = crate::quirks::Seen { method: &method, path: &path, headers: &headers, body: &[] };
            quirks.lock().unwrap().rewrite(&seen, (upstream, &client), &mut status, &mut hdrs, &mut bytes);
        }
        let head = method == "HEAD";
        let length = if head { upstream_len.unwrap_or_else(|| "0".into()) } else { bytes.len().to_string() };
        hdrs.push(("Content-Length".to_string(), length));
        if status == 201
            && let Some(pushed) = &pushed_manifest
            && let Some(subject) = index_referrer(api, &path, content_type.as_deref(), pushed)
        {
            hdrs.push(("OCI-Subject".to_string(), subject));
        }
        record(status);
        match fault {
            Some(Fault::Reset { bytes: n }) if !head => {
                let mut text = format!("HTTP/1.1 {status} X\r\n");
                for (k, v) in &hdrs {
                    text.push_str(&format!("{k}: {v}\r\n"));
                }
                text.push_str("\r\n");
                out.write_all(text.as_bytes())?;
                out.write_all(&bytes[..n.min(bytes.len())])?;
                out.flush()?;
                let _ = out.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
            Some(Fault::Corrupt) if !bytes.is_empty() => {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0xff;
            }
            Some(Fault::AddHeader(k, v)) => hdrs.push((k, v)),
            Some(Fault::StripHeader(name)) => hdrs.retain(|(k, _)| !k.eq_ignore_ascii_case(&name)),
            _ => {}
        }
        respond(&mut out, status, &hdrs, &bytes, head)?;
    }
}
