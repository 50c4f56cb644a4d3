//! Packet names and the id tables of each dialect (docs/protocol.md §2,
//! docs/protocol.md §9 D1, docs/protocol.md §10.4).
//!
//! Code names packets by their protocol names ([`PacketType`]); raw ids
//! appear only in the tables below. A dialect is one numbering of those
//! names. Lookups from a wire id take the direction into account, so a
//! dialect in which a request and its reply share one id (the irose 0x7xx
//! numbering of the real 129en client) is one more column in
//! `packet_types!`. Dialects come in two [`Family`]s, which differ in more
//! than ids: their packet layouts and cipher conventions.

use std::sync::OnceLock;

/// Which way a packet travels.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by a game client to the server.
    ClientToServer,
    /// Sent by the server to a game client.
    ServerToClient,
    /// Inter-server (ISC) traffic; never accepted from clients.
    InterServer,
}

/// The id of the STRESS echo packet ("mo"); only valid in the `plain` codec.
pub const STRESS_ID: u16 = 0x6F6D;

/// Ids below this bound fit in the 11-bit command field of the `rose` header.
pub const ID_SPACE: usize = 0x800;

macro_rules! packet_types {
    ($($name:ident = ($dir:ident, $master:expr, $y2021:expr, $irose:expr),)*) => {
        /// Every packet name of docs/protocol.md §2, plus the STRESS test echo.
        #[allow(non_camel_case_types)]
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum PacketType {
            $($name,)*
            /// Test echo (docs/protocol.md §9 D3), id 0x6F6D in every dialect.
            STRESS,
        }

        impl PacketType {
            /// Every packet type, in table order.
            pub const ALL: &'static [PacketType] = &[$(PacketType::$name,)* PacketType::STRESS];

            /// The protocol name, e.g. `"PAKCS_ALIVE"`.
            pub fn name(self) -> &'static str {
                match self {
                    $(PacketType::$name => stringify!($name),)*
                    PacketType::STRESS => "STRESS",
                }
            }

            /// Which way the packet travels.
            pub fn direction(self) -> Direction {
                match self {
                    $(PacketType::$name => Direction::$dir,)*
                    PacketType::STRESS => Direction::ClientToServer,
                }
            }
        }

        const OSIROSE_IDS: &[Option<u16>] = &[$(Some($master),)* Some(STRESS_ID)];
        const OSIROSE_2021_IDS: &[Option<u16>] = &[$($y2021,)* Some(STRESS_ID)];
        const IROSE_IDS: &[Option<u16>] = &[$($irose,)* Some(STRESS_ID)];
    };
}

