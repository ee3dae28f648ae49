//! The SMTP service extensions of a transaction, both ways, without I/O: what the client puts
//! after `MAIL FROM:<…>` and `RCPT TO:<…>` ([`parameters`]), and what the server session
//! takes there, reported as [`MailParameters`] and [`RcptParameters`] in each
//! [`Accepted`](crate::server::Accepted) message.
//!
//! | extension | client | server session |
//! |---|---|---|
//! | SIZE (RFC 1870) | declared when offered | enforced |
//! | 8BITMIME (RFC 6152) | `BODY=8BITMIME` when the content has an octet over 127; refused unsent when not offered | `BODY=7BIT` / `8BITMIME` taken and reported |
//! | SMTPUTF8 (RFC 6531) | sent when an address is not ASCII; refused unsent (naming the address) when not offered | an address that is not ASCII without it: 553 5.6.7 |
//! | DSN (RFC 3461) | `RET`, `ENVID`, `NOTIFY`, `ORCPT` from [`Dsn`], xtext-encoded; left out when not offered ([`Parameters::dsn`] says so) | taken, decoded and reported |
//!
//! A parameter the server did not offer, or does not know, gets 555 5.5.4; a bad value 501.
//! Nothing a caller gives reaches the wire raw: the ENVID and original recipients go as xtext
//! (a space, `+`, `=` as `+20`, `+2B`, `+3D`), and a control byte in them is refused before
//! connecting ([`crate::Message::check`]).

use core::fmt;

use crate::client::Message;
use crate::ehlo::EhloFeatures;
use crate::envelope::{AddressError, EnvelopeField};

/// The longest ENVID, xtext-encoded (RFC 3461 §4.4).
pub const MAX_ENVID: usize = 100;

/// The longest ORCPT value, its address type and xtext-encoded address (RFC 3461 §4.2).
pub const MAX_ORCPT: usize = 500;

/// What the DSN extension's `RET` asks a failure report to return (RFC 3461 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    /// `RET=FULL`: the whole message.
    Full,
    /// `RET=HDRS`: its header only.
    Hdrs,
}

impl Ret {
    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }
    }
}

/// When a recipient's delivery status is reported (`NOTIFY`, RFC 3461 §4.1): any of success,
/// failure and delay, or none of them (`NOTIFY=NEVER`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Notify {
    /// `SUCCESS`.
    pub success: bool,
    /// `FAILURE`.
    pub failure: bool,
    /// `DELAY`.
    pub delay: bool,
}

impl Notify {
    /// `NOTIFY=NEVER`.
    pub const NEVER: Self = Self {
        success: false,
        failure: false,
        delay: false,
    };

    /// Its value on the wire: `NEVER`, or the conditions joined by commas.
    pub fn value(self) -> String {
        let words: Vec<&str> = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ]
        .into_iter()
        .filter_map(|(on, w)| on.then_some(w))
        .collect();
        if words.is_empty() {
            "NEVER".into()
        } else {
            words.join(",")
        }
    }

    /// Parses a `NOTIFY` value: `NEVER` alone, or SUCCESS, FAILURE, DELAY (case-insensitive,
    /// each at most once).
    pub fn parse(value: &str) -> Option<Self> {
        if value.eq_ignore_ascii_case("NEVER") {
            return Some(Self::NEVER);
        }
        let mut out = Self::default();
        for word in value.split(',') {
            let flag = match word.to_ascii_uppercase().as_str() {
                "SUCCESS" => &mut out.success,
                "FAILURE" => &mut out.failure,
                "DELAY" => &mut out.delay,
                _ => return None,
            };
            if std::mem::replace(flag, true) {
                return None;
            }
        }
        Some(out)
    }
}

/// What a message asks of delivery status notifications (RFC 3461), sent when the server
/// offers DSN. The default asks nothing: no DSN parameter is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Dsn {
    /// `RET`: what a failure report returns.
    pub ret: Option<Ret>,
    /// `ENVID`: the sender's identifier of this transaction, returned in reports. Printable
    /// ASCII; sent xtext-encoded, at most [`MAX_ENVID`] octets so.
    pub envid: Option<String>,
    /// `NOTIFY` for every recipient.
    pub notify: Option<Notify>,
    /// `ORCPT` per recipient, in the order of [`Message::rcpt_to`] (shorter is fine): the
    /// original recipient address (sent as `rfc822;` and the address in xtext).
    pub orcpt: Vec<Option<String>>,
}

