//! One Redis connection with timeouts on every call and a back-off after a failure.

use core::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::{Client, Connection, ConnectionLike, ErrorKind, RedisError};
use tlsresume_core::notice::{self, Notice};

/// Where Redis is and how long to wait for it.
///
/// ```
/// use std::time::Duration;
/// use tlsresume_stores::RedisConfig;
///
/// let config = RedisConfig::new("redis://:secret@127.0.0.1:6379/0")
///     .io_timeout(Duration::from_millis(200))
///     .prefix("mail-fleet:");
/// // The password never shows.
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct RedisConfig {
    url: String,
    connect_timeout: Duration,
    io_timeout: Duration,
    retry_after: Duration,
    prefix: String,
    /// PEM trust anchors for `rediss://` instead of the system's.
    tls_ca: Option<Vec<u8>>,
}

impl RedisConfig {
    /// A configuration for the server at `url` (`redis://[user][:password@]host:port[/db]`,
    /// or `redis+unix:///path`; with the `redis-tls` feature also
    /// `rediss://[user][:password@]host:port[/db]`, TLS with the server's certificate verified
    /// against the system's trust store, or [`tls_ca_pem`](Self::tls_ca_pem)'s). Defaults:
    /// connect timeout 500 ms (TLS handshake included), read/write timeout 500 ms, retry 5 s
    /// after a failure, key prefix `tlsresume:`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connect_timeout: Duration::from_millis(500),
            io_timeout: Duration::from_millis(500),
            retry_after: Duration::from_secs(5),
            prefix: "tlsresume:".into(),
            tls_ca: None,
        }
    }

    /// Trusts only the CA certificates in `pem` (PEM text, one or more certificates) for a
    /// `rediss://` URL, instead of the system's trust store: for a Redis whose certificate a
    /// private CA issued. The host in the URL must still match the certificate (a name, or an
    /// IP address in its subjectAltName). `rediss://` needs the `redis-tls` feature; a CA with
    /// a `redis://` URL is refused.
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_ca = Some(pem.into());
        self
    }

    /// Whether the URL asks for TLS (`rediss://` or `valkeys://`).
    pub fn is_tls(&self) -> bool {
        let scheme = self.url.split_once("://").map_or("", |(s, _)| s);
        scheme.eq_ignore_ascii_case("rediss") || scheme.eq_ignore_ascii_case("valkeys")
    }

    /// How long connecting may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one read or write may take.
    pub fn io_timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = timeout;
        self
    }

    /// After a failure, how long calls fail at once (without touching the network) before
    /// Redis is tried again.
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = delay;
        self
    }

    /// The delay set by [`retry_after`](Self::retry_after).
    pub(crate) fn retry_delay(&self) -> Duration {
        self.retry_after
    }

    /// The prefix of every Redis key written (to share one Redis between fleets).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &self.url[..scheme + 3], &self.url[at..])
            }
            _ => self.url.clone(),
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url())
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("retry_after", &self.retry_after)
            .field("prefix", &self.prefix)
            .field("tls_ca", &self.tls_ca.as_ref().map(|_| "<pem>"))
            .finish()
    }
}

/// Why a Redis call did not happen or failed.
#[derive(Debug)]
pub(crate) enum LinkError {
    /// Redis failed recently; not tried again yet.
    Backoff,
    /// The call failed.
    Redis(RedisError),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Backoff => f.write_str("unreachable (retrying later)"),
            LinkError::Redis(e) => write!(f, "{e}"),
        }
    }
}

/// The client for `config`: plain, or TLS (with its trust anchors) for `rediss://`.
fn open_client(config: &RedisConfig) -> Result<Client, RedisError> {
    if !config.is_tls() {
        if config.tls_ca.is_some() {
            return Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "a TLS CA is given but the URL is not rediss://",
            )));
        }
        return Client::open(config.url.as_str());
    }
    #[cfg(not(feature = "redis-tls"))]
    {
        Err(RedisError::from((
            ErrorKind::InvalidClientConfig,
            "rediss:// (TLS) needs the redis-tls feature of tlsresume-stores",
        )))
    }
    #[cfg(feature = "redis-tls")]
    {
        // The redis crate builds its rustls configuration from the process-wide provider;
        // install ring's unless the application chose one.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = match &config.tls_ca {
            Some(pem) => {
                use rustls::pki_types::pem::PemObject;
                use rustls::pki_types::CertificateDer;
                let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
                if certs.map_or(true, |c| c.is_empty()) {
                    return Err(RedisError::from((
                        ErrorKind::InvalidClientConfig,
                        "the TLS CA for Redis holds no PEM certificate",
                    )));
                }
                Client::build_with_tls(
                    config.url.as_str(),
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem.clone()),
                    },
                )?
            }
            None => Client::open(config.url.as_str())?,
        };
        if matches!(
            client.get_connection_info().addr(),
            redis::ConnectionAddr::TcpTls { insecure: true, .. }
        ) {
            return Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "rediss://...#insecure (no certificate verification) is not supported; give the CA with RedisConfig::tls_ca_pem",
            )));
        }
        Ok(client)
    }
}

struct State {
    conn: Option<Connection>,
    down_until: Option<Instant>,
    /// Whether the last attempt failed (to report an outage once, and its end).
    down: bool,
}

