//! Why a delivery attempt failed, and what an MTA does about it: [`SendError`], its
//! [`Stage`] and its [`ErrorClass`].

use core::fmt;
use std::io;

use tlsresume_core::ErrorKind;

use crate::envelope::EnvelopeError;
use crate::fastopen::ConnectError;
use crate::reply::{Reply, ReplyError};

/// Where a connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Connecting.
    Connect,
    /// The server's greeting.
    Banner,
    /// EHLO (or HELO).
    Ehlo,
    /// STARTTLS and the TLS handshake.
    StartTls,
    /// AUTH (RFC 4954), under TLS.
    Auth,
    /// MAIL FROM.
    Mail,
    /// RCPT TO (every recipient refused, or the replies could not be read).
    Rcpt,
    /// DATA or BDAT, before the content was sent.
    Data,
    /// After the content was sent, before the server's final reply. The server may or may
    /// not have taken the message (RFC 1047); see [`SendError`].
    Content,
    /// QUIT, at the end of a connection that sent no message.
    Quit,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Banner => "banner",
            Stage::Ehlo => "EHLO",
            Stage::StartTls => "STARTTLS",
            Stage::Auth => "AUTH",
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Content => "end of data",
            Stage::Quit => "QUIT",
        })
    }
}

/// What an MTA does with a failed attempt: the class of a [`SendError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// A 5xx reply, or an envelope the client refuses to send: retrying cannot help; bounce
    /// (or, at the banner, try another MX host).
    Permanent,
    /// A 4xx reply, the connection lost, refused or timed out: retry later.
    Temporary,
    /// The server's certificate did not verify (or a required OCSP status was missing): the
    /// caller's TLS policy decides: defer, bounce, or deliver in clear. The library's error
    /// is the [`SendError`]'s `source()`.
    Certificate,
    /// The server broke the protocol: no valid reply, an unexpected code, bytes where none
    /// may be, a TLS handshake that failed for another reason than the certificate, STARTTLS
    /// required and not offered. Retry later, or another MX host.
    Protocol,
}

