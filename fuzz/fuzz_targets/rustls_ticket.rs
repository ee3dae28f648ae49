//! The rustls server's ticket decrypt path: a ClientHello presenting a ticket, read by a rustls
//! server whose ticketer is the core sealer, as in the backend.
//!
//! Input: 1 mode byte, 4 bytes of clock offset, then bytes. Mode bit 0: TLS 1.2 session
//! ticket or TLS 1.3 PSK identity. Mode bit 1 clear: the bytes are the ticket as presented
//! (garbage, replays, tampering: the sealer rejects it). Set: the bytes are the session state
//! inside a genuine ticket — what a holder of the ticket keys could forge — so rustls decodes
//! them. Property: no panic, no leak, whatever the outcome of the handshake.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsresume_fuzz::hello::{client_hello, fuzz_server, serve_hello};
use tlsresume_fuzz::{sealer, take_time};

fuzz_target!(|data: &[u8]| {
    let Some((config, ticketer)) = fuzz_server() else {
        panic!("cannot build the rustls server fixture");
    };
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (now, bytes) = take_time(rest);
    ticketer.set_now(now);
    let ticket = if mode & 2 == 0 {
        bytes.to_vec()
    } else {
        let Ok(t) = sealer().seal(bytes, now) else {
            return;
        };
        t
    };
    serve_hello(config, &client_hello(&ticket, mode & 1 == 1));
});
