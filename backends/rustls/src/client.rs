//! The client: `Client` and the bridge between rustls's session store and the core cache.
//!
//! rustls 0.23 cannot serialise client sessions (rustls issue #2287), so the rustls session
//! values stay in this process, in a table owned by the `Client`; the core `SessionStore`
//! holds the entry (store time, lifetime hint, verification, OCSP status) with a handle to the
//! in-process value as its session bytes, naming the `Client` that holds it. Another process
//! (or another `Client`) reading the same store finds the entry but not the value, offers
//! nothing ([`NoOffer::NotHeld`]) and makes a full handshake, leaving the entry in place.
//! rustls 0.24 serialises TLS 1.2 sessions only; with it those could go into the entry.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::{
    ClientSessionStore, Resumption as RustlsResumption, Tls12ClientSessionValue,
    Tls13ClientSessionValue, WebPkiServerVerifier,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, NamedGroup, RootCertStore};
use tlsresume_core::contract::{ClientHandshake, ReceivedSession};
use tlsresume_core::keys::SealedTags;
use tlsresume_core::{CacheKey, ClientSettings, Error, NoOffer, OcspMode, ProtocolVersion};

use crate::config::{chain_and_key, provider, provider_for, versions, ClockTime};
use crate::error::tls;
use crate::handshake::{ClientParts, Handshake};
use crate::info::lock;
use crate::io::Tls;
use crate::verify::{record_into, RecordingVerifier, VerifyRecord};
use crate::wire::{Tap, WireRecord};

const HANDLE_PREFIX: &[u8] = b"rustls-in-process:";

/// A rustls client that offers cached sessions as the settings' policy says.
#[derive(Debug)]
pub struct Client {
    pub(crate) settings: Arc<ClientSettings>,
    /// The configuration of every connection that may resume: its session store reaches the
    /// connection's [`Bridge`] through [`bridged`], so one configuration serves them all.
    resuming: Arc<ClientConfig>,
    /// The configuration of connections the policy does not let resume.
    plain: Arc<ClientConfig>,
    sessions: Arc<Mutex<InProcess>>,
    /// Names this client in the handles it stores: random, so no other client or process
    /// takes a handle of this one's for its own.
    id: u64,
    /// Whether TLS 1.2 may be negotiated: only then does the wire tap look for the
    /// NewSessionTicket the server sends in clear (a TLS 1.3 one is encrypted).
    tls12: bool,
}

/// rustls session values held in this process.
#[derive(Debug, Default)]
struct InProcess {
    next: u64,
    slots: HashMap<u64, Slot>,
    /// Each cache key's session: its handle, and the tags this client sealed it with (while
    /// the store holds exactly the bytes it wrote, those tags over the handle's bytes, the
    /// handle is taken without opening them again, as the OpenSSL client keeps its sessions
    /// decoded).
    by_key: HashMap<CacheKey, (u64, SealedTags)>,
    kx_hints: HashMap<String, NamedGroup>,
}

#[derive(Debug)]
enum Slot {
    /// A TLS 1.2 session (reusable, by any number of handshakes at once, until it expires or a
    /// newer ticket replaces it).
    Tls12(Tls12ClientSessionValue),
    /// TLS 1.3 tickets are single-use in rustls: taking one empties the slot.
    Tls13(Option<Tls13ClientSessionValue>),
}

/// The session a connection offers, taken out of the table before its handshake starts, and
/// handed to rustls (moved, not copied) when it asks for it, once per handshake.
#[derive(Debug)]
enum Taken {
    Tls12(Mutex<Option<Tls12ClientSessionValue>>),
    Tls13(Mutex<Option<Tls13ClientSessionValue>>),
}

