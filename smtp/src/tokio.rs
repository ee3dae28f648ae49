//! The async (tokio) fronts of the sessions: the same dialogue as the blocking fronts
//! ([`crate::server::drive`], [`crate::session::open`], [`crate::dialogue::drive`]) over an
//! `AsyncRead + AsyncWrite`, and the async SMTP [`Client`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tlsresume_core::deadline::deadline_passed;
use tlsresume_core::SessionInfo;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{only, Checked, ClientConfig, Delivery, Message, NoTls, Start, UpgradeContext};
use crate::dialogue::{Dialogue, Pause, Step};
use crate::error::{ErrorClass, SendError, Stage};
use crate::extensions::Dsn;
use crate::fastopen::{AsyncFastOpenStream, FastOpen};
use crate::server::{ServerSession, Stop};
use crate::session::{ClientSession, Opened};

/// [`crate::server::drive`] over an async stream: runs `session` until it stops, the last
/// replies left for [`flush`]. Each read is bounded by the session's deadline that passes
/// first (tokio's timer: a runtime with it enabled).
pub async fn drive<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    session: &mut ServerSession,
    stream: &mut S,
) -> io::Result<Stop> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(stop) = session.stop() {
            return Ok(stop.clone());
        }
        flush(session, stream).await?;
        // The read is bounded by the deadline that passes first.
        let (kind, left) = session.time_left(Instant::now());
        let read = match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(read) => read,
            Err(_) => return Err(deadline_passed(&format!("SMTP {kind}"))),
        };
        session.received(read.map(|n| &buf[..n]))?;
    }
}

/// Writes the session's output to `stream` in one write.
pub async fn flush<S: AsyncWrite + Unpin + ?Sized>(
    session: &mut ServerSession,
    stream: &mut S,
) -> io::Result<()> {
    let out = session.take_output();
    if !out.is_empty() {
        stream.write_all(&out).await?;
        stream.flush().await?;
    }
    Ok(())
}

/// [`crate::session::open`] over an async stream.
pub async fn open<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    session: &mut ClientSession,
    stream: &mut S,
) -> Result<Opened, SendError> {
    let mut buf = [0u8; 1024];
    loop {
        let out = session.take_output();
        let written = async {
            stream.write_all(&out).await?;
            stream.flush().await
        };
        written.await.map_err(|e| session.write_failed(&e))?;
        let read = stream.read(&mut buf).await;
        if let Some(opened) = session.received(read.map(|n| &buf[..n]))? {
            return Ok(opened);
        }
    }
}

/// The STARTTLS of the async [`Client`]: turns the plain connection into a TLS one after the
/// server's `220`, as [`crate::StartTls`] does for the blocking client.
///
/// `tlsresume::tokio::SmtpStartTls` (the facade crate, features `smtp` and `tokio`) runs it
/// through any backend's client on tokio, with its session cache and resumption policy.
pub trait AsyncStartTls<S>: Sync {
    /// The encrypted stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send;
    /// Why the handshake failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Runs the TLS handshake over `plain`; `context` carries what the SMTP dialogue learnt
    /// (the EHLO host name, for the session cache key).
    fn upgrade(
        &self,
        plain: S,
        context: &UpgradeContext<'_>,
    ) -> impl Future<Output = Result<Self::Stream, Self::Error>> + Send;

    /// The class of a failed handshake, as [`crate::StartTls::classify`].
    fn classify(_error: &Self::Error) -> ErrorClass {
        ErrorClass::Protocol
    }

    /// What the TLS session was, read at the end of the dialogue, as
    /// [`crate::StartTls::session_info`].
    fn session_info(_stream: &Self::Stream) -> Option<SessionInfo> {
        None
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> AsyncStartTls<S> for NoTls {
    type Stream = S;
    type Error = io::Error;

    async fn upgrade(&self, _plain: S, _context: &UpgradeContext<'_>) -> Result<S, io::Error> {
        Err(io::Error::other("no TLS configured"))
    }
}

/// A message whose content is read from an async reader as it is sent
/// ([`Client::connect_streamed`]); as [`crate::StreamedMessage`].
pub struct StreamedMessage<'r> {
    /// The envelope sender.
    pub mail_from: String,
    /// The envelope recipients.
    pub rcpt_to: Vec<String>,
    /// The message (header and body), read to its end; line endings and dots are made safe
    /// for the wire.
    pub content: &'r mut (dyn AsyncRead + Unpin + Send),
    /// Its size in octets with CR LF line endings, if known: declared with SIZE.
    pub size: Option<u64>,
    /// Delivery status notifications asked for, as [`Message::dsn`].
    pub dsn: Dsn,
}

impl std::fmt::Debug for StreamedMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamedMessage")
            .field("mail_from", &self.mail_from)
            .field("rcpt_to", &self.rcpt_to)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// The async SMTP client: [`crate::Client`]'s dialogue ([`Dialogue`]) on tokio, with the same
/// configuration, the same early pipelining (the EHLO cache) and the same results.
///
/// Each read is bounded by the deadline of the reply awaited ([`ClientConfig::deadlines`])
/// and by [`ClientConfig::timeout`] (the idle limit of one read or write), the TLS handshake
/// by [`ClientConfig::timeout`], on tokio's timer (a runtime with it enabled). Towards a
/// server in [`ClientConfig::hosts_try_fastopen`] the connection is made by the first flight,
/// through TCP Fast Open as on the blocking client ([`AsyncFastOpenStream`]): in the SYN when
/// the kernel holds a cookie for the server, with the same fallbacks and the same
/// [`Delivery::fast_open`].
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use tlsresume_smtp::tokio::Client;
/// use tlsresume_smtp::{ClientConfig, Message, NoTls};
///
/// let mut config = ClientConfig::new("client.example.net")?;
/// config.hosts_pipe_connect = "*".parse()?;
/// let client = Client::new(config);
/// let message = Message::new("a@example.net", ["b@example.org"], "Subject: hi\r\n\r\nhello\r\n");
/// let d = client.connect::<NoTls>("192.0.2.1:25".parse()?, None, None, &message).await?;
/// println!("{:?}", d.l_field());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    config: ClientConfig,
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

