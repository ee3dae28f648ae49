//! # tlsresume
//!
//! One TLS API over OpenSSL, GnuTLS and rustls, with **policy-driven session resumption** that
//! behaves, is observed and is tested the same way on each: session-ticket keys rotated on a
//! clock, Exim's resumption bits (`$tls_in_resumption` / `$tls_out_resumption`), a client
//! session cache keyed as Exim keys it, and a policy that either reproduces Exim's known issues
//! on resumed sessions or fixes them.
//!
//! ```no_run
//! use std::net::TcpStream;
//! use tlsresume::{BackendKind, ClientParams, ClientSettings};
//!
//! let roots = tlsresume::certificates_from_pem_file("ca.pem".as_ref())?;
//! // Pick the library at run time, e.g. from a configuration file.
//! let backend: BackendKind = tlsresume::backends::parse("rustls")?;
//! let client = tlsresume::backends::client(backend, ClientSettings::new(roots))?;
//! let params = ClientParams {
//!     peer: "192.0.2.10:465".parse()?,
//!     local: None,
//!     server_name: "mx.example.net".into(),
//!     lb_name: None,
//!     dane: None,
//! };
//! let tls = client.connect(Box::new(TcpStream::connect(params.peer)?), &params)?;
//! println!("X={} resumption={}", tls.info().exim_x(), tls.info().resumption);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Features
//!
//! | feature | default | what it compiles in |
//! |---|---|---|
//! | `openssl` | yes | the OpenSSL backend ([`openssl`] module; system libssl 3, Debian `libssl-dev`) |
//! | `gnutls` | yes | the GnuTLS backend ([`gnutls`] module; system GnuTLS 3.7, Debian `libgnutls28-dev`) |
//! | `rustls` | yes | the rustls backend ([`rustls`] module; pure Rust, ring provider) |
//! | `stores` | yes | stores that outlive a process ([`stores`] module): the on-disk session cache shared by processes, Redis ticket keys and sessions for fleets |
//! | `redis-tls` | no | Redis over TLS (`rediss://`) for those stores |
//! | `smtp` | yes | the SMTP client ([`smtp`] module): early pipelining (PIPECONNECT) with its EHLO cache, RFC 2920 pipelining, STARTTLS through any backend |
//!
//! With `default-features = false` and one feature, only that library is linked.
//! [`backends::available`] lists what this build has; [`backends::parse`] turns a name into a
//! [`BackendKind`] with an error naming the available ones.
//!
//! The model itself (ticket keys, lifecycle, cache, policy) is [`tlsresume_core`], re-exported
//! here. The `tlsresume` command and the scenario engine behind `tlsresume compare` live in
//! packages of their own (`tlsresume-cli`, `tlsresume-compare`): depending on this crate pulls
//! in neither.

#![deny(missing_docs)]

pub use tlsresume_core::*;

pub mod backends;

/// The OpenSSL backend.
#[cfg(feature = "openssl")]
pub use tlsresume_openssl as openssl;

/// The GnuTLS backend.
#[cfg(feature = "gnutls")]
pub use tlsresume_gnutls as gnutls;

/// The rustls backend.
#[cfg(feature = "rustls")]
pub use tlsresume_rustls as rustls;

/// Stores that outlive a process: the on-disk session cache and Redis.
#[cfg(feature = "stores")]
pub use tlsresume_stores as stores;

/// The SMTP client: early pipelining (PIPECONNECT), pipelining, STARTTLS through a backend.
#[cfg(feature = "smtp")]
pub use tlsresume_smtp as smtp;
