//! `tlsresume scan`: an audit of a server's session resumption (and, with `--starttls smtp`,
//! its early pipelining), each check with a verdict, the evidence, why not, and what it means
//! for an MTA; a summary that fits a screen, or `--json`.
//!
//! The wire-level checks (tickets per handshake, lifetime hint, key name, a ticket offered
//! twice or on another address) come from an OpenSSL client reading its session APIs and the
//! clear handshake records ([`tls`]); what each client library does with that server comes
//! from each backend's client ([`clients`]); the SMTP checks from the plain-text dialogue
//! ([`smtp`]).

// Without OpenSSL the wire-level checks are stubs saying why; what they would use is idle.
#![cfg_attr(not(feature = "openssl"), allow(unused_imports, dead_code))]

pub mod clients;
pub mod report;
pub mod smtp;
pub mod tls;
pub mod watch;

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tlsresume::deadline::Deadline;
use tlsresume::smtp::session::{self as smtp_session, ClientSession, Goal};
use tlsresume::{Error, ProtocolVersion, ResumptionPolicy, TlsStream};
use tlsresume_compare::Pki;

use super::{log_line, StartProtocol};
use report::{Check, Verdict};

/// Arguments of `tlsresume scan`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Each address gets, per TLS version: the full handshake; tickets and \
session IDs (1.2) offered; the lifetime hint; TLS 1.3 tickets per handshake and max_early_data; \
resumption with a ticket and with an ID; a new ticket on a resumed handshake; the same TLS 1.3 \
ticket accepted twice; what the OpenSSL, GnuTLS and rustls clients do on a third connection and \
what changes when they resume (Exim's X=, CV=, OCSP); the ticket key name. With several \
addresses: whether a ticket of one resumes on another (shared ticket keys). With --starttls \
smtp: the EHLO features, PIPECONNECT, early commands on a second connection, the EHLO response \
stable between connections.\n\n\
Every \"no\" says why. Exit status: 0 when every address answered, 1 when one did not, 2 on bad \
arguments.\n\n\
Examples:\n  tlsresume scan mx.example.net --starttls smtp\n  \
tlsresume scan 192.0.2.1:465 192.0.2.2:465 --sni mx.example.net --json"
)]
pub struct ScanArgs {
    /// The servers: HOST[:PORT] (port 465, or 25 with --starttls smtp, when not given).
    #[arg(value_name = "HOST[:PORT]", required = true, num_args = 1..)]
    pub targets: Vec<String>,
    /// Speak PROTOCOL in clear first and start TLS with STARTTLS (smtp).
    #[arg(long, value_name = "PROTOCOL", value_enum)]
    pub starttls: Option<StartProtocol>,
    /// Server name sent as SNI (default: the host when it is a name, else mx.tlsresume.test).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// PEM file of trust anchors for the clients' verification (CV=); default: the committed
    /// test CA. Verification never fails a scan's connection.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// TLS versions to scan, comma-separated: 1.2, 1.3 (default: both).
    #[arg(long, value_delimiter = ',', value_name = "VERSIONS")]
    pub tls: Vec<String>,
    /// The clients' resumption policy: exim (report as Exim does, known issues included) or
    /// hardened (each known issue fixed). Default here: exim, since this command is Exim's test
    /// bench; the library's default (ResumptionPolicy::default()) is hardened.
    #[arg(long, value_name = "POLICY", default_value = "exim")]
    pub policy: String,
    /// Name sent in EHLO.
    #[arg(long, value_name = "NAME", default_value = "scan.tlsresume.test")]
    pub ehlo: String,
    /// Seconds to wait for the server on each step before a connection fails; a connection as
    /// a whole ends after twice this plus --wait, however the server paces its bytes.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
    /// Milliseconds to wait after a TLS 1.3 handshake for the server's tickets when it sends
    /// nothing else (the OpenSSL reader of tickets waits at least three times the handshake's
    /// own time).
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub wait: u64,
    /// After the checks, watch each address for DURATION (90s, 15m, 2h) on the real clock: a
    /// full handshake every thirtieth of it (1 s to 5 min), noting the ticket key name and
    /// offering a ticket of each older key: when the key changes, and until when old tickets
    /// still resume.
    #[arg(long, value_name = "DURATION")]
    pub watch: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One address to scan and how to reach TLS on it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// As given on the command line.
    pub target: String,
    /// Its address.
    pub peer: SocketAddr,
    /// The name sent as SNI.
    pub server_name: String,
    /// STARTTLS (SMTP) before TLS.
    pub starttls: bool,
    /// The EHLO name.
    pub ehlo: String,
    /// Each step's timeout.
    pub timeout: Duration,
    /// The wait for TLS 1.3 tickets.
    pub wait: Duration,
}

