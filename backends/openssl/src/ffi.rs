//! Every libssl function the `openssl` crate does not wrap, declared over `openssl-sys`, and
//! thin safe wrappers around them. All `unsafe` of the crate lives here and in
//! the backend's `callbacks` module.
//!
//! The declarations follow the OpenSSL 3.0 manual pages named on each item.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::ptr;
use std::sync::OnceLock;

use foreign_types::{ForeignType, ForeignTypeRef};
use libc::{c_char, c_int, c_long, c_uchar, c_uint, c_ulong, c_void, size_t};
use openssl::cipher::Cipher;
use openssl::error::ErrorStack;
use openssl::ssl::{SslCipher, SslContextBuilder, SslRef, SslSession, SslSessionRef};
use openssl::stack::{Stack, StackRef};
use openssl_sys::{
    EVP_CIPHER_CTX, EVP_MAC_CTX, EVP_PKEY, OSSL_PARAM, SSL, SSL_CTX, SSL_SESSION, X509,
};
use tlsresume_core::{DaneAuthority, TlsaRecord};

/// `SSL_TICKET_STATUS` values (SSL_CTX_set_session_ticket_cb(3)).
pub(crate) mod ticket_status {
    use libc::c_int;
    /// The ticket decrypted.
    pub(crate) const SUCCESS: c_int = 5;
    /// The ticket decrypted and the key callback asked for renewal.
    pub(crate) const SUCCESS_RENEW: c_int = 6;
}

/// `SSL_TICKET_RETURN` values (SSL_CTX_set_session_ticket_cb(3)).
pub(crate) mod ticket_return {
    use libc::c_int;
    /// Fatal: abort the handshake.
    pub(crate) const ABORT: c_int = 0;
    /// Do not use the ticket; no new ticket either.
    pub(crate) const IGNORE: c_int = 1;
    /// Do not use the ticket; issue a new one (full handshake).
    pub(crate) const IGNORE_RENEW: c_int = 2;
    /// Use the ticket.
    pub(crate) const USE: c_int = 3;
    /// Use the ticket and issue a new one.
    pub(crate) const USE_RENEW: c_int = 4;
}

/// `SSL_OP_NO_TICKET`.
pub(crate) const SSL_OP_NO_TICKET: u64 = 0x0000_4000;

/// The ticket key callback type of `SSL_CTX_set_tlsext_ticket_key_evp_cb(3)`.
pub(crate) type TicketKeyEvpCb = unsafe extern "C" fn(
    ssl: *mut SSL,
    key_name: *mut c_uchar,
    iv: *mut c_uchar,
    ctx: *mut EVP_CIPHER_CTX,
    hctx: *mut EVP_MAC_CTX,
    enc: c_int,
) -> c_int;

/// `SSL_CTX_generate_session_ticket_fn`.
pub(crate) type GenerateTicketCb = unsafe extern "C" fn(ssl: *mut SSL, arg: *mut c_void) -> c_int;

/// `SSL_CTX_decrypt_session_ticket_fn`.
pub(crate) type DecryptTicketCb = unsafe extern "C" fn(
    ssl: *mut SSL,
    session: *mut SSL_SESSION,
    key_name: *const c_uchar,
    key_name_len: size_t,
    status: c_int,
    arg: *mut c_void,
) -> c_int;

/// The client certificate callback type of `SSL_CTX_set_client_cert_cb(3)`.
pub(crate) type ClientCertCb = unsafe extern "C" fn(
    ssl: *mut SSL,
    x509: *mut *mut openssl_sys::X509,
    pkey: *mut *mut openssl_sys::EVP_PKEY,
) -> c_int;

