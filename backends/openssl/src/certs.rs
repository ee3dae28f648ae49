//! The certificates a [`SessionInfo`](tlsresume_core::SessionInfo) reports, without encoding
//! them again on every handshake.
//!
//! libssl holds certificates parsed (`X509`); the report wants their DER. Encoding (`i2d_X509`)
//! on every handshake was the largest part of what this backend added to a full handshake
//! (measured: ~26 k of its ~55 k instructions over a bare `SslStream`, and more in cycles: the
//! ASN.1 encoder is cold, branchy code). What is encoded once is kept:
//!
//! - a server's own leaves ([`LocalLeaves`]): libssl hands back the very `X509` the context
//!   was loaded with (`SSL_get_certificate`), so it is found by pointer, its DER known;
//! - the chains a client was sent lately ([`PeerChains`]): a new connection's chain is compared
//!   with the kept ones certificate by certificate, without encoding (`X509_cmp`: the SHA-1 of
//!   the whole certificate libssl computed while verifying, and the bytes of the received
//!   `tbsCertificate`; then the signature algorithm and the signature themselves), so a kept
//!   chain is given only for a chain whose DER is the same, byte for byte.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use openssl::ssl::SslRef;
use openssl::x509::{X509Ref, X509};
use tlsresume_core::info::share_certificate;

use crate::ffi;

/// A server's own leaf certificates, parsed as loaded into its contexts, with their DER.
#[derive(Default)]
pub(crate) struct LocalLeaves(Vec<(X509, Arc<[u8]>)>);

impl fmt::Debug for LocalLeaves {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalLeaves")
            .field("leaves", &self.0.len())
            .finish()
    }
}

impl LocalLeaves {
    /// Keeps `leaf` (the object given to `SSL_CTX_use_certificate`) with its DER.
    pub(crate) fn add(&mut self, leaf: X509, der: &[u8]) {
        self.0.push((leaf, share_certificate(der)));
    }

    /// The DER of the certificate a connection sent: the kept copy when it is one of ours (by
    /// pointer: libssl's connections hold their context's objects), else encoded.
    pub(crate) fn der_of(&self, cert: &X509Ref) -> Option<Arc<[u8]>> {
        match self
            .0
            .iter()
            .find(|(leaf, _)| std::ptr::eq::<X509Ref>(&**leaf, cert))
        {
            Some((_, der)) => Some(Arc::clone(der)),
            None => cert.to_der().ok().map(|der| share_certificate(&der)),
        }
    }
}

/// How many peer chains a client keeps: a client talking to a few servers in turn finds each
/// one's chain without encoding it.
const KEPT_CHAINS: usize = 8;

/// A chain a client was sent: the certificates as libssl parsed them, and their DER.
struct KeptChain {
    certs: Vec<X509>,
    der: Arc<[Vec<u8>]>,
}

/// The chains a client was sent lately.
#[derive(Default)]
pub(crate) struct PeerChains {
    kept: Mutex<VecDeque<KeptChain>>,
}

impl PeerChains {
    /// The peer's chain, leaf first, DER: a kept copy when the same certificates were sent
    /// before, else encoded (and kept).
    pub(crate) fn chain_of(&self, ssl: &SslRef) -> Arc<[Vec<u8>]> {
        let leaf = ssl.peer_certificate();
        let refs = peer_cert_refs(leaf.as_deref(), ssl.peer_cert_chain());
        let count = refs.clone().count();
        if count == 0 {
            return no_chain();
        }
        // Compared where OpenSSL holds them: a chain kept already is found without a copy.
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = kept.iter().find(|k| {
            k.certs.len() == count
                && k.certs
                    .iter()
                    .zip(refs.clone())
                    .all(|(a, b)| ffi::same_certificate(a, b))
        }) {
            return Arc::clone(&found.der);
        }
        let certs: Vec<X509> = refs.map(X509Ref::to_owned).collect();
        let der: Arc<[Vec<u8>]> = encode(&certs).into();
        // A certificate that did not encode is left out of the report: such a chain is not
        // kept, so the next connection tries again.
        if der.len() == certs.len() {
            if kept.len() == KEPT_CHAINS {
                kept.pop_front();
            }
            kept.push_back(KeptChain {
                certs,
                der: Arc::clone(&der),
            });
        }
        der
    }
}

