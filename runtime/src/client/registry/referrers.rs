//! Referrers on a registry: the referrers API (OCI distribution 1.1) with its
//! `Link` pages, what each repository (and registry) answered about having
//! the API, kept for a bounded time, and upkeep of the `sha256-<hex>`
//! fallback index on registries without the API (COPY-7, COPY-8).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Method;

use super::RegistryClient;
use super::transport::{Request, Transport, strip_query};
use crate::client::error::{ClientError, ErrorKind, Result};
use crate::client::types::*;
use crate::reference::Reference;

/// How long an answer about the referrers API is trusted, as regclient does:
/// a registry may gain the API while a server runs for months.
pub const API_MEMORY: Duration = Duration::from_secs(300);

/// Most `Link` pages followed for one listing (a cycling `Link` must end).
const MAX_PAGES: usize = 1000;

/// What repositories and registries answered about the referrers API.
pub(super) struct ApiSupport {
    entries: Mutex<HashMap<String, (bool, Instant)>>,
    memory: Duration,
}

impl Default for ApiSupport {
    fn default() -> Self {
        ApiSupport { entries: Mutex::new(HashMap::new()), memory: API_MEMORY }
    }
}

impl ApiSupport {
    /// The repository's own answer while fresh; else what the registry as a
    /// whole answered within the window (see [`ApiSupport::set`]).
    pub(super) fn get(&self, r: &Reference) -> Option<bool> {
        let entries = self.entries.lock().expect("api map poisoned");
        let fresh = |k: &str| entries.get(k).filter(|(_, at)| at.elapsed() < self.memory).map(|(v, _)| *v);
        fresh(&r.repository_key()).or_else(|| fresh(&r.registry))
    }

    /// Records an answer for `r`'s repository; `registry_wide` also for its
    /// registry: the API answering at all, or its route missing altogether
    /// (a plain 404 page, not a registry error about this repository).
    pub(super) fn set(&self, r: &Reference, supported: bool, registry_wide: bool) {
        let mut entries = self.entries.lock().expect("api map poisoned");
        entries.retain(|_, (_, at)| at.elapsed() < self.memory);
        let now = Instant::now();
        entries.insert(r.repository_key(), (supported, now));
        if registry_wide {
            entries.insert(r.registry.clone(), (supported, now));
        }
    }
}

impl RegistryClient {
    /// Whether the repository is known to offer the referrers API (`None`: not asked lately).
    pub fn referrers_api_known(&self, r: &Reference) -> Option<bool> {
        self.api.get(r)
    }

