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
//! use tlsresume::{ClientParams, ClientSettings};
//!
//! let roots = tlsresume::certificates_from_pem_file("ca.pem".as_ref())?;
//! let client = tlsresume::openssl::Client::new(ClientSettings::builder(roots).build()?)?;
//! let peer = "192.0.2.10:465".parse()?;
//! let mut tls = client.connect(TcpStream::connect(peer)?, &ClientParams::new("mx.example.net", peer))?;
//! tls.get_mut().set_nodelay(true)?; // the socket is still reachable
//! println!("X={} resumption={}", tls.info().exim_x(), tls.info().resumption);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each backend's `Client::connect` and `Server::accept` take any `Read + Write` transport and
//! return a `Stream<S>` with `get_ref`, `get_mut`, `info` and `shutdown`, as
//! `openssl::ssl::SslStream<S>` does. To choose the library at run time, [`backends`] makes a
//! type-erased [`ClientContext`] or [`ServerContext`] over a `Box<dyn Transport>`, whose
//! [`TlsStream`] gives the transport back with `transport_mut::<TcpStream>()`.
//!
//! Settings are checked once, in core ([`ClientSettings::builder`], [`ServerSettings::builder`];
//! every backend runs the same checks again when it is made): an empty trust store, an empty
//! version range, a ticket policy GnuTLS cannot carry out, a second GnuTLS clock, each gets an
//! [`Error::Setting`] naming the field. Handshake failures have an [`ErrorKind`] (I/O —
//! timeouts included — certificate, OCSP, alert, protocol, configuration) and keep the
//! library's own error as their `source()`.
//!
//! ## Policy
//!
//! The default policy is the safe one: [`ResumptionPolicy::default`], and what the settings'
//! `new` and `builder` start from, is [`ResumptionPolicy::hardened`], every known issue of
//! resumed sessions fixed. [`ResumptionPolicy::exim_compatible`] reports as Exim does, known
//! issues included (a resumed handshake "not verified" on OpenSSL and rustls, required OCSP
//! failing every resumed connection there): `tlsresume compare` runs both, and
//! `tlsresume serve` and `tlsresume probe`, Exim's test bench, use it unless given
//! `--policy hardened`.
//!
//! ## Async
//!
//! With the `tokio` feature, [`tokio`] has `TlsConnector` / `TlsAcceptor` in
//! tokio-rustls's shape for every backend (by type or from [`backends`]), driving each library
//! non-blocking with the same resumption decisions; its docs open with a runnable example and
//! say where store and key-source I/O happens (never on a runtime thread for a store that
//! blocks).
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
//! | `tokio` | no | async streams on tokio ([`tokio`] module): `TlsConnector` / `TlsAcceptor` for every backend, with the same resumption behaviour |
//! | `smtp` | yes | the SMTP client ([`smtp`] module): early pipelining (PIPECONNECT) with its EHLO cache, RFC 2920 pipelining, STARTTLS through any backend |
//!
//! With `default-features = false` and one feature, only that library is linked.
//! [`backends::available`] lists what this build has; [`backends::parse`] turns a name into a
//! [`BackendKind`] with an error naming the available ones.
//!
//! The model itself (ticket keys, lifecycle, cache, policy) is [`tlsresume_core`]: its paved
//! path is re-exported at this root item by item, with the modules an application reaches into
//! ([`settings`], [`model`], [`keys`], [`cache`], [`notice`], [`telemetry`], …). The `tlsresume` command and the scenario engine behind `tlsresume compare` live in
//! packages of their own (`tlsresume-cli`, `tlsresume-compare`): depending on this crate pulls
//! in neither.

// The feature-gated modules' links resolve with or without their feature: to the module when
// it is compiled in, to its page on docs.rs (built with every feature) when it is not.
//!
#![cfg_attr(feature = "openssl", doc = "[`openssl`]: crate::openssl")]
#![cfg_attr(
    not(feature = "openssl"),
    doc = "[`openssl`]: https://docs.rs/tlsresume/latest/tlsresume/openssl/"
)]
#![cfg_attr(feature = "gnutls", doc = "[`gnutls`]: crate::gnutls")]
#![cfg_attr(
    not(feature = "gnutls"),
    doc = "[`gnutls`]: https://docs.rs/tlsresume/latest/tlsresume/gnutls/"
)]
#![cfg_attr(feature = "rustls", doc = "[`rustls`]: crate::rustls")]
#![cfg_attr(
    not(feature = "rustls"),
    doc = "[`rustls`]: https://docs.rs/tlsresume/latest/tlsresume/rustls/"
)]
#![cfg_attr(feature = "stores", doc = "[`stores`]: crate::stores")]
#![cfg_attr(
    not(feature = "stores"),
    doc = "[`stores`]: https://docs.rs/tlsresume/latest/tlsresume/stores/"
)]
#![cfg_attr(feature = "smtp", doc = "[`smtp`]: crate::smtp")]
#![cfg_attr(
    not(feature = "smtp"),
    doc = "[`smtp`]: https://docs.rs/tlsresume/latest/tlsresume/smtp/"
)]
#![cfg_attr(feature = "tokio", doc = "[`tokio`]: crate::tokio")]
#![cfg_attr(
    not(feature = "tokio"),
    doc = "[`tokio`]: https://docs.rs/tlsresume/latest/tlsresume/tokio/"
)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

