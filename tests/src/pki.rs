//! The certificates a run uses: the committed TEST PKI (`tests/pki/`, built into this crate;
//! its private keys are public, so it is for tests only: never trust its CA outside them), or
//! a throwaway one made
//! at run time ([`Pki::generate`]) that also makes OCSP responses of every kind
//! ([`OcspKind`]), built with RustCrypto's `x509-ocsp` (the library the rustls backend reads
//! them with).

use core::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use tlsresume_core::{Error, Identity, KeyFormat, TlsaRecord};

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
    /// A client certificate the CA issued (clientAuth, `CN=client.tlsresume.test`).
    pub client: Identity,
    /// A "good" OCSP response for the server certificate, signed by the CA.
    pub ocsp: Vec<u8>,
    /// The CA's certificate and key, for more OCSP responses (generated PKIs only).
    ca: Option<Arc<Ca>>,
}

/// The OCSP responses a throwaway PKI makes for its server certificate
/// ([`Pki::ocsp_response`]): one that a client must accept and one for each way a staple can
/// be wrong. Unless said otherwise a response is signed by the CA (ECDSA P-256 SHA-256), names
/// the responder by the CA's key hash, carries the CA certificate, names the server
/// certificate with a SHA-1 certificate ID, and is current from an hour before it is made for
/// 30 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OcspKind {
    /// "good": the one a client must accept (the kind in [`Pki::ocsp`]).
    Good,
    /// "good", with a SHA-256 certificate ID.
    GoodSha256,
    /// "revoked" a day before it is made, reason keyCompromise.
    Revoked,
    /// "unknown".
    Unknown,
    /// "good", but its nextUpdate was a day before it is made (thisUpdate two days).
    Expired,
    /// "good", but its thisUpdate is a day after it is made.
    NotYetValid,
    /// "good", signed by another CA, which the client does not trust, carrying that CA's
    /// certificate.
    WrongIssuer,
    /// "good", with a signature made by the CA over other response data.
    BadSignature,
    /// "good", signed by a delegated responder: a certificate the CA issued with the
    /// OCSP-signing extended key usage, carried in the response.
    Delegated,
    /// "good", signed by a certificate the CA issued without the OCSP-signing extended key
    /// usage.
    DelegatedWithoutEku,
    /// No status: the responder answered `tryLater`.
    TryLater,
}

impl OcspKind {
    /// Every kind.
    pub const ALL: [Self; 11] = [
        Self::Good,
        Self::GoodSha256,
        Self::Revoked,
        Self::Unknown,
        Self::Expired,
        Self::NotYetValid,
        Self::WrongIssuer,
        Self::BadSignature,
        Self::Delegated,
        Self::DelegatedWithoutEku,
        Self::TryLater,
    ];

    /// A short name: `good`, `good_sha256`, `revoked`, …
    pub fn name(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::GoodSha256 => "good_sha256",
            Self::Revoked => "revoked",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::BadSignature => "bad_signature",
            Self::Delegated => "delegated",
            Self::DelegatedWithoutEku => "delegated_without_eku",
            Self::TryLater => "try_later",
        }
    }
}

impl fmt::Display for OcspKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The names every server certificate (trusted or not) is made for.
const SERVER_NAMES: [&str; 3] = ["mx.tlsresume.test", "localhost", "127.0.0.1"];

/// The name of the client certificate.
const CLIENT_NAME: &str = "client.tlsresume.test";

const DAY: u64 = 86_400;

impl Pki {
    /// The committed TEST PKI (`tests/pki/`, valid for 20 years from when it was made): an
    /// ECDSA P-256 CA and server certificate for `mx.tlsresume.test`, `localhost` and
    /// `127.0.0.1`. Its private keys are public (in the repository and in this crate): for
    /// tests only.
    pub fn committed() -> Result<Self, Error> {
        Self::committed_with(
            include_bytes!("../pki/server-ecdsa.pem"),
            include_bytes!("../pki/server-ecdsa.key"),
            include_bytes!("../pki/server-ecdsa.ocsp.der"),
        )
    }

