//! The SMTP client: one message or several per connection, early pipelining when allowed,
//! RFC 2920 pipelining whenever offered, SIZE declared, STARTTLS through a caller-supplied
//! upgrade.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tlsresume_core::{HostList, SessionInfo, SystemClock};

use crate::auth::{Credentials, Mechanism};
use crate::dialogue::{drive, Dialogue, Pause};
use crate::ehlo::{EhloCache, EhloResponse, MemoryEhloStore, Phase, Verdict};
pub use crate::error::{ErrorClass, SendError, Stage};
use crate::extensions::{Dsn, Parameters};
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
    /// AUTH (RFC 4954, PLAIN or else LOGIN, as the server offers) with these credentials after
    /// the EHLO under TLS, before the first message. Never in clear: without TLS the
    /// connection fails at [`Stage::Auth`] before any credential or message is sent; a server
    /// offering neither mechanism fails it too. No transaction goes early (PIPECONNECT)
    /// ahead of AUTH. Default: none.
    pub auth: Option<Credentials>,
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
            auth: None,
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
    /// Delivery status notifications asked for, as [`Message::dsn`].
    pub dsn: Dsn,
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The envelope sender (`MAIL FROM:<…>`), empty for a bounce.
    pub mail_from: String,
    /// The envelope recipients (at least one).
    pub rcpt_to: Vec<String>,
    /// The message (header and body). Each line ending (LF, CR or CR LF) goes on the wire as
    /// CR LF, and dot-stuffing is done here, so no content can end DATA early. An octet over
    /// 127 is sent with `BODY=8BITMIME`, to a server offering 8BITMIME only
    /// ([`ParameterError::NeedsEightBitMime`](crate::extensions::ParameterError) otherwise).
    pub content: Vec<u8>,
    /// Delivery status notifications asked for (RFC 3461), sent when the server offers DSN
    /// ([`Delivery::parameters`] says whether they went). Default: none.
    pub dsn: Dsn,
}

impl Message {
    /// A message from `mail_from` to `rcpt_to` with `content`, no DSN asked.
    pub fn new<R: Into<String>>(
        mail_from: impl Into<String>,
        rcpt_to: impl IntoIterator<Item = R>,
        content: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            mail_from: mail_from.into(),
            rcpt_to: rcpt_to.into_iter().map(Into::into).collect(),
            content: content.into(),
            dsn: Dsn::default(),
        }
    }
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
    /// The MAIL and RCPT parameters sent, and the extensions they used (8BITMIME, SMTPUTF8,
    /// DSN).
    pub parameters: Parameters,
    /// The AUTH mechanism the connection authenticated with ([`ClientConfig::auth`]).
    pub auth: Option<Mechanism>,
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
/// let message = Message::new("a@example.net", ["b@example.org"], "Subject: hi\r\n\r\nhello\r\n");
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

/// A streamed message's content and its declared size.
struct Source<'a> {
    reader: &'a mut dyn Read,
    size: Option<u64>,
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
            dsn: message.dsn,
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
        let (size, mut reader) = match source {
            Some(s) => (Some(s.size), Some(s.reader)),
            None => (None, None),
        };
        let starttls = tls.filter(|_| start == Start::Clear);
        let mut d = Dialogue::new(
            &self.config,
            (peer, peer_name),
            start,
            starttls.is_some(),
            messages.to_vec(),
            (size, started),
        );
        let mut plain = stream;
        // The dialogue stops for TLS only when it was asked for.
        let (Pause::StartTls, Some(upgrade)) =
            (drive(&mut d, &mut plain, reader.as_deref_mut()), starttls)
        else {
            return d.finish(None);
        };
        match upgrade.upgrade(plain, &d.upgrade_context()) {
            Ok(mut tls) => {
                d.upgraded(Ok(()));
                drive(&mut d, &mut tls, reader);
                d.finish(U::session_info(&tls))
            }
            Err(e) => d.handshake_failed(e, U::classify),
        }
    }
}

/// The one result of a one-message call.
pub(crate) fn only(
    sent: Result<Vec<Result<Delivery, SendError>>, SendError>,
) -> Result<Delivery, SendError> {
    sent?.into_iter().next().unwrap_or_else(|| {
        Err(SendError::new(
            Stage::Mail,
            ErrorClass::Protocol,
            "no message was sent",
        ))
    })
}

/// The messages whose envelopes passed [`Message::check`], and where the others were.
pub(crate) struct Checked {
    pub(crate) valid: Vec<Message>,
    /// Per message: `Ok(())` for one of `valid`, in order; the refusal otherwise.
    checks: Vec<Result<(), SendError>>,
}

impl Checked {
    /// `None` when no message may go.
    pub(crate) fn new(messages: &[Message]) -> Option<Self> {
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
    pub(crate) fn refusals(messages: &[Message]) -> Vec<Result<Delivery, SendError>> {
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
    pub(crate) fn merge(
        self,
        sent: Vec<Result<Delivery, SendError>>,
    ) -> Vec<Result<Delivery, SendError>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helo_names_are_checked() {
        assert!(ClientConfig::new("client.example.net").is_ok());
        assert!(ClientConfig::new("[192.0.2.1]").is_ok());
        for bad in ["", "a b", "a\r\nMAIL FROM:<x>", "é"] {
            assert!(ClientConfig::new(bad).is_err(), "{bad:?}");
        }
    }
}
