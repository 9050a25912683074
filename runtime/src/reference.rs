//! Image references: `[registry/]repo[:tag][@digest]` with Docker Hub
//! normalisation, and `ocidir://path[:tag][@digest]` for OCI image layouts
//! (REF-1 … REF-8).

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
/// The host regsync actually connects to for Docker Hub.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
const DOCKER_HUB_LEGACY: &str = "index.docker.io";

/// Where an image lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// A registry speaking the distribution API.
    Registry,
    /// An OCI image-layout directory (`ocidir://`).
    OciDir,
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry or OCI layout.
    pub scheme: Scheme,
    /// The text the reference was parsed from (`.Ref.Reference` in templates).
    pub original: String,
    /// Registry host[:port], normalised (`docker.io` for Docker Hub); empty for ocidir.
    pub registry: String,
    /// Repository path on the registry; empty for ocidir.
    pub repository: String,
    /// Tag, possibly empty.
    pub tag: String,
    /// Digest (`sha256:…`), possibly empty; when set, requests use it instead of the tag.
    pub digest: String,
    /// Directory of the OCI layout; empty for registry references.
    pub path: String,
}

/// Why a reference did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Does not match the reference grammar.
    #[error("invalid reference \"{input}\"{}", if *.lowercase_hint { ", repo must be lowercase" } else { "" })]
    Invalid {
        /// The part after any scheme.
        input: String,
        /// True when the lowercased input would have parsed.
        lowercase_hint: bool,
    },
    /// A scheme other than `ocidir://` (or `ocifile://`).
    #[error("invalid reference, unknown scheme \"{scheme}\" in \"{input}\"")]
    UnknownScheme {
        /// The scheme as written.
        scheme: String,
        /// The whole reference.
        input: String,
    },
    /// An `ocidir://` path with characters the layout grammar does not allow.
    #[error("invalid reference, invalid path for scheme \"{scheme}\": {path}")]
    InvalidPath {
        /// The scheme as written.
        scheme: String,
        /// The text after the scheme.
        path: String,
    },
    /// `ocifile://` parses in regsync but no client exists for it.
    #[error("unsupported scheme \"ocifile\" in \"{0}\": use ocidir:// for OCI layouts")]
    OciFileUnsupported(String),
    /// A registry name (for `type: registry`) that is not a bare host[:port].
    #[error("invalid hostname: {0}")]
    InvalidHost(String),
}

const HOST_PART: &str = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)";
const PORT: &str = r"(?::[0-9]+)";
const TAG: &str = r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}";
const DIGEST: &str = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}";
const REPO_PART: &str = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*";

fn registry_pattern() -> String {
    let ipv6_part = r"(?:[0-9a-fA-F]{1,4}:){0,7}[0-9a-fA-F]{1,4}";
    let ipv6 = format!(r"(?:\[(?:{ipv6_part}|::{ipv6_part}|{ipv6_part}::{ipv6_part}|{ipv6_part}::)\])");
    let domain = format!(r"(?:{HOST_PART}(?:(?:\.{HOST_PART})+\.?|\.))");
    let upper = r"(?:[a-zA-Z0-9]*[A-Z][a-zA-Z0-9-]*[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[A-Z][a-zA-Z0-9]*)";
    format!(r"(?:(?:{domain}|{upper}|{ipv6}|localhost){PORT}?|{HOST_PART}{PORT})")
}

static SCHEME_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^([a-z]+)://(.+)$").unwrap());
static REF_RE: LazyLock<Regex> = LazyLock::new(|| {
    let reg = registry_pattern();
    Regex::new(&format!(r"^(?:({reg})/)?({REPO_PART}(?:/{REPO_PART})*)(?::({TAG}))?(?:@({DIGEST}))?$")).unwrap()
});
static HOST_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(&format!(r"^({})$", registry_pattern())).unwrap());
static OCIDIR_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"^([/a-zA-Z0-9_\-. ~+]+)(?::({TAG}))?(?:@({DIGEST}))?$")).unwrap());

