//! The `extern "C"` callbacks libssl calls during a handshake: the server's tickets, OCSP
//! staple and client certificate check; the client's certificate request, server check, OCSP
//! status and new sessions.
//!
//! Each body runs inside `catch_unwind`: a panic never crosses into C; it becomes the return
//! value that fails the handshake cleanly (`-1` from the key callback, `0` from the generate
//! callback, `SSL_TICKET_RETURN_ABORT` from the decrypt callback). The state comes from the
//! SSL's ex_data ([`crate::tickets::server_conn`]); an SSL without it is refused the same way.
//!
//! Each is one plain function set once on the context (or, for the server's client
//! certificate check, on the connection) that finds the connection through this backend's own
//! ex_data slot: nothing is boxed per connection and no process-wide lock is taken, as the
//! `openssl` crate's closure setters do (its ex_data index map behind a mutex). The client
//! hello and ALPN callbacks still go through the `openssl` crate's safe setters; their
//! closures catch panics themselves.

#![allow(unsafe_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use foreign_types::ForeignTypeRef;
use libc::{c_int, c_uchar, c_void, size_t};
use openssl::ssl::{SslRef, SslSessionRef};
use openssl_sys::{EVP_CIPHER_CTX, EVP_MAC_CTX, SSL, SSL_SESSION, X509_STORE_CTX};

use crate::client_conn::client_conn;
use crate::config::protocol_of;
use crate::ffi::{self, ticket_return, ticket_status, tlsext_err};
use crate::server::{staple, verify_client};
use crate::tickets::server_conn;
use tlsresume_core::keys::TicketKey;

/// The free function of an [`ArcIndex`](ffi::ArcIndex) slot (CRYPTO_get_ex_new_index(3)):
/// libssl calls it when it frees an SSL, with the SSL's value in the slot (null when it has
/// none), and the reference the SSL held is given back.
pub(crate) unsafe extern "C" fn free_arc<T>(
    _parent: *mut c_void,
    ptr: *mut c_void,
    _ad: *mut openssl_sys::CRYPTO_EX_DATA,
    _index: c_int,
    _argl: libc::c_long,
    _argp: *mut c_void,
) {
    // AssertUnwindSafe: nothing is used after a panic (the value is dropped or leaked).
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !ptr.is_null() {
            // SAFETY: a value in an `ArcIndex<T>` slot is a pointer from `Arc::into_raw` whose
            // reference the SSL held; libssl calls this once per SSL, as it frees it.
            drop(unsafe { std::sync::Arc::from_raw(ptr.cast::<T>().cast_const()) });
        }
    }));
}

/// The client certificate callback (SSL_CTX_set_client_cert_cb(3)): OpenSSL calls it when the
/// server asks for a certificate and the client has none set. It records that the server asked
/// and returns 0: no certificate is sent.
pub(crate) extern "C" fn raw_client_cert(
    ssl: *mut SSL,
    _x509: *mut *mut openssl_sys::X509,
    _pkey: *mut *mut openssl_sys::EVP_PKEY,
) -> c_int {
    // AssertUnwindSafe: as in `raw_ticket_key_evp_cb`.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if ssl.is_null() {
            return;
        }
        // SAFETY: libssl passes the live SSL of the handshake it is running.
        let ssl_ref = unsafe { ffi::ssl_ref(ssl) };
        if let Some(conn) = client_conn(ssl_ref) {
            conn.state().handshake.asked_without_certificate();
        }
    }));
    0
}

/// The client's verify callback (SSL_CTX_set_verify(3)), set once on the context: OpenSSL calls
/// it for each certificate of the server's chain; the connection's state records what it sees
/// and decides ([`crate::client_conn::ClientConn::verify`]). The connection is found through
/// the store context's SSL and this backend's own ex_data slot: no lock. (The `openssl` crate's
/// per-connection `set_verify_callback` boxes a closure for every connection and finds it, on
/// every certificate, through a process-wide mutex that every thread's handshakes share.)
/// Anything missing, or a panic, fails verification.
pub(crate) extern "C" fn raw_client_verify(
    preverify_ok: c_int,
    x509_ctx: *mut X509_STORE_CTX,
) -> c_int {
    verify_with(x509_ctx, |ssl| {
        client_conn(ssl).map(|conn| conn.verify(preverify_ok == 1))
    })
}

/// The body of both verify callbacks: the connection's SSL from the store context, then
/// `decide` (`None`: not one of this backend's connections). Anything missing, `None` or a
/// panic fails verification (0).
fn verify_with(
    x509_ctx: *mut X509_STORE_CTX,
    decide: impl FnOnce(&SslRef) -> Option<bool>,
) -> c_int {
    // AssertUnwindSafe: as in `raw_ticket_key_evp_cb`.
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: libssl passes the live store context of the verification it is running.
        let Some(ssl) = (unsafe { ffi::store_ctx_ssl(x509_ctx) }) else {
            return 0;
        };
        decide(ssl).map_or(0, c_int::from)
    }))
    .unwrap_or(0)
}

