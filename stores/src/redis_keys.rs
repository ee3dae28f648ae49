//! Ticket keys shared by a fleet of servers through Redis.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::RedisError;
use ring::rand::{SecureRandom, SystemRandom};
use tlsresume_core::keys::{KeyMaterial, KeyName, KeySecret, MasterSecret};
use tlsresume_core::notice::{self, Notice};
use tlsresume_core::{KeyError, KeySource, ProcessKeySource, TicketPolicy, UnixTime};
use zeroize::{Zeroize, Zeroizing};

use crate::kek::{Kek, KekError};
use crate::link::{confirm_on_replica, Conn, Link, RedisConfig};

/// A [`KeySource`] shared by every server of a fleet through Redis.
///
/// - **Rolling schedule** (OpenSSL, rustls): the key for rotation slot
///   `floor(created / rotation)` is made by whichever node asks first, with one atomic
///   `SET … NX PX`; the others read it. Racing nodes therefore agree on exactly one key per
///   slot. The next slot's key is fetched (or made) at the same time and held, so a Redis
///   outage at the next rotation still yields the fleet's key.
/// - **Periodic schedule** (GnuTLS): one master secret, stored once with `SET … NX` (no
///   expiry); every node derives the same per-period keys from it.
/// - Keys are sealed with AES-256-GCM under the [`Kek`] and bound to their Redis key name;
///   Redis never holds them in clear.
/// - Keys are cached in the process and **no handshake waits for Redis** once the node holds
///   a key: a [`KeyRing`](tlsresume_core::keys::key_ring::KeyRing) asks
///   ([`KeySource::fetch_ahead`]) shortly before each rotation for the next slot's key, which
///   a thread of this source fetches (or makes) in the background, and rotates at the
///   boundary with the key held ([`KeySource::key_now`]), from memory. A slot whose key is not
///   held at its rotation (Redis did not answer in time) is fetched in the background too,
///   the ring sealing with its current key meanwhile. Only a node with no usable key (at
///   start, or after an outage longer than a key's life) waits for Redis, bounded by the
///   configured timeouts; [`master_secret`](KeySource::master_secret) goes to Redis once.
/// - **Redis unreachable**: keys already held keep serving; a slot with no held key gets a
///   process-local key (tickets then resume on this node only) and the master secret falls
///   back to a process-local one, never an error. The process-local key is a stand-in
///   ([`KeySource::retry_after`]): the ring asks for the slot's key again every
///   [`RedisConfig::retry_after`], getting the same stand-in while Redis is away and the
///   fleet's key for the slot once it answers, so the node rejoins the fleet within the slot
///   (the stand-in still opens the tickets it sealed). A process-local master secret is a
///   stand-in too ([`KeySource::master_retry_after`]): asked about again after the same delay,
///   it gives way to the fleet's once Redis answers. A node that holds the master secret puts
///   it back (`SET NX`) at each rotation, in case Redis restarted empty.
///
/// - **Redis Cluster** (`redis+cluster://`): the keys of the set (ticket keys, master secret)
///   carry the prefix as a hash tag (`{tlsresume:}stek:…`), so they live on one slot, and a
///   new key is confirmed with `WAIT 1` on the master serving that slot.
///
/// Needs Redis 6.2 or later. Run it with persistence (`appendonly yes`) so that a restart does
/// not make nodes that held no key create new ones.
pub struct RedisKeySource {
    shared: Arc<Source>,
    /// The background fetcher's queue (slot numbers), started on first use; its thread ends
    /// when the source is dropped.
    fetcher: Mutex<Option<mpsc::Sender<u64>>>,
}

/// The source's state, shared with its background fetcher.
struct Source {
    link: Link,
    kek: Kek,
    rotation_secs: u64,
    key_ttl: Duration,
    cache: Mutex<Held>,
    local: ProcessKeySource,
    rng: SystemRandom,
    shared: AtomicU64,
    local_keys: AtomicU64,
    unconfirmed: AtomicU64,
    confirmed: AtomicU64,
    fetched_ahead: AtomicU64,
    /// Slots queued for (or being fetched by) the background fetcher.
    fetching: Mutex<BTreeSet<u64>>,
}

