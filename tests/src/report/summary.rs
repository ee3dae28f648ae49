//! The summary `compare` opens with: one grid per TLS version (scenarios down, server ×
//! client pairs across), rows merged over policies and transports where they agree, each
//! difference marked with a letter and named under the grid with its cause.
//!
//! The causes are the ones `docs/differences.md` explains; a difference none of them covers is
//! still listed, as "not explained", so the summary never hides one.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use tlsresume_core::model::ticket_policy::KeySchedule;
use tlsresume_core::{BackendKind, ProtocolVersion, Resumption, Verification};

use crate::engine::Outcome;
use crate::scenario::{PolicyKind, Scenario, Wire};

/// The widest line the summary prints (a terminal of 120 columns).
pub const MAX_WIDTH: usize = 120;

/// Width of a pair's column: the cell (`R 1D/17`), its mark, a space.
const COLUMN: usize = 9;

/// One known cause of a difference between backends, as `docs/differences.md` explains it.
struct Cause {
    /// The section of `docs/differences.md`.
    section: &'static str,
    /// What differs and why, in a few words.
    reason: &'static str,
    /// Whether an outcome shows it. `all` is the whole run (for comparisons with an earlier
    /// connection of the same case).
    shows: fn(&Outcome, &[Outcome]) -> bool,
    /// Whether the difference is visible in the cells (else it is in `--detail` only).
    in_cells: bool,
}

fn server_bits(o: &Outcome) -> Resumption {
    o.server.as_ref().map(|s| s.resumption).unwrap_or_default()
}

fn client_bits(o: &Outcome) -> Resumption {
    o.client.as_ref().map(|c| c.resumption).unwrap_or_default()
}

fn tls12(o: &Outcome) -> bool {
    o.case.tls == ProtocolVersion::Tls12
}

