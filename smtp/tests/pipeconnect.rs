//! The SMTP client against a real SMTP server on loopback: early pipelining used, refused,
//! counted; STARTTLS through rustls with session resumption; and bad input.

mod common;
#[macro_use]
#[path = "common/fronts.rs"]
mod fronts;

use std::sync::Arc;
use std::time::Duration;

use common::{Banner, ConnPlan, DelayProxy, ServerConfig, TestServer};
use fronts::{Front, Sender};
use tlsresume_core::{ManualClock, Resumption, UnixTime};
use tlsresume_smtp::ehlo::{
    DeleteReason, EhloCache, EhloKey, EhloStore, MemoryEhloStore, Phase, Verdict,
};
use tlsresume_smtp::{ClientConfig, Message, SendError, Stage};

const OFFER: &[&str] = &["PIPELINING", "PIPECONNECT", "8BITMIME"];
const OFFER_TLS: &[&str] = &["PIPELINING", "PIPECONNECT", "STARTTLS"];

fn message() -> Message {
    Message {
        mail_from: "sender@client.test".into(),
        rcpt_to: vec!["one@server.test".into(), "two@server.test".into()],
        content: b"Subject: test\n\n.leading dot\nbody\n".to_vec(),
        dsn: Default::default(),
    }
}

struct Setup {
    client: Sender,
    store: Arc<MemoryEhloStore>,
    clock: ManualClock,
}

fn client(front: Front, pipe_connect: &str) -> Setup {
    let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
    let store = Arc::new(MemoryEhloStore::default());
    let mut config = ClientConfig::new("client.test").expect("name");
    config.hosts_pipe_connect = pipe_connect.parse().expect("host list");
    config.ehlo_cache = EhloCache::new(store.clone(), Arc::new(clock.clone()));
    config.timeout = Duration::from_secs(10);
    Setup {
        client: Sender::new(front, config),
        store,
        clock,
    }
}

fn server(plans: Vec<ConnPlan>) -> TestServer {
    TestServer::start(ServerConfig::clear(plans, Duration::from_millis(500)))
}

fn send(setup: &Setup, server: &TestServer) -> Result<tlsresume_smtp::Delivery, SendError> {
    setup.client.connect(server.addr, None, None, &message())
}

fn key(server: &TestServer) -> EhloKey {
    EhloKey::new(server.addr)
}

fronts! {
fn second_connection_speaks_before_the_banner(front) {
    let setup = client(front, "127.0.0.1");
    let server = server(vec![ConnPlan::new(OFFER, &[])]);

    let first = send(&setup, &server).expect("first");
    assert!(first.sent_early.is_empty());
    assert_eq!(first.l_field(), Some("L"));
    assert_eq!(first.cache, [(Phase::Clear, Verdict::Stored)]);
    assert_eq!(
        first.waits_before_data, 3,
        "banner, EHLO, MAIL+RCPT+RCPT+DATA"
    );

    let second = send(&setup, &server).expect("second");
    assert_eq!(second.sent_early, ["EHLO", "MAIL", "RCPT", "RCPT", "DATA"]);
    assert_eq!(second.l_field(), Some("L*"));
    assert_eq!(second.cache, [(Phase::Clear, Verdict::Keep)]);
    assert_eq!(
        second.waits_before_data, 1,
        "one wait: everything went before the banner"
    );
    assert_eq!(second.accepted, ["one@server.test", "two@server.test"]);

    let records = server.records(2);
    assert!(!records[0].early, "the first client waited for the banner");
    assert!(records[1].early, "the second talked before the banner");
    assert_eq!(records[0].l_field, "L.");
    assert_eq!(records[1].l_field, "L*");
    assert_eq!(records[1].commands[0], "EHLO client.test");
    // Exactly two messages, content un-stuffed by the server as sent.
    let messages = server.messages.lock().expect("messages").clone();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[1],
        b"Subject: test\r\n\r\n.leading dot\r\nbody\r\n"
    );
}
}

