//! One Redis connection with timeouts on every call and a back-off after a failure.

use core::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::{Client, Connection, ConnectionLike, RedisError};

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
}

impl RedisConfig {
    /// A configuration for the server at `url` (`redis://[user][:password@]host:port[/db]`,
    /// or `redis+unix:///path`). Defaults: connect timeout 500 ms, read/write timeout 500 ms,
    /// retry 5 s after a failure, key prefix `tlsresume:`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connect_timeout: Duration::from_millis(500),
            io_timeout: Duration::from_millis(500),
            retry_after: Duration::from_secs(5),
            prefix: "tlsresume:".into(),
        }
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
        let client = Client::open(config.url.as_str())?;
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
    /// repeat. A failure drops the connection and makes calls fail at once for
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
        if reused && matches!(&result, Err(e) if is_link_failure(e)) {
            result = Self::run(self.connect(), &mut f, &mut state);
        }
        match &result {
            Err(e) if is_link_failure(e) => {
                state.conn = None;
                state.down_until = Some(Instant::now() + self.config.retry_after);
                if !state.down {
                    state.down = true;
                    eprintln!(
                        "tlsresume-stores: warning: redis {} unreachable: {e}; retrying every {:?}",
                        self.config.redacted_url(),
                        self.config.retry_after
                    );
                }
            }
            Ok(_) if state.down => {
                state.down = false;
                eprintln!(
                    "tlsresume-stores: redis {} reachable again",
                    self.config.redacted_url()
                );
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
