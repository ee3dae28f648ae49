//! `tlsresume probe`: connects to a server several times sharing one session cache, prints one
//! Exim-style line per connection and a summary of what resumed and why not.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use serde_json::json;
use tlsresume::contract::ClientContract;
use tlsresume::contract::ClientOffer;
use tlsresume::smtp::fastopen::{FastOpenReport, KernelSetting};
use tlsresume::smtp::{
    Client as SmtpClient, ClientConfig, Credentials, Delivery, EhloCache, EhloStore, FastOpen,
    FastOpenStream, MemoryEhloStore, Message, NoTls, Start, StartTls, TlsUpgrade, UpgradeContext,
    Verdict,
};
use tlsresume::{
    BackendKind, CacheEntry, ClientContext, ClientParams, ClientSettings, Deadline, Error,
    ErrorKind, HostList, ManualClock, MemoryStore, NoOffer, OcspMode, ProtocolVersion, Resumption,
    SessionInfo, SharedClock, TlsStream, TlsaRecord, Transport, VerifiedBy, VerifyMode,
};
use tlsresume_compare::Pki;

use super::{log_line, StartProtocol, Wire};
use tlsresume::smtp::session::{self as smtp_session, ClientSession, Goal};

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
each connection that did not resume, why: no ticket was issued, the server refused the offered \
session, the stored session expired, the cache key changed (and which input), a TLS 1.3 ticket \
was used up, or the policy forbids it. With --json, one JSON object per connection (with \
why_not_resumed) and a final {\"summary\": ...} object.\n\n\
Exit status: 0 when every connection succeeded (resumed or not), 1 when one failed, 2 on bad \
arguments.\n\n\
Example: tlsresume probe 127.0.0.1:8465 --backend gnutls --count 3\n\n\
With a test message and early pipelining (the second line shows L* early=EHLO,STARTTLS):\n  \
tlsresume probe 127.0.0.1:8025 --starttls smtp --pipe-connect --mail-from a@example.test --rcpt-to b@example.test"
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
    /// PEM file of trust anchors (default: the built-in TEST CA, tests/pki/ca.pem, whose
    /// private key is public: trusting it proves nothing about a real server).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Verify the certificate but do not fail when it does not verify (Exim's
    /// tls_try_verify_hosts): CV=no is reported and sessions are stored with verify-override.
    #[arg(long)]
    pub insecure: bool,
    /// PEM file of the certificate (chain) to present when the server asks for one (Exim's
    /// transport tls_certificate); its key from --client-key, or from the same file.
    #[arg(long, value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// PEM file of --client-cert's private key (Exim's transport tls_privatekey).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Keep the session cache in FILE (created with mode 0600, rewritten atomically), so
    /// sessions are also shared between runs. OpenSSL and GnuTLS sessions survive the process;
    /// rustls keeps its sessions in memory, so with rustls only connections of one run resume.
    /// A corrupt file is an error, never overwritten.
    #[arg(long, value_name = "FILE")]
    pub cache: Option<PathBuf>,
    /// Resumption policy: exim (report as Exim does, known issues included) or hardened (each
    /// known issue fixed). Default here: exim, since this command is Exim's test bench; the
    /// library's default (ResumptionPolicy::default()) is hardened.
    #[arg(long, value_name = "POLICY", default_value = "exim")]
    pub policy: String,
    /// Allow only this TLS version: 1.2 or 1.3 (default: both).
    #[arg(long, value_name = "VERSION")]
    pub tls: Option<String>,
    /// The cipher suites offered, in preference order: IANA names separated by ':' (Exim's
    /// tls_require_ciphers), e.g. TLS_AES_256_GCM_SHA384:TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.
    /// A TLS version the list names no suite for is off; a suite the backend's library cannot
    /// use is refused at start, naming what it can. Default: the library's own.
    #[arg(long, value_name = "LIST")]
    pub ciphers: Option<String>,
    /// OCSP stapling: off, request (report the status, OCSP= in each line) or require.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = OcspArg::Off)]
    pub ocsp: OcspArg,
    /// Name sent in EHLO.
    #[arg(long, value_name = "NAME", default_value = "probe.tlsresume.test")]
    pub ehlo: String,
    /// Seconds to wait for the server on each step before the connection fails.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
    /// Seconds a whole connection may take (connect to QUIT), however the server paces its
    /// bytes: --timeout is per read and restarts with each byte, so a server answering a few
    /// bytes a second would hold the probe for ever. Default: twice --timeout. Not applied to
    /// a test message over STARTTLS (--mail-from with --starttls), where the SMTP client's own
    /// per-step timeouts apply.
    #[arg(long, value_name = "SECONDS")]
    pub deadline: Option<u64>,
    /// Exim host list of the servers this client resumes with (Exim's transport option
    /// tls_resumption_hosts), e.g. '!192.0.2.1'; with others it asks for no ticket and
    /// offers no session. Default: every server.
    #[arg(long, value_name = "LIST")]
    pub resumption_hosts: Option<String>,
    /// Move the probe's clock forward by SECONDS before each connection after the first
    /// (the client's view of time only; the server's clock is its own), to see what the
    /// client does with an older stored session, e.g. 7201 to pass a 2 h ticket lifetime.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub advance: u64,
    /// Print one JSON object per line instead of text: one per connection (the fields of the
    /// text line, and why it did not resume), then {"summary": {...}}; the session cache's
    /// notices (a corrupt entry removed, writes failing) as {"notice": TEXT, "level": ...}.
    #[arg(long)]
    pub json: bool,
    /// SMTP in clear, no TLS at all (needs --mail-from and --rcpt-to): to see pipelining and
    /// early pipelining without TLS.
    #[arg(long, conflicts_with = "starttls")]
    pub plain: bool,
    /// Early pipelining (Exim's PIPECONNECT, needs --mail-from and --rcpt-to): remember the
    /// server's EHLO response when it offers PIPELINING and PIPECONNECT, and on the next
    /// connection send EHLO (and STARTTLS, or the message's MAIL, RCPT and DATA/BDAT) before
    /// the banner arrives. The EHLO cache lives in memory for the run, in --cache FILE across
    /// runs; entries expire after 7 days.
    #[arg(long)]
    pub pipe_connect: bool,
    /// Send a small test message from ADDR on each connection (as swaks does), through the
    /// SMTP client: MAIL, RCPT and DATA (or BDAT when the server offers CHUNKING) pipelined
    /// when the server offers PIPELINING. Each line then says what was sent early, how many
    /// times the client waited for the server before DATA was accepted, Exim's L field (L*
    /// early pipelining used, L pipelining used) and the server's final reply (C=).
    #[arg(long, value_name = "ADDR")]
    pub mail_from: Option<String>,
    /// Recipient of the test message; repeat for more.
    #[arg(long, value_name = "ADDR")]
    pub rcpt_to: Vec<String>,
    /// Send the test message with DATA even when the server offers CHUNKING (BDAT).
    #[arg(long)]
    pub no_chunking: bool,
    /// SMTP AUTH (PLAIN, else LOGIN) before the test message, under TLS only (refused in
    /// clear, nothing sent), with the first `user:password` line of FILE. Each line then
    /// says A=PLAIN or A=LOGIN.
    #[arg(long, value_name = "FILE", requires = "mail_from")]
    pub auth_file: Option<PathBuf>,
    /// TCP Fast Open (RFC 7413): hand the first bytes to the kernel with the connect - the
    /// commands sent early with --pipe-connect, or the TLS ClientHello with TLS-on-connect -
    /// so that with a cookie from an earlier connection they travel in the SYN. Each line then
    /// ends with fastopen=syn-data (they did), no-cookie (the SYN asked for one), no-data
    /// (nothing to send before the server speaks) or refused (why: the kernel's
    /// net.ipv4.tcp_fastopen, which must allow clients, or the server or the path). A
    /// refusal never fails the connection.
    #[arg(long)]
    pub fastopen: bool,
    /// A TLSA record of the server, 'USAGE SELECTOR MATCHING HEX' (e.g. '3 1 1 8f3c...';
    /// repeatable): verify the server by DANE (RFC 7672) instead of --ca. DANE-TA(2) and
    /// DANE-EE(3) records are used; when none of those given is usable, TLS goes on without
    /// authentication. Each line then says CV=dane (as Exim logs it) and ends with DANE=yes
    /// (and the record that matched) or DANE=no; a chain no record matches fails with 'no
    /// TLSA record matched'.
    #[arg(long, value_name = "RECORD")]
    pub dane: Vec<String>,
}

