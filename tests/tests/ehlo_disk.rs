//! `tlsresume-stores`' on-disk file as the SMTP client's EHLO-response cache, against the SMTP
//! client's test server on loopback: a corrupt entry is skipped, left and rewritten.
//!
//! Here rather than in `tlsresume-smtp`'s tests: the stores implement the SMTP crate's
//! `EhloStore`, so the SMTP crate cannot depend on them, not even for its tests (the packages
//! would form a cycle no registry can publish).

#[allow(dead_code)] // this file uses the corrupt-entry writer, not the dialogue
mod common;
#[path = "../../smtp/tests/common/mod.rs"]
mod smtp_peers;

use std::sync::Arc;
use std::time::Duration;

use smtp_peers::{ConnPlan, ServerConfig, TestServer};
use tlsresume_core::{Clock, ManualClock, UnixTime};
use tlsresume_smtp::ehlo::{EhloCache, EhloKey, EhloStore, Phase, Verdict};
use tlsresume_smtp::{Client, ClientConfig, Message, NoTls};

const OFFER: &[&str] = &["PIPELINING", "PIPECONNECT", "8BITMIME"];

fn message() -> Message {
    Message {
        mail_from: "sender@client.test".into(),
        rcpt_to: vec!["one@server.test".into(), "two@server.test".into()],
        content: b"Subject: test\n\n.leading dot\nbody\n".to_vec(),
        dsn: Default::default(),
    }
}

fn server(plans: Vec<ConnPlan>) -> TestServer {
    TestServer::start(ServerConfig::clear(plans, Duration::from_millis(500)))
}

fn key(server: &TestServer) -> EhloKey {
    EhloKey::new(server.addr)
}

#[test]
fn a_corrupted_stored_entry_is_ignored_left_and_rewritten() {
    // The on-disk store: corrupt bytes in the file.
    let dir = std::env::temp_dir().join(format!("tlsresume-smtp-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("cache.db");
    let _ = std::fs::remove_file(&file);
    let server = server(vec![ConnPlan::new(OFFER, &[])]);
    let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
    let client_with = |store: Arc<dyn EhloStore>| {
        let mut config = ClientConfig::new("client.test").expect("name");
        config.hosts_pipe_connect = "*".parse().expect("list");
        config.ehlo_cache = EhloCache::new(store, Arc::new(clock.clone()));
        Client::new(config)
    };
    common::corrupt_ehlo_entry_on_disk(&file, &key(&server), clock.now());

    let store = Arc::new(tlsresume_stores::DiskStore::open(&file).expect("open"));
    let c = client_with(store.clone());
    let d = c
        .connect::<NoTls>(server.addr, None, None, &message())
        .expect("a corrupt entry is no failure");
    assert!(d.sent_early.is_empty(), "the corrupt entry was not used");
    assert_eq!(store.corrupt_skipped(), 1);
    assert_eq!(
        d.cache,
        [(Phase::Clear, Verdict::Stored)],
        "rewritten after a normal EHLO"
    );
    let d = c
        .connect::<NoTls>(server.addr, None, None, &message())
        .expect("second");
    assert!(!d.sent_early.is_empty(), "the rewritten entry is used");
    assert_eq!(server.message_count(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
