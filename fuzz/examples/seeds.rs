//! Writes the fuzz seed corpora from data the code really produces: loopback handshakes on
//! every backend (TLS 1.2 and 1.3, full then resumed) with the on-disk cache as the client
//! store, and in-memory rustls handshakes whose ticket states are recorded.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds -- [OUT_DIR]` (default
//! `fuzz/corpus`); `fuzz/seeds.sh` runs it. Each file is named by the SHA-256 of its bytes, as
//! libFuzzer names corpus files, so reruns do not duplicate.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};
use tlsresume::stores::DiskStore;
use tlsresume::{
    BackendKind, CacheEntry, ClientParams, ClientSettings, Identity, ManualClock, ProtocolVersion,
    ServerParams, ServerSettings, SessionInfo, Versions,
};
use tlsresume_fuzz::hello::{server_config, Ticketer};
use tlsresume_fuzz::{sealer, NOW};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn pki(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/pki")
        .join(name)
}

/// The corpus directory being written.
struct Corpus(PathBuf);

impl Corpus {
    fn add(&self, target: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.0.join(target);
        std::fs::create_dir_all(&dir)?;
        let name: String = ring::digest::digest(&ring::digest::SHA256, bytes)
            .as_ref()
            .iter()
            .take(20)
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(dir.join(name), bytes)?;
        Ok(())
    }
}

/// What one handshake left: both sides' reports.
fn connect(
    server: &Arc<dyn tlsresume::ServerContext>,
    client: &Arc<dyn tlsresume::ClientContext>,
    listener: &TcpListener,
) -> Result<(SessionInfo, SessionInfo)> {
    let addr: SocketAddr = listener.local_addr()?;
    let server = Arc::clone(server);
    let listener = listener.try_clone()?;
    let handle = thread::spawn(move || -> io::Result<SessionInfo> {
        let (tcp, peer) = listener.accept()?;
        let params = ServerParams::new(peer, tcp.local_addr()?);
        let mut tls = server
            .accept(Box::new(tcp), &params)
            .map_err(io::Error::other)?;
        tls.write_all(b"220 mx.tlsresume.test ESMTP tlsresume\r\n")?;
        tls.flush()?;
        let mut quit = [0u8; 6];
        tls.read_exact(&mut quit)?;
        let info = tls.info();
        let _ = tls.shutdown();
        Ok(info)
    });
    let params = ClientParams::new("mx.tlsresume.test", addr);
    let mut tls = client.connect(Box::new(TcpStream::connect(addr)?), &params)?;
    let mut greeting = [0u8; 39];
    tls.read_exact(&mut greeting)?;
    tls.write_all(b"QUIT\r\n")?;
    tls.flush()?;
    let client_info = tls.info();
    let server_info = handle.join().map_err(|_| "server thread panicked")??;
    Ok((client_info, server_info))
}

/// Two handshakes (full, then resumed) per backend and version, the client caching in a real
/// on-disk store; everything they produce goes into the corpora.
fn backends(out: &Corpus, dir: &Path) -> Result<()> {
    // The real time: the libraries check the test PKI's validity against the clock.
    let clock = ManualClock::starting_now();
    let identity = Identity::from_pem_files(&pki("server-ecdsa.pem"), &pki("server-ecdsa.key"))?;
    let roots = tlsresume::certificates_from_pem_file(&pki("ca.pem"))?;
    let mut descriptions = BTreeSet::new();
    let mut resumptions = BTreeSet::new();
    for kind in [
        BackendKind::Openssl,
        BackendKind::Gnutls,
        BackendKind::Rustls,
    ] {
        for version in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
            let path = dir.join(format!("{}-{}.sqlite", kind.name(), version.short()));
            // The key the session targets open cache entries with, where the disk store keeps
            // its key (beside the file), so the store seals what it stores under it.
            let mut key_path = path.clone().into_os_string();
            key_path.push(".key");
            std::fs::write(&key_path, tlsresume_fuzz::session_key().as_bytes())?;
            let store = Arc::new(DiskStore::open(&path)?);
            let mut ss = ServerSettings::new(identity.clone());
            ss.clock = Arc::new(clock.clone());
            ss.versions = Versions::only(version);
            let mut cs = ClientSettings::new(roots.clone());
            cs.clock = Arc::new(clock.clone());
            cs.versions = Versions::only(version);
            cs.store = store.clone();
            let server = tlsresume::backends::server(kind, ss)?;
            let client = tlsresume::backends::client(kind, cs)?;
            let listener = TcpListener::bind("127.0.0.1:0")?;
            for _ in 0..2 {
                let (c, s) = connect(&server, &client, &listener)?;
                for info in [&c, &s] {
                    resumptions.insert(info.resumption.bits());
                    if kind == BackendKind::Gnutls {
                        descriptions.insert((info.cipher.native.clone(), info.cipher.bits));
                    }
                }
                clock.advance(std::time::Duration::from_secs(60));
            }
            drop(client);
            rows(out, &path)?;
        }
    }
    for (desc, bits) in descriptions {
        let mut seed = bits.to_be_bytes().to_vec();
        seed.extend_from_slice(desc.as_bytes());
        out.add("gnutls_desc", &seed)?;
    }
    for bits in resumptions {
        out.add("resumption", bits.to_string().as_bytes())?;
        out.add("resumption", format!("{bits:#04x}").as_bytes())?;
    }
    Ok(())
}