impl ErrorClass {
    /// Its name: `permanent`, `temporary`, `certificate`, `protocol`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Permanent => "permanent",
            ErrorClass::Temporary => "temporary",
            ErrorClass::Certificate => "certificate",
            ErrorClass::Protocol => "protocol",
        }
    }

    /// The class of a server's reply that refused a command: 5xx permanent, 4xx temporary,
    /// anything else where it was not expected a protocol error.
    pub fn of_reply(reply: &Reply) -> Self {
        if reply.is_permanent() {
            ErrorClass::Permanent
        } else if reply.is_transient() {
            ErrorClass::Temporary
        } else {
            ErrorClass::Protocol
        }
    }

    /// The class of a TLS library's error ([`tlsresume_core::Error::kind`]): a certificate or
    /// OCSP failure is [`Certificate`](Self::Certificate), I/O (a timeout too) is
    /// [`Temporary`](Self::Temporary), the rest [`Protocol`](Self::Protocol).
    pub fn of_tls(e: &tlsresume_core::Error) -> Self {
        match e.kind() {
            ErrorKind::Certificate | ErrorKind::Ocsp => ErrorClass::Certificate,
            ErrorKind::Io => ErrorClass::Temporary,
            _ => ErrorClass::Protocol,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed delivery attempt: where ([`stage`](Self::stage)), what the server said
/// ([`reply`](Self::reply), with its [enhanced status](Reply::enhanced_status)) or what failed
/// underneath (`source()`: the TLS library's error, the I/O error, the envelope check), and
/// what to do about it ([`class`](Self::class)).
///
/// Nothing was delivered unless the stage is [`Stage::Content`]: every other failure happens
/// before the server's final reply to the message was due, so the caller may retry it
/// without sending the message twice. [`is_temporary`](Self::is_temporary) says whether a
/// retry can succeed (every class but [`ErrorClass::Permanent`]):
///
/// - **temporary**: a 4xx reply; the connection lost or timed out; and any failure on a
///   connection that spoke early while the server's features had changed (the cache entry
///   was rewritten or deleted, so the retry goes the normal way);
/// - **protocol**: garbage or an unexpected reply; **certificate**: see [`ErrorClass`];
/// - **permanent**: a 5xx reply (for the banner too: the server refuses this client; try
///   another MX host if there is one); an envelope address the client refuses to send
///   ([`envelope`](Self::envelope), at [`Stage::Mail`] or [`Stage::Rcpt`], before connecting).
///
/// At [`Stage::Content`] with a temporary error the outcome is unknown: the connection broke
/// after the whole message was sent and before the server's reply. Retrying may duplicate
/// the message, not retrying may lose it; RFC 5321 §4.1.1.4 and RFC 1047 leave it to the
/// caller, and MTAs (Exim too) retry.
#[derive(Debug)]
pub struct SendError {
    /// Where it failed.
    pub stage: Stage,
    /// What to do about it.
    pub class: ErrorClass,
    /// The server's reply, when the failure was one.
    pub reply: Option<Reply>,
    /// What went wrong, in words.
    pub detail: String,
    /// Whether commands were sent before the banner on this connection.
    pub early: bool,
    /// The envelope address refused before connecting ([`Message::check`](crate::Message::check)),
    /// also the error's `source()`.
    pub envelope: Option<EnvelopeError>,
    /// What failed underneath: the TLS library's error, the I/O error.
    cause: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl SendError {
    /// Whether a retry may succeed: every class but [`ErrorClass::Permanent`].
    pub fn is_temporary(&self) -> bool {
        self.class != ErrorClass::Permanent
    }

    /// The class.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// The TLS library's error, when the TLS handshake failed through a tlsresume backend
    /// ([`crate::TlsUpgrade`]).
    pub fn tls_error(&self) -> Option<&tlsresume_core::Error> {
        self.cause.as_deref()?.downcast_ref()
    }

    /// The I/O error underneath, when the transport failed (a timeout shows here, as the
    /// transport said it).
    pub fn io_error(&self) -> Option<&io::Error> {
        let cause = self.cause.as_deref()?;
        match cause.downcast_ref::<ReplyError>() {
            Some(ReplyError::Io(e)) => Some(e),
            Some(_) => None,
            None => cause.downcast_ref(),
        }
    }

    pub(crate) fn new(stage: Stage, class: ErrorClass, detail: impl Into<String>) -> Self {
        Self {
            stage,
            class,
            reply: None,
            detail: detail.into(),
            early: false,
            envelope: None,
            cause: None,
        }
    }

    /// With `cause` as the `source()`.
    pub(crate) fn caused_by(
        mut self,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// A failed TLS handshake, classed by `class`.
    pub(crate) fn tls<E: std::error::Error + Send + Sync + 'static>(
        e: E,
        class: ErrorClass,
    ) -> Self {
        Self::new(Stage::StartTls, class, format!("TLS handshake failed: {e}")).caused_by(e)
    }

    pub(crate) fn bad_envelope(e: EnvelopeError) -> Self {
        let stage = match e.field {
            crate::EnvelopeField::MailFrom | crate::EnvelopeField::Envid => Stage::Mail,
            crate::EnvelopeField::RcptTo(_) | crate::EnvelopeField::Orcpt(_) => Stage::Rcpt,
        };
        Self {
            envelope: Some(e),
            ..Self::new(stage, ErrorClass::Permanent, e.to_string())
        }
    }

    pub(crate) fn io(stage: Stage, e: &io::Error) -> Self {
        Self::new(
            stage,
            ErrorClass::Temporary,
            format!("connection failed: {e}"),
        )
        .caused_by(io::Error::new(e.kind(), e.to_string()))
    }

    pub(crate) fn read(stage: Stage, e: ReplyError) -> Self {
        // A connection made by its first write or read fails to connect there.
        if let ReplyError::Io(io) = &e {
            if let Some(connect) = io.get_ref().and_then(|i| i.downcast_ref::<ConnectError>()) {
                return Self::new(Stage::Connect, ErrorClass::Temporary, connect.to_string());
            }
        }
        let class = match e {
            ReplyError::Io(_) | ReplyError::Closed { .. } => ErrorClass::Temporary,
            _ => ErrorClass::Protocol,
        };
        Self::new(stage, class, format!("no valid reply: {e}")).caused_by(e)
    }

    pub(crate) fn refused(stage: Stage, reply: Reply) -> Self {
        Self {
            reply: Some(reply.clone()),
            ..Self::new(
                stage,
                ErrorClass::of_reply(&reply),
                format!("refused by the server: {reply}"),
            )
        }
    }

    /// Makes a permanent failure temporary (the retry will go another way).
    pub(crate) fn soften(&mut self) {
        if self.class == ErrorClass::Permanent {
            self.class = ErrorClass::Temporary;
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SMTP {} failed ({}{}): {}",
            self.stage,
            self.class,
            if self.early { ", early pipelining" } else { "" },
            self.detail
        )
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if let Some(e) = &self.envelope {
            return Some(e);
        }
        self.cause
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
