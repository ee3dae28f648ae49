//! `exim_cipher_from_gnutls_desc`: GnuTLS's session description turned into Exim's cipher
//! string, on any text (a newer GnuTLS may describe sessions differently).
//!
//! Input: 4 bytes of key bits, the rest the description. Properties: no panic; the result ends
//! with `:<bits>`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsresume_core::info::exim_cipher_from_gnutls_desc;

fuzz_target!(|data: &[u8]| {
    let Some((bits, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let bits = u32::from_be_bytes(*bits);
    let desc = String::from_utf8_lossy(rest);
    let out = exim_cipher_from_gnutls_desc(&desc, bits);
    assert!(out.ends_with(&format!(":{bits}")), "{out:?}");
});
