//! The ticket lifecycle: which key seals a new ticket, and what becomes of a presented one.

use core::fmt;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockWriteGuard, TryLockError};
use std::time::Duration;

use ring::digest;
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::keys::{
    KeyError, KeyMaterial, KeyName, KeySecret, KeySource, TicketKey, STAND_IN_RETRY_ON_ERROR,
};
use crate::model::ticket_policy::{KeySchedule, TicketPolicy};

/// What to do with a ticket a client presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Refuse it: the handshake falls back to a full one.
    Reject(RejectReason),
    /// Resume the session.
    Resume,
    /// Resume the session and issue a fresh ticket (OpenSSL's callback return value 2).
    ResumeAndRenew,
}

impl Decision {
    /// Whether the session is resumed.
    pub fn resumes(self) -> bool {
        !matches!(self, Decision::Reject(_))
    }
}

/// Why a presented ticket was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The ticket's key is known but too old to decrypt tickets.
    KeyExpired,
    /// The ticket is older than the ticket lifetime.
    TicketExpired,
    /// No key with the ticket's name (another server's, or garbage).
    UnknownKey,
    /// No key with the ticket's name while this server's rotation waits for its key source
    /// (the new slot's key was not fetched ahead): another node of the fleet may seal with
    /// that key already. A full handshake at once rather than a wait on the network inside the
    /// TLS library's callback; the key is being fetched in the background meanwhile.
    KeyNotFetched,
    /// The session was issued under another server name (SNI) than the client sent now
    /// (RFC 8446 4.6.1): said by the backends that see the session before deciding (OpenSSL);
    /// GnuTLS and rustls refuse such a ticket too, without saying why.
    ServerName,
}

impl RejectReason {
    /// A stable one-word name for JSON and metrics: `key_expired`, `ticket_expired`,
    /// `unknown_key`, `key_not_fetched`, `server_name`.
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::KeyExpired => "key_expired",
            RejectReason::TicketExpired => "ticket_expired",
            RejectReason::UnknownKey => "unknown_key",
            RejectReason::KeyNotFetched => "key_not_fetched",
            RejectReason::ServerName => "server_name",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectReason::KeyExpired => "ticket key expired",
            RejectReason::TicketExpired => "ticket expired",
            RejectReason::UnknownKey => "unknown ticket key",
            RejectReason::KeyNotFetched => "ticket key of the new rotation not fetched yet",
            RejectReason::ServerName => "issued under another server name",
        })
    }
}

/// The decisions of the ticket lifecycle, made the same way for every backend.
///
/// Backends whose library asks for a key by name first and shows the ticket's contents later
/// (OpenSSL) call [`find_key`](Self::find_key) and then [`check_age`](Self::check_age);
/// backends that see the whole ticket at once call [`decide`](Self::decide).
///
/// The `key_name` and `issued` arguments come from a client: treat them as hostile. Nothing
/// here panics on any input.
pub trait TicketLifecycle: fmt::Debug + Send + Sync {
    /// The policy the decisions follow.
    fn policy(&self) -> &TicketPolicy;

    /// The key that seals a ticket issued at `now` (rotating keys first if due).
    fn encrypting_key(&self, now: UnixTime) -> Result<Arc<TicketKey>, KeyError>;

    /// The key named `key_name`, if it still decrypts tickets at `now`, and whether a ticket
    /// under it is to be renewed.
    fn find_key(
        &self,
        key_name: &KeyName,
        now: UnixTime,
    ) -> Result<(Arc<TicketKey>, bool), RejectReason>;

    /// Runs `use_key` on the key that seals a ticket issued at `now`, as
    /// [`encrypting_key`](Self::encrypting_key) finds it, without taking a reference of it:
    /// what a sealer runs per ticket. The default calls `encrypting_key`; [`KeyRing`] lends the
    /// key under its read lock (no reference count, which every thread sealing tickets would
    /// write, is taken and dropped per ticket), so `use_key` must not call into the lifecycle.
    fn with_encrypting_key(
        &self,
        now: UnixTime,
        use_key: &mut dyn FnMut(&TicketKey),
    ) -> Result<(), KeyError> {
        let key = self.encrypting_key(now)?;
        use_key(&key);
        Ok(())
    }

    /// Runs `use_key` on the key named `key_name` and whether a ticket under it is to be
    /// renewed, as [`find_key`](Self::find_key) finds them, without taking a reference of the
    /// key: what an opener runs per ticket. The default calls `find_key`; [`KeyRing`] lends the
    /// key under its read lock, so `use_key` must not call into the lifecycle.
    fn with_key(
        &self,
        key_name: &KeyName,
        now: UnixTime,
        use_key: &mut dyn FnMut(&TicketKey, bool),
    ) -> Result<(), RejectReason> {
        let (key, renew) = self.find_key(key_name, now)?;
        use_key(&key, renew);
        Ok(())
    }

    /// Whether a ticket issued at `issued` is still within the ticket lifetime at `now`.
    fn check_age(&self, issued: UnixTime, now: UnixTime) -> Result<(), RejectReason> {
        if now.saturating_since(issued) >= self.policy().lifetime() {
            Err(RejectReason::TicketExpired)
        } else {
            Ok(())
        }
    }

    /// The whole decision for a ticket sealed under `key_name` at `issued`, presented at `now`.
    fn decide(&self, key_name: &KeyName, issued: UnixTime, now: UnixTime) -> Decision {
        match self.find_key(key_name, now) {
            Err(reason) => Decision::Reject(reason),
            Ok((_, renew)) => match self.check_age(issued, now) {
                Err(reason) => Decision::Reject(reason),
                Ok(()) if renew => Decision::ResumeAndRenew,
                Ok(()) => Decision::Resume,
            },
        }
    }
}

/// A ring of ticket keys following a [`TicketPolicy`]: the standard [`TicketLifecycle`].
///
/// Keys rotate lazily: the first call at or after a rotation time installs the next key.
/// Lookups take a read lock only; the write lock is taken once per rotation.
///
/// The ticket calls ([`encrypting_key`](TicketLifecycle::encrypting_key),
/// [`find_key`](TicketLifecycle::find_key)) run inside the TLS libraries' callbacks, so while
/// the ring holds a key that still decrypts they never wait on the key source: they rotate with
/// what the source can give at once ([`KeySource::key_now`]). A source shared by a fleet
/// (Redis) has the next slot's key already, because the ring asks it to fetch that key in the
/// background shortly before each rotation ([`KeySource::fetch_ahead`], [`fetch_lead`](Self::fetch_lead)
/// ahead of the boundary); a ticket another node sealed with the new slot's key then opens here
/// from the first moment of the slot. When the source has no answer yet, the ring goes on
/// sealing with the key it has (tickets then live a little past the rotation), asks for the
/// key in the background, says so once ([`Notice::TicketKeyNotFetched`](crate::notice::Notice::TicketKeyNotFetched)),
/// and a ticket with a name it does not hold gets a full handshake at once
/// ([`RejectReason::KeyNotFetched`]). Only a ring with no usable key at all (at start, or after
/// an outage longer than a key's life) asks the source and waits for it: one caller asks, the
/// others wait for that answer; a server asks first, off its handshakes
/// ([`rotate_if_due`](Self::rotate_if_due)), and a node started mid-rotation then also reads
/// the earlier slots' keys ([`KeySource::earlier_key`]). When the key source fails at a
/// rotation, the ring keeps sealing with the key it has and tries again on a later call, as
/// rustls's `TicketRotator` does.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tlsresume_core::{ProcessKeySource, TicketPolicy, UnixTime};
/// use tlsresume_core::keys::key_ring::{Decision, KeyRing, TicketLifecycle};
///
/// let ring = KeyRing::new(TicketPolicy::OPENSSL, Arc::new(ProcessKeySource::new()));
/// let t0 = UnixTime::from_secs(1_700_000_000);
/// let key = ring.encrypting_key(t0)?;
/// let name = *key.name();
/// let at = |mins: u64| t0 + Duration::from_secs(mins * 60);
/// assert_eq!(ring.decide(&name, t0, at(10)), Decision::Resume);
/// assert_eq!(ring.decide(&name, t0, at(61)), Decision::ResumeAndRenew);
/// assert!(!ring.decide(&name, t0, at(121)).resumes());
/// # Ok::<(), tlsresume_core::KeyError>(())
/// ```
pub struct KeyRing {
    policy: TicketPolicy,
    source: Arc<dyn KeySource>,
    state: RwLock<Ring>,
    /// Held by the one caller asking the source for a rotation (outside `state`'s lock, so
    /// lookups go on meanwhile).
    asking: Mutex<()>,
    /// The start (seconds) of the slot whose key was last asked for ahead of its rotation, so
    /// each slot is asked for once.
    fetched_ahead: AtomicU64,
    /// The start (seconds) of the slot last reported not fetched in time (a notice a slot).
    reported_late: AtomicU64,
    /// When [`rotation_due`](Self::rotation_due) answers no, kept up to date by every change of
    /// `state`: a server asks before every handshake, and a read lock (a count every thread
    /// writes) taken for that on every handshake moved one cache line between the threads.
    quiet: QuietWindow,
    /// When the ticket calls have nothing to maintain (no rotation due, a usable key, no
    /// fetch ahead to ask for), kept up to date likewise: each ticket call then takes the
    /// ring's read lock once, to read its keys, rather than twice.
    calm: QuietWindow,
}

/// The times at which [`KeyRing::rotation_due`] answers no: from `from` (included) to `until`
/// (excluded), in microseconds, as a sequence lock over atomics. The one writer is whoever
/// holds the ring's write lock ([`RingWriter`]); readers write nothing.
#[derive(Default)]
struct QuietWindow {
    /// Odd while a change is being written; raised by two per change.
    version: AtomicU64,
    from: AtomicU64,
    until: AtomicU64,
}

