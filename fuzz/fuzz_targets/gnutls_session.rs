//! The GnuTLS client's stored-session open and import: `open_session_data` on a cache entry's
//! session field as stored (under the client's session key, which a writer of the cache does
//! not have), then, when it opens, `gnutls_session_set_data` as the backend does before a
//! handshake. Properties: no crash, no leak; forged fields never open.
//!
//! GnuTLS data behind a valid tag (what only a holder of the key can make) is the
//! `gnutls_set_data` target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsresume_gnutls::open_session_data;

fuzz_target!(|data: &[u8]| {
    if let Some(inner) = open_session_data(&tlsresume_fuzz::session_key(), data) {
        std::hint::black_box(tlsresume_fuzz::ffi::gnutls_import(inner));
    }
});
