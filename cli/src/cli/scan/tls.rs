//! The per-version checks read with OpenSSL's session APIs and off the wire
//! (`tlsresume_openssl::inspect`): tickets and session IDs offered, lifetime hint, tickets per
//! handshake, `max_early_data`, resumption with a ticket and with an ID, re-issue on
//! resumption, a TLS 1.3 ticket offered twice, the ticket key name, and whether a ticket of
//! one address resumes on another.

use serde_json::json;
use tlsresume::ProtocolVersion;

use super::report::{Check, Verdict};
use super::Endpoint;

#[cfg(feature = "openssl")]
use tlsresume::openssl::inspect::{HeldSession, Inspection, Inspector, Request};

/// What the OpenSSL connections of one version showed on one address.
#[derive(Debug)]
pub struct Observed {
    /// A full handshake asking for tickets.
    pub full: Result<Inspection, String>,
    /// The first ticket of `full` offered.
    pub resumed: Option<Result<Inspection, String>>,
    /// TLS 1.3: the same first ticket offered once more.
    pub reused: Option<Result<Inspection, String>>,
    /// TLS 1.2: a full handshake asking for no ticket (session IDs only), and its session
    /// offered.
    pub id_full: Option<Result<Inspection, String>>,
    pub id_resumed: Option<Result<Inspection, String>>,
    /// Another full handshake, when fewer than two tickets were seen otherwise (a key name is
    /// told by the same prefix on tickets of separate handshakes).
    pub again: Option<Result<Inspection, String>>,
    /// The least wait for TLS 1.3 tickets after each handshake.
    pub wait: std::time::Duration,
}

#[cfg(not(feature = "openssl"))]
mod absent {
    //! Without the OpenSSL backend there is no wire-level reader.
    /// Stands for the OpenSSL inspection.
    #[derive(Clone, Debug)]
    pub struct Inspection;
}
#[cfg(not(feature = "openssl"))]
use absent::Inspection;

#[cfg(feature = "openssl")]
impl Endpoint {
    /// What an inspection of this endpoint asks: its server name, tickets or not, the session
    /// to offer, the wait for TLS 1.3 tickets.
    pub fn request<'a>(&'a self, tickets: bool, offer: Option<&'a HeldSession>) -> Request<'a> {
        Request {
            server_name: &self.server_name,
            tickets,
            offer,
            wait: self.wait,
        }
    }
}

/// Runs the OpenSSL connections of `version` on `endpoint`.
#[cfg(feature = "openssl")]
pub fn observe(endpoint: &Endpoint, version: ProtocolVersion) -> Observed {
    let inspector = match Inspector::new(version) {
        Ok(i) => i,
        Err(e) => return Observed::failed(e.to_string()),
    };
    let full = inspect(endpoint, &inspector, true, None);
    let first = full
        .as_ref()
        .ok()
        .and_then(|f| f.tickets.first().map(|t| t.session.clone()));
    let resumed = first
        .as_ref()
        .map(|s| inspect(endpoint, &inspector, true, Some(s)));
    let reused = match (&first, version) {
        (Some(s), ProtocolVersion::Tls13) => Some(inspect(endpoint, &inspector, true, Some(s))),
        _ => None,
    };
    let (id_full, id_resumed) = if version == ProtocolVersion::Tls12 && full.is_ok() {
        let id_full = inspect(endpoint, &inspector, false, None);
        let session = id_full
            .as_ref()
            .ok()
            .filter(|i| i.session_id_len.unwrap_or(0) > 0)
            .and_then(|i| i.session.clone());
        let id_resumed = session.map(|s| inspect(endpoint, &inspector, false, Some(&s)));
        (Some(id_full), id_resumed)
    } else {
        (None, None)
    };
    let mut observed = Observed {
        full,
        resumed,
        reused,
        id_full,
        id_resumed,
        again: None,
        wait: endpoint.wait,
    };
    if observed.tickets().len() == 1 {
        observed.again = Some(inspect(endpoint, &inspector, true, None));
    }
    observed
}

/// Without the OpenSSL backend: every check says why it could not run.
#[cfg(not(feature = "openssl"))]
pub fn observe(_endpoint: &Endpoint, _version: ProtocolVersion) -> Observed {
    Observed::failed("this build has no OpenSSL backend, which reads tickets for scan".into())
}

