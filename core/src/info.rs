//! What a handshake produced: [`SessionInfo`] and its parts, the same for every backend.

use core::fmt;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::dane::DaneAuthority;
use crate::keys::key_ring::RejectReason;
use crate::model::resumption::Resumption;

/// The TLS version a connection negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
    /// Anything else, by its wire code.
    Other(u16),
}

impl ProtocolVersion {
    /// The version from its wire code (`0x0303`, `0x0304`).
    pub fn from_wire(code: u16) -> Self {
        match code {
            0x0303 => Self::Tls12,
            0x0304 => Self::Tls13,
            other => Self::Other(other),
        }
    }

    /// The wire code.
    pub fn wire(self) -> u16 {
        match self {
            Self::Tls12 => 0x0303,
            Self::Tls13 => 0x0304,
            Self::Other(code) => code,
        }
    }

    /// The short form used in the CLI and JSON: `1.2`, `1.3`.
    pub fn short(self) -> String {
        match self {
            Self::Tls12 => "1.2".into(),
            Self::Tls13 => "1.3".into(),
            Self::Other(code) => format!("{code:#06x}"),
        }
    }
}

impl fmt::Display for ProtocolVersion {
    /// Exim's form: `TLS1.2`, `TLS1.3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tls12 => f.write_str("TLS1.2"),
            Self::Tls13 => f.write_str("TLS1.3"),
            Self::Other(code) => write!(f, "TLS({code:#06x})"),
        }
    }
}

/// A negotiated cipher suite under its three names.
///
/// The names come from a small fixed set (a suite's names depend on the suite alone, on
/// rustls and OpenSSL), so they are `Cow<'static, str>`: a backend hands out names it keeps
/// for the process (rustls's per-suite table, OpenSSL's own cipher names) without a copy per
/// connection, and owns only what it formats. Read them as `&str` (`&*names.native`,
/// `names.native.as_ref()`); compare with `==` against a `&str` or a `String`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CipherNames {
    /// The library's own name (`ECDHE-RSA-AES256-GCM-SHA384` for OpenSSL, GnuTLS's session
    /// description, rustls's suite name).
    pub native: Cow<'static, str>,
    /// The string Exim puts in `$tls_{in,out}_cipher` and the `X=` log element for this
    /// library, e.g. `TLS1.3:TLS_AES_256_GCM_SHA384:256`. Differs between full and resumed
    /// handshakes on GnuTLS (the known issue).
    pub exim: Cow<'static, str>,
    /// The IANA name (`TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`), stable on every backend.
    pub iana: Cow<'static, str>,
    /// The cipher's key size in bits.
    pub bits: u32,
}

