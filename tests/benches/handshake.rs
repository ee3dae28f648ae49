//! Handshake benchmarks: what resumption buys, and what the abstraction costs, per backend.
//!
//! `cargo bench -p tlsresume-compare --bench handshake [-- FILTER]`
//!
//! Every benchmark is one TLS handshake between a server and a client in this process, over a
//! fresh `UnixStream::pair()`: the client runs on the benchmark thread, the server on a worker
//! thread that lives as long as the benchmark. After the handshake the server writes one byte
//! and the client reads it (so a TLS 1.3 ticket, sent before that byte, is received and, for a
//! resuming client, stored); the client waits for the server to finish before the next
//! iteration, so the measured time is the latency of one complete handshake.
//!
//! Groups are `handshake/<backend>/<tls12|tls13>/<ecdsa|rsa>/<full|resumed>`, and inside each
//! group `tlsresume` (the backend through the tlsresume API) runs beside `raw` (the library used
//! directly, configured alike), so `tlsresume / raw` is measured in the same run.
//!
//! - `full`: the tlsresume client's policy does not resume with this server
//!   (`with_client_hosts(HostList::none())`); the raw client has resumption disabled.
//! - `resumed`: the client's store holds a session (one full handshake before measuring); every
//!   measured handshake resumes, and receives the ticket the next one uses (rustls TLS 1.3
//!   tickets are single-use).
//! - `raw`: the library driven directly, configured as the backend configures it (see
//!   `common/mod.rs`): rustls and OpenSSL through their crates, GnuTLS through the backend's
//!   safe wrapper (`tlsresume_gnutls::raw`); a resuming raw OpenSSL client offers its session
//!   through `tlsresume_openssl::raw::set_session_der`.
//!
//! Besides criterion's wall-clock estimates, each benchmark records the CPU time of the client
//! thread and of the server thread (`CLOCK_THREAD_CPUTIME_ID`) over all its iterations; a table
//! of ratios and resumed/full multiples is printed at the end.

use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;
use criterion::{Criterion, Throughput};

mod common;

use common::{cases, ends, Case, ConnectFn, Imp, Mode, ServeFn};

// ---------------------------------------------------------------------------------------------
// The rig: a server worker thread and a client closure.

enum ToServer {
    Conn(UnixStream),
    Cpu(mpsc::Sender<Duration>),
}

struct Rig {
    to_server: Option<mpsc::Sender<ToServer>>,
    served: mpsc::Receiver<Result<(), String>>,
    worker: Option<JoinHandle<()>>,
    client: ConnectFn,
    key: (Case, Imp),
}