// The published root, item by item: core's paved path (what an application names: settings,
// errors, what a handshake reports, the policy, the clock, stores and key sources, the seams of
// a backend chosen at run time) and the modules of core an application reaches into. What only
// a backend uses (`tlsresume_core::wire`, the clear handshake reader) stays in core.
pub use tlsresume_core::{
    cache, clock, contract, dane, deadline, identities, info, keys, limits, model, notice, pki,
    seams, settings, telemetry,
};
pub use tlsresume_core::{
    certificates_from_pem, certificates_from_pem_file, BackendKind, CacheEntry, CacheKey,
    CipherList, CipherNames, CipherSuite, ClientAuth, ClientContext, ClientParams, ClientSettings,
    ClientSettingsBuilder, Clock, DaneAuthority, Deadline, DeferredStore, Error, ErrorKind,
    Handshaking, HostList, Identity, KeyError, KeyFormat, KeySource, KnownIssues, ManualClock,
    MemoryStore, MidHandshake, NoOffer, OcspMode, OcspStatus, ProcessKeySource, ProtocolVersion,
    RejectReason, Resumption, ResumptionPolicy, ServerContext, ServerIdentity, ServerParams,
    ServerSettings, ServerSettingsBuilder, SessionInfo, SessionKey, SessionStore, SharedClock,
    Side, StoreError, StoreOp, SystemClock, TicketPolicy, TlsError, TlsFailure, TlsStream,
    TlsaError, TlsaRecord, Transport, UnixTime, Verification, VerifiedBy, VerifyMode, Versions,
};

pub mod backends;

/// The OpenSSL backend.
#[cfg(feature = "openssl")]
#[cfg_attr(docsrs, doc(cfg(feature = "openssl")))]
pub use tlsresume_openssl as openssl;

/// The GnuTLS backend.
#[cfg(feature = "gnutls")]
#[cfg_attr(docsrs, doc(cfg(feature = "gnutls")))]
pub use tlsresume_gnutls as gnutls;

/// The rustls backend.
#[cfg(feature = "rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
pub use tlsresume_rustls as rustls;

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

/// Stores that outlive a process: the on-disk session cache and Redis.
#[cfg(feature = "stores")]
#[cfg_attr(docsrs, doc(cfg(feature = "stores")))]
pub use tlsresume_stores as stores;

/// The SMTP client: early pipelining (PIPECONNECT), pipelining, STARTTLS through a backend.
#[cfg(feature = "smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
pub use tlsresume_smtp as smtp;

#[cfg(test)]
mod tests {
    /// The identifiers of the `pub use` statements of `source` whose path starts with `from`
    /// (every one when `from` is empty): the last segment, or each name in the braces.
    fn reexports(source: &str, from: &str) -> Vec<String> {
        let mut names = Vec::new();
        for statement in source.split("pub use ").skip(1) {
            let Some(end) = statement.find(';') else {
                continue;
            };
            let path = &statement[..end];
            if !path.starts_with(from) {
                continue;
            }
            let list = match (path.find('{'), path.rfind('}')) {
                (Some(open), Some(close)) => &path[open + 1..close],
                _ => path.rsplit("::").next().unwrap_or(path),
            };
            names.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
            );
        }
        names
    }

    /// The root is curated, and curated completely: every item of core's paved path, and every
    /// public module of core but the backends' own, is re-exported here, so a new one cannot
    /// be left out of the published root unnoticed.
    #[test]
    fn the_root_holds_cores_paved_path_and_modules() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let read = |path: &str| {
            std::fs::read_to_string(format!("{dir}/{path}"))
                .unwrap_or_else(|e| panic!("{path}: {e} (this test runs in the repository)"))
        };
        let core = read("core/src/lib.rs");
        let facade = read("src/lib.rs");
        let here = reexports(&facade, "tlsresume_core::");
        let mut missing: Vec<String> = reexports(&core, "")
            .into_iter()
            .filter(|n| !here.contains(n))
            .collect();
        for line in core.lines() {
            if let Some(module) = line
                .strip_prefix("pub mod ")
                .and_then(|m| m.strip_suffix(';'))
            {
                // The clear handshake reader: only backends use it.
                if module != "wire" && !here.iter().any(|n| n == module) {
                    missing.push(format!("mod {module}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "core's root has what the facade does not re-export: {missing:?}"
        );
        assert!(here.iter().any(|n| n == "ResumptionPolicy"), "{here:?}");
    }
}
