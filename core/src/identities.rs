//! Several server certificates: [`ServerIdentity`] (an [`Identity`] and the names it serves)
//! and [`IdentityTable`], which picks the certificates a connection may get from the name the
//! client sent (SNI), the same way on every backend.
//!
//! The choice is made in two steps. The table picks a *set* of identities by name:
//!
//! 1. the identities that carry the name exactly (case-insensitive, a trailing dot ignored);
//! 2. otherwise those carrying a wildcard for it: `*.example.org` stands for exactly one
//!    label, so it serves `a.example.org` but neither `example.org` nor `a.b.example.org`
//!    (RFC 6125 6.4.3; a `*` anywhere else in a name never matches);
//! 3. otherwise, and when the client sent no name, the default set: the identities marked
//!    [`default`](ServerIdentity::default), or when none is, the first identity given and
//!    every identity serving the same names as it.
//!
//! Within a set, the TLS library chooses by what the client supports (an RSA and an ECDSA
//! certificate for the same names side by side: a client offering only ECDSA signature
//! algorithms gets the ECDSA one): OpenSSL between the keys loaded in one context, GnuTLS
//! between the keys of one credentials structure, rustls by the keys' signature schemes.
//!
//! The names of an identity are the certificate's subjectAltName dNSNames unless given
//! explicitly ([`ServerIdentity::with_names`]); the subject's CN is never used.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::error::Error;
use crate::pki::Identity;

/// A server certificate with the names it serves, for [`ServerSettings`](crate::ServerSettings)
/// holding several.
#[derive(Clone, Debug)]
pub struct ServerIdentity {
    identity: Identity,
    names: Vec<String>,
    default: bool,
}

impl ServerIdentity {
    /// The identity serving the DNS names of its certificate's subjectAltName (lower-cased;
    /// wildcards as written). An error when the leaf is not an X.509 certificate; a
    /// certificate without DNS names serves no name and counts only as a default.
    pub fn new(identity: Identity) -> Result<Self, Error> {
        let leaf = identity
            .chain()
            .first()
            .ok_or_else(|| Error::setting("identities", "a certificate chain is empty"))?;
        let names = certificate_dns_names(leaf).ok_or_else(|| {
            Error::setting(
                "identities",
                "the leaf certificate is not valid X.509 DER: its names cannot be read; give \
                 them with ServerIdentity::with_names",
            )
        })?;
        Ok(Self::from_parts(identity, names))
    }

    /// The identity serving `names` (DNS names, `*.example.org` for one label of any name
    /// under `example.org`), whatever its certificate says.
    pub fn with_names<I, S>(identity: Identity, names: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut checked = Vec::new();
        for name in names {
            let name = name.as_ref();
            if normalise(name).is_empty() || name.contains(char::is_whitespace) {
                return Err(Error::setting(
                    "identities",
                    format!("{name:?} is not a DNS name (a.example.org or *.example.org)"),
                ));
            }
            checked.push(name.to_owned());
        }
        Ok(Self::from_parts(identity, checked))
    }

    /// The identity the server falls back to when the client's name matches no other (or it
    /// sent none), with every identity serving the same names. When no identity is marked,
    /// the first one given is the default.
    #[must_use]
    pub fn default(mut self) -> Self {
        self.default = true;
        self
    }

    /// The first identity of a server: the names of its certificate, none when the leaf does
    /// not parse (it then serves as the default only).
    pub(crate) fn primary(identity: Identity) -> Self {
        let names = identity
            .chain()
            .first()
            .and_then(|leaf| certificate_dns_names(leaf))
            .unwrap_or_default();
        Self::from_parts(identity, names)
    }

    fn from_parts(identity: Identity, names: Vec<String>) -> Self {
        let mut names: Vec<String> = names.iter().map(|n| normalise(n).into_owned()).collect();
        names.dedup();
        Self {
            identity,
            names,
            default: false,
        }
    }

    /// The certificate chain and key.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The names served, lower-cased, without a trailing dot.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether the identity is marked as the default.
    pub fn is_default(&self) -> bool {
        self.default
    }
}