    /// [`crate::Client::connect`] on tokio.
    pub async fn connect<U: AsyncStartTls<TcpStream>>(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        tls: Option<&U>,
        message: &Message,
    ) -> Result<Delivery, SendError> {
        let messages = std::slice::from_ref(message);
        only(self.connect_many(peer, peer_name, tls, messages).await)
    }

    /// [`crate::Client::connect_many`] on tokio: several messages over one connection.
    pub async fn connect_many<U: AsyncStartTls<TcpStream>>(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        tls: Option<&U>,
        messages: &[Message],
    ) -> Result<Vec<Result<Delivery, SendError>>, SendError> {
        self.dial(peer, peer_name, tls, messages, None).await
    }

    /// [`crate::Client::connect_streamed`] on tokio: the content read from an `AsyncRead` as
    /// it goes on the wire, never held whole.
    pub async fn connect_streamed<U: AsyncStartTls<TcpStream>>(
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
        let messages = std::slice::from_ref(&envelope);
        let source = Some((message.content, message.size));
        only(self.dial(peer, peer_name, tls, messages, source).await)
    }

    async fn dial<U: AsyncStartTls<TcpStream>>(
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
        let at = (started, source);
        if self.config.hosts_try_fastopen.matches(peer.ip(), peer_name) {
            let stream = AsyncFastOpenStream::new(peer, self.config.timeout, true)
                .map_err(|e| SendError::io(Stage::Connect, &e))?;
            let report = stream.report();
            let over = (stream, AsyncFastOpenStream::into_tcp as Transport<_, _>);
            let sent = self
                .run(peer, peer_name, over, Start::Clear, tls, &checked.valid, at)
                .await?;
            let mut sent = checked.merge(sent);
            let fast_open = report.get().unwrap_or(FastOpen::NotTried);
            for d in sent.iter_mut().flatten() {
                d.fast_open = fast_open.clone();
            }
            return Ok(sent);
        }
        let stream = match tokio::time::timeout(self.config.timeout, TcpStream::connect(peer)).await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                return Err(SendError::new(
                    Stage::Connect,
                    ErrorClass::Temporary,
                    format!("{peer}: {e}"),
                )
                .caused_by(e))
            }
            Err(_) => {
                let e = deadline_passed("TCP connect");
                return Err(SendError::io(Stage::Connect, &e));
            }
        };
        stream
            .set_nodelay(true)
            .map_err(|e| SendError::io(Stage::Connect, &e))?;
        let over = (stream, Ok as Transport<_, _>);
        let sent = self
            .run(peer, peer_name, over, Start::Clear, tls, &checked.valid, at)
            .await?;
        Ok(checked.merge(sent))
    }

    /// [`crate::Client::send`] on tokio, over a connection the caller made.
    pub async fn send<S, U>(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        stream: S,
        start: Start,
        tls: Option<&U>,
        message: &Message,
    ) -> Result<Delivery, SendError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
        U: AsyncStartTls<S>,
    {
        let messages = std::slice::from_ref(message);
        only(
            self.send_many(peer, peer_name, stream, start, tls, messages)
                .await,
        )
    }

    /// [`crate::Client::send_many`] on tokio.
    pub async fn send_many<S, U>(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        stream: S,
        start: Start,
        tls: Option<&U>,
        messages: &[Message],
    ) -> Result<Vec<Result<Delivery, SendError>>, SendError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
        U: AsyncStartTls<S>,
    {
        let Some(checked) = Checked::new(messages) else {
            return Ok(Checked::refusals(messages));
        };
        let at = (Instant::now(), None);
        let over = (stream, Ok as Transport<_, _>);
        let sent = self
            .run(peer, peer_name, over, start, tls, &checked.valid, at)
            .await?;
        Ok(checked.merge(sent))
    }

    /// Runs the dialogue over `stream`; for STARTTLS, `transport` gives the stream the TLS
    /// library takes (the TCP stream under a Fast Open one).
    #[allow(clippy::too_many_arguments)]
    async fn run<S, T, U>(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        (stream, transport): (S, Transport<S, T>),
        start: Start,
        tls: Option<&U>,
        messages: &[Message],
        (started, source): (Instant, Option<Source<'_>>),
    ) -> Result<Vec<Result<Delivery, SendError>>, SendError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
        U: AsyncStartTls<T>,
    {
        let (size, mut reader) = match source {
            Some((reader, size)) => (Some(size), Some(reader)),
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
        let idle = self.config.timeout;
        let mut plain = stream;
        // The dialogue stops for TLS only when it was asked for.
        let paused = drive_client(&mut d, &mut plain, reader.as_deref_mut(), idle).await;
        let (Pause::StartTls, Some(upgrade)) = (paused, starttls) else {
            return d.finish(None);
        };
        let plain = match transport(plain) {
            Ok(plain) => plain,
            Err(e) => {
                d.upgraded(Err(SendError::io(Stage::StartTls, &e)));
                return d.finish(None);
            }
        };
        let upgraded = {
            let context = d.upgrade_context();
            tokio::time::timeout(idle, upgrade.upgrade(plain, &context)).await
        };
        match upgraded {
            Ok(Ok(mut tls)) => {
                d.upgraded(Ok(()));
                drive_client(&mut d, &mut tls, reader, idle).await;
                d.finish(U::session_info(&tls))
            }
            Ok(Err(e)) => d.handshake_failed(e, U::classify),
            Err(_) => {
                let e = deadline_passed("TLS handshake");
                d.upgraded(Err(SendError::io(Stage::StartTls, &e)));
                d.finish(None)
            }
        }
    }
}

/// What the TLS library takes for STARTTLS, from the stream the dialogue ran over.
type Transport<S, T> = fn(S) -> io::Result<T>;

/// A streamed message's content and its declared size.
type Source<'r> = (&'r mut (dyn AsyncRead + Unpin + Send), Option<u64>);

