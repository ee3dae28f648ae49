//! `serve --http`: each HTTP request on a TLS connection answered with a short text page saying
//! what the connection was, as `openssl s_server -www` and `gnutls-serv --http` do.
//!
//! HTTP/1.0 semantics: the connection stays open for another request only when the request
//! asks for it (`Connection: keep-alive`); the answer then says `Connection: keep-alive` and
//! carries `Content-Length`. Otherwise the server closes after the answer (with close_notify),
//! so a client such as curl given two URLs opens a second connection and resumes its session —
//! which the second page shows.

use std::io::{self, BufRead, BufReader, Read};

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

/// Writes one answer.
fn answer(
    out: &mut dyn TlsStream,
    status: &str,
    body: &str,
    head_only: bool,
    keep_alive: bool,
) -> io::Result<()> {
    let mut text = format!(
        "HTTP/1.0 {status}\r\nServer: tlsresume\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    if !head_only {
        text.push_str(body);
    }
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Serves requests on `tls` until the client closes or asks to, then sends close_notify.
pub fn serve(tls: Box<dyn TlsStream>, peer: &str, backend: &str) -> (Ended, SessionInfo) {
    let mut conn = BufReader::new(tls);
    let mut requests = 0;
    let result = loop {
        let req = match read_request(&mut conn) {
            Ok(Some(req)) => req,
            Ok(None) => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let _ = answer(
                    conn.get_mut().as_mut(),
                    "400 Bad Request",
                    &format!("{e}\n"),
                    false,
                    false,
                );
                break Err(e);
            }
            Err(e) => break Err(e),
        };
        if req.body > 0 {
            if let Err(e) = io::copy(&mut (&mut conn).take(req.body), &mut io::sink()) {
                break Err(e);
            }
        }
        requests += 1;
        let info = conn.get_ref().info();
        let head_only = req.method == "HEAD";
        let sent = if req.method == "GET" || head_only {
            let body = page(
                &info,
                peer,
                backend,
                requests,
                &format!("{} {}", req.method, req.target),
            );
            answer(
                conn.get_mut().as_mut(),
                "200 OK",
                &body,
                head_only,
                req.keep_alive,
            )
        } else {
            answer(
                conn.get_mut().as_mut(),
                "501 Not Implemented",
                "only GET and HEAD are answered\n",
                false,
                req.keep_alive,
            )
        };
        if let Err(e) = sent {
            break Err(e);
        }
        if !req.keep_alive {
            break Ok(());
        }
    };
    let info = conn.get_ref().info();
    let _ = conn.get_mut().shutdown();
    (Ended { requests, result }, info)
}