fronts! {
fn early_pipelining_is_opt_in_and_needs_both_keywords(front) {
    // Not in hosts_pipe_connect (default: none): never early, nothing cached.
    let setup = client(front, "");
    let server = server(vec![ConnPlan::new(OFFER, &[])]);
    for _ in 0..2 {
        let d = send(&setup, &server).expect("send");
        assert!(d.sent_early.is_empty());
        assert!(d.cache.is_empty());
    }
    assert!(setup.store.is_empty());
    // PIPELINING without PIPECONNECT: nothing cached, never early.
    let setup = client(front, "*");
    let server2 = self::server(vec![ConnPlan::new(&["PIPELINING"], &[])]);
    for _ in 0..2 {
        let d = send(&setup, &server2).expect("send");
        assert!(d.sent_early.is_empty());
        assert_eq!(d.cache, [(Phase::Clear, Verdict::Nothing)]);
    }
    assert!(server2.records(2).iter().all(|r| !r.early));
}
}

fronts! {
fn an_expired_entry_is_deleted_and_the_connection_goes_the_normal_way(front) {
    let setup = client(front, "*");
    let server = server(vec![ConnPlan::new(OFFER, &[])]);
    send(&setup, &server).expect("first");
    setup.clock.advance(Duration::from_secs(7 * 24 * 3600));
    let d = send(&setup, &server).expect("7 days later");
    assert!(d.sent_early.is_empty(), "the expired entry was not used");
    assert_eq!(
        d.cache,
        [(Phase::Clear, Verdict::Stored)],
        "and written anew"
    );
    assert!(!server.records(2)[1].early);
}
}

fronts! {
/// Clear SMTP over a link with 20 ms round trips: the waits are exact whatever the timing.
fn waits_over_a_delayed_link_are_counted_exactly(front) {
    let setup = client(front, "*");
    let plain = server(vec![ConnPlan::new(&["PIPELINING"], &[])]);
    let early = TestServer::start(ServerConfig::clear(
        vec![ConnPlan::new(OFFER, &[])],
        Duration::ZERO,
    ));
    let no_pipelining = server(vec![ConnPlan::new(&["8BITMIME"], &[])]);
    let rtt = Duration::from_millis(20);
    let via = |s: &TestServer| DelayProxy::start(s.addr, rtt);
    let (p_plain, p_early, p_none) = (via(&plain), via(&early), via(&no_pipelining));
    let over = |proxy: &DelayProxy| {
        setup
            .client
            .connect(proxy.addr, None, None, &message())
            .expect("send")
    };
    let none = over(&p_none);
    assert_eq!(
        none.waits_before_data, 6,
        "banner, EHLO, MAIL, RCPT, RCPT, DATA one by one"
    );
    assert_eq!(none.l_field(), None);
    let pipelined = over(&p_plain);
    assert_eq!(pipelined.waits_before_data, 3);
    assert_eq!(pipelined.waits, 4, "and the end of data");
    let first = over(&p_early);
    assert_eq!(first.waits_before_data, 3);
    let second = over(&p_early);
    assert_eq!(second.waits_before_data, 1);
    assert_eq!(second.waits, 2);
    assert_eq!(early.message_count(), 2);
}
}

fronts! {
fn bdat_goes_in_the_early_flight_too(front) {
    let setup = client(front, "*");
    let server = server(vec![ConnPlan::new(
        &["PIPELINING", "PIPECONNECT", "CHUNKING"],
        &[],
    )]);
    send(&setup, &server).expect("first");
    let d = send(&setup, &server).expect("second");
    assert_eq!(d.sent_early, ["EHLO", "MAIL", "RCPT", "RCPT", "BDAT"]);
    assert!(d.chunking);
    assert_eq!(
        d.waits, 1,
        "the whole message in one round trip after connect"
    );
    let messages = server.messages.lock().expect("messages").clone();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[1], b"Subject: test\r\n\r\n.leading dot\r\nbody\r\n",
        "BDAT is not dot-stuffed"
    );
}
}

