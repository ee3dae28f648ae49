//! [`SessionInfo`] from OpenSSL, and the [`Stream`] that reports it.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foreign_types::ForeignTypeRef;
use openssl::ssl::{NameType, SslCipherRef, SslRef, SslStream};
use tlsresume_core::info::exim_cipher_string;
use tlsresume_core::{CipherNames, ProtocolVersion, SessionInfo, Side};

use crate::client_conn::ClientConn;
use crate::config::protocol_of;
use crate::error;
use crate::tickets::ServerConn;

/// The cipher under its three names: OpenSSL's (`ECDHE-RSA-AES256-GCM-SHA384`), IANA's
/// (`TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`), and Exim's `<version>:<name>:<bits>`.
fn cipher_names(ssl: &SslRef, protocol: ProtocolVersion) -> CipherNames {
    match ssl.current_cipher() {
        Some(c) => match known_names(c, protocol) {
            // Every name borrowed: a copy of the kept ones allocates nothing.
            Some(kept) => kept.clone(),
            None => read_names(c, protocol),
        },
        None => CipherNames::default(),
    }
}

/// Reads `c`'s names from OpenSSL: its own static strings, borrowed, and the Exim string made
/// from them.
fn read_names(c: &SslCipherRef, protocol: ProtocolVersion) -> CipherNames {
    let bits = u32::try_from(c.bits().secret).unwrap_or(0);
    let name = c.name();
    CipherNames {
        native: name.into(),
        exim: exim_cipher_string(protocol, name, bits).into(),
        iana: c.standard_name().unwrap_or_default().into(),
        bits,
    }
}

/// At most this many (cipher, version) pairs are kept for the process: libssl has fewer than
/// 200 ciphers, so the limit is not met in practice; past it, names are made per handshake
/// as owned strings (nothing more is kept).
const KNOWN_NAMES_LIMIT: usize = 512;

/// The names of cipher `c` under `protocol`, read from OpenSSL once per process: an
/// `SSL_CIPHER` is an entry of libssl's static tables, never freed or changed, so its address
/// names it for the life of the process, and its names and key size never change. Made on a
/// handshake they took ~1 000 instructions and two allocations per connection (UTF-8 checks of
/// OpenSSL's C strings, the Exim string); found here, a look along this thread's short list.
/// `None` once the process keeps [`KNOWN_NAMES_LIMIT`] pairs and this one is not among them.
///
/// The other backends keep their names in their own way, as their libraries allow: rustls
/// lends them from a table per cipher suite, and GnuTLS keeps them by the inputs of its
/// session description (which differs between full and resumed handshakes, the known issue),
/// copied per handshake.
fn known_names(c: &SslCipherRef, protocol: ProtocolVersion) -> Option<&'static CipherNames> {
    type Known = Vec<(usize, ProtocolVersion, &'static CipherNames)>;
    thread_local! {
        /// What this thread has found so far (a handful of entries: the ciphers it has seen).
        static SEEN: RefCell<Known> = const { RefCell::new(Vec::new()) };
    }
    /// The process's entries, one per (cipher, version), each made once.
    static KNOWN: Mutex<Known> = Mutex::new(Vec::new());

    let id = c.as_ptr() as usize;
    let find = |known: &Known| {
        known
            .iter()
            .find(|(i, p, _)| *i == id && *p == protocol)
            .map(|(_, _, names)| *names)
    };
    if let Some(names) = SEEN.with(|seen| find(&seen.borrow())) {
        return Some(names);
    }
    let names = {
        let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
        match find(&known) {
            Some(names) => names,
            None if known.len() < KNOWN_NAMES_LIMIT => {
                let names = keep(read_names(c, protocol));
                known.push((id, protocol, names));
                names
            }
            None => return None,
        }
    };
    // Every entry here is one of the process's, so this list is bounded by the same limit.
    SEEN.with(|seen| seen.borrow_mut().push((id, protocol, names)));
    Some(names)
}

/// `names` kept for the process, the Exim string (the one name OpenSSL does not own) with it.
fn keep(mut names: CipherNames) -> &'static CipherNames {
    if let Cow::Owned(exim) = names.exim {
        names.exim = Cow::Borrowed(Box::leak(exim.into_boxed_str()));
    }
    Box::leak(Box::new(names))
}

/// Which side a stream is, with its shared state.
#[derive(Debug)]
pub(crate) enum Conn {
    Server(Arc<ServerConn>),
    Client(Arc<ClientConn>),
}

/// An established TLS connection over OpenSSL, on the transport `S` it was made on.
///
/// [`Stream::info`] is kept current: tickets that arrive after the handshake (TLS 1.3,
/// processed on a read) show up in the client's bits and ticket lifetime.
pub struct Stream<S> {
    inner: SslStream<S>,
    conn: Conn,
    info: SessionInfo,
}

impl<S> fmt::Debug for Stream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<S: Read + Write> Stream<S> {
    pub(crate) fn new(inner: SslStream<S>, conn: Conn) -> Self {
        let info = session_info(inner.ssl(), &conn);
        Self { inner, conn, info }
    }

