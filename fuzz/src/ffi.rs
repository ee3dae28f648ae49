//! The backends' stored-session load paths, through the backends' own raw layers.
//!
//! A real `Client::connect` per input would be a loopback handshake, far too slow to fuzz, so
//! these functions make the calls the clients make before their handshakes, with the same
//! settings, through `tlsresume_openssl::raw` and `tlsresume_gnutls::raw`. The one `unsafe`
//! of the fuzz crate is the read of the offered ticket (libssl's accessor has no safe wrapper).

use std::ptr;
use std::sync::OnceLock;

use foreign_types::ForeignTypeRef;
use openssl::ssl::{Ssl, SslContext, SslMethod, SslSessionCacheMode};
use tlsresume_gnutls::raw::{End, Session};

extern "C" {
    /// SSL_SESSION_get0_ticket(3).
    fn SSL_SESSION_get0_ticket(
        s: *const openssl_sys::SSL_SESSION,
        tick: *mut *const std::ffi::c_uchar,
        len: *mut usize,
    );
}

/// What the OpenSSL client does with a cache entry's session bytes before its handshake:
/// `tlsresume_openssl::raw::set_session_der` (`d2i_SSL_SESSION`, `SSL_set_session`) on a
/// fresh connection of a client context configured as the backend's (`SESSION_CACHE_CLIENT |
/// NO_INTERNAL`), then the offered ticket is read. Returns whether OpenSSL accepted it.
pub fn openssl_import(der: &[u8]) -> bool {
    static CTX: OnceLock<Option<SslContext>> = OnceLock::new();
    let Some(ctx) = CTX.get_or_init(|| {
        let mut b = SslContext::builder(SslMethod::tls_client()).ok()?;
        b.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL);
        Some(b.build())
    }) else {
        return false;
    };
    let Ok(mut ssl) = Ssl::new(ctx) else {
        return false;
    };
    if tlsresume_openssl::raw::set_session_der(&mut ssl, der).is_err() {
        return false;
    }
    if let Some(session) = ssl.session() {
        let mut tick: *const std::ffi::c_uchar = ptr::null();
        let mut len: usize = 0;
        // SAFETY: a live SSL_SESSION owned by `ssl`; the out pointers point at live locals.
        unsafe { SSL_SESSION_get0_ticket(session.as_ptr(), &mut tick, &mut len) };
        if !tick.is_null() && len > 0 {
            // SAFETY: libssl returned `len` readable bytes owned by the session, alive here.
            let ticket = unsafe { std::slice::from_raw_parts(tick, len) };
            std::hint::black_box(ticket.to_vec());
        }
    }
    true
}

/// What the GnuTLS client does with session data that opened under the store's key
/// (`SessionKey::open_session`): a client
/// session (`gnutls_init`), the backend's priority string for TLS 1.2 and 1.3,
/// `gnutls_session_set_data`, then `gnutls_deinit` on drop. Returns whether GnuTLS accepted
/// the data.
pub fn gnutls_import(data: &[u8]) -> bool {
    let Ok(mut session) = Session::new(End::Client) else {
        return false;
    };
    session
        .set_priority("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2")
        .is_ok()
        && session.set_session_data(data).is_ok()
}
