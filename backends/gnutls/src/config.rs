//! Settings → GnuTLS configuration: priority strings, credentials.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use zeroize::Zeroizing;

use tlsresume_core::{
    ClientSettings, Error, Identity, KeyFormat, ProtocolVersion, ServerSettings, Versions,
};

use crate::ffi::Credentials;
use crate::ffi::SessionRef;
use crate::ffi::{SuiteInputs, SuiteParts};
use tlsresume_core::identities::IdentityTable;
use tlsresume_core::info::{exim_cipher_from_gnutls_desc, exim_cipher_string};
use tlsresume_core::settings::ciphers::{CipherList, CipherSuite};
use tlsresume_core::BackendKind;
use tlsresume_core::CipherNames;

/// The priority string allowing exactly `versions` (TLS 1.2 and/or 1.3) and, when given, the
/// suites of `ciphers` over GnuTLS's `NORMAL`.
///
/// GnuTLS restricts by parts (ciphers, MACs, key exchanges), not by suite: the string allows
/// the parts of the listed suites, and the suites GnuTLS reads from it are checked to be
/// exactly those listed; a list whose parts would also allow others is refused, naming them.
pub(crate) fn priority(versions: &Versions, ciphers: Option<&CipherList>) -> Result<String, Error> {
    let text = versions_priority(versions)?;
    let Some(list) = ciphers else {
        return Ok(text);
    };
    let known = gnutls_suites();
    let can: Vec<CipherSuite> = known.iter().map(|(s, _)| *s).collect();
    let library = format!("GnuTLS {}", crate::ffi::version());
    list.check_supported(BackendKind::Gnutls, &library, &can)?;
    let parts: Vec<&SuiteParts> = list
        .suites()
        .iter()
        .filter(|s| versions.allows(s.version()))
        .filter_map(|s| known.iter().find(|(k, _)| k == s).map(|(_, p)| p))
        .collect();
    let mut text = text;
    let mut add = |remove: &str, names: Vec<&str>| {
        let mut seen: Vec<&str> = Vec::new();
        for name in names {
            if !seen.contains(&name) {
                seen.push(name);
            }
        }
        if !seen.is_empty() {
            text.push_str(&format!(":-{remove}"));
            for name in seen {
                text.push_str(&format!(":+{name}"));
            }
        }
    };
    add(
        "CIPHER-ALL",
        parts.iter().map(|p| p.cipher.as_str()).collect(),
    );
    add("MAC-ALL", parts.iter().map(|p| p.mac.as_str()).collect());
    add(
        "KX-ALL",
        parts.iter().filter_map(|p| p.kx.as_deref()).collect(),
    );
    let allowed = crate::ffi::priority_suites(&text)
        .map_err(|e| Error::Config(format!("GnuTLS refused the priority string {text}: {e}")))?;
    let wanted: Vec<u16> = parts.iter().map(|p| p.code).collect();
    let extra: Vec<CipherSuite> = allowed
        .iter()
        .filter(|p| !wanted.contains(&p.code))
        .filter_map(|p| CipherSuite::from_code(p.code))
        .collect();
    let unknown_extra = allowed
        .iter()
        .any(|p| !wanted.contains(&p.code) && CipherSuite::from_code(p.code).is_none());
    if !extra.is_empty() || unknown_extra {
        return Err(list.widened(
            BackendKind::Gnutls,
            "GnuTLS restricts by cipher, MAC and key exchange, not by suite",
            &extra,
        ));
    }
    if let Some(missing) = wanted
        .iter()
        .find(|code| !allowed.iter().any(|p| p.code == **code))
    {
        return Err(Error::setting(
            "ciphers",
            format!(
                "the gnutls backend ({library}) did not allow suite {missing:#06x} from the \
                 priority string {text}"
            ),
        ));
    }
    Ok(text)
}

