//! A client session cache in Redis, shared by a fleet of clients.

use core::fmt;

#[cfg(feature = "ehlo")]
use std::time::Duration;

use tlsresume_core::{
    CacheEntry, CacheKey, Clock, SessionKey, SessionStore, StoreError, SystemClock, UnixTime,
};
#[cfg(feature = "ehlo")]
use tlsresume_smtp::ehlo::{EhloEntry, EhloKey, EhloStore, DEFAULT_RETRY_DATA_EXPIRE};

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

use crate::kek::Kek;
use crate::link::{confirm_on_replica, Link, LinkError, RedisConfig};
use crate::unreadable::Unreadable;

/// A [`SessionStore`] in Redis: one key per session (`{prefix}session:{hex}`), which Redis
/// expires at the entry's [`expires_at`](CacheEntry::expires_at) (`SET … PXAT`).
///
/// Expiry is by the wall clock: an entry already expired when stored is not kept. A value
/// that does not decode is reported ([`Notice::UnreadableEntryLeft`](tlsresume_core::notice::Notice::UnreadableEntryLeft): a `tracing` warning,
/// stderr when no subscriber takes it, or the application's [`notice`](tlsresume_core::notice) handler), counted and
/// treated as absent, and left in Redis: in a fleet it may be another client's (a newer
/// format during a rolling upgrade); Redis expires it at its TTL, and the next session
/// stored under its key replaces it. Every
/// call is bounded by the configured timeouts; while Redis is unreachable calls fail at once
/// (no resumption, no hang) and Redis is tried again after
/// [`RedisConfig::retry_after`]. Needs Redis 6.2 or later (`PXAT`).
///
/// With the `ehlo` feature it also keeps early pipelining's EHLO entries (`tlsresume_smtp::EhloStore`) under
/// `{prefix}ehlo:{ip}:{port}.EHLO`, expired by Redis at the entry's store time plus
/// [`ehlo_expire`](Self::with_ehlo_expire) (Exim's `retry_data_expire`, default 7 days), so a
/// fleet shares what it learnt of each server and nobody has to purge.
///
/// The sessions are sealed under the store's [`SessionKey`]: the fleet's clients resume each
/// other's sessions only when they share one ([`with_session_key`](Self::with_session_key));
/// without it each process uses its own ([`SessionKey::process`]) and skips the others'
/// entries, never removing them.
pub struct RedisStore {
    link: Link,
    unreadable: Unreadable,
    #[cfg(feature = "ehlo")]
    ehlo_expire: Duration,
    session_key: SessionKey,
}

impl RedisStore {
    /// A store on the Redis at `config`. Nothing is sent until the first call; only a
    /// malformed URL fails here.
    pub fn new(config: RedisConfig) -> Result<Self, StoreError> {
        Ok(Self {
            link: Link::new(config).map_err(|e| StoreError::Other(format!("redis: {e}")))?,
            unreadable: Unreadable::default(),
            #[cfg(feature = "ehlo")]
            ehlo_expire: DEFAULT_RETRY_DATA_EXPIRE,
            session_key: SessionKey::process(),
        })
    }

    /// The same store sealing and opening sessions under `key`, shared by the fleet's clients
    /// (distribute it as a secret, like a key-encryption key).
    pub fn with_session_key(mut self, key: SessionKey) -> Self {
        self.session_key = key;
        self
    }

