//! Test peers for the SMTP client: a small SMTP server, a delaying proxy, and the one adapter
//! between the client's STARTTLS seam and a TLS backend (rustls).
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tlsresume_core::{
    certificates_from_pem_file, ClientParams, ClientSettings, Identity, ServerParams,
    ServerSettings, SessionInfo, TlsStream,
};
use tlsresume_smtp::fastopen::{self, Accepted};
use tlsresume_smtp::{read_line_unbuffered, StartTls, UpgradeContext};

/// The committed test PKI.
pub fn pki(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/pki")
        .join(name)
}

/// How one connection to the test server goes.
#[derive(Clone, Debug)]
pub struct ConnPlan {
    /// EHLO keywords in clear.
    pub clear: Vec<String>,
    /// EHLO keywords under TLS.
    pub tls: Vec<String>,
    /// What the server greets with.
    pub banner: Banner,
}

/// The greeting.
#[derive(Clone, Debug)]
pub enum Banner {
    /// `220 test.server ESMTP`.
    Normal,
    /// This line instead (a 4xx or 5xx reply, or garbage), then the connection is closed
    /// once the client stops talking.
    Line(String),
    /// The banner, then the connection is closed.
    CloseAfter,
    /// The banner after this delay.
    Late(Duration),
}

impl ConnPlan {
    /// A server offering `clear` in clear and `tls` under TLS.
    pub fn new(clear: &[&str], tls: &[&str]) -> Self {
        Self {
            clear: clear.iter().map(|s| s.to_string()).collect(),
            tls: tls.iter().map(|s| s.to_string()).collect(),
            banner: Banner::Normal,
        }
    }

    /// The same with another banner.
    pub fn banner(mut self, banner: Banner) -> Self {
        self.banner = banner;
        self
    }
}

/// What the server saw on one connection.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// Client bytes were there before the banner was sent.
    pub early: bool,
    /// Every command line, in order.
    pub commands: Vec<String>,
    /// Whether TLS was started.
    pub tls: bool,
    /// The server's `L` field as Exim logs it: `L*` early pipelining used, `L.` advertised
    /// but not used, `L` pipelined, empty otherwise.
    pub l_field: String,
    /// What the kernel said of the connection when it was accepted (TCP Fast Open).
    pub accepted: Option<Accepted>,
}

/// A small SMTP server on loopback, one thread per connection.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Each finished connection's record with its place in the order of accepting.
    records: Arc<Mutex<Vec<(usize, Record)>>>,
    /// Every message accepted (content as received, line endings as they came, un-dot-stuffed).
    pub messages: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
}

/// The server's settings.
pub struct ServerConfig {
    /// Connection `i` follows `plans[min(i, len - 1)]`.
    pub plans: Vec<ConnPlan>,
    /// How long the server waits for early client bytes before its banner (returns at once
    /// when they come). Zero: it only looks whether they are there already.
    pub pre_banner_wait: Duration,
    /// TLS for STARTTLS (or, with `tls_on_connect`, from the first byte).
    pub tls: Option<Arc<tlsresume_rustls::Server>>,
    /// TLS-on-connect (port 465 style): the handshake first, then the banner.
    pub tls_on_connect: bool,
}

impl ServerConfig {
    /// Clear SMTP, no TLS.
    pub fn clear(plans: Vec<ConnPlan>, pre_banner_wait: Duration) -> Self {
        Self {
            plans,
            pre_banner_wait,
            tls: None,
            tls_on_connect: false,
        }
    }
}

