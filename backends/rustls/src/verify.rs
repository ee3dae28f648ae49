//! The client's certificate verifier: rustls's WebPKI verifier, recording what it saw so the
//! connection can report it, and letting a failure through in `VerifyMode::Try`.
//!
//! rustls has no OCSP verification of its own; the staple it hands the verifier is checked by
//! the `ocsp` module.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tlsresume_core::{OcspStatus, Verification, VerifyMode};

/// What the verifier saw on one connection.
#[derive(Debug, Default)]
pub(crate) struct VerifyRecord {
    /// `None` when the verifier was not called (a resumed handshake).
    pub(crate) verification: Option<Verification>,
    /// The OCSP status of the staple, when the verifier was called.
    pub(crate) ocsp: Option<OcspStatus>,
    /// Why the staple was rejected, when it was.
    pub(crate) ocsp_detail: Option<String>,
}

/// The record a verifier writes to: re-pointed to the connection whose handshake uses the
/// verifier.
///
/// rustls only resumes a session under the very verifier (the same `Arc`) that made it
/// (`compatible_config` compares the pointers), so the verifier cannot simply be made per
/// connection: a connection that offers a stored session runs under the verifier kept with
/// that session, pointed at its own record. A session is lent to one handshake at a time (see
/// the client module), so a verifier never serves two handshakes at once, whatever thread or
/// task drives them.
pub(crate) type RecordSlot = Mutex<Arc<Mutex<VerifyRecord>>>;

#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    pub(crate) inner: Arc<WebPkiServerVerifier>,
    pub(crate) mode: VerifyMode,
    pub(crate) roots: Arc<Vec<Vec<u8>>>,
    pub(crate) request_ocsp: bool,
    /// The record of the connection this verifier serves now.
    pub(crate) record: RecordSlot,
}

impl RecordingVerifier {
    /// A new verifier with the same checks, writing to `record`.
    pub(crate) fn with_record(&self, record: Arc<Mutex<VerifyRecord>>) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            mode: self.mode,
            roots: Arc::clone(&self.roots),
            request_ocsp: self.request_ocsp,
            record: Mutex::new(record),
        }
    }

    /// Points the verifier at another connection's record.
    pub(crate) fn point_at(&self, record: Arc<Mutex<VerifyRecord>>) {
        *self.record.lock().unwrap_or_else(|p| p.into_inner()) = record;
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let (ocsp, ocsp_detail) = if !self.request_ocsp {
            (OcspStatus::NotRequested, None)
        } else if ocsp_response.is_empty() {
            (OcspStatus::NoResponse, None)
        } else if result.is_err() {
            // The staple is only as good as the chain that vouches for its issuer.
            let why = "the certificate chain did not verify".to_owned();
            (OcspStatus::Failed, Some(why))
        } else {
            crate::ocsp::check(ocsp_response, end_entity, intermediates, &self.roots, now)
        };
        let verification = if result.is_ok() {
            Verification::Verified
        } else {
            Verification::Failed
        };
        let record = Arc::clone(&self.record.lock().unwrap_or_else(|p| p.into_inner()));
        {
            let mut record = record.lock().unwrap_or_else(|p| p.into_inner());
            record.ocsp = Some(ocsp);
            record.ocsp_detail = ocsp_detail;
            record.verification = Some(verification);
        }
        match result {
            Ok(ok) => Ok(ok),
            Err(e) => match self.mode {
                VerifyMode::Try => Ok(ServerCertVerified::assertion()),
                VerifyMode::Require => Err(e),
            },
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
