//! tlsresume on tokio against what a user would pick instead: tokio-rustls and tokio-openssl
//! over the same configuration as the handshake bench's raw rigs (`common/mod.rs`: rustls with
//! the ring provider, the same certificate, in-memory resumption; OpenSSL with the same
//! context), and every backend's async path against its blocking one.
//!
//! ```text
//! adapters paired [FILTER]                                     # cargo bench … --bench adapters -- --bench [FILTER]
//! adapters count <backend> <tls12|tls13> <full|resumed> <way> <N>
//! adapters idle <server|client> <backend> <tls12|tls13> <full|resumed> <async|typed|adapter> <N>
//! ```
//!
//! Ways: `blocking` (tlsresume's blocking API), `raw` (the library driven directly, blocking),
//! `async` (`tlsresume::tokio`'s `TlsAcceptor`/`TlsConnector` over a backend chosen at run
//! time), `typed` (the same over the backend's own type, rustls and OpenSSL: nothing erased),
//! `adapter` (tokio-rustls, or tokio-openssl; none for GnuTLS). ECDSA certificate throughout.
//!
//! - **paired**: handshakes per second on one runtime thread (a current-thread runtime) and on
//!   two (a multi-thread runtime of two workers). One handshake is a fresh `UnixStream` pair,
//!   the server end accepted by a task spawned on the same runtime, the server writing one byte
//!   that the client reads (so a TLS 1.3 ticket arrives, and is stored when resuming); as many
//!   clients at once as there are runtime threads, each with its own session store (a TLS 1.3
//!   ticket is single-use). A blocking way runs the same number of lanes, each a client thread
//!   and a server thread with a client and server of its own. Every way of a case is alive at once;
//!   20 rounds of a block of ~15 ms per way in rotating order, a throughput ratio per round,
//!   median and quartiles, by wall clock and by the process's CPU time. On a shared machine,
//!   `WAYS=async,adapter ROUNDS=400 BLOCK_MS=10` measures only this crate against the
//!   adapter, alternating (AB, BA, …) in many short rounds, so each round's ratio is of two
//!   adjacent blocks under the same load; `WAYS=async,typed,adapter` adds the typed way, in
//!   the table's last column (typed / adapter per CPU second; `typed` is measured in the
//!   paired rounds only when `WAYS` names it). `ASYNC_END=server` (or `client`) keeps only that end
//!   of this crate in the `async` way, the other end being the adapter's, to tell which end a
//!   difference comes from (applies to `count` as well).
//! - **count**: N handshakes one after the other (async ways on one current-thread runtime
//!   holding both ends; blocking ways with the server on a thread), for instruction counts
//!   under callgrind (`scripts/callgrind-adapters` takes the difference of two N).
//! - **idle**: the measured side in this process, its peer in a child process, over loopback
//!   TCP; N connections made (8 at a time for full handshakes, one after the other when
//!   resuming), each then held by a task waiting on a read, as a server waits for a command;
//!   then the resident memory of this process per connection (the growth from one connection
//!   to N + 1, over N), measured before the peer closes; and the growth from N/2 + 1
//!   connections to N + 1, over N/2 (the marginal cost of a connection, without what the
//!   process keeps once, such as memory the allocator holds after the first handshakes). With the
//!   crate feature `dhat-heap` the live heap per connection is printed as well and
//!   `dhat-heap.json` is written for dh_view.
//!
//! Without arguments (as `cargo bench` runs every bench) it prints how to use it and exits.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::Pin;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cpu_time::ProcessTime;
use openssl::ssl::{Ssl, SslContext};
use rustls::pki_types::ServerName;
use tlsresume::backends;
use tlsresume::tokio::{
    AsyncClient, AsyncServer, ServerStreamOf, StreamOf, TlsAcceptor, TlsConnector,
};
use tlsresume_compare::Pki;
use tlsresume_core::contract::Backend;
use tlsresume_core::{BackendKind, ProtocolVersion};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::runtime::Runtime;

mod common;

use common::{Case, Cert, ConnectFn, Imp, Mode, Res, ServeFn, SERVER_NAME};

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const USAGE: &str = "adapters paired [FILTER]\n\
                     adapters count <openssl|gnutls|rustls> <tls12|tls13> <full|resumed> \
                     <blocking|raw|async|typed|adapter> <N>\n\
                     adapters idle <server|client> <openssl|gnutls|rustls> <tls12|tls13> \
                     <full|resumed> <async|typed|adapter> <N>";

