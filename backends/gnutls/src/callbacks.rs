//! `extern "C"` trampolines handed to GnuTLS: transport push/pull, handshake hooks and the
//! time function. Every body runs entirely inside `catch_unwind` (the user pointer is
//! dereferenced inside too), so no panic unwinds into GnuTLS:
//!
//! - a panic of the caller's transport (its `read`/`write`) is kept with the connection and
//!   re-raised once GnuTLS has returned, as the other backends' streams let it through;
//! - a panic anywhere else in a callback (this crate's glue and hooks) fails the GnuTLS call
//!   (the handshake is refused) and is reported, once GnuTLS has returned, as the library's
//!   error ([`CallbackPanicked`], an [`Error::Tls`](tlsresume_core::Error::Tls));
//! - a panicking clock gives the system time.

#![allow(unsafe_code)]

use std::any::Any;
use std::cell::Cell;
use std::ffi::{c_int, c_uint, c_void};
use std::io::{self, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use foreign_types::ForeignTypeRef;
use tlsresume_core::SharedClock;

/// The state behind the transport pointer of one session, over the caller's transport `S`.
pub(crate) struct TransportState<S> {
    /// The byte stream.
    pub(crate) transport: S,
    /// The session, for `gnutls_transport_set_errno`.
    pub(crate) session: sys::gnutls_session_t,
    /// The last I/O error, reported once GnuTLS returns.
    pub(crate) error: Option<io::Error>,
    /// A panic caught in a callback, re-raised once GnuTLS returns.
    pub(crate) panic: Option<Box<dyn Any + Send>>,
    /// The transport itself reported "would block" (so `GNUTLS_E_AGAIN` is the transport's,
    /// not GnuTLS asking to be called again after a post-handshake message).
    pub(crate) would_block: bool,
    /// How many more bytes the handshake may read (`None`: no limit, after the handshake).
    /// GnuTLS 3.7 collects a handshake message of any announced length (up to 16 MB) before
    /// judging it, so a peer announcing a huge ClientHello holds that much memory per
    /// connection; the backend caps it here, in the transport glue.
    pub(crate) handshake_budget: Option<usize>,
}

// SAFETY: the raw session pointer is only used from the thread currently driving the session
// (inside GnuTLS calls made through `&mut Connection`); the session itself is `Send`, and so is
// the transport when `S` is.
unsafe impl<S: Send> Send for TransportState<S> {}

/// The state behind the session's user pointer: what the handshake hooks saw.
#[derive(Default)]
pub(crate) struct HookState {
    /// A NewSessionTicket message was sent (server) on this connection.
    pub(crate) ticket_sent: Cell<bool>,
    /// How many NewSessionTicket messages were received (client).
    pub(crate) tickets_received: Cell<u32>,
    /// The lifetime (first four bytes of the message body) of the newest ticket seen.
    pub(crate) ticket_lifetime: Cell<Option<u32>>,
    /// Server: the certificates to choose from by the client's name, and the ticket master.
    pub(crate) names: Option<crate::names::NameChoice>,
}

/// A panic caught in a callback outside the caller's transport: which callback, and the
/// panic's message. GnuTLS calls its callbacks on the thread that called it, so the panic waits
/// on that thread until the call returns ([`take_caught`]).
#[derive(Debug)]
pub(crate) struct CallbackPanicked {
    callback: &'static str,
    message: String,
}

impl std::fmt::Display for CallbackPanicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a panic in the GnuTLS {} callback ({}): the call was failed",
            self.callback, self.message
        )
    }
}

impl std::error::Error for CallbackPanicked {}