/// The rows of one on-disk cache file, raw (as the disk target reads them) and decoded (as the
/// entry and session targets read them).
fn rows(out: &Corpus, path: &Path) -> Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    let mut stmt = conn.prepare("SELECT entry, expires_at, key FROM sessions")?;
    let rows: Vec<(Vec<u8>, i64, Vec<u8>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<std::result::Result<_, _>>()?;
    if rows.is_empty() {
        return Err(format!("{}: no session was stored", path.display()).into());
    }
    for (bytes, expires_at, key) in rows {
        let mut seed = vec![0u8];
        seed.extend_from_slice(&expires_at.to_be_bytes());
        seed.extend_from_slice(&[0; 4]);
        seed.extend_from_slice(&bytes);
        out.add("disk_row", &seed)?;
        for mode in [0u8, 1] {
            out.add("cache_entry", &[&[mode], bytes.as_slice()].concat())?;
        }
        let entry = CacheEntry::decode(&bytes)?;
        let session_key = tlsresume_fuzz::session_key();
        let key: [u8; 32] = key.as_slice().try_into()?;
        let opened = session_key.open_session(
            entry.backend.name(),
            &tlsresume_core::CacheKey::from_bytes(key),
            &entry,
        );
        match entry.backend {
            BackendKind::Openssl => {
                if let Some(der) = opened {
                    out.add("openssl_session", der)?;
                }
            }
            BackendKind::Gnutls => {
                out.add("gnutls_session", &[&key[..], &bytes].concat())?;
                if let Some(inner) = opened {
                    out.add("gnutls_set_data", inner)?;
                }
            }
            BackendKind::Rustls => {}
        }
    }
    Ok(())
}

/// Moves TLS records both ways until neither side has anything to say.
fn pump(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<()> {
    for _ in 0..20 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf)?;
        }
        let mut to_server = buf.as_slice();
        while !to_server.is_empty() {
            server.read_tls(&mut to_server)?;
            server.process_new_packets()?;
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf)?;
        }
        let mut to_client = buf.as_slice();
        while !to_client.is_empty() {
            client.read_tls(&mut to_client)?;
            client.process_new_packets()?;
        }
        if !client.is_handshaking()
            && !server.is_handshaking()
            && !client.wants_write()
            && !server.wants_write()
        {
            return Ok(());
        }
    }
    Err("handshake did not finish".into())
}

/// In-memory rustls handshakes against the fuzz server configuration, recording the session
/// states its ticketer seals: the plaintext seeds of the ticket targets.
fn rustls_states(out: &Corpus) -> Result<()> {
    let ticketer = Arc::new(Ticketer::new(true));
    let config = server_config(ticketer.clone()).ok_or("rustls server configuration")?;
    let mut roots = RootCertStore::empty();
    for der in tlsresume::certificates_from_pem_file(&pki("ca.pem"))? {
        roots.add(CertificateDer::from(der))?;
    }
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let client_config = Arc::new(
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[version])?
                .with_root_certificates(roots.clone())
                .with_no_client_auth(),
        );
        for _ in 0..2 {
            let name = ServerName::try_from("mx.tlsresume.test")?;
            let mut client = ClientConnection::new(client_config.clone(), name)?;
            let mut server = ServerConnection::new(config.clone())?;
            pump(&mut client, &mut server)?;
        }
    }
    let states = ticketer.sealed.lock().map_err(|_| "poisoned")?.clone();
    if states.is_empty() {
        return Err("rustls sealed no ticket".into());
    }
    for state in states {
        let ticket = sealer().seal(&state, NOW)?;
        let mut seed = vec![0u8; 4];
        seed.extend_from_slice(&ticket);
        out.add("ticket_open", &seed)?;
        for mode in 0..4u8 {
            let mut seed = vec![mode, 0, 0, 0, 0];
            seed.extend_from_slice(if mode & 2 == 0 { &ticket } else { &state });
            out.add("rustls_ticket", &seed)?;
        }
    }
    Ok(())
}

