//! Session-ticket encryption keys (STEKs): their material, and where it comes from.

use core::fmt;
use std::sync::Mutex;

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, ZeroizeOnDrop};

pub mod key_ring;
pub mod seal;

use crate::cache::kept::KeptPerKey;
use crate::cache::{CacheEntry, CacheKey};
use crate::clock::UnixTime;

/// The 16-byte name a ticket carries in clear so the server can find the key that sealed it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(pub [u8; 16]);

impl KeyName {
    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// A name from exactly 16 bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 16]>::try_from(bytes).ok().map(Self)
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyName({self})")
    }
}

impl fmt::Display for KeyName {
    /// Hex: key names are public (they travel in every ticket), so printing them is safe.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// The secret half of a ticket key: 32 bytes of cipher key and 32 bytes of MAC key.
///
/// OpenSSL's ticket callback takes the two as an AES-256-CBC key and an HMAC-SHA256 key;
/// tlsresume's own sealing (rustls) uses the cipher key with AES-256-GCM. Zeroised on drop;
/// `Debug` never shows the bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeySecret {
    cipher: [u8; 32],
    mac: [u8; 32],
}

impl KeySecret {
    /// Wraps 64 secret bytes: the first 32 are the cipher key, the last 32 the MAC key.
    pub fn new(mut bytes: [u8; 64]) -> Self {
        let mut secret = Self {
            cipher: [0; 32],
            mac: [0; 32],
        };
        secret.cipher.copy_from_slice(&bytes[..32]);
        secret.mac.copy_from_slice(&bytes[32..]);
        bytes.zeroize();
        secret
    }

    /// The 32-byte cipher key.
    pub fn cipher_key(&self) -> &[u8; 32] {
        &self.cipher
    }

    /// The 32-byte MAC key.
    pub fn mac_key(&self) -> &[u8; 32] {
        &self.mac
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySecret(<redacted>)")
    }
}

/// A key as a [`KeySource`] hands it over: a name and its secret.
#[derive(Clone, Debug)]
pub struct KeyMaterial {
    /// The public name tickets carry.
    pub name: KeyName,
    /// The secret.
    pub secret: KeySecret,
}

/// The 64-byte master secret of the periodic (GnuTLS) schedule, from which each period's key
/// is derived. GnuTLS takes it as its session-ticket master key. Zeroised on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct MasterSecret([u8; 64]);

impl MasterSecret {
    /// Wraps 64 secret bytes.
    pub fn new(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// The secret bytes, for handing to a TLS library.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterSecret(<redacted>)")
    }
}

/// The key that authenticates the session data clients store in a cache: every backend's
/// stored session is sealed under it ([`SessionKey::seal_session`]) and given to its library
/// only when it opens ([`SessionKey::open_session`]). Libraries trust the session data they
/// are given (GnuTLS 3.7 crashes on some forged data: found by fuzzing; OpenSSL resumes with
/// whatever master secret a forged session names), so a writer of the cache without this key
/// cannot make an entry that reaches the library. Cleared from memory when dropped.
///
/// The key belongs to the store ([`SessionStore::session_key`](crate::SessionStore::session_key)):
/// an in-memory store uses [`SessionKey::process`], made once per process; a store shared by
/// processes (the on-disk cache, Redis) has one key that all of them use (the disk store keeps
/// it beside its file, with the file's permissions). An entry that does not open under the
/// reader's key is skipped, never removed: it is another writer's.
///
/// Cloning is cheap (the key is shared): every connection takes the store's key. This
/// process's key ([`SessionKey::process`], the in-memory store's) is a static one, and its
/// clones copy a reference: connections on many threads do not all count references to it.
#[derive(Clone)]
pub struct SessionKey(KeyRef);

/// Where a [`SessionKey`]'s secret lives.
#[derive(Clone)]
enum KeyRef {
    /// This process's key, made once and never dropped.
    Process(&'static SessionKeyInner),
    /// A key made from bytes, shared by its clones.
    Shared(std::sync::Arc<SessionKeyInner>),
}

impl std::ops::Deref for KeyRef {
    type Target = SessionKeyInner;

    fn deref(&self) -> &SessionKeyInner {
        match self {
            Self::Process(inner) => inner,
            Self::Shared(inner) => inner,
        }
    }
}

/// The secret bytes, cleared on drop, and the HMAC key made from them once (ring's HMAC key
/// holds the hashed pads, which ring cannot clear; made once per key rather than per stored
/// session, it costs two block hashes per key instead of two per seal or open).
struct SessionKeyInner {
    bytes: zeroize::Zeroizing<[u8; 32]>,
    hmac: std::sync::OnceLock<ring::hmac::Key>,
    /// The entry tags this key made or checked last, each with the exact input it was computed
    /// over (the data tag, then the entry's other fields): an entry whose tag and input are
    /// both here is sealed without the tag being computed again (three SHA-256 blocks, about
    /// 7 600 instructions, as much as the rest of a resumed rustls TLS 1.2 client handshake
    /// adds). The tag is a function of its input under this key, so the answer is the same
    /// as computing it: an entry with any field rewritten has another input and is checked.
    entry_tags: KeptPerKey<TagInput, [u8; SESSION_TAG_LEN]>,
}

/// 32 bytes from the system's random generator.
fn random_bytes() -> Result<[u8; 32], KeyError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KeyError::Source("the system random generator failed".into()))?;
    Ok(bytes)
}

