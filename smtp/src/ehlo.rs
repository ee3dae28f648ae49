//! Early pipelining (PIPECONNECT): the client's EHLO-response cache and its rules.
//!
//! A client that has seen a server offer both `PIPELINING` and `PIPECONNECT` may, on a later
//! connection, send EHLO (and STARTTLS, or MAIL/RCPT/DATA) before the server's banner arrives,
//! trusting what it remembers of the server's EHLO response. This module holds what is
//! remembered ([`EhloEntry`], parsed from real replies by [`EhloResponse::parse`]), where
//! ([`EhloKey`], [`EhloStore`], [`MemoryEhloStore`]), its byte form
//! ([`EhloEntry::encode`]/[`EhloEntry::decode`]), and every decision about it
//! ([`EhloCache`]), each taken on an injected [`Clock`](tlsresume_core::Clock) so expiry is testable on a virtual one.
//!
//! The rules are Exim's (`hosts_pipe_connect`, `retry_data_expire`):
//!
//! - an entry is written only when the server offered PIPELINING and PIPECONNECT;
//! - it is deleted, unused, once older than `retry_data_expire` (default 7 days);
//! - when the real EHLO response on an early connection differs from the entry: features or
//!   AUTH changed with PIPECONNECT still offered → rewritten; PIPECONNECT gone → deleted;
//!   LIMITS changed → deleted; a bad banner or EHLO response → deleted.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tlsresume_core::{ManualClock, UnixTime};
//! use tlsresume_smtp::ehlo::*;
//!
//! let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
//! let cache = EhloCache::new(Arc::new(MemoryEhloStore::default()), Arc::new(clock.clone()));
//! let key = EhloKey::new("192.0.2.1:25".parse().unwrap());
//! let ehlo = EhloResponse::parse(&["250-mx.example.net", "250-PIPELINING", "250 PIPECONNECT"])?;
//! cache.record(&key, Phase::Clear, &ehlo)?;
//! assert!(cache.lookup(&key)?.is_some_and(|e| e.permits_early(Phase::Clear)));
//! clock.advance(Duration::from_secs(7 * 24 * 3600));
//! assert!(cache.lookup(&key)?.is_none(), "expired entries are deleted");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ring::digest;

use tlsresume_core::cache::CodecError;
use tlsresume_core::model::hostlist::canonical_ip;
use tlsresume_core::{SharedClock, StoreError, UnixTime};

/// Exim's default `retry_data_expire`: how long a cached EHLO response is trusted.
pub const DEFAULT_RETRY_DATA_EXPIRE: Duration = Duration::from_secs(7 * 24 * 3600);

bitflags::bitflags! {
    /// The EHLO keywords whose change matters to early pipelining: the ones Exim tracks in its
    /// cache (`ehlo_response()` in its smtp transport), plus 8BITMIME.
    ///
    /// ```
    /// use tlsresume_smtp::ehlo::EhloFeatures;
    ///
    /// assert_eq!(EhloFeatures::from_keyword("x_pipe_connect"), Some(EhloFeatures::PIPECONNECT));
    /// assert_eq!(EhloFeatures::from_keyword("XCLIENT"), None);
    /// ```
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct EhloFeatures: u16 {
        /// `STARTTLS`.
        const STARTTLS = 0x0001;
        /// `CHUNKING` (BDAT, RFC 3030).
        const CHUNKING = 0x0002;
        /// `PRDR`.
        const PRDR = 0x0004;
        /// `DSN` (RFC 3461).
        const DSN = 0x0008;
        /// `PIPELINING` (RFC 2920).
        const PIPELINING = 0x0010;
        /// `SIZE` (RFC 1870).
        const SIZE = 0x0020;
        /// `SMTPUTF8` (RFC 6531).
        const SMTPUTF8 = 0x0040;
        /// `PIPECONNECT`, or its older names `X_PIPE_CONNECT` and `PIPE_CONNECT`.
        const PIPECONNECT = 0x0080;
        /// `8BITMIME` (RFC 6152).
        const EIGHTBITMIME = 0x0100;
    }
}

impl EhloFeatures {
    /// The feature an EHLO keyword names (case-insensitive), if it is one tracked here.
    pub fn from_keyword(keyword: &str) -> Option<Self> {
        let k = keyword.to_ascii_uppercase();
        Some(match k.as_str() {
            "STARTTLS" => Self::STARTTLS,
            "CHUNKING" => Self::CHUNKING,
            "PRDR" => Self::PRDR,
            "DSN" => Self::DSN,
            "PIPELINING" => Self::PIPELINING,
            "SIZE" => Self::SIZE,
            "SMTPUTF8" => Self::SMTPUTF8,
            "PIPECONNECT" | "X_PIPE_CONNECT" | "PIPE_CONNECT" => Self::PIPECONNECT,
            "8BITMIME" => Self::EIGHTBITMIME,
            _ => return None,
        })
    }

    /// Both PIPELINING and PIPECONNECT: what early pipelining needs.
    pub fn permits_early(self) -> bool {
        self.contains(Self::PIPELINING | Self::PIPECONNECT)
    }
}

/// The values of the `LIMITS` keyword (RFC 9422); `None` for a limit not given.
///
/// Unknown limit names are ignored, as RFC 9422 requires; a value that is not a decimal
/// number that fits is ignored too (the limits are advisory).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    /// `MAILMAX`: transactions per connection.
    pub mail_max: Option<u32>,
    /// `RCPTMAX`: recipients per transaction.
    pub rcpt_max: Option<u32>,
    /// `RCPTDOMAINMAX`: recipient domains per transaction.
    pub rcpt_domain_max: Option<u32>,
}