/// The suites of [`CipherSuite::KNOWN`] this GnuTLS can negotiate, with their parts: those a
/// priority string allowing every version, cipher, MAC and key exchange holds, as GnuTLS
/// reads it.
fn gnutls_suites() -> &'static [(CipherSuite, SuiteParts)] {
    static SUITES: OnceLock<Vec<(CipherSuite, SuiteParts)>> = OnceLock::new();
    SUITES.get_or_init(|| {
        crate::ffi::priority_suites(
            "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:+CIPHER-ALL:+MAC-ALL:+KX-ALL",
        )
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| Some((CipherSuite::from_code(p.code)?, p)))
        .collect()
    })
}

/// The priority string allowing exactly `versions` over GnuTLS's `NORMAL`.
fn versions_priority(versions: &Versions) -> Result<String, Error> {
    let mut text = String::from("NORMAL:-VERS-ALL");
    if versions.allows(ProtocolVersion::Tls13) {
        text.push_str(":+VERS-TLS1.3");
    }
    if versions.allows(ProtocolVersion::Tls12) {
        text.push_str(":+VERS-TLS1.2");
    }
    if !text.contains('+') {
        return Err(Error::Config(format!(
            "no TLS version GnuTLS supports in {:?}..={:?}",
            versions.min, versions.max
        )));
    }
    Ok(text)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// One PEM block.
fn pem(label: &str, der: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("-----BEGIN {label}-----\n").as_bytes());
    for (i, chunk) in der.chunks(3).enumerate() {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for j in 0..4 {
            if j <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * j)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
        if (i + 1) % 16 == 0 {
            out.push(b'\n');
        }
    }
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    out.extend_from_slice(format!("-----END {label}-----\n").as_bytes());
}

/// The identity as PEM (chain, key) for `gnutls_certificate_set_x509_key_mem2`, which takes a
/// whole chain only in PEM.
fn identity_pem(identity: &Identity) -> (Vec<u8>, Zeroizing<Vec<u8>>) {
    let mut chain = Vec::new();
    for cert in identity.chain() {
        pem("CERTIFICATE", cert, &mut chain);
    }
    let label = match identity.key_format() {
        KeyFormat::Pkcs8 => "PRIVATE KEY",
        KeyFormat::Pkcs1 => "RSA PRIVATE KEY",
        KeyFormat::Sec1 => "EC PRIVATE KEY",
    };
    // Sized up front so the buffer holding the key never reallocates (a reallocation would
    // leave a copy behind that is not cleared).
    let der = identity.key_der();
    let lines = der.len().div_ceil(48);
    let mut key = Zeroizing::new(Vec::with_capacity(
        der.len().div_ceil(3) * 4 + lines + 2 * (label.len() + 17),
    ));
    let capacity = key.capacity();
    pem(label, der, &mut key);
    debug_assert_eq!(key.capacity(), capacity, "the key PEM buffer reallocated");
    (chain, key)
}

/// The server's credentials for each set of identities of `table` (index: the set): the
/// set's identities, in the order given (GnuTLS picks between them by what the client
/// supports), the OCSP staple with the first identity of the settings, whose response it is,
/// and the client CAs.
pub(crate) fn server_credentials(
    settings: &ServerSettings,
    table: &IdentityTable,
) -> Result<Vec<Arc<Credentials>>, Error> {
    (0..table.sets().len())
        .map(|set| set_credentials(settings, table, set))
        .collect()
}

fn set_credentials(
    settings: &ServerSettings,
    table: &IdentityTable,
    set: usize,
) -> Result<Arc<Credentials>, Error> {
    let mut creds = Credentials::new()?;
    creds.set_known_dh_params()?;
    let members = table.sets().get(set).map(Vec::as_slice).unwrap_or_default();
    for (i, entry) in table.set(set).enumerate() {
        let (chain, key) = identity_pem(entry.identity());
        creds.set_key_pem(&chain, &key)?;
        // The staple's index is the key's position in this structure.
        if let (Some(ocsp), Some(0)) = (&settings.ocsp_response, members.get(i)) {
            creds.set_ocsp_response_der(ocsp, i)?;
        }
    }
    // The client CAs: checked against, and named in the certificate request.
    for root in &settings.client_roots {
        creds.add_trust_der(root)?;
    }
    Ok(Arc::new(creds))
}