impl SessionKeyInner {
    /// A key's inside from 32 secret bytes (the input is cleared).
    fn new(mut bytes: [u8; 32]) -> Self {
        let inner = Self {
            bytes: zeroize::Zeroizing::new(bytes),
            hmac: std::sync::OnceLock::new(),
            entry_tags: KeptPerKey::new(ENTRY_TAGS_KEPT),
        };
        bytes.zeroize();
        inner
    }
}

/// How many entry tags a session key remembers (one per stored session it sealed or checked
/// last; past it, the older half is dropped): about 100 bytes each.
const ENTRY_TAGS_KEPT: usize = 256;

impl PartialEq for SessionKey {
    fn eq(&self, other: &Self) -> bool {
        same_secret(&self.0.bytes[..], &other.0.bytes[..])
    }
}

impl Eq for SessionKey {}

/// Whether two secrets (or tags) are equal, compared without an early exit so the time taken
/// says nothing of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl SessionKey {
    /// A key from 32 secret bytes (the input is cleared).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(KeyRef::Shared(std::sync::Arc::new(SessionKeyInner::new(
            bytes,
        ))))
    }

    /// A fresh random key.
    pub fn random() -> Result<Self, KeyError> {
        random_bytes().map(Self::from_bytes)
    }

    /// This process's key: random, made on first use, the same for every caller (a static
    /// one: its clones copy a reference).
    pub fn process() -> Self {
        static KEY: std::sync::OnceLock<SessionKeyInner> = std::sync::OnceLock::new();
        Self(KeyRef::Process(KEY.get_or_init(|| {
            // A failing system RNG leaves a key derived from the time:
            // weaker, but the integrity check still stops accidental damage.
            SessionKeyInner::new(random_bytes().unwrap_or_else(|_| {
                let seed = crate::clock::UnixTime::now().as_micros();
                let mut bytes = [0u8; 32];
                bytes[..8].copy_from_slice(&seed.to_be_bytes());
                bytes
            }))
        })))
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0.bytes
    }

    /// `data` (a library's serialised session) sealed for the store as the session field of
    /// `entry` (whose own session field is ignored), stored under the cache key `key`: `TRS3`,
    /// the data tag (HMAC-SHA256 under this key of the backend's name, `key` and `data`), the
    /// entry tag (HMAC-SHA256 of the data tag and every other field of `entry`: store time,
    /// lifetime hint, verify-override, verification, OCSP status, DANE authority, backend,
    /// protocol), then `data`. The data tag binds the bytes to the backend that wrote them and
    /// to their place in the store (an entry copied under another cache key does not open);
    /// the entry tag binds the fields the lifecycle trusts on a resumption to the session they
    /// were stored with (an entry whose verdict or expiry was rewritten does not open).
    pub fn seal_session(
        &self,
        backend: &str,
        key: &CacheKey,
        entry: &CacheEntry,
        data: &[u8],
    ) -> Vec<u8> {
        self.session_tags(backend, key, entry, data).sealed(data)
    }

    /// The tags [`seal_session`](Self::seal_session) seals `data` with (the sealed field is
    /// [`SealedTags::sealed`] of `data`): for a caller that keeps the tags beside the field.
    pub(crate) fn session_tags(
        &self,
        backend: &str,
        key: &CacheKey,
        entry: &CacheEntry,
        data: &[u8],
    ) -> SealedTags {
        let data_tag = self.data_tag(backend, key, data);
        let entry_tag = with_entry_tag_input(data_tag.as_ref(), entry, |input| {
            let entry_tag = self.entry_tag(input);
            self.remember_entry_tag(entry_tag.as_ref(), input);
            entry_tag
        });
        SealedTags::new(data_tag.as_ref(), entry_tag.as_ref())
    }

    /// The session data inside `entry`'s session field, sealed by
    /// [`seal_session`](Self::seal_session) for `backend`, `key` and this entry's other fields;
    /// `None` when it is not such output, was damaged, was sealed under another session key,
    /// for another backend or under another cache key, or when any other field of the entry
    /// differs from what was sealed.
    pub fn open_session<'a>(
        &self,
        backend: &str,
        key: &CacheKey,
        entry: &'a CacheEntry,
    ) -> Option<&'a [u8]> {
        self.open_session_data(backend, key, entry)
            .filter(|_| self.entry_fields_sealed(entry))
    }

    /// [`open_session`](Self::open_session) for an entry whose other fields
    /// [`entry_fields_sealed`](Self::entry_fields_sealed) has already accepted: only the data
    /// tag is checked here. The client's lifecycle checks the entry tag once, when it takes
    /// the entry from the store, and opens the session with this, so the entry tag is not
    /// computed twice per handshake; both tags are still checked before the session's bytes
    /// reach a library.
    pub(crate) fn open_session_data<'a>(
        &self,
        backend: &str,
        key: &CacheKey,
        entry: &'a CacheEntry,
    ) -> Option<&'a [u8]> {
        let (data_tag, _, data) = split_sealed(&entry.session)?;
        let expected = self.data_tag(backend, key, data);
        same_secret(expected.as_ref(), data_tag).then_some(data)
    }

    /// Whether `entry`'s fields other than the session are those its session field was sealed
    /// with (the entry tag, checked against the data tag the field carries; the data tag
    /// itself is not checked here, [`open_session`](Self::open_session) does). Cheap: a
    /// hundred bytes hashed, whatever the session's length. The lifecycle checks it on every
    /// entry it offers, before anything reads the entry's verdict, so a client that keeps the
    /// library's decoded session and compares stored bytes instead of opening them again
    /// still refuses an entry whose verdict or expiry was rewritten.
    ///
    /// An entry tag this key made ([`seal_session`](Self::seal_session)) or checked here
    /// lately, over exactly this entry's data tag and fields, is not computed again.
    pub fn entry_fields_sealed(&self, entry: &CacheEntry) -> bool {
        let Some((data_tag, entry_tag, _)) = split_sealed(&entry.session) else {
            return false;
        };
        let Ok(tag) = <[u8; SESSION_TAG_LEN]>::try_from(entry_tag) else {
            return false;
        };
        with_entry_tag_input(data_tag, entry, |input| {
            let known = self
                .0
                .entry_tags
                .with(&tag, |made_over| Some(made_over.as_slice() == input));
            if known == Some(true) {
                return true;
            }
            let sealed = same_secret(self.entry_tag(input).as_ref(), entry_tag);
            if sealed {
                self.remember_entry_tag(entry_tag, input);
            }
            sealed
        })
    }

    /// Remembers that `tag` is this key's entry tag over `input`.
    fn remember_entry_tag(&self, tag: &[u8], input: &[u8]) {
        if let Ok(tag) = <[u8; SESSION_TAG_LEN]>::try_from(tag) {
            self.0.entry_tags.keep(&tag, TagInput::new(input));
        }
    }

    fn hmac_key(&self) -> &ring::hmac::Key {
        self.0
            .hmac
            .get_or_init(|| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0.bytes[..]))
    }

    fn data_tag(&self, backend: &str, key: &CacheKey, data: &[u8]) -> ring::hmac::Tag {
        let mut ctx = ring::hmac::Context::with_key(self.hmac_key());
        // The name's length first, so no (name, key, data) triple reads as another; the cache
        // key is 32 bytes.
        ctx.update(&[u8::try_from(backend.len()).unwrap_or(u8::MAX)]);
        ctx.update(backend.as_bytes());
        ctx.update(key.as_bytes());
        ctx.update(data);
        ctx.sign()
    }

    /// The entry tag over `input` ([`entry_tag_input`]).
    fn entry_tag(&self, input: &[u8]) -> ring::hmac::Tag {
        let mut ctx = ring::hmac::Context::with_key(self.hmac_key());
        // A label no data tag's input starts with (a backend name's length byte, names being
        // shorter than 255 bytes), so the two tags' inputs never read as each other.
        ctx.update(ENTRY_TAG_LABEL);
        ctx.update(input);
        ctx.sign()
    }
}

