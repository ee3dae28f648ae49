//! The SYNs to one port on loopback, captured with `tcpdump` (Debian package `tcpdump`, as
//! root): what the kernel put on the wire, as the evidence of TCP Fast Open. A test that
//! cannot capture fails under `CI` and says SKIPPED elsewhere ([`skip`]).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Skips the test (SKIPPED on stderr), or fails it under `CI`, for `why`.
pub fn skip(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run this test: {why}"
    );
    eprintln!("SKIPPED: {why}");
}

/// `tcpdump` writing the SYNs (without ACK) to one port on loopback to a file.
pub struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    pub fn start(port: u16) -> Option<Self> {
        let file = std::env::temp_dir().join(format!(
            "tlsresume-fastopen-{}-{port}.pcap",
            std::process::id()
        ));
        let filter =
            format!("tcp dst port {port} and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn");
        let spawned = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "--immediate-mode", "-U", "-s", "0", "-w"])
            .arg(&file)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                skip(&format!("tcpdump cannot run (Debian package tcpdump): {e}"));
                return None;
            }
        };
        // It says "listening on lo" once it captures.
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            panic!("tcpdump's stderr");
        };
        let mut first = String::new();
        let _ = BufReader::new(stderr).read_line(&mut first);
        if !first.contains("listening on") {
            let _ = child.kill();
            let _ = child.wait();
            skip(&format!("tcpdump cannot capture on lo (root): {first}"));
            return None;
        }
        Some(Self { child, file })
    }

    /// Stops the capture (SIGTERM to this tcpdump) and returns the SYNs' payloads.
    pub fn payloads(mut self) -> Vec<Vec<u8>> {
        // Every packet is written when seen (--immediate-mode, -U); a moment for the last one.
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(Instant::now() < deadline, "tcpdump did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        let bytes = std::fs::read(&self.file).expect("the capture file");
        let _ = std::fs::remove_file(&self.file);
        tcp_payloads(&bytes)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The TCP payload of every IPv4 packet in a pcap file (Ethernet, or Linux cooked headers).
pub fn tcp_payloads(pcap: &[u8]) -> Vec<Vec<u8>> {
    let u32_at = |b: &[u8], at: usize, le: bool| {
        let w: [u8; 4] = b[at..at + 4].try_into().expect("4 bytes");
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    assert!(pcap.len() >= 24, "a pcap file");
    let le = matches!(
        pcap[..4],
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1]
    );
    let link = u32_at(pcap, 20, le);
    let link_header = match link {
        1 => 14,   // Ethernet (loopback's)
        113 => 16, // Linux cooked
        276 => 20, // Linux cooked v2
        other => panic!("link type {other}"),
    };
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let caplen = u32_at(pcap, at + 8, le) as usize;
        let frame = &pcap[at + 16..(at + 16 + caplen).min(pcap.len())];
        at += 16 + caplen;
        let Some(ip) = frame.get(link_header..) else {
            continue;
        };
        if ip.first().map(|b| b >> 4) != Some(4) {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let Some(tcp) = ip.get(ihl..total) else {
            continue;
        };
        let Some(offset) = tcp.get(12).map(|b| usize::from(b >> 4) * 4) else {
            continue;
        };
        out.push(tcp.get(offset..).unwrap_or_default().to_vec());
    }
    out
}
