//! Exim from Debian (`exim4-daemon-heavy`) as a peer for tests: a daemon on a free loopback
//! port with a minimal configuration and its own spool, killed on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running Exim daemon.
#[derive(Debug)]
pub struct Exim {
    child: Child,
    /// `127.0.0.1:port`.
    pub addr: String,
    /// Its spool directory (messages it queued are in `input/`).
    pub spool: PathBuf,
}

impl Drop for Exim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Exim {
    /// The address to connect to.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr.parse().unwrap_or_else(|_| crate::loopback(0))
    }

    /// The header files (`-H`) of the messages it queued, as text.
    pub fn queued(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.spool.join("input")) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with("-H"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }
}

/// A file of the committed TEST PKI (`tests/pki/`).
pub fn pki_file(name: &str) -> String {
    format!("{}/pki/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Starts Exim in `dir` with STARTTLS (the committed test PKI's ECDSA server certificate),
/// then the main options `main` and the rest of the configuration `rest` (from `begin acl`).
/// `None` when it cannot run here: SKIPPED on stderr, or a failed test under `CI`.
pub fn start(dir: &Path, main: &str, rest: &str) -> Option<Exim> {
    let binary = ["/usr/sbin/exim4", "exim4"].into_iter().find(|b| {
        Command::new(b)
            .arg("-bV")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let Some(binary) = binary else {
        assert!(
            std::env::var_os("CI").is_none(),
            "exim4 is needed under CI (Debian package exim4-daemon-heavy)"
        );
        eprintln!(
            "SKIPPED: exim4 is not installed (Debian: apt-get install -y exim4-daemon-heavy)"
        );
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let (spool, log) = (dir.join("spool"), dir.join("log"));
    for d in [&spool, &log] {
        std::fs::create_dir_all(d).expect("exim's directories");
    }
    let conf = format!(
        "primary_hostname = mx.tlsresume.test\n\
         daemon_smtp_ports = {port}\n\
         local_interfaces = 127.0.0.1\n\
         spool_directory = {spool}\n\
         log_file_path = {log}/%slog\n\
         pid_file_path = {spool}/exim.pid\n\
         tls_advertise_hosts = *\n\
         tls_certificate = {cert}\n\
         tls_privatekey = {key}\n\
         {main}\n{rest}",
        spool = spool.display(),
        log = log.display(),
        cert = pki_file("server-ecdsa.pem"),
        key = pki_file("server-ecdsa.key"),
    );
    let path = dir.join("exim.conf");
    std::fs::write(&path, conf).expect("exim.conf");
    // Run as root, Exim writes its spool and log as its own user (the configuration stays
    // the caller's: Exim refuses one that is not root's).
    let _ = Command::new("chown")
        .arg("-R")
        .arg("Debian-exim")
        .args([&spool, &log])
        .status();
    let child = Command::new(binary)
        .arg("-C")
        .arg(&path)
        .arg("-bdf")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn exim");
    let mut exim = Exim {
        child,
        addr: format!("127.0.0.1:{port}"),
        spool,
    };
    let sock = exim.socket_addr();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&sock, Duration::from_millis(200)).is_err() {
        let exited = exim.child.try_wait().ok().flatten().is_some();
        if exited || Instant::now() > deadline {
            let _ = exim.child.kill();
            let mut err = String::new();
            if let Some(mut e) = exim.child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            assert!(
                std::env::var_os("CI").is_none(),
                "exim did not listen under CI: {err}"
            );
            eprintln!("SKIPPED: exim cannot run a daemon here: {}", err.trim());
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
    Some(exim)
}
