//! Async (tokio) against blocking handshakes, per backend, in one run.
//!
//! One iteration is one handshake over a fresh `UnixStream` pair: the server on a worker
//! thread, the client on the bench thread, and the server writes one byte that the client reads
//! (so a TLS 1.3 ticket arrives and, when resuming, is stored). Both ends use the blocking API
//! (`blocking`), or both the async one (`async`: `tlsresume::tokio::{TlsAcceptor,
//! TlsConnector}` on a current-thread runtime per side), with the same backend objects' settings.
//! Groups are `async/<backend>/<tls12|tls13>/<full|resumed>`.
//!
//! For rustls the same is measured on the library alone: raw rustls blocking (`StreamOwned`, the
//! handshake bench's raw rig) against tokio-rustls (`raw-blocking`, `raw-async`), so the cost of
//! going async at all and the cost of tlsresume's async layer are told apart.
//!
//! After criterion, paired rounds (all rigs of a case alive, 30 rounds of 5 handshakes each,
//! rotating which goes first) give `async / blocking` throughput with quartiles, and for rustls
//! `raw-async / raw-blocking` and `async / raw-async`: the figures to read on a shared machine.
//!
//!     cargo bench -p tlsresume-compare --bench async_handshake -- FILTER

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{Cert, Imp, Mode};
use criterion::Criterion;
use tlsresume::backends;
use tlsresume::tokio::{TlsAcceptor, TlsConnector};
use tlsresume_compare::loopback;
use tlsresume_compare::Pki;
use tlsresume_core::{
    BackendKind, ClientContext, ClientParams, ClientSettings, HostList, ProtocolVersion,
    ResumptionPolicy, ServerContext, ServerParams, ServerSettings, Versions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

const SERVER_NAME: &str = "mx.tlsresume.test";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Case {
    backend: BackendKind,
    tls: ProtocolVersion,
    resumed: bool,
}

impl Case {
    fn group(&self) -> String {
        format!(
            "async/{}/{}/{}",
            self.backend,
            match self.tls {
                ProtocolVersion::Tls12 => "tls12",
                _ => "tls13",
            },
            if self.resumed { "resumed" } else { "full" }
        )
    }

    /// The handshake bench's case (ECDSA), for its raw rigs.
    fn raw(&self) -> common::Case {
        common::Case {
            backend: self.backend,
            tls: self.tls,
            cert: Cert::Ecdsa,
            mode: if self.resumed {
                Mode::Resumed
            } else {
                Mode::Full
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Api {
    Blocking,
    Async,
    /// rustls alone, blocking (`StreamOwned`).
    RawBlocking,
    /// rustls alone on tokio (tokio-rustls).
    RawAsync,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Api::Blocking => "blocking",
            Api::Async => "async",
            Api::RawBlocking => "raw-blocking",
            Api::RawAsync => "raw-async",
        }
    }
}

/// A server worker thread and a client, both on one API.
struct Rig {
    to_server: Option<mpsc::Sender<UnixStream>>,
    served: mpsc::Receiver<Result<(), String>>,
    worker: Option<JoinHandle<()>>,
    client: Client,
    api: Api,
    runtime: tokio::runtime::Runtime,
}

/// The client end of a rig.
enum Client {
    Tlsresume {
        client: Arc<dyn ClientContext>,
        connector: TlsConnector,
    },
    RawBlocking(common::ConnectFn),
    RawAsync(tokio_rustls::TlsConnector),
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn serve_blocking(server: &dyn ServerContext, sock: UnixStream) -> Result<(), String> {
    let params = ServerParams::new(loopback(40_000), loopback(465));
    let mut tls = server
        .accept(Box::new(sock), &params)
        .map_err(|e| e.to_string())?;
    tls.write_all(b"x").map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())
}

async fn serve_async(acceptor: &TlsAcceptor, sock: UnixStream) -> Result<(), String> {
    let params = ServerParams::new(loopback(40_000), loopback(465));
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    let sock = tokio::net::UnixStream::from_std(sock).map_err(|e| e.to_string())?;
    let mut tls = acceptor
        .accept(&params, sock)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"x").await.map_err(|e| e.to_string())?;
    tls.flush().await.map_err(|e| e.to_string())
}

async fn serve_raw_async(
    acceptor: &tokio_rustls::TlsAcceptor,
    sock: UnixStream,
) -> Result<(), String> {
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    let sock = tokio::net::UnixStream::from_std(sock).map_err(|e| e.to_string())?;
    let mut tls = acceptor.accept(sock).await.map_err(|e| e.to_string())?;
    tls.write_all(b"x").await.map_err(|e| e.to_string())?;
    tls.flush().await.map_err(|e| e.to_string())
}

impl Rig {
    fn new(case: Case, api: Api, pki: &Pki) -> Self {
        let (to_server, rx) = mpsc::channel::<UnixStream>();
        let (done, served) = mpsc::channel();
        let client = match api {
            Api::Blocking | Api::Async => {
                let mut cs = ClientSettings::new(pki.roots.clone());
                cs.versions = Versions::only(case.tls);
                if !case.resumed {
                    cs.resumption =
                        ResumptionPolicy::exim_compatible().with_client_hosts(HostList::none());
                }
                let client = backends::client(case.backend, cs).expect("client");
                Client::Tlsresume {
                    connector: TlsConnector::new(client.clone()),
                    client,
                }
            }
            Api::RawBlocking => Client::RawBlocking(common::ends(case.raw(), Imp::Raw).1),
            Api::RawAsync => Client::RawAsync(tokio_rustls::TlsConnector::from(
                common::rustls_client_config(case.raw(), pki),
            )),
        };
        let worker = match api {
            Api::Blocking | Api::Async => {
                let mut ss = ServerSettings::new(pki.server.clone());
                ss.versions = Versions::only(case.tls);
                let server = backends::server(case.backend, ss).expect("server");
                thread::spawn(move || {
                    if api == Api::Blocking {
                        for sock in rx {
                            if done.send(serve_blocking(server.as_ref(), sock)).is_err() {
                                return;
                            }
                        }
                    } else {
                        let rt = runtime();
                        let acceptor = TlsAcceptor::new(server);
                        for sock in rx {
                            if done
                                .send(rt.block_on(serve_async(&acceptor, sock)))
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                })
            }
            Api::RawBlocking => {
                let serve = common::ends(case.raw(), Imp::Raw).0;
                thread::spawn(move || {
                    for sock in rx {
                        if done.send(serve(sock).map_err(|e| e.to_string())).is_err() {
                            return;
                        }
                    }
                })
            }
            Api::RawAsync => {
                let acceptor =
                    tokio_rustls::TlsAcceptor::from(common::rustls_server_config(case.raw(), pki));
                thread::spawn(move || {
                    let rt = runtime();
                    for sock in rx {
                        if done
                            .send(rt.block_on(serve_raw_async(&acceptor, sock)))
                            .is_err()
                        {
                            return;
                        }
                    }
                })
            }
        };
        Self {
            to_server: Some(to_server),
            served,
            worker: Some(worker),
            client,
            api,
            runtime: runtime(),
        }
    }

    /// One handshake; whether the client resumed.
    fn handshake(&mut self) -> bool {
        let (server_end, client_end) = UnixStream::pair().expect("pair");
        self.to_server
            .as_ref()
            .expect("server")
            .send(server_end)
            .expect("server alive");
        let params = ClientParams::new(SERVER_NAME, loopback(465));
        let resumed = match &self.client {
            Client::Tlsresume { client, .. } if self.api == Api::Blocking => {
                let mut tls = client
                    .connect(Box::new(client_end), &params)
                    .expect("client");
                let mut byte = [0u8; 1];
                tls.read_exact(&mut byte).expect("read");
                tls.info().resumed
            }
            Client::Tlsresume { connector, .. } => self.runtime.block_on(async {
                client_end.set_nonblocking(true).expect("nonblocking");
                let sock = tokio::net::UnixStream::from_std(client_end).expect("tokio");
                let mut tls = connector.connect(&params, sock).await.expect("client");
                let mut byte = [0u8; 1];
                tls.read_exact(&mut byte).await.expect("read");
                tls.info().resumed
            }),
            Client::RawBlocking(connect) => connect(client_end, true)
                .expect("raw client")
                .unwrap_or(false),
            Client::RawAsync(connector) => self.runtime.block_on(async {
                client_end.set_nonblocking(true).expect("nonblocking");
                let sock = tokio::net::UnixStream::from_std(client_end).expect("tokio");
                let name = rustls::pki_types::ServerName::try_from(SERVER_NAME).expect("name");
                let mut tls = connector.connect(name, sock).await.expect("raw client");
                let mut byte = [0u8; 1];
                tls.read_exact(&mut byte).await.expect("read");
                tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
            }),
        };
        self.served
            .recv()
            .expect("server result")
            .expect("server handshake");
        resumed
    }

    fn timed(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.handshake();
        }
        start.elapsed()
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

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for backend in backends::available() {
        for tls in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
            for resumed in [false, true] {
                out.push(Case {
                    backend,
                    tls,
                    resumed,
                });
            }
        }
    }
    out
}

/// The APIs measured for a case: tlsresume blocking and async, and for rustls the library alone
/// blocking and on tokio-rustls.
fn apis(case: Case) -> &'static [Api] {
    if case.backend == BackendKind::Rustls {
        &[Api::Blocking, Api::Async, Api::RawBlocking, Api::RawAsync]
    } else {
        &[Api::Blocking, Api::Async]
    }
}

/// The rigs of a case, primed and checked: resumed cases resume, full ones do not.
fn rigs(case: Case, pki: &Pki) -> Vec<Rig> {
    let mut out: Vec<Rig> = apis(case)
        .iter()
        .map(|&api| Rig::new(case, api, pki))
        .collect();
    for rig in &mut out {
        rig.handshake();
        for _ in 0..3 {
            assert_eq!(
                rig.handshake(),
                case.resumed,
                "{} {}",
                case.group(),
                rig.api.name()
            );
        }
    }
    out
}

fn benches(c: &mut Criterion, filter: Option<&str>) {
    let pki = Pki::committed().expect("test PKI");
    for case in cases() {
        if filter.is_some_and(|f| !case.group().contains(f)) {
            continue;
        }
        let mut group = c.benchmark_group(case.group());
        for mut rig in rigs(case, &pki) {
            group.bench_function(rig.api.name(), |b| b.iter_custom(|n| rig.timed(n)));
        }
        group.finish();
    }
}

const ROUNDS: usize = 30;
const BLOCK: u64 = 5;

/// Median and quartiles.
fn quartiles(mut ratios: Vec<f64>) -> (f64, f64, f64) {
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.25), at(0.75))
}