/// Exim's cipher string for OpenSSL and rustls: `<version>:<cipher name>:<bits>`.
///
/// ```
/// use tlsresume_core::{ProtocolVersion};
/// use tlsresume_core::info::{exim_cipher_string};
/// assert_eq!(
///     exim_cipher_string(ProtocolVersion::Tls12, "ECDHE-RSA-AES256-GCM-SHA384", 256),
///     "TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256"
/// );
/// assert_eq!(
///     exim_cipher_string(ProtocolVersion::Tls13, "TLS_AES_128_GCM_SHA256", 128),
///     "TLS1.3:TLS_AES_128_GCM_SHA256:128"
/// );
/// assert_eq!(exim_cipher_string(ProtocolVersion::Tls12, "X", 0), "TLS1.2:X:0");
/// assert_eq!(
///     exim_cipher_string(ProtocolVersion::Other(0x0302), "X", 4_294_967_295),
///     "TLS(0x0302):X:4294967295"
/// );
/// ```
pub fn exim_cipher_string(version: ProtocolVersion, name: &str, bits: u32) -> String {
    // Built by hand, not with `format!`: it runs on every handshake, and a call took ~1 850
    // instructions through the formatting machinery, ~250 this way.
    let version = match version {
        ProtocolVersion::Tls12 => "TLS1.2",
        ProtocolVersion::Tls13 => "TLS1.3",
        other => return format!("{other}:{name}:{bits}"),
    };
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    let mut rest = bits;
    loop {
        start -= 1;
        // `rest % 10` is a single digit.
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let digits = &digits[start..];
    let mut out = String::with_capacity(version.len() + name.len() + digits.len() + 2);
    out.push_str(version);
    out.push(':');
    out.push_str(name);
    out.push(':');
    out.extend(digits.iter().map(|&d| char::from(d)));
    out
}

/// Exim's cipher string for GnuTLS, built from `gnutls_session_get_desc` exactly as Exim does.
///
/// Skip the leading `(`; copy the version up to its `)`; append `:`; then for each following
/// group skip two characters (the `-` and the group's `(`), copy up to the group's `)` turning
/// each `-` into `_`, and append `__` when another `-` follows; finally `:` and the key size.
/// The algorithm is applied literally, so an unusual description gives the same unusual string
/// Exim would log.
///
/// ```
/// use tlsresume_core::info::exim_cipher_from_gnutls_desc;
/// assert_eq!(
///     exim_cipher_from_gnutls_desc("(TLS1.2)-(ECDHE-SECP256R1)-(RSA-SHA256)-(AES-256-GCM)", 256),
///     "TLS1.2:ECDHE_SECP256R1__RSA_SHA256__AES_256_GCM:256"
/// );
/// // A resumed TLS 1.2 session has no signature group.
/// assert_eq!(
///     exim_cipher_from_gnutls_desc("(TLS1.2)-(ECDHE-SECP256R1)-(AES-256-GCM)", 256),
///     "TLS1.2:ECDHE_SECP256R1__AES_256_GCM:256"
/// );
/// ```
pub fn exim_cipher_from_gnutls_desc(desc: &str, bits: u32) -> String {
    let b = desc.as_bytes();
    let mut out = Vec::with_capacity(b.len() + 8);
    let mut i = usize::from(b.first() == Some(&b'('));
    while i < b.len() && b[i] != b')' {
        out.push(b[i]);
        i += 1;
    }
    out.push(b':');
    // Past the version's ')'.
    i += 1;
    while i < b.len() {
        // The separator '-' and the group's '('.
        i += 2;
        while i < b.len() && b[i] != b')' {
            out.push(if b[i] == b'-' { b'_' } else { b[i] });
            i += 1;
        }
        // Past the group's ')'.
        i += 1;
        if i < b.len() && b[i] == b'-' {
            out.extend_from_slice(b"__");
        } else {
            break;
        }
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    text.push(':');
    text.push_str(&bits.to_string());
    text
}

/// The state of the peer certificate's verification, as this handshake saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verification {
    /// The chain was checked and did not verify (the connection went on only because
    /// verification was not required, like Exim's `tls_try_verify_hosts`).
    Failed,
    /// Not checked on this handshake: a resumed handshake does not see the certificate
    /// verified again (the OpenSSL known issue), or verification was off.
    NotChecked,
    /// The chain verified against the trust anchors, and the name matched.
    Verified,
}

impl Verification {
    /// The JSON and CLI name: `verified`, `failed`, `not_checked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::NotChecked => "not_checked",
            Self::Verified => "verified",
        }
    }

    /// Exim's `CV=` log value: `yes` only when verified.
    pub fn exim_cv(self) -> &'static str {
        if self == Self::Verified {
            "yes"
        } else {
            "no"
        }
    }

    /// The code stored in cache entries.
    pub fn code(self) -> u8 {
        match self {
            Self::NotChecked => 0,
            Self::Verified => 1,
            Self::Failed => 2,
        }
    }

    /// The state for a stored code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::NotChecked),
            1 => Some(Self::Verified),
            2 => Some(Self::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the peer was authenticated on a connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum VerifiedBy {
    /// Not authenticated: verification failed or was not run (a resumed handshake whose
    /// library does not check again, TLS without authentication), or nothing was asked.
    #[default]
    Nothing,
    /// The chain verified against the trust anchors and the name matched (PKIX).
    Pkix,
    /// A TLSA record matched (RFC 7672): which, and at which depth.
    Dane(DaneAuthority),
}

impl VerifiedBy {
    /// The JSON and CLI name: `none`, `pkix`, `dane`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Nothing => "none",
            Self::Pkix => "pkix",
            Self::Dane(_) => "dane",
        }
    }

    /// The DANE authority, when DANE authenticated the peer.
    pub fn dane(&self) -> Option<&DaneAuthority> {
        match self {
            Self::Dane(authority) => Some(authority),
            _ => None,
        }
    }

    /// Exim's `$tls_out_dane`: `yes` when DANE authenticated the peer.
    pub fn exim_dane(&self) -> &'static str {
        if self.dane().is_some() {
            "yes"
        } else {
            "no"
        }
    }
}

