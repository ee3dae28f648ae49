//! Real handshakes over loopback TCP between the rustls server and client, on a virtual clock.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tlsresume_core::keys::seal::TicketSealer;
use tlsresume_core::*;
use tlsresume_rustls::{Client, Server, Stream};

fn pki(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/pki")
        .join(name)
}

const MIN: u64 = 60;

struct Harness {
    clock: ManualClock,
    listener: TcpListener,
    server: Arc<Server>,
    store: Arc<MemoryStore>,
    client: Client,
    client_settings: ClientSettings,
}

fn server_settings(
    clock: &ManualClock,
    versions: Versions,
    policy: TicketPolicy,
) -> ServerSettings {
    let identity = Identity::from_pem_files(&pki("server-ecdsa.pem"), &pki("server-ecdsa.key"))
        .expect("identity");
    let mut s = ServerSettings::new(identity);
    s.clock = Arc::new(clock.clone());
    s.versions = versions;
    s.ticket_policy = Some(policy);
    s
}

fn client_settings(
    clock: &ManualClock,
    versions: Versions,
    store: Arc<MemoryStore>,
) -> ClientSettings {
    let roots = certificates_from_pem_file(&pki("ca.pem")).expect("ca");
    let mut c = ClientSettings::new(roots);
    c.clock = Arc::new(clock.clone());
    c.versions = versions;
    c.store = store;
    c
}

impl Harness {
    fn new(version: ProtocolVersion) -> Self {
        Self::with(version, TicketPolicy::OPENSSL, |_| {}, |_| {})
    }

    /// Both ends under `ResumptionPolicy::exim_compatible()` (the default is `hardened()`).
    fn exim(version: ProtocolVersion) -> Self {
        Self::with(
            version,
            TicketPolicy::OPENSSL,
            |s| s.resumption = ResumptionPolicy::exim_compatible(),
            |c| c.resumption = ResumptionPolicy::exim_compatible(),
        )
    }

    fn with(
        version: ProtocolVersion,
        policy: TicketPolicy,
        server_edit: impl FnOnce(&mut ServerSettings),
        client_edit: impl FnOnce(&mut ClientSettings),
    ) -> Self {
        let clock = ManualClock::starting_now();
        let versions = Versions::only(version);
        let mut ss = server_settings(&clock, versions, policy);
        server_edit(&mut ss);
        let store = Arc::new(MemoryStore::new(100));
        let mut cs = client_settings(&clock, versions, store.clone());
        client_edit(&mut cs);
        Self {
            server: Arc::new(Server::new(ss).expect("server")),
            client: Client::new(cs.clone()).expect("client"),
            client_settings: cs,
            listener: TcpListener::bind("127.0.0.1:0").expect("bind"),
            store,
            clock,
        }
    }

