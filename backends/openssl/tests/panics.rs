//! A panic inside a libssl callback never crosses into C: the handshake fails cleanly.

mod common;

use std::sync::Arc;

use common::*;
use tlsresume_core::keys::{KeyMaterial, MasterSecret};
use tlsresume_core::*;

#[derive(Debug)]
struct PanickingSource;

impl KeySource for PanickingSource {
    fn new_key(&self, _created: UnixTime) -> Result<KeyMaterial, KeyError> {
        panic!("key source panics (test)");
    }

    fn master_secret(&self) -> Result<MasterSecret, KeyError> {
        panic!("key source panics (test)");
    }
}

#[derive(Debug)]
struct FailingSource;

impl KeySource for FailingSource {
    fn new_key(&self, _created: UnixTime) -> Result<KeyMaterial, KeyError> {
        Err(KeyError::Source("down (test)".into()))
    }

    fn master_secret(&self) -> Result<MasterSecret, KeyError> {
        Err(KeyError::Source("down (test)".into()))
    }
}

fn server_with(source: Arc<dyn KeySource>, v: ProtocolVersion) -> Pair {
    let mut pair = Setup::new(v).build();
    let mut ss = ServerSettings::new(identity("ecdsa"));
    ss.key_source = source;
    ss.versions = Versions::only(v);
    ss.clock = Arc::new(pair.clock.clone());
    pair.server = Arc::new(tlsresume_openssl::Server::new(ss).expect("server"));
    pair
}

#[test]
fn panic_in_ticket_key_callback_fails_the_handshake_cleanly() {
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let pair = server_with(Arc::new(PanickingSource), v);
        let (server, _client) = pair.try_connect();
        assert!(
            server.is_err(),
            "{v}: the handshake fails, the process goes on"
        );
        assert!(pair.entry().is_none());
    }
}

/// A key source that fails (no key at all): the key callback returns 0 on encryption; the
/// handshake succeeds without a usable ticket. The server still counts the request (0x0B);
/// the client stores nothing (0x03).
#[test]
fn key_source_failure_means_no_ticket() {
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let pair = server_with(Arc::new(FailingSource), v);
        let out = pair.connect();
        assert_eq!(out.server.resumption.bits(), 0x0B, "{v}");
        assert_eq!(out.client.resumption.bits(), 0x03, "{v}");
        assert!(pair.entry().is_none(), "{v}");
    }
}
