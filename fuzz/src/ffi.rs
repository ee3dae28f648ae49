//! The backends' stored-session load paths, step for step, over the C libraries.
//!
//! The backends keep these steps private (`tlsresume-openssl`'s `session_from_der` and
//! `set_session`, `tlsresume-gnutls`'s `Session`), and a real `Client::connect` per input would
//! be a loopback handshake, far too slow to fuzz. So these functions repeat the same library
//! calls in the same order, with the same settings; the only `unsafe` of the fuzz crate.

use std::ffi::CString;
use std::ptr;
use std::sync::OnceLock;

use foreign_types::ForeignType;
use openssl::ssl::{Ssl, SslContext, SslMethod, SslSession, SslSessionCacheMode};

extern "C" {
    /// SSL_SESSION_get0_ticket(3).
    fn SSL_SESSION_get0_ticket(
        s: *const openssl_sys::SSL_SESSION,
        tick: *mut *const std::ffi::c_uchar,
        len: *mut usize,
    );
    /// SSL_SESSION_is_resumable(3).
    fn SSL_SESSION_is_resumable(s: *const openssl_sys::SSL_SESSION) -> std::ffi::c_int;
}

/// What the OpenSSL client does with a cache entry's session bytes before its handshake:
/// `d2i_SSL_SESSION`, `SSL_set_session` on a connection of a client context configured as the
/// backend's (`SESSION_CACHE_CLIENT | NO_INTERNAL`), then the offered ticket is read
/// (`SSL_SESSION_get0_ticket`) and resumability checked. Returns whether OpenSSL accepted it.
pub fn openssl_import(der: &[u8]) -> bool {
    static CTX: OnceLock<Option<SslContext>> = OnceLock::new();
    let Some(ctx) = CTX.get_or_init(|| {
        let mut b = SslContext::builder(SslMethod::tls_client()).ok()?;
        b.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL);
        Some(b.build())
    }) else {
        return false;
    };
    let Ok(session) = SslSession::from_der(der) else {
        return false;
    };
    let Ok(mut ssl) = Ssl::new(ctx) else {
        return false;
    };
    // SAFETY: as in the backend: the session is attached to no context, and libssl checks
    // version and cipher compatibility when it builds the ClientHello; SSL_set_session takes
    // its own reference.
    if unsafe { ssl.set_session(&session) }.is_err() {
        return false;
    }
    let mut tick: *const std::ffi::c_uchar = ptr::null();
    let mut len: usize = 0;
    // SAFETY: a live SSL_SESSION; the out pointers point at live locals.
    unsafe { SSL_SESSION_get0_ticket(session.as_ptr(), &mut tick, &mut len) };
    if !tick.is_null() && len > 0 {
        // SAFETY: libssl returned `len` readable bytes owned by the session, alive here.
        let ticket = unsafe { std::slice::from_raw_parts(tick, len) };
        std::hint::black_box(ticket.to_vec());
    }
    // SAFETY: a live SSL_SESSION borrowed for the call.
    let resumable = unsafe { SSL_SESSION_is_resumable(session.as_ptr()) } == 1;
    std::hint::black_box(resumable);
    true
}

/// What the GnuTLS client does with session data that passed `open_session_data`:
/// `gnutls_init(GNUTLS_CLIENT)`, the backend's priority string, `gnutls_session_set_data`,
/// `gnutls_deinit`. Returns whether GnuTLS accepted the data.
pub fn gnutls_import(data: &[u8]) -> bool {
    static PRIORITY: OnceLock<CString> = OnceLock::new();
    let priority = PRIORITY.get_or_init(|| {
        CString::new("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2").unwrap_or_default()
    });
    let mut session: sys::gnutls_session_t = ptr::null_mut();
    // SAFETY: `session` is a live out pointer; GNUTLS_CLIENT is a valid flag set.
    if unsafe { sys::gnutls_init(&mut session, sys::GNUTLS_CLIENT) } != 0 || session.is_null() {
        return false;
    }
    let mut err_pos: *const std::ffi::c_char = ptr::null();
    // SAFETY: a live session; a NUL-terminated priority string; a live out pointer.
    let ok = unsafe { sys::gnutls_priority_set_direct(session, priority.as_ptr(), &mut err_pos) }
        == 0
        // SAFETY: a live session; GnuTLS copies `data.len()` readable bytes.
        && unsafe { sys::gnutls_session_set_data(session, data.as_ptr().cast(), data.len()) } == 0;
    // SAFETY: the session was initialised above and is not used after this.
    unsafe { sys::gnutls_deinit(session) };
    ok
}
