//! One Redis connection with timeouts on every call and a back-off after a failure.

use core::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    Client, Cmd, Connection, ConnectionAddr, ConnectionInfo, ConnectionLike, ErrorKind,
    IntoConnectionInfo, RedisConnectionInfo, RedisError, RedisResult, Value,
};
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
    /// against the system's trust store, or [`tls_ca_pem`](Self::tls_ca_pem)'s), or the master
    /// a set of Sentinels name:
    /// `redis+sentinel://[user][:password@]host:port[,host:port…]/master_name[/db]` (the
    /// credentials and database are the master's; Sentinels are asked without credentials;
    /// a Sentinel address without a port means 26379), or a Redis Cluster:
    /// `redis+cluster://[user][:password@]host:port[,host:port…]` (any of its nodes; the
    /// others are learnt from them; a node without a port means 6379; database 0 only; in
    /// clear: `rediss+cluster://` is refused). Defaults:
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

    /// Whether the URL names a master through Sentinels (`redis+sentinel://`).
    pub fn is_sentinel(&self) -> bool {
        let scheme = self.url.split_once("://").map_or("", |(s, _)| s);
        scheme.eq_ignore_ascii_case("redis+sentinel")
    }

    /// Whether the URL names a Redis Cluster (`redis+cluster://`).
    pub fn is_cluster(&self) -> bool {
        let scheme = self.url.split_once("://").map_or("", |(s, _)| s);
        scheme.eq_ignore_ascii_case("redis+cluster")
            || scheme.eq_ignore_ascii_case("rediss+cluster")
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

/// A `redis+sentinel://` URL taken apart.
#[derive(Debug, PartialEq, Eq)]
struct SentinelUrl {
    sentinels: Vec<(String, u16)>,
    master: String,
    username: Option<String>,
    password: Option<String>,
    db: i64,
}

const SENTINEL_FORM: &str =
    "redis+sentinel://[user][:password@]host:port[,host:port…]/master_name[/db]";

/// Parses `redis+sentinel://[user][:password@]host:port[,host:port…]/master_name[/db]`; the
/// error names what is wrong.
fn parse_sentinel_url(url: &str) -> Result<SentinelUrl, String> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("redis+sentinel") => rest,
        _ => {
            return Err(format!(
                "not a redis+sentinel:// URL; the form is {SENTINEL_FORM}"
            ))
        }
    };
    if rest.contains('?') || rest.contains('#') {
        return Err(
            "query parameters and fragments are not supported in a redis+sentinel:// URL".into(),
        );
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (username, password, hosts) = split_userinfo(authority);
    if hosts.is_empty() {
        return Err(format!(
            "no Sentinel address before the master name; the form is {SENTINEL_FORM}"
        ));
    }
    let mut sentinels = Vec::new();
    for addr in hosts.split(',') {
        sentinels.push(parse_host_port(addr, "Sentinel address", 26379)?);
    }
    let mut segments = path.split('/');
    let master = segments.next().unwrap_or("");
    if master.is_empty() {
        return Err(format!(
            "no master name after the Sentinel addresses; the form is {SENTINEL_FORM}"
        ));
    }
    let db = match segments.next() {
        None | Some("") => 0,
        Some(db) => db
            .parse::<i64>()
            .ok()
            .filter(|d| *d >= 0)
            .ok_or_else(|| format!("database '{db}' after the master name is not a number"))?,
    };
    if let Some(extra) = segments.find(|s| !s.is_empty()) {
        return Err(format!(
            "unexpected '/{extra}' after the database; the form is {SENTINEL_FORM}"
        ));
    }
    Ok(SentinelUrl {
        sentinels,
        master: master.to_owned(),
        username,
        password,
        db,
    })
}

/// `[user][:password@]hosts` taken apart: the user name and password (each `None` when
/// empty or absent) and what follows the last `@`.
pub(crate) fn split_userinfo(authority: &str) -> (Option<String>, Option<String>, &str) {
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => match info.split_once(':') {
            Some((user, pass)) => (
                Some(user.to_owned()).filter(|u| !u.is_empty()),
                Some(pass.to_owned()).filter(|p| !p.is_empty()),
            ),
            None => (Some(info.to_owned()).filter(|u| !u.is_empty()), None),
        },
    };
    (username, password, hosts)
}

