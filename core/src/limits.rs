//! [`PerAddress`]: at most so many connections at once from one client address, for a server
//! that should not let one host (a slowloris, a flood) take every slot.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Counts a server's open connections per client address and refuses one past the limit.
///
/// An IPv6 client is counted by its /64 (one host usually has a whole /64); an IPv4 client by
/// its address. [`admit`](Self::admit) gives an [`AddressSlot`] that frees its place when
/// dropped, or a [`Refused`] that says whether it is the first refusal of a burst (since that
/// address was last admitted), so a server logs a burst once instead of once per connection.
///
/// ```
/// use std::sync::Arc;
/// use tlsresume_core::limits::PerAddress;
///
/// let limit = Arc::new(PerAddress::new(2));
/// let ip = "192.0.2.7".parse().unwrap();
/// let a = limit.admit(ip).expect("first");
/// let _b = limit.admit(ip).expect("second");
/// let refused = limit.admit(ip).expect_err("third: past the limit");
/// assert!(refused.first_of_burst);
/// assert!(!limit.admit(ip).expect_err("fourth").first_of_burst); // same burst: not logged again
/// assert!(limit.admit("192.0.2.8".parse().unwrap()).is_ok()); // another host
/// drop(a);
/// let _c = limit.admit(ip).expect("a place was freed");
/// ```
pub struct PerAddress {
    max: usize,
    open: Mutex<HashMap<IpAddr, Entry>>,
}

#[derive(Debug, Default)]
struct Entry {
    open: usize,
    /// Refused since this address was last admitted.
    refused: u64,
}

/// Why a connection was refused: its address already has the most connections allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refused {
    /// The connections open from the address (its /64 for IPv6).
    pub open: usize,
    /// The first refusal since the address was last admitted: log this one (later ones of the
    /// same burst are counted in [`refused_in_burst`](Self::refused_in_burst)).
    pub first_of_burst: bool,
    /// Refusals of this burst so far, this one included.
    pub refused_in_burst: u64,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} connections already open from this address",
            self.open
        )
    }
}

impl std::error::Error for Refused {}

/// One admitted connection's place; freed when dropped.
pub struct AddressSlot {
    limit: Arc<PerAddress>,
    key: IpAddr,
}

impl fmt::Debug for AddressSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddressSlot")
            .field("key", &self.key)
            .finish()
    }
}

impl fmt::Debug for PerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerAddress")
            .field("max", &self.max)
            .field("addresses", &self.lock().len())
            .finish()
    }
}

impl PerAddress {
    /// At most `max` connections at once per address (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The limit.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The connections open from `ip` (its /64 for IPv6).
    pub fn open(&self, ip: IpAddr) -> usize {
        self.lock().get(&key(ip)).map_or(0, |e| e.open)
    }

    /// A place for a connection from `ip`, or why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<AddressSlot, Refused> {
        let key = key(ip);
        let mut open = self.lock();
        let entry = open.entry(key).or_default();
        if entry.open >= self.max {
            entry.refused += 1;
            return Err(Refused {
                open: entry.open,
                first_of_burst: entry.refused == 1,
                refused_in_burst: entry.refused,
            });
        }
        entry.open += 1;
        entry.refused = 0;
        Ok(AddressSlot {
            limit: Arc::clone(self),
            key,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.limit.lock();
        if let Some(entry) = open.get_mut(&self.key) {
            entry.open = entry.open.saturating_sub(1);
            // An address with nothing open is forgotten (refusals come only when it is full).
            if entry.open == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// What an address is counted under: itself (IPv4; an IPv4-mapped IPv6 address as IPv4), or
/// its /64 (IPv6).
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn ipv6_is_counted_by_its_64() {
        let limit = Arc::new(PerAddress::new(1));
        let _a = limit.admit(ip("2001:db8:1:2::1")).expect("first");
        let refused = limit
            .admit(ip("2001:db8:1:2:ffff::9"))
            .expect_err("same /64");
        assert_eq!(refused.open, 1);
        assert!(limit.admit(ip("2001:db8:1:3::1")).is_ok(), "another /64");
        let _v4 = limit.admit(ip("192.0.2.1")).expect("v4");
        assert!(limit.admit(ip("::ffff:192.0.2.1")).is_err(), "mapped v4");
    }

    #[test]
    fn a_burst_is_reported_once_and_counted() {
        let limit = Arc::new(PerAddress::new(1));
        let a = limit.admit(ip("192.0.2.1")).expect("first");
        let firsts: Vec<bool> = (0..5)
            .map(|_| {
                limit
                    .admit(ip("192.0.2.1"))
                    .expect_err("full")
                    .first_of_burst
            })
            .collect();
        assert_eq!(firsts, [true, false, false, false, false]);
        assert_eq!(
            limit
                .admit(ip("192.0.2.1"))
                .expect_err("full")
                .refused_in_burst,
            6
        );
        drop(a);
        assert_eq!(limit.open(ip("192.0.2.1")), 0);
        let _b = limit.admit(ip("192.0.2.1")).expect("freed");
        assert!(
            limit
                .admit(ip("192.0.2.1"))
                .expect_err("full again")
                .first_of_burst,
            "a new burst"
        );
    }

    #[test]
    fn places_are_freed_from_any_thread() {
        let limit = Arc::new(PerAddress::new(3));
        let slots: Vec<_> = (0..3)
            .map(|_| limit.admit(ip("192.0.2.1")).expect("place"))
            .collect();
        std::thread::scope(|s| {
            for slot in slots {
                s.spawn(move || drop(slot));
            }
        });
        assert_eq!(limit.open(ip("192.0.2.1")), 0);
    }
}
