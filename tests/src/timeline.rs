//! The ticket lifecycle as a picture: per key flavour, the keys' windows over the virtual hours
//! and what happened to each ticket presented in the scenarios.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tlsresume_core::{
    Decision, KeyRing, KeySchedule, ProcessKeySource, Resumption, TicketLifecycle, TicketPolicy,
    UnixTime,
};

use crate::engine::Outcome;
use crate::scenario::{PolicyKind, Wire};

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 150.0;
const RIGHT: f64 = 30.0;
const HOURS: f64 = 7.0;
const PANEL: f64 = 320.0;

fn x(at: Duration) -> f64 {
    LEFT + at.as_secs_f64() / 3600.0 * (WIDTH - LEFT - RIGHT) / HOURS
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What a scenario connection did with the ticket it presented, if any.
fn event(o: &Outcome) -> (&'static str, &'static str) {
    let server = o.server.as_ref().map(|s| s.resumption).unwrap_or_default();
    if o.error.is_some() {
        ("connection failed", "#b00")
    } else if o.resumed() && server.contains(Resumption::CLIENT_REQUESTED) {
        ("resumed, new ticket", "#06c")
    } else if o.resumed() {
        ("resumed", "#080")
    } else if server.contains(Resumption::CLIENT_SUGGESTED) {
        ("ticket refused, full handshake", "#c00")
    } else if server.contains(Resumption::CLIENT_REQUESTED) {
        ("full handshake, ticket issued", "#555")
    } else {
        ("full handshake, no ticket", "#999")
    }
}

/// An SVG picture of both flavours' lifecycles, from a run's outcomes: for each flavour it takes
/// the first TLS 1.2, TLS-on-connect, `exim` case and draws the key windows (current, then
/// kept as previous) and each scenario's ticket event on the virtual clock.
pub fn timeline_svg(outcomes: &[Outcome]) -> String {
    let flavours = [
        (KeySchedule::Rolling, TicketPolicy::OPENSSL, "OpenSSL flavour: 1 h rotation, 1 previous key, 2 h tickets, renewal after 1 h"),
        (KeySchedule::Periodic, TicketPolicy::GNUTLS, "GnuTLS flavour: keys per 6 h period (previous period accepted), 2 h tickets, no renewal"),
    ];
    let height = 40.0 + PANEL * flavours.len() as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">tlsresume ticket lifecycle (virtual hours since the sequence start)</text>"#
    );
    for (i, (schedule, policy, title)) in flavours.iter().enumerate() {
        let top = 40.0 + PANEL * i as f64;
        let _ = writeln!(
            svg,
            r#"<text x="10" y="{}" font-size="12" font-weight="bold">{}</text>"#,
            top + 14.0,
            escape(title)
        );
        // Hour grid.
        for h in 0..=HOURS as u64 {
            let gx = x(Duration::from_secs(h * 3600));
            let _ = writeln!(
                svg,
                r##"<line x1="{gx}" y1="{}" x2="{gx}" y2="{}" stroke="#ddd"/>"##,
                top + 22.0,
                top + PANEL - 20.0
            );
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}">{h} h</text>"#,
                gx - 8.0,
                top + PANEL - 8.0
            );
        }
        let chosen: Vec<&Outcome> = match outcomes.iter().find(|o| {
            o.flavour == *schedule
                && o.case.wire == Wire::TlsOnConnect
                && o.case.policy == PolicyKind::Exim
        }) {
            Some(first) => outcomes.iter().filter(|o| o.case == first.case).collect(),
            None => Vec::new(),
        };
        // Keys: replay the scenario times on a ring with the flavour's policy.
        let start = UnixTime::from_secs(6 * 3600 * 1000 + 3600);
        let ring = KeyRing::new(*policy, Arc::new(ProcessKeySource::new()));
        let mut times: Vec<Duration> = chosen.iter().map(|o| o.at).collect();
        times.extend([Duration::ZERO, Duration::from_secs(59 * 60)]);
        times.sort();
        let mut keys = Vec::new();
        for at in &times {
            if let Ok(key) = ring.encrypting_key(start + *at) {
                if !keys.iter().any(|(n, _, _, _)| n == key.name()) {
                    keys.push((
                        *key.name(),
                        key.created(),
                        key.rotate_at(),
                        key.expires_at(),
                    ));
                }
            }
        }
        let rel = |t: UnixTime| t.saturating_since(start);
        let lane_top = top + 28.0;
        let _ = writeln!(
            svg,
            r#"<text x="10" y="{}">ticket keys</text>"#,
            lane_top + 10.0
        );
        for (k, (name, created, rotate, expires)) in keys.iter().enumerate() {
            let y = lane_top + 14.0 * k as f64;
            let (x0, x1, x2) = (x(rel(*created)), x(rel(*rotate)), x(rel(*expires)));
            let short = &name.to_string()[..8];
            let _ = writeln!(
                svg,
                r##"<rect x="{x0}" y="{y}" width="{}" height="10" fill="#4a7"><title>key {short}: current</title></rect>"##,
                (x1 - x0).max(1.0)
            );
            let _ = writeln!(
                svg,
                r##"<rect x="{x1}" y="{y}" width="{}" height="10" fill="#bdb"><title>key {short}: previous, still decrypts</title></rect>"##,
                (x2 - x1).max(1.0)
            );
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" font-size="9">{short}</text>"#,
                x0 + 2.0,
                y + 8.5
            );
        }
        // Scenario events.
        let ev_top = lane_top + 14.0 * keys.len().max(1) as f64 + 16.0;
        let _ = writeln!(
            svg,
            r#"<text x="10" y="{}">scenarios</text>"#,
            ev_top + 10.0
        );
        for (k, o) in chosen.iter().enumerate() {
            let y = ev_top + 13.0 * k as f64;
            let ex = x(o.at);
            let (what, colour) = event(o);
            if what == "full handshake, ticket issued" || what == "resumed, new ticket" {
                // The ticket issued here lives for the policy's lifetime.
                let end = x(o.at + policy.lifetime());
                let _ = writeln!(
                    svg,
                    r##"<line x1="{ex}" y1="{}" x2="{end}" y2="{}" stroke="{colour}" stroke-opacity="0.35" stroke-width="3"/>"##,
                    y + 5.0,
                    y + 5.0
                );
            }
            let _ = writeln!(
                svg,
                r#"<circle cx="{ex}" cy="{}" r="4" fill="{colour}"/>"#,
                y + 5.0
            );
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" fill="{colour}">{} +{}m: {what}</text>"#,
                ex + 7.0,
                y + 9.0,
                o.scenario,
                o.at.as_secs() / 60
            );
        }
        let decision_note = match policy.renew_after() {
            Some(r) => format!(
                "renewal: a ticket whose key is older than {} min gets a new one ({:?})",
                r.as_secs() / 60,
                Decision::ResumeAndRenew
            ),
            None => "no renewal; tickets expire 2 h after issue".to_owned(),
        };
        let _ = writeln!(
            svg,
            r##"<text x="10" y="{}" fill="#555">{}</text>"##,
            top + PANEL - 34.0,
            escape(&decision_note)
        );
    }
    svg.push_str("</svg>\n");
    svg
}