    /// Accepts one connection on a thread of its own and hands the server's handshake result
    /// to `then`, whose answer the thread returns.
    fn accept_one<R: Send + 'static>(
        &self,
        then: impl FnOnce(Result<Stream<Box<dyn Transport>>, Error>) -> R + Send + 'static,
    ) -> thread::JoinHandle<R> {
        let listener = self.listener.try_clone().expect("clone");
        let server = self.server.clone();
        thread::spawn(move || {
            let (tcp, peer) = listener.accept().expect("accept");
            let local = tcp.local_addr().expect("addr");
            then(server.accept(
                Box::new(tcp) as Box<dyn Transport>,
                &ServerParams::new(peer, local),
            ))
        })
    }

    fn params(&self) -> ClientParams {
        ClientParams::new(
            "mx.tlsresume.test",
            self.listener.local_addr().expect("addr"),
        )
    }

    fn advance_mins(&self, mins: u64) {
        self.clock.advance(Duration::from_secs(mins * MIN));
    }

    /// One connection: the server greets, the client reads the greeting (TLS 1.3 tickets
    /// arrive with it), answers, and both report.
    fn connect(&self) -> (SessionInfo, SessionInfo) {
        self.connect_with(&self.client, &self.params(), |t| Box::new(t))
    }

    fn connect_with(
        &self,
        client: &Client,
        params: &ClientParams,
        wrap: impl FnOnce(TcpStream) -> Box<dyn Transport>,
    ) -> (SessionInfo, SessionInfo) {
        let server = self.server.clone();
        let listener = self.listener.try_clone().expect("clone");
        let handle = thread::spawn(move || -> io::Result<SessionInfo> {
            let (tcp, peer) = listener.accept()?;
            serve_one(server, tcp, peer)
        });
        let tcp = TcpStream::connect(params.peer).expect("connect");
        let mut tls = client.connect(wrap(tcp), params).expect("client handshake");
        let mut greeting = [0u8; 11];
        tls.read_exact(&mut greeting).expect("greeting");
        assert_eq!(&greeting, b"220 hello\r\n");
        tls.write_all(b"QUIT\r\n").expect("quit");
        tls.flush().expect("flush");
        let client_info = tls.info().clone();
        let server_info = handle.join().expect("server thread").expect("server");
        (client_info, server_info)
    }
}

fn bits(info: &SessionInfo) -> u8 {
    info.resumption.bits()
}

#[test]
fn full_then_resumed_tls12() {
    let h = Harness::new(ProtocolVersion::Tls12);
    let (c, s) = h.connect();
    assert!(!c.resumed && !s.resumed);
    assert_eq!(c.protocol, ProtocolVersion::Tls12);
    assert_eq!((bits(&c), bits(&s)), (0x0B, 0x0B));
    assert_eq!(c.verification, Verification::Verified);
    assert_eq!(c.ticket_lifetime, Some(Duration::from_secs(7200)));
    assert_eq!(h.store.len(), 1);
    h.advance_mins(10);
    let (c2, s2) = h.connect();
    assert!(c2.resumed && s2.resumed);
    // No renewal before the key is an hour old: no new ticket in TLS 1.2.
    assert_eq!((bits(&c2), bits(&s2)), (0x17, 0x1D));
    assert_eq!(c2.resumption.describe(), "session resumed");
    assert_eq!(
        c2.cipher, c.cipher,
        "rustls cipher names do not change on resumption"
    );
    assert!(
        c2.cipher.exim.starts_with("TLS1.2:TLS_ECDHE_ECDSA_WITH_"),
        "{}",
        c2.cipher.exim
    );
    assert_eq!(c2.peer_certificates, c.peer_certificates);
    assert!(!c2.peer_certificates.is_empty());
    // The server reports the leaf it sent on a full handshake, none on a resumed one; every
    // full handshake hands out the one copy it made of its certificate.
    let sent = s
        .local_certificate
        .clone()
        .expect("a full handshake sends a certificate");
    assert_eq!(
        Some(&sent[..]),
        c.peer_certificates.first().map(Vec::as_slice)
    );
    assert_eq!(s2.local_certificate, None);
    h.advance_mins(3 * 60);
    let (_, s3) = h.connect();
    assert!(!s3.resumed, "past the ticket's lifetime");
    let again = s3
        .local_certificate
        .expect("a full handshake sends a certificate");
    assert!(Arc::ptr_eq(&sent, &again));
}

#[test]
fn full_then_resumed_tls13() {
    let h = Harness::new(ProtocolVersion::Tls13);
    let (c, s) = h.connect();
    assert_eq!(c.protocol, ProtocolVersion::Tls13);
    assert_eq!((bits(&c), bits(&s)), (0x0B, 0x0B));
    assert!(
        c.cipher.exim.starts_with("TLS1.3:TLS_AES_"),
        "{}",
        c.cipher.exim
    );
    assert!(c.cipher.native.starts_with("TLS13_"));
    h.advance_mins(10);
    let (c2, s2) = h.connect();
    assert!(c2.resumed && s2.resumed);
    // TLS 1.3 issues a ticket after every handshake.
    assert_eq!((bits(&c2), bits(&s2)), (0x1F, 0x1F));
    assert_eq!(c2.resumption.describe(), "session resumed, also new ticket");
    // The new ticket resumes too.
    let (c3, _) = h.connect();
    assert!(c3.resumed);
}

