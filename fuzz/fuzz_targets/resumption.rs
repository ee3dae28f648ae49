//! `Resumption::parse_value`: the `$tls_*_resumption` value as `tlsresume decode` reads it.
//!
//! Properties: no panic; a value that parses is at most 0x1f, and its hex and decimal forms
//! parse back to it; its description and display never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsresume_core::Resumption;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(bits) = Resumption::parse_value(&text) else {
        return;
    };
    assert!(bits.bits() <= 0x1f);
    assert_eq!(
        Resumption::parse_value(&format!("{:#04x}", bits.bits())),
        Ok(bits)
    );
    assert_eq!(Resumption::parse_value(&bits.bits().to_string()), Ok(bits));
    let _ = bits.describe();
    let shown = bits.to_string();
    assert!(shown.starts_with("0x"), "{shown}");
});
