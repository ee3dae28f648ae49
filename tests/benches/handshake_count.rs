//! N handshakes of one case, for instruction counting under callgrind
//! (`scripts/callgrind-overhead` runs it).
//!
//! ```text
//! handshake_count <openssl|gnutls|rustls> <tls12|tls13> <ecdsa|rsa> <full|resumed> <tlsresume|raw> <N>
//! ```
//!
//! The server and client are those of the `handshake` bench (`common/mod.rs`): the client on
//! the main thread, the server on a thread of its own named `server`, over a fresh
//! `UnixStream::pair()` per handshake. Before the N handshakes the case is primed and checked
//! as in `handshake` (a resumed case: one full handshake, then every handshake must resume; a
//! full case: none may). The script runs this twice with different N and takes the difference,
//! so everything outside the handshake loop (loading the PKI, building configurations, thread
//! start) cancels out.
//!
//! Without arguments (as `cargo bench` runs every bench) it prints how to use it and exits.

use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;

use tlsresume_core::{BackendKind, ProtocolVersion};

mod common;

use common::{ends, Case, Cert, Imp, Mode};

const USAGE: &str = "handshake_count <openssl|gnutls|rustls> <tls12|tls13> <ecdsa|rsa> \
                     <full|resumed> <tlsresume|raw> <N>";

fn parse(args: &[String]) -> Option<(Case, Imp, u32)> {
    let [backend, tls, cert, mode, imp, n] = args else {
        return None;
    };
    let backend: BackendKind = backend.parse().ok()?;
    let tls = match tls.as_str() {
        "tls12" => ProtocolVersion::Tls12,
        "tls13" => ProtocolVersion::Tls13,
        _ => return None,
    };
    let cert = match cert.as_str() {
        "ecdsa" => Cert::Ecdsa,
        "rsa" => Cert::Rsa,
        _ => return None,
    };
    let mode = match mode.as_str() {
        "full" => Mode::Full,
        "resumed" => Mode::Resumed,
        _ => return None,
    };
    let imp = match imp.as_str() {
        "tlsresume" => Imp::Tlsresume,
        "raw" => Imp::Raw,
        _ => return None,
    };
    let case = Case {
        backend,
        tls,
        cert,
        mode,
    };
    Some((case, imp, n.parse().ok()?))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((case, imp, n)) = parse(&args) else {
        println!("usage: {USAGE}\n(run by scripts/callgrind-overhead; nothing to do here)");
        return if args.is_empty() || args.iter().any(|a| a.starts_with("--")) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    };
    let (serve, connect) = ends(case, imp);
    let (to_server, conns) = mpsc::channel::<UnixStream>();
    let (done, served) = mpsc::channel::<Result<(), String>>();
    let server = thread::Builder::new()
        .name("server".into())
        .spawn(move || {
            for sock in conns {
                if done.send(serve(sock).map_err(|e| e.to_string())).is_err() {
                    return;
                }
            }
        })
        .expect("server thread");
    let handshake = |check: bool| -> Option<bool> {
        let (server_end, client_end) = UnixStream::pair().expect("socket pair");
        to_server.send(server_end).expect("server alive");
        let client = connect(client_end, check);
        let server = served.recv().expect("server result");
        if let Err(e) = server {
            panic!("{} {}: server: {e}", case.group(), imp.name());
        }
        client.unwrap_or_else(|e| panic!("{} {}: client: {e}", case.group(), imp.name()))
    };
    if case.resumes() {
        handshake(false);
    }
    for _ in 0..2 {
        let resumed = handshake(true).expect("checked");
        assert_eq!(resumed, case.resumes(), "{} {}", case.group(), imp.name());
    }
    handshake_loop(n, &handshake);
    drop(to_server);
    server.join().expect("server thread");
    println!("{} {}: {n} handshakes", case.group(), imp.name());
    ExitCode::SUCCESS
}

/// The measured loop (a function of its own, so a profile can name it).
#[inline(never)]
fn handshake_loop(n: u32, handshake: &dyn Fn(bool) -> Option<bool>) {
    for _ in 0..n {
        handshake(false);
    }
}
