//! What a server sends for session resumption, seen by one OpenSSL client connection: for
//! audits of a server (`tlsresume scan`), not for applications.
//!
//! [`Inspector::connect`] runs one handshake with a chosen TLS version, asking for tickets or
//! not (TLS 1.2 session IDs only), offering a session held from an earlier connection or not,
//! and reports what the library and the wire showed: the ServerHello's session ID length and
//! ticket extension (read off the clear handshake records), every ticket the server sent with
//! its lifetime hint, its first 16 bytes (the key name, in the formats that carry one: OpenSSL's,
//! GnuTLS's, tlsresume's) and `max_early_data` (from OpenSSL's session APIs; a TLS 1.3
//! NewSessionTicket is encrypted, so its count comes from the new-session callback, once per
//! ticket), and whether the session was resumed. No tlsresume policy, store or clock is
//! involved: sessions are held by the caller as [`HeldSession`] and offered as they are, so the
//! same TLS 1.3 ticket can be offered twice.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use openssl::ex_data::Index;
use openssl::ssl::{
    Ssl, SslContext, SslMethod, SslRef, SslSession, SslSessionCacheMode, SslStream, SslVerifyMode,
    StatusType,
};
use tlsresume_core::deadline::Deadline;
use tlsresume_core::wire::{
    parse_server_hello, parse_tls12_ticket, ClearHandshake, ServerHello, Tls12Ticket,
    HANDSHAKE_NEW_SESSION_TICKET, HANDSHAKE_SERVER_HELLO,
};
use tlsresume_core::{Error, ProtocolVersion, Versions};

/// The most TLS 1.3 tickets one inspection keeps (a server may send them without end).
pub const MAX_TICKETS: usize = 32;

use crate::{config, error, ffi};

/// A session the server gave, held to be offered on a later connection.
#[derive(Clone)]
pub struct HeldSession(SslSession);

impl fmt::Debug for HeldSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldSession").finish_non_exhaustive()
    }
}

/// One ticket the server sent (a TLS 1.2 or TLS 1.3 NewSessionTicket).
#[derive(Clone, Debug)]
pub struct TicketSeen {
    /// The lifetime hint (TLS 1.2 `ticket_lifetime_hint`, TLS 1.3 `ticket_lifetime`).
    pub lifetime_hint: Duration,
    /// The ticket's length in bytes (0: a TLS 1.2 server that keeps the client's ticket).
    pub len: usize,
    /// The ticket's first 16 bytes (fewer when it is shorter): the key name in the formats
    /// that begin with one. Whether this server's format does is for the caller to judge
    /// (the same prefix on tickets of separate handshakes).
    pub prefix: Vec<u8>,
    /// TLS 1.3 `max_early_data` of the ticket (0: no early data).
    pub max_early_data: u32,
    /// The session this ticket resumes, to offer later.
    pub session: HeldSession,
}

/// What one connection showed.
#[derive(Clone, Debug)]
pub struct Inspection {
    /// The negotiated version.
    pub protocol: ProtocolVersion,
    /// The cipher suite (IANA name where OpenSSL knows it).
    pub cipher: String,
    /// Whether a session was offered.
    pub offered: bool,
    /// Whether the server resumed it (`SSL_session_reused`).
    pub resumed: bool,
    /// TLS 1.2: the length of the session ID in the ServerHello (0: the server keeps no
    /// session for an ID resumption). `None` when the ServerHello was not read.
    pub session_id_len: Option<usize>,
    /// TLS 1.2: whether the ServerHello carried the session_ticket extension (a ticket follows).
    pub ticket_extension: bool,
    /// The tickets received, in order (TLS 1.3: those that arrived within the wait after the
    /// handshake, at most [`MAX_TICKETS`]).
    pub tickets: Vec<TicketSeen>,
    /// The connection's session after the handshake (for a TLS 1.2 ID resumption); `None`
    /// when OpenSSL holds none that resumes.
    pub session: Option<HeldSession>,
    /// TLS 1.3: the PSK key exchange mode the server chose on a resumption: `psk_dhe_ke`
    /// (its ServerHello carries a key share) or `psk_ke` (none); `None` when no PSK was
    /// accepted.
    pub psk_mode: Option<&'static str>,
    /// Whether an OCSP response was stapled.
    pub ocsp_stapled: bool,
    /// Whether the server sent application data (an SMTP banner) during the wait.
    pub app_data: bool,
}