/// How a case is driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Way {
    /// tlsresume's blocking API.
    Blocking,
    /// The library driven directly, blocking (the handshake bench's raw rig).
    Raw,
    /// `tlsresume::tokio`, the backend chosen at run time.
    Async,
    /// `tlsresume::tokio` over the backend's own type (rustls).
    Typed,
    /// tokio-rustls or tokio-openssl.
    Adapter,
}

impl Way {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "blocking" => Way::Blocking,
            "raw" => Way::Raw,
            "async" => Way::Async,
            "typed" => Way::Typed,
            "adapter" => Way::Adapter,
            _ => return None,
        })
    }

    fn word(self) -> &'static str {
        match self {
            Way::Blocking => "blocking",
            Way::Raw => "raw",
            Way::Async => "async",
            Way::Typed => "typed",
            Way::Adapter => "adapter",
        }
    }

    fn name(self, backend: BackendKind) -> &'static str {
        match (self, backend) {
            (Way::Blocking, _) => "blocking",
            (Way::Raw, _) => "raw",
            (Way::Async, _) => "async",
            (Way::Typed, _) => "typed",
            (Way::Adapter, BackendKind::Rustls) => "tokio-rustls",
            (Way::Adapter, _) => "tokio-openssl",
        }
    }

    fn is_async(self) -> bool {
        matches!(self, Way::Async | Way::Typed | Way::Adapter)
    }
}

/// The ways a backend is measured.
fn ways(backend: BackendKind) -> &'static [Way] {
    match backend {
        BackendKind::Gnutls => &[Way::Blocking, Way::Raw, Way::Async],
        _ => &[Way::Blocking, Way::Raw, Way::Async, Way::Adapter],
    }
}

/// Whether `way` can be measured on `backend`: its ways, and `typed` on rustls and OpenSSL.
fn measured(backend: BackendKind, way: Way) -> bool {
    ways(backend).contains(&way) || (way == Way::Typed && backend != BackendKind::Gnutls)
}

fn case(backend: BackendKind, tls: ProtocolVersion, mode: Mode) -> Case {
    Case {
        backend,
        tls,
        cert: Cert::Ecdsa,
        mode,
    }
}

fn name(c: Case) -> String {
    c.group().replace("handshake/", "").replace("/ecdsa", "")
}

// ---------------------------------------------------------------------------------------------
// async ends

/// What the async ends run over.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A connection held open (idle runs): a task waits on a read from it, as a server waits for
/// the next command.
type Held = Box<dyn AsyncRead + Send + Unpin>;

/// The server end of an async way.
enum Acceptor {
    Tlsresume(TlsAcceptor),
    TlsresumeRustls(TlsAcceptor<tlsresume::rustls::Server>),
    TlsresumeOpenssl(TlsAcceptor<tlsresume::openssl::Server>),
    Rustls(tokio_rustls::TlsAcceptor),
    Openssl(SslContext),
}

/// The client end of an async way.
enum Connector {
    Tlsresume(TlsConnector),
    TlsresumeRustls(TlsConnector<tlsresume::rustls::Client>),
    TlsresumeOpenssl(TlsConnector<tlsresume::openssl::Client>),
    Rustls(tokio_rustls::TlsConnector),
    Openssl(SslContext, common::SavedSession),
}