/// [`crate::dialogue::drive`] over an async stream: runs `dialogue` until it needs the TLS
/// handshake or is over; `body` gives a streamed message's content. Each read ends at the
/// deadline of the reply awaited or after `idle` without a byte, whichever comes first; each
/// write after `idle`.
pub async fn drive_client<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    dialogue: &mut Dialogue,
    stream: &mut S,
    mut body: Option<&mut (dyn AsyncRead + Unpin + Send + '_)>,
    idle: Duration,
) -> Pause {
    let mut buf = [0u8; 4096];
    let mut piece = Vec::new();
    loop {
        match dialogue.step() {
            Step::Write(mut bytes) => {
                let write = async {
                    stream.write_all(&bytes).await?;
                    stream.flush().await
                };
                let written = tokio::time::timeout(idle, write).await;
                // What went may hold an AUTH response: wiped, not left to the allocator.
                zeroize::Zeroize::zeroize(&mut bytes);
                match written {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => dialogue.write_failed(e),
                    Err(_) => dialogue.write_failed(deadline_passed("SMTP write")),
                }
            }
            Step::Read { until } => {
                let now = Instant::now();
                if until.is_some_and(|u| now >= u) {
                    dialogue.timed_out();
                    continue;
                }
                let idle_end = now + idle;
                let end = until.map_or(idle_end, |u| u.min(idle_end));
                let read = stream.read(&mut buf);
                match tokio::time::timeout_at(end.into(), read).await {
                    Ok(read) => dialogue.received(read.map(|n| &buf[..n])),
                    Err(_) if end < idle_end => dialogue.timed_out(),
                    Err(_) => dialogue.received(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the read timeout passed",
                    ))),
                }
            }
            Step::Body => match body.as_deref_mut() {
                Some(reader) => {
                    piece.resize(64 * 1024, 0);
                    let read = reader.read(&mut piece).await;
                    dialogue.body(read.map(|n| &piece[..n]));
                }
                None => dialogue.body(Ok(&[])),
            },
            Step::StartTls => return Pause::StartTls,
            Step::Done => return Pause::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawnable<T: Send>(_: &T) {}

    /// The client's futures can be spawned on a multi-threaded runtime.
    #[test]
    fn the_client_futures_are_send() {
        let client = Client::new(ClientConfig::new("client.test").expect("name"));
        let peer: SocketAddr = "127.0.0.1:25".parse().expect("addr");
        let message = Message::new("a@example.test", ["b@example.test"], "hi\r\n");
        let messages = [message.clone()];
        spawnable(&client.connect::<NoTls>(peer, None, None, &message));
        spawnable(&client.connect_many::<NoTls>(peer, None, None, &messages));
        let mut content: &[u8] = b"hi\r\n";
        let streamed = StreamedMessage {
            mail_from: "a@example.test".into(),
            rcpt_to: vec!["b@example.test".into()],
            content: &mut content,
            size: None,
            dsn: Dsn::default(),
        };
        spawnable(&client.connect_streamed::<NoTls>(peer, None, None, streamed));
    }
}