impl Dsn {
    /// Whether it asks anything.
    pub fn is_empty(&self) -> bool {
        self.ret.is_none()
            && self.envid.is_none()
            && self.notify.is_none()
            && self.orcpt.iter().all(Option::is_none)
    }

    /// Checks the values a caller gave (done with [`Message::check`], before connecting): no
    /// control byte, ASCII, within the lengths, no more ORCPT values than recipients.
    pub(crate) fn check(&self, recipients: usize) -> Result<(), (EnvelopeField, AddressError)> {
        if let Some(envid) = &self.envid {
            check_value(envid, MAX_ENVID).map_err(|e| (EnvelopeField::Envid, e))?;
        }
        if self.orcpt.len() > recipients {
            return Err((
                EnvelopeField::Orcpt(recipients),
                AddressError::NoSuchRecipient,
            ));
        }
        for (i, orcpt) in self.orcpt.iter().enumerate() {
            if let Some(orcpt) = orcpt {
                check_value(orcpt, MAX_ORCPT - "rfc822;".len())
                    .map_err(|e| (EnvelopeField::Orcpt(i), e))?;
                if orcpt.is_empty() {
                    return Err((EnvelopeField::Orcpt(i), AddressError::Empty));
                }
            }
        }
        Ok(())
    }
}

/// A DSN value: no control byte, ASCII, at most `max` octets xtext-encoded.
fn check_value(value: &str, max: usize) -> Result<(), AddressError> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(AddressError::LineBreak);
    }
    for b in value.bytes() {
        match b {
            0 => return Err(AddressError::Nul),
            0x01..=0x1f | 0x7f => return Err(AddressError::Control(b)),
            0x80.. => return Err(AddressError::NonAscii),
            _ => {}
        }
    }
    let encoded = xtext(value).len();
    if encoded > max {
        return Err(AddressError::TooLong {
            octets: encoded,
            max,
        });
    }
    Ok(())
}

/// Encodes `value` as xtext (RFC 3461 §4): `!` to `~` but `+` and `=` as they are, every
/// other octet as `+` and two upper-case hex digits. Nothing in the result is a space, a
/// control byte or a byte over 127.
///
/// ```
/// assert_eq!(tlsresume_smtp::extensions::xtext("a b+c=\r\n"), "a+20b+2Bc+3D+0D+0A");
/// ```
pub fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// Decodes xtext (RFC 3461 §4): `None` for a character outside it, a `+` not followed by two
/// upper-case hex digits, or a result that is not UTF-8.
pub fn decode_xtext(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = |b: u8| match b {
                    b'0'..=b'9' => Some(b - b'0'),
                    b'A'..=b'F' => Some(b - b'A' + 10),
                    _ => None,
                };
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b @ b'!'..=b'~' if b != b'=' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// What the content of a message holds, for `BODY=` (RFC 6152).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Body {
    /// Octets up to 127 only.
    SevenBit,
    /// At least one octet over 127.
    EightBit,
    /// Not known before it is sent (a streamed message): declared `8BITMIME` when offered,
    /// and the stream is stopped at an octet over 127 when it is not.
    Unknown,
}

impl Body {
    /// The class of `content`.
    pub fn of(content: &[u8]) -> Self {
        if content.iter().any(|&b| b > 0x7f) {
            Body::EightBit
        } else {
            Body::SevenBit
        }
    }
}

/// Why a message cannot go to this server as it is; nothing of it was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParameterError {
    /// An address is not ASCII and the server does not offer SMTPUTF8 (RFC 6531 §3.2: it
    /// cannot go, or must be downgraded by the caller).
    #[error("{0} is not ASCII: it needs SMTPUTF8, and the server does not offer SMTPUTF8")]
    NeedsSmtpUtf8(EnvelopeField),
    /// The content has an octet over 127 and the server does not offer 8BITMIME (RFC 6152
    /// §3: the client converts it to 7 bit, e.g. quoted-printable, or returns it as
    /// undeliverable; this client does not convert).
    #[error("the message has octets over 127 and the server does not offer 8BITMIME: convert it to 7 bit (quoted-printable or base64) or return it as undeliverable (RFC 6152)")]
    NeedsEightBitMime,
}

