//! `scan --watch DURATION`: a full handshake every interval on the real clock, noting the
//! ticket key name (the first 16 bytes of the tickets) and offering a ticket of every key seen
//! so far: when the key name changes, and until when the tickets of an older key still resume
//! (the rotation and the overlap a server really has, not the lifetime hint).

use std::time::{Duration, Instant};

use serde_json::json;
use tlsresume::{Error, ProtocolVersion};

use super::report::{Check, Verdict};
use super::Endpoint;

/// `90`, `90s`, `15m`, `2h` as a duration.
pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    let bad = || {
        Error::Config(format!(
            "--watch '{text}': not a duration (seconds, or a number with s, m or h)"
        ))
    };
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => n,
        "m" => n.checked_mul(60).ok_or_else(bad)?,
        "h" => n.checked_mul(3600).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if seconds == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(seconds))
}

/// The interval between two looks: a thirtieth of the watch, between 1 s and 5 min.
pub fn interval(duration: Duration) -> Duration {
    (duration / 30).clamp(Duration::from_secs(1), Duration::from_secs(300))
}

/// One ticket key seen.
#[derive(Debug)]
struct Key {
    /// The first 16 bytes of its tickets, hex.
    name: String,
    /// When it was first seen, and when a later key was first seen.
    first_seen: Duration,
    replaced: Option<Duration>,
    /// The last time one of its tickets resumed, and the first time one did not.
    last_resumed: Option<Duration>,
    stopped: Option<Duration>,
    /// Its tickets not offered yet (a server may take each ticket once).
    #[cfg(feature = "openssl")]
    tickets: Vec<tlsresume::openssl::inspect::HeldSession>,
}

/// Watches `endpoint` for `duration`, looking every `every`, with `version`.
#[cfg(feature = "openssl")]
pub fn watch(
    endpoint: &Endpoint,
    version: ProtocolVersion,
    duration: Duration,
    every: Duration,
) -> Vec<Check> {
    use tlsresume::openssl::inspect::{HeldSession, Inspector};
    let inspector = match Inspector::new(version) {
        Ok(i) => i,
        Err(e) => return vec![Check::unknown("key_changes", LABEL_CHANGES, e.to_string())],
    };
    let connect = |offer: Option<&HeldSession>| -> Result<_, String> {
        let tcp = endpoint.tcp()?;
        let request = endpoint.request(true, offer);
        inspector.connect(tcp, &request).map_err(|e| e.to_string())
    };
    let start = Instant::now();
    let mut keys: Vec<Key> = Vec::new();
    let (mut looks, mut failed) = (0u32, 0u32);
    loop {
        let now = start.elapsed();
        looks += 1;
        match connect(None) {
            Ok(full) => {
                if let Some(first) = full.tickets.first() {
                    let name: String = first.prefix.iter().map(|b| format!("{b:02x}")).collect();
                    let tickets = full.tickets.iter().map(|t| t.session.clone());
                    match keys.iter_mut().find(|k| k.name == name) {
                        Some(k) => k.tickets.extend(tickets),
                        None => {
                            if let Some(last) = keys.last_mut() {
                                last.replaced.get_or_insert(now);
                            }
                            keys.push(Key {
                                name,
                                first_seen: now,
                                replaced: None,
                                last_resumed: None,
                                stopped: None,
                                tickets: tickets.collect(),
                            });
                        }
                    }
                }
            }
            Err(_) => failed += 1,
        }
        // A ticket of every older key still resuming.
        let newest = keys.len().saturating_sub(1);
        for key in keys[..newest].iter_mut().filter(|k| k.stopped.is_none()) {
            let Some(ticket) = key.tickets.pop() else {
                continue;
            };
            match connect(Some(&ticket)) {
                Ok(r) if r.resumed => key.last_resumed = Some(start.elapsed()),
                Ok(_) => key.stopped = Some(start.elapsed()),
                Err(_) => failed += 1,
            }
        }
        if start.elapsed() + every > duration {
            break;
        }
        std::thread::sleep(every.saturating_sub(start.elapsed().saturating_sub(now)));
    }
    report(&keys, duration, looks, failed)
}

