//! The EHLO-response parser (`EhloResponse::parse`) on replies read from any bytes, and the
//! cache entry made from what it parsed.
//!
//! Input: the stream a server sends after EHLO. Properties: no panic; what parses keeps only
//! upper-case keywords and sorted, unique AUTH mechanisms; an entry holding its view encodes
//! and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsresume_smtp::ehlo::{EhloEntry, EhloResponse};
use tlsresume_fuzz::{read_smtp_reply, NOW};

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    // The reader's replies, and the raw lines too (a caller may hand lines of its own).
    let raw: Vec<String> = String::from_utf8_lossy(data)
        .split('\n')
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect();
    let _ = EhloResponse::parse(&raw);
    let Ok(reply) = read_smtp_reply(&mut input) else {
        return;
    };
    let Ok(parsed) = EhloResponse::parse(reply.lines()) else {
        return;
    };
    for k in &parsed.keywords {
        assert_eq!(*k, k.to_ascii_uppercase());
    }
    assert!(
        parsed.auth.windows(2).all(|w| w[0] < w[1]),
        "{:?}",
        parsed.auth
    );
    let entry = EhloEntry {
        stored_at: NOW,
        clear: Some(parsed.view()),
        tls: None,
    };
    let decoded = EhloEntry::decode(&entry.encode()).expect("an encoded entry decodes");
    assert_eq!(decoded, entry);
    let _ = entry.permits_early(tlsresume_smtp::ehlo::Phase::Clear);
});