impl Observed {
    fn failed(why: String) -> Self {
        Self {
            full: Err(why),
            resumed: None,
            reused: None,
            id_full: None,
            id_resumed: None,
            again: None,
            wait: std::time::Duration::ZERO,
        }
    }

    /// Whether the full handshake gave a ticket.
    pub fn has_tickets(&self) -> bool {
        #[cfg(feature = "openssl")]
        return self.full.as_ref().is_ok_and(|f| !f.tickets.is_empty());
        #[cfg(not(feature = "openssl"))]
        return false;
    }

    /// The first 16 bytes of every ticket seen.
    #[cfg(feature = "openssl")]
    fn tickets(&self) -> Vec<&[u8]> {
        [
            Some(&self.full),
            self.resumed.as_ref(),
            self.reused.as_ref(),
            self.again.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_ref().ok())
        .flat_map(|i| i.tickets.iter().map(|t| t.prefix.as_slice()))
        .collect()
    }
}

/// One OpenSSL connection on `endpoint`.
#[cfg(feature = "openssl")]
fn inspect(
    endpoint: &Endpoint,
    inspector: &Inspector,
    tickets: bool,
    offer: Option<&HeldSession>,
) -> Result<Inspection, String> {
    let tcp = endpoint.tcp()?;
    let request = endpoint.request(tickets, offer);
    inspector
        .connect(tcp, &request)
        .map_err(|e| format!("TLS: {e}"))
}

/// A ticket of `from`'s full handshake, offered to `to`: resumed or not.
#[cfg(feature = "openssl")]
pub fn cross(from: &Observed, to: &Endpoint, version: ProtocolVersion) -> Result<bool, String> {
    let Ok(full) = &from.full else {
        return Err("no handshake there".into());
    };
    let Some(ticket) = full.tickets.first() else {
        return Err("it sent no ticket".into());
    };
    let inspector = Inspector::new(version).map_err(|e| e.to_string())?;
    inspect(to, &inspector, true, Some(&ticket.session)).map(|i| i.resumed)
}

/// Without the OpenSSL backend there is no ticket to carry across.
#[cfg(not(feature = "openssl"))]
pub fn cross(_from: &Observed, _to: &Endpoint, _version: ProtocolVersion) -> Result<bool, String> {
    Err("this build has no OpenSSL backend".into())
}

/// The 16-byte ticket prefix, in hex.
#[cfg(feature = "openssl")]
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The checks of one version from what was observed.
#[cfg(feature = "openssl")]
pub fn checks(version: ProtocolVersion, o: &Observed) -> Vec<Check> {
    let tls13 = version == ProtocolVersion::Tls13;
    let full = match &o.full {
        Ok(f) => f,
        Err(e) => {
            return vec![
                Check::new("handshake", "full handshake", Verdict::No, json!(null), "")
                    .because(format!("TLS {} not negotiated: {e}", version.short())),
            ]
        }
    };
    let mut out = vec![Check::new(
        "handshake",
        "full handshake",
        Verdict::Yes,
        json!({"cipher": full.cipher, "ocsp_stapled": full.ocsp_stapled}),
        format!(
            "{} {}, OCSP staple {}",
            full.protocol,
            full.cipher,
            if full.ocsp_stapled { "yes" } else { "no" }
        ),
    )];
    let n = full.tickets.len();
    let hint = full.tickets.first().map(|t| t.lifetime_hint.as_secs());
    let mut tickets = Check::new(
        "tickets",
        "tickets issued",
        Verdict::of(n > 0),
        json!(n > 0),
        if n > 0 {
            format!("{n} on a full handshake")
        } else {
            String::new()
        },
    );
    if n == 0 {
        tickets = tickets.because(if !tls13 && !full.ticket_extension {
            "the ServerHello did not accept the session_ticket extension the client sent".to_owned()
        } else if tls13 {
            format!(
                "no NewSessionTicket within {} ms after the handshake",
                o.wait.as_millis()
            )
        } else {
            "the ServerHello accepted the extension but no NewSessionTicket came".to_owned()
        });
    }
    out.push(tickets);
    if !tls13 {
        out.push(ids(o));
    }
    out.push(match hint {
        Some(s) => Check::new(
            "lifetime_hint",
            "ticket lifetime hint",
            Verdict::Info,
            json!(s),
            format!("{s} s"),
        )
        .meaning(if s == 0 {
            "0: unspecified; clients keep the session as long as they like".to_owned()
        } else {
            format!("clients drop the session after {s} s; it says nothing of key rotation")
        }),
        None => Check::unknown("lifetime_hint", "ticket lifetime hint", "no ticket"),
    });
    if tls13 {
        let early = full.tickets.iter().map(|t| t.max_early_data).max();
        out.push(Check::new(
            "tickets_per_handshake",
            "TLS 1.3 tickets per full handshake",
            Verdict::Info,
            json!(n),
            n.to_string(),
        ));
        out.push(match early {
            Some(e) => Check::new(
                "max_early_data",
                "max_early_data",
                Verdict::of(e > 0),
                json!(e),
                e.to_string(),
            )
            .because_if(e == 0, "the tickets allow no 0-RTT data"),
            None => Check::unknown("max_early_data", "max_early_data", "no ticket"),
        });
    }
    out.push(resumption(o, tls13));
    if tls13 {
        out.push(psk_modes(o));
    }
    out.push(reissue(o, tls13));
    if tls13 {
        out.push(reuse(o));
    }
    out.push(key_name(o));
    out
}

