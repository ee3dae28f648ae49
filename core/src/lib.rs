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
//! | module | job |
//! |---|---|
//! | [`Resumption`] | Exim's five bits and their decoded texts |
//! | [`Clock`], [`ManualClock`] | real and virtual time |
//! | [`TicketPolicy`] | key rotation, overlap, ticket lifetime, renewal |
//! | [`KeyRing`], [`TicketLifecycle`] | which key seals, what happens to a presented ticket |
//! | [`KeySource`] | where keys come from (process-local by default) |
//! | [`TicketSealer`] | opaque tickets for libraries that take them (rustls) |
//! | [`CacheKey`], [`CacheEntry`], [`SessionStore`] | the client session cache |
//! | [`ResumptionPolicy`], [`HostList`] | who resumes with whom; known-issue treatment |
//! | [`SessionInfo`] | what a handshake produced |
//! | [`ClientSettings::builder`], [`ServerSettings::builder`] | settings, checked once, here |
//! | [`Error`], [`ErrorKind`] | failures an application can act on |
//! | [`ServerContext`], [`ClientContext`], [`TlsStream`] | the type-erased seams, for a backend chosen at run time |
//! | [`contract`] | the decisions every backend carries out the same way (for backend crates) |

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod cache;
mod clock;
pub mod contract;
mod deferred;
mod error;
mod hostlist;
mod info;
mod keys;
mod kind;
mod lifecycle;
pub mod notice;
mod pki;
mod policy;
mod resumption;
mod seal;
mod store;
mod ticket_policy;

pub use backend::{
    BackendKind, ClientContext, ClientParams, ClientSettings, ClientSettingsBuilder, Handshaking,
    MidHandshake, OcspMode, ServerContext, ServerParams, ServerSettings, ServerSettingsBuilder,
    TlsStream, Transport, VerifyMode, Versions,
};
pub use cache::{CacheEntry, CacheKey, CacheKeyBuilder, CodecError, NEVER_LB};
pub use clock::{
    same_clock, Clock, ClockIdentity, ManualClock, SharedClock, SystemClock, UnixTime,
};
pub use contract::{ClientOffer, NoOffer, ServerStart, DEFAULT_LIFETIME_HINT};
pub use deferred::{DeferredStore, StoreOp};
pub use error::{Error, ErrorKind, TlsError, TlsFailure};
pub use hostlist::{canonical_ip, HostList, HostListError};
pub use info::{
    exim_cipher_from_gnutls_desc, exim_cipher_string, CipherNames, OcspStatus, ProtocolVersion,
    SessionInfo, Side, Verification,
};
pub use keys::{
    KeyError, KeyMaterial, KeyName, KeySecret, KeySource, MasterSecret, ProcessKeySource,
    SessionKey, TicketKey, STAND_IN_RETRY_ON_ERROR,
};
pub use lifecycle::{Decision, KeyRing, RejectReason, TicketLifecycle};
pub use pki::{certificates_from_pem, certificates_from_pem_file, read_file, Identity, KeyFormat};
pub use policy::{KnownIssues, ResumptionPolicy};
pub use resumption::{ParseResumptionError, Resumption};
pub use seal::{OpenError, Opened, TicketSealer, SEAL_OVERHEAD};
pub use store::{MemoryStore, SessionStore, StoreError};
pub use ticket_policy::{KeySchedule, TicketPolicy, TicketPolicyError};