#[test]
fn openssl_preset_resume_renew_and_expire_on_the_virtual_clock() {
    let h = Harness::new(ProtocolVersion::Tls12);
    let (c, _) = h.connect();
    assert!(!c.resumed);
    h.advance_mins(10);
    let (c, s) = h.connect();
    assert!(c.resumed);
    assert_eq!(bits(&s), 0x1D);
    // 61 min: the key is past its renew time; a fresh ticket is issued and stored.
    h.advance_mins(51);
    let (c, s) = h.connect();
    assert!(c.resumed);
    assert_eq!((bits(&c), bits(&s)), (0x1F, 0x1F));
    // 62 min: the renewed ticket (current key) resumes without renewal.
    h.advance_mins(1);
    let (c, s) = h.connect();
    assert!(c.resumed);
    assert_eq!(bits(&s), 0x1D);
    // 3 h 2 min: two hours after the renewal the stored session has expired: not offered.
    h.advance_mins(120);
    let (c, s) = h.connect();
    assert!(!c.resumed && !s.resumed);
    assert_eq!(bits(&c), 0x0B);
}

#[test]
fn previous_key_decrypts_after_one_rotation_and_not_after_two() {
    let h = Harness::new(ProtocolVersion::Tls13);
    h.connect();
    // 59 min: resume; TLS 1.3 gives a new ticket, sealed with the first key.
    h.advance_mins(59);
    let (c, _) = h.connect();
    assert!(c.resumed);
    let first_key = h.server.key_ring().key_names(h.clock.now())[0];
    // 61 min: rotation happened; the first key is now the previous one and still decrypts.
    h.advance_mins(2);
    let names = h.server.key_ring().key_names(h.clock.now());
    assert_eq!(names.len(), 2);
    assert_eq!(names[1], first_key);
    // A ticket sealed at 59 min under the first key: present it after the second rotation.
    // Make a client holding that ticket by resuming at 59 min again on a second harness-like
    // sequence: here, roll back to the 59-minute ticket by not connecting at 61.
    let h2 = Harness::new(ProtocolVersion::Tls13);
    h2.connect();
    h2.advance_mins(59);
    assert!(h2.connect().0.resumed);
    // 2 h 1 min: the ticket is 62 min old (within its 2 h lifetime, so the client offers it)
    // but its key was made at 0 and expired at 2 h, two rotations ago.
    h2.advance_mins(62);
    let (c, s) = h2.connect();
    assert!(
        c.resumption.contains(Resumption::CLIENT_SUGGESTED),
        "offered"
    );
    assert!(s.resumption.contains(Resumption::CLIENT_SUGGESTED));
    assert!(!c.resumed && !s.resumed, "rejected: full handshake");
}

/// Flips one byte of the first ticket seen in the client's first flight.
#[derive(Debug)]
struct TamperTap {
    inner: TcpStream,
    needle: Vec<u8>,
    done: bool,
}

