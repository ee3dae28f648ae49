//! A fleet with real parts: three `tlsresume serve` processes behind HAProxy (TCP mode, round
//! robin), ticket keys and the clients' sessions in a Redis master with two replicas watched by
//! three Sentinels (`--ticket-keys redis+sentinel://…`, keys wrapped with `--kek-file`), keys
//! rotating every 2 s (`--ticket-rotation 2`). Several clients, each from a loopback address of
//! its own and keeping its sessions in Redis (`RedisStore::with_fleet_session_key`), connect
//! through HAProxy again and again and resume. Mid-run the Redis master is killed (SIGKILL) and
//! the Sentinels promote a replica; later one node is restarted the way an operator does it
//! (drained in HAProxy, stopped, started, put back).
//!
//! Asserted: no handshake fails; outside the failover window (from the kill to the promotion
//! plus the Redis back-off, one rotation and a second, a bound fixed in advance) at least 99 %
//! of the connections whose ticket came from another node resume; the restarted node resumes
//! tickets issued before its restart, in the rotation slot after the one that sealed them;
//! rotation goes on after the failover (keys of new slots on the new master, the same on the
//! remaining replica); no ticket key, as the nodes use it, is ever found in clear in any Redis
//! value (scanned every half second on every server). Printed: the figures and the measured
//! window.
//!
//! Sized for CI (about 30 s). `scripts/fleet-failover` runs it longer with more clients:
//! `TLSRESUME_FLEET_CLIENTS` (default 4) and `TLSRESUME_FLEET_STEADY` (seconds of load before
//! the kill and after the restart, default 5).
//!
//! Needs `redis-server` and `haproxy`: skipped, and said so, without them; a failure under CI.
#![cfg(feature = "stores")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tlsresume::stores::{Kek, RedisConfig, RedisKeySource, RedisStore};
use tlsresume::{ClientContext, ClientParams, KeySource, TicketPolicy, UnixTime};
use tlsresume_compare::haproxy::Haproxy;
use tlsresume_compare::redis::{retried, SentinelSet};

mod common;

use common::{kek_file, pki, tls_client, until_stopped, Server};

/// The rotation period given to the nodes (seconds).
const ROTATION: u64 = 2;
/// The nodes' and clients' Redis back-off after a failure (`RedisConfig`'s default).
const REDIS_RETRY: Duration = Duration::from_secs(5);
/// The nodes of the fleet.
const NODES: usize = 3;
/// The node restarted (1-based, as HAProxy names it).
const RESTARTED: usize = 2;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One connection's outcome, `at` from the start of the load.
#[derive(Clone, Debug)]
struct Outcome {
    at: Duration,
    /// The node of this client's previous connection (where its ticket most likely came from).
    previous: Option<usize>,
    result: Result<(usize, bool), String>,
}

/// Whether the connection's ticket most likely came from another node.
fn across(o: &Outcome) -> bool {
    matches!((o.previous, &o.result), (Some(p), Ok((n, _))) if p != *n)
}

fn resumed(o: &Outcome) -> bool {
    matches!(o.result, Ok((_, true)))
}

/// TLS-on-connect SMTP from `from` to `to`: banner, QUIT. The node that answered (from its
/// banner, `220 nodeN.…`) and whether the session was resumed.
fn connect(
    client: &dyn ClientContext,
    from: Option<IpAddr>,
    to: SocketAddr,
) -> Result<(usize, bool), String> {
    connect_as(client, from, to, to)
}

/// [`connect`] to `to`, the client taking it for `fleet` (its session cache entry is
/// `fleet`'s, as for a client of the fleet's address that HAProxy sent to `to`).
fn connect_as(
    client: &dyn ClientContext,
    from: Option<IpAddr>,
    to: SocketAddr,
    fleet: SocketAddr,
) -> Result<(usize, bool), String> {
    let tcp = match from {
        Some(ip) => {
            use socket2::{Domain, Socket, Type};
            let socket =
                Socket::new(Domain::IPV4, Type::STREAM, None).map_err(|e| e.to_string())?;
            socket
                .bind(&SocketAddr::new(ip, 0).into())
                .map_err(|e| format!("bind {ip}: {e}"))?;
            socket.connect(&to.into()).map_err(|e| e.to_string())?;
            TcpStream::from(socket)
        }
        None => TcpStream::connect(to).map_err(|e| e.to_string())?,
    };
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let mut params = ClientParams::new("mx.tlsresume.test", fleet);
    if let Some(ip) = from {
        params = params.local(ip);
    }
    let mut tls = client
        .connect(Box::new(tcp), &params)
        .map_err(|e| e.to_string())?;
    let mut banner = String::new();
    BufReader::new(&mut tls)
        .read_line(&mut banner)
        .map_err(|e| e.to_string())?;
    let node = banner
        .strip_prefix("220 node")
        .and_then(|rest| rest.split('.').next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("banner {banner:?}"))?;
    tls.write_all(b"QUIT\r\n").map_err(|e| e.to_string())?;
    let mut bye = String::new();
    let _ = BufReader::new(&mut tls).read_line(&mut bye);
    let resumed = tls.info().resumed;
    let _ = tls.shutdown();
    Ok((node, resumed))
}