impl QuietWindow {
    /// Publishes `[from, until)`. Only with the ring's write lock held.
    fn publish(&self, from: u64, until: u64) {
        if self.from.load(Ordering::Relaxed) == from && self.until.load(Ordering::Relaxed) == until
        {
            return;
        }
        let version = self.version.load(Ordering::Relaxed);
        self.version
            .store(version.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.from.store(from, Ordering::Relaxed);
        self.until.store(until, Ordering::Relaxed);
        self.version
            .store(version.wrapping_add(2), Ordering::Release);
    }

    /// Whether `now` is within the window, read consistently. `false` also while a change is
    /// being written (the caller then asks under the lock).
    fn holds(&self, now: UnixTime) -> bool {
        let version = self.version.load(Ordering::Acquire);
        if version % 2 == 1 {
            return false;
        }
        let from = self.from.load(Ordering::Relaxed);
        let until = self.until.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if self.version.load(Ordering::Relaxed) != version {
            return false;
        }
        (from..until).contains(&now.as_micros())
    }
}

/// The ring's write lock; publishes the ring's [`QuietWindow`] when let go, so that every
/// change of the ring (keys, period, a key's retry time) is seen by the check without lock.
struct RingWriter<'a> {
    ring: &'a KeyRing,
    guard: RwLockWriteGuard<'a, Ring>,
}

impl std::ops::Deref for RingWriter<'_> {
    type Target = Ring;

    fn deref(&self) -> &Ring {
        &self.guard
    }
}

impl std::ops::DerefMut for RingWriter<'_> {
    fn deref_mut(&mut self) -> &mut Ring {
        &mut self.guard
    }
}

impl Drop for RingWriter<'_> {
    fn drop(&mut self) {
        let (from, until) = self.ring.quiet_window(&self.guard);
        self.ring.quiet.publish(from, until);
        let (from, until) = self.ring.calm_window(&self.guard);
        self.ring.calm.publish(from, until);
    }
}

#[derive(Default)]
struct Ring {
    /// Rolling: newest first. Periodic: the current period's key, then earlier periods'.
    keys: Vec<Arc<TicketKey>>,
    /// Periodic: the period `keys[0]` belongs to.
    period: Option<u64>,
}

impl KeyRing {
    /// An empty ring; the first key is made on first use.
    pub fn new(policy: TicketPolicy, source: Arc<dyn KeySource>) -> Self {
        Self {
            policy,
            source,
            state: RwLock::new(Ring::default()),
            asking: Mutex::new(()),
            fetched_ahead: AtomicU64::new(0),
            reported_late: AtomicU64::new(0),
            // Empty: due until the first key is installed.
            quiet: QuietWindow::default(),
            calm: QuietWindow::default(),
        }
    }

    /// How long before a rotation the ring asks a [slot-aligned](KeySource::slot_aligned)
    /// source to fetch the next slot's key ([`KeySource::fetch_ahead`]): a quarter of the
    /// rotation period, at most a minute (time enough for a shared store's timeouts, and for a
    /// Sentinel or Cluster failover's retries, before the boundary).
    pub fn fetch_lead(&self) -> Duration {
        (self.policy.rotation() / 4).min(Duration::from_secs(60))
    }

    /// The names of the keys that decrypt tickets at `now`, current first (for diagnostics and
    /// timelines).
    pub fn key_names(&self, now: UnixTime) -> Vec<KeyName> {
        // A failed maintenance leaves the ring as it was; list what is there.
        let _ = self.maintain_at_once(now);
        self.read()
            .keys
            .iter()
            .filter(|k| k.expires_at() > now)
            .map(|k| *k.name())
            .collect()
    }

    /// Whether the next ticket call at `now` would wait for the key source: the ring holds no
    /// key that still decrypts (at start; after an outage longer than a key's life) or, on the
    /// periodic schedule, a period or a stand-in master secret is due. A rotation of the
    /// rolling schedule with a usable key held never waits (see the type's description). A
    /// server checks this before a handshake and then calls [`rotate_if_due`](Self::rotate_if_due)
    /// off its handshakes (the async server on a blocking-task thread).
    ///
    /// Asked before every handshake, it writes nothing shared: it reads the times at which the
    /// answer is no, which every change of the ring publishes, and takes the ring's lock only
    /// when `now` is outside them (a rotation due, or a change being written).
    pub fn rotation_due(&self, now: UnixTime) -> bool {
        if self.quiet.holds(now) {
            return false;
        }
        self.rotation_due_locked(now)
    }

    /// [`rotation_due`](Self::rotation_due) asked of the ring under its lock.
    fn rotation_due_locked(&self, now: UnixTime) -> bool {
        let ring = self.read();
        match self.policy.schedule() {
            KeySchedule::Rolling => !Self::usable(&ring, now),
            KeySchedule::Periodic => self.due(&ring, now),
        }
    }

    /// Rotates the ring if a rotation is due at `now`, asking the key source and waiting for
    /// its answer (which may block on a shared store). Fails only when there is no usable key
    /// at all; the ticket callbacks then give no ticket, as they would have.
    pub fn rotate_if_due(&self, now: UnixTime) -> Result<(), KeyError> {
        self.maintain(now)
    }

    /// The times (microseconds, `[from, until)`) at which [`rotation_due_locked`](Self::rotation_due_locked)
    /// answers no for `ring`: empty when it answers yes at any time.
    fn quiet_window(&self, ring: &Ring) -> (u64, u64) {
        match self.policy.schedule() {
            // Not due while the first key still decrypts.
            KeySchedule::Rolling => ring
                .keys
                .first()
                .map_or((0, 0), |k| (0, k.expires_at().as_micros())),
            // Not due within the period held (`period_at` counts whole seconds), before a
            // stand-in master secret's retry time.
            KeySchedule::Periodic => {
                let Some(period) = ring.period else {
                    return (0, 0);
                };
                let rotation = u128::from(self.policy.rotation().as_secs().max(1)) * 1_000_000;
                let micros = |p: u128| u64::try_from(p * rotation).ok();
                let Some(from) = micros(u128::from(period)) else {
                    return (0, 0);
                };
                // At the very end of time the window stops short of it (a check then asks
                // under the lock).
                let mut until = micros(u128::from(period) + 1).unwrap_or(u64::MAX);
                if let Some(retry) = ring.keys.first().and_then(|k| k.retry_at()) {
                    until = until.min(retry.as_micros());
                }
                (from, until)
            }
        }
    }

    /// The times (microseconds, `[from, until)`) at which [`maintain_at_once`](Self::maintain_at_once)
    /// has nothing to do for `ring` ([`calm_locked`](Self::calm_locked)).
    fn calm_window(&self, ring: &Ring) -> (u64, u64) {
        match self.policy.schedule() {
            // `maintain`, which asks `due`, the same question as `rotation_due` here.
            KeySchedule::Periodic => self.quiet_window(ring),
            KeySchedule::Rolling => {
                let Some(first) = ring.keys.first() else {
                    return (0, 0);
                };
                let mut until = first
                    .rotate_at()
                    .as_micros()
                    .min(first.expires_at().as_micros());
                if let Some(retry) = first.retry_at() {
                    until = until.min(retry.as_micros());
                }
                if self.source.slot_aligned() {
                    // The next slot's key is asked for once `now + fetch_lead` reaches it.
                    let lead = u64::try_from(self.fetch_lead().as_micros()).unwrap_or(u64::MAX);
                    until = until.min(first.rotate_at().as_micros().saturating_sub(lead));
                }
                (0, until)
            }
        }
    }

    /// Whether [`maintain_at_once`](Self::maintain_at_once) has nothing to do at `now`: no
    /// rotation due, a key that still decrypts, and (a slot-aligned source) the next rotation
    /// further than [`fetch_lead`](Self::fetch_lead) away. What [`calm_window`](Self::calm_window)
    /// is checked against.
    #[cfg(test)]
    fn calm_locked(&self, now: UnixTime) -> bool {
        let ring = self.read();
        match self.policy.schedule() {
            KeySchedule::Periodic => !self.due(&ring, now),
            KeySchedule::Rolling => {
                !self.due(&ring, now)
                    && Self::usable(&ring, now)
                    && ring.keys.first().is_some_and(|k| {
                        !self.source.slot_aligned() || now + self.fetch_lead() < k.rotate_at()
                    })
            }
        }
    }

    /// Whether the ring holds a key that still decrypts at `now`.
    fn usable(ring: &Ring, now: UnixTime) -> bool {
        ring.keys.first().is_some_and(|k| k.expires_at() > now)
    }

    /// The start of the rotation slot of a rolling key taking over at `now`: the slot's start
    /// for a slot-aligned source, `now` itself otherwise.
    fn rolling_start(&self, now: UnixTime) -> UnixTime {
        if self.source.slot_aligned() {
            let rotation = self.policy.rotation().as_secs().max(1);
            UnixTime::from_secs(now.as_secs() / rotation * rotation)
        } else {
            now
        }
    }