/// The client's new-session callback (SSL_CTX_sess_set_new_cb(3)): the connection's state
/// stores the session as its policy says ([`crate::client_conn::ClientConn::save`]). Returns
/// 0: libssl keeps its reference (what is kept is the backend's own copy). A panic stores
/// nothing.
pub(crate) extern "C" fn raw_new_session(ssl: *mut SSL, session: *mut SSL_SESSION) -> c_int {
    // AssertUnwindSafe: as in `raw_ticket_key_evp_cb`.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if ssl.is_null() || session.is_null() {
            return;
        }
        // SAFETY: libssl passes the live SSL of the handshake it is running.
        let ssl_ref = unsafe { ffi::ssl_ref(ssl) };
        // SAFETY: libssl passes a live session it holds a reference to for this call.
        let session_ref = unsafe { SslSessionRef::from_ptr(session) };
        if let Some(conn) = client_conn(ssl_ref) {
            conn.save(ssl_ref, session_ref);
        }
    }));
    0
}

/// The client's OCSP status callback (SSL_CTX_set_tlsext_status_cb(3)): the connection's
/// state records the server's status and decides ([`crate::client_conn::ClientConn::status`]).
/// Returns 1 to go on, 0 to fail the handshake; anything missing, or a panic, fails it.
pub(crate) extern "C" fn raw_client_status(ssl: *mut SSL, _arg: *mut c_void) -> c_int {
    // AssertUnwindSafe: as in `raw_ticket_key_evp_cb`.
    catch_unwind(AssertUnwindSafe(|| {
        if ssl.is_null() {
            return 0;
        }
        // SAFETY: libssl passes the live SSL of the handshake it is running.
        let ssl_ref = unsafe { ffi::ssl_ref(ssl) };
        c_int::from(client_conn(ssl_ref).is_some_and(|conn| conn.status(ssl_ref)))
    }))
    .unwrap_or(0)
}

/// The server's OCSP status callback (SSL_CTX_set_tlsext_status_cb(3)): staples the
/// configured response ([`crate::server::staple`]). A staple set is `SSL_TLSEXT_ERR_OK`, none
/// (or a panic) `SSL_TLSEXT_ERR_NOACK`; an error setting it, its errors put back on libssl's
/// stack, fails the handshake.
pub(crate) extern "C" fn raw_server_status(ssl: *mut SSL, _arg: *mut c_void) -> c_int {
    // AssertUnwindSafe: as in `raw_ticket_key_evp_cb`.
    catch_unwind(AssertUnwindSafe(|| {
        if ssl.is_null() {
            return tlsext_err::NOACK;
        }
        // SAFETY: libssl passes the live SSL of the handshake it is running.
        let ssl_ref = unsafe { ffi::ssl_ref(ssl) };
        match staple(ssl_ref) {
            Ok(true) => tlsext_err::OK,
            Ok(false) => tlsext_err::NOACK,
            Err(e) => {
                e.put();
                tlsext_err::ALERT_FATAL
            }
        }
    }))
    .unwrap_or(tlsext_err::NOACK)
}

/// The server's verify callback for a client's certificate (SSL_set_verify(3), set on a
/// connection that asks for one): records what OpenSSL's check says and decides
/// ([`crate::server::verify_client`]). The connection is found through the store context's
/// SSL and this backend's own ex_data slot. Anything missing, or a panic, fails verification.
pub(crate) extern "C" fn raw_server_verify(
    preverify_ok: c_int,
    x509_ctx: *mut X509_STORE_CTX,
) -> c_int {
    verify_with(x509_ctx, |ssl| {
        server_conn(ssl).map(|conn| verify_client(&conn, preverify_ok == 1))
    })
}

