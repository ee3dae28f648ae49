//! The SMTP reply reader (`tlsresume-smtp`'s `read_reply_unbuffered`, the one every caller
//! uses) on any bytes a server sends, and `read_reply_lines` over the same bytes.
//!
//! Input: 1 byte picks the code `read_reply_lines` expects, the rest is the stream.
//! Properties: no panic; a reply that reads has 1..=MAX_REPLY_LINES lines, each starting with
//! its three-digit code (200..=599), only the last without `-`, each within MAX_LINE; the same
//! lines rebuild the same reply (`Reply::from_lines`, up to trailing CRs); nothing past the last line's LF is
//! consumed; `read_reply_lines` agrees.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsresume_fuzz::read_smtp_reply;
use tlsresume_smtp::reply::{MAX_LINE, MAX_REPLY_LINES};
use tlsresume_smtp::{read_reply_lines, Reply};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, stream)) = data.split_first() else {
        return;
    };
    let mut input = stream;
    let result = read_smtp_reply(&mut input);
    let consumed = stream.len() - input.len();
    let code = ["220", "250", "421", "2"][usize::from(pick % 4)];
    let mut again = stream;
    let lines = read_reply_lines(&mut again, code);
    let Ok(reply) = result else {
        assert!(
            lines.is_err(),
            "read_reply_lines accepted what the reader refused"
        );
        return;
    };
    let n = reply.lines().len();
    assert!((1..=MAX_REPLY_LINES).contains(&n), "{n} lines");
    assert!((200..=599).contains(&reply.code()), "code {}", reply.code());
    let prefix = reply.code().to_string();
    for (i, line) in reply.lines().iter().enumerate() {
        assert!(line.starts_with(&prefix), "{line:?}");
        assert!(line.len() <= MAX_LINE);
        let continued = line.as_bytes().get(3) == Some(&b'-');
        assert_eq!(continued, i + 1 < n, "line {i}: {line:?}");
    }
    // `from_lines` takes lines "CR LF removed or not" and strips one more trailing CR, so a
    // line that ended in several CRs loses one more: same code and lines otherwise.
    let rebuilt = Reply::from_lines(reply.lines()).expect("a reply's own lines rebuild it");
    assert_eq!(rebuilt.code(), reply.code());
    assert_eq!(rebuilt.lines().len(), n);
    for (a, b) in rebuilt.lines().iter().zip(reply.lines()) {
        assert_eq!(a.trim_end_matches('\r'), b.trim_end_matches('\r'));
    }
    assert_eq!(
        stream[..consumed].last(),
        Some(&b'\n'),
        "stopped inside a line"
    );
    assert_eq!(
        again.len(),
        input.len(),
        "the two readers consumed differently"
    );
    match lines {
        Ok(lines) => {
            assert!(prefix.starts_with(code));
            assert_eq!(lines, reply.lines());
        }
        Err(_) => assert!(!prefix.starts_with(code)),
    }
});
