//! Quirk mode of the fault proxy: named behaviours of registries in the wild
//! (ECR, GAR, Docker Hub, GHCR, zot, Artifactory…), each switched on per
//! test with [`crate::proxy::FaultProxy::quirk`], in front of the real test
//! registry. Each variant says which registry it imitates and the public
//! evidence for it; where the evidence names the behaviour but not the exact
//! status or body, the variant says what it assumes.
//!
//! The proxy forwards what a quirk leaves alone, so the registry behind
//! stays the judge of what was stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::json;

/// A response the proxy makes up or rewrites: status, headers, body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// One registry behaviour to imitate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quirk {
    /// **ECR**: a chunk `PATCH` answered `201 Created` instead of `202`.
    /// Evidence: regclient/regclient#81 ("Unexpected http status code [http
    /// 201]" pushing to ECR, fixed by accepting it, PR #82); openai/tart#273.
    PatchAnswered201,
    /// **Google Artifact Registry**: no chunked uploads; a `PATCH` is refused
    /// (assumed `405` with `UNSUPPORTED`). Evidence: GAR's Docker API
    /// reference ("does not support chunked uploads", quoted in
    /// dotnet/sdk-container-builds#287); kitops-ml/kitops#777.
    NoChunkedUploads,
    /// **Older JFrog Artifactory**: a monolithic `PUT` with the whole blob is
    /// refused; chunks are required (assumed `405`). Evidence:
    /// containerd/containerd#3533 ("jFrog is known to require PATCH",
    /// RTFACT-19344), moby/buildkit#1130.
    NoMonolithicPut,
    /// **OCI distribution 1.1**: the upload session announces
    /// `OCI-Chunk-Min-Length`. Evidence: distribution-spec `spec.md`
    /// (chunk minimum on the POST answer), opencontainers/distribution-spec#391.
    ChunkMinLength(usize),
    /// **ECR (2026)**: after the first chunk, `PATCH` is answered `201` with
    /// the first chunk's `Range` and the data is not taken; the upload status
    /// says the same. Evidence: aws/containers-roadmap#2831 (the `Range`
    /// stops at the first chunk boundary), crashappsec/chalk#682 (a client
    /// trusting it loops on 416). The proxy drops the later chunks, so a
    /// client that finishes anyway pushes a blob with wrong bytes.
    RangeStuck,
    /// **Any registry, lost answer**: the second chunk is stored, but its
    /// answer is `416 Range Not Satisfiable`, as a client sees it after a
    /// resent `PATCH`; the upload status (`GET` on the session) tells the
    /// truth. Evidence: distribution-spec `spec.md` (out-of-order chunks get
    /// 416; the client reads the status and resumes).
    PatchAnswered416Once,
    /// **Docker Hub**: a repository that does not exist is answered `401`
    /// with `error="insufficient_scope"` and a fresh challenge, even to a
    /// fresh token. Evidence: jupyterhub/binderhub#1664 ("Docker Hub now
    /// returns 401 for missing repos"), distribution/distribution#1291 and
    /// #4354 (the challenge). `realm` and `service` are the challenge's.
    MissingRepoDenied {
        /// Token realm of the challenge.
        realm: String,
        /// Service of the challenge.
        service: String,
    },
    /// **Artifactory (before 6.17)**: a Bearer challenge with only a realm,
    /// no `service` or `scope`. Evidence: containerd/containerd#3556.
    BearerWithoutScopeOrService,
    /// **Registries behind one gateway** (regclient/regclient#265): the realm
    /// is relative (`/token`); the proxy serves it by forwarding to `token_url`.
    RelativeRealm {
        /// Where `/token` really is.
        token_url: String,
    },
    /// **OAuth2 token servers**: the token answer has `access_token` and no
    /// `token` (Docker token spec: either may be sent). Needs
    /// [`Quirk::RelativeRealm`], which routes token requests through the proxy.
    AccessTokenOnly,
    /// **Any registry**: a Basic challenge without a realm, after a Bearer
    /// challenge that cannot be used (no realm): the bad one is skipped.
    /// Evidence: RFC 7235 appendix A relaxes the realm; regclient rejects
    /// such a challenge (`internal/auth/auth.go`), a failure worth not copying.
    BasicWithoutRealm,
    /// **S3, Azure Blob behind ECR, ACR, Harbor…**: blob `GET`s redirected to
    /// object storage with a pre-signed URL; the storage refuses any
    /// `Authorization` header (`400`). Evidence: renovatebot/renovate#3877
    /// (S3 "Only one auth mechanism allowed"), Azure/azure-sdk-for-js#20957.
    /// `storage` is the base URL of a [`Storage`].
    BlobsFromStorage {
        /// The storage's `http://127.0.0.1:PORT`.
        storage: String,
    },
    /// **Quay, Artifactory, ECR**: tag and catalog pages whose `Link` carries
    /// an opaque cursor (percent-encoded) that must come back untouched, and
    /// `n` above 1000 refused like ECR. Evidence: opencontainers/
    /// distribution-spec#116 (Quay's `next_page`), camallo/dkregistry-rs#236
    /// (Artifactory), google/go-containerregistry#681 (ECR: "maxResults …
    /// less than or equal to 1000").
    OpaquePages(usize),
    /// **Docker Hub and any rate-limited registry**: the first `times`
    /// manifest requests answered `429` with `Retry-After` as an HTTP date
    /// `seconds` ahead. Evidence: distribution-spec `spec.md` (429 SHOULD
    /// carry Retry-After, RFC 9110: seconds or a date), containerd/containerd#14066.
    RetryAfterDate {
        /// Seconds ahead.
        seconds: u64,
        /// How many manifest requests get it.
        times: usize,
    },
    /// **Docker Hub**: `RateLimit-Limit: 100;w=21600` and
    /// `RateLimit-Remaining: <n>;w=21600` on manifest answers. Evidence:
    /// docs.docker.com/docker-hub/usage/pulls; regclient
    /// `types/manifest/common.go` reads the number before `;`.
    RateLimitHeaders {
        /// The remaining count sent.
        remaining: u64,
    },
    /// **GHCR**: the referrers API answered `404` with a JSON error (body
    /// assumed `NOT_FOUND`). Evidence: dataaxiom/ghcr-cleanup-action#13,
    /// actions/attest-build-provenance#71; distribution-spec: a registry with
    /// the API never answers 404, the client falls back to the tag schema.
    ReferrersNotFound,
    /// **zot, Harbor 2.8+, distribution 3**: the referrers API, and a manifest
    /// `PUT` with a `subject` answered with `OCI-Subject` (the registry
    /// indexed it, no fallback tag is needed), `page` referrers per answer.
    /// Evidence: distribution-spec `spec.md` (OCI-Subject on push), zot's
    /// `pkg/api/routes.go` (sets it when the manifest has a subject).
    ReferrersApi {
        /// Referrers per page.
        page: usize,
    },
    /// **ECR**: a repository must exist before a push (`404 NAME_UNKNOWN` on
    /// the upload and manifest routes of any other). Evidence:
    /// regclient/regclient#869, plexsystems/sinker#55 (the error text).
    NoRepositoryCreation {
        /// Repositories that exist.
        existing: Vec<String>,
    },
    /// **ECR with immutable tags**: a manifest `PUT` to a tag that already
    /// exists is `400 TAG_INVALID` (status assumed). Evidence:
    /// osscontainertools/kaniko#204 (the error text).
    ImmutableTags,
    /// **zot (before 2.1.2)**: Docker media types refused with `415`.
    /// Evidence: project-zot/zot#596 (the bare 415, then a body), #724.
    NoDockerMediaTypes,
    /// **Nexus, some Artifactory**: `HEAD` on a manifest answers `404` while
    /// `GET` finds it. Evidence: andrey-pohilko/registry-cli#43,
    /// merll/docker-registry-util#3, nicholas-fedor/watchtower#669.
    HeadNotFound,
    /// **ECR, static S3 registries**: `HEAD` on a manifest without
    /// `Docker-Content-Digest`. Evidence: distribution/distribution#3792,
    /// concourse/registry-image-resource#249.
    HeadWithoutDigest,
    /// **Various**: harmless oddities: manifest `PUT` answered `200`, blob
    /// `PUT` `204`, upload `POST` `200`, and tag lists with an empty and a
    /// repeated name.
    OddButHarmless,
}

