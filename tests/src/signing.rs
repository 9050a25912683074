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
    /// An RSA key in a PEM file, used through the `openssl` command.
    Rsa(tempfile::TempDir),
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

    /// RSA 2048 (PKCS#1 v1.5 with SHA-256, as cosign signs with RSA keys),
    /// made with the `openssl` command: ring cannot make RSA keys.
    pub fn rsa() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("rsa.pem");
        openssl(&["genrsa", "-out", key.to_str().unwrap(), "2048"]);
        let der = dir.path().join("rsa.der");
        openssl(&["rsa", "-in", key.to_str().unwrap(), "-pubout", "-outform", "DER", "-out", der.to_str().unwrap()]);
        let spki = std::fs::read(der).unwrap();
        Signer { pair: Pair::Rsa(dir), spki }
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
            Pair::Rsa(dir) => {
                let (key, msg, sig) = (dir.path().join("rsa.pem"), dir.path().join("msg"), dir.path().join("sig"));
                std::fs::write(&msg, message).unwrap();
                let path = |p: &std::path::PathBuf| p.to_str().unwrap().to_string();
                openssl(&["dgst", "-sha256", "-sign", &path(&key), "-out", &path(&sig), &path(&msg)]);
                std::fs::read(sig).unwrap()
            }
        }
    }
}

fn openssl(args: &[&str]) {
    let out =
        std::process::Command::new("openssl").args(args).output().expect("run openssl (scripts/test.sh installs it)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
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
    attachment(layout, image, "sig", config, layers)
}

/// The manifest cosign keeps `image`'s signatures (`suffix` "sig") or
/// attestations ("att") in, tagged `sha256-<hex>.<suffix>`.
fn attachment(
    layout: &mut Layout,
    image: &Descriptor,
    suffix: &str,
    config: Descriptor,
    layers: Vec<serde_json::Value>,
) -> Descriptor {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config.to_json(),
        "layers": layers,
    });
    let desc = layout.json_blob("application/vnd.oci.image.manifest.v1+json", &manifest);
    let (alg, hex) = image.digest.split_once(':').unwrap();
    layout.tag(&format!("{alg}-{hex}.{suffix}"), &desc);
    desc
}

/// A private Sigstore instance for tests: a "Fulcio" CA issuing short
/// certificates with an identity and issuer, a "Rekor" key signing entry
/// timestamps, and the `trusted_root.json` that trusts both.
pub struct Sigstore {
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_der: Vec<u8>,
    rekor: EcdsaKeyPair,
    rekor_spki: Vec<u8>,
}

/// A Fulcio-style signing certificate and its key.
pub struct Leaf {
    /// The certificate, PEM.
    pub pem: String,
    key: EcdsaKeyPair,
}

impl Leaf {
    /// A signature over `message` with the certificate's key.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(&SystemRandom::new(), message).unwrap().as_ref().to_vec()
    }
}

const FULCIO_ISSUER_V2: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 8];