/// The server's address and the name to send, from HOST:PORT and --sni.
pub fn resolve(target: &str, sni: Option<&str>) -> Result<(SocketAddr, String), Error> {
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

/// The inputs of a connection's cache key that can change between connections of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
struct KeyInputs {
    /// The server's address and port.
    peer: SocketAddr,
    /// The name sent as SNI.
    sni: String,
    /// The host name in the server's EHLO reply (STARTTLS only).
    lb_name: Option<String>,
}

impl KeyInputs {
    /// The first input that differs from `earlier`, as `what: old → new`.
    fn changed_from(&self, earlier: &KeyInputs) -> Option<String> {
        let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
        if self.peer != earlier.peer {
            Some(format!("server address {} → {}", earlier.peer, self.peer))
        } else if self.sni != earlier.sni {
            Some(format!("server name (SNI) {} → {}", earlier.sni, self.sni))
        } else if self.lb_name != earlier.lb_name {
            Some(format!(
                "host name in the server's EHLO reply {} → {}",
                show(&earlier.lb_name),
                show(&self.lb_name)
            ))
        } else {
            None
        }
    }
}

/// One connection's result.
#[derive(Debug)]
struct Outcome {
    /// What the client reported, or why the connection failed.
    result: Result<SessionInfo, String>,
    /// The kind of a failure (`ErrorKind::name`: "io", "certificate", "ocsp", …; "smtp" for
    /// an SMTP-level failure), for `--json`.
    error_kind: Option<&'static str>,
    /// What the client had to offer before the handshake (known once the plain-text phase is
    /// over; `None` when the connection failed before).
    offer: Option<ClientOffer>,
    /// The store's entry under this connection's key before the offer was made (the offer
    /// removes an expired one).
    stored_before: Option<CacheEntry>,
    /// The cache-key inputs of this connection.
    inputs: Option<KeyInputs>,
    /// The probe's clock when the offer was made.
    now: tlsresume::UnixTime,
    /// What the SMTP client did, when it sent a test message.
    smtp: Option<SmtpReport>,
    /// What became of TCP Fast Open (`--fastopen`).
    fast_open: Option<FastOpen>,
}

/// What the SMTP client reported for one connection's test message.
#[derive(Debug)]
struct SmtpReport {
    /// Commands sent before the banner.
    sent_early: Vec<&'static str>,
    /// Commands sent right after the TLS handshake, from the cached under-TLS EHLO response.
    sent_early_tls: Vec<&'static str>,
    /// Times the client waited for the server before DATA was accepted.
    waits_before_data: u32,
    /// Exim's client `L` field.
    l_field: Option<&'static str>,
    /// The AUTH mechanism used.
    auth: Option<&'static str>,
    /// Whether MAIL/RCPT/DATA were pipelined; whether BDAT was used.
    pipelining: bool,
    chunking: bool,
    /// What happened to the cached EHLO response, per phase (`clear: stored`).
    cache: Vec<String>,
    /// The server's final reply to the message.
    reply: String,
    /// From the start of the connection to DATA accepted, and to the final reply.
    time_to_data: Duration,
    time_to_reply: Duration,
}

impl SmtpReport {
    fn new(d: &Delivery) -> Self {
        Self {
            sent_early: d.sent_early.clone(),
            sent_early_tls: d.sent_early_tls.clone(),
            waits_before_data: d.waits_before_data,
            l_field: d.l_field(),
            auth: d.auth.map(|m| m.name()),
            pipelining: d.pipelining,
            chunking: d.chunking,
            cache: d
                .cache
                .iter()
                .map(|(phase, v)| format!("{phase}: {}", verdict(v)))
                .collect(),
            reply: d.reply.to_string(),
            time_to_data: d.time_to_data,
            time_to_reply: d.time_to_reply,
        }
    }

    fn early(&self) -> bool {
        !self.sent_early.is_empty() || !self.sent_early_tls.is_empty()
    }

    /// ` L* early=EHLO,STARTTLS tls-early=EHLO,MAIL,RCPT,BDAT waits-before-data=2 C="250 OK"`.
    fn text(&self) -> String {
        let list = |v: &[&str]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(",")
            }
        };
        let mut t = String::new();
        if let Some(l) = self.l_field {
            t.push_str(&format!(" {l}"));
        }
        if let Some(mechanism) = self.auth {
            t.push_str(&format!(" A={mechanism}"));
        }
        t.push_str(&format!(" early={}", list(&self.sent_early)));
        if !self.sent_early_tls.is_empty() {
            t.push_str(&format!(" tls-early={}", list(&self.sent_early_tls)));
        }
        t.push_str(&format!(
            " waits-before-data={} C=\"{}\"",
            self.waits_before_data,
            self.reply.replace('"', "'")
        ));
        t
    }

    fn json(&self, v: &mut serde_json::Value) {
        v["l"] = json!(self.l_field);
        v["early_pipelining"] = json!(self.early());
        v["sent_early"] = json!(self.sent_early);
        v["sent_early_tls"] = json!(self.sent_early_tls);
        v["waits_before_data"] = json!(self.waits_before_data);
        v["pipelining"] = json!(self.pipelining);
        v["chunking"] = json!(self.chunking);
        v["auth"] = json!(self.auth);
        v["ehlo_cache"] = json!(self.cache);
        v["reply"] = json!(self.reply);
        v["time_to_data_ms"] = json!(self.time_to_data.as_secs_f64() * 1e3);
        v["time_to_reply_ms"] = json!(self.time_to_reply.as_secs_f64() * 1e3);
    }
}

