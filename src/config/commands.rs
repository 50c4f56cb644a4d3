//! The subcommands: `packet-service backend [options]` (the embedded
//! backend alone, every setting as for the gateway), `packet-service
//! accounts VERB …` (operator commands on the database) and `packet-service
//! admin VERB …` (calls of a running backend's admin service), each with its
//! own `--help`. Anything else on the command line is the gateway's.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::rules::{Database, FilePath, Sock, UInt};
use super::{Command, Config, ConfigError, SETTINGS};
use crate::backend::store::DatabaseUrl;

/// What `packet-service accounts` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountAction {
    /// `add NAME [--access N]`: creates an account (password on stdin).
    Add {
        /// The account name.
        username: String,
        /// Its access level (default 1).
        access: u32,
    },
    /// `list`: every account with its access level and characters.
    List,
    /// `passwd NAME`: replaces the password (read from stdin).
    Passwd {
        /// The account name.
        username: String,
    },
    /// `set-access NAME LEVEL`: sets the access level (0 bans).
    SetAccess {
        /// The account name.
        username: String,
        /// The new level.
        access: u32,
    },
    /// `delete NAME`: deletes the account and its characters.
    Delete {
        /// The account name.
        username: String,
    },
}

/// `packet-service accounts …`: the action and the database it acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsCommand {
    /// Where the accounts are (`--database` / `DATABASE_URL` / default).
    pub database: DatabaseUrl,
    /// What to do.
    pub action: AccountAction,
}

const ACCOUNTS_USAGE: &str = "\
Usage: packet-service accounts VERB [ARGS] [--database URL]

Operator commands on the embedded backend's database (the same --database /
DATABASE_URL as the service, default sqlite:data/packet-service.db). They can
run while the service runs. Passwords are read from the first line of stdin;
`sha256:<hex>` or `md5:<hex>` there stores that digest only.

  add NAME [--access N]     create an account (access level 1 by default)
  list                      list accounts: id, name, access, characters
  passwd NAME               replace an account's password
  set-access NAME LEVEL     set the access level (0 = banned)
  delete NAME               delete an account with its characters

Exit status: 0 done, 1 refused (no such account, name taken, bad value),
2 usage error, 3 the database failed.
";

/// What `packet-service admin` asks the admin service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    /// `players`: everyone in the world.
    Players,
    /// `kick NAME [--reason TEXT]`: closes a character's (or an account's)
    /// players.
    Kick {
        /// A character or account name.
        name: String,
        /// Why (for the gateways' logs); empty: the default.
        reason: String,
    },
    /// `announce TEXT… [--map N]`: a server message to everyone or one map.
    Announce {
        /// The words of the message, joined by spaces.
        text: String,
        /// Only this map; `None`: everyone.
        map: Option<u16>,
    },
    /// `ban ACCOUNT`: refuses the account's logins and kicks it.
    Ban {
        /// The account name.
        account: String,
    },
}

/// `packet-service admin …`: the action and the service it calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCommand {
    /// The admin service (`--admin-listen` / `ADMIN_LISTEN`; an unspecified
    /// address is reached on loopback).
    pub addr: SocketAddr,
    /// The token file (`--admin-token-file` / `ADMIN_TOKEN_FILE`).
    pub token_file: Option<PathBuf>,
    /// What to do.
    pub action: AdminAction,
}

const ADMIN_USAGE: &str = "\
Usage: packet-service admin VERB [ARGS] [--admin-listen ADDR] [--admin-token-file PATH]

Calls the admin service of a running backend (the gateway's embedded one or
`packet-service backend`) at --admin-listen / ADMIN_LISTEN (default
127.0.0.1:29200), with the token in --admin-token-file / ADMIN_TOKEN_FILE
when the service requires one.

  players                   everyone in the world: account, character, map,
                            position, gateway, connected since (UTC)
  kick NAME [--reason TEXT] close a character's connection (or every one of
                            an account); the others on its map see it leave
  announce TEXT [--map N]   a server message to every player, or one map's
  ban ACCOUNT               refuse the account's next logins, kick it

Exit status: 0 done, 1 refused (nobody by that name, bad text), 2 usage
error, 3 the service could not be reached or failed, 4 the token was refused.
";

/// Highest access level accepted.
const MAX_ACCESS: u32 = 1_000_000;

/// `packet-service backend …`: the gateway's settings, run without a client
/// listener.
pub(super) fn backend(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    match Config::parse(args, env)? {
        Command::Run(config) => Ok(Command::Backend(config)),
        Command::Help(text) => Ok(Command::Help(text.replacen(
            "Usage: packet-service [options]\n",
            "Usage: packet-service backend [options]\n\n\
             Runs the auth, character and world services alone on --backend-listen\n\
             (required), for gateways elsewhere; the client settings are ignored.\n",
            1,
        ))),
        other => Ok(other),
    }
}

