//! Server scaling: one server (one tlsresume `ServerContext`, or one raw configuration) and one
//! client context, driven by one and by two client threads.
//!
//! `cargo bench -p tlsresume-compare --bench scaling [-- FILTER]`
//!
//! Each client thread has a server thread of its own (a blocking server handles one connection
//! per thread), and both server threads share the one server object; both client threads share
//! the one client object, so its session store too. A round runs `BLOCK` handshakes on one
//! client thread, then `BLOCK` on each of two at once; throughput with two threads over
//! throughput with one is taken per round (`2 * t1 / t2`), and the median and quartiles over
//! `ROUNDS` rounds are printed per backend × full/resumed × implementation. The target is
//! ≥ 1.8: no lock or store shared between connections may serialise handshakes. `raw` beside
//! `tlsresume` tells what the machine allows (two cores, shared).
//!
//! Cases: TLS 1.3 and TLS 1.2 with the ECDSA certificate (the cheapest handshakes, where a shared
//! lock would weigh most), the servers and clients of the `handshake` bench (`common/mod.rs`).

use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use tlsresume_core::ProtocolVersion;

mod common;

use common::{cases, ends, Case, Cert, ConnectFn, Imp, Mode, ServeFn};

const ROUNDS: usize = 15;
const BLOCK: u32 = 20;

/// A client thread with its server thread; runs `n` handshakes on command.
struct Lane {
    go: Option<mpsc::Sender<u32>>,
    done: mpsc::Receiver<Result<u32, String>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Lane {
    fn new(serve: ServeFn, connect: ConnectFn) -> Self {
        let (to_server, conns) = mpsc::channel::<UnixStream>();
        let (served_tx, served) = mpsc::channel::<Result<(), String>>();
        let server = thread::spawn(move || {
            for sock in conns {
                if served_tx
                    .send(serve(sock).map_err(|e| e.to_string()))
                    .is_err()
                {
                    return;
                }
            }
        });
        let (go, orders) = mpsc::channel::<u32>();
        let (done_tx, done) = mpsc::channel();
        let client = thread::spawn(move || {
            for n in orders {
                let mut resumed = 0;
                let mut result = Ok(());
                for _ in 0..n {
                    let (server_end, client_end) = UnixStream::pair().expect("socket pair");
                    if to_server.send(server_end).is_err() {
                        result = Err("server thread gone".to_owned());
                        break;
                    }
                    let client = connect(client_end, true);
                    let server = served.recv().unwrap_or_else(|e| Err(e.to_string()));
                    match (client, server) {
                        (Ok(r), Ok(())) => resumed += u32::from(r == Some(true)),
                        (Err(e), _) => result = Err(format!("client: {e}")),
                        (_, Err(e)) => result = Err(format!("server: {e}")),
                    }
                    if result.is_err() {
                        break;
                    }
                }
                if done_tx.send(result.map(|()| resumed)).is_err() {
                    return;
                }
            }
        });
        Self {
            go: Some(go),
            done,
            threads: vec![client, server],
        }
    }

    fn start(&self, n: u32) {
        self.go
            .as_ref()
            .expect("lane open")
            .send(n)
            .expect("client thread alive");
    }

    fn wait(&self, what: &str) -> u32 {
        match self.done.recv().expect("client thread alive") {
            Ok(resumed) => resumed,
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.go = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn quartiles(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.25), at(0.75))
}

/// Rounds of one thread, then two at once: the throughput ratios, handshakes/s with one
/// thread, and how many of the two-thread handshakes resumed.
fn measure(case: Case, imp: Imp) -> (Vec<f64>, Vec<f64>, u32, u32) {
    let (serve, connect) = ends(case, imp);
    let lanes = [
        Lane::new(serve.clone(), connect.clone()),
        Lane::new(serve, connect),
    ];
    let what = format!("{} {}", case.group(), imp.name());
    // Warm up (and, resumed, fill the store) on both lanes.
    for lane in &lanes {
        lane.start(3);
        lane.wait(&what);
    }
    let mut ratios = Vec::new();
    let mut single = Vec::new();
    let (mut resumed, mut total) = (0, 0);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        lanes[0].start(BLOCK);
        lanes[0].wait(&what);
        let t1 = t.elapsed();
        let t = Instant::now();
        for lane in &lanes {
            lane.start(BLOCK);
        }
        for lane in &lanes {
            resumed += lane.wait(&what);
            total += BLOCK;
        }
        let t2 = t.elapsed();
        ratios.push(2.0 * t1.as_secs_f64() / t2.as_secs_f64().max(1e-9));
        single.push(f64::from(BLOCK) / t1.as_secs_f64().max(1e-9));
    }
    (ratios, single, resumed, total)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches`: nothing to measure.
        return;
    }
    let filter = args.iter().find(|a| !a.starts_with('-'));
    println!(
        "\n## Server scaling: throughput with 2 client threads / with 1 (one server, one client \
         context; {ROUNDS} rounds of {BLOCK} handshakes per thread; median (quartiles); target >= 1.8)\n"
    );
    println!("| case | impl | 2 threads / 1 | 1 thread, handshakes/s | resumed (2 threads) |");
    println!("|---|---|---:|---:|---:|");
    let wanted = cases()
        .into_iter()
        .filter(|c| c.cert == Cert::Ecdsa && filter.is_none_or(|f| c.group().contains(f.as_str())));
    let mut ordered: Vec<Case> = wanted.collect();
    ordered.sort_by_key(|c| {
        (
            c.backend,
            std::cmp::Reverse(c.tls == ProtocolVersion::Tls13),
            c.mode,
        )
    });
    for case in ordered {
        for imp in [Imp::Tlsresume, Imp::Raw] {
            let (ratios, single, resumed, total) = measure(case, imp);
            let (m, q1, q3) = quartiles(ratios);
            let (s, _, _) = quartiles(single);
            let resumed = if case.mode == Mode::Resumed {
                format!("{resumed}/{total}")
            } else {
                "-".to_owned()
            };
            println!(
                "| {} | {} | {m:.2} ({q1:.2}–{q3:.2}) | {s:.0} | {resumed} |",
                case.group(),
                imp.name()
            );
        }
    }
}