impl TestServer {
    pub fn start(config: ServerConfig) -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").expect("bind"), config)
    }

    /// The same with TCP Fast Open enabled on the listener.
    pub fn start_fast_open(config: ServerConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        fastopen::enable_on_listener(&listener, 16).expect("TCP_FASTOPEN on the listener");
        Self::start_on(listener, config)
    }

    /// The same on a listener the caller made.
    pub fn start_on(listener: TcpListener, config: ServerConfig) -> Self {
        let addr = listener.local_addr().expect("addr");
        let records = Arc::new(Mutex::new(Vec::new()));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let config = Arc::new(config);
        let count = Arc::new(AtomicUsize::new(0));
        let accepted = count.clone();
        {
            let records = records.clone();
            let messages = messages.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let accepted = fastopen::accepted(&stream).ok();
                    let index = count.fetch_add(1, Ordering::SeqCst);
                    let plan = config.plans[index.min(config.plans.len() - 1)].clone();
                    let config = config.clone();
                    let records = records.clone();
                    let messages = messages.clone();
                    thread::spawn(move || {
                        let mut session = Session {
                            plan,
                            config,
                            record: Record {
                                accepted,
                                ..Record::default()
                            },
                            messages,
                        };
                        let _ = session.run(stream);
                        // Connections end in any order (a later one can end first when the
                        // machine is loaded): the accept order is kept with the record.
                        records
                            .lock()
                            .expect("records")
                            .push((index, session.record));
                    });
                }
            });
        }
        Self {
            addr,
            records,
            messages,
            accepted,
        }
    }

    /// Connections accepted so far (a connection's own record comes when it ends).
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The records of finished connections in the order they were accepted, once the first `n`
    /// accepted have ended (waiting up to 30 s; fewer after that).
    pub fn records(&self, n: usize) -> Vec<Record> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut records = self.records.lock().expect("records").clone();
            records.sort_by_key(|(index, _)| *index);
            let first_n_ended = records.len() >= n
                && records
                    .iter()
                    .take(n)
                    .enumerate()
                    .all(|(i, (index, _))| i == *index);
            if first_n_ended || Instant::now() > deadline {
                return records.into_iter().map(|(_, record)| record).collect();
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn message_count(&self) -> usize {
        self.messages.lock().expect("messages").len()
    }
}

trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

