//! The server: [`Server`], stateless tickets under the core key ring.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use openssl::error::ErrorStack;
use openssl::ssl::{
    AlpnError, ClientHelloResponse, Ssl, SslContext, SslContextBuilder, SslMethod, SslRef,
    SslSessionCacheMode, SslVerifyMode,
};
use std::io::{Read, Write};

use tlsresume_core::contract::ServerHandshake;
use tlsresume_core::contract::ServerStart;
use tlsresume_core::identities::{host_name_from_extension, IdentityTable};
use tlsresume_core::keys::key_ring::KeyRing;
use tlsresume_core::{ClientAuth, Error, Identity, ServerSettings, Verification};

use crate::callbacks;
use crate::certs::LocalLeaves;
use crate::config;
use crate::error;
use crate::ffi;
use crate::handshake::Handshake;
use crate::tickets::{server_conn, server_index, ServerConn, ServerShared, ServerState};
use crate::BACKEND;

/// An OpenSSL server configuration: identity, versions, ALPN, the OCSP staple, and ticket keys
/// from a core [`KeyRing`] through the ticket key callback. OpenSSL's server-side session cache
/// is off: resumption is by stateless tickets only.
pub struct Server {
    ctx: SslContext,
    pub(crate) settings: Arc<ServerSettings>,
    pub(crate) ring: Arc<KeyRing>,
    /// What every connection's callbacks read, behind one `Arc` (one count to raise per
    /// connection, not one per part: the connections of every thread share it).
    shared: Arc<ServerShared>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("backend", &BACKEND)
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server from the common settings.
    pub fn new(settings: ServerSettings) -> Result<Self, Error> {
        settings.check_for(BACKEND)?;
        let policy = settings.ticket_policy_for(BACKEND);
        if server_index().is_none() {
            return Err(error::tls("could not allocate an SSL ex_data index"));
        }
        let table = Arc::new(settings.identity_table()?);
        // One context per set of identities a client's name can select; the connection starts
        // on the default set's and the client hello callback switches it.
        let mut leaves = LocalLeaves::default();
        let others = (1..table.sets().len())
            .map(|set| {
                Ok(context(&settings, table.set(set).map(|e| e.identity()), &mut leaves)?.build())
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let mut ctx = context(&settings, table.set(0).map(|e| e.identity()), &mut leaves)?;
        let choice = Arc::clone(&table);
        ctx.set_client_hello_callback(move |ssl, _alert| {
            // AssertUnwindSafe: reads the immutable table and contexts, writes the connection
            // state behind its mutex. A panic leaves the default certificate.
            catch_unwind(AssertUnwindSafe(|| client_hello(ssl, &choice, &others)))
                .unwrap_or(Ok(ClientHelloResponse::SUCCESS))
        });
        let ring = Arc::new(KeyRing::new(policy, Arc::clone(&settings.key_source)));
        let staple_leaf = (!settings.identities.is_empty())
            .then(|| settings.identity.chain().first().cloned())
            .flatten();
        let ocsp_response = settings.ocsp_response.clone();
        let shared = Arc::new(ServerShared {
            ring: Arc::clone(&ring),
            clock: Arc::clone(&settings.clock),
            staple_leaf,
            ocsp_response,
            leaves,
        });
        Ok(Self {
            ctx: ctx.build(),
            settings: Arc::new(settings),
            ring,
            shared,
        })
    }

    /// Sets up a server handshake over `transport` that starts as `start` decided (the
    /// generated `start` decided it).
    pub(crate) fn begin<S: Read + Write>(
        &self,
        transport: S,
        start: ServerStart,
    ) -> Result<Handshake<S>, Error> {
        let index = server_index().ok_or_else(|| error::tls("no SSL ex_data index"))?;
        let mut ssl = Ssl::new(&self.ctx).map_err(|e| error::stack("SSL", e))?;
        let conn = Arc::new(ServerConn {
            shared: Arc::clone(&self.shared),
            may_issue: start.may_issue,
            state: Mutex::new(ServerState {
                handshake: ServerHandshake::new(BACKEND, start),
            }),
        });
        index.set(&mut ssl, Arc::clone(&conn));
        let verify = match start.client_auth {
            ClientAuth::Off => None,
            ClientAuth::Try => Some(SslVerifyMode::PEER),
            ClientAuth::Require => Some(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT),
        };
        if let Some(mode) = verify {
            ffi::set_verify_cb(&mut ssl, mode.bits(), callbacks::raw_server_verify);
        }
        if start.may_issue {
            // TLS 1.3 tickets after a full handshake (`SSL_set_num_tickets`); after a resumed
            // one OpenSSL sends one ticket when the ticket callback renews the presented one.
            let count = self.settings.tls13_tickets_for(BACKEND);
            ssl.set_num_tickets(usize::try_from(count).unwrap_or(usize::MAX))
                .map_err(|e| error::stack("num_tickets", e))?;
        } else {
            ssl.set_num_tickets(0)
                .map_err(|e| error::stack("num_tickets", e))?;
            ffi::set_no_ticket(&mut ssl);
        }
        Ok(Handshake::server(ssl, transport, conn))
    }
}

/// A server context for one set of identities (an RSA and an ECDSA certificate in one context:
/// OpenSSL picks between them by what the client supports), with every callback: after a
/// switch, OpenSSL reads the ALPN, status and verify settings of the new context.
fn context<'a>(
    settings: &ServerSettings,
    identities: impl Iterator<Item = &'a Identity>,
    leaves: &mut LocalLeaves,
) -> Result<SslContextBuilder, Error> {
    let policy = settings.ticket_policy_for(BACKEND);
    let mut ctx = SslContext::builder(SslMethod::tls_server())
        .map_err(|e| error::config("SSL context", e))?;
    for identity in identities {
        let leaf = config::load_identity(&mut ctx, identity)?;
        if let Some(der) = identity.chain().first() {
            leaves.add(leaf, der);
        }
    }
    let versions = settings.versions_in_force()?;
    config::set_versions(&mut ctx, versions)?;
    if let Some(list) = &settings.ciphers {
        config::set_ciphers(&mut ctx, list, versions)?;
    }
    if settings.asks_client_certificates() {
        config::client_cas(&mut ctx, &settings.client_roots)?;
    }
    ctx.set_session_cache_mode(SslSessionCacheMode::OFF);
    ffi::set_dh_auto(&mut ctx).map_err(|e| error::config("DH parameters", e))?;
    ffi::set_ctx_timeout(&mut ctx, policy.lifetime().as_secs());
    ffi::set_ticket_key_evp_cb(&mut ctx, callbacks::raw_ticket_key_evp_cb)
        .map_err(|e| error::config("ticket key callback", e))?;
    ffi::set_session_ticket_cb(
        &mut ctx,
        callbacks::raw_generate_ticket,
        callbacks::raw_decrypt_ticket,
    )
    .map_err(|e| error::config("session ticket callbacks", e))?;
    ffi::set_status_cb(&mut ctx, callbacks::raw_server_status)
        .map_err(|e| error::config("OCSP status callback", e))?;
    if !settings.alpn.is_empty() {
        let protocols = settings.alpn.clone();
        ctx.set_alpn_select_callback(move |_ssl, client| {
            // AssertUnwindSafe: reads an immutable list only.
            catch_unwind(AssertUnwindSafe(|| config::select_alpn(&protocols, client)))
                .ok()
                .flatten()
                .ok_or(AlpnError::NOACK)
        });
    }
    Ok(ctx)
}

/// The client hello callback, before OpenSSL looks at a session: records the name the client
/// sent (what a ticket is bound to and must match) and switches the connection to the context
/// of the identities that name selects.
fn client_hello(
    ssl: &mut SslRef,
    table: &IdentityTable,
    others: &[SslContext],
) -> Result<ClientHelloResponse, ErrorStack> {
    let set = ffi::with_client_hello_ext(ssl, 0, |body| {
        let name = body.and_then(host_name_from_extension);
        if let Some(conn) = server_conn(ssl) {
            conn.state().handshake.server_name_seen(name);
        }
        // With one set of identities there is nothing to switch to.
        (!others.is_empty()).then(|| table.select(name))
    });
    let Some(set) = set else {
        return Ok(ClientHelloResponse::SUCCESS);
    };
    if let Some(ctx) = set.checked_sub(1).and_then(|i| others.get(i)) {
        ssl.set_ssl_context(ctx)?;
    }
    Ok(ClientHelloResponse::SUCCESS)
}

/// The verify callback for a client's certificate, called for each certificate of its chain
/// on a full handshake (never on a resumed one: the known issue): records what OpenSSL's
/// check says, and fails the handshake when the client must verify.
pub(crate) fn verify_client(conn: &ServerConn, preverify_ok: bool) -> bool {
    let seen = if preverify_ok {
        Verification::Verified
    } else {
        Verification::Failed
    };
    let mut state = conn.state();
    state.handshake.client_certificate_seen(seen);
    preverify_ok || !state.handshake.refuses_client_certificate(seen)
}

/// After a resumed handshake: what OpenSSL kept in the session about the client's certificate,
/// its stored verify result (`SSL_get_verify_result`, restored from the session) with the
/// stored peer certificate. Nothing when the session holds no client certificate.
pub(crate) fn kept_client_certificate(ssl: &SslRef) -> Option<Verification> {
    ssl.peer_certificate()?;
    Some(
        if ssl.verify_result() == openssl::x509::X509VerifyResult::OK {
            Verification::Verified
        } else {
            Verification::Failed
        },
    )
}

/// The server's status callback: OpenSSL calls it when the client asked for a status and
/// staples what it sets. OpenSSL 3 does not call it on a resumed handshake (measured), so a
/// resumed OpenSSL server reports "not requested" — the library's own view, reported as is.
pub(crate) fn staple(ssl: &mut SslRef) -> Result<bool, openssl::error::ErrorStack> {
    let Some(conn) = server_conn(ssl) else {
        return Ok(false);
    };
    conn.state().handshake.status_requested();
    // With several certificates, the staple is the first one's: none for the others.
    let other = conn.shared.staple_leaf.as_ref().is_some_and(|leaf| {
        ssl.certificate()
            .and_then(|c| c.to_der().ok())
            .is_none_or(|der| der != **leaf)
    });
    match &conn.shared.ocsp_response {
        Some(_) if other => Ok(false),
        Some(der) => {
            ssl.set_ocsp_status(der)?;
            conn.state().handshake.staple_sent();
            Ok(true)
        }
        None => Ok(false),
    }
}