/// `host:port`, `[v6]:port`, or a host alone (`default_port`); errors name the address as
/// `what` ("Sentinel address", "Cluster node").
pub(crate) fn parse_host_port(
    addr: &str,
    what: &str,
    default_port: u16,
) -> Result<(String, u16), String> {
    if addr.is_empty() {
        return Err(format!(
            "an empty {what} in the list (two commas in a row, or one at an end)"
        ));
    }
    let (host, port) = if let Some(v6) = addr.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, rest)) => match rest.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("{what} '{addr}': ':' expected after ']'")),
            },
            None => return Err(format!("{what} '{addr}': no ']' closing the IPv6 address")),
        }
    } else {
        match addr.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (addr, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{what} '{addr}' has no host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
            format!("{what} '{addr}': port '{p}' is not a number from 1 to 65535")
        })?,
    };
    Ok((host.to_owned(), port))
}

/// Where connections go: one server, the master Sentinels name, or a Redis Cluster.
enum Target {
    Direct(Client),
    Sentinel(Mutex<SentinelClient>),
    Cluster(ClusterClient),
}

/// A connection: to one server, or to a Redis Cluster (one connection per node, each command
/// sent to the master owning its key's slot, redirections followed).
pub(crate) enum Conn {
    Single(Connection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    fn like(&self) -> &dyn ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => c.as_ref(),
        }
    }

    fn like_mut(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => c.as_mut(),
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.like_mut().req_packed_command(cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.like_mut().req_packed_commands(cmd, offset, count)
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        self.like_mut().req_command(cmd)
    }

    fn get_db(&self) -> i64 {
        self.like().get_db()
    }

    fn supports_pipelining(&self) -> bool {
        self.like().supports_pipelining()
    }

    fn check_connection(&mut self) -> bool {
        self.like_mut().check_connection()
    }

    fn is_open(&self) -> bool {
        self.like().is_open()
    }
}

fn config_error(detail: String) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, "bad Redis URL", detail))
}

/// The target for `config`: a client, or a Sentinel client asking for the master.
fn open_target(config: &RedisConfig) -> Result<Target, RedisError> {
    // Each node or Sentinel connection: unacknowledged bytes (SYNs included) give up after
    // the connect and I/O timeouts, so a host that drops packets cannot hold a caller.
    let bound = config.connect_timeout.saturating_add(config.io_timeout);
    if config.is_cluster() {
        if config.tls_ca.is_some() {
            return Err(config_error(
                "a TLS CA is given but redis+cluster:// speaks to the nodes in clear".into(),
            ));
        }
        let url = crate::cluster::parse_cluster_url(&config.url).map_err(config_error)?;
        return crate::cluster::open_cluster(
            &url,
            config.connect_timeout,
            config.io_timeout,
            tcp_settings(bound),
        )
        .map(Target::Cluster);
    }
    if !config.is_sentinel() {
        return open_client(config).map(Target::Direct);
    }
    if config.tls_ca.is_some() {
        return Err(config_error(
            "a TLS CA is given but redis+sentinel:// speaks to Sentinels and the master in clear"
                .into(),
        ));
    }
    let url = parse_sentinel_url(&config.url).map_err(config_error)?;
    let sentinels: Vec<ConnectionInfo> = url
        .sentinels
        .iter()
        .map(|(host, port)| {
            ConnectionAddr::Tcp(host.clone(), *port)
                .into_connection_info()
                .map(|info| info.set_tcp_settings(tcp_settings(bound)))
        })
        .collect::<Result<_, _>>()?;
    let mut redis = RedisConnectionInfo::default().set_db(url.db);
    if let Some(user) = &url.username {
        redis = redis.set_username(user);
    }
    if let Some(pass) = &url.password {
        redis = redis.set_password(pass);
    }
    let node = SentinelNodeConnectionInfo::default()
        .set_redis_connection_info(redis)
        .set_tcp_settings(tcp_settings(bound));
    let client = SentinelClient::build(
        sentinels,
        url.master.clone(),
        Some(node),
        SentinelServerType::Master,
    )?;
    Ok(Target::Sentinel(Mutex::new(client)))
}