/// The causes. A cell is marked with the first that shows in it, so those of one scenario
/// come before the general ones.
const CAUSES: &[Cause] = &[
    Cause {
        section: "tickets",
        reason:
            "at 61 min the OpenSSL key flavour renews the ticket; the GnuTLS flavour never does",
        shows: |o, _| {
            o.scenario == Scenario::Renewal
                && o.flavour == KeySchedule::Periodic
                && !server_bits(o).contains(Resumption::CLIENT_REQUESTED)
        },
        in_cells: true,
    },
    Cause {
        section: "tickets",
        reason: "OpenSSL gives its TLS 1.2 client no renewed ticket: kept the old one under exim",
        shows: |o, _| {
            tls12(o)
                && matches!(o.scenario, Scenario::Renewal | Scenario::Postrenewal)
                && o.case.client == BackendKind::Openssl
                && o.case.policy == PolicyKind::Exim
                && server_bits(o).contains(Resumption::CLIENT_REQUESTED)
                && !client_bits(o).contains(Resumption::SERVER_TICKET)
        },
        in_cells: true,
    },
    Cause {
        section: "tickets",
        reason: "GnuTLS clients keep presenting their first ticket, so the server renews again",
        shows: |o, _| {
            tls12(o)
                && o.scenario == Scenario::Postrenewal
                && o.case.client == BackendKind::Gnutls
                && server_bits(o).contains(Resumption::CLIENT_REQUESTED)
        },
        in_cells: true,
    },
    Cause {
        section: "tickets",
        reason:
            "rustls clients use a TLS 1.3 ticket up; the OpenSSL server gave no new one to offer",
        shows: |o, _| {
            !tls12(o)
                && o.case.server == BackendKind::Openssl
                && o.case.client == BackendKind::Rustls
                && o.scenario == Scenario::Renewal
                && !o.resumed()
        },
        in_cells: true,
    },
    Cause {
        section: "tickets",
        reason:
            "at rotation the OpenSSL flavour has dropped the key; GnuTLS takes the last period's",
        shows: |o, _| o.scenario == Scenario::Rotation,
        in_cells: true,
    },
    Cause {
        section: "clients",
        reason: "GnuTLS clients offer an expired session under exim (1.3: GnuTLS drops it itself)",
        shows: |o, _| {
            o.scenario == Scenario::Timeout
                && o.case.client == BackendKind::Gnutls
                && client_bits(o).contains(Resumption::CLIENT_SUGGESTED)
        },
        in_cells: true,
    },
    Cause {
        section: "clients",
        reason:
            "a client not allowed to resume: GnuTLS clients still ask for a ticket, report it (09)",
        shows: |o, _| {
            o.scenario == Scenario::Notreq
                && o.case.client == BackendKind::Gnutls
                && server_bits(o).contains(Resumption::CLIENT_REQUESTED)
        },
        in_cells: true,
    },
    Cause {
        section: "clients",
        reason: "GnuTLS servers without tickets give a session ID; clients offer it (05), no cache",
        shows: |o, _| {
            o.scenario == Scenario::ServerExcludes
                && o.case.server == BackendKind::Gnutls
                && server_bits(o).contains(Resumption::CLIENT_SUGGESTED)
        },
        in_cells: true,
    },
    Cause {
        section: "known issues",
        reason:
            "no OCSP staple on resumption: OpenSSL, rustls clients requiring it fail under exim",
        shows: |o, _| o.scenario == Scenario::OcspResume && o.error.is_some(),
        in_cells: true,
    },
    Cause {
        section: "known issues",
        reason:
            "GnuTLS clients keep the OCSP response in the session: ocsp_resume resumes under exim",
        shows: |o, _| {
            o.scenario == Scenario::OcspResume
                && o.case.client == BackendKind::Gnutls
                && o.case.policy == PolicyKind::Exim
                && o.resumed()
        },
        in_cells: true,
    },
    Cause {
        section: "tickets",
        reason:
            "OpenSSL servers give no new ticket on TLS 1.3 resumption; GnuTLS, rustls always do",
        shows: |o, _| {
            !tls12(o)
                && o.case.server == BackendKind::Openssl
                && o.resumed()
                && !server_bits(o).contains(Resumption::CLIENT_REQUESTED)
        },
        in_cells: true,
    },
    Cause {
        section: "tickets",
        reason:
            "rustls servers send an empty ticket message on resumption; GnuTLS clients count it",
        shows: |o, _| {
            tls12(o)
                && o.case.server == BackendKind::Rustls
                && o.case.client == BackendKind::Gnutls
                && o.resumed()
                && client_bits(o).contains(Resumption::CLIENT_REQUESTED)
                && !server_bits(o).contains(Resumption::CLIENT_REQUESTED)
        },
        in_cells: true,
    },
    Cause {
        section: "known issues",
        reason: "(in --detail) OpenSSL, rustls clients say CV=no on resumption under exim",
        shows: |o, _| {
            o.case.policy == PolicyKind::Exim
                && o.scenario == Scenario::Resume
                && o.resumed()
                && o.case.client != BackendKind::Gnutls
                && o.client
                    .as_ref()
                    .is_some_and(|c| c.verification != Verification::Verified)
        },
        in_cells: false,
    },
    Cause {
        section: "known issues",
        reason: "(in --detail) OpenSSL, rustls clients report no DANE on resumption under exim",
        shows: |o, _| {
            o.case.policy == PolicyKind::Exim
                && matches!(o.scenario, Scenario::DaneEeResume | Scenario::DaneTaResume)
                && o.resumed()
                && o.client
                    .as_ref()
                    .is_some_and(|c| c.verified_by.dane().is_none())
        },
        in_cells: false,
    },
    Cause {
        section: "known issues",
        reason: "(in --detail) OpenSSL servers leave $tls_in_certificate_verified unset, exim",
        shows: |o, _| {
            o.case.policy == PolicyKind::Exim
                && o.scenario == Scenario::ClientcertRequiredResume
                && o.resumed()
                && o.server
                    .as_ref()
                    .is_some_and(|s| s.certificate_verified().is_none())
        },
        in_cells: false,
    },
    Cause {
        section: "known issues",
        reason: "(in --detail) GnuTLS's Exim cipher string changes on resumption under exim",
        shows: |o, all| {
            if o.scenario != Scenario::Resume || !o.resumed() {
                return false;
            }
            let Some(full) = all
                .iter()
                .find(|f| f.case == o.case && f.scenario == Scenario::Getticket)
            else {
                return false;
            };
            let changed = |a: Option<&tlsresume_core::SessionInfo>,
                           b: Option<&tlsresume_core::SessionInfo>| {
                matches!((a, b), (Some(a), Some(b)) if a.cipher.exim != b.cipher.exim)
            };
            changed(o.client.as_ref(), full.client.as_ref())
                || changed(o.server.as_ref(), full.server.as_ref())
        },
        in_cells: false,
    },
];

