//! Accounts in SQL: login (with auto-create), seeding and the operator
//! commands. Passwords are argon2id hashes ([`Credentials`]); the hashing
//! happens before a transaction starts, never while it holds a lock.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{get, is_unique_violation, unix_secs, SqlStore};
use crate::backend::accounts::{
    valid_username, AccountError, LoginCheck, PasswordDigest, SeedPassword, DEFAULT_ACCESS,
};
use crate::backend::store::credentials::Credentials;
use crate::backend::store::{AccountInfo, Seed, StoreError, ID_BATCH};
use crate::protocol::packets::DigestKind;

/// An account row as a login needs it.
struct Stored {
    user_id: u32,
    access: u32,
    sha256: Option<String>,
    md5: Option<String>,
}

impl Stored {
    fn of(row: &AnyRow) -> Result<Stored, StoreError> {
        Ok(Stored {
            user_id: get(row, "id")?,
            access: get(row, "access")?,
            sha256: row.try_get("sha256_hash")?,
            md5: row.try_get("md5_hash")?,
        })
    }

    /// Whether `digest` matches the stored hash of its kind.
    async fn verifies(
        &self,
        credentials: &Credentials,
        digest: &PasswordDigest,
    ) -> Result<bool, StoreError> {
        let stored = match digest.kind() {
            DigestKind::Sha256Hex => &self.sha256,
            DigestKind::Md5Hex => &self.md5,
        };
        match stored {
            Some(phc) => credentials.verify(phc, digest).await,
            None => Ok(false),
        }
    }
}

const SELECT: &str = "SELECT id, access, sha256_hash, md5_hash FROM accounts";

impl SqlStore {
    async fn find(&self, username: &str) -> Result<Option<Stored>, StoreError> {
        let row = sqlx::query(&format!("{SELECT} WHERE name_key = $1"))
            .bind(username.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Stored::of).transpose()
    }

    /// The login check of the SQL engines (same answers as the memory one).
    pub(super) async fn check_login(
        &self,
        username: &str,
        digest: &PasswordDigest,
        auto_create: bool,
    ) -> Result<LoginCheck, StoreError> {
        let account = match self.find(username).await? {
            Some(account) => account,
            None if auto_create && valid_username(username) => {
                let password = SeedPassword::Digest(digest.clone());
                match self.insert_new(username, &password, DEFAULT_ACCESS).await? {
                    Ok(user_id) => {
                        return Ok(LoginCheck::Ok {
                            user_id,
                            access: DEFAULT_ACCESS,
                            created: true,
                        })
                    }
                    // Created meanwhile by another login: check against it.
                    Err(_) => match self.find(username).await? {
                        Some(account) => account,
                        None => return Ok(LoginCheck::UnknownAccount),
                    },
                }
            }
            None => return Ok(LoginCheck::UnknownAccount),
        };
        let matches = account.verifies(&self.credentials, digest).await?;
        Ok(LoginCheck::of_existing(
            matches,
            account.user_id,
            account.access,
        ))
    }

    /// Whether `digest` is account `user_id`'s password.
    pub(super) async fn verify_user(
        &self,
        user_id: u32,
        digest: &PasswordDigest,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(&format!("{SELECT} WHERE id = $1"))
            .bind(i64::from(user_id))
            .fetch_optional(&self.pool)
            .await?;
        match row.as_ref().map(Stored::of).transpose()? {
            Some(account) => account.verifies(&self.credentials, digest).await,
            None => Ok(false),
        }
    }

    /// Creates an account; a valid name not taken yet.
    pub(super) async fn insert_account(
        &self,
        username: &str,
        password: &SeedPassword,
        access: u32,
    ) -> Result<Result<u32, AccountError>, StoreError> {
        if !valid_username(username) {
            return Ok(Err(AccountError::InvalidName));
        }
        // Checked first so that a duplicate costs no hash (and, on
        // PostgreSQL, no id from the sequence); the index still decides a race.
        if self.find(username).await?.is_some() {
            return Ok(Err(AccountError::Duplicate));
        }
        self.insert_new(username, password, access).await
    }

