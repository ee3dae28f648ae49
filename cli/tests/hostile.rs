//! Hostile peers against `serve` and `probe`, over loopback, bounded in count and time: a
//! tarpit holding the probe, silent peers (timeouts said as timeouts, in the log and in
//! `probe --json`), one address holding more than its share (`--max-per-address`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::{run, Server};

const BACKENDS: [&str; 3] = ["openssl", "gnutls", "rustls"];

/// A server that reads what comes first and answers `answer` five bytes a second, for up to
/// `hold`; gives its address.
fn tarpit(answer: &'static [u8], hold: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else {
            return;
        };
        let _ = tcp.set_read_timeout(Some(Duration::from_millis(500)));
        let mut first = [0u8; 4096];
        let _ = tcp.read(&mut first);
        let started = Instant::now();
        for byte in answer.iter().cycle() {
            if started.elapsed() > hold || tcp.write_all(&[*byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
    });
    addr
}

/// The connection object of a `probe --json` run (its first line).
fn connection_json(stdout: &str) -> serde_json::Value {
    let first = stdout.lines().next().unwrap_or_default();
    serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// `probe --timeout 3` against a server answering its ClientHello five bytes a second (a
/// handshake record announcing 16 KiB, then its body) ends at its overall deadline (twice
/// --timeout) with an I/O error saying the connection deadline passed, on every backend.
#[test]
fn probe_against_a_tarpit_ends_at_its_deadline() {
    let mut record = vec![22u8, 3, 3, 0x40, 0x00];
    record.extend([0u8; 59]);
    let record: &'static [u8] = record.leak();
    let runs: Vec<_> = BACKENDS
        .iter()
        .map(|backend| {
            let addr = tarpit(record, Duration::from_secs(30));
            thread::spawn(move || {
                let started = Instant::now();
                let r = run(&[
                    "probe",
                    &addr,
                    "--backend",
                    backend,
                    "--timeout",
                    "3",
                    "--count",
                    "1",
                    "--json",
                ]);
                (backend, started.elapsed(), r)
            })
        })
        .collect();
    for handle in runs {
        let (backend, took, r) = handle.join().expect("probe run");
        println!("tarpit {backend}: probe --timeout 3 ended after {took:?}");
        assert_eq!(r.code, Some(1), "{backend}: {r:?}");
        let v = connection_json(&r.stdout);
        let error = v["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("the connection deadline passed"),
            "{backend}: {r:?}"
        );
        assert_eq!(v["error_kind"], "io", "{backend}: {r:?}");
        assert!(
            took >= Duration::from_secs(6) && took < Duration::from_secs(8),
            "{backend}: probe ended after {took:?}"
        );
    }
}

/// `scan` against a server that answers every connection with a record header claiming 16 KiB
/// and then dribbles five bytes a second: each of its connections is cut at the scan's
/// connection deadline (twice `--timeout` plus `--wait`), so the whole scan ends in bounded
/// time, where the socket's read timeout alone (restarted by every byte) held each connection
/// for as long as the server kept dribbling.
#[test]
fn scan_against_a_tarpit_ends_in_bounded_time() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let hold = Duration::from_secs(60);
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { return };
            thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_millis(500)));
                let _ = tcp.read(&mut [0u8; 4096]);
                let mut record = vec![22u8, 3, 3, 0x40, 0x00];
                record.extend([0u8; 59]);
                let started = Instant::now();
                for byte in record.iter().cycle() {
                    if started.elapsed() > hold || tcp.write_all(&[*byte]).is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(200));
                }
            });
        }
    });
    let started = Instant::now();
    let r = run(&[
        "scan",
        &addr,
        "--tls",
        "1.3",
        "--timeout",
        "1",
        "--wait",
        "100",
        "--json",
    ]);
    let took = started.elapsed();
    println!("tarpit: scan --timeout 1 ended after {took:?}");
    assert!(r.stdout.contains("deadline passed"), "{r:?}");
    assert!(
        took < Duration::from_secs(45),
        "scan ended after {took:?}: {r:?}"
    );
}

