//! A client session cache in Redis, shared by a fleet of clients.

use core::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use tlsresume_core::{
    CacheEntry, CacheKey, Clock, SessionStore, StoreError, SystemClock, UnixTime,
};

use crate::link::{Link, LinkError, RedisConfig};

/// A [`SessionStore`] in Redis: one key per session (`{prefix}session:{hex}`), which Redis
/// expires at the entry's [`expires_at`](CacheEntry::expires_at) (`SET … PXAT`).
///
/// Expiry is by the wall clock: an entry already expired when stored is not kept. A value
/// that does not decode is reported on stderr, counted, deleted and treated as absent. Every
/// call is bounded by the configured timeouts; while Redis is unreachable calls fail at once
/// (no resumption, no hang) and Redis is tried again after
/// [`RedisConfig::retry_after`]. Needs Redis 6.2 or later (`PXAT`).
pub struct RedisStore {
    link: Link,
    corrupt: AtomicU64,
}

impl RedisStore {
    /// A store on the Redis at `config`. Nothing is sent until the first call; only a
    /// malformed URL fails here.
    pub fn new(config: RedisConfig) -> Result<Self, StoreError> {
        Ok(Self {
            link: Link::new(config).map_err(|e| StoreError::Other(format!("redis: {e}")))?,
            corrupt: AtomicU64::new(0),
        })
    }

    /// The Redis key a session is stored under.
    pub fn redis_key(&self, key: &CacheKey) -> String {
        self.link.key(&format!("session:{}", key.to_hex()))
    }

    /// How many corrupt entries this handle has met, skipped and removed.
    pub fn corrupt_skipped(&self) -> u64 {
        self.corrupt.load(Ordering::Relaxed)
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
        let rkey = self.redis_key(key);
        let bytes: Option<Vec<u8>> = self
            .link
            .with(|conn| redis::cmd("GET").arg(&rkey).query(conn))
            .map_err(|e| self.error(&e))?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        match CacheEntry::decode(&bytes) {
            Ok(entry) => Ok(Some(entry)),
            Err(err) => {
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "tlsresume-stores: warning: redis {}: skipping corrupt entry {rkey}: {err}; removed",
                    self.link.config().redacted_url()
                );
                self.link
                    .with(|conn| redis::cmd("DEL").arg(&rkey).query::<()>(conn))
                    .map_err(|e| self.error(&e))?;
                Ok(None)
            }
        }
    }

    fn put(&self, key: &CacheKey, entry: CacheEntry) -> Result<(), StoreError> {
        let rkey = self.redis_key(key);
        let expires = millis(entry.expires_at());
        if expires <= millis(SystemClock.now()) {
            return self.remove(key);
        }
        let bytes = entry.encode();
        self.link
            .with(|conn| {
                redis::cmd("SET")
                    .arg(&rkey)
                    .arg(bytes.as_slice())
                    .arg("PXAT")
                    .arg(expires)
                    .query::<()>(conn)
            })
            .map_err(|e| self.error(&e))
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        let rkey = self.redis_key(key);
        self.link
            .with(|conn| redis::cmd("DEL").arg(&rkey).query::<()>(conn))
            .map_err(|e| self.error(&e))
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