impl Read for TamperTap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for TamperTap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.done {
            if let Some(pos) = buf
                .windows(self.needle.len())
                .position(|w| w == self.needle)
            {
                let mut copy = buf.to_vec();
                copy[pos + 16 + 12 + 2] ^= 0x40;
                self.done = true;
                self.inner.write_all(&copy)?;
                return Ok(buf.len());
            }
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn ticket_tampered_on_the_wire_fails_cleanly_and_the_server_carries_on() {
    // Tampering in flight changes the handshake transcript, so the handshake must fail (the
    // Finished check), without a panic; the server then serves the next connection, whose
    // stored session resumes where the library allows it. Tickets tampered at rest are covered by
    // `another_servers_ticket_gives_a_full_handshake` and the core sealer's bit-flip tests.
    for version in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let h = Harness::new(version);
        h.connect();
        let needle = h.server.key_ring().key_names(h.clock.now())[0]
            .as_bytes()
            .to_vec();
        let t = h.accept_one(|accepted| match accepted {
            Ok(mut tls) => {
                // TLS 1.3: the server's handshake may finish before the client's Finished
                // is checked; the failure then shows on read.
                let mut buf = [0u8; 1];
                tls.read(&mut buf).is_err() || !tls.info().resumed
            }
            Err(_) => true,
        });
        let tcp = TcpStream::connect(h.params().peer).expect("connect");
        let tap = TamperTap {
            inner: tcp,
            needle,
            done: false,
        };
        // The client's transcript differs from the server's: the handshake must fail, with the
        // server's alert (it cannot verify the client's Finished, or the client its).
        let err = h
            .client
            .connect(Box::new(tap), &h.params())
            .expect_err("a tampered ClientHello cannot complete");
        assert!(
            matches!(
                err.kind(),
                tlsresume_core::ErrorKind::Alert | tlsresume_core::ErrorKind::Protocol
            ),
            "{version}: {err} ({:?})",
            err.kind()
        );
        assert!(t.join().expect("server thread"), "{version}");
        // TLS 1.2 sessions are reusable, so the stored one resumes; a TLS 1.3 ticket was used
        // up by the failed attempt (rustls tickets are single-use), so a full handshake follows.
        let (c, s) = h.connect();
        assert_eq!(c.resumed, version == ProtocolVersion::Tls12, "{version}");
        assert_eq!(s.resumed, c.resumed);
    }
}

#[test]
fn another_servers_ticket_gives_a_full_handshake() {
    let h = Harness::new(ProtocolVersion::Tls12);
    h.connect();
    // Same address, new server process: new keys.
    let other = Harness::with(
        ProtocolVersion::Tls12,
        TicketPolicy::OPENSSL,
        |_| {},
        |_| {},
    );
    let swapped = Harness {
        server: other.server.clone(),
        listener: h.listener.try_clone().expect("clone"),
        clock: h.clock.clone(),
        store: h.store.clone(),
        client: Client::new(h.client_settings.clone()).expect("client"),
        client_settings: h.client_settings.clone(),
    };
    let (c, s) = swapped.connect_with(&h.client, &h.params(), |t| Box::new(t));
    assert!(c.resumption.contains(Resumption::CLIENT_SUGGESTED));
    assert!(!c.resumed && !s.resumed);
}

#[test]
fn client_whose_policy_forbids_resumption_offers_nothing() {
    let h = Harness::with(
        ProtocolVersion::Tls13,
        TicketPolicy::OPENSSL,
        |_| {},
        |c| c.resumption = ResumptionPolicy::exim_compatible().with_client_hosts(HostList::none()),
    );
    let (c, _) = h.connect();
    assert_eq!(bits(&c), 0x01);
    let (c, s) = h.connect();
    assert_eq!(bits(&c), 0x01);
    assert!(!s.resumed);
    assert!(h.store.is_empty());
}

#[test]
fn server_that_excludes_the_client_issues_no_ticket() {
    let h = Harness::with(
        ProtocolVersion::Tls12,
        TicketPolicy::OPENSSL,
        |s| {
            s.resumption = ResumptionPolicy::exim_compatible()
                .with_server_hosts("!127.0.0.1".parse().expect("list"))
        },
        |_| {},
    );
    let (c, s) = h.connect();
    assert_eq!((bits(&c), bits(&s)), (0x03, 0x01));
    assert!(h.store.is_empty());
}

