//! A private `redis-server` for the tests that need Redis: a free loopback port, no
//! persistence, killed on drop; stopped and started again on the same port for outage tests,
//! and reachable through a [`SlowLink`] that delays its replies.
//!
//! Needs `redis-server` on the PATH (Debian: `apt-get install -y redis-server`). Without it a
//! test reports itself skipped, except under CI (`CI` set), where it fails: the Redis checks
//! must run there.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A `redis-server` child process on a loopback port of its own.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    tls: bool,
}

impl RedisServer {
    /// A fresh, empty server; `None` (the test says it is skipped) when `redis-server` cannot
    /// run or `TLSRESUME_SKIP_REDIS` is set. Panics under CI in either case.
    pub fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// A fresh server listening only on a TLS port, with the committed test PKI's server
    /// certificate (`tests/pki/server-ecdsa.pem`, valid for 127.0.0.1, signed by
    /// `tests/pki/ca.pem`); no client certificates asked for. `None` as for
    /// [`start`](Self::start).
    pub fn start_tls() -> Option<Self> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Option<Self> {
        if std::env::var_os("TLSRESUME_SKIP_REDIS").is_some() {
            assert!(
                std::env::var_os("CI").is_none(),
                "TLSRESUME_SKIP_REDIS is set under CI: the Redis checks must run there"
            );
            eprintln!("SKIPPED: TLSRESUME_SKIP_REDIS is set");
            return None;
        }
        let mut server = Self {
            child: None,
            port: 0,
            tls,
        };
        let spawned = on_free_port(|port| {
            server.port = port;
            server.spawn()
        });
        match spawned {
            Ok(()) => Some(server),
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "cannot run redis-server ({e}) and CI is set: install it (Debian: apt-get install -y redis-server)"
                );
                eprintln!(
                    "SKIPPED: cannot run redis-server ({e}); install it (Debian: apt-get install -y redis-server)"
                );
                None
            }
        }
    }

    /// `redis://127.0.0.1:PORT` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (SIGKILL: no goodbye to its clients, as a crash or a lost host).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on its port, empty (no persistence). Panics when it does not
    /// answer within 30 s.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!("redis-server did not start again: {e}");
        }
    }

    fn spawn(&mut self) -> io::Result<()> {
        let mut cmd = Command::new("redis-server");
        if self.tls {
            let pki = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pki");
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                .args(["--tls-auth-clients", "no", "--tls-cert-file"])
                .arg(pki.join("server-ecdsa.pem"))
                .arg("--tls-key-file")
                .arg(pki.join("server-ecdsa.key"))
                .arg("--tls-ca-cert-file")
                .arg(pki.join("ca.pem"));
        } else {
            cmd.args(["--port", &self.port.to_string()]);
        }
        cmd.args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(spawn_ready(&mut cmd, self.port, |pid| self.answers(pid))?);
        Ok(())
    }

    /// Whether the server answers as process `pid` in clear; for a TLS server, listening is
    /// enough (the TLS handshake is the test's).
    fn answers(&self, pid: u32) -> bool {
        if self.tls {
            return TcpStream::connect(("127.0.0.1", self.port)).is_ok();
        }
        answers_as(self.port, pid)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// How many free ports [`on_free_port`] tries.
const PORT_TRIES: usize = 5;

/// Runs `start(port)` on a free loopback port. A free port can be taken by another process
/// before the child started on it binds it: while `start` fails with
/// [`io::ErrorKind::AddrInUse`] (as [`spawn_ready`] does when its child exits before it is
/// ready), another free port is tried, five in all; the last error otherwise.
pub fn on_free_port<T>(mut start: impl FnMut(u16) -> io::Result<T>) -> io::Result<T> {
    let mut tries = 1;
    loop {
        match start(free_port()) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries < PORT_TRIES => tries += 1,
            done => return done,
        }
    }
}

