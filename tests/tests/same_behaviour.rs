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
    Identity, MemoryStore, NoOffer, OcspMode, ProtocolVersion, ResumptionPolicy, ServerSettings,
    SessionInfo, SessionKey, SessionStore, StoreError, Verification, Versions,
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
    // A TLS 1.3 server refuses a client's certificate (or its absence) after the client's
    // handshake: the client learns it on this read.
    tls.read_exact(&mut buf).map_err(Error::from_io)?;
    tls.write_all(b"ok")?;
    let info = tls.info();
    let _ = tls.shutdown();
    Ok(info)
}

/// A server that asks loopback clients for a certificate from the test CA: `required` (Exim's
/// `tls_verify_hosts`) or only tried (`tls_try_verify_hosts`).
fn asking_server(pki: &Pki, required: bool, version: ProtocolVersion) -> ServerSettings {
    let hosts: HostList = "127.0.0.1".parse().expect("host list");
    let mut builder = ServerSettings::builder(pki.server.clone())
        .client_roots(pki.roots.clone())
        .versions(Versions::only(version));
    builder = if required {
        builder.verify_hosts(hosts)
    } else {
        builder.try_verify_hosts(hosts)
    };
    builder.build().expect("server settings")
}

/// A client of `client` without a certificate against a server of `server` that requires
/// one: the kinds of the client's and the server's failures.
fn no_client_certificate_kinds(
    server: BackendKind,
    client: BackendKind,
    version: ProtocolVersion,
    identity: Option<Identity>,
) -> (ErrorKind, ErrorKind) {
    let pki = pki();
    let (addr, reports) = common::serve_reporting(server, asking_server(&pki, true, version), 1);
    let mut settings = client_settings(&pki);
    settings.identity = identity;
    let client_side = kind_of(connect(client, &settings, addr), "no client certificate");
    let reports = reports.join().expect("server thread");
    let server_side = match reports.as_slice() {
        [Err(e)] => e.kind(),
        other => panic!("{server}<-{client} {version}: the server accepted: {other:?}"),
    };
    (client_side, server_side)
}

