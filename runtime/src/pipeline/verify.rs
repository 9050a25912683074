//! The `verify` stage: before anything of an image is written, the
//! signatures of the digest the plan resolved (and the copy will copy) must
//! satisfy the step's `verify:` policy. This reads; `crate::verify` judges.
//!
//! The digest judged is the one the tag named: an index's signature covers
//! its children, so with `platform` the chosen child must be listed in the
//! verified index. A positive verdict is remembered per (digest, policy)
//! for the pipeline's life; a changed policy has another fingerprint.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::context::Context;
use crate::client::{Client, Descriptor, ErrorKind};
use crate::reference::Reference;
use crate::verify::cosign::{self, Candidate, MAX_PAYLOAD, MAX_SIGNATURES};
use crate::verify::{Found, Mode, Verdict, VerifyPolicy};
use crate::verify::{bundle, legacy};

/// The most verdicts remembered; past it all are forgotten and remembering
/// starts over (verifying again costs a few reads, remembering forever
/// costs memory without bound).
const REMEMBERED: usize = 100_000;

/// A signature the policy accepted, as gates are shown it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signer {
    /// The policy entry it satisfied.
    pub entry: String,
    /// Keyless: the certificate's identity.
    #[serde(default)]
    pub identity: Option<String>,
    /// Keyless: the certificate's issuer.
    #[serde(default)]
    pub issuer: Option<String>,
}

/// Positive verdicts, by policy fingerprint and digest, with who signed.
#[derive(Default)]
pub struct Verified {
    seen: Mutex<HashMap<(String, String), Vec<Signer>>>,
}

impl Verified {
    fn known(&self, policy: &VerifyPolicy, digest: &str) -> Option<Vec<Signer>> {
        self.seen.lock().expect("poisoned").get(&(policy.fingerprint.clone(), digest.to_string())).cloned()
    }

    fn remember(&self, policy: &VerifyPolicy, digest: &str, signers: Vec<Signer>) {
        let mut seen = self.seen.lock().expect("poisoned");
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert((policy.fingerprint.clone(), digest.to_string()), signers);
    }
}

/// How the stage ended for an image it let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passed {
    /// No policy, or `mode: off`.
    Unchecked,
    /// Accepted (now or earlier in the pipeline's life), by these signatures.
    Accepted(Vec<Signer>),
    /// Refused under `mode: warn`: copied anyway; why.
    Warned(String),
}

/// Judges the image whose tag named `digest`; `copied` is the manifest the
/// copy will write at the top (a platform's child, or `digest` itself).
/// `Err` is the refusal's reason under `mode: enforce`.
pub async fn check(
    ctx: &Context<'_>,
    policy: Option<&VerifyPolicy>,
    verified: &Verified,
    image: &str,
    digest: &str,
    copied: &str,
) -> Result<Passed, String> {
    let Some(policy) = policy.filter(|p| p.mode != Mode::Off) else { return Ok(Passed::Unchecked) };
    if let Some(signers) = verified.known(policy, digest)
        && covers(ctx, digest, copied).await.is_ok()
    {
        return Ok(Passed::Accepted(signers));
    }
    let verdict = judged(ctx, policy, digest).await.unwrap_or_else(|reason| Verdict {
        accepted: false,
        matched: Vec::new(),
        reason,
    });
    let verdict = match covers(ctx, digest, copied).await {
        Ok(()) => verdict,
        Err(reason) => Verdict { accepted: false, reason, ..verdict },
    };
    if verdict.accepted {
        for m in &verdict.matched {
            let (index, time) = m.log.map(|l| (l.log_index, l.integrated_time)).unzip();
            let (identity, issuer) = m.identity.clone().unzip();
            tracing::info!(
                image,
                digest,
                entry = m.entry,
                identity,
                issuer,
                "rekor.logIndex" = index,
                "rekor.integratedTime" = time,
                "Signature verified"
            );
        }
        let signers: Vec<Signer> = verdict
            .matched
            .iter()
            .map(|m| Signer {
                entry: m.entry.clone(),
                identity: m.identity.as_ref().map(|i| i.0.clone()),
                issuer: m.identity.as_ref().map(|i| i.1.clone()),
            })
            .collect();
        verified.remember(policy, digest, signers.clone());
        return Ok(Passed::Accepted(signers));
    }
    match policy.mode {
        Mode::Warn => {
            tracing::warn!(
                image,
                digest,
                reason = verdict.reason,
                "Signature policy not satisfied, copying anyway (mode: warn)"
            );
            Ok(Passed::Warned(verdict.reason))
        }
        _ => {
            tracing::error!(image, digest, reason = verdict.reason, "Image refused by the signature policy");
            Err(verdict.reason)
        }
    }
}

/// The verdict on what is attached to `digest`: its `.sig` signatures
/// first; the Sigstore bundles among its referrers only when those did not
/// settle it or the policy wants attestations; and, only when it wants
/// attestations, cosign 2's `.att` ones.
async fn judged(ctx: &Context<'_>, policy: &VerifyPolicy, digest: &str) -> Result<Verdict, String> {
    let mut found = Found { signatures: candidates(ctx, digest).await?, bundles: Vec::new() };
    let wants_attestations = !policy.attestations.is_empty();
    if !wants_attestations {
        let verdict = policy.judge(digest, &found);
        if verdict.accepted {
            return Ok(verdict);
        }
    }
    found.bundles = bundles(ctx, digest).await?;
    if wants_attestations {
        found.bundles.extend(legacy_attestations(ctx, digest).await?);
    }
    Ok(policy.judge(digest, &found))
}