fn async_ends(c: Case, way: Way, pki: &Pki) -> (Arc<Acceptor>, Arc<Connector>) {
    let case = c;
    let (a, c) = match (way, c.backend) {
        (Way::Async, kind) => {
            let server = backends::server(kind, common::tlsresume_server_settings(c, pki))
                .expect("tlsresume server");
            let client = backends::client(kind, common::tlsresume_client_settings(c, pki))
                .expect("tlsresume client");
            (
                Acceptor::Tlsresume(TlsAcceptor::new(server)),
                Connector::Tlsresume(TlsConnector::new(client)),
            )
        }
        (Way::Typed, BackendKind::Openssl) => {
            let (a, c) = typed_ends::<tlsresume::openssl::Openssl>(c, pki);
            (
                Acceptor::TlsresumeOpenssl(a),
                Connector::TlsresumeOpenssl(c),
            )
        }
        (Way::Typed, BackendKind::Rustls) => {
            let (a, c) = typed_ends::<tlsresume::rustls::Rustls>(c, pki);
            (Acceptor::TlsresumeRustls(a), Connector::TlsresumeRustls(c))
        }
        (Way::Adapter, BackendKind::Rustls) => (
            Acceptor::Rustls(common::rustls_server_config(c, pki).into()),
            Connector::Rustls(common::rustls_client_config(c, pki).into()),
        ),
        (Way::Adapter, BackendKind::Openssl) => {
            let (ctx, saved) = common::openssl_client_context(c, pki);
            (
                Acceptor::Openssl(common::openssl_server_context(c, pki)),
                Connector::Openssl(ctx, saved),
            )
        }
        _ => panic!("no async {} for {}", way.name(c.backend), c.backend),
    };
    // `ASYNC_END`: one end of this crate against the other end of the adapter (none for GnuTLS).
    let mixed = way == Way::Async && case.backend != BackendKind::Gnutls;
    match (mixed, std::env::var("ASYNC_END").as_deref()) {
        (true, Ok("server")) => (Arc::new(a), async_ends(case, Way::Adapter, pki).1),
        (true, Ok("client")) => (async_ends(case, Way::Adapter, pki).0, Arc::new(c)),
        _ => (Arc::new(a), Arc::new(c)),
    }
}

impl Acceptor {
    /// Accepts, writes one byte; the connection, to hold or drop.
    async fn accept<IO: Io>(&self, io: IO) -> Res<Held> {
        Ok(match self {
            Acceptor::Tlsresume(a) => tlsresume_accept(a, io).await?,
            // Boxed: the typed stream lives in this future while it runs, and every way's task
            // would otherwise be sized for it.
            Acceptor::TlsresumeRustls(a) => Box::pin(tlsresume_accept(a, io)).await?,
            Acceptor::TlsresumeOpenssl(a) => Box::pin(tlsresume_accept(a, io)).await?,
            Acceptor::Rustls(a) => {
                let mut tls = a.accept(io).await?;
                tls.write_all(b"x").await?;
                tls.flush().await?;
                Box::new(tls)
            }
            Acceptor::Openssl(ctx) => {
                let mut tls = tokio_openssl::SslStream::new(Ssl::new(ctx)?, io)?;
                Pin::new(&mut tls).accept().await?;
                tls.write_all(b"x").await?;
                tls.flush().await?;
                Box::new(tls)
            }
        })
    }
}

impl Connector {
    /// Connects, reads the server's byte; whether it resumed, and the connection.
    async fn connect<IO: Io>(&self, io: IO) -> Res<(bool, Held)> {
        let mut byte = [0u8; 1];
        Ok(match self {
            Connector::Tlsresume(c) => tlsresume_connect(c, io).await?,
            // Boxed, as the acceptor's.
            Connector::TlsresumeRustls(c) => Box::pin(tlsresume_connect(c, io)).await?,
            Connector::TlsresumeOpenssl(c) => Box::pin(tlsresume_connect(c, io)).await?,
            Connector::Rustls(c) => {
                let name = ServerName::try_from(SERVER_NAME)?;
                let mut tls = c.connect(name, io).await?;
                tls.read_exact(&mut byte).await?;
                let resumed =
                    tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                (resumed, Box::new(tls))
            }
            Connector::Openssl(ctx, saved) => {
                let ssl = common::openssl_client_ssl(ctx, saved)?;
                let mut tls = tokio_openssl::SslStream::new(ssl, io)?;
                Pin::new(&mut tls).connect().await?;
                tls.read_exact(&mut byte).await?;
                (tls.ssl().session_reused(), Box::new(tls))
            }
        })
    }
}

/// The typed way's ends: this crate's acceptor and connector over backend `B`'s own types.
fn typed_ends<B: Backend>(c: Case, pki: &Pki) -> (TlsAcceptor<B::Server>, TlsConnector<B::Client>) {
    (
        TlsAcceptor::from(
            B::server(common::tlsresume_server_settings(c, pki)).expect("tlsresume server"),
        ),
        TlsConnector::from(
            B::client(common::tlsresume_client_settings(c, pki)).expect("tlsresume client"),
        ),
    )
}

/// This crate's acceptor, over a backend chosen at run time or by type: accepts, writes one
/// byte; the connection.
async fn tlsresume_accept<S, IO>(a: &TlsAcceptor<S>, io: IO) -> Res<Held>
where
    S: AsyncServer,
    IO: Io,
    S::Handshake<IO>: Send + 'static,
    ServerStreamOf<S, IO>: Send + Unpin + 'static,
{
    let mut tls = a.accept(&common::server_params(), io).await?;
    tls.write_all(b"x").await?;
    tls.flush().await?;
    Ok(Box::new(tls))
}