extern "C" {
    /// SSL_free_buffers(3): frees the connection's read and write buffers if they are empty.
    fn SSL_free_buffers(ssl: *mut openssl_sys::SSL) -> c_int;
    /// SSL_CTX_set_client_cert_cb(3): called when a server asks for a certificate and none is
    /// set on the connection.
    fn SSL_CTX_set_client_cert_cb(ctx: *mut SSL_CTX, cb: Option<ClientCertCb>);
    /// SSL_CTX_set_tlsext_ticket_key_evp_cb(3): a function (not a macro) in libssl 3.
    fn SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx: *mut SSL_CTX, cb: Option<TicketKeyEvpCb>)
        -> c_int;
    /// SSL_CTX_set_session_ticket_cb(3).
    fn SSL_CTX_set_session_ticket_cb(
        ctx: *mut SSL_CTX,
        gen_cb: Option<GenerateTicketCb>,
        dec_cb: Option<DecryptTicketCb>,
        arg: *mut c_void,
    ) -> c_int;
    /// SSL_SESSION_set1_ticket_appdata(3).
    fn SSL_SESSION_set1_ticket_appdata(
        session: *mut SSL_SESSION,
        data: *const c_void,
        len: size_t,
    ) -> c_int;
    /// SSL_SESSION_get0_ticket_appdata(3).
    fn SSL_SESSION_get0_ticket_appdata(
        session: *mut SSL_SESSION,
        data: *mut *mut c_void,
        len: *mut size_t,
    ) -> c_int;
    /// SSL_get1_supported_ciphers(3).
    fn SSL_get1_supported_ciphers(ssl: *mut SSL) -> *mut openssl_sys::stack_st_SSL_CIPHER;
    /// SSL_CTX_get_ciphers(3).
    fn SSL_CTX_get_ciphers(ctx: *const SSL_CTX) -> *mut openssl_sys::stack_st_SSL_CIPHER;
    /// SSL_CTX_set_timeout(3).
    fn SSL_CTX_set_timeout(ctx: *mut SSL_CTX, t: c_long) -> c_long;
    /// SSL_SESSION_get_ticket_lifetime_hint(3).
    fn SSL_SESSION_get_ticket_lifetime_hint(session: *const SSL_SESSION) -> c_ulong;
    /// SSL_SESSION_get0_ticket(3).
    fn SSL_SESSION_get0_ticket(
        session: *const SSL_SESSION,
        tick: *mut *const c_uchar,
        len: *mut size_t,
    );
    /// SSL_SESSION_is_resumable(3).
    fn SSL_SESSION_is_resumable(session: *const SSL_SESSION) -> c_int;
    /// SSL_SESSION_dup(3).
    fn SSL_SESSION_dup(src: *const SSL_SESSION) -> *mut SSL_SESSION;
    /// SSL_set_options(3) (a function in libssl 3, taking `uint64_t`).
    fn SSL_set_options(ssl: *mut SSL, op: u64) -> u64;
    /// OSSL_PARAM_construct_utf8_string(3).
    fn OSSL_PARAM_construct_utf8_string(
        key: *const c_char,
        buf: *mut c_char,
        bsize: size_t,
    ) -> OSSL_PARAM;
    /// SSL_CTX_dane_enable(3).
    fn SSL_CTX_dane_enable(ctx: *mut SSL_CTX) -> c_int;
    /// SSL_dane_enable(3).
    fn SSL_dane_enable(ssl: *mut SSL, basedomain: *const c_char) -> c_int;
    /// SSL_dane_set_flags(3).
    fn SSL_dane_set_flags(ssl: *mut SSL, flags: c_ulong) -> c_ulong;
    /// SSL_dane_tlsa_add(3).
    fn SSL_dane_tlsa_add(
        ssl: *mut SSL,
        usage: u8,
        selector: u8,
        mtype: u8,
        data: *const c_uchar,
        dlen: size_t,
    ) -> c_int;
    /// SSL_add1_host(3).
    fn SSL_add1_host(ssl: *mut SSL, hostname: *const c_char) -> c_int;
    /// SSL_get0_dane_authority(3).
    fn SSL_get0_dane_authority(
        ssl: *mut SSL,
        mcert: *mut *mut X509,
        mspki: *mut *mut EVP_PKEY,
    ) -> c_int;
    /// X509_ALGOR_cmp(3).
    fn X509_ALGOR_cmp(
        a: *const openssl_sys::X509_ALGOR,
        b: *const openssl_sys::X509_ALGOR,
    ) -> c_int;
    /// SSL_get0_dane_tlsa(3).
    fn SSL_get0_dane_tlsa(
        ssl: *mut SSL,
        usage: *mut u8,
        selector: *mut u8,
        mtype: *mut u8,
        data: *mut *const c_uchar,
        dlen: *mut size_t,
    ) -> c_int;
}

/// `DANE_FLAG_NO_DANE_EE_NAMECHECKS` (x509_vfy.h): a DANE-EE(3) match ignores the names in the
/// certificate, as RFC 7672 §3.1.1 wants.
const DANE_FLAG_NO_DANE_EE_NAMECHECKS: c_ulong = 1;

/// `SSL_CTX_dane_enable`: lets the context's connections use DANE (the digests of matching
/// types 1 and 2 registered).
pub(crate) fn ctx_dane_enable(ctx: &mut SslContextBuilder) -> Result<(), ErrorStack> {
    // SAFETY: `ctx` is a valid SSL_CTX being built; the call only allocates its DANE tables.
    cvt(unsafe { SSL_CTX_dane_enable(ctx.as_ptr()) }).map(|_| ())
}

/// Enables DANE on `ssl` with `names[0]` as the TLSA base domain (also the SNI when none is
/// set) and the other names as further reference names, with DANE-EE name checks off
/// (RFC 7672 §3.1.1); then adds `records` (usage, selector, matching type, data). Returns
/// which records libssl took (it refuses one it cannot use: a digest of the wrong length, data
/// that does not parse as a certificate or key).
pub(crate) fn dane_enable(
    ssl: &mut SslRef,
    names: &[String],
    records: &[(u8, u8, u8, &[u8])],
) -> Result<Vec<bool>, ErrorStack> {
    let names: Vec<CString> = names
        .iter()
        .map(|n| CString::new(n.as_str()))
        .collect::<Result<_, _>>()
        .map_err(|_| ErrorStack::get())?;
    let Some((base, others)) = names.split_first() else {
        return Err(ErrorStack::get());
    };
    // SAFETY: `ssl` is valid and its context had SSL_CTX_dane_enable; the name is a
    // NUL-terminated string libssl copies.
    cvt(unsafe { SSL_dane_enable(ssl.as_ptr(), base.as_ptr()) })?;
    // SAFETY: valid SSL with DANE enabled; setting a flag bit has no other precondition.
    unsafe { SSL_dane_set_flags(ssl.as_ptr(), DANE_FLAG_NO_DANE_EE_NAMECHECKS) };
    for name in others {
        // SAFETY: valid SSL; the name is a NUL-terminated string libssl copies.
        cvt(unsafe { SSL_add1_host(ssl.as_ptr(), name.as_ptr()) })?;
    }
    let mut taken = Vec::with_capacity(records.len());
    for &(usage, selector, mtype, data) in records {
        // SAFETY: valid SSL with DANE enabled; `data` is `data.len()` readable bytes that
        // libssl copies (or parses) during the call.
        let r = unsafe {
            SSL_dane_tlsa_add(
                ssl.as_ptr(),
                usage,
                selector,
                mtype,
                data.as_ptr(),
                data.len(),
            )
        };
        if r < 0 {
            return Err(ErrorStack::get());
        }
        // 0: an unusable record, which libssl reports on the error queue: drained here.
        if r == 0 {
            let _ = ErrorStack::get();
        }
        taken.push(r > 0);
    }
    Ok(taken)
}