/// What the entry tag is computed over (after its label): the data tag, then every field of
/// `entry` but the session.
fn entry_tag_input(data_tag: &[u8], entry: &CacheEntry) -> Vec<u8> {
    let mut input = Vec::with_capacity(SESSION_TAG_LEN + 64);
    fill_entry_tag_input(&mut input, data_tag, entry);
    input
}

/// Writes the entry tag's input ([`entry_tag_input`]) into `input`, replacing what it held.
fn fill_entry_tag_input(input: &mut Vec<u8>, data_tag: &[u8], entry: &CacheEntry) {
    input.clear();
    input.extend_from_slice(data_tag);
    entry.encode_fields(input);
}

/// `f` of the entry tag's input ([`entry_tag_input`]), written into a buffer this thread
/// keeps for it: checking an entry a client offers allocates nothing (the input is copied only
/// when it is remembered).
fn with_entry_tag_input<T>(data_tag: &[u8], entry: &CacheEntry, f: impl Fn(&[u8]) -> T) -> T {
    thread_local! {
        static INPUT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let kept = INPUT
        .try_with(|input| {
            let mut input = input.try_borrow_mut().ok()?;
            fill_entry_tag_input(&mut input, data_tag, entry);
            Some(f(&input))
        })
        .ok()
        .flatten();
    match kept {
        Some(result) => result,
        None => f(&entry_tag_input(data_tag, entry)),
    }
}

/// An entry tag's input as a session key remembers it: in place when it fits (an entry
/// without a DANE authority takes 50 bytes), so remembering one allocates nothing; on the heap
/// otherwise.
enum TagInput {
    Inline {
        len: u8,
        bytes: [u8; TAG_INPUT_INLINE],
    },
    Heap(Box<[u8]>),
}

/// The longest entry tag input kept in place.
const TAG_INPUT_INLINE: usize = 64;

impl TagInput {
    fn new(input: &[u8]) -> Self {
        match u8::try_from(input.len()) {
            Ok(len) if input.len() <= TAG_INPUT_INLINE => {
                let mut bytes = [0u8; TAG_INPUT_INLINE];
                bytes[..input.len()].copy_from_slice(input);
                Self::Inline { len, bytes }
            }
            _ => Self::Heap(input.into()),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(bytes) => bytes,
        }
    }
}

/// The two tags a stored session was sealed with ([`SessionKey::seal_session`]): with the
/// library's bytes they sealed, they are exactly the bytes the store was given, so a backend
/// that keeps its library's session can tell whether the store still holds what it wrote
/// ([`sealed_over`](Self::sealed_over)) without keeping a copy of those bytes. Not secret (the
/// store holds them in every entry).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SealedTags([u8; 2 * SESSION_TAG_LEN]);

impl SealedTags {
    /// The two tags, each [`SESSION_TAG_LEN`] bytes (as [`split_sealed`] gives them).
    fn new(data_tag: &[u8], entry_tag: &[u8]) -> Self {
        let mut tags = [0u8; 2 * SESSION_TAG_LEN];
        tags[..SESSION_TAG_LEN].copy_from_slice(data_tag);
        tags[SESSION_TAG_LEN..].copy_from_slice(entry_tag);
        Self(tags)
    }

    /// The tags of a sealed session field (`None`: not one).
    pub fn of(sealed: &[u8]) -> Option<Self> {
        let (data_tag, entry_tag, _) = split_sealed(sealed)?;
        Some(Self::new(data_tag, entry_tag))
    }

    /// The first eight bytes of the entry tag: enough to tell one entry's tags from another's
    /// (an HMAC's bytes), for a record that keeps no more.
    pub fn entry_prefix(&self) -> u64 {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&self.0[SESSION_TAG_LEN..SESSION_TAG_LEN + 8]);
        u64::from_be_bytes(prefix)
    }

    /// Whether `stored` (a store entry's session field) is `data` sealed under these tags:
    /// byte for byte what was given to the store.
    pub fn sealed_over(&self, stored: &[u8], data: &[u8]) -> bool {
        split_sealed(stored).is_some_and(|(data_tag, entry_tag, rest)| {
            let (ours_data, ours_entry) = self.0.split_at(SESSION_TAG_LEN);
            data_tag == ours_data && entry_tag == ours_entry && rest == data
        })
    }

    /// The session field `data` sealed under these tags made (what the store was given).
    pub fn sealed(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(SESSION_MAGIC.len() + self.0.len() + data.len());
        out.extend_from_slice(SESSION_MAGIC);
        out.extend_from_slice(&self.0);
        out.extend_from_slice(data);
        out
    }
}

