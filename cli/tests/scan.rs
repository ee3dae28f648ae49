//! `tlsresume scan` against servers whose settings are known, on loopback: `openssl s_server`
//! (with and without `-no_ticket`, with `-num_tickets`), `gnutls-serv`, `serve` on each backend
//! with and without `--resumption-hosts`, two `serve` nodes with and without shared ticket keys
//! (Redis), `serve --pipe-connect` and Exim; where testssl.sh is installed, its verdicts on the
//! same servers. A missing peer tool fails the test under `CI` and prints `SKIPPED` otherwise.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{pki, run, Server};
use tlsresume_compare::exim::Exim;

/// Whether `tool` runs; otherwise fails under `CI` and says SKIPPED.
fn have(tool: &str, args: &[&str], package: &str) -> bool {
    let ok = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is needed under CI (Debian package {package})"
        );
        eprintln!("SKIPPED: {tool} is not installed (Debian: apt-get install -y {package})");
    }
    ok
}

/// A free loopback port.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A peer server process, killed on drop.
struct Peer {
    child: Child,
    addr: String,
}

/// How long a peer server may take to listen (it is used as soon as it does).
const LISTEN_WAIT: Duration = Duration::from_secs(60);

impl Peer {
    /// Starts `make(port)` on `port`, or on a free port when `None`, and waits until it
    /// listens: until it prints `listening(port)` when given (gnutls-serv, which keeps running
    /// when its bind fails), else until the port accepts connections. A free port can be taken
    /// by another process before the server binds it: when the server says "Address already in
    /// use" or exits, another free port is tried.
    fn start(
        make: impl Fn(u16) -> Command,
        port: Option<u16>,
        listening: Option<fn(u16) -> String>,
    ) -> Self {
        let mut said = String::new();
        for _ in 0..5 {
            let at = port.unwrap_or_else(free_port);
            let mut command = make(at);
            let mut child = command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn the peer server");
            let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            for stream in [
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
            ]
            .into_iter()
            .flatten()
            {
                let output = output.clone();
                // Read to the end, so that the server never blocks on a full pipe.
                thread::spawn(move || {
                    let mut stream = stream;
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        if let Ok(mut o) = output.lock() {
                            o.push_str(&String::from_utf8_lossy(&buf[..n]));
                        }
                    }
                });
            }
            let said_now = || output.lock().map(|o| o.clone()).unwrap_or_default();
            let mut peer = Self {
                child,
                addr: format!("127.0.0.1:{at}"),
            };
            let sock: SocketAddr = peer.addr.parse().expect("address");
            let deadline = Instant::now() + LISTEN_WAIT;
            loop {
                let out = said_now();
                let exited = matches!(peer.child.try_wait(), Ok(Some(_)));
                if exited || out.contains("Address already in use") {
                    // Killed (dropped) before the next try.
                    said = out;
                    break;
                }
                let ready = match listening {
                    Some(line) => out.contains(&line(at)),
                    None => TcpStream::connect_timeout(&sock, Duration::from_millis(200)).is_ok(),
                };
                if ready {
                    return peer;
                }
                assert!(
                    Instant::now() < deadline,
                    "{command:?} did not listen within {LISTEN_WAIT:?}:\n{out}"
                );
                thread::sleep(Duration::from_millis(20));
            }
            assert!(
                port.is_none(),
                "{command:?} could not listen on {at}:\n{said}"
            );
        }
        panic!("no free port to listen on after 5 tries:\n{said}");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `openssl s_server` on a free port with `args`.
fn s_server(args: &[&str]) -> Peer {
    Peer::start(|port| s_server_command(port, args), None, None)
}

/// `openssl s_server` on `port` with `args`.
fn s_server_on(port: u16, args: &[&str]) -> Peer {
    Peer::start(|port| s_server_command(port, args), Some(port), None)
}

fn s_server_command(port: u16, args: &[&str]) -> Command {
    let mut c = Command::new("openssl");
    c.args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
        .args([
            "-cert",
            &pki("server-ecdsa.pem"),
            "-key",
            &pki("server-ecdsa.key"),
        ])
        .arg("-quiet")
        .args(args);
    c
}

/// `gnutls-serv` on a free port with `args`, once it says it listens on IPv4 (it binds every
/// interface, IPv4 and IPv6 apart, and carries on when a bind fails).
fn gnutls_serv(args: &[&str]) -> Peer {
    let make = |port: u16| {
        let mut c = Command::new("gnutls-serv");
        c.args(["--port", &port.to_string(), "--echo"])
            .args(["--x509certfile", &pki("server-ecdsa.pem")])
            .args(["--x509keyfile", &pki("server-ecdsa.key")])
            .args(args);
        c
    };
    Peer::start(
        make,
        None,
        Some(|port| format!("listening on IPv4 0.0.0.0 port {port}...done")),
    )
}

/// `scan --json` of `targets` with `args`; the parsed report.
fn scan(targets: &[&str], args: &[&str]) -> Value {
    let mut all = vec!["scan", "--json", "--wait", "300"];
    all.extend_from_slice(targets);
    all.extend_from_slice(args);
    let r = run(&all);
    assert_eq!(r.code, Some(0), "{r:?}");
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("JSON ({e}): {r:?}"))
}

