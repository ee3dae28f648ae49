//! Each backend's client (OpenSSL, GnuTLS, rustls, as an MTA built on tlsresume would use
//! them) makes three connections sharing one session cache: whether the third resumes, and
//! what changes on a resumed connection (Exim's cipher string, certificate verification, the
//! OCSP staple).

use std::sync::Arc;

use serde_json::{json, Value};
use tlsresume::{
    BackendKind, ClientParams, ClientSettings, MemoryStore, NoOffer, OcspMode, ProtocolVersion,
    Resumption, ResumptionPolicy, SessionInfo, TlsStream, VerifyMode, Versions,
};

use super::report::{Check, Verdict};
use super::Endpoint;

/// How many connections each client makes.
pub const CONNECTIONS: usize = 3;

/// One client's connections.
#[derive(Debug)]
pub struct Run {
    /// The backend.
    pub kind: BackendKind,
    /// Each connection's report, or why it failed.
    pub connections: Vec<Result<SessionInfo, String>>,
}

/// Runs every compiled-in client `CONNECTIONS` times with `version` on `endpoint`.
pub fn run(
    endpoint: &Endpoint,
    roots: &[Vec<u8>],
    policy: &ResumptionPolicy,
    version: ProtocolVersion,
) -> Vec<Run> {
    tlsresume::backends::available()
        .iter()
        .map(|&kind| Run {
            kind,
            connections: connections(endpoint, roots, policy, version, kind),
        })
        .collect()
}

fn connections(
    endpoint: &Endpoint,
    roots: &[Vec<u8>],
    policy: &ResumptionPolicy,
    version: ProtocolVersion,
    kind: BackendKind,
) -> Vec<Result<SessionInfo, String>> {
    let mut settings = ClientSettings::new(roots.to_vec());
    settings.resumption = policy.clone();
    settings.verify = VerifyMode::Try;
    settings.ocsp = OcspMode::Request;
    settings.versions = Versions::only(version);
    settings.store = Arc::new(MemoryStore::new(8));
    let client = match tlsresume::backends::client(kind, settings) {
        Ok(c) => c,
        Err(e) => return vec![Err(e.to_string())],
    };
    (0..CONNECTIONS)
        .map(|_| {
            let (tcp, lb_name) = endpoint.tcp_with_name()?;
            let mut params = ClientParams::new(endpoint.server_name.clone(), endpoint.peer);
            params.lb_name = lb_name;
            let mut tls = client
                .connect(Box::new(tcp), &params)
                .map_err(|e| format!("TLS: {e}"))?;
            endpoint.after_handshake(tls.as_mut());
            let info = tls.info();
            let _ = tls.shutdown();
            Ok(info)
        })
        .collect()
}

/// What a connection was: `resumed`, `full`, `failed`.
fn word(c: &Result<SessionInfo, String>) -> &'static str {
    match c {
        Ok(i) if i.resumed => "resumed",
        Ok(_) => "full",
        Err(_) => "failed",
    }
}

/// Why the third connection of `run` did not resume.
fn why_not_third(run: &Run, tls13: bool) -> String {
    let c = &run.connections;
    match (c.get(1), c.get(2)) {
        (_, Some(Err(e))) => format!("it failed: {e}"),
        (Some(Ok(second)), Some(Ok(third))) => {
            if second.resumed && tls13 && !second.resumption.contains(Resumption::SERVER_TICKET) {
                "this client uses a TLS 1.3 ticket once and the resumed second connection got no \
                 new one"
                    .into()
            } else if third.no_offer == Some(NoOffer::Missing)
                && c.first().is_some_and(|f| {
                    f.as_ref()
                        .is_ok_and(|f| !f.resumption.contains(Resumption::SERVER_TICKET))
                })
            {
                "nothing was stored: the server issued no ticket and this client does not resume \
                 by session ID"
                    .into()
            } else if third.resumption.contains(Resumption::CLIENT_SUGGESTED) {
                "the server refused the offered session".into()
            } else {
                third
                    .no_offer
                    .map_or("nothing was offered", |n| n.describe())
                    .to_owned()
            }
        }
        _ => "an earlier connection failed".into(),
    }
}