/// A name as compared: lower case, without a trailing dot. A name already in that form (what
/// clients send, as a rule) is given back borrowed, without a copy.
pub fn normalise(name: &str) -> Cow<'_, str> {
    let trimmed = name.trim_end_matches('.');
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

/// The dNSNames of a DER certificate's subjectAltName; `None` when the bytes are not a
/// certificate, empty when it has no such names.
pub fn certificate_dns_names(der: &[u8]) -> Option<Vec<String>> {
    use x509_cert::der::Decode;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let san = match cert.tbs_certificate.get::<SubjectAltName>() {
        Ok(Some((_, san))) => san,
        Ok(None) => return Some(Vec::new()),
        Err(_) => return None,
    };
    Some(
        san.0
            .into_iter()
            .filter_map(|name| match name {
                GeneralName::DnsName(dns) => Some(dns.to_string()),
                _ => None,
            })
            .collect(),
    )
}

/// The host name in the body of a ClientHello's `server_name` extension (RFC 6066 3), for
/// libraries that give the extension's bytes only; `None` when there is none or the body is
/// malformed (the library then answers as it does for a malformed extension). The name is
/// borrowed from `body`.
pub fn host_name_from_extension(body: &[u8]) -> Option<&str> {
    let (len, mut list) = body.split_first_chunk::<2>()?;
    if usize::from(u16::from_be_bytes(*len)) != list.len() {
        return None;
    }
    while let Some((&kind, rest)) = list.split_first() {
        let (len, rest) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len {
            return None;
        }
        let (name, rest) = rest.split_at(len);
        if kind == 0 {
            let name = std::str::from_utf8(name).ok()?;
            return (!name.is_empty() && name.is_ascii()).then_some(name);
        }
        list = rest;
    }
    None
}

/// The identities of a server and which of them a client's name selects (see the
/// [module docs](self) for the rules).
///
/// The table is made of *sets*: the distinct groups of identities a name can select, set 0
/// being the default. A backend builds one library context per set (an OpenSSL `SSL_CTX`, a
/// GnuTLS credentials structure, a list of rustls keys) and switches the connection to the
/// set [`select`](Self::select) names when the ClientHello arrives.
#[derive(Clone, Debug)]
pub struct IdentityTable {
    entries: Vec<ServerIdentity>,
    sets: Vec<Vec<usize>>,
    exact: HashMap<String, usize>,
    wildcard: HashMap<String, usize>,
}

