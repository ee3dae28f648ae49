//! The async API (`tlsresume::tokio`) on every compiled-in backend, over real loopback
//! sockets: 200 concurrent handshakes on a 2-worker runtime (half of them resuming) with the
//! same outcomes as a sequential blocking run, connections that move between worker threads,
//! a blocking store written only around the handshake, a connect dropped half-way, and key
//! sources (which may block: Redis) asked only off the runtime's threads; the whole-handshake
//! deadline on both sides.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tlsresume::backends;
use tlsresume::tokio::{TlsAcceptor, TlsConnector};
use tlsresume_compare::Pki;
use tlsresume_core::keys::{KeyMaterial, MasterSecret};
use tlsresume_core::{
    BackendKind, CacheEntry, CacheKey, ClientContext, ClientParams, ClientSettings, ErrorKind,
    KeyError, KeySource, ManualClock, MemoryStore, ProcessKeySource, ProtocolVersion, Resumption,
    ServerContext, ServerParams, ServerSettings, SessionStore, StoreError, UnixTime, Versions,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::{TcpListener, TcpStream};

const NAME: &str = "mx.tlsresume.test";
const PAIRS: usize = 100;

fn gnutls_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A store that says it blocks (as the disk and Redis stores do) and counts its calls, over a
/// memory store: the async layer must go through its deferred path with it.
#[derive(Debug, Default)]
struct BlockingStore {
    inner: MemoryStore,
    calls: AtomicUsize,
}

impl SessionStore for BlockingStore {
    fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key)
    }

    fn put(&self, key: &CacheKey, entry: CacheEntry) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.put(key, entry)
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.remove(key)
    }
}

struct Rig {
    server: Arc<dyn ServerContext>,
    client: Arc<dyn ClientContext>,
}

fn rig(
    kind: BackendKind,
    tls: ProtocolVersion,
    clock: &ManualClock,
    store: Arc<dyn SessionStore>,
) -> Rig {
    let pki = Pki::committed().expect("committed test PKI");
    let mut ss = ServerSettings::new(pki.server.clone());
    ss.clock = Arc::new(clock.clone());
    ss.versions = Versions::only(tls);
    let mut cs = ClientSettings::new(pki.roots.clone());
    cs.clock = Arc::new(clock.clone());
    cs.versions = Versions::only(tls);
    cs.store = store;
    Rig {
        server: backends::server(kind, ss).expect("server"),
        client: backends::client(kind, cs).expect("client"),
    }
}

fn params(peer: SocketAddr, lb: &str) -> ClientParams {
    ClientParams::new(NAME, peer).lb_name(lb)
}

/// What one connection reported: (client resumed, client bits, server resumed).
type Seen = (bool, Resumption, bool);

/// The reference: every connection one after the other, on the blocking API.
fn sequential(rig: &Rig, names: &[String]) -> BTreeMap<String, Seen> {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind");
    let peer = listener.local_addr().expect("addr");
    let server = rig.server.clone();
    let count = names.len();
    let served = thread::spawn(move || {
        let mut resumed = Vec::new();
        for _ in 0..count {
            let (tcp, from) = listener.accept().expect("accept");
            // No Nagle: small writes answered by small writes would each wait for a delayed ACK.
            let _ = tcp.set_nodelay(true);
            let local = tcp.local_addr().expect("local");
            let mut tls = server
                .accept(Box::new(tcp), &ServerParams::new(from, local))
                .expect("blocking accept");
            tls.write_all(b"hello\n").expect("write");
            tls.flush().expect("flush");
            let mut line = String::new();
            BufReader::new(&mut tls).read_line(&mut line).expect("read");
            resumed.push(tls.info().resumed);
            let _ = tls.shutdown();
        }
        resumed
    });
    let mut out = BTreeMap::new();
    let mut client_side = Vec::new();
    for name in names {
        let tcp = StdStream::connect(peer).expect("connect");
        let _ = tcp.set_nodelay(true);
        let mut tls = rig
            .client
            .connect(Box::new(tcp), &params(peer, name))
            .expect("blocking connect");
        let mut line = String::new();
        BufReader::new(&mut tls).read_line(&mut line).expect("read");
        tls.write_all(b"bye\n").expect("write");
        tls.flush().expect("flush");
        let info = tls.info();
        let _ = tls.shutdown();
        client_side.push((name.clone(), info.resumed, info.resumption));
    }
    let server_resumed = served.join().expect("server thread");
    for ((name, resumed, bits), server) in client_side.into_iter().zip(server_resumed) {
        out.insert(name, (resumed, bits, server));
    }
    out
}

