//! `tlsresume decode`: Exim's words for a resumption value (`0x1d`, `29`), or the TLS fields
//! of a whole log line explained: the `X=` cipher element (with the `*` that Exim's
//! `tls_resumption` log selector appends on a resumed session), `CV=`, and the resumption value
//! as tlsresume writes it (`resumption=0x1D (…)`) or as Exim's test suite logs it
//! (`tls_in_resumption<TAB>session resumed`).

use tlsresume::{Error, Resumption};

/// The explanation of `input`: a value, or a log line.
pub fn explain(input: &str) -> Result<Vec<String>, Error> {
    let input = input.trim();
    let looks_like_line = input.contains("X=") || input.contains("resumption");
    match Resumption::parse_value(input) {
        Ok(bits) => return Ok(value_lines(bits)),
        Err(e) if !looks_like_line => {
            return Err(Error::Config(format!(
                "{e}, or a whole log line with X= or resumption="
            )))
        }
        Err(_) => {}
    }
    line_lines(input)
}

/// `0x1D session resumed` and the bits' names.
fn value_lines(bits: Resumption) -> Vec<String> {
    let mut out = vec![format!("0x{:02X} {}", bits.bits(), bits.describe())];
    let names: Vec<&str> = bits.iter_names().map(|(name, _)| name).collect();
    if !names.is_empty() {
        out.push(format!("  bits: {}", names.join(" | ")));
    }
    out
}

/// The whitespace-separated fields of a log line (Exim's fields hold no spaces, except quoted
/// ones such as `DN="…"` and `C="…"`, which are not read here).
fn fields(line: &str) -> impl Iterator<Item = &str> {
    line.split_whitespace()
}

/// Explains the TLS fields of a log line.
fn line_lines(line: &str) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let padded = format!(" {line} ");
    let side = if padded.contains(" <= ") {
        Some("received message (<=): the server side, $tls_in_*")
    } else if padded.contains(" => ") || padded.contains(" -> ") {
        Some("delivery (=> / ->): the client side, $tls_out_*")
    } else {
        None
    };
    if let Some(side) = side {
        out.push(side.to_owned());
    }
    let mut resumed_mark = None;
    if let Some(x) = fields(line).find_map(|f| f.strip_prefix("X=")) {
        let (cipher, resumed) = match x.strip_suffix('*') {
            Some(c) => (c, true),
            None => (x, false),
        };
        resumed_mark = Some(resumed);
        let parts: Vec<&str> = cipher.split(':').collect();
        let what = match parts.as_slice() {
            [version, suite @ .., bits] if !suite.is_empty() => format!(
                "{} {}, {} bits",
                version.replace("TLS1.", "TLS 1."),
                suite.join(":"),
                bits
            ),
            _ => format!("cipher {cipher}"),
        };
        out.push(format!("X={x}: {what}"));
        out.push(if resumed {
            "  '*': the session was resumed (Exim's log_selector +tls_resumption)".to_owned()
        } else {
            "  no '*': a full handshake (or the tls_resumption log selector is off)".to_owned()
        });
    }
    if let Some(cv) = fields(line).find_map(|f| f.strip_prefix("CV=")) {
        out.push(match cv {
            "yes" => "CV=yes: the server certificate was verified".to_owned(),
            "no" => "CV=no: not verified on this connection (on a resumption OpenSSL and rustls do not check again, Exim's known issue)".to_owned(),
            other => format!("CV={other}: {other}"),
        });
    }
    let value = resumption_value(line)?;
    match &value {
        Some(Found::Bits(bits)) => {
            out.push(format!("resumption value 0x{:02X}:", bits.bits()));
            out.extend(value_lines(*bits).into_iter().map(|l| format!("  {l}")));
            if let Some(mark) = resumed_mark {
                if mark != bits.contains(Resumption::USED) {
                    out.push(
                        "  note: X= and the resumption value disagree on whether the session was resumed"
                            .to_owned(),
                    );
                }
            }
        }
        Some(Found::Words(words, values)) => {
            let list: Vec<String> = values
                .iter()
                .map(|v| format!("0x{:02X}", v.bits()))
                .collect();
            out.push(format!(
                "resumption '{words}': Exim's words for {}",
                list.join(", ")
            ));
            if let Some(v) = values.first() {
                let names: Vec<&str> = v.iter_names().map(|(n, _)| n).collect();
                if values.len() == 1 {
                    out.push(format!("  bits: {}", names.join(" | ")));
                }
            }
        }
        None => {}
    }
    if resumed_mark.is_none() && value.is_none() {
        return Err(Error::Config(
            "no X= cipher field and no resumption value found in the line".into(),
        ));
    }
    Ok(out)
}

/// A resumption value found in a line.
enum Found {
    /// A number: `resumption=0x1D`, `tls_in_resumption=29`.
    Bits(Resumption),
    /// Exim's words (`tls_out_resumption<TAB>session resumed`) and every value they stand for.
    Words(String, Vec<Resumption>),
}

/// The resumption value in a line: a number after `resumption=` (tlsresume's lines) or
/// `tls_{in,out}_resumption=`, or Exim's words after `tls_{in,out}_resumption`.
fn resumption_value(line: &str) -> Result<Option<Found>, Error> {
    for f in fields(line) {
        let value = ["resumption=", "tls_in_resumption=", "tls_out_resumption="]
            .iter()
            .find_map(|p| f.strip_prefix(p));
        if let Some(v) = value {
            return Resumption::parse_value(v)
                .map(|b| Some(Found::Bits(b)))
                .map_err(|e| Error::Config(e.to_string()));
        }
    }
    for key in ["tls_in_resumption", "tls_out_resumption"] {
        let Some(at) = line.find(key) else { continue };
        let rest = line[at + key.len()..].trim_start_matches([' ', '\t', ':']);
        let words = rest.trim();
        if words.is_empty() {
            continue;
        }
        if let Ok(bits) = Resumption::parse_value(words) {
            return Ok(Some(Found::Bits(bits)));
        }
        let values: Vec<Resumption> = (0u8..=0x1f)
            .filter_map(Resumption::from_bits)
            .filter(|v| v.describe() == words)
            .collect();
        if values.is_empty() {
            return Err(Error::Config(format!(
                "'{words}' after {key} is not one of Exim's resumption texts"
            )));
        }
        return Ok(Some(Found::Words(words.to_owned(), values)));
    }
    Ok(None)
}
