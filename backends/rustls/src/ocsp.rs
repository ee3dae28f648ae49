//! OCSP staple checking for the rustls client: rustls hands the staple to the certificate
//! verifier but does not check it, so this module does, with ring.
//!
//! Supported: responses signed directly by the issuing CA (the common case for stapling with
//! a CA's own responder key), ECDSA P-256/P-384 and RSA PKCS#1 signatures, SHA-1 or SHA-256
//! certificate IDs. A response this module cannot check (a delegated responder, another
//! algorithm) is reported as failed, never as verified. Every input is parsed defensively:
//! garbage gives `Failed`, never a panic.

use ring::{digest, signature};
use rustls::pki_types::{CertificateDer, UnixTime};
use tlsresume_core::der::{
    bit_string, cert_parts, expect, generalized_time, read, CertParts, OID, SEQUENCE as SEQ,
};
use tlsresume_core::OcspStatus;

const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_RSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_RSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_RSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

fn verify_signature(issuer: &CertParts<'_>, sig_alg: &[u8], message: &[u8], sig: &[u8]) -> bool {
    let alg: &dyn signature::VerificationAlgorithm = match (sig_alg, issuer.key_params) {
        (OID_ECDSA_SHA256, Some(OID_P256)) => &signature::ECDSA_P256_SHA256_ASN1,
        (OID_ECDSA_SHA384, Some(OID_P256)) => &signature::ECDSA_P256_SHA384_ASN1,
        (OID_ECDSA_SHA256, Some(OID_P384)) => &signature::ECDSA_P384_SHA256_ASN1,
        (OID_ECDSA_SHA384, Some(OID_P384)) => &signature::ECDSA_P384_SHA384_ASN1,
        (OID_RSA_SHA256, _) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (OID_RSA_SHA384, _) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (OID_RSA_SHA512, _) => &signature::RSA_PKCS1_2048_8192_SHA512,
        _ => return false,
    };
    signature::UnparsedPublicKey::new(alg, issuer.key)
        .verify(message, sig)
        .is_ok()
}

/// Checks a stapled OCSP response for `end_entity`, whose issuer is among `intermediates` or
/// `roots`, at `now`: `Verified` when the issuer signed it, it covers this certificate, says
/// "good" and is current; `Failed` otherwise.
pub(crate) fn check(
    response: &[u8],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &[Vec<u8>],
    now: UnixTime,
) -> OcspStatus {
    match check_inner(response, end_entity, intermediates, roots, now.as_secs()) {
        Some(true) => OcspStatus::Verified,
        _ => OcspStatus::Failed,
    }
}

