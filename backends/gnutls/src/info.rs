//! [`SessionInfo`] from a GnuTLS session, and the [`Stream`] that carries it.

use std::io::{self, Read, Write};
use std::sync::Arc;

use tlsresume_core::{
    exim_cipher_from_gnutls_desc, exim_cipher_string, CipherNames, SessionInfo, TlsStream,
    Transport,
};

use crate::callbacks::ClockClaim;
use crate::client::TicketSaver;
use crate::ffi::{Connection, SessionRef};

/// The cipher under its names.
///
/// `native` is `gnutls_session_get_desc`; `iana` is `gnutls_ciphersuite_get`; `exim` is Exim's
/// transformation of the description (the known issue: it differs between full and resumed
/// handshakes) or, with `iana_names` (hardened), `<version>:<IANA name>:<bits>`.
pub(crate) fn cipher_names(session: &SessionRef, iana_names: bool) -> CipherNames {
    let native = session.description();
    let iana = session.ciphersuite().unwrap_or_default();
    let bits = session.cipher_bits();
    let exim = if iana_names {
        exim_cipher_string(session.protocol(), &iana, bits)
    } else {
        exim_cipher_from_gnutls_desc(&native, bits)
    };
    CipherNames {
        native,
        exim,
        iana,
        bits,
    }
}

/// An established GnuTLS connection (either side), on the transport `S` it was made on.
///
/// A client stream stores the session again whenever a TLS 1.3 ticket arrives during a read
/// (the NEW_SESSION_TICKET hook counts them), updating [`Stream::info`].
#[derive(Debug)]
pub struct Stream<S> {
    conn: Connection<S>,
    info: SessionInfo,
    saver: Option<TicketSaver>,
    _clock: Arc<ClockClaim>,
}

impl<S: Read + Write> Stream<S> {
    pub(crate) fn new(
        conn: Connection<S>,
        info: SessionInfo,
        saver: Option<TicketSaver>,
        clock: Arc<ClockClaim>,
    ) -> Self {
        Self {
            conn,
            info,
            saver,
            _clock: clock,
        }
    }

    /// What the handshake (and any tickets since) produced.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        self.conn.transport()
    }

    /// The transport, mutable: for timeouts and socket options. Reading or writing it directly
    /// corrupts the TLS connection.
    pub fn get_mut(&mut self) -> &mut S {
        self.conn.transport_mut()
    }

    /// Sends close_notify (`gnutls_bye(GNUTLS_SHUT_WR)`).
    pub fn shutdown(&mut self) -> io::Result<()> {
        self.conn.bye()
    }

    fn tickets_arrived(&mut self) {
        if let Some(saver) = &mut self.saver {
            saver.after_read(&self.conn, &mut self.info);
        }
    }
}

impl<S: Read + Write> Read for Stream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.conn.read(buf);
        self.tickets_arrived();
        result
    }
}

impl<S: Read + Write> Write for Stream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.conn.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()
    }
}

impl<S: Transport> TlsStream for Stream<S> {
    fn info(&self) -> SessionInfo {
        self.info.clone()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.conn.bye()
    }

    fn transport_dyn(&self) -> &dyn Transport {
        self.conn.transport()
    }

    fn transport_dyn_mut(&mut self) -> &mut (dyn Transport + 'static) {
        self.conn.transport_mut()
    }
}
