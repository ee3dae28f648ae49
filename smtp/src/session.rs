//! The client's opening of an SMTP connection, without I/O: banner, EHLO, STARTTLS, and under
//! TLS EHLO and QUIT. [`ClientSession`] takes the server's bytes ([`ClientSession::feed`]) and
//! says what to send ([`ClientSession::output`]) and what happened ([`Opened`]); [`open`]
//! runs it over a blocking stream, `tokio::open` over an async one.
//!
//! It is what a TLS prober needs of SMTP (the handshake's inputs: STARTTLS, and the host name
//! of the EHLO response, Exim's load-balancer name in the session cache key) and what
//! [`crate::Client`] does first.

use std::collections::VecDeque;
use std::io::{Read, Write};

use crate::ehlo::{EhloFeatures, EhloResponse};
use crate::error::{ErrorClass, SendError, Stage};
use crate::reply::{Assembler, Reply, ReplyError, MAX_LINE};

/// What the session was opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// Banner, EHLO, STARTTLS: stops when the server said 220 to STARTTLS.
    StartTls,
    /// EHLO and QUIT (after the banner when `banner`): a look at the server, under TLS or
    /// not.
    Quit {
        /// Read a banner first (a new connection, or TLS-on-connect).
        banner: bool,
    },
}

/// What the opening ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// The server is ready to start TLS; nothing was sent after its 220.
    StartTls {
        /// The EHLO response (its host name is Exim's load-balancer name).
        ehlo: EhloResponse,
    },
    /// The server answered QUIT.
    Quit {
        /// The EHLO response.
        ehlo: EhloResponse,
    },
}

impl Opened {
    /// The EHLO response.
    pub fn ehlo(&self) -> &EhloResponse {
        match self {
            Opened::StartTls { ehlo } | Opened::Quit { ehlo } => ehlo,
        }
    }

    /// The host name from the first line of the EHLO response, when it gave one: the
    /// load-balancer name of the TLS session cache key (Exim's `host_name_extract`).
    pub fn lb_name(&self) -> Option<&str> {
        Some(self.ehlo().host.as_str()).filter(|h| !h.is_empty())
    }
}

/// Which reply is awaited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaited {
    Banner,
    Ehlo,
    StartTls,
    Quit,
}

/// The client's opening dialogue, without I/O. See the [module](self).
///
/// ```
/// use tlsresume_smtp::session::{ClientSession, Goal, Opened};
///
/// let mut s = ClientSession::new("client.example", Goal::StartTls);
/// assert_eq!(s.output(), b""); // the banner comes first
/// assert_eq!(s.feed(b"220 mx ESMTP\r\n")?, None);
/// assert_eq!(s.take_output(), b"EHLO client.example\r\n");
/// assert_eq!(s.feed(b"250-mx1.example.org hi\r\n250 STARTTLS\r\n")?, None);
/// assert_eq!(s.take_output(), b"STARTTLS\r\n");
/// let opened = s.feed(b"220 go ahead\r\n")?.expect("done");
/// assert_eq!(opened.lb_name(), Some("mx1.example.org"));
/// # Ok::<(), tlsresume_smtp::SendError>(())
/// ```
#[derive(Debug)]
pub struct ClientSession {
    helo: String,
    goal: Goal,
    out: Vec<u8>,
    /// Bytes of a reply line not yet complete.
    partial: Vec<u8>,
    asm: Assembler,
    awaited: VecDeque<Awaited>,
    ehlo: Option<EhloResponse>,
    done: bool,
}

impl ClientSession {
    /// A session saying `EHLO helo`, opened for `goal`.
    pub fn new(helo: impl Into<String>, goal: Goal) -> Self {
        let mut s = Self {
            helo: helo.into(),
            goal,
            out: Vec::new(),
            partial: Vec::new(),
            asm: Assembler::default(),
            awaited: VecDeque::new(),
            ehlo: None,
            done: false,
        };
        match goal {
            Goal::StartTls | Goal::Quit { banner: true } => s.awaited.push_back(Awaited::Banner),
            Goal::Quit { banner: false } => s.ehlo(),
        }
        s
    }

    /// The bytes to send.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Takes the bytes to send.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Whether the dialogue is over (an error or [`Opened`] was returned).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The stage of the reply awaited now, for errors from the transport.
    pub fn stage(&self) -> Stage {
        match self.awaited.front() {
            Some(Awaited::Banner) => Stage::Banner,
            Some(Awaited::StartTls) => Stage::StartTls,
            Some(Awaited::Quit) => Stage::Quit,
            Some(Awaited::Ehlo) | None => Stage::Ehlo,
        }
    }

    /// The error for a connection that ended before the dialogue did.
    pub fn closed(&self) -> SendError {
        SendError::read(
            self.stage(),
            ReplyError::Closed {
                lines_read: self.asm.lines_read(),
            },
        )
    }

    fn ehlo(&mut self) {
        self.out
            .extend_from_slice(format!("EHLO {}\r\n", self.helo).as_bytes());
        self.awaited.push_back(Awaited::Ehlo);
    }