impl Sigstore {
    /// A new CA and log key.
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair as RcKey, KeyUsagePurpose};
        let key = RcKey::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "regsync test fulcio");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_der = params.self_signed(&key).unwrap().der().to_vec();
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let rekor = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let rekor_spki = [P256_SPKI, rekor.public_key().as_ref()].concat();
        Sigstore { ca: rcgen::Issuer::new(params, key), ca_der, rekor, rekor_spki }
    }

    /// The trusted root of this instance (no CT logs: tests set `sct: ignore`).
    pub fn trusted_root(&self) -> String {
        use sha2::Digest;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{
                "baseUrl": "https://rekor.test",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": b64(&self.rekor_spki), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": {"start": "2020-01-01T00:00:00Z"}},
                "logId": {"keyId": b64(&sha2::Sha256::digest(&self.rekor_spki))}
            }],
            "certificateAuthorities": [{
                "subject": {"organization": "regsync tests", "commonName": "regsync test fulcio"},
                "uri": "https://fulcio.test",
                "certChain": {"certificates": [{"rawBytes": b64(&self.ca_der)}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"}
            }],
            "ctlogs": [],
            "timestampAuthorities": []
        })
        .to_string()
    }

    /// A code-signing certificate for `email`, its OIDC issuer `issuer`.
    pub fn leaf(&self, email: &str, issuer: &str) -> Leaf {
        use rcgen::{
            CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, KeyPair as RcKey, KeyUsagePurpose, SanType,
        };
        let key = RcKey::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::Rfc822Name(email.try_into().unwrap())];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        // The issuer as a DER UTF8String, as Fulcio writes it.
        let mut value = vec![0x0c, issuer.len() as u8];
        value.extend_from_slice(issuer.as_bytes());
        params.custom_extensions.push(CustomExtension::from_oid_content(FULCIO_ISSUER_V2, value));
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::hours(1);
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let pkcs8 = key.serialize_der();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &SystemRandom::new()).unwrap();
        Leaf { pem: cert.pem(), key }
    }

    /// The Rekor bundle annotation for `signature` by `leaf` over bytes whose
    /// SHA-256 is `hash`: a `hashedrekord` entry and its signed timestamp.
    /// `forged` signs it with another key than the log's.
    pub fn log(&self, leaf: &Leaf, hash: &[u8], signature: &[u8], forged: bool) -> (String, serde_json::Value) {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hex(hash)}},
                "signature": {"content": b64(signature), "publicKey": {"content": b64(leaf.pem.as_bytes())}}
            }
        });
        self.entry(&body, forged)
    }

    /// The Rekor entry of a DSSE envelope of `payload` signed by `verifier`
    /// (a certificate or public key, PEM).
    pub fn log_dsse(&self, verifier: &str, payload: &[u8], signature: &[u8]) -> (String, serde_json::Value) {
        use sha2::Digest;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hex(&sha2::Sha256::digest(payload))},
                "payloadHash": {"algorithm": "sha256", "value": hex(&sha2::Sha256::digest(payload))},
                "signatures": [{"signature": b64(signature), "verifier": b64(verifier.as_bytes())}]
            }
        });
        self.entry(&body, false)
    }

    /// `body` logged: the legacy bundle annotation and the bundle's tlog entry.
    fn entry(&self, body: &serde_json::Value, forged: bool) -> (String, serde_json::Value) {
        use sha2::Digest;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let kind = body["kind"].as_str().unwrap().to_string();
        let body = b64(body.to_string().as_bytes());
        let log_id = hex(&sha2::Sha256::digest(&self.rekor_spki));
        let time = time::OffsetDateTime::now_utc().unix_timestamp() - 60;
        let payload = json!({"body": body, "integratedTime": time, "logID": log_id, "logIndex": 42});
        let rng = SystemRandom::new();
        let set = if forged {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
            let other = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
            other.sign(&rng, payload.to_string().as_bytes()).unwrap()
        } else {
            self.rekor.sign(&rng, payload.to_string().as_bytes()).unwrap()
        };
        let annotation = json!({"SignedEntryTimestamp": b64(set.as_ref()), "Payload": payload}).to_string();
        let entry = json!({
            "logIndex": "42",
            "logId": {"keyId": b64(&sha2::Sha256::digest(&self.rekor_spki))},
            "kindVersion": {"kind": kind, "version": "0.0.1"},
            "integratedTime": time.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": b64(set.as_ref())},
            "canonicalizedBody": body
        });
        (annotation, entry)
    }
}

