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
use tlsresume_core::OcspStatus;

/// A DER element: its tag, its contents, and the whole encoding.
#[derive(Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    contents: &'a [u8],
    whole: &'a [u8],
}

/// Reads one DER element from the front of `input`; returns it and the rest.
fn tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*input.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    Some((
        Tlv {
            tag,
            contents: &whole[header..],
            whole,
        },
        &input[end..],
    ))
}

/// Reads an element that must have `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(Tlv<'_>, &[u8])> {
    let (t, rest) = tlv(input)?;
    (t.tag == tag).then_some((t, rest))
}

const SEQ: u8 = 0x30;
const OID: u8 = 0x06;

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

/// The parts of a certificate OCSP checking needs.
struct Cert<'a> {
    serial: &'a [u8],
    issuer: &'a [u8],
    subject: &'a [u8],
    /// The SubjectPublicKeyInfo's algorithm parameters (the curve OID for EC keys).
    key_params: Option<&'a [u8]>,
    /// The subject public key bits (without the unused-bits byte).
    key: &'a [u8],
}

fn parse_cert(der: &[u8]) -> Option<Cert<'_>> {
    let (cert, _) = expect(der, SEQ)?;
    let (tbs, _) = expect(cert.contents, SEQ)?;
    let mut rest = tbs.contents;
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.1;
    }
    let (serial, rest) = expect(rest, 0x02)?;
    let (_sig_alg, rest) = expect(rest, SEQ)?;
    let (issuer, rest) = expect(rest, SEQ)?;
    let (_validity, rest) = expect(rest, SEQ)?;
    let (subject, rest) = expect(rest, SEQ)?;
    let (spki, _) = expect(rest, SEQ)?;
    let (alg, bits) = expect(spki.contents, SEQ)?;
    let (_alg_oid, params) = expect(alg.contents, OID)?;
    let key_params = expect(params, OID).map(|(p, _)| p.contents);
    let (bits, _) = expect(bits, 0x03)?;
    Some(Cert {
        serial: serial.contents,
        issuer: issuer.whole,
        subject: subject.whole,
        key_params,
        key: bit_string(bits.contents)?,
    })
}

/// The bytes of a BIT STRING whose bit count is a multiple of eight (the only kind keys and
/// signatures use).
fn bit_string(contents: &[u8]) -> Option<&[u8]> {
    match contents.split_first()? {
        (0, bytes) => Some(bytes),
        _ => None,
    }
}

/// Seconds since the epoch of a GeneralizedTime `YYYYMMDDHHMMSSZ`.
fn generalized_time(t: &[u8]) -> Option<u64> {
    if t.len() != 15 || t[14] != b'Z' {
        return None;
    }
    let num = |a: usize, b: usize| -> Option<u64> {
        std::str::from_utf8(t.get(a..b)?).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (h, mi, s) = (num(8, 10)?, num(10, 12)?, num(12, 14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from civil date (proleptic Gregorian), 1970-01-01 = 0.
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

fn verify_signature(issuer: &Cert<'_>, sig_alg: &[u8], message: &[u8], sig: &[u8]) -> bool {
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
    let ee = parse_cert(end_entity)?;
    let issuer = intermediates
        .iter()
        .map(|c| c.as_ref())
        .chain(roots.iter().map(Vec::as_slice))
        .filter_map(parse_cert)
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
    if !rest.is_empty() && !matches!(tlv(rest), Some((t, r)) if t.tag == 0xa0 && r.is_empty()) {
        return Some(false);
    }
    let sig_bits = bit_string(sig.contents)?;
    if !verify_signature(&issuer, sig_oid.contents, tbs.whole, sig_bits) {
        return Some(false);
    }

    // ResponseData: find this certificate's SingleResponse.
    let mut rest = tbs.contents;
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.1;
    }
    let (_responder, rest) = tlv(rest)?;
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
        let (status, rest) = tlv(rest)?;
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

    #[test]
    fn generalized_time_matches_known_values() {
        assert_eq!(generalized_time(b"19700101000000Z"), Some(0));
        assert_eq!(generalized_time(b"20000301000000Z"), Some(951_868_800));
        assert_eq!(generalized_time(b"20461124175807Z"), Some(2_426_695_087));
        assert_eq!(generalized_time(b"2046112417580Z"), None);
        assert_eq!(generalized_time(b"20461324175807Z"), None);
    }
}
