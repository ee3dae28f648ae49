//! `serve --async`: the server on tokio (`tlsresume::tokio::TlsAcceptor`).
//!
//! A connection is a task: it waits for the client's first bytes before any TLS state is made,
//! then for its handshake (both under `--handshake-timeout`), and SMTP over TLS runs on the
//! runtime throughout (the session is `tlsresume-smtp`'s state machine, driven by its tokio
//! front under the SMTP deadlines), with the same log line as the blocking server. `--http`'s
//! requests are answered on a thread of tokio's blocking pool over [`Bridge`], which waits for
//! each read and write on the runtime, once the client's first request has arrived.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use tlsresume::limits::PerAddress;
use tlsresume::tokio::TlsAcceptor;
use tlsresume::{Error, ServerParams, SessionInfo, TlsStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use super::{log_connection, log_refused_address, over_tls, stopped_why, Record, Shared};
use crate::cli::log_line;
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
    let mut tasks = tokio::task::JoinSet::new();
    let mut accepted = 0u64;
    while max_connections.is_none_or(|max| accepted < max) {
        // TLS from the first byte: no free place, no accept (the kernel's backlog holds them).
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break; // never closed
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
        // TLS from the first byte: a connection past its address's limit is closed.
        let from_address = match per_address.admit(peer.ip()) {
            Ok(place) => place,
            Err(refused) => {
                log_refused_address(&shared, peer, &refused, &per_address, false, None);
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        let acceptor = acceptor.clone();
        tasks.spawn(async move {
            // Dropped in reverse order: the address's place is free before the slot is.
            let _slot = slot;
            let _from_address = from_address;
            connection(shared, &acceptor, tcp, peer).await;
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// One connection, start to end; logs its line.
async fn connection(shared: Arc<Shared>, acceptor: &TlsAcceptor, tcp: TcpStream, peer: SocketAddr) {
    let fail = |rec: Record| log_connection(&shared, peer, &rec);
    let _ = tcp.set_nodelay(true);
    let local = match tcp.local_addr() {
        Ok(a) => a,
        Err(e) => {
            return fail(Record {
                problem: Some(format!("connection lost: {e}")),
                ..Record::default()
            })
        }
    };
    // Nothing of the TLS library is made until the client sends its ClientHello: a silent
    // connection costs its socket and this task, not the library's state (measured with
    // 10 000 such connections: OpenSSL ~49 kB each, GnuTLS ~20 kB, rustls ~10 kB).
    let started = tokio::time::Instant::now();
    let deadline = shared.handshake_timeout;
    let handshake = async {
        // A peek, not `readable()`: tokio takes an accepted socket as readable until a read
        // says otherwise.
        match tokio::time::timeout(deadline, tcp.peek(&mut [0u8; 1])).await {
            Ok(peeked) => drop(peeked.map_err(Error::Io)?),
            Err(_) => return Err(Error::Io(tlsresume::deadline::deadline_passed("handshake"))),
        }
        acceptor
            .accept(&ServerParams::new(peer, local), tcp)
            .timeout(deadline.saturating_sub(started.elapsed()))
            .await
    };
    let tls = match handshake.await {
        Ok(tls) => tls,
        Err(e) => {
            return fail(Record {
                problem: Some(format!("TLS error on connection: {e}")),
                ..Record::default()
            })
        }
    };
    // Boxed: the session's state (its read buffer among it) is allocated once the handshake
    // is over, not carried by every connection's task from its start.
    Box::pin(established(shared, tls, peer)).await;
}

/// An established connection: SMTP on the runtime, or HTTP on a blocking-pool thread; logs its
/// line.
async fn established(shared: Arc<Shared>, mut tls: Tls, peer: SocketAddr) {
    let fail = |rec: Record| log_connection(&shared, peer, &rec);
    let failed = |tls: &Tls, e: &io::Error| Record {
        info: Some(tls.info()),
        problem: Some(crate::cli::said(e)),
        ..Record::default()
    };
    let mut session = ServerSession::new(shared.session_config().tls(true));
    if !shared.http {
        // SMTP on the runtime throughout: the session is a state machine the tokio front drives.
        session.greet();
        let ended = smtp_tokio::drive(&mut session, &mut tls).await;
        // Logged before QUIT is answered, so a client's next connection comes after this line.
        fail(Record {
            info: Some(tls.info()),
            problem: stopped_why(&ended),
            ..Record::of_session(&mut session)
        });
        let flushed = within(shared.timeout, smtp_tokio::flush(&mut session, &mut tls)).await;
        if flushed.is_ok() && matches!(ended, Ok(Stop::Quit)) {
            let _ = within(shared.timeout, tls.shutdown()).await;
        }
        return;
    }
    // HTTP: the client's first bytes are waited for here, by the task, not by a thread; the
    // requests are then answered on a blocking-pool thread.
    let mut first = vec![0u8; 4096];
    match within(shared.timeout, tls.read(&mut first)).await {
        Ok(n) => first.truncate(n),
        Err(e) => return fail(failed(&tls, &e)),
    }
    let bridge = Bridge {
        tls,
        first,
        at: 0,
        runtime: Handle::current(),
        timeout: shared.timeout,
    };
    let session = tokio::task::spawn_blocking(move || {
        over_tls(&shared, Box::new(bridge), peer, session, None, false);
    });
    let _ = session.await;
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

/// Waits on the runtime for `f`, under the idle timeout `limit` (from a blocking-pool thread).
fn block<T>(
    runtime: &Handle,
    limit: Duration,
    f: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    runtime.block_on(within(limit, f))
}

/// A connection on tokio seen as a blocking TLS stream, for the sessions the blocking server
/// runs: each read and write waits on the runtime (from a blocking-pool thread), under the
/// idle `--timeout`; `first` is what the task read before handing the connection over.
pub(crate) struct Bridge {
    tls: Tls,
    first: Vec<u8>,
    at: usize,
    runtime: Handle,
    timeout: Duration,
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge").finish_non_exhaustive()
    }
}

impl Read for Bridge {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at < self.first.len() {
            let n = buf.len().min(self.first.len() - self.at);
            buf[..n].copy_from_slice(&self.first[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        block(&self.runtime, self.timeout, self.tls.read(buf))
    }
}

impl Write for Bridge {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        block(&self.runtime, self.timeout, self.tls.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        block(&self.runtime, self.timeout, self.tls.flush())
    }
}

impl TlsStream for Bridge {
    fn info(&self) -> SessionInfo {
        self.tls.info()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        block(&self.runtime, self.timeout, self.tls.shutdown())
    }

    /// The bridge itself.
    fn transport_dyn(&self) -> &dyn tlsresume::Transport {
        self
    }

    fn transport_dyn_mut(&mut self) -> &mut (dyn tlsresume::Transport + 'static) {
        self
    }
}
