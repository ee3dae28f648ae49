//! The safe layer over the raw GnuTLS declarations, in the foreign-types style: owned types
//! whose `Drop` calls the C free function, borrowed `…Ref` types carrying the methods, the
//! `cvt` helper for GnuTLS's "negative is an error" convention, and [`Connection`], which ties a
//! session to the Rust state its callbacks use so that every pointer handed to C outlives it.
//!
//! All of this crate's `unsafe` lives here and in `callbacks.rs`.

#![allow(unsafe_code)]

use std::ffi::{c_int, c_uint, c_void, CStr, CString};
use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::panic::resume_unwind;
use std::ptr::{self, NonNull};
use std::sync::{Arc, OnceLock};

use foreign_types::{foreign_type, ForeignType, ForeignTypeRef};

use crate::callbacks::{self, datum_slice, HookState, TransportState};

/// A GnuTLS error code (always negative), kept as a number so unknown codes pass through.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct GnutlsError {
    code: c_int,
}

impl GnutlsError {
    /// `GNUTLS_E_AGAIN`: the transport would block.
    pub const AGAIN: c_int = sys::GNUTLS_E_AGAIN;
    /// `GNUTLS_E_INTERRUPTED`: a signal interrupted the transport.
    pub const INTERRUPTED: c_int = sys::GNUTLS_E_INTERRUPTED;
    /// `GNUTLS_E_PREMATURE_TERMINATION`: the peer closed without close_notify.
    pub const PREMATURE_TERMINATION: c_int = sys::GNUTLS_E_PREMATURE_TERMINATION;
    /// `GNUTLS_E_FATAL_ALERT_RECEIVED`.
    pub const FATAL_ALERT_RECEIVED: c_int = sys::GNUTLS_E_FATAL_ALERT_RECEIVED;
    /// `GNUTLS_E_CERTIFICATE_ERROR`.
    pub const CERTIFICATE_ERROR: c_int = sys::GNUTLS_E_CERTIFICATE_ERROR;
    /// `GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR`.
    pub const CERTIFICATE_VERIFICATION_ERROR: c_int = sys::GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
    /// `GNUTLS_E_NO_CERTIFICATE_FOUND`: the peer sent no certificate where one is required.
    pub const NO_CERTIFICATE_FOUND: c_int = sys::GNUTLS_E_NO_CERTIFICATE_FOUND;
    /// `GNUTLS_E_CERTIFICATE_REQUIRED`: the peer sent a `certificate_required` alert.
    pub const CERTIFICATE_REQUIRED: c_int = sys::GNUTLS_E_CERTIFICATE_REQUIRED;

    /// The error for a code.
    pub fn from_code(code: c_int) -> Self {
        Self { code }
    }

    /// The raw code.
    pub fn code(self) -> c_int {
        self.code
    }

    /// GnuTLS's own text (`gnutls_strerror`).
    pub fn message(self) -> String {
        // SAFETY: gnutls_strerror returns a static NUL-terminated string (or NULL) for any code.
        let text = unsafe { sys::gnutls_strerror(self.code) };
        if text.is_null() {
            return format!("GnuTLS error {}", self.code);
        }
        // SAFETY: non-NULL, static and NUL-terminated, per the GnuTLS manual.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }

    /// Whether GnuTLS calls the code fatal (`gnutls_error_is_fatal`).
    pub fn is_fatal(self) -> bool {
        // SAFETY: a pure function of the integer.
        unsafe { sys::gnutls_error_is_fatal(self.code) != 0 }
    }
}

impl fmt::Debug for GnutlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GnutlsError({}: {})", self.code, self.message())
    }
}

impl fmt::Display for GnutlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.code)
    }
}

impl std::error::Error for GnutlsError {}

/// GnuTLS's convention: a negative return is an error, zero or positive is success or a count.
/// See <https://www.gnutls.org/manual/html_node/Error-handling.html>.
#[inline]
pub fn cvt(ret: c_int) -> Result<c_int, GnutlsError> {
    if ret < 0 {
        Err(GnutlsError::from_code(ret))
    } else {
        Ok(ret)
    }
}

/// A borrowed datum over Rust bytes, for GnuTLS calls that copy their input.
fn borrowed_datum(bytes: &[u8]) -> Result<sys::gnutls_datum_t, GnutlsError> {
    Ok(sys::gnutls_datum_t {
        data: bytes.as_ptr().cast_mut(),
        size: c_uint::try_from(bytes.len()).map_err(|_| GnutlsError::from_code(-1))?,
    })
}

/// Frees memory GnuTLS allocated, through the `gnutls_free` function-pointer variable.
fn gnutls_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: `gnutls_free` is a variable GnuTLS initialises before any allocation is handed
    // out; reading it races with nothing (it is set once, at library load).
    let free = unsafe { sys::gnutls_free };
    if let Some(free) = free {
        // SAFETY: `p` was allocated by GnuTLS and is freed exactly once, here.
        unsafe { free(p) };
    }
}

/// A datum whose memory GnuTLS allocated; `Drop` frees it with `gnutls_free`.
pub struct Datum(sys::gnutls_datum_t);

impl Datum {
    fn empty() -> Self {
        Self(sys::gnutls_datum_t {
            data: ptr::null_mut(),
            size: 0,
        })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the datum was filled in by GnuTLS (or is empty) and is owned by `self`.
        unsafe { datum_slice(&self.0) }
    }
}

impl Drop for Datum {
    fn drop(&mut self) {
        gnutls_free(self.0.data.cast());
        self.0.data = ptr::null_mut();
    }
}

impl fmt::Debug for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Datum")
            .field("len", &self.0.size)
            .finish_non_exhaustive()
    }
}

/// Initialises GnuTLS once per process.
pub fn init() -> Result<(), GnutlsError> {
    static INIT: OnceLock<c_int> = OnceLock::new();
    // SAFETY: gnutls_global_init is reference counted and thread-safe since 3.3.
    let ret = *INIT.get_or_init(|| unsafe { sys::gnutls_global_init() });
    cvt(ret).map(|_| ())
}

