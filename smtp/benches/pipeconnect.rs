//! Connect → "DATA accepted" over a link with a set round-trip time (a delaying proxy on
//! loopback holds every segment for half the RTT each way), with and without early
//! pipelining, for clear SMTP, STARTTLS and TLS-on-connect (rustls; full and resumed
//! handshakes). The TCP handshake to the proxy is not delayed, so the figures leave out the
//! connect's own round trip, which every row pays alike.
//!
//! Criterion reports the time per connection; at the end a table gives each row's waits
//! (exact) and its mean time as a multiple of the RTT.
//!
//! `TLSRESUME_BENCH_RTT_MS` sets the RTT (default 20).

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ConnPlan, DelayProxy, RustlsStartTls, ServerConfig, TestServer};
use criterion::{criterion_group, criterion_main, Criterion};
use tlsresume_core::{ManualClock, Resumption, UnixTime};
use tlsresume_smtp::ehlo::{EhloCache, MemoryEhloStore};
use tlsresume_smtp::{Client, ClientConfig, Delivery, Message, NoTls, Start};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Clear,
    StartTls,
    TlsOnConnect,
}

struct Row {
    name: String,
    waits: u32,
    resumed: bool,
    total: Duration,
    count: u32,
}

fn rtt() -> Duration {
    let ms = std::env::var("TLSRESUME_BENCH_RTT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    Duration::from_millis(ms)
}

fn message() -> Message {
    Message {
        mail_from: "bench@client.test".into(),
        rcpt_to: vec!["one@server.test".into()],
        content: b"Subject: bench\r\n\r\nhello\r\n".to_vec(),
        dsn: Default::default(),
    }
}

fn client(early: bool) -> Client {
    let mut config = ClientConfig::new("client.test").expect("name");
    if early {
        config.hosts_pipe_connect = "*".parse().expect("list");
    }
    config.ehlo_cache = EhloCache::new(
        Arc::new(MemoryEhloStore::default()),
        Arc::new(ManualClock::new(UnixTime::from_secs(1_700_000_000))),
    );
    config.timeout = Duration::from_secs(10);
    Client::new(config)
}

/// One connection; the time from before connecting to DATA accepted.
fn once(
    mode: Mode,
    client: &Client,
    tls: &RustlsStartTls,
    proxy: &DelayProxy,
) -> (Duration, Delivery, bool) {
    let started = Instant::now();
    let tcp = TcpStream::connect(proxy.addr).expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let before_send;
    let d = match mode {
        Mode::Clear => {
            before_send = started.elapsed();
            client
                .send(
                    proxy.addr,
                    None,
                    tcp,
                    Start::Clear,
                    None::<&NoTls>,
                    &message(),
                )
                .expect("send")
        }
        Mode::StartTls => {
            before_send = started.elapsed();
            client
                .send(proxy.addr, None, tcp, Start::Clear, Some(tls), &message())
                .expect("send")
        }
        Mode::TlsOnConnect => {
            let stream = tls.connect(tcp).expect("handshake");
            before_send = started.elapsed();
            client
                .send(
                    proxy.addr,
                    None,
                    stream,
                    Start::TlsOnConnect,
                    None::<&NoTls>,
                    &message(),
                )
                .expect("send")
        }
    };
    let resumed = tls
        .handshakes
        .lock()
        .expect("handshakes")
        .last()
        .is_some_and(|i| i.resumption.contains(Resumption::USED));
    (before_send + d.time_to_data, d, resumed)
}

fn bench(c: &mut Criterion) {
    let rtt = rtt();
    let rows: Mutex<Vec<Row>> = Mutex::new(Vec::new());
    let offer = ["PIPELINING", "PIPECONNECT", "STARTTLS"];
    let offer_tls = ["PIPELINING", "PIPECONNECT"];
    let mut group = c.benchmark_group(format!("smtp_to_data_rtt_{}ms", rtt.as_millis()));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for mode in [Mode::Clear, Mode::StartTls, Mode::TlsOnConnect] {
        let server = TestServer::start(ServerConfig {
            plans: vec![ConnPlan::new(&offer, &offer_tls)],
            pre_banner_wait: Duration::ZERO,
            tls: (mode != Mode::Clear).then(common::rustls_server),
            tls_on_connect: mode == Mode::TlsOnConnect,
        });
        let proxy = DelayProxy::start(server.addr, rtt);
        let resumption_rows: &[bool] = if mode == Mode::Clear {
            &[false]
        } else {
            &[false, true]
        };
        for early in [false, true] {
            for &resume in resumption_rows {
                let client = client(early);
                let shared_tls = RustlsStartTls::new();
                // Warm the EHLO cache (and, for resumption, the session cache).
                once(mode, &client, &shared_tls, &proxy);
                let name = format!(
                    "{mode:?}/{}{}",
                    if early { "early" } else { "normal" },
                    match (mode, resume) {
                        (Mode::Clear, _) => "",
                        (_, true) => "+resumed",
                        (_, false) => "+full-handshake",
                    }
                );
                group.bench_function(&name, |b| {
                    b.iter_custom(|iters| {
                        let mut sum = Duration::ZERO;
                        for _ in 0..iters {
                            let fresh;
                            let tls = if resume {
                                &shared_tls
                            } else {
                                fresh = RustlsStartTls::new();
                                &fresh
                            };
                            let (t, d, resumed) = once(mode, &client, tls, &proxy);
                            assert_eq!(early, !d.sent_early.is_empty(), "{name}");
                            if mode != Mode::Clear {
                                assert_eq!(resume, resumed, "{name}");
                            }
                            sum += t;
                            let mut rows = rows.lock().expect("rows");
                            match rows.iter_mut().find(|r| r.name == name) {
                                Some(r) => {
                                    r.total += t;
                                    r.count += 1;
                                    r.waits = d.waits_before_data;
                                }
                                None => rows.push(Row {
                                    name: name.clone(),
                                    waits: d.waits_before_data,
                                    resumed,
                                    total: t,
                                    count: 1,
                                }),
                            }
                        }
                        sum
                    })
                });
            }
        }
    }
    group.finish();
    let rows = rows.lock().expect("rows");
    println!(
        "\nconnect → DATA accepted, RTT {} ms (TCP handshake excluded)",
        rtt.as_millis()
    );
    println!(
        "{:<40} {:>6} {:>8} {:>10} {:>8}",
        "row", "waits", "resumed", "mean ms", "RTTs"
    );
    for r in rows.iter() {
        let mean = r.total / r.count.max(1);
        println!(
            "{:<40} {:>6} {:>8} {:>10.1} {:>8.2}",
            r.name,
            r.waits,
            r.resumed,
            mean.as_secs_f64() * 1000.0,
            mean.as_secs_f64() / rtt.as_secs_f64()
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
