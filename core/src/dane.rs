//! DANE for SMTP (RFC 7672): TLSA records as typed values ([`TlsaRecord`]), which of them a
//! client may use, and what a connection reports when one matched ([`DaneAuthority`]).
//!
//! The caller looks the records up (under DNSSEC, at `_25._tcp.<mx host>`) and passes them in
//! [`ClientParams::dane`](crate::ClientParams::dane); the crate does not resolve. What a set of
//! records means for one connection ([`DanePlan`]), RFC 7672 §2.2 and §3:
//!
//! - no set, or an empty one (no TLSA records: DANE does not apply): the settings' own
//!   verification (PKIX against the trust anchors, as [`VerifyMode`](crate::VerifyMode) says);
//! - records, none usable: TLS is still required, without authentication ("mandatory
//!   unauthenticated TLS": neither DANE nor PKIX is checked);
//! - at least one usable record: the peer is verified by DANE only, never by the WebPKI; a
//!   chain no usable record matches fails the handshake with
//!   [`ErrorKind::Certificate`](crate::ErrorKind::Certificate), whatever the verify mode (as
//!   Exim's `hosts_require_dane`).
//!
//! Usable records are DANE-TA(2) and DANE-EE(3) with selector 0 (full certificate) or 1
//! (SubjectPublicKeyInfo) and matching type 0 (exact), 1 (SHA-256, 32 bytes) or 2 (SHA-512,
//! 64 bytes). PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP (RFC 7672 §3.1.3), like unknown
//! values and digests of the wrong length. DANE-EE(3) matches the leaf and ignores its names
//! and dates; DANE-TA(2) matches a certificate of the chain the server sends, which then
//! anchors the chain, whose leaf must carry one of the reference names (the TLSA base domain,
//! which is the server name, and the names in
//! [`ClientParams::dane_names`](crate::ClientParams::dane_names)).

use core::fmt;
use core::str::FromStr;

/// A TLSA record's certificate usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsaUsage {
    /// 0, PKIX-TA: unusable for SMTP (RFC 7672 §3.1.3).
    PkixTa,
    /// 1, PKIX-EE: unusable for SMTP (RFC 7672 §3.1.3).
    PkixEe,
    /// 2, DANE-TA: a trust anchor the chain must lead to.
    DaneTa,
    /// 3, DANE-EE: the server's own certificate or key.
    DaneEe,
    /// Any other value: unusable.
    Other(u8),
}

impl From<u8> for TlsaUsage {
    fn from(code: u8) -> Self {
        match code {
            0 => Self::PkixTa,
            1 => Self::PkixEe,
            2 => Self::DaneTa,
            3 => Self::DaneEe,
            other => Self::Other(other),
        }
    }
}

impl TlsaUsage {
    /// The value in the record.
    pub fn code(self) -> u8 {
        match self {
            Self::PkixTa => 0,
            Self::PkixEe => 1,
            Self::DaneTa => 2,
            Self::DaneEe => 3,
            Self::Other(code) => code,
        }
    }
}

/// Which part of a certificate a TLSA record's data is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsaSelector {
    /// 0: the whole certificate (DER).
    Certificate,
    /// 1: its SubjectPublicKeyInfo (DER).
    PublicKey,
    /// Any other value: unusable.
    Other(u8),
}

impl From<u8> for TlsaSelector {
    fn from(code: u8) -> Self {
        match code {
            0 => Self::Certificate,
            1 => Self::PublicKey,
            other => Self::Other(other),
        }
    }
}

impl TlsaSelector {
    /// The value in the record.
    pub fn code(self) -> u8 {
        match self {
            Self::Certificate => 0,
            Self::PublicKey => 1,
            Self::Other(code) => code,
        }
    }
}

/// How a TLSA record's data is compared with the selected bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsaMatching {
    /// 0: the bytes themselves.
    Exact,
    /// 1: their SHA-256 digest.
    Sha256,
    /// 2: their SHA-512 digest.
    Sha512,
    /// Any other value: unusable.
    Other(u8),
}

impl From<u8> for TlsaMatching {
    fn from(code: u8) -> Self {
        match code {
            0 => Self::Exact,
            1 => Self::Sha256,
            2 => Self::Sha512,
            other => Self::Other(other),
        }
    }
}

impl TlsaMatching {
    /// The value in the record.
    pub fn code(self) -> u8 {
        match self {
            Self::Exact => 0,
            Self::Sha256 => 1,
            Self::Sha512 => 2,
            Self::Other(code) => code,
        }
    }

