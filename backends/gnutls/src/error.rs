//! GnuTLS errors → [`tlsresume_core::Error`].

use std::io;

use tlsresume_core::Error;

use crate::ffi::GnutlsError;

/// The backend name in error messages.
pub(crate) const NAME: &str = "gnutls";

impl From<GnutlsError> for Error {
    /// GnuTLS's own message (`gnutls_strerror`) and code.
    fn from(err: GnutlsError) -> Self {
        Error::tls(NAME, err.to_string())
    }
}

/// An I/O error from a GnuTLS call: a GnuTLS code becomes [`Error::Tls`], a transport error
/// stays [`Error::Io`].
pub(crate) fn from_io(err: io::Error) -> Error {
    match err.get_ref().and_then(|e| e.downcast_ref::<GnutlsError>()) {
        Some(code) => Error::from(*code),
        None => Error::Io(err),
    }
}

/// A handshake that failed for a reason of ours (verification, OCSP).
pub(crate) fn handshake(message: impl Into<String>) -> Error {
    Error::tls(NAME, message)
}
