//! The on-disk client session cache: one SQLite file in WAL mode, shared by many processes.

use core::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use tlsresume_core::notice::{self, Notice};

use crate::unreadable::Unreadable;
use tlsresume_core::{CacheEntry, CacheKey, SessionKey, SessionStore, StoreError, UnixTime};
#[cfg(feature = "ehlo")]
use tlsresume_smtp::ehlo::{EhloEntry, EhloKey, EhloStore};

/// SQLite's `application_id` of a tlsresume session cache ("TLSR").
const APPLICATION_ID: i64 = 0x544c_5352;
/// The schema version this build writes and reads (SQLite's `user_version`). Version 1 held
/// only `sessions`; version 2 adds `ehlo` (early pipelining's EHLO-response cache). A version 1
/// file is migrated in place when opened.
const SCHEMA_VERSION: i64 = 2;
/// The `ehlo` table: one row per server (`EhloKey`'s text, as Exim names its record).
const EHLO_SCHEMA: &str = "CREATE TABLE ehlo (
         key TEXT PRIMARY KEY NOT NULL,
         entry BLOB NOT NULL,
         stored_at INTEGER NOT NULL
     );";
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// How a [`DiskStore`] is opened.
#[derive(Clone, Debug)]
pub struct DiskOptions {
    /// The most entries kept; the oldest stored are evicted first. Default 10 000.
    pub capacity: usize,
    /// How long an operation waits for another process's write lock before failing.
    /// Default 5 s.
    pub busy_timeout: Duration,
    /// `true`: every commit is synced to disk (`synchronous=FULL`), so committed entries also
    /// survive a power loss. `false` (default): `synchronous=NORMAL`, which keeps every
    /// committed entry across a process crash (`kill -9`) and keeps the file consistent across
    /// a power loss, where the last commits may be lost.
    pub full_sync: bool,
}

impl Default for DiskOptions {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            busy_timeout: Duration::from_secs(5),
            full_sync: false,
        }
    }
}

impl DiskOptions {
    /// The default options with another capacity.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }
}

/// A [`SessionStore`] in one file that several processes open and use at once, as an MTA's
/// delivery processes share Exim's hints database.
///
/// The file is an SQLite database in WAL mode (SQLite compiled in, no system library): readers
/// never wait for writers, writers take turns through SQLite's file locks, and every
/// acknowledged [`put`](SessionStore::put) is a committed transaction that survives the
/// process being killed at any point. See the crate's README for why SQLite was chosen.
///
/// - The file is created with mode 0600 (SQLite gives its `-wal` and `-shm` files the same).
/// - Expired entries are removed when met by [`get_unexpired`](SessionStore::get_unexpired),
///   and all at once by [`purge`](Self::purge).
/// - At most [`DiskOptions::capacity`] entries are kept; the least recently stored go first.
/// - An entry whose bytes do not decode, or a row whose columns hold the wrong SQLite types,
///   is reported ([`Notice::UnreadableEntryLeft`]), counted
///   ([`corrupt_skipped`](Self::corrupt_skipped)) and treated as absent, and left in the file:
///   another process sharing it may read it (a newer build's format during an upgrade). It
///   goes when it expires (its expiry column), when the size bound evicts it, or when a
///   session is stored under its key.
///   Notices are `tracing` warnings (stderr when no subscriber takes them), or go to the
///   application's handler ([`notice::set_handler`]).
/// - A write that fails (the disk full, the file or its file system made read-only, the file
///   deleted with its directory) returns the error, which the backends ignore: the handshake
///   goes on and only that session is not kept. One notice when writes start failing
///   ([`Notice::WritesFailing`]) and one when they work again, not one per handshake; the
///   failed writes are counted ([`write_failures`](Self::write_failures)).
/// - A file that is not a tlsresume session cache (garbage, truncated, another program's
///   database) is an error naming the file.
///
/// - The sessions are sealed under a key kept beside the file (`FILE.key`, 32 bytes, made on
///   first open with the file's permissions): every process that opens the file uses the same
///   key, so they resume each other's sessions, and a writer of the file alone cannot forge
///   one. An entry that does not open under it is skipped and left in place.
///
/// With the `ehlo` feature, the same file keeps early pipelining's cached EHLO responses
/// (`tlsresume_smtp::EhloStore`, table `ehlo`). Only session state and EHLO responses are kept here, never ticket keys.
pub struct DiskStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    capacity: u64,
    unreadable: Unreadable,
    /// Failed writes (sessions and EHLO entries) since the store was opened.
    write_failures: AtomicU64,
    /// Whether the last write failed (a warning was given when it started).
    writes_failing: AtomicBool,
    /// The key sealing the sessions in this file, kept beside it.
    session_key: SessionKey,
}