impl Rig {
    fn new(key: (Case, Imp), serve: ServeFn, client: ConnectFn) -> Self {
        let (to_server, rx) = mpsc::channel::<ToServer>();
        let (done, served) = mpsc::channel();
        let worker = thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                for msg in rx {
                    match msg {
                        ToServer::Conn(sock) => {
                            let result = serve(sock).map_err(|e| e.to_string());
                            if done.send(result).is_err() {
                                return;
                            }
                        }
                        ToServer::Cpu(reply) => {
                            let _ = reply.send(ThreadTime::now().as_duration());
                        }
                    }
                }
            })
            .expect("server thread");
        Self {
            to_server: Some(to_server),
            served,
            worker: Some(worker),
            client,
            key,
        }
    }

    fn send(&self, msg: ToServer) {
        self.to_server
            .as_ref()
            .expect("server channel")
            .send(msg)
            .expect("server thread alive");
    }

    fn server_cpu(&self) -> Duration {
        let (tx, rx) = mpsc::channel();
        self.send(ToServer::Cpu(tx));
        rx.recv().expect("server cpu time")
    }

    /// One handshake; with `check`, whether the client resumed.
    fn handshake(&mut self, check: bool) -> Option<bool> {
        let (server_end, client_end) = UnixStream::pair().expect("socket pair");
        self.send(ToServer::Conn(server_end));
        let client = (self.client)(client_end, check);
        let server = self.served.recv().expect("server result");
        let (case, imp) = self.key;
        let resumed = client.unwrap_or_else(|e| {
            panic!(
                "{} {}: client: {e} (server: {server:?})",
                case.group(),
                imp.name()
            )
        });
        if let Err(e) = server {
            panic!("{} {}: server: {e}", case.group(), imp.name());
        }
        resumed
    }

    /// Primes the client's store (resumed cases) and checks that handshakes resume exactly
    /// when they should.
    fn prime_and_check(&mut self) {
        let (case, imp) = self.key;
        if case.resumes() {
            self.handshake(false);
        }
        for _ in 0..3 {
            let resumed = self.handshake(true).expect("checked handshake");
            assert_eq!(
                resumed,
                case.resumes(),
                "{} {}: resumed={resumed}",
                case.group(),
                imp.name()
            );
        }
    }

    /// `iters` handshakes: wall time, client thread CPU, server thread CPU.
    fn timed(&mut self, iters: u64) -> (Duration, Duration, Duration) {
        let server0 = self.server_cpu();
        let client0 = ThreadTime::now();
        let start = Instant::now();
        for _ in 0..iters {
            self.handshake(false);
        }
        let wall = start.elapsed();
        let client = client0.elapsed();
        let server = self.server_cpu().saturating_sub(server0);
        (wall, client, server)
    }

    /// `iters` handshakes for criterion: the wall time, recording CPU times on the side.
    fn batch(&mut self, iters: u64) -> Duration {
        let (wall, client, server) = self.timed(iters);
        let mut stats = STATS.lock().unwrap_or_else(|p| p.into_inner());
        let s = stats.entry(self.key).or_default();
        s.iters += iters;
        s.wall += wall;
        s.client += client;
        s.server += server;
        wall
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.to_server = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Stat {
    iters: u64,
    wall: Duration,
    client: Duration,
    server: Duration,
}

impl Stat {
    fn per(&self, d: Duration) -> f64 {
        d.as_secs_f64() * 1e6 / self.iters.max(1) as f64
    }
    fn wall_us(&self) -> f64 {
        self.per(self.wall)
    }
    fn client_us(&self) -> f64 {
        self.per(self.client)
    }
    fn server_us(&self) -> f64 {
        self.per(self.server)
    }
}

static STATS: Mutex<BTreeMap<(Case, Imp), Stat>> = Mutex::new(BTreeMap::new());

// ---------------------------------------------------------------------------------------------

fn rig(case: Case, imp: Imp) -> Rig {
    let (serve, connect) = ends(case, imp);
    let mut rig = Rig::new((case, imp), serve, connect);
    rig.prime_and_check();
    rig
}

/// Both implementations, every backend.
fn imps(_case: Case) -> Vec<Imp> {
    vec![Imp::Tlsresume, Imp::Raw]
}

fn handshakes(c: &mut Criterion) {
    for case in cases() {
        let mut group = c.benchmark_group(case.group());
        group.throughput(Throughput::Elements(1));
        for imp in imps(case) {
            let mut rig: Option<Rig> = None;
            group.bench_function(imp.name(), |b| {
                let rig = rig.get_or_insert_with(|| self::rig(case, imp));
                b.iter_custom(|iters| rig.batch(iters));
            });
            drop(rig);
        }
        group.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// The summary: ratios and multiples from the recorded times.

fn summary() {
    let stats = STATS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if stats.is_empty() {
        return;
    }
    println!("\n## Per handshake (mean over all iterations, µs)\n");
    println!("| case | impl | wall | client CPU | server CPU | handshakes/s |");
    println!("|---|---|---:|---:|---:|---:|");
    for ((case, imp), s) in &stats {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            case.group(),
            imp.name(),
            s.wall_us(),
            s.client_us(),
            s.server_us(),
            1e6 / s.wall_us()
        );
    }
    println!("\n## Overhead: throughput tlsresume / raw (1.00 = none; target >= 0.97)\n");
    println!("| case | vs | wall | client CPU | server CPU |");
    println!("|---|---|---:|---:|---:|");
    for ((case, imp), raw) in &stats {
        if *imp == Imp::Tlsresume {
            continue;
        }
        let Some(tl) = stats.get(&(*case, Imp::Tlsresume)) else {
            continue;
        };
        let client = format!("{:.3}", raw.client_us() / tl.client_us());
        println!(
            "| {} | {} | {:.3} | {} | {:.3} |",
            case.group(),
            imp.name(),
            raw.wall_us() / tl.wall_us(),
            client,
            raw.server_us() / tl.server_us()
        );
    }
    println!("\n## Resumed / full throughput (target: server CPU >= 2 for RSA-2048)\n");
    println!("| backend/version/cert | impl | wall | client CPU | server CPU |");
    println!("|---|---|---:|---:|---:|");
    for ((case, imp), resumed) in &stats {
        if case.mode != Mode::Resumed {
            continue;
        }
        let full_case = Case {
            mode: Mode::Full,
            ..*case
        };
        let full_imp = *imp;
        let Some(full) = stats.get(&(full_case, full_imp)) else {
            continue;
        };
        let name = case.group();
        let name = name.trim_end_matches("/resumed");
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} |",
            name,
            imp.name(),
            full.wall_us() / resumed.wall_us(),
            full.client_us() / resumed.client_us(),
            full.server_us() / resumed.server_us()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Paired rounds: the figures that hold on a shared, noisy machine.
//
// Criterion measures one benchmark after another, so a neighbour's load that comes and goes
// between `tlsresume` and `raw` shows up as overhead (or as a negative one). Here every rig of
// one backend/version/certificate is alive at once, and each round runs a block of handshakes
// on each of them in turn; a ratio is taken within each round and the median over rounds is
// reported, with the quartiles. A block lasts about `PAIR_BLOCK_TIME` (its size is set per rig
// from a timed block of 5): blocks of 5 resumed handshakes (~0.3 ms) were at the mercy of a
// single scheduler hiccup, and their ratios scattered from 0.6 to 1.3 between runs.

const PAIR_ROUNDS: usize = 40;
const PAIR_BLOCK_TIME: Duration = Duration::from_millis(10);

/// How many handshakes of `rig` take about [`PAIR_BLOCK_TIME`] (5 to 500).
fn block_size(rig: &mut Rig) -> u64 {
    let five = rig.timed(5).0.as_secs_f64();
    let per = five / 5.0;
    ((PAIR_BLOCK_TIME.as_secs_f64() / per.max(1e-9)) as u64).clamp(5, 500)
}

/// Per handshake, µs: wall, client CPU, server CPU.
type Sample = [f64; 3];

fn per_handshake(t: (Duration, Duration, Duration), iters: u64) -> Sample {
    let us = |d: Duration| d.as_secs_f64() * 1e6 / iters as f64;
    [us(t.0), us(t.1), us(t.2)]
}

/// Median and quartiles of `values`.
fn quartiles(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.25), at(0.75))
}

fn show(values: Vec<f64>) -> String {
    let (median, q1, q3) = quartiles(values);
    format!("{median:.3} ({q1:.2}–{q3:.2})")
}

/// Ratios `a / b` per round, for each metric.
fn ratios(a: &[Sample], b: &[Sample], metric: usize) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(a, b)| a[metric] / b[metric])
        .collect()
}