/// A client of the load: OpenSSL, its sessions in Redis under the fleet's session key.
fn redis_client(url: &str, kek: &Kek) -> Arc<dyn ClientContext> {
    let store = RedisStore::new(RedisConfig::new(url))
        .expect("store")
        .with_fleet_session_key(kek)
        .expect("the fleet's session key");
    let roots = tlsresume::certificates_from_pem_file(pki("ca.pem").as_ref()).expect("CA");
    let mut settings = tlsresume::ClientSettings::new(roots);
    settings.store = Arc::new(store);
    tlsresume::backends::client(
        tlsresume::backends::parse("openssl").expect("backend"),
        settings,
    )
    .expect("client")
}

/// `serve` as node `n` (its banner says `nodeN.mx.tlsresume.test`) listening on `listen`, or
/// on a free port (another one when that was taken first) when `None`.
fn node(n: usize, listen: Option<&str>, common: &[&str]) -> Server {
    let host = format!("node{n}.mx.tlsresume.test");
    let mut args = vec!["--hostname", &host, "--timeout", "30"];
    args.extend_from_slice(common);
    let Some(listen) = listen else {
        return Server::start_on_free_port(&args);
    };
    let mut server = Server::spawn(&[&["--listen", listen], args.as_slice()].concat());
    let first = server.line();
    assert_eq!(first, format!("listening on {listen}"), "node {n}");
    server.addr = listen.to_owned();
    server
}

/// The rotation slots of the ticket keys (`tlsresume:stek:ROTATION:SLOT`) held by the server
/// on `port`, with their values.
fn key_slots(port: u16) -> std::io::Result<BTreeMap<u64, Vec<u8>>> {
    let prefix = format!("tlsresume:stek:{ROTATION}:");
    Ok(SentinelSet::try_entries(port)?
        .into_iter()
        .filter_map(|(name, value)| {
            let slot = String::from_utf8_lossy(&name)
                .strip_prefix(&prefix)
                .and_then(|s| s.parse().ok())?;
            Some((slot, value))
        })
        .collect())
}

/// The master the Sentinels name now and the ticket keys it holds by slot, read again for up
/// to 10 s while either cannot be had (a loaded machine may see the Sentinels fail over a
/// second time, and a demoted server answer `-LOADING` while it takes its new master's data);
/// the last reason when none could.
fn master_key_slots(set: &SentinelSet) -> Result<(u16, BTreeMap<u64, Vec<u8>>), String> {
    retried(Duration::from_secs(10), || {
        let port = set
            .current_master()
            .ok_or_else(|| "no Sentinel names a master".to_owned())?;
        key_slots(port)
            .map(|slots| (port, slots))
            .map_err(|e| format!("the master on port {port} cannot be read: {e}"))
    })
}

/// Watches Redis while the fleet runs: takes the fleet's key of each slot as a node does
/// (through the Sentinels, unwrapped with the KEK) and looks for its bytes in every value of
/// every live Redis server.
struct Watch {
    /// Secret key material seen (cipher key, MAC key) by slot; a key's name is no secret
    /// (every ticket carries it in clear, and so do the clients' stored sessions).
    keys: BTreeMap<u64, Vec<Vec<u8>>>,
    /// Values scanned.
    scanned: usize,
    /// Values found holding key material in clear.
    clear: Vec<String>,
}

