//! `SessionInfo` from a rustls connection, and `Stream`, the connection that reports it.

use core::fmt;
use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::{CipherSuite, CommonState, HandshakeKind, ServerConnection, SupportedCipherSuite};
use tlsresume_core::info::{exim_cipher_string, share_chain};
use tlsresume_core::{CipherNames, ProtocolVersion, SessionInfo, Side};

use crate::client::ClientIo;
use crate::config::provider;
use crate::io::Tls;
use crate::tickets::TicketRecord;

/// Whether the handshake resumed a session.
pub(crate) fn resumed(conn: &CommonState) -> bool {
    conn.handshake_kind() == Some(HandshakeKind::Resumed)
}

/// The negotiated version.
pub(crate) fn protocol(conn: &CommonState) -> ProtocolVersion {
    ProtocolVersion::from_wire(conn.protocol_version().map(u16::from).unwrap_or(0))
}

/// The suite under its three names. rustls names TLS 1.3 suites `TLS13_…`; the IANA name (and
/// so the Exim string) drops the `13`. The Exim string is the same on full and resumed
/// handshakes.
///
/// The names depend on the suite alone (a suite belongs to one TLS version), so they are made
/// once per process for every suite of the provider and lent from that table (`&'static str`,
/// no copy per connection): building them per connection (three strings, a search-and-replace,
/// a `format!`) cost ~2 700 instructions of a ~178 000-instruction resumed TLS 1.2 handshake,
/// and owning copies ~110 bytes per connection.
pub(crate) fn cipher(conn: &CommonState) -> CipherNames {
    let Some(suite) = conn.negotiated_cipher_suite() else {
        return CipherNames::default();
    };
    static TABLE: OnceLock<Vec<(CipherSuite, CipherNames)>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        provider()
            .cipher_suites
            .iter()
            .map(|s| (s.suite(), names(s)))
            .collect()
    });
    match table.iter().find(|(code, _)| *code == suite.suite()) {
        Some((_, names)) => CipherNames {
            native: Cow::Borrowed(&names.native),
            exim: Cow::Borrowed(&names.exim),
            iana: Cow::Borrowed(&names.iana),
            bits: names.bits,
        },
        None => names(&suite),
    }
}

fn names(suite: &SupportedCipherSuite) -> CipherNames {
    let native = suite_name(suite.suite());
    let iana = native.replacen("TLS13_", "TLS_", 1);
    let bits = key_bits(suite);
    let version = match suite {
        SupportedCipherSuite::Tls13(_) => ProtocolVersion::Tls13,
        SupportedCipherSuite::Tls12(_) => ProtocolVersion::Tls12,
    };
    CipherNames {
        exim: exim_cipher_string(version, &iana, bits).into(),
        native: native.into(),
        iana: iana.into(),
        bits,
    }
}

/// rustls's name of the suite (`CipherSuite::as_str`), or its code point for one rustls has no
/// name for.
fn suite_name(suite: CipherSuite) -> String {
    match suite.as_str() {
        Some(name) => name.to_owned(),
        None => format!("0x{:04X}", u16::from(suite)),
    }
}

/// The AEAD key length in bits, from the suite's algorithm.
fn key_bits(suite: &SupportedCipherSuite) -> u32 {
    let bytes = match suite {
        SupportedCipherSuite::Tls13(s) => s.aead_alg.key_len(),
        SupportedCipherSuite::Tls12(s) => s.aead_alg.key_block_shape().enc_key_len,
    };
    u32::try_from(bytes.saturating_mul(8)).unwrap_or(0)
}

/// What a server connection needs to report itself.
#[derive(Debug)]
pub(crate) struct ServerState {
    pub(crate) record: Arc<Mutex<TicketRecord>>,
    /// The client-certificate verifier the connection ran under, when it asked for one.
    pub(crate) client_verifier: Option<Arc<crate::client_auth::ClientVerifier>>,
}

enum Inner<S: Read + Write> {
    Client {
        stream: ClientIo<S>,
    },
    Server {
        stream: Box<Tls<ServerConnection, S>>,
        state: ServerState,
    },
}

/// A stream of either side, reading and writing.
pub(crate) trait ReadWrite: Read + Write {}

impl<T: Read + Write + ?Sized> ReadWrite for T {}

/// An established TLS connection over rustls, on the transport `S` it was made on.
///
/// On a client, TLS 1.3 tickets arrive with the first read after the handshake; [`Stream::info`]
/// then shows `SERVER_TICKET` and the session is in the store.
pub struct Stream<S: Read + Write> {
    inner: Inner<S>,
    info: SessionInfo,
}

impl<S: Read + Write> Stream<S> {
    pub(crate) fn client(stream: ClientIo<S>) -> Self {
        let mut inner = Inner::Client { stream };
        let info = session_info(&inner);
        if let Inner::Client { stream } = &mut inner {
            stream.release();
        }
        Self { inner, info }
    }

    pub(crate) fn server(stream: Box<Tls<ServerConnection, S>>, state: ServerState) -> Self {
        let inner = Inner::Server { stream, state };
        let info = session_info(&inner);
        Self { inner, info }
    }

