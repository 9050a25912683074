//! Certificates of a private PKI: no transparency log and no timestamp, so
//! the chain is checked as of now (rustls-webpki, ring) against the trusted
//! root's certificate authorities, then the signature with the certificate's
//! key. The identity is the certificate's e-mail or URI SAN; the issuer is
//! Fulcio's OIDC-issuer extension when present, else empty.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::{CertificateDer, UnixTime};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::cosign::Candidate;
use super::keys::PublicKey;

/// Code signing (1.3.6.1.5.5.7.3.3), DER content of the OID.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
/// Fulcio's OIDC issuer, v2 (DER UTF8String) and v1 (raw).
const ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";

/// The certificate authorities of a `trusted_root.json`, each its chain of
/// DER certificates as listed.
pub fn authorities(root_json: &str) -> Result<Vec<Vec<Vec<u8>>>, String> {
    let doc: serde_json::Value = serde_json::from_str(root_json).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for ca in doc["certificateAuthorities"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let certs = ca["certChain"]["certificates"].as_array().map(Vec::as_slice).unwrap_or_default();
        let chain: Result<Vec<Vec<u8>>, String> = certs
            .iter()
            .map(|c| STANDARD.decode(c["rawBytes"].as_str().unwrap_or_default()).map_err(|e| e.to_string()))
            .collect();
        out.push(chain?);
    }
    Ok(out)
}

/// Checks a signature made with a private-PKI certificate: the chain to one
/// of `authorities` now, code signing if it lists usages, and the signature
/// over the payload. The signer's identity and issuer.
pub fn check(c: &Candidate, cert_pem: &str, authorities: &[Vec<Vec<u8>>]) -> Result<(String, String), String> {
    let leaf = pem::parse(cert_pem).map_err(|e| format!("its certificate is not PEM: {e}"))?;
    let leaf_der = CertificateDer::from(leaf.contents().to_vec());
    let end = webpki::EndEntityCert::try_from(&leaf_der).map_err(|e| format!("unusable certificate: {e:?}"))?;
    let mut intermediates: Vec<CertificateDer<'static>> = c
        .chain
        .as_deref()
        .and_then(|p| pem::parse_many(p).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|b| CertificateDer::from(b.contents().to_vec()))
        .collect();
    let mut roots = Vec::new();
    for chain in authorities {
        if let Some((root, rest)) = chain.split_last() {
            roots.push(CertificateDer::from(root.clone()));
            intermediates.extend(rest.iter().map(|c| CertificateDer::from(c.clone())));
        }
    }
    let anchors: Vec<_> = roots.iter().filter_map(|r| webpki::anchor_from_trusted_cert(r).ok()).collect();
    end.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &intermediates,
        UnixTime::now(),
        webpki::KeyUsage::required_if_present(CODE_SIGNING),
        None,
        None,
    )
    .map_err(|e| format!("its certificate does not chain to the trusted root: {e:?}"))?;
    let (_, parsed) = X509Certificate::from_der(leaf.contents()).map_err(|e| format!("unusable certificate: {e}"))?;
    let key = PublicKey::from_spki(parsed.public_key().raw).map_err(|e| e.to_string())?;
    let sig = STANDARD.decode(c.signature.trim()).map_err(|_| "a signature is not base64".to_string())?;
    if !key.verifies(&c.payload, &sig) {
        return Err("the signature does not verify with its certificate".into());
    }
    let identity = parsed
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|n| match n {
                GeneralName::RFC822Name(s) | GeneralName::URI(s) => Some(s.to_string()),
                _ => None,
            })
        })
        .unwrap_or_default();
    let issuer = parsed
        .extensions()
        .iter()
        .find(|e| matches!(e.oid.to_id_string().as_str(), ISSUER_V2 | ISSUER_V1))
        .map(|e| {
            // v2 wraps the text in a DER UTF8String; v1 holds it raw.
            let v = e.value;
            let text = if v.len() > 2 && v[0] == 0x0c { &v[2..] } else { v };
            String::from_utf8_lossy(text).into_owned()
        })
        .unwrap_or_default();
    Ok((identity, issuer))
}
