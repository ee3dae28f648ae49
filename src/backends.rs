//! The backends compiled into this build, chosen at run time by [`BackendKind`].

use std::sync::Arc;

use tlsresume_core::contract::Backend;
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

/// How to make the type-erased contexts of one backend.
struct Erased {
    client: fn(ClientSettings) -> Result<Arc<dyn ClientContext>, Error>,
    server: fn(ServerSettings) -> Result<Arc<dyn ServerContext>, Error>,
}

#[allow(dead_code)] // with no backend feature nothing is compiled in
fn erased<B: Backend>() -> Erased
where
    B::Client: ClientContext,
    B::Server: ServerContext,
{
    Erased {
        client: |settings| Ok(Arc::new(B::client(settings)?)),
        server: |settings| Ok(Arc::new(B::server(settings)?)),
    }
}

/// The chosen backend, when it is compiled in.
fn compiled(kind: BackendKind) -> Result<Erased, Error> {
    match kind {
        #[cfg(feature = "openssl")]
        BackendKind::Openssl => Ok(erased::<tlsresume_openssl::Openssl>()),
        #[cfg(feature = "gnutls")]
        BackendKind::Gnutls => Ok(erased::<tlsresume_gnutls::Gnutls>()),
        #[cfg(feature = "rustls")]
        BackendKind::Rustls => Ok(erased::<tlsresume_rustls::Rustls>()),
        #[allow(unreachable_patterns)]
        other => Err(missing(other)),
    }
}

/// A server context of the chosen backend.
pub fn server(
    kind: BackendKind,
    settings: ServerSettings,
) -> Result<Arc<dyn ServerContext>, Error> {
    (compiled(kind)?.server)(settings)
}

/// A client context of the chosen backend.
pub fn client(
    kind: BackendKind,
    settings: ClientSettings,
) -> Result<Arc<dyn ClientContext>, Error> {
    (compiled(kind)?.client)(settings)
}
