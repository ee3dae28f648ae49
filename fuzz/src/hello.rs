//! The rustls server's ticket decrypt path without a socket: a rustls server configured as the
//! backend configures it (ring provider, the core sealer as its ticketer) reads one ClientHello
//! that presents a ticket, built here byte by byte.
//!
//! The ticketer repeats the backend's `decrypt`: open the ticket with the sealer, hand the
//! state inside to rustls. rustls then decodes that state (its `ServerSessionValue`), which is
//! where a forged or damaged state would bite.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::crypto::ring::default_provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::ProducesTickets;
use rustls::{ServerConfig, ServerConnection};
use tlsresume_core::{Identity, UnixTime};

use crate::{sealer, NOW};

/// The backend's ticketer over the fuzz sealer, at a clock reading set per input. When
/// `record` is on it keeps every state it seals (the seed generator reads them).
#[derive(Debug)]
pub struct Ticketer {
    now: Mutex<UnixTime>,
    /// The states sealed so far, when recording.
    pub sealed: Mutex<Vec<Vec<u8>>>,
    /// How many tickets rustls asked this ticketer to decrypt.
    pub decrypts: AtomicU64,
    record: bool,
}

impl Ticketer {
    /// A ticketer at [`NOW`].
    pub fn new(record: bool) -> Self {
        Self {
            now: Mutex::new(NOW),
            sealed: Mutex::new(Vec::new()),
            decrypts: AtomicU64::new(0),
            record,
        }
    }

    /// Moves the ticketer's clock.
    pub fn set_now(&self, now: UnixTime) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = now;
    }

    fn now(&self) -> UnixTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        6 * 3600
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        if self.record {
            self.sealed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(plain.to_vec());
        }
        sealer().seal(plain, self.now()).ok()
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.decrypts.fetch_add(1, Ordering::Relaxed);
        let mut opened = sealer().open(cipher, self.now()).ok()?;
        // As the backend: a state rustls would panic on is refused.
        if !tlsresume_rustls::session_state_is_resumable(&opened.state) {
            return None;
        }
        Some(std::mem::take(&mut *opened.state))
    }
}

/// The test PKI's ECDSA server identity (committed PEM files).
fn identity() -> Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let id = Identity::from_pem(
        include_bytes!("../../tests/pki/server-ecdsa.pem"),
        include_bytes!("../../tests/pki/server-ecdsa.key"),
    )
    .ok()?;
    let chain = id
        .chain()
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der().to_vec()));
    Some((chain, key))
}

/// A rustls server configuration with `ticketer`, TLS 1.2 and 1.3, as the backend builds it.
pub fn server_config(ticketer: Arc<Ticketer>) -> Option<Arc<ServerConfig>> {
    let (chain, key) = identity()?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .ok()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .ok()?;
    config.ticketer = ticketer;
    // TLS 1.3: one ticket per handshake keeps the seed generator's output small.
    config.send_tls13_tickets = 1;
    Some(Arc::new(config))
}

/// The fuzz targets' server: one configuration and one ticketer per process.
///
/// Checked once: a hello of each version reaches the ticketer, else the target would fuzz
/// nothing (`None`).
pub fn fuzz_server() -> Option<&'static (Arc<ServerConfig>, Arc<Ticketer>)> {
    static SERVER: OnceLock<Option<(Arc<ServerConfig>, Arc<Ticketer>)>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let ticketer = Arc::new(Ticketer::new(false));
            let config = server_config(ticketer.clone())?;
            for tls13 in [false, true] {
                let before = ticketer.decrypts.load(Ordering::Relaxed);
                serve_hello(&config, &client_hello(&[7; 100], tls13));
                if ticketer.decrypts.load(Ordering::Relaxed) != before + 1 {
                    return None;
                }
            }
            Some((config, ticketer))
        })
        .as_ref()
}

