//! The account store: usernames, user ids, access levels and password
//! digests, plus the accounts-file parser.
//!
//! Passwords are never kept in plaintext: a plaintext seed is turned into the
//! two digests a client may send (docs/protocol.md §9 D4), SHA-256 hex and MD5 hex,
//! both lowercase. A login compares the client's digest with the stored
//! digest of the same kind in constant time. Digests never appear in `Debug`
//! output or logs.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use md5::Md5;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::{names, BackendError};
use crate::protocol::packets::DigestKind;

/// Longest username accepted, in bytes (the login packet's limit).
pub const MAX_USERNAME_LEN: usize = names::MAX_NAME_LEN;

/// Access level given to accounts that do not name one.
pub const DEFAULT_ACCESS: u32 = 1;

/// A password digest as lowercase hex text.
///
/// Invariant: `hex.len() == kind.wire_len()` and every byte is in
/// `[0-9a-f]`. `Debug` prints the kind only.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordDigest {
    kind: DigestKind,
    hex: Vec<u8>,
}

impl PasswordDigest {
    /// Parses a digest as a client sends it (hex text, either case).
    /// `None` when the length does not fit the kind or a byte is not hex.
    pub fn parse(kind: DigestKind, text: &[u8]) -> Option<PasswordDigest> {
        if text.len() != kind.wire_len() || !text.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        Some(PasswordDigest {
            kind,
            hex: text.to_ascii_lowercase(),
        })
    }

    /// The digest of kind `kind` of a plaintext password.
    pub fn of_plaintext(kind: DigestKind, password: &str) -> PasswordDigest {
        let raw: Vec<u8> = match kind {
            DigestKind::Sha256Hex => Sha256::digest(password.as_bytes()).to_vec(),
            DigestKind::Md5Hex => Md5::digest(password.as_bytes()).to_vec(),
        };
        PasswordDigest {
            kind,
            hex: to_hex(&raw),
        }
    }

    /// Which kind of digest this is.
    pub fn kind(&self) -> DigestKind {
        self.kind
    }

    /// The lowercase hex text (what the SQL engines hash; never logged).
    pub(crate) fn hex(&self) -> &[u8] {
        &self.hex
    }

    /// Compares with `other` in constant time (for digests of equal kind,
    /// whose lengths are equal by the type's invariant).
    pub fn ct_matches(&self, other: &PasswordDigest) -> bool {
        self.kind == other.kind && bool::from(self.hex.ct_eq(&other.hex))
    }
}

impl fmt::Debug for PasswordDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordDigest({:?}, <redacted>)", self.kind)
    }
}

fn to_hex(raw: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    raw.iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]])
        .collect()
}

/// Whether `name` can be a username: 1..=20 bytes of the name character set
/// ([`super::names`]). Auto-created accounts must also avoid the reserved
/// words.
pub fn valid_username(name: &str) -> bool {
    names::check_charset(name) == names::NameCheck::Ok
}

/// One account.
#[derive(Clone, Debug)]
pub struct Account {
    /// Sequential id, from 1; never reused.
    pub user_id: u32,
    /// The name as first registered (lookups ignore case).
    pub username: String,
    /// Access level; below 1 the account may not connect.
    pub access: u32,
    /// Stored SHA-256 hex digest, if known.
    sha256: Option<PasswordDigest>,
    /// Stored MD5 hex digest, if known.
    md5: Option<PasswordDigest>,
}

impl Account {
    fn digest(&self, kind: DigestKind) -> Option<&PasswordDigest> {
        match kind {
            DigestKind::Sha256Hex => self.sha256.as_ref(),
            DigestKind::Md5Hex => self.md5.as_ref(),
        }
    }
}

/// The password of a seed account: plaintext, or one digest.
#[derive(Clone, PartialEq, Eq)]
pub enum SeedPassword {
    /// Both digests are derived from it.
    Plaintext(String),
    /// Only this digest is known.
    Digest(PasswordDigest),
}

impl SeedPassword {
    /// The (SHA-256, MD5) digests it gives: both for a plaintext, one for a
    /// digest.
    pub fn digests(&self) -> (Option<PasswordDigest>, Option<PasswordDigest>) {
        match self {
            SeedPassword::Plaintext(p) => (
                Some(PasswordDigest::of_plaintext(DigestKind::Sha256Hex, p)),
                Some(PasswordDigest::of_plaintext(DigestKind::Md5Hex, p)),
            ),
            SeedPassword::Digest(d) => match d.kind {
                DigestKind::Sha256Hex => (Some(d.clone()), None),
                DigestKind::Md5Hex => (None, Some(d.clone())),
            },
        }
    }
}

impl fmt::Debug for SeedPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeedPassword::Plaintext(_) => f.write_str("Plaintext(<redacted>)"),
            SeedPassword::Digest(d) => write!(f, "Digest({d:?})"),
        }
    }
}

