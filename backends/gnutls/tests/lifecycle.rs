//! Ticket expiry and GnuTLS's 6 h key rotation on the virtual clock (GnuTLS's time function
//! is bound to the settings' clock), and the client's (absent) expiry filter.

mod common;

use common::*;
use tlsresume_core::*;

const PERIOD: u64 = 6 * 3600;

/// Issues a ticket at `issue_at`, tries to resume at `resume_at` (seconds since the epoch).
fn resumes(
    v: ProtocolVersion,
    policy: ResumptionPolicy,
    issue_at: u64,
    resume_at: u64,
) -> (SessionInfo, SessionInfo) {
    let pair = Pair::new("server-ecdsa", Versions::only(v), policy);
    pair.clock.set(UnixTime::from_secs(issue_at));
    let (c, _) = pair.connect().expect("full");
    assert!(!c.resumed);
    pair.clock.set(UnixTime::from_secs(resume_at));
    pair.connect().expect("second connection never fails")
}

fn period_start() -> u64 {
    UnixTime::now().as_secs() / PERIOD * PERIOD
}

#[test]
fn tickets_resume_until_two_hours_and_not_after() {
    let _g = serial();
    let start = period_start() + 60;
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let (c, _) = resumes(
            v,
            ResumptionPolicy::exim_compatible(),
            start,
            start + 7200 - 60,
        );
        assert!(c.resumed, "{v}: 1h59m");
        let (c, s) = resumes(
            v,
            ResumptionPolicy::exim_compatible(),
            start,
            start + 7200 + 60,
        );
        assert!(!c.resumed && !s.resumed, "{v}: 2h01m");
        // Exim-compatible GnuTLS client: no expiry filter, the stale session is offered.
        assert_eq!(c.resumption.bits(), 0x0f, "{v}");
        // TLS 1.2: the server saw the ticket (0x0f); TLS 1.3: the stale PSK is not reported.
        let server = if v == ProtocolVersion::Tls12 {
            0x0f
        } else {
            0x0b
        };
        assert_eq!(s.resumption.bits(), server, "{v}");
    }
}

#[test]
fn hardened_client_filters_expired_sessions_itself() {
    let _g = serial();
    let start = period_start() + 60;
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let (c, s) = resumes(v, ResumptionPolicy::hardened(), start, start + 7200 + 60);
        assert!(!c.resumed);
        // Not offered: client requested, server provided.
        assert_eq!(c.resumption.bits(), 0x0b, "{v}");
        assert_eq!(s.resumption.bits(), 0x0b, "{v}");
    }
}

#[test]
fn a_ticket_from_late_in_one_period_resumes_early_in_the_next() {
    let _g = serial();
    let late = period_start() + PERIOD - 60;
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        // 2 minutes later, across the 6 h boundary: the previous period's key is accepted.
        let (c, _) = resumes(v, ResumptionPolicy::exim_compatible(), late, late + 120);
        assert!(c.resumed, "{v}: across one boundary");
        // Still the previous period, still within the lifetime.
        let (c, _) = resumes(
            v,
            ResumptionPolicy::exim_compatible(),
            late,
            late + 7200 - 60,
        );
        assert!(c.resumed, "{v}: 1h59m, next period");
        // Past the lifetime in the next period: refused.
        let (c, _) = resumes(
            v,
            ResumptionPolicy::exim_compatible(),
            late,
            late + 7200 + 60,
        );
        assert!(!c.resumed, "{v}: 2h01m, next period");
        // Two boundaries later (always past the 2 h lifetime, since rotation is 3 × lifetime).
        let (c, s) = resumes(
            v,
            ResumptionPolicy::exim_compatible(),
            late,
            late + PERIOD + 120,
        );
        assert!(!c.resumed && !s.resumed, "{v}: two boundaries");
    }
}

#[test]
fn a_ticket_from_the_future_is_refused() {
    let _g = serial();
    let start = period_start() + 3600;
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let (c, _) = resumes(v, ResumptionPolicy::exim_compatible(), start, start - 1800);
        assert!(!c.resumed, "{v}: clock moved back 30 min");
    }
}

#[test]
fn core_gnutls_policy_agrees_with_the_measurements() {
    // The lifetime core's GnuTLS flavour reports is the one GnuTLS enforces, on both sides of
    // the boundary it gives (not the constants again: what GnuTLS does with them).
    let _g = serial();
    let lifetime = TicketPolicy::GNUTLS.lifetime().as_secs();
    let start = period_start() + 60;
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let (c, _) = resumes(
            v,
            ResumptionPolicy::hardened(),
            start,
            start + lifetime - 30,
        );
        assert!(c.resumed, "{v}: 30 s before the policy's lifetime");
        let (c, s) = resumes(
            v,
            ResumptionPolicy::exim_compatible(),
            start,
            start + lifetime + 30,
        );
        assert!(!c.resumed && !s.resumed, "{v}: 30 s after it");
    }
}

#[test]
fn the_derived_key_depends_on_the_period_number() {
    let _g = serial();
    // A server with the same master secret but a 1 s longer lifetime has a 3 s longer
    // rotation period, hence (today) another period number and another derived key: its
    // tickets are not accepted by the 2 h server although both are within the lifetime.
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let mut pair = Pair::exim("server-ecdsa", v);
        pair.connect().expect("full");
        let (c, _) = pair.connect().expect("resume");
        assert!(c.resumed, "{v}");
        pair.server.ticket_policy =
            Some(TicketPolicy::periodic(std::time::Duration::from_secs(7201)).expect("policy"));
        let (c, _) = pair.connect().expect("other period length");
        assert!(!c.resumed, "{v}: other derived key");
    }
}
