//! The `gates` stage: after the signature policy and before anything is
//! written, each of the step's gates (WebAssembly plugins) is shown the
//! facts of the image about to be copied and allows or denies it.
//!
//! Facts are gathered once per image and only when the step has gates; the
//! manifests read go through the run's cache, so the copy does not read
//! them again. A gate may read the image's referrers through a
//! [`ReferrerReader`], bounded, and nothing else. A gate that fails (traps,
//! runs out of time or memory, is not loaded) denies: gates fail closed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::context::Context;
use super::verify::Signer;
use crate::client::{Client, Descriptor, is_index};
use crate::config::{GateMode, GateUse};
use crate::reference::Reference;

/// Most bytes one `read-referrer` call returns, whatever the gate asks for.
pub const READ_CAP: u64 = 16 << 20;

/// Largest image config read for its labels and `created`.
const MAX_CONFIG: u64 = 1 << 20;

/// A manifest that refers to the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Referrer {
    /// Its digest.
    pub digest: String,
    /// Its media type.
    #[serde(default)]
    pub media_type: String,
    /// Its artifact type; empty when it declares none.
    #[serde(default)]
    pub artifact_type: String,
    /// Its annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// What a gate is shown of an image about to be copied (the WIT's `image-facts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageFacts {
    /// The source, as the step names it.
    #[serde(default)]
    pub source: String,
    /// The target.
    #[serde(default)]
    pub target: String,
    /// The digest being copied.
    #[serde(default)]
    pub digest: String,
    /// Its media type.
    #[serde(default)]
    pub media_type: String,
    /// `os/arch[/variant]` of each image.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// The manifest's annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The image config's labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The image config's `created`, as written.
    #[serde(default)]
    pub created: Option<String>,
    /// Bytes of the manifests, configs and layers the copy covers.
    #[serde(default)]
    pub size: u64,
    /// The image's referrers at the source.
    #[serde(default)]
    pub referrers: Vec<Referrer>,
    /// Signatures the verify stage accepted.
    #[serde(default)]
    pub signers: Vec<Signer>,
    /// More facts by name.
    #[serde(default)]
    pub details: BTreeMap<String, String>,
}

/// A gate's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Copy it.
    Allow,
    /// Do not; why.
    Deny(String),
}

/// Reads referrers of the image being judged, for a gate. Blocking.
pub trait ReferrerReader: Send + Sync {
    /// The manifest of referrer `digest` (`layer` none) or its layer's blob,
    /// at most `max_bytes`; fails for any digest that is not a referrer.
    fn read(&self, digest: &str, layer: Option<u32>, max_bytes: u64) -> Result<Vec<u8>, String>;
}

/// A gate the pipeline can call (a WASM plugin).
pub trait GateExtension: Send + Sync {
    /// Its verdict, with the use's `settings` over the plugin's own. Blocks:
    /// the stage calls it on a blocking thread. An error is the gate failing.
    fn decide(
        &self,
        facts: &ImageFacts,
        settings: &BTreeMap<String, String>,
        reader: Arc<dyn ReferrerReader>,
    ) -> Result<Decision, String>;
}

/// How the stage ended for an image it let through.
#[derive(Debug, Default)]
pub struct Allowed {
    /// What `mode: warn` let through (denials, gates not run), one line each.
    pub warnings: Vec<String>,
}

/// An image the stage stopped: which gate, and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The gate's name.
    pub gate: String,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gate \"{}\": {}", self.gate, self.reason)
    }
}

/// The image to judge: `digest` is the one its tag named (a digest tag's
/// subject), `copied` the manifest the copy writes at the top.
pub struct Subject<'a> {
    /// Source, as the step names it.
    pub source: &'a Reference,
    /// Target, as the step names it.
    pub target: &'a Reference,
    /// The manifest whose facts are shown.
    pub copied: &'a str,
    /// What the verify stage accepted.
    pub signers: Vec<Signer>,
}

