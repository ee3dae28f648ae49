//! The SMTP client: one message or several per connection, early pipelining when allowed,
//! RFC 2920 pipelining whenever offered, SIZE declared, STARTTLS through a caller-supplied
//! upgrade.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tlsresume_core::{HostList, SessionInfo, SystemClock};

use crate::ehlo::{
    EhloCache, EhloEntry, EhloFeatures, EhloKey, EhloResponse, MemoryEhloStore, Observed, Phase,
    Verdict,
};

use crate::conn::{Awaiting, Conn};
pub use crate::error::{ErrorClass, SendError, Stage};
use crate::fastopen::{FastOpen, FastOpenStream};
use crate::reply::Reply;
use crate::server::Deadlines;

/// What the SMTP dialogue knows when TLS starts: the inputs of a TLS session cache key that
/// only the SMTP layer sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpgradeContext<'a> {
    /// The server's address and port.
    pub peer: SocketAddr,
    /// The server's host name as the caller gave it (for SNI and certificate checks when the
    /// upgrade has no name of its own), if any.
    pub peer_name: Option<&'a str>,
    /// The host name from the first line of the server's EHLO response, when it gave one.
    /// Exim keys its client session cache on it (the "load balancer" name: a pool of servers
    /// behind one address that answer with different names keep separate sessions).
    pub ehlo_host: Option<&'a str>,
}

impl<'a> UpgradeContext<'a> {
    /// The context of a connection to `peer`.
    pub fn new(peer: SocketAddr) -> Self {
        Self {
            peer,
            peer_name: None,
            ehlo_host: None,
        }
    }

    /// With the server's host name as the caller knows it.
    pub fn peer_name(mut self, name: Option<&'a str>) -> Self {
        self.peer_name = name;
        self
    }

    /// With the host name from the server's EHLO response.
    pub fn ehlo_host(mut self, name: Option<&'a str>) -> Self {
        self.ehlo_host = name;
        self
    }
}

/// Turns the plain connection into a TLS one after the server's `220` to STARTTLS.
///
/// Any tlsresume backend's client plugs in through [`crate::TlsUpgrade`] (its `connect` over
/// the plain stream, with session resumption from its own store), as does any other TLS
/// library.
pub trait StartTls<S> {
    /// The encrypted stream.
    type Stream: Read + Write;
    /// Why the handshake failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Runs the TLS handshake over `plain`; `context` carries what the SMTP dialogue learnt
    /// (the EHLO host name, for the session cache key).
    fn upgrade(&self, plain: S, context: &UpgradeContext<'_>) -> Result<Self::Stream, Self::Error>;

    /// The class of a failed handshake ([`SendError::class`]). Default
    /// [`ErrorClass::Protocol`]; [`crate::TlsUpgrade`] tells a certificate failure
    /// ([`ErrorClass::Certificate`]) and I/O ([`ErrorClass::Temporary`]) apart.
    fn classify(_error: &Self::Error) -> ErrorClass {
        ErrorClass::Protocol
    }

    /// What the TLS session was, read at the end of the dialogue (TLS 1.3 tickets arrive
    /// after the handshake), for [`Delivery::tls_info`]. Default: nothing known.
    fn session_info(_stream: &Self::Stream) -> Option<SessionInfo> {
        None
    }
}

/// The [`StartTls`] of a client that never starts TLS (for [`Client::send`] without TLS).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTls;

impl<S: Read + Write> StartTls<S> for NoTls {
    type Stream = S;
    type Error = io::Error;

    fn upgrade(&self, _plain: S, _context: &UpgradeContext<'_>) -> Result<S, io::Error> {
        Err(io::Error::other("no TLS configured"))
    }
}

/// Whether the connection starts in clear or is TLS from its first byte (port 465).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// SMTP in clear, STARTTLS if an upgrade is given.
    Clear,
    /// The stream given is TLS already (TLS-on-connect); its EHLO response is cached as the
    /// under-TLS one.
    TlsOnConnect,
}

/// How the client behaves; fixed before any connection.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    helo_name: String,
    /// Servers the client may speak early to (Exim's `hosts_pipe_connect`). Default: none,
    /// early pipelining is opt-in.
    pub hosts_pipe_connect: HostList,
    /// Servers [`Client::connect`] tries TCP Fast Open with (Exim's `hosts_try_fastopen`):
    /// the early flight goes to the kernel with the connect, in the SYN when the kernel holds
    /// a cookie for the server; a connection without an early flight asks for a cookie.
    /// Where the kernel or the path refuses, the connection is a normal one
    /// ([`Delivery::fast_open`] says which). Default: none.
    pub hosts_try_fastopen: HostList,
    /// The EHLO-response cache and its rules (store, clock, `retry_data_expire`). Default: in
    /// memory, the system clock, 7 days.
    pub ehlo_cache: EhloCache,
    /// Send the message with BDAT (RFC 3030) when the server offers CHUNKING. Default: yes.
    pub chunking: bool,
    /// Read and write timeout set on connections [`Client::connect`] makes. Default 5 minutes
    /// (RFC 5321 §4.5.3.2's minimum for most replies).
    pub timeout: Duration,
    /// The time a whole reply may take, however the server paces its bytes: `command` for
    /// the banner and each command's reply (5 minutes), `message` for the reply to the end of
    /// a message (10 minutes), as RFC 5321 §4.5.3.2 sets them. A reply late past its
    /// deadline fails the attempt as a temporary I/O error ("the SMTP reply deadline
    /// passed"), at most one read [`timeout`](Self::timeout) after the deadline.
    pub deadlines: Deadlines,
}

/// A bad EHLO name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad EHLO name '{0}': it must be a non-empty domain or address literal without spaces or control characters")]
pub struct HeloNameError(pub String);

