//! Interop with TLS software nobody here wrote: `openssl s_client` / `s_server` (OpenSSL 3.0
//! CLI) and `gnutls-cli` / `gnutls-serv` (GnuTLS 3.7), against every compiled-in backend, TLS
//! 1.2 and TLS 1.3, over loopback, on the real system clock (the tools use real time).
//!
//! 1. each backend's server, resumed by `openssl s_client -sess_out` then `-sess_in`;
//! 2. each backend's server, resumed by `gnutls-cli --resume`;
//! 3. each backend's client (one context, one in-memory store, two connections), resuming
//!    against `openssl s_server` and against `gnutls-serv`;
//! 4. controls: the same observations with resumption switched off at the server say "no".
//!
//! Where the tool prints its own verdict (`Reused, TLSv1.x`, `This is a resumed session`) it
//! must agree with our server's `SessionInfo::resumed`.
//!
//! Every external process runs under a kill-on-drop guard and every wait has a deadline. A test
//! whose tool is not installed fails when `CI` is set, and elsewhere prints `SKIPPED` (CI
//! installs `openssl` and `gnutls-bin`). Each test prints its table of results (`--nocapture` to see it).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

#[path = "interop/process.rs"]
mod process;

use process::{listen, run_tool, tool_present, ExternalServer, TempDir, TOOL_TIMEOUT};
use tlsresume::backends;
use tlsresume_compare::Pki;
use tlsresume_core::{
    BackendKind, ClientContext, ClientParams, ClientSettings, MemoryStore, ProtocolVersion,
    ServerContext, ServerParams, ServerSettings, SessionInfo, Versions,
};

/// Socket read/write timeout on our side of every connection.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The name every certificate check uses (SNI and verification).
const SERVER_NAME: &str = "mx.tlsresume.test";
const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::Tls12, ProtocolVersion::Tls13];

// ---------------------------------------------------------------------------------------------
// Expectations: which combinations resume. Every cell is checked; a cell that does not resume
// must say why here.
// ---------------------------------------------------------------------------------------------

