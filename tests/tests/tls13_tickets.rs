//! The number of TLS 1.3 tickets a server sends (`ServerSettings::tls13_tickets`), on every
//! backend, counted by the clients' libraries over real handshakes on loopback: OpenSSL's
//! new-session callback and rustls's ticket store (`insert_tls13_ticket`) are each called once
//! per NewSessionTicket the client receives. Counted after a full handshake and after a
//! resumed one (offering the last ticket received); the setting's default is each backend's
//! own count; a count over the bound is refused with `Error::Setting` on every backend. A
//! server sending tickets without end (the rustls library, 40 a handshake) gets at most
//! `MAX_SESSIONS_STORED` of them stored per connection by this crate's client on every backend.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use std::io::{Read, Write};

#[allow(dead_code)] // `answer`, `gnutls_turn`, the counting store and the rustls library's server
mod common;

use openssl::ssl::{Ssl, SslContext, SslMethod, SslSessionCacheMode, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Resumption, Tls13ClientSessionValue,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, NamedGroup, RootCertStore, StreamOwned};
use tlsresume::backends;
use tlsresume_compare::Pki;
use tlsresume_core::settings::MAX_TLS13_TICKETS;
use tlsresume_core::{
    BackendKind, ManualClock, ServerContext, ServerSettings, TicketPolicy, Versions,
};

const NAME: &str = "mx.tlsresume.test";

/// What one client connection saw: NewSessionTickets received, and whether it resumed.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    tickets: usize,
    resumed: bool,
}

/// A server of `kind` sending `count` tickets (`None`: the backend's own), TLS 1.3 only.
fn server(kind: BackendKind, pki: &Pki, count: Option<u32>) -> Arc<dyn ServerContext> {
    let mut settings = ServerSettings::new(pki.server.clone());
    settings.versions = Versions::only(tlsresume_core::ProtocolVersion::Tls13);
    settings.tls13_tickets = count;
    backends::server(kind, settings).expect("server")
}

/// Runs `connections` client connections against `server` on a new port; the server end of
/// each is the shared one-exchange dialogue ("hi", then "ok").
fn serve<T>(
    server: &dyn ServerContext,
    client: impl FnOnce(SocketAddr) -> T,
    connections: usize,
) -> T {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..connections {
                let Ok((tcp, _)) = listener.accept() else {
                    return;
                };
                common::answer(server, tcp);
            }
        });
        client(addr)
    })
}

/// The OpenSSL client: TLS 1.3, the test CA, one callback call per ticket received (the
/// newest kept as DER to offer next).
struct OpensslClient {
    ctx: SslContext,
    count: Arc<AtomicUsize>,
    newest: Arc<Mutex<Option<Vec<u8>>>>,
}

impl OpensslClient {
    fn new(pki: &Pki) -> Self {
        let mut ctx = SslContext::builder(SslMethod::tls_client()).expect("context");
        ctx.set_min_proto_version(Some(SslVersion::TLS1_3))
            .expect("min");
        let mut store = X509StoreBuilder::new().expect("store");
        for der in &pki.roots {
            store
                .add_cert(X509::from_der(der).expect("root"))
                .expect("add root");
        }
        ctx.set_cert_store(store.build());
        ctx.set_verify(SslVerifyMode::PEER);
        ctx.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL);
        let count = Arc::new(AtomicUsize::new(0));
        let newest = Arc::new(Mutex::new(None));
        let (c, n) = (Arc::clone(&count), Arc::clone(&newest));
        // OpenSSL calls this once for each TLS 1.3 NewSessionTicket it reads.
        ctx.set_new_session_callback(move |_ssl, session| {
            c.fetch_add(1, Ordering::SeqCst);
            *n.lock().unwrap_or_else(|p| p.into_inner()) = session.to_der().ok();
        });
        Self {
            ctx: ctx.build(),
            count,
            newest,
        }
    }

    /// One connection, offering the newest ticket received so far.
    fn connect(&self, addr: SocketAddr) -> Seen {
        self.count.store(0, Ordering::SeqCst);
        let mut ssl = Ssl::new(&self.ctx).expect("SSL");
        ssl.set_hostname(NAME).expect("SNI");
        ssl.param_mut().set_host(NAME).expect("host");
        let offer = self
            .newest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(der) = offer {
            tlsresume_openssl::raw::set_session_der(&mut ssl, &der).expect("session");
        }
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut tls = ssl.connect(tcp).expect("handshake");
        // The tickets come before the server's first bytes.
        let mut buf = [0u8; 2];
        tls.read_exact(&mut buf).expect("read");
        tls.write_all(b"ok").expect("write");
        let resumed = tls.ssl().session_reused();
        let _ = tls.shutdown();
        Seen {
            tickets: self.count.load(Ordering::SeqCst),
            resumed,
        }
    }
}