impl Reference {
    /// Parses a reference as regsync does (REF-1 … REF-5).
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let (scheme, tail) = match SCHEME_RE.captures(input) {
            Some(c) => (Some(c.get(1).unwrap().as_str()), c.get(2).unwrap().as_str()),
            None => (None, input),
        };
        match scheme {
            None => Self::parse_registry_ref(input, tail),
            Some("ocidir") => Self::parse_ocidir(input, "ocidir", tail),
            Some("ocifile") => Err(ReferenceError::OciFileUnsupported(input.to_string())),
            Some(other) => Err(ReferenceError::UnknownScheme { scheme: other.to_string(), input: input.to_string() }),
        }
    }

    fn parse_registry_ref(original: &str, tail: &str) -> Result<Self, ReferenceError> {
        let invalid = || ReferenceError::Invalid {
            input: tail.to_string(),
            lowercase_hint: REF_RE.is_match(&tail.to_lowercase()),
        };
        let caps = REF_RE.captures(tail).ok_or_else(invalid)?;
        let group = |i| caps.get(i).map_or("", |m| m.as_str()).to_string();
        let (mut registry, mut repository, mut tag, digest) = (group(1), group(2), group(3), group(4));
        // A first path component `localhost` matches the repo grammar too.
        if registry.is_empty() {
            if let Some(rest) = repository.strip_prefix("localhost/") {
                registry = "localhost".to_string();
                repository = rest.to_string();
            } else if repository == "localhost" {
                return Err(invalid());
            }
        }
        if registry.is_empty() || registry == DOCKER_HUB_HOST || registry == DOCKER_HUB_LEGACY {
            registry = DOCKER_HUB.to_string();
        }
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        if tag.is_empty() && digest.is_empty() {
            tag = "latest".to_string();
        }
        Ok(Reference {
            scheme: Scheme::Registry,
            original: original.to_string(),
            registry,
            repository,
            tag,
            digest,
            path: String::new(),
        })
    }

    fn parse_ocidir(original: &str, scheme: &str, tail: &str) -> Result<Self, ReferenceError> {
        let caps = OCIDIR_RE
            .captures(tail)
            .ok_or_else(|| ReferenceError::InvalidPath { scheme: scheme.to_string(), path: tail.to_string() })?;
        let group = |i| caps.get(i).map_or("", |m| m.as_str()).to_string();
        Ok(Reference {
            scheme: Scheme::OciDir,
            original: original.to_string(),
            registry: String::new(),
            repository: String::new(),
            tag: group(2),
            digest: group(3),
            path: group(1),
        })
    }

    /// The repository named, tag and digest dropped: `registry/repo`, or
    /// `ocidir://path` for a layout. The one key of every per-repository map.
    pub fn repository_key(&self) -> String {
        match self.scheme {
            Scheme::Registry => format!("{}/{}", self.registry, self.repository),
            Scheme::OciDir => format!("ocidir://{}", self.path),
        }
    }

    /// `registry/repo[:tag][@digest]` or `ocidir://path[:tag][@digest]` (REF-6).
    pub fn common_name(&self) -> String {
        let mut out = self.repository_key();
        if !self.tag.is_empty() {
            out.push(':');
            out.push_str(&self.tag);
        }
        if !self.digest.is_empty() {
            out.push('@');
            out.push_str(&self.digest);
        }
        out
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Self {
        let mut r = self.clone();
        r.tag = tag.to_string();
        r.digest.clear();
        r.original = r.common_name();
        r
    }

    /// The same repository pinned to a digest; the tag is kept for display (REF-4).
    pub fn with_digest(&self, digest: &str) -> Self {
        let mut r = self.clone();
        r.digest = digest.to_string();
        r.original = r.common_name();
        r
    }

    /// The same repository pinned to a digest, without a tag (regclient's
    /// `SetDigest`): how children and referrers are named.
    pub fn pinned(&self, digest: &str) -> Self {
        let mut r = self.clone();
        r.tag.clear();
        r.digest = digest.to_string();
        r.original = r.common_name();
        r
    }

    /// True when both name the same repository (or the same layout).
    pub fn same_repository(&self, other: &Reference) -> bool {
        self.scheme == other.scheme
            && match self.scheme {
                Scheme::Registry => self.registry == other.registry && self.repository == other.repository,
                Scheme::OciDir => self.path == other.path,
            }
    }

    /// True when the reference names a tag or digest explicitly in its text.
    /// Registry references get `latest` by default, so this looks at the input.
    pub fn has_explicit_tag_or_digest(&self) -> bool {
        match self.scheme {
            Scheme::OciDir => !self.tag.is_empty() || !self.digest.is_empty(),
            Scheme::Registry => {
                !self.digest.is_empty() || {
                    let last = self.original.rsplit('/').next().unwrap_or("");
                    last.contains(':')
                }
            }
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.common_name())
    }
}

