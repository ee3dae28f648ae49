//! `SessionInfo` from a rustls connection.

use rustls::{CipherSuite, CommonState, HandshakeKind, SupportedCipherSuite};
use tlsresume_core::{exim_cipher_string, CipherNames, ProtocolVersion};

/// Whether the handshake resumed a session.
pub(crate) fn resumed(conn: &CommonState) -> bool {
    conn.handshake_kind() == Some(HandshakeKind::Resumed)
}

/// The negotiated version.
pub(crate) fn protocol(conn: &CommonState) -> ProtocolVersion {
    ProtocolVersion::from_wire(conn.protocol_version().map(u16::from).unwrap_or(0))
}

/// The suite under its three names. rustls names TLS 1.3 suites `TLS13_…`; the IANA name (and
/// so the Exim string) drops the `13`. The Exim string is the same on full and resumed
/// handshakes.
pub(crate) fn cipher(conn: &CommonState) -> CipherNames {
    let Some(suite) = conn.negotiated_cipher_suite() else {
        return CipherNames::default();
    };
    let native = suite_name(suite.suite());
    let iana = native.replacen("TLS13_", "TLS_", 1);
    let bits = key_bits(&suite);
    CipherNames {
        exim: exim_cipher_string(protocol(conn), &iana, bits),
        native,
        iana,
        bits,
    }
}

fn suite_name(suite: CipherSuite) -> String {
    format!("{suite:?}")
}

fn key_bits(suite: &SupportedCipherSuite) -> u32 {
    let name = suite_name(suite.suite());
    if name.contains("AES_128") {
        128
    } else {
        // AES-256 and ChaCha20 both have 256-bit keys.
        256
    }
}