fn check_inner(
    response: &[u8],
    end_entity: &[u8],
    intermediates: &[CertificateDer<'_>],
    roots: &[Vec<u8>],
    now: u64,
) -> Option<bool> {
    let ee = cert_parts(end_entity)?;
    let issuer = intermediates
        .iter()
        .map(|c| c.as_ref())
        .chain(roots.iter().map(Vec::as_slice))
        .filter_map(cert_parts)
        .find(|c| c.subject == ee.issuer)?;

    // OCSPResponse: status successful (0), basic response bytes.
    // Strict DER: every length must account for exactly the bytes it covers.
    let (resp, trailing) = expect(response, SEQ)?;
    if !trailing.is_empty() {
        return Some(false);
    }
    let (status, rest) = expect(resp.contents, 0x0a)?;
    if status.contents != [0] {
        return Some(false);
    }
    let (bytes, _) = expect(rest, 0xa0)?;
    let (bytes, _) = expect(bytes.contents, SEQ)?;
    let (kind, rest) = expect(bytes.contents, OID)?;
    if kind.contents != OID_OCSP_BASIC {
        return Some(false);
    }
    let (octets, _) = expect(rest, 0x04)?;

    // BasicOCSPResponse: signed by the issuer.
    let (basic, trailing) = expect(octets.contents, SEQ)?;
    if !trailing.is_empty() {
        return Some(false);
    }
    let (tbs, rest) = expect(basic.contents, SEQ)?;
    let (sig_alg, rest) = expect(rest, SEQ)?;
    let (sig_oid, _) = expect(sig_alg.contents, OID)?;
    let (sig, rest) = expect(rest, 0x03)?;
    // Only the optional certificates may follow, and they must parse as one element.
    if !rest.is_empty() && !matches!(read(rest), Some((t, r)) if t.tag == 0xa0 && r.is_empty()) {
        return Some(false);
    }
    let sig_bits = bit_string(sig.contents)?;
    if !verify_signature(&issuer, sig_oid.contents, tbs.whole, sig_bits) {
        return Some(false);
    }

    // ResponseData: find this certificate's SingleResponse.
    let mut rest = tbs.contents;
    if rest.first() == Some(&0xa0) {
        rest = read(rest)?.1;
    }
    let (_responder, rest) = read(rest)?;
    let (_produced, rest) = expect(rest, 0x18)?;
    let (responses, _) = expect(rest, SEQ)?;
    let mut list = responses.contents;
    while !list.is_empty() {
        let (single, next) = expect(list, SEQ)?;
        list = next;
        let (cert_id, rest) = expect(single.contents, SEQ)?;
        let (hash_alg, id_rest) = expect(cert_id.contents, SEQ)?;
        let (hash_oid, _) = expect(hash_alg.contents, OID)?;
        let (_name_hash, id_rest) = expect(id_rest, 0x04)?;
        let (key_hash, id_rest) = expect(id_rest, 0x04)?;
        let (serial, _) = expect(id_rest, 0x02)?;
        if serial.contents != ee.serial {
            continue;
        }
        let expected_key_hash = match hash_oid.contents {
            OID_SHA1 => digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, issuer.key),
            OID_SHA256 => digest::digest(&digest::SHA256, issuer.key),
            _ => return Some(false),
        };
        if key_hash.contents != expected_key_hash.as_ref() {
            continue;
        }
        let (status, rest) = read(rest)?;
        if status.tag != 0x80 {
            // revoked [1] or unknown [2]
            return Some(false);
        }
        let (this_update, rest) = expect(rest, 0x18)?;
        let this_update = generalized_time(this_update.contents)?;
        // Five minutes' allowance for clock skew.
        if this_update > now.saturating_add(300) {
            return Some(false);
        }
        if let Some((next, _)) = expect(rest, 0xa0) {
            let (next_update, _) = expect(next.contents, 0x18)?;
            if generalized_time(next_update.contents)? < now {
                return Some(false);
            }
        }
        return Some(true);
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn pki(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/pki")
            .join(name);
        std::fs::read(path).expect("pki file")
    }

    fn pem_cert(name: &str) -> Vec<u8> {
        tlsresume_core::certificates_from_pem(&pki(name), name).expect("pem")[0].clone()
    }

    fn now() -> u64 {
        UnixTime::now().as_secs()
    }

    #[test]
    fn committed_staple_verifies_for_its_certificate_only() {
        let ca = pem_cert("ca.pem");
        let ee = pem_cert("server-ecdsa.pem");
        let rsa = pem_cert("server-rsa.pem");
        let staple = pki("server-ecdsa.ocsp.der");
        assert_eq!(
            check_inner(&staple, &ee, &[], std::slice::from_ref(&ca), now()),
            Some(true)
        );
        // The RSA certificate's serial is not in this response.
        assert_eq!(
            check_inner(&staple, &rsa, &[], std::slice::from_ref(&ca), now()),
            Some(false)
        );
        assert_eq!(
            check_inner(
                &pki("server-rsa.ocsp.der"),
                &rsa,
                &[],
                std::slice::from_ref(&ca),
                now()
            ),
            Some(true)
        );
        // Not current 30 years from now.
        assert_ne!(
            check_inner(
                &staple,
                &ee,
                &[],
                std::slice::from_ref(&ca),
                now() + 30 * 365 * 86_400
            ),
            Some(true)
        );
        // Unknown issuer.
        assert_eq!(check_inner(&staple, &ee, &[], &[], now()), None);
    }

    #[test]
    fn any_corruption_fails_and_nothing_panics() {
        let ca = pem_cert("ca.pem");
        let ee = pem_cert("server-ecdsa.pem");
        let staple = pki("server-ecdsa.ocsp.der");
        // Every byte up to the end of the signature; what follows is the responder's copy of
        // the CA certificate, which plays no part (the issuer comes from the trust anchors).
        let signed_end = 294;
        for i in 0..signed_end {
            let mut bad = staple.clone();
            bad[i] ^= 0x01;
            assert_ne!(
                check_inner(&bad, &ee, &[], std::slice::from_ref(&ca), now()),
                Some(true),
                "byte {i}"
            );
        }
        for len in 0..staple.len() {
            assert_ne!(
                check_inner(&staple[..len], &ee, &[], std::slice::from_ref(&ca), now()),
                Some(true)
            );
        }
        assert_eq!(check_inner(b"garbage", b"garbage", &[], &[], 0), None);
    }
}