/// One line of an accounts file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSeed {
    /// Account name.
    pub username: String,
    /// Its password.
    pub password: SeedPassword,
    /// Access level ([`DEFAULT_ACCESS`] when the line names none).
    pub access: u32,
    /// Whether the line names the access level (a database account named
    /// by a line without one keeps its level).
    pub access_given: bool,
    /// 1-based line number in the file it came from.
    pub line: usize,
}

/// Why an account could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Empty, longer than 20 bytes, or containing whitespace/control characters.
    #[error("invalid username")]
    InvalidName,
    /// Another account has this name (ignoring case).
    #[error("username already exists")]
    Duplicate,
    /// All u32 user ids are used.
    #[error("no user id left")]
    Exhausted,
}

/// Outcome of [`AccountStore::login`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginCheck {
    /// Digest matched (or the account was just created).
    Ok {
        /// The account's id.
        user_id: u32,
        /// The account's access level.
        access: u32,
        /// Whether the account was auto-created by this login.
        created: bool,
    },
    /// No account has this name (and auto-create is off or the name is invalid).
    UnknownAccount,
    /// The digest did not match the stored one of the same kind, or no
    /// digest of that kind is stored.
    InvalidPassword,
    /// The digest matched but the access level is below 1.
    NoRightToConnect,
}

impl LoginCheck {
    /// The answer for an existing account: the password is checked first,
    /// so a wrong one does not reveal a ban.
    pub fn of_existing(matches: bool, user_id: u32, access: u32) -> LoginCheck {
        if !matches {
            LoginCheck::InvalidPassword
        } else if access < 1 {
            LoginCheck::NoRightToConnect
        } else {
            LoginCheck::Ok {
                user_id,
                access,
                created: false,
            }
        }
    }
}

/// Accounts by case-insensitive name.
///
/// Invariant: keys of `by_name` are the lowercased usernames of their
/// accounts; user ids are unique and below `next_id`; `by_id` maps the user
/// id of every account to its key in `by_name`, and nothing else.
#[derive(Debug)]
pub struct AccountStore {
    by_name: HashMap<String, Account>,
    by_id: HashMap<u32, String>,
    next_id: u32,
}

impl Default for AccountStore {
    fn default() -> Self {
        AccountStore::new()
    }
}

