//! The client's certificate verifier: rustls's WebPKI verifier, recording what it saw so the
//! connection can report it, and letting a failure through in `VerifyMode::Try`.
//!
//! rustls has no OCSP verification of its own; the staple it hands the verifier is checked by
//! the `ocsp` module.

use std::cell::RefCell;
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

thread_local! {
    /// The record of the connection whose handshake runs on this thread.
    static CURRENT: RefCell<Option<Arc<Mutex<VerifyRecord>>>> = const { RefCell::new(None) };
}

/// Points the verifier at one connection's record while its handshake runs on this thread.
///
/// rustls only resumes a session under the very verifier (the same `Arc`) that made it, so
/// a `Client` has one verifier for all its connections; handshakes are driven synchronously
/// on the caller's thread, so a thread-local tells the verifier whose handshake it is checking.
pub(crate) struct RecordScope(());

impl RecordScope {
    pub(crate) fn enter(record: Arc<Mutex<VerifyRecord>>) -> Self {
        CURRENT.with(|c| *c.borrow_mut() = Some(record));
        Self(())
    }
}

impl Drop for RecordScope {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    pub(crate) inner: Arc<WebPkiServerVerifier>,
    pub(crate) mode: VerifyMode,
    pub(crate) roots: Arc<Vec<Vec<u8>>>,
    pub(crate) request_ocsp: bool,
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
        CURRENT.with(|current| {
            if let Some(record) = current.borrow().as_ref() {
                let mut record = record.lock().unwrap_or_else(|p| p.into_inner());
                record.ocsp = Some(ocsp);
                record.ocsp_detail = ocsp_detail;
                record.verification = Some(verification);
            }
        });
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