/// ` fastopen=syn-data` (or `refused (why)`) for a text line; nothing without `--fastopen`.
fn fast_open_text(fast_open: Option<&FastOpen>) -> String {
    fast_open.map_or_else(String::new, |f| format!(" fastopen={f}"))
}

/// `fastopen` (the outcome's name), `fastopen_why` (a refusal's reason) and
/// `fastopen_syn_bytes` in a JSON line, with `--fastopen`.
fn fast_open_json(fast_open: Option<&FastOpen>, v: &mut serde_json::Value) {
    let Some(f) = fast_open else { return };
    v["fastopen"] = json!(f.name());
    v["fastopen_why"] = json!(match f {
        FastOpen::Refused(why) => Some(why.to_string()),
        _ => None,
    });
    v["fastopen_syn_bytes"] = json!(match f {
        FastOpen::SynData { bytes } => *bytes,
        _ => 0,
    });
}

/// How many connections sent their first bytes in the SYN; `None` when Fast Open was not
/// tried on any.
fn syn_data_count(fast_open: &[&FastOpen]) -> Option<usize> {
    (!fast_open.is_empty()).then(|| fast_open.iter().filter(|f| f.syn_data()).count())
}

/// `; data in the SYN on N` for a summary line, when Fast Open was tried.
fn syn_data_text(count: Option<usize>) -> String {
    count.map_or_else(String::new, |n| format!("; data in the SYN on {n}"))
}

/// A cache verdict in words.
fn verdict(v: &Verdict) -> String {
    match v {
        Verdict::Keep => "kept".into(),
        Verdict::Stored => "stored".into(),
        Verdict::Rewritten => "rewritten".into(),
        Verdict::Deleted(why) => format!("deleted ({why:?})"),
        Verdict::Nothing => "nothing".into(),
    }
}

/// The test message and the SMTP client, when `--mail-from` is given.
struct Mail {
    client: SmtpClient,
    from: String,
    to: Vec<String>,
    ehlo: String,
}

impl Mail {
    /// Connection `n`'s message (1-based).
    fn message(&self, n: u32) -> Message {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let content = format!(
            "From: <{}>\r\nTo: {}\r\nSubject: tlsresume probe, connection {n}\r\n\
             Message-ID: <{stamp}.{}.{n}@{}>\r\n\r\nA test message from tlsresume probe.\r\n",
            self.from,
            self.to
                .iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(", "),
            std::process::id(),
            self.ehlo,
        );
        Message {
            mail_from: self.from.clone(),
            rcpt_to: self.to.clone(),
            content: content.into_bytes(),
            dsn: Default::default(),
        }
    }
}

/// An envelope address from the command line, refused before any connection as the SMTP
/// client refuses it (no CR, LF or other control character, no angle bracket, RFC 5321
/// lengths; one that is not ASCII goes only to a server offering SMTPUTF8): it goes into
/// `MAIL FROM:<…>` or `RCPT TO:<…>` as it is.
fn address(option: &str, addr: &str) -> Result<String, Error> {
    tlsresume::smtp::check_forward_path(addr)
        .map_err(|e| Error::Config(format!("{option} '{}': {e}", addr.escape_debug())))?;
    Ok(addr.to_owned())
}