    /// The selected bytes as this matching type compares them: themselves or their digest
    /// (`None` for an unknown type).
    pub fn apply(self, selected: &[u8]) -> Option<Vec<u8>> {
        match self {
            Self::Exact => Some(selected.to_vec()),
            Self::Sha256 => Some(
                ring::digest::digest(&ring::digest::SHA256, selected)
                    .as_ref()
                    .to_vec(),
            ),
            Self::Sha512 => Some(
                ring::digest::digest(&ring::digest::SHA512, selected)
                    .as_ref()
                    .to_vec(),
            ),
            Self::Other(_) => None,
        }
    }
}

/// One TLSA record: usage, selector, matching type and data (RFC 6698 §2.1).
///
/// Parsed from the presentation form `U S M HEX` (`"3 1 1 8f3c…"`; the hex may be split by
/// spaces, as zone files print it):
///
/// ```
/// use tlsresume_core::dane::{TlsaRecord, TlsaUsage};
///
/// let record: TlsaRecord = "3 1 1 0123 4567".parse()?;
/// assert_eq!(record.usage, TlsaUsage::DaneEe);
/// assert_eq!(record.data, [0x01, 0x23, 0x45, 0x67]);
/// // Well formed but unusable: a SHA-256 digest must be 32 bytes.
/// assert!(record.unusable().is_some());
/// assert!("3 1 1 xyz".parse::<TlsaRecord>().is_err());
/// # Ok::<(), tlsresume_core::dane::TlsaError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TlsaRecord {
    /// The certificate usage.
    pub usage: TlsaUsage,
    /// The selector.
    pub selector: TlsaSelector,
    /// The matching type.
    pub matching: TlsaMatching,
    /// The certificate association data.
    pub data: Vec<u8>,
}

impl TlsaRecord {
    /// A record from its wire values (a DNS answer's RDATA fields).
    pub fn new(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Self {
        Self {
            usage: usage.into(),
            selector: selector.into(),
            matching: matching.into(),
            data,
        }
    }

    /// Why an SMTP client may not use this record (RFC 7672 §2.2, §3.1.3), or `None` when it
    /// may.
    pub fn unusable(&self) -> Option<&'static str> {
        match self.usage {
            TlsaUsage::DaneTa | TlsaUsage::DaneEe => {}
            TlsaUsage::PkixTa | TlsaUsage::PkixEe => {
                return Some("PKIX usages (0, 1) are not used for SMTP (RFC 7672 section 3.1.3)")
            }
            TlsaUsage::Other(_) => return Some("unknown certificate usage"),
        }
        if let TlsaSelector::Other(_) = self.selector {
            return Some("unknown selector");
        }
        match (self.matching, self.data.len()) {
            (TlsaMatching::Other(_), _) => Some("unknown matching type"),
            (_, 0) => Some("no association data"),
            (TlsaMatching::Sha256, len) if len != 32 => Some("a SHA-256 digest is 32 bytes"),
            (TlsaMatching::Sha512, len) if len != 64 => Some("a SHA-512 digest is 64 bytes"),
            _ => None,
        }
    }

    /// Whether `selected` (a certificate's DER, or its SubjectPublicKeyInfo's, as the selector
    /// says) is what this record's data describes.
    pub fn matches_selected(&self, selected: &[u8]) -> bool {
        self.matching
            .apply(selected)
            .is_some_and(|value| value == self.data)
    }

    /// The record's wire fields in one byte string (usage, selector, matching type, data
    /// length as 4 bytes big-endian, data): the cache key's and the cache entry's form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 7);
        out.extend_from_slice(&[
            self.usage.code(),
            self.selector.code(),
            self.matching.code(),
        ]);
        out.extend_from_slice(
            &u32::try_from(self.data.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        out.extend_from_slice(&self.data);
        out
    }
}

impl fmt::Display for TlsaRecord {
    /// The presentation form, `U S M HEX` with lower-case hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} ",
            self.usage.code(),
            self.selector.code(),
            self.matching.code()
        )?;
        for byte in &self.data {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TlsaRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsaRecord({self})")
    }
}

/// Why a text is not a TLSA record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsaError {
    /// Fewer than four fields.
    #[error("a TLSA record is 'USAGE SELECTOR MATCHING HEX' (e.g. '3 1 1 8f3c...'), got '{0}'")]
    Fields(String),
    /// A numeric field is not a number from 0 to 255.
    #[error("TLSA {field} must be a number from 0 to 255, got '{value}'")]
    Number {
        /// `usage`, `selector` or `matching type`.
        field: &'static str,
        /// The text given.
        value: String,
    },
    /// The data is not hex, or has an odd number of digits.
    #[error("TLSA data must be hex digits in pairs: {0}")]
    Hex(String),
}

impl FromStr for TlsaRecord {
    type Err = TlsaError;