impl Endpoint {
    /// A TCP connection ready for the TLS handshake, under the connection's deadline.
    pub fn tcp(&self) -> Result<Deadline<TcpStream>, String> {
        self.tcp_with_name().map(|(tcp, _)| tcp)
    }

    /// A TCP connection ready for the TLS handshake, and the host name of the server's EHLO
    /// reply (STARTTLS). The connection as a whole — SMTP before STARTTLS, the handshake, what
    /// follows it — ends at its deadline (twice the step timeout, plus the wait for tickets):
    /// the socket's read timeout restarts with every byte, so a server dribbling its bytes
    /// would hold the scan for ever without it.
    pub fn tcp_with_name(&self) -> Result<(Deadline<TcpStream>, Option<String>), String> {
        let tcp = TcpStream::connect_timeout(&self.peer, self.timeout)
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_read_timeout(Some(self.timeout));
        let _ = tcp.set_write_timeout(Some(self.timeout));
        let _ = tcp.set_nodelay(true);
        let mut tcp = Deadline::new(tcp, self.timeout * 2 + self.wait, "scan connection");
        if !self.starttls {
            return Ok((tcp, None));
        }
        let mut session = ClientSession::new(self.ehlo.as_str(), Goal::StartTls);
        let opened = smtp_session::open(&mut session, &mut tcp)
            .map_err(|e| format!("SMTP before STARTTLS: {e}"))?;
        Ok((tcp, opened.lb_name().map(str::to_owned)))
    }

    /// After a backend client's handshake: EHLO and QUIT over TLS (STARTTLS), or wait for
    /// what the server sends (its TLS 1.3 tickets, a banner).
    pub fn after_handshake(&self, tls: &mut dyn TlsStream) {
        if self.starttls {
            let mut session = ClientSession::new(self.ehlo.as_str(), Goal::Quit { banner: false });
            let _ = smtp_session::open(&mut session, tls);
            return;
        }
        if tls.info().protocol != ProtocolVersion::Tls13 {
            return;
        }
        if let Some(tcp) = tls.transport_mut::<Deadline<TcpStream>>() {
            let _ = tcp
                .get_ref()
                .set_read_timeout(Some(self.wait.max(Duration::from_millis(1))));
        }
        clients::drain(tls);
    }
}

/// The versions asked with `--tls`.
fn versions(tls: &[String]) -> Result<Vec<ProtocolVersion>, Error> {
    if tls.is_empty() {
        return Ok(vec![ProtocolVersion::Tls13, ProtocolVersion::Tls12]);
    }
    tls.iter()
        .map(|v| tlsresume_compare::parse_version(v))
        .collect()
}

/// One version's scan of one address.
#[derive(Debug)]
struct VersionScan {
    version: ProtocolVersion,
    observed: tls::Observed,
    checks: Vec<Check>,
}

/// One address's scan.
#[derive(Debug)]
struct TargetScan {
    endpoint: Endpoint,
    versions: Vec<VersionScan>,
    smtp: Vec<Check>,
    /// With `--watch`: the version watched and its checks.
    watch: Option<(ProtocolVersion, Vec<Check>)>,
}

impl TargetScan {
    /// Whether the address answered at all.
    fn reached(&self) -> bool {
        self.versions.iter().any(|v| v.observed.full.is_ok())
    }

