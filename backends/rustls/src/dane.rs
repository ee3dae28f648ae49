//! DANE for SMTP (RFC 7672 §3) over rustls, which has none of its own: which usable TLSA
//! record, if any, authenticates the chain the server sent.
//!
//! - DANE-EE(3) matches the leaf (its whole DER or its SubjectPublicKeyInfo, exactly or by
//!   digest); its names and dates are not checked (§3.1.1).
//! - DANE-TA(2) matches a certificate the server sent above the leaf (depth 1 or more); that
//!   certificate is then the one trust anchor the chain is verified against (signatures,
//!   dates, key usage, by rustls's WebPKI code), and the leaf must carry one of the reference
//!   names: the TLSA base domain (the server name) or the others the caller gave (§3.2.2).
//!   The anchor's own dates are not checked, as for any trust anchor.
//!
//! Records are tried in the order given; the first that authenticates is reported.

use der::{Decode, Encode};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::RootCertStore;
use tlsresume_core::dane::{DaneCheck, TlsaSelector, TlsaUsage};
use tlsresume_core::{DaneAuthority, TlsaRecord};

/// The record that authenticates `leaf` (with the `intermediates` the server sent after it),
/// or `None` when none does.
pub(crate) fn authenticate(
    check: &DaneCheck,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
) -> Option<DaneAuthority> {
    check.records.iter().find_map(|record| match record.usage {
        TlsaUsage::DaneEe => matches(record, leaf).then(|| DaneAuthority {
            record: record.clone(),
            depth: Some(0),
        }),
        TlsaUsage::DaneTa => intermediates.iter().enumerate().find_map(|(i, cert)| {
            (matches(record, cert) && anchored(check, leaf, intermediates, cert, now)).then(|| {
                DaneAuthority {
                    record: record.clone(),
                    depth: u8::try_from(i + 1).ok(),
                }
            })
        }),
        _ => None,
    })
}

/// Whether `record` describes `cert`.
fn matches(record: &TlsaRecord, cert: &CertificateDer<'_>) -> bool {
    match record.selector {
        TlsaSelector::Certificate => record.matches_selected(cert.as_ref()),
        TlsaSelector::PublicKey => spki(cert).is_some_and(|spki| record.matches_selected(&spki)),
        TlsaSelector::Other(_) => false,
    }
}

/// A certificate's SubjectPublicKeyInfo, DER.
fn spki(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    let cert = x509_cert::Certificate::from_der(cert.as_ref()).ok()?;
    cert.tbs_certificate.subject_public_key_info.to_der().ok()
}

/// Whether the chain verifies up to `anchor` (a certificate the server sent) and the leaf
/// carries one of the reference names.
fn anchored(
    check: &DaneCheck,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    anchor: &CertificateDer<'_>,
    now: UnixTime,
) -> bool {
    let mut roots = RootCertStore::empty();
    if roots.add(anchor.clone().into_owned()).is_err() {
        return false;
    }
    let Ok(parsed) = ParsedCertificate::try_from(leaf) else {
        return false;
    };
    let algorithms = crate::config::provider()
        .signature_verification_algorithms
        .all;
    if verify_server_cert_signed_by_trust_anchor(&parsed, &roots, intermediates, now, algorithms)
        .is_err()
    {
        return false;
    }
    check.names.iter().any(|name| {
        ServerName::try_from(name.as_str())
            .is_ok_and(|name| verify_server_name(&parsed, &name).is_ok())
    })
}