/// This crate's connector, likewise: connects, reads the server's byte; whether it resumed,
/// and the connection.
async fn tlsresume_connect<C, IO>(c: &TlsConnector<C>, io: IO) -> Res<(bool, Held)>
where
    C: AsyncClient,
    IO: Io,
    C::Handshake<IO>: Send + 'static,
    StreamOf<C, IO>: Send + Unpin + 'static,
{
    let mut byte = [0u8; 1];
    let mut tls = c.connect(&common::client_params(), io).await?;
    tls.read_exact(&mut byte).await?;
    Ok((tls.info().resumed, Box::new(tls)))
}

/// One async handshake over a fresh pair, the server end on a spawned task.
async fn async_handshake(server: &Arc<Acceptor>, client: &Connector) -> Res<bool> {
    let (s, c) = tokio::net::UnixStream::pair()?;
    let server = Arc::clone(server);
    let served = tokio::spawn(async move { server.accept(s).await.map(drop) });
    let (resumed, _conn) = client.connect(c).await?;
    served.await??;
    Ok(resumed)
}

fn runtime(threads: usize) -> Runtime {
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    }
    .enable_all()
    .build()
    .expect("runtime")
}

// ---------------------------------------------------------------------------------------------
// rigs: one way of one case, with `threads` runtime threads (or blocking lanes)

/// A blocking lane: a server thread fed connections, and its client.
struct Lane {
    to_server: Option<mpsc::Sender<StdUnixStream>>,
    served: mpsc::Receiver<Res<()>>,
    worker: Option<JoinHandle<()>>,
}

impl Lane {
    fn new(serve: ServeFn) -> Self {
        let (to_server, rx) = mpsc::channel::<StdUnixStream>();
        let (done, served) = mpsc::channel();
        let worker = thread::spawn(move || {
            for sock in rx {
                if done.send(serve(sock)).is_err() {
                    return;
                }
            }
        });
        Self {
            to_server: Some(to_server),
            served,
            worker: Some(worker),
        }
    }