/// The library version string (`gnutls_check_version(NULL)`).
pub fn version() -> String {
    // SAFETY: with NULL the function returns the static version string.
    let text = unsafe { sys::gnutls_check_version(ptr::null()) };
    if text.is_null() {
        return String::new();
    }
    // SAFETY: static and NUL-terminated.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// A static NUL-terminated string from GnuTLS, or `None` for NULL.
fn static_text(text: *const std::ffi::c_char) -> Option<String> {
    if text.is_null() {
        return None;
    }
    // SAFETY: non-NULL, static and NUL-terminated (the callers' functions return such).
    Some(
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// One cipher suite as GnuTLS knows it (`gnutls_cipher_suite_info`): its code point and its
/// parts under the names priority strings use. TLS 1.3 suites have no key exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuiteParts {
    /// The code point.
    pub code: u16,
    /// `ECDHE-RSA`, `DHE-RSA`, `RSA`…; `None` for TLS 1.3 suites.
    pub kx: Option<String>,
    /// `AES-128-GCM`, `CHACHA20-POLY1305`…
    pub cipher: String,
    /// `AEAD`, `SHA1`, `SHA256`…
    pub mac: String,
}

/// The suite at `idx` of GnuTLS's table, `None` past its end.
fn suite_info(idx: usize) -> Option<SuiteParts> {
    let mut id = [0u8; 2];
    let (mut kx, mut cipher, mut mac, mut version) = (0, 0, 0, 0);
    // SAFETY: every out-pointer is valid for the call; `id` has the two bytes it writes.
    let name = unsafe {
        sys::gnutls_cipher_suite_info(
            idx,
            id.as_mut_ptr(),
            &mut kx,
            &mut cipher,
            &mut mac,
            &mut version,
        )
    };
    static_text(name)?;
    // SAFETY: the name getters take any algorithm number and return static text or NULL.
    let (kx_name, cipher_name, mac_name) = unsafe {
        (
            sys::gnutls_kx_get_name(kx),
            sys::gnutls_cipher_get_name(cipher),
            sys::gnutls_mac_get_name(mac),
        )
    };
    Some(SuiteParts {
        code: u16::from_be_bytes(id),
        kx: if kx == sys::GNUTLS_KX_UNKNOWN {
            None
        } else {
            static_text(kx_name)
        },
        cipher: static_text(cipher_name).unwrap_or_default(),
        mac: static_text(mac_name).unwrap_or_default(),
    })
}

/// The cipher suites a priority string allows, in its order (`gnutls_priority_init`,
/// `gnutls_priority_get_cipher_suite_index`): the library's own reading of the string.
pub fn priority_suites(priority: &str) -> Result<Vec<SuiteParts>, GnutlsError> {
    init()?;
    let text = c_string(priority)?;
    let mut cache: sys::gnutls_priority_t = ptr::null_mut();
    let mut err_pos = ptr::null();
    // SAFETY: `cache` is a valid out-pointer; the string is NUL-terminated and outlives the
    // call.
    cvt(unsafe { sys::gnutls_priority_init(&mut cache, text.as_ptr(), &mut err_pos) })?;
    let mut out = Vec::new();
    for idx in 0.. {
        let mut sidx: c_uint = 0;
        // SAFETY: `cache` was initialised above and is freed only after the loop.
        let ret = unsafe { sys::gnutls_priority_get_cipher_suite_index(cache, idx, &mut sidx) };
        if ret == sys::GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE {
            break;
        }
        if ret < 0 {
            continue;
        }
        if let Some(parts) = usize::try_from(sidx).ok().and_then(suite_info) {
            out.push(parts);
        }
    }
    // SAFETY: initialised above, not used after.
    unsafe { sys::gnutls_priority_deinit(cache) };
    Ok(out)
}

foreign_type! {
    type CType = sys::gnutls_certificate_credentials_st;
    fn drop = sys::gnutls_certificate_free_credentials;
    /// Certificate credentials (`gnutls_certificate_credentials_t`).
    pub struct Credentials;
    /// A borrowed [`Credentials`].
    pub struct CredentialsRef;
}

// SAFETY: GnuTLS documents credentials as shareable between sessions in different threads once
// set up; we only mutate them (`&mut self`) before they are shared behind an `Arc`.
unsafe impl Send for Credentials {}
// SAFETY: as above: shared use is read-only.
unsafe impl Sync for Credentials {}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

impl Credentials {
    /// Empty certificate credentials (`gnutls_certificate_allocate_credentials`).
    pub fn new() -> Result<Self, GnutlsError> {
        init()?;
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success it owns a new credentials object.
        cvt(unsafe { sys::gnutls_certificate_allocate_credentials(&mut raw) })?;
        // SAFETY: allocated above, uniquely owned from here.
        Ok(unsafe { Credentials::from_ptr(raw) })
    }

    /// Sets the certificate chain and key from PEM text (`gnutls_certificate_set_x509_key_mem2`).
    pub fn set_key_pem(&mut self, chain_pem: &[u8], key_pem: &[u8]) -> Result<(), GnutlsError> {
        let cert = borrowed_datum(chain_pem)?;
        let key = borrowed_datum(key_pem)?;
        // SAFETY: the datums point at live Rust buffers; GnuTLS copies them.
        cvt(unsafe {
            sys::gnutls_certificate_set_x509_key_mem2(
                self.as_ptr(),
                &cert,
                &key,
                sys::GNUTLS_X509_FMT_PEM,
                ptr::null(),
                sys::GNUTLS_PKCS_PLAIN,
            )
        })
        .map(|_| ())
    }

    /// Finite-field Diffie-Hellman parameters for the `DHE` suites: GnuTLS's own RFC 7919
    /// group of the medium security parameter (2048 bits), as `gnutls-serv` and Exim
    /// (`tls_dhparam` unset) give (`gnutls_certificate_set_known_dh_params`). Without them a
    /// GnuTLS server refuses a client that offers only `DHE` suites.
    pub fn set_known_dh_params(&mut self) -> Result<(), GnutlsError> {
        // SAFETY: valid credentials; GnuTLS only records which of its built-in groups to use.
        cvt(unsafe {
            sys::gnutls_certificate_set_known_dh_params(self.as_ptr(), sys::GNUTLS_SEC_PARAM_MEDIUM)
        })
        .map(|_| ())
    }

    /// Adds a trusted CA certificate in DER (`gnutls_certificate_set_x509_trust_mem`).
    pub fn add_trust_der(&mut self, der: &[u8]) -> Result<(), GnutlsError> {
        let ca = borrowed_datum(der)?;
        // SAFETY: as above; GnuTLS copies the certificate.
        cvt(unsafe {
            sys::gnutls_certificate_set_x509_trust_mem(self.as_ptr(), &ca, sys::GNUTLS_X509_FMT_DER)
        })
        .map(|_| ())
    }

    /// Sets the DER OCSP response stapled for the certificate chain loaded at `index`
    /// (`gnutls_certificate_set_ocsp_status_request_mem`).
    pub fn set_ocsp_response_der(&mut self, der: &[u8], index: usize) -> Result<(), GnutlsError> {
        let index = c_uint::try_from(index).map_err(|_| GnutlsError::from_code(-1))?;
        let resp = borrowed_datum(der)?;
        // SAFETY: as above; GnuTLS copies the response.
        cvt(unsafe {
            sys::gnutls_certificate_set_ocsp_status_request_mem(
                self.as_ptr(),
                &resp,
                index,
                sys::GNUTLS_X509_FMT_DER,
            )
        })
        .map(|_| ())
    }
}

foreign_type! {
    type CType = sys::gnutls_session_int;
    fn drop = sys::gnutls_deinit;
    /// A TLS session (`gnutls_session_t`).
    pub struct Session;
    /// A borrowed [`Session`].
    pub struct SessionRef;
}

// SAFETY: a GnuTLS session may move between threads as long as it is used by one at a time;
// `Session` is not `Sync`, and every use goes through `&mut`/`&` of one owner.
unsafe impl Send for Session {}

/// Which end a session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// `GNUTLS_CLIENT`.
    Client,
    /// `GNUTLS_SERVER`.
    Server,
}

impl Session {
    /// A new session (`gnutls_init`).
    pub fn new(end: End) -> Result<Self, GnutlsError> {
        let flags = match end {
            End::Client => sys::GNUTLS_CLIENT,
            End::Server => sys::GNUTLS_SERVER,
        };
        Self::with_flags(flags)
    }

    /// A new server session that sends TLS 1.3 tickets only when asked to
    /// ([`Connection::send_tickets`]): `gnutls_init` with `GNUTLS_NO_AUTO_SEND_TICKET`
    /// (without it GnuTLS sends two after every TLS 1.3 handshake, full or resumed).
    pub fn server_sending_tickets_on_request() -> Result<Self, GnutlsError> {
        Self::with_flags(sys::GNUTLS_SERVER | sys::GNUTLS_NO_AUTO_SEND_TICKET)
    }

    fn with_flags(flags: sys::gnutls_init_flags_t) -> Result<Self, GnutlsError> {
        init()?;
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success it owns a new session.
        cvt(unsafe { sys::gnutls_init(&mut raw, flags) })?;
        // SAFETY: allocated above, uniquely owned from here.
        Ok(unsafe { Session::from_ptr(raw) })
    }
}

fn c_string(text: &str) -> Result<CString, GnutlsError> {
    CString::new(text).map_err(|_| GnutlsError::from_code(-1))
}

impl SessionRef {
    /// `gnutls_priority_set_direct`.
    pub fn set_priority(&mut self, priority: &str) -> Result<(), GnutlsError> {
        let text = c_string(priority)?;
        let mut err_pos = ptr::null();
        // SAFETY: the string is NUL-terminated and lives across the call.
        cvt(unsafe { sys::gnutls_priority_set_direct(self.as_ptr(), text.as_ptr(), &mut err_pos) })
            .map(|_| ())
    }

    /// `gnutls_server_name_set` (DNS type).
    pub fn set_server_name(&mut self, name: &str) -> Result<(), GnutlsError> {
        // SAFETY: GnuTLS copies `name.len()` bytes.
        cvt(unsafe {
            sys::gnutls_server_name_set(
                self.as_ptr(),
                sys::GNUTLS_NAME_DNS,
                name.as_ptr().cast(),
                name.len(),
            )
        })
        .map(|_| ())
    }

    /// `gnutls_alpn_set_protocols`.
    pub fn set_alpn(&mut self, protocols: &[Vec<u8>]) -> Result<(), GnutlsError> {
        if protocols.is_empty() {
            return Ok(());
        }
        let datums = protocols
            .iter()
            .map(|p| borrowed_datum(p))
            .collect::<Result<Vec<_>, _>>()?;
        let count = c_uint::try_from(datums.len()).map_err(|_| GnutlsError::from_code(-1))?;
        // SAFETY: the datums point at live Rust buffers; GnuTLS copies them.
        cvt(unsafe { sys::gnutls_alpn_set_protocols(self.as_ptr(), datums.as_ptr(), count, 0) })
            .map(|_| ())
    }

    /// `gnutls_ocsp_status_request_enable_client` with no responder IDs or extensions.
    pub fn enable_ocsp_request(&mut self) -> Result<(), GnutlsError> {
        // SAFETY: NULL responder list and extensions are documented as allowed.
        cvt(unsafe {
            sys::gnutls_ocsp_status_request_enable_client(
                self.as_ptr(),
                ptr::null_mut(),
                0,
                ptr::null_mut(),
            )
        })
        .map(|_| ())
    }

    /// `gnutls_session_ticket_enable_server` with a 64-byte master key.
    pub fn enable_tickets_server(&mut self, master_key: &[u8]) -> Result<(), GnutlsError> {
        let key = borrowed_datum(master_key)?;
        // SAFETY: GnuTLS copies the key into the session.
        cvt(unsafe { sys::gnutls_session_ticket_enable_server(self.as_ptr(), &key) }).map(|_| ())
    }

    /// `gnutls_certificate_server_set_request`: ask the client for a certificate (`require`:
    /// fail the handshake without one, and with `gnutls_session_set_verify_cert`, without one
    /// that verifies against the credentials' trust list).
    pub fn request_client_certificate(&mut self, require: bool) {
        let mode = if require {
            sys::GNUTLS_CERT_REQUIRE
        } else {
            sys::GNUTLS_CERT_REQUEST
        };
        // SAFETY: plain setters on a live session; a NULL hostname means no name check.
        unsafe {
            sys::gnutls_certificate_server_set_request(self.as_ptr(), mode);
            if require {
                sys::gnutls_session_set_verify_cert(self.as_ptr(), ptr::null(), 0);
            }
        }
    }

    /// `gnutls_db_set_cache_expiration`: ticket lifetime (and 3× that as key rotation period).
    pub fn set_cache_expiration(&mut self, seconds: u32) {
        let secs = c_int::try_from(seconds).unwrap_or(c_int::MAX);
        // SAFETY: a plain setter on a live session.
        unsafe { sys::gnutls_db_set_cache_expiration(self.as_ptr(), secs) };
    }

    /// `gnutls_session_set_data`: the client offers a saved session.
    pub fn set_session_data(&mut self, data: &[u8]) -> Result<(), GnutlsError> {
        // SAFETY: GnuTLS parses (and copies) `data.len()` bytes; garbage gives an error code.
        cvt(unsafe {
            sys::gnutls_session_set_data(self.as_ptr(), data.as_ptr().cast(), data.len())
        })
        .map(|_| ())
    }

    /// `gnutls_session_get_data2`: the resumable session (placeholder in TLS 1.3 until a
    /// ticket arrived).
    pub fn session_data(&self) -> Result<Datum, GnutlsError> {
        let mut datum = Datum::empty();
        // SAFETY: `datum.0` is an out-parameter; GnuTLS allocates its data, freed by `Datum`.
        cvt(unsafe { sys::gnutls_session_get_data2(self.as_ptr(), &mut datum.0) })?;
        Ok(datum)
    }

    /// `gnutls_session_get_flags`.
    pub fn flags(&self) -> c_uint {
        // SAFETY: a getter on a live session.
        unsafe { sys::gnutls_session_get_flags(self.as_ptr()) }
    }

    /// Whether a ticket arrived (client) / was exchanged (`GNUTLS_SFLAGS_SESSION_TICKET`).
    pub fn has_ticket_flag(&self) -> bool {
        self.flags() & sys::GNUTLS_SFLAGS_SESSION_TICKET != 0
    }

    /// Whether the client asked for OCSP (`GNUTLS_SFLAGS_CLI_REQUESTED_OCSP`, server side).
    pub fn client_requested_ocsp(&self) -> bool {
        self.flags() & sys::GNUTLS_SFLAGS_CLI_REQUESTED_OCSP != 0
    }

    /// `gnutls_session_is_resumed`.
    pub fn is_resumed(&self) -> bool {
        // SAFETY: a getter on a live session.
        unsafe { sys::gnutls_session_is_resumed(self.as_ptr()) != 0 }
    }

    /// `gnutls_session_resumption_requested` (also true for a plain ticket request).
    pub fn resumption_requested(&self) -> bool {
        // SAFETY: a getter on a live session.
        unsafe { sys::gnutls_session_resumption_requested(self.as_ptr()) != 0 }
    }

    /// `gnutls_protocol_get_version`.
    pub fn protocol(&self) -> tlsresume_core::ProtocolVersion {
        // SAFETY: a getter on a live session.
        match unsafe { sys::gnutls_protocol_get_version(self.as_ptr()) } {
            sys::GNUTLS_TLS1_2 => tlsresume_core::ProtocolVersion::Tls12,
            sys::GNUTLS_TLS1_3 => tlsresume_core::ProtocolVersion::Tls13,
            other => tlsresume_core::ProtocolVersion::Other(u16::try_from(other).unwrap_or(0)),
        }
    }

    /// `gnutls_session_get_desc`, e.g. `(TLS1.3)-(ECDHE-SECP256R1)-(RSA-PSS-RSAE-SHA256)-(AES-256-GCM)`.
    pub fn description(&self) -> String {
        // SAFETY: returns a NUL-terminated string allocated with gnutls_malloc, or NULL.
        let text = unsafe { sys::gnutls_session_get_desc(self.as_ptr()) };
        if text.is_null() {
            return String::new();
        }
        // SAFETY: non-NULL and NUL-terminated.
        let owned = unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned();
        gnutls_free(text.cast());
        owned
    }

    /// `gnutls_ciphersuite_get`: the IANA-style suite name (3.7.4+).
    pub fn ciphersuite(&self) -> Option<String> {
        // SAFETY: returns a static string or NULL.
        let text = unsafe { sys::gnutls_ciphersuite_get(self.as_ptr()) };
        if text.is_null() {
            return None;
        }
        // SAFETY: non-NULL, static, NUL-terminated.
        Some(
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned(),
        )
    }

    /// Everything [`description`](Self::description), [`ciphersuite`](Self::ciphersuite) and
    /// [`cipher_bits`](Self::cipher_bits) depend on, read with GnuTLS's getters: no
    /// formatting, no allocation.
    pub fn suite_inputs(&self) -> SuiteInputs {
        let raw = self.as_ptr();
        // SAFETY: getters on a live session; `gnutls_ciphersuite_get` returns a pointer into
        // GnuTLS's static suite table (or NULL), only its address is kept.
        unsafe {
            let group = sys::gnutls_group_get(raw);
            SuiteInputs {
                version: sys::gnutls_protocol_get_version(raw),
                kx: sys::gnutls_kx_get(raw),
                group,
                // The description names a custom DH group by its size.
                dh_bits: if group == 0 {
                    sys::gnutls_dh_get_prime_bits(raw)
                } else {
                    0
                },
                sign: sys::gnutls_sign_algorithm_get(raw),
                cipher: sys::gnutls_cipher_get(raw),
                mac: sys::gnutls_mac_get(raw),
                client_type: sys::gnutls_certificate_type_get2(raw, sys::GNUTLS_CTYPE_CLIENT),
                server_type: sys::gnutls_certificate_type_get2(raw, sys::GNUTLS_CTYPE_SERVER),
                resumed: sys::gnutls_session_is_resumed(raw) != 0,
                suite: sys::gnutls_ciphersuite_get(raw) as usize,
            }
        }
    }

    /// The cipher's key size in bits (`gnutls_cipher_get_key_size(gnutls_cipher_get()) * 8`).
    pub fn cipher_bits(&self) -> u32 {
        // SAFETY: getters on a live session / a pure function of the algorithm number.
        let bytes =
            unsafe { sys::gnutls_cipher_get_key_size(sys::gnutls_cipher_get(self.as_ptr())) };
        u32::try_from(bytes.saturating_mul(8)).unwrap_or(0)
    }

    /// `gnutls_certificate_get_ours`: the leaf certificate this end sent on the handshake, DER
    /// (`None` when it sent none, as on a resumed handshake).
    pub fn our_certificate(&self) -> Option<Vec<u8>> {
        self.with_our_certificate(|der| der.map(<[u8]>::to_vec))
    }

    /// Runs `f` with what [`our_certificate`](Self::our_certificate) gives, borrowed where
    /// GnuTLS holds it (no copy).
    pub fn with_our_certificate<R>(&self, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        // SAFETY: GnuTLS returns NULL or a pointer to the certificate it holds for the session,
        // valid while the session is; the bytes are read only during `f`, within this borrow
        // of the session.
        let datum = unsafe { sys::gnutls_certificate_get_ours(self.as_ptr()).as_ref() };
        // SAFETY: a datum GnuTLS filled, as above.
        let der = datum.map(|datum| unsafe { datum_slice(datum) });
        f(der.filter(|der| !der.is_empty()))
    }

    /// `gnutls_server_name_get` (index 0, DNS).
    pub fn server_name(&self) -> Option<String> {
        self.with_server_name(|name| name.map(str::to_owned))
    }

    /// Runs `f` with the name [`server_name`](Self::server_name) gives, read into a buffer on
    /// the stack (bytes that are not UTF-8 replaced, as there).
    pub fn with_server_name<R>(&self, f: impl FnOnce(Option<&str>) -> R) -> R {
        let mut buf = [0u8; 256];
        let mut len = buf.len();
        let mut kind: c_uint = 0;
        // SAFETY: `buf`/`len` describe a writable buffer; GnuTLS NUL-terminates within it.
        let ret = unsafe {
            sys::gnutls_server_name_get(
                self.as_ptr(),
                buf.as_mut_ptr().cast(),
                &mut len,
                &mut kind,
                0,
            )
        };
        if ret < 0 || kind != sys::GNUTLS_NAME_DNS {
            return f(None);
        }
        let Some(name) = buf.get(..len.min(buf.len())) else {
            return f(None);
        };
        let name = name.split(|b| *b == 0).next().unwrap_or(name);
        match std::str::from_utf8(name) {
            Ok(name) => f(Some(name)),
            Err(_) => f(Some(&String::from_utf8_lossy(name))),
        }
    }

    /// `gnutls_alpn_get_selected_protocol`.
    pub fn alpn_selected(&self) -> Option<Vec<u8>> {
        let mut datum = sys::gnutls_datum_t {
            data: ptr::null_mut(),
            size: 0,
        };
        // SAFETY: out-parameter; on success it points into session memory (not to be freed).
        let ret = unsafe { sys::gnutls_alpn_get_selected_protocol(self.as_ptr(), &mut datum) };
        // SAFETY: on success the datum points into session memory alive while `self` is.
        (ret >= 0).then(|| unsafe { datum_slice(&datum) }.to_vec())
    }

    /// `gnutls_certificate_get_peers`: the peer's chain, leaf first, DER.
    pub fn peer_certificates(&self) -> Vec<Vec<u8>> {
        let mut count: c_uint = 0;
        // SAFETY: returns NULL or an array of `count` datums owned by the session.
        let list = unsafe { sys::gnutls_certificate_get_peers(self.as_ptr(), &mut count) };
        if list.is_null() {
            return Vec::new();
        }
        (0..count as usize)
            // SAFETY: `i < count`, within the array GnuTLS returned, whose datums point into
            // session memory alive while `self` is.
            .map(|i| unsafe { datum_slice(&*list.add(i)) }.to_vec())
            .collect()
    }

    /// `gnutls_certificate_client_get_request_status`: whether the server asked this client for
    /// a certificate.
    pub fn certificate_requested(&self) -> bool {
        // SAFETY: a getter on a live session.
        unsafe { sys::gnutls_certificate_client_get_request_status(self.as_ptr()) != 0 }
    }

    /// `gnutls_certificate_verify_peers3`: the verification status bits (0 = verified).
    pub fn verify_peers(&self, hostname: Option<&str>) -> Result<c_uint, GnutlsError> {
        let host = hostname.map(c_string).transpose()?;
        let mut status: c_uint = 0;
        // SAFETY: the hostname is NULL or a NUL-terminated string living across the call.
        cvt(unsafe {
            sys::gnutls_certificate_verify_peers3(
                self.as_ptr(),
                host.as_ref().map_or(ptr::null(), |h| h.as_ptr()),
                &mut status,
            )
        })?;
        Ok(status)
    }

    /// `gnutls_ocsp_status_request_is_checked(session, 0)`: a staple was received and verified.
    pub fn ocsp_verified(&self) -> bool {
        // SAFETY: a getter on a live session.
        unsafe { sys::gnutls_ocsp_status_request_is_checked(self.as_ptr(), 0) != 0 }
    }

    /// `gnutls_ocsp_status_request_is_checked(session, GNUTLS_OCSP_SR_IS_AVAIL)`: a staple came.
    pub fn ocsp_received(&self) -> bool {
        // SAFETY: a getter on a live session.
        unsafe {
            sys::gnutls_ocsp_status_request_is_checked(self.as_ptr(), sys::GNUTLS_OCSP_SR_IS_AVAIL)
                != 0
        }
    }
}

/// A session with its credentials, transport and hook state: the unit a `Stream` owns.
///
/// The transport and hook states are heap allocations owned through raw pointers (made with
/// `Box::into_raw`), because GnuTLS keeps pointers to them: moving a `Box` would assert unique
/// ownership while C still holds an alias. `Drop` deinitialises the session first, then frees
/// the states, then the credentials go.
pub struct Connection<S> {
    session: ManuallyDrop<Session>,
    transport: NonNull<TransportState<S>>,
    hooks: NonNull<HookState>,
    _credentials: Arc<Credentials>,
}

// SAFETY: the connection owns its session (which is `Send`) and the states behind the two
// pointers outright; they are only touched through `&self`/`&mut self`, on one thread at a time.
unsafe impl<S: Send> Send for Connection<S> {}

impl<S: fmt::Debug> fmt::Debug for Connection<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("transport", self.transport())
            .finish_non_exhaustive()
    }
}

