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
//! - `raw` for OpenSSL, resumed: the `openssl` crate's only way to offer a session,
//!   `SslRef::set_session`, is `unsafe`, which this crate does not allow, so that variant is
//!   `raw-server`: the raw OpenSSL server against the tlsresume OpenSSL client. Only its server
//!   CPU ratio is an overhead figure.
//! - GnuTLS has no raw variant: the backend's safe wrapper (`ffi`) is private and the bindings
//!   are `unsafe`. See `docs/performance.md`.
//!
//! Besides criterion's wall-clock estimates, each benchmark records the CPU time of the client
//! thread and of the server thread (`CLOCK_THREAD_CPUTIME_ID`) over all its iterations; a table
//! of ratios and resumed/full multiples is printed at the end.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;
use criterion::{Criterion, Throughput};
use openssl::pkey::PKey;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslSessionCacheMode, SslVerifyMode,
    SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use rustls::client::Resumption as RustlsResumption;
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
    ServerName,
};
use rustls::server::NoServerSessionStorage;
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, RootCertStore, ServerConfig, ServerConnection,
    StreamOwned,
};
use tlsresume::backends;
use tlsresume_compare::Pki;
use tlsresume_core::{
    loopback, BackendKind, ClientParams, ClientSettings, HostList, Identity, KeyFormat,
    ProtocolVersion, ResumptionPolicy, ServerParams, ServerSettings, Versions,
};

const SERVER_NAME: &str = "mx.tlsresume.test";

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

/// The server side of one connection.
type ServeFn = Box<dyn FnMut(UnixStream) -> Res<()> + Send>;
/// The client side of one connection; with `check`, reports whether it resumed.
type ConnectFn = Box<dyn FnMut(UnixStream, bool) -> Res<Option<bool>>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cert {
    Ecdsa,
    Rsa,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Full,
    Resumed,
}

/// One benchmark's case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Case {
    backend: BackendKind,
    tls: ProtocolVersion,
    cert: Cert,
    mode: Mode,
}

impl Case {
    fn group(&self) -> String {
        format!(
            "handshake/{}/{}/{}/{}",
            self.backend,
            match self.tls {
                ProtocolVersion::Tls12 => "tls12",
                _ => "tls13",
            },
            match self.cert {
                Cert::Ecdsa => "ecdsa",
                Cert::Rsa => "rsa",
            },
            match self.mode {
                Mode::Full => "full",
                Mode::Resumed => "resumed",
            }
        )
    }

    fn pki(&self) -> Pki {
        match self.cert {
            Cert::Ecdsa => Pki::committed(),
            Cert::Rsa => Pki::committed_rsa(),
        }
        .expect("committed test PKI")
    }

    fn resumes(&self) -> bool {
        self.mode == Mode::Resumed
    }
}

/// Which implementation runs a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Imp {
    /// Both ends through the tlsresume API.
    Tlsresume,
    /// Both ends through the library directly.
    Raw,
    /// The raw server against the tlsresume client (OpenSSL resumed: see the module docs).
    RawServer,
}

impl Imp {
    fn name(self) -> &'static str {
        match self {
            Imp::Tlsresume => "tlsresume",
            Imp::Raw => "raw",
            Imp::RawServer => "raw-server",
        }
    }
}

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
    fn new(key: (Case, Imp), mut serve: ServeFn, client: ConnectFn) -> Self {
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
// tlsresume

fn server_params() -> ServerParams {
    ServerParams::new(loopback(40_000), loopback(465))
}

fn client_params() -> ClientParams {
    ClientParams::new(SERVER_NAME, loopback(465))
}

fn tlsresume_server(case: Case, pki: &Pki) -> ServeFn {
    let mut settings = ServerSettings::new(pki.server.clone());
    settings.versions = Versions::only(case.tls);
    let server = backends::server(case.backend, settings).expect("tlsresume server");
    let params = server_params();
    Box::new(move |sock| {
        let mut stream = server.accept(Box::new(sock), &params)?;
        stream.write_all(b"x")?;
        stream.flush()?;
        Ok(())
    })
}

fn tlsresume_client(case: Case, pki: &Pki) -> ConnectFn {
    let mut settings = ClientSettings::new(pki.roots.clone());
    settings.versions = Versions::only(case.tls);
    if !case.resumes() {
        settings.resumption =
            ResumptionPolicy::exim_compatible().with_client_hosts(HostList::none());
    }
    let client = backends::client(case.backend, settings).expect("tlsresume client");
    let params = client_params();
    Box::new(move |sock, check| {
        let mut stream = client.connect(Box::new(sock), &params)?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte)?;
        Ok(check.then(|| stream.info().resumed))
    })
}