/// The parameters of one transaction: what goes after `MAIL FROM:<…>` and after each
/// `RCPT TO:<…>` (each with its leading space), and which extensions they use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parameters {
    /// After `MAIL FROM:<…>`.
    pub mail: String,
    /// After each `RCPT TO:<…>`, in order.
    pub rcpt: Vec<String>,
    /// `BODY=8BITMIME` was declared.
    pub eight_bit_mime: bool,
    /// `SMTPUTF8` was declared.
    pub smtputf8: bool,
    /// DSN parameters were sent. `false` with DSN asked for means the server does not offer
    /// DSN (RFC 3461 §5.2.2: the sender's MTA reports such a message as relayed).
    pub dsn: bool,
}

/// The parameters for `message` to a server offering `features`, with its content as `body`
/// and, when known, its `size` (line endings as CR LF, RFC 1870). The envelope's own values
/// are checked already ([`Message::check`]); this checks what depends on the server.
///
/// ```
/// use tlsresume_smtp::extensions::{parameters, Body, Dsn, Notify, Ret};
/// use tlsresume_smtp::{EhloFeatures, Message};
///
/// let mut message = Message::new("a@example.net", ["b@example.org"], "hi\r\n");
/// message.dsn = Dsn {
///     ret: Some(Ret::Hdrs),
///     envid: Some("q 1+2".into()),
///     notify: Some(Notify { failure: true, ..Notify::NEVER }),
///     orcpt: vec![Some("b@example.org".into())],
/// };
/// let p = parameters(&message, Body::SevenBit, Some(4), EhloFeatures::SIZE | EhloFeatures::DSN)?;
/// assert_eq!(p.mail, " SIZE=4 RET=HDRS ENVID=q+201+2B2");
/// assert_eq!(p.rcpt, [" NOTIFY=FAILURE ORCPT=rfc822;b@example.org"]);
/// # Ok::<(), tlsresume_smtp::extensions::ParameterError>(())
/// ```
pub fn parameters(
    message: &Message,
    body: Body,
    size: Option<u64>,
    features: EhloFeatures,
) -> Result<Parameters, ParameterError> {
    let mut out = Parameters::default();
    // RFC 6531: SMTPUTF8 when an envelope address needs it.
    let needs_utf8 = std::iter::once((EnvelopeField::MailFrom, &message.mail_from))
        .chain(
            message
                .rcpt_to
                .iter()
                .enumerate()
                .map(|(i, r)| (EnvelopeField::RcptTo(i), r)),
        )
        .find(|(_, a)| !a.is_ascii());
    if let Some((field, _)) = needs_utf8 {
        if !features.contains(EhloFeatures::SMTPUTF8) {
            return Err(ParameterError::NeedsSmtpUtf8(field));
        }
        out.smtputf8 = true;
    }
    let eight_bit = match body {
        Body::SevenBit => false,
        Body::EightBit if !features.contains(EhloFeatures::EIGHTBITMIME) => {
            return Err(ParameterError::NeedsEightBitMime)
        }
        Body::EightBit => true,
        Body::Unknown => features.contains(EhloFeatures::EIGHTBITMIME),
    };
    if let Some(size) = size.filter(|_| features.contains(EhloFeatures::SIZE)) {
        out.mail.push_str(&format!(" SIZE={size}"));
    }
    if eight_bit {
        out.mail.push_str(" BODY=8BITMIME");
        out.eight_bit_mime = true;
    }
    if out.smtputf8 {
        out.mail.push_str(" SMTPUTF8");
    }
    let dsn = &message.dsn;
    out.dsn = features.contains(EhloFeatures::DSN) && !dsn.is_empty();
    if out.dsn {
        if let Some(ret) = dsn.ret {
            out.mail.push_str(&format!(" RET={}", ret.name()));
        }
        if let Some(envid) = &dsn.envid {
            out.mail.push_str(&format!(" ENVID={}", xtext(envid)));
        }
    }
    for i in 0..message.rcpt_to.len() {
        let mut p = String::new();
        if out.dsn {
            if let Some(notify) = dsn.notify {
                p.push_str(&format!(" NOTIFY={}", notify.value()));
            }
            if let Some(Some(orcpt)) = dsn.orcpt.get(i) {
                p.push_str(&format!(" ORCPT=rfc822;{}", xtext(orcpt)));
            }
        }
        out.rcpt.push(p);
    }
    Ok(out)
}

