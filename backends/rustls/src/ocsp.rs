//! OCSP staple checking for the rustls client.
//!
//! rustls hands the stapled response to the certificate verifier without looking at it, so
//! this module checks it, the way RFC 6960 (§3.2, §4.2.2.2) and OpenSSL's
//! `OCSP_basic_verify`, `OCSP_resp_find_status` and `OCSP_check_validity` do (the calls
//! Exim's OpenSSL client relies on):
//!
//! 1. the response status is `successful` and the body a basic response;
//! 2. the leaf's issuer is among the given certificates: its subject is the leaf's issuer
//!    and its key verifies the leaf's signature;
//! 3. the responder named by the response is the issuer itself, or a certificate carried in
//!    the response (or in the peer's chain) that the issuer signed, that has the OCSP-signing
//!    extended key usage and is valid now (a delegated responder);
//! 4. the responder's key verifies the signature over the response data;
//! 5. a single response names this leaf: its serial number, and the issuer's name and key
//!    hashed with the hash algorithm the response uses (SHA-1 or SHA-2);
//! 6. its status is `good`;
//! 7. `thisUpdate` is not later than now plus [`ALLOWED_SKEW`], and `nextUpdate`, when
//!    present, is later than now minus [`ALLOWED_SKEW`] and not before `thisUpdate`.
//!
//! The DER is parsed by RustCrypto's `x509-ocsp`, `x509-cert` and `der` (strict DER, no
//! `unsafe`); signatures and hashes are ring's. Why these crates: `docs/ocsp.md`.
//!
//! [`check_response`] is the whole check over raw bytes, for tools and fuzzing; its input is
//! attacker-controlled (the staple comes from the peer), and it never panics.

use core::fmt;
use std::time::Duration;

use const_oid::db::{rfc5280, rfc5912, rfc6960, rfc8410};
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier};
use der::{Decode, Encode, Sequence};
use ring::{digest, signature};
use rustls::pki_types::{CertificateDer, UnixTime};
use tlsresume_core::OcspStatus;
use x509_cert::ext::pkix::{CrlReason, ExtendedKeyUsage};
use x509_cert::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_ocsp::{
    BasicOcspResponse, CertStatus, OcspGeneralizedTime, OcspResponse, OcspResponseStatus,
    ResponderId, SingleResponse,
};

/// The clock skew allowed on `thisUpdate` and `nextUpdate`: five minutes, as OpenSSL's
/// backend passes to `OCSP_check_validity` (Exim's `EXIM_OCSP_SKEW_SECONDS`) and the
/// `openssl ocsp` command uses by default.
pub const ALLOWED_SKEW: Duration = Duration::from_secs(300);

