//! The client session cache's key and entry, and the entry's binary codec.

use core::fmt;
use std::borrow::Cow;
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ring::digest;

pub mod deferred;
pub mod kept;
pub mod store;

use crate::clock::UnixTime;
use crate::dane::{DaneAuthority, TlsaRecord};
pub use crate::error::CodecError;
use crate::info::{OcspStatus, Verification};
use crate::kind::BackendKind;

/// The load-balancer name Exim uses for TLS-on-connect, where no EHLO response names a host.
pub const NEVER_LB: &str = "never-LB";

/// Which cached session a connection may offer: SHA-256 over everything that must match for a
/// session to be reused, as Exim builds its hints-database key.
///
/// Any change in any input (the load balancer's host name from the EHLO response, the DANE
/// answer, the server's address and port, our local address, library options, required
/// ciphers, SNI, ALPN) gives another key, so no session is offered.
///
/// ```
/// use tlsresume_core::CacheKey;
///
/// let peer = "192.0.2.10:25".parse().unwrap();
/// let a = CacheKey::builder(peer).sni("mx.example.net").lb_name("mx1.example.net").build();
/// let b = CacheKey::builder(peer).sni("mx.example.net").lb_name("mx2.example.net").build();
/// assert_ne!(a, b);
/// assert_eq!(a.to_hex().len(), 64);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// Starts a key for a connection to `peer`.
    pub fn builder(peer: SocketAddr) -> CacheKeyBuilder {
        CacheKeyBuilder {
            lb_name: Cow::Borrowed(NEVER_LB),
            dane: None,
            peer,
            local: None,
            options: Cow::Borrowed(""),
            ciphers: Cow::Borrowed(""),
            sni: None,
            alpn: Vec::new(),
        }
    }

    /// A key from its 32 digest bytes (as stored).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, as Exim names its hints records.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({self})")
    }
}

/// The inputs of a [`CacheKey`].
///
/// Equal inputs give equal keys, so [`build`](Self::build) remembers the last few keys it made
/// on each thread: a client connecting to the same server again (the case resumption is for)
/// gets its key by comparing inputs instead of hashing them again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheKeyBuilder {
    lb_name: Cow<'static, str>,
    dane: Option<Vec<u8>>,
    peer: SocketAddr,
    local: Option<IpAddr>,
    options: Cow<'static, str>,
    ciphers: Cow<'static, str>,
    sni: Option<String>,
    alpn: Vec<Vec<u8>>,
}

impl CacheKeyBuilder {
    /// The host name the server gave in its EHLO response (differs per node behind a load
    /// balancer). Defaults to [`NEVER_LB`].
    pub fn lb_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.lb_name = name.into();
        self
    }

    /// The DANE TLSA answer, when DANE is in use.
    pub fn dane(mut self, tlsa: impl Into<Vec<u8>>) -> Self {
        self.dane = Some(tlsa.into());
        self
    }

    /// Our local (sending) address.
    pub fn local(mut self, ip: IpAddr) -> Self {
        self.local = Some(ip);
        self
    }

    /// The TLS library options in force.
    pub fn options(mut self, options: impl Into<Cow<'static, str>>) -> Self {
        self.options = options.into();
        self
    }

    /// The required ciphers.
    pub fn ciphers(mut self, ciphers: impl Into<Cow<'static, str>>) -> Self {
        self.ciphers = ciphers.into();
        self
    }

    /// The SNI sent.
    pub fn sni(mut self, sni: impl Into<String>) -> Self {
        self.sni = Some(sni.into());
        self
    }

    /// The ALPN protocols offered.
    pub fn alpn(mut self, protocols: &[Vec<u8>]) -> Self {
        self.alpn = protocols.to_vec();
        self
    }

    /// The key.
    ///
    /// The digest of inputs seen recently on this thread is taken from a small per-thread memo
    /// (the 8 most recently used input sets, compared field by field), which
    /// costs a few hundred instructions where the SHA-256 and address formatting cost about
    /// ten thousand; any other input is hashed and remembered in place of the least recently
    /// used one.
    pub fn build(&self) -> CacheKey {
        self.inputs().key()
    }

    /// The inputs, borrowed.
    fn inputs(&self) -> KeyInputs<'_> {
        KeyInputs {
            peer: self.peer,
            local: self.local,
            sni: self.sni.as_deref(),
            lb_name: &self.lb_name,
            options: &self.options,
            ciphers: &self.ciphers,
            dane: self.dane.as_deref(),
            alpn: &self.alpn,
        }
    }
}