/// Pre-signed storage URLs: signature → (blob path, the `Authorization` the
/// registry saw, which the storage uses in its place).
pub type SignedUrls = Arc<Mutex<HashMap<String, (String, Option<String>)>>>;

/// The state quirks keep between requests.
#[derive(Default)]
pub(crate) struct Quirks {
    pub(crate) on: Vec<Quirk>,
    /// Per upload session (its path), the `Range` of its first chunk.
    first_range: HashMap<String, String>,
    /// Per upload session, the latest `Location` the registry gave (its state).
    latest: HashMap<String, String>,
    /// Chunks forwarded per upload session.
    patches: HashMap<String, usize>,
    /// Per cursor handed out, the real `last` value.
    cursors: HashMap<String, String>,
    /// Pre-signed storage URLs handed out.
    pub(crate) signed: SignedUrls,
    rate_limited: usize,
}

/// What a request looks like to a quirk.
pub(crate) struct Seen<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Seen<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn error_body(code: &str, message: &str) -> Vec<u8> {
    json!({"errors": [{"code": code, "message": message}]}).to_string().into_bytes()
}

fn json_answer(status: u16, body: Vec<u8>, extra: Vec<(String, String)>) -> Answer {
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Content-Length".to_string(), body.len().to_string()),
    ];
    headers.extend(extra);
    (status, headers, body)
}

