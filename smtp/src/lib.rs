//! # tlsresume-smtp
//!
//! An SMTP client (blocking, and on tokio with the `tokio` feature) that takes round trips out
//! of repeat connections: **early
//! pipelining** (PIPECONNECT, draft-harris-early-pipe, as Exim does it) with its EHLO-response
//! cache, RFC 2920 **pipelining** of MAIL/RCPT/DATA whenever the server offers it, and
//! **STARTTLS** through a caller-supplied upgrade ([`StartTls`]) so any tlsresume backend's
//! client — with its session resumption — or any other TLS library plugs in.
//!
//! | item | job |
//! |---|---|
//! | [`Client`], [`ClientConfig`] | one message, or several over one connection (RSET between, SIZE declared and checked against the server's), or one streamed from a reader ([`StreamedMessage`]); per-reply deadlines; `hosts_pipe_connect`, the EHLO cache |
//! | [`Message`], [`Delivery`] | what is sent; what the connection did (sent early, waits, `L` field) |
//! | [`SendError`], [`Stage`], [`ErrorClass`] | where it failed, the server's reply or the library's error, and what to do: permanent, temporary, certificate, protocol |
//! | [`Message::check`], [`EnvelopeError`], [`check_forward_path`] | envelope addresses checked before connecting: nothing but the address goes between the angle brackets |
//! | [`extensions`]: [`Dsn`], [`extensions::parameters`] | the MAIL and RCPT parameters both ways: SIZE, 8BITMIME, SMTPUTF8, DSN (RET, ENVID, NOTIFY, ORCPT in xtext) |
//! | [`auth`]: [`Credentials`], [`auth::AuthClient`], [`auth::UserTable`] | AUTH PLAIN and LOGIN, both sides, under TLS only |
//! | [`StartTls`], [`UpgradeContext`], [`NoTls`], [`Start`] | the TLS seam |
//! | [`TlsUpgrade`] | STARTTLS through any tlsresume backend (a `ClientContext`), the EHLO host name in its session cache key |
//! | [`reply`] | the SMTP reply parser (the workspace's only one) |
//! | [`server`]: [`ServerSession`], [`ServerConfig`] | the server's dialogue without I/O (banner, EHLO, STARTTLS, MAIL, RCPT, DATA, BDAT, RSET, NOOP, QUIT, limits, no smuggling) and its blocking front |
//! | [`session`]: [`ClientSession`] | the client's opening without I/O (banner, EHLO, STARTTLS, QUIT) and its blocking front |
//! | [`dialogue`]: [`Dialogue`](dialogue::Dialogue) | the client's whole dialogue without I/O (early pipelining and its fallback, STARTTLS, one transaction per message, RSET, streamed content, errors) that [`Client`] and the tokio client drive |
//! | `tokio` (feature `tokio`) | the async fronts of the sessions, and the async client (`tokio::Client`, `tokio::AsyncStartTls`): the same dialogue, configuration and results as [`Client`]; STARTTLS through `tlsresume::tokio::SmtpStartTls` |
//! | [`fastopen`]: [`FastOpenStream`], [`FastOpen`] | TCP Fast Open: the first flight in the SYN, and what the kernel says became of it |
//! | [`ehlo`]: [`EhloCache`], [`EhloKey`], [`EhloStore`], [`MemoryEhloStore`] | early pipelining's EHLO-response cache and its rules |
//!
//! The EHLO cache, its key and its rules live here ([`ehlo`]); its stores are the in-memory
//! one and, with `tlsresume-stores`' `ehlo` feature, its SQLite file and Redis. This crate
//! depends on `tlsresume-core` alone: no TLS library, no backend.
//!
//! ## Early pipelining
//!
//! Towards a server matching [`ClientConfig::hosts_pipe_connect`] (default none) whose cached
//! EHLO response (fresher than `retry_data_expire`, 7 days by default) offered PIPELINING and
//! PIPECONNECT, the client sends before the banner arrives:
//!
//! - `EHLO`, `STARTTLS` when TLS is asked for; after the handshake, with a cached under-TLS
//!   response, `EHLO`, `MAIL`, `RCPT`…, `DATA` at once;
//! - otherwise `EHLO`, `MAIL`, `RCPT`…, `DATA` (or `BDAT … LAST` with the content).
//!
//! It then reads the banner and every reply in order and checks each. What the real EHLO
//! response shows updates the cache (rewritten, or deleted) as Exim does; a bad banner or
//! EHLO response deletes the entry, the replies still owed are read and discarded, and the
//! attempt fails with an error the caller can retry, which then goes the normal way.
//!
//! A connection without a usable entry goes the normal way and, towards a server in the list,
//! writes one when the server offers both keywords.
//!
//! ## Service extensions
//!
//! Both sides, tested against each other over loopback and the client against Exim:
//!
//! | extension | client | server session ([`ServerConfig`]) |
//! |---|---|---|
//! | SIZE (RFC 1870) | declared; a message over the server's limit refused unsent | advertised, enforced |
//! | 8BITMIME (RFC 6152) | `BODY=8BITMIME` when the content has an octet over 127; refused unsent (permanent, naming 8BITMIME) when the server does not offer it: this crate does not convert to 7 bit | `eight_bit_mime` (default on) |
//! | SMTPUTF8 (RFC 6531) | sent when an address is not ASCII; refused unsent, naming the address, when not offered | `smtputf8`; an address that is not ASCII without it: 553 5.6.7 |
//! | DSN (RFC 3461) | [`Message::dsn`]: RET, ENVID, NOTIFY, ORCPT (`rfc822`), values in xtext, control bytes refused before connecting; left out when not offered ([`Delivery::parameters`]`.dsn` is then false: the sender reports the message as relayed) | `dsn`; decoded into [`server::Accepted`] |
//! | AUTH (RFC 4954) | [`ClientConfig::auth`]: PLAIN, else LOGIN, after the EHLO under TLS; never in clear (refused unsent, even when offered) | `auth` ([`auth::Authenticator`], [`auth::UserTable`]): advertised under TLS only, 538 in clear |
//! | CHUNKING (RFC 3030) | BDAT when offered ([`ClientConfig::chunking`]), with every parameter above | BDAT |
//!
//! A parameter the session did not offer, or does not know, gets 555 5.5.4. Not supported:
//! BINARYMIME, MIME downgrading of 8-bit content, RFC 6533's UTF-8 ORCPT, SASL mechanisms other
//! than PLAIN and LOGIN, REQUIRETLS.
//!
//! ## TCP Fast Open
//!
//! Towards a server matching [`ClientConfig::hosts_try_fastopen`] (default none),
//! [`Client::connect`] (and the tokio client's, with the same code deciding) hands the early
//! flight to the kernel with the connect, so that with a Fast Open cookie from an earlier
//! connection it travels in the SYN; without one the SYN asks for a cookie.
//! [`Delivery::fast_open`] says what happened. See [`fastopen`].

