//! What SIGHUP does to the embedded backend: it reads the accounts file
//! again and applies what changed since it was last read to the store,
//! while every connection and session goes on.
//!
//! The file seeds the database, it does not own it: a line that is new
//! creates its account (or, for an account that exists, sets its password
//! and the access level the line gives); a line whose password or given
//! access level changed updates that account; an unchanged line is not
//! applied again (so a password an operator changed with `accounts passwd`
//! stays until the line itself changes — a restart applies every line, as
//! before); an account whose line was removed is kept as it is. A file
//! that cannot be read or parsed, or that names an account twice or one of
//! the `--account` entries, is refused whole and the accounts stay as they
//! were. Each reload logs one line with the counts and the names, never a
//! password. Sessions already open are not ended by a changed password or
//! access level; the next login sees the new one.
//!
//! Reloads run one at a time on a task of their own; requests that arrive
//! meanwhile are coalesced into one more reload with the newest path.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use super::accounts::{AccountError, AccountSeed, AccountStore, SeedPassword, DEFAULT_ACCESS};
use super::store::{Store, StoreError};
use super::BackendError;

/// Asks the running backend to read the accounts file again (cheap to
/// clone; a stopped backend ignores it).
#[derive(Clone)]
pub struct AccountsReload {
    /// The newest file asked for (`send_replace` notifies even when it is
    /// the same path again).
    tx: Arc<watch::Sender<Option<PathBuf>>>,
}

impl AccountsReload {
    /// Reads `path` (the `ACCOUNTS_FILE` now in force; `None`: no file)
    /// and applies it, in the background; the outcome is logged.
    pub fn request(&self, path: Option<PathBuf>) {
        self.tx.send_replace(path);
    }
}

/// The file's lines as last applied, by lowercased name.
pub(crate) type Applied = HashMap<String, AccountSeed>;

/// The lines of `seeds` by lowercased name.
pub(crate) fn applied(seeds: &[AccountSeed]) -> Applied {
    seeds
        .iter()
        .map(|s| (s.username.to_lowercase(), s.clone()))
        .collect()
}

/// What the task reloading the accounts works with.
pub(crate) struct Reloading {
    /// Where accounts live.
    pub store: Arc<dyn Store>,
    /// The `--account` entries (checked against the file, as at start).
    pub fixed: Vec<(String, String)>,
    /// The file's lines as last applied.
    pub applied: Applied,
}

/// A reload handle and the task that serves it until `stopped`.
pub(crate) fn spawn(
    mut reloading: Reloading,
    mut stopped: watch::Receiver<bool>,
) -> (AccountsReload, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = watch::channel(None::<PathBuf>);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                _ = stopped.wait_for(|&s| s) => return,
            }
            let path = rx.borrow_and_update().clone();
            reloading.reload(path).await;
        }
    });
    (AccountsReload { tx: Arc::new(tx) }, task)
}

impl Reloading {
    /// One reload of `path`, logged.
    async fn reload(&mut self, path: Option<PathBuf>) {
        let Some(path) = path else {
            if !self.applied.is_empty() {
                log::info!(
                    "accounts reload: no accounts file any more; its {} accounts are kept",
                    self.applied.len()
                );
                self.applied.clear();
            }
            return;
        };
        let read = {
            let (path, fixed) = (path.clone(), self.fixed.clone());
            tokio::task::spawn_blocking(move || checked_file(&fixed, Some(&path))).await
        };
        let lines = match read {
            Ok(Ok(lines)) => lines,
            Ok(Err(e)) => {
                log::error!("accounts reload refused, keeping the current accounts: {e}");
                return;
            }
            Err(e) => {
                log::error!("accounts reload failed: {e}");
                return;
            }
        };
        let plan = plan(&self.applied, &lines);
        let mut summary = Summary {
            removed: plan.removed.clone(),
            unchanged: plan.unchanged,
            ..Summary::default()
        };
        for (seed, change) in plan.apply {
            match apply(self.store.as_ref(), &seed, change).await {
                Ok(done) => {
                    summary.count(&seed.username, done);
                    self.applied.insert(seed.username.to_lowercase(), seed);
                }
                Err(e) => {
                    log::error!(
                        "accounts reload of {}: stopped at line {} ({e}); applied so far: {summary}",
                        path.display(),
                        seed.line
                    );
                    return;
                }
            }
        }
        for name in &plan.removed {
            self.applied.remove(&name.to_lowercase());
        }
        log::info!("accounts file {} reloaded: {summary}", path.display());
    }
}

