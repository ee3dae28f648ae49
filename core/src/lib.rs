//! # tlsresume-core
//!
//! The model behind tlsresume: session-ticket keys and their lifecycle, Exim's resumption
//! bits, the client session cache, the resumption policy, and the traits each TLS backend
//! implements. No TLS library and no FFI live here; the backends (`tlsresume-openssl`,
//! `tlsresume-gnutls`, `tlsresume-rustls`) drive their library from these types so the same
//! decisions are made whichever library is underneath.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tlsresume_core::keys::key_ring::{Decision, KeyRing};
//! use tlsresume_core::keys::seal::TicketSealer;
//! use tlsresume_core::*;
//!
//! // A server's ticket keys under the OpenSSL flavour, on a virtual clock.
//! let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
//! let ring = Arc::new(KeyRing::new(TicketPolicy::OPENSSL, Arc::new(ProcessKeySource::new())));
//! let sealer = TicketSealer::new(ring);
//! let ticket = sealer.seal(b"session state", clock.now())?;
//!
//! clock.advance(Duration::from_secs(61 * 60));
//! let opened = sealer.open(&ticket, clock.now()).expect("still valid");
//! assert_eq!(opened.decision, Decision::ResumeAndRenew);
//!
//! clock.advance(Duration::from_secs(60 * 60));
//! assert!(sealer.open(&ticket, clock.now()).is_err());
//! # Ok::<(), KeyError>(())
//! ```
//!
//! The paved path is at the root (settings, errors, what a handshake reports, the policy, the
//! clock, the stores); the rest is in modules laid out by job:
//!
//! | module | job |
//! |---|---|
//! | [`settings`], [`settings::params`] | what a client or server is made from, checked once; what one connection knows |
//! | [`identities`] | several server certificates: which one a client's name (SNI) selects |
//! | [`model`] | Exim's five bits ([`Resumption`]), the policy and host lists, the ticket flavours ([`TicketPolicy`]) |
//! | [`keys`] | ticket keys and their sources, the key ring and its lifecycle ([`keys::key_ring`]), sealed tickets ([`keys::seal`]), the store's [`SessionKey`] |
//! | [`cache`] | the client session cache: [`CacheKey`], [`CacheEntry`], [`SessionStore`] ([`cache::store`]), the async layer's [`DeferredStore`] ([`cache::deferred`]) |
//! | [`dane`] | DANE for SMTP (RFC 7672): [`TlsaRecord`], what a connection's records ask ([`dane::DanePlan`]), the record that matched ([`DaneAuthority`]) |
//! | [`contract`] | the backend contract: [`contract::ClientHandshake`] (one client connection's lifecycle), the generic traits every backend implements |
//! | [`deadline`] | bounds on how long a peer may take: [`Deadline`] for a whole handshake, the errors that name which timeout passed |
//! | [`limits`] | what a server admits: [`limits::PerAddress`], connections at once per client address |
//! | [`seams`] | the type-erased forms, for a backend chosen at run time |
//! | [`notice`] | what stores and key sources meet without failing a handshake (also `tracing` events and a counter) |
//! | leaves | [`BackendKind`], [`Error`] and every error type, [`SessionInfo`] and its parts, [`Clock`] |

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cache;
pub mod clock;
pub mod contract;
pub mod dane;
pub mod deadline;
mod error;
pub mod identities;
pub mod info;
pub mod keys;
mod kind;
pub mod limits;
pub mod model;
pub mod notice;
pub mod pki;
pub mod seams;
pub mod settings;
pub mod telemetry;
pub mod wire;

pub use cache::deferred::{DeferredStore, StoreOp};
pub use cache::store::{MemoryStore, SessionStore, StoreError};
pub use cache::{CacheEntry, CacheKey};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock, UnixTime};
pub use dane::{DaneAuthority, TlsaError, TlsaRecord};
pub use deadline::Deadline;
pub use error::{Error, ErrorKind, TlsError, TlsFailure};
pub use identities::ServerIdentity;
pub use info::{
    CipherNames, NoOffer, OcspStatus, ProtocolVersion, SessionInfo, Side, Verification, VerifiedBy,
};
pub use keys::key_ring::RejectReason;
pub use keys::{KeyError, KeySource, ProcessKeySource, SessionKey};
pub use kind::BackendKind;
pub use model::hostlist::HostList;
pub use model::policy::{KnownIssues, ResumptionPolicy};
pub use model::resumption::Resumption;
pub use model::ticket_policy::TicketPolicy;
pub use pki::{certificates_from_pem, certificates_from_pem_file, Identity, KeyFormat};
pub use seams::{ClientContext, Handshaking, MidHandshake, ServerContext, TlsStream, Transport};
pub use settings::ciphers::{CipherList, CipherSuite};
pub use settings::params::{ClientParams, ServerParams};
pub use settings::{
    ClientAuth, ClientSettings, ClientSettingsBuilder, OcspMode, ServerSettings,
    ServerSettingsBuilder, VerifyMode, Versions,
};
