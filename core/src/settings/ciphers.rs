//! Which cipher suites a context may negotiate: one description, written once by IANA name,
//! carried out by each backend with its own library ([`CipherList`]).
//!
//! The description is a list of IANA suite names (`TLS_AES_256_GCM_SHA384`,
//! `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`), the names RFCs, `openssl ciphers -stdname`,
//! `gnutls-cli --list` and rustls all show, in preference order. Each backend maps it to its
//! library (an OpenSSL cipher list and TLS 1.3 suites, a GnuTLS priority string, a rustls
//! provider's suites) and refuses, when a context is made, a list its library cannot carry out
//! exactly, naming the backend and what it can do. No library's own cipher string is accepted:
//! it would mean something else, or nothing, on the other backends, and the client's list is
//! part of the session cache key, which must mean the same on each.

use core::fmt;
use core::str::FromStr;

use crate::error::Error;
use crate::info::ProtocolVersion;
use crate::kind::BackendKind;
use crate::settings::Versions;

/// One cipher suite: its IANA name, its code point and the TLS version it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CipherSuite {
    code: u16,
    name: &'static str,
}

macro_rules! suites {
    ($($code:literal $name:ident,)*) => {
        impl CipherSuite {
            /// Every suite a [`CipherList`] may name, TLS 1.3 first; which of them a backend can
            /// use is up to its library.
            pub const KNOWN: &'static [CipherSuite] = &[
                $(CipherSuite { code: $code, name: stringify!($name) },)*
            ];
        }
    };
}

suites! {
    0x1302 TLS_AES_256_GCM_SHA384,
    0x1301 TLS_AES_128_GCM_SHA256,
    0x1303 TLS_CHACHA20_POLY1305_SHA256,
    0x1304 TLS_AES_128_CCM_SHA256,
    0x1305 TLS_AES_128_CCM_8_SHA256,
    0xC02C TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    0xC030 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0xC02B TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    0xC02F TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    0xCCA9 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    0xCCA8 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0xC0AD TLS_ECDHE_ECDSA_WITH_AES_256_CCM,
    0xC0AC TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
    0xC024 TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384,
    0xC028 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
    0xC023 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
    0xC027 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
    0xC00A TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
    0xC014 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
    0xC009 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
    0xC013 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
    0x009F TLS_DHE_RSA_WITH_AES_256_GCM_SHA384,
    0x009E TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,
    0xCCAA TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0x006B TLS_DHE_RSA_WITH_AES_256_CBC_SHA256,
    0x0067 TLS_DHE_RSA_WITH_AES_128_CBC_SHA256,
    0x0039 TLS_DHE_RSA_WITH_AES_256_CBC_SHA,
    0x0033 TLS_DHE_RSA_WITH_AES_128_CBC_SHA,
    0x009D TLS_RSA_WITH_AES_256_GCM_SHA384,
    0x009C TLS_RSA_WITH_AES_128_GCM_SHA256,
    0x003D TLS_RSA_WITH_AES_256_CBC_SHA256,
    0x003C TLS_RSA_WITH_AES_128_CBC_SHA256,
    0x0035 TLS_RSA_WITH_AES_256_CBC_SHA,
    0x002F TLS_RSA_WITH_AES_128_CBC_SHA,
}

impl CipherSuite {
    /// The suite of this IANA name (ASCII case ignored).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::KNOWN
            .iter()
            .copied()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The suite of this code point, if it is one of [`KNOWN`](Self::KNOWN).
    pub fn from_code(code: u16) -> Option<Self> {
        Self::KNOWN.iter().copied().find(|s| s.code == code)
    }