thread_local! {
    /// The first panic caught in a callback since the last GnuTLS call returned.
    static CAUGHT: Cell<Option<(&'static str, Box<dyn Any + Send>)>> = const { Cell::new(None) };
}

/// Runs a callback's whole body; a panic becomes `on_panic` (the value that fails GnuTLS's
/// call) and is kept for [`take_caught`].
fn guarded<T>(callback: &'static str, on_panic: T, body: impl FnOnce() -> T) -> T {
    // AssertUnwindSafe: after a panic GnuTLS's call is failed and the connection reports an
    // error; nothing the body touched is trusted again.
    catch_unwind(AssertUnwindSafe(|| {
        #[cfg(test)]
        tests::maybe_panic(callback);
        body()
    }))
    .unwrap_or_else(|panic| {
        let _ = CAUGHT.try_with(|slot| {
            // Keep the first; a later one is forgotten rather than dropped here.
            match slot.take() {
                None => slot.set(Some((callback, panic))),
                Some(first) => {
                    slot.set(Some(first));
                    std::mem::forget(panic);
                }
            }
        });
        on_panic
    })
}

/// The panic a callback caught during the GnuTLS call that just returned, if any.
pub(crate) fn take_caught() -> Option<CallbackPanicked> {
    let (callback, panic) = CAUGHT.try_with(Cell::take).ok().flatten()?;
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    Some(CallbackPanicked { callback, message })
}

fn errno_for(err: &io::Error) -> c_int {
    match err.kind() {
        io::ErrorKind::WouldBlock => libc::EAGAIN,
        io::ErrorKind::Interrupted => libc::EINTR,
        _ => err.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// Records `err` for the session and tells GnuTLS the errno to act on (EAGAIN and EINTR make it
/// return `GNUTLS_E_AGAIN` / `GNUTLS_E_INTERRUPTED`; anything else is a push/pull error).
fn fail<S>(state: &mut TransportState<S>, err: io::Error) -> isize {
    let errno = errno_for(&err);
    state.would_block = errno == libc::EAGAIN;
    if errno != libc::EAGAIN && errno != libc::EINTR {
        state.error = Some(err);
    }
    // SAFETY: `state.session` is the live session this transport belongs to: the state is
    // owned by the same `Connection` and dropped after the session.
    unsafe { sys::gnutls_transport_set_errno(state.session, errno) };
    -1
}

/// `gnutls_push_func`: writes to the Rust transport.
///
/// # Safety
/// `ptr` must be the `TransportState` set with `gnutls_transport_set_ptr`, and `data`/`len`
/// a readable buffer, as GnuTLS guarantees.
pub(crate) unsafe extern "C" fn raw_push<S: Write>(
    ptr: *mut c_void,
    data: *const c_void,
    len: usize,
) -> isize {
    guarded("push", -1, || {
        // SAFETY: GnuTLS passes back the pointer we set, to a `TransportState<S>` (this
        // function is registered for the same `S`) that outlives the session; no other
        // reference to it exists while GnuTLS runs.
        let state = unsafe { &mut *ptr.cast::<TransportState<S>>() };
        // SAFETY: GnuTLS hands a buffer readable for `len` bytes for the duration of the call.
        let buf = unsafe { slice_from_raw(data.cast::<u8>(), len) };
        transfer(state, "write", |transport| transport.write(buf))
    })
}

/// One transport call of a push or pull function, inside `catch_unwind`: the bytes moved, or
/// -1 with the error (or the panic) kept for when GnuTLS returns.
fn transfer<S>(
    state: &mut TransportState<S>,
    what: &str,
    call: impl FnOnce(&mut S) -> io::Result<usize>,
) -> isize {
    // AssertUnwindSafe: a panic leaves the transport in whatever state the call left it; the
    // session is failed with -1 and the panic re-raised, so nothing observes it.
    match catch_unwind(AssertUnwindSafe(|| call(&mut state.transport))) {
        Ok(Ok(n)) => isize::try_from(n).unwrap_or(isize::MAX),
        Ok(Err(err)) => fail(state, err),
        Err(panic) => {
            state.panic = Some(panic);
            fail(
                state,
                io::Error::other(format!("panic in transport {what}")),
            )
        }
    }
}

/// `gnutls_pull_func`: reads from the Rust transport.
///
/// # Safety
/// As for [`raw_push`], with `data`/`len` a writable buffer.
pub(crate) unsafe extern "C" fn raw_pull<S: Read>(
    ptr: *mut c_void,
    data: *mut c_void,
    len: usize,
) -> isize {
    guarded("pull", -1, || {
        // SAFETY: as in `raw_push`.
        let state = unsafe { &mut *ptr.cast::<TransportState<S>>() };
        // SAFETY: GnuTLS hands a buffer writable for `len` bytes for the duration of the call.
        let buf = unsafe { slice_from_raw_mut(data.cast::<u8>(), len) };
        pull(state, buf)
    })
}

/// A read for GnuTLS, within the handshake's byte budget while there is one.
fn pull<S: Read>(state: &mut TransportState<S>, buf: &mut [u8]) -> isize {
    let Some(budget) = state.handshake_budget else {
        return transfer(state, "read", |transport| transport.read(buf));
    };
    if budget == 0 {
        return fail(
            state,
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the peer's handshake went past the bytes a handshake may take",
            ),
        );
    }
    let allowed = buf.len().min(budget);
    let read = transfer(state, "read", |transport| {
        transport.read(&mut buf[..allowed])
    });
    if let Ok(n) = usize::try_from(read) {
        state.handshake_budget = Some(budget.saturating_sub(n));
    }
    read
}

/// `gnutls_handshake_hook_func` on NEW_SESSION_TICKET: records that a ticket was sent or
/// received, and the lifetime it carries (the first four bytes of the body in TLS 1.2 and 1.3).
///
/// # Safety
/// `session` must carry a `HookState` as its user pointer; `msg` is NULL or a valid datum.
pub(crate) unsafe extern "C" fn raw_ticket_hook(
    session: sys::gnutls_session_t,
    htype: c_uint,
    _when: c_uint,
    incoming: c_uint,
    msg: *const sys::gnutls_datum_t,
) -> c_int {
    // 0 even after a panic: GnuTLS 3.7.9 crashes (double free, SIGSEGV) when this hook fails
    // the call around a NewSessionTicket; the panic fails the call once GnuTLS has returned.
    guarded("ticket hook", 0, || {
        if htype != sys::GNUTLS_HANDSHAKE_NEW_SESSION_TICKET {
            return 0;
        }
        // SAFETY: the user pointer is the `HookState` boxed in the `Connection` that owns this
        // session, set before the hook was registered and alive until after `gnutls_deinit`.
        let state = unsafe { &*sys::gnutls_session_get_ptr(session).cast::<HookState>() };
        // SAFETY: GnuTLS passes NULL or a datum, and the bytes it points at, valid for the
        // duration of the call.
        let body = unsafe { msg.as_ref().map(|d| datum_slice(d)) }.unwrap_or(&[]);
        if incoming != 0 {
            state.tickets_received.set(state.tickets_received.get() + 1);
        } else {
            state.ticket_sent.set(true);
        }
        if let Some(b) = body.get(..4) {
            state
                .ticket_lifetime
                .set(Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]])));
        }
        0
    })
}