impl InProcess {
    /// A handle no session has had.
    fn reserve(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// Holds `slot` under `handle` (from [`reserve`](Self::reserve), or the key's own handle
    /// again) as `key`'s session, dropping the one it replaces.
    fn insert(&mut self, key: CacheKey, handle: u64, slot: Slot, tags: SealedTags) {
        if let Some((old, _)) = self.by_key.insert(key, (handle, tags)) {
            if old != handle {
                self.slots.remove(&old);
            }
        }
        self.slots.insert(handle, slot);
    }

    /// The handle client `client` (this table's) stored under `key`, when the store holds
    /// exactly the bytes it wrote (`stored`).
    fn stored_by_us(&self, client: u64, key: &CacheKey, stored: &[u8]) -> Option<u64> {
        self.by_key
            .get(key)
            .filter(|(handle, tags)| tags.sealed_over(stored, &encode_handle(client, *handle)))
            .map(|(handle, _)| *handle)
    }

    /// Takes the session under `handle` for one handshake: a TLS 1.3 ticket leaves the table
    /// (single use), a TLS 1.2 session is copied. `None` when there is none or it was used.
    fn take(&mut self, handle: u64) -> Option<Taken> {
        match self.slots.get_mut(&handle)? {
            Slot::Tls12(value) => Some(Taken::Tls12(Mutex::new(Some(value.clone())))),
            Slot::Tls13(value) => Some(Taken::Tls13(Mutex::new(Some(value.take()?)))),
        }
    }
}

/// The length of a handle's bytes.
const HANDLE_LEN: usize = HANDLE_PREFIX.len() + 16;

/// The session bytes stored for an in-process value: the prefix, the client's id, the handle.
fn encode_handle(client: u64, handle: u64) -> [u8; HANDLE_LEN] {
    let mut out = [0u8; HANDLE_LEN];
    let (prefix, ids) = out.split_at_mut(HANDLE_PREFIX.len());
    prefix.copy_from_slice(HANDLE_PREFIX);
    ids[..8].copy_from_slice(&client.to_be_bytes());
    ids[8..].copy_from_slice(&handle.to_be_bytes());
    out
}

/// The client id and handle in `bytes`, if they are a handle.
fn decode_handle(bytes: &[u8]) -> Option<(u64, u64)> {
    let rest: [u8; 16] = bytes.strip_prefix(HANDLE_PREFIX)?.try_into().ok()?;
    let (client, handle) = rest.split_at(8);
    Some((
        u64::from_be_bytes(client.try_into().ok()?),
        u64::from_be_bytes(handle.try_into().ok()?),
    ))
}

/// A random client id (the time and an in-process count when the system generator fails:
/// unique within the process, which is what a shared in-memory store needs).
fn client_id() -> u64 {
    use ring::rand::SecureRandom;
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let mut bytes = [0u8; 8];
    match ring::rand::SystemRandom::new().fill(&mut bytes) {
        Ok(()) => u64::from_be_bytes(bytes),
        Err(_) => {
            let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tlsresume_core::UnixTime::now().as_micros() ^ count.rotate_left(48)
        }
    }
}

impl Client {
    /// Builds the client. Fails when no trust anchor parses or the version range is empty.
    pub fn new(settings: ClientSettings) -> Result<Self, Error> {
        settings.check()?;
        let in_force = settings.versions_in_force()?;
        let mut roots = RootCertStore::empty();
        for (i, der) in settings.roots.iter().enumerate() {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| Error::Config(format!("trust anchor {i}: {e}")))?;
        }
        if roots.is_empty() {
            return Err(Error::Config("no trust anchors given".into()));
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| Error::Config(format!("certificate verifier: {e}")))?;
        // One verifier for every connection: rustls resumes a session only under the verifier
        // that made it. Each connection's record is set around its handshake steps.
        let verifier = Arc::new(RecordingVerifier {
            inner: webpki,
            mode: settings.verify,
            roots: Arc::new(settings.roots.clone()),
            request_ocsp: settings.ocsp != OcspMode::Off,
        });
        let base = ClientConfig::builder_with_details(
            provider_for(settings.ciphers.as_ref())?,
            Arc::new(ClockTime(settings.clock.clone())),
        )
        .with_protocol_versions(&versions(&in_force)?)
        .map_err(tls)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
        let mut base = match &settings.identity {
            Some(identity) => {
                let (chain, key) = chain_and_key(identity);
                base.with_client_auth_cert(chain, key).map_err(|e| {
                    Error::Config(format!("client certificate and private key: {e}"))
                })?
            }
            None => base.with_client_cert_resolver(Arc::new(crate::verify::NoClientCert)),
        };
        base.alpn_protocols = settings.alpn.clone();
        let mut plain = base.clone();
        plain.resumption = RustlsResumption::disabled();
        base.resumption = RustlsResumption::store(Arc::new(CurrentBridge));
        Ok(Self {
            settings: Arc::new(settings),
            resuming: Arc::new(base),
            plain: Arc::new(plain),
            sessions: Arc::new(Mutex::new(InProcess::default())),
            id: client_id(),
            tls12: in_force.min == ProtocolVersion::Tls12,
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, InProcess> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets up a client handshake over `transport` whose resumption decisions `handshake`
    /// makes (the generated `start_with_store` made it).
    pub(crate) fn begin<S: Read + Write>(
        &self,
        transport: S,
        mut handshake: ClientHandshake,
    ) -> Result<Handshake<S>, Error> {
        // The name rustls keeps for the connection: the one copy of it made here.
        let name = ServerName::try_from(handshake.server_name().to_owned()).map_err(|e| {
            Error::Config(format!("server name '{}': {e}", handshake.server_name()))
        })?;
        let key = handshake.offer().key;
        // The session this client stored under the key, taken under one lock when the store
        // still holds exactly the bytes it wrote.
        let ours = handshake.stored_session().and_then(|stored| {
            let mut sessions = self.sessions();
            let handle = sessions.stored_by_us(self.id, &key, stored)?;
            Some(sessions.take(handle))
        });
        let taken = match ours {
            Some(taken) => taken,
            None => match handshake.session_to_offer().map(decode_handle) {
                None => None,
                Some(Some((client, handle))) if client == self.id => self.sessions().take(handle),
                // Sealed under the store's key but not a handle of this client's: another
                // client's or another process's.
                Some(_) => None,
            },
        };
        if handshake.offer().entry.is_some() && taken.is_none() {
            // The entry names a session this client does not hold (another process's, or a
            // TLS 1.3 ticket already used): nothing to offer.
            handshake.withdraw(NoOffer::NotHeld);
        }
        let may_resume = handshake.may_resume();
        // Per connection, in one allocation: what its handshake records while it runs (the
        // verifier's and the wire tap's findings) and, when it may resume, the session offered,
        // reached by the bridge.
        let during = Arc::new(During {
            offered: taken,
            verify: Mutex::new(VerifyRecord {
                dane_plan: handshake.dane().clone(),
                ..VerifyRecord::default()
            }),
            wire: Mutex::new(WireRecord::default()),
        });
        // The lifecycle and the bridge to the core cache, reached by the client's one
        // configuration (as the verifier is the client's one) when the connection may resume.
        let bridge = Arc::new(Bridge {
            handshake: Mutex::new(handshake),
            sessions: self.sessions.clone(),
            client: self.id,
            during: may_resume.then(|| Arc::clone(&during)),
            resumed: false,
            resuming: may_resume,
        });
        let config = if may_resume {
            self.resuming.clone()
        } else {
            self.plain.clone()
        };
        let conn = bridged(Some(&bridge), || ClientConnection::new(config, name)).map_err(tls)?;
        Ok(Handshake::client(
            ClientIo {
                // The tap finds what the bridge stores on a TLS 1.2 connection only.
                stream: Box::new(Tls::new(
                    conn,
                    Tap::new(
                        transport,
                        (may_resume && self.tls12).then(|| Arc::clone(&during)),
                    ),
                )),
                bridge: Some(bridge),
            },
            ClientParts { during },
        ))
    }
}

scoped_tls::scoped_thread_local! {
    /// The bridge of the client connection this thread is stepping now: lent by [`bridged`]
    /// around each call into the connection, and only for its length (a reference: no count
    /// of the bridge is written per call).
    static BRIDGE: Bridge
}

scoped_tls::scoped_thread_local! {
    /// Where the newest session rustls hands over during a call into a client connection
    /// ([`Bridge::save`]) waits until the call returns, to be stored then: a slot on the
    /// stack of the call ([`receiving`]), lent for its length, rather than room in the
    /// connection, which would carry one (some 170 bytes) for its whole life. A call into
    /// another connection made inside it (a stream over a stream) lends its own slot, so the
    /// sessions they receive stay apart; a call that unwinds drops what it received.
    static RECEIVED: RefCell<Option<Received>>
}

/// Runs `step` with a slot of its own for what it receives ([`RECEIVED`]); what was put there.
fn receiving<T>(step: impl FnOnce() -> T) -> (T, Option<Received>) {
    let slot = RefCell::new(None);
    let out = RECEIVED.set(&slot, step);
    (out, slot.into_inner())
}

/// Puts `value` in the slot of the call running now, in place of what it held (nothing
/// outside a call, as rustls hands sessions over only inside one).
fn put_received(value: Received) {
    if RECEIVED.is_set() {
        RECEIVED.with(|slot| {
            if let Ok(mut held) = slot.try_borrow_mut() {
                *held = Some(value);
            }
        });
    }
}

/// Runs `step` (a call into one client connection: its creation, a handshake step, a read or a
/// write) with the client's session store reaching that connection's `bridge` (when it may
/// resume: otherwise its configuration has no session store).
///
/// rustls calls the session store from `ClientConnection::new` (the offer), from handshake
/// steps (sessions received) and from reads after the handshake (TLS 1.3 tickets), always on
/// the thread running the call: a per-connection configuration pointing at the bridge would do
/// the same at the cost of a `ClientConfig` copy held by every connection for its life (~360
/// bytes).
///
/// The newest session received during the call is stored when it returns (see
/// [`Bridge::store_received`]); until then it waits in the call's own slot ([`RECEIVED`]).
pub(crate) fn bridged<T>(bridge: Option<&Arc<Bridge>>, step: impl FnOnce() -> T) -> T {
    match bridge {
        Some(bridge) if bridge.resuming => {
            let (out, received) = receiving(|| BRIDGE.set(bridge, step));
            if let Some(received) = received {
                bridge.store_received(received);
            }
            out
        }
        _ => step(),
    }
}

/// Runs one handshake step of a client connection (see [`bridged`]) with the verifier also
/// recording into `during` ([`recording`](crate::verify::recording)): both lent for the step,
/// what was lent before back after it.
pub(crate) fn stepping<T>(
    bridge: Option<&Arc<Bridge>>,
    during: &Arc<During>,
    step: impl FnOnce() -> T,
) -> T {
    bridged(bridge, || crate::verify::recording(during, step))
}

/// The session store of the client's configuration: the bridge of the connection being
/// stepped ([`bridged`]); outside a step (never, as rustls calls it) it holds and takes nothing.
#[derive(Debug)]
struct CurrentBridge;

impl CurrentBridge {
    fn with<T>(&self, f: impl FnOnce(&Bridge) -> T) -> Option<T> {
        BRIDGE.is_set().then(|| BRIDGE.with(f))
    }
}

impl ClientSessionStore for CurrentBridge {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.with(|b| b.set_kx_hint(server_name, group));
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.with(|b| b.kx_hint(server_name)).flatten()
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.with(|b| b.set_tls12_session(server_name, value));
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.with(|b| b.tls12_session(server_name)).flatten()
    }

    fn remove_tls12_session(&self, _server_name: &ServerName<'static>) {}

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.with(|b| b.insert_tls13_ticket(server_name, value));
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.with(|b| b.take_tls13_ticket(server_name)).flatten()
    }
}

/// A client connection's rustls stream with its record: every read and write runs
/// [`bridged`], so a TLS 1.3 ticket read after the handshake reaches the connection's bridge.
pub(crate) struct ClientIo<S: Read + Write> {
    pub(crate) stream: Box<Tls<ClientConnection, Tap<S>>>,
    /// The connection's lifecycle and bridge: always there while the handshake runs; after it,
    /// only when the connection still needs it ([`ClientIo::release`]).
    pub(crate) bridge: Option<Arc<Bridge>>,
}

impl<S: Read + Write> ClientIo<S> {
    /// The handshake is over: the bridge lets go of what only the handshake needed (the
    /// verifier's and the wire tap's records, the offered session), as the tap does.
    pub(crate) fn handshake_done(&mut self, resumed: bool) {
        self.stream.sock.stop();
        if let Some(bridge) = self.bridge.as_mut().and_then(Arc::get_mut) {
            bridge.during = None;
            bridge.resumed = resumed;
        }
    }