fn paired(filter: Option<&str>) {
    let mut overhead = Vec::new();
    let mut multiples = Vec::new();
    for case in cases().into_iter().filter(|c| c.mode == Mode::Full) {
        let resumed_case = Case {
            mode: Mode::Resumed,
            ..case
        };
        let wanted = |c: &Case| filter.is_none_or(|f| c.group().contains(f));
        if !wanted(&case) && !wanted(&resumed_case) {
            continue;
        }
        let mut rigs: Vec<((Case, Imp), Rig, u64)> = Vec::new();
        for c in [case, resumed_case] {
            for imp in imps(c) {
                let mut r = rig(c, imp);
                let block = block_size(&mut r);
                rigs.push(((c, imp), r, block));
            }
        }
        let mut samples: BTreeMap<(Case, Imp), Vec<Sample>> = BTreeMap::new();
        for round in 0..PAIR_ROUNDS {
            // Rotate the order so no rig always follows the same one.
            let n = rigs.len();
            for i in 0..n {
                let (key, rig, block) = &mut rigs[(i + round) % n];
                let t = rig.timed(*block);
                samples
                    .entry(*key)
                    .or_default()
                    .push(per_handshake(t, *block));
            }
        }
        drop(rigs);
        for c in [case, resumed_case] {
            let Some(tl) = samples.get(&(c, Imp::Tlsresume)) else {
                continue;
            };
            for imp in [Imp::Raw] {
                if let Some(raw) = samples.get(&(c, imp)) {
                    overhead.push(format!(
                        "| {} | {} | {} | {} | {} |",
                        c.group(),
                        imp.name(),
                        show(ratios(raw, tl, 0)),
                        show(ratios(raw, tl, 1)),
                        show(ratios(raw, tl, 2)),
                    ));
                }
            }
        }
        for (full_imp, resumed_imp) in [(Imp::Tlsresume, Imp::Tlsresume), (Imp::Raw, Imp::Raw)] {
            let (Some(full), Some(resumed)) = (
                samples.get(&(case, full_imp)),
                samples.get(&(resumed_case, resumed_imp)),
            ) else {
                continue;
            };
            let name = case.group();
            multiples.push(format!(
                "| {} | {} | {} | {} | {} |",
                name.trim_end_matches("/full"),
                resumed_imp.name(),
                show(ratios(full, resumed, 0)),
                show(ratios(full, resumed, 1)),
                show(ratios(full, resumed, 2)),
            ));
        }
    }
    if overhead.is_empty() && multiples.is_empty() {
        return;
    }
    println!(
        "\n## Paired rounds ({PAIR_ROUNDS} rounds of ~{} ms per rig): median (quartiles)\n",
        PAIR_BLOCK_TIME.as_millis()
    );
    println!("### Overhead: throughput tlsresume / raw (target >= 0.97)\n");
    println!("| case | vs | wall | client CPU | server CPU |");
    println!("|---|---|---:|---:|---:|");
    for line in overhead {
        println!("{line}");
    }
    println!("\n### Resumed / full throughput (target: server CPU >= 2 for RSA-2048)\n");
    println!("| backend/version/cert | impl | wall | client CPU | server CPU |");
    println!("|---|---|---:|---:|---:|");
    for line in multiples {
        println!("{line}");
    }
}

/// Criterion's name filter: the first argument that is neither an option nor an option's value.
fn name_filter(args: &[String]) -> Option<&str> {
    const WITH_VALUE: &[&str] = &[
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--profile-time",
        "--output-format",
        "--color",
        "--plotting-backend",
        "--format",
        "--logfile",
    ];
    let mut skip = false;
    for arg in args {
        if skip {
            skip = false;
        } else if WITH_VALUE.contains(&arg.as_str()) {
            skip = true;
        } else if !arg.starts_with('-') {
            return Some(arg);
        }
    }
    None
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    handshakes(&mut c);
    c.final_summary();
    summary();
    // Only under `cargo bench` (not `cargo test --benches`), with criterion's name filter (the
    // first free argument) applied as a substring.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list") {
        paired(name_filter(&args));
    }
}
