//! What the handshake benchmarks share: the cases, and for each backend a server and a client
//! through tlsresume and through the library directly (`raw`), configured alike.
//!
//! - **raw rustls**: `ServerConfig`/`ClientConfig` with the ring provider,
//!   `rustls::crypto::ring::Ticketer::new()`, `NoServerSessionStorage`, one TLS 1.3 ticket,
//!   `Resumption::in_memory_sessions` on the client (`disabled()` for full handshakes).
//! - **raw OpenSSL**: plain `SslContext` builders configured as the backend does (session
//!   cache off and `num_tickets(1)` on the server, OpenSSL's built-in ticket keys; the same
//!   roots and host check on the client; `SSL_OP_NO_TICKET` for full handshakes). Resumption
//!   as the backend does it: the new-session callback keeps the session as DER, the next
//!   connection offers it with `tlsresume_openssl::raw::set_session_der`.
//! - **raw GnuTLS**: the backend's safe wrapper (`tlsresume_gnutls::raw`): the same priority
//!   string, `gnutls_session_ticket_enable_server` with a fixed 64-byte master key and
//!   `gnutls_db_set_cache_expiration(7200)` on the server; on the client the certificate
//!   check (`gnutls_certificate_verify_peers3` with the host name), `gnutls_session_get_data2`
//!   once a ticket is there and `gnutls_session_set_data` on the next connection.
//!
//! Every server and client is `Fn + Send + Sync`, so one of each can serve several threads
//! (the scaling bench).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use openssl::pkey::PKey;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslSessionCacheMode, SslVerifyMode,
    SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use rustls::client::Resumption as RustlsResumption;
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
    ServerName,
};
use rustls::server::NoServerSessionStorage;
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, RootCertStore, ServerConfig, ServerConnection,
    StreamOwned,
};
use tlsresume::backends;
use tlsresume_compare::loopback;
use tlsresume_compare::Pki;
use tlsresume_core::{
    BackendKind, ClientParams, ClientSettings, HostList, Identity, KeyFormat, ProtocolVersion,
    ResumptionPolicy, ServerParams, ServerSettings, Versions,
};
use tlsresume_gnutls::raw as gnutls;

pub const SERVER_NAME: &str = "mx.tlsresume.test";

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Res<T> = Result<T, BoxError>;

/// The server side of one connection.
pub type ServeFn = Arc<dyn Fn(UnixStream) -> Res<()> + Send + Sync>;
/// The client side of one connection; with `check`, reports whether it resumed.
pub type ConnectFn = Arc<dyn Fn(UnixStream, bool) -> Res<Option<bool>> + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cert {
    Ecdsa,
    Rsa,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    Full,
    Resumed,
}

/// One benchmark's case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Case {
    pub backend: BackendKind,
    pub tls: ProtocolVersion,
    pub cert: Cert,
    pub mode: Mode,
}

impl Case {
    pub fn group(&self) -> String {
        format!(
            "handshake/{}/{}/{}/{}",
            self.backend,
            match self.tls {
                ProtocolVersion::Tls12 => "tls12",
                _ => "tls13",
            },
            match self.cert {
                Cert::Ecdsa => "ecdsa",
                Cert::Rsa => "rsa",
            },
            match self.mode {
                Mode::Full => "full",
                Mode::Resumed => "resumed",
            }
        )
    }

    pub fn pki(&self) -> Pki {
        match self.cert {
            Cert::Ecdsa => Pki::committed(),
            Cert::Rsa => Pki::committed_rsa(),
        }
        .expect("committed test PKI")
    }

    /// The server's certificate chain and key as PEM (GnuTLS loads a chain only from PEM).
    pub fn server_pem(&self) -> (&'static [u8], &'static [u8]) {
        match self.cert {
            Cert::Ecdsa => (
                include_bytes!("../../pki/server-ecdsa.pem"),
                include_bytes!("../../pki/server-ecdsa.key"),
            ),
            Cert::Rsa => (
                include_bytes!("../../pki/server-rsa.pem"),
                include_bytes!("../../pki/server-rsa.key"),
            ),
        }
    }

    pub fn resumes(&self) -> bool {
        self.mode == Mode::Resumed
    }
}

/// Which implementation runs a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Imp {
    /// Both ends through the tlsresume API.
    Tlsresume,
    /// Both ends through the library directly.
    Raw,
}

impl Imp {
    pub fn name(self) -> &'static str {
        match self {
            Imp::Tlsresume => "tlsresume",
            Imp::Raw => "raw",
        }
    }
}

