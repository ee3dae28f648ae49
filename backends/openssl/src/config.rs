//! Settings → OpenSSL configuration: identity, versions, cipher suites, trust anchors, ALPN.

use std::sync::OnceLock;

use openssl::pkey::{PKey, Private};
use openssl::ssl::{Ssl, SslContext, SslContextBuilder, SslMethod, SslRef, SslVersion};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::X509;
use tlsresume_core::settings::ciphers::{CipherList, CipherSuite};
use tlsresume_core::{BackendKind, Error, Identity, KeyFormat, ProtocolVersion, Versions};

use crate::error::config;
use crate::ffi;

fn ssl_version(v: ProtocolVersion) -> Result<SslVersion, Error> {
    match v {
        ProtocolVersion::Tls12 => Ok(SslVersion::TLS1_2),
        ProtocolVersion::Tls13 => Ok(SslVersion::TLS1_3),
        ProtocolVersion::Other(code) => Err(Error::Config(format!(
            "TLS version {code:#06x} is not supported by this backend (TLS 1.2 and 1.3 are)"
        ))),
    }
}

/// Limits the context to `versions`.
pub(crate) fn set_versions(ctx: &mut SslContextBuilder, versions: Versions) -> Result<(), Error> {
    if versions.min > versions.max {
        return Err(Error::Config(format!(
            "minimum TLS version {} is above maximum {}",
            versions.min, versions.max
        )));
    }
    ctx.set_min_proto_version(Some(ssl_version(versions.min)?))
        .map_err(|e| config("minimum TLS version", e))?;
    ctx.set_max_proto_version(Some(ssl_version(versions.max)?))
        .map_err(|e| config("maximum TLS version", e))
}

/// The suites of [`CipherSuite::KNOWN`] this OpenSSL can negotiate at its default security
/// level (the system's configuration applies, as to every context), with their OpenSSL names:
/// what a connection of a context set to every cipher (`ALL`) and every TLS 1.3 suite could
/// use, as the library lists it (`SSL_get1_supported_ciphers`).
fn openssl_suites() -> &'static [(CipherSuite, String)] {
    static SUITES: OnceLock<Vec<(CipherSuite, String)>> = OnceLock::new();
    SUITES.get_or_init(|| {
        let Ok(mut ctx) = SslContext::builder(SslMethod::tls()) else {
            return Vec::new();
        };
        let tls13: Vec<&str> = CipherSuite::KNOWN
            .iter()
            .filter(|s| s.version() == ProtocolVersion::Tls13)
            .map(|s| s.name())
            .collect();
        if ctx.set_cipher_list("ALL").is_err() || ctx.set_ciphersuites(&tls13.join(":")).is_err() {
            return Vec::new();
        }
        let Ok(ssl) = Ssl::new(&ctx.build()) else {
            return Vec::new();
        };
        ffi::supported_ciphers(&ssl)
            .into_iter()
            .filter_map(|(code, name)| Some((CipherSuite::from_code(code)?, name)))
            .collect()
    })
}

/// Limits the context to `list` (versions already limited to those it names suites for):
/// the TLS 1.2 suites by their OpenSSL names (`SSL_CTX_set_cipher_list`), the TLS 1.3 suites
/// by their IANA names (`SSL_CTX_set_ciphersuites`). A suite this OpenSSL cannot use is
/// refused, naming those it can, and the context's own list is read back: it must hold
/// exactly the suites asked for.
pub(crate) fn set_ciphers(
    ctx: &mut SslContextBuilder,
    list: &CipherList,
    versions: Versions,
) -> Result<(), Error> {
    let known = openssl_suites();
    let can: Vec<CipherSuite> = known.iter().map(|(s, _)| *s).collect();
    list.check_supported(BackendKind::Openssl, openssl::version::version(), &can)?;
    let tls12: Vec<&str> = list
        .for_version(ProtocolVersion::Tls12)
        .filter_map(|s| known.iter().find(|(k, _)| *k == s).map(|(_, n)| n.as_str()))
        .collect();
    let tls13: Vec<&str> = list
        .for_version(ProtocolVersion::Tls13)
        .map(CipherSuite::name)
        .collect();
    // An empty TLS 1.2 list is refused by OpenSSL; TLS 1.2 is then off (`versions`).
    if !tls12.is_empty() {
        ctx.set_cipher_list(&tls12.join(":"))
            .map_err(|e| config("TLS 1.2 cipher list", e))?;
    }
    ctx.set_ciphersuites(&tls13.join(":"))
        .map_err(|e| config("TLS 1.3 cipher suites", e))?;
    let held: Vec<u16> = ffi::ctx_ciphers(ctx)
        .into_iter()
        .map(|(code, _)| code)
        // The suites of a version that is off do not count (OpenSSL keeps its default TLS 1.2
        // list, PSK suites included, when no TLS 1.2 suite is named).
        .filter(|&code| {
            versions.allows(if code >> 8 == 0x13 {
                ProtocolVersion::Tls13
            } else {
                ProtocolVersion::Tls12
            })
        })
        .collect();
    let wanted: Vec<u16> = list
        .suites()
        .iter()
        .filter(|s| versions.allows(s.version()))
        .map(|s| s.code())
        .collect();
    let mut sorted = (held.clone(), wanted.clone());
    sorted.0.sort_unstable();
    sorted.1.sort_unstable();
    if sorted.0 != sorted.1 {
        let extra: Vec<CipherSuite> = held
            .iter()
            .filter(|c| !wanted.contains(c))
            .filter_map(|&c| CipherSuite::from_code(c))
            .collect();
        return Err(list.widened(
            BackendKind::Openssl,
            "its context holds another set than the one asked for",
            &extra,
        ));
    }
    Ok(())
}