impl fmt::Display for VerifiedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dane(authority) => write!(f, "dane ({authority})"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// OCSP status with Exim's values (`$tls_{in,out}_ocsp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OcspStatus {
    /// 0: no status was requested.
    NotRequested,
    /// 1: requested, no response came (always so on a resumed handshake: no staple is sent).
    NoResponse,
    /// 2: a response came but verification was not tried.
    NotVerified,
    /// 3: the response did not verify, or said the certificate is revoked.
    Failed,
    /// 4: the response verified and says the certificate is good.
    Verified,
}

impl OcspStatus {
    /// Exim's number, 0 to 4.
    pub fn code(self) -> u8 {
        match self {
            Self::NotRequested => 0,
            Self::NoResponse => 1,
            Self::NotVerified => 2,
            Self::Failed => 3,
            Self::Verified => 4,
        }
    }

    /// The status for Exim's number.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::NotRequested),
            1 => Some(Self::NoResponse),
            2 => Some(Self::NotVerified),
            3 => Some(Self::Failed),
            4 => Some(Self::Verified),
            _ => None,
        }
    }

    /// Exim's words for the value.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NotRequested => "not requested",
            Self::NoResponse => "no response",
            Self::NotVerified => "verification not tried",
            Self::Failed => "failed",
            Self::Verified => "verified",
        }
    }
}

impl fmt::Display for OcspStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.describe())
    }
}

/// Which end of the connection a [`SessionInfo`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client.
    Client,
    /// The server.
    Server,
}

/// Why a client did not offer a stored session.
///
/// A reader never removes what it finds in the store: an entry it cannot use may be another
/// process's (another key, another backend, a library version that reads it), and the next
/// session this client stores under the same cache key replaces it anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NoOffer {
    /// The stored entry could not be decoded (left in place).
    CorruptEntry,
    /// The stored entry had expired (left in place).
    Expired,
    /// Nothing stored under this connection's cache key.
    Missing,
    /// The policy does not resume with this server.
    NotAllowed,
    /// OCSP is required and the stored session's status was not "verified" (hardened).
    OcspRequired,
    /// The store failed.
    StoreFailed,
    /// The stored session belongs to another backend.
    OtherBackend,
    /// The TLS library refused to load the stored session (left in place).
    LibraryRefused,
    /// The stored session was sealed under another key: another process's, or another
    /// store's, or damaged (left in place).
    OtherKey,
    /// The stored entry names a session only the process that made it holds (rustls 0.23
    /// cannot export client sessions), or a single-use TLS 1.3 ticket already used.
    NotHeld,
    /// The server is verified by DANE and the stored session was not (hardened: a resumed
    /// session reports the verdict of the session it resumes).
    DaneUnverified,
}

impl NoOffer {
    /// A short reason for logs and for an operator.
    pub fn describe(self) -> &'static str {
        match self {
            Self::CorruptEntry => "stored session corrupt",
            Self::Expired => "stored session expired",
            Self::Missing => "no stored session",
            Self::NotAllowed => "resumption not allowed with this host",
            Self::OcspRequired => "OCSP required and stored session not OCSP-verified",
            Self::StoreFailed => "session store failed",
            Self::OtherBackend => "stored session belongs to another backend",
            Self::LibraryRefused => "the TLS library refused the stored session",
            Self::OtherKey => "stored session sealed under another key (another process or store)",
            Self::NotHeld => "stored session held by another process (or a used TLS 1.3 ticket)",
            Self::DaneUnverified => "DANE in use and the stored session was not DANE-verified",
        }
    }

    /// A stable one-word name for JSON and metrics (`"missing"`, `"other_key"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::CorruptEntry => "corrupt_entry",
            Self::Expired => "expired",
            Self::Missing => "missing",
            Self::NotAllowed => "not_allowed",
            Self::OcspRequired => "ocsp_required",
            Self::StoreFailed => "store_failed",
            Self::OtherBackend => "other_backend",
            Self::LibraryRefused => "library_refused",
            Self::OtherKey => "other_key",
            Self::NotHeld => "not_held",
            Self::DaneUnverified => "dane_unverified",
        }
    }
}

