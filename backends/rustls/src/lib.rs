//! # tlsresume-rustls
//!
//! tlsresume over [rustls] with the ring provider: the ticket lifecycle of
//! `tlsresume-core` (rotation, overlap, lifetime, renewal on a `Clock`), Exim's resumption
//! bits, and the client session cache, in pure Rust.
//!
//! ```no_run
//! use std::net::TcpStream;
//! use std::sync::Arc;
//! use tlsresume_core::*;
//! use tlsresume_rustls::Client;
//!
//! let roots = certificates_from_pem_file("ca.pem".as_ref())?;
//! let client = Client::new(ClientSettings::new(roots))?;
//! let params = ClientParams::new("mx.example.net", "192.0.2.10:465".parse()?);
//! for _ in 0..2 {
//!     let tcp = TcpStream::connect(params.peer)?;
//!     let mut tls = client.connect(tcp, &params)?;
//!     // ... SMTP over `tls` ...
//!     println!("{}", tls.info().resumption); // the second prints "0x17 (session resumed)"
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Where the resumption bits come from
//!
//! | bit | server | client |
//! |---|---|---|
//! | `SUPPORTED` | always | always |
//! | `CLIENT_REQUESTED` | the ticketer sealed a ticket for this connection | the policy allows resumption with this server (tickets asked for, sessions stored) |
//! | `CLIENT_SUGGESTED` | the ticketer was asked to open a presented ticket | a session held by this process was handed to rustls |
//! | `SERVER_TICKET` | the policy gives this client tickets (set up front, as Exim does) | a session received from the server was stored |
//! | `USED` | `handshake_kind() == Resumed` | `handshake_kind() == Resumed` |
//!
//! ## How rustls differs from the C libraries
//!
//! - **Renewal.** TLS 1.2: rustls re-issues a ticket on every resumption where the client sent
//!   the ticket extension; tlsresume declines (an empty NewSessionTicket, which clients read as
//!   "keep your ticket") unless the lifecycle says `ResumeAndRenew`, so renewal happens exactly
//!   when the OpenSSL flavour's does. TLS 1.3: a new ticket follows every handshake, resumed or
//!   not (as in OpenSSL), so a resumption always shows `CLIENT_REQUESTED` on the server.
//! - **Client sessions live in this process.** rustls 0.23 cannot serialise client sessions
//!   (rustls issue #2287): the session store holds the core entry with a handle to the rustls
//!   value kept by the [`Client`]. Another process (or a new `Client`) sharing the store makes
//!   a full handshake. TLS 1.3 tickets are single-use in rustls: each resumption uses the ticket
//!   up and stores the new one the server sends.
//! - **What the server sent.** rustls 0.23 keeps a session's ticket and lifetime hint private
//!   (and this crate never reads another crate's `Debug` output). A TLS 1.2 NewSessionTicket
//!   travels in clear, so the client reads the server's lifetime hint and ticket off the
//!   records it receives during the handshake: a renewed ticket is stored with the lifetime
//!   the server sent, and a handshake on which the server sent no new ticket (rustls saves the
//!   old one again) stores nothing. A TLS 1.3 NewSessionTicket is encrypted: the stored entry
//!   gets the default 2 h lifetime (**inferred**, not read; both Exim flavours send 2 h), and
//!   rustls itself still refuses to offer a ticket past the lifetime the server gave.
//! - **Verification on resumption.** rustls does not verify the certificate again on a resumed
//!   handshake; under `exim_compatible()` the client reports "not checked", under `hardened()`
//!   the stored result.
//! - **OCSP.** rustls passes the staple to the verifier without checking it; tlsresume checks
//!   it in [`ocsp`] (responder: the issuer or a delegated responder; signature, certificate
//!   ID, status, validity window with 5 minutes' skew), parsing with RustCrypto's `x509-ocsp`
//!   and verifying with ring. A rejection's reason is in `SessionInfo::ocsp_detail`.
//! - **Not-allowed clients** still receive TLS 1.3 tickets (rustls always offers PSK modes, as
//!   GnuTLS always requests tickets); they are not stored and no bit is set.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod client;
mod client_auth;
mod config;
mod dane;
mod error;
mod handshake;
mod identities;
mod info;
mod io;
pub mod ocsp;
mod server;
mod tickets;
mod verify;
mod wire;

pub use client::Client;
pub use handshake::Handshake;
pub use info::Stream;
pub use server::Server;
pub use tickets::session_state_is_resumable;

/// This backend.
pub const BACKEND: tlsresume_core::BackendKind = tlsresume_core::BackendKind::Rustls;

/// This backend as a type, for code generic over the library
/// ([`Backend`](tlsresume_core::contract::Backend)): `Rustls::client(settings)` is
/// [`Client::new`], and the [`Client`], [`Server`], [`Handshake`] and [`Stream`] types implement
/// the core's generic contract, from which the run-time forms (`ClientContext`, …) follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rustls;

// The library drops a stored session past its lifetime by itself.
tlsresume_core::impl_backend!(Rustls, BACKEND, filters_expiry: true, ticket_keys: ring);
