//! Exim's five resumption bits (`$tls_in_resumption` / `$tls_out_resumption`).

use core::fmt;

bitflags::bitflags! {
    /// What happened to session resumption on one connection, as Exim records it.
    ///
    /// The bit values are Exim's own, so a value logged by tlsresume reads the same as one logged
    /// by Exim, and [`Resumption::describe`] gives the text of Exim's `_RESUME_DECODE` list.
    ///
    /// ```
    /// use tlsresume_core::Resumption;
    ///
    /// let bits = Resumption::SUPPORTED
    ///     | Resumption::CLIENT_REQUESTED
    ///     | Resumption::CLIENT_SUGGESTED
    ///     | Resumption::USED;
    /// assert_eq!(bits.bits(), 0x17);
    /// assert_eq!(bits.describe(), "session resumed");
    /// assert_eq!(bits.to_string(), "0x17 (session resumed)");
    /// ```
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct Resumption: u8 {
        /// Resumption support is built in and enabled for this connection.
        const SUPPORTED = 0x01;
        /// The client asked for a ticket.
        const CLIENT_REQUESTED = 0x02;
        /// The client offered a session (a ticket) to resume.
        const CLIENT_SUGGESTED = 0x04;
        /// The server issued, or will issue, a ticket.
        const SERVER_TICKET = 0x08;
        /// The session was resumed.
        const USED = 0x10;
    }
}

impl Resumption {
    /// Exim's text for this value: element `value` of the `_RESUME_DECODE` builtin list.
    ///
    /// Values with the support bit clear, and the two odd values Exim has no words for
    /// (`0x05` and `0x15`, seen from a GnuTLS server), print their own hex, e.g. `0x0A`.
    pub fn describe(self) -> &'static str {
        DECODE[usize::from(self.bits() & 0x1f)]
    }

    /// Parses a value written in decimal (`23`) or hex (`0x17`), as `tlsresume decode` takes it.
    ///
    /// Values above `0x1f` have bits Exim does not define and are an error.
    pub fn parse_value(text: &str) -> Result<Self, ParseResumptionError> {
        let trimmed = text.trim();
        let parsed = match trimmed
            .strip_prefix("0x")
            .or_else(|| trimmed.strip_prefix("0X"))
        {
            Some(hex) => u8::from_str_radix(hex, 16),
            None => trimmed.parse::<u8>(),
        };
        match parsed {
            Ok(value) => Self::from_bits(value).ok_or(ParseResumptionError {
                input: text.to_owned(),
            }),
            Err(_) => Err(ParseResumptionError {
                input: text.to_owned(),
            }),
        }
    }
}

/// A resumption value that is not a number from 0 to 31 (0x1f).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{input}' is not a resumption value: give a number from 0 to 31, in decimal or as 0x00..0x1f"
)]
pub struct ParseResumptionError {
    input: String,
}

impl fmt::Display for Resumption {
    /// `0x17 (session resumed)`: the hex value and Exim's text, as tlsresume logs it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.describe();
        if text.starts_with("0x") {
            write!(f, "0x{:02X}", self.bits())
        } else {
            write!(f, "0x{:02X} ({text})", self.bits())
        }
    }
}

/// Exim's `_RESUME_DECODE`, indexed by value.
const DECODE: [&str; 32] = [
    "0x00",
    "not requested or offered",
    "0x02",
    "client requested, no server ticket",
    "0x04",
    "0x05",
    "0x06",
    "client offered session, no server action",
    "0x08",
    "no client request",
    "0x0A",
    "client requested new ticket, server provided",
    "0x0C",
    "client offered session, not used",
    "0x0E",
    "client offered session, server only provided new ticket",
    "0x10",
    "session resumed unasked",
    "0x12",
    "session resumed unasked",
    "0x14",
    "0x15",
    "0x16",
    "session resumed",
    "0x18",
    "session resumed unasked",
    "0x1A",
    "session resumed unasked",
    "0x1C",
    "session resumed",
    "0x1E",
    "session resumed, also new ticket",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_values_are_exims() {
        assert_eq!(Resumption::SUPPORTED.bits(), 0x01);
        assert_eq!(Resumption::CLIENT_REQUESTED.bits(), 0x02);
        assert_eq!(Resumption::CLIENT_SUGGESTED.bits(), 0x04);
        assert_eq!(Resumption::SERVER_TICKET.bits(), 0x08);
        assert_eq!(Resumption::USED.bits(), 0x10);
    }

    #[test]
    fn describe_matches_exims_decode_list_for_all_32_values() {
        let words: &[(u8, &str)] = &[
            (0x01, "not requested or offered"),
            (0x03, "client requested, no server ticket"),
            (0x07, "client offered session, no server action"),
            (0x09, "no client request"),
            (0x0B, "client requested new ticket, server provided"),
            (0x0D, "client offered session, not used"),
            (
                0x0F,
                "client offered session, server only provided new ticket",
            ),
            (0x11, "session resumed unasked"),
            (0x13, "session resumed unasked"),
            (0x17, "session resumed"),
            (0x19, "session resumed unasked"),
            (0x1B, "session resumed unasked"),
            (0x1D, "session resumed"),
            (0x1F, "session resumed, also new ticket"),
        ];
        for value in 0u8..=31 {
            let bits = Resumption::from_bits(value).expect("all 5-bit values are defined");
            let expected = words
                .iter()
                .find(|(v, _)| *v == value)
                .map(|(_, text)| (*text).to_owned())
                .unwrap_or_else(|| format!("0x{value:02X}"));
            assert_eq!(bits.describe(), expected, "value {value:#04x}");
        }
    }

    #[test]
    fn display_shows_hex_and_text() {
        let resumed_renewed = Resumption::all();
        assert_eq!(
            resumed_renewed.to_string(),
            "0x1F (session resumed, also new ticket)"
        );
        assert_eq!(Resumption::from_bits_truncate(0x05).to_string(), "0x05");
        assert_eq!(Resumption::empty().to_string(), "0x00");
    }

    #[test]
    fn parse_value_accepts_decimal_and_hex_and_rejects_the_rest() {
        assert_eq!(Resumption::parse_value("23").map(|r| r.bits()), Ok(0x17));
        assert_eq!(Resumption::parse_value("0x1d").map(|r| r.bits()), Ok(0x1d));
        assert_eq!(Resumption::parse_value("0X1F").map(|r| r.bits()), Ok(0x1f));
        for bad in ["32", "0x20", "-1", "", "abc", "0x", "256"] {
            assert!(Resumption::parse_value(bad).is_err(), "{bad:?}");
        }
    }
}
