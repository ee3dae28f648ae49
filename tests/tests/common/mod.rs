//! The server and client ends of the one-exchange dialogue the fault and fleet tests run over
//! loopback TCP: the server writes "hi", the client reads it (a TLS 1.3 ticket arrives with it)
//! and answers "ok" (over a server of this crate, or of the rustls library alone); and a
//! session store that counts a client's writes, for the tests of when a client writes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tlsresume_core::{ClientContext, ClientParams, ServerContext, ServerParams, SessionInfo};

/// GnuTLS objects with different clocks cannot live at once: one test of a binary at a time.
pub fn gnutls_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// The server end of one connection; a failed handshake just ends it (`None`), else the
/// server's report of the connection.
pub fn answer(server: &dyn ServerContext, tcp: TcpStream) -> Option<SessionInfo> {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let (Ok(peer), Ok(local)) = (tcp.peer_addr(), tcp.local_addr()) else {
        return None;
    };
    let mut tls = server
        .accept(Box::new(tcp), &ServerParams::new(peer, local))
        .ok()?;
    let _ = tls.write_all(b"hi");
    let _ = tls.flush();
    let mut buf = [0u8; 2];
    let _ = tls.read_exact(&mut buf);
    let info = tls.info();
    let _ = tls.shutdown();
    Some(info)
}

/// A server of the rustls library alone (nothing of this crate) speaking only `version`, with
/// the PKI's server certificate and the ring provider's ticketer.
pub fn rustls_library_server(
    pki: &tlsresume_compare::Pki,
    version: &'static rustls::SupportedProtocolVersion,
) -> rustls::ServerConfig {
    let chain = pki
        .server
        .chain()
        .iter()
        .map(|c| rustls::pki_types::CertificateDer::from(c.clone()))
        .collect();
    // The key's format (PKCS#8, PKCS#1, SEC 1) read off its DER by rustls's own types.
    let key = rustls::pki_types::PrivateKeyDer::try_from(pki.server.key_der().to_vec())
        .expect("the server's key");
    let mut config = rustls::ServerConfig::builder_with_protocol_versions(&[version])
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("rustls server certificate");
    config.ticketer = rustls::crypto::ring::Ticketer::new().expect("ticketer");
    config
}

/// [`answer`] over a server of the rustls library alone: writes "hi" (after what the library
/// sends after the handshake, tickets in TLS 1.3), reads two bytes, closes.
pub fn answer_rustls_library(config: &Arc<rustls::ServerConfig>, tcp: TcpStream) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let conn = rustls::ServerConnection::new(Arc::clone(config)).expect("connection");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let _ = tls.write_all(b"hi");
    let _ = tls.flush();
    let mut buf = [0u8; 2];
    let _ = tls.read_exact(&mut buf);
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// The client end: whether it resumed, or why the handshake or the exchange failed.
pub fn dialogue(client: &dyn ClientContext, addr: SocketAddr) -> Result<bool, String> {
    dialogue_info(client, addr).map(|info| info.resumed)
}

/// The client end: the client's report of the connection (whether a session was offered, why
/// not, whether it resumed), or why the handshake or the exchange failed.
#[allow(dead_code)] // the fleet tests'
pub fn dialogue_info(client: &dyn ClientContext, addr: SocketAddr) -> Result<SessionInfo, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let mut tls = client
        .connect(Box::new(tcp), &ClientParams::new("mx.tlsresume.test", addr))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 2];
    tls.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
    tls.write_all(b"ok").map_err(|e| format!("write: {e}"))?;
    let info = tls.info();
    let _ = tls.shutdown();
    Ok(info)
}

