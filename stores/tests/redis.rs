//! The Redis key source and session store against a private `redis-server` per test, started
//! on a free loopback port with no persistence and killed on drop.
//!
//! Needs `redis-server` on the PATH (Debian: `apt-get install redis-server`); set
//! `TLSRESUME_SKIP_REDIS=1` to skip these tests where it cannot be installed.
#![cfg(feature = "redis")]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tlsresume_core::keys::key_ring::KeyRing;
use tlsresume_core::keys::seal::TicketSealer;
use tlsresume_core::{
    BackendKind, CacheEntry, CacheKey, KeySource, OcspStatus, SessionStore, TicketPolicy, UnixTime,
    Verification,
};
use tlsresume_smtp::ehlo::{EhloEntry, EhloKey, EhloResponse, EhloStore};
use tlsresume_stores::{Kek, RedisConfig, RedisKeySource, RedisStore};

struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// A fresh server, or `None` when Redis tests are skipped.
    fn start() -> Option<Self> {
        if std::env::var_os("TLSRESUME_SKIP_REDIS").is_some() {
            eprintln!("TLSRESUME_SKIP_REDIS is set: skipping");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self { child: None, port };
        server.restart();
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on its port, empty.
    fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): install it (Debian: apt-get install -y redis-server) or set TLSRESUME_SKIP_REDIS=1"
                )
            });
        self.child = Some(child);
        let client = redis::Client::open(self.url()).expect("url");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200)) {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("url")
            .get_connection_with_timeout(Duration::from_secs(2))
            .expect("connect")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config(server: &RedisServer) -> RedisConfig {
    RedisConfig::new(server.url())
        .connect_timeout(Duration::from_millis(300))
        .io_timeout(Duration::from_millis(300))
        .retry_after(Duration::from_millis(100))
}

fn kek() -> Kek {
    Kek::from_bytes([0x4b; 32])
}

fn source(server: &RedisServer, policy: &TicketPolicy) -> RedisKeySource {
    RedisKeySource::new(config(server), kek(), policy).expect("source")
}

const T0: u64 = 1_700_000_000;

fn at(secs: u64) -> UnixTime {
    UnixTime::from_secs(T0 + secs)
}

#[test]
fn racing_nodes_get_one_key_per_slot() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    const NODES: usize = 8;
    let policy = TicketPolicy::OPENSSL;
    let barrier = Arc::new(Barrier::new(NODES));
    let keys: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..NODES)
            .map(|i| {
                let barrier = Arc::clone(&barrier);
                let server = &server;
                s.spawn(move || {
                    let node = source(server, &policy);
                    barrier.wait();
                    // Different moments inside the same rotation slot.
                    let key = node.new_key(at(i as u64 * 7)).expect("key");
                    assert_eq!(node.stats().shared, 1);
                    (key.name, *key.secret.cipher_key(), *key.secret.mac_key())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("node"))
            .collect()
    });
    for k in &keys[1..] {
        assert_eq!(k, &keys[0]);
    }
    let node = source(&server, &policy);
    let slot = node.slot_at(at(0));
    let stored: Vec<String> = redis::cmd("KEYS")
        .arg("tlsresume:stek:*")
        .query(&mut server.conn())
        .expect("keys");
    // This slot's key and the next one's, fetched ahead.
    let mut expected = vec![
        node.redis_key_for_slot(slot),
        node.redis_key_for_slot(slot + 1),
    ];
    expected.sort();
    let mut stored = stored;
    stored.sort();
    assert_eq!(stored, expected);
    // The keys expire on their own.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(node.redis_key_for_slot(slot))
        .query(&mut server.conn())
        .expect("pttl");
    assert!(ttl > 0);
}