/// Check `id` of TLS `version` on target `t`.
fn check<'a>(v: &'a Value, t: usize, version: &str, id: &str) -> &'a Value {
    let c = &v["targets"][t]["versions"][version]["checks"][id];
    assert!(c.is_object(), "no check {id} for TLS {version}: {v}");
    c
}

fn verdict(v: &Value, t: usize, version: &str, id: &str) -> String {
    let c = check(v, t, version, id);
    let verdict = c["verdict"].as_str().unwrap_or_default().to_owned();
    if verdict == "no" || verdict == "unknown" {
        assert!(
            c["reason"].as_str().is_some_and(|r| r.len() > 10),
            "a '{verdict}' without a reason: {c}"
        );
    }
    verdict
}

fn value<'a>(v: &'a Value, t: usize, version: &str, id: &str) -> &'a Value {
    &check(v, t, version, id)["value"]
}

#[test]
fn openssl_s_server_with_num_tickets() {
    if !have("openssl", &["version"], "openssl") {
        return;
    }
    let server = s_server(&["-num_tickets", "3"]);
    let v = scan(&[&server.addr], &[]);
    // TLS 1.3: the configured three tickets, OpenSSL's 7200 s default lifetime, one new ticket
    // on a resumed handshake (OpenSSL sends one after a resumption), a ticket accepted twice
    // (stateless tickets), the same key name on all.
    assert_eq!(value(&v, 0, "1.3", "tickets_per_handshake"), 3, "{v}");
    assert_eq!(value(&v, 0, "1.3", "lifetime_hint"), 7200, "{v}");
    assert_eq!(value(&v, 0, "1.3", "reissue"), 1, "{v}");
    assert_eq!(verdict(&v, 0, "1.3", "ticket_reuse"), "yes");
    assert_eq!(verdict(&v, 0, "1.3", "key_name"), "yes");
    assert_eq!(verdict(&v, 0, "1.3", "max_early_data"), "no");
    assert_eq!(
        value(&v, 0, "1.3", "psk_modes")["used"],
        "psk_dhe_ke",
        "{v}"
    );
    // TLS 1.2: tickets and session IDs, both resume; the ticket is not renewed.
    assert_eq!(verdict(&v, 0, "1.2", "tickets"), "yes");
    assert_eq!(verdict(&v, 0, "1.2", "session_ids"), "yes");
    assert_eq!(verdict(&v, 0, "1.2", "resume_ticket"), "yes");
    assert_eq!(verdict(&v, 0, "1.2", "reissue"), "no");
    assert_eq!(value(&v, 0, "1.2", "lifetime_hint"), 7200, "{v}");
    assert_eq!(verdict(&v, 0, "1.2", "key_name"), "yes");
    // Every client resumes its second and third connections.
    for version in ["1.2", "1.3"] {
        assert_eq!(verdict(&v, 0, version, "third_connection"), "yes", "{v}");
    }

    let none = s_server(&["-num_tickets", "0"]);
    let v = scan(&[&none.addr], &["--tls", "1.3"]);
    assert_eq!(value(&v, 0, "1.3", "tickets_per_handshake"), 0, "{v}");
    assert_eq!(verdict(&v, 0, "1.3", "tickets"), "no");
    assert_eq!(verdict(&v, 0, "1.3", "resume_ticket"), "no");
    assert!(v["targets"][0]["versions"].get("1.2").is_none(), "{v}");
}

