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
//! **Threads.** Hashing runs on dedicated threads, one per CPU, never on
//! the runtime's workers, at most [`Credentials::permits`] at once: more
//! would only queue in the kernel and multiply the memory in use. Waiting
//! for a permit is async. Each thread keeps its 4 MiB of argon2 blocks from
//! one hash to the next: a profile of a reconnect storm on SQLite (perf,
//! docs/architecture.md) found a sixth of the hashing cost in allocating,
//! zeroing, page-faulting and freeing that memory per hash on tokio's
//! blocking pool. The parameters, salt and output are unchanged; the
//! comparison of outputs is constant-time.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use tokio::sync::{oneshot, Semaphore};

use super::StoreError;
use crate::backend::accounts::PasswordDigest;
use crate::backend::store::memory::lock;

/// Memory of one hash, in KiB.
pub const M_COST_KIB: u32 = 4 * 1024;
/// Passes over that memory.
pub const T_COST: u32 = 1;
/// Lanes.
pub const P_COST: u32 = 1;
/// Salt length in bytes.
const SALT_LEN: usize = 16;
/// The most memory a stored hash may ask for (64 MiB in 1 KiB blocks): a
/// hash with a larger `m` is refused rather than allocated.
const MAX_BLOCKS: usize = 64 * 1024;

/// Work for a hashing thread, given the thread's own block memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The hasher, shared by every call of one store.
pub struct Credentials {
    permits: Arc<Semaphore>,
    capacity: usize,
    /// To the hashing threads; they end when it is dropped.
    jobs: Mutex<Sender<Job>>,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials::new()
    }
}

impl Credentials {
    /// One hashing thread (and permit) per available CPU.
    pub fn new() -> Credentials {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut capacity = 0;
        for i in 0..cpus {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hash-{i}"))
                .spawn(move || hash_thread(&rx));
            match spawned {
                Ok(_) => capacity += 1,
                Err(e) => tracing::warn!("hashing thread {i} not started: {e}"),
            }
        }
        Credentials {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            jobs: Mutex::new(tx),
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
        self.on_pool(move |memory| {
            let params =
                Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|e| e.to_string())?;
            let salt_b64 = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
            let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
            let (algorithm, version) = (Algorithm::Argon2id, Version::V0x13);
            compute(algorithm, version, &params, &input, &salt, &mut out, memory)?;
            let phc = PasswordHash {
                algorithm: algorithm.ident(),
                version: Some(version.into()),
                params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
                salt: Some(salt_b64.as_salt()),
                hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
            };
            Ok(phc.to_string())
        })
        .await
    }

    /// Whether `digest` is the one `phc` was made from (with the
    /// parameters written in `phc`).
    pub async fn verify(&self, phc: &str, digest: &PasswordDigest) -> Result<bool, StoreError> {
        let input = digest.hex().to_vec();
        let phc = phc.to_owned();
        self.on_pool(move |memory| {
            let parsed = PasswordHash::new(&phc).map_err(|e| e.to_string())?;
            let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| e.to_string())?;
            let version = match parsed.version {
                Some(v) => Version::try_from(v).map_err(|e| e.to_string())?,
                None => Version::default(),
            };
            let params = Params::try_from(&parsed).map_err(|e| e.to_string())?;
            let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
                return Err("hash without salt or output".into());
            };
            let mut salt_buf = [0u8; 64];
            let salt = salt.decode_b64(&mut salt_buf).map_err(|e| e.to_string())?;
            let mut out = vec![0u8; expected.len()];
            compute(algorithm, version, &params, &input, salt, &mut out, memory)?;
            // `Output`'s equality is constant-time.
            Ok(Output::new(&out).map_err(|e| e.to_string())? == expected)
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

    /// Runs `work` on a hashing thread under a permit (so no job ever
    /// waits in the channel: the waiting is async, for a permit). The job
    /// holds the permit until its work ends, so a cancelled call does not
    /// free it while its hash still runs.
    async fn on_pool<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, String> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.capacity == 0 {
            // No thread started: waiting for a permit would wait forever.
            return Err(StoreError::Hash("no hashing thread".into()));
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| StoreError::Hash(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            // The caller may have gone (its call was cancelled): nothing to do.
            let _ = tx.send(work(memory));
            drop(permit);
        });
        lock(&self.jobs)
            .send(job)
            .map_err(|_| StoreError::Hash("no hashing thread".into()))?;
        rx.await
            .map_err(|_| StoreError::Hash("hashing thread gone".into()))?
            .map_err(StoreError::Hash)
    }
}

/// A hashing thread: runs jobs on its own block memory, kept from one hash
/// to the next (no 4 MiB allocation, zeroing and page faults per hash),
/// until the [`Credentials`] is dropped.
fn hash_thread(jobs: &Mutex<Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = lock(jobs).recv();
        match job {
            Ok(job) => job(&mut memory),
            Err(_) => return,
        }
    }
}

/// argon2 of `input` into `out` on `memory`, grown to the blocks `params`
/// need (at most [`MAX_BLOCKS`]). Every block is overwritten by the
/// algorithm before it is read, so reused memory gives the same hash as
/// fresh memory.
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    input: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), String> {
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return Err(format!(
            "hash asks for {blocks} KiB, more than {MAX_BLOCKS}"
        ));
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(input, salt, out, &mut memory[..blocks])
        .map_err(|e| e.to_string())
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

    /// The pool's hashes are the argon2 crate's: each side verifies the
    /// other's, and a thread's reused memory changes nothing.
    #[tokio::test]
    async fn pool_hashes_match_the_reference_implementation() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let c = Credentials::new();
        let d = PasswordDigest::of_plaintext(DigestKind::Md5Hex, "secret");
        let reference = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap(),
        );
        let salt = SaltString::encode_b64(&[7u8; SALT_LEN]).unwrap();
        let theirs = reference.hash_password(d.hex(), &salt).unwrap().to_string();
        for _ in 0..3 {
            assert!(c.verify(&theirs, &d).await.unwrap());
        }
        let ours = c.hash(&d).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(d.hex(), &parsed).is_ok());
        let wrong = PasswordDigest::of_plaintext(DigestKind::Md5Hex, "guess");
        assert!(!c.verify(&theirs, &wrong).await.unwrap());
        // Larger stored parameters (an older or stronger hash) still verify.
        let big = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 2, 1, None).unwrap(),
        );
        let strong = big.hash_password(d.hex(), &salt).unwrap().to_string();
        assert!(c.verify(&strong, &d).await.unwrap());
        assert!(c.verify(&theirs, &d).await.unwrap());
    }
}
