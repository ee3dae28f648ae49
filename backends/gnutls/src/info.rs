//! [`SessionInfo`] from a GnuTLS session, and the [`Stream`] that carries it.

use std::io::{self, Read, Write};

use tlsresume_core::{
    exim_cipher_from_gnutls_desc, exim_cipher_string, CipherNames, SessionInfo, TlsStream,
};

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

/// An established GnuTLS connection (either side).
///
/// A client stream stores the session again whenever a TLS 1.3 ticket arrives during a read
/// (the NEW_SESSION_TICKET hook counts them), updating [`TlsStream::info`].
#[derive(Debug)]
pub struct Stream {
    conn: Connection,
    info: SessionInfo,
    saver: Option<TicketSaver>,
}

impl Stream {
    pub(crate) fn new(conn: Connection, info: SessionInfo, saver: Option<TicketSaver>) -> Self {
        Self { conn, info, saver }
    }

    /// What the handshake (and any tickets since) produced.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    fn tickets_arrived(&mut self) {
        if let Some(saver) = &mut self.saver {
            saver.after_read(&self.conn, &mut self.info);
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.conn.read(buf);
        self.tickets_arrived();
        result
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.conn.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()
    }
}

impl TlsStream for Stream {
    fn info(&self) -> SessionInfo {
        self.info.clone()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.conn.bye()
    }
}