packet_types! {
ISC_ALIVE = (InterServer, 0x301, Some(0x301), None),
ISC_SERVER_REGISTER = (InterServer, 0x302, Some(0x302), None),
ISC_TRANSFER = (InterServer, 0x303, Some(0x303), None),
ISC_TRANSFER_CHAR = (InterServer, 0x304, Some(0x304), None),
ISC_CLIENT_STATUS = (InterServer, 0x305, Some(0x305), None),
ISC_SHUTDOWN = (InterServer, 0x306, Some(0x306), None),
PAKCS_ALIVE = (ClientToServer, 0x500, Some(0x500), Some(0x700)),
PAKSS_ERROR = (ServerToClient, 0x501, Some(0x501), None),
PAKSS_ANNOUNCE_TEXT = (ServerToClient, 0x502, Some(0x502), None),
PAKSW_ANNOUNCE_CHAT = (ServerToClient, 0x503, Some(0x503), Some(0x702)),
PAKCS_ACCEPT_REQ = (ClientToServer, 0x504, Some(0x504), Some(0x703)),
PAKCS_CHANNEL_LIST_REQ = (ClientToServer, 0x505, Some(0x505), Some(0x704)),
PAKLC_CHANNEL_LIST_REPLY = (ServerToClient, 0x506, Some(0x506), Some(0x704)),
PAKCS_LOGOUT_REQ = (ClientToServer, 0x507, Some(0x507), Some(0x707)),
PAKWC_LOGOUT_REPLY = (ServerToClient, 0x508, Some(0x508), Some(0x707)),
PAKCS_LOGIN_REQ = (ClientToServer, 0x509, Some(0x509), Some(0x708)),
PAKCS_LOGIN_TOKEN_REQ = (ClientToServer, 0x50A, None, None),
PAKLC_LOGIN_REPLY = (ServerToClient, 0x50B, Some(0x50A), Some(0x708)),
PAKGC_LOGIN_REPLY = (ServerToClient, 0x50C, Some(0x50B), None),
PAKCS_SRV_SELECT_REQ = (ClientToServer, 0x50D, Some(0x50C), Some(0x70A)),
PAKLC_SRV_SELECT_REPLY = (ServerToClient, 0x50E, Some(0x50D), Some(0x70A)),
PAKCS_JOIN_SERVER_REQ = (ClientToServer, 0x50F, Some(0x50E), Some(0x70B)),
PAKCS_JOIN_SERVER_TOKEN_REQ = (ClientToServer, 0x510, None, None),
PAKSC_JOIN_SERVER_REPLY = (ServerToClient, 0x511, Some(0x50F), Some(0x70C)),
PAKWC_GM_COMMAND = (ServerToClient, 0x512, Some(0x510), None),
PAKWC_GLOBAL_VARS = (ServerToClient, 0x513, Some(0x511), None),
PAKWC_GLOBAL_FLAGS = (ServerToClient, 0x514, Some(0x512), None),
PAKCC_SWITCH_SERVER = (ServerToClient, 0x515, Some(0x513), Some(0x711)),
PAKCS_CHAR_LIST_REQ = (ClientToServer, 0x516, Some(0x514), Some(0x712)),
PAKCC_CHAR_LIST_REPLY = (ServerToClient, 0x517, Some(0x515), Some(0x712)),
PAKCS_CREATE_CHAR_REQ = (ClientToServer, 0x518, Some(0x516), Some(0x713)),
PAKCC_CREATE_CHAR_REPLY = (ServerToClient, 0x519, Some(0x517), Some(0x713)),
PAKCS_DELETE_CHAR_REQ = (ClientToServer, 0x51A, Some(0x518), Some(0x714)),
PAKCC_DELETE_CHAR_REPLY = (ServerToClient, 0x51B, Some(0x519), Some(0x714)),
PAKCS_SELECT_CHAR_REQ = (ClientToServer, 0x51C, Some(0x51A), Some(0x715)),
PAKWC_SELECT_CHAR_REPLY = (ServerToClient, 0x51D, Some(0x51B), Some(0x715)),
PAKWC_INVENTORY_DATA = (ServerToClient, 0x51E, Some(0x51C), Some(0x716)),
PAKWC_SET_MONEY_AND_ITEM = (ServerToClient, 0x51F, Some(0x51D), None),
PAKWC_SET_ITEM = (ServerToClient, 0x520, Some(0x51E), None),
PAKWC_SERVER_DATA = (ServerToClient, 0x521, Some(0x51F), None),
PAKWC_QUEST_DATA = (ServerToClient, 0x522, Some(0x520), Some(0x71B)),
PAKCS_CHANGE_CHAR_REQ = (ClientToServer, 0x523, Some(0x521), Some(0x71C)),
PAKCC_CHAN_CHAR_REPLY = (ServerToClient, 0x524, Some(0x522), Some(0x71C)),
PAKWC_SET_MONEY = (ServerToClient, 0x525, Some(0x523), None),
PAKWC_QUEST_REWARD_MONEY = (ServerToClient, 0x526, Some(0x524), None),
PAKWC_QUEST_REWARD_ITEM = (ServerToClient, 0x527, Some(0x525), None),
PAKWC_QUEST_REWARD_ADD_VALUE = (ServerToClient, 0x528, Some(0x526), None),
PAKWC_QUEST_REWARD_SET_VALUE = (ServerToClient, 0x529, Some(0x527), None),
PAKCS_CANCEL_LOGOUT = (ClientToServer, 0x52A, Some(0x528), None),
PAKWC_QUEST_UPDATE = (ServerToClient, 0x52B, Some(0x529), None),
PAKWC_WISH_LIST = (ServerToClient, 0x52C, Some(0x52A), None),
PAKCS_QUEST_DATA_REQ = (ClientToServer, 0x52D, Some(0x52B), None),
PAKWC_QUEST_DATA_REPLY = (ServerToClient, 0x52E, Some(0x52C), None),
PAKWC_NPC_EVENT = (ServerToClient, 0x52F, Some(0x52D), None),
PAKWC_GM_COMMAND_CODE = (ServerToClient, 0x530, Some(0x52E), None),
PAKCS_CHANGE_MAP_REQ = (ClientToServer, 0x531, Some(0x52F), Some(0x753)),
PAKWC_CHANGE_MAP_REPLY = (ServerToClient, 0x532, Some(0x530), Some(0x753)),
PAKWC_INIT_DATA = (ServerToClient, 0x533, Some(0x531), None),
PAKCS_REVIVE_REQ = (ClientToServer, 0x534, Some(0x532), None),
PAKWC_REVIVE_REPLY = (ServerToClient, 0x535, Some(0x533), None),
PAKCS_REVIVE_SET_POS = (ClientToServer, 0x536, Some(0x534), None),
PAKCS_SET_SERVER_VAR_REQ = (ClientToServer, 0x537, Some(0x535), None),
PAKWC_SET_SERVER_VAR_REPLY = (ServerToClient, 0x538, Some(0x536), None),
PAKCS_CHAR_INFO_REQ = (ClientToServer, 0x539, Some(0x537), None),
PAKWC_CHAR_INFO_REPLY = (ServerToClient, 0x53A, Some(0x538), None),
PAKCS_SET_WEIGHT_REQ = (ClientToServer, 0x53B, Some(0x539), None),
PAKWC_SET_WEIGHT = (ServerToClient, 0x53C, Some(0x53A), None),
PAKWC_SET_POSITION = (ServerToClient, 0x53D, Some(0x53B), Some(0x770)),
PAKCS_STOP_MOVING = (ClientToServer, 0x53E, Some(0x53C), Some(0x771)),
PAKWC_STOP_MOVING = (ServerToClient, 0x53F, Some(0x53D), None),
PAKWC_UPDATE_NPC = (ServerToClient, 0x540, Some(0x53E), None),
PAKCS_SUMMON_CMD = (ClientToServer, 0x541, Some(0x53F), None),
PAKWC_SUMMON_CMD = (ServerToClient, 0x542, Some(0x540), None),
PAKCS_SET_ANIMATION = (ClientToServer, 0x543, Some(0x541), None),
PACWC_SET_ANIMATION = (ServerToClient, 0x544, Some(0x542), None),
PAKCS_TOGGLE_MOVE = (ClientToServer, 0x545, Some(0x543), None),
PAKWC_TOGGLE_MOVE = (ServerToClient, 0x546, Some(0x544), None),
PAKCS_NORMAL_CHAT = (ClientToServer, 0x547, Some(0x545), Some(0x783)),
PAKWC_NORMAL_CHAT = (ServerToClient, 0x548, Some(0x546), Some(0x783)),
PAKCS_WHISPER_CHAT = (ClientToServer, 0x549, Some(0x547), Some(0x784)),
PAKWC_WHISPER_CHAT = (ServerToClient, 0x54A, Some(0x548), Some(0x784)),
PAKCS_SHOUT_CHAT = (ClientToServer, 0x54B, Some(0x549), Some(0x785)),
PAKWC_SHOUT_CHAT = (ServerToClient, 0x54C, Some(0x54A), Some(0x785)),
PAKCS_PARTY_CHAT = (ClientToServer, 0x54D, Some(0x54B), None),
PAKWC_PARTY_CHAT = (ServerToClient, 0x54E, Some(0x54C), None),
PAKCS_CLAN_CHAT = (ClientToServer, 0x54F, Some(0x54D), None),
PAKWC_CLAN_CHAT = (ServerToClient, 0x550, Some(0x54E), None),
PAKCS_ALLIED_CHAT = (ClientToServer, 0x551, Some(0x54F), None),
PAKWC_ALLIED_CHAT = (ServerToClient, 0x552, Some(0x550), None),
PAKCS_ALLIED_SHOUT_CHAT = (ClientToServer, 0x553, Some(0x551), None),
PAKWC_ALLIED_SHOUT_CHAT = (ServerToClient, 0x554, Some(0x552), None),
PAKWC_EVENT_STATUS = (ServerToClient, 0x555, Some(0x553), None),
PAKWC_NPC_CHAR = (ServerToClient, 0x556, Some(0x554), Some(0x791)),
PAKWC_MOB_CHAR = (ServerToClient, 0x557, Some(0x555), Some(0x792)),
PAKWC_PLAYER_CHAR = (ServerToClient, 0x558, Some(0x556), Some(0x793)),
PAKWC_REMOVE_OBJECT = (ServerToClient, 0x559, Some(0x557), Some(0x794)),
PAKCS_SET_POSITION = (ClientToServer, 0x55A, Some(0x558), None),
PAKCS_STOP = (ClientToServer, 0x55B, Some(0x559), Some(0x796)),
PAKWC_STOP = (ServerToClient, 0x55C, Some(0x55A), Some(0x796)),
PAKWC_MOVE = (ServerToClient, 0x55D, Some(0x55B), Some(0x797)),
PAKCS_ATTACK = (ClientToServer, 0x55E, Some(0x55C), None),
PAKWC_ATTACK = (ServerToClient, 0x55F, Some(0x55D), None),
PAKCS_DAMAGE = (ClientToServer, 0x560, Some(0x55E), None),
PAKWC_DAMAGE = (ServerToClient, 0x561, Some(0x55F), None),
PAKCS_MOUSE_CMD = (ClientToServer, 0x562, Some(0x560), Some(0x79A)),
PAKWC_MOUSE_CMD = (ServerToClient, 0x563, Some(0x561), Some(0x79A)),
PAKWC_SET_EXP = (ServerToClient, 0x564, Some(0x562), None),
PAKWC_LEVELUP = (ServerToClient, 0x565, Some(0x563), None),
PAKCS_HP_REQ = (ClientToServer, 0x566, Some(0x564), None),
PAKWC_HP_REPLY = (ServerToClient, 0x567, Some(0x565), None),
PAKWC_SET_HP_AND_MP = (ServerToClient, 0x568, Some(0x566), None),
PAKCS_STORE_TRADE_REQ = (ClientToServer, 0x569, Some(0x567), None),
PAKWC_STORE_TRADE_REPLY = (ServerToClient, 0x56A, Some(0x568), None),
PAKCS_USE_ITEM = (ClientToServer, 0x56B, Some(0x569), None),
PAKWC_USE_ITEM = (ServerToClient, 0x56C, Some(0x56A), None),
PAKCS_DROP_ITEM = (ClientToServer, 0x56D, Some(0x56B), None),
PAKCS_EQUIP_ITEM = (ClientToServer, 0x56E, Some(0x56C), None),
PAKWC_EQUIP_ITEM = (ServerToClient, 0x56F, Some(0x56D), None),
PAKWC_DROP_ITEM = (ServerToClient, 0x570, Some(0x56E), Some(0x7A6)),
PAKCS_PICKUP_ITEM_REQ = (ClientToServer, 0x571, Some(0x56F), None),
PAKWC_PICKUP_ITEM_REPLY = (ServerToClient, 0x572, Some(0x570), None),
PAKCS_TELEPORT_REQ = (ClientToServer, 0x573, Some(0x571), None),
PAKWC_TELEPORT_REPLY = (ServerToClient, 0x574, Some(0x572), None),
PAKCS_STAT_ADD_REQ = (ClientToServer, 0x575, Some(0x573), None),
PAKWC_STAT_ADD_REPLY = (ServerToClient, 0x576, Some(0x574), None),
PAKCS_HOTBAR_SET_ICON_REQ = (ClientToServer, 0x577, Some(0x575), None),
PAKWC_HOTBAR_SET_ICON_REPLY = (ServerToClient, 0x578, Some(0x576), None),
PAKCS_EQUIP_PROJECTILE = (ClientToServer, 0x579, Some(0x577), None),
PAKWC_EQUIP_PROJECTILE = (ServerToClient, 0x57A, Some(0x578), None),
PAKWC_CHANGE_SKIN = (ServerToClient, 0x57B, Some(0x579), None),
PAKCS_BANK_LIST_REQ = (ClientToServer, 0x57C, Some(0x57A), None),
PAKWC_BANK_LIST_REPLY = (ServerToClient, 0x57D, Some(0x57B), None),
PAKCS_BANK_MOVE_ITEM = (ClientToServer, 0x57E, Some(0x57C), None),
PAKWC_BANK_MOVE_ITEM = (ServerToClient, 0x57F, Some(0x57D), None),
PAKCS_CRAFT_REQ = (ClientToServer, 0x580, Some(0x57E), None),
PAKWC_CRAFT_REPLY = (ServerToClient, 0x581, Some(0x57F), None),
PAKWC_SKILL_LEARN = (ServerToClient, 0x582, Some(0x580), None),
PAKCS_SKILL_LEVEL_REQ = (ClientToServer, 0x583, Some(0x581), None),
PAKWC_SKILL_LEVEL_REPLY = (ServerToClient, 0x584, Some(0x582), None),
PAKCS_SKILL_CAST_SELF = (ClientToServer, 0x585, Some(0x583), None),
PAKWC_SKILL_CAST_SELF = (ServerToClient, 0x586, Some(0x584), None),
PAKCS_SKILL_CAST_TARGET = (ClientToServer, 0x587, Some(0x585), None),
PAKWC_SKILL_CAST_TARGET = (ServerToClient, 0x588, Some(0x586), None),
PAKCS_SKILL_CAST_POSITION = (ClientToServer, 0x589, Some(0x587), None),
PAKWC_SKILL_CAST_POSITION = (ServerToClient, 0x58A, Some(0x588), None),
PAKWC_SKILL_EFFECT = (ServerToClient, 0x58B, Some(0x589), None),
PAKWC_SKILL_DAMAGE = (ServerToClient, 0x58C, Some(0x58A), None),
PAKWC_CLEAR_STATUS = (ServerToClient, 0x58D, Some(0x58B), None),
PAKWC_SPEED_CHANGED = (ServerToClient, 0x58E, Some(0x58C), None),
PAKWC_SKILL_FINISH = (ServerToClient, 0x58F, Some(0x58D), None),
PAKCS_APPRAISAL_REQ = (ClientToServer, 0x590, Some(0x58E), None),
PAKWC_APPRAISAL_REPLY = (ServerToClient, 0x591, Some(0x58F), None),
PAKWC_SKILL_START = (ServerToClient, 0x592, Some(0x590), None),
PAKCS_CRAFT_ENHANCE_REQ = (ClientToServer, 0x593, Some(0x591), None),
PAKWC_CRAFT_ENHANCE_REPLY = (ServerToClient, 0x594, Some(0x592), None),
PAKWC_SKILL_CANCEL = (ServerToClient, 0x595, Some(0x593), None),
PAKCS_WISHLIST_ADD = (ClientToServer, 0x596, Some(0x594), None),
PAKCS_TRADE = (ClientToServer, 0x597, Some(0x595), None),
PAKWC_TRADE = (ServerToClient, 0x598, Some(0x596), None),
PAKCS_TRADE_ITEM = (ClientToServer, 0x599, Some(0x597), None),
PAKWC_TRADE_ITEM = (ServerToClient, 0x59A, Some(0x598), None),
PAKCS_SHOP_OPEN = (ClientToServer, 0x59B, Some(0x599), None),
PAKWC_SHOP_OPEN = (ServerToClient, 0x59C, Some(0x59A), None),
PAKCS_SHOP_CLOSE = (ClientToServer, 0x59D, Some(0x59B), None),
PAKWC_SHOP_CLOSE = (ServerToClient, 0x59E, Some(0x59C), None),
PAKCS_SHOP_LIST_REQ = (ClientToServer, 0x59F, Some(0x59D), None),
PAKWC_SHOP_LIST_REPLY = (ServerToClient, 0x5A0, Some(0x59E), None),
PAKCS_SHOP_BUY_REQ = (ClientToServer, 0x5A1, Some(0x59F), None),
PAKCS_SHOP_SELL_REQ = (ClientToServer, 0x5A2, Some(0x5A0), None),
PAKCS_SHOP_BUYSELL_REPLY = (ServerToClient, 0x5A3, Some(0x5A1), None),
PAKCS_EQUIP_ITEM_RIDE = (ClientToServer, 0x5A4, Some(0x5A2), None),
PAKWC_EQUIP_ITEM_RIDE = (ServerToClient, 0x5A5, Some(0x5A3), None),
PAKCS_REPAIR_USE_ITEM = (ClientToServer, 0x5A6, Some(0x5A4), None),
PAKCS_REPAIR_NPC = (ClientToServer, 0x5A7, Some(0x5A5), None),
PAKWC_SET_ITEM_LIFE = (ServerToClient, 0x5A8, Some(0x5A6), None),
PAKCS_PARTY_REQ = (ClientToServer, 0x5A9, Some(0x5A7), None),
PAKWC_PARTY_REQ = (ServerToClient, 0x5AA, Some(0x5A8), None),
PAKCS_PARTY_REPLY = (ClientToServer, 0x5AB, Some(0x5A9), None),
PAKWC_PARTY_REPLY = (ServerToClient, 0x5AC, Some(0x5AA), None),
PAKWC_PARTY_MEMBER = (ServerToClient, 0x5AD, Some(0x5AB), None),
PAKWC_PARTY_ITEM = (ServerToClient, 0x5AE, Some(0x5AC), None),
PAKWC_PARTY_LEVELEXP = (ServerToClient, 0x5AF, Some(0x5AD), None),
PAKWC_PARTY_MEMBER_UPDATE = (ServerToClient, 0x5B0, Some(0x5AE), None),
PAKWC_EVENT_ADD = (ServerToClient, 0x5B1, Some(0x5AF), None),
PAKCS_PARTY_RULE = (ClientToServer, 0x5B2, Some(0x5B0), None),
PAKWC_PARTY_RULE = (ServerToClient, 0x5B3, Some(0x5B1), None),
PAKCS_CRAFT_STATUS = (ClientToServer, 0x5B4, Some(0x5B2), None),
PAKWC_CRAFT_STATUS = (ServerToClient, 0x5B5, Some(0x5B3), None),
PAKCS_BANK_MOVE_MONEY = (ClientToServer, 0x5B6, Some(0x5B4), None),
PAKWC_BANK_MOVE_MONEY = (ServerToClient, 0x5B7, Some(0x5B5), None),
PAKWC_NPC_SHOW = (ServerToClient, 0x5B8, Some(0x5B6), None),
PAKWC_FAIRY = (ServerToClient, 0x5B9, Some(0x5B7), None),
PAKCS_RIDE_REQUEST = (ClientToServer, 0x5BA, Some(0x5B8), None),
PAKWC_RIDE_REQUEST = (ServerToClient, 0x5BB, Some(0x5B9), None),
PAKWC_BILLING_MESSAGE = (ServerToClient, 0x5BC, Some(0x5BA), None),
PAKWC_BILLING_MESSAGE_EXT = (ServerToClient, 0x5BD, Some(0x5BB), None),
PAKCS_CLAN_COMMAND = (ClientToServer, 0x5BE, Some(0x5BC), Some(0x7E0)),
PAKCC_CLAN_COMMAND = (ServerToClient, 0x5BF, Some(0x5BD), None),
PAKCS_MESSENGER = (ClientToServer, 0x5C0, Some(0x5BE), None),
PAKCC_MESSENGER = (ServerToClient, 0x5C1, Some(0x5BF), None),
PAKCS_MESSENGER_CHAT = (ClientToServer, 0x5C2, Some(0x5C0), None),
PAKCC_MESSENGER_CHAT = (ServerToClient, 0x5C3, Some(0x5C1), None),
PAKCS_CHATROOM = (ClientToServer, 0x5C4, Some(0x5C2), None),
PAKCC_CHATROOM = (ServerToClient, 0x5C5, Some(0x5C3), None),
PAKCS_CHATROOM_MESSAGE = (ClientToServer, 0x5C6, Some(0x5C4), None),
PAKCC_CHATROOM_MESSAGE = (ServerToClient, 0x5C7, Some(0x5C5), None),
PAKCS_MEMO = (ClientToServer, 0x5C8, Some(0x5C6), None),
PAKCC_MEMO = (ServerToClient, 0x5C9, Some(0x5C7), None),
PAKCS_CLAN_ICON_SET = (ClientToServer, 0x5CA, Some(0x5C8), None),
PAKCS_CLAN_ICON_REQ = (ClientToServer, 0x5CB, Some(0x5C9), None),
PAKCC_CLAN_ICON_REPLY = (ServerToClient, 0x5CC, Some(0x5CA), None),
PAKCS_CLAN_ICON_TIMESTAMP = (ClientToServer, 0x5CD, Some(0x5CB), None),
PAKCC_CLAN_ICON_TIMESTAMP = (ServerToClient, 0x5CE, Some(0x5CC), None),
PAKWC_RIDE_STATE_CHANGE = (ServerToClient, 0x5CF, Some(0x5CD), None),
PAWKC_CHAR_STATE_CHANGE = (ServerToClient, 0x5D0, Some(0x5CE), None),
PAKCS_SCREEN_SHOT_TIME_REQ = (ClientToServer, 0x5D1, Some(0x5CF), None),
PAKSC_SCREEN_SHOT_TIME_REPLY = (ServerToClient, 0x5D2, Some(0x5D0), None),
PAKWC_UPDATE_NAME = (ServerToClient, 0x5D3, Some(0x5D1), None),
PAKSS_ACCEPT_REPLY = (ServerToClient, 0x5D4, Some(0x5D2), Some(0x7FF)),}

