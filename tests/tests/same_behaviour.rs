//! One suite, every backend: the same situation gives the same result on OpenSSL, GnuTLS and
//! rustls. Each test is written once (in `suite!`) and instantiated per backend compiled in, as
//! rustls's own test crate runs one file per provider; the `across` tests compare the backends'
//! answers with each other. Real handshakes over loopback TCP, the client and server of the
//! backend under test.
//!
//! What is checked: the [`ErrorKind`] of each failure a caller decides on (certificate,
//! required OCSP staple missing, alert, early close, timeout), why a stored session was not
//! offered ([`SessionInfo::no_offer`]), what a resumed session reports under the hardened
//! policy, and the shared-cache rules: an entry sealed under another store's key is skipped and
//! never removed, and two stores opened on one cache file (as two processes would) share its key.
//! Where a library cannot do something, the test says so per backend (rustls 0.23 cannot export
//! client sessions: another client never resumes one).

#[allow(dead_code)] // this suite uses the turn, not the fault tests' dialogue
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::gnutls_turn;
use tlsresume::backends;
use tlsresume_compare::Pki;
use tlsresume_core::{
    BackendKind, CacheEntry, CacheKey, ClientParams, ClientSettings, Error, ErrorKind, HostList,
    MemoryStore, NoOffer, OcspMode, ResumptionPolicy, ServerSettings, SessionInfo, SessionKey,
    SessionStore, StoreError, Verification, Versions,
};

const NAME: &str = "mx.tlsresume.test";

fn pki() -> Pki {
    Pki::committed().expect("committed PKI")
}

/// A server of `kind` answering `connections` connections on a loopback port: each gets "hi"
/// and its "ok" read. Dropping it waits for the server to end, so no GnuTLS object outlives the
/// test that made it (GnuTLS has one clock per process).
struct Served {
    addr: SocketAddr,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(kind: BackendKind, settings: ServerSettings, connections: usize) -> Served {
    let server = backends::server(kind, settings).expect("server");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let thread = thread::spawn(move || {
        for tcp in listener.incoming().take(connections).flatten() {
            common::answer(server.as_ref(), tcp);
        }
    });
    Served {
        addr,
        thread: Some(thread),
    }
}

/// One connection of a client of `kind`: its report after the exchange (a TLS 1.3 ticket
/// arrives with the read), or the error of the handshake.
fn connect(
    kind: BackendKind,
    settings: &ClientSettings,
    addr: SocketAddr,
) -> Result<SessionInfo, Error> {
    let client = backends::client(kind, settings.clone())?;
    connect_with(client.as_ref(), addr)
}

fn connect_with(
    client: &dyn tlsresume_core::ClientContext,
    addr: SocketAddr,
) -> Result<SessionInfo, Error> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = client.connect(Box::new(tcp), &ClientParams::new(NAME, addr))?;
    let mut buf = [0u8; 2];
    tls.read_exact(&mut buf)?;
    tls.write_all(b"ok")?;
    let info = tls.info();
    let _ = tls.shutdown();
    Ok(info)
}

fn client_settings(pki: &Pki) -> ClientSettings {
    ClientSettings::new(pki.roots.clone())
}

/// A store over a shared map that answers its own session key: two of them over one map are
/// two processes sharing a cache without sharing its key.
#[derive(Debug)]
struct Keyed {
    map: Arc<MemoryStore>,
    key: SessionKey,
}

impl SessionStore for Keyed {
    fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        self.map.get(key)
    }
    fn put(&self, key: &CacheKey, entry: CacheEntry) -> Result<(), StoreError> {
        self.map.put(key, entry)
    }
    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.map.remove(key)
    }
    fn blocks(&self) -> bool {
        false
    }
    fn session_key(&self) -> SessionKey {
        self.key.clone()
    }
}

/// The only entry of a store that holds one.
fn only_entry(map: &MemoryStore, addr: SocketAddr) -> Option<CacheEntry> {
    // The key is computed as the clients compute it, for each backend; one of them is there.
    BackendKind::ALL.iter().find_map(|&kind| {
        let settings = ClientSettings::new(vec![]);
        let key = tlsresume_core::contract::ClientContract::cache_key(
            &settings,
            kind,
            &ClientParams::new(NAME, addr),
        );
        map.get(&key).ok().flatten()
    })
}

