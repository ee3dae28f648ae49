//! Nothing ambiguous is taken from the wire, nothing unsafe is put on it: `probe` refuses an
//! envelope address carrying a command before it connects.

mod common;

use std::io::ErrorKind;
use std::net::TcpListener;

use common::{assert_one_line_error, run};

/// The address of the report: it closes the path and adds a recipient of its own.
const INJECTED: &str = "a@example.test>\r\nRCPT TO:<injected@evil.example";

#[test]
fn probe_refuses_an_address_with_a_control_byte_before_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("address").to_string();
    for (option, bad, why) in [
        ("--mail-from", INJECTED, "line break"),
        ("--rcpt-to", INJECTED, "line break"),
        ("--rcpt-to", "b@example.test\u{1}", "control byte 0x01"),
        ("--mail-from", "a@example.test\tx", "control byte 0x09"),
    ] {
        let (from, to) = if option == "--mail-from" {
            (bad, "b@example.test")
        } else {
            ("a@example.test", bad)
        };
        let r = run(&[
            "probe",
            &addr,
            "--plain",
            "--mail-from",
            from,
            "--rcpt-to",
            "c@example.test",
            "--rcpt-to",
            to,
        ]);
        assert_one_line_error(&r, option);
        assert!(r.stderr.contains(why), "{r:?}");
    }
    // Every refusal came before connecting: nothing waits to be accepted.
    let pending = listener.accept().map(|_| ()).map_err(|e| e.kind());
    assert_eq!(pending, Err(ErrorKind::WouldBlock));
}
