//! The client's side of one connection: commands are queued and sent together at the point
//! the client has to hear the server, replies are read through a buffer, and every such point
//! is counted as a wait.

use std::io::{self, Read, Write};
use std::time::Instant;

use tlsresume_core::deadline::deadline_passed;

use crate::reply::{Assembler, Reply, ReplyError, MAX_LINE};
use crate::server::Deadlines;

/// A stream with a write queue and a read buffer.
pub(crate) struct Conn<S> {
    stream: S,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    /// Something was written since the last wait (or nothing was ever read).
    owes_wait: bool,
    waits: u32,
    deadlines: Deadlines,
}

/// Which reply is read, for its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Awaiting {
    /// The reply to a command (or the banner): [`Deadlines::command`].
    Reply,
    /// The reply to the message's end: [`Deadlines::message`].
    FinalReply,
}

impl<S: Read + Write> Conn<S> {
    pub(crate) fn new(stream: S, waits: u32) -> Self {
        Self {
            stream,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            owes_wait: true,
            waits,
            deadlines: Deadlines::default(),
        }
    }

    /// With these deadlines for whole replies.
    pub(crate) fn with_deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = deadlines;
        self
    }

    /// Queues a command line (CR LF added).
    pub(crate) fn queue(&mut self, line: &str) {
        self.wbuf.extend_from_slice(line.as_bytes());
        self.wbuf.extend_from_slice(b"\r\n");
    }

    /// Queues raw bytes (a message body).
    pub(crate) fn queue_bytes(&mut self, bytes: &[u8]) {
        self.wbuf.extend_from_slice(bytes);
    }

    /// Sends everything queued.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf)?;
            self.stream.flush()?;
            self.wbuf.clear();
            self.owes_wait = true;
        }
        Ok(())
    }

    /// How many times the client has stopped to hear the server: each read that follows a
    /// write (or opens the connection) is one wait; replies read after it, before the client
    /// sends again, arrive in the same wait.
    pub(crate) fn waits(&self) -> u32 {
        self.waits
    }

    /// Sends what is queued, then reads the next reply (the reply to a command).
    pub(crate) fn read_reply(&mut self) -> Result<Reply, ReplyError> {
        self.read_reply_for(Awaiting::Reply)
    }

    /// Sends what is queued, then reads the next reply, in the time its deadline gives it
    /// however the server paces its bytes (a read already waiting ends by the stream's own
    /// timeout).
    pub(crate) fn read_reply_for(&mut self, awaiting: Awaiting) -> Result<Reply, ReplyError> {
        let (limit, what) = match awaiting {
            Awaiting::Reply => (self.deadlines.command, "SMTP reply"),
            Awaiting::FinalReply => (self.deadlines.message, "SMTP final reply"),
        };
        let until = Deadline {
            at: Instant::now().checked_add(limit),
            what,
        };
        self.flush()?;
        if self.owes_wait {
            self.waits += 1;
            self.owes_wait = false;
        }
        let mut asm = Assembler::default();
        loop {
            let line = self.read_line(&asm, &until)?;
            if let Some(reply) = asm.push(&line)? {
                return Ok(reply);
            }
        }
    }

    fn read_line(&mut self, asm: &Assembler, until: &Deadline) -> Result<Vec<u8>, ReplyError> {
        loop {
            let pending = &self.rbuf[self.rpos..];
            if let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line = pending[..=end].to_vec();
                self.rpos += end + 1;
                if self.rpos == self.rbuf.len() {
                    self.rbuf.clear();
                    self.rpos = 0;
                }
                return Ok(line);
            }
            if pending.len() >= MAX_LINE {
                return Err(ReplyError::LineTooLong);
            }
            until.check()?;
            let mut chunk = [0u8; 4096];
            let n = match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(ReplyError::Closed {
                        lines_read: asm.lines_read(),
                    })
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ReplyError::read(e)),
            };
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The stream underneath.
    pub(crate) fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, for STARTTLS; `Err` with the count of bytes the server sent past its
    /// "ready to start TLS" reply, which must not be taken as part of the TLS session (STARTTLS
    /// response injection: a man in the middle's plaintext passed off as the server's).
    pub(crate) fn into_inner(self) -> Result<S, usize> {
        let extra = self.rbuf.len() - self.rpos;
        if extra > 0 {
            return Err(extra);
        }
        Ok(self.stream)
    }
}

/// When a reply must be complete.
struct Deadline {
    at: Option<Instant>,
    what: &'static str,
}

impl Deadline {
    fn check(&self) -> Result<(), ReplyError> {
        match self.at {
            Some(at) if Instant::now() >= at => Err(ReplyError::Io(deadline_passed(self.what))),
            _ => Ok(()),
        }
    }
}