/// The kind of a handshake's failure; panics (failing the test) when it succeeded.
fn kind_of(result: Result<SessionInfo, Error>, what: &str) -> ErrorKind {
    match result {
        Ok(info) => panic!("{what}: the handshake succeeded ({info:?})"),
        Err(e) => e.kind(),
    }
}

/// A required staple the server does not send.
fn missing_staple_kind(kind: BackendKind) -> ErrorKind {
    let pki = pki();
    let served = serve(kind, ServerSettings::new(pki.server.clone()), 1);
    let mut client = client_settings(&pki);
    client.ocsp = OcspMode::Require;
    kind_of(
        connect(kind, &client, served.addr),
        "no staple, OCSP required",
    )
}

/// Version ranges that do not meet: the server refuses with an alert.
fn no_common_version_kind(kind: BackendKind) -> ErrorKind {
    let pki = pki();
    let mut server = ServerSettings::new(pki.server.clone());
    server.versions = Versions::only(tlsresume_core::ProtocolVersion::Tls13);
    let served = serve(kind, server, 1);
    let mut client = client_settings(&pki);
    client.versions = Versions::only(tlsresume_core::ProtocolVersion::Tls12);
    kind_of(connect(kind, &client, served.addr), "no common version")
}

/// A peer that accepts the TCP connection and closes it at once.
fn early_close_kind(kind: BackendKind) -> ErrorKind {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        if let Ok((tcp, _)) = listener.accept() {
            drop(tcp);
        }
    });
    kind_of(connect(kind, &client_settings(&pki()), addr), "early close")
}

/// A peer that accepts and says nothing; the client's socket times out.
fn timeout_kind(kind: BackendKind) -> ErrorKind {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let holder = thread::spawn(move || listener.accept().map(|(tcp, _)| tcp));
    let client = backends::client(kind, client_settings(&pki())).expect("client");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let result = client
        .connect(Box::new(tcp), &ClientParams::new(NAME, addr))
        .map(|s| s.info());
    drop(holder);
    kind_of(result, "silent peer")
}

/// One full handshake, then the server restarts on the same address with new ticket keys (as
/// a server without shared keys does) and the client offers its ticket: the restarted server's
/// report says why it refused the ticket, where the library tells.
fn refused_after_a_restart(kind: BackendKind) -> Option<tlsresume_core::RejectReason> {
    let pki = pki();
    let client = backends::client(kind, client_settings(&pki)).expect("client");
    let first = serve(kind, ServerSettings::new(pki.server.clone()), 1);
    let addr = first.addr;
    connect_with(client.as_ref(), addr).expect("first");
    drop(first);
    let server = backends::server(kind, ServerSettings::new(pki.server.clone())).expect("server");
    let listener = TcpListener::bind(addr).expect("the same address again");
    let serving = thread::spawn(move || {
        let (tcp, peer) = listener.accept().expect("accept");
        let local = tcp.local_addr().expect("local");
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
        let mut tls = server
            .accept(
                Box::new(tcp),
                &tlsresume_core::ServerParams::new(peer, local),
            )
            .expect("server handshake");
        let _ = tls.write_all(b"hi");
        let mut buf = [0u8; 2];
        let _ = tls.read_exact(&mut buf);
        let _ = tls.shutdown();
        tls.info()
    });
    let second = connect_with(client.as_ref(), addr).expect("after the restart");
    let server_side = serving.join().expect("server thread");
    assert!(
        !second.resumed && !server_side.resumed,
        "{kind}: resumed across a restart"
    );
    assert!(
        second
            .resumption
            .contains(tlsresume_core::Resumption::CLIENT_SUGGESTED),
        "{kind}: the client offered its ticket: {}",
        second.resumption
    );
    server_side.ticket_refused
}

