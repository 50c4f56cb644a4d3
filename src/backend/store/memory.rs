//! The `memory` engine: the plain stores of [`accounts`](super::super::accounts),
//! [`characters`](super::super::characters) and
//! [`sessions`](super::super::sessions), each behind its own
//! `std::sync::Mutex`. No lock is held across an `.await` (no method awaits)
//! and none takes two locks, so there is no lock order to get wrong.
//! Nothing survives the process.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{AccountInfo, CharState, Engine, Seed, SessionView, Sessions, Store, StoreError};
use crate::backend::accounts::{
    AccountError, AccountStore, LoginCheck, PasswordDigest, SeedPassword, DEFAULT_ACCESS,
};
use crate::backend::characters::{Character, CharacterStore, CreateError, NewCharacter, NotFound};
use crate::backend::sessions::{JoinError, JoinInfo, SessionError, SessionStore};

/// Locks a store. A panic while a store was locked leaves it consistent
/// enough for a reference backend (every mutation is a few field writes), so
/// poisoning is ignored rather than turned into a panic of every later call.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accounts and characters in memory.
pub struct MemoryStore {
    accounts: Mutex<AccountStore>,
    characters: Mutex<CharacterStore>,
}

impl MemoryStore {
    /// An empty store allowing `max_chars_per_account` characters per account.
    pub fn new(max_chars_per_account: usize) -> MemoryStore {
        MemoryStore {
            accounts: Mutex::new(AccountStore::new()),
            characters: Mutex::new(CharacterStore::new(max_chars_per_account)),
        }
    }
}

#[tonic::async_trait]
impl Store for MemoryStore {
    fn engine(&self) -> Engine {
        Engine::Memory
    }

    async fn account_count(&self) -> Result<u64, StoreError> {
        Ok(lock(&self.accounts).len() as u64)
    }

    async fn login(
        &self,
        username: &str,
        digest: &PasswordDigest,
        auto_create: bool,
    ) -> Result<LoginCheck, StoreError> {
        Ok(lock(&self.accounts).login(username, digest, auto_create))
    }

    async fn verify(&self, user_id: u32, digest: &PasswordDigest) -> Result<bool, StoreError> {
        Ok(lock(&self.accounts).verify(user_id, digest))
    }

    async fn seed(&self, seeds: &[Seed]) -> Result<(), StoreError> {
        let mut accounts = lock(&self.accounts);
        for seed in seeds {
            let access = seed.access.unwrap_or(DEFAULT_ACCESS);
            if accounts.set_password(&seed.username, &seed.password) {
                if let Some(access) = seed.access {
                    accounts.set_access(&seed.username, access);
                }
            } else if let Err(e) = accounts.add(&seed.username, &seed.password, access) {
                return Err(StoreError::Invalid(format!(
                    "seed account {:?}: {e}",
                    seed.username
                )));
            }
        }
        Ok(())
    }

    async fn add_account(
        &self,
        username: &str,
        password: &SeedPassword,
        access: u32,
    ) -> Result<Result<u32, AccountError>, StoreError> {
        Ok(lock(&self.accounts).add(username, password, access))
    }

    async fn accounts(&self) -> Result<Vec<AccountInfo>, StoreError> {
        let list = lock(&self.accounts).list();
        let characters = lock(&self.characters);
        Ok(list
            .into_iter()
            .map(|(user_id, username, access)| AccountInfo {
                characters: characters.list(user_id).len() as u32,
                user_id,
                username,
                access,
            })
            .collect())
    }

    async fn account_by_name(&self, username: &str) -> Result<Option<AccountInfo>, StoreError> {
        let Some((user_id, username, access)) = lock(&self.accounts)
            .get(username)
            .map(|a| (a.user_id, a.username.clone(), a.access))
        else {
            return Ok(None);
        };
        Ok(Some(AccountInfo {
            characters: lock(&self.characters).list(user_id).len() as u32,
            user_id,
            username,
            access,
        }))
    }

    async fn account_names(&self, user_ids: &[u32]) -> Result<Vec<(u32, String)>, StoreError> {
        let accounts = lock(&self.accounts);
        let mut names: Vec<(u32, String)> = user_ids
            .iter()
            .filter_map(|&id| accounts.by_id(id).map(|a| (id, a.username.clone())))
            .collect();
        names.sort_unstable_by_key(|n| n.0);
        names.dedup_by_key(|n| n.0);
        Ok(names)
    }