impl PacketType {
    /// Index into [`PacketType::ALL`] and the id tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Looks a type up by its protocol name.
    pub fn from_name(name: &str) -> Option<PacketType> {
        PacketType::ALL.iter().copied().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for PacketType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The selectable id numberings (`--packet-ids`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DialectId {
    /// dev-osrose/packets master (2026-02 on), the default.
    Osirose,
    /// dev-osrose/packets 2021-03 … 2026-02 (no token packets).
    Osirose2021,
    /// The real irose 129en client, as rose-offline serves it: 0x7xx ids,
    /// its own layouts, seeded tables (docs/protocol.md §10).
    Irose,
}

/// What a dialect shares with others besides ids: the packet layouts and
/// the cipher conventions (encoder parameters, seeded tables). The two
/// osIROSE numberings are one family.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// osIROSE layouts (docs/protocol.md §3), one fixed table.
    Osirose,
    /// irose 129en layouts (docs/protocol.md §10.5), seeded tables on the
    /// char and map connections.
    Irose,
}

impl Family {
    /// The family's name, e.g. for the world contract and logs.
    pub fn name(self) -> &'static str {
        match self {
            Family::Osirose => "osirose",
            Family::Irose => "irose",
        }
    }
}

impl DialectId {
    /// Every dialect, in configuration order.
    pub const ALL: [DialectId; 3] = [DialectId::Osirose, DialectId::Osirose2021, DialectId::Irose];

