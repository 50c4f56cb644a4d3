//! Characters in SQL: the list, creation (character row and its starting
//! equipment in the inventory, one transaction), deletion (with the slots
//! after it moving up, one transaction) and the world's saves.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{get, is_unique_violation, unix_secs, SqlStore};
use crate::backend::characters::{
    Character, CreateError, NewCharacter, NotFound, Stats, Validated,
};
use crate::backend::store::{CharState, StoreError};

/// Inventory slots below this are the equipped items (`Character::items`).
const EQUIPPED_SLOTS: i64 = 8;

const COLUMNS: &str = "id, account_id, name, race, stone, face, hair, level, job, map, x, y, \
                       hp, mp, strength, dexterity, intellect, concentration, charm, sense";

/// A character row, its equipment still empty.
fn character_of(row: &AnyRow) -> Result<Character, StoreError> {
    let x: f64 = row.try_get("x")?;
    let y: f64 = row.try_get("y")?;
    Ok(Character {
        char_id: get(row, "id")?,
        user_id: get(row, "account_id")?,
        name: row.try_get("name")?,
        race: get(row, "race")?,
        stone: get(row, "stone")?,
        face: get(row, "face")?,
        hair: get(row, "hair")?,
        level: get(row, "level")?,
        job: get(row, "job")?,
        map: get(row, "map")?,
        x: x as f32,
        y: y as f32,
        items: [0; 8],
        hp: get(row, "hp")?,
        mp: get(row, "mp")?,
        stats: Stats {
            strength: get(row, "strength")?,
            dexterity: get(row, "dexterity")?,
            intellect: get(row, "intellect")?,
            concentration: get(row, "concentration")?,
            charm: get(row, "charm")?,
            sense: get(row, "sense")?,
        },
    })
}

/// Fills the equipment of `characters` from inventory rows
/// (`character_id`, `slot`, `item`).
fn equip(characters: &mut [Character], rows: &[AnyRow]) -> Result<(), StoreError> {
    let index: HashMap<u64, usize> = characters
        .iter()
        .enumerate()
        .map(|(i, c)| (c.char_id, i))
        .collect();
    for row in rows {
        let char_id: u64 = get(row, "character_id")?;
        let slot: usize = get(row, "slot")?;
        let item: u32 = get(row, "item")?;
        if let (Some(&i), true) = (index.get(&char_id), slot < 8) {
            characters[i].items[slot] = item;
        }
    }
    Ok(())
}