/// Without the OpenSSL backend, one check says why none ran.
#[cfg(not(feature = "openssl"))]
pub fn checks(_version: ProtocolVersion, o: &Observed) -> Vec<Check> {
    let why = o.full.as_ref().err().cloned().unwrap_or_default();
    vec![Check::unknown("handshake", "full handshake", why)]
}

/// TLS 1.2 session IDs: given in the ServerHello, and resumed by ID.
#[cfg(feature = "openssl")]
fn ids(o: &Observed) -> Check {
    const LABEL: &str = "session ID resumption (no ticket asked)";
    let Some(id_full) = &o.id_full else {
        return Check::unknown("session_ids", LABEL, "no full handshake");
    };
    let id_full = match id_full {
        Ok(i) => i,
        Err(e) => return Check::unknown("session_ids", LABEL, e.clone()),
    };
    let id_len = id_full.session_id_len.unwrap_or(0);
    if id_len == 0 {
        return Check::new(
            "session_ids",
            LABEL,
            Verdict::No,
            json!(false),
            "empty session ID",
        )
        .because("the server keeps no session cache for clients without tickets")
        .meaning(
            "clients that do not use tickets (or are refused one) always do a full handshake",
        );
    }
    match &o.id_resumed {
        Some(Ok(r)) if r.resumed => Check::new(
            "session_ids",
            LABEL,
            Verdict::Yes,
            json!(true),
            format!("{id_len}-byte session ID, resumed"),
        ),
        Some(Ok(_)) => Check::new(
            "session_ids",
            LABEL,
            Verdict::No,
            json!(false),
            format!("{id_len}-byte session ID"),
        )
        .because("the server did not resume the session ID it gave (no shared session cache?)"),
        Some(Err(e)) => Check::unknown("session_ids", LABEL, e.clone()),
        None => Check::unknown("session_ids", LABEL, "no session to offer"),
    }
}

/// Resumption with the first ticket of the full handshake.
#[cfg(feature = "openssl")]
fn resumption(o: &Observed, tls13: bool) -> Check {
    const LABEL: &str = "resumption with a ticket";
    match &o.resumed {
        Some(Ok(r)) if r.resumed => Check::new(
            "resume_ticket",
            LABEL,
            Verdict::Yes,
            json!(true),
            format!(
                "resumed, {}, OCSP staple {}",
                r.cipher,
                if r.ocsp_stapled { "yes" } else { "no" }
            ),
        ),
        Some(Ok(_)) => Check::new("resume_ticket", LABEL, Verdict::No, json!(false), "")
            .because("the server refused its own fresh ticket: full handshake")
            .meaning(if tls13 {
                "every connection costs a full handshake; tickets are useless here"
            } else {
                "tickets are useless here; only a session ID could resume"
            }),
        Some(Err(e)) => Check::unknown("resume_ticket", LABEL, e.clone()),
        None => Check::new("resume_ticket", LABEL, Verdict::No, json!(false), "")
            .because("no ticket was issued"),
    }
}

