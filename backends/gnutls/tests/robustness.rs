//! Garbage session data given to the client, damaged tickets given to the server: always a
//! full handshake, never an error or a panic.

mod common;

use common::*;
use tlsresume_core::contract::ClientContract as _;
use tlsresume_core::*;

fn params(pair: &Pair) -> ClientParams {
    ClientParams::new(
        "mx.tlsresume.test",
        pair.listener.local_addr().expect("addr"),
    )
}

/// The cache key the pair's client stores its session under.
fn cache_key(pair: &Pair) -> CacheKey {
    pair.client
        .cache_key(tlsresume_gnutls::BACKEND, &params(pair))
}

fn replace_session(pair: &Pair, f: impl Fn(&mut Vec<u8>)) {
    let key = cache_key(pair);
    let mut entry = pair
        .store
        .get(&key)
        .expect("store")
        .expect("stored session");
    f(&mut entry.session);
    pair.store.put(&key, entry).expect("put");
}

fn stored_entry(pair: &Pair) -> tlsresume_core::CacheEntry {
    pair.store
        .get(&cache_key(pair))
        .expect("store")
        .expect("stored session")
}

/// The stored entry's session replaced by `data`, sealed under the store's key as the client
/// seals what it stores.
fn reseal(pair: &Pair, data: &[u8]) {
    let mut entry = stored_entry(pair);
    entry.session = pair
        .store
        .session_key()
        .seal_session("gnutls", &cache_key(pair), &entry, data);
    pair.store.put(&cache_key(pair), entry).expect("put");
}

#[test]
fn garbage_session_data_gives_a_full_handshake() {
    let _g = serial();
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let pair = Pair::exim("server-ecdsa", v);
        pair.connect().expect("full");
        for garbage in [
            vec![],
            vec![0u8; 3],
            b"not a gnutls session at all".repeat(20),
        ] {
            replace_session(&pair, |s| *s = garbage.clone());
            let (c, s) = pair.connect().expect("garbage is not an error");
            assert!(!c.resumed && !s.resumed, "{v}");
            // Never given to GnuTLS, so not offered (no 0x04); the server saw no session and
            // issued a new ticket, which was stored in its place.
            assert_eq!(c.resumption.bits(), 0x0b, "{v}");
            assert_eq!(s.resumption.bits(), 0x0b, "{v}");
            assert_ne!(
                stored_entry(&pair).session,
                garbage,
                "{v}: the garbage entry is gone"
            );
        }
    }
}

/// Where GnuTLS 3.7.9 keeps the TLS 1.2 ticket inside its session data: the session-ticket
/// extension's block, `u32 len+4`, `u32 len`, then the ticket. Found by its shape.
fn ticket_range(data: &[u8]) -> Option<std::ops::Range<usize>> {
    let u32_at = |i: usize| -> Option<usize> {
        Some(u32::from_be_bytes(data.get(i..i + 4)?.try_into().ok()?) as usize)
    };
    (0..data.len().saturating_sub(8)).find_map(|i| {
        let outer = u32_at(i)?;
        let inner = u32_at(i + 4)?;
        (inner >= 64 && outer == inner + 4 && i + 8 + inner == data.len().min(i + 8 + inner))
            .then_some(i + 8..i + 8 + inner)
    })
}

#[test]
fn damaged_session_data_is_not_given_to_gnutls() {
    let _g = serial();
    let pair = Pair::exim("server-ecdsa", ProtocolVersion::Tls12);
    pair.connect().expect("full");
    let stored = stored_entry(&pair);
    let good = stored.session.clone();
    // Every flipped byte outside the ticket (GnuTLS would crash on some of them), in the
    // entry the session was sealed with.
    let step = (good.len() / 40).max(1);
    for offset in (0..good.len()).step_by(step) {
        let mut damaged = stored.clone();
        damaged.session[offset] ^= 0x5a;
        pair.store.put(&cache_key(&pair), damaged).expect("put");
        let (c, s) = pair
            .connect()
            .unwrap_or_else(|e| panic!("offset {offset}: {e}"));
        assert!(!c.resumed && !s.resumed, "offset {offset}");
        assert!(
            !s.resumption.contains(Resumption::CLIENT_SUGGESTED),
            "offset {offset}"
        );
        // Never given to GnuTLS, so never "offered" (Exim sets the bit only after
        // gnutls_session_set_data succeeds).
        assert!(
            !c.resumption.contains(Resumption::CLIENT_SUGGESTED),
            "offset {offset}: {}",
            c.resumption
        );
        pair.store
            .put(&cache_key(&pair), stored.clone())
            .expect("put");
    }
}

