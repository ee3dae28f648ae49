//! What an application's `tracing` subscriber and `metrics` recorder see of the lifecycle, on
//! every backend: the client's span and its "handshake done" event, and the counters for a full
//! then a resumed handshake (sessions stored, the one session not offered, and why).

#[allow(dead_code)] // this file uses the turn and the server end, not the fault tests' dialogue
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{answer, gnutls_turn};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use tlsresume::backends;
use tlsresume_compare::Pki;
use tlsresume_core::{ClientParams, ClientSettings, ServerSettings};

/// A writer the subscriber formats into, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The value of the client-side counter `name` whose labels include `labels`.
fn counter(
    snapshot: &[(
        CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        DebugValue,
    )],
    name: &str,
    labels: &[(&str, &str)],
) -> u64 {
    snapshot
        .iter()
        .filter(|(key, ..)| key.kind() == MetricKind::Counter && key.key().name() == name)
        .filter(|(key, ..)| {
            labels.iter().all(|(k, v)| {
                key.key()
                    .labels()
                    .any(|label| label.key() == *k && label.value() == *v)
            })
        })
        .map(|(.., value)| match value {
            DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum()
}

#[test]
fn a_subscriber_and_a_recorder_see_the_handshakes_on_every_backend() {
    for kind in backends::available() {
        let _turn = gnutls_turn();
        let pki = Pki::committed().expect("pki");
        let server =
            backends::server(kind, ServerSettings::new(pki.server.clone())).expect("server");
        let client =
            backends::client(kind, ClientSettings::new(pki.roots.clone())).expect("client");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let serving = thread::spawn(move || {
            for tcp in listener.incoming().take(2).flatten() {
                answer(server.as_ref(), tcp);
            }
        });
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let resumed = tracing::subscriber::with_default(subscriber, || {
            metrics::with_local_recorder(&recorder, || {
                (0..2)
                    .map(|_| {
                        let tcp = TcpStream::connect(addr).expect("connect");
                        tcp.set_read_timeout(Some(Duration::from_secs(10)))
                            .expect("timeout");
                        let mut tls = client
                            .connect(Box::new(tcp), &ClientParams::new("mx.tlsresume.test", addr))
                            .expect("handshake");
                        let mut buf = [0u8; 2];
                        tls.read_exact(&mut buf).expect("read");
                        tls.write_all(b"ok").expect("write");
                        let resumed = tls.info().resumed;
                        let _ = tls.shutdown();
                        resumed
                    })
                    .collect::<Vec<_>>()
            })
        });
        serving.join().expect("server");
        assert_eq!(resumed, vec![false, true], "{kind}");

        let text = String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|p| p.into_inner()))
            .into_owned();
        assert!(
            text.contains("tls_client"),
            "{kind}: no client span:\n{text}"
        );
        assert!(
            text.contains(&format!("backend=\"{}\"", kind.name())),
            "{kind}: the span names the backend:\n{text}"
        );
        assert!(text.contains("client handshake done"), "{kind}:\n{text}");
        assert!(text.contains("resumed=true"), "{kind}:\n{text}");
        assert!(text.contains("no_offer=\"missing\""), "{kind}:\n{text}");

        let snapshot = snapshotter.snapshot().into_vec();
        let backend = kind.name();
        let done = |result| {
            counter(
                &snapshot,
                "tlsresume_handshakes_total",
                &[("role", "client"), ("backend", backend), ("result", result)],
            )
        };
        assert_eq!(done("full"), 1, "{kind}: {snapshot:?}");
        assert_eq!(done("resumed"), 1, "{kind}: {snapshot:?}");
        assert_eq!(
            counter(
                &snapshot,
                "tlsresume_sessions_not_offered_total",
                &[("backend", backend), ("reason", "missing")],
            ),
            1,
            "{kind}"
        );
        assert!(
            counter(
                &snapshot,
                "tlsresume_sessions_stored_total",
                &[("backend", backend)]
            ) >= 1,
            "{kind}: {snapshot:?}"
        );
    }
}

/// A store's notice (here: a corrupt entry in the disk cache, skipped and removed) is a
/// `tracing` warning with its name, and counts in `tlsresume_store_notices_total`.
#[test]
fn a_store_notice_reaches_the_subscriber_and_the_counter() {
    use tlsresume_core::UnixTime;
    use tlsresume_smtp::ehlo::{EhloKey, EhloStore};
    use tlsresume_stores::DiskStore;

    let dir = std::env::temp_dir().join(format!("tlsresume-telemetry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("cache.db");
    let key = EhloKey::new("192.0.2.25:25".parse().expect("addr"));
    common::corrupt_ehlo_entry_on_disk(&file, &key, UnixTime::from_secs(1_700_000_000));

    let store = DiskStore::open(&file).expect("open");
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let got = tracing::subscriber::with_default(subscriber, || {
        metrics::with_local_recorder(&recorder, || store.get_ehlo(&key))
    });
    assert_eq!(got.expect("a corrupt entry is no error"), None);
    assert_eq!(store.corrupt_skipped(), 1);

    let text =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(text.contains("WARN"), "{text}");
    assert!(
        text.contains("notice=\"unreadable_entry_left\""),
        "the event names the notice: {text}"
    );
    assert!(text.contains("left in place"), "and says what: {text}");
    let snapshot = snapshotter.snapshot().into_vec();
    assert_eq!(
        counter(
            &snapshot,
            "tlsresume_store_notices_total",
            &[("notice", "unreadable_entry_left")]
        ),
        1,
        "{snapshot:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