    /// The configuration name of the dialect.
    pub fn name(self) -> &'static str {
        match self {
            DialectId::Osirose => "osirose",
            DialectId::Osirose2021 => "osirose-2021",
            DialectId::Irose => "irose",
        }
    }

    /// Parses a configuration name.
    pub fn from_name(name: &str) -> Option<DialectId> {
        DialectId::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The family of this dialect.
    pub fn family(self) -> Family {
        match self {
            DialectId::Osirose | DialectId::Osirose2021 => Family::Osirose,
            DialectId::Irose => Family::Irose,
        }
    }

    /// The built tables of this dialect (built once, then shared).
    pub fn dialect(self) -> &'static Dialect {
        static OSIROSE: OnceLock<Dialect> = OnceLock::new();
        static OSIROSE_2021: OnceLock<Dialect> = OnceLock::new();
        static IROSE: OnceLock<Dialect> = OnceLock::new();
        match self {
            DialectId::Osirose => OSIROSE.get_or_init(|| Dialect::build(self, OSIROSE_IDS)),
            DialectId::Osirose2021 => {
                OSIROSE_2021.get_or_init(|| Dialect::build(self, OSIROSE_2021_IDS))
            }
            DialectId::Irose => IROSE.get_or_init(|| Dialect::build(self, IROSE_IDS)),
        }
    }
}