impl<S: io::Read + io::Write> io::Read for Connection<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Connection::read(self, buf)
    }
}

impl<S: io::Read + io::Write> io::Write for Connection<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Connection::write(self, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Connection::flush(self)
    }
}

impl<S> Drop for Connection<S> {
    fn drop(&mut self) {
        // SAFETY: the session is dropped exactly once, here, before the states its callbacks
        // point at.
        unsafe { ManuallyDrop::drop(&mut self.session) };
        // SAFETY: both pointers came from `Box::into_raw` in `new` and are freed exactly once;
        // no GnuTLS session refers to them any more.
        unsafe {
            drop(Box::from_raw(self.transport.as_ptr()));
            drop(Box::from_raw(self.hooks.as_ptr()));
        }
    }
}

impl<S: io::Read + io::Write> Connection<S> {
    /// Wires `session` to `credentials`, `transport` and the NEW_SESSION_TICKET hook.
    pub fn new(
        session: Session,
        credentials: Arc<Credentials>,
        transport: S,
    ) -> Result<Self, GnutlsError> {
        let raw = session.as_ptr();
        let state = NonNull::from(Box::leak(Box::new(TransportState {
            transport,
            session: raw,
            error: None,
            panic: None,
            would_block: false,
            handshake_budget: None,
        })));
        let hooks = NonNull::from(Box::leak(Box::<HookState>::default()));
        // Owned from here on: `Drop` frees the states (and the session) whatever happens next.
        let conn = Self {
            session: ManuallyDrop::new(session),
            transport: state,
            hooks,
            _credentials: credentials,
        };
        // SAFETY: the credentials are kept alive by the `Arc` in `conn` and dropped after the
        // session; the states live at fixed heap addresses until `Drop` frees them after
        // deinitialising the session; the callbacks are `extern "C"` fns matching GnuTLS's
        // typedefs, instantiated for this `S`.
        unsafe {
            cvt(sys::gnutls_credentials_set(
                raw,
                sys::GNUTLS_CRD_CERTIFICATE,
                conn._credentials.as_ptr().cast(),
            ))?;
            sys::gnutls_transport_set_ptr(raw, state.as_ptr().cast());
            sys::gnutls_transport_set_push_function(raw, Some(callbacks::raw_push::<S>));
            sys::gnutls_transport_set_pull_function(raw, Some(callbacks::raw_pull::<S>));
            sys::gnutls_session_set_ptr(raw, hooks.as_ptr().cast());
            sys::gnutls_handshake_set_hook_function(
                raw,
                sys::GNUTLS_HANDSHAKE_NEW_SESSION_TICKET,
                sys::GNUTLS_HOOK_POST as c_int,
                Some(callbacks::raw_ticket_hook),
            );
        }
        Ok(conn)
    }
}