/// Runs the step's gates in order; the first enforcing denial stops the image.
pub async fn check(
    ctx: &Context<'_>,
    uses: &[GateUse],
    gates: &std::collections::HashMap<String, Arc<dyn GateExtension>>,
    subject: Subject<'_>,
) -> Result<Allowed, Denied> {
    let mut allowed = Allowed::default();
    if uses.is_empty() {
        return Ok(allowed);
    }
    let image = subject.source.common_name();
    let digest = subject.copied.to_string();
    let facts = match facts(ctx, &subject).await {
        Ok(f) => Arc::new(f),
        // Nothing to show the gates: the first enforcing one denies, as if it
        // had failed; with only warning gates the image goes on, with a warning.
        Err(reason) => {
            let reason = format!("the image's facts could not be read: {reason}");
            let Some(first) = uses.iter().find(|u| u.mode == GateMode::Enforce) else {
                tracing::warn!(image, digest, reason, "Gates not run, copying anyway (mode: warn)");
                allowed.warnings.push(format!("gates not run: {reason}"));
                return Ok(allowed);
            };
            let denied = Denied { gate: first.name.clone(), reason };
            tracing::error!(image, digest, gate = denied.gate, reason = denied.reason, "Image denied by a gate");
            return Err(denied);
        }
    };
    let allowed_referrers: Vec<String> = facts.referrers.iter().map(|r| r.digest.clone()).collect();
    for gate_use in uses {
        let reason = match gates.get(&gate_use.name) {
            None => Some(format!("gate \"{}\" is not loaded", gate_use.name)),
            Some(gate) => {
                let reader: Arc<dyn ReferrerReader> = Arc::new(SourceReader {
                    client: ctx.client.clone(),
                    repo: ctx.scope.referrer_source.clone(),
                    allowed: allowed_referrers.clone(),
                    handle: tokio::runtime::Handle::current(),
                });
                let (gate, facts, settings) = (gate.clone(), facts.clone(), gate_use.config.clone());
                let decided = tokio::task::spawn_blocking(move || gate.decide(&facts, &settings, reader)).await;
                match decided {
                    Ok(Ok(Decision::Allow)) => None,
                    Ok(Ok(Decision::Deny(reason))) => Some(reason),
                    // Fail closed: a gate that cannot answer denies.
                    Ok(Err(e)) => Some(format!("the gate failed: {e}")),
                    Err(e) => Some(format!("the gate failed: {e}")),
                }
            }
        };
        let Some(reason) = reason else {
            tracing::debug!(image, digest, gate = gate_use.name, "Gate allowed the image");
            continue;
        };
        let denied = Denied { gate: gate_use.name.clone(), reason };
        match gate_use.mode {
            GateMode::Warn => {
                tracing::warn!(
                    image,
                    digest,
                    gate = denied.gate,
                    reason = denied.reason,
                    "Gate denied the image, copying anyway (mode: warn)"
                );
                allowed.warnings.push(format!("denied by {denied} (gate mode warn)"));
            }
            GateMode::Enforce => {
                tracing::error!(image, digest, gate = denied.gate, reason = denied.reason, "Image denied by a gate");
                return Err(denied);
            }
        }
    }
    Ok(allowed)
}

/// The facts of `subject.copied` at the source. Manifests come through the
/// run's cache under the keys the copy uses.
async fn facts(ctx: &Context<'_>, subject: &Subject<'_>) -> Result<ImageFacts, String> {
    let source = ctx.scope.source.pinned(subject.copied);
    let top = ctx.state.manifest(ctx.client, &source).await.map_err(|e| e.to_string())?;
    let doc = top.doc().map_err(|e| format!("{}: {e}", top.digest))?;
    let mut facts = ImageFacts {
        source: subject.source.common_name(),
        target: subject.target.common_name(),
        digest: top.digest.clone(),
        media_type: top.media_type.clone(),
        annotations: doc.annotations.clone(),
        signers: subject.signers.clone(),
        size: top.bytes.len() as u64,
        ..ImageFacts::default()
    };
    let image = if is_index(&top.media_type) {
        let children: Vec<&Descriptor> = doc.manifests.iter().filter(|c| ctx.options.keeps(c)).collect();
        let mut first_known = None;
        for child in &children {
            let m = ctx.state.manifest(ctx.client, &source.pinned(&child.digest)).await.map_err(|e| e.to_string())?;
            facts.size += m.bytes.len() as u64;
            let child_doc = m.doc().map_err(|e| format!("{}: {e}", m.digest))?;
            facts.size += blobs_size(&child_doc);
            let platform = child.platform.as_ref().map(|p| p.platform().to_string());
            if let Some(p) = platform.filter(|p| !p.starts_with("unknown/")) {
                facts.platforms.push(p);
                if first_known.is_none() {
                    first_known = Some(child_doc);
                }
            }
        }
        first_known
    } else {
        facts.size += blobs_size(&doc);
        Some(doc)
    };
    if let Some(config) = image.as_ref().and_then(|d| d.config.as_ref()) {
        let read = config_of(ctx.client, &source, config).await?;
        facts.labels = read.labels;
        facts.created = read.created;
        if !is_index(&top.media_type)
            && let Some(p) = read.platform
        {
            facts.platforms.push(p);
        }
    }
    let listed = ctx
        .client
        .referrers(&ctx.scope.referrer_source.with_digest(&top.digest))
        .await
        .map_err(|e| format!("listing the referrers of {}: {e}", top.digest))?;
    ctx.options.check_referrers(&top.digest, listed.len()).map_err(|e| e.to_string())?;
    facts.referrers = listed
        .into_iter()
        .map(|r| Referrer {
            digest: r.digest,
            media_type: r.media_type,
            artifact_type: r.artifact_type.unwrap_or_default(),
            annotations: r.annotations,
        })
        .collect();
    Ok(facts)
}