/// The TLSA record that authenticated the peer and the depth of the certificate it matched
/// (`SSL_get0_dane_authority`, `SSL_get0_dane_tlsa`), or `None` when libssl reports no DANE
/// authority (-1: no match, verification failed, or none done on this handshake).
pub(crate) fn dane_authority(ssl: &SslRef) -> Option<DaneAuthority> {
    // SAFETY: valid SSL; NULL out-parameters ask for nothing but the depth.
    let depth = unsafe { SSL_get0_dane_authority(ssl.as_ptr(), ptr::null_mut(), ptr::null_mut()) };
    let depth = u8::try_from(depth).ok()?;
    let (mut usage, mut selector, mut mtype) = (0u8, 0u8, 0u8);
    let mut data: *const c_uchar = ptr::null();
    let mut dlen: size_t = 0;
    // SAFETY: valid SSL; every out-parameter points at a live local.
    let r = unsafe {
        SSL_get0_dane_tlsa(
            ssl.as_ptr(),
            &mut usage,
            &mut selector,
            &mut mtype,
            &mut data,
            &mut dlen,
        )
    };
    if r < 0 {
        return None;
    }
    // SAFETY: libssl returned NULL or `dlen` readable bytes owned by the connection's DANE
    // state, which outlives this copy.
    let data = unsafe { from_raw_parts(data, dlen) }.to_vec();
    Some(DaneAuthority {
        record: TlsaRecord::new(usage, selector, mtype, data),
        depth: Some(depth),
    })
}

/// Maps a libssl "1 is success, anything else failure" return to a `Result`, draining the
/// thread's error queue (the `cvt` convention of the `openssl` crate; see ERR_get_error(3)).
#[inline]
fn cvt(r: c_int) -> Result<c_int, ErrorStack> {
    if r <= 0 {
        Err(ErrorStack::get())
    } else {
        Ok(r)
    }
}

/// A byte slice from a C pointer and length that accepts `(NULL, 0)` (the `util::from_raw_parts`
/// pattern of the `openssl` crate).
///
/// # Safety
///
/// Unless `len` is 0, `data` must point at `len` readable bytes that live for `'a`.
unsafe fn from_raw_parts<'a>(data: *const u8, len: usize) -> &'a [u8] {
    if data.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: non-NULL with `len` readable bytes living for 'a (caller).
        unsafe { std::slice::from_raw_parts(data, len) }
    }
}

/// Installs `cb` (the backend's `callbacks::raw_client_cert`) as the context's client
/// certificate callback.
pub(crate) fn set_client_cert_cb(ctx: &mut SslContextBuilder, cb: ClientCertCb) {
    // SAFETY: `ctx.as_ptr()` is a valid SSL_CTX owned by the builder, and the callback is a
    // plain function with the exact signature libssl 3 declares.
    unsafe { SSL_CTX_set_client_cert_cb(ctx.as_ptr(), Some(cb)) }
}

/// Installs `cb` (the backend's `callbacks::raw_ticket_key_evp_cb`) as the context's ticket key
/// callback.
pub(crate) fn set_ticket_key_evp_cb(
    ctx: &mut SslContextBuilder,
    cb: TicketKeyEvpCb,
) -> Result<(), ErrorStack> {
    // SAFETY: `ctx.as_ptr()` is a valid SSL_CTX owned by the builder, and the callback is a
    // plain function with the exact signature libssl 3 declares.
    cvt(unsafe { SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx.as_ptr(), Some(cb)) }).map(|_| ())
}

/// Installs the session ticket app-data callbacks (the backend's
/// `callbacks::raw_generate_ticket` and `callbacks::raw_decrypt_ticket`); their state comes
/// from the SSL's ex_data, so no callback argument is passed.
pub(crate) fn set_session_ticket_cb(
    ctx: &mut SslContextBuilder,
    generate: GenerateTicketCb,
    decrypt: DecryptTicketCb,
) -> Result<(), ErrorStack> {
    // SAFETY: valid SSL_CTX; the callbacks have the declared signatures and a NULL argument
    // that they never dereference.
    cvt(unsafe {
        SSL_CTX_set_session_ticket_cb(ctx.as_ptr(), Some(generate), Some(decrypt), ptr::null_mut())
    })
    .map(|_| ())
}

/// The cipher suites the context would negotiate (`SSL_CTX_get_ciphers`), by code point and
/// OpenSSL name, in its order of preference.
pub(crate) fn ctx_ciphers(ctx: &SslContextBuilder) -> Vec<(u16, String)> {
    // SAFETY: `ctx.as_ptr()` is a valid SSL_CTX; the stack returned is owned by it.
    let stack = unsafe { SSL_CTX_get_ciphers(ctx.as_ptr()) };
    if stack.is_null() {
        return Vec::new();
    }
    // SAFETY: a non-null STACK_OF(SSL_CIPHER) owned by the context, read only while the
    // builder is borrowed (nothing can change the list meanwhile).
    let stack: &StackRef<SslCipher> = unsafe { StackRef::from_ptr(stack) };
    stack
        .iter()
        .map(|c| (u16::from_be_bytes(c.protocol_id()), c.name().to_string()))
        .collect()
}