/// cosign 2's attestations of `digest` (the `.att` tag), as bundles.
async fn legacy_attestations(ctx: &Context<'_>, digest: &str) -> Result<Vec<String>, String> {
    let layers = cosign_layers(ctx, cosign::attestation_tag(digest), "attestations").await?;
    let mut out = Vec::new();
    for layer in layers.iter().filter(|l| l.media_type == legacy::DSSE_MEDIA_TYPE).take(MAX_SIGNATURES) {
        if layer.size > bundle::MAX_BUNDLE {
            continue;
        }
        let envelope = read_blob(ctx.client, &ctx.scope.source, layer, bundle::MAX_BUNDLE)
            .await
            .map_err(|e| format!("reading an attestation: {e}"))?;
        match legacy::attestation_bundle(&envelope, &layer.annotations) {
            Ok(b) => out.push(b),
            Err(e) => tracing::debug!(digest, layer = layer.digest, error = e, "Skipping an attestation layer"),
        }
    }
    Ok(out)
}

/// The layers of the manifest cosign keeps `what` under (`tag`, in the
/// source repository); none when there is no such tag.
async fn cosign_layers(ctx: &Context<'_>, tag: Option<String>, what: &str) -> Result<Vec<Descriptor>, String> {
    let Some(tag) = tag else { return Ok(Vec::new()) };
    let at = ctx.scope.source.with_tag(&tag);
    let manifest = match ctx.client.manifest_get(&at).await {
        Ok(m) => m,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading the {what} {}: {e}", at.common_name())),
    };
    let links = manifest.links().map_err(|e| format!("{} does not hold {what}: {e}", at.common_name()))?;
    Ok(links.layers)
}

/// The Sigstore bundles among the referrers of `digest`. Each candidate
/// manifest is read: some registries' fallback indexes report another
/// `artifactType` than the manifest has.
async fn bundles(ctx: &Context<'_>, digest: &str) -> Result<Vec<String>, String> {
    let at = ctx.scope.referrer_source.with_digest(digest);
    let listed = ctx.client.referrers(&at).await.map_err(|e| format!("listing the referrers of {digest}: {e}"))?;
    // Listings can lie about a referrer's type, so each candidate's manifest
    // is read; those listed as bundles are read first, within the cap.
    let mut listed = listed;
    listed.sort_by_key(|r| !bundle::is_bundle(r.artifact_type.as_deref()));
    if listed.len() > bundle::MAX_REFERRERS {
        tracing::warn!(digest, referrers = listed.len(), "Reading only the first 32 referrers for signature bundles");
    }
    let mut out = Vec::new();
    for r in listed.iter().take(bundle::MAX_REFERRERS) {
        let m = ctx
            .client
            .manifest_get(&at.with_digest(&r.digest))
            .await
            .map_err(|e| format!("reading the referrer {}: {e}", r.digest))?;
        let Ok(doc) = m.doc() else { continue };
        let kind = doc.artifact_type.as_deref().or(doc.config.as_ref().map(|c| c.media_type.as_str()));
        if !bundle::is_bundle(kind) {
            continue;
        }
        for layer in doc.layers.iter().filter(|l| bundle::is_bundle(Some(&l.media_type))).take(1) {
            if layer.size > bundle::MAX_BUNDLE {
                continue;
            }
            let bytes = read_blob(ctx.client, &ctx.scope.referrer_source, layer, bundle::MAX_BUNDLE)
                .await
                .map_err(|e| format!("reading a bundle: {e}"))?;
            out.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Ok(out)
}

/// The signatures cosign keeps for `digest` in the source repository.
async fn candidates(ctx: &Context<'_>, digest: &str) -> Result<Vec<Candidate>, String> {
    let layers = cosign_layers(ctx, cosign::signature_tag(digest), "signatures").await?;
    let mut out = Vec::new();
    for layer in layers.iter().filter(|l| l.annotations.contains_key(cosign::SIGNATURE_ANNOTATION)) {
        if out.len() == MAX_SIGNATURES {
            break;
        }
        if layer.size > MAX_PAYLOAD {
            let kib = MAX_PAYLOAD / 1024;
            return Err(format!("a signature payload of {} bytes is larger than {kib} KiB", layer.size));
        }
        let payload = read_blob(ctx.client, &ctx.scope.source, layer, MAX_PAYLOAD)
            .await
            .map_err(|e| format!("reading a signature payload: {e}"))?;
        out.extend(Candidate::of_layer(payload, &layer.annotations));
    }
    Ok(out)
}

/// A small blob (a payload, a bundle) of `repo`, read only up to `max` and
/// its descriptor's size, and checked against its digest.
pub(super) async fn read_blob(
    client: &Client,
    repo: &Reference,
    layer: &Descriptor,
    max: u64,
) -> Result<Vec<u8>, String> {
    let mut stream = client.blob_get(repo, &layer.digest).await.map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if (bytes.len() + chunk.len()) as u64 > max.min(layer.size) {
            return Err(format!("{} is larger than its descriptor says", layer.digest));
        }
        bytes.extend_from_slice(&chunk);
    }
    let got = format!("sha256:{}", crate::verify::hex(&Sha256::digest(&bytes)));
    if got != layer.digest {
        return Err(format!("{} has the digest {got}", layer.digest));
    }
    Ok(bytes)
}

/// A verified index covers the child the copy takes from it only when it lists it.
async fn covers(ctx: &Context<'_>, digest: &str, copied: &str) -> Result<(), String> {
    if digest == copied {
        return Ok(());
    }
    let index = ctx
        .state
        .manifest(ctx.client, &ctx.scope.source.with_digest(digest))
        .await
        .map_err(|e| format!("reading the verified index: {e}"))?;
    let listed = index.links().is_ok_and(|l| l.manifests.iter().any(|m| m.digest == copied));
    if listed { Ok(()) } else { Err(format!("{copied} is not listed in the verified index {digest}")) }
}
