//! The steps of a bot's flow, with the names its failures are counted by.

/// Where a bot is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Connecting for the login phase.
    LoginConnect,
    /// ACCEPT_REQ sent on the login connection.
    LoginAccept,
    /// LOGIN_REQ sent.
    Login,
    /// SRV_SELECT_REQ sent.
    SrvSelect,
    /// Connecting for the char phase.
    CharConnect,
    /// ACCEPT_REQ sent on the char connection.
    CharAccept,
    /// JOIN_SERVER_REQ sent on the char connection.
    CharJoin,
    /// CHAR_LIST_REQ sent.
    CharList,
    /// CREATE_CHAR_REQ sent.
    CreateChar,
    /// CHAR_LIST_REQ sent after creating.
    CharListAgain,
    /// SELECT_CHAR_REQ sent.
    SelectChar,
    /// Connecting for the map phase.
    MapConnect,
    /// ACCEPT_REQ sent on the map connection.
    MapAccept,
    /// JOIN_SERVER_REQ sent on the map connection.
    MapJoin,
    /// CHANGE_MAP_REQ sent.
    ChangeMap,
    /// On the map (goal [`Goal::Map`] reached).
    InMap,
    /// Goal [`Goal::CharList`] reached.
    Done,
    /// Gave up; counted in [`Bots::failures`].
    Failed,
}

impl Step {
    pub(super) fn name(self) -> &'static str {
        match self {
            Step::LoginConnect => "login_connect",
            Step::LoginAccept => "login_accept",
            Step::Login => "login",
            Step::SrvSelect => "srv_select",
            Step::CharConnect => "char_connect",
            Step::CharAccept => "char_accept",
            Step::CharJoin => "char_join",
            Step::CharList => "char_list",
            Step::CreateChar => "create_char",
            Step::CharListAgain => "char_list_again",
            Step::SelectChar => "select_char",
            Step::MapConnect => "map_connect",
            Step::MapAccept => "map_accept",
            Step::MapJoin => "map_join",
            Step::ChangeMap => "change_map",
            Step::InMap => "in_map",
            Step::Done => "done",
            Step::Failed => "failed",
        }
    }

    pub(super) fn settled(self) -> bool {
        matches!(self, Step::InMap | Step::Done | Step::Failed)
    }
}