/// A cell's text: `R 1D/17` (resumed, server bits / client bits), `F 0B/0B` (full), or `✗`
/// and a word for why the connection failed.
pub(super) fn cell_text(o: &Outcome) -> String {
    if let Some(e) = &o.error {
        let lower = e.to_ascii_lowercase();
        let why = if lower.contains("ocsp") {
            "ocsp"
        } else if lower.contains("tlsa") {
            "dane"
        } else if lower.contains("verif") || lower.contains("certificate") {
            "verify"
        } else {
            "error"
        };
        return format!("✗ {why}");
    }
    super::cell(o)
}

/// One set of (policy, transport) variants of a TLS version whose cells agree for a scenario.
type Variants = BTreeSet<(PolicyKind, Wire)>;

/// The words for a set of variants, against all the variants of the grid: empty when it is
/// all of them, `exim`, `starttls`, `exim starttls`, or a list.
fn variants_label(set: &Variants, all: &Variants) -> String {
    if set == all {
        return String::new();
    }
    let policies: BTreeSet<PolicyKind> = set.iter().map(|v| v.0).collect();
    let wires: BTreeSet<Wire> = set.iter().map(|v| v.1).collect();
    let all_policies: BTreeSet<PolicyKind> = all.iter().map(|v| v.0).collect();
    let all_wires: BTreeSet<Wire> = all.iter().map(|v| v.1).collect();
    if policies.len() * wires.len() == set.len() {
        let mut parts = Vec::new();
        if policies != all_policies {
            parts.extend(policies.iter().map(|p| p.name()));
        }
        if wires != all_wires {
            parts.extend(wires.iter().map(|w| w.name()));
        }
        return parts.join(" ");
    }
    set.iter()
        .map(|(p, w)| format!("{p}/{w}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Variants whose cells agree: the cells' texts, the variants, the outcomes of the first.
type Group<'a> = (Vec<String>, Variants, Vec<Option<&'a Outcome>>);

/// A grid row: a scenario over some variants, a cell per pair.
struct Row<'a> {
    label: String,
    cells: Vec<Option<&'a Outcome>>,
    /// The scenario, the variants' label and the cells' texts (for folding like rows).
    scenario: Scenario,
    variants: String,
    texts: Vec<String>,
}

/// The client-certificate scenarios the summary folds into one row when their cells agree:
/// the row they fold into, and its name then.
fn client_certificate_family(sc: Scenario) -> Option<(Scenario, &'static str)> {
    match sc {
        Scenario::ClientcertTried | Scenario::ClientcertAbsent => {
            Some((Scenario::ClientcertRequired, "clientcert_*"))
        }
        Scenario::ClientcertTriedResume | Scenario::ClientcertAbsentResume => {
            Some((Scenario::ClientcertRequiredResume, "clientcert_*_resume"))
        }
        _ => None,
    }
}

/// Text attributes, or none when colour is off.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Pads `text` to `width` characters (the cells' `✗` and `←` are one column each).
fn pad(text: &str, width: usize) -> String {
    let n = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(n)))
}

