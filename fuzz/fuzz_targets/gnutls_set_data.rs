//! GnuTLS session data as a writer of the cache can forge it: `seal_session_data`'s digest
//! is unkeyed, so any bytes wrapped with it pass `open_session_data` and reach
//! `gnutls_session_set_data`. Properties: sealed data opens to itself; GnuTLS neither crashes
//! nor leaks.
//!
//! Known crash (GnuTLS 3.7.9): `regressions/gnutls_set_data/segv-huge-calloc` makes
//! `gnutls_session_set_data` ask for a 47 GB block and dereference the NULL it gets back
//! (SIGSEGV). `fuzz/run` leaves this target out unless it is named; see docs/reliability.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsresume_gnutls::{open_session_data, seal_session_data};

fuzz_target!(|data: &[u8]| {
    let sealed = seal_session_data(data);
    let inner = open_session_data(&sealed).expect("sealed data opens");
    assert_eq!(inner, data);
    std::hint::black_box(tlsresume_fuzz::ffi::gnutls_import(inner));
});