    /// The connection's lifecycle, while it is kept.
    pub(crate) fn handshake(&self) -> Option<std::sync::MutexGuard<'_, ClientHandshake>> {
        self.bridge.as_ref().map(|bridge| lock(&bridge.handshake))
    }

    /// Drops the lifecycle once the report is made, when nothing can change it any more (no
    /// session is stored on this connection any more, TLS 1.2's having come inside the
    /// handshake, and no later refusal becomes a certificate failure:
    /// [`ClientHandshake::needed_after_handshake`]). The connection's calls then go straight
    /// to rustls.
    pub(crate) fn release(&mut self) {
        let protocol = crate::info::protocol(&self.stream.conn);
        if self
            .handshake()
            .is_some_and(|hs| !hs.needed_after_handshake(protocol))
        {
            self.bridge = None;
        }
    }
}

impl<S: Read + Write> Read for ClientIo<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let stream = &mut self.stream;
        bridged(self.bridge.as_ref(), || stream.read(buf))
    }
}

impl<S: Read + Write> Write for ClientIo<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let stream = &mut self.stream;
        bridged(self.bridge.as_ref(), || stream.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        let stream = &mut self.stream;
        bridged(self.bridge.as_ref(), || stream.flush())
    }
}

/// One client connection's record: its [`ClientHandshake`] and, when it may resume, its rustls
/// session store, which hands rustls the offered session and gives the sessions rustls
/// receives to the handshake to store. One allocation per connection, kept for its life when
/// a ticket may still arrive.
#[derive(Debug)]
pub(crate) struct Bridge {
    pub(crate) handshake: Mutex<ClientHandshake>,
    sessions: Arc<Mutex<InProcess>>,
    /// The client's id, named in the handles stored.
    client: u64,
    /// What only the handshake needs (released when it is over); `None` from the start on a
    /// connection that does not resume.
    during: Option<Arc<During>>,
    /// Whether the handshake resumed, once it is over (and `during` released).
    resumed: bool,
    /// Whether the connection may resume: the client's session store reaches this bridge.
    resuming: bool,
}