/// Without the OpenSSL backend there is no ticket reader.
#[cfg(not(feature = "openssl"))]
pub fn watch(
    _endpoint: &Endpoint,
    _version: ProtocolVersion,
    _duration: Duration,
    _every: Duration,
) -> Vec<Check> {
    vec![Check::unknown(
        "key_changes",
        LABEL_CHANGES,
        "this build has no OpenSSL backend, which reads tickets for scan",
    )]
}

const LABEL_CHANGES: &str = "ticket key name changes";
const LABEL_OLD: &str = "tickets of a replaced key still resume";

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

/// The checks from the keys seen.
fn report(keys: &[Key], duration: Duration, looks: u32, failed: u32) -> Vec<Check> {
    let seen = format!(
        "{looks} looks in {} s{}",
        secs(duration),
        if failed > 0 {
            format!(", {failed} connections failed")
        } else {
            String::new()
        }
    );
    let Some(first) = keys.first() else {
        return vec![Check::unknown(
            "key_changes",
            LABEL_CHANGES,
            format!("no ticket seen ({seen})"),
        )];
    };
    let changes: Vec<_> = keys
        .windows(2)
        .map(|w| json!({"at_seconds": secs(w[1].first_seen), "from": w[0].name, "to": w[1].name}))
        .collect();
    let mut out = Vec::new();
    if changes.is_empty() {
        out.push(
            Check::new(
                "key_changes",
                LABEL_CHANGES,
                Verdict::No,
                json!([]),
                format!("{} throughout; {seen}", first.name),
            )
            .because(format!(
                "the key name did not change in {} s: any rotation is slower",
                secs(duration)
            )),
        );
        return out;
    }
    let evidence: Vec<String> = keys
        .windows(2)
        .map(|w| {
            format!(
                "at {} s {} -> {}",
                secs(w[1].first_seen),
                short(&w[0].name),
                short(&w[1].name)
            )
        })
        .collect();
    out.push(Check::new(
        "key_changes",
        LABEL_CHANGES,
        Verdict::Yes,
        json!(changes),
        format!("{}; {seen}", evidence.join(", ")),
    ));
    let old: Vec<_> = keys
        .iter()
        .filter(|k| k.replaced.is_some())
        .map(|k| {
            json!({
                "key": k.name,
                "replaced_at_seconds": k.replaced.map(secs),
                "last_resumed_at_seconds": k.last_resumed.map(secs),
                "stopped_at_seconds": k.stopped.map(secs),
            })
        })
        .collect();
    let words: Vec<String> = keys
        .iter()
        .filter_map(|k| k.replaced.map(|r| (k, r)))
        .map(|(k, replaced)| {
            let until = match (k.last_resumed, k.stopped) {
                (_, Some(stop)) => format!(
                    "refused from {} s (overlap {} s after the change)",
                    secs(stop),
                    secs(k.last_resumed.unwrap_or(replaced).saturating_sub(replaced))
                ),
                (Some(last), None) => format!("still resuming at {} s", secs(last)),
                (None, None) => "not tried (no ticket of it left to offer)".to_owned(),
            };
            format!(
                "{}: replaced at {} s, {until}",
                short(&k.name),
                secs(replaced)
            )
        })
        .collect();
    let any_overlap = keys.iter().any(|k| k.last_resumed.is_some());
    let c = Check::new(
        "old_tickets",
        LABEL_OLD,
        Verdict::of(any_overlap),
        json!(old),
        words.join("; "),
    );
    out.push(if any_overlap {
        c
    } else {
        c.because("no ticket of a replaced key resumed after the change")
            .meaning("every client holding a ticket does a full handshake after each key change")
    });
    out
}

/// The first 8 hex digits of a key name.
fn short(name: &str) -> String {
    format!("{}…", name.get(..8).unwrap_or(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").ok(), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m").ok(), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h").ok(), Some(Duration::from_secs(7200)));
        for bad in ["", "0", "5x", "h", "-1s", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(interval(Duration::from_secs(10)), Duration::from_secs(1));
        assert_eq!(
            interval(Duration::from_secs(3600)),
            Duration::from_secs(120)
        );
    }
}
