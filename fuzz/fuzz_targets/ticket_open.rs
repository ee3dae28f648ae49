//! `TicketSealer::open` on any bytes a client presents as a ticket, at any clock reading.
//!
//! Input: 4 bytes of clock offset, then the ticket. Properties: opening never panics; a ticket
//! that opens carries a state that seals and opens again to the same state; flipping any byte
//! of a sealed ticket makes it fail (AES-GCM authenticates all of it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsresume_fuzz::{sealer, take_time};

fuzz_target!(|data: &[u8]| {
    let (now, ticket) = take_time(data);
    let sealer = sealer();
    if let Ok(opened) = sealer.open(ticket, now) {
        assert!(opened.decision.resumes());
        assert!(opened.issued <= now, "a ticket from the future opened");
    }
    // Round trip: the input as a state, sealed now, opens at once to the same state.
    let Ok(sealed) = sealer.seal(ticket, now) else {
        return;
    };
    let opened = sealer.open(&sealed, now).expect("a fresh ticket opens");
    assert_eq!(opened.state.as_slice(), ticket);
    assert_eq!(opened.issued, now);
    // Tampering with one byte (chosen by the input) is always detected.
    let mut tampered = sealed;
    let at = usize::from(data.first().copied().unwrap_or(0)) % tampered.len();
    tampered[at] ^= 0x01;
    assert!(
        sealer.open(&tampered, now).is_err(),
        "tampered byte {at} opened"
    );
});
