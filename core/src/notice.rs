//! Notices: what the stores and key sources tell the operator — a cache that stopped taking
//! writes, a corrupt entry skipped and removed, Redis out of reach, a ticket key standing in for
//! the fleet's — and when each ends. None of them fails a handshake (each costs resumption at
//! most), so they are not errors; where they go is the application's choice.
//!
//! Every notice is a [`tracing`] event under the target `tlsresume` (a warning at `WARN`, its
//! end at `INFO`; fields `notice` = [`Notice::name`] and the text) and counts one in the
//! `tlsresume_store_notices_total{notice}` counter of [`crate::telemetry`]: an application
//! that routes `tracing` already has them in its log, with no glue. Where else a notice goes:
//!
//! - to the handler, when one is set ([`set_handler`]): for an application that wants the
//!   typed [`Notice`] (a test, a status page, the `tlsresume` command's JSON lines);
//! - otherwise to stderr, one line (`tlsresume: warning: …`), unless the application's
//!   `tracing` subscriber takes the event: so a notice is never lost when nothing is set up,
//!   and never written twice when `tracing` is.
//!
//! A server with a log of its own and no `tracing` (an MTA's main log; a daemon whose stderr
//! goes nowhere) installs a handler once, at start:
//!
//! ```
//! use tlsresume_core::notice::{self, Level};
//!
//! notice::set_handler(|n| match n.level() {
//!     Level::Warning => eprintln!("my-mta: tls cache warning: {n}"),
//!     Level::Info => eprintln!("my-mta: tls cache: {n}"),
//! });
//! ```
//!
//! Every notice is sent once per change of state (writes start failing, then work again), not
//! once per handshake, except [`Notice::UnreadableEntryLeft`], once per entry met.

use core::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::RwLock;
use std::time::Duration;

/// How much a notice matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// Something is wrong: resumption suffers until it ends.
    Warning,
    /// Something wrong ended.
    Info,
}

/// One notice. Its `Display` is the line written by default (without the `tlsresume:` prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// Writes to a store started failing (disk full, read-only file): handshakes go on, new
    /// sessions are not kept.
    WritesFailing {
        /// The store (`session cache PATH`).
        store: String,
        /// The first failure.
        error: String,
    },
    /// Writes to a store work again.
    WritesWorkAgain {
        /// The store.
        store: String,
        /// Writes that failed since the store was opened.
        failed: u64,
    },
    /// A stored entry that did not decode (or had the wrong type) was skipped and left in
    /// place: it may be another reader's (a newer format during a rolling upgrade), so it is
    /// never removed by a reader; it expires by its own time, and the next entry stored under
    /// its key replaces it. That destination makes a full handshake meanwhile.
    UnreadableEntryLeft {
        /// The store (`session cache PATH`, `redis URL`).
        store: String,
        /// Which entry (`entry HEX`, `EHLO entry ADDR`).
        entry: String,
        /// Why it did not decode.
        why: String,
    },
    /// A shared store stopped answering: calls fail at once (no resumption through it, no
    /// handshake waits) and it is tried again every `retry`.
    Unreachable {
        /// The store (`redis URL`, password redacted).
        store: String,
        /// What failed.
        error: String,
        /// How often it is tried again.
        retry: Duration,
    },
    /// A shared store answers again.
    Reachable {
        /// The store.
        store: String,
    },
    /// A ticket key (or master secret) was made in this process because the fleet's could not
    /// be had: tickets sealed with it resume on this node only.
    StandInKey {
        /// Which key (`ticket key for slot N`, `ticket master secret`).
        key: String,
        /// Why the fleet's could not be had.
        why: String,
    },
    /// The fleet's key replaced a stand-in.
    FleetKeyAgain {
        /// Which key.
        key: String,
    },
    /// A rotation fell due before the key source had the new slot's key (its fetch ahead of
    /// the boundary failed or was late): the key ring goes on sealing with the current key,
    /// tickets other nodes seal with the new one get a full handshake (refusal reason
    /// `key_not_fetched`), and the key is fetched in the background, never inside a handshake.
    /// Once per slot.
    TicketKeyNotFetched {
        /// Which key (`ticket key for the slot starting at SECONDS`).
        key: String,
    },
}

