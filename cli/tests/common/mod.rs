//! What the tests of the `tlsresume` binary share: running it as a bounded process, and
//! `serve` started on loopback with its log read line by line.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tlsresume");

/// The longest a command may run before the test fails.
pub const LIMIT: Duration = Duration::from_secs(120);

/// The longest to wait for one line of a server's log.
pub const LINE_WAIT: Duration = Duration::from_secs(60);

/// A finished command.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Runs the binary with `args`, killing it if it runs past [`LIMIT`].
pub fn run(args: &[&str]) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tlsresume");
    let out = drain(child.stdout.take().expect("stdout"));
    let err = drain(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tlsresume {args:?} ran longer than {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Asserts a bad-argument failure: exit 2, one line `tlsresume: …` on stderr, nothing on
/// stdout, no panic.
pub fn assert_one_line_error(run: &Run, mentions: &str) {
    assert_eq!(run.code, Some(2), "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{run:?}");
    assert!(lines[0].starts_with("tlsresume: "), "{run:?}");
    assert!(lines[0].contains(mentions), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

/// A running `tlsresume serve`, killed on drop.
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its stdout, line by line.
    pub lines: Receiver<String>,
    /// The address it listens on.
    pub addr: String,
}

impl Server {
    /// Starts `serve --listen 127.0.0.1:0` with `args` (and `--timeout 30` unless they set one)
    /// and waits for its `listening on` line.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with(args, false)
    }

    /// Starts `serve --json`: the first line is `{"listening": ADDR}`.
    pub fn start_json(args: &[&str]) -> Self {
        Self::start_with(args, true)
    }

    pub fn start_with(args: &[&str], json: bool) -> Self {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        if !args.contains(&"--timeout") {
            all.extend(["--timeout", "30"]);
        }
        all.extend_from_slice(args);
        all.extend(json.then_some("--json"));
        let mut server = Self::spawn(&all);
        let first = server.line();
        server.addr = if json {
            let v: serde_json::Value = serde_json::from_str(&first).expect("JSON first line");
            v["listening"].as_str().expect("listening").to_owned()
        } else {
            first
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("unexpected first line '{first}'"))
                .to_owned()
        };
        assert!(server.addr.starts_with("127.0.0.1:"), "{first}");
        assert!(!server.addr.ends_with(":0"), "{first}");
        server
    }

    /// Spawns `serve` with `args` as they are; `addr` is left for the caller to fill in.
    pub fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tlsresume serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            addr: String::new(),
        }
    }

    /// The next log line, waiting at most [`LINE_WAIT`].
    pub fn line(&self) -> String {
        self.lines
            .recv_timeout(LINE_WAIT)
            .expect("a server log line in time")
    }

    /// Starts `serve --listen 127.0.0.1:PORT` with `args` on a free port, fixed (for a node
    /// started again on the same address), and waits for its `listening on` line; another free
    /// port when serve exits before it (the port was taken before serve bound it).
    pub fn start_on_free_port(args: &[&str]) -> Self {
        let started = tlsresume_compare::redis::on_free_port(|port| {
            let listen = format!("127.0.0.1:{port}");
            let mut server = Self::spawn(&[&["--listen", listen.as_str()], args].concat());
            match server.lines.recv_timeout(LINE_WAIT) {
                Ok(line) => {
                    assert_eq!(line, format!("listening on {listen}"));
                    server.addr = listen;
                    Ok(server)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("serve exited before listening on {listen}"),
                )),
                Err(e) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, e)),
            }
        });
        started.expect("serve listening on a free port")
    }

    /// Waits for the server to exit by itself (after --max-connections); its status code.
    pub fn wait_exit(mut self) -> Option<i32> {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "serve did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file of the committed test PKI.
pub fn pki(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/pki")
        .join(file)
        .display()
        .to_string()
}

/// A TLS client of `backend` trusting the committed test CA.
pub fn tls_client(backend: &str) -> Arc<dyn tlsresume::ClientContext> {
    let roots = tlsresume::certificates_from_pem_file(pki("ca.pem").as_ref()).expect("CA");
    tlsresume::backends::client(
        tlsresume::backends::parse(backend).expect("backend"),
        tlsresume::ClientSettings::new(roots),
    )
    .expect("client")
}

/// A KEK file (64 hex digits) with `mode`.
pub fn kek_file(dir: &Path, name: &str, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(
        &path,
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    )
    .expect("write the KEK");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path.display().to_string()
}

/// Calls `connect` again and again, `pace` apart (a client's load), until `stop` is set; what
/// each call returned, in order.
pub fn until_stopped<T>(
    stop: &AtomicBool,
    pace: Duration,
    mut connect: impl FnMut() -> T,
) -> Vec<T> {
    let mut all = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        all.push(connect());
        thread::sleep(pace);
    }
    all
}
