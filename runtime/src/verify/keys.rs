//! Public keys a policy trusts, read from PEM, and the one check they make:
//! does this signature over these bytes come from this key.
//!
//! cosign signs with ECDSA (P-256, P-384), RSA or Ed25519. Which hash an
//! ECDSA P-384 or RSA signature used depends on the cosign version (older
//! ones always hash with SHA-256), so each key tries the schemes cosign has
//! used for its type; none is weaker than SHA-256 with a 2048-bit RSA key.

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::VerifyError;

const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";
const RSA: &str = "1.2.840.113549.1.1.1";
const ED25519: &str = "1.3.101.112";

/// The kinds of key cosign signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// RSA, 2048 bits or more.
    Rsa,
    /// Ed25519.
    Ed25519,
}

/// A public key: its kind, the raw key ring reads, and its SPKI DER (what a
/// transparency-log entry names it by).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    kind: KeyKind,
    raw: Vec<u8>,
    spki: Vec<u8>,
}

impl PublicKey {
    /// The first key in PEM text (`PUBLIC KEY`, or `RSA PUBLIC KEY`).
    pub fn from_pem(text: &[u8]) -> Result<Self, VerifyError> {
        let blocks = pem::parse_many(text).map_err(|e| VerifyError::Key(format!("not PEM: {e}")))?;
        let block = blocks
            .iter()
            .find(|b| matches!(b.tag(), "PUBLIC KEY" | "RSA PUBLIC KEY"))
            .ok_or_else(|| VerifyError::Key("no PUBLIC KEY block".into()))?;
        match block.tag() {
            "RSA PUBLIC KEY" => Ok(PublicKey { kind: KeyKind::Rsa, raw: block.contents().to_vec(), spki: Vec::new() }),
            _ => Self::from_spki(block.contents()),
        }
    }

    /// A key from DER `SubjectPublicKeyInfo`.
    pub fn from_spki(der: &[u8]) -> Result<Self, VerifyError> {
        let (rest, spki) =
            SubjectPublicKeyInfo::from_der(der).map_err(|e| VerifyError::Key(format!("not a public key: {e}")))?;
        if !rest.is_empty() {
            return Err(VerifyError::Key("trailing bytes after the public key".into()));
        }
        let algorithm = spki.algorithm.algorithm.to_id_string();
        let kind = match algorithm.as_str() {
            EC_PUBLIC_KEY => {
                let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
                match curve.as_deref() {
                    Some(P256) => KeyKind::EcdsaP256,
                    Some(P384) => KeyKind::EcdsaP384,
                    other => return Err(VerifyError::Key(format!("unsupported elliptic curve {other:?}"))),
                }
            }
            RSA => KeyKind::Rsa,
            ED25519 => KeyKind::Ed25519,
            other => return Err(VerifyError::Key(format!("unsupported key algorithm {other}"))),
        };
        Ok(PublicKey { kind, raw: spki.subject_public_key.data.to_vec(), spki: der.to_vec() })
    }

    /// The key's SubjectPublicKeyInfo DER (empty for a PKCS#1 RSA key).
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// True when `der` (a SubjectPublicKeyInfo) is this key.
    pub fn is_spki(&self, der: &[u8]) -> bool {
        PublicKey::from_spki(der).is_ok_and(|k| k.kind == self.kind && k.raw == self.raw)
    }

    /// True when `sig` is this key's signature over `message`.
    pub fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        let schemes: &[&'static dyn VerificationAlgorithm] = match self.kind {
            KeyKind::EcdsaP256 => &[&signature::ECDSA_P256_SHA256_ASN1],
            KeyKind::EcdsaP384 => &[&signature::ECDSA_P384_SHA384_ASN1, &signature::ECDSA_P384_SHA256_ASN1],
            KeyKind::Rsa => &[
                &signature::RSA_PKCS1_2048_8192_SHA256,
                &signature::RSA_PSS_2048_8192_SHA256,
                &signature::RSA_PKCS1_2048_8192_SHA384,
                &signature::RSA_PKCS1_2048_8192_SHA512,
            ],
            KeyKind::Ed25519 => &[&signature::ED25519],
        };
        schemes.iter().any(|alg| UnparsedPublicKey::new(*alg, &self.raw).verify(message, sig).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    use super::*;

    fn spki_pem(der: &[u8]) -> String {
        pem::encode(&pem::Pem::new("PUBLIC KEY", der.to_vec()))
    }

    // The SPKI prefix of an uncompressed P-256 point (id-ecPublicKey, prime256v1).
    const P256_SPKI_PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
        0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

    #[test]
    fn ecdsa_and_ed25519_signatures_verify_only_with_their_key_and_message() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let der = [&P256_SPKI_PREFIX[..], pair.public_key().as_ref()].concat();
        let key = PublicKey::from_pem(spki_pem(&der).as_bytes()).unwrap();
        assert_eq!(key.kind(), KeyKind::EcdsaP256);
        let sig = pair.sign(&rng, b"payload").unwrap();
        assert!(key.verifies(b"payload", sig.as_ref()));
        assert!(!key.verifies(b"payloaD", sig.as_ref()));
        assert!(key.is_spki(&der));

        let ed = Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref()).unwrap();
        let der = [&ED25519_SPKI_PREFIX[..], ed.public_key().as_ref()].concat();
        let ed_key = PublicKey::from_pem(spki_pem(&der).as_bytes()).unwrap();
        assert_eq!(ed_key.kind(), KeyKind::Ed25519);
        assert!(ed_key.verifies(b"payload", ed.sign(b"payload").as_ref()));
        assert!(!ed_key.verifies(b"payload", sig.as_ref()), "another key's signature");
        assert!(!key.is_spki(&der));
    }

    #[test]
    fn what_is_not_a_usable_key_says_why() {
        let err = |text: &str| PublicKey::from_pem(text.as_bytes()).unwrap_err().to_string();
        assert!(err("hello").contains("no PUBLIC KEY block"), "{}", err("hello"));
        let junk = spki_pem(b"\x30\x03\x02\x01\x01");
        assert!(err(&junk).contains("not a public key"), "{}", err(&junk));
    }
}