struct Session {
    plan: ConnPlan,
    config: Arc<ServerConfig>,
    record: Record,
    messages: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Session {
    fn run(&mut self, stream: TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        // Early bytes are only seen in clear: under TLS-on-connect the first bytes are the
        // handshake's, and the server does not look into TLS before its banner.
        self.record.early =
            !self.config.tls_on_connect && input_within(&stream, self.config.pre_banner_wait);
        let first = if self.config.tls_on_connect {
            &self.plan.tls
        } else {
            &self.plan.clear
        };
        let advertised_early = first.iter().any(|k| k == "PIPECONNECT");
        let mut io: Box<dyn Io> = Box::new(stream.try_clone()?);
        let mut tls = false;
        if self.config.tls_on_connect {
            io = Box::new(self.handshake(&stream)?);
            tls = true;
            self.record.tls = true;
        }
        match &self.plan.banner {
            Banner::Late(d) => {
                thread::sleep(*d);
                write!(io, "220 test.server ESMTP\r\n")?;
            }
            Banner::Line(line) => {
                write!(io, "{line}\r\n")?;
            }
            _ => {
                if self.record.early && !advertised_early {
                    // As SMTP servers do with early talkers they did not invite.
                    write!(io, "554 SMTP synchronization error\r\n")?;
                    return Ok(());
                }
                write!(io, "220 test.server ESMTP\r\n")?;
            }
        }
        if matches!(self.plan.banner, Banner::CloseAfter) {
            stream.shutdown(Shutdown::Both)?;
            return Ok(());
        }
        let refuse_all = matches!(self.plan.banner, Banner::Line(_));
        let mut rcpts = 0;
        let mut pipelined = false;
        loop {
            let line = read_line_unbuffered(&mut *io)?;
            let upper = line.to_ascii_uppercase();
            self.record.commands.push(line.clone());
            if refuse_all {
                if upper.starts_with("QUIT") {
                    return Ok(());
                }
                write!(io, "503 no, go away\r\n")?;
                continue;
            }
            let verb = upper.split(' ').next().unwrap_or("").to_owned();
            match verb.as_str() {
                "EHLO" => {
                    let keywords = if tls {
                        &self.plan.tls
                    } else {
                        &self.plan.clear
                    };
                    let mut reply =
                        format!("250-test.server Hello {}\r\n", &line[5.min(line.len())..]);
                    for (i, k) in keywords.iter().enumerate() {
                        let sep = if i + 1 == keywords.len() { ' ' } else { '-' };
                        reply.push_str(&format!("250{sep}{k}\r\n"));
                    }
                    if keywords.is_empty() {
                        reply = reply.replacen("250-", "250 ", 1);
                    }
                    io.write_all(reply.as_bytes())?;
                }
                "HELO" => write!(io, "250 test.server\r\n")?,
                "STARTTLS" if !tls && self.config.tls.is_some() => {
                    write!(io, "220 ready to start TLS\r\n")?;
                    drop(io);
                    io = Box::new(self.handshake(&stream)?);
                    tls = true;
                    self.record.tls = true;
                }
                "MAIL" => {
                    rcpts = 0;
                    pipelined |= has_pending(&stream);
                    write!(io, "250 OK\r\n")?
                }
                "RCPT" => {
                    if upper.contains("<REJECT") {
                        write!(io, "550 no such user\r\n")?
                    } else if upper.contains("<DEFER") {
                        write!(io, "451 try later\r\n")?
                    } else {
                        rcpts += 1;
                        write!(io, "250 accepted\r\n")?
                    }
                }
                "DATA" => {
                    if rcpts == 0 {
                        write!(io, "554 no valid recipients\r\n")?;
                        continue;
                    }
                    write!(io, "354 go ahead\r\n")?;
                    // The end is a `.` line however it ends, as the servers of the 2023 "SMTP
                    // smuggling" reports took it: a bare LF from the client shows.
                    let mut content = Vec::new();
                    loop {
                        let l = read_raw_line(&mut *io)?;
                        if matches!(l.as_slice(), b".\r\n" | b".\n") {
                            break;
                        }
                        content.extend_from_slice(l.strip_prefix(b".").unwrap_or(&l));
                    }
                    self.accept(content, &mut *io, advertised_early, pipelined)?;
                }
                "BDAT" => {
                    let n: usize = upper
                        .split(' ')
                        .nth(1)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    let mut content = vec![0u8; n];
                    io.read_exact(&mut content)?;
                    if rcpts == 0 {
                        write!(io, "554 no valid recipients\r\n")?;
                        continue;
                    }
                    self.accept(content, &mut *io, advertised_early, pipelined)?;
                }
                "RSET" | "NOOP" => write!(io, "250 OK\r\n")?,
                "QUIT" => {
                    write!(io, "221 bye\r\n")?;
                    return Ok(());
                }
                _ => write!(io, "500 unrecognised command\r\n")?,
            }
        }
    }

    fn handshake(&self, stream: &TcpStream) -> io::Result<tlsresume_rustls::Stream<TcpStream>> {
        let server = self
            .config
            .tls
            .clone()
            .ok_or_else(|| io::Error::other("no TLS"))?;
        let params = ServerParams::new(stream.peer_addr()?, stream.local_addr()?);
        server
            .accept(stream.try_clone()?, &params)
            .map_err(io::Error::other)
    }

    fn accept(
        &mut self,
        content: Vec<u8>,
        io: &mut dyn Io,
        advertised_early: bool,
        pipelined: bool,
    ) -> io::Result<()> {
        self.record.l_field = match (self.record.early, advertised_early, pipelined) {
            (true, _, _) => "L*",
            (false, true, _) => "L.",
            (false, false, true) => "L",
            _ => "",
        }
        .to_owned();
        let mut messages = self.messages.lock().expect("messages");
        messages.push(content);
        write!(io, "250 OK id={}\r\n", messages.len())
    }
}

/// One line as it came, up to and with its LF.
fn read_raw_line(io: &mut dyn Io) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        io.read_exact(&mut byte)?;
        line.push(byte[0]);
    }
    Ok(line)
}

