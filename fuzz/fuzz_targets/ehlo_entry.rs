//! The EHLO-cache codec (`EhloEntry::decode`) on any stored bytes (disk file, Redis).
//!
//! Input: 1 mode byte, then the bytes; mode odd fixes up the (unkeyed) checksum first, as in
//! `cache_entry`, to reach the fields. Properties: no panic; what decodes re-encodes to the same
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsresume_smtp::ehlo::EhloEntry;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 {
        tlsresume_fuzz::fix_checksum(&mut bytes);
    }
    if let Ok(entry) = EhloEntry::decode(&bytes) {
        assert_eq!(entry.encode(), bytes, "decode is not the inverse of encode");
        let _ = entry.permits_early(tlsresume_smtp::ehlo::Phase::Tls);
        let _ = entry.is_expired(tlsresume_fuzz::NOW, std::time::Duration::from_secs(86_400));
    }
});
