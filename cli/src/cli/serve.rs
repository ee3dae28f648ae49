//! `tlsresume serve`: a real TLS server (TLS-on-connect or SMTP STARTTLS) for testing clients,
//! logging one Exim-style line per connection.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::json;
use tlsresume::identities::ServerIdentity;
use tlsresume::limits::{PerAddress, Refused};
use tlsresume::smtp::fastopen::{self, Accepted, KernelSetting};
use tlsresume::{
    Deadline, Error, HostList, Identity, ServerContext, ServerParams, ServerSettings, SessionInfo,
    TlsStream,
};
use tlsresume_compare::Pki;

use super::pool::Pool;
use super::smtp::{input_within, serve_plain_until_starttls, SYNC_ERROR};
use super::{log_line, StartProtocol, Wire};
use tlsresume::smtp::auth::UserTable;
use tlsresume::smtp::server::{self as smtp_server, Stop};
use tlsresume::smtp::{Deadlines, Pipelining, ServerConfig, ServerSession};

pub(super) mod on_tokio;

/// Arguments of `tlsresume serve`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Each connection is handled on a thread of its own (reused by later connections; a task on tokio with --async) and logged on stdout when it ends \
(or when the client sends QUIT), in Exim's style:\n\n  \
H=[127.0.0.1]:54321 X=TLS1.3:TLS_AES_256_GCM_SHA384:256* CV=no resumption=0x1D (session resumed)\n\n\
X= is Exim's cipher string for the backend, with '*' when the session was resumed; resumption= \
is the server's five resumption bits ($tls_in_resumption) in hex with Exim's text. SNI= (the name the client sent), Exim's L field (SMTP: L* early pipelining used, L. early pipelining advertised but not used, L pipelining used) and messages= (mail accepted and discarded) follow when there are any. A failed \
handshake logs one line with the error and the server goes on. The first line printed is \
'listening on ADDR' (with the real port when --listen asks for port 0).\n\n\
With --ticket-keys, the session-ticket keys come from Redis, shared by every server given the \
same URL, prefix and key-encryption key (a fleet behind a load balancer, or one node across \
restarts): a client resumes on any node running the same backend. If Redis cannot be reached, \
the server keeps serving with keys of its own (a warning on stderr) and shares again once Redis \
is back.\n\n\
Example: tlsresume serve --backend openssl --starttls smtp --listen 127.0.0.1:8025\n\n\
Early pipelining (PIPECONNECT): tlsresume serve --starttls smtp --pipe-connect --listen 127.0.0.1:8025\n\n\
Fleet example (the same on every node; make the KEK once, e.g. \
`openssl rand -hex 32 > /etc/tlsresume/kek; chmod 600 /etc/tlsresume/kek`):\n  \
tlsresume serve --backend openssl --listen 0.0.0.0:465 --ticket-keys redis://10.0.0.5:6379 \
--kek-file /etc/tlsresume/kek"
)]
pub struct ServeArgs {
    /// TLS library: openssl, gnutls or rustls (default: the first compiled in, normally
    /// openssl). Ticket keys follow that library's flavour as Exim drives it.
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<String>,
    /// Address to listen on; port 0 picks a free port (printed on the first line).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8465")]
    pub listen: String,
    /// PEM certificate chain, leaf first (default: the built-in TEST certificate for
    /// mx.tlsresume.test, localhost and 127.0.0.1, signed by the test CA in tests/pki/ca.pem;
    /// its private key is public: for tests only). Repeat it for several certificates: each
    /// serves the DNS names of its subjectAltName; a client gets the one whose name it sent
    /// (exact, then a one-label wildcard), else the first; an RSA and an ECDSA certificate for
    /// the same names are chosen between by what the client supports. A session resumes only
    /// under the name it was issued for.
    #[arg(long, value_name = "FILE")]
    pub cert: Vec<PathBuf>,
    /// PEM private key for --cert: PKCS#8, PKCS#1 or SEC1 (default: read from the --cert
    /// file, for a PEM holding both). With several --cert, give one --key for each, in the
    /// same order, or none.
    #[arg(long, value_name = "FILE")]
    pub key: Vec<PathBuf>,
    /// A DER OCSP response to staple on full handshakes (for the default certificate, the
    /// one of the test PKI is tests/pki/server-ecdsa.ocsp.der).
    #[arg(long, value_name = "FILE")]
    pub ocsp: Option<PathBuf>,
    /// TLS from the first byte, SMTP banner over TLS (the default).
    #[arg(long, conflicts_with = "starttls")]
    pub tls_on_connect: bool,
    /// SMTP in clear throughout, no TLS (STARTTLS not offered): every message accepted and
    /// discarded, for clients that test pipelining without TLS.
    #[arg(long, conflicts_with_all = ["starttls", "tls_on_connect", "http"])]
    pub plain: bool,
    /// Early pipelining (Exim's PIPECONNECT): advertise PIPECONNECT, with PIPELINING, in the
    /// EHLO responses to the clients of --pipe-connect-hosts and accept their commands when
    /// they come before the banner. A client that talks before the banner without having been
    /// offered it gets "554 SMTP synchronization error" and is dropped, as Exim does. The log
    /// line gets Exim's L field: L* early pipelining used, L. advertised but not used, L
    /// pipelining used. Without it, PIPECONNECT is never advertised.
    #[arg(long, conflicts_with = "http")]
    pub pipe_connect: bool,
    /// Exim host list of the clients offered early pipelining with --pipe-connect (Exim's
    /// pipelining_connect_advertise_hosts), e.g. '127.0.0.1 : 192.0.2.0/24' or '!127.0.0.1'.
    /// Default: every client.
    #[arg(long, value_name = "LIST")]
    pub pipe_connect_hosts: Option<String>,
    /// Milliseconds to wait for a client's first bytes before sending the banner (returns at
    /// once when they come), to catch early talkers reliably (Postfix postscreen's pregreet
    /// test waits too). Default 0: the server only looks whether they are there already, as
    /// Exim does.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub pre_banner_wait: u64,
    /// TCP Fast Open (RFC 7413) on the listener (TCP_FASTOPEN): a client with a cookie from an
    /// earlier connection sends its first bytes in the SYN - its early SMTP commands, or its
    /// TLS ClientHello - and they are taken at once. The log line marks such a connection
    /// TFO* (TFO for a Fast Open connection whose SYN carried no data), as Exim does; --json
    /// has "fastopen". The kernel must allow it: net.ipv4.tcp_fastopen with bit 2 (3 allows
    /// client and server); the server says so on stderr when it does not.
    #[arg(long)]
    pub fastopen: bool,
    /// Connections made from Fast Open SYNs that may wait for their handshake to end (the
    /// TCP_FASTOPEN queue length), with --fastopen.
    #[arg(long, value_name = "N", default_value_t = 64, requires = "fastopen")]
    pub fastopen_queue: u32,
    /// Speak PROTOCOL in clear until STARTTLS. smtp: banner, EHLO advertising STARTTLS,
    /// STARTTLS; then EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP and QUIT over TLS, every message
    /// accepted and discarded.
    #[arg(long, value_name = "PROTOCOL", value_enum)]
    pub starttls: Option<StartProtocol>,
    /// Exim host list of the clients given session tickets (Exim's tls_resumption_hosts),
    /// e.g. '127.0.0.1 : 192.0.2.0/24' or '!127.0.0.1'; others get no ticket and their
    /// tickets are not accepted. Names never match: the server does no reverse lookups.
    /// Default: every client.
    #[arg(long, value_name = "LIST")]
    pub resumption_hosts: Option<String>,
    /// Exim host list of the clients that must present a certificate that verifies against
    /// --client-ca (Exim's tls_verify_hosts); the handshake is refused without one.
    #[arg(long, value_name = "LIST")]
    pub verify_hosts: Option<String>,
    /// Exim host list of the clients asked for a certificate, let in without one or with one
    /// that does not verify (Exim's tls_try_verify_hosts); CV= and DN= say what was seen.
    #[arg(long, value_name = "LIST")]
    pub try_verify_hosts: Option<String>,
    /// PEM file of the CAs client certificates must chain to (Exim's tls_verify_certificates;
    /// default without --cert: the committed test CA, which issued tests/pki/client.pem).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Resumption policy: exim (report as Exim does, known issues included) or hardened (each
    /// known issue fixed). Default here: exim, since this command is Exim's test bench; the
    /// library's default (ResumptionPolicy::default()) is hardened.
    #[arg(long, value_name = "POLICY", default_value = "exim")]
    pub policy: String,
    /// Allow only this TLS version: 1.2 or 1.3 (default: both).
    #[arg(long, value_name = "VERSION")]
    pub tls: Option<String>,
    /// The cipher suites accepted, in preference order: IANA names separated by ':' (Exim's
    /// tls_require_ciphers), e.g. TLS_AES_256_GCM_SHA384:TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.
    /// A TLS version the list names no suite for is off; a suite the backend's library cannot
    /// use is refused at start, naming what it can. Default: the library's own.
    #[arg(long, value_name = "LIST")]
    pub ciphers: Option<String>,
    /// Speak HTTP over TLS-on-connect instead of SMTP: each request (GET or HEAD) is
    /// answered with a short `HTTP/1.0 200` text page saying what the connection was
    /// (resumption bits and Exim's text, resumed or not, Exim cipher string, verification,
    /// OCSP), as `openssl s_server -www` does. The connection stays open for another request
    /// when the request says `Connection: keep-alive`, and is closed (with close_notify)
    /// otherwise, so `curl URL1 URL2` resumes its session on the second connection.
    #[arg(long, conflicts_with = "starttls")]
    pub http: bool,
    /// Log one JSON object per line instead of text: {"listening": ADDR} first, then one
    /// object per connection with the fields of the text line; the stores' notices (Redis out
    /// of reach, a process-local ticket key, and when each ends) as {"notice": TEXT, "level":
    /// "warning"|"info"}.
    #[arg(long)]
    pub json: bool,
    /// Host name in the SMTP banner and EHLO reply (clients use the EHLO name in their
    /// session cache key).
    #[arg(long, value_name = "NAME", default_value = "mx.tlsresume.test")]
    pub hostname: String,
    /// Offer SMTP AUTH PLAIN and LOGIN, under TLS only (a client trying AUTH in clear gets
    /// 538), checked against FILE: one `user:password` a line (`#` starts a comment). The
    /// log line shows A=user for a client that authenticated. 8BITMIME, SMTPUTF8 and DSN are
    /// always offered; the log line's ext= lists those the connection's messages used.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["http", "plain"])]
    pub auth_file: Option<PathBuf>,
    /// Exit after this many connections have ended (for scripts and tests); default: run
    /// until interrupted.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<u64>,
    /// Seconds a connection may wait for the client before it is dropped (the TLS handshake
    /// included).
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,
    /// Seconds the whole TLS handshake may take, however the client paces its bytes (the idle
    /// --timeout restarts with every byte; a client dribbling a ClientHello would otherwise
    /// hold its connection for ever). The log line says the handshake deadline passed.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub handshake_timeout: u64,
    /// Seconds an SMTP command line may take to arrive, however the client paces its bytes
    /// (RFC 5321 section 4.5.3.2: 5 minutes). The log line says the SMTP command deadline
    /// passed.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub command_timeout: u64,
    /// Seconds each line of a message (or each BDAT chunk) may take (RFC 5321: 3 minutes).
    #[arg(long, value_name = "SECONDS", default_value_t = 180)]
    pub data_timeout: u64,
    /// Seconds the whole content of one message may take, up to its final dot (RFC 5321: 10
    /// minutes).
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub message_timeout: u64,
    /// Connections served at once. Past it, in clear SMTP (--starttls smtp, --plain) a new
    /// connection is answered `421` and closed, as an MTA does; with TLS from the first byte
    /// it waits in the listen backlog until a connection ends.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_concurrent: usize,
    /// Connections served at once from one client address (an IPv6 client: its /64), so one
    /// host cannot take every place. Past it a new connection from that address is answered
    /// `421` and closed in clear SMTP, and closed with TLS from the first byte; logged once per
    /// address and burst. Default: a tenth of --max-concurrent (at least 1).
    #[arg(long, value_name = "N")]
    pub max_per_address: Option<usize>,
    /// Share session-ticket keys with the other servers of a fleet through the Redis at URL
    /// (redis://[user][:password@]host:port[/db], redis+unix:///path; the master named by
    /// Sentinels: redis+sentinel://[user][:password@]host:port[,host:port…]/master_name[/db],
    /// followed through failovers; a Redis Cluster: redis+cluster://[user][:password@]host:port[,host:port…];
    /// rediss:// for TLS
    /// only in a build with the tlsresume-stores/redis-tls feature), so a ticket from one node (or from
    /// before a restart) resumes on every node running the same backend. Keys are wrapped
    /// with the key-encryption key of --kek-file or --kek-env before they reach Redis.
    /// Default: keys made in this process, forgotten when it exits.
    #[cfg(feature = "stores")]
    #[arg(long, value_name = "URL")]
    pub ticket_keys: Option<String>,
    /// File holding the fleet's key-encryption key for --ticket-keys: 64 hex digits (or 32
    /// raw bytes), mode 0600 (refused when group or others may read it).
    #[cfg(feature = "stores")]
    #[arg(long, value_name = "FILE")]
    pub kek_file: Option<PathBuf>,
    /// Environment variable holding the key-encryption key for --ticket-keys (64 hex digits),
    /// instead of --kek-file.
    #[cfg(feature = "stores")]
    #[arg(long, value_name = "VAR")]
    pub kek_env: Option<String>,
    /// PEM file of the CA certificates that Redis's certificate must chain to, for a
    /// rediss:// --ticket-keys URL (default: the system's trust store).
    #[cfg(feature = "stores")]
    #[arg(long, value_name = "FILE")]
    pub ticket_keys_ca: Option<PathBuf>,
    /// Rotate session-ticket keys every SECONDS instead of the backend's default (OpenSSL,
    /// rustls: every hour, tickets live 2 h; GnuTLS: keys derived per 6 h period, tickets live
    /// 2 h). OpenSSL, rustls: a new key every SECONDS, tickets live 2 × SECONDS and are
    /// renewed after SECONDS. GnuTLS: tickets live SECONDS / 3 (at least 1 s), keys derived
    /// per period of 3 × that. Every node of a fleet must use the same value (the Redis keys
    /// are per rotation slot).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub ticket_rotation: Option<u64>,
    /// TLS 1.3 tickets sent to a client given tickets after a full handshake (0 to 8; default:
    /// the backend's own, 1 on OpenSSL and rustls, 2 on GnuTLS). After a resumed handshake
    /// rustls and GnuTLS send as many again, OpenSSL one when it renews the ticket.
    #[arg(long, value_name = "N")]
    pub tls13_tickets: Option<u32>,
    /// Prefix of the Redis keys written by --ticket-keys (to share one Redis between fleets).
    #[cfg(feature = "stores")]
    #[arg(long, value_name = "PREFIX", default_value = "tlsresume:")]
    pub ticket_keys_prefix: String,
    /// Serve on tokio: each connection is a task, not a thread, so ten thousand idle
    /// connections take a few threads (raise --max-concurrent, --max-per-address and the
    /// descriptor limit for them). Every mode runs on the runtime throughout: TLS from the
    /// first byte, --starttls smtp, --plain, --http (a keep-alive connection between requests
    /// holds no thread), with --pipe-connect and --fastopen as without it; with TLS from the
    /// first byte no TLS state is made until the client sends its first bytes.
    #[arg(long = "async")]
    pub on_tokio: bool,
    /// Serve the library's counters (handshakes by result, tickets issued and refused by
    /// reason, …) in Prometheus's text format over HTTP on ADDR (port 0: a free one, printed
    /// on the line after the listening one).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

/// What every connection thread needs.
#[derive(Debug)]
struct Shared {
    server: Arc<dyn ServerContext>,
    backend: tlsresume::BackendKind,
    http: bool,
    json: bool,
    wire: Wire,
    hostname: String,
    timeout: Duration,
    /// The whole handshake's deadline.
    handshake_timeout: Duration,
    /// The SMTP session's deadlines.
    deadlines: Deadlines,
    /// The clients offered PIPECONNECT (`None`: early pipelining off).
    pipe_connect: Option<HostList>,
    pre_banner_wait: Duration,
    /// `--fastopen`: each connection's log line says whether it came through Fast Open.
    fastopen: bool,
    /// `--auth-file`: the users AUTH checks.
    auth: Option<Arc<UserTable>>,
    /// Several `--cert`: each line names the certificate sent.
    several_certs: bool,
}

impl Shared {
    /// The SMTP session's configuration every connection starts from: the deadlines,
    /// 8BITMIME, SMTPUTF8, DSN, and AUTH under TLS with `--auth-file`.
    fn session_config(&self) -> ServerConfig {
        let config = ServerConfig::new(self.hostname.clone())
            .deadlines(self.deadlines)
            .smtputf8(true)
            .dsn(true);
        match &self.auth {
            Some(users) => config.auth(users.clone()),
            None => config,
        }
    }
}

/// The users of `--auth-file`.
fn auth_file(path: &std::path::Path) -> Result<UserTable, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("--auth-file {}: {e}", path.display())))?;
    let users = UserTable::parse(&text)
        .map_err(|e| Error::Config(format!("--auth-file {}: {e}", path.display())))?;
    if users.is_empty() {
        return Err(Error::Config(format!(
            "--auth-file {}: no user in it",
            path.display()
        )));
    }
    Ok(users)
}

