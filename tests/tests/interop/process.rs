//! External processes for the interop tests: tools run under a kill-on-drop guard with
//! deadlines, servers on free loopback ports, temporary directories.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long one run of a client tool may take (and how long our servers wait for it).
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an external server may take to start listening (it is used as soon as it does).
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// A listener on a loopback port chosen by the system.
pub fn listen() -> (TcpListener, u16) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    (listener, port)
}

/// Whether `program` can be run; prints why the test is skipped when it cannot.
pub fn tool_present(program: &str, probe: &[&str]) -> bool {
    match Command::new(program)
        .args(probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Under CI a missing tool is a failure: the checks must run there.
            assert!(
                std::env::var_os("CI").is_none(),
                "`{program}` is not installed (Debian/Ubuntu packages: openssl, gnutls-bin) and \
                 CI is set: the interop checks must run"
            );
            eprintln!(
                "SKIPPED: `{program}` is not installed (Debian/Ubuntu packages: openssl, \
                 gnutls-bin); the checks that need it did not run"
            );
            false
        }
        Err(e) => panic!("cannot run {program}: {e}"),
    }
}

/// A child process killed (and reaped) when dropped, its stdout and stderr collected.
#[derive(Debug)]
pub struct Proc {
    program: String,
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Proc {
    /// Starts `program`; with `input`, writes it to stdin and closes stdin, else stdin is null.
    pub fn spawn(program: &str, args: &[String], input: Option<&[u8]>) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(collect(out, stdout.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(collect(err, stderr.clone()));
        }
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            // Closed when dropped at the end of this block.
            let _ = stdin.write_all(data);
        }
        Self {
            program: program.to_owned(),
            child,
            stdout,
            stderr,
            readers,
        }
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => return None,
            }
        }
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills the process if still running and returns everything it printed.
    pub fn finish(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.text()
    }

    pub fn text(&self) -> String {
        let get = |b: &Arc<Mutex<Vec<u8>>>| {
            String::from_utf8_lossy(&b.lock().map(|v| v.clone()).unwrap_or_default()).into_owned()
        };
        format!(
            "--- {} stdout ---\n{}--- stderr ---\n{}",
            self.program,
            get(&self.stdout),
            get(&self.stderr)
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut v) = into.lock() {
                v.extend_from_slice(&buf[..n]);
            }
        }
    })
}

/// What one run of a client tool did.
#[derive(Debug)]
pub struct ToolRun {
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    pub text: String,
}

impl ToolRun {
    pub fn exited_ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs a client tool to completion (killed after `TOOL_TIMEOUT`) with `input` on stdin.
pub fn run_tool(program: &str, args: &[String], input: &[u8]) -> ToolRun {
    let mut proc = Proc::spawn(program, args, Some(input));
    let status = proc.wait(TOOL_TIMEOUT);
    let text = proc.finish();
    ToolRun {
        status,
        timed_out: status.is_none(),
        text,
    }
}

/// An external server on a free loopback port, killed when dropped.
#[derive(Debug)]
pub struct ExternalServer {
    proc: Mutex<Proc>,
    port: u16,
}

impl ExternalServer {
    /// Starts `program` with the arguments `args(port)` on a free port and waits (at most
    /// `LISTEN_TIMEOUT`) until it accepts connections; retries on another port if it exits or
    /// says the port is in use (another process took the port first).
    pub fn start(program: &str, args: impl Fn(u16) -> Vec<String>) -> Self {
        Self::start_saying(program, args, None)
    }

    /// The same, ready only once the server prints `listening(port)` when given: for a server
    /// that carries on when one of its binds fails (gnutls-serv binds IPv4 and IPv6 apart), so
    /// that a connection accepted by another process on the port is not taken for its own.
    pub fn start_saying(
        program: &str,
        args: impl Fn(u16) -> Vec<String>,
        listening: Option<fn(u16) -> String>,
    ) -> Self {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut proc = Proc::spawn(program, &args(port), None);
            let deadline = Instant::now() + LISTEN_TIMEOUT;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            while Instant::now() < deadline && !proc.exited() {
                let said = proc.text();
                if said.contains("Address already in use") {
                    break;
                }
                let ready = match listening {
                    Some(line) => said.contains(&line(port)),
                    // The probe is a plain TCP connection the server sees fail its handshake.
                    None => TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
                };
                if ready {
                    return Self {
                        proc: Mutex::new(proc),
                        port,
                    };
                }
                thread::sleep(Duration::from_millis(20));
            }
            last = proc.finish();
        }
        panic!("{program} did not start listening:\n{last}");
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        self.proc
            .lock()
            .map(|p| p.text())
            .unwrap_or_else(|_| "(log unavailable)".into())
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    listen().1
}

/// A fresh directory under Cargo's per-test temporary directory, removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "interop-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temporary directory");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
