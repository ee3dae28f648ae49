//! The SMTP line reading shared by the scenario engine and the `tlsresume` command.

use std::io::{self, Read};

/// The longest command or reply line read (RFC 5321 allows 512 for commands; some slack).
const MAX_LINE: usize = 2048;

/// Reads one line byte by byte, so nothing after it is consumed: before STARTTLS the bytes
/// after the command belong to the TLS handshake. The line is returned without CR LF.
pub fn read_line_unbuffered<R: Read + ?Sized>(r: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if r.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        line.push(byte[0]);
        if byte[0] == b'\n' || line.len() >= MAX_LINE {
            return Ok(String::from_utf8_lossy(&line).trim_end().to_owned());
        }
    }
}

/// Reads a whole SMTP reply (every continuation line) and checks its code; returns the lines.
pub fn read_reply<R: Read + ?Sized>(r: &mut R, code: &str) -> io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let line = read_line_unbuffered(r)?;
        if !line.starts_with(code) {
            return Err(io::Error::other(format!(
                "expected an SMTP {code} reply, got '{line}'"
            )));
        }
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if last {
            return Ok(lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_multiline_replies_and_stops_at_the_last_line() {
        let mut input: &[u8] = b"250-mx hello\r\n250 STARTTLS\r\nTLS bytes";
        let lines = read_reply(&mut input, "250").expect("reply");
        assert_eq!(lines, ["250-mx hello", "250 STARTTLS"]);
        assert_eq!(input, b"TLS bytes", "nothing after the reply is consumed");
        let mut bad: &[u8] = b"554 no\r\n";
        assert!(read_reply(&mut bad, "250").is_err());
        let mut eof: &[u8] = b"250-partial";
        assert!(read_reply(&mut eof, "250").is_err());
    }
}