/// A session rustls handed over, not yet stored.
#[derive(Debug)]
pub(crate) struct Received {
    slot: Slot,
    protocol: ProtocolVersion,
    lifetime_hint: Option<Duration>,
    /// Whether the handshake that gave it resumed.
    resumed: bool,
}

/// What a client connection needs while its handshake runs, in one allocation shared by the
/// bridge (when the connection may resume), the verifier's record of the step being run
/// ([`recording`](crate::verify::recording)) and the wire tap; all of them let go of it when
/// the handshake is over.
#[derive(Debug)]
pub(crate) struct During {
    /// The session offered, taken out of the table for this handshake.
    offered: Option<Taken>,
    /// What the verifier saw.
    pub(crate) verify: Mutex<VerifyRecord>,
    /// What the wire tap read.
    pub(crate) wire: Mutex<WireRecord>,
}

impl Bridge {
    /// The session offered on this handshake.
    fn offered(&self) -> Option<&Taken> {
        self.during.as_ref()?.offered.as_ref()
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, InProcess> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a session rustls received, to be stored when the call into the connection that
    /// received it returns ([`store_received`](Self::store_received)): a newer one received
    /// during the same call replaces it. The store keeps one session per cache key, so of the
    /// tickets a TLS 1.3 server sends in one flight (two by default in rustls and OpenSSL) only
    /// the last would stay: the others are not sealed and written only to be overwritten.
    fn save(&self, slot: Slot, protocol: ProtocolVersion, lifetime_hint: Option<Duration>) {
        // The verifier runs on full handshakes only.
        let resumed = match &self.during {
            Some(during) => record_into(&during.verify, &mut lock(&self.handshake)),
            None => self.resumed,
        };
        put_received(Received {
            slot,
            protocol,
            lifetime_hint,
            resumed,
        });
    }

    /// Stores the newest session received during the call into the connection that just
    /// returned (from its slot, [`RECEIVED`]), as a core entry pointing at the in-process
    /// value: before the call's result reaches the caller, so nothing the caller saw arrive is
    /// left unstored.
    ///
    /// A resumed connection's session goes under the handle this client's table names for the
    /// key, with the tags that entry was sealed with: when those are the offered entry's, the
    /// store already says what a write would, and the core writes nothing while the entry is
    /// young ([`ClientHandshake::store_session`], "stored in place"). Otherwise (a full
    /// handshake, or the table names a newer session than the one offered) the session is
    /// written as new.
    pub(crate) fn store_received(&self, received: Received) {
        let mut handshake = lock(&self.handshake);
        let key = handshake.offer().key;
        let (handle, stored_as) = {
            let mut sessions = self.sessions();
            match sessions.by_key.get(&key) {
                Some((handle, tags)) if received.resumed => (*handle, Some(*tags)),
                _ => (sessions.reserve(), None),
            }
        };
        let stored = handshake.store_session(ReceivedSession {
            resumed: received.resumed,
            protocol: received.protocol,
            lifetime_hint: received.lifetime_hint,
            data: &encode_handle(self.client, handle),
            stored_as,
        });
        if let Some(tags) = stored {
            self.sessions().insert(key, handle, received.slot, tags);
        }
    }
}

impl Bridge {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        let name = server_name.to_str();
        let mut sessions = self.sessions();
        // Told again after every handshake: a hint already held is not copied again.
        if sessions.kx_hints.get(name.as_ref()) != Some(&group) {
            sessions.kx_hints.insert(name.into_owned(), group);
        }
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.sessions()
            .kx_hints
            .get(server_name.to_str().as_ref())
            .copied()
    }

