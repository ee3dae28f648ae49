//! The scenario engine: runs Exim's resumption scenarios between a server backend and a client
//! backend over real loopback sockets, on a virtual clock, and records what each end reports.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tlsresume_core::model::ticket_policy::KeySchedule;
use tlsresume_core::{
    BackendKind, ClientContext, ClientParams, ClientSettings, Error, HostList, ManualClock,
    MemoryStore, OcspMode, ProtocolVersion, ServerContext, ServerParams, ServerSettings,
    SessionInfo, TlsStream, TlsaRecord, UnixTime, VerifyMode, Versions,
};

use crate::scenario::{Case, PolicyKind, Scenario, Wire, MIN};
use tlsresume::backends;
use tlsresume::tokio::{TlsAcceptor, TlsConnector};
use tlsresume_smtp::server::{self, Stop};
use tlsresume_smtp::session::{self, ClientSession, Goal};
use tlsresume_smtp::tokio as smtp_tokio;
use tlsresume_smtp::{ServerConfig, ServerSession};
use tokio::io::AsyncWriteExt;

use crate::pki::tlsa_record;
pub use crate::pki::Pki;

/// What one scenario connection produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The pair, version, wire and policy.
    pub case: Case,
    /// The scenario.
    pub scenario: Scenario,
    /// Virtual time since the sequence started.
    pub at: Duration,
    /// The server's ticket-key flavour.
    pub flavour: KeySchedule,
    /// What the client reported, if its handshake completed.
    pub client: Option<SessionInfo>,
    /// What the server reported, if its handshake completed.
    pub server: Option<SessionInfo>,
    /// Why the connection failed, if it did.
    pub error: Option<String>,
}

impl Outcome {
    /// Whether both ends report a resumed session.
    pub fn resumed(&self) -> bool {
        self.client.as_ref().is_some_and(|c| c.resumed)
            && self.server.as_ref().is_some_and(|s| s.resumed)
    }
}

/// Which cases and scenarios to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Server backends.
    pub servers: Vec<BackendKind>,
    /// Client backends.
    pub clients: Vec<BackendKind>,
    /// TLS versions.
    pub versions: Vec<ProtocolVersion>,
    /// How TLS starts.
    pub wires: Vec<Wire>,
    /// Policies.
    pub policies: Vec<PolicyKind>,
    /// Scenarios.
    pub scenarios: Vec<Scenario>,
    /// Blocking API only, or every case also through the async one.
    pub io: Io,
}

/// Which API the two ends use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Io {
    /// Both ends on the blocking API.
    #[default]
    Blocking,
    /// Every case three times: both ends on the async (tokio) API, then an async server with a
    /// blocking client, then a blocking server with an async client. The async/async run is
    /// reported; a cell where the three disagree is reported failed, saying how.
    Async,
}

/// The API of one end of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Blocking,
    Async,
}

impl Plan {
    /// Everything: every compiled-in pair, both versions, both wires, both policies, every
    /// scenario.
    pub fn all() -> Self {
        Self {
            servers: backends::available(),
            clients: backends::available(),
            versions: vec![ProtocolVersion::Tls12, ProtocolVersion::Tls13],
            wires: Wire::ALL.to_vec(),
            policies: PolicyKind::ALL.to_vec(),
            scenarios: Scenario::ALL.to_vec(),
            io: Io::Blocking,
        }
    }

