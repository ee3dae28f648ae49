//! The on-disk store across real processes: this test binary re-executes itself with
//! `TLSRESUME_STORES_ROLE` set to run a worker role.
#![cfg(feature = "disk")]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tlsresume_core::{
    BackendKind, CacheEntry, CacheKey, ManualClock, OcspStatus, SessionStore, UnixTime,
    Verification,
};
use tlsresume_smtp::ehlo::{EhloCache, EhloEntry, EhloKey, EhloResponse, EhloStore, Phase};
use tlsresume_stores::{DiskOptions, DiskStore};

const ROLE: &str = "TLSRESUME_STORES_ROLE";
const FILE: &str = "TLSRESUME_STORES_FILE";
const T0: u64 = 1_700_000_000;

fn key(worker: u32, n: u32) -> CacheKey {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&worker.to_be_bytes());
    bytes[4..8].copy_from_slice(&n.to_be_bytes());
    CacheKey::from_bytes(bytes)
}

fn entry(worker: u32, n: u32, session: Vec<u8>) -> CacheEntry {
    {
        let mut entry = CacheEntry::new(
            BackendKind::Openssl,
            0x0304,
            [worker.to_be_bytes().as_slice(), &n.to_be_bytes(), &session].concat(),
            UnixTime::from_secs(T0 + u64::from(n)),
            Duration::from_secs(7200),
        );
        entry.verify_override = false;
        entry.verification = Verification::Verified;
        entry.ocsp = OcspStatus::NotRequested;
        entry
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tlsresume-stores-{name}-{}-{}",
            std::process::id(),
            UnixTime::now().as_micros()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn worker(role: &str, file: &Path, extra: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["worker_role", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(FILE, file);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

/// Not a test of its own: the body of the worker processes (does nothing unless
/// `TLSRESUME_STORES_ROLE` is set).
#[test]
fn worker_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let file = PathBuf::from(std::env::var(FILE).expect("file"));
    let id: u32 = std::env::var("WORKER_ID")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let count: u32 = std::env::var("WORKER_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX);
    let store = DiskStore::open_with(
        &file,
        &DiskOptions {
            capacity: 1_000_000,
            busy_timeout: Duration::from_secs(30),
            ..DiskOptions::default()
        },
    )
    .expect("open");
    let mut out = std::io::stdout().lock();
    match role.as_str() {
        // Writes entries, reading each back and reading the other writers' entries too;
        // prints "ok N" after each acknowledged put.
        "writer" => {
            for n in 0..count {
                store
                    .put(&key(id, n), entry(id, n, vec![0x5a; 300]))
                    .expect("put");
                writeln!(out, "ok {n}").expect("stdout");
                out.flush().expect("flush");
                let back = store.get(&key(id, n)).expect("get").expect("own entry");
                assert_eq!(back, entry(id, n, vec![0x5a; 300]));
                let other = (id + 1) % 4;
                if let Some(e) = store.get(&key(other, n / 2)).expect("get other") {
                    assert_eq!(e, entry(other, n / 2, vec![0x5a; 300]));
                }
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn concurrent_processes_lose_nothing() {
    let dir = TempDir::new("concurrent");
    let file = dir.file("cache.db");
    const WORKERS: u32 = 4;
    const PER: u32 = 250;
    let started = Instant::now();
    let children: Vec<_> = (0..WORKERS)
        .map(|id| {
            worker(
                "writer",
                &file,
                &[
                    ("WORKER_ID", id.to_string()),
                    ("WORKER_COUNT", PER.to_string()),
                ],
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success(), "a worker failed");
    }
    let elapsed = started.elapsed();
    let store = DiskStore::open(&file).expect("reopen");
    assert_eq!(store.len().expect("len"), (WORKERS * PER) as usize);
    for id in 0..WORKERS {
        for n in 0..PER {
            assert_eq!(
                store.get(&key(id, n)).expect("get"),
                Some(entry(id, n, vec![0x5a; 300])),
                "worker {id} entry {n}"
            );
        }
    }
    eprintln!(
        "{} puts (each with 2 gets) from {WORKERS} processes in {elapsed:?}",
        WORKERS * PER
    );
}

#[test]
fn kill_9_during_writes_keeps_every_acknowledged_entry() {
    let dir = TempDir::new("kill9");
    let file = dir.file("cache.db");
    let mut acked_total = 0;
    for round in 0..10u32 {
        let mut child = worker("writer", &file, &[("WORKER_ID", round.to_string())])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut acked = Vec::new();
        // Kill at a different point each round.
        let kill_after = 20 + (round * 37) % 200;
        for line in lines.by_ref() {
            let line = line.expect("line");
            if let Some(n) = line.strip_prefix("ok ") {
                acked.push(n.parse::<u32>().expect("n"));
                if acked.len() as u32 >= kill_after {
                    break;
                }
            }
        }
        child.kill().expect("SIGKILL");
        // Lines printed before the kill were acknowledged too.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("ok ") {
                acked.push(n.parse::<u32>().expect("n"));
            }
        }
        let status = child.wait().expect("wait");
        assert!(!status.success(), "the writer was killed");
        let store = DiskStore::open(&file).expect("the store opens after kill -9");
        for &n in &acked {
            assert_eq!(
                store.get(&key(round, n)).expect("get"),
                Some(entry(round, n, vec![0x5a; 300])),
                "round {round}: acknowledged entry {n} lost"
            );
        }
        acked_total += acked.len();
    }
    let store = DiskStore::open(&file).expect("reopen");
    assert!(store.len().expect("len") >= acked_total);
}

#[test]
fn file_and_wal_are_private() {
    let dir = TempDir::new("perm");
    let file = dir.file("cache.db");
    let store = DiskStore::open(&file).expect("open");
    store.put(&key(0, 0), entry(0, 0, vec![1])).expect("put");
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    let wal = dir.file("cache.db-wal");
    assert!(wal.exists());
    assert_eq!(mode(&wal), 0o600);
    assert_eq!(mode(&dir.file("cache.db-shm")), 0o600);
}

#[test]
fn corrupt_entry_bytes_in_the_file_are_skipped_left_and_replaced() {
    let dir = TempDir::new("corrupt");
    let file = dir.file("cache.db");
    let marker = b"CORRUPT-ME-MARKER-0123456789".to_vec();
    {
        let store = DiskStore::open(&file).expect("open");
        store
            .put(&key(0, 1), entry(0, 1, marker.clone()))
            .expect("put");
        store
            .put(&key(0, 2), entry(0, 2, vec![7; 40]))
            .expect("put");
        // Closing the last connection checkpoints the WAL into the main file.
    }
    let mut bytes = std::fs::read(&file).expect("read");
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker.as_slice())
        .expect("the entry is in the main file");
    bytes[at + 3] ^= 0xff;
    std::fs::write(&file, &bytes).expect("write");

    let store = DiskStore::open(&file).expect("open");
    assert_eq!(
        store.get(&key(0, 1)).expect("a corrupt entry is no error"),
        None
    );
    assert_eq!(store.corrupt_skipped(), 1);
    assert_eq!(
        store.len().expect("len"),
        2,
        "the entry that does not read is left in place"
    );
    assert!(store.get(&key(0, 2)).expect("get").is_some());
    assert_eq!(store.get(&key(0, 1)).expect("get"), None);
    assert_eq!(store.corrupt_skipped(), 1, "counted once");
    store
        .put(&key(0, 1), entry(0, 1, vec![3; 40]))
        .expect("a writer replaces it");
    assert_eq!(
        store.get(&key(0, 1)).expect("get"),
        Some(entry(0, 1, vec![3; 40]))
    );
}

/// An entry in a format this build cannot read (a newer build's, sharing the file during an
/// upgrade) survives every read, on `get` and `get_unexpired`, and its expiry still applies.
#[test]
fn an_entry_in_a_newer_format_survives_reads_and_expires_by_its_time() {
    let dir = TempDir::new("newer");
    let file = dir.file("cache.db");
    let store = DiskStore::open(&file).expect("open");
    let mut newer = entry(0, 1, vec![5; 40]).encode();
    newer[4] = 9; // a codec version this build does not know
    let expires = entry(0, 1, vec![]).expires_at();
    let raw = rusqlite::Connection::open(&file).expect("raw connection");
    raw.execute(
        "INSERT INTO sessions (key, entry, expires_at) VALUES (?1, ?2, ?3)",
        rusqlite::params![
            key(0, 1).as_bytes().as_slice(),
            newer,
            i64::try_from(expires.as_micros()).expect("micros")
        ],
    )
    .expect("insert");
    let before_expiry = expires - Duration::from_secs(1);
    assert_eq!(store.get(&key(0, 1)).expect("get"), None);
    assert_eq!(
        store.get_unexpired(&key(0, 1), before_expiry).expect("get"),
        None
    );
    let left: Vec<u8> = raw
        .query_row(
            "SELECT entry FROM sessions WHERE key = ?1",
            rusqlite::params![key(0, 1).as_bytes().as_slice()],
            |r| r.get(0),
        )
        .expect("still there");
    assert_eq!(left, newer, "left as it was");
    assert_eq!(store.corrupt_skipped(), 1);
    assert_eq!(store.get_unexpired(&key(0, 1), expires).expect("get"), None);
    assert_eq!(store.len().expect("len"), 0, "gone at its expiry");
}

/// Found by the `disk_row` fuzz target: SQLite keeps any type in any column, and a row whose
/// `entry` was a number (or whose expiry was text) made every lookup of its key fail, forever.
/// Such a row does not read: skipped, counted, left; a writer replaces it.
#[test]
fn rows_with_wrong_column_types_are_skipped_left_and_replaced() {
    let dir = TempDir::new("mistyped");
    let file = dir.file("cache.db");
    let store = DiskStore::open(&file).expect("open");
    store
        .put(&key(0, 9), entry(0, 9, vec![1; 16]))
        .expect("put");
    let raw = rusqlite::Connection::open(&file).expect("raw connection");
    let rows: [(u32, rusqlite::types::Value, rusqlite::types::Value); 4] = [
        (1, 0.0.into(), 0i64.into()), // the fuzzer's input: a REAL entry
        (2, "text entry".to_owned().into(), 0i64.into()),
        (3, vec![1u8; 8].into(), "soon".to_owned().into()),
        (4, 7i64.into(), 1.5.into()),
    ];
    for (n, entry, expires_at) in rows {
        raw.execute(
            "INSERT INTO sessions (key, entry, expires_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![key(0, n).as_bytes().as_slice(), entry, expires_at],
        )
        .expect("insert");
    }
    let now = UnixTime::from_secs(T0);
    for n in 1..=4 {
        let lookup = if n % 2 == 0 {
            store.get(&key(0, n))
        } else {
            store.get_unexpired(&key(0, n), now)
        };
        assert_eq!(lookup.expect("a mistyped row is no error"), None, "row {n}");
        assert_eq!(store.get(&key(0, n)).expect("again"), None, "row {n}");
    }
    assert_eq!(store.corrupt_skipped(), 4);
    assert_eq!(
        store.len().expect("len"),
        5,
        "the rows that do not read are left"
    );
    assert!(store.get(&key(0, 9)).expect("get").is_some());
    for n in 1..=4 {
        store
            .put(&key(0, n), entry(0, n, vec![2; 16]))
            .expect("a writer replaces it");
        assert!(store.get(&key(0, n)).expect("get").is_some(), "row {n}");
    }

    // The EHLO table had the same flaw.
    let ehlo = ehlo_key(2525);
    raw.execute(
        "INSERT INTO ehlo (key, entry, stored_at) VALUES (?1, ?2, ?3)",
        rusqlite::params![ehlo.to_string(), 3.25, 0i64],
    )
    .expect("insert");
    assert_eq!(
        store.get_ehlo(&ehlo).expect("a mistyped row is no error"),
        None
    );
    assert_eq!(store.get_ehlo(&ehlo).expect("again"), None);
    assert_eq!(store.corrupt_skipped(), 5);
    assert_eq!(store.ehlo_len().expect("len"), 1, "left");
}

#[test]
fn garbage_truncated_and_foreign_files_are_errors_naming_the_file() {
    let dir = TempDir::new("garbage");
    let garbage = dir.file("garbage.db");
    std::fs::write(&garbage, vec![0x42; 8192]).expect("write");
    let err = DiskStore::open(&garbage).expect_err("garbage");
    eprintln!("garbage: {err}");
    assert!(
        err.to_string().contains(&garbage.display().to_string()),
        "{err}"
    );
    assert!(
        err.to_string().contains("not a tlsresume session cache"),
        "{err}"
    );

    let truncated = dir.file("truncated.db");
    {
        let store = DiskStore::open(&truncated).expect("open");
        for n in 0..200 {
            store
                .put(&key(0, n), entry(0, n, vec![3; 500]))
                .expect("put");
        }
    }
    let len = std::fs::metadata(&truncated).expect("meta").len();
    assert!(len > 8192);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .expect("open");
    f.set_len(len / 3).expect("truncate");
    drop(f);
    // Opening may succeed (the header is intact); then reading fails. Either way the error
    // names the file and nothing panics.
    let result = DiskStore::open(&truncated).and_then(|store| {
        for n in 0..200 {
            store.get(&key(0, n))?;
        }
        store.len()
    });
    let err = result.expect_err("truncated");
    eprintln!("truncated: {err}");
    assert!(
        err.to_string().contains(&truncated.display().to_string()),
        "{err}"
    );

    let short = dir.file("short.db");
    std::fs::write(&short, b"SQLite format 3\0abc").expect("write");
    let err = DiskStore::open(&short).expect_err("short");
    assert!(
        err.to_string().contains(&short.display().to_string()),
        "{err}"
    );

    let foreign = dir.file("foreign.db");
    {
        let conn = rusqlite::Connection::open(&foreign).expect("sqlite");
        conn.execute_batch("CREATE TABLE mail (id INTEGER PRIMARY KEY, body TEXT);")
            .expect("schema");
    }
    let err = DiskStore::open(&foreign).expect_err("foreign");
    eprintln!("foreign: {err}");
    assert!(
        err.to_string().contains(&foreign.display().to_string()),
        "{err}"
    );
    assert!(
        err.to_string().contains("not a tlsresume session cache"),
        "{err}"
    );
    // The foreign database was left alone.
    let conn = rusqlite::Connection::open(&foreign).expect("sqlite");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "delete");
}

#[test]
fn expiry_purge_and_size_bound() {
    let dir = TempDir::new("expiry");
    let file = dir.file("cache.db");
    let store = DiskStore::open_with(&file, &DiskOptions::with_capacity(3)).expect("open");
    let short = |n: u32, hint: u64| {
        let mut updated = entry(0, n, vec![]);
        updated.lifetime_hint = Duration::from_secs(hint);
        updated
    };
    store.put(&key(0, 1), short(1, 10)).expect("put");
    store.put(&key(0, 2), short(2, 1000)).expect("put");
    let t = |s: u64| UnixTime::from_secs(T0 + s);
    // Expired on access: removed and not returned; get() still sees an unexpired one.
    assert!(store
        .get_unexpired(&key(0, 1), t(11))
        .expect("get")
        .is_none());
    assert_eq!(store.len().expect("len"), 1);
    assert!(store
        .get_unexpired(&key(0, 2), t(11))
        .expect("get")
        .is_some());
    // Explicit purge.
    store.put(&key(0, 3), short(3, 10)).expect("put");
    assert_eq!(store.purge(t(100)).expect("purge"), 1);
    assert_eq!(store.len().expect("len"), 1);
    // Size bound: the oldest stored goes first; re-storing makes an entry young again.
    for n in 10..13 {
        store.put(&key(0, n), short(n, 1000)).expect("put");
    }
    assert_eq!(store.len().expect("len"), 3);
    assert!(
        store.get(&key(0, 2)).expect("get").is_none(),
        "oldest evicted"
    );
    store.put(&key(0, 10), short(10, 1000)).expect("put");
    store.put(&key(0, 20), short(20, 1000)).expect("put");
    assert!(store.get(&key(0, 10)).expect("get").is_some());
    assert!(store.get(&key(0, 11)).expect("get").is_none());
    assert_eq!(store.len().expect("len"), 3);
    store.remove(&key(0, 10)).expect("remove");
    assert!(store.get(&key(0, 10)).expect("get").is_none());
}

#[test]
fn many_threads_with_their_own_handles() {
    let dir = TempDir::new("threads");
    let file = dir.file("cache.db");
    DiskStore::open(&file).expect("create");
    std::thread::scope(|s| {
        for id in 0..4u32 {
            let file = file.clone();
            s.spawn(move || {
                let store = DiskStore::open(&file).expect("open");
                for n in 0..50 {
                    store
                        .put(&key(id, n), entry(id, n, vec![1; 64]))
                        .expect("put");
                }
            });
        }
    });
    let store = DiskStore::open(&file).expect("open");
    assert_eq!(store.len().expect("len"), 200);
}

/// Figures for the README: `cargo test --release -p tlsresume-stores --test disk -- --ignored
/// --nocapture throughput`.
#[test]
#[ignore]
fn throughput() {
    let dir = TempDir::new("throughput");
    let file = dir.file("cache.db");
    let store = DiskStore::open(&file).expect("open");
    const N: u32 = 5000;
    let started = Instant::now();
    for n in 0..N {
        store
            .put(&key(0, n), entry(0, n, vec![0x5a; 1000]))
            .expect("put");
    }
    let put = started.elapsed();
    let started = Instant::now();
    for n in 0..N {
        assert!(store.get(&key(0, n)).expect("get").is_some());
    }
    let get = started.elapsed();
    eprintln!(
        "{N} puts of 1 KB sessions: {put:?} ({:.0}/s); {N} gets: {get:?} ({:.0}/s); file {} KB",
        f64::from(N) / put.as_secs_f64(),
        f64::from(N) / get.as_secs_f64(),
        std::fs::metadata(&file)
            .map(|m| m.len() / 1024)
            .unwrap_or(0)
    );
}

fn ehlo_key(port: u16) -> EhloKey {
    EhloKey::new(std::net::SocketAddr::from(([192, 0, 2, 9], port)))
}

fn ehlo_response(auth: &str) -> EhloResponse {
    EhloResponse::parse(&[
        "250-mx.example.net".to_owned(),
        "250-PIPELINING".to_owned(),
        "250-PIPECONNECT".to_owned(),
        format!("250 AUTH {auth}"),
    ])
    .expect("ehlo")
}

#[test]
fn one_file_holds_sessions_and_ehlo_entries() {
    let dir = TempDir::new("ehlo");
    let file = dir.file("cache.db");
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    {
        let store = std::sync::Arc::new(DiskStore::open(&file).expect("open"));
        store.put(&key(0, 1), entry(0, 1, vec![1])).expect("put");
        let cache = EhloCache::new(store.clone(), std::sync::Arc::new(clock.clone()));
        cache
            .record(&ehlo_key(25), Phase::Clear, &ehlo_response("PLAIN"))
            .expect("record");
        assert_eq!(store.ehlo_len().expect("len"), 1);
        assert_eq!(store.len().expect("len"), 1, "sessions are counted apart");
    }
    // Another handle (another process) sees both.
    let store = std::sync::Arc::new(DiskStore::open(&file).expect("reopen"));
    assert!(store.get(&key(0, 1)).expect("get").is_some());
    let got = store.get_ehlo(&ehlo_key(25)).expect("get").expect("stored");
    assert_eq!(got.clear, Some(ehlo_response("PLAIN").view()));
    assert_eq!(got.stored_at, UnixTime::from_secs(T0));
    assert_eq!(store.get_ehlo(&ehlo_key(26)).expect("get"), None);
    // The cache's rules work through the disk store: 7 days later the entry is gone.
    let cache = EhloCache::new(store.clone(), std::sync::Arc::new(clock.clone()));
    clock.advance(tlsresume_smtp::ehlo::DEFAULT_RETRY_DATA_EXPIRE);
    assert!(cache.lookup(&ehlo_key(25)).expect("lookup").is_none());
    assert_eq!(store.ehlo_len().expect("len"), 0, "deleted, not hidden");
    assert!(
        store.get(&key(0, 1)).expect("get").is_some(),
        "sessions untouched"
    );
    store
        .remove_ehlo(&ehlo_key(25))
        .expect("removing nothing is fine");
}

#[test]
fn corrupt_ehlo_rows_are_skipped_deleted_and_rewritten_later() {
    let dir = TempDir::new("ehlo-corrupt");
    let file = dir.file("cache.db");
    let marker = "MARKERMARKERMARKER";
    {
        let store = DiskStore::open(&file).expect("open");
        let mut entry = EhloEntry {
            stored_at: UnixTime::from_secs(T0),
            clear: Some(ehlo_response(marker).view()),
            tls: None,
        };
        store.put_ehlo(&ehlo_key(25), &entry).expect("put");
        entry.clear = Some(ehlo_response("PLAIN").view());
        store.put_ehlo(&ehlo_key(26), &entry).expect("put");
    }
    let mut bytes = std::fs::read(&file).expect("read");
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
        .expect("the entry is in the main file");
    bytes[at + 2] ^= 0x01;
    std::fs::write(&file, &bytes).expect("write");

    let store = DiskStore::open(&file).expect("open");
    assert_eq!(store.get_ehlo(&ehlo_key(25)).expect("no error"), None);
    assert_eq!(store.corrupt_skipped(), 1);
    assert_eq!(
        store.ehlo_len().expect("len"),
        2,
        "the row that does not read is left"
    );
    assert!(store.get_ehlo(&ehlo_key(26)).expect("get").is_some());
    // The next normal EHLO writes a good entry again.
    let store = std::sync::Arc::new(store);
    let cache = EhloCache::new(
        store.clone(),
        std::sync::Arc::new(ManualClock::new(UnixTime::from_secs(T0))),
    );
    cache
        .record(&ehlo_key(25), Phase::Clear, &ehlo_response("PLAIN"))
        .expect("record");
    assert!(store.get_ehlo(&ehlo_key(25)).expect("get").is_some());
    assert_eq!(store.corrupt_skipped(), 1);
}

#[test]
fn a_version_1_file_is_migrated_keeping_its_sessions() {
    let dir = TempDir::new("migrate");
    let file = dir.file("v1.db");
    // A file as the sessions-only schema (version 1) wrote it.
    let session = entry(3, 4, vec![5; 16]);
    {
        let conn = rusqlite::Connection::open(&file).expect("sqlite");
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE sessions (
                 key BLOB PRIMARY KEY NOT NULL,
                 entry BLOB NOT NULL,
                 expires_at INTEGER NOT NULL
             );
             CREATE INDEX sessions_expiry ON sessions (expires_at);
             PRAGMA application_id = 1414288210;
             PRAGMA user_version = 1;",
        )
        .expect("v1 schema");
        let expires = i64::try_from(session.expires_at().as_micros()).expect("fits");
        conn.execute(
            "INSERT INTO sessions (key, entry, expires_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![key(3, 4).as_bytes().as_slice(), session.encode(), expires],
        )
        .expect("insert");
    }
    let store = DiskStore::open(&file).expect("a version 1 file opens");
    assert_eq!(store.get(&key(3, 4)).expect("get"), Some(session));
    let entry = EhloEntry {
        stored_at: UnixTime::from_secs(T0),
        clear: Some(ehlo_response("PLAIN").view()),
        tls: None,
    };
    store
        .put_ehlo(&ehlo_key(25), &entry)
        .expect("the ehlo table exists now");
    drop(store);
    let conn = rusqlite::Connection::open(&file).expect("sqlite");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 2);
    drop(conn);
    // Reopening a migrated file is a no-op.
    let store = DiskStore::open(&file).expect("reopen");
    assert_eq!(store.get_ehlo(&ehlo_key(25)).expect("get"), Some(entry));
    assert_eq!(store.len().expect("len"), 1);
}