impl AccountStore {
    /// An empty store; the first account gets user id 1.
    pub fn new() -> AccountStore {
        AccountStore {
            by_name: HashMap::new(),
            by_id: HashMap::new(),
            next_id: 1,
        }
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether the store has no accounts.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Looks an account up by name, ignoring case.
    pub fn get(&self, username: &str) -> Option<&Account> {
        self.by_name.get(&username.to_lowercase())
    }

    /// Looks an account up by user id.
    pub fn by_id(&self, user_id: u32) -> Option<&Account> {
        self.by_id
            .get(&user_id)
            .and_then(|key| self.by_name.get(key))
    }

    /// Adds an account; returns its user id.
    pub fn add(
        &mut self,
        username: &str,
        password: &SeedPassword,
        access: u32,
    ) -> Result<u32, AccountError> {
        if !valid_username(username) {
            return Err(AccountError::InvalidName);
        }
        let key = username.to_lowercase();
        if self.by_name.contains_key(&key) {
            return Err(AccountError::Duplicate);
        }
        let user_id = self.next_id;
        self.next_id = self.next_id.checked_add(1).ok_or(AccountError::Exhausted)?;
        let (sha256, md5) = password.digests();
        self.by_id.insert(user_id, key.clone());
        self.by_name.insert(
            key,
            Account {
                user_id,
                username: username.to_owned(),
                access,
                sha256,
                md5,
            },
        );
        Ok(user_id)
    }

    /// Whether `digest` is the stored digest of its kind of account `user_id`.
    pub fn verify(&self, user_id: u32, digest: &PasswordDigest) -> bool {
        self.by_id(user_id)
            .and_then(|a| a.digest(digest.kind))
            .is_some_and(|stored| stored.ct_matches(digest))
    }

    /// Replaces an account's password; false when there is no such account.
    pub fn set_password(&mut self, username: &str, password: &SeedPassword) -> bool {
        let Some(account) = self.by_name.get_mut(&username.to_lowercase()) else {
            return false;
        };
        (account.sha256, account.md5) = password.digests();
        true
    }

    /// Sets an account's access level; false when there is no such account.
    pub fn set_access(&mut self, username: &str, access: u32) -> bool {
        match self.by_name.get_mut(&username.to_lowercase()) {
            Some(account) => {
                account.access = access;
                true
            }
            None => false,
        }
    }

    /// Removes an account; its user id, if it existed.
    pub fn remove(&mut self, username: &str) -> Option<u32> {
        let account = self.by_name.remove(&username.to_lowercase())?;
        self.by_id.remove(&account.user_id);
        Some(account.user_id)
    }

    /// (user id, name, access) of every account, by user id.
    pub fn list(&self) -> Vec<(u32, String, u32)> {
        let mut list: Vec<(u32, String, u32)> = self
            .by_name
            .values()
            .map(|a| (a.user_id, a.username.clone(), a.access))
            .collect();
        list.sort_unstable_by_key(|a| a.0);
        list
    }

    /// Adds every seed; a failure names the file and line of the seed.
    pub fn add_seeds(&mut self, path: &Path, seeds: &[AccountSeed]) -> Result<(), BackendError> {
        for seed in seeds {
            self.add(&seed.username, &seed.password, seed.access)
                .map_err(|e| BackendError::AccountsParse {
                    path: path.to_owned(),
                    line: seed.line,
                    reason: format!("account {:?}: {e}", seed.username),
                })?;
        }
        Ok(())
    }

    /// Checks a login. With `auto_create`, an unknown but valid username is
    /// created with the digest it sent and access [`DEFAULT_ACCESS`].
    pub fn login(
        &mut self,
        username: &str,
        digest: &PasswordDigest,
        auto_create: bool,
    ) -> LoginCheck {
        match self.by_name.get(&username.to_lowercase()) {
            Some(account) => {
                let matches = account
                    .digest(digest.kind)
                    .is_some_and(|stored| stored.ct_matches(digest));
                LoginCheck::of_existing(matches, account.user_id, account.access)
            }
            None if auto_create => {
                match self.add(
                    username,
                    &SeedPassword::Digest(digest.clone()),
                    DEFAULT_ACCESS,
                ) {
                    Ok(user_id) => LoginCheck::Ok {
                        user_id,
                        access: DEFAULT_ACCESS,
                        created: true,
                    },
                    Err(_) => LoginCheck::UnknownAccount,
                }
            }
            None => LoginCheck::UnknownAccount,
        }
    }
}

/// Parses an accounts file's text. `path` only names the file in errors.
///
/// Format: one account per line, `username password [access]`, separated by
/// whitespace; `#` starts a comment (to the end of the line); blank lines are
/// ignored. A password of the form `sha256:<64 hex>` or `md5:<32 hex>` is a
/// digest, anything else is the plaintext password (so a plaintext password
/// cannot contain whitespace or `#`).
pub fn parse_accounts(path: &Path, text: &str) -> Result<Vec<AccountSeed>, BackendError> {
    let mut seeds = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let err = |reason: String| BackendError::AccountsParse {
            path: path.to_owned(),
            line,
            reason,
        };
        let content = raw.split('#').next().unwrap_or("");
        let fields: Vec<&str> = content.split_whitespace().collect();
        let (username, password, access, access_given) = match fields.as_slice() {
            [] => continue,
            [u, p] => (*u, *p, DEFAULT_ACCESS, false),
            [u, p, a] => {
                let access = a
                    .parse::<u32>()
                    .map_err(|_| err(format!("access level {a:?} is not a number")))?;
                (*u, *p, access, true)
            }
            [_] => return Err(err("expected `username password [access]`".into())),
            _ => return Err(err("too many fields".into())),
        };
        if !valid_username(username) {
            return Err(err(format!(
                "invalid username {username:?} (1..={MAX_USERNAME_LEN} ASCII letters, digits, _ or -)"
            )));
        }
        let password = parse_password(password).map_err(|e| err(e.into()))?;
        seeds.push(AccountSeed {
            username: username.to_owned(),
            password,
            access,
            access_given,
            line,
        });
    }
    Ok(seeds)
}

/// A password as an accounts file or an operator gives it: `sha256:<64
/// hex>` or `md5:<32 hex>` is that digest, anything else the plaintext.
pub fn parse_password(text: &str) -> Result<SeedPassword, &'static str> {
    if let Some(hex) = text.strip_prefix("sha256:") {
        PasswordDigest::parse(DigestKind::Sha256Hex, hex.as_bytes())
            .map(SeedPassword::Digest)
            .ok_or("sha256: needs 64 hex digits")
    } else if let Some(hex) = text.strip_prefix("md5:") {
        PasswordDigest::parse(DigestKind::Md5Hex, hex.as_bytes())
            .map(SeedPassword::Digest)
            .ok_or("md5: needs 32 hex digits")
    } else {
        Ok(SeedPassword::Plaintext(text.to_owned()))
    }
}

/// Reads and parses an accounts file (see [`parse_accounts`]).
pub fn read_accounts_file(path: &Path) -> Result<Vec<AccountSeed>, BackendError> {
    let text = std::fs::read_to_string(path).map_err(|source| BackendError::AccountsRead {
        path: path.to_owned(),
        source,
    })?;
    parse_accounts(path, &text)
}

#[cfg(test)]
mod tests;