    fn handshake(&self, connect: &ConnectFn) -> bool {
        let (s, c) = StdUnixStream::pair().expect("pair");
        self.to_server
            .as_ref()
            .expect("server")
            .send(s)
            .expect("server alive");
        let resumed = connect(c, true).expect("client").unwrap_or(false);
        self.served
            .recv()
            .expect("server result")
            .expect("server handshake");
        resumed
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.to_server = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

enum Rig {
    /// A lane per thread, each with its server and its client.
    Blocking {
        lanes: Vec<std::sync::Mutex<(Lane, ConnectFn)>>,
    },
    /// One server; a client per concurrent task (its own session store: a TLS 1.3 ticket is
    /// single-use, and a stored TLS 1.2 session is lent to one handshake at a time).
    Async {
        rt: Runtime,
        server: Arc<Acceptor>,
        clients: Vec<Arc<Connector>>,
    },
}

impl Rig {
    fn new(c: Case, way: Way, threads: usize, pki: &Pki) -> Self {
        if way.is_async() {
            let (server, first) = async_ends(c, way, pki);
            let mut clients = vec![first];
            clients.extend((1..threads).map(|_| async_ends(c, way, pki).1));
            return Rig::Async {
                rt: runtime(threads),
                server,
                clients,
            };
        }
        let imp = if way == Way::Raw {
            Imp::Raw
        } else {
            Imp::Tlsresume
        };
        Rig::Blocking {
            lanes: (0..threads)
                .map(|_| {
                    let (serve, connect) = common::ends(c, imp);
                    std::sync::Mutex::new((Lane::new(serve), connect))
                })
                .collect(),
        }
    }

    /// `n` handshakes spread over the lanes (or client tasks); how many resumed.
    fn run(&self, n: usize) -> usize {
        match self {
            Rig::Blocking { lanes } => thread::scope(|scope| {
                let per = n.div_ceil(lanes.len());
                let handles: Vec<_> = lanes
                    .iter()
                    .enumerate()
                    .map(|(i, lane)| {
                        let count = per.min(n.saturating_sub(i * per));
                        scope.spawn(move || {
                            let lane = lane.lock().unwrap_or_else(|p| p.into_inner());
                            let (lane, connect) = &*lane;
                            (0..count).filter(|_| lane.handshake(connect)).count()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("lane")).sum()
            }),
            Rig::Async {
                rt,
                server,
                clients,
            } => rt.block_on(async {
                let per = n.div_ceil(clients.len());
                let tasks: Vec<_> = clients
                    .iter()
                    .enumerate()
                    .map(|(i, client)| {
                        let count = per.min(n.saturating_sub(i * per));
                        let server = Arc::clone(server);
                        let client = Arc::clone(client);
                        tokio::spawn(async move {
                            let mut resumed = 0;
                            for _ in 0..count {
                                if async_handshake(&server, &client).await.expect("handshake") {
                                    resumed += 1;
                                }
                            }
                            resumed
                        })
                    })
                    .collect();
                let mut resumed = 0;
                for t in tasks {
                    resumed += t.await.expect("client task");
                }
                resumed
            }),
        }
    }

    /// Primes the session store and checks that the case resumes, or does not.
    fn prime(&self, c: Case, label: &str) {
        // One handshake per lane (or client) first.
        self.run(match self {
            Rig::Blocking { lanes } => lanes.len(),
            Rig::Async { clients, .. } => clients.len(),
        });
        let n = 4;
        let resumed = self.run(n);
        let want = if c.resumes() { n } else { 0 };
        assert_eq!(
            resumed,
            want,
            "{} {label}: resumed {resumed} of {n}",
            name(c)
        );
    }

    fn timed(&self, n: usize) -> Duration {
        let start = Instant::now();
        self.run(n);
        start.elapsed()
    }
}

// ---------------------------------------------------------------------------------------------
// paired

/// Rounds and block length by default; `ROUNDS` and `BLOCK_MS` in the environment change them.
const ROUNDS: usize = 20;
const BLOCK: Duration = Duration::from_millis(15);

/// How the paired rounds run: rounds, the block each way runs per round, and the ways
/// compared (`WAYS=async,adapter` in the environment: only those two, alternating in every
/// round, so each ratio is of two adjacent blocks; default every way of the backend).
struct Rounds {
    rounds: usize,
    block: Duration,
    only: Option<Vec<Way>>,
}

impl Rounds {
    fn from_env() -> Self {
        let number = |var: &str| std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok());
        Rounds {
            rounds: number("ROUNDS").map_or(ROUNDS, |n| n.max(2) as usize),
            block: number("BLOCK_MS").map_or(BLOCK, |ms| Duration::from_millis(ms.max(1))),
            only: std::env::var("WAYS")
                .ok()
                .map(|v| v.split(',').filter_map(|w| Way::parse(w.trim())).collect()),
        }
    }

    /// The ways of `backend` these rounds measure (`typed` only when `WAYS` names it).
    fn ways(&self, backend: BackendKind) -> Vec<Way> {
        let typed = self
            .only
            .as_ref()
            .is_some_and(|only| only.contains(&Way::Typed))
            && measured(backend, Way::Typed);
        ways(backend)
            .iter()
            .copied()
            .chain(typed.then_some(Way::Typed))
            .filter(|w| self.only.as_ref().is_none_or(|only| only.contains(w)))
            .collect()
    }
}

fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.25), at(0.75))
}

fn cell((m, q1, q3): (f64, f64, f64)) -> String {
    format!("{m:.3} ({q1:.2}–{q3:.2})")
}

fn paired(filter: Option<&str>) {
    let pki = Pki::committed().expect("test PKI");
    let settings = Rounds::from_env();
    let rounds = settings.rounds;
    let mut rows: BTreeMap<(Case, usize), Vec<String>> = BTreeMap::new();
    for backend in backends::available() {
        for tls in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
            for mode in [Mode::Full, Mode::Resumed] {
                let c = case(backend, tls, mode);
                if filter.is_some_and(|f| !name(c).contains(f)) {
                    continue;
                }
                for threads in [1, 2] {
                    let ways = settings.ways(backend);
                    if ways.len() < 2 {
                        continue;
                    }
                    let rigs: Vec<Rig> = ways
                        .iter()
                        .map(|&w| {
                            let rig = Rig::new(c, w, threads, &pki);
                            rig.prime(c, w.name(backend));
                            rig
                        })
                        .collect();
                    // Each way's block: as many handshakes as take ~BLOCK.
                    let sizes: Vec<usize> = rigs
                        .iter()
                        .map(|r| {
                            let t = r.timed(4 * threads).as_secs_f64() / (4 * threads) as f64;
                            ((settings.block.as_secs_f64() / t) as usize).max(threads)
                        })
                        .collect();
                    let mut rate: Vec<Vec<f64>> = vec![Vec::new(); rigs.len()];
                    // Handshakes per second of the process's CPU time (every thread of it):
                    // what a block cost, whatever else the machine's cores were doing.
                    let mut cpu_rate: Vec<Vec<f64>> = vec![Vec::new(); rigs.len()];
                    for round in 0..rounds {
                        for k in 0..rigs.len() {
                            let i = (round + k) % rigs.len();
                            let cpu = ProcessTime::now();
                            let t = rigs[i].timed(sizes[i]).as_secs_f64();
                            let c = cpu.elapsed().as_secs_f64().max(1e-9);
                            rate[i].push(sizes[i] as f64 / t);
                            cpu_rate[i].push(sizes[i] as f64 / c);
                        }
                    }
                    let at = |w: Way| ways.iter().position(|&x| x == w);
                    let ratio = |a: Way, b: Way| match (at(a), at(b)) {
                        (Some(a), Some(b)) => cell(quartiles(
                            (0..rounds).map(|r| rate[a][r] / rate[b][r]).collect(),
                        )),
                        _ => "—".into(),
                    };
                    let cpu_ratio = |a: Way, b: Way| match (at(a), at(b)) {
                        (Some(a), Some(b)) => cell(quartiles(
                            (0..rounds)
                                .map(|r| cpu_rate[a][r] / cpu_rate[b][r])
                                .collect(),
                        )),
                        _ => "—".into(),
                    };
                    let hps = |w: Way| match at(w) {
                        Some(i) => format!("{:.0}", quartiles(rate[i].clone()).0),
                        None => "—".into(),
                    };
                    let row = vec![
                        ratio(Way::Async, Way::Adapter),
                        cpu_ratio(Way::Async, Way::Adapter),
                        ratio(Way::Async, Way::Blocking),
                        ratio(Way::Adapter, Way::Raw),
                        ratio(Way::Blocking, Way::Raw),
                        hps(Way::Async),
                        hps(Way::Adapter),
                        hps(Way::Blocking),
                        cpu_ratio(Way::Typed, Way::Adapter),
                    ];
                    eprintln!("{} threads={threads}: {}", name(c), row.join(" | "));
                    rows.insert((c, threads), row);
                }
            }
        }
    }
    println!(
        "\n## Handshakes per second, paired (median (quartiles) of {rounds} rounds of ~{} ms a way)\n",
        settings.block.as_millis()
    );
    println!(
        "| case | runtime threads | async / adapter | async / adapter, per CPU second \
         | async / blocking | adapter / raw blocking | blocking / raw | async h/s | adapter h/s \
         | blocking h/s | typed / adapter, per CPU second |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ((c, threads), row) in rows {
        println!("| {} | {threads} | {} |", name(c), row.join(" | "));
    }
}