#[test]
fn openssl_s_server_without_tickets_resumes_by_id() {
    if !have("openssl", &["version"], "openssl") {
        return;
    }
    let server = s_server(&["-no_ticket"]);
    let v = scan(&[&server.addr], &["--tls", "1.2"]);
    assert_eq!(verdict(&v, 0, "1.2", "tickets"), "no");
    assert!(
        check(&v, 0, "1.2", "tickets")["reason"]
            .as_str()
            .is_some_and(|r| r.contains("session_ticket extension")),
        "{v}"
    );
    assert_eq!(verdict(&v, 0, "1.2", "session_ids"), "yes");
    assert_eq!(verdict(&v, 0, "1.2", "resume_ticket"), "no");
}

#[test]
fn gnutls_serv_defaults_and_without_tickets() {
    if !have("gnutls-serv", &["--version"], "gnutls-bin") {
        return;
    }
    let server = gnutls_serv(&[]);
    let v = scan(&[&server.addr], &[]);
    // GnuTLS: two TLS 1.3 tickets after every handshake, resumed or not; tickets and session
    // IDs (its session database) in TLS 1.2; the 6 h default expiry as the hint.
    assert_eq!(value(&v, 0, "1.3", "tickets_per_handshake"), 2, "{v}");
    assert_eq!(value(&v, 0, "1.3", "reissue"), 2, "{v}");
    assert_eq!(value(&v, 0, "1.3", "lifetime_hint"), 21600, "{v}");
    assert_eq!(verdict(&v, 0, "1.2", "tickets"), "yes");
    assert_eq!(verdict(&v, 0, "1.2", "session_ids"), "yes");
    assert_eq!(verdict(&v, 0, "1.3", "key_name"), "yes");

    let no_ticket = gnutls_serv(&["--noticket"]);
    let v = scan(&[&no_ticket.addr], &["--tls", "1.2"]);
    assert_eq!(verdict(&v, 0, "1.2", "tickets"), "no");
    assert_eq!(verdict(&v, 0, "1.2", "session_ids"), "yes");
}

/// `serve --backend BACKEND` (under each policy), and the same with `--resumption-hosts
/// '!127.0.0.1'`: tickets per handshake and re-issue as the backend does them (`tickets`,
/// `reissue`), no session IDs, no ticket at all for an excluded client.
fn serve_backend(backend: &str, tickets: u64, reissue: u64) {
    let server = Server::start(&["--backend", backend]);
    let excluded = Server::start(&["--backend", backend, "--resumption-hosts", "!127.0.0.1"]);
    let hardened = Server::start(&["--backend", backend, "--policy", "hardened"]);
    // The server's policy changes what it reports, not the tickets it sends.
    let v = scan(&[&hardened.addr], &["--tls", "1.3"]);
    assert_eq!(value(&v, 0, "1.3", "tickets_per_handshake"), tickets, "{v}");
    assert_eq!(value(&v, 0, "1.3", "reissue"), reissue, "{v}");
    let v = scan(&[&server.addr], &[]);
    let case = format!("serve --backend {backend}: {v}");
    assert_eq!(
        value(&v, 0, "1.3", "tickets_per_handshake"),
        tickets,
        "{case}"
    );
    assert_eq!(value(&v, 0, "1.3", "reissue"), reissue, "{case}");
    assert_eq!(value(&v, 0, "1.3", "lifetime_hint"), 7200, "{case}");
    assert_eq!(value(&v, 0, "1.2", "lifetime_hint"), 7200, "{case}");
    assert_eq!(verdict(&v, 0, "1.2", "session_ids"), "no", "{case}");
    assert_eq!(verdict(&v, 0, "1.2", "resume_ticket"), "yes", "{case}");
    assert_eq!(verdict(&v, 0, "1.3", "resume_ticket"), "yes", "{case}");
    // A single-use client (rustls) resumes its third connection only with a re-issued ticket.
    let third = &value(&v, 0, "1.3", "third_connection")["rustls"];
    assert_eq!(third["resumed"], reissue > 0, "{case}");
    if reissue == 0 {
        let why = check(&v, 0, "1.3", "third_connection")["reason"]
            .as_str()
            .unwrap_or_default();
        assert!(
            why.contains("rustls: this client uses a TLS 1.3 ticket once"),
            "{case}"
        );
        assert_eq!(verdict(&v, 0, "1.3", "reissue"), "no", "{case}");
    }

    let v = scan(&[&excluded.addr], &[]);
    for version in ["1.2", "1.3"] {
        assert_eq!(
            verdict(&v, 0, version, "tickets"),
            "no",
            "{backend} excluded: {v}"
        );
        assert_eq!(verdict(&v, 0, version, "resume_ticket"), "no", "{v}");
    }
}