/// rustls's in-memory client store, counting the TLS 1.3 tickets rustls hands it.
#[derive(Debug)]
struct CountingStore {
    inner: ClientSessionMemoryCache,
    count: AtomicUsize,
}

impl ClientSessionStore for CountingStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.inner.set_kx_hint(server_name, group)
    }
    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.inner.kx_hint(server_name)
    }
    fn set_tls12_session(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.inner.set_tls12_session(server_name, value)
    }
    fn tls12_session(
        &self,
        server_name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.inner.tls12_session(server_name)
    }
    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name)
    }
    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.inner.insert_tls13_ticket(server_name, value)
    }
    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.inner.take_tls13_ticket(server_name)
    }
}

/// The rustls client: TLS 1.3, the test CA, resuming with the tickets its store holds.
struct RustlsClient {
    config: Arc<ClientConfig>,
    store: Arc<CountingStore>,
}

impl RustlsClient {
    fn new(pki: &Pki) -> Self {
        let mut roots = RootCertStore::empty();
        for der in &pki.roots {
            roots.add(CertificateDer::from(der.clone())).expect("root");
        }
        let mut config = ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
            .with_root_certificates(roots)
            .with_no_client_auth();
        let store = Arc::new(CountingStore {
            inner: ClientSessionMemoryCache::new(32),
            count: AtomicUsize::new(0),
        });
        config.resumption = Resumption::store(store.clone());
        Self {
            config: Arc::new(config),
            store,
        }
    }

    fn connect(&self, addr: SocketAddr) -> Seen {
        self.store.count.store(0, Ordering::SeqCst);
        let name = ServerName::try_from(NAME).expect("name");
        let conn = ClientConnection::new(Arc::clone(&self.config), name).expect("connection");
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut tls = StreamOwned::new(conn, tcp);
        let mut buf = [0u8; 2];
        tls.read_exact(&mut buf).expect("read");
        tls.write_all(b"ok").expect("write");
        tls.flush().expect("flush");
        let resumed = tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        tls.conn.send_close_notify();
        let _ = tls.flush();
        Seen {
            tickets: self.store.count.load(Ordering::SeqCst),
            resumed,
        }
    }
}

/// What a client of each library sees from a server of `kind` sending `count`: the full
/// handshake, then a resumption with a ticket it sent.
fn counted(kind: BackendKind, pki: &Pki, count: Option<u32>) -> [(Seen, Seen); 2] {
    let server = server(kind, pki, count);
    let openssl = OpensslClient::new(pki);
    let by_openssl = serve(
        &*server,
        |addr| (openssl.connect(addr), openssl.connect(addr)),
        2,
    );
    let rustls = RustlsClient::new(pki);
    let by_rustls = serve(
        &*server,
        |addr| (rustls.connect(addr), rustls.connect(addr)),
        2,
    );
    [by_openssl, by_rustls]
}

fn seen(tickets: usize, resumed: bool) -> Seen {
    Seen { tickets, resumed }
}

/// The tickets after a resumed TLS 1.3 handshake, measured: rustls and GnuTLS send the count
/// again; OpenSSL sends none while the ticket presented is not due for renewal (tlsresume's
/// key callback answers "use", as Exim's does).
fn after_resumption(kind: BackendKind, count: usize) -> usize {
    match kind {
        BackendKind::Openssl => 0,
        BackendKind::Gnutls | BackendKind::Rustls => count,
    }
}