impl DiskStore {
    /// Opens (creating if missing) the cache at `path` with [`DiskOptions::default`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, &DiskOptions::default())
    }

    /// Opens (creating if missing) the cache at `path`.
    pub fn open_with(path: impl AsRef<Path>, options: &DiskOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        create_private(&path)?;
        check_header(&path)?;
        let session_key = session_key_beside(&path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| sql_error(&path, &e))?;
        let store = Self {
            path,
            conn: Mutex::new(conn),
            capacity: u64::try_from(options.capacity.max(1)).unwrap_or(u64::MAX),
            unreadable: Unreadable::default(),
            write_failures: AtomicU64::new(0),
            writes_failing: AtomicBool::new(false),
            session_key,
        };
        store.init(options)?;
        Ok(store)
    }

    fn init(&self, options: &DiskOptions) -> Result<(), StoreError> {
        let mut conn = self.lock();
        conn.busy_timeout(options.busy_timeout)
            .map_err(|e| self.error(&e))?;
        // Processes opening a new file at once race to create the schema and to switch it to
        // WAL; SQLite reports some of those collisions as busy without waiting. Retry them.
        let deadline = Instant::now() + options.busy_timeout;
        loop {
            match self.init_once(&mut conn, options) {
                Ok(()) => return Ok(()),
                Err(Init::Sql(e)) if is_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(Init::Sql(e)) => return Err(self.error(&e)),
                Err(Init::Store(e)) => return Err(e),
            }
        }
    }

    fn init_once(&self, conn: &mut Connection, options: &DiskOptions) -> Result<(), Init> {
        // Refuse another program's database before changing anything in it (one snapshot).
        let tx = conn.transaction()?;
        let app: i64 = tx.pragma_query_value(None, "application_id", |r| r.get(0))?;
        let tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        tx.commit()?;
        if app != 0 && app != APPLICATION_ID {
            return Err(self.foreign("another program's SQLite database").into());
        }
        if app == 0 && tables != 0 {
            return Err(self.foreign("an SQLite database with other tables").into());
        }
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Other(format!(
                "session cache {}: cannot switch to WAL mode (journal mode is {mode})",
                self.path.display()
            ))
            .into());
        }
        let sync = if options.full_sync { "FULL" } else { "NORMAL" };
        conn.pragma_update(None, "synchronous", sync)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let app: i64 = tx.pragma_query_value(None, "application_id", |r| r.get(0))?;
        if app == 0 {
            let tables: i64 =
                tx.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
            if tables != 0 {
                return Err(self.foreign("an SQLite database with other tables").into());
            }
            tx.execute_batch(
                "CREATE TABLE sessions (
                     key BLOB PRIMARY KEY NOT NULL,
                     entry BLOB NOT NULL,
                     expires_at INTEGER NOT NULL
                 );
                 CREATE INDEX sessions_expiry ON sessions (expires_at);",
            )?;
            tx.execute_batch(EHLO_SCHEMA)?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        } else if app != APPLICATION_ID {
            return Err(self.foreign("another program's SQLite database").into());
        } else {
            let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if version == 1 {
                // Written by a build without the EHLO cache: add its table, keep every session.
                tx.execute_batch(EHLO_SCHEMA)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            } else if version != SCHEMA_VERSION {
                return Err(StoreError::Other(format!(
                    "session cache {}: schema version {version} is not supported (this build reads {SCHEMA_VERSION})",
                    self.path.display()
                ))
                .into());
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many entries the file holds (expired ones included until purged).
    pub fn len(&self) -> Result<usize, StoreError> {
        let conn = self.lock();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .map_err(|e| self.error(&e))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Whether the file holds no entry.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Removes every entry expired at `now`; returns how many.
    pub fn purge(&self, now: UnixTime) -> Result<usize, StoreError> {
        let conn = self.lock();
        conn.execute(
            "DELETE FROM sessions WHERE expires_at <= ?1",
            params![micros(now)],
        )
        .map_err(|e| self.error(&e))
    }

    /// How many entries this handle could not read (each counted once while it is unchanged),
    /// skipped and left in the file.
    pub fn corrupt_skipped(&self) -> u64 {
        self.unreadable.count()
    }

    /// How many writes (of sessions or EHLO entries) failed since the store was opened.
    pub fn write_failures(&self) -> u64 {
        self.write_failures.load(Ordering::Relaxed)
    }

    /// Whether the last write failed: the disk is full, the file is read-only, or similar,
    /// and new sessions are not being kept.
    pub fn writes_failing(&self) -> bool {
        self.writes_failing.load(Ordering::Relaxed)
    }

    /// Counts a write's outcome and warns once when writes start failing and once when they
    /// work again.
    fn written(&self, result: Result<(), StoreError>) -> Result<(), StoreError> {
        match &result {
            Ok(()) => {
                if self.writes_failing.swap(false, Ordering::Relaxed) {
                    notice::emit(Notice::WritesWorkAgain {
                        store: self.name(),
                        failed: self.write_failures(),
                    });
                }
            }
            Err(e) => {
                self.write_failures.fetch_add(1, Ordering::Relaxed);
                if !self.writes_failing.swap(true, Ordering::Relaxed) {
                    notice::emit(Notice::WritesFailing {
                        store: self.name(),
                        error: e.to_string(),
                    });
                }
            }
        }
        result
    }

    /// `session cache PATH`, as notices name the store.
    fn name(&self) -> String {
        format!("session cache {}", self.path.display())
    }

    /// Reports an entry met that does not read (and is left in place).
    fn unreadable(&self, entry: String, bytes: &[u8], why: String) {
        self.unreadable.met(self.name(), entry, bytes, why);
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A connection stays usable after a panic elsewhere: SQLite rolls back any open
        // transaction when its guard is dropped.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn error(&self, e: &rusqlite::Error) -> StoreError {
        sql_error(&self.path, e)
    }

    fn foreign(&self, what: &str) -> StoreError {
        StoreError::Other(format!(
            "session cache {}: not a tlsresume session cache ({what})",
            self.path.display()
        ))
    }

    /// A row under `key` whose columns hold types this crate never writes (SQLite keeps any
    /// type in any column: another writer or a damaged file can leave a number or text where
    /// the entry's bytes or its expiry belong). Such a row is unreadable: reported, counted,
    /// absent and left in place like an entry that does not decode; a lookup never fails on
    /// it, and a session stored under its key replaces it.
    fn mistyped(&self, key: &CacheKey, entry: &Value) -> Result<Option<CacheEntry>, StoreError> {
        // Known by its bytes when they are bytes (only the expiry's type is wrong), so a
        // lookup that meets them through `get` counts the same entry.
        let bytes = match entry {
            Value::Blob(bytes) => bytes.as_slice(),
            _ => b"mistyped",
        };
        self.unreadable(
            format!("entry {}", key.to_hex()),
            bytes,
            "a column has the wrong type".into(),
        );
        Ok(None)
    }

    /// Decodes `bytes` stored under `key`; an unreadable entry is reported, counted, absent
    /// and left in place.
    fn decode(&self, key: &CacheKey, bytes: &[u8]) -> Option<CacheEntry> {
        match CacheEntry::decode(bytes) {
            Ok(entry) => Some(entry),
            Err(err) => {
                self.unreadable(format!("entry {}", key.to_hex()), bytes, err.to_string());
                None
            }
        }
    }
}

impl DiskStore {
    fn put_session(&self, key: &CacheKey, entry: &CacheEntry) -> Result<(), StoreError> {
        let bytes = entry.encode();
        let mut conn = self.lock();
        let e = |e: rusqlite::Error| sql_error(&self.path, &e);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e)?;
        // REPLACE deletes the old row and inserts a new one with the next rowid, so rowid order
        // is store order.
        tx.execute(
            "INSERT OR REPLACE INTO sessions (key, entry, expires_at) VALUES (?1, ?2, ?3)",
            params![key.as_bytes().as_slice(), bytes, micros(entry.expires_at())],
        )
        .map_err(e)?;
        let count: i64 = tx
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .map_err(e)?;
        let count = u64::try_from(count).unwrap_or(0);
        if count > self.capacity {
            // Over the bound: drop what has expired by this entry's store time, then the
            // oldest stored.
            let purged = tx
                .execute(
                    "DELETE FROM sessions WHERE expires_at <= ?1",
                    params![micros(entry.stored_at)],
                )
                .map_err(e)?;
            let excess = count
                .saturating_sub(u64::try_from(purged).unwrap_or(0))
                .saturating_sub(self.capacity);
            if excess > 0 {
                tx.execute(
                    "DELETE FROM sessions WHERE rowid IN
                         (SELECT rowid FROM sessions ORDER BY rowid LIMIT ?1)",
                    params![i64::try_from(excess).unwrap_or(i64::MAX)],
                )
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }
}

impl SessionStore for DiskStore {
    fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        let conn = self.lock();
        let entry: Option<Value> = conn
            .query_row(
                "SELECT entry FROM sessions WHERE key = ?1",
                params![key.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.error(&e))?;
        match entry {
            Some(Value::Blob(bytes)) => Ok(self.decode(key, &bytes)),
            Some(other) => self.mistyped(key, &other),
            None => Ok(None),
        }
    }

    fn put(&self, key: &CacheKey, entry: CacheEntry) -> Result<(), StoreError> {
        self.written(self.put_session(key, &entry))
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "DELETE FROM sessions WHERE key = ?1",
            params![key.as_bytes().as_slice()],
        )
        .map_err(|e| self.error(&e))?;
        Ok(())
    }

    fn session_key(&self) -> SessionKey {
        self.session_key.clone()
    }

    fn get_unexpired(
        &self,
        key: &CacheKey,
        now: UnixTime,
    ) -> Result<Option<CacheEntry>, StoreError> {
        let conn = self.lock();
        let row: Option<(Value, Value)> = conn
            .query_row(
                "SELECT entry, expires_at FROM sessions WHERE key = ?1",
                params![key.as_bytes().as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.error(&e))?;
        let (bytes, expires_at) = match row {
            None => return Ok(None),
            Some((Value::Blob(bytes), Value::Integer(expires_at))) => (bytes, expires_at),
            Some((entry, _)) => return self.mistyped(key, &entry),
        };
        if expires_at <= micros(now) {
            conn.execute(
                "DELETE FROM sessions WHERE key = ?1 AND expires_at <= ?2",
                params![key.as_bytes().as_slice(), micros(now)],
            )
            .map_err(|e| self.error(&e))?;
            return Ok(None);
        }
        match self.decode(key, &bytes) {
            Some(entry) if entry.is_expired(now) => {
                conn.execute(
                    "DELETE FROM sessions WHERE key = ?1",
                    params![key.as_bytes().as_slice()],
                )
                .map_err(|e| self.error(&e))?;
                Ok(None)
            }
            other => Ok(other),
        }
    }
}

#[cfg(feature = "ehlo")]
#[cfg_attr(docsrs, doc(cfg(feature = "ehlo")))]
/// EHLO entries live in the same file as sessions (table `ehlo`), so one cache file serves a
/// client's resumption and its early pipelining. The size bound applies to this table on its
/// own; expiry is [`tlsresume_smtp::EhloCache`]'s decision, not the store's. A row that does
/// not decode (or whose entry column is not a BLOB) is reported, counted in
/// [`DiskStore::corrupt_skipped`], treated as absent and left in place (another process may
/// read it); the size bound evicts it, or the next EHLO entry stored for its server replaces
/// it.
impl EhloStore for DiskStore {
    fn get_ehlo(&self, key: &EhloKey) -> Result<Option<EhloEntry>, StoreError> {
        let conn = self.lock();
        let name = key.to_string();
        let entry: Option<Value> = conn
            .query_row(
                "SELECT entry FROM ehlo WHERE key = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.error(&e))?;
        let bytes = match entry {
            None => return Ok(None),
            Some(Value::Blob(bytes)) => bytes,
            Some(_) => {
                // Another type where the bytes belong: unreadable, as below.
                self.unreadable(
                    format!("EHLO entry {name}"),
                    b"mistyped",
                    "the entry column has the wrong type".into(),
                );
                return Ok(None);
            }
        };
        match EhloEntry::decode(&bytes) {
            Ok(entry) => Ok(Some(entry)),
            Err(err) => {
                self.unreadable(format!("EHLO entry {name}"), &bytes, err.to_string());
                Ok(None)
            }
        }
    }

    fn put_ehlo(&self, key: &EhloKey, entry: &EhloEntry) -> Result<(), StoreError> {
        self.written(self.put_ehlo_row(key, entry))
    }

    fn remove_ehlo(&self, key: &EhloKey) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute("DELETE FROM ehlo WHERE key = ?1", params![key.to_string()])
            .map_err(|e| self.error(&e))?;
        Ok(())
    }
}

#[cfg(feature = "ehlo")]
#[cfg_attr(docsrs, doc(cfg(feature = "ehlo")))]
impl DiskStore {
    fn put_ehlo_row(&self, key: &EhloKey, entry: &EhloEntry) -> Result<(), StoreError> {
        let bytes = entry.encode();
        let mut conn = self.lock();
        let e = |e: rusqlite::Error| sql_error(&self.path, &e);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e)?;
        tx.execute(
            "INSERT OR REPLACE INTO ehlo (key, entry, stored_at) VALUES (?1, ?2, ?3)",
            params![key.to_string(), bytes, micros(entry.stored_at)],
        )
        .map_err(e)?;
        let count: i64 = tx
            .query_row("SELECT count(*) FROM ehlo", [], |r| r.get(0))
            .map_err(e)?;
        let excess = u64::try_from(count)
            .unwrap_or(0)
            .saturating_sub(self.capacity);
        if excess > 0 {
            tx.execute(
                "DELETE FROM ehlo WHERE rowid IN (SELECT rowid FROM ehlo ORDER BY rowid LIMIT ?1)",
                params![i64::try_from(excess).unwrap_or(i64::MAX)],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// How many EHLO entries the file holds.
    pub fn ehlo_len(&self) -> Result<usize, StoreError> {
        let conn = self.lock();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM ehlo", [], |r| r.get(0))
            .map_err(|e| self.error(&e))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

impl fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskStore")
            .field("path", &self.path)
            .field("capacity", &self.capacity)
            .field("corrupt_skipped", &self.corrupt_skipped())
            .field("write_failures", &self.write_failures())
            .finish()
    }
}

/// A failure while opening: SQLite's (some retried) or ours.
enum Init {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Init {
    fn from(e: rusqlite::Error) -> Self {
        Init::Sql(e)
    }
}

impl From<StoreError> for Init {
    fn from(e: StoreError) -> Self {
        Init::Store(e)
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked)
    )
}

/// Times are kept as signed microseconds (SQLite integers are i64).
fn micros(t: UnixTime) -> i64 {
    i64::try_from(t.as_micros()).unwrap_or(i64::MAX)
}

fn io_error(path: &Path, what: &str, e: &io::Error) -> StoreError {
    StoreError::Io(io::Error::new(
        e.kind(),
        format!("session cache {}: {what}: {e}", path.display()),
    ))
}

/// The session key of the cache at `cache`, kept in `cache.key` (32 bytes, made on first use
/// with the cache file's permissions): the processes sharing a cache file share the key.
fn session_key_beside(cache: &Path) -> Result<SessionKey, StoreError> {
    use std::io::Write as _;
    let mut name = cache.as_os_str().to_owned();
    name.push(".key");
    let path = PathBuf::from(name);
    // At most one byte more than a key: a file of any other size is refused, never read whole.
    let read = fs::File::open(&path).and_then(|file| {
        let mut bytes = Vec::with_capacity(33);
        file.take(33).read_to_end(&mut bytes).map(|_| bytes)
    });
    match read {
        Ok(bytes) => {
            let held = match bytes.len() {
                33 => "more than 32 bytes".to_owned(),
                n => format!("{n} bytes"),
            };
            let bytes = zeroize::Zeroizing::new(bytes);
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                StoreError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "session key {}: holds {held}, a session key is 32 (remove it \
                         and the cache's sessions give full handshakes once)",
                        path.display()
                    ),
                ))
            })?;
            return Ok(SessionKey::from_bytes(key));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&path, "cannot read the session key", &e)),
    }
    let mode = fs::metadata(cache)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o600);
    let key = SessionKey::random().map_err(|e| StoreError::Other(e.to_string()))?;
    // Written whole under a private name, then linked into place: a concurrent opener sees no
    // file or the whole key, never a part of it.
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(key.as_bytes())?;
            file.set_permissions(fs::Permissions::from_mode(mode))
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(&path, "cannot write the session key", &e));
    }
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        // Another process made it first: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => session_key_beside(cache),
        Err(e) => Err(io_error(&path, "cannot create the session key", &e)),
    }
}