impl SqlStore {
    /// The characters of `user_id` in slot order, with their equipment.
    pub(super) async fn list_characters(&self, user_id: u32) -> Result<Vec<Character>, StoreError> {
        let user = i64::from(user_id);
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM characters WHERE account_id = $1 ORDER BY slot"
        ))
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        let mut characters = rows
            .iter()
            .map(character_of)
            .collect::<Result<Vec<_>, _>>()?;
        if characters.is_empty() {
            return Ok(characters);
        }
        let items = sqlx::query(
            "SELECT i.character_id, i.slot, i.item FROM inventory i \
             JOIN characters c ON c.id = i.character_id \
             WHERE c.account_id = $1 AND i.slot < $2",
        )
        .bind(user)
        .bind(EQUIPPED_SLOTS)
        .fetch_all(&self.pool)
        .await?;
        equip(&mut characters, &items)?;
        Ok(characters)
    }

    /// A character of `user_id` with its equipment.
    pub(super) async fn owned_character(
        &self,
        user_id: u32,
        char_id: u64,
    ) -> Result<Result<Character, NotFound>, StoreError> {
        let Ok(id) = i64::try_from(char_id) else {
            return Ok(Err(NotFound));
        };
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM characters WHERE id = $1 AND account_id = $2"
        ))
        .bind(id)
        .bind(i64::from(user_id))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Err(NotFound));
        };
        let mut character = [character_of(&row)?];
        let items = sqlx::query(
            "SELECT character_id, slot, item FROM inventory WHERE character_id = $1 AND slot < $2",
        )
        .bind(id)
        .bind(EQUIPPED_SLOTS)
        .fetch_all(&self.pool)
        .await?;
        equip(&mut character, &items)?;
        let [character] = character;
        Ok(Ok(character))
    }

    /// Creates a character in the next slot of `user_id`: its row and its
    /// starting equipment, in one transaction.
    pub(super) async fn insert_character(
        &self,
        user_id: u32,
        new: &NewCharacter,
    ) -> Result<Result<u64, CreateError>, StoreError> {
        let valid = match Validated::check(new) {
            Ok(valid) => valid,
            Err(e) => return Ok(Err(e)),
        };
        let mut tx = self.begin_write().await?;
        self.lock_account(&mut tx, user_id).await?;
        let count = sqlx::query("SELECT COUNT(*) AS n FROM characters WHERE account_id = $1")
            .bind(i64::from(user_id))
            .fetch_one(&mut *tx)
            .await?;
        let slots: usize = get(&count, "n")?;
        if slots >= self.max_chars {
            return Ok(Err(CreateError::TooManyChars));
        }
        let Some(char_id) = insert_row(&mut tx, user_id, slots, &valid).await? else {
            return Ok(Err(CreateError::NameTaken));
        };
        let c = valid.character(char_id, user_id);
        for (slot, item) in c.items.iter().enumerate().filter(|(_, &item)| item != 0) {
            sqlx::query(
                "INSERT INTO inventory (character_id, slot, item, amount) VALUES ($1, $2, $3, 1)",
            )
            .bind(i64::try_from(char_id).map_err(|_| StoreError::Invalid("id".into()))?)
            .bind(slot as i64)
            .bind(i64::from(*item))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(char_id))
    }

    /// Deletes a character of `user_id` (its inventory goes with it) and
    /// moves the later ones up one slot, in one transaction.
    pub(super) async fn remove_character(
        &self,
        user_id: u32,
        char_id: u64,
    ) -> Result<Result<String, NotFound>, StoreError> {
        let Ok(id) = i64::try_from(char_id) else {
            return Ok(Err(NotFound));
        };
        let user = i64::from(user_id);
        let mut tx = self.begin_write().await?;
        self.lock_account(&mut tx, user_id).await?;
        let row = sqlx::query(
            "DELETE FROM characters WHERE id = $1 AND account_id = $2 RETURNING name, slot",
        )
        .bind(id)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Err(NotFound));
        };
        let name: String = row.try_get("name")?;
        let slot: i64 = row.try_get("slot")?;
        sqlx::query("UPDATE characters SET slot = slot - 1 WHERE account_id = $1 AND slot > $2")
            .bind(user)
            .bind(slot)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(name))
    }

    /// Saves the world's state of each character, in one transaction.
    pub(super) async fn save_states(&self, states: &[CharState]) -> Result<(), StoreError> {
        if states.is_empty() {
            return Ok(());
        }
        let now = unix_secs();
        let mut tx = self.begin_write().await?;
        for s in states {
            let Ok(id) = i64::try_from(s.char_id) else {
                continue;
            };
            sqlx::query(
                "UPDATE characters SET map = $1, x = $2, y = $3, hp = $4, mp = $5, saved_at = $6 \
                 WHERE id = $7",
            )
            .bind(i64::from(s.map))
            .bind(f64::from(s.x))
            .bind(f64::from(s.y))
            .bind(i64::from(s.hp))
            .bind(i64::from(s.mp))
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Inserts the character row; its id, or `None` when the name is taken.
async fn insert_row(
    tx: &mut Transaction<'static, Any>,
    user_id: u32,
    slot: usize,
    v: &Validated,
) -> Result<Option<u64>, StoreError> {
    let c = v.character(0, user_id);
    let now = unix_secs();
    let row = sqlx::query(
        "INSERT INTO characters (account_id, slot, name, name_key, race, stone, face, hair, \
         level, job, map, x, y, hp, mp, strength, dexterity, intellect, concentration, charm, \
         sense, delete_at, created_at, saved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, NULL, $22, $22) \
         ON CONFLICT (name_key) DO NOTHING RETURNING id",
    )
    .bind(i64::from(user_id))
    .bind(slot as i64)
    .bind(c.name.as_str())
    .bind(c.name.to_lowercase())
    .bind(i64::from(c.race))
    .bind(i64::from(c.stone))
    .bind(i64::from(c.face))
    .bind(i64::from(c.hair))
    .bind(i64::from(c.level))
    .bind(i64::from(c.job))
    .bind(i64::from(c.map))
    .bind(f64::from(c.x))
    .bind(f64::from(c.y))
    .bind(i64::from(c.hp))
    .bind(i64::from(c.mp))
    .bind(i64::from(c.stats.strength))
    .bind(i64::from(c.stats.dexterity))
    .bind(i64::from(c.stats.intellect))
    .bind(i64::from(c.stats.concentration))
    .bind(i64::from(c.stats.charm))
    .bind(i64::from(c.stats.sense))
    .bind(now)
    .fetch_optional(&mut **tx)
    .await;
    match row {
        Ok(Some(row)) => Ok(Some(get(&row, "id")?)),
        Ok(None) => Ok(None),
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