#[test]
fn each_backend_sends_the_number_of_tickets_set() {
    let _turn = common::gnutls_turn();
    let pki = Pki::committed().expect("PKI");
    for kind in backends::available() {
        for count in 0..=3u32 {
            let n = count as usize;
            for (client, (full, second)) in
                ["openssl", "rustls"]
                    .into_iter()
                    .zip(counted(kind, &pki, Some(count)))
            {
                let what = format!("{kind} server, {count} tickets, {client} client");
                assert_eq!(full, seen(n, false), "{what}: full handshake");
                if count == 0 {
                    // Nothing to offer: another full handshake, and no ticket again.
                    assert_eq!(second, seen(0, false), "{what}: second connection");
                } else {
                    assert_eq!(
                        second,
                        seen(after_resumption(kind, n), true),
                        "{what}: resumed handshake"
                    );
                }
            }
        }
    }
}

#[test]
fn the_default_is_each_backends_own_count() {
    let _turn = common::gnutls_turn();
    let pki = Pki::committed().expect("PKI");
    for kind in backends::available() {
        let own = kind.default_tls13_tickets() as usize;
        let expected = match kind {
            BackendKind::Gnutls => 2,
            BackendKind::Openssl | BackendKind::Rustls => 1,
        };
        assert_eq!(own, expected, "{kind}");
        for (client, (full, second)) in ["openssl", "rustls"]
            .into_iter()
            .zip(counted(kind, &pki, None))
        {
            let what = format!("{kind} server, default, {client} client");
            assert_eq!(full, seen(own, false), "{what}: full handshake");
            assert_eq!(
                second,
                seen(after_resumption(kind, own), true),
                "{what}: resumed"
            );
        }
    }
}

/// OpenSSL sends tickets after a resumed handshake when its ticket callback renews the ticket
/// presented (its key older than the policy's `renew_after`): measured here on the virtual
/// clock, one ticket whatever the count set (OpenSSL's own rule for a resumption).
#[test]
fn openssl_sends_one_ticket_after_a_renewing_resumption() {
    if !backends::is_available(BackendKind::Openssl) {
        println!("SKIPPED openssl_sends_one_ticket_after_a_renewing_resumption: no OpenSSL backend in this build");
        return;
    }
    let pki = Pki::committed().expect("PKI");
    for count in [1u32, 3] {
        let clock = ManualClock::starting_now();
        let mut settings = ServerSettings::new(pki.server.clone());
        settings.versions = Versions::only(tlsresume_core::ProtocolVersion::Tls13);
        settings.tls13_tickets = Some(count);
        settings.ticket_policy = Some(TicketPolicy::OPENSSL);
        settings.clock = Arc::new(clock.clone());
        let server = backends::server(BackendKind::Openssl, settings).expect("server");
        let client = OpensslClient::new(&pki);
        let renew_after = TicketPolicy::OPENSSL.renew_after().expect("renews");
        let (full, renewed) = serve(
            &*server,
            |addr| {
                let full = client.connect(addr);
                clock.advance(renew_after + Duration::from_secs(60));
                (full, client.connect(addr))
            },
            2,
        );
        assert_eq!(full, seen(count as usize, false), "{count} tickets: full");
        assert_eq!(
            renewed,
            seen(1, true),
            "{count} tickets: renewing resumption"
        );
    }
}

