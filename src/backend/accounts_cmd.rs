//! `packet-service accounts …`: the operator commands on the backend's
//! database, with their exit statuses (0 done, 1 refused, 3 the database
//! failed; usage errors, 2, are the command line's). They work on SQLite
//! and PostgreSQL while the service runs; `memory` has nothing to manage.

use std::fmt::Write as _;

use super::accounts::{
    parse_password, valid_username, AccountError, SeedPassword, MAX_USERNAME_LEN,
};
use super::store::{self, DatabaseUrl, StoreError, StoreOptions};
use crate::config::{AccountAction, AccountsCommand, Config};

/// Why an operator command did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The request cannot be done: no such account, name taken, bad value.
    #[error("{0}")]
    Refused(String),
    /// The database could not be opened or failed.
    #[error("{0}")]
    Database(#[from] StoreError),
}

impl AdminError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminError::Refused(_) => 1,
            AdminError::Database(_) => 3,
        }
    }
}

/// [`run`] on a runtime of its own (the binary has none).
pub fn run_blocking(
    cmd: &AccountsCommand,
    password: impl FnOnce() -> std::io::Result<String>,
) -> Result<String, AdminError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AdminError::Database(StoreError::Runtime(format!("runtime: {e}"))))?;
    runtime.block_on(run(cmd, password))
}

/// Runs `cmd`; what to print on success. `password` supplies the password
/// of `add` and `passwd` (the first line of stdin, for the binary).
pub async fn run(
    cmd: &AccountsCommand,
    password: impl FnOnce() -> std::io::Result<String>,
) -> Result<String, AdminError> {
    if cmd.database == DatabaseUrl::Memory {
        return Err(AdminError::Refused(
            "the memory database keeps no accounts: give --database sqlite:PATH or postgres://…"
                .into(),
        ));
    }
    let read_password = |password: Box<dyn FnOnce() -> std::io::Result<String>>| {
        let line =
            password().map_err(|e| AdminError::Refused(format!("reading the password: {e}")))?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Err(AdminError::Refused("no password on stdin".into()));
        }
        parse_password(line).map_err(|e| AdminError::Refused(e.to_owned()))
    };
    let name_ok = |name: &str| {
        if valid_username(name) {
            Ok(())
        } else {
            Err(AdminError::Refused(format!(
                "invalid account name {name:?} (1..={MAX_USERNAME_LEN} bytes, no spaces)"
            )))
        }
    };
    // Check what can be checked before touching the database.
    let secret: Option<SeedPassword> = match &cmd.action {
        AccountAction::Add { username, .. } | AccountAction::Passwd { username } => {
            name_ok(username)?;
            Some(read_password(Box::new(password))?)
        }
        _ => None,
    };
    let defaults = Config::defaults();
    let opened = store::open(
        &cmd.database,
        StoreOptions {
            max_chars_per_account: defaults.max_chars_per_account,
            session_ttl: defaults.session_ttl,
        },
    )
    .await?;
    let s = &opened.store;
    let missing = |name: &str| AdminError::Refused(format!("no account named {name:?}"));
    match (&cmd.action, secret) {
        (AccountAction::Add { username, access }, Some(password)) => {
            match s.add_account(username, &password, *access).await? {
                Ok(id) => Ok(format!(
                    "added {username:?} as user {id} (access {access})\n"
                )),
                Err(AccountError::Duplicate) => Err(AdminError::Refused(format!(
                    "an account named {username:?} exists already"
                ))),
                Err(e) => Err(AdminError::Refused(format!("{username:?}: {e}"))),
            }
        }
        (AccountAction::Passwd { username }, Some(password)) => {
            if s.set_password(username, &password).await? {
                Ok(format!("password of {username:?} replaced\n"))
            } else {
                Err(missing(username))
            }
        }
        (AccountAction::SetAccess { username, access }, _) => {
            if s.set_access(username, *access).await? {
                Ok(format!("{username:?} has access {access}\n"))
            } else {
                Err(missing(username))
            }
        }
        (AccountAction::Delete { username }, _) => {
            if s.delete_account(username).await? {
                Ok(format!("deleted {username:?} and its characters\n"))
            } else {
                Err(missing(username))
            }
        }
        (AccountAction::List, _) => {
            let mut out = format!(
                "{:>8}  {:<20}  {:>6}  {:>10}\n",
                "id", "name", "access", "characters"
            );
            for a in s.accounts().await? {
                let _ = writeln!(
                    out,
                    "{:>8}  {:<20}  {:>6}  {:>10}",
                    a.user_id, a.username, a.access, a.characters
                );
            }
            Ok(out)
        }
        (AccountAction::Add { .. } | AccountAction::Passwd { .. }, None) => {
            Err(AdminError::Refused("no password".into()))
        }
    }
}