impl Default for Sigstore {
    fn default() -> Self {
        Self::new()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs `image` keyless, as cosign 2 does: a `.sig` manifest whose layer
/// carries the signature, the certificate and the Rekor bundle.
pub fn sign_keyless(layout: &mut Layout, image: &Descriptor, sigstore: &Sigstore, leaf: &Leaf, forged: bool) {
    use sha2::Digest;
    let payload = payload(&image.digest);
    let sig = leaf.sign(&payload);
    let (bundle, _) = sigstore.log(leaf, &sha2::Sha256::digest(&payload), &sig, forged);
    let config = layout.blob("application/vnd.oci.image.config.v1+json", b"{}");
    let mut d = layout.blob("application/vnd.dev.cosign.simplesigning.v1+json", &payload);
    d.annotations
        .insert("dev.cosignproject.cosign/signature".into(), base64::engine::general_purpose::STANDARD.encode(&sig));
    d.annotations.insert("dev.sigstore.cosign/certificate".into(), leaf.pem.clone());
    d.annotations.insert("dev.sigstore.cosign/bundle".into(), bundle);
    attachment(layout, image, "sig", config, vec![d.to_json()]);
}

/// Attaches a Sigstore bundle signing `image` (a message signature over the
/// manifest, whose digest is the image's) as a referrer, listed by the
/// `sha256-<hex>` fallback tag. `listed_as` is the `artifactType` the
/// fallback index reports (some registries report a wrong one).
pub fn attach_bundle(
    layout: &mut Layout,
    image: &Descriptor,
    manifest: &[u8],
    sigstore: &Sigstore,
    leaf: &Leaf,
    listed_as: &str,
) {
    use sha2::Digest;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let sig = leaf.sign(manifest);
    let hash = sha2::Sha256::digest(manifest);
    let (_, entry) = sigstore.log(leaf, &hash, &sig, false);
    let cert = pem::parse(&leaf.pem).unwrap();
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": [{"rawBytes": b64(cert.contents())}]},
            "tlogEntries": [entry]
        },
        "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(&hash)}, "signature": b64(&sig)}
    });
    let bundle_type = "application/vnd.dev.sigstore.bundle.v0.3+json";
    let mut referrer = layout.artifact(bundle_type, Some(image), &[(bundle_type, bundle.to_string().as_bytes())], &[]);
    layout.keep(&referrer);
    referrer.artifact_type = Some(listed_as.to_string());
    layout.referrers_tag(image, &[referrer]);
}

/// The predicate type cosign 3 gives an image signature.
pub const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// Attaches an in-toto statement about `image` with `predicate_type`, signed
/// by `leaf` in a DSSE envelope and logged, as a Sigstore bundle referrer
/// listed by the `sha256-<hex>` fallback tag (next to any listed before, in
/// `listed`). With [`SIGN_PREDICATE`] it is a cosign 3 signature.
pub fn attach_statement(
    layout: &mut Layout,
    image: &Descriptor,
    sigstore: &Sigstore,
    leaf: &Leaf,
    predicate_type: &str,
    listed: &mut Vec<Descriptor>,
) {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let statement = statement(image, predicate_type);
    let sig = leaf.sign(&pae(&statement));
    let (_, entry) = sigstore.log_dsse(&leaf.pem, statement.as_bytes(), &sig);
    let cert = pem::parse(&leaf.pem).unwrap();
    let material = json!({
        "x509CertificateChain": {"certificates": [{"rawBytes": b64(cert.contents())}]},
        "tlogEntries": [entry]
    });
    // Version 0.1: its log entry has a signed timestamp but no inclusion proof.
    attach_bundle_of(layout, image, &statement, &sig, ("0.1", material), listed);
}

/// Attaches an in-toto statement about `image` signed with a managed key
/// (cosign 3 `--key`) and logged in `sigstore`'s Rekor.
pub fn attach_key_statement(
    layout: &mut Layout,
    image: &Descriptor,
    sigstore: &Sigstore,
    signer: &Signer,
    predicate_type: &str,
    listed: &mut Vec<Descriptor>,
) {
    let statement = statement(image, predicate_type);
    let sig = signer.sign(&pae(&statement));
    let (_, entry) = sigstore.log_dsse(&signer.public_pem(), statement.as_bytes(), &sig);
    let material = json!({"publicKey": {"hint": ""}, "tlogEntries": [entry]});
    attach_bundle_of(layout, image, &statement, &sig, ("0.1", material), listed);
}

