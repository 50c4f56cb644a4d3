//! Why connections close, why packets are refused and why connections are
//! not admitted: enums with stable metric label names.

/// A protocol error (docs/protocol.md §9 D5), counted by kind.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolError {
    /// Size field outside 6..=2047.
    BadSize,
    /// Checksum mismatch.
    BadChecksum,
    /// Malformed header (plain: byte 4 not zero; rose: bad padding).
    BadHeader,
    /// Unknown packet id (fatal before the world phase, ignored after).
    UnknownPacket,
    /// Body shorter than its layout, a string without terminator, a count past the end.
    MalformedBody,
    /// A known packet in the wrong phase (ignored; too many close).
    WrongState,
    /// A character slot outside the last list.
    BadSlot,
    /// A missing or invalid PROXY protocol header.
    BadProxyHeader,
}

impl ProtocolError {
    /// Every kind, in label-index order.
    pub const ALL: &'static [ProtocolError] = &[
        ProtocolError::BadSize,
        ProtocolError::BadChecksum,
        ProtocolError::BadHeader,
        ProtocolError::UnknownPacket,
        ProtocolError::MalformedBody,
        ProtocolError::WrongState,
        ProtocolError::BadSlot,
        ProtocolError::BadProxyHeader,
    ];

    /// Metric label names, indexed like [`ProtocolError::ALL`].
    pub const LABELS: &'static [&'static str] = &[
        "bad_size",
        "bad_checksum",
        "bad_header",
        "unknown_packet",
        "malformed_body",
        "wrong_state",
        "bad_slot",
        "bad_proxy_header",
    ];

    /// Index into [`ProtocolError::LABELS`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The label name.
    pub fn as_str(self) -> &'static str {
        Self::LABELS[self.index()]
    }
}

/// Why a connection closed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client closed (EOF) or reset the connection.
    PeerClosed,
    /// A read or write failed with an I/O error.
    IoError,
    /// A protocol error that closes (docs/protocol.md §9 D5).
    Protocol(ProtocolError),
    /// Too many wrong-state packets.
    WrongStateBudget,
    /// No valid packet within the handshake timeout.
    HandshakeTimeout,
    /// No packet within the idle timeout.
    IdleTimeout,
    /// More packets per second than allowed.
    RateLimited,
    /// The client does not read: its output queue passed the limit.
    OutputLimit,
    /// No buffer for a reply (pool exhausted).
    PoolExhausted,
    /// A backend call without a failure reply could not be made.
    BackendUnavailable,
    /// The session expired (refresh refused).
    SessionExpired,
    /// Login refused with NO_RIGHT_TO_CONNECT.
    LoginRefused,
    /// Character selection refused.
    SelectRefused,
    /// Kicked by the world service.
    Kicked,
    /// The world stream dropped while the player was in the world.
    WorldLinkLost,
    /// The gateway is shutting down.
    Shutdown,
    /// The real client (after a PROXY header) is over its per-IP limit.
    PerIpLimit,
}

impl CloseReason {
    /// Metric label names; [`CloseReason::index`] indexes this.
    pub const LABELS: &'static [&'static str] = &[
        "peer_closed",
        "io_error",
        "bad_size",
        "bad_checksum",
        "bad_header",
        "unknown_packet",
        "malformed_body",
        "wrong_state",
        "bad_slot",
        "bad_proxy_header",
        "wrong_state_budget",
        "handshake_timeout",
        "idle_timeout",
        "rate_limited",
        "output_limit",
        "pool_exhausted",
        "backend_unavailable",
        "session_expired",
        "login_refused",
        "select_refused",
        "kicked",
        "world_link_lost",
        "shutdown",
        "per_ip_limit",
    ];

    /// Index into [`CloseReason::LABELS`].
    pub fn index(self) -> usize {
        let p = ProtocolError::ALL.len();
        match self {
            CloseReason::PeerClosed => 0,
            CloseReason::IoError => 1,
            CloseReason::Protocol(e) => 2 + e.index(),
            CloseReason::WrongStateBudget => 2 + p,
            CloseReason::HandshakeTimeout => 3 + p,
            CloseReason::IdleTimeout => 4 + p,
            CloseReason::RateLimited => 5 + p,
            CloseReason::OutputLimit => 6 + p,
            CloseReason::PoolExhausted => 7 + p,
            CloseReason::BackendUnavailable => 8 + p,
            CloseReason::SessionExpired => 9 + p,
            CloseReason::LoginRefused => 10 + p,
            CloseReason::SelectRefused => 11 + p,
            CloseReason::Kicked => 12 + p,
            CloseReason::WorldLinkLost => 13 + p,
            CloseReason::Shutdown => 14 + p,
            CloseReason::PerIpLimit => 15 + p,
        }
    }

    /// The label name.
    pub fn as_str(self) -> &'static str {
        Self::LABELS[self.index()]
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a new connection was refused at accept.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// MAX_CONCURRENT_CONNECTIONS reached.
    MaxConnections,
    /// MAX_CONNECTIONS_PER_IP reached for the source address.
    PerIpLimit,
    /// Shutting down.
    ShuttingDown,
    /// PROXY protocol header from an untrusted source, or invalid.
    ProxyProtocol,
}

impl RejectReason {
    /// Metric label names, indexed by [`RejectReason::index`].
    pub const LABELS: &'static [&'static str] = &[
        "max_connections",
        "per_ip_limit",
        "shutting_down",
        "proxy_protocol",
    ];

    /// Index into [`RejectReason::LABELS`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The label name.
    pub fn as_str(self) -> &'static str {
        Self::LABELS[self.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_line_up() {
        for (i, e) in ProtocolError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(CloseReason::Protocol(*e).as_str(), e.as_str());
        }
        assert_eq!(
            CloseReason::PerIpLimit.index(),
            CloseReason::LABELS.len() - 1
        );
        assert_eq!(CloseReason::WrongStateBudget.as_str(), "wrong_state_budget");
        assert_eq!(RejectReason::ProxyProtocol.as_str(), "proxy_protocol");
    }
}
