//! A plain image copy built only on the client's public operations, so
//! client tests can move whole images without the sync engine: children and
//! blobs first, the tagged manifest last.

use regsync::client::{BlobCopy, Client, PutOptions, Result, is_manifest};
use regsync::reference::Reference;

/// What a copy did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Manifests pushed.
    pub manifests: usize,
    /// Blobs whose bytes were sent.
    pub blobs_sent: usize,
    /// Blobs the target already had.
    pub blobs_existed: usize,
    /// Blobs mounted from another repository.
    pub blobs_mounted: usize,
}

/// Copies the image `src` names to `dst` (same tag semantics as the client).
pub async fn copy_image(client: &Client, src: &Reference, dst: &Reference) -> Result<Copied> {
    let mut stats = Copied::default();
    let m = client.manifest_get(src).await?;
    copy_tree(client, src, dst, &m, false, &mut stats).await?;
    client.manifest_put(dst, &m, PutOptions::default()).await?;
    stats.manifests += 1;
    Ok(stats)
}

async fn copy_tree(
    client: &Client,
    src: &Reference,
    dst: &Reference,
    m: &regsync::client::Manifest,
    _child: bool,
    stats: &mut Copied,
) -> Result<()> {
    let doc = m.doc().map_err(|e| {
        regsync::client::ClientError::new(regsync::client::ErrorKind::Invalid, src.common_name(), e.to_string())
    })?;
    for child in &doc.manifests {
        let src_child = src.with_digest(&child.digest);
        let cm = client.manifest_get(&src_child).await?;
        Box::pin(copy_tree(client, src, dst, &cm, true, stats)).await?;
        client
            .manifest_put(&dst.with_digest(&child.digest), &cm, PutOptions { child: true, ..PutOptions::default() })
            .await?;
        stats.manifests += 1;
    }
    for blob in doc.config.iter().chain(&doc.layers).chain(&doc.blobs) {
        if is_manifest(&blob.media_type) {
            continue;
        }
        match client.copy_blob(src, dst, blob, None).await? {
            BlobCopy::Copied => stats.blobs_sent += 1,
            BlobCopy::Existed => stats.blobs_existed += 1,
            BlobCopy::Mounted => stats.blobs_mounted += 1,
        }
    }
    Ok(())
}