/// The private key of an identity.
fn private_key(identity: &Identity) -> Result<PKey<Private>, Error> {
    let der = identity.key_der();
    let parsed = match identity.key_format() {
        KeyFormat::Pkcs8 => PKey::private_key_from_pkcs8(der),
        KeyFormat::Pkcs1 => openssl::rsa::Rsa::private_key_from_der(der).and_then(PKey::from_rsa),
        KeyFormat::Sec1 => {
            openssl::ec::EcKey::private_key_from_der(der).and_then(PKey::from_ec_key)
        }
    };
    parsed
        .or_else(|_| PKey::private_key_from_der(der))
        .map_err(|e| {
            Error::Config(format!(
                "the private key ({:?}) could not be loaded: {e}",
                identity.key_format()
            ))
        })
}

/// Loads the certificate chain and key; a key that does not match the certificate is an
/// [`Error::Config`]. Gives back the leaf, the object the context holds.
pub(crate) fn load_identity(
    ctx: &mut SslContextBuilder,
    identity: &Identity,
) -> Result<X509, Error> {
    let mut chain = identity.chain().iter().enumerate().map(|(i, der)| {
        X509::from_der(der).map_err(|e| {
            Error::Config(format!(
                "certificate {i} of the chain is not valid DER X.509: {e}"
            ))
        })
    });
    let leaf = chain
        .next()
        .ok_or_else(|| Error::Config("the certificate chain is empty".into()))??;
    ctx.set_certificate(&leaf)
        .map_err(|e| config("certificate", e))?;
    let key = private_key(identity)?;
    ctx.set_private_key(&key)
        .map_err(|e| config("private key", e))?;
    // The chain of this certificate (a context may hold an RSA and an ECDSA one, each with its
    // own chain).
    for cert in chain {
        crate::ffi::ctx_add1_chain_cert(ctx, &*cert?)
            .map_err(|e| config("chain certificate", e))?;
    }
    ctx.check_private_key().map_err(|e| {
        Error::Config(format!(
            "the private key does not match the certificate ({e})"
        ))
    })?;
    Ok(leaf)
}

/// Asks clients for certificates that chain to `roots` (checked against a store of their own,
/// so the system's default paths never count), naming the roots' subjects in the request.
/// OpenSSL refuses to resume a session on a context that checks peers unless it has a session
/// ID context: the context gets one.
pub(crate) fn client_cas(ctx: &mut SslContextBuilder, roots: &[Vec<u8>]) -> Result<(), Error> {
    let (store, certs) = self::roots(roots)?;
    ctx.set_verify_cert_store(store)
        .map_err(|e| config("client CA store", e))?;
    for cert in &certs {
        ctx.add_client_ca(cert)
            .map_err(|e| config("client CA name", e))?;
    }
    ctx.set_session_id_context(b"tlsresume")
        .map_err(|e| config("session ID context", e))
}

/// The trust anchors as a store and as certificates (OCSP issuer lookup).
pub(crate) fn roots(roots: &[Vec<u8>]) -> Result<(X509Store, Vec<X509>), Error> {
    let mut builder = X509StoreBuilder::new().map_err(|e| config("certificate store", e))?;
    let mut certs = Vec::with_capacity(roots.len());
    for (i, der) in roots.iter().enumerate() {
        let cert = X509::from_der(der)
            .map_err(|e| Error::Config(format!("trust anchor {i} is not valid DER X.509: {e}")))?;
        builder
            .add_cert(cert.clone())
            .map_err(|e| config("trust anchor", e))?;
        certs.push(cert);
    }
    Ok((builder.build(), certs))
}

/// ALPN protocols in wire format (length-prefixed).
pub(crate) fn alpn_wire(protocols: &[Vec<u8>]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for p in protocols {
        let len = u8::try_from(p.len())
            .ok()
            .filter(|&l| l > 0)
            .ok_or_else(|| Error::Config("an ALPN protocol name must be 1 to 255 bytes".into()))?;
        out.push(len);
        out.extend_from_slice(p);
    }
    Ok(out)
}

/// The server's ALPN choice: its first preference the client offers, as a slice of the
/// client's list.
pub(crate) fn select_alpn<'a>(server: &[Vec<u8>], client: &'a [u8]) -> Option<&'a [u8]> {
    let mut offered = Vec::new();
    let mut rest = client;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len);
        if tail.len() < len {
            break;
        }
        let (name, tail) = tail.split_at(len);
        offered.push(name);
        rest = tail;
    }
    server
        .iter()
        .find_map(|want| offered.iter().copied().find(|o| *o == want.as_slice()))
}

/// The negotiated version.
pub(crate) fn protocol_of(ssl: &SslRef) -> Option<ProtocolVersion> {
    let v = ssl.version2()?;
    Some(if v == SslVersion::TLS1_3 {
        ProtocolVersion::Tls13
    } else if v == SslVersion::TLS1_2 {
        ProtocolVersion::Tls12
    } else if v == SslVersion::TLS1_1 {
        ProtocolVersion::Other(0x0302)
    } else if v == SslVersion::TLS1 {
        ProtocolVersion::Other(0x0301)
    } else {
        ProtocolVersion::Other(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_selection_follows_server_preference() {
        let client = alpn_wire(&[b"h2".to_vec(), b"smtp".to_vec()]).expect("wire");
        let server = [b"smtp".to_vec(), b"h2".to_vec()];
        assert_eq!(select_alpn(&server, &client), Some(&b"smtp"[..]));
        assert_eq!(select_alpn(&[b"x".to_vec()], &client), None);
        assert_eq!(select_alpn(&server, &[5, b'a']), None);
        assert!(alpn_wire(&[vec![]]).is_err());
    }
}
