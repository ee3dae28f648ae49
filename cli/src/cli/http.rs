//! `serve --http`: each HTTP request on a TLS connection answered with a short text page saying
//! what the connection was, as `openssl s_server -www` and `gnutls-serv --http` do.
//!
//! HTTP/1.0 semantics: the connection stays open for another request only when the request
//! asks for it (`Connection: keep-alive`); the answer then says `Connection: keep-alive` and
//! carries `Content-Length`. Otherwise the server closes after the answer (with close_notify),
//! so a client such as curl given two URLs opens a second connection and resumes its session —
//! which the second page shows.
//!
//! The dialogue is [`HttpSession`], which does no I/O (bytes in, answers out); [`serve`] drives
//! it over a blocking stream, `serve --async` over a tokio one.

use std::io::{self, BufRead, Read, Write};

use tlsresume::{SessionInfo, TlsStream};

/// The longest request head read (request line and headers).
const MAX_HEAD: u64 = 16 * 1024;

/// The largest request body read (and discarded).
const MAX_BODY: u64 = 1024 * 1024;

/// One request's head: what the answer needs.
#[derive(Debug)]
struct Request {
    method: String,
    target: String,
    keep_alive: bool,
    body: u64,
}

/// How a connection's HTTP dialogue ended.
#[derive(Debug)]
pub struct Ended {
    /// Requests answered.
    pub requests: usize,
    /// `Ok` when the client closed (or asked to), the error otherwise.
    pub result: io::Result<()>,
}

/// Reads one request head; `Ok(None)` when the client closed before sending one.
fn read_request<R: BufRead>(conn: &mut R) -> io::Result<Option<Request>> {
    let mut limited = conn.take(MAX_HEAD);
    let mut line = String::new();
    // Tolerate empty lines before the request line (RFC 9112 §2.2).
    loop {
        line.clear();
        if limited.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed request line '{}'", line.trim()),
        ));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unsupported protocol '{version}'"),
        ));
    }
    let mut req = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        keep_alive: false,
        body: 0,
    };
    loop {
        line.clear();
        if limited.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "request head cut short",
            ));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("malformed header '{header}'"),
            ));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            req.keep_alive = value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("keep-alive"));
        } else if name.eq_ignore_ascii_case("content-length") {
            req.body = value
                .parse()
                .ok()
                .filter(|n| *n <= MAX_BODY)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad or too large Content-Length '{value}'"),
                    )
                })?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "chunked request bodies are not supported",
            ));
        }
    }
    Ok(Some(req))
}

/// The page for one request: what this connection was.
pub fn page(info: &SessionInfo, peer: &str, backend: &str, n: usize, request: &str) -> String {
    let names: Vec<&str> = info.resumption.iter_names().map(|(n, _)| n).collect();
    let mut p = String::new();
    p.push_str(&format!("tlsresume serve --http ({backend} backend)\n\n"));
    p.push_str(&format!("request {n} on this connection: {request}\n"));
    p.push_str(&format!(
        "connection: H={peer} X={} CV={}\n",
        info.exim_x(),
        info.verification.exim_cv()
    ));
    p.push_str(&format!(
        "resumed: {}\n",
        if info.resumed { "yes" } else { "no" }
    ));
    p.push_str(&format!(
        "resumption: 0x{:02X} ({}); bits: {}\n",
        info.resumption.bits(),
        info.resumption.describe(),
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(" | ")
        }
    ));
    p.push_str(&format!(
        "protocol: {}; Exim cipher: {}; IANA: {}\n",
        info.protocol, info.cipher.exim, info.cipher.iana
    ));
    p.push_str(&format!(
        "client certificate verification: {} (CV={})\n",
        info.verification,
        info.verification.exim_cv()
    ));
    p.push_str(&format!("OCSP: {}\n", info.ocsp));
    if let Some(sni) = &info.sni {
        p.push_str(&format!("SNI: {sni}\n"));
    }
    if let Some(hint) = info.ticket_lifetime {
        p.push_str(&format!("ticket lifetime hint: {} s\n", hint.as_secs()));
    }
    p
}

/// Appends one answer to `out`.
fn answer(out: &mut Vec<u8>, status: &str, body: &str, head_only: bool, keep_alive: bool) {
    out.extend_from_slice(
        format!(
            "HTTP/1.0 {status}\r\nServer: tlsresume\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
            body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        )
        .as_bytes(),
    );
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
}

/// How much of a connection's input a request head takes, once it is all there: the bytes up
/// to and including the empty line that ends it (empty lines before the request line
/// tolerated); `None` while it is not all there.
fn head_length(input: &[u8]) -> Option<usize> {
    let mut at = 0;
    let mut started = false;
    while let Some(end) = input[at..].iter().position(|&b| b == b'\n') {
        let line = &input[at..at + end];
        at += end + 1;
        let blank = line.iter().all(|b| b.is_ascii_whitespace());
        if blank && started {
            return Some(at);
        }
        started |= !blank;
    }
    None
}