impl fmt::Debug for SealedTags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedTags(..)")
    }
}

/// The data tag, the entry tag and the data of a `TRS3` session field.
fn split_sealed(sealed: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let rest = sealed.strip_prefix(SESSION_MAGIC)?;
    if rest.len() < 2 * SESSION_TAG_LEN {
        return None;
    }
    let (data_tag, rest) = rest.split_at(SESSION_TAG_LEN);
    let (entry_tag, data) = rest.split_at(SESSION_TAG_LEN);
    Some((data_tag, entry_tag, data))
}

/// The first bytes of a sealed stored session (`TRS3`: the tags cover the cache key and the
/// entry's other fields). Earlier formats do not open (`TRS2`, whose tag did not cover the
/// entry's verdict and expiry; `TRS1`, whose tag did not cover the cache key; and before
/// them): their entries give one full handshake each, stay in the store until they expire or
/// a new session is stored under their key.
const SESSION_MAGIC: &[u8; 4] = b"TRS3";
const ENTRY_TAG_LABEL: &[u8] = b"\xfftlsresume entry fields";
const SESSION_TAG_LEN: usize = 32;

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

/// A ticket key in a key ring, with the times that govern it.
pub struct TicketKey {
    name: KeyName,
    secret: KeySecret,
    created: UnixTime,
    renew_at: Option<UnixTime>,
    rotate_at: UnixTime,
    expires_at: UnixTime,
    /// When the source said this key is a stand-in: when to ask it again for the slot's key
    /// (microseconds since the epoch; 0: the key is final). Moved on when asking failed.
    retry_at: std::sync::atomic::AtomicU64,
    /// The AES-256-GCM key made from the cipher secret, once, for every ticket this key seals
    /// or opens (ring's key schedule cannot be cleared; making one per ticket would leave a
    /// copy per ticket).
    aead: std::sync::OnceLock<Option<ring::aead::LessSafeKey>>,
}

impl fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketKey")
            .field("name", &self.name)
            .field("created", &self.created)
            .field("renew_at", &self.renew_at)
            .field("rotate_at", &self.rotate_at)
            .field("expires_at", &self.expires_at)
            .field("retry_at", &self.retry_at())
            .finish_non_exhaustive()
    }
}

impl TicketKey {
    pub(crate) fn new(
        material: KeyMaterial,
        created: UnixTime,
        renew_at: Option<UnixTime>,
        rotate_at: UnixTime,
        expires_at: UnixTime,
    ) -> Self {
        Self {
            name: material.name,
            secret: material.secret,
            created,
            renew_at,
            rotate_at,
            expires_at,
            retry_at: std::sync::atomic::AtomicU64::new(0),
            aead: std::sync::OnceLock::new(),
        }
    }

    /// The same key, to be replaced by the source's shared key at `retry_at` if it has one then.
    pub(crate) fn with_retry_at(self, retry_at: Option<UnixTime>) -> Self {
        self.set_retry_at(retry_at);
        self
    }

    /// Moves (or clears) the time the ring asks its source again about this key's slot.
    pub(crate) fn set_retry_at(&self, retry_at: Option<UnixTime>) {
        let micros = retry_at.map_or(0, |t| t.as_micros().max(1));
        self.retry_at
            .store(micros, std::sync::atomic::Ordering::Relaxed);
    }