#[test]
fn wrapped_keys_in_redis_are_not_the_plaintext() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let node = source(&server, &TicketPolicy::OPENSSL);
    let key = node.new_key(at(0)).expect("key");
    let master = node.master_secret().expect("master");
    let raw: Vec<u8> = redis::cmd("GET")
        .arg(node.redis_key_for_slot(node.slot_at(at(0))))
        .query(&mut server.conn())
        .expect("get");
    assert_eq!(
        raw.len(),
        4 + 12 + 80 + 16,
        "tag, nonce, sealed name+secret, GCM tag"
    );
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(&raw, key.name.as_bytes()));
    assert!(!contains(&raw, &key.secret.cipher_key()[..8]));
    assert!(!contains(&raw, &key.secret.mac_key()[..8]));
    let raw_master: Vec<u8> = redis::cmd("GET")
        .arg(node.redis_master_key())
        .query(&mut server.conn())
        .expect("get");
    assert!(!raw_master.is_empty());
    assert!(!contains(&raw_master, &master.as_bytes()[..8]));
    // Another KEK cannot use them: that node falls back to its own keys.
    let stranger = RedisKeySource::new(
        config(&server),
        Kek::from_bytes([1; 32]),
        &TicketPolicy::OPENSSL,
    )
    .expect("source");
    let theirs = stranger.new_key(at(0)).expect("a key all the same");
    assert_ne!(theirs.name, key.name);
    assert_eq!(stranger.stats().local, 1);
    // Secrets never print.
    let shown = format!("{node:?} {key:?} {master:?} {:?}", kek());
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert!(shown.contains("KeySecret(<redacted>)"), "{shown}");
    assert!(shown.contains("Kek(<redacted>)"), "{shown}");
    assert!(
        !shown.contains(&hex(&key.secret.cipher_key()[..6])),
        "{shown}"
    );
    assert!(!shown.contains(&hex(&master.as_bytes()[..6])), "{shown}");
    assert!(
        !shown.contains(&format!("{:?}", &key.secret.cipher_key()[..3])),
        "{shown}"
    );
}

#[test]
fn fleet_nodes_resume_each_others_tickets() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    for policy in [TicketPolicy::OPENSSL, TicketPolicy::GNUTLS] {
        let a = TicketSealer::new(Arc::new(KeyRing::new(
            policy,
            Arc::new(source(&server, &policy)),
        )));
        let b = TicketSealer::new(Arc::new(KeyRing::new(
            policy,
            Arc::new(source(&server, &policy)),
        )));
        // Slot-aligned start, as the ring rotates lazily from its first use.
        let t = UnixTime::from_secs(T0 - T0 % policy.rotation().as_secs());
        let ticket = a.seal(b"session", t).expect("seal");
        let opened = b
            .open(&ticket, t + Duration::from_secs(60))
            .expect("node b opens");
        assert!(opened.decision.resumes());
        let back = b
            .seal(b"session", t + Duration::from_secs(61))
            .expect("seal");
        assert!(a.open(&back, t + Duration::from_secs(62)).is_ok());
        // After a rotation both move to the same next key. (KeyRing rotates one rotation
        // after its first use, not at slot boundaries, so until both rings have rotated they
        // may seal under neighbouring slots' keys; see the README.)
        let later = t + policy.rotation() + Duration::from_secs(120);
        let ticket = b.seal(b"session", later).expect("seal");
        assert!(
            a.open(&ticket, later + Duration::from_secs(1)).is_ok(),
            "{policy}"
        );
        assert_eq!(
            a.lifecycle().encrypting_key(later).expect("key").name(),
            b.lifecycle().encrypting_key(later).expect("key").name()
        );
    }
}

#[test]
fn redis_outage_degrades_to_local_keys_and_recovers() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let policy = TicketPolicy::OPENSSL;
    let hour = 3600;
    let a = source(&server, &policy);
    let b = source(&server, &policy);
    let k0 = a.new_key(at(0)).expect("key");
    assert_eq!(b.new_key(at(1)).expect("key").name, k0.name);
    let master = a.master_secret().expect("master");

    server.kill();
    // The next slot's key was fetched ahead: still the fleet's key, at once.
    let started = Instant::now();
    let k1a = a.new_key(at(hour)).expect("key while redis is down");
    let k1b = b.new_key(at(hour)).expect("key while redis is down");
    assert_eq!(k1a.name, k1b.name);
    assert_eq!(a.stats().local, 0);
    // Beyond what is held: a process-local key, no error, no hang.
    let k2a = a.new_key(at(2 * hour)).expect("local key");
    let k2b = b.new_key(at(2 * hour)).expect("local key");
    assert_ne!(k2a.name, k2b.name);
    assert_eq!(a.stats().local, 1);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The held master secret still serves; a node that never had one gets a local one.
    assert_eq!(
        a.master_secret().expect("master").as_bytes(),
        master.as_bytes()
    );
    let c = source(&server, &TicketPolicy::GNUTLS);
    let local_master = c.master_secret().expect("local master");
    assert_ne!(local_master.as_bytes(), master.as_bytes());
    assert_eq!(c.stats().local, 1);
    // A stand-in, to be asked about again; asked while Redis is away, the same one.
    assert!(c.master_retry_after(&local_master).is_some());
    assert_eq!(a.master_retry_after(&master), None, "the fleet's is final");
    assert_eq!(
        c.master_secret().expect("local master").as_bytes(),
        local_master.as_bytes()
    );
    assert_eq!(c.stats().local, 1, "one stand-in, counted once");

    // Redis comes back (empty: no persistence in this test).
    server.restart();
    std::thread::sleep(Duration::from_millis(150));
    let k3a = a.new_key(at(3 * hour)).expect("key");
    let k3b = b.new_key(at(3 * hour + 30)).expect("key");
    assert_eq!(k3a.name, k3b.name, "shared again");
    assert_eq!(a.stats().local, 1);
    // `a` put its master secret back, so a newcomer derives the same keys.
    let d = source(&server, &TicketPolicy::GNUTLS);
    assert_eq!(
        d.master_secret().expect("master").as_bytes(),
        master.as_bytes()
    );
    let fleet_master = c.master_secret().expect("master");
    assert_eq!(fleet_master.as_bytes(), master.as_bytes());
    assert_eq!(c.master_retry_after(&fleet_master), None);
    assert!(
        c.master_retry_after(&local_master).is_some(),
        "the stand-in is still not the fleet's"
    );
}

