//! OCSP staple checking for the rustls client (rustls passes the staple through but does not
//! check it).

use rustls::pki_types::{CertificateDer, UnixTime};
use tlsresume_core::OcspStatus;

/// Checks a stapled OCSP response for `end_entity`.
///
/// Not yet implemented for rustls: a staple is reported as received but not verified
/// (Exim's value 2).
pub(crate) fn check(
    _response: &[u8],
    _end_entity: &CertificateDer<'_>,
    _intermediates: &[CertificateDer<'_>],
    _roots: &[Vec<u8>],
    _now: UnixTime,
) -> OcspStatus {
    OcspStatus::NotVerified
}
