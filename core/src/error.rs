//! The one error type of tlsresume, and the kinds an application decides on.
//!
//! An MTA acts differently on each kind of failure: an I/O error or a timeout is worth a retry
//! later, a certificate or OCSP failure means "do not deliver over TLS to this host" (or fall
//! back to clear text where policy allows), a protocol failure or an alert from the peer means
//! the peer and this library cannot agree, and a configuration error is this host's own fault.
//! [`Error::kind`] gives that decision without string matching; the TLS library's own error,
//! when there is one, stays reachable through [`std::error::Error::source`].

use core::fmt;

use crate::keys::KeyError;
use crate::model::hostlist::HostListError;
use crate::model::ticket_policy::TicketPolicyError;

/// Everything that can go wrong, with messages a user can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid or a combination is unsupported.
    #[error("configuration: {0}")]
    Config(String),
    /// One setting is invalid: which one, and why.
    #[error("configuration: {field}: {why}")]
    Setting {
        /// The field, as named in the settings type (`roots`, `ticket_policy`, `clock`, …).
        field: &'static str,
        /// What is wrong and what would do instead.
        why: String,
    },
    /// A file could not be read or did not hold what it should.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// A host list did not parse.
    #[error(transparent)]
    HostList(#[from] HostListError),
    /// I/O on the transport, including timeouts (`WouldBlock` / `TimedOut` from a socket with a
    /// read or write timeout) and the peer closing the connection.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The ticket key source failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The ticket policy is invalid.
    #[error("ticket policy: {0}")]
    Policy(#[from] TicketPolicyError),
    /// The session store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The TLS library failed the handshake or a record operation.
    #[error(transparent)]
    Tls(TlsError),
    /// A TLSA record did not parse.
    #[error(transparent)]
    Tlsa(#[from] crate::dane::TlsaError),
    /// A backend name that is not known or not compiled in.
    #[error("unknown TLS backend '{name}'; available: {available}")]
    UnknownBackend {
        /// The name given.
        name: String,
        /// The backends that can be used.
        available: String,
    },
}

/// What an application decides on: the kind of an [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The transport failed, timed out or closed: usually worth a retry later.
    Io,
    /// The peer's certificate did not verify.
    Certificate,
    /// OCSP was required and the status is not "verified".
    Ocsp,
    /// The peer sent a fatal alert.
    Alert,
    /// The handshake or a record failed for another protocol reason.
    Protocol,
    /// This side's configuration is wrong (settings, files, backend names, host lists).
    Config,
    /// The session store or key source failed.
    Store,
}

impl ErrorKind {
    /// A stable one-word name for JSON and metrics: `io`, `certificate`, `ocsp`, `alert`,
    /// `protocol`, `config`, `store`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Io => "io",
            Self::Certificate => "certificate",
            Self::Ocsp => "ocsp",
            Self::Alert => "alert",
            Self::Protocol => "protocol",
            Self::Config => "config",
            Self::Store => "store",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Io => "I/O",
            Self::Certificate => "certificate verification",
            Self::Ocsp => "OCSP requirement",
            Self::Alert => "alert from the peer",
            Self::Protocol => "protocol",
            Self::Config => "configuration",
            Self::Store => "store",
        })
    }
}

/// Which kind of TLS failure a [`TlsError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// Certificate verification failed.
    Certificate,
    /// OCSP was required and the status is not "verified".
    Ocsp,
    /// The peer sent a fatal alert.
    Alert,
    /// Anything else the library reported.
    Protocol,
}