/// The peer's chain, leaf first, DER, encoded now (a server's view of its clients).
pub(crate) fn peer_chain(ssl: &SslRef) -> Arc<[Vec<u8>]> {
    let der = encode(&peer_certs(ssl));
    if der.is_empty() {
        return no_chain();
    }
    der.into()
}

/// The empty chain every connection without a peer certificate shares (no allocation).
fn no_chain() -> Arc<[Vec<u8>]> {
    tlsresume_core::info::share_chain::<Vec<u8>>(&[])
}

fn encode(certs: &[X509]) -> Vec<Vec<u8>> {
    certs.iter().filter_map(|c| c.to_der().ok()).collect()
}

/// The peer's certificates, leaf first. On a server OpenSSL's chain leaves out the client's
/// own certificate (`SSL_get_peer_cert_chain(3)`): it is put first. On a client the chain
/// already starts with it.
fn peer_certs(ssl: &SslRef) -> Vec<X509> {
    let leaf = ssl.peer_certificate();
    peer_cert_refs(leaf.as_deref(), ssl.peer_cert_chain())
        .map(X509Ref::to_owned)
        .collect()
}

/// [`peer_certs`] borrowed: `leaf` (`SSL_get_peer_certificate`) first unless `chain` starts
/// with it, then `chain`.
fn peer_cert_refs<'a>(
    leaf: Option<&'a X509Ref>,
    chain: Option<&'a openssl::stack::StackRef<X509>>,
) -> impl Iterator<Item = &'a X509Ref> + Clone {
    let first = chain.and_then(|chain| chain.iter().next());
    let missing_leaf =
        leaf.filter(|leaf| !first.is_some_and(|first| ffi::same_certificate(first, leaf)));
    let len = chain.map_or(0, |chain| chain.len());
    missing_leaf
        .into_iter()
        .chain((0..len).filter_map(move |i| chain.and_then(|chain| chain.get(i))))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use openssl::x509::X509;
    use tlsresume_core::ProtocolVersion;

    use crate::ffi::same_certificate;
    use crate::test_harness::{identity, roots, Setup};

    /// Parsed certificates compare as their DER does, without encoding them.
    #[test]
    fn same_certificate_is_der_equality() {
        let ecdsa = identity("ecdsa");
        let rsa = identity("rsa");
        let leaf = &ecdsa.chain()[0];
        let a = X509::from_der(leaf).expect("leaf");
        let b = X509::from_der(leaf).expect("leaf again");
        assert!(same_certificate(&a, &a));
        assert!(same_certificate(&a, &b), "two parses of one DER");
        let other = X509::from_der(&rsa.chain()[0]).expect("other leaf");
        assert!(!same_certificate(&a, &other));
        let root = X509::from_der(&roots()[0]).expect("root");
        assert!(!same_certificate(&a, &root));
        // The same certificate with one bit of its signature changed: another DER.
        let mut changed = leaf.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        let changed = X509::from_der(&changed).expect("still DER");
        assert!(!same_certificate(&a, &changed));
    }

    /// A client reports the chain it was sent, encoded once: every later connection to the
    /// same server shares that copy; the server reports its own leaf as loaded.
    #[test]
    fn chains_and_leaves_are_reported_without_encoding_again() {
        for version in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
            let setup = Setup::new(version);
            let sent: Vec<Vec<u8>> = setup.identity.chain().to_vec();
            let pair = setup.build();
            let first = pair.connect();
            let second = pair.connect();
            assert_eq!(&first.client.peer_certificates[..], &sent[..], "{version}");
            assert!(
                Arc::ptr_eq(
                    &first.client.peer_certificates,
                    &second.client.peer_certificates
                ),
                "{version}: one copy"
            );
            for outcome in [&first, &second] {
                if !outcome.server.resumed {
                    assert_eq!(
                        outcome.server.local_certificate.as_deref(),
                        Some(&sent[0][..]),
                        "{version}"
                    );
                }
            }
            assert!(first.server.peer_certificates.is_empty(), "{version}");
        }
    }
}