/// Sets `credentials` as the session's certificate credentials (`gnutls_credentials_set`).
///
/// # Safety
/// `session` must be a live session, and `credentials` must outlive it (GnuTLS keeps the
/// pointer).
pub(crate) unsafe fn set_certificate_credentials(
    session: sys::gnutls_session_t,
    credentials: &Credentials,
) -> Result<(), GnutlsError> {
    // SAFETY: as the caller promises.
    cvt(unsafe {
        sys::gnutls_credentials_set(
            session,
            sys::GNUTLS_CRD_CERTIFICATE,
            credentials.as_ptr().cast(),
        )
    })
    .map(|_| ())
}

impl<S: io::Read + io::Write> Connection<S> {
    /// A server session chooses its certificates (and binds its tickets) by the client's name,
    /// from the post-client-hello callback.
    pub(crate) fn choose_by_name(&mut self, choice: crate::names::NameChoice) {
        // SAFETY: the hook state is only read by GnuTLS's callbacks during calls made through
        // `&mut self`; none is running now.
        unsafe { (*self.hooks.as_ptr()).names = Some(choice) };
        let raw = self.session.as_ptr();
        // SAFETY: a live session; the callback matches GnuTLS's typedef and reads the hook state
        // set above, which lives until after `gnutls_deinit`.
        unsafe {
            sys::gnutls_handshake_set_post_client_hello_function(
                raw,
                Some(callbacks::raw_post_client_hello),
            );
        }
    }
}

