//! Why connections close, why packets are refused, why connections are
//! not admitted and how logins end: enums with stable metric label names.
//!
//! Each enum is one `reasons!` table of variant, doc and label; the enum,
//! its `LABELS`, `index()` and `as_str()` are generated from it, so a
//! reason is declared once and its label can never drift from its index.

/// Generates a reason enum and its label table.
///
/// Each line is `Variant = "label",` with its doc comment. At most one line
/// may instead be `Variant(Inner),`, wrapping another reason enum: it takes
/// every label of `Inner`, in `Inner`'s order, at its place in the list.
/// Generates the enum, `LABELS`, `index()` (position in `LABELS`) and
/// `as_str()`; an enum without a wrapped one also gets `ALL`.
macro_rules! reasons {
    (
        $(#[doc = $doc:literal])*
        pub enum $name:ident {
            $( $(#[doc = $vdoc:literal])* $variant:ident = $label:literal, )*
        }
    ) => {
        reasons!(@emit [$(#[doc = $doc])* $name]
            [] [] [$( [$(#[doc = $vdoc])* $variant = $label] )*]);

        impl $name {
            /// Every variant, in label-index order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
        }
    };
    // With a wrapped enum: collect the lines before it one at a time (a
    // single pattern for head, wrapped variant and tail would be ambiguous
    // at the doc comments).
    (
        $(#[doc = $doc:literal])*
        pub enum $name:ident { $($body:tt)* }
    ) => {
        reasons!(@head [$(#[doc = $doc])* $name] [] $($body)*);
    };
    (
        @head $decl:tt [$($head:tt)*]
        $(#[doc = $d:literal])* $variant:ident = $label:literal,
        $($rest:tt)*
    ) => {
        reasons!(@head $decl [$($head)* [$(#[doc = $d])* $variant = $label]] $($rest)*);
    };
    (
        @head $decl:tt $head:tt
        $(#[doc = $ndoc:literal])* $nested:ident($inner:ident),
        $( $(#[doc = $tdoc:literal])* $tail:ident = $tlabel:literal, )*
    ) => {
        reasons!(@emit $decl $head [$(#[doc = $ndoc])* $nested($inner)]
            [$( [$(#[doc = $tdoc])* $tail = $tlabel] )*]);
    };
    (
        @emit [$(#[doc = $doc:literal])* $name:ident]
        [$( [$(#[doc = $hdoc:literal])* $head:ident = $hlabel:literal] )*]
        [$( $(#[doc = $ndoc:literal])* $nested:ident($inner:ident) )?]
        [$( [$(#[doc = $tdoc:literal])* $tail:ident = $tlabel:literal] )*]
    ) => {
        $(#[doc = $doc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                $(#[doc = $hdoc])*
                #[doc = concat!("\n\nLabel `", $hlabel, "`.")]
                $head,
            )*
            $(
                $(#[doc = $ndoc])*
                #[doc = concat!("\n\nLabelled like the wrapped [`", stringify!($inner), "`].")]
                $nested($inner),
            )?
            $(
                $(#[doc = $tdoc])*
                #[doc = concat!("\n\nLabel `", $tlabel, "`.")]
                $tail,
            )*
        }

        impl $name {
            #[doc = concat!("Metric label names; [`", stringify!($name), "::index`] indexes this.")]
            pub const LABELS: &'static [&'static str] = {
                const HEAD: &[&str] = &[$($hlabel),*];
                const INNER: &[&str] = reasons!(@labels $($inner)?);
                const TAIL: &[&str] = &[$($tlabel),*];
                const JOINED: [&str; HEAD.len() + INNER.len() + TAIL.len()] =
                    join_labels([HEAD, INNER, TAIL]);
                &JOINED
            };

            #[doc = concat!("Index into [`", stringify!($name), "::LABELS`].")]
            pub fn index(self) -> usize {
                enum Position { $($head,)* $($nested,)? $($tail,)* }
                // Past the wrapped variant, a label index is the position
                // plus the wrapped enum's labels but the one position.
                const SHIFT: usize = reasons!(@shift $($inner)?);
                match self {
                    $( $name::$head => Position::$head as usize, )*
                    $( $name::$nested(inner) => Position::$nested as usize + inner.index(), )?
                    $( $name::$tail => Position::$tail as usize + SHIFT, )*
                }
            }

            /// The label name.
            pub fn as_str(self) -> &'static str {
                Self::LABELS[self.index()]
            }
        }
    };
    (@labels) => { &[] };
    (@labels $inner:ident) => { $inner::LABELS };
    (@shift) => { 0 };
    (@shift $inner:ident) => { $inner::LABELS.len() - 1 };
}

/// The label lists `parts` one after the other; `N` must be their total
/// length (checked at compile time).
const fn join_labels<const N: usize>(parts: [&[&'static str]; 3]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut n = 0;
    let mut p = 0;
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[n] = parts[p][i];
            n += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(n == N, "label count does not match");
    out
}

reasons! {
    /// A protocol error (docs/protocol.md §9 D5), counted by kind.
    pub enum ProtocolError {
        /// Size field outside 6..=2047.
        BadSize = "bad_size",
        /// Checksum mismatch.
        BadChecksum = "bad_checksum",
        /// Malformed header (plain: byte 4 not zero; rose: bad padding).
        BadHeader = "bad_header",
        /// Unknown packet id (fatal before the world phase, ignored after).
        UnknownPacket = "unknown_packet",
        /// Body shorter than its layout, a string without terminator, a count past the end.
        MalformedBody = "malformed_body",
        /// A known packet in the wrong phase (ignored; too many close).
        WrongState = "wrong_state",
        /// A character slot outside the last list.
        BadSlot = "bad_slot",
        /// A missing or invalid PROXY protocol header.
        BadProxyHeader = "bad_proxy_header",
    }
}

reasons! {
    /// Why a connection closed.
    pub enum CloseReason {
        /// The client closed (EOF) or reset the connection.
        PeerClosed = "peer_closed",
        /// A read or write failed with an I/O error.
        IoError = "io_error",
        /// A protocol error that closes (docs/protocol.md §9 D5).
        Protocol(ProtocolError),
        /// Too many wrong-state packets.
        WrongStateBudget = "wrong_state_budget",
        /// No valid packet within the handshake timeout.
        HandshakeTimeout = "handshake_timeout",
        /// No packet within the idle timeout.
        IdleTimeout = "idle_timeout",
        /// More packets per second than allowed.
        RateLimited = "rate_limited",
        /// The client does not read: its output queue passed the limit.
        OutputLimit = "output_limit",
        /// No buffer for a reply (pool exhausted).
        PoolExhausted = "pool_exhausted",
        /// A backend call without a failure reply could not be made.
        BackendUnavailable = "backend_unavailable",
        /// The session expired (refresh refused).
        SessionExpired = "session_expired",
        /// Login refused with NO_RIGHT_TO_CONNECT.
        LoginRefused = "login_refused",
        /// Character selection refused.
        SelectRefused = "select_refused",
        /// Kicked by the world service, or the session joined again on
        /// another connection.
        Kicked = "kicked",
        /// The world stream dropped while the player was in the world.
        WorldLinkLost = "world_link_lost",
        /// The gateway is shutting down.
        Shutdown = "shutdown",
        /// The real client (after a PROXY header) is over its per-IP limit.
        PerIpLimit = "per_ip_limit",
        /// A frame or PROXY header began and did not arrive whole within
        /// the frame timeout.
        FrameTimeout = "frame_timeout",
        /// The pool ran short and this connection had held buffers longest
        /// without progress.
        PoolPressure = "pool_pressure",
        /// An irose game connection after its logout or return to
        /// character select was answered: the server closes it, as the
        /// protocol asks (docs/protocol.md §10.6, steps 13a and 13b).
        LoggedOut = "logged_out",
    }
}

impl CloseReason {
    /// Closes that are part of normal operation: logged at `trace`, left
    /// out of the minute's limit summary.
    pub const NORMAL: [CloseReason; 3] = [
        CloseReason::PeerClosed,
        CloseReason::Shutdown,
        CloseReason::LoggedOut,
    ];

    /// Whether this close is one of [`CloseReason::NORMAL`].
    pub fn is_normal(self) -> bool {
        CloseReason::NORMAL.contains(&self)
    }

    /// Whether this close follows a reply on purpose: the socket is
    /// half-closed and what the client still sends is read and dropped for
    /// a while, so that a reset does not destroy the reply
    /// (docs/protocol.md §8).
    pub fn follows_reply(self) -> bool {
        matches!(
            self,
            CloseReason::Shutdown
                | CloseReason::LoginRefused
                | CloseReason::SelectRefused
                | CloseReason::Kicked
                | CloseReason::WorldLinkLost
                | CloseReason::SessionExpired
                | CloseReason::LoggedOut
        )
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

reasons! {
    /// Why a chat message was dropped at the gateway instead of forwarded
    /// to the world (the chat budget, `CHAT_MESSAGES_PER_SEC` and
    /// `CHAT_MAX_BYTES`).
    pub enum ChatRefusal {
        /// Over the player's messages per second.
        Rate = "rate",
        /// Text longer than `CHAT_MAX_BYTES`.
        Size = "size",
        /// Text that is not valid UTF-8 (refused, never expanded).
        Encoding = "encoding",
    }
}

reasons! {
    /// Why a new connection was refused at accept.
    pub enum RejectReason {
        /// MAX_CONCURRENT_CONNECTIONS reached.
        MaxConnections = "max_connections",
        /// MAX_CONNECTIONS_PER_IP reached for the source address.
        PerIpLimit = "per_ip_limit",
        /// Shutting down.
        ShuttingDown = "shutting_down",
        /// PROXY protocol header from an untrusted source, or invalid.
        ProxyProtocol = "proxy_protocol",
        /// The kernel would not watch the socket (epoll out of memory).
        RegisterFailed = "register_failed",
    }
}

reasons! {
    /// How a login ended, as `logins_total` counts it: the auth service's
    /// verdict, which may say more than the result code the client is sent.
    pub enum LoginVerdict {
        /// Accepted: a session was opened.
        Ok = "ok",
        /// The account exists and the password digest did not match.
        WrongPassword = "wrong_password",
        /// No such account (and accounts are not created on first login).
        UnknownAccount = "unknown_account",
        /// Refused for the account's sake: no right to connect, already
        /// logged in, blocked and the like.
        Refused = "refused",
        /// No verdict: the auth service answered FAILED (or a code the
        /// contract does not know), or the call failed.
        Failed = "failed",
    }
}

reasons! {
    /// Why the auth service refused a login or join before checking its
    /// digest, as `auth_refused_total` counts it (docs/protocol.md §9 D17).
    /// The client is sent the ordinary failure code.
    pub enum AuthRefusal {
        /// The account failed too often lately: backing off.
        ThrottledAccount = "throttled_account",
        /// The source (IPv4 address, IPv6 /64) failed too often lately.
        ThrottledSource = "throttled_source",
        /// Creating the account would pass an auto-create limit.
        AutocreateLimit = "autocreate_limit",
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
            CloseReason::LoggedOut.index(),
            CloseReason::LABELS.len() - 1
        );
        assert_eq!(CloseReason::WrongStateBudget.as_str(), "wrong_state_budget");
        assert_eq!(RejectReason::ProxyProtocol.as_str(), "proxy_protocol");
    }

    /// The label list dashboards and the README rely on, in its order.
    #[test]
    fn close_labels_keep_their_layout() {
        assert_eq!(
            CloseReason::LABELS,
            [
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
                "frame_timeout",
                "pool_pressure",
                "logged_out",
            ]
        );
        assert_eq!(CloseReason::PeerClosed.index(), 0);
        assert_eq!(CloseReason::IoError.index(), 1);
        assert_eq!(CloseReason::Protocol(ProtocolError::BadSize).index(), 2);
        assert_eq!(CloseReason::WrongStateBudget.index(), 10);
        assert_eq!(CloseReason::Shutdown.as_str(), "shutdown");
    }
}