    fn from_str(text: &str) -> Result<Self, TlsaError> {
        let mut fields = text.split_whitespace();
        let mut number = |field: &'static str| -> Result<u8, TlsaError> {
            let value = fields
                .next()
                .ok_or_else(|| TlsaError::Fields(text.to_owned()))?;
            value.parse::<u8>().map_err(|_| TlsaError::Number {
                field,
                value: value.to_owned(),
            })
        };
        let usage = number("usage")?;
        let selector = number("selector")?;
        let matching = number("matching type")?;
        let hex: String = fields.collect();
        if hex.is_empty() {
            return Err(TlsaError::Fields(text.to_owned()));
        }
        Ok(Self::new(usage, selector, matching, decode_hex(&hex)?))
    }
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, TlsaError> {
    if hex.len() % 2 != 0 {
        return Err(TlsaError::Hex(format!("{} digits (odd)", hex.len())));
    }
    let digit = |c: u8| -> Result<u8, TlsaError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(TlsaError::Hex(format!(
                "'{}' is not a hex digit",
                char::from(c)
            ))),
        }
    };
    hex.as_bytes()
        .chunks(2)
        .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The record that authenticated a peer by DANE, and where in the chain it matched.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DaneAuthority {
    /// The matching record.
    pub record: TlsaRecord,
    /// The depth of the matching certificate in the chain the server sent (0: the leaf), as
    /// the library tells it; `None` where it does not (libgnutls-dane for DANE-TA).
    pub depth: Option<u8>,
}

impl fmt::Display for DaneAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.depth {
            Some(depth) => write!(f, "TLSA {} at depth {depth}", short(&self.record)),
            None => write!(f, "TLSA {}", short(&self.record)),
        }
    }
}

/// A record shown with at most 8 bytes of its data.
fn short(record: &TlsaRecord) -> String {
    let text = record.to_string();
    let prefix = 6; // "U S M "
    if text.len() > prefix + 16 {
        format!("{}...", &text[..prefix + 16])
    } else {
        text
    }
}

/// What a connection's TLSA records ask of it (see the [module](self) documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DanePlan {
    /// No DANE: the settings' own verification.
    #[default]
    Off,
    /// Records were given and none is usable: TLS without authentication.
    Unauthenticated,
    /// Verify by DANE only, against the usable records.
    Verify(DaneCheck),
}

/// The usable records a connection is verified against, and the names a DANE-TA(2) chain's
/// leaf must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaneCheck {
    /// The usable records, in the order given.
    pub records: Vec<TlsaRecord>,
    /// The reference names: the TLSA base domain (the server name) first.
    pub names: Vec<String>,
    /// How many records were given, usable or not.
    pub given: usize,
}

impl DaneCheck {
    /// Whether any record has usage DANE-TA(2).
    pub fn has_trust_anchors(&self) -> bool {
        self.records.iter().any(|r| r.usage == TlsaUsage::DaneTa)
    }
}

impl DanePlan {
    /// The plan for `records` (the caller's TLSA answer, `None` when DANE is not in use), for a
    /// connection to `server_name` whose other reference names are `names`.
    pub fn new(records: Option<&[TlsaRecord]>, server_name: &str, names: &[String]) -> Self {
        let Some(given) = records.filter(|r| !r.is_empty()) else {
            return Self::Off;
        };
        let usable: Vec<TlsaRecord> = given
            .iter()
            .filter(|r| r.unusable().is_none())
            .cloned()
            .collect();
        if usable.is_empty() {
            return Self::Unauthenticated;
        }
        let mut reference = vec![server_name.to_owned()];
        for name in names {
            if !reference.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                reference.push(name.clone());
            }
        }
        Self::Verify(DaneCheck {
            records: usable,
            names: reference,
            given: given.len(),
        })
    }

    /// The records to verify against, when the plan is to verify by DANE.
    pub fn check(&self) -> Option<&DaneCheck> {
        match self {
            Self::Verify(check) => Some(check),
            _ => None,
        }
    }
}