    fn send(&mut self, command: &str, awaited: Awaited) {
        self.out.extend_from_slice(command.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.awaited.push_back(awaited);
    }

    /// Takes the outcome of one read from the transport, for a front: as
    /// [`feed`](Self::feed); the end of the stream and a failed read are errors at the stage
    /// awaited (an interrupted read is nothing).
    pub fn received(&mut self, read: std::io::Result<&[u8]>) -> Result<Option<Opened>, SendError> {
        match read {
            Ok([]) => Err(self.closed()),
            Ok(bytes) => self.feed(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(SendError::read(self.stage(), ReplyError::read(e))),
        }
    }

    /// The error for output that could not be written.
    pub fn write_failed(&self, e: &std::io::Error) -> SendError {
        SendError::io(self.stage(), e)
    }

    /// Takes the server's bytes: `Ok(Some(..))` once the dialogue reached its goal, `Ok(None)`
    /// while it goes on (send the [`output`](Self::output)), `Err` when it failed.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<Option<Opened>, SendError> {
        while !input.is_empty() {
            if self.done {
                // Bytes after the last reply: after 220 to STARTTLS they would be taken as the
                // server's under TLS (STARTTLS response injection).
                return Err(SendError::new(
                    self.stage(),
                    ErrorClass::Protocol,
                    format!("the server sent {} byte(s) after its last reply (refused: possible STARTTLS response injection)", input.len()),
                ));
            }
            let lf = input.iter().position(|&b| b == b'\n');
            let take = lf.map_or(input.len(), |i| i + 1);
            self.partial.extend_from_slice(&input[..take]);
            input = &input[take..];
            if lf.is_none() {
                if self.partial.len() >= MAX_LINE {
                    return Err(self.fail(ReplyError::LineTooLong));
                }
                continue;
            }
            let line = std::mem::take(&mut self.partial);
            let reply = match self.asm.push(&line) {
                Ok(Some(reply)) => reply,
                Ok(None) => continue,
                Err(e) => return Err(self.fail(e)),
            };
            if let Some(opened) = self.reply(reply)? {
                if !input.is_empty() {
                    continue;
                }
                return Ok(Some(opened));
            }
        }
        Ok(None)
    }

    fn fail(&mut self, e: ReplyError) -> SendError {
        self.done = true;
        SendError::read(self.stage(), e)
    }

    fn reply(&mut self, reply: Reply) -> Result<Option<Opened>, SendError> {
        let stage = self.stage();
        let awaited = self.awaited.pop_front();
        let refused = |done: &mut bool, reply: Reply| {
            *done = true;
            SendError::refused(stage, reply)
        };
        match awaited {
            Some(Awaited::Banner) if reply.code() == 220 => self.ehlo(),
            Some(Awaited::Ehlo) if reply.code() == 250 => {
                let ehlo = EhloResponse::parse(reply.lines()).map_err(|e| {
                    self.done = true;
                    SendError::new(Stage::Ehlo, ErrorClass::Protocol, e.to_string())
                })?;
                let starttls = ehlo.features.contains(EhloFeatures::STARTTLS);
                self.ehlo = Some(ehlo);
                match self.goal {
                    Goal::StartTls if !starttls => {
                        self.done = true;
                        return Err(SendError::new(
                            Stage::StartTls,
                            ErrorClass::Protocol,
                            "TLS required but the server does not offer STARTTLS",
                        ));
                    }
                    Goal::StartTls => self.send("STARTTLS", Awaited::StartTls),
                    Goal::Quit { .. } => self.send("QUIT", Awaited::Quit),
                }
            }
            Some(Awaited::StartTls) if reply.code() == 220 => {
                self.done = true;
                let ehlo = self.ehlo.take().unwrap_or_else(empty_ehlo);
                return Ok(Some(Opened::StartTls { ehlo }));
            }
            Some(Awaited::Quit) if reply.code() == 221 => {
                self.done = true;
                let ehlo = self.ehlo.take().unwrap_or_else(empty_ehlo);
                return Ok(Some(Opened::Quit { ehlo }));
            }
            _ => return Err(refused(&mut self.done, reply)),
        }
        Ok(None)
    }
}

pub(crate) fn empty_ehlo() -> EhloResponse {
    EhloResponse {
        host: String::new(),
        keywords: Vec::new(),
        features: EhloFeatures::empty(),
        auth: Vec::new(),
        limits: Default::default(),
        size: None,
    }
}

/// Runs `session` over a blocking `stream` to its end. Reads at most what the server sends
/// before its last reply plus what it sent with it (anything more is refused), so the stream
/// is ready for the TLS handshake after [`Opened::StartTls`].
pub fn open<S: Read + Write + ?Sized>(
    session: &mut ClientSession,
    stream: &mut S,
) -> Result<Opened, SendError> {
    let mut buf = [0u8; 1024];
    loop {
        let out = session.take_output();
        stream
            .write_all(&out)
            .and_then(|()| stream.flush())
            .map_err(|e| session.write_failed(&e))?;
        let read = stream.read(&mut buf);
        if let Some(opened) = session.received(read.map(|n| &buf[..n]))? {
            return Ok(opened);
        }
    }
}