fn entry(stored_at: UnixTime, hint: u64) -> CacheEntry {
    {
        let mut entry = CacheEntry::new(
            BackendKind::Gnutls,
            0x0303,
            vec![9; 100],
            stored_at,
            Duration::from_secs(hint),
        );
        entry.verify_override = false;
        entry.verification = Verification::Verified;
        entry.ocsp = OcspStatus::Verified;
        entry
    }
}

fn cache_key(n: u16) -> CacheKey {
    CacheKey::builder(std::net::SocketAddr::from(([192, 0, 2, 7], n))).build()
}

#[test]
fn redis_session_store_get_put_remove_and_ttl() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::new(config(&server)).expect("store");
    let other = RedisStore::new(config(&server)).expect("store");
    let now = UnixTime::now();
    assert_eq!(store.get(&cache_key(1)).expect("get"), None);
    store.put(&cache_key(1), entry(now, 7200)).expect("put");
    assert_eq!(
        other.get(&cache_key(1)).expect("get"),
        Some(entry(now, 7200)),
        "another client sees it"
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(store.redis_key(&cache_key(1)))
        .query(&mut server.conn())
        .expect("pttl");
    assert!(ttl > 7_100_000 && ttl <= 7_200_000, "{ttl}");
    other.remove(&cache_key(1)).expect("remove");
    assert_eq!(store.get(&cache_key(1)).expect("get"), None);

    // Redis expires the entry at its expiry time.
    store.put(&cache_key(2), entry(now, 1)).expect("put");
    assert!(store.get(&cache_key(2)).expect("get").is_some());
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(store.get(&cache_key(2)).expect("get"), None);
    // Already expired: not stored.
    store
        .put(&cache_key(3), entry(UnixTime::from_secs(T0), 60))
        .expect("put");
    assert_eq!(store.get(&cache_key(3)).expect("get"), None);

    // A value this build cannot read (damaged, or a newer build's format: in a fleet another
    // client may read it) is skipped, counted once and left, with its TTL; a writer replaces
    // it.
    let mut newer = entry(now, 7200).encode();
    newer[4] = 9; // a codec version this build does not know
    for (n, bytes) in [(4, b"TRSE garbage".to_vec()), (5, newer)] {
        let rkey = store.redis_key(&cache_key(n));
        let _: () = redis::cmd("SET")
            .arg(&rkey)
            .arg(bytes.as_slice())
            .arg("PX")
            .arg(600_000)
            .query(&mut server.conn())
            .expect("set");
        assert_eq!(store.get(&cache_key(n)).expect("get"), None);
        assert_eq!(store.get(&cache_key(n)).expect("again"), None);
        let left: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&rkey)
            .query(&mut server.conn())
            .expect("get");
        assert_eq!(left, Some(bytes), "left in Redis as it was");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&rkey)
            .query(&mut server.conn())
            .expect("pttl");
        assert!(ttl > 0 && ttl <= 600_000, "with its TTL: {ttl}");
        store.put(&cache_key(n), entry(now, 7200)).expect("put");
        assert_eq!(
            store.get(&cache_key(n)).expect("get"),
            Some(entry(now, 7200)),
            "a writer replaces it"
        );
    }
    assert_eq!(store.corrupt_skipped(), 2, "each counted once");

    // Redis down: calls fail quickly with an error, and work again once it is back.
    server.kill();
    let started = Instant::now();
    assert!(store.get(&cache_key(1)).is_err());
    assert!(store.put(&cache_key(1), entry(now, 7200)).is_err());
    assert!(started.elapsed() < Duration::from_secs(2));
    server.restart();
    std::thread::sleep(Duration::from_millis(150));
    store
        .put(&cache_key(1), entry(now, 7200))
        .expect("put after restart");
    assert!(store
        .get_unexpired(&cache_key(1), UnixTime::now())
        .expect("get")
        .is_some());
}