/// Every case, for every backend compiled in.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for backend in backends::available() {
        for tls in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
            for cert in [Cert::Ecdsa, Cert::Rsa] {
                for mode in [Mode::Full, Mode::Resumed] {
                    out.push(Case {
                        backend,
                        tls,
                        cert,
                        mode,
                    });
                }
            }
        }
    }
    out
}

/// The server and client of `imp` for `case`.
pub fn ends(case: Case, imp: Imp) -> (ServeFn, ConnectFn) {
    let pki = case.pki();
    match (imp, case.backend) {
        (Imp::Tlsresume, _) => (tlsresume_server(case, &pki), tlsresume_client(case, &pki)),
        (Imp::Raw, BackendKind::Rustls) => (rustls_server(case, &pki), rustls_client(case, &pki)),
        (Imp::Raw, BackendKind::Openssl) => {
            (openssl_server(case, &pki), openssl_client(case, &pki))
        }
        (Imp::Raw, BackendKind::Gnutls) => (gnutls_server(case), gnutls_client(case, &pki)),
    }
}

// ---------------------------------------------------------------------------------------------
// tlsresume

pub fn server_params() -> ServerParams {
    ServerParams::new(loopback(40_000), loopback(465))
}

pub fn client_params() -> ClientParams {
    ClientParams::new(SERVER_NAME, loopback(465))
}

/// tlsresume's server settings for a case.
pub fn tlsresume_server_settings(case: Case, pki: &Pki) -> ServerSettings {
    let mut settings = ServerSettings::new(pki.server.clone());
    settings.versions = Versions::only(case.tls);
    settings
}

/// tlsresume's client settings for a case (full: the policy resumes with no host).
pub fn tlsresume_client_settings(case: Case, pki: &Pki) -> ClientSettings {
    let mut settings = ClientSettings::new(pki.roots.clone());
    settings.versions = Versions::only(case.tls);
    if !case.resumes() {
        settings.resumption =
            ResumptionPolicy::exim_compatible().with_client_hosts(HostList::none());
    }
    settings
}

fn tlsresume_server(case: Case, pki: &Pki) -> ServeFn {
    let settings = tlsresume_server_settings(case, pki);
    let server = backends::server(case.backend, settings).expect("tlsresume server");
    let params = server_params();
    Arc::new(move |sock| {
        let mut stream = server.accept(Box::new(sock), &params)?;
        stream.write_all(b"x")?;
        stream.flush()?;
        Ok(())
    })
}

fn tlsresume_client(case: Case, pki: &Pki) -> ConnectFn {
    let settings = tlsresume_client_settings(case, pki);
    let client = backends::client(case.backend, settings).expect("tlsresume client");
    let params = client_params();
    Arc::new(move |sock, check| {
        let mut stream = client.connect(Box::new(sock), &params)?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte)?;
        Ok(check.then(|| stream.info().resumed))
    })
}

// ---------------------------------------------------------------------------------------------
// raw rustls (ring provider), configured like the rustls backend

fn rustls_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn rustls_version(v: ProtocolVersion) -> &'static rustls::SupportedProtocolVersion {
    match v {
        ProtocolVersion::Tls12 => &rustls::version::TLS12,
        _ => &rustls::version::TLS13,
    }
}

fn rustls_key(identity: &Identity) -> PrivateKeyDer<'static> {
    let der = identity.key_der().to_vec();
    match identity.key_format() {
        KeyFormat::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
        KeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
        KeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
    }
}

/// The raw rustls server configuration of a case (also driven by tokio-rustls in the async
/// bench).
pub fn rustls_server_config(case: Case, pki: &Pki) -> Arc<ServerConfig> {
    let chain = pki
        .server
        .chain()
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let mut config = ServerConfig::builder_with_provider(rustls_provider())
        .with_protocol_versions(&[rustls_version(case.tls)])
        .expect("rustls versions")
        .with_no_client_auth()
        .with_single_cert(chain, rustls_key(&pki.server))
        .expect("rustls server cert");
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.ticketer = rustls::crypto::ring::Ticketer::new().expect("rustls ticketer");
    config.send_tls13_tickets = 1;
    Arc::new(config)
}

fn rustls_server(case: Case, pki: &Pki) -> ServeFn {
    let config = rustls_server_config(case, pki);
    Arc::new(move |sock| {
        let conn = ServerConnection::new(config.clone())?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        stream.write_all(b"x")?;
        stream.flush()?;
        Ok(())
    })
}