fronts! {
fn starttls_early_and_resumed_through_rustls(front) {
    let setup = client(front, "*");
    let server = TestServer::start(ServerConfig {
        plans: vec![ConnPlan::new(
            OFFER_TLS,
            &["PIPELINING", "PIPECONNECT", "AUTH PLAIN"],
        )],
        pre_banner_wait: Duration::from_millis(500),
        tls: Some(common::rustls_server()),
        tls_on_connect: false,
    });
    let tls = fronts::rustls_upgrade();
    let first = setup
        .client
        .connect(server.addr, None, Some(&tls), &message())
        .expect("first");
    assert!(first.tls && first.sent_early.is_empty());
    assert_eq!(
        first.cache,
        [
            (Phase::Clear, Verdict::Stored),
            (Phase::Tls, Verdict::Stored)
        ]
    );
    assert_eq!(
        first.waits_before_data, 5,
        "banner, EHLO, STARTTLS, EHLO, MAIL..DATA"
    );
    let second = setup
        .client
        .connect(server.addr, None, Some(&tls), &message())
        .expect("second");
    assert_eq!(second.sent_early, ["EHLO", "STARTTLS"]);
    assert_eq!(
        second.sent_early_tls,
        ["EHLO", "MAIL", "RCPT", "RCPT", "DATA"]
    );
    assert_eq!(
        second.waits_before_data, 2,
        "EHLO+STARTTLS, then EHLO+MAIL..DATA under TLS"
    );
    assert_eq!(second.l_field(), Some("L*"));
    let (one, two) = (first.tls_info.expect("info"), second.tls_info.expect("info"));
    assert!(!one.resumption.contains(Resumption::USED));
    assert!(
        two.resumption.contains(Resumption::USED),
        "the second connection resumed TLS as well: {}",
        two.resumption
    );
    let records = server.records(2);
    assert!(records[1].early && records[1].tls);
    assert_eq!(server.message_count(), 2);
}
}

// ---- bad input ----

fronts! {
fn changed_features_rewrite_the_entry_and_withdrawn_pipeconnect_deletes_it(front) {
    let setup = client(front, "*");
    let server = server(vec![
        ConnPlan::new(OFFER, &[]),
        ConnPlan::new(OFFER, &[]),
        // Features changed, PIPECONNECT still offered.
        ConnPlan::new(&["PIPELINING", "PIPECONNECT", "SIZE 1000000"], &[]),
        ConnPlan::new(&["PIPELINING", "PIPECONNECT", "SIZE 1000000"], &[]),
        // PIPECONNECT withdrawn: an early talker now gets a synchronization error.
        ConnPlan::new(&["PIPELINING"], &[]),
        ConnPlan::new(&["PIPELINING"], &[]),
    ]);
    send(&setup, &server).expect("1");
    send(&setup, &server).expect("2: early");
    let third = send(&setup, &server).expect("3: early, features changed, still delivered");
    assert!(!third.sent_early.is_empty());
    assert_eq!(third.cache, [(Phase::Clear, Verdict::Rewritten)]);
    let entry = setup
        .store
        .get_ehlo(&key(&server))
        .expect("get")
        .expect("rewritten");
    assert!(entry
        .clear
        .expect("clear")
        .features
        .contains(tlsresume_smtp::ehlo::EhloFeatures::SIZE));
    let fourth = send(&setup, &server).expect("4: early from the rewritten entry");
    assert_eq!(fourth.cache, [(Phase::Clear, Verdict::Keep)]);

    let err = send(&setup, &server).expect_err("5: the server refuses the early talker");
    assert_eq!(err.stage, Stage::Banner);
    assert!(err.is_temporary(), "a retry goes the normal way: {err}");
    assert!(err.early);
    assert!(
        err.to_string().contains("554 SMTP synchronization error"),
        "{err}"
    );
    assert!(setup.store.is_empty(), "a bad banner deletes the entry");
    let sixth = send(&setup, &server).expect("6: the retry, normal");
    assert!(sixth.sent_early.is_empty());
    assert_eq!(
        server.message_count(),
        5,
        "four before and the retry: none lost, none twice"
    );
}
}