/// `(repository, rest)` of `/v2/<repository>/<kind>/<rest>`, or of
/// `/v2/<repository>/tags/list` with `kind` "tags".
fn route<'p>(path: &'p str, kind: &str) -> Option<(&'p str, &'p str)> {
    let path = path.split('?').next()?.strip_prefix("/v2/")?;
    let at = path.find(&format!("/{kind}/"))?;
    Some((&path[..at], &path[at + kind.len() + 2..]))
}

fn header_of<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    headers.push((name.to_string(), value));
}

fn is_docker_type(t: &str) -> bool {
    t.starts_with("application/vnd.docker.")
}

impl Quirks {
    fn has(&self, q: &Quirk) -> bool {
        self.on.contains(q)
    }

    fn find<T>(&self, f: impl Fn(&Quirk) -> Option<T>) -> Option<T> {
        self.on.iter().find_map(f)
    }

    /// Rewrites the request's path before it is forwarded (an upload session
    /// continues from the registry's latest state, as stateful registries do).
    pub(crate) fn forward_path(&self, path: &str) -> String {
        let (session, query) = path.split_once('?').unwrap_or((path, ""));
        let Some(latest) = self.latest.get(session).filter(|_| self.has(&Quirk::PatchAnswered416Once)) else {
            return path.to_string();
        };
        // The registry's latest `_state`, the request's other parameters (`digest`).
        let state = latest.split_once('?').map(|(_, q)| q).unwrap_or("");
        let state = state.split('&').filter(|p| p.starts_with("_state="));
        let others = query.split('&').filter(|p| !p.is_empty() && !p.starts_with("_state="));
        let query: Vec<&str> = state.chain(others).collect();
        format!("{session}?{}", query.join("&"))
    }