    /// The IANA name.
    pub fn name(self) -> &'static str {
        self.name
    }

    /// The code point, as on the wire.
    pub fn code(self) -> u16 {
        self.code
    }

    /// The TLS version the suite is for: TLS 1.3 suites (`0x13xx`) name no key exchange and
    /// are used only by TLS 1.3; every other suite here only by TLS 1.2.
    pub fn version(self) -> ProtocolVersion {
        if self.code >> 8 == 0x13 {
            ProtocolVersion::Tls13
        } else {
            ProtocolVersion::Tls12
        }
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The cipher suites a client or server may negotiate, in preference order (Exim's
/// `tls_require_ciphers`): IANA names, written once for every backend.
///
/// A TLS version the list names no suite for is not negotiated: a list of TLS 1.3 suites
/// alone makes a TLS 1.3-only context ([`versions_within`](Self::versions_within)).
///
/// ```
/// use tlsresume_core::settings::ciphers::CipherList;
/// use tlsresume_core::settings::Versions;
/// use tlsresume_core::ProtocolVersion;
///
/// let list: CipherList = "TLS_AES_256_GCM_SHA384 : tls_ecdhe_rsa_with_aes_128_gcm_sha256".parse()?;
/// assert_eq!(list.to_string(), "TLS_AES_256_GCM_SHA384:TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
/// let only13: CipherList = "TLS_AES_128_GCM_SHA256".parse()?;
/// assert_eq!(only13.versions_within(Versions::ALL)?, Versions::only(ProtocolVersion::Tls13));
/// assert!("TLS_NO_SUCH_SUITE".parse::<CipherList>().is_err());
/// # Ok::<(), tlsresume_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CipherList {
    suites: Vec<CipherSuite>,
}

impl CipherList {
    /// A list of these suites, in preference order; repeats are dropped. Refused when empty.
    pub fn new(suites: impl IntoIterator<Item = CipherSuite>) -> Result<Self, Error> {
        let mut out: Vec<CipherSuite> = Vec::new();
        for suite in suites {
            if !out.contains(&suite) {
                out.push(suite);
            }
        }
        if out.is_empty() {
            return Err(Error::setting(
                "ciphers",
                "the list names no cipher suite; leave ciphers unset for the library's defaults",
            ));
        }
        Ok(Self { suites: out })
    }

    /// The suites, in preference order.
    pub fn suites(&self) -> &[CipherSuite] {
        &self.suites
    }

    /// The suites for `version`, in preference order.
    pub fn for_version(&self, version: ProtocolVersion) -> impl Iterator<Item = CipherSuite> + '_ {
        self.suites
            .iter()
            .copied()
            .filter(move |s| s.version() == version)
    }

    /// The versions of `versions` the list names a suite for; an error naming both settings
    /// when there is none.
    pub fn versions_within(&self, versions: Versions) -> Result<Versions, Error> {
        let has = |v: ProtocolVersion| versions.allows(v) && self.for_version(v).next().is_some();
        let (min, max) = match (has(ProtocolVersion::Tls12), has(ProtocolVersion::Tls13)) {
            (true, true) => (ProtocolVersion::Tls12, ProtocolVersion::Tls13),
            (true, false) => (ProtocolVersion::Tls12, ProtocolVersion::Tls12),
            (false, true) => (ProtocolVersion::Tls13, ProtocolVersion::Tls13),
            (false, false) => {
                return Err(Error::setting(
                    "ciphers",
                    format!(
                        "no suite in {self} is for a version allowed by versions ({} to {}); \
                         add a suite for one of them or widen versions",
                        versions.min, versions.max
                    ),
                ))
            }
        };
        Ok(Versions { min, max })
    }

    /// Checks that `backend`'s library can carry out every suite in the list: `can` is each
    /// suite of [`CipherSuite::KNOWN`] the library can use, as the library says. The error
    /// names the backend, the suites it cannot use and those it can.
    pub fn check_supported(
        &self,
        backend: BackendKind,
        library: &str,
        can: &[CipherSuite],
    ) -> Result<(), Error> {
        let missing: Vec<&str> = self
            .suites
            .iter()
            .filter(|s| !can.contains(s))
            .map(|s| s.name())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::setting(
            "ciphers",
            format!(
                "the {backend} backend ({library}) cannot use {}; it can use: {}",
                missing.join(", "),
                names(can)
            ),
        ))
    }

    /// The error for a list a backend's library would widen: it can restrict only by parts
    /// (GnuTLS: cipher, MAC, key exchange), and the parts of this list also allow `extra`.
    pub fn widened(&self, backend: BackendKind, how: &str, extra: &[CipherSuite]) -> Error {
        Error::setting(
            "ciphers",
            format!(
                "the {backend} backend cannot allow exactly {self}: {how}, so it would also \
                 allow {}; add those to the list or choose suites that share their parts",
                names(extra)
            ),
        )
    }
}