/// The tickets go out before the server's first write: a client that waits for them before it
/// writes, to a server that reads first (an HTTP server; tlsfuzzer's `test-tls13-count-tickets`
/// against `serve --http`), gets them, GnuTLS's tickets sent on request included.
#[test]
fn tickets_come_before_the_client_writes() {
    let _turn = common::gnutls_turn();
    let pki = Pki::committed().expect("PKI");
    for kind in backends::available() {
        let server = server(kind, &pki, Some(2));
        let client = OpensslClient::new(&pki);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = thread::scope(|scope| {
            scope.spawn(|| {
                let Ok((tcp, _)) = listener.accept() else {
                    return;
                };
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                let (Ok(peer), Ok(local)) = (tcp.peer_addr(), tcp.local_addr()) else {
                    return;
                };
                let params = tlsresume_core::ServerParams::new(peer, local);
                if let Ok(mut tls) = server.accept(Box::new(tcp), &params) {
                    // The server reads first, as an HTTP server does.
                    let mut buf = [0u8; 2];
                    let _ = tls.read_exact(&mut buf);
                    let _ = tls.write_all(b"hi");
                    let _ = tls.flush();
                    let _ = tls.shutdown();
                }
            });
            client.count.store(0, Ordering::SeqCst);
            let mut ssl = Ssl::new(&client.ctx).expect("SSL");
            ssl.set_hostname(NAME).expect("SNI");
            ssl.param_mut().set_host(NAME).expect("host");
            let tcp = TcpStream::connect(addr).expect("connect");
            tcp.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
            let mut tls = ssl.connect(tcp).expect("handshake");
            // Reads (nothing comes but the tickets) until both tickets are in, for 5 s at most.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            let mut buf = [0u8; 2];
            while client.count.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
                let _ = tls.ssl_read(&mut buf);
            }
            let received = client.count.load(Ordering::SeqCst);
            let _ = tls.write_all(b"ok");
            let _ = tls
                .get_ref()
                .set_read_timeout(Some(Duration::from_secs(10)));
            let _ = tls.read_exact(&mut buf);
            received
        });
        assert_eq!(
            received, 2,
            "{kind}: tickets before the client's first write"
        );
    }
}

#[test]
fn a_count_over_the_bound_is_refused_on_every_backend() {
    let _turn = common::gnutls_turn();
    let pki = Pki::committed().expect("PKI");
    for kind in backends::available() {
        let mut settings = ServerSettings::new(pki.server.clone());
        settings.tls13_tickets = Some(MAX_TLS13_TICKETS + 1);
        let err = backends::server(kind, settings).expect_err("refused");
        match err {
            tlsresume_core::Error::Setting { field, why } => {
                assert_eq!(field, "tls13_tickets", "{kind}");
                assert!(why.contains("at most 8"), "{kind}: {why}");
            }
            other => panic!("{kind}: {other}"),
        }
        let mut settings = ServerSettings::new(pki.server.clone());
        settings.tls13_tickets = Some(MAX_TLS13_TICKETS);
        assert!(
            backends::server(kind, settings).is_ok(),
            "{kind}: the bound itself"
        );
    }
}

/// How many NewSessionTickets the flooding server sends after each handshake.
const FLOOD: usize = 40;

/// A rustls server (the library alone, nothing of this crate) sending `tickets` tickets after
/// each handshake, then "hi", in one flight; it reads the client's two bytes. `connections`
/// of them.
fn flooding_server(
    pki: &Pki,
    connections: usize,
    tickets: usize,
) -> (SocketAddr, thread::JoinHandle<()>) {
    let mut config = common::rustls_library_server(pki, &rustls::version::TLS13);
    config.send_tls13_tickets = tickets;
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let served = thread::spawn(move || {
        for _ in 0..connections {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            common::answer_rustls_library(&config, tcp);
        }
    });
    (addr, served)
}

/// A TLS 1.3 client of this crate on `kind`, over a store counting its writes, makes
/// `connections` connections to a [`flooding_server`] sending `tickets` after each handshake:
/// reads its "hi", answers, shuts down. What each connection reported and how many sessions
/// it wrote to the store.
fn client_of_a_ticketing_server(
    pki: &Pki,
    kind: BackendKind,
    connections: usize,
    tickets: usize,
) -> Vec<(tlsresume_core::SessionInfo, usize)> {
    let store = Arc::new(common::CountedPuts::default());
    let mut settings = tlsresume_core::ClientSettings::new(pki.roots.clone());
    settings.versions = Versions::only(tlsresume_core::ProtocolVersion::Tls13);
    settings.store = store.clone();
    let client = backends::client(kind, settings).expect("client");
    let (addr, served) = flooding_server(pki, connections, tickets);
    let mut seen = Vec::new();
    for _ in 0..connections {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let params = tlsresume_core::ClientParams::new(NAME, addr);
        let mut tls = client.connect(Box::new(tcp), &params).expect("handshake");
        let mut buf = [0u8; 2];
        tls.read_exact(&mut buf)
            .expect("read: the tickets come before it");
        assert_eq!(&buf, b"hi", "{kind}");
        tls.write_all(b"ok").expect("write");
        tls.flush().expect("flush");
        let info = tls.info();
        let _ = tls.shutdown();
        seen.push((info, store.take()));
    }
    served.join().expect("server thread");
    seen
}

