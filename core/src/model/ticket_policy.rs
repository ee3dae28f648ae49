//! How long ticket keys and tickets live: [`TicketPolicy`] and its two presets.

use core::fmt;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

/// How ticket keys are made and retired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeySchedule {
    /// GnuTLS's scheme: one master secret; the key for each rotation period is derived from it
    /// and the period number `floor(now / rotation)`, so every server sharing the master secret
    /// derives the same keys without talking to each other.
    Periodic,
    /// Exim's OpenSSL scheme: a fresh random key is made when the current key's rotation time
    /// has passed; the old key is kept as a previous key until it expires.
    Rolling,
}

/// The ticket-key and ticket lifetimes a server enforces.
///
/// Two presets reproduce what Exim does with each C library:
///
/// | preset | keys | rotation | previous keys kept | ticket lifetime | renewal |
/// |---|---|---|---|---|---|
/// | [`TicketPolicy::OPENSSL`] | rolling | 1 h | 1 | 2 h | new ticket once the key is 1 h old |
/// | [`TicketPolicy::GNUTLS`] | periodic | 6 h (3 × lifetime) | 1 | 2 h | none |
///
/// ```
/// use std::time::Duration;
/// use tlsresume_core::TicketPolicy;
///
/// let policy = TicketPolicy::OPENSSL;
/// assert_eq!(policy.lifetime(), Duration::from_secs(7200));
/// // A key accepts tickets while it is current or one of the kept previous keys.
/// assert_eq!(policy.key_lifetime(), Duration::from_secs(7200));
///
/// let custom = TicketPolicy::rolling(
///     Duration::from_secs(600),      // rotate every 10 min
///     2,                             // keep two previous keys
///     Duration::from_secs(1800),     // tickets live 30 min
///     Some(Duration::from_secs(900)),// renew once the key is 15 min old
/// )?;
/// assert_eq!(custom.key_lifetime(), Duration::from_secs(1800));
/// # Ok::<(), tlsresume_core::model::ticket_policy::TicketPolicyError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TicketPolicy {
    schedule: KeySchedule,
    rotation: Duration,
    previous_keys: u32,
    lifetime: Duration,
    renew_after: Option<Duration>,
}

impl TicketPolicy {
    /// Exim over OpenSSL: 1 h key rotation, one previous key kept, 2 h ticket lifetime, a new
    /// ticket when a presented ticket's key is more than 1 h old.
    pub const OPENSSL: Self = Self {
        schedule: KeySchedule::Rolling,
        rotation: HOUR,
        previous_keys: 1,
        lifetime: Duration::from_secs(2 * 3600),
        renew_after: Some(HOUR),
    };

    /// Exim over GnuTLS: 2 h ticket lifetime (`gnutls_db_set_cache_expiration(7200)`), keys
    /// derived per 6 h period (3 × the lifetime), the previous period's key still accepted, no
    /// renewal.
    pub const GNUTLS: Self = Self {
        schedule: KeySchedule::Periodic,
        rotation: Duration::from_secs(6 * 3600),
        previous_keys: 1,
        lifetime: Duration::from_secs(2 * 3600),
        renew_after: None,
    };

    /// The most previous keys a policy may keep.
    pub const MAX_PREVIOUS_KEYS: u32 = 64;

    /// A rolling-key policy of your own (the OpenSSL flavour's scheme).
    ///
    /// Fails when a duration is zero, when `renew_after` is not shorter than `lifetime`, or when
    /// more than [`Self::MAX_PREVIOUS_KEYS`] previous keys are asked for.
    pub fn rolling(
        rotation: Duration,
        previous_keys: u32,
        lifetime: Duration,
        renew_after: Option<Duration>,
    ) -> Result<Self, TicketPolicyError> {
        Self {
            schedule: KeySchedule::Rolling,
            rotation,
            previous_keys,
            lifetime,
            renew_after,
        }
        .validated()
    }

    /// A periodic-key policy of your own (the GnuTLS flavour's scheme): keys rotate every
    /// 3 × `lifetime`, the previous period's key is still accepted, no renewal.
    pub fn periodic(lifetime: Duration) -> Result<Self, TicketPolicyError> {
        Self {
            schedule: KeySchedule::Periodic,
            rotation: lifetime.saturating_mul(3),
            previous_keys: 1,
            lifetime,
            renew_after: None,
        }
        .validated()
    }

    fn validated(self) -> Result<Self, TicketPolicyError> {
        if self.lifetime.is_zero() {
            return Err(TicketPolicyError::ZeroLifetime);
        }
        if self.rotation.is_zero() {
            return Err(TicketPolicyError::ZeroRotation);
        }
        if self.rotation.as_secs() == 0 {
            return Err(TicketPolicyError::SubSecond);
        }
        if self.previous_keys > Self::MAX_PREVIOUS_KEYS {
            return Err(TicketPolicyError::TooManyPreviousKeys(self.previous_keys));
        }
        if let Some(renew) = self.renew_after {
            if renew.is_zero() {
                return Err(TicketPolicyError::ZeroRenewAfter);
            }
            if renew >= self.lifetime {
                return Err(TicketPolicyError::RenewAfterNotShorterThanLifetime {
                    renew_after: renew,
                    lifetime: self.lifetime,
                });
            }
        }
        Ok(self)
    }

    /// Whether GnuTLS can carry this policy out: periodic keys rotating every 3 × the ticket
    /// lifetime, the previous period's key kept, no early renewal (what
    /// [`TicketPolicy::periodic`] makes).
    pub fn is_gnutls_compatible(&self) -> bool {
        self.schedule == KeySchedule::Periodic
            && self.rotation == self.lifetime.saturating_mul(3)
            && self.previous_keys == 1
            && self.renew_after.is_none()
    }