/// Why a stapled OCSP response was not accepted. Its `Display` is the log text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OcspRejection {
    /// The response is not well-formed DER of an OCSP response (truncated, trailing bytes,
    /// wrong types, non-canonical encodings); the decoder's words.
    Malformed(String),
    /// The responder answered with an error status (`tryLater`, `internalError`, …).
    Unsuccessful(&'static str),
    /// A successful response without a body.
    NoResponseBytes,
    /// A body of another type than the basic response (its OID).
    UnsupportedResponseType(String),
    /// The leaf certificate does not parse.
    BadLeaf(String),
    /// None of the given certificates issued the leaf.
    IssuerNotFound,
    /// No certificate matches the responder the response names.
    ResponderNotFound,
    /// The responder is not the issuer and not a delegated responder the issuer authorised
    /// (why).
    ResponderNotAuthorized(&'static str),
    /// The response is signed with an algorithm (or key type) this check does not support
    /// (the OIDs).
    UnsupportedSignatureAlgorithm(String),
    /// The signature over the response data does not verify with the responder's key.
    BadSignature,
    /// No single response names this leaf (serial, issuer name and key hashes).
    NoStatusForCertificate,
    /// The certificate is revoked: when (Unix seconds), and the reason when given.
    Revoked {
        /// `revocationTime`, seconds since the epoch.
        at: u64,
        /// `revocationReason`, when the response gives one.
        reason: Option<String>,
    },
    /// The responder does not know the certificate.
    Unknown,
    /// `thisUpdate` is later than now plus the allowed skew (Unix seconds).
    NotYetValid {
        /// `thisUpdate`, seconds since the epoch.
        this_update: u64,
    },
    /// `nextUpdate` is earlier than now minus the allowed skew (Unix seconds).
    Expired {
        /// `nextUpdate`, seconds since the epoch.
        next_update: u64,
    },
    /// `nextUpdate` is before `thisUpdate`.
    NextUpdateBeforeThisUpdate,
}

impl fmt::Display for OcspRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed OCSP response: {why}"),
            Self::Unsuccessful(status) => write!(f, "OCSP responder error: {status}"),
            Self::NoResponseBytes => f.write_str("successful OCSP response without a body"),
            Self::UnsupportedResponseType(oid) => {
                write!(f, "OCSP response type {oid} is not the basic response")
            }
            Self::BadLeaf(why) => write!(f, "the certificate does not parse: {why}"),
            Self::IssuerNotFound => f.write_str("the certificate's issuer is not known"),
            Self::ResponderNotFound => f.write_str("OCSP responder certificate not found"),
            Self::ResponderNotAuthorized(why) => {
                write!(f, "OCSP responder not authorized: {why}")
            }
            Self::UnsupportedSignatureAlgorithm(alg) => {
                write!(f, "OCSP signature algorithm not supported: {alg}")
            }
            Self::BadSignature => f.write_str("OCSP response signature does not verify"),
            Self::NoStatusForCertificate => {
                f.write_str("OCSP response has no status for this certificate")
            }
            Self::Revoked { at, reason } => {
                write!(f, "certificate revoked at {}", rfc3339(*at))?;
                match reason {
                    Some(reason) => write!(f, " ({reason})"),
                    None => Ok(()),
                }
            }
            Self::Unknown => f.write_str("certificate status unknown to the OCSP responder"),
            Self::NotYetValid { this_update } => {
                write!(
                    f,
                    "OCSP status not yet valid (thisUpdate {})",
                    rfc3339(*this_update)
                )
            }
            Self::Expired { next_update } => {
                write!(
                    f,
                    "OCSP status expired (nextUpdate {})",
                    rfc3339(*next_update)
                )
            }
            Self::NextUpdateBeforeThisUpdate => {
                f.write_str("OCSP status nextUpdate is before thisUpdate")
            }
        }
    }
}