    /// The committed TEST PKI with the RSA-2048 server certificate (keys public: for tests
    /// only).
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
            client: Identity::from_pem(
                include_bytes!("../pki/client.pem"),
                include_bytes!("../pki/client.key"),
            )?,
            ocsp: ocsp.to_vec(),
            ca: None,
        })
    }

    /// A throwaway PKI made now, shaped like the committed one: an ECDSA P-256 CA
    /// ("tlsresume throwaway CA"), a server certificate it signs for `mx.tlsresume.test`,
    /// `localhost` and `127.0.0.1` (ECDSA P-256, serverAuth, random serial), a self-signed
    /// certificate for the same names, and a "good" OCSP response for the server certificate
    /// ([`OcspKind::Good`]). Certificates are valid from a day ago for 30 days, which covers
    /// the engine's virtual clock (at most about 12 h ahead); the OCSP response from an hour
    /// ago for 30 days. Also a client certificate the CA signs (`CN=client.tlsresume.test`,
    /// clientAuth). Nothing is written to disk.
    pub fn generate() -> Result<Self, Error> {
        Self::generate_at(system_now()?)
    }

    /// [`Pki::generate`] with `now` in seconds since the epoch.
    fn generate_at(now: u64) -> Result<Self, Error> {
        let rng = SystemRandom::new();
        let not_before = now.saturating_sub(DAY);
        let not_after = now + 30 * DAY;

        // The CA. Its key identifier is the SHA-1 of its public key bits (RFC 5280 method
        // 1), the same value the OCSP responses name their responder by.
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
        let ca_der = ca_params
            .self_signed(&ca_key)
            .map_err(rcgen_error)?
            .der()
            .to_vec();
        let ca = Ca {
            issuer: Issuer::new(ca_params, ca_key),
            der: ca_der,
        };

        // The server certificate.
        let server_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
        let mut leaf_params = server_params(&rng, not_before, not_after)?;
        leaf_params.use_authority_key_identifier_extension = true;
        let server_der = leaf_params
            .signed_by(&server_key, &ca.issuer)
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

        // The client certificate.
        let client_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
        let mut client_params = params(&rng, CLIENT_NAME, not_before, not_after)?;
        client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client_params.use_authority_key_identifier_extension = true;
        let client_der = client_params
            .signed_by(&client_key, &ca.issuer)
            .map_err(rcgen_error)?
            .der()
            .to_vec();

        let ocsp = ocsp::response(&ca, &server_der, OcspKind::Good, now, &rng)?;
        Ok(Self {
            roots: vec![ca.der.clone()],
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
            client: Identity::from_der(
                vec![client_der],
                client_key.serialize_der(),
                KeyFormat::Pkcs8,
            )?,
            ocsp,
            ca: Some(Arc::new(ca)),
        })
    }

    /// An OCSP response of `kind` for the server certificate, made now. Only a generated PKI
    /// can: the committed one has no CA key loaded.
    pub fn ocsp_response(&self, kind: OcspKind) -> Result<Vec<u8>, Error> {
        self.ocsp_response_at(kind, system_now()?)
    }

    /// [`Pki::ocsp_response`] as if made at `now`, in seconds since the epoch (for a client
    /// on a virtual clock).
    pub fn ocsp_response_at(&self, kind: OcspKind, now: u64) -> Result<Vec<u8>, Error> {
        let ca = self.ca.as_ref().ok_or_else(|| {
            gen_error("only a generated PKI (Pki::generate) makes OCSP responses")
        })?;
        let server = self
            .server
            .chain()
            .first()
            .ok_or_else(|| gen_error("the server chain is empty"))?;
        ocsp::response(ca, server, kind, now, &SystemRandom::new())
    }
}

/// A CA that signs certificates and OCSP responses.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: Vec<u8>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("der_len", &self.der.len())
            .field("key", &format_args!("<redacted>"))
            .finish()
    }
}

impl Pki {
    /// The server's identity sending its chain: its certificate, then the CA (the first trust
    /// anchor), as a server with a DANE-TA(2) record must (RFC 7672 §3.2.2).
    pub fn server_with_ca(&self) -> Result<Identity, Error> {
        let mut chain = self.server.chain().to_vec();
        chain.extend(self.roots.first().cloned());
        Identity::from_der(
            chain,
            self.server.key_der().to_vec(),
            self.server.key_format(),
        )
    }
}

/// The TLSA record `usage selector matching` for the certificate `cert` (DER): selector 1 takes
/// its SubjectPublicKeyInfo (read with RustCrypto's `x509-cert`), matching 1 and 2 its
/// SHA-256 and SHA-512.
pub fn tlsa_record(
    usage: u8,
    selector: u8,
    matching: u8,
    cert: &[u8],
) -> Result<TlsaRecord, Error> {
    use der::{Decode, Encode};
    let selected = match selector {
        0 => cert.to_vec(),
        _ => x509_cert::Certificate::from_der(cert)
            .and_then(|c| c.tbs_certificate.subject_public_key_info.to_der())
            .map_err(|e| Error::Config(format!("certificate for a TLSA record: {e}")))?,
    };
    let data = match matching {
        0 => selected,
        1 => digest::digest(&digest::SHA256, &selected).as_ref().to_vec(),
        _ => digest::digest(&digest::SHA512, &selected).as_ref().to_vec(),
    };
    Ok(TlsaRecord::new(usage, selector, matching, data))
}