#[test]
fn a_damaged_ticket_is_refused_by_the_server_with_a_full_handshake() {
    let _g = serial();
    let pair = Pair::exim("server-ecdsa", ProtocolVersion::Tls12);
    pair.connect().expect("full");
    let stored = stored_entry(&pair);
    let good = pair
        .store
        .session_key()
        .open_session("gnutls", &cache_key(&pair), &stored)
        .expect("sealed")
        .to_vec();
    let ticket = ticket_range(&good).expect("ticket inside the session data");
    let step = (ticket.len() / 12).max(1);
    for offset in ticket.clone().step_by(step) {
        let mut damaged = good.clone();
        damaged[offset] ^= 0x5a;
        reseal(&pair, &damaged);
        let (c, s) = pair
            .connect()
            .unwrap_or_else(|e| panic!("offset {offset}: {e}"));
        assert!(!c.resumed && !s.resumed, "offset {offset}");
        // The server saw a ticket it could not use: 0x0f on both sides.
        assert_eq!(s.resumption.bits(), 0x0f, "offset {offset}");
        assert_eq!(c.resumption.bits(), 0x0f, "offset {offset}");
    }
    // Garbage of the ticket's own length in its place.
    let mut damaged = good.clone();
    damaged[ticket.clone()]
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = i as u8);
    reseal(&pair, &damaged);
    let (c, s) = pair.connect().expect("garbage ticket");
    assert!(!c.resumed && !s.resumed);
    assert_eq!(s.resumption.bits(), 0x0f);
}

/// The two inputs with which fuzzing crashed GnuTLS 3.7.9 (`fuzz/regressions/`): a forged
/// cache entry in the unkeyed format, and raw GnuTLS session data. Sealed with the digest anyone
/// can compute, or under a key other than the client's, neither reaches GnuTLS: a full
/// handshake, and the process lives.
#[test]
fn forged_session_data_that_crashed_gnutls_never_reaches_it() {
    let _g = serial();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let entry_field = std::fs::read(dir.join("gnutls_session/segv-in-deinit")).expect("input");
    let raw_data = std::fs::read(dir.join("gnutls_set_data/segv-huge-calloc")).expect("input");
    let pair = Pair::exim("server-ecdsa", ProtocolVersion::Tls12);
    pair.connect().expect("full");
    let forger = tlsresume_core::SessionKey::from_bytes([0x42; 32]);
    let stored = stored_entry(&pair);
    for forged in [
        entry_field.clone(),
        forger.seal_session("gnutls", &cache_key(&pair), &stored, &raw_data),
        forger.seal_session("gnutls", &cache_key(&pair), &stored, &entry_field),
    ] {
        replace_session(&pair, |s| *s = forged.clone());
        let (c, s) = pair.connect().expect("a forged entry is a full handshake");
        assert!(!c.resumed && !s.resumed);
        assert!(
            !c.resumption.contains(Resumption::CLIENT_SUGGESTED),
            "{}",
            c.resumption
        );
    }
}

/// A client announcing a 16 MB ClientHello and sending it in full-size records: GnuTLS 3.7
/// would collect all of it before judging it (16 MB held per connection); the backend stops
/// reading at its handshake limit and fails the handshake, so the client cannot push more than
/// the limit plus what the sockets buffer before the connection is gone.
#[test]
fn a_huge_announced_client_hello_is_cut_at_the_handshake_limit() {
    let _g = serial();
    let mut settings = ServerSettings::new(identity("server-ecdsa"));
    settings.ticket_policy = Some(TicketPolicy::GNUTLS);
    let server = tlsresume_gnutls::Server::new(settings).expect("server");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = std::thread::spawn(move || {
        let (tcp, peer) = listener.accept().expect("accept");
        let local = tcp.local_addr().expect("local");
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        server
            .accept(tcp, &ServerParams::new(peer, local))
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_write_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    // A handshake record: the ClientHello header announces 16 MB - 1; then filler records.
    let record = |first: bool| {
        let mut r = vec![22, 3, 1, 0x40, 0x00];
        if first {
            r.extend_from_slice(&[1, 0xff, 0xff, 0xff, 3, 3]);
        }
        r.resize(5 + 0x4000, 0x41);
        r
    };
    let cap = 8 * 1024 * 1024;
    let mut sent = 0usize;
    let mut first = true;
    while sent < cap {
        use std::io::Write as _;
        match tcp.write_all(&record(first)) {
            Ok(()) => sent += 0x4000 + 5,
            Err(_) => break,
        }
        first = false;
    }
    let refused = serving.join().expect("server thread");
    let why = refused.expect_err("the huge ClientHello is refused");
    assert!(why.contains("went past"), "{why}");
    assert!(
        sent < cap,
        "the server kept reading: {sent} bytes went in (its error: {why})"
    );
}