impl Notice {
    /// The notice's name, for logs and metrics: `writes_failing`, `writes_work_again`,
    /// `unreadable_entry_left`, `unreachable`, `reachable`, `stand_in_key`,
    /// `fleet_key_again`, `ticket_key_not_fetched`.
    pub fn name(&self) -> &'static str {
        match self {
            Notice::WritesFailing { .. } => "writes_failing",
            Notice::WritesWorkAgain { .. } => "writes_work_again",
            Notice::UnreadableEntryLeft { .. } => "unreadable_entry_left",
            Notice::Unreachable { .. } => "unreachable",
            Notice::Reachable { .. } => "reachable",
            Notice::StandInKey { .. } => "stand_in_key",
            Notice::FleetKeyAgain { .. } => "fleet_key_again",
            Notice::TicketKeyNotFetched { .. } => "ticket_key_not_fetched",
        }
    }

    /// Whether something is wrong, or something wrong ended.
    pub fn level(&self) -> Level {
        match self {
            Notice::WritesWorkAgain { .. }
            | Notice::Reachable { .. }
            | Notice::FleetKeyAgain { .. } => Level::Info,
            _ => Level::Warning,
        }
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::WritesFailing { error, .. } => write!(
                f,
                "{error}; handshakes go on, but new sessions are not kept until writes work again"
            ),
            Notice::WritesWorkAgain { store, failed } => {
                write!(f, "{store}: writes work again ({failed} failed)")
            }
            Notice::UnreadableEntryLeft { store, entry, why } => write!(
                f,
                "{store}: cannot read {entry} ({why}); left in place until it expires or is replaced, full handshake meanwhile"
            ),
            Notice::Unreachable {
                store,
                error,
                retry,
            } => write!(f, "{store} unreachable: {error}; retrying every {retry:?}"),
            Notice::Reachable { store } => write!(f, "{store} reachable again"),
            Notice::StandInKey { key, why } => write!(
                f,
                "{key} is process-local ({why}); tickets sealed with it resume on this node only until the fleet's is back"
            ),
            Notice::FleetKeyAgain { key } => write!(f, "{key} is the fleet's again"),
            Notice::TicketKeyNotFetched { key } => write!(
                f,
                "{key} was not fetched before its rotation; the current key seals meanwhile and tickets sealed with the new one get a full handshake until the fetch in the background brings it"
            ),
        }
    }
}

type Handler = Box<dyn Fn(&Notice) + Send + Sync>;

static HANDLER: RwLock<Option<Handler>> = RwLock::new(None);

/// Sends every later notice to `handler` instead of stderr (process-wide; the last call wins).
/// The handler runs on the thread that met the condition, possibly inside a TLS library's
/// callback: keep it short, and do not call `set_handler` from it. A handler that panics loses
/// that notice, nothing else.
pub fn set_handler(handler: impl Fn(&Notice) + Send + Sync + 'static) {
    let mut slot = HANDLER.write().unwrap_or_else(|p| p.into_inner());
    *slot = Some(Box::new(handler));
}

/// Puts stderr back as the destination of notices.
pub fn reset_handler() {
    let mut slot = HANDLER.write().unwrap_or_else(|p| p.into_inner());
    *slot = None;
}

/// Sends `notice` as a `tracing` event and counts it; then to the handler when one is set, or
/// else to stderr unless a `tracing` subscriber took the event. For stores and key sources
/// (this crate's, and an application's own).
pub fn emit(notice: Notice) {
    let traced = crate::telemetry::notice(&notice);
    let slot = HANDLER.read().unwrap_or_else(|p| p.into_inner());
    match slot.as_ref() {
        Some(handler) => {
            let _ = catch_unwind(AssertUnwindSafe(|| handler(&notice)));
        }
        None if traced => {}
        None => match notice.level() {
            Level::Warning => eprintln!("tlsresume: warning: {notice}"),
            Level::Info => eprintln!("tlsresume: {notice}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_and_levels() {
        let failing = Notice::WritesFailing {
            store: "session cache /x".into(),
            error: "session cache /x: database or disk is full".into(),
        };
        assert_eq!(failing.level(), Level::Warning);
        assert_eq!(
            failing.to_string(),
            "session cache /x: database or disk is full; handshakes go on, but new sessions are not kept until writes work again"
        );
        let back = Notice::WritesWorkAgain {
            store: "session cache /x".into(),
            failed: 3,
        };
        assert_eq!(back.level(), Level::Info);
        assert_eq!(
            back.to_string(),
            "session cache /x: writes work again (3 failed)"
        );
        let stand_in = Notice::StandInKey {
            key: "ticket key for slot 7".into(),
            why: "redis timed out".into(),
        };
        assert!(stand_in
            .to_string()
            .starts_with("ticket key for slot 7 is process-local (redis timed out)"));
    }

    #[test]
    fn a_handler_gets_the_notices_and_a_panicking_one_loses_only_its_own() {
        use std::sync::{Arc, Mutex};
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        set_handler(move |n| {
            if let Notice::Reachable { store } = n {
                if store == "panic" {
                    panic!("handler failed");
                }
                s.lock().expect("lock").push(store.clone());
            }
        });
        emit(Notice::Reachable {
            store: "panic".into(),
        });
        emit(Notice::Reachable {
            store: "redis://a".into(),
        });
        reset_handler();
        emit(Notice::Reachable {
            store: "redis://b".into(),
        });
        assert_eq!(*seen.lock().expect("lock"), vec!["redis://a".to_owned()]);
    }
}
