//! # tlsresume-gnutls
//!
//! tlsresume over GnuTLS 3.7 (system library, bindings generated with bindgen in
//! `tlsresume-gnutls-sys`), reproducing Exim's GnuTLS flavour of session resumption.
//!
//! ```no_run
//! use std::net::TcpStream;
//! use tlsresume_core::{ClientParams, ClientSettings, Identity, ServerSettings, TlsStream};
//! use tlsresume_gnutls::{Client, Server};
//!
//! # fn main() -> Result<(), tlsresume_core::Error> {
//! let identity = Identity::from_pem_files("server.pem".as_ref(), "server.key".as_ref())?;
//! let _server = Server::new(ServerSettings::new(identity))?;
//!
//! let roots = tlsresume_core::certificates_from_pem_file("ca.pem".as_ref())?;
//! let client = Client::new(ClientSettings::new(roots))?;
//! let tcp = TcpStream::connect("127.0.0.1:465")?;
//! let params = ClientParams::new("mx.tlsresume.test", tcp.peer_addr()?);
//! let stream = client.connect(tcp, &params)?;
//! println!("{} {}", stream.info().exim_x(), stream.info().resumption.describe());
//! # Ok(())
//! # }
//! ```
//!
//! ## Where each resumption bit comes from
//!
//! | bit | server | client |
//! |---|---|---|
//! | `SUPPORTED` 0x01 | always | always |
//! | `CLIENT_REQUESTED` 0x02 | handshake hook: a NEW_SESSION_TICKET message was sent | the policy resumes with this server (GnuTLS always asks for tickets anyway) |
//! | `CLIENT_SUGGESTED` 0x04 | `gnutls_session_resumption_requested` (also true for a bare ticket request: Exim's odd `0x05`) | a stored session was given to `gnutls_session_set_data` |
//! | `SERVER_TICKET` 0x08 | `gnutls_session_ticket_enable_server` was called (policy allows this client) | `gnutls_session_get_flags` has `GNUTLS_SFLAGS_SESSION_TICKET` and the session was stored (after the handshake, or on the read that brought a TLS 1.3 ticket) |
//! | `USED` 0x10 | `gnutls_session_is_resumed` | `gnutls_session_is_resumed` |
//!
//! ## GnuTLS's clock is process-wide
//!
//! GnuTLS reads time through two process-wide functions: `gnutls_time` (seconds; ticket and
//! key lifetimes, set with `gnutls_global_set_time_function`) and `gnutls_gettime` (TLS 1.3
//! ticket ages, the client's own check that a stored ticket is fresh, the lifetime of a ticket
//! issued on a resumed handshake). The second can only be set through
//! `_gnutls_global_set_gettime_function`, a private symbol GnuTLS 3.7 exports (version node
//! `GNUTLS_PRIVATE_3_4`) for its own test suite; this crate looks it up at run time, so a GnuTLS
//! without it still works, with a virtual clock then covering `gnutls_time` only
//! ([`gettime_hook_available`] tells). Both trampolines are installed the first time a clock
//! other than the system's is used; a process on the real clock leaves GnuTLS's own clocks
//! alone. They read the clock of the live GnuTLS objects. [`Server::new`] and [`Client::new`] claim that clock
//! for as long as the object (and its streams) live; making one with a *different* clock while
//! another is alive is refused with [`Error::Setting`](tlsresume_core::Error::Setting) for
//! `clock` — never a silent re-clock of the first object's sessions. The system clock is one
//! clock however many handles it has, and so are clones of one
//! [`ManualClock`](tlsresume_core::ManualClock); tests that use different virtual clocks take
//! turns (this crate's tests share one mutex).
//!
//! ## Ticket policies GnuTLS can carry out
//!
//! GnuTLS derives its ticket keys itself, one per period of three ticket lifetimes, keeps the
//! previous period's key and never renews early. A server defaults to that flavour
//! ([`TicketPolicy::GNUTLS`](tlsresume_core::TicketPolicy::GNUTLS)); a
//! [`TicketPolicy::periodic`](tlsresume_core::TicketPolicy::periodic) policy sets another
//! lifetime; a rolling-key policy is refused with an error saying so.
//!
//! ## Ticket keys across GnuTLS's rotation (measured on 3.7.9)
//!
//! `gnutls_db_set_cache_expiration(7200)` gives a 2 h ticket lifetime that GnuTLS enforces on
//! its (virtual) time, and keys derived per 6 h period: a ticket issued a minute before a
//! boundary resumes a minute after it (previous period accepted), tickets past 2 h are refused,
//! and "two periods back" is never observable because it is always past the lifetime. This
//! matches `TicketPolicy::GNUTLS`. Other measured facts (the TLS 1.3 resumed description
//! `(TLS1.3)--(AES-256-GCM)`, the 0x05 quirk only in TLS 1.2, the OCSP check kept across
//! resumption, a GnuTLS crash on damaged session data and the integrity envelope that avoids
//! it, [`SessionKey::seal_session`](tlsresume_core::SessionKey::seal_session), which the core
//! applies to every backend's stored sessions) are listed in `README.md` beside this crate.
//!
//! ## Reuse threads
//!
//! GnuTLS 3.7 gives every thread that draws random numbers (every thread that makes a
//! handshake) a generator context and keeps it in a process-wide list until the library is
//! deinitialised, not when the thread ends. A server that starts a thread per connection grows
//! by about 250 bytes for every connection it has served; run connections on reused threads (a
//! pool, as `tlsresume serve` does, or an async runtime's workers).
//!
//! ## Ticket master secret
//!
//! [`Server::new`] fetches the key source's master secret. When the source says it is a
//! stand-in ([`KeySource::master_retry_after`](tlsresume_core::KeySource::master_retry_after):
//! a fleet node that could not reach its shared store), the server asks again once the delay
//! has passed on its clock, before the next handshake (the async acceptor does it off the
//! runtime), and hands the fleet's master to GnuTLS from then on.

