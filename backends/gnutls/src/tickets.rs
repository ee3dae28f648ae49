//! Ticket-key glue: GnuTLS derives its own ticket keys from the master secret, so all the
//! server hands it is [`KeySource::master_secret`](tlsresume_core::KeySource::master_secret) and
//! the ticket lifetime.
//!
//! # What GnuTLS 3.7.9 does with them (measured, see `tests/rotation.rs`)
//!
//! `gnutls_db_set_cache_expiration(session, L)` sets the ticket lifetime to `L` and the key
//! rotation period to `3 × L` (6 h for Exim's 2 h). The key of period `floor(now / 3L)` is
//! derived from the master secret and the period number, so servers sharing the master secret
//! derive the same keys. The measured acceptance rules are in the crate's README and
//! [`crate`] docs.

use std::time::Duration;

use tlsresume_core::{Error, MasterSecret, ServerSettings};

/// The master ticket key for `gnutls_session_ticket_enable_server` (64 bytes).
pub(crate) fn master_key(settings: &ServerSettings) -> Result<MasterSecret, Error> {
    Ok(settings.key_source.master_secret()?)
}

/// The value for `gnutls_db_set_cache_expiration`: the policy's ticket lifetime in seconds
/// (GnuTLS's rotation period is always three times this; the policy's own rotation setting
/// cannot be expressed to GnuTLS).
pub(crate) fn expiration_secs(settings: &ServerSettings) -> u32 {
    lifetime_secs(settings.ticket_policy_for(crate::BACKEND).lifetime())
}

fn lifetime_secs(lifetime: Duration) -> u32 {
    u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exim_lifetime_is_two_hours() {
        assert_eq!(
            lifetime_secs(tlsresume_core::TicketPolicy::GNUTLS.lifetime()),
            7200
        );
        assert_eq!(lifetime_secs(Duration::from_millis(10)), 1);
    }
}