impl std::error::Error for OcspRejection {}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (the seconds themselves when out of
/// the range the `der` crate can express).
fn rfc3339(secs: u64) -> String {
    der::DateTime::from_unix_duration(Duration::from_secs(secs))
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{secs} s after the epoch"))
}

/// Checks a DER OCSP response for the DER certificate `leaf` at `now`.
///
/// `issuers` are the certificates (DER) among which the leaf's issuer is looked for: the
/// peer's intermediates and the trust anchors. Delegated responder certificates are looked
/// for in the response and in `issuers`. Returns `Ok(())` when the response is signed by the
/// issuer or a responder it authorised, names this leaf, says "good" and is current;
/// otherwise the reason.
///
/// Every argument may be attacker-controlled: garbage, truncated or tampered input gives an
/// [`OcspRejection`], never a panic. The caller must check the leaf's chain to a trust anchor
/// on its own (the rustls client's verifier does so before calling this); this function
/// trusts whatever `issuers` it is given.
pub fn check_response(
    response: &[u8],
    leaf: &[u8],
    issuers: &[&[u8]],
    now: UnixTime,
) -> Result<(), OcspRejection> {
    let now = now.as_secs();
    let leaf_cert =
        Certificate::from_der(leaf).map_err(|e| OcspRejection::BadLeaf(e.to_string()))?;
    let basic_der = basic_response(response)?;
    let basic = BasicOcspResponse::from_der(&basic_der).map_err(malformed)?;
    let signed = Signed::from_der(&basic_der).map_err(malformed)?;

    // Parsed lazily: a trust store can be large, and most lookups stop early.
    let parsed = || issuers.iter().filter_map(|d| Parsed::new(d));
    let issuer = parsed()
        .find(|c| {
            c.cert.tbs_certificate.subject == leaf_cert.tbs_certificate.issuer && c.issued(leaf)
        })
        .ok_or(OcspRejection::IssuerNotFound)?;
    let id = &basic.tbs_response_data.responder_id;
    let delegate = if names_responder(id, &issuer) {
        None
    } else {
        let carried = signed
            .certs
            .iter()
            .flatten()
            .filter_map(|c| Parsed::new(&c.to_der().ok()?));
        let delegate = carried
            .chain(parsed())
            .find(|c| names_responder(id, c))
            .ok_or(OcspRejection::ResponderNotFound)?;
        authorize_delegate(&delegate, &issuer, now)?;
        Some(delegate)
    };
    let responder = delegate.as_ref().unwrap_or(&issuer);
    responder.verify(&signed).map_err(|e| match e {
        SignatureError::Unsupported(alg) => OcspRejection::UnsupportedSignatureAlgorithm(alg),
        SignatureError::Bad => OcspRejection::BadSignature,
    })?;

    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|s| names_leaf(s, &leaf_cert, &issuer))
        .ok_or(OcspRejection::NoStatusForCertificate)?;
    match &single.cert_status {
        CertStatus::Good(_) => {}
        CertStatus::Revoked(info) => {
            return Err(OcspRejection::Revoked {
                at: secs(&info.revocation_time),
                reason: info.revocation_reason.map(reason_name),
            })
        }
        CertStatus::Unknown(_) => return Err(OcspRejection::Unknown),
    }
    current(single, now)
}

/// The staple check as the verifier reports it: Exim's status, and the reason when failed.
pub(crate) fn check(
    response: &[u8],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &[Vec<u8>],
    now: UnixTime,
) -> (OcspStatus, Option<String>) {
    let issuers: Vec<&[u8]> = intermediates
        .iter()
        .map(|c| c.as_ref())
        .chain(roots.iter().map(Vec::as_slice))
        .collect();
    match check_response(response, end_entity, &issuers, now) {
        Ok(()) => (OcspStatus::Verified, None),
        Err(why) => (OcspStatus::Failed, Some(why.to_string())),
    }
}

fn malformed(e: der::Error) -> OcspRejection {
    OcspRejection::Malformed(e.to_string())
}

/// The DER of the basic response inside a successful `OCSPResponse`.
fn basic_response(response: &[u8]) -> Result<Vec<u8>, OcspRejection> {
    let response = OcspResponse::from_der(response).map_err(malformed)?;
    let status = match response.response_status {
        OcspResponseStatus::Successful => None,
        OcspResponseStatus::MalformedRequest => Some("malformedRequest"),
        OcspResponseStatus::InternalError => Some("internalError"),
        OcspResponseStatus::TryLater => Some("tryLater"),
        OcspResponseStatus::SigRequired => Some("sigRequired"),
        OcspResponseStatus::Unauthorized => Some("unauthorized"),
    };
    if let Some(status) = status {
        return Err(OcspRejection::Unsuccessful(status));
    }
    let bytes = response
        .response_bytes
        .ok_or(OcspRejection::NoResponseBytes)?;
    if bytes.response_type != rfc6960::ID_PKIX_OCSP_BASIC {
        return Err(OcspRejection::UnsupportedResponseType(
            bytes.response_type.to_string(),
        ));
    }
    Ok(bytes.response.into_bytes())
}

/// A certificate, parsed, with the DER it came from.
struct Parsed {
    cert: Certificate,
    der: Vec<u8>,
}

impl Parsed {
    fn new(der: &[u8]) -> Option<Self> {
        Some(Self {
            cert: Certificate::from_der(der).ok()?,
            der: der.to_vec(),
        })
    }

    fn spki(&self) -> &SubjectPublicKeyInfoOwned {
        &self.cert.tbs_certificate.subject_public_key_info
    }

    /// The subjectPublicKey bits (what OCSP key hashes cover).
    fn key_bits(&self) -> &[u8] {
        self.spki().subject_public_key.raw_bytes()
    }