impl<S> Connection<S> {
    fn state(&self) -> &TransportState<S> {
        // SAFETY: the pointer is valid until `Drop`; GnuTLS only uses it during calls made
        // through `&mut self`, so no mutable alias exists while `&self` is borrowed.
        unsafe { self.transport.as_ref() }
    }

    /// Fails the handshake once it has read `bytes` from the peer (see
    /// `TransportState::handshake_budget`); the limit ends with the handshake.
    pub(crate) fn limit_handshake(&mut self, bytes: usize) {
        self.state_mut().handshake_budget = Some(bytes);
    }

    fn state_mut(&mut self) -> &mut TransportState<S> {
        // SAFETY: as in `state`, and `&mut self` excludes every other Rust reference.
        unsafe { self.transport.as_mut() }
    }

    fn hooks(&self) -> &HookState {
        // SAFETY: valid until `Drop`; GnuTLS's hook only reads and sets `Cell`s during calls
        // made through `&mut self`.
        unsafe { self.hooks.as_ref() }
    }

    /// The transport.
    pub fn transport(&self) -> &S {
        &self.state().transport
    }

    /// The transport, mutable.
    pub fn transport_mut(&mut self) -> &mut S {
        &mut self.state_mut().transport
    }

    /// The session.
    pub fn session(&self) -> &SessionRef {
        &self.session
    }

