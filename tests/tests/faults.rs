//! Store faults under a running client, with real handshakes on every backend: the on-disk cache
//! file deleted or replaced by garbage while the process runs, and a store whose writes fail.
//! Nothing may fail a handshake: a store failure costs at most the next resumption.

use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread;

#[allow(dead_code)] // the ticket tests' server of the rustls library alone is not used here
mod common;

use common::{answer, dialogue, gnutls_turn};
use tlsresume::backends;
use tlsresume_compare::Pki;
use tlsresume_core::notice::{self, Notice};
use tlsresume_core::{
    BackendKind, CacheEntry, CacheKey, ClientContext, ClientSettings, MemoryStore, ServerContext,
    ServerSettings, SessionStore, StoreError,
};
use tlsresume_stores::DiskStore;

/// A server answering connections until the process ends.
fn serve(server: Arc<dyn ServerContext>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let server = server.clone();
            thread::spawn(move || answer(server.as_ref(), tcp));
        }
    });
    addr
}

/// Every notice this test binary's stores sent (also written to stderr, as by default).
static NOTICES: Mutex<Vec<Notice>> = Mutex::new(Vec::new());

/// Starts collecting notices (once per process).
fn collect_notices() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        notice::set_handler(|n| {
            eprintln!("notice: {n}");
            NOTICES
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(n.clone());
        });
    });
}

/// The notices collected so far about the store named `store`: (writes failing, writes work
/// again).
fn write_notices(store: &str) -> (Vec<String>, Vec<u64>) {
    let notices = NOTICES.lock().unwrap_or_else(|p| p.into_inner());
    let mut failing = Vec::new();
    let mut again = Vec::new();
    for n in notices.iter() {
        match n {
            Notice::WritesFailing { store: s, error } if s == store => failing.push(error.clone()),
            Notice::WritesWorkAgain { store: s, failed } if s == store => again.push(*failed),
            _ => {}
        }
    }
    (failing, again)
}

/// One connection; whether it resumed. Any handshake failure fails the test.
fn connect(client: &dyn ClientContext, addr: std::net::SocketAddr) -> bool {
    dialogue(client, addr).expect("a store fault never fails the handshake")
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

/// A small tmpfs mounted on a scratch directory for one test, unmounted on drop: a real file
/// system to fill up and to make read-only. Mounting needs root (or `CAP_SYS_ADMIN`); without
/// it the test says it is skipped, or fails when `TLSRESUME_TMPFS=required` (set by `.ci/run`
/// on a machine where a tmpfs mounts).
struct Tmpfs {
    dir: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(name: &str, size_kib: u32) -> Option<Self> {
        let dir = scratch(name);
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size_kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var("TLSRESUME_TMPFS").as_deref() != Ok("required"),
                    "cannot mount a tmpfs ({why}) and TLSRESUME_TMPFS=required: the disk-full checks must run here"
                );
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs ({why}); run as root to check a full disk"
                );
                None
            }
        }
    }

    fn remount(&self, mode: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.dir)
            .status()
            .expect("mount");
        assert!(status.success(), "remount {mode}");
    }

    /// Fills the file system with one file until a write fails: the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = [0x5au8; 4096];
        loop {
            match file.write(&chunk) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a store of a failed test may still hold its file open.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_full_disk_under_a_running_client_fails_no_handshake_and_loses_no_stored_session() {
    let _turn = gnutls_turn();
    collect_notices();
    let pki = Pki::committed().expect("PKI");
    for kind in backends::available() {
        let Some(fs) = Tmpfs::mount(&format!("full-{}", kind.name()), 512) else {
            return;
        };
        let path = fs.dir.join("cache.sqlite");
        let name = format!("session cache {}", path.display());
        let store = Arc::new(DiskStore::open(&path).expect("open"));
        let mut settings = ClientSettings::new(pki.roots.clone());
        settings.store = store.clone();
        let client = backends::client(kind, settings).expect("client");
        let server =
            backends::server(kind, ServerSettings::new(pki.server.clone())).expect("server");
        let kept = serve(server.clone());
        assert!(!connect(client.as_ref(), kept), "{kind}: first is full");
        assert!(
            connect(client.as_ref(), kept),
            "{kind}: resumes from the file"
        );

        // The disk fills up. A destination with nothing stored yet: each full handshake's
        // session must be written, and every write fails.
        let filler = fs.fill();
        let fresh = serve(server.clone());
        let before = store.write_failures();
        for i in 0..5 {
            assert!(
                !connect(client.as_ref(), fresh),
                "{kind}: connection {i}: nothing could be kept, so nothing resumes"
            );
        }
        let failed = store.write_failures() - before;
        eprintln!("{kind}: disk full: 5 handshakes, {failed} failed writes");
        assert!(
            failed >= 5,
            "{kind}: one failed write per handshake at least"
        );
        assert!(
            store.writes_failing(),
            "{kind}: the store knows its writes fail"
        );
        // Said once, not once per failed write, and saying why.
        let (failing, again) = write_notices(&name);
        assert_eq!(
            failing.len(),
            1,
            "{kind}: one notice for {failed} failed writes: {failing:?}"
        );
        assert!(failing[0].contains("disk is full"), "{kind}: {failing:?}");
        assert!(again.is_empty(), "{kind}: {again:?}");
        // What was stored before is not lost: the first destination still resumes.
        assert!(
            connect(client.as_ref(), kept),
            "{kind}: the session stored before the disk filled still resumes"
        );

        // Space again: the next session is kept and resumes.
        std::fs::remove_file(&filler).expect("free space");
        assert!(!connect(client.as_ref(), fresh), "{kind}");
        assert!(!store.writes_failing(), "{kind}: writes work again");
        let (failing, again) = write_notices(&name);
        assert_eq!(failing.len(), 1, "{kind}: {failing:?}");
        assert_eq!(
            again.len(),
            1,
            "{kind}: one notice that writes work again: {again:?}"
        );
        assert!(
            again[0] >= 5,
            "{kind}: it counts the failed writes: {again:?}"
        );
        assert!(
            connect(client.as_ref(), fresh),
            "{kind}: resumes once the disk has space"
        );
        drop(client);
        drop(store);
        // A file system that is read-only when a process starts (Linux refuses to make one
        // read-only while a store holds its file open for writing): a clear error naming the
        // file, nothing written.
        fs.remount("ro");
        let err = DiskStore::open(&path).expect_err("a read-only file system");
        eprintln!("{kind}: open on a read-only file system: {err}");
        assert!(
            err.to_string().contains("cache.sqlite") && err.to_string().contains("read-only"),
            "{err}"
        );
        fs.remount("rw");
    }
}
