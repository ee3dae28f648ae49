//! `tlsresume probe`: connects to a server several times sharing one session cache, prints one
//! Exim-style line per connection and a summary of what resumed and why not.

use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use tlsresume::{
    BackendKind, ClientContext, ClientOffer, ClientParams, ClientSettings, Error, MemoryStore,
    NoOffer, OcspMode, Resumption, SessionInfo, VerifyMode,
};
use tlsresume_compare::Pki;

use super::smtp::{client_session, client_starttls};
use super::{log_line, StartProtocol, Wire};

/// The server name sent when the target is an IP address and `--sni` is not given: the name
/// the committed test certificate is made for.
pub const DEFAULT_SNI: &str = "mx.tlsresume.test";

/// Whether the probe asks for an OCSP staple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OcspArg {
    /// No status request.
    Off,
    /// Ask for a staple; report what comes.
    Request,
    /// Ask for a staple and fail the connection unless it verifies (Exim's
    /// hosts_require_ocsp).
    Require,
}

impl OcspArg {
    fn mode(self) -> OcspMode {
        match self {
            Self::Off => OcspMode::Off,
            Self::Request => OcspMode::Request,
            Self::Require => OcspMode::Require,
        }
    }
}

/// Arguments of `tlsresume probe`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Each connection prints one line in the style of Exim's delivery log, with the \
client's resumption bits ($tls_out_resumption):\n\n  \
H=mx.tlsresume.test [127.0.0.1]:8465 X=TLS1.3:TLS_AES_256_GCM_SHA384:256* CV=yes resumption=0x17 (session resumed)\n\n\
then a summary: how many connections resumed, the ticket lifetime hint the server gave, and for \
each connection that did not resume, why (no stored session, the server sent no ticket, the \
stored session expired, offered but refused by the server, ...).\n\n\
Exit status: 0 when every connection succeeded (resumed or not), 1 when one failed, 2 on bad \
arguments.\n\n\
Example: tlsresume probe 127.0.0.1:8465 --backend gnutls --count 3"
)]
pub struct ProbeArgs {
    /// The server: HOST:PORT, e.g. 127.0.0.1:8465, mx.example.net:465, [::1]:25.
    #[arg(value_name = "HOST:PORT")]
    pub target: String,
    /// TLS library: openssl, gnutls or rustls (default: the first compiled in, normally
    /// openssl).
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<String>,
    /// Speak PROTOCOL in clear first and start TLS with STARTTLS (smtp: banner, EHLO,
    /// STARTTLS). Default: TLS from the first byte, SMTP banner over TLS.
    #[arg(long, value_name = "PROTOCOL", value_enum)]
    pub starttls: Option<StartProtocol>,
    /// How many connections to make, one after another, sharing the session cache.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Server name sent as SNI and checked against the certificate. Default: the host part of
    /// HOST:PORT when it is a name; when it is an IP address, mx.tlsresume.test (the name of
    /// the test certificate `tlsresume serve` uses by default) - give --sni for real servers
    /// reached by address.
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// PEM file of trust anchors (default: the committed test CA, tests/pki/ca.pem).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Verify the certificate but do not fail when it does not verify (Exim's
    /// tls_try_verify_hosts): CV=no is reported and sessions are stored with verify-override.
    #[arg(long)]
    pub insecure: bool,
    /// Keep the session cache in FILE (created with mode 0600, rewritten atomically), so
    /// sessions are also shared between runs. OpenSSL and GnuTLS sessions survive the process;
    /// rustls keeps its sessions in memory, so with rustls only connections of one run resume.
    /// A corrupt file is an error, never overwritten.
    #[arg(long, value_name = "FILE")]
    pub cache: Option<PathBuf>,
    /// Resumption policy: exim (Exim's known issues reproduced) or hardened (fixed).
    #[arg(long, value_name = "POLICY", default_value = "exim")]
    pub policy: String,
    /// Allow only this TLS version: 1.2 or 1.3 (default: both).
    #[arg(long, value_name = "VERSION")]
    pub tls: Option<String>,
    /// OCSP stapling: off, request (report the status, OCSP= in each line) or require.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = OcspArg::Off)]
    pub ocsp: OcspArg,
    /// Name sent in EHLO.
    #[arg(long, value_name = "NAME", default_value = "probe.tlsresume.test")]
    pub ehlo: String,
    /// Seconds to wait for the server on each step before the connection fails.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
}