#[derive(Default)]
struct Held {
    /// Shared keys by slot: at most the current one, the next and the previous.
    slots: BTreeMap<u64, KeyMaterial>,
    /// Process-local stand-ins by slot, made while Redis could not give the slot's key: the
    /// same one is handed out again until Redis answers (see `retry_after`).
    stand_ins: BTreeMap<u64, KeyMaterial>,
    master: Option<MasterSecret>,
    /// Whether a process-local master secret was handed out (warned about once).
    master_stand_in: bool,
}

/// What a [`RedisKeySource`] has handed out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySourceStats {
    /// Keys (and master secrets) the fleet shares.
    pub shared: u64,
    /// Process-local fallbacks, each because Redis was unreachable or its value did not open.
    pub local: u64,
    /// Keys this node wrote to a master with replicas that no replica acknowledged within
    /// the bound (`WAIT`): a failover at that moment could lose them.
    pub unconfirmed: u64,
    /// Keys this node wrote to a master with replicas that a replica acknowledged in time.
    pub confirmed: u64,
    /// Slots whose fleet key the background fetcher brought before a ticket call needed it
    /// ([`KeySource::fetch_ahead`]).
    pub fetched_ahead: u64,
}

impl RedisKeySource {
    /// A key source for servers following `policy` (its rotation period fixes the slots).
    /// Nothing is sent to Redis until a key is asked for; only a malformed URL fails here.
    pub fn new(config: RedisConfig, kek: Kek, policy: &TicketPolicy) -> Result<Self, KeyError> {
        let link = Link::new(config).map_err(|e| KeyError::Source(format!("redis: {e}")))?;
        let rotation = policy.rotation().max(Duration::from_secs(1));
        let source = Source {
            link,
            kek,
            rotation_secs: rotation.as_secs().max(1),
            // From being made ahead of its slot to the end of its last use by a late ring.
            key_ttl: policy
                .key_lifetime()
                .saturating_add(rotation.saturating_mul(2)),
            cache: Mutex::new(Held::default()),
            local: ProcessKeySource::new(),
            rng: SystemRandom::new(),
            shared: AtomicU64::new(0),
            local_keys: AtomicU64::new(0),
            unconfirmed: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            fetched_ahead: AtomicU64::new(0),
            fetching: Mutex::new(BTreeSet::new()),
        };
        Ok(Self {
            shared: Arc::new(source),
            fetcher: Mutex::new(None),
        })
    }

    /// The rotation slot of `t`: `floor(t / rotation)`.
    pub fn slot_at(&self, t: UnixTime) -> u64 {
        self.shared.slot_at(t)
    }

    /// The Redis key the wrapped ticket key of `slot` is stored under.
    pub fn redis_key_for_slot(&self, slot: u64) -> String {
        self.shared.redis_key_for_slot(slot)
    }

    /// The Redis key the wrapped master secret is stored under.
    pub fn redis_master_key(&self) -> String {
        self.shared.redis_master_key()
    }

    /// The configuration in use.
    pub fn config(&self) -> &RedisConfig {
        self.shared.link.config()
    }

    /// What has been handed out so far.
    pub fn stats(&self) -> KeySourceStats {
        let s = &self.shared;
        KeySourceStats {
            shared: s.shared.load(Ordering::Relaxed),
            local: s.local_keys.load(Ordering::Relaxed),
            unconfirmed: s.unconfirmed.load(Ordering::Relaxed),
            confirmed: s.confirmed.load(Ordering::Relaxed),
            fetched_ahead: s.fetched_ahead.load(Ordering::Relaxed),
        }
    }