#[test]
fn serve_openssl_sends_no_ticket_on_a_resumed_tls13_handshake() {
    serve_backend("openssl", 1, 0);
}

#[test]
fn serve_gnutls_sends_two_tickets_every_time() {
    serve_backend("gnutls", 2, 2);
}

#[test]
fn serve_rustls_sends_one_ticket_every_time() {
    serve_backend("rustls", 1, 1);
}

/// A scratch directory of this test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsresume-scan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[cfg(feature = "stores")]
#[test]
fn two_nodes_share_ticket_keys_only_through_redis() {
    use std::os::unix::fs::PermissionsExt;
    let Some(redis) = tlsresume_compare::redis::RedisServer::start() else {
        return;
    };
    let dir = scratch("fleet");
    let kek = dir.join("kek");
    std::fs::write(
        &kek,
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    )
    .expect("KEK");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let kek = kek.display().to_string();
    let url = redis.url();
    let fleet = [
        "--backend",
        "openssl",
        "--ticket-keys",
        &url,
        "--kek-file",
        &kek,
    ];
    let (a, b) = (Server::start(&fleet), Server::start(&fleet));
    let v = scan(&[&a.addr, &b.addr], &[]);
    for version in ["1.2", "1.3"] {
        let c = &v["fleet"][version]["checks"]["shared_keys"];
        assert_eq!(c["verdict"], "yes", "TLS {version}: {v}");
        assert_eq!(c["value"]["shared"], true, "{v}");
    }
    // The key name is the fleet's: the same on both nodes.
    assert_eq!(
        value(&v, 0, "1.3", "key_name"),
        value(&v, 1, "1.3", "key_name"),
        "{v}"
    );

    let (c, d) = (
        Server::start(&["--backend", "openssl"]),
        Server::start(&["--backend", "openssl"]),
    );
    let v = scan(&[&c.addr, &d.addr], &[]);
    for version in ["1.2", "1.3"] {
        let check = &v["fleet"][version]["checks"]["shared_keys"];
        assert_eq!(check["verdict"], "no", "TLS {version}: {v}");
        assert!(
            check["reason"]
                .as_str()
                .is_some_and(|r| r.contains("not shared")),
            "{v}"
        );
    }
    assert_ne!(
        value(&v, 0, "1.3", "key_name"),
        value(&v, 1, "1.3", "key_name"),
        "{v}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn smtp_pipe_connect_and_a_stable_ehlo_response() {
    let early = Server::start(&["--starttls", "smtp", "--pipe-connect"]);
    let plain = Server::start(&["--starttls", "smtp"]);
    let v = scan(&[&early.addr], &["--starttls", "smtp", "--tls", "1.3"]);
    let smtp = &v["targets"][0]["smtp"]["checks"];
    assert_eq!(smtp["pipe_connect"]["verdict"], "yes", "{v}");
    assert_eq!(smtp["early_commands"]["verdict"], "yes", "{v}");
    assert_eq!(smtp["ehlo_stable"]["verdict"], "yes", "{v}");
    assert_eq!(verdict(&v, 0, "1.3", "resume_ticket"), "yes");

    let v = scan(&[&plain.addr], &["--starttls", "smtp", "--tls", "1.3"]);
    let smtp = &v["targets"][0]["smtp"]["checks"];
    assert_eq!(smtp["pipe_connect"]["verdict"], "no", "{v}");
    assert!(smtp["pipe_connect"]["reason"].is_string(), "{v}");
    assert_eq!(smtp["early_commands"]["verdict"], "no", "{v}");
    assert!(smtp["ehlo"]["value"]
        .as_array()
        .is_some_and(|k| k.iter().any(|k| k == "STARTTLS")));
}

#[test]
fn text_output_fits_a_screen_and_every_no_says_why() {
    let a = Server::start(&["--backend", "openssl"]);
    let b = Server::start(&["--backend", "rustls", "--resumption-hosts", "!127.0.0.1"]);
    let r = run(&["scan", &a.addr, &b.addr, "--wait", "300"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines.len() <= 100, "{} lines:\n{}", lines.len(), r.stdout);
    assert!(
        lines.iter().all(|l| l.chars().count() <= 120),
        "{}",
        r.stdout
    );
    // Each check: its first line and the lines wrapped under it.
    let mut checks: Vec<String> = Vec::new();
    for line in &lines {
        if line.starts_with("   ") {
            if let Some(last) = checks.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else if line.starts_with("  ") {
            checks.push(line.trim().to_owned());
        }
    }
    let nos: Vec<&String> = checks
        .iter()
        .filter(|c| c.starts_with("no ") || c.starts_with("unknown "))
        .collect();
    assert!(nos.len() >= 5, "{}", r.stdout);
    assert!(nos.iter().all(|c| c.contains(" - ")), "{nos:#?}");
    assert!(r.stdout.contains("summary: TLS 1.3"), "{}", r.stdout);
    // OpenSSL's server sends no new TLS 1.3 ticket on a resumed handshake: said up front.
    assert!(
        r.stdout
            .contains("attention: TLS 1.3: no new ticket on a resumed handshake"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("== across the addresses"), "{}", r.stdout);
}

/// Exim from Debian (`exim4-daemon-heavy`) on a free loopback port with a minimal
/// configuration: STARTTLS with the test PKI, every recipient refused; with `resumption`,
/// `tls_resumption_hosts = *`; `pipelining_connect_advertise_hosts` is `*` with `pipe_connect`
/// and empty without.
/// `None` (SKIPPED, or a failure under CI) when it cannot run here.
fn exim(dir: &std::path::Path, resumption: bool, pipe_connect: bool) -> Option<Exim> {
    let mut main = String::from("acl_smtp_rcpt = acl_rcpt\n");
    if resumption {
        main.push_str("tls_resumption_hosts = *\n");
    }
    // Exim 4.96 advertises PIPECONNECT to every host unless told otherwise.
    main.push_str(if pipe_connect {
        "pipelining_connect_advertise_hosts = *\n"
    } else {
        "pipelining_connect_advertise_hosts =\n"
    });
    tlsresume_compare::exim::start(
        dir,
        &main,
        "begin acl\nacl_rcpt:\n  deny message = no relay\nbegin routers\nbegin transports\n",
    )
}

#[test]
fn exim_with_and_without_resumption_and_pipe_connect() {
    let dir = scratch("exim-on");
    let Some(on) = exim(&dir, true, true) else {
        return;
    };
    let off_dir = scratch("exim-off");
    let Some(off) = exim(&off_dir, false, false) else {
        return;
    };
    let v = scan(&[&on.addr], &["--starttls", "smtp"]);
    // Exim over GnuTLS with tls_resumption_hosts: tickets on both versions with Exim's 2 h
    // lifetime, two TLS 1.3 tickets after every handshake (GnuTLS), no session-ID cache.
    assert_eq!(value(&v, 0, "1.3", "tickets_per_handshake"), 2, "{v}");
    assert_eq!(value(&v, 0, "1.3", "reissue"), 2, "{v}");
    assert_eq!(value(&v, 0, "1.3", "lifetime_hint"), 7200, "{v}");
    assert_eq!(value(&v, 0, "1.2", "lifetime_hint"), 7200, "{v}");
    assert_eq!(verdict(&v, 0, "1.2", "resume_ticket"), "yes");
    assert_eq!(verdict(&v, 0, "1.2", "session_ids"), "no");
    assert_eq!(verdict(&v, 0, "1.3", "third_connection"), "yes");
    let smtp = &v["targets"][0]["smtp"]["checks"];
    assert_eq!(smtp["pipe_connect"]["verdict"], "yes", "{v}");
    assert_eq!(smtp["early_commands"]["verdict"], "yes", "{v}");
    assert_eq!(smtp["ehlo_stable"]["verdict"], "yes", "{v}");

    let v = scan(&[&off.addr], &["--starttls", "smtp"]);
    for version in ["1.2", "1.3"] {
        assert_eq!(verdict(&v, 0, version, "tickets"), "no", "{v}");
        assert_eq!(verdict(&v, 0, version, "resume_ticket"), "no", "{v}");
    }
    let smtp = &v["targets"][0]["smtp"]["checks"];
    assert_eq!(smtp["pipe_connect"]["verdict"], "no", "{v}");
    assert_eq!(smtp["early_commands"]["verdict"], "no", "{v}");
    drop((on, off));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&off_dir);
}

/// testssl.sh's findings `id` → `finding` for `addr` (its `-S` server defaults, JSON file).
fn testssl(binary: &str, addr: &str, dir: &std::path::Path) -> Vec<(String, String)> {
    let file = dir.join(format!("{}.json", addr.replace([':', '.'], "_")));
    let out = Command::new(binary)
        .args([
            "--quiet",
            "--color",
            "0",
            "--warnings",
            "off",
            "-S",
            "--jsonfile",
        ])
        .arg(&file)
        .arg(addr)
        .stdin(Stdio::null())
        .output()
        .expect("run testssl");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("testssl wrote no {file:?} ({e}): {out:?}"));
    let findings: Value = serde_json::from_str(&text).expect("testssl's JSON");
    findings
        .as_array()
        .expect("a list of findings")
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap_or_default().to_owned(),
                f["finding"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn verdicts_agree_with_testssl_on_the_same_servers() {
    let Some(binary) = ["testssl", "testssl.sh"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
    else {
        have("testssl", &["--version"], "testssl.sh");
        return;
    };
    if !have("openssl", &["version"], "openssl") {
        return;
    }
    // TLS 1.2 only, where testssl's "ID" is a session-ID resumption: tickets without a
    // session cache, and a session cache without tickets.
    let servers = [
        s_server(&["-tls1_2", "-no_cache"]),
        s_server(&["-tls1_2", "-no_ticket"]),
    ];
    let dir = scratch("testssl");
    let theirs: Vec<Vec<(String, String)>> = thread::scope(|s| {
        let runs: Vec<_> = servers
            .iter()
            .map(|p| {
                let dir = &dir;
                s.spawn(move || testssl(binary, &p.addr, dir))
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("testssl thread"))
            .collect()
    });
    for (server, findings) in servers.iter().zip(&theirs) {
        let find = |id: &str| {
            findings
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, f)| f.clone())
                .unwrap_or_else(|| panic!("testssl gave no {id}: {findings:?}"))
        };
        let v = scan(&[&server.addr], &["--tls", "1.2"]);
        let case = format!("{}: testssl {findings:?}, scan {v}", server.addr);
        let supported = |f: String| f == "supported";
        assert_eq!(
            supported(find("sessionresumption_ticket")),
            verdict(&v, 0, "1.2", "resume_ticket") == "yes",
            "tickets: {case}"
        );
        assert_eq!(
            supported(find("sessionresumption_ID")),
            verdict(&v, 0, "1.2", "session_ids") == "yes",
            "IDs: {case}"
        );
        // "valid for 7200 seconds only (<daily)", or "no -- no lifetime advertised".
        let hint: Option<u64> = find("TLS_session_ticket")
            .strip_prefix("valid for ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok());
        assert_eq!(
            hint,
            value(&v, 0, "1.2", "lifetime_hint").as_u64(),
            "hint: {case}"
        );
    }
    // The two servers differ on both checks, so agreement is not by default.
    let resumption = |findings: &Vec<(String, String)>| {
        findings
            .iter()
            .filter(|(id, _)| id.starts_with("sessionresumption_"))
            .cloned()
            .collect::<Vec<_>>()
    };
    let (a, b) = (resumption(&theirs[0]), resumption(&theirs[1]));
    assert_eq!(a.len(), 2, "{a:?}");
    assert!(a.iter().zip(&b).all(|(x, y)| x.1 != y.1), "{a:?} {b:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn what_changes_on_resumption_is_each_clients_known_issue() {
    let ocsp = pki("server-ecdsa.ocsp.der");
    let server = Server::start(&["--backend", "openssl", "--ocsp", &ocsp]);
    let exim = scan(&[&server.addr], &["--tls", "1.3"]);
    let hardened = scan(&[&server.addr], &["--tls", "1.3", "--policy", "hardened"]);
    assert_eq!(
        value(&exim, 0, "1.3", "handshake")["ocsp_stapled"],
        true,
        "{exim}"
    );
    // No staple on a resumed handshake: Exim's OpenSSL client reports OCSP=1 and CV=no (its
    // verify callback is not called); hardened carries the full handshake's results.
    let o = &value(&exim, 0, "1.3", "on_resumption")["openssl"];
    assert_eq!(
        (o["ocsp_full"].as_u64(), o["ocsp_resumed"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(
        (o["cv_full"].as_str(), o["cv_resumed"].as_str()),
        (Some("yes"), Some("no"))
    );
    assert!(check(&exim, 0, "1.3", "on_resumption")["mta"]
        .as_str()
        .is_some_and(|m| m.contains("hosts_require_ocsp")));
    let h = &value(&hardened, 0, "1.3", "on_resumption")["openssl"];
    assert_eq!(
        (h["ocsp_resumed"].as_u64(), h["cv_resumed"].as_str()),
        (Some(4), Some("yes"))
    );
    assert!(check(&exim, 0, "1.3", "resume_ticket")["evidence"]
        .as_str()
        .is_some_and(|e| e.ends_with("OCSP staple no")));
}

#[test]
fn watch_sees_a_restarted_server_change_its_ticket_key() {
    if !have("openssl", &["version"], "openssl") {
        return;
    }
    let port = free_port();
    let first = s_server_on(port, &[]);
    let addr = first.addr.clone();
    let scan = thread::spawn(move || {
        run(&[
            "scan", &addr, "--tls", "1.3", "--wait", "200", "--watch", "6s", "--json",
        ])
    });
    // A restart midway: s_server makes a new ticket key, and forgets the old one.
    thread::sleep(Duration::from_millis(3500));
    drop(first);
    let _second = s_server_on(port, &[]);
    let r = scan.join().expect("scan thread");
    assert_eq!(r.code, Some(0), "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
    let watch = &v["targets"][0]["watch"];
    assert_eq!(watch["tls"], "1.3", "{v}");
    let changes = &watch["checks"]["key_changes"];
    assert_eq!(changes["verdict"], "yes", "{v}");
    let change = &changes["value"][0];
    assert_ne!(change["from"], change["to"], "{v}");
    assert_eq!(&change["from"], value(&v, 0, "1.3", "key_name"), "{v}");
    let old = &watch["checks"]["old_tickets"];
    assert_eq!(old["verdict"], "no", "{v}");
    assert!(old["reason"].is_string(), "{v}");
    assert!(old["value"][0]["stopped_at_seconds"].is_u64(), "{v}");
}

#[test]
fn bad_arguments_give_one_clear_line() {
    for (args, mentions) in [
        (&["scan", "127.0.0.1:1", "--watch", "5x"][..], "--watch"),
        (&["scan", "127.0.0.1:1", "--tls", "1.1"], "1.1"),
        (&["scan", "127.0.0.1:1", "--policy", "lax"], "lax"),
        (&["scan", "no-port-here:"], "HOST:PORT"),
    ] {
        common::assert_one_line_error(&run(args), mentions);
    }
}
