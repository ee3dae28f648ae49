//! Shared helpers: the committed test PKI, a one-connection loopback server thread, a global
//! mutex serialising every test (GnuTLS's clock is process-wide).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use tlsresume_core::*;
use tlsresume_gnutls::{Client, Server};

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises tests: the GnuTLS clock slot is process-wide.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn pki(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/pki")
        .join(name)
}

pub fn identity(kind: &str) -> Identity {
    Identity::from_pem_files(&pki(&format!("{kind}.pem")), &pki(&format!("{kind}.key")))
        .expect("identity")
}

pub fn roots() -> Vec<Vec<u8>> {
    certificates_from_pem_file(&pki("ca.pem")).expect("ca")
}

pub const HOUR: Duration = Duration::from_secs(3600);

/// A server and a client on one virtual clock and one key source.
pub struct Pair {
    pub clock: ManualClock,
    pub server: ServerSettings,
    pub client: ClientSettings,
    pub store: Arc<MemoryStore>,
    /// One listener for the pair's life: the port is part of the client's cache key.
    pub listener: TcpListener,
}

impl Pair {
    /// One version, the Exim-compatible policy.
    pub fn exim(kind: &str, version: ProtocolVersion) -> Self {
        Self::new(
            kind,
            Versions::only(version),
            ResumptionPolicy::exim_compatible(),
        )
    }

    pub fn new(kind: &str, versions: Versions, policy: ResumptionPolicy) -> Self {
        let clock = ManualClock::new(UnixTime::now());
        let mut server = ServerSettings::new(identity(kind));
        server.ticket_policy = Some(TicketPolicy::GNUTLS);
        server.clock = Arc::new(clock.clone());
        server.versions = versions;
        server.resumption = policy.clone();
        let store = Arc::new(MemoryStore::new(16));
        let mut client = ClientSettings::new(roots());
        client.clock = Arc::new(clock.clone());
        client.versions = versions;
        client.resumption = policy;
        client.store = store.clone();
        Self {
            clock,
            server,
            client,
            store,
            listener: TcpListener::bind("127.0.0.1:0").expect("bind"),
        }
    }

    /// One connection: handshake, "ping"/"pong" (the client's read brings TLS 1.3 tickets),
    /// close. Returns (client, server) infos.
    pub fn connect(&self) -> Result<(SessionInfo, SessionInfo), String> {
        let server = Server::new(self.server.clone()).map_err(|e| e.to_string())?;
        let client = Client::new(self.client.clone()).map_err(|e| e.to_string())?;
        run(&self.listener, &server, &client, "mx.tlsresume.test")
    }
}

pub fn run(
    listener: &TcpListener,
    server: &Server,
    client: &Client,
    name: &str,
) -> Result<(SessionInfo, SessionInfo), String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    thread::scope(|scope| {
        let handle = scope.spawn(move || -> Result<SessionInfo, String> {
            let (tcp, peer) = listener.accept().map_err(|e| e.to_string())?;
            tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let params = ServerParams::new(peer, addr);
            let mut stream = server
                .accept(Box::new(tcp), &params)
                .map_err(|e| format!("server: {e}"))?;
            let mut buf = [0u8; 4];
            stream
                .read_exact(&mut buf)
                .map_err(|e| format!("server read: {e}"))?;
            stream.write_all(b"pong").map_err(|e| e.to_string())?;
            let _ = stream.shutdown();
            Ok(stream.info().clone())
        });
        let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let params = ClientParams::new(name, addr);
        let client_result = (|| -> Result<SessionInfo, String> {
            let mut stream = client
                .connect(Box::new(tcp), &params)
                .map_err(|e| format!("client: {e}"))?;
            stream.write_all(b"ping").map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            stream
                .read_exact(&mut buf)
                .map_err(|e| format!("client read: {e}"))?;
            let _ = stream.shutdown();
            Ok(stream.info().clone())
        })();
        let server_result = handle
            .join()
            .map_err(|_| "server thread panicked".to_string())?;
        match (client_result, server_result) {
            (Ok(c), Ok(s)) => Ok((c, s)),
            (Err(c), Err(s)) => Err(format!("{c}; {s}")),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    })
}

pub fn show(label: &str, (c, s): &(SessionInfo, SessionInfo)) {
    eprintln!(
        "{label}: client bits={:#04x} resumed={} exim={} native={} iana={} ver={} ocsp={:?} lt={:?} peers={} | server bits={:#04x} resumed={} exim={} sni={:?} ocsp={:?} lt={:?}",
        c.resumption.bits(), c.resumed, c.cipher.exim, c.cipher.native, c.cipher.iana, c.verification, c.ocsp, c.ticket_lifetime, c.peer_certificates.len(),
        s.resumption.bits(), s.resumed, s.cipher.exim, s.sni, s.ocsp, s.ticket_lifetime
    );
}