#[test]
fn changed_cache_key_inputs_offer_no_session() {
    let h = Harness::new(ProtocolVersion::Tls12);
    h.connect();
    let mut lb = h.params();
    lb.lb_name = Some("mx2.tlsresume.test".into());
    let mut sni = h.params();
    sni.server_name = "localhost".into();
    for params in [lb, sni] {
        let (c, _) = h.connect_with(&h.client, &params, |t| Box::new(t));
        assert!(
            !c.resumption.contains(Resumption::CLIENT_SUGGESTED),
            "{params:?}"
        );
        assert!(!c.resumed);
    }
    // ALPN: another client configuration.
    let mut cs = h.client_settings.clone();
    cs.alpn = vec![b"smtp".to_vec()];
    let alpn_client = Client::new(cs).expect("client");
    let (c, _) = h.connect_with(&alpn_client, &h.params(), |t| Box::new(t));
    assert!(!c.resumption.contains(Resumption::CLIENT_SUGGESTED));
    // Port: another listener.
    let other = TcpListener::bind("127.0.0.1:0").expect("bind");
    let moved = Harness {
        listener: other,
        server: h.server.clone(),
        clock: h.clock.clone(),
        store: h.store.clone(),
        client: Client::new(h.client_settings.clone()).expect("client"),
        client_settings: h.client_settings.clone(),
    };
    let (c, _) = moved.connect_with(&h.client, &moved.params(), |t| Box::new(t));
    assert!(!c.resumption.contains(Resumption::CLIENT_SUGGESTED));
}

#[test]
fn verification_on_resumption_exim_reports_not_checked_hardened_carries() {
    let exim = Harness::exim(ProtocolVersion::Tls12);
    exim.connect();
    let (c, _) = exim.connect();
    assert!(c.resumed);
    assert_eq!(c.verification, Verification::NotChecked);
    let hardened = Harness::with(
        ProtocolVersion::Tls12,
        TicketPolicy::OPENSSL,
        |_| {},
        |c| c.resumption = ResumptionPolicy::hardened(),
    );
    hardened.connect();
    let (c, _) = hardened.connect();
    assert!(c.resumed);
    assert_eq!(c.verification, Verification::Verified);
}

#[test]
fn forced_through_verification_never_becomes_verified() {
    for policy in [
        ResumptionPolicy::exim_compatible(),
        ResumptionPolicy::hardened(),
    ] {
        let h = Harness::with(
            ProtocolVersion::Tls13,
            TicketPolicy::OPENSSL,
            |s| {
                s.identity = Identity::from_pem_files(&pki("untrusted.pem"), &pki("untrusted.key"))
                    .expect("identity")
            },
            |c| {
                c.verify = VerifyMode::Try;
                c.resumption = policy.clone();
            },
        );
        let (c, _) = h.connect();
        assert_eq!(c.verification, Verification::Failed);
        let (c, _) = h.connect();
        assert!(c.resumed);
        assert_ne!(c.verification, Verification::Verified, "{}", policy.name());
    }
}

#[test]
fn verification_required_and_failing_stops_the_handshake() {
    let h = Harness::with(
        ProtocolVersion::Tls12,
        TicketPolicy::OPENSSL,
        |s| {
            s.identity = Identity::from_pem_files(&pki("untrusted.pem"), &pki("untrusted.key"))
                .expect("identity")
        },
        |_| {},
    );
    let t = h.accept_one(|accepted| accepted.is_err());
    let tcp = TcpStream::connect(h.params().peer).expect("connect");
    let err = h
        .client
        .connect(Box::new(tcp), &h.params())
        .expect_err("must fail");
    assert!(err.to_string().contains("rustls"), "{err}");
    assert!(t.join().expect("join"));
}

