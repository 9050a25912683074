//! The `copy` stage: carries out a plan, and nothing else.
//!
//! A copy moves an image graph children first: blobs and child manifests
//! (pushed by digest) go before the manifest that names them, and the tagged
//! manifest goes last, so a target tag never points at something missing,
//! even if the process is killed half way. A refresh brings only the
//! referrers and digest tags the plan named (`referrers.rs`).
//!
//! Nothing the target already has is written again: children and blobs are
//! looked up first, and within a run each manifest and blob is written into
//! a repository at most once (`state.rs`).

pub(crate) mod referrers;

use std::collections::HashSet;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};

use super::context::Context;
use super::plan::Work;
use super::report::CopyStats;
use super::walk::Walk;
use crate::client::{
    BlobCopy, ClientError, Descriptor, ErrorKind, Manifest, PutOptions, Result, Upkeep, digest_tag_subject,
    is_fallback_tag, is_index, is_manifest,
};
use crate::reference::Reference;

/// How many children or blobs of one manifest move at once; the per-host
/// request limit still bounds what reaches each registry.
pub const FAN_OUT: usize = 8;

/// The names log lines give one level of a copy (LOG-4): the references as
/// configured at the top, `repo@digest` for children and referrers,
/// `repo:tag` for digest tags.
#[derive(Debug, Clone)]
pub struct Names {
    /// Source name.
    pub source: String,
    /// Target name.
    pub target: String,
}

impl Names {
    /// The names of a pinned level (a child or a referrer).
    fn pinned(src: &Reference, dst: &Reference, digest: &str) -> Self {
        Names { source: src.pinned(digest).common_name(), target: dst.pinned(digest).common_name() }
    }
}

/// One image copy or refresh.
pub struct ImageCopy<'a> {
    pub(super) ctx: &'a Context<'a>,
    /// The image's top digest at the source (what `look_below` measures
    /// against, and the subject of the top's referrers).
    pub(super) top: String,
    /// The top as pushed when `platforms` filtered it (another digest).
    filtered_top: Option<String>,
    pub(super) stats: Mutex<CopyStats>,
    /// Manifests whose copy started (loops end here, COPY-11).
    pub(super) visited: Mutex<HashSet<String>>,
    /// Digest tags, pushed once everything they name is in place.
    pub(super) deferred: Mutex<Vec<(Reference, Manifest)>>,
    /// Subjects whose referrers include a manifest still being copied: their
    /// fallback index is updated after the top is pushed (COPY-11).
    pub(super) loops: Mutex<Vec<String>>,
}

fn invalid(r: &Reference, e: impl std::fmt::Display) -> ClientError {
    ClientError::new(ErrorKind::Invalid, r.common_name(), e.to_string())
}

fn cancelled(e: &ClientError) -> bool {
    e.kind == ErrorKind::Cancelled
}

impl<'a> ImageCopy<'a> {
    /// A copy of the image whose top manifest is `top` (a source digest).
    pub fn new(ctx: &'a Context<'a>, top: &str) -> Self {
        ImageCopy {
            ctx,
            top: top.to_string(),
            filtered_top: None,
            stats: Mutex::new(CopyStats::default()),
            visited: Mutex::new(HashSet::new()),
            deferred: Mutex::new(Vec::new()),
            loops: Mutex::new(Vec::new()),
        }
    }

    /// Copies `m` (read from `src`) to `dst`, tag last, and returns the counters.
    pub async fn copy_image(
        mut self,
        src: &Reference,
        dst: &Reference,
        m: &Manifest,
        names: &Names,
    ) -> Result<CopyStats> {
        let top = self.ctx.options.top_manifest(m)?;
        if top.digest != m.digest {
            self.filtered_top = Some(top.digest.clone());
        }
        let under = is_fallback_tag(&dst.tag).then(|| digest_tag_subject(&dst.tag)).flatten();
        self.copy_tree(src, dst, &top, names, under.as_deref(), 0).await?;
        self.push_tagged(dst, &top).await?;
        self.finish().await
    }

