//! The character store: the characters of each account, in slot order, with
//! names unique across all accounts (ignoring case).
//!
//! Accepted creation values (anything else is INVALID_VALUE):
//! - name: 1..=20 bytes of the name character set, not reserved
//!   ([`super::names`], docs/protocol.md §9 D16);
//! - race: 0 or 1;
//! - face and hair: 0..=[`MAX_FACE`] and 0..=[`MAX_HAIR`];
//! - stone: 0..=[`MAX_STONE`];
//! - zone: a u16 map id; 0 means the default map ([`DEFAULT_MAP`] at
//!   [`DEFAULT_POSITION`]). The weapon choice is ignored (as in osIROSE):
//!   every character starts with the [`starting_equipment`].
//!
//! Deletion is immediate (no delayed-delete timer).
//!
//! [`CharacterStore`] is the `memory` engine's; [`Validated`] (the checks
//! and what a new character is made of) serves every engine.

use std::collections::HashMap;

use super::names;
use super::store::CharState;

/// Longest character name, in bytes.
pub const MAX_NAME_LEN: usize = names::MAX_NAME_LEN;
/// Highest accepted face index.
pub const MAX_FACE: u32 = 63;
/// Highest accepted hair index.
pub const MAX_HAIR: u32 = 63;
/// Highest accepted birth-stone index.
pub const MAX_STONE: u32 = 15;
/// Map a new character starts on when the request names zone 0.
pub const DEFAULT_MAP: u16 = 1;
/// Start position (x and y) on the default map.
pub const DEFAULT_POSITION: f32 = 520_000.0;

/// Equipped-item words of a new character, in the slot order of
/// docs/protocol.md §3.6 (helmet, armor, gauntlet, boots, goggles, backpack,
/// weapon R, weapon L): armor id 29 and weapon id 1, as in vector P9 of
/// docs/protocol.md §7.
pub fn starting_equipment() -> [u32; 8] {
    [0, 29, 0, 0, 0, 0, 1, 0]
}

/// Hit points of a new character.
pub const START_HP: u16 = 100;
/// Mana points of a new character.
pub const START_MP: u16 = 50;
/// Each base stat of a new character.
pub const START_STAT: u16 = 15;

/// The base stats a character has (new characters: [`START_STAT`] each).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Strength.
    pub strength: u16,
    /// Dexterity.
    pub dexterity: u16,
    /// Intelligence.
    pub intellect: u16,
    /// Concentration.
    pub concentration: u16,
    /// Charm.
    pub charm: u16,
    /// Sensibility.
    pub sense: u16,
}

impl Stats {
    /// The stats of a new character.
    pub const START: Stats = Stats {
        strength: START_STAT,
        dexterity: START_STAT,
        intellect: START_STAT,
        concentration: START_STAT,
        charm: START_STAT,
        sense: START_STAT,
    };
}

/// One character.
#[derive(Clone, Debug, PartialEq)]
pub struct Character {
    /// Sequential id from 1, never reused.
    pub char_id: u64,
    /// Owning account.
    pub user_id: u32,
    /// Unique (ignoring case) across all accounts.
    pub name: String,
    /// 0 or 1.
    pub race: u8,
    /// Birth stone.
    pub stone: u8,
    /// Face index.
    pub face: u8,
    /// Hair index.
    pub hair: u8,
    /// Level (new characters: 1).
    pub level: u16,
    /// Job (new characters: 0).
    pub job: u16,
    /// Map the character is on.
    pub map: u16,
    /// Position on the map.
    pub x: f32,
    /// Position on the map.
    pub y: f32,
    /// Equipped-item words, see [`starting_equipment`].
    pub items: [u32; 8],
    /// Hit points (saved by the world).
    pub hp: u16,
    /// Mana points (saved by the world).
    pub mp: u16,
    /// Base stats.
    pub stats: Stats,
}

/// A creation request that passed every check: what a new character is
/// made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validated {
    /// The name.
    pub name: String,
    /// 0 or 1.
    pub race: u8,
    /// Birth stone.
    pub stone: u8,
    /// Face index.
    pub face: u8,
    /// Hair index.
    pub hair: u8,
    /// Starting map ([`DEFAULT_MAP`] for zone 0).
    pub map: u16,
}

impl Validated {
    /// Checks a request against the documented ranges (INVALID_VALUE).
    pub fn check(new: &NewCharacter) -> Result<Validated, CreateError> {
        let small = |v: u32, max: u32| u8::try_from(v).ok().filter(|_| v <= max);
        let (Some(race), Some(stone), Some(face), Some(hair), Ok(zone)) = (
            small(new.race, 1),
            small(new.stone, MAX_STONE),
            small(new.face, MAX_FACE),
            small(new.hair, MAX_HAIR),
            u16::try_from(new.zone),
        ) else {
            return Err(CreateError::InvalidValue);
        };
        if !valid_name(&new.name) {
            return Err(CreateError::InvalidValue);
        }
        Ok(Validated {
            name: new.name.clone(),
            race,
            stone,
            face,
            hair,
            map: if zone == 0 { DEFAULT_MAP } else { zone },
        })
    }

