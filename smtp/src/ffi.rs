//! The socket calls TCP Fast Open needs that no safe crate offers: `TCP_INFO` (what the kernel
//! says a connection did), `TCP_FASTOPEN` on a listener, and `flock` for processes that take
//! turns at the kernel's setting. Linux only; elsewhere each call
//! says it is not supported. And the effective user id, whose private directory holds that
//! lock.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// What Fast Open needs of `struct tcp_info` (`linux/tcp.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpInfo {
    /// `tcpi_state`: `TCP_SYN_RECV` (3) on a server's Fast Open child still waiting for the
    /// client's final ACK.
    pub(crate) state: u8,
    /// `tcpi_options`: `TCPI_OPT_*` bits.
    pub(crate) options: u8,
    /// `tcpi_fastopen_client_fail` (Linux 5.5): why the client's Fast Open did not carry
    /// data (`enum tcp_fastopen_client_fail`).
    pub(crate) fastopen_client_fail: u8,
}

/// `TCPI_OPT_SYN_DATA`: the SYN's data was acknowledged (client) or received (server).
pub(crate) const TCPI_OPT_SYN_DATA: u8 = 32;
/// `TCPI_OPT_TFO_CHILD` (Linux 6.16): a server connection made from a Fast Open SYN.
pub(crate) const TCPI_OPT_TFO_CHILD: u8 = 128;
/// `TCP_SYN_SENT` in `tcpi_state`: a client still waiting for the SYN-ACK.
pub(crate) const TCP_SYN_SENT: u8 = 2;
/// `TCP_SYN_RECV` in `tcpi_state`.
pub(crate) const TCP_SYN_RECV: u8 = 3;

/// `MSG_FASTOPEN | MSG_DONTWAIT`: `sendto` connects, sending the data in the SYN when a
/// cookie is known, without waiting for the handshake.
#[cfg(target_os = "linux")]
pub(crate) const FASTOPEN_SEND_FLAGS: Option<libc::c_int> =
    Some(libc::MSG_FASTOPEN | libc::MSG_DONTWAIT);
#[cfg(not(target_os = "linux"))]
pub(crate) const FASTOPEN_SEND_FLAGS: Option<libc::c_int> = None;

/// The connection's `TCP_INFO`.
#[cfg(target_os = "linux")]
pub(crate) fn tcp_info(fd: BorrowedFd<'_>) -> io::Result<TcpInfo> {
    // Larger than any kernel's struct tcp_info; the kernel copies what it has and says how much.
    let mut buf = [0u8; 512];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `fd` is a descriptor borrowed for the call; `buf` is writable for `len` bytes and
    // `len` points to its size, which the kernel lowers to the bytes it wrote.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len < 8 {
        return Err(io::Error::other("TCP_INFO too short"));
    }
    // Byte 7 holds tcpi_delivery_rate_app_limited:1 then tcpi_fastopen_client_fail:2.
    Ok(TcpInfo {
        state: buf[0],
        options: buf[5],
        fastopen_client_fail: (buf[7] >> 1) & 3,
    })
}

/// The connection's `TCP_INFO`.
#[cfg(not(target_os = "linux"))]
pub(crate) fn tcp_info(_fd: BorrowedFd<'_>) -> io::Result<TcpInfo> {
    Err(io::ErrorKind::Unsupported.into())
}

/// `TCP_FASTOPEN` on a listening socket: up to `queue` connections made from Fast Open SYNs
/// waiting for their handshake to end.
#[cfg(target_os = "linux")]
pub(crate) fn set_tcp_fastopen(fd: BorrowedFd<'_>, queue: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(queue)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "queue length too large"))?;
    // SAFETY: `fd` is a descriptor borrowed for the call; `value` is a c_int that lives across
    // the call and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_FASTOPEN,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TCP_FASTOPEN` on a listening socket.
#[cfg(not(target_os = "linux"))]
pub(crate) fn set_tcp_fastopen(_fd: BorrowedFd<'_>, _queue: u32) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The process's effective user id (the owner of the files it makes).
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: `geteuid` takes nothing, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Blocks until this process holds the exclusive `flock` on `fd`'s file (released when the
/// file is closed), so that processes take turns.
pub(crate) fn lock_exclusive(fd: BorrowedFd<'_>) -> io::Result<()> {
    loop {
        // SAFETY: `fd` is an open descriptor borrowed for the call; `flock` reads no memory.
        if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Takes the exclusive `flock` on `fd`'s file if nobody holds it (`WouldBlock` otherwise).
#[cfg(test)]
pub(crate) fn try_lock_exclusive(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `fd` is an open descriptor borrowed for the call; `flock` reads no memory.
    if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(());
    }
    Err(io::Error::last_os_error())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    #[test]
    fn tcp_info_reads_an_established_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let info = tcp_info(client.as_fd()).expect("client TCP_INFO");
        // TCP_ESTABLISHED is 1; a plain connection carried no SYN data.
        assert_eq!(info.state, 1);
        assert_eq!(info.options & TCPI_OPT_SYN_DATA, 0);
        assert_eq!(tcp_info(server.as_fd()).expect("server").state, 1);
        assert!(set_tcp_fastopen(listener.as_fd(), 16).is_ok());
    }
}