/// The inputs of a [`CacheKey`], borrowed from wherever the caller holds them: a client's
/// connection makes its key from its settings and parameters without copying them into a
/// [`CacheKeyBuilder`] (the per-thread memo copies them only when it remembers a new set).
/// The same inputs give the same key as the builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyInputs<'a> {
    /// The server's address (compared first: the field that differs most often).
    pub(crate) peer: SocketAddr,
    pub(crate) local: Option<IpAddr>,
    pub(crate) sni: Option<&'a str>,
    pub(crate) lb_name: &'a str,
    pub(crate) options: &'a str,
    pub(crate) ciphers: &'a str,
    pub(crate) dane: Option<&'a [u8]>,
    pub(crate) alpn: &'a [Vec<u8>],
}

impl KeyInputs<'_> {
    /// The key (see [`CacheKeyBuilder::build`]).
    pub(crate) fn key(&self) -> CacheKey {
        MEMO.try_with(|memo| {
            let Ok(mut memo) = memo.try_borrow_mut() else {
                return self.digest();
            };
            // Most recently used last, and looked at first: a client connecting to the same
            // server again finds its key in one comparison and moves nothing.
            if let Some(i) = memo
                .iter()
                .rposition(|(inputs, _)| inputs.inputs() == *self)
            {
                let key = memo[i].1;
                if i + 1 != memo.len() {
                    let hit = memo.remove(i);
                    memo.push(hit);
                }
                return key;
            }
            self.remember(&mut memo)
        })
        .unwrap_or_else(|_| self.digest())
    }

    /// Hashes inputs not in the memo and remembers them in place of the least recently used:
    /// out of line, as a connection to a server seen before does not come here.
    #[cold]
    #[inline(never)]
    fn remember(&self, memo: &mut Vec<(CacheKeyBuilder, CacheKey)>) -> CacheKey {
        let key = self.digest();
        if memo.len() >= MEMO_ENTRIES {
            memo.remove(0);
        }
        memo.push((self.to_builder(), key));
        key
    }

    /// The inputs, owned.
    fn to_builder(self) -> CacheKeyBuilder {
        CacheKeyBuilder {
            lb_name: Cow::Owned(self.lb_name.to_owned()),
            dane: self.dane.map(<[u8]>::to_vec),
            peer: self.peer,
            local: self.local,
            options: Cow::Owned(self.options.to_owned()),
            ciphers: Cow::Owned(self.ciphers.to_owned()),
            sni: self.sni.map(str::to_owned),
            alpn: self.alpn.to_vec(),
        }
    }

    /// SHA-256 over the inputs, each length-prefixed and tagged.
    #[inline(never)]
    fn digest(&self) -> CacheKey {
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut field = |tag: u8, bytes: &[u8]| {
            ctx.update(&[tag]);
            ctx.update(&u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_be_bytes());
            ctx.update(bytes);
        };
        field(b'v', b"tlsresume cache key 1");
        field(b'l', self.lb_name.as_bytes());
        if let Some(dane) = self.dane {
            field(b'd', dane);
        }
        field(b'p', self.peer.to_string().as_bytes());
        if let Some(local) = self.local {
            field(b's', local.to_string().as_bytes());
        }
        field(b'o', self.options.as_bytes());
        field(b'c', self.ciphers.as_bytes());
        if let Some(sni) = self.sni {
            field(b'n', sni.as_bytes());
        }
        for protocol in self.alpn {
            field(b'a', protocol);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        CacheKey(out)
    }
}

/// How many input sets [`CacheKeyBuilder::build`] remembers per thread.
const MEMO_ENTRIES: usize = 8;

thread_local! {
    /// Recently built keys and their inputs, most recently used last.
    static MEMO: RefCell<Vec<(CacheKeyBuilder, CacheKey)>> = const { RefCell::new(Vec::new()) };
}