/// Feeds `hello` to a new server connection; the result (a resumption, a full handshake or an
/// alert) does not matter, only that rustls and the ticketer get through it.
pub fn serve_hello(config: &Arc<ServerConfig>, hello: &[u8]) {
    let Ok(mut conn) = ServerConnection::new(config.clone()) else {
        return;
    };
    let mut input = hello;
    while !input.is_empty() {
        match conn.read_tls(&mut input) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if conn.process_new_packets().is_err() {
                    break;
                }
            }
        }
    }
    let mut out = Vec::new();
    while conn.wants_write() {
        if conn.write_tls(&mut out).is_err() {
            break;
        }
    }
    std::hint::black_box(out);
}

fn u16_len(out: &mut Vec<u8>, body: &[u8]) {
    let len = u16::try_from(body.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body[..usize::from(len)]);
}

fn extension(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    u16_len(out, body);
}

/// The longest ticket put in a hello: the hello then fits one 16 KiB record.
pub const MAX_TICKET: usize = 16_000;

/// A ClientHello presenting `ticket`: TLS 1.2 in the session-ticket extension (RFC 5077), or
/// TLS 1.3 as the first pre-shared-key identity (with a binder that cannot verify: rustls
/// decrypts and decodes the ticket before it checks the binder). ECDSA suites only, for the
/// test PKI's ECDSA key, with only RSA signature schemes offered (see below). Returned as TLS records.
pub fn client_hello(ticket: &[u8], tls13: bool) -> Vec<u8> {
    let ticket = &ticket[..ticket.len().min(MAX_TICKET)];
    let mut body = Vec::new();
    body.extend_from_slice(&[0x03, 0x03]);
    body.extend_from_slice(&[0x11; 32]); // random
    body.push(32);
    body.extend_from_slice(&[0x22; 32]); // legacy session id
    let suites: &[u16] = if tls13 {
        &[0x1301, 0x1302, 0x1303]
    } else {
        &[0xc02b, 0xc02c, 0xcca9, 0x00ff]
    };
    let suites: Vec<u8> = suites.iter().flat_map(|s| s.to_be_bytes()).collect();
    u16_len(&mut body, &suites);
    body.extend_from_slice(&[1, 0]); // null compression

    let mut ext = Vec::new();
    extension(&mut ext, 0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]); // x25519, secp256r1
    extension(&mut ext, 0x000b, &[1, 0]); // uncompressed points
                                          // RSA schemes only: the ECDSA key cannot sign, so a ticket that does not resume ends the
                                          // handshake soon after the ticket was tried (TLS 1.2: before the key exchange; TLS 1.3: at
                                          // the signature), which keeps the target fast. A resumption needs no signature.
    extension(&mut ext, 0x000d, &[0, 4, 0x04, 0x01, 0x08, 0x04]);
    extension(&mut ext, 0x0017, &[]); // extended master secret
    if tls13 {
        extension(&mut ext, 0x002b, &[2, 0x03, 0x04]); // supported_versions: TLS 1.3
        let mut share = vec![0x00, 0x1d, 0x00, 0x20, 0x09];
        share.extend_from_slice(&[0; 31]); // the X25519 base point as the client's share
        let mut shares = Vec::new();
        u16_len(&mut shares, &share);
        extension(&mut ext, 0x0033, &shares);
        extension(&mut ext, 0x002d, &[1, 1]); // psk_dhe_ke
        let mut identity = Vec::new();
        u16_len(&mut identity, ticket);
        identity.extend_from_slice(&1000u32.to_be_bytes()); // obfuscated age
        let mut psk = Vec::new();
        u16_len(&mut psk, &identity);
        let mut binder = vec![32];
        binder.extend_from_slice(&[0x33; 32]);
        u16_len(&mut psk, &binder);
        extension(&mut ext, 0x0029, &psk); // pre_shared_key, last
    } else {
        extension(&mut ext, 0x0023, ticket); // session_ticket
    }
    u16_len(&mut body, &ext);

    let mut handshake = vec![0x01];
    let len = u32::try_from(body.len()).unwrap_or(0);
    handshake.extend_from_slice(&len.to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut records = Vec::new();
    for chunk in handshake.chunks(16_384) {
        records.extend_from_slice(&[0x16, 0x03, 0x01]);
        u16_len(&mut records, chunk);
    }
    records
}
