//! The client listener: the socket systemd passed (socket activation), or
//! one bound here, with `SO_REUSEPORT` when several gateway processes are
//! to share the port.
//!
//! Socket activation follows `sd_listen_fds(3)`: when `LISTEN_PID` names
//! this process, `LISTEN_FDS` sockets start at descriptor 3. The gateway
//! serves one port, so it takes exactly one, and only a listening TCP
//! socket (IPv4 or IPv6); anything else stops start-up with one line.
//! [`take_activated`] unsets both variables, so that no child inherits
//! them, which is why it must run before any thread starts (`main`).
//!
//! Binding goes through `socket2` because the standard library and mio
//! cannot set a socket option between `socket()` and `bind()`, which is
//! where `SO_REUSEPORT` must be set, nor choose the backlog (the standard
//! library's is 128: a restart storm of thousands of reconnecting players
//! overflows it and every dropped SYN costs its client a retransmission of
//! a second or more). Everything else is what `mio::net::TcpListener::bind`
//! does: `SO_REUSEADDR`, close-on-exec, non-blocking.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// How the client listener came to be (for the start-up log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Passed by systemd (`packet-service.socket`); the settings' address
    /// and port do not apply.
    Activated,
    /// Bound here, alone on its port.
    Bound,
    /// Bound here with `SO_REUSEPORT`: other processes may share the port.
    SharedPort,
}

impl Origin {
    /// How the start-up log names it.
    pub fn describe(self) -> &'static str {
        match self {
            Origin::Activated => "socket passed by systemd",
            Origin::Bound => "bound",
            Origin::SharedPort => "bound with SO_REUSEPORT",
        }
    }
}

/// Why the sockets systemd passed cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// `LISTEN_PID` or `LISTEN_FDS` is not a number.
    #[error("socket activation: {0}")]
    Environment(std::io::Error),
    /// More than one socket was passed.
    #[error(
        "socket activation passed {0} sockets; packet-service serves one \
         (one ListenStream= in packet-service.socket)"
    )]
    Count(usize),
    /// The socket is not a listening TCP socket.
    #[error("socket activation: descriptor {fd} is not a listening TCP socket ({why})")]
    NotListening {
        /// The descriptor.
        fd: RawFd,
        /// What it is instead.
        why: String,
    },
}

/// Takes the listener systemd passed, if any, and unsets `LISTEN_PID` and
/// `LISTEN_FDS` (and `LISTEN_FDNAMES`).
///
/// # Safety
///
/// Unsets environment variables: call it before any other thread runs
/// (first thing in `main`), like `std::env::remove_var`.
pub unsafe fn take_activated() -> Result<Option<std::net::TcpListener>, ActivationError> {
    // SAFETY: the caller guarantees no other thread runs.
    let fds = unsafe { sd_notify::listen_fds_and_unset_env() };
    std::env::remove_var("LISTEN_FDNAMES");
    let mut fds = fds.map_err(ActivationError::Environment)?;
    match (fds.len(), fds.next()) {
        (0, _) | (_, None) => Ok(None),
        (1, Some(fd)) => {
            // SAFETY: systemd hands this process descriptor 3 onwards, for it
            // to own; nothing else in the process has taken it.
            let socket = unsafe { Socket::from_raw_fd(fd) };
            listening_tcp(fd, socket).map(Some)
        }
        (n, Some(_)) => Err(ActivationError::Count(n)),
    }
}

/// `socket` as a non-blocking listener, if it is a listening TCP socket.
fn listening_tcp(fd: RawFd, socket: Socket) -> Result<std::net::TcpListener, ActivationError> {
    let not = |why: String| ActivationError::NotListening { fd, why };
    let domain = socket.domain().map_err(|e| not(e.to_string()))?;
    if domain != Domain::IPV4 && domain != Domain::IPV6 {
        return Err(not(format!("address family {domain:?}")));
    }
    if socket.r#type().map_err(|e| not(e.to_string()))? != Type::STREAM {
        return Err(not("not a stream socket".to_owned()));
    }
    if !socket.is_listener().map_err(|e| not(e.to_string()))? {
        return Err(not("listen() was not called on it".to_owned()));
    }
    socket
        .set_nonblocking(true)
        .map_err(|e| not(e.to_string()))?;
    Ok(socket.into())
}