/// The third-connection check over every client.
pub fn third_connection(runs: &[Run], version: ProtocolVersion) -> Check {
    const LABEL: &str = "third connection of each client";
    let tls13 = version == ProtocolVersion::Tls13;
    let mut value = serde_json::Map::new();
    let mut evidence = Vec::new();
    let mut reasons: Vec<(Vec<&str>, String)> = Vec::new();
    for run in runs {
        let words: Vec<&str> = run.connections.iter().map(word).collect();
        let third = run
            .connections
            .get(2)
            .is_some_and(|c| c.as_ref().is_ok_and(|i| i.resumed));
        value.insert(
            run.kind.name().to_owned(),
            json!({"resumed": third, "connections": words}),
        );
        evidence.push(format!("{} {}", run.kind.name(), words.join(",")));
        if !third {
            let why = why_not_third(run, tls13);
            match reasons.iter_mut().find(|(_, w)| *w == why) {
                Some((names, _)) => names.push(run.kind.name()),
                None => reasons.push((vec![run.kind.name()], why)),
            }
        }
    }
    let reasons: Vec<String> = reasons
        .into_iter()
        .map(|(names, why)| format!("{}: {why}", names.join(", ")))
        .collect();
    let all = reasons.is_empty();
    let c = Check::new(
        "third_connection",
        LABEL,
        Verdict::of(all),
        Value::Object(value),
        evidence.join("; "),
    );
    if all {
        c
    } else {
        c.because(reasons.join("; ")).meaning(
            "an MTA on those libraries makes a full handshake on such connections where it \
             could resume",
        )
    }
}

/// What changes from the full to the resumed connection, per client.
pub fn on_resumption(runs: &[Run]) -> Check {
    const LABEL: &str = "what changes on resumption";
    let mut value = serde_json::Map::new();
    let mut changes = Vec::new();
    let mut meanings = Vec::new();
    for run in runs {
        let full = run.connections.iter().flatten().find(|i| !i.resumed);
        let resumed = run.connections.iter().flatten().find(|i| i.resumed);
        let (Some(full), Some(resumed)) = (full, resumed) else {
            continue;
        };
        value.insert(
            run.kind.name().to_owned(),
            json!({
                "x_full": full.exim_x(), "x_resumed": resumed.exim_x(),
                "cv_full": full.verification.exim_cv(), "cv_resumed": resumed.verification.exim_cv(),
                "ocsp_full": full.ocsp.code(), "ocsp_resumed": resumed.ocsp.code(),
            }),
        );
        let mut what = Vec::new();
        if full.cipher.exim != resumed.cipher.exim {
            what.push(format!("X={} -> {}", full.cipher.exim, resumed.exim_x()));
        }
        if full.verification != resumed.verification {
            what.push(format!(
                "CV={} -> {}",
                full.verification.exim_cv(),
                resumed.verification.exim_cv()
            ));
        }
        if full.ocsp != resumed.ocsp {
            what.push(format!(
                "OCSP={} -> {}",
                full.ocsp.code(),
                resumed.ocsp.code()
            ));
            if full.ocsp == tlsresume::OcspStatus::Verified {
                meanings.push(format!(
                    "{}: no verified staple on a resumed connection; a client requiring OCSP \
                     (hosts_require_ocsp) must keep the full handshake's result or not resume",
                    run.kind.name()
                ));
            }
        }
        if !what.is_empty() {
            changes.push(format!("{} {}", run.kind.name(), what.join(" ")));
        }
    }
    if value.is_empty() {
        return Check::unknown("on_resumption", LABEL, "no client resumed");
    }
    let evidence = if changes.is_empty() {
        "nothing (cipher string, verification and OCSP alike)".to_owned()
    } else {
        changes.join("; ")
    };
    let c = Check::new(
        "on_resumption",
        LABEL,
        Verdict::Info,
        Value::Object(value),
        evidence,
    );
    if meanings.is_empty() {
        c
    } else {
        c.meaning(meanings.join("; "))
    }
}

/// Reads what the server sends after the handshake on a TLS-on-connect connection without a
/// protocol: tickets arrive meanwhile.
pub fn drain(tls: &mut dyn TlsStream) {
    let mut buf = [0u8; 4096];
    let _ = tls.read(&mut buf);
}
