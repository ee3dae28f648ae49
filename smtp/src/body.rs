//! A message's content made ready for the wire: every line ending made CR LF, dots stuffed
//! for DATA, a piece at a time (a body streamed from a reader) or whole.

/// Every line ending (LF, CR, CR LF) made CR LF, and the content ended with one: no bare CR or
/// LF goes on the wire.
pub(crate) fn normalise(content: &[u8]) -> Vec<u8> {
    Encoder::new(false).all(content)
}

/// [`normalise`]d, with a `.` doubled at the start of each line (RFC 5321 §4.5.2).
pub(crate) fn dot_stuff(content: &[u8]) -> Vec<u8> {
    Encoder::new(true).all(content)
}

/// Content made ready for the wire piece by piece (a body streamed from a reader): every line
/// ending (LF, CR, CR LF) made CR LF, a `.` doubled at the start of each line when `stuff`
/// (DATA), and the content ended with CR LF. A CR at the end of one piece and an LF at the
/// start of the next are one line ending.
#[derive(Debug)]
pub(crate) struct Encoder {
    stuff: bool,
    after_cr: bool,
    at_start: bool,
    ends_in_crlf: bool,
}

impl Encoder {
    pub(crate) fn new(stuff: bool) -> Self {
        Self {
            stuff,
            after_cr: false,
            at_start: true,
            ends_in_crlf: false,
        }
    }

    /// The whole of `content`, ended.
    pub(crate) fn all(mut self, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(content.len() + content.len() / 32 + 2);
        self.push(content, &mut out);
        self.finish(&mut out);
        out
    }

    /// The next piece.
    pub(crate) fn push(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        for &b in piece {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.at_start = true;
                    self.ends_in_crlf = true;
                }
                _ => {
                    if self.stuff && self.at_start && b == b'.' {
                        out.push(b'.');
                    }
                    out.push(b);
                    self.at_start = false;
                    self.ends_in_crlf = false;
                }
            }
        }
    }

    /// The end: CR LF unless the content ended with a line ending.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.ends_in_crlf {
            out.extend_from_slice(b"\r\n");
            self.ends_in_crlf = true;
            self.at_start = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_normalised_and_dot_stuffed() {
        assert_eq!(dot_stuff(b".a\n..b\r\nc"), b"..a\r\n...b\r\nc\r\n");
        assert_eq!(normalise(b".a\nb"), b".a\r\nb\r\n");
        assert_eq!(dot_stuff(b""), b"\r\n");
        // Bare CR and bare LF alike: none reaches the wire, and no `.` line ends DATA.
        assert_eq!(
            dot_stuff(b"a\r.\rb\n.\r\nc\r\r\n."),
            b"a\r\n..\r\nb\r\n..\r\nc\r\n\r\n..\r\n"
        );
        assert_eq!(normalise(b"a\r"), b"a\r\n");
    }

    #[test]
    fn content_in_pieces_is_the_content_whole() {
        let content: &[u8] = b".a\r\n\r.b\n\r\nc\r.\r\n.\n..d\r";
        for stuff in [false, true] {
            let whole = Encoder::new(stuff).all(content);
            for cut in 1..content.len() {
                let mut e = Encoder::new(stuff);
                let mut out = Vec::new();
                for piece in content.chunks(cut) {
                    e.push(piece, &mut out);
                }
                e.finish(&mut out);
                assert_eq!(out, whole, "stuff={stuff} pieces of {cut}");
            }
        }
    }
}