/// A server task per connection; each connection yields between steps so tasks move between
/// the two workers.
async fn serve(listener: TcpListener, acceptor: TlsAcceptor, failures: Arc<AtomicUsize>) {
    loop {
        let Ok((tcp, from)) = listener.accept().await else {
            return;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let failures = failures.clone();
        tokio::spawn(async move {
            let result: Result<(), String> = async {
                let local = tcp.local_addr().map_err(|e| e.to_string())?;
                let tls = acceptor
                    .accept(&ServerParams::new(from, local), tcp)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::task::yield_now().await;
                let mut tls = AsyncBufReader::new(tls);
                tls.write_all(b"hello\n").await.map_err(|e| e.to_string())?;
                tls.flush().await.map_err(|e| e.to_string())?;
                tokio::task::yield_now().await;
                let mut line = String::new();
                tls.read_line(&mut line).await.map_err(|e| e.to_string())?;
                let _ = tls.shutdown().await;
                Ok(())
            }
            .await;
            if let Err(e) = result {
                eprintln!("server: {e}");
                failures.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

async fn client_once(
    connector: &TlsConnector,
    peer: SocketAddr,
    name: &str,
) -> Result<(bool, Resumption), String> {
    let tcp = TcpStream::connect(peer).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let tls = connector
        .connect(&params(peer, name), tcp)
        .await
        .map_err(|e| e.to_string())?;
    tokio::task::yield_now().await;
    let mut tls = AsyncBufReader::new(tls);
    let mut line = String::new();
    tls.read_line(&mut line).await.map_err(|e| e.to_string())?;
    if line != "hello\n" {
        return Err(format!("got {line:?}"));
    }
    tokio::task::yield_now().await;
    tls.write_all(b"bye\n").await.map_err(|e| e.to_string())?;
    tls.flush().await.map_err(|e| e.to_string())?;
    let info = tls.get_ref().info().clone();
    let _ = tls.shutdown().await;
    Ok((info.resumed, info.resumption))
}

/// The same connections on the async API: the first half primes sessions one by one, then all
/// run at once.
fn concurrent(
    rig: &Rig,
    primes: &[String],
    names: &[String],
) -> (BTreeMap<String, (bool, Resumption)>, usize) {
    let rt = runtime();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let peer = listener.local_addr().expect("addr");
        let failures = Arc::new(AtomicUsize::new(0));
        let server = tokio::spawn(serve(
            listener,
            TlsAcceptor::new(rig.server.clone()),
            failures.clone(),
        ));
        let connector = TlsConnector::new(rig.client.clone());
        for name in primes {
            client_once(&connector, peer, name)
                .await
                .expect("priming connection");
        }
        let mut tasks = Vec::new();
        for name in names {
            let connector = connector.clone();
            let name = name.clone();
            tasks.push(tokio::spawn(async move {
                let seen = client_once(&connector, peer, &name).await;
                (name, seen)
            }));
        }
        let mut out = BTreeMap::new();
        for task in tasks {
            let (name, seen) = task.await.expect("client task");
            match seen {
                Ok(seen) => {
                    out.insert(name, seen);
                }
                Err(e) => {
                    eprintln!("client {name}: {e}");
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        server.abort();
        (out, failures.load(Ordering::Relaxed))
    })
}

fn check_backend(kind: BackendKind, tls: ProtocolVersion, blocking_store: bool) {
    let _turn = gnutls_turn();
    let clock = ManualClock::new(UnixTime::now());
    let primes: Vec<String> = (0..PAIRS).map(|i| format!("mx{i}.prime.test")).collect();
    let fresh: Vec<String> = (0..PAIRS).map(|i| format!("mx{i}.fresh.test")).collect();
    let all: Vec<String> = primes.iter().chain(&fresh).cloned().collect();
    let store = |blocks: bool| -> Arc<dyn SessionStore> {
        if blocks {
            Arc::new(BlockingStore::default())
        } else {
            Arc::new(MemoryStore::new(1000))
        }
    };

    let reference = {
        let rig = rig(kind, tls, &clock, store(false));
        // The same connections, primes first (the later outcome of a name is kept).
        let run: Vec<String> = primes.iter().chain(&all).cloned().collect();
        sequential(&rig, &run)
    };
    let blocking = Arc::new(BlockingStore::default());
    let async_store: Arc<dyn SessionStore> = if blocking_store {
        blocking.clone()
    } else {
        store(false)
    };
    let rig = rig(kind, tls, &clock, async_store);
    let (seen, failures) = concurrent(&rig, &primes, &all);
    assert_eq!(failures, 0, "{kind} {tls}: failed connections");
    assert_eq!(seen.len(), all.len());
    let resumed = seen.values().filter(|s| s.0).count();
    assert_eq!(resumed, PAIRS, "{kind} {tls}: half resume");
    for (name, (resumed, bits)) in &seen {
        let (want_resumed, want_bits, server_resumed) = reference[name];
        assert_eq!(
            (*resumed, *bits),
            (want_resumed, want_bits),
            "{kind} {tls} {name}: async differs from the sequential blocking run"
        );
        assert_eq!(
            want_resumed, server_resumed,
            "{kind} {tls} {name}: server disagrees"
        );
        assert_eq!(want_resumed, name.contains("prime"), "{kind} {tls} {name}");
    }
    if blocking_store {
        assert!(blocking.calls.load(Ordering::Relaxed) > 0);
    }
}

#[test]
fn concurrent_handshakes_match_the_sequential_run_on_every_backend() {
    for kind in backends::available() {
        check_backend(kind, ProtocolVersion::Tls13, false);
    }
}

#[test]
fn a_blocking_store_gives_the_same_outcomes_through_the_deferred_path() {
    // TLS 1.2: sessions stored during the handshake, and on rustls lent to one handshake at a
    // time.
    for kind in backends::available() {
        check_backend(kind, ProtocolVersion::Tls12, true);
    }
}

/// A connect dropped after its ClientHello left (offering the stored session) leaves the
/// on-disk store as it was; the next connect works.
#[test]
fn a_connect_dropped_half_way_leaves_the_store_consistent() {
    let dir = std::env::temp_dir().join(format!("tlsresume-async-drop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    for kind in backends::available() {
        let _turn = gnutls_turn();
        let clock = ManualClock::new(UnixTime::now());
        let path = dir.join(format!("{kind}.sqlite"));
        let disk: Arc<dyn SessionStore> =
            Arc::new(tlsresume_stores::DiskStore::open(&path).expect("disk store"));
        assert!(disk.blocks());
        let rig = rig(kind, ProtocolVersion::Tls13, &clock, disk.clone());
        let rt = runtime();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let peer = listener.local_addr().expect("addr");
            let failures = Arc::new(AtomicUsize::new(0));
            let connector = TlsConnector::new(rig.client.clone());
            let settings = rig.client.client_settings();
            let key = tlsresume_core::contract::ClientContract::cache_key(
                settings,
                kind,
                &params(peer, "mx1.tlsresume.test"),
            );
            // 1: a full handshake stores a session.
            let acceptor = TlsAcceptor::new(rig.server.clone());
            let (tcp, from) = {
                let connect = TcpStream::connect(peer);
                let (a, b) = tokio::join!(listener.accept(), connect);
                let (server_tcp, from) = a.expect("accept");
                (
                    (server_tcp, b.expect("connect")),
                    from,
                )
            };
            let (server_tcp, client_tcp) = tcp;
            let local = server_tcp.local_addr().expect("local");
            let serve = tokio::spawn({
                let acceptor = acceptor.clone();
                async move {
                    let tls = acceptor
                        .accept(&ServerParams::new(from, local), server_tcp)
                        .await
                        .expect("accept");
                    let mut tls = AsyncBufReader::new(tls);
                    tls.write_all(b"hello\n").await.expect("write");
                    tls.flush().await.expect("flush");
                    let mut line = String::new();
                    tls.read_line(&mut line).await.expect("read");
                }
            });
            let tls = connector
                .connect(&params(peer, "mx1.tlsresume.test"), client_tcp)
                .await
                .expect("first connect");
            let mut tls = AsyncBufReader::new(tls);
            let mut line = String::new();
            tls.read_line(&mut line).await.expect("read");
            tls.write_all(b"bye\n").await.expect("write");
            tls.flush().await.expect("flush");
            serve.await.expect("server");
            drop(tls);
            // Let the write started by the read land (the next connect waits for it too).
            let before = loop {
                match disk.get(&key).expect("store readable") {
                    Some(entry) => break entry,
                    None => tokio::task::yield_now().await,
                }
            };

            // 2: the server reads the ClientHello and goes silent; the connect is dropped then.
            let (hello_tx, hello_rx) = tokio::sync::oneshot::channel();
            let stall = tokio::spawn({
                async move {
                    let (mut tcp, _) = listener.accept().await.expect("accept");
                    let mut buf = [0u8; 512];
                    let n = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf)
                        .await
                        .expect("read hello");
                    let _ = hello_tx.send(n);
                    // Swallow the rest, answer nothing, until the client goes away.
                    let _ = tokio::io::copy(&mut tcp, &mut tokio::io::sink()).await;
                    listener
                }
            });
            let tcp = TcpStream::connect(peer).await.expect("connect");
            let connect = connector.connect(&params(peer, "mx1.tlsresume.test"), tcp);
            tokio::select! {
                r = connect => panic!("{kind}: the handshake cannot finish against a silent server: {r:?}"),
                n = hello_rx => assert!(n.expect("hello seen") > 0),
            }
            // The dropped connect wrote nothing: the entry is whole and unchanged.
            let after = disk.get(&key).expect("store readable").expect("entry kept");
            assert_eq!(after.session, before.session, "{kind}: entry changed");
            assert_eq!(after.stored_at, before.stored_at, "{kind}: entry changed");
            let listener = stall.await.expect("stall task");

            // 3: the next connect works.
            tokio::spawn(serve_loop_once(listener, acceptor, failures.clone()));
            let tcp = TcpStream::connect(peer).await.expect("connect");
            let tls = connector
                .connect(&params(peer, "mx1.tlsresume.test"), tcp)
                .await
                .expect("connect after the dropped one");
            let mut tls = AsyncBufReader::new(tls);
            let mut line = String::new();
            tls.read_line(&mut line).await.expect("read");
            assert_eq!(line, "hello\n");
            assert_eq!(failures.load(Ordering::Relaxed), 0);
        });
        drop(rig);
        let _ = std::fs::remove_file(&path);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

async fn serve_loop_once(listener: TcpListener, acceptor: TlsAcceptor, failures: Arc<AtomicUsize>) {
    serve(listener, acceptor, failures).await;
}

/// A key source that notes every call made on the runtime's thread while `watching` (a
/// current-thread runtime: its tasks run on the test's thread, blocking tasks elsewhere). Its
/// first master secret is a stand-in, asked about again after a second; later calls give the
/// final one.
#[derive(Debug, Default)]
struct Watched {
    local: ProcessKeySource,
    shared: ProcessKeySource,
    watching: AtomicBool,
    runtime: Mutex<Option<thread::ThreadId>>,
    asked: AtomicUsize,
    on_runtime: AtomicUsize,
    masters: AtomicUsize,
}

impl Watched {
    fn note(&self) {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let runtime = *self.runtime.lock().unwrap_or_else(|p| p.into_inner());
        if self.watching.load(Ordering::SeqCst) && runtime == Some(thread::current().id()) {
            self.on_runtime.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl KeySource for Watched {
    fn new_key(&self, created: UnixTime) -> Result<KeyMaterial, KeyError> {
        self.note();
        self.shared.new_key(created)
    }

    fn master_secret(&self) -> Result<MasterSecret, KeyError> {
        self.note();
        if self.masters.fetch_add(1, Ordering::SeqCst) == 0 {
            self.local.master_secret()
        } else {
            self.shared.master_secret()
        }
    }

    fn master_retry_after(&self, master: &MasterSecret) -> Option<std::time::Duration> {
        let shared = self.shared.master_secret().ok()?;
        (*master != shared).then_some(std::time::Duration::from_secs(1))
    }
}

#[test]
fn key_sources_are_asked_off_the_runtime_on_every_backend() {
    let _turn = gnutls_turn();
    let pki = Pki::committed().expect("committed test PKI");
    for kind in backends::available() {
        let clock = ManualClock::new(UnixTime::now());
        let source = Arc::new(Watched::default());
        let mut ss = ServerSettings::new(pki.server.clone());
        ss.clock = Arc::new(clock.clone());
        ss.key_source = source.clone();
        let mut cs = ClientSettings::new(pki.roots.clone());
        cs.clock = Arc::new(clock.clone());
        let server = backends::server(kind, ss).expect("server");
        let connector = TlsConnector::new(backends::client(kind, cs).expect("client"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let failures = Arc::new(AtomicUsize::new(0));
        let asked_before = source.asked.load(Ordering::SeqCst);
        rt.block_on(async {
            *source.runtime.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(thread::current().id());
            source.watching.store(true, Ordering::SeqCst);
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let peer = listener.local_addr().expect("addr");
            tokio::spawn(serve(listener, TlsAcceptor::new(server), failures.clone()));
            // The first ticket needs a key (a ring's first rotation; GnuTLS holds its master
            // already); two hours on, a rotation is due (GnuTLS: the stand-in master's retry).
            for step in 0..2 {
                client_once(&connector, peer, "mx.watch.test")
                    .await
                    .unwrap_or_else(|e| panic!("{kind}: connection {step}: {e}"));
                clock.advance(std::time::Duration::from_secs(2 * 3600));
            }
            source.watching.store(false, Ordering::SeqCst);
        });
        assert_eq!(
            failures.load(Ordering::SeqCst),
            0,
            "{kind}: server failures"
        );
        let asked = source.asked.load(Ordering::SeqCst) - asked_before;
        assert!(
            asked >= 1,
            "{kind}: the key source was asked during the handshakes"
        );
        assert_eq!(
            source.on_runtime.load(Ordering::SeqCst),
            0,
            "{kind}: {asked} key source calls, some on the runtime's thread"
        );
        if kind == BackendKind::Gnutls {
            assert_eq!(
                source.masters.load(Ordering::SeqCst),
                2,
                "GnuTLS asked again about its stand-in master"
            );
        }
    }
}

/// The tokio server over a Redis key source whose Redis stops answering (every reply held 30 s,
/// I/O timeout 2 s), on a current-thread runtime, where the server's and the client's tasks
/// share the one thread: a ticket-key rotation falling due (the next slot's key held, fetched
/// ahead), and then one whose key could not be fetched, block nothing. Every handshake
/// finishes in a fraction of the timeout, and sessions keep resuming across the boundary. With
/// the key fetched inside the ticket callback (or before the handshake on a blocking thread,
/// which the handshake awaited), the first handshake after the boundary took the timeout.
#[test]
fn a_rotation_with_redis_silent_blocks_no_runtime_thread_on_every_backend() {
    use tlsresume_compare::redis::{RedisServer, SlowLink};
    use tlsresume_stores::{Kek, RedisConfig, RedisKeySource};
    let _turn = gnutls_turn();
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let link = SlowLink::start(redis.port()).expect("proxy");
    let pki = Pki::committed().expect("committed test PKI");
    let io = Duration::from_secs(2);
    for kind in backends::available() {
        link.set_delay(Duration::ZERO);
        let policy = kind.default_ticket_policy();
        // A slot boundary ahead of the real time (Redis expires keys on its own clock).
        let period = 21_600;
        let now = UnixTime::now().as_secs();
        let clock = ManualClock::new(UnixTime::from_secs(now - now % period + period));
        let config = RedisConfig::new(link.url())
            .connect_timeout(Duration::from_millis(200))
            .io_timeout(io);
        let source = Arc::new(
            RedisKeySource::new(config, Kek::from_bytes([0x4b; 32]), &policy).expect("source"),
        );
        let mut ss = ServerSettings::new(pki.server.clone());
        ss.clock = Arc::new(clock.clone());
        ss.key_source = source;
        let mut cs = ClientSettings::new(pki.roots.clone());
        cs.clock = Arc::new(clock.clone());
        cs.store = Arc::new(MemoryStore::default());
        let server = backends::server(kind, ss).expect("server");
        let connector = TlsConnector::new(backends::client(kind, cs).expect("client"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let failures = Arc::new(AtomicUsize::new(0));
        let (slowest, resumed) = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let peer = listener.local_addr().expect("addr");
            tokio::spawn(serve(listener, TlsAcceptor::new(server), failures.clone()));
            for step in 0..2 {
                client_once(&connector, peer, NAME)
                    .await
                    .unwrap_or_else(|e| panic!("{kind}: connection {step}: {e}"));
            }
            link.set_delay(Duration::from_secs(30));
            let mut slowest = Duration::ZERO;
            let mut resumed = Vec::new();
            for _ in 0..2 {
                clock.advance(policy.rotation() + Duration::from_secs(1));
                for step in 0..4 {
                    let started = Instant::now();
                    let (again, _) = client_once(&connector, peer, NAME)
                        .await
                        .unwrap_or_else(|e| panic!("{kind}: connection {step}: {e}"));
                    slowest = slowest.max(started.elapsed());
                    resumed.push(again);
                }
            }
            (slowest, resumed)
        });
        eprintln!("{kind}: Redis silent across two rotations: slowest handshake {slowest:?} (I/O timeout {io:?}); resumed {resumed:?}");
        assert_eq!(
            failures.load(Ordering::SeqCst),
            0,
            "{kind}: server failures"
        );
        assert!(
            slowest < io / 2,
            "{kind}: a handshake took {slowest:?} with Redis silent: something waited for it"
        );
        // A session older than the ticket lifetime (GnuTLS rotates every 6 h, its tickets
        // live 2 h) is not resumed: the first connection after each step then makes a new one.
        let stale = policy.rotation() >= policy.lifetime();
        for (i, again) in resumed.iter().enumerate() {
            assert!(
                *again || (stale && i % 4 == 0),
                "{kind}: connection {i} across the rotations resumed: {resumed:?}"
            );
        }
    }
}

/// The async API by type: `TlsConnector::from(Client)` / `TlsAcceptor::from(Server)` of one
/// backend, whose streams are that backend's (`connection()` gives its `Stream` and its escape
/// hatch), nothing erased; the second connection resumes; `into_inner` gives the socket back,
/// still usable.
macro_rules! typed {
    ($name:ident, $backend:literal) => {
        #[cfg(feature = $backend)]
        #[test]
        fn $name() {
            use tlsresume::$name as backend;
            let _turn = gnutls_turn();
            let pki = Pki::committed().expect("pki");
            let server =
                backend::Server::new(tlsresume_core::ServerSettings::new(pki.server.clone()))
                    .expect("server");
            let client =
                backend::Client::new(tlsresume_core::ClientSettings::new(pki.roots.clone()))
                    .expect("client");
            let acceptor = TlsAcceptor::from(server);
            let connector = TlsConnector::from(client);
            runtime().block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let peer = listener.local_addr().expect("addr");
                let served = tokio::spawn(async move {
                    for _ in 0..2 {
                        let (tcp, from) = listener.accept().await.expect("accept");
                        let local = tcp.local_addr().expect("local");
                        let mut tls = acceptor
                            .accept(&ServerParams::new(from, local), tcp)
                            .await
                            .expect("server handshake");
                        tls.write_all(b"hello\n").await.expect("write");
                        tls.flush().await.expect("flush");
                        let mut line = String::new();
                        AsyncBufReader::new(&mut tls)
                            .read_line(&mut line)
                            .await
                            .expect("read");
                        assert_eq!(line, "bye\n");
                    }
                });
                let mut resumed = Vec::new();
                for _ in 0..2 {
                    let tcp = TcpStream::connect(peer).await.expect("connect");
                    let mut tls = connector
                        .connect(&params(peer, NAME), tcp)
                        .await
                        .expect("client handshake");
                    let mut line = String::new();
                    AsyncBufReader::new(&mut tls)
                        .read_line(&mut line)
                        .await
                        .expect("read");
                    assert_eq!(line, "hello\n");
                    tls.write_all(b"bye\n").await.expect("write");
                    tls.flush().await.expect("flush");
                    // The backend's own stream, by type.
                    let by_type: &backend::Stream<_> = tls.connection();
                    assert_eq!(by_type.info().resumed, tls.info().resumed);
                    resumed.push(tls.info().resumed);
                    assert_eq!(tls.get_ref().peer_addr().expect("peer"), peer);
                    let tcp: TcpStream = tls.into_inner();
                    assert_eq!(tcp.peer_addr().expect("peer after into_inner"), peer);
                }
                served.await.expect("server task");
                assert_eq!(resumed, vec![false, true], "the second connection resumes");
            });
        }
    };
}

typed!(openssl, "openssl");
typed!(gnutls, "gnutls");
typed!(rustls, "rustls");

// The whole-handshake deadline: a client dribbling its ClientHello a byte every 200 ms, and a
// server answering the ClientHello five bytes a second, are cut at the deadline with an I/O
// error saying the handshake deadline passed; a handshake that finishes in time is not touched.

const LIMIT: Duration = Duration::from_secs(1);

fn deadline_server(kind: BackendKind) -> Arc<dyn ServerContext> {
    let pki = Pki::committed().expect("committed test PKI");
    backends::server(kind, ServerSettings::new(pki.server.clone())).expect("server")
}

fn deadline_client(kind: BackendKind) -> Arc<dyn ClientContext> {
    let pki = Pki::committed().expect("committed test PKI");
    backends::client(kind, ClientSettings::new(pki.roots.clone())).expect("client")
}

/// The start of a TLS 1.2 ClientHello record, sent a byte every 200 ms (40 bytes: 8 s) from a
/// thread; gives how long the server took to close the connection, if it did.
fn dribble_client_hello(peer: SocketAddr) -> thread::JoinHandle<Option<Duration>> {
    thread::spawn(move || {
        let mut tcp = StdStream::connect(peer).expect("connect");
        let hello = [22u8, 3, 1, 0x02, 0x00, 1, 0, 0x01, 0xfc, 3, 3];
        let started = Instant::now();
        for byte in hello.iter().cycle().take(40) {
            if tcp.write_all(&[*byte]).is_err() {
                return Some(started.elapsed());
            }
            thread::sleep(Duration::from_millis(200));
        }
        None
    })
}

/// A server on `kind` with a 1 s handshake deadline faces a dribbled ClientHello.
fn server_side(kind: BackendKind) {
    let rt = runtime();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let peer = listener.local_addr().expect("addr");
        let acceptor = TlsAcceptor::new(deadline_server(kind)).handshake_timeout(LIMIT);
        let dribbler = dribble_client_hello(peer);
        let (tcp, from) = listener.accept().await.expect("accept");
        let local = tcp.local_addr().expect("local");
        let started = Instant::now();
        let err = acceptor
            .accept(&ServerParams::new(from, local), tcp)
            .await
            .expect_err(&format!(
                "{kind}: a dribbled ClientHello finished a handshake"
            ));
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Io, "{kind}: {err}");
        assert!(
            err.to_string().contains("the handshake deadline passed"),
            "{kind}: {err}"
        );
        match &err {
            tlsresume_core::Error::Io(io) => {
                assert_eq!(io.kind(), std::io::ErrorKind::TimedOut, "{kind}: {err}")
            }
            other => panic!("{kind}: not an I/O error: {other}"),
        }
        assert!(
            took >= LIMIT && took < LIMIT + Duration::from_millis(800),
            "{kind}: cut after {took:?}"
        );
        // The connection was closed with the handshake: the dribbler's writes fail soon after.
        let cut = tokio::task::spawn_blocking(move || dribbler.join().expect("dribbler"))
            .await
            .expect("join");
        let cut = cut.unwrap_or_else(|| panic!("{kind}: the dribbling client was never cut"));
        assert!(cut < Duration::from_secs(4), "{kind}: closed after {cut:?}");
    });
}

/// A client on `kind` with a 1 s handshake deadline faces a tarpit: a server that reads the
/// ClientHello and answers a plausible ServerHello five bytes a second.
fn client_side(kind: BackendKind) {
    let rt = runtime();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let peer = listener.local_addr().expect("addr");
        let tarpit = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.expect("accept");
            let mut hello = [0u8; 4096];
            let _ = tcp.read(&mut hello).await;
            // A handshake record announcing 16 KiB, then its body a byte at a time.
            let mut answer = vec![22u8, 3, 3, 0x40, 0x00];
            answer.extend(std::iter::repeat_n(0u8, 60));
            for byte in answer {
                if tcp.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let connector = TlsConnector::new(deadline_client(kind)).handshake_timeout(LIMIT);
        let tcp = TcpStream::connect(peer).await.expect("connect");
        let started = Instant::now();
        let err = connector
            .connect(&ClientParams::new(NAME, peer), tcp)
            .await
            .expect_err(&format!("{kind}: a tarpit finished a handshake"));
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Io, "{kind}: {err}");
        assert!(
            err.to_string().contains("the handshake deadline passed"),
            "{kind}: {err}"
        );
        assert!(
            took >= LIMIT && took < LIMIT + Duration::from_millis(800),
            "{kind}: cut after {took:?}"
        );
        tarpit.abort();
    });
}

/// With the deadline set on both sides, a handshake that finishes in time is a handshake: the
/// deadline ends with it (the connection then waits longer than the deadline and still works).
fn in_time(kind: BackendKind) {
    let rt = runtime();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let peer = listener.local_addr().expect("addr");
        let acceptor = TlsAcceptor::new(deadline_server(kind)).handshake_timeout(LIMIT);
        let served = tokio::spawn(async move {
            let (tcp, from) = listener.accept().await.expect("accept");
            let local = tcp.local_addr().expect("local");
            let mut tls = acceptor
                .accept(&ServerParams::new(from, local), tcp)
                .await
                .map_err(|e| e.to_string())?;
            tokio::time::sleep(LIMIT + Duration::from_millis(300)).await;
            tls.write_all(b"hello\n").await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        });
        let connector = TlsConnector::new(deadline_client(kind)).handshake_timeout(LIMIT);
        let tcp = TcpStream::connect(peer).await.expect("connect");
        let mut tls = connector
            .connect(&ClientParams::new(NAME, peer), tcp)
            .await
            .unwrap_or_else(|e| panic!("{kind}: a handshake in time failed: {e}"));
        let mut line = [0u8; 6];
        tls.read_exact(&mut line)
            .await
            .unwrap_or_else(|e| panic!("{kind}: read after the deadline: {e}"));
        assert_eq!(&line, b"hello\n", "{kind}");
        served.await.expect("server task").expect("server side");
    });
}

/// `check` on every backend at once (each waits for a deadline, not the CPU).
fn every_backend_at_once(check: fn(BackendKind)) {
    let _turn = gnutls_turn();
    let runs: Vec<_> = backends::available()
        .into_iter()
        .map(|kind| (kind, thread::spawn(move || check(kind))))
        .collect();
    for (kind, run) in runs {
        run.join().unwrap_or_else(|_| panic!("{kind}: failed"));
    }
}

#[test]
fn a_dribbled_client_hello_is_cut_at_the_async_handshake_deadline_on_every_backend() {
    every_backend_at_once(server_side);
}

#[test]
fn a_tarpit_is_cut_at_the_async_handshake_deadline_on_every_backend() {
    every_backend_at_once(client_side);
}

#[test]
fn a_handshake_in_time_is_untouched_by_the_async_deadline_on_every_backend() {
    let _turn = gnutls_turn();
    for kind in backends::available() {
        in_time(kind);
    }
}

/// On a runtime without tokio's timer, a handshake with a deadline fails with a configuration
/// error saying what to enable, instead of a panic.
#[test]
fn a_handshake_deadline_without_the_timer_is_a_configuration_error() {
    let _turn = gnutls_turn();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime without time");
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let peer = listener.local_addr().expect("addr");
        let kind = backends::available()[0];
        let acceptor = TlsAcceptor::new(deadline_server(kind)).handshake_timeout(LIMIT);
        let _client = TcpStream::connect(peer).await.expect("connect");
        let (tcp, from) = listener.accept().await.expect("accept");
        let local = tcp.local_addr().expect("local");
        let err = acceptor
            .accept(&ServerParams::new(from, local), tcp)
            .await
            .expect_err("no timer");
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(err.to_string().contains("enable_time"), "{err}");
    });
}

/// TLS inside TLS: a second handshake and a line each way over an established connection of
/// the same backend, both ends on a two-worker runtime. The inner stream's transport is the
/// outer stream: each lends its task's waker for its own call and the outer one's is restored
/// after, so a read that must wait for the peer wakes the right task (a lost wake-up is a
/// hang, cut here by the timeout).
#[test]
fn tls_inside_tls_completes_on_every_backend() {
    let _turn = gnutls_turn();
    for kind in backends::available() {
        for tls in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
            let clock = ManualClock::starting_now();
            let rig = rig(kind, tls, &clock, Arc::new(MemoryStore::default()));
            let acceptor = TlsAcceptor::new(rig.server.clone());
            let connector = TlsConnector::new(rig.client.clone());
            runtime().block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let peer = listener.local_addr().expect("addr");
                let server = tokio::spawn(async move {
                    let (tcp, from) = listener.accept().await.map_err(|e| e.to_string())?;
                    let local = tcp.local_addr().map_err(|e| e.to_string())?;
                    let sp = ServerParams::new(from, local);
                    let outer = acceptor.accept(&sp, tcp).await.map_err(|e| e.to_string())?;
                    let inner = acceptor
                        .accept(&sp, outer)
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut inner = AsyncBufReader::new(inner);
                    let mut line = String::new();
                    inner
                        .read_line(&mut line)
                        .await
                        .map_err(|e| e.to_string())?;
                    inner
                        .write_all(line.to_uppercase().as_bytes())
                        .await
                        .map_err(|e| e.to_string())?;
                    inner.flush().await.map_err(|e| e.to_string())?;
                    let _ = inner.shutdown().await;
                    Ok::<_, String>(line)
                });
                let client = async {
                    let tcp = TcpStream::connect(peer).await.map_err(|e| e.to_string())?;
                    let outer = connector
                        .connect(&params(peer, "outer"), tcp)
                        .await
                        .map_err(|e| e.to_string())?;
                    tokio::task::yield_now().await;
                    let inner = connector
                        .connect(&params(peer, "inner"), outer)
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut inner = AsyncBufReader::new(inner);
                    inner
                        .write_all(b"inside\n")
                        .await
                        .map_err(|e| e.to_string())?;
                    inner.flush().await.map_err(|e| e.to_string())?;
                    let mut line = String::new();
                    inner
                        .read_line(&mut line)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<_, String>(line)
                };
                let answer = tokio::time::timeout(Duration::from_secs(20), client)
                    .await
                    .unwrap_or_else(|_| panic!("{kind} {tls:?}: inner connection hung"))
                    .unwrap_or_else(|e| panic!("{kind} {tls:?}: client: {e}"));
                let heard = tokio::time::timeout(Duration::from_secs(20), server)
                    .await
                    .unwrap_or_else(|_| panic!("{kind} {tls:?}: inner accept hung"))
                    .expect("server task")
                    .unwrap_or_else(|e| panic!("{kind} {tls:?}: server: {e}"));
                assert_eq!(heard, "inside\n", "{kind} {tls:?}");
                assert_eq!(answer, "INSIDE\n", "{kind} {tls:?}");
            });
        }
    }
}