    /// Queues `slot` for the background fetcher (started on first use) unless it is queued
    /// already; never waits.
    fn queue_fetch(&self, slot: u64) {
        if !self.shared.fetching().insert(slot) {
            return;
        }
        let mut fetcher = self.fetcher.lock().unwrap_or_else(|p| p.into_inner());
        if fetcher.is_none() {
            let (tx, rx) = mpsc::channel::<u64>();
            let source = Arc::clone(&self.shared);
            let started = std::thread::Builder::new()
                .name("tlsresume-ticket-keys".into())
                .spawn(move || {
                    // Ends when the source is dropped (the sender with it).
                    while let Ok(slot) = rx.recv() {
                        let start = UnixTime::from_secs(slot.saturating_mul(source.rotation_secs));
                        // Fetched (or made) and held, or a stand-in held: either way what
                        // `key_now` hands out next.
                        if source.new_key(start).is_ok() && source.held().slots.contains_key(&slot)
                        {
                            source.fetched_ahead.fetch_add(1, Ordering::Relaxed);
                        }
                        source.fetching().remove(&slot);
                    }
                });
            if started.is_ok() {
                *fetcher = Some(tx);
            }
        }
        let sent = fetcher.as_ref().is_some_and(|tx| tx.send(slot).is_ok());
        if !sent {
            // No thread to fetch it: the ring goes on with the key it holds, and a ring with
            // none waits for `new_key`.
            *fetcher = None;
            self.shared.fetching().remove(&slot);
        }
    }
}

impl Source {
    /// The rotation slot of `t`: `floor(t / rotation)`.
    fn slot_at(&self, t: UnixTime) -> u64 {
        t.as_secs() / self.rotation_secs
    }

    fn redis_key_for_slot(&self, slot: u64) -> String {
        self.link
            .key_set(&format!("stek:{}:{slot}", self.rotation_secs))
    }

    fn redis_master_key(&self) -> String {
        self.link.key_set("master")
    }

    fn fetching(&self) -> MutexGuard<'_, BTreeSet<u64>> {
        self.fetching.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn random<const N: usize>(&self) -> Result<Zeroizing<[u8; N]>, KeyError> {
        let mut bytes = Zeroizing::new([0u8; N]);
        self.rng
            .fill(bytes.as_mut())
            .map_err(|_| KeyError::Source("the system random generator failed".into()))?;
        Ok(bytes)
    }

    fn fresh_key(&self) -> Result<KeyMaterial, KeyError> {
        let mut plain = self.random::<80>()?;
        // Exim's key names start with 'E'.
        plain[0] = b'E';
        material_from(plain.as_ref()).ok_or_else(|| KeyError::Source("key length".into()))
    }

