//! Ticket-key glue: the server's per-connection state, and the decisions the ticket callbacks
//! in [`crate::callbacks`] take from the core [`KeyRing`] on the settings' clock.
//!
//! OpenSSL asks for a key by name first (the ticket key callback) and shows the decrypted
//! session later (the session ticket decrypt callback), so the two halves of
//! [`TicketLifecycle::decide`] are taken apart: [`TicketLifecycle::find_key`] in the key
//! callback (unknown or expired key → return 0, a full handshake; renew time passed → return
//! 2), and [`TicketLifecycle::check_age`] in the decrypt callback, on the issue time the
//! ticket carries in its app data (written by the generate callback).

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::ffi::ArcIndex;
use openssl::ssl::SslRef;
use tlsresume_core::contract::ServerHandshake;
use tlsresume_core::keys::key_ring::{lend_encrypting_key, lend_key, KeyRing, TicketLifecycle};
use tlsresume_core::keys::{KeyName, TicketKey};
use tlsresume_core::{ProtocolVersion, RejectReason, SharedClock, UnixTime};

use crate::certs::LocalLeaves;
use crate::ffi::ticket_return;

/// What the server side of one connection has seen, shared with the callbacks: the core's
/// [`ServerHandshake`], which decides what is reported.
#[derive(Debug, Clone)]
pub(crate) struct ServerState {
    pub(crate) handshake: ServerHandshake,
}

/// The server side of one connection: the key ring and clock for the callbacks, the policy
/// decision, and the state the callbacks write.
#[derive(Debug)]
pub(crate) struct ServerConn {
    /// The server's part, the same for every connection.
    pub(crate) shared: Arc<ServerShared>,
    pub(crate) may_issue: bool,
    pub(crate) state: Mutex<ServerState>,
}

/// What a server's connections share: the key ring and clock for the callbacks, the OCSP
/// staple, and the server's own leaves.
#[derive(Debug)]
pub(crate) struct ServerShared {
    pub(crate) ring: Arc<KeyRing>,
    pub(crate) clock: SharedClock,
    /// The OCSP response stapled.
    pub(crate) ocsp_response: Option<Vec<u8>>,
    /// With several certificates, the leaf the staple is for (the first identity's).
    pub(crate) staple_leaf: Option<Vec<u8>>,
    /// The server's own leaves, with their DER (reported without encoding them again).
    pub(crate) leaves: LocalLeaves,
}

/// The magic of the app data a ticket carried before server names were bound: `TR` +
/// version 1, then the issue time in microseconds (big endian).
const APPDATA_MAGIC_V1: &[u8; 4] = b"TRt1";
/// The magic of the app data a ticket carries: `TR` + version 2, the issue time in
/// microseconds (big endian), then the server name it was issued under (empty: none).
const APPDATA_MAGIC: &[u8; 4] = b"TRt2";

/// What a ticket's app data says: when it was issued, under which server name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TicketData {
    pub(crate) issued: UnixTime,
    pub(crate) server_name: Option<String>,
}

/// Encodes a ticket's app data.
pub(crate) fn encode_appdata(issued: UnixTime, server_name: Option<&str>) -> Vec<u8> {
    let name = server_name.unwrap_or_default().as_bytes();
    let mut out = Vec::with_capacity(12 + name.len());
    out.extend_from_slice(APPDATA_MAGIC);
    out.extend_from_slice(&issued.as_micros().to_be_bytes());
    out.extend_from_slice(name);
    out
}

/// Decodes a ticket's app data; `None` for anything else (a ticket from another program). A
/// version 1 ticket carries no name.
pub(crate) fn decode_appdata(data: &[u8]) -> Option<TicketData> {
    if let Some(rest) = data.strip_prefix(APPDATA_MAGIC_V1) {
        let micros: [u8; 8] = rest.try_into().ok()?;
        return Some(TicketData {
            issued: UnixTime::from_micros(u64::from_be_bytes(micros)),
            server_name: None,
        });
    }
    let rest = data.strip_prefix(APPDATA_MAGIC)?;
    let (micros, name) = rest.split_first_chunk::<8>()?;
    let name = std::str::from_utf8(name).ok()?;
    Some(TicketData {
        issued: UnixTime::from_micros(u64::from_be_bytes(*micros)),
        server_name: (!name.is_empty()).then(|| name.to_owned()),
    })
}

