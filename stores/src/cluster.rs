//! Redis Cluster (`redis+cluster://`): the URL, the client (redis-rs's `cluster` feature),
//! the hash tag that keeps a key set on one slot, and the confirmation of a write on the
//! replicas of the master that owns its slot.

use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection};
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError, Value};

use crate::link::{parse_host_port, split_userinfo};

/// The form of a Cluster URL, for error messages.
const CLUSTER_FORM: &str = "redis+cluster://[user][:password@]host:port[,host:port…]";

/// How many times a command is sent again after a redirection (`MOVED`, `ASK`), `TRYAGAIN`
/// or a lost node connection before the call fails. Two follow a failover's `MOVED` and the
/// reconnection to the promoted replica; more would hold the caller (each try is bounded by
/// the connect and I/O timeouts).
const RETRIES: u32 = 2;
/// The wait between two tries, at least and at most (milliseconds).
const RETRY_WAIT_MS: (u64, u64) = (10, 100);

/// A `redis+cluster://` URL taken apart.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ClusterUrl {
    pub(crate) nodes: Vec<(String, u16)>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

/// Parses `redis+cluster://[user][:password@]host:port[,host:port…][/0]`; the error names
/// what is wrong.
pub(crate) fn parse_cluster_url(url: &str) -> Result<ClusterUrl, String> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("redis+cluster") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("rediss+cluster") => {
            return Err(
                "TLS to a Redis Cluster (rediss+cluster://) is not supported; use redis+cluster:// on a trusted network"
                    .into(),
            )
        }
        _ => return Err(format!("not a redis+cluster:// URL; the form is {CLUSTER_FORM}")),
    };
    if rest.contains('?') || rest.contains('#') {
        return Err(
            "query parameters and fragments are not supported in a redis+cluster:// URL".into(),
        );
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !matches!(path, "" | "0") {
        return Err(format!(
            "'/{path}' after the nodes: a Redis Cluster has one database (0); the form is {CLUSTER_FORM}"
        ));
    }
    let (username, password, hosts) = split_userinfo(authority);
    if hosts.is_empty() {
        return Err(format!("no Cluster node; the form is {CLUSTER_FORM}"));
    }
    let nodes = hosts
        .split(',')
        .map(|addr| parse_host_port(addr, "Cluster node", 6379))
        .collect::<Result<_, _>>()?;
    Ok(ClusterUrl {
        nodes,
        username,
        password,
    })
}

/// The client for a Cluster URL: every call bounded by `connect` (each node connection) and
/// `io` (each reply), [`RETRIES`] tries after a redirection or a lost node.
pub(crate) fn open_cluster(
    url: &ClusterUrl,
    connect: Duration,
    io: Duration,
    tcp: redis::io::tcp::TcpSettings,
) -> Result<ClusterClient, RedisError> {
    let nodes: Vec<ConnectionInfo> = url
        .nodes
        .iter()
        .map(|(host, port)| ConnectionAddr::Tcp(host.clone(), *port).into_connection_info())
        .collect::<Result<_, _>>()?;
    let mut builder = ClusterClientBuilder::new(nodes)
        .connection_timeout(connect)
        .response_timeout(io)
        .retries(RETRIES)
        .min_retry_wait(RETRY_WAIT_MS.0)
        .max_retry_wait(RETRY_WAIT_MS.1)
        .tcp_settings(tcp);
    if let Some(user) = &url.username {
        builder = builder.username(user);
    }
    if let Some(pass) = &url.password {
        builder = builder.password(pass);
    }
    builder.build()
}

/// The prefix of the keys of one key set (the ticket keys, the master secret, the fleet's
/// session key) on a Cluster: `prefix` as a hash tag (`{prefix}`), so the whole set hashes to
/// one slot and lives on one master (one `WAIT` confirms it, one failover moves it whole);
/// a prefix that already holds a hash tag (`{…}`, not empty) is kept as it is.
pub(crate) fn key_set_prefix(prefix: &str) -> String {
    let tagged = prefix
        .find('{')
        .and_then(|open| prefix[open + 1..].find('}'))
        .is_some_and(|len| len > 0);
    if tagged {
        prefix.to_owned()
    } else if prefix.is_empty() {
        "{tlsresume}".to_owned()
    } else {
        format!("{{{prefix}}}")
    }
}

/// Waits (at most `bound`) until one replica of the master owning `key`'s slot holds the
/// writes made so far on this client's connection to that master: `Some(acknowledged)` (0
/// when none did in time), `None` when that master has no replica.
pub(crate) fn confirm_on_replica(
    conn: &mut ClusterConnection,
    key: &str,
    bound: Duration,
) -> Result<Option<u64>, RedisError> {
    let owner = || {
        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(
            key,
            SlotAddr::Master,
        )))
    };
    let role = conn.route_command(&redis::cmd("ROLE"), owner())?;
    if crate::link::replicas_in_role(&role) == 0 {
        return Ok(None);
    }
    let millis = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX).max(1);
    let acked = conn.route_command(redis::cmd("WAIT").arg(1).arg(millis), owner())?;
    match acked {
        Value::Int(n) => Ok(Some(u64::try_from(n).unwrap_or(0))),
        other => Err(RedisError::from((
            redis::ErrorKind::Parse,
            "WAIT did not answer a number",
            format!("{other:?}"),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_are_taken_apart() {
        let url = parse_cluster_url("redis+cluster://u:p@w@10.0.0.1:7000,[::1]:7001,n3/0")
            .expect("well formed");
        assert_eq!(
            url,
            ClusterUrl {
                nodes: vec![
                    ("10.0.0.1".into(), 7000),
                    ("::1".into(), 7001),
                    ("n3".into(), 6379)
                ],
                username: Some("u".into()),
                password: Some("p@w".into()),
            }
        );
        for (url, says) in [
            ("redis+cluster://", "no Cluster node"),
            ("redis+cluster://h:1,,h:2", "empty Cluster node"),
            ("redis+cluster://h:port", "port 'port'"),
            ("redis+cluster://h:1/2", "one database"),
            ("redis+cluster://h:1?x=1", "query"),
            ("rediss+cluster://h:1", "not supported"),
        ] {
            let err = parse_cluster_url(url).expect_err(url);
            assert!(err.contains(says), "{url}: {err}");
        }
    }

    #[test]
    fn a_key_set_hashes_to_one_slot() {
        assert_eq!(key_set_prefix("tlsresume:"), "{tlsresume:}");
        assert_eq!(key_set_prefix(""), "{tlsresume}");
        assert_eq!(key_set_prefix("fleet:{a}:"), "fleet:{a}:");
        assert_eq!(key_set_prefix("odd{}:"), "{odd{}:}");
        let slot = |k: &str| Route::with_key(k, SlotAddr::Master);
        let p = key_set_prefix("tlsresume:");
        assert_eq!(
            slot(&format!("{p}stek:3600:1")),
            slot(&format!("{p}master"))
        );
        assert_eq!(
            slot(&format!("{p}stek:3600:1")),
            slot(&format!("{p}session-key"))
        );
    }
}