/// What the server session offers of the extensions a transaction's parameters use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Offered {
    pub(crate) eight_bit_mime: bool,
    pub(crate) smtputf8: bool,
    pub(crate) dsn: bool,
    pub(crate) auth: bool,
}

/// A parameter refused by the server session: the reply line (CR LF added by the caller).
pub(crate) type Refused = &'static str;

const UNKNOWN: Refused = "555 5.5.4 Parameter not recognised or not offered";
const DUPLICATE: Refused = "501 5.5.4 Parameter given twice";

/// What `MAIL FROM` declared, as the server session took it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailParameters {
    /// `SIZE=`.
    pub size: Option<u64>,
    /// `BODY=8BITMIME` (`false` for `BODY=7BIT` or none).
    pub eight_bit_mime: bool,
    /// `SMTPUTF8`.
    pub smtputf8: bool,
    /// `RET=`.
    pub ret: Option<Ret>,
    /// `ENVID=`, decoded.
    pub envid: Option<String>,
}

impl MailParameters {
    /// Parses the words after `MAIL FROM:<…>`; the reply refusing them otherwise.
    pub(crate) fn parse(params: &str, offered: Offered) -> Result<Self, Refused> {
        let mut out = Self::default();
        let mut body = None;
        for word in params.split_ascii_whitespace() {
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
                None => (word.to_ascii_uppercase(), None),
            };
            match (key.as_str(), value) {
                ("SIZE", Some(v)) => {
                    let n = v
                        .parse::<u64>()
                        .map_err(|_| "501 5.5.4 Bad SIZE parameter")?;
                    once(&mut out.size, n)?;
                }
                ("BODY", Some(v)) if offered.eight_bit_mime => {
                    let eight = match v.to_ascii_uppercase().as_str() {
                        "7BIT" => false,
                        "8BITMIME" => true,
                        _ => return Err("501 5.5.4 BODY is 7BIT or 8BITMIME"),
                    };
                    once(&mut body, eight)?;
                }
                ("SMTPUTF8", None) if offered.smtputf8 => {
                    if std::mem::replace(&mut out.smtputf8, true) {
                        return Err(DUPLICATE);
                    }
                }
                ("RET", Some(v)) if offered.dsn => {
                    let ret = match v.to_ascii_uppercase().as_str() {
                        "FULL" => Ret::Full,
                        "HDRS" => Ret::Hdrs,
                        _ => return Err("501 5.5.4 RET is FULL or HDRS"),
                    };
                    once(&mut out.ret, ret)?;
                }
                ("ENVID", Some(v)) if offered.dsn => {
                    let envid = decode_xtext(v)
                        .filter(|_| v.len() <= MAX_ENVID)
                        .ok_or("501 5.5.4 ENVID is xtext of at most 100 characters")?;
                    once(&mut out.envid, envid)?;
                }
                // RFC 4954 §5: the identity the message was submitted by; taken, not used.
                ("AUTH", Some(_)) if offered.auth => {}
                _ => return Err(UNKNOWN),
            }
        }
        out.eight_bit_mime = body.unwrap_or(false);
        Ok(out)
    }
}

/// What `RCPT TO` declared, as the server session took it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RcptParameters {
    /// `NOTIFY=`.
    pub notify: Option<Notify>,
    /// `ORCPT=`: its address type and the address, decoded.
    pub orcpt: Option<(String, String)>,
}