macro_rules! suite {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;

            const KIND: BackendKind = $kind;

            /// OpenSSL and rustls seal tickets through the core's key ring and say why one
            /// was refused (a key the restarted server never had); GnuTLS does not say.
            #[test]
            fn the_server_says_why_it_refused_a_ticket_where_the_library_tells() {
                let _turn = gnutls_turn();
                let expected = match KIND {
                    BackendKind::Gnutls => None,
                    _ => Some(tlsresume_core::RejectReason::UnknownKey),
                };
                assert_eq!(refused_after_a_restart(KIND), expected);
            }

            #[test]
            fn a_missing_required_staple_is_an_ocsp_error() {
                let _turn = gnutls_turn();
                assert_eq!(missing_staple_kind(KIND), ErrorKind::Ocsp);
            }

            #[test]
            fn an_untrusted_certificate_is_a_certificate_error() {
                let _turn = gnutls_turn();
                let pki = pki();
                let served = serve(KIND, ServerSettings::new(pki.untrusted.clone()), 1);
                let addr = served.addr;
                let result = connect(KIND, &client_settings(&pki), addr);
                assert_eq!(kind_of(result, "untrusted"), ErrorKind::Certificate);
            }

            #[test]
            fn no_common_version_is_an_alert() {
                let _turn = gnutls_turn();
                assert_eq!(no_common_version_kind(KIND), ErrorKind::Alert);
            }

            #[test]
            fn an_early_close_and_a_timeout_are_io_errors() {
                let _turn = gnutls_turn();
                assert_eq!(early_close_kind(KIND), ErrorKind::Io);
                assert_eq!(timeout_kind(KIND), ErrorKind::Io);
            }

            #[test]
            fn the_report_says_why_no_session_was_offered() {
                let _turn = gnutls_turn();
                let pki = pki();
                let served = serve(KIND, ServerSettings::new(pki.server.clone()), 3);
                let addr = served.addr;
                let settings = client_settings(&pki);
                let client = backends::client(KIND, settings.clone()).expect("client");
                let first = connect_with(client.as_ref(), addr).expect("first");
                assert!(!first.resumed);
                assert_eq!(first.no_offer, Some(NoOffer::Missing));
                let second = connect_with(client.as_ref(), addr).expect("second");
                assert!(second.resumed, "{second:?}");
                assert_eq!(second.no_offer, None);

                let mut refused = settings.clone();
                refused.resumption =
                    ResumptionPolicy::exim_compatible().with_client_hosts(HostList::none());
                let info = connect(KIND, &refused, addr).expect("not allowed");
                assert_eq!(info.no_offer, Some(NoOffer::NotAllowed));
                // Exim's GnuTLS client asks for tickets whatever its policy and sets
                // SERVER_TICKET when one arrives (0x09, "no client request"); the others ask
                // for none (0x01).
                let expected = if KIND == BackendKind::Gnutls {
                    0x09
                } else {
                    0x01
                };
                assert_eq!(info.resumption.bits(), expected, "{}", info.resumption);
            }

            #[test]
            fn a_resumed_session_reports_the_first_handshakes_checks_when_hardened() {
                let _turn = gnutls_turn();
                let pki = pki();
                let mut server = ServerSettings::new(pki.server.clone());
                server.ocsp_response = Some(pki.ocsp.clone());
                let served = serve(KIND, server, 2);
                let addr = served.addr;
                let mut settings = client_settings(&pki);
                settings.resumption = ResumptionPolicy::hardened();
                settings.ocsp = OcspMode::Require;
                let client = backends::client(KIND, settings).expect("client");
                let first = connect_with(client.as_ref(), addr).expect("first");
                assert_eq!(first.verification, Verification::Verified);
                assert_eq!(first.ocsp, tlsresume_core::OcspStatus::Verified);
                let resumed = connect_with(client.as_ref(), addr).expect("resumed");
                assert!(resumed.resumed, "{resumed:?}");
                assert_eq!(resumed.verification, Verification::Verified);
                assert_eq!(resumed.ocsp, tlsresume_core::OcspStatus::Verified);
            }

            /// Two stores over one map with different keys: the second client skips the first's
            /// entry (another key) and leaves it as it was; the first still resumes with it.
            #[test]
            fn an_entry_under_another_key_is_skipped_never_removed() {
                let _turn = gnutls_turn();
                let pki = pki();
                let served = serve(KIND, ServerSettings::new(pki.server.clone()), 3);
                let addr = served.addr;
                let map = Arc::new(MemoryStore::new(16));
                let store = |byte: u8| {
                    Arc::new(Keyed {
                        map: map.clone(),
                        key: SessionKey::from_bytes([byte; 32]),
                    }) as Arc<dyn SessionStore>
                };
                let mut a = client_settings(&pki);
                a.store = store(1);
                let client_a = backends::client(KIND, a).expect("client a");
                connect_with(client_a.as_ref(), addr).expect("a: full");
                let written = only_entry(&map, addr).expect("a stored its session");

                // B fails its handshake after reading (OCSP required, no staple): it stores
                // nothing, and must not have removed A's entry.
                let mut b = client_settings(&pki);
                b.store = store(2);
                b.ocsp = OcspMode::Require;
                let failed = connect(KIND, &b, addr);
                assert_eq!(kind_of(failed, "b"), ErrorKind::Ocsp);
                let after = only_entry(&map, addr).expect("a's entry is still there");
                assert_eq!(after.session, written.session, "a's entry unchanged");

                // B without the requirement: it skips A's entry, says why, and stores its own.
                b.ocsp = OcspMode::Off;
                let info = connect(KIND, &b, addr).expect("b");
                assert!(!info.resumed);
                assert_eq!(info.no_offer, Some(NoOffer::OtherKey));
            }

            /// Two stores opened on one cache file share the key kept beside it: what one
            /// client stored, the other resumes — except on rustls, whose sessions cannot leave
            /// the client that made them (rustls 0.23): there the other client skips the entry
            /// ("held by another process") and leaves it for its writer, who still resumes.
            #[test]
            fn two_stores_on_one_file_share_its_key() {
                let _turn = gnutls_turn();
                let pki = pki();
                let served = serve(KIND, ServerSettings::new(pki.server.clone()), 3);
                let addr = served.addr;
                let dir = std::env::temp_dir().join(format!(
                    "tlsresume-same-{}-{}",
                    KIND,
                    std::process::id()
                ));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("dir");
                let file = dir.join("cache.sqlite");
                let open = || {
                    Arc::new(tlsresume_stores::DiskStore::open(&file).expect("cache"))
                        as Arc<dyn SessionStore>
                };
                let (one, two) = (open(), open());
                assert!(
                    one.session_key() == two.session_key(),
                    "one key per cache file"
                );
                let mut a = client_settings(&pki);
                a.store = one;
                let mut b = client_settings(&pki);
                b.store = two;
                let client_a = backends::client(KIND, a).expect("a");
                let client_b = backends::client(KIND, b).expect("b");
                connect_with(client_a.as_ref(), addr).expect("a: full");
                let by_b = connect_with(client_b.as_ref(), addr).expect("b");
                if KIND == BackendKind::Rustls {
                    assert!(!by_b.resumed);
                    assert_eq!(by_b.no_offer, Some(NoOffer::NotHeld));
                } else {
                    assert!(by_b.resumed, "{KIND}: b resumes a's session: {by_b:?}");
                }
                // The writer of the newest entry resumes with it.
                let again = connect_with(client_b.as_ref(), addr).expect("b again");
                assert!(again.resumed, "{again:?}");
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    };
}

#[cfg(feature = "openssl")]
suite!(openssl, BackendKind::Openssl);
#[cfg(feature = "gnutls")]
suite!(gnutls, BackendKind::Gnutls);
#[cfg(feature = "rustls")]
suite!(rustls, BackendKind::Rustls);

/// The backends compared with each other: one kind per situation, whatever the library.
mod across {
    use super::*;

    fn same(what: &str, f: fn(BackendKind) -> ErrorKind) {
        let _turn = gnutls_turn();
        let kinds: Vec<(BackendKind, ErrorKind)> = backends::available()
            .into_iter()
            .map(|kind| (kind, f(kind)))
            .collect();
        assert!(
            kinds.windows(2).all(|w| w[0].1 == w[1].1),
            "{what}: the backends differ: {kinds:?}"
        );
    }

    #[test]
    fn a_missing_required_staple_has_one_kind() {
        same("missing staple", missing_staple_kind);
    }

    #[test]
    fn no_common_version_has_one_kind() {
        same("no common version", no_common_version_kind);
    }

    #[test]
    fn an_early_close_has_one_kind() {
        same("early close", early_close_kind);
    }
}
