//! Minimal DER reading: enough to pick apart a certificate and an OCSP response, for the
//! backends and tools that must check or build OCSP data the TLS library does not handle.
//!
//! Every function takes untrusted bytes and returns `None` on anything malformed (short input,
//! a length past the end, a length of more than four bytes); nothing panics.

/// INTEGER.
pub const INTEGER: u8 = 0x02;
/// BIT STRING.
pub const BIT_STRING: u8 = 0x03;
/// OCTET STRING.
pub const OCTET_STRING: u8 = 0x04;
/// NULL.
pub const NULL: u8 = 0x05;
/// OBJECT IDENTIFIER.
pub const OID: u8 = 0x06;
/// ENUMERATED.
pub const ENUMERATED: u8 = 0x0a;
/// GeneralizedTime.
pub const GENERALIZED_TIME: u8 = 0x18;
/// SEQUENCE.
pub const SEQUENCE: u8 = 0x30;

/// One element: its tag, its contents, and its whole encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag byte.
    pub tag: u8,
    /// The contents.
    pub contents: &'a [u8],
    /// Tag, length and contents.
    pub whole: &'a [u8],
}

/// Reads one element from the front of `input`; returns it and the rest.
pub fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*input.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let whole = input.get(..header.checked_add(len)?)?;
    Some((
        Tlv {
            tag,
            contents: whole.get(header..)?,
            whole,
        },
        input.get(whole.len()..)?,
    ))
}

/// Reads an element that must have `tag`.
pub fn expect(input: &[u8], tag: u8) -> Option<(Tlv<'_>, &[u8])> {
    let (t, rest) = read(input)?;
    (t.tag == tag).then_some((t, rest))
}

/// The bytes of a BIT STRING's contents whose bit count is a multiple of eight (the only kind
/// keys and signatures use).
pub fn bit_string(contents: &[u8]) -> Option<&[u8]> {
    match contents.split_first()? {
        (0, bytes) => Some(bytes),
        _ => None,
    }
}

/// The parts of a certificate that OCSP names and checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertParts<'a> {
    /// The serialNumber INTEGER's contents.
    pub serial: &'a [u8],
    /// The issuer Name, whole DER.
    pub issuer: &'a [u8],
    /// The subject Name, whole DER.
    pub subject: &'a [u8],
    /// The SubjectPublicKeyInfo's algorithm parameters when they are an OID (the curve of an
    /// EC key).
    pub key_params: Option<&'a [u8]>,
    /// The subjectPublicKey bytes (without the unused-bits byte).
    pub key: &'a [u8],
}

/// Picks a DER certificate apart.
pub fn cert_parts(der: &[u8]) -> Option<CertParts<'_>> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert.contents, SEQUENCE)?;
    let mut rest = tbs.contents;
    if rest.first() == Some(&0xa0) {
        rest = read(rest)?.1;
    }
    let (serial, rest) = expect(rest, INTEGER)?;
    let (_sig_alg, rest) = expect(rest, SEQUENCE)?;
    let (issuer, rest) = expect(rest, SEQUENCE)?;
    let (_validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, rest) = expect(rest, SEQUENCE)?;
    let (spki, _) = expect(rest, SEQUENCE)?;
    let (alg, bits) = expect(spki.contents, SEQUENCE)?;
    let (_alg_oid, params) = expect(alg.contents, OID)?;
    let key_params = expect(params, OID).map(|(p, _)| p.contents);
    let (bits, _) = expect(bits, BIT_STRING)?;
    Some(CertParts {
        serial: serial.contents,
        issuer: issuer.whole,
        subject: subject.whole,
        key_params,
        key: bit_string(bits.contents)?,
    })
}

/// Seconds since the epoch of a GeneralizedTime's contents, `YYYYMMDDHHMMSSZ`.
pub fn generalized_time(t: &[u8]) -> Option<u64> {
    if t.len() != 15 || t[14] != b'Z' {
        return None;
    }
    let num = |a: usize, b: usize| -> Option<u64> {
        std::str::from_utf8(t.get(a..b)?).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (h, mi, s) = (num(8, 10)?, num(10, 12)?, num(12, 14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), 1970-01-01 = 0.
    let (y, m) = if mo <= 2 {
        (y.checked_sub(1)?, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths_and_refuses_overruns() {
        let (t, rest) = read(&[0x04, 0x02, 0xaa, 0xbb, 0xcc]).expect("short");
        assert_eq!(
            (t.tag, t.contents, rest),
            (0x04, &[0xaa, 0xbb][..], &[0xcc][..])
        );
        let mut long = vec![0x04, 0x81, 200];
        long.extend([7u8; 200]);
        assert_eq!(read(&long).map(|(t, _)| t.contents.len()), Some(200));
        assert_eq!(read(&[0x04, 0x05, 1]), None);
        assert_eq!(read(&[0x04, 0x85, 0, 0, 0, 0, 1]), None);
        assert_eq!(read(&[0x04]), None);
        assert_eq!(expect(&[0x04, 0x00], SEQUENCE), None);
        assert_eq!(bit_string(&[1, 2]), None);
        assert_eq!(bit_string(&[0, 2]), Some(&[2][..]));
    }

    #[test]
    fn generalized_time_matches_known_values() {
        assert_eq!(generalized_time(b"19700101000000Z"), Some(0));
        assert_eq!(generalized_time(b"20000301000000Z"), Some(951_868_800));
        assert_eq!(generalized_time(b"20461124175807Z"), Some(2_426_695_087));
        assert_eq!(generalized_time(b"2046112417580Z"), None);
        assert_eq!(generalized_time(b"20461324175807Z"), None);
        assert_eq!(generalized_time(b"00000101000000Z"), None);
    }
}
