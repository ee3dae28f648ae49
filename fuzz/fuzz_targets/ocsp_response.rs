//! The OCSP staple checker (`tlsresume_rustls::ocsp::check_response`) on any stapled bytes,
//! for the test PKI's leaves and CA, at a clock reading inside their validity.
//!
//! Input: 1 byte picks the leaf (ECDSA or RSA), 4 bytes of clock offset, then the response.
//! Properties: no panic; a response accepted for one leaf is rejected for the other (it names
//! one certificate).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rustls::pki_types::UnixTime;
use tlsresume_core::certificates_from_pem;
use tlsresume_rustls::ocsp::check_response;

/// 2027-01-01: inside the committed test PKI's validity (2026-11-29 to 2046).
const NOW_SECS: u64 = 1_798_761_600;

struct Pki {
    leaves: [Vec<u8>; 2],
    ca: Vec<u8>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let first = |pem: &[u8], what: &str| {
            certificates_from_pem(pem, what)
                .ok()
                .and_then(|mut v| (!v.is_empty()).then(|| v.swap_remove(0)))
                .unwrap_or_default()
        };
        Pki {
            leaves: [
                first(include_bytes!("../../tests/pki/server-ecdsa.pem"), "ecdsa"),
                first(include_bytes!("../../tests/pki/server-rsa.pem"), "rsa"),
            ],
            ca: first(include_bytes!("../../tests/pki/ca.pem"), "ca"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (skew, response) = match rest.split_first_chunk::<4>() {
        Some((head, response)) => (
            u64::from(u32::from_be_bytes(*head)) % (2 * 86_400),
            response,
        ),
        None => (0, rest),
    };
    let pki = pki();
    assert!(!pki.ca.is_empty(), "the test PKI did not load");
    let now = UnixTime::since_unix_epoch(Duration::from_secs(NOW_SECS + skew));
    let leaf = usize::from(pick & 1);
    let issuers: [&[u8]; 1] = [&pki.ca];
    if check_response(response, &pki.leaves[leaf], &issuers, now).is_ok() {
        assert!(
            check_response(response, &pki.leaves[1 - leaf], &issuers, now).is_err(),
            "one response accepted for two leaves"
        );
    }
});
