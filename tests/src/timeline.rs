//! The ticket lifecycle as a picture: per key flavour, the keys' windows over the virtual hours
//! and what happened to each ticket presented in the scenarios.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tlsresume_core::keys::key_ring::{Decision, KeyRing, TicketLifecycle};
use tlsresume_core::keys::KeyName;
use tlsresume_core::model::ticket_policy::KeySchedule;
use tlsresume_core::{ProcessKeySource, Resumption, TicketPolicy, UnixTime};

use crate::engine::Outcome;
use crate::scenario::{PolicyKind, Wire};

const WIDTH: f64 = 1000.0;
/// Labels live left of this line, bars and dots right of it, so no label crosses a bar.
const LEFT: f64 = 230.0;
const RIGHT: f64 = 30.0;
const HOURS: f64 = 7.0;
/// The least height of a flavour's panel; a panel with more key or scenario rows grows (see
/// [`panel_height`]).
const PANEL: f64 = 330.0;
/// Height of the legend under the title.
const LEGEND: f64 = 56.0;
/// The label font size, and the widest a character of it is drawn (sans-serif, generous), for
/// keeping labels inside the label column.
const FONT: f64 = 11.0;
const CHAR_WIDTH: f64 = 0.62 * FONT;

fn x(at: Duration) -> f64 {
    (LEFT + at.as_secs_f64() / 3600.0 * (WIDTH - LEFT - RIGHT) / HOURS).min(WIDTH - RIGHT)
}