/// Writes an EHLO entry for `key` into the disk cache `file` with `tlsresume-stores`'
/// `DiskStore`, then flips one bit of it in the file, as a bad disk would: the next read finds
/// an entry that does not decode.
#[allow(dead_code)] // the EHLO-cache tests' (ehlo_disk, telemetry)
pub fn corrupt_ehlo_entry_on_disk(
    file: &std::path::Path,
    key: &tlsresume_smtp::ehlo::EhloKey,
    stored_at: tlsresume_core::UnixTime,
) {
    use tlsresume_smtp::ehlo::{EhloEntry, EhloResponse, EhloStore};
    {
        let store = tlsresume_stores::DiskStore::open(file).expect("open");
        let marked = EhloEntry {
            stored_at,
            clear: Some(
                EhloResponse::parse(&[
                    "250-x",
                    "250-PIPELINING",
                    "250-PIPECONNECT",
                    "250 AUTH MARKERMARKERMARKER",
                ])
                .expect("ehlo")
                .view(),
            ),
            tls: None,
        };
        store.put_ehlo(key, &marked).expect("put");
    }
    let mut bytes = std::fs::read(file).expect("read");
    let at = bytes
        .windows(6)
        .position(|w| w == b"MARKER")
        .expect("the entry is in the file");
    bytes[at] ^= 0x20;
    std::fs::write(file, &bytes).expect("write");
}

/// A server of `kind` answering `connections` connections, whose thread gives back each
/// connection's report or handshake error.
#[allow(dead_code)] // the same-behaviour and SNI suites'
pub fn serve_reporting(
    kind: tlsresume_core::BackendKind,
    settings: tlsresume_core::ServerSettings,
    connections: usize,
) -> (
    SocketAddr,
    std::thread::JoinHandle<Vec<Result<SessionInfo, tlsresume_core::Error>>>,
) {
    let server = tlsresume::backends::server(kind, settings).expect("server");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let thread = std::thread::spawn(move || {
        let mut reports = Vec::new();
        for tcp in listener.incoming().take(connections).flatten() {
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
            let (Ok(peer), Ok(local)) = (tcp.peer_addr(), tcp.local_addr()) else {
                continue;
            };
            let params = tlsresume_core::ServerParams::new(peer, local);
            reports.push(server.accept(Box::new(tcp), &params).map(|mut tls| {
                let _ = tls.write_all(b"hi");
                let mut buf = [0u8; 2];
                let _ = tls.read_exact(&mut buf);
                let _ = tls.shutdown();
                tls.info()
            }));
        }
        reports
    });
    (addr, thread)
}

/// A store counting the sessions a client of this crate writes, over a memory store.
#[allow(dead_code)] // the store-write tests'
#[derive(Debug, Default)]
pub struct CountedPuts {
    inner: tlsresume_core::MemoryStore,
    puts: std::sync::atomic::AtomicUsize,
    /// The key of the last write.
    last: Mutex<Option<tlsresume_core::CacheKey>>,
}

#[allow(dead_code)] // the store-write tests'
impl CountedPuts {
    /// The writes counted since the last call.
    pub fn take(&self) -> usize {
        self.puts.swap(0, std::sync::atomic::Ordering::SeqCst)
    }

    /// The entry under the key last written, as the store holds it.
    pub fn last_entry(&self) -> Option<tlsresume_core::CacheEntry> {
        use tlsresume_core::SessionStore;
        let key = (*self.last.lock().unwrap_or_else(|p| p.into_inner()))?;
        self.inner.get(&key).ok().flatten()
    }
}

impl tlsresume_core::SessionStore for CountedPuts {
    fn get(
        &self,
        key: &tlsresume_core::CacheKey,
    ) -> Result<Option<tlsresume_core::CacheEntry>, tlsresume_core::StoreError> {
        self.inner.get(key)
    }

    fn put(
        &self,
        key: &tlsresume_core::CacheKey,
        entry: tlsresume_core::CacheEntry,
    ) -> Result<(), tlsresume_core::StoreError> {
        self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(*key);
        self.inner.put(key, entry)
    }

    fn remove(&self, key: &tlsresume_core::CacheKey) -> Result<(), tlsresume_core::StoreError> {
        self.inner.remove(key)
    }
}

/// Whether a client on `kind` writes nothing for the session a connection received, when the
/// connection `resumed` and its entry was written moments ago: the rustls client's entry
/// holds a handle to the session it keeps in process, which a resumed connection's new session
/// goes under again, so the entry already says what a write would (the core's
/// `ClientHandshake::store_session`, "stored in place"); the OpenSSL and GnuTLS clients' entries
/// hold their library's session, which each new ticket changes.
#[allow(dead_code)] // the store-write tests'
pub fn writes_in_place(kind: tlsresume_core::BackendKind, resumed: bool) -> bool {
    resumed && kind == tlsresume_core::BackendKind::Rustls
}