/// The cipher suites a connection could use (`SSL_get1_supported_ciphers`): its list less
/// those its versions and security level (the system's OpenSSL configuration included)
/// disable, by code point and OpenSSL name.
pub(crate) fn supported_ciphers(ssl: &SslRef) -> Vec<(u16, String)> {
    // SAFETY: `ssl.as_ptr()` is a valid SSL; the call only reads it.
    let stack = unsafe { SSL_get1_supported_ciphers(ssl.as_ptr()) };
    if stack.is_null() {
        return Vec::new();
    }
    // SAFETY: a new STACK_OF(SSL_CIPHER) we own (dropping it frees the stack; the ciphers are
    // the library's static ones and `SslCipher` frees nothing).
    let stack: Stack<SslCipher> = unsafe { Stack::from_ptr(stack) };
    stack
        .iter()
        .map(|c| (u16::from_be_bytes(c.protocol_id()), c.name().to_string()))
        .collect()
}

/// Sets the context's session timeout (the lifetime hint of the tickets it issues).
pub(crate) fn set_ctx_timeout(ctx: &mut SslContextBuilder, secs: u64) {
    let secs = c_long::try_from(secs).unwrap_or(c_long::MAX);
    // SAFETY: valid SSL_CTX; SSL_CTX_set_timeout only stores the number.
    unsafe {
        SSL_CTX_set_timeout(ctx.as_ptr(), secs);
    }
}