impl Limits {
    /// Parses the parameters of a `LIMITS` line (the words after the keyword).
    pub fn parse(params: &str) -> Self {
        let mut out = Self::default();
        for word in params.split_ascii_whitespace() {
            let Some((name, value)) = word.split_once('=') else {
                continue;
            };
            let valid = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
            let Some(value) = valid.then(|| value.parse::<u32>().ok()).flatten() else {
                continue;
            };
            match name.to_ascii_uppercase().as_str() {
                "MAILMAX" => out.mail_max = Some(value),
                "RCPTMAX" => out.rcpt_max = Some(value),
                "RCPTDOMAINMAX" => out.rcpt_domain_max = Some(value),
                _ => {}
            }
        }
        out
    }

    /// Whether no limit is given.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Why lines are not a successful EHLO response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EhloParseError {
    /// No line at all.
    #[error("empty EHLO response")]
    Empty,
    /// A line does not start with `250` followed by `-`, a space or the end of the line.
    #[error("EHLO response line {line} is not a 250 reply line: '{text}'")]
    NotOk {
        /// The line's index (0-based).
        line: usize,
        /// The line, cut to 80 characters.
        text: String,
    },
    /// A line before the last one ends the reply, or the last one continues it.
    #[error("EHLO response line {line} has the wrong continuation mark")]
    Continuation {
        /// The line's index (0-based).
        line: usize,
    },
}

/// A successful multi-line EHLO reply, parsed.
///
/// The first line names the server (its first word; a load balancer's node shows here); each
/// further line is a keyword and its parameters.
///
/// ```
/// use tlsresume_smtp::ehlo::{EhloFeatures, EhloResponse};
///
/// let r = EhloResponse::parse(&[
///     "250-mx.example.net Hello",
///     "250-PIPELINING",
///     "250-AUTH PLAIN login",
///     "250-LIMITS MAILMAX=5 RCPTMAX=100",
///     "250 X_PIPE_CONNECT",
/// ])?;
/// assert_eq!(r.host, "mx.example.net");
/// assert!(r.features.permits_early());
/// assert_eq!(r.auth, ["LOGIN", "PLAIN"]);
/// assert_eq!(r.limits.rcpt_max, Some(100));
/// # Ok::<(), tlsresume_smtp::ehlo::EhloParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EhloResponse {
    /// The server's name from the first line (empty if it gave none).
    pub host: String,
    /// Every keyword offered, upper-cased, in the order given.
    pub keywords: Vec<String>,
    /// The tracked features offered.
    pub features: EhloFeatures,
    /// The AUTH mechanisms offered, upper-cased, sorted, without duplicates.
    pub auth: Vec<String>,
    /// The LIMITS values offered.
    pub limits: Limits,
    /// The largest message the server takes, from `SIZE n` (RFC 1870); `None` when SIZE is
    /// not offered or gives no limit (`SIZE`, `SIZE 0`).
    pub size: Option<u64>,
}

impl EhloResponse {
    /// Parses the lines of a reply as read from the wire (`250-…`, …, `250 …`, CR LF removed).
    pub fn parse<L: AsRef<str>>(lines: &[L]) -> Result<Self, EhloParseError> {
        if lines.is_empty() {
            return Err(EhloParseError::Empty);
        }
        let mut out = Self {
            host: String::new(),
            keywords: Vec::new(),
            features: EhloFeatures::empty(),
            auth: Vec::new(),
            limits: Limits::default(),
            size: None,
        };
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let line = line.as_ref();
            let bytes = line.as_bytes();
            if !bytes.starts_with(b"250") || !matches!(bytes.get(3), None | Some(b' ' | b'-')) {
                return Err(EhloParseError::NotOk {
                    line: i,
                    text: line.chars().take(80).collect(),
                });
            }
            let continues = bytes.get(3) == Some(&b'-');
            if continues != (i != last) {
                return Err(EhloParseError::Continuation { line: i });
            }
            let text = line.get(4..).unwrap_or("").trim();
            if i == 0 {
                out.host = text
                    .split_ascii_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                continue;
            }
            out.keyword(text);
        }
        out.auth.sort();
        out.auth.dedup();
        // The cache entry keeps at most this many; a server offering more is not one whose
        // extra mechanisms matter, and the parsed view must be what the entry stores.
        out.auth.truncate(MAX_AUTH_MECHANISMS);
        Ok(out)
    }

    fn keyword(&mut self, text: &str) {
        // `AUTH=LOGIN` is the pre-RFC 2554 form some servers still send beside `AUTH`.
        let (word, params) = match text.split_once([' ', '=']) {
            Some((w, p)) => (w, p),
            None => (text, ""),
        };
        if word.is_empty() {
            return;
        }
        let word = word.to_ascii_uppercase();
        if let Some(f) = EhloFeatures::from_keyword(&word) {
            self.features |= f;
        }
        match word.as_str() {
            // SASL mechanism names are 1 to 20 of A-Z, 0-9, '-', '_' (RFC 4422 §3.1); anything
            // else is not a mechanism a client could use (and would not fit the cache entry).
            "AUTH" => self.auth.extend(
                params
                    .split_ascii_whitespace()
                    .map(str::to_ascii_uppercase)
                    .filter(|m| is_sasl_mechanism(m)),
            ),
            "LIMITS" => self.limits = Limits::parse(params),
            "SIZE" => self.size = params.trim().parse::<u64>().ok().filter(|&n| n > 0),
            _ => {}
        }
        self.keywords.push(word);
    }

    /// What the cache keeps of this response.
    pub fn view(&self) -> EhloView {
        EhloView {
            features: self.features,
            auth: self.auth.clone(),
            limits: self.limits,
        }
    }
}

