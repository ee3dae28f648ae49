//! `serve --metrics ADDR`: the library's counters (`tlsresume_core::telemetry`) in Prometheus's
//! text exposition format, over plain HTTP on `ADDR` (GET, any path).
//!
//! The recorder is this command's: the library only speaks the `metrics` facade, so an MTA
//! plugs in the exporter it already runs (Prometheus, OpenTelemetry, StatsD) instead.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use tlsresume::{Deadline, Error};

/// The most of a scrape's request that is read.
const REQUEST_BYTES: u64 = 8 * 1024;

/// Counters by series (`name{label="value",…}`), in the order Prometheus lists them.
#[derive(Debug, Default)]
struct Prometheus {
    series: Mutex<BTreeMap<(String, String), Arc<AtomicU64>>>,
}

/// A label value as Prometheus's text format wants it: `\`, `"` and new lines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Prometheus {
    /// The exposition text: one `# TYPE` line per counter name, then its series.
    fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let mut last = "";
        for ((name, labels), value) in series.iter() {
            if name != last {
                out.push_str(&format!("# TYPE {name} counter\n"));
                last = name;
            }
            out.push_str(&format!(
                "{name}{labels} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

impl Recorder for Prometheus {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}=\"{}\"", l.key(), escape(l.value())))
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let value = series
            .entry((key.name().to_owned(), labels))
            .or_default()
            .clone();
        Counter::from_arc(value)
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// Installs the recorder for the process and serves its text on `addr`; the address it
/// listens on (the real port when `addr` asks for port 0).
pub fn serve(addr: &str) -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| Error::Config(format!("--metrics: cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    let recorder: &'static Prometheus = Box::leak(Box::default());
    metrics::set_global_recorder(recorder)
        .map_err(|_| Error::Config("--metrics: a metrics recorder is already installed".into()))?;
    thread::spawn(move || {
        for mut tcp in listener.incoming().flatten() {
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            // The request is read up to its blank line and otherwise ignored: every path
            // answers the same text. Bounded in bytes and in time (a scraper dribbling its
            // request would otherwise hold the one thread that answers).
            let request = Deadline::new(&mut tcp, Duration::from_secs(5), "request");
            let mut reader = BufReader::new(request.take(REQUEST_BYTES));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            drop(reader);
            let body = recorder.render();
            let _ = write!(
                tcp,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_rendered_and_label_values_escaped() {
        let recorder = Prometheus::default();
        let meta = Metadata::new("t", metrics::Level::INFO, None);
        let key = Key::from_parts(
            "x_total",
            vec![metrics::Label::new("reason", "a \"b\"\n\\c")],
        );
        recorder.register_counter(&key, &meta).increment(2);
        recorder.register_counter(&key, &meta).increment(1);
        assert_eq!(
            recorder.render(),
            "# TYPE x_total counter\nx_total{reason=\"a \\\"b\\\"\\n\\\\c\"} 3\n"
        );
    }
}
