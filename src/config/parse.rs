//! Where raw values come from and which one wins: the command line (through
//! getopts), else the environment (empty = unset), else the row's default.
//! Also the command line's own verbs (`--help`, `--version`, the
//! `healthcheck` subcommand and the subcommands of `commands.rs`) and the
//! error line for a refused value.

use super::declare::{Form, Setting};
use super::rules::{Accounts, Bool, Rule};
use super::{text, Command, Config, ConfigError, SETTINGS};

impl Config {
    /// Parses `args` (without the program name) over the environment seen
    /// through `env`. `--help` and `--version` win over everything after the
    /// command line itself parsed.
    pub fn parse(
        args: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Command, ConfigError> {
        if let Some((first, rest)) = args.split_first() {
            match first.as_str() {
                crate::healthcheck::SUBCOMMAND => {
                    return crate::healthcheck::Probe::parse(rest, env)
                }
                "backend" => return super::commands::backend(rest, env),
                "accounts" => return super::commands::accounts(rest, env),
                "admin" => return super::commands::admin(rest, env),
                _ => {}
            }
        }
        let matches = options()
            .parse(args)
            .map_err(|fail| ConfigError::Usage(fail.to_string()))?;
        if matches.opt_present("help") {
            return Ok(Command::Help(Self::usage()));
        }
        if matches.opt_present("version") {
            return Ok(Command::Version(text::version()));
        }
        if let Some(free) = matches.free.first() {
            return Err(ConfigError::UnexpectedArgument(free.clone()));
        }
        Config::resolve(&Sources {
            matches: Some(&matches),
            env,
        })
        .map(Command::Run)
    }

    /// Parses the process's arguments, its configuration file (when one is
    /// named) and its environment; called at start-up and on every reload.
    pub fn from_env_and_args() -> Result<Command, ConfigError> {
        let mut args = Vec::new();
        for arg in std::env::args_os().skip(1) {
            match arg.into_string() {
                Ok(arg) => args.push(arg),
                Err(arg) => {
                    return Err(ConfigError::NotUnicode(format!(
                        "argument {:?}",
                        arg.to_string_lossy()
                    )))
                }
            }
        }
        for row in SETTINGS {
            if let Some(value) = std::env::var_os(row.env) {
                if value.to_str().is_none() {
                    return Err(ConfigError::NotUnicode(row.env.to_owned()));
                }
            }
        }
        let process = |name: &str| std::env::var(name).ok();
        let file = match super::file::path(&args, &process) {
            Some(path) => super::file::read(&path)?,
            None => Default::default(),
        };
        Self::parse(&args, &|name| {
            file.get(name).cloned().or_else(|| process(name))
        })
    }

    /// What an empty command line and an empty environment give: every
    /// setting at its default.
    pub fn defaults() -> Config {
        match Config::resolve(&Sources::DEFAULTS) {
            Ok(config) => config,
            // The built-in defaults are constants checked by the unit tests.
            Err(err) => panic!("built-in defaults are invalid: {err}"),
        }
    }
}

/// The command line the settings table describes, plus `-h` and `-V`.
pub(super) fn options() -> getopts::Options {
    let mut opts = getopts::Options::new();
    opts.optflag("h", "help", "print this help and exit");
    opts.optflag("V", "version", "print the version and exit");
    opts.optopt(
        "",
        super::file::FLAG,
        "VAR=value lines read at start and on SIGHUP (env CONFIG_FILE); flag > file > env",
        "PATH",
    );
    for row in SETTINGS {
        let desc = text::describe(row);
        match row.form {
            Form::Value => opts.optopt("", row.long, &desc, row.hint),
            Form::Repeated => opts.optmulti("", row.long, &desc, row.hint),
            Form::Switch { .. } => opts.optflag("", row.long, &desc),
        };
    }
    opts
}

/// Where raw values come from. `matches` is `None` for the built-in defaults.
pub(super) struct Sources<'a> {
    matches: Option<&'a getopts::Matches>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Sources<'a> {
    /// Values from `matches` (when given), else `env`, else the defaults.
    pub(super) fn new(
        matches: Option<&'a getopts::Matches>,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Sources<'a> {
        Sources { matches, env }
    }
}

impl Sources<'_> {
    /// No command line and no environment.
    const DEFAULTS: Sources<'static> = Sources {
        matches: None,
        env: &|_| None,
    };

    fn flag_values(&self, long: &str) -> Vec<String> {
        match self.matches {
            Some(m) if m.opt_defined(long) => m.opt_strs(long),
            _ => Vec::new(),
        }
    }

    fn flag_present(&self, long: &str) -> bool {
        matches!(self.matches, Some(m) if m.opt_defined(long) && m.opt_present(long))
    }

    fn env_value(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.is_empty())
    }

    /// Flag > non-empty env > default.
    fn raw(&self, row: &Setting) -> Option<String> {
        self.flag_values(row.long)
            .pop()
            .or_else(|| self.env_value(row.env))
            .or_else(|| row.default.map(str::to_owned))
    }

    /// A setting that may stay unset.
    pub(super) fn optional<R: Rule>(
        &self,
        row: &Setting,
        rule: &R,
    ) -> Result<Option<R::Out>, ConfigError> {
        match self.raw(row) {
            None => Ok(None),
            Some(raw) => rule
                .parse(&raw)
                .map(Some)
                .ok_or_else(|| invalid(row, rule, &raw)),
        }
    }

    /// A setting that must have a value (its default, normally).
    pub(super) fn value<R: Rule>(&self, row: &Setting, rule: &R) -> Result<R::Out, ConfigError> {
        self.optional(row, rule)?.ok_or(ConfigError::Missing {
            flag: row.long,
            env: row.env,
        })
    }

    /// A switch flag sets its value; without it, the env (a boolean) or the
    /// default decides.
    pub(super) fn switch(&self, row: &Setting, rule: &Bool) -> Result<bool, ConfigError> {
        match row.form {
            Form::Switch { sets } if self.flag_present(row.long) => Ok(sets),
            _ => self.value(row, rule),
        }
    }

    /// The variable's entries, then each flag's; a later entry for a user
    /// already listed replaces its password.
    pub(super) fn repeated(
        &self,
        row: &Setting,
        rule: &Accounts,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let mut entries = Vec::new();
        if let Some(raw) = self.env_value(row.env) {
            entries.extend(rule.parse(&raw).ok_or_else(|| invalid(row, rule, &raw))?);
        }
        for raw in self.flag_values(row.long) {
            entries.push(rule.entry(&raw).ok_or_else(|| invalid(row, rule, &raw))?);
        }
        let mut accounts: Vec<(String, String)> = Vec::with_capacity(entries.len());
        for (user, password) in entries {
            match accounts.iter_mut().find(|(known, _)| *known == user) {
                Some(existing) => existing.1 = password,
                None => accounts.push((user, password)),
            }
        }
        Ok(accounts)
    }
}

/// The error line for `raw`, refused by `row`'s rule.
fn invalid<R: Rule>(row: &Setting, rule: &R, raw: &str) -> ConfigError {
    ConfigError::Invalid {
        flag: row.long,
        env: row.env,
        value: shorten(&rule.shown(raw)),
        expected: rule.expected(),
    }
}

/// Caps a value echoed in an error line.
fn shorten(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    match value.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}
