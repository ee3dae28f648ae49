//! The certificates a run uses: the committed test PKI (`tests/pki/`), or a throwaway one made
//! at run time ([`Pki::generate`]) with its own OCSP response.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use tlsresume_core::{Error, Identity, KeyFormat};

/// Certificates for a run: trust anchors, the server's identity, an identity that does not
/// verify, and a stapled OCSP response for the server's certificate.
#[derive(Clone, Debug)]
pub struct Pki {
    /// Trust anchors (DER).
    pub roots: Vec<Vec<u8>>,
    /// The server certificate and key.
    pub server: Identity,
    /// A self-signed certificate the roots do not cover.
    pub untrusted: Identity,
    /// A "good" OCSP response for the server certificate, signed by the CA.
    pub ocsp: Vec<u8>,
}

/// The names every server certificate (trusted or not) is made for.
const SERVER_NAMES: [&str; 3] = ["mx.tlsresume.test", "localhost", "127.0.0.1"];

const DAY: u64 = 86_400;

impl Pki {
    /// The committed test PKI (`tests/pki/`, valid for 20 years from when it was made): an
    /// ECDSA P-256 CA and server certificate for `mx.tlsresume.test`, `localhost` and
    /// `127.0.0.1`.
    pub fn committed() -> Result<Self, Error> {
        Self::committed_with(
            include_bytes!("../pki/server-ecdsa.pem"),
            include_bytes!("../pki/server-ecdsa.key"),
            include_bytes!("../pki/server-ecdsa.ocsp.der"),
        )
    }

    /// The committed test PKI with the RSA-2048 server certificate.
    pub fn committed_rsa() -> Result<Self, Error> {
        Self::committed_with(
            include_bytes!("../pki/server-rsa.pem"),
            include_bytes!("../pki/server-rsa.key"),
            include_bytes!("../pki/server-rsa.ocsp.der"),
        )
    }

    fn committed_with(cert: &[u8], key: &[u8], ocsp: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            roots: tlsresume_core::certificates_from_pem(
                include_bytes!("../pki/ca.pem"),
                "ca.pem",
            )?,
            server: Identity::from_pem(cert, key)?,
            untrusted: Identity::from_pem(
                include_bytes!("../pki/untrusted.pem"),
                include_bytes!("../pki/untrusted.key"),
            )?,
            ocsp: ocsp.to_vec(),
        })
    }

    /// A throwaway PKI made now, shaped like the committed one: an ECDSA P-256 CA
    /// ("tlsresume throwaway CA"), a server certificate it signs for `mx.tlsresume.test`,
    /// `localhost` and `127.0.0.1` (ECDSA P-256, serverAuth, random serial), a self-signed
    /// certificate for the same names, and a "good" OCSP response for the server certificate
    /// signed by the CA key. Certificates are valid from a day ago for 30 days, which covers
    /// the engine's virtual clock (at most about 12 h ahead); the OCSP response from an hour
    /// ago for 30 days. Nothing is written to disk.
    pub fn generate() -> Result<Self, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| gen_error(format!("the system clock is before 1970: {e}")))?
            .as_secs();
        Self::generate_at(now)
    }

    /// [`Pki::generate`] with `now` in seconds since the epoch.
    fn generate_at(now: u64) -> Result<Self, Error> {
        let rng = SystemRandom::new();
        let not_before = now.saturating_sub(DAY);
        let not_after = now + 30 * DAY;

        // The CA. Its key identifier is the SHA-1 of its public key bits (RFC 5280 method
        // 1), the same value the OCSP response names its responder by.
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
        let mut ca_params = params(&rng, "tlsresume throwaway CA", not_before, not_after)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.key_identifier_method = KeyIdMethod::PreSpecified(
            digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, ca_key.public_key_raw())
                .as_ref()
                .to_vec(),
        );
        let ca_cert = ca_params.self_signed(&ca_key).map_err(rcgen_error)?;
        let ca_der = ca_cert.der().to_vec();
        let issuer = Issuer::from_params(&ca_params, &ca_key);

        // The server certificate.
        let server_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
        let mut leaf_params = server_params(&rng, not_before, not_after)?;
        leaf_params.use_authority_key_identifier_extension = true;
        let server_der = leaf_params
            .signed_by(&server_key, &issuer)
            .map_err(rcgen_error)?
            .der()
            .to_vec();

        // The untrusted certificate: the same names, signed by its own key.
        let untrusted_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
        let untrusted_der = server_params(&rng, not_before, not_after)?
            .self_signed(&untrusted_key)
            .map_err(rcgen_error)?
            .der()
            .to_vec();

        let ocsp = ocsp::good_response(&ca_der, &ca_key.serialize_der(), &server_der, now, &rng)?;
        Ok(Self {
            roots: vec![ca_der],
            server: Identity::from_der(
                vec![server_der],
                server_key.serialize_der(),
                KeyFormat::Pkcs8,
            )?,
            untrusted: Identity::from_der(
                vec![untrusted_der],
                untrusted_key.serialize_der(),
                KeyFormat::Pkcs8,
            )?,
            ocsp,
        })
    }
}

