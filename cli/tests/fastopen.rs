//! `probe --fastopen` against `serve --fastopen` on loopback, with a packet capture of the
//! SYNs as the evidence: with `net.ipv4.tcp_fastopen` at 3 the second connection's SYN
//! carries the first flight (EHLO and the message's commands in clear, EHLO and STARTTLS
//! before TLS, the ClientHello for TLS-on-connect), the server logs it `TFO*`, and the
//! message is delivered; at 0 the same commands deliver without Fast Open and say why.
//!
//! The tests set the sysctl for their run and restore it (root), and capture with `tcpdump`
//! (Debian package `tcpdump`, as root); where either is missing they fail under `CI` and say
//! SKIPPED elsewhere.

mod common;
// The SYN capture, shared with the SMTP client's Fast Open tests.
#[path = "../../smtp/tests/common/capture.rs"]
mod capture;

use capture::{skip, Capture};
use common::{run, Run, Server};

use tlsresume::smtp::fastopen::{KernelSetting, ScopedSetting};

/// The test message's envelope.
const TEST_MESSAGE: [&str; 4] = [
    "--mail-from",
    "a@example.test",
    "--rcpt-to",
    "b@example.test",
];

/// The kernel's setting at `value` for the test.
fn kernel_at(value: u32) -> Option<ScopedSetting> {
    KernelSetting(value)
        .set_for_now()
        .map_err(|e| {
            skip(&format!(
                "cannot set net.ipv4.tcp_fastopen to {value} (root): {e}"
            ))
        })
        .ok()
}