    /// The checks that say "no" and matter to an MTA, as `TLS 1.3: label`.
    fn attention(&self) -> Vec<String> {
        let versions = self.versions.iter().flat_map(|v| {
            v.checks
                .iter()
                .map(move |c| (format!("TLS {}", v.version.short()), c))
        });
        let smtp = self.smtp.iter().map(|c| ("SMTP".to_owned(), c));
        versions
            .chain(smtp)
            .filter(|(_, c)| c.verdict == Verdict::No && c.mta.is_some())
            .map(|(what, c)| format!("{what}: no {}", c.label))
            .collect()
    }

    /// `TLS 1.3: tickets 2 (7200 s), resumes yes, …` in one line.
    fn summary(&self) -> String {
        let mut parts = Vec::new();
        for v in &self.versions {
            let get = |id: &str| v.checks.iter().find(|c| c.id == id);
            let verdict = |id: &str| get(id).map_or("?", |c| c.verdict.name());
            let Some(hs) = get("handshake").filter(|c| c.verdict == Verdict::Yes) else {
                parts.push(format!("TLS {} not offered", v.version.short()));
                continue;
            };
            let _ = hs;
            let mut s = format!("TLS {}: tickets {}", v.version.short(), verdict("tickets"));
            if let Some(n) = get("tickets_per_handshake").and_then(|c| c.value.as_u64()) {
                s = format!("TLS {}: tickets {n}", v.version.short());
            }
            if let Some(h) = get("lifetime_hint").and_then(|c| c.value.as_u64()) {
                s.push_str(&format!(" ({h} s)"));
            }
            if v.version == ProtocolVersion::Tls12 {
                s.push_str(&format!(", IDs {}", verdict("session_ids")));
            }
            s.push_str(&format!(
                ", resumes {}, re-issue {}",
                verdict("resume_ticket"),
                verdict("reissue")
            ));
            if v.version == ProtocolVersion::Tls13 {
                s.push_str(&format!(", reuse {}", verdict("ticket_reuse")));
            }
            s.push_str(&format!(", 3rd {}", verdict("third_connection")));
            parts.push(s);
        }
        for c in &self.smtp {
            if c.id == "pipe_connect" || c.id == "early_commands" {
                parts.push(format!("{} {}", c.id.replace('_', "-"), c.verdict.name()));
            }
        }
        parts.join("; ")
    }
}

/// The target with a port (465, or 25 with STARTTLS, when none is given).
fn with_port(target: &str, starttls: bool) -> String {
    let port = if starttls { 25 } else { 465 };
    if target.parse::<SocketAddr>().is_ok() {
        return target.to_owned();
    }
    if target.starts_with('[') {
        return if target.ends_with(']') {
            format!("{target}:{port}")
        } else {
            target.to_owned()
        };
    }
    match target.matches(':').count() {
        0 => format!("{target}:{port}"),
        1 => target.to_owned(),
        _ => format!("[{target}]:{port}"), // a bare IPv6 address
    }
}

/// Runs `scan`; `Ok(true)` when every address answered.
pub fn run(args: &ScanArgs) -> Result<bool, Error> {
    let versions = versions(&args.tls)?;
    let policy = super::policy(&args.policy)?.policy();
    let watch = args
        .watch
        .as_deref()
        .map(watch::parse_duration)
        .transpose()?;
    let starttls = args.starttls == Some(StartProtocol::Smtp);
    let roots = match &args.ca {
        Some(path) => tlsresume::certificates_from_pem_file(path)?,
        None => Pki::committed()?.roots,
    };
    let mut endpoints = Vec::new();
    for target in &args.targets {
        let (peer, server_name) =
            super::probe::resolve(&with_port(target, starttls), args.sni.as_deref())?;
        endpoints.push(Endpoint {
            target: target.clone(),
            peer,
            server_name,
            starttls,
            ehlo: args.ehlo.clone(),
            timeout: Duration::from_secs(args.timeout.max(1)),
            wait: Duration::from_millis(args.wait),
        });
    }
    let mut scans: Vec<TargetScan> = endpoints
        .iter()
        .map(|e| scan_one(e, &roots, &policy, &versions))
        .collect();
    if let Some(duration) = watch {
        for scan in &mut scans {
            // The first version that gave tickets (TLS 1.3 first), else the first scanned.
            let version = scan
                .versions
                .iter()
                .find(|v| v.observed.has_tickets())
                .or(scan.versions.first())
                .map(|v| v.version);
            if let Some(version) = version {
                let checks =
                    watch::watch(&scan.endpoint, version, duration, watch::interval(duration));
                scan.watch = Some((version, checks));
            }
        }
    }
    let fleet = fleet(&scans, &versions);
    if args.json {
        log_line(&json_report(&scans, &fleet).to_string());
    } else {
        for line in text_report(&args.policy, &scans, &fleet, starttls) {
            log_line(&line);
        }
    }
    Ok(scans.iter().all(TargetScan::reached))
}