/// The identities of `--cert` and `--key`: a key per certificate, in order, or none (each file
/// holds its certificate and key).
fn identities(certs: &[PathBuf], keys: &[PathBuf]) -> Result<Vec<Identity>, Error> {
    if !keys.is_empty() && keys.len() != certs.len() {
        return Err(Error::Config(format!(
            "{} --key for {} --cert: give one --key for each --cert, in the same order, or none \
             (each --cert file then holds its key)",
            keys.len(),
            certs.len()
        )));
    }
    certs
        .iter()
        .enumerate()
        .map(|(i, cert)| Identity::from_pem_files(cert, keys.get(i).unwrap_or(cert)))
        .collect()
}

/// Builds the server from the arguments (every argument error surfaces here, before
/// listening).
fn settings(args: &ServeArgs) -> Result<(ServerSettings, tlsresume::BackendKind), Error> {
    let kind = super::backend(args.backend.as_deref())?;
    let mut identities = identities(&args.cert, &args.key)?.into_iter();
    let identity = match identities.next() {
        Some(first) => first,
        None => Pki::committed()?.server,
    };
    let mut settings = ServerSettings::new(identity);
    for (i, identity) in identities.enumerate() {
        let served = ServerIdentity::new(identity)
            .map_err(|e| Error::Config(format!("--cert {}: {e}", args.cert[i + 1].display())))?;
        settings.identities.push(served);
    }
    settings.ticket_policy = Some(match args.ticket_rotation {
        None => kind.default_ticket_policy(),
        Some(secs) => ticket_policy(kind, secs)?,
    });
    settings.tls13_tickets = args.tls13_tickets;
    settings.resumption = super::policy(&args.policy)?.policy();
    if let Some(list) = &args.resumption_hosts {
        let hosts: HostList = list
            .parse()
            .map_err(|e| Error::Config(format!("--resumption-hosts: {e}")))?;
        settings.resumption = settings.resumption.with_server_hosts(hosts);
    }
    if let Some(path) = &args.ocsp {
        settings.ocsp_response = Some(tlsresume::pki::read_file(path)?);
    }
    let host_list = |flag: &str, list: &Option<String>| -> Result<HostList, Error> {
        match list {
            Some(list) => list
                .parse()
                .map_err(|e| Error::Config(format!("--{flag}: {e}"))),
            None => Ok(HostList::none()),
        }
    };
    settings.verify_hosts = host_list("verify-hosts", &args.verify_hosts)?;
    settings.try_verify_hosts = host_list("try-verify-hosts", &args.try_verify_hosts)?;
    settings.client_roots = match (&args.client_ca, args.cert.first()) {
        (Some(path), _) => tlsresume::certificates_from_pem_file(path)?,
        (None, None) if settings.asks_client_certificates() => Pki::committed()?.roots,
        (None, _) if settings.asks_client_certificates() => {
            return Err(Error::Config(
                "--verify-hosts and --try-verify-hosts need --client-ca (the CAs client \
                 certificates must chain to)"
                    .into(),
            ))
        }
        (None, _) => Vec::new(),
    };
    settings.versions = super::versions(args.tls.as_deref())?;
    settings.ciphers = args.ciphers.as_deref().map(str::parse).transpose()?;
    if let Some(source) = fleet_key_source(args, &settings.ticket_policy_for(kind))? {
        settings.key_source = source;
    }
    Ok((settings, kind))
}

