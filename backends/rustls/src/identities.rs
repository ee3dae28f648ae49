//! Several certificates: a rustls `ResolvesServerCert` over the core
//! [`IdentityTable`]: the set the client's name selects, then within it the first key that can
//! sign with a scheme the client offers.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tlsresume_core::identities::IdentityTable;
use tlsresume_core::{Error, ServerSettings};

use crate::config::{chain_and_key, provider};

/// Every identity of a server as rustls keys, by set (set 0: the default).
#[derive(Debug)]
pub(crate) struct Keys {
    table: IdentityTable,
    sets: Vec<Vec<Arc<CertifiedKey>>>,
}

impl Keys {
    /// Loads every identity (a key that does not match its certificate is refused here); the
    /// OCSP staple goes with the first identity, whose response it is.
    pub(crate) fn new(settings: &ServerSettings) -> Result<Self, Error> {
        let table = settings.identity_table()?;
        let provider = provider();
        let mut loaded = Vec::with_capacity(table.entries().len());
        for (i, entry) in table.entries().iter().enumerate() {
            let (chain, key) = chain_and_key(entry.identity());
            let mut certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
                Error::Config(format!("server certificate and private key {i}: {e}"))
            })?;
            if i == 0 {
                certified.ocsp = settings.ocsp_response.clone();
            }
            loaded.push(Arc::new(certified));
        }
        let sets = table
            .sets()
            .iter()
            .map(|set| set.iter().filter_map(|&i| loaded.get(i).cloned()).collect())
            .collect();
        Ok(Self { table, sets })
    }

    /// The one identity, when there is only one.
    pub(crate) fn only(&self) -> Option<Arc<CertifiedKey>> {
        match self.sets.as_slice() {
            [set] if set.len() == 1 => set.first().cloned(),
            _ => None,
        }
    }

    /// Whether there is more than one identity.
    pub(crate) fn several(&self) -> bool {
        self.table.entries().len() > 1
    }
}

/// The certificate resolver of a server configuration: chooses, and, when `records`, records
/// the name the client sent and the certificate chosen in the record of the connection being
/// stepped ([`with_current`](crate::client_auth::with_current)): one resolver serves every
/// connection of the configuration.
#[derive(Debug)]
pub(crate) struct Resolver {
    pub(crate) keys: Arc<Keys>,
    pub(crate) records: bool,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name();
        let set = self.keys.sets.get(self.keys.table.select(name))?;
        // Asking a key whether it can sign makes a signer (an allocation): with one key in the
        // set, it is the one chosen either way.
        let chosen = match set.as_slice() {
            [only] => Some(only.clone()),
            _ => {
                let schemes = hello.signature_schemes();
                set.iter()
                    .find(|k| k.key.choose_scheme(schemes).is_some())
                    .or_else(|| set.first())
                    .cloned()
            }
        };
        if self.records {
            crate::client_auth::with_current(|record| {
                record.handshake.server_name_seen(name);
                record.served = chosen.clone();
            });
        }
        chosen
    }
}