/// `SSL_CTX_set_dh_auto(ctx, 1)`: finite-field Diffie-Hellman parameters chosen by OpenSSL to
/// match the certificate's strength (RFC 7919 groups), so the `DHE` suites of the cipher list
/// can be negotiated, as `openssl s_server` and Exim (its built-in `tls_dhparam`) do. Without
/// parameters OpenSSL skips those suites, and a TLS 1.2 client that can use nothing else (only
/// `DHE` suites, or `ECDHE` ones without a usable `supported_groups` extension) is refused with
/// "no shared cipher".
pub(crate) fn set_dh_auto(ctx: &mut SslContextBuilder) -> Result<(), ErrorStack> {
    // SAFETY: valid SSL_CTX; the control only sets a flag on the context.
    let done = unsafe { openssl_sys::SSL_CTX_set_dh_auto(ctx.as_ptr(), 1) };
    if done == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

/// `SSL_set_options(ssl, SSL_OP_NO_TICKET)`: no ticket for this connection.
pub(crate) fn set_no_ticket(ssl: &mut SslRef) {
    // SAFETY: `ssl` is a valid SSL; setting an option bit has no other precondition.
    unsafe {
        SSL_set_options(ssl.as_ptr(), SSL_OP_NO_TICKET);
    }
}

/// The ticket lifetime hint the server gave for `session`, in seconds.
// `c_ulong` is `u64` here but `u32` on some targets.
#[allow(clippy::useless_conversion)]
pub(crate) fn ticket_lifetime_hint(session: &SslSessionRef) -> u64 {
    // SAFETY: valid SSL_SESSION borrowed for the call.
    u64::from(unsafe { SSL_SESSION_get_ticket_lifetime_hint(session.as_ptr()) })
}

/// The opaque ticket a client holds for `session` (empty when none).
pub(crate) fn session_ticket(session: &SslSessionRef) -> Vec<u8> {
    let mut tick: *const c_uchar = ptr::null();
    let mut len: size_t = 0;
    // SAFETY: valid SSL_SESSION; the out pointers point at live locals.
    unsafe { SSL_SESSION_get0_ticket(session.as_ptr(), &mut tick, &mut len) };
    // SAFETY: libssl returned NULL or `len` readable bytes owned by the session, which
    // outlives this copy.
    unsafe { from_raw_parts(tick, len) }.to_vec()
}

/// Whether `session` can be resumed (SSL_SESSION_is_resumable(3)).
pub(crate) fn session_is_resumable(session: &SslSessionRef) -> bool {
    // SAFETY: valid SSL_SESSION borrowed for the call.
    unsafe { SSL_SESSION_is_resumable(session.as_ptr()) == 1 }
}

/// `SSL_set_session`: offers `session` on this connection.
///
/// The `openssl` crate marks this `unsafe` because the session must come from a context
/// compatible with the connection's; our sessions are decoded from DER that this backend wrote
/// and are not attached to any context, and libssl checks version and cipher compatibility
/// when it builds the ClientHello (an incompatible session means a full handshake).
pub(crate) fn set_session(ssl: &mut SslRef, session: &SslSessionRef) -> Result<(), ErrorStack> {
    // SAFETY: see above; SSL_set_session takes its own reference to the session.
    unsafe { ssl.set_session(session) }
}

/// Decodes the DER session `der` (d2i_SSL_SESSION(3)) and offers it on `ssl`
/// (SSL_set_session(3)): the one way to resume with OpenSSL driven directly, without `unsafe`.
///
/// The `openssl` crate's `SslRef::set_session` is `unsafe` because a session must not be
/// shared with another context's internal session cache. Taking DER instead of a session keeps
/// that contract by construction: the session is decoded here, belongs to no context and no
/// cache, and only `ssl` (which takes its own reference) holds it once this returns. Malformed
/// DER is an error; a session libssl cannot use with this connection's versions or ciphers is
/// not an error but a full handshake, decided when the ClientHello is built.
///
/// This is what the backend does for every resumed connection (its store holds DER); it is
/// public as [`crate::raw::set_session_der`] for baselines that drive OpenSSL directly.
pub fn set_session_der(ssl: &mut SslRef, der: &[u8]) -> Result<(), ErrorStack> {
    let session = session_from_der(der)?;
    set_session(ssl, &session)
}

/// Decodes a DER session (d2i_SSL_SESSION(3)); any malformed input is an error.
pub(crate) fn session_from_der(der: &[u8]) -> Result<SslSession, ErrorStack> {
    SslSession::from_der(der)
}

/// A copy of `session` with a reference count, lock and ex_data of its own
/// (SSL_SESSION_dup(3)): nothing a connection later does to one (libssl marks the session of a
/// connection freed without a shutdown not resumable) reaches the other. The peer certificates
/// are shared by reference, not decoded again, which is what makes this far cheaper than
/// [`session_from_der`].
pub(crate) fn session_dup(session: &SslSessionRef) -> Result<SslSession, ErrorStack> {
    // SAFETY: valid SSL_SESSION borrowed for the call; SSL_SESSION_dup only reads it and
    // returns NULL or a new session holding the one reference.
    let copy = unsafe { SSL_SESSION_dup(session.as_ptr()) };
    if copy.is_null() {
        return Err(ErrorStack::get());
    }
    // SAFETY: `copy` is a new SSL_SESSION whose one reference passes to the owned type, which
    // frees it (SSL_SESSION_free) on drop.
    Ok(unsafe { SslSession::from_ptr(copy) })
}

/// Sets the app data a new ticket carries on the connection's current session.
///
/// # Safety
///
/// `ssl` must be a valid SSL pointer handed to a libssl callback.
pub(crate) unsafe fn set_ticket_appdata(ssl: *mut SSL, data: &[u8]) -> bool {
    // SAFETY: the caller guarantees `ssl` is valid; SSL_get_session returns NULL or a session
    // owned by the SSL.
    let session = unsafe { openssl_sys::SSL_get_session(ssl) };
    if session.is_null() {
        return false;
    }
    // SAFETY: `session` is live; libssl copies `data`.
    unsafe { SSL_SESSION_set1_ticket_appdata(session, data.as_ptr().cast(), data.len()) == 1 }
}

/// The app data a decrypted ticket carried.
///
/// # Safety
///
/// `session` must be NULL or a valid SSL_SESSION pointer handed to a libssl callback.
pub(crate) unsafe fn ticket_appdata(session: *mut SSL_SESSION) -> Option<Vec<u8>> {
    if session.is_null() {
        return None;
    }
    let mut data: *mut c_void = ptr::null_mut();
    let mut len: size_t = 0;
    // SAFETY: `session` is valid (caller); the out pointers point at live locals.
    let ok = unsafe { SSL_SESSION_get0_ticket_appdata(session, &mut data, &mut len) };
    if ok != 1 {
        return None;
    }
    // SAFETY: libssl returned NULL or `len` readable bytes owned by the session.
    Some(unsafe { from_raw_parts(data.cast::<u8>().cast_const(), len) }.to_vec())
}

/// The app data of the connection's current session (for a TLS 1.2 renewal, which keeps the
/// resumed session's issue time).
///
/// # Safety
///
/// `ssl` must be a valid SSL pointer handed to a libssl callback.
pub(crate) unsafe fn current_ticket_appdata(ssl: *mut SSL) -> Option<Vec<u8>> {
    // SAFETY: `ssl` is valid (caller).
    let session = unsafe { openssl_sys::SSL_get_session(ssl) };
    // SAFETY: NULL or a session owned by the SSL.
    unsafe { ticket_appdata(session) }
}

/// Sets up the ticket cipher (AES-256-CBC) and MAC (HMAC-SHA256) contexts libssl handed to
/// the ticket key callback.
///
/// # Safety
///
/// `ctx` and `hctx` must be the valid contexts handed to the callback; `iv` must point at the
/// 16 bytes of IV libssl passed (written when `enc`, read otherwise).
pub(crate) unsafe fn init_ticket_crypto(
    ctx: *mut EVP_CIPHER_CTX,
    hctx: *mut EVP_MAC_CTX,
    cipher_key: &[u8; 32],
    mac_key: &[u8; 32],
    iv: *mut c_uchar,
    enc: bool,
) -> bool {
    let cipher = ticket_cipher();
    // SAFETY: `cipher` is AES-256-CBC, fetched once and kept for the process (or libcrypto's
    // static one); the key is 32 bytes and the IV 16, as AES-256-CBC needs; `ctx` is valid
    // (caller).
    let cipher_ok = unsafe {
        if enc {
            openssl_sys::EVP_EncryptInit_ex(ctx, cipher, ptr::null_mut(), cipher_key.as_ptr(), iv)
        } else {
            openssl_sys::EVP_DecryptInit_ex(ctx, cipher, ptr::null_mut(), cipher_key.as_ptr(), iv)
        }
    };
    if cipher_ok != 1 {
        return false;
    }
    let mut digest = *b"SHA256\0";
    // SAFETY: the parameter constructors only record the pointers; `mac_key` and `digest` live
    // until EVP_MAC_CTX_set_params has copied them below.
    let params = unsafe {
        [
            openssl_sys::OSSL_PARAM_construct_octet_string(
                c"key".as_ptr(),
                mac_key.as_ptr().cast_mut().cast(),
                mac_key.len(),
            ),
            OSSL_PARAM_construct_utf8_string(c"digest".as_ptr(), digest.as_mut_ptr().cast(), 0),
            openssl_sys::OSSL_PARAM_construct_end(),
        ]
    };
    // SAFETY: `hctx` is valid (caller); `params` is END-terminated and its buffers are live.
    unsafe { openssl_sys::EVP_MAC_CTX_set_params(hctx, params.as_ptr()) == 1 }
}

/// The tickets' cipher, AES-256-CBC, fetched from the default provider once for the process.
/// `EVP_aes_256_cbc()` is a legacy description: each `EVP_EncryptInit_ex` with it looks the
/// provider's implementation up again in libcrypto's method store (~1 150 instructions a
/// ticket, measured under callgrind); a fetched cipher is used as it is. A fetched
/// `EVP_CIPHER` is reference-counted and never changed, so one serves every thread (as libssl
/// keeps the ciphers it fetches in its `SSL_CTX`). Should the fetch fail, the legacy
/// description is used, as before.
fn ticket_cipher() -> *const openssl_sys::EVP_CIPHER {
    static FETCHED: OnceLock<Option<Cipher>> = OnceLock::new();
    match FETCHED.get_or_init(|| Cipher::fetch(None, "AES-256-CBC", None).ok()) {
        Some(cipher) => cipher.as_ptr(),
        // SAFETY: EVP_aes_256_cbc takes nothing and returns libcrypto's static description.
        None => unsafe { openssl_sys::EVP_aes_256_cbc() },
    }
}

/// Copies a key name into the 16 bytes libssl provides, and random bytes into the IV.
///
/// # Safety
///
/// `key_name` and `iv` must point at 16 writable bytes each.
pub(crate) unsafe fn write_name_and_iv(
    key_name: *mut c_uchar,
    name: &[u8; 16],
    iv: *mut c_uchar,
) -> bool {
    // SAFETY: 16 writable bytes (caller), not overlapping `name`.
    unsafe { ptr::copy_nonoverlapping(name.as_ptr(), key_name, 16) };
    // SAFETY: 16 writable bytes (caller).
    let iv = unsafe { std::slice::from_raw_parts_mut(iv, 16) };
    openssl::rand::rand_bytes(iv).is_ok()
}

/// Reads the 16-byte key name libssl passes to the ticket key callback on decryption.
///
/// # Safety
///
/// `key_name` must point at 16 readable bytes.
pub(crate) unsafe fn read_name(key_name: *const c_uchar) -> [u8; 16] {
    let mut out = [0u8; 16];
    // SAFETY: 16 readable bytes (caller).
    unsafe { ptr::copy_nonoverlapping(key_name, out.as_mut_ptr(), 16) };
    out
}

/// Borrows the `SslRef` of an SSL pointer handed to a callback.
///
/// # Safety
///
/// `ssl` must be a valid, non-NULL SSL pointer that stays valid for `'a`.
pub(crate) unsafe fn ssl_ref<'a>(ssl: *mut SSL) -> &'a mut SslRef {
    // SAFETY: the caller guarantees validity for 'a.
    unsafe { SslRef::from_ptr_mut(ssl) }
}

/// `f` of the body of extension `ext_type` in the ClientHello being processed (`None` when the
/// client sent none); only meaningful inside the client hello callback
/// (SSL_client_hello_get0_ext(3)). The body is lent, not copied: it lives in libssl's buffer.
pub(crate) fn with_client_hello_ext<T>(
    ssl: &SslRef,
    ext_type: c_uint,
    f: impl FnOnce(Option<&[u8]>) -> T,
) -> T {
    let mut data: *const c_uchar = ptr::null();
    let mut len: size_t = 0;
    // SAFETY: `ssl` is a live SSL; libssl writes a pointer into its own ClientHello buffer and
    // its length, both valid until the callback returns, which outlives this call.
    let found = unsafe {
        openssl_sys::SSL_client_hello_get0_ext(ssl.as_ptr(), ext_type, &mut data, &mut len)
    };
    if found != 1 || data.is_null() {
        return f(None);
    }
    // SAFETY: on success `data` points at `len` readable bytes in libssl's ClientHello buffer,
    // which nothing changes while `ssl` is borrowed here; the slice does not escape `f`.
    f(Some(unsafe { from_raw_parts(data, len) }))
}

/// An SSL ex_data slot holding an `Arc<T>` as the pointer `Arc::into_raw` gives, its
/// reference given back by [`free_arc`](crate::callbacks::free_arc) when libssl frees the SSL.
/// (The `openssl` crate's `Index` boxes every value it stores: an allocation per connection for
/// what is already a pointer.)
pub(crate) struct ArcIndex<T> {
    index: c_int,
    _value: std::marker::PhantomData<fn() -> std::sync::Arc<T>>,
}

impl<T> Clone for ArcIndex<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ArcIndex<T> {}

impl<T: Send + Sync + 'static> ArcIndex<T> {
    /// A new slot; `None` when libssl has none to give.
    pub(crate) fn new() -> Option<Self> {
        // SAFETY: registers `free_arc::<T>` as the slot's free function, which libssl calls with
        // each SSL's value in this slot (null when none was set) when it frees the SSL; no new
        // or dup function (no SSL of this backend is duplicated).
        let index = unsafe {
            openssl_sys::SSL_get_ex_new_index(
                0,
                ptr::null_mut(),
                None,
                None,
                Some(crate::callbacks::free_arc::<T>),
            )
        };
        (index >= 0).then_some(Self {
            index,
            _value: std::marker::PhantomData,
        })
    }

    /// Stores `value` in `ssl`'s slot, releasing a value stored there before.
    pub(crate) fn set(self, ssl: &mut SslRef, value: std::sync::Arc<T>) {
        let old = self.raw(ssl);
        let raw = std::sync::Arc::into_raw(value);
        // SAFETY: `ssl` is a live SSL and `self.index` a slot of SSLs; libssl keeps the pointer
        // until the SSL is freed, when `free_arc::<T>` gives its reference back.
        let stored = unsafe {
            openssl_sys::SSL_set_ex_data(ssl.as_ptr(), self.index, raw.cast_mut().cast())
        };
        let released = if stored == 1 { old } else { raw };
        if !released.is_null() {
            // SAFETY: `released` came from `Arc::into_raw` (here, or when it was stored) and the
            // SSL no longer holds it: its reference is given back once.
            drop(unsafe { std::sync::Arc::from_raw(released) });
        }
    }

    /// `ssl`'s value, if one was stored: another reference to it.
    pub(crate) fn get(self, ssl: &SslRef) -> Option<std::sync::Arc<T>> {
        let raw = self.raw(ssl);
        if raw.is_null() {
            return None;
        }
        // SAFETY: a value in this slot is a pointer from `Arc::into_raw` whose reference the SSL
        // holds until it is freed, which cannot happen while `ssl` is borrowed here; the count
        // is raised first, so the reference made for the caller is its own.
        unsafe {
            std::sync::Arc::increment_strong_count(raw);
            Some(std::sync::Arc::from_raw(raw))
        }
    }

    fn raw(self, ssl: &SslRef) -> *const T {
        // SAFETY: `ssl` is a live SSL; reading a slot changes nothing.
        unsafe { openssl_sys::SSL_get_ex_data(ssl.as_ptr(), self.index) }
            .cast::<T>()
            .cast_const()
    }
}