/// The client's credentials: the trust anchors, and the certificate presented when a server
/// asks for one.
pub(crate) fn client_credentials(settings: &ClientSettings) -> Result<Arc<Credentials>, Error> {
    let mut creds = Credentials::new()?;
    for root in &settings.roots {
        creds.add_trust_der(root)?;
    }
    if let Some(identity) = &settings.identity {
        let (chain, key) = identity_pem(identity);
        creds.set_key_pem(&chain, &key)?;
    }
    Ok(Arc::new(creds))
}

/// The cipher under its names.
///
/// `native` is `gnutls_session_get_desc`; `iana` is `gnutls_ciphersuite_get`; `exim` is Exim's
/// transformation of the description (the known issue: it differs between full and resumed
/// handshakes) or, with `iana_names` (hardened), `<version>:<IANA name>:<bits>`.
///
/// Formatting the description is most of the cost, and a process negotiates few distinct
/// suites: the names are kept per [`SuiteInputs`] (read with GnuTLS's getters) in a small
/// process-wide table, computed on a miss only.
pub(crate) fn cipher_names(session: &SessionRef, iana_names: bool) -> CipherNames {
    let key = (session.suite_inputs(), iana_names);
    let cached = lock_names().and_then(|names| {
        names
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    });
    if let Some(names) = cached {
        // Tests run debug builds: a key that misses an input of the names fails them here.
        debug_assert_eq!(names, cipher_names_uncached(session, iana_names));
        return names;
    }
    let names = cipher_names_uncached(session, iana_names);
    // An unfinished handshake has no description: nothing to keep.
    if !names.native.is_empty() {
        if let Some(mut table) = lock_names() {
            if table.len() < NAMES_KEPT && !table.iter().any(|(k, _)| *k == key) {
                table.push((key, names.clone()));
            }
        }
    }
    names
}

/// How many distinct (suite inputs, naming) pairs [`cipher_names`] keeps; beyond, it computes.
const NAMES_KEPT: usize = 64;

type NamesTable = Vec<((SuiteInputs, bool), CipherNames)>;

static NAMES: Mutex<NamesTable> = Mutex::new(Vec::new());

/// The table, or `None` when a thread panicked holding it (then names are computed).
fn lock_names() -> Option<MutexGuard<'static, NamesTable>> {
    NAMES.lock().ok()
}

fn cipher_names_uncached(session: &SessionRef, iana_names: bool) -> CipherNames {
    let native = session.description();
    let iana = session.ciphersuite().unwrap_or_default();
    let bits = session.cipher_bits();
    let exim = if iana_names {
        exim_cipher_string(session.protocol(), &iana, bits)
    } else {
        exim_cipher_from_gnutls_desc(&native, bits)
    };
    CipherNames {
        native: native.into(),
        exim: exim.into(),
        iana: iana.into(),
        bits,
    }
}

/// What a server reads from a client during one handshake at most: a ClientHello (at most
/// 64 KiB plus its record headers), a client's certificate chain and the rest of its flights
/// fit with room to spare. GnuTLS would otherwise hold a ClientHello of any announced size.
pub(crate) const SERVER_HANDSHAKE_BYTES: usize = 256 * 1024;

/// What a client reads from a server during one handshake at most: long certificate chains
/// fit with room to spare.
pub(crate) const CLIENT_HANDSHAKE_BYTES: usize = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_encoding_matches_base64() {
        let mut out = Vec::new();
        pem("X", b"hello world", &mut out);
        assert_eq!(
            out,
            b"-----BEGIN X-----\naGVsbG8gd29ybGQ=\n-----END X-----\n"
        );
        let mut out = Vec::new();
        pem("X", b"ab", &mut out);
        assert!(String::from_utf8_lossy(&out).contains("\nYWI=\n"));
    }

    #[test]
    fn priority_strings_limit_versions() {
        assert_eq!(
            priority(&Versions::ALL, None).ok().as_deref(),
            Some("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2")
        );
        assert_eq!(
            priority(&Versions::only(ProtocolVersion::Tls12), None)
                .ok()
                .as_deref(),
            Some("NORMAL:-VERS-ALL:+VERS-TLS1.2")
        );
        assert!(priority(&Versions::only(ProtocolVersion::Other(0x0301)), None).is_err());
    }
}
