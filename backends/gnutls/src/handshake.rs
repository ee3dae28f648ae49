//! [`Handshake`]: a handshake in progress, resumable over a transport that may block.
//!
//! GnuTLS is driven as it is meant to be on a non-blocking socket: the pull/push functions
//! set EAGAIN when the transport reports `WouldBlock`, `gnutls_handshake` returns
//! `GNUTLS_E_AGAIN`, and the same session is handed back to be handshaken again when the
//! transport is ready. The blocking `connect`/`accept` run this very code.

use std::io::{self, Read, Write};

use tlsresume_core::{Error, Handshaking, ProtocolVersion};

use crate::client_conn::{ClientPending, Finished};
use crate::error::from_io;
use crate::ffi::{Connection, GnutlsError};
use crate::info::Stream;
use crate::server_conn::ServerPending;

#[derive(Debug)]
enum Pending {
    /// Boxed: the client's lifecycle state is far larger than the server's.
    Client(Box<ClientPending>),
    Server(ServerPending),
}

/// A client or server handshake in progress over GnuTLS.
///
/// [`resume`](Self::resume) drives it as far as the transport allows; on "would block" the
/// handshake comes back to be resumed when the transport is ready.
#[derive(Debug)]
pub struct Handshake<S> {
    conn: Connection<S>,
    pending: Pending,
    /// GnuTLS finished the handshake; what is left is sending the server's TLS 1.3 tickets.
    done: bool,
}

impl<S: Read + Write> Handshake<S> {
    pub(crate) fn client(conn: Connection<S>, pending: ClientPending) -> Self {
        Self {
            conn,
            pending: Pending::Client(Box::new(pending)),
            done: false,
        }
    }

    pub(crate) fn server(conn: Connection<S>, pending: ServerPending) -> Self {
        Self {
            conn,
            pending: Pending::Server(pending),
            done: false,
        }
    }

    /// Drives the handshake until it is done or the transport would block.
    pub fn resume(mut self) -> Result<Handshaking<Self, Stream<S>>, Error> {
        let step = if self.done {
            Ok(())
        } else {
            self.conn.handshake()
        };
        let step = step.and_then(|()| {
            self.done = true;
            self.send_tickets()
        });
        match step {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(Handshaking::WouldBlock(self))
            }
            Err(e) => {
                let code = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<GnutlsError>())
                    .copied();
                let error = from_io(e);
                return Err(match &mut self.pending {
                    Pending::Client(pending) => {
                        if pending.handshake.settings().identity.is_none()
                            && self.conn.session().certificate_requested()
                        {
                            pending.handshake.asked_without_certificate();
                        }
                        pending.handshake.library_failed(error)
                    }
                    Pending::Server(pending) => pending.failed(error, code),
                });
            }
        }
        let Finished {
            conn,
            info,
            saver,
            clock,
        } = match self.pending {
            Pending::Client(pending) => pending.finish(self.conn)?,
            Pending::Server(pending) => pending.finish(self.conn),
        };
        Ok(Handshaking::Done(Stream::new(conn, info, saver, clock)))
    }

    /// A server that sends its TLS 1.3 tickets itself (another count than GnuTLS's own) sends
    /// them now, before the stream is handed over: `gnutls_session_ticket_send`, TLS 1.3 only.
    fn send_tickets(&mut self) -> io::Result<()> {
        let Pending::Server(pending) = &mut self.pending else {
            return Ok(());
        };
        let Some(count) = pending.tickets_on_request else {
            return Ok(());
        };
        if self.conn.session().protocol() != ProtocolVersion::Tls13 {
            return Ok(());
        }
        self.conn.send_tickets(count)?;
        pending.tickets_on_request = None;
        Ok(())
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        self.conn.transport()
    }

    /// The transport, mutable.
    pub fn get_mut(&mut self) -> &mut S {
        self.conn.transport_mut()
    }
}
