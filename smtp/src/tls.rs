//! STARTTLS through any tlsresume backend: the [`StartTls`] of a [`ClientContext`].

use std::net::IpAddr;
use std::sync::Arc;

use tlsresume_core::{
    ClientContext, ClientParams, Error, SessionInfo, TlsStream, TlsaRecord, Transport,
};

use crate::client::{StartTls, UpgradeContext};
use crate::error::ErrorClass;

/// STARTTLS with a tlsresume client: a backend chosen at run time
/// (`tlsresume::backends::client`) or any backend's `Client` (each is a [`ClientContext`]),
/// with its session cache and resumption policy.
///
/// The cache key gets what only the SMTP dialogue knows: the server's address, and the host
/// name from its EHLO response as the load-balancer name ([`ClientParams::lb_name`]), as Exim
/// keys its client sessions. It lives here, on core alone, so the SMTP client needs no TLS
/// library of its own.
///
/// ```no_run
/// # fn f(client: std::sync::Arc<dyn tlsresume_core::ClientContext>) -> Result<(), Box<dyn std::error::Error>> {
/// use tlsresume_smtp::{Client, ClientConfig, Message, TlsUpgrade};
///
/// let smtp = Client::new(ClientConfig::new("client.example.net")?);
/// let tls = TlsUpgrade::new(client).server_name("mx.example.org");
/// let message = Message::new("a@example.net", ["b@example.org"], "Subject: hi\r\n\r\nhello\r\n");
/// let d = smtp.connect("192.0.2.1:25".parse()?, Some("mx.example.org"), Some(&tls), &message)?;
/// println!("{:?} resumed={:?}", d.l_field(), d.tls_info.map(|i| i.resumed));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct TlsUpgrade {
    client: Arc<dyn ClientContext>,
    server_name: Option<String>,
    local: Option<IpAddr>,
    dane: Option<Vec<TlsaRecord>>,
    dane_names: Vec<String>,
}

impl TlsUpgrade {
    /// STARTTLS with `client`. The server name (SNI, certificate check) is the one given to
    /// [`Client::connect`](crate::Client::connect) as `peer_name`, unless
    /// [`server_name`](Self::server_name) sets one.
    pub fn new(client: Arc<dyn ClientContext>) -> Self {
        Self {
            client,
            server_name: None,
            local: None,
            dane: None,
            dane_names: Vec::new(),
        }
    }

    /// The name sent as SNI and checked against the certificate.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The local address connections are made from (part of the session cache key).
    pub fn local(mut self, local: IpAddr) -> Self {
        self.local = Some(local);
        self
    }

    /// The server's TLSA records: verify it by DANE (RFC 7672), as Exim's
    /// `hosts_require_dane` ([`ClientParams::dane`] says how they are used).
    pub fn dane(mut self, records: Vec<TlsaRecord>) -> Self {
        self.dane = Some(records);
        self
    }

    /// Another reference name for DANE-TA(2) ([`ClientParams::dane_names`]).
    pub fn dane_name(mut self, name: impl Into<String>) -> Self {
        self.dane_names.push(name.into());
        self
    }

    /// The TLS client underneath.
    pub fn client(&self) -> &Arc<dyn ClientContext> {
        &self.client
    }

    /// The parameters a handshake in `context` is made with (its session cache key inputs),
    /// for callers that look at the cache before the handshake. Fails when no server name is
    /// known (neither set here nor given as the peer's name).
    pub fn params(&self, context: &UpgradeContext<'_>) -> Result<ClientParams, Error> {
        let name = self
            .server_name
            .as_deref()
            .or(context.peer_name)
            .ok_or_else(|| {
                Error::Config(format!(
                    "STARTTLS to {}: no server name to verify the certificate against",
                    context.peer
                ))
            })?;
        let mut params = ClientParams::new(name, context.peer);
        if let Some(local) = self.local {
            params = params.local(local);
        }
        if let Some(host) = context.ehlo_host {
            params = params.lb_name(host);
        }
        params.dane.clone_from(&self.dane);
        params.dane_names.clone_from(&self.dane_names);
        Ok(params)
    }
}

impl<S: Transport> StartTls<S> for TlsUpgrade {
    type Stream = Box<dyn TlsStream>;
    type Error = Error;

    fn upgrade(&self, plain: S, context: &UpgradeContext<'_>) -> Result<Self::Stream, Error> {
        let params = self.params(context)?;
        self.client.connect(Box::new(plain), &params)
    }

    fn session_info(stream: &Self::Stream) -> Option<SessionInfo> {
        Some(stream.info())
    }

    fn classify(error: &Error) -> ErrorClass {
        ErrorClass::of_tls(error)
    }
}