/// Parses the source of a `type: registry` step: a bare `host[:port]` (REG-1).
pub fn parse_registry_host(input: &str) -> Result<String, ReferenceError> {
    if SCHEME_RE.is_match(input) || !HOST_RE.is_match(input) {
        return Err(ReferenceError::InvalidHost(input.to_string()));
    }
    Ok(match input {
        DOCKER_HUB_HOST | DOCKER_HUB_LEGACY => DOCKER_HUB.to_string(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, registry: &str, repository: &str, tag: &str, digest: &str) {
        let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_str(), r.digest.as_str()),
            (registry, repository, tag, digest),
            "{input}"
        );
        assert_eq!(r.original, input);
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_hub_normalisation_ref_3() {
        check("alpine", "docker.io", "library/alpine", "latest", "");
        check("alpine:3.20", "docker.io", "library/alpine", "3.20", "");
        check("regclient/regsync", "docker.io", "regclient/regsync", "latest", "");
        check("index.docker.io/alpine", "docker.io", "library/alpine", "latest", "");
        check("registry-1.docker.io/x/y:1", "docker.io", "x/y", "1", "");
        check("docker.io/alpine", "docker.io", "library/alpine", "latest", "");
        assert_eq!(Reference::parse("alpine").unwrap().common_name(), "docker.io/library/alpine:latest");
    }

    #[test]
    fn registry_forms_ref_2() {
        check("localhost/x", "localhost", "x", "latest", "");
        check("localhost:5000/x:1", "localhost:5000", "x", "1", "");
        check("registry:5000/library/busybox:latest", "registry:5000", "library/busybox", "latest", "");
        check("ghcr.io/a/b/c:v1", "ghcr.io", "a/b/c", "v1", "");
        check("Myhost/x", "Myhost", "x", "latest", "");
        check("[::1]:5000/x", "[::1]:5000", "x", "latest", "");
        check("127.0.0.1:5000/a-b__c.d/e", "127.0.0.1:5000", "a-b__c.d/e", "latest", "");
        check(&format!("quay.io/x@{D}"), "quay.io", "x", "", D);
        check(&format!("quay.io/x:v1@{D}"), "quay.io", "x", "v1", D);
        // A single label without a port is a repository path on Docker Hub.
        check("registry/x", "docker.io", "registry/x", "latest", "");
    }

    #[test]
    fn invalid_references_ref_2() {
        let err = Reference::parse("InvalidTestmissing:v1:garbage").unwrap_err();
        assert_eq!(err.to_string(), "invalid reference \"InvalidTestmissing:v1:garbage\"");
        let err = Reference::parse("docker.io/Alpine").unwrap_err();
        assert_eq!(err.to_string(), "invalid reference \"docker.io/Alpine\", repo must be lowercase");
        for bad in ["", "x:", "x@sha256:12", "-x", "x//y", "a:b:c"] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should fail");
        }
        let long_tag = format!("x:{}", "a".repeat(129));
        assert!(Reference::parse(&long_tag).is_err());
    }

    #[test]
    fn schemes_ref_1() {
        assert_eq!(
            Reference::parse("https://x/y").unwrap_err().to_string(),
            "invalid reference, unknown scheme \"https\" in \"https://x/y\""
        );
        assert!(matches!(Reference::parse("ocifile://x.tar"), Err(ReferenceError::OciFileUnsupported(_))));
    }

    #[test]
    fn ocidir_ref_5() {
        let r = Reference::parse("ocidir://testrepo:v1").unwrap();
        assert_eq!((r.scheme, r.path.as_str(), r.tag.as_str()), (Scheme::OciDir, "testrepo", "v1"));
        let r = Reference::parse("ocidir:///abs/path/x").unwrap();
        assert_eq!((r.path.as_str(), r.tag.as_str()), ("/abs/path/x", ""));
        let r = Reference::parse(&format!("ocidir://./rel dir~+@{D}")).unwrap();
        assert_eq!((r.path.as_str(), r.digest.as_str()), ("./rel dir~+", D));
        assert_eq!(r.common_name(), format!("ocidir://./rel dir~+@{D}"));
        assert!(matches!(Reference::parse("ocidir://bad|path"), Err(ReferenceError::InvalidPath { .. })));
    }

    #[test]
    fn tag_and_digest_helpers() {
        let r = Reference::parse("registry:5000/x").unwrap();
        assert!(!r.has_explicit_tag_or_digest());
        assert!(Reference::parse("registry:5000/x:1").unwrap().has_explicit_tag_or_digest());
        let t = r.with_tag("v2");
        assert_eq!(t.common_name(), "registry:5000/x:v2");
        assert_eq!(t.with_digest(D).common_name(), format!("registry:5000/x:v2@{D}"));
        assert!(t.same_repository(&r));
    }

    #[test]
    fn registry_host_reg_1() {
        assert_eq!(parse_registry_host("localreg:5000").unwrap(), "localreg:5000");
        assert_eq!(parse_registry_host("registry-1.docker.io").unwrap(), "docker.io");
        assert_eq!(
            parse_registry_host("localreg:5000/team").unwrap_err().to_string(),
            "invalid hostname: localreg:5000/team"
        );
        assert!(parse_registry_host("ocidir://x").is_err());
        assert!(parse_registry_host("registry").is_err());
    }
}