/// A lazily opened connection shared by the callers of one store or key source.
pub(crate) struct Link {
    config: RedisConfig,
    client: Client,
    state: Mutex<State>,
}

impl Link {
    pub(crate) fn new(config: RedisConfig) -> Result<Self, RedisError> {
        let client = open_client(&config)?;
        Ok(Self {
            config,
            client,
            state: Mutex::new(State {
                conn: None,
                down_until: None,
                down: false,
            }),
        })
    }

    pub(crate) fn config(&self) -> &RedisConfig {
        &self.config
    }

    pub(crate) fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.config.prefix)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn connect(&self) -> Result<Connection, RedisError> {
        let conn = self
            .client
            .get_connection_with_timeout(self.config.connect_timeout)?;
        conn.set_read_timeout(Some(self.config.io_timeout))?;
        conn.set_write_timeout(Some(self.config.io_timeout))?;
        Ok(conn)
    }

    /// Runs `f` on the connection, connecting first if needed. A kept connection that turns
    /// out dead (Redis restarted) is replaced once and `f` run again, so `f` must be safe to
    /// repeat; a call that timed out is not repeated, so one call waits at most the connect
    /// timeout and the I/O timeout. A failure drops the connection and makes calls fail at once for
    /// [`RedisConfig::retry_after`].
    pub(crate) fn with<T>(
        &self,
        mut f: impl FnMut(&mut Connection) -> Result<T, RedisError>,
    ) -> Result<T, LinkError> {
        let mut state = self.lock();
        if let Some(until) = state.down_until {
            if Instant::now() < until {
                return Err(LinkError::Backoff);
            }
            state.down_until = None;
        }
        let kept = state.conn.take().filter(|c| c.is_open());
        let reused = kept.is_some();
        let mut result = Self::run(kept.map_or_else(|| self.connect(), Ok), &mut f, &mut state);
        // A timeout is no sign of a dead connection (Redis is slow, not gone): repeating the
        // call would double the wait the timeouts are there to bound.
        if reused && matches!(&result, Err(e) if is_link_failure(e) && !e.is_timeout()) {
            result = Self::run(self.connect(), &mut f, &mut state);
        }
        match &result {
            Err(e) if is_link_failure(e) => {
                state.conn = None;
                state.down_until = Some(Instant::now() + self.config.retry_after);
                if !state.down {
                    state.down = true;
                    notice::emit(Notice::Unreachable {
                        store: format!("redis {}", self.config.redacted_url()),
                        error: e.to_string(),
                        retry: self.config.retry_after,
                    });
                }
            }
            Ok(_) if state.down => {
                state.down = false;
                notice::emit(Notice::Reachable {
                    store: format!("redis {}", self.config.redacted_url()),
                });
            }
            _ => {}
        }
        result.map_err(LinkError::Redis)
    }
}

impl Link {
    fn run<T>(
        conn: Result<Connection, RedisError>,
        f: &mut impl FnMut(&mut Connection) -> Result<T, RedisError>,
        state: &mut State,
    ) -> Result<T, RedisError> {
        let mut conn = conn?;
        let out = f(&mut conn);
        if conn.is_open() && out.as_ref().map_or_else(|e| !is_link_failure(e), |_| true) {
            state.conn = Some(conn);
        }
        out
    }
}

fn is_link_failure(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Link")
            .field("config", &self.config)
            .field("connected", &state.conn.is_some())
            .field("down", &state.down)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_urls_are_recognised() {
        assert!(RedisConfig::new("rediss://127.0.0.1:6380").is_tls());
        assert!(RedisConfig::new("REDISS://h:1/0").is_tls());
        assert!(RedisConfig::new("valkeys://h:1").is_tls());
        assert!(!RedisConfig::new("redis://127.0.0.1:6379").is_tls());
        assert!(!RedisConfig::new("redis+unix:///run/redis.sock").is_tls());
    }

    #[test]
    fn a_ca_needs_rediss() {
        let ca = RedisConfig::new("redis://127.0.0.1:6379").tls_ca_pem(b"x".to_vec());
        let err = Link::new(ca).expect_err("a CA needs rediss://");
        assert!(err.to_string().contains("rediss://"), "{err}");
    }

    #[cfg(not(feature = "redis-tls"))]
    #[test]
    fn rediss_without_the_feature_says_which_feature() {
        let err = Link::new(RedisConfig::new("rediss://127.0.0.1:6380")).expect_err("no TLS");
        assert!(err.to_string().contains("redis-tls"), "{err}");
    }

    #[cfg(feature = "redis-tls")]
    #[test]
    fn insecure_and_bad_ca_are_refused_up_front() {
        let err = Link::new(RedisConfig::new("rediss://127.0.0.1:6380/#insecure"))
            .expect_err("#insecure");
        assert!(err.to_string().contains("insecure"), "{err}");
        assert!(Link::new(RedisConfig::new("rediss://127.0.0.1:6380")).is_ok());
        let garbage = RedisConfig::new("rediss://127.0.0.1:6380").tls_ca_pem(b"x".to_vec());
        assert!(Link::new(garbage).is_err(), "no certificate in the PEM");
        assert!(!format!(
            "{:?}",
            RedisConfig::new("rediss://h:1").tls_ca_pem(b"PEM".to_vec())
        )
        .contains("PEM\""));
    }
}