/// A server that says nothing: `probe --starttls smtp` says its idle read timeout passed (not
/// "Resource temporarily unavailable"), as text and in `--json` (an I/O failure).
#[test]
fn probe_says_its_idle_timeout_passed() {
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr").to_string();
    let held = thread::spawn(move || {
        let conns: Vec<TcpStream> = silent.incoming().take(2).filter_map(Result::ok).collect();
        thread::sleep(Duration::from_secs(3));
        drop(conns);
    });
    let base = ["probe", &addr, "--starttls", "smtp", "--timeout", "1"];
    let text = run(&[&base[..], &["--count", "1"]].concat());
    assert!(
        text.stdout
            .contains("failed: SMTP before STARTTLS: the idle read timeout passed"),
        "{text:?}"
    );
    let json = run(&[&base[..], &["--count", "1", "--json"]].concat());
    let v = connection_json(&json.stdout);
    assert_eq!(
        v["error"], "SMTP before STARTTLS: the idle read timeout passed",
        "{json:?}"
    );
    assert_eq!(v["error_kind"], "io", "{json:?}");
    let _ = held.join();
}

/// A client that connects and says nothing: `serve` logs that the idle read timeout passed
/// during the handshake (TLS from the first byte, every backend) and before STARTTLS.
#[test]
fn serve_says_its_idle_timeout_passed() {
    for backend in BACKENDS {
        let srv = Server::start(&["--backend", backend, "--timeout", "1"]);
        let _quiet = TcpStream::connect(&srv.addr).expect("connect");
        let line = srv.line();
        assert!(
            line.contains(
                "TLS error on connection: I/O: the idle read timeout passed during the handshake"
            ),
            "{backend}: {line}"
        );
    }
    let srv = Server::start(&["--starttls", "smtp", "--timeout", "1"]);
    let _quiet = TcpStream::connect(&srv.addr).expect("connect");
    let line = srv.line();
    assert!(
        line.contains("SMTP error before STARTTLS: the idle read timeout passed"),
        "{line}"
    );
}

/// A TCP connection to `addr` from the loopback address `from` (127.0.0.2, …: every 127/8
/// address is this host's, so one test plays several clients).
fn connect_from(from: &str, addr: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let from: SocketAddr = format!("{from}:0").parse().expect("source address");
    let to: SocketAddr = addr.parse().expect("server address");
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.bind(&from.into()).expect("bind the source address");
    socket.connect(&to.into()).expect("connect");
    let tcp = TcpStream::from(socket);
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    tcp
}