    /// The new character with this id and owner: level 1, job 0, at
    /// [`DEFAULT_POSITION`], with the [`starting_equipment`].
    pub fn character(&self, char_id: u64, user_id: u32) -> Character {
        Character {
            char_id,
            user_id,
            name: self.name.clone(),
            race: self.race,
            stone: self.stone,
            face: self.face,
            hair: self.hair,
            level: 1,
            job: 0,
            map: self.map,
            x: DEFAULT_POSITION,
            y: DEFAULT_POSITION,
            items: starting_equipment(),
            hp: START_HP,
            mp: START_MP,
            stats: Stats::START,
        }
    }
}

/// The values of a character creation request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewCharacter {
    /// Requested name.
    pub name: String,
    /// Requested race.
    pub race: u32,
    /// Requested birth stone.
    pub stone: u32,
    /// Requested hair.
    pub hair: u32,
    /// Requested face.
    pub face: u32,
    /// Requested starting map (0 = default).
    pub zone: u32,
}

/// Why a character could not be created.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CreateError {
    /// Another character (of any account) has this name, ignoring case.
    NameTaken,
    /// A value is outside the documented ranges.
    InvalidValue,
    /// The account already has the maximum number of characters.
    TooManyChars,
}

/// The character does not exist or belongs to another account.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NotFound;

/// Whether `name` can be a character name ([`names::check_player_name`]).
pub fn valid_name(name: &str) -> bool {
    names::check_player_name(name) == names::NameCheck::Ok
}

/// Characters by account, in slot order.
///
/// Invariant: `names` maps the lowercased name of every character to its
/// id; `owners` maps every char id to its account, whose list holds it; no
/// list is longer than `max_per_account`.
#[derive(Debug)]
pub struct CharacterStore {
    by_user: HashMap<u32, Vec<Character>>,
    names: HashMap<String, u64>,
    owners: HashMap<u64, u32>,
    next_id: u64,
    max_per_account: usize,
}

impl CharacterStore {
    /// An empty store allowing `max_per_account` characters per account.
    pub fn new(max_per_account: usize) -> CharacterStore {
        CharacterStore {
            by_user: HashMap::new(),
            names: HashMap::new(),
            owners: HashMap::new(),
            next_id: 1,
            max_per_account,
        }
    }

    /// The characters of `user_id` in slot order (empty if none).
    pub fn list(&self, user_id: u32) -> &[Character] {
        self.by_user.get(&user_id).map_or(&[], Vec::as_slice)
    }

    /// A character by id.
    pub fn get(&self, char_id: u64) -> Option<&Character> {
        let owner = self.owners.get(&char_id)?;
        self.list(*owner).iter().find(|c| c.char_id == char_id)
    }

    /// A character by id if it belongs to `user_id`.
    pub fn get_owned(&self, user_id: u32, char_id: u64) -> Result<&Character, NotFound> {
        match self.get(char_id) {
            Some(c) if c.user_id == user_id => Ok(c),
            _ => Err(NotFound),
        }
    }

    /// The character named `name` (ignoring case).
    pub fn find_by_name(&self, name: &str) -> Option<&Character> {
        self.get(*self.names.get(&name.to_lowercase())?)
    }

    /// Creates a character in the next free slot of `user_id`.
    pub fn create(&mut self, user_id: u32, new: &NewCharacter) -> Result<u64, CreateError> {
        let valid = Validated::check(new)?;
        if self.list(user_id).len() >= self.max_per_account {
            return Err(CreateError::TooManyChars);
        }
        let key = new.name.to_lowercase();
        if self.names.contains_key(&key) {
            return Err(CreateError::NameTaken);
        }
        let char_id = self.next_id;
        self.next_id += 1;
        self.names.insert(key, char_id);
        self.owners.insert(char_id, user_id);
        self.by_user
            .entry(user_id)
            .or_default()
            .push(valid.character(char_id, user_id));
        Ok(char_id)
    }

    /// Deletes a character of `user_id` at once; returns its name. Later
    /// characters move up one slot.
    pub fn delete(&mut self, user_id: u32, char_id: u64) -> Result<String, NotFound> {
        self.get_owned(user_id, char_id)?;
        let list = self.by_user.get_mut(&user_id).ok_or(NotFound)?;
        let pos = list
            .iter()
            .position(|c| c.char_id == char_id)
            .ok_or(NotFound)?;
        let removed = list.remove(pos);
        self.names.remove(&removed.name.to_lowercase());
        self.owners.remove(&char_id);
        Ok(removed.name)
    }

    /// Records where a character is (called when it leaves the world).
    pub fn set_position(&mut self, char_id: u64, map: u16, x: f32, y: f32) {
        if let Some(c) = self.get_mut(char_id) {
            c.map = map;
            c.x = x;
            c.y = y;
        }
    }

    /// Records what the world keeps of a character in play.
    pub fn save(&mut self, state: &CharState) {
        self.set_position(state.char_id, state.map, state.x, state.y);
        if let Some(c) = self.get_mut(state.char_id) {
            c.hp = state.hp;
            c.mp = state.mp;
        }
    }

