//! One client test, two fronts: the blocking [`Client`] and the tokio one
//! ([`tlsresume_smtp::tokio::Client`]) behind the same calls, and [`fronts!`] that runs a test
//! body with each. STARTTLS goes through the crate's own adapters on both: [`TlsUpgrade`]
//! (blocking) and `tlsresume::tokio::SmtpStartTls` (the tokio connector) over the same
//! backend client, so its session cache is the same.
#![allow(dead_code)]

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};

use tlsresume::tokio::{SmtpStartTls, TlsConnector};
use tlsresume_core::SessionInfo;
use tlsresume_smtp::tokio as smtp_tokio;
use tlsresume_smtp::{
    Client, ClientConfig, Delivery, Message, SendError, Start, StreamedMessage, TlsUpgrade,
    UpgradeContext,
};
use tokio::io::{AsyncRead, ReadBuf};

/// Which client drives the dialogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front {
    /// [`Client`].
    Blocking,
    /// [`tlsresume_smtp::tokio::Client`], on a current-thread runtime.
    Tokio,
}

/// Runs each test body once per front: `fn name(front) { … }` becomes the tests
/// `name::blocking` and `name::tokio`, `front` the [`Front`].
macro_rules! fronts {
    ($($(#[$meta:meta])* fn $name:ident($front:ident) $body:block)*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                fn run($front: crate::fronts::Front) $body

                #[test]
                fn blocking() {
                    run(crate::fronts::Front::Blocking)
                }

                #[test]
                fn tokio() {
                    run(crate::fronts::Front::Tokio)
                }
            }
        )*
    };
}

/// A client on one front with the blocking client's calls.
pub struct Sender {
    front: Front,
    blocking: Client,
    tokio: smtp_tokio::Client,
    rt: tokio::runtime::Runtime,
}

type Many = Result<Vec<Result<Delivery, SendError>>, SendError>;

impl Sender {
    /// A client with `config` on `front`.
    pub fn new(front: Front, config: ClientConfig) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Self {
            front,
            blocking: Client::new(config.clone()),
            tokio: smtp_tokio::Client::new(config),
            rt,
        }
    }

    /// The front.
    pub fn front(&self) -> Front {
        self.front
    }

    /// `connect`, STARTTLS with `tls` when given.
    pub fn connect(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        tls: Option<&TlsUpgrade>,
        message: &Message,
    ) -> Result<Delivery, SendError> {
        let mut all = self.connect_many(peer, peer_name, tls, std::slice::from_ref(message))?;
        all.remove(0)
    }

    /// `connect_many`, STARTTLS with `tls` when given.
    pub fn connect_many(
        &self,
        peer: SocketAddr,
        peer_name: Option<&str>,
        tls: Option<&TlsUpgrade>,
        messages: &[Message],
    ) -> Many {
        match self.front {
            Front::Blocking => self.blocking.connect_many(peer, peer_name, tls, messages),
            Front::Tokio => {
                let tls = tls.map(|t| SmtpStartTls::new(t.clone()));
                self.rt.block_on(
                    self.tokio
                        .connect_many(peer, peer_name, tls.as_ref(), messages),
                )
            }
        }
    }

    /// `connect_streamed` in clear, the content from `content`.
    pub fn connect_streamed(
        &self,
        peer: SocketAddr,
        envelope: (&str, &[&str]),
        content: &mut (dyn Read + Send),
        size: Option<u64>,
    ) -> Result<Delivery, SendError> {
        let mail_from = envelope.0.to_string();
        let rcpt_to: Vec<String> = envelope.1.iter().map(|r| r.to_string()).collect();
        match self.front {
            Front::Blocking => self.blocking.connect_streamed::<tlsresume_smtp::NoTls>(
                peer,
                None,
                None,
                StreamedMessage {
                    mail_from,
                    rcpt_to,
                    content,
                    size,
                    dsn: Default::default(),
                },
            ),
            Front::Tokio => {
                let mut reader = ReadNow(content);
                let message = smtp_tokio::StreamedMessage {
                    mail_from,
                    rcpt_to,
                    content: &mut reader,
                    size,
                    dsn: Default::default(),
                };
                self.rt.block_on(
                    self.tokio
                        .connect_streamed::<tlsresume_smtp::NoTls>(peer, None, None, message),
                )
            }
        }
    }

    /// `send_many` in clear over a connection the caller made.
    pub fn send_many(&self, peer: SocketAddr, stream: TcpStream, messages: &[Message]) -> Many {
        match self.front {
            Front::Blocking => self.blocking.send_many::<_, tlsresume_smtp::NoTls>(
                peer,
                None,
                stream,
                Start::Clear,
                None,
                messages,
            ),
            Front::Tokio => self.rt.block_on(async {
                let stream = tokio_stream(stream);
                self.tokio
                    .send_many::<_, tlsresume_smtp::NoTls>(
                        peer,
                        None,
                        stream,
                        Start::Clear,
                        None,
                        messages,
                    )
                    .await
            }),
        }
    }

    /// `send` in clear over a connection the caller made.
    pub fn send(
        &self,
        peer: SocketAddr,
        stream: TcpStream,
        message: &Message,
    ) -> Result<Delivery, SendError> {
        let mut all = self.send_many(peer, stream, std::slice::from_ref(message))?;
        all.remove(0)
    }

    /// TLS-on-connect: a connection to `peer`, its handshake through `tls`'s client on this
    /// front, then `send` with [`Start::TlsOnConnect`]; the handshake's session too.
    pub fn send_on_connect(
        &self,
        peer: SocketAddr,
        tls: &TlsUpgrade,
        message: &Message,
    ) -> Result<(Delivery, SessionInfo), SendError> {
        let params = tls.params(&UpgradeContext::new(peer)).expect("params");
        let tcp = TcpStream::connect(peer).expect("connect");
        let none = None::<&tlsresume_smtp::NoTls>;
        match self.front {
            Front::Blocking => {
                let stream = tls
                    .client()
                    .connect(Box::new(tcp), &params)
                    .expect("handshake");
                let info = stream.info();
                let d =
                    self.blocking
                        .send(peer, None, stream, Start::TlsOnConnect, none, message)?;
                Ok((d, info))
            }
            Front::Tokio => self.rt.block_on(async {
                let connector = TlsConnector::new(tls.client().clone());
                let stream = connector
                    .connect(&params, tokio_stream(tcp))
                    .await
                    .expect("handshake");
                let info = stream.info().clone();
                let d = self
                    .tokio
                    .send(peer, None, stream, Start::TlsOnConnect, none, message)
                    .await?;
                Ok((d, info))
            }),
        }
    }
}

/// STARTTLS through the rustls backend with the test PKI's CA, for `mx.tlsresume.test`.
pub fn rustls_upgrade() -> TlsUpgrade {
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/pki/ca.pem");
    let roots = tlsresume_core::certificates_from_pem_file(ca.as_ref()).expect("ca");
    let settings = tlsresume_core::ClientSettings::new(roots);
    let client = tlsresume_rustls::Client::new(settings).expect("client");
    TlsUpgrade::new(std::sync::Arc::new(client)).server_name("mx.tlsresume.test")
}

fn tokio_stream(stream: TcpStream) -> tokio::net::TcpStream {
    stream.set_nonblocking(true).expect("nonblocking");
    tokio::net::TcpStream::from_std(stream).expect("tokio stream")
}

/// A blocking reader that never waits (content in memory) as an `AsyncRead`.
struct ReadNow<'r>(&'r mut (dyn Read + Send));

impl AsyncRead for ReadNow<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.0.read(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}