/// The cache key's DANE input: the records (sorted, so the order of a DNS answer does not
/// matter) and the reference names, each length-prefixed; `None` without records.
pub fn key_input(records: Option<&[TlsaRecord]>, names: &[String]) -> Option<Vec<u8>> {
    let records = records?;
    let mut encoded: Vec<Vec<u8>> = records.iter().map(TlsaRecord::to_bytes).collect();
    encoded.sort();
    let mut out = Vec::new();
    for record in encoded {
        out.push(b'r');
        out.extend_from_slice(&record);
    }
    let mut names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    names.sort();
    for name in names {
        out.push(b'n');
        out.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_presentation_form_and_refuses_malformed_text() {
        let r: TlsaRecord = "2 0 1 ".to_owned().add_hex(32).parse().expect("parse");
        assert_eq!(r.usage, TlsaUsage::DaneTa);
        assert_eq!(r.selector, TlsaSelector::Certificate);
        assert_eq!(r.matching, TlsaMatching::Sha256);
        assert_eq!(r.unusable(), None);
        assert_eq!(r.to_string().parse::<TlsaRecord>(), Ok(r.clone()));
        for bad in [
            "",
            "3 1 1",
            "3 1",
            "x 1 1 00",
            "3 256 1 00",
            "3 1 -1 00",
            "3 1 1 0",
            "3 1 1 zz",
        ] {
            let err = bad.parse::<TlsaRecord>().expect_err(bad);
            assert!(!err.to_string().is_empty(), "{bad}");
        }
        assert!(matches!(
            "3 1 1 0g".parse::<TlsaRecord>(),
            Err(TlsaError::Hex(_))
        ));
        assert!(matches!(
            "3 one 1 00".parse::<TlsaRecord>(),
            Err(TlsaError::Number {
                field: "selector",
                ..
            })
        ));
    }

    trait AddHex {
        fn add_hex(self, bytes: usize) -> String;
    }
    impl AddHex for String {
        fn add_hex(mut self, bytes: usize) -> String {
            self.push_str(&"ab".repeat(bytes));
            self
        }
    }

    #[test]
    fn usable_records_are_dane_usages_with_known_selectors_and_digests() {
        let cases = [
            ("3 1 1 ".to_owned().add_hex(32), true),
            ("2 0 2 ".to_owned().add_hex(64), true),
            ("3 0 0 ".to_owned().add_hex(3), true),
            ("3 1 1 ".to_owned().add_hex(31), false),
            ("3 1 2 ".to_owned().add_hex(32), false),
            ("1 1 1 ".to_owned().add_hex(32), false),
            ("0 0 1 ".to_owned().add_hex(32), false),
            ("4 1 1 ".to_owned().add_hex(32), false),
            ("3 2 1 ".to_owned().add_hex(32), false),
            ("3 1 3 ".to_owned().add_hex(32), false),
        ];
        for (text, usable) in cases {
            let r: TlsaRecord = text.parse().expect("parse");
            assert_eq!(r.unusable().is_none(), usable, "{text}");
        }
    }

    #[test]
    fn plans_follow_rfc_7672_section_2_2() {
        let good: TlsaRecord = "3 1 1 ".to_owned().add_hex(32).parse().expect("parse");
        let pkix: TlsaRecord = "1 1 1 ".to_owned().add_hex(32).parse().expect("parse");
        assert_eq!(DanePlan::new(None, "mx", &[]), DanePlan::Off);
        assert_eq!(DanePlan::new(Some(&[]), "mx", &[]), DanePlan::Off);
        assert_eq!(
            DanePlan::new(Some(std::slice::from_ref(&pkix)), "mx", &[]),
            DanePlan::Unauthenticated
        );
        let plan = DanePlan::new(
            Some(&[pkix, good.clone()]),
            "mx.example",
            &["MX.example".into(), "mail.example".into()],
        );
        let check = plan.check().expect("verify");
        assert_eq!(check.records, vec![good]);
        assert_eq!(check.names, vec!["mx.example", "mail.example"]);
        assert_eq!(check.given, 2);
    }

    #[test]
    fn the_key_input_ignores_record_order() {
        let a: TlsaRecord = "3 1 1 ".to_owned().add_hex(32).parse().expect("parse");
        let b: TlsaRecord = "2 0 0 0102".parse().expect("parse");
        let ab = key_input(Some(&[a.clone(), b.clone()]), &[]);
        assert_eq!(ab, key_input(Some(&[b.clone(), a.clone()]), &[]));
        assert_ne!(ab, key_input(Some(std::slice::from_ref(&a)), &[]));
        assert_ne!(ab, key_input(Some(&[a, b]), &["other".into()]));
        assert_eq!(key_input(None, &[]), None);
    }

    #[test]
    fn matching_compares_exact_bytes_or_digests() {
        let selected = b"some DER";
        let exact = TlsaRecord::new(3, 1, 0, selected.to_vec());
        assert!(exact.matches_selected(selected));
        assert!(!exact.matches_selected(b"other DER"));
        let sha256 = TlsaRecord::new(
            3,
            1,
            1,
            ring::digest::digest(&ring::digest::SHA256, selected)
                .as_ref()
                .to_vec(),
        );
        assert!(sha256.matches_selected(selected));
        let sha512 = TlsaRecord::new(
            3,
            1,
            2,
            ring::digest::digest(&ring::digest::SHA512, selected)
                .as_ref()
                .to_vec(),
        );
        assert!(sha512.matches_selected(selected));
        assert!(!sha512.matches_selected(b"other"));
    }
}