    fn set_tls12_session(&self, _server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        // rustls saves a session after every TLS 1.2 handshake on which the server gave a
        // ticket or a session ID. When this connection offered a session and the server sent
        // no new ticket, rustls puts the offered ticket into what it saves (after a resumption,
        // and after a full handshake that refused it): that is no new session. What the server
        // sent is read off the wire (`wire`).
        let sent = self
            .during
            .as_ref()
            .and_then(|during| lock(&during.wire).ticket.take());
        let new_ticket = sent.filter(|t| t.new);
        if self.offered().is_some() && new_ticket.is_none() {
            return;
        }
        // 0 ("unspecified", RFC 5077, or no ticket at all) keeps the renewed session's lifetime
        // or gives the default.
        // Reported as sent: read off the wire in TLS 1.2.
        let hint = new_ticket.map_or(0, |t| t.lifetime_hint);
        let lifetime = Duration::from_secs(u64::from(hint));
        self.save(Slot::Tls12(value), ProtocolVersion::Tls12, Some(lifetime));
    }

    fn tls12_session(&self, _server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        match self.offered()? {
            Taken::Tls12(value) => lock(value).take(),
            Taken::Tls13(_) => None,
        }
    }

    fn insert_tls13_ticket(
        &self,
        _server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        // A TLS 1.3 NewSessionTicket is encrypted and rustls 0.23 keeps its lifetime private:
        // not known, so the entry gets the default 2 h (inferred, not read). rustls itself
        // still refuses to offer a ticket past the lifetime the server gave.
        self.save(Slot::Tls13(Some(value)), ProtocolVersion::Tls13, None);
    }

