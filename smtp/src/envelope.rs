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

// With the path within its limit, `RCPT TO:<path>` CR LF is within the command line limit, and
// the domain (at most 252 octets) within the 255 of RFC 5321 §4.5.3.1.2; the parameters of
// service extensions lengthen the line as RFC 1869 §4.1.2 allows (DSN's ORCPT by up to 500).
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
    /// Not ASCII where only ASCII may go (a DSN value; an address is checked against the
    /// server's SMTPUTF8 once connected: [`crate::extensions::ParameterError::NeedsSmtpUtf8`]).
    NonAscii,
    /// Empty where an address is needed: only the sender may be the null reverse path.
    Empty,
    /// Longer than [`MAX_PATH`] octets with its angle brackets (the length given is with them).
    PathTooLong(usize),
    /// A local part longer than [`MAX_LOCAL_PART`] octets (its length).
    LocalPartTooLong(usize),
    /// A DSN value longer than it may be once xtext-encoded.
    TooLong {
        /// Its length, encoded.
        octets: usize,
        /// The most it may have.
        max: usize,
    },
    /// An ORCPT given past the last recipient.
    NoSuchRecipient,
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
            AddressError::NonAscii => f.write_str("contains non-ASCII characters"),
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
            AddressError::TooLong { octets, max } => {
                write!(f, "is {octets} octets xtext-encoded; it may have {max}")
            }
            AddressError::NoSuchRecipient => f.write_str("has no recipient at its index"),
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
    /// The DSN envelope identifier ([`crate::extensions::Dsn::envid`]).
    Envid,
    /// The original recipient of [`Message::rcpt_to`] at this index
    /// ([`crate::extensions::Dsn::orcpt`]).
    Orcpt(usize),
}

impl fmt::Display for EnvelopeField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeField::MailFrom => f.write_str("mail_from"),
            EnvelopeField::RcptTo(i) => write!(f, "rcpt_to[{i}]"),
            EnvelopeField::Envid => f.write_str("dsn.envid"),
            EnvelopeField::Orcpt(i) => write!(f, "dsn.orcpt[{i}]"),
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
/// NUL or other control character (C0, DEL, C1), no angle bracket, not empty, and within RFC
/// 5321's limits (path 256 octets, local part 64). An address that is not ASCII passes here:
/// it needs SMTPUTF8 (RFC 6531), checked against the server's EHLO response once connected
/// ([`crate::extensions::parameters`]).
pub fn check_forward_path(address: &str) -> Result<(), AddressError> {
    // The line break first: it is the one that injects commands.
    if address.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(AddressError::LineBreak);
    }
    for c in address.chars() {
        match c {
            '\0' => return Err(AddressError::Nul),
            '<' | '>' => return Err(AddressError::AngleBracket),
            // C1 controls are two octets in UTF-8; the first is the one named.
            c if c.is_control() => {
                return Err(AddressError::Control(if c.is_ascii() {
                    c as u8
                } else {
                    0xc2
                }))
            }
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
    /// recipient, the DSN values: printable ASCII within their lengths); the client does it
    /// before connecting.
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
        self.dsn
            .check(self.rcpt_to.len())
            .map_err(|(field, problem)| EnvelopeError { field, problem })
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
            ("a@example.test\u{85}", AddressError::Control(0xc2)),
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
        // Not ASCII: taken here, sent only to a server offering SMTPUTF8.
        assert_eq!(check_forward_path("ü@exämple.test"), Ok(()));
        // A quoted local part may hold '@'; the last one starts the domain.
        assert_eq!(check_forward_path("\"a@b\"@example.test"), Ok(()));
    }

    #[test]
    fn the_error_names_the_field() {
        let message = Message::new(
            "a@example.test",
            ["b@example.test", "c@example.test\r\nRSET"],
            "",
        );
        let e = message.check().expect_err("refused");
        assert_eq!(e.field, EnvelopeField::RcptTo(1));
        assert_eq!(
            e.to_string(),
            "rcpt_to[1]: contains a line break (CR or LF)"
        );
    }
}
