//! A small file-backed [`SessionStore`] for `probe --cache FILE`: the whole cache lives in one
//! file, read when the probe starts and rewritten atomically (temporary file, then rename) with
//! permissions 0600 on every change.
//!
//! File layout: the magic `TRSC`, a format byte (1), the entry count (u32, big-endian), then per
//! entry the 32-byte [`CacheKey`], the length of the encoded entry (u32, big-endian) and the
//! entry as [`CacheEntry::encode`] writes it (versioned and checksummed). A file that does not
//! parse is an error naming it; nothing is overwritten then.
//!
//! Several processes sharing one file do not lock it: the last writer's map wins. A persistent,
//! shared store is the job of the `tlsresume-stores` crate.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tlsresume::{CacheEntry, CacheKey, Error, SessionStore, StoreError};

const MAGIC: &[u8; 4] = b"TRSC";
const FORMAT: u8 = 1;

/// The session cache in one file; see the module documentation for the format.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    entries: Mutex<BTreeMap<[u8; 32], Vec<u8>>>,
}

impl FileStore {
    /// Opens the cache at `path`: an absent file is an empty cache; a file that is not a valid
    /// cache is an error naming it.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let entries = match fs::read(path) {
            Ok(bytes) => parse(&bytes).map_err(|why| Error::File {
                path: path.display().to_string(),
                why: format!(
                    "not a valid tlsresume session cache ({why}); remove it or name another file"
                ),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(Error::File {
                    path: path.display().to_string(),
                    why: e.to_string(),
                })
            }
        };
        Ok(Self {
            path: path.to_owned(),
            entries: Mutex::new(entries),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<[u8; 32], Vec<u8>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the whole map: to a temporary file beside the cache (mode 0600), synced, then
    /// renamed over it.
    fn save(&self, entries: &BTreeMap<[u8; 32], Vec<u8>>) -> io::Result<()> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(MAGIC);
        bytes.push(FORMAT);
        let count = u32::try_from(entries.len()).map_err(io::Error::other)?;
        bytes.extend_from_slice(&count.to_be_bytes());
        for (key, entry) in entries {
            bytes.extend_from_slice(key);
            let len = u32::try_from(entry.len()).map_err(io::Error::other)?;
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(entry);
        }
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "cache".into());
        let tmp = self
            .path
            .with_file_name(format!(".{name}.tmp{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = (|| {
            let mut file = options.open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }
}

/// Parses a cache file; the error says what is wrong.
fn parse(bytes: &[u8]) -> Result<BTreeMap<[u8; 32], Vec<u8>>, String> {
    let mut rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or("wrong magic")?;
    let (&format, tail) = rest.split_first().ok_or("truncated")?;
    if format != FORMAT {
        return Err(format!("unknown format {format}"));
    }
    rest = tail;
    let count = u32::from_be_bytes(take::<4>(&mut rest)?);
    let mut entries = BTreeMap::new();
    for i in 0..count {
        let key = take::<32>(&mut rest)?;
        let len =
            usize::try_from(u32::from_be_bytes(take::<4>(&mut rest)?)).map_err(|_| "truncated")?;
        if rest.len() < len {
            return Err("truncated".into());
        }
        let (entry, tail) = rest.split_at(len);
        CacheEntry::decode(entry).map_err(|e| format!("entry {i}: {e}"))?;
        entries.insert(key, entry.to_vec());
        rest = tail;
    }
    if !rest.is_empty() {
        return Err("trailing bytes".into());
    }
    Ok(entries)
}

fn take<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], String> {
    if rest.len() < N {
        return Err("truncated".into());
    }
    let (head, tail) = rest.split_at(N);
    *rest = tail;
    head.try_into().map_err(|_| "truncated".into())
}

impl SessionStore for FileStore {
    fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        match self.lock().get(key.as_bytes()) {
            Some(bytes) => Ok(Some(CacheEntry::decode(bytes)?)),
            None => Ok(None),
        }
    }

    fn put(&self, key: &CacheKey, entry: CacheEntry) -> Result<(), StoreError> {
        let mut entries = self.lock();
        entries.insert(*key.as_bytes(), entry.encode());
        Ok(self.save(&entries)?)
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        let mut entries = self.lock();
        if entries.remove(key.as_bytes()).is_some() {
            self.save(&entries)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tlsresume::{BackendKind, OcspStatus, UnixTime, Verification};

    fn entry() -> CacheEntry {
        CacheEntry {
            stored_at: UnixTime::from_secs(1_700_000_000),
            lifetime_hint: Duration::from_secs(7200),
            verify_override: false,
            verification: Verification::Verified,
            ocsp: OcspStatus::NotRequested,
            backend: BackendKind::Openssl,
            protocol: 0x0304,
            session: vec![1, 2, 3],
        }
    }

    #[test]
    fn roundtrips_through_the_file_with_mode_0600_and_rejects_corruption() {
        let dir = std::env::temp_dir().join(format!("tlsresume-filestore-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("cache");
        let _ = fs::remove_file(&path);
        let key = CacheKey::builder(tlsresume::loopback(465)).build();
        let store = FileStore::open(&path).expect("open absent");
        assert_eq!(store.get(&key).expect("get"), None);
        store.put(&key, entry()).expect("put");
        let again = FileStore::open(&path).expect("reopen");
        assert_eq!(again.get(&key).expect("get"), Some(entry()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        again.remove(&key).expect("remove");
        let emptied = FileStore::open(&path).expect("reopen");
        assert_eq!(emptied.get(&key).expect("get"), None);
        fs::write(&path, b"garbage").expect("write");
        let err = FileStore::open(&path).expect_err("corrupt");
        assert!(err.to_string().contains("cache"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
