//! Loopback harness: a server thread per handshake on one listener (so the client's cache key,
//! which includes the server's address, stays the same), a ManualClock shared by both sides.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tlsresume_core::contract::ClientContract;
use tlsresume_core::pki::read_file;
use tlsresume_core::*;
use tlsresume_openssl::{Client, Server, Stream};

pub const MIN: u64 = 60;

pub fn pki(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/pki")
        .join(name)
}

pub fn identity(kind: &str) -> Identity {
    Identity::from_pem_files(
        &pki(&format!("server-{kind}.pem")),
        &pki(&format!("server-{kind}.key")),
    )
    .expect("identity")
}

pub fn roots() -> Vec<Vec<u8>> {
    certificates_from_pem_file(&pki("ca.pem")).expect("ca")
}

pub fn ocsp_response(kind: &str) -> Vec<u8> {
    read_file(&pki(&format!("server-{kind}.ocsp.der"))).expect("ocsp")
}

/// A server and a client on one listener and one virtual clock.
pub struct Pair {
    pub listener: TcpListener,
    pub server: Arc<Server>,
    pub client: Client,
    pub clock: ManualClock,
    pub store: Arc<MemoryStore>,
    pub server_name: String,
}

pub struct Setup {
    pub version: Option<ProtocolVersion>,
    pub server_policy: ResumptionPolicy,
    pub client_policy: ResumptionPolicy,
    pub ticket_policy: TicketPolicy,
    pub identity: Identity,
    pub ocsp_response: Option<Vec<u8>>,
    pub ocsp: OcspMode,
    pub verify: VerifyMode,
    pub roots: Vec<Vec<u8>>,
    pub alpn: Vec<Vec<u8>>,
}

impl Setup {
    pub fn new(version: ProtocolVersion) -> Self {
        Self {
            version: Some(version),
            server_policy: ResumptionPolicy::exim_compatible(),
            client_policy: ResumptionPolicy::exim_compatible(),
            ticket_policy: TicketPolicy::OPENSSL,
            identity: identity("ecdsa"),
            ocsp_response: None,
            ocsp: OcspMode::Off,
            verify: VerifyMode::Require,
            roots: roots(),
            alpn: Vec::new(),
        }
    }

    pub fn build(self) -> Pair {
        let clock = ManualClock::new(UnixTime::now());
        let store = Arc::new(MemoryStore::new(16));
        let versions = self.version.map_or(Versions::ALL, Versions::only);
        let mut ss = ServerSettings::new(self.identity);
        ss.clock = Arc::new(clock.clone());
        ss.versions = versions;
        ss.resumption = self.server_policy;
        ss.ticket_policy = Some(self.ticket_policy);
        ss.ocsp_response = self.ocsp_response;
        ss.alpn = self.alpn.clone();
        let mut cs = ClientSettings::new(self.roots);
        cs.clock = Arc::new(clock.clone());
        cs.versions = versions;
        cs.resumption = self.client_policy;
        cs.store = store.clone();
        cs.ocsp = self.ocsp;
        cs.verify = self.verify;
        cs.alpn = self.alpn;
        Pair {
            listener: TcpListener::bind("127.0.0.1:0").expect("bind"),
            server: Arc::new(Server::new(ss).expect("server")),
            client: Client::new(cs).expect("client"),
            clock,
            store,
            server_name: "mx.tlsresume.test".into(),
        }
    }
}

pub struct Outcome {
    pub server: SessionInfo,
    pub client: SessionInfo,
    /// The client's info right after the handshake, before any read.
    pub client_before_read: SessionInfo,
}

impl Pair {
    pub fn params(&self) -> ClientParams {
        ClientParams::new(
            self.server_name.clone(),
            self.listener.local_addr().expect("addr"),
        )
    }

    pub fn key(&self) -> CacheKey {
        self.client
            .settings()
            .cache_key(tlsresume_openssl::BACKEND, &self.params())
    }

    pub fn entry(&self) -> Option<CacheEntry> {
        self.store.get(&self.key()).expect("store")
    }

    pub fn put(&self, entry: CacheEntry) {
        self.store.put(&self.key(), entry).expect("put");
    }

    /// Puts `entry` back as if stored now (its library session as it was, sealed again with
    /// the new store time as the client seals what it stores).
    pub fn restore_now(&self, entry: &CacheEntry) {
        let der = self.open(entry);
        self.put({
            let mut updated = entry.clone();
            updated.stored_at = self.clock.now();
            self.reseal(&mut updated, &der);
            updated
        });
    }

    /// The library's session bytes (DER) inside a stored entry's sealed bytes.
    pub fn open(&self, entry: &CacheEntry) -> Vec<u8> {
        self.store
            .session_key()
            .open_session("openssl", &self.key(), entry)
            .expect("sealed under the store's key")
            .to_vec()
    }

