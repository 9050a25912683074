//! The crypto the Sigstore verifier runs on: ring (our TLS crypto already),
//! so the binary carries no second crypto library. ring verifies signatures
//! over messages only; a signature over a digest (how Sigstore checks a
//! message signature) is checked with RustCrypto's P-256/P-384 instead.

use sha2::Digest;
use sigstore_verify::crypto::{CryptoProvider, Error, HashContext, Result, SigningScheme};
use sigstore_verify::types::HashAlgorithm;

/// ring, behind the Sigstore verifier's provider interface.
#[derive(Debug)]
pub struct RingProvider;

/// Installs [`RingProvider`] for the process, once; later calls do nothing.
pub fn install() {
    static PROVIDER: RingProvider = RingProvider;
    let _ = sigstore_verify::crypto::install_default_provider(&PROVIDER);
}

struct Hasher<D: Digest + Send>(D);

impl<D: Digest + Send> HashContext for Hasher<D> {
    fn update(&mut self, data: &[u8]) {
        Digest::update(&mut self.0, data);
    }

    fn finalize(self: Box<Self>) -> Vec<u8> {
        self.0.finalize().to_vec()
    }
}

fn unsupported(scheme: SigningScheme) -> Error {
    Error::UnsupportedAlgorithm(format!("{scheme:?} is not supported by regsync's verifier"))
}

impl CryptoProvider for RingProvider {
    fn hash(&self, algorithm: HashAlgorithm) -> Result<Box<dyn HashContext>> {
        Ok(match algorithm {
            HashAlgorithm::Sha2256 => Box::new(Hasher(sha2::Sha256::new())),
            HashAlgorithm::Sha2384 => Box::new(Hasher(sha2::Sha384::new())),
            HashAlgorithm::Sha2512 => Box::new(Hasher(sha2::Sha512::new())),
            other => return Err(Error::UnsupportedAlgorithm(format!("{other:?}"))),
        })
    }

    fn verify_raw(&self, scheme: SigningScheme, key: &[u8], data: &[u8], signature: &[u8]) -> Result<()> {
        use ring::signature as s;
        let alg: &'static dyn s::VerificationAlgorithm = match scheme {
            SigningScheme::EcdsaP256Sha256 => &s::ECDSA_P256_SHA256_ASN1,
            SigningScheme::EcdsaP256Sha384 => &s::ECDSA_P256_SHA384_ASN1,
            SigningScheme::EcdsaP384Sha256 => &s::ECDSA_P384_SHA256_ASN1,
            SigningScheme::EcdsaP384Sha384 => &s::ECDSA_P384_SHA384_ASN1,
            SigningScheme::Ed25519 => &s::ED25519,
            SigningScheme::RsaPssSha256 => &s::RSA_PSS_2048_8192_SHA256,
            SigningScheme::RsaPssSha384 => &s::RSA_PSS_2048_8192_SHA384,
            SigningScheme::RsaPssSha512 => &s::RSA_PSS_2048_8192_SHA512,
            SigningScheme::RsaPkcs1Sha256 => &s::RSA_PKCS1_2048_8192_SHA256,
            SigningScheme::RsaPkcs1Sha384 => &s::RSA_PKCS1_2048_8192_SHA384,
            SigningScheme::RsaPkcs1Sha512 => &s::RSA_PKCS1_2048_8192_SHA512,
            other => return Err(unsupported(other)),
        };
        s::UnparsedPublicKey::new(alg, key)
            .verify(data, signature)
            .map_err(|_| Error::Verification("signature does not verify".into()))
    }

    fn verify_prehashed(&self, scheme: SigningScheme, key: &[u8], digest: &[u8], signature: &[u8]) -> Result<()> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        let bad = |e: &dyn std::fmt::Display| Error::Verification(e.to_string());
        match scheme {
            SigningScheme::EcdsaP256Sha256 | SigningScheme::EcdsaP256Sha384 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|e| bad(&e))?;
                let sig = p256::ecdsa::Signature::from_der(signature).map_err(|e| bad(&e))?;
                key.verify_prehash(digest, &sig).map_err(|e| bad(&e))
            }
            SigningScheme::EcdsaP384Sha256 | SigningScheme::EcdsaP384Sha384 => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|e| bad(&e))?;
                let sig = p384::ecdsa::Signature::from_der(signature).map_err(|e| bad(&e))?;
                key.verify_prehash(digest, &sig).map_err(|e| bad(&e))
            }
            other => Err(unsupported(other)),
        }
    }
}