    /// What the ticket calls do (inside TLS callbacks): rotates if due without waiting on the
    /// key source while a usable key is held, and asks a slot-aligned source to fetch the next
    /// slot's key once the rotation is [`fetch_lead`](Self::fetch_lead) away. `Ok(true)`: a
    /// rotation is due whose key the source does not have yet (the current key goes on
    /// sealing; the key is being fetched).
    fn maintain_at_once(&self, now: UnixTime) -> Result<bool, KeyError> {
        if self.calm.holds(now) {
            return Ok(false);
        }
        if matches!(self.policy.schedule(), KeySchedule::Periodic) {
            // Periods are derived from the master secret the source holds.
            return self.maintain(now).map(|()| false);
        }
        let (due, usable, rotate_at) = {
            let ring = self.read();
            (
                self.due(&ring, now),
                Self::usable(&ring, now),
                ring.keys.first().map(|k| k.rotate_at()),
            )
        };
        if !usable {
            // Nothing to seal or open with: only the source can help, so wait for it.
            return self.maintain(now).map(|()| false);
        }
        if !due {
            if let Some(rotate_at) = rotate_at {
                self.fetch_ahead_near(rotate_at, now);
            }
            return Ok(false);
        }
        let created = self.rolling_start(now);
        match self.source.key_now(created) {
            Some(asked) => self
                .install_rolling(asked, created, now, Vec::new(), false)
                .map(|()| false),
            None => {
                self.source.fetch_ahead(created);
                self.report_late(created);
                Ok(true)
            }
        }
    }

    /// Asks a slot-aligned source to fetch the key of the slot starting at `rotate_at` once
    /// `now` is within [`fetch_lead`](Self::fetch_lead) of it (once per slot).
    fn fetch_ahead_near(&self, rotate_at: UnixTime, now: UnixTime) {
        if !self.source.slot_aligned() || now + self.fetch_lead() < rotate_at {
            return;
        }
        let slot = rotate_at.as_secs();
        if self.fetched_ahead.swap(slot, Ordering::Relaxed) != slot {
            self.source.fetch_ahead(rotate_at);
        }
    }

    /// Says once per slot that its key was not there at its rotation.
    fn report_late(&self, created: UnixTime) {
        let slot = created.as_secs();
        if self.reported_late.swap(slot, Ordering::Relaxed) != slot {
            crate::notice::emit(crate::notice::Notice::TicketKeyNotFetched {
                key: format!("ticket key for the slot starting at {}", created.as_secs()),
            });
        }
    }