/// What one connection asks and offers.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The server name sent as SNI (none for an IP address).
    pub server_name: &'a str,
    /// Ask for tickets (TLS 1.2 session_ticket extension); `false`: session IDs only.
    pub tickets: bool,
    /// The session to offer.
    pub offer: Option<&'a HeldSession>,
    /// How long to wait, after the handshake, for more bytes (TLS 1.3 tickets) before
    /// deciding none come (at least three times the handshake's own time); reading stops
    /// early at application data.
    pub wait: Duration,
}

/// An OpenSSL client for one TLS version, without verification (an audit reads what the
/// server sends whatever its certificate), asking for an OCSP staple.
pub struct Inspector {
    ctx: SslContext,
    version: ProtocolVersion,
}

impl fmt::Debug for Inspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspector")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The sessions the new-session callback received on one connection.
type Received = Arc<Mutex<Vec<SslSession>>>;

fn received_index() -> Option<Index<Ssl, Received>> {
    static INDEX: OnceLock<Option<Index<Ssl, Received>>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().ok())
}

impl Inspector {
    /// A client of `version` only.
    pub fn new(version: ProtocolVersion) -> Result<Self, Error> {
        let mut ctx = SslContext::builder(SslMethod::tls_client())
            .map_err(|e| error::config("SSL context", e))?;
        config::set_versions(&mut ctx, Versions::only(version))?;
        ctx.set_verify(SslVerifyMode::NONE);
        ctx.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL);
        ctx.set_new_session_callback(|ssl: &mut SslRef, session: SslSession| {
            // AssertUnwindSafe: a vector behind a mutex whose poisoning its reader tolerates.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                let Some(received) = received_index().and_then(|i| ssl.ex_data(i)) else {
                    return;
                };
                // A copy of its own: libssl may later mark the connection's session.
                // At most MAX_TICKETS kept: a server may send tickets for as long as it likes.
                let mut kept = received.lock().unwrap_or_else(|p| p.into_inner());
                if kept.len() < MAX_TICKETS {
                    if let Ok(copy) = ffi::session_dup(&session) {
                        kept.push(copy);
                    }
                }
            }));
        });
        Ok(Self {
            ctx: ctx.build(),
            version,
        })
    }

    /// Runs one handshake on `tcp` (connected; after STARTTLS when the protocol has one),
    /// waits for tickets, and closes the TLS connection. `tcp`'s [`Deadline`] bounds it all: a
    /// server that dribbles its bytes or sends tickets without end is cut there (the socket's
    /// read timeout alone restarts with every byte).
    pub fn connect(
        &self,
        tcp: Deadline<TcpStream>,
        request: &Request<'_>,
    ) -> Result<Inspection, Error> {
        let index = received_index().ok_or_else(|| error::tls("no SSL ex_data index"))?;
        let mut ssl = Ssl::new(&self.ctx).map_err(|e| error::stack("SSL", e))?;
        let received = Received::default();
        ssl.set_ex_data(index, Arc::clone(&received));
        if request.server_name.parse::<IpAddr>().is_err() {
            ssl.set_hostname(request.server_name)
                .map_err(|e| error::stack("server name", e))?;
        }
        ssl.set_status_type(StatusType::OCSP)
            .map_err(|e| error::stack("OCSP status request", e))?;
        if !request.tickets {
            ffi::set_no_ticket(&mut ssl);
        }
        if let Some(held) = request.offer {
            let copy = ffi::session_dup(&held.0).map_err(|e| error::stack("session copy", e))?;
            ffi::set_session(&mut ssl, &copy).map_err(|e| error::stack("offered session", e))?;
        }
        let wire = Arc::new(Mutex::new(Wire::default()));
        let tap = Tap {
            inner: tcp,
            wire: Arc::clone(&wire),
        };
        let started = Instant::now();
        let mut stream = ssl.connect(tap).map_err(error::handshake)?;
        let protocol = config::protocol_of(stream.ssl()).unwrap_or(self.version);
        let app_data = if protocol == ProtocolVersion::Tls13 {
            wait_for_tickets(&mut stream, request.wait.max(started.elapsed() * 3))
        } else {
            false
        };
        let _ = stream.shutdown();
        let ssl = stream.ssl();
        let wire = std::mem::take(&mut *wire.lock().unwrap_or_else(|p| p.into_inner()));
        let sessions = std::mem::take(&mut *received.lock().unwrap_or_else(|p| p.into_inner()));
        let session = ssl
            .session()
            .filter(|s| ffi::session_is_resumable(s))
            .and_then(|s| ffi::session_dup(s).ok())
            .map(HeldSession);
        let tickets = if protocol == ProtocolVersion::Tls13 {
            sessions
                .into_iter()
                .map(|s| ticket_of(s, None))
                .collect::<Vec<_>>()
        } else {
            // A TLS 1.2 ticket travels in clear: as the server sent it, resumed by the
            // connection's session (which holds it).
            match (&session, wire.tls12_ticket) {
                (Some(held), Some(sent)) => vec![ticket_of(held.0.clone(), Some(sent))],
                _ => Vec::new(),
            }
        };
        let cipher = ssl.current_cipher().map_or_else(String::new, |c| {
            c.standard_name().unwrap_or_else(|| c.name()).to_owned()
        });
        Ok(Inspection {
            protocol,
            cipher,
            offered: request.offer.is_some(),
            resumed: ssl.session_reused(),
            session_id_len: wire.server_hello.map(|h| h.session_id_len),
            ticket_extension: wire.server_hello.is_some_and(|h| h.session_ticket),
            tickets,
            session,
            psk_mode: wire.server_hello.filter(|h| h.pre_shared_key).map(|h| {
                if h.key_share {
                    "psk_dhe_ke"
                } else {
                    "psk_ke"
                }
            }),
            ocsp_stapled: ssl.ocsp_status().is_some_and(|r| !r.is_empty()),
            app_data,
        })
    }
}

