//! Settings → rustls configuration: the ring provider, the clock as rustls's time provider,
//! certificates and keys.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use rustls::time_provider::TimeProvider;
use rustls::SupportedProtocolVersion;
use tlsresume_core::settings::ciphers::{CipherList, CipherSuite};
use tlsresume_core::{
    BackendKind, Error, Identity, KeyFormat, ProtocolVersion, SharedClock, Versions,
};

/// The ring provider every config is built with.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The ring provider limited to `ciphers`, in the list's order; `None`: every suite it has.
/// A suite the provider does not have (rustls has no CBC, DHE or RSA key exchange) is refused,
/// naming those it has.
pub(crate) fn provider_for(ciphers: Option<&CipherList>) -> Result<Arc<CryptoProvider>, Error> {
    let Some(list) = ciphers else {
        return Ok(provider());
    };
    let mut provider = rustls::crypto::ring::default_provider();
    let can: Vec<CipherSuite> = provider
        .cipher_suites
        .iter()
        .filter_map(|s| CipherSuite::from_code(u16::from(s.suite())))
        .collect();
    list.check_supported(BackendKind::Rustls, "rustls, ring provider", &can)?;
    let all = std::mem::take(&mut provider.cipher_suites);
    provider.cipher_suites = list
        .suites()
        .iter()
        .filter_map(|want| {
            all.iter()
                .copied()
                .find(|s| u16::from(s.suite()) == want.code())
        })
        .collect();
    Ok(Arc::new(provider))
}

/// The tlsresume clock as rustls's time source, so ticket ages, session expiry and certificate
/// validity all follow a virtual clock in tests.
#[derive(Debug)]
pub(crate) struct ClockTime(pub(crate) SharedClock);

impl TimeProvider for ClockTime {
    fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
        Some(rustls::pki_types::UnixTime::since_unix_epoch(
            self.0.now().since_epoch(),
        ))
    }
}

/// The rustls versions for a version range; an error when the range allows none.
pub(crate) fn versions(range: &Versions) -> Result<Vec<&'static SupportedProtocolVersion>, Error> {
    let mut out = Vec::new();
    if range.allows(ProtocolVersion::Tls13) {
        out.push(&rustls::version::TLS13);
    }
    if range.allows(ProtocolVersion::Tls12) {
        out.push(&rustls::version::TLS12);
    }
    if out.is_empty() {
        return Err(Error::Config(format!(
            "no TLS version rustls supports between {} and {}",
            range.min, range.max
        )));
    }
    Ok(out)
}

/// The identity's chain and key in rustls's types.
pub(crate) fn chain_and_key(
    identity: &Identity,
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let chain = identity
        .chain()
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let der = identity.key_der().to_vec();
    let key = match identity.key_format() {
        KeyFormat::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
        KeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
        KeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
    };
    (chain, key)
}
