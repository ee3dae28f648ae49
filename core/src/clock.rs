//! Time, real or virtual: every time-dependent decision in tlsresume asks a [`Clock`].

use core::fmt;
use core::ops::{Add, Sub};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time: microseconds since the Unix epoch.
///
/// Microseconds give a virtual clock room to move by hours while tests stay exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);

    /// A time this many microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// A time this many seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1_000_000
    }

    /// The time since the epoch as a [`Duration`].
    pub const fn since_epoch(self) -> Duration {
        Duration::from_micros(self.0)
    }

    /// How long after `earlier` this is; zero when `earlier` is later.
    pub fn saturating_since(self, earlier: UnixTime) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// The real time now.
    pub fn now() -> Self {
        SystemClock.now()
    }
}

fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for UnixTime {
    type Output = UnixTime;

    fn add(self, rhs: Duration) -> UnixTime {
        UnixTime(self.0.saturating_add(duration_micros(rhs)))
    }
}

impl Sub<Duration> for UnixTime {
    type Output = UnixTime;

    fn sub(self, rhs: Duration) -> UnixTime {
        UnixTime(self.0.saturating_sub(duration_micros(rhs)))
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// A source of the current time.
///
/// Backends feed every library clock they can reach from one `Clock` (rustls's
/// `TimeProvider`, GnuTLS's global time function, the issue time OpenSSL tickets carry), so
/// a [`ManualClock`] moves a whole client/server pair through hours of ticket lifecycle in
/// milliseconds of test time.
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> UnixTime;

    /// Which time this clock tells, for libraries that read one clock process-wide (GnuTLS):
    /// two clocks with the same identity always agree. [`ClockIdentity::System`] for the real
    /// clock; the default, [`ClockIdentity::Unknown`], makes only the same `Arc` count as the
    /// same clock.
    fn identity(&self) -> ClockIdentity {
        ClockIdentity::Unknown
    }
}

/// What [`Clock::identity`] says about a clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClockIdentity {
    /// The system's real time.
    System,
    /// A virtual clock; clocks with the same number share their time (clones of one
    /// [`ManualClock`]).
    Virtual(usize),
    /// Not known: only the same handle is the same clock.
    Unknown,
}

/// Whether two clock handles tell the same time: the same handle, or the same
/// [`Clock::identity`] other than [`ClockIdentity::Unknown`].
pub fn same_clock(a: &SharedClock, b: &SharedClock) -> bool {
    if Arc::ptr_eq(a, b) {
        return true;
    }
    match (a.identity(), b.identity()) {
        (ClockIdentity::Unknown, _) | (_, ClockIdentity::Unknown) => false,
        (x, y) => x == y,
    }
}

/// A shareable clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The system's real-time clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        UnixTime(duration_micros(since))
    }

    fn identity(&self) -> ClockIdentity {
        ClockIdentity::System
    }
}

/// A virtual clock that only moves when told to.
///
/// Clones share the same time, so a test keeps one handle and gives clones to the server and
/// the client.
///
/// ```
/// use std::time::Duration;
/// use tlsresume_core::{Clock, ManualClock, UnixTime};
///
/// let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
/// let server_view = clock.clone();
/// clock.advance(Duration::from_secs(61 * 60));
/// assert_eq!(server_view.now(), UnixTime::from_secs(1_700_000_000 + 3660));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: UnixTime) -> Self {
        Self {
            micros: Arc::new(AtomicU64::new(start.as_micros())),
        }
    }

    /// A clock standing at the current real time (then moving only when told).
    pub fn starting_now() -> Self {
        Self::new(UnixTime::now())
    }

    /// Moves the clock to `to` (backwards too, to test clock steps).
    pub fn set(&self, to: UnixTime) {
        self.micros.store(to.as_micros(), Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = duration_micros(by);
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.micros.load(Ordering::SeqCst))
    }

    fn identity(&self) -> ClockIdentity {
        // The shared counter's address: the same for every clone, different for other clocks.
        ClockIdentity::Virtual(Arc::as_ptr(&self.micros) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time_across_threads() {
        let clock = ManualClock::new(UnixTime::from_secs(100));
        let other = clock.clone();
        std::thread::spawn(move || other.advance(Duration::from_secs(3600)))
            .join()
            .expect("thread");
        assert_eq!(clock.now(), UnixTime::from_secs(3700));
        clock.set(UnixTime::from_secs(5));
        assert_eq!(clock.now().as_secs(), 5);
    }

    #[test]
    fn arithmetic_saturates() {
        let t = UnixTime::from_secs(10);
        assert_eq!(t - Duration::from_secs(20), UnixTime::EPOCH);
        assert_eq!(
            UnixTime::from_micros(u64::MAX) + Duration::from_secs(1),
            UnixTime::from_micros(u64::MAX)
        );
        assert_eq!(t.saturating_since(UnixTime::from_secs(20)), Duration::ZERO);
        assert_eq!(
            UnixTime::from_secs(20).saturating_since(t),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn clock_identity_follows_shared_time() {
        let a = ManualClock::new(UnixTime::from_secs(1));
        let a1: SharedClock = Arc::new(a.clone());
        let a2: SharedClock = Arc::new(a);
        let b: SharedClock = Arc::new(ManualClock::new(UnixTime::from_secs(1)));
        let s1: SharedClock = Arc::new(SystemClock);
        let s2: SharedClock = Arc::new(SystemClock);
        assert!(same_clock(&a1, &a2));
        assert!(!same_clock(&a1, &b));
        assert!(same_clock(&s1, &s2));
        assert!(!same_clock(&s1, &a1));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > UnixTime::from_secs(1_577_836_800));
    }
}