/// SMTP replies as the scenario engine's server and common MTAs send them, and host lists as
/// the documentation and tests write them.
fn texts(out: &Corpus) -> Result<()> {
    let replies: [(u8, &str); 9] = [
        (0, "220 mx.tlsresume.test ESMTP tlsresume\r\n"),
        (
            1,
            "250-mx.tlsresume.test hello\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
        ),
        (0, "220 TLS go ahead\r\n"),
        (1, "250-mx.tlsresume.test hello\r\n250 SIZE 52428800\r\n"),
        (
            1,
            "250-mx.example.net Hello client [192.0.2.1]\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-STARTTLS\r\n250 HELP\r\n",
        ),
        (2, "421 mx.example.net too many connections, try later\r\n"),
        (3, "220-mx.example.net ESMTP\r\n220 ready\r\n"),
        (1, "250 ok\nrest of the stream"),
        (
            1,
            "250-mx.example.net\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250-AUTH PLAIN LOGIN\r\n250-LIMITS MAILMAX=10 RCPTMAX=100\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n",
        ),
    ];
    for (pick, reply) in replies {
        let mut seed = vec![pick];
        seed.extend_from_slice(reply.as_bytes());
        out.add("smtp_reply", &seed)?;
        if pick == 1 {
            out.add("ehlo_response", reply.as_bytes())?;
            // The cache entry the EHLO cache writes for this response.
            let mut input = reply.as_bytes();
            let read = tlsresume_smtp::read_reply_unbuffered(&mut input)?;
            let view = tlsresume::smtp::EhloResponse::parse(read.lines())?.view();
            for (clear, tls) in [
                (Some(view.clone()), None),
                (None, Some(view.clone())),
                (Some(view.clone()), Some(view)),
            ] {
                let entry = tlsresume::smtp::EhloEntry {
                    stored_at: NOW,
                    clear,
                    tls,
                }
                .encode();
                for mode in [0u8, 1] {
                    out.add("ehlo_entry", &[&[mode], entry.as_slice()].concat())?;
                }
                let mut row = vec![0u8];
                row.extend_from_slice(&[0; 8]);
                row.extend_from_slice(&[0; 4]);
                row.extend_from_slice(&entry);
                out.add("disk_row", &row)?;
            }
        }
    }
    let lists = [
        "*",
        "",
        "!192.0.2.7 : 192.0.2.0/24 : *.example.net",
        "<; ::1 ; 2001:db8::/32 ; !2001:db8::7",
        "::::1 : 127.0.0.1",
        "mx.example.net : !*.bad.example : 198.51.100.0/22",
        "!192.0.2.1",
        "0.0.0.0/0 : ::/0",
    ];
    // The test PKI's committed OCSP responses (`openssl ocsp`, `tests/pki/regenerate.sh`), for
    // their own leaf (pick 0: ECDSA, 1: RSA) and for the other.
    for (pick, file) in [(0u8, "server-ecdsa.ocsp.der"), (1, "server-rsa.ocsp.der")] {
        let der = std::fs::read(pki(file))?;
        for leaf in [pick, 1 - pick] {
            out.add(
                "ocsp_response",
                &[&[leaf, 0, 0, 0, 0], der.as_slice()].concat(),
            )?;
        }
    }
    for (i, list) in lists.into_iter().enumerate() {
        let mut seed = vec![u8::try_from(i).unwrap_or(0)];
        seed.extend_from_slice(list.as_bytes());
        out.add("hostlist", &seed)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let out = Corpus(
        std::env::args()
            .nth(1)
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")),
    );
    let tmp = std::env::temp_dir().join(format!("tlsresume-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let result = backends(&out, &tmp)
        .and_then(|()| rustls_states(&out))
        .and_then(|()| texts(&out));
    let _ = std::fs::remove_dir_all(&tmp);
    result?;
    println!("seed corpora written to {}", out.0.display());
    Ok(())
}
