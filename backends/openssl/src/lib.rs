//! # tlsresume-openssl
//!
//! tlsresume over OpenSSL 3 (the `openssl` crate, with `openssl-sys` for the ticket callbacks
//! it does not wrap), reproducing the resumption behaviour of the Exim MTA's OpenSSL build.
//!
//! ```no_run
//! use std::net::TcpStream;
//! use std::path::Path;
//! use tlsresume_core::*;
//! use tlsresume_openssl::{Client, Server};
//!
//! # fn main() -> Result<(), Error> {
//! let identity = Identity::from_pem_files(
//!     Path::new("tests/pki/server-ecdsa.pem"),
//!     Path::new("tests/pki/server-ecdsa.key"),
//! )?;
//! let _server = Server::new(ServerSettings::new(identity))?;
//!
//! let roots = certificates_from_pem_file(Path::new("tests/pki/ca.pem"))?;
//! let client = Client::new(ClientSettings::new(roots))?;
//! let tcp = TcpStream::connect("127.0.0.1:25")?;
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
//! | `SUPPORTED` 0x01 | always, at start ([`ServerSettings::start`]) | always ([`ClientSettings::offer`]) |
//! | `CLIENT_REQUESTED` 0x02 | the ticket key callback is asked to *encrypt* a ticket | the policy resumes with this server (else `SSL_OP_NO_TICKET`) |
//! | `CLIENT_SUGGESTED` 0x04 | the ticket key callback is asked to *decrypt* a ticket | a stored session was offered and `d2i_SSL_SESSION` (or a copy of the session these bytes decoded to before) + `SSL_set_session` accepted it |
//! | `SERVER_TICKET` 0x08 | at start, when the policy gives this client tickets | a resumable session was stored: new-session callback (TLS 1.2 full handshake; TLS 1.3 on the first read), or a changed ticket after a resumed TLS 1.2 handshake |
//! | `USED` 0x10 | `SSL_session_reused` | `SSL_session_reused` |
//!
//! Ticket decisions: the key callback looks the key name up with
//! [`TicketLifecycle::find_key`] on the settings' clock (unknown/expired → 0, a full handshake;
//! renew time passed → 2, a new ticket); the ticket carries its issue time (on the same clock)
//! in its app data, and the decrypt callback applies [`TicketLifecycle::check_age`] (too old →
//! `SSL_TICKET_RETURN_IGNORE_RENEW`, a full handshake and a new ticket). A TLS 1.2 ticket
//! renewed on a resumed handshake keeps the original issue time, as OpenSSL keeps the
//! session's time; a TLS 1.3 ticket gets a fresh one.
//!
//! Known issue reproduced: verification is recorded in the verify callback, which OpenSSL does
//! not call on a resumed handshake, so a resumption reports [`Verification::NotChecked`] under
//! [`ResumptionPolicy::exim_compatible`] and the stored result under
//! [`ResumptionPolicy::hardened`]. No OCSP staple is sent on a resumed handshake.
//!
//! Stored sessions are DER in the [`SessionStore`]; decoding one (`d2i_SSL_SESSION`) costs a
//! resumed client handshake about 1.5 M instructions. A [`Client`] therefore keeps the last
//! session it stored or decoded for each server (up to 256 servers) and gives every connection
//! a copy of it (`SSL_SESSION_dup`) while the store holds exactly those bytes; other bytes are
//! decoded, so what is offered is always what the store holds.
//!
//! [`SessionStore`]: tlsresume_core::SessionStore
//! [`ServerSettings::start`]: tlsresume_core::contract::ServerContract::start
//! [`ClientSettings::offer`]: tlsresume_core::contract::ClientContract::offer
//! [`TicketLifecycle::find_key`]: tlsresume_core::keys::key_ring::TicketLifecycle::find_key
//! [`TicketLifecycle::check_age`]: tlsresume_core::keys::key_ring::TicketLifecycle::check_age
//! [`Verification::NotChecked`]: tlsresume_core::Verification::NotChecked
//! [`ResumptionPolicy::exim_compatible`]: tlsresume_core::ResumptionPolicy::exim_compatible
//! [`ResumptionPolicy::hardened`]: tlsresume_core::ResumptionPolicy::hardened

#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod callbacks;
mod certs;
mod client;
mod client_conn;
mod config;
mod error;
mod ffi;
mod handshake;
mod info;
pub mod inspect;
mod server;
mod sessions;
mod tickets;

// The integration tests' loopback harness, for unit tests that look inside the client.
#[cfg(test)]
extern crate self as tlsresume_openssl;
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod test_harness;

pub use client::Client;
pub use handshake::Handshake;

/// OpenSSL driven directly, for baselines: the libssl call the `openssl` crate only offers as
/// `unsafe`, behind a safe wrapper, with no tlsresume policy, store or
/// [`SessionInfo`](tlsresume_core::SessionInfo) around it.
///
/// `tests/benches/handshake.rs` measures the backend against plain `openssl` contexts
/// configured alike; resuming there needs [`set_session_der`](raw::set_session_der).
/// Applications use [`Client`], which decides whether a session may be offered at all.
pub mod raw {
    pub use crate::ffi::set_session_der;
}
pub use info::Stream;
pub use server::Server;

use tlsresume_core::BackendKind;

/// This backend.
pub const BACKEND: BackendKind = BackendKind::Openssl;

/// This backend as a type, for code generic over the library
/// ([`Backend`](tlsresume_core::contract::Backend)): `Openssl::client(settings)` is
/// [`Client::new`], and the [`Client`], [`Server`], [`Handshake`] and [`Stream`] types implement
/// the core's generic contract, from which the run-time forms (`ClientContext`, …) follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Openssl;

// The library drops a stored session past its lifetime by itself.
tlsresume_core::impl_backend!(Openssl, BACKEND, filters_expiry: true, ticket_keys: ring);
