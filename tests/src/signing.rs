//! cosign-style signatures made in test code: keys generated with ring,
//! simple-signing payloads, and the `sha256-<hex>.sig` manifest a registry
//! holds them in, as cosign writes them.

use std::path::Path;

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use serde_json::json;

use crate::fixtures::Layout;
use crate::oci::Descriptor;

// SubjectPublicKeyInfo headers for each key type's raw public key.
const P256_SPKI: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const P384_SPKI: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
    0x22, 0x03, 0x62, 0x00,
];
const ED25519_SPKI: &[u8] = &[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A signing key of one of the kinds cosign uses.
pub struct Signer {
    pair: Pair,
    spki: Vec<u8>,
}

impl Signer {
    /// ECDSA P-256 (cosign's default).
    pub fn p256() -> Self {
        Self::ecdsa(&ECDSA_P256_SHA256_ASN1_SIGNING, P256_SPKI)
    }

    /// ECDSA P-384.
    pub fn p384() -> Self {
        Self::ecdsa(&ECDSA_P384_SHA384_ASN1_SIGNING, P384_SPKI)
    }

    fn ecdsa(alg: &'static ring::signature::EcdsaSigningAlgorithm, header: &[u8]) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let spki = [header, pair.public_key().as_ref()].concat();
        Signer { pair: Pair::Ecdsa(pair), spki }
    }

    /// Ed25519.
    pub fn ed25519() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let spki = [ED25519_SPKI, pair.public_key().as_ref()].concat();
        Signer { pair: Pair::Ed25519(pair), spki }
    }

    /// The public key as cosign writes `cosign.pub`.
    pub fn public_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.spki);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
    }

    /// Writes the public key to `path`.
    pub fn write_public(&self, path: &Path) {
        std::fs::write(path, self.public_pem()).unwrap();
    }

    /// A signature over `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.pair {
            Pair::Ecdsa(p) => p.sign(&SystemRandom::new(), message).unwrap().as_ref().to_vec(),
            Pair::Ed25519(p) => p.sign(message).as_ref().to_vec(),
        }
    }
}

/// cosign's simple-signing payload vouching for `digest`.
pub fn payload(digest: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": "example.test/app"},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    }))
    .unwrap()
}

/// Signs `image` in `layout` as cosign does: a `sha256-<hex>.sig` manifest
/// with one layer per signer, each a payload vouching for `vouched` (the
/// image's own digest, unless a test wants another).
pub fn sign(layout: &mut Layout, image: &Descriptor, vouched: &str, signers: &[&Signer]) -> Descriptor {
    let config = layout.blob("application/vnd.oci.image.config.v1+json", b"{}");
    let layers: Vec<serde_json::Value> = signers
        .iter()
        .map(|s| {
            let payload = payload(vouched);
            let sig = base64::engine::general_purpose::STANDARD.encode(s.sign(&payload));
            let mut d = layout.blob("application/vnd.dev.cosign.simplesigning.v1+json", &payload);
            d.annotations.insert("dev.cosignproject.cosign/signature".into(), sig);
            d.to_json()
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config.to_json(),
        "layers": layers,
    });
    let desc = layout.json_blob("application/vnd.oci.image.manifest.v1+json", &manifest);
    let (alg, hex) = image.digest.split_once(':').unwrap();
    layout.tag(&format!("{alg}-{hex}.sig"), &desc);
    desc
}
