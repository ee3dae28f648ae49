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
        let port = free_port();
        let mut server = Self {
            child: None,
            port,
            tls,
        };
        match server.spawn() {
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
    /// answer within 10 s.
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
        let child = cmd
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        // Ready when it answers PING (inline command, no client library needed).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.ping() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "redis-server did not answer PING within 10 s",
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server answers: PING in clear; for a TLS server, listening is enough (the
    /// TLS handshake is the test's).
    fn ping(&self) -> bool {
        let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.tls {
            return true;
        }
        let _ = tcp.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        tcp.write_all(b"PING\r\n").is_ok()
            && tcp.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
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
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                // Requests pass at once; replies wait for the delay read when they arrive.
                thread::spawn(move || pipe(client, server, None));
                let d = d.clone();
                thread::spawn(move || pipe(s2, c2, Some(d)));
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