fn system_now() -> Result<u64, Error> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| gen_error(format!("the system clock is before 1970: {e}")))?
        .as_secs())
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

/// OCSP responses (RFC 6960) for the generated server certificate, built with `x509-ocsp`.
mod ocsp {
    use super::{gen_error, params, rcgen_error, Ca, OcspKind, DAY};
    use const_oid::db::rfc5912::{ECDSA_WITH_SHA_256, ID_SHA_1, ID_SHA_256};
    use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
    use der::{Decode, Encode};
    use rcgen::{
        BasicConstraints, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SigningKey,
        PKCS_ECDSA_P256_SHA256,
    };
    use ring::digest;
    use ring::rand::SystemRandom;
    use std::time::Duration;
    use tlsresume_core::Error;
    use x509_cert::ext::pkix::CrlReason;
    use x509_cert::spki::AlgorithmIdentifierOwned;
    use x509_cert::Certificate;
    use x509_ocsp::{
        BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspResponse, ResponderId,
        ResponseData, RevokedInfo, SingleResponse, Version,
    };

    fn der_error(what: &str) -> impl Fn(der::Error) -> Error + '_ {
        move |e| gen_error(format!("{what}: {e}"))
    }

    fn time(secs: u64) -> Result<OcspGeneralizedTime, Error> {
        GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
            .map(OcspGeneralizedTime)
            .map_err(der_error("a time"))
    }

    fn octets(bytes: &[u8]) -> Result<OctetString, Error> {
        OctetString::new(bytes).map_err(der_error("an OCTET STRING"))
    }

    fn key_bits(cert: &Certificate) -> &[u8] {
        cert.tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
    }

    fn sha1(data: &[u8]) -> Vec<u8> {
        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data)
            .as_ref()
            .to_vec()
    }

    /// Who signs a response: its key, its certificate (carried in the response).
    struct Signer {
        key: KeyPair,
        cert: Vec<u8>,
    }

    /// A certificate and key for a signer other than the CA: another CA (`issuer` None), or
    /// a responder the CA issues, with or without the OCSP-signing extended key usage.
    fn other_signer(
        ca: Option<&Ca>,
        ocsp_signing: bool,
        now: u64,
        rng: &SystemRandom,
    ) -> Result<Signer, Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
        let (from, to) = (now.saturating_sub(DAY), now + 30 * DAY);
        let cert = match ca {
            None => {
                let mut p = params(rng, "tlsresume impostor CA", from, to)?;
                p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                p.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                p.self_signed(&key).map_err(rcgen_error)?
            }
            Some(ca) => {
                let mut p = params(rng, "tlsresume OCSP responder", from, to)?;
                p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                if ocsp_signing {
                    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
                }
                p.use_authority_key_identifier_extension = true;
                p.signed_by(&key, &ca.issuer).map_err(rcgen_error)?
            }
        };
        Ok(Signer {
            cert: cert.der().to_vec(),
            key,
        })
    }

    /// An OCSP response of `kind` for `cert` (issued by `ca`), produced at `now`.
    pub(crate) fn response(
        ca: &Ca,
        cert: &[u8],
        kind: OcspKind,
        now: u64,
        rng: &SystemRandom,
    ) -> Result<Vec<u8>, Error> {
        if kind == OcspKind::TryLater {
            return OcspResponse::try_later()
                .to_der()
                .map_err(der_error("the response"));
        }
        let ca_cert = Certificate::from_der(&ca.der).map_err(der_error("the CA certificate"))?;
        let leaf = Certificate::from_der(cert).map_err(der_error("the server certificate"))?;
        if leaf.tbs_certificate.issuer != ca_cert.tbs_certificate.subject {
            return Err(gen_error("the server certificate's issuer is not the CA"));
        }

        let (hash_oid, hash) = match kind {
            OcspKind::GoodSha256 => (ID_SHA_256, &digest::SHA256),
            _ => (ID_SHA_1, &digest::SHA1_FOR_LEGACY_USE_ONLY),
        };
        let ca_name = ca_cert
            .tbs_certificate
            .subject
            .to_der()
            .map_err(der_error("the CA name"))?;
        let cert_id = CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: hash_oid,
                parameters: Some(Null.into()),
            },
            issuer_name_hash: octets(digest::digest(hash, &ca_name).as_ref())?,
            issuer_key_hash: octets(digest::digest(hash, key_bits(&ca_cert)).as_ref())?,
            serial_number: leaf.tbs_certificate.serial_number.clone(),
        };
        let cert_status = match kind {
            OcspKind::Revoked => CertStatus::Revoked(RevokedInfo {
                revocation_time: time(now.saturating_sub(DAY))?,
                revocation_reason: Some(CrlReason::KeyCompromise),
            }),
            OcspKind::Unknown => CertStatus::unknown(),
            _ => CertStatus::good(),
        };
        let (this_update, next_update) = match kind {
            OcspKind::Expired => (now.saturating_sub(2 * DAY), now.saturating_sub(DAY)),
            OcspKind::NotYetValid => (now + DAY, now + 30 * DAY),
            _ => (now.saturating_sub(3600), now + 30 * DAY),
        };
        let single = SingleResponse {
            cert_id,
            cert_status,
            this_update: time(this_update)?,
            next_update: Some(time(next_update)?),
            single_extensions: None,
        };

        let delegate;
        let (signer_key, signer_cert) = match kind {
            OcspKind::WrongIssuer => {
                delegate = other_signer(None, false, now, rng)?;
                (&delegate.key, delegate.cert.as_slice())
            }
            OcspKind::Delegated | OcspKind::DelegatedWithoutEku => {
                let eku = kind == OcspKind::Delegated;
                delegate = other_signer(Some(ca), eku, now, rng)?;
                (&delegate.key, delegate.cert.as_slice())
            }
            _ => (ca.issuer.key(), ca.der.as_slice()),
        };
        let signer = Certificate::from_der(signer_cert).map_err(der_error("the signer"))?;
        let data = |produced_at: u64| -> Result<ResponseData, Error> {
            Ok(ResponseData {
                version: Version::V1,
                responder_id: ResponderId::ByKey(octets(&sha1(key_bits(&signer)))?),
                produced_at: time(produced_at)?,
                responses: vec![single.clone()],
                response_extensions: None,
            })
        };
        let tbs = data(now)?;
        // A bad signature is a real one over other data: the same response a second later.
        let signed = match kind {
            OcspKind::BadSignature => data(now + 1)?,
            _ => tbs.clone(),
        };
        let signature = signer_key
            .sign(&signed.to_der().map_err(der_error("the response data"))?)
            .map_err(rcgen_error)?;
        let basic = BasicOcspResponse {
            tbs_response_data: tbs,
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA_256,
                parameters: None,
            },
            signature: BitString::from_bytes(&signature).map_err(der_error("the signature"))?,
            // OpenSSL looks for the signer only among the peer's chain and the response's
            // certificates, never in the trust store: the signer rides along.
            certs: Some(vec![signer]),
        };
        OcspResponse::successful(basic)
            .and_then(|r| r.to_der())
            .map_err(der_error("the response"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};
    use x509_cert::Certificate;
    use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus, ResponderId};

    fn cert(der: &[u8]) -> Certificate {
        Certificate::from_der(der).expect("certificate")
    }

    fn basic(response: &[u8]) -> BasicOcspResponse {
        let response = OcspResponse::from_der(response).expect("OCSP response");
        assert_eq!(response.response_status, OcspResponseStatus::Successful);
        let bytes = response.response_bytes.expect("body");
        BasicOcspResponse::from_der(bytes.response.as_bytes()).expect("basic response")
    }

    fn key_bits(c: &Certificate) -> Vec<u8> {
        c.tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
            .to_vec()
    }

    fn sha1(d: &[u8]) -> Vec<u8> {
        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, d)
            .as_ref()
            .to_vec()
    }

    fn secs(t: &x509_ocsp::OcspGeneralizedTime) -> u64 {
        t.0.to_unix_duration().as_secs()
    }

    #[test]
    fn generated_pki_hangs_together() {
        let now = 1_760_000_000;
        let pki = Pki::generate_at(now).expect("generate");
        assert_eq!(pki.roots.len(), 1);
        let ca = cert(&pki.roots[0]);
        let server = cert(&pki.server.chain()[0]);
        let untrusted = cert(&pki.untrusted.chain()[0]);
        assert_eq!(ca.tbs_certificate.issuer, ca.tbs_certificate.subject);
        assert_eq!(server.tbs_certificate.issuer, ca.tbs_certificate.subject);
        assert_eq!(
            untrusted.tbs_certificate.issuer,
            untrusted.tbs_certificate.subject
        );
        assert_ne!(key_bits(&untrusted), key_bits(&server));
        assert_eq!(server.tbs_certificate.serial_number.as_bytes().len(), 16);
        assert_eq!(pki.server.key_format(), KeyFormat::Pkcs8);

        // The OCSP response names the CA's name and key and the server certificate's serial,
        // and carries the promised times.
        let basic = basic(&pki.ocsp);
        let data = &basic.tbs_response_data;
        assert_eq!(
            data.responder_id,
            ResponderId::ByKey(der::asn1::OctetString::new(sha1(&key_bits(&ca))).expect("hash"))
        );
        assert_eq!(secs(&data.produced_at), now);
        assert_eq!(data.responses.len(), 1);
        let single = &data.responses[0];
        let id = &single.cert_id;
        assert_eq!(id.hash_algorithm.oid, const_oid::db::rfc5912::ID_SHA_1);
        let ca_name = ca.tbs_certificate.subject.to_der().expect("name");
        assert_eq!(id.issuer_name_hash.as_bytes(), sha1(&ca_name));
        assert_eq!(id.issuer_key_hash.as_bytes(), sha1(&key_bits(&ca)));
        assert_eq!(id.serial_number, server.tbs_certificate.serial_number);
        assert_eq!(single.cert_status, CertStatus::good());
        assert_eq!(secs(&single.this_update), now - 3600);
        assert_eq!(single.next_update.as_ref().map(secs), Some(now + 30 * DAY));
        assert_eq!(basic.certs, Some(vec![ca]));
    }

    #[test]
    fn every_kind_is_made_as_described() {
        let now = 1_760_000_000;
        let pki = Pki::generate_at(now).expect("generate");
        let ca = cert(&pki.roots[0]);
        for kind in OcspKind::ALL {
            let der = pki.ocsp_response_at(kind, now).expect("response");
            if kind == OcspKind::TryLater {
                let response = OcspResponse::from_der(&der).expect("decodes");
                assert_eq!(response.response_status, OcspResponseStatus::TryLater);
                assert_eq!(response.response_bytes, None);
                continue;
            }
            let basic = basic(&der);
            let single = &basic.tbs_response_data.responses[0];
            let signer = &basic.certs.as_ref().expect("certs")[0];
            let status = match single.cert_status {
                CertStatus::Good(_) => "good",
                CertStatus::Revoked(_) => "revoked",
                CertStatus::Unknown(_) => "unknown",
            };
            let expected_status = match kind {
                OcspKind::Revoked => "revoked",
                OcspKind::Unknown => "unknown",
                _ => "good",
            };
            assert_eq!(status, expected_status, "{kind}");
            let this_update = secs(&single.this_update);
            let next_update = single.next_update.as_ref().map(secs).expect("next");
            match kind {
                OcspKind::Expired => assert!(next_update < now, "{kind}"),
                OcspKind::NotYetValid => assert!(this_update > now + 300, "{kind}"),
                _ => assert!(this_update <= now && next_update > now, "{kind}"),
            }
            let hash = single.cert_id.hash_algorithm.oid;
            assert_eq!(
                hash == const_oid::db::rfc5912::ID_SHA_256,
                kind == OcspKind::GoodSha256,
                "{kind}"
            );
            let by_ca = *signer == ca;
            let by_ca_issued = signer.tbs_certificate.issuer == ca.tbs_certificate.subject;
            match kind {
                OcspKind::WrongIssuer => assert!(!by_ca && !by_ca_issued, "{kind}"),
                OcspKind::Delegated | OcspKind::DelegatedWithoutEku => {
                    assert!(!by_ca && by_ca_issued, "{kind}")
                }
                _ => assert!(by_ca, "{kind}"),
            }
        }
        assert!(Pki::committed()
            .expect("committed")
            .ocsp_response(OcspKind::Good)
            .is_err());
    }

    #[test]
    fn debug_hides_the_ca_key() {
        let pki = Pki::generate().expect("generate");
        let text = format!("{pki:?}");
        let key = pki.ca.as_ref().expect("ca").issuer.key().serialize_der();
        assert!(text.contains("Ca { der_len"), "{text}");
        assert!(!text.contains(&format!("{key:?}")), "{text}");
        assert!(!text.contains(&format!("{:?}", &key[key.len() - 16..])[1..]));
    }
}