/// Every check of one address.
fn scan_one(
    endpoint: &Endpoint,
    roots: &[Vec<u8>],
    policy: &ResumptionPolicy,
    versions: &[ProtocolVersion],
) -> TargetScan {
    let smtp = if endpoint.starttls {
        smtp::checks(endpoint)
    } else {
        Vec::new()
    };
    let versions = versions
        .iter()
        .map(|&version| {
            let observed = tls::observe(endpoint, version);
            let mut checks = tls::checks(version, &observed);
            if observed.full.is_ok() {
                let runs = clients::run(endpoint, roots, policy, version);
                checks.push(clients::third_connection(&runs, version));
                checks.push(clients::on_resumption(&runs));
            }
            VersionScan {
                version,
                observed,
                checks,
            }
        })
        .collect();
    TargetScan {
        endpoint: endpoint.clone(),
        versions,
        smtp,
        watch: None,
    }
}

/// Per version, whether a ticket of each address resumes on each other (shared ticket keys).
fn fleet(scans: &[TargetScan], versions: &[ProtocolVersion]) -> Vec<(ProtocolVersion, Check)> {
    if scans.len() < 2 {
        return Vec::new();
    }
    const LABEL: &str = "a ticket of one address resumes on the others (shared ticket keys)";
    versions
        .iter()
        .enumerate()
        .map(|(vi, &version)| {
            let mut pairs = Vec::new();
            let mut refused = Vec::new();
            let mut unknown = Vec::new();
            for (i, from) in scans.iter().enumerate() {
                for (j, to) in scans.iter().enumerate() {
                    if i == j {
                        continue;
                    }
                    let name = |s: &TargetScan| s.endpoint.peer.to_string();
                    match tls::cross(&from.versions[vi].observed, &to.endpoint, version) {
                        Ok(resumed) => {
                            pairs.push(
                                json!({"from": name(from), "to": name(to), "resumed": resumed}),
                            );
                            if !resumed {
                                refused.push(format!("{} -> {}", name(from), name(to)));
                            }
                        }
                        Err(e) => {
                            unknown.push(format!("{} -> {} not tried: {e}", name(from), name(to)))
                        }
                    }
                }
            }
            let check = if pairs.is_empty() {
                Check::unknown("shared_keys", LABEL, unknown.join("; "))
            } else {
                let n = pairs.len();
                let c = Check::new(
                    "shared_keys",
                    LABEL,
                    Verdict::of(refused.is_empty() && unknown.is_empty()),
                    json!({"shared": refused.is_empty() && unknown.is_empty(), "pairs": pairs}),
                    format!("{} of {n} address pairs resumed", n - refused.len()),
                );
                if refused.is_empty() && unknown.is_empty() {
                    c
                } else {
                    let mut why = Vec::new();
                    if !refused.is_empty() {
                        why.push(format!(
                            "refused {}: ticket keys not shared",
                            refused.join(", ")
                        ));
                    }
                    why.extend(unknown);
                    c.because(why.join("; ")).meaning(
                        "a client sent to another address of this name does a full handshake",
                    )
                }
            };
            (version, check)
        })
        .collect()
}