/// A ticket's report from its session (TLS 1.3) or from what the wire showed (TLS 1.2).
fn ticket_of(session: SslSession, sent: Option<Tls12Ticket>) -> TicketSeen {
    let (hint, bytes) = match sent {
        Some(s) => (u64::from(s.lifetime_hint), s.ticket),
        None => (
            ffi::ticket_lifetime_hint(&session),
            ffi::session_ticket(&session),
        ),
    };
    TicketSeen {
        lifetime_hint: Duration::from_secs(hint),
        len: bytes.len(),
        prefix: bytes.iter().take(16).copied().collect(),
        max_early_data: session.max_early_data(),
        session: HeldSession(session),
    }
}

/// Reads until application data arrives, the server is silent for `wait`, or the connection
/// ends: OpenSSL processes the TLS 1.3 tickets on the way. `true` when data arrived.
fn wait_for_tickets(stream: &mut SslStream<Tap>, wait: Duration) -> bool {
    let _ = stream
        .get_ref()
        .inner
        .get_ref()
        .set_read_timeout(Some(wait.max(Duration::from_millis(1))));
    let mut buf = [0u8; 4096];
    // One read: OpenSSL keeps reading past tickets until data, the end, or the timeout.
    stream.ssl_read(&mut buf).is_ok_and(|n| n > 0)
}

/// What the clear handshake records showed.
#[derive(Debug, Default)]
struct Wire {
    clear: ClearHandshake,
    server_hello: Option<ServerHello>,
    tls12_ticket: Option<Tls12Ticket>,
}

impl Wire {
    fn feed(&mut self, bytes: &[u8]) {
        let (hello, ticket) = (&mut self.server_hello, &mut self.tls12_ticket);
        self.clear.feed(bytes, |kind, body| match kind {
            HANDSHAKE_SERVER_HELLO => *hello = parse_server_hello(body).or(*hello),
            HANDSHAKE_NEW_SESSION_TICKET => *ticket = parse_tls12_ticket(body),
            _ => {}
        });
    }
}

/// The TCP stream, with the server's clear handshake bytes read on their way to OpenSSL.
#[derive(Debug)]
struct Tap {
    inner: Deadline<TcpStream>,
    wire: Arc<Mutex<Wire>>,
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.wire
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .feed(&buf[..n]);
        Ok(n)
    }
}

impl Write for Tap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