/// A failure reported by (or, for OCSP, decided around) a TLS library.
#[derive(Debug)]
pub struct TlsError {
    backend: &'static str,
    failure: TlsFailure,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl TlsError {
    /// A failure of `backend` of the given kind.
    pub fn new(backend: &'static str, failure: TlsFailure, message: impl Into<String>) -> Self {
        Self {
            backend,
            failure,
            message: message.into(),
            source: None,
        }
    }

    /// Keeps the library's own error as the [`source`](std::error::Error::source).
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The same error, as another kind of failure.
    pub fn with_failure(mut self, failure: TlsFailure) -> Self {
        self.failure = failure;
        self
    }

    /// The backend that failed (`openssl`, `gnutls`, `rustls`).
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The kind of failure.
    pub fn failure(&self) -> TlsFailure {
        self.failure
    }

    /// The message, with the library's own words where it gave some.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.backend, self.message)
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<TlsError> for Error {
    fn from(err: TlsError) -> Self {
        Self::Tls(err)
    }
}

impl Error {
    /// A TLS library error of no more specific kind ([`TlsFailure::Protocol`]).
    pub fn tls(backend: &'static str, message: impl Into<String>) -> Self {
        Self::Tls(TlsError::new(backend, TlsFailure::Protocol, message))
    }

    /// A TLS failure of a given kind.
    pub fn tls_failure(
        backend: &'static str,
        failure: TlsFailure,
        message: impl Into<String>,
    ) -> Self {
        Self::Tls(TlsError::new(backend, failure, message))
    }

    /// An invalid setting.
    pub fn setting(field: &'static str, why: impl Into<String>) -> Self {
        Self::Setting {
            field,
            why: why.into(),
        }
    }

    /// What kind of failure this is, for deciding between retry, fall back and give up.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Io(_) => ErrorKind::Io,
            Self::Tls(tls) => match tls.failure {
                TlsFailure::Certificate => ErrorKind::Certificate,
                TlsFailure::Ocsp => ErrorKind::Ocsp,
                TlsFailure::Alert => ErrorKind::Alert,
                TlsFailure::Protocol => ErrorKind::Protocol,
            },
            Self::Key(_) | Self::Store(_) => ErrorKind::Store,
            Self::Config(_)
            | Self::Setting { .. }
            | Self::File { .. }
            | Self::HostList(_)
            | Self::Policy(_)
            | Self::Tlsa(_)
            | Self::UnknownBackend { .. } => ErrorKind::Config,
        }
    }

    /// The error a `Read` or `Write` on a TLS stream returned, as an [`Error`]: the
    /// tlsresume error it carries when it carries one (a server that refused this client's
    /// certificate after a TLS 1.3 handshake: [`ErrorKind::Certificate`]), else [`Error::Io`].
    pub fn from_io(error: std::io::Error) -> Self {
        if error.get_ref().is_some_and(|inner| inner.is::<Self>()) {
            if let Some(inner) = error.into_inner() {
                if let Ok(own) = inner.downcast::<Self>() {
                    return *own;
                }
            }
            unreachable_io()
        } else {
            Self::Io(error)
        }
    }

    /// The I/O error, when this is one (timeouts included).
    pub fn as_io(&self) -> Option<&std::io::Error> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }

    /// Whether a later attempt may succeed without a change here: I/O errors (timeouts,
    /// resets, early close). Certificate, OCSP, protocol and configuration failures repeat.
    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Io
    }
}

/// Never reached: `from_io` checked the inner error's type first.
#[cold]
fn unreachable_io() -> Error {
    Error::Io(std::io::Error::other("I/O error without its inner error"))
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A stored entry could not be decoded.
    #[error("corrupt session cache entry: {0}")]
    Corrupt(#[from] CodecError),
    /// The store's file or service failed.
    #[error("session store I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Anything else the store reports.
    #[error("session store: {0}")]
    Other(String),
}

/// Why stored bytes are not a cache entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A field holds a value no version of the codec writes.
    #[error("cache entry field {0} has the unknown value {1}")]
    BadField(&'static str, u8),
    /// The checksum does not match: the bytes were changed.
    #[error("cache entry checksum mismatch (corrupted)")]
    Checksum,
    /// The bytes do not start with the entry magic.
    #[error("not a tlsresume cache entry")]
    NotAnEntry,
    /// Shorter than the entry says.
    #[error("cache entry truncated")]
    Truncated,
    /// Written by a newer codec.
    #[error("cache entry codec version {0} is not supported (this build reads versions 1 and 2)")]
    UnknownVersion(u8),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn kinds_and_sources() {
        let io = Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"));
        assert_eq!(io.kind(), ErrorKind::Io);
        assert!(io.is_transient());
        let lib = std::io::Error::other("library words");
        let tls: Error = TlsError::new("openssl", TlsFailure::Certificate, "bad chain")
            .with_source(lib)
            .into();
        assert_eq!(tls.kind(), ErrorKind::Certificate);
        assert!(!tls.is_transient());
        let Error::Tls(inner) = &tls else {
            panic!("not a TLS error: {tls:?}");
        };
        assert_eq!(
            inner.source().map(|s| s.to_string()).as_deref(),
            Some("library words")
        );
        assert_eq!(tls.to_string(), "openssl: bad chain");
        let bad = Error::setting("roots", "no trust anchors given");
        assert_eq!(bad.kind(), ErrorKind::Config);
        assert!(bad.to_string().contains("roots"));
    }
}
