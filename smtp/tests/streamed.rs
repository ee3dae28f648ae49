//! A message streamed from a reader (`Client::connect_streamed`): normalised and dot-stuffed
//! a piece at a time, its SIZE declared and checked before sending, and a reader that fails
//! stops it before its end so that nothing is delivered. Against the crate's server session
//! over loopback.

#[macro_use]
#[path = "common/fronts.rs"]
mod fronts;

use std::error::Error as _;
use std::io::{self, Read};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use fronts::Sender;
use tlsresume_smtp::server::{self, Accepted};
use tlsresume_smtp::{ClientConfig, ErrorClass, ServerConfig, ServerSession, Stage};

/// Content read in odd pieces, failing after `fail_after` octets when set.
struct Pieces {
    content: Vec<u8>,
    at: usize,
    fail_after: Option<usize>,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fail_after.is_some_and(|n| self.at >= n) {
            return Err(io::Error::other("the spool file went away"));
        }
        let n = buf.len().min(7919).min(self.content.len() - self.at);
        buf[..n].copy_from_slice(&self.content[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The server's side of `n` connections: what each accepted, or why it ended.
fn serve(
    listener: TcpListener,
    n: usize,
) -> thread::JoinHandle<Vec<Result<Vec<Accepted>, String>>> {
    thread::spawn(move || {
        (0..n)
            .map(|_| {
                let (mut tcp, _) = listener.accept().map_err(|e| e.to_string())?;
                tcp.set_read_timeout(Some(Duration::from_secs(20)))
                    .map_err(|e| e.to_string())?;
                let mut session =
                    ServerSession::new(ServerConfig::new("mx.test").max_message(1_000_000));
                session.greet();
                let stop = server::drive(&mut session, &mut tcp);
                let _ = server::flush(&mut session, &mut tcp);
                stop.map_err(|e| e.to_string())?;
                Ok(session.take_accepted())
            })
            .collect()
    })
}

const ENVELOPE: (&str, &[&str]) = ("a@example.test", &["b@example.test"]);

fronts! {
fn a_streamed_message_is_delivered_sized_or_stopped(front) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let peer = listener.local_addr().expect("addr");
    let served = serve(listener, 3);
    let mut config = ClientConfig::new("client.test").expect("name");
    config.timeout = Duration::from_secs(20);
    let client = Sender::new(front, config);

    // 300 000 octets of lines ending in LF, some starting with a dot, one a lone dot.
    let mut content = Vec::new();
    let mut lines = 0;
    while content.len() < 300_000 {
        content.extend_from_slice(if lines % 7 == 0 {
            b".\n"
        } else {
            b".dotted line\n"
        });
        content.extend_from_slice(&[b'x'; 100]);
        content.push(b'\n');
        lines += 2;
    }
    // Each LF goes as CR LF: the message's size as the server counts it.
    let size = (content.len() + lines) as u64;
    let mut source = Pieces {
        content: content.clone(),
        at: 0,
        fail_after: None,
    };
    let d = client
        .connect_streamed(peer, ENVELOPE, &mut source, Some(size))
        .expect("delivered");
    assert!(!d.chunking, "a streamed message goes with DATA");
    assert_eq!(d.accepted, ["b@example.test"]);

    // Declared over the server's SIZE: refused before anything of it is sent.
    let mut source = Pieces {
        content: content.clone(),
        at: 0,
        fail_after: None,
    };
    let e = client
        .connect_streamed(peer, ENVELOPE, &mut source, Some(2_000_000))
        .expect_err("over SIZE");
    assert_eq!(
        (e.stage, e.class()),
        (Stage::Mail, ErrorClass::Permanent),
        "{e}"
    );
    assert_eq!(source.at, 0, "nothing read");

    // A reader that fails: no end of data goes, nothing is delivered.
    let mut source = Pieces {
        content,
        at: 0,
        fail_after: Some(50_000),
    };
    let e = client
        .connect_streamed(peer, ENVELOPE, &mut source, None)
        .expect_err("the reader failed");
    assert_eq!(
        (e.stage, e.class()),
        (Stage::Data, ErrorClass::Temporary),
        "{e}"
    );
    let source = e.source().expect("the reader's error");
    assert_eq!(source.to_string(), "the spool file went away");

    let served = served.join().expect("server");
    let first = served[0].as_ref().expect("first connection");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].octets, size, "the message as sent, unstuffed");
    assert_eq!(
        served[1].as_ref().map(Vec::len),
        Ok(0),
        "over SIZE: nothing"
    );
    let third = served[2].as_ref().expect_err("ended inside the message");
    assert!(third.contains("inside a message"), "{third}");
}
}