/// The SMTP client of `--mail-from`, `--pipe-connect`, `--plain`; `None` when the probe only
/// says EHLO and QUIT.
fn mail(
    args: &ProbeArgs,
    ehlo_store: Arc<dyn EhloStore>,
    clock: SharedClock,
    timeout: Duration,
) -> Result<Option<Mail>, Error> {
    let Some(from) = &args.mail_from else {
        if args.pipe_connect || args.plain || !args.rcpt_to.is_empty() || args.no_chunking {
            return Err(Error::Config(
                "--pipe-connect, --plain, --rcpt-to and --no-chunking send a test message: give \
                 --mail-from ADDR and --rcpt-to ADDR"
                    .into(),
            ));
        }
        return Ok(None);
    };
    if args.rcpt_to.is_empty() {
        return Err(Error::Config("--mail-from needs --rcpt-to ADDR".into()));
    }
    let from = if from.is_empty() {
        String::new() // the null sender, as for a bounce
    } else {
        address("--mail-from", from)?
    };
    let to = args
        .rcpt_to
        .iter()
        .map(|r| address("--rcpt-to", r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config =
        ClientConfig::new(args.ehlo.as_str()).map_err(|e| Error::Config(format!("--ehlo: {e}")))?;
    if args.pipe_connect {
        config.hosts_pipe_connect = HostList::any();
    }
    if args.fastopen {
        config.hosts_try_fastopen = HostList::any();
    }
    config.ehlo_cache = EhloCache::new(ehlo_store, clock);
    config.chunking = !args.no_chunking;
    config.timeout = timeout;
    if let Some(path) = &args.auth_file {
        config.auth = Some(credentials(path)?);
    }
    Ok(Some(Mail {
        client: SmtpClient::new(config),
        from,
        to,
        ehlo: args.ehlo.clone(),
    }))
}

/// The first `user:password` line of `--auth-file`.
fn credentials(path: &std::path::Path) -> Result<Credentials, Error> {
    let bad = |why: String| Error::Config(format!("--auth-file {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let line = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .ok_or_else(|| bad("no user:password line".into()))?;
    let (user, password) = line
        .split_once(':')
        .ok_or_else(|| bad("expected user:password".into()))?;
    Credentials::new(user, password).map_err(|e| bad(e.to_string()))
}

/// Runs `probe`; `Ok(true)` when every connection succeeded.
pub fn run(args: &ProbeArgs) -> Result<bool, Error> {
    if args.json {
        super::notices_as_json();
    }
    let kind = super::backend(args.backend.as_deref())?;
    let (peer, server_name) = resolve(&args.target, args.sni.as_deref())?;
    let dane = args
        .dane
        .iter()
        .map(|text| {
            text.parse::<TlsaRecord>()
                .map_err(|e| Error::Config(format!("--dane '{text}': {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
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
    if let Some(cert) = &args.client_cert {
        let key = args.client_key.as_ref().unwrap_or(cert);
        settings.identity = Some(tlsresume::Identity::from_pem_files(cert, key)?);
    }
    settings.resumption = super::policy(&args.policy)?.policy();
    if let Some(list) = &args.resumption_hosts {
        let hosts: HostList = list
            .parse()
            .map_err(|e| Error::Config(format!("--resumption-hosts: {e}")))?;
        settings.resumption = settings.resumption.with_client_hosts(hosts);
    }
    let clock = Arc::new(ManualClock::starting_now());
    settings.clock = clock.clone();
    settings.versions = super::versions(args.tls.as_deref())?;
    settings.ciphers = args.ciphers.as_deref().map(str::parse).transpose()?;
    let (store, ehlo_store): Stores = match &args.cache {
        Some(path) => open_cache(path)?,
        None => (
            Arc::new(MemoryStore::new(64)),
            Arc::new(MemoryEhloStore::default()),
        ),
    };
    // Processes sharing the file share the key that seals the sessions in it (the disk
    // store keeps it beside the file).
    settings.store = store;
    let wire = Wire::from_options(args.starttls, args.plain);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let deadline = Duration::from_secs(args.deadline.unwrap_or(2 * args.timeout).max(1));
    let mail = mail(args, ehlo_store, clock.clone(), timeout)?;
    if args.fastopen {
        super::note_fast_open_setting("probe", KernelSetting::allows_client);
    }
    if wire == Wire::Plain {
        return Ok(run_plain(args, &server_name, peer, &mail, &clock));
    }
    let client = tlsresume::backends::client(kind, settings.clone())?;
    let h = format!("H={server_name} [{}]:{}", peer.ip(), peer.port());
    let mut outcomes: Vec<Outcome> = Vec::new();
    for n in 0..args.count {
        if n > 0 && args.advance > 0 {
            clock.advance(Duration::from_secs(args.advance));
        }
        let target = Target {
            client: &client,
            settings: &settings,
            kind,
            peer,
            server_name: &server_name,
            dane: &dane,
            fastopen: args.fastopen,
            timeout,
            deadline,
        };
        let outcome = match &mail {
            Some(mail) => send(&target, wire, mail, n + 1),
            None => connect(&target, wire, &args.ehlo),
        };
        outcomes.push(outcome);
        let i = outcomes.len() - 1;
        let why = match &outcomes[i].result {
            Ok(info) if !info.resumed => Some(why_not(kind, &outcomes, i, info)),
            _ => None,
        };
        let outcome = &outcomes[i];
        if args.json {
            log_line(&connection_json(
                i + 1,
                &server_name,
                peer,
                outcome,
                settings.ocsp,
                why.as_deref(),
            ));
            continue;
        }
        let line = match &outcome.result {
            Ok(info) => {
                let mut line = format!(
                    "{h} X={} CV={} resumption={}",
                    info.exim_x(),
                    exim_cv(info),
                    info.resumption
                );
                if !dane.is_empty() {
                    line.push_str(&dane_text(&info.verified_by));
                }
                if settings.ocsp != OcspMode::Off {
                    line.push_str(&format!(" OCSP={}", info.ocsp));
                    if let Some(why) = &info.ocsp_detail {
                        line.push_str(&format!(": {why}"));
                    }
                }
                if let Some(smtp) = &outcome.smtp {
                    line.push_str(&smtp.text());
                }
                line.push_str(&fast_open_text(outcome.fast_open.as_ref()));
                line
            }
            Err(e) => format!("{h} failed: {e}"),
        };
        log_line(&line);
    }
    summary(kind, wire, &outcomes, args.json);
    Ok(outcomes.iter().all(|o| o.result.is_ok()))
}

/// `probe --plain`: the test message in clear on each connection, one line each, a summary.
fn run_plain(
    args: &ProbeArgs,
    server_name: &str,
    peer: SocketAddr,
    mail: &Option<Mail>,
    clock: &ManualClock,
) -> bool {
    let Some(mail) = mail else {
        return false; // `mail()` refuses --plain without a message
    };
    let h = format!("H={server_name} [{}]:{}", peer.ip(), peer.port());
    let (mut failed, mut early, mut messages) = (0usize, 0usize, 0usize);
    let mut fast_open = Vec::new();
    for n in 1..=args.count {
        if n > 1 && args.advance > 0 {
            clock.advance(Duration::from_secs(args.advance));
        }
        let sent = mail
            .client
            .connect::<NoTls>(peer, Some(server_name), None, &mail.message(n));
        let mut v = json!({
            "connection": n,
            "host": server_name,
            "address": peer.ip().to_string(),
            "port": peer.port(),
        });
        let line = match sent {
            Ok(d) => {
                let report = SmtpReport::new(&d);
                early += usize::from(report.early());
                messages += 1;
                report.json(&mut v);
                let tried = args.fastopen.then_some(&d.fast_open);
                fast_open_json(tried, &mut v);
                fast_open.extend(tried.cloned());
                format!("{h} plain{}{}", report.text(), fast_open_text(tried))
            }
            Err(e) => {
                failed += 1;
                v["error"] = json!(e.to_string());
                format!("{h} failed: {e}")
            }
        };
        log_line(&if args.json { v.to_string() } else { line });
    }
    let n = args.count as usize;
    let syn_data = syn_data_count(&fast_open.iter().collect::<Vec<_>>());
    if args.json {
        log_line(
            &json!({"summary": {
                "connections": n,
                "transport": Wire::Plain.name(),
                "failed": failed,
                "early_pipelining": early,
                "messages": messages,
                "fastopen_syn_data": syn_data,
            }})
            .to_string(),
        );
    } else {
        log_line(&format!(
            "summary: {n} connection{} (plain SMTP): {messages} message{} accepted, early pipelining on {early}, {failed} failed{}",
            if n == 1 { "" } else { "s" },
            if messages == 1 { "" } else { "s" },
            syn_data_text(syn_data)
        ));
    }
    failed == 0
}

/// The JSON object of one connection: the text line's fields, and why it did not resume.
fn connection_json(
    n: usize,
    server_name: &str,
    peer: SocketAddr,
    outcome: &Outcome,
    ocsp: OcspMode,
    why_not: Option<&str>,
) -> String {
    let mut v = json!({
        "connection": n,
        "host": server_name,
        "address": peer.ip().to_string(),
        "port": peer.port(),
    });
    match &outcome.result {
        Ok(info) => {
            v["x"] = json!(info.exim_x());
            v["cipher"] = json!(info.cipher.exim);
            v["cipher_iana"] = json!(info.cipher.iana);
            v["tls"] = json!(info.protocol.short());
            v["cv"] = json!(exim_cv(info));
            v["verification"] = json!(info.verification.as_str());
            v["resumption"] = json!(info.resumption.bits());
            v["resumption_hex"] = json!(format!("0x{:02X}", info.resumption.bits()));
            v["resumption_text"] = json!(info.resumption.describe());
            v["resumed"] = json!(info.resumed);
            v["ticket_lifetime_seconds"] = json!(info.ticket_lifetime.map(|d| d.as_secs()));
            if ocsp != OcspMode::Off {
                v["ocsp"] = json!(info.ocsp.code());
                v["ocsp_text"] = json!(info.ocsp.describe());
            }
            v["verified_by"] = json!(info.verified_by.as_str());
            if let Some(authority) = info.verified_by.dane() {
                v["dane_record"] = json!(authority.record.to_string());
                v["dane_depth"] = json!(authority.depth);
            }
            v["why_not_resumed"] = json!(why_not);
            v["no_offer"] = json!(info.no_offer.map(NoOffer::name));
            if let Some(smtp) = &outcome.smtp {
                smtp.json(&mut v);
            }
            fast_open_json(outcome.fast_open.as_ref(), &mut v);
        }
        Err(e) => {
            v["error"] = json!(e);
            v["error_kind"] = json!(outcome.error_kind.unwrap_or("smtp"));
        }
    }
    v.to_string()
}

/// Exim's `CV=` for a client: `dane` when a TLSA record authenticated the server, else `yes`
/// or `no`.
fn exim_cv(info: &SessionInfo) -> &'static str {
    if info.verified_by.dane().is_some() {
        "dane"
    } else {
        info.verification.exim_cv()
    }
}

/// ` DANE=yes (TLSA 3 1 1 8f3c... at depth 0)` or ` DANE=no`: `$tls_out_dane`, with the
/// record that authenticated the server.
fn dane_text(verified_by: &VerifiedBy) -> String {
    match verified_by.dane() {
        Some(authority) => format!(" DANE=yes ({authority})"),
        None => " DANE=no".into(),
    }
}

/// A probe's connection: TCP (or Fast Open) under the connection's deadline.
type Conn = Deadline<Box<dyn Transport>>;

/// The server and the TLS client of a run.
struct Target<'a> {
    client: &'a Arc<dyn ClientContext>,
    settings: &'a ClientSettings,
    kind: BackendKind,
    peer: SocketAddr,
    server_name: &'a str,
    /// `--dane`: the server's TLSA records (empty: no DANE).
    dane: &'a [TlsaRecord],
    /// `--fastopen`.
    fastopen: bool,
    /// `--timeout`: each read and write.
    timeout: Duration,
    /// `--deadline`: the whole connection.
    deadline: Duration,
}

impl Target<'_> {
    /// The parameters of a connection (the EHLO host name with STARTTLS).
    fn params(&self, lb_name: Option<String>) -> ClientParams {
        let mut params = ClientParams::new(self.server_name.to_owned(), self.peer);
        params.lb_name = lb_name;
        if !self.dane.is_empty() {
            params = params.dane(self.dane.to_vec());
        }
        params
    }

    /// An outcome not filled in yet.
    fn outcome(&self) -> Outcome {
        Outcome {
            result: Err(String::new()),
            error_kind: None,
            offer: None,
            stored_before: None,
            inputs: None,
            now: self.settings.clock.now(),
            smtp: None,
            fast_open: None,
        }
    }

    /// Notes, just before the handshake, what the client is about to offer with `params`.
    fn note_offer(&self, params: &ClientParams, outcome: &mut Outcome) {
        // The decision the backend is about to make, for "why not resumed" (the same store and
        // rules; GnuTLS leaves expiry to the policy). The entry is read first: the offer
        // removes an expired one.
        let key = self.settings.cache_key(self.kind, params);
        outcome.stored_before = self.settings.store.get(&key).ok().flatten();
        outcome.inputs = Some(KeyInputs {
            peer: params.peer,
            sni: params.server_name.clone(),
            lb_name: params.lb_name.clone(),
        });
        outcome.offer = Some(self.settings.offer(
            self.kind,
            params,
            self.kind != BackendKind::Gnutls,
        ));
    }

    /// A TCP connection with the probe's timeouts, under the connection's deadline (from
    /// now); with `--fastopen`, made by its first write (the ClientHello, or the first SMTP
    /// command) through Fast Open, with where its outcome appears.
    fn tcp(&self) -> Result<(Conn, Option<FastOpenReport>), String> {
        let connect = |e: std::io::Error| format!("connect: {e}");
        let timeout = self.timeout;
        let (tcp, report): (Box<dyn Transport>, _) = if self.fastopen {
            let tcp = FastOpenStream::new(self.peer, timeout, true).map_err(connect)?;
            let report = tcp.report();
            (Box::new(tcp), Some(report))
        } else {
            let tcp = TcpStream::connect_timeout(&self.peer, timeout).map_err(connect)?;
            let _ = tcp.set_read_timeout(Some(timeout));
            let _ = tcp.set_write_timeout(Some(timeout));
            let _ = tcp.set_nodelay(true);
            (Box::new(tcp), None)
        };
        Ok((Deadline::new(tcp, self.deadline, "connection"), report))
    }
}

/// STARTTLS for the SMTP client: the backend's handshake, noting the offer first.
struct ProbeTls<'a> {
    target: &'a Target<'a>,
    upgrade: TlsUpgrade,
    outcome: RefCell<Outcome>,
}

impl StartTls<TcpStream> for ProbeTls<'_> {
    type Stream = Box<dyn TlsStream>;
    type Error = Error;

    fn upgrade(
        &self,
        plain: TcpStream,
        context: &UpgradeContext<'_>,
    ) -> Result<Self::Stream, Error> {
        let params = self.upgrade.params(context)?;
        self.target
            .note_offer(&params, &mut self.outcome.borrow_mut());
        let upgraded = StartTls::<TcpStream>::upgrade(&self.upgrade, plain, context);
        if let Err(e) = &upgraded {
            self.outcome.borrow_mut().error_kind = Some(e.kind().name());
        }
        upgraded
    }

    fn session_info(stream: &Self::Stream) -> Option<SessionInfo> {
        Some(stream.info())
    }
}

/// One connection with a test message through the SMTP client: STARTTLS through
/// [`ProbeTls`], or TLS-on-connect with the SMTP client over the TLS stream.
fn send(target: &Target<'_>, wire: Wire, mail: &Mail, n: u32) -> Outcome {
    let message = mail.message(n);
    let peer_name = Some(target.server_name);
    if wire == Wire::Starttls {
        let mut upgrade = TlsUpgrade::new(target.client.clone()).server_name(target.server_name);
        if !target.dane.is_empty() {
            upgrade = upgrade.dane(target.dane.to_vec());
        }
        let tls = ProbeTls {
            target,
            upgrade,
            outcome: RefCell::new(target.outcome()),
        };
        let sent = mail
            .client
            .connect(target.peer, peer_name, Some(&tls), &message);
        let mut outcome = tls.outcome.into_inner();
        outcome.result = match sent {
            Ok(d) => {
                outcome.smtp = Some(SmtpReport::new(&d));
                outcome.fast_open = target.fastopen.then(|| d.fast_open.clone());
                d.tls_info
                    .ok_or_else(|| "the server did not start TLS".to_owned())
            }
            Err(e) => {
                if e.io_error().is_some_and(super::is_timeout) {
                    outcome.error_kind = Some(ErrorKind::Io.name());
                }
                Err(e.to_string())
            }
        };
        return outcome;
    }
    let mut outcome = target.outcome();
    let (tcp, fast_open) = match target.tcp() {
        Ok(tcp) => tcp,
        Err(e) => {
            outcome.result = Err(e);
            outcome.error_kind = Some(ErrorKind::Io.name());
            return outcome;
        }
    };
    let params = target.params(None);
    target.note_offer(&params, &mut outcome);
    let handshake = target.client.connect(Box::new(tcp), &params);
    outcome.fast_open = fast_open.and_then(|r| r.get());
    let mut tls = match handshake {
        Ok(tls) => tls,
        Err(e) => {
            outcome.result = Err(format!("TLS error: {e}"));
            outcome.error_kind = Some(e.kind().name());
            return outcome;
        }
    };
    let sent = mail.client.send::<_, NoTls>(
        target.peer,
        peer_name,
        &mut tls,
        Start::TlsOnConnect,
        None,
        &message,
    );
    outcome.result = match sent {
        Ok(d) => {
            outcome.smtp = Some(SmtpReport::new(&d));
            Ok(tls.info())
        }
        Err(e) => {
            let timeout = e.io_error().is_some_and(super::is_timeout);
            outcome.error_kind = timeout.then_some(ErrorKind::Io.name());
            Err(e.to_string())
        }
    };
    let _ = tls.shutdown();
    outcome
}

/// An SMTP failure in words (a timeout said as the deadline or idle timeout that passed), and
/// its kind for `--json` when it has one: a timeout is I/O; a TLS failure the stream carried
/// (a server that refused this client's certificate after a TLS 1.3 handshake) is its own
/// kind; anything else is SMTP's (`None`).
fn smtp_said(e: &tlsresume::smtp::SendError) -> (String, Option<&'static str>) {
    match e.io_error() {
        Some(io) => {
            let carried = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<Error>())
                .map(|tls| tls.kind().name());
            let timeout = super::is_timeout(io).then_some(ErrorKind::Io.name());
            (super::said(io), timeout.or(carried))
        }
        None => (e.to_string(), None),
    }
}

/// One connection: TCP, the plain-text phase, the handshake, EHLO and QUIT.
fn connect(target: &Target<'_>, wire: Wire, ehlo: &str) -> Outcome {
    let mut outcome = target.outcome();
    let (mut tcp, fast_open) = match target.tcp() {
        Ok(tcp) => tcp,
        Err(e) => {
            outcome.result = Err(e);
            outcome.error_kind = Some(ErrorKind::Io.name());
            return outcome;
        }
    };
    let mut lb_name = None;
    if wire == Wire::Starttls {
        let said = smtp_session::open(&mut ClientSession::new(ehlo, Goal::StartTls), &mut tcp);
        outcome.fast_open = fast_open.as_ref().and_then(FastOpenReport::get);
        match said {
            Ok(opened) => lb_name = opened.lb_name().map(str::to_owned),
            Err(e) => {
                let (said, kind) = smtp_said(&e);
                outcome.result = Err(format!("SMTP before STARTTLS: {said}"));
                outcome.error_kind = kind;
                return outcome;
            }
        }
    }
    let params = target.params(lb_name);
    target.note_offer(&params, &mut outcome);
    let handshake = target.client.connect(Box::new(tcp), &params);
    outcome.fast_open = fast_open.and_then(|r| r.get());
    let mut tls = match handshake {
        Ok(tls) => tls,
        Err(e) => {
            outcome.result = Err(format!("TLS error: {e}"));
            outcome.error_kind = Some(e.kind().name());
            return outcome;
        }
    };
    let banner = wire == Wire::TlsOnConnect;
    let mut session = ClientSession::new(ehlo, Goal::Quit { banner });
    outcome.result = match smtp_session::open(&mut session, tls.as_mut()) {
        Ok(_) => Ok(tls.info()),
        Err(e) => {
            let (said, kind) = smtp_said(&e);
            outcome.error_kind = kind;
            Err(format!("SMTP over TLS: {said}"))
        }
    };
    let _ = tls.shutdown();
    outcome
}

/// Why connection `index` (0-based) did not resume, in plain words, from what the client
/// saw: its bits, its offer decision, and the store before and after.
fn why_not(kind: BackendKind, outcomes: &[Outcome], index: usize, info: &SessionInfo) -> String {
    let Some(this) = outcomes.get(index) else {
        return "unknown".into();
    };
    let Some(offer) = this.offer.as_ref() else {
        return "unknown".into();
    };
    if let Some(entry) = &offer.entry {
        if !info.resumption.contains(Resumption::CLIENT_SUGGESTED) {
            if let Some(n) = used_up_on(outcomes, index) {
                return used_up(n);
            }
            // Why the client withdrew the stored session, as the library's report says.
            return match info.no_offer {
                Some(NoOffer::OtherKey) => "the stored session was sealed under another key \
                    (another process's or another store's); it was left in place"
                    .into(),
                Some(NoOffer::NotHeld) => format!(
                    "the stored session is held by the process that made it: {kind} client \
                     sessions live in memory and do not outlive the process"
                ),
                _ => format!("stored session could not be loaded by the {kind} library"),
            };
        }
        if entry.is_expired(this.now) {
            return format!(
                "the server refused the offered session, which had expired ({}); \
                 the {kind} client offers expired sessions under the exim policy",
                age(entry, this.now)
            );
        }
        return "the server refused the offered session: it no longer accepts the ticket \
                (its ticket key was rotated or lost, e.g. a restart, or it keeps no session cache)"
            .into();
    }
    match info.no_offer.or(offer.no_offer) {
        Some(NoOffer::Expired) => match &this.stored_before {
            Some(entry) => format!(
                "the stored session expired ({}); it was not offered",
                age(entry, this.now)
            ),
            None => NoOffer::Expired.describe().into(),
        },
        Some(NoOffer::NotAllowed) => "the policy forbids it: the client does not resume with \
             this server (not in its resumption hosts or ports); no ticket asked for"
            .into(),
        Some(NoOffer::OcspRequired) => "the policy forbids it: OCSP is required and the stored \
             session was not OCSP-verified, so it is not offered (hardened)"
            .into(),
        Some(NoOffer::Missing) => missing(outcomes, index),
        Some(reason) => reason.describe().into(),
        None => "unknown".into(),
    }
}

/// The connection (1-based) whose TLS 1.3 resumption used the stored ticket up: the newest
/// earlier completed connection, when it resumed on TLS 1.3 and received no new ticket.
fn used_up_on(outcomes: &[Outcome], index: usize) -> Option<usize> {
    let (i, info) = outcomes[..index]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, o)| o.result.as_ref().ok().map(|info| (i, info)))?;
    (info.resumed
        && info.protocol == ProtocolVersion::Tls13
        && !info.resumption.contains(Resumption::SERVER_TICKET))
    .then_some(i + 1)
}

fn used_up(n: usize) -> String {
    format!(
        "the TLS 1.3 ticket was used up on connection {n} (this client uses a ticket once) and \
         the server sent no new one"
    )
}

/// `stored 7300 s ago, lifetime 7200 s`.
fn age(entry: &CacheEntry, now: tlsresume::UnixTime) -> String {
    format!(
        "stored {} s ago, lifetime {} s",
        now.saturating_since(entry.stored_at).as_secs(),
        entry.lifetime_hint.as_secs()
    )
}

/// Why nothing was stored under connection `index`'s key.
fn missing(outcomes: &[Outcome], index: usize) -> String {
    // The newest earlier connection that completed.
    let earlier = outcomes[..index]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, o)| o.result.as_ref().ok().map(|info| (i, o, info)));
    let Some((i, prev, prev_info)) = earlier else {
        return "no stored session yet: nothing was stored before this connection".into();
    };
    let n = i + 1;
    if let (Some(now), Some(then)) = (&outcomes[index].inputs, &prev.inputs) {
        if let Some(change) = now.changed_from(then) {
            return format!(
                "the cache key changed since connection {n}: {change}, so its session is not \
                 looked up"
            );
        }
    }
    if !prev_info.resumption.contains(Resumption::SERVER_TICKET) {
        if used_up_on(outcomes, index).is_some() {
            return used_up(n);
        }
        return format!("no stored session: no ticket was issued on connection {n}");
    }
    format!("no stored session: the ticket of connection {n} was not kept")
}