    /// Removes every character of an account (the account was deleted).
    pub fn remove_account(&mut self, user_id: u32) {
        for c in self.by_user.remove(&user_id).unwrap_or_default() {
            self.names.remove(&c.name.to_lowercase());
            self.owners.remove(&c.char_id);
        }
    }

    fn get_mut(&mut self, char_id: u64) -> Option<&mut Character> {
        let owner = self.owners.get(&char_id)?;
        self.by_user
            .get_mut(owner)?
            .iter_mut()
            .find(|c| c.char_id == char_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str) -> NewCharacter {
        NewCharacter {
            name: name.into(),
            race: 0,
            stone: 1,
            hair: 2,
            face: 3,
            zone: 0,
        }
    }

    #[test]
    fn creates_in_slot_order_with_defaults() {
        let mut store = CharacterStore::new(5);
        assert_eq!(store.create(1, &new("Raven")), Ok(1));
        assert_eq!(
            store.create(
                1,
                &NewCharacter {
                    zone: 7,
                    race: 1,
                    ..new("Crow")
                }
            ),
            Ok(2)
        );
        let list = store.list(1);
        assert_eq!(
            list.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["Raven", "Crow"]
        );
        let raven = &list[0];
        assert_eq!((raven.level, raven.job, raven.race), (1, 0, 0));
        assert_eq!(
            (raven.stone, raven.hair, raven.face),
            (1, 2, 3),
            "request values kept"
        );
        assert_eq!(
            (raven.map, raven.x, raven.y),
            (DEFAULT_MAP, 520_000.0, 520_000.0)
        );
        assert_eq!(raven.items, [0, 29, 0, 0, 0, 0, 1, 0]);
        assert_eq!((list[1].map, list[1].race), (7, 1));
        assert!(store.list(2).is_empty());
    }

    #[test]
    fn names_are_unique_across_accounts_ignoring_case() {
        let mut store = CharacterStore::new(5);
        store.create(1, &new("Raven")).unwrap();
        assert_eq!(store.create(2, &new("rAVEN")), Err(CreateError::NameTaken));
        assert_eq!(store.create(1, &new("RAVEN")), Err(CreateError::NameTaken));
        assert_eq!(store.find_by_name("raven").unwrap().user_id, 1);
    }

    #[test]
    fn slot_limit_is_enforced_per_account() {
        let mut store = CharacterStore::new(2);
        store.create(1, &new("a1")).unwrap();
        store.create(1, &new("a2")).unwrap();
        assert_eq!(store.create(1, &new("a3")), Err(CreateError::TooManyChars));
        assert!(store.create(2, &new("b1")).is_ok());
    }

    #[test]
    fn invalid_values_are_refused() {
        let mut store = CharacterStore::new(5);
        let bad = [
            NewCharacter {
                race: 2,
                ..new("x")
            },
            NewCharacter {
                stone: MAX_STONE + 1,
                ..new("x")
            },
            NewCharacter {
                face: MAX_FACE + 1,
                ..new("x")
            },
            NewCharacter {
                hair: 256,
                ..new("x")
            },
            NewCharacter {
                zone: 70_000,
                ..new("x")
            },
            new(""),
            new(&"n".repeat(21)),
            new("two words"),
            new("tab\tname"),
            new("nul\0"),
        ];
        for req in bad {
            assert_eq!(
                store.create(1, &req),
                Err(CreateError::InvalidValue),
                "{req:?}"
            );
        }
        assert!(store.create(1, &new(&"n".repeat(20))).is_ok());
        assert!(store
            .create(
                1,
                &NewCharacter {
                    face: MAX_FACE,
                    hair: MAX_HAIR,
                    stone: MAX_STONE,
                    ..new("edge")
                }
            )
            .is_ok());
    }

    #[test]
    fn delete_frees_the_name_and_slot() {
        let mut store = CharacterStore::new(2);
        let a = store.create(1, &new("a")).unwrap();
        let b = store.create(1, &new("b")).unwrap();
        assert_eq!(store.delete(2, a), Err(NotFound));
        assert_eq!(store.delete(1, 99), Err(NotFound));
        assert_eq!(store.delete(1, a), Ok("a".into()));
        assert_eq!(store.delete(1, a), Err(NotFound));
        assert_eq!(store.list(1)[0].char_id, b);
        assert!(store.get(a).is_none());
        let again = store.create(2, &new("A")).unwrap();
        assert_ne!(again, a, "ids are not reused");
    }

    #[test]
    fn ownership_and_positions() {
        let mut store = CharacterStore::new(5);
        let id = store.create(1, &new("a")).unwrap();
        assert!(store.get_owned(1, id).is_ok());
        assert_eq!(store.get_owned(2, id), Err(NotFound));
        store.set_position(id, 2, 10.0, 20.0);
        let c = store.get(id).unwrap();
        assert_eq!((c.map, c.x, c.y), (2, 10.0, 20.0));
    }
}