/// `gnutls_handshake_post_client_hello_func`: after the ClientHello's name, before its ticket
/// (GnuTLS parses session tickets and PSKs after this callback): chooses the certificates by
/// the client's name and binds the ticket keys to it ([`crate::names::choose`]).
///
/// # Safety
/// `session` must carry a `HookState` as its user pointer.
pub(crate) unsafe extern "C" fn raw_post_client_hello(session: sys::gnutls_session_t) -> c_int {
    guarded("post-client-hello", sys::GNUTLS_E_INTERNAL_ERROR, || {
        // SAFETY: the user pointer is the `HookState` boxed in the `Connection` that owns this
        // session, set before the callback was registered and alive until after `gnutls_deinit`.
        let state = unsafe { &*sys::gnutls_session_get_ptr(session).cast::<HookState>() };
        let Some(choice) = &state.names else {
            return 0;
        };
        // SAFETY: GnuTLS passes the live session it is handshaking, used only for this call.
        let session_ref = unsafe { &mut *crate::ffi::SessionRef::from_ptr_mut(session) };
        let Some(set) = crate::names::choose(choice, session_ref) else {
            return 0;
        };
        let Some(credentials) = choice.credentials.get(set) else {
            return 0;
        };
        // SAFETY: the credentials are held by the `NameChoice` in this `HookState`, which
        // outlives the session (freed after `gnutls_deinit`).
        match unsafe { crate::ffi::set_certificate_credentials(session, credentials) } {
            Ok(()) => 0,
            Err(e) => e.code(),
        }
    })
}

/// The clock GnuTLS reads, process-wide, and how many live GnuTLS objects use it.
struct InstalledClock {
    clock: SharedClock,
    users: usize,
}

static CLOCK: RwLock<Option<InstalledClock>> = RwLock::new(None);

/// A live GnuTLS client or server's claim on the process-wide clock; dropping it releases the
/// claim, and once no claim is left another clock may be installed.
#[derive(Debug)]
pub(crate) struct ClockClaim(());