impl ClientConfig {
    /// A configuration saying `EHLO helo_name`.
    ///
    /// The name is fixed here, before any connection exists: early pipelining sends EHLO
    /// before the connection is up, so the name cannot depend on the local address used
    /// (Exim's `$sending_ip_address`).
    pub fn new(helo_name: impl Into<String>) -> Result<Self, HeloNameError> {
        let helo_name = helo_name.into();
        if helo_name.is_empty()
            || helo_name.len() > 255
            || !helo_name.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(HeloNameError(helo_name));
        }
        Ok(Self {
            helo_name,
            hosts_pipe_connect: HostList::none(),
            hosts_try_fastopen: HostList::none(),
            ehlo_cache: EhloCache::new(Arc::new(MemoryEhloStore::default()), Arc::new(SystemClock)),
            chunking: true,
            timeout: Duration::from_secs(300),
            deadlines: Deadlines::default(),
        })
    }

    /// The EHLO name.
    pub fn helo_name(&self) -> &str {
        &self.helo_name
    }
}

/// A message whose content is read from a reader as it is sent
/// ([`Client::connect_streamed`]).
pub struct StreamedMessage<'r> {
    /// The envelope sender, as [`Message::mail_from`].
    pub mail_from: String,
    /// The envelope recipients, as [`Message::rcpt_to`].
    pub rcpt_to: Vec<String>,
    /// The message (header and body), read to its end. Line endings and dots are made safe
    /// for the wire as for [`Message::content`].
    pub content: &'r mut dyn Read,
    /// Its size in octets with CR LF line endings, if known: declared with SIZE.
    pub size: Option<u64>,
}

impl fmt::Debug for StreamedMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamedMessage")
            .field("mail_from", &self.mail_from)
            .field("rcpt_to", &self.rcpt_to)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// One message: envelope and content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The envelope sender (`MAIL FROM:<…>`), empty for a bounce.
    pub mail_from: String,
    /// The envelope recipients (at least one).
    pub rcpt_to: Vec<String>,
    /// The message (header and body). Each line ending (LF, CR or CR LF) goes on the wire as
    /// CR LF, and dot-stuffing is done here, so no content can end DATA early.
    pub content: Vec<u8>,
}

/// What one connection did, for the caller's log.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The commands sent before the banner arrived (empty when early pipelining was not used).
    pub sent_early: Vec<&'static str>,
    /// The commands sent after the TLS handshake without waiting for the EHLO response, from
    /// the cached under-TLS response.
    pub sent_early_tls: Vec<&'static str>,
    /// How many times the client waited for the server before DATA was accepted (the `354`,
    /// or the reply to BDAT): every read that had to follow a write, plus the banner. The
    /// TLS handshake's own waits are not in it (1 for TLS 1.3, 2 for a full TLS 1.2 one).
    pub waits_before_data: u32,
    /// Waits over the whole connection, up to the final reply to the message.
    pub waits: u32,
    /// Time from the start of [`Client::send`] (or of [`Client::connect`]'s connect) to DATA
    /// being accepted.
    pub time_to_data: Duration,
    /// Time from the same start to the server's final reply to the message.
    pub time_to_reply: Duration,
    /// What became of TCP Fast Open on a connection [`Client::connect`] made
    /// ([`ClientConfig::hosts_try_fastopen`]); [`FastOpen::NotTried`] otherwise.
    pub fast_open: FastOpen,
    /// Whether MAIL/RCPT/DATA were pipelined (the server offered PIPELINING).
    pub pipelining: bool,
    /// Whether the message went under TLS.
    pub tls: bool,
    /// Whether BDAT was used.
    pub chunking: bool,
    /// What happened to the cached EHLO response, per phase.
    pub cache: Vec<(Phase, Verdict)>,
    /// The recipients the server accepted.
    pub accepted: Vec<String>,
    /// The recipients it refused, with its replies.
    pub rejected: Vec<(String, Reply)>,
    /// The server's final reply to the message.
    pub reply: Reply,
    /// The last EHLO response.
    pub ehlo: EhloResponse,
    /// The TLS session as the upgrade reported it at the end ([`StartTls::session_info`]);
    /// `None` in clear, for TLS-on-connect (the caller holds that stream) or when the upgrade
    /// does not say.
    pub tls_info: Option<SessionInfo>,
}

impl Delivery {
    /// Whether early pipelining was used.
    pub fn early(&self) -> bool {
        !self.sent_early.is_empty() || !self.sent_early_tls.is_empty()
    }

    /// Exim's `L` field for the client's `=>` log line: `L*` when early pipelining was used,
    /// `L` when pipelining was, nothing otherwise.
    pub fn l_field(&self) -> Option<&'static str> {
        if self.early() {
            Some("L*")
        } else if self.pipelining {
            Some("L")
        } else {
            None
        }
    }
}

/// A blocking SMTP client.
///
/// ```no_run
/// use tlsresume_smtp::{Client, ClientConfig, Message, NoTls};
///
/// let mut config = ClientConfig::new("client.example.net")?;
/// config.hosts_pipe_connect = "*".parse()?;
/// let client = Client::new(config);
/// let message = Message {
///     mail_from: "a@example.net".into(),
///     rcpt_to: vec!["b@example.org".into()],
///     content: b"Subject: hi\r\n\r\nhello\r\n".to_vec(),
/// };
/// for _ in 0..2 {
///     // The second connection speaks before the banner.
///     let d = client.connect::<NoTls>("192.0.2.1:25".parse()?, None, None, &message)?;
///     println!("early={:?} waits={} {:?}", d.sent_early, d.waits_before_data, d.l_field());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    config: ClientConfig,
}

/// Where one connection stands.
struct Run<'a, 'r> {
    config: &'a ClientConfig,
    key: EhloKey,
    peer: SocketAddr,
    peer_name: Option<&'a str>,
    tls_info: Option<SessionInfo>,
    willing: bool,
    cached: Option<EhloEntry>,
    started: Instant,
    report: Report,
    /// The cache disagreed with the server on an early connection: failures are temporary.
    mismatch: bool,
    /// PIPECONNECT was withdrawn: no more early pipelining on this connection.
    early_off: bool,
    /// The server waits for content that will not come: nothing more goes over it.
    broken: bool,
    /// The content of a streamed message ([`Client::connect_streamed`]), read as it is sent.
    source: Option<Source<'r>>,
}

