//! HAProxy in front of a fleet of servers for the tests: TCP mode, round robin, on loopback
//! ports, started with a generated configuration and killed on drop; its runtime API (on a
//! loopback port, admin level) takes a server out and puts it back, as an operator drains a
//! node before restarting it.
//!
//! Needs `haproxy` on the PATH (Debian: `apt-get install -y haproxy`). Without it a test
//! reports itself skipped, except under CI (`CI` set), where it fails.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::redis::{free_port, on_free_port, skipped, spawn_ready};

/// The backend's name in the generated configuration.
pub const BACKEND: &str = "fleet";

/// A running `haproxy` balancing TCP connections over servers named `node1`, `node2`, …
#[derive(Debug)]
pub struct Haproxy {
    child: Option<Child>,
    dir: PathBuf,
    front: SocketAddr,
    admin: SocketAddr,
    config: String,
}

impl Haproxy {
    /// Starts HAProxy in front of `nodes` (`node1` is `nodes[0]`, …) and waits until it
    /// accepts connections. `None` (the test says it is skipped) when `haproxy` cannot run;
    /// panics under CI in that case.
    pub fn start(nodes: &[SocketAddr]) -> Option<Self> {
        // Other ports when haproxy exits (one of its ports was taken before it bound it).
        let started = on_free_port(|port| {
            let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            let dir = std::env::temp_dir()
                .join(format!("tlsresume-haproxy-{}-{port}", std::process::id(),));
            let mut proxy = Self {
                child: None,
                dir,
                front,
                admin,
                config: Self::config(front, admin, nodes),
            };
            proxy.spawn().map(|()| proxy)
        });
        started.map_or_else(
            |e| skipped(format!("cannot run haproxy ({e})"), "haproxy"),
            Some,
        )
    }

    /// The configuration: round robin in TCP mode; a connection refused by a server is tried
    /// again on another (`retries`, `option redispatch`); servers checked by TCP connect.
    pub fn config(front: SocketAddr, admin: SocketAddr, nodes: &[SocketAddr]) -> String {
        let mut config = format!(
            "global\n\
             \x20   maxconn 4096\n\
             \x20   stats socket ipv4@{admin} level admin\n\
             \n\
             defaults\n\
             \x20   mode tcp\n\
             \x20   timeout connect 1s\n\
             \x20   timeout client 30s\n\
             \x20   timeout server 30s\n\
             \x20   retries 3\n\
             \x20   option redispatch 1\n\
             \n\
             frontend smtps\n\
             \x20   bind {front}\n\
             \x20   default_backend {BACKEND}\n\
             \n\
             backend {BACKEND}\n\
             \x20   balance roundrobin\n"
        );
        for (i, node) in nodes.iter().enumerate() {
            config.push_str(&format!(
                "    server node{} {node} check inter 500ms fall 2 rise 1\n",
                i + 1
            ));
        }
        config
    }

    fn spawn(&mut self) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let file = self.dir.join("haproxy.cfg");
        std::fs::write(&file, &self.config)?;
        // -db: stay in the foreground, no daemon; -q: no startup chatter.
        let (admin, front) = (self.admin, self.front);
        let child = spawn_ready(
            Command::new("haproxy")
                .arg("-db")
                .arg("-q")
                .arg("-f")
                .arg(&file)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit()),
            front.port(),
            |_| TcpStream::connect(admin).is_ok() && TcpStream::connect(front).is_ok(),
        )?;
        self.child = Some(child);
        Ok(())
    }

    /// The address clients connect to.
    pub fn front(&self) -> SocketAddr {
        self.front
    }

    /// The generated configuration.
    pub fn config_text(&self) -> &str {
        &self.config
    }

    /// Sends one command to the runtime API and returns its answer.
    pub fn command(&self, line: &str) -> io::Result<String> {
        let mut tcp = TcpStream::connect(self.admin)?;
        tcp.set_read_timeout(Some(Duration::from_secs(2)))?;
        tcp.write_all(format!("{line}\n").as_bytes())?;
        let mut answer = String::new();
        tcp.read_to_string(&mut answer)?;
        Ok(answer)
    }

    /// Takes `node` (`node1`, …) out of the rotation (maintenance: no new connection goes
    /// to it) and waits, at most `within`, until it holds no connection.
    pub fn drain(&self, node: &str, within: Duration) -> io::Result<()> {
        self.command(&format!("set server {BACKEND}/{node} state maint"))?;
        let deadline = Instant::now() + within;
        loop {
            if self.current_sessions(node)? == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{node} still held connections after {within:?}"),
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Puts `node` back into the rotation.
    pub fn ready(&self, node: &str) -> io::Result<()> {
        self.command(&format!("set server {BACKEND}/{node} state ready"))
            .map(drop)
    }

    /// The connections `node` holds now (`scur` of `show stat`).
    pub fn current_sessions(&self, node: &str) -> io::Result<u64> {
        self.stat(node, "scur")?
            .parse()
            .map_err(|_| io::Error::other(format!("scur of {node} is not a number")))
    }

    /// Whether HAProxy's health check sees `node` up (`status` of `show stat`).
    pub fn is_up(&self, node: &str) -> io::Result<bool> {
        Ok(self.stat(node, "status")?.starts_with("UP"))
    }

    /// One field of `node`'s line in `show stat`.
    fn stat(&self, node: &str, field: &str) -> io::Result<String> {
        let stat = self.command("show stat")?;
        let mut lines = stat.lines();
        let header = lines.next().unwrap_or_default();
        let column = header
            .trim_start_matches("# ")
            .split(',')
            .position(|c| c == field)
            .ok_or_else(|| io::Error::other(format!("show stat has no {field} column")))?;
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&BACKEND) && f.get(1) == Some(&node))
            .and_then(|f| f.get(column).map(|v| (*v).to_owned()))
            .ok_or_else(|| io::Error::other(format!("show stat does not list {BACKEND}/{node}")))
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
