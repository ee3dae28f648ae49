//! Integration tests of the `tlsresume` binary: every subcommand run as a real process, `serve`
//! probed by `probe` over loopback with each backend. Every child is bounded in time and
//! killed when its test ends.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

#[cfg(feature = "stores")]
use tlsresume_compare::redis::{free_port, RedisServer};

mod common;

#[cfg(feature = "stores")]
use common::kek_file;
use common::{assert_one_line_error, pki, run, tls_client, Run, Server, BIN};

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsresume-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn decode_prints_exim_text() {
    let r = run(&["decode", "0x1d"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("session resumed"), "{r:?}");
}

#[test]
fn decode_rejects_bad_values_with_one_line() {
    for bad in ["32", "abc"] {
        assert_one_line_error(&run(&["decode", bad]), bad);
    }
}

#[test]
fn compare_async_reports_what_the_blocking_api_reports() {
    // Every pair, through the async API (and mixed with the blocking one): the same JSON.
    let args = [
        "compare",
        "--tls",
        "1.2",
        "--transport",
        "starttls",
        "--policy",
        "exim",
        "--scenario",
        "getticket,resume,renewal,timeout",
        "--json",
    ];
    let blocking = run(&args);
    assert_eq!(blocking.code, Some(0), "{blocking:?}");
    let mut with_async = args.to_vec();
    with_async.push("--async");
    let asynchronous = run(&with_async);
    assert_eq!(asynchronous.code, Some(0), "{asynchronous:?}");
    assert!(asynchronous.stdout.contains("\"resumed\":true"));
    assert_eq!(blocking.stdout, asynchronous.stdout);
}

#[test]
fn compare_json_reports_a_resumed_session() {
    let r = run(&[
        "compare",
        "--server",
        "rustls",
        "--client",
        "rustls",
        "--tls",
        "1.3",
        "--transport",
        "starttls",
        "--scenario",
        "getticket,resume",
        "--json",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("\"scenario\":\"resume\""), "{r:?}");
    assert!(r.stdout.contains("\"resumed\":true"), "{r:?}");
}

#[test]
fn serve_and_probe_help_say_their_policy_default_and_the_library_default() {
    for command in ["serve", "probe", "scan"] {
        let r = run(&[command, "--help"]);
        assert_eq!(r.code, Some(0), "{command}: {r:?}");
        let text = r.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        for said in [
            "Default here: exim, since this command is Exim's test bench",
            "the library's default (ResumptionPolicy::default()) is hardened",
            "[default: exim]",
        ] {
            assert!(
                text.contains(said),
                "{command} --help lacks {said:?}: {text}"
            );
        }
    }
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        &["--help"][..],
        &["compare", "--help"],
        &["decode", "--help"],
        &["serve", "--help"],
        &["probe", "--help"],
        &["scan", "--help"],
    ] {
        let r = run(args);
        assert_eq!(r.code, Some(0), "{args:?}: {r:?}");
        assert!(r.stdout.contains("Usage:"), "{args:?}: {r:?}");
    }
    let serve = run(&["serve", "--help"]).stdout;
    for option in [
        "--backend",
        "--listen",
        "--cert",
        "--key",
        "--ocsp",
        "--tls-on-connect",
        "--starttls",
        "--resumption-hosts",
        "--policy",
        "--max-connections",
        "--http",
        "--json",
        "--plain",
        "--pipe-connect",
        "--pipe-connect-hosts",
        "--pre-banner-wait",
        "--fastopen",
        "--fastopen-queue",
        "--handshake-timeout",
        "--max-per-address",
    ] {
        assert!(serve.contains(option), "serve --help lacks {option}");
    }
    let probe = run(&["probe", "--help"]).stdout;
    for option in [
        "--backend",
        "--starttls",
        "--count",
        "--sni",
        "--ca",
        "--insecure",
        "--cache",
        "--json",
        "--resumption-hosts",
        "--advance",
        "--plain",
        "--pipe-connect",
        "--mail-from",
        "--rcpt-to",
        "--no-chunking",
        "--fastopen",
        "--deadline",
    ] {
        assert!(probe.contains(option), "probe --help lacks {option}");
    }
    let compare = run(&["compare", "--help"]).stdout;
    assert!(
        compare.contains("--detail"),
        "compare --help lacks --detail"
    );
    // --http speaks HTTP from the first byte: not with --starttls.
    let r = run(&["serve", "--http", "--starttls", "smtp"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("--http"), "{r:?}");
}

#[test]
fn bad_arguments_give_one_clear_line() {
    let listen = ["--listen", "127.0.0.1:0", "--max-connections", "1"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["serve"];
        v.extend_from_slice(&listen);
        v.extend_from_slice(extra);
        v
    };
    assert_one_line_error(&run(&with(&["--backend", "nosuch"])), "nosuch");
    assert_one_line_error(&run(&with(&["--cert", "/nonexistent"])), "/nonexistent");
    assert_one_line_error(
        &run(&with(&["--resumption-hosts", "192.0.2.0/99"])),
        "192.0.2.0/99",
    );
    assert_one_line_error(&run(&with(&["--policy", "lax"])), "lax");
    assert_one_line_error(
        &run(&with(&["--ocsp", "/nonexistent.der"])),
        "/nonexistent.der",
    );
    assert_one_line_error(
        &run(&["probe", "127.0.0.1:9", "--backend", "nosuch"]),
        "nosuch",
    );
    assert_one_line_error(
        &run(&["probe", "127.0.0.1:9", "--ca", "/nonexistent.pem"]),
        "/nonexistent.pem",
    );
    assert_one_line_error(&run(&["probe", "no-port-here"]), "no-port-here");
    // Early pipelining and the test message.
    assert_one_line_error(
        &run(&with(&["--pipe-connect-hosts", "127.0.0.1"])),
        "--pipe-connect-hosts goes with --pipe-connect",
    );
    assert_one_line_error(
        &run(&with(&[
            "--pipe-connect",
            "--pipe-connect-hosts",
            "10.0.0.0/33",
        ])),
        "10.0.0.0/33",
    );
    assert_one_line_error(
        &run(&["probe", "127.0.0.1:9", "--pipe-connect"]),
        "--mail-from",
    );
    assert_one_line_error(&run(&["probe", "127.0.0.1:9", "--plain"]), "--mail-from");
    assert_one_line_error(
        &run(&["probe", "127.0.0.1:9", "--mail-from", "a@example.test"]),
        "--rcpt-to",
    );
    assert_one_line_error(
        &run(&["probe", "127.0.0.1:9", "--rcpt-to", "b@example.test"]),
        "--mail-from",
    );
    assert_one_line_error(
        &run(&[
            "probe",
            "127.0.0.1:9",
            "--mail-from",
            "a@example.test>\r\nRSET",
            "--rcpt-to",
            "b@example.test",
        ]),
        "--mail-from",
    );
}

/// `serve` with `server` probed twice by `probe` with `client`: the second connection resumes,
/// on both ends.
fn serve_and_probe(server: &str, client: &str, starttls: bool) {
    serve_and_probe_with(server, client, starttls, &[]);
}

/// [`serve_and_probe`] with `extra` arguments for `serve`.
fn serve_and_probe_with(server: &str, client: &str, starttls: bool, extra: &[&str]) {
    let mut serve_args = vec!["--backend", server, "--max-connections", "2"];
    serve_args.extend_from_slice(extra);
    let mut probe_args = vec!["--backend", client];
    if starttls {
        serve_args.extend(["--starttls", "smtp"]);
        probe_args.extend(["--starttls", "smtp"]);
    }
    let srv = Server::start(&serve_args);
    let mut args = vec!["probe", srv.addr.as_str()];
    args.extend(probe_args);
    let r = run(&args);
    let case = format!("server {server} {extra:?}, client {client}, starttls {starttls}");
    assert_eq!(r.code, Some(0), "{case}: {r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines.len() >= 3, "{case}: {r:?}");
    assert!(
        lines[0].contains(" X=TLS1.") && !lines[0].contains('*'),
        "{case}: {r:?}"
    );
    assert!(lines[0].contains("CV=yes"), "{case}: {r:?}");
    assert!(
        lines[1].contains("* CV=") && lines[1].contains("resumption=0x1"),
        "{case}: {r:?}"
    );
    assert!(lines[1].contains("(session resumed"), "{case}: {r:?}");
    assert!(
        lines[2].starts_with("summary: 2 connections") && lines[2].contains(": 1 resumed"),
        "{case}: {r:?}"
    );
    assert!(lines[2].contains("ticket lifetime hint: "), "{case}: {r:?}");
    assert!(
        r.stdout
            .contains("connection 1 not resumed: no stored session"),
        "{case}: {r:?}"
    );
    let first = srv.line();
    let second = srv.line();
    assert!(
        first.starts_with("H=[127.0.0.1]:") && first.contains(" X=") && !first.contains('*'),
        "{case}: {first}"
    );
    assert!(
        second.starts_with("H=[127.0.0.1]:")
            && second.contains("* CV=no resumption=0x1")
            && second.contains("session resumed"),
        "{case}: {second}"
    );
    assert_eq!(srv.wait_exit(), Some(0), "{case}");
}

#[test]
fn openssl_probe_resumes_with_rustls_server_on_connect() {
    serve_and_probe("rustls", "openssl", false);
}

#[test]
fn gnutls_probe_resumes_with_openssl_server_starttls() {
    serve_and_probe("openssl", "gnutls", true);
}

#[test]
fn rustls_probe_resumes_with_openssl_server_on_connect() {
    serve_and_probe("openssl", "rustls", false);
}

#[test]
fn rustls_probe_resumes_with_gnutls_server_starttls() {
    serve_and_probe("gnutls", "rustls", true);
}

#[test]
fn openssl_probe_resumes_with_gnutls_server_on_connect() {
    serve_and_probe("gnutls", "openssl", false);
}

#[test]
fn excluded_client_gets_no_ticket_and_probe_says_why() {
    let srv = Server::start(&[
        "--backend",
        "openssl",
        "--max-connections",
        "2",
        "--resumption-hosts",
        "!127.0.0.1",
    ]);
    let r = run(&["probe", &srv.addr, "--backend", "rustls"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains(": 0 resumed, 2 full"), "{r:?}");
    assert!(
        r.stdout.contains(
            "connection 2 not resumed: no stored session: no ticket was issued on connection 1"
        ),
        "{r:?}"
    );
    for _ in 0..2 {
        let line = srv.line();
        assert!(
            !line.contains('*') && line.contains("resumption=0x"),
            "{line}"
        );
    }
}

#[test]
fn cache_file_carries_sessions_between_runs() {
    let dir = scratch("cache");
    let cache = dir.join("sessions");
    let cache_arg = cache.display().to_string();
    let srv = Server::start(&["--backend", "openssl", "--max-connections", "2"]);
    for (run_no, resumed) in [(1, false), (2, true)] {
        let r = run(&[
            "probe",
            &srv.addr,
            "--backend",
            "openssl",
            "--count",
            "1",
            "--cache",
            &cache_arg,
        ]);
        assert_eq!(r.code, Some(0), "run {run_no}: {r:?}");
        let first = r.stdout.lines().next().unwrap_or_default();
        assert_eq!(first.contains("* CV="), resumed, "run {run_no}: {r:?}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache)
            .expect("cache file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The key that authenticates the sessions in the file, beside it, private too.
        let key = dir.join("sessions.key");
        assert_eq!(std::fs::read(&key).expect("session key").len(), 32);
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(srv.line().contains("resumption=0x"));
    assert!(srv.line().contains('*'));
    // A damaged key file is a one-line error naming it, never a silent new key.
    let key_path = dir.join("sessions.key");
    let good_key = std::fs::read(&key_path).expect("key");
    std::fs::write(&key_path, b"short").expect("damage the key");
    let key_arg = key_path.display().to_string();
    assert_one_line_error(
        &run(&["probe", "127.0.0.1:9", "--cache", &cache_arg]),
        &key_arg,
    );
    std::fs::write(&key_path, good_key).expect("restore the key");
    std::fs::write(&cache, b"not a cache").expect("corrupt the cache");
    let r = run(&["probe", "127.0.0.1:9", "--cache", &cache_arg]);
    assert_one_line_error(&r, &cache_arg);
    assert_eq!(
        std::fs::read(&cache).expect("cache file"),
        b"not a cache",
        "a corrupt cache is not overwritten"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn untrusted_certificate_fails_unless_insecure() {
    let cert = pki("untrusted.pem");
    let key = pki("untrusted.key");
    let srv = Server::start(&[
        "--backend",
        "rustls",
        "--cert",
        &cert,
        "--key",
        &key,
        "--max-connections",
        "2",
    ]);
    let r = run(&["probe", &srv.addr, "--backend", "openssl", "--count", "1"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stdout.contains("failed: TLS error"), "{r:?}");
    assert!(r.stdout.contains("1 failed"), "{r:?}");
    let line = srv.line();
    assert!(line.contains("TLS error"), "{line}");
    // The server goes on after a failed handshake.
    let r = run(&[
        "probe",
        &srv.addr,
        "--backend",
        "openssl",
        "--count",
        "1",
        "--insecure",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("CV=no"), "{r:?}");
    assert!(srv.line().contains(" X=TLS1."));
    assert_eq!(srv.wait_exit(), Some(0));
}

/// `probe --dane`: the server is verified by DANE (RFC 7672) against the records given, the
/// line says which record matched; a record that matches nothing fails the handshake and a
/// malformed one is a one-line error.
#[test]
fn probe_verifies_by_dane_with_the_records_given() {
    let roots = tlsresume::certificates_from_pem_file(Path::new(&pki("server-ecdsa.pem")))
        .expect("server certificate");
    let leaf = roots.first().expect("one certificate");
    let good = tlsresume_compare::tlsa_record(3, 1, 1, leaf)
        .expect("record")
        .to_string();
    let mut other = tlsresume_compare::tlsa_record(3, 1, 1, leaf).expect("record");
    other.data[0] ^= 0xff;
    let other = other.to_string();
    let srv = Server::start(&["--backend", "rustls", "--max-connections", "3"]);
    // Trust anchors that do not cover the server: only DANE can authenticate it.
    let untrusted = pki("untrusted.pem");
    let r = run(&[
        "probe",
        &srv.addr,
        "--backend",
        "openssl",
        "--ca",
        &untrusted,
        "--policy",
        "hardened",
        "--dane",
        "1 1 1 00",
        "--dane",
        &good,
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("H=")).collect();
    assert_eq!(lines.len(), 2, "{r:?}");
    let short = &good[..6 + 16];
    for line in &lines {
        assert!(line.contains(&format!("DANE=yes (TLSA {short}")), "{line}");
        assert!(line.contains(" CV=dane "), "{line}");
    }
    assert!(lines[1].contains("(session resumed"), "{r:?}");
    let r = run(&[
        "probe",
        &srv.addr,
        "--backend",
        "gnutls",
        "--count",
        "1",
        "--dane",
        &other,
    ]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stdout.contains("no TLSA record matched"), "{r:?}");
    assert_eq!(srv.wait_exit(), Some(0));
    let r = run(&["probe", "127.0.0.1:9", "--dane", "3 1 x 00"]);
    assert_one_line_error(&r, "--dane '3 1 x 00': TLSA matching type");
}

#[test]
fn stapled_ocsp_is_reported_to_the_probe() {
    let ocsp = pki("server-ecdsa.ocsp.der");
    let srv = Server::start(&[
        "--backend",
        "openssl",
        "--ocsp",
        &ocsp,
        "--max-connections",
        "1",
    ]);
    let r = run(&[
        "probe",
        &srv.addr,
        "--backend",
        "gnutls",
        "--count",
        "1",
        "--ocsp",
        "require",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("OCSP=4"), "{r:?}");
    assert!(srv.line().contains(" X=TLS1."));
}

/// Starts `serve --listen ADDR` with `args` on the address `listen` holds, or, when it holds
/// none, on a free port (another one when that was taken first) which `listen` then keeps: a
/// fixed address, so a restarted node keeps its port, which the probe's session cache key
/// includes.
#[cfg(feature = "stores")]
fn start_node(listen: &mut Option<String>, args: &[&str]) -> Server {
    let args = [&["--timeout", "30"], args].concat();
    let Some(addr) = listen.as_deref() else {
        let server = Server::start_on_free_port(&args);
        *listen = Some(server.addr.clone());
        return server;
    };
    let mut server = Server::spawn(&[&["--listen", addr], args.as_slice()].concat());
    server.addr = addr.to_owned();
    assert_eq!(server.line(), format!("listening on {addr}"));
    server
}

/// One node of a fleet (`server` backend) restarted on the same port, sharing ticket keys
/// through Redis: the ticket `probe` (`client` backend, on-disk cache) got before the restart
/// resumes after it. A node with keys of its own (no `--ticket-keys`) then refuses it.
#[cfg(feature = "stores")]
fn restarted_node_resumes_with_fleet_keys(server: &str, client: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let dir = scratch(&format!("fleet-{server}-{client}"));
    let kek = kek_file(&dir, "kek", 0o600);
    let cache = dir.join("sessions").display().to_string();
    let url = redis.url();
    let mut listen = None;
    let fleet = [
        "--backend",
        server,
        "--max-connections",
        "1",
        "--ticket-keys",
        &url,
        "--kek-file",
        &kek,
    ];
    let probe = |srv: &Server| {
        run(&[
            "probe",
            &srv.addr,
            "--backend",
            client,
            "--count",
            "1",
            "--cache",
            &cache,
        ])
    };
    let case = format!("server {server}, client {client}");

    // Node A: a full handshake, a ticket sealed under the fleet's key; then A exits.
    let a = start_node(&mut listen, &fleet);
    let r = probe(&a);
    assert_eq!(r.code, Some(0), "{case}, node A: {r:?}");
    assert!(
        r.stdout.contains(": 0 resumed, 1 full"),
        "{case}, node A: {r:?}"
    );
    let line = a.line();
    assert!(
        line.contains(" X=TLS1.") && !line.contains('*'),
        "{case}: {line}"
    );
    assert_eq!(a.wait_exit(), Some(0), "{case}");

    // Node B, a new process on the same address: it knows the key only through Redis.
    let b = start_node(&mut listen, &fleet);
    let r = probe(&b);
    assert_eq!(r.code, Some(0), "{case}, node B: {r:?}");
    let first = r.stdout.lines().next().unwrap_or_default();
    assert!(
        first.contains("* CV=") && first.contains("(session resumed"),
        "{case}, node B: {r:?}"
    );
    assert!(
        r.stdout.contains(": 1 resumed, 0 full"),
        "{case}, node B: {r:?}"
    );
    let line = b.line();
    assert!(
        line.contains("* CV=no resumption=0x1") && line.contains("session resumed"),
        "{case}, node B: {line}"
    );
    assert_eq!(b.wait_exit(), Some(0), "{case}");

    // Control: a node with process-local keys cannot open the fleet's tickets.
    let c = start_node(
        &mut listen,
        &["--backend", server, "--max-connections", "1"],
    );
    let r = probe(&c);
    assert_eq!(r.code, Some(0), "{case}, node C: {r:?}");
    assert!(
        r.stdout.contains(": 0 resumed, 1 full"),
        "{case}, node C: {r:?}"
    );
    assert!(
        r.stdout.contains("the server refused the offered session"),
        "{case}, node C: {r:?}"
    );
    assert!(!c.line().contains('*'), "{case}");
    assert_eq!(c.wait_exit(), Some(0), "{case}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "stores")]
#[test]
fn openssl_node_restart_resumes_through_redis_ticket_keys() {
    restarted_node_resumes_with_fleet_keys("openssl", "openssl");
}

#[cfg(feature = "stores")]
#[test]
fn gnutls_node_restart_resumes_through_redis_ticket_keys() {
    restarted_node_resumes_with_fleet_keys("gnutls", "gnutls");
}

#[cfg(feature = "stores")]
#[test]
fn rustls_node_restart_resumes_through_redis_ticket_keys() {
    restarted_node_resumes_with_fleet_keys("rustls", "openssl");
}

#[cfg(feature = "stores")]
#[test]
fn ticket_keys_bad_arguments_give_one_clear_line() {
    let dir = scratch("ticket-keys-args");
    let private = kek_file(&dir, "kek", 0o600);
    let open = kek_file(&dir, "kek-open", 0o644);
    let missing = dir.join("no-kek").display().to_string();
    let serve = |extra: &[&str]| {
        let mut v = vec!["serve", "--listen", "127.0.0.1:0", "--max-connections", "1"];
        v.extend_from_slice(extra);
        run(&v)
    };
    // Nothing here reaches Redis: port 9 (discard) is never contacted.
    let url = "redis://127.0.0.1:9";
    assert_one_line_error(
        &serve(&[
            "--ticket-keys",
            "http://127.0.0.1:9",
            "--kek-file",
            &private,
        ]),
        "--ticket-keys http://127.0.0.1:9",
    );
    assert_one_line_error(
        &serve(&["--ticket-keys", "not a url", "--kek-file", &private]),
        "--ticket-keys not a url",
    );
    let r = serve(&["--ticket-keys", url, "--kek-file", &open]);
    assert_one_line_error(&r, &open);
    assert!(r.stderr.contains("chmod 600"), "{r:?}");
    assert_one_line_error(
        &serve(&["--ticket-keys", url, "--kek-file", &missing]),
        &missing,
    );
    assert_one_line_error(
        &serve(&[
            "--ticket-keys",
            url,
            "--kek-env",
            "TLSRESUME_TEST_NO_SUCH_VAR",
        ]),
        "TLSRESUME_TEST_NO_SUCH_VAR",
    );
    assert_one_line_error(&serve(&["--ticket-keys", url]), "--kek-file");
    assert_one_line_error(&serve(&["--kek-file", &private]), "--ticket-keys");
    assert_one_line_error(
        &serve(&[
            "--ticket-keys",
            "redis://:s3cret@127.0.0.1:9",
            "--kek-file",
            &open,
        ]),
        &open,
    );
    let r = serve(&[
        "--ticket-keys",
        "redis://:s3cret@127.0.0.1:9/x",
        "--kek-file",
        &private,
    ]);
    assert_one_line_error(&r, "--ticket-keys");
    assert!(
        !r.stderr.contains("s3cret"),
        "the password is not shown: {r:?}"
    );
    let help = run(&["serve", "--help"]).stdout;
    for option in [
        "--ticket-keys",
        "--kek-file",
        "--kek-env",
        "--ticket-keys-ca",
    ] {
        assert!(help.contains(option), "serve --help lacks {option}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--ticket-keys rediss://` with `--ticket-keys-ca`, in a build with the
/// `tlsresume-stores/redis-tls` feature (`cargo test -p tlsresume --features
/// tlsresume-stores/redis-tls`); other builds must refuse rediss:// with one line naming the
/// feature, and the test stops there.
#[cfg(feature = "stores")]
#[test]
fn rediss_ticket_keys_with_a_private_ca() {
    let dir = scratch("rediss");
    let kek = kek_file(&dir, "kek", 0o600);
    let ca = pki("ca.pem");
    let check = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--max-connections",
        "0",
        "--ticket-keys",
        "rediss://127.0.0.1:9",
        "--ticket-keys-ca",
        &ca,
        "--kek-file",
        &kek,
    ]);
    if check.code == Some(2) {
        assert_one_line_error(&check, "redis-tls");
        eprintln!("skipping: this build has no rediss:// (feature tlsresume-stores/redis-tls)");
        return;
    }
    assert_eq!(check.code, Some(0), "{check:?}");
    let Some(redis) = RedisServer::start_tls() else {
        return;
    };
    let url = redis.url();
    let cache = dir.join("sessions").display().to_string();
    let mut listen = None;
    let fleet = [
        "--backend",
        "openssl",
        "--max-connections",
        "1",
        "--ticket-keys",
        &url,
        "--ticket-keys-ca",
        &ca,
        "--kek-file",
        &kek,
    ];
    for (node, resumed) in [("A", false), ("B", true)] {
        let srv = start_node(&mut listen, &fleet);
        let r = run(&[
            "probe",
            &srv.addr,
            "--backend",
            "openssl",
            "--count",
            "1",
            "--cache",
            &cache,
        ]);
        assert_eq!(r.code, Some(0), "node {node}: {r:?}");
        let first = r.stdout.lines().next().unwrap_or_default();
        assert_eq!(first.contains("* CV="), resumed, "node {node}: {r:?}");
        assert_eq!(srv.line().contains('*'), resumed, "node {node}");
        assert_eq!(srv.wait_exit(), Some(0), "node {node}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether `tool` can be run; when it cannot, fails under `CI` and otherwise says the test is
/// skipped (never a silent pass).
fn have_tool(tool: &str, args: &[&str], package: &str) -> bool {
    let ok = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is needed under CI (Debian package {package})"
        );
        eprintln!("skipping: {tool} is not installed (Debian: apt-get install -y {package})");
    }
    ok
}

/// The summary's cell for a JSON result, derived from the JSON fields alone.
fn json_cell(r: &serde_json::Value) -> String {
    if !r["error"].is_null() {
        return "✗".into();
    }
    format!(
        "{} {:02X}/{:02X}",
        if r["resumed"].as_bool().expect("resumed") {
            "R"
        } else {
            "F"
        },
        r["server_flags"].as_u64().expect("server_flags"),
        r["client_flags"].as_u64().expect("client_flags")
    )
}

#[test]
fn compare_summary_fits_a_terminal_and_names_every_difference() {
    let r = run(&["compare"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines.len() < 80, "{} lines:\n{}", lines.len(), r.stdout);
    for l in &lines {
        assert!(l.chars().count() <= 120, "too wide: {l}");
    }
    assert!(!r.stdout.contains('\x1b'), "colour on a pipe: {}", r.stdout);
    assert!(!r.stdout.contains("not explained"), "{}", r.stdout);
    // Independently of the summary, find the rows where the backend pairs disagree.
    let json = run(&["compare", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("compare --json parses");
    let results = v["results"].as_array().expect("results");
    let mut rows: std::collections::BTreeMap<(String, String, String, String), Vec<String>> =
        Default::default();
    for res in results {
        let key = ["tls", "policy", "transport", "scenario"]
            .map(|k| res[k].as_str().expect(k).to_owned());
        rows.entry(key.into()).or_default().push(json_cell(res));
    }
    let grids: Vec<&str> = r.stdout.split("\nTLS ").skip(1).collect();
    assert_eq!(grids.len(), 2, "{}", r.stdout);
    let why = r.stdout.split("Why they differ").nth(1).expect("reasons");
    // A row's label names its scenario, or (`clientcert_*`, `clientcert_*_resume`) the
    // client-certificate scenarios folded into one row where their cells agree.
    let names = |label: &str, scenario: &str| match label.split_once('*') {
        None => label == scenario,
        Some((head, tail)) => {
            scenario.len() > head.len() + tail.len()
                && scenario.starts_with(head)
                && scenario.ends_with(tail)
                && scenario[head.len()..scenario.len() - tail.len()]
                    .chars()
                    .all(|c| c.is_ascii_lowercase())
        }
    };
    for ((tls, policy, transport, scenario), cells) in &rows {
        let mut distinct = cells.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() < 2 {
            continue;
        }
        let grid = grids
            .iter()
            .find(|g| g.starts_with(tls.as_str()))
            .expect("grid");
        // The summary row for this scenario (and this policy or transport, when split).
        let marked = grid.lines().any(|l| {
            let label = l.split('│').next().unwrap_or("");
            let mut words = label.split_whitespace();
            words.next().is_some_and(|w| names(w, scenario))
                && words.all(|w| w == policy || w == transport)
                && l.split('│').skip(1).any(|group| {
                    // Cells are 9 columns each, after one space.
                    let chars: Vec<char> = group.chars().skip(1).collect();
                    chars.chunks(9).any(|cell| {
                        let cell: String = cell.iter().collect();
                        let cell = cell.trim();
                        let last = cell.chars().last().unwrap_or(' ');
                        cell.len() > 2 && last.is_ascii_lowercase() && {
                            let letter = format!("  {last}  ");
                            why.contains(&letter)
                        }
                    })
                })
        });
        assert!(
            marked,
            "TLS {tls} {policy} {transport} {scenario}: pairs differ ({distinct:?}) but no marked cell\n{}",
            r.stdout
        );
    }
    assert!(why.contains("docs/differences.md"));
}

#[test]
fn compare_detail_lists_every_connection_after_the_summary() {
    let args = [
        "compare",
        "--server",
        "openssl",
        "--client",
        "gnutls",
        "--tls",
        "1.2",
        "--policy",
        "exim",
        "--transport",
        "starttls",
    ];
    let short = run(&args);
    let mut with = args.to_vec();
    with.push("--detail");
    let long = run(&with);
    assert_eq!(long.code, Some(0), "{long:?}");
    assert!(long.stdout.starts_with(&short.stdout), "{long:?}");
    let listing = &long.stdout[short.stdout.len()..];
    for sc in ["getticket", "resume", "timeout", "ocsp_resume"] {
        assert!(
            listing.lines().any(|l| l.trim_start().starts_with(sc)),
            "{sc} missing: {listing}"
        );
    }
    assert!(listing.contains("X=TLS1.2:"), "{listing}");
    assert_one_line_error_like(&run(&["compare", "--detail", "--json"]), "--detail");
}

/// A clap usage error: exit 2, mentions `what`.
fn assert_one_line_error_like(run: &Run, what: &str) {
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains(what), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[test]
fn compare_markdown_is_the_committed_matrix() {
    let r = run(&["compare", "--markdown"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/behaviour-matrix.md"),
    )
    .expect("docs/behaviour-matrix.md");
    assert!(
        r.stdout == committed,
        "compare --markdown differs from docs/behaviour-matrix.md"
    );
}

#[test]
fn compare_colours_only_on_a_terminal_and_honours_no_color() {
    // `script` (util-linux) gives the command a terminal.
    if !have_tool("script", &["--version"], "bsdutils") {
        return;
    }
    let cmd = format!(
        "{BIN} compare --server rustls --client rustls --tls 1.3 --scenario getticket,resume"
    );
    let tty = |no_color: Option<&str>| {
        let mut c = Command::new("script");
        c.args(["-qec", &cmd, "/dev/null"]).stdin(Stdio::null());
        c.env_remove("NO_COLOR");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let out = c.output().expect("script");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = tty(None);
    assert!(coloured.contains("\x1b[32mR 1F/1F"), "{coloured}");
    let plain = tty(Some("1"));
    assert!(
        plain.contains("R 1F/1F") && !plain.contains("\x1b["),
        "{plain}"
    );
}

#[test]
fn decode_takes_hex_decimal_and_whole_log_lines() {
    let hex = run(&["decode", "0x1d"]);
    let dec = run(&["decode", "29"]);
    assert_eq!(hex.code, Some(0), "{hex:?}");
    assert_eq!(hex.stdout, dec.stdout);
    assert!(hex.stdout.starts_with("0x1D session resumed\n"), "{hex:?}");
    assert!(hex.stdout.contains("USED"), "{hex:?}");
    // An Exim delivery line, in the format of Exim's main log with +tls_resumption.
    let exim = "2024-05-01 10:00:00 1sABCD-000123-00 => a@example.net R=dnslookup T=remote_smtp \
                H=mx.example.net [192.0.2.1] X=TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256* CV=no \
                DN=\"/CN=mx.example.net\" C=\"250 OK id=1sABCE-000456-00\"";
    let r = run(&["decode", exim]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("client side"), "{r:?}");
    assert!(
        r.stdout
            .contains("TLS 1.2 ECDHE-RSA-AES256-GCM-SHA384, 256 bits"),
        "{r:?}"
    );
    assert!(r.stdout.contains("session was resumed"), "{r:?}");
    assert!(r.stdout.contains("CV=no"), "{r:?}");
    // The same line as separate words, and a received line without '*'.
    let words: Vec<&str> = exim.split(' ').collect();
    let mut args = vec!["decode"];
    args.extend(&words);
    assert_eq!(run(&args).stdout, r.stdout);
    let full = run(&[
        "decode",
        "1sABCD-000123-00 <= a@b.example H=(c) [192.0.2.9] P=esmtps X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no S=1",
    ]);
    assert!(full.stdout.contains("server side"), "{full:?}");
    assert!(full.stdout.contains("full handshake"), "{full:?}");
    // Exim's test-suite form: the variable's name and its words.
    let r = run(&[
        "decode",
        "1999-03-02 09:44:33 tls_in_resumption\tsession resumed, also new ticket",
    ]);
    assert!(r.stdout.contains("0x1F"), "{r:?}");
    // Lines from stdin, with a line that has nothing to explain.
    let mut child = Command::new(BIN)
        .args(["decode", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("decode -");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{exim}\nnothing here").expect("write");
    }
    let out = child.wait_with_output().expect("decode - output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("session was resumed") && text.contains("(configuration:"),
        "{text}"
    );
    assert_one_line_error(&run(&["decode", "no fields here"]), "no fields here");
    assert_one_line_error(&run(&["decode", "X=TLS1.3:A:256 resumption=0x40"]), "0x40");
}

#[test]
fn decode_explains_a_real_serve_line() {
    let srv = Server::start(&["--backend", "rustls", "--max-connections", "2"]);
    let r = run(&["probe", &srv.addr, "--backend", "rustls"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let _first = srv.line();
    let second = srv.line();
    let d = run(&["decode", &second]);
    assert_eq!(d.code, Some(0), "{d:?}");
    assert!(d.stdout.contains("session was resumed"), "{second}: {d:?}");
    assert!(d.stdout.contains("resumption value 0x1"), "{second}: {d:?}");
    assert!(!d.stdout.contains("disagree"), "{second}: {d:?}");
}

/// Runs `probe` against `addr` with `args`; the "not resumed" reason of each connection.
fn probe_reasons(addr: &str, args: &[&str]) -> (Run, Vec<String>) {
    let mut all = vec!["probe", addr];
    all.extend_from_slice(args);
    let r = run(&all);
    assert_eq!(r.code, Some(0), "{r:?}");
    let reasons = r
        .stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("connection "))
        .map(str::to_owned)
        .collect();
    (r, reasons)
}

#[test]
fn probe_json_gives_one_object_per_connection_and_a_summary() {
    let srv = Server::start(&["--backend", "gnutls", "--max-connections", "3"]);
    let r = run(&[
        "probe",
        &srv.addr,
        "--backend",
        "openssl",
        "--count",
        "3",
        "--json",
        "--ocsp",
        "request",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let objects: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(objects.len(), 4, "{r:?}");
    for (i, o) in objects[..3].iter().enumerate() {
        let server_line = srv.line();
        assert_eq!(o["connection"], i + 1);
        assert_eq!(o["address"], "127.0.0.1");
        assert_eq!(o["host"], "mx.tlsresume.test");
        let resumed = o["resumed"].as_bool().expect("resumed");
        // The server's own log line says whether it resumed.
        assert_eq!(
            resumed,
            server_line.contains("* CV="),
            "{o} vs {server_line}"
        );
        let x = o["x"].as_str().expect("x");
        assert_eq!(x.ends_with('*'), resumed, "{o}");
        let bits = o["resumption"].as_u64().expect("resumption");
        assert_eq!(o["resumption_hex"], format!("0x{bits:02X}"));
        assert_eq!(bits & 0x10 != 0, resumed, "{o}");
        assert!(o["cv"] == "yes" || o["cv"] == "no", "{o}");
        assert!(o["ocsp"].is_u64(), "{o}");
        assert_eq!(o["why_not_resumed"].is_string(), !resumed, "{o}");
    }
    let summary = &objects[3]["summary"];
    assert_eq!(summary["connections"], 3, "{summary}");
    assert_eq!(summary["resumed"], 2, "{summary}");
    assert_eq!(summary["full"], 1, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["backend"], "openssl", "{summary}");
}

#[test]
fn probe_says_a_tls13_ticket_was_used_up() {
    let srv = Server::start(&[
        "--backend",
        "openssl",
        "--max-connections",
        "3",
        "--tls",
        "1.3",
    ]);
    let (r, reasons) = probe_reasons(&srv.addr, &["--backend", "rustls", "--count", "3"]);
    assert_eq!(reasons.len(), 2, "{r:?}");
    assert!(
        reasons[1].starts_with("3 not resumed: the TLS 1.3 ticket was used up on connection 2"),
        "{r:?}"
    );
}

#[test]
fn probe_says_the_stored_session_expired() {
    let srv = Server::start(&["--backend", "rustls", "--max-connections", "2"]);
    let (r, reasons) = probe_reasons(&srv.addr, &["--backend", "openssl", "--advance", "7300"]);
    assert!(r.stdout.contains(": 0 resumed, 2 full"), "{r:?}");
    assert!(
        reasons[1].starts_with(
            "2 not resumed: the stored session expired (stored 7300 s ago, lifetime 7200 s)"
        ),
        "{r:?}"
    );
}

#[test]
fn probe_says_the_policy_forbids_it() {
    let srv = Server::start(&["--backend", "openssl", "--max-connections", "2"]);
    let (r, reasons) = probe_reasons(
        &srv.addr,
        &["--backend", "gnutls", "--resumption-hosts", "!127.0.0.1"],
    );
    assert!(r.stdout.contains(": 0 resumed, 2 full"), "{r:?}");
    for (i, reason) in reasons.iter().enumerate() {
        assert!(
            reason.starts_with(&format!("{} not resumed: the policy forbids it", i + 1)),
            "{r:?}"
        );
    }
    // The client may not resume, but GnuTLS always asks for a ticket: as Exim's GnuTLS client,
    // it reports the ticket that arrived and stores nothing (0x09, "no client request").
    assert!(
        r.stdout
            .lines()
            .take(2)
            .all(|l| l.contains("resumption=0x09 (no client request)")),
        "{r:?}"
    );
    assert_one_line_error(
        &run(&["probe", &srv.addr, "--resumption-hosts", "10.0.0.0/99"]),
        "10.0.0.0/99",
    );
}

/// A TCP forwarder on a free port that sends its `n`-th connection to `targets[n % len]`, as a
/// load balancer in front of servers with different host names would.
fn balancer(targets: Vec<String>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(client) = conn else { break };
            let Ok(server) = std::net::TcpStream::connect(&targets[n % targets.len()]) else {
                break;
            };
            let (mut c2, mut s2) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            let (mut c1, mut s1) = (client, server);
            thread::spawn(move || {
                let _ = std::io::copy(&mut c1, &mut s1);
                let _ = s1.shutdown(std::net::Shutdown::Write);
            });
            thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

#[test]
fn probe_says_the_cache_key_changed_and_which_input() {
    let a = Server::start(&[
        "--backend",
        "openssl",
        "--starttls",
        "smtp",
        "--hostname",
        "mx1.tlsresume.test",
    ]);
    let b = Server::start(&[
        "--backend",
        "openssl",
        "--starttls",
        "smtp",
        "--hostname",
        "mx2.tlsresume.test",
    ]);
    let lb = balancer(vec![a.addr.clone(), b.addr.clone()]);
    let (r, reasons) = probe_reasons(&lb, &["--backend", "openssl", "--starttls", "smtp"]);
    assert_eq!(reasons.len(), 2, "{r:?}");
    assert!(
        reasons[1].starts_with("2 not resumed: the cache key changed since connection 1: host name in the server's EHLO reply mx1.tlsresume.test → mx2.tlsresume.test"),
        "{r:?}"
    );
    assert!(a.line().contains(" X="));
    assert!(b.line().contains(" X="));
}

#[cfg(feature = "stores")]
#[test]
fn probe_says_the_server_refused_the_offered_session() {
    let dir = scratch("refused");
    let cache = dir.join("sessions").display().to_string();
    let mut listen = None;
    let first = start_node(
        &mut listen,
        &["--backend", "openssl", "--max-connections", "1"],
    );
    let addr = first.addr.clone();
    let (r, _) = probe_reasons(
        &addr,
        &["--backend", "gnutls", "--count", "1", "--cache", &cache],
    );
    assert!(r.stdout.contains(": 0 resumed, 1 full"), "{r:?}");
    assert_eq!(first.wait_exit(), Some(0));
    // A restarted server has new ticket keys: the stored session is offered and refused.
    let _second = start_node(
        &mut listen,
        &["--backend", "openssl", "--max-connections", "1"],
    );
    let (r, reasons) = probe_reasons(
        &addr,
        &["--backend", "gnutls", "--count", "1", "--cache", &cache],
    );
    assert!(r.stdout.contains("resumption=0x0F"), "{r:?}");
    assert!(
        reasons[0].starts_with("1 not resumed: the server refused the offered session"),
        "{r:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The pages in a run of curl or s_client output, split at each page's first line.
fn pages(out: &str) -> Vec<&str> {
    out.split("tlsresume serve --http (").skip(1).collect()
}

fn curl_second_url_resumes(backend: &str) {
    curl_second_url_resumes_with(backend, &[]);
}

fn curl_second_url_resumes_with(backend: &str, extra: &[&str]) {
    if !have_tool("curl", &["--version"], "curl") {
        return;
    }
    let mut args = vec!["--backend", backend, "--http", "--max-connections", "2"];
    args.extend_from_slice(extra);
    let srv = Server::start(&args);
    let url = |p: &str| format!("https://{}/{p}", srv.addr);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert", &pki("ca.pem")])
        .args([url("a"), url("b")])
        .stdin(Stdio::null())
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{backend}: {out:?}");
    let p = pages(&text);
    assert_eq!(p.len(), 2, "{backend}: {text}");
    assert!(p[0].starts_with(&format!("{backend} backend)")), "{text}");
    assert!(
        p[0].contains("GET /a") && p[0].contains("resumed: no\n"),
        "{backend}: {text}"
    );
    assert!(
        p[1].contains("GET /b") && p[1].contains("resumed: yes\n"),
        "{backend}: {text}"
    );
    assert!(p[1].contains("resumption: 0x1"), "{backend}: {text}");
    let first = srv.line();
    let second = srv.line();
    assert!(
        !first.contains('*') && first.contains("requests=1"),
        "{first}"
    );
    assert!(
        second.contains("* CV=") && second.contains("requests=1") && !second.contains("ended"),
        "{second}"
    );
    assert_eq!(srv.wait_exit(), Some(0));
}

#[test]
fn curl_resumes_on_the_second_url_with_an_openssl_server() {
    curl_second_url_resumes("openssl");
}

#[test]
fn curl_resumes_on_the_second_url_with_a_gnutls_server() {
    curl_second_url_resumes("gnutls");
}

#[test]
fn curl_resumes_on_the_second_url_with_a_rustls_server() {
    curl_second_url_resumes("rustls");
}

#[test]
fn curl_resumes_on_the_second_url_with_every_server_on_tokio() {
    for backend in ["openssl", "gnutls", "rustls"] {
        curl_second_url_resumes_with(backend, &["--async"]);
    }
}

/// `openssl s_client` sending `input`, with `session` as -sess_out (first) or -sess_in.
fn s_client(addr: &str, session: &Path, resume: bool, input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-servername", "localhost"])
        .args(["-CAfile", &pki("ca.pem"), "-ign_eof"])
        .args([if resume { "-sess_in" } else { "-sess_out" }])
        .arg(session)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("s_client output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl s_client` sending `name` (SNI) over `version` (`-tls1_2` or `-tls1_3`) and one
/// HTTP request, saving its session to `session` or offering the one there (`resume`).
fn s_client_named(addr: &str, name: &str, version: &str, session: &Path, resume: bool) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-servername", name, version])
        .args(["-CAfile", &pki("ca.pem"), "-ign_eof"])
        .args([if resume { "-sess_in" } else { "-sess_out" }])
        .arg(session)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .expect("write");
    let out = child.wait_with_output().expect("s_client output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The server certificate `s_client` printed (its PEM block), and its subject line.
fn served_pem(out: &str) -> (Option<&str>, Option<&str>) {
    let pem = out.find("-----BEGIN CERTIFICATE-----").and_then(|start| {
        let end = out[start..].find("-----END CERTIFICATE-----")? + start;
        Some(&out[start..end + "-----END CERTIFICATE-----".len()])
    });
    let subject = out.lines().find(|l| l.starts_with("subject="));
    (pem, subject)
}

/// What `openssl x509` says of a certificate file: its PEM and its subject line.
fn file_pem_and_subject(file: &str) -> (String, String) {
    let pem = std::fs::read_to_string(file).expect("certificate file");
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in", file])
        .output()
        .expect("openssl x509");
    (
        pem.trim().to_owned(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

#[test]
fn serve_refuses_keys_that_do_not_pair_with_the_certificates() {
    let (a, wild) = (pki("sni-a.pem"), pki("sni-wild.pem"));
    let r = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--cert",
        &a,
        "--cert",
        &wild,
        "--key",
        &pki("sni-a.key"),
    ]);
    assert_one_line_error(&r, "1 --key for 2 --cert");
    // A key that is not the certificate's is named with the certificate's file.
    let r = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--backend",
        "rustls",
        "--cert",
        &a,
        "--key",
        &pki("sni-a.key"),
        "--cert",
        &wild,
        "--key",
        &pki("sni-a.key"),
    ]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(
        r.stderr.starts_with("tlsresume: ") && !r.stderr.contains("panicked"),
        "{r:?}"
    );
}

#[test]
fn serve_json_names_the_certificate_sent() {
    let srv = Server::start_json(&[
        "--backend",
        "gnutls",
        "--http",
        "--cert",
        &pki("sni-a.pem"),
        "--key",
        &pki("sni-a.key"),
        "--cert",
        &pki("sni-wild.pem"),
        "--key",
        &pki("sni-wild.key"),
    ]);
    let client = tls_client("openssl");
    let addr: std::net::SocketAddr = srv.addr.parse().expect("addr");
    let tcp = std::net::TcpStream::connect(addr).expect("connect");
    let mut tls = client
        .connect(
            Box::new(tcp),
            &tlsresume::ClientParams::new("x.wild.tlsresume.test", addr),
        )
        .expect("the wildcard certificate verifies for the name");
    use std::io::{Read, Write};
    tls.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
    let mut page = String::new();
    let _ = tls.read_to_string(&mut page);
    let v: serde_json::Value = serde_json::from_str(&srv.line()).expect("JSON line");
    assert_eq!(v["certificate"], "CN=*.wild.tlsresume.test", "{v}");
    let der = tlsresume::certificates_from_pem_file(pki("sni-wild.pem").as_ref()).expect("pem");
    let digest = ring::digest::digest(&ring::digest::SHA256, &der[0]);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(v["certificate_sha256"], hex.join(":"), "{v}");
}

#[test]
fn serve_with_two_certificates_gives_each_name_its_own_and_never_resumes_across_names() {
    if !have_tool("openssl", &["version"], "openssl") {
        return;
    }
    let (a_pem, a_subject) = file_pem_and_subject(&pki("sni-a.pem"));
    let (w_pem, w_subject) = file_pem_and_subject(&pki("sni-wild.pem"));
    for backend in ["openssl", "gnutls", "rustls"] {
        let dir = scratch(&format!("sni-{backend}"));
        let srv = Server::start(&[
            "--backend",
            backend,
            "--http",
            "--cert",
            &pki("sni-a.pem"),
            "--key",
            &pki("sni-a.key"),
            "--cert",
            &pki("sni-wild.pem"),
            "--key",
            &pki("sni-wild.key"),
        ]);
        for version in ["-tls1_3", "-tls1_2"] {
            let what = format!("{backend} {version}");
            let session = dir.join(format!("session{version}.pem"));
            // Each name gets its certificate, as the server's log line says too.
            let out = s_client_named(&srv.addr, "a.sni.tlsresume.test", version, &session, false);
            assert_eq!(
                served_pem(&out),
                (Some(a_pem.as_str()), Some(a_subject.as_str())),
                "{what}: {out}"
            );
            assert!(out.contains("New, TLSv1."), "{what}: {out}");
            let line = srv.line();
            assert!(
                line.contains("CERT=\"CN=a.sni.tlsresume.test\""),
                "{what}: {line}"
            );
            let out = s_client_named(
                &srv.addr,
                "b.wild.tlsresume.test",
                version,
                &dir.join("other.pem"),
                false,
            );
            assert_eq!(
                served_pem(&out),
                (Some(w_pem.as_str()), Some(w_subject.as_str())),
                "{what}: {out}"
            );
            let line = srv.line();
            assert!(
                line.contains("CERT=\"CN=*.wild.tlsresume.test\""),
                "{what}: {line}"
            );
            // The session resumes under its own name...
            let out = s_client_named(&srv.addr, "a.sni.tlsresume.test", version, &session, true);
            assert!(out.contains("Reused, TLSv1."), "{what}: {out}");
            let line = srv.line();
            assert!(
                line.contains('*') && !line.contains("CERT="),
                "{what}: {line}"
            );
            // ...and not under the other: a full handshake with the other's certificate.
            let out = s_client_named(&srv.addr, "b.wild.tlsresume.test", version, &session, true);
            assert!(out.contains("New, TLSv1."), "{what}: {out}");
            assert_eq!(served_pem(&out).0, Some(w_pem.as_str()), "{what}: {out}");
            let line = srv.line();
            assert!(
                line.contains("CERT=\"CN=*.wild.tlsresume.test\""),
                "{what}: {line}"
            );
            assert!(!line.contains(":256*"), "{what}: {line}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn serve_http_keeps_alive_when_asked_and_resumes_with_openssl_s_client() {
    http_keep_alive_and_resumption(&[]);
}

#[test]
fn serve_async_http_keeps_alive_when_asked_and_resumes_with_openssl_s_client() {
    http_keep_alive_and_resumption(&["--async"]);
}

fn http_keep_alive_and_resumption(extra: &[&str]) {
    if !have_tool("openssl", &["version"], "openssl") {
        return;
    }
    let dir = scratch(if extra.is_empty() {
        "http-s-client"
    } else {
        "http-s-client-async"
    });
    let session = dir.join("session.pem");
    let mut args = vec!["--backend", "rustls", "--http", "--max-connections", "2"];
    args.extend_from_slice(extra);
    let srv = Server::start(&args);
    let two = "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let out = s_client(&srv.addr, &session, false, two);
    let p = pages(&out);
    assert_eq!(p.len(), 2, "{out}");
    assert!(out.contains("Connection: keep-alive\r\n"), "{out}");
    assert!(
        p[0].contains("request 1 on this connection: GET /1"),
        "{out}"
    );
    assert!(
        p[1].contains("request 2 on this connection: GET /2"),
        "{out}"
    );
    assert!(
        p[1].contains("resumed: no\n") && p[1].contains("SNI: localhost"),
        "{out}"
    );
    assert!(srv.line().contains("requests=2"));
    let out = s_client(&srv.addr, &session, true, "GET /3 HTTP/1.0\r\n\r\n");
    assert!(out.contains("Reused, TLSv1.3"), "{out}");
    let p = pages(&out);
    assert_eq!(p.len(), 1, "{out}");
    assert!(p[0].contains("resumed: yes\n"), "{out}");
    assert!(srv.line().contains('*'));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_http_answers_close_notify_with_close_notify() {
    use std::io::{Read as _, Write as _};
    let srv = Server::start(&["--backend", "openssl", "--http", "--max-connections", "2"]);
    let client = tls_client("rustls");
    let peer: std::net::SocketAddr = srv.addr.parse().expect("addr");
    let params = tlsresume::ClientParams::new("localhost", peer);
    let tcp = std::net::TcpStream::connect(peer).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut tls = client.connect(Box::new(tcp), &params).expect("handshake");
    tls.write_all(b"GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
        .expect("request");
    // Read the head, then exactly Content-Length bytes: the connection stays open.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut byte).expect("head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .expect("number");
    let mut body = vec![0u8; len];
    tls.read_exact(&mut body).expect("body");
    assert!(String::from_utf8_lossy(&body).contains("GET /x"));
    // Our close_notify is answered with the server's: a clean end of stream, not an error.
    tls.shutdown().expect("close_notify");
    let mut rest = Vec::new();
    let n = tls
        .read_to_end(&mut rest)
        .expect("the server's close_notify");
    assert_eq!(n, 0);
    let line = srv.line();
    assert!(
        line.contains("requests=1") && !line.contains("ended"),
        "{line}"
    );
    // A malformed request gets 400 and the line says why.
    let tcp = std::net::TcpStream::connect(peer).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut tls = client.connect(Box::new(tcp), &params).expect("handshake");
    tls.write_all(b"NONSENSE\r\n\r\n").expect("request");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.0 400 Bad Request"));
    let line = srv.line();
    assert!(line.contains("malformed request line"), "{line}");
}

#[test]
fn serve_json_logs_one_object_per_connection() {
    let srv = Server::start_json(&["--backend", "gnutls", "--max-connections", "2"]);
    let r = run(&["probe", &srv.addr, "--backend", "gnutls"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    for resumed in [false, true] {
        let line = srv.line();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["peer"], "127.0.0.1", "{v}");
        assert_eq!(v["resumed"], resumed, "{v}");
        assert_eq!(v["x"].as_str().expect("x").ends_with('*'), resumed, "{v}");
        let bits = v["resumption"].as_u64().expect("bits");
        assert_eq!(bits & 0x10 != 0, resumed, "{v}");
        assert_eq!(v["sni"], "mx.tlsresume.test", "{v}");
        assert_eq!(v["messages"], 0, "{v}");
        assert!(v["error"].is_null(), "{v}");
    }
    assert_eq!(srv.wait_exit(), Some(0));
}

/// `serve --json` with fleet keys in a Redis nobody listens on: the handshake succeeds on a
/// process-local key, and the JSON log says why tickets will not resume across the fleet.
#[test]
#[cfg(feature = "stores")]
fn serve_json_reports_store_notices_as_objects() {
    let dir = scratch("json-notices");
    let kek = kek_file(&dir, "kek", 0o600);
    let url = format!("redis://127.0.0.1:{}", free_port());
    let srv = Server::start_json(&[
        "--backend",
        "openssl",
        "--max-connections",
        "1",
        "--ticket-keys",
        &url,
        "--kek-file",
        &kek,
    ]);
    let r = run(&["probe", &srv.addr, "--backend", "openssl", "--count", "1"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let mut notices = Vec::new();
    loop {
        let line = srv.line();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(text) = v["notice"].as_str() {
            assert_eq!(v["level"], "warning", "{v}");
            notices.push(text.to_owned());
            continue;
        }
        assert!(v["error"].is_null(), "the handshake went on: {v}");
        break;
    }
    assert!(
        notices.iter().any(|n| n.contains("unreachable")),
        "{notices:?}"
    );
    assert!(
        notices
            .iter()
            .any(|n| n.contains("ticket key for slot") && n.contains("process-local")),
        "{notices:?}"
    );
    assert_eq!(srv.wait_exit(), Some(0));
}

/// The value of attribute `name` in one SVG element's text.
fn attr(element: &str, name: &str) -> Option<f64> {
    let at = element.find(&format!(" {name}=\""))? + name.len() + 3;
    element[at..].split('"').next()?.parse().ok()
}

#[test]
fn timeline_svg_renders_has_a_legend_and_no_label_crosses_a_bar() {
    let dir = scratch("timeline");
    let svg_path = dir.join("timeline.svg");
    let svg_arg = svg_path.display().to_string();
    let r = run(&[
        "compare",
        "--tls",
        "1.2",
        "--transport",
        "tls-on-connect",
        "--timeline",
        &svg_arg,
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let svg = std::fs::read_to_string(&svg_path).expect("timeline written");
    for colour_meaning in [
        "ticket key: current",
        "ticket key: previous",
        "resumed, new ticket",
        "ticket refused",
        "connection failed",
        "a ticket's lifetime",
    ] {
        assert!(
            svg.contains(colour_meaning),
            "legend lacks {colour_meaning}"
        );
    }
    // Bars: the key windows (rect) and ticket lifetimes (line) marked class="bar".
    let mut bars = Vec::new();
    let mut texts = Vec::new();
    // Whether each text is a key or scenario label (class="label").
    let mut labels = Vec::new();
    for element in svg.split('<').skip(1) {
        let tag = element.split([' ', '>']).next().unwrap_or("");
        if element.contains("class=\"bar\"") {
            let b = match tag {
                "rect" => (|| {
                    let (x, y) = (attr(element, "x")?, attr(element, "y")?);
                    Some((
                        x,
                        y,
                        x + attr(element, "width")?,
                        y + attr(element, "height")?,
                    ))
                })(),
                "line" => (|| {
                    let y = attr(element, "y1")?;
                    Some((attr(element, "x1")?, y - 1.5, attr(element, "x2")?, y + 1.5))
                })(),
                _ => None,
            };
            bars.push(b.unwrap_or_else(|| panic!("bar without geometry: {element}")));
        } else if tag == "text" {
            let (Some(x), Some(y)) = (attr(element, "x"), attr(element, "y")) else {
                continue;
            };
            let content = element.split_once('>').map(|(_, t)| t).unwrap_or("");
            let size = attr(element, "font-size").unwrap_or(11.0);
            // A generous box for sans-serif glyphs.
            let width = content.chars().count() as f64 * 0.62 * size;
            texts.push((x, y - size, x + width, y + 0.3 * size, content.to_owned()));
            labels.push(element.contains("class=\"label\""));
        }
    }
    assert!(bars.len() > 10, "{} bars", bars.len());
    assert!(
        texts.iter().any(|t| t.4.starts_with("renewal +61m")),
        "no scenario labels"
    );
    // Every scenario is drawn in both flavours' panels, DANE and client certificates
    // included (the panels grow with their rows).
    for scenario in [
        "getticket +",
        "dane_ee_getticket +",
        "dane_nomatch_resume",
        "clientcert_refused +",
    ] {
        let drawn = texts.iter().filter(|t| t.4.starts_with(scenario)).count();
        assert_eq!(
            drawn, 2,
            "{scenario} drawn {drawn} times, not once per flavour"
        );
    }
    // No key or scenario label overlaps another text (the notes and hour labels under the
    // rows), and nothing is drawn below the picture.
    let height = svg
        .split('<')
        .find(|e| e.starts_with("svg "))
        .and_then(|e| attr(e, "height"))
        .expect("svg height");
    for (i, (x0, y0, x1, y1, content)) in texts.iter().enumerate() {
        assert!(
            *y1 <= height,
            "'{content}' below the picture ({y1} > {height})"
        );
        if !labels[i] {
            continue;
        }
        // Here the glyphs' own height (cap height to descender, ~0.8 and ~0.2 of the font
        // size), not the generous box above: rows are 13 apart at size 11.
        let tight = |y0: f64, y1: f64| {
            let size = (y1 - y0) / 1.3;
            (y0 + 0.2 * size, y1 - 0.1 * size)
        };
        let (y0, y1) = tight(*y0, *y1);
        for (j, (ox0, oy0, ox1, oy1, other)) in texts.iter().enumerate() {
            let (oy0, oy1) = tight(*oy0, *oy1);
            let overlap = i != j && x0 < ox1 && ox0 < x1 && y0 < oy1 && oy0 < y1;
            assert!(!overlap, "label '{content}' overlaps '{other}'");
        }
    }
    for (tx0, ty0, tx1, ty1, content) in &texts {
        for (bx0, by0, bx1, by1) in &bars {
            let overlap = tx0 < bx1 && bx0 < tx1 && ty0 < by1 && by0 < ty1;
            assert!(
                !overlap,
                "label '{content}' crosses a bar at x {bx0}..{bx1}, y {by0}..{by1}"
            );
        }
    }
    // A real renderer must accept it.
    if have_tool("rsvg-convert", &["--version"], "librsvg2-bin") {
        let png = dir.join("timeline.png");
        let out = Command::new("rsvg-convert")
            .arg(&svg_path)
            .arg("-o")
            .arg(&png)
            .output()
            .expect("rsvg-convert");
        assert!(out.status.success(), "rsvg-convert failed: {out:?}");
        let bytes = std::fs::read(&png).expect("png");
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{} bytes",
            bytes.len()
        );
        // A broken file is refused, so the check above can fail.
        std::fs::write(&svg_path, &svg[..svg.len() / 2]).expect("truncate");
        let bad = Command::new("rsvg-convert")
            .arg(&svg_path)
            .arg("-o")
            .arg(&png)
            .output()
            .expect("rsvg-convert");
        assert!(!bad.status.success(), "a truncated SVG rendered");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// How long `serve` waits for early commands before its banner in these tests (milliseconds):
/// a client speaking early is seen at once; without the wait the server only looks, and a
/// client scheduled a moment late would be logged `L.` rather than `L*`.
const PRE_BANNER_WAIT: &str = "500";

/// `probe --pipe-connect --count 2` with a test message against `serve --starttls smtp
/// --pipe-connect`: the first connection goes the normal way and is logged `L.` by the server;
/// the second sends EHLO and STARTTLS before the banner (and EHLO, MAIL, RCPT, BDAT right
/// after the handshake), resumes TLS, and is logged `L*`.
fn pipe_connect_pair(server: &str, client: &str) {
    pipe_connect_pair_with(server, client, &[]);
}

/// [`pipe_connect_pair`] with `extra` arguments for `serve`.
fn pipe_connect_pair_with(server: &str, client: &str, extra: &[&str]) {
    let case = format!("server {server} {extra:?}, client {client}");
    let mut args = vec![
        "--backend",
        server,
        "--starttls",
        "smtp",
        "--pipe-connect",
        "--pre-banner-wait",
        PRE_BANNER_WAIT,
        "--max-connections",
        "2",
    ];
    args.extend_from_slice(extra);
    let srv = Server::start(&args);
    let r = run(&[
        "probe",
        &srv.addr,
        "--backend",
        client,
        "--starttls",
        "smtp",
        "--pipe-connect",
        "--count",
        "2",
        "--mail-from",
        "a@example.test",
        "--rcpt-to",
        "b@example.test",
    ]);
    assert_eq!(r.code, Some(0), "{case}: {r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines.len() >= 3, "{case}: {r:?}");
    assert!(
        lines[0].contains(" early=none ") && !lines[0].contains("L*"),
        "{case}: {r:?}"
    );
    assert!(
        lines[0].contains(" L early=") && lines[0].contains("waits-before-data=5"),
        "first: banner, EHLO, STARTTLS, EHLO, MAIL..BDAT: {case}: {r:?}"
    );
    assert!(
        lines[1].contains(" L* early=EHLO,STARTTLS tls-early=EHLO,MAIL,RCPT,BDAT ")
            && lines[1].contains("waits-before-data=2")
            && lines[1].contains("C=\"250 "),
        "{case}: {r:?}"
    );
    assert!(
        lines[1].contains("* CV=") && lines[1].contains("(session resumed"),
        "the second connection resumes TLS as well: {case}: {r:?}"
    );
    assert!(
        lines[2].contains("2 messages accepted, early pipelining on 1"),
        "{case}: {r:?}"
    );
    let first = srv.line();
    let second = srv.line();
    assert!(
        first.contains(" L. messages=1") && !first.contains('*'),
        "{case}: {first}"
    );
    assert!(
        second.contains(" L* messages=1") && second.contains("session resumed"),
        "{case}: {second}"
    );
    assert_eq!(srv.wait_exit(), Some(0), "{case}");
}

macro_rules! pipe_connect_pairs {
    ($($name:ident: $server:literal, $client:literal;)*) => {$(
        #[test]
        fn $name() {
            pipe_connect_pair($server, $client);
        }
    )*};
}

pipe_connect_pairs! {
    pipe_connect_openssl_server_openssl_probe: "openssl", "openssl";
    pipe_connect_openssl_server_gnutls_probe: "openssl", "gnutls";
    pipe_connect_openssl_server_rustls_probe: "openssl", "rustls";
    pipe_connect_gnutls_server_openssl_probe: "gnutls", "openssl";
    pipe_connect_gnutls_server_gnutls_probe: "gnutls", "gnutls";
    pipe_connect_gnutls_server_rustls_probe: "gnutls", "rustls";
    pipe_connect_rustls_server_openssl_probe: "rustls", "openssl";
    pipe_connect_rustls_server_gnutls_probe: "rustls", "gnutls";
    pipe_connect_rustls_server_rustls_probe: "rustls", "rustls";
}

#[test]
fn serve_async_starttls_smtp_resumes_with_every_backend() {
    for (server, client) in [
        ("openssl", "gnutls"),
        ("gnutls", "rustls"),
        ("rustls", "openssl"),
    ] {
        serve_and_probe_with(server, client, true, &["--async"]);
    }
}

#[test]
fn serve_async_starttls_pipe_connect_resumes_early() {
    pipe_connect_pair_with("openssl", "rustls", &["--async"]);
}

/// Connects to `addr`, sends `line` at once (before any banner can be read), and returns
/// everything the server says until it closes or 10 s pass.
fn talk_early(addr: &str, line: &str) -> String {
    use std::io::Write;
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.write_all(line.as_bytes()).expect("write early");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        // Enough once the EHLO reply (or the rejection) is complete.
        let text = String::from_utf8_lossy(&got);
        if text.contains("554 ") || text.contains("250 STARTTLS\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn early_talkers_are_rejected_unless_offered_pipe_connect() {
    // Not in --pipe-connect-hosts: no PIPECONNECT for the probe, and an early talker is
    // dropped with Exim's reply.
    let srv = Server::start(&[
        "--starttls",
        "smtp",
        "--pipe-connect",
        "--pipe-connect-hosts",
        "!127.0.0.1 : *",
        "--pre-banner-wait",
        "1000",
        "--max-connections",
        "3",
    ]);
    let reply = talk_early(&srv.addr, "EHLO early.test\r\n");
    assert!(
        reply.starts_with("554 SMTP synchronization error") && !reply.contains("220 "),
        "{reply:?}"
    );
    let line = srv.line();
    assert!(line.contains("SMTP synchronization error"), "{line}");
    let r = run(&[
        "probe",
        &srv.addr,
        "--starttls",
        "smtp",
        "--pipe-connect",
        "--count",
        "2",
        "--mail-from",
        "a@example.test",
        "--rcpt-to",
        "b@example.test",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        !r.stdout.contains("L*") && r.stdout.contains("early pipelining on 0"),
        "{r:?}"
    );
    for _ in 0..2 {
        let line = srv.line();
        // Pipelined (MAIL..BDAT in one go), but PIPECONNECT never advertised.
        assert!(line.contains(" L messages=1"), "{line}");
    }

    // In the list: PIPECONNECT is advertised and the early talker is answered.
    let srv = Server::start(&[
        "--starttls",
        "smtp",
        "--pipe-connect",
        "--pipe-connect-hosts",
        "127.0.0.1",
        "--pre-banner-wait",
        "1000",
        "--max-connections",
        "1",
    ]);
    let reply = talk_early(&srv.addr, "EHLO early.test\r\n");
    assert!(reply.starts_with("220 "), "{reply:?}");
    assert!(reply.contains("250-PIPECONNECT\r\n"), "{reply:?}");
    assert!(reply.contains("250-PIPELINING\r\n"), "{reply:?}");
}

#[test]
fn without_pipe_connect_nothing_is_advertised_and_early_talkers_are_rejected() {
    let srv = Server::start(&[
        "--starttls",
        "smtp",
        "--pre-banner-wait",
        "1000",
        "--max-connections",
        "3",
    ]);
    let reply = talk_early(&srv.addr, "EHLO early.test\r\n");
    assert!(
        reply.starts_with("554 SMTP synchronization error"),
        "{reply:?}"
    );
    assert!(srv.line().contains("SMTP synchronization error"));
    let r = run(&[
        "probe",
        &srv.addr,
        "--starttls",
        "smtp",
        "--pipe-connect",
        "--count",
        "2",
        "--mail-from",
        "a@example.test",
        "--rcpt-to",
        "b@example.test",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stdout.contains("L*"), "{r:?}");
    for _ in 0..2 {
        let line = srv.line();
        assert!(!line.contains("L.") && !line.contains("L*"), "{line}");
    }
}

#[test]
fn cache_file_carries_the_ehlo_entry_and_the_session_between_runs() {
    let dir = scratch("ehlo-cache");
    let cache = dir.join("cache.sqlite");
    let cache_arg = cache.display().to_string();
    let srv = Server::start(&[
        "--backend",
        "openssl",
        "--starttls",
        "smtp",
        "--pipe-connect",
        "--pre-banner-wait",
        PRE_BANNER_WAIT,
        "--max-connections",
        "2",
    ]);
    for (run_no, again) in [(1, false), (2, true)] {
        let r = run(&[
            "probe",
            &srv.addr,
            "--backend",
            "openssl",
            "--starttls",
            "smtp",
            "--pipe-connect",
            "--count",
            "1",
            "--cache",
            &cache_arg,
            "--mail-from",
            "a@example.test",
            "--rcpt-to",
            "b@example.test",
        ]);
        assert_eq!(r.code, Some(0), "run {run_no}: {r:?}");
        let first = r.stdout.lines().next().unwrap_or_default();
        assert_eq!(
            first.contains(" L* early=EHLO,STARTTLS"),
            again,
            "run {run_no}: {r:?}"
        );
        assert_eq!(first.contains("* CV="), again, "run {run_no}: {r:?}");
    }
    assert!(srv.line().contains(" L. messages=1"));
    let second = srv.line();
    assert!(
        second.contains(" L* messages=1") && second.contains("session resumed"),
        "{second}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plain_smtp_pipe_connect_with_data_and_json() {
    plain_smtp_pipe_connect(&[]);
}

#[test]
fn plain_smtp_pipe_connect_on_tokio_with_data_and_json() {
    plain_smtp_pipe_connect(&["--async"]);
}

fn plain_smtp_pipe_connect(extra: &[&str]) {
    let mut args = vec![
        "--plain",
        "--pipe-connect",
        "--pre-banner-wait",
        PRE_BANNER_WAIT,
        "--max-connections",
        "2",
    ];
    args.extend_from_slice(extra);
    let srv = Server::start_json(&args);
    let r = run(&[
        "probe",
        &srv.addr,
        "--plain",
        "--pipe-connect",
        "--no-chunking",
        "--json",
        "--mail-from",
        "a@example.test",
        "--rcpt-to",
        "b@example.test",
        "--rcpt-to",
        "c@example.test",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let objects: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(objects.len(), 3, "{r:?}");
    assert_eq!(objects[0]["l"], "L", "{r:?}");
    assert_eq!(objects[0]["sent_early"], serde_json::json!([]), "{r:?}");
    assert_eq!(
        objects[0]["waits_before_data"], 3,
        "banner, EHLO, MAIL..DATA: {r:?}"
    );
    assert_eq!(objects[1]["l"], "L*", "{r:?}");
    assert_eq!(
        objects[1]["sent_early"],
        serde_json::json!(["EHLO", "MAIL", "RCPT", "RCPT", "DATA"]),
        "--no-chunking: DATA, not BDAT: {r:?}"
    );
    assert_eq!(objects[1]["waits_before_data"], 1, "{r:?}");
    assert_eq!(objects[1]["chunking"], false, "{r:?}");
    assert!(objects[0].get("x").is_none(), "no TLS: {r:?}");
    assert_eq!(objects[2]["summary"]["early_pipelining"], 1, "{r:?}");
    assert_eq!(objects[2]["summary"]["messages"], 2, "{r:?}");
    assert_eq!(objects[2]["summary"]["transport"], "plain", "{r:?}");
    for l in ["L.", "L*"] {
        let line = srv.line();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["l"], l, "{v}");
        assert_eq!(v["messages"], 1, "{v}");
        assert_eq!(v["transport"], "plain", "{v}");
        assert!(v["x"].is_null() && v["error"].is_null(), "{v}");
    }
    assert_eq!(srv.wait_exit(), Some(0));
}

#[test]
fn tls_on_connect_probe_sends_the_message_over_tls_and_pipelines_it() {
    let srv = Server::start(&[
        "--backend",
        "rustls",
        "--pipe-connect",
        "--max-connections",
        "2",
    ]);
    let r = run(&[
        "probe",
        &srv.addr,
        "--backend",
        "gnutls",
        "--pipe-connect",
        "--mail-from",
        "",
        "--rcpt-to",
        "b@example.test",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].contains(" early=none ") && !lines[0].contains('*'),
        "{r:?}"
    );
    assert!(
        lines[1].contains("* CV=") && lines[1].contains(" L* early=EHLO,MAIL,RCPT,BDAT "),
        "the under-TLS view goes before the banner over TLS: {r:?}"
    );
    assert!(srv.line().contains(" L. messages=1"));
    assert!(srv.line().contains("messages=1"));
}

/// A required staple the server does not send fails the probe with the same error kind on
/// every client backend, in the JSON a script reads; a connection that resumed nothing says
/// why in `no_offer`.
#[test]
fn probe_json_gives_the_error_kind_of_a_missing_required_staple_on_every_backend() {
    for backend in ["openssl", "gnutls", "rustls"] {
        let srv = Server::start(&["--backend", "rustls", "--max-connections", "2"]);
        let ok = run(&[
            "probe",
            &srv.addr,
            "--backend",
            backend,
            "--count",
            "1",
            "--json",
        ]);
        assert_eq!(ok.code, Some(0), "{backend}: {ok:?}");
        let first: serde_json::Value =
            serde_json::from_str(ok.stdout.lines().next().expect("a line")).expect("JSON");
        assert_eq!(first["no_offer"], "missing", "{backend}: {first}");
        let r = run(&[
            "probe",
            &srv.addr,
            "--backend",
            backend,
            "--count",
            "1",
            "--json",
            "--ocsp",
            "require",
        ]);
        assert_ne!(r.code, Some(0), "{backend}: {r:?}");
        let o: serde_json::Value =
            serde_json::from_str(r.stdout.lines().next().expect("a line")).expect("JSON");
        assert_eq!(o["error_kind"], "ocsp", "{backend}: {o}");
        assert!(
            o["error"].as_str().is_some_and(|e| e.contains("OCSP")),
            "{backend}: {o}"
        );
    }
}

/// A server restarted with new ticket keys on the same address refuses the ticket a client
/// kept in its cache file, and `serve --json` says why (OpenSSL and rustls tell; the client is
/// OpenSSL, whose sessions outlive the probe process).
#[test]
fn serve_json_says_why_a_ticket_was_refused() {
    for backend in ["openssl", "rustls"] {
        let dir = std::env::temp_dir().join(format!(
            "tlsresume-refused-{backend}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let cache = dir.join("cache.sqlite");
        let cache = cache.to_str().expect("path");
        let first = Server::start_json(&["--backend", backend, "--max-connections", "1"]);
        let addr = first.addr.clone();
        let probe = [
            "probe",
            &addr,
            "--backend",
            "openssl",
            "--count",
            "1",
            "--cache",
            cache,
        ];
        let r = run(&probe);
        assert_eq!(r.code, Some(0), "{backend}: {r:?}");
        let full: serde_json::Value = serde_json::from_str(&first.line()).expect("JSON");
        assert_eq!(full["ticket_refused"], serde_json::Value::Null, "{full}");
        drop(first);
        // The same address again, new ticket keys (a restart without shared keys).
        let second = Server::spawn(&[
            "--listen",
            &addr,
            "--timeout",
            "30",
            "--backend",
            backend,
            "--json",
        ]);
        let listening = second.line();
        assert!(listening.contains(&addr), "{listening}");
        let r = run(&probe);
        assert_eq!(r.code, Some(0), "{backend}: {r:?}");
        let refused: serde_json::Value = serde_json::from_str(&second.line()).expect("JSON");
        assert_eq!(refused["resumed"], false, "{refused}");
        assert_eq!(
            refused["ticket_refused"], "unknown_key",
            "{backend}: {refused}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `serve --metrics`: after a full and a resumed connection, a scrape shows the counters moved.
#[test]
fn serve_metrics_counts_a_resumed_connection() {
    // No --max-connections: the server (and its metrics) runs until the test drops it.
    let srv = Server::start(&["--backend", "openssl", "--metrics", "127.0.0.1:0"]);
    let line = srv.line();
    let metrics = line
        .strip_prefix("metrics on ")
        .unwrap_or_else(|| panic!("unexpected line '{line}'"))
        .to_owned();
    let r = run(&["probe", &srv.addr, "--backend", "rustls", "--count", "2"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    // The server logs each connection after its handshake, so both are counted by now.
    let _ = (srv.line(), srv.line());
    let mut tcp = std::net::TcpStream::connect(&metrics).expect("connect to metrics");
    std::io::Write::write_all(&mut tcp, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut tcp, &mut text).expect("read");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let value = |series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    };
    let done = "tlsresume_handshakes_total{backend=\"openssl\",role=\"server\",result=";
    assert_eq!(value(&format!("{done}\"full\"}}")), 1, "{text}");
    assert_eq!(value(&format!("{done}\"resumed\"}}")), 1, "{text}");
    assert!(
        value("tlsresume_tickets_issued_total{backend=\"openssl\"}") >= 1,
        "{text}"
    );
    assert!(
        text.contains("# TYPE tlsresume_handshakes_total counter"),
        "{text}"
    );
}

/// `TLSRESUME_LOG=debug`: the library's events on stderr, text or one JSON object per line
/// with `--json`; an unknown level is a one-line error naming the variable.
#[test]
fn probe_shows_the_library_events_at_the_level_asked() {
    let srv = Server::start(&["--backend", "gnutls", "--max-connections", "4"]);
    let probe = |extra: &[&str], level: &str| {
        let mut args = vec!["probe", srv.addr.as_str(), "--backend", "openssl"];
        args.extend_from_slice(extra);
        let out = std::process::Command::new(BIN)
            .args(&args)
            .env("TLSRESUME_LOG", level)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run probe");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, text) = probe(&["--count", "2"], "debug");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("client handshake done"), "{text}");
    assert!(text.contains("tls_client"), "{text}");
    let (code, json) = probe(&["--count", "1", "--json"], "debug");
    assert_eq!(code, Some(0), "{json}");
    let event = json
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "client handshake done")
        .unwrap_or_else(|| panic!("no JSON event in:\n{json}"));
    assert_eq!(event["span"]["backend"], "openssl", "{event}");
    let (code, quiet) = probe(&["--count", "1"], "warn");
    assert_eq!(code, Some(0), "{quiet}");
    assert!(!quiet.contains("client handshake done"), "{quiet}");
    let (code, bad) = probe(&["--count", "1"], "loud");
    assert_eq!(code, Some(2), "{bad}");
    assert!(bad.contains("TLSRESUME_LOG=loud"), "{bad}");
}

/// A client dribbling its ClientHello a byte every 300 ms (each byte restarting the idle
/// `--timeout`) is cut at `--handshake-timeout`, and the log says which deadline passed.
#[test]
fn a_dribbled_client_hello_is_cut_at_the_handshake_deadline() {
    for backend in ["openssl", "gnutls", "rustls"] {
        // Server::start sets the idle --timeout to 30 s.
        let srv = Server::start(&["--backend", backend, "--handshake-timeout", "1"]);
        let mut tcp = std::net::TcpStream::connect(&srv.addr).expect("connect");
        // The start of a TLS 1.2 ClientHello record, one byte at a time.
        let hello = [22u8, 3, 1, 0x02, 0x00, 1, 0, 0x01, 0xfc, 3, 3];
        let started = std::time::Instant::now();
        let mut cut = None;
        for byte in hello.iter().cycle().take(40) {
            use std::io::Write as _;
            if tcp.write_all(&[*byte]).is_err() {
                cut = Some(started.elapsed());
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        let line = srv.line();
        assert!(
            line.contains("handshake deadline passed"),
            "{backend}: {line}"
        );
        let cut = cut.unwrap_or_else(|| panic!("{backend}: still open after 12 s: {line}"));
        assert!(
            cut < std::time::Duration::from_secs(6),
            "{backend}: cut after {cut:?}"
        );
    }
}

/// `serve --verify-hosts` on every backend: a probe without a client certificate is refused
/// (a certificate error on both ends, the server's log line says why); with `--client-cert`
/// the first connection logs CV=yes and the client's DN, and the resumed one CV=no under exim
/// on an OpenSSL server (its verify callback is not called: the known issue), CV=yes on GnuTLS
/// and rustls, and CV=yes everywhere under hardened.
#[test]
fn serve_verify_hosts_refuses_a_client_without_a_certificate_and_logs_the_verified_one() {
    let cert = pki("client.pem");
    let key = pki("client.key");
    for (server, client) in [
        ("openssl", "rustls"),
        ("gnutls", "openssl"),
        ("rustls", "gnutls"),
    ] {
        for policy in ["exim", "hardened"] {
            let case = format!("server {server}, client {client}, {policy}");
            let srv = Server::start(&[
                "--backend",
                server,
                "--verify-hosts",
                "127.0.0.1",
                "--policy",
                policy,
                "--max-connections",
                "3",
            ]);
            let r = run(&[
                "probe",
                &srv.addr,
                "--backend",
                client,
                "--count",
                "1",
                "--json",
            ]);
            assert_eq!(r.code, Some(1), "{case}: {r:?}");
            assert!(
                r.stdout.contains("\"error_kind\":\"certificate\""),
                "{case}: {r:?}"
            );
            let refused = srv.line();
            assert!(
                refused.contains("TLS error") && refused.contains("presented no certificate"),
                "{case}: {refused}"
            );
            let r = run(&[
                "probe",
                &srv.addr,
                "--backend",
                client,
                "--policy",
                policy,
                "--client-cert",
                &cert,
                "--client-key",
                &key,
            ]);
            assert_eq!(r.code, Some(0), "{case}: {r:?}");
            let first = srv.line();
            assert!(
                first.contains(" CV=yes")
                    && first.contains("DN=\"CN=client.tlsresume.test,O=tlsresume test\""),
                "{case}: {first}"
            );
            let resumed = srv.line();
            let expected = if server == "openssl" && policy == "exim" {
                "* CV=no"
            } else {
                "* CV=yes"
            };
            assert!(resumed.contains(expected), "{case}: {resumed}");
            assert_eq!(srv.wait_exit(), Some(0), "{case}");
        }
    }
}

/// `serve --ciphers` and `probe --ciphers` on every backend: one suite named on either end is
/// the suite the probe's library reports; disjoint lists fail the handshake; a list the
/// backend cannot carry out stops `serve` and `probe` at start, naming the backend.
#[test]
fn serve_and_probe_ciphers_restrict_what_is_negotiated() {
    let pairs = [
        ("openssl", "gnutls"),
        ("gnutls", "rustls"),
        ("rustls", "openssl"),
    ];
    for (server, client) in pairs {
        for suite in [
            "TLS_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ] {
            let srv = Server::start(&["--backend", server, "--ciphers", suite]);
            let case = format!("serve --backend {server} --ciphers {suite}, {client} probe");
            let r = run(&[
                "probe",
                &srv.addr,
                "--backend",
                client,
                "--count",
                "1",
                "--json",
            ]);
            assert_eq!(r.code, Some(0), "{case}: {r:?}");
            assert!(
                r.stdout.contains(&format!("\"cipher_iana\":\"{suite}\"")),
                "{case}: {r:?}"
            );
            let case = format!("{server} server, probe --backend {client} --ciphers {suite}");
            let srv = Server::start(&["--backend", server]);
            let r = run(&[
                "probe",
                &srv.addr,
                "--backend",
                client,
                "--ciphers",
                suite,
                "--count",
                "1",
                "--json",
            ]);
            assert_eq!(r.code, Some(0), "{case}: {r:?}");
            assert!(
                r.stdout.contains(&format!("\"cipher_iana\":\"{suite}\"")),
                "{case}: {r:?}"
            );
        }
        let srv = Server::start(&["--backend", server, "--ciphers", "TLS_AES_256_GCM_SHA384"]);
        let r = run(&[
            "probe",
            &srv.addr,
            "--backend",
            client,
            "--ciphers",
            "TLS_AES_128_GCM_SHA256",
            "--count",
            "1",
            "--json",
        ]);
        assert_eq!(r.code, Some(1), "disjoint, {server} server: {r:?}");
        assert!(r.stdout.contains("\"error_kind\""), "{r:?}");
        let refused = srv.line();
        assert!(refused.contains("TLS error"), "{refused}");
    }
    // rustls has no CBC suites; GnuTLS cannot allow exactly a TLS 1.3 suite and a TLS 1.2 suite
    // of other ciphers (it restricts by cipher, MAC and key exchange).
    for (backend, list) in [
        ("rustls", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
        (
            "gnutls",
            "TLS_AES_128_GCM_SHA256:TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
    ] {
        let r = run(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--backend",
            backend,
            "--ciphers",
            list,
        ]);
        assert_ne!(r.code, Some(0), "serve --backend {backend}: {r:?}");
        assert!(r.stdout.is_empty(), "{r:?}");
        assert!(
            r.stderr.contains(&format!("the {backend} backend")) && r.stderr.contains("ciphers"),
            "serve --backend {backend}: {r:?}"
        );
        let r = run(&[
            "probe",
            "127.0.0.1:9",
            "--backend",
            backend,
            "--ciphers",
            list,
        ]);
        assert_ne!(r.code, Some(0), "probe --backend {backend}: {r:?}");
        assert!(
            r.stderr.contains(&format!("the {backend} backend")),
            "probe --backend {backend}: {r:?}"
        );
    }
    assert_one_line_error(
        &run(&[
            "probe",
            "127.0.0.1:9",
            "--ciphers",
            "ECDHE-RSA-AES128-GCM-SHA256",
        ]),
        "not an IANA cipher suite name",
    );
}

/// A suite the installed OpenSSL disables (here by a system configuration raising the security
/// level to 3, which drops key exchanges without forward secrecy, as a hardened host would)
/// stops `serve` and `probe` at start, naming the OpenSSL backend and what it can use; without
/// that configuration the same list is taken.
#[test]
fn serve_and_probe_refuse_a_suite_the_installed_openssl_disables() {
    let dir = std::env::temp_dir().join(format!("tlsresume-cli-{}-seclevel", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let conf = dir.join("openssl.cnf");
    std::fs::write(
        &conf,
        "openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = sys\n\
         [sys]\nCipherString = DEFAULT:@SECLEVEL=3\n",
    )
    .expect("write openssl.cnf");
    let suite = "TLS_RSA_WITH_AES_128_GCM_SHA256";
    for args in [
        vec!["serve", "--listen", "127.0.0.1:0", "--backend", "openssl"],
        vec![
            "probe",
            "127.0.0.1:9",
            "--backend",
            "openssl",
            "--count",
            "1",
        ],
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .args(["--ciphers", suite])
            .env("OPENSSL_CONF", &conf)
            .stdin(Stdio::null())
            .output()
            .expect("run tlsresume");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("the openssl backend")
                && stderr.contains(&format!("cannot use {suite}"))
                && stderr.contains("it can use: TLS_AES_256_GCM_SHA384"),
            "{args:?}: {stderr}"
        );
    }
    // The same list on the default configuration: taken (the probe then finds no server).
    let r = run(&[
        "probe",
        "127.0.0.1:9",
        "--backend",
        "openssl",
        "--count",
        "1",
        "--ciphers",
        suite,
    ]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stdout.contains("connect"), "{r:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