impl Drop for ClockClaim {
    fn drop(&mut self) {
        let mut slot = CLOCK
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(installed) = slot.as_mut() {
            installed.users = installed.users.saturating_sub(1);
        }
    }
}

/// Makes `clock` the time source of every GnuTLS session in the process, or refuses when a
/// live GnuTLS client or server uses another clock (GnuTLS has one time function for the whole
/// process: installing a second clock would silently re-clock the first object's sessions).
pub(crate) fn install_clock(clock: &SharedClock) -> Result<ClockClaim, tlsresume_core::Error> {
    let mut slot = CLOCK
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match slot.as_mut() {
        Some(installed) if installed.users > 0 => {
            if !tlsresume_core::clock::same_clock(&installed.clock, clock) {
                return Err(tlsresume_core::Error::setting(
                    "clock",
                    format!(
                        "GnuTLS reads time through one function for the whole process, and {} \
                         live GnuTLS client(s)/server(s) use another clock ({:?}); drop them \
                         first, or give every GnuTLS object the same clock (clones of one \
                         ManualClock count as the same)",
                        installed.users, installed.clock
                    ),
                ));
            }
            installed.users += 1;
        }
        _ => {
            if clock.identity() != tlsresume_core::clock::ClockIdentity::System {
                install_time_hooks();
            }
            *slot = Some(InstalledClock {
                clock: clock.clone(),
                users: 1,
            });
        }
    }
    Ok(ClockClaim(()))
}

/// The installed clock's time (or the system's) in microseconds.
fn now_micros() -> u64 {
    let slot = CLOCK
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match slot.as_ref() {
        Some(installed) => installed.clock.now().as_micros(),
        None => tlsresume_core::UnixTime::now().as_micros(),
    }
}

/// `gnutls_gettime_func`: the installed clock's time, to the microsecond.
///
/// # Safety
/// `ts` must be NULL or writable, as GnuTLS guarantees.
pub(crate) unsafe extern "C" fn raw_gettime(ts: *mut libc::timespec) {
    // AssertUnwindSafe: reads only; a panicking clock yields the system time, and a panic
    // after that leaves `ts` as it was.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let micros = catch_unwind(AssertUnwindSafe(now_micros))
            .unwrap_or_else(|_| tlsresume_core::UnixTime::now().as_micros());
        // SAFETY: `ts` is NULL or points to a `timespec` GnuTLS wants filled in.
        if let Some(out) = unsafe { ts.as_mut() } {
            out.tv_sec = libc::time_t::try_from(micros / 1_000_000).unwrap_or(libc::time_t::MAX);
            out.tv_nsec = libc::c_long::try_from((micros % 1_000_000) * 1000).unwrap_or(0);
        }
    }));
}

fn now_secs() -> i64 {
    let slot = CLOCK
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match slot.as_ref() {
        Some(installed) => i64::try_from(installed.clock.now().as_secs()).unwrap_or(i64::MAX),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    }
}

/// `gnutls_time_func`: the installed clock's time in seconds.
///
/// # Safety
/// `t` must be NULL or writable, as GnuTLS guarantees.
pub(crate) unsafe extern "C" fn raw_time(t: *mut sys::time_t) -> sys::time_t {
    // AssertUnwindSafe: reads only; a panicking clock yields the system time, and a panic
    // after that gives 0 (the epoch: anything GnuTLS dates then looks expired, never fresh).
    catch_unwind(AssertUnwindSafe(|| {
        let now = catch_unwind(AssertUnwindSafe(now_secs)).unwrap_or_else(|_| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        }) as sys::time_t;
        // SAFETY: `t` is NULL or points to a `time_t` GnuTLS wants filled in.
        if let Some(out) = unsafe { t.as_mut() } {
            *out = now;
        }
        now
    }))
    .unwrap_or(0)
}

/// A slice from a C pointer and length; `(NULL, _)` and `(_, 0)` are empty.
///
/// # Safety
/// Unless NULL or `len` is 0, `data` must point to `len` initialised bytes that stay valid and
/// unmodified for `'a`.
pub(crate) unsafe fn slice_from_raw<'a>(data: *const u8, len: usize) -> &'a [u8] {
    if data.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees `data` is readable for `len` bytes for 'a.
        unsafe { std::slice::from_raw_parts(data, len) }
    }
}

