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
    sets: Vec<Vec<Identity>>,
    /// Only one identity in one set: every connection is sent it, known before the resolver
    /// runs.
    only: Option<Served>,
}

/// One identity: the key rustls signs with, and what a connection it was sent to reports.
#[derive(Clone, Debug)]
struct Identity {
    key: Arc<CertifiedKey>,
    served: Served,
}

/// What a connection reports of the identity it was sent: the leaf certificate as this
/// server keeps it (one copy made when the server was built, shared by every report: no lock
/// nor search per handshake), and whether the OCSP staple goes with it.
#[derive(Clone, Debug)]
pub(crate) struct Served {
    /// The leaf certificate, DER.
    pub(crate) leaf: Option<Arc<[u8]>>,
    /// Whether the configured OCSP response is stapled with this identity.
    pub(crate) stapled: bool,
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
            let served = Served {
                leaf: certified.cert.first().map(|leaf| Arc::from(leaf.as_ref())),
                stapled: certified.ocsp.is_some(),
            };
            loaded.push(Identity {
                key: Arc::new(certified),
                served,
            });
        }
        let sets: Vec<Vec<Identity>> = table
            .sets()
            .iter()
            .map(|set| set.iter().filter_map(|&i| loaded.get(i).cloned()).collect())
            .collect();
        let only = match sets.as_slice() {
            [set] if set.len() == 1 => set.first().map(|identity| identity.served.clone()),
            _ => None,
        };
        Ok(Self { table, sets, only })
    }

    /// What a connection reports of the one identity, when there is only one.
    pub(crate) fn only(&self) -> Option<Served> {
        self.only.clone()
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
            [only] => Some(only),
            _ => {
                let schemes = hello.signature_schemes();
                set.iter()
                    .find(|k| k.key.key.choose_scheme(schemes).is_some())
                    .or_else(|| set.first())
            }
        };
        if self.records {
            crate::client_auth::with_current(|record| {
                record.handshake.server_name_seen(name);
                // With one identity the record has it from the start.
                if self.keys.only.is_none() {
                    record.served = chosen.map(|identity| identity.served.clone());
                }
            });
        }
        chosen.map(|identity| Arc::clone(&identity.key))
    }
}
