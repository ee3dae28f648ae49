//! [`SessionInfo`] from a GnuTLS session, and the [`Stream`] that carries it.

use std::io::{self, Read, Write};
use std::sync::Arc;

use tlsresume_core::SessionInfo;

use crate::callbacks::ClockClaim;
use crate::client_conn::TicketSaver;
use crate::ffi::Connection;

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