/// The lines of the accounts file at `path` (none without one), checked
/// as start-up checks them with the `fixed` entries: valid names, none
/// twice (ignoring case). Errors name the entry, or the file and line.
pub(crate) fn checked_file(
    fixed: &[(String, String)],
    path: Option<&Path>,
) -> Result<Vec<AccountSeed>, BackendError> {
    // An empty memory store accepting them all is exactly the check.
    let mut check = AccountStore::new();
    for (username, password) in fixed {
        let password = SeedPassword::Plaintext(password.clone());
        check
            .add(username, &password, DEFAULT_ACCESS)
            .map_err(|source| BackendError::SeedAccount {
                username: username.clone(),
                source,
            })?;
    }
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let lines = super::accounts::read_accounts_file(path)?;
    check.add_seeds(path, &lines)?;
    Ok(lines)
}

/// What one line changes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct LineChange {
    /// Its password is to be set.
    pub password: bool,
    /// Its access level is to be set.
    pub access: bool,
}

/// What a reload is to do.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Lines new or changed since last applied, in file order.
    pub apply: Vec<(AccountSeed, LineChange)>,
    /// Names of accounts no longer in the file (kept in the store).
    pub removed: Vec<String>,
    /// Lines as last applied.
    pub unchanged: usize,
}

/// Compares the file's `lines` with the lines last `applied`.
pub(crate) fn plan(applied: &Applied, lines: &[AccountSeed]) -> Plan {
    let mut plan = Plan::default();
    let mut listed = std::collections::HashSet::new();
    for line in lines {
        let key = line.username.to_lowercase();
        let change = match applied.get(&key) {
            None => LineChange {
                password: true,
                access: line.access_given,
            },
            Some(old) => LineChange {
                password: old.password != line.password,
                access: line.access_given && (!old.access_given || old.access != line.access),
            },
        };
        if change.password || change.access {
            plan.apply.push((line.clone(), change));
        } else {
            plan.unchanged += 1;
        }
        listed.insert(key);
    }
    plan.removed = applied
        .iter()
        .filter(|(key, _)| !listed.contains(*key))
        .map(|(_, seed)| seed.username.clone())
        .collect();
    plan.removed.sort_unstable();
    plan
}

/// What applying one line did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The account did not exist and was created.
    Created,
    /// The account existed; these were set.
    Updated(LineChange),
}

/// Applies one line to the store.
async fn apply(
    store: &dyn Store,
    seed: &AccountSeed,
    change: LineChange,
) -> Result<Outcome, StoreError> {
    if update(store, seed, change).await? {
        return Ok(Outcome::Updated(change));
    }
    match store
        .add_account(&seed.username, &seed.password, seed.access)
        .await?
    {
        Ok(_) => Ok(Outcome::Created),
        // Created meanwhile (a login auto-creating it): update it instead.
        Err(AccountError::Duplicate) => {
            let all = LineChange {
                password: true,
                access: seed.access_given,
            };
            update(store, seed, all).await?;
            Ok(Outcome::Updated(all))
        }
        Err(e) => Err(StoreError::Invalid(format!(
            "account {:?}: {e}",
            seed.username
        ))),
    }
}

/// Sets what `change` names on an existing account; false when there is
/// no such account.
async fn update(
    store: &dyn Store,
    seed: &AccountSeed,
    change: LineChange,
) -> Result<bool, StoreError> {
    let mut exists = None;
    if change.password {
        exists = Some(store.set_password(&seed.username, &seed.password).await?);
    }
    if change.access && exists != Some(false) {
        exists = Some(store.set_access(&seed.username, seed.access).await?);
    }
    Ok(exists == Some(true))
}

/// Most names one category of the summary lists.
const NAMES_SHOWN: usize = 20;

/// What a reload did, by category, with names (never passwords).
#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// Accounts created.
    pub added: Vec<String>,
    /// Existing accounts whose password was set.
    pub password: Vec<String>,
    /// Existing accounts whose access level was set.
    pub access: Vec<String>,
    /// Accounts no longer in the file, kept.
    pub removed: Vec<String>,
    /// Lines as last applied.
    pub unchanged: usize,
}