/// Adds `cert` to the chain of the certificate last loaded into the context
/// (SSL_CTX_add1_chain_cert(3)): each certificate of a context keeps its own chain.
pub(crate) fn ctx_add1_chain_cert(
    ctx: &mut SslContextBuilder,
    cert: &openssl::x509::X509Ref,
) -> Result<(), ErrorStack> {
    // SAFETY: `ctx` is a live SSL_CTX owned by the builder and `cert` a live X509; with larg 1
    // (add1) libssl takes its own reference to the certificate.
    let r = unsafe {
        openssl_sys::SSL_CTX_ctrl(
            ctx.as_ptr(),
            openssl_sys::SSL_CTRL_CHAIN_CERT,
            1,
            cert.as_ptr().cast(),
        )
    };
    cvt(c_int::try_from(r).unwrap_or(0)).map(|_| ())
}

/// Whether two parsed certificates have the same DER, byte for byte, without encoding either:
/// the same object, or `X509_cmp(3)` equal (the SHA-1 of the whole certificate, cached when
/// libssl checked it, and the received encoding of the `tbsCertificate`) with the same
/// signature algorithm (`X509_ALGOR_cmp(3)`) and signature bits: the three parts of the
/// certificate's `SEQUENCE`.
pub(crate) fn same_certificate(a: &openssl::x509::X509Ref, b: &openssl::x509::X509Ref) -> bool {
    if a.as_ptr() == b.as_ptr() {
        return true;
    }
    if a != b {
        return false;
    }
    let (sig_a, sig_b) = (a.signature(), b.signature());
    if sig_a.as_slice() != sig_b.as_slice() {
        return false;
    }
    // SAFETY: both algorithms are borrowed from live certificates for the call; X509_ALGOR_cmp
    // only reads them.
    unsafe {
        X509_ALGOR_cmp(
            a.signature_algorithm().as_ptr(),
            b.signature_algorithm().as_ptr(),
        ) == 0
    }
}

