//! Store faults under a running client, with real handshakes on every backend: the on-disk cache
//! file deleted or replaced by garbage while the process runs, and a store whose writes fail.
//! Nothing may fail a handshake: a store failure costs at most the next resumption.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use tlsresume::backends;
use tlsresume_compare::Pki;
use tlsresume_core::{
    BackendKind, CacheEntry, CacheKey, ClientContext, ClientParams, ClientSettings, MemoryStore,
    ServerContext, ServerParams, ServerSettings, SessionStore, StoreError,
};
use tlsresume_stores::DiskStore;

fn gnutls_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// A server answering connections until the listener is dropped.
fn serve(server: Arc<dyn ServerContext>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let server = server.clone();
            thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                let (Ok(peer), Ok(local)) = (tcp.peer_addr(), tcp.local_addr()) else {
                    return;
                };
                if let Ok(mut tls) = server.accept(Box::new(tcp), &ServerParams::new(peer, local)) {
                    let _ = tls.write_all(b"hi");
                    let _ = tls.flush();
                    let mut buf = [0u8; 2];
                    let _ = tls.read_exact(&mut buf);
                    let _ = tls.shutdown();
                }
            });
        }
    });
    addr
}

/// One connection; whether it resumed. Any handshake failure fails the test.
fn connect(client: &dyn ClientContext, addr: std::net::SocketAddr) -> bool {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut tls = client
        .connect(Box::new(tcp), &ClientParams::new("mx.tlsresume.test", addr))
        .expect("a store fault never fails the handshake");
    let mut buf = [0u8; 2];
    tls.read_exact(&mut buf).expect("read");
    tls.write_all(b"ok").expect("write");
    let resumed = tls.info().resumed;
    let _ = tls.shutdown();
    resumed
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsresume-faults-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn the_cache_file_deleted_or_replaced_by_garbage_under_a_running_client() {
    let _turn = gnutls_turn();
    let pki = Pki::committed().expect("PKI");
    for kind in backends::available() {
        // rustls keeps its sessions in the process: the file only carries the entries.
        let dir = scratch(kind.name());
        let file = dir.join("cache.sqlite");
        let store = Arc::new(DiskStore::open(&file).expect("open"));
        let mut settings = ClientSettings::new(pki.roots.clone());
        settings.store = store.clone();
        let client = backends::client(kind, settings).expect("client");
        let server =
            backends::server(kind, ServerSettings::new(pki.server.clone())).expect("server");
        let addr = serve(server);
        assert!(!connect(client.as_ref(), addr), "{kind}: first is full");
        assert!(
            connect(client.as_ref(), addr),
            "{kind}: resumes from the file"
        );
        // Deleted under the running process (the open handle keeps working on the unlinked
        // file, as SQLite does): handshakes go on.
        std::fs::remove_file(&file).expect("delete");
        let _ = std::fs::remove_file(dir.join("cache.sqlite-wal"));
        let _ = std::fs::remove_file(dir.join("cache.sqlite-shm"));
        for _ in 0..3 {
            connect(client.as_ref(), addr);
        }
        // Replaced by garbage: a new process cannot open it (a clear error naming the file),
        // and the running one still completes every handshake.
        std::fs::write(&file, b"this is not an sqlite file at all, nor a cache").expect("garbage");
        let err = DiskStore::open(&file).expect_err("garbage file");
        assert!(err.to_string().contains("cache.sqlite"), "{err}");
        for _ in 0..3 {
            connect(client.as_ref(), addr);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A store whose writes fail once switched off (a full disk, a read-only file, Redis gone).
#[derive(Debug, Default)]
struct FailingStore {
    inner: MemoryStore,
    failing: AtomicBool,
    failed_puts: AtomicUsize,
}

impl SessionStore for FailingStore {
    fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        self.inner.get(key)
    }

    fn put(&self, key: &CacheKey, entry: CacheEntry) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            self.failed_puts.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Other("no space left on device".into()));
        }
        self.inner.put(key, entry)
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.inner.remove(key)
    }
}

#[test]
fn failing_store_writes_never_fail_a_handshake() {
    let _turn = gnutls_turn();
    let pki = Pki::committed().expect("PKI");
    for kind in backends::available() {
        let store = Arc::new(FailingStore::default());
        let mut settings = ClientSettings::new(pki.roots.clone());
        settings.store = store.clone();
        let client = backends::client(kind, settings).expect("client");
        let server =
            backends::server(kind, ServerSettings::new(pki.server.clone())).expect("server");
        let addr = serve(server);
        store.failing.store(true, Ordering::SeqCst);
        assert!(!connect(client.as_ref(), addr), "{kind}");
        assert!(
            !connect(client.as_ref(), addr),
            "{kind}: nothing was stored, so nothing resumes"
        );
        assert!(
            store.failed_puts.load(Ordering::SeqCst) > 0,
            "{kind}: writes were tried"
        );
        // The store comes back: resumption recovers.
        store.failing.store(false, Ordering::SeqCst);
        assert!(!connect(client.as_ref(), addr), "{kind}");
        assert!(
            connect(client.as_ref(), addr),
            "{kind}: resumes once writes work"
        );
    }
    let _ = BackendKind::ALL;
}