/// A cached client session and what was known about it when it was stored.
///
/// `#[non_exhaustive]`: made with [`CacheEntry::new`] (the fields are public to read and set),
/// so it can grow without breaking stores and tests.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheEntry {
    /// When the session was stored.
    pub stored_at: UnixTime,
    /// The ticket lifetime hint the server gave (whole seconds).
    pub lifetime_hint: Duration,
    /// Verification was forced through (Exim's `tls_try_verify_hosts`), so a resumption must
    /// not report the peer as verified.
    pub verify_override: bool,
    /// The certificate verification result of the handshake that made the session.
    pub verification: Verification,
    /// The OCSP status of the handshake that made the session.
    pub ocsp: OcspStatus,
    /// The TLSA record that authenticated the server on the handshake that made the session,
    /// when DANE did (a resumption under the hardened policy reports it).
    pub dane: Option<DaneAuthority>,
    /// The backend whose serialised session this is; other backends cannot use it.
    pub backend: BackendKind,
    /// The TLS version of the session, `0x0303` or `0x0304`.
    pub protocol: u16,
    /// The backend's serialised session (opaque).
    pub session: Vec<u8>,
}

impl CacheEntry {
    /// An entry for `session` (a `backend`'s serialised session of TLS version `protocol`,
    /// `0x0303` or `0x0304`) stored at `stored_at`, valid for `lifetime_hint`; verification
    /// not checked, OCSP not requested, no verify-override: set those fields when they were.
    pub fn new(
        backend: BackendKind,
        protocol: u16,
        session: Vec<u8>,
        stored_at: UnixTime,
        lifetime_hint: Duration,
    ) -> Self {
        Self {
            stored_at,
            lifetime_hint,
            verify_override: false,
            verification: Verification::NotChecked,
            ocsp: OcspStatus::NotRequested,
            dane: None,
            backend,
            protocol,
            session,
        }
    }

    /// When the entry stops being offered (store time + lifetime hint).
    pub fn expires_at(&self) -> UnixTime {
        self.stored_at + self.lifetime_hint
    }

    /// Whether the lifetime hint has passed at `now`.
    pub fn is_expired(&self, now: UnixTime) -> bool {
        now >= self.expires_at()
    }

    /// Encodes the entry (versioned, checksummed) for a store that keeps bytes.
    ///
    /// An entry without a DANE authority is written in version 1 (which every build reads);
    /// one with it in version 2, which adds the record and its depth after the protocol.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.session.len() + HEADER_LEN + CHECK_LEN);
        out.extend_from_slice(MAGIC);
        out.push(if self.dane.is_some() {
            CODEC_VERSION_DANE
        } else {
            CODEC_VERSION
        });
        self.encode_fields(&mut out);
        let len = u32::try_from(self.session.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.session);
        let check = digest::digest(&digest::SHA256, &out);
        out.extend_from_slice(&check.as_ref()[..CHECK_LEN]);
        out
    }

    /// Every field but the session, as [`encode`](Self::encode) writes them after the version
    /// (store time, lifetime hint, verify-override, verification, OCSP status, backend,
    /// protocol, then the DANE authority when there is one): what the stored session's seal
    /// covers besides the session ([`SessionKey::seal_session`](crate::SessionKey::seal_session)).
    pub(crate) fn encode_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.stored_at.as_micros().to_be_bytes());
        let hint = u32::try_from(self.lifetime_hint.as_secs()).unwrap_or(u32::MAX);
        out.extend_from_slice(&hint.to_be_bytes());
        out.push(u8::from(self.verify_override));
        out.push(self.verification.code());
        out.push(self.ocsp.code());
        out.push(self.backend.code());
        out.extend_from_slice(&self.protocol.to_be_bytes());
        if let Some(dane) = &self.dane {
            // 0xff: the library did not tell the depth.
            out.push(dane.depth.unwrap_or(u8::MAX));
            out.extend_from_slice(&dane.record.to_bytes());
        }
    }

    /// Decodes an entry. Any corruption — wrong magic, unknown version, truncation, a bad
    /// checksum, an unknown status code — is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() < HEADER_LEN + CHECK_LEN {
            return Err(CodecError::Truncated);
        }
        if &bytes[..4] != MAGIC {
            return Err(CodecError::NotAnEntry);
        }
        let version = bytes[4];
        if version != CODEC_VERSION && version != CODEC_VERSION_DANE {
            return Err(CodecError::UnknownVersion(version));
        }
        let (body, check) = bytes.split_at(bytes.len() - CHECK_LEN);
        if &digest::digest(&digest::SHA256, body).as_ref()[..CHECK_LEN] != check {
            return Err(CodecError::Checksum);
        }
        let mut r = Reader(&body[5..]);
        let stored_at = UnixTime::from_micros(u64::from_be_bytes(r.array()?));
        let lifetime_hint = Duration::from_secs(u64::from(u32::from_be_bytes(r.array()?)));
        let verify_override = match r.byte()? {
            0 => false,
            1 => true,
            other => return Err(CodecError::BadField("verify_override", other)),
        };
        let verification = r.byte().and_then(|b| {
            Verification::from_code(b).ok_or(CodecError::BadField("verification", b))
        })?;
        let ocsp = r
            .byte()
            .and_then(|b| OcspStatus::from_code(b).ok_or(CodecError::BadField("ocsp", b)))?;
        let backend = r
            .byte()
            .and_then(|b| BackendKind::from_code(b).ok_or(CodecError::BadField("backend", b)))?;
        let protocol = u16::from_be_bytes(r.array()?);
        let dane = if version == CODEC_VERSION_DANE {
            let depth = Some(r.byte()?).filter(|d| *d != u8::MAX);
            let [usage, selector, matching] = r.array()?;
            let data_len = usize::try_from(u32::from_be_bytes(r.array()?))
                .map_err(|_| CodecError::Truncated)?;
            let data = r.take(data_len)?.to_vec();
            Some(DaneAuthority {
                record: TlsaRecord::new(usage, selector, matching, data),
                depth,
            })
        } else {
            None
        };
        let len =
            usize::try_from(u32::from_be_bytes(r.array()?)).map_err(|_| CodecError::Truncated)?;
        if r.0.len() != len {
            return Err(CodecError::Truncated);
        }
        Ok(Self {
            stored_at,
            lifetime_hint,
            verify_override,
            verification,
            ocsp,
            dane,
            backend,
            protocol,
            session: r.0.to_vec(),
        })
    }
}