fn tcp_settings(bound: Duration) -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default()
        .set_nodelay(true)
        .set_user_timeout(bound)
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
    conn: Option<Conn>,
    down_until: Option<Instant>,
    /// Whether the last attempt failed (to report an outage once, and its end).
    down: bool,
}

/// A lazily opened connection shared by the callers of one store or key source.
pub(crate) struct Link {
    config: RedisConfig,
    target: Target,
    state: Mutex<State>,
}

impl Link {
    pub(crate) fn new(config: RedisConfig) -> Result<Self, RedisError> {
        let target = open_target(&config)?;
        Ok(Self {
            config,
            target,
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

    /// The name of a key of the fleet's key set (ticket keys, master secret, session key):
    /// [`key`](Self::key)'s, except on a Cluster, where the prefix is a hash tag so the whole
    /// set lives on one slot.
    pub(crate) fn key_set(&self, suffix: &str) -> String {
        match self.target {
            Target::Cluster(_) => {
                format!(
                    "{}{suffix}",
                    crate::cluster::key_set_prefix(&self.config.prefix)
                )
            }
            _ => self.key(suffix),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection to the server, to the master the Sentinels name now (asked again at
    /// every connection, so a failover is followed at the next one), or to a Cluster (its
    /// slots learnt again at every connection).
    fn connect(&self) -> Result<Conn, RedisError> {
        let client = match &self.target {
            Target::Direct(client) => client.clone(),
            Target::Sentinel(sentinel) => sentinel
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_client()?,
            Target::Cluster(cluster) => {
                let conn = cluster.get_connection()?;
                conn.set_write_timeout(Some(self.config.io_timeout))?;
                return Ok(Conn::Cluster(Box::new(conn)));
            }
        };
        let conn = client.get_connection_with_timeout(self.config.connect_timeout)?;
        conn.set_read_timeout(Some(self.config.io_timeout))?;
        conn.set_write_timeout(Some(self.config.io_timeout))?;
        Ok(Conn::Single(conn))
    }

    /// Runs `f` on the connection, connecting first if needed. A kept connection that turns
    /// out dead (Redis restarted) is replaced once and `f` run again, so `f` must be safe to
    /// repeat; a call that timed out is not repeated, so one call waits at most the connect
    /// timeout and the I/O timeout (on a Cluster, each try: a redirection or a lost node is
    /// followed twice more). A failure drops the connection and makes calls fail at once for
    /// [`RedisConfig::retry_after`].
    pub(crate) fn with<T>(
        &self,
        mut f: impl FnMut(&mut Conn) -> Result<T, RedisError>,
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
        conn: Result<Conn, RedisError>,
        f: &mut impl FnMut(&mut Conn) -> Result<T, RedisError>,
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
        // Sentinels know no usable master (during a failover), or the server is a replica
        // now (a former master that came back): reconnect through the Sentinels later.
        // A Cluster still redirecting or down after the retries (a failover under way), or
        // a node the client lost: learn the slots again at the next connection.
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::MasterNameNotFoundBySentinel
                | ErrorKind::NoValidReplicasFoundBySentinel
                | ErrorKind::EmptySentinelList
                | ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
                | ErrorKind::Server(redis::ServerErrorKind::MasterDown)
        )
}

/// Waits (at most `bound`) until one replica holds the writes made so far on `conn`, when
/// the server is a master with replicas: `Some(acknowledged)` (0 when none did in time),
/// `None` when there is no replica to wait for. On a Cluster, the master asked is the one
/// owning `key`'s slot (where the write went), and its replicas are the ones counted.
pub(crate) fn confirm_on_replica(
    conn: &mut Conn,
    key: &str,
    bound: Duration,
) -> Result<Option<u64>, RedisError> {
    let conn = match conn {
        Conn::Cluster(cluster) => {
            return crate::cluster::confirm_on_replica(cluster, key, bound);
        }
        Conn::Single(conn) => conn,
    };
    let role: Value = redis::cmd("ROLE").query(conn)?;
    if replicas_in_role(&role) == 0 {
        return Ok(None);
    }
    let millis = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX).max(1);
    let acked: u64 = redis::cmd("WAIT").arg(1).arg(millis).query(conn)?;
    Ok(Some(acked))
}

/// How many replicas a `ROLE` reply names (0 when the server is not a master).
pub(crate) fn replicas_in_role(role: &Value) -> usize {
    match role {
        Value::Array(items) => match (items.first(), items.get(2)) {
            (Some(Value::BulkString(kind)), Some(Value::Array(replicas)))
                if kind.as_slice() == b"master" =>
            {
                replicas.len()
            }
            _ => 0,
        },
        _ => 0,
    }
}

impl Link {
    /// How long a write waits for a replica's acknowledgement (`WAIT`): half the I/O timeout,
    /// so the reply comes before the read times out.
    pub(crate) fn replica_wait(&self) -> Duration {
        self.config.io_timeout / 2
    }
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
    fn sentinel_urls_are_taken_apart() {
        let url =
            parse_sentinel_url("redis+sentinel://u:p@w@10.0.0.1:26379,[::1]:26380,s3/mymaster/2")
                .expect("well formed");
        assert_eq!(
            url,
            SentinelUrl {
                sentinels: vec![
                    ("10.0.0.1".into(), 26379),
                    ("::1".into(), 26380),
                    ("s3".into(), 26379)
                ],
                master: "mymaster".into(),
                username: Some("u".into()),
                password: Some("p@w".into()),
                db: 2,
            }
        );
        assert!(RedisConfig::new("REDIS+SENTINEL://h:1/m").is_sentinel());
        assert!(Link::new(RedisConfig::new("redis+sentinel://127.0.0.1:9/m")).is_ok());
    }

    #[test]
    fn malformed_sentinel_urls_say_what_is_wrong() {
        for (url, says) in [
            ("redis+sentinel:///m", "no Sentinel address"),
            ("redis+sentinel://h:1", "no master name"),
            ("redis+sentinel://h:1/", "no master name"),
            ("redis+sentinel://h:1,,h:2/m", "empty Sentinel address"),
            ("redis+sentinel://h:1,/m", "empty Sentinel address"),
            ("redis+sentinel://h:port/m", "port 'port'"),
            ("redis+sentinel://h:0/m", "port '0'"),
            ("redis+sentinel://h:70000/m", "port '70000'"),
            ("redis+sentinel://:1/m", "has no host"),
            ("redis+sentinel://[::1/m", "no ']'"),
            ("redis+sentinel://h:1/m/x", "database 'x'"),
            ("redis+sentinel://h:1/m/0/more", "'/more'"),
            ("redis+sentinel://h:1/m?db=1", "query"),
        ] {
            let err = Link::new(RedisConfig::new(url)).expect_err(url).to_string();
            assert!(err.contains(says), "{url}: {err}");
        }
        assert!(Link::new(RedisConfig::new("redis+cluster://h:1,h:2")).is_ok());
        assert!(RedisConfig::new("REDIS+CLUSTER://h:1").is_cluster());
        let err = Link::new(RedisConfig::new("redis+cluster://h:1/3"))
            .expect_err("a database")
            .to_string();
        assert!(err.contains("one database"), "{err}");
        let err = Link::new(RedisConfig::new("redis+cluster://h:1").tls_ca_pem(b"x".to_vec()))
            .expect_err("CA")
            .to_string();
        assert!(err.contains("TLS CA"), "{err}");
        let err = Link::new(RedisConfig::new("redis+sentinel://h:1/m").tls_ca_pem(b"x".to_vec()))
            .expect_err("CA")
            .to_string();
        assert!(err.contains("TLS CA"), "{err}");
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