    /// Whether this certificate's key made the signature of the DER certificate `der`.
    fn issued(&self, der: &[u8]) -> bool {
        Signed::from_der(der).is_ok_and(|signed| self.verify(&signed).is_ok())
    }

    /// Whether this certificate's key made `signed`'s signature.
    fn verify(&self, signed: &Signed<'_>) -> Result<(), SignatureError> {
        let message = signed.tbs.to_der().map_err(|_| SignatureError::Bad)?;
        let sig = signed.signature.as_bytes().ok_or(SignatureError::Bad)?;
        verify_signature(self.spki(), &signed.algorithm, &message, sig)
    }
}

/// A signed object as it was sent, for checking its signature over the very bytes that were
/// signed: a certificate or a basic OCSP response, `SEQUENCE { tbs, algorithm, signature,
/// [0] certificates OPTIONAL }`. The typed decoding (`x509-cert`, `x509-ocsp`) checks the
/// rest. `AnyRef` keeps an element's contents as sent, and the `der` crate accepts only
/// minimal tag and length encodings, so encoding one again gives its original bytes.
#[derive(Sequence)]
struct Signed<'a> {
    tbs: AnyRef<'a>,
    algorithm: AlgorithmIdentifierRef<'a>,
    signature: BitStringRef<'a>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    certs: Option<Vec<AnyRef<'a>>>,
}

enum SignatureError {
    Unsupported(String),
    Bad,
}

/// Verifies `sig` over `message` with the key in `spki`, for the algorithm `alg`: ECDSA on
/// P-256 and P-384 with SHA-256 or SHA-384, RSA PKCS#1 v1.5 with SHA-256, -384 or -512, and
/// Ed25519 (what webpki accepts for certificates, less RSA-PSS). SHA-1 signatures are refused.
fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierRef<'_>,
    message: &[u8],
    sig: &[u8],
) -> Result<(), SignatureError> {
    let key_alg = spki.algorithm.oid;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    let ring_alg: &dyn signature::VerificationAlgorithm = match (alg.oid, key_alg, curve) {
        (rfc5912::ECDSA_WITH_SHA_256, rfc5912::ID_EC_PUBLIC_KEY, Some(rfc5912::SECP_256_R_1)) => {
            &signature::ECDSA_P256_SHA256_ASN1
        }
        (rfc5912::ECDSA_WITH_SHA_384, rfc5912::ID_EC_PUBLIC_KEY, Some(rfc5912::SECP_256_R_1)) => {
            &signature::ECDSA_P256_SHA384_ASN1
        }
        (rfc5912::ECDSA_WITH_SHA_256, rfc5912::ID_EC_PUBLIC_KEY, Some(rfc5912::SECP_384_R_1)) => {
            &signature::ECDSA_P384_SHA256_ASN1
        }
        (rfc5912::ECDSA_WITH_SHA_384, rfc5912::ID_EC_PUBLIC_KEY, Some(rfc5912::SECP_384_R_1)) => {
            &signature::ECDSA_P384_SHA384_ASN1
        }
        (rfc5912::SHA_256_WITH_RSA_ENCRYPTION, rfc5912::RSA_ENCRYPTION, _) => {
            &signature::RSA_PKCS1_2048_8192_SHA256
        }
        (rfc5912::SHA_384_WITH_RSA_ENCRYPTION, rfc5912::RSA_ENCRYPTION, _) => {
            &signature::RSA_PKCS1_2048_8192_SHA384
        }
        (rfc5912::SHA_512_WITH_RSA_ENCRYPTION, rfc5912::RSA_ENCRYPTION, _) => {
            &signature::RSA_PKCS1_2048_8192_SHA512
        }
        (rfc8410::ID_ED_25519, rfc8410::ID_ED_25519, _) => &signature::ED25519,
        _ => {
            return Err(SignatureError::Unsupported(format!(
                "{} with a {} key",
                alg.oid, key_alg
            )))
        }
    };
    let key = spki.subject_public_key.raw_bytes();
    signature::UnparsedPublicKey::new(ring_alg, key)
        .verify(message, sig)
        .map_err(|_| SignatureError::Bad)
}