/// Spawns `command`, a server to listen on `port`, and waits (at most 30 s, returning as soon
/// as it is) until `ready(pid)` (`pid`: the child's process id, to tell it from another
/// process that took the port). When the child exits first (its port was taken?) the error is
/// [`io::ErrorKind::AddrInUse`], for [`on_free_port`] to try another port; after 30 s it is
/// [`io::ErrorKind::TimedOut`]. The child is killed on either error.
pub fn spawn_ready(
    command: &mut Command,
    port: u16,
    mut ready: impl FnMut(u32) -> bool,
) -> io::Result<Child> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = |mut child: Child, kind, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        Err(io::Error::new(kind, why))
    };
    loop {
        if ready(child.id()) {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let why =
                format!("{program} exited ({status}) before it was ready (port {port} taken?)");
            return failed(child, io::ErrorKind::AddrInUse, why);
        }
        if Instant::now() > deadline {
            let why = format!("{program} was not ready on port {port} within 30 s");
            return failed(child, io::ErrorKind::TimedOut, why);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the Redis (or Sentinel) on `port` answers and is process `pid` (`INFO server`),
/// not another process that took the port first.
fn answers_as(port: u16, pid: u32) -> bool {
    let line = format!("process_id:{pid}\r\n");
    matches!(command(port, &[b"INFO", b"server"]),
        Ok(Reply::Bulk(Some(info))) if String::from_utf8_lossy(&info).contains(&line))
}

/// Whether a write on the master on `port` reaches `replicas` of its replicas within 500 ms
/// (`FLUSHALL`, replicated, then `WAIT` on the same connection): a replica is in sync and its
/// master streams to it, as a write confirmed with `WAIT` needs. For a set not yet in use.
fn confirms_writes(port: u16, replicas: usize) -> bool {
    let wanted = replicas.to_string();
    matches!(
        commands(port, &[&[b"FLUSHALL"], &[b"WAIT", wanted.as_bytes(), b"500"]]).as_deref(),
        Ok([Reply::Simple(_), Reply::Int(n)]) if usize::try_from(*n).is_ok_and(|n| n >= replicas)
    )
}

/// A loopback proxy in front of a Redis server that holds every reply for
/// [`set_delay`](Self::set_delay) before passing it on: a Redis that answers slowly (a swapping
/// host, a saturated link), for the tests that check timeouts bound a handshake's wait.
#[derive(Debug)]
pub struct SlowLink {
    port: u16,
    delay_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl SlowLink {
    /// Starts the proxy to `127.0.0.1:upstream`, with no delay.
    pub fn start(upstream: u16) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (delay_ms.clone(), stop.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                // Requests pass at once; replies wait for the delay read when they arrive.
                splice(client, ("127.0.0.1", upstream), Some(d.clone()));
            }
        });
        Ok(Self {
            port,
            delay_ms,
            stop,
        })
    }

    /// `redis://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// How long each reply is held from now on.
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::SeqCst);
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Connects to `upstream` and copies both ways between it and `client` (replies held for
/// `delay_ms` when given); drops `client` when `upstream` does not answer.
fn splice(
    client: TcpStream,
    upstream: impl std::net::ToSocketAddrs,
    delay_ms: Option<Arc<AtomicU64>>,
) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    thread::spawn(move || pipe(client, server, None));
    thread::spawn(move || pipe(s2, c2, delay_ms));
}