/// One numbering: name → id and, per direction, id → name.
///
/// Invariant: `ids[t.index()]` is the id of `t`; the reverse tables hold, for
/// every id below [`ID_SPACE`], the type of that direction with that id.
pub struct Dialect {
    id: DialectId,
    ids: &'static [Option<u16>],
    from_client: Box<[Option<PacketType>]>,
    from_server: Box<[Option<PacketType>]>,
}

impl Dialect {
    fn build(id: DialectId, ids: &'static [Option<u16>]) -> Dialect {
        let mut from_client = vec![None; ID_SPACE].into_boxed_slice();
        let mut from_server = vec![None; ID_SPACE].into_boxed_slice();
        for (&t, &wire) in PacketType::ALL.iter().zip(ids) {
            let Some(wire) = wire else { continue };
            let table = match t.direction() {
                Direction::ClientToServer => &mut from_client,
                Direction::ServerToClient => &mut from_server,
                Direction::InterServer => continue,
            };
            if let Some(slot) = table.get_mut(usize::from(wire)) {
                *slot = Some(t);
            }
        }
        Dialect {
            id,
            ids,
            from_client,
            from_server,
        }
    }

    /// Which dialect this is.
    pub fn id(&self) -> DialectId {
        self.id
    }

    /// Its family: which layouts its packets have.
    pub fn family(&self) -> Family {
        self.id.family()
    }