    /// Stores `candidate` under `key` unless a value is there; returns the value Redis holds
    /// afterwards (wrapped). A value this call wrote is confirmed on a replica when the
    /// server has replicas (`WAIT 1`, bounded by half the I/O timeout), so a failover right
    /// after does not lose it; a write no replica acknowledged in time is counted
    /// ([`KeySourceStats::unconfirmed`]) and still used.
    fn set_nx_or_get(
        &self,
        conn: &mut Conn,
        key: &str,
        candidate: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, RedisError> {
        for _ in 0..3 {
            let mut set = redis::cmd("SET");
            set.arg(key).arg(candidate).arg("NX");
            if let Some(ttl) = ttl {
                set.arg("PX")
                    .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
            }
            let stored: Option<String> = set.query(conn)?;
            if stored.is_some() {
                match confirm_on_replica(conn, key, self.link.replica_wait())? {
                    Some(0) => self.unconfirmed.fetch_add(1, Ordering::Relaxed),
                    Some(_) => self.confirmed.fetch_add(1, Ordering::Relaxed),
                    None => 0,
                };
                return Ok(Some(candidate.to_vec()));
            }
            let current: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(conn)?;
            if current.is_some() {
                return Ok(current);
            }
            // Expired between the two calls: try again.
        }
        Ok(None)
    }

    /// The fleet's key for `slot`: held `known` is offered (re-seeding a Redis that lost
    /// it), else a fresh candidate; whatever Redis holds wins.
    fn shared_slot_key(
        &self,
        conn: &mut Conn,
        slot: u64,
        known: Option<&KeyMaterial>,
    ) -> Result<Result<KeyMaterial, SlotError>, RedisError> {
        let key = self.redis_key_for_slot(slot);
        let candidate = match known {
            Some(k) => k.clone(),
            None => match self.fresh_key() {
                Ok(k) => k,
                Err(e) => return Ok(Err(SlotError::Key(e))),
            },
        };
        let mut plain = Zeroizing::new([0u8; 80]);
        plain[..16].copy_from_slice(candidate.name.as_bytes());
        plain[16..48].copy_from_slice(candidate.secret.cipher_key());
        plain[48..].copy_from_slice(candidate.secret.mac_key());
        let wrapped = match self.kek.wrap(key.as_bytes(), plain.as_ref()) {
            Ok(w) => w,
            Err(e) => return Ok(Err(SlotError::Kek(key, e))),
        };
        let Some(held) = self.set_nx_or_get(conn, &key, &wrapped, Some(self.key_ttl))? else {
            return Ok(Err(SlotError::Vanished(key)));
        };
        if held == wrapped {
            return Ok(Ok(candidate));
        }
        Ok(match self.kek.unwrap(key.as_bytes(), &held) {
            Ok(plain) => material_from(&plain).ok_or(SlotError::Kek(key, KekError::Unwrap)),
            Err(e) => Err(SlotError::Kek(key, e)),
        })
    }

    fn fall_back_key(&self, created: UnixTime, why: &str) -> Result<KeyMaterial, KeyError> {
        let slot = self.slot_at(created);
        let mut held = self.held();
        if let Some(key) = held.stand_ins.get(&slot) {
            return Ok(key.clone());
        }
        let key = self.local.new_key(created)?;
        held.stand_ins.insert(slot, key.clone());
        held.stand_ins
            .retain(|s, _| s.saturating_add(1) >= slot && *s <= slot);
        drop(held);
        self.local_keys.fetch_add(1, Ordering::Relaxed);
        notice::emit(Notice::StandInKey {
            key: format!("ticket key for slot {slot}"),
            why: why.to_owned(),
        });
        Ok(key)
    }

    /// Puts the held master secret back if Redis lost it (a restart without persistence), so
    /// nodes that start later derive the same keys as this one.
    fn reseed_master(&self, conn: &mut Conn, master: &MasterSecret) -> Result<(), RedisError> {
        let key = self.redis_master_key();
        if let Ok(wrapped) = self.kek.wrap(key.as_bytes(), master.as_bytes()) {
            redis::cmd("SET")
                .arg(&key)
                .arg(wrapped)
                .arg("NX")
                .query::<Option<String>>(conn)?;
        }
        Ok(())
    }

    fn shared_master(
        &self,
        conn: &mut Conn,
    ) -> Result<Result<MasterSecret, SlotError>, RedisError> {
        let key = self.redis_master_key();
        let candidate = match self.random::<64>() {
            Ok(c) => c,
            Err(e) => return Ok(Err(SlotError::Key(e))),
        };
        let wrapped = match self.kek.wrap(key.as_bytes(), candidate.as_ref()) {
            Ok(w) => w,
            Err(e) => return Ok(Err(SlotError::Kek(key, e))),
        };
        let Some(held) = self.set_nx_or_get(conn, &key, &wrapped, None)? else {
            return Ok(Err(SlotError::Vanished(key)));
        };
        let plain = if held == wrapped {
            Zeroizing::new(candidate.to_vec())
        } else {
            match self.kek.unwrap(key.as_bytes(), &held) {
                Ok(p) => p,
                Err(e) => return Ok(Err(SlotError::Kek(key, e))),
            }
        };
        let mut bytes: [u8; 64] = match plain.as_slice().try_into() {
            Ok(b) => b,
            Err(_) => return Ok(Err(SlotError::Kek(key, KekError::Unwrap))),
        };
        let master = MasterSecret::new(bytes);
        bytes.zeroize();
        Ok(Ok(master))
    }
}

enum SlotError {
    Key(KeyError),
    Kek(String, KekError),
    Vanished(String),
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotError::Key(e) => write!(f, "{e}"),
            SlotError::Kek(key, e) => write!(f, "redis key {key}: {e}"),
            SlotError::Vanished(key) => write!(f, "redis key {key} keeps vanishing"),
        }
    }
}