#[test]
fn ocsp_staple_on_full_handshake_only() {
    let staple = std::fs::read(pki("server-ecdsa.ocsp.der")).expect("ocsp");
    for policy in [
        ResumptionPolicy::exim_compatible(),
        ResumptionPolicy::hardened(),
    ] {
        let staple = staple.clone();
        let h = Harness::with(
            ProtocolVersion::Tls13,
            TicketPolicy::OPENSSL,
            |s| s.ocsp_response = Some(staple),
            |c| {
                c.ocsp = OcspMode::Request;
                c.resumption = policy.clone();
            },
        );
        let (c, s) = h.connect();
        assert_eq!(
            c.ocsp,
            OcspStatus::Verified,
            "the staple verifies against the CA"
        );
        assert_eq!(s.ocsp, OcspStatus::NotVerified, "server: stapled");
        let (c, s) = h.connect();
        assert!(c.resumed);
        assert_eq!(s.ocsp, OcspStatus::NoResponse, "no staple on resumption");
        let expected = if policy.name() == "hardened" {
            OcspStatus::Verified
        } else {
            OcspStatus::NoResponse
        };
        assert_eq!(c.ocsp, expected, "{}", policy.name());
    }
}

#[test]
fn required_ocsp_fails_on_resumption_under_exim_and_not_under_hardened() {
    let staple = std::fs::read(pki("server-ecdsa.ocsp.der")).expect("ocsp");
    for (policy, resumes) in [
        (ResumptionPolicy::exim_compatible(), false),
        (ResumptionPolicy::hardened(), true),
    ] {
        let staple = staple.clone();
        let h = Harness::with(
            ProtocolVersion::Tls12,
            TicketPolicy::OPENSSL,
            |s| s.ocsp_response = Some(staple),
            |c| {
                c.ocsp = OcspMode::Require;
                c.resumption = policy.clone();
            },
        );
        let (c, _) = h.connect();
        assert_eq!(c.ocsp, OcspStatus::Verified);
        let t = h.accept_one(|accepted| {
            let mut tls = accepted.expect("server handshake");
            let _ = tls.write_all(b"220 hello\r\n");
            let _ = tls.flush();
            let mut rest = Vec::new();
            let _ = tls.read_to_end(&mut rest);
        });
        let tcp = TcpStream::connect(h.params().peer).expect("connect");
        let outcome = h.client.connect(Box::new(tcp), &h.params());
        match (&outcome, resumes) {
            (Ok(tls), true) => {
                assert!(tls.info().resumed);
                assert_eq!(tls.info().ocsp, OcspStatus::Verified);
            }
            (Err(e), false) => assert_eq!(e.kind(), tlsresume_core::ErrorKind::Ocsp, "{e}"),
            (Ok(_), false) => panic!("exim: required OCSP must fail on the resumed handshake"),
            (Err(e), true) => panic!("hardened: must resume: {e}"),
        }
        drop(outcome);
        t.join().expect("server thread");
    }
}

#[test]
fn gnutls_preset_resumes_within_the_lifetime_without_renewal() {
    let h = Harness::with(ProtocolVersion::Tls12, TicketPolicy::GNUTLS, |_| {}, |_| {});
    h.connect();
    h.advance_mins(61);
    let (c, s) = h.connect();
    assert!(c.resumed);
    assert_eq!(bits(&s), 0x1D, "no renewal in the GnuTLS flavour");
    h.advance_mins(60);
    let (c, _) = h.connect();
    assert!(!c.resumed, "2 h 1 min after issue: expired");
}

#[test]
fn mismatched_key_and_certificate_is_a_clear_error() {
    let clock = ManualClock::starting_now();
    let cert = std::fs::read(pki("server-ecdsa.pem")).expect("cert");
    let key = std::fs::read(pki("untrusted.key")).expect("key");
    let mut s = server_settings(&clock, Versions::ALL, TicketPolicy::OPENSSL);
    s.identity = Identity::from_pem(&cert, &key).expect("pem");
    let err = Server::new(s).expect_err("mismatch");
    assert!(err.to_string().contains("private key"), "{err}");
}