/// Which EHLO response: the one in clear or the one under TLS (after STARTTLS, or on a
/// TLS-on-connect port). The draft requires a client to keep them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Before any TLS.
    Clear,
    /// Under TLS.
    Tls,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Clear => "cleartext",
            Phase::Tls => "TLS",
        })
    }
}

/// What is remembered of one EHLO response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct EhloView {
    /// The tracked features.
    pub features: EhloFeatures,
    /// The AUTH mechanisms, upper-cased and sorted.
    pub auth: Vec<String>,
    /// The LIMITS values.
    pub limits: Limits,
}

impl EhloView {
    /// Whether this response allows early pipelining (PIPELINING and PIPECONNECT).
    pub fn permits_early(&self) -> bool {
        self.features.permits_early()
    }
}

/// Where a cached EHLO response belongs: the server's address and port, as Exim keys its
/// `misc` hints record (`<ip>:<port>.EHLO`, IPv6 as `[<ip>]:<port>.EHLO`). Nothing else goes
/// into Exim's key, and nothing else into this one.
///
/// ```
/// use tlsresume_smtp::ehlo::EhloKey;
///
/// assert_eq!(EhloKey::new("192.0.2.1:25".parse().unwrap()).to_string(), "192.0.2.1:25.EHLO");
/// assert_eq!(EhloKey::new("[2001:db8::1]:587".parse().unwrap()).to_string(), "[2001:db8::1]:587.EHLO");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EhloKey(SocketAddr);

impl EhloKey {
    /// The key for the server at `peer`.
    pub fn new(peer: SocketAddr) -> Self {
        Self(SocketAddr::new(canonical_ip(peer.ip()), peer.port()))
    }

    /// The server's address and port.
    pub fn peer(&self) -> SocketAddr {
        self.0
    }
}

impl fmt::Display for EhloKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SocketAddr already brackets IPv6 addresses.
        write!(f, "{}.EHLO", self.0)
    }
}

/// A cached EHLO response: what a server offered in clear and under TLS, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EhloEntry {
    /// When the entry was written (rewrites move it).
    pub stored_at: UnixTime,
    /// The response seen in clear, if one offering early pipelining was seen.
    pub clear: Option<EhloView>,
    /// The response seen under TLS, if one offering early pipelining was seen.
    pub tls: Option<EhloView>,
}

impl EhloEntry {
    /// The view of `phase`.
    pub fn view(&self, phase: Phase) -> Option<&EhloView> {
        match phase {
            Phase::Clear => self.clear.as_ref(),
            Phase::Tls => self.tls.as_ref(),
        }
    }

    fn view_mut(&mut self, phase: Phase) -> &mut Option<EhloView> {
        match phase {
            Phase::Clear => &mut self.clear,
            Phase::Tls => &mut self.tls,
        }
    }

    /// Whether the entry lets the client speak before hearing the server in `phase`.
    pub fn permits_early(&self, phase: Phase) -> bool {
        self.view(phase).is_some_and(EhloView::permits_early)
    }

    /// Whether the entry is older than `expire` at `now` (Exim: `retry_data_expire`).
    pub fn is_expired(&self, now: UnixTime, expire: Duration) -> bool {
        now.saturating_since(self.stored_at) >= expire
    }

    /// Encodes the entry (versioned, checksummed) for a store that keeps bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(EHLO_MAGIC);
        out.push(EHLO_CODEC_VERSION);
        out.extend_from_slice(&self.stored_at.as_micros().to_be_bytes());
        for view in [&self.clear, &self.tls] {
            match view {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    encode_view(v, &mut out);
                }
            }
        }
        let check = digest::digest(&digest::SHA256, &out);
        out.extend_from_slice(&check.as_ref()[..EHLO_CHECK_LEN]);
        out
    }

    /// Decodes an entry. Any corruption — wrong magic, unknown version, truncation, a bad
    /// checksum, an unknown feature bit, a non-ASCII mechanism — is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() < EHLO_MAGIC.len() + 1 + 8 + 2 + EHLO_CHECK_LEN {
            return Err(CodecError::Truncated);
        }
        if &bytes[..4] != EHLO_MAGIC {
            return Err(CodecError::NotAnEntry);
        }
        if bytes[4] != EHLO_CODEC_VERSION {
            return Err(CodecError::UnknownVersion(bytes[4]));
        }
        let (body, check) = bytes.split_at(bytes.len() - EHLO_CHECK_LEN);
        if &digest::digest(&digest::SHA256, body).as_ref()[..EHLO_CHECK_LEN] != check {
            return Err(CodecError::Checksum);
        }
        let mut r = &body[5..];
        let stored_at = UnixTime::from_micros(u64::from_be_bytes(take(&mut r)?));
        let mut views = [None, None];
        for slot in &mut views {
            *slot = match take::<1>(&mut r)?[0] {
                0 => None,
                1 => Some(decode_view(&mut r)?),
                other => return Err(CodecError::BadField("view presence", other)),
            };
        }
        if !r.is_empty() {
            return Err(CodecError::Truncated);
        }
        let [clear, tls] = views;
        Ok(Self {
            stored_at,
            clear,
            tls,
        })
    }
}