/// Prints the summary lines.
fn summary(kind: BackendKind, wire: Wire, outcomes: &[Outcome], as_json: bool) {
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
    let n = outcomes.len();
    let smtp: Vec<&SmtpReport> = outcomes.iter().filter_map(|o| o.smtp.as_ref()).collect();
    let early = smtp.iter().filter(|r| r.early()).count();
    let fast_open: Vec<&FastOpen> = outcomes
        .iter()
        .filter_map(|o| o.fast_open.as_ref())
        .collect();
    let syn_data = syn_data_count(&fast_open);
    if as_json {
        let (hint_seconds, hint_from) = match (hint, stored) {
            (Some(d), _) => (Some(d.as_secs()), "ticket"),
            (None, Some(d)) => (Some(d.as_secs()), "stored session"),
            (None, None) => (None, "none received"),
        };
        log_line(
            &json!({"summary": {
                "connections": n,
                "backend": kind.name(),
                "transport": wire.name(),
                "resumed": resumed,
                "full": n - resumed - failed,
                "failed": failed,
                "ticket_lifetime_seconds": hint_seconds,
                "ticket_lifetime_from": hint_from,
                "messages": smtp.len(),
                "early_pipelining": early,
                "fastopen_syn_data": syn_data,
            }})
            .to_string(),
        );
        return;
    }
    let hint = match (hint, stored) {
        (Some(d), _) => format!("{}s", d.as_secs()),
        (None, Some(d)) => format!("{}s (of the stored session; no new ticket)", d.as_secs()),
        (None, None) => "none received".into(),
    };
    let mail = if smtp.is_empty() {
        String::new()
    } else {
        format!(
            "; {} message{} accepted, early pipelining on {early}",
            smtp.len(),
            if smtp.len() == 1 { "" } else { "s" }
        )
    };
    log_line(&format!(
        "summary: {n} connection{} ({kind} client, {}): {resumed} resumed, {} full, {failed} failed; ticket lifetime hint: {hint}{mail}{}",
        if n == 1 { "" } else { "s" },
        wire.name(),
        n - resumed - failed,
        syn_data_text(syn_data)
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

/// The stores of `--cache FILE`: TLS sessions and EHLO responses.
type Stores = (Arc<dyn tlsresume::SessionStore>, Arc<dyn EhloStore>);

/// The on-disk cache: sessions and EHLO responses in one SQLite file, shared safely by
/// concurrent probes (WAL mode).
#[cfg(feature = "stores")]
fn open_cache(path: &std::path::Path) -> Result<Stores, tlsresume::Error> {
    let store = Arc::new(tlsresume::stores::DiskStore::open(path)?);
    Ok((store.clone(), store))
}

/// Without the `stores` feature there is no on-disk cache.
#[cfg(not(feature = "stores"))]
fn open_cache(path: &std::path::Path) -> Result<Stores, tlsresume::Error> {
    Err(tlsresume::Error::Config(format!(
        "--cache {}: this build has no on-disk store (enable the cargo feature \"stores\")",
        path.display()
    )))
}