#[test]
fn unreadable_files_are_named() {
    let err = Identity::from_pem_files(&pki("missing.pem"), &pki("server-ecdsa.key"))
        .expect_err("missing");
    assert!(err.to_string().contains("missing.pem"), "{err}");
    let _: SocketAddr = "127.0.0.1:1".parse().expect("addr");
}

/// The server end of one connection: greets, reads QUIT, reports.
fn serve_one(server: Arc<Server>, tcp: TcpStream, peer: SocketAddr) -> io::Result<SessionInfo> {
    let params = ServerParams::new(peer, tcp.local_addr()?);
    let mut tls = server
        .accept(Box::new(tcp), &params)
        .map_err(io::Error::other)?;
    tls.write_all(b"220 hello\r\n")?;
    tls.flush()?;
    let mut line = String::new();
    BufReader::new(&mut tls).read_line(&mut line)?;
    assert_eq!(line, "QUIT\r\n");
    let info = tls.info().clone();
    let _ = tls.shutdown();
    Ok(info)
}

#[test]
fn handshakes_in_progress_at_once_share_a_tls12_session_and_keep_their_own_records() {
    // Exim's policy: the resumptions report "not checked", so a leaked "verified" shows.
    let h = Harness::exim(ProtocolVersion::Tls12);
    let (first, _) = h.connect();
    assert!(!first.resumed);
    let server = h.server.clone();
    let listener = h.listener.try_clone().expect("clone");
    let serving = thread::spawn(move || {
        (0..3)
            .map(|_| {
                let (tcp, peer) = listener.accept().expect("accept");
                let server = server.clone();
                thread::spawn(move || serve_one(server, tcp, peer))
            })
            .collect::<Vec<_>>()
    });
    let params = h.params();
    // Another server name is another cache key: a full handshake, whose verifier runs while
    // the two resumptions are in progress.
    let other = ClientParams::new("localhost", params.peer);
    let tcp = || TcpStream::connect(params.peer).expect("connect");
    let a = h.client.start(tcp(), &params).expect("start a");
    let b = h.client.start(tcp(), &params).expect("start b");
    let full = h.client.start(tcp(), &other).expect("start full");
    let mut infos = Vec::new();
    for handshake in [full, a, b] {
        let mut tls = handshake
            .resume()
            .and_then(|h| h.blocking())
            .expect("handshake");
        let mut greeting = [0u8; 11];
        tls.read_exact(&mut greeting).expect("greeting");
        tls.write_all(b"QUIT\r\n").expect("quit");
        tls.flush().expect("flush");
        infos.push(tls.info().clone());
    }
    for s in serving.join().expect("server") {
        s.join().expect("server thread").expect("server");
    }
    let (full, a, b) = (&infos[0], &infos[1], &infos[2]);
    assert!(!full.resumed);
    assert_eq!(full.verification, Verification::Verified);
    for (name, info) in [("a", a), ("b", b)] {
        assert!(
            info.resumed,
            "{name}: both handshakes offered and resumed the one TLS 1.2 session"
        );
        assert!(
            info.resumption.contains(Resumption::CLIENT_SUGGESTED),
            "{name}"
        );
        // Exim's policy: a resumed session's verification is not carried over. The full
        // handshake's "verified" did not leak into the resumptions' records.
        assert_eq!(info.verification, Verification::NotChecked, "{name}");
    }
}