    /// The AES-256-GCM key for sealing and opening tickets, made on first use.
    pub(crate) fn aead_key(&self) -> Option<&ring::aead::LessSafeKey> {
        self.aead
            .get_or_init(|| {
                ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, self.secret.cipher_key())
                    .ok()
                    .map(ring::aead::LessSafeKey::new)
            })
            .as_ref()
    }

    /// The key's public name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key's secret.
    pub fn secret(&self) -> &KeySecret {
        &self.secret
    }

    /// When the key started encrypting tickets.
    pub fn created(&self) -> UnixTime {
        self.created
    }

    /// From when a ticket under this key is renewed on resumption (Exim's `renew`).
    pub fn renew_at(&self) -> Option<UnixTime> {
        self.renew_at
    }

    /// When a new key takes over encryption from this one.
    pub fn rotate_at(&self) -> UnixTime {
        self.rotate_at
    }

    /// From when this key no longer decrypts tickets (Exim's `expire`).
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }

    /// For a stand-in key (see [`KeySource::retry_after`]), when the ring asks its source again
    /// for this rotation slot's key; `None` for a key that is final.
    pub fn retry_at(&self) -> Option<UnixTime> {
        match self.retry_at.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            micros => Some(UnixTime::from_micros(micros)),
        }
    }
}

/// Why no key could be had.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key source failed (e.g. the random generator, or a shared store).
    #[error("ticket key source failed: {0}")]
    Source(String),
}

/// How soon a stand-in key or master secret is asked about again when the key source failed
/// outright instead of answering (with a stand-in, whose own delay then applies). The key ring
/// and the GnuTLS server's held master secret both use it.
pub const STAND_IN_RETRY_ON_ERROR: std::time::Duration = std::time::Duration::from_secs(60);

/// Where ticket keys come from.
///
/// The default, [`ProcessKeySource`], makes random keys in the process: tickets then resume
/// only on this process. A fleet of servers behind one name shares keys through a source backed
/// by a shared store, so that a client resumes on any node.
pub trait KeySource: fmt::Debug + Send + Sync {
    /// A new key for the rolling schedule, taking over at `created`.
    ///
    /// A shared source should give every caller asking for the same rotation slot the same key.
    fn new_key(&self, created: UnixTime) -> Result<KeyMaterial, KeyError>;

    /// The master secret for the periodic schedule (and for GnuTLS's own key derivation).
    /// Must be the same on every call, except that a stand-in (see
    /// [`master_retry_after`](Self::master_retry_after)) gives way to the final secret.
    fn master_secret(&self) -> Result<MasterSecret, KeyError>;

    /// Whether `master`, just handed out by [`master_secret`](Self::master_secret), is a
    /// stand-in, and if so how soon to ask again: a fleet source cut off from its shared store
    /// makes a master secret of its own (tickets then resume on this node only) and gives the
    /// fleet's once the store answers. A [`KeyRing`](crate::keys::key_ring::KeyRing) on the periodic schedule,
    /// and the GnuTLS server, ask again after this delay instead of keeping the stand-in for
    /// good; a source asked again while still cut off should hand out the same stand-in. The
    /// default, `None`: the master secret is final.
    fn master_retry_after(&self, _master: &MasterSecret) -> Option<std::time::Duration> {
        None
    }

    /// Whether keys belong to fixed rotation slots (`floor(time / rotation)`), as a source
    /// shared by a fleet hands them out. A [`KeyRing`](crate::keys::key_ring::KeyRing) over such a source
    /// starts each key at its slot's start and rotates at slot boundaries, so every node of the
    /// fleet switches keys at the same moment. The default, `false`, starts a key when it is
    /// first needed, as Exim does.
    fn slot_aligned(&self) -> bool {
        false
    }

    /// Whether `key`, just handed out by [`new_key`](Self::new_key), is a stand-in, and if so
    /// how soon to ask again: a fleet source that could not reach its shared store makes a key
    /// of its own for the slot (tickets then resume on this node only) and would give the
    /// fleet's key once the store answers. A [`KeyRing`](crate::keys::key_ring::KeyRing) asks again for the
    /// same slot after this delay instead of keeping the stand-in for a whole rotation; a
    /// source asked again while still cut off should hand out the same stand-in. The default,
    /// `None`: every key is final.
    fn retry_after(&self, _key: &KeyName) -> Option<std::time::Duration> {
        None
    }

    /// The key the rotation slot starting at `created` was given, if the source still holds
    /// it, without making one: a source shared by a fleet answers from its store. A
    /// [`KeyRing`](crate::keys::key_ring::KeyRing) over a [slot-aligned](Self::slot_aligned)
    /// source asks for the previous slots' keys when it starts (a node started or restarted
    /// mid-rotation), so the tickets the fleet sealed before this process started still open
    /// on it. The default, `None`: keys made before this process are not known.
    fn earlier_key(&self, _created: UnixTime) -> Option<KeyMaterial> {
        None
    }