    /// Whether this server sent a NewSessionTicket.
    pub fn ticket_sent(&self) -> bool {
        self.hooks().ticket_sent.get()
    }

    /// How many NewSessionTicket messages this client received.
    pub fn tickets_received(&self) -> u32 {
        self.hooks().tickets_received.get()
    }

    /// The lifetime carried by the newest ticket seen, in seconds.
    pub fn ticket_lifetime(&self) -> Option<u32> {
        self.hooks().ticket_lifetime.get()
    }

    /// Re-raises a panic of the caller's transport; turns a panic caught in any other
    /// callback into an error ([`callbacks::CallbackPanicked`]) and a transport error into the
    /// I/O error.
    fn after_call(&mut self, ret: isize) -> io::Result<isize> {
        let caught = callbacks::take_caught();
        if let Some(panic) = self.state_mut().panic.take() {
            resume_unwind(panic);
        }
        if let Some(caught) = caught {
            self.state_mut().error = None;
            self.state_mut().would_block = false;
            return Err(io::Error::other(caught));
        }
        let would_block = std::mem::take(&mut self.state_mut().would_block);
        if ret >= 0 {
            self.state_mut().error = None;
            return Ok(ret);
        }
        if let Some(err) = self.state_mut().error.take() {
            return Err(err);
        }
        let code = c_int::try_from(ret).unwrap_or(c_int::MIN);
        let err = GnutlsError::from_code(code);
        let kind = match code {
            // GnuTLS also returns "again" after handling a record that carried no data for the
            // caller (e.g. a TLS 1.3 NewSessionTicket); only the transport's EAGAIN blocks.
            GnutlsError::AGAIN if would_block => io::ErrorKind::WouldBlock,
            GnutlsError::AGAIN => io::ErrorKind::Interrupted,
            GnutlsError::INTERRUPTED => io::ErrorKind::Interrupted,
            GnutlsError::PREMATURE_TERMINATION => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::Other,
        };
        Err(io::Error::new(kind, err))
    }