/// `packet-service accounts …`.
pub(super) fn accounts(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    let mut opts = getopts::Options::new();
    opts.optflag("h", "help", "print this help and exit");
    opts.optopt("", "database", "the database", "URL");
    opts.optopt("", "access", "access level of a new account", "N");
    let m = opts
        .parse(args)
        .map_err(|fail| ConfigError::Usage(fail.to_string()))?;
    if m.opt_present("help") || m.free.is_empty() {
        return Ok(Command::Help(ACCOUNTS_USAGE.to_owned()));
    }
    let row = SETTINGS
        .iter()
        .find(|r| r.field == "database")
        .ok_or_else(|| ConfigError::Usage("no database setting".into()))?;
    let database = super::parse::Sources::new(Some(&m), env).value(row, &Database)?;
    let level = |raw: &str| {
        UInt {
            min: 0,
            max: MAX_ACCESS,
        }
        .parse_access(raw)
    };
    let access = m.opt_str("access").map(|a| level(&a)).transpose()?;
    let words: Vec<&str> = m.free.iter().map(String::as_str).collect();
    let action = match (words.as_slice(), access) {
        (["add", name], access) => AccountAction::Add {
            username: (*name).to_owned(),
            access: access.unwrap_or(crate::backend::accounts::DEFAULT_ACCESS),
        },
        (["list"], None) => AccountAction::List,
        (["passwd", name], None) => AccountAction::Passwd {
            username: (*name).to_owned(),
        },
        (["set-access", name, level_text], None) => AccountAction::SetAccess {
            username: (*name).to_owned(),
            access: level(level_text)?,
        },
        (["delete", name], None) => AccountAction::Delete {
            username: (*name).to_owned(),
        },
        (_, Some(_)) if words.first() != Some(&"add") => {
            return Err(ConfigError::Usage(
                "--access belongs to `accounts add`".into(),
            ))
        }
        _ => {
            return Err(ConfigError::Usage(format!(
                "accounts: unknown or incomplete command {:?}",
                words.join(" ")
            )))
        }
    };
    Ok(Command::Accounts(AccountsCommand { database, action }))
}

/// `packet-service admin …`.
pub(super) fn admin(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    let row = |field: &str| {
        SETTINGS
            .iter()
            .find(|r| r.field == field)
            .ok_or_else(|| ConfigError::Usage(format!("no {field} setting")))
    };
    let (listen, token) = (row("admin_listen")?, row("admin_token_file")?);
    let mut opts = getopts::Options::new();
    opts.optflag("h", "help", "print this help and exit");
    opts.optopt("", listen.long, "the admin service", listen.hint);
    opts.optopt("", token.long, "the token file", token.hint);
    opts.optopt("", "reason", "why a player is kicked", "TEXT");
    opts.optopt("", "map", "the map of an announcement", "N");
    let m = opts
        .parse(args)
        .map_err(|fail| ConfigError::Usage(fail.to_string()))?;
    if m.opt_present("help") || m.free.is_empty() {
        return Ok(Command::Help(ADMIN_USAGE.to_owned()));
    }
    let sources = super::parse::Sources::new(Some(&m), env);
    let addr = sources.value(listen, &Sock)?;
    let token_file = sources.optional(token, &FilePath)?;
    let map = match m.opt_str("map") {
        None => None,
        Some(raw) => Some(
            raw.parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| ConfigError::Usage(format!("--map {raw:?}: expected 1..=65535")))?,
        ),
    };
    let reason = m.opt_str("reason");
    let words: Vec<&str> = m.free.iter().map(String::as_str).collect();
    let misplaced = |flag: &str| ConfigError::Usage(format!("--{flag} does not go with this verb"));
    let action = match words.as_slice() {
        ["players"] => AdminAction::Players,
        ["kick", name] => AdminAction::Kick {
            name: (*name).to_owned(),
            reason: reason.clone().unwrap_or_default(),
        },
        ["announce", text @ ..] if !text.is_empty() => AdminAction::Announce {
            text: text.join(" "),
            map,
        },
        ["ban", account] => AdminAction::Ban {
            account: (*account).to_owned(),
        },
        _ => {
            return Err(ConfigError::Usage(format!(
                "admin: unknown or incomplete command {:?}",
                words.join(" ")
            )))
        }
    };
    if reason.is_some() && !matches!(action, AdminAction::Kick { .. }) {
        return Err(misplaced("reason"));
    }
    if map.is_some() && !matches!(action, AdminAction::Announce { .. }) {
        return Err(misplaced("map"));
    }
    Ok(Command::Admin(AdminCommand {
        addr,
        token_file,
        action,
    }))
}