fn blobs_size(doc: &crate::client::ManifestDoc) -> u64 {
    doc.config.iter().chain(&doc.layers).chain(&doc.blobs).map(|d| d.size).sum()
}

/// What a gate is shown of an image config.
#[derive(Default)]
struct ConfigFacts {
    labels: BTreeMap<String, String>,
    created: Option<String>,
    platform: Option<String>,
}

async fn config_of(client: &Client, repo: &Reference, config: &Descriptor) -> Result<ConfigFacts, String> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Inner {
        #[serde(rename = "Labels")]
        labels: Option<BTreeMap<String, String>>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Config {
        created: Option<String>,
        os: String,
        architecture: String,
        variant: String,
        config: Inner,
    }
    if config.size > MAX_CONFIG {
        return Err(format!("the image config is {} bytes, more than {MAX_CONFIG}", config.size));
    }
    let bytes = super::verify::read_blob(client, repo, config, MAX_CONFIG)
        .await
        .map_err(|e| format!("reading the image config: {e}"))?;
    // An artifact's config need not be an image config: no labels, no time.
    let parsed: Config = serde_json::from_slice(&bytes).unwrap_or_default();
    let platform = (!parsed.os.is_empty()).then(|| {
        let mut p = format!("{}/{}", parsed.os, parsed.architecture);
        if !parsed.variant.is_empty() {
            p = format!("{p}/{}", parsed.variant);
        }
        p
    });
    Ok(ConfigFacts { labels: parsed.config.labels.unwrap_or_default(), created: parsed.created, platform })
}

/// Reads the judged image's referrers from the source, for one gate call.
struct SourceReader {
    client: Client,
    repo: Reference,
    allowed: Vec<String>,
    handle: tokio::runtime::Handle,
}

/// How long one read may take; the gate's own deadline covers its compute,
/// not the host's waits.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

impl ReferrerReader for SourceReader {
    fn read(&self, digest: &str, layer: Option<u32>, max_bytes: u64) -> Result<Vec<u8>, String> {
        if !self.allowed.iter().any(|d| d == digest) {
            return Err(format!("{digest} is not a referrer of the image being judged"));
        }
        let max = max_bytes.min(READ_CAP);
        let at = self.repo.pinned(digest);
        let read = async {
            let manifest = self.client.manifest_get(&at).await.map_err(|e| e.to_string())?;
            let Some(index) = layer else {
                if manifest.bytes.len() as u64 > max {
                    return Err(format!("the manifest of {digest} is {} bytes, more than {max}", manifest.bytes.len()));
                }
                return Ok(manifest.bytes.to_vec());
            };
            let doc = manifest.doc().map_err(|e| format!("{digest}: {e}"))?;
            let blob = doc.layers.get(index as usize).ok_or_else(|| format!("{digest} has no layer {index}"))?;
            if blob.size > max {
                return Err(format!("layer {index} of {digest} is {} bytes, more than {max}", blob.size));
            }
            super::verify::read_blob(&self.client, &self.repo, blob, max).await
        };
        self.handle.block_on(async {
            tokio::time::timeout(READ_TIMEOUT, read)
                .await
                .unwrap_or_else(|_| Err(format!("reading {digest} timed out")))
        })
    }
}
