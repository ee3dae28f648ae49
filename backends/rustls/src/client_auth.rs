//! The server's client-certificate verifier: rustls's WebPKI client verifier, recording what it
//! saw in the connection's record, letting a failure through for hosts that are only asked
//! (`ClientAuth::Try`), and checking the chain rustls keeps in a resumed session.

use std::sync::{Arc, Mutex};

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use tlsresume_core::contract::ServerHandshake;
use tlsresume_core::{Error, SharedClock, Verification};

use crate::config::provider;
use crate::info::lock;
use crate::tickets::TicketRecord;

scoped_tls::scoped_thread_local! {
    /// The record of the server connection whose handshake this thread is driving now (see
    /// [`recording`]): a reference, lent for the step.
    static CURRENT: Mutex<TicketRecord>
}

/// Runs `step` (one synchronous step of a server handshake) with the verifier writing what it
/// sees to `record`: the verifier belongs to the configuration, shared by every connection,
/// and rustls calls it only from inside the step (as on the client, `verify::recording`).
pub(crate) fn recording<T>(record: &Mutex<TicketRecord>, step: impl FnOnce() -> T) -> T {
    CURRENT.set(record, step)
}

/// `f` of the record of the server connection being stepped ([`recording`]); `None` outside a
/// step (rustls calls the configuration's ticketer, certificate resolver and verifier only
/// from inside one).
pub(crate) fn with_current<T>(f: impl FnOnce(&mut TicketRecord) -> T) -> Option<T> {
    CURRENT
        .is_set()
        .then(|| CURRENT.with(|record| f(&mut lock(record))))
}

/// The server's verifier of client certificates, for one [`ClientAuth`](tlsresume_core::ClientAuth)
/// mode: `require` fails the handshake without a certificate that verifies.
#[derive(Debug)]
pub(crate) struct ClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    require: bool,
    clock: SharedClock,
}

impl ClientVerifier {
    /// rustls's WebPKI verifier over the client CAs (`roots`, DER).
    pub(crate) fn new(roots: &[Vec<u8>], require: bool, clock: SharedClock) -> Result<Self, Error> {
        let mut store = RootCertStore::empty();
        for (i, der) in roots.iter().enumerate() {
            store
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| Error::setting("client_roots", format!("client CA {i}: {e}")))?;
        }
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| Error::setting("client_roots", e.to_string()))?;
        Ok(Self {
            inner,
            require,
            clock,
        })
    }

    /// After a resumed handshake: rustls keeps the client's chain in the ticket (and gives it
    /// back as the peer's certificates) but not whether it verified, so the kept chain is
    /// checked again by the same rustls verifier, at the clock's time. What rustls keeps is
    /// what is reported, on every policy (rustls kept an unverified chain only for a host that
    /// was only asked).
    pub(crate) fn check_kept(
        &self,
        conn: &rustls::ServerConnection,
        handshake: &mut ServerHandshake,
    ) {
        let Some((leaf, rest)) = conn.peer_certificates().and_then(<[_]>::split_first) else {
            return;
        };
        let now = UnixTime::since_unix_epoch(self.clock.now().since_epoch());
        handshake.client_certificate_seen(verdict(
            self.inner.verify_client_cert(leaf, rest, now).is_ok(),
        ));
    }
}

fn verdict(ok: bool) -> Verification {
    if ok {
        Verification::Verified
    } else {
        Verification::Failed
    }
}

/// Whether a failed server handshake's rustls error says the client sent no certificate.
pub(crate) fn no_certificate(error: &Error) -> bool {
    let Error::Tls(tls) = error else {
        return false;
    };
    std::error::Error::source(tls)
        .and_then(|s| s.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::NoCertificatesPresented))
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.require
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let result = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        with_current(|record| {
            record
                .handshake
                .client_certificate_seen(verdict(result.is_ok()))
        });
        match result {
            Err(_) if !self.require => Ok(ClientCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
