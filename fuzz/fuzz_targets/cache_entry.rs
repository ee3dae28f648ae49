//! `CacheEntry::decode` on any stored bytes (disk file, Redis, a future store).
//!
//! Input: 1 mode byte, then the bytes. Mode odd: the last 8 bytes are replaced by the right
//! checksum first — what anyone able to write the store can compute (SHA-256, unkeyed) — so
//! the field decoding behind the checksum is fuzzed too. Properties: decoding never panics; whatever decodes encodes back to the same bytes (the
//! codec is canonical, so a decoded entry is exactly what was written); what is encoded decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsresume_core::CacheEntry;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 {
        tlsresume_fuzz::fix_checksum(&mut bytes);
    }
    if let Ok(entry) = CacheEntry::decode(&bytes) {
        assert_eq!(entry.encode(), bytes, "decode is not the inverse of encode");
        let _ = entry.is_expired(tlsresume_fuzz::NOW);
        let _ = format!("{entry:?}");
    }
});