    async fn set_password(
        &self,
        username: &str,
        password: &SeedPassword,
    ) -> Result<bool, StoreError> {
        Ok(lock(&self.accounts).set_password(username, password))
    }

    async fn set_access(&self, username: &str, access: u32) -> Result<bool, StoreError> {
        Ok(lock(&self.accounts).set_access(username, access))
    }

    async fn delete_account(&self, username: &str) -> Result<bool, StoreError> {
        let Some(user_id) = lock(&self.accounts).remove(username) else {
            return Ok(false);
        };
        lock(&self.characters).remove_account(user_id);
        Ok(true)
    }

    async fn characters(&self, user_id: u32) -> Result<Vec<Character>, StoreError> {
        Ok(lock(&self.characters).list(user_id).to_vec())
    }

    async fn character(
        &self,
        user_id: u32,
        char_id: u64,
    ) -> Result<Result<Character, NotFound>, StoreError> {
        Ok(lock(&self.characters).get_owned(user_id, char_id).cloned())
    }

    async fn create_character(
        &self,
        user_id: u32,
        new: &NewCharacter,
    ) -> Result<Result<u64, CreateError>, StoreError> {
        Ok(lock(&self.characters).create(user_id, new))
    }

    async fn delete_character(
        &self,
        user_id: u32,
        char_id: u64,
    ) -> Result<Result<String, NotFound>, StoreError> {
        Ok(lock(&self.characters).delete(user_id, char_id))
    }

    async fn save_characters(&self, states: &[CharState]) -> Result<(), StoreError> {
        let mut characters = lock(&self.characters);
        for state in states {
            characters.save(state);
        }
        Ok(())
    }
}

/// Sessions in this process's memory (the `memory` and `sqlite` engines).
pub struct MemorySessions {
    inner: Mutex<SessionStore>,
}

impl MemorySessions {
    /// No sessions yet; each lives `ttl` after login or refresh.
    pub fn new(ttl: Duration) -> MemorySessions {
        MemorySessions {
            inner: Mutex::new(SessionStore::new(ttl)),
        }
    }
}

#[tonic::async_trait]
impl Sessions for MemorySessions {
    async fn create(
        &self,
        user_id: u32,
        access: u32,
        digest: &PasswordDigest,
    ) -> Result<u32, StoreError> {
        Ok(lock(&self.inner).create(
            user_id,
            access,
            digest.clone(),
            Instant::now(),
            &mut rand::rng(),
        ))
    }

    async fn get(&self, id: u32) -> Result<Result<SessionView, SessionError>, StoreError> {
        Ok(lock(&self.inner)
            .get(id, Instant::now())
            .map(|s| SessionView {
                user_id: s.user_id,
                access: s.access,
                stage: s.stage,
                char_id: s.char_id,
            }))
    }

    async fn select_server(&self, id: u32) -> Result<Result<(), SessionError>, StoreError> {
        Ok(lock(&self.inner).select_server(id, Instant::now()))
    }

    async fn join(
        &self,
        id: u32,
        digest: &PasswordDigest,
    ) -> Result<Result<JoinInfo, JoinError>, StoreError> {
        Ok(lock(&self.inner).join(id, digest, Instant::now()))
    }

    async fn refresh(&self, id: u32) -> Result<bool, StoreError> {
        Ok(lock(&self.inner).refresh(id, Instant::now()))
    }

    async fn select_char(
        &self,
        id: u32,
        user_id: u32,
        char_id: u64,
    ) -> Result<Result<(), SessionError>, StoreError> {
        Ok(lock(&self.inner).select_char(id, user_id, char_id, Instant::now()))
    }

    async fn back_to_char_select(&self, id: u32) -> Result<Result<(), SessionError>, StoreError> {
        Ok(lock(&self.inner).back_to_char_select(id, Instant::now()))
    }

    async fn remove(&self, id: u32) -> Result<Option<u32>, StoreError> {
        Ok(lock(&self.inner).remove(id).map(|s| s.user_id))
    }

    async fn remove_account(&self, user_id: u32) -> Result<Option<u32>, StoreError> {
        Ok(lock(&self.inner).remove_account(user_id))
    }

    async fn purge_expired(&self, grace: Duration) -> Result<usize, StoreError> {
        Ok(lock(&self.inner).purge_expired(Instant::now(), grace))
    }
}