    /// Answers a request without the registry, when a quirk says so.
    pub(crate) fn answer(&mut self, req: &Seen, upstream: &str, client: &reqwest::blocking::Client) -> Option<Answer> {
        let (method, path) = (req.method, req.path);
        let session = path.split('?').next().unwrap_or(path).to_string();
        let is_upload = route(path, "blobs").is_some_and(|(_, rest)| rest.starts_with("uploads/"));
        let is_session = is_upload && route(path, "blobs").is_some_and(|(_, rest)| rest.len() > "uploads/".len());
        if let Some(token_url) = self.find(|q| match q {
            Quirk::RelativeRealm { token_url } => Some(token_url.clone()),
            _ => None,
        }) && path.starts_with("/token")
        {
            let query = path.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
            let mut r =
                client.request(reqwest::Method::from_bytes(method.as_bytes()).ok()?, format!("{token_url}{query}"));
            for (k, v) in req.headers {
                if matches!(k.to_ascii_lowercase().as_str(), "authorization" | "content-type") {
                    r = r.header(k.as_str(), v.as_str());
                }
            }
            let resp = r.body(req.body.to_vec()).send().ok()?;
            let status = resp.status().as_u16();
            let mut body = resp.bytes().ok()?.to_vec();
            if status == 200 && self.has(&Quirk::AccessTokenOnly) {
                let mut doc: serde_json::Value = serde_json::from_slice(&body).ok()?;
                doc.as_object_mut()?.remove("token");
                body = doc.to_string().into_bytes();
            }
            return Some(json_answer(status, body, Vec::new()));
        }
        if is_session && method == "PATCH" {
            if self.has(&Quirk::NoChunkedUploads) {
                return Some(json_answer(
                    405,
                    error_body("UNSUPPORTED", "chunked uploads are not supported"),
                    Vec::new(),
                ));
            }
            if self.has(&Quirk::RangeStuck)
                && let Some(first) = self.first_range.get(&session)
            {
                let headers = vec![
                    ("Location".to_string(), path.to_string()),
                    ("Range".to_string(), first.clone()),
                    ("Content-Length".to_string(), "0".to_string()),
                ];
                return Some((201, headers, Vec::new()));
            }
        }
        if is_session && method == "GET" && self.has(&Quirk::RangeStuck) {
            let range = self.first_range.get(&session).cloned().unwrap_or_else(|| "0-0".to_string());
            let headers = vec![
                ("Location".to_string(), path.to_string()),
                ("Range".to_string(), range),
                ("Content-Length".to_string(), "0".to_string()),
            ];
            return Some((204, headers, Vec::new()));
        }
        if is_session && method == "PUT" && !req.body.is_empty() && self.has(&Quirk::NoMonolithicPut) {
            return Some(json_answer(
                405,
                error_body("UNSUPPORTED", "monolithic uploads are not supported"),
                Vec::new(),
            ));
        }
        if let Some(existing) = self.find(|q| match q {
            Quirk::NoRepositoryCreation { existing } => Some(existing.clone()),
            _ => None,
        }) {
            let repo = route(path, "blobs").or_else(|| route(path, "manifests")).map(|(r, _)| r);
            let writes = matches!(method, "POST" | "PUT" | "PATCH");
            if let Some(repo) = repo
                && writes
                && !existing.iter().any(|e| e == repo)
            {
                let message =
                    format!("The repository with name '{repo}' does not exist in the registry with id '123456789012'");
                return Some(json_answer(404, error_body("NAME_UNKNOWN", &message), Vec::new()));
            }
        }
        if method == "PUT"
            && let Some((repo, reference)) = route(path, "manifests")
        {
            let media_type = req.header("content-type").unwrap_or_default();
            if self.has(&Quirk::NoDockerMediaTypes) && is_docker_type(media_type) {
                let message = format!("unsupported manifest media type: {media_type}");
                return Some(json_answer(415, error_body("MANIFEST_INVALID", &message), Vec::new()));
            }
            if self.has(&Quirk::ImmutableTags) && !reference.starts_with("sha256:") {
                let exists = client
                    .head(format!("{upstream}/v2/{repo}/manifests/{reference}"))
                    .header("accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")
                    .send()
                    .is_ok_and(|r| r.status().as_u16() == 200);
                if exists {
                    let message = format!(
                        "The image tag '{reference}' already exists in the '{repo}' repository and cannot be overwritten because the repository is immutable."
                    );
                    return Some(json_answer(400, error_body("TAG_INVALID", &message), Vec::new()));
                }
            }
        }
        if method == "HEAD" && route(path, "manifests").is_some() && self.has(&Quirk::HeadNotFound) {
            return Some((404, vec![("Content-Length".to_string(), "0".to_string())], Vec::new()));
        }
        if method == "GET"
            && let Some((_, digest)) = route(path, "blobs").filter(|(_, rest)| rest.starts_with("sha256:"))
            && let Some(storage) = self.find(|q| match q {
                Quirk::BlobsFromStorage { storage } => Some(storage.clone()),
                _ => None,
            })
        {
            let signature = format!("{:016x}", rand_u64());
            let auth = req.header("authorization").map(str::to_string);
            self.signed.lock().unwrap().insert(signature.clone(), (path.split('?').next()?.to_string(), auth));
            let location = format!("{storage}/bucket/{}?X-Amz-Signature={signature}", digest.split('?').next()?);
            return Some((
                307,
                vec![("Location".to_string(), location), ("Content-Length".to_string(), "0".to_string())],
                Vec::new(),
            ));
        }
        if method == "GET" && route(path, "referrers").is_some() && self.has(&Quirk::ReferrersNotFound) {
            return Some(json_answer(404, error_body("NOT_FOUND", "not found"), Vec::new()));
        }
        if matches!(method, "GET" | "HEAD")
            && route(path, "manifests").is_some()
            && let Some((seconds, times)) = self.find(|q| match q {
                Quirk::RetryAfterDate { seconds, times } => Some((*seconds, *times)),
                _ => None,
            })
            && self.rate_limited < times
        {
            self.rate_limited += 1;
            let at = std::time::SystemTime::now() + std::time::Duration::from_secs(seconds);
            let headers = vec![
                ("Retry-After".to_string(), httpdate::fmt_http_date(at)),
                ("Content-Length".to_string(), "0".to_string()),
            ];
            return Some((429, headers, Vec::new()));
        }
        if method == "GET"
            && let Some(page) = self.find(|q| match q {
                Quirk::OpaquePages(n) => Some(*n),
                _ => None,
            })
        {
            let base = path.split('?').next().unwrap_or(path);
            let key = if base == "/v2/_catalog" {
                "repositories"
            } else if base.ends_with("/tags/list") {
                "tags"
            } else {
                return None;
            };
            return Some(self.opaque_page(path, key, page, upstream, client));
        }
        None
    }

