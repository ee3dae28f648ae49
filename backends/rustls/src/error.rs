//! rustls errors as tlsresume errors.

use tlsresume_core::Error;

/// A rustls error, named for the backend.
pub(crate) fn tls(err: rustls::Error) -> Error {
    Error::tls("rustls", err.to_string())
}

/// An I/O error during the handshake: a TLS alert or a transport failure.
pub(crate) fn handshake(err: std::io::Error) -> Error {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls_err) => Error::tls("rustls", format!("handshake failed: {tls_err}")),
        None => Error::tls("rustls", format!("handshake failed: {err}")),
    }
}