// ---------------------------------------------------------------------------------------------
// raw rustls (ring provider), configured like the rustls backend

fn rustls_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn rustls_version(v: ProtocolVersion) -> &'static rustls::SupportedProtocolVersion {
    match v {
        ProtocolVersion::Tls12 => &rustls::version::TLS12,
        _ => &rustls::version::TLS13,
    }
}

fn rustls_key(identity: &Identity) -> PrivateKeyDer<'static> {
    let der = identity.key_der().to_vec();
    match identity.key_format() {
        KeyFormat::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
        KeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
        KeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
    }
}

fn rustls_server(case: Case, pki: &Pki) -> ServeFn {
    let chain = pki
        .server
        .chain()
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let mut config = ServerConfig::builder_with_provider(rustls_provider())
        .with_protocol_versions(&[rustls_version(case.tls)])
        .expect("rustls versions")
        .with_no_client_auth()
        .with_single_cert(chain, rustls_key(&pki.server))
        .expect("rustls server cert");
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.ticketer = rustls::crypto::ring::Ticketer::new().expect("rustls ticketer");
    config.send_tls13_tickets = 1;
    let config = Arc::new(config);
    Box::new(move |sock| {
        let conn = ServerConnection::new(config.clone())?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        stream.write_all(b"x")?;
        stream.flush()?;
        Ok(())
    })
}

fn rustls_client(case: Case, pki: &Pki) -> ConnectFn {
    let mut roots = RootCertStore::empty();
    for der in &pki.roots {
        roots
            .add(CertificateDer::from(der.clone()))
            .expect("trust anchor");
    }
    let mut config = ClientConfig::builder_with_provider(rustls_provider())
        .with_protocol_versions(&[rustls_version(case.tls)])
        .expect("rustls versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = if case.resumes() {
        RustlsResumption::in_memory_sessions(256)
    } else {
        RustlsResumption::disabled()
    };
    let config = Arc::new(config);
    let name = ServerName::try_from(SERVER_NAME).expect("server name");
    Box::new(move |sock, check| {
        let conn = ClientConnection::new(config.clone(), name.clone())?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte)?;
        Ok(check.then(|| stream.conn.handshake_kind() == Some(HandshakeKind::Resumed)))
    })
}

// ---------------------------------------------------------------------------------------------
// raw OpenSSL, configured like the OpenSSL backend (plain contexts, as the backend builds)

fn ssl_version(v: ProtocolVersion) -> SslVersion {
    match v {
        ProtocolVersion::Tls12 => SslVersion::TLS1_2,
        _ => SslVersion::TLS1_3,
    }
}

fn set_versions(ctx: &mut SslContextBuilder, v: ProtocolVersion) {
    ctx.set_min_proto_version(Some(ssl_version(v)))
        .expect("min version");
    ctx.set_max_proto_version(Some(ssl_version(v)))
        .expect("max version");
}

fn openssl_server(case: Case, pki: &Pki) -> ServeFn {
    let mut ctx = SslContext::builder(SslMethod::tls_server()).expect("SSL context");
    let mut chain = pki.server.chain().iter();
    let leaf = X509::from_der(chain.next().expect("leaf")).expect("leaf DER");
    ctx.set_certificate(&leaf).expect("certificate");
    for der in chain {
        ctx.add_extra_chain_cert(X509::from_der(der).expect("chain DER"))
            .expect("chain");
    }
    let key = PKey::private_key_from_der(pki.server.key_der()).expect("key DER");
    ctx.set_private_key(&key).expect("private key");
    ctx.check_private_key().expect("key matches");
    set_versions(&mut ctx, case.tls);
    // Stateless tickets only, one per connection, as the backend.
    ctx.set_session_cache_mode(SslSessionCacheMode::OFF);
    ctx.set_num_tickets(1).expect("num_tickets");
    let ctx = ctx.build();
    Box::new(move |sock| {
        let ssl = Ssl::new(&ctx)?;
        let mut stream = ssl.accept(sock).map_err(|e| e.to_string())?;
        stream.write_all(b"x")?;
        stream.flush()?;
        Ok(())
    })
}