/// How the client listener is bound (when systemd did not pass it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// With `SO_REUSEPORT`, so that every process binding the same address
    /// with it shares the port (the kernel spreads new connections over
    /// them).
    pub reuse_port: bool,
    /// The accept queue's length (`listen(2)`; the kernel caps it at
    /// `net.core.somaxconn`).
    pub backlog: u32,
}

/// Binds a non-blocking TCP listener on `addr` as `binding` says.
pub fn bind(addr: SocketAddr, binding: Binding) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if binding.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(binding.backlog).unwrap_or(i32::MAX))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// `net.core.somaxconn`, the kernel's cap on every listen backlog, if it
/// can be read.
pub fn somaxconn() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The client listener: the activated one if systemd passed it, else one
/// bound on `addr`.
pub fn client(
    activated: Option<std::net::TcpListener>,
    addr: SocketAddr,
    binding: Binding,
) -> std::io::Result<(mio::net::TcpListener, Origin)> {
    let (listener, origin) = match activated {
        Some(listener) => (listener, Origin::Activated),
        None if binding.reuse_port => (bind(addr, binding)?, Origin::SharedPort),
        None => (bind(addr, binding)?, Origin::Bound),
    };
    Ok((mio::net::TcpListener::from_std(listener), origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn loopback() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    fn binding(reuse_port: bool) -> Binding {
        Binding {
            reuse_port,
            backlog: 128,
        }
    }

    /// Connections the kernel completes while nobody accepts: a burst of
    /// 300 fits a backlog of 512, where the standard library's 128 would
    /// make the 130th connect wait for a SYN retransmission and time out.
    #[test]
    fn the_backlog_holds_a_burst_of_connections_nobody_has_accepted_yet() {
        let burst = 300;
        let backlog = 512;
        assert!(
            somaxconn().is_none_or(|cap| cap >= burst),
            "net.core.somaxconn is below {burst}: this test cannot tell"
        );
        let listener = bind(
            loopback(),
            Binding {
                reuse_port: false,
                backlog,
            },
        )
        .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let clients: Vec<_> = (0..burst)
            .map(|i| {
                std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))
                    .unwrap_or_else(|e| panic!("connect {i} of {burst}: {e}"))
            })
            .collect();
        assert_eq!(clients.len(), burst as usize);
        drop(listener);
    }

    #[test]
    fn reuse_port_lets_two_listeners_share_a_port() {
        let first = bind(loopback(), binding(true)).expect("first bind");
        let addr = first.local_addr().expect("addr");
        let second = bind(addr, binding(true)).expect("a second listener with SO_REUSEPORT");
        assert_eq!(second.local_addr().expect("addr"), addr);
        assert!(
            bind(addr, binding(false)).is_err(),
            "without SO_REUSEPORT the port stays taken"
        );
    }

    #[test]
    fn a_plain_bind_keeps_the_port_to_itself() {
        let first = bind(loopback(), binding(false)).expect("bind");
        let addr = first.local_addr().expect("addr");
        assert!(bind(addr, binding(true)).is_err());
    }

    #[test]
    fn only_a_listening_tcp_socket_is_taken() {
        let listener = bind(loopback(), binding(false)).expect("bind");
        let fd = listener.as_raw_fd();
        let taken = listening_tcp(fd, Socket::from(listener)).expect("a listener is taken");
        assert!(taken.local_addr().is_ok());

        let unlistened =
            Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
        let err = listening_tcp(unlistened.as_raw_fd(), unlistened).expect_err("not listening");
        assert!(err.to_string().contains("listen() was not called"), "{err}");

        let udp = Socket::new(Domain::IPV4, Type::DGRAM, None).expect("socket");
        let err = listening_tcp(udp.as_raw_fd(), udp).expect_err("udp");
        assert!(err.to_string().contains("not a stream socket"), "{err}");

        let unix = Socket::new(Domain::UNIX, Type::STREAM, None).expect("socket");
        let err = listening_tcp(unix.as_raw_fd(), unix).expect_err("unix");
        assert!(err.to_string().contains("address family"), "{err}");
    }
}
