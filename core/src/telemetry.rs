//! What the lifecycle tells the ecosystem's facades, so an application's subscriber and
//! exporter see it without glue: [`tracing`] spans and events under the target `tlsresume`, and
//! [`metrics`] counters named as Prometheus conventions want. With no subscriber or recorder
//! installed, each costs a few instructions.
//!
//! | counter | labels | counts |
//! |---|---|---|
//! | `tlsresume_handshakes_total` | `role`, `backend`, `result` (`full`, `resumed`) | handshakes completed |
//! | `tlsresume_handshake_failures_total` | `role` (`client`), `backend`, `kind` ([`ErrorKind::name`]) | client handshakes failed |
//! | `tlsresume_sessions_not_offered_total` | `backend`, `reason` ([`NoOffer::name`]) | client handshakes that offered no stored session |
//! | `tlsresume_sessions_stored_total` | `backend` | sessions a client stored |
//! | `tlsresume_tickets_issued_total` | `backend` | tickets a server sealed |
//! | `tlsresume_tickets_refused_total` | `backend`, `reason` ([`RejectReason::name`]) | presented tickets a server refused (OpenSSL, rustls) |
//! | `tlsresume_store_notices_total` | `notice` ([`Notice::name`]) | what stores and key sources met without failing a handshake: writes failing and working again, corrupt entries removed, Redis out of reach and back, stand-in ticket keys and the fleet's back, a new slot's ticket key not fetched by its rotation ([`crate::notice`]) |
//!
//! Spans: `tls_client` (`backend`, `peer`, `server`) and `tls_server` (`backend`, `peer`), at
//! debug level; the events in them: the end of each handshake (resumed or not, the bits, why no
//! session was offered or why a ticket was refused) at debug, a failed client handshake at info.
//! The stores' and key sources' notices are events of their own: trouble at warn, its end at
//! info (field `notice`, [`Notice::name`]).

use crate::error::ErrorKind;
use crate::info::NoOffer;
use crate::keys::key_ring::RejectReason;
use crate::kind::BackendKind;
use crate::notice::{Level, Notice};

/// The target of every event and span.
pub const TARGET: &str = "tlsresume";

const METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(TARGET, metrics::Level::INFO, Some(module_path!()));

/// Adds one to the counter `key`.
fn add(key: &metrics::Key) {
    metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA).increment(1));
}

/// Adds one to the counter `name` with `labels` (a key made for the call: the rarer counters).
fn count(name: &'static str, labels: &[(&'static str, &'static str)]) {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::from_static_parts(k, v))
        .collect();
    add(&metrics::Key::from_parts(name, labels));
}

/// The keys counted on every handshake, made once (no allocation per handshake):
/// `[role × result][backend]` for `tlsresume_handshakes_total`, then per backend for sessions
/// stored and tickets issued.
struct Keys {
    handshakes: Vec<Vec<metrics::Key>>,
    sessions_stored: Vec<metrics::Key>,
    tickets_issued: Vec<metrics::Key>,
    /// `tlsresume_sessions_not_offered_total`: `[reason][backend]`, the reasons in
    /// [`NO_OFFERS`]'s order (a client's full handshake with nothing stored counts one).
    not_offered: Vec<Vec<metrics::Key>>,
}

/// Every reason a client offers no stored session, in [`no_offer_index`]'s order.
const NO_OFFERS: [NoOffer; 11] = [
    NoOffer::CorruptEntry,
    NoOffer::Expired,
    NoOffer::Missing,
    NoOffer::NotAllowed,
    NoOffer::OcspRequired,
    NoOffer::StoreFailed,
    NoOffer::OtherBackend,
    NoOffer::LibraryRefused,
    NoOffer::OtherKey,
    NoOffer::NotHeld,
    NoOffer::DaneUnverified,
];

/// The reason's place in [`NO_OFFERS`] (a reason added to [`NoOffer`] must be added here).
fn no_offer_index(reason: NoOffer) -> usize {
    match reason {
        NoOffer::CorruptEntry => 0,
        NoOffer::Expired => 1,
        NoOffer::Missing => 2,
        NoOffer::NotAllowed => 3,
        NoOffer::OcspRequired => 4,
        NoOffer::StoreFailed => 5,
        NoOffer::OtherBackend => 6,
        NoOffer::LibraryRefused => 7,
        NoOffer::OtherKey => 8,
        NoOffer::NotHeld => 9,
        NoOffer::DaneUnverified => 10,
    }
}

fn keys() -> &'static Keys {
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let key =
            |name: &'static str, backend: BackendKind, more: &[(&'static str, &'static str)]| {
                let mut labels = vec![metrics::Label::from_static_parts("backend", backend.name())];
                labels.extend(
                    more.iter()
                        .map(|(k, v)| metrics::Label::from_static_parts(k, v)),
                );
                metrics::Key::from_parts(name, labels)
            };
        let per_backend = |name: &'static str, more: &[(&'static str, &'static str)]| {
            BackendKind::ALL
                .iter()
                .map(|&b| key(name, b, more))
                .collect::<Vec<_>>()
        };
        Keys {
            handshakes: [
                ("client", "full"),
                ("client", "resumed"),
                ("server", "full"),
                ("server", "resumed"),
            ]
            .iter()
            .map(|&(role, result)| {
                per_backend(
                    "tlsresume_handshakes_total",
                    &[("role", role), ("result", result)],
                )
            })
            .collect(),
            sessions_stored: per_backend("tlsresume_sessions_stored_total", &[]),
            tickets_issued: per_backend("tlsresume_tickets_issued_total", &[]),
            not_offered: NO_OFFERS
                .iter()
                .map(|reason| {
                    per_backend(
                        "tlsresume_sessions_not_offered_total",
                        &[("reason", reason.name())],
                    )
                })
                .collect(),
        }
    })
}

