//! The GnuTLS client's stored-session open and import: `SessionKey::open_session` on a cache
//! entry as stored, under its cache key (under the client's session key, which a writer of the
//! cache does not have; the seal covers the cache key and every field of the entry), then, when
//! it opens, `gnutls_session_set_data` as the backend does before a handshake. Properties: no
//! crash, no leak; forged fields never open.
//!
//! GnuTLS data behind a valid tag (what only a holder of the key can make) is the
//! `gnutls_set_data` target.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The cache key the entry is stored under (32 bytes: the seal binds it), then the entry as
    // the store keeps it (the seal binds its other fields too).
    let Some((key, stored)) = data.split_first_chunk::<32>() else {
        return;
    };
    let key = tlsresume_core::CacheKey::from_bytes(*key);
    let Ok(entry) = tlsresume_core::CacheEntry::decode(stored) else {
        return;
    };
    if let Some(inner) = tlsresume_fuzz::session_key().open_session("gnutls", &key, &entry) {
        std::hint::black_box(tlsresume_fuzz::ffi::gnutls_import(inner));
    }
});