const EHLO_MAGIC: &[u8; 4] = b"TREH";
const EHLO_CODEC_VERSION: u8 = 1;
const EHLO_CHECK_LEN: usize = 8;

fn encode_view(v: &EhloView, out: &mut Vec<u8>) {
    out.extend_from_slice(&v.features.bits().to_be_bytes());
    for limit in [
        v.limits.mail_max,
        v.limits.rcpt_max,
        v.limits.rcpt_domain_max,
    ] {
        match limit {
            None => out.push(0),
            Some(n) => {
                out.push(1);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }
    // At most 255 mechanisms of at most 255 bytes each are kept; a server offering more is
    // not one whose extra mechanisms matter.
    let mechs: Vec<&[u8]> = v
        .auth
        .iter()
        .map(|m| &m.as_bytes()[..m.len().min(255)])
        .take(MAX_AUTH_MECHANISMS)
        .collect();
    out.push(u8::try_from(mechs.len()).unwrap_or(u8::MAX));
    for m in mechs {
        out.push(u8::try_from(m.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(m);
    }
}

fn decode_view(r: &mut &[u8]) -> Result<EhloView, CodecError> {
    let raw = u16::from_be_bytes(take(r)?);
    let features = EhloFeatures::from_bits(raw)
        .ok_or(CodecError::BadField("ehlo features", (raw >> 8) as u8))?;
    let mut limits = [None; 3];
    for l in &mut limits {
        *l = match take::<1>(r)?[0] {
            0 => None,
            1 => Some(u32::from_be_bytes(take(r)?)),
            other => return Err(CodecError::BadField("limit presence", other)),
        };
    }
    let count = take::<1>(r)?[0];
    let mut auth = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let len = usize::from(take::<1>(r)?[0]);
        if r.len() < len {
            return Err(CodecError::Truncated);
        }
        let (name, rest) = r.split_at(len);
        *r = rest;
        if let Some(bad) = name.iter().find(|b| !b.is_ascii_graphic()) {
            return Err(CodecError::BadField("auth mechanism", *bad));
        }
        auth.push(String::from_utf8_lossy(name).into_owned());
    }
    let [mail_max, rcpt_max, rcpt_domain_max] = limits;
    Ok(EhloView {
        features,
        auth,
        limits: Limits {
            mail_max,
            rcpt_max,
            rcpt_domain_max,
        },
    })
}

fn take<const N: usize>(r: &mut &[u8]) -> Result<[u8; N], CodecError> {
    if r.len() < N {
        return Err(CodecError::Truncated);
    }
    let (head, rest) = r.split_at(N);
    *r = rest;
    head.try_into().map_err(|_| CodecError::Truncated)
}

/// Where cached EHLO responses are kept between connections.
///
/// Implementations must be safe to share between connections on many threads. A store does
/// not judge entries; expiry and the rewrite/delete rules are [`EhloCache`]'s. A store that
/// keeps bytes and meets an entry that does not decode removes it and reports it absent.
pub trait EhloStore: fmt::Debug + Send + Sync {
    /// The entry under `key`, expired or not.
    fn get_ehlo(&self, key: &EhloKey) -> Result<Option<EhloEntry>, StoreError>;

    /// Stores `entry` under `key`, replacing any older one.
    fn put_ehlo(&self, key: &EhloKey, entry: &EhloEntry) -> Result<(), StoreError>;

    /// Removes the entry under `key`, if any.
    fn remove_ehlo(&self, key: &EhloKey) -> Result<(), StoreError>;
}

/// A bounded in-memory [`EhloStore`]; when full, the entry stored longest ago goes.
///
/// One entry per server is small (well under 100 bytes), and a client talks to a bounded set
/// of servers, so the bound only guards against an unbounded list of destinations.
#[derive(Debug)]
pub struct MemoryEhloStore {
    capacity: usize,
    entries: Mutex<HashMap<EhloKey, EhloEntry>>,
}

impl MemoryEhloStore {
    /// A store holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EhloKey, EhloEntry>> {
        // Every statement leaves the map consistent, so a poisoned lock guards a usable map.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for MemoryEhloStore {
    /// A store of 10 000 entries.
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl EhloStore for MemoryEhloStore {
    fn get_ehlo(&self, key: &EhloKey) -> Result<Option<EhloEntry>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }

    fn put_ehlo(&self, key: &EhloKey, entry: &EhloEntry) -> Result<(), StoreError> {
        let mut map = self.lock();
        if !map.contains_key(key) && map.len() >= self.capacity {
            let oldest = map.iter().min_by_key(|(_, e)| e.stored_at).map(|(k, _)| *k);
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(*key, entry.clone());
        Ok(())
    }

    fn remove_ehlo(&self, key: &EhloKey) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }
}

/// Why an entry was deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteReason {
    /// Older than `retry_data_expire`.
    Expired,
    /// The server no longer offers PIPECONNECT (or PIPELINING).
    NoLongerOffered,
    /// The LIMITS values changed.
    LimitsChanged,
    /// The banner was not a 220 greeting.
    BadBanner,
    /// The EHLO reply was not a 250 response.
    BadEhlo,
}

impl fmt::Display for DeleteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeleteReason::Expired => "older than retry_data_expire",
            DeleteReason::NoLongerOffered => "PIPECONNECT no longer offered",
            DeleteReason::LimitsChanged => "LIMITS changed",
            DeleteReason::BadBanner => "bad banner",
            DeleteReason::BadEhlo => "bad EHLO response",
        })
    }
}

