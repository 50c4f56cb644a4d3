//! The optional configuration file (`--config-file PATH` / `CONFIG_FILE`):
//! one `VAR=value` per line with the environment variables' names, `#`
//! starting a comment line, blank lines ignored. It is read at start-up and
//! again on every SIGHUP, so a systemd unit whose `EnvironmentFile=` is this
//! file can change a setting with `systemctl reload` (systemd itself does
//! not re-read an environment file for a running process). Precedence:
//! flag > file > environment > default.

use std::collections::HashMap;

use super::ConfigError;

/// The long flag naming the file.
pub const FLAG: &str = "config-file";
/// The environment variable naming the file.
pub const ENV: &str = "CONFIG_FILE";

/// The file's path: the last `--config-file`, else `CONFIG_FILE`.
pub(super) fn path(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let flag = format!("--{FLAG}");
    let prefix = format!("--{FLAG}=");
    let mut found = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if *arg == flag {
            found = args.next().cloned();
        } else if let Some(value) = arg.strip_prefix(&prefix) {
            found = Some(value.to_owned());
        }
    }
    found.or_else(|| env(ENV)).filter(|p| !p.is_empty())
}

/// Reads the file at `path` into its variables.
pub(super) fn read(path: &str) -> Result<HashMap<String, String>, ConfigError> {
    let fail = |reason: String| ConfigError::File {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    parse(&text).map_err(fail)
}

/// The variables of a file's text; the error names the first bad line.
pub(super) fn parse(text: &str) -> Result<HashMap<String, String>, String> {
    let mut vars = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected VAR=value", n + 1));
        };
        vars.insert(name.trim().to_owned(), value.trim().to_owned());
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_the_flag_over_the_variable() {
        let vars = parse("# limits\n\nMAX_CONNECTIONS_PER_IP=1\n RUST_LOG = debug \n").unwrap();
        assert_eq!(vars.len(), 2);
        assert_eq!(vars["MAX_CONNECTIONS_PER_IP"], "1");
        assert_eq!(vars["RUST_LOG"], "debug");
        assert_eq!(parse("oops").unwrap_err(), "line 1: expected VAR=value");
        let args = ["--config-file".to_owned(), "a".to_owned()];
        let env = |_: &str| Some("b".to_owned());
        assert_eq!(path(&args, &env).as_deref(), Some("a"));
        assert_eq!(
            path(&["--config-file=c".to_owned()], &env).as_deref(),
            Some("c")
        );
        assert_eq!(path(&[], &env).as_deref(), Some("b"));
        assert_eq!(path(&[], &|_| None), None);
    }
}