/// The port of a `127.0.0.1:PORT` address.
fn port(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// The server with `--fastopen` and early pipelining on `wire` (`--plain`, `--starttls smtp`,
/// or none: TLS-on-connect), for two connections; `--json` with `json`.
fn server(wire: &[&str], json: bool) -> Server {
    let mut args = vec![
        "--pipe-connect",
        "--fastopen",
        "--pre-banner-wait",
        "500",
        "--max-connections",
        "2",
    ];
    args.extend_from_slice(wire);
    Server::start_with(&args, json)
}

/// Two connections of `probe --fastopen --pipe-connect` with a test message on `wire`.
fn probe(addr: &str, wire: &[&str]) -> Run {
    let mut args = vec![
        "probe",
        addr,
        "--fastopen",
        "--pipe-connect",
        "--count",
        "2",
    ];
    args.extend_from_slice(&TEST_MESSAGE);
    args.extend_from_slice(wire);
    let r = run(&args);
    assert_eq!(r.code, Some(0), "{r:?}");
    r
}

/// What one run showed.
struct FastRun {
    /// The probe's lines.
    probe: Vec<String>,
    /// The server's two lines.
    served: [String; 2],
    /// The SYNs' payloads.
    syns: Vec<Vec<u8>>,
}

/// One run at the sysctl's 3; `None` when skipped.
fn fast_run(wire: &[&str]) -> Option<FastRun> {
    fast_run_with(wire, &[])
}

/// [`fast_run`] with `extra` arguments for the server only.
fn fast_run_with(wire: &[&str], extra: &[&str]) -> Option<FastRun> {
    let _kernel = kernel_at(3)?;
    let srv = server(&[wire, extra].concat(), false);
    let capture = Capture::start(port(&srv.addr))?;
    let r = probe(&srv.addr, wire);
    let lines = [srv.line(), srv.line()];
    assert_eq!(srv.wait_exit(), Some(0));
    let syns = capture.payloads();
    Some(FastRun {
        probe: r.stdout.lines().map(str::to_owned).collect(),
        served: lines,
        syns,
    })
}

/// The second connection's SYN carried `starts`, and the probe and the server both say so;
/// the first's carried nothing (SMTP: the client waits for the banner) unless `first_too`
/// (TLS-on-connect: its ClientHello goes in the SYN when a cookie for 127.0.0.1 is left
/// from an earlier connection, and after the handshake when not).
fn assert_second_syn_carried(
    FastRun {
        probe,
        served,
        syns,
    }: &FastRun,
    starts: &[u8],
    first_too: bool,
) {
    assert_eq!(syns.len(), 2, "two SYNs to the server: {syns:?}");
    assert!(
        syns[1].starts_with(starts),
        "the second SYN's payload: {:?}",
        String::from_utf8_lossy(&syns[1])
    );
    assert!(probe[1].contains(" fastopen=syn-data"), "{probe:?}");
    assert!(served[1].contains(" TFO* "), "{served:?}");
    let first_carried = !syns[0].is_empty();
    assert!(
        !first_carried || first_too,
        "the first SYN had nothing to carry"
    );
    if first_carried {
        assert!(syns[0].starts_with(starts), "{syns:?}");
        assert!(probe[0].contains(" fastopen=syn-data"), "{probe:?}");
        assert!(served[0].contains(" TFO* "), "{served:?}");
    } else {
        assert!(
            probe[0].contains(" fastopen=no-cookie") || probe[0].contains(" fastopen=no-data"),
            "{probe:?}"
        );
        assert!(probe[2].contains("data in the SYN on 1"), "{probe:?}");
        assert!(!served[0].contains("TFO*"), "{served:?}");
    }
    for line in served {
        assert!(line.contains("messages=1"), "delivered: {served:?}");
    }
}

#[test]
fn clear_smtp_first_flight_goes_in_the_syn() {
    let Some(run) = fast_run(&["--plain"]) else {
        return;
    };
    assert_second_syn_carried(
        &run,
        b"EHLO probe.tlsresume.test\r\nMAIL FROM:<a@example.test>",
        false,
    );
    assert!(
        run.probe[1].contains(" L* early=EHLO,MAIL,RCPT,BDAT"),
        "{:?}",
        run.probe
    );
    assert!(run.served[1].contains(" L* "), "{:?}", run.served);
}

#[test]
fn ehlo_and_starttls_go_in_the_syn() {
    ehlo_and_starttls_in_the_syn(&[]);
}

#[test]
fn on_tokio_ehlo_and_starttls_go_in_the_syn() {
    ehlo_and_starttls_in_the_syn(&["--async"]);
}

/// STARTTLS with `extra` arguments for the server.
fn ehlo_and_starttls_in_the_syn(extra: &[&str]) {
    let Some(run) = fast_run_with(&["--starttls", "smtp"], extra) else {
        return;
    };
    assert_second_syn_carried(&run, b"EHLO probe.tlsresume.test\r\nSTARTTLS\r\n", false);
    assert!(
        run.probe[1].contains("(session resumed)"),
        "{:?}",
        run.probe
    );
}

#[test]
fn the_client_hello_goes_in_the_syn_for_tls_on_connect() {
    let Some(run) = fast_run(&[]) else { return };
    // A TLS handshake record: content type 22, version 3.x, then a ClientHello (type 1).
    assert_second_syn_carried(&run, &[0x16, 0x03], true);
    assert_eq!(run.syns[1].get(5), Some(&1), "a ClientHello");
}

#[test]
fn with_the_sysctl_at_zero_the_message_goes_without_fast_open_and_says_why() {
    let Some(_kernel) = kernel_at(0) else { return };
    let srv = server(&["--plain"], false);
    let Some(capture) = Capture::start(port(&srv.addr)) else {
        return;
    };
    let r = probe(&srv.addr, &["--plain"]);
    let served = [srv.line(), srv.line()];
    assert_eq!(srv.wait_exit(), Some(0));
    let syns = capture.payloads();
    assert_eq!(syns.len(), 2, "{syns:?}");
    assert!(syns.iter().all(Vec::is_empty), "no data in any SYN");
    let lines: Vec<&str> = r.stdout.lines().collect();
    for line in &lines[..2] {
        assert!(
            line.contains(" fastopen=refused (net.ipv4.tcp_fastopen is 0, which allows no Fast Open for clients or servers"),
            "{r:?}"
        );
    }
    assert!(lines[1].contains(" L* early=EHLO,MAIL,RCPT,BDAT"), "{r:?}");
    assert!(lines[2].contains("data in the SYN on 0"), "{r:?}");
    assert!(
        r.stderr.contains("--fastopen: net.ipv4.tcp_fastopen is 0"),
        "the probe says it once: {r:?}"
    );
    for line in &served {
        assert!(
            line.contains("messages=1") && !line.contains("TFO"),
            "{served:?}"
        );
    }
}

#[test]
fn json_says_what_became_of_fast_open() {
    let Some(_kernel) = kernel_at(3) else { return };
    let srv = server(&["--plain"], true);
    let r = probe(&srv.addr, &["--plain", "--json"]);
    let objects: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(objects[1]["fastopen"], "syn-data", "{r:?}");
    assert!(
        objects[1]["fastopen_syn_bytes"].as_u64() > Some(20),
        "{r:?}"
    );
    assert!(objects[1]["fastopen_why"].is_null(), "{r:?}");
    assert!(objects[1]["time_to_reply_ms"].as_f64() > Some(0.0), "{r:?}");
    assert_eq!(objects[2]["summary"]["fastopen_syn_data"], 1, "{r:?}");
    let served: serde_json::Value = serde_json::from_str(&srv.line()).expect("JSON");
    assert_ne!(served["fastopen"], "syn-data");
    let served: serde_json::Value = serde_json::from_str(&srv.line()).expect("JSON");
    assert_eq!(served["fastopen"], "syn-data", "{served}");
}
