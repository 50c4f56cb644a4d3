//! How the SQL engines keep passwords: each client digest (SHA-256 hex and
//! MD5 hex, docs/protocol.md §9 D4) is stored only as an argon2id hash with a
//! random 16-byte salt, in the PHC string form
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), so the parameters travel with
//! each hash and raising them later leaves old hashes verifiable.
//!
//! **Cost.** [`M_COST_KIB`] = 4 MiB, [`T_COST`] = 1 pass, one lane: about
//! 2 ms per hash on the reference machine (2 shared cores; 2.6 ms with
//! 6 MiB, 24–47 ms with OWASP's 19 MiB and 2 passes, which would cap a
//! 2-core backend at a few dozen logins per second). Every login costs one
//! hash or one verification, so this cost *is* the login rate of the SQL
//! engines: with 4 MiB a new-account login takes ~2.7 ms of CPU in all
//! against 0.4 ms for the memory engine. The input is already a digest of
//! the password, so what this protects is a stolen database: every guess
//! costs an attacker a 4 MiB argon2id evaluation instead of one SHA-256.
//! Joins are checked against the digest the session already holds (the
//! memory sessions keep it; [`super::sql::PgSessions`] caches it per
//! session), so they cost no hash.
//!
//! **Threads.** Hashing runs on tokio's blocking pool
//! (`spawn_blocking`), never on the runtime's workers, and at most
//! [`Credentials::permits`] at once (one per CPU): more would only queue
//! in the kernel and multiply the memory in use. Waiting for a permit is
//! async. The comparison inside argon2 is constant-time.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use tokio::sync::Semaphore;

use super::StoreError;
use crate::backend::accounts::PasswordDigest;

/// Memory of one hash, in KiB.
pub const M_COST_KIB: u32 = 4 * 1024;
/// Passes over that memory.
pub const T_COST: u32 = 1;
/// Lanes.
pub const P_COST: u32 = 1;
/// Salt length in bytes.
const SALT_LEN: usize = 16;

/// The hasher, shared by every call of one store.
pub struct Credentials {
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials::new()
    }
}

impl Credentials {
    /// One permit per available CPU.
    pub fn new() -> Credentials {
        let capacity = std::thread::available_parallelism().map_or(1, usize::from);
        Credentials {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// How many hashes may run at once.
    pub fn permits(&self) -> usize {
        self.capacity
    }

    /// The PHC string of a fresh salted hash of `digest`.
    pub async fn hash(&self, digest: &PasswordDigest) -> Result<String, StoreError> {
        let input = digest.hex().to_vec();
        let mut salt = [0u8; SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        self.blocking(move || {
            let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
            hasher()?
                .hash_password(&input, &salt)
                .map(|h| h.to_string())
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// Whether `digest` is the one `phc` was made from.
    pub async fn verify(&self, phc: &str, digest: &PasswordDigest) -> Result<bool, StoreError> {
        let input = digest.hex().to_vec();
        let phc = phc.to_owned();
        self.blocking(move || {
            let parsed = PasswordHash::new(&phc).map_err(|e| e.to_string())?;
            match Argon2::default().verify_password(&input, &parsed) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::Password) => Ok(false),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
    }

    /// The PHC strings for an account's (SHA-256, MD5) digests.
    pub async fn hash_pair(
        &self,
        digests: &(Option<PasswordDigest>, Option<PasswordDigest>),
    ) -> Result<(Option<String>, Option<String>), StoreError> {
        let sha256 = match &digests.0 {
            Some(d) => Some(self.hash(d).await?),
            None => None,
        };
        let md5 = match &digests.1 {
            Some(d) => Some(self.hash(d).await?),
            None => None,
        };
        Ok((sha256, md5))
    }

    /// Runs `work` on the blocking pool under a permit.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| StoreError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| StoreError::Hash(e.to_string()))?
            .map_err(StoreError::Hash)
    }
}

/// argon2id with this module's cost.
fn hasher() -> Result<Argon2<'static>, String> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|e| e.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::packets::DigestKind;

    #[tokio::test]
    async fn hashes_are_salted_and_verify_only_their_digest() {
        let c = Credentials::new();
        let admin = PasswordDigest::of_plaintext(DigestKind::Sha256Hex, "admin");
        let a = c.hash(&admin).await.unwrap();
        let b = c.hash(&admin).await.unwrap();
        assert_ne!(a, b, "a fresh salt each time");
        assert!(a.starts_with("$argon2id$v=19$m=4096,t=1,p=1$"), "{a}");
        assert!(!a.contains(std::str::from_utf8(admin.hex()).unwrap()));
        assert!(c.verify(&a, &admin).await.unwrap());
        let other = PasswordDigest::of_plaintext(DigestKind::Sha256Hex, "x");
        assert!(!c.verify(&a, &other).await.unwrap());
        assert!(c.verify("not a hash", &admin).await.is_err());
    }
}