// ---------------------------------------------------------------------------------------------
// count

fn count(c: Case, way: Way, n: usize) {
    // glibc's malloc takes a single-thread fast path (no arena lock) until a process starts
    // its first thread. The async way starts one (the acceptor's first ticket-key refresh
    // runs on tokio's blocking pool), the adapter's process none: every way starts one, so
    // the allocator costs the same on each (measured: ~24 k instructions a handshake of
    // OpenSSL's full TLS 1.2, all malloc and free, charged to the async way otherwise).
    let _ = thread::spawn(|| {}).join();
    let pki = Pki::committed().expect("test PKI");
    let rig = Rig::new(c, way, 1, &pki);
    rig.prime(c, way.name(c.backend));
    let resumed = rig.run(n);
    println!(
        "{} {}: {n} handshakes, {resumed} resumed",
        name(c),
        way.name(c.backend)
    );
}

// ---------------------------------------------------------------------------------------------
// idle

/// Resident memory of this process, bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Raises the descriptor limit to the hard limit (N connections need N descriptors a side).
fn raise_nofile() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

struct IdleArgs {
    side: Side,
    case: Case,
    way: Way,
    n: usize,
}

impl IdleArgs {
    fn words(&self) -> Vec<String> {
        vec![
            match self.case.tls {
                ProtocolVersion::Tls12 => "tls12",
                _ => "tls13",
            }
            .into(),
            if self.case.resumes() {
                "resumed"
            } else {
                "full"
            }
            .into(),
            self.way.word().into(),
            self.n.to_string(),
        ]
    }
}