/// The TLS 1.3 PSK key exchange mode the server chose when it resumed.
#[cfg(feature = "openssl")]
fn psk_modes(o: &Observed) -> Check {
    const LABEL: &str = "PSK mode on resumption";
    const UNTRIED: &str = "psk_ke alone not tried: the OpenSSL and rustls clients always offer \
                           psk_dhe_ke, which a server that has both takes";
    match &o.resumed {
        Some(Ok(r)) if r.resumed => match r.psk_mode {
            Some(mode) => Check::new(
                "psk_modes",
                LABEL,
                Verdict::Info,
                json!({"used": mode, "psk_ke_alone": null}),
                format!(
                    "{mode} ({} in the ServerHello); {UNTRIED}",
                    if mode == "psk_dhe_ke" {
                        "a key share"
                    } else {
                        "no key share"
                    }
                ),
            ),
            None => Check::unknown("psk_modes", LABEL, "the ServerHello was not read"),
        },
        Some(Err(e)) => Check::unknown("psk_modes", LABEL, e.clone()),
        _ => Check::unknown("psk_modes", LABEL, "no resumption"),
    }
}

/// A new ticket on the resumed handshake.
#[cfg(feature = "openssl")]
fn reissue(o: &Observed, tls13: bool) -> Check {
    const LABEL: &str = "new ticket on a resumed handshake";
    let r = match &o.resumed {
        Some(Ok(r)) if r.resumed => r,
        Some(Ok(_)) => return Check::unknown("reissue", LABEL, "the ticket did not resume"),
        Some(Err(e)) => return Check::unknown("reissue", LABEL, e.clone()),
        None => return Check::unknown("reissue", LABEL, "no ticket was issued"),
    };
    let n = r.tickets.len();
    let c = Check::new(
        "reissue",
        LABEL,
        Verdict::of(n > 0),
        json!(n),
        format!("{n} ticket{}", if n == 1 { "" } else { "s" }),
    );
    match (n, tls13) {
        (0, true) => c
            .because("the server sends no NewSessionTicket after a resumption")
            .meaning(
                "a client that uses a TLS 1.3 ticket once (rustls, browsers) resumes every other \
                 connection",
            ),
        (0, false) => c.because(
            "the ticket is kept: the server did not renew it (clients resume with it until it \
             expires)",
        ),
        _ => c,
    }
}

/// The first TLS 1.3 ticket offered a second time.
#[cfg(feature = "openssl")]
fn reuse(o: &Observed) -> Check {
    const LABEL: &str = "same TLS 1.3 ticket accepted twice";
    match &o.reused {
        Some(Ok(r)) => {
            let c = Check::new(
                "ticket_reuse",
                LABEL,
                Verdict::of(r.resumed),
                json!(r.resumed),
                if r.resumed { "resumed again" } else { "" },
            );
            if r.resumed {
                c.meaning("a client that reuses a ticket (OpenSSL, GnuTLS) resumes every time")
            } else {
                c.because("the server accepts each ticket once (stateful tickets or anti-replay)")
                    .meaning("only a fresh ticket resumes: each client needs a new ticket per connection")
            }
        }
        None => Check::unknown("ticket_reuse", LABEL, "no ticket was issued"),
        Some(Err(e)) => Check::unknown("ticket_reuse", LABEL, e.clone()),
    }
}

/// The key name: the same 16-byte prefix on tickets of separate handshakes.
#[cfg(feature = "openssl")]
fn key_name(o: &Observed) -> Check {
    const LABEL: &str = "ticket key name (first 16 bytes)";
    let tickets = o.tickets();
    let Some(first) = tickets.first() else {
        return Check::unknown("key_name", LABEL, "no ticket");
    };
    if tickets.len() < 2 {
        return Check::new("key_name", LABEL, Verdict::Info, json!(null), hex(first))
            .because("only one ticket seen: a key name cannot be told from random bytes");
    }
    if first.len() == 16 && tickets.iter().all(|t| t == first) {
        Check::new(
            "key_name",
            LABEL,
            Verdict::Yes,
            json!(hex(first)),
            format!("{} on all {} tickets", hex(first), tickets.len()),
        )
    } else {
        Check::new("key_name", LABEL, Verdict::No, json!(null), "").because(format!(
            "the first 16 bytes differ between the {} tickets: no key name in this format \
                 (or the key changed)",
            tickets.len()
        ))
    }
}

/// `because` only when `cond`.
trait BecauseIf {
    fn because_if(self, cond: bool, why: &str) -> Self;
}

impl BecauseIf for Check {
    fn because_if(self, cond: bool, why: &str) -> Self {
        if cond {
            self.because(why)
        } else {
            self
        }
    }
}