impl fmt::Debug for CacheEntry {
    /// Everything but the session bytes, which hold resumption secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheEntry")
            .field("stored_at", &self.stored_at)
            .field("lifetime_hint", &self.lifetime_hint)
            .field("verify_override", &self.verify_override)
            .field("verification", &self.verification)
            .field("ocsp", &self.ocsp)
            .field("dane", &self.dane)
            .field("backend", &self.backend)
            .field("protocol", &format_args!("{:#06x}", self.protocol))
            .field("session_len", &self.session.len())
            .finish()
    }
}

const MAGIC: &[u8; 4] = b"TRSE";
const CODEC_VERSION: u8 = 1;
/// Version 1 with a DANE authority after the protocol.
const CODEC_VERSION_DANE: u8 = 2;
/// magic, version, stored_at, hint, override, verification, ocsp, backend, protocol, length
const HEADER_LEN: usize = 4 + 1 + 8 + 4 + 1 + 1 + 1 + 1 + 2 + 4;
const CHECK_LEN: usize = 8;

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, CodecError> {
        let (first, rest) = self.0.split_first().ok_or(CodecError::Truncated)?;
        self.0 = rest;
        Ok(*first)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        if self.0.len() < N {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        head.try_into().map_err(|_| CodecError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> CacheEntry {
        CacheEntry {
            stored_at: UnixTime::from_secs(1_700_000_000),
            lifetime_hint: Duration::from_secs(7200),
            verify_override: true,
            verification: Verification::Failed,
            ocsp: OcspStatus::Verified,
            dane: None,
            backend: BackendKind::Gnutls,
            protocol: 0x0304,
            session: vec![1, 2, 3, 4, 5],
        }
    }

    #[test]
    fn codec_roundtrips() {
        let e = entry();
        assert_eq!(CacheEntry::decode(&e.encode()), Ok(e));
    }

    #[test]
    fn codec_roundtrips_a_dane_authority_in_version_2() {
        let mut e = entry();
        assert_eq!(e.encode()[4], 1, "no DANE: version 1");
        e.dane = Some(DaneAuthority {
            record: TlsaRecord::new(2, 0, 1, vec![7; 32]),
            depth: Some(1),
        });
        let bytes = e.encode();
        assert_eq!(bytes[4], 2);
        assert_eq!(CacheEntry::decode(&bytes), Ok(e));
        for cut in 0..bytes.len() {
            assert!(CacheEntry::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn codec_reports_each_corruption() {
        let bytes = entry().encode();
        assert_eq!(CacheEntry::decode(&bytes[..10]), Err(CodecError::Truncated));
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(CacheEntry::decode(&bad), Err(CodecError::NotAnEntry));
        let mut bad = bytes.clone();
        bad[4] = 9;
        assert_eq!(CacheEntry::decode(&bad), Err(CodecError::UnknownVersion(9)));
        let mut bad = bytes.clone();
        let last = bad.len() - 12;
        bad[last] ^= 0xff;
        assert_eq!(CacheEntry::decode(&bad), Err(CodecError::Checksum));
    }

    #[test]
    fn expiry_uses_store_time_plus_hint() {
        let e = entry();
        assert!(!e.is_expired(e.stored_at + Duration::from_secs(7199)));
        assert!(e.is_expired(e.stored_at + Duration::from_secs(7200)));
    }

    #[test]
    fn every_key_input_changes_the_key() {
        let peer: SocketAddr = "192.0.2.1:25".parse().expect("addr");
        let base = CacheKey::builder(peer)
            .sni("mx")
            .alpn(&[b"smtp".to_vec()])
            .options("opt")
            .ciphers("c")
            .local("192.0.2.9".parse().expect("ip"));
        let k = base.build();
        assert_eq!(k, base.build());
        let variants = [
            base.clone().lb_name("other").build(),
            base.clone().dane(vec![1]).build(),
            CacheKey::builder("192.0.2.1:26".parse().expect("addr"))
                .sni("mx")
                .alpn(&[b"smtp".to_vec()])
                .options("opt")
                .ciphers("c")
                .local("192.0.2.9".parse().expect("ip"))
                .build(),
            base.clone().local("192.0.2.8".parse().expect("ip")).build(),
            base.clone().options("opt2").build(),
            base.clone().ciphers("c2").build(),
            base.clone().sni("mx2").build(),
            base.clone().alpn(&[b"h2".to_vec()]).build(),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(*v, k, "variant {i}");
        }
        // Length prefixes keep field boundaries: ("ab","c") differs from ("a","bc").
        let p = CacheKey::builder(peer);
        assert_ne!(
            p.clone().options("ab").ciphers("c").build(),
            p.options("a").ciphers("bc").build()
        );
    }

    #[test]
    fn remembered_keys_are_the_digest_of_their_inputs() {
        // More input sets than the memo holds, built twice in a row and again after eviction:
        // every key equals the freshly computed digest of its own inputs.
        let builders: Vec<CacheKeyBuilder> = (0..(MEMO_ENTRIES as u16 * 2 + 1))
            .map(|port| {
                CacheKey::builder(SocketAddr::from(([192, 0, 2, 1], port)))
                    .sni("mx")
                    .options(format!("o{}", port % 3))
            })
            .collect();
        for _ in 0..3 {
            for b in &builders {
                assert_eq!(b.build(), b.inputs().digest());
                assert_eq!(b.build(), b.inputs().digest());
            }
        }
        let keys: std::collections::BTreeSet<CacheKey> =
            builders.iter().map(CacheKeyBuilder::build).collect();
        assert_eq!(keys.len(), builders.len());
        // The key of a fixed input set is the one the codec has always given (written down
        // before the memo existed), so keys in persistent stores stay valid.
        let fixed = CacheKey::builder("192.0.2.1:25".parse().expect("addr")).sni("mx");
        for _ in 0..2 {
            assert_eq!(
                fixed.build().to_hex(),
                "fe8b2f7263f7dc4ef9a8a311f51ef70370341f365919aa3f717cb3bbcfdb4d3b"
            );
        }
    }

    proptest! {
        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = CacheEntry::decode(&bytes);
        }

        #[test]
        fn any_corruption_of_an_entry_is_detected(pos in 0usize..1000, flip in 1u8..=255) {
            let bytes = entry().encode();
            let mut bad = bytes.clone();
            let i = pos % bad.len();
            bad[i] ^= flip;
            prop_assert!(CacheEntry::decode(&bad).is_err());
        }
    }
}