impl RcptParameters {
    /// Parses the words after `RCPT TO:<…>`; the reply refusing them otherwise.
    pub(crate) fn parse(params: &str, offered: Offered) -> Result<Self, Refused> {
        let mut out = Self::default();
        for word in params.split_ascii_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                return Err(UNKNOWN);
            };
            match key.to_ascii_uppercase().as_str() {
                "NOTIFY" if offered.dsn => {
                    let notify = Notify::parse(value)
                        .ok_or("501 5.5.4 NOTIFY is NEVER or any of SUCCESS, FAILURE, DELAY")?;
                    once(&mut out.notify, notify)?;
                }
                "ORCPT" if offered.dsn => {
                    let orcpt = value
                        .split_once(';')
                        .filter(|(kind, _)| !kind.is_empty() && value.len() <= MAX_ORCPT)
                        .and_then(|(kind, addr)| Some((kind.to_owned(), decode_xtext(addr)?)))
                        .ok_or("501 5.5.4 ORCPT is addr-type;xtext of at most 500 characters")?;
                    once(&mut out.orcpt, orcpt)?;
                }
                _ => return Err(UNKNOWN),
            }
        }
        Ok(out)
    }
}

/// Sets `slot` once: a second value is refused.
fn once<T>(slot: &mut Option<T>, value: T) -> Result<(), Refused> {
    if slot.replace(value).is_some() {
        return Err(DUPLICATE);
    }
    Ok(())
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(from: &str, to: &str) -> Message {
        Message::new(from, [to], "x\r\n")
    }

    #[test]
    fn xtext_round_trips_and_never_carries_a_control_byte() {
        for value in ["plain", "a b", "+=", "\r\n\0x", "é", "~!"] {
            let encoded = xtext(value);
            assert!(
                encoded.bytes().all(|b| (b'!'..=b'~').contains(&b)),
                "{encoded}"
            );
            assert_eq!(decode_xtext(&encoded).as_deref(), Some(value));
        }
        for bad in ["a b", "+2", "+2b", "a=b", "+ZZ", "é"] {
            assert_eq!(decode_xtext(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn notify_values() {
        assert_eq!(Notify::NEVER.value(), "NEVER");
        let n = Notify {
            success: true,
            delay: true,
            ..Notify::NEVER
        };
        assert_eq!(n.value(), "SUCCESS,DELAY");
        assert_eq!(Notify::parse("delay,Success"), Some(n));
        for bad in ["", "NEVER,SUCCESS", "SUCCESS,SUCCESS", "SOMETIMES"] {
            assert_eq!(Notify::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn smtputf8_only_when_offered_and_needed() {
        let m = message("a@example.test", "b@exämple.test");
        assert_eq!(
            parameters(&m, Body::SevenBit, None, EhloFeatures::empty()),
            Err(ParameterError::NeedsSmtpUtf8(EnvelopeField::RcptTo(0)))
        );
        assert_eq!(
            parameters(&m, Body::SevenBit, None, EhloFeatures::empty())
                .expect_err("refused")
                .to_string(),
            "rcpt_to[0] is not ASCII: it needs SMTPUTF8, and the server does not offer SMTPUTF8"
        );
        let p = parameters(&m, Body::SevenBit, None, EhloFeatures::SMTPUTF8).expect("offered");
        assert_eq!((p.mail.as_str(), p.smtputf8), (" SMTPUTF8", true));
        let ascii = message("a@example.test", "b@example.test");
        let p = parameters(&ascii, Body::SevenBit, None, EhloFeatures::all()).expect("ascii");
        assert!(!p.smtputf8 && !p.mail.contains("SMTPUTF8"), "{p:?}");
    }

    #[test]
    fn eight_bit_content_needs_8bitmime() {
        let m = message("a@example.test", "b@example.test");
        let none = EhloFeatures::empty();
        assert_eq!(
            parameters(&m, Body::EightBit, None, none),
            Err(ParameterError::NeedsEightBitMime)
        );
        let p = parameters(&m, Body::EightBit, Some(9), EhloFeatures::all()).expect("offered");
        assert_eq!(p.mail, " SIZE=9 BODY=8BITMIME");
        let p = parameters(&m, Body::SevenBit, Some(9), EhloFeatures::all()).expect("7 bit");
        assert_eq!(p.mail, " SIZE=9");
        let p = parameters(&m, Body::Unknown, None, none).expect("not offered, stream");
        assert!(!p.eight_bit_mime);
        assert_eq!(Body::of(b"caf\xc3\xa9"), Body::EightBit);
        assert_eq!(Body::of(b"cafe\r\n"), Body::SevenBit);
    }

    #[test]
    fn dsn_parameters_are_xtext_and_only_when_offered() {
        let mut m = Message::new("a@example.test", ["b@example.test", "c@example.test"], "");
        m.dsn = Dsn {
            ret: Some(Ret::Full),
            envid: Some("id 1\r\nRCPT TO:<x@evil.example>".into()),
            notify: Some(Notify::NEVER),
            orcpt: vec![None, Some("o r@example.test".into())],
        };
        let p = parameters(&m, Body::SevenBit, None, EhloFeatures::DSN).expect("dsn");
        assert_eq!(
            p.mail,
            " RET=FULL ENVID=id+201+0D+0ARCPT+20TO:<x@evil.example>"
        );
        assert_eq!(
            p.rcpt,
            [
                " NOTIFY=NEVER",
                " NOTIFY=NEVER ORCPT=rfc822;o+20r@example.test"
            ]
        );
        assert!(p.dsn);
        let p = parameters(&m, Body::SevenBit, None, EhloFeatures::empty()).expect("no dsn");
        assert_eq!((p.mail.as_str(), p.dsn), ("", false));
        assert_eq!(p.rcpt, ["", ""]);
        // The caller's values are refused before connecting: a line break is not printable.
        assert_eq!(
            m.dsn.check(2),
            Err((EnvelopeField::Envid, AddressError::LineBreak))
        );
        m.dsn.envid = Some("x".repeat(MAX_ENVID + 1));
        assert_eq!(
            m.dsn.check(2),
            Err((
                EnvelopeField::Envid,
                AddressError::TooLong {
                    octets: 101,
                    max: MAX_ENVID
                }
            ))
        );
        m.dsn.envid = None;
        m.dsn.orcpt.push(Some("d@example.test".into()));
        assert_eq!(
            m.dsn.check(2),
            Err((EnvelopeField::Orcpt(2), AddressError::NoSuchRecipient))
        );
        m.dsn.orcpt = vec![Some("\0@x".into())];
        assert_eq!(
            m.dsn.check(2),
            Err((EnvelopeField::Orcpt(0), AddressError::Nul))
        );
    }

    #[test]
    fn the_server_takes_what_it_offered_only() {
        let all = Offered {
            eight_bit_mime: true,
            smtputf8: true,
            dsn: true,
            auth: true,
        };
        let p = MailParameters::parse("size=10 BODY=8bitmime SMTPUTF8 RET=HDRS ENVID=a+20b", all)
            .expect("taken");
        assert_eq!(p.size, Some(10));
        assert!(p.eight_bit_mime && p.smtputf8);
        assert_eq!((p.ret, p.envid.as_deref()), (Some(Ret::Hdrs), Some("a b")));
        let none = Offered::default();
        for (params, code) in [
            ("SMTPUTF8", "555"),
            ("RET=FULL", "555"),
            ("BODY=8BITMIME", "555"),
            ("AUTH=<>", "555"),
            ("XFOO=1", "555"),
            ("SIZE=x", "501"),
            ("SIZE=1 SIZE=2", "501"),
        ] {
            let e = MailParameters::parse(params, none).expect_err(params);
            assert!(e.starts_with(code), "{params}: {e}");
        }
        for (params, code) in [
            ("ENVID=a b", "555"),
            ("ENVID=a=b", "501"),
            ("RET=ALL", "501"),
            ("BODY=BINARYMIME", "501"),
            ("SMTPUTF8 SMTPUTF8", "501"),
        ] {
            let e = MailParameters::parse(params, all).expect_err(params);
            assert!(e.starts_with(code), "{params}: {e}");
        }
        let r = RcptParameters::parse("NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@c", all)
            .expect("taken");
        assert_eq!(r.orcpt, Some(("rfc822".to_owned(), "a+b@c".to_owned())));
        assert_eq!(
            r.notify.map(Notify::value).as_deref(),
            Some("SUCCESS,FAILURE")
        );
        for (params, offered, code) in [
            ("NOTIFY=NEVER", none, "555"),
            ("NOTIFY=NEVER,DELAY", all, "501"),
            ("ORCPT=a@b", all, "501"),
            ("ORCPT=;a@b", all, "501"),
            ("FOO", all, "555"),
        ] {
            let e = RcptParameters::parse(params, offered).expect_err(params);
            assert!(e.starts_with(code), "{params}: {e}");
        }
    }
}
