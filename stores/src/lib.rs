//! # tlsresume-stores
//!
//! Stores that outlive a process for tlsresume:
//!
//! - [`DiskStore`]: the default persistent client session cache, one SQLite file (compiled
//!   in, WAL mode) that many processes read and write at once, as an MTA's delivery processes
//!   share Exim's hints database, and that survives `kill -9` at any point with every
//!   committed entry. Why SQLite: see the crate's `README.md`.
//! - [`RedisKeySource`]: session-ticket keys shared by a fleet of servers, so a client resumes
//!   on any node; keys are wrapped under a [`Kek`] and cached in process.
//! - [`RedisStore`]: a client session cache shared by a fleet of clients, expired by Redis.
//!
//! | feature | default | what |
//! |---|---|---|
//! | `disk` | yes | [`DiskStore`] (builds SQLite from source through `rusqlite`'s `bundled`) |
//! | `redis` | yes | [`RedisKeySource`], [`RedisStore`], [`Kek`], [`RedisConfig`] (`redis` crate, sync API; one server, the master Sentinels name: `redis+sentinel://`, or a Redis Cluster: `redis+cluster://`) |
//! | `redis-tls` | no | `rediss://` URLs: TLS to Redis (the `redis` crate's rustls support, ring provider) |
//!
//! ## TLS to Redis (`rediss://`, feature `redis-tls`)
//!
//! `RedisConfig::new("rediss://[user][:password@]host:port[/db]")` speaks TLS to Redis. The
//! server's certificate is verified against the system's trust store (read with
//! `rustls-native-certs`) and must be valid for the URL's host (a name or an IP address), or,
//! with [`RedisConfig::tls_ca_pem`], against a private CA's certificates instead. Unverified TLS
//! (the redis crate's `#insecure` URL fragment) is refused; client certificates (Redis
//! `tls-auth-clients yes`) are not supported. The TLS handshake counts against the connect
//! timeout. Without the feature a `rediss://` URL is an error naming the feature. rustls needs
//! a process-wide crypto provider: unless the application installed one, ring's is installed
//! when the first `rediss://` configuration is opened.
//!
//! ```
//! # #[cfg(feature = "disk")] {
//! use std::time::Duration;
//! use tlsresume_core::*;
//! use tlsresume_stores::DiskStore;
//!
//! let dir = std::env::temp_dir().join(format!("tlsresume-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let store = DiskStore::open(dir.join("sessions.db"))?;
//! let key = CacheKey::builder("192.0.2.1:25".parse().unwrap()).build();
//! let t0 = UnixTime::from_secs(1_700_000_000);
//! let mut entry = CacheEntry::new(
//!     BackendKind::Rustls,
//!     0x0304,
//!     vec![1, 2, 3],
//!     t0,
//!     Duration::from_secs(7200),
//! );
//! entry.verification = Verification::Verified;
//! store.put(&key, entry)?;
//! // Another process opening the same file sees the entry.
//! let other = DiskStore::open(dir.join("sessions.db"))?;
//! assert!(other.get_unexpired(&key, t0 + Duration::from_secs(60))?.is_some());
//! assert!(other.get_unexpired(&key, t0 + Duration::from_secs(7200))?.is_none());
//! # drop((store, other));
//! # std::fs::remove_dir_all(&dir)?;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A fleet of servers sharing ticket keys (needs a Redis server):
//!
//! ```no_run
//! # #[cfg(feature = "redis")] {
//! use std::sync::Arc;
//! use tlsresume_core::{TicketPolicy};
//! use tlsresume_core::keys::key_ring::{KeyRing};
//! use tlsresume_stores::{Kek, RedisConfig, RedisKeySource};
//!
//! let policy = TicketPolicy::OPENSSL;
//! let kek = Kek::from_file("/etc/tlsresume/kek")?; // 64 hex digits, mode 0600
//! let source = RedisKeySource::new(RedisConfig::new("redis://10.0.0.5:6379"), kek, &policy)?;
//! let ring = KeyRing::new(policy, Arc::new(source));
//! # let _ = ring;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "redis")]
mod cluster;
#[cfg(feature = "disk")]
mod disk;
#[cfg(feature = "redis")]
mod kek;
#[cfg(feature = "redis")]
mod link;
#[cfg(feature = "redis")]
mod redis_keys;
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(any(feature = "disk", feature = "redis"))]
mod unreadable;

#[cfg(feature = "disk")]
#[cfg_attr(docsrs, doc(cfg(feature = "disk")))]
pub use disk::{DiskOptions, DiskStore};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use kek::{Kek, KekError};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use link::RedisConfig;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_keys::{KeySourceStats, RedisKeySource};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_store::RedisStore;