fronts! {
fn pipeconnect_gone_from_a_still_friendly_server_deletes_the_entry(front) {
    let setup = client(front, "*");
    // The server stops advertising PIPECONNECT but (unlike most) tolerates the early talk.
    let server = TestServer::start(ServerConfig::clear(
        vec![
            ConnPlan::new(OFFER, &[]),
            ConnPlan::new(&["PIPELINING"], &[]).banner(Banner::Late(Duration::ZERO)),
        ],
        Duration::from_millis(500),
    ));
    send(&setup, &server).expect("1");
    let d = send(&setup, &server).expect("2: still delivered");
    assert!(!d.sent_early.is_empty());
    assert_eq!(
        d.cache,
        [(
            Phase::Clear,
            Verdict::Deleted(DeleteReason::NoLongerOffered)
        )]
    );
    assert!(setup.store.is_empty());
    assert_eq!(server.message_count(), 2);
}
}

fn bad_banner(front: Front, line: &str, temporary: bool) {
    for early in [false, true] {
        let setup = client(front, "*");
        let server = server(vec![
            ConnPlan::new(OFFER, &[]),
            ConnPlan::new(OFFER, &[]).banner(Banner::Line(line.into())),
        ]);
        if early {
            send(&setup, &server).expect("seed the cache");
        } else {
            let d = send(&setup, &server).expect("1");
            assert!(d.sent_early.is_empty());
            setup.store.remove_ehlo(&key(&server)).expect("remove");
        }
        let err = send(&setup, &server).expect_err("bad banner");
        eprintln!("{line:?} early={early}: {err}");
        assert_eq!(err.stage, Stage::Banner, "{err}");
        assert_eq!(err.is_temporary(), temporary || early, "{err}");
        assert_eq!(err.early, early);
        assert!(setup.store.is_empty(), "no entry left: {err}");
        assert_eq!(
            server.message_count(),
            1,
            "nothing delivered on the bad connection"
        );
        let records = server.records(2);
        if early {
            // Every pipelined reply was read (and discarded) before the client closed. Records
            // come as sessions end, so the seed's (ended by QUIT) may come last.
            let bad = records
                .iter()
                .find(|r| !r.commands.iter().any(|c| c == "QUIT"))
                .expect("the bad connection's record");
            assert_eq!(bad.commands.len(), 5, "{records:?}");
        }
    }
}

fronts! {
fn a_4xx_banner_is_temporary(front) {
    bad_banner(front, "421 busy, try later", true);
}
}

fronts! {
fn a_5xx_banner_is_permanent_unless_the_client_spoke_early(front) {
    bad_banner(front, "554 no mail from you", false);
}
}

fronts! {
fn a_garbage_banner_is_a_temporary_protocol_error(front) {
    bad_banner(front, "SSH-2.0-OpenSSH_9.2", true);
}
}

fronts! {
fn a_server_closing_after_the_banner_fails_cleanly(front) {
    for early in [false, true] {
        let setup = client(front, "*");
        let server = server(vec![
            ConnPlan::new(OFFER, &[]),
            ConnPlan::new(OFFER, &[]).banner(Banner::CloseAfter),
        ]);
        let first = send(&setup, &server).expect("1");
        assert!(first.sent_early.is_empty());
        if !early {
            setup.store.remove_ehlo(&key(&server)).expect("remove");
        }
        let err = send(&setup, &server).expect_err("closed");
        eprintln!("early={early}: {err}");
        assert_eq!(err.stage, Stage::Ehlo);
        assert!(err.is_temporary());
        assert!(
            err.to_string().contains("closed") || err.to_string().contains("reset"),
            "{err}"
        );
        assert!(
            setup.store.is_empty(),
            "a bad EHLO response deletes the entry"
        );
        assert_eq!(server.message_count(), 1);
    }
}
}