    /// The walk over this image's referrers and digest tags.
    pub(super) fn walk(&self) -> Walk<'_> {
        Walk::new(self.ctx, &self.top)
    }

    /// Does the work a refresh plan named.
    pub async fn refresh(self, work: &[Work]) -> Result<CopyStats> {
        for w in work {
            match w {
                Work::Referrers(subject) => referrers::sync(&self, subject, 1).await?,
                Work::DigestTag(tag) => referrers::digest_tag(&self, tag, 1).await?,
            }
        }
        self.finish().await
    }

    async fn push_tagged(&self, dst: &Reference, m: &Manifest) -> Result<()> {
        let (client, state) = (self.ctx.client, self.ctx.state);
        let ran = state.push_tag_once(client, dst, m).await.inspect_err(|e| {
            if !cancelled(e) {
                tracing::warn!(target = dst.original, err = %e, "Failed to push manifest");
            }
        })?;
        if ran {
            self.stats.lock().expect("poisoned").manifests += 1;
        }
        Ok(())
    }

    /// Pushes what waited for the rest: digest tags, then the referrers of
    /// subjects whose referrer was still being copied.
    async fn finish(self) -> Result<CopyStats> {
        let deferred = std::mem::take(&mut *self.deferred.lock().expect("poisoned"));
        for (tag_ref, manifest) in deferred {
            self.push_tagged(&tag_ref, &manifest).await?;
        }
        let loops = std::mem::take(&mut *self.loops.lock().expect("poisoned"));
        for subject in loops {
            referrers::sync(&self, &subject, 1).await?;
        }
        Ok(*self.stats.lock().expect("poisoned"))
    }

    /// Everything `m` needs on the target, but not `m` itself: child manifests
    /// (pushed by digest), blobs, referrers and digest tags. `under` is the
    /// subject whose fallback tag the tree's root will be pushed as, if any;
    /// `depth` is how far below the image's top `m` is (`limits.depth`).
    pub(super) fn copy_tree<'b>(
        &'b self,
        src: &'b Reference,
        dst: &'b Reference,
        m: &'b Manifest,
        names: &'b Names,
        under: Option<&'b str>,
        depth: usize,
    ) -> BoxFuture<'b, Result<()>> {
        Box::pin(async move {
            self.ctx.options.check_depth(depth, &m.digest)?;
            if !self.visited.lock().expect("poisoned").insert(m.digest.clone()) {
                return Ok(());
            }
            let doc = m.links().map_err(|e| invalid(src, e))?;
            // Built eagerly: a lazy `map` closure here trips the compiler's Send checks.
            let children: Vec<BoxFuture<'_, Result<()>>> =
                doc.manifests.iter().map(|child| self.copy_child(src, dst, child, under, depth + 1)).collect();
            futures_util::stream::iter(children).buffer_unordered(FAN_OUT).try_collect::<Vec<()>>().await?;
            let copies: Vec<BoxFuture<'_, Result<()>>> = doc
                .config
                .iter()
                .map(|c| (c, true))
                .chain(doc.layers.iter().chain(&doc.blobs).map(|l| (l, false)))
                .map(|(b, config)| Box::pin(self.copy_blob(src, dst, b, names, config)) as BoxFuture<'_, Result<()>>)
                .collect();
            futures_util::stream::iter(copies).buffer_unordered(FAN_OUT).try_collect::<Vec<()>>().await?;
            for layer in &doc.fs_layers {
                let desc = Descriptor::new("application/vnd.docker.image.rootfs.diff.tar.gzip", &layer.blob_sum, 0);
                self.copy_blob(src, dst, &desc, names, false).await?;
            }
            // The filtered top's referrers and digest tags are the source index's.
            let subject = if self.filtered_top.as_ref() == Some(&m.digest) { &self.top } else { &m.digest };
            self.extras_of(subject, depth).await
        })
    }

    /// The referrers and digest tags of one manifest (`depth` below the
    /// image's top; theirs are one level further), when the step copies them.
    pub(super) async fn extras_of(&self, digest: &str, depth: usize) -> Result<()> {
        if self.ctx.options.referrers {
            referrers::sync(self, digest, depth + 1).await?;
        }
        if self.ctx.options.digest_tags {
            referrers::digest_tags_of(self, digest, depth + 1).await?;
        }
        Ok(())
    }

    /// A child of an index. One the target has keeps what it has (the
    /// registry checked its blobs when it was pushed); only its referrers
    /// and digest tags are looked at, unless `forceRecursive`.
    fn copy_child<'b>(
        &'b self,
        src: &'b Reference,
        dst: &'b Reference,
        child: &'b Descriptor,
        under: Option<&'b str>,
        depth: usize,
    ) -> BoxFuture<'b, Result<()>> {
        Box::pin(async move {
            let names = Names::pinned(src, dst, &child.digest);
            if !is_manifest(&child.media_type) {
                return self.copy_blob(src, dst, child, &names, false).await;
            }
            let (client, state) = (self.ctx.client, self.ctx.state);
            let force = self.ctx.options.force_recursive;
            let present = state
                .head(client, &dst.pinned(&child.digest))
                .await
                .ok()
                .flatten()
                .is_some_and(|h| h.digest == child.digest);
            let opts = self.ctx.options;
            if present && !force && !(is_index(&child.media_type) && (opts.referrers || opts.digest_tags)) {
                return self.extras_of(&child.digest, depth).await;
            }
            let m = state.manifest(client, &src.pinned(&child.digest)).await?;
            self.copy_tree(src, dst, &m, &names, under, depth).await?;
            if present && !force {
                return Ok(());
            }
            self.push_child(dst, &m, under).await.map(|_| ())
        })
    }

    /// Pushes a child or referrer by digest, once per run and repository.
    /// Its fallback index is kept by the caller for referrers (`Upkeep::Caller`),
    /// and needs no update when the tree's root is that very fallback index.
    pub(super) async fn push_child(
        &self,
        dst: &Reference,
        m: &Manifest,
        under: Option<&str>,
    ) -> Result<crate::client::Pushed> {
        let subject = m.links().ok().and_then(|d| d.subject).map(|s| s.digest);
        let upkeep = if subject.is_some() && subject.as_deref() == under { Upkeep::Caller } else { Upkeep::Now };
        self.push_by_digest(dst, m, upkeep).await
    }

    pub(super) async fn push_by_digest(
        &self,
        dst: &Reference,
        m: &Manifest,
        upkeep: Upkeep,
    ) -> Result<crate::client::Pushed> {
        let (pushed, ran) = self
            .ctx
            .state
            .push_once(self.ctx.client, dst, m, PutOptions { child: true, upkeep })
            .await
            .inspect_err(|e| {
                if !cancelled(e) {
                    tracing::warn!(target = %dst.pinned(&m.digest).common_name(), err = %e, "Failed to push manifest");
                }
            })?;
        if ran {
            self.stats.lock().expect("poisoned").manifests += 1;
        }
        Ok(pushed)
    }

    async fn copy_blob(
        &self,
        src: &Reference,
        dst: &Reference,
        desc: &Descriptor,
        names: &Names,
        config: bool,
    ) -> Result<()> {
        if !desc.urls.is_empty() && !self.ctx.options.include_external {
            tracing::debug!(source = names.source, target = names.target, layer = desc.digest, "external-urls" = ?desc.urls, "Skipping external layer");
            return Ok(());
        }
        // LOG-4: one line per config and layer of every manifest copied, before
        // knowing whether the target has it.
        if config {
            tracing::info!(source = names.source, target = names.target, digest = desc.digest, "Copy config");
        } else {
            tracing::info!(source = names.source, target = names.target, layer = desc.digest, "Copy layer");
        }
        let (how, ours) = self.ctx.state.copy_blob(self.ctx.client, src, dst, desc).await.inspect_err(|e| {
            if cancelled(e) {
                return;
            }
            if config {
                tracing::warn!(source = names.source, target = names.target, digest = desc.digest, err = %e, "Failed to copy config");
            } else {
                tracing::warn!(source = names.source, target = names.target, layer = desc.digest, err = %e, "Failed to copy layer");
            }
        })?;
        let mut stats = self.stats.lock().expect("poisoned");
        match (how, ours) {
            (BlobCopy::Copied, true) => {
                stats.blobs_copied += 1;
                stats.bytes += desc.size;
            }
            (BlobCopy::Mounted, true) => stats.blobs_mounted += 1,
            _ => stats.blobs_skipped += 1,
        }
        Ok(())
    }
}
