//! `rediss://`: the Redis key source over TLS against a private `redis-server` listening only
//! on a TLS loopback port, with the committed test PKI (tests/pki: the server certificate is
//! valid for 127.0.0.1 and localhost, signed by ca.pem).
//!
//! Runs with `cargo test -p tlsresume-stores --features redis-tls`. Needs a `redis-server`
//! built with TLS (Debian's is); `TLSRESUME_SKIP_REDIS=1` skips these tests.
#![cfg(feature = "redis-tls")]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tlsresume_core::{KeySource, TicketPolicy, UnixTime};
use tlsresume_stores::{Kek, RedisConfig, RedisKeySource};

fn pki(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/pki")
        .join(file)
}

fn ca_pem() -> Vec<u8> {
    std::fs::read(pki("ca.pem")).expect("tests/pki/ca.pem")
}

/// A `redis-server` with only a TLS port, killed on drop.
struct TlsRedis {
    child: Child,
    port: u16,
}

impl TlsRedis {
    fn start() -> Option<Self> {
        if std::env::var_os("TLSRESUME_SKIP_REDIS").is_some() {
            eprintln!("TLSRESUME_SKIP_REDIS is set: skipping");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            // 127.0.0.2 too: an address the certificate is not for.
            .args(["--bind", "127.0.0.1", "127.0.0.2", "--tls-auth-clients", "no"])
            .arg("--tls-cert-file")
            .arg(pki("server-ecdsa.pem"))
            .arg("--tls-key-file")
            .arg(pki("server-ecdsa.key"))
            .arg("--tls-ca-cert-file")
            .arg(pki("ca.pem"))
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): install it (Debian: apt-get install -y redis-server) or set TLSRESUME_SKIP_REDIS=1"
                )
            });
        let server = Self { child, port };
        let client = redis::Client::build_with_tls(
            server.url("127.0.0.1"),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca_pem()),
            },
        )
        .expect("client");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(500)) {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return Some(server);
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start with TLS (built without TLS support?)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self, host: &str) -> String {
        format!("rediss://{host}:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(url: String) -> RedisConfig {
    RedisConfig::new(url)
        .connect_timeout(Duration::from_secs(2))
        .io_timeout(Duration::from_secs(2))
        .retry_after(Duration::from_millis(100))
}

const T0: u64 = 1_700_000_000;

#[test]
fn key_source_shares_keys_over_rediss_with_a_private_ca() {
    let Some(server) = TlsRedis::start() else {
        return;
    };
    let policy = TicketPolicy::OPENSSL;
    let kek = || Kek::from_bytes([0x5c; 32]);
    // Two nodes, one reaching Redis by address, the other by name: both verify the
    // certificate against the test CA.
    let a = RedisKeySource::new(
        config(server.url("127.0.0.1")).tls_ca_pem(ca_pem()),
        kek(),
        &policy,
    )
    .expect("node a");
    let b = RedisKeySource::new(
        config(server.url("localhost")).tls_ca_pem(ca_pem()),
        kek(),
        &policy,
    )
    .expect("node b");
    let t = UnixTime::from_secs(T0);
    let ka = a.new_key(t).expect("key a");
    let kb = b.new_key(t).expect("key b");
    assert_eq!(ka.name, kb.name, "one key for the slot, fetched over TLS");
    assert_eq!(a.stats().shared, 1, "{a:?}");
    assert_eq!(a.stats().local, 0, "{a:?}");
    assert_eq!(b.stats().local, 0, "{b:?}");
    let ma = a.master_secret().expect("master a");
    let mb = b.master_secret().expect("master b");
    assert_eq!(ma.as_bytes(), mb.as_bytes());
    assert_eq!(b.stats().local, 0, "{b:?}");
}

#[test]
fn an_untrusted_redis_certificate_is_refused() {
    let Some(server) = TlsRedis::start() else {
        return;
    };
    let policy = TicketPolicy::OPENSSL;
    // The system's trust store does not hold the test CA; and a CA that did not issue the
    // server's certificate (the self-signed untrusted.pem) does not do either.
    for config in [
        config(server.url("127.0.0.1")),
        config(server.url("127.0.0.1"))
            .tls_ca_pem(std::fs::read(pki("untrusted.pem")).expect("untrusted.pem")),
    ] {
        let source =
            RedisKeySource::new(config, Kek::from_bytes([0x5c; 32]), &policy).expect("source");
        // No handshake fails: the node falls back to a process-local key.
        source
            .new_key(UnixTime::from_secs(T0))
            .expect("a local key");
        assert_eq!(source.stats().shared, 0, "{source:?}");
        assert_eq!(source.stats().local, 1, "{source:?}");
    }
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let Some(server) = TlsRedis::start() else {
        return;
    };
    // 127.0.0.2 reaches the same loopback server, but the certificate is not for that address.
    let source = RedisKeySource::new(
        config(format!("rediss://127.0.0.2:{}", server.port)).tls_ca_pem(ca_pem()),
        Kek::from_bytes([0x5c; 32]),
        &TicketPolicy::OPENSSL,
    )
    .expect("source");
    source
        .new_key(UnixTime::from_secs(T0))
        .expect("a local key");
    assert_eq!(source.stats().shared, 0, "{source:?}");
    assert_eq!(source.stats().local, 1, "{source:?}");
}