/// Name (16) ‖ cipher key (32) ‖ MAC key (32).
fn material_from(plain: &[u8]) -> Option<KeyMaterial> {
    if plain.len() != 80 {
        return None;
    }
    let name = KeyName::from_slice(&plain[..16])?;
    let mut secret = [0u8; 64];
    secret.copy_from_slice(&plain[16..]);
    let material = KeyMaterial {
        name,
        secret: KeySecret::new(secret),
    };
    secret.zeroize();
    Some(material)
}

impl KeySource for RedisKeySource {
    fn new_key(&self, created: UnixTime) -> Result<KeyMaterial, KeyError> {
        self.shared.new_key(created)
    }

    /// Keys belong to rotation slots, so every node's ring rotates at the same boundaries.
    fn slot_aligned(&self) -> bool {
        true
    }

    /// A process-local stand-in (Redis could not give the slot's key) is asked about again
    /// after [`RedisConfig::retry_after`], so a node rejoins the fleet's key within its slot
    /// once Redis answers, not at the next rotation.
    fn retry_after(&self, key: &KeyName) -> Option<Duration> {
        self.shared
            .held()
            .stand_ins
            .values()
            .any(|k| &k.name == key)
            .then(|| self.shared.link.config().retry_delay())
    }

    /// The fleet's key of an earlier slot, read from Redis (never made): a node started
    /// mid-rotation opens the tickets the fleet sealed with it. `None` when Redis does not
    /// answer, holds no key for the slot, or holds one that does not open with the KEK.
    fn earlier_key(&self, created: UnixTime) -> Option<KeyMaterial> {
        self.shared.earlier_key(created)
    }

    /// The slot's key as held in memory (fetched ahead, or at an earlier rotation), never
    /// from Redis. Not held: the slot is queued for the background fetcher, and the stand-in
    /// this node made for the slot (Redis did not answer) is handed out if there is one,
    /// `None` otherwise.
    fn key_now(&self, created: UnixTime) -> Option<Result<KeyMaterial, KeyError>> {
        let slot = self.shared.slot_at(created);
        let stand_in = {
            let held = self.shared.held();
            if let Some(key) = held.slots.get(&slot) {
                self.shared.shared.fetch_add(1, Ordering::Relaxed);
                return Some(Ok(key.clone()));
            }
            held.stand_ins.get(&slot).cloned()
        };
        self.queue_fetch(slot);
        stand_in.map(Ok)
    }

    /// Queues the slot for this source's fetcher thread (started on first use; one fetch at a
    /// time, a slot queued once): it fetches (or makes) the slot's key and the next one's,
    /// as [`new_key`](KeySource::new_key) does, waiting on Redis there instead of in a
    /// handshake.
    fn fetch_ahead(&self, created: UnixTime) {
        self.queue_fetch(self.shared.slot_at(created));
    }

    fn master_secret(&self) -> Result<MasterSecret, KeyError> {
        self.shared.master_secret()
    }

    /// A process-local master secret (Redis could not give the fleet's) is asked about again
    /// after [`RedisConfig::retry_after`], so a node started during an outage takes the fleet's
    /// master once Redis answers instead of keeping its own for good.
    fn master_retry_after(&self, master: &MasterSecret) -> Option<Duration> {
        (self.shared.held().master.as_ref() != Some(master))
            .then(|| self.shared.link.config().retry_delay())
    }
}