/// The client verify callback type of `SSL_CTX_set_verify(3)`.
pub(crate) type VerifyCb =
    extern "C" fn(preverify_ok: c_int, x509_ctx: *mut openssl_sys::X509_STORE_CTX) -> c_int;

/// `SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, cb)`: every connection of the context checks the
/// peer's certificate and calls `cb` (the backend's `callbacks::raw_client_verify`) for each
/// certificate of its chain.
pub(crate) fn set_verify_peer_cb(ctx: &mut SslContextBuilder, cb: VerifyCb) {
    // SAFETY: valid SSL_CTX owned by the builder; the callback has the exact signature libssl
    // declares and needs no argument.
    unsafe { openssl_sys::SSL_CTX_set_verify(ctx.as_ptr(), openssl_sys::SSL_VERIFY_PEER, Some(cb)) }
}

/// The connection a certificate verification runs for: the SSL libssl put in the store
/// context's ex_data (`SSL_get_ex_data_X509_STORE_CTX_idx(3)`).
///
/// # Safety
///
/// `x509_ctx` must be NULL or the store context libssl passed to a verify callback; the SSL
/// returned lives as long as that verification.
pub(crate) unsafe fn store_ctx_ssl<'a>(
    x509_ctx: *mut openssl_sys::X509_STORE_CTX,
) -> Option<&'a mut SslRef> {
    if x509_ctx.is_null() {
        return None;
    }
    // SAFETY: a plain query of libssl's index (created once, under its own run-once).
    let index = unsafe { openssl_sys::SSL_get_ex_data_X509_STORE_CTX_idx() };
    if index < 0 {
        return None;
    }
    // SAFETY: `x509_ctx` is live (caller); the slot holds the SSL or NULL.
    let ssl = unsafe { openssl_sys::X509_STORE_CTX_get_ex_data(x509_ctx, index) }.cast::<SSL>();
    if ssl.is_null() {
        return None;
    }
    // SAFETY: a live SSL for the length of the verification (caller).
    Some(unsafe { ssl_ref(ssl) })
}