#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod callbacks;
mod client;
mod client_conn;
mod config;
mod error;
mod ffi;
mod handshake;
mod info;
mod names;
mod server;
mod server_conn;
mod sessions;
mod tickets;

use tlsresume_core::BackendKind;

pub use client::Client;

/// GnuTLS driven directly, for baselines: the backend's own safe wrapper of the library, with
/// no tlsresume policy, session store, ticket-key source or [`SessionInfo`] around it.
///
/// This is what `tests/benches/handshake.rs` measures tlsresume against, so that "abstraction
/// cost" means what [`Client`] and [`Server`] add over the same library calls (priority string,
/// credentials, `gnutls_session_ticket_enable_server`, `gnutls_db_set_cache_expiration`,
/// `gnutls_session_get_data2` / `gnutls_session_set_data`). Every item is safe; nothing here
/// decides whether a session may be offered, checks its age or seals it against damage
/// (the core's [`ClientHandshake`](tlsresume_core::contract::ClientHandshake) does that), so it
/// is not meant for applications.
///
/// ```no_run
/// use tlsresume_gnutls::raw::{Credentials, End, Session};
///
/// # fn main() -> Result<(), tlsresume_gnutls::raw::GnutlsError> {
/// let mut session = Session::new(End::Client)?;
/// session.set_priority("NORMAL:-VERS-ALL:+VERS-TLS1.3")?;
/// let _credentials = Credentials::new()?;
/// # Ok(())
/// # }
/// ```
///
/// [`SessionInfo`]: tlsresume_core::SessionInfo
pub mod raw {
    pub use crate::ffi::{
        init, Connection, Credentials, CredentialsRef, Datum, End, GnutlsError, Session, SessionRef,
    };
}
pub use callbacks::gettime_hook_available;
pub use ffi::version as gnutls_version;
pub use handshake::Handshake;
pub use info::Stream;
pub use server::Server;

/// This backend.
pub const BACKEND: BackendKind = BackendKind::Gnutls;

/// This backend as a type, for code generic over the library
/// ([`Backend`](tlsresume_core::contract::Backend)): `Gnutls::client(settings)` is
/// [`Client::new`], and the [`Client`], [`Server`], [`Handshake`] and [`Stream`] types implement
/// the core's generic contract, from which the run-time forms (`ClientContext`, …) follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Gnutls;

// GnuTLS does no expiry filtering of stored sessions of its own; only the hardened policy
// filters for it.
tlsresume_core::impl_backend!(Gnutls, BACKEND, filters_expiry: false, ticket_keys: custom);