    /// The rotation period number of the periodic schedule at `now`: `floor(now / rotation)`.
    pub fn period_at(&self, now: UnixTime) -> u64 {
        let rotation = self.policy.rotation().as_secs().max(1);
        now.as_secs() / rotation
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RingWriter<'_> {
        RingWriter {
            ring: self,
            guard: self
                .state
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }

    fn due(&self, ring: &Ring, now: UnixTime) -> bool {
        match self.policy.schedule() {
            KeySchedule::Rolling => ring.keys.first().is_none_or(|k| {
                now >= k.rotate_at() || k.retry_at().is_some_and(|retry| now >= retry)
            }),
            // A master secret that was a stand-in is asked about again once its delay passed.
            KeySchedule::Periodic => {
                ring.period != Some(self.period_at(now))
                    || ring
                        .keys
                        .first()
                        .and_then(|k| k.retry_at())
                        .is_some_and(|retry| now >= retry)
            }
        }
    }

    /// Rotates if due. Errors only when there is no usable key at all.
    ///
    /// One caller asks the source (which may block: a shared store); the others go on with the
    /// current key while it still decrypts, and wait only when there is none.
    fn maintain(&self, now: UnixTime) -> Result<(), KeyError> {
        if !self.due(&self.read(), now) {
            return Ok(());
        }
        let _asking = match self.asking.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                let usable = self
                    .read()
                    .keys
                    .first()
                    .is_some_and(|k| k.expires_at() > now);
                if usable {
                    return Ok(());
                }
                self.asking.lock().unwrap_or_else(|p| p.into_inner())
            }
        };
        if !self.due(&self.read(), now) {
            return Ok(());
        }
        match self.policy.schedule() {
            KeySchedule::Rolling => self.rotate_rolling(now),
            KeySchedule::Periodic => self.derive_periodic(now),
        }
    }

    /// Asks the source for the slot's key, then installs it (the ring's lock is taken only
    /// for that). Called by the one caller holding `asking`.
    fn rotate_rolling(&self, now: UnixTime) -> Result<(), KeyError> {
        let created = self.rolling_start(now);
        let asked = self.source.new_key(created);
        // A ring starting (a node started or restarted mid-rotation) takes the keys of the
        // slots before from a shared source, so that the fleet's tickets sealed with them
        // still open here.
        let earlier = if asked.is_ok() && self.source.slot_aligned() && self.read().keys.is_empty()
        {
            self.earlier_keys(created, now)
        } else {
            Vec::new()
        };
        self.install_rolling(asked, created, now, earlier, true)
    }

    /// Installs what the source answered for the slot starting at `created` (with the earlier
    /// slots' keys of a ring that was empty), unless another caller did meanwhile. `waited`:
    /// the answer came from [`KeySource::new_key`]; a stand-in handed out again is then asked
    /// about after the source's delay, while one handed out again by
    /// [`KeySource::key_now`] (whose fetch in the background is under way) is asked about on
    /// the next call.
    fn install_rolling(
        &self,
        asked: Result<KeyMaterial, KeyError>,
        created: UnixTime,
        now: UnixTime,
        earlier: Vec<Arc<TicketKey>>,
        waited: bool,
    ) -> Result<(), KeyError> {
        let mut ring = self.write();
        if !self.due(&ring, now) {
            // Installed by another caller meanwhile.
            return Ok(());
        }
        match asked {
            Ok(material) => {
                let retry_at = self.source.retry_after(&material.name).map(|d| now + d);
                // A stand-in for this very slot (the source was cut off from its fleet when
                // the slot began) is being asked about again.
                let stand_in = ring
                    .keys
                    .first()
                    .filter(|k| k.retry_at().is_some() && k.created() == created)
                    .cloned();
                let key = TicketKey::new(
                    material,
                    created,
                    self.policy.renew_after().map(|r| created + r),
                    created + self.policy.rotation(),
                    created + self.policy.key_lifetime(),
                )
                .with_retry_at(retry_at);
                let mut keep = usize::try_from(self.policy.previous_keys())
                    .unwrap_or(usize::MAX)
                    .saturating_add(1);
                match stand_in {
                    // Still the same stand-in: keep it, ask again later.
                    Some(current) if current.name() == key.name() => {
                        if waited {
                            current.set_retry_at(retry_at);
                        }
                        return Ok(());
                    }
                    // The fleet's key replaces the stand-in for sealing; the stand-in still
                    // opens the tickets it sealed, without pushing out the previous slot's key.
                    Some(_) => keep = keep.saturating_add(1),
                    None => {}
                }
                ring.keys.insert(0, Arc::new(key));
                if ring.keys.len() == 1 {
                    ring.keys.extend(earlier);
                }
                ring.keys.truncate(keep);
                ring.keys.retain(|k| k.expires_at() > now);
                Ok(())
            }
            // Keep sealing with the key we have while it still decrypts (a stand-in asked
            // about again is asked again after the source's delay, not on every ticket).
            Err(e) => match ring.keys.first() {
                Some(current) if current.expires_at() > now => {
                    if current.retry_at().is_some() && now < current.rotate_at() {
                        let delay = self.source.retry_after(current.name());
                        current.set_retry_at(Some(now + delay.unwrap_or(STAND_IN_RETRY_ON_ERROR)));
                    }
                    Ok(())
                }
                _ => Err(e),
            },
        }
    }

    /// The keys of the `previous_keys` slots before the one starting at `created` that the
    /// source still holds and that still decrypt at `now`, newest first.
    fn earlier_keys(&self, created: UnixTime, now: UnixTime) -> Vec<Arc<TicketKey>> {
        let rotation = self.policy.rotation();
        let mut keys = Vec::new();
        let mut slot_start = created;
        for _ in 0..self.policy.previous_keys() {
            let Some(start) = slot_start.as_secs().checked_sub(rotation.as_secs().max(1)) else {
                break;
            };
            slot_start = UnixTime::from_secs(start);
            let expires = slot_start + self.policy.key_lifetime();
            if expires <= now {
                break;
            }
            let Some(material) = self.source.earlier_key(slot_start) else {
                break;
            };
            keys.push(Arc::new(TicketKey::new(
                material,
                slot_start,
                self.policy.renew_after().map(|r| slot_start + r),
                slot_start + rotation,
                expires,
            )));
        }
        keys
    }

    /// Asks the source for the master secret, then derives the period's keys and installs
    /// them. Called by the one caller holding `asking`.
    fn derive_periodic(&self, now: UnixTime) -> Result<(), KeyError> {
        let period = self.period_at(now);
        let asked = self.source.master_secret();
        let mut ring = self.write();
        let same_period = ring.period == Some(period);
        let master = match asked {
            Ok(master) => master,
            // Asked again about a stand-in and the source failed: keep the keys, ask later.
            Err(_) if same_period => {
                if let Some(current) = ring.keys.first() {
                    current.set_retry_at(Some(now + STAND_IN_RETRY_ON_ERROR));
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let retry_at = self.source.master_retry_after(&master).map(|d| now + d);
        let mac_key = HmacKey::new(master.as_bytes());
        let rotation = self.policy.rotation();
        let kept = u64::from(self.policy.previous_keys());
        let keys: Vec<Arc<TicketKey>> = (0..=kept)
            .filter_map(|back| period.checked_sub(back))
            .map(|p| Arc::new(periodic_key(&mac_key, p, rotation, kept)))
            .collect();
        if let Some(first) = keys.first() {
            first.set_retry_at(retry_at);
        }
        let old = std::mem::replace(&mut ring.keys, keys);
        if same_period {
            match old.first() {
                // Still the same stand-in: nothing changed but when to ask again.
                Some(current) if ring.keys.first().map(|k| k.name()) == Some(current.name()) => {
                    ring.keys = old;
                    if let Some(current) = ring.keys.first() {
                        current.set_retry_at(retry_at);
                    }
                }
                // The fleet's master replaces a stand-in within the period: the stand-in's
                // keys still open the tickets they sealed, until the period ends.
                _ => ring.keys.extend(old),
            }
        }
        ring.period = Some(period);
        Ok(())
    }
}

/// HMAC-SHA256 (RFC 2104) with a 64-byte key, over ring's SHA-256, with the key's inner and outer
/// pads in buffers cleared on drop (ring's own `hmac::Key` cannot be cleared). ring's SHA-256
/// contexts are not cleared either; they live only for the call.
struct HmacKey {
    ipad: Zeroizing<[u8; 64]>,
    opad: Zeroizing<[u8; 64]>,
}

impl HmacKey {
    fn new(key: &[u8; 64]) -> Self {
        let mut ipad = Zeroizing::new([0x36u8; 64]);
        let mut opad = Zeroizing::new([0x5cu8; 64]);
        for (i, k) in key.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        Self { ipad, opad }
    }

    /// The tag over `parts`, in a buffer cleared on drop.
    fn sign(&self, parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
        let mut inner = digest::Context::new(&digest::SHA256);
        inner.update(&*self.ipad);
        for part in parts {
            inner.update(part);
        }
        let inner = inner.finish();
        let mut outer = digest::Context::new(&digest::SHA256);
        outer.update(&*self.opad);
        outer.update(inner.as_ref());
        let mut tag = Zeroizing::new([0u8; 32]);
        tag.copy_from_slice(outer.finish().as_ref());
        tag
    }
}

/// Derives period `p`'s key: HMAC-SHA256(master, label ‖ p) for each part.
fn periodic_key(master: &HmacKey, p: u64, rotation: Duration, kept: u64) -> TicketKey {
    let part = |label: &[u8]| master.sign(&[label, &p.to_be_bytes()]);
    let name_tag = part(b"tlsresume stek name");
    let cipher_tag = part(b"tlsresume stek cipher");
    let mac_tag = part(b"tlsresume stek mac");
    let mut name = [0u8; 16];
    name.copy_from_slice(&name_tag[..16]);
    let mut secret = Zeroizing::new([0u8; 64]);
    secret[..32].copy_from_slice(&cipher_tag[..]);
    secret[32..].copy_from_slice(&mac_tag[..]);
    let start = UnixTime::from_secs(p.saturating_mul(rotation.as_secs()));
    TicketKey::new(
        KeyMaterial {
            name: KeyName(name),
            secret: KeySecret::new(*secret),
        },
        start,
        None,
        start + rotation,
        start + rotation.saturating_mul(u32::try_from(kept.saturating_add(1)).unwrap_or(u32::MAX)),
    )
}

impl TicketLifecycle for KeyRing {
    fn policy(&self) -> &TicketPolicy {
        &self.policy
    }

    fn encrypting_key(&self, now: UnixTime) -> Result<Arc<TicketKey>, KeyError> {
        self.current(now, Arc::clone)
    }

    fn find_key(
        &self,
        key_name: &KeyName,
        now: UnixTime,
    ) -> Result<(Arc<TicketKey>, bool), RejectReason> {
        self.named(key_name, now, |key, renew| (Arc::clone(key), renew))
    }

    fn with_encrypting_key(
        &self,
        now: UnixTime,
        use_key: &mut dyn FnMut(&TicketKey),
    ) -> Result<(), KeyError> {
        self.current(now, |key| use_key(key))
    }

    fn with_key(
        &self,
        key_name: &KeyName,
        now: UnixTime,
        use_key: &mut dyn FnMut(&TicketKey, bool),
    ) -> Result<(), RejectReason> {
        self.named(key_name, now, |key, renew| use_key(key, renew))
    }
}

/// `f` of the key that seals a ticket issued at `now`, lent by
/// [`TicketLifecycle::with_encrypting_key`] for the call: a closure run once, with what it
/// returns (the `FnMut` the trait takes, for a caller's `FnOnce`). A lifecycle that answers
/// without lending a key fails here as one without a key.
pub fn lend_encrypting_key<L, T>(
    lifecycle: &L,
    now: UnixTime,
    f: impl FnOnce(&TicketKey) -> T,
) -> Result<T, KeyError>
where
    L: TicketLifecycle + ?Sized,
{
    let (mut f, mut out) = (Some(f), None);
    lifecycle.with_encrypting_key(now, &mut |key| out = f.take().map(|f| f(key)))?;
    out.ok_or_else(|| KeyError::Source("no ticket key available".into()))
}

/// `f` of the key named `key_name` and whether a ticket under it is to be renewed, lent by
/// [`TicketLifecycle::with_key`] for the call, with what it returns (as
/// [`lend_encrypting_key`]). A lifecycle that answers without lending a key fails here as one
/// that does not know the name.
pub fn lend_key<L, T>(
    lifecycle: &L,
    key_name: &KeyName,
    now: UnixTime,
    f: impl FnOnce(&TicketKey, bool) -> T,
) -> Result<T, RejectReason>
where
    L: TicketLifecycle + ?Sized,
{
    let (mut f, mut out) = (Some(f), None);
    lifecycle.with_key(key_name, now, &mut |key, renew| {
        out = f.take().map(|f| f(key, renew));
    })?;
    out.ok_or(RejectReason::UnknownKey)
}

impl KeyRing {
    /// `f` of the key that seals a ticket issued at `now` (rotating keys first if due), under
    /// the read lock.
    fn current<T>(
        &self,
        now: UnixTime,
        f: impl FnOnce(&Arc<TicketKey>) -> T,
    ) -> Result<T, KeyError> {
        self.maintain_at_once(now)?;
        let ring = self.read();
        let key = ring
            .keys
            .first()
            .ok_or_else(|| KeyError::Source("no ticket key available".into()))?;
        Ok(f(key))
    }

    /// `f` of the key named `key_name`, if it still decrypts tickets at `now`, and whether a
    /// ticket under it is to be renewed, under the read lock.
    fn named<T>(
        &self,
        key_name: &KeyName,
        now: UnixTime,
        f: impl FnOnce(&Arc<TicketKey>, bool) -> T,
    ) -> Result<T, RejectReason> {
        // With no key at all nothing decrypts; the name is then unknown.
        let waiting = self.maintain_at_once(now).unwrap_or(false);
        let ring = self.read();
        let key = match ring.keys.iter().find(|k| k.name() == key_name) {
            Some(key) => key,
            // The rotation waits for the new slot's key, which another node of the fleet may
            // seal with already: a full handshake now (the key is being fetched in the
            // background), never a wait on the network inside the TLS library's callback.
            None if waiting => return Err(RejectReason::KeyNotFetched),
            None => return Err(RejectReason::UnknownKey),
        };
        if now >= key.expires_at() {
            return Err(RejectReason::KeyExpired);
        }
        let renew = key.renew_at().is_some_and(|at| now >= at);
        Ok(f(key, renew))
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ring = self.read();
        f.debug_struct("KeyRing")
            .field("policy", &self.policy)
            .field(
                "keys",
                &ring.keys.iter().map(|k| *k.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_clearable_hmac_is_hmac_sha256() {
        // Fleets derive the same keys from one master secret: the derivation must not change.
        let key = [0xa5u8; 64];
        let ours = super::HmacKey::new(&key).sign(&[b"tlsresume stek name", &7u64.to_be_bytes()]);
        let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
        let mut msg = b"tlsresume stek name".to_vec();
        msg.extend_from_slice(&7u64.to_be_bytes());
        assert_eq!(&ours[..], ring::hmac::sign(&ring_key, &msg).as_ref());
    }

    use super::*;
    use crate::keys::{MasterSecret, ProcessKeySource};
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    const T0: u64 = 1_700_000_000;
    const MIN: u64 = 60;
    const HOUR: u64 = 3600;

    fn at(secs: u64) -> UnixTime {
        UnixTime::from_secs(T0 + secs)
    }

    fn openssl_ring() -> KeyRing {
        KeyRing::new(TicketPolicy::OPENSSL, Arc::new(ProcessKeySource::new()))
    }

    #[test]
    fn a_lent_key_is_the_key_found() {
        // with_key and with_encrypting_key lend what find_key and encrypting_key return, with
        // the same renewal flag and the same refusals, across a rotation and past expiry.
        let ring = openssl_ring();
        let first = *ring.encrypting_key(at(0)).expect("key").name();
        let unknown = KeyName([0x5a; 16]);
        for secs in [0, 10 * MIN, 61 * MIN, 119 * MIN, 2 * HOUR, 3 * HOUR] {
            let now = at(secs);
            let mut sealing = None;
            ring.with_encrypting_key(now, &mut |key| sealing = Some(*key.name()))
                .expect("a key seals");
            assert_eq!(
                sealing,
                Some(*ring.encrypting_key(now).expect("key").name()),
                "at {secs} s"
            );
            for name in [first, unknown] {
                let mut lent = None;
                let result = ring.with_key(&name, now, &mut |key, renew| {
                    lent = Some((*key.name(), renew));
                });
                let found = ring
                    .find_key(&name, now)
                    .map(|(key, renew)| (*key.name(), renew));
                assert_eq!(result.map(|()| lent), found.map(Some), "at {secs} s");
            }
        }
    }

    /// A lifecycle of its own: the ring's decisions through the required methods only, so the
    /// sealer goes through the trait's own `with_key` and `with_encrypting_key`.
    #[derive(Debug)]
    struct OwnLifecycle(KeyRing);

    impl TicketLifecycle for OwnLifecycle {
        fn policy(&self) -> &TicketPolicy {
            self.0.policy()
        }
        fn encrypting_key(&self, now: UnixTime) -> Result<Arc<TicketKey>, KeyError> {
            self.0.encrypting_key(now)
        }
        fn find_key(
            &self,
            key_name: &KeyName,
            now: UnixTime,
        ) -> Result<(Arc<TicketKey>, bool), RejectReason> {
            self.0.find_key(key_name, now)
        }
    }

    #[test]
    fn a_lifecycle_with_only_the_required_methods_seals_and_opens() {
        use crate::keys::seal::{OpenError, TicketSealer};
        let sealer = TicketSealer::new(Arc::new(OwnLifecycle(openssl_ring())));
        let ticket = sealer.seal(b"state", at(0)).expect("sealed");
        let opened = sealer.open(&ticket, at(10 * MIN)).expect("opens");
        assert_eq!(&opened.state[..], b"state");
        assert_eq!(opened.decision, Decision::Resume);
        assert_eq!(
            sealer.open(&ticket, at(61 * MIN)).expect("opens").decision,
            Decision::ResumeAndRenew
        );
        // Past the key's life the ring no longer holds it: a name it does not know.
        assert_eq!(
            sealer.open(&ticket, at(3 * HOUR)).err(),
            Some(OpenError::Malformed)
        );
        assert_eq!(
            sealer.open(&ticket[1..], at(10 * MIN)).err(),
            Some(OpenError::Malformed)
        );
    }

    #[test]
    fn openssl_exim_scenario_times() {
        let ring = openssl_ring();
        let k1 = *ring.encrypting_key(at(0)).expect("key").name();
        assert_eq!(ring.decide(&k1, at(0), at(10 * MIN)), Decision::Resume);
        // 61 min: rotation happened; k1 is previous, past its renew time.
        assert_eq!(
            ring.decide(&k1, at(0), at(61 * MIN)),
            Decision::ResumeAndRenew
        );
        let k2 = *ring.encrypting_key(at(61 * MIN)).expect("key").name();
        assert_ne!(k1, k2);
        assert_eq!(
            ring.decide(&k2, at(61 * MIN), at(62 * MIN)),
            Decision::Resume
        );
        // k1 expired at 2 h.
        // 2 h 1 min: k1 has left the ring (two rotations since it was made).
        assert_eq!(
            ring.decide(&k1, at(0), at(2 * HOUR + MIN)),
            Decision::Reject(RejectReason::UnknownKey)
        );
        // A ring that saw no traffic in between still refuses: the key expired.
        let quiet = openssl_ring();
        let q1 = *quiet.encrypting_key(at(0)).expect("key").name();
        assert_eq!(
            quiet.find_key(&q1, at(2 * HOUR)).map(|_| ()),
            Err(RejectReason::UnknownKey)
        );
    }

    #[test]
    fn previous_key_decrypts_after_one_rotation_not_after_two() {
        let ring = openssl_ring();
        let k1 = *ring.encrypting_key(at(0)).expect("key").name();
        let _k2 = ring.encrypting_key(at(HOUR)).expect("key");
        assert!(ring.find_key(&k1, at(HOUR + 30 * MIN)).is_ok());
        let _k3 = ring.encrypting_key(at(2 * HOUR)).expect("key");
        assert_eq!(
            ring.find_key(&k1, at(2 * HOUR)).map(|_| ()),
            Err(RejectReason::UnknownKey)
        );
    }

    #[test]
    fn unknown_key_is_rejected() {
        let ring = openssl_ring();
        let _ = ring.encrypting_key(at(0));
        assert_eq!(
            ring.decide(&KeyName([7; 16]), at(0), at(1)),
            Decision::Reject(RejectReason::UnknownKey)
        );
    }

    #[derive(Debug)]
    struct FlakySource {
        inner: ProcessKeySource,
        fail: AtomicBool,
    }

    impl KeySource for FlakySource {
        fn new_key(&self, created: UnixTime) -> Result<KeyMaterial, KeyError> {
            if self.fail.load(Ordering::SeqCst) {
                Err(KeyError::Source("down".into()))
            } else {
                self.inner.new_key(created)
            }
        }
        fn master_secret(&self) -> Result<MasterSecret, KeyError> {
            if self.fail.load(Ordering::SeqCst) {
                Err(KeyError::Source("down".into()))
            } else {
                self.inner.master_secret()
            }
        }
    }

    #[test]
    fn ring_remains_usable_over_temporary_key_source_failure() {
        let source = Arc::new(FlakySource {
            inner: ProcessKeySource::new(),
            fail: AtomicBool::new(false),
        });
        let ring = KeyRing::new(TicketPolicy::OPENSSL, source.clone());
        let k1 = *ring.encrypting_key(at(0)).expect("key").name();
        source.fail.store(true, Ordering::SeqCst);
        // Rotation due, source down: keep sealing with k1 while it decrypts.
        assert_eq!(*ring.encrypting_key(at(HOUR + 1)).expect("key").name(), k1);
        // Past k1's expiry there is nothing left to seal with.
        assert!(ring.encrypting_key(at(2 * HOUR)).is_err());
        source.fail.store(false, Ordering::SeqCst);
        assert_ne!(*ring.encrypting_key(at(2 * HOUR)).expect("key").name(), k1);
    }

    /// A fleet source cut off from its store until `reachable`: one stand-in key per slot and
    /// one stand-in master secret meanwhile (each asked about again after a minute), then the
    /// fleet's.
    #[derive(Debug, Default)]
    struct Fleet {
        local: ProcessKeySource,
        shared: ProcessKeySource,
        reachable: AtomicBool,
        asked: AtomicUsize,
        stand_ins: std::sync::Mutex<Vec<(UnixTime, KeyMaterial)>>,
    }

    impl KeySource for Fleet {
        fn new_key(&self, created: UnixTime) -> Result<KeyMaterial, KeyError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            if self.reachable.load(Ordering::SeqCst) {
                return self.shared.new_key(created);
            }
            let mut stand_ins = self.stand_ins.lock().expect("lock");
            if let Some((_, key)) = stand_ins.iter().find(|(c, _)| *c == created) {
                return Ok(key.clone());
            }
            let key = self.local.new_key(created)?;
            stand_ins.push((created, key.clone()));
            Ok(key)
        }
        fn master_secret(&self) -> Result<MasterSecret, KeyError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            if self.reachable.load(Ordering::SeqCst) {
                self.shared.master_secret()
            } else {
                self.local.master_secret()
            }
        }
        fn slot_aligned(&self) -> bool {
            true
        }
        fn retry_after(&self, key: &KeyName) -> Option<Duration> {
            let stand_ins = self.stand_ins.lock().expect("lock");
            stand_ins
                .iter()
                .any(|(_, k)| &k.name == key)
                .then_some(Duration::from_secs(60))
        }
        fn master_retry_after(&self, master: &MasterSecret) -> Option<Duration> {
            let shared = self.shared.master_secret().expect("master");
            (*master != shared).then_some(Duration::from_secs(60))
        }
    }

    #[test]
    fn a_stand_in_key_is_replaced_by_the_fleet_key_within_its_slot() {
        let source = Arc::new(Fleet {
            reachable: AtomicBool::new(true),
            ..Fleet::default()
        });
        let ring = KeyRing::new(TicketPolicy::OPENSSL, source.clone());
        let slot = UnixTime::from_secs(T0 / HOUR * HOUR);
        let at = |secs: u64| slot + Duration::from_secs(secs);
        let before = ring.encrypting_key(at(0)).expect("key");
        assert_eq!(before.retry_at(), None, "a shared key is final");
        // Cut off when the next slot begins: a stand-in, asked about again a minute later.
        source.reachable.store(false, Ordering::SeqCst);
        let stand_in = ring.encrypting_key(at(HOUR)).expect("key");
        assert_eq!(stand_in.retry_at(), Some(at(HOUR + 60)));
        let asked = source.asked.load(Ordering::SeqCst);
        assert_eq!(
            ring.encrypting_key(at(HOUR + 30)).expect("key").name(),
            stand_in.name()
        );
        assert_eq!(
            source.asked.load(Ordering::SeqCst),
            asked,
            "not asked before the retry"
        );
        // Still cut off: the same stand-in. The source answered at once (`key_now`), so the
        // ring asks again on each call from now on, until the fleet's key is there.
        let again = ring.encrypting_key(at(HOUR + 61)).expect("key");
        assert_eq!(again.name(), stand_in.name());
        assert_eq!(source.asked.load(Ordering::SeqCst), asked + 1);
        assert_eq!(again.retry_at(), Some(at(HOUR + 60)));
        ring.encrypting_key(at(HOUR + 62)).expect("key");
        assert_eq!(source.asked.load(Ordering::SeqCst), asked + 2);
        // Asked through `rotate_if_due` (an answer waited for): asked again after the delay.
        ring.rotate_if_due(at(HOUR + 63)).expect("rotation");
        assert_eq!(again.retry_at(), Some(at(HOUR + 123)));
        ring.encrypting_key(at(HOUR + 64)).expect("key");
        assert_eq!(source.asked.load(Ordering::SeqCst), asked + 3);
        // Reachable again: the next retry brings the fleet's key for the same slot.
        source.reachable.store(true, Ordering::SeqCst);
        let shared = ring.encrypting_key(at(HOUR + 123)).expect("key");
        assert_ne!(shared.name(), stand_in.name());
        assert_eq!(shared.created(), at(HOUR), "the same slot's key");
        assert_eq!(shared.retry_at(), None);
        // The stand-in still opens what it sealed, and the previous slot's key is kept.
        let names = ring.key_names(at(HOUR + 123));
        assert_eq!(names[0], *shared.name());
        assert!(names.contains(stand_in.name()), "{names:?}");
        assert!(names.contains(before.name()), "{names:?}");
        // At the next boundary an ordinary rotation: the stand-in goes first.
        let next = ring.encrypting_key(at(2 * HOUR)).expect("key");
        let names = ring.key_names(at(2 * HOUR));
        assert_eq!(names, vec![*next.name(), *shared.name()]);
    }

    #[test]
    fn a_stand_in_master_is_replaced_by_the_fleet_master_within_its_period() {
        let source = Arc::new(Fleet::default());
        let ring = KeyRing::new(TicketPolicy::GNUTLS, source.clone());
        let period = TicketPolicy::GNUTLS.rotation().as_secs();
        let start = UnixTime::from_secs(T0 / period * period);
        let at = |secs: u64| start + Duration::from_secs(secs);
        // Cut off at start: keys derived from the stand-in, asked about again a minute later.
        let stand_in = ring.encrypting_key(at(10)).expect("key");
        assert_eq!(stand_in.retry_at(), Some(at(70)));
        assert_eq!(source.asked.load(Ordering::SeqCst), 1);
        ring.encrypting_key(at(69)).expect("key");
        assert_eq!(
            source.asked.load(Ordering::SeqCst),
            1,
            "not asked before the retry"
        );
        // Still cut off: the same keys, asked again later.
        let again = ring.encrypting_key(at(71)).expect("key");
        assert_eq!(again.name(), stand_in.name());
        assert_eq!(source.asked.load(Ordering::SeqCst), 2);
        assert_eq!(again.retry_at(), Some(at(131)));
        // Reachable: the next retry brings the keys of the fleet's master, in the same period.
        source.reachable.store(true, Ordering::SeqCst);
        let shared = ring.encrypting_key(at(132)).expect("key");
        assert_ne!(shared.name(), stand_in.name());
        assert_eq!(shared.retry_at(), None, "the fleet's master is final");
        let fleet_ring = KeyRing::new(
            TicketPolicy::GNUTLS,
            Arc::new(FixedMaster(source.shared.master_secret().expect("master"))),
        );
        assert_eq!(
            fleet_ring.encrypting_key(at(132)).expect("key").name(),
            shared.name(),
            "the same key as a node that had the fleet's master from the start"
        );
        // The stand-in's key still opens what it sealed, until the period ends.
        assert!(ring.find_key(stand_in.name(), at(133)).is_ok());
        assert_eq!(
            ring.find_key(stand_in.name(), at(period + 1)).err(),
            Some(RejectReason::UnknownKey)
        );
        assert_eq!(
            source.asked.load(Ordering::SeqCst),
            4,
            "asked once per period since"
        );
    }

    /// A source whose master secret is given.
    #[derive(Debug)]
    struct FixedMaster(MasterSecret);
    impl KeySource for FixedMaster {
        fn new_key(&self, created: UnixTime) -> Result<KeyMaterial, KeyError> {
            ProcessKeySource::new().new_key(created)
        }
        fn master_secret(&self) -> Result<MasterSecret, KeyError> {
            Ok(self.0.clone())
        }
    }

    #[test]
    fn lookups_go_on_while_one_caller_waits_for_a_slow_source() {
        use std::sync::mpsc;
        /// A source whose calls after the first wait until `release` says go.
        #[derive(Debug)]
        struct Slow {
            inner: ProcessKeySource,
            calls: AtomicUsize,
            entered: Mutex<mpsc::Sender<()>>,
            release: Mutex<mpsc::Receiver<()>>,
        }
        impl KeySource for Slow {
            fn new_key(&self, created: UnixTime) -> Result<KeyMaterial, KeyError> {
                if self.calls.fetch_add(1, Ordering::SeqCst) > 0 {
                    let _ = self.entered.lock().expect("lock").send(());
                    let _ = self.release.lock().expect("lock").recv();
                }
                self.inner.new_key(created)
            }
            fn master_secret(&self) -> Result<MasterSecret, KeyError> {
                self.inner.master_secret()
            }
            /// Its keys are had only by waiting.
            fn key_now(&self, _: UnixTime) -> Option<Result<KeyMaterial, KeyError>> {
                None
            }
        }
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let source = Arc::new(Slow {
            inner: ProcessKeySource::new(),
            calls: AtomicUsize::new(0),
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        });
        let ring = Arc::new(KeyRing::new(TicketPolicy::OPENSSL, source.clone()));
        let first = *ring.encrypting_key(at(0)).expect("key").name();
        // The rotation is due; the server asks the (now slow) source off its handshakes...
        let r = ring.clone();
        let asking = std::thread::spawn(move || {
            r.rotate_if_due(at(HOUR + 1)).expect("rotation");
            *r.encrypting_key(at(HOUR + 1)).expect("key").name()
        });
        entered.recv().expect("the source was asked");
        // ...and meanwhile another seals and opens with the current key instead of waiting.
        let (done_tx, done) = mpsc::channel();
        let r = ring.clone();
        std::thread::spawn(move || {
            let sealing = *r.encrypting_key(at(HOUR + 2)).expect("key").name();
            let found = r.find_key(&first, at(HOUR + 2)).is_ok();
            let _ = done_tx.send((sealing, found));
        });
        let (sealing, found) = done
            .recv_timeout(Duration::from_secs(10))
            .expect("a lookup waited for the slow source");
        assert_eq!(sealing, first, "the current key seals meanwhile");
        assert!(found);
        assert_eq!(
            source.calls.load(Ordering::SeqCst),
            2,
            "asked once for the rotation"
        );
        release.send(()).expect("release");
        let rotated = asking.join().expect("asking thread");
        assert_ne!(rotated, first);
        assert_eq!(
            *ring.encrypting_key(at(HOUR + 3)).expect("key").name(),
            rotated
        );
    }

    #[test]
    fn slot_aligned_sources_rotate_at_slot_boundaries() {
        #[derive(Debug)]
        struct Aligned(ProcessKeySource);
        impl KeySource for Aligned {
            fn new_key(&self, created: UnixTime) -> Result<KeyMaterial, KeyError> {
                assert_eq!(created.as_secs() % 3600, 0, "asked for a slot start");
                self.0.new_key(created)
            }
            fn master_secret(&self) -> Result<MasterSecret, KeyError> {
                self.0.master_secret()
            }
            fn slot_aligned(&self) -> bool {
                true
            }
        }
        let ring = KeyRing::new(
            TicketPolicy::OPENSSL,
            Arc::new(Aligned(ProcessKeySource::new())),
        );
        let slot = UnixTime::from_secs(T0 / HOUR * HOUR);
        let key = ring
            .encrypting_key(slot + Duration::from_secs(25 * MIN))
            .expect("key");
        assert_eq!(key.created(), slot);
        assert_eq!(key.rotate_at(), slot + Duration::from_secs(HOUR));
        assert_eq!(key.renew_at(), Some(slot + Duration::from_secs(HOUR)));
        // Rotates at the boundary, not an hour after first use.
        let next = ring
            .encrypting_key(slot + Duration::from_secs(HOUR))
            .expect("key");
        assert_ne!(next.name(), key.name());
        assert_eq!(next.created(), slot + Duration::from_secs(HOUR));
    }

    #[test]
    fn a_ring_started_mid_rotation_takes_the_earlier_slot_keys_of_a_shared_source() {
        /// One key per slot, kept like a shared store: what an earlier process made.
        #[derive(Debug, Default)]
        struct Shared(Mutex<std::collections::BTreeMap<u64, KeyMaterial>>);
        impl KeySource for Shared {
            fn new_key(&self, created: UnixTime) -> Result<KeyMaterial, KeyError> {
                let mut slots = self.0.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(key) = slots.get(&created.as_secs()) {
                    return Ok(key.clone());
                }
                let key = ProcessKeySource::new().new_key(created)?;
                slots.insert(created.as_secs(), key.clone());
                Ok(key)
            }
            fn master_secret(&self) -> Result<MasterSecret, KeyError> {
                Err(KeyError::Source("rolling only".into()))
            }
            fn slot_aligned(&self) -> bool {
                true
            }
            fn earlier_key(&self, created: UnixTime) -> Option<KeyMaterial> {
                let slots = self.0.lock().unwrap_or_else(|p| p.into_inner());
                slots.get(&created.as_secs()).cloned()
            }
        }
        let source = Arc::new(Shared::default());
        let slot = UnixTime::from_secs(T0 / HOUR * HOUR);
        // A node that ran in the previous slot sealed with that slot's key.
        let running = KeyRing::new(TicketPolicy::OPENSSL, source.clone());
        let sealed = *running
            .encrypting_key(slot + Duration::from_secs(50 * MIN))
            .expect("key")
            .name();
        // A node (re)started in the next slot opens that ticket, and seals with the new key.
        let restarted = KeyRing::new(TicketPolicy::OPENSSL, source.clone());
        let now = slot + Duration::from_secs(HOUR + 5 * MIN);
        let current = restarted.encrypting_key(now).expect("key");
        assert_ne!(*current.name(), sealed);
        let (found, renew) = restarted
            .find_key(&sealed, now)
            .expect("the earlier slot's key");
        assert_eq!(found.created(), slot);
        assert!(renew, "a ticket of the previous slot is renewed");
        assert_eq!(restarted.key_names(now), vec![*current.name(), sealed]);
        // Two slots on, it no longer decrypts (as on a node that never stopped).
        let later = KeyRing::new(TicketPolicy::OPENSSL, source.clone());
        let then = slot + Duration::from_secs(2 * HOUR + 5 * MIN);
        assert!(later.find_key(&sealed, then).is_err());
        assert!(running.find_key(&sealed, then).is_err());
        // A source that keeps no earlier keys (the default) gives a ring of one key.
        let alone = KeyRing::new(TicketPolicy::OPENSSL, Arc::new(ProcessKeySource::new()));
        assert_eq!(alone.key_names(now).len(), 1);
    }

    /// A fleet's source as the Redis one works: one key per slot in a shared store (`store`);
    /// what this node fetched is held in memory (`held`) and handed out at once; fetches asked
    /// for in the background are queued (`asked`) and done when the test says
    /// ([`Ahead::fetch`]), as the source's own thread would.
    #[derive(Debug, Default)]
    struct Ahead {
        store: Arc<Mutex<std::collections::BTreeMap<u64, KeyMaterial>>>,
        held: Mutex<std::collections::BTreeMap<u64, KeyMaterial>>,
        asked: Mutex<Vec<u64>>,
        waited: AtomicUsize,
    }

    impl Ahead {
        fn sharing(store: &Arc<Mutex<std::collections::BTreeMap<u64, KeyMaterial>>>) -> Self {
            Self {
                store: store.clone(),
                ..Self::default()
            }
        }

        /// The shared store's key for the slot starting at `start` (made by the first asker).
        fn shared(&self, start: u64) -> KeyMaterial {
            let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
            store
                .entry(start)
                .or_insert_with(|| {
                    ProcessKeySource::new()
                        .new_key(UnixTime::from_secs(start))
                        .expect("key")
                })
                .clone()
        }

        /// Does the fetches asked for so far.
        fn fetch(&self) {
            let asked = std::mem::take(&mut *self.asked.lock().unwrap_or_else(|p| p.into_inner()));
            for start in asked {
                let key = self.shared(start);
                self.held
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(start, key);
            }
        }

        fn asked(&self) -> Vec<u64> {
            self.asked.lock().unwrap_or_else(|p| p.into_inner()).clone()
        }
    }

    impl KeySource for Ahead {
        fn new_key(&self, created: UnixTime) -> Result<KeyMaterial, KeyError> {
            self.waited.fetch_add(1, Ordering::SeqCst);
            let key = self.shared(created.as_secs());
            self.held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(created.as_secs(), key.clone());
            Ok(key)
        }
        fn master_secret(&self) -> Result<MasterSecret, KeyError> {
            Err(KeyError::Source("rolling only".into()))
        }
        fn slot_aligned(&self) -> bool {
            true
        }
        fn key_now(&self, created: UnixTime) -> Option<Result<KeyMaterial, KeyError>> {
            let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            held.get(&created.as_secs()).cloned().map(Ok)
        }
        fn fetch_ahead(&self, created: UnixTime) {
            let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
            if !asked.contains(&created.as_secs()) {
                asked.push(created.as_secs());
            }
        }
    }

    #[test]
    fn the_next_slot_key_is_fetched_ahead_and_a_ticket_call_never_waits_for_the_source() {
        let store = Arc::default();
        let (source_a, source_b) = (
            Arc::new(Ahead::sharing(&store)),
            Arc::new(Ahead::sharing(&store)),
        );
        let a = KeyRing::new(TicketPolicy::OPENSSL, source_a.clone());
        let b = KeyRing::new(TicketPolicy::OPENSSL, source_b.clone());
        let slot = UnixTime::from_secs(T0 / HOUR * HOUR);
        let next = slot + Duration::from_secs(HOUR);
        let lead = a.fetch_lead();
        assert_eq!(
            lead,
            Duration::from_secs(60),
            "a quarter of an hour, at most a minute"
        );
        // Started: nothing usable yet, so each ring waits for its source once.
        assert!(a.rotation_due(slot) && b.rotation_due(slot));
        a.rotate_if_due(slot).expect("rotation");
        let first = *a.encrypting_key(slot).expect("key").name();
        assert_eq!(*b.encrypting_key(slot).expect("key").name(), first);
        assert!(
            !a.rotation_due(next),
            "a rotation with a usable key never waits"
        );
        // Not yet within the lead: nothing asked ahead.
        let before_lead = next - lead - Duration::from_secs(1);
        a.encrypting_key(before_lead).expect("key");
        b.find_key(&first, before_lead).expect("current key");
        assert!(source_a.asked().is_empty() && source_b.asked().is_empty());
        // Within it: each ring asks its source once for the next slot's key.
        for ring in [&a, &b] {
            ring.encrypting_key(next - lead).expect("key");
            ring.find_key(&first, next - lead + Duration::from_secs(1))
                .expect("current key");
        }
        assert_eq!(source_a.asked(), vec![next.as_secs()]);
        assert_eq!(source_b.asked(), vec![next.as_secs()]);
        // Node a's fetch is done in time; node b's is not (its store did not answer).
        source_a.fetch();
        // At the boundary node a rotates from what it holds and seals with the new key...
        let sealed = *a.encrypting_key(next).expect("key").name();
        assert_ne!(sealed, first);
        // ...and node b, asked to open that ticket, answers at once: a full handshake with its
        // reason, its current key sealing meanwhile, the fetch asked for again.
        assert_eq!(
            b.find_key(&sealed, next).map(|_| ()),
            Err(RejectReason::KeyNotFetched)
        );
        assert_eq!(*b.encrypting_key(next).expect("key").name(), first);
        assert!(
            b.find_key(&first, next).is_ok(),
            "the current key still opens"
        );
        assert_eq!(source_b.asked(), vec![next.as_secs()]);
        // The fetch arrives: the next ticket call rotates, and node a's ticket opens.
        source_b.fetch();
        let (found, _) = b
            .find_key(&sealed, next + Duration::from_secs(1))
            .expect("opens");
        assert_eq!(*found.name(), sealed);
        assert_eq!(
            *b.encrypting_key(next + Duration::from_secs(1))
                .expect("key")
                .name(),
            sealed
        );
        // Node a's ring holds the fetched key: a ticket of the new slot, and one of the slot
        // before, open there with no wait either.
        assert!(a.find_key(&sealed, next).is_ok() && a.find_key(&first, next).is_ok());
        // A name no node has is refused at once, with the ordinary reason, when no rotation
        // waits.
        assert_eq!(
            b.find_key(&KeyName([7; 16]), next + Duration::from_secs(2))
                .map(|_| ()),
            Err(RejectReason::UnknownKey)
        );
        // Neither source was asked anything that waits since the start.
        assert_eq!(source_a.waited.load(Ordering::SeqCst), 1);
        assert_eq!(source_b.waited.load(Ordering::SeqCst), 1);
    }

    /// The check without lock answers as the ring does under its lock, at every time that
    /// matters to the ring as it stands (each key's times and the period's bounds, a
    /// microsecond either side), after every step: no key yet, keys made, rotations, stand-ins
    /// asked about again, a source that fails, keys expired with nothing rotated yet, the
    /// clock set back a period.
    #[test]
    fn the_check_without_lock_agrees_with_the_locked_one() {
        fn agrees(ring: &KeyRing, now: UnixTime, step: &str) {
            let mut times = vec![UnixTime::EPOCH, now, UnixTime::from_micros(u64::MAX)];
            for key in &ring.read().keys {
                times.extend([key.created(), key.rotate_at(), key.expires_at()]);
                times.extend(key.retry_at());
                times.push(key.rotate_at() - ring.fetch_lead());
            }
            let rotation = ring.policy.rotation().as_secs().max(1);
            let period = ring.period_at(now);
            for p in [period.saturating_sub(1), period, period + 1, period + 2] {
                times.push(UnixTime::from_secs(p * rotation));
            }
            let mut quiet_somewhere = false;
            for time in times {
                for t in [
                    time.as_micros().saturating_sub(1),
                    time.as_micros(),
                    time.as_micros().saturating_add(1),
                ] {
                    let t = UnixTime::from_micros(t);
                    let locked = ring.rotation_due_locked(t);
                    assert_eq!(ring.quiet.holds(t), !locked, "{step}: at {t:?}");
                    assert_eq!(ring.rotation_due(t), locked, "{step}: at {t:?}");
                    quiet_somewhere |= !locked;
                    assert_eq!(
                        ring.calm.holds(t),
                        ring.calm_locked(t),
                        "{step}: calm at {t:?}"
                    );
                }
            }
            // The window is not merely empty (the check would then always take the lock).
            if !ring.read().keys.is_empty() && !ring.rotation_due_locked(now) {
                assert!(quiet_somewhere, "{step}");
            }
        }

        // Rolling, a source that fails for a while.
        let source = Arc::new(FlakySource {
            inner: ProcessKeySource::new(),
            fail: AtomicBool::new(false),
        });
        let ring = KeyRing::new(TicketPolicy::OPENSSL, source.clone());
        agrees(&ring, at(0), "rolling, no key yet");
        ring.encrypting_key(at(0)).expect("key");
        agrees(&ring, at(0), "rolling, first key");
        ring.encrypting_key(at(HOUR)).expect("key");
        agrees(&ring, at(HOUR), "rolling, rotated");
        source.fail.store(true, Ordering::SeqCst);
        ring.encrypting_key(at(2 * HOUR + MIN)).expect("key");
        agrees(
            &ring,
            at(2 * HOUR + MIN),
            "rolling, source down at a rotation",
        );
        assert!(ring.rotate_if_due(at(5 * HOUR)).is_err());
        agrees(
            &ring,
            at(5 * HOUR),
            "rolling, every key expired, source down",
        );
        source.fail.store(false, Ordering::SeqCst);
        ring.rotate_if_due(at(5 * HOUR)).expect("rotation");
        assert!(!ring.rotation_due(at(5 * HOUR)));
        agrees(&ring, at(5 * HOUR), "rolling, source back");

        // Rolling, a fleet source cut off: stand-ins asked about again.
        let fleet = Arc::new(Fleet {
            reachable: AtomicBool::new(true),
            ..Fleet::default()
        });
        let ring = KeyRing::new(TicketPolicy::OPENSSL, fleet.clone());
        let slot = UnixTime::from_secs(T0 / HOUR * HOUR);
        let in_slot = |secs: u64| slot + Duration::from_secs(secs);
        ring.encrypting_key(in_slot(0)).expect("key");
        fleet.reachable.store(false, Ordering::SeqCst);
        ring.encrypting_key(in_slot(HOUR)).expect("key");
        agrees(&ring, in_slot(HOUR), "rolling, stand-in");
        ring.rotate_if_due(in_slot(HOUR + 61)).expect("rotation");
        agrees(&ring, in_slot(HOUR + 61), "rolling, stand-in asked again");
        fleet.reachable.store(true, Ordering::SeqCst);
        ring.encrypting_key(in_slot(HOUR + 130)).expect("key");
        agrees(&ring, in_slot(HOUR + 130), "rolling, fleet key");

        // Periodic, a stand-in master, then the fleet's; the clock set back.
        let fleet = Arc::new(Fleet::default());
        let ring = KeyRing::new(TicketPolicy::GNUTLS, fleet.clone());
        let period = TicketPolicy::GNUTLS.rotation().as_secs();
        let start = UnixTime::from_secs(T0 / period * period);
        let in_period = |secs: u64| start + Duration::from_secs(secs);
        agrees(&ring, in_period(10), "periodic, no key yet");
        ring.encrypting_key(in_period(10)).expect("key");
        assert!(
            ring.rotation_due(in_period(70)),
            "the stand-in is due at its retry"
        );
        agrees(&ring, in_period(10), "periodic, stand-in master");
        ring.rotate_if_due(in_period(71)).expect("rotation");
        agrees(&ring, in_period(71), "periodic, stand-in asked again");
        fleet.reachable.store(true, Ordering::SeqCst);
        ring.rotate_if_due(in_period(140)).expect("rotation");
        agrees(&ring, in_period(140), "periodic, fleet master");
        ring.rotate_if_due(in_period(period + 5)).expect("rotation");
        agrees(&ring, in_period(period + 5), "periodic, next period");
        assert!(
            ring.rotation_due(in_period(5)),
            "a period before the one held"
        );
        ring.rotate_if_due(in_period(5)).expect("rotation");
        agrees(&ring, in_period(5), "periodic, clock set back");

        // Periodic, a master source that fails.
        let source = Arc::new(FlakySource {
            inner: ProcessKeySource::new(),
            fail: AtomicBool::new(true),
        });
        let ring = KeyRing::new(TicketPolicy::GNUTLS, source.clone());
        assert!(ring.rotate_if_due(in_period(10)).is_err());
        agrees(&ring, in_period(10), "periodic, source down from the start");
        source.fail.store(false, Ordering::SeqCst);
        ring.rotate_if_due(in_period(10)).expect("rotation");
        agrees(&ring, in_period(10), "periodic, source up");
        source.fail.store(true, Ordering::SeqCst);
        assert!(ring.rotate_if_due(in_period(period + 10)).is_err());
        agrees(
            &ring,
            in_period(period + 10),
            "periodic, source down at a period",
        );
    }

    #[test]
    fn a_ring_without_a_usable_key_still_waits_for_its_source_and_reads_earlier_slots() {
        // Two hours on (past the key's life) with nothing fetched: no key decrypts, so the
        // ring must wait for the source rather than seal with none.
        let store = Arc::default();
        let source = Arc::new(Ahead::sharing(&store));
        let ring = KeyRing::new(TicketPolicy::OPENSSL, source.clone());
        let slot = UnixTime::from_secs(T0 / HOUR * HOUR);
        ring.encrypting_key(slot).expect("key");
        let later = slot + Duration::from_secs(2 * HOUR + 1);
        assert!(ring.rotation_due(later));
        let key = ring.encrypting_key(later).expect("key");
        assert_eq!(key.created(), slot + Duration::from_secs(2 * HOUR));
        assert_eq!(source.waited.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn periodic_keys_are_deterministic_from_the_master_secret() {
        #[derive(Debug)]
        struct Fixed;
        impl KeySource for Fixed {
            fn new_key(&self, _: UnixTime) -> Result<KeyMaterial, KeyError> {
                Err(KeyError::Source("periodic only".into()))
            }
            fn master_secret(&self) -> Result<MasterSecret, KeyError> {
                Ok(MasterSecret::new([9; 64]))
            }
        }
        let a = KeyRing::new(TicketPolicy::GNUTLS, Arc::new(Fixed));
        let b = KeyRing::new(TicketPolicy::GNUTLS, Arc::new(Fixed));
        let now = at(0);
        assert_eq!(a.key_names(now), b.key_names(now));
        assert_eq!(a.key_names(now).len(), 2);
        let ka = a.encrypting_key(now).expect("key");
        let kb = b.encrypting_key(now).expect("key");
        assert_eq!(ka.secret().cipher_key(), kb.secret().cipher_key());
    }

    #[test]
    fn periodic_schedule_accepts_current_and_previous_period_only() {
        let ring = KeyRing::new(TicketPolicy::GNUTLS, Arc::new(ProcessKeySource::new()));
        let six = 6 * HOUR;
        // Start exactly at a period boundary.
        let start = UnixTime::from_secs((T0 / six + 1) * six);
        let key = *ring.encrypting_key(start).expect("key").name();
        let later = |s: u64| start + Duration::from_secs(s);
        // Within the lifetime, same period.
        assert_eq!(ring.decide(&key, start, later(HOUR)), Decision::Resume);
        // Next period: key is previous, still accepted, but the ticket is now too old.
        assert_eq!(ring.find_key(&key, later(six)).map(|(_, r)| r), Ok(false));
        assert_eq!(
            ring.decide(&key, start, later(six)),
            Decision::Reject(RejectReason::TicketExpired)
        );
        // A ticket issued late in the period, presented early in the next: accepted.
        let late = later(six - 10 * MIN);
        assert_eq!(
            ring.decide(&key, late, later(six + 10 * MIN)),
            Decision::Resume
        );
        // Two periods on: the key is gone.
        assert_eq!(
            ring.find_key(&key, later(2 * six)).map(|_| ()),
            Err(RejectReason::UnknownKey)
        );
    }

    proptest! {
        #[test]
        fn no_ticket_is_accepted_past_its_lifetime(
            issue_offset in 0u64..(20 * HOUR),
            age in 0u64..(10 * HOUR),
            periodic in any::<bool>(),
        ) {
            let policy = if periodic { TicketPolicy::GNUTLS } else { TicketPolicy::OPENSSL };
            let ring = KeyRing::new(policy, Arc::new(ProcessKeySource::new()));
            let issued = at(issue_offset);
            let key = *ring.encrypting_key(issued).expect("key").name();
            let decision = ring.decide(&key, issued, issued + Duration::from_secs(age));
            if age >= policy.lifetime().as_secs() {
                prop_assert!(!decision.resumes(), "{:?} at age {}", decision, age);
            }
        }

        #[test]
        fn openssl_accepts_while_current_or_previous_and_renews_exactly_after_renew_time(
            steps in proptest::collection::vec(1u64..(90 * MIN), 1..8),
        ) {
            let ring = openssl_ring();
            let issued = at(0);
            let key = ring.encrypting_key(issued).expect("key");
            let name = *key.name();
            let created = key.created();
            let mut now_secs = 0;
            for step in steps {
                now_secs += step;
                let now = at(now_secs);
                // Keep the ring busy as a server would: every step seals a ticket.
                let current = ring.encrypting_key(now).expect("key");
                let key_age = now.saturating_since(created);
                let decision = ring.decide(&name, issued, now);
                let held = ring.key_names(now).contains(&name);
                if key_age >= Duration::from_secs(2 * HOUR) {
                    prop_assert!(!decision.resumes());
                } else if held {
                    prop_assert!(decision.resumes());
                    let renew_due = key_age >= Duration::from_secs(HOUR);
                    prop_assert_eq!(decision == Decision::ResumeAndRenew, renew_due);
                    // Held means current or the one previous key.
                    let names = ring.key_names(now);
                    prop_assert!(names.len() <= 2);
                    prop_assert!(names[0] == *current.name());
                }
            }
        }

        #[test]
        fn gnutls_accepts_keys_by_period_arithmetic(
            issue_offset in 0u64..(48 * HOUR),
            later_by in 0u64..(24 * HOUR),
        ) {
            let ring = KeyRing::new(TicketPolicy::GNUTLS, Arc::new(ProcessKeySource::new()));
            let issued = at(issue_offset);
            let key = *ring.encrypting_key(issued).expect("key").name();
            let now = issued + Duration::from_secs(later_by);
            let issued_period = ring.period_at(issued);
            let now_period = ring.period_at(now);
            let found = ring.find_key(&key, now).is_ok();
            prop_assert_eq!(found, now_period - issued_period <= 1);
            prop_assert_eq!(
                ring.decide(&key, issued, now).resumes(),
                found && later_by < 2 * HOUR
            );
            prop_assert_ne!(ring.decide(&key, issued, now), Decision::ResumeAndRenew);
        }

        #[test]
        fn hostile_key_names_never_panic(name in any::<[u8; 16]>(), issued in any::<u64>(), now in any::<u64>()) {
            let ring = openssl_ring();
            let now = UnixTime::from_micros(now);
            let _ = ring.decide(&KeyName(name), UnixTime::from_micros(issued), now);
        }
    }
}