    /// One page of a listing, with a cursor in `last` that only this proxy
    /// can read; an altered cursor or an `n` above 1000 is refused.
    fn opaque_page(
        &mut self,
        path: &str,
        key: &str,
        page: usize,
        upstream: &str,
        client: &reqwest::blocking::Client,
    ) -> Answer {
        let (base, query) = path.split_once('?').unwrap_or((path, ""));
        let param = |k: &str| query.split('&').find_map(|p| p.strip_prefix(&format!("{k}=")).map(str::to_string));
        let n: usize = match param("n").map(|v| v.parse::<usize>()) {
            Some(Ok(n)) if n > 1000 => {
                let message = "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to 1000'";
                return json_answer(400, error_body("UNSUPPORTED", message), Vec::new());
            }
            Some(Ok(n)) => n.min(page),
            _ => page,
        };
        let after = match param("last") {
            None => None,
            Some(cursor) => match self.cursors.get(&cursor) {
                Some(real) => Some(real.clone()),
                None => {
                    return json_answer(
                        400,
                        error_body("PAGINATION_NUMBER_INVALID", "invalid pagination token"),
                        Vec::new(),
                    );
                }
            },
        };
        // distribution lists at most 1000 repositories a page (its default).
        let all = if key == "repositories" { "?n=1000" } else { "" };
        let full: serde_json::Value = client
            .get(format!("{upstream}{base}{all}"))
            .send()
            .and_then(|r| r.bytes())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut names: Vec<String> =
            full[key].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_string)).collect();
        names.sort();
        let start = after.map_or(0, |l| names.iter().position(|t| *t > l).unwrap_or(names.len()));
        let chunk: Vec<String> = names.iter().skip(start).take(n).cloned().collect();
        let mut doc = json!({ key: chunk });
        if key == "tags" {
            doc["name"] = full["name"].clone();
        }
        let mut extra = Vec::new();
        if start + n < names.len()
            && let Some(last) = chunk.last()
        {
            // Base64 with its `=` percent-encoded, as a cursor in a query is:
            // a client that decodes and re-encodes it changes the text.
            let raw = base64::engine::general_purpose::STANDARD.encode(format!("cursor:{}:{last}", self.cursors.len()));
            let cursor = raw.replace('=', "%3D").replace('+', "%2B").replace('/', "%2F");
            self.cursors.insert(cursor.clone(), last.clone());
            extra.push(("Link".to_string(), format!("<{base}?n={n}&last={cursor}>; rel=\"next\"")));
        }
        json_answer(200, doc.to_string().into_bytes(), extra)
    }

    /// Rewrites a forwarded answer.
    pub(crate) fn rewrite(
        &mut self,
        req: &Seen,
        (upstream, client): (&str, &reqwest::blocking::Client),
        status: &mut u16,
        headers: &mut Vec<(String, String)>,
        body: &mut Vec<u8>,
    ) {
        let (method, path) = (req.method, req.path);
        let session = path.split('?').next().unwrap_or(path).to_string();
        let upload = route(path, "blobs").is_some_and(|(_, rest)| rest.starts_with("uploads/"));
        if upload && let Some(location) = header_of(headers, "location").map(str::to_string) {
            // Sessions are known by their path; the state in the query moves on.
            let key = location.split('?').next().unwrap_or(&location).to_string();
            let key = key.find("/v2/").map_or(key.clone(), |at| key[at..].to_string());
            let value = location.find("/v2/").map_or(location.clone(), |at| location[at..].to_string());
            self.latest.insert(key, value);
        }
        if upload && method == "PATCH" && *status == 202 {
            if self.has(&Quirk::RangeStuck) {
                let key = header_of(headers, "location").map(|l| l.split('?').next().unwrap_or(l).to_string());
                let key =
                    key.map(|k| k.find("/v2/").map_or(k.clone(), |at| k[at..].to_string())).unwrap_or(session.clone());
                if let Some(range) = header_of(headers, "range") {
                    self.first_range.entry(key).or_insert_with(|| range.to_string());
                }
                *status = 201;
            }
            if self.has(&Quirk::PatchAnswered201) {
                *status = 201;
            }
            if self.has(&Quirk::PatchAnswered416Once) {
                let chunks = self.patches.entry(session.clone()).or_default();
                *chunks += 1;
                if *chunks == 2 {
                    *status = 416;
                    headers.retain(|(k, _)| !k.eq_ignore_ascii_case("location") && !k.eq_ignore_ascii_case("range"));
                }
            }
        }
        if upload && method == "POST" && *status == 202 {
            if let Some(min) = self.find(|q| match q {
                Quirk::ChunkMinLength(n) => Some(*n),
                _ => None,
            }) {
                set_header(headers, "OCI-Chunk-Min-Length", min.to_string());
            }
            if self.has(&Quirk::OddButHarmless) {
                *status = 200;
            }
        }
        if self.has(&Quirk::OddButHarmless) && method == "PUT" && *status == 201 {
            *status = if upload { 204 } else { 200 };
        }
        if self.has(&Quirk::OddButHarmless)
            && method == "GET"
            && path.contains("/tags/list")
            && *status == 200
            && let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(body)
            && let Some(tags) = doc["tags"].as_array_mut()
        {
            let first = tags.first().cloned();
            tags.push(json!(""));
            if let Some(first) = first {
                tags.push(first);
            }
            *body = doc.to_string().into_bytes();
        }
        if self.has(&Quirk::HeadWithoutDigest) && method == "HEAD" && route(path, "manifests").is_some() {
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case("docker-content-digest"));
        }
        if let Some(remaining) = self.find(|q| match q {
            Quirk::RateLimitHeaders { remaining } => Some(*remaining),
            _ => None,
        }) && route(path, "manifests").is_some()
        {
            set_header(headers, "RateLimit-Limit", "100;w=21600".to_string());
            set_header(headers, "RateLimit-Remaining", format!("{remaining};w=21600"));
        }
        if let Some((realm, service)) = self.find(|q| match q {
            Quirk::MissingRepoDenied { realm, service } => Some((realm.clone(), service.clone())),
            _ => None,
        }) && *status == 404
            && let Some((repo, _)) = route(path, "manifests").or_else(|| route(path, "tags"))
        {
            // A manifest's 404 does not say whether the repository exists: the
            // registry's tag list does.
            if repo_missing(repo, req, upstream, client) {
                *status = 401;
                let challenge = format!(
                    "Bearer realm=\"{realm}\",service=\"{service}\",scope=\"repository:{repo}:pull\",error=\"insufficient_scope\""
                );
                set_header(headers, "WWW-Authenticate", challenge);
                if method != "HEAD" {
                    *body = json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": [{"Type": "repository", "Class": "", "Name": repo, "Action": "pull"}]}]}).to_string().into_bytes();
                }
            }
        }
        if *status == 401
            && let Some(challenge) = header_of(headers, "www-authenticate").map(str::to_string)
        {
            let mut challenge = challenge;
            if self.has(&Quirk::BearerWithoutScopeOrService) && challenge.starts_with("Bearer ") {
                let realm = challenge.split("realm=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default();
                challenge = format!("Bearer realm=\"{realm}\"");
            }
            if self.find(|q| matches!(q, Quirk::RelativeRealm { .. }).then_some(())).is_some() {
                let realm = challenge
                    .split("realm=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or_default()
                    .to_string();
                challenge = challenge.replace(&format!("realm=\"{realm}\""), "realm=\"/token\"");
            }
            if self.has(&Quirk::BasicWithoutRealm) && challenge.starts_with("Basic") {
                challenge = "Bearer error=\"invalid_request\", Basic".to_string();
            }
            set_header(headers, "WWW-Authenticate", challenge);
        }
    }
}

