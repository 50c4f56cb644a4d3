//! Names of the result codes in the replies of docs/protocol.md §3 (accept,
//! login, server select, join, create character).
//!
//! `src/protocol` has the codes (the [`LoginResult`] enum and the `const`s
//! of each reply) but no names; the names are given here, one table per
//! reply, built from those codes so that a renumbered code moves its name
//! with it.

use packet_service::protocol::packet_type::PacketType;
use packet_service::protocol::packets::{
    AcceptReply, CreateCharReply, JoinServerReply, LoginResult, SrvSelectReply,
};

/// The names of one reply's result codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultNames {
    /// The reply whose `result` field these codes are.
    pub packet: PacketType,
    /// `(code, name)`, in code order.
    pub names: &'static [(u8, &'static str)],
}

impl ResultNames {
    /// The name of `code`, if the protocol defines it.
    pub fn name(&self, code: u8) -> Option<&'static str> {
        self.names.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
    }

    /// `result 3 (invalid password)`; `result 99 (unknown)` for a code the
    /// protocol does not define.
    pub fn describe(&self, code: u8) -> String {
        format!("result {code} ({})", self.name(code).unwrap_or("unknown"))
    }
}

/// PAKSS_ACCEPT_REPLY.
pub const ACCEPT: ResultNames = ResultNames {
    packet: PacketType::PAKSS_ACCEPT_REPLY,
    names: &[
        (AcceptReply::CONNECT, "connect"),
        (AcceptReply::ACCEPTED, "accepted"),
        (AcceptReply::DISCONNECT, "disconnect"),
        (AcceptReply::SERVERDEAD, "server dead"),
    ],
};

/// PAKLC_LOGIN_REPLY ([`LoginResult`]).
pub const LOGIN: ResultNames = ResultNames {
    packet: PacketType::PAKLC_LOGIN_REPLY,
    names: &[
        (LoginResult::Ok.code(), "ok"),
        (LoginResult::Failed.code(), "failed"),
        (LoginResult::UnknownAccount.code(), "unknown account"),
        (LoginResult::InvalidPassword.code(), "invalid password"),
        (LoginResult::AlreadyLoggedIn.code(), "already logged in"),
        (LoginResult::RefusedAccount.code(), "refused account"),
        (LoginResult::NeedCharge.code(), "need charge"),
        (LoginResult::NoRightToConnect.code(), "no right to connect"),
        (LoginResult::TooManyUsers.code(), "too many users"),
        (LoginResult::NoName.code(), "no name"),
        (LoginResult::InvalidVersion.code(), "invalid version"),
        (LoginResult::OutsideRegion.code(), "outside region"),
    ],
};

/// PAKLC_SRV_SELECT_REPLY.
pub const SRV_SELECT: ResultNames = ResultNames {
    packet: PacketType::PAKLC_SRV_SELECT_REPLY,
    names: &[
        (SrvSelectReply::OK, "ok"),
        (SrvSelectReply::FAILED, "failed"),
        (SrvSelectReply::FULL, "full"),
        (SrvSelectReply::INVALID_CHANNEL, "invalid channel"),
        (SrvSelectReply::CHANNEL_NOT_ACTIVE, "channel not active"),
        (SrvSelectReply::INVALID_AGE, "invalid age"),
    ],
};

/// PAKSC_JOIN_SERVER_REPLY.
pub const JOIN: ResultNames = ResultNames {
    packet: PacketType::PAKSC_JOIN_SERVER_REPLY,
    names: &[
        (JoinServerReply::OK, "ok"),
        (JoinServerReply::FAILED, "failed"),
        (JoinServerReply::TIME_OUT, "time out"),
        (JoinServerReply::INVALID_PASSWORD, "invalid password"),
        (JoinServerReply::ALREADY_LOGGEDIN, "already logged in"),
    ],
};

/// PAKCC_CREATE_CHAR_REPLY.
pub const CREATE_CHAR: ResultNames = ResultNames {
    packet: PacketType::PAKCC_CREATE_CHAR_REPLY,
    names: &[
        (CreateCharReply::OK, "ok"),
        (CreateCharReply::FAILED, "failed"),
        (CreateCharReply::NAME_TAKEN, "name taken"),
        (CreateCharReply::INVALID_VALUE, "invalid value"),
        (CreateCharReply::TOO_MANY_CHARS, "too many characters"),
        (CreateCharReply::BLOCKED, "blocked"),
    ],
};

/// Every table, for code that covers them all (the dissector).
pub const ALL: &[ResultNames] = &[ACCEPT, LOGIN, SRV_SELECT, JOIN, CREATE_CHAR];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_login_result_has_a_name_and_no_name_lacks_a_code() {
        for code in 0..=u8::MAX {
            assert_eq!(
                LoginResult::from_code(code).is_some(),
                LOGIN.name(code).is_some(),
                "code {code}"
            );
        }
    }

    #[test]
    fn codes_are_unique_and_in_order() {
        for table in ALL {
            let codes: Vec<u8> = table.names.iter().map(|(c, _)| *c).collect();
            let mut sorted = codes.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(codes, sorted, "{}", table.packet);
        }
    }

    #[test]
    fn descriptions() {
        assert_eq!(LOGIN.describe(3), "result 3 (invalid password)");
        assert_eq!(SRV_SELECT.describe(99), "result 99 (unknown)");
    }
}
