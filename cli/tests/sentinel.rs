//! Two `tlsresume serve` processes sharing ticket keys through a Sentinel-managed Redis
//! (`--ticket-keys redis+sentinel://…`, keys wrapped with `--kek-file`), behind a round-robin
//! balancer, under a resuming client load, with keys rotating every 2 s
//! (`--ticket-rotation 2`); mid-run the Redis master is killed (SIGKILL) and the Sentinel
//! promotes its replica.
//!
//! Asserted: no handshake fails; outside the failover window (from the kill to the
//! promotion plus the nodes' Redis back-off and one rotation, a bound fixed in advance) at
//! least 99 % of the connections resume, each on the node that did not issue its ticket;
//! rotation continues after the failover (the new master holds keys for slots that started
//! after the promotion); Redis holds no ticket key in clear. Printed: the measured window
//! (from the kill to the last connection that did not resume).
//!
//! Needs `redis-server` (Sentinel mode is `redis-server FILE --sentinel`): skipped, and said
//! so, without it; a failure under CI.
#![cfg(feature = "stores")]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tlsresume::stores::{Kek, RedisConfig, RedisKeySource};
use tlsresume::{ClientParams, KeySource, TicketPolicy, UnixTime};
use tlsresume_compare::redis::{round_robin, SentinelSet};

mod common;

use common::{kek_file, tls_client, until_stopped, Server};

/// The rotation period given to the nodes (seconds).
const ROTATION: u64 = 2;
/// The nodes' Redis back-off after a failure (`RedisConfig`'s default, which serve keeps).
const REDIS_RETRY: Duration = Duration::from_secs(5);

/// One connection's outcome, `at` from the start of the load.
#[derive(Clone, Debug)]
struct Outcome {
    at: Duration,
    result: Result<bool, String>,
}

/// TLS-on-connect SMTP: banner, QUIT; whether the session was resumed.
fn connect(client: &dyn tlsresume::ClientContext, addr: SocketAddr) -> Result<bool, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let mut tls = client
        .connect(Box::new(tcp), &ClientParams::new("mx.tlsresume.test", addr))
        .map_err(|e| e.to_string())?;
    let mut banner = String::new();
    BufReader::new(&mut tls)
        .read_line(&mut banner)
        .map_err(|e| e.to_string())?;
    if !banner.starts_with("220") {
        return Err(format!("banner {banner:?}"));
    }
    tls.write_all(b"QUIT\r\n").map_err(|e| e.to_string())?;
    let mut bye = String::new();
    let _ = BufReader::new(&mut tls).read_line(&mut bye);
    let resumed = tls.info().resumed;
    let _ = tls.shutdown();
    Ok(resumed)
}