// Only `ffi` (the socket calls of TCP Fast Open) may use `unsafe`.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
mod body;
mod client;
pub mod dialogue;
pub mod ehlo;
mod envelope;
mod error;
pub mod extensions;
pub mod fastopen;
mod ffi;
pub mod reply;
pub mod server;
pub mod session;
mod tls;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use auth::{Authenticator, Credentials, Mechanism};
pub use client::{
    Client, ClientConfig, Delivery, HeloNameError, Message, NoTls, Start, StartTls,
    StreamedMessage, UpgradeContext,
};
pub use ehlo::{
    ehlo_verdict, DeleteReason, EhloCache, EhloEntry, EhloFeatures, EhloKey, EhloParseError,
    EhloResponse, EhloStore, EhloView, Limits, MemoryEhloStore, Observed, Phase, Verdict,
    DEFAULT_RETRY_DATA_EXPIRE,
};
pub use envelope::{
    check_forward_path, check_reverse_path, AddressError, EnvelopeError, EnvelopeField,
    MAX_COMMAND_LINE, MAX_LOCAL_PART, MAX_PATH,
};
pub use error::{ErrorClass, SendError, Stage};
pub use extensions::{Dsn, Notify, Ret};
pub use fastopen::{FastOpen, FastOpenStream};
pub use reply::{
    read_line_unbuffered, read_reply_lines, read_reply_unbuffered, EnhancedStatus, Reply,
    ReplyError,
};
pub use server::{Deadlines, Pipelining, ServerConfig, ServerSession};
pub use session::{ClientSession, Goal, Opened};
pub use tls::TlsUpgrade;