/// What happened to the cached entry after the real response was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The real response matches: nothing written.
    Keep,
    /// The response was new (no entry, or none for this phase) and offers early pipelining:
    /// an entry was written.
    Stored,
    /// Features or AUTH changed and PIPECONNECT is still offered: the entry was rewritten.
    Rewritten,
    /// The entry was deleted.
    Deleted(DeleteReason),
    /// Nothing cached and nothing to cache.
    Nothing,
}

/// What the real connection showed in one phase, to be compared with the cache.
#[derive(Clone, Copy, Debug)]
pub enum Observed<'a> {
    /// A good banner and this EHLO response.
    Ehlo(&'a EhloResponse),
    /// The banner was bad (not 220, garbage, or the connection closed).
    BadBanner,
    /// The EHLO response was bad.
    BadEhlo,
}

/// The EHLO cache's rules over an [`EhloStore`], on an injected clock.
#[derive(Clone, Debug)]
pub struct EhloCache {
    store: Arc<dyn EhloStore>,
    clock: SharedClock,
    retry_data_expire: Duration,
}

impl EhloCache {
    /// Rules over `store`, with `retry_data_expire` at its default of 7 days.
    pub fn new(store: Arc<dyn EhloStore>, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            retry_data_expire: DEFAULT_RETRY_DATA_EXPIRE,
        }
    }

    /// The same rules with another expiry.
    pub fn with_retry_data_expire(mut self, expire: Duration) -> Self {
        self.retry_data_expire = expire;
        self
    }

    /// How long an entry is trusted.
    pub fn retry_data_expire(&self) -> Duration {
        self.retry_data_expire
    }

    /// The clock decisions are taken on.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The entry for `key` if it exists and has not expired; an expired one is deleted.
    pub fn lookup(&self, key: &EhloKey) -> Result<Option<EhloEntry>, StoreError> {
        match self.store.get_ehlo(key)? {
            Some(entry) if entry.is_expired(self.clock.now(), self.retry_data_expire) => {
                self.store.remove_ehlo(key)?;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// Records a response seen on a connection that did not speak early (or found no entry):
    /// the phase's view is written when it offers early pipelining, and removed from the
    /// entry when it does not. Returns what was done.
    pub fn record(
        &self,
        key: &EhloKey,
        phase: Phase,
        response: &EhloResponse,
    ) -> Result<Verdict, StoreError> {
        let existing = self.lookup(key)?;
        self.reconcile(key, existing.as_ref(), phase, Observed::Ehlo(response))
    }

    /// Compares what a connection observed in `phase` with `cached` (the entry it looked up,
    /// if any) and applies the rules to the store:
    ///
    /// - bad banner or EHLO → the entry is deleted;
    /// - features or AUTH differ: PIPECONNECT (with PIPELINING) still offered → rewritten,
    ///   otherwise deleted;
    /// - otherwise LIMITS differ → deleted;
    /// - no view for this phase yet → written when the response offers early pipelining.
    pub fn reconcile(
        &self,
        key: &EhloKey,
        cached: Option<&EhloEntry>,
        phase: Phase,
        observed: Observed<'_>,
    ) -> Result<Verdict, StoreError> {
        let verdict = ehlo_verdict(cached, phase, observed);
        match &verdict {
            Verdict::Keep | Verdict::Nothing => {}
            Verdict::Deleted(_) => self.store.remove_ehlo(key)?,
            Verdict::Stored | Verdict::Rewritten => {
                if let Observed::Ehlo(response) = observed {
                    let mut entry = cached.cloned().unwrap_or(EhloEntry {
                        stored_at: self.clock.now(),
                        clear: None,
                        tls: None,
                    });
                    entry.stored_at = self.clock.now();
                    *entry.view_mut(phase) = Some(response.view());
                    self.store.put_ehlo(key, &entry)?;
                }
            }
        }
        Ok(verdict)
    }
}

/// The rules, without the store: what should happen to `cached` given what was observed.
pub fn ehlo_verdict(cached: Option<&EhloEntry>, phase: Phase, observed: Observed<'_>) -> Verdict {
    let response = match observed {
        Observed::BadBanner => {
            return cached.map_or(Verdict::Nothing, |_| {
                Verdict::Deleted(DeleteReason::BadBanner)
            })
        }
        Observed::BadEhlo => {
            return cached.map_or(Verdict::Nothing, |_| {
                Verdict::Deleted(DeleteReason::BadEhlo)
            })
        }
        Observed::Ehlo(r) => r,
    };
    let actual = response.view();
    match cached.and_then(|e| e.view(phase)) {
        None if actual.permits_early() => Verdict::Stored,
        None => Verdict::Nothing,
        Some(view) if view.features != actual.features || view.auth != actual.auth => {
            if actual.permits_early() {
                Verdict::Rewritten
            } else {
                Verdict::Deleted(DeleteReason::NoLongerOffered)
            }
        }
        Some(view) if view.limits != actual.limits => Verdict::Deleted(DeleteReason::LimitsChanged),
        Some(_) => Verdict::Keep,
    }
}

/// The most AUTH mechanisms an entry keeps.
const MAX_AUTH_MECHANISMS: usize = 255;

/// A SASL mechanism name (RFC 4422 §3.1): 1 to 20 of `A-Z`, `0-9`, `-`, `_`.
fn is_sasl_mechanism(name: &str) -> bool {
    (1..=20).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tlsresume_core::{Clock, ManualClock};

    const T0: UnixTime = UnixTime::from_secs(1_700_000_000);

    fn ehlo(extra: &[&str]) -> EhloResponse {
        let mut lines = vec!["250-mx.example.net Hello".to_owned()];
        for e in extra {
            lines.push(format!("250-{e}"));
        }
        let last = lines.len() - 1;
        lines[last].replace_range(3..4, " ");
        EhloResponse::parse(&lines).expect("ehlo")
    }

    fn offering() -> EhloResponse {
        ehlo(&[
            "PIPELINING",
            "PIPECONNECT",
            "STARTTLS",
            "AUTH PLAIN",
            "LIMITS RCPTMAX=10",
        ])
    }

    fn setup() -> (ManualClock, Arc<MemoryEhloStore>, EhloCache, EhloKey) {
        let clock = ManualClock::new(T0);
        let store = Arc::new(MemoryEhloStore::new(16));
        let cache = EhloCache::new(store.clone(), Arc::new(clock.clone()));
        (
            clock,
            store,
            cache,
            EhloKey::new("192.0.2.1:25".parse().expect("addr")),
        )
    }

    #[test]
    fn parses_all_three_names_and_auth_forms() {
        for name in ["PIPECONNECT", "x_pipe_connect", "PIPE_CONNECT"] {
            assert!(
                ehlo(&["PIPELINING", name]).features.permits_early(),
                "{name}"
            );
        }
        assert!(!ehlo(&["PIPELINING", "XPIPECONNECT"])
            .features
            .permits_early());
        // Found by fuzzing: a name longer than the entry can hold made the stored view differ
        // from the parsed one. Names that are not SASL mechanisms are not kept.
        let long = "A".repeat(300);
        let r = ehlo(&[&format!("AUTH PLAIN {long} OK[ SCRAM-SHA-256 X_Y-2")]);
        assert_eq!(r.auth, ["PLAIN", "SCRAM-SHA-256", "X_Y-2"]);
        let many: Vec<String> = (0..300).map(|i| format!("M{i:03}")).collect();
        let r = ehlo(&[&format!("AUTH {}", many.join(" "))]);
        assert_eq!(r.auth.len(), MAX_AUTH_MECHANISMS);
        let entry = EhloEntry {
            stored_at: UnixTime::from_secs(1),
            clear: Some(r.view()),
            tls: None,
        };
        assert_eq!(EhloEntry::decode(&entry.encode()).expect("decodes"), entry);
        let r = ehlo(&["AUTH=LOGIN", "AUTH CRAM-MD5 plain", "SIZE 1000"]);
        assert_eq!(r.auth, ["CRAM-MD5", "LOGIN", "PLAIN"]);
        assert!(r.features.contains(EhloFeatures::SIZE));
        assert_eq!(r.keywords, ["AUTH", "AUTH", "SIZE"]);
        // A single-line response: host only.
        let r = EhloResponse::parse(&["250 mx"]).expect("one line");
        assert_eq!(r.host, "mx");
        assert!(r.keywords.is_empty());
    }

    #[test]
    fn limits_follow_rfc_9422_and_ignore_junk() {
        let l = Limits::parse("MAILMAX=3 rcptmax=50 RCPTDOMAINMAX=1 FOO=2 RCPTMAX=x BAR");
        assert_eq!(l.mail_max, Some(3));
        assert_eq!(l.rcpt_max, Some(50));
        assert_eq!(l.rcpt_domain_max, Some(1));
        assert!(Limits::parse("MAILMAX=99999999999 RCPTMAX=-1").is_empty());
    }

    #[test]
    fn rejects_bad_ehlo_replies() {
        assert_eq!(EhloResponse::parse::<&str>(&[]), Err(EhloParseError::Empty));
        assert!(matches!(
            EhloResponse::parse(&["550 no"]),
            Err(EhloParseError::NotOk { line: 0, .. })
        ));
        assert!(matches!(
            EhloResponse::parse(&["250-mx", "250XPIPELINING", "250 x"]),
            Err(EhloParseError::NotOk { line: 1, .. })
        ));
        assert_eq!(
            EhloResponse::parse(&["250 mx", "250 PIPELINING"]),
            Err(EhloParseError::Continuation { line: 0 })
        );
        assert_eq!(
            EhloResponse::parse(&["250-mx", "250-PIPELINING"]),
            Err(EhloParseError::Continuation { line: 1 })
        );
    }

    #[test]
    fn keys_are_exims() {
        let v4 = EhloKey::new("192.0.2.1:25".parse().expect("addr"));
        assert_eq!(v4.to_string(), "192.0.2.1:25.EHLO");
        let mapped = EhloKey::new("[::ffff:192.0.2.1]:25".parse().expect("addr"));
        assert_eq!(mapped, v4, "a v4-mapped address is the v4 server");
        assert_ne!(v4, EhloKey::new("192.0.2.1:587".parse().expect("addr")));
    }

    #[test]
    fn codec_roundtrips_and_reports_corruption() {
        let entry = EhloEntry {
            stored_at: T0,
            clear: Some(offering().view()),
            tls: Some(ehlo(&["PIPELINING", "PIPECONNECT", "AUTH LOGIN"]).view()),
        };
        let bytes = entry.encode();
        assert_eq!(EhloEntry::decode(&bytes), Ok(entry.clone()));
        let empty = EhloEntry {
            stored_at: T0,
            clear: None,
            tls: None,
        };
        assert_eq!(EhloEntry::decode(&empty.encode()), Ok(empty));
        assert_eq!(EhloEntry::decode(&bytes[..6]), Err(CodecError::Truncated));
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(EhloEntry::decode(&bad), Err(CodecError::NotAnEntry));
        let mut bad = bytes.clone();
        bad[4] = 7;
        assert_eq!(EhloEntry::decode(&bad), Err(CodecError::UnknownVersion(7)));
        let mut bad = bytes.clone();
        bad[14] ^= 0x40;
        assert_eq!(EhloEntry::decode(&bad), Err(CodecError::Checksum));
        // A session entry is not an EHLO entry.
        assert_eq!(
            EhloEntry::decode(b"TRSE\x01aaaaaaaaaaaaaaaaaaaa"),
            Err(CodecError::NotAnEntry)
        );
    }

    #[test]
    fn stores_only_when_pipelining_and_pipeconnect_are_both_offered() {
        let (_, store, cache, key) = setup();
        for partial in [
            ehlo(&["PIPELINING"]),
            ehlo(&["PIPECONNECT"]),
            ehlo(&["STARTTLS"]),
        ] {
            assert_eq!(
                cache.record(&key, Phase::Clear, &partial).expect("record"),
                Verdict::Nothing
            );
            assert!(store.is_empty());
        }
        assert_eq!(
            cache
                .record(&key, Phase::Clear, &offering())
                .expect("record"),
            Verdict::Stored
        );
        let entry = cache.lookup(&key).expect("lookup").expect("stored");
        assert_eq!(entry.stored_at, T0);
        assert!(entry.permits_early(Phase::Clear));
        assert!(!entry.permits_early(Phase::Tls), "no TLS response seen yet");
        // The TLS response is added to the same entry.
        let tls = ehlo(&["PIPELINING", "PIPECONNECT", "AUTH PLAIN LOGIN"]);
        assert_eq!(
            cache.record(&key, Phase::Tls, &tls).expect("record"),
            Verdict::Stored
        );
        let entry = cache.lookup(&key).expect("lookup").expect("stored");
        assert_eq!(entry.tls, Some(tls.view()));
        assert_eq!(entry.clear, Some(offering().view()));
    }

    #[test]
    fn expires_after_retry_data_expire_and_is_deleted() {
        let (clock, store, cache, key) = setup();
        cache
            .record(&key, Phase::Clear, &offering())
            .expect("record");
        clock.advance(DEFAULT_RETRY_DATA_EXPIRE - Duration::from_secs(1));
        assert!(
            cache.lookup(&key).expect("lookup").is_some(),
            "6 days 23:59:59 later"
        );
        clock.advance(Duration::from_secs(1));
        assert!(
            cache.lookup(&key).expect("lookup").is_none(),
            "7 days later"
        );
        assert!(
            store.is_empty(),
            "the expired entry is deleted, not only hidden"
        );
        // A shorter expiry is honoured.
        let short = cache
            .clone()
            .with_retry_data_expire(Duration::from_secs(3600));
        short
            .record(&key, Phase::Clear, &offering())
            .expect("record");
        clock.advance(Duration::from_secs(3600));
        assert!(short.lookup(&key).expect("lookup").is_none());
    }

    #[test]
    fn same_response_keeps_the_entry_and_its_time() {
        let (clock, _, cache, key) = setup();
        cache
            .record(&key, Phase::Clear, &offering())
            .expect("record");
        clock.advance(Duration::from_secs(3600));
        let cached = cache.lookup(&key).expect("lookup");
        let v = cache
            .reconcile(
                &key,
                cached.as_ref(),
                Phase::Clear,
                Observed::Ehlo(&offering()),
            )
            .expect("reconcile");
        assert_eq!(v, Verdict::Keep);
        assert_eq!(
            cache.lookup(&key).expect("lookup").map(|e| e.stored_at),
            Some(T0)
        );
    }

    #[test]
    fn changed_features_or_auth_with_pipeconnect_rewrite_the_entry() {
        let (clock, _, cache, key) = setup();
        cache
            .record(&key, Phase::Clear, &offering())
            .expect("record");
        clock.advance(Duration::from_secs(6 * 24 * 3600));
        let changed_features = ehlo(&[
            "PIPELINING",
            "PIPECONNECT",
            "AUTH PLAIN",
            "LIMITS RCPTMAX=10",
        ]);
        let cached = cache.lookup(&key).expect("lookup");
        let v = cache
            .reconcile(
                &key,
                cached.as_ref(),
                Phase::Clear,
                Observed::Ehlo(&changed_features),
            )
            .expect("reconcile");
        assert_eq!(v, Verdict::Rewritten);
        let entry = cache.lookup(&key).expect("lookup").expect("rewritten");
        assert_eq!(entry.clear, Some(changed_features.view()));
        assert_eq!(
            entry.stored_at,
            clock.now(),
            "a rewrite restarts the expiry"
        );
        // A rewritten entry lives 7 days from the rewrite.
        clock.advance(Duration::from_secs(2 * 24 * 3600));
        assert!(cache.lookup(&key).expect("lookup").is_some());
        // AUTH alone changing rewrites too.
        let changed_auth = ehlo(&[
            "PIPELINING",
            "PIPECONNECT",
            "AUTH LOGIN",
            "LIMITS RCPTMAX=10",
        ]);
        let cached = cache.lookup(&key).expect("lookup");
        assert_eq!(
            cache
                .reconcile(
                    &key,
                    cached.as_ref(),
                    Phase::Clear,
                    Observed::Ehlo(&changed_auth)
                )
                .expect("reconcile"),
            Verdict::Rewritten
        );
        assert_eq!(
            cache.lookup(&key).expect("lookup").and_then(|e| e.clear),
            Some(changed_auth.view())
        );
    }

    #[test]
    fn pipeconnect_no_longer_offered_deletes_the_entry() {
        let (_, store, cache, key) = setup();
        for gone in [
            ehlo(&["PIPELINING", "STARTTLS", "AUTH PLAIN", "LIMITS RCPTMAX=10"]),
            ehlo(&["PIPECONNECT", "STARTTLS", "AUTH PLAIN", "LIMITS RCPTMAX=10"]),
        ] {
            cache
                .record(&key, Phase::Clear, &offering())
                .expect("record");
            let cached = cache.lookup(&key).expect("lookup");
            assert_eq!(
                cache
                    .reconcile(&key, cached.as_ref(), Phase::Clear, Observed::Ehlo(&gone))
                    .expect("reconcile"),
                Verdict::Deleted(DeleteReason::NoLongerOffered)
            );
            assert!(store.is_empty());
        }
    }

    #[test]
    fn changed_limits_delete_the_entry() {
        let (_, store, cache, key) = setup();
        cache
            .record(&key, Phase::Clear, &offering())
            .expect("record");
        let limits = ehlo(&[
            "PIPELINING",
            "PIPECONNECT",
            "STARTTLS",
            "AUTH PLAIN",
            "LIMITS RCPTMAX=5",
        ]);
        let cached = cache.lookup(&key).expect("lookup");
        assert_eq!(
            cache
                .reconcile(&key, cached.as_ref(), Phase::Clear, Observed::Ehlo(&limits))
                .expect("reconcile"),
            Verdict::Deleted(DeleteReason::LimitsChanged)
        );
        assert!(store.is_empty());
    }

    #[test]
    fn bad_banner_or_ehlo_deletes_the_entry() {
        let (_, store, cache, key) = setup();
        for (observed, reason) in [
            (Observed::BadBanner, DeleteReason::BadBanner),
            (Observed::BadEhlo, DeleteReason::BadEhlo),
        ] {
            cache
                .record(&key, Phase::Clear, &offering())
                .expect("record");
            let cached = cache.lookup(&key).expect("lookup");
            assert_eq!(
                cache
                    .reconcile(&key, cached.as_ref(), Phase::Clear, observed)
                    .expect("reconcile"),
                Verdict::Deleted(reason)
            );
            assert!(store.is_empty());
            assert_eq!(
                cache
                    .reconcile(&key, None, Phase::Clear, observed)
                    .expect("reconcile"),
                Verdict::Nothing,
                "nothing to delete"
            );
        }
    }

    #[test]
    fn phases_are_compared_separately() {
        let (_, _, cache, key) = setup();
        cache
            .record(&key, Phase::Clear, &offering())
            .expect("record");
        let tls = ehlo(&["PIPELINING", "PIPECONNECT", "AUTH PLAIN LOGIN"]);
        cache.record(&key, Phase::Tls, &tls).expect("record");
        let cached = cache.lookup(&key).expect("lookup");
        // The TLS response differs from the clear one, but matches the TLS view: kept.
        assert_eq!(
            cache
                .reconcile(&key, cached.as_ref(), Phase::Tls, Observed::Ehlo(&tls))
                .expect("reconcile"),
            Verdict::Keep
        );
    }

    #[test]
    fn memory_store_is_bounded() {
        let store = MemoryEhloStore::new(2);
        let entry = |at| EhloEntry {
            stored_at: UnixTime::from_secs(at),
            clear: None,
            tls: None,
        };
        let key = |port| EhloKey::new(SocketAddr::from(([192, 0, 2, 1], port)));
        store.put_ehlo(&key(1), &entry(5)).expect("put");
        store.put_ehlo(&key(2), &entry(1)).expect("put");
        store.put_ehlo(&key(3), &entry(9)).expect("put");
        assert_eq!(store.len(), 2);
        assert!(
            store.get_ehlo(&key(2)).expect("get").is_none(),
            "the oldest stored went"
        );
        store.remove_ehlo(&key(1)).expect("remove");
        assert_eq!(store.len(), 1);
    }

    proptest! {
        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = EhloEntry::decode(&bytes);
        }

        #[test]
        fn any_corruption_is_detected(pos in 0usize..1000, flip in 1u8..=255) {
            let bytes = EhloEntry {
                stored_at: T0,
                clear: Some(offering().view()),
                tls: None,
            }.encode();
            let mut bad = bytes.clone();
            let i = pos % bad.len();
            bad[i] ^= flip;
            prop_assert!(EhloEntry::decode(&bad).is_err());
        }

        #[test]
        fn parsing_garbage_lines_never_panics(lines in proptest::collection::vec(".{0,40}", 0..6)) {
            let _ = EhloResponse::parse(&lines);
        }
    }
}