/// The HTTP dialogue of one connection, without I/O: [`received`](Self::received) takes what
/// the client sent, [`take_output`](Self::take_output) gives the answers to write, and
/// [`end`](Self::end) says when the connection is to be closed (with close_notify).
#[derive(Debug)]
pub struct HttpSession {
    peer: String,
    backend: &'static str,
    /// Received and not yet taken by a request head.
    input: Vec<u8>,
    /// The request whose body is being dropped, answered once it is.
    pending: Option<Request>,
    /// Body bytes still to drop.
    body_left: u64,
    requests: usize,
    output: Vec<u8>,
    ended: Option<io::Result<()>>,
}

impl HttpSession {
    /// A connection from `peer` (as shown on the pages) served by `backend`.
    pub fn new(peer: &str, backend: &'static str) -> Self {
        Self {
            peer: peer.to_owned(),
            backend,
            input: Vec::new(),
            pending: None,
            body_left: 0,
            requests: 0,
            output: Vec::new(),
            ended: None,
        }
    }

    /// Takes the result of a read from the client (`Ok` of no bytes: it closed); answers every
    /// request now complete. `info` is asked for the connection's state when a page is made.
    pub fn received(&mut self, read: io::Result<&[u8]>, info: &dyn Fn() -> SessionInfo) {
        if self.ended.is_some() {
            return;
        }
        match read {
            Err(e) => return self.ended = Some(Err(e)),
            Ok([]) => {
                let cut = if self.pending.is_some() {
                    Some("request body cut short")
                } else if self.input.iter().any(|b| !b.is_ascii_whitespace()) {
                    Some("request head cut short")
                } else {
                    None
                };
                self.ended = Some(match cut {
                    Some(what) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, what)),
                    None => Ok(()),
                });
                return;
            }
            Ok(bytes) => self.input.extend_from_slice(bytes),
        }
        while self.ended.is_none() {
            if self.pending.is_some() {
                let dropped = self.input.len().min(self.body_left as usize);
                self.input.drain(..dropped);
                self.body_left -= dropped as u64;
                if self.body_left > 0 {
                    return;
                }
                if let Some(req) = self.pending.take() {
                    self.answer(&req, info);
                }
                continue;
            }
            let Some(length) = head_length(&self.input).filter(|n| *n as u64 <= MAX_HEAD) else {
                if self.input.len() as u64 >= MAX_HEAD {
                    self.refuse(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("request head longer than {MAX_HEAD} bytes"),
                    ));
                }
                return;
            };
            let head: Vec<u8> = self.input.drain(..length).collect();
            match read_request(&mut head.as_slice()) {
                Ok(Some(req)) => {
                    self.body_left = req.body;
                    self.pending = Some(req);
                }
                Ok(None) => return,
                Err(e) => self.refuse(e),
            }
        }
    }

    /// Answers 400 and ends with `e`.
    fn refuse(&mut self, e: io::Error) {
        answer(
            &mut self.output,
            "400 Bad Request",
            &format!("{e}\n"),
            false,
            false,
        );
        self.ended = Some(Err(e));
    }

    /// Answers a request whose body has been dropped.
    fn answer(&mut self, req: &Request, info: &dyn Fn() -> SessionInfo) {
        self.requests += 1;
        let head_only = req.method == "HEAD";
        if req.method == "GET" || head_only {
            let body = page(
                &info(),
                &self.peer,
                self.backend,
                self.requests,
                &format!("{} {}", req.method, req.target),
            );
            answer(&mut self.output, "200 OK", &body, head_only, req.keep_alive);
        } else {
            answer(
                &mut self.output,
                "501 Not Implemented",
                "only GET and HEAD are answered\n",
                false,
                req.keep_alive,
            );
        }
        if !req.keep_alive {
            self.ended = Some(Ok(()));
        }
    }

    /// The answers to write now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// `Some` once the connection is to be closed (after the output is written): `Ok` when
    /// the client closed or asked to, the error otherwise.
    pub fn end(&mut self) -> Option<io::Result<()>> {
        self.ended.take()
    }

    /// Requests answered.
    pub fn requests(&self) -> usize {
        self.requests
    }
}

/// Serves requests on `tls` until the client closes or asks to, then sends close_notify.
pub fn serve(
    mut tls: Box<dyn TlsStream>,
    peer: &str,
    backend: &'static str,
) -> (Ended, SessionInfo) {
    let mut http = HttpSession::new(peer, backend);
    let mut buf = [0u8; 4096];
    let result = loop {
        let read = match tls.read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            read => read,
        };
        http.received(read.map(|n| &buf[..n]), &|| tls.info());
        let out = http.take_output();
        if !out.is_empty() {
            if let Err(e) = tls.write_all(&out).and_then(|()| tls.flush()) {
                break Err(e);
            }
        }
        if let Some(end) = http.end() {
            break end;
        }
    };
    let info = tls.info();
    let _ = tls.shutdown();
    (
        Ended {
            requests: http.requests(),
            result,
        },
        info,
    )
}