/// A client of `client` presenting `identity` (none: `None`), twice, against a server of
/// `server` that requires a certificate (`required`) or only asks, under `policy` on the
/// server: the server's reports of the full and the resumed connection.
fn client_certificate_reports(
    (server, client): (BackendKind, BackendKind),
    version: ProtocolVersion,
    (required, identity): (bool, Option<Identity>),
    policy: ResumptionPolicy,
) -> (SessionInfo, SessionInfo) {
    let pki = pki();
    let mut settings = asking_server(&pki, required, version);
    settings.resumption = policy;
    let (addr, reports) = common::serve_reporting(server, settings, 2);
    let mut client_settings = client_settings(&pki);
    client_settings.identity = identity;
    let context = backends::client(client, client_settings).expect("client");
    let first = connect_with(context.as_ref(), addr).expect("first");
    let second = connect_with(context.as_ref(), addr).expect("second");
    assert!(
        !first.resumed && second.resumed,
        "{server}<-{client} {version}"
    );
    let mut reports = reports.join().expect("server thread").into_iter();
    let mut next = || reports.next().expect("a report").expect("server handshake");
    (next(), next())
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

    const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::Tls12, ProtocolVersion::Tls13];

    /// Every server and client backend, both versions: a server that requires a client
    /// certificate refuses a client without one, and both ends say it is a certificate failure
    /// (in TLS 1.3 the client learns it on its first read); it refuses one whose certificate
    /// does not verify, and says it is a certificate failure.
    #[test]
    fn a_required_client_certificate_missing_is_a_certificate_error_on_both_ends() {
        let _turn = gnutls_turn();
        for server in backends::available() {
            for client in backends::available() {
                for version in VERSIONS {
                    assert_eq!(
                        no_client_certificate_kinds(server, client, version, None),
                        (ErrorKind::Certificate, ErrorKind::Certificate),
                        "{server} server, {client} client, {version}"
                    );
                    // A certificate that does not verify: the server says why, the client gets
                    // the server's alert.
                    let untrusted = Some(pki().untrusted);
                    let (_, server_side) =
                        no_client_certificate_kinds(server, client, version, untrusted);
                    assert_eq!(
                        server_side,
                        ErrorKind::Certificate,
                        "{server} server, {client} client, {version}: untrusted"
                    );
                }
            }
        }
    }

    /// Every pair, both versions: a verified client certificate is reported verified, with its
    /// DN, on the first connection. On the resumed one, under `exim_compatible()`, an OpenSSL
    /// server leaves it unset (its verify callback is not called: the known issue) while GnuTLS
    /// and rustls report what their libraries keep; under `hardened()` every server says
    /// verified.
    #[test]
    fn a_verified_client_certificate_on_full_and_resumed_connections() {
        let _turn = gnutls_turn();
        let dn = "CN=client.tlsresume.test,O=tlsresume test";
        for server in backends::available() {
            for client in backends::available() {
                for version in VERSIONS {
                    let what = format!("{server} server, {client} client, {version}");
                    let verified = (true, Some(pki().client));
                    let (first, resumed) = client_certificate_reports(
                        (server, client),
                        version,
                        verified.clone(),
                        ResumptionPolicy::exim_compatible(),
                    );
                    assert_eq!(first.certificate_verified(), Some(true), "{what}: first");
                    assert!(first.verify_certificate(), "{what}");
                    assert_eq!(first.peer_dn.as_deref(), Some(dn), "{what}");
                    let expected = match server {
                        BackendKind::Openssl => None,
                        _ => Some(true),
                    };
                    assert_eq!(
                        resumed.certificate_verified(),
                        expected,
                        "{what}: resumed, exim"
                    );
                    assert_eq!(resumed.verify_certificate(), expected == Some(true));
                    let (_, hardened) = client_certificate_reports(
                        (server, client),
                        version,
                        verified,
                        ResumptionPolicy::hardened(),
                    );
                    assert_eq!(
                        hardened.certificate_verified(),
                        Some(true),
                        "{what}: resumed, hardened"
                    );
                    assert_eq!(hardened.peer_dn.as_deref(), Some(dn), "{what}");
                }
            }
        }
    }

    /// Every pair, both versions, a host only asked (`tls_try_verify_hosts`): a client without
    /// a certificate and one whose certificate does not verify are both let in, reported unset
    /// and not verified; the second's resumed session is never reported verified, under
    /// `hardened()` either (the verdict comes from the session). A GnuTLS client does not
    /// present a certificate the server's CA list does not name.
    #[test]
    fn a_host_only_asked_is_let_in_and_never_said_verified() {
        let _turn = gnutls_turn();
        for server in backends::available() {
            for client in backends::available() {
                for version in VERSIONS {
                    let what = format!("{server} server, {client} client, {version}");
                    let (first, resumed) = client_certificate_reports(
                        (server, client),
                        version,
                        (false, None),
                        ResumptionPolicy::hardened(),
                    );
                    assert_eq!(first.certificate_verified(), None, "{what}: no certificate");
                    assert_eq!(resumed.certificate_verified(), None, "{what}: resumed");
                    assert_eq!(first.peer_dn, None, "{what}");
                    let untrusted = (false, Some(pki().untrusted));
                    for policy in [
                        ResumptionPolicy::exim_compatible(),
                        ResumptionPolicy::hardened(),
                    ] {
                        let hardened = policy == ResumptionPolicy::hardened();
                        let (first, resumed) = client_certificate_reports(
                            (server, client),
                            version,
                            untrusted.clone(),
                            policy,
                        );
                        // A GnuTLS client presents no certificate the server's CA list does
                        // not name: nothing is checked.
                        let presented = client != BackendKind::Gnutls;
                        let seen = presented.then_some(false);
                        assert_eq!(first.certificate_verified(), seen, "{what}");
                        assert!(!first.verify_certificate(), "{what}");
                        let expected = match (server, hardened) {
                            (BackendKind::Openssl, false) => None,
                            _ => seen,
                        };
                        assert_eq!(
                            resumed.certificate_verified(),
                            expected,
                            "{what}: resumed, hardened: {hardened}"
                        );
                    }
                }
            }
        }
    }
}
