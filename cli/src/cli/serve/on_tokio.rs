//! `serve --async`: the server on tokio (`tlsresume::tokio::TlsAcceptor`).
//!
//! A connection is a task, on the runtime throughout: clear SMTP (`--plain`, and `--starttls
//! smtp` up to STARTTLS) and SMTP over TLS are `tlsresume-smtp`'s state machine driven by its
//! tokio front under the SMTP deadlines, `--http` is [`HttpSession`] driven here (a
//! keep-alive connection between requests is this task waiting on a read, not a thread). With
//! TLS, nothing of the library is made until the client sends its first bytes, and the
//! handshake runs under `--handshake-timeout`. The log line is the blocking server's.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use tlsresume::limits::PerAddress;
use tlsresume::smtp::fastopen::{self, Accepted};
use tlsresume::tokio::TlsAcceptor;
use tlsresume::{Error, ServerParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::{log_connection, log_refused_address, smtp_session, stopped_why, Record, Shared};
use crate::cli::http::HttpSession;
use crate::cli::smtp::{input_within_async, serve_plain_until_starttls_async, SYNC_ERROR};
use crate::cli::{log_line, said, Wire};
use tlsresume::smtp::server::Stop;
use tlsresume::smtp::tokio as smtp_tokio;
use tlsresume::smtp::ServerSession;

/// An established connection on tokio.
type Tls = tlsresume::tokio::TlsStream<TcpStream>;

/// Serves on a multi-thread runtime (a worker per core) until `max_connections` have been
/// accepted and have ended.
pub(super) fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    max_connections: Option<u64>,
    max_concurrent: usize,
    per_address: Arc<PerAddress>,
) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(
        listener,
        shared,
        max_connections,
        max_concurrent,
        per_address,
    ))
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    max_connections: Option<u64>,
    max_concurrent: usize,
    per_address: Arc<PerAddress>,
) -> Result<(), Error> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let acceptor =
        TlsAcceptor::new(Arc::clone(&shared.server)).handshake_timeout(shared.handshake_timeout);
    let slots = Arc::new(Semaphore::new(max_concurrent.min(Semaphore::MAX_PERMITS)));
    let clear_smtp = matches!(shared.wire, Wire::Starttls | Wire::Plain) && !shared.http;
    let mut tasks = tokio::task::JoinSet::new();
    let mut accepted = 0u64;
    while max_connections.is_none_or(|max| accepted < max) {
        // TLS from the first byte: no free place, no accept (the kernel's backlog holds them).
        let waited = if clear_smtp {
            None
        } else {
            match Arc::clone(&slots).acquire_owned().await {
                Ok(slot) => Some(slot),
                Err(_) => break, // never closed
            }
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                log_line(&format!("accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        accepted += 1;
        // Asked of the kernel before anything is read from the connection.
        let (tcp, fast_open) = match fast_open(&shared, tcp) {
            Ok(accepted) => accepted,
            Err(e) => {
                log_line(&format!("accept failed: {e}"));
                continue;
            }
        };
        let Some(slot) = waited.or_else(|| Arc::clone(&slots).try_acquire_owned().ok()) else {
            // Clear SMTP: say so and close, as an MTA past its connection limit does.
            let problem =
                format!("refused with 421: {max_concurrent} connections already served at once");
            let reply = format!(
                "421 {} too many connections ({max_concurrent} at once), try again later\r\n",
                shared.hostname
            );
            log_connection(
                &shared,
                peer,
                &Record {
                    problem: Some(problem),
                    fast_open,
                    ..Record::default()
                },
            );
            tasks.spawn(refuse(tcp, reply));
            continue;
        };
        let from_address = match per_address.admit(peer.ip()) {
            Ok(place) => place,
            Err(refused) => {
                log_refused_address(&shared, peer, &refused, &per_address, clear_smtp, fast_open);
                if clear_smtp {
                    tasks.spawn(refuse(
                        tcp,
                        format!(
                            "421 {} too many connections from your address, try again later\r\n",
                            shared.hostname
                        ),
                    ));
                }
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        let acceptor = acceptor.clone();
        tasks.spawn(async move {
            // Dropped in reverse order: the address's place is free before the slot is.
            let _slot = slot;
            let _from_address = from_address;
            connection(shared, &acceptor, tcp, peer, fast_open).await;
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// `--fastopen`: whether the connection came through Fast Open, asked of the kernel (on the
/// standard socket, which is the same descriptor); `None` without the option.
fn fast_open(shared: &Shared, tcp: TcpStream) -> io::Result<(TcpStream, Option<Accepted>)> {
    if !shared.fastopen {
        return Ok((tcp, None));
    }
    let std = tcp.into_std()?;
    let accepted = fastopen::accepted(&std).unwrap_or(Accepted::Normal);
    Ok((TcpStream::from_std(std)?, Some(accepted)))
}

/// Writes `reply` (a 421) and closes, within a few seconds.
async fn refuse(mut tcp: TcpStream, reply: String) {
    let _ = within(Duration::from_secs(5), tcp.write_all(reply.as_bytes())).await;
}

/// One connection, start to end; logs its line.
///
/// With TLS from the first byte, nothing but the wait for that byte lives in the connection's
/// task until the client sends it: the rest (the SMTP session, the handshake, the dialogue)
/// is boxed once it is needed, so a silent connection costs its socket and a small task, not
/// the largest state any later step needs (5.4 kB a task when it was all inline).
async fn connection(
    shared: Arc<Shared>,
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    fast_open: Option<Accepted>,
) {
    let mut waited_from = None;
    if shared.wire == Wire::TlsOnConnect {
        waited_from = Some(tokio::time::Instant::now());
        // A peek, not `readable()`: tokio takes an accepted socket as readable until a read
        // says otherwise.
        let waited = tokio::time::timeout(shared.handshake_timeout, tcp.peek(&mut [0u8; 1])).await;
        let problem = match waited {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(Error::Io(e)),
            Err(_) => Some(Error::Io(tlsresume::deadline::deadline_passed("handshake"))),
        };
        if let Some(e) = problem {
            let problem = Some(format!("TLS error on connection: {e}"));
            return log_connection(
                &shared,
                peer,
                &Record {
                    problem,
                    fast_open,
                    ..Record::default()
                },
            );
        }
    }
    Box::pin(talk(shared, acceptor, tcp, peer, fast_open, waited_from)).await;
}

/// A connection past its wait for the first byte (with TLS from the first byte) or from its
/// start (SMTP in clear first): the SMTP session, the handshake, then [`established`]; logs
/// its line. `waited_from`: when the wait for the first byte began (the handshake's deadline
/// counts from it); `None` after STARTTLS, where it counts from the handshake's start.
async fn talk(
    shared: Arc<Shared>,
    acceptor: &TlsAcceptor,
    mut tcp: TcpStream,
    peer: SocketAddr,
    fast_open: Option<Accepted>,
    waited_from: Option<tokio::time::Instant>,
) {
    let log = |rec: Record| log_connection(&shared, peer, &Record { fast_open, ..rec });
    let fail = |problem: String| {
        log(Record {
            problem: Some(problem),
            ..Record::default()
        })
    };
    let _ = tcp.set_nodelay(true);
    let local = match tcp.local_addr() {
        Ok(a) => a,
        Err(e) => return fail(format!("connection lost: {e}")),
    };
    let (mut session, offer) = smtp_session(&shared, peer);
    if shared.wire != Wire::TlsOnConnect {
        // Before the banner: a client that talks now uses early pipelining if it was offered,
        // and is an early talker to be dropped if not.
        let early = input_within_async(&tcp, shared.pre_banner_wait).await;
        session.set_early(early);
        if early && !offer {
            let _ = within(shared.timeout, tcp.write_all(SYNC_ERROR.as_bytes())).await;
            let _ = tcp.shutdown().await;
            return fail(
                "rejected: SMTP synchronization error (input sent without waiting for the banner)"
                    .into(),
            );
        }
    }
    match shared.wire {
        Wire::Plain => {
            session.greet();
            let ended = smtp_tokio::drive(&mut session, &mut tcp).await;
            log(Record {
                problem: stopped_why(&ended),
                ..Record::of_session(&mut session)
            });
            let _ = within(shared.timeout, smtp_tokio::flush(&mut session, &mut tcp)).await;
            return;
        }
        Wire::Starttls => match serve_plain_until_starttls_async(&mut session, &mut tcp).await {
            Ok(true) => session.tls_started(),
            Ok(false) => return fail("QUIT before STARTTLS, no TLS".into()),
            Err(e) => return fail(format!("SMTP error before STARTTLS: {}", said(&e))),
        },
        Wire::TlsOnConnect => {}
    }
    // Nothing of the TLS library is made until the client sends its ClientHello (waited for
    // in `connection` with TLS from the first byte): a silent connection costs its socket and
    // a small task, not the library's state (measured with 10 000 such connections: OpenSSL
    // ~49 kB each, GnuTLS ~20 kB, rustls ~10 kB). After STARTTLS the ClientHello follows the
    // 220 at once.
    let started = waited_from.unwrap_or_else(tokio::time::Instant::now);
    let deadline = shared.handshake_timeout;
    let handshake = acceptor
        .accept(&ServerParams::new(peer, local), tcp)
        .timeout(deadline.saturating_sub(started.elapsed()));
    let tls = match handshake.await {
        Ok(tls) => tls,
        Err(e) => return fail(format!("TLS error on connection: {e}")),
    };
    let banner = shared.wire == Wire::TlsOnConnect;
    if banner && !shared.http {
        // Commands already sent over the new TLS session, before its banner.
        session.set_early(input_within_async(tls.get_ref(), Duration::ZERO).await);
    }
    // Boxed: the session's state (its read buffer among it) is allocated once the handshake
    // is over, not carried by every connection's task from its start.
    Box::pin(established(shared, tls, peer, session, fast_open, banner)).await;
}

/// An established connection: SMTP (its banner first when `banner`) or HTTP, on the runtime
/// throughout; logs its line.
async fn established(
    shared: Arc<Shared>,
    mut tls: Tls,
    peer: SocketAddr,
    mut session: ServerSession,
    fast_open: Option<Accepted>,
    banner: bool,
) {
    let log = |rec: Record| log_connection(&shared, peer, &Record { fast_open, ..rec });
    if shared.http {
        let (result, requests) = http(&shared, &mut tls, peer).await;
        return log(Record {
            info: Some(tls.info().clone()),
            problem: result.err().map(|e| said(&e)),
            requests: Some(requests),
            ..Record::default()
        });
    }
    if banner {
        session.greet();
    }
    let ended = smtp_tokio::drive(&mut session, &mut tls).await;
    // Logged before QUIT is answered, so a client's next connection comes after this line.
    log(Record {
        info: Some(tls.info().clone()),
        problem: stopped_why(&ended),
        ..Record::of_session(&mut session)
    });
    let flushed = within(shared.timeout, smtp_tokio::flush(&mut session, &mut tls)).await;
    if flushed.is_ok() && matches!(ended, Ok(Stop::Quit)) {
        let _ = within(shared.timeout, tls.shutdown()).await;
    }
}

/// `--http` on the runtime: the requests of one connection, kept alive between them by this
/// task alone (no thread waits for the next request); then close_notify. How it ended and
/// the requests answered.
async fn http(shared: &Shared, tls: &mut Tls, peer: SocketAddr) -> (io::Result<()>, usize) {
    let shown = format!("[{}]:{}", peer.ip(), peer.port());
    let mut session = HttpSession::new(&shown, shared.backend.name());
    let mut buf = vec![0u8; 4096];
    let result = loop {
        let read = within(shared.timeout, tls.read(&mut buf)).await;
        session.received(read.map(|n| &buf[..n]), &|| tls.info().clone());
        let out = session.take_output();
        if !out.is_empty() {
            let written = async {
                tls.write_all(&out).await?;
                tls.flush().await
            };
            if let Err(e) = within(shared.timeout, written).await {
                break Err(e);
            }
        }
        if let Some(end) = session.end() {
            break end;
        }
    };
    let _ = within(shared.timeout, tls.shutdown()).await;
    (result, session.requests())
}

/// `f`, failing with the idle timeout's error when it takes longer than `limit`.
async fn within<T>(
    limit: Duration,
    f: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}