fn json_report(scans: &[TargetScan], fleet: &[(ProtocolVersion, Check)]) -> serde_json::Value {
    let targets: Vec<_> = scans
        .iter()
        .map(|s| {
            let mut versions = serde_json::Map::new();
            for v in &s.versions {
                versions.insert(
                    v.version.short(),
                    json!({"checks": report::checks_json(&v.checks)}),
                );
            }
            json!({
                "target": s.endpoint.target,
                "address": s.endpoint.peer.ip().to_string(),
                "port": s.endpoint.peer.port(),
                "sni": s.endpoint.server_name,
                "transport": if s.endpoint.starttls { "starttls" } else { "tls-on-connect" },
                "reached": s.reached(),
                "summary": s.summary(),
                "attention": s.attention(),
                "versions": versions,
                "smtp": s.endpoint.starttls.then(|| json!({"checks": report::checks_json(&s.smtp)})),
                "watch": s.watch.as_ref().map(|(v, checks)| {
                    json!({"tls": v.short(), "checks": report::checks_json(checks)})
                }),
            })
        })
        .collect();
    let mut fleet_json = serde_json::Map::new();
    for (version, check) in fleet {
        fleet_json.insert(
            version.short(),
            json!({"checks": report::checks_json(std::slice::from_ref(check))}),
        );
    }
    json!({"targets": targets, "fleet": fleet_json})
}

/// The most lines of the text report.
const MAX_LINES: usize = 100;

fn text_report(
    policy: &str,
    scans: &[TargetScan],
    fleet: &[(ProtocolVersion, Check)],
    starttls: bool,
) -> Vec<String> {
    let full = render(policy, scans, fleet, starttls, false);
    if full.len() <= MAX_LINES {
        return full;
    }
    let mut compact = render(policy, scans, fleet, starttls, true);
    if compact.len() > MAX_LINES {
        let more = compact.len() - (MAX_LINES - 1);
        compact.truncate(MAX_LINES - 1);
        compact.push(format!("({more} more lines: see --json)"));
    }
    compact
}

/// The text; `compact`: after the first address, only the checks that are not "yes".
fn render(
    policy: &str,
    scans: &[TargetScan],
    fleet: &[(ProtocolVersion, Check)],
    starttls: bool,
    compact: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let backends: Vec<&str> = tlsresume::backends::available()
        .iter()
        .map(|k| k.name())
        .collect();
    out.push(format!(
        "tlsresume scan: {} address{}, {}; tickets read with OpenSSL; clients: {} ({} policy)",
        scans.len(),
        if scans.len() == 1 { "" } else { "es" },
        if starttls {
            "STARTTLS (SMTP)"
        } else {
            "TLS on connect"
        },
        backends.join(", "),
        policy
    ));
    for (i, s) in scans.iter().enumerate() {
        let e = &s.endpoint;
        out.push(format!(
            "== {} [{}]:{}",
            e.server_name,
            e.peer.ip(),
            e.peer.port()
        ));
        report::wrap("summary: ", &s.summary(), &mut out);
        let attention = s.attention();
        if !attention.is_empty() {
            report::wrap("attention: ", &attention.join("; "), &mut out);
        }
        let brief = compact && i > 0;
        for c in &s.smtp {
            if !brief || c.verdict != Verdict::Yes {
                c.text(&mut out);
            }
        }
        for v in &s.versions {
            out.push(format!("TLS {}", v.version.short()));
            for c in &v.checks {
                if !brief || matches!(c.verdict, Verdict::No | Verdict::Unknown) {
                    c.text(&mut out);
                }
            }
        }
        if let Some((version, checks)) = &s.watch {
            out.push(format!("watch (TLS {})", version.short()));
            for c in checks {
                c.text(&mut out);
            }
        }
    }
    if !fleet.is_empty() {
        out.push("== across the addresses".to_owned());
        for (version, c) in fleet {
            out.push(format!("TLS {}", version.short()));
            c.text(&mut out);
        }
    }
    out
}
