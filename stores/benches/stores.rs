//! The session stores at 100 000 entries: get and put, and bytes per entry, for the in-memory
//! store and the on-disk store side by side.
//!
//! `cargo bench -p tlsresume-stores --bench stores`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tlsresume_core::{
    BackendKind, CacheEntry, CacheKey, MemoryStore, OcspStatus, SessionStore, UnixTime,
    Verification,
};
use tlsresume_stores::{DiskOptions, DiskStore};

const N: u64 = 100_000;
/// A typical serialised TLS 1.3 session with an ECDSA chain.
const SESSION_BYTES: usize = 1200;

fn key(i: u64) -> CacheKey {
    let peer = std::net::SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 25));
    CacheKey::builder(peer).build()
}

fn entry(i: u64) -> CacheEntry {
    {
        let mut entry = CacheEntry::new(
            BackendKind::Openssl,
            0x0304,
            vec![0x5a; SESSION_BYTES],
            UnixTime::from_secs(1_700_000_000 + i),
            Duration::from_secs(7200),
        );
        entry.verify_override = false;
        entry.verification = Verification::Verified;
        entry.ocsp = OcspStatus::NotRequested;
        entry
    }
}

/// Resident memory of this process, from /proc (Linux), in bytes.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn stores(c: &mut Criterion) {
    let keys: Vec<CacheKey> = (0..N).map(key).collect();

    let before = resident_bytes();
    let memory = MemoryStore::new(N as usize);
    for (i, k) in keys.iter().enumerate() {
        memory.put(k, entry(i as u64)).expect("put");
    }
    if let (Some(b), Some(a)) = (before, resident_bytes()) {
        eprintln!(
            "memory store: {} bytes per entry ({} B of session state each)",
            a.saturating_sub(b) / N,
            SESSION_BYTES
        );
    }

    let dir = std::env::temp_dir().join(format!("tlsresume-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("sessions.db");
    let disk = DiskStore::open_with(&path, &DiskOptions::with_capacity(N as usize)).expect("open");
    for (i, k) in keys.iter().enumerate() {
        disk.put(k, entry(i as u64)).expect("put");
    }
    let file_bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
        .map(|m| m.len())
        .sum();
    eprintln!(
        "disk store: {} bytes per entry on disk ({} B of session state each)",
        file_bytes / N,
        SESSION_BYTES
    );

    let mut group = c.benchmark_group("store at 100k entries");
    group.measurement_time(Duration::from_secs(3));
    let mut i = 0usize;
    group.bench_function("memory get", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(memory.get(&keys[i]).expect("get"))
        })
    });
    group.bench_function("disk get", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(disk.get(&keys[i]).expect("get"))
        })
    });
    let mut j = 0u64;
    group.bench_function("memory put", |b| {
        b.iter(|| {
            j += 1;
            memory.put(&keys[(j % N) as usize], entry(j)).expect("put")
        })
    });
    group.bench_function("disk put", |b| {
        b.iter(|| {
            j += 1;
            disk.put(&keys[(j % N) as usize], entry(j)).expect("put")
        })
    });
    group.finish();
    drop(disk);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, stores);
criterion_main!(benches);