    /// Inserts an account the caller found missing (a login that creates
    /// it has just looked); the unique name decides a race.
    async fn insert_new(
        &self,
        username: &str,
        password: &SeedPassword,
        access: u32,
    ) -> Result<Result<u32, AccountError>, StoreError> {
        let (sha256, md5) = self.credentials.hash_pair(&password.digests()).await?;
        let now = unix_secs();
        let row = sqlx::query(
            "INSERT INTO accounts (username, name_key, access, sha256_hash, md5_hash, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (name_key) DO NOTHING RETURNING id",
        )
        .bind(username)
        .bind(username.to_lowercase())
        .bind(i64::from(access))
        .bind(sha256)
        .bind(md5)
        .bind(now)
        .fetch_optional(&self.pool)
        .await;
        match row {
            Ok(Some(row)) => Ok(Ok(get(&row, "id")?)),
            Ok(None) => Ok(Err(AccountError::Duplicate)),
            Err(e) if is_unique_violation(&e) => Ok(Err(AccountError::Duplicate)),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a seed account, or sets the password (and the access, when
    /// the seed names one) of the existing one.
    pub(super) async fn upsert(&self, seed: &Seed) -> Result<(), StoreError> {
        if self.update_password(&seed.username, &seed.password).await? {
            if let Some(access) = seed.access {
                self.set_access_of(&seed.username, access).await?;
            }
            return Ok(());
        }
        let access = seed.access.unwrap_or(DEFAULT_ACCESS);
        match self
            .insert_account(&seed.username, &seed.password, access)
            .await?
        {
            Ok(_) => Ok(()),
            // Created meanwhile (another backend seeding the same list).
            Err(AccountError::Duplicate) => {
                self.update_password(&seed.username, &seed.password).await?;
                Ok(())
            }
            Err(e) => Err(StoreError::Invalid(format!(
                "seed account {:?}: {e}",
                seed.username
            ))),
        }
    }

    /// Replaces the password hashes; false when there is no such account.
    pub(super) async fn update_password(
        &self,
        username: &str,
        password: &SeedPassword,
    ) -> Result<bool, StoreError> {
        if self.find(username).await?.is_none() {
            return Ok(false);
        }
        let (sha256, md5) = self.credentials.hash_pair(&password.digests()).await?;
        let done = sqlx::query(
            "UPDATE accounts SET sha256_hash = $1, md5_hash = $2, updated_at = $3 \
             WHERE name_key = $4",
        )
        .bind(sha256)
        .bind(md5)
        .bind(unix_secs())
        .bind(username.to_lowercase())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets the access level; false when there is no such account.
    pub(super) async fn set_access_of(
        &self,
        username: &str,
        access: u32,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE accounts SET access = $1, updated_at = $2 WHERE name_key = $3")
                .bind(i64::from(access))
                .bind(unix_secs())
                .bind(username.to_lowercase())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One account with its number of characters, by the `name_key` index.
    pub(super) async fn find_info(
        &self,
        username: &str,
    ) -> Result<Option<AccountInfo>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.username, a.access, \
             (SELECT COUNT(*) FROM characters c WHERE c.account_id = a.id) AS characters \
             FROM accounts a WHERE a.name_key = $1",
        )
        .bind(username.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(info_of).transpose()
    }

    /// `(id, name)` of the accounts among `user_ids`, by id: one query by
    /// primary key per [`ID_BATCH`] ids (the `Any` driver binds no arrays,
    /// so each batch is an `IN` list of placeholders).
    pub(super) async fn names_of(
        &self,
        user_ids: &[u32],
    ) -> Result<Vec<(u32, String)>, StoreError> {
        let mut ids = user_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut names = Vec::with_capacity(ids.len());
        for batch in ids.chunks(ID_BATCH) {
            let placeholders: Vec<String> = (1..=batch.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id, username FROM accounts WHERE id IN ({}) ORDER BY id",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for &id in batch {
                query = query.bind(i64::from(id));
            }
            for row in query.fetch_all(&self.pool).await? {
                names.push((get(&row, "id")?, row.try_get("username")?));
            }
        }
        Ok(names)
    }

    /// Every account with its number of characters, by user id.
    pub(super) async fn list_accounts(&self) -> Result<Vec<AccountInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.id, a.username, a.access, COUNT(c.id) AS characters \
             FROM accounts a LEFT JOIN characters c ON c.account_id = a.id \
             GROUP BY a.id, a.username, a.access ORDER BY a.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(info_of).collect()
    }
}

/// An account row with its `characters` count.
fn info_of(row: &AnyRow) -> Result<AccountInfo, StoreError> {
    Ok(AccountInfo {
        user_id: get(row, "id")?,
        username: row.try_get("username")?,
        access: get(row, "access")?,
        characters: get(row, "characters")?,
    })
}