/// A server may send NewSessionTickets without end (here the rustls library, asked for 40
/// after each handshake): this crate's client on every backend stores at most
/// `MAX_SESSIONS_STORED` of them per connection (it stores the newest each call into the
/// connection brought, and the libraries take the whole flight in one or a few reads), sets
/// `SERVER_TICKET`, keeps the connection, and the next connection resumes with the newest one
/// stored. (The bound itself, reached by a server that sends a ticket before each of more
/// reads, is the core's one decision: `contract`'s unit tests.)
#[test]
fn a_client_stores_at_most_its_bound_of_a_servers_tickets_on_every_backend() {
    use tlsresume_core::contract::MAX_SESSIONS_STORED;
    let _turn = common::gnutls_turn();
    let pki = Pki::committed().expect("committed test PKI");
    for kind in backends::available() {
        let seen = client_of_a_ticketing_server(&pki, kind, 2, FLOOD);
        let bound = usize::from(MAX_SESSIONS_STORED);
        for (i, (info, puts)) in seen.iter().enumerate() {
            assert!(
                info.resumption
                    .contains(tlsresume_core::Resumption::SERVER_TICKET),
                "{kind} connection {i}: {}",
                info.resumption
            );
            let writes = if common::writes_in_place(kind, info.resumed) {
                0..=0
            } else {
                1..=bound
            };
            assert!(
                writes.contains(puts),
                "{kind} connection {i}: {puts} sessions stored, expected {writes:?}"
            );
        }
        assert!(!seen[0].0.resumed, "{kind}: the first connection is full");
        assert!(
            seen[1].0.resumed,
            "{kind}: the newest stored ticket resumes"
        );
    }
}

/// The store keeps one session per server: of the tickets a server sends in one flight (two,
/// as OpenSSL, GnuTLS and rustls do by default) only the newest would stay. A client on every
/// backend stores the newest session each call into the connection brought (a handshake step,
/// a read), so one store write per flight, not one per ticket (and none on a resumed rustls
/// connection, whose entry already holds its handle: `client_store_writes.rs`). Every
/// connection after the first resumes.
#[test]
fn a_flight_of_two_tickets_is_one_store_write_on_every_backend() {
    let _turn = common::gnutls_turn();
    let pki = Pki::committed().expect("committed test PKI");
    const CONNECTIONS: usize = 4;
    for kind in backends::available() {
        let seen = client_of_a_ticketing_server(&pki, kind, CONNECTIONS, 2);
        let mut puts = Vec::new();
        for (i, (info, stored)) in seen.into_iter().enumerate() {
            assert_eq!(info.resumed, i > 0, "{kind} connection {i}: resumed");
            puts.push(stored);
        }
        let written: usize = puts.iter().sum();
        // One write per call that brought tickets: both came in one flight, so (on loopback)
        // in one read nearly always; never more than one per ticket. None where the entry
        // already holds what a resumed connection received (rustls's handle).
        for (i, p) in puts.iter().enumerate() {
            let writes = if common::writes_in_place(kind, i > 0) {
                0..=0
            } else {
                1..=2
            };
            assert!(
                writes.contains(p),
                "{kind} connection {i}: {p} sessions stored, expected {writes:?} ({puts:?})"
            );
        }
        assert!(
            written < 2 * CONNECTIONS,
            "{kind}: every ticket of {CONNECTIONS} flights of two was written: {puts:?}"
        );
        eprintln!("{kind}: sessions stored per connection, two tickets each: {puts:?}");
    }
}