impl Summary {
    fn count(&mut self, name: &str, done: Outcome) {
        match done {
            Outcome::Created => self.added.push(name.to_owned()),
            Outcome::Updated(change) => {
                if change.password {
                    self.password.push(name.to_owned());
                }
                if change.access {
                    self.access.push(name.to_owned());
                }
            }
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let categories = [
            ("added", &self.added),
            ("password changed", &self.password),
            ("access changed", &self.access),
            ("no longer listed, kept", &self.removed),
        ];
        for (what, names) in categories {
            write!(f, "{} {what}", names.len())?;
            if !names.is_empty() {
                let shown = names.len().min(NAMES_SHOWN);
                write!(f, " ({}", names[..shown].join(", "))?;
                if names.len() > shown {
                    write!(f, " and {} more", names.len() - shown)?;
                }
                f.write_str(")")?;
            }
            f.write_str(", ")?;
        }
        write!(f, "{} unchanged", self.unchanged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::accounts::{parse_accounts, LoginCheck, PasswordDigest};
    use crate::backend::store::memory::MemoryStore;
    use crate::protocol::packets::DigestKind;

    fn lines(text: &str) -> Vec<AccountSeed> {
        parse_accounts(Path::new("a.txt"), text).expect("parses")
    }

    async fn login(store: &dyn Store, name: &str, password: &str) -> LoginCheck {
        let digest = PasswordDigest::of_plaintext(DigestKind::Sha256Hex, password);
        store.login(name, &digest, false).await.expect("store")
    }

    #[test]
    fn a_plan_applies_new_and_changed_lines_only_and_keeps_removed_accounts() {
        let old = applied(&lines("alice a\nbob b 2\ncarol c\ndave d 3\n"));
        let new = lines("Alice a\nbob b2 2\ncarol c 5\ndave d\nerin e\n");
        let plan = plan(&old, &new);
        let names: Vec<(&str, LineChange)> = plan
            .apply
            .iter()
            .map(|(s, c)| (s.username.as_str(), *c))
            .collect();
        let set = |password, access| LineChange { password, access };
        assert_eq!(
            names,
            vec![
                ("bob", set(true, false)),
                ("carol", set(false, true)),
                ("erin", set(true, false)),
            ]
        );
        // A case change is the same account; a dropped access level keeps
        // the level the account has.
        assert_eq!(plan.unchanged, 2);
        assert!(plan.removed.is_empty());
        let plan = super::plan(&old, &lines("bob b 2\n"));
        assert_eq!(plan.removed, vec!["alice", "carol", "dave"]);
    }

    #[tokio::test]
    async fn a_reload_adds_updates_keeps_and_refuses_a_bad_file_whole() {
        let dir = std::env::temp_dir().join(format!("ps-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("accounts");
        std::fs::write(&path, "alice a\nbob b\n").expect("write");
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(5));
        let first = checked_file(&[], Some(&path)).expect("file");
        store
            .seed(&crate::backend::seed_list(&first))
            .await
            .expect("seed");
        let mut reloading = Reloading {
            store: Arc::clone(&store),
            fixed: vec![("admin".into(), "admin".into())],
            applied: applied(&first),
        };

        std::fs::write(&path, "alice a2\ncarol c 0\n").expect("write");
        reloading.reload(Some(path.clone())).await;
        assert!(matches!(
            login(&*store, "alice", "a2").await,
            LoginCheck::Ok { .. }
        ));
        assert_eq!(
            login(&*store, "alice", "a").await,
            LoginCheck::InvalidPassword
        );
        assert_eq!(
            login(&*store, "carol", "c").await,
            LoginCheck::NoRightToConnect
        );
        assert!(
            matches!(login(&*store, "bob", "b").await, LoginCheck::Ok { .. }),
            "kept"
        );

        // A bad line, a name twice or an `--account` name: refused whole.
        for bad in [
            "alice a3\ncarol\n",
            "alice a3\nALICE x\n",
            "alice a3\nadmin x\n",
        ] {
            std::fs::write(&path, bad).expect("write");
            reloading.reload(Some(path.clone())).await;
            assert!(matches!(
                login(&*store, "alice", "a2").await,
                LoginCheck::Ok { .. }
            ));
        }
        let err = checked_file(&[], Some(&path)).map(|_| ());
        assert!(err.is_ok(), "only the --account entry collides");
        std::fs::write(&path, "alice a3\ncarol\n").expect("write");
        let err = checked_file(&[], Some(&path)).expect_err("bad line");
        assert!(
            err.to_string()
                .starts_with(&format!("{}:2: ", path.display())),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_summary_names_accounts_and_never_passwords() {
        let summary = Summary {
            added: vec!["carol".into()],
            password: (0..25).map(|i| format!("u{i}")).collect(),
            access: vec![],
            removed: vec!["dave".into()],
            unchanged: 3,
        };
        let text = summary.to_string();
        assert!(
            text.starts_with("1 added (carol), 25 password changed (u0, u1,"),
            "{text}"
        );
        assert!(
            text.contains("u19 and 5 more), 0 access changed, "),
            "{text}"
        );
        assert!(
            text.ends_with("1 no longer listed, kept (dave), 3 unchanged"),
            "{text}"
        );
    }
}