/// Whether the peer's bytes arrive within `wait` (at once if they are there).
fn input_within(stream: &TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    let got = if wait.is_zero() {
        let _ = stream.set_nonblocking(true);
        let r = stream.peek(&mut byte);
        let _ = stream.set_nonblocking(false);
        r
    } else {
        let _ = stream.set_read_timeout(Some(wait));
        let r = stream.peek(&mut byte);
        let _ = stream.set_read_timeout(None);
        r
    };
    matches!(got, Ok(n) if n > 0)
}

/// Whether more client bytes are waiting (the client pipelined).
fn has_pending(stream: &TcpStream) -> bool {
    input_within(stream, Duration::ZERO)
}

/// A loopback proxy that holds every segment, both ways, for half of `rtt` before passing it
/// on: a link with delay and no bandwidth limit (what `tc netem delay` would give).
pub struct DelayProxy {
    pub addr: SocketAddr,
}

impl DelayProxy {
    pub fn start(upstream: SocketAddr, rtt: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let one_way = rtt / 2;
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => continue,
                };
                pump(client, server, one_way);
                pump(s2, c2, one_way);
            }
        });
        Self { addr }
    }
}

/// Copies `from` to `to`, each chunk leaving `delay` after it came.
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<Option<(Instant, Vec<u8>)>>();
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(n) => {
                    if tx
                        .send(Some((Instant::now() + delay, buf[..n].to_vec())))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    thread::spawn(move || {
        while let Ok(Some((due, bytes))) = rx.recv() {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if to.write_all(&bytes).is_err() {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// The client's STARTTLS through the rustls backend, recording each handshake's result.
/// The one place this suite touches a backend's API.
#[derive(Debug)]
pub struct RustlsStartTls {
    client: tlsresume_rustls::Client,
    pub handshakes: Mutex<Vec<SessionInfo>>,
}

impl RustlsStartTls {
    pub fn new() -> Self {
        let roots = certificates_from_pem_file(&pki("ca.pem")).expect("ca");
        let client = tlsresume_rustls::Client::new(ClientSettings::new(roots)).expect("client");
        Self {
            client,
            handshakes: Mutex::new(Vec::new()),
        }
    }

    /// TLS-on-connect: the handshake on a fresh connection (no EHLO yet, so no host name).
    pub fn connect(
        &self,
        plain: TcpStream,
    ) -> Result<tlsresume_rustls::Stream<TcpStream>, tlsresume_core::Error> {
        self.handshake(plain, None)
    }

    fn handshake(
        &self,
        plain: TcpStream,
        ehlo_host: Option<&str>,
    ) -> Result<tlsresume_rustls::Stream<TcpStream>, tlsresume_core::Error> {
        let peer = plain.peer_addr().map_err(tlsresume_core::Error::Io)?;
        let mut params = ClientParams::new("mx.tlsresume.test", peer);
        if let Some(host) = ehlo_host {
            params = params.lb_name(host);
        }
        let stream = self.client.connect(plain, &params)?;
        self.handshakes
            .lock()
            .expect("handshakes")
            .push(stream.info().clone());
        Ok(stream)
    }
}

impl StartTls<TcpStream> for RustlsStartTls {
    type Stream = tlsresume_rustls::Stream<TcpStream>;
    type Error = tlsresume_core::Error;

    fn upgrade(
        &self,
        plain: TcpStream,
        context: &UpgradeContext<'_>,
    ) -> Result<Self::Stream, Self::Error> {
        self.handshake(plain, context.ehlo_host)
    }

    fn session_info(stream: &Self::Stream) -> Option<SessionInfo> {
        Some(stream.info().clone())
    }
}

/// The server side of the same backend, with the test PKI.
pub fn rustls_server() -> Arc<tlsresume_rustls::Server> {
    let identity =
        Identity::from_pem_files(&pki("server-rsa.pem"), &pki("server-rsa.key")).expect("identity");
    Arc::new(tlsresume_rustls::Server::new(ServerSettings::new(identity)).expect("server"))
}

/// Makes `TlsStream` (its `info`) visible to users of this module.
pub fn info_of(stream: &dyn TlsStream) -> SessionInfo {
    stream.info()
}