const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// What DSSE signs: the pre-authentication encoding of an in-toto payload.
fn pae(statement: &str) -> Vec<u8> {
    let head = format!("DSSEv1 {} {} {} ", PAYLOAD_TYPE.len(), PAYLOAD_TYPE, statement.len());
    [head.as_bytes(), statement.as_bytes()].concat()
}

fn statement(image: &Descriptor, predicate_type: &str) -> String {
    let hex = image.digest.trim_start_matches("sha256:");
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app", "digest": {"sha256": hex}}],
        "predicateType": predicate_type,
        "predicate": {"builder": {"id": "https://example.test/builder"}}
    })
    .to_string()
}

fn attach_bundle_of(
    layout: &mut Layout,
    image: &Descriptor,
    statement: &str,
    sig: &[u8],
    (version, material): (&str, serde_json::Value),
    listed: &mut Vec<Descriptor>,
) {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let media_type = match version {
        "0.1" => "application/vnd.dev.sigstore.bundle+json;version=0.1".to_string(),
        v => format!("application/vnd.dev.sigstore.bundle.v{v}+json"),
    };
    let bundle = json!({
        "mediaType": media_type,
        "verificationMaterial": material,
        "dsseEnvelope": {"payload": b64(statement.as_bytes()), "payloadType": PAYLOAD_TYPE, "signatures": [{"sig": b64(sig), "keyid": ""}]}
    });
    let bundle_type = "application/vnd.dev.sigstore.bundle.v0.3+json";
    let referrer = layout.artifact(bundle_type, Some(image), &[(bundle_type, bundle.to_string().as_bytes())], &[]);
    layout.keep(&referrer);
    listed.push(referrer);
    layout.referrers_tag(image, listed);
}

/// Who signs a cosign 2 attestation: a key (not logged), or a certificate
/// logged in a test Sigstore.
pub enum Attester<'a> {
    /// A managed key; the attestation is not logged.
    Key(&'a Signer),
    /// A Fulcio-style certificate, logged.
    Keyless(&'a Sigstore, &'a Leaf),
}

/// Attests `image` as cosign 2 does: a `sha256-<hex>.att` manifest whose
/// layer is a DSSE envelope of an in-toto statement with `predicate_type`.
pub fn attest_legacy(layout: &mut Layout, image: &Descriptor, attester: Attester<'_>, predicate_type: &str) {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let statement = statement(image, predicate_type);
    let mut annotations = vec![
        ("dev.cosignproject.cosign/signature".to_string(), String::new()),
        ("predicateType".to_string(), predicate_type.to_string()),
    ];
    let sig = match attester {
        Attester::Key(signer) => signer.sign(&pae(&statement)),
        Attester::Keyless(sigstore, leaf) => {
            let sig = leaf.sign(&pae(&statement));
            let (bundle, _) = sigstore.log_dsse(&leaf.pem, statement.as_bytes(), &sig);
            annotations.push(("dev.sigstore.cosign/certificate".into(), leaf.pem.clone()));
            annotations.push(("dev.sigstore.cosign/bundle".into(), bundle));
            sig
        }
    };
    let envelope = json!({"payloadType": PAYLOAD_TYPE, "payload": b64(statement.as_bytes()), "signatures": [{"keyid": "", "sig": b64(&sig)}]});
    let config = layout.blob("application/vnd.oci.image.config.v1+json", b"{}");
    let mut d = layout.blob("application/vnd.dsse.envelope.v1+json", envelope.to_string().as_bytes());
    d.annotations.extend(annotations);
    attachment(layout, image, "att", config, vec![d.to_json()]);
}