/// A streamed message's content and its declared size.
struct Source<'a> {
    reader: &'a mut dyn Read,
    size: Option<u64>,
}

#[derive(Default)]
struct Report {
    sent_early: Vec<&'static str>,
    sent_early_tls: Vec<&'static str>,
    tls: bool,
    cache: Vec<(Phase, Verdict)>,
    per_message: PerMessage,
}

/// What one message's transaction did.
#[derive(Default)]
struct PerMessage {
    waits_before_data: u32,
    time_to_data: Duration,
    time_to_reply: Duration,
    pipelining: bool,
    chunking: bool,
    accepted: Vec<String>,
    rejected: Vec<(String, Reply)>,
}

impl Client {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Connects to `peer` over TCP (the configured timeout on connect, reads and writes;
    /// Nagle off, so pipelined commands leave at once) and sends `message`; with `tls`,
    /// through STARTTLS. `peer_name` is the server's host name if known, for
    /// [`ClientConfig::hosts_pipe_connect`] and [`ClientConfig::hosts_try_fastopen`] name
    /// items. The envelope is checked first ([`Message::check`]): a refused address fails
    /// before connecting.
    ///
    /// Towards a server in `hosts_try_fastopen` the connection is made by the first flight:
    /// the commands sent early go to the kernel with the connect, in the SYN when it holds a
    /// Fast Open cookie for the server ([`Delivery::fast_open`]).
    pub fn connect<U: StartTls<TcpStream>>(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        tls: Option<&U>,
        message: &Message,
    ) -> Result<Delivery, SendError> {
        only(self.connect_many(peer, peer_name, tls, std::slice::from_ref(message)))
    }

    /// [`connect`](Self::connect) for several messages over one connection, as an MTA sends
    /// the mail it has queued for one server: one transaction each, RSET between them
    /// (pipelined with the next transaction when the server offers PIPELINING), QUIT at the
    /// end. The first message may go early (PIPECONNECT); a message whose size is over the
    /// server's SIZE is refused unsent (permanent); a refused message leaves the connection
    /// to the next.
    ///
    /// `Err` when nothing could be sent (connect, banner, EHLO, STARTTLS): every message
    /// stays queued. Otherwise one result per message, in order; a message after a failure
    /// that lost the connection fails unsent (temporary). A message whose envelope is refused
    /// ([`Message::check`]) fails without being sent; the others go.
    pub fn connect_many<U: StartTls<TcpStream>>(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        tls: Option<&U>,
        messages: &[Message],
    ) -> Result<Vec<Result<Delivery, SendError>>, SendError> {
        self.dial(peer, peer_name, tls, messages, None)
    }

    /// [`connect`](Self::connect) for a message whose content is read from a reader as it
    /// goes on the wire, never held whole: normalised to CR LF and dot-stuffed a piece at a
    /// time, sent with DATA (BDAT would need each chunk's size first). Its `size`, when
    /// given, is declared with SIZE and checked against the server's before sending. A
    /// reader that fails stops the message before its end: the connection is dropped,
    /// nothing is delivered, and the error (temporary, [`Stage::Data`]) has the reader's
    /// error as its source.
    pub fn connect_streamed<U: StartTls<TcpStream>>(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        tls: Option<&U>,
        message: StreamedMessage<'_>,
    ) -> Result<Delivery, SendError> {
        let envelope = Message {
            mail_from: message.mail_from,
            rcpt_to: message.rcpt_to,
            content: Vec::new(),
        };
        let source = Source {
            reader: message.content,
            size: message.size,
        };
        let messages = std::slice::from_ref(&envelope);
        only(self.dial(peer, peer_name, tls, messages, Some(source)))
    }

    fn dial<U: StartTls<TcpStream>>(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        tls: Option<&U>,
        messages: &[Message],
        source: Option<Source<'_>>,
    ) -> Result<Vec<Result<Delivery, SendError>>, SendError> {
        let started = Instant::now();
        let Some(checked) = Checked::new(messages) else {
            return Ok(Checked::refusals(messages));
        };
        if self.config.hosts_try_fastopen.matches(peer.ip(), peer_name) {
            let stream = FastOpenStream::new(peer, self.config.timeout, true)
                .map_err(|e| SendError::io(Stage::Connect, &e))?;
            let report = stream.report();
            let tls = tls.map(OverFastOpen);
            let sent = self.run(
                peer,
                peer_name,
                stream,
                Start::Clear,
                tls.as_ref(),
                &checked.valid,
                (started, source),
            );
            let mut sent = checked.merge(sent?);
            let fast_open = report.get().unwrap_or(FastOpen::NotTried);
            for d in sent.iter_mut().flatten() {
                d.fast_open = fast_open.clone();
            }
            return Ok(sent);
        }
        let stream = TcpStream::connect_timeout(&peer, self.config.timeout).map_err(|e| {
            SendError::new(
                Stage::Connect,
                ErrorClass::Temporary,
                format!("{peer}: {e}"),
            )
            .caused_by(e)
        })?;
        let setup = || -> io::Result<()> {
            stream.set_read_timeout(Some(self.config.timeout))?;
            stream.set_write_timeout(Some(self.config.timeout))?;
            stream.set_nodelay(true)
        };
        setup().map_err(|e| SendError::io(Stage::Connect, &e))?;
        let sent = self.run(
            peer,
            peer_name,
            stream,
            Start::Clear,
            tls,
            &checked.valid,
            (started, source),
        )?;
        Ok(checked.merge(sent))
    }

    /// Sends `message` over `stream`, a connection to `peer` made by the caller (a TCP
    /// stream, or anything `Read + Write`; for [`Start::TlsOnConnect`] a TLS stream already).
    /// With `tls` the client requires STARTTLS; without, it stays in clear. The caller sets
    /// the stream's timeouts. A refused envelope ([`Message::check`]) fails before anything
    /// is written.
    pub fn send<S: Read + Write, U: StartTls<S>>(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        stream: S,
        start: Start,
        tls: Option<&U>,
        message: &Message,
    ) -> Result<Delivery, SendError> {
        let messages = std::slice::from_ref(message);
        only(self.send_many(peer, peer_name, stream, start, tls, messages))
    }

    /// [`send`](Self::send) for several messages over one connection, as
    /// [`connect_many`](Self::connect_many).
    pub fn send_many<S: Read + Write, U: StartTls<S>>(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        stream: S,
        start: Start,
        tls: Option<&U>,
        messages: &[Message],
    ) -> Result<Vec<Result<Delivery, SendError>>, SendError> {
        let Some(checked) = Checked::new(messages) else {
            return Ok(Checked::refusals(messages));
        };
        let started = Instant::now();
        let at = (started, None);
        let sent = self.run(peer, peer_name, stream, start, tls, &checked.valid, at)?;
        Ok(checked.merge(sent))
    }

    #[allow(clippy::too_many_arguments)]
    fn run<S: Read + Write, U: StartTls<S>>(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        stream: S,
        start: Start,
        tls: Option<&U>,
        messages: &[Message],
        (started, source): (Instant, Option<Source<'_>>),
    ) -> Result<Vec<Result<Delivery, SendError>>, SendError> {
        let key = EhloKey::new(peer);
        let willing = self.config.hosts_pipe_connect.matches(peer.ip(), peer_name);
        // A store that fails is a cache miss, not a failed delivery.
        let cached = if willing {
            self.config.ehlo_cache.lookup(&key).ok().flatten()
        } else {
            None
        };
        let mut run = Run {
            config: &self.config,
            key,
            peer,
            peer_name,
            tls_info: None,
            willing,
            cached,
            started,
            report: Report::default(),
            mismatch: false,
            early_off: false,
            broken: false,
            source,
        };
        let first = match start {
            Start::Clear => Phase::Clear,
            Start::TlsOnConnect => Phase::Tls,
        };
        let starttls = tls.filter(|_| start == Start::Clear);
        let result = run.first_phase(
            Conn::new(stream, 0).with_deadlines(self.config.deadlines),
            first,
            starttls,
            messages,
        );
        let (ehlo, sent) = match result {
            Ok(Phase1::Done(done)) => done,
            Ok(Phase1::Upgrade(conn, upgrade, ehlo_host)) => {
                run.report.tls = true;
                run.tls_phase(conn, upgrade, &ehlo_host, messages)
                    .map_err(|e| run.judged(e))?
            }
            Err(e) => return Err(run.judged(e)),
        };
        let r = &run.report;
        let mut out = Vec::with_capacity(sent.len());
        for (i, sent) in sent.into_iter().enumerate() {
            let sent = match sent {
                Ok(sent) => sent,
                Err(e) if i == 0 => {
                    out.push(Err(run.judged(e)));
                    continue;
                }
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let m = sent.report;
            let first = i == 0;
            out.push(Ok(Delivery {
                sent_early: if first {
                    r.sent_early.clone()
                } else {
                    Vec::new()
                },
                sent_early_tls: if first {
                    r.sent_early_tls.clone()
                } else {
                    Vec::new()
                },
                waits_before_data: m.waits_before_data,
                waits: sent.waits,
                time_to_data: m.time_to_data,
                time_to_reply: m.time_to_reply,
                fast_open: FastOpen::NotTried,
                pipelining: m.pipelining,
                tls: r.tls || start == Start::TlsOnConnect,
                chunking: m.chunking,
                cache: r.cache.clone(),
                accepted: m.accepted,
                rejected: m.rejected,
                reply: sent.reply,
                ehlo: ehlo.clone(),
                tls_info: run.tls_info.clone(),
            }));
        }
        Ok(out)
    }
}

/// The one result of a one-message call.
fn only(sent: Result<Vec<Result<Delivery, SendError>>, SendError>) -> Result<Delivery, SendError> {
    sent?.into_iter().next().unwrap_or_else(|| {
        Err(SendError::new(
            Stage::Mail,
            ErrorClass::Protocol,
            "no message was sent",
        ))
    })
}

/// The messages whose envelopes passed [`Message::check`], and where the others were.
struct Checked {
    valid: Vec<Message>,
    /// Per message: `Ok(())` for one of `valid`, in order; the refusal otherwise.
    checks: Vec<Result<(), SendError>>,
}

impl Checked {
    /// `None` when no message may go.
    fn new(messages: &[Message]) -> Option<Self> {
        let checks: Vec<_> = messages.iter().map(check).collect();
        let valid: Vec<Message> = messages
            .iter()
            .zip(&checks)
            .filter(|(_, c)| c.is_ok())
            .map(|(m, _)| m.clone())
            .collect();
        (!valid.is_empty()).then_some(Self { valid, checks })
    }

    /// Every message's refusal (none may go).
    fn refusals(messages: &[Message]) -> Vec<Result<Delivery, SendError>> {
        messages
            .iter()
            .map(|m| match check(m) {
                Err(e) => Err(e),
                Ok(()) => Err(SendError::new(
                    Stage::Mail,
                    ErrorClass::Protocol,
                    "not sent",
                )),
            })
            .collect()
    }

    /// The results of the valid messages put back among the refusals.
    fn merge(self, sent: Vec<Result<Delivery, SendError>>) -> Vec<Result<Delivery, SendError>> {
        let mut sent = sent.into_iter();
        self.checks
            .into_iter()
            .map(|c| match c {
                Ok(()) => sent.next().unwrap_or_else(|| {
                    Err(SendError::new(
                        Stage::Mail,
                        ErrorClass::Protocol,
                        "not sent",
                    ))
                }),
                Err(e) => Err(e),
            })
            .collect()
    }
}

/// A message's own check: its envelope, and at least one recipient.
fn check(message: &Message) -> Result<(), SendError> {
    message.check().map_err(SendError::bad_envelope)?;
    if message.rcpt_to.is_empty() {
        return Err(SendError::new(
            Stage::Rcpt,
            ErrorClass::Permanent,
            "no recipients given",
        ));
    }
    Ok(())
}

/// A caller's STARTTLS over a plain `TcpStream`, given the stream under a [`FastOpenStream`].
struct OverFastOpen<'u, U>(&'u U);

impl<U: StartTls<TcpStream>> StartTls<FastOpenStream> for OverFastOpen<'_, U> {
    type Stream = U::Stream;
    type Error = U::Error;

    fn upgrade(
        &self,
        plain: FastOpenStream,
        context: &UpgradeContext<'_>,
    ) -> Result<Self::Stream, Self::Error> {
        self.0.upgrade(plain.into_tcp(), context)
    }

    fn session_info(stream: &Self::Stream) -> Option<SessionInfo> {
        U::session_info(stream)
    }

    fn classify(error: &Self::Error) -> ErrorClass {
        U::classify(error)
    }
}

type Done = (EhloResponse, Vec<Result<Sent, SendError>>);

enum Phase1<'u, S, U> {
    Done(Done),
    Upgrade((S, u32), &'u U, String),
}

/// What was sent ahead of the replies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ahead {
    /// Nothing: each reply is read after its command.
    Nothing,
    /// The transaction (MAIL, RCPT…, DATA or BDAT) follows EHLO in the queue.
    Transaction,
    /// STARTTLS follows EHLO.
    StartTls,
}