    /// What the handshake (and any tickets since) produced.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref()
    }

    /// The transport, mutable: for timeouts and socket options. Reading or writing it directly
    /// corrupts the TLS connection.
    pub fn get_mut(&mut self) -> &mut S {
        self.inner.get_mut()
    }

    /// The underlying OpenSSL connection (read-only), for what this crate does not cover: the
    /// escape hatch, as `Stream::gnutls` is on GnuTLS and `Stream::rustls` on rustls.
    pub fn ssl(&self) -> &SslRef {
        self.inner.ssl()
    }

    /// Sends close_notify.
    pub fn shutdown(&mut self) -> io::Result<()> {
        let result = self.inner.shutdown().map(|_| ()).map_err(error::to_io);
        // A ticket read by the shutdown (the library reads what the server sent first).
        self.after_read();
        result
    }

    /// The library's stream, which the `Read`/`Write` impls go through.
    pub(crate) fn io(&mut self) -> &mut SslStream<S> {
        &mut self.inner
    }

    /// A failed read or write, given to the client's lifecycle (a server that refused this client's
    /// certificate after a TLS 1.3 handshake).
    pub(crate) fn io_failed(&self, error: io::Error) -> io::Error {
        match &self.conn {
            Conn::Client(conn) => conn.state().handshake.io_failed(error),
            Conn::Server(_) => error,
        }
    }

    /// Picks up what changed since the handshake (a ticket stored on a read).
    pub(crate) fn after_read(&mut self) {
        match &self.conn {
            // Only the lifecycle's part changes once the handshake is over: the library's
            // (version, cipher, chain, ALPN) is kept as it was reported.
            // One lock on every read: the session a read brought is stored, then reported.
            Conn::Client(conn) => {
                let mut st = conn.state();
                conn.store_received_in(&mut st);
                st.handshake.refresh_report(&mut self.info);
            }
            Conn::Server(conn) => {
                if conn.state().handshake.bits() != self.info.resumption {
                    self.info = session_info(self.inner.ssl(), &self.conn);
                }
            }
        }
    }
}

/// The lifetime hint OpenSSL put in the NewSessionTicket it sent: the session's timeout, except
/// on a resumed TLS 1.2 handshake, where OpenSSL 3 sends 0 ("unspecified"; `statem_srvr.c`,
/// `tls_construct_new_session_ticket`). Read from the session, not from the ticket policy.
fn sent_lifetime_hint(ssl: &SslRef, protocol: ProtocolVersion, resumed: bool) -> Duration {
    if resumed && protocol == ProtocolVersion::Tls12 {
        return Duration::ZERO;
    }
    let secs = ssl.session().map(|s| s.timeout()).unwrap_or(0);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// What OpenSSL and the connection's state say now.
fn session_info(ssl: &SslRef, conn: &Conn) -> SessionInfo {
    let protocol = protocol_of(ssl).unwrap_or(ProtocolVersion::Other(0));
    let mut info = SessionInfo::new(
        match conn {
            Conn::Server(_) => Side::Server,
            Conn::Client(_) => Side::Client,
        },
        protocol,
    );
    info.cipher = cipher_names(ssl, protocol);
    info.alpn = ssl.selected_alpn_protocol().map(<[u8]>::to_vec);
    match conn {
        Conn::Server(conn) => {
            info.sni = ssl.servername(NameType::HOST_NAME).map(str::to_owned);
            info.peer_certificates = crate::certs::peer_chain(ssl);
            let resumed = ssl.session_reused();
            let sent = sent_lifetime_hint(ssl, protocol, resumed);
            // The certificate OpenSSL chose for this handshake (SSL_get_certificate).
            if !resumed {
                info.local_certificate =
                    ssl.certificate().and_then(|c| conn.shared.leaves.der_of(c));
            }
            conn.state().handshake.report(info, Some(sent))
        }
        Conn::Client(conn) => {
            // The SNI sent is the lifecycle's to report (`ClientHandshake::report`).
            info.peer_certificates = conn.shared.chains.chain_of(ssl);
            conn.state().handshake.report(info)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use crate::test_harness::Setup;
    use tlsresume_core::info::exim_cipher_string;
    use tlsresume_core::{CipherNames, ProtocolVersion};

    use super::Stream;

    /// What each end's stream reports for its cipher, and what OpenSSL says of the cipher
    /// read afresh from the connection.
    fn reported_and_read<S: std::io::Read + std::io::Write>(
        stream: &Stream<S>,
    ) -> (CipherNames, CipherNames, bool) {
        let reported = stream.info().cipher.clone();
        let protocol = stream.info().protocol;
        let c = stream.ssl().current_cipher().expect("a cipher");
        let bits = u32::try_from(c.bits().secret).expect("bits");
        let read = CipherNames {
            native: c.name().to_owned().into(),
            exim: exim_cipher_string(protocol, c.name(), bits).into(),
            iana: c.standard_name().expect("an IANA name").to_owned().into(),
            bits,
        };
        let borrowed = [&reported.native, &reported.exim, &reported.iana]
            .iter()
            .all(|name| matches!(name, Cow::Borrowed(_)));
        (reported, read, borrowed)
    }

    /// The names kept per cipher and version are OpenSSL's for the cipher of the connection,
    /// on both ends, full and resumed, TLS 1.2 and 1.3, and are lent, not copied, each time.
    #[test]
    fn kept_cipher_names_are_the_librarys() {
        for version in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
            let pair = Setup::new(version).build();
            for round in ["full", "resumed"] {
                let (server, client) = pair.try_connect_looking(reported_and_read);
                for (end, (reported, read, borrowed)) in [
                    ("server", server.expect("server handshake").1),
                    ("client", client.expect("client handshake").1),
                ] {
                    assert_eq!(reported, read, "{version} {round} {end}");
                    assert!(borrowed, "{version} {round} {end}: names copied");
                    assert!(
                        reported.exim.starts_with(&format!("{version}:")),
                        "{version} {round} {end}: {}",
                        reported.exim
                    );
                }
            }
        }
    }
}