fronts! {
fn a_late_banner_is_waited_for(front) {
    let setup = client(front, "*");
    let server = server(vec![
        ConnPlan::new(OFFER, &[]),
        ConnPlan::new(OFFER, &[]).banner(Banner::Late(Duration::from_millis(300))),
    ]);
    send(&setup, &server).expect("1");
    let d = send(&setup, &server).expect("late banner, early client");
    assert!(!d.sent_early.is_empty());
    assert_eq!(d.waits_before_data, 1);
    assert_eq!(server.message_count(), 2);
    // A late banner with a client that waits for it: same message count, normal flow.
    let normal = client(front, "");
    let d = send(&normal, &server).expect("late banner, normal client");
    assert!(d.sent_early.is_empty());
    assert_eq!(server.message_count(), 3);
}
}

fronts! {
fn refused_recipients_and_mail_never_deliver_and_say_why(front) {
    let setup = client(front, "*");
    let server = server(vec![ConnPlan::new(OFFER, &[])]);
    send(&setup, &server).expect("seed");
    for early_round in 0..2 {
        let mut m = message();
        m.rcpt_to = vec!["reject@server.test".into(), "defer@server.test".into()];
        let err = setup
            .client
            .connect(server.addr, None, None, &m)
            .expect_err("every recipient refused");
        assert_eq!(err.stage, Stage::Rcpt, "round {early_round}: {err}");
        assert!(err.is_temporary(), "a 451 among the refusals: {err}");
        m.rcpt_to = vec!["reject@server.test".into()];
        let err = setup
            .client
            .connect(server.addr, None, None, &m)
            .expect_err("refused");
        assert!(!err.is_temporary(), "550 only: {err}");
        m.rcpt_to = vec!["reject@server.test".into(), "ok@server.test".into()];
        let d = setup
            .client
            .connect(server.addr, None, None, &m)
            .expect("one accepted");
        assert_eq!(d.accepted, ["ok@server.test"]);
        assert_eq!(d.rejected[0].1.code(), 550);
    }
    assert_eq!(server.message_count(), 3, "seed + one per round");
}
}

fronts! {
fn tls_on_connect_caches_the_tls_response_and_speaks_before_the_banner(front) {
    let setup = client(front, "*");
    let server = TestServer::start(ServerConfig {
        plans: vec![ConnPlan::new(&[], OFFER)],
        pre_banner_wait: Duration::ZERO,
        tls: Some(common::rustls_server()),
        tls_on_connect: true,
    });
    let tls = fronts::rustls_upgrade();
    let mut deliveries = Vec::new();
    let mut handshakes = Vec::new();
    for _ in 0..2 {
        let (d, info) = setup
            .client
            .send_on_connect(server.addr, &tls, &message())
            .expect("send");
        deliveries.push(d);
        handshakes.push(info);
    }
    assert_eq!(deliveries[0].cache, [(Phase::Tls, Verdict::Stored)]);
    assert!(deliveries[0].sent_early.is_empty() && deliveries[0].tls);
    assert_eq!(deliveries[0].waits_before_data, 3);
    assert_eq!(
        deliveries[1].sent_early,
        ["EHLO", "MAIL", "RCPT", "RCPT", "DATA"]
    );
    assert_eq!(deliveries[1].waits_before_data, 1);
    assert!(handshakes[1].resumption.contains(Resumption::USED));
    assert_eq!(server.message_count(), 2);
}
}