fn paired(filter: Option<&str>) {
    let pki = Pki::committed().expect("test PKI");
    let mut rows = BTreeMap::new();
    for case in cases() {
        if filter.is_some_and(|f| !case.group().contains(f)) {
            continue;
        }
        let mut rigs = rigs(case, &pki);
        let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); rigs.len()];
        for round in 0..ROUNDS {
            // Rotate which goes first, so a load change inside a round evens out.
            for k in 0..rigs.len() {
                let i = (round + k) % rigs.len();
                times[i].push(rigs[i].timed(BLOCK).as_secs_f64());
            }
        }
        // Throughput a / b = time b / time a, per round.
        let ratio = |a: usize, b: usize| {
            quartiles(
                (0..ROUNDS)
                    .map(|r| times[b][r] / times[a][r])
                    .collect::<Vec<_>>(),
            )
        };
        let tlsresume = ratio(1, 0);
        let raw = (rigs.len() == 4).then(|| (ratio(3, 2), ratio(1, 3)));
        rows.insert(case, (tlsresume, raw));
    }
    let cell = |(m, q1, q3): (f64, f64, f64)| format!("{m:.3} ({q1:.2}–{q3:.2})");
    println!("\n## Async / blocking handshake throughput (paired; target >= 0.95)\n");
    println!("| case | async / blocking | raw-async / raw-blocking | async / raw-async |");
    println!("|---|---:|---:|---:|");
    for (case, (tlsresume, raw)) in rows {
        let (raw_ratio, against_raw) = match raw {
            Some((r, a)) => (cell(r), cell(a)),
            None => ("—".into(), "—".into()),
        };
        println!(
            "| {} | {} | {raw_ratio} | {against_raw} |",
            case.group(),
            cell(tlsresume)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(String::as_str);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10)
        .configure_from_args();
    benches(&mut c, filter);
    c.final_summary();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list") {
        paired(filter);
    }
}