    /// The wire id of `t`, or `None` if the dialect has no such packet.
    pub fn wire_id(&self, t: PacketType) -> Option<u16> {
        self.ids.get(t.index()).copied().flatten()
    }

    /// The packet a client sent with this id (`None`: unknown id).
    pub fn client_packet(&self, wire: u16) -> Option<PacketType> {
        if wire == STRESS_ID {
            return Some(PacketType::STRESS);
        }
        self.from_client.get(usize::from(wire)).copied().flatten()
    }

    /// The packet a server sent with this id (`None`: unknown id).
    pub fn server_packet(&self, wire: u16) -> Option<PacketType> {
        self.from_server.get(usize::from(wire)).copied().flatten()
    }

    /// Looks up an id travelling in `dir`.
    pub fn lookup(&self, dir: Direction, wire: u16) -> Option<PacketType> {
        match dir {
            Direction::ClientToServer => self.client_packet(wire),
            Direction::ServerToClient => self.server_packet(wire),
            Direction::InterServer => PacketType::ALL.iter().copied().find(|&t| {
                t.direction() == Direction::InterServer && self.wire_id(t) == Some(wire)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_protocol_section_2() {
        let client_ids = |d: &Dialect| {
            PacketType::ALL
                .iter()
                .filter(|&&t| t != PacketType::STRESS && t.direction() != Direction::InterServer)
                .filter(|&&t| d.wire_id(t).is_some())
                .count()
        };
        assert_eq!(client_ids(DialectId::Osirose.dialect()), 213);
        assert_eq!(client_ids(DialectId::Osirose2021.dialect()), 211);
    }

    #[test]
    fn ids_round_trip_per_direction() {
        for dialect in DialectId::ALL {
            let d = dialect.dialect();
            for &t in PacketType::ALL {
                let Some(wire) = d.wire_id(t) else { continue };
                assert_eq!(d.lookup(t.direction(), wire), Some(t), "{t} in {dialect:?}");
            }
        }
    }

    #[test]
    fn known_ids() {
        let m = DialectId::Osirose.dialect();
        let o = DialectId::Osirose2021.dialect();
        assert_eq!(m.wire_id(PacketType::PAKCS_ALIVE), Some(0x500));
        assert_eq!(m.wire_id(PacketType::PAKSS_ACCEPT_REPLY), Some(0x5D4));
        assert_eq!(o.wire_id(PacketType::PAKSS_ACCEPT_REPLY), Some(0x5D2));
        assert_eq!(m.wire_id(PacketType::PAKLC_LOGIN_REPLY), Some(0x50B));
        assert_eq!(o.wire_id(PacketType::PAKLC_LOGIN_REPLY), Some(0x50A));
        assert_eq!(o.wire_id(PacketType::PAKCS_LOGIN_TOKEN_REQ), None);
        assert_eq!(
            m.client_packet(0x50A),
            Some(PacketType::PAKCS_LOGIN_TOKEN_REQ)
        );
        assert_eq!(o.client_packet(0x50A), None);
        assert_eq!(m.client_packet(0x547), Some(PacketType::PAKCS_NORMAL_CHAT));
        assert_eq!(m.client_packet(STRESS_ID), Some(PacketType::STRESS));
        assert_eq!(m.client_packet(0x7FF), None);
        assert_eq!(
            m.client_packet(0x301),
            None,
            "ISC ids are never client packets"
        );
        assert_eq!(
            PacketType::from_name("PAKWC_STOP"),
            Some(PacketType::PAKWC_STOP)
        );
    }

    /// The ids of docs/protocol.md §10.4, request and reply sharing one id
    /// where the table says so.
    #[test]
    fn irose_ids_of_section_10_4() {
        use PacketType as T;
        let i = DialectId::Irose.dialect();
        let client = [
            (0x703, T::PAKCS_ACCEPT_REQ),
            (0x708, T::PAKCS_LOGIN_REQ),
            (0x704, T::PAKCS_CHANNEL_LIST_REQ),
            (0x70A, T::PAKCS_SRV_SELECT_REQ),
            (0x70B, T::PAKCS_JOIN_SERVER_REQ),
            (0x712, T::PAKCS_CHAR_LIST_REQ),
            (0x713, T::PAKCS_CREATE_CHAR_REQ),
            (0x714, T::PAKCS_DELETE_CHAR_REQ),
            (0x715, T::PAKCS_SELECT_CHAR_REQ),
            (0x753, T::PAKCS_CHANGE_MAP_REQ),
            (0x783, T::PAKCS_NORMAL_CHAT),
            (0x79A, T::PAKCS_MOUSE_CMD),
            (0x771, T::PAKCS_STOP_MOVING),
            (0x707, T::PAKCS_LOGOUT_REQ),
            (0x71C, T::PAKCS_CHANGE_CHAR_REQ),
            (0x7E0, T::PAKCS_CLAN_COMMAND),
            (0x700, T::PAKCS_ALIVE),
        ];
        let server = [
            (0x7FF, T::PAKSS_ACCEPT_REPLY),
            (0x708, T::PAKLC_LOGIN_REPLY),
            (0x704, T::PAKLC_CHANNEL_LIST_REPLY),
            (0x70A, T::PAKLC_SRV_SELECT_REPLY),
            (0x70C, T::PAKSC_JOIN_SERVER_REPLY),
            (0x712, T::PAKCC_CHAR_LIST_REPLY),
            (0x711, T::PAKCC_SWITCH_SERVER),
            (0x715, T::PAKWC_SELECT_CHAR_REPLY),
            (0x716, T::PAKWC_INVENTORY_DATA),
            (0x71B, T::PAKWC_QUEST_DATA),
            (0x753, T::PAKWC_CHANGE_MAP_REPLY),
            (0x783, T::PAKWC_NORMAL_CHAT),
            (0x784, T::PAKWC_WHISPER_CHAT),
            (0x785, T::PAKWC_SHOUT_CHAT),
            (0x702, T::PAKSW_ANNOUNCE_CHAT),
            (0x79A, T::PAKWC_MOUSE_CMD),
            (0x797, T::PAKWC_MOVE),
            (0x796, T::PAKWC_STOP),
            (0x770, T::PAKWC_SET_POSITION),
            (0x707, T::PAKWC_LOGOUT_REPLY),
            (0x71C, T::PAKCC_CHAN_CHAR_REPLY),
            (0x793, T::PAKWC_PLAYER_CHAR),
            (0x794, T::PAKWC_REMOVE_OBJECT),
        ];
        for (id, t) in client {
            assert_eq!(i.client_packet(id), Some(t), "{id:#x}");
        }
        for (id, t) in server {
            assert_eq!(i.server_packet(id), Some(t), "{id:#x}");
        }
        assert_eq!(i.wire_id(T::PAKWC_BILLING_MESSAGE), None);
        assert_eq!(i.client_packet(0x504), None, "no osIROSE id is irose");
        assert_eq!(i.family(), Family::Irose);
        assert_eq!(DialectId::Osirose2021.family(), Family::Osirose);
        assert_eq!(DialectId::from_name("irose"), Some(DialectId::Irose));
    }
}