    /// Checks a policy (the presets always pass).
    pub fn validate(&self) -> Result<(), TicketPolicyError> {
        self.validated().map(|_| ())
    }

    /// How keys are made and retired.
    pub fn schedule(&self) -> KeySchedule {
        self.schedule
    }

    /// How often a new key takes over encryption.
    pub fn rotation(&self) -> Duration {
        self.rotation
    }

    /// How many previous keys still decrypt tickets.
    pub fn previous_keys(&self) -> u32 {
        self.previous_keys
    }

    /// How long a ticket is accepted after it was issued; also the lifetime hint sent to
    /// clients and the session timeout.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// How old a ticket's key may be before resuming with it also issues a fresh ticket.
    pub fn renew_after(&self) -> Option<Duration> {
        self.renew_after
    }

    /// How long one key accepts tickets: while current, then while one of the kept previous
    /// keys, `rotation × (previous_keys + 1)`.
    pub fn key_lifetime(&self) -> Duration {
        self.rotation
            .saturating_mul(self.previous_keys.saturating_add(1))
    }
}

impl Default for TicketPolicy {
    /// [`TicketPolicy::OPENSSL`].
    fn default() -> Self {
        Self::OPENSSL
    }
}

impl fmt::Display for TicketPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schedule = match self.schedule {
            KeySchedule::Periodic => "periodic",
            KeySchedule::Rolling => "rolling",
        };
        write!(
            f,
            "{schedule} keys, rotation {}s, {} previous, lifetime {}s",
            self.rotation.as_secs(),
            self.previous_keys,
            self.lifetime.as_secs()
        )?;
        match self.renew_after {
            Some(renew) => write!(f, ", renew after {}s", renew.as_secs()),
            None => write!(f, ", no renewal"),
        }
    }
}

/// Why a [`TicketPolicy`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketPolicyError {
    /// `renew_after` was at least the ticket lifetime, so no ticket could ever be renewed.
    #[error("renew-after ({}s) must be shorter than the ticket lifetime ({}s)", renew_after.as_secs(), lifetime.as_secs())]
    RenewAfterNotShorterThanLifetime {
        /// The requested renew-after.
        renew_after: Duration,
        /// The requested lifetime.
        lifetime: Duration,
    },
    /// The rotation period was under a second (tickets carry whole-second lifetimes).
    #[error("the key rotation period must be at least one second")]
    SubSecond,
    /// More previous keys than [`TicketPolicy::MAX_PREVIOUS_KEYS`].
    #[error("{0} previous keys asked for; at most {max} are kept", max = TicketPolicy::MAX_PREVIOUS_KEYS)]
    TooManyPreviousKeys(u32),
    /// A zero ticket lifetime.
    #[error("the ticket lifetime must be longer than zero")]
    ZeroLifetime,
    /// A zero renew-after.
    #[error("renew-after must be longer than zero (use no renewal instead)")]
    ZeroRenewAfter,
    /// A zero rotation period.
    #[error("the key rotation period must be longer than zero")]
    ZeroRotation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_reference() {
        let o = TicketPolicy::OPENSSL;
        assert_eq!(o.schedule(), KeySchedule::Rolling);
        assert_eq!(o.rotation(), HOUR);
        assert_eq!(o.previous_keys(), 1);
        assert_eq!(o.lifetime(), 2 * HOUR);
        assert_eq!(o.renew_after(), Some(HOUR));
        assert_eq!(o.validate(), Ok(()));
        let g = TicketPolicy::GNUTLS;
        assert_eq!(g.schedule(), KeySchedule::Periodic);
        assert_eq!(g.rotation(), 3 * g.lifetime());
        assert_eq!(g.rotation(), 6 * HOUR);
        assert_eq!(g.renew_after(), None);
        assert_eq!(g.validate(), Ok(()));
        assert_eq!(TicketPolicy::periodic(2 * HOUR), Ok(g));
    }

    #[test]
    fn invalid_policies_are_refused() {
        let d = Duration::from_secs;
        assert_eq!(
            TicketPolicy::rolling(d(60), 1, Duration::ZERO, None),
            Err(TicketPolicyError::ZeroLifetime)
        );
        assert_eq!(
            TicketPolicy::rolling(Duration::ZERO, 1, d(60), None),
            Err(TicketPolicyError::ZeroRotation)
        );
        assert_eq!(
            TicketPolicy::rolling(Duration::from_millis(10), 1, d(60), None),
            Err(TicketPolicyError::SubSecond)
        );
        assert!(matches!(
            TicketPolicy::rolling(d(60), 1, d(60), Some(d(60))),
            Err(TicketPolicyError::RenewAfterNotShorterThanLifetime { .. })
        ));
        assert_eq!(
            TicketPolicy::rolling(d(60), 1, d(60), Some(Duration::ZERO)),
            Err(TicketPolicyError::ZeroRenewAfter)
        );
        assert_eq!(
            TicketPolicy::rolling(d(60), 65, d(60), None),
            Err(TicketPolicyError::TooManyPreviousKeys(65))
        );
        assert_eq!(
            TicketPolicy::periodic(Duration::ZERO),
            Err(TicketPolicyError::ZeroLifetime)
        );
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(
            TicketPolicy::OPENSSL.to_string(),
            "rolling keys, rotation 3600s, 1 previous, lifetime 7200s, renew after 3600s"
        );
    }
}