fn names(suites: &[CipherSuite]) -> String {
    if suites.is_empty() {
        return "none of the known suites".into();
    }
    suites
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for CipherList {
    type Err = Error;

    /// IANA suite names separated by `:`, `,` or white space (ASCII case ignored).
    fn from_str(text: &str) -> Result<Self, Error> {
        let mut suites = Vec::new();
        for name in text
            .split(|c: char| c == ':' || c == ',' || c.is_whitespace())
            .filter(|n| !n.is_empty())
        {
            let suite = CipherSuite::from_name(name).ok_or_else(|| {
                Error::setting(
                    "ciphers",
                    format!(
                        "'{name}' is not an IANA cipher suite name tlsresume knows; known: {}",
                        names(CipherSuite::KNOWN)
                    ),
                )
            })?;
            suites.push(suite);
        }
        Self::new(suites)
    }
}

impl fmt::Display for CipherList {
    /// The canonical text: IANA names joined by `:` (what the cache key takes in).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, suite) in self.suites.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            f.write_str(suite.name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_are_unique_and_versions_follow_the_code() {
        for (i, a) in CipherSuite::KNOWN.iter().enumerate() {
            for b in &CipherSuite::KNOWN[i + 1..] {
                assert_ne!(a.code(), b.code());
                assert_ne!(a.name(), b.name());
            }
            assert_eq!(
                a.version() == ProtocolVersion::Tls13,
                !a.name().contains("_WITH_"),
                "{a}"
            );
            assert_eq!(CipherSuite::from_code(a.code()), Some(*a));
        }
    }

    #[test]
    fn parsing_refuses_unknown_and_empty_and_drops_repeats() {
        let list: CipherList =
            "TLS_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384"
                .parse()
                .expect("parses");
        assert_eq!(list.suites().len(), 2);
        let err = "ECDHE-RSA-AES128-GCM-SHA256"
            .parse::<CipherList>()
            .expect_err("refused");
        assert!(
            err.to_string().contains("not an IANA cipher suite name"),
            "{err}"
        );
        let err = " : ".parse::<CipherList>().expect_err("refused");
        assert!(err.to_string().contains("names no cipher suite"), "{err}");
    }

    #[test]
    fn versions_follow_the_suites_named() {
        let tls12: CipherList = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            .parse()
            .expect("parses");
        assert_eq!(
            tls12.versions_within(Versions::ALL).expect("some"),
            Versions::only(ProtocolVersion::Tls12)
        );
        let err = tls12
            .versions_within(Versions::only(ProtocolVersion::Tls13))
            .expect_err("refused");
        assert!(err.to_string().contains("TLS1.3"), "{err}");
        let both: CipherList = "TLS_AES_128_GCM_SHA256:TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            .parse()
            .expect("parses");
        assert_eq!(
            both.versions_within(Versions::ALL).expect("some"),
            Versions::ALL
        );
    }

    #[test]
    fn an_unsupported_suite_is_named_with_the_backend_and_what_it_can_do() {
        let list: CipherList = "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
            .parse()
            .expect("parses");
        let can = [CipherSuite::KNOWN[0]];
        let err = list
            .check_supported(BackendKind::Rustls, "rustls 0.23", &can)
            .expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("rustls backend"), "{text}");
        assert!(
            text.contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
            "{text}"
        );
        assert!(text.contains(CipherSuite::KNOWN[0].name()), "{text}");
        assert!(list
            .check_supported(BackendKind::Rustls, "rustls", list.suites())
            .is_ok());
    }
}