    /// `gnutls_handshake`, repeated while it returns a non-fatal code other than "would block".
    pub fn handshake(&mut self) -> io::Result<()> {
        loop {
            // SAFETY: the session and all state it points at are alive (owned by `self`).
            let ret = unsafe { sys::gnutls_handshake(self.session.as_ptr()) };
            match self.after_call(ret as isize) {
                Ok(_) => {
                    self.state_mut().handshake_budget = None;
                    return Ok(());
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Err(err),
                Err(err) => {
                    let inner = err.get_ref();
                    let code = inner
                        .and_then(|e| e.downcast_ref::<GnutlsError>())
                        .copied()
                        .or_else(|| {
                            // A callback panicked: the call it failed is fatal whatever GnuTLS
                            // made of it; the peer is told of an internal error.
                            inner
                                .and_then(|e| e.downcast_ref::<callbacks::CallbackPanicked>())
                                .map(|_| GnutlsError::from_code(sys::GNUTLS_E_INTERNAL_ERROR))
                        });
                    match code {
                        Some(code) if !code.is_fatal() => continue,
                        Some(code) => {
                            // GnuTLS leaves the alert to the application: tell the peer why
                            // (as `gnutls-serv` does), best effort, then report the error.
                            // SAFETY: the session is alive; the call sends at most one alert
                            // record through our push function.
                            unsafe {
                                sys::gnutls_alert_send_appropriate(
                                    self.session.as_ptr(),
                                    code.code(),
                                );
                            }
                            let _ = self.state_mut().error.take();
                            // A panic while sending the alert is not this error's.
                            let _ = callbacks::take_caught();
                            return Err(err);
                        }
                        None => return Err(err),
                    }
                }
            }
        }
    }

    /// `gnutls_session_ticket_send(session, count, 0)`: a server sends `count` TLS 1.3
    /// NewSessionTickets after its handshake. "Would block" means call it again (GnuTLS picks
    /// up where it stopped); other non-fatal codes are retried here.
    pub fn send_tickets(&mut self, count: u32) -> io::Result<()> {
        loop {
            // SAFETY: the session and all state it points at are alive (owned by `self`); the
            // call writes through our push function only.
            let ret = unsafe { sys::gnutls_session_ticket_send(self.session.as_ptr(), count, 0) };
            match self.after_call(ret as isize) {
                Ok(_) => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// `gnutls_record_recv`; 0 is a clean close (close_notify), retried on EINTR.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `buf` is writable for its length; the session state is alive.
            let ret = unsafe {
                sys::gnutls_record_recv(self.session.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            };
            match self.after_call(ret) {
                Ok(n) => return Ok(usize::try_from(n).unwrap_or(0)),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// `gnutls_record_send`, retried on EINTR.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `buf` is readable for its length; the session state is alive.
            let ret = unsafe {
                sys::gnutls_record_send(self.session.as_ptr(), buf.as_ptr().cast(), buf.len())
            };
            match self.after_call(ret) {
                Ok(n) => return Ok(usize::try_from(n).unwrap_or(0)),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// Flushes the underlying transport.
    pub fn flush(&mut self) -> io::Result<()>
    where
        S: io::Write,
    {
        self.state_mut().transport.flush()
    }

    /// `gnutls_bye(GNUTLS_SHUT_WR)`: sends close_notify.
    pub fn bye(&mut self) -> io::Result<()> {
        // SAFETY: the session state is alive.
        let ret = unsafe { sys::gnutls_bye(self.session.as_ptr(), sys::GNUTLS_SHUT_WR) };
        self.after_call(ret as isize).map(|_| ())
    }
}

/// A libgnutls-dane error: its code and `dane_strerror`'s words.
fn dane_error(code: c_int) -> String {
    // SAFETY: dane_strerror returns a static NUL-terminated string (or NULL) for any code.
    let text = unsafe { sys::dane_strerror(code) };
    if text.is_null() {
        return format!("libgnutls-dane error {code}");
    }
    // SAFETY: non-NULL, static and NUL-terminated, per the manual.
    let words = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    format!("{words} ({code})")
}

/// libgnutls-dane's raw-record check: whether `chain` (DER, leaf first) verifies against the
/// one TLSA record `rdata` (its RDATA: usage, selector, matching type, data), with
/// `dane_raw_tlsa` (as a DNSSEC-secure answer) and `dane_verify_crt_raw` under `vflags`
/// (`DANE_VFLAG_ONLY_CHECK_EE_USAGE` or `…_CA_USAGE`). `Ok(true)` when the status is 0.
pub fn dane_verify_raw(chain: &[Vec<u8>], rdata: &[u8], vflags: c_uint) -> Result<bool, String> {
    let len = c_int::try_from(rdata.len()).map_err(|_| "TLSA record too long".to_owned())?;
    let count = c_uint::try_from(chain.len()).map_err(|_| "chain too long".to_owned())?;
    let datums = chain
        .iter()
        .map(|der| borrowed_datum(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let mut state: sys::dane_state_t = ptr::null_mut();
    // SAFETY: `state` is a valid out-pointer; the flag keeps libunbound from reading the
    // system's resolver configuration (nothing is resolved here).
    let ret = unsafe { sys::dane_state_init(&mut state, sys::DANE_F_IGNORE_LOCAL_RESOLVER) };
    if ret < 0 {
        return Err(dane_error(ret));
    }
    // The record list: one RDATA, NULL-terminated, with its length (0-terminated).
    let data: [*mut std::ffi::c_char; 2] = [rdata.as_ptr().cast_mut().cast(), ptr::null_mut()];
    let lens: [c_int; 2] = [len, 0];
    let mut query: sys::dane_query_t = ptr::null_mut();
    // SAFETY: `state` was initialised above; `data` and `lens` are NULL/0-terminated arrays
    // whose one entry points at `rdata`, alive across the call (libgnutls-dane copies it).
    let ret = unsafe { sys::dane_raw_tlsa(state, &mut query, data.as_ptr(), lens.as_ptr(), 1, 0) };
    let result = if ret < 0 {
        Err(dane_error(ret))
    } else {
        let mut status: c_uint = 0;
        // SAFETY: `state` and `query` are live; `datums` holds `count` datums over the chain's
        // bytes, alive across the call; `status` is a valid out-pointer.
        let ret = unsafe {
            sys::dane_verify_crt_raw(
                state,
                datums.as_ptr(),
                count,
                sys::GNUTLS_CRT_X509,
                query,
                0,
                vflags,
                &mut status,
            )
        };
        // SAFETY: made by dane_raw_tlsa above, freed once.
        unsafe { sys::dane_query_deinit(query) };
        if ret < 0 {
            Err(dane_error(ret))
        } else {
            Ok(status == 0)
        }
    };
    // SAFETY: initialised above, freed once, after its last use.
    unsafe { sys::dane_state_deinit(state) };
    result
}

/// `gnutls_x509_crt_check_hostname`: whether the certificate `der` is for `name`.
pub fn certificate_has_name(der: &[u8], name: &str) -> bool {
    let (Ok(name), Ok(datum)) = (c_string(name), borrowed_datum(der)) else {
        return false;
    };
    let mut cert: sys::gnutls_x509_crt_t = ptr::null_mut();
    // SAFETY: `cert` is a valid out-pointer.
    if unsafe { sys::gnutls_x509_crt_init(&mut cert) } < 0 {
        return false;
    }
    // SAFETY: `cert` was initialised above; the datum points at `der`, alive across the call
    // (GnuTLS copies what it keeps).
    let imported = unsafe { sys::gnutls_x509_crt_import(cert, &datum, sys::GNUTLS_X509_FMT_DER) };
    // SAFETY: `cert` holds an imported certificate; the name is NUL-terminated and alive.
    let matches =
        imported >= 0 && unsafe { sys::gnutls_x509_crt_check_hostname(cert, name.as_ptr()) } != 0;
    // SAFETY: initialised above, freed once.
    unsafe { sys::gnutls_x509_crt_deinit(cert) };
    matches
}

/// The inputs of `gnutls_session_get_desc` (protocol version, key exchange, group or custom
/// DH size, signature algorithm, cipher, MAC, certificate types, whether resumed) and the
/// negotiated suite's entry (`gnutls_ciphersuite_get`): sessions with equal inputs have equal
/// descriptions, suite names and key sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuiteInputs {
    version: sys::gnutls_protocol_t,
    kx: sys::gnutls_kx_algorithm_t,
    group: sys::gnutls_group_t,
    dh_bits: c_int,
    sign: c_int,
    cipher: sys::gnutls_cipher_algorithm_t,
    mac: sys::gnutls_mac_algorithm_t,
    client_type: sys::gnutls_certificate_type_t,
    server_type: sys::gnutls_certificate_type_t,
    resumed: bool,
    suite: usize,
}