/// The ticket policy of `--ticket-rotation SECONDS` for `kind`'s key schedule.
fn ticket_policy(
    kind: tlsresume::BackendKind,
    secs: u64,
) -> Result<tlsresume::TicketPolicy, Error> {
    let every = Duration::from_secs(secs);
    let policy = match kind {
        tlsresume::BackendKind::Gnutls => {
            tlsresume::TicketPolicy::periodic(Duration::from_secs((secs / 3).max(1)))
        }
        _ => tlsresume::TicketPolicy::rolling(every, 1, every.saturating_mul(2), Some(every)),
    };
    policy.map_err(|e| Error::Config(format!("--ticket-rotation {secs}: {e}")))
}

/// The Redis key source of `--ticket-keys` with the KEK of `--kek-file` / `--kek-env`, or
/// `None` (keys made in process) when `--ticket-keys` is not given.
#[cfg(feature = "stores")]
fn fleet_key_source(
    args: &ServeArgs,
    policy: &tlsresume::TicketPolicy,
) -> Result<Option<Arc<dyn tlsresume::KeySource>>, Error> {
    use tlsresume::stores::{Kek, RedisConfig, RedisKeySource};

    let Some(url) = &args.ticket_keys else {
        if args.kek_file.is_some() || args.kek_env.is_some() || args.ticket_keys_ca.is_some() {
            return Err(Error::Config(
                "--kek-file, --kek-env and --ticket-keys-ca go with --ticket-keys".into(),
            ));
        }
        return Ok(None);
    };
    let (kek, option, kek_from) = match (&args.kek_file, &args.kek_env) {
        (Some(path), None) => (
            Kek::from_file(path),
            "--kek-file",
            path.display().to_string(),
        ),
        (None, Some(var)) => (Kek::from_env(var), "--kek-env", format!("${var}")),
        (Some(_), Some(_)) => {
            return Err(Error::Config(
                "give one of --kek-file and --kek-env, not both".into(),
            ))
        }
        (None, None) => {
            return Err(Error::Config(
                "--ticket-keys needs the key-encryption key: --kek-file FILE or --kek-env VAR"
                    .into(),
            ))
        }
    };
    let kek = kek.map_err(|e| Error::Config(format!("{option}: {e}")))?;
    let mut config = RedisConfig::new(url.as_str()).prefix(args.ticket_keys_prefix.as_str());
    if let Some(path) = &args.ticket_keys_ca {
        config = config.tls_ca_pem(tlsresume::pki::read_file(path)?);
    }
    let shown = config.redacted_url();
    let source = RedisKeySource::new(config, kek, policy)
        .map_err(|e| Error::Config(format!("--ticket-keys {shown}: {e}")))?;
    eprintln!(
        "tlsresume serve: ticket keys shared through redis {shown} (prefix {}), wrapped with the key-encryption key from {kek_from}",
        args.ticket_keys_prefix
    );
    Ok(Some(Arc::new(source)))
}