/// Whether the registry says the repository does not exist, asked with the
/// request's own credentials.
fn repo_missing(repo: &str, req: &Seen, upstream: &str, client: &reqwest::blocking::Client) -> bool {
    let mut get = client.get(format!("{upstream}/v2/{repo}/tags/list"));
    if let Some(auth) = req.header("authorization") {
        get = get.header("authorization", auth);
    }
    get.send().ok().and_then(|r| r.text().ok()).is_some_and(|t| t.contains("NAME_UNKNOWN"))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

/// Object storage where [`Quirk::BlobsFromStorage`] sends blob downloads:
/// serves `/bucket/<digest>?X-Amz-Signature=…` by fetching the blob the
/// signature was made for from the registry, and refuses any request that
/// carries an `Authorization` header with S3's `400 InvalidArgument`.
pub struct Storage {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    elsewhere: crate::hostile::Elsewhere,
}

impl Storage {
    /// Starts storage for the proxy's pre-signed URLs, reading from `upstream`.
    pub fn start(proxy: &crate::proxy::FaultProxy, upstream: &str) -> Storage {
        let signed = proxy.signed_urls();
        let upstream = upstream.to_string();
        let client = reqwest::blocking::Client::new();
        let elsewhere = crate::hostile::Elsewhere::start_with_request(move |req| {
            if req.header("authorization").is_some() {
                let body = b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified</Message></Error>".to_vec();
                return (400, vec![("Content-Type".into(), "application/xml".into())], body);
            }
            let signature = req.target.split("X-Amz-Signature=").nth(1).unwrap_or_default().to_string();
            let Some((path, auth)) = signed.lock().unwrap().get(&signature).cloned() else {
                return (403, Vec::new(), b"<Error><Code>SignatureDoesNotMatch</Code></Error>".to_vec());
            };
            let mut get = client.get(format!("{upstream}{path}"));
            if let Some(auth) = auth {
                get = get.header("authorization", auth);
            }
            match get.send() {
                Ok(r) if r.status().is_success() => {
                    let body = r.bytes().map(|b| b.to_vec()).unwrap_or_default();
                    (200, vec![("Content-Type".into(), "application/octet-stream".into())], body)
                }
                _ => (404, Vec::new(), b"<Error><Code>NoSuchKey</Code></Error>".to_vec()),
            }
        });
        Storage { url: elsewhere.url.clone(), elsewhere }
    }

    /// Requests the storage received that carried an `Authorization` header.
    pub fn with_authorization(&self) -> usize {
        self.elsewhere.seen().iter().filter(|s| s.authorization).count()
    }

    /// Requests the storage received.
    pub fn requests(&self) -> usize {
        self.elsewhere.seen().len()
    }
}