/// The raw rustls client configuration of a case (also driven by tokio-rustls in the async
/// bench).
pub fn rustls_client_config(case: Case, pki: &Pki) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for der in &pki.roots {
        roots
            .add(CertificateDer::from(der.clone()))
            .expect("trust anchor");
    }
    let mut config = ClientConfig::builder_with_provider(rustls_provider())
        .with_protocol_versions(&[rustls_version(case.tls)])
        .expect("rustls versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = if case.resumes() {
        RustlsResumption::in_memory_sessions(256)
    } else {
        RustlsResumption::disabled()
    };
    Arc::new(config)
}

fn rustls_client(case: Case, pki: &Pki) -> ConnectFn {
    let config = rustls_client_config(case, pki);
    let name = ServerName::try_from(SERVER_NAME).expect("server name");
    Arc::new(move |sock, check| {
        let conn = ClientConnection::new(config.clone(), name.clone())?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte)?;
        Ok(check.then(|| stream.conn.handshake_kind() == Some(HandshakeKind::Resumed)))
    })
}

// ---------------------------------------------------------------------------------------------
// raw OpenSSL, configured like the OpenSSL backend (plain contexts, as the backend builds)

fn ssl_version(v: ProtocolVersion) -> SslVersion {
    match v {
        ProtocolVersion::Tls12 => SslVersion::TLS1_2,
        _ => SslVersion::TLS1_3,
    }
}

fn set_versions(ctx: &mut SslContextBuilder, v: ProtocolVersion) {
    ctx.set_min_proto_version(Some(ssl_version(v)))
        .expect("min version");
    ctx.set_max_proto_version(Some(ssl_version(v)))
        .expect("max version");
}

/// With `RAW_RELEASE_BUFFERS=1` in the environment, the raw contexts (the raw rig's and
/// tokio-openssl's) free a connection's buffers when they are empty (`SSL_MODE_RELEASE_BUFFERS`
/// on the context, as nginx sets it; tlsresume's OpenSSL backend sets it on each connection
/// once its handshake is done); by default they keep libssl's default, as a tokio-openssl user
/// who does not set it has.
fn release_buffers_if_asked(ctx: &mut openssl::ssl::SslContextBuilder) {
    if std::env::var_os("RAW_RELEASE_BUFFERS").is_some_and(|v| v == "1") {
        ctx.set_mode(openssl::ssl::SslMode::RELEASE_BUFFERS);
    }
}

/// The raw OpenSSL server context of a case (also driven by tokio-openssl in the adapters
/// bench).
pub fn openssl_server_context(case: Case, pki: &Pki) -> SslContext {
    let mut ctx = SslContext::builder(SslMethod::tls_server()).expect("SSL context");
    release_buffers_if_asked(&mut ctx);
    let mut chain = pki.server.chain().iter();
    let leaf = X509::from_der(chain.next().expect("leaf")).expect("leaf DER");
    ctx.set_certificate(&leaf).expect("certificate");
    for der in chain {
        ctx.add_extra_chain_cert(X509::from_der(der).expect("chain DER"))
            .expect("chain");
    }
    let key = PKey::private_key_from_der(pki.server.key_der()).expect("key DER");
    ctx.set_private_key(&key).expect("private key");
    ctx.check_private_key().expect("key matches");
    set_versions(&mut ctx, case.tls);
    // Stateless tickets only, one per connection, as the backend.
    ctx.set_session_cache_mode(SslSessionCacheMode::OFF);
    ctx.set_num_tickets(1).expect("num_tickets");
    ctx.build()
}

fn openssl_server(case: Case, pki: &Pki) -> ServeFn {
    let ctx = openssl_server_context(case, pki);
    Arc::new(move |sock| {
        let ssl = Ssl::new(&ctx)?;
        let mut stream = ssl.accept(sock).map_err(|e| e.to_string())?;
        stream.write_all(b"x")?;
        stream.flush()?;
        Ok(())
    })
}

/// The newest session a raw OpenSSL client saw, as DER (as the backend keeps it).
pub type SavedSession = Arc<Mutex<Option<Vec<u8>>>>;

