//! The envelope check: what may go between the angle brackets of `MAIL FROM:<…>` and
//! `RCPT TO:<…>`, checked before the client connects, so that no address can add a command
//! of its own (a CR or LF in it would end the line) or break the server's limits.

use core::fmt;

use crate::client::Message;

/// The longest reverse or forward path, angle brackets included (RFC 5321 §4.5.3.1.3).
pub const MAX_PATH: usize = 256;

/// The longest local part (before the last `@`), RFC 5321 §4.5.3.1.1.
pub const MAX_LOCAL_PART: usize = 64;

/// The longest command line, CR LF included (RFC 5321 §4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;

// The client sends no MAIL or RCPT parameters: with the path within its limit the longest
// command line, `RCPT TO:<path>` CR LF, is far within the command line limit, and the domain
// (at most 252 octets) within the 255 of RFC 5321 §4.5.3.1.2.
const _: () = assert!("RCPT TO:".len() + MAX_PATH + 2 <= MAX_COMMAND_LINE);

/// What is wrong with an envelope address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// A CR or LF: it would end the command line and start another command.
    LineBreak,
    /// A NUL byte.
    Nul,
    /// Another control byte (below 0x20, or 0x7f).
    Control(u8),
    /// `<` or `>`: the address is given without its angle brackets (the null reverse path
    /// `<>` is the empty string).
    AngleBracket,
    /// A byte above 0x7f. It needs SMTPUTF8 (RFC 6531), which this client does not support.
    NonAscii,
    /// Empty where an address is needed: only the sender may be the null reverse path.
    Empty,
    /// Longer than [`MAX_PATH`] octets with its angle brackets (the length given is with them).
    PathTooLong(usize),
    /// A local part longer than [`MAX_LOCAL_PART`] octets (its length).
    LocalPartTooLong(usize),
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::LineBreak => f.write_str("contains a line break (CR or LF)"),
            AddressError::Nul => f.write_str("contains a NUL byte"),
            AddressError::Control(b) => write!(f, "contains the control byte 0x{b:02x}"),
            AddressError::AngleBracket => f.write_str(
                "contains '<' or '>' (give the address without angle brackets; the null sender is empty)",
            ),
            AddressError::NonAscii => f.write_str(
                "contains non-ASCII characters, which need SMTPUTF8, and this client does not support SMTPUTF8",
            ),
            AddressError::Empty => {
                f.write_str("is empty (only the sender may be the null reverse path <>)")
            }
            AddressError::PathTooLong(n) => {
                write!(f, "is {n} octets with its angle brackets; a path may have {MAX_PATH}")
            }
            AddressError::LocalPartTooLong(n) => write!(
                f,
                "has a local part of {n} octets; it may have {MAX_LOCAL_PART}"
            ),
        }
    }
}

impl std::error::Error for AddressError {}

/// Which envelope address a check refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvelopeField {
    /// [`Message::mail_from`].
    MailFrom,
    /// [`Message::rcpt_to`], at this index.
    RcptTo(usize),
}

impl fmt::Display for EnvelopeField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeField::MailFrom => f.write_str("mail_from"),
            EnvelopeField::RcptTo(i) => write!(f, "rcpt_to[{i}]"),
        }
    }
}

/// An envelope address the client refuses to send: which one, and why. Nothing was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct EnvelopeError {
    /// The address.
    pub field: EnvelopeField,
    /// What is wrong with it.
    #[source]
    pub problem: AddressError,
}

/// Checks a sender for `MAIL FROM:<…>`: empty (the null reverse path, for a bounce) or as
/// [`check_forward_path`].
pub fn check_reverse_path(address: &str) -> Result<(), AddressError> {
    if address.is_empty() {
        return Ok(());
    }
    check_forward_path(address)
}