/// The backend's place in [`BackendKind::ALL`], as the keys are made.
fn index(backend: BackendKind) -> usize {
    BackendKind::ALL
        .iter()
        .position(|&b| b == backend)
        .unwrap_or(0)
}

/// A handshake ended: `role` is `client` or `server`.
pub(crate) fn handshake_done(role: &'static str, backend: BackendKind, resumed: bool) {
    let row = usize::from(role == "server") * 2 + usize::from(resumed);
    if let Some(key) = keys()
        .handshakes
        .get(row)
        .and_then(|keys| keys.get(index(backend)))
    {
        add(key);
    }
}

/// A client handshake failed.
pub(crate) fn client_failed(backend: BackendKind, kind: ErrorKind) {
    failed("client", backend, kind);
}

pub(crate) fn server_failed(backend: BackendKind, kind: ErrorKind) {
    failed("server", backend, kind);
}

fn failed(role: &'static str, backend: BackendKind, kind: ErrorKind) {
    count(
        "tlsresume_handshake_failures_total",
        &[
            ("role", role),
            ("backend", backend.name()),
            ("kind", kind.name()),
        ],
    );
}

/// A client handshake offered no stored session.
pub(crate) fn not_offered(backend: BackendKind, reason: NoOffer) {
    if let Some(key) = keys()
        .not_offered
        .get(no_offer_index(reason))
        .and_then(|keys| keys.get(index(backend)))
    {
        add(key);
    }
}

/// A client stored a session.
pub(crate) fn session_stored(backend: BackendKind) {
    if let Some(key) = keys().sessions_stored.get(index(backend)) {
        add(key);
    }
}

/// A server sealed a ticket.
pub(crate) fn ticket_issued(backend: BackendKind) {
    if let Some(key) = keys().tickets_issued.get(index(backend)) {
        add(key);
    }
}

/// A server refused a presented ticket.
pub(crate) fn ticket_refused(backend: BackendKind, reason: RejectReason) {
    count(
        "tlsresume_tickets_refused_total",
        &[("backend", backend.name()), ("reason", reason.name())],
    );
}

/// A store or key source met something ([`crate::notice::emit`]): the event and its count.
/// Whether the current `tracing` subscriber took the event.
pub(crate) fn notice(notice: &Notice) -> bool {
    count(
        "tlsresume_store_notices_total",
        &[("notice", notice.name())],
    );
    match notice.level() {
        Level::Warning => {
            tracing::warn!(target: TARGET, notice = notice.name(), "{notice}");
            tracing::enabled!(target: TARGET, tracing::Level::WARN)
        }
        Level::Info => {
            tracing::info!(target: TARGET, notice = notice.name(), "{notice}");
            tracing::enabled!(target: TARGET, tracing::Level::INFO)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every [`NoOffer`], walked through an exhaustive match (not taken from [`NO_OFFERS`]): a
    /// reason added to the type does not compile here until it is given its place in the walk.
    fn every_no_offer() -> Vec<NoOffer> {
        let mut every = vec![NoOffer::CorruptEntry];
        let mut reason = NoOffer::CorruptEntry;
        loop {
            reason = match reason {
                NoOffer::CorruptEntry => NoOffer::Expired,
                NoOffer::Expired => NoOffer::Missing,
                NoOffer::Missing => NoOffer::NotAllowed,
                NoOffer::NotAllowed => NoOffer::OcspRequired,
                NoOffer::OcspRequired => NoOffer::StoreFailed,
                NoOffer::StoreFailed => NoOffer::OtherBackend,
                NoOffer::OtherBackend => NoOffer::LibraryRefused,
                NoOffer::LibraryRefused => NoOffer::OtherKey,
                NoOffer::OtherKey => NoOffer::NotHeld,
                NoOffer::NotHeld => NoOffer::DaneUnverified,
                NoOffer::DaneUnverified => break,
            };
            every.push(reason);
        }
        every
    }

    #[test]
    fn no_offers_lists_every_reason_once() {
        let every = every_no_offer();
        let names: std::collections::BTreeSet<_> = every.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), every.len(), "the walk visits each reason once");
        for reason in &every {
            assert!(
                NO_OFFERS.contains(reason),
                "{reason:?} missing from NO_OFFERS"
            );
        }
        assert_eq!(
            NO_OFFERS.len(),
            every.len(),
            "NO_OFFERS lists a reason twice"
        );
        // The indices are a permutation of NO_OFFERS's places.
        let mut places: Vec<usize> = every.iter().map(|r| no_offer_index(*r)).collect();
        places.sort_unstable();
        assert_eq!(places, (0..NO_OFFERS.len()).collect::<Vec<_>>());
    }

    #[test]
    fn every_reason_has_its_own_not_offered_key() {
        for (i, reason) in NO_OFFERS.iter().enumerate() {
            assert_eq!(no_offer_index(*reason), i, "{reason:?}");
            for backend in BackendKind::ALL {
                let key = &keys().not_offered[i][index(backend)];
                let labels: Vec<_> = key.labels().map(|l| (l.key(), l.value())).collect();
                assert_eq!(
                    labels,
                    [("backend", backend.name()), ("reason", reason.name())]
                );
            }
        }
    }
}