    /// The key of the rotation slot starting at `created` if the source can hand it out at
    /// once, without waiting on anything (a shared store): `Some` with what
    /// [`new_key`](Self::new_key) would give, `None` when only the network could tell. A
    /// [`KeyRing`](crate::keys::key_ring::KeyRing) that holds a usable key rotates with this
    /// alone, from inside the TLS libraries' ticket callbacks, so no handshake waits on the
    /// source (on an async server, no runtime thread does); when it gets `None` it goes on
    /// sealing with the key it has and calls [`fetch_ahead`](Self::fetch_ahead). A source whose
    /// keys are held ([`fetch_ahead`](Self::fetch_ahead) did its work) answers from memory; a
    /// stand-in it still holds for the slot is a valid answer (the ring asks about it again, as
    /// for [`retry_after`](Self::retry_after)).
    ///
    /// The default calls [`new_key`](Self::new_key): right for a source that never waits (the
    /// [`ProcessKeySource`]). A source whose `new_key` may block must override it.
    fn key_now(&self, created: UnixTime) -> Option<Result<KeyMaterial, KeyError>> {
        Some(self.new_key(created))
    }

    /// Starts getting the key of the rotation slot starting at `created` in the background
    /// (a thread or task the source owns), and returns at once, so that a later
    /// [`key_now`](Self::key_now) has it. A [`KeyRing`](crate::keys::key_ring::KeyRing) over a
    /// [slot-aligned](Self::slot_aligned) source calls it shortly before each rotation (see
    /// [`KeyRing::fetch_lead`](crate::keys::key_ring::KeyRing::fetch_lead)) and whenever
    /// `key_now` had no answer. Calls for a slot already being fetched should cost nothing.
    /// The default does nothing (a source that never waits has nothing to fetch).
    fn fetch_ahead(&self, _created: UnixTime) {}
}

/// Random keys made in this process from the system's CSPRNG. Nothing is ever written out.
pub struct ProcessKeySource {
    rng: SystemRandom,
    master: Mutex<Option<MasterSecret>>,
}

impl ProcessKeySource {
    /// A source with no keys made yet.
    pub fn new() -> Self {
        Self {
            rng: SystemRandom::new(),
            master: Mutex::new(None),
        }
    }

    fn random<const N: usize>(&self) -> Result<[u8; N], KeyError> {
        let mut bytes = [0u8; N];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| KeyError::Source("the system random generator failed".into()))?;
        Ok(bytes)
    }
}

impl Default for ProcessKeySource {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ProcessKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProcessKeySource")
    }
}

impl KeySource for ProcessKeySource {
    fn new_key(&self, _created: UnixTime) -> Result<KeyMaterial, KeyError> {
        let mut name = self.random::<16>()?;
        // Exim's key names start with 'E'; keeping that makes tickets recognisable in captures.
        name[0] = b'E';
        let mut secret = self.random::<64>()?;
        let material = KeyMaterial {
            name: KeyName(name),
            secret: KeySecret::new(secret),
        };
        secret.zeroize();
        Ok(material)
    }

    fn master_secret(&self) -> Result<MasterSecret, KeyError> {
        let mut guard = self
            .master
            .lock()
            .map_err(|_| KeyError::Source("master secret lock poisoned".into()))?;
        if let Some(master) = guard.as_ref() {
            return Ok(master.clone());
        }
        let mut bytes = self.random::<64>()?;
        let master = MasterSecret::new(bytes);
        bytes.zeroize();
        *guard = Some(master.clone());
        Ok(master)
    }
}

