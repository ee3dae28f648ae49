//! [`Handshake`]: a handshake in progress, resumable over a transport that may block.
//!
//! rustls is a state machine that does no I/O of its own: the loop in `io.rs` writes what it
//! has queued (`write_tls`), reads what the transport has (`read_tls`) and processes it
//! (`process_new_packets`), as tokio-rustls does; a transport reporting `WouldBlock` stops it
//! with nothing lost, and the same connection goes on when the transport is ready. The blocking
//! `connect`/`accept` run this very code.

use std::fmt;
use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use std::ops::DerefMut;

use rustls::{ConnectionCommon, ServerConnection, SideData};
use tlsresume_core::{Error, Handshaking};

use crate::client::ClientIo;
use crate::client::During;
use crate::info::{lock, ServerState, Stream};
use crate::io::Tls;
use crate::verify::record_into;

/// What a client handshake carries to its stream (its lifecycle is in the stream's bridge).
pub(crate) struct ClientParts {
    /// What the verifier (and the wire tap) see while this connection's handshake steps run.
    pub(crate) during: Arc<During>,
}

/// The rustls connection is boxed here and in the stream: it is over a kilobyte, and a
/// handshake moves it several times (into the resumable handshake, out of each `resume`, into
/// the stream); boxed, each move copies a pointer (measured: ~2 800 instructions of `memcpy` per
/// resumed TLS 1.2 client handshake, against one allocation).
enum Side<S: Read + Write> {
    Client {
        stream: ClientIo<S>,
        parts: ClientParts,
    },
    Server {
        stream: Box<Tls<ServerConnection, S>>,
        state: ServerState,
    },
}

/// A client or server handshake in progress over rustls.
///
/// [`resume`](Self::resume) drives it as far as the transport allows; on "would block" the
/// handshake comes back to be resumed when the transport is ready.
pub struct Handshake<S: Read + Write> {
    side: Side<S>,
}

impl<S: Read + Write> fmt::Debug for Handshake<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match &self.side {
            Side::Client { .. } => "client",
            Side::Server { .. } => "server",
        };
        f.debug_struct("Handshake")
            .field("side", &side)
            .finish_non_exhaustive()
    }
}

/// Runs the handshake's I/O until it is over; `Ok(false)` when the transport would block
/// first. What rustls queued after the handshake (a TLS 1.3 ticket, the last flight) goes out
/// with the stream's next read or write if the transport blocked on it.
fn drive<C, D, S>(stream: &mut Tls<C, S>) -> Result<bool, Error>
where
    C: DerefMut<Target = ConnectionCommon<D>>,
    D: SideData,
    S: Read + Write,
{
    // A panic of rustls on what a peer sent (one was found by fuzzing, see `tickets.rs`)
    // fails this handshake, not the caller's thread: the connection is not used again.
    match catch_unwind(AssertUnwindSafe(|| stream.handshake())) {
        Ok(done) => done,
        Err(payload) => Err(crate::error::panicked(payload.as_ref())),
    }
}

/// A client handshake step the library failed: what the lifecycle makes of it (out of line,
/// as no handshake that succeeds comes here).
#[cold]
#[inline(never)]
fn client_failed(bridge: Option<&Arc<crate::client::Bridge>>, during: &During, e: Error) -> Error {
    match bridge {
        Some(bridge) => {
            let mut hs = lock(&bridge.handshake);
            if lock(&during.verify).asked_without_certificate {
                hs.asked_without_certificate();
            }
            hs.library_failed(e)
        }
        None => e,
    }
}

/// A server handshake step the library failed: what the lifecycle makes of it.
#[cold]
#[inline(never)]
fn server_failed(state: &ServerState, e: Error) -> Error {
    let mut record = lock(&state.record);
    if crate::client_auth::no_certificate(&e) {
        record.handshake.client_certificate_missing();
    }
    record.handshake.library_failed(e)
}

impl<S: Read + Write> Handshake<S> {
    pub(crate) fn client(stream: ClientIo<S>, parts: ClientParts) -> Self {
        Self {
            side: Side::Client { stream, parts },
        }
    }

    pub(crate) fn server(stream: Box<Tls<ServerConnection, S>>, state: ServerState) -> Self {
        Self {
            side: Side::Server { stream, state },
        }
    }

    /// Drives the handshake until it is done or the transport would block.
    pub fn resume(mut self) -> Result<Handshaking<Self, Stream<S>>, Error> {
        let done = match &mut self.side {
            Side::Client { stream, parts } => {
                let ClientIo { stream, bridge } = stream;
                crate::client::stepping(bridge.as_ref(), &parts.during, || drive(&mut **stream))
                    .map_err(|e| client_failed(bridge.as_ref(), &parts.during, e))?
            }
            Side::Server { stream, state } => {
                crate::client_auth::recording(&state.record, || drive(&mut **stream))
                    .map_err(|e| server_failed(state, e))?
            }
        };
        if !done {
            return Ok(Handshaking::WouldBlock(self));
        }
        Ok(Handshaking::Done(match self.side {
            Side::Server { stream, state } => {
                let resumed = crate::info::resumed(&stream.conn);
                let mut record = lock(&state.record);
                if resumed {
                    if let Some(verifier) = &state.client_verifier {
                        verifier.check_kept(&stream.conn, &mut record.handshake);
                    }
                }
                record.handshake.finish(resumed);
                drop(record);
                Stream::server(stream, state)
            }
            Side::Client { mut stream, parts } => {
                let resumed = crate::info::resumed(&stream.stream.conn);
                stream.handshake_done(resumed);
                if let Some(mut hs) = stream.handshake() {
                    record_into(&parts.during.verify, &mut hs);
                    hs.finish(resumed)?;
                }
                Stream::client(stream)
            }
        }))
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        match &self.side {
            Side::Client { stream, .. } => stream.stream.sock.get_ref(),
            Side::Server { stream, .. } => &stream.sock,
        }
    }

    /// The transport, mutable.
    pub fn get_mut(&mut self) -> &mut S {
        match &mut self.side {
            Side::Client { stream, .. } => stream.stream.sock.get_mut(),
            Side::Server { stream, .. } => &mut stream.sock,
        }
    }
}
