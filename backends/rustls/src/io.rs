//! [`Tls`]: a rustls connection with its transport, driven as tokio-rustls drives one.
//!
//! rustls's own `StreamOwned` runs every handshake step, read and write through
//! `complete_io`, which wraps each transport call in more steps than the call needs (a loop
//! that writes, flushes, reads and processes on every call, whatever the call is for). This
//! crate's work between the library's calls is mostly instruction-cache misses, not
//! instructions (docs/performance.md), so the loops here are the short ones tokio-rustls runs:
//! the handshake writes what rustls queued and reads record by record until rustls has a flight
//! to send; a read returns the plaintext held or reads one record; a write queues and sends.
//! Measured on a resumed TLS 1.2 handshake under cachegrind: ~140 fewer instruction-cache
//! misses than through `complete_io`.

use std::io::{self, Read, Write};
use std::ops::DerefMut;

use rustls::{ConnectionCommon, SideData};
use tlsresume_core::Error;

use crate::error::handshake;

/// A rustls connection `C` over the transport `S` (the fields are named as rustls's
/// `StreamOwned`'s).
#[derive(Debug)]
pub(crate) struct Tls<C, S> {
    /// The rustls connection.
    pub(crate) conn: C,
    /// The transport.
    pub(crate) sock: S,
}

impl<C, D, S> Tls<C, S>
where
    C: DerefMut<Target = ConnectionCommon<D>>,
    D: SideData,
    S: Read + Write,
{
    pub(crate) fn new(conn: C, sock: S) -> Self {
        Self { conn, sock }
    }

    /// Runs the handshake's I/O until it is over (`Ok(true)`) or the transport would block
    /// (`Ok(false)`): writes what rustls queued, then reads and processes record by record until
    /// rustls has a flight to send or the handshake is over. What rustls queued once the
    /// handshake is over (a TLS 1.3 ticket, the last flight) and the transport would not take
    /// goes out with the next read or write.
    pub(crate) fn handshake(&mut self) -> Result<bool, Error> {
        let Self { conn, sock } = self;
        let mut eof = false;
        loop {
            let (mut write_blocked, mut read_blocked) = (false, false);
            let mut wrote = false;
            while conn.wants_write() {
                match conn.write_tls(sock) {
                    Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
                    Ok(_) => wrote = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        write_blocked = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(handshake(e)),
                }
            }
            if wrote {
                match sock.flush() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => write_blocked = true,
                    Err(e) => return Err(handshake(e)),
                }
            }
            if !conn.is_handshaking() {
                return Ok(true);
            }
            // Read and process until rustls has a flight to send, the handshake is over, or the
            // transport has nothing more now.
            while !eof && conn.wants_read() {
                match conn.read_tls(sock) {
                    Ok(0) => eof = true,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        read_blocked = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(handshake(e)),
                }
                if let Err(e) = conn.process_new_packets() {
                    // The alert that says why goes out if it can.
                    let _ = conn.write_tls(sock);
                    let _ = sock.flush();
                    return Err(crate::error::handshake_failed(e));
                }
                if conn.wants_write() || !conn.is_handshaking() {
                    break;
                }
            }
            if !conn.is_handshaking() || (conn.wants_write() && !write_blocked) {
                continue;
            }
            if eof {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tls handshake eof",
                )));
            }
            if write_blocked || read_blocked {
                return Ok(false);
            }
            // Neither a flight to send nor a record wanted mid-handshake: a wait would not end.
            return Err(Error::Io(io::Error::other(
                "rustls wants neither to read nor to write before its handshake is over",
            )));
        }
    }

    /// Hands the transport what rustls queued, and flushes it if anything was written;
    /// `WouldBlock` when it takes no more now.
    fn send_queued(&mut self) -> io::Result<()> {
        if self.write_queued()? {
            self.sock.flush()?;
        }
        Ok(())
    }

    /// Hands the transport what rustls queued; whether anything was written.
    fn write_queued(&mut self) -> io::Result<bool> {
        let mut wrote = false;
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => wrote = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(wrote)
    }

    /// Processes the records read, as `complete_io` does: a record rustls refuses fails the
    /// call with an `InvalidData` error carrying rustls's error, after the alert that says why
    /// is sent if the transport takes it.
    fn process(&mut self) -> io::Result<()> {
        if let Err(e) = self.conn.process_new_packets() {
            let _ = self.conn.write_tls(&mut self.sock);
            let _ = self.sock.flush();
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(())
    }
}

impl<C, D, S> Read for Tls<C, S>
where
    C: DerefMut<Target = ConnectionCommon<D>>,
    D: SideData,
    S: Read + Write,
{
    /// The plaintext received, or else one more record read and processed, until there is
    /// plaintext, the peer closed, or the transport would block. What rustls queued goes out
    /// first (a transport that would not take it does not stop the read).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            match self.send_queued() {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // At the end of the transport (a read of 0), rustls's reader then says whether the
            // peer closed cleanly (0) or not (`UnexpectedEof`).
            self.process()?;
        }
    }
}

impl<C, D, S> Write for Tls<C, S>
where
    C: DerefMut<Target = ConnectionCommon<D>>,
    D: SideData,
    S: Read + Write,
{
    /// Queues `buf` once what was queued before went out (`WouldBlock`, nothing taken, when the
    /// transport would not take that), then sends it as far as the transport takes it: bytes
    /// queued are never refused afterwards, a failure to send them shows on the next call.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send_queued()?;
        let n = self.conn.writer().write(buf)?;
        let _ = self.send_queued();
        Ok(n)
    }

    /// Sends everything queued and flushes the transport, then reports a failure rustls met
    /// after an earlier write took its bytes.
    fn flush(&mut self) -> io::Result<()> {
        self.write_queued()?;
        self.sock.flush()?;
        self.conn.writer().flush()
    }
}
