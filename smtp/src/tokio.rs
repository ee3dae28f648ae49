//! The async (tokio) fronts of the sessions: the same dialogue as the blocking fronts
//! ([`crate::server::drive`], [`crate::session::open`]) over an `AsyncRead + AsyncWrite`.

use std::io;
use std::time::Instant;

use tlsresume_core::deadline::deadline_passed;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::SendError;
use crate::server::{ServerSession, Stop};
use crate::session::{ClientSession, Opened};

/// [`crate::server::drive`] over an async stream: runs `session` until it stops, the last
/// replies left for [`flush`]. Each read is bounded by the session's deadline that passes
/// first (tokio's timer: a runtime with it enabled).
pub async fn drive<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    session: &mut ServerSession,
    stream: &mut S,
) -> io::Result<Stop> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(stop) = session.stop() {
            return Ok(stop.clone());
        }
        flush(session, stream).await?;
        // The read is bounded by the deadline that passes first.
        let (kind, left) = session.time_left(Instant::now());
        let read = match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(read) => read,
            Err(_) => return Err(deadline_passed(&format!("SMTP {kind}"))),
        };
        session.received(read.map(|n| &buf[..n]))?;
    }
}

/// Writes the session's output to `stream` in one write.
pub async fn flush<S: AsyncWrite + Unpin + ?Sized>(
    session: &mut ServerSession,
    stream: &mut S,
) -> io::Result<()> {
    let out = session.take_output();
    if !out.is_empty() {
        stream.write_all(&out).await?;
        stream.flush().await?;
    }
    Ok(())
}

/// [`crate::session::open`] over an async stream.
pub async fn open<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    session: &mut ClientSession,
    stream: &mut S,
) -> Result<Opened, SendError> {
    let mut buf = [0u8; 1024];
    loop {
        let out = session.take_output();
        let written = async {
            stream.write_all(&out).await?;
            stream.flush().await
        };
        written.await.map_err(|e| session.write_failed(&e))?;
        let read = stream.read(&mut buf).await;
        if let Some(opened) = session.received(read.map(|n| &buf[..n]))? {
            return Ok(opened);
        }
    }
}
