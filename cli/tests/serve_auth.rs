//! `serve --auth-file`: SMTP AUTH under STARTTLS on every backend through the crate's client,
//! and the log line's `A=` and `ext=` (the extensions the messages used).

use std::net::SocketAddr;
use std::time::Duration;

mod common;

use common::{assert_one_line_error, run, tls_client, Server};
use tlsresume::smtp::{Client, ClientConfig, Credentials, Dsn, Message, Notify, TlsUpgrade};

/// A users file for `--auth-file`, removed by the caller.
fn users_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("tlsresume-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("users file");
    path
}

#[test]
fn auth_and_the_extensions_in_the_log_line() {
    let file = users_file("auth-users", "# test users\nuser:s3cret\n");
    for backend in ["openssl", "gnutls", "rustls"] {
        let server = Server::start(&[
            "--backend",
            backend,
            "--starttls",
            "smtp",
            "--auth-file",
            file.to_str().expect("path"),
        ]);
        let peer: SocketAddr = server.addr.parse().expect("addr");
        let mut config = ClientConfig::new("client.tlsresume.test").expect("name");
        config.timeout = Duration::from_secs(20);
        config.auth = Some(Credentials::new("user", "s3cret").expect("credentials"));
        let mut message = Message::new(
            "a@example.test",
            ["b@exämple.test"],
            "Subject: café\r\n\r\nhi\r\n",
        );
        message.dsn = Dsn {
            notify: Some(Notify::NEVER),
            ..Dsn::default()
        };
        let tls = TlsUpgrade::new(tls_client(backend)).server_name("mx.tlsresume.test");
        let d = Client::new(config)
            .connect(peer, None, Some(&tls), &message)
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        assert!(d.auth.is_some(), "{backend}");
        let line = server.line();
        assert!(
            line.contains(" A=user messages=1 ext=8BITMIME,SMTPUTF8,DSN"),
            "{backend}: {line}"
        );
        assert!(!line.contains("s3cret"), "{line}");
    }
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_bad_auth_file_is_refused_before_listening() {
    let file = users_file("auth-users-bad", "user:pass\nno colon here\n");
    let path = file.to_str().expect("path");
    let r = run(&["serve", "--starttls", "smtp", "--auth-file", path]);
    assert_one_line_error(&r, "--auth-file");
    assert!(r.stderr.contains("line 2"), "{r:?}");
    let r = run(&["serve", "--plain", "--auth-file", path]);
    assert_eq!(r.code, Some(2), "{r:?}");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn probe_authenticates_under_tls_and_never_in_clear() {
    let file = users_file("auth-users-probe", "user:s3cret\n");
    let path = file.to_str().expect("path");
    let server = Server::start(&["--starttls", "smtp", "--auth-file", path]);
    let message = [
        "--mail-from",
        "a@example.test",
        "--rcpt-to",
        "b@example.test",
    ];
    let mut args = vec![
        "probe",
        &server.addr,
        "--starttls",
        "smtp",
        "--auth-file",
        path,
    ];
    args.extend(message);
    let r = run(&args);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains(" A=PLAIN "), "{r:?}");
    assert!(server.line().contains(" A=user messages=1"));
    // In clear the credentials are refused unsent: the connection fails at AUTH.
    let plain = Server::start(&["--plain"]);
    let mut args = vec!["probe", &plain.addr, "--plain", "--auth-file", path];
    args.extend(message);
    let r = run(&args);
    assert_ne!(r.code, Some(0), "{r:?}");
    let said = format!("{}{}", r.stdout, r.stderr);
    assert!(said.contains("AUTH refused in clear"), "{r:?}");
    assert!(!plain.line().contains("messages="), "nothing sent");
    let _ = std::fs::remove_file(&file);
}