/// The ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb(3)).
///
/// Encryption (`enc == 1`): the key ring's current key, a random IV; returns 1, or 0 (no
/// ticket) when there is no key. Decryption: the key named by the ticket; returns 1, 2 when
/// the key's renew time has passed (a new ticket is issued), 0 when the key is unknown or
/// expired (a full handshake).
pub(crate) extern "C" fn raw_ticket_key_evp_cb(
    ssl: *mut SSL,
    key_name: *mut c_uchar,
    iv: *mut c_uchar,
    ctx: *mut EVP_CIPHER_CTX,
    hctx: *mut EVP_MAC_CTX,
    enc: c_int,
) -> c_int {
    // AssertUnwindSafe: on a panic nothing captured is used again; the state behind the
    // connection's mutex is plain data whose poisoning is tolerated by its readers.
    catch_unwind(AssertUnwindSafe(|| {
        if ssl.is_null() || key_name.is_null() || iv.is_null() || ctx.is_null() || hctx.is_null() {
            return -1;
        }
        // SAFETY: libssl passes the live SSL of the handshake it is running.
        let ssl_ref = unsafe { ffi::ssl_ref(ssl) };
        let Some(conn) = server_conn(ssl_ref) else {
            return -1;
        };
        // The ticket's cipher and MAC contexts keyed with `key`'s secrets, for sealing or
        // opening.
        let init = |key: &TicketKey, sealing: bool| {
            let secret = key.secret();
            // SAFETY: the contexts are the ones libssl handed to this callback; `iv` holds the
            // ticket's 16-byte IV (written just before when sealing, the ticket's when
            // opening).
            unsafe {
                ffi::init_ticket_crypto(
                    ctx,
                    hctx,
                    secret.cipher_key(),
                    secret.mac_key(),
                    iv,
                    sealing,
                )
            }
        };
        if enc == 1 {
            conn.with_encrypting_key(|key| {
                // SAFETY: libssl provides 16 bytes of key name and an IV buffer of
                // EVP_MAX_IV_LENGTH (16) bytes.
                if !unsafe { ffi::write_name_and_iv(key_name, key.name().as_bytes(), iv) } {
                    return -1;
                }
                if init(key, true) {
                    1
                } else {
                    -1
                }
            })
            .unwrap_or(0)
        } else {
            // SAFETY: libssl passes the ticket's 16-byte key name.
            let name = unsafe { ffi::read_name(key_name) };
            conn.with_decrypting_key(name, |key, renew| match (init(key, false), renew) {
                (false, _) => 0,
                (true, true) => 2,
                (true, false) => 1,
            })
            .unwrap_or(0)
        }
    }))
    .unwrap_or(-1)
}

/// The generate-ticket callback (SSL_CTX_set_session_ticket_cb(3)): puts the issue time on
/// the core clock into the ticket's app data.
pub(crate) extern "C" fn raw_generate_ticket(ssl: *mut SSL, _arg: *mut c_void) -> c_int {
    // AssertUnwindSafe: as in `raw_ticket_key_evp_cb`.
    catch_unwind(AssertUnwindSafe(|| {
        if ssl.is_null() {
            return 0;
        }
        // SAFETY: libssl passes the live SSL of the handshake it is running.
        let ssl_ref = unsafe { ffi::ssl_ref(ssl) };
        let Some(conn) = server_conn(ssl_ref) else {
            return 0;
        };
        let protocol = protocol_of(ssl_ref);
        let resumed = ssl_ref.session_reused();
        let data = conn.ticket_appdata(protocol, resumed, || {
            // SAFETY: `ssl` is valid for this callback, which runs this closure.
            unsafe { ffi::current_ticket_appdata(ssl) }
        });
        // SAFETY: `ssl` is valid for this callback.
        c_int::from(unsafe { ffi::set_ticket_appdata(ssl, &data) })
    }))
    .unwrap_or(0)
}

/// The decrypt-ticket callback (SSL_CTX_set_session_ticket_cb(3)): applies the ticket
/// lifetime on the core clock to a decrypted ticket; a ticket that did not decrypt, or is too
/// old, means a full handshake and a new ticket.
pub(crate) extern "C" fn raw_decrypt_ticket(
    ssl: *mut SSL,
    session: *mut SSL_SESSION,
    _key_name: *const c_uchar,
    _key_name_len: size_t,
    status: c_int,
    _arg: *mut c_void,
) -> c_int {
    // AssertUnwindSafe: as in `raw_ticket_key_evp_cb`.
    catch_unwind(AssertUnwindSafe(|| {
        if ssl.is_null() {
            return ticket_return::ABORT;
        }
        // SAFETY: libssl passes the live SSL of the handshake it is running.
        let ssl_ref = unsafe { ffi::ssl_ref(ssl) };
        let Some(conn) = server_conn(ssl_ref) else {
            return ticket_return::ABORT;
        };
        let decrypted = status == ticket_status::SUCCESS || status == ticket_status::SUCCESS_RENEW;
        let appdata = if decrypted {
            // SAFETY: on success libssl passes the decrypted session (or NULL).
            unsafe { ffi::ticket_appdata(session) }
        } else {
            None
        };
        conn.decrypt_decision(decrypted, status == ticket_status::SUCCESS_RENEW, appdata)
    }))
    .unwrap_or(ticket_return::ABORT)
}
