//! The GnuTLS client's stored-session open and import: `open_session_data` on a cache entry's
//! session bytes, then `gnutls_session_set_data` as the backend does before a handshake.
//!
//! Input: 1 mode byte, then bytes. Mode even: the bytes are the entry's session field as
//! stored (checked by `open_session_data`). Mode odd: the bytes are GnuTLS session data that a
//! writer of the cache wrapped with `seal_session_data` (its digest is unkeyed, so anyone who
//! can write the cache can make it match): this reaches GnuTLS's session unpacking.
//! Properties: no crash, no leak; sealed data always opens to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsresume_gnutls::{open_session_data, seal_session_data};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Some(inner) = open_session_data(rest) {
            std::hint::black_box(tlsresume_fuzz::ffi::gnutls_import(inner));
        }
    } else {
        let sealed = seal_session_data(rest);
        let inner = open_session_data(&sealed).expect("sealed data opens");
        assert_eq!(inner, rest);
        std::hint::black_box(tlsresume_fuzz::ffi::gnutls_import(inner));
    }
});