/// For a connection whose handshake is done: libssl frees its read and write buffers (~17 kB
/// each, kept for the connection's life by default) whenever they are empty from now on
/// (`SSL_MODE_RELEASE_BUFFERS`), and now if they are (`SSL_free_buffers`), so a connection
/// waiting for its peer (an SMTP server waiting for the next command, a pooled client
/// connection) holds neither.
///
/// Set after the handshake rather than on the context: during the handshake libssl would
/// free and allocate a buffer again for every record and flight (measured: +0.17 % of the
/// instructions of a full handshake), for no memory saved, as the handshake needs them.
/// After it, a buffer is allocated again when the next record comes or goes, as nginx's
/// connections (which set the mode on their contexts) do.
///
/// OpenSSL's backend alone does this: it is a libssl mode, and neither rustls nor GnuTLS has a
/// setting for it (their memory per idle connection is in docs/performance.md).
pub(crate) fn release_buffers_when_idle(ssl: &SslRef) {
    // SAFETY: valid SSL owned by the stream the caller holds; `SSL_CTRL_MODE` only ORs the
    // bits into the connection's mode, and `SSL_free_buffers` frees only buffers holding no
    // data (it returns 0 and frees nothing otherwise: a record already read ahead, a write
    // not yet sent), which libssl allocates again when it next needs them. Called right after
    // the handshake, when libssl (without read-ahead, which this backend never sets) has read
    // no part of the next record: the case of CVE-2024-4741 (a record's header read, its body
    // not yet, on OpenSSL before 3.0.14, 3.1.6, 3.2.2 and 3.3.1) does not arise.
    unsafe {
        openssl_sys::SSL_ctrl(
            ssl.as_ptr(),
            openssl_sys::SSL_CTRL_MODE,
            openssl_sys::SSL_MODE_RELEASE_BUFFERS,
            ptr::null_mut(),
        );
        SSL_free_buffers(ssl.as_ptr());
    }
}

/// Whether libssl frees this connection's buffers when they are empty
/// (`SSL_MODE_RELEASE_BUFFERS` in its mode): what [`release_buffers_when_idle`] sets.
#[cfg(test)]
pub(crate) fn releases_idle_buffers(ssl: &SslRef) -> bool {
    // SAFETY: valid SSL owned by the stream the caller holds; `SSL_CTRL_MODE` with no bits
    // changes nothing and returns the connection's mode.
    let mode = unsafe {
        openssl_sys::SSL_ctrl(ssl.as_ptr(), openssl_sys::SSL_CTRL_MODE, 0, ptr::null_mut())
    };
    mode & openssl_sys::SSL_MODE_RELEASE_BUFFERS != 0
}

/// `SSL_set_verify(ssl, mode, cb)`: this connection checks the peer's certificate as `mode`
/// says (`SSL_VERIFY_*` bits) and calls `cb` (the backend's `callbacks::raw_server_verify`)
/// for each certificate of its chain. A plain function: nothing is boxed for the connection.
pub(crate) fn set_verify_cb(ssl: &mut SslRef, mode: c_int, cb: VerifyCb) {
    // SAFETY: valid SSL owned by the caller; the callback has the exact signature libssl
    // declares and needs no argument.
    unsafe { openssl_sys::SSL_set_verify(ssl.as_ptr(), mode, Some(cb)) }
}

/// The new-session callback type of `SSL_CTX_sess_set_new_cb(3)`.
pub(crate) type NewSessionCb =
    unsafe extern "C" fn(ssl: *mut SSL, session: *mut SSL_SESSION) -> c_int;

/// `SSL_CTX_sess_set_new_cb(3)`: `cb` (the backend's `callbacks::raw_new_session`) receives
/// every session the context's connections establish.
pub(crate) fn set_new_session_cb(ctx: &mut SslContextBuilder, cb: NewSessionCb) {
    // SAFETY: valid SSL_CTX owned by the builder; the callback has the exact signature libssl
    // declares.
    unsafe { openssl_sys::SSL_CTX_sess_set_new_cb(ctx.as_ptr(), Some(cb)) }
}

/// The status callback type of `SSL_CTX_set_tlsext_status_cb(3)`.
pub(crate) type StatusCb = unsafe extern "C" fn(ssl: *mut SSL, arg: *mut c_void) -> c_int;

/// `SSL_CTX_set_tlsext_status_cb(3)`: `cb` (the backend's `callbacks::raw_client_status` or
/// `callbacks::raw_server_status`) handles the OCSP status of the context's connections; no
/// callback argument is passed.
pub(crate) fn set_status_cb(ctx: &mut SslContextBuilder, cb: StatusCb) -> Result<(), ErrorStack> {
    // SAFETY: valid SSL_CTX owned by the builder; the callback has the exact signature libssl
    // declares and never reads its (NULL) argument.
    let r = unsafe { openssl_sys::SSL_CTX_set_tlsext_status_cb(ctx.as_ptr(), Some(cb)) };
    cvt(c_int::from(r > 0)).map(|_| ())
}

/// `SSL_TLSEXT_ERR_*`: what a server status callback returns.
pub(crate) mod tlsext_err {
    /// The staple is set.
    pub(crate) const OK: libc::c_int = openssl_sys::SSL_TLSEXT_ERR_OK;
    /// No staple.
    pub(crate) const NOACK: libc::c_int = openssl_sys::SSL_TLSEXT_ERR_NOACK;
    /// A fatal alert: the handshake fails.
    pub(crate) const ALERT_FATAL: libc::c_int = openssl_sys::SSL_TLSEXT_ERR_ALERT_FATAL;
}
