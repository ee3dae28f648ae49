//! Redis faults under a fleet, with real handshakes on every backend: two server nodes behind
//! one address (a round-robin balancer on loopback, so consecutive connections land on
//! different nodes) share their ticket keys through Redis ([`RedisKeySource`]), and the client
//! keeps its sessions in Redis ([`RedisStore`]). Several client threads connect while Redis is
//! stopped, started again empty, or answers slowly.
//!
//! What must hold: no handshake fails because of Redis; while Redis answers slowly, no
//! handshake waits much longer than the configured timeouts; once Redis is back, a session
//! made on one node resumes on the other again, within the same key rotation slot.
//!
//! Needs `redis-server` (see [`tlsresume_compare::redis`]); skipped, and said so, without it,
//! except under CI.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[allow(dead_code)] // the ticket tests' server of the rustls library alone is not used here
mod common;

use common::{answer, dialogue, dialogue_info, gnutls_turn};
use std::collections::BTreeMap;
use tlsresume::backends;
use tlsresume_compare::redis::{round_robin, ClusterSet, RedisServer, SentinelSet, SlowLink};
use tlsresume_compare::Pki;
use tlsresume_core::contract::ClientContract as _;
use tlsresume_core::{
    BackendKind, CacheEntry, CacheKey, ClientContext, ClientParams, ClientSettings, ManualClock,
    NoOffer, ServerContext, ServerSettings, SessionInfo, SessionKey, SessionStore, StoreError,
    UnixTime, Versions,
};
use tlsresume_stores::{Kek, RedisConfig, RedisKeySource, RedisStore};

/// The virtual clock's start: the next slot boundary of both flavours (6 h is a multiple of
/// 1 h) after the real time. Redis expires entries on its own clock (`SET … PXAT`), so the
/// virtual clock runs ahead of the real one, never behind: what the client stores is not
/// expired in Redis's eyes.
fn start() -> UnixTime {
    let now = UnixTime::now().as_secs();
    UnixTime::from_secs(now - now % 21_600 + 21_600)
}
const HOUR: Duration = Duration::from_secs(3600);
/// The Redis timeouts of these tests (connect and every call).
const TIMEOUT: Duration = Duration::from_millis(200);
/// How long a Redis link fails at once after a failure before it tries again (wall clock).
const RETRY: Duration = Duration::from_millis(600);

/// The Redis I/O timeout of the failover tests: a new key waits for a replica's
/// acknowledgement (`WAIT`) half of it, which 100 ms (half of [`TIMEOUT`]) did not always give
/// on a loaded machine. Connections still time out after [`TIMEOUT`] (a killed master refuses
/// them at once anyway).
const FAILOVER_IO_TIMEOUT: Duration = Duration::from_secs(1);

fn config(url: &str) -> RedisConfig {
    config_with(url, TIMEOUT)
}

/// [`config`] with the I/O timeout `io`.
fn config_with(url: &str, io: Duration) -> RedisConfig {
    RedisConfig::new(url)
        .connect_timeout(TIMEOUT)
        .io_timeout(io)
        .retry_after(RETRY)
}

/// One server node: answers "hi" and waits for "ok" on each connection, until dropped.
struct Node {
    addr: SocketAddr,
    server: Arc<dyn ServerContext>,
    stop: Arc<AtomicBool>,
    /// Why tickets presented to this node were refused, counted.
    refused: Arc<Mutex<BTreeMap<&'static str, usize>>>,
}

impl Node {
    fn start(server: Arc<dyn ServerContext>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(Mutex::new(BTreeMap::new()));
        let (s, flag, r) = (server.clone(), stop.clone(), refused.clone());
        thread::spawn(move || {
            for tcp in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(tcp) = tcp else { return };
                let (server, r) = (s.clone(), r.clone());
                thread::spawn(move || {
                    let reason = answer(server.as_ref(), tcp).and_then(|i| i.ticket_refused);
                    if let Some(reason) = reason {
                        *r.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(reason.name())
                            .or_default() += 1;
                    }
                });
            }
        });
        Self {
            addr,
            server,
            stop,
            refused,
        }
    }
}