/// Checks a recipient for `RCPT TO:<…>` (the address without its angle brackets): no CR, LF,
/// NUL or other control byte, no angle bracket, ASCII only (the client has no SMTPUTF8), not
/// empty, and within RFC 5321's limits (path 256 octets, local part 64).
pub fn check_forward_path(address: &str) -> Result<(), AddressError> {
    // The line break first: it is the one that injects commands.
    if address.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(AddressError::LineBreak);
    }
    for b in address.bytes() {
        match b {
            0 => return Err(AddressError::Nul),
            0x01..=0x1f | 0x7f => return Err(AddressError::Control(b)),
            b'<' | b'>' => return Err(AddressError::AngleBracket),
            0x80.. => return Err(AddressError::NonAscii),
            _ => {}
        }
    }
    if address.is_empty() {
        return Err(AddressError::Empty);
    }
    let path = address.len() + 2;
    if path > MAX_PATH {
        return Err(AddressError::PathTooLong(path));
    }
    if let Some((local, _domain)) = address.rsplit_once('@') {
        if local.len() > MAX_LOCAL_PART {
            return Err(AddressError::LocalPartTooLong(local.len()));
        }
    }
    Ok(())
}

impl Message {
    /// Checks the envelope ([`check_reverse_path`], [`check_forward_path`] for each
    /// recipient); the client does it before connecting.
    pub fn check(&self) -> Result<(), EnvelopeError> {
        check_reverse_path(&self.mail_from).map_err(|problem| EnvelopeError {
            field: EnvelopeField::MailFrom,
            problem,
        })?;
        for (i, rcpt) in self.rcpt_to.iter().enumerate() {
            check_forward_path(rcpt).map_err(|problem| EnvelopeError {
                field: EnvelopeField::RcptTo(i),
                problem,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_injection_form_is_refused() {
        for (bad, problem) in [
            (
                "a@example.test>\r\nRCPT TO:<x@evil.example",
                AddressError::LineBreak,
            ),
            ("a@example.test\rRSET", AddressError::LineBreak),
            ("a@example.test\nRSET", AddressError::LineBreak),
            ("a@example.test\0", AddressError::Nul),
            ("a@exa\tmple.test", AddressError::Control(b'\t')),
            ("a@example.test\x7f", AddressError::Control(0x7f)),
            ("a@example.test> SIZE=1", AddressError::AngleBracket),
            ("<a@example.test>", AddressError::AngleBracket),
            ("é@example.test", AddressError::NonAscii),
            ("", AddressError::Empty),
        ] {
            assert_eq!(check_forward_path(bad), Err(problem), "{bad:?}");
        }
        assert_eq!(check_reverse_path(""), Ok(()), "the null sender");
        assert_eq!(
            check_reverse_path("a\r\n@example.test"),
            Err(AddressError::LineBreak)
        );
    }

    #[test]
    fn rfc_5321_limits_hold() {
        let local = "l".repeat(MAX_LOCAL_PART);
        assert_eq!(check_forward_path(&format!("{local}@example.test")), Ok(()));
        assert_eq!(
            check_forward_path(&format!("{local}l@example.test")),
            Err(AddressError::LocalPartTooLong(65))
        );
        let domain = format!("{}.test", "d".repeat(MAX_PATH - 2 - 2 - 5));
        assert_eq!(
            check_forward_path(&format!("a@{domain}")),
            Ok(()),
            "254 octets"
        );
        assert_eq!(
            check_forward_path(&format!("ab@{domain}")),
            Err(AddressError::PathTooLong(257))
        );
        // A quoted local part may hold '@'; the last one starts the domain.
        assert_eq!(check_forward_path("\"a@b\"@example.test"), Ok(()));
    }

    #[test]
    fn the_error_names_the_field() {
        let message = Message {
            mail_from: "a@example.test".into(),
            rcpt_to: vec!["b@example.test".into(), "c@example.test\r\nRSET".into()],
            content: Vec::new(),
        };
        let e = message.check().expect_err("refused");
        assert_eq!(e.field, EnvelopeField::RcptTo(1));
        assert_eq!(
            e.to_string(),
            "rcpt_to[1]: contains a line break (CR or LF)"
        );
    }
}