/// A master secret bound to a server name, for a library that derives its ticket keys from one
/// master secret itself and cannot be asked which name a ticket was issued under (GnuTLS):
/// HMAC-SHA-512 keyed with `master` over `tlsresume server name\0` and the name as compared
/// ([`normalise`](crate::identities::normalise)d), 64 bytes; `master` itself when the client
/// sent no name. A ticket issued under one name's secret does not open under another's: a full
/// handshake follows, as RFC 8446 4.6.1 and RFC 6066 3 ask.
pub fn master_for_server_name(master: &[u8], name: Option<&str>) -> zeroize::Zeroizing<Vec<u8>> {
    let Some(name) = name else {
        return zeroize::Zeroizing::new(master.to_vec());
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA512, master);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(b"tlsresume server name\0");
    ctx.update(crate::identities::normalise(name).as_bytes());
    zeroize::Zeroizing::new(ctx.sign().as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_bound_to_a_name_differs_per_name() {
        let master = [7u8; 64];
        assert_eq!(*master_for_server_name(&master, None), master.to_vec());
        let a = master_for_server_name(&master, Some("a.example"));
        assert_eq!(a.len(), 64);
        assert_eq!(a, master_for_server_name(&master, Some("A.Example.")));
        assert_ne!(a, master_for_server_name(&master, Some("b.example")));
        assert_ne!(*a, master.to_vec());
    }

    /// An entry holding `data` sealed under `key` for `backend` and `place`.
    fn sealed_entry(key: &SessionKey, backend: &str, place: &CacheKey, data: &[u8]) -> CacheEntry {
        let mut entry = CacheEntry::new(
            crate::BackendKind::Gnutls,
            0x0304,
            Vec::new(),
            UnixTime::from_secs(1_700_000_000),
            std::time::Duration::from_secs(7200),
        );
        entry.verification = crate::Verification::Failed;
        entry.session = key.seal_session(backend, place, &entry, data);
        entry
    }

    /// This process's key is one key for every caller, shared without a reference count (its
    /// clones point at the one static key): what one call seals, another call's key opens,
    /// and a key made from other bytes does not.
    #[test]
    fn the_process_key_is_one_static_key() {
        let (a, b) = (SessionKey::process(), SessionKey::process());
        assert!(
            matches!((&a.0, &b.0), (KeyRef::Process(x), KeyRef::Process(y)) if std::ptr::eq(*x, *y))
        );
        assert!(a == b);
        let place = CacheKey::builder(std::net::SocketAddr::from(([192, 0, 2, 7], 25))).build();
        let entry = sealed_entry(&a, "rustls", &place, b"session");
        assert_eq!(
            b.open_session("rustls", &place, &entry),
            Some(&b"session"[..])
        );
        let other = SessionKey::from_bytes([1; 32]);
        assert!(matches!(other.0, KeyRef::Shared(_)));
        assert!(other != a);
        assert_eq!(other.open_session("rustls", &place, &entry), None);
    }

    /// The tags of a sealed field give back exactly its bytes with its data, and tell them
    /// from any other bytes: a byte changed anywhere, one more or one fewer, other data, the
    /// tags of another seal.
    #[test]
    fn sealed_tags_tell_exactly_the_bytes_they_sealed() {
        let key = SessionKey::from_bytes([7; 32]);
        let here = CacheKey::from_bytes([1; 32]);
        let data = b"library session";
        let sealed = sealed_entry(&key, "rustls", &here, data).session;
        let tags = SealedTags::of(&sealed).expect("a sealed field");
        assert_eq!(tags.sealed(data), sealed);
        assert!(tags.sealed_over(&sealed, data));
        for i in 0..sealed.len() {
            let mut changed = sealed.clone();
            changed[i] ^= 1;
            assert!(!tags.sealed_over(&changed, data), "byte {i}");
        }
        assert!(!tags.sealed_over(&sealed[..sealed.len() - 1], data));
        assert!(!tags.sealed_over(&[&sealed[..], b"x"].concat(), data));
        assert!(!tags.sealed_over(&sealed, b"library sessioN"));
        assert!(!tags.sealed_over(&sealed, b""));
        assert!(!tags.sealed_over(b"", data));
        let other = sealed_entry(&key, "rustls", &here, b"another session").session;
        let other_tags = SealedTags::of(&other).expect("a sealed field");
        assert_ne!(tags, other_tags);
        assert!(!other_tags.sealed_over(&sealed, data));
        assert_eq!(SealedTags::of(b"TRS3 too short"), None);
        assert_eq!(SealedTags::of(&sealed[4..]), None, "no magic");
    }

    #[test]
    fn sealed_sessions_open_under_their_key_backend_and_cache_key_only() {
        let key = SessionKey::from_bytes([7; 32]);
        let here = CacheKey::from_bytes([1; 32]);
        let entry = sealed_entry(&key, "gnutls", &here, b"library session");
        let sealed = entry.session.clone();
        let with = |session: &[u8]| {
            let mut e = entry.clone();
            e.session = session.to_vec();
            e
        };
        assert_eq!(
            key.open_session("gnutls", &here, &entry),
            Some(&b"library session"[..])
        );
        assert!(key.entry_fields_sealed(&entry));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(
                key.open_session("gnutls", &here, &with(&bad)),
                None,
                "byte {i}"
            );
        }
        assert_eq!(key.open_session("gnutls", &here, &with(b"")), None);
        assert_eq!(key.open_session("gnutls", &here, &with(b"TRS3short")), None);
        assert_eq!(
            key.open_session("gnutls", &here, &with(&sealed[..68])),
            None
        );
        assert!(!key.entry_fields_sealed(&with(&sealed[..67])));
        // Another key, another backend, another cache key (an entry copied elsewhere in the
        // store), or an earlier format: never opens.
        let other = SessionKey::from_bytes([8; 32]);
        assert_eq!(other.open_session("gnutls", &here, &entry), None);
        assert!(!other.entry_fields_sealed(&entry));
        assert_eq!(key.open_session("openssl", &here, &entry), None);
        let elsewhere = CacheKey::from_bytes([2; 32]);
        assert_eq!(key.open_session("gnutls", &elsewhere, &entry), None);
        for magic in [b"TRG2", b"TRS1", b"TRS2"] {
            let mut old = magic.to_vec();
            old.extend_from_slice(&sealed[4..]);
            assert_eq!(key.open_session("gnutls", &here, &with(&old)), None);
        }
        // The earlier format's tag (TRS2: backend, cache key and data only), under the same
        // key: not opened.
        let mut trs2 = b"TRS2".to_vec();
        trs2.extend_from_slice(&sealed[4..36]);
        trs2.extend_from_slice(b"library session");
        assert_eq!(key.open_session("gnutls", &here, &with(&trs2)), None);
        // Empty data seals and opens.
        let empty = sealed_entry(&key, "rustls", &here, b"");
        assert_eq!(key.open_session("rustls", &here, &empty), Some(&b""[..]));
    }

    #[test]
    fn a_rewritten_verdict_or_expiry_does_not_open() {
        let key = SessionKey::from_bytes([7; 32]);
        let here = CacheKey::from_bytes([1; 32]);
        let entry = sealed_entry(&key, "gnutls", &here, b"library session");
        type Rewrite = (&'static str, fn(&mut CacheEntry));
        let rewrites: [Rewrite; 8] = [
            ("verification", |e| {
                e.verification = crate::Verification::Verified
            }),
            ("ocsp", |e| e.ocsp = crate::OcspStatus::Verified),
            ("verify_override", |e| e.verify_override = true),
            ("stored_at", |e| {
                e.stored_at = e.stored_at + std::time::Duration::from_secs(3600)
            }),
            ("lifetime_hint", |e| {
                e.lifetime_hint = std::time::Duration::from_secs(86_400)
            }),
            ("protocol", |e| e.protocol = 0x0303),
            ("backend", |e| e.backend = crate::BackendKind::Openssl),
            ("dane", |e| {
                e.dane = Some(crate::DaneAuthority {
                    record: crate::TlsaRecord::new(3, 1, 1, vec![9; 32]),
                    depth: Some(0),
                })
            }),
        ];
        for (field, rewrite) in rewrites {
            let mut forged = entry.clone();
            rewrite(&mut forged);
            assert_ne!(forged, entry, "{field}");
            assert!(!key.entry_fields_sealed(&forged), "{field}");
            assert_eq!(key.open_session("gnutls", &here, &forged), None, "{field}");
            // Through the store's codec too: the rewritten bytes decode, and do not open.
            let decoded = CacheEntry::decode(&forged.encode()).expect("decodes");
            assert_eq!(key.open_session("gnutls", &here, &decoded), None, "{field}");
        }
        let decoded = CacheEntry::decode(&entry.encode()).expect("decodes");
        assert_eq!(
            key.open_session("gnutls", &here, &decoded),
            Some(&b"library session"[..])
        );
    }

    #[test]
    fn entry_tags_remembered_give_the_answer_computing_them_gives() {
        let key = SessionKey::from_bytes([7; 32]);
        let here = CacheKey::from_bytes([1; 32]);
        // Sealing remembers the tag it made: the entry is accepted from what is remembered.
        let entry = sealed_entry(&key, "rustls", &here, b"handle");
        assert_eq!(key.0.entry_tags.len(), 1);
        assert!(key.entry_fields_sealed(&entry));
        // The same key's bytes in a key that remembers nothing: the same answers, computed.
        let fresh = SessionKey::from_bytes([7; 32]);
        assert!(fresh.0.entry_tags.is_empty());
        assert!(fresh.entry_fields_sealed(&entry));
        assert_eq!(fresh.0.entry_tags.len(), 1, "a checked tag is remembered");
        // A rewritten field under a remembered tag: checked, refused, never remembered (twice,
        // so a refusal is not turned into an acceptance either).
        let mut forged = entry.clone();
        forged.verification = crate::Verification::Verified;
        for k in [&key, &fresh] {
            assert!(!k.entry_fields_sealed(&forged));
            assert!(!k.entry_fields_sealed(&forged));
            assert!(k.entry_fields_sealed(&entry));
            assert_eq!(k.0.entry_tags.len(), 1);
        }
        // Past the bound, the older ones are dropped (never more than the bound), the newest
        // is remembered, and entries still check.
        let mut newest = None;
        for n in 0..ENTRY_TAGS_KEPT + 10 {
            newest = Some(sealed_entry(&key, "rustls", &here, &n.to_be_bytes()));
            assert!(key.0.entry_tags.len() <= ENTRY_TAGS_KEPT);
        }
        let newest = newest.expect("sealed");
        let before = key.0.entry_tags.len();
        assert!(key.entry_fields_sealed(&newest));
        assert_eq!(
            key.0.entry_tags.len(),
            before,
            "the newest tag was remembered"
        );
        assert!(key.entry_fields_sealed(&entry));
        assert!(!key.entry_fields_sealed(&forged));
    }

    #[test]
    fn debug_never_prints_secret_bytes() {
        let secret = KeySecret::new([0xAB; 64]);
        let text = format!("{secret:?}");
        assert!(
            !text.contains("171") && !text.to_lowercase().contains("ab"),
            "{text}"
        );
        let master = MasterSecret::new([0xCD; 64]);
        let text = format!("{master:?}");
        assert!(
            !text.contains("205") && !text.to_lowercase().contains("cd,"),
            "{text}"
        );
        let source = ProcessKeySource::new();
        let material = source.new_key(UnixTime::EPOCH).expect("key");
        let text = format!("{material:?}");
        assert!(text.contains("redacted"), "{text}");
    }

    #[test]
    fn process_source_makes_distinct_keys_and_one_master() {
        let source = ProcessKeySource::new();
        let a = source.new_key(UnixTime::EPOCH).expect("key");
        let b = source.new_key(UnixTime::EPOCH).expect("key");
        assert_ne!(a.name, b.name);
        assert_ne!(a.secret.cipher_key(), b.secret.cipher_key());
        assert_eq!(a.name.0[0], b'E');
        let m1 = source.master_secret().expect("master");
        let m2 = source.master_secret().expect("master");
        assert_eq!(m1.as_bytes(), m2.as_bytes());
    }

    #[test]
    fn secret_halves() {
        let mut bytes = [0u8; 64];
        bytes[..32].fill(1);
        bytes[32..].fill(2);
        let secret = KeySecret::new(bytes);
        assert_eq!(secret.cipher_key(), &[1; 32]);
        assert_eq!(secret.mac_key(), &[2; 32]);
    }
}
