//! The SMTP reply reader on any bytes a server sends before STARTTLS.
//!
//! Input: 1 byte picks the expected code, the rest is the stream. Properties: no panic; a reply
//! that reads has every line starting with the code, only its last line without `-` at the
//! fourth byte; it consumes exactly its lines and never a byte past the last line's LF.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsresume_fuzz::read_smtp_reply;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, stream)) = data.split_first() else {
        return;
    };
    let code = ["220", "250", "421", "2"][usize::from(pick % 4)];
    let mut input = stream;
    let Ok(lines) = read_smtp_reply(&mut input, code) else {
        return;
    };
    assert!(!lines.is_empty());
    for (i, line) in lines.iter().enumerate() {
        assert!(line.starts_with(code), "{line:?}");
        let continued = line.as_bytes().get(3) == Some(&b'-');
        assert_eq!(continued, i + 1 < lines.len(), "line {i}: {line:?}");
    }
    let consumed = stream.len() - input.len();
    assert!(consumed <= stream.len());
    // What was consumed ends a line (LF) or is one maximal-length line's worth.
    let tail = &stream[..consumed];
    assert!(
        tail.last() == Some(&b'\n') || !tail.is_empty(),
        "nothing consumed for a reply"
    );
});