/// Whether the responder ID names `cert`: its subject, or the SHA-1 of its key bits.
fn names_responder(id: &ResponderId, cert: &Parsed) -> bool {
    match id {
        ResponderId::ByName(name) => cert.cert.tbs_certificate.subject == *name,
        ResponderId::ByKey(hash) => {
            digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, cert.key_bits()).as_ref()
                == hash.as_bytes()
        }
    }
}

/// RFC 6960 §4.2.2.2: a delegated responder's certificate is issued by the CA that issued the
/// certificate in question and carries id-kp-OCSPSigning; and it must be valid now.
fn authorize_delegate(responder: &Parsed, issuer: &Parsed, now: u64) -> Result<(), OcspRejection> {
    let tbs = &responder.cert.tbs_certificate;
    if tbs.issuer != issuer.cert.tbs_certificate.subject || !issuer.issued(&responder.der) {
        return Err(OcspRejection::ResponderNotAuthorized(
            "its certificate is not issued by the certificate's issuer",
        ));
    }
    let ocsp_signing = tbs.extensions.iter().flatten().any(|ext| {
        ext.extn_id == rfc5280::ID_CE_EXT_KEY_USAGE
            && ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
                .is_ok_and(|eku| eku.0.contains(&rfc5280::ID_KP_OCSP_SIGNING))
    });
    if !ocsp_signing {
        return Err(OcspRejection::ResponderNotAuthorized(
            "its certificate lacks the OCSP-signing extended key usage",
        ));
    }
    let not_before = tbs.validity.not_before.to_unix_duration().as_secs();
    let not_after = tbs.validity.not_after.to_unix_duration().as_secs();
    if now < not_before || now > not_after {
        return Err(OcspRejection::ResponderNotAuthorized(
            "its certificate is not valid now",
        ));
    }
    Ok(())
}

/// Whether `single` is about `leaf`, issued by `issuer`: the serial, and the issuer's name and
/// key hashed with the response's hash algorithm (one this check does not have never matches).
fn names_leaf(single: &SingleResponse, leaf: &Certificate, issuer: &Parsed) -> bool {
    let id = &single.cert_id;
    let hash: &'static digest::Algorithm = match id.hash_algorithm.oid {
        rfc5912::ID_SHA_1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        rfc5912::ID_SHA_256 => &digest::SHA256,
        rfc5912::ID_SHA_384 => &digest::SHA384,
        rfc5912::ID_SHA_512 => &digest::SHA512,
        _ => return false,
    };
    let Ok(name) = issuer.cert.tbs_certificate.subject.to_der() else {
        return false;
    };
    id.serial_number == leaf.tbs_certificate.serial_number
        && id.issuer_name_hash.as_bytes() == digest::digest(hash, &name).as_ref()
        && id.issuer_key_hash.as_bytes() == digest::digest(hash, issuer.key_bits()).as_ref()
}

fn secs(t: &OcspGeneralizedTime) -> u64 {
    t.0.to_unix_duration().as_secs()
}

/// `OCSP_check_validity(thisUpdate, nextUpdate, 300, -1)`.
fn current(single: &SingleResponse, now: u64) -> Result<(), OcspRejection> {
    let skew = ALLOWED_SKEW.as_secs();
    let this_update = secs(&single.this_update);
    if this_update > now.saturating_add(skew) {
        return Err(OcspRejection::NotYetValid { this_update });
    }
    if let Some(next) = &single.next_update {
        let next_update = secs(next);
        if next_update <= now.saturating_sub(skew) {
            return Err(OcspRejection::Expired { next_update });
        }
        if next_update < this_update {
            return Err(OcspRejection::NextUpdateBeforeThisUpdate);
        }
    }
    Ok(())
}