/// The summary: a grid per TLS version, then one line per kind of difference.
///
/// `colour` adds ANSI colours (resumed green, failed red, marked cells yellow); give it only
/// when stdout is a terminal and `NO_COLOR` is not set.
pub fn summary(outcomes: &[Outcome], colour: bool) -> String {
    let paint = Paint(colour);
    let mut out = String::new();
    let mut versions: Vec<ProtocolVersion> = Vec::new();
    let mut pairs: Vec<(BackendKind, BackendKind)> = Vec::new();
    for o in outcomes {
        if !versions.contains(&o.case.tls) {
            versions.push(o.case.tls);
        }
        if !pairs.contains(&(o.case.server, o.case.client)) {
            pairs.push((o.case.server, o.case.client));
        }
    }
    // Columns grouped by server, backends in the order the run used them.
    let mut servers: Vec<BackendKind> = Vec::new();
    let mut clients: Vec<BackendKind> = Vec::new();
    for &(s, c) in &pairs {
        if !servers.contains(&s) {
            servers.push(s);
        }
        if !clients.contains(&c) {
            clients.push(c);
        }
    }
    let rank = |list: &[BackendKind], k: BackendKind| list.iter().position(|&x| x == k);
    pairs.sort_by_key(|&(s, c)| (rank(&servers, s), rank(&clients, c)));
    // Letters in order of first use; `?` for what no cause covers.
    let mut used: Vec<usize> = Vec::new();
    let mut cause_versions: Vec<BTreeSet<String>> = vec![BTreeSet::new(); CAUSES.len()];
    let mut unexplained: Vec<String> = Vec::new();
    let mut grids = String::new();
    for &tls in &versions {
        let of_tls: Vec<&Outcome> = outcomes.iter().filter(|o| o.case.tls == tls).collect();
        let all: Variants = of_tls
            .iter()
            .map(|o| (o.case.policy, o.case.wire))
            .collect();
        let mut rows: Vec<Row> = Vec::new();
        for sc in Scenario::ALL {
            let of_sc: Vec<&Outcome> = of_tls
                .iter()
                .copied()
                .filter(|o| o.scenario == sc)
                .collect();
            if of_sc.is_empty() {
                continue;
            }
            // Group the variants by their row of cell texts.
            let mut groups: Vec<Group> = Vec::new();
            let present: Variants = of_sc.iter().map(|o| (o.case.policy, o.case.wire)).collect();
            for v in &present {
                let cells: Vec<Option<&Outcome>> = pairs
                    .iter()
                    .map(|&(s, c)| {
                        of_sc.iter().copied().find(|o| {
                            o.case.server == s
                                && o.case.client == c
                                && (o.case.policy, o.case.wire) == *v
                        })
                    })
                    .collect();
                let texts: Vec<String> = cells
                    .iter()
                    .map(|o| o.map(cell_text).unwrap_or_default())
                    .collect();
                match groups.iter_mut().find(|g| g.0 == texts) {
                    Some(g) => {
                        g.1.insert(*v);
                    }
                    None => groups.push((texts, Variants::from([*v]), cells)),
                }
            }
            for (texts, set, cells) in groups {
                let label = variants_label(&set, &all);
                // A client-certificate row like the required one's (same variants, same
                // cells) is folded into it: the cells show bits, which the certificate does
                // not change; the matrix and --detail keep each row.
                if let Some((lead, merged)) = client_certificate_family(sc) {
                    let like = rows
                        .iter_mut()
                        .find(|r| r.scenario == lead && r.variants == label && r.texts == texts);
                    if let Some(row) = like {
                        row.label = if label.is_empty() {
                            merged.to_owned()
                        } else {
                            format!("{merged} {label}")
                        };
                        continue;
                    }
                }
                let text = if label.is_empty() {
                    sc.name().to_owned()
                } else {
                    format!("{sc} {label}")
                };
                rows.push(Row {
                    label: text,
                    cells,
                    scenario: sc,
                    variants: label,
                    texts,
                });
            }
        }
        let first = rows
            .iter()
            .map(|r| r.label.chars().count())
            .max()
            .unwrap_or(8)
            .max(8)
            + 2;
        let policies: BTreeSet<PolicyKind> = all.iter().map(|v| v.0).collect();
        let wires: BTreeSet<Wire> = all.iter().map(|v| v.1).collect();
        let _ = writeln!(
            grids,
            "\n{} (policies {}; transports {}; rows merged where they agree)",
            paint.wrap("1", &format!("TLS {}", tls.short())),
            policies
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", "),
            wires
                .iter()
                .map(|w| w.name())
                .collect::<Vec<_>>()
                .join(", "),
        );
        let mut head1 = pad("", first);
        let mut head2 = pad("scenario", first);
        for s in &servers {
            let n = pairs.iter().filter(|p| p.0 == *s).count();
            head1.push_str(&pad(&format!("│ server {s}"), 2 + n * COLUMN));
            head2.push_str("│ ");
            for (_, c) in pairs.iter().filter(|p| p.0 == *s) {
                head2.push_str(&pad(&format!("←{c}"), COLUMN));
            }
        }
        let _ = writeln!(grids, "{}", head1.trim_end());
        let _ = writeln!(grids, "{}", head2.trim_end());
        for row in &rows {
            let texts: Vec<String> = row
                .cells
                .iter()
                .map(|o| o.map(cell_text).unwrap_or_default())
                .collect();
            let usual = majority(&texts);
            let mut line = pad(&row.label, first);
            for (i, (&(s, c), o)) in pairs.iter().zip(&row.cells).enumerate() {
                if i == 0 || pairs[i - 1].0 != s {
                    line.push_str("│ ");
                }
                let Some(o) = o else {
                    line.push_str(&pad("", COLUMN));
                    continue;
                };
                let text = &texts[i];
                let own = pairs
                    .iter()
                    .position(|&p| p == (s, s))
                    .map(|j| texts[j].as_str());
                let odd = Some(text) != usual.as_ref();
                let unlike_own = own.is_some_and(|t| !t.is_empty() && t != text);
                let mut mark = String::new();
                if odd || unlike_own || o.error.is_some() {
                    let hit = CAUSES
                        .iter()
                        .enumerate()
                        .find(|(_, k)| k.in_cells && (k.shows)(o, outcomes));
                    match hit {
                        Some((k, _)) => {
                            cause_versions[k].insert(tls.short());
                            if !used.contains(&k) {
                                used.push(k);
                            }
                            let pos = used.iter().position(|&u| u == k).unwrap_or(0);
                            mark.push(letter(pos));
                        }
                        None if odd => {
                            mark.push('?');
                            unexplained.push(format!(
                                "TLS {} {}: {s}←{c} {text}, the row's usual {}",
                                tls.short(),
                                row.label,
                                usual.as_deref().unwrap_or("-")
                            ));
                        }
                        None => {}
                    }
                }
                let shown = format!("{text}{mark}");
                let padded = pad(&shown, COLUMN);
                let styled = if o.error.is_some() {
                    paint.wrap("31", &padded)
                } else if !mark.is_empty() {
                    paint.wrap("33", &padded)
                } else if o.resumed() {
                    paint.wrap("32", &padded)
                } else {
                    padded
                };
                line.push_str(&styled);
            }
            let _ = writeln!(grids, "{}", line.trim_end());
        }
    }
    // Causes seen in the cells, and those only in the detail, with where they show.
    for (k, cause) in CAUSES.iter().enumerate().filter(|(_, c)| !c.in_cells) {
        for o in outcomes.iter().filter(|o| (cause.shows)(o, outcomes)) {
            cause_versions[k].insert(o.case.tls.short());
        }
        if !cause.in_cells && !cause_versions[k].is_empty() && !used.contains(&k) {
            used.push(k);
        }
    }
    let resumed = outcomes.iter().filter(|o| o.resumed()).count();
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let _ = writeln!(
        out,
        "{} connections: {resumed} resumed, {} full, {failed} failed. Cells: R resumed / F full \
         handshake, then server/client bits;",
        outcomes.len(),
        outcomes.len() - resumed - failed
    );
    out.push_str(
        "✗ failed. A letter marks a cell unlike the rest of its row or unlike its server's own \
         pair (S←S).\n",
    );
    out.push_str(&grids);
    if !used.is_empty() || !unexplained.is_empty() {
        let _ = writeln!(
            out,
            "\nWhy they differ (explained in docs/differences.md, section in brackets):"
        );
    }
    for (pos, &k) in used.iter().enumerate() {
        let cause = &CAUSES[k];
        let versions: Vec<String> = cause_versions[k].iter().cloned().collect();
        let _ = writeln!(
            out,
            "  {}  TLS {}: {} [{}]",
            paint.wrap("33", &letter(pos).to_string()),
            versions.join(", "),
            cause.reason,
            cause.section
        );
    }
    for u in &unexplained {
        let _ = writeln!(
            out,
            "  {}  not explained in docs/differences.md: {u}",
            paint.wrap("31", "?")
        );
    }
    out
}

