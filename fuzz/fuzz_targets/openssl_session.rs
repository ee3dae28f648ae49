//! The OpenSSL client's stored-session import: a cache entry's session bytes through
//! `d2i_SSL_SESSION` and `SSL_set_session`, as the backend loads them before a handshake.
//!
//! The entry is already past the codec's checksum, which anyone able to write the cache can
//! compute: these bytes are as untrusted as the cache. Property: no crash, no leak.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    std::hint::black_box(tlsresume_fuzz::ffi::openssl_import(data));
});