    /// Referrers of `r.digest` through the referrers API, every `Link` page
    /// followed; `None` when the registry does not offer the API (remembered
    /// for [`API_MEMORY`]).
    pub async fn referrers_api(&self, r: &Reference) -> Result<Option<Vec<Descriptor>>> {
        // While nobody knows, one request per registry asks: the others wait
        // for its answer instead of each probing.
        let _probing = match self.api.get(r) {
            Some(false) => return Ok(None),
            Some(true) => None,
            None => {
                let guard = self.api_probes.lock(&r.registry).await;
                match self.api.get(r) {
                    Some(false) => return Ok(None),
                    Some(true) => None,
                    None => Some(guard),
                }
            }
        };
        let t = self.transport(&r.registry)?;
        let mut url = Self::url(&t, &r.repository, &format!("referrers/{}", r.digest), None);
        let mut out = Vec::new();
        let mut seen_pages = std::collections::HashSet::new();
        let mut first = true;
        loop {
            if !seen_pages.insert(url.clone()) || seen_pages.len() > MAX_PAGES {
                return Err(ClientError::new(ErrorKind::Invalid, strip_query(&url), "referrers pages do not end"));
            }
            let req = Request::new(Method::GET, url.clone(), Self::scope(&t, &r.repository, false))
                .header("accept", MT_OCI_INDEX);
            let resp = t.send(req).await?;
            let status = resp.status();
            if status != 200 {
                if matches!(status, 401 | 403 | 429) || status >= 500 || !first {
                    return Err(Transport::error(resp, &url).await);
                }
                let e = Transport::error(resp, &url).await;
                if status == 404 && e.code.as_deref() == Some("NAME_UNKNOWN") {
                    // No such repository: nothing refers to anything in it, under
                    // the API or a fallback tag.
                    return Ok(Some(Vec::new()));
                }
                // A registry with the API never answers 404 (distribution-spec):
                // any other 404 (GHCR's), 400 or 405 means the fallback tag. Only a
                // plain 404 page (no such route) says so for the whole registry.
                self.api.set(r, false, status == 404 && e.code.is_none());
                return Ok(None);
            }
            let next = super::next_link(&resp).map(|l| super::urls::join(&url, &l)).transpose()?;
            let location = strip_query(&url);
            let cap = self.options.limits.list_page_bytes as usize;
            let what = || format!("a page of the referrers of {}", r.common_name());
            let body = resp.read_limited(cap, &location, what, "limits.listPageBytes").await?;
            let doc: ManifestDoc = match serde_json::from_slice(&body) {
                Ok(d) => d,
                // A 200 that is not an index is a registry without the API answering anything.
                Err(_) if first => {
                    self.api.set(r, false, false);
                    return Ok(None);
                }
                Err(e) => return Err(ClientError::new(ErrorKind::Invalid, location, e.to_string())),
            };
            if first {
                self.api.set(r, true, true);
            }
            out.extend(doc.manifests);
            first = false;
            let cap = self.options.limits.referrers as usize;
            if out.len() > cap {
                return Err(ClientError::new(
                    ErrorKind::TooLarge,
                    location,
                    format!("{} has more than {cap} referrers (limits.referrers)", r.common_name()),
                ));
            }
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|d| seen.insert(d.digest.clone()));
        Ok(Some(out))
    }

    /// Records that a push was answered with `OCI-Subject`: the registry has the API.
    pub(super) fn note_subject_acknowledged(&self, r: &Reference) {
        self.api.set(r, true, true);
    }

