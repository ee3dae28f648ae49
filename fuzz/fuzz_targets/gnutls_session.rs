//! The GnuTLS client's stored-session open and import: `SessionKey::open_session` on a cache entry's
//! cache key and session field as stored (under the client's session key, which a writer of the cache does
//! not have), then, when it opens, `gnutls_session_set_data` as the backend does before a
//! handshake. Properties: no crash, no leak; forged fields never open.
//!
//! GnuTLS data behind a valid tag (what only a holder of the key can make) is the
//! `gnutls_set_data` target.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The cache key the entry is stored under (32 bytes: the seal binds it), then the entry's
    // session field.
    let Some((key, session)) = data.split_first_chunk::<32>() else {
        return;
    };
    let key = tlsresume_core::CacheKey::from_bytes(*key);
    if let Some(inner) = tlsresume_fuzz::session_key().open_session("gnutls", &key, session) {
        std::hint::black_box(tlsresume_fuzz::ffi::gnutls_import(inner));
    }
});
