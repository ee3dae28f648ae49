//! [`BackendKind`]: which TLS library, by name and by code (a leaf: it imports only the error
//! and the ticket policies).

use core::fmt;
use core::str::FromStr;

use crate::error::Error;
use crate::model::ticket_policy::TicketPolicy;

/// The TLS libraries tlsresume runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    /// GnuTLS 3.7, through bindings generated with bindgen.
    Gnutls,
    /// OpenSSL 3, through the `openssl` crate.
    Openssl,
    /// rustls with the ring provider.
    Rustls,
}

impl BackendKind {
    /// Every backend tlsresume knows, compiled in or not.
    pub const ALL: [BackendKind; 3] = [Self::Openssl, Self::Gnutls, Self::Rustls];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gnutls => "gnutls",
            Self::Openssl => "openssl",
            Self::Rustls => "rustls",
        }
    }

    /// The ticket flavour this library shows under Exim.
    pub fn default_ticket_policy(self) -> TicketPolicy {
        match self {
            Self::Gnutls => TicketPolicy::GNUTLS,
            Self::Openssl | Self::Rustls => TicketPolicy::OPENSSL,
        }
    }

    /// How many TLS 1.3 tickets this library's server sends after a full handshake when
    /// [`ServerSettings::tls13_tickets`](crate::ServerSettings::tls13_tickets) is not set: one
    /// on OpenSSL and rustls (tlsresume's choice since its start: a mail client keeps one
    /// session per destination), two on GnuTLS (the count it sends by itself, as Exim over
    /// GnuTLS and `gnutls-serv` do).
    pub fn default_tls13_tickets(self) -> u32 {
        match self {
            Self::Gnutls => 2,
            Self::Openssl | Self::Rustls => 1,
        }
    }

    /// The code stored in cache entries.
    pub fn code(self) -> u8 {
        match self {
            Self::Openssl => 1,
            Self::Gnutls => 2,
            Self::Rustls => 3,
        }
    }

    /// The backend for a stored code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Openssl),
            2 => Some(Self::Gnutls),
            3 => Some(Self::Rustls),
            _ => None,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = Error;

    /// Parses `openssl`, `gnutls` or `rustls` (any case).
    fn from_str(s: &str) -> Result<Self, Error> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|k| k.name() == wanted)
            .ok_or_else(|| Error::UnknownBackend {
                name: s.to_owned(),
                available: Self::ALL
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_parse_and_unknown_names_list_the_choices() {
        for kind in BackendKind::ALL {
            assert_eq!(kind.name().parse::<BackendKind>().ok(), Some(kind));
            assert_eq!(BackendKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(
            "OpenSSL".parse::<BackendKind>().ok(),
            Some(BackendKind::Openssl)
        );
        let err = "boringssl".parse::<BackendKind>().expect_err("unknown");
        let text = err.to_string();
        assert!(
            text.contains("boringssl") && text.contains("openssl, gnutls, rustls"),
            "{text}"
        );
    }
}
