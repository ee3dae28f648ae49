//! OpenSSL errors → [`tlsresume_core::Error`].

use std::io;

use openssl::error::ErrorStack;
use openssl::ssl::{self, HandshakeError};
use tlsresume_core::{Error, TlsError, TlsFailure};

/// The backend name in [`Error::Tls`].
pub(crate) const NAME: &str = "openssl";

/// A TLS error with our backend name.
#[cold]
pub(crate) fn tls(message: impl Into<String>) -> Error {
    Error::tls(NAME, message)
}

/// An error stack from a configuration call, with what was being done.
#[cold]
pub(crate) fn config(what: &str, stack: ErrorStack) -> Error {
    Error::Config(format!("{what}: {stack}"))
}

/// An error stack from a connection-time call.
#[cold]
pub(crate) fn stack(what: &str, stack: ErrorStack) -> Error {
    tls(format!("{what}: {stack}"))
}

/// A handshake failure: an I/O error stays [`Error::Io`]; a TLS failure says why, with the
/// certificate verification result when that is what failed.
#[cold]
pub(crate) fn handshake<S>(err: HandshakeError<S>) -> Error {
    match err {
        HandshakeError::SetupFailure(s) => stack("handshake setup", s),
        HandshakeError::WouldBlock(_) => Error::Io(tlsresume_core::deadline::idle_in_handshake()),
        HandshakeError::Failure(mid) => {
            let verify = mid.ssl().verify_result();
            if verify.as_raw() == 0 {
                from_ssl("handshake", mid.into_error(), "")
            } else {
                let extra = format!(" (certificate verification: {})", verify.error_string());
                match from_ssl("handshake", mid.into_error(), &extra) {
                    Error::Tls(e) => Error::Tls(e.with_failure(TlsFailure::Certificate)),
                    other => other,
                }
            }
        }
    }
}

/// OpenSSL's reason codes for a received alert are `SSL_AD_REASON_OFFSET` (1000) + the alert.
const ALERT_REASON_OFFSET: i32 = 1000;

/// The kind of a failed handshake or record call, from OpenSSL's error queue.
fn failure_of(err: &ssl::Error) -> TlsFailure {
    let alert = err.ssl_error().is_some_and(|stack| {
        stack.errors().iter().any(|e| {
            let reason = e.reason_code();
            (ALERT_REASON_OFFSET..ALERT_REASON_OFFSET + 256).contains(&reason)
        })
    });
    if alert {
        TlsFailure::Alert
    } else {
        TlsFailure::Protocol
    }
}

/// OpenSSL's library code of libssl and its reason for a peer that closed the connection
/// without a close_notify (`SSL_R_UNEXPECTED_EOF_WHILE_READING`, OpenSSL 3).
const ERR_LIB_SSL: i32 = 20;
const SSL_R_UNEXPECTED_EOF_WHILE_READING: i32 = 294;

/// Whether OpenSSL says the peer closed the connection (an early close is an I/O error on
/// every backend, not a protocol failure).
fn peer_closed(err: &ssl::Error) -> bool {
    if err.code() == ssl::ErrorCode::SYSCALL
        && err.io_error().is_none()
        && err.ssl_error().is_none()
    {
        return true; // EOF where OpenSSL 1.1 said SSL_ERROR_SYSCALL with nothing queued
    }
    err.ssl_error().is_some_and(|stack| {
        stack.errors().iter().any(|e| {
            e.library_code() == ERR_LIB_SSL && e.reason_code() == SSL_R_UNEXPECTED_EOF_WHILE_READING
        })
    })
}

/// An [`ssl::Error`] from a handshake or I/O call.
#[cold]
pub(crate) fn from_ssl(what: &str, err: ssl::Error, extra: &str) -> Error {
    if err.code() == ssl::ErrorCode::SYSCALL || err.code() == ssl::ErrorCode::ZERO_RETURN {
        if let Some(io) = err.io_error() {
            return Error::Io(io::Error::new(io.kind(), format!("{what}: {io}{extra}")));
        }
    }
    if peer_closed(&err) {
        return Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{what}: the peer closed the connection{extra}"),
        ));
    }
    let failure = failure_of(&err);
    let message = format!("{what} failed: {err}{extra}");
    Error::Tls(TlsError::new(NAME, failure, message).with_source(err))
}

/// OpenSSL's reason for a client that sent no certificate where one is required
/// (`SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE`).
const SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: i32 = 199;

/// Whether a failed server handshake's OpenSSL error says the client sent no certificate.
pub(crate) fn no_peer_certificate(error: &Error) -> bool {
    let Error::Tls(tls) = error else {
        return false;
    };
    std::error::Error::source(tls)
        .and_then(|s| s.downcast_ref::<ssl::Error>())
        .and_then(ssl::Error::ssl_error)
        .is_some_and(|stack| {
            stack.errors().iter().any(|e| {
                e.library_code() == ERR_LIB_SSL
                    && e.reason_code() == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE
            })
        })
}

/// An [`ssl::Error`] as an [`io::Error`] for `Read`/`Write`.
pub(crate) fn to_io(err: ssl::Error) -> io::Error {
    match err.into_io_error() {
        Ok(io) => io,
        Err(err) => io::Error::other(err.to_string()),
    }
}