impl Run<'_, '_> {
    /// A failure as the connection makes it: whether it spoke early, and temporary when the
    /// cache disagreed with the server (the retry goes the normal way).
    fn judged(&self, mut e: SendError) -> SendError {
        e.early = !self.report.sent_early.is_empty() || !self.report.sent_early_tls.is_empty();
        if self.mismatch && !e.is_temporary() {
            e.soften();
            e.detail
                .push_str(" (the server's EHLO response differed from the cached one)");
        }
        e
    }

    fn first_phase<'u, S: Read + Write, U: StartTls<S>>(
        &mut self,
        mut conn: Conn<S>,
        phase: Phase,
        starttls: Option<&'u U>,
        messages: &[Message],
    ) -> Result<Phase1<'u, S, U>, SendError> {
        let message = &messages[0];
        let entry_view = self.cached.as_ref().and_then(|e| e.view(phase)).cloned();
        let early_view = entry_view.filter(|v| {
            v.permits_early() && (starttls.is_none() || v.features.contains(EhloFeatures::STARTTLS))
        });
        let ahead = match (&early_view, starttls) {
            (None, _) => Ahead::Nothing,
            (Some(_), Some(_)) => Ahead::StartTls,
            (Some(_), None) => Ahead::Transaction,
        };
        let mut plan = None;
        if let Some(view) = &early_view {
            conn.queue(&format!("EHLO {}", self.config.helo_name));
            let mut sent = vec!["EHLO"];
            if ahead == Ahead::StartTls {
                conn.queue("STARTTLS");
                sent.push("STARTTLS");
            } else {
                let p = self.plan(view.features, message);
                p.queue(&mut conn, &mut sent);
                plan = Some(p);
            }
            self.report.sent_early = sent;
            // Outstanding replies: banner, EHLO, then STARTTLS or the transaction's.
        }
        let outstanding = 2 + match (&ahead, &plan) {
            (Ahead::StartTls, _) => 1,
            (_, Some(p)) => p.replies(),
            _ => 0,
        };

        // The banner.
        match conn.read_reply() {
            Ok(r) if r.code() == 220 => {}
            Ok(r) => {
                self.bad_greeting(phase, Observed::BadBanner, &mut conn, outstanding - 1);
                return Err(SendError::refused(Stage::Banner, r));
            }
            Err(e) => {
                self.bad_greeting(phase, Observed::BadBanner, &mut conn, outstanding - 1);
                return Err(SendError::read(Stage::Banner, e));
            }
        }

        // EHLO.
        if early_view.is_none() {
            conn.queue(&format!("EHLO {}", self.config.helo_name));
        }
        let ehlo = self.read_ehlo(&mut conn, phase, ahead != Ahead::Nothing, outstanding - 2)?;

        if let Some(upgrade) = starttls {
            if ahead != Ahead::StartTls {
                if !ehlo.features.contains(EhloFeatures::STARTTLS) {
                    return Err(SendError::new(
                        Stage::StartTls,
                        ErrorClass::Protocol,
                        "TLS required but the server does not offer STARTTLS",
                    ));
                }
                conn.queue("STARTTLS");
            }
            let reply = conn
                .read_reply()
                .map_err(|e| SendError::read(Stage::StartTls, e))?;
            if reply.code() != 220 {
                return Err(SendError::refused(Stage::StartTls, reply));
            }
            let waits = conn.waits();
            let plain = conn.into_inner().map_err(|extra| {
                SendError::new(
                    Stage::StartTls,
                    ErrorClass::Protocol,
                    format!("the server sent {extra} byte(s) after its 220 to STARTTLS, before TLS (refused: possible STARTTLS response injection)"),
                )
            })?;
            return Ok(Phase1::Upgrade((plain, waits), upgrade, ehlo.host));
        }

        let sent = self.transactions(&mut conn, &ehlo, plan, messages);
        Ok(Phase1::Done((ehlo, sent)))
    }

    fn tls_phase<S, U: StartTls<S>>(
        &mut self,
        (plain, waits): (S, u32),
        upgrade: &U,
        ehlo_host: &str,
        messages: &[Message],
    ) -> Result<Done, SendError> {
        let message = &messages[0];
        let context = UpgradeContext::new(self.peer)
            .peer_name(self.peer_name)
            .ehlo_host(Some(ehlo_host).filter(|h| !h.is_empty()));
        let tls = upgrade.upgrade(plain, &context).map_err(|e| {
            let class = U::classify(&e);
            SendError::tls(e, class)
        })?;
        let mut conn = Conn::new(tls, waits).with_deadlines(self.config.deadlines);
        let view = self
            .cached
            .as_ref()
            .and_then(|e| e.view(Phase::Tls))
            .filter(|v| v.permits_early() && !self.early_off)
            .cloned();
        conn.queue(&format!("EHLO {}", self.config.helo_name));
        let mut plan = None;
        if let Some(view) = &view {
            let mut sent = vec!["EHLO"];
            let p = self.plan(view.features, message);
            p.queue(&mut conn, &mut sent);
            plan = Some(p);
            self.report.sent_early_tls = sent;
        }
        let outstanding = plan.as_ref().map_or(0, Plan::replies);
        let ehlo = self.read_ehlo(&mut conn, Phase::Tls, view.is_some(), outstanding)?;
        let sent = self.transactions(&mut conn, &ehlo, plan, messages);
        self.tls_info = U::session_info(conn.get_ref());
        Ok((ehlo, sent))
    }

    /// Reads and judges the EHLO reply; applies the cache rules. `early`: EHLO was sent from
    /// the cache; `outstanding`: replies queued behind it, read and discarded on failure.
    fn read_ehlo<S: Read + Write>(
        &mut self,
        conn: &mut Conn<S>,
        phase: Phase,
        early: bool,
        outstanding: usize,
    ) -> Result<EhloResponse, SendError> {
        let reply = match conn.read_reply() {
            Ok(r) => r,
            Err(e) => {
                self.bad_greeting(phase, Observed::BadEhlo, conn, outstanding);
                return Err(SendError::read(Stage::Ehlo, e));
            }
        };
        let parsed = if reply.code() == 250 {
            EhloResponse::parse(reply.lines()).ok()
        } else {
            None
        };
        let Some(ehlo) = parsed else {
            self.bad_greeting(phase, Observed::BadEhlo, conn, outstanding);
            if !early && reply.is_permanent() {
                // Not early: a server that does not know EHLO gets HELO (RFC 5321 §3.2).
                return self.helo(conn);
            }
            let mut e = SendError::refused(Stage::Ehlo, reply);
            // Over TLS a bad EHLO reply is a temporary failure (Exim: DEFER).
            if phase == Phase::Tls {
                e.soften();
            }
            return Err(e);
        };
        if self.willing {
            let verdict = self
                .config
                .ehlo_cache
                .reconcile(
                    &self.key,
                    self.cached.as_ref(),
                    phase,
                    Observed::Ehlo(&ehlo),
                )
                .unwrap_or(Verdict::Nothing);
            if early && verdict != Verdict::Keep {
                self.mismatch = true;
            }
            if matches!(verdict, Verdict::Deleted(_)) {
                self.early_off = true;
                self.cached = None;
            } else if matches!(verdict, Verdict::Stored | Verdict::Rewritten) {
                self.cached = self.config.ehlo_cache.lookup(&self.key).ok().flatten();
            }
            self.report.cache.push((phase, verdict));
        }
        Ok(ehlo)
    }

    fn helo<S: Read + Write>(&mut self, conn: &mut Conn<S>) -> Result<EhloResponse, SendError> {
        conn.queue(&format!("HELO {}", self.config.helo_name));
        let reply = conn
            .read_reply()
            .map_err(|e| SendError::read(Stage::Ehlo, e))?;
        if reply.code() != 250 {
            return Err(SendError::refused(Stage::Ehlo, reply));
        }
        // A HELO reply names the server and offers nothing.
        let first = format!("250 {}", reply.texts().next().unwrap_or(""));
        let mut ehlo = EhloResponse::parse(&[first])
            .map_err(|e| SendError::new(Stage::Ehlo, ErrorClass::Protocol, e.to_string()))?;
        ehlo.keywords.clear();
        ehlo.features = EhloFeatures::empty();
        ehlo.auth.clear();
        ehlo.limits = Default::default();
        Ok(ehlo)
    }

    /// A bad banner or EHLO reply: the entry goes, the replies still owed are read and
    /// thrown away (so nothing queued is mistaken for later), as Exim does.
    fn bad_greeting<S: Read + Write>(
        &mut self,
        phase: Phase,
        observed: Observed<'_>,
        conn: &mut Conn<S>,
        outstanding: usize,
    ) {
        if self.willing && self.cached.is_some() {
            let verdict = self
                .config
                .ehlo_cache
                .reconcile(&self.key, self.cached.as_ref(), phase, observed)
                .unwrap_or(Verdict::Nothing);
            self.report.cache.push((phase, verdict));
            self.cached = None;
        }
        if !self.report.sent_early.is_empty() || !self.report.sent_early_tls.is_empty() {
            // Spoken early to a server that did not greet as the cache said: the retry, with
            // the entry gone, goes the normal way, so this failure is temporary.
            self.mismatch = true;
            for _ in 0..outstanding {
                if conn.read_reply().is_err() {
                    break;
                }
            }
        }
    }

    fn plan(&self, features: EhloFeatures, message: &Message) -> Plan {
        // A streamed message goes with DATA: BDAT needs each chunk's size before it.
        let streamed = self.source.as_ref().map(|s| s.size);
        let chunking =
            self.config.chunking && features.contains(EhloFeatures::CHUNKING) && streamed.is_none();
        let normalised = normalise(&message.content);
        let size = match streamed {
            Some(declared) => declared,
            None => Some(normalised.len() as u64),
        };
        // RFC 1870: the size declared is the message's, line endings as CR LF, unstuffed.
        let size_param = match size {
            Some(size) if features.contains(EhloFeatures::SIZE) => format!(" SIZE={size}"),
            _ => String::new(),
        };
        Plan {
            pipelining: features.contains(EhloFeatures::PIPELINING),
            chunking,
            size,
            body: if chunking {
                normalised
            } else if streamed.is_some() {
                Vec::new()
            } else {
                dot_stuff(&message.content)
            },
            mail: format!("MAIL FROM:<{}>{size_param}", message.mail_from),
            rcpts: message
                .rcpt_to
                .iter()
                .map(|r| (r.clone(), format!("RCPT TO:<{r}>")))
                .collect(),
        }
    }

    /// MAIL, RCPT…, DATA/BDAT and the content; `sent`: the commands are queued already.
    fn transaction<S: Read + Write>(
        &mut self,
        conn: &mut Conn<S>,
        plan: &Plan,
        sent: bool,
    ) -> Result<(Reply, u32), SendError> {
        self.report.per_message.pipelining = plan.pipelining;
        self.report.per_message.chunking = plan.chunking;
        if plan.pipelining && !sent {
            plan.queue(conn, &mut Vec::new());
        }
        // Replies are read in the order the commands went; `owed` counts those not yet read.
        let mut owed = plan.replies();
        let mut step = |conn: &mut Conn<S>, cmd: &str, stage: Stage| {
            if !plan.pipelining {
                conn.queue(cmd);
            }
            owed -= 1;
            conn.read_reply().map_err(|e| SendError::read(stage, e))
        };
        let reply = step(conn, &plan.mail, Stage::Mail)?;
        if !reply.is_positive() {
            drain(conn, plan.pipelining, plan.replies() - 1);
            return Err(SendError::refused(Stage::Mail, reply));
        }
        let mut worst: Option<Reply> = None;
        for (rcpt, cmd) in &plan.rcpts {
            let reply = step(conn, cmd, Stage::Rcpt)?;
            if reply.is_positive() {
                self.report.per_message.accepted.push(rcpt.clone());
            } else {
                // A 4xx among 5xx makes the whole refusal temporary.
                if worst
                    .as_ref()
                    .is_none_or(|w| w.is_permanent() && reply.is_transient())
                {
                    worst = Some(reply.clone());
                }
                self.report.per_message.rejected.push((rcpt.clone(), reply));
            }
        }
        let refused = |worst: Option<Reply>| match worst {
            Some(r) => SendError::refused(Stage::Rcpt, r),
            None => SendError::new(
                Stage::Rcpt,
                ErrorClass::Permanent,
                "every recipient refused",
            ),
        };
        if self.report.per_message.accepted.is_empty() && !plan.pipelining {
            return Err(refused(worst));
        }
        if !plan.pipelining {
            plan.queue_data(conn);
        }
        let stage = if plan.chunking {
            Stage::Content
        } else {
            Stage::Data
        };
        let awaiting = if plan.chunking {
            Awaiting::FinalReply
        } else {
            Awaiting::Reply
        };
        let reply = conn
            .read_reply_for(awaiting)
            .map_err(|e| SendError::read(stage, e))?;
        if self.report.per_message.accepted.is_empty() {
            // Pipelined, and every recipient refused. A server that still says 354 is left
            // waiting for content that never comes: closing drops it, nothing is delivered,
            // and nothing more can go over this connection.
            self.broken |= reply.code() == 354;
            return Err(refused(worst));
        }
        self.report.per_message.waits_before_data = conn.waits();
        self.report.per_message.time_to_data = self.started.elapsed();
        let final_reply = if plan.chunking {
            reply
        } else {
            if reply.code() != 354 {
                return Err(SendError::refused(Stage::Data, reply));
            }
            if let Some(source) = self.source.as_mut() {
                if let Err(e) = stream(source.reader, conn) {
                    // No end of data goes: the server drops what it has, nothing is delivered.
                    self.broken = true;
                    return Err(e);
                }
            } else {
                conn.queue_bytes(&plan.body);
            }
            conn.queue(".");
            conn.read_reply_for(Awaiting::FinalReply)
                .map_err(|e| SendError::read(Stage::Content, e))?
        };
        if !final_reply.is_positive() {
            return Err(SendError::refused(Stage::Content, final_reply));
        }
        self.report.per_message.time_to_reply = self.started.elapsed();
        Ok((final_reply, conn.waits()))
    }

    /// Every message in turn over one connection (RSET between them, pipelined with the next
    /// transaction when the server pipelines), then QUIT. `early`: the first message's plan,
    /// its commands queued already. A message over the server's SIZE is refused here, unsent;
    /// after a failure that leaves the connection unusable the rest fail unsent.
    fn transactions<S: Read + Write>(
        &mut self,
        conn: &mut Conn<S>,
        ehlo: &EhloResponse,
        early: Option<Plan>,
        messages: &[Message],
    ) -> Vec<Result<Sent, SendError>> {
        let mut out = Vec::with_capacity(messages.len());
        let mut early = early;
        let mut lost: Option<Stage> = None;
        for (i, message) in messages.iter().enumerate() {
            if let Some(stage) = lost {
                out.push(Err(SendError::new(
                    Stage::Mail,
                    ErrorClass::Temporary,
                    format!("not sent: the connection was lost at {stage} of an earlier message"),
                )));
                continue;
            }
            let sent = early.is_some();
            let plan = early
                .take()
                .unwrap_or_else(|| self.plan(ehlo.features, message));
            if let (Some(limit), Some(size), false) = (ehlo.size, plan.size, sent) {
                if size > limit {
                    out.push(Err(SendError::new(
                        Stage::Mail,
                        ErrorClass::Permanent,
                        format!(
                            "not sent: the message is {size} octets and the server takes at most {limit} (SIZE)"
                        ),
                    )));
                    continue;
                }
            }
            if i > 0 {
                conn.queue("RSET");
                if plan.pipelining {
                    plan.queue(conn, &mut Vec::new());
                }
                if let Err(e) = conn.read_reply() {
                    lost = Some(Stage::Mail);
                    out.push(Err(SendError::read(Stage::Mail, e)));
                    continue;
                }
            }
            let result = self.transaction(conn, &plan, sent || (i > 0 && plan.pipelining));
            let r = std::mem::take(&mut self.report.per_message);
            out.push(match result {
                Ok((reply, waits)) => Ok(Sent {
                    reply,
                    waits,
                    report: r,
                }),
                Err(e) => {
                    if e.reply.is_none() || self.broken {
                        lost = Some(e.stage);
                    }
                    Err(e)
                }
            });
        }
        if lost.is_none() {
            // A polite end, waiting for the reply before closing (RFC 5321 §4.1.1.10: the
            // client SHOULD), so the server has finished with this connection when the next
            // one starts. The messages are the server's already: a failure changes nothing.
            conn.queue("QUIT");
            let _ = conn.read_reply();
        }
        out
    }
}