fn openssl_client(case: Case, pki: &Pki) -> ConnectFn {
    let mut ctx = SslContext::builder(SslMethod::tls_client()).expect("SSL context");
    set_versions(&mut ctx, case.tls);
    let mut store = X509StoreBuilder::new().expect("store");
    for der in &pki.roots {
        store
            .add_cert(X509::from_der(der).expect("root DER"))
            .expect("root");
    }
    ctx.set_cert_store(store.build());
    ctx.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL);
    assert!(
        !case.resumes(),
        "raw OpenSSL cannot offer a session without unsafe"
    );
    // The backend sets NO_TICKET on connections whose policy does not resume.
    ctx.set_options(SslOptions::NO_TICKET);
    let ctx = ctx.build();
    Box::new(move |sock, check| {
        let mut ssl = Ssl::new(&ctx)?;
        ssl.set_hostname(SERVER_NAME)?;
        ssl.param_mut().set_host(SERVER_NAME)?;
        ssl.set_verify(SslVerifyMode::PEER);
        let mut stream = ssl.connect(sock).map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte)?;
        Ok(check.then(|| stream.ssl().session_reused()))
    })
}

// ---------------------------------------------------------------------------------------------

fn rig(case: Case, imp: Imp) -> Rig {
    let pki = case.pki();
    let (serve, connect) = match (imp, case.backend) {
        (Imp::Tlsresume, _) => (tlsresume_server(case, &pki), tlsresume_client(case, &pki)),
        (Imp::Raw, BackendKind::Rustls) => (rustls_server(case, &pki), rustls_client(case, &pki)),
        (Imp::Raw, BackendKind::Openssl) => {
            (openssl_server(case, &pki), openssl_client(case, &pki))
        }
        (Imp::RawServer, BackendKind::Openssl) => {
            (openssl_server(case, &pki), tlsresume_client(case, &pki))
        }
        other => panic!("no rig for {other:?}"),
    };
    let mut rig = Rig::new((case, imp), serve, connect);
    rig.prime_and_check();
    rig
}

fn imps(case: Case) -> Vec<Imp> {
    match (case.backend, case.mode) {
        (BackendKind::Gnutls, _) => vec![Imp::Tlsresume],
        (BackendKind::Openssl, Mode::Resumed) => vec![Imp::Tlsresume, Imp::RawServer],
        _ => vec![Imp::Tlsresume, Imp::Raw],
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for backend in backends::available() {
        for tls in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
            for cert in [Cert::Ecdsa, Cert::Rsa] {
                for mode in [Mode::Full, Mode::Resumed] {
                    out.push(Case {
                        backend,
                        tls,
                        cert,
                        mode,
                    });
                }
            }
        }
    }
    out
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
        let client = if *imp == Imp::RawServer {
            "(same client)".to_owned()
        } else {
            format!("{:.3}", raw.client_us() / tl.client_us())
        };
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
        let full_imp = if *imp == Imp::RawServer {
            Imp::Raw
        } else {
            *imp
        };
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
// one backend/version/certificate is alive at once, and each round runs `PAIR_BLOCK` handshakes
// on each of them in turn; a ratio is taken within each round and the median over rounds is
// reported, with the quartiles.

const PAIR_ROUNDS: usize = 40;
const PAIR_BLOCK: u64 = 5;

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
        let mut rigs: Vec<((Case, Imp), Rig)> = Vec::new();
        for c in [case, resumed_case] {
            for imp in imps(c) {
                rigs.push(((c, imp), rig(c, imp)));
            }
        }
        let mut samples: BTreeMap<(Case, Imp), Vec<Sample>> = BTreeMap::new();
        for round in 0..PAIR_ROUNDS {
            // Rotate the order so no rig always follows the same one.
            let n = rigs.len();
            for i in 0..n {
                let (key, rig) = &mut rigs[(i + round) % n];
                let t = rig.timed(PAIR_BLOCK);
                samples
                    .entry(*key)
                    .or_default()
                    .push(per_handshake(t, PAIR_BLOCK));
            }
        }
        drop(rigs);
        for c in [case, resumed_case] {
            let Some(tl) = samples.get(&(c, Imp::Tlsresume)) else {
                continue;
            };
            for imp in [Imp::Raw, Imp::RawServer] {
                if let Some(raw) = samples.get(&(c, imp)) {
                    overhead.push(format!(
                        "| {} | {} | {} | {} | {} |",
                        c.group(),
                        imp.name(),
                        show(ratios(raw, tl, 0)),
                        if imp == Imp::RawServer {
                            "(same client)".to_owned()
                        } else {
                            show(ratios(raw, tl, 1))
                        },
                        show(ratios(raw, tl, 2)),
                    ));
                }
            }
        }
        for (full_imp, resumed_imp) in [
            (Imp::Tlsresume, Imp::Tlsresume),
            (Imp::Raw, Imp::Raw),
            (Imp::Raw, Imp::RawServer),
        ] {
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
        "\n## Paired rounds ({PAIR_ROUNDS} rounds of {PAIR_BLOCK} handshakes per rig): median (quartiles)\n"
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
