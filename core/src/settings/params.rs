//! What one connection knows: [`ServerParams`], [`ClientParams`].

use std::net::{IpAddr, SocketAddr};

use crate::dane::TlsaRecord;

/// What a server knows about one incoming connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerParams {
    /// The client's address.
    pub peer: SocketAddr,
    /// The address the connection came in on (its port is the server's port).
    pub local: SocketAddr,
    /// The client's host name, if looked up.
    pub peer_name: Option<String>,
}

impl ServerParams {
    /// A connection from `peer` arriving on `local` (a `TcpStream`'s `peer_addr()` and
    /// `local_addr()`).
    pub fn new(peer: SocketAddr, local: SocketAddr) -> Self {
        Self {
            peer,
            local,
            peer_name: None,
        }
    }

    /// The client's host name, as looked up (host lists may match on it).
    pub fn peer_name(mut self, name: impl Into<String>) -> Self {
        self.peer_name = Some(name.into());
        self
    }
}

/// What a client knows about one outgoing connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientParams {
    /// The server's address.
    pub peer: SocketAddr,
    /// Our local address.
    pub local: Option<IpAddr>,
    /// The server name: sent as SNI and checked against the certificate.
    pub server_name: String,
    /// The host name from the server's EHLO response (load balancers); `None` for
    /// TLS-on-connect ([`crate::cache::NEVER_LB`]).
    pub lb_name: Option<String>,
    /// The TLSA records of the server (the DNSSEC-validated answer for `_25._tcp.<mx host>`
    /// the caller looked up), when DANE is in use: they decide how the server is verified
    /// (DANE only, or TLS without authentication when none is usable, see
    /// [`crate::dane`]) and are part of the cache key, so a session resumes only under the
    /// same records. `None`, or no records, leaves verification to the settings.
    pub dane: Option<Vec<TlsaRecord>>,
    /// The reference names a DANE-TA(2) chain's leaf may carry besides `server_name` (the
    /// TLSA base domain): the MX host name when CNAMEs made them differ (RFC 7672 §3.2.2).
    pub dane_names: Vec<String>,
}

impl ClientParams {
    /// A connection to `server_name` at `peer`.
    pub fn new(server_name: impl Into<String>, peer: SocketAddr) -> Self {
        Self {
            peer,
            local: None,
            server_name: server_name.into(),
            lb_name: None,
            dane: None,
            dane_names: Vec::new(),
        }
    }

    /// The local address the connection is made from (part of the cache key, as in Exim).
    pub fn local(mut self, local: IpAddr) -> Self {
        self.local = Some(local);
        self
    }

    /// The host name the server gave in its EHLO response (SMTP STARTTLS).
    pub fn lb_name(mut self, name: impl Into<String>) -> Self {
        self.lb_name = Some(name.into());
        self
    }

    /// The server's TLSA records: verify it by DANE (RFC 7672), see [`ClientParams::dane`].
    pub fn dane(mut self, records: Vec<TlsaRecord>) -> Self {
        self.dane = Some(records);
        self
    }

    /// Another name a DANE-TA(2) chain's leaf may carry (the MX host name, when it differs
    /// from the server name).
    pub fn dane_name(mut self, name: impl Into<String>) -> Self {
        self.dane_names.push(name.into());
        self
    }
}