/// One message's transaction that went through.
struct Sent {
    reply: Reply,
    waits: u32,
    report: PerMessage,
}

/// A streamed message's content onto the wire, read and dot-stuffed a piece at a time. A
/// reader that fails stops it before its end (`Stage::Data`: nothing is delivered).
fn stream<S: Read + Write>(reader: &mut dyn Read, conn: &mut Conn<S>) -> Result<(), SendError> {
    let mut encoder = Encoder::new(true);
    let mut piece = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(piece.len() + 1024);
    loop {
        let n = match reader.read(&mut piece) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(SendError::new(
                    Stage::Data,
                    ErrorClass::Temporary,
                    format!("reading the message failed: {e}; the connection was dropped before the message's end, so nothing was delivered"),
                )
                .caused_by(e))
            }
        };
        out.clear();
        encoder.push(&piece[..n], &mut out);
        conn.queue_bytes(&out);
        conn.flush()
            .map_err(|e| SendError::io(Stage::Content, &e))?;
    }
    out.clear();
    encoder.finish(&mut out);
    conn.queue_bytes(&out);
    Ok(())
}

/// Reads and drops the replies still owed after a failure, when the commands were sent.
fn drain<S: Read + Write>(conn: &mut Conn<S>, pipelined: bool, owed: usize) {
    if pipelined {
        for _ in 0..owed {
            if conn.read_reply().is_err() {
                break;
            }
        }
    }
}

