//! The SMTP checks of `scan --starttls smtp`: the EHLO features, PIPECONNECT advertised, early
//! commands accepted on a second connection, and whether the EHLO response stays the same
//! between connections (an early-pipelining client's cached response is invalidated when it
//! changes).

use std::io::Write;
use std::net::TcpStream;

use serde_json::json;
use tlsresume::smtp::{read_reply_lines, EhloFeatures, EhloResponse};

use super::report::{Check, Verdict};
use super::Endpoint;

/// A plain connection with the step timeouts.
fn connect(endpoint: &Endpoint) -> Result<TcpStream, String> {
    let tcp = TcpStream::connect_timeout(&endpoint.peer, endpoint.timeout)
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_read_timeout(Some(endpoint.timeout));
    let _ = tcp.set_write_timeout(Some(endpoint.timeout));
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// One connection: the EHLO reply's lines; with `early`, EHLO is sent before the banner.
fn ehlo(endpoint: &Endpoint, early: bool) -> Result<Vec<String>, String> {
    let mut tcp = connect(endpoint)?;
    let ehlo = format!("EHLO {}\r\n", endpoint.ehlo);
    let send = |tcp: &mut TcpStream, what: &str| {
        tcp.write_all(what.as_bytes())
            .and_then(|()| tcp.flush())
            .map_err(|e| format!("sending {}: {e}", what.trim_end()))
    };
    if early {
        send(&mut tcp, &ehlo)?;
    }
    read_reply_lines(&mut tcp, "220").map_err(|e| format!("banner: {e}"))?;
    if !early {
        send(&mut tcp, &ehlo)?;
    }
    let lines = read_reply_lines(&mut tcp, "250").map_err(|e| format!("EHLO: {e}"))?;
    let _ = send(&mut tcp, "QUIT\r\n");
    let _ = read_reply_lines(&mut tcp, "221");
    Ok(lines)
}

/// The SMTP checks.
pub fn checks(endpoint: &Endpoint) -> Vec<Check> {
    let first = match ehlo(endpoint, false).and_then(|lines| {
        EhloResponse::parse(&lines)
            .map(|r| (lines, r))
            .map_err(|e| format!("EHLO reply: {e}"))
    }) {
        Ok(r) => r,
        Err(e) => return vec![Check::unknown("ehlo", "EHLO", e)],
    };
    let (lines, response) = first;
    let mut out = vec![Check::new(
        "ehlo",
        "EHLO features",
        Verdict::Info,
        json!(response.keywords),
        format!("{}: {}", response.host, response.keywords.join(" ")),
    )];
    let pipe_connect = response.features.contains(EhloFeatures::PIPECONNECT);
    let pipelining = response.features.contains(EhloFeatures::PIPELINING);
    let mut c = Check::new(
        "pipe_connect",
        "PIPECONNECT advertised",
        Verdict::of(pipe_connect && pipelining),
        json!(pipe_connect),
        if pipe_connect { "PIPECONNECT" } else { "" },
    );
    if !pipe_connect {
        c = c
            .because("not in the EHLO response (Exim: pipelining_connect_advertise_hosts)")
            .meaning(
                "clients wait for the banner and each reply: one round trip more per connection",
            );
    } else if !pipelining {
        c = c.because("PIPECONNECT without PIPELINING: clients do not pipeline early");
    }
    out.push(c);
    // The second connection: EHLO before the banner when the server allows it.
    let second = ehlo(endpoint, pipe_connect && pipelining);
    out.push(if pipe_connect && pipelining {
        match &second {
            Ok(_) => Check::new(
                "early_commands",
                "early commands accepted on a second connection",
                Verdict::Yes,
                json!(true),
                "EHLO sent before the banner was answered 250",
            ),
            Err(e) => Check::new(
                "early_commands",
                "early commands accepted on a second connection",
                Verdict::No,
                json!(false),
                "",
            )
            .because(format!("EHLO sent before the banner: {e}")),
        }
    } else {
        Check::new(
            "early_commands",
            "early commands accepted on a second connection",
            Verdict::No,
            json!(false),
            "",
        )
        .because("not tried: the server does not offer PIPECONNECT (and PIPELINING)")
    });
    out.push(match &second {
        Ok(again) if *again == lines => Check::new(
            "ehlo_stable",
            "EHLO response stable between connections",
            Verdict::Yes,
            json!(true),
            format!("{} lines, identical", lines.len()),
        ),
        Ok(again) => {
            let changed = lines.iter().zip(again).find(|(a, b)| a != b).map_or_else(
                || format!("{} lines, then {}", lines.len(), again.len()),
                |(a, b)| format!("'{a}' then '{b}'"),
            );
            Check::new(
                "ehlo_stable",
                "EHLO response stable between connections",
                Verdict::No,
                json!(false),
                "",
            )
            .because(format!("it changed: {changed}"))
            .meaning("an early-pipelining client's cached EHLO response is invalidated each time")
        }
        Err(e) => Check::unknown(
            "ehlo_stable",
            "EHLO response stable between connections",
            e.clone(),
        ),
    });
    out
}