#[test]
fn handshakes_keep_sealing_through_an_outage() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let policy = TicketPolicy::OPENSSL;
    let a = TicketSealer::new(Arc::new(KeyRing::new(
        policy,
        Arc::new(source(&server, &policy)),
    )));
    let b = TicketSealer::new(Arc::new(KeyRing::new(
        policy,
        Arc::new(source(&server, &policy)),
    )));
    let t = |mins: u64| UnixTime::from_secs(T0 - T0 % 3600 + mins * 60);
    assert!(b.open(&a.seal(b"s", t(0)).expect("seal"), t(1)).is_ok());
    server.kill();
    // Five hours of rotations with Redis gone: every seal succeeds and opens on its own node.
    for mins in (2..300).step_by(29) {
        let ticket = a.seal(b"s", t(mins)).expect("sealing never fails");
        assert!(a.open(&ticket, t(mins + 1)).is_ok());
    }
    server.restart();
    std::thread::sleep(Duration::from_millis(150));
    // From the next rotation on, the nodes share keys again.
    let later = t(7 * 60 + 5);
    let ticket = a.seal(b"s", later).expect("seal");
    eprintln!("{:?} {:?}", a.lifecycle(), b.lifecycle());
    let r = b.open(&ticket, later + Duration::from_secs(1));
    eprintln!(
        "{:?} {:?} {:?}",
        r.as_ref().err(),
        a.lifecycle(),
        b.lifecycle()
    );
    assert!(r.is_ok());
}

fn ehlo_entry(stored_at: UnixTime) -> EhloEntry {
    let offered = EhloResponse::parse(&[
        "250-mx.example.net",
        "250-PIPELINING",
        "250-PIPECONNECT",
        "250 AUTH PLAIN",
    ])
    .expect("ehlo");
    EhloEntry {
        stored_at,
        clear: Some(offered.view()),
        tls: None,
    }
}

#[test]
fn redis_ehlo_entries_expire_at_retry_data_expire_and_corrupt_ones_are_deleted() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::new(config(&server))
        .expect("store")
        .with_ehlo_expire(Duration::from_secs(3600));
    let key = EhloKey::new("192.0.2.7:25".parse().expect("addr"));
    let now = UnixTime::now();
    assert_eq!(store.get_ehlo(&key).expect("get"), None);
    store.put_ehlo(&key, &ehlo_entry(now)).expect("put");
    assert_eq!(store.get_ehlo(&key).expect("get"), Some(ehlo_entry(now)));
    assert_eq!(
        store.redis_ehlo_key(&key),
        "tlsresume:ehlo:192.0.2.7:25.EHLO"
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(store.redis_ehlo_key(&key))
        .query(&mut server.conn())
        .expect("pttl");
    assert!(
        ttl > 3_500_000 && ttl <= 3_600_000,
        "TTL is the expiry: {ttl}"
    );
    // Sessions and EHLO entries of the same server do not collide.
    store.put(&cache_key(25), entry(now, 7200)).expect("put");
    assert!(store.get_ehlo(&key).expect("get").is_some());
    store.remove_ehlo(&key).expect("remove");
    assert_eq!(store.get_ehlo(&key).expect("get"), None);
    assert!(store.get(&cache_key(25)).expect("get").is_some());
    // Written longer ago than the expiry: not kept.
    store
        .put_ehlo(&key, &ehlo_entry(now - Duration::from_secs(3601)))
        .expect("put");
    assert_eq!(store.get_ehlo(&key).expect("get"), None);
    // A value that does not decode is skipped and left; a writer replaces it.
    let mut bytes = ehlo_entry(now).encode();
    bytes[8] ^= 1;
    let _: () = redis::cmd("SET")
        .arg(store.redis_ehlo_key(&key))
        .arg(bytes.as_slice())
        .query(&mut server.conn())
        .expect("set");
    assert_eq!(
        store.get_ehlo(&key).expect("a corrupt entry is no error"),
        None
    );
    assert_eq!(store.corrupt_skipped(), 1);
    let left: Option<Vec<u8>> = redis::cmd("GET")
        .arg(store.redis_ehlo_key(&key))
        .query(&mut server.conn())
        .expect("get");
    assert_eq!(left, Some(bytes), "left in Redis as it was");
    store.put_ehlo(&key, &ehlo_entry(now)).expect("put");
    assert!(store.get_ehlo(&key).expect("get").is_some(), "replaced");
}