/// How the transaction goes.
struct Plan {
    pipelining: bool,
    chunking: bool,
    /// The message's size as declared with SIZE (RFC 1870), when known.
    size: Option<u64>,
    /// The content, ready for the wire (dot-stuffed for DATA).
    body: Vec<u8>,
    mail: String,
    /// (recipient, its RCPT command)
    rcpts: Vec<(String, String)>,
}

impl Plan {
    /// Replies the commands get up to DATA's 354 (or BDAT's final reply).
    fn replies(&self) -> usize {
        self.rcpts.len() + 2
    }

    /// Queues DATA, or BDAT with the content.
    fn queue_data<S: Read + Write>(&self, conn: &mut Conn<S>) {
        if self.chunking {
            conn.queue(&format!("BDAT {} LAST", self.body.len()));
            conn.queue_bytes(&self.body);
        } else {
            conn.queue("DATA");
        }
    }

    /// Queues MAIL, RCPT…, DATA (or BDAT and the content) at once. RFC 2920: DATA and BDAT
    /// end a group; nothing may follow DATA before its 354.
    fn queue<S: Read + Write>(&self, conn: &mut Conn<S>, sent: &mut Vec<&'static str>) {
        conn.queue(&self.mail);
        sent.push("MAIL");
        for (_, cmd) in &self.rcpts {
            conn.queue(cmd);
            sent.push("RCPT");
        }
        self.queue_data(conn);
        sent.push(if self.chunking { "BDAT" } else { "DATA" });
    }
}

