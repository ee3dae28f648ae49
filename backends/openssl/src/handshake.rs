//! [`Handshake`]: a handshake in progress, resumable over a transport that may block.
//!
//! OpenSSL is driven as it is meant to be on a non-blocking socket: `SSL_connect`/`SSL_accept`
//! return "want read/write" when the transport reports `WouldBlock`, the openssl crate hands
//! the connection back as a `MidHandshakeSslStream`, and the same `SSL` (with the same
//! callbacks and per-connection state) is resumed when the transport is ready. The blocking
//! `connect`/`accept` run this very code, so the resumption decisions cannot differ.

use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;

use openssl::ssl::{HandshakeError, MidHandshakeSslStream, Ssl, SslSession};
use tlsresume_core::{Error, Handshaking};

use crate::client_conn::{failed, finish, ClientConn};
use crate::error;
use crate::info::{Conn, Stream};
use crate::tickets::ServerConn;

enum Phase<S> {
    /// Set up, not started.
    Fresh(Ssl, S),
    /// Started; the transport would block.
    Mid(MidHandshakeSslStream<S>),
}

/// A client or server handshake in progress over OpenSSL.
///
/// [`resume`](Self::resume) drives it as far as the transport allows; on "would block" the
/// handshake comes back to be resumed when the transport is ready.
pub struct Handshake<S> {
    phase: Phase<S>,
    conn: Conn,
    /// The offered session, kept alive until the handshake is over.
    _session: Option<SslSession>,
}

impl<S> fmt::Debug for Handshake<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let started = matches!(self.phase, Phase::Mid(_));
        f.debug_struct("Handshake")
            .field("started", &started)
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl<S: Read + Write> Handshake<S> {
    pub(crate) fn client(
        ssl: Ssl,
        transport: S,
        conn: Arc<ClientConn>,
        session: Option<SslSession>,
    ) -> Self {
        Self {
            phase: Phase::Fresh(ssl, transport),
            conn: Conn::Client(conn),
            _session: session,
        }
    }

    pub(crate) fn server(ssl: Ssl, transport: S, conn: Arc<ServerConn>) -> Self {
        Self {
            phase: Phase::Fresh(ssl, transport),
            conn: Conn::Server(conn),
            _session: None,
        }
    }

    /// Drives the handshake until it is done or the transport would block.
    pub fn resume(self) -> Result<Handshaking<Self, Stream<S>>, Error> {
        let Self {
            phase,
            conn,
            _session,
        } = self;
        let result = match phase {
            Phase::Fresh(ssl, transport) => match conn {
                Conn::Client(_) => ssl.connect(transport),
                Conn::Server(_) => ssl.accept(transport),
            },
            Phase::Mid(mid) => mid.handshake(),
        };
        if let Conn::Client(client) = &conn {
            // What this step handed over, stored before anything is reported or decided.
            client.store_received();
        }
        match result {
            Ok(stream) => {
                match &conn {
                    Conn::Client(client) => {
                        finish(client, &stream)?;
                        // A TLS 1.2 ticket renewed on resumption, read off the session.
                        client.store_received();
                    }
                    Conn::Server(server) => {
                        let ssl = stream.ssl();
                        let resumed = ssl.session_reused();
                        let mut state = server.state();
                        if resumed {
                            if let Some(kept) = crate::server::kept_client_certificate(ssl) {
                                state.handshake.client_certificate_kept(kept);
                            }
                        }
                        state.handshake.finish(resumed);
                    }
                }
                crate::ffi::release_buffers_when_idle(stream.ssl());
                Ok(Handshaking::Done(Stream::new(stream, conn)))
            }
            Err(HandshakeError::WouldBlock(mid)) => Ok(Handshaking::WouldBlock(Self {
                phase: Phase::Mid(mid),
                conn,
                _session,
            })),
            Err(e) => Err(match &conn {
                Conn::Client(client) => failed(client, error::handshake(e)),
                Conn::Server(server) => {
                    let error = error::handshake(e);
                    let mut state = server.state();
                    if error::no_peer_certificate(&error) {
                        state.handshake.client_certificate_missing();
                    }
                    state.handshake.library_failed(error)
                }
            }),
        }
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        match &self.phase {
            Phase::Fresh(_, transport) => transport,
            Phase::Mid(mid) => mid.get_ref(),
        }
    }

    /// The transport, mutable.
    pub fn get_mut(&mut self) -> &mut S {
        match &mut self.phase {
            Phase::Fresh(_, transport) => transport,
            Phase::Mid(mid) => mid.get_mut(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::test_harness::Setup;
    use tlsresume_core::ProtocolVersion;

    /// Once its handshake is done, each end of a connection (full and resumed, TLS 1.2 and
    /// 1.3) has libssl free its read and write buffers whenever they are empty, so an idle
    /// connection holds neither.
    #[test]
    fn connections_release_their_buffers_when_idle() {
        for version in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
            let pair = Setup::new(version).build();
            for round in ["full", "resumed"] {
                let (server, client) = pair
                    .try_connect_looking(|stream| crate::ffi::releases_idle_buffers(stream.ssl()));
                let (info, server_released) = server.expect("server handshake");
                let (_, client_released) = client.expect("client handshake");
                assert_eq!(info.resumed, round == "resumed", "{version} {round}");
                assert!(client_released, "{version} {round}: client");
                assert!(server_released, "{version} {round}: server");
            }
        }
    }
}
