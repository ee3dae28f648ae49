//! Core hot paths: the lifecycle decision, ticket seal + open, and the in-memory store.
//!
//! `cargo bench -p tlsresume-core`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tlsresume_core::keys::key_ring::{KeyRing, TicketLifecycle};
use tlsresume_core::keys::seal::TicketSealer;
use tlsresume_core::*;

const T0: UnixTime = UnixTime::from_secs(1_700_000_000);

/// A ring holding `keys` keys (current + previous), each rotation one minute apart.
fn ring_with(keys: u32) -> Arc<KeyRing> {
    let policy = TicketPolicy::rolling(
        Duration::from_secs(60),
        keys - 1,
        Duration::from_secs(7200),
        Some(Duration::from_secs(3600)),
    )
    .expect("policy");
    let ring = Arc::new(KeyRing::new(policy, Arc::new(ProcessKeySource::new())));
    for i in 0..u64::from(keys) {
        let _ = ring.encrypting_key(T0 + Duration::from_secs(60 * i));
    }
    ring
}

fn lifecycle(c: &mut Criterion) {
    for keys in [2, 10] {
        let ring = ring_with(keys);
        let now = T0 + Duration::from_secs(60 * u64::from(keys - 1) + 30);
        // The oldest key: the worst case of the name search.
        let names = ring.key_names(now);
        let oldest = *names.last().expect("keys");
        c.bench_function(&format!("lifecycle decide ({keys} keys)"), |b| {
            b.iter(|| black_box(ring.decide(black_box(&oldest), T0, now)))
        });
        let sealer = TicketSealer::new(ring.clone());
        let state = [0x42u8; 512];
        let ticket = sealer.seal(&state, now).expect("seal");
        c.bench_function(&format!("ticket open 512 B ({keys} keys)"), |b| {
            b.iter(|| black_box(sealer.open(black_box(&ticket), now).is_ok()))
        });
    }
    let sealer = TicketSealer::new(ring_with(2));
    let state = [0x42u8; 512];
    c.bench_function("ticket seal + open 512 B", |b| {
        b.iter(|| {
            let ticket = sealer.seal(black_box(&state), T0).expect("seal");
            black_box(sealer.open(&ticket, T0).is_ok())
        })
    });
}

fn entry(i: u64) -> CacheEntry {
    {
        let mut entry = CacheEntry::new(
            BackendKind::Openssl,
            0x0304,
            vec![0x5a; 1200],
            T0 + Duration::from_secs(i),
            Duration::from_secs(7200),
        );
        entry.verify_override = false;
        entry.verification = Verification::Verified;
        entry.ocsp = OcspStatus::NotRequested;
        entry
    }
}

fn key(i: u64) -> CacheKey {
    let peer = std::net::SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 25));
    CacheKey::builder(peer).build()
}

fn store(c: &mut Criterion) {
    const N: u64 = 100_000;
    let store = MemoryStore::new(N as usize);
    let keys: Vec<CacheKey> = (0..N).map(key).collect();
    for (i, k) in keys.iter().enumerate() {
        store.put(k, entry(i as u64)).expect("put");
    }
    let mut i = 0usize;
    c.bench_function("memory store get (100k entries)", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(store.get(&keys[i]).expect("get"))
        })
    });
    let mut j = 0u64;
    c.bench_function("memory store put (100k entries, evicting)", |b| {
        b.iter_batched(
            || {
                j += 1;
                (key(N + j), entry(j))
            },
            |(k, e)| store.put(&k, e).expect("put"),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("cache key build", |b| {
        let peer = "192.0.2.1:25".parse().expect("addr");
        b.iter(|| {
            black_box(
                CacheKey::builder(peer)
                    .sni("mx.example.net")
                    .lb_name("mx1.example.net")
                    .options("openssl")
                    .build(),
            )
        })
    });
}

criterion_group!(benches, lifecycle, store);
criterion_main!(benches);
