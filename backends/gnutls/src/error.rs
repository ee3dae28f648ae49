//! GnuTLS errors → [`tlsresume_core::Error`].

use std::io;

use tlsresume_core::{Error, TlsError, TlsFailure};

use crate::callbacks::CallbackPanicked;
use crate::ffi::GnutlsError;

/// The backend name in error messages.
pub(crate) const NAME: &str = "gnutls";

impl From<GnutlsError> for Error {
    /// GnuTLS's own message (`gnutls_strerror`) and code.
    #[cold]
    fn from(err: GnutlsError) -> Self {
        let failure = match err.code() {
            GnutlsError::FATAL_ALERT_RECEIVED => TlsFailure::Alert,
            GnutlsError::CERTIFICATE_ERROR | GnutlsError::CERTIFICATE_VERIFICATION_ERROR => {
                TlsFailure::Certificate
            }
            _ => TlsFailure::Protocol,
        };
        Error::Tls(TlsError::new(NAME, failure, err.to_string()).with_source(err))
    }
}

/// An I/O error from a GnuTLS call: a GnuTLS code, or a panic caught in one of this crate's
/// callbacks (which failed the call), becomes [`Error::Tls`]; a transport error stays
/// [`Error::Io`].
///
/// The transport blocking past its timeout (`GNUTLS_E_AGAIN` from our push/pull) and the peer
/// closing without close_notify (`GNUTLS_E_PREMATURE_TERMINATION`) are I/O, as they are on the
/// other backends.
#[cold]
pub(crate) fn from_io(err: io::Error) -> Error {
    if matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::UnexpectedEof
    ) {
        return Error::Io(err);
    }
    if let Some(panicked) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<CallbackPanicked>())
    {
        return Error::Tls(TlsError::new(
            NAME,
            TlsFailure::Protocol,
            panicked.to_string(),
        ));
    }
    match err.get_ref().and_then(|e| e.downcast_ref::<GnutlsError>()) {
        Some(code) => Error::from(*code),
        None => Error::Io(err),
    }
}
