//! GnuTLS session data behind a valid tag: what only a holder of the client's session key can
//! make (since the tag is keyed), reaching `gnutls_session_set_data`. Properties: sealed data
//! opens to itself; GnuTLS neither crashes nor leaks.
//!
//! Known crash (GnuTLS 3.7.9): `regressions/gnutls_set_data/segv-huge-calloc` makes
//! `gnutls_session_set_data` ask for a 47 GB block and dereference the NULL it gets back
//! (SIGSEGV). `fuzz/run` leaves this target out unless it is named; see docs/reliability.md.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = tlsresume_fuzz::session_key();
    let place = tlsresume_core::CacheKey::from_bytes([0xc4; 32]);
    let mut entry = tlsresume_core::CacheEntry::new(
        tlsresume_core::BackendKind::Gnutls,
        0x0303,
        Vec::new(),
        tlsresume_core::UnixTime::from_secs(1_700_000_000),
        std::time::Duration::from_secs(7200),
    );
    entry.session = key.seal_session("gnutls", &place, &entry, data);
    let inner = key
        .open_session("gnutls", &place, &entry)
        .expect("sealed data opens");
    assert_eq!(inner, data);
    std::hint::black_box(tlsresume_fuzz::ffi::gnutls_import(inner));
});
