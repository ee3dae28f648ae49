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
use tlsresume_core::contract::ClientHandshake;

use crate::client::During;
use crate::info::lock;
use tlsresume_core::dane::DanePlan;
use tlsresume_core::{DaneAuthority, OcspStatus, Verification, VerifyMode};

/// What the verifier saw on one connection.
#[derive(Debug, Default)]
pub(crate) struct VerifyRecord {
    /// `None` when the verifier was not called (a resumed handshake).
    pub(crate) verification: Option<Verification>,
    /// The OCSP status of the staple, when the verifier was called.
    pub(crate) ocsp: Option<OcspStatus>,
    /// Why the staple was rejected, when it was.
    pub(crate) ocsp_detail: Option<String>,
    /// What the connection's TLSA records ask (set before the handshake).
    pub(crate) dane_plan: DanePlan,
    /// The DANE verdict, when the verifier checked by DANE: the record that matched, or
    /// `None` when none did.
    pub(crate) dane: Option<Option<DaneAuthority>>,
    /// The server asked for a certificate and this client had none.
    pub(crate) asked_without_certificate: bool,
}

/// Gives what the verifier saw on this connection to its handshake; whether the handshake was
/// resumed (the verifier was not called).
pub(crate) fn record_into(verify: &Mutex<VerifyRecord>, handshake: &mut ClientHandshake) -> bool {
    let record = lock(verify);
    if let Some(verification) = record.verification {
        handshake.saw_verification(verification);
    }
    if let Some(ocsp) = record.ocsp {
        handshake.saw_ocsp(ocsp, record.ocsp_detail.clone());
    }
    if let Some(dane) = &record.dane {
        handshake.saw_dane(dane.clone());
    }
    if record.asked_without_certificate {
        handshake.asked_without_certificate();
    }
    record.verification.is_none()
}

scoped_tls::scoped_thread_local! {
    /// The record of the client connection whose handshake this thread is driving now: lent
    /// by [`recording`] around each step of rustls's state machine, and only for its length
    /// (a reference: no count of the record is written per step).
    static CURRENT: During
}

/// Runs `step` (one synchronous step of a client handshake's I/O, `Tls::handshake`) with the
/// verifier writing what it sees to `record`.
///
/// rustls only resumes a session under the very verifier (the same `Arc`) that made it
/// (`compatible_config` compares the pointers), so every connection of a client shares one
/// verifier, and the verifier cannot hold a connection's record itself. rustls calls it only
/// from inside a handshake step, on the thread running it, so the record of the connection
/// being stepped is lent for the step's length (and what was lent before is back after it,
/// unwinding included): an async handshake that moves between threads lends it again on each
/// step, and no step of one connection runs inside another's.
pub(crate) fn recording<T>(record: &During, step: impl FnOnce() -> T) -> T {
    CURRENT.set(record, step)
}

/// `f` of the verifier's record of the connection being stepped ([`recording`]); `None`
/// outside a step.
fn with_current<T>(f: impl FnOnce(&Mutex<VerifyRecord>) -> T) -> Option<T> {
    CURRENT
        .is_set()
        .then(|| CURRENT.with(|during| f(&during.verify)))
}

/// The certificate resolver of a client that has no certificate: rustls calls it when the
/// server asks for one; it records that the server asked and gives none.
#[derive(Debug)]
pub(crate) struct NoClientCert;

impl rustls::client::ResolvesClientCert for NoClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        with_current(|record| {
            lock(record).asked_without_certificate = true;
        });
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// The client's one verifier: rustls's WebPKI checks, the OCSP staple check, and a record of
/// both for the connection being stepped (see [`recording`]).
#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    pub(crate) inner: Arc<WebPkiServerVerifier>,
    pub(crate) mode: VerifyMode,
    pub(crate) roots: Arc<Vec<Vec<u8>>>,
    pub(crate) request_ocsp: bool,
}

impl RecordingVerifier {
    /// A connection with TLSA records: DANE only (or, when none is usable, no check at all),
    /// never the WebPKI. The verdict is recorded and the handshake goes on: the connection's
    /// handshake fails it after, with the error that says no record matched.
    fn by_dane(
        &self,
        plan: &DanePlan,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> ServerCertVerified {
        let dane = plan
            .check()
            .map(|check| crate::dane::authenticate(check, end_entity, intermediates, now));
        let verification = match &dane {
            Some(Some(_)) => Verification::Verified,
            Some(None) => Verification::Failed,
            None => Verification::NotChecked,
        };
        let (ocsp, ocsp_detail) = if !self.request_ocsp {
            (OcspStatus::NotRequested, None)
        } else if ocsp_response.is_empty() {
            (OcspStatus::NoResponse, None)
        } else if verification == Verification::Verified {
            crate::ocsp::check(ocsp_response, end_entity, intermediates, &self.roots, now)
        } else {
            (OcspStatus::NotVerified, None)
        };
        with_current(|record| {
            let mut record = lock(record);
            record.ocsp = Some(ocsp);
            record.ocsp_detail = ocsp_detail;
            record.verification = Some(verification);
            record.dane = dane;
        });
        ServerCertVerified::assertion()
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
        let plan = with_current(|record| {
            let record = lock(record);
            record.dane_plan.clone()
        })
        .unwrap_or_default();
        if plan != DanePlan::Off {
            return Ok(self.by_dane(&plan, end_entity, intermediates, ocsp_response, now));
        }
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
        debug_assert!(
            CURRENT.is_set(),
            "the verifier ran outside a recorded handshake step"
        );
        with_current(|record| {
            let mut record = lock(record);
            record.ocsp = Some(ocsp);
            record.ocsp_detail = ocsp_detail;
            record.verification = Some(verification);
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
