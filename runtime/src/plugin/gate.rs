//! The pipeline's image facts as the WIT's `image-facts` record.

use super::bindings::v0_2_0::gate::exports::regsync::plugin::gate as wit;
use crate::pipeline::gate::ImageFacts;

fn pairs(map: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub(super) fn to_wit(f: &ImageFacts) -> wit::ImageFacts {
    wit::ImageFacts {
        source: f.source.clone(),
        target: f.target.clone(),
        digest: f.digest.clone(),
        media_type: f.media_type.clone(),
        platforms: f.platforms.clone(),
        annotations: pairs(&f.annotations),
        labels: pairs(&f.labels),
        created: f.created.clone(),
        size: f.size,
        referrers: f
            .referrers
            .iter()
            .map(|r| wit::Referrer {
                digest: r.digest.clone(),
                media_type: r.media_type.clone(),
                artifact_type: r.artifact_type.clone(),
                annotations: pairs(&r.annotations),
            })
            .collect(),
        signers: f
            .signers
            .iter()
            .map(|s| wit::Signer { entry: s.entry.clone(), identity: s.identity.clone(), issuer: s.issuer.clone() })
            .collect(),
        details: pairs(&f.details),
    }
}