/// The letter for the `pos`-th cause listed (`a`, `b`, …).
fn letter(pos: usize) -> char {
    char::from(b'a' + u8::try_from(pos % 26).unwrap_or(0))
}

/// The most common non-empty text of a row (the first one among equals).
fn majority(texts: &[String]) -> Option<String> {
    let mut best: Option<(&String, usize)> = None;
    for t in texts.iter().filter(|t| !t.is_empty()) {
        let n = texts.iter().filter(|u| *u == t).count();
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((t, n));
        }
    }
    best.map(|(t, _)| t.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_only_what_splits() {
        let all: Variants = [
            (PolicyKind::Exim, Wire::TlsOnConnect),
            (PolicyKind::Exim, Wire::Starttls),
            (PolicyKind::Hardened, Wire::TlsOnConnect),
            (PolicyKind::Hardened, Wire::Starttls),
        ]
        .into();
        assert_eq!(variants_label(&all, &all), "");
        let exim: Variants = [
            (PolicyKind::Exim, Wire::TlsOnConnect),
            (PolicyKind::Exim, Wire::Starttls),
        ]
        .into();
        assert_eq!(variants_label(&exim, &all), "exim");
        let starttls: Variants = [
            (PolicyKind::Exim, Wire::Starttls),
            (PolicyKind::Hardened, Wire::Starttls),
        ]
        .into();
        assert_eq!(variants_label(&starttls, &all), "starttls");
        let odd: Variants = [
            (PolicyKind::Exim, Wire::Starttls),
            (PolicyKind::Hardened, Wire::TlsOnConnect),
        ]
        .into();
        assert_eq!(
            variants_label(&odd, &all),
            "exim/starttls,hardened/tls-on-connect"
        );
    }

    #[test]
    fn majority_takes_the_most_common() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(majority(&t(&["a", "b", "b", ""])).as_deref(), Some("b"));
        assert_eq!(majority(&t(&["a", "b"])).as_deref(), Some("a"));
        assert_eq!(majority(&t(&["", ""])), None);
    }

    #[test]
    fn every_reason_line_fits_the_terminal() {
        for cause in CAUSES {
            // "  a  TLS 1.2, 1.3: " + reason + " [section]"
            let n = 19 + cause.reason.chars().count() + 3 + cause.section.len();
            assert!(n <= MAX_WIDTH, "{n}: {}", cause.reason);
            // The grid: the widest label, then 3 servers of 3 clients.
            let n = "lbserver_change starttls  ".len() + 3 * (2 + 3 * COLUMN);
            assert!(n <= MAX_WIDTH, "{n}: {}", cause.reason);
        }
    }
}
