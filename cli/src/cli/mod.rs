//! The `serve`, `probe`, `scan` and `decode` subcommands and what they share: the SMTP
//! dialogue, argument helpers, the log writer; `probe --cache` uses the on-disk store of
//! `tlsresume-stores`.

pub mod decode;
pub mod http;
pub mod metrics;
pub mod pool;
pub mod probe;
pub mod scan;
pub mod serve;
pub mod smtp;

use std::io::Write;

use clap::ValueEnum;
use tlsresume::{BackendKind, Error, Versions};
use tlsresume_compare::{self as compare, PolicyKind};

/// The protocol spoken before STARTTLS (only SMTP for now).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StartProtocol {
    /// SMTP: banner, EHLO advertising STARTTLS, STARTTLS, then TLS.
    Smtp,
}

/// How TLS starts on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// TLS from the first byte (SMTPS, port 465 style); the SMTP banner comes over TLS.
    TlsOnConnect,
    /// Plain SMTP until STARTTLS.
    Starttls,
    /// SMTP in clear throughout, no TLS (`--plain`).
    Plain,
}

impl Wire {
    /// The wire from the `--starttls` and `--plain` options (neither: TLS-on-connect).
    pub fn from_options(starttls: Option<StartProtocol>, plain: bool) -> Self {
        match (starttls, plain) {
            (_, true) => Self::Plain,
            (Some(StartProtocol::Smtp), false) => Self::Starttls,
            (None, false) => Self::TlsOnConnect,
        }
    }

    /// `tls-on-connect`, `starttls` or `plain`.
    pub fn name(self) -> &'static str {
        match self {
            Self::TlsOnConnect => "tls-on-connect",
            Self::Starttls => "starttls",
            Self::Plain => "plain",
        }
    }
}

/// The backend named on the command line, or the first compiled in when none is named.
pub fn backend(name: Option<&str>) -> Result<BackendKind, Error> {
    match name {
        Some(name) => tlsresume::backends::parse(name),
        None => tlsresume::backends::available()
            .first()
            .copied()
            .ok_or_else(|| Error::Config("no TLS backend is compiled in".into())),
    }
}

/// The TLS versions allowed: both, or only the one given with `--tls`.
pub fn versions(tls: Option<&str>) -> Result<Versions, Error> {
    match tls {
        Some(v) => Ok(Versions::only(compare::parse_version(v)?)),
        None => Ok(Versions::ALL),
    }
}

/// The resumption policy preset named with `--policy`.
pub fn policy(name: &str) -> Result<PolicyKind, Error> {
    name.parse::<PolicyKind>()
}

/// With `--fastopen`: says on stderr, once, when the kernel's `net.ipv4.tcp_fastopen` does not
/// allow what `allows` asks (client or server use); connections then go the normal way.
pub fn note_fast_open_setting(
    command: &str,
    allows: fn(tlsresume::smtp::fastopen::KernelSetting) -> bool,
) {
    match tlsresume::smtp::fastopen::KernelSetting::read() {
        Ok(setting) if !allows(setting) => eprintln!(
            "tlsresume {command}: --fastopen: {}; connections go the normal way",
            setting.forbids().unwrap_or_default()
        ),
        Ok(_) => {}
        Err(e) => eprintln!(
            "tlsresume {command}: --fastopen: cannot read net.ipv4.tcp_fastopen ({e}); Fast Open is tried all the same"
        ),
    }
}

/// With `--json`, the stores' notices (a cache that stopped taking writes, Redis out of reach,
/// a process-local ticket key, and when each ends) join the JSON lines on stdout as
/// `{"notice": TEXT, "level": "warning"|"info"}`, so a script reading them sees why resumption
/// stopped; without it they stay on stderr, one line each.
pub fn notices_as_json() {
    tlsresume::notice::set_handler(|n| {
        let level = match n.level() {
            tlsresume::notice::Level::Warning => "warning",
            tlsresume::notice::Level::Info => "info",
        };
        log_line(&serde_json::json!({ "notice": n.to_string(), "level": level }).to_string());
    });
}

/// The library's `tracing` events on stderr, for `serve` and `probe`: the level from
/// `TLSRESUME_LOG` (`error`, `warn`, `info`, `debug`, `trace`; `warn` when unset, which shows
/// nothing in normal running: the library's per-connection events are at debug), one JSON
/// object per line with `--json`, text otherwise. An unknown level is a clear error.
pub fn install_log(json: bool) -> Result<(), Error> {
    let level = match std::env::var("TLSRESUME_LOG") {
        Ok(text) => text.parse::<tracing::Level>().map_err(|_| {
            Error::Config(format!(
                "TLSRESUME_LOG={text}: not a level (error, warn, info, debug, trace)"
            ))
        })?,
        Err(_) => tracing::Level::WARN,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    // Another subscriber already set (a test harness) is left in place.
    let _ = if json {
        tracing::subscriber::set_global_default(builder.json().finish())
    } else {
        tracing::subscriber::set_global_default(builder.finish())
    };
    Ok(())
}

/// An error met on a blocking socket with `--timeout` set, for a log line: the socket's own
/// timeout ("Resource temporarily unavailable (os error 11)", a TLS library's "again") says
/// "the idle read timeout passed"; any other error (a deadline that passed says which) is
/// shown as it is.
pub fn said(err: &std::io::Error) -> String {
    match tlsresume::deadline::idle_timeout(err, "read") {
        Some(timeout) => timeout.to_string(),
        None => err.to_string(),
    }
}

/// Whether `err` is a timeout (a deadline or the idle timeout passed): an I/O failure, for
/// `--json`'s `error_kind`.
pub fn is_timeout(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

/// Writes one line to stdout and flushes it, so scripts and tests reading the output as a
/// pipe see each line when it happens. A closed stdout is ignored.
pub fn log_line(line: &str) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