impl ServerConn {
    /// Locks the state; a poisoned lock (a panic in another callback) still gives the data.
    pub(crate) fn state(&self) -> MutexGuard<'_, ServerState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn refused(&self, reason: RejectReason) {
        self.state().handshake.ticket_refused(reason);
    }

    /// Ticket encryption: sets CLIENT_REQUESTED and runs `seal` on the key to seal with, lent
    /// by the key ring for the call (no reference of it taken per ticket, as the rustls
    /// backend's sealer); `None` (no ticket) when the key source has nothing.
    pub(crate) fn with_encrypting_key<T>(&self, seal: impl FnOnce(&TicketKey) -> T) -> Option<T> {
        self.state().handshake.ticket_sealed();
        if !self.may_issue {
            return None;
        }
        lend_encrypting_key(&*self.shared.ring, self.shared.clock.now(), seal).ok()
    }

    /// Ticket decryption: sets CLIENT_SUGGESTED and runs `open` on the named key (lent, as
    /// above) and whether to renew; `None` (a full handshake) for an unknown or expired key or
    /// a client not allowed to resume.
    pub(crate) fn with_decrypting_key<T>(
        &self,
        name: [u8; 16],
        open: impl FnOnce(&TicketKey, bool) -> T,
    ) -> Option<T> {
        self.state().handshake.ticket_presented();
        if !self.may_issue {
            self.refused(RejectReason::UnknownKey);
            return None;
        }
        match lend_key(
            &*self.shared.ring,
            &KeyName(name),
            self.shared.clock.now(),
            open,
        ) {
            Ok(opened) => Some(opened),
            Err(reason) => {
                self.refused(reason);
                None
            }
        }
    }

    /// The app data for a ticket about to be sealed: the issue time and the server name.
    ///
    /// OpenSSL resets a session's time when it issues a TLS 1.3 ticket, but a TLS 1.2 ticket
    /// renewed on a resumed handshake keeps the resumed session's time; `existing` gives the
    /// resumed session's app data in that case (asked for only then), kept as it is.
    pub(crate) fn ticket_appdata(
        &self,
        protocol: Option<ProtocolVersion>,
        resumed: bool,
        existing: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Vec<u8> {
        if protocol == Some(ProtocolVersion::Tls12) && resumed {
            if let Some(existing) = existing().filter(|d| decode_appdata(d).is_some()) {
                return existing;
            }
        }
        encode_appdata(
            self.shared.clock.now(),
            self.state().handshake.server_name(),
        )
    }

    /// The decrypt callback's answer for a ticket whose key was found (`decrypted`), with the
    /// key callback's renewal wish, from the issue time and server name the ticket carries:
    /// OpenSSL resumes a ticket issued under another name (TLS 1.2 keeps the old name, TLS 1.3
    /// takes the new one), so the name is checked here.
    pub(crate) fn decrypt_decision(
        &self,
        decrypted: bool,
        renew: bool,
        appdata: Option<Vec<u8>>,
    ) -> libc::c_int {
        if !self.may_issue {
            return ticket_return::IGNORE;
        }
        if !decrypted {
            return ticket_return::IGNORE_RENEW;
        }
        let Some(data) = appdata.as_deref().and_then(decode_appdata) else {
            self.refused(RejectReason::UnknownKey);
            return ticket_return::IGNORE_RENEW;
        };
        match self
            .shared
            .ring
            .check_age(data.issued, self.shared.clock.now())
        {
            Err(reason) => {
                self.refused(reason);
                ticket_return::IGNORE_RENEW
            }
            Ok(())
                if !self
                    .state()
                    .handshake
                    .may_resume_under(data.server_name.as_deref()) =>
            {
                ticket_return::IGNORE_RENEW
            }
            Ok(()) if renew => ticket_return::USE_RENEW,
            Ok(()) => ticket_return::USE,
        }
    }
}

/// The ex_data slot holding each server connection's [`ServerConn`].
pub(crate) fn server_index() -> Option<ArcIndex<ServerConn>> {
    static INDEX: OnceLock<Option<ArcIndex<ServerConn>>> = OnceLock::new();
    *INDEX.get_or_init(ArcIndex::new)
}

/// The connection state of a server SSL, if it is one of ours.
pub(crate) fn server_conn(ssl: &SslRef) -> Option<Arc<ServerConn>> {
    server_index()?.get(ssl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appdata_roundtrips_and_rejects_garbage() {
        let t = UnixTime::from_micros(1_700_000_000_123_456);
        let data = |name: Option<&str>| TicketData {
            issued: t,
            server_name: name.map(str::to_owned),
        };
        assert_eq!(decode_appdata(&encode_appdata(t, None)), Some(data(None)));
        assert_eq!(
            decode_appdata(&encode_appdata(t, Some("a.example"))),
            Some(data(Some("a.example")))
        );
        let mut v1 = b"TRt1".to_vec();
        v1.extend_from_slice(&t.as_micros().to_be_bytes());
        assert_eq!(decode_appdata(&v1), Some(data(None)));
        assert_eq!(decode_appdata(b""), None);
        assert_eq!(decode_appdata(b"TRt1short"), None);
        assert_eq!(decode_appdata(b"TRt2short"), None);
        assert_eq!(decode_appdata(b"XXXX12345678"), None);
    }
}