/// RFC 5280's name for a revocation reason.
fn reason_name(reason: CrlReason) -> String {
    match reason {
        CrlReason::Unspecified => "unspecified",
        CrlReason::KeyCompromise => "keyCompromise",
        CrlReason::CaCompromise => "cACompromise",
        CrlReason::AffiliationChanged => "affiliationChanged",
        CrlReason::Superseded => "superseded",
        CrlReason::CessationOfOperation => "cessationOfOperation",
        CrlReason::CertificateHold => "certificateHold",
        CrlReason::RemoveFromCRL => "removeFromCRL",
        CrlReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        CrlReason::AaCompromise => "aACompromise",
    }
    .to_owned()
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

    fn now() -> UnixTime {
        UnixTime::now()
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    #[test]
    fn committed_staple_verifies_for_its_certificate_only() {
        let ca = pem_cert("ca.pem");
        let ee = pem_cert("server-ecdsa.pem");
        let rsa = pem_cert("server-rsa.pem");
        let staple = pki("server-ecdsa.ocsp.der");
        assert_eq!(check_response(&staple, &ee, &[&ca], now()), Ok(()));
        // The RSA certificate's serial is not in this response.
        assert_eq!(
            check_response(&staple, &rsa, &[&ca], now()),
            Err(OcspRejection::NoStatusForCertificate)
        );
        assert_eq!(
            check_response(&pki("server-rsa.ocsp.der"), &rsa, &[&ca], now()),
            Ok(())
        );
        // Unknown issuer: the leaf itself is not its issuer.
        assert_eq!(
            check_response(&staple, &ee, &[&ee], now()),
            Err(OcspRejection::IssuerNotFound)
        );
        assert_eq!(
            check_response(b"garbage", b"garbage", &[], at(0)),
            Err(OcspRejection::BadLeaf(
                Certificate::from_der(b"garbage")
                    .expect_err("garbage")
                    .to_string()
            ))
        );
    }

    #[test]
    fn validity_window_follows_the_clock_with_five_minutes_of_skew() {
        let ca = pem_cert("ca.pem");
        let ee = pem_cert("server-ecdsa.pem");
        let staple = pki("server-ecdsa.ocsp.der");
        // The committed response's own times, read with the library.
        let basic =
            BasicOcspResponse::from_der(&basic_response(&staple).expect("basic")).expect("decodes");
        let single = &basic.tbs_response_data.responses[0];
        let this_update = secs(&single.this_update);
        let next_update = secs(single.next_update.as_ref().expect("nextUpdate"));
        let check = |t: u64| check_response(&staple, &ee, &[&ca], at(t));
        assert_eq!(check(this_update - 300), Ok(()));
        assert_eq!(
            check(this_update - 301),
            Err(OcspRejection::NotYetValid { this_update })
        );
        assert_eq!(check(next_update + 299), Ok(()));
        assert_eq!(
            check(next_update + 300),
            Err(OcspRejection::Expired { next_update })
        );
    }

    #[test]
    fn any_corruption_is_rejected_and_nothing_panics() {
        let ca = pem_cert("ca.pem");
        let ee = pem_cert("server-ecdsa.pem");
        let staple = pki("server-ecdsa.ocsp.der");
        let mut accepted = Vec::new();
        for i in 0..staple.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = staple.clone();
                bad[i] ^= bit;
                if check_response(&bad, &ee, &[&ca], now()).is_ok() {
                    accepted.push((i, bit));
                }
            }
        }
        // Flips in the responder's copy of the CA certificate (after the signature) may
        // still leave a valid response: the issuer comes from the trust anchors. Anything
        // else must be refused.
        let carried = staple
            .windows(ca.len())
            .position(|w| w == ca.as_slice())
            .expect("the response carries the CA certificate");
        assert!(
            accepted
                .iter()
                .all(|(i, _)| (carried..carried + ca.len()).contains(i)),
            "accepted flips at {accepted:?} (the CA certificate is at {carried})"
        );
        for len in 0..staple.len() {
            assert!(check_response(&staple[..len], &ee, &[&ca], now()).is_err());
            let _ = check_response(&staple, &ee[..len.min(ee.len())], &[&ca], now());
            let _ = check_response(&staple, &ee, &[&ca[..len.min(ca.len())]], now());
        }
    }
}
