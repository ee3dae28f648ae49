//! When a client of this crate writes the session a connection received, on every backend,
//! over real handshakes on loopback with the client on a virtual clock: every new session is
//! written, except on a resumed connection whose entry already holds what the write would put
//! there (the rustls client's handle to the session it keeps in process), while the entry is
//! younger than an eighth of its lifetime (15 minutes of the default 2 hours). Every connection
//! after the first resumes either way.
//!
//! - TLS 1.3, against the GnuTLS and rustls servers of this crate (on the same virtual clock):
//!   they send tickets after each handshake, a resumed one's included.
//! - TLS 1.2, against a server of the rustls library driven directly (what a tokio-rustls server
//!   is): it renews its ticket on every resumption, in the resuming flight, so the session is
//!   handed over before the handshake is over. The servers of this crate renew by their own
//!   rules (OpenSSL's not before an hour) and send the rustls client none here.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[allow(dead_code)]
// the dialogue's ends, `gnutls_turn`, the counting store, the rustls library's server
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

/// The server end of [`connections`].
#[derive(Clone, Copy, Debug)]
enum Peer {
    /// A server of this crate on that backend, on the client's virtual clock.
    Ours(BackendKind),
    /// A TLS 1.2 server of the rustls library, driven directly, with its own ticketer (as a
    /// tokio-rustls server is made), on the system clock.
    RawRustls12,
}

/// A client on `kind` speaking only `version` connecting to `peer`, once at each of `minutes`
/// (from the start of the client's virtual clock, which a server of this crate shares).
fn connections(
    peer: Peer,
    kind: BackendKind,
    version: ProtocolVersion,
    pki: &Pki,
    minutes: &[u64],
) -> Vec<Step> {
    let clock = ManualClock::starting_now();
    let start = tlsresume_core::Clock::now(&clock);
    let serve: Box<dyn Fn(TcpStream) + Send + Sync> = match peer {
        Peer::Ours(server_kind) => {
            let mut server = ServerSettings::new(pki.server.clone());
            server.versions = Versions::only(version);
            server.clock = Arc::new(clock.clone());
            let server = backends::server(server_kind, server).expect("server");
            Box::new(move |tcp| {
                common::answer(&*server, tcp);
            })
        }
        Peer::RawRustls12 => {
            let config = Arc::new(common::rustls_library_server(pki, &rustls::version::TLS12));
            Box::new(move |tcp| common::answer_rustls_library(&config, tcp))
        }
    };
    let store = Arc::new(common::CountedPuts::default());
    let mut client = tlsresume_core::ClientSettings::new(pki.roots.clone());
    client.versions = Versions::only(version);
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
                serve(tcp);
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

/// Full at 0; resumed at 1 (entry 1 min old), 14 (14 min), 16 (16 min: past an eighth of the
/// 2 h the servers of this crate give), 20 (4 min after the write at 16 on rustls).
const MINUTES: [u64; 5] = [0, 1, 14, 16, 20];

/// The same for tickets of `lifetime`: 0, 1, a minute either side of an eighth of it, and 4
/// minutes after that.
fn minutes_for(lifetime: Duration) -> [u64; 5] {
    let eighth = lifetime.as_secs() / 8 / 60;
    [0, 1, eighth - 1, eighth + 1, eighth + 5]
}

/// Checks the writes of `steps` (connections at [`MINUTES`] or [`minutes_for`]): in place on a
/// client that stores handles (written again at the fourth connection, the first past an
/// eighth of the entry's lifetime), every time on the others.
fn check_writes(pair: &str, kind: BackendKind, steps: &[Step]) {
    eprintln!("{pair}: {steps:?}");
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(step.resumed, i > 0, "{pair} {step:?}: resumed");
    }
    assert!(steps.iter().all(|s| s.ticket), "{pair}: tickets {steps:?}");
    let puts: Vec<usize> = steps.iter().map(|s| s.puts).collect();
    let written: Vec<Option<u64>> = steps.iter().map(|s| s.entry_written_at).collect();
    if common::writes_in_place(kind, true) {
        assert_eq!(puts, [1, 0, 0, 1, 0], "{pair}: writes per connection");
        let at = |i: usize| Some(steps[i].at);
        assert_eq!(
            written,
            [at(0), at(0), at(0), at(3), at(3)],
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

/// A resumed connection writes its session again only when it must: on OpenSSL and GnuTLS
/// (whose entries hold the library's session, which each new ticket changes) every time; on rustls (whose entry holds a handle, under which the new session goes
/// again) not while the entry is younger than 15 minutes, and again once it is older, so the
/// entry's clock moves on with use. The store's entry says when it was written.
#[test]
fn a_resumed_connection_writes_its_entry_only_when_it_changes_or_ages() {
    let _turn = common::gnutls_turn();
    let pki = Pki::committed().expect("committed test PKI");
    // Servers that send tickets after every TLS 1.3 handshake: the OpenSSL server (its
    // flavour's policy) sends none after a resumption that does not renew, and a client that
    // uses each TLS 1.3 ticket once (rustls) then has none to offer next.
    let servers = [BackendKind::Gnutls, BackendKind::Rustls];
    for server_kind in servers.into_iter().filter(|k| backends::is_available(*k)) {
        for kind in backends::available() {
            let peer = Peer::Ours(server_kind);
            let steps = connections(peer, kind, ProtocolVersion::Tls13, &pki, &MINUTES);
            check_writes(
                &format!("TLS 1.3, {kind} client, {server_kind} server"),
                kind,
                &steps,
            );
        }
    }
}

/// The same over TLS 1.2, against a server that renews its ticket on every resumption (the
/// rustls library's, as tokio-rustls serves): the session a resumed connection receives is
/// handed over inside the handshake, before it is over, and the decision is the same.
#[test]
fn a_tls12_ticket_renewed_in_the_resuming_flight_is_written_only_when_it_must() {
    let _turn = common::gnutls_turn();
    let pki = Pki::committed().expect("committed test PKI");
    // The lifetime its tickets say, as the library gives it (12 h in rustls 0.23).
    let config = common::rustls_library_server(&pki, &rustls::version::TLS12);
    let lifetime = Duration::from_secs(u64::from(config.ticketer.lifetime()));
    let minutes = minutes_for(lifetime);
    for kind in backends::available() {
        let steps = connections(
            Peer::RawRustls12,
            kind,
            ProtocolVersion::Tls12,
            &pki,
            &minutes,
        );
        check_writes(
            &format!("TLS 1.2, {kind} client, rustls library server"),
            kind,
            &steps,
        );
    }
}