/// The server's address and the name to send, from HOST:PORT and --sni.
fn resolve(target: &str, sni: Option<&str>) -> Result<(SocketAddr, String), Error> {
    let bad = || Error::Config(format!("'{target}' is not HOST:PORT"));
    let (peer, host_is_ip, host) = match target.parse::<SocketAddr>() {
        Ok(addr) => (addr, true, addr.ip().to_string()),
        Err(_) => {
            let (host, port) = target.rsplit_once(':').ok_or_else(bad)?;
            let port: u16 = port.parse().map_err(|_| bad())?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(bad());
            }
            let addr = (host, port)
                .to_socket_addrs()
                .map_err(|e| Error::Config(format!("cannot resolve '{host}': {e}")))?
                .next()
                .ok_or_else(|| Error::Config(format!("'{host}' has no address")))?;
            (addr, host.parse::<IpAddr>().is_ok(), host.to_owned())
        }
    };
    let name = match sni {
        Some(name) => name.to_owned(),
        None if host_is_ip => DEFAULT_SNI.to_owned(),
        None => host,
    };
    Ok((peer, name))
}

/// One connection's result.
#[derive(Debug)]
struct Outcome {
    /// What the client reported, or why the connection failed.
    result: Result<SessionInfo, String>,
    /// What the client had to offer before the handshake (known once the plain-text phase is
    /// over; `None` when the connection failed before).
    offer: Option<ClientOffer>,
}

/// Runs `probe`; `Ok(true)` when every connection succeeded.
pub fn run(args: &ProbeArgs) -> Result<bool, Error> {
    let kind = super::backend(args.backend.as_deref())?;
    let (peer, server_name) = resolve(&args.target, args.sni.as_deref())?;
    let roots = match &args.ca {
        Some(path) => tlsresume::certificates_from_pem_file(path)?,
        None => Pki::committed()?.roots,
    };
    let mut settings = ClientSettings::new(roots);
    settings.verify = if args.insecure {
        VerifyMode::Try
    } else {
        VerifyMode::Require
    };
    settings.ocsp = args.ocsp.mode();
    settings.resumption = super::policy(&args.policy)?.policy();
    settings.versions = super::versions(args.tls.as_deref())?;
    settings.store = match &args.cache {
        Some(path) => open_cache(path)?,
        None => Arc::new(MemoryStore::new(64)),
    };
    let client = tlsresume::backends::client(kind, settings.clone())?;
    let wire = Wire::from_option(args.starttls);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let h = format!("H={server_name} [{}]:{}", peer.ip(), peer.port());
    let mut outcomes: Vec<Outcome> = Vec::new();
    for _ in 0..args.count {
        let outcome = connect(
            client.as_ref(),
            &settings,
            kind,
            peer,
            &server_name,
            wire,
            &args.ehlo,
            timeout,
        );
        let line = match &outcome.result {
            Ok(info) => {
                let mut line = format!(
                    "{h} X={} CV={} resumption={}",
                    info.exim_x(),
                    info.verification.exim_cv(),
                    info.resumption
                );
                if settings.ocsp != OcspMode::Off {
                    line.push_str(&format!(" OCSP={}", info.ocsp));
                    if let Some(why) = &info.ocsp_detail {
                        line.push_str(&format!(": {why}"));
                    }
                }
                line
            }
            Err(e) => format!("{h} failed: {e}"),
        };
        log_line(&line);
        outcomes.push(outcome);
    }
    summary(kind, wire, &outcomes);
    Ok(outcomes.iter().all(|o| o.result.is_ok()))
}

/// One connection: TCP, the plain-text phase, the handshake, EHLO and QUIT.
#[allow(clippy::too_many_arguments)]
fn connect(
    client: &dyn ClientContext,
    settings: &ClientSettings,
    kind: BackendKind,
    peer: SocketAddr,
    server_name: &str,
    wire: Wire,
    ehlo: &str,
    timeout: Duration,
) -> Outcome {
    let mut outcome = Outcome {
        result: Err(String::new()),
        offer: None,
    };
    let mut tcp = match TcpStream::connect_timeout(&peer, timeout) {
        Ok(tcp) => tcp,
        Err(e) => {
            outcome.result = Err(format!("connect: {e}"));
            return outcome;
        }
    };
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    let _ = tcp.set_nodelay(true);
    let mut lb_name = None;
    if wire == Wire::Starttls {
        match client_starttls(&mut tcp, ehlo) {
            Ok(name) => lb_name = name,
            Err(e) => {
                outcome.result = Err(format!("SMTP before STARTTLS: {e}"));
                return outcome;
            }
        }
    }
    let params = ClientParams {
        peer,
        local: None,
        server_name: server_name.to_owned(),
        lb_name,
        dane: None,
    };
    // The decision the backend is about to make, for the summary's "why not resumed" (the
    // same store and rules; GnuTLS leaves expiry to the policy).
    outcome.offer = Some(settings.offer(kind, &params, kind != BackendKind::Gnutls));
    let mut tls = match client.connect(Box::new(tcp), &params) {
        Ok(tls) => tls,
        Err(e) => {
            outcome.result = Err(format!("TLS error: {e}"));
            return outcome;
        }
    };
    outcome.result = match client_session(tls.as_mut(), wire == Wire::TlsOnConnect, ehlo) {
        Ok(()) => Ok(tls.info()),
        Err(e) => Err(format!("SMTP over TLS: {e}")),
    };
    let _ = tls.shutdown();
    outcome
}