/// A mutable slice from a C pointer and length; `(NULL, _)` and `(_, 0)` are empty.
///
/// # Safety
/// Unless NULL or `len` is 0, `data` must point to `len` bytes writable for `'a` with no other
/// reference to them.
pub(crate) unsafe fn slice_from_raw_mut<'a>(data: *mut u8, len: usize) -> &'a mut [u8] {
    if data.is_null() || len == 0 {
        &mut []
    } else {
        // SAFETY: the caller guarantees `data` is writable and unaliased for `len` bytes for 'a.
        unsafe { std::slice::from_raw_parts_mut(data, len) }
    }
}

/// The bytes of a datum.
///
/// # Safety
/// `datum.data` must be NULL or point to `datum.size` bytes valid for as long as `datum` is
/// borrowed.
pub(crate) unsafe fn datum_slice(datum: &sys::gnutls_datum_t) -> &[u8] {
    // SAFETY: the caller's contract is `slice_from_raw`'s.
    unsafe { slice_from_raw(datum.data, datum.size as usize) }
}

/// `void _gnutls_global_set_gettime_function(void (*)(struct timespec *))`.
type SetGettime = unsafe extern "C" fn(Option<unsafe extern "C" fn(*mut libc::timespec)>);

/// GnuTLS's high-precision clock hook, looked up at run time.
///
/// `_gnutls_global_set_gettime_function` is exported by GnuTLS 3.7 under the version node
/// `GNUTLS_PRIVATE_3_4` for GnuTLS's own test suite, and declared in no public header. It sets
/// `gnutls_gettime`, which GnuTLS uses for TLS 1.3 ticket ages, the client's check that a
/// stored ticket is still fresh, and the lifetime of tickets issued on resumed handshakes;
/// `gnutls_global_set_time_function` covers only `gnutls_time` (seconds). Looked up with
/// `dlsym` so that a GnuTLS without it still links: there, a virtual clock covers `gnutls_time`
/// only, and [`gettime_hook_available`] says so.
fn set_gettime() -> Option<SetGettime> {
    static FOUND: OnceLock<Option<SetGettime>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let name = c"_gnutls_global_set_gettime_function";
        // SAFETY: dlsym with RTLD_DEFAULT searches the loaded objects (libgnutls is linked into
        // this process); `name` is NUL-terminated.
        let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        if sym.is_null() {
            None
        } else {
            // SAFETY: the symbol is GnuTLS's function with exactly this signature (GnuTLS
            // 3.4 onwards, lib/global.c); a data pointer from dlsym is a function address here.
            Some(unsafe { std::mem::transmute::<*mut c_void, SetGettime>(sym) })
        }
    })
}

/// Whether this GnuTLS has the private high-precision clock hook `_gnutls_global_set_gettime_function`
/// (without it a virtual clock covers `gnutls_time` only; see the crate docs).
pub fn gettime_hook_available() -> bool {
    set_gettime().is_some()
}