    fn take_tls13_ticket(
        &self,
        _server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        match self.offered()? {
            Taken::Tls13(value) => lock(value).take(),
            Taken::Tls12(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call into one connection made inside a call into another (a stream over a stream)
    /// keeps the sessions each received apart, and a call that unwinds drops what it received
    /// and leaves the enclosing call's in place.
    #[test]
    fn a_call_inside_another_keeps_the_sessions_they_received_apart() {
        let received = |secs| Received {
            slot: Slot::Tls13(None),
            protocol: ProtocolVersion::Tls13,
            lifetime_hint: Some(Duration::from_secs(secs)),
            resumed: false,
        };
        let hint = |r: Option<Received>| r.and_then(|r| r.lifetime_hint);
        let (inner, outer) = receiving(|| {
            put_received(received(1));
            let ((), inner) = receiving(|| put_received(received(2)));
            let unwound = std::panic::catch_unwind(|| {
                receiving(|| {
                    put_received(received(3));
                    panic!("a call that unwinds");
                })
            });
            assert!(unwound.is_err());
            inner
        });
        assert_eq!(hint(inner), Some(Duration::from_secs(2)));
        assert_eq!(hint(outer), Some(Duration::from_secs(1)));
        put_received(received(4));
        assert!(!RECEIVED.is_set(), "outside a call, nothing is kept");
    }

    #[test]
    fn handles_roundtrip_and_reject_garbage() {
        assert_eq!(decode_handle(&encode_handle(7, 42)), Some((7, 42)));
        assert_eq!(decode_handle(b"rustls-in-process:123"), None);
        assert_eq!(decode_handle(b""), None);
        assert_eq!(decode_handle(&[0xff; 40]), None);
    }
}
