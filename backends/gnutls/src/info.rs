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
    saver: Option<Box<TicketSaver>>,
    _clock: Arc<ClockClaim>,
}

impl<S: Read + Write> Stream<S> {
    pub(crate) fn new(
        conn: Connection<S>,
        info: SessionInfo,
        saver: Option<Box<TicketSaver>>,
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

    /// The GnuTLS session underneath (read-only), for what this crate does not cover: the
    /// escape hatch, as `Stream::ssl` is on OpenSSL and `Stream::rustls` on rustls. Changing
    /// the session's state behind the stream's back is not supported.
    pub fn gnutls(&self) -> &crate::raw::SessionRef {
        self.conn.session()
    }

    /// The library's connection, which the `Read`/`Write` impls go through.
    pub(crate) fn io(&mut self) -> &mut Connection<S> {
        &mut self.conn
    }

    /// A failed read or write, given to the client's lifecycle (a server that refused this client's
    /// certificate after a TLS 1.3 handshake).
    pub(crate) fn io_failed(&self, error: io::Error) -> io::Error {
        match &self.saver {
            Some(saver) => saver.io_failed(error),
            None => error,
        }
    }

    /// Stores the session again when a read brought a TLS 1.3 ticket.
    pub(crate) fn after_read(&mut self) {
        if let Some(saver) = &mut self.saver {
            saver.after_read(&self.conn, &mut self.info);
        }
    }
}
