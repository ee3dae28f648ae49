//! # tlsresume-compare
//!
//! The scenario engine behind `tlsresume compare` and the backend comparison suite: Exim's
//! resumption tests (getticket, resume, renewal, timeout, …) run between every server backend
//! and every client backend, over real loopback sockets and an SMTP dialogue (TLS-on-connect
//! or STARTTLS), on a virtual clock, recording what both ends report.
//!
//! ```no_run
//! use tlsresume_compare::{report, run, Pki, Plan};
//!
//! let outcomes = run(&Plan::all(), &Pki::committed()?, &mut |_, _| {});
//! print!("{}", report::table(&outcomes));
//! # Ok::<(), tlsresume_core::Error>(())
//! ```
//!
//! Backends are chosen at run time through the facade's `tlsresume::backends`; this crate is
//! never a dependency of a library crate. It is published so that the `tlsresume` command
//! (`tlsresume-cli`) installs with `cargo install`; it builds in the TEST PKI of `tests/pki/`
//! ([`Pki::committed`]), whose private keys are public: for tests only.
//!
//! | feature | default | backend |
//! |---|---|---|
//! | `openssl` | yes | `tlsresume-openssl` (system OpenSSL 3) |
//! | `gnutls` | yes | `tlsresume-gnutls` (system GnuTLS 3.7) |
//! | `rustls` | yes | `tlsresume-rustls` (pure Rust) |

#![deny(missing_docs)]

mod engine;
pub mod exim;
pub mod haproxy;
mod pki;
pub mod redis;
pub mod report;
mod scenario;
mod timeline;

pub use engine::{run, run_case, run_case_async, serve_smtp, Io, Outcome, Pki, Plan};

/// A loopback address for tests and benches: `127.0.0.1:port`.
pub fn loopback(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}
pub use pki::{tlsa_record, OcspKind};
pub use scenario::{parse_version, Case, PolicyKind, Scenario, Wire};
pub use timeline::timeline_svg;