/// Without the `stores` feature there are no shared ticket keys.
#[cfg(not(feature = "stores"))]
fn fleet_key_source(
    _args: &ServeArgs,
    _policy: &tlsresume::TicketPolicy,
) -> Result<Option<Arc<dyn tlsresume::KeySource>>, Error> {
    Ok(None)
}

/// Runs `serve`.
pub fn run(args: &ServeArgs) -> Result<(), Error> {
    if args.json {
        super::notices_as_json();
    }
    let (settings, kind) = settings(args)?;
    let pipe_connect = match (&args.pipe_connect_hosts, args.pipe_connect) {
        (Some(list), true) => Some(
            list.parse::<HostList>()
                .map_err(|e| Error::Config(format!("--pipe-connect-hosts: {e}")))?,
        ),
        (None, true) => Some(HostList::any()),
        (Some(_), false) => {
            return Err(Error::Config(
                "--pipe-connect-hosts goes with --pipe-connect".into(),
            ))
        }
        (None, false) => None,
    };
    let auth = args
        .auth_file
        .as_deref()
        .map(auth_file)
        .transpose()?
        .map(Arc::new);
    let server = tlsresume::backends::server(kind, settings)?;
    let listener = TcpListener::bind(&args.listen)
        .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", args.listen)))?;
    let local = listener.local_addr()?;
    if args.fastopen {
        enable_fast_open(&listener, args.fastopen_queue)?;
    }
    if args.json {
        log_line(&json!({ "listening": local.to_string() }).to_string());
    } else {
        log_line(&format!("listening on {local}"));
    }
    if let Some(addr) = &args.metrics {
        let metrics = super::metrics::serve(addr)?;
        if args.json {
            log_line(&json!({ "metrics": metrics.to_string() }).to_string());
        } else {
            log_line(&format!("metrics on {metrics}"));
        }
    }
    let shared = Arc::new(Shared {
        server,
        backend: kind,
        http: args.http,
        json: args.json,
        wire: Wire::from_options(args.starttls, args.plain),
        hostname: args.hostname.clone(),
        timeout: Duration::from_secs(args.timeout.max(1)),
        handshake_timeout: Duration::from_secs(args.handshake_timeout.max(1)),
        deadlines: Deadlines {
            command: Duration::from_secs(args.command_timeout.max(1)),
            data_block: Duration::from_secs(args.data_timeout.max(1)),
            message: Duration::from_secs(args.message_timeout.max(1)),
        },
        pipe_connect,
        pre_banner_wait: Duration::from_millis(args.pre_banner_wait),
        fastopen: args.fastopen,
        auth,
        several_certs: args.cert.len() > 1,
    });
    if args.max_concurrent == 0 {
        return Err(Error::Config("--max-concurrent must be at least 1".into()));
    }
    let per_address = Arc::new(PerAddress::new(
        args.max_per_address
            .unwrap_or(args.max_concurrent / 10)
            .max(1),
    ));
    if args.on_tokio {
        return on_tokio::run(
            listener,
            shared,
            args.max_connections,
            args.max_concurrent,
            per_address,
        );
    }
    let slots = Arc::new(Slots::new(args.max_concurrent));
    let clear_smtp = matches!(shared.wire, Wire::Starttls | Wire::Plain) && !shared.http;
    // Threads are reused from one connection to the next (see `pool`: GnuTLS keeps memory per
    // thread ever used).
    let pool = Pool::default();
    let mut accepted = 0u64;
    while args.max_connections.is_none_or(|max| accepted < max) {
        // TLS from the first byte: no free slot, no accept (the kernel's backlog holds them).
        if !clear_smtp {
            slots.wait_free();
        }
        let (mut tcp, peer) = match listener.accept() {
            Ok(conn) => conn,
            Err(e) => {
                log_line(&format!("accept failed: {e}"));
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        accepted += 1;
        // Asked of the kernel before anything is read from the connection.
        let fast_open = shared
            .fastopen
            .then(|| fastopen::accepted(&tcp).unwrap_or(Accepted::Normal));
        let Some(slot) = slots.take() else {
            // Clear SMTP: say so and close, as an MTA past its connection limit does.
            let _ = tcp.set_write_timeout(Some(Duration::from_secs(5)));
            let _ = tcp.write_all(
                format!(
                    "421 {} too many connections ({} at once), try again later\r\n",
                    shared.hostname, args.max_concurrent
                )
                .as_bytes(),
            );
            log_connection(
                &shared,
                peer,
                &Record {
                    problem: Some(format!(
                        "refused with 421: {} connections already served at once",
                        args.max_concurrent
                    )),
                    fast_open,
                    ..Record::default()
                },
            );
            continue;
        };
        let from_address = match per_address.admit(peer.ip()) {
            Ok(place) => place,
            Err(refused) => {
                if clear_smtp {
                    let _ = tcp.set_write_timeout(Some(Duration::from_secs(5)));
                    let _ = tcp.write_all(
                        format!(
                            "421 {} too many connections from your address, try again later\r\n",
                            shared.hostname
                        )
                        .as_bytes(),
                    );
                }
                log_refused_address(&shared, peer, &refused, &per_address, clear_smtp, fast_open);
                continue;
            }
        };
        let shared = shared.clone();
        let job = move || {
            // Dropped in reverse order: the address's place is free before the slot is.
            let _slot = slot;
            let _from_address = from_address;
            connection(&shared, tcp, peer, fast_open)
        };
        // Out of threads: the connection (moved into the job) is dropped, its slot freed.
        if let Err(e) = pool.run(job) {
            log_line(&format!(
                "H=[{}]:{} no thread for the connection: {e}",
                peer.ip(),
                peer.port()
            ));
        }
    }
    pool.wait();
    Ok(())
}

/// A connection refused by `--max-per-address`, logged once per burst: a flood from one
/// address is one line, not one per connection.
fn log_refused_address(
    shared: &Shared,
    peer: SocketAddr,
    refused: &Refused,
    per_address: &PerAddress,
    clear_smtp: bool,
    fast_open: Option<Accepted>,
) {
    if !refused.first_of_burst {
        return;
    }
    let what = if clear_smtp {
        "refused with 421"
    } else {
        "closed"
    };
    log_connection(
        shared,
        peer,
        &Record {
            problem: Some(format!(
                "{what}: {refused} (--max-per-address {}); more from it are refused \
                 without a line until one is served",
                per_address.max()
            )),
            fast_open,
            ..Record::default()
        },
    );
}

/// `--fastopen`: TCP_FASTOPEN on the listener; a kernel setting that keeps servers from taking
/// data from the SYN is said on stderr (connections then come the normal way).
fn enable_fast_open(listener: &TcpListener, queue: u32) -> Result<(), Error> {
    super::note_fast_open_setting("serve", KernelSetting::allows_server);
    fastopen::enable_on_listener(listener, queue).map_err(|e| {
        Error::Config(format!(
            "--fastopen: cannot enable TCP Fast Open on the listener: {e}"
        ))
    })
}

/// A bound on the connections served at once.
#[derive(Debug)]
struct Slots {
    max: usize,
    busy: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

/// One connection's place; freed when dropped.
#[derive(Debug)]
struct Slot(Arc<Slots>);

impl Slots {
    fn new(max: usize) -> Self {
        Self {
            max,
            busy: std::sync::Mutex::new(0),
            freed: std::sync::Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks until a place is free.
    fn wait_free(&self) {
        let mut busy = self.lock();
        while *busy >= self.max {
            busy = self.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// A place, if one is free.
    fn take(self: &Arc<Self>) -> Option<Slot> {
        let mut busy = self.lock();
        if *busy >= self.max {
            return None;
        }
        *busy += 1;
        Some(Slot(self.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut busy = self.0.lock();
        *busy = busy.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

/// What one connection was, for its log line.
#[derive(Debug, Default)]
struct Record {
    /// The TLS session, when the handshake completed.
    info: Option<SessionInfo>,
    /// What went wrong, if anything: before TLS, in the handshake, or after.
    problem: Option<String>,
    /// Messages accepted (SMTP).
    messages: usize,
    /// Requests answered (HTTP).
    requests: Option<usize>,
    /// Early pipelining and pipelining (SMTP), for the `L` field.
    pipe: Pipelining,
    /// What the kernel said of the connection when it was accepted (`--fastopen`).
    fast_open: Option<Accepted>,
    /// The user the client authenticated as (SMTP AUTH).
    auth: Option<String>,
    /// The extensions the accepted messages used: 8BITMIME, SMTPUTF8, DSN.
    extensions: Vec<&'static str>,
}

impl Record {
    /// What an SMTP session did: its messages, pipelining, AUTH user and the extensions its
    /// messages used.
    fn of_session(session: &mut ServerSession) -> Self {
        let accepted = session.take_accepted();
        let mut extensions = Vec::new();
        let used = [
            (
                "8BITMIME",
                accepted.iter().any(|a| a.parameters.eight_bit_mime),
            ),
            ("SMTPUTF8", accepted.iter().any(|a| a.parameters.smtputf8)),
            (
                "DSN",
                accepted.iter().any(|a| {
                    a.parameters.ret.is_some()
                        || a.parameters.envid.is_some()
                        || a.rcpt_parameters
                            .iter()
                            .any(|r| r.notify.is_some() || r.orcpt.is_some())
                }),
            ),
        ];
        for (name, on) in used {
            if on {
                extensions.push(name);
            }
        }
        Self {
            messages: session.messages(),
            pipe: session.pipelining(),
            auth: session.authenticated().map(str::to_owned),
            extensions,
            ..Self::default()
        }
    }
}

/// The subject DN and SHA-256 fingerprint (hex, colon-separated as `openssl x509 -fingerprint
/// -sha256` prints it) of the certificate the server sent on this connection.
fn served_certificate(info: &SessionInfo) -> (Option<String>, Option<String>) {
    let Some(der) = &info.local_certificate else {
        return (None, None);
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    (tlsresume::info::subject_dn(der), Some(hex.join(":")))
}

/// Logs a connection's line: Exim-style text, or one JSON object with the same fields.
fn log_connection(shared: &Shared, peer: SocketAddr, rec: &Record) {
    // Exim's marker follows the host: TFO* when the first bytes came in the SYN.
    let tfo = rec
        .fast_open
        .and_then(Accepted::exim_marker)
        .map_or_else(String::new, |m| format!(" {m}"));
    let h = format!("H=[{}]:{}{tfo}", peer.ip(), peer.port());
    if shared.json {
        let mut v = json!({
            "peer": peer.ip().to_string(),
            "port": peer.port(),
        });
        if let Some(info) = &rec.info {
            v["x"] = json!(info.exim_x());
            v["cipher"] = json!(info.cipher.exim);
            v["cipher_iana"] = json!(info.cipher.iana);
            v["tls"] = json!(info.protocol.short());
            v["cv"] = json!(info.verification.exim_cv());
            v["certificate_verified"] = json!(info.certificate_verified());
            v["peer_dn"] = json!(info.peer_dn);
            v["resumption"] = json!(info.resumption.bits());
            v["resumption_hex"] = json!(format!("0x{:02X}", info.resumption.bits()));
            v["resumption_text"] = json!(info.resumption.describe());
            v["resumed"] = json!(info.resumed);
            v["ticket_refused"] = json!(info.ticket_refused.map(|r| r.name()));
            v["ocsp"] = json!(info.ocsp.code());
            v["sni"] = json!(info.sni);
            let (dn, sha256) = served_certificate(info);
            v["certificate"] = json!(dn);
            v["certificate_sha256"] = json!(sha256);
        }
        if shared.http {
            v["requests"] = json!(rec.requests.unwrap_or(0));
        } else {
            v["messages"] = json!(rec.messages);
            v["l"] = json!(rec.pipe.l_field());
            v["early_pipelining"] = json!(rec.pipe.early);
            v["pipe_connect_advertised"] = json!(rec.pipe.advertised);
            v["auth"] = json!(rec.auth);
            v["extensions"] = json!(rec.extensions);
        }
        v["transport"] = json!(shared.wire.name());
        if let Some(accepted) = rec.fast_open {
            v["fastopen"] = json!(match accepted {
                Accepted::SynData => "syn-data",
                Accepted::NoData => "no-data",
                Accepted::Normal => "normal",
            });
        }
        v["error"] = json!(rec.problem);
        return log_line(&v.to_string());
    }
    let mut line = match (&rec.info, shared.wire) {
        (Some(info), _) => {
            let mut line = format!(
                "{h} X={} CV={} resumption={}",
                info.exim_x(),
                info.verification.exim_cv(),
                info.resumption
            );
            if let Some(sni) = &info.sni {
                line.push_str(&format!(" SNI={sni}"));
            }
            // The certificate sent, among several (none on a resumed connection).
            if let (true, (Some(dn), _)) = (shared.several_certs, served_certificate(info)) {
                line.push_str(&format!(" CERT=\"{dn}\""));
            }
            // Exim's DN= (log_selector tls_peerdn): the client certificate's subject.
            if let Some(dn) = &info.peer_dn {
                line.push_str(&format!(" DN=\"{dn}\""));
            }
            line
        }
        (None, Wire::Plain) if rec.messages > 0 || rec.pipe.l_field().is_some() => {
            format!("{h} plain")
        }
        (None, _) => {
            return log_line(&format!(
                "{h} {}",
                rec.problem.as_deref().unwrap_or("no TLS")
            ))
        }
    };
    if let Some(l) = rec.pipe.l_field() {
        line.push_str(&format!(" {l}"));
    }
    if let Some(user) = &rec.auth {
        line.push_str(&format!(" A={user}"));
    }
    if rec.messages > 0 {
        line.push_str(&format!(" messages={}", rec.messages));
    }
    if !rec.extensions.is_empty() {
        line.push_str(&format!(" ext={}", rec.extensions.join(",")));
    }
    if let Some(n) = rec.requests {
        line.push_str(&format!(" requests={n}"));
    }
    if let Some(e) = &rec.problem {
        line.push_str(&format!(" (session ended: {e})"));
    }
    log_line(&line);
}

/// The SMTP session of a connection from `peer`, and whether it is offered early pipelining.
fn smtp_session(shared: &Shared, peer: SocketAddr) -> (ServerSession, bool) {
    let offer = !shared.http
        && shared
            .pipe_connect
            .as_ref()
            .is_some_and(|hosts| hosts.matches(peer.ip(), None));
    let session = ServerSession::new(
        shared
            .session_config()
            .pipe_connect(offer)
            .starttls(shared.wire == Wire::Starttls)
            .tls(shared.wire == Wire::TlsOnConnect),
    );
    (session, offer)
}

/// One connection, start to end; logs its line.
fn connection(shared: &Shared, mut tcp: TcpStream, peer: SocketAddr, fast_open: Option<Accepted>) {
    let log = |rec: Record| log_connection(shared, peer, &Record { fast_open, ..rec });
    let fail = |problem: String| {
        log(Record {
            problem: Some(problem),
            ..Record::default()
        })
    };
    let _ = tcp.set_read_timeout(Some(shared.timeout));
    let _ = tcp.set_write_timeout(Some(shared.timeout));
    let _ = tcp.set_nodelay(true);
    let local = match tcp.local_addr() {
        Ok(a) => a,
        Err(e) => return fail(format!("connection lost: {e}")),
    };
    let (mut session, offer) = smtp_session(shared, peer);
    if shared.wire != Wire::TlsOnConnect {
        // Before the banner: a client that talks now uses early pipelining if it was offered,
        // and is an early talker to be dropped if not.
        let early = input_within(&tcp, shared.pre_banner_wait);
        session.set_early(early);
        if early && !offer {
            let _ = tcp.write_all(SYNC_ERROR.as_bytes());
            let _ = tcp.flush();
            let _ = tcp.shutdown(std::net::Shutdown::Both);
            return fail(
                "rejected: SMTP synchronization error (input sent without waiting for the banner)"
                    .into(),
            );
        }
    }
    if shared.wire == Wire::Plain {
        session.greet();
        let ended = smtp_server::drive(&mut session, &mut tcp);
        log(Record {
            problem: stopped_why(&ended),
            ..Record::of_session(&mut session)
        });
        let _ = smtp_server::flush(&mut session, &mut tcp);
        return;
    }
    if shared.wire == Wire::Starttls {
        match serve_plain_until_starttls(&mut session, &mut tcp) {
            Ok(true) => session.tls_started(),
            Ok(false) => return fail("QUIT before STARTTLS, no TLS".into()),
            Err(e) => return fail(format!("SMTP error before STARTTLS: {}", super::said(&e))),
        }
    }
    let params = ServerParams::new(peer, local);
    let handshake = Deadline::new(tcp, shared.handshake_timeout, "handshake");
    let mut tls = match shared.server.accept(Box::new(handshake), &params) {
        Ok(tls) => tls,
        Err(e) => return fail(format!("TLS error on connection: {e}")),
    };
    // The handshake is over: the connection's own pace is the idle --timeout's.
    if let Some(deadline) = tls.as_mut().transport_mut::<Deadline<TcpStream>>() {
        deadline.disarm();
    }
    if shared.wire == Wire::TlsOnConnect && !shared.http {
        // Commands already sent over the new TLS session, before its banner.
        session.set_early(
            tls.as_mut()
                .transport_mut::<Deadline<TcpStream>>()
                .is_some_and(|tcp| input_within(tcp.get_ref(), Duration::ZERO)),
        );
    }
    let banner = shared.wire == Wire::TlsOnConnect;
    over_tls(shared, tls, peer, session, fast_open, banner);
}

/// The protocol over an established TLS session (HTTP, or the SMTP `session` with the banner
/// first when `banner`), then the connection's log line.
fn over_tls(
    shared: &Shared,
    mut tls: Box<dyn TlsStream>,
    peer: SocketAddr,
    mut session: ServerSession,
    fast_open: Option<Accepted>,
    banner: bool,
) {
    let log = |rec: Record| log_connection(shared, peer, &Record { fast_open, ..rec });
    if shared.http {
        let shown = format!("[{}]:{}", peer.ip(), peer.port());
        let (ended, info) = super::http::serve(tls, &shown, shared.backend.name());
        return log(Record {
            info: Some(info),
            problem: ended.result.as_ref().err().map(super::said),
            requests: Some(ended.requests),
            ..Record::default()
        });
    }
    if banner {
        session.greet();
    }
    let ended = smtp_server::drive(&mut session, &mut tls);
    // Logged before QUIT is answered, so a client's next connection comes after this line.
    log(Record {
        info: Some(tls.info()),
        problem: stopped_why(&ended),
        ..Record::of_session(&mut session)
    });
    if smtp_server::flush(&mut session, &mut tls).is_ok() && matches!(ended, Ok(Stop::Quit)) {
        let _ = tls.shutdown();
    }
}

/// Why a session ended otherwise than by QUIT, for the log.
fn stopped_why(ended: &std::io::Result<Stop>) -> Option<String> {
    match ended {
        Ok(Stop::Quit) => None,
        Ok(Stop::Close(why)) => Some((*why).to_owned()),
        Ok(Stop::StartTls { .. }) => Some("STARTTLS again under TLS".into()),
        Err(e) => Some(super::said(e)),
    }
}