/// What the server says first (up to 200 bytes, or until it closes).
fn first_words(tcp: &mut TcpStream) -> String {
    let mut buf = [0u8; 200];
    let n = tcp.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Past `--max-per-address` in clear SMTP, an address gets `421` and a close, logged once for
/// the burst; another address is served meanwhile; a freed place serves the first again.
#[test]
fn one_address_past_its_share_gets_421_logged_once() {
    let srv = Server::start(&[
        "--starttls",
        "smtp",
        "--max-concurrent",
        "50",
        "--max-per-address",
        "3",
    ]);
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut tcp = connect_from("127.0.0.2", &srv.addr);
            assert!(first_words(&mut tcp).starts_with("220 "));
            tcp
        })
        .collect();
    for _ in 0..5 {
        let mut refused = connect_from("127.0.0.2", &srv.addr);
        let mut reply = String::new();
        refused.read_to_string(&mut reply).expect("421 then close");
        assert!(
            reply.starts_with("421 ") && reply.contains("from your address"),
            "{reply:?}"
        );
    }
    // Another address is served while the first is refused.
    let mut other = connect_from("127.0.0.3", &srv.addr);
    assert!(first_words(&mut other).starts_with("220 "));
    // One line for the burst of five, then the line of a held connection ending.
    let mut first = held.remove(0);
    first.write_all(b"QUIT\r\n").expect("quit");
    let _ = first_words(&mut first);
    let burst = srv.line();
    assert!(
        burst.starts_with("H=[127.0.0.2]:")
            && burst.contains("refused with 421: 3 connections already open from this address (--max-per-address 3)"),
        "{burst}"
    );
    let next = srv.line();
    assert!(
        next.starts_with("H=[127.0.0.2]:") && !next.contains("refused"),
        "only one line for the burst: {next}"
    );
    // Its place is free again (the worker ends just after its line: try for a few seconds).
    let started = Instant::now();
    loop {
        let mut again = connect_from("127.0.0.2", &srv.addr);
        if first_words(&mut again).starts_with("220 ") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never served again"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// With TLS from the first byte, a connection past `--max-per-address` is closed at once
/// (before any handshake), while another address completes a handshake.
#[test]
fn one_address_past_its_share_is_closed_with_tls_first() {
    let srv = Server::start(&["--max-concurrent", "50", "--max-per-address", "2"]);
    let _held: Vec<TcpStream> = (0..2)
        .map(|_| connect_from("127.0.0.2", &srv.addr))
        .collect();
    thread::sleep(Duration::from_millis(200));
    let mut refused = connect_from("127.0.0.2", &srv.addr);
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = refused.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without a byte");
    assert!(started.elapsed() < Duration::from_secs(2), "closed at once");
    let line = srv.line();
    assert!(
        line.starts_with("H=[127.0.0.2]:") && line.contains("closed: 2 connections already open"),
        "{line}"
    );
    let client = common::tls_client("rustls");
    let tcp = connect_from("127.0.0.3", &srv.addr);
    let peer: SocketAddr = srv.addr.parse().expect("addr");
    let tls = client.connect(
        Box::new(tcp),
        &tlsresume::ClientParams::new("mx.tlsresume.test", peer),
    );
    assert!(tls.is_ok(), "another address is served: {:?}", tls.err());
}

// ---------------------------------------------------------------------------------------------
// The attacks, each with a good client timed during it. Sizes fit CI; `TLSRESUME_HOSTILE=full`
// gives the sizes of docs/reliability.md (2 000 dribbling connections, 5 000 in a flood) and
// `--nocapture` prints the figures.

/// Whether the full-size run was asked for.
fn full() -> bool {
    std::env::var("TLSRESUME_HOSTILE").is_ok_and(|v| v == "full")
}

/// The server's resident memory, from /proc (kB).
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A well-behaved `probe --count 2` (the second connection offers the first's session): how
/// long it took, and whether it ended with the second connection resumed.
fn good_probe(addr: &str, backend: &str, starttls: bool) -> (Duration, bool, String) {
    let mut args = vec![
        "probe",
        addr,
        "--backend",
        backend,
        "--count",
        "2",
        "--timeout",
        "5",
    ];
    if starttls {
        args.extend(["--starttls", "smtp"]);
    }
    let started = Instant::now();
    let r = run(&args);
    let took = started.elapsed();
    let resumed = r.code == Some(0) && r.stdout.contains(": 1 resumed");
    (took, resumed, r.stdout)
}

/// Connections that dribble `script` a byte every `every` (after reading the banner, with
/// `banner`), from `addresses` loopback addresses (127.0.0.2, …) × `each`.
struct Dribble {
    script: &'static [u8],
    every: Duration,
    banner: bool,
    addresses: usize,
    each: usize,
}

/// What became of the dribbling connections.
#[derive(Debug, Default)]
struct Dribbled {
    /// Refused at once (`421`, or closed within a second of connecting).
    refused: usize,
    /// Held: the rest.
    held: usize,
    /// When the server closed each held one, from its connect (`None`: still open at the end).
    cut_after: Vec<Option<Duration>>,
}

impl Dribble {
    /// Runs for at most `length`, from a thread per connection (small stacks).
    fn start(self, addr: String, length: Duration) -> thread::JoinHandle<Dribbled> {
        thread::spawn(move || {
            let this = std::sync::Arc::new(self);
            let mut conns = Vec::new();
            for a in 0..this.addresses {
                for _ in 0..this.each {
                    let (this, addr) = (this.clone(), addr.clone());
                    let from = format!("127.0.0.{}", a + 2);
                    conns.push(
                        thread::Builder::new()
                            .stack_size(64 * 1024)
                            .spawn(move || this.one(&from, &addr, length))
                            .expect("a dribbling thread"),
                    );
                }
            }
            let mut out = Dribbled::default();
            for conn in conns {
                match conn.join().expect("dribbling thread") {
                    // Refused at once: 421, or closed within a second of connecting.
                    (true, _) => out.refused += 1,
                    (false, Some(t)) if t < Duration::from_secs(1) => out.refused += 1,
                    (false, closed) => {
                        out.held += 1;
                        out.cut_after.push(closed);
                    }
                }
            }
            out
        })
    }

    /// One connection: (refused with a reply, when the server closed it after connecting).
    fn one(&self, from: &str, addr: &str, length: Duration) -> (bool, Option<Duration>) {
        let mut tcp = connect_from(from, addr);
        let since = Instant::now();
        if self.banner && !first_words(&mut tcp).starts_with("220") {
            return (true, None);
        }
        tcp.set_read_timeout(Some(self.every)).expect("timeout");
        let mut buf = [0u8; 512];
        for byte in self.script.iter().cycle() {
            if since.elapsed() > length {
                return (false, None);
            }
            if tcp.write_all(&[*byte]).is_err() {
                return (false, Some(since.elapsed()));
            }
            // What the server says (an alert, a reply) is read; its close ends the connection.
            let next = Instant::now() + self.every;
            while Instant::now() < next {
                match tcp.read(&mut buf) {
                    Ok(0) => return (false, Some(since.elapsed())),
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return (false, Some(since.elapsed())),
                }
            }
        }
        (false, None)
    }
}

/// The start of a TLS 1.2 ClientHello (a 512-byte record), then zeros.
const HELLO_START: &[u8] = &[
    22, 3, 1, 2, 0, 1, 0, 1, 0xfc, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Slowloris with TLS from the first byte: connections dribbling a ClientHello a byte every
/// 2 s are cut at `--handshake-timeout` (at most one byte interval late), an address past its
/// share is refused at once, and a good probe resumes within a few seconds meanwhile, on every
/// backend.
#[test]
fn slowloris_on_tls_is_cut_at_the_handshake_deadline_and_a_good_client_resumes() {
    slowloris_on_tls(&[]);
}

/// The same against `serve --async` (the handshakes on tokio, under the tokio API's deadline).
#[test]
fn slowloris_on_tls_against_serve_async_is_cut_at_the_handshake_deadline() {
    slowloris_on_tls(&["--async"]);
}

fn slowloris_on_tls(extra: &[&str]) {
    let (addresses, each, deadline) = if full() { (8, 250, 30) } else { (2, 150, 3) };
    let every = Duration::from_secs(2);
    for backend in BACKENDS {
        let deadline_arg = deadline.to_string();
        let mut args = vec![
            "--backend",
            backend,
            "--timeout",
            "4",
            "--handshake-timeout",
            &deadline_arg,
        ];
        args.extend_from_slice(extra);
        let srv = Server::start(&args);
        let pid = srv.child.id();
        let (_, warm, out) = good_probe(&srv.addr, backend, false);
        assert!(warm, "{backend}: {out}");
        let rss_before = rss_kb(pid);
        let length = Duration::from_secs(deadline) + every + Duration::from_secs(3);
        let attack = Dribble {
            script: HELLO_START,
            every,
            banner: false,
            addresses,
            each,
        }
        .start(srv.addr.clone(), length);
        thread::sleep(Duration::from_secs(2).min(Duration::from_secs(deadline) / 2));
        let rss_during = rss_kb(pid);
        let (took, resumed, out) = good_probe(&srv.addr, backend, false);
        let dribbled = attack.join().expect("attack");
        let cut: Vec<Duration> = dribbled.cut_after.iter().flatten().copied().collect();
        let latest = cut.iter().max().copied().unwrap_or_default();
        let rss_after = rss_kb(pid);
        println!(
            "slowloris tls {backend} {extra:?}: {} held, {} refused; cut after at most {latest:?} \
             (--handshake-timeout {deadline}); good probe {took:?} resumed={resumed}; \
             RSS {rss_before} -> {rss_during} (attack) -> {rss_after} kB (after)",
            dribbled.held, dribbled.refused
        );
        assert!(
            resumed,
            "{backend}: the good probe during the attack: {out}"
        );
        assert!(
            took < Duration::from_secs(5),
            "{backend}: good probe {took:?}"
        );
        // The default per-address limit is a tenth of --max-concurrent (1000): 100 at once.
        assert!(dribbled.held >= addresses * each.min(100), "{backend}");
        assert!(
            dribbled.refused > 0,
            "{backend}: nothing refused per address"
        );
        assert_eq!(cut.len(), dribbled.held, "{backend}: some still open");
        assert!(
            latest <= Duration::from_secs(deadline) + every + Duration::from_millis(1500),
            "{backend}: cut after {latest:?}"
        );
    }
}

/// Slowloris in clear SMTP: EHLO dribbled a byte every 2 s after the banner. The per-address
/// limit bounds what one address holds (the rest get `421`), every held one is cut at
/// `--command-timeout` (at most one byte interval late), and a good STARTTLS probe resumes
/// meanwhile.
#[test]
fn slowloris_on_smtp_is_cut_at_the_command_deadline_and_a_good_client_resumes() {
    let (addresses, each, deadline) = if full() { (8, 250, 30) } else { (2, 150, 3) };
    let every = Duration::from_secs(2);
    let backend = "rustls";
    let deadline_arg = deadline.to_string();
    let srv = Server::start(&[
        "--backend",
        backend,
        "--starttls",
        "smtp",
        "--timeout",
        "4",
        "--command-timeout",
        &deadline_arg,
    ]);
    let pid = srv.child.id();
    let (_, warm, out) = good_probe(&srv.addr, backend, true);
    assert!(warm, "{out}");
    let rss_before = rss_kb(pid);
    let length = Duration::from_secs(deadline) + every + Duration::from_secs(3);
    let attack = Dribble {
        script: b"EHLO slow.example\r\n",
        every,
        banner: true,
        addresses,
        each,
    }
    .start(srv.addr.clone(), length);
    thread::sleep(Duration::from_secs(2).min(Duration::from_secs(deadline) / 2));
    let rss_during = rss_kb(pid);
    let (took, resumed, out) = good_probe(&srv.addr, backend, true);
    let dribbled = attack.join().expect("attack");
    let cut: Vec<Duration> = dribbled.cut_after.iter().flatten().copied().collect();
    let latest = cut.iter().max().copied().unwrap_or_default();
    println!(
        "slowloris smtp {backend}: {} held, {} refused with 421; cut after at most {latest:?} \
         (--command-timeout {deadline}); good probe {took:?} resumed={resumed}; RSS \
         {rss_before} -> {rss_during} kB (attack)",
        dribbled.held, dribbled.refused
    );
    assert!(resumed, "the good probe during the attack: {out}");
    assert!(took < Duration::from_secs(5), "good probe {took:?}");
    // At full size, 2 000 threads waiting for their banners at once: some wait longer than
    // their read timeout and count as refused.
    assert!(full() || dribbled.held >= addresses * each.min(100));
    assert!(dribbled.refused > 0, "nothing refused per address");
    assert_eq!(cut.len(), dribbled.held, "some still open");
    assert!(
        latest <= Duration::from_secs(deadline) + every + Duration::from_millis(1500),
        "cut after {latest:?}"
    );
}

/// Twenty connections announcing a 16 MB ClientHello and sending it in full records, held
/// open: every backend's server stays within 10 MB of its RSS before them, and a good probe
/// resumes after.
#[test]
fn big_client_hellos_leave_every_server_within_10_mb() {
    for backend in BACKENDS {
        let srv = Server::start(&["--backend", backend, "--timeout", "10"]);
        let pid = srv.child.id();
        let (_, warm, out) = good_probe(&srv.addr, backend, false);
        assert!(warm, "{backend}: {out}");
        let rss_before = rss_kb(pid);
        let senders: Vec<_> = (0..20)
            .map(|_| {
                let addr = srv.addr.clone();
                thread::spawn(move || {
                    let mut tcp = connect_from("127.0.0.2", &addr);
                    tcp.set_write_timeout(Some(Duration::from_secs(5)))
                        .expect("timeout");
                    let mut sent = 0usize;
                    while sent < 16 << 20 {
                        let mut record = vec![22, 3, 1, 0x40, 0x00];
                        if sent == 0 {
                            record.extend_from_slice(&[1, 0xff, 0xff, 0xff, 3, 3]);
                        }
                        record.resize(5 + 0x4000, 0x41);
                        if tcp.write_all(&record).is_err() {
                            break;
                        }
                        sent += record.len();
                    }
                    (sent, tcp)
                })
            })
            .collect();
        let held: Vec<(usize, TcpStream)> = senders
            .into_iter()
            .map(|s| s.join().expect("sender"))
            .collect();
        thread::sleep(Duration::from_millis(300));
        let rss_after = rss_kb(pid);
        let most = held.iter().map(|(sent, _)| *sent).max().unwrap_or(0);
        drop(held);
        let (took, resumed, out) = good_probe(&srv.addr, backend, false);
        println!(
            "big hello {backend}: 20 x 16 MB announced, at most {} kB went in on one; RSS \
             {rss_before} -> {rss_after} kB; good probe after {took:?} resumed={resumed}",
            most / 1024
        );
        assert!(
            rss_after < rss_before + 10 * 1024,
            "{backend}: RSS {rss_before} -> {rss_after} kB"
        );
        assert!(most < 16 << 20, "{backend}: a whole 16 MB went in");
        assert!(resumed, "{backend}: {out}");
    }
}

/// A flood of connections that connect, read what the server says and stay open until the
/// flood ends, from twenty addresses, against a small `--max-concurrent`: those past it get
/// `421` (a good probe during it too), and a good probe resumes at once after it.
#[test]
fn a_flood_past_max_concurrent_gets_421_and_a_good_client_is_served_after() {
    let (max, total) = if full() { (200, 5000) } else { (50, 1000) };
    let backend = "openssl";
    let srv = Server::start(&[
        "--backend",
        backend,
        "--starttls",
        "smtp",
        "--max-concurrent",
        &max.to_string(),
    ]);
    let pid = srv.child.id();
    let (_, warm, out) = good_probe(&srv.addr, backend, true);
    assert!(warm, "{out}");
    let rss_before = rss_kb(pid);
    let started = Instant::now();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let done_rx = std::sync::Arc::new(std::sync::Mutex::new(done_rx));
    let (counted_tx, counted_rx) = std::sync::mpsc::channel();
    let floods: Vec<_> = (0..4)
        .map(|t| {
            let addr = srv.addr.clone();
            let done = done_rx.clone();
            let counted = counted_tx.clone();
            thread::spawn(move || {
                let (mut served, mut refused, mut open) = (0usize, 0usize, Vec::new());
                for i in 0..total / 4 {
                    let from = format!("127.0.0.{}", 10 + (i + t) % 20);
                    let mut tcp = connect_from(&from, &addr);
                    if first_words(&mut tcp).starts_with("220") {
                        served += 1;
                        open.push(tcp);
                    } else {
                        refused += 1;
                    }
                }
                let _ = counted.send((served, refused));
                // Held until the test says the flood is over.
                let _ = done.lock().map(|rx| rx.recv());
                drop(open);
            })
        })
        .collect();
    let (served, refused) = (0..4)
        .map(|_| counted_rx.recv().expect("flood counts"))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let flood_took = started.elapsed();
    let during = good_probe(&srv.addr, backend, true);
    let rss_during = rss_kb(pid);
    drop(done_tx);
    for f in floods {
        f.join().expect("flood");
    }
    // The good client after the flood: until it resumes (the places free as the server sees
    // each flood connection close).
    let ended = Instant::now();
    let (took, out) = loop {
        let (took, resumed, out) = good_probe(&srv.addr, backend, true);
        if resumed || ended.elapsed() > Duration::from_secs(5) {
            break (took, out);
        }
        thread::sleep(Duration::from_millis(100));
    };
    let after = ended.elapsed();
    let rss_after = rss_kb(pid);
    println!(
        "flood --max-concurrent {max}: {total} connections in {flood_took:?}: {served} served \
         and held, {refused} refused with 421; good probe during: resumed={} ({:?}); after: \
         resumed {after:?} after the flood ended (its own run {took:?}); RSS {rss_before} -> \
         {rss_during} (flood) -> {rss_after} kB",
        during.1, during.0
    );
    assert_eq!(served + refused, total);
    assert!(
        served <= max,
        "{served} served at once past --max-concurrent {max}"
    );
    assert!(served + 5 >= max, "{served} served: places were left");
    assert!(!during.1, "a good client got a place past --max-concurrent");
    assert!(
        after < Duration::from_secs(3),
        "good probe after the flood: {after:?}: {out}"
    );
}

/// A server that says nothing, with a test message to send (the SMTP client's path): the
/// failure says the idle read timeout passed, an I/O failure in `--json`.
#[test]
fn probe_sending_a_message_says_its_idle_timeout_passed() {
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr").to_string();
    let held = thread::spawn(move || {
        let conns: Vec<TcpStream> = silent.incoming().take(1).filter_map(Result::ok).collect();
        thread::sleep(Duration::from_secs(3));
        drop(conns);
    });
    let json = run(&[
        "probe",
        &addr,
        "--starttls",
        "smtp",
        "--timeout",
        "1",
        "--count",
        "1",
        "--mail-from",
        "a@example.test",
        "--rcpt-to",
        "b@example.test",
        "--json",
    ]);
    let v = connection_json(&json.stdout);
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("the idle read timeout passed"), "{json:?}");
    assert!(!error.contains("os error"), "{json:?}");
    assert_eq!(v["error_kind"], "io", "{json:?}");
    let _ = held.join();
}