    /// The same store sealing and opening sessions under the fleet's session key, kept in
    /// Redis (`{prefix}session-key`) wrapped with `kek` like the ticket keys: the first
    /// client to ask makes it (`SET NX`, confirmed on a replica with `WAIT 1` when the master
    /// has replicas), the others read it, so every client sharing the Redis and the KEK
    /// resumes the sessions the others stored. Goes to Redis now (bounded by the configured
    /// timeouts). Fails, naming the reason, when Redis cannot be reached (the caller may go
    /// on with the process's own key: sessions then resume on this client only) or when the
    /// stored key does not open with `kek` (another fleet's KEK).
    pub fn with_fleet_session_key(mut self, kek: &Kek) -> Result<Self, StoreError> {
        let name = self.redis_session_key_name();
        let fail = |why: String| StoreError::Other(format!("redis key {name}: {why}"));
        let mut fresh = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(fresh.as_mut())
            .map_err(|_| fail("the system random generator failed".into()))?;
        let wrapped = kek
            .wrap(name.as_bytes(), fresh.as_ref())
            .map_err(|e| fail(e.to_string()))?;
        let held = self
            .link
            .with(|conn| {
                let set: Option<String> = redis::cmd("SET")
                    .arg(&name)
                    .arg(&wrapped)
                    .arg("NX")
                    .query(conn)?;
                if set.is_some() {
                    confirm_on_replica(conn, &name, self.link.replica_wait())?;
                    return Ok(Some(wrapped.clone()));
                }
                redis::cmd("GET").arg(&name).query::<Option<Vec<u8>>>(conn)
            })
            .map_err(|e| fail(format!("redis {e}")))?
            .ok_or_else(|| fail("vanished right after it was written".into()))?;
        let plain = kek
            .unwrap(name.as_bytes(), &held)
            .map_err(|e| fail(e.to_string()))?;
        let mut bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| fail("not a 32-byte session key".into()))?;
        self.session_key = SessionKey::from_bytes(bytes);
        bytes.zeroize();
        Ok(self)
    }

    /// The Redis key the fleet's wrapped session key is kept under (on a Redis Cluster, with
    /// the prefix as a hash tag: on the ticket keys' slot).
    pub fn redis_session_key_name(&self) -> String {
        self.link.key_set("session-key")
    }

    #[cfg(feature = "ehlo")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ehlo")))]
    /// The same store with EHLO entries expiring `expire` after they were written; set it to
    /// the `retry_data_expire` of the [`tlsresume_smtp::EhloCache`] using this store.
    pub fn with_ehlo_expire(mut self, expire: Duration) -> Self {
        self.ehlo_expire = expire;
        self
    }

    #[cfg(feature = "ehlo")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ehlo")))]
    /// The Redis key an EHLO entry is stored under.
    pub fn redis_ehlo_key(&self, key: &EhloKey) -> String {
        self.link.key(&format!("ehlo:{key}"))
    }

    /// Reads `rkey`; a value that does not decode is reported, counted, left in Redis, absent.
    fn get_decoded<T, E: fmt::Display>(
        &self,
        rkey: &str,
        what: &str,
        decode: impl Fn(&[u8]) -> Result<T, E>,
    ) -> Result<Option<T>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .link
            .with(|conn| redis::cmd("GET").arg(rkey).query(conn))
            .map_err(|e| self.error(&e))?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        match decode(&bytes) {
            Ok(entry) => Ok(Some(entry)),
            Err(err) => {
                self.unreadable.met(
                    format!("redis {}", self.link.config().redacted_url()),
                    format!("{what} {rkey}"),
                    &bytes,
                    err.to_string(),
                );
                Ok(None)
            }
        }
    }

    /// Writes `bytes` under `rkey` until `expires` (wall clock); an expired value is deleted.
    fn set_until(&self, rkey: &str, bytes: &[u8], expires: UnixTime) -> Result<(), StoreError> {
        let expires = millis(expires);
        if expires <= millis(SystemClock.now()) {
            return self.del(rkey);
        }
        self.link
            .with(|conn| {
                redis::cmd("SET")
                    .arg(rkey)
                    .arg(bytes)
                    .arg("PXAT")
                    .arg(expires)
                    .query::<()>(conn)
            })
            .map_err(|e| self.error(&e))
    }

    fn del(&self, rkey: &str) -> Result<(), StoreError> {
        self.link
            .with(|conn| redis::cmd("DEL").arg(rkey).query::<()>(conn))
            .map_err(|e| self.error(&e))
    }

    /// The Redis key a session is stored under.
    pub fn redis_key(&self, key: &CacheKey) -> String {
        self.link.key(&format!("session:{}", key.to_hex()))
    }

    /// How many entries this handle could not read (each counted once while it is unchanged),
    /// skipped and left in Redis.
    pub fn corrupt_skipped(&self) -> u64 {
        self.unreadable.count()
    }

    fn error(&self, e: &LinkError) -> StoreError {
        StoreError::Other(format!("redis {}: {e}", self.link.config().redacted_url()))
    }
}

fn millis(t: UnixTime) -> u64 {
    t.as_micros() / 1000
}

impl SessionStore for RedisStore {
    fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        self.get_decoded(&self.redis_key(key), "entry", CacheEntry::decode)
    }

    fn put(&self, key: &CacheKey, entry: CacheEntry) -> Result<(), StoreError> {
        self.set_until(&self.redis_key(key), &entry.encode(), entry.expires_at())
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.del(&self.redis_key(key))
    }

    fn session_key(&self) -> SessionKey {
        self.session_key.clone()
    }
}

#[cfg(feature = "ehlo")]
#[cfg_attr(docsrs, doc(cfg(feature = "ehlo")))]
impl EhloStore for RedisStore {
    fn get_ehlo(&self, key: &EhloKey) -> Result<Option<EhloEntry>, StoreError> {
        self.get_decoded(&self.redis_ehlo_key(key), "EHLO entry", EhloEntry::decode)
    }

    fn put_ehlo(&self, key: &EhloKey, entry: &EhloEntry) -> Result<(), StoreError> {
        self.set_until(
            &self.redis_ehlo_key(key),
            &entry.encode(),
            entry.stored_at + self.ehlo_expire,
        )
    }

    fn remove_ehlo(&self, key: &EhloKey) -> Result<(), StoreError> {
        self.del(&self.redis_ehlo_key(key))
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("redis", &self.link)
            .field("corrupt_skipped", &self.corrupt_skipped())
            .finish()
    }
}