fronts! {
fn tls_upgrade_keys_sessions_on_the_ehlo_host_name_and_reports_them(front) {
    use tlsresume_core::contract::ClientContract;
    use tlsresume_core::{
        certificates_from_pem_file, BackendKind, ClientContext, ClientParams, ClientSettings,
        MemoryStore,
    };
    use tlsresume_smtp::TlsUpgrade;

    let setup = client(front, "*");
    let server = TestServer::start(ServerConfig {
        plans: vec![ConnPlan::new(OFFER_TLS, &["PIPELINING", "PIPECONNECT"])],
        pre_banner_wait: Duration::from_millis(500),
        tls: Some(common::rustls_server()),
        tls_on_connect: false,
    });
    let roots = certificates_from_pem_file(&common::pki("ca.pem")).expect("ca");
    let store = Arc::new(MemoryStore::new(8));
    let settings = ClientSettings::builder(roots)
        .store(store.clone())
        .build()
        .expect("settings");
    let backend: Arc<dyn ClientContext> =
        Arc::new(tlsresume_rustls::Client::new(settings.clone()).expect("client"));
    let tls = TlsUpgrade::new(backend);
    // No server name anywhere: a clear error, nothing sent.
    let err = setup
        .client
        .connect(server.addr, None, Some(&tls), &message())
        .expect_err("no server name");
    assert_eq!(err.stage, Stage::StartTls);
    assert!(err.detail.contains("no server name"), "{err}");
    let tls = tls.server_name("mx.tlsresume.test");
    let first = setup
        .client
        .connect(server.addr, None, Some(&tls), &message())
        .expect("first");
    let info = first.tls_info.expect("the upgrade reports its session");
    assert!(!info.resumed);
    let with_lb = ClientParams::new("mx.tlsresume.test", server.addr).lb_name("test.server");
    let without = ClientParams::new("mx.tlsresume.test", server.addr);
    let stored = |p: &ClientParams| {
        tlsresume_core::SessionStore::get(&*store, &settings.cache_key(BackendKind::Rustls, p))
            .expect("store")
            .is_some()
    };
    assert!(
        stored(&with_lb) && !stored(&without),
        "the session is keyed on the EHLO host name"
    );
    let second = setup
        .client
        .connect(server.addr, None, Some(&tls), &message())
        .expect("second");
    assert_eq!(second.l_field(), Some("L*"));
    assert!(second.tls_info.expect("info").resumed, "TLS resumed too");
    assert_eq!(server.message_count(), 2);
}
}

fronts! {
/// `TlsUpgrade::dane`: the server is verified by DANE against the TLSA records given (here
/// `3 0 0`, its whole certificate) and not by the trust anchors, which do not cover it; a
/// record of another certificate fails STARTTLS, nothing of the message sent.
fn tls_upgrade_verifies_by_dane_with_the_records_given(front) {
    use tlsresume_core::{certificates_from_pem_file, ClientContext, ClientSettings, TlsaRecord};
    use tlsresume_smtp::TlsUpgrade;

    let setup = client(front, "");
    let server = TestServer::start(ServerConfig {
        plans: vec![ConnPlan::new(OFFER_TLS, &["PIPELINING"]); 2],
        pre_banner_wait: Duration::from_millis(0),
        tls: Some(common::rustls_server()),
        tls_on_connect: false,
    });
    let untrusted = certificates_from_pem_file(&common::pki("untrusted.pem")).expect("cert");
    let leaf = certificates_from_pem_file(&common::pki("server-rsa.pem")).expect("cert");
    let settings = ClientSettings::builder(untrusted.clone())
        .build()
        .expect("settings");
    let backend: Arc<dyn ClientContext> =
        Arc::new(tlsresume_rustls::Client::new(settings).expect("client"));
    let record = |der: &[u8]| TlsaRecord::new(3, 0, 0, der.to_vec());
    let tls = TlsUpgrade::new(backend.clone())
        .server_name("mx.tlsresume.test")
        .dane(vec![record(&leaf[0])]);
    let delivered = setup
        .client
        .connect(server.addr, None, Some(&tls), &message())
        .expect("DANE-verified delivery");
    let info = delivered.tls_info.expect("the upgrade reports its session");
    assert_eq!(
        info.verified_by.dane().map(|a| a.record.clone()),
        Some(record(&leaf[0]))
    );
    let tls = TlsUpgrade::new(backend)
        .server_name("mx.tlsresume.test")
        .dane(vec![record(&untrusted[0])]);
    let err = setup
        .client
        .connect(server.addr, None, Some(&tls), &message())
        .expect_err("no record matches");
    assert_eq!(err.stage, Stage::StartTls);
    assert!(err.detail.contains("no TLSA record matched"), "{err}");
    assert_eq!(server.message_count(), 1);
}
}