impl fmt::Display for NoOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Everything tlsresume reports about a TLS connection, the same for every backend.
///
/// TLS 1.3 tickets arrive after the handshake, so the client's
/// [`Resumption::SERVER_TICKET`] bit (and the store write) can appear only after the first
/// read; ask the stream again after reading.
///
/// Backends fill it through [`SessionInfo::new`] (the type is `#[non_exhaustive]`: it grows
/// without breaking them); clients get theirs from the core's
/// [`ClientHandshake`](crate::contract::ClientHandshake).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// This end.
    pub side: Side,
    /// The negotiated version.
    pub protocol: ProtocolVersion,
    /// The negotiated cipher suite.
    pub cipher: CipherNames,
    /// Exim's resumption bits for this connection.
    pub resumption: Resumption,
    /// Whether the session was resumed.
    pub resumed: bool,
    /// The peer certificate's verification (clients; servers that ask for client certificates).
    pub verification: Verification,
    /// Client: how the server was authenticated: by DANE (with the matching record), PKIX,
    /// or not at all.
    pub verified_by: VerifiedBy,
    /// OCSP status (client: of the staple received; server: whether one was stapled).
    pub ocsp: OcspStatus,
    /// Why a stapled OCSP response was rejected (`ocsp` is then [`OcspStatus::Failed`]), in
    /// words fit for a log line: "certificate revoked at …", "response expired at …".
    /// Only a backend that checks the staple itself rather than through its library sets it
    /// (rustls); `None` otherwise, and whenever nothing was rejected.
    pub ocsp_detail: Option<String>,
    /// The peer's certificate chain, leaf first, DER. Present on resumed handshakes too where
    /// the library keeps it in the session.
    ///
    /// Shared rather than owned: a backend may hand the connections that received the same
    /// chain one copy per thread ([`share_chain`]), so thousands of connections to one server
    /// (or from one client) do not each hold it. Read it as a slice (`first()`, `iter()`, `len()`);
    /// build one from a `Vec<Vec<u8>>` with `.into()`.
    pub peer_certificates: Arc<[Vec<u8>]>,
    /// The server name the client sent.
    pub sni: Option<String>,
    /// The negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// The ticket lifetime hint of the newest ticket (client) or the one issued (server).
    pub ticket_lifetime: Option<Duration>,
    /// Client: why no stored session was offered (`None` when one was, and on servers). An
    /// operator asking "why no resumption?" reads [`NoOffer::describe`].
    pub no_offer: Option<NoOffer>,
    /// Server: why the ticket the client presented was refused, where the library tells
    /// (OpenSSL, rustls; GnuTLS does not): `None` when none was presented, or it was accepted.
    pub ticket_refused: Option<RejectReason>,
    /// Server: the subject DN of the client's certificate (Exim's `$tls_in_peerdn`), in
    /// RFC 4514 form, when its verification is reported ([`verification`](Self::verification)
    /// not [`Verification::NotChecked`]). Derived by tlsresume from the leaf certificate the
    /// library hands over, the same form on every backend (Exim's differs with its library).
    pub peer_dn: Option<String>,
    /// Server: the leaf certificate it sent on this handshake, DER, as the library says
    /// (OpenSSL, GnuTLS) or as the certificate resolver chose it (rustls): among several, the
    /// one the client's name and what it supports selected. `None` on a resumed handshake,
    /// where no certificate is sent, and on clients.
    ///
    /// Shared rather than owned: every connection that was sent the same certificate holds one
    /// copy, the one the server made of each certificate it was configured with (or, for a
    /// certificate it does not know, [`share_certificate`]'s).
    pub local_certificate: Option<Arc<[u8]>>,
}

impl SessionInfo {
    /// A report for `side` with nothing negotiated yet: the backend fills in what its library
    /// says.
    pub fn new(side: Side, protocol: ProtocolVersion) -> Self {
        Self {
            side,
            protocol,
            cipher: CipherNames::default(),
            resumption: Resumption::SUPPORTED,
            resumed: false,
            verification: Verification::NotChecked,
            verified_by: VerifiedBy::Nothing,
            ocsp: OcspStatus::NotRequested,
            ocsp_detail: None,
            peer_certificates: no_chain(),
            sni: None,
            alpn: None,
            ticket_lifetime: None,
            no_offer: None,
            ticket_refused: None,
            peer_dn: None,
            local_certificate: None,
        }
    }