/// Whether `client` resumes a session with `server` over `version` (one side is always an
/// external tool, the other a backend).
///
/// With OpenSSL 3.0 (`openssl` CLI) and GnuTLS 3.7.9 (`gnutls-cli`, `gnutls-serv`) every
/// combination resumes, in TLS 1.2 and TLS 1.3, in both directions. A cell that stops resuming
/// because of a real limitation of a library or tool gets an arm here with the reason.
fn expect_resumed(server: Peer, client: Peer, version: ProtocolVersion) -> bool {
    match (server, client, version) {
        (Peer::Backend(_), Peer::SClient | Peer::GnutlsCli, _) => true,
        (Peer::SServer | Peer::GnutlsServ, Peer::Backend(_), _) => true,
        _ => panic!("{client} → {server} is not a combination these tests run"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// 1. Every backend's server, resumed by `openssl s_client -sess_out FILE` / `-sess_in FILE`.
#[test]
fn openssl_s_client_resumes_every_backend_server() {
    if !tool_present("openssl", &["version"]) {
        return;
    }
    let pki = Pki::committed().expect("committed test PKI");
    let mut table = Table::new("openssl s_client → backend server");
    for kind in backends::available() {
        for version in VERSIONS {
            let row = s_client_against_backend(kind, version, &pki);
            table.push(row);
        }
    }
    table.finish();
}

/// 2. Every backend's server, resumed by `gnutls-cli --resume` (two connections of its own).
#[test]
fn gnutls_cli_resumes_every_backend_server() {
    if !tool_present("gnutls-cli", &["--version"]) {
        return;
    }
    let pki = Pki::committed().expect("committed test PKI");
    let mut table = Table::new("gnutls-cli → backend server");
    for kind in backends::available() {
        for version in VERSIONS {
            let row = gnutls_cli_against_backend(kind, version, &pki, true);
            table.push(row);
        }
    }
    table.finish();
}

/// 3a. Every backend's client, resuming against `openssl s_server`.
#[test]
fn every_backend_client_resumes_against_openssl_s_server() {
    if !tool_present("openssl", &["version"]) {
        return;
    }
    let pki = Pki::committed().expect("committed test PKI");
    let mut table = Table::new("backend client → openssl s_server");
    for version in VERSIONS {
        // One s_server per version, shared by the backends (each client has its own store).
        let server = start_s_server(version, &[]);
        for kind in backends::available() {
            let expected = expect_resumed(Peer::SServer, Peer::Backend(kind), version);
            table.push(backend_client_against(
                kind,
                version,
                &pki,
                &server,
                Peer::SServer,
                expected,
            ));
        }
    }
    table.finish();
}

/// 3b. Every backend's client, resuming against `gnutls-serv`.
#[test]
fn every_backend_client_resumes_against_gnutls_serv() {
    if !tool_present("gnutls-serv", &["--version"]) {
        return;
    }
    let pki = Pki::committed().expect("committed test PKI");
    let mut table = Table::new("backend client → gnutls-serv");
    let server = start_gnutls_serv(&[]);
    for version in VERSIONS {
        // gnutls-serv allows TLS 1.2 and 1.3; the client's settings pick one.
        for kind in backends::available() {
            let expected = expect_resumed(Peer::GnutlsServ, Peer::Backend(kind), version);
            table.push(backend_client_against(
                kind,
                version,
                &pki,
                &server,
                Peer::GnutlsServ,
                expected,
            ));
        }
    }
    table.finish();
}

/// Controls: with resumption switched off at the server, the same observations report "no",
/// so a "yes" in the tables above is not an artefact of how it is observed.
#[test]
fn controls_without_resumption_report_no_resumption() {
    let pki = Pki::committed().expect("committed test PKI");
    let mut table = Table::new("controls: resumption off at the server");
    if tool_present("openssl", &["version"]) {
        for version in VERSIONS {
            let server = start_s_server(version, &["-no_ticket", "-no_cache"]);
            for kind in backends::available() {
                table.push(backend_client_against(
                    kind,
                    version,
                    &pki,
                    &server,
                    Peer::SServer,
                    false,
                ));
            }
        }
    }
    if tool_present("gnutls-serv", &["--version"]) {
        let server = start_gnutls_serv(&["--noticket", "--nodb"]);
        for version in VERSIONS {
            for kind in backends::available() {
                table.push(backend_client_against(
                    kind,
                    version,
                    &pki,
                    &server,
                    Peer::GnutlsServ,
                    false,
                ));
            }
        }
    }
    if tool_present("gnutls-cli", &["--version"]) {
        for kind in backends::available() {
            for version in VERSIONS {
                table.push(gnutls_cli_against_backend(kind, version, &pki, false));
            }
        }
    }
    table.finish();
}

/// `openssl s_server` for one version, answering each line reversed (`-rev`), plus `extra`.
fn start_s_server(version: ProtocolVersion, extra: &[&str]) -> ExternalServer {
    ExternalServer::start("openssl", |port| {
        let mut args: Vec<String> = vec![
            "s_server".into(),
            "-cert".into(),
            pki_path("server-ecdsa.pem"),
            "-key".into(),
            pki_path("server-ecdsa.key"),
            "-accept".into(),
            format!("127.0.0.1:{port}"),
            openssl_version_flag(version).into(),
            // Sends each line back reversed; needs no stdin.
            "-rev".into(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    })
}

/// `gnutls-serv` (TLS 1.2 and 1.3; tickets on by default in 3.7), echoing each line, plus
/// `extra`.
///
/// gnutls-serv has no option to bind one address: it listens on every interface, but only
/// loopback connections are made to it, and only for the second or so these tests take.
fn start_gnutls_serv(extra: &[&str]) -> ExternalServer {
    let listening: fn(u16) -> String =
        |port| format!("listening on IPv4 0.0.0.0 port {port}...done");
    let args = |port: u16| {
        let mut args: Vec<String> = vec![
            "--x509certfile".into(),
            pki_path("server-ecdsa.pem"),
            "--x509keyfile".into(),
            pki_path("server-ecdsa.key"),
            "-p".into(),
            port.to_string(),
            "--echo".into(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    };
    ExternalServer::start_saying("gnutls-serv", args, Some(listening))
}

// ---------------------------------------------------------------------------------------------
// The combinations
// ---------------------------------------------------------------------------------------------

fn s_client_against_backend(kind: BackendKind, version: ProtocolVersion, pki: &Pki) -> Row {
    let mut row = Row::new(Peer::Backend(kind), Peer::SClient, version);
    let (listener, port) = listen();
    let served = serve(listener, backend_server(kind, version, pki, true), 2);
    let dir = TempDir::new("s_client");
    let sess = dir.path().join("session.pem");
    let sess = sess.to_string_lossy().into_owned();

    let first = run_tool(
        "openssl",
        &s_client_args(port, version, "-sess_out", &sess),
        b"hello from s_client\n",
    );
    let second = if Path::new(&sess).exists() {
        Some(run_tool(
            "openssl",
            &s_client_args(port, version, "-sess_in", &sess),
            b"hello again from s_client\n",
        ))
    } else {
        row.fail(format!(
            "s_client wrote no session to {sess}; its output:\n{}",
            first.text
        ));
        // Unblock the server's second accept.
        let _ = TcpStream::connect(("127.0.0.1", port));
        None
    };
    let infos = join_server(served);

    let v = openssl_version_name(version);
    row.check(first.exited_ok(), || {
        format!("first s_client run failed:\n{}", first.text)
    });
    row.check(first.text.contains(&format!("New, {v}")), || {
        format!(
            "first s_client run is not a new {v} session:\n{}",
            first.text
        )
    });
    row.check_first_server(infos.first());
    if let Some(second) = second {
        row.check(second.exited_ok(), || {
            format!("second s_client run failed:\n{}", second.text)
        });
        let tool_says = second.text.contains(&format!("Reused, {v}"));
        let tool_new = second.text.contains(&format!("New, {v}"));
        row.check(tool_says || tool_new, || {
            format!("second s_client run shows no {v} session:\n{}", second.text)
        });
        row.resumed_by_both(infos.get(1), tool_says, &second.text);
    }
    row
}

fn s_client_args(port: u16, version: ProtocolVersion, sess_flag: &str, sess: &str) -> Vec<String> {
    vec![
        "s_client".into(),
        "-connect".into(),
        format!("127.0.0.1:{port}"),
        "-CAfile".into(),
        pki_path("ca.pem"),
        "-servername".into(),
        SERVER_NAME.into(),
        "-verify_hostname".into(),
        SERVER_NAME.into(),
        "-verify_return_error".into(),
        openssl_version_flag(version).into(),
        // Sends stdin's line, then keeps reading until the server closes: the TLS 1.3 ticket
        // arrives after the handshake, with the server's greeting.
        "-ign_eof".into(),
        sess_flag.into(),
        sess.into(),
    ]
}

/// `gnutls-cli --resume` against a backend's server; with `resumable` false, a control: the
/// server's policy gives 127.0.0.1 no tickets.
fn gnutls_cli_against_backend(
    kind: BackendKind,
    version: ProtocolVersion,
    pki: &Pki,
    resumable: bool,
) -> Row {
    let mut row = Row::new(Peer::Backend(kind), Peer::GnutlsCli, version);
    row.expected = row.expected && resumable;
    let (listener, port) = listen();
    let served = serve(listener, backend_server(kind, version, pki, resumable), 2);
    let mut args: Vec<String> = vec![
        "--x509cafile".into(),
        pki_path("ca.pem"),
        "--priority".into(),
        format!("NORMAL:-VERS-ALL:+{}", gnutls_version_name(version)),
        "--sni-hostname".into(),
        SERVER_NAME.into(),
        "--verify-hostname".into(),
        SERVER_NAME.into(),
        "--resume".into(),
        "-p".into(),
        port.to_string(),
        "127.0.0.1".into(),
    ];
    if resumable {
        // TLS 1.3: wait on the first connection for the ticket that follows the handshake
        // (with no ticket coming it would wait until the server gives up).
        args.insert(0, "--waitresumption".into());
    }
    let run = run_tool("gnutls-cli", &args, b"hello from gnutls-cli\n");
    if run.timed_out {
        // Unblock a server still waiting for a connection that never came.
        let _ = TcpStream::connect(("127.0.0.1", port));
        let _ = TcpStream::connect(("127.0.0.1", port));
    }
    let infos = join_server(served);

    row.check(!run.timed_out, || {
        format!("gnutls-cli timed out:\n{}", run.text)
    });
    row.check(run.text.contains("Resume Handshake was completed"), || {
        format!(
            "gnutls-cli did not complete its second handshake:\n{}",
            run.text
        )
    });
    row.check_first_server(infos.first());
    let tool_says = run.text.contains("This is a resumed session");
    row.resumed_by_both(infos.get(1), tool_says, &run.text);
    row
}

fn backend_client_against(
    kind: BackendKind,
    version: ProtocolVersion,
    pki: &Pki,
    server: &ExternalServer,
    peer: Peer,
    expected: bool,
) -> Row {
    let mut row = Row::new(peer, Peer::Backend(kind), version);
    row.expected = expected;
    let mut settings = ClientSettings::new(pki.roots.clone());
    settings.versions = Versions::only(version);
    settings.store = Arc::new(MemoryStore::new(16));
    let client = match backends::client(kind, settings) {
        Ok(c) => c,
        Err(e) => {
            row.fail(format!("client context: {e}"));
            return row;
        }
    };
    let first = client_once(client.as_ref(), server.addr());
    let second = client_once(client.as_ref(), server.addr());
    match &first {
        Ok(info) => {
            row.check(!info.resumed, || {
                "the first connection reports resumed".into()
            });
            row.check(info.protocol == version, || {
                format!("first connection negotiated {}", info.protocol)
            });
        }
        Err(e) => row.fail(format!("first connection: {e}")),
    }
    match &second {
        Ok(info) => {
            row.check(info.protocol == version, || {
                format!("second connection negotiated {}", info.protocol)
            });
            row.resumed = Some(info.resumed);
            row.detail = format!("client bits {}", info.resumption);
        }
        Err(e) => row.fail(format!("second connection: {e}")),
    }
    if !row.errors.is_empty() {
        // The only view of the external server is its log.
        let log = server.log();
        let tail = log.len().saturating_sub(3000);
        let tail = (tail..log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(0);
        row.fail(format!("{peer} log (end):\n{}", &log[tail..]));
    }
    row
}

/// One connection: handshake, a line out, the server's answer back (so TLS 1.3 tickets that
/// follow the handshake are read), close.
fn client_once(client: &dyn ClientContext, peer: SocketAddr) -> Result<SessionInfo, String> {
    let io = |e: io::Error| e.to_string();
    let tcp = TcpStream::connect_timeout(&peer, IO_TIMEOUT).map_err(io)?;
    tcp.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    tcp.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    let _ = tcp.set_nodelay(true);
    let params = ClientParams::new(SERVER_NAME, peer);
    let mut tls = client
        .connect(Box::new(tcp), &params)
        .map_err(|e| format!("handshake: {e}"))?;
    tls.write_all(b"hello from tlsresume\n").map_err(io)?;
    tls.flush().map_err(io)?;
    let answer = read_line(&mut tls).map_err(|e| format!("reading the answer: {e}"))?;
    if answer.is_empty() {
        return Err("empty answer".into());
    }
    let info = tls.info();
    let _ = tls.shutdown();
    Ok(info)
}

// ---------------------------------------------------------------------------------------------
// Our servers
// ---------------------------------------------------------------------------------------------

/// A backend's server: committed PKI, the backend's own ticket flavour, one TLS version, the
/// system clock; with `resumable` false its policy gives 127.0.0.1 no tickets (a control).
fn backend_server(
    kind: BackendKind,
    version: ProtocolVersion,
    pki: &Pki,
    resumable: bool,
) -> Arc<dyn ServerContext> {
    let mut settings = ServerSettings::new(pki.server.clone());
    settings.ticket_policy = Some(kind.default_ticket_policy());
    settings.versions = Versions::only(version);
    if !resumable {
        settings.resumption = settings
            .resumption
            .with_server_hosts("!127.0.0.1".parse().expect("host list"));
    }
    backends::server(kind, settings).expect("server context")
}

type Served = JoinHandle<Vec<Result<SessionInfo, String>>>;

/// Serves `count` connections, one after the other: handshake, a greeting (which carries the
/// TLS 1.3 tickets out), one line read (or the client's close), an answer, close. Each accept
/// waits at most `TOOL_TIMEOUT`.
fn serve(listener: TcpListener, server: Arc<dyn ServerContext>, count: usize) -> Served {
    thread::spawn(move || {
        let mut out = Vec::new();
        for _ in 0..count {
            out.push(serve_one(&listener, server.as_ref()));
        }
        out
    })
}

fn serve_one(listener: &TcpListener, server: &dyn ServerContext) -> Result<SessionInfo, String> {
    let io = |e: io::Error| e.to_string();
    listener.set_nonblocking(true).map_err(io)?;
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let (tcp, peer) = loop {
        match listener.accept() {
            Ok(pair) => break pair,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    };
    tcp.set_nonblocking(false).map_err(io)?;
    tcp.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    tcp.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    let _ = tcp.set_nodelay(true);
    let params = ServerParams::new(peer, tcp.local_addr().map_err(io)?);
    let mut tls = server
        .accept(Box::new(tcp), &params)
        .map_err(|e| format!("handshake: {e}"))?;
    // After the handshake the client may send a line (s_client, gnutls-cli's second
    // connection) or close at once (gnutls-cli's first connection): neither is an error here.
    let _ = tls
        .write_all(b"220 tlsresume interop\r\n")
        .and_then(|()| tls.flush());
    if read_line(&mut tls).is_ok() {
        let _ = tls.write_all(b"221 bye\r\n").and_then(|()| tls.flush());
    }
    let info = tls.info();
    let _ = tls.shutdown();
    Ok(info)
}

fn join_server(served: Served) -> Vec<Result<SessionInfo, String>> {
    served
        .join()
        .unwrap_or_else(|_| vec![Err("server thread panicked".into())])
}

/// Reads up to a newline (at most 4 KiB); an empty string means the peer closed.
fn read_line(r: &mut dyn Read) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if r.read(&mut byte)? == 0 {
            if line.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
            }
            break;
        }
        line.push(byte[0]);
        if byte[0] == b'\n' || line.len() >= 4096 {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
}

fn pki_path(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pki")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn openssl_version_flag(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::Tls12 => "-tls1_2",
        _ => "-tls1_3",
    }
}

fn openssl_version_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::Tls12 => "TLSv1.2",
        _ => "TLSv1.3",
    }
}

fn gnutls_version_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::Tls12 => "VERS-TLS1.2",
        _ => "VERS-TLS1.3",
    }
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// One end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    Backend(BackendKind),
    SClient,
    SServer,
    GnutlsCli,
    GnutlsServ,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backend(kind) => write!(f, "{kind}"),
            Self::SClient => f.write_str("openssl s_client"),
            Self::SServer => f.write_str("openssl s_server"),
            Self::GnutlsCli => f.write_str("gnutls-cli"),
            Self::GnutlsServ => f.write_str("gnutls-serv"),
        }
    }
}

/// One combination's result.
#[derive(Debug)]
struct Row {
    server: Peer,
    client: Peer,
    version: ProtocolVersion,
    /// Whether the second connection should resume.
    expected: bool,
    /// Whether the second connection resumed (`None`: it did not complete).
    resumed: Option<bool>,
    detail: String,
    errors: Vec<String>,
}

impl Row {
    fn new(server: Peer, client: Peer, version: ProtocolVersion) -> Self {
        Self {
            server,
            client,
            version,
            expected: expect_resumed(server, client, version),
            resumed: None,
            detail: String::new(),
            errors: Vec::new(),
        }
    }

    fn fail(&mut self, why: String) {
        self.errors.push(why);
    }

    fn check(&mut self, ok: bool, why: impl FnOnce() -> String) {
        if !ok {
            self.fail(why());
        }
    }

    /// Our server's first connection: a full handshake at the wanted version.
    fn check_first_server(&mut self, info: Option<&Result<SessionInfo, String>>) {
        match info {
            Some(Ok(info)) => {
                let version = self.version;
                self.check(!info.resumed, || {
                    "the first connection reports resumed".into()
                });
                self.check(info.protocol == version, || {
                    format!("first connection negotiated {}", info.protocol)
                });
            }
            Some(Err(e)) => self.fail(format!("server, first connection: {e}")),
            None => self.fail("server, first connection: none".into()),
        }
    }

    /// Our server's second connection against what the client tool printed: they must agree.
    fn resumed_by_both(
        &mut self,
        info: Option<&Result<SessionInfo, String>>,
        tool_says: bool,
        tool_text: &str,
    ) {
        match info {
            Some(Ok(info)) => {
                let version = self.version;
                self.check(info.protocol == version, || {
                    format!("second connection negotiated {}", info.protocol)
                });
                self.check(info.resumed == tool_says, || {
                    format!(
                        "server says resumed={} but the tool says resumed={tool_says}:\n{tool_text}",
                        info.resumed
                    )
                });
                self.resumed = Some(info.resumed);
                self.detail = format!("server bits {}", info.resumption);
            }
            Some(Err(e)) => self.fail(format!("server, second connection: {e}\n{tool_text}")),
            None => self.fail(format!("server, second connection: none\n{tool_text}")),
        }
    }
}

/// The rows of one test, printed as a table and checked against [`expect_resumed`].
#[derive(Debug)]
struct Table {
    title: &'static str,
    rows: Vec<Row>,
}

impl Table {
    fn new(title: &'static str) -> Self {
        Self {
            title,
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    fn finish(self) {
        let mut failures = Vec::new();
        println!("{}", self.title);
        println!("| server | client | TLS | resumes | expected | detail |");
        println!("|---|---|---|---|---|---|");
        for row in &self.rows {
            let expected = row.expected;
            let shown = match row.resumed {
                Some(true) => "yes",
                Some(false) => "no",
                None => "error",
            };
            println!(
                "| {} | {} | {} | {shown} | {} | {} |",
                row.server,
                row.client,
                row.version.short(),
                if expected { "yes" } else { "no" },
                row.detail
            );
            let name = format!("{} → {} TLS{}", row.client, row.server, row.version.short());
            for e in &row.errors {
                failures.push(format!("{name}: {e}"));
            }
            if row.resumed.is_some_and(|r| r != expected) {
                failures.push(format!(
                    "{name}: resumed={:?}, expected {expected}",
                    row.resumed
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{}: {} failures:\n{}",
            self.title,
            failures.len(),
            failures.join("\n\n")
        );
    }
}
