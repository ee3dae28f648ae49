//! The one error type of tlsresume.

use crate::hostlist::HostListError;
use crate::keys::KeyError;
use crate::store::StoreError;
use crate::ticket_policy::TicketPolicyError;

/// Everything that can go wrong, with messages a user can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid or a combination is unsupported.
    #[error("configuration: {0}")]
    Config(String),
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
    /// I/O on the transport.
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
    /// The TLS library reported an error (handshake failure, bad configuration).
    #[error("{backend}: {message}")]
    Tls {
        /// Which backend.
        backend: &'static str,
        /// The library's own message.
        message: String,
    },
    /// A backend name that is not known or not compiled in.
    #[error("unknown TLS backend '{name}'; available: {available}")]
    UnknownBackend {
        /// The name given.
        name: String,
        /// The backends that can be used.
        available: String,
    },
}

impl Error {
    /// A TLS library error.
    pub fn tls(backend: &'static str, message: impl Into<String>) -> Self {
        Self::Tls {
            backend,
            message: message.into(),
        }
    }
}
