//! The GnuTLS client's stored-session open and import: `SessionKey::open_session` on a cache entry's
//! session field as stored (under the client's session key, which a writer of the cache does
//! not have), then, when it opens, `gnutls_session_set_data` as the backend does before a
//! handshake. Properties: no crash, no leak; forged fields never open.
//!
//! GnuTLS data behind a valid tag (what only a holder of the key can make) is the
//! `gnutls_set_data` target.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(inner) = tlsresume_fuzz::session_key().open_session("gnutls", data) {
        std::hint::black_box(tlsresume_fuzz::ffi::gnutls_import(inner));
    }
});