impl UInt<u32> {
    /// An access level, or the error line naming what is accepted.
    fn parse_access(&self, raw: &str) -> Result<u32, ConfigError> {
        use super::rules::Rule;
        self.parse(raw).ok_or_else(|| {
            ConfigError::Usage(format!(
                "access level {raw:?}: expected {}",
                self.expected()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigError> {
        let args: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::parse(&args, &|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn action(list: &[&str]) -> AccountsCommand {
        match parse(list, &[]) {
            Ok(Command::Accounts(cmd)) => cmd,
            other => panic!("{list:?}: {other:?}"),
        }
    }

    #[test]
    fn accounts_verbs() {
        let add = action(&["accounts", "add", "bob", "--access", "3"]);
        assert_eq!(
            add.action,
            AccountAction::Add {
                username: "bob".into(),
                access: 3
            }
        );
        assert_eq!(
            add.database,
            DatabaseUrl::Sqlite("data/packet-service.db".into())
        );
        assert_eq!(action(&["accounts", "list"]).action, AccountAction::List);
        assert_eq!(
            action(&["accounts", "set-access", "bob", "0"]).action,
            AccountAction::SetAccess {
                username: "bob".into(),
                access: 0
            }
        );
        let cmd = action(&["accounts", "--database", "sqlite:x.db", "delete", "bob"]);
        assert_eq!(cmd.database, DatabaseUrl::Sqlite("x.db".into()));
        let env = parse(&["accounts", "list"], &[("DATABASE_URL", "memory")]);
        assert!(matches!(
            env,
            Ok(Command::Accounts(AccountsCommand {
                database: DatabaseUrl::Memory,
                ..
            }))
        ));
        for bad in [
            &["accounts", "add"][..],
            &["accounts", "frobnicate", "x"],
            &["accounts", "set-access", "bob", "high"],
            &["accounts", "list", "--access", "2"],
            &["accounts", "--database", "mysql://x", "list"],
        ] {
            assert!(parse(bad, &[]).is_err(), "{bad:?}");
        }
        assert!(matches!(parse(&["accounts"], &[]), Ok(Command::Help(_))));
    }

    fn admin(list: &[&str], env: &[(&str, &str)]) -> AdminCommand {
        match parse(list, env) {
            Ok(Command::Admin(cmd)) => cmd,
            other => panic!("{list:?}: {other:?}"),
        }
    }

    #[test]
    fn admin_verbs() {
        let players = admin(&["admin", "players"], &[]);
        assert_eq!(players.action, AdminAction::Players);
        assert_eq!(players.addr, "127.0.0.1:29200".parse().expect("addr"));
        assert_eq!(players.token_file, None);
        let kick = admin(
            &[
                "admin",
                "kick",
                "Bob",
                "--reason",
                "spam",
                "--admin-listen",
                "127.0.0.1:9",
            ],
            &[("ADMIN_TOKEN_FILE", "/etc/token")],
        );
        assert_eq!(
            kick.action,
            AdminAction::Kick {
                name: "Bob".into(),
                reason: "spam".into()
            }
        );
        assert_eq!(kick.addr, "127.0.0.1:9".parse().expect("addr"));
        assert_eq!(kick.token_file, Some(PathBuf::from("/etc/token")));
        assert_eq!(
            admin(
                &["admin", "announce", "restart", "in", "5", "--map", "2"],
                &[]
            )
            .action,
            AdminAction::Announce {
                text: "restart in 5".into(),
                map: Some(2)
            }
        );
        assert_eq!(
            admin(&["admin", "ban", "eve"], &[]).action,
            AdminAction::Ban {
                account: "eve".into()
            }
        );
        for bad in [
            &["admin", "kick"][..],
            &["admin", "announce"],
            &["admin", "frobnicate"],
            &["admin", "ban", "eve", "--map", "1"],
            &["admin", "players", "--reason", "x"],
            &["admin", "announce", "hi", "--map", "0"],
            &["admin", "players", "--admin-listen", "nowhere"],
        ] {
            assert!(parse(bad, &[]).is_err(), "{bad:?}");
        }
        assert!(matches!(parse(&["admin"], &[]), Ok(Command::Help(_))));
    }

    #[test]
    fn backend_takes_the_gateway_settings() {
        match parse(&["backend", "--backend-listen", "127.0.0.1:29100"], &[]) {
            Ok(Command::Backend(c)) => {
                assert_eq!(c.backend_listen, "127.0.0.1:29100".parse().ok())
            }
            other => panic!("{other:?}"),
        }
        let Ok(Command::Help(help)) = parse(&["backend", "--help"], &[]) else {
            panic!("no help");
        };
        assert!(help.starts_with("Usage: packet-service backend [options]"));
    }
}
