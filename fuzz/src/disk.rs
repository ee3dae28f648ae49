//! A real on-disk session cache (sessions and EHLO entries) and a second, raw SQLite connection to the same file that
//! writes whatever row a fuzz input describes, as a damaged disk, another program or an attacker
//! with write access to the file would.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use rusqlite::types::Value;
use rusqlite::{params, Connection};
use tlsresume_core::{CacheKey};
use tlsresume_smtp::ehlo::{EhloKey};
use tlsresume_stores::DiskStore;

/// The store under test and the raw writer.
#[derive(Debug)]
pub struct DiskFixture {
    /// The cache as the library opens it.
    pub store: DiskStore,
    /// Another connection to the same file, for writing garbage rows.
    pub raw: Mutex<Connection>,
}

/// The key every garbage row is written under (one row at a time keeps each input independent).
pub const KEY: [u8; 32] = [0x42; 32];

/// The cache key of [`KEY`].
pub fn key() -> CacheKey {
    CacheKey::from_bytes(KEY)
}

/// The EHLO-cache key every garbage EHLO row is written under.
pub fn ehlo_key() -> EhloKey {
    EhloKey::new(std::net::SocketAddr::from(([192, 0, 2, 25], 25)))
}

/// Opens the fixture once per process: a fresh file in `/dev/shm` when it exists (no disk
/// writes at fuzzing speed), else in the temporary directory.
pub fn fixture() -> Option<&'static DiskFixture> {
    static FIXTURE: OnceLock<Option<DiskFixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let base = if std::path::Path::new("/dev/shm").is_dir() {
                PathBuf::from("/dev/shm")
            } else {
                std::env::temp_dir()
            };
            let path = base.join(format!("tlsresume-fuzz-{}.sqlite", std::process::id()));
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
            // Every garbage row the target writes makes the store send a notice (a corrupt
            // entry skipped and removed): its normal answer, which on stderr would be most of
            // the run's work and gigabytes of log.
            tlsresume_core::notice::set_handler(|_| {});
            let store = DiskStore::open(&path).ok()?;
            let raw = Connection::open(&path).ok()?;
            raw.busy_timeout(std::time::Duration::from_secs(5)).ok()?;
            Some(DiskFixture {
                store,
                raw: Mutex::new(raw),
            })
        })
        .as_ref()
}

/// A column value of the type a selector picks: the schema declares BLOB and INTEGER, but
/// SQLite stores any type in any column, so a damaged or foreign writer can leave any.
pub fn value(selector: u8, bytes: &[u8], integer: i64) -> Value {
    match selector % 5 {
        0 => Value::Blob(bytes.to_vec()),
        1 => Value::Integer(integer),
        2 => Value::Text(String::from_utf8_lossy(bytes).into_owned()),
        3 => Value::Real(integer as f64),
        _ => Value::Null,
    }
}

impl DiskFixture {
    /// Replaces the row under [`KEY`]; `false` when SQLite refuses it (a NULL in a NOT NULL
    /// column), which is not the code under test.
    pub fn write_row(&self, entry: Value, expires_at: Value) -> bool {
        let raw = self.raw.lock().unwrap_or_else(|p| p.into_inner());
        raw.execute(
            "INSERT OR REPLACE INTO sessions (key, entry, expires_at) VALUES (?1, ?2, ?3)",
            params![KEY.as_slice(), entry, expires_at],
        )
        .is_ok()
    }

    /// Replaces the EHLO row under [`ehlo_key`]; `false` when SQLite refuses it.
    pub fn write_ehlo_row(&self, entry: Value, stored_at: Value) -> bool {
        let raw = self.raw.lock().unwrap_or_else(|p| p.into_inner());
        raw.execute(
            "INSERT OR REPLACE INTO ehlo (key, entry, stored_at) VALUES (?1, ?2, ?3)",
            params![ehlo_key().to_string(), entry, stored_at],
        )
        .is_ok()
    }

    /// Whether an EHLO row under [`ehlo_key`] is left.
    pub fn ehlo_row_present(&self) -> bool {
        let raw = self.raw.lock().unwrap_or_else(|p| p.into_inner());
        raw.query_row(
            "SELECT count(*) FROM ehlo WHERE key = ?1",
            params![ehlo_key().to_string()],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .unwrap_or(false)
    }

    /// Whether a row under [`KEY`] is left.
    pub fn row_present(&self) -> bool {
        let raw = self.raw.lock().unwrap_or_else(|p| p.into_inner());
        raw.query_row(
            "SELECT count(*) FROM sessions WHERE key = ?1",
            params![KEY.as_slice()],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .unwrap_or(false)
    }
}
