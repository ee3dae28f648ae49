//! The backends compiled into this build, chosen at run time by [`BackendKind`].

use std::sync::Arc;

use tlsresume_core::{
    BackendKind, ClientContext, ClientSettings, Error, ServerContext, ServerSettings,
};

/// The backends compiled in (by Cargo feature), in the order `openssl`, `gnutls`, `rustls`.
pub fn available() -> Vec<BackendKind> {
    BackendKind::ALL
        .into_iter()
        .filter(|k| is_available(*k))
        .collect()
}

/// Whether `kind` is compiled in.
pub fn is_available(kind: BackendKind) -> bool {
    match kind {
        BackendKind::Openssl => cfg!(feature = "openssl"),
        BackendKind::Gnutls => cfg!(feature = "gnutls"),
        BackendKind::Rustls => cfg!(feature = "rustls"),
    }
}

/// Parses a backend name, with an error listing the compiled-in backends when the name is
/// unknown or its backend is not compiled in.
pub fn parse(name: &str) -> Result<BackendKind, Error> {
    let not_here = || Error::UnknownBackend {
        name: name.to_owned(),
        available: available()
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let kind: BackendKind = name.parse().map_err(|_| not_here())?;
    if is_available(kind) {
        Ok(kind)
    } else {
        Err(not_here())
    }
}

fn missing(kind: BackendKind) -> Error {
    Error::Config(format!(
        "the {kind} backend is not compiled in (enable the cargo feature \"{kind}\")"
    ))
}

/// A server context of the chosen backend.
pub fn server(
    kind: BackendKind,
    settings: ServerSettings,
) -> Result<Arc<dyn ServerContext>, Error> {
    match kind {
        #[cfg(feature = "openssl")]
        BackendKind::Openssl => Ok(Arc::new(tlsresume_openssl::Server::new(settings)?)),
        #[cfg(feature = "gnutls")]
        BackendKind::Gnutls => Ok(Arc::new(tlsresume_gnutls::Server::new(settings)?)),
        #[cfg(feature = "rustls")]
        BackendKind::Rustls => Ok(Arc::new(tlsresume_rustls::Server::new(settings)?)),
        #[allow(unreachable_patterns)]
        other => {
            drop(settings);
            Err(missing(other))
        }
    }
}

/// A client context of the chosen backend.
pub fn client(
    kind: BackendKind,
    settings: ClientSettings,
) -> Result<Arc<dyn ClientContext>, Error> {
    match kind {
        #[cfg(feature = "openssl")]
        BackendKind::Openssl => Ok(Arc::new(tlsresume_openssl::Client::new(settings)?)),
        #[cfg(feature = "gnutls")]
        BackendKind::Gnutls => Ok(Arc::new(tlsresume_gnutls::Client::new(settings)?)),
        #[cfg(feature = "rustls")]
        BackendKind::Rustls => Ok(Arc::new(tlsresume_rustls::Client::new(settings)?)),
        #[allow(unreachable_patterns)]
        other => {
            drop(settings);
            Err(missing(other))
        }
    }
}