/// Cuts a label to the label column's width.
fn fit(label: &str) -> String {
    let max = ((LEFT - 20.0) / CHAR_WIDTH) as usize;
    if label.chars().count() <= max {
        return label.to_owned();
    }
    let mut cut: String = label.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The colours of the key bars and the scenario events, for the legend.
const KEY_CURRENT: &str = "#4a7";
const KEY_PREVIOUS: &str = "#bdb";
const EVENTS: [(&str, &str); 6] = [
    ("full handshake, ticket issued", "#555"),
    ("full handshake, no ticket", "#999"),
    ("resumed", "#080"),
    ("resumed, new ticket", "#06c"),
    ("ticket refused, full handshake", "#c00"),
    ("connection failed", "#80a"),
];

/// The legend: what each colour means.
fn legend(svg: &mut String, top: f64) {
    let _ = writeln!(
        svg,
        r#"<g class="legend"><text x="10" y="{}" font-weight="bold">Legend</text>"#,
        top + 12.0
    );
    let items: Vec<(&str, &str, bool)> = [
        ("ticket key: current (encrypts)", KEY_CURRENT, true),
        ("ticket key: previous (still decrypts)", KEY_PREVIOUS, true),
    ]
    .into_iter()
    .chain(EVENTS.iter().map(|(what, colour)| (*what, *colour, false)))
    .collect();
    for (i, (what, colour, bar)) in items.iter().enumerate() {
        let col = (i % 4) as f64;
        let row = (i / 4) as f64;
        let ix = 80.0 + col * 225.0;
        let iy = top + 4.0 + row * 18.0;
        if *bar {
            let _ = writeln!(
                svg,
                r#"<rect x="{ix}" y="{iy}" width="14" height="10" fill="{colour}"/>"#
            );
        } else {
            let _ = writeln!(
                svg,
                r#"<circle cx="{}" cy="{}" r="4" fill="{colour}"/>"#,
                ix + 7.0,
                iy + 5.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}">{}</text>"#,
            ix + 20.0,
            iy + 9.0,
            escape(what)
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="80" y1="{y}" x2="94" y2="{y}" stroke="#555" stroke-opacity="0.35" stroke-width="3"/><text x="100" y="{}">a ticket's lifetime after it was issued</text></g>"##,
        top + 44.0,
        y = top + 40.0,
    );
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What a scenario connection did with the ticket it presented, if any: an entry of
/// [`EVENTS`].
fn event(o: &Outcome) -> (&'static str, &'static str) {
    let server = o.server.as_ref().map(|s| s.resumption).unwrap_or_default();
    let index = if o.error.is_some() {
        5
    } else if o.resumed() && server.contains(Resumption::CLIENT_REQUESTED) {
        3
    } else if o.resumed() {
        2
    } else if server.contains(Resumption::CLIENT_SUGGESTED) {
        4
    } else if server.contains(Resumption::CLIENT_REQUESTED) {
        0
    } else {
        1
    };
    EVENTS[index]
}

/// What one flavour's panel draws: its scenario connections and its ticket keys (name,
/// created, rotates, expires), on a clock that starts at `start`.
struct Panel<'a> {
    chosen: Vec<&'a Outcome>,
    keys: Vec<(KeyName, UnixTime, UnixTime, UnixTime)>,
    start: UnixTime,
}

/// A panel's height for its rows: the title, the key lane, the scenario rows and the notes
/// under them, never less than [`PANEL`].
fn panel_height(keys: usize, rows: usize) -> f64 {
    PANEL.max(112.0 + 14.0 * keys.max(1) as f64 + 13.0 * rows as f64)
}

impl<'a> Panel<'a> {
    /// The first TLS-on-connect, `exim` case of the flavour, every scenario of it (DANE and
    /// client certificates included), and the keys its ticket times use.
    fn of(outcomes: &'a [Outcome], schedule: KeySchedule, policy: TicketPolicy) -> Self {
        let chosen: Vec<&Outcome> = match outcomes.iter().find(|o| {
            o.flavour == schedule
                && o.case.wire == Wire::TlsOnConnect
                && o.case.policy == PolicyKind::Exim
        }) {
            Some(first) => outcomes.iter().filter(|o| o.case == first.case).collect(),
            None => Vec::new(),
        };
        // Keys: replay the scenario times on a ring with the flavour's policy.
        let start = UnixTime::from_secs(6 * 3600 * 1000 + 3600);
        let ring = KeyRing::new(policy, Arc::new(ProcessKeySource::new()));
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
        Panel {
            chosen,
            keys,
            start,
        }
    }

    fn height(&self) -> f64 {
        panel_height(self.keys.len(), self.chosen.len())
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
    let panels: Vec<Panel> = flavours
        .iter()
        .map(|(schedule, policy, _)| Panel::of(outcomes, *schedule, *policy))
        .collect();
    let height = 40.0 + LEGEND + panels.iter().map(Panel::height).sum::<f64>();
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="{FONT}">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">tlsresume ticket lifecycle (virtual hours since the sequence start)</text>"#
    );
    legend(&mut svg, 30.0);
    let mut top = 40.0 + LEGEND;
    for ((_, policy, title), panel) in flavours.iter().zip(&panels) {
        let panel_height = panel.height();
        let Panel {
            chosen,
            keys,
            start,
        } = panel;
        let start = *start;
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
                top + panel_height - 20.0
            );
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}">{h} h</text>"#,
                gx - 8.0,
                top + panel_height - 8.0
            );
        }
        let rel = |t: UnixTime| t.saturating_since(start);
        let lane_top = top + 28.0;
        let _ = writeln!(
            svg,
            r#"<text x="10" y="{}" font-weight="bold">ticket keys</text>"#,
            lane_top + 9.0
        );
        let lane_top = lane_top + 14.0;
        for (k, (name, created, rotate, expires)) in keys.iter().enumerate() {
            let y = lane_top + 14.0 * k as f64;
            let (x0, x1, x2) = (x(rel(*created)), x(rel(*rotate)), x(rel(*expires)));
            let short = &name.to_string()[..8];
            let _ = writeln!(
                svg,
                r#"<text class="label" x="20" y="{}">{}</text>"#,
                y + 9.0,
                escape(&fit(&format!("key {short}")))
            );
            let _ = writeln!(
                svg,
                r##"<rect class="bar" x="{x0}" y="{y}" width="{}" height="10" fill="{KEY_CURRENT}"><title>key {short}: current</title></rect>"##,
                (x1 - x0).max(1.0)
            );
            let _ = writeln!(
                svg,
                r##"<rect class="bar" x="{x1}" y="{y}" width="{}" height="10" fill="{KEY_PREVIOUS}"><title>key {short}: previous, still decrypts</title></rect>"##,
                (x2 - x1).max(1.0)
            );
        }
        // Scenario events: the label in the left column, the dot and the ticket's lifetime on
        // the time axis.
        let ev_top = lane_top + 14.0 * keys.len().max(1) as f64 + 8.0;
        let _ = writeln!(
            svg,
            r#"<text x="10" y="{}" font-weight="bold">scenarios</text>"#,
            ev_top + 9.0
        );
        let ev_top = ev_top + 14.0;
        for (k, o) in chosen.iter().enumerate() {
            let y = ev_top + 13.0 * k as f64;
            let ex = x(o.at);
            let (what, colour) = event(o);
            let _ = writeln!(
                svg,
                r#"<text class="label" x="20" y="{}" fill="{colour}">{}</text>"#,
                y + 9.0,
                escape(&fit(&format!("{} +{}m", o.scenario, o.at.as_secs() / 60)))
            );
            if what == EVENTS[0].0 || what == EVENTS[3].0 {
                // The ticket issued here lives for the policy's lifetime.
                let end = x(o.at + policy.lifetime());
                let _ = writeln!(
                    svg,
                    r##"<line class="bar" x1="{ex}" y1="{}" x2="{end}" y2="{}" stroke="{colour}" stroke-opacity="0.35" stroke-width="3"/>"##,
                    y + 5.0,
                    y + 5.0
                );
            }
            let _ = writeln!(
                svg,
                r#"<circle cx="{ex}" cy="{}" r="4" fill="{colour}"><title>{}</title></circle>"#,
                y + 5.0,
                escape(&format!("{} +{}m: {what}", o.scenario, o.at.as_secs() / 60))
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
            top + panel_height - 34.0,
            escape(&decision_note)
        );
        top += panel_height;
    }
    svg.push_str("</svg>\n");
    svg
}
