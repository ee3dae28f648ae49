//! rustls errors as tlsresume errors: the kind (certificate, alert, protocol) from rustls's
//! own error, which stays reachable as the source.

use rustls::Error as RustlsError;
use tlsresume_core::{Error, TlsError, TlsFailure};

const NAME: &str = "rustls";

fn failure_of(err: &RustlsError) -> TlsFailure {
    match err {
        RustlsError::InvalidCertificate(_) => TlsFailure::Certificate,
        RustlsError::AlertReceived(_) => TlsFailure::Alert,
        _ => TlsFailure::Protocol,
    }
}

/// A rustls error, named for the backend.
#[cold]
pub(crate) fn tls(err: RustlsError) -> Error {
    let failure = failure_of(&err);
    Error::Tls(TlsError::new(NAME, failure, err.to_string()).with_source(err))
}

/// An I/O error during the handshake: a TLS failure (rustls wraps its errors in I/O errors of
/// kind `InvalidData`) or a transport failure, which stays [`Error::Io`] (timeouts included).
#[cold]
pub(crate) fn handshake(err: std::io::Error) -> Error {
    let tls_err = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<RustlsError>())
        .cloned();
    match tls_err {
        Some(tls_err) => handshake_failed(tls_err),
        None => Error::Io(err),
    }
}

/// rustls refused what the peer sent during the handshake (or the peer's alert).
#[cold]
pub(crate) fn handshake_failed(err: RustlsError) -> Error {
    let failure = failure_of(&err);
    let message = format!("handshake failed: {err}");
    Error::Tls(TlsError::new(NAME, failure, message).with_source(err))
}

/// rustls panicked inside a handshake step (a rustls bug met on a peer's bytes): the connection
/// is dropped and the handshake fails, the process goes on.
#[cold]
pub(crate) fn panicked(payload: &(dyn std::any::Any + Send)) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    Error::Tls(TlsError::new(
        NAME,
        TlsFailure::Protocol,
        format!("handshake failed: rustls panicked ({what}); the connection was dropped"),
    ))
}