    /// Exim's `$tls_{in,out}_certificate_verified`: `Some(true)` when the peer's certificate
    /// verified on this connection (or, under a policy that carries it, on the session it
    /// resumed), `Some(false)` when it was checked and failed, `None` (unset) when nothing was
    /// checked: no certificate, or a resumed session whose check the library skipped.
    pub fn certificate_verified(&self) -> Option<bool> {
        match self.verification {
            Verification::Verified => Some(true),
            Verification::Failed => Some(false),
            Verification::NotChecked => None,
        }
    }

    /// Server: Exim's ACL condition `verify = certificate`, true only when the client's
    /// certificate is reported verified.
    pub fn verify_certificate(&self) -> bool {
        self.verification == Verification::Verified
    }

    /// Exim's `X=` log element: the Exim cipher string, with `*` when resumed.
    pub fn exim_x(&self) -> String {
        if self.resumed {
            format!("{}*", self.cipher.exim)
        } else {
            self.cipher.exim.to_string()
        }
    }
}

/// The empty chain.
///
/// An empty `Arc<[_]>` made per connection would still allocate, and one empty chain shared by
/// the whole process would have every report raise and drop one count that every thread
/// writes: each thread hands out its own (a thread ending gives a new one to those it has
/// left, and a report dropped on another thread lowers the count of the thread that made it).
fn no_chain() -> Arc<[Vec<u8>]> {
    thread_local! {
        static EMPTY: Arc<[Vec<u8>]> = Arc::from(Vec::new());
    }
    EMPTY
        .try_with(Arc::clone)
        .unwrap_or_else(|_| Arc::from(Vec::new()))
}

/// Whether `kept` holds the same certificates as `chain`, byte for byte.
fn same_chain<C: AsRef<[u8]>>(kept: &[Vec<u8>], chain: &[C]) -> bool {
    kept.len() == chain.len()
        && kept
            .iter()
            .zip(chain)
            .all(|(kept, new)| kept.as_slice() == new.as_ref())
}

/// `chain` (leaf first, DER) as a [`SessionInfo::peer_certificates`] value shared with every
/// connection made on this thread that received the same chain.
///
/// Each thread keeps the chain it was given last; a connection given the same bytes gets that
/// copy (a comparison of the bytes, no allocation), any other chain becomes the one kept. A
/// client talking to one server, or a server whose clients share a certificate, then holds one
/// chain per thread however many connections are open, as the TLS library itself holds its
/// own per connection. Per thread, not per process: the copy's reference count is written by
/// every connection that takes it and every one that drops it, and a count shared by every
/// thread would be written by all of them, handshake after handshake (as the empty chain is
/// per thread).
pub fn share_chain<C: AsRef<[u8]>>(chain: &[C]) -> Arc<[Vec<u8>]> {
    thread_local! {
        static THREAD_LAST: std::cell::RefCell<Option<Arc<[Vec<u8>]>>> =
            const { std::cell::RefCell::new(None) };
    }
    if chain.is_empty() {
        return no_chain();
    }
    let found = THREAD_LAST.try_with(|last| {
        last.try_borrow().ok().and_then(|last| {
            last.as_ref()
                .filter(|kept| same_chain(kept, chain))
                .map(Arc::clone)
        })
    });
    if let Ok(Some(kept)) = found {
        return kept;
    }
    let new: Arc<[Vec<u8>]> = chain.iter().map(|c| c.as_ref().to_vec()).collect();
    // A thread ending (or a call from inside a borrow, which cannot happen) keeps nothing.
    let _ = THREAD_LAST.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some(Arc::clone(&new));
        }
    });
    new
}

/// `der` (one certificate) as a [`SessionInfo::local_certificate`] value shared with every
/// connection that was sent the same certificate.
///
/// The last few certificates this process was given (a server's certificates, chosen by SNI
/// and by what the client supports) are kept; the same bytes again get the kept copy.
pub fn share_certificate(der: &[u8]) -> Arc<[u8]> {
    const KEPT: usize = 8;
    static LAST: Mutex<Vec<Arc<[u8]>>> = Mutex::new(Vec::new());
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(kept) = last.iter().find(|kept| ***kept == *der) {
        return Arc::clone(kept);
    }
    let new: Arc<[u8]> = der.into();
    if last.len() == KEPT {
        last.remove(0);
    }
    last.push(Arc::clone(&new));
    new
}