    /// Adds `add` to the fallback index of `subject` in `r`'s repository, or,
    /// when `verbatim` (the source's own fallback index) lists everything the
    /// result must hold, stores those exact bytes so both sides stay
    /// byte-identical. Serialised per tag; reads the current index under the
    /// lock. Returns what was written, `None` when nothing had to change.
    pub async fn fallback_update(
        &self,
        r: &Reference,
        subject: &str,
        add: &[Descriptor],
        verbatim: Option<&Manifest>,
    ) -> Result<Option<Manifest>> {
        let tag_ref = r.with_tag(&fallback_tag(subject));
        let _guard = self.tag_locks.lock(&Self::tag_key(&tag_ref)).await;
        let current = match self.manifest_get(&tag_ref).await {
            Ok(m) => Some(m),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let updated = choose_fallback(current.as_ref(), add, verbatim)
            .map_err(|why| ClientError::new(ErrorKind::Invalid, tag_ref.common_name(), why))?;
        let Some(updated) = updated else {
            return Ok(None);
        };
        self.put_unlocked(&tag_ref, &updated, false).await?;
        Ok(Some(updated))
    }

    pub(super) fn tag_key(r: &Reference) -> String {
        format!("{}:{}", r.repository_key(), r.tag)
    }
}

/// The fallback index to store, if any: the source's bytes when they hold
/// everything the target lists plus `add`, else the current index with `add`
/// appended (shared by registries and layouts). A current tag that is not an
/// index is an error, as in regclient: something else owns that name.
pub fn choose_fallback(
    current: Option<&Manifest>,
    add: &[Descriptor],
    verbatim: Option<&Manifest>,
) -> std::result::Result<Option<Manifest>, String> {
    if let Some(c) = current
        && (!is_index(&c.media_type) || c.doc().is_err())
    {
        return Err(format!("the fallback tag holds a {}, not an index", c.media_type));
    }
    let listed = |m: &Manifest| -> Vec<String> {
        m.doc().map(|d| d.manifests.into_iter().map(|x| x.digest).collect()).unwrap_or_default()
    };
    if let Some(v) = verbatim {
        let theirs = listed(v);
        let mine = current.map(listed).unwrap_or_default();
        let covers = mine.iter().chain(add.iter().map(|d| &d.digest)).all(|d| theirs.contains(d));
        if covers {
            return Ok((current.map(|c| c.digest.as_str()) != Some(v.digest.as_str())).then(|| v.clone()));
        }
    }
    if add.is_empty() {
        return Ok(None);
    }
    Ok(fallback_index_with(current, add))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_answers_are_kept_per_repository_for_a_bounded_time() {
        let support = ApiSupport { memory: Duration::from_millis(80), ..ApiSupport::default() };
        let r = |s: &str| Reference::parse(s).unwrap();
        assert_eq!(support.get(&r("reg.example/a:1")), None, "never asked");
        support.set(&r("reg.example/x:1"), false, false);
        assert_eq!(support.get(&r("reg.example/y:1")), None, "one repository's answer is its own");
        support.set(&r("reg.example/a:1"), false, true);
        assert_eq!(support.get(&r("reg.example/a:1")), Some(false));
        assert_eq!(support.get(&r("reg.example/b:1")), Some(false), "a missing route: the whole registry");
        assert_eq!(support.get(&r("other.example/a:1")), None);
        support.set(&r("reg.example/b:1"), true, false);
        assert_eq!(support.get(&r("reg.example/b:1")), Some(true), "a repository's own answer first");
        assert_eq!(support.get(&r("reg.example/a:1")), Some(false));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(support.get(&r("reg.example/a:1")), None, "forgotten after the window: asked again");
        support.set(&r("reg.example/c:1"), true, true);
        assert_eq!(support.entries.lock().unwrap().len(), 2, "expired answers are dropped");
    }

    fn m(list: &[&Descriptor]) -> Manifest {
        fallback_index_with(None, &list.iter().map(|d| (*d).clone()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn fallback_choice_prefers_the_source_bytes_when_they_cover_everything() {
        let a = Descriptor::new(MT_OCI_MANIFEST, &sha256_digest(b"a"), 1);
        let b = Descriptor::new(MT_OCI_MANIFEST, &sha256_digest(b"b"), 1);
        let c = Descriptor::new(MT_OCI_MANIFEST, &sha256_digest(b"c"), 1);
        // The source's index, written by another tool (other bytes than ours).
        let theirs = Manifest::new(
            MT_OCI_INDEX,
            bytes::Bytes::from(format!(
                "{{\"schemaVersion\":2, \"manifests\":[{}, {}]}}",
                serde_json::to_string(&a).unwrap(),
                serde_json::to_string(&b).unwrap()
            )),
        );
        let choose =
            |c: Option<&Manifest>, add: &[Descriptor], v: Option<&Manifest>| choose_fallback(c, add, v).unwrap();
        assert_eq!(choose(None, std::slice::from_ref(&a), Some(&theirs)).unwrap().digest, theirs.digest);
        assert!(choose(Some(&theirs), std::slice::from_ref(&a), Some(&theirs)).is_none(), "already the same bytes");
        // The target lists something the source does not: merge instead.
        let mine = m(&[&c]);
        let merged = choose(Some(&mine), std::slice::from_ref(&a), Some(&theirs)).unwrap();
        assert_eq!(merged.doc().unwrap().manifests, vec![c.clone(), a.clone()]);
        assert!(choose(Some(&mine), std::slice::from_ref(&c), None).is_none(), "nothing new");
        assert!(choose(None, &[], None).is_none());
        let image = Manifest::new(MT_OCI_MANIFEST, bytes::Bytes::from_static(b"{}"));
        assert!(choose_fallback(Some(&image), std::slice::from_ref(&a), None).is_err(), "not ours to overwrite");
    }
}
