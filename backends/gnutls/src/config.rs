//! Settings → GnuTLS configuration: priority strings, credentials.

use std::sync::Arc;

use zeroize::Zeroizing;

use tlsresume_core::{
    ClientSettings, Error, Identity, KeyFormat, ProtocolVersion, ServerSettings, Versions,
};

use crate::ffi::Credentials;
use crate::ffi::SessionRef;
use tlsresume_core::info::{exim_cipher_from_gnutls_desc, exim_cipher_string};
use tlsresume_core::CipherNames;

/// The priority string allowing exactly `versions` (TLS 1.2 and/or 1.3) over GnuTLS's `NORMAL`.
pub(crate) fn priority(versions: &Versions) -> Result<String, Error> {
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

/// The server's credentials: identity and, when configured, the OCSP staple.
pub(crate) fn server_credentials(settings: &ServerSettings) -> Result<Arc<Credentials>, Error> {
    let mut creds = Credentials::new()?;
    let (chain, key) = identity_pem(&settings.identity);
    creds.set_key_pem(&chain, &key)?;
    if let Some(ocsp) = &settings.ocsp_response {
        creds.set_ocsp_response_der(ocsp)?;
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
pub(crate) fn cipher_names(session: &SessionRef, iana_names: bool) -> CipherNames {
    let native = session.description();
    let iana = session.ciphersuite().unwrap_or_default();
    let bits = session.cipher_bits();
    let exim = if iana_names {
        exim_cipher_string(session.protocol(), &iana, bits)
    } else {
        exim_cipher_from_gnutls_desc(&native, bits)
    };
    CipherNames {
        native,
        exim,
        iana,
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
            priority(&Versions::ALL).ok().as_deref(),
            Some("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2")
        );
        assert_eq!(
            priority(&Versions::only(ProtocolVersion::Tls12))
                .ok()
                .as_deref(),
            Some("NORMAL:-VERS-ALL:+VERS-TLS1.2")
        );
        assert!(priority(&Versions::only(ProtocolVersion::Other(0x0301))).is_err());
    }
}