/// The subject DN of a DER certificate in RFC 4514 form (`CN=client,O=Example`), or `None`
/// when the bytes are not a certificate.
pub fn subject_dn(der: &[u8]) -> Option<String> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    Some(cert.tbs_certificate.subject.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held by the tests that share chains: the chain the process keeps is theirs alone while
    /// one runs.
    static SHARING: Mutex<()> = Mutex::new(());

    #[test]
    fn exim_cipher_string_is_what_format_gives() {
        for version in [
            ProtocolVersion::Tls12,
            ProtocolVersion::Tls13,
            ProtocolVersion::Other(0x0301),
        ] {
            for bits in [0, 1, 9, 10, 99, 100, 128, 256, 1_000, 65_535, u32::MAX] {
                let name = "ECDHE-ECDSA-AES256-GCM-SHA384";
                assert_eq!(
                    exim_cipher_string(version, name, bits),
                    format!("{version}:{name}:{bits}")
                );
            }
        }
    }

    #[test]
    fn equal_chains_share_one_copy_and_others_do_not() {
        let _one = SHARING.lock().unwrap_or_else(|p| p.into_inner());
        let a = [b"leaf-a".to_vec(), b"intermediate".to_vec()];
        let b = [b"leaf-b".to_vec(), b"intermediate".to_vec()];
        let first = share_chain(&a);
        // The other tests that share chains wait for this one: nothing replaces the kept chain.
        assert!(Arc::ptr_eq(&first, &share_chain(&a)));
        assert_eq!(&*first, &a[..]);
        let other = share_chain(&b);
        assert_eq!(&*other, &b[..]);
        assert!(!Arc::ptr_eq(&first, &other));
        assert!(share_chain::<Vec<u8>>(&[]).is_empty());
        let leaf = share_certificate(b"leaf-a");
        assert!(Arc::ptr_eq(&leaf, &share_certificate(b"leaf-a")));
        assert!(!Arc::ptr_eq(&leaf, &share_certificate(b"leaf-b")));
        assert_eq!(&*share_certificate(b"leaf-b"), b"leaf-b");
        assert!(SessionInfo::new(Side::Client, ProtocolVersion::Tls13)
            .peer_certificates
            .is_empty());
    }

    /// Each thread keeps its own copy of a chain: the same bytes again on one thread give its
    /// copy, another thread makes its own (no count written by both), and a thread that was
    /// given another chain meanwhile does not hand out a stale one.
    #[test]
    fn each_thread_keeps_its_own_copy_of_a_chain() {
        let _one = SHARING.lock().unwrap_or_else(|p| p.into_inner());
        let c = [b"leaf-c".to_vec(), b"ca-c".to_vec()];
        let d = [b"leaf-d".to_vec()];
        let here = share_chain(&c);
        assert!(Arc::ptr_eq(
            &here,
            &share_chain(&[&b"leaf-c"[..], &b"ca-c"[..]])
        ));
        let there = std::thread::spawn(move || {
            let there = share_chain(&[b"leaf-c".to_vec(), b"ca-c".to_vec()]);
            // The same bytes twice on that thread: its own memory, the same copy.
            assert!(Arc::ptr_eq(
                &there,
                &share_chain(&[&b"leaf-c"[..], &b"ca-c"[..]])
            ));
            there
        })
        .join()
        .expect("thread");
        assert!(!Arc::ptr_eq(&here, &there), "another thread's own copy");
        assert_eq!(here, there);
        let other = share_chain(&d);
        assert_eq!(&*other, &d[..]);
        assert!(!Arc::ptr_eq(&here, &other));
        assert_eq!(&*share_chain(&c), &c[..]);
        // A chain differing in one byte of its last certificate is another chain.
        assert_eq!(&*share_chain(&[&b"leaf-c"[..], &b"ca-C"[..]])[1], b"ca-C");
    }

    /// Reports on one thread share its empty chain; another thread has its own, so no count
    /// is written by both.
    #[test]
    fn the_empty_chain_is_per_thread() {
        let a = SessionInfo::new(Side::Server, ProtocolVersion::Tls12).peer_certificates;
        let b = SessionInfo::new(Side::Client, ProtocolVersion::Tls12).peer_certificates;
        assert!(a.is_empty());
        assert!(Arc::ptr_eq(&a, &b));
        assert!(Arc::ptr_eq(&a, &share_chain::<&[u8]>(&[])));
        let there = std::thread::spawn(|| {
            SessionInfo::new(Side::Server, ProtocolVersion::Tls12).peer_certificates
        })
        .join()
        .expect("thread");
        assert!(there.is_empty());
        assert!(!Arc::ptr_eq(&a, &there));
        assert_eq!(a, there);
    }

    #[test]
    fn gnutls_desc_transformation_matches_the_reference_examples() {
        let cases = [
            (
                "(TLS1.3)-(ECDHE-SECP256R1)-(RSA-PSS-RSAE-SHA256)-(AES-256-GCM)",
                "TLS1.3:ECDHE_SECP256R1__RSA_PSS_RSAE_SHA256__AES_256_GCM:256",
            ),
            (
                "(TLS1.2)-(ECDHE-SECP256R1)-(RSA-SHA256)-(AES-256-GCM)",
                "TLS1.2:ECDHE_SECP256R1__RSA_SHA256__AES_256_GCM:256",
            ),
            (
                "(TLS1.2)-(ECDHE-SECP256R1)-(AES-256-GCM)",
                "TLS1.2:ECDHE_SECP256R1__AES_256_GCM:256",
            ),
            (
                "(TLS1.3)-(ECDHE-PSK-SECP256R1)-(AES-256-GCM)-(AEAD)",
                "TLS1.3:ECDHE_PSK_SECP256R1__AES_256_GCM__AEAD:256",
            ),
        ];
        for (desc, exim) in cases {
            assert_eq!(exim_cipher_from_gnutls_desc(desc, 256), exim, "{desc}");
        }
    }

    #[test]
    fn gnutls_desc_transformation_is_literal_on_odd_input() {
        assert_eq!(exim_cipher_from_gnutls_desc("", 0), "::0");
        assert_eq!(exim_cipher_from_gnutls_desc("(TLS1.2)", 128), "TLS1.2::128");
        // An empty group still gets its separator.
        assert_eq!(
            exim_cipher_from_gnutls_desc("(TLS1.2)-()-(AES)", 1),
            "TLS1.2:__AES:1"
        );
        // Truncated input never panics.
        assert_eq!(exim_cipher_from_gnutls_desc("(TLS1.2)-(A", 1), "TLS1.2:A:1");
        assert_eq!(exim_cipher_from_gnutls_desc("(TLS1.2)-", 1), "TLS1.2::1");
    }

    #[test]
    fn codes_roundtrip() {
        for code in 0..=4 {
            assert_eq!(OcspStatus::from_code(code).map(|s| s.code()), Some(code));
        }
        assert_eq!(OcspStatus::from_code(5), None);
        for v in [
            Verification::Failed,
            Verification::NotChecked,
            Verification::Verified,
        ] {
            assert_eq!(Verification::from_code(v.code()), Some(v));
        }
        assert_eq!(Verification::from_code(3), None);
    }

    #[test]
    fn exim_x_marks_resumption() {
        let mut info = SessionInfo {
            side: Side::Server,
            protocol: ProtocolVersion::Tls13,
            cipher: CipherNames {
                native: "TLS13_AES_256_GCM_SHA384".into(),
                exim: "TLS1.3:TLS_AES_256_GCM_SHA384:256".into(),
                iana: "TLS_AES_256_GCM_SHA384".into(),
                bits: 256,
            },
            resumption: Resumption::all(),
            resumed: true,
            verification: Verification::NotChecked,
            verified_by: VerifiedBy::Nothing,
            ocsp: OcspStatus::NotRequested,
            ocsp_detail: None,
            peer_certificates: Vec::new().into(),
            sni: None,
            alpn: None,
            ticket_lifetime: None,
            no_offer: None,
            ticket_refused: None,
            peer_dn: None,
            local_certificate: None,
        };
        assert_eq!(info.exim_x(), "TLS1.3:TLS_AES_256_GCM_SHA384:256*");
        info.resumed = false;
        assert_eq!(info.exim_x(), "TLS1.3:TLS_AES_256_GCM_SHA384:256");
    }
}