/// The raw OpenSSL client context of a case and the slot its new-session callback fills
/// (also driven by tokio-openssl in the adapters bench).
pub fn openssl_client_context(case: Case, pki: &Pki) -> (SslContext, SavedSession) {
    let mut ctx = SslContext::builder(SslMethod::tls_client()).expect("SSL context");
    release_buffers_if_asked(&mut ctx);
    set_versions(&mut ctx, case.tls);
    let mut store = X509StoreBuilder::new().expect("store");
    for der in &pki.roots {
        store
            .add_cert(X509::from_der(der).expect("root DER"))
            .expect("root");
    }
    ctx.set_cert_store(store.build());
    ctx.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL);
    // The newest session as DER, as the backend keeps it (in its store).
    let saved: SavedSession = Arc::default();
    if case.resumes() {
        let slot = Arc::clone(&saved);
        ctx.set_new_session_callback(move |_ssl, session| {
            if let Ok(der) = session.to_der() {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(der);
            }
        });
    } else {
        // The backend sets NO_TICKET on connections whose policy does not resume.
        ctx.set_options(SslOptions::NO_TICKET);
    }
    (ctx.build(), saved)
}

/// A raw OpenSSL client connection: the saved session offered, the host checked.
pub fn openssl_client_ssl(ctx: &SslContext, saved: &SavedSession) -> Res<Ssl> {
    let mut ssl = Ssl::new(ctx)?;
    let offered = saved.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(der) = offered {
        tlsresume_openssl::raw::set_session_der(&mut ssl, &der)?;
    }
    ssl.set_hostname(SERVER_NAME)?;
    ssl.param_mut().set_host(SERVER_NAME)?;
    ssl.set_verify(SslVerifyMode::PEER);
    Ok(ssl)
}

fn openssl_client(case: Case, pki: &Pki) -> ConnectFn {
    let (ctx, saved) = openssl_client_context(case, pki);
    Arc::new(move |sock, check| {
        let ssl = openssl_client_ssl(&ctx, &saved)?;
        let mut stream = ssl.connect(sock).map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte)?;
        Ok(check.then(|| stream.ssl().session_reused()))
    })
}

// ---------------------------------------------------------------------------------------------
// raw GnuTLS, through the backend's safe wrapper, configured like the GnuTLS backend

fn gnutls_priority(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::Tls12 => "NORMAL:-VERS-ALL:+VERS-TLS1.2",
        _ => "NORMAL:-VERS-ALL:+VERS-TLS1.3",
    }
}

/// A fixed master ticket key (the backend takes it from its key source).
const GNUTLS_MASTER_KEY: [u8; 64] = [0x5a; 64];

fn gnutls_server(case: Case) -> ServeFn {
    let (chain, key) = case.server_pem();
    let mut creds = gnutls::Credentials::new().expect("GnuTLS credentials");
    creds.set_key_pem(chain, key).expect("GnuTLS identity");
    let creds = Arc::new(creds);
    let priority = gnutls_priority(case.tls);
    Arc::new(move |sock| {
        let mut session = gnutls::Session::new(gnutls::End::Server)?;
        session.set_priority(priority)?;
        session.enable_tickets_server(&GNUTLS_MASTER_KEY)?;
        session.set_cache_expiration(7200);
        let mut conn = gnutls::Connection::new(session, creds.clone(), sock)?;
        conn.handshake()?;
        conn.write(b"x")?;
        conn.flush()?;
        Ok(())
    })
}

fn gnutls_client(case: Case, pki: &Pki) -> ConnectFn {
    let mut creds = gnutls::Credentials::new().expect("GnuTLS credentials");
    for root in &pki.roots {
        creds.add_trust_der(root).expect("trust anchor");
    }
    let creds = Arc::new(creds);
    let priority = gnutls_priority(case.tls);
    let resumes = case.resumes();
    let tls13 = case.tls == ProtocolVersion::Tls13;
    let saved: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
    Arc::new(move |sock, check| {
        let mut session = gnutls::Session::new(gnutls::End::Client)?;
        session.set_priority(priority)?;
        session.set_server_name(SERVER_NAME)?;
        let offered = saved.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(data) = offered {
            session.set_session_data(&data)?;
        }
        let mut conn = gnutls::Connection::new(session, creds.clone(), sock)?;
        conn.handshake()?;
        let status = conn.session().verify_peers(Some(SERVER_NAME))?;
        if status != 0 {
            return Err(format!("certificate did not verify ({status:#x})").into());
        }
        let mut byte = [0u8; 1];
        if conn.read(&mut byte)? != 1 {
            return Err("the server closed before its byte".into());
        }
        // The session once a ticket is there (TLS 1.3: once the hook saw one).
        let s = conn.session();
        if resumes && s.has_ticket_flag() && (!tls13 || conn.tickets_received() > 0) {
            let data = s.session_data()?;
            *saved.lock().unwrap_or_else(|p| p.into_inner()) = Some(data.as_slice().to_vec());
        }
        Ok(check.then(|| s.is_resumed()))
    })
}