    /// Why the client offered no session, if it offered none (also in
    /// [`SessionInfo::no_offer`]).
    pub fn no_offer(&self) -> Option<tlsresume_core::NoOffer> {
        self.info.no_offer
    }

    /// What the handshake (and any tickets since) produced.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        match &self.inner {
            Inner::Client { stream, .. } => stream.stream.sock.get_ref(),
            Inner::Server { stream, .. } => &stream.sock,
        }
    }

    /// The transport, mutable: for timeouts and socket options. Reading or writing it directly
    /// corrupts the TLS connection.
    pub fn get_mut(&mut self) -> &mut S {
        match &mut self.inner {
            Inner::Client { stream, .. } => stream.stream.sock.get_mut(),
            Inner::Server { stream, .. } => &mut stream.sock,
        }
    }

    /// Sends close_notify.
    pub fn shutdown(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Client { stream, .. } => {
                stream.stream.conn.send_close_notify();
                stream.flush()
            }
            Inner::Server { stream, .. } => {
                stream.conn.send_close_notify();
                stream.flush()
            }
        }
    }

    /// The rustls connection underneath (read-only, either side's common state), for what this
    /// crate does not cover: the escape hatch, as `Stream::ssl` is on OpenSSL and
    /// `Stream::gnutls` on GnuTLS.
    pub fn rustls(&self) -> &rustls::CommonState {
        match &self.inner {
            Inner::Client { stream, .. } => &stream.stream.conn,
            Inner::Server { stream, .. } => &stream.conn,
        }
    }

    /// The rustls stream of either side, which the `Read`/`Write` impls go through.
    pub(crate) fn io(&mut self) -> &mut dyn ReadWrite {
        match &mut self.inner {
            Inner::Client { stream, .. } => stream,
            Inner::Server { stream, .. } => &mut **stream,
        }
    }

    /// A failed read or write, given to the client's lifecycle (a server that refused this client's
    /// certificate after a TLS 1.3 handshake).
    pub(crate) fn io_failed(&self, error: io::Error) -> io::Error {
        match &self.inner {
            Inner::Client { stream } => match stream.handshake() {
                Some(hs) => hs.io_failed(error),
                None => error,
            },
            Inner::Server { .. } => error,
        }
    }

    /// Picks up a session stored on a read (a TLS 1.3 ticket).
    pub(crate) fn after_read(&mut self) {
        match &self.inner {
            Inner::Client { stream } => {
                // Only the lifecycle's part changes once the handshake is over: the library's
                // (version, cipher, chain, ALPN) is kept as it was reported.
                if let Some(hs) = stream.handshake() {
                    hs.refresh_report(&mut self.info);
                }
            }
            Inner::Server { state, .. } => {
                if !self
                    .info
                    .resumption
                    .contains(lock(&state.record).handshake.bits())
                {
                    self.info = session_info(&self.inner);
                }
            }
        }
    }
}

/// The peer's chain as rustls holds it (kept in the ticket on a resumed handshake), shared with
/// the other connections that received the same chain ([`share_chain`]).
pub(crate) fn peer_chain(conn: &CommonState) -> Arc<[Vec<u8>]> {
    share_chain(conn.peer_certificates().unwrap_or_default())
}

/// Locks a connection's shared record; a poisoned lock still gives the data.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn session_info<S: Read + Write>(inner: &Inner<S>) -> SessionInfo {
    match inner {
        Inner::Client { stream } => {
            let conn = &stream.stream.conn;
            let mut library = SessionInfo::new(Side::Client, protocol(conn));
            library.cipher = cipher(conn);
            library.peer_certificates = peer_chain(conn);
            library.alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
            match stream.handshake() {
                Some(hs) => hs.report(library),
                None => library,
            }
        }
        Inner::Server { stream, state } => {
            let conn = &stream.conn;
            let was_resumed = resumed(conn);
            let mut library = SessionInfo::new(Side::Server, protocol(conn));
            library.cipher = cipher(conn);
            library.sni = conn.server_name().map(str::to_owned);
            library.alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
            library.peer_certificates = peer_chain(conn);
            // Finished (and counted) when the handshake ended; reported from the record itself
            // (what is set on it here only feeds the report, and sets the same again when the
            // report is made again).
            let mut record = lock(&state.record);
            let record = &mut *record;
            // Inferred from the configuration: rustls tells neither whether the client asked for
            // a status nor whether it stapled; it staples the configured response on full
            // handshakes only.
            // With several certificates, only the first carries the staple.
            if record.stapling && record.served.as_ref().is_none_or(|s| s.stapled) {
                record.handshake.status_requested();
                if !was_resumed {
                    record.handshake.staple_sent();
                }
            }
            // As the resolver chose it (rustls does not say which certificate it sent): the copy
            // the server made of it when it was built. No certificate is sent on a resumed
            // handshake.
            library.local_certificate = record
                .served
                .as_ref()
                .filter(|_| !was_resumed)
                .and_then(|s| s.leaf.clone());
            record.handshake.report(library, Some(record.lifetime))
        }
    }
}

impl<S: Read + Write> fmt::Debug for Stream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("side", &self.info.side)
            .field("protocol", &self.info.protocol)
            .field("resumption", &self.info.resumption)
            .finish_non_exhaustive()
    }
}