/// Every line ending (LF, CR, CR LF) made CR LF, and the content ended with one: no bare CR or
/// LF goes on the wire.
fn normalise(content: &[u8]) -> Vec<u8> {
    Encoder::new(false).all(content)
}

/// [`normalise`]d, with a `.` doubled at the start of each line (RFC 5321 §4.5.2).
fn dot_stuff(content: &[u8]) -> Vec<u8> {
    Encoder::new(true).all(content)
}

/// Content made ready for the wire piece by piece (a body streamed from a reader): every line
/// ending (LF, CR, CR LF) made CR LF, a `.` doubled at the start of each line when `stuff`
/// (DATA), and the content ended with CR LF. A CR at the end of one piece and an LF at the
/// start of the next are one line ending.
struct Encoder {
    stuff: bool,
    after_cr: bool,
    at_start: bool,
    ends_in_crlf: bool,
}

impl Encoder {
    fn new(stuff: bool) -> Self {
        Self {
            stuff,
            after_cr: false,
            at_start: true,
            ends_in_crlf: false,
        }
    }

    /// The whole of `content`, ended.
    fn all(mut self, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(content.len() + content.len() / 32 + 2);
        self.push(content, &mut out);
        self.finish(&mut out);
        out
    }

    /// The next piece.
    fn push(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        for &b in piece {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.at_start = true;
                    self.ends_in_crlf = true;
                }
                _ => {
                    if self.stuff && self.at_start && b == b'.' {
                        out.push(b'.');
                    }
                    out.push(b);
                    self.at_start = false;
                    self.ends_in_crlf = false;
                }
            }
        }
    }

    /// The end: CR LF unless the content ended with a line ending.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.ends_in_crlf {
            out.extend_from_slice(b"\r\n");
            self.ends_in_crlf = true;
            self.at_start = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_normalised_and_dot_stuffed() {
        assert_eq!(dot_stuff(b".a\n..b\r\nc"), b"..a\r\n...b\r\nc\r\n");
        assert_eq!(normalise(b".a\nb"), b".a\r\nb\r\n");
        assert_eq!(dot_stuff(b""), b"\r\n");
        // Bare CR and bare LF alike: none reaches the wire, and no `.` line ends DATA.
        assert_eq!(
            dot_stuff(b"a\r.\rb\n.\r\nc\r\r\n."),
            b"a\r\n..\r\nb\r\n..\r\nc\r\n\r\n..\r\n"
        );
        assert_eq!(normalise(b"a\r"), b"a\r\n");
    }

    #[test]
    fn content_in_pieces_is_the_content_whole() {
        let content: &[u8] = b".a\r\n\r.b\n\r\nc\r.\r\n.\n..d\r";
        for stuff in [false, true] {
            let whole = Encoder::new(stuff).all(content);
            for cut in 1..content.len() {
                let mut e = Encoder::new(stuff);
                let mut out = Vec::new();
                for piece in content.chunks(cut) {
                    e.push(piece, &mut out);
                }
                e.finish(&mut out);
                assert_eq!(out, whole, "stuff={stuff} pieces of {cut}");
            }
        }
    }

    #[test]
    fn helo_names_are_checked() {
        assert!(ClientConfig::new("client.example.net").is_ok());
        assert!(ClientConfig::new("[192.0.2.1]").is_ok());
        for bad in ["", "a b", "a\r\nMAIL FROM:<x>", "é"] {
            assert!(ClientConfig::new(bad).is_err(), "{bad:?}");
        }
    }
}