fn gen_error(why: impl core::fmt::Display) -> Error {
    Error::Config(format!("making the throwaway PKI: {why}"))
}

fn rcgen_error(e: rcgen::Error) -> Error {
    gen_error(e)
}

/// Certificate parameters with a common name, a validity window and a random serial.
fn params(
    rng: &SystemRandom,
    common_name: &str,
    not_before: u64,
    not_after: u64,
) -> Result<CertificateParams, Error> {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.not_before = epoch + Duration::from_secs(not_before);
    params.not_after = epoch + Duration::from_secs(not_after);
    params.serial_number = Some(random_serial(rng)?);
    Ok(params)
}

/// Parameters of a server certificate (trusted or not) for [`SERVER_NAMES`].
fn server_params(
    rng: &SystemRandom,
    not_before: u64,
    not_after: u64,
) -> Result<CertificateParams, Error> {
    let mut params = params(rng, SERVER_NAMES[0], not_before, not_after)?;
    params.subject_alt_names = CertificateParams::new(SERVER_NAMES.map(String::from).to_vec())
        .map_err(rcgen_error)?
        .subject_alt_names;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// 16 random bytes, positive and without a leading zero byte (so DER keeps all 16).
fn random_serial(rng: &SystemRandom) -> Result<SerialNumber, Error> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes)
        .map_err(|_| gen_error("no random bytes for a serial number"))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A minimal DER writer, enough to build one OCSP response (reading comes from
/// `tlsresume_core::der`).
mod der {
    pub(super) use tlsresume_core::der::{
        cert_parts, BIT_STRING, ENUMERATED, GENERALIZED_TIME, INTEGER, NULL, OCTET_STRING, OID,
        SEQUENCE,
    };

    /// One element: tag, length (short form below 128, long form above), contents.
    pub(super) fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(contents.len() + 10);
        out.push(tag);
        let len = contents.len();
        if let Ok(short @ 0..=0x7f) = u8::try_from(len) {
            out.push(short);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            let n = bytes.len() - skip;
            // At most size_of::<usize>() (8) length bytes, so the count fits in 7 bits.
            out.push(0x80 | (n as u8));
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(contents);
        out
    }

    /// A SEQUENCE of already-encoded elements.
    pub(super) fn seq(parts: &[&[u8]]) -> Vec<u8> {
        tlv(SEQUENCE, &parts.concat())
    }

    /// A context-specific constructed (EXPLICIT) tag `[n]` around an encoded element.
    pub(super) fn explicit(n: u8, inner: &[u8]) -> Vec<u8> {
        tlv(0xa0 | n, inner)
    }

    /// A BIT STRING of whole bytes.
    pub(super) fn bit_string(bytes: &[u8]) -> Vec<u8> {
        tlv(BIT_STRING, &[&[0u8][..], bytes].concat())
    }

    /// A GeneralizedTime `YYYYMMDDHHMMSSZ` for `secs` since the epoch.
    pub(super) fn generalized_time(secs: u64) -> Vec<u8> {
        let days = secs / 86_400;
        let rest = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        let text = format!(
            "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        );
        tlv(GENERALIZED_TIME, text.as_bytes())
    }

    /// (year, month, day) of `days` since 1970-01-01, proleptic Gregorian.
    pub(super) fn civil_from_days(days: u64) -> (u64, u64, u64) {
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z % 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + u64::from(m <= 2);
        (y, m, d)
    }
}

/// The OCSP response (RFC 6960) for the generated server certificate.
mod ocsp {
    use super::der::{self, *};
    use super::{gen_error, DAY};
    use ring::digest;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    use tlsresume_core::Error;

    /// id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1.
    const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
    /// id-sha1, 1.3.14.3.2.26.
    const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    /// ecdsa-with-SHA256, 1.2.840.10045.4.3.2.
    const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];

    fn sha1(data: &[u8]) -> Vec<u8> {
        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data)
            .as_ref()
            .to_vec()
    }

    /// A successful basic OCSP response saying `cert` (issued by `ca`) is good, produced at
    /// `now`, current from an hour ago for 30 days, with the responder named by the CA's key
    /// hash and signed with the CA's key (ECDSA P-256 SHA-256). The CA certificate rides
    /// along in `certs`: OpenSSL looks for the signer only among the peer's chain and the
    /// response's certificates, never in the trust store.
    pub(crate) fn good_response(
        ca: &[u8],
        ca_pkcs8: &[u8],
        cert: &[u8],
        now: u64,
        rng: &SystemRandom,
    ) -> Result<Vec<u8>, Error> {
        let ca_parts =
            der::cert_parts(ca).ok_or_else(|| gen_error("cannot parse the CA certificate"))?;
        let cert_parts = der::cert_parts(cert)
            .ok_or_else(|| gen_error("cannot parse the server certificate"))?;
        if cert_parts.issuer != ca_parts.subject {
            return Err(gen_error("the server certificate's issuer is not the CA"));
        }
        let key_hash = sha1(ca_parts.key);

        let sha1_alg = seq(&[&tlv(OID, OID_SHA1), &tlv(NULL, &[])]);
        let cert_id = seq(&[
            &sha1_alg,
            &tlv(OCTET_STRING, &sha1(ca_parts.subject)),
            &tlv(OCTET_STRING, &key_hash),
            &tlv(INTEGER, cert_parts.serial),
        ]);
        let single = seq(&[
            &cert_id,
            // good [0] IMPLICIT NULL
            &tlv(0x80, &[]),
            &generalized_time(now.saturating_sub(3600)),
            &explicit(0, &generalized_time(now + 30 * DAY)),
        ]);
        let tbs = seq(&[
            // responderID byKey [2] EXPLICIT KeyHash
            &explicit(2, &tlv(OCTET_STRING, &key_hash)),
            &generalized_time(now),
            &seq(&[&single]),
        ]);

        let signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, ca_pkcs8, rng)
            .map_err(|e| gen_error(format!("the CA key: {e}")))?;
        let signature = signer
            .sign(rng, &tbs)
            .map_err(|_| gen_error("cannot sign the OCSP response"))?;
        let basic = seq(&[
            &tbs,
            &seq(&[&tlv(OID, OID_ECDSA_SHA256)]),
            &bit_string(signature.as_ref()),
            &explicit(0, &seq(&[ca])),
        ]);
        Ok(seq(&[
            // responseStatus successful (0)
            &tlv(ENUMERATED, &[0]),
            &explicit(
                0,
                &seq(&[&tlv(OID, OID_OCSP_BASIC), &tlv(OCTET_STRING, &basic)]),
            ),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::der::{self, civil_from_days, generalized_time, tlv};
    use super::*;

    #[test]
    fn der_lengths_use_short_and_long_forms() {
        assert_eq!(tlv(0x04, &[]), [0x04, 0x00]);
        assert_eq!(tlv(0x04, &[7; 0x7f])[..2], [0x04, 0x7f]);
        assert_eq!(tlv(0x04, &[7; 0x80])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(tlv(0x04, &[7; 0xff])[..3], [0x04, 0x81, 0xff]);
        assert_eq!(tlv(0x04, &[7; 0x100])[..4], [0x04, 0x82, 0x01, 0x00]);
        assert_eq!(tlv(0x04, &[7; 70_000])[..5], [0x04, 0x83, 0x01, 0x11, 0x70]);
        let long = tlv(0x30, &[1; 300]);
        let (t, rest) = tlsresume_core::der::read(&long).expect("reads back");
        assert_eq!((t.tag, t.contents.len(), rest.len()), (0x30, 300, 0));
    }

    #[test]
    fn generalized_time_matches_known_values() {
        assert_eq!(generalized_time(0), b"\x18\x0f19700101000000Z");
        assert_eq!(&generalized_time(951_868_800)[2..], b"20000301000000Z");
        assert_eq!(&generalized_time(2_426_695_087)[2..], b"20461124175807Z");
        assert_eq!(&generalized_time(951_782_399)[2..], b"20000228235959Z");
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn generated_pki_hangs_together() {
        let now = 1_760_000_000;
        let pki = Pki::generate_at(now).expect("generate");
        assert_eq!(pki.roots.len(), 1);
        let ca = der::cert_parts(&pki.roots[0]).expect("ca");
        let server = der::cert_parts(&pki.server.chain()[0]).expect("server");
        let untrusted = der::cert_parts(&pki.untrusted.chain()[0]).expect("untrusted");
        assert_eq!(ca.issuer, ca.subject);
        assert_eq!(server.issuer, ca.subject);
        assert_eq!(untrusted.issuer, untrusted.subject);
        assert_ne!(untrusted.key, server.key);
        assert_eq!(server.serial.len(), 16);
        assert_eq!(pki.server.key_format(), KeyFormat::Pkcs8);
        // The OCSP response names the CA's name and key and the server certificate's serial,
        // and carries the promised times.
        let sha1 = |d: &[u8]| digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, d);
        let contains = |needle: &[u8]| pki.ocsp.windows(needle.len()).any(|w| w == needle);
        assert!(contains(&tlv(0xa2, &tlv(0x04, sha1(ca.key).as_ref()))));
        assert!(contains(&tlv(0x04, sha1(ca.subject).as_ref())));
        assert!(contains(&tlv(0x02, server.serial)));
        assert!(contains(&generalized_time(now)));
        assert!(contains(&generalized_time(now - 3600)));
        assert!(contains(&tlv(0xa0, &generalized_time(now + 30 * DAY))));
        // Strict DER at the top: one element, nothing after it.
        let (top, rest) = tlsresume_core::der::read(&pki.ocsp).expect("ocsp");
        assert_eq!((top.tag, rest.len()), (0x30, 0));
    }
}