/// Points GnuTLS's two clocks (`gnutls_time` and, where available, `gnutls_gettime`) at the
/// trampolines that read the installed clock. Done once, the first time a clock other than the
/// system's is installed; a process that only ever uses the real clock leaves GnuTLS's own.
pub(crate) fn install_time_hooks() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // SAFETY: both trampolines are `extern "C"` fns valid for the whole process, with
        // GnuTLS's typedefs; setting the hooks races with nothing GnuTLS does concurrently
        // (plain pointer stores, done before any session runs on the virtual clock).
        unsafe {
            sys::gnutls_global_set_time_function(Some(raw_time));
            if let Some(set) = set_gettime() {
                set(Some(raw_gettime));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    //! A panic made to happen inside each callback, over real handshakes on loopback: the
    //! process lives, the call GnuTLS was making fails, and the connection reports the library's
    //! error (a refused handshake), never the panic.

    use std::cell::Cell;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::PathBuf;
    use std::thread;
    use std::time::Duration;

    use tlsresume_core::*;

    use crate::{Client, Server};

    thread_local! {
        /// The callback that panics on this thread (set by the tests only).
        static PANIC_IN: Cell<Option<&'static str>> = const { Cell::new(None) };
    }

    /// Panics when this thread's test asked for a panic in `callback`.
    pub(super) fn maybe_panic(callback: &'static str) {
        if PANIC_IN.with(Cell::get) == Some(callback) {
            panic!("made to panic in the {callback} callback (test)");
        }
    }

    fn pki(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/pki")
            .join(name)
    }

    /// One connection, TLS 1.3 (the client's read brings a ticket), with `server_panic` and
    /// `client_panic` set on each side's thread; (client, server) results.
    fn connect(
        server_panic: Option<&'static str>,
        client_panic: Option<&'static str>,
    ) -> (Result<(), Error>, Result<(), Error>) {
        let identity = Identity::from_pem_files(&pki("server-ecdsa.pem"), &pki("server-ecdsa.key"))
            .expect("identity");
        let mut ss = ServerSettings::new(identity);
        ss.versions = Versions::only(ProtocolVersion::Tls13);
        let server = Server::new(ss).expect("server");
        let mut cs = ClientSettings::new(certificates_from_pem_file(&pki("ca.pem")).expect("ca"));
        cs.versions = Versions::only(ProtocolVersion::Tls13);
        let client = Client::new(cs).expect("client");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        thread::scope(|scope| {
            let served = scope.spawn(|| -> Result<(), Error> {
                PANIC_IN.with(|p| p.set(server_panic));
                let (tcp, peer) = listener.accept().map_err(Error::Io)?;
                tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
                let mut stream = server.accept(Box::new(tcp), &ServerParams::new(peer, addr))?;
                let mut buf = [0u8; 4];
                stream.read_exact(&mut buf).map_err(Error::Io)?;
                stream.write_all(b"pong").map_err(Error::Io)?;
                let _ = stream.shutdown();
                Ok(())
            });
            PANIC_IN.with(|p| p.set(client_panic));
            let connected = (|| -> Result<(), Error> {
                let tcp = TcpStream::connect(addr).map_err(Error::Io)?;
                tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
                let mut stream =
                    client.connect(Box::new(tcp), &ClientParams::new("mx.tlsresume.test", addr))?;
                stream.write_all(b"ping").map_err(Error::Io)?;
                let mut buf = [0u8; 4];
                stream.read_exact(&mut buf).map_err(Error::from_io)?;
                Ok(())
            })();
            PANIC_IN.with(|p| p.set(None));
            let served = served.join().expect("the server's thread does not panic");
            (connected, served)
        })
    }

    /// The handshake was refused with the library's error naming the panic.
    fn panicked_in(result: &Result<(), Error>, callback: &str) -> bool {
        matches!(result, Err(e @ Error::Tls(_)) if names_panic(e, callback))
    }

    fn names_panic(error: &Error, callback: &str) -> bool {
        error
            .to_string()
            .contains(&format!("a panic in the GnuTLS {callback} callback"))
    }

    #[test]
    fn without_a_panic_the_connection_works() {
        let (c, s) = connect(None, None);
        assert!(c.is_ok() && s.is_ok(), "{c:?} {s:?}");
    }

    #[test]
    fn a_panic_in_the_post_client_hello_callback_refuses_the_handshake() {
        let (c, s) = connect(Some("post-client-hello"), None);
        assert!(panicked_in(&s, "post-client-hello"), "{s:?}");
        // The client is told (an alert), not left waiting.
        assert!(c.is_err(), "{c:?}");
    }

    #[test]
    fn a_panic_in_the_glue_of_push_or_pull_fails_the_handshake() {
        for callback in ["push", "pull"] {
            let (c, s) = connect(None, Some(callback));
            assert!(panicked_in(&c, callback), "{callback}: {c:?}");
            assert!(s.is_err(), "{callback}: {s:?}");
            let (c, s) = connect(Some(callback), None);
            assert!(panicked_in(&s, callback), "{callback}: {s:?}");
            assert!(c.is_err(), "{callback}: {c:?}");
        }
    }

    #[test]
    fn a_panic_in_the_ticket_hook_is_the_connections_error() {
        // The server's hook runs when it sends its ticket (in the handshake); the client's when
        // the ticket arrives (its first read).
        let (c, s) = connect(Some("ticket hook"), None);
        assert!(panicked_in(&s, "ticket hook"), "{s:?}");
        assert!(c.is_err(), "{c:?}");
        // After the handshake, the read fails with the error GnuTLS's read gave (as a panic
        // in a libssl callback during SSL_read does on OpenSSL).
        let (c, _) = connect(None, Some("ticket hook"));
        assert!(
            matches!(&c, Err(e @ Error::Io(_)) if names_panic(e, "ticket hook")),
            "{c:?}"
        );
    }
}