impl Source {
    fn new_key(&self, created: UnixTime) -> Result<KeyMaterial, KeyError> {
        let slot = self.slot_at(created);
        let (known, known_next, master) = {
            let held = self.held();
            (
                held.slots.get(&slot).cloned(),
                held.slots.get(&slot.saturating_add(1)).cloned(),
                held.master.clone(),
            )
        };
        let result = self.link.with(|conn| {
            let current = self.shared_slot_key(conn, slot, known.as_ref())?;
            let next = self.shared_slot_key(conn, slot.saturating_add(1), known_next.as_ref())?;
            if let Some(master) = &master {
                self.reseed_master(conn, master)?;
            }
            Ok((current, next))
        });
        match result {
            Ok((current, next)) => {
                let mut held = self.held();
                if let Ok(next) = next {
                    held.slots.insert(slot.saturating_add(1), next);
                }
                held.slots
                    .retain(|s, _| s.saturating_add(1) >= slot && *s <= slot.saturating_add(1));
                match current {
                    Ok(key) => {
                        held.slots.insert(slot, key.clone());
                        let was_stand_in = held.stand_ins.remove(&slot).is_some();
                        drop(held);
                        if was_stand_in {
                            notice::emit(Notice::FleetKeyAgain {
                                key: format!("ticket key for slot {slot}"),
                            });
                        }
                        self.shared.fetch_add(1, Ordering::Relaxed);
                        Ok(key)
                    }
                    Err(e) => {
                        drop(held);
                        self.fall_back_key(created, &e.to_string())
                    }
                }
            }
            Err(e) => match known {
                // The fleet's key for this slot was fetched ahead: still shared.
                Some(key) => {
                    self.shared.fetch_add(1, Ordering::Relaxed);
                    Ok(key)
                }
                None => self.fall_back_key(created, &format!("redis {e}")),
            },
        }
    }

    fn earlier_key(&self, created: UnixTime) -> Option<KeyMaterial> {
        let slot = self.slot_at(created);
        if let Some(key) = self.held().slots.get(&slot) {
            return Some(key.clone());
        }
        let key = self.redis_key_for_slot(slot);
        let wrapped = self
            .link
            .with(|conn| redis::cmd("GET").arg(&key).query::<Option<Vec<u8>>>(conn))
            .ok()??;
        let plain = self.kek.unwrap(key.as_bytes(), &wrapped).ok()?;
        material_from(&plain)
    }

    fn master_secret(&self) -> Result<MasterSecret, KeyError> {
        if let Some(master) = self.held().master.clone() {
            return Ok(master);
        }
        let why = match self.link.with(|conn| self.shared_master(conn)) {
            Ok(Ok(master)) => {
                let mut held = self.held();
                // Another thread may have fetched it meanwhile: both are Redis's value.
                let master = held.master.get_or_insert(master).clone();
                let was_stand_in = std::mem::take(&mut held.master_stand_in);
                drop(held);
                self.shared.fetch_add(1, Ordering::Relaxed);
                if was_stand_in {
                    notice::emit(Notice::FleetKeyAgain {
                        key: "ticket master secret".into(),
                    });
                }
                return Ok(master);
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("redis {e}"),
        };
        let first = !std::mem::replace(&mut self.held().master_stand_in, true);
        if first {
            self.local_keys.fetch_add(1, Ordering::Relaxed);
            notice::emit(Notice::StandInKey {
                key: "ticket master secret".into(),
                why,
            });
        }
        self.local.master_secret()
    }
}

impl fmt::Debug for RedisKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self.shared.held();
        f.debug_struct("RedisKeySource")
            .field("redis", &self.shared.link)
            .field("rotation_secs", &self.shared.rotation_secs)
            .field("held_slots", &held.slots.keys().collect::<Vec<_>>())
            .field("master_held", &held.master.is_some())
            .field("stats", &self.stats())
            .finish()
    }
}