impl Watch {
    fn look(&mut self, source: &RedisKeySource, ports: &[u16]) {
        let local_before = source.stats().local;
        let now = UnixTime::now();
        if let Ok(key) = source.new_key(now) {
            // A stand-in (Redis away) is this watcher's own, not the fleet's.
            if source.stats().local == local_before {
                self.keys.entry(source.slot_at(now)).or_insert_with(|| {
                    vec![
                        key.secret.cipher_key().to_vec(),
                        key.secret.mac_key().to_vec(),
                    ]
                });
            }
        }
        for port in ports {
            for (name, value) in SentinelSet::entries(*port) {
                self.scanned += 1;
                let clear = self
                    .keys
                    .values()
                    .flatten()
                    .any(|secret| value.windows(secret.len()).any(|w| w == secret.as_slice()));
                if clear {
                    self.clear
                        .push(format!("{} on port {port}", String::from_utf8_lossy(&name)));
                }
            }
        }
    }
}

#[test]
fn three_nodes_behind_haproxy_ride_out_a_sentinel_failover_and_a_node_restart() {
    let Some(mut set) = SentinelSet::start_with("mailfleet", 2, 3) else {
        return;
    };
    let clients = usize::try_from(env_or("TLSRESUME_FLEET_CLIENTS", 4)).unwrap_or(4);
    let steady = Duration::from_secs(env_or("TLSRESUME_FLEET_STEADY", 5));
    let dir = std::env::temp_dir().join(format!("tlsresume-cli-{}-haproxy", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let kek_path = kek_file(&dir, "kek", 0o600);
    let kek = || Kek::from_file(&kek_path).expect("KEK");
    let url = set.url();
    let rotation = ROTATION.to_string();
    let common = [
        "--backend",
        "openssl",
        "--ticket-keys",
        &url,
        "--kek-file",
        &kek_path,
        "--ticket-rotation",
        &rotation,
    ];
    let mut nodes: Vec<Server> = (0..NODES).map(|i| node(i + 1, None, &common)).collect();
    let addrs: Vec<SocketAddr> = nodes
        .iter()
        .map(|n| n.addr.parse().expect("node address"))
        .collect();
    let Some(proxy) = Haproxy::start(&addrs) else {
        return;
    };
    let front = proxy.front();

    // The watcher of Redis's values.
    let policy = TicketPolicy::rolling(
        Duration::from_secs(ROTATION),
        1,
        Duration::from_secs(2 * ROTATION),
        Some(Duration::from_secs(ROTATION)),
    )
    .expect("policy");
    let source =
        RedisKeySource::new(RedisConfig::new(url.as_str()), kek(), &policy).expect("source");
    let watch = Arc::new(Mutex::new(Watch {
        keys: BTreeMap::new(),
        scanned: 0,
        clear: Vec::new(),
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (watch, stop, servers) = (watch.clone(), stop.clone(), set.server_ports());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                watch
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .look(&source, &servers);
                thread::sleep(Duration::from_millis(500));
            }
        })
    };

    // The load: each client from an address of its own (its own cache entry), through
    // HAProxy, pacing a few connections per rotation.
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let start = Instant::now();
    let load: Vec<_> = (0..clients)
        .map(|i| {
            let (stop, outcomes) = (stop.clone(), outcomes.clone());
            let client = redis_client(&url, &kek());
            let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + u8::try_from(i).unwrap_or(0)));
            thread::spawn(move || {
                let mut previous = None;
                let own = until_stopped(&stop, Duration::from_millis(20), || {
                    let result = connect(client.as_ref(), Some(from), front);
                    let outcome = Outcome {
                        at: start.elapsed(),
                        previous,
                        result: result.clone(),
                    };
                    previous = result.ok().map(|(node, _)| node);
                    outcome
                });
                outcomes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(own);
            })
        })
        .collect();

    // The failover.
    thread::sleep(steady);
    let killed = start.elapsed();
    set.kill_master();
    let (new_master, promotion) = set
        .wait_for_new_master(Duration::from_secs(30))
        .expect("the Sentinels promote a replica within 30 s");
    let promoted_slot = UnixTime::now().as_secs() / ROTATION;
    let window_end = killed + promotion + REDIS_RETRY + Duration::from_secs(ROTATION + 1);
    while start.elapsed() < window_end + Duration::from_secs(ROTATION) {
        thread::sleep(Duration::from_millis(50));
    }

    // The restart. Sessions of every node taken just after a rotation, straight from each
    // node (clients of their own, sessions in memory, cached under the fleet's address); at
    // the next rotation the node is drained in HAProxy, killed, started again on its port and
    // put back; then, in that slot (the tickets' key is the previous one by then, which the
    // new process never used), each session is offered to the restarted node.
    while UnixTime::now().as_secs() % ROTATION != 0 {
        thread::sleep(Duration::from_millis(10));
    }
    // Not at the very boundary: a handshake made while another one fetches the new slot's
    // key is sealed with the previous slot's (it still decrypts), which the restarted node
    // would rightly no longer take one slot later.
    thread::sleep(Duration::from_millis(300));
    let issued_slot = UnixTime::now().as_secs() / ROTATION;
    let old: Vec<_> = addrs
        .iter()
        .map(|addr| {
            let client = tls_client("openssl");
            let first =
                connect_as(client.as_ref(), None, *addr, front).expect("a session from a node");
            (client, first.0)
        })
        .collect();
    while UnixTime::now().as_secs() / ROTATION == issued_slot {
        thread::sleep(Duration::from_millis(10));
    }
    let name = format!("node{RESTARTED}");
    let drain_start = Instant::now();
    proxy
        .drain(&name, Duration::from_secs(10))
        .expect("the node drained");
    let drained = drain_start.elapsed();
    let restarted_at = start.elapsed();
    let listen = {
        let old_node = &mut nodes[RESTARTED - 1];
        let _ = old_node.child.kill();
        let _ = old_node.child.wait();
        old_node.addr.clone()
    };
    nodes[RESTARTED - 1] = node(RESTARTED, Some(&listen), &common);
    let resumed_slot = UnixTime::now().as_secs() / ROTATION;
    let restarted_addr = addrs[RESTARTED - 1];
    let old_resumed: Vec<_> = old
        .iter()
        .map(|(client, issuer)| {
            let again = connect_as(client.as_ref(), None, restarted_addr, front);
            (*issuer, again)
        })
        .collect();
    proxy.ready(&name).expect("the node back in HAProxy");
    let back_at = start.elapsed();
    let up_by = Instant::now() + Duration::from_secs(5);
    while !proxy.is_up(&name).unwrap_or(false) && Instant::now() < up_by {
        thread::sleep(Duration::from_millis(20));
    }

    thread::sleep(steady);
    stop.store(true, Ordering::SeqCst);
    for c in load {
        c.join().expect("client thread");
    }
    watcher.join().expect("watcher");
    let total = start.elapsed();
    let mut all = outcomes.lock().unwrap_or_else(|e| e.into_inner()).clone();
    all.sort_by_key(|o| o.at);

    // Failed handshakes: none.
    let failed: Vec<_> = all.iter().filter(|o| o.result.is_err()).collect();
    assert!(failed.is_empty(), "failed handshakes: {failed:?}");

    // Resumption across nodes outside the failover window.
    let outside: Vec<&Outcome> = all
        .iter()
        .filter(|o| o.at < killed || o.at > window_end)
        .filter(|o| across(o))
        .collect();
    let outside_resumed = outside.iter().filter(|o| resumed(o)).count();
    let share = outside_resumed as f64 / outside.len().max(1) as f64;
    let measured = all
        .iter()
        .filter(|o| o.at >= killed && o.at <= window_end)
        .filter(|o| across(o))
        .filter(|o| !resumed(o))
        .map(|o| o.at - killed)
        .max()
        .unwrap_or_default();
    let inside = all
        .iter()
        .filter(|o| o.at >= killed && o.at <= window_end)
        .count();
    let on_restarted = all
        .iter()
        .filter(|o| o.at > back_at && matches!(o.result, Ok((n, _)) if n == RESTARTED))
        .collect::<Vec<_>>();
    let on_restarted_resumed = on_restarted.iter().filter(|o| resumed(o)).count();
    let not_resumed_outside: Vec<_> = outside
        .iter()
        .filter(|o| !resumed(o))
        .map(|o| (o.at, o.previous, o.result.clone()))
        .collect();

    let watch = watch.lock().unwrap_or_else(|e| e.into_inner());
    // The master at the end: the one promoted, unless the Sentinels failed over again.
    let (master_now, new_slots) = master_key_slots(&set).unwrap_or_else(|why| panic!("{why}"));
    let again = if master_now == new_master {
        String::new()
    } else {
        format!(", then the Sentinels moved it to port {master_now}")
    };
    let after: Vec<u64> = new_slots
        .keys()
        .copied()
        .filter(|s| *s > promoted_slot + 1)
        .collect();
    eprintln!(
        "fleet: {NODES} serve nodes (OpenSSL, rotation {ROTATION} s) behind HAProxy, Redis master + 2 replicas + 3 Sentinels, {clients} clients, {total:.1?}\n\
         connections: {} made, 0 failed\n\
         resumed across nodes outside the failover window: {outside_resumed}/{} ({:.2} %); not resumed: {not_resumed_outside:?}\n\
         failover: master killed at {killed:.1?}, replica (port {new_master}) promoted {promotion:.1?} later{again}; {inside} connections in the window; connections across nodes not resumed until {measured:.1?} after the kill (bound {:.1?})\n\
         restart: node{RESTARTED} drained in {drained:.1?}, stopped at {restarted_at:.1?}, back in HAProxy at {back_at:.1?}; after it {on_restarted_resumed}/{} of its connections through HAProxy resumed; sessions taken in slot {issued_slot} from nodes 1-{NODES} offered to it in slot {resumed_slot}: {old_resumed:?}\n\
         rotation: the master holds keys of slots {:?} (promoted in slot {promoted_slot}); the watcher took the fleet's keys of {} slots, {} of them after the promotion\n\
         key material in clear: {} of {} values scanned",
        all.len(),
        outside.len(),
        share * 100.0,
        window_end - killed,
        on_restarted.len(),
        new_slots.keys().collect::<Vec<_>>(),
        watch.keys.len(),
        watch.keys.keys().filter(|s| **s > promoted_slot + 1).count(),
        watch.clear.len(),
        watch.scanned,
    );

    assert!(
        outside.len() >= 100,
        "too few connections across nodes outside the window to judge: {}",
        outside.len()
    );
    assert!(
        share >= 0.99,
        "cross-node resumption outside the failover window: {outside_resumed}/{}",
        outside.len()
    );
    // The restarted node opens tickets sealed before its restart, under the previous slot's key.
    assert!(
        resumed_slot == issued_slot + 1,
        "slots {issued_slot} -> {resumed_slot}"
    );
    for (issuer, again) in &old_resumed {
        assert!(
            matches!(again, Ok((n, true)) if *n == RESTARTED),
            "a ticket of node{issuer} from before the restart, offered to the restarted node{RESTARTED}: {again:?}"
        );
    }
    assert!(
        !on_restarted.is_empty(),
        "HAProxy sent no connection to the restarted node"
    );
    // Rotation went on after the failover, with the fleet's keys.
    assert!(
        after.len() >= 2,
        "the master (port {master_now}) holds keys of slots after the promotion (slot {promoted_slot}): {:?}",
        new_slots.keys().collect::<Vec<_>>()
    );
    assert!(
        watch
            .keys
            .keys()
            .filter(|s| **s > promoted_slot + 1)
            .count()
            >= 2,
        "the watcher took the fleet's keys of slots after the promotion: {:?}",
        watch.keys.keys().collect::<Vec<_>>()
    );
    // The remaining replica follows the master: the same wrapped keys.
    let other = set
        .server_ports()
        .into_iter()
        .find(|p| *p != set.master_port() && *p != master_now)
        .expect("the other replica");
    // Compared on what both hold now (the keys expire a few slots after theirs), read again
    // until they agree.
    let compared = Instant::now();
    let converged = compared + Duration::from_secs(10);
    loop {
        let theirs = key_slots(other);
        let ours = key_slots(master_now);
        let agree = match (&theirs, &ours) {
            (Ok(theirs), Ok(ours)) => {
                let since: Vec<_> = ours.keys().filter(|s| **s > promoted_slot + 1).collect();
                !since.is_empty() && since.iter().all(|s| theirs.get(s) == ours.get(s))
            }
            _ => false,
        };
        if agree {
            eprintln!(
                "the other replica (port {other}) holds the master's keys, read {:.1?} after the first comparison",
                compared.elapsed()
            );
            break;
        }
        assert!(
            Instant::now() < converged,
            "the other replica (port {other}) does not hold the master's (port {master_now}) keys of slots after the promotion (slot {promoted_slot}): {:?} vs {:?}",
            theirs.map(|t| t.into_keys().collect::<Vec<_>>()),
            ours.map(|o| o.into_keys().collect::<Vec<_>>())
        );
        thread::sleep(Duration::from_millis(100));
    }
    // No key in clear, ever.
    assert!(watch.scanned > 0, "the watcher scanned nothing");
    assert!(
        watch.clear.is_empty(),
        "ticket key material in clear in Redis: {:?}",
        watch.clear
    );
    drop(proxy);
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}