/// Why connection `index` (0-based) did not resume.
fn why_not(kind: BackendKind, outcomes: &[Outcome], index: usize, info: &SessionInfo) -> String {
    let Some(offer) = outcomes.get(index).and_then(|o| o.offer.as_ref()) else {
        return "unknown".into();
    };
    if let Some(entry) = &offer.entry {
        if !info.resumption.contains(Resumption::CLIENT_SUGGESTED) {
            let mut why = format!("stored session could not be loaded by the {kind} library");
            if kind == BackendKind::Rustls {
                why.push_str(" (rustls sessions live in memory and do not outlive the process)");
            }
            return why;
        }
        let expired = if entry.is_expired(tlsresume::UnixTime::now()) {
            "expired session offered"
        } else {
            "session offered"
        };
        return format!("{expired}, server refused it (full handshake)");
    }
    match offer.no_offer {
        Some(NoOffer::Missing) => {
            // The newest earlier connection that completed: did the server give a ticket?
            let earlier = outcomes[..index]
                .iter()
                .enumerate()
                .rev()
                .find_map(|(i, o)| o.result.as_ref().ok().map(|info| (i, info)));
            match earlier {
                Some((i, prev)) if !prev.resumption.contains(Resumption::SERVER_TICKET) => {
                    format!(
                        "no stored session: the server sent no ticket on connection {}",
                        i + 1
                    )
                }
                _ => NoOffer::Missing.describe().into(),
            }
        }
        Some(reason) => reason.describe().into(),
        None => "unknown".into(),
    }
}

/// Prints the summary lines.
fn summary(kind: BackendKind, wire: Wire, outcomes: &[Outcome]) {
    let resumed = outcomes
        .iter()
        .filter(|o| o.result.as_ref().is_ok_and(|i| i.resumed))
        .count();
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    let hint = outcomes
        .iter()
        .rev()
        .find_map(|o| o.result.as_ref().ok().and_then(|i| i.ticket_lifetime));
    // Without a new ticket (a TLS 1.2 resumption often gets none), the hint the stored
    // session was kept under.
    let stored = outcomes
        .iter()
        .rev()
        .find_map(|o| o.offer.as_ref().and_then(|of| of.entry.as_ref()))
        .map(|e| e.lifetime_hint);
    let hint = match (hint, stored) {
        (Some(d), _) => format!("{}s", d.as_secs()),
        (None, Some(d)) => format!("{}s (of the stored session; no new ticket)", d.as_secs()),
        (None, None) => "none received".into(),
    };
    let n = outcomes.len();
    log_line(&format!(
        "summary: {n} connection{} ({kind} client, {}): {resumed} resumed, {} full, {failed} failed; ticket lifetime hint: {hint}",
        if n == 1 { "" } else { "s" },
        wire.name(),
        n - resumed - failed
    ));
    for (i, outcome) in outcomes.iter().enumerate() {
        match &outcome.result {
            Ok(info) if !info.resumed => log_line(&format!(
                "  connection {} not resumed: {}",
                i + 1,
                why_not(kind, outcomes, i, info)
            )),
            Ok(_) => {}
            Err(e) => log_line(&format!("  connection {} failed: {e}", i + 1)),
        }
    }
}

/// The on-disk session cache: shared safely by concurrent probes (SQLite, WAL mode).
#[cfg(feature = "stores")]
fn open_cache(
    path: &std::path::Path,
) -> Result<Arc<dyn tlsresume::SessionStore>, tlsresume::Error> {
    Ok(Arc::new(tlsresume::stores::DiskStore::open(path)?))
}

/// Without the `stores` feature there is no on-disk cache.
#[cfg(not(feature = "stores"))]
fn open_cache(
    path: &std::path::Path,
) -> Result<Arc<dyn tlsresume::SessionStore>, tlsresume::Error> {
    Err(tlsresume::Error::Config(format!(
        "--cache {}: this build has no on-disk store (enable the cargo feature \"stores\")",
        path.display()
    )))
}
