//! When a client of this crate writes the session a connection received, on every backend
//! against the GnuTLS and rustls servers, over real TLS 1.3 handshakes on loopback (they send
//! tickets after each handshake, a resumed one's included) with both ends on one virtual clock:
//! every new session is written, except on a resumed connection whose entry already holds what
//! the write would put there (the rustls client's handle to the session it keeps in process),
//! while the entry is younger than an eighth of its lifetime (15 minutes of the default
//! 2 hours). Every connection after the first resumes either way. (TLS 1.2 servers renew a
//! ticket on a resumption by their own rules, OpenSSL's not before an hour: the decision is the
//! same for both versions, and the core's unit tests take it with either.)

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[allow(dead_code)] // `answer`, `dialogue_info`, `gnutls_turn`, the counting store
mod common;

use tlsresume::backends;
use tlsresume_compare::Pki;
use tlsresume_core::{
    BackendKind, ManualClock, ProtocolVersion, ServerSettings, UnixTime, Versions,
};

/// What one client connection saw, and what it left in the store.
#[derive(Debug)]
struct Step {
    /// Minutes on the virtual clock since the first connection.
    at: u64,
    resumed: bool,
    /// Whether a ticket came (`SERVER_TICKET`).
    ticket: bool,
    /// Sessions the connection wrote to the store.
    puts: usize,
    /// When the store's entry was written, in minutes since the first connection.
    entry_written_at: Option<u64>,
}

/// A TLS 1.3 client on `kind` connecting to a server on `server_kind`, both on one virtual
/// clock, once at each of `minutes` (from the clock's start).
fn connections(
    server_kind: BackendKind,
    kind: BackendKind,
    pki: &Pki,
    minutes: &[u64],
) -> Vec<Step> {
    let clock = ManualClock::starting_now();
    let start = tlsresume_core::Clock::now(&clock);
    let mut server = ServerSettings::new(pki.server.clone());
    server.versions = Versions::only(ProtocolVersion::Tls13);
    server.clock = Arc::new(clock.clone());
    let server = backends::server(server_kind, server).expect("server");
    let store = Arc::new(common::CountedPuts::default());
    let mut client = tlsresume_core::ClientSettings::new(pki.roots.clone());
    client.versions = Versions::only(ProtocolVersion::Tls13);
    client.clock = Arc::new(clock.clone());
    client.store = store.clone();
    let client = backends::client(kind, client).expect("client");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let minute = |t: UnixTime| t.saturating_since(start).as_secs() / 60;
    thread::scope(|scope| {
        scope.spawn(|| {
            for _ in minutes {
                let Ok((tcp, _)) = listener.accept() else {
                    return;
                };
                common::answer(&*server, tcp);
            }
        });
        let mut steps = Vec::new();
        for &at in minutes {
            clock.set(start + Duration::from_secs(at * 60));
            let info = common::dialogue_info(&*client, addr)
                .unwrap_or_else(|e| panic!("{kind} client at {at} min: {e}"));
            steps.push(Step {
                at,
                resumed: info.resumed,
                ticket: info
                    .resumption
                    .contains(tlsresume_core::Resumption::SERVER_TICKET),
                puts: store.take(),
                entry_written_at: store.last_entry().map(|e| minute(e.stored_at)),
            });
        }
        steps
    })
}

/// A resumed connection writes its session again only when it must: on OpenSSL and GnuTLS
/// (whose entries hold the library's session, which each new ticket changes) every time; on rustls (whose entry holds a handle, under which the new session goes
/// again) not while the entry is younger than 15 minutes, and again once it is older, so the
/// entry's clock moves on with use. The store's entry says when it was written.
#[test]
fn a_resumed_connection_writes_its_entry_only_when_it_changes_or_ages() {
    let _turn = common::gnutls_turn();
    let pki = Pki::committed().expect("committed test PKI");
    // Full at 0; resumed at 1 (entry 1 min old), 14 (14 min), 16 (16 min: past an eighth of
    // 2 h), 20 (4 min after the write at 16 on rustls).
    let minutes = [0, 1, 14, 16, 20];
    // Servers that send tickets after every TLS 1.3 handshake: the OpenSSL server (its
    // flavour's policy) sends none after a resumption that does not renew, and a client that
    // uses each TLS 1.3 ticket once (rustls) then has none to offer next.
    let servers = [BackendKind::Gnutls, BackendKind::Rustls];
    for server_kind in servers.into_iter().filter(|k| backends::is_available(*k)) {
        for kind in backends::available() {
            let steps = connections(server_kind, kind, &pki, &minutes);
            let pair = format!("{kind} client, {server_kind} server");
            eprintln!("{pair}: {steps:?}");
            for (i, step) in steps.iter().enumerate() {
                assert_eq!(step.resumed, i > 0, "{pair} {step:?}: resumed");
            }
            assert!(steps.iter().all(|s| s.ticket), "{pair}: tickets {steps:?}");
            let puts: Vec<usize> = steps.iter().map(|s| s.puts).collect();
            let written: Vec<Option<u64>> = steps.iter().map(|s| s.entry_written_at).collect();
            if common::writes_in_place(kind, true) {
                assert_eq!(puts, [1, 0, 0, 1, 0], "{pair}: writes per connection");
                assert_eq!(
                    written,
                    [Some(0), Some(0), Some(0), Some(16), Some(16)],
                    "{pair}: when the store's entry was written"
                );
            } else {
                assert_eq!(puts, [1; 5], "{pair}: writes per connection");
                assert_eq!(
                    written,
                    steps.iter().map(|s| Some(s.at)).collect::<Vec<_>>(),
                    "{pair}: the entry is each connection's new session"
                );
            }
        }
    }
}