impl IdentityTable {
    /// The table over `entries`, in the order given; an error when there is none.
    pub fn new(entries: Vec<ServerIdentity>) -> Result<Self, Error> {
        let first = entries
            .first()
            .ok_or_else(|| Error::setting("identities", "no certificate is given"))?;
        let anchor = entries.iter().find(|e| e.default).unwrap_or(first);
        let mut anchor_names = anchor.names.clone();
        anchor_names.sort();
        let default_set = (0..entries.len())
            .filter(|&i| {
                let mut names = entries[i].names.clone();
                names.sort();
                entries[i].default || names == anchor_names
            })
            .collect();
        let mut table = Self {
            sets: vec![default_set],
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            entries: Vec::new(),
        };
        let mut by_name: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            for name in &entry.names {
                match by_name.iter_mut().find(|(n, _)| n == name) {
                    Some((_, members)) => members.push(i),
                    None => by_name.push((name.clone(), vec![i])),
                }
            }
        }
        for (name, members) in by_name {
            let set = match table.sets.iter().position(|s| *s == members) {
                Some(set) => set,
                None => {
                    table.sets.push(members);
                    table.sets.len() - 1
                }
            };
            if let Some(suffix) = name.strip_prefix("*.") {
                if !suffix.contains('*') && !suffix.is_empty() {
                    table.wildcard.insert(suffix.to_owned(), set);
                }
            } else if !name.contains('*') {
                table.exact.insert(name, set);
            }
        }
        table.entries = entries;
        Ok(table)
    }

    /// The identities, in the order given.
    pub fn entries(&self) -> &[ServerIdentity] {
        &self.entries
    }

    /// The sets of identities a name can select (indexes into
    /// [`entries`](Self::entries), in the order given); set 0 is the default.
    pub fn sets(&self) -> &[Vec<usize>] {
        &self.sets
    }

    /// The identities of set `set`, in the order given.
    pub fn set(&self, set: usize) -> impl Iterator<Item = &ServerIdentity> {
        self.sets
            .get(set)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.entries.get(i))
    }

    /// The set a client's server name selects: exact, then wildcard, then the default (0).
    pub fn select(&self, server_name: Option<&str>) -> usize {
        let Some(name) = server_name.map(normalise) else {
            return 0;
        };
        if let Some(&set) = self.exact.get(name.as_ref()) {
            return set;
        }
        match name.split_once('.') {
            Some((label, rest)) if !label.is_empty() && !rest.is_empty() => {
                self.wildcard.get(rest).copied().unwrap_or(0)
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyFormat;

    fn named(names: &[&str]) -> ServerIdentity {
        let id = Identity::from_der(vec![vec![0x30; 4]], vec![1], KeyFormat::Pkcs8).expect("id");
        ServerIdentity::with_names(id, names.iter().copied()).expect("names")
    }

    #[test]
    fn exact_then_wildcard_then_default() {
        let table = IdentityTable::new(vec![
            named(&["mail.example.net"]),
            named(&["a.example.org"]),
            named(&["*.example.org"]),
        ])
        .expect("table");
        let set_of = |name| {
            table
                .set(table.select(name))
                .map(|e| e.names()[0].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(set_of(Some("A.Example.Org.")), ["a.example.org"]);
        assert_eq!(set_of(Some("b.example.org")), ["*.example.org"]);
        for other in [
            Some("example.org"),
            Some("x.b.example.org"),
            Some(".example.org"),
            None,
            Some(""),
        ] {
            assert_eq!(set_of(other), ["mail.example.net"], "{other:?}");
        }
    }

    #[test]
    fn a_normal_name_is_not_copied() {
        assert!(matches!(
            normalise("a.example.org"),
            Cow::Borrowed("a.example.org")
        ));
        assert!(matches!(
            normalise("a.example.org.."),
            Cow::Borrowed("a.example.org")
        ));
        assert_eq!(normalise("A.Example.Org."), "a.example.org");
        assert!(matches!(normalise("A.example"), Cow::Owned(_)));
        assert_eq!(
            normalise("Ä.example"),
            "Ä.example",
            "ASCII only, as compared"
        );
    }

    #[test]
    fn host_name_is_read_from_the_extension_body() {
        let body = [0, 8, 0, 0, 5, b'a', b'.', b'o', b'r', b'g'];
        assert_eq!(host_name_from_extension(&body), Some("a.org"));
        assert_eq!(host_name_from_extension(&body[..9]), None);
        assert_eq!(host_name_from_extension(&[0, 3, 0, 0, 9]), None);
        assert_eq!(host_name_from_extension(&[]), None);
    }

    #[test]
    fn same_names_share_a_set_and_a_marked_default_wins() {
        let table = IdentityTable::new(vec![
            named(&["a.example"]),
            named(&["b.example"]),
            named(&["b.example"]).default(),
            named(&["a.example"]),
        ])
        .expect("table");
        assert_eq!(table.sets()[0], [1, 2]);
        assert_eq!(table.sets()[table.select(Some("a.example"))], [0, 3]);
        let unmarked = IdentityTable::new(vec![
            named(&["a.example"]),
            named(&["b"]),
            named(&["a.example"]),
        ])
        .expect("table");
        assert_eq!(unmarked.sets()[0], [0, 2]);
        assert!(IdentityTable::new(Vec::new()).is_err());
        let id = Identity::from_der(vec![vec![0x30; 4]], vec![1], KeyFormat::Pkcs8).expect("id");
        assert!(ServerIdentity::with_names(id.clone(), ["a b"]).is_err());
        assert!(ServerIdentity::new(id).is_err(), "not a certificate");
    }
}