fn pipe(mut from: TcpStream, mut to: TcpStream, delay_ms: Option<Arc<AtomicU64>>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(d) = &delay_ms {
            let ms = d.load(Ordering::SeqCst);
            if ms > 0 {
                thread::sleep(Duration::from_millis(ms));
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// What a Redis server answered (RESP2), read by [`command`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` and the like.
    Simple(String),
    /// `-ERR …`.
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$n` (`None`: the null bulk string).
    Bulk(Option<Vec<u8>>),
    /// `*n` (a null array reads as empty).
    Array(Vec<Reply>),
}

impl Reply {
    /// The text of a simple or bulk string.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Simple(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// Sends one command to the Redis (or Sentinel) on `127.0.0.1:port` and reads its reply,
/// within 2 s.
pub fn command(port: u16, args: &[&[u8]]) -> io::Result<Reply> {
    let mut replies = commands(port, &[args])?;
    replies
        .pop()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no reply"))
}

/// Sends commands one after the other on one connection and reads their replies, each
/// within 2 s.
fn commands(port: u16, each: &[&[&[u8]]]) -> io::Result<Vec<Reply>> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = io::BufReader::new(tcp.try_clone()?);
    let mut tcp = tcp;
    let mut replies = Vec::with_capacity(each.len());
    for args in each {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in *args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        tcp.write_all(&out)?;
        replies.push(read_reply(&mut reader)?);
    }
    Ok(replies)
}

fn read_reply(r: &mut impl io::BufRead) -> io::Result<Reply> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(bad("a truncated reply"));
    }
    let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let number = || text.parse::<i64>().map_err(|_| bad("a bad length"));
    Ok(match line[0] {
        b'+' => Reply::Simple(text),
        b'-' => Reply::Error(text),
        b':' => Reply::Int(number()?),
        b'$' => match usize::try_from(number()?) {
            Err(_) => Reply::Bulk(None),
            Ok(n) => {
                let mut body = vec![0u8; n + 2];
                r.read_exact(&mut body)?;
                body.truncate(n);
                Reply::Bulk(Some(body))
            }
        },
        b'*' => {
            let n = usize::try_from(number()?).unwrap_or(0);
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read_reply(r)?);
            }
            Reply::Array(items)
        }
        _ => return Err(bad("an unknown reply type")),
    })
}

/// `attempt`, made again every 100 ms while it fails, for up to `within`: its first success,
/// or its last failure.
pub fn retried<T, E>(within: Duration, mut attempt: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let by = Instant::now() + within;
    loop {
        match attempt() {
            Err(_) if Instant::now() < by => thread::sleep(Duration::from_millis(100)),
            done => return done,
        }
    }
}

/// A test whose peer tool cannot run (`why`): says it is skipped and how to install the
/// Debian `packages`; panics under CI, where every such test must run.
pub fn skipped<T>(why: String, packages: &str) -> Option<T> {
    assert!(
        std::env::var_os("CI").is_none(),
        "{why} and CI is set: install it (Debian: apt-get install -y {packages})"
    );
    eprintln!("SKIPPED: {why}; install it (Debian: apt-get install -y {packages})");
    None
}

/// A fresh directory for the files of a set of Redis processes (`kind`: sentinel, cluster)
/// of test `name`; `Err(why)` when the Redis tests are to be skipped (`TLSRESUME_SKIP_REDIS`)
/// or it cannot be made.
fn set_dir(kind: &str, name: &str) -> Result<std::path::PathBuf, String> {
    if std::env::var_os("TLSRESUME_SKIP_REDIS").is_some() {
        return Err("TLSRESUME_SKIP_REDIS is set".into());
    }
    let dir = std::env::temp_dir().join(format!(
        "tlsresume-{kind}-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot make a directory for the {kind} set ({e})"))?;
    Ok(dir)
}

/// Polls `ready` every 20 ms until it holds, or fails saying `what` after `deadline`.
fn wait_until(deadline: Instant, what: &str, mut ready: impl FnMut() -> bool) -> io::Result<()> {
    while !ready() {
        if Instant::now() > deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, what.to_owned()));
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A Redis master with replicas, watched by Sentinels (quorum: a majority of them; master
/// down after 3 s), each a child process on a free loopback port, no persistence; all killed
/// on drop. [`start`](Self::start) makes the smallest set (one replica, one Sentinel),
/// [`start_with`](Self::start_with) any other. Needs `redis-server` (Sentinel mode is
/// `redis-server FILE --sentinel`); without it `start` says the test is skipped, and fails
/// under CI.
#[derive(Debug)]
pub struct SentinelSet {
    name: String,
    dir: std::path::PathBuf,
    master: Option<Child>,
    master_port: u16,
    replicas: Vec<(Option<Child>, u16)>,
    sentinels: Vec<(Option<Child>, u16)>,
}

impl SentinelSet {
    /// A master, one replica and one Sentinel: see [`start_with`](Self::start_with).
    pub fn start(name: &str) -> Option<Self> {
        Self::start_with(name, 1, 1)
    }

    /// Starts a master, `replicas` replicas and `sentinels` Sentinels (quorum: a majority)
    /// and waits (at most 20 s) until every replica is in sync and every Sentinel knows every
    /// replica and every other Sentinel. `None` (the test says it is skipped) when
    /// `redis-server` cannot run; panics under CI in that case.
    pub fn start_with(name: &str, replicas: usize, sentinels: usize) -> Option<Self> {
        let skip = |why: String| skipped(why, "redis-server redis-sentinel");
        let dir = match set_dir("sentinel", name) {
            Ok(dir) => dir,
            Err(why) => return skip(why),
        };
        let mut set = Self {
            name: name.to_owned(),
            dir,
            master: None,
            master_port: 0,
            replicas: (0..replicas.max(1)).map(|_| (None, 0)).collect(),
            sentinels: (0..sentinels.max(1)).map(|_| (None, 0)).collect(),
        };
        match set.spawn_all() {
            Ok(()) => Some(set),
            Err(e) => skip(format!(
                "cannot run redis-server with replicas and Sentinels ({e})"
            )),
        }
    }

    /// A server on a free port whose files (a replica's received RDB) go to a directory of
    /// its own, once it answers PING; another port when it exits first.
    fn server(&self, extra: &[&str]) -> io::Result<(Child, u16)> {
        on_free_port(|port| {
            let dir = self.dir.join(port.to_string());
            std::fs::create_dir_all(&dir)?;
            let child = spawn_ready(
                Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .arg("--dir")
                    .arg(&dir)
                    .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                    .args(extra)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
                port,
                |pid| answers_as(port, pid),
            )?;
            Ok((child, port))
        })
    }

    fn spawn_all(&mut self) -> io::Result<()> {
        let (child, port) = self.server(&[])?;
        (self.master, self.master_port) = (Some(child), port);
        let master = port.to_string();
        for i in 0..self.replicas.len() {
            let (child, port) = self.server(&["--replicaof", "127.0.0.1", &master])?;
            self.replicas[i] = (Some(child), port);
        }
        let quorum = self.sentinels.len() / 2 + 1;
        // With one Sentinel, a failover that did not finish is tried again after twice the
        // timeout; with several, a split vote is too, so it is kept short.
        let failover_timeout = if self.sentinels.len() > 1 {
            3000
        } else {
            10000
        };
        // A server is judged down after 3 s without an answer. With 1 s, on a 2-core machine
        // with both cores busy, the Sentinels failed over a second time, from a live master, in
        // the middle of a test. A test's own kill is seen 2 s later; the tests measure the
        // promotion and bound their windows with it.
        let down_after = 3000;
        for i in 0..self.sentinels.len() {
            let sentinel = on_free_port(|port| {
                let conf = self.dir.join(format!("sentinel-{port}.conf"));
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\n\
                         sentinel monitor {name} 127.0.0.1 {master} {quorum}\n\
                         sentinel down-after-milliseconds {name} {down_after}\n\
                         sentinel failover-timeout {name} {failover_timeout}\n",
                        dir = self.dir.display(),
                        name = self.name,
                    ),
                )?;
                let child = spawn_ready(
                    Command::new("redis-server")
                        .arg(&conf)
                        .arg("--sentinel")
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null()),
                    port,
                    |pid| answers_as(port, pid),
                )?;
                Ok((Some(child), port))
            })?;
            self.sentinels[i] = sentinel;
        }
        // In sync from the master's side too: a write is acknowledged by every replica, as
        // the tests' writes confirmed with WAIT need from their first key on.
        wait_until(
            Instant::now() + Duration::from_secs(20),
            "the replicas were not in sync, or the Sentinels did not know them and each other, within 20 s",
            || {
                self.replicas_in_sync()
                    && confirms_writes(self.master_port, self.replicas.len())
                    && self.sentinels_know_all()
            },
        )
    }

    fn replicas_in_sync(&self) -> bool {
        self.replicas.iter().all(|(_, port)| {
            matches!(
                command(*port, &[b"INFO", b"replication"]),
                Ok(Reply::Bulk(Some(info))) if String::from_utf8_lossy(&info).contains("master_link_status:up")
            )
        })
    }

    fn sentinels_know_all(&self) -> bool {
        let name = self.name.as_bytes();
        let (replicas, others) = (self.replicas.len(), self.sentinels.len() - 1);
        self.sentinels.iter().all(|(_, port)| {
            matches!(
                command(*port, &[b"SENTINEL", b"REPLICAS", name]),
                Ok(Reply::Array(r)) if r.len() >= replicas
            ) && matches!(
                command(*port, &[b"SENTINEL", b"SENTINELS", name]),
                Ok(Reply::Array(s)) if s.len() >= others
            )
        })
    }

    /// `redis+sentinel://127.0.0.1:PORT[,127.0.0.1:PORT…]/NAME`, every Sentinel listed.
    pub fn url(&self) -> String {
        let sentinels: Vec<String> = self
            .sentinels
            .iter()
            .map(|(_, port)| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+sentinel://{}/{}", sentinels.join(","), self.name)
    }

    /// The port of the first master.
    pub fn master_port(&self) -> u16 {
        self.master_port
    }

    /// The port of the first replica (the master after a failover of a set with one).
    pub fn replica_port(&self) -> u16 {
        self.replicas[0].1
    }

    /// The ports of every Redis server of the set, the first master's first, killed or not.
    pub fn server_ports(&self) -> Vec<u16> {
        std::iter::once(self.master_port)
            .chain(self.replicas.iter().map(|(_, port)| *port))
            .collect()
    }

    /// The master's port as the first Sentinel that answers names it now.
    pub fn current_master(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|(_, port)| {
            match command(
                *port,
                &[
                    b"SENTINEL",
                    b"GET-MASTER-ADDR-BY-NAME",
                    self.name.as_bytes(),
                ],
            ) {
                Ok(Reply::Array(addr)) => addr.get(1)?.text()?.parse().ok(),
                _ => None,
            }
        })
    }

    /// Kills the master (SIGKILL: a crash or a lost host).
    pub fn kill_master(&mut self) {
        if let Some(mut child) = self.master.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the Sentinels name a replica as master and that replica says it is one;
    /// the time waited, or `None` after `within`.
    pub fn wait_for_promotion(&self, within: Duration) -> Option<Duration> {
        self.wait_for_new_master(within).map(|(_, waited)| waited)
    }

    /// As [`wait_for_promotion`](Self::wait_for_promotion), with the new master's port.
    pub fn wait_for_new_master(&self, within: Duration) -> Option<(u16, Duration)> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(port) = self
                .current_master()
                .filter(|p| *p != self.master_port && self.replicas.iter().any(|r| r.1 == *p))
            {
                if matches!(
                    command(port, &[b"ROLE"]),
                    Ok(Reply::Array(role)) if role.first().and_then(Reply::text).as_deref() == Some("master")
                ) {
                    return Some((port, start.elapsed()));
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Every key of the server on `port` (database 0) with its value (`GET`); empty when the
    /// server cannot be read (see [`try_entries`](Self::try_entries) for why).
    pub fn entries(port: u16) -> Vec<(Vec<u8>, Vec<u8>)> {
        Self::try_entries(port).unwrap_or_default()
    }

    /// [`try_entries`](Self::try_entries), tried again every 100 ms for up to `within` while
    /// the server cannot be read (a loaded machine answers late; a replica loads); the last
    /// reason when it never could.
    pub fn entries_within(port: u16, within: Duration) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        retried(within, || Self::try_entries(port))
    }

    /// As [`entries`](Self::entries), or why the server could not be read: unreachable, a
    /// reply late, or an error reply (a replica still loading its master's data answers
    /// `-LOADING`). A key that expires between `KEYS` and its `GET` is left out.
    pub fn try_entries(port: u16) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let refused = |what: &str, reply: Reply| {
            io::Error::other(format!("{what} on port {port} answered {reply:?}"))
        };
        let keys = match command(port, &[b"KEYS", b"*"])? {
            Reply::Array(keys) => keys,
            other => return Err(refused("KEYS *", other)),
        };
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            let Reply::Bulk(Some(key)) = key else {
                return Err(refused("KEYS * (an item)", key));
            };
            match command(port, &[b"GET", &key])? {
                Reply::Bulk(Some(value)) => entries.push((key, value)),
                Reply::Bulk(None) => {}
                other => return Err(refused("GET", other)),
            }
        }
        Ok(entries)
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        let children = self
            .sentinels
            .iter_mut()
            .chain(self.replicas.iter_mut())
            .map(|(child, _)| child)
            .chain(std::iter::once(&mut self.master));
        for child in children {
            if let Some(mut c) = child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A round-robin balancer on a loopback port: connection `n` goes to `nodes[n % len]`, so
/// consecutive connections land on different nodes (one address for a fleet, as its clients
/// see it: one session cache entry). Runs until the process exits.
pub fn round_robin(nodes: Vec<std::net::SocketAddr>) -> io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for (n, client) in listener.incoming().enumerate() {
            let Ok(client) = client else { return };
            let Some(node) = nodes.get(n % nodes.len().max(1)) else {
                return;
            };
            splice(client, *node, None);
        }
    });
    Ok(addr)
}

/// A Redis Cluster of three masters, each with one replica (`redis-server --cluster-enabled
/// yes`, joined with `redis-cli --cluster create`), on free loopback ports, no persistence, a
/// node counted as failed after 1 s (`cluster-node-timeout 1000`); all killed on drop. Needs
/// `redis-server` and `redis-cli` (Debian: `redis-server`, which brings `redis-tools`);
/// without them `start` says the test is skipped, and fails under CI.
#[derive(Debug)]
pub struct ClusterSet {
    dir: std::path::PathBuf,
    nodes: Vec<(u16, Option<Child>)>,
}

/// How many masters a [`ClusterSet`] has (each with one replica).
const CLUSTER_MASTERS: usize = 3;

impl ClusterSet {
    /// Starts six nodes, joins them into a cluster and waits (at most 20 s) until every node
    /// says the cluster is up and every replica is in sync. `None` (the test says it is
    /// skipped) when `redis-server` or `redis-cli` cannot run; panics under CI in that case.
    pub fn start(name: &str) -> Option<Self> {
        let skip = |why: String| skipped(why, "redis-server redis-tools");
        let dir = match set_dir("cluster", name) {
            Ok(dir) => dir,
            Err(why) => return skip(why),
        };
        let mut set = Self {
            dir,
            nodes: Vec::new(),
        };
        match set.spawn_all() {
            Ok(()) => Some(set),
            Err(e) => skip(format!("cannot run a Redis Cluster ({e})")),
        }
    }

    fn spawn_all(&mut self) -> io::Result<()> {
        for _ in 0..CLUSTER_MASTERS * 2 {
            let node = on_free_port(|port| {
                let child = spawn_ready(
                    Command::new("redis-server")
                        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                        .arg("--dir")
                        .arg(&self.dir)
                        .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                        .arg(format!("nodes-{port}.conf"))
                        .args(["--cluster-node-timeout", "1000"])
                        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null()),
                    port,
                    |pid| answers_as(port, pid),
                )?;
                Ok((port, Some(child)))
            })?;
            self.nodes.push(node);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let ports: Vec<u16> = self.nodes.iter().map(|(p, _)| *p).collect();
        // The first three become masters, the others their replicas.
        let mut create = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        loop {
            if let Some(status) = create.try_wait()? {
                if !status.success() {
                    return Err(io::Error::other(format!(
                        "redis-cli --cluster create failed ({status})"
                    )));
                }
                break;
            }
            if Instant::now() > deadline {
                let _ = create.kill();
                let _ = create.wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "redis-cli --cluster create did not finish",
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        wait_until(
            deadline,
            "the cluster was not up with its replicas in sync within 20 s",
            || self.is_up(),
        )
    }

    /// Whether every live node says the cluster is up, every live replica is in sync, and a
    /// write on every master is acknowledged by its replica (as the tests' writes confirmed
    /// with WAIT need from their first key on). For a cluster not yet in use (`FLUSHALL`).
    fn is_up(&self) -> bool {
        self.live_ports().into_iter().all(|p| {
            let ok = matches!(command(p, &[b"CLUSTER", b"INFO"]),
                Ok(Reply::Bulk(Some(i))) if String::from_utf8_lossy(&i).contains("cluster_state:ok"));
            let synced = match command(p, &[b"INFO", b"replication"]) {
                Ok(Reply::Bulk(Some(i))) => {
                    let info = String::from_utf8_lossy(&i);
                    if info.contains("role:master") {
                        confirms_writes(p, 1)
                    } else {
                        info.contains("master_link_status:up")
                    }
                }
                _ => false,
            };
            ok && synced
        })
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|(_, c)| c.is_some())
            .map(|(p, _)| *p)
            .collect()
    }

    /// `redis+cluster://127.0.0.1:M1,127.0.0.1:M2,127.0.0.1:M3` (the first masters).
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.nodes[..CLUSTER_MASTERS]
            .iter()
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// The ports of the nodes running now.
    pub fn ports(&self) -> Vec<u16> {
        self.live_ports()
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &[u8]) -> Option<i64> {
        let port = *self.live_ports().first()?;
        match command(port, &[b"CLUSTER", b"KEYSLOT", key]) {
            Ok(Reply::Int(slot)) => Some(slot),
            _ => None,
        }
    }

    /// The port of the master serving `slot`, as the live nodes say (`CLUSTER NODES`): a
    /// node flagged `master`, not failed, whose ranges hold the slot.
    pub fn master_of(&self, slot: i64) -> Option<u16> {
        let port = *self.live_ports().first()?;
        let Ok(Reply::Bulk(Some(text))) = command(port, &[b"CLUSTER", b"NODES"]) else {
            return None;
        };
        String::from_utf8_lossy(&text).lines().find_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let flags = fields.get(2)?;
            if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                return None;
            }
            let serves = fields.iter().skip(8).any(|range| {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                matches!((lo.parse::<i64>(), hi.parse::<i64>()), (Ok(lo), Ok(hi)) if lo <= slot && slot <= hi)
            });
            let addr = fields.get(1)?.split('@').next()?;
            serves.then(|| addr.rsplit_once(':')?.1.parse().ok()).flatten()
        })
    }

    /// Kills the node on `port` (SIGKILL: a crash or a lost host).
    pub fn kill(&mut self, port: u16) {
        for (p, child) in &mut self.nodes {
            if *p == port {
                if let Some(mut c) = child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
    }

    /// Waits until another node than `old` serves `slot` as master and the live nodes say
    /// the cluster is up; its port and the time waited, or `None` after `within`.
    pub fn wait_for_failover(
        &self,
        slot: i64,
        old: u16,
        within: Duration,
    ) -> Option<(u16, Duration)> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(new) = self.master_of(slot).filter(|p| *p != old) {
                let all_ok = self.live_ports().into_iter().all(|p| {
                    matches!(command(p, &[b"CLUSTER", b"INFO"]),
                        Ok(Reply::Bulk(Some(i))) if String::from_utf8_lossy(&i).contains("cluster_state:ok"))
                });
                if all_ok {
                    return Some((new, start.elapsed()));
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Every key a node serves (database 0) with its value (`GET`): on a master, the keys of
    /// its slots.
    pub fn entries(port: u16) -> Vec<(Vec<u8>, Vec<u8>)> {
        SentinelSet::entries(port)
    }
}

impl Drop for ClusterSet {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            if let Some(mut c) = child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