/// Creates the file with mode 0600 if it does not exist (never widening an existing file).
fn create_private(path: &Path) -> Result<(), StoreError> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => {
            // The umask may only have removed bits; make the mode exact.
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|e| io_error(path, "cannot set permissions", &e))?;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_error(path, "cannot create", &e)),
    }
}

/// Rejects a file that is neither empty (just created) nor an SQLite database, with a message
/// naming it, before SQLite sees it.
fn check_header(path: &Path) -> Result<(), StoreError> {
    let mut file = fs::File::open(path).map_err(|e| io_error(path, "cannot open", &e))?;
    let mut header = [0u8; 100];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(path, "cannot read", &e)),
        }
    }
    if read == 0 {
        return Ok(());
    }
    if read < header.len() || &header[..16] != SQLITE_MAGIC {
        return Err(StoreError::Other(format!(
            "session cache {}: not a tlsresume session cache (not an SQLite database, or truncated)",
            path.display()
        )));
    }
    Ok(())
}

fn sql_error(path: &Path, e: &rusqlite::Error) -> StoreError {
    let hint = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
            " (the file is corrupt or not a tlsresume session cache; remove it to start afresh)"
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            " (another process held the lock past the busy timeout)"
        }
        Some(ErrorCode::DiskFull) => " (the disk is full)",
        Some(ErrorCode::ReadOnly) => " (the file or its file system is read-only)",
        Some(ErrorCode::CannotOpen) => {
            " (cannot open it for reading and writing: a read-only file system, or permissions)"
        }
        _ => "",
    };
    StoreError::Other(format!("session cache {}: {e}{hint}", path.display()))
}