    /// `der` sealed into `entry` as the client seals what it stores.
    pub fn reseal(&self, entry: &mut CacheEntry, der: &[u8]) {
        entry.session = self
            .store
            .session_key()
            .seal_session("openssl", &self.key(), entry, der);
    }

    pub fn advance_mins(&self, mins: u64) {
        self.clock.advance(Duration::from_secs(mins * MIN));
    }

    /// The server side of one connection, on a thread: writes "hello", reads the client's "ok"
    /// (or its going away) and shuts down. `look` is run on the stream once its handshake is
    /// done.
    fn serve_one<T: Send + 'static>(
        &self,
        look: fn(&Stream<Box<TcpStream>>) -> T,
    ) -> thread::JoinHandle<Result<(SessionInfo, T), Error>> {
        let server = Arc::clone(&self.server);
        let listener = self.listener.try_clone().expect("clone listener");
        thread::spawn(move || -> Result<(SessionInfo, T), Error> {
            let (tcp, peer) = listener.accept()?;
            tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
            let params = ServerParams::new(peer, tcp.local_addr()?);
            let mut stream = server.accept(Box::new(tcp), &params)?;
            let seen = look(&stream);
            stream.write_all(b"hello")?;
            let mut buf = [0u8; 2];
            let _ = stream.read_exact(&mut buf);
            let info = stream.info().clone();
            let _ = stream.shutdown();
            Ok((info, seen))
        })
    }

    /// One connection: the server writes "hello", the client reads it (TLS 1.3 tickets arrive
    /// then) and answers "ok".
    pub fn try_connect(&self) -> (Result<SessionInfo, Error>, Result<Outcome2, Error>) {
        let (server, client) = self.try_connect_looking(|_| ());
        (
            server.map(|(info, ())| info),
            client.map(|(outcome, ())| outcome),
        )
    }

    /// [`try_connect`](Self::try_connect), with `look` run on each end's stream once its
    /// handshake is done: what it saw on the server and on the client.
    pub fn try_connect_looking<T: Send + 'static>(
        &self,
        look: fn(&Stream<Box<TcpStream>>) -> T,
    ) -> Looked<T> {
        let handle = self.serve_one(look);
        let client = (|| -> Result<(Outcome2, T), Error> {
            let tcp = TcpStream::connect(self.listener.local_addr()?)?;
            tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut stream = self.client.connect(Box::new(tcp), &self.params())?;
            let seen = look(&stream);
            let before = stream.info().clone();
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf)?;
            assert_eq!(&buf, b"hello");
            stream.write_all(b"ok")?;
            let after = stream.info().clone();
            let _ = stream.shutdown();
            Ok((Outcome2 { before, after }, seen))
        })();
        let server = handle.join().expect("server thread");
        (server, client)
    }

    /// One connection that the client drops, without a TLS shutdown, once it has read "hello"
    /// (as a client that gives up, or whose peer is gone, does). Returns the client's info.
    pub fn connect_and_drop(&self) -> SessionInfo {
        let handle = self.serve_one(|_| ());
        let tcp = TcpStream::connect(self.listener.local_addr().expect("addr")).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut stream = self
            .client
            .connect(Box::new(tcp), &self.params())
            .expect("client handshake");
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).expect("hello");
        let info = stream.info().clone();
        drop(stream);
        handle
            .join()
            .expect("server thread")
            .expect("server handshake");
        info
    }

    pub fn connect(&self) -> Outcome {
        let (server, client) = self.try_connect();
        let client = client.expect("client handshake");
        Outcome {
            server: server.expect("server handshake"),
            client: client.after,
            client_before_read: client.before,
        }
    }
}

/// What [`Pair::try_connect_looking`] gives: each end's outcome with what its look saw
/// (server, client).
pub type Looked<T> = (
    Result<(SessionInfo, T), Error>,
    Result<(Outcome2, T), Error>,
);

pub struct Outcome2 {
    pub before: SessionInfo,
    pub after: SessionInfo,
}

/// The ticket inside a DER SSL_SESSION: the OCTET STRING in the `[10]` field of the session
/// SEQUENCE. Returns its offset and length.
pub fn ticket_span(der: &[u8]) -> Option<(usize, usize)> {
    fn len_at(der: &[u8], at: usize) -> Option<(usize, usize)> {
        let first = *der.get(at)?;
        if first < 0x80 {
            return Some((usize::from(first), 1));
        }
        let n = usize::from(first & 0x7f);
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*der.get(at + 1 + i)?);
        }
        Some((len, 1 + n))
    }
    // The outer SEQUENCE.
    let (_, l) = len_at(der, 1)?;
    let mut at = 1 + l;
    while at < der.len() {
        let tag = der[at];
        let (len, l) = len_at(der, at + 1)?;
        let body = at + 1 + l;
        if tag == 0xAA {
            // [10] { OCTET STRING }
            let (inner, il) = len_at(der, body + 1)?;
            return Some((body + 1 + il, inner));
        }
        at = body + len;
    }
    None
}