    /// The cases, in report order.
    pub fn cases(&self) -> Vec<Case> {
        let mut out = Vec::new();
        for &server in &self.servers {
            for &client in &self.clients {
                for &tls in &self.versions {
                    for &wire in &self.wires {
                        for &policy in &self.policies {
                            out.push(Case {
                                server,
                                client,
                                tls,
                                wire,
                                policy,
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

/// Runs a plan; `progress` is told (cases done, cases in all) after each case.
pub fn run(plan: &Plan, pki: &Pki, progress: &mut dyn FnMut(usize, usize)) -> Vec<Outcome> {
    let cases = plan.cases();
    let mut out = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        out.extend(match plan.io {
            Io::Blocking => run_case(*case, &plan.scenarios, pki),
            Io::Async => run_case_async(*case, &plan.scenarios, pki),
        });
        progress(i + 1, cases.len());
    }
    out
}

/// One case through the async API (both ends, and each end alone against a blocking peer); the
/// async/async outcomes, with an error on every cell where the mixed runs disagree.
pub fn run_case_async(case: Case, wanted: &[Scenario], pki: &Pki) -> Vec<Outcome> {
    let both = run_case_with(case, wanted, pki, (End::Async, End::Async));
    let mixed = [
        ("async server, blocking client", (End::Async, End::Blocking)),
        ("blocking server, async client", (End::Blocking, End::Async)),
    ];
    let mut out = both;
    for (label, ends) in mixed {
        let other = run_case_with(case, wanted, pki, ends);
        for (mine, theirs) in out.iter_mut().zip(&other) {
            if let Some(diff) = difference(mine, theirs) {
                mine.error.get_or_insert_with(|| format!("{label}: {diff}"));
            }
        }
        if other.len() != out.len() {
            for o in &mut out {
                o.error
                    .get_or_insert_with(|| format!("{label}: another number of outcomes"));
            }
        }
    }
    out
}

/// What differs between two runs of one cell, in the values the reports show.
fn difference(a: &Outcome, b: &Outcome) -> Option<String> {
    let view = |o: &Outcome| {
        let side = |i: Option<&SessionInfo>| {
            i.map(|i| {
                (
                    i.resumption.bits(),
                    i.resumed,
                    i.cipher.exim.clone(),
                    i.verification,
                    i.verified_by.clone(),
                    i.ocsp,
                )
            })
        };
        (
            o.scenario,
            side(o.client.as_ref()),
            side(o.server.as_ref()),
            o.error.is_some(),
        )
    };
    (view(a) != view(b)).then(|| {
        format!(
            "{}: client {:?} server {:?} vs client {:?} server {:?}",
            a.scenario,
            a.client.as_ref().map(|c| c.resumption),
            a.server.as_ref().map(|s| s.resumption),
            b.client.as_ref().map(|c| c.resumption),
            b.server.as_ref().map(|s| s.resumption),
        )
    })
}

/// The virtual start of every sequence: one hour into a GnuTLS-flavour (6 h) key period that
/// starts after now, so a sequence's first five hours stay in one period and the period
/// boundary falls at +5 h. In the future, so certificates made today are valid.
fn sequence_start() -> UnixTime {
    let period = 6 * 3600;
    let now = UnixTime::now().as_secs();
    UnixTime::from_secs((now / period + 1) * period + 3600)
}

const PERIOD_BOUNDARY: Duration = Duration::from_secs(5 * 3600);

/// Runs the wanted scenarios of one case, each sequence on a fresh server, client, store and
/// clock.
pub fn run_case(case: Case, wanted: &[Scenario], pki: &Pki) -> Vec<Outcome> {
    run_case_with(case, wanted, pki, (End::Blocking, End::Blocking))
}

fn run_case_with(case: Case, wanted: &[Scenario], pki: &Pki, ends: (End, End)) -> Vec<Outcome> {
    // GnuTLS reads one clock for the whole process and refuses a second clock while objects
    // with another are alive: cases with a GnuTLS end run one at a time, whichever thread runs
    // them.
    static GNUTLS_CLOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _clock = (case.server == BackendKind::Gnutls || case.client == BackendKind::Gnutls)
        .then(|| GNUTLS_CLOCK.lock().unwrap_or_else(|p| p.into_inner()));
    let flavour = case.server.default_ticket_policy().schedule();
    let mut out = Vec::new();
    let sequences = sequences(case, flavour);
    for seq in sequences {
        let last = seq
            .steps
            .iter()
            .rposition(|s| s.report.is_some_and(|sc| wanted.contains(&sc)));
        let Some(last) = last else { continue };
        let rig = match Rig::new(case, pki, &seq) {
            Ok(rig) => rig,
            Err(e) => {
                for step in &seq.steps[..=last] {
                    if let Some(sc) = step.report.filter(|sc| wanted.contains(sc)) {
                        out.push(Outcome {
                            case,
                            scenario: sc,
                            at: step.at,
                            flavour,
                            client: None,
                            server: None,
                            error: Some(format!("setup: {e}")),
                        });
                    }
                }
                continue;
            }
        };
        for step in &seq.steps[..=last] {
            rig.clock.set(rig.start + step.at);
            let client = match (&rig.stranger, step.stranger) {
                (Some(stranger), true) => stranger,
                _ => &rig.client,
            };
            let (client_info, server_info, error) = rig.connect(client, &step.ehlo_name, ends);
            if let Some(sc) = step.report.filter(|sc| wanted.contains(sc)) {
                out.push(Outcome {
                    case,
                    scenario: sc,
                    at: step.at,
                    flavour,
                    client: client_info,
                    server: server_info,
                    error,
                });
            }
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    Plain,
    ClientExcludes,
    ServerExcludes,
    Untrusted,
    Ocsp,
    /// The server sends its chain (certificate, CA); the client's trust anchors do not cover
    /// it and it connects with a TLSA record of this kind.
    Dane(DaneRecord),
    /// The server requires a client certificate and the client has the CA's.
    ClientcertRequired,
    /// The server asks for one and the client has the CA's.
    ClientcertTried,
    /// The server asks for one and the client has none.
    ClientcertAbsent,
    /// The server requires one and the client has none.
    ClientcertRefused,
}

/// The TLSA record a DANE sequence's client is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DaneRecord {
    /// `3 1 1`: the server key's SHA-256.
    Ee,
    /// `2 0 1`: the CA certificate's SHA-256.
    Ta,
    /// `3 1 1` of another key.
    Other,
}

impl DaneRecord {
    /// The record for `pki`'s certificates.
    fn of(self, pki: &Pki) -> Result<TlsaRecord, Error> {
        let (usage, selector, cert) = match self {
            Self::Ee => (3, 1, pki.server.chain().first()),
            Self::Ta => (2, 0, pki.roots.first()),
            Self::Other => (3, 1, pki.untrusted.chain().first()),
        };
        let cert = cert.ok_or_else(|| Error::Config(format!("no certificate for {self:?}")))?;
        tlsa_record(usage, selector, 1, cert)
    }
}

struct Step {
    at: Duration,
    report: Option<Scenario>,
    ehlo_name: String,
    stranger: bool,
}

struct Sequence {
    setup: Setup,
    steps: Vec<Step>,
}

fn step(mins: u64, report: Option<Scenario>) -> Step {
    Step {
        at: MIN * u32::try_from(mins).unwrap_or(u32::MAX),
        report,
        ehlo_name: "mx1.tlsresume.test".into(),
        stranger: false,
    }
}

fn sequences(case: Case, flavour: KeySchedule) -> Vec<Sequence> {
    use Scenario::*;
    let mut seqs = vec![
        Sequence {
            setup: Setup::Plain,
            steps: vec![
                step(0, Some(Getticket)),
                step(10, Some(Resume)),
                step(61, Some(Renewal)),
                step(62, Some(Postrenewal)),
            ],
        },
        Sequence {
            setup: Setup::Plain,
            steps: vec![step(0, None), step(121, Some(Timeout))],
        },
        Sequence {
            setup: Setup::ClientExcludes,
            steps: vec![step(0, None), step(10, Some(Notreq))],
        },
        Sequence {
            setup: Setup::ServerExcludes,
            steps: vec![step(0, None), step(10, Some(ServerExcludes))],
        },
        Sequence {
            setup: Setup::Untrusted,
            steps: vec![
                step(0, Some(NoverifyGetticket)),
                step(10, Some(NoverifyResume)),
            ],
        },
        Sequence {
            setup: Setup::Ocsp,
            steps: vec![step(0, Some(OcspGetticket)), step(10, Some(OcspResume))],
        },
        Sequence {
            setup: Setup::ClientcertRequired,
            steps: vec![
                step(0, Some(ClientcertRequired)),
                step(10, Some(ClientcertRequiredResume)),
            ],
        },
        Sequence {
            setup: Setup::ClientcertTried,
            steps: vec![
                step(0, Some(ClientcertTried)),
                step(10, Some(ClientcertTriedResume)),
            ],
        },
        Sequence {
            setup: Setup::ClientcertAbsent,
            steps: vec![
                step(0, Some(ClientcertAbsent)),
                step(10, Some(ClientcertAbsentResume)),
            ],
        },
        Sequence {
            setup: Setup::ClientcertRefused,
            steps: vec![step(0, Some(ClientcertRefused))],
        },
    ];
    if case.wire == Wire::Starttls {
        let mut change = step(10, Some(LbserverChange));
        change.ehlo_name = "mx2.tlsresume.test".into();
        seqs.push(Sequence {
            setup: Setup::Plain,
            steps: vec![step(0, None), change],
        });
    }
    let boundary = PERIOD_BOUNDARY.as_secs() / 60;
    let rotation = match flavour {
        // A stranger makes the first key at 0; our ticket is sealed under it at 59 min; at
        // 2 h 1 min the ticket is 62 min old but its key expired at 2 h (second rotation).
        KeySchedule::Rolling => {
            let mut warm = step(0, None);
            warm.stranger = true;
            vec![warm, step(59, None), step(121, Some(Rotation))]
        }
        // A ticket sealed 30 min before the 6 h period boundary, presented 30 min after it.
        KeySchedule::Periodic => vec![
            step(boundary - 30, None),
            step(boundary + 30, Some(Rotation)),
        ],
    };
    seqs.push(Sequence {
        setup: Setup::Plain,
        steps: rotation,
    });
    for (record, full, resumed) in [
        (DaneRecord::Ee, DaneEeGetticket, DaneEeResume),
        (DaneRecord::Ta, DaneTaGetticket, DaneTaResume),
        (DaneRecord::Other, DaneNomatch, DaneNomatchResume),
    ] {
        seqs.push(Sequence {
            setup: Setup::Dane(record),
            steps: vec![step(0, Some(full)), step(10, Some(resumed))],
        });
    }
    seqs
}

/// A client's error in words that do not depend on timing: a server that refuses a client
/// without a certificate after a TLS 1.3 handshake is met on the client's next read or
/// write, whichever comes first, and the SMTP dialogue words each its own way; the refusal
/// (`<backend>: <server> asked for a client certificate, …`) is kept alone.
fn steady(error: &str) -> &str {
    let Some(at) = error.find("asked for a client certificate") else {
        return error;
    };
    // Back over "<server> " and "<backend>: " to the start of the refusal's words.
    let before = &error[..at];
    let backend_end = before.trim_end().rfind(": ").unwrap_or(0);
    let start = before[..backend_end].rfind(' ').map_or(0, |i| i + 1);
    &error[start..]
}

/// One sequence's server, clients, store and clock.
struct Rig {
    case: Case,
    clock: ManualClock,
    start: UnixTime,
    listener: TcpListener,
    server: Arc<dyn ServerContext>,
    client: Arc<dyn ClientContext>,
    /// A second client with its own cache, made only for sequences that use one.
    stranger: Option<Arc<dyn ClientContext>>,
    /// The TLSA records the client connects with (DANE sequences).
    dane: Option<Vec<TlsaRecord>>,
}

const IO_TIMEOUT: Duration = Duration::from_secs(20);

impl Rig {
    fn new(case: Case, pki: &Pki, seq: &Sequence) -> Result<Self, Error> {
        let start = sequence_start();
        let clock = ManualClock::new(start);
        let versions = Versions::only(case.tls);
        let mut ss = ServerSettings::new(match seq.setup {
            Setup::Untrusted => pki.untrusted.clone(),
            Setup::Dane(_) => pki.server_with_ca()?,
            _ => pki.server.clone(),
        });
        ss.clock = Arc::new(clock.clone());
        ss.versions = versions;
        ss.ticket_policy = Some(case.server.default_ticket_policy());
        ss.resumption = case.policy.policy();
        if seq.setup == Setup::ServerExcludes {
            ss.resumption = ss.resumption.with_server_hosts("!127.0.0.1".parse()?);
        }
        if seq.setup == Setup::Ocsp {
            ss.ocsp_response = Some(pki.ocsp.clone());
        }
        let loopback: HostList = "127.0.0.1".parse()?;
        match seq.setup {
            Setup::ClientcertRequired | Setup::ClientcertRefused => ss.verify_hosts = loopback,
            Setup::ClientcertTried | Setup::ClientcertAbsent => ss.try_verify_hosts = loopback,
            _ => {}
        }
        if ss.asks_client_certificates() {
            ss.client_roots = pki.roots.clone();
        }
        let dane = match seq.setup {
            Setup::Dane(record) => Some(vec![record.of(pki)?]),
            _ => None,
        };
        // Under DANE the trust anchors cover only the untrusted certificate: only DANE can
        // authenticate the server.
        let roots = match seq.setup {
            Setup::Dane(_) => pki.untrusted.chain().to_vec(),
            _ => pki.roots.clone(),
        };
        let mut cs = ClientSettings::new(roots);
        cs.clock = Arc::new(clock.clone());
        cs.versions = versions;
        cs.resumption = case.policy.policy();
        cs.store = Arc::new(MemoryStore::new(64));
        match seq.setup {
            Setup::ClientExcludes => {
                cs.resumption = cs.resumption.with_client_hosts(HostList::none());
            }
            Setup::Untrusted => cs.verify = VerifyMode::Try,
            Setup::Ocsp => cs.ocsp = OcspMode::Require,
            Setup::ClientcertRequired | Setup::ClientcertTried => {
                cs.identity = Some(pki.client.clone());
            }
            Setup::Plain
            | Setup::ServerExcludes
            | Setup::Dane(_)
            | Setup::ClientcertAbsent
            | Setup::ClientcertRefused => {}
        }
        let stranger = if seq.steps.iter().any(|s| s.stranger) {
            let mut settings = cs.clone();
            settings.store = Arc::new(MemoryStore::new(4));
            Some(backends::client(case.client, settings)?)
        } else {
            None
        };
        Ok(Self {
            case,
            clock,
            start,
            listener: TcpListener::bind("127.0.0.1:0")?,
            server: backends::server(case.server, ss)?,
            client: backends::client(case.client, cs)?,
            stranger,
            dane,
        })
    }

    /// One connection through the SMTP dialogue; (client info, server info, error).
    fn connect(
        &self,
        client: &Arc<dyn ClientContext>,
        ehlo_name: &str,
        (server_end, client_end): (End, End),
    ) -> (Option<SessionInfo>, Option<SessionInfo>, Option<String>) {
        let listener = match self.listener.try_clone() {
            Ok(l) => l,
            Err(e) => return (None, None, Some(format!("listener: {e}"))),
        };
        let server = self.server.clone();
        let wire = self.case.wire;
        let dane = self.dane.as_deref();
        let name = ehlo_name.to_owned();
        let server_side = thread::spawn(move || match server_end {
            End::Blocking => serve_one(&listener, server.as_ref(), wire, &name),
            End::Async => serve_one_async(&listener, server, wire, &name),
        });
        let peer = match self.listener.local_addr() {
            Ok(a) => a,
            Err(e) => return (None, None, Some(format!("listener: {e}"))),
        };
        let mut connected = false;
        let client_result = match client_end {
            End::Blocking => client_one(peer, client.as_ref(), wire, dane, &mut connected),
            End::Async => client_one_async(peer, client.clone(), wire, dane, &mut connected),
        };
        if !connected {
            // Unblock a server still waiting in accept for a client that never came.
            let _ = TcpStream::connect(peer);
        }
        let server_result = server_side
            .join()
            .unwrap_or_else(|_| Err("server thread panicked".into()));
        let error = match (&client_result, &server_result) {
            (Err(c), _) => Some(format!("client: {}", steady(c))),
            (_, Err(s)) => Some(format!("server: {s}")),
            _ => None,
        };
        (client_result.ok(), server_result.ok(), error)
    }
}

/// The server's session for one connection of `wire`, named `name` (the client's
/// load-balancer name).
fn server_session(wire: Wire, name: &str) -> ServerSession {
    ServerSession::new(
        ServerConfig::new(name)
            .starttls(wire == Wire::Starttls)
            .tls(wire == Wire::TlsOnConnect),
    )
}

/// What ended a server session that should have ended with QUIT.
fn expect_quit(stop: Stop) -> io::Result<()> {
    match stop {
        Stop::Quit => Ok(()),
        other => Err(io::Error::other(format!("expected QUIT, got {other:?}"))),
    }
}

/// The clear part of a server connection: accept, then (STARTTLS) banner, EHLO, STARTTLS.
fn serve_plain(
    listener: &TcpListener,
    session: &mut ServerSession,
) -> io::Result<(TcpStream, ServerParams)> {
    let (mut tcp, peer) = listener.accept()?;
    let _ = tcp.set_read_timeout(Some(IO_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(IO_TIMEOUT));
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr()?;
    if session.config().starttls {
        session.greet();
        match server::drive(session, &mut tcp)? {
            Stop::StartTls { .. } => server::flush(session, &mut tcp)?,
            other => {
                return Err(io::Error::other(format!(
                    "expected STARTTLS, got {other:?}"
                )))
            }
        }
        session.tls_started();
    }
    Ok((tcp, ServerParams::new(peer, local)))
}

fn serve_one(
    listener: &TcpListener,
    server: &dyn ServerContext,
    wire: Wire,
    name: &str,
) -> Result<SessionInfo, String> {
    serve_smtp(listener, server, server_session(wire, name)).map(|(info, _)| info)
}

/// Accepts one connection on `listener` and runs `session` over it through a blocking
/// `server`: STARTTLS when the session offers it, TLS from the first byte otherwise, until the
/// client's QUIT. What the TLS server reported, and the session at its end.
pub fn serve_smtp(
    listener: &TcpListener,
    server: &dyn ServerContext,
    mut session: ServerSession,
) -> Result<(SessionInfo, ServerSession), String> {
    let io = |e: io::Error| e.to_string();
    let (tcp, params) = serve_plain(listener, &mut session).map_err(io)?;
    let mut tls = server
        .accept(Box::new(tcp), &params)
        .map_err(|e| e.to_string())?;
    if session.config().tls {
        session.greet();
    }
    expect_quit(server::drive(&mut session, &mut tls).map_err(io)?).map_err(io)?;
    server::flush(&mut session, &mut tls).map_err(io)?;
    let info = tls.info();
    let _ = tls.shutdown();
    Ok((info, session))
}

/// The server side through `tlsresume::tokio`.
fn serve_one_async(
    listener: &TcpListener,
    server: Arc<dyn ServerContext>,
    wire: Wire,
    name: &str,
) -> Result<SessionInfo, String> {
    let io = |e: io::Error| e.to_string();
    let mut session = server_session(wire, name);
    let (tcp, params) = serve_plain(listener, &mut session).map_err(io)?;
    tcp.set_nonblocking(true).map_err(io)?;
    let rt = runtime().map_err(io)?;
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::from_std(tcp).map_err(io)?;
        let mut tls = TlsAcceptor::new(server)
            .accept(&params, tcp)
            .await
            .map_err(|e| e.to_string())?;
        if wire == Wire::TlsOnConnect {
            session.greet();
        }
        let stop = tokio::time::timeout(IO_TIMEOUT, smtp_tokio::drive(&mut session, &mut tls))
            .await
            .map_err(|_| "server: timed out".to_owned())?;
        expect_quit(stop.map_err(io)?).map_err(io)?;
        smtp_tokio::flush(&mut session, &mut tls)
            .await
            .map_err(io)?;
        let info = tls.info().clone();
        let _ = tls.shutdown().await;
        Ok(info)
    })
}

/// The clear part of a client connection: TCP, then (STARTTLS) banner, EHLO, STARTTLS; the
/// socket and the EHLO host name for the cache key.
fn client_plain(
    peer: SocketAddr,
    wire: Wire,
    connected: &mut bool,
) -> Result<(TcpStream, Option<String>), String> {
    let mut tcp = TcpStream::connect(peer).map_err(|e| e.to_string())?;
    *connected = true;
    let _ = tcp.set_read_timeout(Some(IO_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(IO_TIMEOUT));
    let _ = tcp.set_nodelay(true);
    let mut lb_name = None;
    if wire == Wire::Starttls {
        let mut session = ClientSession::new(HELO, Goal::StartTls);
        let opened = session::open(&mut session, &mut tcp).map_err(|e| e.to_string())?;
        lb_name = opened.lb_name().map(str::to_owned);
    }
    Ok((tcp, lb_name))
}

/// The client's name in EHLO.
const HELO: &str = "client.tlsresume.test";

/// The client's dialogue over TLS: (the banner,) EHLO and QUIT.
fn client_tls_session(wire: Wire) -> ClientSession {
    let banner = wire == Wire::TlsOnConnect;
    ClientSession::new(HELO, Goal::Quit { banner })
}

fn client_params(
    peer: SocketAddr,
    lb_name: Option<String>,
    dane: Option<&[TlsaRecord]>,
) -> ClientParams {
    let mut p = ClientParams::new("mx.tlsresume.test", peer);
    p.lb_name = lb_name;
    p.dane = dane.map(<[TlsaRecord]>::to_vec);
    p
}

fn client_one(
    peer: SocketAddr,
    client: &dyn ClientContext,
    wire: Wire,
    dane: Option<&[TlsaRecord]>,
    connected: &mut bool,
) -> Result<SessionInfo, String> {
    let (tcp, lb_name) = client_plain(peer, wire, connected)?;
    let params = client_params(peer, lb_name, dane);
    let mut tls: Box<dyn TlsStream> = client
        .connect(Box::new(tcp), &params)
        .map_err(|e| e.to_string())?;
    session::open(&mut client_tls_session(wire), &mut tls).map_err(|e| e.to_string())?;
    let info = tls.info();
    let _ = tls.shutdown();
    Ok(info)
}

/// A current-thread runtime for one end of one connection.
fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The client side through `tlsresume::tokio`: the clear part blocking (it is not TLS), the
/// handshake and the TLS dialogue async.
fn client_one_async(
    peer: SocketAddr,
    client: Arc<dyn ClientContext>,
    wire: Wire,
    dane: Option<&[TlsaRecord]>,
    connected: &mut bool,
) -> Result<SessionInfo, String> {
    let io = |e: io::Error| e.to_string();
    let (tcp, lb_name) = client_plain(peer, wire, connected)?;
    let params = client_params(peer, lb_name, dane);
    tcp.set_nonblocking(true).map_err(io)?;
    let rt = runtime().map_err(io)?;
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::from_std(tcp).map_err(io)?;
        let mut tls = TlsConnector::new(client)
            .connect(&params, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let mut session = client_tls_session(wire);
        tokio::time::timeout(IO_TIMEOUT, smtp_tokio::open(&mut session, &mut tls))
            .await
            .map_err(|_| "client: timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        let info = tls.info().clone();
        let _ = tls.shutdown().await;
        Ok(info)
    })
}