/// A TLS 1.2 ClientHello (ECDHE-ECDSA suites, P-256, extended master secret) presenting
/// `ticket` in the session-ticket extension, as one TLS record.
fn tls12_hello_with_ticket(ticket: &[u8]) -> Vec<u8> {
    fn u16_len(out: &mut Vec<u8>, body: &[u8]) {
        out.extend_from_slice(&u16::try_from(body.len()).expect("short").to_be_bytes());
        out.extend_from_slice(body);
    }
    fn extension(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
        out.extend_from_slice(&kind.to_be_bytes());
        u16_len(out, body);
    }
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x11; 32]); // random
    body.push(32);
    body.extend_from_slice(&[0x22; 32]); // session id, echoed on resumption
    u16_len(&mut body, &[0xc0, 0x2b, 0xc0, 0x2c, 0x00, 0xff]);
    body.extend_from_slice(&[1, 0]); // null compression
    let mut ext = Vec::new();
    extension(&mut ext, 0x000a, &[0, 2, 0x00, 0x17]); // secp256r1
    extension(&mut ext, 0x000b, &[1, 0]); // uncompressed points
    extension(&mut ext, 0x000d, &[0, 2, 0x04, 0x03]); // ecdsa_secp256r1_sha256
    extension(&mut ext, 0x0017, &[]); // extended master secret
    extension(&mut ext, 0x0023, ticket); // session_ticket
    u16_len(&mut body, &ext);
    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&u32::try_from(body.len()).expect("short").to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    u16_len(&mut record, &handshake);
    record
}

/// The handshake message types in the server's first flight (records read until the
/// ServerHelloDone, or until the server stops sending).
fn server_flight(tcp: &mut TcpStream) -> Vec<u8> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let mut types = Vec::new();
    loop {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => return types,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
        // Handshake records, then the messages in them.
        let mut payload = Vec::new();
        let mut at = 0;
        while bytes.len() >= at + 5 {
            let len = usize::from(u16::from_be_bytes([bytes[at + 3], bytes[at + 4]]));
            if bytes.len() < at + 5 + len {
                break;
            }
            if bytes[at] == 0x16 {
                payload.extend_from_slice(&bytes[at + 5..at + 5 + len]);
            }
            at += 5 + len;
        }
        types.clear();
        let mut m = 0;
        while payload.len() >= m + 4 {
            types.push(payload[m]);
            let len = usize::from(payload[m + 1]) << 16
                | usize::from(payload[m + 2]) << 8
                | usize::from(payload[m + 3]);
            m += 4 + len;
        }
        if types.contains(&14) || types.contains(&20) {
            return types;
        }
    }
}

#[test]
fn a_forged_tls12_state_with_a_short_master_secret_gives_a_full_handshake() {
    // Found by the `rustls_ticket` fuzz target: rustls 0.23 copies a TLS 1.2 session's master
    // secret into a 48-byte array and panicked on this state (its encoding with no SNI, TLS 1.2,
    // ECDHE-ECDSA-AES128-GCM-SHA256 and a 6-byte master secret). Only a holder of the ticket
    // keys can seal one; the server must refuse it as a ticket that does not open, with a full
    // handshake, and go on serving.
    let h = Harness::new(ProtocolVersion::Tls12);
    let state = [
        0x74, 0x03, 0x03, 0xc0, 0x2b, 0x06, 0x06, 0x06, 0x06, 0x06, 0x4e, 0x44, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x20, 0xd9, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x30,
    ];
    let forged = TicketSealer::new(h.server.key_ring().clone())
        .seal(&state, h.clock.now())
        .expect("seal");
    // The fake client leaves after the server's first flight: an error, not a panic.
    let t = h.accept_one(|accepted| accepted.map(|_| ()));
    let mut tcp = TcpStream::connect(h.params().peer).expect("connect");
    tcp.write_all(&tls12_hello_with_ticket(&forged))
        .expect("hello");
    let types = server_flight(&mut tcp);
    drop(tcp);
    let outcome = t.join().expect("the server thread did not panic");
    // ServerHello (2), then Certificate (11): a full handshake, the forged state refused.
    assert_eq!(
        types.get(..2),
        Some(&[2u8, 11][..]),
        "server flight {types:?} ({outcome:?})"
    );
    // The server serves the next client as ever.
    let (c, s) = h.connect();
    assert!(!c.resumed && !s.resumed);
    let (c, _) = h.connect();
    assert!(c.resumed, "a genuine ticket resumes");
}