/// The rotation slots of the ticket keys (`tlsresume:stek:ROTATION:SLOT`) on the server at
/// `port`.
fn key_slots(port: u16) -> Vec<u64> {
    let prefix = format!("tlsresume:stek:{ROTATION}:");
    SentinelSet::entries_within(port, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the Redis server on port {port} cannot be read: {e}"))
        .iter()
        .filter_map(|(name, _)| {
            String::from_utf8_lossy(name)
                .strip_prefix(&prefix)
                .and_then(|s| s.parse().ok())
        })
        .collect()
}

#[test]
fn serve_nodes_on_sentinel_ride_out_a_master_failover() {
    let Some(mut set) = SentinelSet::start("mailfleet") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tlsresume-cli-{}-sentinel", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let kek = kek_file(&dir, "kek", 0o600);
    let url = set.url();
    let rotation = ROTATION.to_string();
    let args = [
        "--backend",
        "openssl",
        "--ticket-keys",
        &url,
        "--kek-file",
        &kek,
        "--ticket-rotation",
        &rotation,
    ];
    let nodes = [Server::start(&args), Server::start(&args)];
    let addrs: Vec<SocketAddr> = nodes
        .iter()
        .map(|n| n.addr.parse().expect("node address"))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));

    // Two clients, each resuming its last session through a balancer of its own, so that
    // its consecutive connections alternate between the nodes: every resumption is a ticket
    // of one node opened by the other.
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let start = Instant::now();
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, outcomes) = (stop.clone(), outcomes.clone());
            let addr = round_robin(addrs.clone()).expect("balancer");
            thread::spawn(move || {
                let client = tls_client("openssl");
                // Pacing only (a few connections per rotation per client).
                let own = until_stopped(&stop, Duration::from_millis(20), || Outcome {
                    result: connect(client.as_ref(), addr),
                    at: start.elapsed(),
                });
                outcomes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(own);
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(2 * ROTATION + 1));
    let killed = start.elapsed();
    let slot_at_kill = UnixTime::now().as_secs() / ROTATION;
    set.kill_master();
    let promotion = set
        .wait_for_promotion(Duration::from_secs(20))
        .expect("the Sentinel promotes the replica within 20 s");
    let promoted_slot = UnixTime::now().as_secs() / ROTATION;
    // The window: promotion, the nodes' back-off, one rotation, and a second of margin.
    let window_end = killed + promotion + REDIS_RETRY + Duration::from_secs(ROTATION + 1);
    // Then three rotations with the new master.
    while start.elapsed() < window_end + Duration::from_secs(3 * ROTATION) {
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("client thread");
    }
    let mut all = outcomes.lock().unwrap_or_else(|e| e.into_inner()).clone();
    all.sort_by_key(|o| o.at);

    let failed: Vec<_> = all.iter().filter(|o| o.result.is_err()).collect();
    assert!(failed.is_empty(), "failed handshakes: {failed:?}");
    // Each client's first connection is a full handshake (nothing to resume yet).
    let outside: Vec<_> = all
        .iter()
        .filter(|o| o.at > Duration::from_millis(500) && (o.at < killed || o.at > window_end))
        .collect();
    let resumed = outside
        .iter()
        .filter(|o| matches!(o.result, Ok(true)))
        .count();
    assert!(
        outside.len() >= 100,
        "too few connections outside the window to judge: {}",
        outside.len()
    );
    let share = resumed as f64 / outside.len() as f64;
    // The measured window: from the kill to the last connection inside the bound that did
    // not resume; and those outside it that did not (at most 1 % by the check below).
    let measured = all
        .iter()
        .filter(|o| o.at >= killed && o.at <= window_end && matches!(o.result, Ok(false)))
        .map(|o| o.at - killed)
        .max()
        .unwrap_or_default();
    let late: Vec<_> = outside
        .iter()
        .filter(|o| o.at > killed && matches!(o.result, Ok(false)))
        .map(|o| o.at - killed)
        .collect();
    eprintln!(
        "{} connections, none failed; outside the failover window {resumed}/{} resumed across nodes ({:.2} %); master killed at {killed:?}, replica promoted {promotion:?} later; connections not resumed until {measured:?} after the kill (bound {:?}); after the bound, not resumed at {late:?} after the kill",
        all.len(),
        outside.len(),
        share * 100.0,
        window_end - killed
    );
    assert!(
        share >= 0.99,
        "cross-node resumption outside the failover window: {resumed}/{}",
        outside.len()
    );

    // Rotation continued on the new master: keys for slots that began after the promotion.
    let slots = key_slots(set.replica_port());
    assert!(
        slots.iter().any(|s| *s > promoted_slot + 1),
        "the new master holds keys of slots after the promotion (slot {promoted_slot}, kill at {slot_at_kill}): {slots:?}"
    );

    // No ticket key in clear: the fleet's current key, as a node with the KEK unwraps it, is
    // nowhere in Redis.
    let policy = TicketPolicy::rolling(
        Duration::from_secs(ROTATION),
        1,
        Duration::from_secs(2 * ROTATION),
        Some(Duration::from_secs(ROTATION)),
    )
    .expect("policy");
    let kek = Kek::from_file(dir.join("kek")).expect("KEK");
    let source = RedisKeySource::new(RedisConfig::new(url.as_str()), kek, &policy).expect("source");
    let key = source.new_key(UnixTime::now()).expect("the fleet's key");
    assert_eq!(source.stats().local, 0, "the fleet's key came from Redis");
    let port = set.replica_port();
    let entries = SentinelSet::entries_within(port, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the Redis server on port {port} cannot be read: {e}"));
    for (name, value) in entries {
        for secret in [
            &key.name.as_bytes()[..],
            key.secret.cipher_key(),
            key.secret.mac_key(),
        ] {
            assert!(
                !value.windows(secret.len()).any(|w| w == secret),
                "{} holds key material in clear",
                String::from_utf8_lossy(&name)
            );
        }
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}