impl Node {
    /// Why tickets presented to this node were refused, counted.
    fn refusals(&self) -> BTreeMap<&'static str, usize> {
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Node {
    /// Stops accepting and waits until no connection holds the server any more (GnuTLS
    /// objects on another clock cannot be made while these live).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.server) > 1 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

struct Fleet {
    clock: ManualClock,
    addr: SocketAddr,
    client: Arc<dyn ClientContext>,
    _nodes: Vec<Node>,
    sources: Vec<Arc<RedisKeySource>>,
    store: Arc<RedisStore>,
}

impl Fleet {
    /// Two nodes of `kind` and a client of `kind`, all on Redis at `url`, on one virtual clock.
    fn new(kind: BackendKind, versions: Versions, url: &str, pki: &Pki) -> Self {
        Self::with_io_timeout(kind, versions, url, pki, TIMEOUT)
    }

    /// [`Fleet::new`] with the Redis I/O timeout `io` for the nodes and the client's store.
    fn with_io_timeout(
        kind: BackendKind,
        versions: Versions,
        url: &str,
        pki: &Pki,
        io: Duration,
    ) -> Self {
        Self::with_node_urls(kind, versions, [url, url], url, pki, io)
    }

    /// [`Fleet::with_io_timeout`] with each node's key source on its own URL (the same Redis
    /// reached directly or through a proxy) and the client's store on `store_url`.
    fn with_node_urls(
        kind: BackendKind,
        versions: Versions,
        node_urls: [&str; 2],
        store_url: &str,
        pki: &Pki,
        io: Duration,
    ) -> Self {
        let clock = ManualClock::new(start());
        let policy = kind.default_ticket_policy();
        let mut sources = Vec::new();
        let mut nodes = Vec::new();
        for url in node_urls {
            let source = Arc::new(
                RedisKeySource::new(config_with(url, io), Kek::from_bytes([0x4b; 32]), &policy)
                    .expect("source"),
            );
            let mut settings = ServerSettings::new(pki.server.clone());
            settings.clock = Arc::new(clock.clone());
            settings.key_source = source.clone();
            settings.versions = versions;
            nodes.push(Node::start(
                backends::server(kind, settings).expect("server"),
            ));
            sources.push(source);
        }
        let store = Arc::new(RedisStore::new(config_with(store_url, io)).expect("store"));
        let client = client_on(kind, versions, store.clone(), &clock, pki);
        Self {
            clock,
            addr: round_robin(vec![nodes[0].addr, nodes[1].addr]).expect("balancer"),
            client,
            _nodes: nodes,
            sources,
            store,
        }
    }

    /// One connection through the balancer: whether it resumed, or why the handshake failed.
    fn connect(&self) -> Result<bool, String> {
        dialogue(self.client.as_ref(), self.addr)
    }

    /// Connects until a session made on one node resumes on the other (`true`), or `within`
    /// has passed without it (the Redis link retries on a wall-clock back-off, so recovery
    /// is a matter of real milliseconds).
    fn resumes_across_nodes(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut last = false;
        while Instant::now() < deadline {
            let resumed = self.connect().unwrap_or(false);
            // Consecutive connections are on different nodes: two resumptions in a row are
            // a ticket of each node opened by the other.
            if resumed && last {
                return true;
            }
            last = resumed;
        }
        false
    }
}

impl Fleet {
    /// What the fleet uses now, as its key source hands it out, is in none of `entries` in
    /// clear. A key's name is public (every ticket starts with it, the client's stored ones
    /// too); its secrets and the master secret are not.
    fn assert_no_key_in_clear(&self, entries: &[(Vec<u8>, Vec<u8>)]) {
        let source = &self.sources[0];
        let now = tlsresume_core::Clock::now(&self.clock);
        let key = tlsresume_core::KeySource::new_key(source.as_ref(), now).expect("key");
        let master = tlsresume_core::KeySource::master_secret(source.as_ref()).expect("master");
        let secrets: [&[u8]; 3] = [
            key.secret.cipher_key(),
            key.secret.mac_key(),
            master.as_bytes(),
        ];
        for (name, value) in entries {
            let is_key_entry = !name.windows(8).any(|w| w == b":session");
            let secret_shown = secrets
                .iter()
                .any(|s| value.windows(s.len()).any(|w| w == *s));
            let name_shown = is_key_entry && value.windows(16).any(|w| w == key.name.as_bytes());
            assert!(
                !(secret_shown || name_shown),
                "{} holds key material in clear",
                String::from_utf8_lossy(name)
            );
        }
    }
}

impl Fleet {
    /// Two client threads (one client context and store) connect throughout while `fail` kills
    /// the Redis master and waits for its replica's promotion. The load is counted in three
    /// phases: [`MEASURED`] handshakes before the kill, the failover window (from the kill until
    /// a session resumes across nodes again: the client's store fails while the master is
    /// gone, so few connections have a session to offer), [`MEASURED`] handshakes after it.
    /// Asserts: no handshake failed; before and after the window at least 99 % of the
    /// connections that had a session to offer resumed (measured: all of them, on both
    /// backends, through Sentinel and the cluster); sessions resume across nodes again; after
    /// the next rotation (virtual clock: its key written to the new master) one key for both
    /// nodes; the keys written were confirmed on a replica (`WAIT`), none left unconfirmed.
    /// Returns what `fail` returned, the time from the kill to cross-node resumption, the
    /// tallies (before, in, after the window) and the key sources' stats.
    fn failover_under_load<T>(
        &self,
        kind: BackendKind,
        fail: impl FnOnce() -> T,
    ) -> (
        T,
        Duration,
        Vec<Tally>,
        Vec<tlsresume_stores::KeySourceStats>,
    ) {
        let load = Load::start(self, 2, AFTER + 1);
        load.wait_for(MEASURED);
        load.next_phase();
        let killed = Instant::now();
        let failed = fail();
        let recovered = self.resumes_across_nodes(Duration::from_secs(15));
        let window = killed.elapsed();
        load.next_phase();
        load.wait_for(MEASURED);
        let tally = load.finish();
        eprintln!(
            "{kind}: load before the kill, in the failover window, after: {tally:?}; tickets refused by the nodes: {:?}",
            self._nodes.iter().map(Node::refusals).collect::<Vec<_>>()
        );
        for (phase, t) in tally.iter().enumerate() {
            assert!(
                t.failures.is_empty(),
                "{kind}: phase {phase}: failed handshakes: {:?}",
                t.failures
            );
        }
        for phase in [BEFORE, AFTER] {
            let t = &tally[phase];
            assert!(
                t.could_resume() >= MEASURED / 2 && t.resumed * 100 >= t.could_resume() * 99,
                "{kind}: {} the failover at least 99 % of the connections that had a session to offer resumed: {t:?}",
                if phase == BEFORE { "before" } else { "after" }
            );
        }
        assert!(
            recovered,
            "{kind}: cross-node resumption through the new master"
        );
        // Rotation goes on after the failover: the slot after next (GnuTLS: period) has its
        // key from the new master, fetched ahead of its boundary, one for both nodes.
        self.rotate_fetching_ahead(kind);
        assert!(
            self.resumes_across_nodes(Duration::from_secs(10)),
            "{kind}: rotation continues after the failover, one key for the fleet"
        );
        let stats: Vec<_> = self.sources.iter().map(|s| s.stats()).collect();
        for st in &stats {
            assert_eq!(
                st.unconfirmed, 0,
                "{kind}: every key written had a replica's acknowledgement (or no replica to wait for, after the promotion): {stats:?}"
            );
        }
        assert!(
            stats.iter().map(|s| s.confirmed).sum::<u64>() > 0,
            "{kind}: the keys written before the kill were confirmed on a replica (WAIT): {stats:?}"
        );
        (failed, window, tally, stats)
    }
}

impl Fleet {
    /// Takes the virtual clock across the next-but-one rotation boundary as a running fleet
    /// gets there: first into the fetch lead before it ([`KeyRing::fetch_lead`]), where the
    /// nodes' ticket calls ask their sources for the coming slot's key (rolling schedule: each
    /// source's fetcher thread fetches or makes it in Redis, and the test waits for both,
    /// 10 s at most), then past the boundary, where the nodes rotate with the key they hold.
    ///
    /// [`KeyRing::fetch_lead`]: tlsresume_core::keys::key_ring::KeyRing::fetch_lead
    fn rotate_fetching_ahead(&self, kind: BackendKind) {
        let policy = kind.default_ticket_policy();
        let rotation = policy.rotation();
        let lead = (rotation / 4).min(Duration::from_secs(60));
        let now = tlsresume_core::Clock::now(&self.clock);
        let boundary =
            UnixTime::from_secs((now.as_secs() / rotation.as_secs() + 2) * rotation.as_secs());
        let fetched = |s: &Arc<RedisKeySource>| s.stats().fetched_ahead;
        let before: Vec<u64> = self.sources.iter().map(fetched).collect();
        self.clock.set(boundary - lead / 2);
        for _ in 0..4 {
            let _ = self.connect();
        }
        if kind != BackendKind::Gnutls {
            let deadline = Instant::now() + Duration::from_secs(10);
            let done = || {
                self.sources
                    .iter()
                    .zip(&before)
                    .all(|(s, b)| fetched(s) > *b)
            };
            while !done() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            assert!(
                done(),
                "{kind}: each node fetched the coming slot's key ahead of its boundary: {:?}",
                self.sources.iter().map(|s| s.stats()).collect::<Vec<_>>()
            );
        }
        self.clock.set(boundary + Duration::from_secs(1));
    }
}

/// Every key of `before` (not the client's sessions, taken as they are used) is in `after`
/// with the same value.
fn assert_keys_survived(
    kind: BackendKind,
    before: &[(Vec<u8>, Vec<u8>)],
    after: &[(Vec<u8>, Vec<u8>)],
) {
    let keys_before = before
        .iter()
        .filter(|(n, _)| !n.windows(8).any(|w| w == b":session"));
    for (name, value) in keys_before {
        assert!(
            after.iter().any(|(n, v)| n == name && v == value),
            "{kind}: {} survived the failover unchanged",
            String::from_utf8_lossy(name)
        );
    }
}

/// The settings of a client of `kind` keeping its sessions in `store`, on `clock`.
fn client_settings(
    versions: Versions,
    store: Arc<dyn SessionStore>,
    clock: &ManualClock,
    pki: &Pki,
) -> ClientSettings {
    let mut settings = ClientSettings::new(pki.roots.clone());
    settings.clock = Arc::new(clock.clone());
    settings.store = store;
    settings.versions = versions;
    settings
}

/// A client of `kind` keeping its sessions in `store`, on `clock`.
fn client_on(
    kind: BackendKind,
    versions: Versions,
    store: Arc<dyn SessionStore>,
    clock: &ManualClock,
    pki: &Pki,
) -> Arc<dyn ClientContext> {
    backends::client(kind, client_settings(versions, store, clock, pki)).expect("client")
}

/// The phases of the load of [`Fleet::failover_under_load`]: before the Redis master is
/// killed, from the kill until sessions resume across nodes again (the failover window), after
/// it.
const BEFORE: usize = 0;
const AFTER: usize = 2;
/// How many handshakes of the load are measured before the kill and after the window (about
/// half a second each on loopback).
const MEASURED: usize = 300;

/// Client threads connecting through the fleet until stopped; counts per phase.
struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
    tally: Arc<Mutex<Vec<Tally>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

/// What the handshakes of one phase of a [`Load`] did.
#[derive(Clone, Debug, Default)]
struct Tally {
    handshakes: usize,
    resumed: usize,
    failures: Vec<String>,
    /// No session offered, counted by reason ([`NoOffer::describe`]).
    not_offered: BTreeMap<&'static str, usize>,
    /// A session offered and not resumed.
    refused: usize,
}

impl Tally {
    fn count(&mut self, outcome: Result<SessionInfo, String>) {
        self.handshakes += 1;
        match outcome {
            Ok(info) => {
                self.resumed += usize::from(info.resumed);
                match info.no_offer {
                    Some(why) => *self.not_offered.entry(why.describe()).or_default() += 1,
                    None => self.refused += usize::from(!info.resumed),
                }
            }
            Err(e) => self.failures.push(e),
        }
    }

    /// The handshakes that had a session to offer: all but those with none stored, or one
    /// another store sealed (the two clients of the cluster test share the cache key).
    fn could_resume(&self) -> usize {
        let without = [NoOffer::Missing, NoOffer::OtherKey]
            .iter()
            .map(|why| self.not_offered.get(why.describe()).copied().unwrap_or(0))
            .sum::<usize>();
        self.handshakes - without
    }
}

impl Load {
    /// `threads` clients (one context and store, shared) connecting until finished, counted in
    /// `phases` phases. A handshake under way when the phase changed is counted in none.
    fn start(fleet: &Fleet, threads: usize, phases: usize) -> Self {
        let load = Self {
            stop: Arc::new(AtomicBool::new(false)),
            phase: Arc::new(AtomicUsize::new(BEFORE)),
            done: Arc::new(AtomicUsize::new(0)),
            tally: Arc::new(Mutex::new(vec![Tally::default(); phases])),
            threads: Vec::new(),
        };
        let mut handles = Vec::new();
        for _ in 0..threads {
            let (stop, phase, done, tally) = (
                load.stop.clone(),
                load.phase.clone(),
                load.done.clone(),
                load.tally.clone(),
            );
            let (client, addr) = (fleet.client.clone(), fleet.addr);
            handles.push(thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let began = phase.load(Ordering::SeqCst);
                    let outcome = dialogue_info(client.as_ref(), addr);
                    if phase.load(Ordering::SeqCst) == began {
                        tally.lock().unwrap_or_else(|e| e.into_inner())[began].count(outcome);
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        Self {
            threads: handles,
            ..load
        }
    }

    /// Waits until `n` more handshakes completed (30 s at most).
    fn wait_for(&self, n: usize) {
        let target = self.done.load(Ordering::SeqCst) + n;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.done.load(Ordering::SeqCst) < target {
            assert!(Instant::now() < deadline, "the load stalled");
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn next_phase(&self) {
        self.phase.fetch_add(1, Ordering::SeqCst);
    }

    fn finish(self) -> Vec<Tally> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("load thread");
        }
        let tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        tally.clone()
    }
}

#[test]
fn redis_stopped_and_restarted_under_load_fails_no_handshake_and_fleet_resumption_recovers() {
    let _turn = gnutls_turn();
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let pki = Pki::committed().expect("PKI");
    for kind in backends::available() {
        for versions in [
            Versions::only(tlsresume_core::ProtocolVersion::Tls12),
            Versions::ALL,
        ] {
            let case = format!("{kind} {}-{}", versions.min, versions.max);
            redis.restart();
            let fleet = Fleet::new(kind, versions, &redis.url(), &pki);
            assert!(
                fleet.resumes_across_nodes(Duration::from_secs(5)),
                "{case}: the fleet resumes across nodes with Redis up"
            );
            let load = Load::start(&fleet, 4, 4);
            load.wait_for(24);
            // Outage: the nodes keep the keys they hold, the client's store fails at once.
            redis.stop();
            load.next_phase();
            load.wait_for(24);
            // Two rotations later: past the keys held ahead, nodes fall back to keys of their
            // own (the GnuTLS flavour keeps deriving from the master secret it holds).
            fleet.clock.advance(2 * HOUR + Duration::from_secs(60));
            load.next_phase();
            load.wait_for(24);
            // Back, empty. Within the same slot, the nodes share keys again: their keys of
            // their own are stand-ins the ring asks about again after `retry_after` (of its
            // clock), and once the links try Redis again (their back-off is real time) the
            // answer is the fleet's key for the slot. No rotation is needed.
            load.next_phase();
            redis.restart();
            thread::sleep(RETRY + RETRY / 2);
            fleet.clock.advance(2 * RETRY);
            load.wait_for(24);
            let tally = load.finish();
            eprintln!(
                "{case}: handshakes (resumed) up {} ({}), down {} ({}), down after rotations {} ({}), back {} ({})",
                tally[0].handshakes,
                tally[0].resumed,
                tally[1].handshakes,
                tally[1].resumed,
                tally[2].handshakes,
                tally[2].resumed,
                tally[3].handshakes,
                tally[3].resumed
            );
            for (phase, t) in ["up", "down", "down after rotations", "back"]
                .iter()
                .zip(&tally)
            {
                assert!(
                    t.failures.is_empty(),
                    "{case}, Redis {phase}: {} of {} handshakes failed: {:?}",
                    t.failures.len(),
                    t.handshakes,
                    &t.failures[..t.failures.len().min(3)]
                );
            }
            assert!(
                tally[0].resumed > 0,
                "{case}: connections resumed under load with Redis up"
            );
            // Down: the client's store cannot give or keep sessions (nothing to offer).
            assert_eq!(
                tally[2].resumed, 0,
                "{case}: nothing resumes with the client's store gone"
            );
            assert!(
                fleet.resumes_across_nodes(Duration::from_secs(10)),
                "{case}: resumption across nodes recovers once Redis is back"
            );
            let stats: Vec<_> = fleet.sources.iter().map(|s| s.stats()).collect();
            eprintln!("{case}: key sources {stats:?}; store {:?}", fleet.store);
        }
    }
}

#[test]
fn a_fleet_started_while_redis_is_away_joins_up_once_redis_answers() {
    let _turn = gnutls_turn();
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let pki = Pki::committed().expect("PKI");
    for kind in backends::available() {
        // Both nodes start cut off: each makes ticket keys (GnuTLS: a master secret) of its
        // own, stand-ins for the fleet's.
        redis.stop();
        let fleet = Fleet::new(kind, Versions::ALL, &redis.url(), &pki);
        for i in 0..6 {
            let outcome = fleet.connect();
            assert!(
                outcome.is_ok(),
                "{kind}: handshake {i} with Redis away failed: {outcome:?}"
            );
        }
        // Back (empty). Within the same rotation slot (GnuTLS: period), once the links try
        // Redis again (real-time back-off) and the stand-ins' delay passed on the virtual
        // clock, both nodes take the fleet's keys: a session made on one resumes on the other.
        redis.restart();
        thread::sleep(RETRY + RETRY / 2);
        fleet.clock.advance(2 * RETRY);
        assert!(
            fleet.resumes_across_nodes(Duration::from_secs(10)),
            "{kind}: nodes started during a Redis outage resume each other's sessions once Redis is back"
        );
        let stats: Vec<_> = fleet.sources.iter().map(|s| s.stats()).collect();
        eprintln!("{kind}: key sources {stats:?}");
    }
}

#[test]
fn a_slow_redis_bounds_the_handshake_wait_and_fails_none() {
    let _turn = gnutls_turn();
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let link = SlowLink::start(redis.port()).expect("proxy");
    let pki = Pki::committed().expect("PKI");
    // Far past the timeouts: a handshake that waited for Redis would show it.
    let slow = Duration::from_secs(3);
    // A handshake may pay one Redis call's timeout (and a reconnect's) before the link backs
    // off; the loopback handshake itself takes milliseconds.
    let bound = 4 * TIMEOUT + Duration::from_millis(700);
    for kind in backends::available() {
        link.set_delay(Duration::ZERO);
        let fleet = Fleet::new(kind, Versions::ALL, &link.url(), &pki);
        assert!(
            fleet.resumes_across_nodes(Duration::from_secs(5)),
            "{kind}: resumes across nodes through the proxy"
        );
        link.set_delay(slow);
        // Across a rotation too: a node that must fetch a key asks a Redis that does not
        // answer in time.
        fleet.clock.advance(HOUR + Duration::from_secs(60));
        let mut slowest = Duration::ZERO;
        for i in 0..12 {
            let started = Instant::now();
            let outcome = fleet.connect();
            let took = started.elapsed();
            assert!(
                outcome.is_ok(),
                "{kind}: handshake {i} failed with a slow Redis: {outcome:?}"
            );
            assert!(
                took < bound,
                "{kind}: handshake {i} waited {took:?} on a Redis answering in {slow:?} (timeouts {TIMEOUT:?})"
            );
            slowest = slowest.max(took);
        }
        eprintln!("{kind}: slowest handshake with Redis answering in {slow:?}: {slowest:?}");
        link.set_delay(Duration::ZERO);
        // The link retries after its back-off, then the fleet is whole again.
        assert!(
            fleet.resumes_across_nodes(Duration::from_secs(10)),
            "{kind}: resumption across nodes recovers once Redis answers in time"
        );
    }
}

/// A rotation falling due while Redis does not answer a node (every reply held far past the
/// Redis timeouts, as from a paused server): no handshake waits for it. Node a reaches Redis
/// directly, node b through a proxy that goes silent. At the first boundary both nodes rotate
/// with the next slot's key they hold (fetched ahead), so the client's sessions made before it
/// and the tickets sealed after it resume across nodes, b's Redis silent. At the next boundary,
/// whose key no node held, node a fetches it at once in the background and seals with it, while
/// node b cannot: b goes on with the key it holds, and a ticket of a's new key, a name b does
/// not hold while its rotation waits, gets a full handshake at once (reason `key_not_fetched`,
/// OpenSSL and rustls; GnuTLS derives its keys from the master secret it holds). Every
/// handshake takes well under the I/O timeout (2 s here), which the key ring used to wait for
/// inside the TLS library's ticket callback (on the async server, a runtime thread). The client
/// keeps its sessions in memory, so only the servers could wait on Redis.
#[test]
fn a_rotation_while_redis_does_not_answer_makes_no_handshake_wait() {
    let _turn = gnutls_turn();
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let link = SlowLink::start(redis.port()).expect("proxy");
    let pki = Pki::committed().expect("PKI");
    let io = Duration::from_secs(2);
    let bound = io / 2;
    for kind in backends::available() {
        link.set_delay(Duration::ZERO);
        let fleet = Fleet::with_node_urls(
            kind,
            Versions::ALL,
            [&redis.url(), &link.url()],
            &redis.url(),
            &pki,
            io,
        );
        let store = Arc::new(tlsresume_core::MemoryStore::default());
        let client = client_on(kind, Versions::ALL, store, &fleet.clock, &pki);
        let connect = |outcomes: &mut Vec<Result<bool, String>>, slowest: &mut Duration| {
            let started = Instant::now();
            outcomes.push(dialogue(client.as_ref(), fleet.addr));
            *slowest = (*slowest).max(started.elapsed());
        };
        // Sessions of both nodes in the client's store.
        let mut warm = Vec::new();
        let mut slowest = Duration::ZERO;
        for _ in 0..4 {
            connect(&mut warm, &mut slowest);
        }
        assert!(
            warm.iter().skip(1).all(|r| matches!(r, Ok(true))),
            "{kind}: resumes across nodes with Redis answering: {warm:?}"
        );
        // Node b's Redis stops answering; the next slot begins.
        link.set_delay(Duration::from_secs(30));
        let policy = kind.default_ticket_policy();
        let rotation = policy.rotation();
        fleet.clock.advance(rotation + Duration::from_secs(1));
        let mut slowest = Duration::ZERO;
        let mut at_boundary = Vec::new();
        for _ in 0..12 {
            connect(&mut at_boundary, &mut slowest);
        }
        // The next slot, whose key neither node holds: a fetches it (from a Redis that
        // answers), b asks for it in vain.
        let fetched = |n: usize| fleet.sources[n].stats().fetched_ahead;
        let before = fetched(0);
        fleet.clock.advance(rotation);
        let mut unfetched = Vec::new();
        connect(&mut unfetched, &mut slowest);
        connect(&mut unfetched, &mut slowest);
        let rolling = kind != BackendKind::Gnutls;
        if rolling {
            let deadline = Instant::now() + Duration::from_secs(5);
            while fetched(0) == before && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            assert!(fetched(0) > before, "{kind}: node a fetched the slot's key");
        }
        let refused_before = fleet._nodes[1].refusals();
        for _ in 0..10 {
            connect(&mut unfetched, &mut slowest);
        }
        let refusals: Vec<_> = fleet._nodes.iter().map(Node::refusals).collect();
        let not_fetched = |r: &BTreeMap<&'static str, usize>| r.get("key_not_fetched").copied();
        eprintln!(
            "{kind}: node b's Redis silent; slowest handshake {slowest:?} (I/O timeout {io:?}); resumed at the boundary {}/12, at the next (a fetched its key, b not) {}/12; tickets refused by the nodes {refusals:?}",
            at_boundary.iter().filter(|r| matches!(r, Ok(true))).count(),
            unfetched.iter().filter(|r| matches!(r, Ok(true))).count(),
        );
        assert!(
            slowest < bound,
            "{kind}: a handshake waited {slowest:?} with Redis silent (bound {bound:?})"
        );
        // A session older than the ticket lifetime (GnuTLS rotates every 6 h, its tickets
        // live 2 h) is not resumed: the first connection then makes the client a new one.
        let stale = usize::from(rotation >= policy.lifetime());
        assert!(
            at_boundary.iter().skip(stale).all(|r| matches!(r, Ok(true))),
            "{kind}: every connection at the boundary resumed, across nodes, Redis silent: {at_boundary:?}"
        );
        assert!(
            unfetched.iter().all(Result::is_ok),
            "{kind}: no handshake failed at a boundary whose key was not fetched: {unfetched:?}"
        );
        if rolling {
            assert!(
                not_fetched(&refusals[1]).unwrap_or(0) > not_fetched(&refused_before).unwrap_or(0),
                "{kind}: node b refused node a's new ticket at once, saying why: {refusals:?}"
            );
        }
        if rolling {
            // Node b's fetch gives up after the I/O timeout and leaves a stand-in for the
            // slot, which b's next handshakes take up (asked about again after its delay).
            let deadline = Instant::now() + io + Duration::from_secs(3);
            while fleet.sources[1].stats().local == 0 && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(
                fleet.sources[1].stats().local,
                1,
                "{kind}: node b's stand-in"
            );
            let _ = fleet.connect();
            let _ = fleet.connect();
        }
        // Redis answers again: once the link tries again (real-time back-off) and the
        // stand-in's delay has passed on the virtual clock, the fleet is whole again.
        link.set_delay(Duration::ZERO);
        thread::sleep(RETRY + RETRY / 2);
        fleet.clock.advance(2 * RETRY);
        assert!(
            fleet.resumes_across_nodes(Duration::from_secs(10)),
            "{kind}: resumption across nodes recovers once Redis answers"
        );
    }
}

/// Keys and sessions through Sentinel (`redis+sentinel://`): a master with one replica is
/// killed (SIGKILL) under client load; no handshake fails, the Sentinel promotes the replica,
/// and both nodes and the client's store follow it: sessions resume across nodes again (≥ 99 %
/// of the load's connections with a session to offer, before the kill and after the window),
/// the next rotation slot's key (written to the new master) is one key for both nodes, the keys
/// written before the kill were confirmed on the replica (`WAIT`) and still open, and Redis
/// holds no ticket key in clear.
#[test]
fn sentinel_failover_under_load_fails_no_handshake_and_the_fleet_follows_the_new_master() {
    let _turn = gnutls_turn();
    let pki = Pki::committed().expect("PKI");
    // One backend of each key schedule: rolling (OpenSSL) and periodic (GnuTLS), when built.
    let kinds: Vec<_> = backends::available()
        .into_iter()
        .filter(|k| matches!(k, BackendKind::Openssl | BackendKind::Gnutls))
        .collect();
    for kind in kinds {
        let Some(mut set) = SentinelSet::start(&format!("keys{}", kind.code())) else {
            return;
        };
        let fleet =
            Fleet::with_io_timeout(kind, Versions::ALL, &set.url(), &pki, FAILOVER_IO_TIMEOUT);
        assert!(
            fleet.resumes_across_nodes(Duration::from_secs(10)),
            "{kind}: sessions resume across nodes through Sentinel"
        );
        // The replica catches up with its master asynchronously (its first sync may still be
        // under way when the first keys are written): wait, bounded, for the fleet's keys.
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut before = SentinelSet::entries(set.replica_port());
        while before.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            before = SentinelSet::entries(set.replica_port());
        }
        assert!(
            !before.is_empty(),
            "{kind}: the replica holds the fleet's keys before the failover (waited 15 s)"
        );
        let (promoted, window, tally, stats) = fleet.failover_under_load(kind, || {
            set.kill_master();
            set.wait_for_promotion(Duration::from_secs(20))
                .expect("Sentinel promotes the replica within 20 s")
        });
        let port = set.replica_port();
        let after =
            SentinelSet::entries_within(port, Duration::from_secs(10)).unwrap_or_else(|e| {
                panic!("{kind}: the promoted replica (port {port}) cannot be read: {e}")
            });
        fleet.assert_no_key_in_clear(&after);
        assert_keys_survived(kind, &before, &after);
        eprintln!(
            "{kind}: master killed, replica promoted after {promoted:?}, cross-node resumption again {window:?} after the kill; per phase {:?}; key sources {stats:?}",
            tally.iter().map(|t| (t.handshakes, t.resumed)).collect::<Vec<_>>()
        );
    }
}

/// The client session key through Redis: two stores (two clients of a fleet) with the same
/// KEK get the same key, made once and kept wrapped; a store with another KEK is refused with
/// an error naming the Redis key; an unreachable Redis is an error, not a hang.
#[test]
fn the_fleet_session_key_is_shared_through_redis_wrapped_with_the_kek() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let kek = Kek::from_bytes([0x4b; 32]);
    let open = || RedisStore::new(config(&redis.url())).expect("store");
    let a = open().with_fleet_session_key(&kek).expect("first client");
    let b = open().with_fleet_session_key(&kek).expect("second client");
    let mine = open();
    assert!(
        tlsresume_core::SessionStore::session_key(&a)
            == tlsresume_core::SessionStore::session_key(&b),
        "two clients of the fleet share one session key"
    );
    assert!(
        tlsresume_core::SessionStore::session_key(&a)
            != tlsresume_core::SessionStore::session_key(&mine),
        "control: a store without it keeps the process's own"
    );
    let name = a.redis_session_key_name();
    let stored =
        tlsresume_compare::redis::command(redis.port(), &[b"GET", name.as_bytes()]).expect("GET");
    assert!(
        matches!(&stored, tlsresume_compare::redis::Reply::Bulk(Some(v)) if v.len() > 32),
        "kept wrapped (longer than the key): {stored:?}"
    );
    let Err(err) = open().with_fleet_session_key(&Kek::from_bytes([0x11; 32])) else {
        panic!("another KEK cannot open it");
    };
    assert!(err.to_string().contains(&name), "{err}");
    let away = RedisStore::new(config(&format!(
        "redis://127.0.0.1:{}",
        tlsresume_compare::redis::free_port()
    )))
    .expect("store");
    let started = Instant::now();
    assert!(
        away.with_fleet_session_key(&kek).is_err(),
        "no Redis, no fleet key"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the timeouts"
    );
}

/// Keys and sessions in a Redis Cluster (`redis+cluster://`, three masters with a replica
/// each): the fleet's key set (ticket keys, master secret, session key) hashes to one slot;
/// two server nodes share the ticket keys and two clients the sessions (the fleet's session
/// key), so a session one client stored through one node resumes for the other client on
/// the other node; the keys written were confirmed on the slot master's replica (`WAIT`).
/// Then the master serving the key set is killed (SIGKILL) under client load: no handshake
/// fails, the cluster promotes its replica, sessions resume across nodes again (≥ 99 % of the
/// load's connections with a session to offer, before the kill and after the window), the next
/// rotation slot's key is one key for both nodes, the keys written before the kill are on
/// the new master unchanged, and no node holds a ticket key in clear.
#[test]
fn cluster_shares_keys_and_sessions_and_a_killed_master_is_replaced_under_load() {
    let _turn = gnutls_turn();
    let pki = Pki::committed().expect("PKI");
    let kek = Kek::from_bytes([0x4b; 32]);
    let kinds: Vec<_> = backends::available()
        .into_iter()
        .filter(|k| matches!(k, BackendKind::Openssl | BackendKind::Gnutls))
        .collect();
    for kind in kinds {
        let Some(mut cluster) = ClusterSet::start(&format!("keys{}", kind.code())) else {
            return;
        };
        let url = cluster.url();
        let fleet = Fleet::with_io_timeout(kind, Versions::ALL, &url, &pki, FAILOVER_IO_TIMEOUT);
        assert!(
            fleet.resumes_across_nodes(Duration::from_secs(10)),
            "{kind}: sessions resume across nodes through the cluster"
        );
        // Two clients of the fleet sharing sessions through the cluster.
        let shared = || {
            Arc::new(
                RedisStore::new(config_with(&url, FAILOVER_IO_TIMEOUT))
                    .expect("store")
                    .with_fleet_session_key(&kek)
                    .expect("the fleet's session key from the cluster"),
            )
        };
        let (store_a, store_b) = (shared(), shared());
        let a = client_on(kind, Versions::ALL, store_a.clone(), &fleet.clock, &pki);
        let b = client_on(kind, Versions::ALL, store_b, &fleet.clock, &pki);
        let mut crossed = false;
        for _ in 0..5 {
            // Consecutive connections land on different nodes: a stores through one, b
            // resumes what a stored through the other.
            dialogue(a.as_ref(), fleet.addr).expect("client a");
            if dialogue(b.as_ref(), fleet.addr).expect("client b") {
                crossed = true;
                break;
            }
        }
        assert!(
            crossed,
            "{kind}: a session client a stored resumes for client b on the other node"
        );
        // The key set on one slot, served by one master.
        let source = &fleet.sources[0];
        let now = tlsresume_core::Clock::now(&fleet.clock);
        let key_names = [
            source.redis_key_for_slot(source.slot_at(now)),
            source.redis_master_key(),
            store_a.redis_session_key_name(),
        ];
        let slots: Vec<_> = key_names
            .iter()
            .map(|k| cluster.slot_of(k.as_bytes()).expect("KEYSLOT"))
            .collect();
        assert!(
            slots.iter().all(|s| *s == slots[0]),
            "{kind}: the key set is on one slot: {key_names:?} {slots:?}"
        );
        let slot = slots[0];
        let owner = cluster.master_of(slot).expect("the slot's master");
        let before = ClusterSet::entries(owner);
        let holds = |k: &String| before.iter().any(|(n, _)| n == k.as_bytes());
        assert!(
            holds(&key_names[2]) && (holds(&key_names[0]) || holds(&key_names[1])),
            "{kind}: the slot's master holds the ticket key (or master secret) and the session key"
        );
        let ((promoted, after_kill), window, tally, stats) =
            fleet.failover_under_load(kind, || {
                cluster.kill(owner);
                cluster
                    .wait_for_failover(slot, owner, Duration::from_secs(20))
                    .expect("the cluster promotes the replica within 20 s")
            });
        let after = ClusterSet::entries(promoted);
        assert_keys_survived(kind, &before, &after);
        let everything: Vec<_> = cluster
            .ports()
            .into_iter()
            .flat_map(ClusterSet::entries)
            .collect();
        fleet.assert_no_key_in_clear(&everything);
        eprintln!(
            "{kind}: master {owner} killed, {promoted} promoted after {after_kill:?}, cross-node resumption again {window:?} after the kill; per phase {:?}; key sources {stats:?}",
            tally.iter().map(|t| (t.handshakes, t.resumed)).collect::<Vec<_>>()
        );
    }
}

/// A client of a fleet that reads but never writes: its lookups go to the store (and any
/// removal), what it would store is dropped, so the entry it met is what the test inspects.
#[derive(Debug)]
struct ReadOnly(Arc<RedisStore>);

impl SessionStore for ReadOnly {
    fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        self.0.get(key)
    }

    fn put(&self, _: &CacheKey, _: CacheEntry) -> Result<(), StoreError> {
        Ok(())
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.0.remove(key)
    }

    fn session_key(&self) -> SessionKey {
        self.0.session_key()
    }
}

/// A stored session is sealed under the fleet's session key and bound to its cache key. A
/// client with another session key (another fleet, a node set up wrong) meets it, cannot open
/// it, makes a full handshake and leaves it in Redis byte for byte; a client with the right
/// key still resumes from it. The same sealed bytes copied under another cache key (the same
/// server, with the same ticket keys, on another address) do not open: a full handshake.
#[test]
fn a_session_another_key_cannot_open_is_left_intact_and_a_copy_under_another_cache_key_does_not_open(
) {
    let _turn = gnutls_turn();
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let pki = Pki::committed().expect("PKI");
    let fleet_key = SessionKey::from_bytes([0x21; 32]);
    let other_key = SessionKey::from_bytes([0x22; 32]);
    // rustls clients cannot resume what another client stored: OpenSSL and GnuTLS.
    let kinds: Vec<_> = backends::available()
        .into_iter()
        .filter(|k| matches!(k, BackendKind::Openssl | BackendKind::Gnutls))
        .collect();
    for kind in kinds {
        for versions in [
            Versions::only(tlsresume_core::ProtocolVersion::Tls12),
            Versions::ALL,
        ] {
            let case = format!("{kind} {}-{}", versions.min, versions.max);
            let clock = ManualClock::new(start());
            let prefix = format!("seal-{}-{}:", kind.code(), versions.min.wire());
            // Two servers on two addresses sharing their ticket keys through Redis.
            let keys = Arc::new(
                RedisKeySource::new(
                    config(&redis.url()).prefix(prefix.as_str()),
                    Kek::from_bytes([0x4b; 32]),
                    &kind.default_ticket_policy(),
                )
                .expect("source"),
            );
            let node = || {
                let mut settings = ServerSettings::new(pki.server.clone());
                settings.clock = Arc::new(clock.clone());
                settings.versions = versions;
                settings.key_source = keys.clone();
                Node::start(backends::server(kind, settings).expect("server"))
            };
            let (here, there) = (node(), node());
            let store = |key: &SessionKey| {
                Arc::new(
                    RedisStore::new(config(&redis.url()).prefix(prefix.as_str()))
                        .expect("store")
                        .with_session_key(key.clone()),
                )
            };
            let client =
                |store: Arc<dyn SessionStore>| client_on(kind, versions, store, &clock, &pki);
            let writer_store = store(&fleet_key);
            let settings = client_settings(versions, writer_store.clone(), &clock, &pki);
            let redis_key = |addr| {
                writer_store.redis_key(
                    &settings.cache_key(kind, &ClientParams::new("mx.tlsresume.test", addr)),
                )
            };
            let get = |rkey: &str| match tlsresume_compare::redis::command(
                redis.port(),
                &[b"GET", rkey.as_bytes()],
            ) {
                Ok(tlsresume_compare::redis::Reply::Bulk(value)) => value,
                other => panic!("{case}: GET {rkey}: {other:?}"),
            };

            let writer = client(writer_store.clone());
            assert_eq!(dialogue(writer.as_ref(), here.addr), Ok(false), "{case}");
            // The entry as Redis holds it (its session field sealed).
            let sealed = get(&redis_key(here.addr)).expect("the writer stored its session");

            let stranger = client(Arc::new(ReadOnly(store(&other_key))));
            assert_eq!(
                dialogue(stranger.as_ref(), here.addr),
                Ok(false),
                "{case}: another session key cannot open it: a full handshake"
            );
            assert_eq!(
                get(&redis_key(here.addr)).as_ref(),
                Some(&sealed),
                "{case}: the client that could not open it left it intact"
            );

            // Copied under the cache key of the other address: does it resume there?
            let resumes_there_with = |value: &[u8]| {
                let set = tlsresume_compare::redis::command(
                    redis.port(),
                    &[
                        b"SET",
                        redis_key(there.addr).as_bytes(),
                        value,
                        b"PX",
                        b"600000",
                    ],
                );
                assert!(
                    matches!(set, Ok(tlsresume_compare::redis::Reply::Simple(_))),
                    "{set:?}"
                );
                let client = client(Arc::new(ReadOnly(store(&fleet_key))));
                dialogue(client.as_ref(), there.addr)
            };
            assert_eq!(
                resumes_there_with(&sealed),
                Ok(false),
                "{case}: a session copied under another cache key does not open"
            );

            let reader = client(store(&fleet_key));
            assert_eq!(
                dialogue(reader.as_ref(), here.addr),
                Ok(true),
                "{case}: a client with the fleet's key resumes from the entry left"
            );

            // Control: the same session sealed for the other address's cache key resumes
            // there, so what refused the copy is the seal's binding.
            let cache_key =
                |addr| settings.cache_key(kind, &ClientParams::new("mx.tlsresume.test", addr));
            let mut entry = CacheEntry::decode(&sealed).expect("the stored entry");
            let data = fleet_key
                .open_session(kind.name(), &cache_key(here.addr), &entry)
                .expect("opens where it was stored")
                .to_vec();
            entry.session =
                fleet_key.seal_session(kind.name(), &cache_key(there.addr), &entry, &data);
            assert_eq!(
                resumes_there_with(&entry.encode()),
                Ok(true),
                "{case}: control: sealed for that cache key, the same session resumes there"
            );
        }
    }
}

/// A session store whose writes can be turned off, so a rewritten entry stays as it was put.
#[derive(Debug)]
struct Gate {
    inner: Arc<dyn SessionStore>,
    writes: AtomicBool,
}

impl SessionStore for Gate {
    fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        self.inner.get(key)
    }

    fn put(&self, key: &CacheKey, entry: CacheEntry) -> Result<(), StoreError> {
        if self.writes.load(Ordering::SeqCst) {
            self.inner.put(key, entry)
        } else {
            Ok(())
        }
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.inner.remove(key)
    }

    fn session_key(&self) -> SessionKey {
        self.inner.session_key()
    }
}

/// The verdict and expiry of a stored session are sealed with it. A client trying the
/// certificate (Exim's `tls_try_verify_hosts`) against a server it cannot verify stores a
/// session marked verify-override and failed; a writer of Redis or of the disk cache without
/// the session key rewrites the entry as verified (or extends its lifetime), with a valid
/// checksum. Under `hardened()` the same client then makes a full handshake reporting the
/// failure (the entry not offered: `other_key`), and leaves the rewritten entry where it was;
/// the untouched entry resumes, reporting its verdict (control, first: a full handshake
/// replaces the session a rustls client holds). Every backend, TLS 1.2 and 1.3; the
/// same client throughout, so the backends' shortcut for a session they keep decoded is met.
#[test]
fn a_stored_verdict_or_expiry_rewritten_without_the_key_is_not_trusted() {
    use std::io::{Read as _, Write as _};
    use tlsresume_core::{NoOffer, Verification, VerifyMode};
    let _turn = gnutls_turn();
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let pki = Pki::committed().expect("PKI");
    let dir = std::env::temp_dir().join(format!("tlsresume-sealed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    type Forgery = (&'static str, fn(&mut CacheEntry));
    let forgeries: [Forgery; 2] = [
        ("verdict", |e| {
            e.verify_override = false;
            e.verification = Verification::Verified;
        }),
        ("expiry", |e| e.lifetime_hint += Duration::from_secs(86_400)),
    ];
    for kind in backends::available() {
        for versions in [
            Versions::only(tlsresume_core::ProtocolVersion::Tls12),
            Versions::ALL,
        ] {
            for on_disk in [false, true] {
                let case = format!(
                    "{kind} {}-{} {}",
                    versions.min,
                    versions.max,
                    if on_disk { "disk" } else { "redis" }
                );
                let clock = ManualClock::new(start());
                let mut server = ServerSettings::new(pki.server.clone());
                server.clock = Arc::new(clock.clone());
                server.versions = versions;
                let node = Node::start(backends::server(kind, server).expect("server"));
                let inner: Arc<dyn SessionStore> = if on_disk {
                    let file = dir.join(format!("{}-{}.db", kind.code(), versions.min.wire()));
                    Arc::new(tlsresume_stores::DiskStore::open(&file).expect("disk store"))
                } else {
                    let prefix = format!("verdict-{}-{}:", kind.code(), versions.min.wire());
                    Arc::new(
                        RedisStore::new(config(&redis.url()).prefix(prefix.as_str()))
                            .expect("store")
                            .with_session_key(SessionKey::from_bytes([0x31; 32])),
                    )
                };
                let gate = Arc::new(Gate {
                    inner: inner.clone(),
                    writes: AtomicBool::new(true),
                });
                // A name the server's certificate does not carry: verification fails, tried
                // only.
                let mut settings = client_settings(versions, gate.clone(), &clock, &pki);
                settings.verify = VerifyMode::Try;
                let params = ClientParams::new("not-in-the-certificate.invalid", node.addr);
                let key = settings.cache_key(kind, &params);
                let client = backends::client(kind, settings).expect("client");
                let connect = || {
                    let tcp = TcpStream::connect(node.addr).expect("connect");
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut tls = client
                        .connect(Box::new(tcp), &params)
                        .unwrap_or_else(|e| panic!("{case}: {e}"));
                    let mut buf = [0u8; 2];
                    tls.read_exact(&mut buf).expect("read");
                    tls.write_all(b"ok").expect("write");
                    let info = tls.info().clone();
                    let _ = tls.shutdown();
                    info
                };
                let first = connect();
                assert!(!first.resumed, "{case}");
                assert_eq!(first.verification, Verification::Failed, "{case}");
                gate.writes.store(false, Ordering::SeqCst);
                let stored = inner.get(&key).expect("get").expect("stored");
                assert!(stored.verify_override, "{case}");
                // Control: the entry as stored resumes, reporting its verdict.
                let again = connect();
                assert!(again.resumed, "{case}: the untouched entry resumes");
                assert_eq!(again.no_offer, None, "{case}");
                assert_eq!(again.verification, Verification::Failed, "{case}");

                for (what, forge) in forgeries {
                    let mut forged = stored.clone();
                    forge(&mut forged);
                    inner.put(&key, forged.clone()).expect("put");
                    let info = connect();
                    assert!(!info.resumed, "{case} {what}: a full handshake");
                    assert_eq!(info.no_offer, Some(NoOffer::OtherKey), "{case} {what}");
                    assert_eq!(
                        info.verification,
                        Verification::Failed,
                        "{case} {what}: the rewritten verdict is not reported"
                    );
                    assert_eq!(
                        inner.get(&key).expect("get"),
                        Some(forged),
                        "{case} {what}: the rewritten entry is left in place"
                    );
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