/// Measures one side holding N idle connections; its peer is a child process.
fn idle(a: &IdleArgs) -> Res<()> {
    raise_nofile();
    let pki = Pki::committed()?;
    let (acceptor, connector) = async_ends(a.case, a.way, &pki);
    let rt = runtime(1);
    let exe = std::env::current_exe()?;
    let peer_side = if a.side == Side::Server {
        "client"
    } else {
        "server"
    };
    let mut resumed = 0usize;
    let (mut base, mut half, mut after) = ((0, 0), 0, (0, 0));
    rt.block_on(async {
        let listener = if a.side == Side::Server {
            Some(Arc::new(
                tokio::net::TcpListener::bind("127.0.0.1:0").await?,
            ))
        } else {
            None
        };
        let mut cmd = Command::new(&exe);
        cmd.args(["peer", peer_side, a.case.backend.name()])
            .args(a.words())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(l) = &listener {
            cmd.arg(l.local_addr()?.port().to_string());
        }
        let mut child = cmd.spawn()?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("peer stdout")?).lines();
        let addr = match &listener {
            Some(l) => l.local_addr()?,
            None => lines.next().ok_or("peer's address")??.parse()?,
        };
        let make = |first: bool| {
            let (listener, acceptor, connector) =
                (listener.clone(), acceptor.clone(), connector.clone());
            move || {
                let (listener, acceptor, connector) =
                    (listener.clone(), acceptor.clone(), connector.clone());
                async move {
                    Ok(match listener {
                        Some(l) => (false, acceptor.accept(nodelay(l.accept().await?.0)?).await?),
                        None => {
                            let tcp = nodelay(tokio::net::TcpStream::connect(addr).await?)?;
                            let (r, conn) = connector.connect(tcp).await?;
                            (r && !first, conn)
                        }
                    })
                }
            }
        };
        hold_many(1, 1, make(true)).await?;
        base = (rss(), heap_bytes());
        let first = a.n / 2;
        resumed = hold_many(first, in_flight(a.case), make(false)).await?;
        half = rss();
        resumed += hold_many(a.n - first, in_flight(a.case), make(false)).await?;
        after = (rss(), heap_bytes());
        // The peer says how many of its connections resumed (server side: the client knows).
        drop(child.stdin.take());
        if a.side == Side::Server {
            resumed = lines.next().ok_or("peer's count")??.trim().parse()?;
        }
        let _ = child.wait();
        Res::Ok(())
    })?;
    let (rss_after, heap_after) = after;
    let per = |after: u64, before: u64, n: usize| after.saturating_sub(before) as f64 / n as f64;
    println!(
        "idle {} {} {} {}: N={} resumed={} rss/conn={:.0} B rss/conn(second half)={:.0} B \
         heap/conn={}",
        if a.side == Side::Server {
            "server"
        } else {
            "client"
        },
        name(a.case),
        a.way.name(a.case.backend),
        a.case.backend,
        a.n,
        resumed,
        per(rss_after, base.0, a.n),
        per(rss_after, half, a.n - a.n / 2),
        if cfg!(feature = "dhat-heap") {
            format!("{:.0} B", per(heap_after, base.1, a.n))
        } else {
            "-".into()
        }
    );
    Ok(())
}

/// The peer of an idle run: N + 1 connections, held until stdin closes.
fn peer(a: &IdleArgs, port: Option<u16>) -> Res<()> {
    raise_nofile();
    let pki = Pki::committed()?;
    let (acceptor, connector) = async_ends(a.case, a.way, &pki);
    let rt = runtime(1);
    rt.block_on(async {
        match port {
            Some(port) => {
                let resumed = hold_many(a.n + 1, in_flight(a.case), move || {
                    let connector = connector.clone();
                    async move {
                        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
                        connector.connect(nodelay(tcp)?).await
                    }
                })
                .await?;
                println!("{resumed}");
            }
            None => {
                let l = Arc::new(tokio::net::TcpListener::bind("127.0.0.1:0").await?);
                println!("{}", l.local_addr()?);
                hold_many(a.n + 1, in_flight(a.case), move || {
                    let (l, acceptor) = (l.clone(), acceptor.clone());
                    async move { Ok((false, acceptor.accept(nodelay(l.accept().await?.0)?).await?)) }
                })
                .await?;
            }
        }
        Res::Ok(())
    })?;
    // The connections (the runtime's tasks) held until the measured side has measured.
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
    drop(rt);
    Ok(())
}

/// Nagle off, as servers and clients of a dialogue set it (otherwise a small write behind
/// another waits for the peer's delayed ACK).
fn nodelay(tcp: tokio::net::TcpStream) -> std::io::Result<tokio::net::TcpStream> {
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Connections in flight at once in idle runs, on either side: 8 for full handshakes, one at a
/// time when resuming (a TLS 1.3 ticket is single-use: connections made at once would not all
/// have one to offer).
fn in_flight(c: Case) -> usize {
    if c.resumes() {
        1
    } else {
        8
    }
}

/// `n` connections made by `make` (at most `in_flight` at once), each then held by its task
/// waiting on a read (until the peer closes); how many resumed.
async fn hold_many<F, Fut>(n: usize, in_flight: usize, mut make: F) -> Res<usize>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Res<(bool, Held)>> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Res<bool>>();
    let (mut resumed, mut started, mut done) = (0, 0, 0);
    while done < n {
        while started < n && started - done < in_flight {
            let (made, tx) = (make(), tx.clone());
            tokio::spawn(async move {
                match made.await {
                    Ok((r, mut conn)) => {
                        let _ = tx.send(Ok(r));
                        let _ = conn.read(&mut [0u8; 1]).await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
            started += 1;
        }
        let r = rx.recv().await.ok_or("a connection's task ended")??;
        resumed += usize::from(r);
        done += 1;
    }
    Ok(resumed)
}

#[cfg(feature = "dhat-heap")]
fn heap_bytes() -> u64 {
    dhat::HeapStats::get().curr_bytes as u64
}

#[cfg(not(feature = "dhat-heap"))]
fn heap_bytes() -> u64 {
    0
}

// ---------------------------------------------------------------------------------------------

fn parse_case(backend: &str, tls: &str, mode: &str) -> Option<Case> {
    let backend: BackendKind = backend.parse().ok()?;
    let tls = match tls {
        "tls12" => ProtocolVersion::Tls12,
        "tls13" => ProtocolVersion::Tls13,
        _ => return None,
    };
    let mode = match mode {
        "full" => Mode::Full,
        "resumed" => Mode::Resumed,
        _ => return None,
    };
    Some(case(backend, tls, mode))
}

fn idle_args(args: &[String]) -> Option<(IdleArgs, Option<u16>)> {
    let [side, backend, tls, mode, way, n, rest @ ..] = args else {
        return None;
    };
    let side = match side.as_str() {
        "server" => Side::Server,
        "client" => Side::Client,
        _ => return None,
    };
    let case = parse_case(backend, tls, mode)?;
    let way = Way::parse(way).filter(|w| w.is_async())?;
    let port = match rest {
        [] => None,
        [p] => Some(p.parse().ok()?),
        _ => return None,
    };
    Some((
        IdleArgs {
            side,
            case,
            way,
            n: n.parse().ok()?,
        },
        port,
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .collect();
    let result = match words.first().map(String::as_str) {
        // `cargo bench -- --bench [FILTER]` runs the paired rounds.
        _ if args.iter().any(|a| a == "--bench")
            && words.first().map(String::as_str) != Some("paired") =>
        {
            paired(words.first().map(String::as_str));
            Ok(())
        }
        Some("paired") => {
            paired(words.get(1).map(String::as_str));
            Ok(())
        }
        Some("count") => match &words[1..] {
            [b, t, m, w, n] => match (parse_case(b, t, m), Way::parse(w), n.parse()) {
                (Some(c), Some(w), Ok(n)) if measured(c.backend, w) => {
                    count(c, w, n);
                    Ok(())
                }
                _ => Err(USAGE.into()),
            },
            _ => Err(USAGE.into()),
        },
        Some("idle") => match idle_args(&words[1..]) {
            Some((a, None)) if measured(a.case.backend, a.way) => {
                #[cfg(feature = "dhat-heap")]
                let _profiler = dhat::Profiler::new_heap();
                idle(&a)
            }
            _ => Err(USAGE.into()),
        },
        Some("peer") => match idle_args(&words[1..]) {
            Some((a, port)) => peer(&a, port),
            None => Err(USAGE.into()),
        },
        _ => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("adapters: {e}");
            ExitCode::FAILURE
        }
    }
}
